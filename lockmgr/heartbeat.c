/*
 * Heartbeats: one slot per mounted host in the heartbeat region.
 *
 * Claiming a slot, and every change of another host's slot (recovery),
 * are compare-and-writes of the slot's first sector (SBC-3 COMPARE AND
 * WRITE; the file backend emulates it; on a LUN without it, the lock
 * manager's RESERVE, read, compare, write, RELEASE, lock_prim_caw), so
 * two hosts can never both believe they own a slot.  A renewal is a
 * compare-and-write too where the LUN has COMPARE AND WRITE; on the
 * RESERVE path it is a read, a check that the slot still shows this host
 * ACTIVE with its UUID and generation, and a plain write issued inside
 * the fence time (docs/PROTOCOL.md "Renewals take no reservation"): the
 * slot is written by its owner only, and a survivor takes it over only
 * after the owner's fence time, so the reservation bought nothing but a
 * wait behind other hosts' lock changes.  Either way a host notices at
 * its next renewal when a survivor has taken its slot over, and fences
 * itself.  The counter moves at every renewal;
 * nobody ever reads another host's clock, only whether the counter moved
 * during an interval of the reader's own CLOCK_MONOTONIC.
 *
 * The write gate: after every successful renewal the deadline of both
 * handles (ours and o->gate_lun) moves to the time that renewal's
 * compare-and-write was issued plus fence_ms; a write past it fences
 * the host (docs/PROTOCOL.md "Timing" has the argument).  The issue
 * time, not the completion time, because the write may have landed, and
 * an observer may have seen it, at any moment after it was issued.
 * Our slot sector is exempt from the gate on our handle, so that a
 * renewal issued in time finishes even when the RESERVE path writes
 * after the deadline; the renewal thread itself never starts a renewal
 * past the deadline: a host that finds its lease ran out (it was stopped
 * or starved) only reads its slot, to say whether a survivor has taken
 * it, and fences.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include "vmfs/log.h"
#include "vmfs/clock.h"
#include "vmfs/threadinfo.h"
#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"
#include "lock_int.h"

/* The shortest time between two renewals that wants bring forward. */
#define HB_ASK_GAP_MS 50

struct hb {
	struct lun *lun;
	uint64_t slot_addr;
	uint32_t slot;
	uint32_t ss;               /* compare-and-write unit */
	unsigned prim;             /* LOCK_PRIM_ATS or LOCK_PRIM_RESERVE */
	struct hb_timeouts t;
	uint8_t *cur;              /* the sector as we last wrote it */
	uint8_t *next;
	uint8_t *seen;             /* what a failed compare found */
	struct lun *gate_lun;      /* hb_opts.gate_lun, or NULL */
	/* Writes allowed before this CLOCK_MONOTONIC ms; the renewal thread's
	 * (and hb_join's) to change. */
	int64_t valid_until_ms;
	bool fenced;
	bool stop;
	pthread_t thr;
	pthread_mutex_t lk;
	pthread_cond_t cv;
	void (*on_fence)(void *ctx, const char *why);
	void *ctx;
	/* Who we are in the slot, fixed from the claim on (hb_owner_ok). */
	uint8_t uuid[VMFS_UUID_SIZE];
	uint64_t gen;
	/* hb_set_vm_free: written into the slot at the next renewal. */
	uint64_t vm_free_mib;
	/* hb_want, hb_busy (under lk): written at the next renewal, which
	 * renew_now brings forward. */
	bool asks;
	bool want_excl;
	uint32_t want_seq;
	uint64_t want_addr;
	uint32_t busy_slot, busy_seq;
	uint64_t busy_addr;
	bool renew_now;
	int64_t last_start_ms;     /* of the last renewal (renew thread) */
	/* The renewal watchdog (wd_thread) and, under lk, what the renewal
	 * thread is at: the start of the renewal it runs (0 between
	 * renewals), how many it started, the last one the watchdog warned
	 * of, and the thread's CPU figures when that one began. */
	pthread_t wd_thr;
	bool wd_started;
	pid_t renew_tid;
	int64_t renew_start_ms;
	uint64_t renew_seq;
	uint64_t renew_reported;
	struct thread_cpu renew_cpu;
	bool renew_cpu_ok;
	/* hb_renew_times (under lk). */
	uint32_t renew_last_ms, renew_max_ms;
};

static uint64_t hb_vm_free_get(struct hb *hb)
{
	return __atomic_load_n(&hb->vm_free_mib, __ATOMIC_RELAXED);
}

void hb_set_vm_free(struct hb *hb, uint64_t mib)
{
	__atomic_store_n(&hb->vm_free_mib, mib, __ATOMIC_RELAXED);
}

/* What hb_want and hb_busy put in the slot (lk held). */
static void hb_asks_fill(struct hb *hb, struct fmt_hb_slot *h)
{
	h->flags = (hb->asks ? VMFS_HB_F_ASKS : 0) |
		   (hb->want_addr && hb->want_excl ? VMFS_HB_F_WANT_EXCL : 0);
	h->want_seq = hb->want_seq;
	h->want_addr = hb->want_addr;
	h->busy_slot = hb->busy_slot;
	h->busy_seq = hb->busy_seq;
	h->busy_addr = hb->busy_addr;
}

