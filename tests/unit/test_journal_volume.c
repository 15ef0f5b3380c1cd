/*
 * Journal after a crash, end to end through the library: a volume made
 * and used through the engine on a fault-injecting LUN, a commit forced
 * with vol_sync(), then every write failing from a chosen offset on, so
 * the committed transaction is durable in the journal while its home
 * blocks are only partly written (inodes home, directory chunks not) --
 * a crash between commit and checkpoint.  Then, on the raw file:
 * jnl_walk sees the transaction, fsck -n reads through it (exit 0), the
 * home blocks are stale until jnl_replay, a second replay is a no-op,
 * fsck -y replays and counts it as a fix, and vol_open shows the files.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "vmfs/log.h"
#include "unit.h"
#include "vmfs/format.h"
#include "vmfs/fsck.h"
#include "vmfs/journal.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"
#include "../../tools/corrupt/corrupt.h"
#include "../../vol/vol_int.h"

#define MIB (1024ull * 1024)
#define DATA_LEN (200 * 1024)

/* What the crashed volume holds once its journal is replayed. */
struct crashed {
	const char *path;
	uint64_t dir_ino, file_ino, inline_ino;
};

static void pattern(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 31 + i * 13 + (i >> 11));
}


static void mkvol(const char *path)
{
	struct vol_mkfs_opts o;
	struct lun *lun;

	unit_scratch_opts(&o);
	o.label = "jnl";
	unit_scratch_mkfs(path, 512 * MIB, &o, &lun);
	lun_close(lun);
}

/* Open path through the fault wrapper, with commits only when asked. */
static struct vol *open_faulty(const char *path, struct lun **lun)
{
	struct vol_open_opts o = { .commit_ms = 60000 };
	struct lun *inner;
	struct vol *v = NULL;

	CU_ASSERT_FATAL(lun_open(path, 0, &inner) == 0);
	CU_ASSERT_FATAL(lun_fault_wrap(inner, lun) == 0);
	CU_ASSERT_FATAL(vol_open_ex(*lun, &o, &v) == 0);
	return v;
}

