/*
 * Pass 3, continued: data blocks claimed by two owners (e2fsck pass 1B-D).
 *
 * Pass 3 remembers every second claim of a data block: who claimed it and
 * where the pointer sits (a slot of an inode's direct map or of a pointer
 * block).  Only once every inode has been walked is the ownership map
 * complete, so only now can a free block be told from one in use.  For
 * each duplicate (PR_3_BLOCK_DUP): allocate a free object of the same
 * type from the ownership maps, copy the data, and repoint the second
 * claimant's pointer (keeping its TBZ flag), so both files keep the bytes
 * they showed before.  Duplicated pointer blocks were already dropped at
 * their second reference during the walk.
 *
 * Hands on: ownership of the clones (claimed for the second owner, marked
 * in disk_bm, clusters dirty for pass 6).
 */
#include <errno.h>
#include <string.h>
#include "fsck_int.h"

#define COPY_CHUNK (1024u * 1024u)

static int clone_data(struct fsck_ctx *c, enum vmfs_res_type t, uint64_t from,
		      uint64_t to, uint8_t *buf)
{
	uint32_t size = c->g.res[t].obj_size;
	int ret = 0;

	for (uint32_t off = 0; !ret && off < size; off += COPY_CHUNK) {
		uint32_t n = size - off < COPY_CHUNK ? size - off : COPY_CHUNK;

		ret = fsck_read(c, buf, n, from + off);
		if (!ret)
			ret = fsck_write_data(c, buf, n, to + off);
	}
	return ret;
}

/* Point slot d->slot of the holder block at the clone. */
static int repoint(struct fsck_ctx *c, const struct fsck_dup *d, uint64_t old_addr,
		   uint64_t new_addr, uint8_t *blk)
{
	le64 *slot;
	uint64_t p;
	int ret;

	ret = fsck_read(c, blk, VMFS_MD_BLOCK_SIZE, d->holder);
	if (ret)
		return ret;
	slot = d->in_inode ? &fsck_di(blk)->di_map[d->slot]
			   : &((struct vmfs_ptrblk *)blk)->pb_ptr[d->slot];
	p = fmt_ptr_load(slot);
	if (vmfs_ptr_addr(p) != old_addr)
		return -ESTALE;  /* the pointer moved: leave the block alone */
	fmt_ptr_store(slot, (new_addr >> VMFS_MD_BLOCK_SHIFT) | (p & VMFS_PTR_TBZ));
	if (d->in_inode)
		return vol_raw_inode_write(fsck_raw(c), d->ino, blk);
	fsck_seal(blk, VMFS_MAGIC_PTRBLK, d->holder, VMFS_MD_BLOCK_SIZE);
	return fsck_write_md(c, blk, VMFS_MD_BLOCK_SIZE, d->holder);
}

int fsck_pass3_dups(struct fsck_ctx *c)
{
	uint8_t *buf, *blk;
	int ret = 0;

	if (!c->ndups)
		return 0;
	buf = lun_buf_alloc(COPY_CHUNK);
	blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	if (!buf || !blk) {
		lun_buf_free(buf);
		lun_buf_free(blk);
		return -ENOMEM;
	}
	for (size_t i = 0; i < c->ndups && !c->abort; i++) {
		const struct fsck_dup *d = &c->dups[i];
		enum vmfs_res_type t = d->type;
		uint64_t old_addr = fsck_obj_addr(c, t, d->idx), nidx = 0;
		uint64_t first = fsck_map_get(c, c->own, fsck_own_key(t, d->idx), NULL);
		int err = 0;

		fsck_progress(c, 3, "duplicate blocks", i, c->ndups);
		if (c->writable)
			err = fsck_obj_alloc(c, t, d->ino, &nidx);
		if (err) {
			fsck_unfixed(c, PR_3_BLOCK_DUP, old_addr,
				     "%s at %llu: inode %llu and inode %llu; no free %s to copy it to",
				     vol_res_name(t), (unsigned long long)old_addr,
				     (unsigned long long)first, (unsigned long long)d->ino,
				     vol_res_name(t));
			continue;
		}
		if (!fsck_fix(c, PR_3_BLOCK_DUP, old_addr,
			      "%s at %llu: inode %llu and inode %llu (slot %u of the block at %llu)",
			      vol_res_name(t), (unsigned long long)old_addr,
			      (unsigned long long)first, (unsigned long long)d->ino,
			      d->slot, (unsigned long long)d->holder)) {
			if (c->writable)
				fsck_obj_release(c, t, nidx);
			continue;
		}
		ret = clone_data(c, t, old_addr, fsck_obj_addr(c, t, nidx), buf);
		if (!ret)
			ret = repoint(c, d, old_addr, fsck_obj_addr(c, t, nidx), blk);
		if (ret == -ESTALE) {
			fsck_obj_release(c, t, nidx);
			ret = 0;
		}
		if (ret)
			break;
	}
	lun_buf_free(buf);
	lun_buf_free(blk);
	return ret;
}
