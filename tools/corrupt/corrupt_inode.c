/*
 * Corruption tool, pass 3: resource-cluster headers, inodes and block
 * maps.
 *
 * Damage meant to fail verification (a cluster header, an inode, a
 * pointer block) is written unsealed; every other change reseals the
 * block it lands in, so the checker's verification passes and the
 * specific check of the code is what fires.  Targets are regular files,
 * directories, symlinks and special files other than the root and
 * lost+found, always ones reachable from the root.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "corrupt_int.h"

static bool is_user(const struct corrupt *c, const struct corrupt_node *n)
{
	return corrupt_is_user(c, n->ino);
}

static bool is_reg(const struct corrupt *c, const struct corrupt_node *n)
{
	return is_user(c, n) && S_ISREG(n->mode);
}

static bool is_dir(const struct corrupt *c, const struct corrupt_node *n)
{
	(void)c;
	return S_ISDIR(n->mode);
}

static bool is_reg_inline(const struct corrupt *c, const struct corrupt_node *n)
{
	return is_reg(c, n) && n->map_type == VMFS_MAP_INLINE;
}

static bool is_reg_small(const struct corrupt *c, const struct corrupt_node *n)
{
	return is_reg(c, n) && n->map_type == VMFS_MAP_SMALL;
}

static bool has_xattrs(const struct corrupt *c, const struct corrupt_node *n)
{
	(void)c;
	return n->xattr_len > 0;
}

/* Regular files and symlinks with inline data shorter than the area. */
static bool has_inline_tail(const struct corrupt *c, const struct corrupt_node *n)
{
	return is_user(c, n) && (S_ISREG(n->mode) || S_ISLNK(n->mode)) &&
	       n->map_type == VMFS_MAP_INLINE && n->size < VMFS_INLINE_MAX;
}

static uint32_t bsize(const struct corrupt *c, uint16_t map_type)
{
	return map_type == VMFS_MAP_FILE ? c->g.file_block_size :
	       map_type == VMFS_MAP_SMALL ? c->g.small_block_size : 0;
}

/*
 * PR_3_CLUSTER_BAD: the header of a resource cluster with objects in use
 * fails verification (crc, magic or self), so its bitmap must be
 * rebuilt from what the inodes own.
 */
int corrupt_pr3_cluster_bad(struct corrupt *c)
{
	struct corrupt_vec v = { 0 };
	const char *how;
	uint64_t pick;
	int ret = corrupt_clusters(c, true, &v);

	if (!ret && !v.n)
		ret = -ENOENT;
	if (!ret) {
		pick = v.v[corrupt_pick(c, v.n)];
		ret = corrupt_break(c, corrupt_rc_addr(c, pick >> 32,
						       (uint32_t)pick),
				    CK_RC, &how);
		corrupt_say(c, "%s cluster %u header at %llu: %s",
			    vol_res_name(pick >> 32), (uint32_t)pick,
			    (unsigned long long)c->target, how);
	}
	corrupt_vec_free(&v);
	return ret;
}

/* PR_3_INODE_BAD: an allocated inode's block fails verification. */
int corrupt_pr3_inode_bad(struct corrupt *c)
{
	struct corrupt_node *n;
	const char *how;
	int ret = corrupt_pick_node(c, is_user, &n);

	if (ret)
		return ret;
	ret = corrupt_break(c, corrupt_inode_addr(c, n->ino), CK_INODE, &how);
	corrupt_say(c, "inode %llu (%s) at %llu: %s", (unsigned long long)n->ino,
		    corrupt_path(c, n->ino), (unsigned long long)c->target, how);
	corrupt_target_ino(c, n->ino);
	return ret;
}

/* PR_3_INODE_MODE: a regular file's type bits changed to a type that
 * does not exist (resealed). */
