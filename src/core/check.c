/*
 * check.c: the problem table of `check`, and the one place that turns a
 * detected problem into words, a repair decision and a count.
 *
 * Each row: the class (what it counts as), the repair mode that fixes it
 * (0: no mode does, it is reported and left), the verb style of its line
 * and a template.  The words are qemu-img 7.2's wherever it prints a line
 * for the same problem (including its odd spacing: "ERROR:" vs "ERROR "),
 * so a script reading qemu's diagnostics reads ours; rows qemu has no line
 * for use our own words in the same shape.
 *
 * Templates take the report's numbers and strings: {d0} decimal n[0],
 * {x0} hex without prefix, {#x0} hex as printf's %#llx, {e0} strerror of
 * n[0], {s0} string s[0].
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/img.h"

enum verb {
	V_ERROR,	/* "ERROR" or "Repairing" before the body */
	V_LEAK,		/* "Leaked" or "Repairing" */
	V_PLAIN,	/* the body is the whole line */
	V_TOOL,		/* a line the CLI prefixes with the program name */
};

struct check_row {
	enum check_class cls;
	unsigned fix;		/* enum check_fix bit that repairs it, or 0 */
	enum verb verb;
	const char *fmt;
};

#define E CHECK_FIX_ERRORS
#define L CHECK_FIX_LEAKS

