/*
 * vmfs locks LUN: every lock record on the volume that is not FREE, with
 * the object it protects (SPEC §13), its mode, its holders and its
 * generation.  Read-only: safe while hosts have the volume mounted, and
 * then a snapshot (a record may change while the scan runs).
 *
 * Only records that can be held are read (SPEC §1.3, §5): the heartbeat
 * region header, each slot's journal header, every resource-cluster
 * header, and the inodes the inode clusters' bitmaps mark in use (a free
 * inode's record is FREE or all-zero once released; the bitmaps are
 * taken from the newest of home and the journals' committed images, so
 * a file a live host created a moment ago is not missed).  Cluster headers are
 * read LOCKS_CHUNK blocks per I/O, since their bitmaps are needed anyway;
 * the scattered records (journals, inodes) are read one sector each,
 * LOCKS_CHUNK per lun_submit batch.  A 64 TiB volume with a few thousand
 * files therefore costs its ~75 MiB of cluster headers plus one sector
 * per file.
 *
 * Holders are named from the heartbeat slot they recorded (SPEC §5
 * "Validity of a holder"): when the slot still shows the same host UUID
 * and heartbeat generation, by its host name; otherwise the holder is
 * stale -- its slot moved on after its journal was replayed, and any
 * survivor may break the lock.  Inode numbers are named by walking the
 * directory tree read-only through the engine (VOL_STALE_OK: what is
 * written home; a live host's newest names may be missing), "?" where
 * that is not possible.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "vmfs/format.h"
#include "vmfs/journal.h"
#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"
#include "cli.h"

/* Blocks per read of cluster headers, records per lun_submit batch. */
#define LOCKS_CHUNK 256u

void help_locks(void)
{
	printf("usage: vmfs locks [--path P] [--host H] [--json] LUN|MOUNTPOINT\n\n"
	       "List every lock held on the volume (read from the LUN): the\n"
	       "object it protects -- heartbeat region header, a slot's journal,\n"
	       "a resource cluster (type and index) or an inode and its path --,\n"
	       "the mode (exclusive, read-only, multi-writer), the lock generation,\n"
	       "and its owner or holders: host name and UUID, heartbeat slot and\n"
	       "generation.  A holder whose slot has moved on (freed, or now\n"
	       "another host or mount) is marked stale: its journal was replayed\n"
	       "and any host may break the lock.  Only reads the LUN (a mount\n"
	       "point stands for the LUN its vmfsd serves).\n\n"
	       "Options:\n"
	       "  -p, --path P   only the lock of the file P (a path inside the\n"
	       "                 volume, e.g. /vms/a.vmdk)\n"
	       "  -H, --host H   only locks held by host H: its UUID, or the name\n"
	       "                 or heartbeat slot number of a host in a slot now\n"
	       "                 (its stale locks of earlier mounts: by UUID)\n"
	       "  -j, --json     print one JSON object\n"
	       "  -h, --help     show this help\n\n"
	       "Given a mount point, --path is found through the mount: what\n"
	       "that host sees now, also files a host that keeps its locks\n"
	       "between operations has not written home yet.  Given a LUN, it\n"
	       "is found in what is written to the LUN.\n");
}

enum locks_kind { LK_HBREGION, LK_JOURNAL, LK_CLUSTER, LK_INODE };

/* One held lock. */
struct locks_obj {
	enum locks_kind kind;
	uint32_t type;          /* LK_CLUSTER: enum vmfs_res_type */
	uint64_t index;         /* slot, cluster index or inode number */
	struct lock_state st;
	char *path;             /* LK_INODE: malloc'ed, NULL when unknown */
};

struct locks_ctx {
	const char *spec, *path_arg, *host_arg;
	const char *mnt;             /* the mount point given, or NULL */
	struct lun *lun;
	uint32_t ss;
	struct vol_geom g;
	struct hb_slot_info *slots;  /* indexed by slot; state FREE = none */
	struct locks_obj *objs;
	size_t n, cap;
	unsigned nbad;               /* records that do not verify */
	bool paths_tried, paths_ok;
	char paths_why[128];
	/* Inode cluster headers newer in a journal than at home. */
	struct locks_img *jimg;
	size_t njimg, capjimg;
};

/* A committed image of an inode cluster header, from some journal. */
struct locks_img {
	uint64_t addr;
	uint64_t gen;           /* the object's bh_gen */
	struct vmfs_rc rc;
};

