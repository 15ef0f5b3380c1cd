/*
 * Checking one crash image, and the exact check of the final volume
 * against the model.
 *
 * For a state (durable, crash) (crashsim.h), in this order:
 *  1. vol_open read-write succeeds (it replays the journal), vol_close
 *     succeeds;
 *  2. fsck -n (fsck_run, FSCK_MODE_NO) exits 0; its reports are kept;
 *  3. vol_open read-only succeeds, and walking the tree from the root:
 *     - every name is a path the workload gave a node of that kind;
 *     - every regular file holds only zero sectors and sectors that some
 *       write of the workload put at that offset of that file (one file
 *       id throughout), the file id is one the path had and its inode
 *       number is that file's, and it is no larger than the file ever
 *       was; its xattrs are values that file had under that name;
 *     - every file with a promise (cs_promise: fsync'ed at or before
 *       durable, or changed by an op whose commit interval ran out by
 *       the crash, and not touched by an op that started before crash) is
 *       at its promised path with exactly its promised size and content,
 *       and, unless only an fdatasync promised it, exactly its xattrs;
 *     - no file that such a promise says was unlinked is still there.
 *
 * Two hosts (README §5): step 1 is a restarted host B instead, which
 * recovers its own slot and then A's (vol_recover_slot), opens the
 * volume on its own journal and works on: it renames one of A's
 * promised files, unlinks another and creates a file in A's directory
 * and one in the shared one, then closes.  Step 3 expects the renamed
 * file's promise at its new name, the unlinked one gone and the new
 * files exact; host B's own promises (every op of B that ended before
 * the crash) are checked like the others.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "vmfs/log.h"

#include "vmfs/fsck.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"
#include "crashsim.h"

#define READ_CHUNK (1u << 20)
#define MAX_DEPTH 32
#define MAX_LINES 12

void cs_msg(char *buf, size_t len, const char *fmt, ...)
{
	size_t o = strnlen(buf, len);
	va_list ap;

	if (o + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + o, len - o, fmt, ap);
	va_end(ap);
}

const char *cs_fail_name(unsigned bit)
{
	switch (bit) {
	case CS_FAIL_OPEN:
		return "vol_open";
	case CS_FAIL_CLOSE:
		return "vol_close";
	case CS_FAIL_FSCK:
		return "fsck";
	case CS_FAIL_REOPEN:
		return "vol_open-rdonly";
	case CS_FAIL_LOST:
		return "promise-lost";
	case CS_FAIL_GARBAGE:
		return "bad-content";
	case CS_FAIL_CRASH:
		return "checker-crash";
	case CS_FAIL_TIMEOUT:
		return "timeout";
	case CS_FAIL_HARNESS:
		return "harness";
	case CS_FAIL_POST:
		return "post-recovery-op";
	}
	return "?";
}

/* ---- engine log capture ---------------------------------------------------- */

static pthread_mutex_t cap_mu = PTHREAD_MUTEX_INITIALIZER;
static char cap_buf[2048];

static void cap_log(int32_t t, struct qb_log_callsite *cs,
		    struct timespec *ts, const char *msg)
{
	(void)t;
	(void)cs;
	(void)ts;
	pthread_mutex_lock(&cap_mu);
	cs_msg(cap_buf, sizeof(cap_buf), "    engine: %s\n", msg);
	pthread_mutex_unlock(&cap_mu);
}

void cs_log_capture_init(bool echo)
{
	int32_t t;

	qb_log_init("crashsim", LOG_USER, LOG_WARNING);
	qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, QB_FALSE);
	t = qb_log_custom_open(cap_log, NULL, NULL, NULL);
	if (t >= 0) {
		qb_log_filter_ctl(t, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*",
				  LOG_WARNING);
		qb_log_ctl(t, QB_LOG_CONF_ENABLED, QB_TRUE);
	}
	if (echo) {
		qb_log_filter_ctl(QB_LOG_STDERR, QB_LOG_FILTER_ADD,
				  QB_LOG_FILTER_FILE, "*", LOG_WARNING);
		qb_log_format_set(QB_LOG_STDERR, "crashsim: %p: %b");
		qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_TRUE);
	}
}

void cs_log_capture_reset(void)
{
	pthread_mutex_lock(&cap_mu);
	cap_buf[0] = 0;
	pthread_mutex_unlock(&cap_mu);
}

const char *cs_log_capture_text(void)
{
	return cap_buf;
}

/* ---- reporting ---------------------------------------------------------------- */

