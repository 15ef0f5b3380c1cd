/*
 * Reading inodes and block maps after pass 3 has looked at them, and
 * writing whole inodes (fresh directories, cleared inodes).
 *
 * In -n mode pass 3 reports but keeps bad pointers, so everything here
 * still checks each pointer against the geometry and each pointer block's
 * envelope, owner and level before following it; a pointer that fails is
 * a hole.  Levels strictly decrease on the way down, so no walk loops.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "fsck_int.h"

#define P VMFS_PTRS_PER_BLK

static const uint64_t spans[5] = {
	1, P, (uint64_t)P * P, (uint64_t)P * P * P, (uint64_t)P * P * P * P
};

int fsck_inode_read(struct fsck_ctx *c, uint64_t ino, uint8_t *blk)
{
	return fsck_read(c, blk, VMFS_MD_BLOCK_SIZE, fsck_inode_addr(c, ino));
}

int fsck_inode_write(struct fsck_ctx *c, uint64_t ino, uint8_t *blk)
{
	uint64_t addr = fsck_inode_addr(c, ino);

	fsck_seal(&fsck_di(blk)->di_hdr, VMFS_MAGIC_INODE, addr, FSCK_OBJ_LEN);
	return fsck_write_md(c, blk, VMFS_MD_BLOCK_SIZE, addr);
}

/* Read and verify the pointer block at addr for ino at level. */
static int pb_read(struct fsck_ctx *c, uint64_t addr, uint64_t ino, int level,
		   uint8_t *blk)
{
	const struct vmfs_ptrblk *pb = (const struct vmfs_ptrblk *)blk;
	int ret;

	if (fsck_obj_index(c, VMFS_RES_PTRBLK, addr) < 0)
		return -VMFS_E_CORRUPT;
	ret = fsck_read(c, blk, VMFS_MD_BLOCK_SIZE, addr);
	if (ret)
		return ret;
	ret = lun_md_verify(&pb->pb_hdr, VMFS_MAGIC_PTRBLK, addr,
			    VMFS_MD_BLOCK_SIZE);
	if (!ret && (le64toh(pb->pb_owner_ino) != ino ||
		     le32toh(pb->pb_level) != (uint32_t)level))
		ret = -VMFS_E_CORRUPT;
	return ret;
}

static enum vmfs_res_type data_type(const struct vmfs_inode *di)
{
	return le16toh(di->di_map_type) == VMFS_MAP_FILE ? VMFS_RES_FILE
							 : VMFS_RES_SMALL;
}

int fsck_bmap_get(struct fsck_ctx *c, uint8_t *iblk, uint64_t lbn,
		  uint64_t *ptr)
{
	struct vmfs_inode *di = fsck_di(iblk);
	uint64_t ino = le64toh(di->di_ino), p, rel = lbn;
	uint8_t *pb;
	int root = -1, depth = 0, ret = 0;

	*ptr = 0;
	if (le16toh(di->di_map_type) == VMFS_MAP_INLINE ||
	    le16toh(di->di_map_type) > VMFS_MAP_FILE)
		return 0;
	if (lbn < VMFS_NDIRECT) {
		root = (int)lbn;
	} else {
		rel -= VMFS_NDIRECT;
		for (int d = 1; d <= 4; d++) {
			if (rel < spans[d]) {
				root = VMFS_MAP_IND1 + d - 1;
				depth = d;
				break;
			}
			rel -= spans[d];
		}
		if (root < 0)
			return 0;
	}
	p = le64toh(di->di_map[root]);
	if (!depth)
		goto data;
	pb = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	if (!pb)
		return -ENOMEM;
	for (int d = depth; d >= 1 && p; d--) {
		if (p & ~VMFS_PTR_ADDR_MASK) {
			p = 0;
			break;
		}
		ret = pb_read(c, fsck_ptr_addr(p), ino, d, pb);
		if (ret) {
			p = 0;
			ret = c->abort ? ret : 0;
			break;
		}
		p = le64toh(((struct vmfs_ptrblk *)pb)->pb_ptr[(rel / spans[d - 1]) % P]);
	}
	lun_buf_free(pb);
data:
	if (p && ((p & ~(VMFS_PTR_ADDR_MASK | VMFS_PTR_TBZ)) ||
		  fsck_obj_index(c, data_type(di), fsck_ptr_addr(p)) < 0))
		p = 0;
	*ptr = p;
	return ret;
}

