/*
 * The running journal and replay on a bare LUN (no volume): ring wrap,
 * transactions with several descriptors, a damaged transaction, group
 * commit, and replay of a crashed journal giving back exactly what was
 * synced.
 */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "lun_scratch.h"
#include "vmfs/journal.h"

#define JOFF 0ull                     /* region header at 0 */
#define HOME_LO (8ull * MiB)
#define HOME_HI (16ull * MiB)
#define NHOME ((HOME_HI - HOME_LO) / 4096)

struct jfix {
	const char *path;
	struct lun *lun;        /* fault wrapper over the file */
	struct jnl *j;
	struct jnl_bounds b;
	uint64_t *want;         /* per home block: pattern seed, 0 = never synced */
};

static void img_fill(uint8_t *img, uint64_t addr, uint64_t seed)
{
	for (size_t i = 0; i < 4096; i += 8) {
		uint64_t x = htole64(addr * 0x9e3779b97f4a7c15ull ^ seed ^ i);

		memcpy(img + i, &x, 8);
	}
}

static void jfix_start_ms(struct jfix *f, uint64_t jsize, uint32_t commit_ms)
{
	struct lun *raw;
	struct jnl_params p = { .commit_ms = commit_ms };

	memset(f, 0, sizeof(*f));
	f->path = mkfile("jnl", HOME_HI);
	raw = open_lun(f->path);
	CU_ASSERT_FATAL(jnl_regions_format(raw, JOFF, jsize, 1) == 0);
	CU_ASSERT_FATAL(lun_fault_wrap(raw, &f->lun) == 0);
	f->b.lo = HOME_LO;
	f->b.hi = HOME_HI;
	CU_ASSERT_FATAL(jnl_start(f->lun, JOFF, &f->b, &p, &f->j) == 0);
	f->want = calloc(NHOME, sizeof(*f->want));
	CU_ASSERT_FATAL(f->want != NULL);
}

static void jfix_start(struct jfix *f, uint64_t jsize)
{
	jfix_start_ms(f, jsize, 50);
}

/* One handle changing n blocks starting at block first (stride step). */
static void jfix_txn(struct jfix *f, uint64_t first, uint64_t n,
		     uint64_t step, uint64_t seed, bool sync)
{
	uint8_t img[4096];

	jnl_handle_begin(f->j);
	for (uint64_t k = 0; k < n; k++) {
		uint64_t b = (first + k * step) % NHOME;

		img_fill(img, HOME_LO + b * 4096, seed);
		CU_ASSERT_EQUAL(jnl_dirty(f->j, HOME_LO + b * 4096, img, 0), 0);
		f->want[b] = seed;
	}
	jnl_handle_end(f->j);
	if (sync)
		CU_ASSERT_EQUAL(jnl_sync(f->j), 0);
}

/* The host dies: nothing it writes from now on reaches the LUN. */
static void jfix_crash(struct jfix *f)
{
	lun_fault_fail_writes_from(f->lun, 0, -EIO);
	CU_ASSERT_NOT_EQUAL(jnl_stop(f->j), 0);
	f->j = NULL;
	lun_close(f->lun);
	f->lun = open_lun(f->path);
}

static void jfix_check_home(struct jfix *f)
{
	uint8_t *got = lun_buf_alloc(4096);
	uint8_t want[4096];
	uint64_t bad = 0;

	for (uint64_t b = 0; b < NHOME; b++) {
		if (!f->want[b])
			continue;
		CU_ASSERT_FATAL(lun_read(f->lun, got, 4096, HOME_LO + b * 4096) == 0);
		img_fill(want, HOME_LO + b * 4096, f->want[b]);
		bad += memcmp(got, want, 4096) != 0;
	}
	CU_ASSERT_EQUAL(bad, 0);
	lun_buf_free(got);
}

static void jfix_end(struct jfix *f)
{
	if (f->j)
		CU_ASSERT_EQUAL(jnl_stop(f->j), 0);
	lun_close(f->lun);
	free(f->want);
}

/* Many more blocks than the ring holds, synced one transaction at a time;
 * then a crash; replay gives back every synced image. */