/* Host B's ops after it recovered A (two hosts). */
#define POST_FID 0xb0570000u   /* file id of the files B makes then */
#define POST_SECTORS 3
struct post {
	uint32_t moved;        /* node of A's file B renamed (0: none) */
	char moved_to[512];
	uint32_t dropped;      /* node of A's file B unlinked (0: none) */
	char dropped_path[512];
	char made[2][512];     /* the files B created */
	bool made_seen[2];
};

struct chk {
	const struct cs_model *m;
	struct post *post;     /* two hosts, else NULL */
	struct vol *v;
	char *msg;
	size_t len;
	unsigned fails;        /* CS_FAIL_* */
	unsigned lines;
	uint8_t *buf;
	const struct cs_fsync **pdata, **pxattr;   /* per node id */
	int64_t cut_ns;        /* when the crash came (recorder's clock) */
	bool *seen;
	struct cs_check_stats *st;
};

static void fail(struct chk *k, unsigned bit, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct chk *k, unsigned bit, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	k->fails |= bit;
	if (++k->lines > MAX_LINES) {
		if (k->lines == MAX_LINES + 1)
			cs_msg(k->msg, k->len, "    ... (more)\n");
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	cs_msg(k->msg, k->len, "    %s: %s\n", cs_fail_name(bit), line);
}

/* ---- files -------------------------------------------------------------------- */

/*
 * Why a sector is not one the file may hold (into why), or false.  *fid
 * gets the file id of a valid non-zero sector.
 */
static bool sector_bad(const struct cs_model *m, const uint8_t *s,
		       size_t len, uint64_t off, uint32_t *fid, char *why,
		       size_t wlen)
{
	uint32_t f, ver;
	uint64_t o;

	if (cs_is_zero(s, len))
		return false;
	if (!cs_sector_header(s, len, &f, &ver, &o))
		snprintf(why, wlen, "garbage (no sector header)");
	else if (!cs_sector_is(s, len, f, ver, o))
		snprintf(why, wlen, "a damaged sector (header: file %u v%u offset %" PRIu64 ")",
			 f, ver, o);
	else if (o != off)
		snprintf(why, wlen, "a sector file %u v%u wrote at offset %" PRIu64,
			 f, ver, o);
	else if (!cs_ver_valid(m, f, ver, off / CS_SECTOR))
		snprintf(why, wlen, "file %u v%u, a version never written there",
			 f, ver);
	else {
		*fid = f;
		return false;
	}
	return true;
}

static void hex_head(const uint8_t *s, size_t len, char out[64])
{
	size_t o = 0;

	for (size_t i = 0; i < len && i < 16; i++)
		o += (size_t)snprintf(out + o, 64 - o, "%02x", s[i]);
	out[o] = 0;
}

/* "fsync'ed at log index 12" or what the commit interval promised. */
static const char *promised(const struct chk *k, const struct cs_fsync *f,
			    char *buf, size_t len)
{
	if (f->due_ns)
		snprintf(buf, len, "changed by the op that ended at log index %u (no fsync; its commit interval and allowance ran out %.0f ms before the crash)",
			 f->ret, (double)(k->cut_ns - f->due_ns) / 1e6);
	else if (f->live)
		snprintf(buf, len, "changed by host B's op that ended at log index %u, before the crash",
			 f->ret);
	else
		snprintf(buf, len, "fsync'ed at log index %u", f->ret);
	return buf;
}

/* The promise (data) whose path is this one, if any. */
static const struct cs_fsync *promise_at(struct chk *k, const char *path,
					 uint32_t *id)
{
	const struct cs_path *p = cs_path_find(k->m, path);

	for (size_t i = 0; p && i < p->nids; i++) {
		const struct cs_fsync *f = k->pdata[p->ids[i]];

		if (f && !f->gone && !strcmp(f->path, path)) {
			*id = p->ids[i];
			return f;
		}
	}
	return NULL;
}

static void check_xattrs(struct chk *k, const char *path, uint64_t ino,
			 uint32_t fid, const struct cs_path *hist,
			 const struct cs_fsync *px)
{
	char names[1024], want_name[16];
	uint8_t val[300];
	uint32_t got[CS_NXATTR] = { 0 };
	ssize_t n = vol_listxattr(k->v, ino, names, sizeof(names));

	if (n < 0) {
		fail(k, CS_FAIL_GARBAGE, "%s: listxattr: %s", path,
		     vmfs_strerror((int)n));
		return;
	}
	for (ssize_t o = 0; o < n; o += (ssize_t)strlen(names + o) + 1) {
		const char *name = names + o;
		uint32_t f, slot, ver;
		ssize_t vl = vol_getxattr(k->v, ino, name, val, sizeof(val));

		if (vl < 0) {
			fail(k, CS_FAIL_GARBAGE, "%s: getxattr %s: %s", path, name,
			     vmfs_strerror((int)vl));
			continue;
		}
		if (!cs_xattr_parse(val, (size_t)vl, &f, &slot, &ver)) {
			fail(k, CS_FAIL_GARBAGE, "%s: xattr %s holds garbage (%zd bytes)",
			     path, name, vl);
			continue;
		}
		cs_xattr_name(slot, want_name);
		if (strcmp(want_name, name) ||
		    !cs_xver_valid(k->m, f, slot, ver) ||
		    (fid ? f != fid : !cs_path_had(hist, f))) {
			fail(k, CS_FAIL_GARBAGE, "%s: xattr %s holds a value it never had (file %u slot %u v%u)",
			     path, name, f, slot, ver);
			continue;
		}
		got[slot] = ver;
	}
	if (!px)
		return;
	for (uint32_t s = 0; s < CS_NXATTR; s++) {
		char why[160];

		if (got[s] != px->xattr[s])
			fail(k, CS_FAIL_LOST, "%s: xattr user.cs%u is %s%u, %s as %s%u",
			     path, s, got[s] ? "v" : "absent ", got[s],
			     promised(k, px, why, sizeof(why)),
			     px->xattr[s] ? "v" : "absent ", px->xattr[s]);
	}
}

/*
 * A file promised gone (unlinked by an op whose commit interval ran out)
 * must not be found: not at a path it had with its inode number and its
 * data, nor, when empty, with its inode number where no other file that
 * had the path had that number too.
 */
static void check_gone(struct chk *k, const char *path, uint64_t ino,
		       uint32_t fid, const struct cs_path *hist)
{
	for (size_t i = 0; hist && i < hist->nids; i++) {
		uint32_t id = hist->ids[i];
		const struct cs_fsync *g = k->pdata[id];
		bool other = false;
		char why[160];

		if (!g || !g->gone || k->m->nodes[id].ino != ino)
			continue;
		if (fid && fid != id)
			continue;
		for (size_t j = 0; !fid && j < hist->nids; j++)
			other |= hist->ids[j] != id && k->m->nodes[hist->ids[j]].ino == ino;
		if (other)
			continue;
		fail(k, CS_FAIL_LOST, "%s: file %u (inode %" PRIu64 ") is still here, but was unlinked: %s",
		     path, id, ino, promised(k, g, why, sizeof(why)));
	}
}

/* The regular file at path, which the model knows as path as (the
 * same unless host B renamed it after the crash). */
static void check_file(struct chk *k, const char *path, const char *as,
		       uint64_t ino)
{
	const struct cs_path *hist = cs_path_find(k->m, as);
	const struct cs_fsync *pd, *px = NULL;
	uint32_t pid = 0, fid = 0, first_bad_fid = 0;
	uint64_t bad_off = 0, mix_off = 0, max = 0;
	char bad[160] = "";
	bool content_ok = true, lost_once = false;
	struct vol_attr a;
	char hex[64] = "";
	int ret;

	ret = vol_getattr(k->v, ino, &a);
	if (ret) {
		fail(k, CS_FAIL_GARBAGE, "%s: entry names inode %" PRIu64 " that fails: %s",
		     path, ino, vmfs_strerror(ret));
		return;
	}
	if (!S_ISREG(a.mode)) {
		fail(k, CS_FAIL_GARBAGE, "%s: entry says regular file, inode %" PRIu64
		     " has mode 0%o", path, ino, a.mode);
		return;
	}
	k->st->files++;
	pd = promise_at(k, as, &pid);
	if (pd) {
		char why[160];

		k->seen[pid] = true;
		k->st->promises++;
		if (pd->due_ns)
			k->st->interval++;
		if (pd->live)
			k->st->live++;
		px = k->pxattr[pid];
		if (px && (px->gone || strcmp(px->path, as)))
			px = NULL;
		if (a.size != pd->size) {
			fail(k, CS_FAIL_LOST, "%s: size %" PRIu64 ", %s with %" PRIu64,
			     path, a.size, promised(k, pd, why, sizeof(why)), pd->size);
			lost_once = true;
		}
	}
	for (uint64_t off = 0; off < a.size; off += READ_CHUNK) {
		size_t want = a.size - off < READ_CHUNK ? (size_t)(a.size - off)
							: READ_CHUNK;
		ssize_t got = vol_read(k->v, ino, k->buf, want, off);

		if (got != (ssize_t)want) {
			fail(k, CS_FAIL_GARBAGE, "%s: read at %" PRIu64 ": %s", path, off,
			     got < 0 ? vmfs_strerror((int)got) : "short read");
			return;
		}
		for (size_t s = 0; s < want; s += CS_SECTOR) {
			size_t n = want - s < CS_SECTOR ? want - s : CS_SECTOR;
			uint64_t at = off + s;
			uint32_t f = 0;
			char why[160];

			k->st->sectors++;
			if (sector_bad(k->m, k->buf + s, n, at, &f, why, sizeof(why)) &&
			    content_ok) {
				snprintf(bad, sizeof(bad), "%s", why);
				bad_off = at;
				hex_head(k->buf + s, n, hex);
				content_ok = false;
			}
			if (f && !fid)
				fid = f;
			else if (f && f != fid && !first_bad_fid) {
				first_bad_fid = f;
				mix_off = at;
			}
			if (pd && !lost_once) {
				uint64_t si = at / CS_SECTOR;
				uint32_t ev = si < (pd->size + CS_SECTOR - 1) / CS_SECTOR ?
					      pd->sect[si] : 0;
				bool same = ev ? cs_sector_is(k->buf + s, n, pid, ev, at)
					       : cs_is_zero(k->buf + s, n);

				if (!same) {
					char pw[160];

					fail(k, CS_FAIL_LOST, "%s: sector at %" PRIu64
					     " is not %s%u, the file's content when %s",
					     path, at, ev ? "v" : "zeros", ev,
					     promised(k, pd, pw, sizeof(pw)));
					lost_once = true;
				}
			}
		}
	}
	if (bad[0])
		fail(k, CS_FAIL_GARBAGE, "%s: at offset %" PRIu64 " %s: %s...", path,
		     bad_off, bad, hex);
	if (first_bad_fid)
		fail(k, CS_FAIL_GARBAGE, "%s: holds sectors of files %u and %u (at %" PRIu64 ")",
		     path, fid, first_bad_fid, mix_off);
	if (fid) {
		if (!cs_path_had(hist, fid))
			fail(k, CS_FAIL_GARBAGE, "%s: holds data of file %u (%s), which never had this path",
			     path, fid, k->m->nodes[fid].name);
		else if (k->m->nodes[fid].ino != a.ino)
			fail(k, CS_FAIL_GARBAGE, "%s: holds data of file %u but is inode %" PRIu64
			     ", that file was inode %" PRIu64, path, fid, a.ino,
			     k->m->nodes[fid].ino);
		max = k->m->nodes[fid].max_size;
	} else {
		bool known = false;

		for (size_t i = 0; hist && i < hist->nids; i++) {
			const struct cs_node *n = &k->m->nodes[hist->ids[i]];

			if (!n->dir && n->ino == a.ino) {
				known = true;
				if (n->max_size > max)
					max = n->max_size;
			}
		}
		if (!known)
			fail(k, CS_FAIL_GARBAGE, "%s: inode %" PRIu64 " was never a file at this path",
			     path, a.ino);
	}
	if (a.size > max && (fid || max))
		fail(k, CS_FAIL_GARBAGE, "%s: size %" PRIu64 " larger than the file ever was (%" PRIu64 ")",
		     path, a.size, max);
	check_gone(k, path, a.ino, fid, hist);
	check_xattrs(k, path, ino, fid, hist, px);
}

/* ---- host B after the crash (two hosts) ------------------------------------------ */

static void post_fill(uint8_t *buf)
{
	for (unsigned s = 0; s < POST_SECTORS; s++)
		cs_sector_fill(buf + s * CS_SECTOR, POST_FID, 1, s * CS_SECTOR);
}

/* A file of B's post-recovery ops (checked here: true), or not. */
static bool post_file(struct chk *k, const char *path, uint64_t ino)
{
	struct post *p = k->post;
	struct vol_attr a = { 0 };

	if (p->moved && !strcmp(path, p->moved_to)) {
		check_file(k, path, k->pdata[p->moved]->path, ino);
		k->st->post++;
		return true;
	}
	if (p->moved && !strcmp(path, k->pdata[p->moved]->path)) {
		fail(k, CS_FAIL_POST, "%s: still here after host B renamed it to %s",
		     path, p->moved_to);
		return true;
	}
	if (p->dropped && !strcmp(path, p->dropped_path)) {
		fail(k, CS_FAIL_POST, "%s: still here after host B unlinked it", path);
		return true;
	}
	for (unsigned i = 0; i < 2; i++) {
		uint8_t want[POST_SECTORS * CS_SECTOR];
		ssize_t got;

		if (!p->made[i][0] || strcmp(path, p->made[i]))
			continue;
		p->made_seen[i] = true;
		k->st->post++;
		post_fill(want);
		got = vol_getattr(k->v, ino, &a) ? -EIO
		      : vol_read(k->v, ino, k->buf, sizeof(want), 0);
		if (a.size != sizeof(want) || got != (ssize_t)sizeof(want) ||
		    memcmp(k->buf, want, sizeof(want)))
			fail(k, CS_FAIL_POST, "%s: host B wrote %zu bytes after recovering A; found %" PRIu64 " bytes%s",
			     path, sizeof(want), a.size,
			     got == (ssize_t)sizeof(want) ? " that differ" : "");
		return true;
	}
	return false;
}

/* The inode of the directory holding path and the last name in it. */
static int post_resolve(struct vol *v, const char *path, uint64_t *dir,
			const char **name)
{
	char comp[VMFS_NAME_MAX + 1];
	const char *p = path + 1, *slash;
	struct vol_attr a;
	int ret;

	*dir = VMFS_ROOT_INO;
	while ((slash = strchr(p, '/'))) {
		snprintf(comp, sizeof(comp), "%.*s", (int)(slash - p), p);
		ret = vol_lookup(v, *dir, comp, &a);
		if (ret)
			return ret;
		vol_forget(v, a.ino, 1);
		*dir = a.ino;
		p = slash + 1;
	}
	*name = p;
	ret = vol_lookup(v, *dir, p, &a);
	if (!ret)
		vol_forget(v, a.ino, 1);
	return ret;
}

/* A promised file of host A, the n-th found from a random start. */
static uint32_t post_pick(const struct chk *k, struct cs_rng *r, uint32_t not)
{
	size_t n = k->m->nnodes, at = (size_t)cs_below(r, n);

	for (size_t i = 0; i < n; i++) {
		uint32_t id = (uint32_t)((at + i) % n);
		const struct cs_fsync *f = k->pdata[id];

		if (id != not && k->m->nodes[id].host == CS_HOST_A && f &&
		    !f->gone)
			return id;
	}
	return 0;
}

/*
 * Host B's ops on the recovered volume: rename one of A's promised
 * files in its directory, unlink another, create a file in A's top
 * directory and one in the shared directory.  A promised file that is
 * not there is left alone (the walk reports it).
 */
static void post_ops(struct chk *k, uint64_t seed)
{
	static const char *const top[2] = { "/a", "/s" };
	struct post *p = k->post;
	struct cs_rng r = { seed };
	uint8_t *buf = k->buf;
	uint64_t dir;
	const char *name;
	int ret;

	p->moved = post_pick(k, &r, 0);
	p->dropped = post_pick(k, &r, p->moved);
	if (p->moved && !post_resolve(k->v, k->pdata[p->moved]->path, &dir, &name)) {
		snprintf(p->moved_to, sizeof(p->moved_to), "%.*sp%u",
			 (int)(name - k->pdata[p->moved]->path),
			 k->pdata[p->moved]->path, p->moved);
		ret = vol_rename(k->v, dir, name, dir, p->moved_to +
				 (name - k->pdata[p->moved]->path), 0);
		if (ret)
			fail(k, CS_FAIL_POST, "host B renaming %s: %s",
			     k->pdata[p->moved]->path, vmfs_strerror(ret));
	} else {
		p->moved = 0;
	}
	if (p->dropped && !post_resolve(k->v, k->pdata[p->dropped]->path, &dir,
					&name)) {
		snprintf(p->dropped_path, sizeof(p->dropped_path), "%s",
			 k->pdata[p->dropped]->path);
		ret = vol_unlink(k->v, dir, name);
		if (ret)
			fail(k, CS_FAIL_POST, "host B unlinking %s: %s",
			     p->dropped_path, vmfs_strerror(ret));
		/* Nothing of it is promised any more. */
		k->pdata[p->dropped] = k->pxattr[p->dropped] = NULL;
	} else {
		p->dropped = 0;
	}
	post_fill(buf);
	for (unsigned i = 0; i < 2; i++) {
		struct vol_attr a;
		ssize_t w;

		ret = vol_lookup(k->v, VMFS_ROOT_INO, top[i] + 1, &a);
		if (ret)
			continue;	/* made after the crash: the walk says */
		vol_forget(k->v, a.ino, 1);
		dir = a.ino;
		snprintf(p->made[i], sizeof(p->made[i]), "%s/post-b", top[i]);
		ret = vol_create(k->v, dir, "post-b", S_IFREG | 0644, 0, 0, 0, &a);
		if (!ret) {
			w = vol_write(k->v, a.ino, buf, POST_SECTORS * CS_SECTOR, 0);
			ret = w == POST_SECTORS * CS_SECTOR ? 0 : w < 0 ? (int)w : -EIO;
			vol_forget(k->v, a.ino, 1);
		}
		if (ret) {
			fail(k, CS_FAIL_POST, "host B creating %s: %s", p->made[i],
			     vmfs_strerror(ret));
			p->made[i][0] = 0;
		}
	}
}

/* ---- the tree ------------------------------------------------------------------- */

struct dent {
	char name[VMFS_NAME_MAX + 1];
	uint64_t ino;
	uint32_t mode;
};

struct dents {
	struct dent *v;
	size_t n, cap;
	bool oom;
};

static int dents_add(void *ctx, const char *name, const struct vol_attr *a,
		     uint64_t next)
{
	struct dents *d = ctx;

	(void)next;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 32;
		void *p = realloc(d->v, cap * sizeof(*d->v));

		if (!p) {
			d->oom = true;
			return 1;
		}
		d->v = p;
		d->cap = cap;
	}
	snprintf(d->v[d->n].name, sizeof(d->v[d->n].name), "%s", name);
	d->v[d->n].ino = a->ino;
	d->v[d->n].mode = a->mode;
	d->n++;
	return 0;
}

