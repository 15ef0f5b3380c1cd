/*
 * Corruption tool, passes 4-6: directory chunks and entries,
 * connectivity, link and entry counts, bitmaps and their free counts.
 *
 * Entries are changed in place and their chunk resealed (db_count kept
 * equal to the live entries unless the count itself is the damage); an
 * entry added or removed also moves the directory's di_nentries, and
 * its di_nlink when the entry names a directory, so that only the
 * problem the code names is left on the volume.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "corrupt_int.h"
#include "vmfs/lockmgr.h"

/* Read the chunk at addr into c->blk. */
static int chunk_get(struct corrupt *c, uint64_t addr)
{
	return corrupt_read(c, c->blk, addr);
}

static int chunk_put(struct corrupt *c, uint64_t addr)
{
	corrupt_seal(c->blk, CK_DIRBLK, addr);
	c->target = addr;
	return corrupt_write(c, c->blk, addr);
}

/* Move a directory's di_nentries and di_nlink by the given amounts. */
static int dir_counts(struct corrupt *c, uint64_t dir, int dentries, int dlink)
{
	int ret = corrupt_inode_read(c, dir);

	if (ret)
		return ret;
	c->fi.nentries += (uint64_t)(int64_t)dentries;
	c->fi.nlink += (uint32_t)dlink;
	return corrupt_inode_write(c, dir);
}

int corrupt_ent_remove(struct corrupt *c, const struct corrupt_ent *e)
{
	struct vmfs_dirblk *db = corrupt_db(c);
	int ret = chunk_get(c, e->caddr);

	if (ret)
		return ret;
	memset(&db->db_ents[e->slot], 0, sizeof(db->db_ents[0]));
	fmt_dirblk_set_count(db, fmt_dirblk_count(db) - 1);
	ret = chunk_put(c, e->caddr);
	if (!ret)
		ret = dir_counts(c, e->dir, -1, e->type == DT_DIR ? -1 : 0);
	c->target = e->caddr;
	return ret;
}

static bool name_taken(const struct corrupt *c, uint64_t dir, const char *name)
{
	for (size_t i = 0; i < c->nents; i++)
		if (c->ents[i].dir == dir && !strcmp(c->ents[i].name, name))
			return true;
	return false;
}

/*
 * Where dir has room for one more entry: the first empty slot of its
 * first chunk with room, after position (after_chunk, after_slot) when
 * after_chunk is not UINT32_MAX.  -ENOENT when it is full.
 */
static int free_slot(struct corrupt *c, uint64_t dir, uint32_t after_chunk,
		     uint32_t after_slot, uint64_t *caddr, uint32_t *slot)
{
	const struct vmfs_dirblk *db = corrupt_db(c);

	for (size_t i = 0; i < c->nchunks; i++) {
		const struct corrupt_chunk *k = &c->chunks[i];
		int ret;

		if (k->dir != dir || !k->nfree_slots ||
		    (after_chunk != UINT32_MAX && k->chunk < after_chunk))
			continue;
		ret = chunk_get(c, k->addr);
		if (ret)
			return ret;
		for (uint32_t s = 0; s < VMFS_DIRENTS_PER_CHUNK; s++) {
			if (db->db_ents[s].de_ino ||
			    (after_chunk != UINT32_MAX && k->chunk == after_chunk &&
			     s <= after_slot))
				continue;
			*caddr = k->addr;
			*slot = s;
			return 0;
		}
	}
	return -ENOENT;
}

/* Write a new entry at (caddr, slot) and count it in dir. */
static int ent_write(struct corrupt *c, uint64_t dir, uint64_t caddr,
		     uint32_t slot, const char *name, uint64_t ino,
		     uint8_t type)
{
	struct vmfs_dirblk *db = corrupt_db(c);
	int ret = chunk_get(c, caddr);

	if (ret)
		return ret;
	fmt_dirent_encode(&db->db_ents[slot], ino, name, strlen(name), type);
	fmt_dirblk_set_count(db, fmt_dirblk_count(db) + 1);
	ret = chunk_put(c, caddr);
	if (!ret)
		ret = dir_counts(c, dir, 1, type == DT_DIR ? 1 : 0);
	c->target = caddr;
	return ret;
}

