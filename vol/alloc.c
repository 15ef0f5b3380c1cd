/*
 * Resource clusters: the allocator for inodes, pointer blocks, small
 * blocks and file blocks.
 *
 * Each area is cut into clusters; each cluster has a lockable 4 KiB header
 * holding the bitmap of its objects.  A host allocates from the clusters it
 * holds (one rotor per type here; per-host cluster locks arrive with the
 * lock manager), so several hosts can allocate in parallel without
 * touching the same header.  The bitmap is the truth: an object is in use
 * exactly when its bit is set.  Allocation writes the header before the
 * caller points at the object; freeing writes it after the caller dropped
 * its pointer, so a crash can leak but never double-allocate.
 *
 * Inode and pointer-block clusters start uninitialised (VMFS_RC_UNINIT,
 * format.h): mkfs writes their headers but not their objects, so it
 * writes a bounded amount on any LUN.  The first allocation from such a
 * cluster zeroes its objects and flushes before the header that drops the
 * flag is written (rc_first_use), all under the allocation lock that
 * stands for the cluster lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "vol_int.h"
#include "vmfs/lockmgr.h"

#define RC_LEN (VMFS_MD_BLOCK_SIZE - VMFS_OBJ_OFFSET)

static struct vmfs_rc *rc_of(uint8_t *blk)
{
	return (struct vmfs_rc *)(blk + VMFS_OBJ_OFFSET);
}

static uint64_t rc_addr(const struct vol_res_geom *r, uint32_t c)
{
	return r->hdr_offset + (uint64_t)c * VMFS_MD_BLOCK_SIZE;
}

static inline bool bit_test(const uint8_t *map, uint32_t i)
{
	return map[i >> 3] & (1u << (i & 7));
}

/*
 * Start one cluster header image (a free lock record, no bits set): blk
 * zeroed and locked, h the fields for the caller to adjust and encode.
 */
static void rc_init(uint8_t *blk, const struct vol_res_geom *r,
		    enum vmfs_res_type t, uint32_t c, struct fmt_rc *h)
{
	uint64_t first = (uint64_t)c * r->per_cluster;
	uint32_t n = (uint32_t)(r->count - first < r->per_cluster ?
				r->count - first : r->per_cluster);

	memset(blk, 0, VMFS_MD_BLOCK_SIZE);
	lock_record_init_free(blk, rc_addr(r, c), 1);
	*h = (struct fmt_rc){ .type = t, .index = c, .nobjs = n, .nfree = n,
			      .first_obj = first };
}

static void rc_seal(uint8_t *blk, uint64_t addr)
{
	struct vmfs_rc *rc = rc_of(blk);

	fmt_hdr_set_gen(&rc->rc_hdr, fmt_hdr_gen(&rc->rc_hdr) + 1);
	lun_md_seal(&rc->rc_hdr, VMFS_MAGIC_RCLUSTER, addr, RC_LEN);
}

/* Types whose clusters mkfs leaves for initialisation at first use. */
static bool res_lazy(enum vmfs_res_type t)
{
	return t == VMFS_RES_INODE || t == VMFS_RES_PTRBLK;
}

static int rc_objs_zero(struct lun *lun, const struct vol_res_geom *r,
			uint32_t c, uint32_t nobjs)
{
	return lun_zero_range(lun, r->obj_offset + (uint64_t)c * r->per_cluster *
					    r->obj_size,
			      (uint64_t)nobjs * r->obj_size);
}

/*
 * mkfs and grow: write the cluster headers of area t from cluster from
 * on, with the objects listed in used[] (sorted, ascending) marked in
 * use.  Batched 256 headers a write.  Clusters of a lazy type with no
 * object in use are left uninitialised; one that has objects in use gets
 * its objects zeroed first (the caller flushes before the volume header
 * makes any of this reachable).
 */
int vol_res_cluster_format(struct lun *lun, const struct vol_geom *g,
		       enum vmfs_res_type t, uint32_t from,
		       const uint64_t *used, uint32_t nused)
{
	const struct vol_res_geom *r = &g->res[t];
	enum { BATCH = 256 };
	uint8_t *buf = lun_buf_alloc((size_t)BATCH * VMFS_MD_BLOCK_SIZE);
	uint32_t c = from, u = 0;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	while (!ret && c < r->nclusters) {
		uint32_t n = r->nclusters - c < BATCH ? r->nclusters - c : BATCH;

		for (uint32_t i = 0; i < n; i++) {
			uint8_t *blk = buf + (size_t)i * VMFS_MD_BLOCK_SIZE;
			struct vmfs_rc *rc = rc_of(blk);
			uint64_t first = (uint64_t)(c + i) * r->per_cluster;
			struct fmt_rc h;

			rc_init(blk, r, t, c + i, &h);
			while (u < nused && used[u] < first + h.nobjs) {
				uint32_t bit = (uint32_t)(used[u] - first);

				rc->rc_bitmap[bit >> 3] |= 1u << (bit & 7);
				h.nfree--;
				u++;
			}
			if (res_lazy(t) && h.nfree == h.nobjs)
				h.flags = VMFS_RC_UNINIT;
			else if (res_lazy(t) && !ret)
				ret = rc_objs_zero(lun, r, c + i, h.nobjs);
			fmt_rc_encode(&h, rc);
			rc_seal(blk, rc_addr(r, c + i));
		}
		if (!ret)
			ret = lun_write(lun, buf, (size_t)n * VMFS_MD_BLOCK_SIZE,
				rc_addr(r, c));
		c += n;
	}
	lun_buf_free(buf);
	return ret;
}

