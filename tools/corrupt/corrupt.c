/*
 * corrupt_damage: the corruption tool keyed to the problem codes (ocfs2's
 * fswreck).  Each code of vmfs/fsck.h has one damage function that breaks
 * a volume exactly the way the code describes, on a target that exists,
 * so that every repair of the checker has a test image (tests/fsck/).
 *
 * The tool reads and writes the LUN directly (lun_read/lun_write), never
 * through the engine, and finds its way with the on-disk structures
 * alone: the geometry from the volume header, the cluster bitmaps, the
 * inode blocks, block maps and directory chunks.  Damage that must get
 * past verification so that a later check fires (a pointer out of range,
 * a wrong count, an entry naming a free inode) is written with the
 * block's header resealed (lun_md_seal, generation bumped as a real
 * writer would); damage that is meant to fail verification is not.
 *
 * Choices are seeded: the same seed on the same image damages the same
 * object in the same way.  The hint names the damage on its first line,
 * then, one per line as "target-path: PATH", every file whose name, data
 * or attributes the damage or its repair may change; files not listed
 * must read back identical after a repair.
 *
 * This file: the code table, the entry point and the helpers every
 * damage function uses (seeded choice, block I/O and sealing, bitmaps,
 * the report); corrupt_scan.c reads the picture of the volume.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "corrupt_int.h"

static const struct {
	enum fsck_problem code;
	corrupt_fn fn;
} corrupt_table[] = {
	{ PR_0_PRIMARY_BAD, corrupt_pr0_primary_bad },
	{ PR_0_BACKUP_BAD, corrupt_pr0_backup_bad },
	{ PR_0_HEADERS_DIFFER, corrupt_pr0_headers_differ },
	{ PR_0_NOT_VOLUME, corrupt_pr0_not_volume },
	{ PR_0_GEOMETRY, corrupt_pr0_geometry },
	{ PR_1_HB_REGION_BAD, corrupt_pr1_hb_region_bad },
	{ PR_1_HB_SLOT_BAD, corrupt_pr1_hb_slot_bad },
	{ PR_1_HB_SLOT_STALE, corrupt_pr1_hb_slot_stale },
	{ PR_1_LOCK_BAD, corrupt_pr1_lock_bad },
	{ PR_1_LOCK_STALE, corrupt_pr1_lock_stale },
	{ PR_1_LOCK_BAD_MODE, corrupt_pr1_lock_bad_mode },
	{ PR_2_JOURNAL_BAD, corrupt_pr2_journal_bad },
	{ PR_2_JOURNAL_SLOT, corrupt_pr2_journal_slot },
	{ PR_2_JOURNAL_DIRTY, corrupt_pr2_journal_dirty },
	{ PR_2_JOURNAL_RECORD_BAD, corrupt_pr2_journal_record_bad },
	{ PR_3_CLUSTER_BAD, corrupt_pr3_cluster_bad },
	{ PR_3_INODE_BAD, corrupt_pr3_inode_bad },
	{ PR_3_INODE_MODE, corrupt_pr3_inode_mode },
	{ PR_3_INODE_MAP_TYPE, corrupt_pr3_inode_map_type },
	{ PR_3_PTR_RANGE, corrupt_pr3_ptr_range },
	{ PR_3_PTRBLK_BAD, corrupt_pr3_ptrblk_bad },
	{ PR_3_BLOCK_DUP, corrupt_pr3_block_dup },
	{ PR_3_ALLOC_BYTES, corrupt_pr3_alloc_bytes },
	{ PR_3_TBZ_BAD, corrupt_pr3_tbz_bad },
	{ PR_3_INLINE_TAIL, corrupt_pr3_inline_tail },
	{ PR_3_INLINE_SIZE, corrupt_pr3_inline_size },
	{ PR_3_DIR_SIZE, corrupt_pr3_dir_size },
	{ PR_3_XATTR_BAD, corrupt_pr3_xattr_bad },
	{ PR_3_SMALL_TOO_BIG, corrupt_pr3_small_too_big },
	{ PR_3_PTRBLK_OWNER, corrupt_pr3_ptrblk_owner },
	{ PR_3_CLUSTER_UNINIT, corrupt_pr3_cluster_uninit },
	{ PR_4_CHUNK_BAD, corrupt_pr4_chunk_bad },
	{ PR_4_DIRENT_BAD_INODE, corrupt_pr4_dirent_bad_inode },
	{ PR_4_DIRENT_BAD_NAME, corrupt_pr4_dirent_bad_name },
	{ PR_4_DIRENT_HASH, corrupt_pr4_dirent_hash },
	{ PR_4_DIRENT_DUP, corrupt_pr4_dirent_dup },
	{ PR_4_DIRENT_TYPE, corrupt_pr4_dirent_type },
	{ PR_4_CHUNK_COUNT, corrupt_pr4_chunk_count },
	{ PR_4_DIR_PARENT, corrupt_pr4_dir_parent },
	{ PR_4_DIR_MULTILINK, corrupt_pr4_dir_multilink },
	{ PR_4_UNREACHABLE, corrupt_pr4_unreachable },
	{ PR_4_NO_ROOT, corrupt_pr4_no_root },
	{ PR_4_NO_LOSTFOUND, corrupt_pr4_no_lostfound },
	{ PR_5_NLINK, corrupt_pr5_nlink },
	{ PR_5_NENTRIES, corrupt_pr5_nentries },
	{ PR_5_ORPHAN, corrupt_pr5_orphan },
	{ PR_6_LEAKED, corrupt_pr6_leaked },
	{ PR_6_UNMARKED, corrupt_pr6_unmarked },
	{ PR_6_NFREE, corrupt_pr6_nfree },
	{ PR_6_BITS_BEYOND, corrupt_pr6_bits_beyond },
};
#define CORRUPT_NCODES (sizeof(corrupt_table) / sizeof(corrupt_table[0]))

/* ---- vectors and seeded choice ------------------------------------------ */

