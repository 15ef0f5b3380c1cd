/*
 * Directories: an array of 4 KiB chunks, each with 14 fixed entries,
 * stored in small blocks through the directory's block map.
 *
 * Entries never move once written, so a readdir cookie (chunk * 14 + slot,
 * offset by "." and "..") stays valid while the directory changes, and an
 * entry is created, removed or retargeted by rewriting a single 4 KiB
 * chunk.  "." and ".." are not stored: ".." is the inode's di_parent.
 * While a directory is in use its chunks are cached with a hash index of
 * the names (crc32c, as stored in de_hash); directories never shrink.
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "vol_int.h"

#define NPER VMFS_DIRENTS_PER_CHUNK
#define TOMB UINT32_MAX

static struct vmfs_dirblk *chunk(struct vdir *d, uint32_t c)
{
	return (struct vmfs_dirblk *)d->chunks[c];
}

/* ---- one chunk image: what the engine and vol_raw_* both write ---------- */

#define ANY_CHUNK UINT32_MAX

/* Byte address of chunk k, in the small block p maps. */
static uint64_t chunk_addr(const struct vol_geom *g, uint64_t p, uint32_t k)
{
	uint32_t per_blk = g->small_block_size / VMFS_MD_BLOCK_SIZE;

	return vmfs_ptr_addr(p) + (uint64_t)(k % per_blk) * VMFS_MD_BLOCK_SIZE;
}

/* Is blk, read at addr, sound and chunk k (or ANY_CHUNK) of directory dir? */
static int chunk_check(const uint8_t *blk, uint64_t addr, uint64_t dir,
		       uint32_t k)
{
	const struct vmfs_dirblk *db = (const struct vmfs_dirblk *)blk;
	int ret = lun_md_verify(&db->db_hdr, VMFS_MAGIC_DIRBLK, addr,
				VMFS_MD_BLOCK_SIZE);
	struct fmt_dirblk h;

	/* A db_count out of range is the caller's to judge (chunk_verify). */
	(void)fmt_dirblk_decode(db, &h);
	if (!ret && (h.dir_ino != dir || (k != ANY_CHUNK && h.chunk != k)))
		ret = -VMFS_E_CORRUPT;
	return ret;
}

/* An empty chunk k of directory dir ("." and ".." are never stored). */
static void chunk_init(uint8_t *blk, uint64_t dir, uint32_t k)
{
	struct vmfs_dirblk *db = (struct vmfs_dirblk *)blk;

	memset(blk, 0, VMFS_MD_BLOCK_SIZE);
	fmt_dirblk_encode(&(struct fmt_dirblk){ .dir_ino = dir, .chunk = k }, db);
}

/* A free slot of the chunk, or NPER when its count says it is full. */
static uint32_t chunk_free_slot(const uint8_t *blk)
{
	const struct vmfs_dirblk *db = (const struct vmfs_dirblk *)blk;
	uint32_t i = 0;

	if (fmt_dirblk_count(db) >= NPER)
		return NPER;
	while (i < NPER && db->db_ents[i].de_ino)
		i++;
	return i;
}

/* Name an entry in free slot i: hash crc32c, the name NUL-padded. */
static struct vmfs_dirent *chunk_put(uint8_t *blk, uint32_t i, const char *name,
				     size_t len, uint64_t ino, uint8_t type)
{
	struct vmfs_dirblk *db = (struct vmfs_dirblk *)blk;
	struct vmfs_dirent *de = &db->db_ents[i];

	fmt_dirent_encode(de, ino, name, len, type);
	fmt_dirblk_set_count(db, fmt_dirblk_count(db) + 1);
	return de;
}

static void chunk_take(uint8_t *blk, uint32_t i)
{
	struct vmfs_dirblk *db = (struct vmfs_dirblk *)blk;

	memset(&db->db_ents[i], 0, sizeof(db->db_ents[i]));
	if (fmt_dirblk_count(db))
		fmt_dirblk_set_count(db, fmt_dirblk_count(db) - 1);
}

static bool dirent_is(const struct vmfs_dirent *de, const char *name,
		      size_t len)
{
	return de->de_ino && de->de_name_len == len &&
	       !memcmp(de->de_name, name, len);
}