static void locks_what(const struct locks_obj *o, char *buf, size_t len)
{
	switch (o->kind) {
	case LK_HBREGION:
		snprintf(buf, len, "heartbeat region header");
		break;
	case LK_JOURNAL:
		snprintf(buf, len, "journal of slot %" PRIu64, o->index);
		break;
	case LK_CLUSTER:
		snprintf(buf, len, "cluster %" PRIu64 " of %s", o->index,
			 vol_res_name(o->type));
		break;
	case LK_INODE:
		snprintf(buf, len, "inode %" PRIu64, o->index);
		break;
	}
}

/* Decode the record at rec; keep it when held, warn when it is damaged. */
static int locks_take(struct locks_ctx *c, const void *rec, uint64_t addr,
		      enum locks_kind kind, uint32_t type, uint64_t index)
{
	struct locks_obj o = { .kind = kind, .type = type, .index = index };
	char what[64];
	int rc = lock_state_from_disk(rec, addr, &o.st);

	if (rc) {
		locks_what(&o, what, sizeof(what));
		cli_err("warning: the lock record of %s at 0x%" PRIx64 " does not "
			"verify (%s); run 'vmfs fsck -n %s'", what, addr,
			vmfs_strerror(rc), c->spec);
		c->nbad++;
		return 0;
	}
	if (o.st.mode == VMFS_LOCK_FREE)
		return 0;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct locks_obj *p = realloc(c->objs, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		c->objs = p;
		c->cap = cap;
	}
	c->objs[c->n++] = o;
	return 0;
}

/* Scattered records to read: one sector each, batched. */
struct locks_want {
	uint64_t addr;
	enum locks_kind kind;
	uint64_t index;
};

/* lun_reread_torn's check: the record verifies. */
static int locks_rec_torn(const void *rec, uint64_t addr, void *arg)
{
	struct lock_state st;

	(void)arg;
	return lock_state_from_disk(rec, addr, &st);
}

static int locks_read_scattered(struct locks_ctx *c,
				const struct locks_want *w, size_t n)
{
	struct lun_io ios[LOCKS_CHUNK];
	uint8_t *buf = lun_buf_alloc((size_t)LOCKS_CHUNK * c->ss);
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; !rc && i < n; i += LOCKS_CHUNK) {
		unsigned k, m = n - i < LOCKS_CHUNK ? (unsigned)(n - i) : LOCKS_CHUNK;

		for (k = 0; k < m; k++)
			ios[k] = (struct lun_io){ .op = LUN_OP_READ,
				.buf = buf + (size_t)k * c->ss, .len = c->ss,
				.off = w[i + k].addr };
		rc = lun_submit(c->lun, ios, m);
		for (k = 0; !rc && k < m; k++) {
			/* Whatever a failed reread left, locks_take judges. */
			(void)lun_reread_torn(c->lun, ios[k].buf, c->ss,
					      w[i + k].addr, locks_rec_torn,
					      NULL);
			rc = locks_take(c, ios[k].buf, w[i + k].addr, w[i + k].kind,
					0, w[i + k].index);
		}
	}
	lun_buf_free(buf);
	return rc;
}

static bool locks_rc_ok(const struct vmfs_rc *rc, uint64_t addr)
{
	return !lun_md_verify(&rc->rc_hdr, VMFS_MAGIC_RCLUSTER, addr,
			      VMFS_MD_BLOCK_SIZE - VMFS_OBJ_OFFSET);
}

/* Keep every inode cluster header image, the newest (bh_gen) per block. */
static int locks_jnl_txn(void *arg, const struct jnl_txn *t)
{
	struct locks_ctx *c = arg;
	const struct vol_res_geom *r = &c->g.res[VMFS_RES_INODE];
	uint64_t end = r->hdr_offset + (uint64_t)r->nclusters * VMFS_MD_BLOCK_SIZE;

	for (uint32_t k = 0; k < t->nimages; k++) {
		const struct vmfs_rc *rc = (const void *)(t->img +
			(size_t)k * VMFS_MD_BLOCK_SIZE + VMFS_OBJ_OFFSET);
		uint64_t a = t->addr[k], gen;
		size_t i;

		if (a < r->hdr_offset || a >= end ||
		    !(t->flags[k] & VMFS_JNL_TAG_LOCKABLE) || !locks_rc_ok(rc, a))
			continue;
		gen = fmt_hdr_gen(&rc->rc_hdr);
		for (i = 0; i < c->njimg && c->jimg[i].addr != a; i++)
			;
		if (i == c->njimg) {
			if (c->njimg == c->capjimg) {
				size_t cap = c->capjimg ? c->capjimg * 2 : 16;
				struct locks_img *p = realloc(c->jimg, cap * sizeof(*p));

				if (!p)
					return -ENOMEM;
				c->jimg = p;
				c->capjimg = cap;
			}
			c->njimg++;
		} else if (c->jimg[i].gen >= gen) {
			continue;
		}
		c->jimg[i].addr = a;
		c->jimg[i].gen = gen;
		c->jimg[i].rc = *rc;
	}
	return 0;
}

