/*
 * Grow: give a volume the space a LUN gained after mkfs, offline
 * (vol_grow: nobody has it mounted) or online (vol_grow_online, at the end
 * of this file: a mounting host, under the volume lock, with the same
 * write order; other hosts take the new geometry in vol_geom_refresh).
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

/* Steps 1 to 3 of the write order: the commit. */
static int grow_commit(struct lun *lun, const struct vol_geom *old,
		       const struct vol_geom *g)
{
	struct vmfs_volume *primary = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	int ret;

	if (!primary)
		return -ENOMEM;
	ret = lun_read(lun, primary, VMFS_MD_BLOCK_SIZE, 0);
	if (!ret)
		ret = grow_step(lun, vol_res_cluster_format(lun, g, VMFS_RES_FILE,
							    old->res[VMFS_RES_FILE].nclusters,
							    NULL, 0),
				"writing the new cluster headers");
	if (!ret)
		ret = grow_step(lun, vol_header_write(lun, g, g->backup_offset,
						      primary),
				"writing the backup header at the new end");
	if (!ret)
		ret = grow_step(lun, vol_header_write(lun, g, 0, primary),
				"writing the primary header");
	lun_buf_free(primary);
	return ret;
}

static void grow_log(struct lun *lun, const struct vol_geom *old,
		     const struct vol_geom *g, const char *how)
{
	VLOG(LOG_NOTICE, "%s: %s from %llu to %llu bytes (%llu to %llu file blocks)",
	     lun_name(lun), how, (unsigned long long)old->size_bytes,
	     (unsigned long long)g->size_bytes,
	     (unsigned long long)old->res[VMFS_RES_FILE].count,
	     (unsigned long long)g->res[VMFS_RES_FILE].count);
}

int vol_grow(struct lun *lun, const struct vol_grow_opts *o,
	     struct vol_grow_result *r)
{
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

	ret = grow_commit(lun, &old, &g);
	if (!ret) {
		grow_log(lun, &old, &g, "grown");
		r->finished = cut_cl != 0;
		ret = grow_finish(lun, &old, &g, cut_cl);
	}
	return ret;
}

/* ---- online ------------------------------------------------------------ */

/* The same area; count_too: of the same size as well. */
static bool res_geom_same(const struct vol_res_geom *a,
			  const struct vol_res_geom *b, bool count_too)
{
	return a->hdr_offset == b->hdr_offset && a->obj_offset == b->obj_offset &&
	       a->obj_size == b->obj_size && a->per_cluster == b->per_cluster &&
	       (!count_too || (a->count == b->count &&
			       a->nclusters == b->nclusters));
}

/*
 * Is g what a grow makes of cur (only the size, the backup's place, the
 * generation and the file-block count changed, and grew)?  Anything else
 * is not a grow: a host keeps its geometry and says so.
 */
static bool geom_is_grown(const struct vol_geom *cur, const struct vol_geom *g)
{
	if (g->size_bytes < cur->size_bytes ||
	    g->res[VMFS_RES_FILE].count < cur->res[VMFS_RES_FILE].count ||
	    memcmp(g->uuid, cur->uuid, sizeof(g->uuid)) ||
	    memcmp(g->label, cur->label, sizeof(g->label)) ||
	    g->major != cur->major || g->minor != cur->minor ||
	    g->ctime_ns != cur->ctime_ns || g->sector_size != cur->sector_size ||
	    g->md_block_size != cur->md_block_size ||
	    g->file_block_size != cur->file_block_size ||
	    g->small_block_size != cur->small_block_size ||
	    g->max_hosts != cur->max_hosts || g->flags != cur->flags ||
	    g->journal_size_bytes != cur->journal_size_bytes ||
	    g->hb_offset != cur->hb_offset ||
	    g->journal_offset != cur->journal_offset ||
	    g->root_ino != cur->root_ino || g->lostfound_ino != cur->lostfound_ino)
		return false;
	for (int t = 0; t < VMFS_RES_NTYPES; t++)
		if (!res_geom_same(&g->res[t], &cur->res[t], t != VMFS_RES_FILE))
			return false;
	return true;
}

/* Take g (geom_is_grown) in memory; alloc_lock held.  Only the fields a
 * grow changes are stored, one by one: readers outside alloc_lock
 * (vol_res_index) see each either old or new, and either is safe. */
static int geom_take(struct vol *v, const struct vol_geom *g)
{
	int ret = vol_res_regeom(v, g);

	if (ret)
		return ret;
	v->g.res[VMFS_RES_FILE].nclusters = g->res[VMFS_RES_FILE].nclusters;
	v->g.res[VMFS_RES_FILE].count = g->res[VMFS_RES_FILE].count;
	v->g.backup_offset = g->backup_offset;
	v->g.size_bytes = g->size_bytes;
	v->g.generation = g->generation;
	return 0;
}

/* The primary header as on disk now, checked against the LUN as large
 * as it is now. */
static int geom_read_primary(struct vol *v, struct vol_geom *g)
{
	uint32_t magic;
	int ret;

	ret = vol_header_read_at(v->lun, 0, UINT64_MAX, g, &magic);
	if (ret || g->generation == v->g.generation)
		return ret;
	ret = lun_size_refresh(v->lun, NULL);
	if (ret && ret != -EOPNOTSUPP)
		return ret;
	return g->size_bytes > lun_size(v->lun) ? -VMFS_E_LUN_SHRUNK : 0;
}

