/*
 * Corruption tool, pass 6: the cluster bitmaps and their free counts.
 *
 * Bits are changed with rc_nfree kept equal to the clear bits (unless
 * the count is the damage) and the header resealed, so the bitmap
 * verifies and only what the code names is wrong.  None of this changes
 * a file: a repair must leave every file as it was.
 */
#include <errno.h>
#include <stdlib.h>
#include "corrupt_int.h"

/* Read cluster cl of area t into c->blk; fails unless it verifies. */
static int rc_get(struct corrupt *c, enum vmfs_res_type t, uint32_t cl,
		  struct vmfs_rc **rc)
{
	uint64_t addr = corrupt_rc_addr(c, t, cl);
	int ret = corrupt_read(c, c->blk, addr);

	*rc = (struct vmfs_rc *)(c->blk + VMFS_OBJ_OFFSET);
	if (!ret)
		ret = lun_md_verify(&(*rc)->rc_hdr, VMFS_MAGIC_RCLUSTER, addr,
				    VMFS_MD_BLOCK_SIZE - VMFS_OBJ_OFFSET);
	return ret;
}

static uint32_t rc_nobjs(const struct vmfs_rc *rc)
{
	struct fmt_rc h;

	(void)fmt_rc_decode(rc, &h);
	return h.nobjs;
}

static int rc_put(struct corrupt *c, enum vmfs_res_type t, uint32_t cl)
{
	uint64_t addr = corrupt_rc_addr(c, t, cl);

	corrupt_seal(c->blk, CK_RC, addr);
	c->target = addr;
	return corrupt_write(c, c->blk, addr);
}

static bool bit_of(const struct vmfs_rc *rc, uint32_t i)
{
	return rc->rc_bitmap[i >> 3] & (1u << (i & 7));
}

/*
 * PR_6_LEAKED: the bit of a free pointer block, small block or file
 * block set (free count kept right, resealed): in use, owned by nothing.
 */
int corrupt_pr6_leaked(struct corrupt *c)
{
	static const enum vmfs_res_type types[] = {
		VMFS_RES_PTRBLK, VMFS_RES_SMALL, VMFS_RES_FILE
	};
	struct corrupt_vec v = { 0 };
	struct vmfs_rc *rc;
	uint64_t pick;
	int ret = 0;

	/* Up to 4096 free objects of each type: (type << 56 | index). */
	for (size_t k = 0; k < 3 && !ret; k++) {
		enum vmfs_res_type t = types[k];
		size_t got = 0;

		for (uint32_t cl = 0; cl < c->g.res[t].nclusters && !ret &&
		     got < 4096; cl++) {
			struct fmt_rc h;

			if (rc_get(c, t, cl, &rc))
				continue;
			(void)fmt_rc_decode(rc, &h);
			for (uint32_t i = 0; i < h.nobjs &&
			     i < VMFS_RC_MAX_OBJS && !ret && got < 4096; i++) {
				if (bit_of(rc, i))
					continue;
				ret = corrupt_vec_push(&v, (uint64_t)t << 56 |
						       ((uint64_t)cl * c->g.res[t].per_cluster + i));
				got++;
			}
		}
	}
	if (!ret && !v.n)
		ret = -ENOENT;
	if (!ret) {
		pick = v.v[corrupt_pick(c, v.n)];
		ret = corrupt_bit_put(c, pick >> 56, pick & ((1ull << 56) - 1), true);
		c->target = corrupt_rc_addr(c, pick >> 56,
					    (uint32_t)((pick & ((1ull << 56) - 1)) /
						       c->g.res[pick >> 56].per_cluster));
		corrupt_say(c, "%s %llu: marked in use, owned by nothing",
			    vol_res_name(pick >> 56),
			    (unsigned long long)(pick & ((1ull << 56) - 1)));
	}
	corrupt_vec_free(&v);
	return ret;
}

/*
 * PR_6_UNMARKED: the bit of a block an inode owns (data block, directory
 * block or pointer block) cleared, free count kept right, resealed.
 */
int corrupt_pr6_unmarked(struct corrupt *c)
{
	struct corrupt_ptr *pv = NULL, *p;
	struct corrupt_vec ok = { 0 };
	enum vmfs_res_type t;
	size_t np = 0;
	int64_t idx;
	int ret = corrupt_all_ptrs(c, NULL, 0, 4, &pv, &np);

	for (size_t i = 0; i < np && !ret; i++) {
		const struct corrupt_node *n = corrupt_node(c, pv[i].ino);

		t = pv[i].level ? VMFS_RES_PTRBLK :
		    n->map_type == VMFS_MAP_FILE ? VMFS_RES_FILE : VMFS_RES_SMALL;
		if (corrupt_res_index(c, t, vmfs_ptr_addr(pv[i].val)) >= 0)
			ret = corrupt_vec_push(&ok, i);
	}
	if (!ret && !ok.n)
		ret = -ENOENT;
	if (ret)
		goto out;
	p = &pv[ok.v[corrupt_pick(c, ok.n)]];
	t = p->level ? VMFS_RES_PTRBLK :
	    corrupt_node(c, p->ino)->map_type == VMFS_MAP_FILE ? VMFS_RES_FILE :
	    VMFS_RES_SMALL;
	idx = corrupt_res_index(c, t, vmfs_ptr_addr(p->val));
	ret = corrupt_bit_put(c, t, (uint64_t)idx, false);
	c->target = corrupt_rc_addr(c, t, (uint32_t)((uint64_t)idx /
						      c->g.res[t].per_cluster));
	corrupt_say(c, "%s %lld (inode %llu %s, block %llu): marked free",
		    vol_res_name(t), (long long)idx, (unsigned long long)p->ino,
		    corrupt_path(c, p->ino), (unsigned long long)p->lbn);
out:
	corrupt_vec_free(&ok);
	free(pv);
	return ret;
}

