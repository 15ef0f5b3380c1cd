/*
 * fsck's side of the engine's writers (vol_raw_*, include/vmfs/vol.h):
 * what they work through, and the bookkeeping of fsck's own maps that
 * goes with a repair, so later passes do not report fsck's changes.
 *
 * The writers read through fsck_read (the journal overlay of a read-only
 * run), write through fsck_write_md (nothing in -n mode, nothing outside
 * the metadata areas) and allocate with fsck_obj_alloc: from the
 * ownership fsck rebuilt, never from the bitmaps on disk.
 */
#include <dirent.h>
#include <errno.h>
#include "fsck_int.h"

static int raw_read(void *ctx, void *blk, uint64_t addr)
{
	return fsck_read(ctx, blk, VMFS_MD_BLOCK_SIZE, addr);
}

static int raw_write(void *ctx, const void *blk, uint64_t addr)
{
	return fsck_write_md(ctx, blk, VMFS_MD_BLOCK_SIZE, addr);
}

static int raw_alloc(void *ctx, enum vmfs_res_type t, uint64_t owner,
		     uint64_t *idx)
{
	return fsck_obj_alloc(ctx, t, owner, idx);
}

const struct vol_raw *fsck_raw(struct fsck_ctx *c)
{
	if (!c->raw.g)
		c->raw = (struct vol_raw){
			.g = &c->g, .md_read = raw_read, .md_write = raw_write,
			.res_alloc = raw_alloc, .ctx = c,
		};
	return &c->raw;
}

struct unown {
	struct fsck_ctx *c;
	uint64_t ino;
	bool release;
};

static int unown_one(void *ctx, enum vmfs_res_type t, uint64_t idx, int level)
{
	struct unown *u = ctx;
	struct fsck_ctx *c = u->c;
	uint64_t owner;
	bool found;

	(void)level;
	if (c->abort)
		return -EIO;
	owner = fsck_map_get(c, c->own, fsck_own_key(t, idx), &found);
	/* Not ours (a duplicate left in -n mode, or never claimed): nor is
	 * anything below it. */
	if (!bm_test(c->res[t].owned, idx) || !found || owner != u->ino)
		return 0;
	if (u->release)
		fsck_obj_release(c, t, idx);
	else
		fsck_unclaim(c, t, idx);
	return 1;
}

int fsck_inode_unown(struct fsck_ctx *c, uint8_t *iblk, bool release)
{
	struct fmt_inode fi;
	struct unown u;
	int ret;

	(void)fmt_inode_decode(fsck_di(iblk), &fi);
	u = (struct unown){ c, fi.ino, release };
	ret = vol_raw_bmap_walk(fsck_raw(c), iblk, unown_one, &u);

	if (ret && !c->abort)
		fsck_fail(c, ret, "walking the block map of inode %llu",
			  (unsigned long long)u.ino);
	return c->abort ? -EIO : 0;
}

/* The mode and link count pass 4 and 5 judge ino by, as now on disk. */
static void note_inode(struct fsck_ctx *c, uint64_t ino, uint8_t *iblk)
{
	struct fmt_inode fi;

	(void)fmt_inode_decode(fsck_di(iblk), &fi);
	fsck_map_set(c, c->imode, ino, (uint64_t)fi.mode |
		     (uint64_t)fi.nlink << 32);
}

int fsck_inode_adjust(struct fsck_ctx *c, uint64_t ino, int nlink_delta,
		      int nentries_delta)
{
	uint8_t *iblk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	int ret;

	if (!iblk)
		return -ENOMEM;
	ret = vol_raw_inode_adjust(fsck_raw(c), ino, iblk, nlink_delta,
				   nentries_delta);
	if (!ret)
		note_inode(c, ino, iblk);
	lun_buf_free(iblk);
	return ret;
}

int fsck_dir_add(struct fsck_ctx *c, uint64_t dir, const char *name,
		 uint64_t ino, uint8_t dtype)
{
	uint8_t *iblk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	uint32_t hint = c->add_dir == dir ? c->add_hint : 0;
	uint64_t loc;
	int ret;

	if (!iblk)
		return -ENOMEM;
	ret = vol_raw_dir_add(fsck_raw(c), dir, name, ino, dtype, iblk, &hint,
			      &loc);
	if (!ret) {
		c->add_dir = dir;
		c->add_hint = hint;
		note_inode(c, dir, iblk);
		fsck_map_add(c, c->nent, dir, 1);
		fsck_map_add(c, c->links, ino, 1);
		if (dtype == DT_DIR) {
			fsck_map_set(c, c->parent, ino, dir);
			fsck_map_set(c, c->dloc, ino, loc);
		}
	}
	lun_buf_free(iblk);
	return ret;
}

int fsck_dir_remove(struct fsck_ctx *c, uint64_t dir, uint64_t loc)
{
	uint8_t *iblk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	uint64_t target;
	uint8_t type;
	int ret;

	if (!iblk)
		return -ENOMEM;
	ret = vol_raw_dir_remove(fsck_raw(c), dir, loc, iblk, &target, &type);
	if (!ret) {
		note_inode(c, dir, iblk);
		fsck_map_add(c, c->nent, dir, -1);
		fsck_map_add(c, c->links, target, -1);
	}
	lun_buf_free(iblk);
	return ret;
}