static int list_dir(struct vol *v, uint64_t ino, struct dents *d)
{
	int ret;

	memset(d, 0, sizeof(*d));
	ret = vol_readdir(v, ino, 0, false, dents_add, d);
	if (!ret && d->oom)
		ret = -ENOMEM;
	return ret;
}

static bool had_dir(const struct cs_model *m, const struct cs_path *p)
{
	for (size_t i = 0; p && i < p->nids; i++)
		if (m->nodes[p->ids[i]].dir)
			return true;
	return false;
}

static void walk(struct chk *k, uint64_t ino, const char *path, unsigned depth)
{
	struct dents d;
	char child[1024];
	int ret = list_dir(k->v, ino, &d);

	if (ret) {
		fail(k, CS_FAIL_GARBAGE, "%s: readdir: %s", path, vmfs_strerror(ret));
		free(d.v);
		return;
	}
	for (size_t i = 0; i < d.n; i++) {
		const struct cs_path *hist;

		snprintf(child, sizeof(child), "%s/%s", strcmp(path, "/") ? path : "",
			 d.v[i].name);
		hist = cs_path_find(k->m, child);
		if (S_ISDIR(d.v[i].mode)) {
			if (!had_dir(k->m, hist))
				fail(k, CS_FAIL_GARBAGE, "%s: a directory the workload never made here",
				     child);
			else if (depth < MAX_DEPTH)
				walk(k, d.v[i].ino, child, depth + 1);
		} else if (S_ISREG(d.v[i].mode)) {
			if (k->post && post_file(k, child, d.v[i].ino))
				continue;
			if (!hist)
				fail(k, CS_FAIL_GARBAGE, "%s: a name the workload never used",
				     child);
			else
				check_file(k, child, child, d.v[i].ino);
		} else {
			fail(k, CS_FAIL_GARBAGE, "%s: unexpected type 0%o", child,
			     d.v[i].mode & S_IFMT);
		}
	}
	free(d.v);
}

