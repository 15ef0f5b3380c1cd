/*
 * Pass 6: bitmaps and free counts (e2fsck pass 5), for all four resource
 * types.
 *
 * The truth is the ownership passes 3-5 computed (inodes: in use and
 * valid; inode 0, the root and lost+found always in use); the bitmaps
 * must say exactly that.  Per cluster, reported once with the number of
 * objects and the first one, so a large leak is one line, not millions:
 *   - bits set for objects nothing owns (PR_6_LEAKED: cleared);
 *   - owned objects whose bit is clear (PR_6_UNMARKED: set);
 *   - bits at or past rc_nobjs (PR_6_BITS_BEYOND: cleared);
 *   - rc_nfree != clear bits among rc_nobjs (PR_6_NFREE);
 *   - a file-block header that counts fewer objects than the geometry, as
 *     a grow cut between its commit and its rewrite of the old last
 *     cluster leaves it (FSCK_CL_GROWCUT from pass 3): a note with -n
 *     (the volume is sound, a mount reads it as the geometry says),
 *     PR_6_NFREE repaired otherwise, rc_nobjs set with the free count;
 *   - headers pass 3 found damaged and was allowed to rebuild
 *     (PR_3_CLUSTER_BAD) are written anew from the ownership with a free
 *     lock record (generation moved on);
 *   - clusters whose bits fsck itself changed (clones, lost+found chunks,
 *     orphans) are written without a report;
 *   - a cluster written with objects in use loses VMFS_RC_UNINIT (the
 *     repair of PR_3_CLUSTER_UNINIT).
 * Each header is written once, keeping its lock record (pass 1's).
 *
 * Hands on: nothing; this is the last pass.
 */
#include <errno.h>
#include <string.h>
#include "fsck_int.h"

static bool want_bit(const struct fsck_ctx *c, enum vmfs_res_type t, uint64_t i)
{
	if (t == VMFS_RES_INODE && i <= VMFS_LOSTFOUND_INO)
		return true;
	return bm_test(c->res[t].owned, i);
}

/* Write the bitmap image of cluster cl from disk_bm into blk and seal. */
static void rc_fill(struct fsck_ctx *c, enum vmfs_res_type t, uint32_t cl,
		    uint8_t *blk)
{
	struct vmfs_rc *rc = (struct vmfs_rc *)(blk + VMFS_OBJ_OFFSET);
	uint64_t first = (uint64_t)cl * c->g.res[t].per_cluster;
	uint32_t nobjs, used = 0;
	struct fmt_rc h;

	/* Pass 3 rebuilt or refused a cluster whose fields are wrong. */
	(void)fmt_rc_decode(rc, &h);
	nobjs = h.nobjs;

	memset(rc->rc_bitmap, 0, sizeof(rc->rc_bitmap));
	for (uint32_t j = 0; j < nobjs; j++) {
		if (bm_test(c->res[t].disk_bm, first + j)) {
			bm_set(rc->rc_bitmap, j);
			used++;
		} else if (t == VMFS_RES_INODE) {
			/* A free inode is nobody's orphan, and has no link
			 * left to drop. */
			rc->rc_orphan[j >> 3] &= (uint8_t)~(1u << (j & 7));
			rc->rc_unlinked[j >> 3] &= (uint8_t)~(1u << (j & 7));
		}
		/* Pass 5 applied and cleared the pending drops of a
		 * repairing run. */
		if (t == VMFS_RES_INODE && !bm_test(c->unlinked, first + j))
			rc->rc_unlinked[j >> 3] &= (uint8_t)~(1u << (j & 7));
	}
	h.nfree = nobjs - used;
	/* A cluster with objects in use is initialised (PR_3_CLUSTER_UNINIT,
	 * or objects fsck itself placed): never leave the mark on it. */
	if (used)
		h.flags &= ~VMFS_RC_UNINIT;
	fmt_rc_encode(&h, rc);
	fsck_seal(&rc->rc_hdr, VMFS_MAGIC_RCLUSTER, fsck_cluster_addr(c, t, cl),
		  FSCK_OBJ_LEN);
}