/* Wait for the commit thread to give up on the failed home writes. */
static void wait_jnl_error(struct vol *v)
{
	for (int i = 0; i < 500 && !jnl_error(v->j); i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	CU_ASSERT_FATAL(jnl_error(v->j) != 0);
}

/*
 * Make c->path: /d (a directory), /d/big (DATA_LEN bytes in small
 * blocks), /d/inline (inline data), /s -> d/big; committed by vol_sync
 * while writes at or past the small-block area fail, then "crash".
 */
static void make_crashed(struct crashed *c)
{
	uint8_t *buf = malloc(DATA_LEN);
	struct jnl_stats st;
	struct vol_attr a;
	struct vol_geom g;
	struct lun *lun;
	struct vol *v;

	CU_ASSERT_FATAL(buf != NULL);
	mkvol(c->path);
	v = open_faulty(c->path, &lun);
	vol_geom_get(v, &g);
	CU_ASSERT_FATAL(vol_mkdir(v, VMFS_ROOT_INO, "d", 0755, 0, 0, &a) == 0);
	c->dir_ino = a.ino;
	CU_ASSERT_FATAL(vol_create(v, c->dir_ino, "big", S_IFREG | 0644, 0, 0,
				   0, &a) == 0);
	c->file_ino = a.ino;
	pattern(buf, DATA_LEN, 1);
	CU_ASSERT_FATAL(vol_write(v, c->file_ino, buf, DATA_LEN, 0) == DATA_LEN);
	CU_ASSERT_FATAL(vol_create(v, c->dir_ino, "inline", S_IFREG | 0600, 0, 0,
				   0, &a) == 0);
	c->inline_ino = a.ino;
	pattern(buf, 100, 2);
	CU_ASSERT_FATAL(vol_write(v, c->inline_ino, buf, 100, 0) == 100);
	CU_ASSERT_FATAL(vol_symlink(v, VMFS_ROOT_INO, "s", "d/big", 0, 0, &a) == 0);
	/* Nothing committed yet (60 s interval): one transaction holds it all. */
	vol_journal_stats(v, &st);
	CU_ASSERT_EQUAL(st.commits, 0);

	/*
	 * The ring, the header and the inode area sit below the small-block
	 * area: the commit succeeds and the inodes reach home, the directory
	 * chunks and the small-block cluster header do not.
	 */
	lun_fault_fail_writes_from(lun, g.res[VMFS_RES_SMALL].hdr_offset, -EIO);
	CU_ASSERT_EQUAL(vol_sync(v), 0);
	wait_jnl_error(v);
	/* The crash: nothing more reaches the LUN. */
	lun_fault_fail_writes_from(lun, 0, -EIO);
	CU_ASSERT(vol_close(v) != 0);
	lun_close(lun);
	free(buf);
}

/* Is name in the first chunk of directory ino, as it is on disk now? */
static bool raw_dir_has(struct lun *lun, const struct vol_geom *g,
			uint64_t ino, const char *name)
{
	uint8_t *blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	const struct vmfs_inode *di = (const void *)(blk + VMFS_OBJ_OFFSET);
	const struct vmfs_dirblk *db = (const void *)blk;
	const struct vol_res_geom *r = &g->res[VMFS_RES_INODE];
	uint64_t chunk;
	bool found = false;

	CU_ASSERT_FATAL(blk != NULL);
	CU_ASSERT_FATAL(lun_read(lun, blk, VMFS_MD_BLOCK_SIZE,
				 r->obj_offset + ino * r->obj_size) == 0);
	chunk = vmfs_ptr_addr(fmt_ptr_load(&di->di_map[0]));
	CU_ASSERT_FATAL(chunk != 0);
	CU_ASSERT_FATAL(lun_read(lun, blk, VMFS_MD_BLOCK_SIZE, chunk) == 0);
	for (int i = 0; i < VMFS_DIRENTS_PER_CHUNK; i++)
		if (db->db_ents[i].de_ino &&
		    db->db_ents[i].de_name_len == strlen(name) &&
		    !memcmp(db->db_ents[i].de_name, name, strlen(name)))
			found = true;
	lun_buf_free(blk);
	return found;
}

/* Info lines and problem reports of one fsck run. */
struct info_lines {
	char text[8192];
};

static void collect_info(void *ctx, const char *line)
{
	struct info_lines *l = ctx;
	size_t n = strlen(l->text);

	snprintf(l->text + n, sizeof(l->text) - n, "%s\n", line);
}

static struct {
	enum fsck_problem code[16];
	bool fixed[16];
	unsigned n;
} reported;

static void collect_report(void *ctx, const struct fsck_problem_info *p,
			   uint64_t addr, const char *detail, bool fixed)
{
	struct info_lines *l = ctx;
	size_t n = strlen(l->text);

	(void)addr;
	snprintf(l->text + n, sizeof(l->text) - n, "%s: %s ... %s\n", p->name,
		 detail, fixed ? "fixed" : "NOT fixed");
	if (reported.n < 16) {
		reported.code[reported.n] = p->code;
		reported.fixed[reported.n++] = fixed;
	}
}

/*
 * Run fsck on path in mode; true when it exits with want.  Otherwise the
 * problems, info lines and error are printed, to rerun by hand.
 */
static bool fsck_is(const char *path, enum fsck_mode mode, int want,
		    struct info_lines *info, struct fsck_result *r)
{
	struct fsck_opts o;
	struct lun *lun;
	int rc;

	fsck_opts_init(&o);
	o.mode = mode;
	o.info = collect_info;
	o.report = collect_report;
	o.ctx = info;
	memset(info, 0, sizeof(*info));
	reported.n = 0;
	CU_ASSERT_FATAL(lun_open(path, mode == FSCK_MODE_NO ? LUN_RDONLY : 0,
				 &lun) == 0);
	rc = fsck_run(lun, &o, r);
	lun_close(lun);
	if (rc != want)
		fprintf(stderr, "\n  fsck mode %d of %s exited %d, want %d: %s\n%s",
			mode, path, rc, want, r->error, info->text);
	return rc == want;
}

static int count_txn(void *ctx, const struct jnl_txn *t)
{
	uint64_t *n = ctx;

	*n += t->nimages;
	return 0;
}

/* The files of make_crashed, through the engine. */
static void check_files(const struct crashed *c)
{
	uint8_t *buf = malloc(DATA_LEN), *want = malloc(DATA_LEN);
	struct vol_attr a;
	struct lun *lun;
	struct vol *v;
	char target[64];

	CU_ASSERT_FATAL(buf && want);
	CU_ASSERT_FATAL(lun_open(c->path, 0, &lun) == 0);
	CU_ASSERT_FATAL(vol_open(lun, 0, &v) == 0);
	CU_ASSERT_EQUAL_FATAL(vol_lookup(v, VMFS_ROOT_INO, "d", &a), 0);
	CU_ASSERT_EQUAL(a.ino, c->dir_ino);
	CU_ASSERT_EQUAL_FATAL(vol_lookup(v, c->dir_ino, "big", &a), 0);
	CU_ASSERT_EQUAL(a.size, DATA_LEN);
	pattern(want, DATA_LEN, 1);
	CU_ASSERT_EQUAL(vol_read(v, c->file_ino, buf, DATA_LEN, 0), DATA_LEN);
	CU_ASSERT(memcmp(buf, want, DATA_LEN) == 0);
	CU_ASSERT_EQUAL_FATAL(vol_lookup(v, c->dir_ino, "inline", &a), 0);
	pattern(want, 100, 2);
	CU_ASSERT_EQUAL(vol_read(v, c->inline_ino, buf, 200, 0), 100);
	CU_ASSERT(memcmp(buf, want, 100) == 0);
	CU_ASSERT_EQUAL_FATAL(vol_lookup(v, VMFS_ROOT_INO, "s", &a), 0);
	CU_ASSERT_EQUAL(vol_readlink(v, a.ino, target, sizeof(target)), 5);
	CU_ASSERT(memcmp(target, "d/big", 5) == 0);
	CU_ASSERT_EQUAL(vol_close(v), 0);
	lun_close(lun);
	free(buf);
	free(want);
}

static void test_crash_replay(void)
{
	struct crashed c = { .path = unit_tmp_path("crash.img") };
	struct jnl_walk_result w, w2;
	struct info_lines info;
	struct fsck_result r;
	struct jnl_bounds b;
	struct vol_geom g;
	struct lun *lun;
	uint64_t off, nimg = 0;

	make_crashed(&c);
	CU_ASSERT_FATAL(lun_open(c.path, 0, &lun) == 0);
	CU_ASSERT_FATAL(vol_geom_read(lun, &g, NULL, NULL) == 0);
	b = vol_jnl_bounds(&g);
	off = g.journal_offset;       /* slot 0: vol_open's default */

	/* The journal holds the operations, the home chunks do not. */
	CU_ASSERT_EQUAL(jnl_walk(lun, off, &b, false, count_txn, &nimg, &w), 0);
	CU_ASSERT_EQUAL(w.hdr.state, VMFS_JNL_DIRTY);
	CU_ASSERT(w.ntxn >= 1);
	CU_ASSERT_EQUAL(nimg, w.nimages);
	CU_ASSERT(w.nimages >= 4);
	CU_ASSERT_FALSE(raw_dir_has(lun, &g, VMFS_ROOT_INO, "d"));
	lun_close(lun);

	/* fsck -n checks the volume as it will be after replay: clean. */
	CU_ASSERT(fsck_is(c.path, FSCK_MODE_NO, FSCK_EXIT_OK, &info, &r));
	CU_ASSERT_EQUAL(r.problems_found, 0);
	CU_ASSERT(strstr(info.text, "slot 0: its journal holds") != NULL);
	CU_ASSERT(strstr(info.text, "will replay") != NULL);
	/* ... and wrote nothing. */
	CU_ASSERT_FATAL(lun_open(c.path, 0, &lun) == 0);
	CU_ASSERT_FALSE(raw_dir_has(lun, &g, VMFS_ROOT_INO, "d"));

	/* Replay applies what the walk saw, once. */
	CU_ASSERT_EQUAL(jnl_replay(lun, off, &b, &w2), 0);
	CU_ASSERT_EQUAL(w2.ntxn, w.ntxn);
	CU_ASSERT_EQUAL(w2.nimages, w.nimages);
	CU_ASSERT_TRUE(raw_dir_has(lun, &g, VMFS_ROOT_INO, "d"));
	CU_ASSERT_TRUE(raw_dir_has(lun, &g, c.dir_ino, "big"));
	CU_ASSERT_EQUAL(jnl_replay(lun, off, &b, &w2), 0);
	CU_ASSERT_EQUAL(w2.ntxn, 0);
	CU_ASSERT_EQUAL(w2.stop, JNL_STOP_CLEAN);
	CU_ASSERT_EQUAL(jnl_walk(lun, off, &b, false, NULL, NULL, &w2), 0);
	CU_ASSERT_EQUAL(w2.hdr.state, VMFS_JNL_CLEAN);
	lun_close(lun);

	CU_ASSERT(fsck_is(c.path, FSCK_MODE_NO, FSCK_EXIT_OK, &info, &r));
	CU_ASSERT(strstr(info.text, "will replay") == NULL);
	check_files(&c);
	CU_ASSERT(fsck_is(c.path, FSCK_MODE_NO, FSCK_EXIT_OK, &info, &r));
}

/* fsck -y and -p replay a crashed journal themselves; it counts as a fix. */
static void test_fsck_replays(void)
{
	static const enum fsck_mode modes[] = { FSCK_MODE_YES, FSCK_MODE_PREEN };

	for (size_t m = 0; m < 2; m++) {
		struct crashed c = { .path = unit_tmp_path("crash-fsck.img") };
		struct info_lines info;
		struct fsck_result r;

		make_crashed(&c);
		CU_ASSERT(fsck_is(c.path, modes[m], FSCK_EXIT_FIXED,
				  &info, &r));
		CU_ASSERT_EQUAL(r.problems_found, 1);
		CU_ASSERT_EQUAL(r.problems_fixed, 1);
		CU_ASSERT_EQUAL(reported.n, 1);
		CU_ASSERT_EQUAL(reported.code[0], PR_2_JOURNAL_DIRTY);
		CU_ASSERT_TRUE(reported.fixed[0]);
		CU_ASSERT(strstr(info.text, "slot 0: replayed") != NULL);
		CU_ASSERT(fsck_is(c.path, FSCK_MODE_NO, FSCK_EXIT_OK,
				  &info, &r));
		CU_ASSERT_EQUAL(r.problems_found, 0);
		check_files(&c);
	}
}

/*
 * A host that crashed while idle leaves its journal dirty with nothing
 * committed: no problem for fsck -n, and -p marks it clean unasked
 * without calling it a fix.
 */
static void test_dirty_idle(void)
{
	const char *path = unit_tmp_path("idle.img");
	struct jnl_walk_result w;
	struct info_lines info;
	struct fsck_result r;
	struct jnl_bounds b;
	struct vol_geom g;
	struct lun *lun;
	struct vol *v;

	mkvol(path);
	v = open_faulty(path, &lun);
	lun_fault_fail_writes_from(lun, 0, -EIO);
	CU_ASSERT(vol_close(v) != 0);
	lun_close(lun);

	CU_ASSERT_FATAL(lun_open(path, 0, &lun) == 0);
	CU_ASSERT_FATAL(vol_geom_read(lun, &g, NULL, NULL) == 0);
	b = vol_jnl_bounds(&g);
	CU_ASSERT_EQUAL(jnl_walk(lun, g.journal_offset, &b, false, NULL, NULL,
				 &w), 0);
	CU_ASSERT_EQUAL(w.hdr.state, VMFS_JNL_DIRTY);
	CU_ASSERT_EQUAL(w.ntxn, 0);
	lun_close(lun);

	CU_ASSERT(fsck_is(path, FSCK_MODE_NO, FSCK_EXIT_OK, &info, &r));
	CU_ASSERT_EQUAL(r.problems_found, 0);
	CU_ASSERT(fsck_is(path, FSCK_MODE_PREEN, FSCK_EXIT_OK, &info, &r));
	CU_ASSERT_EQUAL(r.problems_found, 0);
	CU_ASSERT(strstr(info.text, "nothing committed") != NULL);

	CU_ASSERT_FATAL(lun_open(path, LUN_RDONLY, &lun) == 0);
	CU_ASSERT_EQUAL(jnl_walk(lun, g.journal_offset, &b, false, NULL, NULL,
				 &w), 0);
	CU_ASSERT_EQUAL(w.hdr.state, VMFS_JNL_CLEAN);
	lun_close(lun);
}

/*
 * The promise of the commit interval (docs/journal.md): work that no one
 * syncs is durable within the interval, also when nothing else wakes the
 * commit thread.  Open with a 50 ms interval, let the first commit (of
 * the mount itself) go by so the commit thread is asleep with nothing to
 * do, then change the volume in every way a host does without syncing
 * (create, write, mkdir, rename, unlink, setattr, xattrs, truncate,
 * fallocate), wait ten intervals, and crash: no write reaches the LUN
 * any more.  Every change must be there after replay.
 */
static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void test_idle_commit(void)
{
	const char *path = unit_tmp_path("idlecommit.img");
	struct vol_open_opts oo = { .commit_ms = 50 };
	struct vol_setattr sa = { .mode = 0640 };
	uint64_t d_ino, f_ino, g_ino;
	uint8_t buf[8192], got[8192];
	struct info_lines info;
	struct fsck_result r;
	struct jnl_stats st;
	uint64_t commits0;
	struct lun *inner, *lun;
	struct vol_attr a;
	struct vol *v;

	mkvol(path);
	CU_ASSERT_FATAL(lun_open(path, 0, &inner) == 0);
	CU_ASSERT_FATAL(lun_fault_wrap(inner, &lun) == 0);
	CU_ASSERT_FATAL(vol_open_ex(lun, &oo, &v) == 0);
	sleep_ms(300);
	vol_journal_stats(v, &st);
	commits0 = st.commits;

	CU_ASSERT_FATAL(vol_mkdir(v, VMFS_ROOT_INO, "d", 0755, 0, 0, &a) == 0);
	d_ino = a.ino;
	CU_ASSERT_FATAL(vol_create(v, d_ino, "f", S_IFREG | 0644, 0, 0, 0, &a) == 0);
	f_ino = a.ino;
	pattern(buf, sizeof(buf), 7);
	CU_ASSERT_FATAL(vol_write(v, f_ino, buf, sizeof(buf), 0) == sizeof(buf));
	CU_ASSERT_FATAL(vol_create(v, VMFS_ROOT_INO, "gone", S_IFREG | 0644, 0, 0,
				   0, &a) == 0);
	CU_ASSERT_FATAL(vol_create(v, VMFS_ROOT_INO, "g", S_IFREG | 0644, 0, 0, 0,
				   &a) == 0);
	g_ino = a.ino;
	CU_ASSERT_FATAL(vol_rename(v, d_ino, "f", VMFS_ROOT_INO, "f2", 0) == 0);
	CU_ASSERT_FATAL(vol_unlink(v, VMFS_ROOT_INO, "gone") == 0);
	CU_ASSERT_FATAL(vol_setattr(v, f_ino, &sa, VOL_SET_MODE, &a) == 0);
	CU_ASSERT_FATAL(vol_setxattr(v, f_ino, "user.k", "v1", 2, 0) == 0);
	sa.size = 5000;
	CU_ASSERT_FATAL(vol_setattr(v, f_ino, &sa, VOL_SET_SIZE, &a) == 0);
	CU_ASSERT_FATAL(vol_fallocate(v, g_ino, 0, 0, 3 * MIB) == 0);
	vol_forget(v, d_ino, 1);
	vol_forget(v, f_ino, 1);
	vol_forget(v, g_ino, 1);

	sleep_ms(500);
	vol_journal_stats(v, &st);
	CU_ASSERT(st.commits > commits0);
	/* The crash: nothing more reaches the LUN. */
	lun_fault_fail_writes_from(lun, 0, -EIO);
	CU_ASSERT(vol_close(v) != 0);
	lun_close(lun);

	CU_ASSERT_FATAL(lun_open(path, 0, &lun) == 0);
	CU_ASSERT_FATAL(vol_open(lun, 0, &v) == 0);
	CU_ASSERT_EQUAL(vol_lookup(v, VMFS_ROOT_INO, "d", &a), 0);
	CU_ASSERT_EQUAL(vol_lookup(v, VMFS_ROOT_INO, "gone", &a), -ENOENT);
	CU_ASSERT_EQUAL(vol_lookup(v, d_ino, "f", &a), -ENOENT);
	CU_ASSERT_EQUAL_FATAL(vol_lookup(v, VMFS_ROOT_INO, "f2", &a), 0);
	CU_ASSERT_EQUAL(a.ino, f_ino);
	CU_ASSERT_EQUAL(a.mode & 07777, 0640);
	CU_ASSERT_EQUAL(a.size, 5000);
	CU_ASSERT_EQUAL(vol_read(v, f_ino, got, sizeof(got), 0), 5000);
	CU_ASSERT(memcmp(got, buf, 5000) == 0);
	CU_ASSERT_EQUAL(vol_getxattr(v, f_ino, "user.k", got, sizeof(got)), 2);
	CU_ASSERT_EQUAL_FATAL(vol_lookup(v, VMFS_ROOT_INO, "g", &a), 0);
	CU_ASSERT_EQUAL(a.size, 3 * MIB);
	CU_ASSERT(a.alloc_bytes >= 3 * MIB);
	CU_ASSERT_EQUAL(vol_close(v), 0);
	lun_close(lun);
	CU_ASSERT(fsck_is(path, FSCK_MODE_NO, FSCK_EXIT_OK, &info, &r));
}

/*
 * The bound on what a crash loses holds while commits keep up; when they
 * do not, vmfsd says so (docs/OPERATIONS.md).  Every write takes 100 ms
 * and the interval is 20 ms: the commit of one create becomes durable
 * well past two intervals, and the warning names it.
 */
static void test_late_warning(void)
{
	const char *path = unit_tmp_path("late.img");
	struct vol_open_opts oo = { .commit_ms = 20 };
	struct lun *inner, *lun;
	struct vol_attr a;
	struct vol *v;
	const char *warn_text;

	mkvol(path);
	unit_log_collect_begin();

	CU_ASSERT_FATAL(lun_open(path, 0, &inner) == 0);
	CU_ASSERT_FATAL(lun_fault_wrap(inner, &lun) == 0);
	CU_ASSERT_FATAL(vol_open_ex(lun, &oo, &v) == 0);
	lun_fault_set_latency(lun, 0, 100 * 1000);
	CU_ASSERT_FATAL(vol_create(v, VMFS_ROOT_INO, "slow", S_IFREG | 0644, 0,
				   0, 0, &a) == 0);
	vol_forget(v, a.ino, 1);
	CU_ASSERT_EQUAL(vol_sync(v), 0);
	lun_fault_set_latency(lun, 0, 0);
	CU_ASSERT_EQUAL(vol_close(v), 0);
	lun_close(lun);

	warn_text = unit_log_collect_end();
	CU_ASSERT(strstr(warn_text, "became durable") != NULL);
	CU_ASSERT(strstr(warn_text, "commit interval 20 ms") != NULL);
	if (!strstr(warn_text, "became durable"))
		fprintf(stderr, "\n  warnings logged: %s\n", warn_text);
}

/*
 * Rewrite the journal header at off as format major.minor wrote it
 * (the same fields, sealed with that version).
 */
static void jnl_header_as(struct lun *lun, uint64_t off, uint16_t major,
			  uint16_t minor)
{
	uint8_t *blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);

	CU_ASSERT_FATAL(blk != NULL);
	CU_ASSERT_FATAL(lun_read(lun, blk, VMFS_MD_BLOCK_SIZE, off) == 0);
	lun_md_seal_version(blk + VMFS_OBJ_OFFSET, VMFS_MAGIC_JOURNAL, off,
			    VMFS_MD_BLOCK_SIZE - VMFS_OBJ_OFFSET, major, minor);
	CU_ASSERT_FATAL(lun_write(lun, blk, VMFS_MD_BLOCK_SIZE, off) == 0);
	lun_buf_free(blk);
}