/* ---- one state -------------------------------------------------------------------- */

struct fsck_cap {
	char *buf;
	size_t len;
	unsigned n;
};

static void fsck_report(void *ctx, const struct fsck_problem_info *p,
			uint64_t addr, const char *detail, bool fixed)
{
	struct fsck_cap *c = ctx;

	(void)fixed;
	if (++c->n <= 6)
		cs_msg(c->buf, c->len, "      %s at 0x%" PRIx64 ": %s\n", p->name,
		       addr, detail ? detail : p->message);
	else if (c->n == 7)
		cs_msg(c->buf, c->len, "      ...\n");
}

bool cs_fsck_clean(struct lun *lun, const char *tmp_dir, char *msg,
		   size_t len)
{
	char reports[2048] = "";
	struct fsck_cap cap = { reports, sizeof(reports), 0 };
	struct fsck_opts o;
	struct fsck_result r;
	int ret;

	fsck_opts_init(&o);
	o.mode = FSCK_MODE_NO;
	o.tmp_dir = tmp_dir;
	o.mem_limit_bytes = 64ull << 20;
	o.report = fsck_report;
	o.ctx = &cap;
	memset(&r, 0, sizeof(r));
	ret = fsck_run(lun, &o, &r);
	/* fsck_run returns the exit code, or a negative error. */
	if (ret >= 0 && r.exit_code == FSCK_EXIT_OK)
		return true;
	snprintf(msg, len, "fsck -n exit %d (%" PRIu64 " problems)%s%s%s%s\n%s",
		 r.exit_code, r.problems_found, r.error[0] ? ": " : "", r.error,
		 ret < 0 ? "; fsck_run: " : "", ret < 0 ? vmfs_strerror(ret) : "",
		 reports);
	return false;
}