uint32_t hb_want(struct hb *hb, uint64_t addr, bool excl)
{
	uint32_t seq;

	pthread_mutex_lock(&hb->lk);
	if (addr) {
		hb->want_seq++;
		hb->want_excl = excl;
		hb->renew_now = true;
		pthread_cond_broadcast(&hb->cv);  /* the watchdog waits on it too */
	}
	hb->want_addr = addr;
	seq = hb->want_seq;
	pthread_mutex_unlock(&hb->lk);
	return seq;
}

void hb_busy(struct hb *hb, uint32_t slot, uint32_t seq, uint64_t addr)
{
	pthread_mutex_lock(&hb->lk);
	hb->busy_slot = slot;
	hb->busy_seq = seq;
	hb->busy_addr = addr;
	hb->renew_now = true;
	pthread_cond_broadcast(&hb->cv);  /* the watchdog waits on it too */
	pthread_mutex_unlock(&hb->lk);
}

static struct vmfs_hb_slot *slot_of(uint8_t *sector)
{
	return (struct vmfs_hb_slot *)sector;
}

static void slot_seal(uint8_t *sector, uint64_t addr)
{
	struct vmfs_hb_slot *hs = slot_of(sector);

	fmt_hdr_set_gen(&hs->hs_hdr, fmt_hdr_gen(&hs->hs_hdr) + 1);
	lun_md_seal(&hs->hs_hdr, VMFS_MAGIC_HBSLOT, addr, sizeof(*hs));
}

struct region {
	uint32_t nslots;
	uint32_t lease_ms;
	uint64_t slot0;
};

static int region_read(struct lun *lun, uint64_t off, struct region *r)
{
	uint8_t *buf = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	const struct vmfs_hb_region *hr =
		(const struct vmfs_hb_region *)(buf + VMFS_OBJ_OFFSET);
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = lun_read(lun, buf, VMFS_MD_BLOCK_SIZE, off);
	if (!ret)
		ret = lun_md_verify(&hr->hr_hdr, VMFS_MAGIC_HBREGION, off,
				    VMFS_MD_BLOCK_SIZE - VMFS_OBJ_OFFSET);
	if (!ret) {
		struct fmt_hb_region h;

		/* The checks below cover what decode refuses that matters here. */
		(void)fmt_hb_region_decode(hr, &h);
		r->nslots = h.nslots;
		r->lease_ms = h.lease_ms;
		r->slot0 = h.slot0_offset;
		if (!r->nslots || r->nslots > 1024 ||
		    r->slot0 != off + VMFS_MD_BLOCK_SIZE)
			ret = -VMFS_E_CORRUPT;
	}
	if (ret == -EIO || ret == -ETIMEDOUT)
		qb_log(LOG_ERR, "hb: cannot read the heartbeat region at %llu: "
		       "%s (the LUN did not answer)", (unsigned long long)off,
		       vmfs_strerror(ret));
	else if (ret)
		qb_log(LOG_ERR, "hb: heartbeat region at %llu: %s; run 'vmfs fsck'",
		       (unsigned long long)off, vmfs_strerror(ret));
	lun_buf_free(buf);
	return ret;
}

/* Read all slots' first sectors (a slot is 4 KiB apart) in one I/O. */
static int slots_read(struct lun *lun, const struct region *r, uint8_t **out)
{
	size_t len = (size_t)r->nslots * VMFS_MD_BLOCK_SIZE;
	uint8_t *buf = lun_buf_alloc(len);
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = lun_read(lun, buf, len, r->slot0);
	if (ret) {
		lun_buf_free(buf);
		return ret;
	}
	*out = buf;
	return 0;
}

static void fence(struct hb *hb, const char *why)
{
	bool first;

	pthread_mutex_lock(&hb->lk);
	first = !hb->fenced;
	hb->fenced = true;
	pthread_mutex_unlock(&hb->lk);
	if (!first)
		return;
	/* The handles first: a log target that blocks (a syslog socket
	 * whose reader lags) must not delay the fence. */
	lun_fence(hb->lun);
	if (hb->gate_lun)
		lun_fence(hb->gate_lun);
	qb_log(LOG_CRIT, "hb: slot %u: %s; fencing this host off the volume",
	       hb->slot, why);
	if (hb->on_fence)
		hb->on_fence(hb->ctx, why);
}

/*
 * Is the slot image in sector still ours: the same host, the same
 * heartbeat generation, active?  A renewal whose compare-and-write timed
 * out may still land later (the outcome of a timed-out SCSI command is
 * unknown), so a compare can fail against one of our own later images.
 * A survivor that declares us dead changes the state (being replayed) or
 * the owner, which this tells apart.
 */
static bool slot_ours(const struct hb *hb, const uint8_t *sector,
		      struct fmt_hb_slot *seen)
{
	const struct vmfs_hb_slot *hs = (const struct vmfs_hb_slot *)sector;
	struct fmt_hb_slot me;

	if (lun_md_verify(&hs->hs_hdr, VMFS_MAGIC_HBSLOT, hb->slot_addr,
			  sizeof(*hs)))
		return false;
	(void)fmt_hb_slot_decode(hs, seen);
	(void)fmt_hb_slot_decode(slot_of(hb->cur), &me);
	return seen->state == VMFS_HB_ACTIVE && seen->hb_gen == me.hb_gen &&
	       !memcmp(seen->host_uuid, me.host_uuid, VMFS_UUID_SIZE);
}