/* A free inode number (bit clear in a cluster that verifies). */
static int free_inode(struct corrupt *c, uint64_t *ino)
{
	const struct vol_res_geom *r = &c->g.res[VMFS_RES_INODE];
	uint8_t *b = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	const struct vmfs_rc *rc = (const struct vmfs_rc *)(b + VMFS_OBJ_OFFSET);
	struct corrupt_vec v = { 0 };
	int ret = 0;

	if (!b)
		return -ENOMEM;
	/* The first few thousand free inodes are plenty to choose from. */
	for (uint32_t cl = 0; cl < r->nclusters && !ret && v.n < 4096; cl++) {
		uint64_t addr = corrupt_rc_addr(c, VMFS_RES_INODE, cl);
		struct fmt_rc h;

		ret = corrupt_read(c, b, addr);
		if (ret || lun_md_verify(&rc->rc_hdr, VMFS_MAGIC_RCLUSTER, addr,
					 VMFS_MD_BLOCK_SIZE - VMFS_OBJ_OFFSET))
			continue;
		(void)fmt_rc_decode(rc, &h);
		for (uint32_t i = 0; i < h.nobjs && i < VMFS_RC_MAX_OBJS && !ret; i++) {
			uint64_t n = (uint64_t)cl * r->per_cluster + i;

			if (n && !(rc->rc_bitmap[i >> 3] & (1u << (i & 7))))
				ret = corrupt_vec_push(&v, n);
		}
	}
	if (!ret && !v.n)
		ret = -ENOENT;
	if (!ret)
		*ino = v.v[corrupt_pick(c, v.n)];
	corrupt_vec_free(&v);
	lun_buf_free(b);
	return ret;
}

typedef bool (*ent_pred)(struct corrupt *c, const struct corrupt_ent *e);

/* Pick a live entry pred says yes to. */
static int pick_ent(struct corrupt *c, ent_pred pred, struct corrupt_ent **out)
{
	struct corrupt_vec v = { 0 };
	int ret = corrupt_load(c);

	for (size_t i = 0; i < c->nents && !ret; i++)
		if (!pred || pred(c, &c->ents[i]))
			ret = corrupt_vec_push(&v, i);
	if (!ret && !v.n)
		ret = -ENOENT;
	if (!ret)
		*out = &c->ents[v.v[corrupt_pick(c, v.n)]];
	corrupt_vec_free(&v);
	return ret;
}

/* How many live entries name ino. */
static size_t ent_count(const struct corrupt *c, uint64_t ino)
{
	size_t n = 0;

	for (size_t i = 0; i < c->nents; i++)
		n += c->ents[i].ino == ino;
	return n;
}

static bool ent_user(struct corrupt *c, const struct corrupt_ent *e)
{
	return corrupt_is_user(c, e->ino) && corrupt_node(c, e->ino);
}

static bool ent_reg(struct corrupt *c, const struct corrupt_ent *e)
{
	return ent_user(c, e) && S_ISREG(corrupt_node(c, e->ino)->mode);
}

/* A name nobody else has, for one entry that names only its inode. */
static bool ent_single(struct corrupt *c, const struct corrupt_ent *e)
{
	const struct corrupt_node *n = corrupt_node(c, e->ino);

	return ent_user(c, e) && ent_count(c, e->ino) == 1 &&
	       (S_ISDIR(n->mode) || n->nlink == 1);
}

static bool ent_reg_single(struct corrupt *c, const struct corrupt_ent *e)
{
	return ent_single(c, e) && S_ISREG(corrupt_node(c, e->ino)->mode);
}

/* ---- pass 4 ------------------------------------------------------------------ */

/* Chunks with entries, but not the one naming lost+found. */
static bool chunk_victim(const struct corrupt *c, const struct corrupt_chunk *k)
{
	if (!k->live)
		return false;
	for (size_t i = 0; i < c->nents; i++)
		if (c->ents[i].caddr == k->addr &&
		    c->ents[i].ino == c->g.lostfound_ino)
			return false;
	return true;
}

