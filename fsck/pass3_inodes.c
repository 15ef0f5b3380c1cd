/*
 * Pass 3: resource clusters, inodes and block maps (e2fsck pass 1).
 *
 * Checks:
 *   - every resource-cluster header: envelope, type, index, object count,
 *     first object (PR_3_CLUSTER_BAD: its bits are unknown; pass 6
 *     rebuilds it from the ownership this pass computes); one marked
 *     never initialised (VMFS_RC_UNINIT) has no bit set in its bitmap,
 *     orphan or unlinked map (PR_3_CLUSTER_UNINIT: the bits are kept and the mark
 *     dropped in pass 6), and its objects are never read: its inodes are
 *     not scanned and a pointer into it is a damaged pointer block;
 *   - every inode slot whose bitmap bit is set, or whose block verifies
 *     as an inode with mode != 0 (the engine writes mode 0 before it
 *     clears the bit, so a verified mode != 0 is an inode in use):
 *       in use but failing verification (PR_3_INODE_BAD) or of an unknown
 *       type (PR_3_INODE_MODE): cleared (mode 0, incarnation kept);
 *       its lock record (fsck_lock_check, pass 1's rules);
 *       map type against the type (directories SMALL, special files
 *       INLINE, symlinks INLINE up to 2 KiB else SMALL) (PR_3_INODE_MAP_TYPE);
 *       inline data: size <= 2048 (PR_3_INLINE_SIZE), zero tail
 *       (PR_3_INLINE_TAIL);
 *       small-block regular files and symlinks never need indirection
 *       (the small_max rule of vmfsd/file.c) (PR_3_SMALL_TOO_BIG);
 *   - every block map: direct pointers, then the four indirect trees;
 *     each pointer has no reserved bits and addresses an object of its
 *     area, aligned (PR_3_PTR_RANGE: hole); TBZ only on data pointers of
 *     regular files (PR_3_TBZ_BAD); pointer blocks verify
 *     (PR_3_PTRBLK_BAD) and name this inode and the right level
 *     (PR_3_PTRBLK_OWNER), else the subtree is dropped; every data block
 *     and pointer block is claimed in the ownership map; a pointer block
 *     claimed twice is dropped at the second reference (this also bounds
 *     every walk), a data block claimed twice is remembered for
 *     pass3_dup.c (PR_3_BLOCK_DUP);
 *   - directories: size whole chunks whose blocks are mapped from the
 *     start (PR_3_DIR_SIZE);
 *   - di_alloc_bytes = data blocks + pointer blocks found
 *     (PR_3_ALLOC_BYTES), unless a problem in the map was left unfixed;
 *   - the xattr area: records inside di_xattr_len, non-empty unique
 *     names, zero bytes after it (PR_3_XATTR_BAD: the valid prefix kept).
 *
 * Hands on: disk_bm (bits as the cluster headers say) and owned for every
 * type (inodes: valid, in use), isdir, imode (mode and on-disk nlink),
 * dparent (di_parent of directories), own (owner of every block), and
 * cluster flags for pass 6.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "fsck_int.h"

#define P VMFS_PTRS_PER_BLK

struct iscan {
	struct fsck_ctx *c;
	uint64_t ino;
	uint8_t *blk;
	struct vmfs_inode *di;
	struct fmt_inode fi; /* di's fields, encoded back before a write */
	uint32_t mode;
	enum vmfs_res_type dt;
	uint32_t bs;
	bool dirty;        /* inode block changed */
	bool unfixed;      /* a map problem left in place */
	uint64_t alloc;    /* bytes found */
	uint64_t prefix;   /* logical blocks mapped from 0 without a hole */
	uint8_t *pbbuf[5]; /* one pointer-block buffer per level */
};

static uint64_t small_max(const struct fsck_ctx *c)
{
	uint64_t direct = (uint64_t)VMFS_NDIRECT * c->g.small_block_size;

	return direct < c->g.file_block_size ? direct : c->g.file_block_size;
}

/* ---- cluster headers ---------------------------------------------------- */