/*
 * A mounted (or crashed) host's newest allocations may be committed in
 * its journal and not yet written home: collect the inode cluster
 * headers every journal holds, so that their inodes are scanned too.  A
 * journal that cannot be walked only loses that (its host is told by
 * 'vmfs hosts').
 */
static int locks_jnl_overlay(struct locks_ctx *c)
{
	struct jnl_bounds b = vol_jnl_bounds(&c->g);
	struct jnl_walk_result w;

	for (uint32_t s = 0; s < c->g.max_hosts; s++) {
		int rc = jnl_walk(c->lun, vol_jnl_offset(&c->g, s), &b, false,
				  locks_jnl_txn, c, &w);

		if (rc == -ENOMEM)
			return rc;
	}
	return 0;
}

/* Append the in-use inodes of one inode cluster header to *w. */
static int locks_inodes_of(struct locks_ctx *c, const uint8_t *blk,
			   uint64_t addr, uint32_t idx, struct locks_want **w,
			   size_t *n, size_t *cap)
{
	const struct vmfs_rc *rc = (const void *)(blk + VMFS_OBJ_OFFSET);
	const struct vol_res_geom *r = &c->g.res[VMFS_RES_INODE];
	struct fmt_rc h;
	uint32_t nobjs;
	uint64_t first;

	for (size_t i = 0; i < c->njimg; i++)
		if (c->jimg[i].addr == addr &&
		    (!locks_rc_ok(rc, addr) ||
		     c->jimg[i].gen > fmt_hdr_gen(&rc->rc_hdr)))
			rc = &c->jimg[i].rc;
	if (!locks_rc_ok(rc, addr)) {
		cli_err("warning: inode cluster %u does not verify: its inodes' "
			"locks are not listed; run 'vmfs fsck -n %s'", idx, c->spec);
		c->nbad++;
		return 0;
	}
	/* locks_rc_ok verified the envelope; nobjs is clamped below. */
	(void)fmt_rc_decode(rc, &h);
	if (h.flags & VMFS_RC_UNINIT)
		return 0;
	nobjs = h.nobjs;
	first = h.first_obj;
	if (nobjs > VMFS_RC_MAX_OBJS)
		nobjs = VMFS_RC_MAX_OBJS;
	for (uint32_t j = 0; j < nobjs; j++) {
		uint64_t ino = first + j;

		if (!(rc->rc_bitmap[j / 8] & (1u << (j % 8))) || !ino ||
		    ino >= r->count)
			continue;
		if (*n == *cap) {
			size_t ncap = *cap ? *cap * 2 : 1024;
			struct locks_want *p = realloc(*w, ncap * sizeof(*p));

			if (!p)
				return -ENOMEM;
			*w = p;
			*cap = ncap;
		}
		(*w)[(*n)++] = (struct locks_want){
			.addr = r->obj_offset + ino * r->obj_size,
			.kind = LK_INODE, .index = ino };
	}
	return 0;
}

/*
 * Every cluster header of every area, LOCKS_CHUNK blocks per read; the
 * inode clusters' bitmaps add the in-use inodes to *w.
 */
static int locks_scan_clusters(struct locks_ctx *c, struct locks_want **w,
			       size_t *n, size_t *cap)
{
	uint8_t *buf = lun_buf_alloc((size_t)LOCKS_CHUNK * VMFS_MD_BLOCK_SIZE);
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	rc = locks_jnl_overlay(c);
	for (uint32_t t = 0; !rc && t < VMFS_RES_NTYPES; t++) {
		const struct vol_res_geom *r = &c->g.res[t];

		for (uint32_t c0 = 0; !rc && c0 < r->nclusters; c0 += LOCKS_CHUNK) {
			uint32_t m = r->nclusters - c0 < LOCKS_CHUNK ?
				     r->nclusters - c0 : LOCKS_CHUNK;
			uint64_t off = r->hdr_offset + (uint64_t)c0 * VMFS_MD_BLOCK_SIZE;

			rc = lun_read(c->lun, buf, (size_t)m * VMFS_MD_BLOCK_SIZE, off);
			for (uint32_t k = 0; !rc && k < m; k++) {
				const uint8_t *blk = buf + (size_t)k * VMFS_MD_BLOCK_SIZE;
				uint64_t a = off + (uint64_t)k * VMFS_MD_BLOCK_SIZE;

				rc = locks_take(c, blk, a, LK_CLUSTER, t, c0 + k);
				if (!rc && t == VMFS_RES_INODE)
					rc = locks_inodes_of(c, blk, a, c0 + k, w, n, cap);
			}
		}
	}
	lun_buf_free(buf);
	return rc;
}