int corrupt_pr3_inode_mode(struct corrupt *c)
{
	static const uint32_t bad_types[] = {
		0030000, 0050000, 0070000, 0110000, 0130000, 0150000, 0160000,
		0170000
	};
	struct corrupt_node *n;
	uint32_t mode;
	int ret = corrupt_pick_node(c, is_reg, &n);

	if (!ret)
		ret = corrupt_inode_read(c, n->ino);
	if (ret)
		return ret;
	mode = bad_types[corrupt_pick(c, sizeof(bad_types) / sizeof(bad_types[0]))] |
	       (n->mode & 07777);
	c->fi.mode = mode;
	corrupt_say(c, "inode %llu (%s): mode 0%o -> 0%o", (unsigned long long)n->ino,
		    corrupt_path(c, n->ino), n->mode, mode);
	corrupt_target_ino(c, n->ino);
	return corrupt_inode_write(c, n->ino);
}

static bool map_type_victim(const struct corrupt *c, const struct corrupt_node *n)
{
	return is_user(c, n) &&
	       (S_ISDIR(n->mode) || S_ISFIFO(n->mode) || S_ISSOCK(n->mode) ||
		S_ISCHR(n->mode) || S_ISBLK(n->mode));
}

/*
 * PR_3_INODE_MAP_TYPE: a map type the file type cannot have (resealed):
 * a directory mapped with file blocks, or a FIFO, socket or device node
 * (no data) mapped with small or file blocks.  The map itself is left
 * as it was, so setting the type right loses nothing.
 */
int corrupt_pr3_inode_map_type(struct corrupt *c)
{
	struct corrupt_node *n;
	uint16_t mt;
	int ret = corrupt_pick_node(c, map_type_victim, &n);

	if (!ret)
		ret = corrupt_inode_read(c, n->ino);
	if (ret)
		return ret;
	mt = S_ISDIR(n->mode) ? VMFS_MAP_FILE :
	     corrupt_pick(c, 2) ? VMFS_MAP_SMALL : VMFS_MAP_FILE;
	c->fi.map_type = mt;
	corrupt_say(c, "inode %llu (%s, mode 0%o): map type %u -> %u",
		    (unsigned long long)n->ino, corrupt_path(c, n->ino), n->mode,
		    n->map_type, mt);
	return corrupt_inode_write(c, n->ino);
}

/*
 * PR_3_PTR_RANGE: one pointer of a regular file (to a data block or to a
 * pointer block) moved out of its area or off its object boundary: past
 * the end of the volume, into the inode area, or into the middle of a
 * block.  The holder (inode or pointer block) is resealed.
 */
int corrupt_pr3_ptr_range(struct corrupt *c)
{
	struct corrupt_ptr *v = NULL, *p;
	struct corrupt_node *n;
	uint64_t nv, units;
	const char *how;
	size_t cnt = 0;
	int ret = corrupt_all_ptrs(c, is_reg, 0, 4, &v, &cnt);

	if (!ret && !cnt)
		ret = -ENOENT;
	if (ret)
		goto out;
	p = &v[corrupt_pick(c, cnt)];
	n = corrupt_node(c, p->ino);
	units = p->level ? 1 : bsize(c, n->map_type) / VMFS_MD_BLOCK_SIZE;
	switch (corrupt_pick(c, units > 1 ? 3 : 2)) {
	case 0:
		nv = (c->g.size_bytes >> VMFS_MD_BLOCK_SHIFT) + 1 +
		     corrupt_pick(c, 1u << 20);
		how = "past the end of the volume";
		break;
	case 1:
		nv = (c->g.res[VMFS_RES_INODE].obj_offset >> VMFS_MD_BLOCK_SHIFT) +
		     corrupt_pick(c, c->g.res[VMFS_RES_INODE].count);
		how = "into the inode area";
		break;
	default:
		nv = (p->val & VMFS_PTR_ADDR_MASK) + 1 + corrupt_pick(c, units - 1);
		how = "off the block boundary";
		break;
	}
	nv |= p->val & VMFS_PTR_TBZ;
	ret = corrupt_ptr_set(c, p, nv);
	corrupt_say(c, "inode %llu (%s) %s pointer for block %llu at %llu+%u: 0x%llx -> 0x%llx (%s)",
		    (unsigned long long)p->ino, corrupt_path(c, p->ino),
		    p->level ? "pointer-block" : "data",
		    (unsigned long long)p->lbn, (unsigned long long)p->holder,
		    p->off, (unsigned long long)p->val, (unsigned long long)nv,
		    how);
	corrupt_target_ino(c, p->ino);
out:
	free(v);
	return ret;
}

