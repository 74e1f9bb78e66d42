/*
 * img.h: the image handle and the format-driver vtable.
 *
 * An image is a struct img: a plain file underneath (struct qfile), a
 * format driver on top (raw, qcow2), the virtual size, and optionally an
 * opened backing image.  Drivers implement a small vtable (libarchive
 * style); a NULL entry means "not supported by this format".
 *
 * Format selection (img_open): an explicit format wins; otherwise the first
 * sector is probed and the driver with the highest score is used (qcow2's
 * magic, else raw).  A backing file is opened with the format recorded in
 * its parent's header when there is one, and is only probed when none is
 * recorded.  Backing chains are followed read-only, with loop detection
 * (device and inode) and a depth limit.
 *
 * The core never prints: every failing call returns a negative errno and
 * leaves the reason in a struct qerr (see err.h).
 */
#ifndef QIMG_CORE_IMG_H
#define QIMG_CORE_IMG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/file.h"
#include "core/kv.h"
#include "util/opts.h"

/* Deepest backing chain we follow (qemu has no hard limit; this is ours). */
#define IMG_MAX_CHAIN 64

enum img_open_flags {
	IMG_RDWR = 1 << 0,	  /* open for writing */
	IMG_NO_BACKING = 1 << 1,  /* do not open the backing chain */
	IMG_FORCE_SHARE = 1 << 2, /* -U: read-only shared open */
	IMG_NO_IO = 1 << 3,	  /* metadata only (info): no guest I/O, so
				     no data file and no secrets needed */
	IMG_CHECK = 1 << 4,	  /* for check: tables past the end of the
				     file are the check's to report */
};

struct img;
struct check_opts;
struct check_result;

/* One internal snapshot, as info and snapshot -l show it. */
struct img_snapshot {
	char *id;
	char *name;
	uint64_t vm_state_size;
	uint32_t date_sec;
	uint32_t date_nsec;
	uint64_t vm_clock_nsec;
	bool has_icount;
	uint64_t icount;
};

/* What "info" reports about one image (not its backing chain). */
struct img_info {
	const char *format;		/* driver name */
	char *filename;			/* as given */
	uint64_t virtual_size;
	bool has_actual_size;
	uint64_t actual_size;		/* bytes allocated on disk */
	uint32_t cluster_size;		/* 0: the format has none */
	bool encrypted;
	bool dirty;			/* qcow2 dirty bit (not cleanly shut down) */
	char *backing_file;		/* as stored in the image, or NULL */
	char *full_backing_file;	/* resolved path, or NULL if unresolvable */
	char *backing_fmt;		/* as stored, or NULL */
	struct img_snapshot *snapshots;
	size_t nb_snapshots;
	struct kv *format_specific;	/* the "data" object, or NULL */
};

/* Block status of a range, as qemu's block-status reports it. */
enum img_bs_flags {
	IMG_BS_DATA = 1 << 0,	   /* reads return data (not known zeros) */
	IMG_BS_ZERO = 1 << 1,	   /* reads return zeros */
	IMG_BS_ALLOCATED = 1 << 2, /* this layer decides the content */
	IMG_BS_OFFSET = 1 << 3,	   /* host_offset is valid */
	IMG_BS_COMPRESSED = 1 << 4,/* stored compressed */
};

struct img_bstatus {
	uint64_t len;		/* length of the run with these flags */
	unsigned flags;		/* enum img_bs_flags */
	uint64_t host_offset;	/* with IMG_BS_OFFSET: where in file */
	const char *host_file;	/* with IMG_BS_OFFSET: which file */
};

/* Flags for write_zeroes. */
enum img_zero_flags {
	IMG_ZERO_MAY_UNMAP = 1 << 0, /* deallocating is fine if reads stay zero */
};