void vol_dir_unload(struct vinode *dir)
{
	struct vdir *d = dir->dir;

	if (!d)
		return;
	for (uint32_t c = 0; c < d->nchunks; c++)
		lun_buf_free(d->chunks[c]);
	free(d->chunks);
	free(d->caddr);
	free(d->tab);
	free(d->roomy);
	free(d);
	dir->dir = NULL;
}

uint64_t vol_dir_cache_bytes(const struct vinode *dir)
{
	const struct vdir *d = dir->dir;

	if (!d)
		return 0;
	return sizeof(*d) + (uint64_t)d->nchunks * VMFS_MD_BLOCK_SIZE +
	       (uint64_t)d->cap * (sizeof(*d->chunks) + sizeof(*d->caddr)) +
	       (uint64_t)d->tabsize * sizeof(*d->tab) +
	       (uint64_t)d->roomy_cap * sizeof(*d->roomy);
}

/* Index slot for (hash, pos); value stored is pos + 1, 0 = empty. */
static void tab_insert(struct vdir *d, uint32_t hash, uint32_t pos)
{
	uint32_t mask = d->tabsize - 1, i = hash & mask;

	while (d->tab[i].pos && d->tab[i].pos != TOMB)
		i = (i + 1) & mask;
	if (!d->tab[i].pos)
		d->tabused++;
	d->tab[i].hash = hash;
	d->tab[i].pos = pos + 1;
}

static int tab_resize(struct vdir *d, uint32_t want_live)
{
	uint32_t size = 64;
	struct dslot *old = d->tab;
	uint32_t oldsize = d->tabsize;

	while (size < want_live * 2 + 16)
		size *= 2;
	d->tab = calloc(size, sizeof(*d->tab));
	if (!d->tab) {
		d->tab = old;
		return -ENOMEM;
	}
	d->tabsize = size;
	d->tabused = 0;
	for (uint32_t i = 0; i < oldsize; i++)
		if (old[i].pos && old[i].pos != TOMB)
			tab_insert(d, old[i].hash, old[i].pos - 1);
	free(old);
	return 0;
}

/*
 * Chunks with a free slot are kept on a stack so an add finds room in
 * O(1): pushed when loaded with room, created, or emptied by a remove;
 * entries that filled up meanwhile are dropped when met.
 */