static void run_fsck(struct chk *k, const struct cs_check_ctx *c)
{
	char out[2600];
	char *nl;

	if (cs_fsck_clean(c->lun, c->tmp_dir, out, sizeof(out)))
		return;
	nl = strchr(out, '\n');
	if (nl)
		*nl++ = 0;
	fail(k, CS_FAIL_FSCK, "%s", out);
	cs_msg(k->msg, k->len, "%s", nl ? nl : "");
}

unsigned cs_check_state(const struct cs_check_ctx *c, uint32_t durable,
			uint32_t crash, int64_t cut_ns, char *msg, size_t len,
			struct cs_check_stats *st)
{
	const struct cs_model *m = c->m;
	struct chk k = { .m = m, .msg = msg, .len = len, .st = st,
			 .cut_ns = cut_ns };
	struct post post;
	int ret;

	memset(&post, 0, sizeof(post));
	msg[0] = 0;
	k.pdata = calloc(m->nnodes, sizeof(*k.pdata));
	k.pxattr = calloc(m->nnodes, sizeof(*k.pxattr));
	k.seen = calloc(m->nnodes, sizeof(*k.seen));
	k.buf = lun_buf_alloc(READ_CHUNK);
	if (!k.pdata || !k.pxattr || !k.seen || !k.buf) {
		fail(&k, CS_FAIL_HARNESS, "out of memory");
		goto out;
	}

