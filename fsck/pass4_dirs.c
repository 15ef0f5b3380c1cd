/*
 * Pass 4: directories and connectivity (e2fsck passes 2 and 3).
 *
 * Checks:
 *   - the root and lost+found (vh_root_ino, vh_lostfound_ino) are valid
 *     directories (PR_4_NO_ROOT, PR_4_NO_LOSTFOUND: recreated empty
 *     before anything else, so later repairs have somewhere to go);
 *   - every chunk below di_size of every directory: envelope, db_dir_ino,
 *     db_chunk (PR_4_CHUNK_BAD: rewritten empty; the inodes it named lose
 *     that link and end in lost+found), db_count = live entries
 *     (PR_4_CHUNK_COUNT);
 *   - every entry: target inode in range and in use per pass 3
 *     (PR_4_DIRENT_BAD_INODE), a name of 1..255 bytes without '/' or NUL
 *     that is not "." or ".." (PR_4_DIRENT_BAD_NAME) -- both removed; the
 *     root named by an entry, or a directory named a second time
 *     (PR_4_DIR_MULTILINK: the later entry removed); de_hash =
 *     fmt_name_hash(name, len) (PR_4_DIRENT_HASH); a name twice in one
 *     directory (PR_4_DIRENT_DUP: the later one renamed NAME.dupN);
 *     de_type from the inode's mode (PR_4_DIRENT_TYPE);
 *   - connectivity: lost+found is named (in the root); every directory's
 *     chain of parents reaches the root; a directory whose chain ends at
 *     a directory no entry names, or loops, is moved to lost+found as
 *     "#INO" (PR_4_UNREACHABLE, its old entry removed when it had one);
 *     a file with links on disk but no entry goes there too; inodes with
 *     no links and no entry are orphans for pass 5;
 *   - di_parent of every directory names the directory holding its entry
 *     (the root: itself) (PR_4_DIR_PARENT).
 * Entries are read in directory order; each chunk is written once after
 * its repairs.  Reconnections happen only after every directory has been
 * read, so the counts below never see an entry twice.
 *
 * Hands on: links (entries naming each inode), parent and dloc (where each
 * directory is named), nent (live entries per directory), dparent as
 * repaired, for pass 5.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "fsck_int.h"

#define NPER VMFS_DIRENTS_PER_CHUNK

struct dscan {
	struct fsck_ctx *c;
	uint64_t dir;
	uint8_t *iblk, *cb, *tmp;
	uint64_t caddr;       /* the chunk in cb */
	bool changed;         /* cb needs writing */
	uint64_t kept;        /* live entries kept in this directory */
	int removed, removed_dirs;
};

/* Printable copy of an entry's name for messages. */
static const char *show(const struct vmfs_dirent *de, char *buf)
{
	size_t n = de->de_name_len;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)de->de_name[i];

		buf[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	buf[n] = 0;
	return buf;
}

static int set_parent(struct fsck_ctx *c, uint64_t ino, uint64_t parent)
{
	uint8_t *blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	int ret;

	if (!blk)
		return -ENOMEM;
	ret = vol_raw_inode_read(fsck_raw(c), ino, blk);
	if (!ret) {
		struct fmt_inode fi;

		(void)fmt_inode_decode(fsck_di(blk), &fi);
		fi.parent = parent;
		fmt_inode_encode(&fi, fsck_di(blk));
		ret = vol_raw_inode_write(fsck_raw(c), ino, blk);
	}
	if (!ret)
		fsck_map_set(c, c->dparent, ino, parent);
	lun_buf_free(blk);
	return ret;
}

static uint32_t mode_of(struct fsck_ctx *c, uint64_t ino)
{
	return (uint32_t)fsck_map_get(c, c->imode, ino, NULL);
}

static uint32_t disk_nlink(struct fsck_ctx *c, uint64_t ino)
{
	return (uint32_t)(fsck_map_get(c, c->imode, ino, NULL) >> 32);
}