static bool slot_still_ours(const struct hb *hb, const uint8_t *sector)
{
	struct fmt_hb_slot seen, me;

	(void)fmt_hb_slot_decode(slot_of(hb->cur), &me);
	return slot_ours(hb, sector, &seen) && seen.counter >= me.counter;
}

/*
 * A compare-and-write of our slot through the LUN's primitive (claims,
 * leaving, ATS renewals).  On the reserve path, a reservation held by
 * another host's lock change is waited for at most one heartbeat I/O
 * timeout.
 */
static int hb_caw(struct hb *hb, const void *expect, const void *data,
		  void *current)
{
	return lock_prim_caw(hb->lun, hb->prim, hb->t.io_timeout_ms, expect,
			     data, hb->ss, hb->slot_addr, current);
}

/*
 * The owner's changes of its slot on the RESERVE path (renewing, leaving)
 * take no reservation (see the top of this file): the slot is read into
 * hb->seen and must still be ours, then hb->next, built from it, is
 * sealed and written, and only inside the fence time (our slot is exempt
 * from the handle's write gate, so this is where the gate is checked).
 */
static int plain_read(struct hb *hb, struct fmt_hb_slot *seen)
{
	int ret = lun_read(hb->lun, hb->seen, hb->ss, hb->slot_addr);

	if (ret)
		return ret;
	return slot_ours(hb, hb->seen, seen) ? 0 : -VMFS_E_MISCOMPARE;
}

static int plain_write(struct hb *hb)
{
	struct vmfs_hb_slot *hs = slot_of(hb->next);
	uint64_t gen = fmt_hdr_gen(&slot_of(hb->seen)->hs_hdr);

	/* The block generation moves past whatever landed. */
	if (gen > fmt_hdr_gen(&hs->hs_hdr))
		fmt_hdr_set_gen(&hs->hs_hdr, gen);
	slot_seal(hb->next, hb->slot_addr);
	if (vmfs_mono_ms() >= hb->valid_until_ms)
		return -ETIMEDOUT;
	return lun_write(hb->lun, hb->next, hb->ss, hb->slot_addr);
}

/*
 * One renewal: counter + 1, compare-and-write against what we wrote last
 * (ATS), or plain_read and plain_write (RESERVE).
 */
static int renew(struct hb *hb)
{
	struct vmfs_hb_slot *hs = slot_of(hb->next);
	struct fmt_hb_slot h, seen;
	bool plain = hb->prim == LOCK_PRIM_RESERVE;
	int ret;

	if (plain && (ret = plain_read(hb, &seen)))
		return ret;
	memcpy(hb->next, hb->cur, hb->ss);
	(void)fmt_hb_slot_decode(hs, &h);
	/* A renewal of ours that timed out may have landed since: move
	 * past it, so that observers see the pair change. */
	if (plain && seen.counter > h.counter)
		h.counter = seen.counter;
	h.counter++;
	h.vm_free_mib = hb_vm_free_get(hb);
	pthread_mutex_lock(&hb->lk);
	hb_asks_fill(hb, &h);
	pthread_mutex_unlock(&hb->lk);
	fmt_hb_slot_encode(&h, hs);
	if (plain) {
		ret = plain_write(hb);
	} else {
		slot_seal(hb->next, hb->slot_addr);
		ret = hb_caw(hb, hb->cur, hb->next, hb->seen);
	}
	if (ret == -VMFS_E_MISCOMPARE && slot_still_ours(hb, hb->seen)) {
		/* An earlier renewal landed late: continue from it. */
		memcpy(hb->cur, hb->seen, hb->ss);
		return -EAGAIN;
	}
	if (!ret) {
		uint8_t *t = hb->cur;

		hb->cur = hb->next;
		hb->next = t;
	}
	return ret;
}

/* A write through a gated handle found the lease run out (any thread). */
static void hb_gate_expired(void *ctx, int64_t overdue_ms)
{
	char why[200];

	snprintf(why, sizeof(why), "a write came %lld ms after the heartbeat "
		 "lease ran out (this host was stopped or starved), when other "
		 "hosts may already count it dead", (long long)overdue_ms);
	fence(ctx, why);
}

/*
 * The lease ran out before the renewal thread could start a renewal: fence
 * without writing, after one read of the slot to tell the admin whether a
 * survivor has taken it over already.
 */
static void hb_lapsed(struct hb *hb, int64_t now_ms)
{
	long long late = (long long)(now_ms - hb->valid_until_ms);
	char why[240];
	int ret;

	ret = lun_read(hb->lun, hb->seen, hb->ss, hb->slot_addr);
	if (!ret && !slot_still_ours(hb, hb->seen))
		snprintf(why, sizeof(why), "the heartbeat lease ran out %lld ms "
			 "ago (this host was stopped or starved) and another "
			 "host has changed our heartbeat slot (it declared us "
			 "dead)", late);
	else
		snprintf(why, sizeof(why), "the heartbeat lease ran out %lld ms "
			 "ago (this host was stopped or starved), so other "
			 "hosts may already count it dead", late);
	fence(hb, why);
}

/* Arm the write gates of both handles at hb->valid_until_ms. */
static void hb_gate_arm(struct hb *hb)
{
	struct lun_gate g = { .valid_until_ms = hb->valid_until_ms,
			      .expired = hb_gate_expired, .ctx = hb };

	if (hb->gate_lun)
		lun_gate_arm(hb->gate_lun, &g);
	g.exempt_off = hb->slot_addr;
	g.exempt_len = hb->ss;
	lun_gate_arm(hb->lun, &g);
}

