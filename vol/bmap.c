/*
 * Block maps: logical block number -> block pointer, for every inode that
 * is not inline.
 *
 * The inode holds 251 direct pointers, then roots of single, double,
 * triple and quadruple indirect trees of 4 KiB pointer blocks with 506
 * entries each: 251 + 506 + 506^2 + 506^3 + 506^4 blocks (about 6.6e10, or
 * 61 PiB of 1 MiB file blocks).  Pointer blocks are cached per inode while
 * the inode is cached; they belong to the inode and are covered by its
 * lock.
 *
 * Order of writes: a new pointer block is written before its parent points
 * at it; when freeing, pointers are cleared on disk before the objects go
 * back to their bitmaps.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "vol_int.h"

#define P VMFS_PTRS_PER_BLK
#define PB_BUCKETS 64

uint64_t vol_bmap_max_blocks(void)
{
	return VMFS_NDIRECT + vmfs_map_span(1) + vmfs_map_span(2) +
	       vmfs_map_span(3) + vmfs_map_span(4);
}

static le64 *root_slots(struct vinode *vi)
{
	return ((struct vmfs_inode *)(vi->blk + VMFS_OBJ_OFFSET))->di_map;
}

static le64 *pb_ptrs(uint8_t *blk)
{
	return ((struct vmfs_ptrblk *)blk)->pb_ptr;
}

/* Which root slot serves lbn, at what depth, and lbn relative to it. */
static int locate(uint64_t lbn, int *root, int *depth, uint64_t *rel)
{
	if (lbn < VMFS_NDIRECT) {
		*root = (int)lbn;
		*depth = 0;
		*rel = 0;
		return 0;
	}
	lbn -= VMFS_NDIRECT;
	for (int d = 1; d <= 4; d++) {
		if (lbn < vmfs_map_span(d)) {
			*root = VMFS_MAP_IND1 + d - 1;
			*depth = d;
			*rel = lbn;
			return 0;
		}
		lbn -= vmfs_map_span(d);
	}
	return -EFBIG;
}

/* Which pointer of a level-d block on the way to rel (from locate). */
static uint32_t pb_slot(uint64_t rel, int d)
{
	return (uint32_t)((rel / vmfs_map_span(d - 1)) % P);
}

void vol_bmap_cache_drop(struct vinode *vi)
{
	if (!vi->pbtab)
		return;
	for (int i = 0; i < PB_BUCKETS; i++) {
		struct pblk *pb = vi->pbtab[i], *next;

		for (; pb; pb = next) {
			next = pb->next;
			lun_buf_free(pb->blk);
			free(pb);
		}
	}
	free(vi->pbtab);
	vi->pbtab = NULL;
	vi->npb = 0;
}

uint64_t vol_bmap_cache_bytes(const struct vinode *vi)
{
	if (!vi->pbtab)
		return 0;
	return PB_BUCKETS * sizeof(*vi->pbtab) +
	       vi->npb * (sizeof(struct pblk) + VMFS_MD_BLOCK_SIZE);
}

bool vol_bmap_cache_clean(const struct vinode *vi)
{
	for (int i = 0; vi->pbtab && i < PB_BUCKETS; i++)
		for (const struct pblk *pb = vi->pbtab[i]; pb; pb = pb->next)
			if (pb->dirty || pb->in_undo)
				return false;
	return true;
}

static void pb_forget(struct vinode *vi, uint64_t addr)
{
	struct pblk **pp;

	if (!vi->pbtab)
		return;
	for (pp = &vi->pbtab[(addr >> 12) % PB_BUCKETS]; *pp; pp = &(*pp)->next) {
		if ((*pp)->addr == addr) {
			struct pblk *pb = *pp;

			*pp = pb->next;
			lun_buf_free(pb->blk);
			free(pb);
			vi->npb--;
			return;
		}
	}
}

static struct pblk *pb_insert(struct vinode *vi, uint64_t addr, uint8_t *blk)
{
	struct pblk *pb;