	for (size_t i = 2; i < m->nnodes; i++) {
		if (m->nodes[i].dir)
			continue;
		k.pdata[i] = cs_promise(&m->nodes[i], durable, crash, cut_ns,
					CS_TOUCH_DATA);
		k.pxattr[i] = cs_promise(&m->nodes[i], durable, crash, cut_ns,
					 CS_TOUCH_DATA | CS_TOUCH_XATTR);
		if (k.pdata[i] && k.pdata[i]->gone)
			st->gone++;
	}

	if (c->hosts > 1) {
		char why[512] = "";

		k.post = &post;
		ret = cs_host_recover_b(c->lun, c->seed, &k.v, why, sizeof(why));
		if (!ret)
			post_ops(&k, c->state_seed);
		else
			fail(&k, CS_FAIL_OPEN, "host B recovering A: %s", why);
	} else {
		ret = vol_open(c->lun, 0, &k.v);
		if (ret)
			fail(&k, CS_FAIL_OPEN, "vol_open (replay): %s",
			     vmfs_strerror(ret));
	}
	if (ret) {
		run_fsck(&k, c);	/* what is wrong, for the report */
		goto out;
	}
	ret = vol_close(k.v);
	k.v = NULL;
	if (ret)
		fail(&k, CS_FAIL_CLOSE, "vol_close after replay: %s",
		     vmfs_strerror(ret));
	run_fsck(&k, c);