/* PR_4_CHUNK_BAD: a directory chunk holding entries fails verification
 * (crc, magic or self); its entries are lost and their inodes unreachable. */
int corrupt_pr4_chunk_bad(struct corrupt *c)
{
	struct corrupt_vec v = { 0 };
	const struct corrupt_chunk *k;
	const char *how;
	int ret = corrupt_load(c);

	for (size_t i = 0; i < c->nchunks && !ret; i++)
		if (chunk_victim(c, &c->chunks[i]))
			ret = corrupt_vec_push(&v, i);
	if (!ret && !v.n)
		ret = -ENOENT;
	if (ret)
		goto out;
	k = &c->chunks[v.v[corrupt_pick(c, v.n)]];
	ret = corrupt_break(c, k->addr, CK_DIRBLK, &how);
	corrupt_say(c, "directory %llu (%s) chunk %u at %llu (%u entries): %s",
		    (unsigned long long)k->dir, corrupt_path(c, k->dir), k->chunk,
		    (unsigned long long)k->addr, k->live, how);
	for (size_t i = 0; i < c->nents; i++)
		if (c->ents[i].caddr == k->addr)
			corrupt_target_path(c, c->ents[i].path);
out:
	corrupt_vec_free(&v);
	return ret;
}

/* A directory (not lost+found) with room for one more entry. */
static int pick_roomy_dir(struct corrupt *c, uint64_t *dir)
{
	struct corrupt_vec v = { 0 };
	int ret = corrupt_load(c);

	for (size_t i = 0; i < c->nchunks && !ret; i++) {
		const struct corrupt_chunk *k = &c->chunks[i];

		if (k->nfree_slots && k->dir != c->g.lostfound_ino &&
		    (!v.n || v.v[v.n - 1] != k->dir))
			ret = corrupt_vec_push(&v, k->dir);
	}
	if (!ret && !v.n)
		ret = -ENOENT;
	if (!ret)
		*dir = v.v[corrupt_pick(c, v.n)];
	corrupt_vec_free(&v);
	return ret;
}

/*
 * PR_4_DIRENT_BAD_INODE: an entry naming a free inode.  Either a new
 * entry "ghost-NNNN" added to a directory with room (nothing else
 * changes), or an existing entry of a regular file retargeted at a free
 * inode (the file loses that name).
 */
int corrupt_pr4_dirent_bad_inode(struct corrupt *c)
{
	struct vmfs_dirblk *db = corrupt_db(c);
	uint64_t fino, dir, caddr;
	struct corrupt_ent *e;
	uint32_t slot;
	char name[32];
	int ret = corrupt_load(c);

	if (!ret)
		ret = free_inode(c, &fino);
	if (ret)
		return ret;
	if (corrupt_pick(c, 2)) {
		ret = pick_roomy_dir(c, &dir);
		if (!ret)
			ret = free_slot(c, dir, UINT32_MAX, 0, &caddr, &slot);
		if (ret)
			return ret;
		do
			snprintf(name, sizeof(name), "ghost-%04u",
				 (unsigned)corrupt_pick(c, 10000));
		while (name_taken(c, dir, name));
		ret = ent_write(c, dir, caddr, slot, name, fino, DT_REG);
		corrupt_say(c, "directory %llu (%s) chunk at %llu slot %u: new entry '%s' names free inode %llu",
			    (unsigned long long)dir, corrupt_path(c, dir),
			    (unsigned long long)caddr, slot, name,
			    (unsigned long long)fino);
		return ret;
	}
	ret = pick_ent(c, ent_reg, &e);
	if (!ret)
		ret = chunk_get(c, e->caddr);
	if (ret)
		return ret;
	fmt_dirent_set_ino(&db->db_ents[e->slot], fino);
	ret = chunk_put(c, e->caddr);
	corrupt_say(c, "entry %s (chunk at %llu slot %u): inode %llu -> free inode %llu",
		    e->path, (unsigned long long)e->caddr, e->slot,
		    (unsigned long long)e->ino, (unsigned long long)fino);
	corrupt_target_path(c, e->path);
	return ret;
}

