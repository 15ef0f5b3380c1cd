/*
 * An object write never rewrites its lock record (SPEC §1.3, lockmgr.h
 * lock_obj_write), on LUNs of 512-byte and of 4096-byte sectors (the
 * fault wrapper claims 4096 over the 512-byte scratch file).
 *
 * "Another host" is a lock context of its own identity on its own LUN
 * handle of the same file.  The fault wrapper's before-write hook makes
 * it join a shared lock on the block at the worst moment: after the
 * writer read the block and just before its write reaches the LUN.  A
 * writer that puts back the record it read (a cached copy, or a
 * read-modify-write) undoes the join; the record on disk must be the
 * other host's, byte for byte, and the object the writer's.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "unit.h"
#include "vmfs/format.h"
#include "vmfs/journal.h"
#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"
#include "../../vol/vol_int.h"

#define MIB (1024ull * 1024)

/* A fault-wrapped handle of path with logical sectors of ss bytes. */
static struct lun *open_ss(const char *path, uint32_t ss)
{
	struct lun *inner, *lun;

	CU_ASSERT_FATAL(lun_open(path, 0, &inner) == 0);
	CU_ASSERT_FATAL(lun_fault_wrap(inner, &lun) == 0);
	if (ss != lun_sector_size(inner))
		CU_ASSERT_FATAL(lun_fault_set_sector_size(lun, ss) == 0);
	CU_ASSERT_FATAL(lun_sector_size(lun) == ss);
	return lun;
}

static const char *mkvol(uint32_t ss)
{
	const char *path = unit_tmp_path(ss == 512 ? "lockobj512" : "lockobj4k");
	struct vol_mkfs_opts o;
	struct lun *lun;
	int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(ftruncate(fd, (off_t)(256 * MIB)) == 0);
	close(fd);
	lun = open_ss(path, ss);
	vol_mkfs_opts_init(&o);
	o.max_hosts = 4;
	o.journal_size = MIB;
	CU_ASSERT_FATAL(vol_mkfs(lun, &o, NULL) == 0);
	lun_close(lun);
	return path;
}

/* The other host: its own handle, identity and lock context. */
struct other {
	struct lun *lun;
	struct lock_ctx *ctx;
	uint64_t addr;          /* the lockable block it joins */
	bool joined;
	int ret;
	struct lock_state st;   /* the record it wrote */
};

static void other_open(struct other *o, const char *path, uint32_t ss,
		       uint64_t addr)
{
	struct lock_host id;

	memset(o, 0, sizeof(*o));
	memset(&id, 0, sizeof(id));
	memset(id.self.uuid, 0xb7, VMFS_UUID_SIZE);
	id.self.slot = 3;
	id.self.hb_gen = 41;
	o->lun = open_ss(path, ss);
	o->addr = addr;
	CU_ASSERT_FATAL(lock_ctx_open(o->lun, &id, 0, &o->ctx) == 0);
}

/* The before-write hook: a holder joins a shared lock on the block. */
static void other_join(void *arg)
{
	struct other *o = arg;

	o->joined = true;
	o->ret = lock_acquire(o->ctx, o->addr, VMFS_LOCK_READONLY, 0, &o->st);
}

/* The record on disk is the one the other host wrote, byte for byte. */
static void other_check_close(struct other *o)
{
	uint8_t *blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	struct lock_state now;

	CU_ASSERT_FATAL(blk != NULL);
	CU_ASSERT(o->joined);
	CU_ASSERT_EQUAL(o->ret, 0);
	CU_ASSERT_EQUAL(o->st.mode, VMFS_LOCK_READONLY);
	CU_ASSERT_FATAL(lun_read(o->lun, blk, VMFS_MD_BLOCK_SIZE, o->addr) == 0);
	CU_ASSERT(memcmp(blk, o->st.raw, VMFS_LOCK_SIZE) == 0);
	CU_ASSERT_EQUAL(lock_read(o->ctx, o->addr, &now), 0);
	CU_ASSERT_EQUAL(now.mode, VMFS_LOCK_READONLY);
	CU_ASSERT_EQUAL(now.gen, o->st.gen);
	lun_buf_free(blk);
	lock_ctx_close(o->ctx);
	lun_close(o->lun);
}

