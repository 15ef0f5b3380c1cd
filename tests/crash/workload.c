/*
 * The recorded workload: a seeded sequence of metadata-heavy operations
 * on a fresh volume through the vol_* API, single-threaded, with the
 * model kept in step.  Each op copies the fault wrapper's records into
 * the log when it ends, so its end index (and each fsync's return index)
 * is known: at or after the true one, the safe side for promises.
 * When an op ends, every file it created or changed gets the promise of
 * the commit interval (cs_interval_add): due at the op's end on the
 * recorder's clock plus the interval plus the allowance for the
 * commit's own I/O.  Every pause_every ops the workload idles for
 * twice that, and again three ops later, so that crashes fall in
 * quiet stretches where only the interval (no fsync, no full ring) can
 * have committed the work; the three ops between the two pauses are no
 * fsyncs and begin on a journal that had gone completely idle.
 *
 * Sizes are chosen so files cross every map type of the geometry
 * crashsim makes (64 KiB file blocks, 4 KiB small blocks): inline up to
 * 2 KiB, small blocks up to 64 KiB, file blocks beyond, and a few sparse
 * files with data past 16 MiB that need pointer blocks.  Every offset
 * and length is a multiple of 512, so each sector comes whole from one
 * write (pattern.c).  Live data stays under a budget so the volume never
 * fills and each crash state reads back quickly.
 *
 * Two hosts (README §5): host A runs this workload in /a and the shared
 * /s, host B a smaller mix of file ops in /b and /s, one op of B after
 * about every other op of A, each through its own volume; each picks
 * only its own files (and its own or shared directories), so neither
 * changes what the other's model says.  B's ops promise their files
 * from their end on (cs_live_add) instead of after a commit interval.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "vmfs/clock.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"
#include "crashsim.h"

#define WL_BUF_MAX (2u << 20)
#define WL_DATA_BUDGET (6ull << 20)
#define WL_SPARSE_OFF (16ull << 20)
#define WL_MAX_SPARSE 3
#define WL_MAX_DEPTH 5
#define WL_MIN_FREE_SMALL 96
#define WL_MIN_FREE_FILE 64

struct wl {
	struct lun *const *fluns; /* per host: the log merges them */
	unsigned nhosts;
	uint8_t host;          /* CS_HOST_*: whose ops these are */
	uint32_t root;         /* its top directory (node 0 with one host) */
	bool simple;           /* host B's smaller op mix */
	struct vol *v;
	struct cs_log *log;
	struct cs_model *m;
	struct cs_rng r;
	uint8_t *buf;
	bool verbose;
	char *err;
	size_t errlen;
	unsigned nsparse;
	unsigned names;
	uint32_t last_file;    /* most recently changed file (fsync bias) */
	uint32_t start;        /* start index of the running op */
	size_t nodes_before;   /* nodes that existed when the op started */
	unsigned unsynced;     /* ops to come that must not be fsyncs */
	int64_t due_after_ns;  /* commit interval + allowance */
};

/* ---- bookkeeping ---------------------------------------------------------- */

static int wl_fail(struct wl *w, int ret, const char *what)
{
	const struct cs_op *op = w->m->nops ? &w->m->ops[w->m->nops - 1] : NULL;

	cs_msg(w->err, w->errlen, "workload op #%zu (%s): %s: %s",
	       w->m->nops, op ? op->text : "-", what, vmfs_strerror(ret));
	return ret ? ret : -EIO;
}