struct img_driver {
	const char *name;
	/* Score 0..100 for the first bytes of a file (len may be < 512). */
	int (*probe)(const uint8_t *buf, size_t len);
	/* Creation options, in the order "Formatting ..." prints them. */
	const struct opt_desc *create_opts;
	/*
	 * Create filename from opts (which include size, backing_file and
	 * backing_fmt when given).  Mark each option it reads as used.
	 * filename NULL: only validate opts as a create would, touching no
	 * file (so the CLI can refuse before it announces the image).
	 */
	int (*create)(const char *filename, struct optlist *opts,
		      struct qerr *e);
	/* Fill img->size and driver state; errors go to img->err. */
	int (*open)(struct img *img, unsigned flags);
	void (*close)(struct img *img);
	/* Guest reads and writes: off and len within img->size. */
	int (*read)(struct img *img, uint64_t off, void *buf, size_t len);
	int (*write)(struct img *img, uint64_t off, const void *buf,
		     size_t len);
	int (*flush)(struct img *img);
	/* Make [off, off+len) read as zeros. */
	int (*write_zeroes)(struct img *img, uint64_t off, uint64_t len,
			    unsigned flags);
	/* Drop [off, off+len): may read as zeros or as the backing file. */
	int (*discard)(struct img *img, uint64_t off, uint64_t len);
	/*
	 * Status of the run starting at off (at most len bytes) in this
	 * layer only: st->len > 0 on success unless off == img->size.
	 */
	int (*block_status)(struct img *img, uint64_t off, uint64_t len,
			    struct img_bstatus *st);
	/* Change the virtual size. */
	int (*truncate)(struct img *img, uint64_t size);
	/* Add the format's facts to info (cluster size, snapshots, ...). */
	int (*info)(struct img *img, struct img_info *info);
	/*
	 * Store [off, off+len) compressed, cluster by cluster: off cluster
	 * aligned, len whole clusters or up to the image end.
	 */
	int (*write_compressed)(struct img *img, uint64_t off, const void *buf,
				size_t len);
	/* Check (and with o->fix repair) the image: see core/check.h. */
	int (*check)(struct img *img, const struct check_opts *o,
		     struct check_result *r);
	/*
	 * Internal snapshots (NULL: the format has none; see img_snapshot_*
	 * below for the contracts).  id and name select one exactly, NULL
	 * matching any, the first match winning.
	 */
	int (*snapshot_list)(struct img *img, struct img_snapshot **out,
			     size_t *n);
	int (*snapshot_create)(struct img *img, const char *name);
	int (*snapshot_apply)(struct img *img, const char *id,
			      const char *name);
	int (*snapshot_delete)(struct img *img, const char *id,
			       const char *name);
	int (*snapshot_load)(struct img *img, const char *id,
			     const char *name);
};

/*
 * What an open may need beyond file, format and flags (img_open_with).
 * Everything optional: a zeroed struct is a plain img_open().
 */
struct img_open_opts {
	/*
	 * encrypt.key-secret / encrypt.format of --image-opts: the id of the
	 * --object secret holding the passphrase (util's secret store), and
	 * the format the user expects ("luks", "aes").  Only an encrypted
	 * qcow2 image uses them; without IMG_NO_IO or IMG_CHECK it cannot
	 * be opened without a key.
	 */
	const char *key_secret;
	const char *encrypt_format;
	/*
	 * Another open handle on the same image whose unlocked keys this
	 * handle shares (convert's worker handles: a LUKS unlock costs
	 * seconds of PBKDF2 by design).  It may be closed first: the keys
	 * are reference counted.  Backing files share the same way.
	 */
	const struct img *keys_from;
	/* The options for the backing image (backing.*), or NULL. */
	const struct img_open_opts *backing;
};

struct img {
	const struct img_driver *drv;
	char *filename;		/* as given by the user or the parent image */
	struct qfile *file;
	unsigned flags;
	uint64_t size;		/* virtual size in bytes */
	char *backing_name;	/* as stored in the image, or NULL */
	char *backing_fmt;	/* as stored in the image, or NULL */
	struct img *backing;	/* opened backing image, or NULL */
	struct img *parent;	/* the image this one backs, or NULL */
	int chain_depth;	/* 0 for the top image */
	struct qerr err;
	void *priv;		/* driver state */
	/* During img_open*() only: the caller's options, never NULL. */
	const struct img_open_opts *open_opts;
};

/* The driver called name ("raw", "qcow2"), or NULL. */
const struct img_driver *img_driver_find(const char *name);
/* Every driver, NULL-terminated. */
const struct img_driver *const *img_drivers(void);