/* Pointers to pointer blocks of regular files. */
static int pick_ptrblk(struct corrupt *c, struct corrupt_ptr *out)
{
	struct corrupt_ptr *v = NULL;
	size_t cnt = 0;
	int ret = corrupt_all_ptrs(c, is_reg, 1, 4, &v, &cnt);

	if (!ret && !cnt)
		ret = -ENOENT;
	if (!ret)
		*out = v[corrupt_pick(c, cnt)];
	free(v);
	return ret;
}

/* PR_3_PTRBLK_BAD: a pointer block of a regular file fails
 * verification; its subtree of the map is lost. */
int corrupt_pr3_ptrblk_bad(struct corrupt *c)
{
	struct corrupt_ptr p;
	const char *how;
	int ret = pick_ptrblk(c, &p);

	if (ret)
		return ret;
	ret = corrupt_break(c, vmfs_ptr_addr(p.val), CK_PTRBLK, &how);
	corrupt_say(c, "inode %llu (%s) level-%d pointer block at %llu (from block %llu): %s",
		    (unsigned long long)p.ino, corrupt_path(c, p.ino), p.level,
		    (unsigned long long)vmfs_ptr_addr(p.val),
		    (unsigned long long)p.lbn, how);
	corrupt_target_ino(c, p.ino);
	return ret;
}

/*
 * PR_3_PTRBLK_OWNER: a pointer block of a regular file, resealed, that
 * names another inode as its owner or sits at the wrong tree level.
 */
int corrupt_pr3_ptrblk_owner(struct corrupt *c)
{
	struct vmfs_ptrblk *pb = (struct vmfs_ptrblk *)c->blk;
	struct fmt_ptrblk h;
	struct corrupt_ptr p;
	uint64_t addr;
	int ret = pick_ptrblk(c, &p);

	if (ret)
		return ret;
	addr = vmfs_ptr_addr(p.val);
	ret = corrupt_read(c, c->blk, addr);
	if (ret)
		return ret;
	(void)fmt_ptrblk_decode(pb, &h);
	if (corrupt_pick(c, 2)) {
		uint64_t other = c->nodes[corrupt_pick(c, c->nnodes)].ino;

		if (other == p.ino)
			other = p.ino == c->g.root_ino ? c->g.lostfound_ino :
				c->g.root_ino;
		h.owner_ino = other;
		corrupt_say(c, "inode %llu (%s) level-%d pointer block at %llu: owner %llu",
			    (unsigned long long)p.ino, corrupt_path(c, p.ino),
			    p.level, (unsigned long long)addr,
			    (unsigned long long)other);
	} else {
		uint32_t lvl = p.level > 1 ? (uint32_t)p.level - 1 :
			       (uint32_t)p.level + 1;

		h.level = lvl;
		corrupt_say(c, "inode %llu (%s) level-%d pointer block at %llu: level %u",
			    (unsigned long long)p.ino, corrupt_path(c, p.ino),
			    p.level, (unsigned long long)addr, lvl);
	}
	fmt_ptrblk_encode(&h, pb);
	corrupt_seal(c->blk, CK_PTRBLK, addr);
	c->target = addr;
	corrupt_target_ino(c, p.ino);
	return corrupt_write(c, c->blk, addr);
}

/* Written (not to-be-zeroed) data pointers inside their area. */
static bool dup_usable(struct corrupt *c, const struct corrupt_ptr *p)
{
	const struct corrupt_node *n = corrupt_node(c, p->ino);

	return p->level == 0 && !(p->val & VMFS_PTR_TBZ) &&
	       corrupt_res_index(c, n->map_type == VMFS_MAP_FILE ?
				 VMFS_RES_FILE : VMFS_RES_SMALL,
				 vmfs_ptr_addr(p->val)) >= 0;
}

