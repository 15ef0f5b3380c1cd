/*
 * One change of a lock record, through one of the two primitives VMFS
 * has used, with bounded, jittered retries (SPEC §5 "Primitives" and
 * "Retries").
 *
 * ATS: SBC-3 COMPARE AND WRITE (5.2) reads the sector, compares it with
 * the verify data and writes the new data only if they are equal, "as an
 * uninterrupted series of actions".  We read the record, decide, and
 * compare-and-write the whole sector against the bytes we read; a
 * MISCOMPARE hands back what is there now, which is our re-read.  The
 * context remembers what each record held when it last read or wrote it
 * (struct lock_guess): a change starts from that instead of a read, so an
 * uncontended change of a record this host changed last is one COMPARE
 * AND WRITE; a wrong guess costs a miscompare, which is the read.  A
 * decision that writes nothing (already held, a holder in the way) is
 * never taken on a guess: the record is read first.  The first change of
 * a record costs one read and one COMPARE AND WRITE (a break only the
 * COMPARE AND WRITE: the caller holds its expected bytes).
 *
 * RESERVE: the SCSI-2 path of VMFS before ATS: RESERVE(6) the whole LUN,
 * read the record, compare and decide in memory, write it, RELEASE(6).
 * While we hold the reservation no other host changes any lock record
 * (the target answers RESERVATION CONFLICT to its RESERVE and to its
 * COMPARE AND WRITE; the file backend emulates both), so the read and the
 * write are one atomic step.  Failure modes, and why they are safe:
 *  - another host holds the reservation: we wait for it, bounded by
 *    LOCK_PRIM_WAIT_MS, because it is held only for one read and one
 *    write of some other lock change; where a hold can outlive its
 *    holder's interest and is broken only after its break time (an
 *    iSCSI lock LU's, lun/iscsi_pr.c), we wait that long instead, so
 *    that the wait can end in the break rather than in an error;
 *  - its holder dies holding it: on the file backend the reservation is
 *    an OFD lock that dies with its process.  On a SAN a SCSI-2
 *    reservation outlives the host until RELEASE or a reset (LUN or
 *    target reset, or on iSCSI the loss of the I_T nexus when the
 *    session drops); a survivor whose wait runs out gets
 *    -VMFS_E_RESERVED and the next step is a LUN reset, which is the
 *    iSCSI backend's to add.  DESIGN.md records that tgt keeps a hung
 *    holder's RESERVE(6) for about an hour and that PREEMPT does not
 *    clear it, so there RESERVE is a fallback, never next to PR fencing;
 *  - our own write fails or times out inside the reservation: we release
 *    anyway and return the error, and the outcome is unknown (a timed-out
 *    write may still land).  A SAN initiator aborts the task (ABORT TASK,
 *    or a LUN reset) before RELEASE so the write cannot land after it;
 *    the file backend cannot abort an in-flight AIO, as its COMPARE AND
 *    WRITE cannot either (lun/file_locks.c).  Callers re-read.
 *  - we die holding it: the same as the first case, seen from the others.
 *
 * A reservation belongs to a lun handle (the initiator), not to a thread:
 * a second reserve() through the same handle succeeds at once.  So the
 * threads of one handle take turns on the handle's own mutex first
 * (lun_hold_mutex).
 * For the same reason every context on one lun handle must use the same
 * primitive: a COMPARE AND WRITE through the handle that holds the
 * reservation is not refused.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmfs/clock.h"
#include "vmfs/lun.h"
#include "lock_int.h"

/*
 * Backoff between attempts: doubled from MIN (LOCK_BACKOFF_MIN_US,
 * lock_int.h) up to MAX, each sleep drawn uniformly from [d/2, d] so that
 * two hosts that collided once do not retry in lockstep.  MIN is about
 * one lock change on a local disk; MAX keeps a waiter's added latency
 * after the lock frees small next to the heartbeat renewal interval
 * (hundreds of ms or more).
 */
#define LOCK_BACKOFF_MAX_US 50000

/* splitmix64: cheap, and a per-call state needs no locking. */
static uint64_t lock_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