static int roomy_push(struct vdir *d, uint32_t c)
{
	if (d->nroomy == d->roomy_cap) {
		uint32_t cap = d->roomy_cap ? d->roomy_cap * 2 : 16;
		uint32_t *n = realloc(d->roomy, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		d->roomy = n;
		d->roomy_cap = cap;
	}
	d->roomy[d->nroomy++] = c;
	return 0;
}

static int chunks_grow(struct vdir *d)
{
	uint32_t cap = d->cap ? d->cap * 2 : 16;
	uint8_t **nc = realloc(d->chunks, cap * sizeof(*nc));
	uint64_t *na;

	if (!nc)
		return -ENOMEM;
	d->chunks = nc;
	na = realloc(d->caddr, cap * sizeof(*na));
	if (!na)
		return -ENOMEM;
	d->caddr = na;
	d->cap = cap;
	return 0;
}

static int chunk_verify(struct vinode *dir, uint32_t c, uint64_t addr,
			const uint8_t *blk)
{
	const struct vmfs_dirblk *db = (const struct vmfs_dirblk *)blk;
	int ret = chunk_check(blk, addr, dir->ino, c);
	struct fmt_dirblk h;
	struct fmt_dirent de;
	uint32_t live = 0;

	/* A db_count out of range cannot equal live below: checked there. */
	(void)fmt_dirblk_decode(db, &h);
	for (int i = 0; !ret && i < NPER; i++) {
		ret = fmt_dirent_decode(&db->db_ents[i], &de);
		if (de.ino)
			live++;
	}
	if (!ret && live != h.count)
		ret = -VMFS_E_CORRUPT;
	if (ret)
		VLOG(LOG_ERR, "directory %llu chunk %u at %llu: %s (owner %llu, chunk %u); run 'vmfs fsck'",
		     (unsigned long long)dir->ino, c, (unsigned long long)addr,
		     vmfs_strerror(ret), (unsigned long long)h.dir_ino,
		     h.chunk);
	return ret;
}

int vol_dir_load(struct vol *v, struct vinode *dir)
{
	uint32_t sbs = v->g.small_block_size;
	uint32_t per_blk = sbs / VMFS_MD_BLOCK_SIZE;
	uint64_t nchunks = dir->size / VMFS_MD_BLOCK_SIZE;
	struct vdir *d;
	uint32_t live = 0;
	int ret = 0;

	if (dir->dir)
		return 0;
	if (dir->size % VMFS_MD_BLOCK_SIZE || dir->map_type != VMFS_MAP_SMALL ||
	    nchunks > UINT32_MAX / NPER) {
		VLOG(LOG_ERR, "directory %llu has size %llu / map %u; run 'vmfs fsck'",
		     (unsigned long long)dir->ino,
		     (unsigned long long)dir->size, dir->map_type);
		return -VMFS_E_CORRUPT;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	dir->dir = d;
	for (uint32_t c = 0; c < nchunks && !ret; c++) {
		uint64_t p;
		uint8_t *blk;

		if (d->nchunks == d->cap && (ret = chunks_grow(d)))
			break;
		ret = vol_bmap_get(v, dir, c / per_blk, &p);
		if (ret)
			break;
		if (!p || (p & VMFS_PTR_TBZ)) {
			VLOG(LOG_ERR, "directory %llu chunk %u is not mapped; run 'vmfs fsck'",
			     (unsigned long long)dir->ino, c);
			ret = -VMFS_E_CORRUPT;
			break;
		}
		blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
		if (!blk) {
			ret = -ENOMEM;
			break;
		}
		d->chunks[c] = blk;
		d->caddr[c] = chunk_addr(&v->g, p, c);
		d->nchunks++;
		ret = vol_md_read(v, blk, d->caddr[c]);
		if (!ret)
			ret = chunk_verify(dir, c, d->caddr[c], blk);
		if (!ret)
			live += fmt_dirblk_count(chunk(d, c));
		if (!ret && fmt_dirblk_count(chunk(d, c)) < NPER)
			ret = roomy_push(d, c);
	}
	if (!ret)
		ret = tab_resize(d, live);
	for (uint32_t c = 0; c < d->nchunks && !ret; c++)
		for (uint32_t i = 0; i < NPER; i++) {
			const struct vmfs_dirent *de = &chunk(d, c)->db_ents[i];

			if (de->de_ino)
				tab_insert(d, fmt_dirent_hash(de), c * NPER + i);
		}
	if (ret)
		vol_dir_unload(dir);
	return ret;
}

static struct vmfs_dirent *ent(struct vdir *d, uint32_t pos)
{
	return &chunk(d, pos / NPER)->db_ents[pos % NPER];
}

int vol_dir_find(struct vol *v, struct vinode *dir, const char *name,
	     uint64_t *ino, uint8_t *type, uint32_t *pos)
{
	size_t len = strlen(name);
	uint32_t hash, mask, i;
	struct vdir *d;
	int ret;

	if (len > VMFS_NAME_MAX)
		return -ENAMETOOLONG;
	ret = vol_dir_load(v, dir);
	if (ret)
		return ret;
	d = dir->dir;
	hash = fmt_name_hash(name, len);
	mask = d->tabsize - 1;
	for (i = hash & mask; d->tab[i].pos; i = (i + 1) & mask) {
		struct vmfs_dirent *de;

		if (d->tab[i].pos == TOMB || d->tab[i].hash != hash)
			continue;
		de = ent(d, d->tab[i].pos - 1);
		if (dirent_is(de, name, len)) {
			*ino = fmt_dirent_ino(de);
			if (type)
				*type = de->de_type;
			if (pos)
				*pos = d->tab[i].pos - 1;
			return 0;
		}
	}
	return -ENOENT;
}

static void tab_remove(struct vdir *d, uint32_t hash, uint32_t pos)
{
	uint32_t mask = d->tabsize - 1;

	for (uint32_t i = hash & mask; d->tab[i].pos; i = (i + 1) & mask)
		if (d->tab[i].pos == pos + 1) {
			d->tab[i].pos = TOMB;
			return;
		}
}

static int chunk_write(struct vol *v, struct vdir *d, uint32_t c)
{
	md_reseal(d->chunks[c], VMFS_MAGIC_DIRBLK, d->caddr[c],
		  VMFS_MD_BLOCK_SIZE);
	return vol_md_write(v, d->chunks[c], d->caddr[c], false);
}

/* Append an empty chunk, mapping a new small block when needed. */
static int chunk_new(struct vol *v, struct vinode *dir, uint32_t *out)
{
	struct vdir *d = dir->dir;
	uint32_t per_blk = v->g.small_block_size / VMFS_MD_BLOCK_SIZE;
	uint32_t c = d->nchunks;
	uint64_t p;
	int ret;

	if ((uint64_t)c + 1 > UINT32_MAX / NPER)
		return -EMLINK;
	if (d->nchunks == d->cap && (ret = chunks_grow(d)))
		return ret;
	ret = vol_bmap_get(v, dir, c / per_blk, &p);
	if (ret)
		return ret;
	if (!p) {
		uint64_t idx, hint = UINT64_MAX;
		uint32_t got;

		if (c)
			hint = (uint64_t)vol_res_index(v, VMFS_RES_SMALL,
						   d->caddr[c - 1] & ~(uint64_t)(v->g.small_block_size - 1)) + 1;
		ret = vol_res_alloc(v, VMFS_RES_SMALL, hint, &idx, 1, &got);
		if (ret)
			return ret;
		p = res_addr(v, VMFS_RES_SMALL, idx) >> VMFS_MD_BLOCK_SHIFT;
		ret = vol_bmap_set(v, dir, c / per_blk, p, false);
		if (ret) {
			vol_res_free(v, VMFS_RES_SMALL, &idx, 1);
			return ret;
		}
	}
	d->chunks[c] = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	if (!d->chunks[c])
		return -ENOMEM;
	chunk_init(d->chunks[c], dir->ino, c);
	d->caddr[c] = chunk_addr(&v->g, p, c);
	d->nchunks++;
	dir->size += VMFS_MD_BLOCK_SIZE;
	*out = c;
	return roomy_push(d, c);
}

/*
 * Add a name.  The caller checked it is not there, holds dir->rw for
 * writing, and writes the directory inode afterwards (size, times).
 */
int vol_dir_add(struct vol *v, struct vinode *dir, const char *name,
	    uint64_t ino, uint8_t type)
{
	size_t len = strlen(name);
	struct vdir *d;
	struct vmfs_dirent *de;
	uint32_t c, i;
	int ret;

	if (len > VMFS_NAME_MAX)
		return -ENAMETOOLONG;
	ret = vol_dir_load(v, dir);
	if (ret)
		return ret;
	d = dir->dir;
	if ((d->tabused + 1) * 10 > d->tabsize * 7) {
		ret = tab_resize(d, (uint32_t)dir->nentries + 1);
		if (ret)
			return ret;
	}
	while (d->nroomy &&
	       fmt_dirblk_count(chunk(d, d->roomy[d->nroomy - 1])) >= NPER)
		d->nroomy--;
	if (d->nroomy) {
		c = d->roomy[d->nroomy - 1];
	} else {
		ret = chunk_new(v, dir, &c);
		if (ret)
			return ret;
	}
	i = chunk_free_slot(d->chunks[c]);
	de = chunk_put(d->chunks[c], i, name, len, ino, type);
	ret = chunk_write(v, d, c);
	if (ret) {
		chunk_take(d->chunks[c], i);
		return ret;
	}
	tab_insert(d, fmt_dirent_hash(de), c * NPER + i);
	dir->nentries++;
	return 0;
}

int vol_dir_remove_pos(struct vol *v, struct vinode *dir, uint32_t pos)
{
	struct vdir *d = dir->dir;
	struct vmfs_dirent *de = ent(d, pos), saved = *de;
	struct vmfs_dirblk *db = chunk(d, pos / NPER);
	int ret;

	chunk_take(d->chunks[pos / NPER], pos % NPER);
	ret = chunk_write(v, d, pos / NPER);
	if (ret) {
		*de = saved;
		fmt_dirblk_set_count(db, fmt_dirblk_count(db) + 1);
		return ret;
	}
	tab_remove(d, fmt_dirent_hash(&saved), pos);
	dir->nentries--;
	/* Full -> room: findable again (a failed push only costs space). */
	if (fmt_dirblk_count(db) == NPER - 1)
		roomy_push(d, pos / NPER);
	return 0;
}

/* Point an existing entry at another inode: one chunk write, atomic. */
int vol_dir_replace_pos(struct vol *v, struct vinode *dir, uint32_t pos,
		    uint64_t ino, uint8_t type)
{
	struct vdir *d = dir->dir;
	struct vmfs_dirent *de = ent(d, pos), saved = *de;
	int ret;

	fmt_dirent_set_ino(de, ino);
	de->de_type = type;
	ret = chunk_write(v, d, pos / NPER);
	if (ret)
		*de = saved;
	return ret;
}

/*
 * Walk entries from cookie (0 = start; 1 and 2 are "." and "..",
 * emitted by the caller; entry at pos has cookie pos + 3).
 */
int vol_dir_iterate(struct vol *v, struct vinode *dir, uint64_t cookie,
		int (*cb)(void *ctx, const char *name, uint64_t ino,
			  uint8_t type, uint64_t next),
		void *ctx)
{
	struct vdir *d;
	uint64_t pos = cookie > 2 ? cookie - 2 : 0;
	int ret = vol_dir_load(v, dir);

	if (ret)
		return ret;
	d = dir->dir;
	for (; pos < (uint64_t)d->nchunks * NPER; pos++) {
		struct vmfs_dirent *de = ent(d, (uint32_t)pos);
		char name[VMFS_NAME_MAX + 1];

		if (!de->de_ino)
			continue;
		memcpy(name, de->de_name, de->de_name_len);
		name[de->de_name_len] = 0;
		if (cb(ctx, name, fmt_dirent_ino(de), de->de_type, pos + 3))
			break;
	}
	return 0;
}

/* ---- vol_raw_*: the same chunks on a volume that is not open ------------ */

static struct vmfs_inode *raw_di(uint8_t *iblk)
{
	return (struct vmfs_inode *)(iblk + VMFS_OBJ_OFFSET);
}

/* Read chunk k of directory dir (inode image iblk) into cb at *addr;
 * -ENOENT when it is unmapped or not a sound chunk k of dir. */
static int raw_chunk_read(const struct vol_raw *r, uint64_t dir,
			  const uint8_t *iblk, uint32_t k, uint8_t *cb,
			  uint64_t *addr)
{
	uint32_t per_blk = r->g->small_block_size / VMFS_MD_BLOCK_SIZE;
	uint64_t p;
	int ret;

	ret = vol_raw_bmap_get(r, iblk, k / per_blk, &p);
	if (ret)
		return ret;
	if (!p || (p & VMFS_PTR_TBZ))
		return -ENOENT;
	*addr = chunk_addr(r->g, p, k);
	ret = r->md_read(r->ctx, cb, *addr);
	if (ret)
		return ret;
	return chunk_check(cb, *addr, dir, k) ? -ENOENT : 0;
}

/*
 * The scan for room is linear, which is why the caller keeps *hint; a
 * new chunk only ever gets a direct pointer (251 small blocks of chunks
 * are plenty for lost+found, and leave pointer blocks alone).
 */
int vol_raw_dir_add(const struct vol_raw *r, uint64_t dir, const char *name,
		    uint64_t ino, uint8_t type, uint8_t *iblk, uint32_t *hint,
		    uint64_t *loc)
{
	uint32_t sbs = r->g->small_block_size, per_blk = sbs / VMFS_MD_BLOCK_SIZE;
	uint8_t *cb = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	struct vmfs_inode *di = raw_di(iblk);
	size_t len = strlen(name);
	uint64_t nchunks, caddr = 0, p, idx;
	uint32_t k, slot = NPER;
	struct fmt_inode fi;
	int ret;

	if (!cb)
		return -ENOMEM;
	if (len > VMFS_NAME_MAX) {
		ret = -ENAMETOOLONG;
		goto out;
	}
	ret = vol_raw_inode_read(r, dir, iblk);
	if (ret)
		goto out;
	/* Fields out of range are fsck's to judge; the sizes are used as is. */
	(void)fmt_inode_decode(di, &fi);
	nchunks = fi.size / VMFS_MD_BLOCK_SIZE;
	if (nchunks > UINT32_MAX / NPER) {
		ret = -ENOSPC;
		goto out;
	}
	for (k = *hint < nchunks ? *hint : 0; k < nchunks; k++) {
		ret = raw_chunk_read(r, dir, iblk, k, cb, &caddr);
		if (ret == -ENOENT)
			continue;
		if (ret)
			goto out;
		slot = chunk_free_slot(cb);
		if (slot < NPER)
			break;
	}
	if (k == nchunks) {
		/* Append chunk k, in a new small block when it starts one. */
		ret = vol_raw_bmap_get(r, iblk, k / per_blk, &p);
		if (ret)
			goto out;
		if (!p) {
			if (k / per_blk >= VMFS_NDIRECT) {
				ret = -ENOSPC;
				goto out;
			}
			ret = r->res_alloc(r->ctx, VMFS_RES_SMALL, dir, &idx);
			if (ret)
				goto out;
			p = res_geom_addr(&r->g->res[VMFS_RES_SMALL], idx) >>
			    VMFS_MD_BLOCK_SHIFT;
			fmt_ptr_store(&di->di_map[k / per_blk], p);
			fi.alloc_bytes += sbs;
		}
		caddr = chunk_addr(r->g, p, k);
		chunk_init(cb, dir, k);
		fi.size = (uint64_t)(k + 1) * VMFS_MD_BLOCK_SIZE;
		slot = 0;
	}
	chunk_put(cb, slot, name, len, ino, type);
	md_reseal(cb, VMFS_MAGIC_DIRBLK, caddr, VMFS_MD_BLOCK_SIZE);
	ret = r->md_write(r->ctx, cb, caddr);
	if (ret)
		goto out;
	*hint = k;
	*loc = caddr | slot;
	/* The chunk first: the inode then names what is on disk. */
	fi.nentries++;
	if (type == DT_DIR)
		fi.nlink++;
	fmt_inode_encode(&fi, di);
	ret = vol_raw_inode_write(r, dir, iblk);
out:
	lun_buf_free(cb);
	return ret;
}

int vol_raw_dir_remove(const struct vol_raw *r, uint64_t dir, uint64_t loc,
		       uint8_t *iblk, uint64_t *ino, uint8_t *type)
{
	const struct vol_res_geom *sg = &r->g->res[VMFS_RES_SMALL];
	uint64_t caddr = loc & ~(uint64_t)(VMFS_MD_BLOCK_SIZE - 1);
	uint32_t slot = (uint32_t)(loc & (VMFS_MD_BLOCK_SIZE - 1));
	uint8_t *cb = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	const struct vmfs_dirent *de;
	int ret;

	if (!cb)
		return -ENOMEM;
	/* A chunk lives in the small-block area. */
	if (slot >= NPER || caddr < sg->obj_offset ||
	    caddr - sg->obj_offset >= sg->count * sg->obj_size) {
		ret = -EINVAL;
		goto out;
	}
	ret = r->md_read(r->ctx, cb, caddr);
	if (ret)
		goto out;
	de = &((const struct vmfs_dirblk *)cb)->db_ents[slot];
	if (chunk_check(cb, caddr, dir, ANY_CHUNK) || !de->de_ino) {
		ret = -ESTALE;
		goto out;
	}
	*ino = fmt_dirent_ino(de);
	*type = de->de_type;
	chunk_take(cb, slot);
	md_reseal(cb, VMFS_MAGIC_DIRBLK, caddr, VMFS_MD_BLOCK_SIZE);
	ret = r->md_write(r->ctx, cb, caddr);
	if (!ret)
		ret = vol_raw_inode_adjust(r, dir, iblk, *type == DT_DIR ? -1 : 0, -1);
out:
	lun_buf_free(cb);
	return ret;
}

int vol_raw_dir_find(const struct vol_raw *r, uint64_t dir, const char *name)
{
	uint8_t *iblk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	uint8_t *cb = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	const struct vmfs_dirblk *db = (const struct vmfs_dirblk *)cb;
	size_t len = strlen(name);
	uint64_t nchunks, caddr;
	struct fmt_inode fi;
	int ret = -ENOMEM;

	if (!iblk || !cb)
		goto out;
	ret = vol_raw_inode_read(r, dir, iblk);
	if (ret)
		goto out;
	(void)fmt_inode_decode(raw_di(iblk), &fi);
	nchunks = fi.size / VMFS_MD_BLOCK_SIZE;
	ret = -ENOENT;
	for (uint64_t k = 0; k < nchunks && k <= UINT32_MAX && ret == -ENOENT; k++) {
		ret = raw_chunk_read(r, dir, iblk, (uint32_t)k, cb, &caddr);
		if (ret)
			continue;
		ret = -ENOENT;
		for (int i = 0; i < NPER && ret; i++)
			if (dirent_is(&db->db_ents[i], name, len))
				ret = 0;
	}
out:
	lun_buf_free(iblk);
	lun_buf_free(cb);
	return ret;
}