/*
 * PR_3_BLOCK_DUP: one written data pointer of a regular file (the
 * victim) made to point at a written block of another regular file with
 * the same map type; the victim's holder is resealed and its own block
 * is left allocated (a leak).  Cloning must leave the owner's data as it
 * was, so only the victim is a target.
 */
int corrupt_pr3_block_dup(struct corrupt *c)
{
	struct corrupt_ptr *v = NULL, *victim = NULL, *src = NULL;
	struct corrupt_vec ok = { 0 };
	size_t cnt = 0;
	int ret = corrupt_all_ptrs(c, is_reg, 0, 0, &v, &cnt);

	/* Compact to usable pointers; a victim needs a source elsewhere. */
	if (!ret) {
		size_t k = 0;

		for (size_t i = 0; i < cnt; i++)
			if (dup_usable(c, &v[i]))
				v[k++] = v[i];
		cnt = k;
	}
	for (size_t i = 0; i < cnt && !ret; i++) {
		uint16_t mi = corrupt_node(c, v[i].ino)->map_type;

		for (size_t j = 0; j < cnt; j++)
			if (v[j].ino != v[i].ino &&
			    corrupt_node(c, v[j].ino)->map_type == mi) {
				ret = corrupt_vec_push(&ok, i);
				break;
			}
	}
	if (!ret && !ok.n)
		ret = -ENOENT;
	if (ret)
		goto out;
	victim = &v[ok.v[corrupt_pick(c, ok.n)]];
	{
		struct corrupt_vec srcs = { 0 };
		uint16_t mt = corrupt_node(c, victim->ino)->map_type;

		for (size_t j = 0; j < cnt && !ret; j++)
			if (v[j].ino != victim->ino &&
			    corrupt_node(c, v[j].ino)->map_type == mt)
				ret = corrupt_vec_push(&srcs, j);
		if (!ret)
			src = &v[srcs.v[corrupt_pick(c, srcs.n)]];
		corrupt_vec_free(&srcs);
	}
	if (ret)
		goto out;
	ret = corrupt_ptr_set(c, victim, src->val & VMFS_PTR_ADDR_MASK);
	corrupt_say(c, "inode %llu (%s) block %llu: 0x%llx -> 0x%llx, block %llu of inode %llu (%s)",
		    (unsigned long long)victim->ino, corrupt_path(c, victim->ino),
		    (unsigned long long)victim->lbn,
		    (unsigned long long)victim->val,
		    (unsigned long long)(src->val & VMFS_PTR_ADDR_MASK),
		    (unsigned long long)src->lbn, (unsigned long long)src->ino,
		    corrupt_path(c, src->ino));
	corrupt_target_ino(c, victim->ino);
out:
	corrupt_vec_free(&ok);
	free(v);
	return ret;
}

/* PR_3_ALLOC_BYTES: a regular file's di_alloc_bytes off by a block or
 * a pointer block (resealed); data untouched. */
int corrupt_pr3_alloc_bytes(struct corrupt *c)
{
	struct corrupt_node *n;
	uint64_t bs, nv;
	int ret = corrupt_pick_node(c, is_reg, &n);

	if (!ret)
		ret = corrupt_inode_read(c, n->ino);
	if (ret)
		return ret;
	bs = bsize(c, n->map_type);
	if (!bs)
		bs = c->g.small_block_size;
	switch (corrupt_pick(c, 3)) {
	case 0:
		nv = n->alloc_bytes + bs;
		break;
	case 1:
		nv = n->alloc_bytes >= bs ? n->alloc_bytes - bs :
		     n->alloc_bytes + 2 * bs;
		break;
	default:
		nv = n->alloc_bytes + VMFS_MD_BLOCK_SIZE;
		break;
	}
	c->fi.alloc_bytes = nv;
	corrupt_say(c, "inode %llu (%s): alloc bytes %llu -> %llu",
		    (unsigned long long)n->ino, corrupt_path(c, n->ino),
		    (unsigned long long)n->alloc_bytes, (unsigned long long)nv);
	return corrupt_inode_write(c, n->ino);
}

static bool any_node(const struct corrupt *c, const struct corrupt_node *n)
{
	(void)c;
	(void)n;
	return true;
}