static void test_wrap_and_replay(void)
{
	struct jfix f;
	struct jnl_walk_result r;
	struct jnl_stats st;

	jfix_start(&f, 256 * 1024);       /* 63 ring blocks */
	for (uint64_t i = 1; i <= 300; i++)
		jfix_txn(&f, i * 37, 1 + i % 9, 101, i, true);
	jnl_stats_get(f.j, &st);
	CU_ASSERT(st.ring_blocks > 5 * 63);   /* wrapped several times */
	jfix_crash(&f);
	CU_ASSERT_EQUAL(jnl_replay(f.lun, JOFF, &f.b, &r), 0);
	jfix_check_home(&f);
	/* Replaying again finds the journal clean and changes nothing. */
	CU_ASSERT_EQUAL(jnl_replay(f.lun, JOFF, &f.b, &r), 0);
	CU_ASSERT_EQUAL(r.stop, JNL_STOP_CLEAN);
	CU_ASSERT_EQUAL(r.ntxn, 0);
	jfix_check_home(&f);
	jfix_end(&f);
}

static int count_txn(void *ctx, const struct jnl_txn *t)
{
	struct jnl_txn *last = ctx;

	*last = *t;
	return 0;
}

/*
 * One synced transaction of n blocks from block first whose home writes
 * fail, then a crash: only the journal has the blocks, and a walk finds
 * exactly that transaction (into *last).
 */
static void jfix_unhomed(struct jfix *f, uint64_t jsize, uint64_t first,
			 uint64_t n, uint64_t seed, struct jnl_txn *last)
{
	struct jnl_walk_result r;

	jfix_start(f, jsize);
	lun_fault_fail_writes_from(f->lun, HOME_LO, -EIO);
	jfix_txn(f, first, n, 1, seed, true);
	jfix_crash(f);
	CU_ASSERT_EQUAL(jnl_walk(f->lun, JOFF, &f->b, false, count_txn, last, &r), 0);
	CU_ASSERT_EQUAL_FATAL(r.ntxn, 1);
}

/* One transaction needing three descriptors, never written home. */
static void test_multi_descriptor(void)
{
	struct jfix f;
	struct jnl_walk_result r;
	struct jnl_txn last;

	jfix_unhomed(&f, 4 * MiB, 5, 700, 77, &last);
	CU_ASSERT_EQUAL(last.nimages, 700);
	CU_ASSERT_EQUAL(last.len, 700 + 3 + 1);
	CU_ASSERT_EQUAL(jnl_replay(f.lun, JOFF, &f.b, &r), 0);
	CU_ASSERT_EQUAL(r.nimages, 700);
	jfix_check_home(&f);
	jfix_end(&f);
}

/* A damaged image: the commit's crc no longer matches, replay stops. */
static void test_bad_commit_stops(void)
{
	struct jfix f;
	struct jnl_walk_result r;
	struct jnl_txn last;
	uint8_t *blk = lun_buf_alloc(4096);
	uint64_t at;

	jfix_unhomed(&f, 1 * MiB, 9, 3, 5, &last);
	at = JOFF + last.pos + 2 * 4096;  /* the second image */
	CU_ASSERT_FATAL(lun_read(f.lun, blk, 4096, at) == 0);
	blk[100] ^= 1;
	CU_ASSERT_FATAL(lun_write(f.lun, blk, 4096, at) == 0);
	CU_ASSERT_EQUAL(jnl_replay(f.lun, JOFF, &f.b, &r), 0);
	CU_ASSERT_EQUAL(r.ntxn, 0);
	CU_ASSERT_EQUAL(r.stop, JNL_STOP_BAD_COMMIT);
	/* Nothing of it reached home. */
	CU_ASSERT_FATAL(lun_read(f.lun, blk, 4096, HOME_LO + 9 * 4096) == 0);
	CU_ASSERT_EQUAL(blk[0] | blk[4095], 0);
	memset(f.want, 0, NHOME * sizeof(*f.want));
	lun_buf_free(blk);
	jfix_end(&f);
}