static bool cluster_in_use(const struct vmfs_rc *rc)
{
	for (size_t i = 0; i < sizeof(rc->rc_bitmap); i++)
		if (rc->rc_bitmap[i] || rc->rc_orphan[i] || rc->rc_unlinked[i])
			return true;
	return false;
}

static int load_clusters(struct fsck_ctx *c, enum vmfs_res_type t, uint8_t *buf)
{
	const struct vol_res_geom *r = &c->g.res[t];
	int ret = 0;

	for (uint32_t cl = 0; !ret && cl < r->nclusters; cl += FSCK_BATCH) {
		uint32_t n = r->nclusters - cl < FSCK_BATCH ? r->nclusters - cl
							    : FSCK_BATCH;

		ret = fsck_read(c, buf, (size_t)n * VMFS_MD_BLOCK_SIZE,
				fsck_cluster_addr(c, t, cl));
		for (uint32_t k = 0; !ret && k < n; k++) {
			const struct vmfs_rc *rc = (const struct vmfs_rc *)
				(buf + (size_t)k * VMFS_MD_BLOCK_SIZE + VMFS_OBJ_OFFSET);
			uint64_t first = (uint64_t)(cl + k) * r->per_cluster;
			uint64_t addr = fsck_cluster_addr(c, t, cl + k);
			uint32_t nobjs = (uint32_t)(r->count - first < r->per_cluster ?
						    r->count - first : r->per_cluster);
			int vr = lun_md_verify(&rc->rc_hdr, VMFS_MAGIC_RCLUSTER, addr,
					       FSCK_OBJ_LEN);
			struct fmt_rc h;
			bool cut;

			/* A bad type or nobjs fails the comparisons too. */
			(void)fmt_rc_decode(rc, &h);
			/* A grow cut before its last step (SPEC.md §8.1). */
			cut = !vr && vol_rc_grow_cut(t, h.nobjs, nobjs);
			if (!vr && (h.type != (uint32_t)t || h.index != cl + k ||
				    (h.nobjs != nobjs && !cut) ||
				    h.first_obj != first))
				vr = -VMFS_E_CORRUPT;
			if (cut)
				c->res[t].clflags[cl + k] |= FSCK_CL_GROWCUT;
			if (vr) {
				c->res[t].clflags[cl + k] |= FSCK_CL_BAD;
				if (fsck_fix(c, PR_3_CLUSTER_BAD, addr,
					     "%s cluster %u at %llu: %s", vol_res_name(t),
					     cl + k, (unsigned long long)addr,
					     fsck_err(vr)))
					c->res[t].clflags[cl + k] |= FSCK_CL_REBUILD;
				continue;
			}
			if (h.flags & VMFS_RC_UNINIT) {
				if (!cluster_in_use(rc)) {
					c->res[t].clflags[cl + k] |= FSCK_CL_UNINIT;
					continue;
				}
				/* Not a state the engine makes: rather keep
				 * the objects than lose them with the bits. */
				if (fsck_fix(c, PR_3_CLUSTER_UNINIT, addr,
					     "%s cluster %u at %llu", vol_res_name(t),
					     cl + k, (unsigned long long)addr))
					c->res[t].clflags[cl + k] |= FSCK_CL_INITED;
			}
			for (uint32_t j = 0; j < nobjs; j++) {
				if (bm_test(rc->rc_bitmap, j))
					bm_set(c->res[t].disk_bm, first + j);
				if (t == VMFS_RES_INODE && bm_test(rc->rc_orphan, j))
					bm_set(c->orphan, first + j);
				if (t == VMFS_RES_INODE && bm_test(rc->rc_unlinked, j))
					bm_set(c->unlinked, first + j);
			}
		}
	}
	return ret;
}

/* ---- block maps --------------------------------------------------------- */