	if (!vi->pbtab) {
		vi->pbtab = calloc(PB_BUCKETS, sizeof(*vi->pbtab));
		if (!vi->pbtab)
			return NULL;
	}
	pb = calloc(1, sizeof(*pb));
	if (!pb)
		return NULL;
	pb->addr = addr;
	pb->blk = blk;
	pb->next = vi->pbtab[(addr >> 12) % PB_BUCKETS];
	vi->pbtab[(addr >> 12) % PB_BUCKETS] = pb;
	vi->npb++;
	return pb;
}

static struct pblk *pb_find(struct vinode *vi, uint64_t addr)
{
	if (!vi->pbtab)
		return NULL;
	for (struct pblk *pb = vi->pbtab[(addr >> 12) % PB_BUCKETS]; pb;
	     pb = pb->next)
		if (pb->addr == addr)
			return pb;
	return NULL;
}

/* Is blk, read at addr, a sound pointer block of ino at level? */
static int pb_check(const uint8_t *blk, uint64_t addr, uint64_t ino, int level)
{
	const struct vmfs_ptrblk *d = (const struct vmfs_ptrblk *)blk;
	int ret = lun_md_verify(&d->pb_hdr, VMFS_MAGIC_PTRBLK, addr,
				VMFS_MD_BLOCK_SIZE);
	struct fmt_ptrblk h;

	/* A level out of range fails the comparison with level too. */
	(void)fmt_ptrblk_decode(d, &h);
	if (!ret && (h.owner_ino != ino || h.level != (uint32_t)level))
		ret = -VMFS_E_CORRUPT;
	return ret;
}

/*
 * Read (or find cached) the pointer block at addr, at tree level.  Safe
 * under a read-held vi->rw: the cache itself is guarded by vi->lk.
 */
static int pb_get(struct vol *v, struct vinode *vi, uint64_t addr, int level,
		  struct pblk **out)
{
	struct vmfs_ptrblk *d;
	struct fmt_ptrblk h;
	struct pblk *pb;
	uint8_t *blk;
	int ret;

	pthread_mutex_lock(&vi->lk);
	pb = pb_find(vi, addr);
	pthread_mutex_unlock(&vi->lk);
	if (pb) {
		*out = pb;
		return 0;
	}
	if (vol_res_index(v, VMFS_RES_PTRBLK, addr) < 0) {
		VLOG(LOG_ERR, "inode %llu points at %llu, outside the pointer-block area; run 'vmfs fsck'",
		     (unsigned long long)vi->ino, (unsigned long long)addr);
		return -VMFS_E_CORRUPT;
	}
	blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	if (!blk)
		return -ENOMEM;
	ret = vol_md_read(v, blk, addr);
	d = (struct vmfs_ptrblk *)blk;
	if (!ret)
		ret = pb_check(blk, addr, vi->ino, level);
	if (ret) {
		(void)fmt_ptrblk_decode(d, &h);
		VLOG(LOG_ERR, "pointer block at %llu of inode %llu: %s (owner %llu, level %u); run 'vmfs fsck'",
		     (unsigned long long)addr, (unsigned long long)vi->ino,
		     vmfs_strerror(ret), (unsigned long long)h.owner_ino,
		     h.level);
		lun_buf_free(blk);
		return ret;
	}
	pthread_mutex_lock(&vi->lk);
	pb = pb_find(vi, addr);
	if (pb) {
		/* Another reader loaded it meanwhile. */
		lun_buf_free(blk);
	} else {
		pb = pb_insert(vi, addr, blk);
		if (!pb)
			lun_buf_free(blk);
	}
	pthread_mutex_unlock(&vi->lk);
	if (!pb)
		return -ENOMEM;
	*out = pb;
	return 0;
}

static int pb_write(struct vol *v, struct pblk *pb)
{
	md_reseal(pb->blk, VMFS_MAGIC_PTRBLK, pb->addr, VMFS_MD_BLOCK_SIZE);
	pb->dirty = false;
	return vol_md_write(v, pb->blk, pb->addr, false);
}

/* Write every pointer block vol_bmap_set(..., defer) left dirty. */
int vol_bmap_flush(struct vol *v, struct vinode *vi)
{
	int ret = 0;

	if (!vi->pbtab)
		return 0;
	for (int i = 0; i < PB_BUCKETS; i++)
		for (struct pblk *pb = vi->pbtab[i]; pb; pb = pb->next)
			if (pb->dirty) {
				int err = pb_write(v, pb);

				if (err && !ret)
					ret = err;
			}
	return ret;
}