static uint64_t inode_addr(const struct vol_geom *g, uint64_t ino)
{
	const struct vol_res_geom *r = &g->res[VMFS_RES_INODE];

	return r->obj_offset + ino * r->obj_size;
}

/* The mode of ino in its home block (a dirty journal is not replayed). */
static uint32_t mode_on_disk(const char *path, uint32_t ss, uint64_t ino)
{
	struct vol_open_opts oo = { .flags = VOL_RDONLY | VOL_STALE_OK };
	struct lun *lun = open_ss(path, ss);
	struct vol_attr a;
	struct vol *v;

	CU_ASSERT_FATAL(vol_open_ex(lun, &oo, &v) == 0);
	CU_ASSERT_FATAL(vol_getattr(v, ino, &a) == 0);
	CU_ASSERT_EQUAL(vol_close(v), 0);
	lun_close(lun);
	return a.mode & 07777;
}

/*
 * A volume with one file /f, written home and closed, then opened again
 * with commits only when asked.
 */
static struct vol *open_with_file(const char *path, uint32_t ss,
				  struct lun **lun, uint64_t *ino)
{
	struct vol_open_opts oo = { .commit_ms = 60000 };
	struct vol_attr a;
	struct vol *v;

	*lun = open_ss(path, ss);
	CU_ASSERT_FATAL(vol_open(*lun, 0, &v) == 0);
	CU_ASSERT_FATAL(vol_create(v, VMFS_ROOT_INO, "f", S_IFREG | 0644, 0, 0,
				   0, &a) == 0);
	*ino = a.ino;
	CU_ASSERT_FATAL(vol_close(v) == 0);
	CU_ASSERT_FATAL(vol_open_ex(*lun, &oo, &v) == 0);
	return v;
}

static void chmod_600(struct vol *v, uint64_t ino)
{
	struct vol_setattr sa = { .mode = 0600 };
	struct vol_attr a;

	CU_ASSERT_FATAL(vol_setattr(v, ino, &sa, VOL_SET_MODE, &a) == 0);
}

/*
 * The engine's inode cache and the journal's image hold the record as it
 * was at create.  The other host joins while the commit writes the inode
 * home; the record must survive that write and vol_close.
 */
static void engine_home(uint32_t ss)
{
	const char *path = mkvol(ss);
	struct vol_geom g;
	struct other o;
	struct lun *lun;
	struct vol *v;
	uint64_t ino;

	v = open_with_file(path, ss, &lun, &ino);
	vol_geom_get(v, &g);
	other_open(&o, path, ss, inode_addr(&g, ino));
	chmod_600(v, ino);
	lun_fault_before_write_at(lun, o.addr + VMFS_OBJ_OFFSET, other_join, &o);
	/* The home write comes at this commit or at the close. */
	CU_ASSERT_EQUAL(vol_sync(v), 0);
	CU_ASSERT_EQUAL(vol_close(v), 0);
	lun_close(lun);
	other_check_close(&o);
	CU_ASSERT_EQUAL(mode_on_disk(path, ss, ino), 0600);
}

static void test_engine_home_512(void)
{
	engine_home(512);
}

