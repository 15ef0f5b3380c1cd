/*
 * fsck_run: the table of passes, the run's context, and the primitives
 * every pass uses: bounded reads and writes, object addresses, claiming
 * and allocating objects.
 *
 * Passes (each file opens with its checks and what it hands on):
 *   0  pass0_header.c   volume header and backup, geometry, liveness
 *   1  pass1_hb.c       heartbeat region, slots, lock records
 *   2  pass2_journal.c  journal region headers; replay (or, with -n,
 *                       read through) every dirty journal
 *   3  pass3_inodes.c   cluster headers, inodes, block maps, xattrs;
 *      pass3_dup.c      blocks claimed twice are cloned
 *   4  pass4_dirs.c    directory chunks and entries, connectivity
 *   5  pass5_counts.c   link and entry counts, orphans
 *   6  pass6_bitmaps.c  bitmaps and free counts against ownership
 *
 * Every write goes through fsck_write_md() / fsck_write_data(), which
 * refuse anything outside the areas the geometry defines (and everything
 * in -n mode): a bug in a repair must not become damage elsewhere.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fsck_int.h"

void fsck_opts_init(struct fsck_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->mode = FSCK_MODE_NO;
	o->mem_limit_bytes = 256ull << 20;
	o->tmp_dir = "/tmp";
}

void fsck_fail(struct fsck_ctx *c, int err, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	c->r->exit_code |= FSCK_EXIT_ERROR;
	if (c->abort)
		return;
	c->abort = true;
	va_start(ap, fmt);
	vsnprintf(c->r->error, sizeof(c->r->error), fmt, ap);
	va_end(ap);
	n = strlen(c->r->error);
	if (err && n < sizeof(c->r->error) - 4)
		snprintf(c->r->error + n, sizeof(c->r->error) - n, ": %s",
			 vmfs_strerror(err));
}

const char *fsck_err(int err)
{
	static __thread char buf[256];
	const char *s = vmfs_strerror(err);
	char *cut;

	/* The shared messages send the user to fsck; here that is circular. */
	snprintf(buf, sizeof(buf), "%s", s);
	cut = strstr(buf, "; run 'vmfs fsck'");
	if (cut)
		*cut = 0;
	return buf;
}

void fsck_info(struct fsck_ctx *c, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!c->o->info)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->o->info(c->o->ctx, line);
}

void fsck_progress(struct fsck_ctx *c, int pass, const char *name,
		   uint64_t done, uint64_t total)
{
	if (c->o->progress)
		c->o->progress(c->o->ctx, pass, name, done, total);
}

int fsck_read(struct fsck_ctx *c, void *buf, size_t len, uint64_t off)
{
	int ret;

	if (off > lun_size(c->lun) || len > lun_size(c->lun) - off) {
		fsck_fail(c, -EINVAL, "read of %zu bytes at %llu is past the LUN",
			  len, (unsigned long long)off);
		return -EINVAL;
	}
	ret = lun_read(c->lun, buf, len, off);
	if (ret)
		fsck_fail(c, ret, "read of %zu bytes at offset %llu", len,
			  (unsigned long long)off);
	else
		fsck_overlay_apply(c, buf, len, off);
	return ret;
}

uint8_t *fsck_batch_alloc(uint64_t nblocks)
{
	uint64_t n = nblocks < FSCK_BATCH ? nblocks : FSCK_BATCH;

	return lun_buf_alloc((size_t)(n ? n : 1) * VMFS_MD_BLOCK_SIZE);
}

uint64_t fsck_max_clusters(const struct fsck_ctx *c)
{
	uint64_t most = 0;

	for (int t = 0; t < VMFS_RES_NTYPES; t++)
		if (c->g.res[t].nclusters > most)
			most = c->g.res[t].nclusters;
	return most;
}

static bool in_range(uint64_t off, uint64_t len, uint64_t lo, uint64_t n)
{
	return off >= lo && off - lo <= n && len <= n - (off - lo);
}