/* A new, empty pointer block at level, written to disk and cached. */
static int pb_new(struct vol *v, struct vinode *vi, int level,
		  struct pblk **out)
{
	uint64_t idx, addr;
	uint32_t got;
	uint8_t *blk;
	struct vmfs_ptrblk *d;
	struct pblk *pb;
	int ret;

	ret = vol_res_alloc(v, VMFS_RES_PTRBLK, UINT64_MAX, &idx, 1, &got);
	if (ret)
		return ret;
	addr = res_addr(v, VMFS_RES_PTRBLK, idx);
	blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	if (!blk) {
		vol_res_free(v, VMFS_RES_PTRBLK, &idx, 1);
		return -ENOMEM;
	}
	memset(blk, 0, VMFS_MD_BLOCK_SIZE);
	d = (struct vmfs_ptrblk *)blk;
	fmt_ptrblk_encode(&(struct fmt_ptrblk){ .owner_ino = vi->ino,
						.level = (uint32_t)level }, d);
	pthread_mutex_lock(&vi->lk);
	pb = pb_insert(vi, addr, blk);
	pthread_mutex_unlock(&vi->lk);
	ret = pb ? pb_write(v, pb) : -ENOMEM;
	/* Owned by the running operation from here: it frees them if it fails. */
	if (!ret) {
		ret = vol_undo_note_pb(vi, pb, true);
		if (!ret)
			ret = vol_undo_note_alloc(vi, VMFS_RES_PTRBLK, &idx, 1);
	}
	if (ret) {
		if (pb)
			pb_forget(vi, addr);
		else
			lun_buf_free(blk);
		vol_res_free(v, VMFS_RES_PTRBLK, &idx, 1);
		return ret;
	}
	vi->alloc_bytes += VMFS_MD_BLOCK_SIZE;
	*out = pb;
	return 0;
}

int vol_bmap_get(struct vol *v, struct vinode *vi, uint64_t lbn, uint64_t *ptr)
{
	int root, depth, ret;
	uint64_t rel, p;

	*ptr = 0;
	if (locate(lbn, &root, &depth, &rel))
		return 0;
	p = fmt_ptr_load(&root_slots(vi)[root]);
	for (int d = depth; d >= 1 && p; d--) {
		struct pblk *pb;

		ret = pb_get(v, vi, vmfs_ptr_addr(p), d, &pb);
		if (ret)
			return ret;
		p = fmt_ptr_load(&pb_ptrs(pb->blk)[pb_slot(rel, d)]);
	}
	*ptr = p;
	return 0;
}

static void account(struct vol *v, struct vinode *vi, uint64_t old,
		    uint64_t new)
{
	uint64_t bs = bmap_bsize(v, vi);

	if (!(old & VMFS_PTR_ADDR_MASK) && (new & VMFS_PTR_ADDR_MASK))
		vi->alloc_bytes += bs;
	else if ((old & VMFS_PTR_ADDR_MASK) && !(new & VMFS_PTR_ADDR_MASK))
		vi->alloc_bytes -= bs;
}

/*
 * Set the pointer for lbn, making pointer blocks on the way.  Changes to
 * the inode block itself (direct pointers, tree roots, alloc_bytes) are
 * left for the caller's vol_inode_write; with defer, so is the leaf pointer
 * block (vol_bmap_flush), which lets fallocate write each one once.
 */
