/*
 * file.c: plain-file I/O (see file.h).  Short reads and writes are retried
 * until the whole buffer moved, so callers never see partial transfers.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"

/*
 * Test-only fault hook (see file.h): QIMG_FAULT_AFTER_WRITES=N lets N
 * writes (pwrite or truncate) through, then acts on the next one:
 * QIMG_FAULT_MODE=exit (default) ends the process with status 86 before
 * writing, like a kill -9 between two writes; QIMG_FAULT_MODE=eio fails
 * that write and every later one with EIO.
 */
static long long fault_left = -1;	/* -1 off */
static bool fault_eio;
static pthread_once_t fault_once = PTHREAD_ONCE_INIT;

static void fault_init(void)
{
	const char *n = getenv("QIMG_FAULT_AFTER_WRITES");
	const char *mode = getenv("QIMG_FAULT_MODE");

	fault_left = n && *n ? strtoll(n, NULL, 10) : -1;
	fault_eio = mode && strcmp(mode, "eio") == 0;
}

/* Thread-safe: convert's workers write raw targets concurrently. */
static int fault_hook(void)
{
	long long v;

	pthread_once(&fault_once, fault_init);
	v = __atomic_load_n(&fault_left, __ATOMIC_RELAXED);
	while (v > 0 && !__atomic_compare_exchange_n(&fault_left, &v, v - 1,
						     false, __ATOMIC_RELAXED,
						     __ATOMIC_RELAXED))
		;
	if (v != 0)	/* off, or a write still let through */
		return 0;
	if (!fault_eio)
		_exit(86);
	return -EIO;
}

int qfile_open(struct qfile **out, const char *path, unsigned flags,
	       struct qerr *e)
{
	int oflags = O_CLOEXEC;
	struct qfile *f;
	struct stat st;

	*out = NULL;
	if (flags & QFILE_CREATE)
		oflags |= O_RDWR | O_CREAT | O_TRUNC;
	else
		oflags |= (flags & QFILE_RDWR) ? O_RDWR : O_RDONLY;