/* Is [off, off+len) inside one metadata area of the geometry? */
static bool md_area(const struct fsck_ctx *c, uint64_t off, uint64_t len)
{
	const struct vol_geom *g = &c->g;

	if (in_range(off, len, 0, VMFS_MD_BLOCK_SIZE) ||
	    in_range(off, len, g->backup_offset, VMFS_MD_BLOCK_SIZE) ||
	    in_range(off, len, g->hb_offset, hb_region_bytes(g->max_hosts)))
		return true;
	if (off >= g->journal_offset && len <= VMFS_MD_BLOCK_SIZE &&
	    (off - g->journal_offset) % g->journal_size_bytes == 0 &&
	    (off - g->journal_offset) / g->journal_size_bytes < g->max_hosts)
		return true;
	for (int t = 0; t < VMFS_RES_NTYPES; t++) {
		const struct vol_res_geom *r = &g->res[t];

		if (in_range(off, len, r->hdr_offset,
			     (uint64_t)r->nclusters * VMFS_MD_BLOCK_SIZE))
			return true;
		/* Inodes, pointer blocks, and directory chunks (small blocks). */
		if (t != VMFS_RES_FILE &&
		    in_range(off, len, r->obj_offset, r->count * r->obj_size))
			return true;
	}
	return false;
}

static int fsck_write(struct fsck_ctx *c, const void *buf, size_t len,
		      uint64_t off)
{
	int ret;

	ret = lun_write(c->lun, buf, len, off);
	if (ret)
		fsck_fail(c, ret, "write of %zu bytes at offset %llu", len,
			  (unsigned long long)off);
	else
		c->wrote = true;
	return ret;
}

int fsck_write_md(struct fsck_ctx *c, const void *buf, size_t len,
		  uint64_t off)
{
	if (c->abort)
		return -EIO;
	if (!c->writable || !md_area(c, off, len)) {
		fsck_fail(c, -EFAULT, "internal error: refused a write of %zu "
			  "bytes at %llu (%s)", len, (unsigned long long)off,
			  c->writable ? "outside the metadata areas" : "read-only run");
		return -EFAULT;
	}
	return fsck_write(c, buf, len, off);
}

int fsck_write_data(struct fsck_ctx *c, const void *buf, size_t len,
		    uint64_t off)
{
	const struct vol_res_geom *s = &c->g.res[VMFS_RES_SMALL];
	const struct vol_res_geom *f = &c->g.res[VMFS_RES_FILE];

	if (c->abort)
		return -EIO;
	if (!c->writable ||
	    (!in_range(off, len, s->obj_offset, s->count * s->obj_size) &&
	     !in_range(off, len, f->obj_offset, f->count * f->obj_size))) {
		fsck_fail(c, -EFAULT, "internal error: refused a data write of "
			  "%zu bytes at %llu", len, (unsigned long long)off);
		return -EFAULT;
	}
	return fsck_write(c, buf, len, off);
}

void fsck_seal(void *hdr, uint32_t magic, uint64_t self, uint32_t len)
{
	struct vmfs_blk_hdr *h = hdr;

	fmt_hdr_set_gen(h, fmt_hdr_gen(h) + 1);
	lun_md_seal(hdr, magic, self, len);
}

uint64_t fsck_obj_addr(const struct fsck_ctx *c, enum vmfs_res_type t,
		       uint64_t idx)
{
	return c->g.res[t].obj_offset + idx * c->g.res[t].obj_size;
}

int64_t fsck_obj_index(const struct fsck_ctx *c, enum vmfs_res_type t,
		       uint64_t addr)
{
	const struct vol_res_geom *r = &c->g.res[t];

	return vmfs_res_index(r->obj_offset, r->obj_size, r->count, addr);
}

uint64_t fsck_inode_addr(const struct fsck_ctx *c, uint64_t ino)
{
	return fsck_obj_addr(c, VMFS_RES_INODE, ino);
}