static int check_cluster(struct fsck_ctx *c, enum vmfs_res_type t, uint32_t cl,
			 uint8_t *blk)
{
	const struct vol_res_geom *r = &c->g.res[t];
	struct fsck_res *rs = &c->res[t];
	struct vmfs_rc *rc = (struct vmfs_rc *)(blk + VMFS_OBJ_OFFSET);
	uint64_t addr = fsck_cluster_addr(c, t, cl);
	uint64_t first = (uint64_t)cl * r->per_cluster;
	uint32_t nobjs = (uint32_t)(r->count - first < r->per_cluster ?
				    r->count - first : r->per_cluster);
	uint32_t leaked = 0, unmarked = 0, beyond = 0, used = 0;
	uint64_t first_leak = 0, first_unmarked = 0;
	bool write = rs->clflags[cl] & (FSCK_CL_DIRTY | FSCK_CL_INITED);
	struct fmt_rc h;

	(void)fmt_rc_decode(rc, &h);

	if (rs->clflags[cl] & FSCK_CL_BAD) {
		uint64_t lgen = fmt_hdr_gen(&((struct vmfs_lock *)blk)->lk_hdr);

		if (!(rs->clflags[cl] & FSCK_CL_REBUILD))
			return 0;
		for (uint32_t j = 0; j < nobjs; j++) {
			if (want_bit(c, t, first + j))
				bm_set(rs->disk_bm, first + j);
			else
				bm_clr(rs->disk_bm, first + j);
		}
		memset(blk, 0, VMFS_MD_BLOCK_SIZE);
		lock_record_init_free(blk, addr, lgen + 1);
		fmt_rc_encode(&(struct fmt_rc){ .gen = h.gen, .type = t,
						 .index = cl, .nobjs = nobjs,
						 .first_obj = first }, rc);
		rc_fill(c, t, cl, blk);
		return fsck_write_md(c, blk, VMFS_MD_BLOCK_SIZE, addr);
	}
	for (uint32_t j = 0; j < nobjs; j++) {
		bool have = bm_test(rs->disk_bm, first + j), want = want_bit(c, t, first + j);

		used += bm_test(rc->rc_bitmap, j);
		if (have && !want && !leaked++)
			first_leak = first + j;
		if (!have && want && !unmarked++)
			first_unmarked = first + j;
	}
	for (uint32_t j = nobjs; j < VMFS_RC_MAX_OBJS; j++)
		beyond += bm_test(rc->rc_bitmap, j);

	if (leaked && fsck_fix(c, PR_6_LEAKED, addr,
			       "%s cluster %u: %u in use but owned by nothing (first %llu)",
			       vol_res_name(t), cl, leaked,
			       (unsigned long long)first_leak)) {
		for (uint32_t j = 0; j < nobjs; j++)
			if (!want_bit(c, t, first + j))
				bm_clr(rs->disk_bm, first + j);
		write = true;
	}
	if (unmarked && fsck_fix(c, PR_6_UNMARKED, addr,
				 "%s cluster %u: %u owned but marked free (first %llu)",
				 vol_res_name(t), cl, unmarked,
				 (unsigned long long)first_unmarked)) {
		for (uint32_t j = 0; j < nobjs; j++)
			if (want_bit(c, t, first + j))
				bm_set(rs->disk_bm, first + j);
		write = true;
	}
	if (beyond && fsck_fix(c, PR_6_BITS_BEYOND, addr,
			       "%s cluster %u: %u bits set past its %u objects",
			       vol_res_name(t), cl, beyond, nobjs))
		write = true;
	if (rs->clflags[cl] & FSCK_CL_GROWCUT) {
		if (!c->writable)
			fsck_note(c, PR_6_NFREE, addr, "%s cluster %u counts %u objects "
				  "where the volume header gives it %u: a grow was cut "
				  "before it rewrote this header; a mount, 'vmfs grow' or "
				  "'vmfs fsck -y' completes it", vol_res_name(t), cl,
				  h.nobjs, nobjs);
		else if (fsck_fix(c, PR_6_NFREE, addr, "%s cluster %u: counts %u objects "
				  "of %u (a grow was cut)", vol_res_name(t), cl,
				  h.nobjs, nobjs)) {
			h.nobjs = nobjs;
			fmt_rc_encode(&h, rc);
			write = true;
		}
	} else if (h.nfree != nobjs - used &&
		   fsck_fix(c, PR_6_NFREE, addr, "%s cluster %u: %u free recorded, %u clear bits",
			    vol_res_name(t), cl, h.nfree, nobjs - used)) {
		write = true;
	}
	if (!write)
		return 0;
	rc_fill(c, t, cl, blk);
	return fsck_write_md(c, blk, VMFS_MD_BLOCK_SIZE, addr);
}

int fsck_pass6(struct fsck_ctx *c)
{
	uint8_t *buf = fsck_batch_alloc(fsck_max_clusters(c));
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	for (int t = 0; t < VMFS_RES_NTYPES && !ret && !c->abort; t++) {
		const struct vol_res_geom *r = &c->g.res[t];

		fsck_progress(c, 6, "bitmaps", (uint64_t)t, VMFS_RES_NTYPES);
		for (uint32_t cl = 0; cl < r->nclusters && !ret && !c->abort;
		     cl += FSCK_BATCH) {
			uint32_t n = r->nclusters - cl < FSCK_BATCH ? r->nclusters - cl
								    : FSCK_BATCH;

			ret = fsck_read(c, buf, (size_t)n * VMFS_MD_BLOCK_SIZE,
					fsck_cluster_addr(c, t, cl));
			for (uint32_t k = 0; !ret && k < n && !c->abort; k++)
				ret = check_cluster(c, t, cl + k,
						    buf + (size_t)k * VMFS_MD_BLOCK_SIZE);
		}
	}
	lun_buf_free(buf);
	return ret;
}