static void hb_gate_extend(struct hb *hb)
{
	lun_gate_extend(hb->lun, hb->valid_until_ms);
	if (hb->gate_lun)
		lun_gate_extend(hb->gate_lun, hb->valid_until_ms);
}

static void hb_gate_disarm(struct hb *hb)
{
	lun_gate_arm(hb->lun, NULL);
	if (hb->gate_lun)
		lun_gate_arm(hb->gate_lun, NULL);
}

/*
 * Renewals start every renew_ms, counted from the start of the last one
 * (a slow renewal does not push the next one out).  One that failed is
 * tried again after a pause of an eighth of that, for as long as the
 * lease lasts: a renewal that met a stalled I/O or a hold on the
 * reserve path's mutex gets more than one chance before the fence time.
 */
static void *renew_thread(void *arg)
{
	struct hb *hb = arg;
	struct timespec until;
	int64_t next_ms, retry_ms = hb->t.renew_ms / 8 ? hb->t.renew_ms / 8 : 1;

	pthread_setname_np(pthread_self(), "vmfs-hb");
	next_ms = vmfs_mono_ms() + hb->t.renew_ms;

	pthread_mutex_lock(&hb->lk);
	hb->renew_tid = gettid();
	while (!hb->stop && !hb->fenced) {
		int64_t start_ms;
		bool slow;
		int ret;

		/* At its time, or sooner for a want or an answer to one
		 * (hb_want, hb_busy), but never more than one renewal per
		 * HB_ASK_GAP_MS: a host that waits for lock after lock does
		 * not turn its heartbeat into a stream of writes. */
		for (;;) {
			int64_t due = next_ms;

			if (hb->renew_now &&
			    hb->last_start_ms + HB_ASK_GAP_MS < due)
				due = hb->last_start_ms + HB_ASK_GAP_MS;
			if (hb->stop || vmfs_mono_ms() >= due)
				break;
			until = vmfs_mono_timespec(due * 1000000LL);
			pthread_cond_timedwait(&hb->cv, &hb->lk, &until);
		}
		if (hb->stop)
			break;
		hb->renew_now = false;
		start_ms = vmfs_mono_ms();
		hb->last_start_ms = start_ms;
		hb->renew_cpu_ok = !thread_cpu_get(hb->renew_tid, &hb->renew_cpu);
		hb->renew_start_ms = start_ms;
		hb->renew_seq++;
		pthread_mutex_unlock(&hb->lk);
		if (start_ms >= hb->valid_until_ms) {
			hb_lapsed(hb, start_ms);
			pthread_mutex_lock(&hb->lk);
			break;
		}
		ret = renew(hb);
		if (ret == -EAGAIN)
			ret = renew(hb);
		if (!ret) {
			/* Read by wd_thread without our ordering. */
			__atomic_store_n(&hb->valid_until_ms,
					 start_ms + hb->t.fence_ms,
					 __ATOMIC_RELAXED);
			hb_gate_extend(hb);
			next_ms = start_ms + hb->t.renew_ms;
		} else if (ret == -VMFS_E_MISCOMPARE) {
			fence(hb, "another host changed our heartbeat slot (it declared us dead)");
		} else {
			qb_log(LOG_WARNING, "hb: slot %u: renewal failed: %s%s",
			       hb->slot, vmfs_strerror(ret),
			       vmfs_mono_ms() < hb->valid_until_ms ?
			       " (trying again)" : "");
			if (vmfs_mono_ms() >= hb->valid_until_ms)
				fence(hb, "no heartbeat renewal within the fence time");
			next_ms = vmfs_mono_ms() + retry_ms;
		}
		pthread_mutex_lock(&hb->lk);
		if (!ret) {
			hb->renew_last_ms = (uint32_t)(vmfs_mono_ms() - start_ms);
			if (hb->renew_last_ms > hb->renew_max_ms)
				hb->renew_max_ms = hb->renew_last_ms;
		}
		hb->renew_start_ms = 0;
		slow = hb->renew_reported == hb->renew_seq;
		if (slow) {
			pthread_mutex_unlock(&hb->lk);
			qb_log(LOG_WARNING, "hb: slot %u: the slow renewal ended "
			       "after %lld ms: %s", hb->slot,
			       (long long)(vmfs_mono_ms() - start_ms),
			       ret ? vmfs_strerror(ret) : "renewed");
			pthread_mutex_lock(&hb->lk);
		}
	}
	hb->renew_start_ms = 0;
	pthread_mutex_unlock(&hb->lk);
	return NULL;
}

/* Log a long text in lines libqb keeps whole (it cuts at 512 bytes),
 * broken after a " < " between stack frames. */
static void wd_log_stack(const struct hb *hb, const char *stack)
{
	const size_t max = 400;
	size_t len = strlen(stack);
	int part = 1;

	while (len) {
		size_t n = len;

		if (n > max) {
			n = max;
			while (n > max / 2 && memcmp(stack + n - 3, " < ", 3))
				n--;
		}
		qb_log(LOG_WARNING, "hb: slot %u: renewal thread stack%s %.*s",
		       hb->slot, part == 1 ? ":" : " (cont.):", (int)n, stack);
		stack += n;
		len -= n;
		part++;
	}
}