static const struct check_row rows[CHK_NB_CODES] = {
	[CHK_LEAK] = { CHECK_LEAK, L, V_LEAK,
		" cluster {d0} refcount={d1} reference={d2}" },
	[CHK_REF_LOW] = { CHECK_CORRUPTION, E, V_ERROR,
		" cluster {d0} refcount={d1} reference={d2}" },
	[CHK_REF_ZERO] = { CHECK_CORRUPTION, 0, V_ERROR,
		" cluster {d0} refcount={d1} reference={d2}" },
	[CHK_OVERFLOW] = { CHECK_CORRUPTION, 0, V_ERROR,
		": overflow cluster offset=0x{x0}\n"
		"Use qemu-img amend to increase the refcount entry width or "
		"qemu-img convert to create a clean copy if the image cannot "
		"be opened for writing" },
	[CHK_COPIED_L2] = { CHECK_CORRUPTION, E, V_ERROR,
		" OFLAG_COPIED data cluster: l2_entry={x0} refcount={d1}" },
	[CHK_COPIED_L1] = { CHECK_CORRUPTION, E, V_ERROR,
		" OFLAG_COPIED L2 cluster: l1_index={d0} l1_entry={x1} "
		"refcount={d2}" },
	[CHK_L1E_RESERVED] = { CHECK_CORRUPTION, E, V_ERROR,
		" found L1 entry with reserved bits set: {x0}" },
	[CHK_L2_UNALIGNED] = { CHECK_CORRUPTION, 0, V_ERROR,
		" l2_offset={x0}: Table is not cluster aligned; L1 entry "
		"corrupted" },
	[CHK_L2E_RESERVED] = { CHECK_CORRUPTION, E, V_ERROR,
		" found l2 entry with reserved bits set: {x0}" },
	[CHK_DATA_UNALIGNED] = { CHECK_CORRUPTION, 0, V_ERROR,
		" offset={x0}: Data cluster is not properly aligned; L2 entry "
		"corrupted." },
	[CHK_PREALLOC_UNALIGNED] = { CHECK_CORRUPTION, E, V_ERROR,
		" offset={x0}: Preallocated cluster is not properly aligned; "
		"L2 entry corrupted." },
	[CHK_PAST_EOF] = { CHECK_CORRUPTION, E, V_ERROR,
		": counting reference for region exceeding the end of the "
		"file by one cluster or more: offset 0x{x0} size 0x{x1}" },
	[CHK_COMP_COPIED] = { CHECK_CORRUPTION, E, V_ERROR,
		": coffset=0x{x0}: copied flag must never be set for "
		"compressed clusters" },
	[CHK_COMP_DATA_FILE] = { CHECK_CORRUPTION, 0, V_ERROR,
		" compressed cluster {d0} with data file, entry=0x{x1}" },
	[CHK_COMP_BITMAP] = { CHECK_CORRUPTION, 0, V_ERROR,
		" compressed cluster {d0} with non-zero subcluster allocation "
		"bitmap, entry=0x{x1}" },
	[CHK_SC_BITMAP] = { CHECK_CORRUPTION, 0, V_ERROR,
		" offset={x0}: Allocated cluster has corrupted subcluster "
		"allocation bitmap" },
	[CHK_UNALLOC_BITMAP] = { CHECK_CORRUPTION, 0, V_ERROR,
		": Unallocated cluster has non-zero subcluster allocation "
		"map" },
	[CHK_OVERLAP] = { CHECK_NOTE, 0, V_PLAIN,
		"Overlap: cluster {d0} is used by {s0} and by {s1}" },
	[CHK_OVERLAP_ONLY] = { CHECK_CORRUPTION, 0, V_ERROR,
		" cluster {d0} is used by {s0} and by {s1}" },
	[CHK_REFT_RESERVED] = { CHECK_CORRUPTION, 0, V_ERROR,
		" refcount table entry {d0} has reserved bits set" },
	[CHK_REFB_UNALIGNED] = { CHECK_CORRUPTION, 0, V_ERROR,
		" refcount block {d0} is not cluster aligned; refcount table "
		"entry corrupted" },
	[CHK_REFB_OUTSIDE] = { CHECK_CORRUPTION, E, V_ERROR,
		" refcount block {d0} is outside image" },
	[CHK_REFB_RESIZE_FAIL] = { CHECK_NOTE, 0, V_ERROR,
		" could not resize image: {e0}" },
	[CHK_REFB_RESIZE_ERR] = { CHECK_NOTE, 0, V_TOOL,
		"Could not resize file: {e0}" },
	[CHK_REFB_REFCOUNT] = { CHECK_CORRUPTION, 0, V_ERROR,
		" refcount block {d0} refcount={d1}" },
	[CHK_REFB_CORRUPT] = { CHECK_NOTE, 0, V_PLAIN,
		"qcow2: Image is corrupt: Refblock offset {#x0} unaligned "
		"(reftable index: {#x1}); further non-fatal corruption events "
		"will be suppressed" },
	[CHK_REFB_CORRUPT_MARK] = { CHECK_NOTE, 0, V_PLAIN,
		"qcow2: Marking image as corrupt: Refblock offset {#x0} "
		"unaligned (reftable index: {#x1}); further corruption events "
		"will be suppressed" },
	[CHK_GET_REFCOUNT] = { CHECK_ERROR, 0, V_PLAIN,
		"Can't get refcount for cluster {d0}: {e1}" },
	[CHK_SNAP_L1_UNALIGNED] = { CHECK_CORRUPTION, 0, V_ERROR,
		" snapshot {s0} ({s1}) l1_offset={#x0}: L1 table is not "
		"cluster aligned; snapshot table entry corrupted" },
	[CHK_SNAP_L1_TOO_LARGE] = { CHECK_CORRUPTION, 0, V_ERROR,
		" snapshot {s0} ({s1}) l1_size={#x0}: L1 table is too large; "
		"snapshot table entry corrupted" },
	[CHK_SNAP_DATA_FILE] = { CHECK_CORRUPTION, 0, V_ERROR,
		" {d0} snapshots in image with data file" },
	[CHK_SNAP_INCOMPLETE] = { CHECK_CORRUPTION, E, V_ERROR,
		" snapshot table entry {d0} is incomplete" },
	[CHK_SNAP_EXTRA_LARGE] = { CHECK_ERROR, 0, V_TOOL,
		"ERROR failed to read the snapshot table: Too much extra "
		"metadata in snapshot table entry {d0}" },
	[CHK_SNAP_EXTRA_HINT] = { CHECK_NOTE, 0, V_PLAIN,
		"You can force-remove this extra metadata with qemu-img check "
		"-r all" },
	[CHK_SNAP_READ] = { CHECK_ERROR, 0, V_TOOL,
		"ERROR failed to read the snapshot table: {s0}" },
	[CHK_BITMAP_ENTRY] = { CHECK_CORRUPTION, 0, V_ERROR,
		" bitmap '{s0}' table entry {d0} is invalid: {x1}" },
	[CHK_BITMAP_DIR] = { CHECK_CORRUPTION, 0, V_ERROR,
		" bitmap directory is invalid: {s0}" },
	[CHK_IO_L1] = { CHECK_ERROR, 0, V_PLAIN,
		"ERROR: I/O error in check_refcounts_l1" },
	[CHK_IO_L2] = { CHECK_ERROR, 0, V_PLAIN,
		"ERROR: I/O error in check_refcounts_l2" },
	[CHK_REBUILDING] = { CHECK_NOTE, 0, V_PLAIN,
		"Rebuilding refcount structure" },
	[CHK_NEED_REBUILD] = { CHECK_ERROR, 0, V_PLAIN,
		"ERROR need to rebuild refcount structures" },
	[CHK_REBUILD_FAILED] = { CHECK_ERROR, 0, V_TOOL, "ERROR {s0}" },
	[CHK_REBUILT_BROKEN] = { CHECK_NOTE, 0, V_PLAIN,
		"ERROR rebuilt refcount structure is still broken" },
	[CHK_REPAIR_FAILED] = { CHECK_ERROR, 0, V_PLAIN, "ERROR: {s0}" },
	[CHK_DATA_READ] = { CHECK_CORRUPTION, 0, V_ERROR,
		" guest offset 0x{x0} host offset 0x{x1}{s0}: read error: "
		"{e2}" },
	[CHK_DATA_DECOMPRESS] = { CHECK_CORRUPTION, 0, V_ERROR,
		" guest offset 0x{x0} host offset 0x{x1}{s0}: compressed "
		"data does not decompress to a cluster" },
	[CHK_DATA_SIZE] = { CHECK_CORRUPTION, 0, V_ERROR,
		" guest offset 0x{x0} host offset 0x{x1}{s0}: compressed "
		"data decompresses to more than one cluster" },
};