int corrupt_vec_push(struct corrupt_vec *cv, uint64_t x)
{
	if (cv->n == cv->cap) {
		size_t cap = cv->cap ? cv->cap * 2 : 64;
		uint64_t *nv = realloc(cv->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		cv->v = nv;
		cv->cap = cap;
	}
	cv->v[cv->n++] = x;
	return 0;
}

void corrupt_vec_free(struct corrupt_vec *cv)
{
	free(cv->v);
	memset(cv, 0, sizeof(*cv));
}

/* splitmix64 (Steele, Lea, Flood 2014): tiny, and every seed is good. */
uint64_t corrupt_rand(struct corrupt *c)
{
	uint64_t z = (c->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t corrupt_pick(struct corrupt *c, uint64_t n)
{
	return n ? corrupt_rand(c) % n : 0;
}

/* ---- blocks -------------------------------------------------------------- */

static const struct {
	uint32_t magic;
	uint32_t hdr_off;
	uint32_t len;
	const char *name;
} corrupt_kinds[] = {
	[CK_VOLUME] = { VMFS_MAGIC_VOLUME, 0, VMFS_MD_BLOCK_SIZE, "volume header" },
	[CK_LOCK] = { VMFS_MAGIC_LOCK, 0, VMFS_LOCK_SIZE, "lock record" },
	[CK_HBREGION] = { VMFS_MAGIC_HBREGION, VMFS_OBJ_OFFSET,
			  VMFS_MD_BLOCK_SIZE - VMFS_OBJ_OFFSET, "heartbeat region" },
	[CK_HBSLOT] = { VMFS_MAGIC_HBSLOT, 0, sizeof(struct vmfs_hb_slot),
			"heartbeat slot" },
	[CK_JOURNAL] = { VMFS_MAGIC_JOURNAL, VMFS_OBJ_OFFSET,
			 VMFS_MD_BLOCK_SIZE - VMFS_OBJ_OFFSET, "journal header" },
	[CK_RC] = { VMFS_MAGIC_RCLUSTER, VMFS_OBJ_OFFSET,
		    VMFS_MD_BLOCK_SIZE - VMFS_OBJ_OFFSET, "cluster header" },
	[CK_INODE] = { VMFS_MAGIC_INODE, VMFS_OBJ_OFFSET,
		       VMFS_MD_BLOCK_SIZE - VMFS_OBJ_OFFSET, "inode" },
	[CK_PTRBLK] = { VMFS_MAGIC_PTRBLK, 0, VMFS_MD_BLOCK_SIZE, "pointer block" },
	[CK_DIRBLK] = { VMFS_MAGIC_DIRBLK, 0, VMFS_MD_BLOCK_SIZE,
			"directory chunk" },
};

int corrupt_read(struct corrupt *c, void *buf, uint64_t addr)
{
	return lun_read(c->lun, buf, VMFS_MD_BLOCK_SIZE, addr);
}

int corrupt_write(struct corrupt *c, const void *buf, uint64_t addr)
{
	return lun_write(c->lun, buf, VMFS_MD_BLOCK_SIZE, addr);
}

struct vmfs_blk_hdr *corrupt_hdr(void *blk, enum corrupt_kind k)
{
	return (struct vmfs_blk_hdr *)((uint8_t *)blk + corrupt_kinds[k].hdr_off);
}

void corrupt_seal(void *blk, enum corrupt_kind k, uint64_t addr)
{
	struct vmfs_blk_hdr *h = corrupt_hdr(blk, k);

	fmt_hdr_set_gen(h, fmt_hdr_gen(h) + 1);
	lun_md_seal(h, corrupt_kinds[k].magic, addr, corrupt_kinds[k].len);
}

int corrupt_break(struct corrupt *c, uint64_t addr, enum corrupt_kind k,
		  const char **how)
{
	uint8_t *b = c->blk;
	struct vmfs_blk_hdr *h = corrupt_hdr(b, k);
	uint32_t off;
	int ret = corrupt_read(c, b, addr);

	if (ret)
		return ret;
	switch (corrupt_pick(c, 3)) {
	case 0:
		/* One flipped bit past the header: only the crc can tell. */
		off = corrupt_kinds[k].hdr_off + sizeof(*h) +
		      (uint32_t)corrupt_pick(c, corrupt_kinds[k].len - sizeof(*h));
		b[off] ^= (uint8_t)(1u << corrupt_pick(c, 8));
		*how = "bad crc";
		break;
	case 1:
		/* "NODE" -> "node": recognisable in a hex dump. */
		for (size_t i = 0; i < sizeof(h->bh_magic); i++)
			((uint8_t *)&h->bh_magic)[i] ^= 0x20;
		*how = "bad magic";
		break;
	default:
		/* A misdirected write: a sound block sealed for elsewhere. */
		corrupt_seal(b, k, addr + VMFS_MD_BLOCK_SIZE *
				   (1 + corrupt_pick(c, 64)));
		*how = "misdirected (bad self address)";
		break;
	}
	c->target = addr;
	return corrupt_write(c, b, addr);
}

/* ---- bitmaps --------------------------------------------------------------- */

uint64_t corrupt_rc_addr(const struct corrupt *c, enum vmfs_res_type t,
			 uint32_t cl)
{
	return c->g.res[t].hdr_offset + (uint64_t)cl * VMFS_MD_BLOCK_SIZE;
}

int64_t corrupt_res_index(const struct corrupt *c, enum vmfs_res_type t,
			  uint64_t addr)
{
	const struct vol_res_geom *r = &c->g.res[t];

	return vmfs_res_index(r->obj_offset, r->obj_size, r->count, addr);
}

/* Read the cluster header of idx into buf and verify it. */
static int rc_load(struct corrupt *c, enum vmfs_res_type t, uint64_t idx,
		   uint8_t *buf, uint64_t *addr, uint32_t *bit)
{
	uint32_t cl = (uint32_t)(idx / c->g.res[t].per_cluster);
	int ret;

	if (idx >= c->g.res[t].count)
		return -ERANGE;
	*addr = corrupt_rc_addr(c, t, cl);
	*bit = (uint32_t)(idx % c->g.res[t].per_cluster);
	ret = corrupt_read(c, buf, *addr);
	if (!ret)
		ret = lun_md_verify(corrupt_hdr(buf, CK_RC), VMFS_MAGIC_RCLUSTER,
				    *addr, corrupt_kinds[CK_RC].len);
	return ret;
}

int corrupt_bit_get(struct corrupt *c, enum vmfs_res_type t, uint64_t idx,
		    bool *set)
{
	uint8_t *buf = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	uint64_t addr;
	uint32_t bit;
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = rc_load(c, t, idx, buf, &addr, &bit);
	if (!ret) {
		const struct vmfs_rc *rc = (const struct vmfs_rc *)
			(buf + VMFS_OBJ_OFFSET);

		*set = rc->rc_bitmap[bit >> 3] & (1u << (bit & 7));
	}
	lun_buf_free(buf);
	return ret;
}

int corrupt_bit_put(struct corrupt *c, enum vmfs_res_type t, uint64_t idx,
		    bool set)
{
	uint8_t *buf = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	struct vmfs_rc *rc = (struct vmfs_rc *)(buf + VMFS_OBJ_OFFSET);
	uint64_t addr;
	uint32_t bit;
	bool was;
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = rc_load(c, t, idx, buf, &addr, &bit);
	if (ret)
		goto out;
	was = rc->rc_bitmap[bit >> 3] & (1u << (bit & 7));
	if (was != set) {
		struct fmt_rc h;

		rc->rc_bitmap[bit >> 3] ^= (uint8_t)(1u << (bit & 7));
		(void)fmt_rc_decode(rc, &h);
		h.nfree += set ? -1u : 1u;
		fmt_rc_encode(&h, rc);
	}
	corrupt_seal(buf, CK_RC, addr);
	ret = corrupt_write(c, buf, addr);
out:
	lun_buf_free(buf);
	return ret;
}

int corrupt_clusters(struct corrupt *c, bool used_only,
		     struct corrupt_vec *out)
{
	uint8_t *b = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	const struct vmfs_rc *rc = (const struct vmfs_rc *)(b + VMFS_OBJ_OFFSET);
	int ret = 0;

	if (!b)
		return -ENOMEM;
	for (int t = 0; t < VMFS_RES_NTYPES && !ret; t++) {
		for (uint32_t cl = 0; cl < c->g.res[t].nclusters && !ret; cl++) {
			uint64_t addr = corrupt_rc_addr(c, t, cl);
			bool used = false;

			ret = corrupt_read(c, b, addr);
			if (ret)
				break;
			if (lun_md_verify(&rc->rc_hdr, VMFS_MAGIC_RCLUSTER, addr,
					  corrupt_kinds[CK_RC].len))
				continue;
			for (uint32_t i = 0; i < sizeof(rc->rc_bitmap) && !used; i++)
				used = rc->rc_bitmap[i];
			if (used || !used_only)
				ret = corrupt_vec_push(out, (uint64_t)t << 32 | cl);
		}
	}
	lun_buf_free(b);
	return ret;
}

/* ---- the report ------------------------------------------------------------ */

void corrupt_say(struct corrupt *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->desc, sizeof(c->desc), fmt, ap);
	va_end(ap);
}

void corrupt_target_path(struct corrupt *c, const char *path)
{
	char **np;

	for (size_t i = 0; i < c->ntpaths; i++)
		if (!strcmp(c->tpaths[i], path))
			return;
	np = realloc(c->tpaths, (c->ntpaths + 1) * sizeof(*np));
	if (!np)
		return;
	c->tpaths = np;
	c->tpaths[c->ntpaths] = strdup(path);
	if (c->tpaths[c->ntpaths])
		c->ntpaths++;
}

void corrupt_target_ino(struct corrupt *c, uint64_t ino)
{
	if (ino == c->g.root_ino) {
		corrupt_target_path(c, "/");
		return;
	}
	for (size_t i = 0; i < c->nents; i++)
		if (c->ents[i].ino == ino)
			corrupt_target_path(c, c->ents[i].path);
}

/* Description, then one "target-path: PATH" line per damaged file. */
static void report(const struct corrupt *c, char *hint, size_t len)
{
	size_t used;

	if (!hint || !len)
		return;
	snprintf(hint, len, "%s", c->desc);
	used = strlen(hint);
	for (size_t i = 0; i < c->ntpaths && used + 1 < len; i++) {
		snprintf(hint + used, len - used, "\ntarget-path: %s",
			 c->tpaths[i]);
		used += strlen(hint + used);
	}
}

static void corrupt_free(struct corrupt *c)
{
	for (size_t i = 0; i < c->nents; i++) {
		free(c->ents[i].name);
		free(c->ents[i].path);
	}
	for (size_t i = 0; i < c->ntpaths; i++)
		free(c->tpaths[i]);
	free(c->tpaths);
	free(c->ents);
	free(c->chunks);
	free(c->nodes);
	lun_buf_free(c->blk);
}

int corrupt_damage(struct lun *lun, enum fsck_problem code, uint64_t seed,
		   uint64_t *target, char *hint, size_t hint_len)
{
	struct corrupt c;
	corrupt_fn fn = NULL;
	int ret;

	for (size_t i = 0; i < CORRUPT_NCODES; i++)
		if (corrupt_table[i].code == code)
			fn = corrupt_table[i].fn;
	if (!fn)
		return -EINVAL;
	memset(&c, 0, sizeof(c));
	c.lun = lun;
	/* Same seed, different codes: independent choices. */
	c.rng = seed ^ ((uint64_t)code << 32);
	corrupt_rand(&c);
	c.blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	if (!c.blk)
		return -ENOMEM;
	ret = vol_geom_read(lun, &c.g, NULL, NULL);
	if (!ret)
		ret = fn(&c);
	if (!ret)
		ret = lun_flush(lun);
	if (!ret) {
		if (target)
			*target = c.target;
		report(&c, hint, hint_len);
	}
	corrupt_free(&c);
	return ret;
}
