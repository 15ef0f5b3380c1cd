/*
 * Directory entries as pass 4 and pass 5 change them: add (reconnecting
 * to lost+found, naming lost+found in the root), remove, and the inode
 * counts that go with them.
 *
 * Chunks are written exactly as vmfsd/dir.c writes them: a 4 KiB
 * vmfs_dirblk at byte k * 4096 of the directory's data (small block
 * k * 4096 / S), db_dir_ino, db_chunk = k, db_count = live entries,
 * de_hash = lun_crc32c(0, name, len), names NUL-padded, "." and ".."
 * never stored.  A repair updates the directory inode (size, nentries,
 * nlink for a subdirectory) and the maps in the same step, so pass 5
 * does not report fsck's own changes.  New chunks only ever need direct
 * pointers here (251 small blocks of chunks per directory are plenty for
 * lost+found); beyond that the add fails with -ENOSPC and the problem is
 * left unfixed.
 */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include "fsck_int.h"

#define NPER VMFS_DIRENTS_PER_CHUNK

uint8_t fsck_mode_dtype(uint32_t mode)
{
	return (uint8_t)((mode & S_IFMT) >> 12);
}

int fsck_inode_adjust(struct fsck_ctx *c, uint64_t ino, int nlink_delta,
		      int nentries_delta)
{
	uint8_t *blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	struct vmfs_inode *di = fsck_di(blk);
	uint64_t nlink;
	int ret;

	if (!blk)
		return -ENOMEM;
	ret = fsck_inode_read(c, ino, blk);
	if (!ret) {
		nlink = (uint64_t)le32toh(di->di_nlink) + (uint64_t)(int64_t)nlink_delta;
		di->di_nlink = htole32((uint32_t)nlink);
		di->di_nentries = htole64(le64toh(di->di_nentries) +
					  (uint64_t)(int64_t)nentries_delta);
		fsck_map_set(c, c->imode, ino,
			     (uint64_t)le32toh(di->di_mode) | (uint64_t)(uint32_t)nlink << 32);
		ret = fsck_inode_write(c, ino, blk);
	}
	lun_buf_free(blk);
	return ret;
}

/* Read chunk k of directory dir (inode image iblk); 0 and *addr, or
 * -ENOENT when unmapped or damaged. */
static int chunk_read(struct fsck_ctx *c, uint64_t dir, uint8_t *iblk,
		      uint32_t k, uint8_t *cb, uint64_t *addr)
{
	uint32_t per_blk = c->g.small_block_size / VMFS_MD_BLOCK_SIZE;
	const struct vmfs_dirblk *db = (const struct vmfs_dirblk *)cb;
	uint64_t p;
	int ret;

	ret = fsck_bmap_get(c, iblk, k / per_blk, &p);
	if (ret)
		return ret;
	if (!p || (p & VMFS_PTR_TBZ))
		return -ENOENT;
	*addr = fsck_ptr_addr(p) + (uint64_t)(k % per_blk) * VMFS_MD_BLOCK_SIZE;
	ret = fsck_read(c, cb, VMFS_MD_BLOCK_SIZE, *addr);
	if (ret)
		return ret;
	if (lun_md_verify(&db->db_hdr, VMFS_MAGIC_DIRBLK, *addr, VMFS_MD_BLOCK_SIZE) ||
	    le64toh(db->db_dir_ino) != dir || le32toh(db->db_chunk) != k)
		return -ENOENT;
	return 0;
}

static void dirent_fill(struct vmfs_dirent *de, const char *name, uint64_t ino,
			uint8_t dtype)
{
	size_t len = strlen(name);

	memset(de, 0, sizeof(*de));
	de->de_ino = htole64(ino);
	de->de_hash = htole32(lun_crc32c(0, name, len));
	de->de_name_len = (uint8_t)len;
	de->de_type = dtype;
	memcpy(de->de_name, name, len);
}

