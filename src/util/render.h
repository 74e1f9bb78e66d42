/*
 * render.h: qemu-img's human layouts shared by several commands.
 *
 * render_kv() prints a kv tree the way qemu-img prints "Format specific
 * information": one "key: value" line per scalar, keys with '-' shown as
 * ' ', nested objects and arrays on their own "key:" line indented four
 * more spaces, array items as "[N]:", booleans as true/false.
 * render_snapshots() prints the "Snapshot list:" table of info and
 * snapshot -l, with qemu's column widths; render_snapshots_json() their
 * JSON form (info --output=json, snapshot -l --output=json).
 */
#ifndef QIMG_UTIL_RENDER_H
#define QIMG_UTIL_RENDER_H

#include <stddef.h>
#include <stdio.h>

#include "core/img.h"
#include "core/kv.h"
#include "util/json.h"

/* Print the children of obj (an object or array) at indent levels. */
void render_kv(FILE *f, const struct kv *obj, int indent);

/* "Snapshot list:", the column header, one line per snapshot. */
void render_snapshots(FILE *f, const struct img_snapshot *sn, size_t n);

/*
 * The snapshots as qemu-img info --output=json lists them: an array (under
 * key, or a top-level value when key is NULL) of objects whose keys come
 * in qemu 7.2's order.
 */
void render_snapshots_json(struct json *j, const char *key,
			   const struct img_snapshot *sn, size_t n);

#endif
