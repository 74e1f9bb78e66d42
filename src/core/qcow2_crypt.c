/*
 * qcow2_crypt.c: the data path between the engine and the data file, where
 * encrypted images are decrypted on read and encrypted on write.
 *
 * Spec: qcow2.txt "crypt_method" and the full disk encryption header
 * extension; facts in QCOW2-NOTES.md "Encryption facts".  Only guest data
 * clusters are encrypted, each 512-byte sector on its own, its IV taken
 * from a sector number: the HOST sector (offset in the file / 512) for
 * LUKS, the GUEST sector for legacy AES (crypto.h).  So data copied to a
 * new host cluster (copy-on-write) is decrypted with its old offset and
 * encrypted with the new one; the engine's COW does exactly that by
 * reading and writing through these two functions.
 *
 * Invariants: the caller's buffer is never encrypted in place (writes go
 * through eng->crypt_buf); no plaintext of an encrypted image reaches the
 * file; an encrypted image opened without keys (check) refuses data I/O
 * instead of passing ciphertext through.  Compressed clusters are stored
 * as they are even in encrypted images, as qemu stores them (qemu-img
 * refuses to create them; qimg refuses compressed writes there).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "core/qcow2_engine.h"

#define SECTOR CRYPTO_SECTOR_SIZE

int qcow2_no_key(struct qcow2_engine *eng)
{
	return qerr_set(eng->err, -EACCES, "the image is encrypted and was "
			"opened without its key (encrypt.key-secret)");
}

/* The sector number whose IV encrypts the sector at host_off/guest_off. */
static uint64_t iv_sector(const struct qcow2_engine *eng, uint64_t host_off,
			  uint64_t guest_off)
{
	return (crypto_ctx_format(eng->crypto) == CRYPTO_FORMAT_LUKS
			? host_off
			: guest_off) / SECTOR;
}

/* Where a request has got to: both offsets move with the buffer. */
struct pos {
	uint64_t host, guest;
	size_t done;
};

static void pos_skip(struct pos *p, size_t n)
{
	p->host += n;
	p->guest += n;
	p->done += n;
}

static int crypt_buf(struct qcow2_engine *eng)
{
	if (!eng->crypt_buf && !(eng->crypt_buf = malloc(QCOW2_CRYPT_BUF)))
		return qerr_set(eng->err, -ENOMEM, "out of memory");
	return 0;
}

/*
 * Read and decrypt [host_off, host_off+len), host_off and len in whole
 * sectors, into buf.
 */
static int read_sectors(struct qcow2_engine *eng, uint64_t host_off,
			uint64_t guest_off, uint8_t *buf, size_t len)
{
	int ret = qfile_pread_zero(eng->data, buf, len, host_off, eng->err);

	if (ret < 0)
		return ret;
	return crypto_decrypt_sectors(eng->crypto,
				      iv_sector(eng, host_off, guest_off), buf,
				      len, eng->err);
}

static int crypt_pread(struct qcow2_engine *eng, uint64_t host_off,
		       uint64_t guest_off, uint8_t *buf, size_t len)
{
	struct pos p = { host_off, guest_off, 0 };
	int ret;

	if (!eng->crypto)
		return qcow2_no_key(eng);
	if (host_off % SECTOR == 0 && len % SECTOR == 0)
		return read_sectors(eng, host_off, guest_off, buf, len);
	/* Partial sectors: whole ones through the bounce buffer. */
	ret = crypt_buf(eng);
	while (ret == 0 && p.done < len) {
		size_t head = p.host % SECTOR, n = len - p.done;
		size_t span;

		if (n > QCOW2_CRYPT_BUF - head)
			n = QCOW2_CRYPT_BUF - head;
		span = (head + n + SECTOR - 1) / SECTOR * SECTOR;
		ret = read_sectors(eng, p.host - head, p.guest - head,
				   eng->crypt_buf, span);
		if (ret == 0)
			memcpy(buf + p.done, eng->crypt_buf + head, n);
		pos_skip(&p, n);
	}
	return ret;
}

int qcow2_data_pread(struct qcow2_engine *eng, uint64_t host_off,
		     uint64_t guest_off, void *buf, size_t len)
{
	if (eng->s->meta.h.crypt_method != QCOW2_CRYPT_NONE)
		return crypt_pread(eng, host_off, guest_off, buf, len);
	return qfile_pread_zero(eng->data, buf, len, host_off, eng->err);
}

static int crypt_pwrite(struct qcow2_engine *eng, uint64_t host_off,
			uint64_t guest_off, const uint8_t *buf, size_t len)
{
	struct pos p = { host_off, guest_off, 0 };
	int ret;

	if (!eng->crypto)
		return qcow2_no_key(eng);
	if (host_off % SECTOR || len % SECTOR)
		return qerr_set(eng->err, -EINVAL, "encrypted write of %zu "
				"bytes at 0x%llx is not in whole sectors", len,
				(unsigned long long)host_off);
	ret = crypt_buf(eng);
	while (ret == 0 && p.done < len) {
		size_t n = len - p.done < QCOW2_CRYPT_BUF ? len - p.done
							  : QCOW2_CRYPT_BUF;

		memcpy(eng->crypt_buf, buf + p.done, n);
		ret = crypto_encrypt_sectors(eng->crypto,
					     iv_sector(eng, p.host, p.guest),
					     eng->crypt_buf, n, eng->err);
		if (ret == 0)
			ret = qcow2_pwrite(eng, eng->data, eng->crypt_buf, n,
					   p.host);
		pos_skip(&p, n);
	}
	return ret;
}

int qcow2_data_pwrite(struct qcow2_engine *eng, uint64_t host_off,
		      uint64_t guest_off, const void *buf, size_t len)
{
	if (eng->s->meta.h.crypt_method != QCOW2_CRYPT_NONE)
		return crypt_pwrite(eng, host_off, guest_off, buf, len);
	return qcow2_pwrite(eng, eng->data, buf, len, host_off);
}

/* Write the part [off, off+n) of the sector at off & ~511 (n < 512). */
static int patch_sector(struct img *img, uint64_t off, const uint8_t *buf,
			size_t n)
{
	uint64_t start = off / SECTOR * SECTOR;
	uint8_t sector[SECTOR];
	int ret = qcow2_read(img, start, sector, SECTOR);

	if (ret < 0)
		return ret;
	memcpy(sector + (off - start), buf, n);
	return qcow2_write(img, start, sector, SECTOR);
}

int qcow2_write_sectors_rmw(struct img *img, uint64_t off, const void *buf,
			    size_t len)
{
	const uint8_t *p = buf;

	/* A partial first sector, the whole ones, a partial last one. */
	while (len > 0) {
		size_t n = SECTOR - off % SECTOR;
		int ret;

		if (n == SECTOR && len >= SECTOR) {
			n = len / SECTOR * SECTOR;
			ret = qcow2_write(img, off, p, n);
		} else {
			if (n > len)
				n = len;
			ret = patch_sector(img, off, p, n);
		}
		if (ret < 0)
			return ret;
		off += n;
		p += n;
		len -= n;
	}
	return 0;
}
