/*
 * Corruption tool: the picture of the volume every damage function
 * chooses from, read from the raw LUN with the on-disk structures alone.
 *
 *   inodes       every inode whose bitmap bit is set and whose block
 *                verifies (a damaged cluster header hides its inodes);
 *   block maps   direct pointers, then each indirect tree, parents before
 *                children; a pointer block that fails verification, sits
 *                outside its area or names another owner or level is not
 *                descended into, as the engine would refuse it too;
 *   directories  walked from the root: every live entry with its chunk,
 *                slot and absolute path (a hard link has one per name),
 *                every chunk with its live and empty slots.
 *
 * Nothing here writes except corrupt_inode_write and corrupt_ptr_set.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "corrupt_int.h"

/* ---- inodes ---------------------------------------------------------------- */

uint64_t corrupt_inode_addr(const struct corrupt *c, uint64_t ino)
{
	return c->g.res[VMFS_RES_INODE].obj_offset + ino * VMFS_MD_BLOCK_SIZE;
}

int corrupt_inode_read(struct corrupt *c, uint64_t ino)
{
	int ret = corrupt_read(c, c->blk, corrupt_inode_addr(c, ino));

	/* Fields out of range are kept as they are: damage is our trade. */
	if (!ret)
		(void)fmt_inode_decode(corrupt_di(c), &c->fi);
	return ret;
}

int corrupt_inode_write(struct corrupt *c, uint64_t ino)
{
	uint64_t addr = corrupt_inode_addr(c, ino);

	fmt_inode_encode(&c->fi, corrupt_di(c));
	corrupt_seal(c->blk, CK_INODE, addr);
	c->target = addr;
	return corrupt_write(c, c->blk, addr);
}