/* Replace a missing or non-directory root / lost+found with an empty one. */
static void ensure_dir(struct fsck_ctx *c, uint64_t ino, uint64_t parent,
		       uint32_t perm, enum fsck_problem code)
{
	bool valid = bm_test(c->res[VMFS_RES_INODE].owned, ino);
	uint8_t *blk;

	if (valid && bm_test(c->isdir, ino))
		return;
	if (!fsck_fix(c, code, fsck_inode_addr(c, ino), "inode %llu is %s",
		      (unsigned long long)ino,
		      valid ? "not a directory" : "not in use"))
		return;
	blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	if (!blk) {
		fsck_fail(c, -ENOMEM, "pass 4");
		return;
	}
	/* Whatever the slot held gives its blocks back (pass 6 frees them). */
	if (valid && !vol_raw_inode_read(fsck_raw(c), ino, blk))
		fsck_inode_unown(c, blk, true);
	lun_buf_free(blk);
	if (vol_raw_dir_create(fsck_raw(c), ino, parent, perm))
		return;
	bm_set(c->res[VMFS_RES_INODE].owned, ino);
	if (!bm_test(c->res[VMFS_RES_INODE].disk_bm, ino)) {
		bm_set(c->res[VMFS_RES_INODE].disk_bm, ino);
		fsck_cluster_dirty(c, VMFS_RES_INODE, ino);
	}
	bm_set(c->isdir, ino);
	fsck_map_set(c, c->imode, ino, (uint64_t)(S_IFDIR | perm) | 2ull << 32);
	fsck_map_set(c, c->dparent, ino, parent);
}

/* Does the entry at loc (another position of this directory) carry the
 * same name as de? */
static bool same_name(struct dscan *s, uint64_t loc, const struct vmfs_dirent *de)
{
	uint64_t caddr = loc & ~(uint64_t)(VMFS_MD_BLOCK_SIZE - 1);
	uint32_t slot = (uint32_t)(loc & (VMFS_MD_BLOCK_SIZE - 1));
	const struct vmfs_dirblk *db;
	const struct vmfs_dirent *o;

	if (slot >= NPER)
		return false;
	if (caddr == s->caddr) {
		db = (const struct vmfs_dirblk *)s->cb;
	} else {
		if (fsck_read(s->c, s->tmp, VMFS_MD_BLOCK_SIZE, caddr))
			return false;
		db = (const struct vmfs_dirblk *)s->tmp;
	}
	o = &db->db_ents[slot];
	return o->de_ino && o->de_name_len == de->de_name_len &&
	       !memcmp(o->de_name, de->de_name, de->de_name_len);
}

static uint64_t name_key(uint32_t hash, uint8_t len)
{
	return (uint64_t)hash << 8 | len;
}

/* Rename the entry to a free NAME.dupN. */
static bool rename_dup(struct dscan *s, struct vmfs_dirent *de)
{
	char base[VMFS_NAME_MAX + 1], cand[VMFS_NAME_MAX + 16];
	const struct vmfs_dirblk *db = (const struct vmfs_dirblk *)s->cb;

	memcpy(base, de->de_name, de->de_name_len);
	base[de->de_name_len] = 0;
	for (unsigned n = 1; n < 1000; n++) {
		char suffix[16];
		size_t sl = (size_t)snprintf(suffix, sizeof(suffix), ".dup%u", n);
		size_t bl = strlen(base);
		bool taken = false;

		if (bl + sl > VMFS_NAME_MAX)
			bl = VMFS_NAME_MAX - sl;
		snprintf(cand, sizeof(cand), "%.*s%s", (int)bl, base, suffix);
		for (int i = 0; i < NPER && !taken; i++)
			taken = db->db_ents[i].de_ino &&
				db->db_ents[i].de_name_len == strlen(cand) &&
				!memcmp(db->db_ents[i].de_name, cand, strlen(cand));
		if (taken || !vol_raw_dir_find(fsck_raw(s->c), s->dir, cand))
			continue;
		fmt_dirent_encode(de, fmt_dirent_ino(de), cand, strlen(cand),
				  de->de_type);
		return true;
	}
	return false;
}