/* Bits set among the first n; a byte at a time, as mount counts them all. */
static uint32_t count_bits(const uint8_t *map, uint32_t n)
{
	uint32_t used = 0, i;

	for (i = 0; i + 8 <= n; i += 8)
		used += (uint32_t)__builtin_popcount(map[i >> 3]);
	for (; i < n; i++)
		used += bit_test(map, i);
	return used;
}

bool vol_rc_grow_cut(enum vmfs_res_type t, uint32_t rc_nobjs, uint32_t want)
{
	return t == VMFS_RES_FILE && rc_nobjs && rc_nobjs < want;
}

/*
 * grow: make header c of area t count the objects geometry g gives it.
 * Only rc_nobjs, rc_nfree and the header's generation and crc change,
 * all in the block's second sector (the first 0x30 bytes of the object),
 * and the write leaves the lock record alone: a write torn at any sector
 * leaves the old header or the new one, never a mix that fails its crc.
 * A header that already counts them is not written.
 */
int vol_res_cluster_resize(struct lun *lun, const struct vol_geom *g,
			   enum vmfs_res_type t, uint32_t c)
{
	const struct vol_res_geom *r = &g->res[t];
	uint8_t *blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	struct vmfs_rc *rc = rc_of(blk);
	uint64_t first = (uint64_t)c * r->per_cluster, addr = rc_addr(r, c);
	uint32_t want = (uint32_t)(r->count - first < r->per_cluster ?
				   r->count - first : r->per_cluster);
	struct fmt_rc h;
	int ret;

	if (!blk)
		return -ENOMEM;
	ret = lun_read(lun, blk, VMFS_MD_BLOCK_SIZE, addr);
	if (!ret)
		ret = lun_md_verify(&rc->rc_hdr, VMFS_MAGIC_RCLUSTER, addr, RC_LEN);
	/* A bad type fails the comparison too. */
	if (!ret)
		(void)fmt_rc_decode(rc, &h);
	if (!ret && (h.index != c || h.type != (uint32_t)t))
		ret = -VMFS_E_CORRUPT;
	if (!ret && h.nobjs != want) {
		h.nobjs = want;
		h.nfree = want - count_bits(rc->rc_bitmap, want);
		fmt_rc_encode(&h, rc);
		rc_seal(blk, addr);
		ret = lock_obj_write(lun, blk, addr);
	}
	lun_buf_free(blk);
	return ret;
}

static bool map_empty(const uint8_t *map, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (map[i])
			return false;
	return true;
}

/*
 * Verify header c of area t as read (blk) against the geometry r and take
 * it into ra->cl[c], whose blk points at its cache slot already.  A
 * header a cut grow left counting fewer objects is cached as the
 * geometry counts them (its next write completes the grow).
 */
static int rc_take(struct rarea *ra, const struct vol_res_geom *r,
		   enum vmfs_res_type t, uint32_t c, const uint8_t *blk,
		   uint64_t addr)
{
	const struct vmfs_rc *rc = (const struct vmfs_rc *)(blk + VMFS_OBJ_OFFSET);
	struct rcluster *cl = &ra->cl[c];
	uint64_t first = (uint64_t)c * r->per_cluster;
	uint64_t want = r->count - first < r->per_cluster ?
			r->count - first : r->per_cluster;
	uint32_t used;
	struct fmt_rc h;
	bool cut;
	int ret;

	ret = lun_md_verify(&rc->rc_hdr, VMFS_MAGIC_RCLUSTER, addr, RC_LEN);
	/* A bad type or nobjs fails the checks below too. */
	(void)fmt_rc_decode(rc, &h);
	cut = !ret && vol_rc_grow_cut(t, h.nobjs, (uint32_t)want);
	if (!ret && (h.type != (uint32_t)t || h.index != c ||
		     (h.nobjs != want && !cut) || h.first_obj != first))
		ret = -VMFS_E_CORRUPT;
	/* Never initialised, yet something in use. */
	if (!ret && (h.flags & VMFS_RC_UNINIT) &&
	    (!map_empty(rc->rc_bitmap, sizeof(rc->rc_bitmap)) ||
	     !map_empty(rc->rc_orphan, sizeof(rc->rc_orphan)) ||
	     !map_empty(rc->rc_unlinked, sizeof(rc->rc_unlinked))))
		ret = -VMFS_E_CORRUPT;
	if (ret) {
		VLOG(LOG_ERR, "%s cluster %u at offset %llu: %s; run 'vmfs fsck'",
		     vol_res_name(t), c, (unsigned long long)addr,
		     vmfs_strerror(ret));
		return ret;
	}
	cl->nobjs = (uint32_t)want;
	used = count_bits(rc->rc_bitmap, cl->nobjs);
	/* The bitmap is the truth; nfree is a hint. */
	cl->nfree = cl->nobjs - used;
	ra->used += used;
	memcpy(cl->blk, blk, VMFS_MD_BLOCK_SIZE);
	if (cut) {
		/* The cached header says what the geometry says: its next
		 * write, or vmfs grow, completes the grow. */
		struct fmt_rc hc = h;

		hc.nobjs = cl->nobjs;
		fmt_rc_encode(&hc, rc_of(cl->blk));
		ra->cut_cl = c + 1;
		VLOG(LOG_NOTICE, "%s cluster %u counts %u objects, the volume header %u: a grow was cut before it rewrote this header; the next allocation from it or 'vmfs grow' completes it",
		     vol_res_name(t), c, h.nobjs, cl->nobjs);
	}
	return 0;
}