uint64_t fsck_cluster_addr(const struct fsck_ctx *c, enum vmfs_res_type t,
			   uint32_t cl)
{
	return c->g.res[t].hdr_offset + (uint64_t)cl * VMFS_MD_BLOCK_SIZE;
}

bool fsck_claim(struct fsck_ctx *c, enum vmfs_res_type t, uint64_t idx,
		uint64_t ino, uint64_t *prev)
{
	struct fsck_res *rs = &c->res[t];

	if (bm_test(rs->owned, idx)) {
		if (prev)
			*prev = fsck_map_get(c, c->own, fsck_own_key(t, idx), NULL);
		return false;
	}
	bm_set(rs->owned, idx);
	fsck_map_set(c, c->own, fsck_own_key(t, idx), ino);
	return true;
}

void fsck_unclaim(struct fsck_ctx *c, enum vmfs_res_type t, uint64_t idx)
{
	bm_clr(c->res[t].owned, idx);
	fsck_map_del(c, c->own, fsck_own_key(t, idx));
}

bool fsck_uninit(const struct fsck_ctx *c, enum vmfs_res_type t, uint64_t idx)
{
	return c->res[t].clflags[idx / c->g.res[t].per_cluster] & FSCK_CL_UNINIT;
}

void fsck_cluster_dirty(struct fsck_ctx *c, enum vmfs_res_type t,
			uint64_t idx)
{
	c->res[t].clflags[idx / c->g.res[t].per_cluster] |= FSCK_CL_DIRTY;
}

int fsck_obj_alloc(struct fsck_ctx *c, enum vmfs_res_type t, uint64_t ino,
		   uint64_t *idx)
{
	struct fsck_res *rs = &c->res[t];

	for (uint64_t i = 0; i < rs->count; i++) {
		uint64_t j = (rs->rotor + i) % rs->count;

		/* Never-initialised clusters are for the engine to zero. */
		if (bm_test(rs->owned, j) || bm_test(rs->disk_bm, j) ||
		    fsck_uninit(c, t, j))
			continue;
		if (t == VMFS_RES_INODE && j <= VMFS_LOSTFOUND_INO)
			continue;
		bm_set(rs->disk_bm, j);
		fsck_cluster_dirty(c, t, j);
		if (t == VMFS_RES_INODE)
			bm_set(rs->owned, j);
		else
			fsck_claim(c, t, j, ino, NULL);
		rs->rotor = j + 1;
		*idx = j;
		return 0;
	}
	return -ENOSPC;
}

void fsck_obj_release(struct fsck_ctx *c, enum vmfs_res_type t, uint64_t idx)
{
	if (idx >= c->res[t].count)
		return;
	if (t == VMFS_RES_INODE)
		bm_clr(c->res[t].owned, idx);
	else
		fsck_unclaim(c, t, idx);
	if (bm_test(c->res[t].disk_bm, idx)) {
		bm_clr(c->res[t].disk_bm, idx);
		fsck_cluster_dirty(c, t, idx);
	}
}

/* Per-object state, sized from the geometry pass 0 settled on. */
static int ctx_setup(struct fsck_ctx *c)
{
	uint64_t ninodes = c->g.res[VMFS_RES_INODE].count;

	for (int t = 0; t < VMFS_RES_NTYPES; t++) {
		struct fsck_res *rs = &c->res[t];
		size_t bytes = (size_t)((c->g.res[t].count + 7) / 8);

		rs->count = c->g.res[t].count;
		rs->disk_bm = calloc(1, bytes);
		rs->owned = calloc(1, bytes);
		rs->clflags = calloc(c->g.res[t].nclusters, 1);
		if (!rs->disk_bm || !rs->owned || !rs->clflags)
			return -ENOMEM;
	}
	c->isdir = calloc(1, (size_t)((ninodes + 7) / 8));
	c->orphan = calloc(1, (size_t)((ninodes + 7) / 8));
	c->unlinked = calloc(1, (size_t)((ninodes + 7) / 8));
	c->reached = calloc(1, (size_t)((ninodes + 7) / 8));
	c->onpath = calloc(1, (size_t)((ninodes + 7) / 8));
	if (!c->isdir || !c->orphan || !c->unlinked || !c->reached ||
	    !c->onpath)
		return -ENOMEM;
	c->own = fsck_map_open(c, "owners");
	c->imode = fsck_map_open(c, "modes");
	c->links = fsck_map_open(c, "links");
	c->parent = fsck_map_open(c, "parents");
	c->dloc = fsck_map_open(c, "dirent-loc");
	c->dparent = fsck_map_open(c, "dotdot");
	c->nent = fsck_map_open(c, "nentries");
	c->names = fsck_map_open(c, "names");
	return c->abort ? -ENOMEM : 0;
}