/*
 * PR_4_DIRENT_BAD_NAME: an entry of a regular file renamed to what no
 * entry may be called: "", ".", "..", a name with '/' or with a NUL
 * inside.  Hash recomputed, chunk resealed.
 */
int corrupt_pr4_dirent_bad_name(struct corrupt *c)
{
	struct vmfs_dirblk *db = corrupt_db(c);
	struct vmfs_dirent *de;
	struct corrupt_ent *e;
	char name[VMFS_NAME_MAX + 1], shown[VMFS_NAME_MAX + 1];
	size_t len;
	int ret = pick_ent(c, ent_reg, &e);

	if (!ret)
		ret = chunk_get(c, e->caddr);
	if (ret)
		return ret;
	de = &db->db_ents[e->slot];
	memset(name, 0, sizeof(name));
	len = strlen(e->name);
	memcpy(name, e->name, len);
	switch (corrupt_pick(c, 5)) {
	case 0:
		len = 0;
		break;
	case 1:
		len = 1;
		memcpy(name, ".", 2);
		break;
	case 2:
		len = 2;
		memcpy(name, "..", 3);
		break;
	case 3:
		if (len < VMFS_NAME_MAX) {
			size_t at = corrupt_pick(c, len + 1);

			memmove(name + at + 1, name + at, len - at);
			name[at] = '/';
			len++;
		} else {
			name[corrupt_pick(c, len)] = '/';
		}
		break;
	default:
		name[corrupt_pick(c, len)] = '\0';
		if (len == 1) {
			name[1] = 'x';
			len = 2;
		}
		break;
	}
	fmt_dirent_encode(de, fmt_dirent_ino(de), name, len, de->de_type);
	ret = chunk_put(c, e->caddr);
	for (size_t i = 0; i < len; i++)
		shown[i] = name[i] ? name[i] : '@';
	shown[len] = 0;
	corrupt_say(c, "entry %s (chunk at %llu slot %u): name -> '%s' (%zu bytes, NUL shown as @)",
		    e->path, (unsigned long long)e->caddr, e->slot, shown, len);
	corrupt_target_path(c, e->path);
	return ret;
}

/* PR_4_DIRENT_HASH: an entry's stored name hash off by one bit (resealed). */
int corrupt_pr4_dirent_hash(struct corrupt *c)
{
	struct vmfs_dirblk *db = corrupt_db(c);
	struct corrupt_ent *e;
	uint32_t bit;
	int ret = pick_ent(c, NULL, &e);

	if (!ret)
		ret = chunk_get(c, e->caddr);
	if (ret)
		return ret;
	bit = 1u << corrupt_pick(c, 32);
	fmt_dirent_set_hash(&db->db_ents[e->slot],
			    fmt_dirent_hash(&db->db_ents[e->slot]) ^ bit);
	corrupt_say(c, "entry %s (chunk at %llu slot %u): hash ^ 0x%08x",
		    e->path, (unsigned long long)e->caddr, e->slot, bit);
	return chunk_put(c, e->caddr);
}

/* A regular-file entry whose directory has an empty slot after it. */
static bool ent_dup_victim(struct corrupt *c, const struct corrupt_ent *e)
{
	uint64_t caddr;
	uint32_t slot;

	return ent_reg(c, e) &&
	       !free_slot(c, e->dir, e->chunk, e->slot, &caddr, &slot);
}

/*
 * PR_4_DIRENT_DUP: a second entry with the same name, hash and inode as
 * an existing regular-file entry, in an empty slot after it in the same
 * directory; the inode's link count and the directory's entry count
 * include it, so only the duplicate name is wrong.
 */
int corrupt_pr4_dirent_dup(struct corrupt *c)
{
	struct corrupt_ent *e;
	uint64_t caddr;
	uint32_t slot;
	int ret = pick_ent(c, ent_dup_victim, &e);

	if (!ret)
		ret = free_slot(c, e->dir, e->chunk, e->slot, &caddr, &slot);
	if (!ret)
		ret = ent_write(c, e->dir, caddr, slot, e->name, e->ino, e->type);
	if (!ret) {
		ret = corrupt_inode_read(c, e->ino);
		if (!ret) {
			c->fi.nlink++;
			ret = corrupt_inode_write(c, e->ino);
		}
		c->target = caddr;
	}
	if (!ret)
		corrupt_say(c, "entry %s (chunk at %llu slot %u): duplicated at chunk %llu slot %u",
			    e->path, (unsigned long long)e->caddr, e->slot,
			    (unsigned long long)caddr, slot);
	return ret;
}

