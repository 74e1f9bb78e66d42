/*
 * file.h: plain-file I/O under every image format.
 *
 * A struct qfile wraps one file descriptor with the few operations a format
 * driver needs: whole-buffer pread/pwrite that retry short transfers and
 * EINTR, size, truncate, preallocation, flush, SEEK_DATA/SEEK_HOLE and the
 * allocated size.  Errors come back as negative errno with a message in the
 * caller's struct qerr naming the operation and offset.
 *
 * Fault injection, for crash-safety tests only: with the environment
 * variable QIMG_FAULT_AFTER_WRITES=N, the first N writes (qfile_pwrite,
 * qfile_truncate) go through and the next one does not: by default the
 * process exits at once with status 86 (a crash between two writes);
 * with QIMG_FAULT_MODE=eio that write and all later ones fail with EIO.
 * Unset, the hook costs one comparison per write.
 */
#ifndef QIMG_CORE_FILE_H
#define QIMG_CORE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

enum qfile_flags {
	QFILE_RDWR = 1 << 0,	/* open for writing too */
	QFILE_CREATE = 1 << 1,	/* create, or truncate an existing file */
};

struct qfile {
	int fd;
	bool writable;
	char *path;
	bool no_sync;	/* cache=unsafe: qfile_flush does not fdatasync */
};

/* Open path; *out is owned by the caller and freed with qfile_close(). */
int qfile_open(struct qfile **out, const char *path, unsigned flags,
	       struct qerr *e);
void qfile_close(struct qfile *f);

/*
 * Read exactly len bytes at off.  Reading past the end of the file is an
 * error (-EIO, "unexpected end of file ...").
 */
int qfile_pread(struct qfile *f, void *buf, size_t len, uint64_t off,
		struct qerr *e);
/* Read len bytes at off; bytes past the end of the file read as zeros. */
int qfile_pread_zero(struct qfile *f, void *buf, size_t len, uint64_t off,
		     struct qerr *e);
/* Write exactly len bytes at off. */
int qfile_pwrite(struct qfile *f, const void *buf, size_t len, uint64_t off,
		 struct qerr *e);

/* Current length in bytes (fstat). */
int qfile_size(struct qfile *f, uint64_t *size, struct qerr *e);
/* Bytes allocated on disk (st_blocks * 512). */
int qfile_allocated(struct qfile *f, uint64_t *bytes, struct qerr *e);
int qfile_truncate(struct qfile *f, uint64_t size, struct qerr *e);
/* posix_fallocate the range [off, off+len). */
int qfile_fallocate(struct qfile *f, uint64_t off, uint64_t len,
		    struct qerr *e);
/* Write real zeros over [off, off+len) (preallocation=full). */
int qfile_write_zeros(struct qfile *f, uint64_t off, uint64_t len,
		      struct qerr *e);
/* fdatasync (a no-op when f->no_sync). */
int qfile_flush(struct qfile *f, struct qerr *e);

/*
 * Deallocate [off, off+len) so it reads as zeros, keeping the file length
 * (fallocate PUNCH_HOLE).  -ENOTSUP when the file system cannot; no
 * message is recorded then, so callers may fall back quietly.
 */
int qfile_punch_hole(struct qfile *f, uint64_t off, uint64_t len,
		     struct qerr *e);
/*
 * Make [off, off+len) read as zeros without writing them (fallocate
 * ZERO_RANGE); the file grows to off+len if it was shorter, as a write
 * would.  -ENOTSUP (no message) when the file system cannot.
 */
int qfile_zero_range(struct qfile *f, uint64_t off, uint64_t len,
		     struct qerr *e);

/*
 * Is off in data or a hole?  Sets *data and *pnum to the length of the run
 * of the same kind starting at off (bounded by the file size).  Falls back
 * to "all data" where the file system has no SEEK_DATA.
 */
int qfile_data_run(struct qfile *f, uint64_t off, bool *data, uint64_t *pnum,
		   struct qerr *e);

#endif