	ret = vol_open(c->lun, VOL_RDONLY, &k.v);
	if (ret) {
		fail(&k, CS_FAIL_REOPEN, "read-only vol_open: %s", vmfs_strerror(ret));
		goto out;
	}
	walk(&k, VMFS_ROOT_INO, "/", 0);
	for (unsigned i = 0; i < 2 && k.post; i++)
		if (post.made[i][0] && !post.made_seen[i])
			fail(&k, CS_FAIL_POST, "%s: host B created it after recovering A, but it is missing",
			     post.made[i]);
	for (size_t i = 2; i < m->nnodes; i++) {
		char why[160];

		if (k.pdata[i] && !k.pdata[i]->gone && !k.seen[i])
			fail(&k, CS_FAIL_LOST, "%s: %s (%" PRIu64
			     " bytes) and untouched since, but missing",
			     k.pdata[i]->path, promised(&k, k.pdata[i], why, sizeof(why)),
			     k.pdata[i]->size);
	}
	vol_close(k.v);
out:
	free(k.pdata);
	free(k.pxattr);
	free(k.seen);
	lun_buf_free(k.buf);
	return k.fails;
}

/* ---- the final volume against the model --------------------------------------------- */

static int verify_file(struct chk *k, const struct cs_node *n, const char *path)
{
	struct vol_attr a;
	uint64_t ns = (n->size + CS_SECTOR - 1) / CS_SECTOR;
	int ret = vol_getattr(k->v, n->ino, &a);

	if (ret || !S_ISREG(a.mode) || a.size != n->size) {
		fail(k, CS_FAIL_HARNESS, "%s: inode %" PRIu64 ": %s, size %" PRIu64 ", model %" PRIu64,
		     path, n->ino, ret ? vmfs_strerror(ret) : "ok", ret ? 0 : a.size,
		     n->size);
		return -1;
	}
	for (uint64_t s = 0; s < ns; s++) {
		uint64_t off = s * CS_SECTOR;
		size_t len = n->size - off < CS_SECTOR ? (size_t)(n->size - off)
						       : CS_SECTOR;
		bool same;

		if (off % READ_CHUNK == 0) {
			size_t want = n->size - off < READ_CHUNK ?
				      (size_t)(n->size - off) : READ_CHUNK;

			if (vol_read(k->v, n->ino, k->buf, want, off) != (ssize_t)want) {
				fail(k, CS_FAIL_HARNESS, "%s: read at %" PRIu64 " failed",
				     path, off);
				return -1;
			}
		}
		same = n->sect[s] ? cs_sector_is(k->buf + off % READ_CHUNK, len, n->id,
						 n->sect[s], off)
				  : cs_is_zero(k->buf + off % READ_CHUNK, len);
		if (!same) {
			fail(k, CS_FAIL_HARNESS, "%s: sector at %" PRIu64 " is not %s%u",
			     path, off, n->sect[s] ? "v" : "zeros", n->sect[s]);
			return -1;
		}
	}
	for (uint32_t s = 0; s < CS_NXATTR; s++) {
		uint8_t val[300], want[300];
		char name[16];
		ssize_t vl;
		size_t wl;

		cs_xattr_name(s, name);
		vl = vol_getxattr(k->v, n->ino, name, val, sizeof(val));
		if (!n->xattr[s] ? vl != -ENODATA
				 : (wl = cs_xattr_fill(want, sizeof(want), n->id, s,
						       n->xattr[s]),
				    vl != (ssize_t)wl || memcmp(val, want, wl))) {
			fail(k, CS_FAIL_HARNESS, "%s: xattr %s is not the model's (v%u)",
			     path, name, n->xattr[s]);
			return -1;
		}
	}
	return 0;
}

