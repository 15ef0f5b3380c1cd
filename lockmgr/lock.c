/*
 * The lock manager's calls: acquire, release, upgrade, downgrade, break
 * and read of the lock record of any lockable block (SPEC §5).
 *
 * Each call is a decision on the record as read ("may this host take the
 * lock in this mode now, and what is the record afterwards?") handed to
 * lock_change (lockprim.c), which reads, decides, compare-and-writes with
 * generation + 1 and retries.  The decisions below are pure functions of
 * the record and our identity, so the same rules hold whichever primitive
 * carries them out.
 *
 * Mode compatibility (VMFS's, SPEC §5): EXCLUSIVE shares with nobody;
 * READONLY shares with READONLY; MULTIWRITER shares with MULTIWRITER; at
 * most VMFS_LOCK_MAX_HOLDERS hosts share.  A host is one holder however
 * many times it asks: the lock is the host's, not a process's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmfs/lun.h"
#include "lock_int.h"

void lock_host_from_hb(struct lock_host *host, const struct hb *hb,
		       const uint8_t *uuid)
{
	memset(host, 0, sizeof(*host));
	memcpy(host->self.uuid, uuid, VMFS_UUID_SIZE);
	host->self.slot = hb_slot_index(hb);
	host->self.hb_gen = hb_generation(hb);
}

int lock_ctx_open(struct lun *lun, const struct lock_host *host,
		  unsigned flags, struct lock_ctx **out)
{
	unsigned prim;
	struct lock_ctx *ctx;

	if (!lun || !host || !out ||
	    flags & ~(LOCK_PRIM_ATS | LOCK_PRIM_RESERVE) ||
	    flags == (LOCK_PRIM_ATS | LOCK_PRIM_RESERVE))
		return -EINVAL;
	*out = NULL;
	prim = lock_prim_pick(lun, flags);
	if (!prim)
		return -EOPNOTSUPP;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->lun = lun;
	ctx->host = *host;
	ctx->prim = prim;
	/* The smallest compare-and-write: the record's sector (SPEC §1.3). */
	ctx->unit = lun_sector_size(lun);
	pthread_mutex_init(&ctx->guess_mu, NULL);
	/* Without it every change reads first: slower, never wrong. */
	if (prim == LOCK_PRIM_ATS && ctx->unit == VMFS_LOCK_SIZE)
		ctx->guess = calloc(LOCK_GUESS_SLOTS, sizeof(*ctx->guess));
	*out = ctx;
	return 0;
}

void lock_ctx_close(struct lock_ctx *ctx)
{
	if (!ctx)
		return;
	pthread_mutex_destroy(&ctx->guess_mu);
	free(ctx->guess);
	free(ctx);
}

unsigned lock_ctx_primitive(const struct lock_ctx *ctx)
{
	return ctx->prim;
}

static bool lock_mode_shared(enum vmfs_lock_mode mode)
{
	return mode == VMFS_LOCK_READONLY || mode == VMFS_LOCK_MULTIWRITER;
}

/* next := held by h alone in mode. */
static void lock_set_sole(struct lock_state *next, enum vmfs_lock_mode mode,
			  const struct lock_holder *h)
{
	memset(next->holders, 0, sizeof(next->holders));
	next->mode = mode;
	next->holders[0] = *h;
	next->nholders = 1;
}

static int decide_acquire(const struct lock_ctx *ctx, void *arg,
			  const struct lock_state *cur, struct lock_state *next)
{
	enum vmfs_lock_mode mode = *(const enum vmfs_lock_mode *)arg;
	const struct lock_holder *me = &ctx->host.self;
	int i = lock_state_find(cur, me);

	if (cur->mode == VMFS_LOCK_FREE) {
		lock_set_sole(next, mode, me);
		return 0;
	}
	if (i >= 0)
		/* Ours already; another mode is upgrade's or downgrade's. */
		return cur->mode == mode ? LOCK_NOCHANGE : -EINVAL;
	if (cur->mode != mode || !lock_mode_shared(mode) ||
	    cur->nholders == VMFS_LOCK_MAX_HOLDERS)
		return -EBUSY;
	next->holders[next->nholders++] = *me;
	return 0;
}

int lock_acquire(struct lock_ctx *ctx, uint64_t addr, enum vmfs_lock_mode mode,
		 unsigned timeout_ms, struct lock_state *out)
{
	struct lock_op op = { .addr = addr, .decide = decide_acquire,
			      .arg = &mode, .timeout_ms = timeout_ms };

	if (mode != VMFS_LOCK_EXCLUSIVE && !lock_mode_shared(mode))
		return -EINVAL;
	return lock_change(ctx, &op, out);
}

static int decide_release(const struct lock_ctx *ctx, void *arg,
			  const struct lock_state *cur, struct lock_state *next)
{
	int i = lock_state_find(cur, &ctx->host.self);

	(void)arg;
	if (i < 0)
		return -EPERM;
	/* Keep the other holders in order; the last one out frees it. */
	memmove(&next->holders[i], &next->holders[i + 1],
		(next->nholders - (uint32_t)i - 1) * sizeof(next->holders[0]));
	memset(&next->holders[--next->nholders], 0, sizeof(next->holders[0]));
	if (next->nholders == 0)
		next->mode = VMFS_LOCK_FREE;
	return 0;
}

