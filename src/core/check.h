/*
 * check.h: image consistency checks (qimg check), format independent.
 *
 * A check is a set of passes run by the format driver (qcow2_check.c);
 * the passes detect, and report each inconsistency they find as a
 * problem: a code naming a row of the problem table (check.c), with a few
 * numbers and strings.  The table says, for each kind of problem, its
 * class (corruption, leak, internal error, note), the words (qemu-img
 * 7.2's where it has them) and which repair mode fixes it.  One function,
 * check_problem(), turns a report into a line of text, decides whether the
 * repair is attempted and counts it; the result is a struct check_result
 * the CLI renders as text or JSON.  The core never prints: lines reach the
 * caller through a callback, or are kept (a bounded number) in the result.
 *
 * Counting follows qemu-img: a problem is counted when reported, and moved
 * to the *_fixed counters by check_repaired() when its repair succeeded.
 */
#ifndef QIMG_CORE_CHECK_H
#define QIMG_CORE_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct img;

/* Repair modes (qemu-img check -r leaks = LEAKS, -r all = LEAKS|ERRORS). */
enum check_fix {
	CHECK_FIX_LEAKS = 1 << 0,
	CHECK_FIX_ERRORS = 1 << 1,
};

enum check_class {
	CHECK_CORRUPTION,	/* counted in corruptions: exit 2 */
	CHECK_LEAK,		/* counted in leaks: exit 3 */
	CHECK_ERROR,		/* counted in check_errors: exit 1 */
	CHECK_NOTE,		/* a line with no count (progress, detail) */
};

/* Every kind of problem a check reports: one row each in check.c. */
enum check_code {
	/* refcount comparison */
	CHK_LEAK,		/* stored refcount above the references */
	CHK_REF_LOW,		/* stored refcount below them, not zero */
	CHK_REF_ZERO,		/* used cluster with refcount 0 */
	CHK_OVERFLOW,		/* more references than the width holds */
	CHK_COPIED_L2,		/* OFLAG_COPIED of a data cluster wrong */
	CHK_COPIED_L1,		/* OFLAG_COPIED of an L2 table wrong */
	/* L1 and L2 tables */
	CHK_L1E_RESERVED,
	CHK_L2_UNALIGNED,
	CHK_L2E_RESERVED,
	CHK_DATA_UNALIGNED,
	CHK_PREALLOC_UNALIGNED,
	CHK_PAST_EOF,		/* a reference one cluster or more past EOF */
	CHK_COMP_COPIED,
	CHK_COMP_DATA_FILE,
	CHK_COMP_BITMAP,
	CHK_SC_BITMAP,
	CHK_UNALLOC_BITMAP,
	CHK_OVERLAP,		/* metadata sharing a cluster (note) */
	CHK_OVERLAP_ONLY,	/* the same, when nothing else shows it */
	/* refcount table and blocks */
	CHK_REFT_RESERVED,
	CHK_REFB_UNALIGNED,
	CHK_REFB_OUTSIDE,
	CHK_REFB_RESIZE_FAIL,
	CHK_REFB_RESIZE_ERR,	/* the tool's own line before it */
	CHK_REFB_REFCOUNT,
	CHK_REFB_CORRUPT,	/* qemu's one-time "Image is corrupt" line */
	CHK_REFB_CORRUPT_MARK,	/* the same, when the corrupt bit is set */
	CHK_GET_REFCOUNT,	/* a refcount could not be read */
	/* snapshots and bitmaps */
	CHK_SNAP_L1_UNALIGNED,
	CHK_SNAP_L1_TOO_LARGE,
	CHK_SNAP_DATA_FILE,
	CHK_SNAP_INCOMPLETE,
	CHK_SNAP_EXTRA_LARGE,
	CHK_SNAP_EXTRA_HINT,
	CHK_SNAP_READ,
	CHK_BITMAP_ENTRY,
	CHK_BITMAP_DIR,
	/* whole-check events */
	CHK_IO_L1,
	CHK_IO_L2,
	CHK_REBUILDING,
	CHK_NEED_REBUILD,
	CHK_REBUILD_FAILED,
	CHK_REBUILT_BROKEN,
	CHK_REPAIR_FAILED,
	/* --data */
	CHK_DATA_READ,
	CHK_DATA_DECOMPRESS,
	CHK_DATA_SIZE,
	CHK_NB_CODES
};