static uint64_t check_data_ptr(struct iscan *s, uint64_t p, uint64_t lbn,
			       uint64_t holder, uint32_t slot, bool in_inode,
			       bool *changed)
{
	struct fsck_ctx *c = s->c;
	uint64_t prev = 0;
	int64_t idx;

	if (!p)
		return 0;
	idx = vmfs_ptr_bad_bits(p) ? -1 :
	      fsck_obj_index(c, s->dt, vmfs_ptr_addr(p));
	if (idx < 0) {
		if (fsck_fix(c, PR_3_PTR_RANGE, holder,
			     "inode %llu block %llu: pointer 0x%llx is not a %s",
			     (unsigned long long)s->ino, (unsigned long long)lbn,
			     (unsigned long long)p, vol_res_name(s->dt))) {
			*changed = true;
			return 0;
		}
		s->unfixed = true;
		return p;
	}
	if ((p & VMFS_PTR_TBZ) && !S_ISREG(s->mode)) {
		if (fsck_fix(c, PR_3_TBZ_BAD, holder,
			     "inode %llu (mode 0%o) block %llu",
			     (unsigned long long)s->ino, s->mode,
			     (unsigned long long)lbn)) {
			p &= ~VMFS_PTR_TBZ;
			*changed = true;
		}
	}
	if (!fsck_claim(c, s->dt, (uint64_t)idx, s->ino, &prev)) {
		struct fsck_dup *d;

		if (c->ndups == c->capdups) {
			size_t cap = c->capdups ? c->capdups * 2 : 64;
			struct fsck_dup *n = cap <= FSCK_MAX_DUPS ?
				realloc(c->dups, cap * sizeof(*n)) : NULL;

			if (!n) {
				fsck_unfixed(c, PR_3_BLOCK_DUP, vmfs_ptr_addr(p),
					     "inode %llu block %llu shares %s %lld with inode %llu (too many duplicates to clone)",
					     (unsigned long long)s->ino,
					     (unsigned long long)lbn, vol_res_name(s->dt),
					     (long long)idx, (unsigned long long)prev);
				goto counted;
			}
			c->dups = n;
			c->capdups = cap;
		}
		d = &c->dups[c->ndups++];
		d->ino = s->ino;
		d->holder = holder;
		d->slot = slot;
		d->in_inode = in_inode;
		d->type = (uint8_t)s->dt;
		d->idx = (uint64_t)idx;
	}
counted:
	s->alloc += s->bs;
	c->r->blocks_checked++;
	if (lbn == s->prefix)
		s->prefix++;
	return p;
}

