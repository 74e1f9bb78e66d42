/*
 * qcow2_snapshot.h: internal snapshots of qcow2 images: the snapshot table
 * as it is on disk (qcow2_snapshot.c), and the operations on it: create,
 * apply, delete and a read-only load for reading a snapshot's content
 * (qcow2_snapshot_ops.c), all built on one crash-safe transaction
 * (qcow2_snapshot_txn.c).
 *
 * Spec: QEMU docs/interop/qcow2.txt, "Snapshots".  Crash rule: every
 * operation prepares its new metadata in clusters nothing points at yet,
 * then switches the header's table pointers (L1, refcount table, snapshot
 * table: bytes 24..71, one write) last, so a kill at any point leaves the
 * old image or the new one, with at worst leaked clusters.
 */
#ifndef QIMG_CORE_QCOW2_SNAPSHOT_H
#define QIMG_CORE_QCOW2_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/qcow2.h"

/* qemu-img keeps names in a 256-byte buffer: longer ones are refused. */
#define QCOW2_SNAP_MAX_NAME 255
/* The extra data fields qemu knows: VM state size, disk size, icount. */
#define QCOW2_SNAP_EXTRA_KNOWN 24

/* One snapshot table entry, every field kept (unknown extra bytes too). */
struct qcow2_snap {
	uint64_t l1_offset;
	uint32_t l1_size;
	uint32_t date_sec;
	uint32_t date_nsec;
	uint64_t vm_clock_nsec;
	uint64_t vm_state_size;	/* 64-bit extra field, else the 32-bit one */
	uint64_t disk_size;	/* extra field, else the image's size */
	uint64_t icount;	/* UINT64_MAX: not recorded */
	uint32_t extra_len;	/* extra data size as found on disk */
	uint8_t *extra_unknown;	/* extra bytes past the 24 known ones */
	uint32_t extra_unknown_len;
	char *id;
	char *name;
};

/*
 * Read the snapshot table named by m's header into *out (n entries,
 * malloc'd; free with qcow2_snap_free).  Entries without a disk size get
 * disk_size, those without an icount UINT64_MAX, as qemu reads them.
 * Bounded as qcow2_snapshots_read (count, sizes, end of file).
 */
int qcow2_snap_table_read(struct qfile *f, const struct qcow2_meta *m,
			  uint64_t file_size, uint64_t disk_size,
			  struct qcow2_snap **out, size_t *n, struct qerr *e);
void qcow2_snap_free(struct qcow2_snap *t, size_t n);

/*
 * The serialised table: every entry written as qemu writes it (extra data
 * of at least 24 bytes: VM state size, disk size, icount, then the unknown
 * bytes kept verbatim; each entry 8-byte aligned; the last one unpadded).
 * qcow2_snap_table_size() is the byte length (0 for no entries);
 * qcow2_snap_table_write() fills buf, which holds that many bytes.
 */
uint64_t qcow2_snap_table_size(const struct qcow2_snap *t, size_t n);
void qcow2_snap_table_write(const struct qcow2_snap *t, size_t n,
			    uint8_t *buf);

/*
 * Index of the first snapshot whose id equals id (when id is not NULL)
 * and whose name equals name (when name is not NULL); -1 if none.
 */
long qcow2_snap_find(const struct qcow2_snap *t, size_t n, const char *id,
		     const char *name);

/* qemu's rule for a new ID: the largest numeric ID (strtoul) plus one. */
void qcow2_snap_new_id(const struct qcow2_snap *t, size_t n, char *buf,
		       size_t len);

/*
 * The operations (the qcow2 driver's snapshot entries).  id and name
 * select the snapshot as qcow2_snap_find() does; failures leave a reason
 * in img->err.  An error with an empty message is a plain errno (qemu-img
 * prints those as "-95 (Operation not supported)").
 *
 * create: a new snapshot of the active state named name, with the next ID.
 * apply: the snapshot's state becomes the active one (virtual size too).
 * delete: the snapshot goes, with every cluster only it held.
 * load: on an image opened read-only, reads (img_read, block status) go
 * through the snapshot's tables and img->size is its disk size, until the
 * image is closed; nothing is written.
 * list: the table as struct img_snapshot (as info reports it).
 */
int qcow2_snapshot_create(struct img *img, const char *name);
int qcow2_snapshot_apply(struct img *img, const char *id, const char *name);
int qcow2_snapshot_delete(struct img *img, const char *id, const char *name);
int qcow2_snapshot_load(struct img *img, const char *id, const char *name);
int qcow2_snapshot_list(struct img *img, struct img_snapshot **out,
			size_t *n);

#endif