static void remove_entry(struct dscan *s, struct vmfs_dirent *de)
{
	struct vmfs_dirblk *db = (struct vmfs_dirblk *)s->cb;

	if (de->de_type == DT_DIR)
		s->removed_dirs++;
	memset(de, 0, sizeof(*de));
	if (fmt_dirblk_count(db))
		fmt_dirblk_set_count(db, fmt_dirblk_count(db) - 1);
	s->removed++;
	s->changed = true;
}

static void check_entry(struct dscan *s, struct vmfs_dirent *de, uint32_t slot)
{
	struct fsck_ctx *c = s->c;
	uint64_t t = fmt_dirent_ino(de), loc = s->caddr | slot, other;
	uint8_t len = de->de_name_len;
	char name[VMFS_NAME_MAX + 1];
	enum fsck_problem code = 0;
	uint32_t hash, mode;
	bool found;

	show(de, name);
	if (t >= c->res[VMFS_RES_INODE].count || t == 0 ||
	    !bm_test(c->res[VMFS_RES_INODE].owned, t))
		code = PR_4_DIRENT_BAD_INODE;
	else if (!len || memchr(de->de_name, '/', len) || memchr(de->de_name, 0, len) ||
		 (len == 1 && de->de_name[0] == '.') ||
		 (len == 2 && de->de_name[0] == '.' && de->de_name[1] == '.'))
		code = PR_4_DIRENT_BAD_NAME;
	else if (t == c->g.root_ino)
		code = PR_4_DIR_MULTILINK;
	if (code) {
		if (fsck_fix(c, code, s->caddr,
			     "directory %llu entry '%s' -> inode %llu",
			     (unsigned long long)s->dir, name, (unsigned long long)t))
			remove_entry(s, de);
		return;
	}
	hash = fmt_name_hash(de->de_name, len);
	if (fmt_dirent_hash(de) != hash &&
	    fsck_fix(c, PR_4_DIRENT_HASH, s->caddr,
		     "directory %llu entry '%s': hash 0x%08x, want 0x%08x",
		     (unsigned long long)s->dir, name, fmt_dirent_hash(de), hash)) {
		fmt_dirent_encode(de, t, de->de_name, len, de->de_type);
		s->changed = true;
	}
	other = fsck_map_get(c, c->names, name_key(hash, len), &found);
	if (found && same_name(s, other, de)) {
		if (fsck_fix(c, PR_4_DIRENT_DUP, s->caddr,
			     "directory %llu: '%s' -> inode %llu is a second '%s'",
			     (unsigned long long)s->dir, name, (unsigned long long)t,
			     name) && rename_dup(s, de)) {
			s->changed = true;
			hash = fmt_dirent_hash(de);
			fsck_map_set(c, c->names, name_key(hash, de->de_name_len), loc);
		}
	} else if (!found) {
		fsck_map_set(c, c->names, name_key(hash, len), loc);
	}
	mode = mode_of(c, t);
	if (de->de_type != vmfs_dirent_type(mode) &&
	    fsck_fix(c, PR_4_DIRENT_TYPE, s->caddr,
		     "directory %llu entry '%s': type %u, inode %llu has mode 0%o",
		     (unsigned long long)s->dir, show(de, name), de->de_type,
		     (unsigned long long)t, mode)) {
		de->de_type = vmfs_dirent_type(mode);
		s->changed = true;
	}
	if (bm_test(c->isdir, t)) {
		uint64_t dotdot = fsck_map_get(c, c->dparent, t, NULL);

		other = fsck_map_get(c, c->parent, t, &found);
		if (found && s->dir == dotdot && other != dotdot) {
			/*
			 * The entry in the directory ".." names is the real one;
			 * the one met first (in a directory already written) is
			 * the extra name.
			 */
			if (!fsck_fix(c, PR_4_DIR_MULTILINK,
				      fsck_map_get(c, c->dloc, t, NULL) &
				      ~(uint64_t)(VMFS_MD_BLOCK_SIZE - 1),
				      "directory %llu is named in directory %llu and in its parent %llu ('%s'); the first entry goes",
				      (unsigned long long)t, (unsigned long long)other,
				      (unsigned long long)s->dir, show(de, name)))
				return;
			if (fsck_dir_remove(c, other, fsck_map_get(c, c->dloc, t, NULL)) &&
			    c->abort)
				return;
		} else if (found) {
			if (fsck_fix(c, PR_4_DIR_MULTILINK, s->caddr,
				     "directory %llu entry '%s': directory %llu is already named in directory %llu",
				     (unsigned long long)s->dir, show(de, name),
				     (unsigned long long)t, (unsigned long long)other)) {
				de->de_type = DT_DIR;
				remove_entry(s, de);
			}
			return;
		}
		fsck_map_set(c, c->parent, t, s->dir);
		fsck_map_set(c, c->dloc, t, loc);
	}
	fsck_map_add(c, c->links, t, 1);
	s->kept++;
}