static int op_begin(struct wl *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * The start index is where the last op ended: records the commit thread
 * made in between count as this op's, which only makes the op start
 * earlier (it then breaks promises sooner: the safe side).
 */
static int op_begin(struct wl *w, const char *fmt, ...)
{
	char text[sizeof(((struct cs_op *)0)->text)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	w->start = (uint32_t)w->log->n;
	w->nodes_before = w->m->nnodes;
	if (w->nhosts > 1)
		return cs_op_begin(w->m, w->start, "%c %s", 'A' + w->host, text);
	return cs_op_begin(w->m, w->start, "%s", text);
}

/*
 * Files the op made or changed: their commit-interval promises, or for
 * host B (which writes everything home before an op returns) the
 * promise that a crash after the op's end finds them so.
 */
static int interval_promises(struct wl *w, uint32_t end)
{
	int64_t due = vmfs_mono_ns() + w->due_after_ns;

	for (size_t i = 2; i < w->m->nnodes; i++) {
		struct cs_node *n = &w->m->nodes[i];
		bool changed = i >= w->nodes_before ||
			       (n->ntouch && n->touches[n->ntouch - 1].start == w->start);
		int ret;

		if (n->dir || !changed || n->host != w->host)
			continue;
		ret = w->host == CS_HOST_B ? cs_live_add(w->m, n, end)
					   : cs_interval_add(w->m, n, end, due);
		if (ret)
			return ret;
	}
	return 0;
}

static int op_end(struct wl *w)
{
	struct cs_op *op = &w->m->ops[w->m->nops - 1];
	int ret = cs_log_drain(w->log, w->fluns, w->nhosts);

	if (!ret)
		ret = interval_promises(w, (uint32_t)w->log->n);
	if (ret)
		return wl_fail(w, ret, "recording");
	op->end = (uint32_t)w->log->n;
	if (w->verbose)
		fprintf(stderr, "crashsim: op %4zu  log [%6u, %6u)  %s\n",
			w->m->nops - 1, op->start, op->end, op->text);
	return 0;
}

static struct cs_node *node(struct wl *w, uint32_t id)
{
	return &w->m->nodes[id];
}

static void path_of(struct wl *w, uint32_t id, char out[512])
{
	cs_node_path(w->m, id, out, 512);
}

static bool under(const struct cs_model *m, uint32_t id, uint32_t anc)
{
	while (id != 0) {
		if (id == anc)
			return true;
		id = m->nodes[id].parent;
	}
	return anc == 0;
}

static unsigned depth(const struct cs_model *m, uint32_t id)
{
	unsigned d = 0;

	while (id != 0) {
		d++;
		id = m->nodes[id].parent;
	}
	return d;
}

static unsigned height(const struct cs_model *m, uint32_t id)
{
	unsigned h = 0;

	for (size_t i = 2; i < m->nnodes; i++)
		if (m->nodes[i].live && m->nodes[i].parent == id && i != id) {
			unsigned c = m->nodes[i].dir ? height(m, (uint32_t)i) : 0;

			if (c + 1 > h)
				h = c + 1;
		}
	return h;
}

static bool has_children(const struct cs_model *m, uint32_t id)
{
	for (size_t i = 2; i < m->nnodes; i++)
		if (m->nodes[i].live && m->nodes[i].parent == id && i != id)
			return true;
	return false;
}

/* The host's own nodes, and the directories both create files in. */
static bool usable(const struct wl *w, const struct cs_node *n)
{
	return n->host == w->host || (n->dir && n->shared);
}

/* A random live node of the kind the host may use; dirs include the
 * root, never lost+found.  NULL when there is none.  Filter pred may be
 * NULL. */
static struct cs_node *pick(struct wl *w, bool dir,
			    bool (*pred)(struct wl *, const struct cs_node *))
{
	size_t count = 0, k;

	for (size_t i = 0; i < w->m->nnodes; i++) {
		const struct cs_node *n = &w->m->nodes[i];

		if (i != 1 && n->live && n->dir == dir && usable(w, n) &&
		    (!pred || pred(w, n)))
			count++;
	}
	if (!count)
		return NULL;
	k = cs_below(&w->r, count);
	for (size_t i = 0; i < w->m->nnodes; i++) {
		struct cs_node *n = &w->m->nodes[i];

		if (i != 1 && n->live && n->dir == dir && usable(w, n) &&
		    (!pred || pred(w, n)) && k-- == 0)
			return n;
	}
	return NULL;
}

static bool is_sparse(const struct cs_node *n)
{
	return n->size > WL_SPARSE_OFF;
}

static bool has_xattr(struct wl *w, const struct cs_node *n)
{
	(void)w;
	for (int s = 0; s < CS_NXATTR; s++)
		if (n->xattr[s])
			return true;
	return false;
}

static bool nonempty(struct wl *w, const struct cs_node *n)
{
	(void)w;
	return n->size > 0;
}

/* Bytes of data the live files hold (holes and zeros do not count). */
static uint64_t data_bytes(struct wl *w)
{
	uint64_t sum = 0;

	for (size_t i = 2; i < w->m->nnodes; i++) {
		const struct cs_node *n = &w->m->nodes[i];
		uint64_t ns = (n->size + CS_SECTOR - 1) / CS_SECTOR;

		if (!n->live || n->dir)
			continue;
		for (uint64_t s = 0; s < ns; s++)
			sum += n->sect[s] ? CS_SECTOR : 0;
	}
	return sum;
}

/* Space is short: the next ops should give some back. */
static bool tight(struct wl *w)
{
	struct vol_usage u;

	vol_usage_get(w->v, &u);
	return data_bytes(w) > WL_DATA_BUDGET ||
	       u.total[VMFS_RES_SMALL] - u.used[VMFS_RES_SMALL] < WL_MIN_FREE_SMALL ||
	       u.total[VMFS_RES_FILE] - u.used[VMFS_RES_FILE] < WL_MIN_FREE_FILE;
}

static uint64_t rsect(struct wl *w, uint64_t lo, uint64_t hi)
{
	return cs_range(&w->r, lo, hi) * CS_SECTOR;
}

/* ---- namespace ops --------------------------------------------------------- */

static int do_create(struct wl *w, bool dir)
{
	struct cs_node *p = pick(w, true, NULL), *n;
	char name[CS_NAME_LEN], path[512];
	struct vol_attr a;
	uint32_t id = (uint32_t)w->m->nnodes;
	int ret;

	if (dir && depth(w->m, p->id) >= WL_MAX_DEPTH)
		p = node(w, w->root);
	snprintf(name, sizeof(name), "%c%u", dir ? 'd' : 'f', id);
	path_of(w, p->id, path);
	ret = op_begin(w, "%s %s/%s", dir ? "mkdir" : "create",
		       p->id ? path : "", name);
	if (ret)
		return ret;
	ret = dir ? vol_mkdir(w->v, p->ino, name, 0755, 0, 0, &a)
		  : vol_create(w->v, p->ino, name, S_IFREG | 0644, 0, 0, 0, &a);
	if (ret)
		return wl_fail(w, ret, dir ? "vol_mkdir" : "vol_create");
	vol_forget(w->v, a.ino, 1);
	n = cs_node_new(w->m, dir, p->id, name, a.ino);
	if (!n)
		return -ENOMEM;
	n->host = w->host;
	path_of(w, n->id, path);
	ret = cs_path_note(w->m, path, n->id);
	if (!ret && !dir)
		w->last_file = n->id;
	return ret ? ret : op_end(w);
}

/* A name for a rename: "r7", or "rb7" for host B (each counts its own,
 * and neither may rename over the other's files). */
static void fresh_name(struct wl *w, char name[CS_NAME_LEN])
{
	snprintf(name, CS_NAME_LEN, "r%s%u", w->host == CS_HOST_B ? "b" : "",
		 ++w->names);
}

/* Note the paths of id and everything below it. */
static int note_subtree(struct wl *w, uint32_t id)
{
	char path[512];
	int ret = 0;

	for (size_t i = 2; i < w->m->nnodes && !ret; i++) {
		if (!w->m->nodes[i].live || !under(w->m, (uint32_t)i, id))
			continue;
		path_of(w, (uint32_t)i, path);
		ret = cs_path_note(w->m, path, (uint32_t)i);
	}
	return ret;
}

static struct cs_node *file_in(struct wl *w, uint32_t dir, uint32_t not)
{
	size_t count = 0, k;

	for (size_t i = 2; i < w->m->nnodes; i++) {
		const struct cs_node *n = &w->m->nodes[i];

		if (n->live && !n->dir && n->parent == dir && i != not &&
		    n->host == w->host)
			count++;
	}
	if (!count)
		return NULL;
	k = cs_below(&w->r, count);
	for (size_t i = 2; i < w->m->nnodes; i++) {
		struct cs_node *n = &w->m->nodes[i];

		if (n->live && !n->dir && n->parent == dir && i != not &&
		    n->host == w->host && k-- == 0)
			return n;
	}
	return NULL;
}

/*
 * Rename a file: to a fresh name, over an existing file (which goes), or
 * exchanging places with another file.
 */
static int do_rename_file(struct wl *w)
{
	struct cs_node *s = pick(w, false, NULL), *d = pick(w, true, NULL);
	struct cs_node *victim = NULL;
	char from[512], to[512], name[CS_NAME_LEN];
	unsigned kind = (unsigned)cs_below(&w->r, 10), flags = 0;
	int ret;

	if (kind < 5 || !(victim = file_in(w, d->id, s->id))) {
		fresh_name(w, name);
		victim = NULL;
	} else {
		snprintf(name, sizeof(name), "%s", victim->name);
		if (kind >= 8)
			flags = VOL_RENAME_EXCHANGE;
	}
	path_of(w, s->id, from);
	path_of(w, d->id, to);
	ret = op_begin(w, "rename%s %s -> %s/%s",
		       flags ? " (exchange)" : victim ? " (replace)" : "", from,
		       d->id ? to : "", name);
	if (ret)
		return ret;
	ret = cs_touch_add(s, w->start, CS_TOUCH_DATA);
	if (!ret && victim)
		ret = cs_touch_add(victim, w->start,
				   CS_TOUCH_DATA | CS_TOUCH_XATTR);
	if (ret)
		return ret;
	ret = vol_rename(w->v, node(w, s->parent)->ino, s->name, d->ino, name,
			 flags);
	if (ret)
		return wl_fail(w, ret, "vol_rename");
	if (flags) {
		uint32_t sp = s->parent;
		char sn[CS_NAME_LEN];

		memcpy(sn, s->name, sizeof(sn));
		s->parent = victim->parent;
		memcpy(s->name, victim->name, sizeof(sn));
		victim->parent = sp;
		memcpy(victim->name, sn, sizeof(sn));
		ret = note_subtree(w, victim->id);
	} else {
		if (victim)
			victim->live = false;
		s->parent = d->id;
		snprintf(s->name, sizeof(s->name), "%s", name);
	}
	if (!ret)
		ret = note_subtree(w, s->id);
	w->last_file = s->id;
	return ret ? ret : op_end(w);
}

static bool movable_dir(struct wl *w, const struct cs_node *n)
{
	(void)w;
	return n->id > 1 && !n->pinned;
}

static int do_rename_dir(struct wl *w)
{
	struct cs_node *s = pick(w, true, movable_dir), *d;
	char from[512], to[512], name[CS_NAME_LEN];
	int ret;

	if (!s)
		return 1;
	d = pick(w, true, NULL);
	if (under(w->m, d->id, s->id) ||
	    depth(w->m, d->id) + 1 + height(w->m, s->id) > WL_MAX_DEPTH + 1)
		d = node(w, w->root);
	if (under(w->m, d->id, s->id))
		return 1;
	fresh_name(w, name);
	path_of(w, s->id, from);
	path_of(w, d->id, to);
	ret = op_begin(w, "rename dir %s -> %s/%s", from, d->id ? to : "", name);
	if (ret)
		return ret;
	ret = cs_touch_tree(w->m, s->id, w->start, CS_TOUCH_DATA);
	if (ret)
		return ret;
	ret = vol_rename(w->v, node(w, s->parent)->ino, s->name, d->ino, name, 0);
	if (ret)
		return wl_fail(w, ret, "vol_rename");
	s->parent = d->id;
	snprintf(s->name, sizeof(s->name), "%s", name);
	ret = note_subtree(w, s->id);
	return ret ? ret : op_end(w);
}

static int do_unlink(struct wl *w, struct cs_node *n)
{
	char path[512];
	int ret;

	path_of(w, n->id, path);
	ret = op_begin(w, "unlink %s", path);
	if (!ret)
		ret = cs_touch_add(n, w->start, CS_TOUCH_DATA | CS_TOUCH_XATTR);
	if (ret)
		return ret;
	ret = vol_unlink(w->v, node(w, n->parent)->ino, n->name);
	if (ret)
		return wl_fail(w, ret, "vol_unlink");
	n->live = false;
	return op_end(w);
}

static bool empty_dir(struct wl *w, const struct cs_node *n)
{
	return n->id > 1 && !n->pinned && !has_children(w->m, n->id);
}

static int do_rmdir(struct wl *w)
{
	struct cs_node *n = pick(w, true, empty_dir);
	char path[512];
	int ret;

	if (!n)
		return 1;
	path_of(w, n->id, path);
	ret = op_begin(w, "rmdir %s", path);
	if (!ret)
		ret = cs_touch_add(n, w->start, CS_TOUCH_DATA);
	if (ret)
		return ret;
	ret = vol_rmdir(w->v, node(w, n->parent)->ino, n->name);
	if (ret)
		return wl_fail(w, ret, "vol_rmdir");
	n->live = false;
	return op_end(w);
}

/* ---- data ops -------------------------------------------------------------- */

/* Where and how much to write: every map type, holes, overwrites. */
static void write_range(struct wl *w, struct cs_node *n, uint64_t *off,
			uint64_t *len)
{
	uint64_t c = cs_below(&w->r, 100), size = n->size, o, l;
	bool room = data_bytes(w) < WL_DATA_BUDGET / 2;

	if (c < 28) {
		l = rsect(w, 1, 4);		/* inline-sized */
	} else if (c < 60) {
		l = rsect(w, 1, 64);		/* up to 32 KiB */
	} else if (c < 82) {
		l = rsect(w, 64, 512);		/* 32..256 KiB */
	} else if (c < 88 && room) {
		l = rsect(w, 512, 4096);	/* 256 KiB..2 MiB */
	} else if (c < 93 && w->nsparse < WL_MAX_SPARSE) {
		/* Far out: the map needs pointer blocks. */
		*off = WL_SPARSE_OFF + rsect(w, 0, 8192);
		*len = rsect(w, 8, 128);
		if (!is_sparse(n))
			w->nsparse++;
		return;
	} else {
		l = rsect(w, 1, 16);
	}
	if (is_sparse(n) && l > 128 * CS_SECTOR)
		l = 128 * CS_SECTOR;
	c = cs_below(&w->r, 100);
	if (size <= 2048 && c < 50 && l <= 2048)
		o = rsect(w, 0, (2048 - l) / CS_SECTOR);	/* stay inline */
	else if (c < 45 || !size)
		o = size;					/* append */
	else if (c < 70)
		o = rsect(w, 0, (size - 1) / CS_SECTOR);	/* overwrite */
	else if (c < 85)
		o = 0;
	else
		o = size + rsect(w, 1, 256);			/* leave a hole */
	if (is_sparse(n) && o >= size)
		o = size - CS_SECTOR * (1 + cs_below(&w->r, 8));
	*off = o;
	*len = l;
}

static int do_write(struct wl *w, struct cs_node *n)
{
	uint64_t off, len, first;
	uint32_t ver;
	uint8_t *buf;
	char path[512];
	ssize_t got;
	int ret;

	write_range(w, n, &off, &len);
	first = off / CS_SECTOR;
	ver = cs_ver_new(w->m, n->id, -1, first, len / CS_SECTOR);
	if (!ver)
		return -ENOMEM;
	/* Mostly aligned buffers (the direct path), sometimes not. */
	buf = cs_below(&w->r, 5) ? w->buf : w->buf + 8;
	for (uint64_t s = 0; s < len / CS_SECTOR; s++)
		cs_sector_fill(buf + s * CS_SECTOR, n->id, ver,
			       off + s * CS_SECTOR);
	path_of(w, n->id, path);
	ret = op_begin(w, "write %s [%" PRIu64 ", +%" PRIu64 ") v%u", path, off,
		       len, ver);
	if (!ret)
		ret = cs_touch_add(n, w->start, CS_TOUCH_DATA);
	if (ret)
		return ret;
	got = vol_write(w->v, n->ino, buf, len, off);
	if (got != (ssize_t)len)
		return wl_fail(w, got < 0 ? (int)got : -EIO, "vol_write");
	if (off + len > n->size && cs_node_resize(n, off + len))
		return -ENOMEM;
	for (uint64_t s = 0; s < len / CS_SECTOR; s++)
		n->sect[first + s] = ver;
	w->last_file = n->id;
	return op_end(w);
}

static int do_truncate(struct wl *w, struct cs_node *n)
{
	struct vol_setattr sa;
	struct vol_attr a;
	uint64_t size;
	char path[512];
	int ret;

	if (!n->size || (cs_below(&w->r, 3) == 0 && !tight(w)))
		size = n->size + rsect(w, 1, 512);
	else if (cs_below(&w->r, 4) == 0)
		size = rsect(w, 0, 4);
	else
		size = rsect(w, 0, (n->size - 1) / CS_SECTOR);
	path_of(w, n->id, path);
	ret = op_begin(w, "truncate %s %" PRIu64 " -> %" PRIu64, path, n->size,
		       size);
	if (!ret)
		ret = cs_touch_add(n, w->start, CS_TOUCH_DATA);
	if (ret)
		return ret;
	memset(&sa, 0, sizeof(sa));
	sa.size = size;
	ret = vol_setattr(w->v, n->ino, &sa, VOL_SET_SIZE, &a);
	if (ret)
		return wl_fail(w, ret, "vol_setattr(size)");
	if (cs_node_resize(n, size))
		return -ENOMEM;
	w->last_file = n->id;
	return op_end(w);
}

/*
 * fallocate: allocate (extending or not), punch a hole, or zero a range
 * (eagerly, on the LUN).
 */
static int do_fallocate(struct wl *w, struct cs_node *n)
{
	static const struct {
		int mode;
		const char *name;
	} modes[] = {
		{ 0, "allocate" },
		{ FALLOC_FL_KEEP_SIZE, "allocate keep-size" },
		{ FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, "punch" },
		{ FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, "punch" },
		{ FALLOC_FL_ZERO_RANGE, "zero-range" },
		{ FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, "zero-range keep-size" },
	};
	unsigned k = (unsigned)cs_below(&w->r, sizeof(modes) / sizeof(modes[0]));
	int mode = modes[k].mode;
	uint64_t off, len, end, zend;
	char path[512];
	int ret;

	if (tight(w) && !(mode & FALLOC_FL_PUNCH_HOLE))
		mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, k = 2;
	if (n->size && (mode & FALLOC_FL_PUNCH_HOLE || cs_below(&w->r, 2)))
		off = rsect(w, 0, (n->size - 1) / CS_SECTOR);
	else
		off = n->size + rsect(w, 0, 128);
	len = rsect(w, 1, mode & FALLOC_FL_PUNCH_HOLE ? 1024 : 512);
	if (is_sparse(n) && off > n->size)
		off = n->size;
	end = off + len;
	path_of(w, n->id, path);
	ret = op_begin(w, "fallocate %s %s [%" PRIu64 ", +%" PRIu64 ")",
		       modes[k].name, path, off, len);
	if (!ret)
		ret = cs_touch_add(n, w->start, CS_TOUCH_DATA);
	if (ret)
		return ret;
	ret = vol_fallocate(w->v, n->ino, mode, off, len);
	if (ret)
		return wl_fail(w, ret, "vol_fallocate");
	/* Zeros where it punched or zeroed, inside the size it keeps. */
	zend = end < n->size ? end : n->size;
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		for (uint64_t s = off / CS_SECTOR; s * CS_SECTOR < zend; s++)
			n->sect[s] = 0;
	if (!(mode & FALLOC_FL_KEEP_SIZE) && end > n->size &&
	    cs_node_resize(n, end))
		return -ENOMEM;
	w->last_file = n->id;
	return op_end(w);
}

static int do_xattr(struct wl *w, struct cs_node *n, bool remove)
{
	uint32_t slot = (uint32_t)cs_below(&w->r, CS_NXATTR), ver = 0;
	uint8_t val[256];
	char name[16], path[512];
	size_t len = 0;
	int ret;

	if (remove) {
		while (!n->xattr[slot])
			slot = (slot + 1) % CS_NXATTR;
	} else {
		ver = cs_ver_new(w->m, n->id, (int)slot, 0, 0);
		if (!ver)
			return -ENOMEM;
		len = cs_xattr_fill(val, sizeof(val), n->id, slot, ver);
	}
	cs_xattr_name(slot, name);
	path_of(w, n->id, path);
	ret = op_begin(w, "%s %s %s", remove ? "removexattr" : "setxattr", path,
		       name);
	if (!ret)
		ret = cs_touch_add(n, w->start, CS_TOUCH_XATTR);
	if (ret)
		return ret;
	ret = remove ? vol_removexattr(w->v, n->ino, name)
		     : vol_setxattr(w->v, n->ino, name, val, len, 0);
	if (ret)
		return wl_fail(w, ret, remove ? "vol_removexattr" : "vol_setxattr");
	n->xattr[slot] = ver;
	return op_end(w);
}

static int do_fsync(struct wl *w, struct cs_node *n, bool datasync)
{
	char path[512];
	int ret;

	path_of(w, n->id, path);
	ret = op_begin(w, "%s %s", datasync ? "fdatasync" : "fsync", path);
	if (ret)
		return ret;
	ret = vol_fsync(w->v, n->ino, datasync);
	if (ret)
		return wl_fail(w, ret, "vol_fsync");
	ret = op_end(w);
	if (!ret)
		ret = cs_fsync_add(w->m, n, (uint32_t)w->log->n, datasync);
	return ret;
}

/* ---- the op mix -------------------------------------------------------------- */

/*
 * Host B's ops: files only, in its own directory and the shared one,
 * never host A's files (pick and file_in see only B's own).
 */
static int simple_op(struct wl *w, size_t nfiles)
{
	struct cs_node *f = pick(w, false, NULL);
	unsigned c = (unsigned)cs_below(&w->r, 100);

	if (nfiles < 3 || c < 18)
		return do_create(w, false);
	if (tight(w) || (c < 30 && nfiles > 5))
		return do_unlink(w, f);
	if (c < 62)
		return do_write(w, f);
	if (c < 72)
		return do_rename_file(w);
	if (c < 82)
		return do_xattr(w, f, has_xattr(w, f) && cs_below(&w->r, 3) == 0);
	return do_fsync(w, f, cs_below(&w->r, 5) == 0);
}

static int one_op(struct wl *w)
{
	size_t nfiles = 0;
	struct cs_node *f;
	unsigned c;

	for (size_t i = 2; i < w->m->nnodes; i++)
		if (w->m->nodes[i].live && !w->m->nodes[i].dir &&
		    w->m->nodes[i].host == w->host)
			nfiles++;
	if (w->simple)
		return simple_op(w, nfiles);
	if (nfiles < 4)
		return do_create(w, false);
	if (tight(w)) {
		/* Shrink: unlink, truncate or punch until there is room. */
		f = pick(w, false, nonempty);
		c = (unsigned)cs_below(&w->r, 3);
		if (!f || c == 0)
			return do_unlink(w, pick(w, false, NULL));
		return c == 1 ? do_truncate(w, f) : do_fallocate(w, f);
	}
	c = (unsigned)cs_below(&w->r, 100);
	f = pick(w, false, NULL);
	if (c < 10)
		return do_create(w, false);
	if (c < 14)
		return do_create(w, true);
	if (c < 38)
		return do_write(w, f);
	if (c < 44)
		return do_truncate(w, f);
	if (c < 51)
		return do_fallocate(w, f);
	if (c < 59)
		return do_rename_file(w);
	if (c < 61)
		return do_rename_dir(w);
	if (c < 65)
		return nfiles > 8 ? do_unlink(w, f) : do_create(w, false);
	if (c < 67)
		return do_rmdir(w);
	if (c < 72)
		return do_xattr(w, f, false);
	if (c < 74)
		return has_xattr(w, f) ? do_xattr(w, f, true) : do_xattr(w, f, false);
	/* Right after an idle pause only the commit interval may commit. */
	if (w->unsynced) {
		w->unsynced--;
		return do_write(w, f);
	}
	/* fsync, mostly the file just changed */
	if (c < 87 && w->last_file > 1 && node(w, w->last_file)->live &&
	    !node(w, w->last_file)->dir)
		f = node(w, w->last_file);
	return do_fsync(w, f, cs_below(&w->r, 5) == 0);
}

/* A host's top directory: pinned (never moved or removed). */
static int top_dir(struct wl *w, const char *name, bool shared)
{
	struct vol_attr a;
	struct cs_node *n;
	char path[512];
	int ret = op_begin(w, "mkdir /%s", name);

	if (ret)
		return ret;
	ret = vol_mkdir(w->v, VMFS_ROOT_INO, name, 0755, 0, 0, &a);
	if (ret)
		return wl_fail(w, ret, "vol_mkdir");
	vol_forget(w->v, a.ino, 1);
	n = cs_node_new(w->m, true, 0, name, a.ino);
	if (!n)
		return -ENOMEM;
	n->host = w->host;
	n->shared = shared;
	n->pinned = true;
	w->root = n->id;
	snprintf(path, sizeof(path), "/%s", name);
	ret = cs_path_note(w->m, path, n->id);
	return ret ? ret : op_end(w);
}

/*
 * Two hosts, as vmfsd mounts them: both join the heartbeat, then both
 * open the volume (each its own journal) and share it, so that neither
 * ever holds the volume lock alone and both take per-operation locks
 * from their first op on.  Host A makes /a and the shared /s, host B /b.
 */
static int hosts_start(struct wl *w, struct wl *b, const struct cs_wl_opts *o,
		       struct cs_host *h)
{
	int ret = op_begin(w, "join the heartbeat, open, share");

	for (unsigned i = 0; !ret && i < CS_MAX_HOSTS; i++)
		ret = cs_host_join(w->fluns[i], o->seed, i, o->lease_ms, &h[i]);
	for (unsigned i = 0; !ret && i < CS_MAX_HOSTS; i++)
		ret = cs_host_open(w->fluns[i], o->commit_ms, &h[i]);
	if (ret)
		return wl_fail(w, ret, "starting the hosts");
	w->v = h[CS_HOST_A].v;
	b->v = h[CS_HOST_B].v;
	ret = op_end(w);
	if (!ret)
		ret = top_dir(w, "s", true);
	if (!ret)
		ret = top_dir(w, "a", false);
	if (!ret)
		ret = top_dir(b, "b", false);
	return ret;
}

static int hosts_stop(struct wl *w, struct wl *b, struct cs_host *h)
{
	int ret = 0, cret;

	for (unsigned i = 0; i < CS_MAX_HOSTS; i++) {
		struct wl *x = i == CS_HOST_A ? w : b;

		if (!h[i].hb && !h[i].v)
			continue;
		if (!ret)
			ret = op_begin(x, "vol_close, leave the heartbeat");
		cret = cs_host_close(&h[i]);
		if (!ret && cret)
			ret = wl_fail(x, cret, "closing");
		if (!ret)
			ret = op_end(x);
	}
	return ret;
}

int cs_workload_run(struct lun *const *flun, const struct cs_wl_opts *o,
		    struct cs_log *log, struct cs_model *m, char *err,
		    size_t errlen)
{
	unsigned nhosts = o->hosts > 1 ? 2 : 1;
	struct wl w = { .fluns = flun, .nhosts = nhosts, .log = log, .m = m,
			.r = { o->seed }, .verbose = o->verbose, .err = err,
			.errlen = errlen,
			.due_after_ns = (int64_t)(o->commit_ms + o->slack_ms) * 1000000 };
	struct wl b = w;
	struct cs_host h[CS_MAX_HOSTS];
	struct vol_open_opts vo = { .commit_ms = o->commit_ms };
	/* Idle long enough that the interval has come due with room to spare. */
	struct timespec pause = { .tv_sec = 2 * (o->commit_ms + o->slack_ms) / 1000,
				  .tv_nsec = 2 * (o->commit_ms + o->slack_ms) % 1000 * 1000000L };
	int ret, cret;

	memset(h, 0, sizeof(h));
	b.host = CS_HOST_B;
	b.simple = true;
	b.r.s = cs_mix(o->seed ^ 0xb0b);
	w.buf = lun_buf_alloc(WL_BUF_MAX + 4096);
	if (!w.buf)
		return -ENOMEM;
	b.buf = w.buf;
	for (unsigned i = 0; i < nhosts; i++)
		lun_fault_record(flun[i], true);
	if (nhosts > 1) {
		/* The root is nobody's: the hosts work in their top dirs. */
		m->nodes[0].host = 0xff;
		ret = hosts_start(&w, &b, o, h);
	} else {
		ret = op_begin(&w, "vol_open");
		if (!ret) {
			ret = vol_open_ex(flun[0], &vo, &w.v);
			if (ret)
				ret = wl_fail(&w, ret, "vol_open");
			else
				ret = op_end(&w);
		}
	}
	for (unsigned i = 0; !ret && i < o->nops; i++) {
		if (o->pause_every && i >= 3 &&
		    (i % o->pause_every == 0 || i % o->pause_every == 3)) {
			nanosleep(&pause, NULL);
			w.unsynced = i % o->pause_every == 0 ? 3 : 0;
		}
		ret = one_op(&w);
		/* B: about one op for every two of A's, in between. */
		if (ret >= 0 && nhosts > 1 && cs_below(&b.r, 2) == 0)
			ret = one_op(&b);
		if (ret > 0)
			ret = 0;	/* nothing to do for that op: skipped */
	}
	/* A last fsync of everything written since its own, then close. */
	for (size_t i = 2; !ret && i < m->nnodes; i++) {
		struct cs_node *n = &m->nodes[i];

		if (n->live && !n->dir && n->host == CS_HOST_A && n->ntouch &&
		    (!n->nfsync || n->touches[n->ntouch - 1].start >
				   n->fsyncs[n->nfsync - 1].ret) &&
		    cs_below(&w.r, 2))
			ret = do_fsync(&w, n, false);
	}
	if (nhosts > 1) {
		cret = hosts_stop(&w, &b, h);
		if (!ret)
			ret = cret;
	} else if (w.v) {
		if (!ret)
			ret = op_begin(&w, "vol_close");
		cret = vol_close(w.v);
		if (!ret && cret)
			ret = wl_fail(&w, cret, "vol_close");
		if (!ret)
			ret = op_end(&w);
	}
	if (!ret)
		ret = cs_log_drain_final(log, flun, nhosts);
	for (unsigned i = 0; i < nhosts; i++)
		lun_fault_record(flun[i], false);
	lun_buf_free(w.buf);
	return ret;
}
