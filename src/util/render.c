/*
 * render.c: qemu-img's human layouts (see render.h).
 *
 * The snapshot line is qemu 7.2's: "%-9s %-16s %8s%20s%13s%11s" for id,
 * name, VM state size (human), date (local time), VM clock
 * (hours:mm:ss.mmm, hours unbounded) and icount (blank when not recorded).
 * qemu copies id and name into 128- and 256-byte buffers first, so longer
 * ones are cut to 127 and 255 bytes there; we cut them the same way.
 * Columns are not padded beyond their width: long values push the rest of
 * the line right, as in qemu.
 */
#include <inttypes.h>
#include <time.h>

#include "util/render.h"
#include "util/size.h"

#define SNAP_ID_SHOWN 127
#define SNAP_NAME_SHOWN 255

static void render_scalar(FILE *f, const struct kv *n)
{
	switch (n->type) {
	case KV_STR:
		fputs(n->v.s, f);
		break;
	case KV_INT:
		fprintf(f, "%" PRId64, n->v.i);
		break;
	case KV_BOOL:
		fputs(n->v.b ? "true" : "false", f);
		break;
	default:
		break;
	}
}

void render_kv(FILE *f, const struct kv *obj, int indent)
{
	int i = 0;

	for (const struct kv *c = obj->child; c; c = c->next, i++) {
		bool composite = c->type == KV_OBJ || c->type == KV_ARR;

		fprintf(f, "%*s", indent * 4, "");
		if (obj->type == KV_ARR) {
			fprintf(f, "[%d]:", i);
		} else {
			for (const char *k = c->key; *k; k++)
				fputc(*k == '-' ? ' ' : *k, f);
			fputc(':', f);
		}
		if (composite) {
			fputc('\n', f);
			render_kv(f, c, indent + 1);
		} else {
			fputc(' ', f);
			render_scalar(f, c);
			fputc('\n', f);
		}
	}
}

static void render_snapshot(FILE *f, const struct img_snapshot *sn)
{
	char size[32], date[32] = "", clock[48], icount[24] = "";
	time_t t = (time_t)sn->date_sec;
	uint64_t secs = sn->vm_clock_nsec / 1000000000;
	struct tm tm;

	size_human(size, sizeof(size), sn->vm_state_size);
	if (localtime_r(&t, &tm))
		strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(clock, sizeof(clock), "%02d:%02d:%02d.%03d",
		 (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60),
		 (int)(sn->vm_clock_nsec / 1000000 % 1000));
	if (sn->has_icount)
		snprintf(icount, sizeof(icount), "%" PRId64,
			 (int64_t)sn->icount);
	fprintf(f, "%-9.*s %-16.*s %8s%20s%13s%11s\n", SNAP_ID_SHOWN, sn->id,
		SNAP_NAME_SHOWN, sn->name, size, date, clock, icount);
}

void render_snapshots(FILE *f, const struct img_snapshot *sn, size_t n)
{
	fputs("Snapshot list:\n", f);
	fprintf(f, "%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE",
		"DATE", "VM CLOCK", "ICOUNT");
	for (size_t i = 0; i < n; i++)
		render_snapshot(f, &sn[i]);
}

void render_snapshots_json(struct json *j, const char *key,
			   const struct img_snapshot *sn, size_t n)
{
	json_arr_begin(j, key);
	for (size_t i = 0; i < n; i++) {
		json_obj_begin(j, NULL);
		if (sn[i].has_icount)
			json_int(j, "icount", (int64_t)sn[i].icount);
		json_int(j, "vm-clock-nsec",
			 (int64_t)(sn[i].vm_clock_nsec % 1000000000));
		json_str(j, "name", sn[i].name);
		json_int(j, "date-sec", sn[i].date_sec);
		json_int(j, "date-nsec", sn[i].date_nsec);
		json_int(j, "vm-clock-sec",
			 (int64_t)(sn[i].vm_clock_nsec / 1000000000));
		json_str(j, "id", sn[i].id);
		json_int(j, "vm-state-size", (int64_t)sn[i].vm_state_size);
		json_obj_end(j);
	}
	json_arr_end(j);
}