/* Read and take headers [from, r->nclusters) of area t (rc_take). */
static int rc_load_range(struct lun *lun, struct rarea *ra,
			 const struct vol_res_geom *r, enum vmfs_res_type t,
			 uint32_t from)
{
	enum { BATCH = 256 };
	uint8_t *buf = lun_buf_alloc((size_t)BATCH * VMFS_MD_BLOCK_SIZE);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	for (uint32_t c = from; c < r->nclusters && !ret; c += BATCH) {
		uint32_t n = r->nclusters - c < BATCH ? r->nclusters - c : BATCH;

		ret = lun_read(lun, buf, (size_t)n * VMFS_MD_BLOCK_SIZE,
			       rc_addr(r, c));
		for (uint32_t i = 0; i < n && !ret; i++) {
			ra->cl[c + i].blk = ra->blks +
					    (size_t)(c + i) * VMFS_MD_BLOCK_SIZE;
			ret = rc_take(ra, r, t, c + i,
				      buf + (size_t)i * VMFS_MD_BLOCK_SIZE,
				      rc_addr(r, c + i));
		}
	}
	lun_buf_free(buf);
	return ret;
}

/* Load and verify every cluster header of every area. */
int vol_res_load(struct vol *v)
{
	int ret = 0;

	for (int t = 0; t < VMFS_RES_NTYPES && !ret; t++) {
		struct rarea *ra = &v->res[t];
		const struct vol_res_geom *r = &v->g.res[t];

		ra->g = *r;
		ra->cl = calloc(r->nclusters, sizeof(*ra->cl));
		/* One allocation: a 64 TiB volume has ~19k headers. */
		ra->blks = lun_buf_alloc((size_t)r->nclusters * VMFS_MD_BLOCK_SIZE);
		if (!ra->cl || !ra->blks) {
			ret = -ENOMEM;
			break;
		}
		ret = rc_load_range(v->lun, ra, r, t, 0);
	}
	if (ret)
		vol_res_unload(v);
	return ret;
}

/*
 * Read cluster header addr into blk and verify it: our journal's image
 * when there is one (the newest, as in inode_peek), else the LUN's.  Read
 * outside the cluster's lock, the header may be caught half written by
 * its holder: read it again before calling it damaged.
 */
static int rc_read_verify(struct vol *v, uint8_t *blk, uint64_t addr)
{
	int ret = 0;

	for (int tries = 0; tries < 3; tries++) {
		ret = vol_md_read(v, blk, addr);
		if (!ret)
			ret = lun_md_verify(&rc_of(blk)->rc_hdr,
					    VMFS_MAGIC_RCLUSTER, addr, RC_LEN);
		if (ret != -VMFS_E_BAD_CRC)
			break;
	}
	return ret;
}

/* The header at addr as rc_read_verify reads it (h). */
static int rc_disk_nobjs(struct vol *v, uint64_t addr, struct fmt_rc *h)
{
	uint8_t *blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	int ret;

	if (!blk)
		return -ENOMEM;
	ret = rc_read_verify(v, blk, addr);
	if (!ret && fmt_rc_decode(rc_of(blk), h))
		ret = -VMFS_E_CORRUPT;
	lun_buf_free(blk);
	return ret;
}