static bool ent_known(struct corrupt *c, const struct corrupt_ent *e)
{
	return corrupt_node(c, e->ino) != NULL;
}

/* PR_4_DIRENT_TYPE: an entry's DT_* type changed to another valid type
 * than its inode's (resealed). */
int corrupt_pr4_dirent_type(struct corrupt *c)
{
	static const uint8_t types[] = { DT_FIFO, DT_CHR, DT_DIR, DT_BLK, DT_REG,
					 DT_LNK, DT_SOCK };
	struct vmfs_dirblk *db = corrupt_db(c);
	struct corrupt_ent *e;
	uint8_t t;
	int ret = pick_ent(c, ent_known, &e);

	if (!ret)
		ret = chunk_get(c, e->caddr);
	if (ret)
		return ret;
	do
		t = types[corrupt_pick(c, sizeof(types))];
	while (t == vmfs_dirent_type(corrupt_node(c, e->ino)->mode));
	db->db_ents[e->slot].de_type = t;
	corrupt_say(c, "entry %s (chunk at %llu slot %u): type %u -> %u",
		    e->path, (unsigned long long)e->caddr, e->slot, e->type, t);
	return chunk_put(c, e->caddr);
}

/* PR_4_CHUNK_COUNT: a chunk's db_count one off its live entries
 * (resealed). */
int corrupt_pr4_chunk_count(struct corrupt *c)
{
	const struct corrupt_chunk *k;
	uint32_t count;
	int ret = corrupt_load(c);

	if (!ret && !c->nchunks)
		ret = -ENOENT;
	if (ret)
		return ret;
	k = &c->chunks[corrupt_pick(c, c->nchunks)];
	ret = chunk_get(c, k->addr);
	if (ret)
		return ret;
	count = k->live == VMFS_DIRENTS_PER_CHUNK ||
		(k->live && corrupt_pick(c, 2)) ? k->live - 1 : k->live + 1;
	fmt_dirblk_set_count(corrupt_db(c), (uint16_t)count);
	corrupt_say(c, "directory %llu (%s) chunk %u at %llu: count %u -> %u",
		    (unsigned long long)k->dir, corrupt_path(c, k->dir), k->chunk,
		    (unsigned long long)k->addr, k->live, count);
	return chunk_put(c, k->addr);
}

static bool dir_not_root(const struct corrupt *c, const struct corrupt_node *n)
{
	return S_ISDIR(n->mode) && n->ino != c->g.root_ino;
}

/* PR_4_DIR_PARENT: a directory's di_parent ("..") names another
 * directory than the one holding its entry (resealed). */
int corrupt_pr4_dir_parent(struct corrupt *c)
{
	struct corrupt_vec v = { 0 };
	struct corrupt_node *n;
	uint64_t np;
	int ret = corrupt_pick_node(c, dir_not_root, &n);

	for (size_t i = 0; i < c->nnodes && !ret; i++)
		if (S_ISDIR(c->nodes[i].mode) && c->nodes[i].ino != n->ino &&
		    c->nodes[i].ino != n->parent)
			ret = corrupt_vec_push(&v, c->nodes[i].ino);
	if (!ret && !v.n)
		ret = -ENOENT;
	if (!ret)
		ret = corrupt_inode_read(c, n->ino);
	if (ret)
		goto out;
	np = v.v[corrupt_pick(c, v.n)];
	c->fi.parent = np;
	corrupt_say(c, "directory %llu (%s): parent %llu -> %llu",
		    (unsigned long long)n->ino, corrupt_path(c, n->ino),
		    (unsigned long long)n->parent, (unsigned long long)np);
	ret = corrupt_inode_write(c, n->ino);
out:
	corrupt_vec_free(&v);
	return ret;
}

