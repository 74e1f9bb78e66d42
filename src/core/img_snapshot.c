/*
 * img_snapshot.c: internal snapshots through the driver vtable, with the
 * selection rules of qemu-img 7.2 (see img.h): apply and convert -l try a
 * string as an ID first and then as a name, delete matches names only.
 * Drivers then get an exact (id, name) pair, so the rules live here once.
 *
 * The errors for a format without snapshots are qemu's: create fails with
 * a plain ENOTSUP, apply with "Block driver does not support snapshots",
 * delete finds nothing, load names the format.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/img.h"

int img_snapshot_list(struct img *img, struct img_snapshot **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (!img->drv->snapshot_list)
		return 0;
	return img->drv->snapshot_list(img, out, n);
}

void img_snapshot_list_free(struct img_snapshot *sn, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(sn[i].id);
		free(sn[i].name);
	}
	free(sn);
}

/* Index of the first snapshot with this id (or name); -1 if none. */
static long find(const struct img_snapshot *sn, size_t n, const char *id,
		 const char *name)
{
	for (size_t i = 0; i < n; i++)
		if ((!id || strcmp(sn[i].id, id) == 0) &&
		    (!name || strcmp(sn[i].name, name) == 0))
			return (long)i;
	return -1;
}

typedef int (*snap_fn)(struct img *img, const char *id, const char *name);

/*
 * Run fn on the snapshot that id_or_name selects: by ID first when
 * by_id, else (or then) by name.  -ENOENT with not_found when none.
 */
static int select_run(struct img *img, const char *id_or_name, bool by_id,
		      snap_fn fn, const char *not_found)
{
	struct img_snapshot *sn;
	size_t n;
	long k = -1;
	int ret = img_snapshot_list(img, &sn, &n);

	if (ret < 0)
		return ret;
	if (by_id)
		k = find(sn, n, id_or_name, NULL);
	if (k < 0)
		k = find(sn, n, NULL, id_or_name);
	if (k < 0)
		ret = qerr_set(&img->err, -ENOENT, "%s", not_found);
	else
		ret = fn(img, sn[k].id, sn[k].name);
	img_snapshot_list_free(sn, n);
	return ret;
}

int img_snapshot_create(struct img *img, const char *name)
{
	if (!img->drv->snapshot_create) {
		img->err.code = -ENOTSUP;
		img->err.msg[0] = '\0';
		return -ENOTSUP;
	}
	return img->drv->snapshot_create(img, name);
}

int img_snapshot_apply(struct img *img, const char *id_or_name)
{
	if (!img->drv->snapshot_apply)
		return qerr_set(&img->err, -ENOTSUP,
				"Block driver does not support snapshots");
	return select_run(img, id_or_name, true, img->drv->snapshot_apply,
			  "Failed to load snapshot: No such file or directory");
}

int img_snapshot_delete(struct img *img, const char *name)
{
	if (!img->drv->snapshot_delete)
		return qerr_set(&img->err, -ENOENT, "snapshot not found");
	return select_run(img, name, false, img->drv->snapshot_delete,
			  "snapshot not found");
}

static int load_unsupported(struct img *img)
{
	return qerr_set(&img->err, -ENOTSUP, "Block format '%s' used by "
			"device '' does not support temporarily loading "
			"internal snapshots", img->drv->name);
}

int img_snapshot_load(struct img *img, const char *id, const char *name)
{
	if (!img->drv->snapshot_load)
		return load_unsupported(img);
	return img->drv->snapshot_load(img, id, name);
}

int img_snapshot_load_any(struct img *img, const char *id_or_name)
{
	if (!img->drv->snapshot_load)
		return load_unsupported(img);
	return select_run(img, id_or_name, true, img->drv->snapshot_load,
			  "Can't find snapshot");
}