int vol_res_regeom(struct vol *v, const struct vol_geom *g)
{
	struct rarea *ra = &v->res[VMFS_RES_FILE];
	struct rarea nra = *ra;
	const struct vol_res_geom *r = &g->res[VMFS_RES_FILE];
	uint32_t oc = ra->g.nclusters;
	int ret;

	if (r->nclusters < oc || r->count < ra->g.count ||
	    r->per_cluster != ra->g.per_cluster ||
	    r->hdr_offset != ra->g.hdr_offset || r->obj_offset != ra->g.obj_offset)
		return -VMFS_E_GEOMETRY;
	nra.cl = calloc(r->nclusters, sizeof(*nra.cl));
	nra.blks = lun_buf_alloc((size_t)r->nclusters * VMFS_MD_BLOCK_SIZE);
	if (!nra.cl || !nra.blks) {
		ret = -ENOMEM;
		goto err;
	}
	memcpy(nra.cl, ra->cl, oc * sizeof(*nra.cl));
	memcpy(nra.blks, ra->blks, (size_t)oc * VMFS_MD_BLOCK_SIZE);
	for (uint32_t c = 0; c < oc; c++)
		nra.cl[c].blk = nra.blks + (size_t)c * VMFS_MD_BLOCK_SIZE;
	nra.g = *r;
	ret = rc_load_range(v->lun, &nra, r, VMFS_RES_FILE, oc);
	if (ret)
		goto err;
	/* The old last cluster, if partial, now has more objects: cached
	 * as the new geometry counts them (rc_take's cut), written by the
	 * grower (vol_res_grow_finish) or the next allocation from it. */
	if (oc && ra->cl[oc - 1].nobjs < ra->g.per_cluster) {
		struct rcluster *cl = &nra.cl[oc - 1];
		uint64_t first = (uint64_t)(oc - 1) * r->per_cluster;
		uint32_t want = (uint32_t)(r->count - first < r->per_cluster ?
					   r->count - first : r->per_cluster);
		uint32_t used_old = count_bits(rc_of(cl->blk)->rc_bitmap, cl->nobjs);
		struct fmt_rc h;

		(void)fmt_rc_decode(rc_of(cl->blk), &h);
		cl->nobjs = want;
		nra.used = nra.used - used_old +
			   count_bits(rc_of(cl->blk)->rc_bitmap, want);
		cl->nfree = want - count_bits(rc_of(cl->blk)->rc_bitmap, want);
		if (h.nobjs < want) {
			h.nobjs = want;
			fmt_rc_encode(&h, rc_of(cl->blk));
		}
		/* Still to rewrite on disk (or in our journal)?  Another
		 * host's grow may have done it already (we reread it when we
		 * lock it).  Unreadable now (its holder writing it): assume
		 * so; rewriting it under its lock is harmless. */
		if (rc_disk_nobjs(v, rc_addr(r, oc - 1), &h) || h.nobjs < want)
			nra.cut_cl = oc;
	}
	free(ra->cl);
	lun_buf_free(ra->blks);
	*ra = nra;
	return 0;
err:
	free(nra.cl);
	lun_buf_free(nra.blks);
	return ret;
}

static int rc_write(struct vol *v, struct rarea *ra, uint32_t c);
static int rc_lock(struct vol *v, struct rarea *ra, enum vmfs_res_type t,
		   uint32_t c, bool try);

/* The locked part of vol_res_grow_finish, inside its handle. */
static int res_grow_finish(struct vol *v, uint64_t old_backup)
{
	VOL_HANDLE(v);
	struct rarea *ra = &v->res[VMFS_RES_FILE];
	int64_t idx;
	int ret = 0;

	pthread_mutex_lock(&v->alloc_lock);
	if (ra->cut_cl) {
		uint32_t c = ra->cut_cl - 1;

		ret = rc_lock(v, ra, VMFS_RES_FILE, c, false);
		if (!ret)
			ret = rc_write(v, ra, c);
		if (!ret)
			ra->cut_cl = 0;
	}
	/*
	 * The old backup header lies in the new file-block space: zeroed
	 * while its block is free, under its cluster's lock, so that no
	 * host can have allocated it and written data there meanwhile.
	 */
	idx = old_backup ? res_geom_index(&ra->g, old_backup -
					  (old_backup - ra->g.obj_offset) %
					  ra->g.obj_size) : -1;
	if (!ret && old_backup && idx < 0) {
		ret = lun_zero_range(v->lun, old_backup, VMFS_MD_BLOCK_SIZE);
	} else if (!ret && old_backup) {
		uint32_t c = (uint32_t)((uint64_t)idx / ra->g.per_cluster);
		uint32_t bit = (uint32_t)((uint64_t)idx % ra->g.per_cluster);
		struct rcluster *cl = &ra->cl[c];

		ret = rc_lock(v, ra, VMFS_RES_FILE, c, false);
		if (!ret && !bit_test(rc_of(cl->blk)->rc_bitmap, bit) &&
		    !(cl->nbusy && bit_test(cl->busy, bit)))
			ret = lun_zero_range(v->lun, old_backup, VMFS_MD_BLOCK_SIZE);
	}
	pthread_mutex_unlock(&v->alloc_lock);
	return ret;
}

int vol_res_grow_finish(struct vol *v, uint64_t old_backup)
{
	VCL_OP(v);

	return VCL_END(v, res_grow_finish(v, old_backup));
}

void vol_res_unload(struct vol *v)
{
	for (int t = 0; t < VMFS_RES_NTYPES; t++) {
		struct rarea *ra = &v->res[t];

		lun_buf_free(ra->blks);
		ra->blks = NULL;
		if (!ra->cl)
			continue;
		for (uint32_t c = 0; c < ra->g.nclusters; c++)
			free(ra->cl[c].busy);
		free(ra->cl);
		ra->cl = NULL;
		free(ra->freed);
		ra->freed = NULL;
		ra->freed_head = ra->freed_n = ra->freed_cap = 0;
	}
}

int64_t vol_res_index(const struct vol *v, enum vmfs_res_type t, uint64_t addr)
{
	return res_geom_index(&v->g.res[t], addr);
}