/* Is the path "under" at or below "top"? */
static bool path_under(const char *under, const char *top)
{
	size_t n = strlen(top);

	return !strcmp(top, "/") ||
	       (!strncmp(under, top, n) && (under[n] == '/' || !under[n]));
}

/*
 * PR_4_DIR_MULTILINK: a second entry naming a subdirectory, in another
 * directory that is neither its parent nor below it; that directory's
 * entry and link counts include it.
 */
int corrupt_pr4_dir_multilink(struct corrupt *c)
{
	struct corrupt_vec v = { 0 };
	struct corrupt_ent *s;
	uint64_t dir, caddr;
	uint32_t slot;
	char name[VMFS_NAME_MAX + 1];
	int ret = corrupt_load(c);

	/* (entry of the subdirectory, directory to add to) pairs */
	for (size_t i = 0; i < c->nents && !ret; i++) {
		const struct corrupt_ent *e = &c->ents[i];
		const struct corrupt_node *n = corrupt_node(c, e->ino);

		if (!ent_user(c, e) || !S_ISDIR(n->mode))
			continue;
		for (size_t k = 0; k < c->nchunks && !ret; k++) {
			const struct corrupt_chunk *ck = &c->chunks[k];

			if (!ck->nfree_slots || ck->dir == e->dir ||
			    ck->dir == e->ino || ck->dir == c->g.lostfound_ino ||
			    path_under(corrupt_path(c, ck->dir), e->path))
				continue;
			if (k && c->chunks[k - 1].dir == ck->dir &&
			    c->chunks[k - 1].nfree_slots)
				continue;   /* one pair per directory */
			ret = corrupt_vec_push(&v, (uint64_t)i << 32 | k);
		}
	}
	if (!ret && !v.n)
		ret = -ENOENT;
	if (ret)
		goto out;
	{
		uint64_t pick = v.v[corrupt_pick(c, v.n)];

		s = &c->ents[pick >> 32];
		dir = c->chunks[(uint32_t)pick].dir;
	}
	snprintf(name, sizeof(name), "%.200s-again", s->name);
	while (name_taken(c, dir, name))
		snprintf(name, sizeof(name), "%.200s-again%u", s->name,
			 (unsigned)corrupt_pick(c, 1000));
	ret = free_slot(c, dir, UINT32_MAX, 0, &caddr, &slot);
	if (!ret)
		ret = ent_write(c, dir, caddr, slot, name, s->ino, DT_DIR);
	corrupt_say(c, "directory %s (inode %llu) named again as '%s' in %s (chunk at %llu slot %u)",
		    s->path, (unsigned long long)s->ino, name,
		    corrupt_path(c, dir), (unsigned long long)caddr, slot);
out:
	corrupt_vec_free(&v);
	return ret;
}

/*
 * PR_4_UNREACHABLE: the only entry of a file, symlink, special file or
 * directory removed (chunk resealed, parent's counts moved), the inode
 * left allocated with its links: it belongs in lost+found.
 */
int corrupt_pr4_unreachable(struct corrupt *c)
{
	struct corrupt_ent *e;
	int ret = pick_ent(c, ent_single, &e);

	if (ret)
		return ret;
	ret = corrupt_ent_remove(c, e);
	corrupt_say(c, "entry %s (inode %llu, chunk at %llu slot %u) removed",
		    e->path, (unsigned long long)e->ino,
		    (unsigned long long)e->caddr, e->slot);
	corrupt_target_path(c, e->path);
	return ret;
}

/*
 * Free an inode the way the engine does (vol_inode_free): its data and
 * pointer blocks back to their bitmaps, the block kept with mode 0 and an
 * empty map, then its own bitmap bit.  Entries naming it are left alone.
 */