bool lock_backoff_sleep(struct lock_backoff *b, int64_t end_us)
{
	int64_t left = end_us - vmfs_mono_us();
	struct timespec ts;
	uint64_t us;

	if (left <= 0)
		return false;
	us = b->delay_us / 2 + lock_rand(&b->rng) % (b->delay_us / 2 + 1);
	if ((int64_t)us > left)
		us = (uint64_t)left;
	ts.tv_sec = (time_t)(us / 1000000);
	ts.tv_nsec = (long)(us % 1000000) * 1000;
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
	b->delay_us = b->delay_us * 2 > LOCK_BACKOFF_MAX_US ?
		      LOCK_BACKOFF_MAX_US : b->delay_us * 2;
	return true;
}

/* One attempt's buffers and what it decided. */
struct lock_try {
	struct lock_ctx *ctx;
	const struct lock_op *op;
	uint8_t *cur;           /* the sector as last read (or found) */
	uint8_t *next;          /* the sector we write */
	uint8_t *seen;          /* what a miscompare found */
	bool have_cur;
	bool guessed;           /* cur is the context's guess, not a read */
	bool undecodable;       /* cur did not verify */
	struct lock_state now;  /* cur decoded */
	struct lock_state nx;   /* next decoded */
};

/*
 * Decide on cur and build next: the sector as read with the new record in
 * its first VMFS_LOCK_SIZE bytes (on a 4 KiB-sector LUN the rest is the
 * object, rewritten unchanged; SPEC §1.3).
 */
static int lock_try_build(struct lock_try *t)
{
	const struct lock_op *op = t->op;
	int ret;

	if (op->expect && memcmp(t->cur, op->expect, VMFS_LOCK_SIZE))
		return -VMFS_E_MISCOMPARE;
	ret = lock_state_decode(t->cur, op->addr, &t->now);
	t->undecodable = ret != 0;
	if (ret)
		return ret;
	t->nx = t->now;
	ret = op->decide(t->ctx, op->arg, &t->now, &t->nx);
	if (ret)
		return ret;
	t->nx.gen = t->now.gen + 1;
	memcpy(t->next, t->cur, t->ctx->unit);
	lock_state_encode(&t->nx, op->addr, t->next);
	memcpy(t->nx.raw, t->next, VMFS_LOCK_SIZE);
	return 0;
}

/* The remembered record of addr into buf (VMFS_LOCK_SIZE): true if any. */
static bool lock_guess_get(struct lock_ctx *ctx, uint64_t addr, void *buf)
{
	struct lock_guess *g;
	bool hit;

	if (!ctx->guess)
		return false;
	g = &ctx->guess[(addr / VMFS_MD_BLOCK_SIZE) % LOCK_GUESS_SLOTS];
	pthread_mutex_lock(&ctx->guess_mu);
	hit = g->addr == addr;
	if (hit)
		memcpy(buf, g->rec, VMFS_LOCK_SIZE);
	pthread_mutex_unlock(&ctx->guess_mu);
	return hit;
}

/* Remember rec as addr's record (NULL: forget it). */
static void lock_guess_put(struct lock_ctx *ctx, uint64_t addr, const void *rec)
{
	struct lock_guess *g;

	if (!ctx->guess)
		return;
	g = &ctx->guess[(addr / VMFS_MD_BLOCK_SIZE) % LOCK_GUESS_SLOTS];
	pthread_mutex_lock(&ctx->guess_mu);
	if (rec) {
		g->addr = addr;
		memcpy(g->rec, rec, VMFS_LOCK_SIZE);
	} else if (g->addr == addr) {
		g->addr = 0;
	}
	pthread_mutex_unlock(&ctx->guess_mu);
}