int vol_bmap_set(struct vol *v, struct vinode *vi, uint64_t lbn, uint64_t ptr,
	     bool defer)
{
	int root, depth, ret;
	uint64_t rel, old;
	le64 *slot;
	struct pblk *parent = NULL;

	ret = locate(lbn, &root, &depth, &rel);
	if (ret)
		return ret;
	slot = &root_slots(vi)[root];
	for (int d = depth; d >= 1; d--) {
		uint64_t p = fmt_ptr_load(slot);
		struct pblk *pb;

		if (!p) {
			if (!ptr)
				return 0;
			ret = pb_new(v, vi, d, &pb);
			if (ret)
				return ret;
			fmt_ptr_store(slot, pb->addr >> VMFS_MD_BLOCK_SHIFT);
			if (parent) {
				ret = pb_write(v, parent);
				if (ret)
					return ret;
			}
		} else {
			ret = pb_get(v, vi, vmfs_ptr_addr(p), d, &pb);
			if (!ret)
				ret = vol_undo_note_pb(vi, pb, false);
			if (ret)
				return ret;
		}
		parent = pb;
		slot = &pb_ptrs(pb->blk)[pb_slot(rel, d)];
	}
	old = fmt_ptr_load(slot);
	fmt_ptr_store(slot, ptr);
	account(v, vi, old, ptr);
	/* A live pointer to data written in place (a new block, a cleared
	 * to-be-zeroed flag): that data must be durable before the commit. */
	if (v->j && (ptr & VMFS_PTR_ADDR_MASK) && !(ptr & VMFS_PTR_TBZ) &&
	    ptr != old)
		jnl_note_data(v->j);
	if (!parent)
		return 0;
	if (defer) {
		parent->dirty = true;
		return 0;
	}
	return pb_write(v, parent);
}

int vol_bmap_pb_release(struct vol *v, struct vinode *vi, uint64_t addr,
		    const uint8_t *img, bool rollback)
{
	struct pblk *pb = pb_find(vi, addr);

	if (!pb)
		return 0;
	pb->in_undo = false;
	if (!rollback)
		return 0;
	if (!img) {
		pb_forget(vi, addr);
		return 0;
	}
	memcpy(pb->blk, img, VMFS_MD_BLOCK_SIZE);
	return pb_write(v, pb);
}

struct freelist {
	uint64_t *data, *pbs;
	uint32_t ndata, npbs, capdata, cappbs;
};

static int push(uint64_t **arr, uint32_t *n, uint32_t *cap, uint64_t x)
{
	if (*n == *cap) {
		uint32_t nc = *cap ? *cap * 2 : 256;
		uint64_t *na = realloc(*arr, nc * sizeof(*na));

		if (!na)
			return -ENOMEM;
		*arr = na;
		*cap = nc;
	}
	(*arr)[(*n)++] = x;
	return 0;
}

static int free_data_ptr(struct vol *v, struct vinode *vi, uint64_t p,
			 struct freelist *fl)
{
	enum vmfs_res_type t = bmap_res(vi);
	int64_t idx = vol_res_index(v, t, vmfs_ptr_addr(p));

	account(v, vi, p, 0);
	/* A block another host allocated in space it grew the volume by,
	 * before our tick read the new geometry. */
	if (idx < 0 && t == VMFS_RES_FILE && vol_geom_refresh(v) > 0)
		idx = vol_res_index(v, t, vmfs_ptr_addr(p));
	if (idx < 0) {
		VLOG(LOG_ERR, "inode %llu maps a block at %llu outside the %s area; not freed, run 'vmfs fsck'",
		     (unsigned long long)vi->ino,
		     (unsigned long long)vmfs_ptr_addr(p), vol_res_name(t));
		return 0;
	}
	return push(&fl->data, &fl->ndata, &fl->capdata, (uint64_t)idx);
}

/* Free [first, last] below the pointer block at addr (level d, covering
 * logical blocks from base).  *empty says the block has no pointers left. */
static int free_sub(struct vol *v, struct vinode *vi, uint64_t addr, int d,
		    uint64_t base, uint64_t first, uint64_t last,
		    struct freelist *fl, bool *empty)
{
	struct pblk *pb;
	le64 *pp;
	bool changed = false, all_empty = true;
	int ret;