/*
 * Versions (SPEC §14): a dirty journal a newer minor of this major
 * wrote is refused (its records may mean more than this host knows); one
 * that format 1.1 wrote replays, its records being those of today; one
 * of a newer major never verifies.
 */
static void test_versions(void)
{
	struct crashed c = { .path = unit_tmp_path("versions.img") };
	struct jnl_walk_result w;
	struct jnl_bounds b;
	struct vol_geom g;
	struct lun *lun;

	make_crashed(&c);
	CU_ASSERT_FATAL(lun_open(c.path, 0, &lun) == 0);
	CU_ASSERT_FATAL(vol_geom_read(lun, &g, NULL, NULL) == 0);
	b = vol_jnl_bounds(&g);

	jnl_header_as(lun, g.journal_offset, VMFS_FORMAT_MAJOR, VMFS_FORMAT_MINOR + 1);
	CU_ASSERT_EQUAL(jnl_walk(lun, g.journal_offset, &b, false, NULL, NULL, &w),
			-VMFS_E_BAD_VERSION);
	CU_ASSERT_EQUAL(jnl_replay(lun, g.journal_offset, &b, &w),
			-VMFS_E_BAD_VERSION);
	jnl_header_as(lun, g.journal_offset, VMFS_FORMAT_MAJOR + 1, 0);
	CU_ASSERT_EQUAL(jnl_walk(lun, g.journal_offset, &b, false, NULL, NULL, &w),
			-VMFS_E_BAD_VERSION);
	jnl_header_as(lun, g.journal_offset, 1, 1);
	CU_ASSERT_EQUAL(jnl_walk(lun, g.journal_offset, &b, false, NULL, NULL, &w), 0);
	CU_ASSERT_EQUAL(w.hdr.state, VMFS_JNL_DIRTY);
	CU_ASSERT(w.ntxn >= 1);
	lun_close(lun);
	check_files(&c);
}