static uint64_t check_pb_ptr(struct iscan *s, uint64_t p, int d, uint64_t base,
			     uint64_t holder, bool *changed)
{
	struct fsck_ctx *c = s->c;
	struct vmfs_ptrblk *pb;
	struct fmt_ptrblk h;
	uint64_t addr, prev = 0;
	enum fsck_problem code;
	bool pb_changed = false;
	int64_t idx;
	int vr;

	if (!p)
		return 0;
	if (p & VMFS_PTR_TBZ) {
		if (fsck_fix(c, PR_3_TBZ_BAD, holder,
			     "inode %llu: pointer to a level-%d pointer block",
			     (unsigned long long)s->ino, d)) {
			p &= ~VMFS_PTR_TBZ;
			*changed = true;
		}
	}
	addr = vmfs_ptr_addr(p);
	idx = vmfs_ptr_bad_bits(p) ? -1 :
	      fsck_obj_index(c, VMFS_RES_PTRBLK, addr);
	if (idx < 0) {
		code = PR_3_PTR_RANGE;
		if (fsck_fix(c, code, holder,
			     "inode %llu: pointer 0x%llx to a level-%d pointer block is not one",
			     (unsigned long long)s->ino, (unsigned long long)p, d))
			goto drop;
		goto keep;
	}
	if (bm_test(c->res[VMFS_RES_PTRBLK].owned, (uint64_t)idx)) {
		prev = fsck_map_get(c, c->own, fsck_own_key(VMFS_RES_PTRBLK, (uint64_t)idx),
				    NULL);
		if (fsck_fix(c, PR_3_BLOCK_DUP, addr,
			     "inode %llu: pointer block at %llu already belongs to inode %llu; reference dropped",
			     (unsigned long long)s->ino, (unsigned long long)addr,
			     (unsigned long long)prev))
			goto drop;
		goto keep;
	}
	pb = (struct vmfs_ptrblk *)s->pbbuf[d];
	if (fsck_uninit(c, VMFS_RES_PTRBLK, (uint64_t)idx)) {
		/* Never initialised: whatever it holds is not ours. */
		vr = -VMFS_E_BAD_MAGIC;
	} else {
		if (fsck_read(c, pb, VMFS_MD_BLOCK_SIZE, addr))
			return p;
		vr = lun_md_verify(&pb->pb_hdr, VMFS_MAGIC_PTRBLK, addr,
				   VMFS_MD_BLOCK_SIZE);
	}
	if (vr) {
		if (fsck_fix(c, PR_3_PTRBLK_BAD, addr,
			     "inode %llu level-%d pointer block at %llu: %s",
			     (unsigned long long)s->ino, d, (unsigned long long)addr,
			     fsck_err(vr)))
			goto drop;
		goto keep;
	}
	(void)fmt_ptrblk_decode(pb, &h);
	if (h.owner_ino != s->ino || h.level != (uint32_t)d) {
		if (fsck_fix(c, PR_3_PTRBLK_OWNER, addr,
			     "inode %llu level-%d pointer block at %llu names inode %llu level %u",
			     (unsigned long long)s->ino, d, (unsigned long long)addr,
			     (unsigned long long)h.owner_ino, h.level))
			goto drop;
		goto keep;
	}
	fsck_claim(c, VMFS_RES_PTRBLK, (uint64_t)idx, s->ino, NULL);
	s->alloc += VMFS_MD_BLOCK_SIZE;
	c->r->blocks_checked++;
	for (uint32_t i = 0; i < P && !c->abort; i++) {
		uint64_t e = fmt_ptr_load(&pb->pb_ptr[i]), ne;
		uint64_t lbn = base + i * vmfs_map_span(d - 1);

		if (!e)
			continue;
		ne = d == 1 ? check_data_ptr(s, e, lbn, addr, i, false, &pb_changed)
			    : check_pb_ptr(s, e, d - 1, lbn, addr, &pb_changed);
		/* The buffer of this level is ours again after the recursion. */
		fmt_ptr_store(&pb->pb_ptr[i], ne);
	}
	if (pb_changed) {
		fsck_seal(&pb->pb_hdr, VMFS_MAGIC_PTRBLK, addr, VMFS_MD_BLOCK_SIZE);
		fsck_write_md(c, pb, VMFS_MD_BLOCK_SIZE, addr);
	}
	return p;
drop:
	*changed = true;
	return 0;
keep:
	s->unfixed = true;
	return p;
}

static void check_map(struct iscan *s)
{
	struct vmfs_inode *di = s->di;
	uint64_t base = VMFS_NDIRECT;

	for (uint32_t i = 0; i < VMFS_NDIRECT && !s->c->abort; i++)
		fmt_ptr_store(&di->di_map[i],
			      check_data_ptr(s, fmt_ptr_load(&di->di_map[i]), i,
					     fsck_inode_addr(s->c, s->ino), i, true,
					     &s->dirty));
	for (int d = 1; d <= 4 && !s->c->abort; d++) {
		le64 *root = &di->di_map[VMFS_MAP_IND1 + d - 1];

		fmt_ptr_store(root, check_pb_ptr(s, fmt_ptr_load(root), d, base,
						 fsck_inode_addr(s->c, s->ino),
						 &s->dirty));
		base += vmfs_map_span(d);
	}
	if (di->di_map[VMFS_MAP_SPARE]) {
		if (fsck_fix(s->c, PR_3_PTR_RANGE, fsck_inode_addr(s->c, s->ino),
			     "inode %llu: reserved map slot holds 0x%llx",
			     (unsigned long long)s->ino,
			     (unsigned long long)fmt_ptr_load(&di->di_map[VMFS_MAP_SPARE]))) {
			di->di_map[VMFS_MAP_SPARE] = 0;
			s->dirty = true;
		}
	}
}

/* ---- one inode ---------------------------------------------------------- */

static bool type_known(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: case S_IFDIR: case S_IFLNK: case S_IFIFO:
	case S_IFSOCK: case S_IFCHR: case S_IFBLK:
		return true;
	}
	return false;
}