static int locks_addr_cmp(const void *a, const void *b)
{
	const struct locks_obj *x = a, *y = b;

	return x->st.addr < y->st.addr ? -1 : x->st.addr > y->st.addr;
}

/* Every held lock, in address order (the volume's layout order). */
static int locks_scan(struct locks_ctx *c)
{
	size_t n = 0, cap = c->g.max_hosts + 1;
	struct locks_want *w = calloc(cap, sizeof(*w));
	int rc;

	if (!w)
		return -ENOMEM;
	w[n++] = (struct locks_want){ .addr = c->g.hb_offset, .kind = LK_HBREGION };
	for (uint32_t s = 0; s < c->g.max_hosts; s++)
		w[n++] = (struct locks_want){ .addr = vol_jnl_offset(&c->g, s),
					      .kind = LK_JOURNAL, .index = s };
	rc = locks_scan_clusters(c, &w, &n, &cap);
	if (!rc)
		rc = locks_read_scattered(c, w, n);
	free(w);
	if (c->n)
		qsort(c->objs, c->n, sizeof(*c->objs), locks_addr_cmp);
	return rc;
}

/* ---- names: paths of inodes, hosts of holders ------------------------------ */

struct locks_walk {
	struct locks_ctx *c;
	struct vol *v;
	const char *dir;        /* path of the directory being listed */
	uint64_t *stack_ino;    /* directories still to list */
	char **stack_path;
	size_t sn, scap;
	size_t missing;         /* inode locks with no path yet */
	int err;
};

static int locks_walk_entry(void *arg, const char *name,
			    const struct vol_attr *a, uint64_t next_cookie)
{
	struct locks_walk *wk = arg;
	char *p;

	(void)next_cookie;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	if (asprintf(&p, "%s/%s", strcmp(wk->dir, "/") ? wk->dir : "", name) < 0)
		goto nomem;
	for (size_t i = 0; i < wk->c->n; i++) {
		struct locks_obj *o = &wk->c->objs[i];

		if (o->kind == LK_INODE && o->index == a->ino && !o->path &&
		    (o->path = strdup(p)))
			wk->missing--;
	}
	if (!S_ISDIR(a->mode)) {
		free(p);
		return 0;
	}
	if (wk->sn == wk->scap) {
		size_t cap = wk->scap ? wk->scap * 2 : 64;
		uint64_t *si = realloc(wk->stack_ino, cap * sizeof(*si));
		char **sp;

		if (si)
			wk->stack_ino = si;
		sp = si ? realloc(wk->stack_path, cap * sizeof(*sp)) : NULL;
		if (!sp) {
			free(p);
			goto nomem;
		}
		wk->stack_path = sp;
		wk->scap = cap;
	}
	wk->stack_ino[wk->sn] = a->ino;
	wk->stack_path[wk->sn++] = p;
	return 0;
nomem:
	wk->err = -ENOMEM;
	return 1;
}

/* Depth-first over the tree until every locked inode has a name. */
static int locks_walk_tree(struct locks_ctx *c, struct vol *v)
{
	struct locks_walk wk = { .c = c, .v = v };
	int rc = 0;

	for (size_t i = 0; i < c->n; i++)
		if (c->objs[i].kind == LK_INODE) {
			wk.missing++;
			if (c->objs[i].index == c->g.root_ino &&
			    (c->objs[i].path = strdup("/")))
				wk.missing--;
		}
	wk.stack_ino = malloc(sizeof(*wk.stack_ino));
	wk.stack_path = malloc(sizeof(*wk.stack_path));
	if (!wk.stack_ino || !wk.stack_path || !(wk.stack_path[0] = strdup("/")))
		rc = -ENOMEM;
	else {
		wk.stack_ino[0] = c->g.root_ino;
		wk.sn = wk.scap = 1;
	}
	while (!rc && wk.sn && wk.missing) {
		char *dir = wk.stack_path[--wk.sn];

		wk.dir = dir;
		rc = vol_readdir(v, wk.stack_ino[wk.sn], 0, false,
				 locks_walk_entry, &wk);
		if (!rc)
			rc = wk.err;
		free(dir);
	}
	while (wk.sn)
		free(wk.stack_path[--wk.sn]);
	free(wk.stack_ino);
	free(wk.stack_path);
	return rc;
}

