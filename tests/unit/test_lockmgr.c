/*
 * The lock manager core (lockmgr/lock.c, lockprim.c, hbwatch.c): every
 * test runs once with COMPARE AND WRITE and once with the SCSI-2 reserve
 * path (test names end in _ats / _reserve).  A "host" is a lun handle of
 * its own on one shared file plus an identity (uuid, slot, hb_gen); the
 * file backend's OFD locks make separate handles act as separate
 * initiators, in one process or several.  Liveness comes from an oracle
 * the test controls, except in the hbwatch tests, which use real
 * heartbeats.
 */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"
#include "lun_scratch.h"
#include "vmfs/lockmgr.h"

#define LK_ADDR (8 * 4096u)        /* the lockable block under test */
#define LK_COUNTER (64 * 4096u)    /* contention test: the protected data */
#define MAX_HOSTS 16
#define WAIT_MS 30000u             /* "forever" for a waiter in a test */

/* The test's liveness oracle: host slot i is dead while dead[i]. */
static atomic_bool dead[MAX_HOSTS];

static int test_is_live(void *arg, const struct lock_holder *h)
{
	(void)arg;
	return h->slot < MAX_HOSTS ? !atomic_load(&dead[h->slot]) : 0;
}

struct host {
	struct lun *lun;
	struct lock_ctx *ctx;
	struct lock_host id;
};

static void host_id(struct lock_host *id, unsigned i)
{
	memset(id, 0, sizeof(*id));
	memset(id->self.uuid, 0xa0 + i, VMFS_UUID_SIZE);
	id->self.slot = i;
	id->self.hb_gen = 100 + i;
	id->is_live = test_is_live;
}

/* Host i on its own handle of path. */
static void host_open(struct host *h, const char *path, unsigned i,
		      unsigned prim)
{
	h->lun = open_lun(path);
	host_id(&h->id, i);
	atomic_store(&dead[i], false);
	CU_ASSERT_FATAL(lock_ctx_open(h->lun, &h->id, prim, &h->ctx) == 0);
	CU_ASSERT_FATAL(lock_ctx_primitive(h->ctx) == prim);
}

/* Host i through a fault-injecting wrapper (h->lun) of its own handle. */
static void fault_host_open(struct host *h, const char *path, unsigned i,
			    unsigned prim)
{
	CU_ASSERT_FATAL(lun_fault_wrap(open_lun(path), &h->lun) == 0);
	host_id(&h->id, i);
	atomic_store(&dead[i], false);
	CU_ASSERT_FATAL(lock_ctx_open(h->lun, &h->id, prim, &h->ctx) == 0);
}

static void host_close(struct host *h)
{
	lock_ctx_close(h->ctx);
	lun_close(h->lun);
}

static bool names(const struct lock_state *st, unsigned idx,
		  const struct host *h)
{
	const struct lock_holder *x = &st->holders[idx];

	return idx < st->nholders && x->slot == h->id.self.slot &&
	       x->hb_gen == h->id.self.hb_gen &&
	       !memcmp(x->uuid, h->id.self.uuid, VMFS_UUID_SIZE);
}

static const char *lun_file(const char *stem)
{
	return mkfile(stem, 1 * MiB);
}

/* Runs body once per primitive, as two CUnit tests. */
#define BOTH(fn)                                                      \
	static void fn##_ats(void) { fn(LOCK_PRIM_ATS); }             \
	static void fn##_reserve(void) { fn(LOCK_PRIM_RESERVE); }