static int rc_write(struct vol *v, struct rarea *ra, uint32_t c)
{
	struct rcluster *cl = &ra->cl[c];
	uint64_t addr = rc_addr(&ra->g, c);
	struct fmt_rc h;

	(void)fmt_rc_decode(rc_of(cl->blk), &h);
	/* Another host grew the volume and this one has not read the new
	 * geometry yet: the header counts more objects than we use. */
	h.nfree = h.nobjs == cl->nobjs ? cl->nfree :
		  h.nobjs - count_bits(rc_of(cl->blk)->rc_bitmap, h.nobjs);
	fmt_rc_encode(&h, rc_of(cl->blk));
	rc_seal(cl->blk, addr);
	return vol_md_write(v, cl->blk, addr, true);
}

/*
 * Reread cluster c's header from disk: another host changed it (its lock
 * moved) or may have (vol_caches_reload).  Called with alloc_lock.
 */
static int rc_reload(struct vol *v, struct rarea *ra, enum vmfs_res_type t,
		     uint32_t c)
{
	struct rcluster *cl = &ra->cl[c];
	uint64_t addr = rc_addr(&ra->g, c);
	uint8_t *blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	struct fmt_rc h;
	uint32_t used_old, used_new;
	int ret;

	if (!blk)
		return -ENOMEM;
	/* Read outside the cluster's lock too (vol_res_refresh_inodes). */
	ret = rc_read_verify(v, blk, addr);
	if (!ret && (fmt_rc_decode(rc_of(blk), &h) || h.type != (uint32_t)t ||
		     h.index != c))
		ret = -VMFS_E_CORRUPT;
	if (ret) {
		VLOG(LOG_ERR, "rereading %s cluster %u at offset %llu: %s; run 'vmfs fsck'",
		     vol_res_name(t), c, (unsigned long long)addr,
		     vmfs_strerror(ret));
		lun_buf_free(blk);
		return ret;
	}
	used_old = count_bits(rc_of(cl->blk)->rc_bitmap, cl->nobjs);
	used_new = count_bits(rc_of(blk)->rc_bitmap, cl->nobjs);
	/* A grow cut before it rewrote this header (or, on another host,
	 * not yet done): the geometry counts; the next write completes it. */
	if (vol_rc_grow_cut(t, h.nobjs, cl->nobjs)) {
		h.nobjs = cl->nobjs;
		fmt_rc_encode(&h, rc_of(blk));
	}
	memcpy(cl->blk, blk, VMFS_MD_BLOCK_SIZE);
	cl->nfree = cl->nobjs - used_new;
	ra->used = ra->used + used_new - used_old;
	lun_buf_free(blk);
	return 0;
}

/* Lock cluster c for the running operation (shared mode) and reread it
 * if another host changed it.  try: a cluster another host holds is
 * -EBUSY at once. */
static int rc_lock(struct vol *v, struct rarea *ra, enum vmfs_res_type t,
		   uint32_t c, bool try)
{
	bool moved;
	int ret = vcl_lock_cluster(v, t, c, try, &moved);

	if (!ret && moved)
		ret = rc_reload(v, ra, t, c);
	return ret;
}

int vol_res_refresh_inodes(struct vol *v)
{
	struct rarea *ra = &v->res[VMFS_RES_INODE];
	int ret = 0;

	pthread_mutex_lock(&v->alloc_lock);
	for (uint32_t c = 0; c < ra->g.nclusters && !ret; c++)
		ret = rc_reload(v, ra, VMFS_RES_INODE, c);
	pthread_mutex_unlock(&v->alloc_lock);
	return ret;
}

void vol_res_spread(struct vol *v, uint32_t part, uint32_t parts)
{
	pthread_mutex_lock(&v->alloc_lock);
	for (int t = 0; t < VMFS_RES_NTYPES; t++)
		v->res[t].rotor = (uint32_t)((uint64_t)v->res[t].g.nclusters *
					     part / parts);
	pthread_mutex_unlock(&v->alloc_lock);
}

int vol_res_reload_all(struct vol *v)
{
	int ret = 0;

	pthread_mutex_lock(&v->alloc_lock);
	for (int t = 0; t < VMFS_RES_NTYPES && !ret; t++)
		for (uint32_t c = 0; c < v->res[t].g.nclusters && !ret; c++)
			ret = rc_reload(v, &v->res[t], t, c);
	pthread_mutex_unlock(&v->alloc_lock);
	return ret;
}

/*
 * File and small blocks hold data that is written in place, outside the
 * journal.  One freed by transaction T must not be handed out again until
 * T can never replay (jnl_reusable_seq() > T): otherwise a crash could
 * show the block's old owner the new owner's data, or a replay could
 * write an old directory-chunk image over a small file's data.  Inodes
 * and pointer blocks live only in the journal, so they are reusable at
 * once.
 */
static bool res_delays_reuse(const struct vol *v, enum vmfs_res_type t)
{
	return v->j && (t == VMFS_RES_FILE || t == VMFS_RES_SMALL);
}