int lock_release(struct lock_ctx *ctx, uint64_t addr, struct lock_state *out)
{
	struct lock_op op = { .addr = addr, .decide = decide_release };

	return lock_change(ctx, &op, out);
}

static int decide_upgrade(const struct lock_ctx *ctx, void *arg,
			  const struct lock_state *cur, struct lock_state *next)
{
	(void)arg;
	if (lock_state_find(cur, &ctx->host.self) < 0)
		return -EPERM;
	if (cur->mode == VMFS_LOCK_EXCLUSIVE)
		return LOCK_NOCHANGE;
	if (cur->mode != VMFS_LOCK_READONLY)
		return -EINVAL;
	if (cur->nholders > 1)
		return -EBUSY;	/* the other readers may leave */
	lock_set_sole(next, VMFS_LOCK_EXCLUSIVE, &ctx->host.self);
	return 0;
}

int lock_upgrade(struct lock_ctx *ctx, uint64_t addr, unsigned timeout_ms,
		 struct lock_state *out)
{
	struct lock_op op = { .addr = addr, .decide = decide_upgrade,
			      .timeout_ms = timeout_ms };

	return lock_change(ctx, &op, out);
}

static int decide_downgrade(const struct lock_ctx *ctx, void *arg,
			    const struct lock_state *cur, struct lock_state *next)
{
	(void)arg;
	if (lock_state_find(cur, &ctx->host.self) < 0)
		return -EPERM;
	if (cur->mode == VMFS_LOCK_READONLY)
		return LOCK_NOCHANGE;
	if (cur->mode != VMFS_LOCK_EXCLUSIVE)
		return -EINVAL;
	lock_set_sole(next, VMFS_LOCK_READONLY, &ctx->host.self);
	return 0;
}

int lock_downgrade(struct lock_ctx *ctx, uint64_t addr, struct lock_state *out)
{
	struct lock_op op = { .addr = addr, .decide = decide_downgrade };

	return lock_change(ctx, &op, out);
}

int lock_read(struct lock_ctx *ctx, uint64_t addr, struct lock_state *out)
{
	uint8_t *buf;
	int ret;

	if (addr % VMFS_MD_BLOCK_SIZE || !out)
		return -EINVAL;
	buf = lun_buf_alloc(ctx->unit);
	if (!buf)
		return -ENOMEM;
	ret = lun_read(ctx->lun, buf, ctx->unit, addr);
	if (!ret)
		ret = lock_state_decode(buf, addr, out);
	lun_buf_free(buf);
	return ret;
}

/* Which holders of the expected record the oracle found dead. */
struct break_plan {
	bool dead[VMFS_LOCK_MAX_HOLDERS];
	struct lock_state *broken;
};

static int decide_break(const struct lock_ctx *ctx, void *arg,
			const struct lock_state *cur, struct lock_state *next)
{
	struct break_plan *plan = arg;
	uint32_t n = 0;

	(void)ctx;
	/* cur is the expected record, byte for byte (lock_op.expect).  A
	 * retry after a reservation conflict decides again from scratch. */
	if (plan->broken) {
		memset(plan->broken->holders, 0, sizeof(plan->broken->holders));
		plan->broken->nholders = 0;
	}
	memset(next->holders, 0, sizeof(next->holders));
	for (uint32_t i = 0; i < cur->nholders; i++) {
		if (!plan->dead[i])
			next->holders[n++] = cur->holders[i];
		else if (plan->broken)
			plan->broken->holders[plan->broken->nholders++] =
				cur->holders[i];
	}
	next->nholders = n;
	if (n == 0)
		next->mode = VMFS_LOCK_FREE;
	return 0;
}

int lock_break(struct lock_ctx *ctx, const struct lock_state *expected,
	       struct lock_state *broken)
{
	struct break_plan plan = { .broken = broken };
	struct lock_op op = { .decide = decide_break, .arg = &plan };
	struct lock_state written;
	uint32_t ndead = 0;
	int ret;

	if (!expected || !ctx->host.is_live ||
	    expected->nholders > VMFS_LOCK_MAX_HOLDERS)
		return -EINVAL;
	if (broken)
		memset(broken, 0, sizeof(*broken));
	if (expected->mode == VMFS_LOCK_FREE)
		return 0;	/* nothing to break */
	/*
	 * Ask the oracle before touching the LUN: on the reserve path the
	 * decision runs under the reservation, which must stay short.  The
	 * compare against *expected makes the answer still valid when the
	 * write happens: a holder that came or went since changed the bytes.
	 */
	for (uint32_t i = 0; i < expected->nholders; i++) {
		ret = ctx->host.is_live(ctx->host.live_arg,
					&expected->holders[i]);
		if (ret < 0)
			return ret;
		plan.dead[i] = ret == 0;
		ndead += plan.dead[i];
	}
	if (ndead == 0)
		return -EBUSY;
	op.addr = expected->addr;
	op.expect = expected->raw;
	ret = lock_change(ctx, &op, &written);
	if (broken) {
		if (ret)
			memset(broken, 0, sizeof(*broken));
		broken->addr = written.addr;
		broken->mode = written.mode;
		broken->gen = written.gen;
		memcpy(broken->raw, written.raw, VMFS_LOCK_SIZE);
	}
	return ret;
}