static int scan_dir(struct dscan *s)
{
	struct fsck_ctx *c = s->c;
	uint32_t per_blk = c->g.small_block_size / VMFS_MD_BLOCK_SIZE;
	struct vmfs_dirblk *db = (struct vmfs_dirblk *)s->cb;
	uint64_t nchunks, p = 0, lbn = UINT64_MAX;
	struct fmt_inode fi;
	int ret;

	ret = vol_raw_inode_read(fsck_raw(c), s->dir, s->iblk);
	if (ret)
		return ret;
	(void)fmt_inode_decode(fsck_di(s->iblk), &fi);
	nchunks = fi.size / VMFS_MD_BLOCK_SIZE;
	if (nchunks > UINT32_MAX / NPER)
		nchunks = UINT32_MAX / NPER;
	fsck_map_clear(c, c->names);
	s->kept = 0;
	s->removed = s->removed_dirs = 0;
	for (uint32_t k = 0; k < nchunks && !c->abort; k++) {
		uint32_t live = 0;
		struct fmt_dirblk h;
		int vr;

		/* One map lookup per small block, not per chunk. */
		if (k / per_blk != lbn) {
			lbn = k / per_blk;
			ret = vol_raw_bmap_get(fsck_raw(c), s->iblk, lbn, &p);
			if (ret)
				return ret;
		}
		if (!p || (p & VMFS_PTR_TBZ))
			continue;  /* reported by pass 3 (PR_3_DIR_SIZE) */
		s->caddr = vmfs_ptr_addr(p) + (uint64_t)(k % per_blk) * VMFS_MD_BLOCK_SIZE;
		s->changed = false;
		ret = fsck_read(c, s->cb, VMFS_MD_BLOCK_SIZE, s->caddr);
		if (ret)
			return ret;
		vr = lun_md_verify(&db->db_hdr, VMFS_MAGIC_DIRBLK, s->caddr,
				   VMFS_MD_BLOCK_SIZE);
		/* A count out of range is PR_4_CHUNK_COUNT's, below. */
		(void)fmt_dirblk_decode(db, &h);
		if (!vr && (h.dir_ino != s->dir || h.chunk != k))
			vr = -VMFS_E_CORRUPT;
		if (vr) {
			if (fsck_fix(c, PR_4_CHUNK_BAD, s->caddr,
				     "directory %llu chunk %u at %llu: %s (names directory %llu chunk %u)",
				     (unsigned long long)s->dir, k,
				     (unsigned long long)s->caddr, fsck_err(vr),
				     (unsigned long long)h.dir_ino, h.chunk)) {
				memset(s->cb, 0, VMFS_MD_BLOCK_SIZE);
				fmt_dirblk_encode(&(struct fmt_dirblk){
							  .gen = h.gen,
							  .dir_ino = s->dir,
							  .chunk = k }, db);
				fsck_seal(&db->db_hdr, VMFS_MAGIC_DIRBLK, s->caddr,
					  VMFS_MD_BLOCK_SIZE);
				ret = fsck_write_md(c, s->cb, VMFS_MD_BLOCK_SIZE, s->caddr);
				if (ret)
					return ret;
			}
			continue;
		}
		for (int i = 0; i < NPER; i++)
			live += db->db_ents[i].de_ino != 0;
		if (live != h.count &&
		    fsck_fix(c, PR_4_CHUNK_COUNT, s->caddr,
			     "directory %llu chunk %u: count %u, %u live entries",
			     (unsigned long long)s->dir, k, h.count, live)) {
			fmt_dirblk_set_count(db, (uint16_t)live);
			s->changed = true;
		}
		for (uint32_t i = 0; i < NPER && !c->abort; i++)
			if (db->db_ents[i].de_ino)
				check_entry(s, &db->db_ents[i], i);
		if (s->changed) {
			fsck_seal(&db->db_hdr, VMFS_MAGIC_DIRBLK, s->caddr,
				  VMFS_MD_BLOCK_SIZE);
			ret = fsck_write_md(c, s->cb, VMFS_MD_BLOCK_SIZE, s->caddr);
			if (ret)
				return ret;
		}
	}
	fsck_map_set(c, c->nent, s->dir, s->kept);
	/* Entries this pass removed leave the directory's counts with them. */
	if (s->removed)
		ret = fsck_inode_adjust(c, s->dir, -s->removed_dirs, -s->removed);
	return ret;
}