/* Returns false (out of memory) if the object must stay allocated. */
static bool res_busy_mark(struct rarea *ra, enum vmfs_res_type t,
			  uint64_t idx, uint64_t seq)
{
	struct rcluster *cl = &ra->cl[idx / ra->g.per_cluster];
	uint32_t bit = (uint32_t)(idx % ra->g.per_cluster);

	if (!cl->busy)
		cl->busy = calloc(1, VMFS_RC_MAX_OBJS / 8);
	if (ra->freed_n == ra->freed_cap) {
		size_t cap = ra->freed_cap ? ra->freed_cap * 2 : 256;
		struct rfreed *f = realloc(ra->freed, cap * sizeof(*f));

		if (f) {
			ra->freed = f;
			ra->freed_cap = cap;
		}
	}
	if (!cl->busy || ra->freed_n == ra->freed_cap) {
		/* Rather a leak that fsck reclaims than an early reuse. */
		VLOG(LOG_WARNING, "out of memory: %s %llu stays allocated; 'vmfs fsck' frees it",
		     vol_res_name(t), (unsigned long long)idx);
		return false;
	}
	cl->busy[bit >> 3] |= 1u << (bit & 7);
	cl->nbusy++;
	ra->freed[ra->freed_n].idx = idx;
	ra->freed[ra->freed_n].seq = seq;
	ra->freed_n++;
	return true;
}

/* Make the objects whose freeing can no longer replay allocatable. */
static void res_busy_release(struct vol *v, struct rarea *ra)
{
	uint64_t reusable;

	if (ra->freed_head == ra->freed_n)
		return;
	reusable = jnl_reusable_seq(v->j);
	while (ra->freed_head < ra->freed_n &&
	       ra->freed[ra->freed_head].seq < reusable) {
		uint64_t idx = ra->freed[ra->freed_head++].idx;
		struct rcluster *cl = &ra->cl[idx / ra->g.per_cluster];
		uint32_t bit = (uint32_t)(idx % ra->g.per_cluster);

		cl->busy[bit >> 3] &= ~(1u << (bit & 7));
		cl->nbusy--;
	}
	if (ra->freed_head == ra->freed_n)
		ra->freed_head = ra->freed_n = 0;
}

uint64_t vol_res_avail(struct vol *v, enum vmfs_res_type t)
{
	struct rarea *ra = &v->res[t];
	uint64_t n;

	pthread_mutex_lock(&v->alloc_lock);
	if (res_delays_reuse(v, t))
		res_busy_release(v, ra);
	/* Clear bits, less those still waiting in the freed FIFO. */
	n = ra->g.count - ra->used - (ra->freed_n - ra->freed_head);
	pthread_mutex_unlock(&v->alloc_lock);
	return n;
}

/*
 * First use of a cluster mkfs left uninitialised: zero its objects (a
 * free inode must have a valid or all-zero lock record, and fsck tells
 * never-used slots from damaged ones by their zeros) and make that
 * durable before the header without VMFS_RC_UNINIT can reach the journal.
 * A crash before that header commits leaves the flag set on disk, and the
 * next first use zeroes again: a torn init is never mistaken for a done
 * one.  Clears the flag in the cached header only.
 */
static int rc_first_use(struct vol *v, struct rarea *ra, uint32_t c)
{
	struct vmfs_rc *rc = rc_of(ra->cl[c].blk);
	struct fmt_rc h;
	int ret;

	(void)fmt_rc_decode(rc, &h);
	if (!(h.flags & VMFS_RC_UNINIT))
		return 0;
	ret = rc_objs_zero(v->lun, &ra->g, c, ra->cl[c].nobjs);
	if (!ret)
		ret = lun_flush(v->lun);
	if (ret) {
		VLOG(LOG_ERR, "initialising %s cluster %u: %s",
		     vol_res_name(h.type), c, vmfs_strerror(ret));
		return ret;
	}
	h.flags &= ~VMFS_RC_UNINIT;
	fmt_rc_encode(&h, rc);
	return 0;
}

/*
 * Allocate up to n objects of type t, preferring the cluster of hint
 * (an object index, or UINT64_MAX for none) and objects right after it so
 * files stay contiguous.  *got says how many were allocated (all written
 * to disk); -ENOSPC only when none could be.
 */