/* Inode number of the volume path p (leading '/' optional). */
static int locks_lookup(struct vol *v, uint64_t root, const char *p,
			uint64_t *ino)
{
	char *copy = strdup(p), *save = NULL, *part;
	struct vol_attr a;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	*ino = root;
	for (part = strtok_r(copy, "/", &save); part && !rc;
	     part = strtok_r(NULL, "/", &save)) {
		rc = vol_lookup(v, *ino, part, &a);
		if (!rc) {
			*ino = a.ino;
			vol_forget(v, a.ino, 1);
		}
	}
	free(copy);
	return rc;
}

static int locks_vol_open(struct locks_ctx *c, struct vol **v)
{
	struct vol_open_opts o = { .flags = VOL_RDONLY | VOL_STALE_OK };
	int rc;

	c->paths_tried = true;
	cli_log_quiet(true);
	rc = vol_open_ex(c->lun, &o, v);
	cli_log_quiet(false);
	if (rc)
		snprintf(c->paths_why, sizeof(c->paths_why), "%s",
			 vmfs_strerror(rc));
	return rc;
}

/*
 * The inode --path names.  Given a mount point, through the mount (the
 * file's st_ino): what that host sees now, also what a host keeping its
 * locks has not written home yet; given a LUN, from what is written to
 * the LUN.  0, -ENOENT (also: not on this volume), -errno, or 1 when
 * the tree could not be read (said why).
 */
static int locks_path_ino(struct locks_ctx *c, uint64_t *ino)
{
	struct vol *v;
	int rc;

	if (c->mnt) {
		struct stat st, mst;
		char *p;

		if (asprintf(&p, "%s/%s", c->mnt, c->path_arg) < 0)
			return -ENOMEM;
		rc = lstat(p, &st) || stat(c->mnt, &mst) ? -errno : 0;
		free(p);
		/* A path that leads out of the volume ("/../x") is not on it. */
		if (!rc && (st.st_dev != mst.st_dev ||
			    st.st_ino >= c->g.res[VMFS_RES_INODE].count))
			rc = -ENOENT;
		if (!rc)
			*ino = st.st_ino;
		return rc;
	}
	rc = locks_vol_open(c, &v);
	if (rc) {
		cli_err("cannot read the directory tree of %s to find %s: %s; "
			"run 'vmfs fsck -n %s'", c->spec, c->path_arg,
			vmfs_strerror(rc), c->spec);
		return 1;
	}
	rc = locks_lookup(v, c->g.root_ino, c->path_arg, ino);
	vol_close(v);
	return rc;
}

/* --path: the one inode whose lock to read; its path is the argument. */
static int locks_scan_path(struct locks_ctx *c)
{
	struct locks_want w = { .kind = LK_INODE };
	const struct vol_res_geom *r = &c->g.res[VMFS_RES_INODE];
	int rc = locks_path_ino(c, &w.index);

	if (rc > 0)
		return CLI_EXIT_FAIL;
	if (rc == -ENOENT || rc == -ENOTDIR) {
		if (c->mnt)
			cli_err("no file %s on the volume mounted at %s; give "
				"the path inside the volume, e.g. /dir/file",
				c->path_arg, c->mnt);
		else
			cli_err("no file %s on the volume in %s (as far as "
				"written to the LUN); give the path inside the "
				"volume, e.g. /dir/file", c->path_arg, c->spec);
		return CLI_EXIT_FAIL;
	}
	if (rc) {
		cli_err("cannot look up %s on %s: %s", c->path_arg,
			c->mnt ? c->mnt : c->spec, vmfs_strerror(rc));
		return CLI_EXIT_FAIL;
	}
	w.addr = r->obj_offset + w.index * r->obj_size;
	rc = locks_read_scattered(c, &w, 1);
	if (!rc && c->n)
		c->objs[0].path = strdup(c->path_arg);
	c->paths_ok = true;
	if (rc) {
		cli_err("cannot read the lock of %s on %s: %s", c->path_arg,
			c->spec, vmfs_strerror(rc));
		return CLI_EXIT_FAIL;
	}
	return -1;
}

