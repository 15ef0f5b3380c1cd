/*
 * Offline grow: give a volume the space a LUN gained after mkfs.
 *
 * Only the file-block area can grow: it is the last area, and its objects
 * run up to the unused tail before the backup header.  The cluster
 * headers of that area sit in one table before its first object, and mkfs
 * padded the table to the object alignment (a file block), so the table
 * has room for more headers than mkfs wrote; that room, not the LUN, is
 * the limit (vol_grow_result.max_*).  Objects per cluster never change:
 * object j belongs to cluster j / per_cluster for the volume's lifetime.
 * The inode, pointer-block and small-block areas keep their mkfs size.
 *
 * Write order (docs/SPEC.md, "Growing a volume"), a flush after each step:
 *   1. the new cluster headers, in the table's unused room: no header of
 *      the old geometry reaches them;
 *   2. the backup header of the new geometry at the LUN's new end, where
 *      nothing of the old geometry lies either;
 *   3. the primary header: the commit point.  Every byte it changes is
 *      in its first sector (the rest is vh_reserved, kept as read), so a
 *      write torn anywhere leaves the old header or the new one;
 *   4. the old last cluster's header, if it was partial, now counting the
 *      objects the new geometry gives it (vol_res_cluster_resize: one
 *      sector changes).  Until then the engine and fsck read it as the
 *      geometry says (vol_rc_grow_cut), and a mount, fsck -y or vmfs grow
 *      rewrites it;
 *   5. the old backup header, now inside free file-block space, zeroed so
 *      that no stale copy of the old geometry is left to be found.
 */
#include <errno.h>
#include <string.h>
#include "vol_int.h"

void vol_grow_max(const struct vol_geom *g, uint64_t *max_file_blocks,
		  uint64_t *max_size_bytes)
{
	const struct vol_res_geom *f = &g->res[VMFS_RES_FILE];
	uint64_t nc = (f->obj_offset - f->hdr_offset) / VMFS_MD_BLOCK_SIZE;
	uint64_t n, lim;

	if (nc > UINT32_MAX)
		nc = UINT32_MAX;
	n = nc * f->per_cluster;
	/* No volume goes past what the LUN can be addressed with (a header
	 * read without a LUN size to check against may say anything). */
	lim = f->obj_offset < VOL_MAX_SIZE_BYTES - VMFS_MD_BLOCK_SIZE ?
	      (VOL_MAX_SIZE_BYTES - VMFS_MD_BLOCK_SIZE - f->obj_offset) /
	      g->file_block_size : 0;
	if (n > lim)
		n = lim;
	*max_file_blocks = n;
	*max_size_bytes = f->obj_offset + n * g->file_block_size +
			  VMFS_MD_BLOCK_SIZE;
}

int vol_grow_layout(const struct vol_geom *old, uint64_t lun_bytes,
		    struct vol_geom *g, struct vol_grow_result *r)
{
	const struct vol_res_geom *of = &old->res[VMFS_RES_FILE];
	uint64_t fbs = old->file_block_size;
	uint64_t end = lun_bytes & ~(uint64_t)(VMFS_MD_BLOCK_SIZE - 1);
	uint64_t room, count;

	r->lun_bytes = lun_bytes;
	r->old_size_bytes = r->new_size_bytes = old->size_bytes;
	r->old_file_blocks = r->new_file_blocks = of->count;
	r->file_block_size = old->file_block_size;
	vol_grow_max(old, &r->max_file_blocks, &r->max_size_bytes);
	if (end < old->size_bytes)
		return -VMFS_E_LUN_SHRUNK;
	room = end - VMFS_MD_BLOCK_SIZE > of->obj_offset ?
	       (end - VMFS_MD_BLOCK_SIZE - of->obj_offset) / fbs : 0;
	count = room < r->max_file_blocks ? room : r->max_file_blocks;
	r->capped = room > count;
	if (count <= of->count)
		return r->capped ? -VMFS_E_GROW_FULL : -VMFS_E_NOT_GROWN;

	/*
	 * The backup goes to the LUN's end even when the table caps the
	 * file blocks: readers look for it there when the primary is bad.
	 */
	*g = *old;
	g->generation = old->generation + 1;
	g->size_bytes = end;
	g->backup_offset = end - VMFS_MD_BLOCK_SIZE;
	g->res[VMFS_RES_FILE].count = count;
	g->res[VMFS_RES_FILE].nclusters =
		(uint32_t)((count + of->per_cluster - 1) / of->per_cluster);
	r->new_size_bytes = g->size_bytes;
	r->new_file_blocks = count;
	return vol_geom_check(g, lun_bytes) ? -VMFS_E_GEOMETRY : 0;
}