/*
 * PR_3_TBZ_BAD: the to-be-zeroed flag set where it may never be: on a
 * directory's data pointer (chunks are always written) or on a pointer
 * to a pointer block.  Clearing it restores the volume exactly.
 */
int corrupt_pr3_tbz_bad(struct corrupt *c)
{
	struct corrupt_ptr *dv = NULL, *pv = NULL, p;
	size_t dn = 0, pn = 0, k;
	int ret = corrupt_all_ptrs(c, is_dir, 0, 0, &dv, &dn);

	if (!ret)
		ret = corrupt_all_ptrs(c, any_node, 1, 4, &pv, &pn);
	if (!ret && !dn && !pn)
		ret = -ENOENT;
	if (ret)
		goto out;
	k = corrupt_pick(c, dn + pn);
	p = k < dn ? dv[k] : pv[k - dn];
	ret = corrupt_ptr_set(c, &p, p.val | VMFS_PTR_TBZ);
	corrupt_say(c, "inode %llu (%s) %s pointer for block %llu at %llu+%u: to-be-zeroed set",
		    (unsigned long long)p.ino, corrupt_path(c, p.ino),
		    p.level ? "pointer-block" : "directory data",
		    (unsigned long long)p.lbn, (unsigned long long)p.holder,
		    p.off);
out:
	free(dv);
	free(pv);
	return ret;
}

/* PR_3_INLINE_TAIL: non-zero bytes after EOF in an inline file's or
 * symlink's data area (resealed); the data itself is intact. */
int corrupt_pr3_inline_tail(struct corrupt *c)
{
	struct corrupt_node *n;
	uint32_t len, off;
	int ret = corrupt_pick_node(c, has_inline_tail, &n);

	if (!ret)
		ret = corrupt_inode_read(c, n->ino);
	if (ret)
		return ret;
	len = 1 + (uint32_t)corrupt_pick(c, 16);
	if (len > VMFS_INLINE_MAX - n->size)
		len = (uint32_t)(VMFS_INLINE_MAX - n->size);
	off = (uint32_t)n->size +
	      (uint32_t)corrupt_pick(c, VMFS_INLINE_MAX - n->size - len + 1);
	for (uint32_t i = 0; i < len; i++)
		corrupt_di(c)->di_inline[off + i] = (uint8_t)(1 + corrupt_pick(c, 255));
	corrupt_say(c, "inode %llu (%s, size %llu): %u non-zero bytes at inline offset %u",
		    (unsigned long long)n->ino, corrupt_path(c, n->ino),
		    (unsigned long long)n->size, len, off);
	return corrupt_inode_write(c, n->ino);
}

/* PR_3_INLINE_SIZE: an inline regular file claims more bytes than the
 * inline area holds (resealed). */
int corrupt_pr3_inline_size(struct corrupt *c)
{
	struct corrupt_node *n;
	uint64_t size;
	int ret = corrupt_pick_node(c, is_reg_inline, &n);

	if (!ret)
		ret = corrupt_inode_read(c, n->ino);
	if (ret)
		return ret;
	size = VMFS_INLINE_MAX + 1 + corrupt_pick(c, 8192);
	c->fi.size = size;
	corrupt_say(c, "inode %llu (%s): inline size %llu -> %llu",
		    (unsigned long long)n->ino, corrupt_path(c, n->ino),
		    (unsigned long long)n->size, (unsigned long long)size);
	corrupt_target_ino(c, n->ino);
	return corrupt_inode_write(c, n->ino);
}

static bool dir_with_chunks(const struct corrupt *c, const struct corrupt_node *n)
{
	(void)c;
	return S_ISDIR(n->mode) && n->size >= VMFS_MD_BLOCK_SIZE;
}

/* PR_3_DIR_SIZE: a directory's size not a whole number of chunks
 * (resealed); every chunk is intact. */