/* Name the inodes of the listed locks; "?" where the tree is unreadable. */
static void locks_name_inodes(struct locks_ctx *c)
{
	struct vol *v;
	bool any = false;

	for (size_t i = 0; i < c->n; i++)
		any |= c->objs[i].kind == LK_INODE;
	if (!any || locks_vol_open(c, &v))
		return;
	if (locks_walk_tree(c, v))
		snprintf(c->paths_why, sizeof(c->paths_why),
			 "the directory tree could not be read");
	else
		c->paths_ok = true;
	vol_close(v);
}

static int locks_slots_read(struct locks_ctx *c)
{
	struct hb_slot_info *si = calloc(c->g.max_hosts, sizeof(*si));
	uint32_t n;
	int rc;

	c->slots = calloc(c->g.max_hosts, sizeof(*c->slots));
	if (!si || !c->slots) {
		free(si);
		return -ENOMEM;
	}
	rc = hb_survey(c->lun, c->g.hb_offset, false, si, c->g.max_hosts, &n);
	for (uint32_t k = 0; !rc && k < n; k++)
		c->slots[si[k].slot] = si[k];
	free(si);
	return rc;
}

/*
 * The slot a holder names, when it still shows that host and mount; NULL
 * with why filled when the holder is stale.
 */
static const struct hb_slot_info *locks_holder_slot(const struct locks_ctx *c,
						    const struct lock_holder *h,
						    char *why, size_t len)
{
	const struct hb_slot_info *s;
	char uuid[37];

	if (h->slot >= c->g.max_hosts) {
		snprintf(why, len, "slot %u does not exist", h->slot);
		return NULL;
	}
	if (!c->slots) {
		snprintf(why, len, "the heartbeat slots could not be read");
		return NULL;
	}
	s = &c->slots[h->slot];
	if (s->state == VMFS_HB_FREE) {
		snprintf(why, len, "slot %u is free", h->slot);
		return NULL;
	}
	if (memcmp(s->host_uuid, h->uuid, VMFS_UUID_SIZE)) {
		vol_uuid_format(s->host_uuid, uuid);
		snprintf(why, len, "slot %u now holds host %s (%s)", h->slot,
			 s->hostname[0] ? s->hostname : "?", uuid);
		return NULL;
	}
	if (s->hb_gen != h->hb_gen) {
		snprintf(why, len, "slot %u is at heartbeat generation %" PRIu64,
			 h->slot, s->hb_gen);
		return NULL;
	}
	return s;
}

/* Does holder h match --host (slot number, UUID or host name)? */
static bool locks_host_match(const struct locks_ctx *c,
			     const struct lock_holder *h)
{
	const char *a = c->host_arg;
	const struct hb_slot_info *s;
	char uuid[37], why[128];
	size_t i;

	vol_uuid_format(h->uuid, uuid);
	if (!strcasecmp(a, uuid))
		return true;
	/* A name or a slot means the host there now: not stale holders. */
	s = locks_holder_slot(c, h, why, sizeof(why));
	if (!s)
		return false;
	for (i = 0; a[i] && isdigit((unsigned char)a[i]); i++)
		;
	if (i && !a[i])
		return strtoull(a, NULL, 10) == h->slot;
	return !strcmp(s->hostname, a);
}

static bool locks_obj_match(const struct locks_ctx *c, const struct locks_obj *o)
{
	if (!c->host_arg)
		return true;
	for (uint32_t h = 0; h < o->st.nholders; h++)
		if (locks_host_match(c, &o->st.holders[h]))
			return true;
	return false;
}

static const char *locks_mode_str(enum vmfs_lock_mode m)
{
	switch (m) {
	case VMFS_LOCK_EXCLUSIVE:
		return "exclusive";
	case VMFS_LOCK_READONLY:
		return "read-only";
	case VMFS_LOCK_MULTIWRITER:
		return "multi-writer";
	default:
		return "free";
	}
}

static const char *locks_kind_key(enum locks_kind k)
{
	static const char *const keys[] = { "heartbeat_region", "journal",
					    "cluster", "inode" };

	return keys[k];
}

/* The path of an inode lock for display: its path, or "?". */
static const char *locks_path_str(const struct locks_ctx *c,
				  const struct locks_obj *o)
{
	if (o->path)
		return o->path;
	return c->paths_ok ? "(no name: unlinked, or not yet written home)" : "?";
}