/* Move directory or file ino under lost+found (lost+found itself: root). */
static int reconnect(struct fsck_ctx *c, uint64_t ino, bool isdir)
{
	uint64_t lf = c->g.lostfound_ino, root = c->g.root_ino;
	uint64_t to = ino == lf ? root : lf, old, loc;
	char name[32];
	bool found;
	int ret;

	if (!bm_test(c->isdir, to))
		return -ENOENT;
	if (isdir) {
		old = fsck_map_get(c, c->parent, ino, &found);
		loc = fsck_map_get(c, c->dloc, ino, NULL);
		if (found) {
			ret = fsck_dir_remove(c, old, loc);
			if (ret && ret != -ESTALE)
				return ret;
			fsck_map_del(c, c->parent, ino);
			fsck_map_del(c, c->dloc, ino);
		}
	}
	if (ino == lf && vol_raw_dir_find(fsck_raw(c), root, "lost+found"))
		snprintf(name, sizeof(name), "lost+found");
	else
		snprintf(name, sizeof(name), "#%llu", (unsigned long long)ino);
	ret = fsck_dir_add(c, to, name, ino, vmfs_dirent_type(mode_of(c, ino)));
	if (!ret && isdir)
		ret = set_parent(c, ino, to);
	return ret;
}

/*
 * A reconnection that finds no room (lost+found full, no free small
 * block) leaves that inode where it is: reported, the run goes on.
 */
static int soft(struct fsck_ctx *c, int ret)
{
	if (ret != -ENOSPC && ret != -ENOENT)
		return ret;
	fsck_info(c, "cannot add to lost+found: %s; the inode stays unconnected",
		  fsck_err(ret));
	c->r->exit_code |= FSCK_EXIT_UNCORRECTED;
	return 0;
}

/* Walk up from directory d; reconnect the top of an unreachable chain. */
static int connect_dir(struct fsck_ctx *c, uint64_t d, uint64_t **path,
		       size_t *cap)
{
	uint64_t x = d, top = 0, p;
	size_t n = 0;
	bool reachable = false, found, cycle = false;
	int ret = 0;

	for (;;) {
		if (x == c->g.root_ino || bm_test(c->reached, x)) {
			reachable = true;
			break;
		}
		if (bm_test(c->onpath, x)) {
			top = x;
			cycle = true;
			break;
		}
		if (n == *cap) {
			size_t nc = *cap ? *cap * 2 : 64;
			uint64_t *np = realloc(*path, nc * sizeof(*np));

			if (!np)
				return -ENOMEM;
			*path = np;
			*cap = nc;
		}
		(*path)[n++] = x;
		bm_set(c->onpath, x);
		p = fsck_map_get(c, c->parent, x, &found);
		if (!found || p >= c->res[VMFS_RES_INODE].count || !bm_test(c->isdir, p)) {
			top = x;
			break;
		}
		x = p;
	}
	for (size_t i = 0; i < n; i++)
		bm_clr(c->onpath, (*path)[i]);
	if (!reachable) {
		/* An emptied directory nobody names and with no links: an
		 * orphan for pass 5, not something to reconnect. */
		bool orphan = !cycle && disk_nlink(c, top) == 0 &&
			      fsck_map_get(c, c->nent, top, NULL) == 0;

		if (!orphan &&
		    fsck_fix(c, PR_4_UNREACHABLE, fsck_inode_addr(c, top),
			     "directory %llu %s", (unsigned long long)top,
			     cycle ? "is in a loop of directories" : "is named by no entry"))
			ret = soft(c, reconnect(c, top, true));
	}
	/* Reached now, or reported: either way never walked again. */
	for (size_t i = 0; i < n; i++)
		bm_set(c->reached, (*path)[i]);
	return ret;
}