/*
 * The volume's geometry, by the same rules as a mount, after telling a
 * LUN that shrank under its volume from damage: a primary that verifies
 * and describes a possible volume larger than the LUN.
 */
static int grow_geom_read(struct lun *lun, struct vol_geom *g,
			  struct vol_grow_result *r)
{
	uint32_t magic;
	int which = 0, ret;

	if (!vol_header_read_at(lun, 0, UINT64_MAX, g, &magic) &&
	    g->size_bytes > r->lun_bytes) {
		r->old_size_bytes = r->new_size_bytes = g->size_bytes;
		return -VMFS_E_LUN_SHRUNK;
	}
	ret = vol_geom_read(lun, g, &which, NULL);
	if (!ret && which) {
		VLOG(LOG_ERR, "%s: the primary volume header is damaged; run 'vmfs fsck -y' before growing the volume",
		     lun_name(lun));
		ret = -VMFS_E_CORRUPT;
	}
	return ret;
}

static int grow_step(struct lun *lun, int ret, const char *what)
{
	if (!ret)
		ret = lun_flush(lun);
	if (ret)
		VLOG(LOG_ERR, "%s: grow: %s: %s", lun_name(lun), what,
		     vmfs_strerror(ret));
	return ret;
}

/* Steps 4 and 5 of the write order; cut_cl as in struct rarea. */
static int grow_finish(struct lun *lun, const struct vol_geom *old,
		       const struct vol_geom *g, uint32_t cut_cl)
{
	const struct vol_res_geom *of = &old->res[VMFS_RES_FILE];
	int ret = 0;

	if (of->count % of->per_cluster)
		ret = vol_res_cluster_resize(lun, g, VMFS_RES_FILE,
					     of->nclusters - 1);
	if (!ret && cut_cl && cut_cl != of->nclusters)
		ret = vol_res_cluster_resize(lun, g, VMFS_RES_FILE, cut_cl - 1);
	if (!ret && old->backup_offset != g->backup_offset)
		ret = lun_zero_range(lun, old->backup_offset, VMFS_MD_BLOCK_SIZE);
	return grow_step(lun, ret, "completing the last old cluster");
}

int vol_grow(struct lun *lun, const struct vol_grow_opts *o,
	     struct vol_grow_result *r)
{
	struct vmfs_volume *primary;
	struct vol_geom old, g;
	struct vol *v;
	uint32_t cut_cl;
	int ret;

	memset(r, 0, sizeof(*r));
	r->lun_bytes = lun_size(lun);
	ret = grow_geom_read(lun, &old, r);
	if (ret)
		return ret;
	r->old_size_bytes = r->new_size_bytes = old.size_bytes;
	/* Everything a mount would check: clean journals, every cluster
	 * header, the root.  Nothing is written. */
	ret = vol_open(lun, VOL_RDONLY, &v);
	if (ret)
		return ret;
	old = v->g;
	cut_cl = v->res[VMFS_RES_FILE].cut_cl;
	vol_close(v);

	ret = vol_grow_layout(&old, r->lun_bytes, &g, r);
	if (ret == -VMFS_E_NOT_GROWN || ret == -VMFS_E_GROW_FULL) {
		if (!cut_cl)
			return ret;
		/* Only an earlier grow's step 4 to do. */
		r->finished = true;
		return o->dry_run ? 0 : grow_finish(lun, &old, &old, cut_cl);
	}
	if (ret || o->dry_run)
		return ret;

	primary = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	if (!primary)
		return -ENOMEM;
	ret = lun_read(lun, primary, VMFS_MD_BLOCK_SIZE, 0);
	if (!ret)
		ret = grow_step(lun, vol_res_cluster_format(lun, &g, VMFS_RES_FILE,
							    old.res[VMFS_RES_FILE].nclusters,
							    NULL, 0),
				"writing the new cluster headers");
	if (!ret)
		ret = grow_step(lun, vol_header_write(lun, &g, g.backup_offset,
						      primary),
				"writing the backup header at the new end");
	if (!ret)
		ret = grow_step(lun, vol_header_write(lun, &g, 0, primary),
				"writing the primary header");
	lun_buf_free(primary);
	if (!ret) {
		VLOG(LOG_NOTICE, "%s: grown from %llu to %llu bytes (%llu to %llu file blocks)",
		     lun_name(lun), (unsigned long long)old.size_bytes,
		     (unsigned long long)g.size_bytes,
		     (unsigned long long)old.res[VMFS_RES_FILE].count,
		     (unsigned long long)g.res[VMFS_RES_FILE].count);
		r->finished = cut_cl != 0;
		ret = grow_finish(lun, &old, &g, cut_cl);
	}
	return ret;
}