/* What the renewal thread is at, once a renewal has run for renew_ms. */
static void wd_report(struct hb *hb, pid_t tid, const struct thread_cpu *c0,
		      bool c0_ok, int64_t start_ms, int64_t until_ms)
{
	char state[192], cpu[160] = "", stack[1600];
	struct thread_cpu c1;
	int64_t now_ms = vmfs_mono_ms();

	thread_state_describe(tid, state, sizeof(state));
	if (c0_ok && !thread_cpu_get(tid, &c1))
		snprintf(cpu, sizeof(cpu), "; since the renewal began it ran "
			 "%lld ms and waited %lld ms for a CPU",
			 (long long)((c1.run_ns - c0->run_ns) / 1000000),
			 (long long)((c1.wait_ns - c0->wait_ns) / 1000000));
	thread_stack_describe(hb->thr, 200, stack, sizeof(stack));
	qb_log(LOG_WARNING, "hb: slot %u: a renewal has run for %lld ms, with "
	       "%lld ms of the lease left; the renewal thread is %s%s", hb->slot,
	       (long long)(now_ms - start_ms), (long long)(until_ms - now_ms),
	       state, cpu);
	wd_log_stack(hb, stack);
}

/*
 * The renewal watchdog.  A host that fences because one renewal took
 * seconds, with no failure logged before, would leave nothing to go on.
 * This thread wakes every renew_ms / 8 and, once per renewal, warns when
 * one has run for renew_ms: the renewal thread's state and kernel wait,
 * the CPU it had against the time it waited for one, and its stack.  It
 * also warns when it woke renew_ms / 2 or more later than it asked: then
 * the whole process was not running (stopped, or the machine had no CPU
 * for it), which no LUN explains.
 */
static void *wd_thread(void *arg)
{
	struct hb *hb = arg;
	int64_t period = hb->t.renew_ms / 8 ? hb->t.renew_ms / 8 : 1;
	int64_t due = vmfs_mono_ms() + period;

	pthread_setname_np(pthread_self(), "vmfs-hbwd");
	pthread_mutex_lock(&hb->lk);
	while (!hb->stop && !hb->fenced) {
		struct timespec until = vmfs_mono_timespec(due * 1000000LL);
		struct thread_cpu c0;
		int64_t now, start, left;
		bool c0_ok, late;
		pid_t tid;

		if (pthread_cond_timedwait(&hb->cv, &hb->lk, &until) !=
		    ETIMEDOUT)
			continue;
		now = vmfs_mono_ms();
		left = __atomic_load_n(&hb->valid_until_ms, __ATOMIC_RELAXED) -
		       now;
		late = now - due >= hb->t.renew_ms / 2;
		if (late) {
			pthread_mutex_unlock(&hb->lk);
			qb_log(LOG_WARNING, "hb: slot %u: this process did not "
			       "run for %lld ms (it was stopped, or the machine "
			       "had no CPU for it); %lld ms of the lease %s",
			       hb->slot, (long long)(now - due + period),
			       (long long)(left < 0 ? -left : left),
			       left < 0 ? "had run out" : "left");
			pthread_mutex_lock(&hb->lk);
		}
		start = hb->renew_start_ms;
		if (start && now - start >= hb->t.renew_ms &&
		    hb->renew_reported != hb->renew_seq && !hb->stop) {
			/* Told once.  When this thread was late too, the
			 * lateness said why (the renewal's end is still told). */
			hb->renew_reported = hb->renew_seq;
			tid = hb->renew_tid;
			c0 = hb->renew_cpu;
			c0_ok = hb->renew_cpu_ok;
			pthread_mutex_unlock(&hb->lk);
			if (!late)
				wd_report(hb, tid, &c0, c0_ok, start,
					  now + left);
			pthread_mutex_lock(&hb->lk);
		}
		due = vmfs_mono_ms() + period;
	}
	pthread_mutex_unlock(&hb->lk);
	return NULL;
}

/*
 * The LUN handles' owner check (lun_set_owner_check): after a lost iSCSI
 * session, a handle registers its fencing key again only while our slot
 * is still ours, ACTIVE with our UUID and generation.  A survivor that
 * declared us dead changed it first (and preempts our key after).
 */
static bool hb_owner_ok(const void *sector, void *arg)
{
	const struct vmfs_hb_slot *hs = sector;
	struct hb *hb = arg;
	struct fmt_hb_slot h;

	if (lun_md_verify(&hs->hs_hdr, VMFS_MAGIC_HBSLOT, hb->slot_addr,
			  sizeof(*hs)))
		return false;
	(void)fmt_hb_slot_decode(hs, &h);
	return h.state == VMFS_HB_ACTIVE && h.hb_gen == hb->gen &&
	       !memcmp(h.host_uuid, hb->uuid, VMFS_UUID_SIZE);
}

static void hb_owner_check_set(struct hb *hb, bool on)
{
	lun_set_owner_check(hb->lun, hb->slot_addr, hb->ss,
			    on ? hb_owner_ok : NULL, hb);
	if (hb->gate_lun)
		lun_set_owner_check(hb->gate_lun, hb->slot_addr, hb->ss,
				    on ? hb_owner_ok : NULL, hb);
}

static void hb_free(struct hb *hb)
{
	if (hb->gen)
		hb_owner_check_set(hb, false);
	lun_buf_free(hb->cur);
	lun_buf_free(hb->next);
	lun_buf_free(hb->seen);
	pthread_mutex_destroy(&hb->lk);
	pthread_cond_destroy(&hb->cv);
	free(hb);
}