static void test_engine_home_4k(void)
{
	engine_home(4096);
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
 * A crash between commit and home write leaves the chmod in the journal
 * only; the other host joins while replay writes the inode home.
 */
static void replay(uint32_t ss)
{
	const char *path = mkvol(ss);
	struct jnl_walk_result r;
	struct jnl_bounds b;
	struct vol_geom g;
	struct other o;
	struct lun *lun;
	struct vol *v;
	uint64_t ino;

	v = open_with_file(path, ss, &lun, &ino);
	vol_geom_get(v, &g);
	chmod_600(v, ino);
	/* The journal sits below the inode area: the commit lands, the
	 * home write of the inode does not. */
	CU_ASSERT_FATAL(g.journal_offset < g.res[VMFS_RES_INODE].hdr_offset);
	lun_fault_fail_writes_from(lun, g.res[VMFS_RES_INODE].hdr_offset, -EIO);
	(void)vol_sync(v);
	wait_jnl_error(v);
	lun_fault_fail_writes_from(lun, 0, -EIO);
	CU_ASSERT(vol_close(v) != 0);
	lun_close(lun);
	CU_ASSERT_NOT_EQUAL(mode_on_disk(path, ss, ino), 0600);

	other_open(&o, path, ss, inode_addr(&g, ino));
	lun = open_ss(path, ss);
	b = vol_jnl_bounds(&g);
	lun_fault_before_write_at(lun, o.addr + VMFS_OBJ_OFFSET, other_join, &o);
	CU_ASSERT_EQUAL(jnl_replay(lun, vol_jnl_offset(&g, 0), &b, &r), 0);
	CU_ASSERT(r.ntxn >= 1);
	lun_close(lun);
	other_check_close(&o);
	CU_ASSERT_EQUAL(mode_on_disk(path, ss, ino), 0600);
}

static void test_replay_512(void)
{
	replay(512);
}

static void test_replay_4k(void)
{
	replay(4096);
}

/* jnl_header_write reads the header block, then rewrites it. */
static void test_jnl_header_4k(void)
{
	const char *path = mkvol(4096);
	struct lun *lun = open_ss(path, 4096);
	struct jnl_info info, after;
	struct vol_geom g;
	struct other o;
	uint64_t off;

	CU_ASSERT_FATAL(vol_geom_read(lun, &g, NULL, NULL) == 0);
	off = vol_jnl_offset(&g, 1);
	CU_ASSERT_FATAL(jnl_header_read(lun, off, &info) == 0);
	other_open(&o, path, 4096, off);
	lun_fault_before_write_at(lun, off + VMFS_OBJ_OFFSET, other_join, &o);
	CU_ASSERT_EQUAL(jnl_header_write(lun, off, &info, VMFS_JNL_DIRTY,
					 info.head, info.seq + 1), 0);
	CU_ASSERT_EQUAL(jnl_header_read(lun, off, &after), 0);
	CU_ASSERT_EQUAL(after.state, VMFS_JNL_DIRTY);
	CU_ASSERT_EQUAL(after.seq, info.seq + 1);
	lun_close(lun);
	other_check_close(&o);
}

/*
 * Does [off, off + len) touch the first VMFS_LOCK_SIZE bytes of any of n
 * blocks at base, base + stride, ...?
 */
static bool hits_records(uint64_t off, uint64_t len, uint64_t base,
			 uint64_t stride, uint64_t n)
{
	uint64_t k = 0;

	if (!n || off + len <= base)
		return false;
	if (off >= base + VMFS_LOCK_SIZE)
		k = (off - base - VMFS_LOCK_SIZE) / stride + 1;
	return k < n && base + k * stride < off + len;
}

/* Every lockable block of the geometry (SPEC §1.3). */
static bool hits_any_record(const struct vol_geom *g, uint64_t off,
			    uint64_t len)
{
	if (hits_records(off, len, g->hb_offset, VMFS_MD_BLOCK_SIZE, 1) ||
	    hits_records(off, len, g->journal_offset, g->journal_size_bytes,
			 g->max_hosts) ||
	    hits_records(off, len, g->res[VMFS_RES_INODE].obj_offset,
			 VMFS_MD_BLOCK_SIZE, g->res[VMFS_RES_INODE].count))
		return true;
	for (int t = 0; t < VMFS_RES_NTYPES; t++)
		if (hits_records(off, len, g->res[t].hdr_offset,
				 VMFS_MD_BLOCK_SIZE, g->res[t].nclusters))
			return true;
	return false;
}

/*
 * The one write of a lock record the engine still makes: a transaction
 * that ends with an inode just allocated writes it home whole, with the
 * free record of the slot's new life (vol_inode_alloc; the multi-host
 * protocol counts on that record today).  A whole block at an inode
 * address whose record is free is that write.
 */
static bool fresh_inode_write(const struct vol_geom *g,
			      const struct lun_rec_entry *e)
{
	const struct vol_res_geom *ri = &g->res[VMFS_RES_INODE];
	struct lock_record lr;

	return e->len == VMFS_MD_BLOCK_SIZE && e->off >= ri->obj_offset &&
	       (e->off - ri->obj_offset) % VMFS_MD_BLOCK_SIZE == 0 &&
	       e->off < ri->obj_offset + ri->count * ri->obj_size &&
	       !lock_record_decode(e->data, e->off, &lr) &&
	       lr.mode == VMFS_LOCK_FREE;
}

/*
 * A metadata workload on a 512-byte-sector LUN, every write recorded from
 * open to close: none covers a lock record (but the fresh inodes above),
 * and some did write inodes (so the check saw the writes it is about).
 */
static void test_no_record_write_512(void)
{
	const char *path = mkvol(512);
	struct lun *lun = open_ss(path, 512);
	const struct vol_res_geom *ri;
	const struct lun_rec_entry *e;
	struct vol_setattr sa = { .mode = 0640, .size = 100 };
	struct vol_attr a, d;
	struct vol_geom g;
	char name[32], buf[700];
	unsigned inode_writes = 0, bad = 0;
	struct vol *v;
	size_t n;

	memset(buf, 'x', sizeof(buf));
	lun_fault_record(lun, true);
	CU_ASSERT_FATAL(vol_open(lun, 0, &v) == 0);
	vol_geom_get(v, &g);
	CU_ASSERT_FATAL(vol_mkdir(v, VMFS_ROOT_INO, "d", 0755, 0, 0, &d) == 0);
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		CU_ASSERT_FATAL(vol_create(v, d.ino, name, S_IFREG | 0644, 0, 0,
					   0, &a) == 0);
		/* Some transactions end with an inode just allocated. */
		if (i % 4 == 0)
			CU_ASSERT_EQUAL(vol_sync(v), 0);
		CU_ASSERT_EQUAL(vol_write(v, a.ino, buf, sizeof(buf), 0),
				(ssize_t)sizeof(buf));
		CU_ASSERT_EQUAL(vol_setattr(v, a.ino, &sa,
					    VOL_SET_MODE | VOL_SET_SIZE, &a), 0);
		if (i % 3 == 0)
			CU_ASSERT_EQUAL(vol_unlink(v, d.ino, name), 0);
	}
	CU_ASSERT_EQUAL(vol_symlink(v, VMFS_ROOT_INO, "s", "d/f1", 0, 0, &a), 0);
	CU_ASSERT_EQUAL(vol_close(v), 0);

	ri = &g.res[VMFS_RES_INODE];
	e = lun_fault_records(lun, &n);
	for (size_t i = 0; i < n; i++) {
		if (e[i].kind != LUN_REC_WRITE)
			continue;
		if (e[i].off < ri->obj_offset + ri->count * ri->obj_size &&
		    e[i].off + e[i].len > ri->obj_offset)
			inode_writes++;
		if (fresh_inode_write(&g, &e[i]))
			continue;
		if (hits_any_record(&g, e[i].off, e[i].len)) {
			if (!bad++)
				fprintf(stderr, "write of %llu bytes at %llu covers a lock record\n",
					(unsigned long long)e[i].len,
					(unsigned long long)e[i].off);
		}
	}
	CU_ASSERT(inode_writes >= 40);
	CU_ASSERT_EQUAL(bad, 0);
	lun_close(lun);
}