#undef E
#undef L

/* Append to buf (len bytes, pos used), always NUL-terminated. */
static void put(char *buf, size_t len, size_t *pos, const char *s, size_t n)
{
	if (*pos + 1 >= len)
		return;
	if (n > len - 1 - *pos)
		n = len - 1 - *pos;
	memcpy(buf + *pos, s, n);
	*pos += n;
	buf[*pos] = '\0';
}

/* One {..} placeholder at p (after the brace); returns the end. */
static const char *field(const char *p, const struct check_args *a,
			 char *buf, size_t len, size_t *pos)
{
	char tmp[64];
	const char *end = strchr(p, '}');
	const char *s = tmp;
	unsigned idx;

	if (!end)
		return p + strlen(p);
	idx = (unsigned)(end[-1] - '0') & 3;
	tmp[0] = '\0';
	if (p[0] == 'd')
		snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)a->n[idx]);
	else if (p[0] == 'x')
		snprintf(tmp, sizeof(tmp), "%llx", (unsigned long long)a->n[idx]);
	else if (p[0] == '#')
		snprintf(tmp, sizeof(tmp), "%#llx", (unsigned long long)a->n[idx]);
	else if (p[0] == 'e')
		s = strerror((int)a->n[idx]);
	else if (p[0] == 's')
		s = a->s[idx & 1] ? a->s[idx & 1] : "";
	put(buf, len, pos, s, strlen(s));
	return end + 1;
}