/* Fill a fresh ACTIVE slot image for us into sector (old content given). */
static void slot_claim_image(struct hb *hb, const struct hb_opts *o,
			     uint8_t *sector, uint32_t slot)
{
	struct vmfs_hb_slot *hs = slot_of(sector);
	struct fmt_hb_slot h;
	uint64_t old_gen = 0;

	(void)fmt_hb_slot_decode(hs, &h);
	if (!lun_md_verify(&hs->hs_hdr, VMFS_MAGIC_HBSLOT, hb->slot_addr,
			   sizeof(*hs)))
		old_gen = h.hb_gen;
	h.state = VMFS_HB_ACTIVE;
	h.slot = slot;
	h.hb_gen = old_gen + 1;
	h.counter = 0;
	h.lease_ms = hb->t.lease_ms;
	h.renew_ms = hb->t.renew_ms;
	memcpy(h.host_uuid, o->host_uuid, VMFS_UUID_SIZE);
	h.journal_offset = o->journal_offset + (uint64_t)slot * o->journal_size;
	h.journal_size = o->journal_size;
	h.vm_free_mib = hb_vm_free_get(hb);
	hb_asks_fill(hb, &h);
	/* The address keeps a terminating NUL in the field, as it always
	 * has; a host name may fill all 64 bytes (SPEC: character fields),
	 * which `vmfs mount --host-name` allows. */
	snprintf(h.addr, sizeof(h.addr) - 1, "%s", o->addr ? o->addr : "");
	snprintf(h.hostname, sizeof(h.hostname), "%s",
		 o->hostname ? o->hostname : "");
	fmt_hb_slot_encode(&h, hs);
	slot_seal(sector, hb->slot_addr);
}

int hb_join(struct lun *lun, uint64_t hb_offset, const struct hb_opts *o,
	    struct hb **out)
{
	struct region r;
	struct hb *hb;
	uint8_t *all = NULL;
	int64_t claim_ms = 0, first_ms, until;
	int ret, pass;

	if (o->prim != 0 && o->prim != LOCK_PRIM_ATS &&
	    o->prim != LOCK_PRIM_RESERVE)
		return -EINVAL;
	ret = region_read(lun, hb_offset, &r);
	if (ret)
		return ret;
	hb = calloc(1, sizeof(*hb));
	if (!hb)
		return -ENOMEM;
	hb->lun = lun;
	hb->ss = lun_sector_size(lun);
	hb->cur = lun_buf_alloc(hb->ss);
	hb->next = lun_buf_alloc(hb->ss);
	hb->seen = lun_buf_alloc(hb->ss);
	pthread_mutex_init(&hb->lk, NULL);
	vmfs_cond_init_mono(&hb->cv);
	hb->on_fence = o->on_fence;
	hb->ctx = o->ctx;
	hb->gate_lun = o->gate_lun;
	hb->asks = o->asks;
	hb_timeouts_from_lease(o->lease_ms ? o->lease_ms : r.lease_ms, &hb->t);
	/* From the claim on, the heartbeat's I/O has the heartbeat's
	 * timeout (a reserve's wait for a hold left behind depends on it). */
	lun_set_io_timeout(lun, hb->t.io_timeout_ms);
	hb->prim = lock_prim_pick(lun, o->prim);
	if (!hb->prim) {
		if (o->prim)
			qb_log(LOG_ERR, "hb: LUN %s lacks %s, the forced locking "
			       "primitive", lun_name(lun),
			       o->prim == LOCK_PRIM_ATS ? "COMPARE AND WRITE" :
			       "RESERVE");
		else
			qb_log(LOG_ERR, "hb: LUN %s has neither COMPARE AND WRITE "
			       "nor RESERVE; no host can lock anything on it",
			       lun_name(lun));
		ret = -EOPNOTSUPP;
		goto err;
	}
	if (!hb->cur || !hb->next || !hb->seen) {
		ret = -ENOMEM;
		goto err;
	}
	ret = slots_read(lun, &r, &all);
	if (ret)
		goto err;
	/*
	 * First pass: our own slot, left ACTIVE by a crash of this host (the
	 * host state lock guarantees no other process of ours holds it).
	 * Second pass: any free slot.  A lost compare-and-write race moves on.
	 */
	ret = -EUSERS;
	for (pass = 0; pass < 2 && ret; pass++) {
		for (uint32_t i = 0; i < r.nslots && ret; i++) {
			uint8_t *s = all + (size_t)i * VMFS_MD_BLOCK_SIZE;
			struct vmfs_hb_slot *hs = slot_of(s);
			bool valid = !lun_md_verify(&hs->hs_hdr, VMFS_MAGIC_HBSLOT,
						    r.slot0 + (uint64_t)i * VMFS_MD_BLOCK_SIZE,
						    sizeof(*hs));
			struct fmt_hb_slot h;
			uint32_t state;
			bool mine;
			int err;

			(void)fmt_hb_slot_decode(hs, &h);
			state = h.state;
			mine = valid && state != VMFS_HB_FREE &&
			       !memcmp(h.host_uuid, o->host_uuid, VMFS_UUID_SIZE);

			if (!valid || (pass == 0 && !(mine && state == VMFS_HB_ACTIVE)) ||
			    (pass == 1 && state != VMFS_HB_FREE))
				continue;
			hb->slot = i;
			hb->slot_addr = r.slot0 + (uint64_t)i * VMFS_MD_BLOCK_SIZE;
			memcpy(hb->next, s, hb->ss);
			slot_claim_image(hb, o, hb->next, i);
			/* No lease runs yet: the claim may wait out a hold
			 * that a host left behind on the LUN (it ended, or
			 * its RESERVE reached the target after it gave up)
			 * until it is broken, and try again after a timeout,
			 * instead of failing the mount.  A try that timed out
			 * may have landed: the next one then finds our image
			 * there, and the lease counts from the first try. */
			first_ms = vmfs_mono_ms();
			do {
				/* The break time of the hold in the way may
				 * be longer than ours (its holder says). */
				until = first_ms + hb->t.io_timeout_ms +
					lun_reserve_break_ms(lun);
				claim_ms = vmfs_mono_ms();
				err = hb_caw(hb, s, hb->next, hb->seen);
				if (err == -VMFS_E_MISCOMPARE &&
				    !memcmp(hb->seen, hb->next, hb->ss)) {
					claim_ms = first_ms;
					err = 0;
				}
			} while ((err == -VMFS_E_RESERVED ||
				  err == -ETIMEDOUT) &&
				 vmfs_mono_ms() < until);
			if (!err) {
				memcpy(hb->cur, hb->next, hb->ss);
				ret = 0;
			} else if (err != -VMFS_E_MISCOMPARE) {
				ret = err;
				goto err;
			}
		}
	}
	if (ret)
		goto err;
	/* The claim counts as the first renewal. */
	hb->valid_until_ms = claim_ms + hb->t.fence_ms;
	memcpy(hb->uuid, o->host_uuid, VMFS_UUID_SIZE);
	/* Wants start anywhere: an answer left in another host's slot for
	 * this slot's last mount must not match a want of this one. */
	if (getrandom(&hb->want_seq, sizeof(hb->want_seq), 0) !=
	    sizeof(hb->want_seq))
		hb->want_seq = (uint32_t)vmfs_mono_ms();
	hb->gen = hb_generation(hb);
	hb_owner_check_set(hb, true);
	hb_gate_arm(hb);
	ret = -pthread_create(&hb->thr, NULL, renew_thread, hb);
	if (ret) {
		hb_gate_disarm(hb);
		goto err;
	}
	/* Without its watchdog a host still renews: only warnings are lost. */
	hb->wd_started = !pthread_create(&hb->wd_thr, NULL, wd_thread, hb);
	if (!hb->wd_started)
		qb_log(LOG_WARNING, "hb: slot %u: no renewal watchdog thread; "
		       "slow renewals will not be reported", hb->slot);
	qb_log(LOG_DEBUG, "hb: joined slot %u (generation %llu), lease %u ms, renew %u ms, fence after %u ms",
	       hb->slot, (unsigned long long)hb_generation(hb),
	       hb->t.lease_ms, hb->t.renew_ms, hb->t.fence_ms);
	lun_buf_free(all);
	*out = hb;
	return 0;
err:
	lun_buf_free(all);
	hb_free(hb);
	return ret;
}