int corrupt_pr3_dir_size(struct corrupt *c)
{
	struct corrupt_node *n;
	uint64_t size;
	int ret = corrupt_pick_node(c, dir_with_chunks, &n);

	if (!ret)
		ret = corrupt_inode_read(c, n->ino);
	if (ret)
		return ret;
	size = n->size + 1 + corrupt_pick(c, VMFS_MD_BLOCK_SIZE - 1);
	c->fi.size = size;
	corrupt_say(c, "directory %llu (%s): size %llu -> %llu",
		    (unsigned long long)n->ino, corrupt_path(c, n->ino),
		    (unsigned long long)n->size, (unsigned long long)size);
	return corrupt_inode_write(c, n->ino);
}

/*
 * PR_3_XATTR_BAD: the xattr area of an inode that has some made
 * inconsistent (resealed): a truncated record after the last one, the
 * last record's value running past di_xattr_len, or its name empty.
 */
int corrupt_pr3_xattr_bad(struct corrupt *c)
{
	struct vmfs_inode *di = corrupt_di(c);
	struct corrupt_node *n;
	uint32_t len, off = 0, last = 0;
	int ret = corrupt_pick_node(c, has_xattrs, &n);

	if (!ret)
		ret = corrupt_inode_read(c, n->ino);
	if (ret)
		return ret;
	len = c->fi.xattr_len;
	while (off + sizeof(struct vmfs_xattr_rec) <= len) {
		size_t nl, vl;
		uint32_t rl;

		fmt_xattr_rec_decode(di->di_xattr + off, &nl, &vl);
		rl = (uint32_t)(sizeof(struct vmfs_xattr_rec) + nl + vl);

		last = off;
		if (off + rl > len)
			break;
		off += rl;
	}
	switch (len + 3 <= VMFS_XATTR_AREA ? corrupt_pick(c, 3) :
		1 + corrupt_pick(c, 2)) {
	case 0: {
		uint32_t k = 1 + (uint32_t)corrupt_pick(c, 3);

		for (uint32_t i = 0; i < k; i++)
			di->di_xattr[len + i] = (uint8_t)(1 + corrupt_pick(c, 255));
		c->fi.xattr_len = (uint16_t)(len + k);
		corrupt_say(c, "inode %llu (%s): xattr area %u -> %u bytes, a truncated record at the end",
			    (unsigned long long)n->ino, corrupt_path(c, n->ino),
			    len, len + k);
		break;
	}
	case 1: {
		size_t nl, ovl;
		uint32_t vl;

		fmt_xattr_rec_decode(di->di_xattr + last, &nl, &ovl);
		vl = (uint32_t)ovl + 1 + (uint32_t)corrupt_pick(c, 200);
		fmt_xattr_rec_encode(di->di_xattr + last, nl, vl);
		corrupt_say(c, "inode %llu (%s): last xattr record at %u: value length %u runs past %u",
			    (unsigned long long)n->ino, corrupt_path(c, n->ino),
			    last, vl, len);
		break;
	}
	default: {
		struct vmfs_xattr_rec *r = (void *)(di->di_xattr + last);

		r->xr_name_len = 0;
		corrupt_say(c, "inode %llu (%s): last xattr record at %u: empty name",
			    (unsigned long long)n->ino, corrupt_path(c, n->ino),
			    last);
		break;
	}
	}
	corrupt_target_ino(c, n->ino);
	return corrupt_inode_write(c, n->ino);
}

/*
 * PR_3_SMALL_TOO_BIG: a small-block regular file whose size needs more
 * than the 251 direct pointers (resealed), which only file-block maps
 * may use.
 */
int corrupt_pr3_small_too_big(struct corrupt *c)
{
	struct corrupt_node *n;
	uint64_t size;
	int ret = corrupt_pick_node(c, is_reg_small, &n);

	if (!ret)
		ret = corrupt_inode_read(c, n->ino);
	if (ret)
		return ret;
	size = (uint64_t)VMFS_NDIRECT * c->g.small_block_size + 1 +
	       corrupt_pick(c, c->g.small_block_size);
	c->fi.size = size;
	corrupt_say(c, "inode %llu (%s, small blocks): size %llu -> %llu",
		    (unsigned long long)n->ino, corrupt_path(c, n->ino),
		    (unsigned long long)n->size, (unsigned long long)size);
	corrupt_target_ino(c, n->ino);
	return corrupt_inode_write(c, n->ino);
}