static void locks_print_text(const struct locks_ctx *c, size_t shown)
{
	char uuid[37], what[64], why[128];

	vol_uuid_format(c->g.uuid, uuid);
	if (!shown) {
		printf("no lock %sis held on volume %s on %s\n",
		       c->host_arg || c->path_arg ? "matching the filter " : "",
		       uuid, c->spec);
		return;
	}
	printf("volume %s on %s: %zu lock%s held\n", uuid, c->spec, shown,
	       shown == 1 ? "" : "s");
	for (size_t i = 0; i < c->n; i++) {
		const struct locks_obj *o = &c->objs[i];

		if (!locks_obj_match(c, o))
			continue;
		locks_what(o, what, sizeof(what));
		printf("%s", what);
		if (o->kind == LK_INODE)
			printf(" %s", locks_path_str(c, o));
		printf(": %s, lock generation %" PRIu64 ", at 0x%" PRIx64 "\n",
		       locks_mode_str(o->st.mode), o->st.gen, o->st.addr);
		for (uint32_t h = 0; h < o->st.nholders; h++) {
			const struct lock_holder *lh = &o->st.holders[h];
			const struct hb_slot_info *s =
				locks_holder_slot(c, lh, why, sizeof(why));

			vol_uuid_format(lh->uuid, uuid);
			printf("    %s %s, uuid %s, slot %u, heartbeat generation %"
			       PRIu64, o->st.mode == VMFS_LOCK_EXCLUSIVE ?
			       "owner" : "holder", s && s->hostname[0] ?
			       s->hostname : "?", uuid, lh->slot, lh->hb_gen);
			if (!s)
				printf(": stale (%s); a survivor may break it", why);
			printf("\n");
		}
	}
	if (c->paths_tried && !c->paths_ok)
		cli_err("note: inode paths shown as '?': %s", c->paths_why);
}

static void locks_print_json(const struct locks_ctx *c)
{
	char uuid[37], what[64], why[128];
	size_t k = 0;

	vol_uuid_format(c->g.uuid, uuid);
	printf("{\n  \"lun\": ");
	cli_json_str(c->spec);
	printf(",\n  \"volume_uuid\": \"%s\",\n  \"bad_records\": %u,\n"
	       "  \"locks\": [", uuid, c->nbad);
	for (size_t i = 0; i < c->n; i++) {
		const struct locks_obj *o = &c->objs[i];

		if (!locks_obj_match(c, o))
			continue;
		locks_what(o, what, sizeof(what));
		printf("%s\n    { \"addr\": %" PRIu64 ", \"kind\": \"%s\", \"what\": ",
		       k++ ? "," : "", o->st.addr, locks_kind_key(o->kind));
		cli_json_str(what);
		if (o->kind == LK_JOURNAL)
			printf(", \"slot\": %" PRIu64, o->index);
		if (o->kind == LK_CLUSTER)
			printf(", \"res_type\": \"%s\", \"index\": %" PRIu64,
			       vol_res_name(o->type), o->index);
		if (o->kind == LK_INODE) {
			printf(", \"ino\": %" PRIu64 ", \"path\": ", o->index);
			if (o->path)
				cli_json_str(o->path);
			else
				printf("null");
		}
		printf(", \"mode\": \"%s\", \"gen\": %" PRIu64 ",\n      \"holders\": [",
		       locks_mode_str(o->st.mode), o->st.gen);
		for (uint32_t h = 0; h < o->st.nholders; h++) {
			const struct lock_holder *lh = &o->st.holders[h];
			const struct hb_slot_info *s =
				locks_holder_slot(c, lh, why, sizeof(why));

			vol_uuid_format(lh->uuid, uuid);
			printf("%s{ \"slot\": %u, \"host_uuid\": \"%s\", \"hb_gen\": %" PRIu64
			       ", \"hostname\": ", h ? ", " : "", lh->slot, uuid,
			       lh->hb_gen);
			if (s)
				cli_json_str(s->hostname);
			else
				printf("null");
			printf(", \"stale\": %s", s ? "false" : "true");
			if (!s) {
				printf(", \"stale_reason\": ");
				cli_json_str(why);
			}
			printf(" }");
		}
		printf("] }");
	}
	printf("%s]\n}\n", k ? "\n  " : "");
}

static void locks_ctx_free(struct locks_ctx *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->objs[i].path);
	free(c->objs);
	free(c->slots);
	free(c->jimg);
	lun_close(c->lun);
}