static int res_alloc_once(struct vol *v, enum vmfs_res_type t, uint64_t hint,
			  uint64_t *out, uint32_t n, uint32_t *got)
{
	struct rarea *ra = &v->res[t];
	uint32_t nc = ra->g.nclusters, start, k = 0, tries = 0;
	bool busy = false;
	int ret = 0;

	*got = 0;
	if (vol_is_rdonly(v))
		return -EROFS;
	pthread_mutex_lock(&v->alloc_lock);
	if (res_delays_reuse(v, t))
		res_busy_release(v, ra);
	/* Shared: each host starts in its own part of the area (the rotor
	 * vol_cluster_start set from its slot), so hosts allocate side by
	 * side instead of queueing for the cluster of a shared parent. */
	start = hint < ra->g.count && !vcl_shared(v) ?
		(uint32_t)(hint / ra->g.per_cluster) : ra->rotor % nc;
	/* Shared: the first pass skips clusters another host holds right
	 * now; if that found nothing, the second waits for them, with as
	 * many tries of its own (a first pass that met 32 busy clusters
	 * would leave the second none: EBUSY without a wait).  Busy is
	 * what the last pass could not lock: a cluster the second pass
	 * locked and found full is full, and ENOSPC has the caller look
	 * for a grow by another host (vol_res_alloc), where EBUSY did not. */
	for (int pass = 0; pass < 2 && !k && !ret; pass++) {
		tries = 0;
		busy = false;
		for (uint32_t i = 0; i < nc && k < n && !ret; i++) {
			uint32_t c = (start + i) % nc;
			struct rcluster *cl = &ra->cl[c];
			struct vmfs_rc *rc;
			uint32_t b = 0, taken = 0;

			if (cl->nfree <= cl->nbusy)
				continue;
			if (vcl_shared(v)) {
				if (++tries > 32)
					break;
				ret = rc_lock(v, ra, t, c, pass == 0);
				if (ret == -EBUSY) {
					ret = 0;
					busy = true;
					continue;
				}
				if (ret)
					break;
				if (cl->nfree <= cl->nbusy)
					continue;
			} else if (pass) {
				break;
			}
			ret = rc_first_use(v, ra, c);
			if (ret)
				break;
			rc = rc_of(cl->blk);
			if (i == 0 && hint < ra->g.count && !vcl_shared(v))
				b = (uint32_t)(hint % ra->g.per_cluster);
			for (uint32_t j = 0; j < cl->nobjs && k < n; j++) {
				uint32_t bit = (b + j) % cl->nobjs;

				if (bit_test(rc->rc_bitmap, bit) ||
				    (cl->nbusy && bit_test(cl->busy, bit)))
					continue;
				rc->rc_bitmap[bit >> 3] |= 1u << (bit & 7);
				out[k++] = (uint64_t)c * ra->g.per_cluster + bit;
				cl->nfree--;
				taken++;
			}
			if (taken) {
				ret = rc_write(v, ra, c);
				if (ret) {
					/* Not on disk: give the objects back
					 * in memory. */
					for (uint32_t j = k - taken; j < k; j++) {
						uint32_t bit = (uint32_t)(out[j] %
							ra->g.per_cluster);

						rc->rc_bitmap[bit >> 3] &=
							~(1u << (bit & 7));
					}
					cl->nfree += taken;
					k -= taken;
					break;
				}
				ra->used += taken;
				ra->rotor = c;
			}
		}
	}
	pthread_mutex_unlock(&v->alloc_lock);
	*got = k;
	if (ret)
		return ret;
	if (!k && busy)
		return -EBUSY;  /* other hosts held every cluster with room */
	return k ? 0 : -ENOSPC;
}

int vol_res_alloc(struct vol *v, enum vmfs_res_type t, uint64_t hint,
		  uint64_t *out, uint32_t n, uint32_t *got)
{
	int ret = res_alloc_once(v, t, hint, out, n, got);

	/* Shared: another host may have grown the volume since our last
	 * tick; take its new geometry before saying the area is full. */
	if (ret == -ENOSPC && t == VMFS_RES_FILE && vcl_shared(v) &&
	    vol_geom_refresh(v) > 0)
		ret = res_alloc_once(v, t, hint, out, n, got);
	return ret;
}

/* The inode map m of a cluster header (format.h rc_orphan, rc_unlinked). */
static uint8_t *rc_inode_map(struct vmfs_rc *rc, enum vol_rc_map m)
{
	return m == VOL_RC_UNLINKED ? rc->rc_unlinked : rc->rc_orphan;
}

/*
 * Lock the cluster of inode ino for the running operation and set or
 * clear its bit in map m (on: true/false), or only read it (on: NULL).
 * *was (may be NULL) is the bit before.
 */
static int rc_inode_bit(struct vol *v, uint64_t ino, enum vol_rc_map m,
			const bool *on, bool *was)
{
	struct rarea *ra = &v->res[VMFS_RES_INODE];
	uint32_t c = (uint32_t)(ino / ra->g.per_cluster);
	uint32_t bit = (uint32_t)(ino % ra->g.per_cluster);
	uint8_t *map;
	int ret = 0;

	if (ino >= ra->g.count)
		return -EINVAL;
	pthread_mutex_lock(&v->alloc_lock);
	ret = rc_lock(v, ra, VMFS_RES_INODE, c, false);
	if (ret) {
		pthread_mutex_unlock(&v->alloc_lock);
		return ret;
	}
	map = rc_inode_map(rc_of(ra->cl[c].blk), m);
	if (was)
		*was = bit_test(map, bit);
	if (on && bit_test(map, bit) != *on) {
		map[bit >> 3] ^= 1u << (bit & 7);
		ret = rc_write(v, ra, c);
	}
	pthread_mutex_unlock(&v->alloc_lock);
	return ret;
}

int vol_res_inode_mark(struct vol *v, uint64_t ino, enum vol_rc_map m,
		       bool on)
{
	return rc_inode_bit(v, ino, m, &on, NULL);
}

int vol_res_inode_test(struct vol *v, uint64_t ino, enum vol_rc_map m,
		       bool *set)
{
	return rc_inode_bit(v, ino, m, NULL, set);
}