/* PR_6_NFREE: a cluster's rc_nfree made wrong (bitmap intact, resealed). */
int corrupt_pr6_nfree(struct corrupt *c)
{
	struct corrupt_vec v = { 0 };
	struct vmfs_rc *rc;
	struct fmt_rc h;
	uint32_t nobjs, used = 0, nf, cl;
	enum vmfs_res_type t;
	int ret = corrupt_clusters(c, false, &v);

	if (!ret && !v.n)
		ret = -ENOENT;
	if (ret)
		goto out;
	{
		uint64_t pick = v.v[corrupt_pick(c, v.n)];

		t = pick >> 32;
		cl = (uint32_t)pick;
	}
	ret = rc_get(c, t, cl, &rc);
	if (ret)
		goto out;
	(void)fmt_rc_decode(rc, &h);
	nobjs = h.nobjs;
	for (uint32_t i = 0; i < nobjs && i < VMFS_RC_MAX_OBJS; i++)
		used += bit_of(rc, i);
	if (nobjs - used > 0 && corrupt_pick(c, 2))
		nf = nobjs - used - 1 - (uint32_t)corrupt_pick(c, nobjs - used);
	else
		nf = nobjs - used + 1 + (uint32_t)corrupt_pick(c, 5);
	h.nfree = nf;
	fmt_rc_encode(&h, rc);
	ret = rc_put(c, t, cl);
	corrupt_say(c, "%s cluster %u: free count %u -> %u", vol_res_name(t), cl,
		    nobjs - used, nf);
out:
	corrupt_vec_free(&v);
	return ret;
}

/* PR_6_BITS_BEYOND: a bit set past the objects a short (last) cluster
 * owns; free count unchanged, resealed. */
int corrupt_pr6_bits_beyond(struct corrupt *c)
{
	struct corrupt_vec v = { 0 }, all = { 0 };
	struct vmfs_rc *rc;
	uint32_t nobjs, bit, cl;
	enum vmfs_res_type t;
	int ret = corrupt_clusters(c, false, &all);

	for (size_t i = 0; i < all.n && !ret; i++) {
		t = all.v[i] >> 32;
		cl = (uint32_t)all.v[i];
		if (!rc_get(c, t, cl, &rc) && rc_nobjs(rc) < VMFS_RC_MAX_OBJS)
			ret = corrupt_vec_push(&v, all.v[i]);
	}
	if (!ret && !v.n)
		ret = -ENOENT;
	if (ret)
		goto out;
	{
		uint64_t pick = v.v[corrupt_pick(c, v.n)];

		t = pick >> 32;
		cl = (uint32_t)pick;
	}
	ret = rc_get(c, t, cl, &rc);
	if (ret)
		goto out;
	nobjs = rc_nobjs(rc);
	bit = nobjs + (uint32_t)corrupt_pick(c, VMFS_RC_MAX_OBJS - nobjs);
	rc->rc_bitmap[bit >> 3] |= (uint8_t)(1u << (bit & 7));
	ret = rc_put(c, t, cl);
	corrupt_say(c, "%s cluster %u: bit %u set, past its %u objects",
		    vol_res_name(t), cl, bit, nobjs);
out:
	corrupt_vec_free(&v);
	corrupt_vec_free(&all);
	return ret;
}

/*
 * PR_3_CLUSTER_UNINIT: an inode or pointer-block cluster with objects in
 * use marked never initialised (VMFS_RC_UNINIT), resealed.  The engine
 * refuses to mount it; the repair keeps the objects and drops the mark.
 */
int corrupt_pr3_cluster_uninit(struct corrupt *c)
{
	struct corrupt_vec all = { 0 }, v = { 0 };
	struct vmfs_rc *rc;
	struct fmt_rc h;
	uint64_t pick;
	int ret = corrupt_clusters(c, true, &all);

	for (size_t i = 0; i < all.n && !ret; i++)
		if ((all.v[i] >> 32) == VMFS_RES_INODE ||
		    (all.v[i] >> 32) == VMFS_RES_PTRBLK)
			ret = corrupt_vec_push(&v, all.v[i]);
	if (!ret && !v.n)
		ret = -ENOENT;
	if (ret)
		goto out;
	pick = v.v[corrupt_pick(c, v.n)];
	ret = rc_get(c, pick >> 32, (uint32_t)pick, &rc);
	if (ret)
		goto out;
	(void)fmt_rc_decode(rc, &h);
	h.flags |= VMFS_RC_UNINIT;
	fmt_rc_encode(&h, rc);
	ret = rc_put(c, pick >> 32, (uint32_t)pick);
	corrupt_say(c, "%s cluster %u header at %llu: marked never initialised",
		    vol_res_name(pick >> 32), (uint32_t)pick,
		    (unsigned long long)c->target);
out:
	corrupt_vec_free(&all);
	corrupt_vec_free(&v);
	return ret;
}