int cs_model_verify(struct vol *v, const struct cs_model *m, char *err,
		    size_t errlen)
{
	struct cs_check_stats st = { 0 };
	struct chk k = { .m = m, .v = v, .msg = err, .len = errlen, .st = &st };
	char path[512];

	err[0] = 0;
	k.buf = lun_buf_alloc(READ_CHUNK);
	if (!k.buf)
		return -ENOMEM;
	for (size_t i = 0; i < m->nnodes && !k.fails; i++) {
		const struct cs_node *n = &m->nodes[i];
		struct dents d;
		size_t want = 0;

		if (!n->live)
			continue;
		cs_node_path(m, n->id, path, sizeof(path));
		if (!n->dir) {
			verify_file(&k, n, path);
			continue;
		}
		if (list_dir(v, n->ino, &d)) {
			fail(&k, CS_FAIL_HARNESS, "%s: readdir failed", path);
			free(d.v);
			break;
		}
		for (size_t j = 1; j < m->nnodes; j++)
			if (m->nodes[j].live && m->nodes[j].parent == n->id && j != i)
				want++;
		if (d.n != want)
			fail(&k, CS_FAIL_HARNESS, "%s: %zu entries, model has %zu",
			     path, d.n, want);
		for (size_t j = 0; j < d.n && !k.fails; j++) {
			char child[1024];
			const struct cs_path *p;
			bool ok = false;

			snprintf(child, sizeof(child), "%s/%s", i ? path : "",
				 d.v[j].name);
			p = cs_path_find(m, child);
			for (size_t x = 0; p && x < p->nids; x++) {
				const struct cs_node *c = &m->nodes[p->ids[x]];

				ok |= c->live && c->parent == n->id &&
				      !strcmp(c->name, d.v[j].name) && c->ino == d.v[j].ino;
			}
			if (!ok)
				fail(&k, CS_FAIL_HARNESS, "%s: not in the model (inode %" PRIu64 ")",
				     child, d.v[j].ino);
		}
		free(d.v);
	}
	lun_buf_free(k.buf);
	return k.fails ? -EIO : 0;
}