static int locks_parse(int argc, char **argv, struct locks_ctx *c, bool *json)
{
	static const struct option longopts[] = {
		{ "path", required_argument, NULL, 'p' },
		{ "host", required_argument, NULL, 'H' },
		{ "json", no_argument,       NULL, 'j' },
		{ "help", no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	while ((ch = getopt_long(argc, argv, ":p:H:jh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			if (!*optarg)
				return cli_usage_err("--path needs a path inside the "
						     "volume, e.g. /dir/file");
			c->path_arg = optarg;
			break;
		case 'H':
			if (!*optarg)
				return cli_usage_err("--host needs a host name, UUID "
						     "or heartbeat slot number");
			c->host_arg = optarg;
			break;
		case 'j':
			*json = true;
			break;
		case 'h':
			help_locks();
			return CLI_EXIT_OK;
		default:
			return cli_getopt_err(ch, argv);
		}
	}
	if (cli_one_operand(argc, argv, "LUN", &c->spec))
		return CLI_EXIT_USAGE;
	return -1;
}

int cmd_locks(int argc, char **argv)
{
	struct locks_ctx c = { 0 };
	struct vmfsd_info di;
	size_t shown = 0;
	bool json = false;
	int rc;

	rc = locks_parse(argc, argv, &c, &json);
	if (rc >= 0)
		return rc;
	{
		struct stat st;

		if (!stat(c.spec, &st) && S_ISDIR(st.st_mode))
			c.mnt = c.spec;
	}
	if (cli_lun_open_ro(&c.spec, &di, &c.lun))
		return CLI_EXIT_FAIL;
	c.ss = lun_sector_size(c.lun);
	rc = CLI_EXIT_FAIL;
	if (cli_volume_read(c.lun, c.spec, &c.g, NULL))
		goto out;
	if (locks_slots_read(&c))
		cli_err("warning: cannot read the heartbeat slots of %s: every "
			"holder shows as stale; run 'vmfs fsck -n %s'", c.spec,
			c.spec);
	if (c.path_arg) {
		rc = locks_scan_path(&c);
		if (rc >= 0)
			goto out;
	} else {
		int err = locks_scan(&c);

		if (err) {
			cli_err("cannot read the lock records of %s: %s", c.spec,
				vmfs_strerror(err));
			goto out;
		}
		locks_name_inodes(&c);
	}
	for (size_t i = 0; i < c.n; i++)
		shown += locks_obj_match(&c, &c.objs[i]);
	if (json)
		locks_print_json(&c);
	else
		locks_print_text(&c, shown);
	rc = c.nbad ? CLI_EXIT_FAIL : CLI_EXIT_OK;
out:
	locks_ctx_free(&c);
	return rc;
}

int cli_lock_of_ino(const char *lun_path, uint64_t ino,
		    struct cli_path_lock *out)
{
	struct locks_ctx c = { .spec = lun_path };
	struct locks_want w = { .kind = LK_INODE, .index = ino };
	struct vmfsd_info di;
	int rc;

	memset(out, 0, sizeof(*out));
	if (cli_lun_open_ro(&c.spec, &di, &c.lun))
		return -EIO;
	c.ss = lun_sector_size(c.lun);
	rc = -EIO;
	if (cli_volume_read(c.lun, c.spec, &c.g, NULL))
		goto out;
	if (ino >= c.g.res[VMFS_RES_INODE].count) {
		cli_err("inode %" PRIu64 " is beyond the volume's inodes", ino);
		goto out;
	}
	locks_slots_read(&c);
	w.addr = c.g.res[VMFS_RES_INODE].obj_offset +
		ino * c.g.res[VMFS_RES_INODE].obj_size;
	rc = locks_read_scattered(&c, &w, 1);
	if (rc) {
		cli_err("cannot read the lock of inode %" PRIu64 " on %s: %s", ino,
			c.spec, vmfs_strerror(rc));
		goto out;
	}
	if (!c.n)
		goto out;
	out->mode = c.objs[0].st.mode;
	for (uint32_t h = 0; h < c.objs[0].st.nholders; h++) {
		const struct lock_holder *lh = &c.objs[0].st.holders[h];
		const struct hb_slot_info *s;
		char why[128];

		vol_uuid_format(lh->uuid, out->host_uuid);
		s = locks_holder_slot(&c, lh, why, sizeof(why));
		if (s) {
			snprintf(out->host, sizeof(out->host), "%s",
				 s->hostname[0] ? s->hostname : out->host_uuid);
			out->stale = false;
			break;
		}
		out->stale = true;
	}
out:
	locks_ctx_free(&c);
	return rc;
}