/* What a report carries: up to four numbers and two strings. */
struct check_args {
	uint64_t n[4];
	const char *s[2];
};

/* One problem as delivered to the caller. */
struct check_problem {
	enum check_code code;
	enum check_class cls;
	bool repairing;		/* the line says "Repairing" */
	bool tool;		/* an error of the tool: the CLI prefixes it
				   with its name, as qemu's error_report */
	const char *text;	/* the full line, without newline */
};

/* A cluster --data could not read back (guest offset in its layer). */
struct check_bad_data {
	uint64_t guest_offset;
	uint64_t host_offset;
	const char *snapshot;	/* snapshot id, NULL for the active layer */
	enum check_code code;	/* CHK_DATA_READ/DECOMPRESS/SIZE */
};

/* Kept problems and bad clusters: at most this many unless asked. */
#define CHECK_KEEP_DEFAULT 1000

struct check_opts {
	unsigned fix;		/* enum check_fix bits */
	bool data;		/* also read back every allocated cluster */
	/* Called for each problem in order; NULL: keep them instead. */
	void (*report)(void *opaque, const struct check_problem *p);
	void *opaque;
	size_t keep;		/* problems kept without a callback */
};

struct check_result {
	uint64_t corruptions, leaks, check_errors;
	uint64_t corruptions_fixed, leaks_fixed;
	uint64_t image_end_offset;
	uint64_t total_clusters, allocated_clusters;
	uint64_t fragmented_clusters, compressed_clusters;
	/* Problem lines kept (only without a callback), and those left out. */
	char **kept;
	size_t nkept;
	uint64_t kept_dropped;
	/* --data: clusters that could not be read back. */
	bool data_checked;
	struct check_bad_data *bad;
	size_t nbad;
	uint64_t bad_dropped;
	/* Why the check could not complete (with a negative return). */
	struct qerr err;
};

/*
 * Run the format's check on img (opened read-write when o->fix asks for
 * repairs).  Returns 0 when the check ran to the end (r says what it
 * found), -ENOTSUP when the format has no check, or another negative
 * errno when it could not complete (r->err says why; the counts gathered
 * so far stay in r).  r is the caller's, freed with check_result_free().
 */
int check_image(struct img *img, const struct check_opts *o,
		struct check_result *r);
void check_result_free(struct check_result *r);

/* ---- for the format drivers' passes ---- */

/* The reporting context one check run carries around. */
struct check_ctx {
	const struct check_opts *o;
	struct check_result *r;
	unsigned mode;		/* the fix bits of this run */
};

/* Report flags. */
enum check_report_flags {
	CHECK_NOFIX = 1 << 0,	/* this instance cannot be repaired */
	CHECK_FORCE_FIX = 1 << 1, /* repair whatever the row says */
};

/*
 * Report one problem: format its line from the row of code and a, count
 * it by its class, hand it to the callback (or keep it).  Returns true
 * when the caller should repair it now: the mode of this run includes the
 * row's repair level and flags has no CHECK_NOFIX (CHECK_FORCE_FIX: the
 * caller has decided, as for COPIED under -r leaks).
 */
bool check_problem(struct check_ctx *c, enum check_code code,
		   const struct check_args *a, unsigned flags);
/* The repair of a reported problem succeeded: count it as fixed. */
void check_repaired(struct check_ctx *c, enum check_code code);
/* The class of a code (from the table). */
enum check_class check_code_class(enum check_code code);
/* Format the line of code with a into buf (for tests and reports). */
void check_format(enum check_code code, bool repairing,
		  const struct check_args *a, char *buf, size_t len);
/* Record a bad cluster for --data (bounded by o->keep). */
void check_bad_data(struct check_ctx *c, const struct check_bad_data *b);

#endif