/*
 * A journal whose last committed transaction names a block outside the
 * metadata areas (the corruption tool, with a sound transaction before
 * it whose inode is broken at home): preen declines PR_2_JOURNAL_RECORD_BAD,
 * leaves the journal alone and checks the rest through the overlay
 * without repairing anything; -y replays the sound transaction, drops
 * the bad one and is clean afterwards.
 */
static void test_record_bad(void)
{
	struct crashed c = { .path = unit_tmp_path("recbad.img") };
	char hint[1024] = "";
	struct info_lines info;
	struct fsck_result r;
	struct jnl_walk_result w;
	struct jnl_bounds b;
	struct vol_geom g;
	struct lun *lun;
	uint64_t seed, target;

	/* The files of make_crashed, replayed: the corruption tool's picks. */
	make_crashed(&c);
	CU_ASSERT_FATAL(fsck_is(c.path, FSCK_MODE_YES, FSCK_EXIT_FIXED,
				&info, &r));
	CU_ASSERT_FATAL(lun_open(c.path, 0, &lun) == 0);
	CU_ASSERT_FATAL(vol_geom_read(lun, &g, NULL, NULL) == 0);
	/* A seed that puts a sound transaction first; others are fixed away. */
	for (seed = 1; seed < 64; seed++) {
		if (corrupt_damage(lun, PR_2_JOURNAL_RECORD_BAD, seed, &target,
				   hint, sizeof(hint)) == 0 &&
		    strstr(hint, "sound transaction first"))
			break;
		lun_close(lun);
		CU_ASSERT_FATAL(fsck_is(c.path, FSCK_MODE_YES, FSCK_EXIT_FIXED,
					&info, &r));
		CU_ASSERT_FATAL(lun_open(c.path, 0, &lun) == 0);
	}
	lun_close(lun);
	CU_ASSERT_FATAL(seed < 64);
	b = vol_jnl_bounds(&g);

	CU_ASSERT(fsck_is(c.path, FSCK_MODE_PREEN, FSCK_EXIT_UNCORRECTED,
			  &info, &r));
	CU_ASSERT_EQUAL(reported.n, 1);
	CU_ASSERT_EQUAL(reported.code[0], PR_2_JOURNAL_RECORD_BAD);
	CU_ASSERT_FALSE(reported.fixed[0]);
	CU_ASSERT(strstr(info.text, "the rest of this run only reports") != NULL);
	CU_ASSERT_FATAL(lun_open(c.path, LUN_RDONLY, &lun) == 0);
	CU_ASSERT_EQUAL(jnl_walk(lun, target, &b, false, NULL, NULL, &w), 0);
	CU_ASSERT_EQUAL(w.hdr.state, VMFS_JNL_DIRTY);
	CU_ASSERT_EQUAL(w.ntxn, 1);
	CU_ASSERT_EQUAL(w.stop, JNL_STOP_BAD_TAG);
	lun_close(lun);

	CU_ASSERT(fsck_is(c.path, FSCK_MODE_NO, FSCK_EXIT_UNCORRECTED,
			  &info, &r));
	CU_ASSERT_EQUAL(r.problems_found, 1);
	CU_ASSERT(fsck_is(c.path, FSCK_MODE_YES, FSCK_EXIT_FIXED, &info, &r));
	CU_ASSERT_EQUAL(r.problems_found, 2);   /* the bad record, the replay */
	CU_ASSERT(fsck_is(c.path, FSCK_MODE_NO, FSCK_EXIT_OK, &info, &r));
	check_files(&c);
}