void check_format(enum check_code code, bool repairing,
		  const struct check_args *a, char *buf, size_t len)
{
	const struct check_row *row = &rows[code];
	const char *p = row->fmt ? row->fmt : "";
	size_t pos = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	if (row->verb == V_ERROR)
		put(buf, len, &pos, repairing ? "Repairing" : "ERROR",
		    repairing ? 9 : 5);
	else if (row->verb == V_LEAK)
		put(buf, len, &pos, repairing ? "Repairing" : "Leaked",
		    repairing ? 9 : 6);
	while (*p) {
		const char *brace = strchr(p, '{');
		size_t n = brace ? (size_t)(brace - p) : strlen(p);

		put(buf, len, &pos, p, n);
		p += n;
		if (*p == '{')
			p = field(p + 1, a, buf, len, &pos);
	}
}

enum check_class check_code_class(enum check_code code)
{
	return rows[code].cls;
}

static void keep_line(struct check_ctx *c, const char *text)
{
	struct check_result *r = c->r;
	size_t cap = c->o->keep ? c->o->keep : CHECK_KEEP_DEFAULT;
	char **v, *s;

	if (r->nkept >= cap) {
		r->kept_dropped++;
		return;
	}
	v = realloc(r->kept, (r->nkept + 1) * sizeof(*v));
	s = strdup(text);
	if (!v || !s) {
		if (v)
			r->kept = v;
		free(s);
		r->kept_dropped++;
		return;
	}
	r->kept = v;
	r->kept[r->nkept++] = s;
}

bool check_problem(struct check_ctx *c, enum check_code code,
		   const struct check_args *a, unsigned flags)
{
	static const struct check_args none;
	const struct check_row *row = &rows[code];
	struct check_problem p = { .code = code, .cls = row->cls,
				   .tool = row->verb == V_TOOL };
	char text[1024];

	if (flags & CHECK_FORCE_FIX)
		p.repairing = true;
	else
		p.repairing = !(flags & CHECK_NOFIX) && (row->fix & c->mode);
	check_format(code, p.repairing, a ? a : &none, text, sizeof(text));
	p.text = text;
	switch (row->cls) {
	case CHECK_CORRUPTION:
		c->r->corruptions++;
		break;
	case CHECK_LEAK:
		c->r->leaks++;
		break;
	case CHECK_ERROR:
		c->r->check_errors++;
		break;
	case CHECK_NOTE:
		break;
	}
	if (c->o->report)
		c->o->report(c->o->opaque, &p);
	else
		keep_line(c, text);
	return p.repairing;
}

void check_repaired(struct check_ctx *c, enum check_code code)
{
	struct check_result *r = c->r;

	if (rows[code].cls == CHECK_CORRUPTION) {
		if (r->corruptions)
			r->corruptions--;
		r->corruptions_fixed++;
	} else if (rows[code].cls == CHECK_LEAK) {
		if (r->leaks)
			r->leaks--;
		r->leaks_fixed++;
	}
}

void check_bad_data(struct check_ctx *c, const struct check_bad_data *b)
{
	struct check_result *r = c->r;
	size_t cap = c->o->keep ? c->o->keep : CHECK_KEEP_DEFAULT;
	struct check_bad_data *v;
	char *snap = NULL;

	if (r->nbad >= cap) {
		r->bad_dropped++;
		return;
	}
	v = realloc(r->bad, (r->nbad + 1) * sizeof(*v));
	if (v)
		r->bad = v;
	if (b->snapshot)
		snap = strdup(b->snapshot);
	if (!v || (b->snapshot && !snap)) {
		free(snap);
		r->bad_dropped++;
		return;
	}
	r->bad[r->nbad] = *b;
	r->bad[r->nbad].snapshot = snap;
	r->nbad++;
}

int check_image(struct img *img, const struct check_opts *o,
		struct check_result *r)
{
	memset(r, 0, sizeof(*r));
	if (!img->drv->check)
		return -ENOTSUP;
	return img->drv->check(img, o, r);
}

void check_result_free(struct check_result *r)
{
	for (size_t i = 0; i < r->nkept; i++)
		free(r->kept[i]);
	free(r->kept);
	for (size_t i = 0; i < r->nbad; i++)
		free((char *)r->bad[i].snapshot);
	free(r->bad);
	memset(r, 0, sizeof(*r));
}