/* The map type an inode of this mode and size must (or may) have. */
static bool map_ok(const struct fsck_ctx *c, uint32_t mode, uint16_t mt,
		   uint64_t size, uint16_t *want)
{
	(void)c;
	if (S_ISDIR(mode))
		*want = VMFS_MAP_SMALL;
	else if (S_ISLNK(mode))
		*want = size > VMFS_INLINE_MAX ? VMFS_MAP_SMALL : VMFS_MAP_INLINE;
	else if (!S_ISREG(mode))
		*want = VMFS_MAP_INLINE;
	else
		*want = size <= VMFS_INLINE_MAX ? VMFS_MAP_INLINE :
			size <= small_max(c) ? VMFS_MAP_SMALL : VMFS_MAP_FILE;
	if (S_ISREG(mode))
		return mt <= VMFS_MAP_FILE;
	if (S_ISLNK(mode))
		return mt == VMFS_MAP_INLINE || mt == VMFS_MAP_SMALL;
	return mt == *want;
}

static void check_xattrs(struct iscan *s)
{
	struct vmfs_inode *di = s->di;
	const uint8_t *x = di->di_xattr;
	size_t len = s->fi.xattr_len, off = 0, good;
	bool bad = false;

	if (len > VMFS_XATTR_AREA) {
		len = VMFS_XATTR_AREA;
		bad = true;
	}
	while (off + sizeof(struct vmfs_xattr_rec) <= len) {
		size_t nlen, vlen, rec;
		bool dup = false;

		fmt_xattr_rec_decode(x + off, &nlen, &vlen);
		rec = sizeof(struct vmfs_xattr_rec) + nlen + vlen;
		if (!nlen || off + rec > len)
			break;
		/* Names are unique: compare with every earlier record. */
		for (size_t o = 0; o < off && !dup;) {
			size_t n2, v2;

			fmt_xattr_rec_decode(x + o, &n2, &v2);
			dup = n2 == nlen && !memcmp(x + o + 4, x + off + 4, nlen);
			o += 4 + n2 + v2;
		}
		if (dup)
			break;
		off += rec;
	}
	good = off;
	if (good != len)
		bad = true;
	for (size_t i = good; i < VMFS_XATTR_AREA && !bad; i++)
		bad = x[i] != 0;
	if (bad && fsck_fix(s->c, PR_3_XATTR_BAD, fsck_inode_addr(s->c, s->ino),
			    "inode %llu: %u bytes recorded, %zu valid",
			    (unsigned long long)s->ino, s->fi.xattr_len, good)) {
		memset(di->di_xattr + good, 0, VMFS_XATTR_AREA - good);
		s->fi.xattr_len = (uint16_t)good;
		s->dirty = true;
	}
}

static void inode_clear(struct fsck_ctx *c, uint64_t ino, uint8_t *blk)
{
	if (vol_raw_inode_clear(fsck_raw(c), ino, blk))
		return;
	if (ino > VMFS_LOSTFOUND_INO)
		fsck_obj_release(c, VMFS_RES_INODE, ino);
}