	ret = pb_get(v, vi, addr, d, &pb);
	if (ret)
		return ret;
	pp = pb_ptrs(pb->blk);
	for (uint32_t i = 0; i < P; i++) {
		uint64_t lo = base + i * vmfs_map_span(d - 1);
		uint64_t hi = lo + vmfs_map_span(d - 1) - 1;
		uint64_t e = fmt_ptr_load(&pp[i]);

		if (!e)
			continue;
		if (hi < first || lo > last) {
			all_empty = false;
			continue;
		}
		if (d == 1) {
			ret = free_data_ptr(v, vi, e, fl);
		} else {
			bool sub_empty;

			ret = free_sub(v, vi, vmfs_ptr_addr(e), d - 1, lo, first,
				       last, fl, &sub_empty);
			if (!ret && !sub_empty) {
				all_empty = false;
				continue;
			}
			if (!ret)
				ret = push(&fl->pbs, &fl->npbs, &fl->cappbs,
					   vmfs_ptr_addr(e));
			if (!ret)
				vi->alloc_bytes -= VMFS_MD_BLOCK_SIZE;
		}
		if (ret)
			return ret;
		pp[i] = 0;
		changed = true;
	}
	*empty = all_empty;
	if ((changed || pb->dirty) && !all_empty)
		return pb_write(v, pb);
	return 0;
}

/*
 * Free every mapped block with first <= lbn <= last, and pointer blocks
 * left empty.  Writes the inode (unpointing) before freeing anything.
 */
int vol_bmap_free_range(struct vol *v, struct vinode *vi, uint64_t first,
		    uint64_t last)
{
	struct freelist fl = { 0 };
	le64 *roots = root_slots(vi);
	uint64_t base = VMFS_NDIRECT;
	int ret = 0, ret2;

	for (uint64_t i = first; i < VMFS_NDIRECT && i <= last && !ret; i++) {
		uint64_t e = fmt_ptr_load(&roots[i]);

		if (e) {
			ret = free_data_ptr(v, vi, e, &fl);
			roots[i] = 0;
		}
	}
	for (int d = 1; d <= 4 && !ret; d++) {
		uint64_t e = fmt_ptr_load(&roots[VMFS_MAP_IND1 + d - 1]);
		uint64_t hi = base + vmfs_map_span(d) - 1;
		bool empty;

		if (e && !(hi < first || base > last)) {
			ret = free_sub(v, vi, vmfs_ptr_addr(e), d, base, first, last,
				       &fl, &empty);
			if (!ret && empty) {
				ret = push(&fl.pbs, &fl.npbs, &fl.cappbs,
					   vmfs_ptr_addr(e));
				roots[VMFS_MAP_IND1 + d - 1] = 0;
				vi->alloc_bytes -= VMFS_MD_BLOCK_SIZE;
			}
		}
		base += vmfs_map_span(d);
	}
	/* Unpoint on disk first, even after a partial failure. */
	ret2 = vol_inode_write(v, vi);
	if (!ret)
		ret = ret2;
	if (!ret2) {
		ret2 = vol_res_free(v, bmap_res(vi), fl.data, fl.ndata);
		if (!ret)
			ret = ret2;
		for (uint32_t i = 0; i < fl.npbs; i++) {
			int64_t idx = vol_res_index(v, VMFS_RES_PTRBLK, fl.pbs[i]);

			pb_forget(vi, fl.pbs[i]);
			fl.pbs[i] = (uint64_t)idx;
		}
		ret2 = vol_res_free(v, VMFS_RES_PTRBLK, fl.pbs, fl.npbs);
		if (!ret)
			ret = ret2;
	}
	free(fl.data);
	free(fl.pbs);
	return ret;
}

/* ---- vol_raw_*: the same maps on a volume that is not open -------------- */

static enum vmfs_res_type raw_data_res(const struct fmt_inode *fi)
{
	return fi->map_type == VMFS_MAP_FILE ? VMFS_RES_FILE : VMFS_RES_SMALL;
}

/* Does the inode have a block map fit to walk? */
static bool raw_has_map(const struct fmt_inode *fi)
{
	return fi->map_type != VMFS_MAP_INLINE && fi->map_type <= VMFS_MAP_FILE;
}

/*
 * Index of the object p points at in area t, or -1: unknown flag bits,
 * or not an object of the area.  TBZ is allowed on pointer-block pointers
 * too, as vol_bmap_get follows them (fsck reports it, PR_3_TBZ_BAD).
 */
static int64_t raw_ptr_index(const struct vol_raw *r, enum vmfs_res_type t,
			     uint64_t p)
{
	if (!p || (p & ~(VMFS_PTR_ADDR_MASK | VMFS_PTR_TBZ)))
		return -1;
	return res_geom_index(&r->g->res[t], vmfs_ptr_addr(p));
}