static int lock_try_ats(struct lock_try *t)
{
	struct lock_ctx *ctx = t->ctx;
	uint64_t addr = t->op->addr;
	int ret;

	if (!t->have_cur) {
		t->guessed = false;
		if (t->op->expect && ctx->unit == VMFS_LOCK_SIZE)
			/* The compare of the write is the read. */
			memcpy(t->cur, t->op->expect, VMFS_LOCK_SIZE);
		else if (lock_guess_get(ctx, addr, t->cur))
			t->guessed = true;
		else if ((ret = lun_read(ctx->lun, t->cur, ctx->unit, addr)))
			return ret;
		else
			lock_guess_put(ctx, addr, t->cur);
		t->have_cur = true;
	}
	ret = lock_try_build(t);
	if (ret && t->guessed) {
		/* Nothing to write, or no way forward, on a guess: only a
		 * compare-and-write would have checked it.  Read. */
		t->guessed = false;
		ret = lun_read(ctx->lun, t->cur, ctx->unit, addr);
		if (ret) {
			t->have_cur = false;
			lock_guess_put(ctx, addr, NULL);
			return ret;
		}
		lock_guess_put(ctx, addr, t->cur);
		ret = lock_try_build(t);
	}
	if (ret)
		return ret;
	ret = lun_compare_and_write(ctx->lun, t->cur, t->next, ctx->unit,
				    addr, t->seen);
	t->guessed = false;
	if (!ret) {
		lock_guess_put(ctx, addr, t->next);
	} else if (ret == -VMFS_E_MISCOMPARE) {
		memcpy(t->cur, t->seen, ctx->unit);
		lock_guess_put(ctx, addr, t->seen);
	} else {
		t->have_cur = false;
		lock_guess_put(ctx, addr, NULL);
	}
	return ret;
}

/*
 * Run body under the LUN's reservation: the one place that takes the
 * per-handle mutex, reserves, and releases whatever body returned (see
 * the failure modes above).  -VMFS_E_RESERVED when another host kept the
 * reservation for wait_ms.
 */
static int lock_reserved(struct lun *lun, unsigned wait_ms,
			 int (*body)(void *arg), void *arg)
{
	pthread_mutex_t *mu = lun_hold_mutex(lun);
	int ret, rel;

	pthread_mutex_lock(mu);
	ret = lun_reserve(lun, wait_ms);
	if (ret)
		goto out;
	ret = body(arg);
	rel = lun_release(lun);
	if (!ret)
		ret = rel;
out:
	pthread_mutex_unlock(mu);
	return ret;
}

static int lock_try_reserve_body(void *arg)
{
	struct lock_try *t = arg;
	struct lock_ctx *ctx = t->ctx;
	int ret;

	ret = lun_read(ctx->lun, t->cur, ctx->unit, t->op->addr);
	t->have_cur = !ret;
	if (!ret)
		ret = lock_try_build(t);
	if (!ret)
		ret = lun_write(ctx->lun, t->next, ctx->unit, t->op->addr);
	return ret;
}

static int lock_try_reserve(struct lock_try *t, unsigned wait_ms)
{
	return lock_reserved(t->ctx->lun, wait_ms, lock_try_reserve_body, t);
}

/* lock_prim_caw's compare-and-write, emulated inside the reservation. */
struct lock_caw {
	struct lun *lun;
	const void *expect, *data;
	size_t len;
	uint64_t off;
	uint8_t *seen;          /* sector-aligned bounce buffer */
};

static int lock_caw_body(void *arg)
{
	struct lock_caw *c = arg;
	int ret = lun_read(c->lun, c->seen, c->len, c->off);

	if (ret)
		return ret;
	if (memcmp(c->seen, c->expect, c->len))
		return -VMFS_E_MISCOMPARE;
	return lun_write(c->lun, c->data, c->len, c->off);
}

int lock_prim_caw(struct lun *lun, unsigned prim, unsigned wait_ms,
		  const void *expect, const void *data, size_t len,
		  uint64_t off, void *current)
{
	struct lock_caw c = { .lun = lun, .expect = expect, .data = data,
			      .len = len, .off = off };
	int ret;

	if (prim == LOCK_PRIM_ATS)
		return lun_compare_and_write(lun, expect, data, len, off,
					     current);
	if (prim != LOCK_PRIM_RESERVE)
		return -EINVAL;
	c.seen = lun_buf_alloc(len);
	if (!c.seen)
		return -ENOMEM;
	ret = lock_reserved(lun, wait_ms, lock_caw_body, &c);
	if (ret == -VMFS_E_MISCOMPARE && current)
		memcpy(current, c.seen, len);
	lun_buf_free(c.seen);
	return ret;
}

unsigned lock_prim_pick(const struct lun *lun, unsigned flags)
{
	unsigned caps = lun_caps(lun);

	if (flags == LOCK_PRIM_ATS)
		return caps & LUN_CAP_ATS ? LOCK_PRIM_ATS : 0;
	if (flags == LOCK_PRIM_RESERVE)
		return caps & LUN_CAP_RESERVE ? LOCK_PRIM_RESERVE : 0;
	if (caps & LUN_CAP_ATS)
		return LOCK_PRIM_ATS;
	return caps & LUN_CAP_RESERVE ? LOCK_PRIM_RESERVE : 0;
}