static void check_inode(struct iscan *s)
{
	struct fsck_ctx *c = s->c;
	struct vmfs_inode *di = s->di;
	uint64_t addr = fsck_inode_addr(c, s->ino);
	struct fmt_inode *fi = &s->fi;
	uint64_t size = fi->size;
	uint16_t mt = fi->map_type, want;
	char what[48];

	s->mode = fi->mode;
	s->dirty = s->unfixed = false;
	s->alloc = s->prefix = 0;
	if (!type_known(s->mode)) {
		if (fsck_fix(c, PR_3_INODE_MODE, addr, "inode %llu: mode 0%o",
			     (unsigned long long)s->ino, s->mode))
			inode_clear(c, s->ino, s->blk);
		return;
	}
	snprintf(what, sizeof(what), "inode %llu", (unsigned long long)s->ino);
	s->dirty = fsck_lock_check(c, s->blk, addr, what);

	if (!map_ok(c, s->mode, mt, size, &want)) {
		if (fsck_fix(c, PR_3_INODE_MAP_TYPE, addr,
			     "inode %llu (mode 0%o): map type %u, want %u",
			     (unsigned long long)s->ino, s->mode, mt, want)) {
			/*
			 * A block map stays a block map: its pointers are checked
			 * against the new type's area below, so the blocks that
			 * still fit are kept (a directory whose type byte flipped
			 * keeps its entries).  Inline bytes are no pointers, and
			 * a file that must become inline has nowhere to keep
			 * blocks: those start empty.
			 */
			if (mt == VMFS_MAP_INLINE || want == VMFS_MAP_INLINE) {
				memset(di->di_map, 0, sizeof(di->di_map));
				if (!S_ISREG(s->mode))
					size = 0;
				if (size > VMFS_INLINE_MAX)
					size = VMFS_INLINE_MAX;
			}
			fi->size = size;
			mt = want;
			fi->map_type = mt;
			s->dirty = true;
		} else {
			s->unfixed = true;
			if (mt > VMFS_MAP_FILE)
				goto xattrs;
		}
	}
	if (mt == VMFS_MAP_INLINE) {
		if (size > VMFS_INLINE_MAX) {
			if (fsck_fix(c, PR_3_INLINE_SIZE, addr, "inode %llu: %llu bytes inline",
				     (unsigned long long)s->ino, (unsigned long long)size)) {
				size = VMFS_INLINE_MAX;
				fi->size = size;
				s->dirty = true;
			} else {
				size = VMFS_INLINE_MAX;
			}
		}
		for (uint64_t i = size; i < VMFS_INLINE_MAX; i++) {
			if (!di->di_inline[i])
				continue;
			if (fsck_fix(c, PR_3_INLINE_TAIL, addr,
				     "inode %llu: byte %llu of the inline area, past EOF %llu",
				     (unsigned long long)s->ino, (unsigned long long)i,
				     (unsigned long long)size)) {
				memset(di->di_inline + size, 0, VMFS_INLINE_MAX - size);
				s->dirty = true;
			}
			break;
		}
	} else {
		s->dt = mt == VMFS_MAP_FILE ? VMFS_RES_FILE : VMFS_RES_SMALL;
		s->bs = c->g.res[s->dt].obj_size;
		if (mt == VMFS_MAP_SMALL && !S_ISDIR(s->mode)) {
			bool ind = di->di_map[VMFS_MAP_IND1] || di->di_map[VMFS_MAP_IND2] ||
				   di->di_map[VMFS_MAP_IND3] || di->di_map[VMFS_MAP_IND4];

			if ((ind || size > small_max(c)) &&
			    fsck_fix(c, PR_3_SMALL_TOO_BIG, addr,
				     "inode %llu: %llu bytes in small blocks%s",
				     (unsigned long long)s->ino, (unsigned long long)size,
				     ind ? ", with indirect blocks" : "")) {
				memset(&di->di_map[VMFS_MAP_IND1], 0, 4 * sizeof(le64));
				if (size > small_max(c))
					size = small_max(c);
				fi->size = size;
				s->dirty = true;
			}
		}
		check_map(s);
		if (S_ISDIR(s->mode)) {
			uint64_t mapped = s->prefix * c->g.small_block_size;
			uint64_t ok = size - size % VMFS_MD_BLOCK_SIZE;

			if (ok > mapped)
				ok = mapped;
			if (ok != size &&
			    fsck_fix(c, PR_3_DIR_SIZE, addr,
				     "directory %llu: size %llu, chunks mapped up to %llu",
				     (unsigned long long)s->ino, (unsigned long long)size,
				     (unsigned long long)mapped)) {
				fi->size = ok;
				s->dirty = true;
			}
		}
	}
	if (!s->unfixed && s->alloc != fi->alloc_bytes &&
	    fsck_fix(c, PR_3_ALLOC_BYTES, addr, "inode %llu: %llu recorded, %llu found",
		     (unsigned long long)s->ino,
		     (unsigned long long)fi->alloc_bytes,
		     (unsigned long long)s->alloc)) {
		fi->alloc_bytes = s->alloc;
		s->dirty = true;
	}
xattrs:
	check_xattrs(s);

	bm_set(c->res[VMFS_RES_INODE].owned, s->ino);
	fsck_map_set(c, c->imode, s->ino,
		     (uint64_t)s->mode | (uint64_t)fi->nlink << 32);
	if (S_ISDIR(s->mode)) {
		bm_set(c->isdir, s->ino);
		fsck_map_set(c, c->dparent, s->ino, fi->parent);
		c->r->dirs_checked++;
	}
	c->r->inodes_checked++;
	if (s->dirty) {
		fmt_inode_encode(fi, di);
		vol_raw_inode_write(fsck_raw(c), s->ino, s->blk);
	}
}