/* A committed transaction naming a block outside the bounds is refused. */
static void test_bounds(void)
{
	struct jfix f;
	struct jnl_walk_result r;
	struct jnl_bounds narrow;
	struct jnl_txn last;

	jfix_unhomed(&f, 1 * MiB, 0, 2, 3, &last);
	narrow.lo = HOME_LO + 4096;
	narrow.hi = HOME_HI;
	CU_ASSERT_EQUAL(jnl_walk(f.lun, JOFF, &narrow, false, NULL, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.ntxn, 0);
	CU_ASSERT_EQUAL(r.stop, JNL_STOP_BAD_TAG);
	CU_ASSERT_EQUAL(jnl_replay(f.lun, JOFF, &f.b, &r), 0);
	jfix_check_home(&f);
	jfix_end(&f);
}

struct gc_arg {
	struct jfix *f;
	int id;
};

static void *gc_thread(void *p)
{
	struct gc_arg *a = p;

	for (int i = 0; i < 40; i++)
		jfix_txn(a->f, (uint64_t)a->id * 50 + i, 1, 1,
			 (uint64_t)(a->id + 1) * 1000 + i + 1, true);
	return NULL;
}

/* Eight threads syncing at once share commits. */
static void test_group_commit(void)
{
	struct jfix f;
	pthread_t t[8];
	struct gc_arg a[8];
	struct jnl_stats st;
	struct jnl_walk_result r;

	jfix_start(&f, 1 * MiB);
	for (int i = 0; i < 8; i++) {
		a[i].f = &f;
		a[i].id = i;
		CU_ASSERT_FATAL(pthread_create(&t[i], NULL, gc_thread, &a[i]) == 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	jnl_stats_get(f.j, &st);
	CU_ASSERT(st.commits > 0);
	CU_ASSERT(st.commits < 8 * 40);
	CU_ASSERT(st.forced >= st.commits - 1);
	jfix_crash(&f);
	CU_ASSERT_EQUAL(jnl_replay(f.lun, JOFF, &f.b, &r), 0);
	jfix_check_home(&f);
	jfix_end(&f);
}

/* The formatter refuses every region size the reader would call corrupt,
 * and what it does format reads back clean. */
static void test_format_reader_agree(void)
{
	const char *path = mkfile("jnlfmt", 1 * MiB);
	struct lun *lun = open_lun(path);
	static const uint64_t bad[] = { 0, 4096, 4096 + 512, 3 * 4096 - 1 };
	struct jnl_info ji;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_EQUAL(jnl_regions_format(lun, 0, bad[i], 2), -EINVAL);
	CU_ASSERT_FATAL(jnl_regions_format(lun, 0, 2 * 4096, 2) == 0);
	for (uint32_t s = 0; s < 2; s++) {
		CU_ASSERT_EQUAL_FATAL(jnl_header_read(lun, s * 2 * 4096, &ji), 0);
		CU_ASSERT_EQUAL(ji.slot, s);
		CU_ASSERT_EQUAL(ji.state, VMFS_JNL_CLEAN);
		CU_ASSERT_EQUAL(ji.size_bytes, 2 * 4096);
		CU_ASSERT_EQUAL(ji.head, ji.tail);
	}
	lun_close(lun);
}

/*
 * A sealed transaction goes home while a handle of the running one stays
 * open (as an operation waiting for another host's lock would keep it):
 * jnl_drain_to never waits for that handle, even with the commit thread
 * already trying to commit the running transaction.
 */
struct held_handle {
	struct jfix *f;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool opened, release;
};

static void *hold_handle(void *p)
{
	struct held_handle *h = p;
	uint8_t img[4096];

	jnl_handle_begin(h->f->j);
	img_fill(img, HOME_LO + 10 * 4096, 2);
	CU_ASSERT_EQUAL(jnl_dirty(h->f->j, HOME_LO + 10 * 4096, img, 0), 0);
	pthread_mutex_lock(&h->mu);
	h->opened = true;
	pthread_cond_broadcast(&h->cv);
	while (!h->release)
		pthread_cond_wait(&h->cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
	jnl_handle_end(h->f->j);
	return NULL;
}

struct drain_arg {
	struct jfix *f;
	uint64_t seq;
	int ret;
};

static void *drain_to_thread(void *p)
{
	struct drain_arg *a = p;

	a->ret = jnl_drain_to(a->f->j, a->seq);
	return NULL;
}

static bool block_is(struct jfix *f, uint64_t b, uint64_t seed)
{
	uint8_t *got = lun_buf_alloc(4096);
	uint8_t want[4096];
	bool same;

	CU_ASSERT_FATAL(lun_read(f->lun, got, 4096, HOME_LO + b * 4096) == 0);
	img_fill(want, HOME_LO + b * 4096, seed);
	same = !memcmp(got, want, 4096);
	lun_buf_free(got);
	return same;
}

static struct jfix f_seal;

static void test_seal_drain_with_open_handle(void)
{
	struct held_handle h = { .mu = PTHREAD_MUTEX_INITIALIZER,
				 .cv = PTHREAD_COND_INITIALIZER };
	struct drain_arg d;
	struct timespec until;
	struct jnl_walk_result r;
	pthread_t th, td;
	uint64_t seq;

	jfix_start(&f_seal, 1 * MiB);
	h.f = &f_seal;
	jfix_txn(&f_seal, 0, 3, 1, 1, false);
	CU_ASSERT_EQUAL_FATAL(jnl_seal(f_seal.j, &seq), 0);
	CU_ASSERT_FATAL(pthread_create(&th, NULL, hold_handle, &h) == 0);
	pthread_mutex_lock(&h.mu);
	while (!h.opened)
		pthread_cond_wait(&h.cv, &h.mu);
	pthread_mutex_unlock(&h.mu);
	/* Past the commit interval (50 ms): the commit thread now waits for
	 * the open handle to commit the running transaction. */
	usleep(200000);
	d.f = &f_seal;
	d.seq = seq;
	d.ret = -1;
	CU_ASSERT_FATAL(pthread_create(&td, NULL, drain_to_thread, &d) == 0);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	if (pthread_timedjoin_np(td, NULL, &until)) {
		CU_FAIL("jnl_drain_to waited for a handle of the running transaction");
		pthread_mutex_lock(&h.mu);
		h.release = true;
		pthread_cond_broadcast(&h.cv);
		pthread_mutex_unlock(&h.mu);
		pthread_join(td, NULL);
	}
	CU_ASSERT_EQUAL(d.ret, 0);
	/* The sealed blocks are home; the running one is not. */
	CU_ASSERT(block_is(&f_seal, 0, 1) && block_is(&f_seal, 2, 1));
	CU_ASSERT(!block_is(&f_seal, 10, 2));
	CU_ASSERT(jnl_reusable_seq(f_seal.j) > seq);

	pthread_mutex_lock(&h.mu);
	h.release = true;
	pthread_cond_broadcast(&h.cv);
	pthread_mutex_unlock(&h.mu);
	pthread_join(th, NULL);
	f_seal.want[10] = 2;
	CU_ASSERT_EQUAL(jnl_sync(f_seal.j), 0);
	jfix_crash(&f_seal);
	CU_ASSERT_EQUAL(jnl_replay(f_seal.lun, JOFF, &f_seal.b, &r), 0);
	jfix_check_home(&f_seal);
	jfix_end(&f_seal);
}

/*
 * Many small sealed transactions (more than the ring holds) interleaved
 * with plain ones: a sync makes all durable and a replay after a crash
 * gives every synced image back.
 */
static void test_many_sealed(void)
{
	struct jfix f;
	struct jnl_walk_result r;
	struct jnl_stats st;
	uint64_t seq, last = 0;

	jfix_start(&f, 256 * 1024);
	for (uint64_t i = 0; i < 600; i++) {
		jfix_txn(&f, i * 7, 1 + i % 3, 1, i + 1, false);
		if (i % 5 != 4) {
			CU_ASSERT_EQUAL_FATAL(jnl_seal(f.j, &seq), 0);
			CU_ASSERT(seq >= last);
			last = seq;
		}
		if (i % 97 == 0)
			CU_ASSERT_EQUAL(jnl_drain_to(f.j, last), 0);
	}
	CU_ASSERT_EQUAL(jnl_sync(f.j), 0);
	jnl_stats_get(f.j, &st);
	/* Seals joined open ones, and the ring went round more than once. */
	CU_ASSERT(st.commits < 600);
	CU_ASSERT(st.ring_blocks > 2 * 64);
	jfix_crash(&f);
	CU_ASSERT_EQUAL(jnl_replay(f.lun, JOFF, &f.b, &r), 0);
	jfix_check_home(&f);
	jfix_end(&f);
}

/*
 * A seal joins the sealed transaction the commit thread has not taken
 * yet: one sequence, one image per block (the newest), one commit; once
 * taken, the next seal starts another; one that would pass a quarter of
 * the ring starts another too.  A replay after a crash gives back the
 * newest image of every block.
 */
static void test_seal_joins_open(void)
{
	struct jfix f;
	struct jnl_walk_result r;
	struct jnl_stats st;
	uint64_t s1, s2, s3, s[8];
	uint8_t img[4096], want[4096];

	/* No commit on its own: only the drain below takes the open one. */
	jfix_start_ms(&f, 1 * MiB, 600000);
	jfix_txn(&f, 0, 3, 1, 1, false);
	CU_ASSERT_EQUAL_FATAL(jnl_seal(f.j, &s1), 0);
	jfix_txn(&f, 2, 2, 1, 2, false);
	CU_ASSERT_EQUAL_FATAL(jnl_seal(f.j, &s2), 0);
	CU_ASSERT_EQUAL(s2, s1);
	CU_ASSERT(jnl_running_seq(f.j) > s1);
	jnl_stats_get(f.j, &st);
	CU_ASSERT_EQUAL(st.commits, 0);
	CU_ASSERT_FATAL(jnl_lookup(f.j, HOME_LO + 2 * 4096, img));
	img_fill(want, HOME_LO + 2 * 4096, 2);
	CU_ASSERT(memcmp(img, want, 4096) == 0);

	CU_ASSERT_EQUAL_FATAL(jnl_drain_to(f.j, s1), 0);
	CU_ASSERT(block_is(&f, 0, 1) && block_is(&f, 1, 1));
	CU_ASSERT(block_is(&f, 2, 2) && block_is(&f, 3, 2));
	jnl_stats_get(f.j, &st);
	CU_ASSERT_EQUAL(st.commits, 1);
	CU_ASSERT_EQUAL(st.images, 4);
	CU_ASSERT(jnl_reusable_seq(f.j) > s1);

	/* Taken and home: the next seal is a transaction of its own. */
	jfix_txn(&f, 2, 1, 1, 3, false);
	CU_ASSERT_EQUAL_FATAL(jnl_seal(f.j, &s3), 0);
	CU_ASSERT(s3 > s1);

	/* 1 MiB: 255 ring blocks, so a quarter is 63.  The open one holds
	 * one block; six seals of 10 join it (61 images, 63 blocks with
	 * descriptor and commit), the seventh would pass the quarter. */
	for (int i = 0; i < 7; i++) {
		jfix_txn(&f, 100 + 10 * i, 10, 1, 10 + i, false);
		CU_ASSERT_EQUAL_FATAL(jnl_seal(f.j, &s[i]), 0);
	}
	CU_ASSERT_EQUAL(s[0], s3);
	CU_ASSERT_EQUAL(s[5], s3);
	CU_ASSERT(s[6] > s3);
	/* And a change that stays in the running transaction. */
	jfix_txn(&f, 2, 1, 1, 4, false);
	CU_ASSERT_EQUAL(jnl_sync(f.j), 0);
	jfix_crash(&f);
	CU_ASSERT_EQUAL(jnl_replay(f.lun, JOFF, &f.b, &r), 0);
	jfix_check_home(&f);
	jfix_end(&f);
}

static CU_TestInfo tests[] = {
	{ "format_reader_agree", test_format_reader_agree },
	{ "wrap_and_replay", test_wrap_and_replay },
	{ "multi_descriptor", test_multi_descriptor },
	{ "bad_commit_stops", test_bad_commit_stops },
	{ "bounds", test_bounds },
	{ "group_commit", test_group_commit },
	{ "seal_drain_with_open_handle", test_seal_drain_with_open_handle },
	{ "many_sealed", test_many_sealed },
	{ "seal_joins_open", test_seal_joins_open },
	CU_TEST_INFO_NULL
};

UNIT_SUITE("journal_ring", NULL, NULL, tests);