/*
 * A read-only open refuses a journal with transactions to replay; with
 * VOL_STALE_OK (listings such as `vmfs locks`) it opens, sees only what
 * is home (the directory chunk holding "d" never got there), and writes
 * nothing: the journal still holds every transaction.
 */
static void test_stale_ok_open(void)
{
	struct crashed c = { .path = unit_tmp_path("crash-stale.img") };
	struct vol_open_opts o = { .flags = VOL_RDONLY | VOL_STALE_OK };
	struct jnl_walk_result w, w2;
	struct jnl_bounds b;
	struct vol_geom g;
	struct vol_attr a;
	struct lun *lun;
	struct vol *v;

	make_crashed(&c);
	CU_ASSERT_FATAL(lun_open(c.path, LUN_RDONLY, &lun) == 0);
	CU_ASSERT_FATAL(vol_geom_read(lun, &g, NULL, NULL) == 0);
	b = vol_jnl_bounds(&g);
	CU_ASSERT_EQUAL(jnl_walk(lun, g.journal_offset, &b, false, NULL, NULL,
				 &w), 0);
	CU_ASSERT(w.ntxn >= 1);
	CU_ASSERT_EQUAL(vol_open(lun, VOL_RDONLY, &v), -VMFS_E_JNL_DIRTY);
	CU_ASSERT_FATAL(vol_open_ex(lun, &o, &v) == 0);
	CU_ASSERT_EQUAL(vol_getattr(v, VMFS_ROOT_INO, &a), 0);
	CU_ASSERT_EQUAL(vol_lookup(v, VMFS_ROOT_INO, "d", &a), -ENOENT);
	CU_ASSERT_EQUAL(vol_close(v), 0);
	CU_ASSERT_EQUAL(jnl_walk(lun, g.journal_offset, &b, false, NULL, NULL,
				 &w2), 0);
	CU_ASSERT_EQUAL(w2.ntxn, w.ntxn);
	CU_ASSERT_EQUAL(w2.hdr.state, VMFS_JNL_DIRTY);
	lun_close(lun);
}

static CU_TestInfo journal_tests[] = {
	{ "crash_replay", test_crash_replay },
	{ "fsck_replays", test_fsck_replays },
	{ "dirty_idle", test_dirty_idle },
	{ "idle_commit", test_idle_commit },
	{ "versions", test_versions },
	{ "late_warning", test_late_warning },
	{ "record_bad", test_record_bad },
	{ "stale_ok_open", test_stale_ok_open },
	CU_TEST_INFO_NULL
};

UNIT_SUITE("journal_volume", NULL, NULL, journal_tests);