int fsck_dir_add(struct fsck_ctx *c, uint64_t dir, const char *name,
		 uint64_t ino, uint8_t dtype)
{
	uint32_t per_blk = c->g.small_block_size / VMFS_MD_BLOCK_SIZE;
	uint8_t *iblk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	uint8_t *cb = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	struct vmfs_dirblk *db = (struct vmfs_dirblk *)cb;
	struct vmfs_inode *di = fsck_di(iblk);
	uint64_t nchunks, caddr = 0, p;
	uint32_t k, slot = 0;
	bool found = false;
	int ret;

	if (!iblk || !cb) {
		ret = -ENOMEM;
		goto out;
	}
	if (strlen(name) > VMFS_NAME_MAX) {
		ret = -ENAMETOOLONG;
		goto out;
	}
	ret = fsck_inode_read(c, dir, iblk);
	if (ret)
		goto out;
	nchunks = le64toh(di->di_size) / VMFS_MD_BLOCK_SIZE;
	if (nchunks > UINT32_MAX / NPER) {
		ret = -ENOSPC;
		goto out;
	}
	k = c->add_dir == dir && c->add_hint < nchunks ? (uint32_t)c->add_hint : 0;
	for (; k < nchunks && !found; k++) {
		ret = chunk_read(c, dir, iblk, k, cb, &caddr);
		if (ret == -ENOENT)
			continue;
		if (ret)
			goto out;
		if (le16toh(db->db_count) >= NPER)
			continue;
		for (slot = 0; slot < NPER; slot++)
			if (!db->db_ents[slot].de_ino)
				break;
		found = slot < NPER;
	}
	if (found) {
		k--;
	} else {
		/* Append chunk nchunks, in a new small block when it starts one. */
		k = (uint32_t)nchunks;
		ret = fsck_bmap_get(c, iblk, k / per_blk, &p);
		if (ret)
			goto out;
		if (!p) {
			uint64_t idx;

			if (k / per_blk >= VMFS_NDIRECT) {
				ret = -ENOSPC;
				goto out;
			}
			ret = fsck_obj_alloc(c, VMFS_RES_SMALL, dir, &idx);
			if (ret)
				goto out;
			p = fsck_obj_addr(c, VMFS_RES_SMALL, idx) >> VMFS_MD_BLOCK_SHIFT;
			di->di_map[k / per_blk] = htole64(p);
			di->di_alloc_bytes = htole64(le64toh(di->di_alloc_bytes) +
						     c->g.small_block_size);
		}
		caddr = fsck_ptr_addr(p) + (uint64_t)(k % per_blk) * VMFS_MD_BLOCK_SIZE;
		memset(cb, 0, VMFS_MD_BLOCK_SIZE);
		db->db_dir_ino = htole64(dir);
		db->db_chunk = htole32(k);
		di->di_size = htole64((uint64_t)(k + 1) * VMFS_MD_BLOCK_SIZE);
		slot = 0;
	}
	dirent_fill(&db->db_ents[slot], name, ino, dtype);
	db->db_count = htole16(le16toh(db->db_count) + 1);
	fsck_seal(&db->db_hdr, VMFS_MAGIC_DIRBLK, caddr, VMFS_MD_BLOCK_SIZE);
	ret = fsck_write_md(c, cb, VMFS_MD_BLOCK_SIZE, caddr);
	if (ret)
		goto out;
	c->add_dir = dir;
	c->add_hint = k;
	di->di_nentries = htole64(le64toh(di->di_nentries) + 1);
	if (dtype == DT_DIR)
		di->di_nlink = htole32(le32toh(di->di_nlink) + 1);
	fsck_map_set(c, c->imode, dir, (uint64_t)le32toh(di->di_mode) |
		     (uint64_t)le32toh(di->di_nlink) << 32);
	ret = fsck_inode_write(c, dir, iblk);
	if (ret)
		goto out;
	fsck_map_add(c, c->nent, dir, 1);
	fsck_map_add(c, c->links, ino, 1);
	if (dtype == DT_DIR) {
		fsck_map_set(c, c->parent, ino, dir);
		fsck_map_set(c, c->dloc, ino, caddr | slot);
	}
out:
	lun_buf_free(iblk);
	lun_buf_free(cb);
	return ret;
}

int fsck_dir_remove(struct fsck_ctx *c, uint64_t dir, uint64_t loc)
{
	uint8_t *cb = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	struct vmfs_dirblk *db = (struct vmfs_dirblk *)cb;
	uint64_t caddr = loc & ~(uint64_t)(VMFS_MD_BLOCK_SIZE - 1), target;
	uint32_t slot = (uint32_t)(loc & (VMFS_MD_BLOCK_SIZE - 1));
	bool isdir;
	int ret;

	if (!cb)
		return -ENOMEM;
	/* loc comes from pass 4's own map: a chunk in the small-block area. */
	if (slot >= NPER || caddr < c->g.res[VMFS_RES_SMALL].obj_offset) {
		ret = -EINVAL;
		goto out;
	}
	ret = fsck_read(c, cb, VMFS_MD_BLOCK_SIZE, caddr);
	if (ret)
		goto out;
	if (lun_md_verify(&db->db_hdr, VMFS_MAGIC_DIRBLK, caddr, VMFS_MD_BLOCK_SIZE) ||
	    le64toh(db->db_dir_ino) != dir || !db->db_ents[slot].de_ino) {
		ret = -ESTALE;
		goto out;
	}
	target = le64toh(db->db_ents[slot].de_ino);
	isdir = db->db_ents[slot].de_type == DT_DIR;
	memset(&db->db_ents[slot], 0, sizeof(db->db_ents[slot]));
	if (db->db_count)
		db->db_count = htole16(le16toh(db->db_count) - 1);
	fsck_seal(&db->db_hdr, VMFS_MAGIC_DIRBLK, caddr, VMFS_MD_BLOCK_SIZE);
	ret = fsck_write_md(c, cb, VMFS_MD_BLOCK_SIZE, caddr);
	if (!ret)
		ret = fsck_inode_adjust(c, dir, isdir ? -1 : 0, -1);
	if (!ret) {
		fsck_map_add(c, c->nent, dir, -1);
		fsck_map_add(c, c->links, target, -1);
	}
out:
	lun_buf_free(cb);
	return ret;
}

bool fsck_dir_has(struct fsck_ctx *c, uint64_t dir, const char *name)
{
	uint8_t *iblk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	uint8_t *cb = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	const struct vmfs_dirblk *db = (const struct vmfs_dirblk *)cb;
	size_t len = strlen(name);
	uint64_t nchunks, caddr;
	bool has = false;

	if (!iblk || !cb || fsck_inode_read(c, dir, iblk))
		goto out;
	nchunks = le64toh(fsck_di(iblk)->di_size) / VMFS_MD_BLOCK_SIZE;
	for (uint64_t k = 0; k < nchunks && k <= UINT32_MAX && !has && !c->abort; k++) {
		if (chunk_read(c, dir, iblk, (uint32_t)k, cb, &caddr))
			continue;
		for (int i = 0; i < NPER && !has; i++)
			has = db->db_ents[i].de_ino && db->db_ents[i].de_name_len == len &&
			      !memcmp(db->db_ents[i].de_name, name, len);
	}
out:
	lun_buf_free(iblk);
	lun_buf_free(cb);
	return has;
}