/* ---- the pass ----------------------------------------------------------- */

int fsck_pass3(struct fsck_ctx *c)
{
	const struct vol_res_geom *ri = &c->g.res[VMFS_RES_INODE];
	uint64_t most = fsck_max_clusters(c);
	uint8_t *buf = fsck_batch_alloc(ri->count > most ? ri->count : most);
	struct iscan s;
	int ret = 0;

	memset(&s, 0, sizeof(s));
	s.c = c;
	for (int d = 1; d <= 4; d++)
		if (!(s.pbbuf[d] = lun_buf_alloc(VMFS_MD_BLOCK_SIZE)))
			ret = -ENOMEM;
	if (!buf)
		ret = -ENOMEM;
	for (int t = 0; !ret && t < VMFS_RES_NTYPES; t++)
		ret = load_clusters(c, t, buf);

	for (uint64_t i = 0, n; !ret && !c->abort && i < ri->count; i += n) {
		/* A batch stays in one cluster; never-initialised ones are
		 * skipped whole (a 64 TiB volume is mostly those). */
		uint64_t cl_end = (i / ri->per_cluster + 1) * ri->per_cluster;

		if (cl_end > ri->count)
			cl_end = ri->count;
		if (fsck_uninit(c, VMFS_RES_INODE, i)) {
			n = cl_end - i;
			continue;
		}
		n = cl_end - i < FSCK_BATCH ? cl_end - i : FSCK_BATCH;
		fsck_progress(c, 3, "inodes and block maps", i, ri->count);
		ret = fsck_read(c, buf, (size_t)n * VMFS_MD_BLOCK_SIZE,
				fsck_inode_addr(c, i));
		for (uint32_t k = 0; !ret && k < n && !c->abort; k++) {
			uint64_t ino = i + k, addr = fsck_inode_addr(c, ino);
			uint8_t *blk = buf + (size_t)k * VMFS_MD_BLOCK_SIZE;
			struct vmfs_inode *di = fsck_di(blk);
			bool bit = bm_test(c->res[VMFS_RES_INODE].disk_bm, ino);
			int vr;

			if (ino == 0)
				continue;
			vr = lun_md_verify(&di->di_hdr, VMFS_MAGIC_INODE, addr,
					   FSCK_OBJ_LEN);
			/* Field ranges are check_inode's, each with its code. */
			(void)fmt_inode_decode(di, &s.fi);
			if (!vr && s.fi.ino != ino)
				vr = -VMFS_E_CORRUPT;
			if (vr) {
				struct fmt_hdr h;

				fmt_hdr_decode(&di->di_hdr, &h);
				if (bit && fsck_fix(c, PR_3_INODE_BAD, addr,
						    "inode %llu at %llu: %s (magic 0x%08x, ino %llu)",
						    (unsigned long long)ino,
						    (unsigned long long)addr, fsck_err(vr),
						    h.magic, (unsigned long long)s.fi.ino))
					inode_clear(c, ino, blk);
				continue;
			}
			if (!s.fi.mode)
				continue;  /* a freed inode; a set bit leaks (pass 6) */
			s.ino = ino;
			s.blk = blk;
			s.di = di;
			check_inode(&s);
		}
	}
	for (int d = 1; d <= 4; d++)
		lun_buf_free(s.pbbuf[d]);
	lun_buf_free(buf);
	if (!ret && !c->abort)
		ret = fsck_pass3_dups(c);
	return ret;
}