struct corrupt_node *corrupt_node(struct corrupt *c, uint64_t ino)
{
	size_t lo = 0, hi = c->nnodes;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (c->nodes[mid].ino == ino)
			return &c->nodes[mid];
		if (c->nodes[mid].ino < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

bool corrupt_is_user(const struct corrupt *c, uint64_t ino)
{
	return ino && ino != c->g.root_ino && ino != c->g.lostfound_ino;
}

const char *corrupt_path(struct corrupt *c, uint64_t ino)
{
	if (ino == c->g.root_ino)
		return "/";
	for (size_t i = 0; i < c->nents; i++)
		if (c->ents[i].ino == ino)
			return c->ents[i].path;
	return "?";
}

/* Every allocated inode whose block verifies, ascending. */
static int load_nodes(struct corrupt *c)
{
	const struct vol_res_geom *r = &c->g.res[VMFS_RES_INODE];
	uint8_t *hdr = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	uint8_t *ib = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	size_t cap = 0;
	int ret = 0;

	if (!hdr || !ib) {
		ret = -ENOMEM;
		goto out;
	}
	for (uint32_t cl = 0; cl < r->nclusters && !ret; cl++) {
		uint64_t addr = corrupt_rc_addr(c, VMFS_RES_INODE, cl);
		const struct vmfs_rc *rc = (const struct vmfs_rc *)
			(hdr + VMFS_OBJ_OFFSET);
		uint32_t nobjs;
		struct fmt_rc h;

		ret = corrupt_read(c, hdr, addr);
		if (ret)
			break;
		if (lun_md_verify(&rc->rc_hdr, VMFS_MAGIC_RCLUSTER, addr,
				  VMFS_MD_BLOCK_SIZE - VMFS_OBJ_OFFSET))
			continue;   /* damaged: its inodes are out of reach */
		(void)fmt_rc_decode(rc, &h);
		nobjs = h.nobjs;
		if (nobjs > VMFS_RC_MAX_OBJS)
			nobjs = VMFS_RC_MAX_OBJS;
		for (uint32_t b = 0; b < nobjs && !ret; b++) {
			uint64_t ino = (uint64_t)cl * r->per_cluster + b;
			const struct vmfs_inode *di = (const struct vmfs_inode *)
				(ib + VMFS_OBJ_OFFSET);
			struct corrupt_node *n;
			struct fmt_inode fi;

			if (!(rc->rc_bitmap[b >> 3] & (1u << (b & 7))) || !ino ||
			    ino >= r->count)
				continue;
			ret = corrupt_read(c, ib, corrupt_inode_addr(c, ino));
			if (ret)
				break;
			/* Out-of-range fields are damage to aim at, not skip. */
			(void)fmt_inode_decode(di, &fi);
			if (lun_md_verify(&di->di_hdr, VMFS_MAGIC_INODE,
					  corrupt_inode_addr(c, ino),
					  VMFS_MD_BLOCK_SIZE - VMFS_OBJ_OFFSET) ||
			    fi.ino != ino || !fi.mode)
				continue;
			if (c->nnodes == cap) {
				size_t nc = cap ? cap * 2 : 256;
				struct corrupt_node *nn =
					realloc(c->nodes, nc * sizeof(*nn));

				if (!nn) {
					ret = -ENOMEM;
					break;
				}
				c->nodes = nn;
				cap = nc;
			}
			n = &c->nodes[c->nnodes++];
			memset(n, 0, sizeof(*n));
			n->ino = ino;
			n->mode = fi.mode;
			n->nlink = fi.nlink;
			n->flags = fi.flags;
			n->size = fi.size;
			n->alloc_bytes = fi.alloc_bytes;
			n->parent = fi.parent;
			n->nentries = fi.nentries;
			n->map_type = fi.map_type;
			n->xattr_len = fi.xattr_len;
		}
	}
out:
	lun_buf_free(hdr);
	lun_buf_free(ib);
	return ret;
}

/* ---- block maps ------------------------------------------------------------ */

struct walk {
	struct corrupt *c;
	uint64_t ino;
	int (*cb)(void *ctx, const struct corrupt_ptr *p);
	void *ctx;
};

/* Descend into the level-d pointer block at addr covering lbns from base. */
static int walk_ptrblk(struct walk *w, uint64_t addr, int d, uint64_t base)
{
	uint8_t *b;
	const struct vmfs_ptrblk *pb;
	struct fmt_ptrblk h;
	int ret = 0;

	if (d < 1 || d > 4 ||
	    corrupt_res_index(w->c, VMFS_RES_PTRBLK, addr) < 0)
		return 0;
	b = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	if (!b)
		return -ENOMEM;
	pb = (const struct vmfs_ptrblk *)b;
	ret = corrupt_read(w->c, b, addr);
	if (ret || lun_md_verify(&pb->pb_hdr, VMFS_MAGIC_PTRBLK, addr,
				 VMFS_MD_BLOCK_SIZE))
		goto out;
	(void)fmt_ptrblk_decode(pb, &h);
	if (h.owner_ino != w->ino || h.level != (uint32_t)d)
		goto out;
	for (uint32_t i = 0; i < VMFS_PTRS_PER_BLK && !ret; i++) {
		uint64_t e = fmt_ptr_load(&pb->pb_ptr[i]);
		struct corrupt_ptr p = {
			.ino = w->ino,
			.lbn = base + i * vmfs_map_span(d - 1),
			.val = e,
			.holder = addr,
			.off = (uint32_t)offsetof(struct vmfs_ptrblk, pb_ptr[i]),
			.holder_kind = CK_PTRBLK,
			.level = d - 1,
		};

		if (!e)
			continue;
		ret = w->cb(w->ctx, &p);
		if (!ret && d > 1)
			ret = walk_ptrblk(w, vmfs_ptr_addr(e), d - 1, p.lbn);
	}
out:
	lun_buf_free(b);
	return ret;
}

int corrupt_map_walk(struct corrupt *c, uint64_t ino,
		     int (*cb)(void *ctx, const struct corrupt_ptr *p),
		     void *ctx)
{
	uint8_t *b = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	const struct vmfs_inode *di = (const struct vmfs_inode *)
		(b + VMFS_OBJ_OFFSET);
	struct walk w = { c, ino, cb, ctx };
	struct fmt_inode fi;
	uint64_t addr = corrupt_inode_addr(c, ino), base = VMFS_NDIRECT;
	int ret;

	if (!b)
		return -ENOMEM;
	ret = corrupt_read(c, b, addr);
	if (!ret)
		(void)fmt_inode_decode(di, &fi);
	if (ret || fi.map_type == VMFS_MAP_INLINE)
		goto out;
	for (uint32_t i = 0; i < VMFS_NMAP - 1 && !ret; i++) {
		uint64_t e = fmt_ptr_load(&di->di_map[i]);
		int d = i < VMFS_NDIRECT ? 0 : (int)(i - VMFS_NDIRECT + 1);
		struct corrupt_ptr p = {
			.ino = ino,
			.lbn = d ? base : i,
			.val = e,
			.holder = addr,
			.off = (uint32_t)(VMFS_OBJ_OFFSET +
					  offsetof(struct vmfs_inode, di_map[i])),
			.holder_kind = CK_INODE,
			.level = d,
		};

		if (d)
			base += vmfs_map_span(d);
		if (!e)
			continue;
		ret = cb(ctx, &p);
		if (!ret && d)
			ret = walk_ptrblk(&w, vmfs_ptr_addr(e), d, p.lbn);
	}
out:
	lun_buf_free(b);
	return ret;
}

struct ptr_list {
	struct corrupt_ptr *v;
	size_t n, cap;
	int lo, hi;
};

static int ptr_collect(void *ctx, const struct corrupt_ptr *p)
{
	struct ptr_list *l = ctx;

	if (p->level < l->lo || p->level > l->hi)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct corrupt_ptr *nv = realloc(l->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = cap;
	}
	l->v[l->n++] = *p;
	return 0;
}

int corrupt_ptrs(struct corrupt *c, uint64_t ino, int lo, int hi,
		 struct corrupt_ptr **out, size_t *n)
{
	struct ptr_list l = { .lo = lo, .hi = hi };
	int ret = corrupt_map_walk(c, ino, ptr_collect, &l);

	if (ret) {
		free(l.v);
		return ret;
	}
	*out = l.v;
	*n = l.n;
	return 0;
}

int corrupt_ptr_set(struct corrupt *c, const struct corrupt_ptr *p,
		    uint64_t val)
{
	uint8_t *b = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	le64 v;
	int ret;

	if (!b)
		return -ENOMEM;
	/* p->off is that of a le64 slot (di_map[i] or pb_ptr[i]). */
	fmt_ptr_store(&v, val);
	ret = corrupt_read(c, b, p->holder);
	if (!ret) {
		memcpy(b + p->off, &v, sizeof(v));
		corrupt_seal(b, p->holder_kind, p->holder);
		ret = corrupt_write(c, b, p->holder);
	}
	c->target = p->holder;
	lun_buf_free(b);
	return ret;
}

int corrupt_all_ptrs(struct corrupt *c,
		     bool (*pred)(const struct corrupt *c,
				  const struct corrupt_node *n),
		     int lo, int hi, struct corrupt_ptr **out, size_t *n)
{
	struct ptr_list l = { .lo = lo, .hi = hi };
	int ret = corrupt_load(c);

	for (size_t i = 0; i < c->nnodes && !ret; i++) {
		const struct corrupt_node *nd = &c->nodes[i];

		if (!nd->reached || (pred && !pred(c, nd)))
			continue;
		ret = corrupt_map_walk(c, nd->ino, ptr_collect, &l);
	}
	if (ret) {
		free(l.v);
		return ret;
	}
	*out = l.v;
	*n = l.n;
	return 0;
}

int corrupt_pick_node(struct corrupt *c,
		      bool (*pred)(const struct corrupt *c,
				   const struct corrupt_node *n),
		      struct corrupt_node **out)
{
	struct corrupt_vec v = { 0 };
	int ret = corrupt_load(c);

	for (size_t i = 0; i < c->nnodes && !ret; i++)
		if (c->nodes[i].reached && (!pred || pred(c, &c->nodes[i])))
			ret = corrupt_vec_push(&v, i);
	if (!ret && !v.n)
		ret = -ENOENT;
	if (!ret)
		*out = &c->nodes[v.v[corrupt_pick(c, v.n)]];
	corrupt_vec_free(&v);
	return ret;
}

/* ---- directories ----------------------------------------------------------- */

static int ent_add(struct corrupt *c, const struct corrupt_ent *e)
{
	if (c->nents == c->cap_ents) {
		size_t cap = c->cap_ents ? c->cap_ents * 2 : 256;
		struct corrupt_ent *ne = realloc(c->ents, cap * sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		c->ents = ne;
		c->cap_ents = cap;
	}
	c->ents[c->nents++] = *e;
	return 0;
}

static int chunk_add(struct corrupt *c, const struct corrupt_chunk *k)
{
	if (c->nchunks == c->cap_chunks) {
		size_t cap = c->cap_chunks ? c->cap_chunks * 2 : 64;
		struct corrupt_chunk *nk = realloc(c->chunks, cap * sizeof(*nk));

		if (!nk)
			return -ENOMEM;
		c->chunks = nk;
		c->cap_chunks = cap;
	}
	c->chunks[c->nchunks++] = *k;
	return 0;
}

/* The data pointer of logical block lbn in a list from corrupt_ptrs. */
static uint64_t ptr_for(const struct corrupt_ptr *v, size_t n, uint64_t lbn)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].lbn == lbn)
			return v[i].val;
	return 0;
}