static int inode_drop(struct corrupt *c, uint64_t ino, size_t *nblocks)
{
	struct vmfs_inode *di = corrupt_di(c);
	struct corrupt_ptr *pv = NULL;
	enum vmfs_res_type dt;
	size_t np = 0;
	int ret = corrupt_inode_read(c, ino);

	if (ret)
		return ret;
	dt = c->fi.map_type == VMFS_MAP_FILE ? VMFS_RES_FILE : VMFS_RES_SMALL;
	ret = corrupt_ptrs(c, ino, 0, 4, &pv, &np);
	if (!ret)
		ret = corrupt_inode_read(c, ino);
	if (ret)
		goto out;
	c->fi.mode = 0;
	c->fi.nlink = 0;
	c->fi.size = 0;
	c->fi.alloc_bytes = 0;
	c->fi.nentries = 0;
	c->fi.map_type = VMFS_MAP_INLINE;
	c->fi.xattr_len = 0;
	memset(di->di_map, 0, sizeof(di->di_map));
	memset(di->di_xattr, 0, sizeof(di->di_xattr));
	ret = corrupt_inode_write(c, ino);
	for (size_t i = 0; i < np && !ret; i++) {
		enum vmfs_res_type t = pv[i].level ? VMFS_RES_PTRBLK : dt;
		int64_t idx = corrupt_res_index(c, t, vmfs_ptr_addr(pv[i].val));

		if (idx >= 0)
			ret = corrupt_bit_put(c, t, (uint64_t)idx, false);
	}
	if (!ret)
		ret = corrupt_bit_put(c, VMFS_RES_INODE, ino, false);
	c->target = corrupt_inode_addr(c, ino);
	*nblocks = np;
out:
	free(pv);
	return ret;
}

/*
 * PR_4_NO_ROOT: the root is not a directory any more (mode made a
 * regular file's, resealed), or is gone (freed like an unlinked inode:
 * mode 0, its directory blocks and bitmap bit released).  Every path may
 * move.
 */
int corrupt_pr4_no_root(struct corrupt *c)
{
	uint64_t root = c->g.root_ino;
	size_t nb;
	int ret;

	corrupt_target_path(c, "/");
	if (corrupt_pick(c, 2)) {
		ret = inode_drop(c, root, &nb);
		corrupt_say(c, "root inode %llu: freed with its %zu blocks",
			    (unsigned long long)root, nb);
		return ret;
	}
	ret = corrupt_inode_read(c, root);
	if (ret)
		return ret;
	c->fi.mode = S_IFREG | 0644;
	corrupt_say(c, "root inode %llu: mode -> 0%o", (unsigned long long)root,
		    S_IFREG | 0644);
	return corrupt_inode_write(c, root);
}

/*
 * PR_4_NO_LOSTFOUND: lost+found gone: its entry removed from the root
 * (counts moved) and its inode freed the way the engine frees one.
 */
int corrupt_pr4_no_lostfound(struct corrupt *c)
{
	struct corrupt_ent *e = NULL;
	uint64_t lf = c->g.lostfound_ino;
	size_t nb = 0;
	int ret = corrupt_load(c);

	for (size_t i = 0; i < c->nents && !ret; i++) {
		if (c->ents[i].ino == lf && c->ents[i].dir == c->g.root_ino)
			e = &c->ents[i];
		else if (path_under(c->ents[i].path, "/lost+found"))
			corrupt_target_path(c, c->ents[i].path);
	}
	if (!ret && !e)
		ret = -ENOENT;
	if (!ret)
		ret = corrupt_ent_remove(c, e);
	if (!ret)
		ret = inode_drop(c, lf, &nb);
	corrupt_say(c, "lost+found (inode %llu): entry removed from the root, inode and %zu blocks freed",
		    (unsigned long long)lf, nb);
	return ret;
}

/* ---- pass 5 ------------------------------------------------------------------ */

static bool is_dir(const struct corrupt *c, const struct corrupt_node *n)
{
	(void)c;
	return S_ISDIR(n->mode);
}

static bool user_node(const struct corrupt *c, const struct corrupt_node *n)
{
	return corrupt_is_user(c, n->ino);
}

/* PR_5_NLINK: a link count made wrong (never 0, which is an orphan),
 * resealed. */