/* Read the level-d pointer block p of ino into blk; *ok false when p or
 * the block is not one (a hole). */
static int raw_pb_read(const struct vol_raw *r, uint64_t p, uint64_t ino,
		       int d, uint8_t *blk, bool *ok)
{
	int ret;

	*ok = false;
	if (raw_ptr_index(r, VMFS_RES_PTRBLK, p) < 0)
		return 0;
	ret = r->md_read(r->ctx, blk, vmfs_ptr_addr(p));
	if (!ret)
		*ok = !pb_check(blk, vmfs_ptr_addr(p), ino, d);
	return ret;
}

int vol_raw_bmap_get(const struct vol_raw *r, const uint8_t *iblk,
		     uint64_t lbn, uint64_t *ptr)
{
	const struct vmfs_inode *di = (const struct vmfs_inode *)(iblk + VMFS_OBJ_OFFSET);
	struct fmt_inode fi;
	uint64_t ino, rel, p;
	int root, depth, ret = 0;
	uint8_t *pb = NULL;
	bool ok = true;

	*ptr = 0;
	/* Out-of-range fields still decode; raw_has_map judges the map. */
	(void)fmt_inode_decode(di, &fi);
	ino = fi.ino;
	if (!raw_has_map(&fi) || locate(lbn, &root, &depth, &rel))
		return 0;
	p = fmt_ptr_load(&di->di_map[root]);
	if (depth && !(pb = lun_buf_alloc(VMFS_MD_BLOCK_SIZE)))
		return -ENOMEM;
	for (int d = depth; d >= 1 && p && ok && !ret; d--) {
		ret = raw_pb_read(r, p, ino, d, pb, &ok);
		p = ok && !ret ? fmt_ptr_load(&pb_ptrs(pb)[pb_slot(rel, d)]) : 0;
	}
	lun_buf_free(pb);
	if (raw_ptr_index(r, raw_data_res(&fi), p) >= 0)
		*ptr = p;
	return ret;
}

/* Visit pointer p at level d and, when cb says so, what it points at. */
static int raw_walk(const struct vol_raw *r, uint64_t ino,
		    enum vmfs_res_type dt, uint64_t p, int d,
		    vol_raw_ptr_cb cb, void *ctx)
{
	enum vmfs_res_type t = d ? VMFS_RES_PTRBLK : dt;
	int64_t idx = raw_ptr_index(r, t, p);
	uint8_t *blk;
	bool ok;
	int ret;

	if (idx < 0)
		return 0;
	ret = cb(ctx, t, (uint64_t)idx, d);
	if (ret <= 0 || !d)
		return ret < 0 ? ret : 0;
	blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	if (!blk)
		return -ENOMEM;
	ret = raw_pb_read(r, p, ino, d, blk, &ok);
	for (uint32_t i = 0; i < P && ok && !ret; i++)
		ret = raw_walk(r, ino, dt, fmt_ptr_load(&pb_ptrs(blk)[i]), d - 1, cb, ctx);
	lun_buf_free(blk);
	return ret;
}

int vol_raw_bmap_walk(const struct vol_raw *r, const uint8_t *iblk,
		      vol_raw_ptr_cb cb, void *ctx)
{
	const struct vmfs_inode *di = (const struct vmfs_inode *)(iblk + VMFS_OBJ_OFFSET);
	struct fmt_inode fi;
	enum vmfs_res_type dt;
	uint64_t ino;
	int ret = 0;

	(void)fmt_inode_decode(di, &fi);
	ino = fi.ino;
	dt = raw_data_res(&fi);
	if (!raw_has_map(&fi))
		return 0;
	for (int i = 0; i < VMFS_NDIRECT && !ret; i++)
		ret = raw_walk(r, ino, dt, fmt_ptr_load(&di->di_map[i]), 0, cb, ctx);
	for (int d = 1; d <= 4 && !ret; d++)
		ret = raw_walk(r, ino, dt, fmt_ptr_load(&di->di_map[VMFS_MAP_IND1 + d - 1]),
			       d, cb, ctx);
	return ret;
}