int fsck_pass4(struct fsck_ctx *c)
{
	uint64_t count = c->res[VMFS_RES_INODE].count;
	uint64_t root = c->g.root_ino, lf = c->g.lostfound_ino;
	struct dscan s = { .c = c };
	uint64_t *path = NULL;
	size_t cap = 0;
	bool found;
	int ret = 0;

	s.iblk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	s.cb = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	s.tmp = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	if (!s.iblk || !s.cb || !s.tmp) {
		ret = -ENOMEM;
		goto out;
	}
	ensure_dir(c, root, root, 0755, PR_4_NO_ROOT);
	ensure_dir(c, lf, root, 0700, PR_4_NO_LOSTFOUND);

	for (uint64_t ino = 1; ino < count && !ret && !c->abort; ino++) {
		if (!bm_test(c->isdir, ino))
			continue;
		if (ino % 1024 == 0)
			fsck_progress(c, 4, "directories and connectivity", ino, count);
		s.dir = ino;
		ret = scan_dir(&s);
	}
	if (ret || c->abort)
		goto out;

	/* lost+found must be named somewhere reachable before it takes orphans. */
	if (bm_test(c->isdir, lf)) {
		fsck_map_get(c, c->parent, lf, &found);
		if (!found && fsck_fix(c, PR_4_UNREACHABLE, fsck_inode_addr(c, lf),
				       "lost+found (inode %llu) is named by no entry",
				       (unsigned long long)lf))
			ret = soft(c, reconnect(c, lf, true));
	}
	for (uint64_t ino = 1; ino < count && !ret && !c->abort; ino++)
		if (bm_test(c->isdir, ino) && ino != root)
			ret = connect_dir(c, ino, &path, &cap);

	/* Files with links on disk that no entry names. */
	for (uint64_t ino = 1; ino < count && !ret && !c->abort; ino++) {
		if (!bm_test(c->res[VMFS_RES_INODE].owned, ino) || bm_test(c->isdir, ino) ||
		    fsck_map_get(c, c->links, ino, NULL) ||
		    disk_nlink(c, ino) <= fsck_pending_links(c, ino))
			continue;
		if (fsck_fix(c, PR_4_UNREACHABLE, fsck_inode_addr(c, ino),
			     "inode %llu (mode 0%o) has %u links but no entry",
			     (unsigned long long)ino, mode_of(c, ino), disk_nlink(c, ino)))
			ret = soft(c, reconnect(c, ino, false));
	}

	/* ".." of every directory. */
	for (uint64_t ino = 1; ino < count && !ret && !c->abort; ino++) {
		uint64_t want, have;

		if (!bm_test(c->isdir, ino))
			continue;
		want = ino == root ? root : fsck_map_get(c, c->parent, ino, &found);
		if (ino != root && !found)
			continue;
		have = fsck_map_get(c, c->dparent, ino, NULL);
		if (want != have &&
		    fsck_fix(c, PR_4_DIR_PARENT, fsck_inode_addr(c, ino),
			     "directory %llu: parent %llu, named in directory %llu",
			     (unsigned long long)ino, (unsigned long long)have,
			     (unsigned long long)want))
			ret = set_parent(c, ino, want);
	}
out:
	free(path);
	lun_buf_free(s.iblk);
	lun_buf_free(s.cb);
	lun_buf_free(s.tmp);
	return ret;
}