#define BOTH_INFO(name, fn)                                           \
	{ name "_ats", fn##_ats }, { name "_reserve", fn##_reserve }

/* ---- exclusive acquire / release ------------------------------------- */

static void exclusive(unsigned prim)
{
	const char *path = lun_file("lk-excl");
	struct host a;
	struct lock_state st;
	struct lock_record r;

	host_open(&a, path, 1, prim);
	/* Never initialised: free, generation 0; the first acquire writes 1. */
	CU_ASSERT_EQUAL(lock_read(a.ctx, LK_ADDR, &st), 0);
	CU_ASSERT_EQUAL(st.mode, VMFS_LOCK_FREE);
	CU_ASSERT_EQUAL(st.gen, 0);
	CU_ASSERT(is_zero(st.raw, VMFS_LOCK_SIZE));

	CU_ASSERT_EQUAL(lock_acquire(a.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, &st), 0);
	CU_ASSERT_EQUAL(st.mode, VMFS_LOCK_EXCLUSIVE);
	CU_ASSERT_EQUAL(st.gen, 1);
	CU_ASSERT(names(&st, 0, &a));
	CU_ASSERT_EQUAL(st.nholders, 1);
	/* What out says is what is on disk. */
	{
		struct lock_state disk;

		CU_ASSERT_EQUAL(lock_read(a.ctx, LK_ADDR, &disk), 0);
		CU_ASSERT_EQUAL(memcmp(disk.raw, st.raw, VMFS_LOCK_SIZE), 0);
		CU_ASSERT_EQUAL(lock_record_decode(disk.raw, LK_ADDR, &r), 0);
		CU_ASSERT_EQUAL(r.mode, VMFS_LOCK_EXCLUSIVE);
		CU_ASSERT_EQUAL(r.owner_slot, 1);
		CU_ASSERT_EQUAL(r.owner_hb_gen, 101);
		CU_ASSERT_EQUAL(r.nholders, 0);
	}
	/* Ours already: no write, no new generation. */
	CU_ASSERT_EQUAL(lock_acquire(a.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, &st), 0);
	CU_ASSERT_EQUAL(st.gen, 1);

	/* Release: a sealed FREE record, generation + 1, not zeros. */
	CU_ASSERT_EQUAL(lock_release(a.ctx, LK_ADDR, &st), 0);
	CU_ASSERT_EQUAL(st.mode, VMFS_LOCK_FREE);
	CU_ASSERT_EQUAL(st.gen, 2);
	CU_ASSERT_EQUAL(st.nholders, 0);
	CU_ASSERT_EQUAL(lock_read(a.ctx, LK_ADDR, &st), 0);
	CU_ASSERT_FALSE(is_zero(st.raw, VMFS_LOCK_SIZE));
	CU_ASSERT_EQUAL(lun_md_verify(st.raw, VMFS_MAGIC_LOCK, LK_ADDR,
				      VMFS_LOCK_SIZE), 0);
	CU_ASSERT_EQUAL(st.gen, 2);
	CU_ASSERT_EQUAL(lock_acquire(a.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, &st), 0);
	CU_ASSERT_EQUAL(st.gen, 3);
	CU_ASSERT_EQUAL(lock_release(a.ctx, LK_ADDR, &st), 0);
	CU_ASSERT_EQUAL(st.gen, 4);
	/* Not a lockable block address, not a mode. */
	CU_ASSERT_EQUAL(lock_acquire(a.ctx, LK_ADDR + 512, VMFS_LOCK_EXCLUSIVE, 0, NULL), -EINVAL);
	CU_ASSERT_EQUAL(lock_acquire(a.ctx, LK_ADDR, VMFS_LOCK_FREE, 0, NULL), -EINVAL);
	host_close(&a);
}
BOTH(exclusive)

/* ---- conflicts between hosts and modes -------------------------------- */

static void conflicts(unsigned prim)
{
	const char *path = lun_file("lk-conf");
	struct host a, b, c;
	struct lock_state st;

	host_open(&a, path, 1, prim);
	host_open(&b, path, 2, prim);
	host_open(&c, path, 3, prim);

	CU_ASSERT_EQUAL(lock_acquire(a.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, NULL), 0);
	/* EBUSY names the owner, whatever mode the second host asks. */
	memset(&st, 0, sizeof(st));
	CU_ASSERT_EQUAL(lock_acquire(b.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, &st), -EBUSY);
	CU_ASSERT_EQUAL(st.mode, VMFS_LOCK_EXCLUSIVE);
	CU_ASSERT(names(&st, 0, &a));
	CU_ASSERT_EQUAL(lock_acquire(b.ctx, LK_ADDR, VMFS_LOCK_READONLY, 0, &st), -EBUSY);
	CU_ASSERT(names(&st, 0, &a));
	CU_ASSERT_EQUAL(lock_acquire(b.ctx, LK_ADDR, VMFS_LOCK_MULTIWRITER, 0, &st), -EBUSY);
	CU_ASSERT_EQUAL(st.gen, 1);	/* nothing was written */
	CU_ASSERT_EQUAL(lock_release(a.ctx, LK_ADDR, NULL), 0);

	/* Readers share, and keep an exclusive or multi-writer out. */
	CU_ASSERT_EQUAL(lock_acquire(b.ctx, LK_ADDR, VMFS_LOCK_READONLY, 0, &st), 0);
	CU_ASSERT_EQUAL(lock_acquire(c.ctx, LK_ADDR, VMFS_LOCK_READONLY, 0, &st), 0);
	CU_ASSERT_EQUAL(st.mode, VMFS_LOCK_READONLY);
	CU_ASSERT_EQUAL(st.nholders, 2);
	CU_ASSERT(names(&st, 0, &b) && names(&st, 1, &c));
	CU_ASSERT_EQUAL(st.gen, 4);
	CU_ASSERT_EQUAL(lock_acquire(a.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, &st), -EBUSY);
	CU_ASSERT_EQUAL(st.nholders, 2);
	CU_ASSERT(names(&st, 0, &b) && names(&st, 1, &c));
	CU_ASSERT_EQUAL(lock_acquire(a.ctx, LK_ADDR, VMFS_LOCK_MULTIWRITER, 0, NULL), -EBUSY);
	/* Leaving keeps the others, the last one out frees it. */
	CU_ASSERT_EQUAL(lock_release(b.ctx, LK_ADDR, &st), 0);
	CU_ASSERT_EQUAL(st.mode, VMFS_LOCK_READONLY);
	CU_ASSERT_EQUAL(st.nholders, 1);
	CU_ASSERT(names(&st, 0, &c));
	CU_ASSERT_EQUAL(lock_release(c.ctx, LK_ADDR, &st), 0);
	CU_ASSERT_EQUAL(st.mode, VMFS_LOCK_FREE);
	CU_ASSERT_EQUAL(st.gen, 6);

	/* Multi-writers share only with multi-writers. */
	CU_ASSERT_EQUAL(lock_acquire(a.ctx, LK_ADDR, VMFS_LOCK_MULTIWRITER, 0, NULL), 0);
	CU_ASSERT_EQUAL(lock_acquire(b.ctx, LK_ADDR, VMFS_LOCK_MULTIWRITER, 0, &st), 0);
	CU_ASSERT_EQUAL(st.nholders, 2);
	CU_ASSERT_EQUAL(lock_acquire(c.ctx, LK_ADDR, VMFS_LOCK_READONLY, 0, &st), -EBUSY);
	CU_ASSERT_EQUAL(st.mode, VMFS_LOCK_MULTIWRITER);
	CU_ASSERT(names(&st, 0, &a) && names(&st, 1, &b));
	CU_ASSERT_EQUAL(lock_acquire(c.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, NULL), -EBUSY);
	CU_ASSERT_EQUAL(lock_release(a.ctx, LK_ADDR, NULL), 0);
	CU_ASSERT_EQUAL(lock_release(b.ctx, LK_ADDR, NULL), 0);

	host_close(&a);
	host_close(&b);
	host_close(&c);
}
BOTH(conflicts)

/* 13 hosts share; the 14th is told the lock is full. */
static void max_holders(unsigned prim)
{
	const char *path = lun_file("lk-max");
	struct host h[VMFS_LOCK_MAX_HOLDERS + 1];
	struct lock_state st;
	unsigned i;

	for (i = 0; i <= VMFS_LOCK_MAX_HOLDERS; i++)
		host_open(&h[i], path, i, prim);
	for (i = 0; i < VMFS_LOCK_MAX_HOLDERS; i++)
		CU_ASSERT_EQUAL(lock_acquire(h[i].ctx, LK_ADDR, VMFS_LOCK_READONLY, 0, &st), 0);
	CU_ASSERT_EQUAL(st.nholders, VMFS_LOCK_MAX_HOLDERS);
	CU_ASSERT_EQUAL(lock_acquire(h[i].ctx, LK_ADDR, VMFS_LOCK_READONLY, 0, &st), -EBUSY);
	CU_ASSERT_EQUAL(st.nholders, VMFS_LOCK_MAX_HOLDERS);
	CU_ASSERT(names(&st, 12, &h[12]));
	/* One leaves: room for the 14th. */
	CU_ASSERT_EQUAL(lock_release(h[5].ctx, LK_ADDR, NULL), 0);
	CU_ASSERT_EQUAL(lock_acquire(h[i].ctx, LK_ADDR, VMFS_LOCK_READONLY, 0, &st), 0);
	CU_ASSERT(names(&st, 12, &h[i]));
	CU_ASSERT(names(&st, 5, &h[6]));
	for (i = 0; i <= VMFS_LOCK_MAX_HOLDERS; i++)
		host_close(&h[i]);
}
BOTH(max_holders)

/* ---- upgrade, downgrade, and what a non-holder may not do ------------- */

static void upgrade_downgrade(unsigned prim)
{
	const char *path = lun_file("lk-updown");
	struct host a, b, c;
	struct lock_state st;

	host_open(&a, path, 1, prim);
	host_open(&b, path, 2, prim);
	host_open(&c, path, 3, prim);

	CU_ASSERT_EQUAL(lock_acquire(a.ctx, LK_ADDR, VMFS_LOCK_READONLY, 0, NULL), 0);
	CU_ASSERT_EQUAL(lock_acquire(b.ctx, LK_ADDR, VMFS_LOCK_READONLY, 0, NULL), 0);
	/* Not alone: the other reader is named. */
	CU_ASSERT_EQUAL(lock_upgrade(a.ctx, LK_ADDR, 0, &st), -EBUSY);
	CU_ASSERT(names(&st, 1, &b));
	/* A mode change is upgrade's, not acquire's. */
	CU_ASSERT_EQUAL(lock_acquire(a.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, NULL), -EINVAL);
	CU_ASSERT_EQUAL(lock_release(b.ctx, LK_ADDR, NULL), 0);
	CU_ASSERT_EQUAL(lock_upgrade(a.ctx, LK_ADDR, 0, &st), 0);
	CU_ASSERT_EQUAL(st.mode, VMFS_LOCK_EXCLUSIVE);
	CU_ASSERT(names(&st, 0, &a));
	CU_ASSERT_EQUAL(st.gen, 4);
	CU_ASSERT_EQUAL(lock_upgrade(a.ctx, LK_ADDR, 0, &st), 0);	/* already */
	CU_ASSERT_EQUAL(st.gen, 4);

	/* A host that does not hold it may not change it. */
	CU_ASSERT_EQUAL(lock_release(c.ctx, LK_ADDR, &st), -EPERM);
	CU_ASSERT(names(&st, 0, &a));
	CU_ASSERT_EQUAL(lock_downgrade(c.ctx, LK_ADDR, NULL), -EPERM);
	CU_ASSERT_EQUAL(lock_upgrade(c.ctx, LK_ADDR, 0, NULL), -EPERM);

	CU_ASSERT_EQUAL(lock_downgrade(a.ctx, LK_ADDR, &st), 0);
	CU_ASSERT_EQUAL(st.mode, VMFS_LOCK_READONLY);
	CU_ASSERT_EQUAL(st.nholders, 1);
	CU_ASSERT(names(&st, 0, &a));
	CU_ASSERT_EQUAL(st.gen, 5);
	CU_ASSERT_EQUAL(lock_acquire(c.ctx, LK_ADDR, VMFS_LOCK_READONLY, 0, &st), 0);
	CU_ASSERT_EQUAL(st.nholders, 2);
	CU_ASSERT_EQUAL(lock_release(a.ctx, LK_ADDR, NULL), 0);
	CU_ASSERT_EQUAL(lock_release(c.ctx, LK_ADDR, &st), 0);
	CU_ASSERT_EQUAL(st.mode, VMFS_LOCK_FREE);
	/* Nobody holds a free lock. */
	CU_ASSERT_EQUAL(lock_release(a.ctx, LK_ADDR, NULL), -EPERM);
	CU_ASSERT_EQUAL(lock_read(a.ctx, LK_ADDR, &st), 0);
	CU_ASSERT_EQUAL(st.gen, 8);

	host_close(&a);
	host_close(&b);
	host_close(&c);
}
BOTH(upgrade_downgrade)

/* ---- waiting for a holder --------------------------------------------- */

struct delayed_release {
	struct host *h;
	unsigned delay_ms;
};

static void *release_later(void *arg)
{
	struct delayed_release *d = arg;

	usleep(d->delay_ms * 1000);
	CU_ASSERT_EQUAL(lock_release(d->h->ctx, LK_ADDR, NULL), 0);
	return NULL;
}

static void wait_for_holder(unsigned prim)
{
	const char *path = lun_file("lk-wait");
	struct host a, b;
	struct lock_state st;
	struct delayed_release d = { &a, 100 };
	pthread_t t;

	host_open(&a, path, 1, prim);
	host_open(&b, path, 2, prim);
	CU_ASSERT_EQUAL(lock_acquire(a.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, NULL), 0);
	/* A short wait runs out while a holds it. */
	CU_ASSERT_EQUAL(lock_acquire(b.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 30, &st), -EBUSY);
	CU_ASSERT(names(&st, 0, &a));
	/* A long one gets it once a lets go. */
	CU_ASSERT_FATAL(pthread_create(&t, NULL, release_later, &d) == 0);
	CU_ASSERT_EQUAL(lock_acquire(b.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, WAIT_MS, &st), 0);
	CU_ASSERT(names(&st, 0, &b));
	CU_ASSERT_EQUAL(st.gen, 3);
	pthread_join(t, NULL);
	host_close(&a);
	host_close(&b);
}
BOTH(wait_for_holder)

/* ---- break ------------------------------------------------------------- */

static void break_rules(unsigned prim)
{
	const char *path = lun_file("lk-break");
	struct host a, b, c, d;
	struct lock_state st, br, stale;

	host_open(&a, path, 1, prim);
	host_open(&b, path, 2, prim);
	host_open(&c, path, 3, prim);
	host_open(&d, path, 4, prim);

	CU_ASSERT_EQUAL(lock_read(b.ctx, LK_ADDR, &stale), 0);	/* FREE, gen 0 */
	CU_ASSERT_EQUAL(lock_acquire(a.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, NULL), 0);
	CU_ASSERT_EQUAL(lock_acquire(b.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, &st), -EBUSY);
	/* The owner is live: refused, nothing written. */
	CU_ASSERT_EQUAL(lock_break(b.ctx, &st, &br), -EBUSY);
	CU_ASSERT_EQUAL(br.nholders, 0);
	CU_ASSERT_EQUAL(lock_read(b.ctx, LK_ADDR, &br), 0);
	CU_ASSERT_EQUAL(br.gen, 1);
	/* Dead: broken, and the broken owner is named for its journal. */
	atomic_store(&dead[1], true);
	CU_ASSERT_EQUAL(lock_break(b.ctx, &st, &br), 0);
	CU_ASSERT_EQUAL(br.nholders, 1);
	CU_ASSERT(names(&br, 0, &a));
	CU_ASSERT_EQUAL(br.mode, VMFS_LOCK_FREE);
	CU_ASSERT_EQUAL(br.gen, 2);
	/* A second break of the same record: someone changed it. */
	CU_ASSERT_EQUAL(lock_break(c.ctx, &st, &br), -VMFS_E_MISCOMPARE);
	/* The dead host's stale view of the lock cannot write either. */
	atomic_store(&dead[1], false);
	CU_ASSERT_EQUAL(lock_release(a.ctx, LK_ADDR, NULL), -EPERM);

	/* Shared: only the dead holders go; the live ones keep it. */
	CU_ASSERT_EQUAL(lock_acquire(a.ctx, LK_ADDR, VMFS_LOCK_READONLY, 0, NULL), 0);
	CU_ASSERT_EQUAL(lock_acquire(b.ctx, LK_ADDR, VMFS_LOCK_READONLY, 0, NULL), 0);
	CU_ASSERT_EQUAL(lock_acquire(c.ctx, LK_ADDR, VMFS_LOCK_READONLY, 0, NULL), 0);
	CU_ASSERT_EQUAL(lock_acquire(d.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, &st), -EBUSY);
	CU_ASSERT_EQUAL(lock_break(d.ctx, &st, &br), -EBUSY);	/* all live */
	atomic_store(&dead[2], true);
	CU_ASSERT_EQUAL(lock_break(d.ctx, &st, &br), 0);
	CU_ASSERT_EQUAL(br.nholders, 1);
	CU_ASSERT(names(&br, 0, &b));
	CU_ASSERT_EQUAL(br.mode, VMFS_LOCK_READONLY);
	CU_ASSERT_EQUAL(lock_read(d.ctx, LK_ADDR, &st), 0);
	CU_ASSERT_EQUAL(st.nholders, 2);
	CU_ASSERT(names(&st, 0, &a) && names(&st, 1, &c));
	CU_ASSERT_EQUAL(st.gen, br.gen);
	atomic_store(&dead[1], true);
	atomic_store(&dead[3], true);
	CU_ASSERT_EQUAL(lock_break(d.ctx, &st, &br), 0);
	CU_ASSERT_EQUAL(br.nholders, 2);
	CU_ASSERT_EQUAL(br.mode, VMFS_LOCK_FREE);
	CU_ASSERT_EQUAL(lock_acquire(d.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, NULL), 0);

	/* Stale copies, old and recent, always miscompare. */
	CU_ASSERT_EQUAL(lock_break(b.ctx, &stale, NULL), 0);	/* FREE: no-op */
	atomic_store(&dead[4], true);
	CU_ASSERT_EQUAL(lock_read(b.ctx, LK_ADDR, &stale), 0);
	CU_ASSERT_EQUAL(lock_release(d.ctx, LK_ADDR, NULL), 0);
	CU_ASSERT_EQUAL(lock_acquire(d.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, NULL), 0);
	/* Same mode, same owner, only the generation differs. */
	CU_ASSERT_EQUAL(lock_break(b.ctx, &stale, &br), -VMFS_E_MISCOMPARE);
	CU_ASSERT_EQUAL(br.nholders, 0);
	CU_ASSERT_EQUAL(lock_read(b.ctx, LK_ADDR, &st), 0);
	CU_ASSERT_EQUAL(st.mode, VMFS_LOCK_EXCLUSIVE);
	CU_ASSERT(names(&st, 0, &d));

	/* No oracle, no break. */
	{
		struct lock_host blind = d.id;
		struct lock_ctx *x;

		blind.is_live = NULL;
		CU_ASSERT_FATAL(lock_ctx_open(d.lun, &blind, prim, &x) == 0);
		CU_ASSERT_EQUAL(lock_break(x, &st, NULL), -EINVAL);
		lock_ctx_close(x);
	}
	host_close(&a);
	host_close(&b);
	host_close(&c);
	host_close(&d);
}
BOTH(break_rules)

/* Two breakers race on the same record: exactly one wins, 200 times. */
#define BREAK_ROUNDS 200

struct breaker {
	struct host h;
	pthread_barrier_t *bar;
	const struct lock_state *expected;
	int ret;
};

static void *breaker_run(void *arg)
{
	struct breaker *b = arg;

	pthread_barrier_wait(b->bar);
	b->ret = lock_break(b->h.ctx, b->expected, NULL);
	return NULL;
}

static void break_race(unsigned prim)
{
	const char *path = lun_file("lk-brace");
	struct host owner;
	struct breaker br[2];
	pthread_barrier_t bar;
	struct lock_state st;
	unsigned round, bad = 0;

	host_open(&owner, path, 1, prim);
	for (int i = 0; i < 2; i++) {
		host_open(&br[i].h, path, 2 + i, prim);
		br[i].bar = &bar;
		br[i].expected = &st;
	}
	pthread_barrier_init(&bar, NULL, 2);
	for (round = 0; round < BREAK_ROUNDS; round++) {
		pthread_t t[2];
		int wins = 0, lost = 0;

		atomic_store(&dead[1], false);
		CU_ASSERT_FATAL(lock_acquire(owner.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, NULL) == 0);
		atomic_store(&dead[1], true);
		/* Both break from the same read of the record. */
		CU_ASSERT_FATAL(lock_read(br[0].h.ctx, LK_ADDR, &st) == 0);
		for (int i = 0; i < 2; i++)
			pthread_create(&t[i], NULL, breaker_run, &br[i]);
		for (int i = 0; i < 2; i++) {
			pthread_join(t[i], NULL);
			wins += br[i].ret == 0;
			lost += br[i].ret == -VMFS_E_MISCOMPARE;
		}
		if (wins != 1 || lost != 1) {
			if (!bad++)
				fprintf(stderr, "\n  round %u: breakers returned %d and %d\n",
					round, br[0].ret, br[1].ret);
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(lock_read(owner.ctx, LK_ADDR, &st), 0);
	CU_ASSERT_EQUAL(st.mode, VMFS_LOCK_FREE);
	CU_ASSERT_EQUAL(st.gen, 2 * BREAK_ROUNDS);
	pthread_barrier_destroy(&bar);
	host_close(&owner);
	host_close(&br[0].h);
	host_close(&br[1].h);
}
BOTH(break_race)

/* ---- mutual exclusion under contention -------------------------------- */

#define CONT_HOSTS 4
#define CONT_ROUNDS 150

struct worker {
	struct host h;
	uint8_t *buf;
	unsigned done;      /* critical sections completed */
	int err;
};

/* Read-modify-write of a counter that only the lock protects, with a
 * pause in the middle so that two holders at once would lose updates. */
static void *worker_run(void *arg)
{
	struct worker *w = arg;

	for (unsigned i = 0; i < CONT_ROUNDS && !w->err; i++) {
		uint64_t v;
		int ret = lock_acquire(w->h.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE,
				       WAIT_MS, NULL);

		if (ret) {
			w->err = ret;
			break;
		}
		ret = lun_read(w->h.lun, w->buf, 512, LK_COUNTER);
		memcpy(&v, w->buf, sizeof(v));
		v++;
		usleep(50);
		memcpy(w->buf, &v, sizeof(v));
		if (!ret)
			ret = lun_write(w->h.lun, w->buf, 512, LK_COUNTER);
		if (!ret)
			w->done++;
		if (!ret)
			ret = lock_release(w->h.ctx, LK_ADDR, NULL);
		w->err = ret;
	}
	return NULL;
}

/* prims[i]: host i's primitive; mixing them checks they exclude each other. */
static void contention_run(const char *stem, const unsigned *prims)
{
	const char *path = lun_file(stem);
	struct worker w[CONT_HOSTS];
	pthread_t t[CONT_HOSTS];
	unsigned total = 0;
	uint64_t v;
	uint8_t *buf = lun_buf_alloc(512);

	for (int i = 0; i < CONT_HOSTS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		host_open(&w[i].h, path, 1 + i, prims[i]);
		w[i].buf = lun_buf_alloc(512);
	}
	for (int i = 0; i < CONT_HOSTS; i++)
		pthread_create(&t[i], NULL, worker_run, &w[i]);
	for (int i = 0; i < CONT_HOSTS; i++) {
		pthread_join(t[i], NULL);
		if (w[i].err)
			fprintf(stderr, "\n  host %d: %s\n", i, vmfs_strerror(w[i].err));
		CU_ASSERT_EQUAL(w[i].err, 0);
		total += w[i].done;
	}
	CU_ASSERT_EQUAL(lun_read(w[0].h.lun, buf, 512, LK_COUNTER), 0);
	memcpy(&v, buf, sizeof(v));
	if (v != total)
		fprintf(stderr, "\n  counter %llu after %u critical sections: updates lost\n",
			(unsigned long long)v, total);
	CU_ASSERT_EQUAL(v, total);
	CU_ASSERT_EQUAL(total, CONT_HOSTS * CONT_ROUNDS);
	for (int i = 0; i < CONT_HOSTS; i++) {
		lun_buf_free(w[i].buf);
		host_close(&w[i].h);
	}
	lun_buf_free(buf);
}

static void contention(unsigned prim)
{
	unsigned prims[CONT_HOSTS];

	for (int i = 0; i < CONT_HOSTS; i++)
		prims[i] = prim;
	contention_run("lk-cont", prims);
}
BOTH(contention)

static void test_contention_mixed(void)
{
	const unsigned prims[CONT_HOSTS] = { LOCK_PRIM_ATS, LOCK_PRIM_RESERVE,
					     LOCK_PRIM_ATS, LOCK_PRIM_RESERVE };

	contention_run("lk-contmix", prims);
}

/* ---- a process that dies holding the reservation ---------------------- */

static void reserve_holder_dies(unsigned prim)
{
	const char *path = lun_file("lk-resdie");
	struct host a;
	struct lock_state st;
	int pipefd[2];
	char c;
	pid_t pid;
	int status;

	CU_ASSERT_FATAL(pipe(pipefd) == 0);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		struct lun *l;

		/* The child stops, as a host would hang, with the LUN reserved. */
		close(pipefd[0]);
		if (lun_open(path, 0, &l) || lun_reserve(l, 0))
			_exit(1);
		if (write(pipefd[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(pipefd[1]);
	CU_ASSERT_FATAL(read(pipefd[0], &c, 1) == 1);
	close(pipefd[0]);

	host_open(&a, path, 1, prim);
	/* Held: both primitives are refused, after a bounded wait. */
	CU_ASSERT_EQUAL(lock_acquire(a.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, &st),
			-VMFS_E_RESERVED);
	/* Its holder dies: the reservation dies with it. */
	kill(pid, SIGKILL);
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT_EQUAL(lock_acquire(a.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, &st), 0);
	CU_ASSERT_EQUAL(st.gen, 1);
	host_close(&a);
}
BOTH(reserve_holder_dies)

/* ---- a damaged record is never acted on ------------------------------- */

static void corrupt_record(unsigned prim)
{
	const char *path = lun_file("lk-corrupt");
	struct host a;
	struct lock_state st;
	uint8_t *buf = lun_buf_alloc(512), *now = lun_buf_alloc(512);

	host_open(&a, path, 1, prim);
	CU_ASSERT_EQUAL(lock_acquire(a.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, NULL), 0);
	CU_ASSERT_EQUAL(lun_read(a.lun, buf, 512, LK_ADDR), 0);
	buf[0x30] ^= 1;	/* the owner uuid: crc mismatch */
	CU_ASSERT_EQUAL(lun_write(a.lun, buf, 512, LK_ADDR), 0);
	CU_ASSERT_EQUAL(lock_release(a.ctx, LK_ADDR, NULL), -VMFS_E_BAD_CRC);
	CU_ASSERT_EQUAL(lock_acquire(a.ctx, LK_ADDR, VMFS_LOCK_READONLY, 0, NULL), -VMFS_E_BAD_CRC);
	CU_ASSERT_EQUAL(lock_read(a.ctx, LK_ADDR, &st), -VMFS_E_BAD_CRC);
	/* Unchanged on disk. */
	CU_ASSERT_EQUAL(lun_read(a.lun, now, 512, LK_ADDR), 0);
	CU_ASSERT_EQUAL(memcmp(now, buf, 512), 0);
	lun_buf_free(buf);
	lun_buf_free(now);
	host_close(&a);
}
BOTH(corrupt_record)

/* A record read while another host rewrites it can come back torn (the
 * file backend's plain reads are not atomic with another handle's
 * compare-and-write): it is read again, not called damaged (a record
 * damaged for good still is: corrupt_record). */
static void torn_read(unsigned prim)
{
	const char *path = lun_file("lk-torn");
	struct host a, b;
	struct lock_state st;

	fault_host_open(&a, path, 1, prim);
	host_open(&b, path, 2, prim);
	CU_ASSERT_EQUAL(lock_acquire(b.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, NULL), 0);
	CU_ASSERT_EQUAL(lock_release(b.ctx, LK_ADDR, NULL), 0);
	lun_fault_tear_reads_at(a.lun, LK_ADDR + 0x30, 2);
	CU_ASSERT_EQUAL(lock_acquire(a.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, &st), 0);
	CU_ASSERT_EQUAL(st.gen, 3);
	CU_ASSERT_EQUAL(lock_read(b.ctx, LK_ADDR, &st), 0);
	CU_ASSERT_EQUAL(st.mode, VMFS_LOCK_EXCLUSIVE);
	CU_ASSERT_EQUAL(st.holders[0].slot, a.id.self.slot);
	host_close(&a);
	host_close(&b);
}
BOTH(torn_read)

/* ---- an I/O error in the middle of a change ---------------------------- */

/*
 * The write of a lock change fails: the error comes back, nothing is
 * retried over it, the record is unchanged, and on the reserve path the
 * reservation was released anyway (another host gets the lock at once
 * instead of a reservation conflict).
 */
static void io_error(unsigned prim)
{
	const char *path = lun_file("lk-eio");
	struct host a, b;
	struct lock_state st;

	fault_host_open(&a, path, 1, prim);
	host_open(&b, path, 2, prim);

	lun_fault_fail_nth_write(a.lun, 1, -EIO);
	CU_ASSERT_EQUAL(lock_acquire(a.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, NULL), -EIO);
	CU_ASSERT_EQUAL(lun_fault_writes(a.lun), 1);	/* one try, no more */
	CU_ASSERT_EQUAL(lock_read(b.ctx, LK_ADDR, &st), 0);
	CU_ASSERT_EQUAL(st.mode, VMFS_LOCK_FREE);
	CU_ASSERT_EQUAL(st.gen, 0);
	CU_ASSERT_EQUAL(lock_acquire(b.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, &st), 0);
	CU_ASSERT_EQUAL(st.gen, 1);
	host_close(&a);
	host_close(&b);
}
BOTH(io_error)

/* ---- what an uncontended change costs -------------------------------- */

/* The I/Os of f since c0, by kind, as "reads writes caws reserves releases". */
static void cost(struct lun *f, struct lun_fault_counts *c0, uint64_t want[5],
		 const char *what)
{
	struct lun_fault_counts c;
	uint64_t got[5];

	lun_fault_counts(f, &c);
	got[0] = c.reads - c0->reads;
	got[1] = c.writes - c0->writes;
	got[2] = c.caws - c0->caws;
	got[3] = c.reserves - c0->reserves;
	got[4] = c.releases - c0->releases;
	if (memcmp(got, want, sizeof(got)))
		fprintf(stderr, "\n  %s: reads %llu writes %llu caws %llu reserves %llu releases %llu\n",
			what, (unsigned long long)got[0], (unsigned long long)got[1],
			(unsigned long long)got[2], (unsigned long long)got[3],
			(unsigned long long)got[4]);
	CU_ASSERT_EQUAL(memcmp(got, want, sizeof(got)), 0);
	*c0 = c;
}

/*
 * The I/Os of uncontended changes (SPEC §5, lockmgr/lockprim.c): with
 * ATS the first change of a record reads it and compare-and-writes it;
 * later changes of a record this host changed last are one COMPARE AND
 * WRITE; a record another host changed since costs a miscompare more.
 * With RESERVE every change is reserve, read, write, release.  And a
 * remembered record that says "already yours" is never believed without
 * a read: a lock broken by another host is not taken for held.
 */
static void uncontended_cost(unsigned prim)
{
	const char *path = lun_file("lk-cost");
	struct lun *inner = open_lun(path), *f;
	struct lun_fault_counts c0;
	struct lock_state st, br;
	struct lock_host ida;
	struct lock_ctx *ca;
	struct host b;
	bool ats = prim == LOCK_PRIM_ATS;
	uint64_t first[5] = { 1, ats ? 0 : 1, ats ? 1 : 0, !ats, !ats };
	uint64_t again[5] = { ats ? 0 : 1, ats ? 0 : 1, ats ? 1 : 0, !ats, !ats };
	uint64_t moved[5] = { ats ? 0 : 1, ats ? 0 : 1, ats ? 2 : 0, !ats, !ats };

	CU_ASSERT_FATAL(lun_fault_wrap(inner, &f) == 0);
	host_id(&ida, 1);
	CU_ASSERT_FATAL(lock_ctx_open(f, &ida, prim, &ca) == 0);
	host_open(&b, path, 2, prim);
	lun_fault_counts(f, &c0);

	CU_ASSERT_EQUAL(lock_acquire(ca, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, NULL), 0);
	cost(f, &c0, first, "first acquire");
	CU_ASSERT_EQUAL(lock_release(ca, LK_ADDR, NULL), 0);
	cost(f, &c0, again, "release");
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(lock_acquire(ca, LK_ADDR, VMFS_LOCK_READONLY, 0, NULL), 0);
		cost(f, &c0, again, "acquire again");
		CU_ASSERT_EQUAL(lock_release(ca, LK_ADDR, NULL), 0);
		cost(f, &c0, again, "release again");
	}
	/* B changed it meanwhile: one miscompare more, and it is right. */
	CU_ASSERT_EQUAL(lock_acquire(b.ctx, LK_ADDR, VMFS_LOCK_READONLY, 0, NULL), 0);
	CU_ASSERT_EQUAL(lock_acquire(ca, LK_ADDR, VMFS_LOCK_READONLY, 0, &st), 0);
	cost(f, &c0, moved, "acquire after another host's change");
	CU_ASSERT_EQUAL(st.nholders, 2);
	CU_ASSERT_EQUAL(lock_release(b.ctx, LK_ADDR, NULL), 0);
	CU_ASSERT_EQUAL(lock_release(ca, LK_ADDR, NULL), 0);

	/* A holds it; A is judged dead and B breaks and takes it; A asks
	 * again: what A remembers says "yours", the disk says B's. */
	CU_ASSERT_EQUAL(lock_acquire(ca, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, NULL), 0);
	atomic_store(&dead[1], true);
	CU_ASSERT_EQUAL(lock_acquire(b.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, &st), -EBUSY);
	CU_ASSERT_EQUAL(lock_break(b.ctx, &st, &br), 0);
	CU_ASSERT_EQUAL(lock_acquire(b.ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, NULL), 0);
	atomic_store(&dead[1], false);
	CU_ASSERT_EQUAL(lock_acquire(ca, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, &st), -EBUSY);
	CU_ASSERT(names(&st, 0, &b));

	lock_ctx_close(ca);
	lun_close(f);
	host_close(&b);
}
BOTH(uncontended_cost)

/* ---- which primitive ------------------------------------------------- */

static void test_primitive_choice(void)
{
	const char *path = lun_file("lk-prim");
	struct lun *inner = open_lun(path), *f;
	struct lock_host id;
	struct lock_ctx *ctx;

	host_id(&id, 1);
	CU_ASSERT_FATAL(lun_fault_wrap(inner, &f) == 0);
	/* The file backend has both: ATS unless told otherwise. */
	CU_ASSERT_FATAL(lock_ctx_open(f, &id, 0, &ctx) == 0);
	CU_ASSERT_EQUAL(lock_ctx_primitive(ctx), LOCK_PRIM_ATS);
	lock_ctx_close(ctx);
	CU_ASSERT_EQUAL(lock_ctx_open(f, &id, LOCK_PRIM_ATS | LOCK_PRIM_RESERVE, &ctx), -EINVAL);
	/* A LUN without ATS (tgt) falls back to the reserve path ... */
	lun_fault_set_caps(f, LUN_CAP_RESERVE);
	CU_ASSERT_FATAL(lock_ctx_open(f, &id, 0, &ctx) == 0);
	CU_ASSERT_EQUAL(lock_ctx_primitive(ctx), LOCK_PRIM_RESERVE);
	CU_ASSERT_EQUAL(lock_acquire(ctx, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, NULL), 0);
	CU_ASSERT_EQUAL(lock_release(ctx, LK_ADDR, NULL), 0);
	lock_ctx_close(ctx);
	/* ... and cannot be forced onto ATS. */
	CU_ASSERT_EQUAL(lock_ctx_open(f, &id, LOCK_PRIM_ATS, &ctx), -EOPNOTSUPP);
	lun_fault_set_caps(f, LUN_CAP_ATS);
	CU_ASSERT_EQUAL(lock_ctx_open(f, &id, LOCK_PRIM_RESERVE, &ctx), -EOPNOTSUPP);
	lun_fault_set_caps(f, 0);
	CU_ASSERT_EQUAL(lock_ctx_open(f, &id, 0, &ctx), -EOPNOTSUPP);
	lun_close(f);
}

/* ---- the real liveness oracle over heartbeats ------------------------- */

#define HBW_OFF (128 * 4096u)
#define HBW_LEASE_MS 1000u

static void hb_opts_for(struct hb_opts *o, uint8_t *uuid, int id)
{
	memset(o, 0, sizeof(*o));
	memset(uuid, 0x50 + id, VMFS_UUID_SIZE);
	o->host_uuid = uuid;
	o->hostname = "unit";
	o->lease_ms = HBW_LEASE_MS;
	o->journal_offset = 512 * 1024;
	o->journal_size = 4096;
}

/* Poll until the watcher judges h DEAD; the ms it took, or -1 after
 * limit_ms. */
static int64_t wait_dead(struct lock_hbwatch *w, const struct lock_holder *h,
			 unsigned limit_ms)
{
	int64_t t0 = now_ms();

	while (now_ms() - t0 < limit_ms) {
		int fate = lock_hbwatch_judge(w, h);

		CU_ASSERT(fate >= 0);
		if (fate != LOCK_HOLDER_LIVE)
			return fate == LOCK_HOLDER_DEAD ? now_ms() - t0 : -1;
		usleep(20 * 1000);
	}
	return -1;
}

/*
 * Real heartbeats: a holds the lock; b's watcher sees a LIVE while it
 * renews, DEAD once it stops (not sooner than its lease allows), and GONE
 * once a's slot moves on.  A host that did not replay a (oracle "holds")
 * may break it only when GONE; the replayer (oracle "is_live") once DEAD.
 */
static void hbwatch(unsigned prim)
{
	const char *path = lun_file("lk-hbw");
	struct lun *la = open_lun(path), *lb = open_lun(path), *la2;
	struct lock_hbwatch *w;
	struct lock_host ida, idb, idr;
	struct lock_ctx *ca, *cb, *cr;
	struct lock_state st, br;
	struct lock_holder other;
	struct hb_timeouts t;
	struct hb_opts o;
	uint8_t ua[VMFS_UUID_SIZE], ub[VMFS_UUID_SIZE];
	struct hb *ha, *hb, *ha2;
	int64_t ms;

	CU_ASSERT_FATAL(hb_region_format(la, HBW_OFF, 4) == 0);
	hb_opts_for(&o, ua, 1);
	CU_ASSERT_FATAL(hb_join(la, HBW_OFF, &o, &ha) == 0);
	hb_opts_for(&o, ub, 2);
	CU_ASSERT_FATAL(hb_join(lb, HBW_OFF, &o, &hb) == 0);
	CU_ASSERT_FATAL(lock_hbwatch_open(lb, HBW_OFF, &w) == 0);
	lock_host_from_hb(&ida, ha, ua);
	lock_host_from_hb(&idb, hb, ub);
	CU_ASSERT_EQUAL(ida.self.slot, hb_slot_index(ha));
	CU_ASSERT_EQUAL(ida.self.hb_gen, hb_generation(ha));
	CU_ASSERT_PTR_NULL(ida.is_live);
	idb.is_live = lock_hbwatch_holds;
	idb.live_arg = w;
	idr = idb;	/* b again, as the replayer of a */
	idr.is_live = lock_hbwatch_is_live;
	CU_ASSERT_FATAL(lock_ctx_open(la, &ida, prim, &ca) == 0);
	CU_ASSERT_FATAL(lock_ctx_open(lb, &idb, prim, &cb) == 0);
	CU_ASSERT_FATAL(lock_ctx_open(lb, &idr, prim, &cr) == 0);

	/* Slots that show another generation, or nobody: gone. */
	other = ida.self;
	other.hb_gen++;
	CU_ASSERT_EQUAL(lock_hbwatch_judge(w, &other), LOCK_HOLDER_GONE);
	other = ida.self;
	other.slot = 3;
	CU_ASSERT_EQUAL(lock_hbwatch_judge(w, &other), LOCK_HOLDER_GONE);

	CU_ASSERT_EQUAL(lock_acquire(ca, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, NULL), 0);
	CU_ASSERT_EQUAL(lock_acquire(cb, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, &st), -EBUSY);
	CU_ASSERT_EQUAL(lock_hbwatch_judge(w, &ida.self), LOCK_HOLDER_LIVE);
	CU_ASSERT_EQUAL(lock_break(cr, &st, NULL), -EBUSY);
	/* a renews: still live well past its lease. */
	usleep(3 * HBW_LEASE_MS * 1000 / 2);
	CU_ASSERT_EQUAL(lock_hbwatch_judge(w, &ida.self), LOCK_HOLDER_LIVE);
	CU_ASSERT_EQUAL(lock_break(cr, &st, NULL), -EBUSY);

	/* a stops renewing (its I/O fails, as a host cut off from the LUN). */
	lun_fence(la);
	CU_ASSERT_EQUAL(lock_hbwatch_judge(w, &ida.self), LOCK_HOLDER_LIVE);
	hb_timeouts_from_lease(HBW_LEASE_MS, &t);
	ms = wait_dead(w, &ida.self, 20 * t.dead_ms);
	/* Never sooner than its lease + one renewal of our own clock. */
	CU_ASSERT(ms >= (int64_t)t.dead_ms - t.renew_ms);
	CU_ASSERT(ms >= 0);
	/* Dead, journal not replayed: only the replayer may break. */
	CU_ASSERT_EQUAL(lock_break(cb, &st, NULL), -EBUSY);
	CU_ASSERT_EQUAL(lock_hbwatch_is_live(w, &ida.self), 0);
	CU_ASSERT_EQUAL(lock_hbwatch_holds(w, &ida.self), 1);

	/* a mounts again (new generation): its old locks are gone. */
	la2 = open_lun(path);
	hb_opts_for(&o, ua, 1);
	CU_ASSERT_FATAL(hb_join(la2, HBW_OFF, &o, &ha2) == 0);
	CU_ASSERT_EQUAL(hb_slot_index(ha2), ida.self.slot);
	CU_ASSERT_EQUAL(lock_hbwatch_judge(w, &ida.self), LOCK_HOLDER_GONE);
	CU_ASSERT_EQUAL(lock_break(cb, &st, &br), 0);
	CU_ASSERT_EQUAL(br.nholders, 1);
	CU_ASSERT_EQUAL(br.holders[0].slot, ida.self.slot);
	CU_ASSERT_EQUAL(br.mode, VMFS_LOCK_FREE);
	CU_ASSERT_EQUAL(lock_acquire(cb, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, NULL), 0);

	/* Leaving frees the slot: gone at once. */
	CU_ASSERT_EQUAL(lock_hbwatch_judge(w, &idb.self), LOCK_HOLDER_LIVE);
	lock_ctx_close(ca);
	lock_ctx_close(cb);
	lock_ctx_close(cr);
	hb_leave(ha);
	hb_leave(ha2);
	hb_leave(hb);
	CU_ASSERT_EQUAL(lock_hbwatch_judge(w, &idb.self), LOCK_HOLDER_GONE);
	lock_hbwatch_close(w);
	lun_close(la);
	lun_close(la2);
	lun_close(lb);
}

/* Rewrite slot i's state as a survivor would (sealed), or damage it. */
static void slot_set_state(struct lun *l, uint64_t hb_off, uint32_t i,
			   enum vmfs_hb_state state, bool damage)
{
	uint64_t addr = hb_off + (1 + (uint64_t)i) * 4096;
	uint8_t *buf = lun_buf_alloc(512);
	struct vmfs_hb_slot *hs = (struct vmfs_hb_slot *)buf;

	CU_ASSERT_FATAL(lun_read(l, buf, 512, addr) == 0);
	hs->hs_state = htole32(state);
	hs->hs_hdr.bh_gen = htole64(le64toh(hs->hs_hdr.bh_gen) + 1);
	lun_md_seal(&hs->hs_hdr, VMFS_MAGIC_HBSLOT, addr, sizeof(*hs));
	if (damage)
		buf[0x40] ^= 1;
	CU_ASSERT_FATAL(lun_write(l, buf, 512, addr) == 0);
	lun_buf_free(buf);
}

/* The replayer's view: a dead holder may be broken once the survivor
 * replayed it (here: is_live over a holder whose counter stopped). */
static void hbwatch_replayer(unsigned prim)
{
	const char *path = lun_file("lk-hbwr");
	struct lun *la = open_lun(path), *lb = open_lun(path);
	struct lock_hbwatch *w;
	struct lock_host ida, idr;
	struct lock_ctx *ca, *cr;
	struct lock_state st, br;
	struct hb_timeouts t;
	struct hb_opts o;
	uint8_t ua[VMFS_UUID_SIZE];
	struct hb *ha;

	CU_ASSERT_FATAL(hb_region_format(la, HBW_OFF, 4) == 0);
	hb_opts_for(&o, ua, 1);
	CU_ASSERT_FATAL(hb_join(la, HBW_OFF, &o, &ha) == 0);
	CU_ASSERT_FATAL(lock_hbwatch_open(lb, HBW_OFF, &w) == 0);
	lock_host_from_hb(&ida, ha, ua);
	host_id(&idr, 2);
	idr.is_live = lock_hbwatch_is_live;
	idr.live_arg = w;
	CU_ASSERT_FATAL(lock_ctx_open(la, &ida, prim, &ca) == 0);
	CU_ASSERT_FATAL(lock_ctx_open(lb, &idr, prim, &cr) == 0);
	CU_ASSERT_EQUAL(lock_acquire(ca, LK_ADDR, VMFS_LOCK_EXCLUSIVE, 0, NULL), 0);
	CU_ASSERT_EQUAL(lock_read(cr, LK_ADDR, &st), 0);
	CU_ASSERT_EQUAL(lock_break(cr, &st, NULL), -EBUSY);
	lun_fence(la);
	hb_timeouts_from_lease(HBW_LEASE_MS, &t);
	CU_ASSERT(wait_dead(w, &ida.self, 20 * t.dead_ms) >= 0);

	/* The replayer's steps on a's slot: REPLAYING is still DEAD (not
	 * yet breakable for others), so is a damaged slot; FREE is GONE. */
	slot_set_state(lb, HBW_OFF, ida.self.slot, VMFS_HB_REPLAYING, false);
	CU_ASSERT_EQUAL(lock_hbwatch_judge(w, &ida.self), LOCK_HOLDER_DEAD);
	CU_ASSERT_EQUAL(lock_hbwatch_holds(w, &ida.self), 1);
	CU_ASSERT_EQUAL(lock_break(cr, &st, &br), 0);
	CU_ASSERT_EQUAL(br.nholders, 1);
	CU_ASSERT_EQUAL(br.mode, VMFS_LOCK_FREE);
	slot_set_state(lb, HBW_OFF, ida.self.slot, VMFS_HB_REPLAYING, true);
	CU_ASSERT_EQUAL(lock_hbwatch_judge(w, &ida.self), LOCK_HOLDER_DEAD);
	slot_set_state(lb, HBW_OFF, ida.self.slot, VMFS_HB_FREE, false);
	CU_ASSERT_EQUAL(lock_hbwatch_judge(w, &ida.self), LOCK_HOLDER_GONE);
	CU_ASSERT_EQUAL(lock_hbwatch_holds(w, &ida.self), 0);
	lock_ctx_close(ca);
	lock_ctx_close(cr);
	hb_leave(ha);
	lock_hbwatch_close(w);
	lun_close(la);
	lun_close(lb);
}
BOTH(hbwatch_replayer)
BOTH(hbwatch)

static CU_TestInfo lockmgr_tests[] = {
	BOTH_INFO("exclusive", exclusive),
	BOTH_INFO("conflicts", conflicts),
	BOTH_INFO("max_holders", max_holders),
	BOTH_INFO("upgrade_downgrade", upgrade_downgrade),
	BOTH_INFO("wait_for_holder", wait_for_holder),
	BOTH_INFO("break", break_rules),
	BOTH_INFO("break_race", break_race),
	BOTH_INFO("contention", contention),
	{ "contention_mixed", test_contention_mixed },
	BOTH_INFO("reserve_holder_dies", reserve_holder_dies),
	BOTH_INFO("corrupt_record", corrupt_record),
	BOTH_INFO("torn_read", torn_read),
	BOTH_INFO("io_error", io_error),
	BOTH_INFO("uncontended_cost", uncontended_cost),
	{ "primitive_choice", test_primitive_choice },
	BOTH_INFO("hbwatch", hbwatch),
	BOTH_INFO("hbwatch_replayer", hbwatch_replayer),
	CU_TEST_INFO_NULL
};
UNIT_SUITE("lockmgr", NULL, NULL, lockmgr_tests);