/*
 * Open filename.  fmt NULL means probe.  On success *out is the caller's,
 * freed with img_close().  On failure *out is NULL and e holds the reason.
 */
int img_open(struct img **out, const char *filename, const char *fmt,
	     unsigned flags, struct qerr *e);
/* img_open() with options (o NULL: none); backing files get none. */
int img_open_with(struct img **out, const char *filename, const char *fmt,
		  unsigned flags, const struct img_open_opts *o,
		  struct qerr *e);
void img_close(struct img *img);

/* Probe the format of an open file: the best-scoring driver. */
int img_probe(struct qfile *f, const struct img_driver **drv, struct qerr *e);

/*
 * Resolve a backing file name stored in image `parent` to a path: absolute
 * names as they are, relative ones against the parent's directory.
 * Returns a malloc'd string or NULL on allocation failure.
 */
char *img_backing_path(const char *parent, const char *backing);

/*
 * Open the backing image named in img (if any and not yet open), with the
 * recorded format or a probe, read-only, detecting loops and over-deep
 * chains.
 */
int img_open_backing(struct img *img);

/* Read from the guest view: zeros beyond the end of a shorter image. */
int img_read(struct img *img, uint64_t off, void *buf, size_t len);
int img_write(struct img *img, uint64_t off, const void *buf, size_t len);
int img_flush(struct img *img);
/* Range-checked wrappers of the vtable entries (-ENOTSUP when NULL). */
int img_write_zeroes(struct img *img, uint64_t off, uint64_t len,
		     unsigned flags);
int img_discard(struct img *img, uint64_t off, uint64_t len);
int img_block_status(struct img *img, uint64_t off, uint64_t len,
		     struct img_bstatus *st);
int img_truncate(struct img *img, uint64_t size);
/*
 * Compressed write (convert -c, qemu-io write -c): off on a cluster
 * boundary, len whole clusters or up to the end; -ENOTSUP when the format
 * has no compression, -EINVAL when misaligned, -EIO (as qemu) when a
 * cluster is already allocated.
 */
int img_write_compressed(struct img *img, uint64_t off, const void *buf,
			 size_t len);

/* Fill info for img (not its backing chain); free with img_info_free(). */
int img_info_get(struct img *img, struct img_info *info);
void img_info_free(struct img_info *info);

/*
 * Internal snapshots (img_snapshot.c), each snapshot selected the way
 * qemu-img 7.2 selects it.  On failure img->err holds the reason; an
 * empty message means a plain errno (qemu-img prints those as
 * "-95 (Operation not supported)").  The messages are qemu's where qemu
 * has one.
 *
 * list: the snapshots (none for a format without them); free the array
 * with img_snapshot_list_free().
 * create: a new snapshot of the current state called name, with the next
 * free ID; the image must be writable.
 * apply: the snapshot whose ID is id_or_name, else the first whose name
 * is, becomes the current state (virtual size included).
 * delete: the first snapshot whose NAME is name goes (qemu-img 7.2 does
 * not look at IDs here).
 * load: for reading a snapshot's content (convert -l): on an image opened
 * read-only, img_read() and img_block_status() then see the snapshot, and
 * img->size is its virtual size, until img_close().  img_snapshot_load()
 * takes snapshot.id / snapshot.name (NULL: any; both given: both must
 * match); img_snapshot_load_any() takes one string, tried as an ID, then
 * as a name.  Not found: -ENOENT, "Can't find snapshot"; qemu-img prints
 * these errors after "Failed to load snapshot: ".
 */
int img_snapshot_list(struct img *img, struct img_snapshot **out, size_t *n);
void img_snapshot_list_free(struct img_snapshot *sn, size_t n);
int img_snapshot_create(struct img *img, const char *name);
int img_snapshot_apply(struct img *img, const char *id_or_name);
int img_snapshot_delete(struct img *img, const char *name);
int img_snapshot_load(struct img *img, const char *id, const char *name);
int img_snapshot_load_any(struct img *img, const char *id_or_name);

extern const struct img_driver raw_driver;
extern const struct img_driver qcow2_driver;

#endif