int corrupt_pr5_nlink(struct corrupt *c)
{
	struct corrupt_node *n;
	uint32_t nl, floor;
	int ret = corrupt_pick_node(c, user_node, &n);

	if (!ret)
		ret = corrupt_inode_read(c, n->ino);
	if (ret)
		return ret;
	floor = S_ISDIR(n->mode) ? 2 : 1;
	nl = n->nlink > floor && corrupt_pick(c, 2) ? n->nlink - 1 :
	     n->nlink + 1 + (uint32_t)corrupt_pick(c, 3);
	c->fi.nlink = nl;
	corrupt_say(c, "inode %llu (%s): links %u -> %u", (unsigned long long)n->ino,
		    corrupt_path(c, n->ino), n->nlink, nl);
	return corrupt_inode_write(c, n->ino);
}

/* PR_5_NENTRIES: a directory's di_nentries made wrong (resealed). */
int corrupt_pr5_nentries(struct corrupt *c)
{
	struct corrupt_node *n;
	uint64_t ne;
	int ret = corrupt_pick_node(c, is_dir, &n);

	if (!ret)
		ret = corrupt_inode_read(c, n->ino);
	if (ret)
		return ret;
	ne = n->nentries && corrupt_pick(c, 2) ? n->nentries - 1 :
	     n->nentries + 1 + corrupt_pick(c, 5);
	c->fi.nentries = ne;
	corrupt_say(c, "directory %llu (%s): entries %llu -> %llu",
		    (unsigned long long)n->ino, corrupt_path(c, n->ino),
		    (unsigned long long)n->nentries, (unsigned long long)ne);
	return corrupt_inode_write(c, n->ino);
}

/*
 * PR_5_ORPHAN: an allocated inode with no links and no entry: either a
 * new one (bit set, sealed regular-file inode with nlink 0, as a crash
 * between create and link leaves it), or an existing regular file whose
 * only entry was removed and link count zeroed (a crash after unlink of
 * an open file).
 */
int corrupt_pr5_orphan(struct corrupt *c)
{
	struct vmfs_inode *di = corrupt_di(c);
	struct corrupt_ent *e;
	uint64_t ino;
	int ret = corrupt_load(c);

	if (ret)
		return ret;
	if (corrupt_pick(c, 2)) {
		uint64_t addr, inc = 0, lgen = 0;
		struct lock_record lr;

		ret = free_inode(c, &ino);
		if (!ret)
			ret = corrupt_inode_read(c, ino);
		if (ret)
			return ret;
		addr = corrupt_inode_addr(c, ino);
		if (!lun_md_verify(&di->di_hdr, VMFS_MAGIC_INODE, addr,
				   VMFS_MD_BLOCK_SIZE - VMFS_OBJ_OFFSET))
			inc = c->fi.incarnation;
		if (!lock_record_decode(c->blk, addr, &lr))
			lgen = lr.gen;
		memset(c->blk, 0, VMFS_MD_BLOCK_SIZE);
		lock_record_init_free(c->blk, addr, lgen + 1);
		c->fi = (struct fmt_inode){
			.ino = ino, .incarnation = inc + 1,
			.mode = S_IFREG | 0644, .map_type = VMFS_MAP_INLINE,
			.atime_ns = 1700000000ll * 1000000000ll,
			.mtime_ns = 1700000000ll * 1000000000ll,
			.ctime_ns = 1700000000ll * 1000000000ll,
			.btime_ns = 1700000000ll * 1000000000ll,
		};
		ret = corrupt_bit_put(c, VMFS_RES_INODE, ino, true);
		if (!ret)
			ret = corrupt_inode_write(c, ino);
		corrupt_say(c, "inode %llu: allocated, regular file with no links and no entry",
			    (unsigned long long)ino);
		return ret;
	}
	ret = pick_ent(c, ent_reg_single, &e);
	if (!ret)
		ret = corrupt_ent_remove(c, e);
	if (!ret)
		ret = corrupt_inode_read(c, e->ino);
	if (ret)
		return ret;
	c->fi.nlink = 0;
	ret = corrupt_inode_write(c, e->ino);
	corrupt_say(c, "inode %llu (%s): entry removed, links 0, blocks kept",
		    (unsigned long long)e->ino, e->path);
	corrupt_target_path(c, e->path);
	return ret;
}