static void ctx_teardown(struct fsck_ctx *c)
{
	struct fsck_map **maps[] = { &c->own, &c->imode, &c->links, &c->parent,
				     &c->dloc, &c->dparent, &c->nent, &c->names };

	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		fsck_map_close(c, *maps[i]);
		*maps[i] = NULL;
	}
	fsck_maps_cleanup(c);
	for (int t = 0; t < VMFS_RES_NTYPES; t++) {
		free(c->res[t].disk_bm);
		free(c->res[t].owned);
		free(c->res[t].clflags);
	}
	free(c->isdir);
	free(c->orphan);
	free(c->unlinked);
	free(c->reached);
	free(c->onpath);
	free(c->slots);
	free(c->dups);
	fsck_overlay_free(c);
}

static const struct {
	int pass;
	const char *name;
	int (*fn)(struct fsck_ctx *c);
} fsck_passes[] = {
	{ 1, "heartbeat and locks", fsck_pass1 },
	{ 2, "journals", fsck_pass2 },
	{ 3, "inodes and block maps", fsck_pass3 },
	{ 4, "directories and connectivity", fsck_pass4 },
	{ 5, "link counts", fsck_pass5 },
	{ 6, "bitmaps", fsck_pass6 },
};

int fsck_run(struct lun *lun, const struct fsck_opts *o, struct fsck_result *r)
{
	struct fsck_opts defaults;
	struct fsck_ctx c;
	int ret;

	memset(r, 0, sizeof(*r));
	if (!o) {
		fsck_opts_init(&defaults);
		o = &defaults;
	}
	memset(&c, 0, sizeof(c));
	c.lun = lun;
	c.o = o;
	c.r = r;
	c.ss = lun_sector_size(lun);
	c.writable = o->mode != FSCK_MODE_NO;

	/* Pass 0 settles the geometry (and who is live) before anything else. */
	fsck_progress(&c, 0, "volume header", 0, 1);
	ret = fsck_pass0(&c);
	fsck_progress(&c, 0, "volume header", 1, 1);
	if (ret || c.abort)
		goto out;
	ret = ctx_setup(&c);
	if (ret) {
		fsck_fail(&c, ret, "cannot allocate the checker's bitmaps");
		goto out;
	}
	for (size_t i = 0; i < sizeof(fsck_passes) / sizeof(fsck_passes[0]); i++) {
		if (c.abort)
			break;
		fsck_progress(&c, fsck_passes[i].pass, fsck_passes[i].name, 0, 1);
		ret = fsck_passes[i].fn(&c);
		if (ret && !c.abort)
			fsck_fail(&c, ret, "pass %d (%s) failed",
				  fsck_passes[i].pass, fsck_passes[i].name);
		fsck_progress(&c, fsck_passes[i].pass, fsck_passes[i].name, 1, 1);
	}
out:
	if (c.wrote) {
		ret = lun_flush(lun);
		if (ret)
			fsck_fail(&c, ret, "flushing the repairs to the LUN");
	}
	ctx_teardown(&c);
	if (c.abort)
		r->exit_code |= FSCK_EXIT_ERROR;
	return r->exit_code;
}