/*
 * Read the chunks of directory dir (path dpath) and record its entries;
 * subdirectories seen for the first time go on the stack.
 */
static int load_dir(struct corrupt *c, struct corrupt_node *dir,
		    const char *dpath, struct corrupt_vec *stack)
{
	uint32_t per_blk = c->g.small_block_size / VMFS_MD_BLOCK_SIZE;
	uint64_t nchunks = dir->size / VMFS_MD_BLOCK_SIZE;
	struct corrupt_ptr *ptrs = NULL;
	uint8_t *b = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	const struct vmfs_dirblk *db = (const struct vmfs_dirblk *)b;
	struct fmt_dirblk h;
	size_t nptrs = 0;
	int ret;

	if (!b)
		return -ENOMEM;
	ret = dir->map_type == VMFS_MAP_SMALL ?
	      corrupt_ptrs(c, dir->ino, 0, 0, &ptrs, &nptrs) : 0;
	for (uint32_t k = 0; k < nchunks && !ret && dir->map_type == VMFS_MAP_SMALL; k++) {
		uint64_t p = ptr_for(ptrs, nptrs, k / per_blk);
		struct corrupt_chunk ck = { .dir = dir->ino, .chunk = k };

		if (!p || (p & VMFS_PTR_TBZ) ||
		    corrupt_res_index(c, VMFS_RES_SMALL,
				      vmfs_ptr_addr(p)) < 0)
			continue;
		ck.addr = vmfs_ptr_addr(p) + (uint64_t)(k % per_blk) * VMFS_MD_BLOCK_SIZE;
		ret = corrupt_read(c, b, ck.addr);
		if (ret)
			break;
		if (lun_md_verify(&db->db_hdr, VMFS_MAGIC_DIRBLK, ck.addr,
				  VMFS_MD_BLOCK_SIZE))
			continue;
		(void)fmt_dirblk_decode(db, &h);
		if (h.dir_ino != dir->ino || h.chunk != k)
			continue;
		for (uint32_t s = 0; s < VMFS_DIRENTS_PER_CHUNK && !ret; s++) {
			const struct vmfs_dirent *de = &db->db_ents[s];
			struct corrupt_ent e = {
				.dir = dir->ino, .chunk = k, .caddr = ck.addr,
				.slot = s, .ino = fmt_dirent_ino(de),
				.type = de->de_type,
			};
			struct corrupt_node *n;
			size_t plen;

			if (!e.ino) {
				ck.nfree_slots++;
				continue;
			}
			ck.live++;
			e.name = strndup(de->de_name, de->de_name_len);
			plen = strlen(dpath) + de->de_name_len + 2;
			e.path = malloc(plen);
			if (!e.name || !e.path) {
				free(e.name);
				free(e.path);
				ret = -ENOMEM;
				break;
			}
			snprintf(e.path, plen, "%s/%s",
				 strcmp(dpath, "/") ? dpath : "", e.name);
			ret = ent_add(c, &e);
			if (ret) {
				free(e.name);
				free(e.path);
				break;
			}
			n = corrupt_node(c, e.ino);
			if (n && !n->reached && S_ISDIR(n->mode))
				ret = corrupt_vec_push(stack, c->nents - 1);
			if (n)
				n->reached = true;
		}
		if (!ret)
			ret = chunk_add(c, &ck);
	}
	free(ptrs);
	lun_buf_free(b);
	return ret;
}

int corrupt_load(struct corrupt *c)
{
	struct corrupt_vec stack = { 0 };
	struct corrupt_node *root;
	int ret;

	if (c->loaded)
		return 0;
	ret = load_nodes(c);
	if (ret)
		return ret;
	c->loaded = true;
	root = corrupt_node(c, c->g.root_ino);
	if (!root || !S_ISDIR(root->mode))
		return 0;
	root->reached = true;
	ret = load_dir(c, root, "/", &stack);
	while (!ret && stack.n) {
		size_t ei = stack.v[--stack.n];
		struct corrupt_node *n = corrupt_node(c, c->ents[ei].ino);
		char *path = strdup(c->ents[ei].path);

		if (!path) {
			ret = -ENOMEM;
			break;
		}
		ret = load_dir(c, n, path, &stack);
		free(path);
	}
	corrupt_vec_free(&stack);
	return ret;
}