bool vol_res_unlinked_pending(struct vol *v, uint64_t ino, bool reread)
{
	struct rarea *ra = &v->res[VMFS_RES_INODE];
	uint32_t c = (uint32_t)(ino / ra->g.per_cluster);
	bool set = false;

	if (ino >= ra->g.count)
		return false;
	pthread_mutex_lock(&v->alloc_lock);
	if (!reread || !rc_reload(v, ra, VMFS_RES_INODE, c))
		set = bit_test(rc_of(ra->cl[c].blk)->rc_unlinked,
			       (uint32_t)(ino % ra->g.per_cluster));
	pthread_mutex_unlock(&v->alloc_lock);
	return set;
}

int vol_res_orphans_list(struct vol *v, struct vol_orphan **out, size_t *n)
{
	struct rarea *ra = &v->res[VMFS_RES_INODE];
	struct vol_orphan *list = NULL;
	size_t cnt = 0, cap = 0;

	pthread_mutex_lock(&v->alloc_lock);
	for (uint32_t c = 0; c < ra->g.nclusters; c++) {
		const struct vmfs_rc *rc = rc_of(ra->cl[c].blk);

		for (uint32_t b = 0; b < ra->cl[c].nobjs; b++) {
			bool pending = bit_test(rc->rc_unlinked, b);

			if (!pending && !bit_test(rc->rc_orphan, b))
				continue;
			if (cnt == cap) {
				struct vol_orphan *l = realloc(list, (cap ? cap * 2 : 64) *
							    sizeof(*l));

				if (!l) {
					pthread_mutex_unlock(&v->alloc_lock);
					free(list);
					return -ENOMEM;
				}
				list = l;
				cap = cap ? cap * 2 : 64;
			}
			list[cnt].ino = (uint64_t)c * ra->g.per_cluster + b;
			list[cnt++].pending = pending;
		}
	}
	pthread_mutex_unlock(&v->alloc_lock);
	*out = list;
	*n = cnt;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int vol_res_lock_of(struct vol *v, enum vmfs_res_type t, uint64_t idx)
{
	struct rarea *ra = &v->res[t];
	int ret;

	if (!vcl_shared(v) || idx >= ra->g.count)
		return 0;
	pthread_mutex_lock(&v->alloc_lock);
	ret = rc_lock(v, ra, t, (uint32_t)(idx / ra->g.per_cluster), false);
	pthread_mutex_unlock(&v->alloc_lock);
	return ret;
}

/* Free objects (any order); each touched cluster header is written once. */
int vol_res_free(struct vol *v, enum vmfs_res_type t, const uint64_t *idx,
	     uint32_t n)
{
	struct rarea *ra = &v->res[t];
	uint64_t *sorted;
	uint64_t seq = 0;
	bool delay = res_delays_reuse(v, t);
	int ret = 0;

	if (!n)
		return 0;
	sorted = malloc(n * sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	memcpy(sorted, idx, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_u64);
	pthread_mutex_lock(&v->alloc_lock);
	if (delay)
		seq = jnl_running_seq(v->j);
	for (uint32_t i = 0; i < n;) {
		uint32_t c = (uint32_t)(sorted[i] / ra->g.per_cluster);
		struct rcluster *cl;
		struct vmfs_rc *rc;
		int err;

		if (sorted[i] >= ra->g.count) {
			VLOG(LOG_ERR, "freeing %s %llu beyond the area; run 'vmfs fsck'",
			     vol_res_name(t), (unsigned long long)sorted[i]);
			ret = -VMFS_E_CORRUPT;
			i++;
			continue;
		}
		cl = &ra->cl[c];
		err = rc_lock(v, ra, t, c, false);
		if (err) {
			/* Left allocated: a leak fsck reclaims, never a
			 * bitmap written without its lock. */
			VLOG(LOG_WARNING, "cannot lock %s cluster %u to free objects in it: %s; 'vmfs fsck' reclaims them",
			     vol_res_name(t), c, vmfs_strerror(err));
			while (i < n && sorted[i] / ra->g.per_cluster == c)
				i++;
			if (!ret)
				ret = err;
			continue;
		}
		rc = rc_of(cl->blk);
		for (; i < n && sorted[i] / ra->g.per_cluster == c; i++) {
			uint32_t bit = (uint32_t)(sorted[i] % ra->g.per_cluster);

			if (!bit_test(rc->rc_bitmap, bit)) {
				VLOG(LOG_ERR, "%s %llu freed twice; run 'vmfs fsck'",
				     vol_res_name(t), (unsigned long long)sorted[i]);
				continue;
			}
			if (delay && !res_busy_mark(ra, t, sorted[i], seq))
				continue;
			rc->rc_bitmap[bit >> 3] &= ~(1u << (bit & 7));
			rc->rc_orphan[bit >> 3] &= ~(1u << (bit & 7));
			rc->rc_unlinked[bit >> 3] &= ~(1u << (bit & 7));
			cl->nfree++;
			ra->used--;
		}
		err = rc_write(v, ra, c);
		if (err && !ret)
			ret = err;
	}
	pthread_mutex_unlock(&v->alloc_lock);
	free(sorted);
	return ret;
}