/* Drop ownership of what ino owns under pointer p at level d. */
static void unown_sub(struct fsck_ctx *c, uint64_t ino, enum vmfs_res_type dt,
		      uint64_t p, int d, bool release)
{
	int64_t idx;

	if (!p || c->abort)
		return;
	if (d == 0) {
		if (p & ~(VMFS_PTR_ADDR_MASK | VMFS_PTR_TBZ))
			return;
		idx = fsck_obj_index(c, dt, fsck_ptr_addr(p));
	} else {
		idx = fsck_obj_index(c, VMFS_RES_PTRBLK, fsck_ptr_addr(p));
	}
	if (idx < 0)
		return;
	{
		enum vmfs_res_type t = d ? VMFS_RES_PTRBLK : dt;
		bool found;
		uint64_t owner = fsck_map_get(c, c->own, fsck_own_key(t, (uint64_t)idx),
					      &found);

		/* Not ours (a duplicate left in -n mode, or never claimed). */
		if (!bm_test(c->res[t].owned, (uint64_t)idx) || !found || owner != ino)
			return;
		if (release)
			fsck_obj_release(c, t, (uint64_t)idx);
		else
			fsck_unclaim(c, t, (uint64_t)idx);
	}
	if (d > 0) {
		uint8_t *pb = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);

		if (!pb) {
			fsck_fail(c, -ENOMEM, "walking a block map");
			return;
		}
		if (!pb_read(c, fsck_ptr_addr(p), ino, d, pb))
			for (uint32_t i = 0; i < P; i++)
				unown_sub(c, ino, dt, le64toh(((struct vmfs_ptrblk *)pb)->pb_ptr[i]),
					  d - 1, release);
		lun_buf_free(pb);
	}
}

int fsck_inode_unown(struct fsck_ctx *c, uint8_t *iblk, bool release)
{
	struct vmfs_inode *di = fsck_di(iblk);
	uint64_t ino = le64toh(di->di_ino);
	enum vmfs_res_type dt = data_type(di);

	if (le16toh(di->di_map_type) == VMFS_MAP_INLINE ||
	    le16toh(di->di_map_type) > VMFS_MAP_FILE)
		return 0;
	for (int i = 0; i < VMFS_NDIRECT; i++)
		unown_sub(c, ino, dt, le64toh(di->di_map[i]), 0, release);
	for (int d = 1; d <= 4; d++)
		unown_sub(c, ino, dt, le64toh(di->di_map[VMFS_MAP_IND1 + d - 1]), d,
			  release);
	return c->abort ? -EIO : 0;
}

/* Incarnation and lock generation of whatever the slot held. */
static void old_life(const struct fsck_ctx *c, uint64_t ino, const uint8_t *old,
		     uint64_t *inc, uint64_t *lock_gen)
{
	const struct vmfs_inode *di = (const struct vmfs_inode *)(old + VMFS_OBJ_OFFSET);
	uint64_t addr = fsck_inode_addr(c, ino);

	*inc = 0;
	*lock_gen = le64toh(((const struct vmfs_lock *)old)->lk_hdr.bh_gen);
	if (!lun_md_verify(&di->di_hdr, VMFS_MAGIC_INODE, addr, FSCK_OBJ_LEN))
		*inc = le64toh(di->di_incarnation);
}

int fsck_inode_clear(struct fsck_ctx *c, uint64_t ino, const uint8_t *old)
{
	uint8_t *blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	struct vmfs_inode *di = fsck_di(blk);
	uint64_t inc, lgen;
	int ret;

	if (!blk)
		return -ENOMEM;
	old_life(c, ino, old, &inc, &lgen);
	memset(blk, 0, VMFS_MD_BLOCK_SIZE);
	lock_record_init_free(blk, fsck_inode_addr(c, ino), lgen + 1);
	di->di_ino = htole64(ino);
	di->di_incarnation = htole64(inc);
	di->di_hdr.bh_gen = ((const struct vmfs_inode *)(old + VMFS_OBJ_OFFSET))->di_hdr.bh_gen;
	ret = fsck_inode_write(c, ino, blk);
	lun_buf_free(blk);
	return ret;
}

int fsck_dir_create(struct fsck_ctx *c, uint64_t ino, uint64_t parent,
		    uint32_t perm)
{
	uint8_t *blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	struct vmfs_inode *di = fsck_di(blk);
	uint64_t inc, lgen;
	struct timespec now;
	uint64_t ns;
	int ret;

	if (!blk)
		return -ENOMEM;
	ret = fsck_inode_read(c, ino, blk);
	if (ret)
		goto out;
	old_life(c, ino, blk, &inc, &lgen);
	clock_gettime(CLOCK_REALTIME, &now);
	ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	memset(blk, 0, VMFS_MD_BLOCK_SIZE);
	lock_record_init_free(blk, fsck_inode_addr(c, ino), lgen + 1);
	di->di_ino = htole64(ino);
	di->di_incarnation = htole64(inc + 1);
	di->di_mode = htole32(S_IFDIR | perm);
	di->di_nlink = htole32(2);
	di->di_parent = htole64(parent);
	di->di_map_type = htole16(VMFS_MAP_SMALL);
	di->di_atime_ns = di->di_mtime_ns = di->di_ctime_ns =
		di->di_btime_ns = htole64(ns);
	ret = fsck_inode_write(c, ino, blk);
out:
	lun_buf_free(blk);
	return ret;
}