int lock_prim_parse(const char *s, unsigned *flags)
{
	if (!strcmp(s, "auto"))
		*flags = 0;
	else if (!strcmp(s, "ats"))
		*flags = LOCK_PRIM_ATS;
	else if (!strcmp(s, "reserve"))
		*flags = LOCK_PRIM_RESERVE;
	else
		return -EINVAL;
	return 0;
}

const char *lock_prim_name(unsigned prim)
{
	switch (prim) {
	case LOCK_PRIM_ATS:
		return "ats";
	case LOCK_PRIM_RESERVE:
		return "reserve";
	default:
		return "auto";
	}
}

int64_t lock_prim_reserved_end(struct lun *lun, int64_t start_us,
			       int64_t end_us)
{
	int64_t brk = start_us + (int64_t)lun_reserve_break_ms(lun) * 1000;

	return brk > end_us ? brk : end_us;
}

int lock_change(struct lock_ctx *ctx, const struct lock_op *op,
		struct lock_state *out)
{
	int64_t start_us = vmfs_mono_us();
	unsigned prim_ms = op->timeout_ms > LOCK_PRIM_WAIT_MS ?
			   op->timeout_ms : LOCK_PRIM_WAIT_MS;
	int64_t busy_end = start_us + (int64_t)op->timeout_ms * 1000;
	int64_t prim_end = start_us + (int64_t)prim_ms * 1000;
	struct lock_backoff bo = { .delay_us = LOCK_BACKOFF_MIN_US };
	struct lock_try t = { .ctx = ctx, .op = op };
	unsigned races = 0, torn = 0;
	bool reserved = false;
	int ret;

	if (op->addr % VMFS_MD_BLOCK_SIZE)
		return -EINVAL;
	bo.rng = (uint64_t)vmfs_mono_ns() ^ (uintptr_t)&t ^
		 ((uint64_t)ctx->host.self.slot << 48);
	t.cur = lun_buf_alloc(ctx->unit);
	t.next = lun_buf_alloc(ctx->unit);
	t.seen = lun_buf_alloc(ctx->unit);
	if (!t.cur || !t.next || !t.seen) {
		ret = -ENOMEM;
		goto out;
	}
	for (;;) {
		t.undecodable = false;   /* set by this try's decode only */
		if (ctx->prim == LOCK_PRIM_ATS) {
			ret = lock_try_ats(&t);
		} else {
			int64_t left_ms = (prim_end - vmfs_mono_us()) / 1000;

			ret = lock_try_reserve(&t, left_ms > 0 ? (unsigned)left_ms : 0);
		}
		if (ret == -EBUSY) {
			/* A holder in the way: wait for it, then read afresh. */
			if (!lock_backoff_sleep(&bo, busy_end))
				break;
			t.have_cur = false;
		} else if (ret == -VMFS_E_MISCOMPARE && !op->expect) {
			/*
			 * Someone else's change won: decide again on what it
			 * wrote, at once the first time (it is likely a
			 * different decision), then with backoff.
			 */
			if (races++ && !lock_backoff_sleep(&bo, prim_end)) {
				ret = -EBUSY;
				break;
			}
		} else if (t.undecodable && torn++ < LUN_TORN_READS) {
			/*
			 * A record read while another host rewrote it can
			 * come back torn (lun_reread_torn says why): read it
			 * again, as often, before calling it damaged.
			 */
			t.have_cur = false;
			poll(NULL, 0, 1);
		} else if (ret == -VMFS_E_RESERVED) {
			if (!reserved) {
				reserved = true;
				prim_end = lock_prim_reserved_end(ctx->lun,
						start_us, prim_end);
			}
			if (!lock_backoff_sleep(&bo, prim_end))
				break;
		} else {
			break;
		}
	}
out:
	if (out) {
		if (ret == 0)
			*out = t.nx;
		else if (ret == LOCK_NOCHANGE)
			*out = t.now;
		else if (!t.have_cur ||
			 lock_state_decode(t.cur, op->addr, out))
			memset(out, 0, sizeof(*out));
	}
	lun_buf_free(t.cur);
	lun_buf_free(t.next);
	lun_buf_free(t.seen);
	return ret == LOCK_NOCHANGE ? 0 : ret;
}