int hb_leave(struct hb *hb)
{
	struct vmfs_hb_slot *hs;
	struct fmt_hb_slot h;
	int ret = 0;

	if (!hb)
		return 0;
	pthread_mutex_lock(&hb->lk);
	hb->stop = true;
	pthread_cond_broadcast(&hb->cv);
	pthread_mutex_unlock(&hb->lk);
	/* The watchdog first: it may signal the renewal thread, which must
	 * not have been joined by then. */
	if (hb->wd_started)
		pthread_join(hb->wd_thr, NULL);
	pthread_join(hb->thr, NULL);
	/* Freeing the slot is a write like any other: not after the lease
	 * (the gate exempts our slot; this is where it is checked). */
	if (!hb->fenced && vmfs_mono_ms() >= hb->valid_until_ms)
		hb_lapsed(hb, vmfs_mono_ms());
	if (!hb->fenced) {
		struct fmt_hb_slot seen;
		bool plain = hb->prim == LOCK_PRIM_RESERVE;

		/* Keep the generation so the next mount moves past it. */
		ret = plain ? plain_read(hb, &seen) : 0;
		memcpy(hb->next, hb->cur, hb->ss);
		hs = slot_of(hb->next);
		(void)fmt_hb_slot_decode(hs, &h);
		h.state = VMFS_HB_FREE;
		memset(h.host_uuid, 0, VMFS_UUID_SIZE);
		h.vm_free_mib = 0;
		h.flags = h.want_seq = h.busy_slot = h.busy_seq = 0;
		h.want_addr = h.busy_addr = 0;
		fmt_hb_slot_encode(&h, hs);
		if (plain) {
			/* The heartbeat handle takes the reservation only to
			 * claim the slot (PROTOCOL.md §10). */
			if (!ret)
				ret = plain_write(hb);
		} else {
			slot_seal(hb->next, hb->slot_addr);
			ret = hb_caw(hb, hb->cur, hb->next, hb->seen);
			if (ret == -VMFS_E_MISCOMPARE &&
			    slot_still_ours(hb, hb->seen))
				/* A renewal landed late; free over it. */
				ret = hb_caw(hb, hb->seen, hb->next, NULL);
		}
		if (ret)
			qb_log(LOG_ERR, "hb: freeing slot %u: %s", hb->slot,
			       vmfs_strerror(ret));
	}
	hb_gate_disarm(hb);
	hb_free(hb);
	return ret;
}