	f = calloc(1, sizeof(*f));
	if (!f || !(f->path = strdup(path))) {
		free(f);
		return qerr_set(e, -ENOMEM, "out of memory");
	}
	/* O_NONBLOCK: opening a FIFO must not wait for a writer. */
	f->fd = open(path, oflags | O_NONBLOCK, 0644);
	if (f->fd < 0) {
		int err = -errno;
		free(f->path);
		free(f);
		return qerr_set(e, err, "could not open '%s': %s", path,
				strerror(-err));
	}
	if (fstat(f->fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		qfile_close(f);
		return qerr_set(e, -EISDIR, "could not open '%s': %s", path,
				strerror(EISDIR));
	}
	if (fstat(f->fd, &st) == 0 && S_ISFIFO(st.st_mode)) {
		qfile_close(f);
		return qerr_set(e, -EINVAL,
				"could not open '%s': a FIFO is not a disk image",
				path);
	}
	fcntl(f->fd, F_SETFL, fcntl(f->fd, F_GETFL) & ~O_NONBLOCK);
	f->writable = (oflags & O_RDWR) != 0;
	*out = f;
	return 0;
}

void qfile_close(struct qfile *f)
{
	if (!f)
		return;
	if (f->fd >= 0)
		close(f->fd);
	free(f->path);
	free(f);
}

static int pread_some(struct qfile *f, void *buf, size_t len, uint64_t off,
		      size_t *done, struct qerr *e)
{
	*done = 0;
	while (*done < len) {
		ssize_t n = pread(f->fd, (char *)buf + *done, len - *done,
				  (off_t)(off + *done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return qerr_set(e, -errno,
					"read error at offset %llu: %s",
					(unsigned long long)(off + *done),
					strerror(errno));
		}
		if (n == 0)
			break;
		*done += (size_t)n;
	}
	return 0;
}

int qfile_pread(struct qfile *f, void *buf, size_t len, uint64_t off,
		struct qerr *e)
{
	size_t done;
	int ret = pread_some(f, buf, len, off, &done, e);

	if (ret < 0)
		return ret;
	if (done < len)
		return qerr_set(e, -EIO,
				"unexpected end of file reading %zu bytes at "
				"offset %llu",
				len, (unsigned long long)off);
	return 0;
}

int qfile_pread_zero(struct qfile *f, void *buf, size_t len, uint64_t off,
		     struct qerr *e)
{
	size_t done;
	int ret = pread_some(f, buf, len, off, &done, e);

	if (ret < 0)
		return ret;
	memset((char *)buf + done, 0, len - done);
	return 0;
}

int qfile_pwrite(struct qfile *f, const void *buf, size_t len, uint64_t off,
		 struct qerr *e)
{
	size_t done = 0;

	if (fault_hook() < 0)
		return qerr_set(e, -EIO, "write error at offset %llu: %s",
				(unsigned long long)off, strerror(EIO));
	while (done < len) {
		ssize_t n = pwrite(f->fd, (const char *)buf + done, len - done,
				   (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return qerr_set(e, -errno,
					"write error at offset %llu: %s",
					(unsigned long long)(off + done),
					strerror(errno));
		}
		done += (size_t)n;
	}
	return 0;
}

int qfile_size(struct qfile *f, uint64_t *size, struct qerr *e)
{
	struct stat st;

	if (fstat(f->fd, &st) < 0)
		return qerr_set(e, -errno, "cannot stat: %s", strerror(errno));
	*size = (uint64_t)st.st_size;
	return 0;
}

int qfile_allocated(struct qfile *f, uint64_t *bytes, struct qerr *e)
{
	struct stat st;

	if (fstat(f->fd, &st) < 0)
		return qerr_set(e, -errno, "cannot stat: %s", strerror(errno));
	*bytes = (uint64_t)st.st_blocks * 512;
	return 0;
}

int qfile_truncate(struct qfile *f, uint64_t size, struct qerr *e)
{
	if (size > (uint64_t)INT64_MAX)
		return qerr_set(e, -EFBIG, "file size %llu is too large",
				(unsigned long long)size);
	if (fault_hook() < 0)
		return qerr_set(e, -EIO, "cannot resize file to %llu bytes: %s",
				(unsigned long long)size, strerror(EIO));
	while (ftruncate(f->fd, (off_t)size) < 0) {
		if (errno == EINTR)
			continue;
		return qerr_set(e, -errno, "cannot resize file to %llu bytes: %s",
				(unsigned long long)size, strerror(errno));
	}
	return 0;
}

int qfile_fallocate(struct qfile *f, uint64_t off, uint64_t len,
		    struct qerr *e)
{
	int ret;

	if (len == 0)
		return 0;
	ret = posix_fallocate(f->fd, (off_t)off, (off_t)len);
	if (ret != 0)
		return qerr_set(e, -ret, "cannot preallocate %llu bytes at "
				"offset %llu: %s", (unsigned long long)len,
				(unsigned long long)off, strerror(ret));
	return 0;
}

int qfile_write_zeros(struct qfile *f, uint64_t off, uint64_t len,
		      struct qerr *e)
{
	enum { CHUNK = 1 << 20 };
	char *zeros = calloc(1, CHUNK);
	int ret = 0;

	if (!zeros)
		return qerr_set(e, -ENOMEM, "out of memory");
	while (len > 0 && ret == 0) {
		size_t n = len < CHUNK ? (size_t)len : CHUNK;
		ret = qfile_pwrite(f, zeros, n, off, e);
		off += n;
		len -= n;
	}
	free(zeros);
	return ret;
}

int qfile_flush(struct qfile *f, struct qerr *e)
{
	if (f->no_sync)
		return 0;
	if (fdatasync(f->fd) < 0 && errno != EINVAL)
		return qerr_set(e, -errno, "flush failed: %s", strerror(errno));
	return 0;
}

/* fallocate errnos that mean "this file system cannot", not "it failed". */
static bool fallocate_unsupported(int err)
{
	return err == EOPNOTSUPP || err == ENOSYS || err == EINVAL;
}

static int qfile_fallocate_mode(struct qfile *f, int mode, uint64_t off,
				uint64_t len, const char *what, struct qerr *e)
{
	if (len == 0)
		return 0;
	if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off)
		return qerr_set(e, -EFBIG, "cannot %s %llu bytes at offset "
				"%llu: range too large", what,
				(unsigned long long)len,
				(unsigned long long)off);
	while (fallocate(f->fd, mode, (off_t)off, (off_t)len) < 0) {
		if (errno == EINTR)
			continue;
		if (fallocate_unsupported(errno))
			return -ENOTSUP;
		return qerr_set(e, -errno, "cannot %s %llu bytes at offset "
				"%llu: %s", what, (unsigned long long)len,
				(unsigned long long)off, strerror(errno));
	}
	return 0;
}

int qfile_punch_hole(struct qfile *f, uint64_t off, uint64_t len,
		     struct qerr *e)
{
	return qfile_fallocate_mode(f, FALLOC_FL_PUNCH_HOLE |
				    FALLOC_FL_KEEP_SIZE, off, len,
				    "deallocate", e);
}

int qfile_zero_range(struct qfile *f, uint64_t off, uint64_t len,
		     struct qerr *e)
{
	return qfile_fallocate_mode(f, FALLOC_FL_ZERO_RANGE, off, len,
				    "zero", e);
}

int qfile_data_run(struct qfile *f, uint64_t off, bool *data, uint64_t *pnum,
		   struct qerr *e)
{
	uint64_t size;
	off_t next;
	int ret = qfile_size(f, &size, e);

	if (ret < 0)
		return ret;
	if (off >= size) {
		*data = false;
		*pnum = 0;
		return 0;
	}
	next = lseek(f->fd, (off_t)off, SEEK_DATA);
	if (next < 0) {
		if (errno == ENXIO) {	/* a hole up to the end of the file */
			*data = false;
			*pnum = size - off;
			return 0;
		}
		/* No SEEK_DATA here: everything is data. */
		*data = true;
		*pnum = size - off;
		return 0;
	}
	if ((uint64_t)next > off) {
		*data = false;
		*pnum = (uint64_t)next - off;
		return 0;
	}
	next = lseek(f->fd, (off_t)off, SEEK_HOLE);
	*data = true;
	*pnum = (next < 0 ? size : (uint64_t)next) - off;
	return 0;
}