int vol_geom_refresh(struct vol *v)
{
	struct vol_geom g, old;
	int ret;

	if (vol_is_rdonly(v) || vol_fenced(v))
		return 0;
	ret = geom_read_primary(v, &g);
	if (ret || g.generation <= v->g.generation)
		return ret;
	pthread_mutex_lock(&v->alloc_lock);
	old = v->g;
	if (g.generation <= old.generation) {
		ret = 0;
	} else if (!geom_is_grown(&old, &g)) {
		ret = -VMFS_E_GEOMETRY;
	} else {
		ret = geom_take(v, &g);
		ret = ret ? ret : 1;
	}
	pthread_mutex_unlock(&v->alloc_lock);
	if (ret == 1)
		grow_log(v->lun, &old, &g, "another host grew the volume");
	else if (ret && !v->geom_warned) {
		v->geom_warned = true;
		VLOG(LOG_ERR, "%s: the volume header changed (generation %llu to %llu) in a way a grow does not: %s; this host keeps the geometry it mounted, unmount and run 'vmfs fsck -n'",
		     lun_name(v->lun), (unsigned long long)old.generation,
		     (unsigned long long)g.generation, vmfs_strerror(ret));
	}
	return ret;
}

/*
 * Online grow: the same three writes up to the commit as offline, then the
 * new geometry in memory, then the last old cluster's header and the old
 * backup through the journal and under their cluster locks
 * (vol_res_grow_finish).  Other hosts read the primary header at their
 * next tick, or before they call an area full (vol_geom_refresh).
 */
static int grow_online_locked(struct vol *v, const struct vol_grow_opts *o,
			      struct vol_grow_result *r, uint64_t *old_backup,
			      bool *finish)
{
	struct vol_geom old, g;
	int ret;

	/* Another host may have grown it first: its geometry is ours. */
	ret = geom_read_primary(v, &g);
	if (!ret && g.generation != v->g.generation) {
		pthread_mutex_lock(&v->alloc_lock);
		ret = geom_is_grown(&v->g, &g) ? geom_take(v, &g) :
		      -VMFS_E_GEOMETRY;
		pthread_mutex_unlock(&v->alloc_lock);
	}
	if (ret == -VMFS_E_LUN_SHRUNK) {
		/* Grown by a host whose LUN is larger than ours: this host
		 * has not seen the LUN grow (rescan it here). */
		r->old_size_bytes = r->new_size_bytes = g.size_bytes;
		return ret;
	}
	if (ret) {
		VLOG(LOG_ERR, "%s: grow: reading the primary volume header: %s",
		     lun_name(v->lun), vmfs_strerror(ret));
		return ret;
	}
	old = v->g;
	r->old_size_bytes = r->new_size_bytes = old.size_bytes;
	ret = vol_grow_layout(&old, r->lun_bytes, &g, r);
	if (ret == -VMFS_E_NOT_GROWN || ret == -VMFS_E_GROW_FULL) {
		if (!v->res[VMFS_RES_FILE].cut_cl)
			return ret;
		r->finished = true;
		*finish = !o->dry_run;
		return 0;
	}
	if (ret || o->dry_run)
		return ret;
	ret = grow_commit(v->lun, &old, &g);
	if (ret)
		return ret;
	grow_log(v->lun, &old, &g, "grown online");
	r->finished = v->res[VMFS_RES_FILE].cut_cl != 0;
	pthread_mutex_lock(&v->alloc_lock);
	ret = geom_take(v, &g);
	pthread_mutex_unlock(&v->alloc_lock);
	if (ret) {
		/* Committed: the volume is grown, this host uses the old part
		 * until it mounts again. */
		VLOG(LOG_ERR, "%s: the volume is grown but this host cannot take the new geometry (%s); unmount and mount it again to use the new space",
		     lun_name(v->lun), vmfs_strerror(ret));
		return ret;
	}
	*old_backup = old.backup_offset;
	*finish = true;
	return 0;
}

int vol_grow_online(struct vol *v, const struct vol_grow_opts *o,
		    struct vol_grow_result *r)
{
	uint64_t old_backup = 0;
	bool finish = false;
	int ret;

	memset(r, 0, sizeof(*r));
	r->file_block_size = v->g.file_block_size;
	r->old_size_bytes = r->new_size_bytes = v->g.size_bytes;
	r->old_file_blocks = r->new_file_blocks = v->g.res[VMFS_RES_FILE].count;
	if (vol_is_rdonly(v))
		return -EROFS;
	ret = vol_fenced(v);
	if (ret)
		return ret;
	ret = lun_size_refresh(v->lun, &r->lun_bytes);
	if (ret == -VMFS_E_LUN_SHRUNK)
		return ret;     /* r->lun_bytes: the size it shrank to */
	r->lun_bytes = lun_size(v->lun);
	ret = vcl_geom_begin(v);
	if (ret)
		return ret;
	ret = grow_online_locked(v, o, r, &old_backup, &finish);
	vcl_geom_end(v);
	if (ret || !finish)
		return ret;
	ret = vol_res_grow_finish(v, old_backup);
	/* Grown all the same: the header stays cut until its next write
	 * (any host's next allocation from it) or the next vmfs grow. */
	if (ret == -EBUSY) {
		VLOG(LOG_NOTICE, "%s: grown; the last old file-block cluster is locked by another host, its header counts the new blocks at its next allocation there (or run 'vmfs grow' again)",
		     lun_name(v->lun));
		r->finished = false;
		ret = 0;
	}
	return ret;
}