uint32_t hb_slot_index(const struct hb *hb)
{
	return hb->slot;
}

unsigned hb_primitive(const struct hb *hb)
{
	return hb->prim;
}

void hb_renew_times(struct hb *hb, uint32_t *last_ms, uint32_t *max_ms)
{
	pthread_mutex_lock(&hb->lk);
	*last_ms = hb->renew_last_ms;
	*max_ms = hb->renew_max_ms;
	pthread_mutex_unlock(&hb->lk);
}

uint64_t hb_generation(const struct hb *hb)
{
	struct fmt_hb_slot h;

	(void)fmt_hb_slot_decode(slot_of(hb->cur), &h);
	return h.hb_gen;
}

void hb_timeouts_get(const struct hb *hb, struct hb_timeouts *t)
{
	*t = hb->t;
}

/* Decode slot i if it verifies and is not free; false otherwise. */
static bool slot_decode(const uint8_t *sector, uint64_t addr, uint32_t i,
			struct hb_slot_info *si)
{
	const struct vmfs_hb_slot *hs = (const struct vmfs_hb_slot *)sector;
	struct fmt_hb_slot h;

	if (lun_md_verify(&hs->hs_hdr, VMFS_MAGIC_HBSLOT, addr, sizeof(*hs)) ||
	    fmt_hb_slot_decode(hs, &h) || h.slot != i ||
	    h.state == VMFS_HB_FREE || h.lease_ms < HB_MIN_LEASE_MS ||
	    h.lease_ms > HB_MAX_LEASE_MS)
		return false;
	memset(si, 0, sizeof(*si));
	si->slot = i;
	si->state = h.state;
	memcpy(si->host_uuid, h.host_uuid, VMFS_UUID_SIZE);
	si->hb_gen = h.hb_gen;
	si->counter = h.counter;
	si->lease_ms = h.lease_ms;
	si->vm_free_mib = h.vm_free_mib;
	si->flags = h.flags;
	si->want_seq = h.want_seq;
	si->want_addr = h.want_addr;
	si->busy_slot = h.busy_slot;
	si->busy_seq = h.busy_seq;
	si->busy_addr = h.busy_addr;
	_Static_assert(sizeof(si->hostname) == sizeof(h.hostname),
		       "hb_slot_info hostname");
	memcpy(si->hostname, h.hostname, sizeof(si->hostname));
	return true;
}

/* Torn, as lun_reread_torn asks: a block that never was a slot (no
 * magic) is not read again; one that fails otherwise is.  Taking a live
 * host's torn slot for free would make `vmfs locks` call its locks stale
 * and the HA agent think the host left. */
static int slot_torn(const void *blk, uint64_t addr, void *arg)
{
	int bad = lun_md_verify(blk, VMFS_MAGIC_HBSLOT, addr,
				sizeof(struct vmfs_hb_slot));

	(void)arg;
	return bad == -VMFS_E_BAD_MAGIC ? 0 : bad;
}

int hb_survey_slots(struct lun *lun, uint64_t slot0, uint32_t nslots,
		    bool watch, struct hb_slot_info *out, uint32_t max,
		    uint32_t *n)
{
	struct region r = { .nslots = nslots, .slot0 = slot0 };
	uint8_t *all = NULL, *again = NULL;
	uint32_t wait_ms = 0;
	int ret;

	*n = 0;
	if (!nslots || nslots > 1024)
		return -EINVAL;
	ret = slots_read(lun, &r, &all);
	if (ret)
		return ret;
	for (uint32_t i = 0; i < nslots && *n < max; i++) {
		uint8_t *blk = all + (size_t)i * VMFS_MD_BLOCK_SIZE;
		uint64_t addr = slot0 + (uint64_t)i * VMFS_MD_BLOCK_SIZE;
		struct hb_timeouts t;

		/* Whatever a failed reread left, slot_decode judges. */
		(void)lun_reread_torn(lun, blk, VMFS_MD_BLOCK_SIZE, addr,
				      slot_torn, NULL);
		if (!slot_decode(blk, addr, i, &out[*n]))
			continue;
		hb_timeouts_from_lease(out[*n].lease_ms, &t);
		if (t.dead_ms > wait_ms)
			wait_ms = t.dead_ms;
		(*n)++;
	}
	if (watch && *n) {
		struct timespec ts = { wait_ms / 1000, (long)(wait_ms % 1000) * 1000000L };

		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
		ret = slots_read(lun, &r, &again);
		for (uint32_t k = 0; !ret && k < *n; k++) {
			struct vmfs_hb_slot *hs = slot_of(again +
				(size_t)out[k].slot * VMFS_MD_BLOCK_SIZE);
			struct fmt_hb_slot h;

			(void)fmt_hb_slot_decode(hs, &h);
			out[k].live = h.counter != out[k].counter ||
				      h.hb_gen != out[k].hb_gen;
		}
	}
	lun_buf_free(all);
	lun_buf_free(again);
	return ret;
}

int hb_survey(struct lun *lun, uint64_t hb_offset, bool watch,
	      struct hb_slot_info *out, uint32_t max, uint32_t *n)
{
	struct region r;
	int ret;

	*n = 0;
	ret = region_read(lun, hb_offset, &r);
	if (ret)
		return ret;
	return hb_survey_slots(lun, r.slot0, r.nslots, watch, out, max, n);
}