/* ---- lock changes and object writes racing on one 4 KiB sector ------- */

#define CHURN_ROUNDS 200

static void *churn_locks(void *arg)
{
	struct other *o = arg;

	for (int i = 0; i < CHURN_ROUNDS && !o->ret; i++) {
		o->ret = lock_acquire(o->ctx, o->addr, VMFS_LOCK_EXCLUSIVE, 1000,
				      NULL);
		if (!o->ret)
			o->ret = lock_release(o->ctx, o->addr, &o->st);
	}
	return NULL;
}

/*
 * Another host acquires and releases the block's lock CHURN_ROUNDS times
 * while we write its object as often: every lock change and every object
 * write succeeds, none undoes another (the record ends free, two
 * generations per round on), and the object is the last one written.
 */
static void churn(unsigned caps)
{
	const char *path = unit_tmp_path("lockobj_churn");
	uint8_t *img = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	uint8_t *blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	uint64_t addr = 3 * VMFS_MD_BLOCK_SIZE;
	struct lock_state end;
	struct other o;
	struct lun *lun;
	pthread_t th;
	int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);

	CU_ASSERT_FATAL(fd >= 0 && img && blk);
	CU_ASSERT_FATAL(ftruncate(fd, (off_t)MIB) == 0);
	close(fd);
	lun = open_ss(path, 4096);
	lun_fault_set_caps(lun, caps);
	/* A slow read widens the window between our read and our write. */
	lun_fault_set_latency(lun, 300, 0);
	other_open(&o, path, 4096, addr);
	CU_ASSERT_FATAL(pthread_create(&th, NULL, churn_locks, &o) == 0);
	for (int i = 0; i < CHURN_ROUNDS; i++) {
		memset(img, 0xee, VMFS_LOCK_SIZE);   /* never written */
		memset(img + VMFS_OBJ_OFFSET, i, VMFS_MD_BLOCK_SIZE - VMFS_OBJ_OFFSET);
		CU_ASSERT_EQUAL_FATAL(lock_obj_write(lun, img, addr), 0);
	}
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(o.ret, 0);
	CU_ASSERT_EQUAL(lock_read(o.ctx, addr, &end), 0);
	CU_ASSERT_EQUAL(end.mode, VMFS_LOCK_FREE);
	CU_ASSERT_EQUAL(end.gen, 2 * CHURN_ROUNDS);
	CU_ASSERT_EQUAL(lun_read(lun, blk, VMFS_MD_BLOCK_SIZE, addr), 0);
	CU_ASSERT(memcmp(blk + VMFS_OBJ_OFFSET, img + VMFS_OBJ_OFFSET,
			 VMFS_MD_BLOCK_SIZE - VMFS_OBJ_OFFSET) == 0);
	lock_ctx_close(o.ctx);
	lun_close(o.lun);
	lun_close(lun);
	lun_buf_free(img);
	lun_buf_free(blk);
}

static void test_churn_4k_ats(void)
{
	churn(LUN_CAP_ATS | LUN_CAP_RESERVE);
}

/* Object writes through RESERVE, the other host on ATS: each primitive
 * excludes the other (SPEC §5.2). */
static void test_churn_4k_reserve(void)
{
	churn(LUN_CAP_RESERVE);
}

static CU_TestInfo lock_obj_tests[] = {
	{ "engine_home_512", test_engine_home_512 },
	{ "engine_home_4k", test_engine_home_4k },
	{ "replay_512", test_replay_512 },
	{ "replay_4k", test_replay_4k },
	{ "jnl_header_4k", test_jnl_header_4k },
	{ "no_record_write_512", test_no_record_write_512 },
	{ "churn_4k_ats", test_churn_4k_ats },
	{ "churn_4k_reserve", test_churn_4k_reserve },
	CU_TEST_INFO_NULL
};

UNIT_SUITE("lock_obj", NULL, NULL, lock_obj_tests);
