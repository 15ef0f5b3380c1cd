/*
 * Many hosts on one volume: the engine's side of the lock protocol
 * (docs/PROTOCOL.md).
 *
 * The lock record of the heartbeat-region header is the volume lock.  A
 * host alone on the volume holds it EXCLUSIVE and works exactly as a
 * single host always has: no per-object lock, every cache trusted.  Hosts
 * that share the volume leave it free, and every operation takes the
 * on-disk locks of the objects it reads or changes (inodes
 * EXCLUSIVE or READONLY, resource clusters EXCLUSIVE), in one global
 * order, and at its end writes its journal home (jnl_drain: committed,
 * checkpointed, tail moved) before it releases them, so the next holder
 * reads current metadata from disk and no later replay of this host's
 * journal can land over a newer block.  A lock whose generation moved
 * since this host last released it means another host changed what it
 * covers: the cached copy is read again.  Open files keep their inode
 * lock (the open lock) for as long as they are open.
 *
 * A lone host learns that another host joined at its next tick (a
 * renewal interval), when it sees a new ACTIVE slot: it writes everything
 * home, takes the open locks of its open files on disk, and releases the
 * volume lock; the newcomer waits for that.  A shared host that finds
 * itself alone again takes it back (vcl_try_alone) and rereads its caches.
 *
 * The same tick watches the other slots: a slot whose counter stood still
 * for its lease is recovered by the host whose compare-and-write marks it
 * REPLAYING (exactly one), which replays its journal and frees the slot;
 * the dead host's lock records become breakable (lock_hbwatch_holds says
 * GONE) and are broken by whoever needs one, and its orphans are freed by
 * the orphan sweep.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "vmfs/clock.h"
#include "vmfs/lockmgr.h"
#include "vol_int.h"

/* One object this host holds, or held and remembers the generation of. */
struct vheld {
	uint64_t addr;
	enum vmfs_lock_mode mode;  /* on disk now; FREE: not held */
	uint64_t gen;              /* the record's generation as we left it */
	uint32_t open_ro, open_rw; /* open files (FUSE opens) */
	bool multiwriter;          /* opens share a MULTIWRITER lock */
	bool in_op;                /* taken by the running operation */
	bool wanted;               /* to be let go when its op ends */
	bool asked;                /* ... and a member waits for RELEASED */
	bool dirty;                /* cached with changes not home yet: */
	uint64_t seq;              /* ... in this sealed transaction */
	int64_t used_ms;           /* made, or last used by an operation or a close */
	int64_t contended_until;   /* asked for on the disk (§9a): let go
				    * after each operation until then */
	bool kheld;                /* the kernel keeps what it covers
				    * (vol_kcache_hold) */
	bool leaving;              /* being let go: the kernel may keep
				    * nothing more under it */
	bool unreleased;           /* its last release failed: the next
				    * trim tries again (vcl_release_addr) */
	bool detached;             /* vol_file_detach: the opens here hold
				    * no lock; writes are refused */
	bool detach_ending;        /* ... until the last of them closes */
	unsigned pins;             /* the handover worker works on it with
				    * held_mu let go: kept meanwhile */
	struct vheld *next;
};

/* What the tick saw of another host's slot. */
struct vslot_seen {
	bool valid;
	bool present;              /* in the last survey */
	bool suspect;              /* left our group: watched closely */
	uint32_t moves_since_left;
	uint32_t state;
	uint8_t uuid[VMFS_UUID_SIZE];
	uint64_t hb_gen, counter;
	int64_t since_ms;
	/* Early recovery (vcl_fenced_early) of a still slot: PREEMPT_* */
	unsigned preempt;
	/* Disk asks (§9a): it reads wants; the last want of it we saw. */
	bool asks;
	bool want_valid;
	uint64_t want_gen;
	uint32_t want_seq;
};

/* One lock the handover worker is to let go of; asked: a member asked
 * for it and waits for RELEASED (no answer for our own uncaching). */
struct vcl_hwreq {
	uint64_t addr;
	bool asked;
};

#define VHELD_BUCKETS 16384
/*
 * Entries that hold nothing (no lock, no open, no flag) only remember a
 * lock's generation, so that taking it again rereads nothing when no
 * other host took it meanwhile.  Past this many entries, those unused
 * for VHELD_IDLE_MS (made, or last used by an operation or a close, that
 * long ago) go (twice as many: every such one), or a host that touched a
 * million files would keep a million entries.
 */
#ifndef VHELD_KEEP              /* smaller in a stress build */
#define VHELD_KEEP 16384
#endif
#define VHELD_IDLE_MS 10000
#define VCL_MAX_OP_LOCKS 64

struct vcl {
	struct vol_cluster_opts o;
	uint8_t host_uuid[VMFS_UUID_SIZE];	/* o.host_uuid points here */
	struct lock_ctx *lk;
	struct lock_hbwatch *watch;
	uint8_t uuid[VMFS_UUID_SIZE];
	pthread_rwlock_t mode_rw;    /* operations read, a mode switch writes */
	pthread_mutex_t op_mu;       /* shared mode: one operation at a time */
	pthread_mutex_t held_mu;     /* the table below */
	bool shared;
	bool stopping;
	struct vheld *held[VHELD_BUCKETS];
	uint32_t nheld;              /* entries in the table */
	struct vslot_seen *seen;     /* per slot */
	uint32_t nslots;
	struct hb_slot_info *si;
	/* The watcher's last read of the slots, for vol_cluster_slots
	 * (thr_mu): what it found, and when (0: none yet). */
	struct hb_slot_info *last_si;
	uint32_t last_n;
	int64_t last_ms;
	pthread_t thr;
	bool thr_started;
	pthread_mutex_t thr_mu;
	pthread_cond_t thr_cv;
	uint64_t broken;
	_Atomic uint64_t recovered;  /* hosts recovered since the last sweep */
	bool sweep_wanted;           /* an unlinked inode waits for the sweep */
	uint32_t orphan_passes;      /* sweeps in a row that found an orphan
				      * locked elsewhere (held_mu) */
	char why[600];               /* who refused us the volume lock */
	/* The maintenance worker: the orphan sweep and the geometry check,
	 * which wait for operations, off the watcher's thread (vcl_tick). */
	pthread_t mt_thr;
	bool mt_started, mt_stopping, mt_tick;
	pthread_mutex_t mt_mu;
	pthread_cond_t mt_cv;

	/* The cluster fast path (vol_cluster_set_net, §9 of PROTOCOL.md). */
	pthread_rwlock_t net_rw;     /* askers read, vol_cluster_set_net writes */
	const struct vol_net_ops *net;
	void *net_arg;
	bool caching;                /* locks stay held between operations
				      * (held_mu) */
	uint32_t *wq;                /* the watcher's new wants: indexes of si */
	bool net_check;              /* membership changed (thr_mu) */
	bool any_suspect;            /* a slot is watched closely */
	/* The handover worker: members' requests, served off their thread,
	 * and this host's own "let go of it" (vcl_hw_queue). */
	pthread_t hw_thr;
	bool hw_started, hw_stopping;
	pthread_mutex_t hw_mu;
	pthread_cond_t hw_cv;
	struct vcl_hwreq *hw_q;
	uint32_t hw_n, hw_cap;
	bool hw_kc_drop;             /* the kernel forgets first (shared) */
	bool hw_flush;               /* release every cached lock */
	bool hw_drop;                /* ... even while caching (§9a) */
	bool hw_trim;                /* release the cached locks left idle */
	bool release_failed;         /* a release failed: trim at the next
				      * tick (held_mu) */
	struct vol_net_stats ns;     /* counters: atomics */

	/* The kernel's caches (vol_kcache_set).  kc_rw guards kc and
	 * kc_arg, read while a hook runs (hooks run side by side: one may
	 * wait for the kernel while another is called inside an
	 * operation). */
	pthread_rwlock_t kc_rw;
	const struct vol_kcache_ops *kc;
	void *kc_arg;
	_Atomic bool kc_ok;          /* alone: the kernel may cache */
	_Atomic uint64_t kc_epoch;   /* + 1 at every release of a lock */
	_Atomic unsigned ndetached;  /* entries detached (vol_file_detach) */
};

/* The running operation of this thread (shared mode). */
struct vcl_optab {
	struct vol *v;
	uint64_t addr[VCL_MAX_OP_LOCKS];
	uint32_t n;
	bool nested;               /* inside another operation of this thread */
};
static __thread struct vcl_optab *cur_op;
/* The operation this thread runs, shared or not (nesting). */
static __thread const struct vol *op_vol;
static __thread unsigned op_depth;
_Static_assert(sizeof(struct vcl_optab) <= sizeof(struct vcl_op_buf),
	       "VCL_OP's buffer holds an operation");

static uint32_t held_hash(uint64_t addr)
{
	return (uint32_t)((addr >> 12) * 0x9e3779b97f4a7c15ull >> 40) %
	       VHELD_BUCKETS;
}

/* The entry of addr, created when want (held_mu held). */
static struct vheld *held_find(struct vcl *c, uint64_t addr, bool want)
{
	struct vheld **pp = &c->held[held_hash(addr)], *h;

	for (h = *pp; h; h = h->next)
		if (h->addr == addr)
			return h;
	if (!want)
		return NULL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->addr = addr;
	h->used_ms = vmfs_mono_ms();
	h->next = *pp;
	*pp = h;
	c->nheld++;
	return h;
}

/* Does h remember nothing but a generation (held_mu held)? */
static bool held_idle(const struct vheld *h, int64_t now)
{
	return h->mode == VMFS_LOCK_FREE && !h->open_ro && !h->open_rw &&
	       !h->in_op && !h->wanted && !h->asked && !h->dirty &&
	       !h->kheld && !h->leaving && !h->unreleased && !h->detached &&
	       !h->detach_ending && !h->pins && h->contended_until <= now;
}

/*
 * Past VHELD_KEEP entries, free the idle ones unused for VHELD_IDLE_MS
 * (past twice as many, every idle one).  held_mu held throughout: whoever
 * works on an entry with it let go keeps it from being idle (an open, an
 * operation, a flag, or pins).
 */
static void held_prune(struct vcl *c, int64_t now)
{
	bool all = c->nheld > 2 * VHELD_KEEP;

	if (c->nheld <= VHELD_KEEP)
		return;
	for (uint32_t b = 0; b < VHELD_BUCKETS; b++) {
		struct vheld **pp = &c->held[b];

		while (*pp) {
			struct vheld *h = *pp;

			if (held_idle(h, now) &&
			    (all || now - h->used_ms >= VHELD_IDLE_MS)) {
				*pp = h->next;
				free(h);
				c->nheld--;
			} else {
				pp = &h->next;
			}
		}
	}
}

bool vcl_shared(const struct vol *v)
{
	return v->cl && v->cl->shared;
}

static uint64_t vcl_region_addr(const struct vcl *c)
{
	return c->o.hb_offset;
}

/* ---- naming holders in messages -------------------------------------- */

/* "host NAME (UUID, slot N)" of holder h, from its heartbeat slot. */
static void holder_name(struct vcl *c, const struct lock_holder *h,
			char *out, size_t len)
{
	char u[37] = "?";
	const char *name = "?";
	uint32_t n = 0;

	vol_uuid_format(h->uuid, u);
	if (!hb_survey(c->o.hb_lun, c->o.hb_offset, false, c->si, c->nslots,
		       &n))
		for (uint32_t i = 0; i < n; i++)
			if (c->si[i].slot == h->slot &&
			    !memcmp(c->si[i].host_uuid, h->uuid, VMFS_UUID_SIZE))
				name = c->si[i].hostname[0] ? c->si[i].hostname
							     : "?";
	snprintf(out, len, "host %s (%s, slot %u)", name, u, h->slot);
}

void vol_lock_owner_text(struct vol *v, const struct lock_state *st,
			 char *out, size_t len)
{
	size_t off = 0;

	out[0] = 0;
	for (uint32_t i = 0; i < st->nholders && off + 1 < len; i++) {
		char one[200];

		holder_name(v->cl, &st->holders[i], one, sizeof(one));
		off += (size_t)snprintf(out + off, len - off, "%s%s",
					i ? ", " : "", one);
	}
}

/* ---- taking a lock against live, dead and gone holders ---------------- */

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

#define NS_ADD(c, field) __atomic_add_fetch(&(c)->ns.field, 1, __ATOMIC_RELAXED)

/* How long one request over the fast path waits for its answer. */
#define VCL_ASK_MS 1000u
/* After an answer, how soon the same lock may be asked for again (the
 * lock may still be busy: open files, a third host). */
#define VCL_ASK_AGAIN_MS 250

/*
 * Set by vcl_lock_ino_fresh around its lock: a holder that answers that
 * it keeps the lock (files open there) ends the wait at once (-EBUSY),
 * instead of the wait going on for the lease.
 */
static __thread bool busy_ends;

static bool vcl_is_me(const struct vcl *c, const struct lock_holder *h)
{
	return h->slot == c->o.my_slot &&
	       !memcmp(h->uuid, c->o.host_uuid, VMFS_UUID_SIZE);
}

/*
 * Ask every holder in st but us, all live, to let go of addr over the
 * fast path.  True when each one answered: the caller looks at the disk
 * again at once.  False: no fast path, a holder outside our group, or no
 * answer in timeout_ms (then the disk-only wait goes on).
 */
static bool vcl_ask(struct vcl *c, const struct lock_state *st, uint64_t addr,
		    enum vmfs_lock_mode mode, unsigned timeout_ms, bool *busy)
{
	bool all = false;

	pthread_rwlock_rdlock(&c->net_rw);
	if (c->net)
		for (uint32_t i = 0; i < st->nholders; i++) {
			const struct lock_holder *h = &st->holders[i];
			int ret;

			if (vcl_is_me(c, h))
				continue;
			NS_ADD(c, asked);
			ret = c->net->ask_release(c->net_arg, h, addr, mode,
						  timeout_ms);
			if (ret == -ETIMEDOUT)
				NS_ADD(c, ask_timeouts);
			if (ret == -EBUSY)
				*busy = true;
			if (ret) {
				all = false;
				break;
			}
			NS_ADD(c, answered);
			all = true;
		}
	pthread_rwlock_unlock(&c->net_rw);
	return all;
}

/* The mode we hold addr in (held_mu held). */
static enum vmfs_lock_mode vcl_held_mode(struct vcl *c, uint64_t addr)
{
	struct vheld *h = held_find(c, addr, false);

	return h ? h->mode : VMFS_LOCK_FREE;
}

/*
 * The locks the running operation holds besides addr, as " A B ...", or
 * " nothing else": for a refusal after a wait, so that two hosts whose
 * operations wait for each other show it on both sides, a lease apart
 * at most.
 */
static void vcl_op_held_text(uint64_t addr, char *out, size_t size)
{
	size_t len = 0;

	out[0] = '\0';
	for (uint32_t i = 0; cur_op && i < cur_op->n; i++) {
		int n;

		if (cur_op->addr[i] == addr)
			continue;
		n = snprintf(out + len, size - len, " %llu",
			     (unsigned long long)cur_op->addr[i]);
		if (n < 0 || (size_t)n >= size - len)
			break;
		len += (size_t)n;
	}
	if (!len)
		snprintf(out, size, " nothing else");
}

#define VCL_HELD_TEXT (VCL_MAX_OP_LOCKS * 21 + 16)

static bool mode_covers(enum vmfs_lock_mode held, enum vmfs_lock_mode want);

/* Whether we are among st's holders. */
static bool vcl_holds(const struct vcl *c, const struct lock_state *st)
{
	for (uint32_t i = 0; i < st->nholders; i++)
		if (vcl_is_me(c, &st->holders[i]))
			return true;
	return false;
}

/*
 * lock_acquire found addr ours in another mode than wanted (-EINVAL)
 * while this host counted it free: a change of ours whose answer was
 * lost (it timed out, its path went away) landed after all.  Nothing
 * here was done under that hold.  Take the lock as it is where its mode
 * covers the one wanted; otherwise let go of it and acquire again.
 */
static int vcl_adopt(struct vcl *c, uint64_t addr, enum vmfs_lock_mode mode,
		     struct lock_state *st)
{
	int ret;

	VLOG(LOG_NOTICE, "the lock at %llu is ours in another mode than this host knew (a change whose answer was lost landed): %s",
	     (unsigned long long)addr, mode_covers(st->mode, mode) ?
	     "kept as it is" : "let go and taken again");
	if (mode_covers(st->mode, mode))
		return 0;
	ret = lock_release(c->lk, addr, st);
	atomic_fetch_add(&c->kc_epoch, 1);
	if (ret)
		return ret;
	return lock_acquire(c->lk, addr, mode, 0, st);
}

/*
 * Whether a holder in st (not us) has not renewed its heartbeat for a
 * renewal interval and a heartbeat I/O timeout, by the watcher's
 * judgements: it is due, and it may be dead.  A host killed just after a
 * renewal turns dead only a lease and a renewal after this host first
 * saw that renewal (SPEC §5), later than a lease-long wait for a live
 * holder that began at once ends.
 */
static bool vcl_silent(const struct vcl *c, const struct lock_state *st,
		       int64_t now)
{
	int64_t quiet = (int64_t)c->o.t.renew_ms + c->o.t.io_timeout_ms;

	for (uint32_t i = 0; i < st->nholders; i++) {
		int64_t seen;

		if (vcl_is_me(c, &st->holders[i]))
			continue;
		seen = lock_hbwatch_seen_ms(c->watch, &st->holders[i]);
		if (seen >= 0 && now - seen >= quiet)
			return true;
	}
	return false;
}

/*
 * Is another host stopped (its counter still for a renewal and an I/O
 * timeout, as in vcl_silent) or being replayed, as the watcher last read
 * the slots?  A live holder in our way may then be waiting for that
 * host's locks itself.
 */
static bool vcl_other_stopped(struct vcl *c, int64_t now)
{
	int64_t quiet = (int64_t)c->o.t.renew_ms + c->o.t.io_timeout_ms;
	bool any = false;

	pthread_mutex_lock(&c->thr_mu);
	for (uint32_t i = 0; i < c->nslots && !any; i++) {
		const struct vslot_seen *s = &c->seen[i];

		if (i == c->o.my_slot || !s->valid || !s->present)
			continue;
		any = s->state == VMFS_HB_REPLAYING || now - s->since_ms >= quiet;
	}
	pthread_mutex_unlock(&c->thr_mu);
	return any;
}

/*
 * Disk asks (docs/PROTOCOL.md §9a).  A wait this long for a live holder
 * that the fast path cannot ask puts a want for the lock in our slot
 * (hb_want); a wait that goes on posts a new one every half renewal (the
 * holder may have taken the lock again meanwhile).
 */
#define VCL_DISK_ASK_AFTER_MS 20
/*
 * A lock asked for on the disk, by us or of us, is not kept between
 * operations for this long: hosts that take turns at it go the way of
 * §3 (each operation lets go of it at its end), rather than pay a
 * quarter renewal for every turn.  Every new ask starts it again.
 */
#define VCL_CONTEND_MS 5000

/* Mark the lock at addr asked for on the disk (held_mu held); true if
 * it was not so already. */
static bool vcl_contend(struct vcl *c, uint64_t addr, int64_t now)
{
	struct vheld *h = held_find(c, addr, false);
	bool fresh;

	if (!h)
		return false;
	fresh = h->contended_until <= now;
	h->contended_until = now + VCL_CONTEND_MS;
	return fresh;
}

/* Does this host keep h between operations (held_mu held)? */
static bool vcl_keeps(const struct vcl *c, const struct vheld *h)
{
	return c->caching && !h->wanted &&
	       (!h->contended_until || h->contended_until <= vmfs_mono_ms());
}

/* Can the fast path ask every holder in st but us? */
static bool vcl_net_reaches(struct vcl *c, const struct lock_state *st)
{
	bool all = true;

	pthread_rwlock_rdlock(&c->net_rw);
	for (uint32_t i = 0; i < st->nholders && all; i++)
		if (!vcl_is_me(c, &st->holders[i]))
			all = c->net && c->net->is_member(c->net_arg,
							  &st->holders[i]);
	pthread_rwlock_unlock(&c->net_rw);
	return all;
}

/* Did a holder in st answer one of our wants first..last for addr "kept
 * for files open here" (hb_busy)?  By the watcher's last read of the
 * slots. */
static bool vcl_disk_busy(struct vcl *c, const struct lock_state *st,
			  uint64_t addr, uint32_t first, uint32_t last)
{
	bool busy = false;

	pthread_mutex_lock(&c->thr_mu);
	for (uint32_t i = 0; c->last_ms && i < c->last_n && !busy; i++) {
		const struct hb_slot_info *si = &c->last_si[i];

		if (si->busy_slot != c->o.my_slot || si->busy_addr != addr ||
		    si->busy_seq - first > last - first)
			continue;
		for (uint32_t k = 0; k < st->nholders; k++)
			busy |= st->holders[k].slot == si->slot &&
				!vcl_is_me(c, &st->holders[k]);
	}
	pthread_mutex_unlock(&c->thr_mu);
	return busy;
}

/* vcl_contend, held_mu not held. */
static void vcl_contend_addr(struct vcl *c, uint64_t addr, int64_t now)
{
	pthread_mutex_lock(&c->held_mu);
	(void)vcl_contend(c, addr, now);
	pthread_mutex_unlock(&c->held_mu);
}

/* Put a want for addr in our slot; its sequence. */
static uint32_t vcl_disk_ask(struct vcl *c, uint64_t addr,
			     enum vmfs_lock_mode mode)
{
	NS_ADD(c, disk_asked);
	return hb_want(c->o.hb, addr, mode != VMFS_LOCK_READONLY);
}

/* Could we join the lock as st found it (lock.c's decide_acquire)? */
static bool vcl_joinable(const struct lock_state *st, enum vmfs_lock_mode mode)
{
	return st->mode == VMFS_LOCK_FREE ||
	       (st->mode == mode && mode != VMFS_LOCK_EXCLUSIVE &&
		st->nholders < VMFS_LOCK_MAX_HOLDERS);
}

/* How vcl_acquire waits past its live wait. */
enum {
	/* for a dead holder until it is recovered; a holder found silent
	 * (vcl_silent) when the live wait ends counts as dead */
	VCL_WAIT_DEAD = 1,
	/* for a live holder as for a dead one while another host is
	 * stopped (vcl_other_stopped): an operation's lock, whose holder
	 * may be an operation waiting for the stopped host */
	VCL_WAIT_STOPPED = 2,
};

/*
 * Acquire addr in mode.  Holders that are live make us wait up to
 * live_ms; holders whose slot moved on are broken at once; waits
 * (VCL_WAIT_*) says how long we wait past that.
 * -EBUSY with *st naming who is in the way.
 */
static int vcl_acquire_asking(struct vcl *c, uint64_t addr,
			      enum vmfs_lock_mode mode, unsigned live_ms,
			      unsigned waits, struct lock_state *st,
			      int64_t *disk_asked)
{
	bool wait_dead = waits & VCL_WAIT_DEAD;
	int64_t start = vmfs_mono_ms();
	uint32_t want_seq = 0, first_seq = 0;
	bool net_failed = false, turns = false;
	int64_t live_end = start + live_ms;
	int64_t dead_end = wait_dead ? start + live_ms + c->o.t.dead_ms +
				       c->o.t.lease_ms : live_end;
	int64_t next_ask = 0;
	unsigned backoff = 5;
	bool waited_dead = false;

	for (;;) {
		bool dead = false, gone = false, silent;
		int64_t now;
		int ret = lock_acquire(c->lk, addr, mode, 0, st);

		if (ret == -EINVAL && vcl_holds(c, st))
			ret = vcl_adopt(c, addr, mode, st);
		/* The change's answer was lost (a path going away): ask
		 * again, within the wait; what landed is ours already. */
		if (ret == -ETIMEDOUT && vmfs_mono_ms() < live_end &&
		    !c->stopping)
			continue;
		if (ret != -EBUSY)
			return ret;
		/* Nobody in the way: our compare-and-write kept losing to
		 * other hosts' changes of a record we may join (readers
		 * coming and going).  Try again; no ask, no turns, which
		 * would only make them come and go more. */
		if (vcl_joinable(st, mode)) {
			if (vmfs_mono_ms() >= live_end || c->stopping)
				return ret;
			sleep_ms(1 + (unsigned)(random() % 4));
			continue;
		}
		for (uint32_t i = 0; i < st->nholders; i++) {
			int f = lock_hbwatch_judge(c->watch, &st->holders[i]);

			if (f == LOCK_HOLDER_GONE)
				gone = true;
			else if (f == LOCK_HOLDER_DEAD || f < 0)
				dead = true;
		}
		if (gone) {
			struct lock_state b;

			ret = lock_break(c->lk, st, &b);
			if (!ret) {
				c->broken++;
				VLOG(LOG_NOTICE, "broke the lock at %llu of a host whose heartbeat slot moved on",
				     (unsigned long long)addr);
				continue;
			}
			if (ret != -VMFS_E_MISCOMPARE && ret != -EBUSY)
				return ret;
		}
		now = vmfs_mono_ms();
		silent = vcl_silent(c, st, now);
		/* A live holder past our live wait while another host is
		 * stopped: its operation may be waiting for that host's
		 * locks, holding the one we want.  We wait as for a dead
		 * holder until that host is recovered (the bound is the same),
		 * then the live one gets its own wait, as below. */
		if ((waits & VCL_WAIT_STOPPED) && now >= live_end && !dead &&
		    !gone && !silent && vcl_other_stopped(c, now))
			silent = true;
		/* We waited for a dead (or silent) host, and another host
		 * that waited too broke its lock first and holds it now: that
		 * live host gets a wait of its own, as if we had just come.
		 * Our time went on the dead one; without this the loser of
		 * the break would give up at once (EBUSY), past its live
		 * wait.  Silent counts: the dead host may be recovered and
		 * its lock taken between two of our polls, before we ever
		 * judged it dead. */
		if (dead || gone || silent) {
			waited_dead = true;
		} else if (waited_dead) {
			int64_t end;

			waited_dead = false;
			live_end = now + live_ms;
			end = wait_dead ? live_end + c->o.t.dead_ms +
					  c->o.t.lease_ms : live_end;
			if (dead_end < end)
				dead_end = end;
		}
		if (c->stopping || now >= dead_end ||
		    (now >= live_end && !dead && !silent))
			return -EBUSY;
		/* Live holders in our group: ask them (a cached lock is let
		 * go at once, one an operation uses when it ends). */
		if (!dead && !gone && now >= next_ask && now < live_end) {
			unsigned left = (unsigned)(live_end - now);
			bool busy = false;

			next_ask = now + VCL_ASK_AGAIN_MS;
			if (vcl_ask(c, st, addr, mode,
				    left < VCL_ASK_MS ? left : VCL_ASK_MS, &busy))
				continue;
			if (busy && busy_ends)
				return -EBUSY;
			net_failed = !busy;
			now = vmfs_mono_ms();
		}
		/* A live holder the fast path cannot ask (or that did not
		 * answer) is in the way: the lock is taken in turns, so it is
		 * not kept between operations for a while (the turns keep
		 * that going with no ask needed), and once the wait is longer
		 * than an operation, it is asked for on the disk. */
		if (!dead && !gone && c->o.hb && now < live_end &&
		    (net_failed || !vcl_net_reaches(c, st))) {
			bool ask = now - start >= VCL_DISK_ASK_AFTER_MS &&
				   (!*disk_asked ||
				    now - *disk_asked >= c->o.t.renew_ms / 2);

			if (!turns || ask)
				vcl_contend_addr(c, addr, now);
			turns = true;
			if (ask) {
				want_seq = vcl_disk_ask(c, addr, mode);
				if (!*disk_asked)
					first_seq = want_seq;
				*disk_asked = now;
			}
			if (busy_ends && *disk_asked &&
			    vcl_disk_busy(c, st, addr, first_seq, want_seq))
				return -EBUSY;
		}
		sleep_ms(backoff + (unsigned)(random() % (backoff + 1)));
		if (backoff < 200)
			backoff *= 2;
	}
}

/* An operation's lock waits for dead holders, and for live ones while
 * another host is stopped, unless it only tries (live_ms 0). */
static unsigned op_waits(unsigned live_ms)
{
	return live_ms ? VCL_WAIT_DEAD | VCL_WAIT_STOPPED : 0;
}

static int vcl_acquire(struct vcl *c, uint64_t addr, enum vmfs_lock_mode mode,
		       unsigned live_ms, unsigned waits, struct lock_state *st)
{
	int64_t disk_asked = 0;
	int ret = vcl_acquire_asking(c, addr, mode, live_ms, waits, st,
				     &disk_asked);

	if (disk_asked)
		hb_want(c->o.hb, 0, false);
	return ret;
}

/* Upgrade our READONLY lock at addr to EXCLUSIVE, asking the other
 * readers over the fast path to let go, waiting up to live_ms. */
static int vcl_upgrade(struct vcl *c, uint64_t addr, unsigned live_ms,
		       struct lock_state *st)
{
	int64_t end = vmfs_mono_ms() + live_ms;

	for (;;) {
		int ret = lock_upgrade(c->lk, addr, 0, st);
		int64_t now = vmfs_mono_ms();
		unsigned left = now < end ? (unsigned)(end - now) : 0;
		bool busy = false;

		/* The change's answer was lost (a path going away): ask
		 * again, within the wait; one that landed finds the lock
		 * EXCLUSIVE ours and changes nothing. */
		if (ret == -ETIMEDOUT && left && !c->stopping)
			continue;
		if (ret != -EBUSY || !left)
			return ret;
		if (!vcl_ask(c, st, addr, VMFS_LOCK_EXCLUSIVE,
			     left < VCL_ASK_MS ? left : VCL_ASK_MS, &busy)) {
			/* The other readers on the disk, if it comes to that
			 * (§9a), and the lock manager's own wait. */
			if (!c->o.hb || busy)
				return lock_upgrade(c->lk, addr, left, st);
			vcl_contend_addr(c, addr, vmfs_mono_ms());
			vcl_disk_ask(c, addr, VMFS_LOCK_EXCLUSIVE);
			ret = lock_upgrade(c->lk, addr, left, st);
			hb_want(c->o.hb, 0, false);
			return ret;
		}
		ret = lock_upgrade(c->lk, addr, 0, st);
		if (ret != -EBUSY)
			return ret;
		sleep_ms(VCL_ASK_AGAIN_MS < left ? VCL_ASK_AGAIN_MS : left);
	}
}

/* ---- the running operation -------------------------------------------- */

int vcl_begin(struct vol *v, struct vcl_optab *op)
{
	struct vcl *c = v->cl;

	memset(op, 0, sizeof(*op));
	op->v = v;
	if (!c)
		return 0;
	/* An operation inside another one of this thread (a lookup that
	 * drops a reference, vol_forget) is part of it. */
	if (op_depth && op_vol == v) {
		op->nested = true;
		op_depth++;
		return 0;
	}
	op_vol = v;
	op_depth = 1;
	pthread_rwlock_rdlock(&c->mode_rw);
	if (c->shared) {
		pthread_mutex_lock(&c->op_mu);
		cur_op = op;
	}
	return 0;
}

/* Is the running operation shared-mode? */
static bool op_shared(const struct vol *v)
{
	return cur_op && cur_op->v == v;
}

static int vcl_hw_queue(struct vcl *c, uint64_t addr, bool asked);
static void vcl_kc_forget(struct vol *v, struct vheld *h);

/*
 * Record addr's new generation and drop it from the held table.  A lock
 * under which the kernel keeps something is let go only once the kernel
 * forgot it (vcl_kc_forget: the handover worker, or an operation giving
 * up an upgrade): anywhere else it stays held, and the worker is asked to
 * let go of it (-EAGAIN).
 *
 * A release whose write fails (an I/O error, a compare-and-write that
 * kept failing) leaves the lock held on disk, and h says so; nothing
 * else would try again while no operation of ours uses h, and another
 * host would wait for it for ever (or for the space of a file we had
 * open).  The watcher's next tick has the handover worker go through the
 * table (vcl_uncache_some), which lets go of it if nothing here uses it.
 */
static int vcl_release_addr(struct vcl *c, struct vheld *h)
{
	struct lock_state st;
	int ret;

	if (h->kheld) {
		/* The worker answers only a member that is waiting. */
		vcl_hw_queue(c, h->addr, h->asked);
		return -EAGAIN;
	}
	ret = lock_release(c->lk, h->addr, &st);
	atomic_fetch_add(&c->kc_epoch, 1);

	if (!ret || ret == -EPERM) {
		/* -EPERM: not ours any more (broken by a survivor). */
		h->mode = VMFS_LOCK_FREE;
		h->gen = ret ? 0 : st.gen;
		h->unreleased = false;
		return 0;
	}
	h->unreleased = true;
	c->release_failed = true;
	VLOG(LOG_WARNING, "releasing the lock at %llu: %s; trying again at the next tick",
	     (unsigned long long)h->addr, vmfs_strerror(ret));
	return ret;
}

static int open_lock_sync(struct vol *v, struct vheld *h, unsigned wait_ms,
			  struct lock_state *st);

/* Tell the members that asked for these locks that they are let go. */
static void vcl_net_released(struct vcl *c, const uint64_t *addr, uint32_t n)
{
	if (!n)
		return;
	pthread_rwlock_rdlock(&c->net_rw);
	for (uint32_t i = 0; i < n; i++) {
		NS_ADD(c, handed);
		if (c->net)
			c->net->released(c->net_arg, addr[i]);
	}
	pthread_rwlock_unlock(&c->net_rw);
}

/*
 * What an ending operation changed goes home before any of its locks is
 * let go.  Not caching: all of it now (jnl_drain).  Caching: its
 * transaction is only sealed, and each lock it kept remembers which one
 * (the handover drains that far first); only a lock let go right now
 * (asked for, or caching just ended) waits for it.  0 with held_mu held.
 */
static int vcl_end_home(struct vol *v, struct vcl_optab *op)
{
	struct vcl *c = v->cl;
	uint64_t seq = 0;
	bool cache, drained = false;
	int err;

	if (!v->j) {
		pthread_mutex_lock(&c->held_mu);
		return 0;
	}
	pthread_mutex_lock(&c->held_mu);
	cache = c->caching;
	pthread_mutex_unlock(&c->held_mu);
	err = cache ? jnl_seal(v->j, &seq) : jnl_drain(v->j);
	if (err)
		return err;
	drained = !cache;
	for (;;) {
		bool need = false;

		pthread_mutex_lock(&c->held_mu);
		for (uint32_t i = 0; i < op->n; i++) {
			struct vheld *h = held_find(c, op->addr[i], false);

			if (!h || h->mode == VMFS_LOCK_FREE)
				continue;
			if (drained) {
				if (h->dirty && h->seq <= seq)
					h->dirty = false;
				continue;
			}
			h->dirty = true;
			h->seq = seq;
			need |= !vcl_keeps(c, h);
		}
		if (!need)
			return 0;
		pthread_mutex_unlock(&c->held_mu);
		err = jnl_drain_to(v->j, seq);
		if (err)
			return err;
		drained = true;
	}
}

int vcl_end(struct vol *v, struct vcl_optab *op, int ret)
{
	struct vcl *c = v->cl;
	int err;

	/* Fenced: whatever the operation found in the cache is not to be
	 * trusted any more (vol_fenced). */
	if (vol_fenced(v))
		ret = -EIO;
	if (!c)
		return ret;
	if (op->nested) {
		op_depth--;
		return ret;
	}
	op_depth = 0;
	op_vol = NULL;
	if (op_shared(v)) {
		/* Lazy timestamps of what we hold go with this operation. */
		for (uint32_t i = 0; i < op->n; i++) {
			int64_t ino = vol_res_index(v, VMFS_RES_INODE,
						    op->addr[i]);
			struct vinode *vi;

			if (ino < 0 || vol_inode_cached(v, (uint64_t)ino, &vi))
				continue;
			{
				VOL_HANDLE(v);

				pthread_rwlock_wrlock(&vi->rw);
				vol_inode_flush_times(v, vi);
				pthread_rwlock_unlock(&vi->rw);
			}
			vol_inode_put(v, vi);
		}
		err = vcl_end_home(v, op);
		if (err) {
			/* Not home: keep the locks; fencing or a survivor's
			 * replay sorts it out. */
			VLOG(LOG_ERR, "writing an operation's metadata home: %s; its locks stay held",
			     vmfs_strerror(err));
			if (!ret)
				ret = err;
		} else {
			uint64_t asked[VCL_MAX_OP_LOCKS];
			uint32_t nasked = 0;
			int64_t now_ms = vmfs_mono_ms();

			/* held_mu is held (vcl_end_home). */
			for (uint32_t i = 0; i < op->n; i++) {
				struct vheld *h = held_find(c, op->addr[i], false);

				if (!h)
					continue;
				struct lock_state st;

				h->in_op = false;
				h->used_ms = now_ms;
				/* Released, or back to what the opens need,
				 * or kept as a cache. */
				if (h->mode != VMFS_LOCK_FREE)
					open_lock_sync(v, h, 0, &st);
				/* Kept because the kernel keeps something under
				 * it: the worker lets go of it and answers. */
				if (h->wanted &&
				    !(h->kheld && h->mode != VMFS_LOCK_FREE)) {
					h->wanted = false;
					if (h->asked)
						asked[nasked++] = h->addr;
					h->asked = false;
				}
			}
			pthread_mutex_unlock(&c->held_mu);
			vcl_net_released(c, asked, nasked);
		}
		cur_op = NULL;
		pthread_mutex_unlock(&c->op_mu);
	}
	pthread_rwlock_unlock(&c->mode_rw);
	return ret;
}

static bool mode_covers(enum vmfs_lock_mode held, enum vmfs_lock_mode want)
{
	if (held == VMFS_LOCK_EXCLUSIVE)
		return true;
	/* A multi-writer file's shared lock covers reading its metadata,
	 * never changing it (vcl_lock_addr refuses that). */
	if (held == VMFS_LOCK_MULTIWRITER)
		return want != VMFS_LOCK_EXCLUSIVE;
	return held == want;
}

/*
 * Lock the object at addr for the running operation (shared mode only;
 * a no-op otherwise).  *moved (may be NULL) says whether another host
 * changed the lock since we last held it: the caller rereads what it
 * caches under it.
 */
static int vcl_lock_addr(struct vol *v, uint64_t addr, enum vmfs_lock_mode mode,
			 unsigned live_ms, bool *moved, struct lock_state *out)
{
	struct vcl *c = v->cl;
	struct lock_state st;
	enum vmfs_lock_mode held;
	struct vheld *h;
	uint64_t before;
	bool in_place = false;
	int ret;

	if (moved)
		*moved = false;
	if (!op_shared(v)) {
		if (!vcl_shared(v))
			return 0;
		/* A change outside an operation while shared: a bug that
		 * must not write unlocked. */
		VLOG(LOG_ERR, "lock of %llu wanted outside an operation; refused",
		     (unsigned long long)addr);
		return -EDEADLK;
	}
	pthread_mutex_lock(&c->held_mu);
	h = held_find(c, addr, true);
	if (!h) {
		pthread_mutex_unlock(&c->held_mu);
		return -ENOMEM;
	}
	if (h->mode != VMFS_LOCK_FREE && mode_covers(h->mode, mode)) {
		/* Held already (open, or cached): the operation's from now
		 * on, so that nobody lets go of it under us. */
		if (!h->in_op && cur_op->n < VCL_MAX_OP_LOCKS) {
			h->in_op = true;
			cur_op->addr[cur_op->n++] = addr;
		}
		pthread_mutex_unlock(&c->held_mu);
		return 0;
	}
	/* Other hosts may be writing a multi-writer file we have open: its
	 * metadata stays as it is until every host closed it. */
	if (h->mode == VMFS_LOCK_MULTIWRITER) {
		pthread_mutex_unlock(&c->held_mu);
		return -EPERM;
	}
	/* The operation's from here on, before held_mu is let go: the
	 * handover worker must not release a cached READONLY lock that we
	 * are about to upgrade (it marks it wanted instead). */
	if (!h->in_op) {
		if (cur_op->n == VCL_MAX_OP_LOCKS) {
			pthread_mutex_unlock(&c->held_mu);
			return -ENOMEM;
		}
		h->in_op = true;
		cur_op->addr[cur_op->n++] = addr;
		/* A READONLY lock kept from an earlier operation, no file open
		 * on it: let go of it and take EXCLUSIVE afresh instead of
		 * upgrading, or two hosts upgrading the same cached lock wait
		 * for each other.  Nothing was written under it, and nothing
		 * was read under it in this operation.  One the kernel keeps
		 * names under is upgraded in place first: letting it go
		 * means the kernel forgets them, and the request being
		 * served may hold that directory in the kernel. */
		if (h->mode == VMFS_LOCK_READONLY && mode == VMFS_LOCK_EXCLUSIVE &&
		    !h->open_ro && !h->open_rw) {
			if (h->kheld)
				in_place = true;
			else
				vcl_release_addr(c, h);
		}
	}
	before = h->gen;
	held = h->mode;
	pthread_mutex_unlock(&c->held_mu);
	if (in_place) {
		unsigned try_ms = c->o.t.renew_ms / 2;

		ret = vcl_upgrade(c, addr, live_ms < try_ms ? live_ms : try_ms,
				  &st);
		if (ret == -EBUSY) {
			/*
			 * Another host upgrades it too, each waiting for the
			 * other to let go: ours goes, as above, once the
			 * kernel forgot what it keeps under it, or that has
			 * expired there (the adapter waits no longer).
			 */
			pthread_mutex_lock(&c->held_mu);
			vcl_kc_forget(v, h);
			if (h->mode == VMFS_LOCK_READONLY)
				vcl_release_addr(c, h);
			h->leaving = false;
			before = h->gen;
			held = h->mode;
			pthread_mutex_unlock(&c->held_mu);
			VLOG(LOG_INFO, "the lock at %llu, kept READONLY, could not be upgraded in %u ms: let go and taken afresh",
			     (unsigned long long)addr, try_ms);
			ret = held == VMFS_LOCK_FREE ?
			      vcl_acquire(c, addr, mode, live_ms, op_waits(live_ms),
					  &st) : -EBUSY;
		}
	} else if (held == VMFS_LOCK_READONLY && mode == VMFS_LOCK_EXCLUSIVE) {
		ret = vcl_upgrade(c, addr, live_ms, &st);
	} else {
		ret = vcl_acquire(c, addr, mode, live_ms, op_waits(live_ms), &st);
	}
	if (out)
		*out = st;
	if (ret)
		return ret;   /* vcl_end sees h as it is: FREE, or still ours */
	pthread_mutex_lock(&c->held_mu);
	h->mode = st.mode;
	/* Our acquire moved the generation by one. */
	if (moved)
		*moved = !before || st.gen != before + 1;
	h->gen = st.gen;
	pthread_mutex_unlock(&c->held_mu);
	return 0;
}

/* The per-operation wait for a live holder. */
static unsigned vcl_live_ms(const struct vol *v)
{
	return v->cl->o.t.lease_ms;
}

/* Another host changed inode ino: reread it if it is cached here. */
static int vcl_reload_ino(struct vol *v, uint64_t ino)
{
	struct vinode *vi;
	int ret;

	if (vol_inode_cached(v, ino, &vi))
		return 0;
	pthread_rwlock_wrlock(&vi->rw);
	ret = vol_inode_reload(v, vi);
	pthread_rwlock_unlock(&vi->rw);
	vol_inode_put(v, vi);
	return ret;
}

/* Lock inode ino, waiting live_ms for a live holder; quiet: a refusal
 * is the caller's to report. */
static int vcl_lock_ino_wait(struct vol *v, uint64_t ino,
			     enum vmfs_lock_mode mode, unsigned live_ms,
			     bool quiet)
{
	struct lock_state st;
	bool moved;
	int ret;

	if (!op_shared(v))
		return 0;
	if (ino == 0 || ino >= v->g.res[VMFS_RES_INODE].count)
		return -ESTALE;
	ret = vcl_lock_addr(v, res_addr(v, VMFS_RES_INODE, ino), mode,
			    live_ms, &moved, &st);
	if (ret == -EBUSY && !quiet) {
		char who[600], held[VCL_HELD_TEXT];

		vol_lock_owner_text(v, &st, who, sizeof(who));
		vcl_op_held_text(res_addr(v, VMFS_RES_INODE, ino), held,
				 sizeof(held));
		VLOG(LOG_WARNING, "inode %llu is locked by %s; the operation fails with EBUSY after waiting at least %u ms (it held:%s)",
		     (unsigned long long)ino, who, live_ms, held);
	}
	if (ret || !moved)
		return ret;
	return vcl_reload_ino(v, ino);
}

int vcl_lock_ino_fresh(struct vol *v, uint64_t ino)
{
	int ret;

	if (!op_shared(v))
		return 0;
	busy_ends = true;
	ret = vcl_lock_ino_wait(v, ino, VMFS_LOCK_READONLY, vcl_live_ms(v),
				true);
	busy_ends = false;
	return ret;
}

bool vcl_caching(struct vol *v)
{
	bool ret = false;

	if (v->cl) {
		pthread_mutex_lock(&v->cl->held_mu);
		ret = v->cl->shared && v->cl->caching;
		pthread_mutex_unlock(&v->cl->held_mu);
	}
	return ret;
}

int vcl_lock_ino(struct vol *v, uint64_t ino, enum vmfs_lock_mode mode)
{
	return op_shared(v) ? vcl_lock_ino_wait(v, ino, mode, vcl_live_ms(v),
						false)
			    : 0;
}

/*
 * A quarter of a renewal interval (500 ms by default): long enough for a
 * holder that only runs an operation, or whose close is on its way, to
 * let go, short of what a user waits on for an rm.
 */
int vcl_lock_ino_brief(struct vol *v, uint64_t ino, enum vmfs_lock_mode mode)
{
	if (!op_shared(v))
		return 0;
	return vcl_lock_ino_wait(v, ino, mode, v->cl->o.t.renew_ms / 4, true);
}

/* A new orphan or pending drop: sweep at the next tick, with a fresh
 * count of passes for orphans locked elsewhere. */
void vcl_sweep_want(struct vol *v)
{
	if (!v->cl)
		return;
	pthread_mutex_lock(&v->cl->held_mu);
	v->cl->sweep_wanted = true;
	v->cl->orphan_passes = 0;
	pthread_mutex_unlock(&v->cl->held_mu);
}

/*
 * The parent of directory ino.  While shared, from the disk: the caller
 * (a rename between directories) holds the root's lock, which every such
 * rename takes, so the parents on disk are current and stable, while this
 * host's cached copy of a directory it does not hold may be older.
 */
int vcl_parent_of(struct vol *v, uint64_t ino, uint64_t *parent)
{
	struct vinode *vi;
	int ret;

	if (op_shared(v))
		return vol_inode_peek_parent(v, ino, parent);
	ret = vol_inode_get(v, ino, &vi);
	if (ret)
		return ret;
	*parent = vi->parent;
	vol_inode_put(v, vi);
	return 0;
}

/* Lock two inodes in the global order (lower number first). */
int vcl_lock_ino2(struct vol *v, uint64_t a, uint64_t b,
		  enum vmfs_lock_mode mode)
{
	int ret;

	if (a > b) {
		uint64_t t = a;

		a = b;
		b = t;
	}
	ret = vcl_lock_ino(v, a, mode);
	if (!ret && b != a)
		ret = vcl_lock_ino(v, b, mode);
	return ret;
}

/* The inode name names in dir parent (locked by the operation); 0 with
 * *ino = 0 when there is none (the operation itself reports it). */
int vcl_find_child(struct vol *v, uint64_t parent, const char *name,
		   uint64_t *ino)
{
	struct vinode *dir;
	int ret;

	*ino = 0;
	if (!op_shared(v))
		return 0;
	ret = vol_inode_get(v, parent, &dir);
	if (ret)
		return ret;
	pthread_rwlock_wrlock(&dir->rw);
	ret = S_ISDIR(dir->mode) ? vol_dir_find(v, dir, name, ino, NULL, NULL)
				 : -ENOTDIR;
	pthread_rwlock_unlock(&dir->rw);
	vol_inode_put(v, dir);
	if (ret == -ENOENT || ret == -ENOTDIR || ret == -ENAMETOOLONG) {
		*ino = 0;
		return 0;
	}
	return ret;
}

/* Lock the inode that name in dir parent (already locked) names. */
int vcl_lock_child(struct vol *v, uint64_t parent, const char *name,
		   enum vmfs_lock_mode mode, uint64_t *ino)
{
	int ret = vcl_find_child(v, parent, name, ino);

	if (ret || !*ino)
		return ret;
	return vcl_lock_ino(v, *ino, mode);
}

/* Where area t comes in the order operations take resource clusters in
 * (docs/PROTOCOL.md §3): inodes, small blocks, file blocks, pointer
 * blocks. */
static int res_rank(enum vmfs_res_type t)
{
	static const int rank[VMFS_RES_NTYPES] = {
		[VMFS_RES_INODE] = 0, [VMFS_RES_SMALL] = 1,
		[VMFS_RES_FILE] = 2, [VMFS_RES_PTRBLK] = 3,
	};

	return rank[t];
}

/*
 * An operation about to wait for cluster cl of area t while it holds a
 * cluster that comes later in the order: two hosts doing that can wait
 * for each other until one gives up.  Said in the log (t_multihost_storm
 * fails on it), never refused.
 */
static void vcl_check_order(struct vol *v, enum vmfs_res_type t, uint32_t cl,
			    uint64_t addr)
{
	struct vcl *c = v->cl;
	int later = -1;
	uint64_t at = 0;

	pthread_mutex_lock(&c->held_mu);
	if (vcl_held_mode(c, addr) != VMFS_LOCK_FREE)
		goto out;  /* held already: no wait */
	for (uint32_t i = 0; cur_op && i < cur_op->n && later < 0; i++) {
		for (int k = 0; k < VMFS_RES_NTYPES; k++) {
			const struct vol_res_geom *r = &v->g.res[k];
			uint64_t a = cur_op->addr[i];

			if (res_rank(k) > res_rank(t) && a >= r->hdr_offset &&
			    a < r->hdr_offset + (uint64_t)r->nclusters * VMFS_MD_BLOCK_SIZE &&
			    vcl_held_mode(c, a) != VMFS_LOCK_FREE) {
				later = k;
				at = (a - r->hdr_offset) / VMFS_MD_BLOCK_SIZE;
				break;
			}
		}
	}
out:
	pthread_mutex_unlock(&c->held_mu);
	if (later >= 0)
		VLOG(LOG_WARNING, "out of lock order: an operation takes %s cluster %u holding %s cluster %llu (docs/PROTOCOL.md §3); please report it",
		     vol_res_name(t), cl, vol_res_name((enum vmfs_res_type)later),
		     (unsigned long long)at);
}

/*
 * Lock resource cluster cl of area t for the running operation.  A
 * cluster another host holds is skipped by allocation (try) and waited
 * for by frees.  On a moved generation the cached header is reread
 * (alloc.c).
 */
int vcl_lock_cluster(struct vol *v, enum vmfs_res_type t, uint32_t cl,
		     bool try, bool *moved)
{
	uint64_t addr = v->g.res[t].hdr_offset + (uint64_t)cl * VMFS_MD_BLOCK_SIZE;
	struct lock_state st;
	int ret;

	memset(&st, 0, sizeof(st));
	*moved = false;
	if (!op_shared(v))
		return 0;
	if (!try)
		vcl_check_order(v, t, cl, addr);
	ret = vcl_lock_addr(v, addr, VMFS_LOCK_EXCLUSIVE,
			    try ? 0 : vcl_live_ms(v), moved, &st);
	if (ret == -EBUSY && !try) {
		char who[600], held[VCL_HELD_TEXT];

		vol_lock_owner_text(v, &st, who, sizeof(who));
		if (!who[0])
			snprintf(who, sizeof(who), "other hosts");
		vcl_op_held_text(addr, held, sizeof(held));
		VLOG(LOG_NOTICE, "%s cluster %u is locked by %s; gave up after waiting at least %u ms (the operation held:%s)",
		     vol_res_name(t), cl, who, vcl_live_ms(v), held);
	}
	return ret;
}

/* May this thread free inode vi (nlink 0) now?  Alone: yes.  Shared:
 * only inside an operation that holds its lock; otherwise the orphan
 * sweep frees it once nobody has it open. */
bool vcl_may_free(struct vol *v, const struct vinode *vi)
{
	struct vheld *h;
	bool ok;

	if (!v->cl)
		return true;
	if (!v->cl->shared)
		return true;
	pthread_mutex_lock(&v->cl->held_mu);
	h = op_shared(v) ? held_find(v->cl, vi->addr, false) : NULL;
	ok = h && h->in_op && h->mode == VMFS_LOCK_EXCLUSIVE;
	/* Not now: the watcher's next tick sweeps it (vcl_tick). */
	if (!ok)
		v->cl->sweep_wanted = true;
	pthread_mutex_unlock(&v->cl->held_mu);
	return ok;
}

void vcl_adopt_ino(struct vol *v, uint64_t ino)
{
	struct vcl *c = v->cl;
	struct vheld *h;

	if (!op_shared(v) || ino >= v->g.res[VMFS_RES_INODE].count)
		return;
	pthread_mutex_lock(&c->held_mu);
	h = held_find(c, res_addr(v, VMFS_RES_INODE, ino), false);
	if (h && h->mode != VMFS_LOCK_FREE && !h->in_op &&
	    cur_op->n < VCL_MAX_OP_LOCKS) {
		h->in_op = true;
		cur_op->addr[cur_op->n++] = h->addr;
	}
	pthread_mutex_unlock(&c->held_mu);
}

/* Does this host hold ino's lock (open or operation)?  Then its cached
 * inode is current. */
bool vcl_holds_ino(struct vol *v, uint64_t ino)
{
	bool held;

	if (!v->cl || !v->cl->shared)
		return true;
	pthread_mutex_lock(&v->cl->held_mu);
	held = vcl_held_mode(v->cl, res_addr(v, VMFS_RES_INODE, ino)) !=
	       VMFS_LOCK_FREE;
	pthread_mutex_unlock(&v->cl->held_mu);
	return held;
}

/* ---- open locks ------------------------------------------------------- */

static enum vmfs_lock_mode open_mode(const struct vheld *h)
{
	if (h->multiwriter)
		return VMFS_LOCK_MULTIWRITER;
	return h->open_rw ? VMFS_LOCK_EXCLUSIVE : VMFS_LOCK_READONLY;
}

/* Bring the lock on disk to what the opens of h need (shared mode). */
static int open_lock_sync(struct vol *v, struct vheld *h, unsigned wait_ms,
			  struct lock_state *st)
{
	struct vcl *c = v->cl;
	enum vmfs_lock_mode want = open_mode(h);
	int ret = 0;

	/* Detached: the opens here do without the lock (vol_file_detach). */
	if (h->detached || (!h->open_ro && !h->open_rw)) {
		/* Kept as a cache unless a member asked for it. */
		if (h->mode != VMFS_LOCK_FREE && !h->in_op && !vcl_keeps(c, h))
			vcl_release_addr(c, h);
		return 0;
	}
	if (h->mode == want)
		return 0;
	/* A wait may ask another host over the fast path, whose request
	 * to us the handover worker serves under held_mu: never wait with
	 * it held (the callers that wait run inside an operation, which
	 * keeps h as it is meanwhile). */
	if (h->mode == VMFS_LOCK_READONLY && want == VMFS_LOCK_EXCLUSIVE) {
		if (wait_ms)
			pthread_mutex_unlock(&c->held_mu);
		ret = vcl_upgrade(c, h->addr, wait_ms, st);
		if (wait_ms)
			pthread_mutex_lock(&c->held_mu);
	} else if (h->mode == VMFS_LOCK_EXCLUSIVE && want == VMFS_LOCK_READONLY) {
		/* Kept as a cache: EXCLUSIVE covers the readers.  Used by
		 * the operation: its end, once the changes are home. */
		if (h->in_op || vcl_keeps(c, h))
			return 0;
		/* A lost answer is asked again once: a downgrade that
		 * landed finds the lock READONLY ours and changes nothing. */
		ret = lock_downgrade(c->lk, h->addr, st);
		if (ret == -ETIMEDOUT)
			ret = lock_downgrade(c->lk, h->addr, st);
	} else if (h->mode == VMFS_LOCK_FREE) {
		if (wait_ms)
			pthread_mutex_unlock(&c->held_mu);
		ret = vcl_acquire(c, h->addr, want, wait_ms, VCL_WAIT_DEAD, st);
		if (wait_ms)
			pthread_mutex_lock(&c->held_mu);
	} else {
		ret = 0;   /* MULTIWRITER covers both */
	}
	if (!ret) {
		h->mode = st->mode;
		h->gen = st->gen;
	}
	return ret;
}

int vol_open_file(struct vol *v, uint64_t ino, bool write)
{
	return vol_open_file_who(v, ino, write, NULL, 0);
}

/*
 * Bring h's lock to what the opens here need, as part of operation op
 * (held_mu held, let go meanwhile and held again on return).  -EBUSY
 * names the holder in holder and the log ("open ... for what");
 * *moved: another host had it since we last did (reread the inode).
 */
static int open_lock_take(struct vol *v, struct vcl_optab *op,
			  struct vheld *h, uint64_t ino, const char *what,
			  char *holder, size_t holder_len, bool *moved)
{
	struct vcl *c = v->cl;
	enum vmfs_lock_mode was = h->mode;
	uint64_t before = h->gen;
	struct lock_state st;
	int ret;

	*moved = false;
	/* The operation's while it waits (held_mu is let go meanwhile): the
	 * handover worker leaves it to the operation's end. */
	if (op_shared(v) && !h->in_op && op->n < VCL_MAX_OP_LOCKS) {
		h->in_op = true;
		op->addr[op->n++] = h->addr;
	}
	if (!c->shared)
		return 0;
	ret = open_lock_sync(v, h, 2000, &st);
	if (ret == -EBUSY) {
		char who[600];

		vol_lock_owner_text(v, &st, who, sizeof(who));
		if (holder)
			snprintf(holder, holder_len, "%s", who);
		VLOG(LOG_WARNING, "open of inode %llu for %s refused: it is locked %s by %s",
		     (unsigned long long)ino, what,
		     st.mode == VMFS_LOCK_EXCLUSIVE ? "exclusive" :
		     st.mode == VMFS_LOCK_READONLY ? "read-only" :
		     "multi-writer", who);
	}
	if (!ret)
		*moved = was == VMFS_LOCK_FREE &&
			 (!before || h->gen != before + 1);
	return ret;
}

int vol_open_file_who(struct vol *v, uint64_t ino, bool write, char *holder,
		      size_t holder_len)
{
	struct vcl *c = v->cl;
	struct vcl_optab op;
	struct vinode *vi;
	struct vheld *h;
	bool mw, moved;
	int ret;

	if (!c)
		return 0;
	vcl_begin(v, &op);
	/* The flag as on disk now: another host may have set it. */
	if (c->shared && !vcl_holds_ino(v, ino)) {
		struct vol_attr a;

		ret = vol_inode_peek(v, ino, &a);
		mw = a.flags & VMFS_DI_MULTIWRITER;
	} else {
		ret = vol_inode_get(v, ino, &vi);
		if (!ret) {
			mw = vi->flags & VMFS_DI_MULTIWRITER;
			vol_inode_put(v, vi);
		}
	}
	if (ret)
		return vcl_end(v, &op, ret);
	pthread_mutex_lock(&c->held_mu);
	h = held_find(c, res_addr(v, VMFS_RES_INODE, ino), true);
	if (!h) {
		pthread_mutex_unlock(&c->held_mu);
		return vcl_end(v, &op, -ENOMEM);
	}
	if (write)
		h->open_rw++;
	else
		h->open_ro++;
	h->multiwriter = mw;
	ret = open_lock_take(v, &op, h, ino, write ? "writing" : "reading",
			     holder, holder_len, &moved);
	if (ret) {
		if (write)
			h->open_rw--;
		else
			h->open_ro--;
		pthread_mutex_unlock(&c->held_mu);
		return vcl_end(v, &op, ret);
	}
	/* A detached file's data is never cached here: it is not ours. */
	if (mw || h->detached)
		ret = VOL_OPEN_DIRECT;
	pthread_mutex_unlock(&c->held_mu);
	if (moved) {
		int err = vcl_reload_ino(v, ino);

		if (err)
			ret = err;
	}
	return vcl_end(v, &op, ret);
}

/* Is ino detached here (vol_file_detach)?  One atomic load when no
 * file is. */
static bool vcl_detached_ino(struct vol *v, uint64_t ino)
{
	struct vcl *c = v->cl;
	struct vheld *h;
	bool ret;

	if (!c || !atomic_load(&c->ndetached))
		return false;
	pthread_mutex_lock(&c->held_mu);
	h = held_find(c, res_addr(v, VMFS_RES_INODE, ino), false);
	ret = h && h->detached;
	pthread_mutex_unlock(&c->held_mu);
	return ret;
}

int vcl_may_write(struct vol *v, uint64_t ino)
{
	if (!vcl_detached_ino(v, ino))
		return 0;
	VLOG(LOG_WARNING, "a write to inode %llu refused: its lock is not on this host (the file is detached for a VM migration; docs/PROTOCOL.md §13)",
	     (unsigned long long)ino);
	return -EIO;
}

/*
 * What the file changed (its timestamps) goes home before anyone else may
 * take its lock; true when caching (the operation's end seals it under
 * the lock, which stays: vcl_end_home), else it is home on return.  A
 * multi-writer file's holders never write its inode: their timestamps
 * are dropped rather than written over each other; nor does a detached
 * file's host, which holds no lock on it.
 */
static bool vcl_times_home(struct vol *v, uint64_t ino)
{
	struct vcl *c = v->cl;
	struct vinode *vi;
	bool cache, detached = vcl_detached_ino(v, ino);

	if (vol_inode_cached(v, ino, &vi))
		return false;
	{
		VOL_HANDLE(v);

		pthread_rwlock_wrlock(&vi->rw);
		if ((vi->flags & VMFS_DI_MULTIWRITER) || detached)
			vi->times_dirty = false;
		vol_inode_flush_times(v, vi);
		pthread_rwlock_unlock(&vi->rw);
	}
	vol_inode_put(v, vi);
	pthread_mutex_lock(&c->held_mu);
	cache = c->caching;
	pthread_mutex_unlock(&c->held_mu);
	if (v->j && !cache)
		jnl_drain(v->j);
	return cache;
}

void vol_release_file(struct vol *v, uint64_t ino, bool write)
{
	struct vcl *c = v->cl;
	struct vcl_optab op;
	struct lock_state st;
	struct vheld *h;
	bool last = false, cache = false;

	if (!c)
		return;
	vcl_begin(v, &op);
	if (c->shared)
		cache = vcl_times_home(v, ino);
	if (cache)
		vcl_adopt_ino(v, ino);
	pthread_mutex_lock(&c->held_mu);
	h = held_find(c, res_addr(v, VMFS_RES_INODE, ino), false);
	if (h) {
		if (write && h->open_rw)
			h->open_rw--;
		else if (!write && h->open_ro)
			h->open_ro--;
		h->used_ms = vmfs_mono_ms();
		if (h->detached && h->detach_ending && !h->open_ro &&
		    !h->open_rw) {
			h->detached = h->detach_ending = false;
			atomic_fetch_sub(&c->ndetached, 1);
		}
		if (c->shared)
			open_lock_sync(v, h, 2000, &st);
		last = !h->open_ro && !h->open_rw;
	}
	pthread_mutex_unlock(&c->held_mu);
	/* Our last close may be what a pending link drop of another host
	 * waits for (rc_unlinked): one header read tells (alone, the cached
	 * header is the truth), and the watcher's next sweep applies it and
	 * frees the file. */
	if (last && vol_res_unlinked_pending(v, ino, c->shared))
		vcl_sweep_want(v);
	vcl_end(v, &op, 0);
}

/* ---- detached files: a VM's lock handover (PROTOCOL.md §13) ----------- */

#define VCL_DETACH_WAIT_MS 10000

int vol_file_detach(struct vol *v, uint64_t ino)
{
	struct vcl *c = v->cl;
	struct vcl_optab op;
	uint64_t addr;
	struct vheld *h;
	int64_t until;
	bool held;

	if (!c)
		return -EOPNOTSUPP;
	if (ino == 0 || ino >= v->g.res[VMFS_RES_INODE].count)
		return -ESTALE;
	addr = res_addr(v, VMFS_RES_INODE, ino);
	/* Its timestamps home while the lock is still ours. */
	vcl_begin(v, &op);
	if (c->shared && vcl_times_home(v, ino))
		vcl_adopt_ino(v, ino);
	vcl_end(v, &op, 0);
	pthread_mutex_lock(&c->held_mu);
	h = held_find(c, addr, true);
	if (!h) {
		pthread_mutex_unlock(&c->held_mu);
		return -ENOMEM;
	}
	if (!h->detached)
		atomic_fetch_add(&c->ndetached, 1);
	h->detached = true;
	h->detach_ending = false;
	held = h->mode != VMFS_LOCK_FREE;
	pthread_mutex_unlock(&c->held_mu);
	if (!held)
		return 0;
	/* The handover worker lets it go: it writes home what the lock
	 * covers and makes the kernel forget it first, as for a member's
	 * request. */
	if (vcl_hw_queue(c, addr, false) == -ENOMEM)
		return -ENOMEM;
	until = vmfs_mono_ms() + VCL_DETACH_WAIT_MS;
	for (;;) {
		pthread_mutex_lock(&c->held_mu);
		held = h->mode != VMFS_LOCK_FREE;
		pthread_mutex_unlock(&c->held_mu);
		if (!held)
			return 0;
		if (vol_fenced(v))
			return -EIO;
		if (vmfs_mono_ms() > until) {
			VLOG(LOG_WARNING, "detaching inode %llu: its lock is still held here after %d ms",
			     (unsigned long long)ino, VCL_DETACH_WAIT_MS);
			return -ETIMEDOUT;
		}
		sleep_ms(1);
	}
}

int vol_file_attach(struct vol *v, uint64_t ino, char *holder,
		    size_t holder_len)
{
	struct vcl *c = v->cl;
	struct vcl_optab op;
	struct vheld *h;
	bool moved = false;
	int ret = 0;

	if (!c)
		return -EOPNOTSUPP;
	vcl_begin(v, &op);
	pthread_mutex_lock(&c->held_mu);
	h = held_find(c, res_addr(v, VMFS_RES_INODE, ino), false);
	if (h && h->detached) {
		h->detached = h->detach_ending = false;
		atomic_fetch_sub(&c->ndetached, 1);
		if (h->open_ro || h->open_rw)
			ret = open_lock_take(v, &op, h, ino, h->open_rw ?
					     "writing" : "reading", holder,
					     holder_len, &moved);
		if (ret) {
			h->detached = true;
			atomic_fetch_add(&c->ndetached, 1);
		}
	}
	pthread_mutex_unlock(&c->held_mu);
	if (moved && !ret)
		ret = vcl_reload_ino(v, ino);
	return vcl_end(v, &op, ret);
}

void vol_file_detach_end(struct vol *v, uint64_t ino)
{
	struct vcl *c = v->cl;
	struct vheld *h;

	if (!c)
		return;
	pthread_mutex_lock(&c->held_mu);
	h = held_find(c, res_addr(v, VMFS_RES_INODE, ino), false);
	if (h && h->detached) {
		if (h->open_ro || h->open_rw) {
			h->detach_ending = true;
		} else {
			h->detached = h->detach_ending = false;
			atomic_fetch_sub(&c->ndetached, 1);
		}
	}
	pthread_mutex_unlock(&c->held_mu);
}

/* ---- recovery of dead hosts ------------------------------------------- */

/*
 * Recover slot si (seen dead): claim it, replay its journal, free it.
 * 0 when done by us, -VMFS_E_MISCOMPARE when another host won.
 */
int vol_recover_slot(struct lun *lun, struct lun *hb_lun,
		     const struct vol_geom *g, unsigned prim,
		     const struct hb_timeouts *t, const struct hb_slot_info *si)
{
	struct jnl_bounds b = vol_jnl_bounds(g);
	struct jnl_walk_result r;
	struct hb_recovery *rec;
	int64_t t0 = vmfs_mono_ms();
	uint64_t joff;
	char u[37];
	int ret;

	vol_uuid_format(si->host_uuid, u);
	ret = hb_recover_claim(hb_lun, prim, g->hb_offset, si, t->io_timeout_ms,
			       &rec);
	if (ret)
		return ret;
	/*
	 * Storage fencing first (docs/PROTOCOL.md "Storage fencing"): from
	 * here on the target refuses every write of the dead host, whatever
	 * it still has in flight or wakes up to send.
	 */
	ret = lun_pr_preempt(hb_lun, lun_pr_key(si->host_uuid, si->hb_gen));
	if (ret && ret != -EOPNOTSUPP)
		VLOG(LOG_WARNING, "recovering host %s (%s, slot %u): cannot preempt its persistent-reservation key: %s; relying on its self-fencing",
		     si->hostname[0] ? si->hostname : "?", u, si->slot,
		     vmfs_strerror(ret));
	else if (!ret)
		VLOG(LOG_NOTICE, "recovering host %s (%s, slot %u, generation %llu): its persistent-reservation key 0x%016llx is preempted: the target refuses its writes",
		     si->hostname[0] ? si->hostname : "?", u, si->slot,
		     (unsigned long long)si->hb_gen,
		     (unsigned long long)lun_pr_key(si->host_uuid, si->hb_gen));
	joff = hb_recover_journal(rec);
	if (joff != vol_jnl_offset(g, si->slot)) {
		VLOG(LOG_WARNING, "slot %u names journal %llu, the geometry %llu; replaying the geometry's",
		     si->slot, (unsigned long long)joff,
		     (unsigned long long)vol_jnl_offset(g, si->slot));
		joff = vol_jnl_offset(g, si->slot);
	}
	ret = jnl_replay(lun, joff, &b, &r);
	if (!ret)
		ret = hb_recover_renew(rec);
	if (ret) {
		VLOG(LOG_ERR, "recovering host %s (%s, slot %u): replaying its journal: %s; the slot stays being-replayed for another host to retry",
		     si->hostname[0] ? si->hostname : "?", u, si->slot,
		     vmfs_strerror(ret));
		hb_recover_done(rec, false);
		return ret;
	}
	ret = hb_recover_done(rec, true);
	VLOG(LOG_NOTICE, "recovered host %s (%s, slot %u, generation %llu): replayed %llu transactions (%llu blocks) of its journal and freed its slot in %lld ms; its locks are breakable now",
	     si->hostname[0] ? si->hostname : "?", u, si->slot,
	     (unsigned long long)si->hb_gen, (unsigned long long)r.ntxn,
	     (unsigned long long)r.nimages, (long long)(vmfs_mono_ms() - t0));
	return ret;
}

/* vslot_seen.preempt, for the slot's current stillness: no PREEMPT
 * failed yet; one failed and was logged (tried again at every read);
 * refused for good (no fencing target here: wait for D). */
enum { PREEMPT_TRY, PREEMPT_FAILED, PREEMPT_REFUSED };

/*
 * A host whose slot stood still for its fence time F plus half a renewal
 * has stopped writing by its own rule (its write gate closed at its last
 * renewal's issue time plus F, before we saw that renewal land); what it
 * may still have in flight is what the dead time D = L + r waits out.
 * Where the target fences (persistent reservations), a PREEMPT of its key
 * refuses all of that at once, so the host may be recovered now instead
 * of at D (PROTOCOL.md section 10).  True when its key is preempted.
 * A PREEMPT that failed on the way (no answer in time, a lost session,
 * another survivor's reservation being made at that moment) is tried
 * again at the next read of the slots, so that one lost command does not
 * push the recovery out to D.
 */
static bool vcl_fenced_early(struct vol *v, const struct hb_slot_info *si,
			     const struct hb_timeouts *t, int64_t still_ms,
			     unsigned *state)
{
	struct vcl *c = v->cl;
	int ret;

	if (*state == PREEMPT_REFUSED || si->state != VMFS_HB_ACTIVE ||
	    still_ms < (int64_t)(t->fence_ms + t->renew_ms / 2))
		return false;
	ret = lun_pr_preempt(c->o.hb_lun, lun_pr_key(si->host_uuid, si->hb_gen));
	if (ret == -EOPNOTSUPP || ret == -EINVAL || ret == -VMFS_E_FENCED) {
		/* No fencing target here, or this host is fenced itself:
		 * wait for D, without asking again while it stands still. */
		*state = PREEMPT_REFUSED;
		return false;
	}
	if (ret) {
		if (*state == PREEMPT_TRY)
			VLOG(LOG_WARNING, "host %s (slot %u) stood still for %lld ms: the PREEMPT of its persistent-reservation key failed (%s); trying again at each read of the slots, and recovering it after %u ms at the latest",
			     si->hostname[0] ? si->hostname : "?", si->slot,
			     (long long)still_ms, vmfs_strerror(ret),
			     t->dead_ms);
		*state = PREEMPT_FAILED;
		return false;
	}
	VLOG(LOG_NOTICE, "host %s (slot %u) stood still for %lld ms of its %u ms lease: its persistent-reservation key is preempted, so it is recovered now rather than after %u ms",
	     si->hostname[0] ? si->hostname : "?", si->slot,
	     (long long)still_ms, t->lease_ms, t->dead_ms);
	return true;
}

static void vcl_disk_want(struct vol *v, const struct hb_slot_info *si);

/* Watch the other slots; recover those that stood still for their lease. */
static void vcl_watch_slots(struct vol *v, bool *others)
{
	struct vcl *c = v->cl;
	int64_t now = vmfs_mono_ms();
	uint32_t n = 0, nw = 0;

	/* A read that failed says nothing about the others: the mode stays
	 * (going alone on it would wait for every operation, each of them
	 * waiting on the same LUN). */
	*others = c->shared;
	if (hb_survey(c->o.hb_lun, c->o.hb_offset, false, c->si, c->nslots, &n))
		return;
	*others = false;
	pthread_mutex_lock(&c->thr_mu);
	if (c->last_si) {
		memcpy(c->last_si, c->si, n * sizeof(*c->si));
		c->last_n = n;
		c->last_ms = now;
	}
	for (uint32_t i = 0; i < c->nslots; i++)
		c->seen[i].present = false;
	for (uint32_t i = 0; i < n; i++) {
		struct hb_slot_info *si = &c->si[i];
		struct vslot_seen *s;
		struct hb_timeouts t;

		if (si->slot == c->o.my_slot || si->slot >= c->nslots)
			continue;
		*others = true;
		s = &c->seen[si->slot];
		s->present = true;
		s->asks = si->flags & VMFS_HB_F_ASKS;
		/* A new want on the disk (§9a): looked at below. */
		if (c->o.hb && si->state == VMFS_HB_ACTIVE && si->want_addr &&
		    (!s->want_valid || s->want_gen != si->hb_gen ||
		     s->want_seq != si->want_seq))
			c->wq[nw++] = i;
		s->want_valid = si->state == VMFS_HB_ACTIVE;
		s->want_gen = si->hb_gen;
		s->want_seq = si->want_seq;
		if (!s->valid || s->state != si->state ||
		    s->hb_gen != si->hb_gen || s->counter != si->counter ||
		    memcmp(s->uuid, si->host_uuid, VMFS_UUID_SIZE)) {
			/* Still renewing after it left the group (twice: the
			 * first may have been written before it died): not
			 * dead, whatever the group says; no close watch. */
			if (s->valid && s->suspect && ++s->moves_since_left >= 2) {
				VLOG(LOG_NOTICE, "host %s (slot %u) left our cluster group but still heartbeats on the volume: its locks stay its own (a network partition, or corosync stopped there)",
				     si->hostname[0] ? si->hostname : "?", si->slot);
				s->suspect = false;
			}
			s->valid = true;
			s->state = si->state;
			memcpy(s->uuid, si->host_uuid, VMFS_UUID_SIZE);
			s->hb_gen = si->hb_gen;
			s->counter = si->counter;
			s->since_ms = now;
			s->preempt = PREEMPT_TRY;
			continue;
		}
		hb_timeouts_from_lease(si->lease_ms, &t);
		if (now - s->since_ms < (int64_t)t.dead_ms) {
			unsigned state = s->preempt;
			bool early;

			pthread_mutex_unlock(&c->thr_mu);
			early = vcl_fenced_early(v, si, &t, now - s->since_ms,
						 &state);
			pthread_mutex_lock(&c->thr_mu);
			s->preempt = state;
			if (!early)
				continue;
		}
		pthread_mutex_unlock(&c->thr_mu);
		if (!vol_recover_slot(v->lun, c->o.hb_lun, &v->g, c->o.prim,
				      &c->o.t, si))
			atomic_fetch_add(&c->recovered, 1);
		pthread_mutex_lock(&c->thr_mu);
		/* The read no longer says what the slot is (freed, or
		 * taken by another survivor): vol_cluster_slots's callers
		 * read for themselves until the next one. */
		c->last_ms = 0;
		s->valid = false;
		s->suspect = false;
	}
	c->any_suspect = false;
	for (uint32_t i = 0; i < c->nslots; i++) {
		if (!c->seen[i].present)
			c->seen[i].suspect = false;
		c->any_suspect |= c->seen[i].suspect;
	}
	pthread_mutex_unlock(&c->thr_mu);
	for (uint32_t k = 0; k < nw; k++)
		vcl_disk_want(v, &c->si[c->wq[k]]);
}

/* ---- mode switches ---------------------------------------------------- */

/* Does any other slot show a host (ACTIVE or being replayed) right now?
 * One read of the slots; on a read error, assume so (stay shared). */
static bool vcl_others_now(struct vcl *c)
{
	uint32_t n = 0;

	if (hb_survey(c->o.hb_lun, c->o.hb_offset, false, c->si, c->nslots, &n))
		return true;
	for (uint32_t i = 0; i < n; i++)
		if (c->si[i].slot != c->o.my_slot)
			return true;
	return false;
}

/*
 * Take the volume lock EXCLUSIVE to work alone, then look at the slots
 * once more: a host whose slot was ACTIVE before our compare-and-write
 * may have read the lock free and started sharing, so another slot now
 * means give it back.  (A host that joins later reads the lock after
 * claiming its slot and waits for us, docs/PROTOCOL.md §2.)
 * 0: alone; -EBUSY: not.
 */
static int vcl_try_alone(struct vcl *c)
{
	struct lock_state st;
	int ret = vcl_acquire(c, vcl_region_addr(c), VMFS_LOCK_EXCLUSIVE, 0,
			      0, &st);

	if (ret)
		return ret;
	if (!vcl_others_now(c))
		return 0;
	lock_release(c->lk, vcl_region_addr(c), &st);
	return -EBUSY;
}

/*
 * Online grow (vol/grow.c).  Alone, this host holds the volume lock
 * EXCLUSIVE already; shared, it takes it for the change, as a newcomer
 * going alone would: hosts that share never take it, a host that mounts
 * meanwhile waits for it, and a second grower waits (PROTOCOL.md §2).
 * mode_rw first, so that the watcher cannot switch modes meanwhile (going
 * alone would find the lock ours); this host's operations wait, so the
 * wait for a holder is a lease at most, never a dead host's recovery
 * (the watcher recovers it meanwhile; the grow is retried).
 */
int vcl_geom_begin(struct vol *v)
{
	struct vcl *c = v->cl;
	struct lock_state st;
	int ret;

	if (!c)
		return 0;
	pthread_rwlock_wrlock(&c->mode_rw);
	if (!c->shared)
		return 0;
	ret = vcl_acquire(c, vcl_region_addr(c), VMFS_LOCK_EXCLUSIVE,
			  c->o.t.lease_ms, 0, &st);
	if (ret)
		pthread_rwlock_unlock(&c->mode_rw);
	return ret;
}

void vcl_geom_end(struct vol *v)
{
	struct vcl *c = v->cl;
	struct lock_state st;

	if (!c)
		return;
	if (c->shared && lock_release(c->lk, vcl_region_addr(c), &st))
		VLOG(LOG_ERR, "releasing the volume lock after a grow failed; hosts that mount wait until this host unmounts");
	pthread_rwlock_unlock(&c->mode_rw);
}

/* Every lock of every held entry as the opens need it (going shared). */
static int vcl_open_locks_take(struct vol *v)
{
	struct vcl *c = v->cl;
	int ret = 0;

	pthread_mutex_lock(&c->held_mu);
	for (uint32_t b = 0; b < VHELD_BUCKETS && !ret; b++)
		for (struct vheld *h = c->held[b]; h && !ret; h = h->next) {
			struct lock_state st;

			h->gen = 0;
			if (h->open_ro || h->open_rw)
				ret = open_lock_sync(v, h, c->o.t.lease_ms, &st);
		}
	pthread_mutex_unlock(&c->held_mu);
	return ret;
}

/* Forget every remembered generation: everything cached is suspect. */
static void vcl_forget_gens(struct vcl *c)
{
	pthread_mutex_lock(&c->held_mu);
	for (uint32_t b = 0; b < VHELD_BUCKETS; b++)
		for (struct vheld *h = c->held[b]; h; h = h->next)
			if (h->mode == VMFS_LOCK_FREE)
				h->gen = 0;
	pthread_mutex_unlock(&c->held_mu);
}

/* ---- the kernel's caches ---------------------------------------------- */

/* Every held entry forgets that the kernel keeps something (held_mu). */
static void vcl_kc_clear(struct vcl *c)
{
	for (uint32_t b = 0; b < VHELD_BUCKETS; b++)
		for (struct vheld *h = c->held[b]; h; h = h->next)
			h->kheld = false;
}

void vol_kcache_set(struct vol *v, const struct vol_kcache_ops *ops,
		    void *arg)
{
	struct vcl *c = v->cl;

	if (!c)
		return;
	pthread_rwlock_wrlock(&c->kc_rw);
	c->kc = ops;
	c->kc_arg = arg;
	pthread_rwlock_unlock(&c->kc_rw);
	if (!ops) {
		/* No kernel any more: nothing to forget before a release. */
		pthread_mutex_lock(&c->held_mu);
		vcl_kc_clear(c);
		pthread_mutex_unlock(&c->held_mu);
	}
}

uint64_t vol_kcache_epoch(struct vol *v)
{
	return v->cl ? atomic_load(&v->cl->kc_epoch) : 0;
}

/*
 * Alone, anything: nothing on the volume changes but through us.
 * Shared, what a lock we keep as a cache covers (EXCLUSIVE or READONLY:
 * no host changes what either covers before it has the lock, and so
 * before it asked us), while every other host can ask us for it, no
 * host asked for it, and no lock was let go since the reply's operation
 * began (its answer could predate a change made while we did not hold
 * it).  Read-only hosts (no cluster state here) share the volume with
 * other read-only hosts only, but their fencing has no watcher to tell
 * the kernel: they do without.
 */
bool vol_kcache_hold(struct vol *v, uint64_t ino, uint64_t epoch)
{
	struct vcl *c = v->cl;
	struct vheld *h;
	bool ok;

	if (!c || vol_fenced(v))
		return false;
	if (atomic_load(&c->kc_ok))
		return true;
	if (ino >= v->g.res[VMFS_RES_INODE].count)
		return false;
	pthread_mutex_lock(&c->held_mu);
	h = held_find(c, res_addr(v, VMFS_RES_INODE, ino), false);
	ok = c->shared && c->caching && h && vcl_keeps(c, h) &&
	     (h->mode == VMFS_LOCK_EXCLUSIVE ||
	      h->mode == VMFS_LOCK_READONLY) &&
	     !h->leaving && atomic_load(&c->kc_epoch) == epoch;
	if (ok)
		h->kheld = true;
	pthread_mutex_unlock(&c->held_mu);
	return ok;
}

bool vol_kcache_alone(struct vol *v)
{
	return v->cl && !vol_fenced(v) && atomic_load(&v->cl->kc_ok);
}

bool vol_kcache_covered(struct vol *v, uint64_t ino)
{
	struct vcl *c = v->cl;
	struct vheld *h;
	bool ret;

	if (!c)
		return false;
	if (atomic_load(&c->kc_ok))
		return true;
	if (ino >= v->g.res[VMFS_RES_INODE].count)
		return false;
	pthread_mutex_lock(&c->held_mu);
	h = held_find(c, res_addr(v, VMFS_RES_INODE, ino), false);
	ret = h && (h->kheld || h->leaving);
	pthread_mutex_unlock(&c->held_mu);
	return ret;
}

/* The kernel forgets everything (all: even if no lock says it keeps
 * something; watcher thread, no operation running here). */
static void vcl_kc_drop(struct vcl *c, bool all)
{
	bool any = false;

	pthread_mutex_lock(&c->held_mu);
	for (uint32_t b = 0; b < VHELD_BUCKETS && !any; b++)
		for (struct vheld *h = c->held[b]; h && !any; h = h->next)
			any = h->kheld;
	pthread_mutex_unlock(&c->held_mu);
	atomic_fetch_add(&c->kc_epoch, 1);
	if (!all && !any)
		return;
	pthread_rwlock_rdlock(&c->kc_rw);
	if (c->kc)
		c->kc->drop_all(c->kc_arg);
	pthread_rwlock_unlock(&c->kc_rw);
	pthread_mutex_lock(&c->held_mu);
	vcl_kc_clear(c);
	pthread_mutex_unlock(&c->held_mu);
}

/* The kernel forgets everything and may keep nothing from now on, until
 * the host is alone again. */
static void vcl_kcache_off(struct vcl *c)
{
	vcl_kc_drop(c, atomic_exchange(&c->kc_ok, false));
}

/*
 * Before h may be let go: the kernel forgets what it keeps under it
 * (held_mu held, dropped meanwhile; the handover worker, or an operation
 * that uses h and lets go of it).  No grant
 * under h from now on (leaving) until the caller clears it.
 */
static void vcl_kc_forget(struct vol *v, struct vheld *h)
{
	struct vcl *c = v->cl;
	int64_t ino;

	h->leaving = true;
	if (!h->kheld)
		return;
	h->kheld = false;
	ino = vol_res_index(v, VMFS_RES_INODE, h->addr);
	pthread_mutex_unlock(&c->held_mu);
	pthread_rwlock_rdlock(&c->kc_rw);
	if (c->kc && ino >= 0)
		c->kc->drop_ino(c->kc_arg, (uint64_t)ino);
	pthread_rwlock_unlock(&c->kc_rw);
	pthread_mutex_lock(&c->held_mu);
}

void vcl_kc_carry(struct vol *v, uint64_t from, uint64_t to, bool exchange)
{
	struct vcl *c = v->cl;
	struct vheld *hf, *ht;

	if (!op_shared(v))
		return;
	pthread_mutex_lock(&c->held_mu);
	hf = held_find(c, res_addr(v, VMFS_RES_INODE, from), false);
	ht = held_find(c, res_addr(v, VMFS_RES_INODE, to), false);
	/* leaving: its drop may run before the kernel moved the entry */
	if (hf && ht) {
		if (hf->kheld || hf->leaving)
			ht->kheld = true;
		if (exchange && (ht->kheld || ht->leaving))
			hf->kheld = true;
	}
	pthread_mutex_unlock(&c->held_mu);
}

static void vcl_kcache_drop_attr(struct vcl *c, uint64_t ino)
{
	if (!c)
		return;
	pthread_rwlock_rdlock(&c->kc_rw);
	if (c->kc)
		c->kc->drop_attr(c->kc_arg, ino);
	pthread_rwlock_unlock(&c->kc_rw);
}

static int vcl_go_shared(struct vol *v)
{
	struct vcl *c = v->cl;
	struct lock_state st;
	int ret;

	/* First the kernel: the newcomer may change anything once we let
	 * go of the volume lock.  Not under mode_rw: the kernel may wait
	 * for a request of ours to end before it forgets an entry. */
	vcl_kcache_off(c);
	pthread_rwlock_wrlock(&c->mode_rw);
	vol_icache_flush_times(v);
	ret = v->j ? jnl_drain(v->j) : 0;
	if (!ret)
		ret = vcl_open_locks_take(v);
	if (!ret)
		ret = lock_release(c->lk, vcl_region_addr(c), &st);
	if (!ret) {
		c->shared = true;
		vcl_forget_gens(c);
		vol_inode_ira_drop_all(v);
		VLOG(LOG_NOTICE, "another host mounted the volume: sharing it, every operation now takes its on-disk locks");
	} else {
		VLOG(LOG_ERR, "switching to shared mode: %s", vmfs_strerror(ret));
	}
	pthread_rwlock_unlock(&c->mode_rw);
	return ret;
}

static void vcl_go_alone(struct vol *v)
{
	struct vcl *c = v->cl;
	int ret;

	pthread_rwlock_wrlock(&c->mode_rw);
	ret = vcl_try_alone(c);
	if (ret) {
		/* Someone else shares it after all (or joins now). */
		pthread_rwlock_unlock(&c->mode_rw);
		return;
	}
	/*
	 * Alone, opens are counted in memory only and no operation takes a
	 * per-object lock: let go of every lock still held on disk (open
	 * files' and cached ones), their changes home first, or one that a
	 * close or a free while alone leaves behind would stay held for ever
	 * (and a later inode in the same slot would inherit it).  Sharing
	 * again takes the open files' locks afresh (vcl_open_locks_take).
	 */
	if (!v->j || !jnl_drain(v->j)) {
		pthread_mutex_lock(&c->held_mu);
		vcl_kc_clear(c);
		for (uint32_t b = 0; b < VHELD_BUCKETS; b++)
			for (struct vheld *h = c->held[b]; h; h = h->next) {
				h->dirty = false;
				if (h->mode != VMFS_LOCK_FREE)
					vcl_release_addr(c, h);
			}
		pthread_mutex_unlock(&c->held_mu);
	}
	/* Alone: nothing changes behind us any more; reread what other hosts
	 * may have changed while we shared. */
	ret = vol_caches_reload(v);
	if (ret)
		VLOG(LOG_ERR, "rereading caches after the other hosts left: %s",
		     vmfs_strerror(ret));
	c->shared = false;
	atomic_store(&c->kc_ok, true);
	VLOG(LOG_NOTICE, "alone on the volume again: operations no longer take per-object locks");
	pthread_rwlock_unlock(&c->mode_rw);
}

/* ---- the cluster fast path: cached locks handed over on request ------- */

/*
 * While every other live host is in our corosync group (and so can ask
 * us), locks stay held after the operation that took them: the next
 * operation on the same objects needs no compare-and-write.  A member
 * that wants one asks (vol_cluster_release_request); the handover worker
 * lets go of it at once when no operation of ours uses it, otherwise the
 * operation's end does (vcl_end).  An operation that keeps its locks only
 * seals its transaction (jnl_seal); each lock remembers that sequence,
 * and letting go of it first drains that far (jnl_drain_to), which waits
 * for I/O only, never for an operation or a handle (PROTOCOL §9).
 */

/*
 * Make what the cached lock h covers home (held_mu held, dropped while
 * waiting): its sealed transaction, which never waits for an operation.
 * False: h changed meanwhile (an operation took it: look again) or the
 * journal failed (keep it).
 */
static bool vcl_cached_home(struct vol *v, struct vheld *h)
{
	struct vcl *c = v->cl;
	uint64_t seq;
	int err;

	if (!h->dirty || !v->j)
		return true;
	seq = h->seq;
	pthread_mutex_unlock(&c->held_mu);
	err = jnl_drain_to(v->j, seq);
	pthread_mutex_lock(&c->held_mu);
	if (err)
		return false;
	if (h->seq == seq && !h->in_op) {
		h->dirty = false;
		return true;
	}
	return false;
}

/*
 * A lock nobody asks for stays cached for this long after the last
 * operation that used it: a host that worked in many directories does
 * not keep them all (nor pay for all of them at unmount).
 */
#define VCL_CACHE_IDLE_MS 30000

/* Let go of h if held only as a cache (idle_ms: and unused for that
 * long), or bring it down to what files open here need (held_mu held,
 * dropped while waiting). */
static void vcl_uncache_one(struct vol *v, struct vheld *h, int64_t idle_ms,
			    int64_t now)
{
	struct vcl *c = v->cl;
	struct lock_state st;

	h->pins++;
	for (;;) {
		/* One whose release failed goes whether idle or not. */
		if (h->mode == VMFS_LOCK_FREE || h->in_op ||
		    (idle_ms && (h->open_ro || h->open_rw ||
				 (now - h->used_ms < idle_ms &&
				  !h->unreleased))) ||
		    !vcl_cached_home(v, h))
			break;
		if (h->kheld) {
			vcl_kc_forget(v, h);
			continue;  /* h may have changed meanwhile */
		}
		if (h->open_ro || h->open_rw) {
			/* Back to what the opens need. */
			if (h->mode == VMFS_LOCK_EXCLUSIVE && !h->open_rw &&
			    !h->multiwriter &&
			    !lock_downgrade(c->lk, h->addr, &st)) {
				h->mode = st.mode;
				h->gen = st.gen;
			}
			break;
		}
		vcl_release_addr(c, h);
		break;
	}
	h->leaving = false;
	h->pins--;
}

/*
 * How many locks one slice of a trim lets go of before the worker looks
 * at its queue again: a host that kept thousands of locks (one per file
 * it created) must not make a member's request wait for all of their
 * releases.
 */
#define VCL_TRIM_SLICE 16

/* Let go of locks held only as a cache, or (idle_ms) only of those
 * unused for that long, from bucket *cursor on, up to VCL_TRIM_SLICE of
 * them (held_mu held).  True when the whole table was gone through. */
static bool vcl_uncache_some(struct vol *v, int64_t idle_ms, uint32_t *cursor)
{
	int64_t now = vmfs_mono_ms();
	unsigned n = 0;

	for (; *cursor < VHELD_BUCKETS; (*cursor)++) {
		for (struct vheld *h = v->cl->held[*cursor]; h; h = h->next) {
			enum vmfs_lock_mode was = h->mode;

			vcl_uncache_one(v, h, idle_ms, now);
			n += h->mode != was;
		}
		if (n >= VCL_TRIM_SLICE) {
			(*cursor)++;
			return *cursor == VHELD_BUCKETS;
		}
	}
	return true;
}

/*
 * Let go of addr (handover worker): a member's request (asked: answered
 * with RELEASED, also when we do not hold it), or this host's own (a lock
 * the kernel kept, vol_file_uncache: no answer, nobody waits for one).
 */
static void vcl_hand_over(struct vol *v, uint64_t addr, bool asked)
{
	struct vcl *c = v->cl;
	struct lock_state st;
	struct vheld *h;
	bool answer = asked;

	pthread_mutex_lock(&c->held_mu);
	h = held_find(c, addr, false);
	if (h && h->asked)
		answer = true;  /* a member waits since an op kept it */
	if (h)
		h->pins++;
	while (h && h->mode != VMFS_LOCK_FREE) {
		if (h->in_op) {
			/* The operation's end lets go of it, and answers
			 * if a member asked. */
			h->wanted = true;
			h->asked = h->asked || asked;
			answer = false;
			break;
		}
		/* Its changes home first: the sealed transaction of the
		 * operation that last used it. */
		if (!vcl_cached_home(v, h)) {
			if (jnl_error(v->j))
				break;  /* keep it; the asker falls back */
			continue;
		}
		/* And the kernel forgets what it keeps under it (an
		 * operation may take it meanwhile: look again). */
		if (h->kheld) {
			vcl_kc_forget(v, h);
			continue;
		}
		h->wanted = true;
		open_lock_sync(v, h, 0, &st);
		h->wanted = false;
		break;
	}
	if (h) {
		h->leaving = false;
		h->pins--;
		if (answer)
			h->asked = false;
	}
	pthread_mutex_unlock(&c->held_mu);
	if (answer)
		vcl_net_released(c, &addr, 1);
}

static void *vcl_hw_thread(void *arg)
{
	struct vol *v = arg;
	struct vcl *c = v->cl;

	/* A pass runs; for a flush; for a drop (all, even caching). */
	bool trim = false, all = false, drop = false;
	uint32_t cursor = 0;

	pthread_mutex_lock(&c->hw_mu);
	while (!c->hw_stopping) {
		if (c->hw_kc_drop) {
			c->hw_kc_drop = false;
			pthread_mutex_unlock(&c->hw_mu);
			pthread_rwlock_rdlock(&c->mode_rw);
			if (c->shared)
				vcl_kc_drop(c, false);
			pthread_rwlock_unlock(&c->mode_rw);
			pthread_mutex_lock(&c->hw_mu);
			continue;
		}
		/* Members' requests first; a pass over the table goes on in
		 * slices between them, and starts again on a new flush. */
		if (c->hw_flush || c->hw_drop || (c->hw_trim && !trim)) {
			all = all || c->hw_flush;
			drop = drop || c->hw_drop;
			trim = true;
			cursor = 0;
			c->hw_flush = c->hw_trim = c->hw_drop = false;
		}
		if (trim && !c->hw_n) {
			bool done = true;

			pthread_mutex_unlock(&c->hw_mu);
			pthread_mutex_lock(&c->held_mu);
			if (!c->caching || drop)
				done = vcl_uncache_some(v, 0, &cursor);
			else if (!all)
				done = vcl_uncache_some(v, VCL_CACHE_IDLE_MS,
							&cursor);
			pthread_mutex_unlock(&c->held_mu);
			pthread_mutex_lock(&c->hw_mu);
			if (done)
				trim = all = drop = false;
			continue;
		}
		if (c->hw_n) {
			struct vcl_hwreq r = c->hw_q[--c->hw_n];

			pthread_mutex_unlock(&c->hw_mu);
			/* Not while the mode switches: the table is the
			 * switch's then. */
			pthread_rwlock_rdlock(&c->mode_rw);
			if (c->shared)
				vcl_hand_over(v, r.addr, r.asked);
			else if (r.asked)
				vcl_net_released(c, &r.addr, 1);
			pthread_rwlock_unlock(&c->mode_rw);
			pthread_mutex_lock(&c->hw_mu);
			continue;
		}
		pthread_cond_wait(&c->hw_cv, &c->hw_mu);
	}
	pthread_mutex_unlock(&c->hw_mu);
	return NULL;
}

/* Do files open here keep h in a mode that conflicts with want (held_mu
 * held)?  Then asking for it is answered "kept": the asker goes by the
 * disk, as without the fast path. */
static bool vcl_kept_open(const struct vcl *c, const struct vheld *h,
			  enum vmfs_lock_mode want)
{
	if (!c->shared || h->detached || !(h->open_ro || h->open_rw))
		return false;
	return h->multiwriter ? want != VMFS_LOCK_MULTIWRITER :
	       h->open_rw || want != VMFS_LOCK_READONLY;
}

int vol_cluster_release_request(struct vol *v, uint64_t addr,
				enum vmfs_lock_mode want)
{
	struct vcl *c = v->cl;
	struct vheld *h;
	bool kept = false;

	if (!c || !c->hw_started)
		return 0;
	NS_ADD(c, requests);
	/* Files open here keep the lock in the mode they need: say so at
	 * once (the asker stops waiting and goes by the disk), rather than
	 * let the worker answer "released" for a lock it keeps. */
	pthread_mutex_lock(&c->held_mu);
	h = held_find(c, addr, false);
	kept = h && vcl_kept_open(c, h, want);
	pthread_mutex_unlock(&c->held_mu);
	if (kept)
		return -EBUSY;
	return vcl_hw_queue(c, addr, true);
}

/*
 * Another host's want on the disk (§9a) names addr (watcher thread).  A
 * lock held here in a mode the want conflicts with: the handover worker
 * lets go of it, and of every other lock kept as a cache (whoever looks
 * at one thing of ours is likely to look at the next: an `ls -l` must not
 * ask for each file's lock a quarter renewal apart), and the lock is let
 * go after each operation for a while (vcl_contend).  Kept for files
 * open here: the want is answered so in our slot (hb_busy).
 */
static void vcl_disk_want(struct vol *v, const struct hb_slot_info *si)
{
	struct vcl *c = v->cl;
	enum vmfs_lock_mode want = si->flags & VMFS_HB_F_WANT_EXCL ?
				   VMFS_LOCK_EXCLUSIVE : VMFS_LOCK_READONLY;
	bool held, kept, all, fresh = false;
	struct vheld *h;

	pthread_mutex_lock(&c->held_mu);
	h = held_find(c, si->want_addr, false);
	held = c->shared && h && h->mode != VMFS_LOCK_FREE &&
	       !(h->mode == VMFS_LOCK_READONLY && want == VMFS_LOCK_READONLY);
	kept = held && vcl_kept_open(c, h, want);
	/* Kept: the asker reads the disk, so what the lock covers goes
	 * home first (a file created and opened here may not be yet). */
	if (kept)
		(void)vcl_cached_home(v, h);
	else if (held)
		fresh = vcl_contend(c, si->want_addr, vmfs_mono_ms());
	else if (h && c->shared && want == VMFS_LOCK_EXCLUSIVE)
		/* Not held now, but taken here before: whatever this host
		 * takes it for next conflicts with the asker, so it is not
		 * kept either (a directory every host reads and some create
		 * in would otherwise be asked for again and again, a
		 * quarter renewal each time). */
		(void)vcl_contend(c, si->want_addr, vmfs_mono_ms());
	pthread_mutex_unlock(&c->held_mu);
	if (!held)
		return;
	NS_ADD(c, disk_requests);
	if (kept) {
		NS_ADD(c, disk_busy);
		hb_busy(c->o.hb, si->slot, si->want_seq, si->want_addr);
		return;
	}
	/* An inode's lock: whoever looks at one thing of ours is likely
	 * to look at the next, and would ask for each; everything goes.
	 * A resource cluster's: the asker wants room to allocate from,
	 * and nothing else of ours. */
	all = vol_res_index(v, VMFS_RES_INODE, si->want_addr) >= 0;
	if (fresh)
		VLOG(LOG_INFO, "host %s (slot %u) asked on the disk for the lock at %llu: letting go of it%s; it is let go after each operation for the next %u ms",
		     si->hostname[0] ? si->hostname : "?", si->slot,
		     (unsigned long long)si->want_addr,
		     all ? " and of every lock kept as a cache" : "",
		     VCL_CONTEND_MS);
	(void)vcl_hw_queue(c, si->want_addr, false);
	if (!all)
		return;
	pthread_mutex_lock(&c->hw_mu);
	c->hw_drop = true;
	pthread_cond_signal(&c->hw_cv);
	pthread_mutex_unlock(&c->hw_mu);
}

/* Queue addr for the handover worker (any thread; never blocks); asked:
 * a member waits for its RELEASED.  -EINPROGRESS, or -ENOMEM. */
static int vcl_hw_queue(struct vcl *c, uint64_t addr, bool asked)
{
	int ret = -EINPROGRESS;

	pthread_mutex_lock(&c->hw_mu);
	for (uint32_t i = 0; i < c->hw_n; i++)
		if (c->hw_q[i].addr == addr) {
			/* Queued already; a member's ask is answered. */
			c->hw_q[i].asked = c->hw_q[i].asked || asked;
			goto out;
		}
	if (c->hw_n == c->hw_cap) {
		uint32_t cap = c->hw_cap ? c->hw_cap * 2 : 64;
		struct vcl_hwreq *q = realloc(c->hw_q, cap * sizeof(*q));

		if (!q) {
			ret = -ENOMEM;
			goto out;
		}
		c->hw_q = q;
		c->hw_cap = cap;
	}
	c->hw_q[c->hw_n].addr = addr;
	c->hw_q[c->hw_n++].asked = asked;
	pthread_cond_signal(&c->hw_cv);
out:
	pthread_mutex_unlock(&c->hw_mu);
	return ret;
}

/* Our own wish, not a member's: neither counted as a request nor
 * answered with RELEASED. */
int vol_file_uncache(struct vol *v, uint64_t ino)
{
	struct vcl *c = v->cl;
	int ret;

	if (!c || !c->hw_started)
		return 0;
	ret = vcl_hw_queue(c, res_addr(v, VMFS_RES_INODE, ino), false);
	return ret == -EINPROGRESS ? 0 : ret;
}

/* Wake the watcher: membership changed. */
static void vcl_kick(struct vcl *c, bool check)
{
	pthread_mutex_lock(&c->thr_mu);
	if (check)
		c->net_check = true;
	pthread_cond_signal(&c->thr_cv);
	pthread_mutex_unlock(&c->thr_mu);
}

void vol_cluster_set_net(struct vol *v, const struct vol_net_ops *ops,
			 void *arg)
{
	struct vcl *c = v->cl;

	if (!c)
		return;
	pthread_rwlock_wrlock(&c->net_rw);
	c->net = ops;
	c->net_arg = arg;
	pthread_rwlock_unlock(&c->net_rw);
	if (!ops) {
		/* Nobody can ask us over the fast path any more: stop caching
		 * now (the watcher's next decision may take it up again with
		 * asks on the disk, §9a). */
		pthread_mutex_lock(&c->held_mu);
		c->caching = false;
		pthread_mutex_unlock(&c->held_mu);
		pthread_mutex_lock(&c->hw_mu);
		c->hw_kc_drop = true;
		c->hw_flush = true;
		pthread_cond_signal(&c->hw_cv);
		pthread_mutex_unlock(&c->hw_mu);
	}
	vcl_kick(c, true);
}

void vol_cluster_fenced(struct vol *v)
{
	if (v->cl)
		vcl_kick(v->cl, true);
}

void vol_cluster_membership(struct vol *v, bool left, uint32_t slot)
{
	struct vcl *c = v->cl;

	if (!c)
		return;
	if (left && slot < c->nslots && slot != c->o.my_slot) {
		pthread_mutex_lock(&c->thr_mu);
		c->seen[slot].suspect = true;
		c->seen[slot].moves_since_left = 0;
		c->any_suspect = true;
		pthread_mutex_unlock(&c->thr_mu);
	}
	vcl_kick(c, true);
}

int vol_cluster_slots(struct vol *v, int64_t max_age_ms,
		      struct hb_slot_info *si, uint32_t max, uint32_t *n)
{
	struct vcl *c = v->cl;
	int ret = -EAGAIN;

	if (!c)
		return ret;
	pthread_mutex_lock(&c->thr_mu);
	if (c->last_si && c->last_ms &&
	    vmfs_mono_ms() - c->last_ms <= max_age_ms && c->last_n <= max) {
		memcpy(si, c->last_si, c->last_n * sizeof(*si));
		*n = c->last_n;
		ret = 0;
	}
	pthread_mutex_unlock(&c->thr_mu);
	return ret;
}

void vol_cluster_net_stats(struct vol *v, struct vol_net_stats *s)
{
	struct vcl *c = v->cl;

	memset(s, 0, sizeof(*s));
	if (!c)
		return;
	pthread_mutex_lock(&c->held_mu);
	s->caching = c->caching;
	s->entries = c->nheld;
	for (uint32_t b = 0; b < VHELD_BUCKETS; b++)
		for (struct vheld *h = c->held[b]; h; h = h->next)
			s->cached += h->mode != VMFS_LOCK_FREE && !h->in_op &&
				     !h->open_ro && !h->open_rw;
	pthread_mutex_unlock(&c->held_mu);
	s->asked = __atomic_load_n(&c->ns.asked, __ATOMIC_RELAXED);
	s->answered = __atomic_load_n(&c->ns.answered, __ATOMIC_RELAXED);
	s->ask_timeouts = __atomic_load_n(&c->ns.ask_timeouts, __ATOMIC_RELAXED);
	s->requests = __atomic_load_n(&c->ns.requests, __ATOMIC_RELAXED);
	s->handed = __atomic_load_n(&c->ns.handed, __ATOMIC_RELAXED);
	s->disk_asked = __atomic_load_n(&c->ns.disk_asked, __ATOMIC_RELAXED);
	s->disk_requests = __atomic_load_n(&c->ns.disk_requests,
					   __ATOMIC_RELAXED);
	s->disk_busy = __atomic_load_n(&c->ns.disk_busy, __ATOMIC_RELAXED);
}

/*
 * May we keep locks between operations?  Only while sharing, with the
 * fast path up and every other host on the disk in our group: a host
 * that cannot ask would wait for our cache on the disk-only path.
 * (Watcher thread.)
 */
static void vcl_net_decide(struct vol *v)
{
	struct vcl *c = v->cl;
	bool want = false, was;

	pthread_rwlock_rdlock(&c->net_rw);
	if ((c->net || c->o.hb) && c->shared) {
		want = true;
		for (uint32_t i = 0; i < c->nslots && want; i++) {
			const struct vslot_seen *s = &c->seen[i];
			struct lock_holder h;
			bool member;

			if (i == c->o.my_slot || !s->valid || !s->present ||
			    s->state != VMFS_HB_ACTIVE)
				continue;
			memcpy(h.uuid, s->uuid, VMFS_UUID_SIZE);
			h.slot = i;
			h.hb_gen = s->hb_gen;
			/* It can ask us: over the group, or on the disk. */
			member = c->net && c->net->is_member(c->net_arg, &h);
			want = (c->o.hb && s->asks) || member;
		}
	}
	pthread_rwlock_unlock(&c->net_rw);
	pthread_mutex_lock(&c->held_mu);
	was = c->caching;
	c->caching = want;
	pthread_mutex_unlock(&c->held_mu);
	if (was == want)
		return;
	VLOG(LOG_NOTICE, "%s", want ? "every host on the volume can ask for our locks (in our cluster group, or on the disk): locks stay cached between operations and are handed over on request" :
	     "a host on the volume cannot ask for our locks (not in our cluster group, and no asks on the disk): locks are released after each operation again");
	if (!want) {
		/* Nobody may ask us any more: the kernel forgets what it
		 * keeps under cached locks before they go (a host alone
		 * keeps its own).  On the handover worker: forgetting a
		 * name waits for the kernel's operations in its directory,
		 * and one may wait for a dead host's lock that only this
		 * thread's recovery makes breakable (PROTOCOL.md §5). */
		pthread_mutex_lock(&c->hw_mu);
		c->hw_kc_drop = true;
		c->hw_flush = true;
		pthread_cond_signal(&c->hw_cv);
		pthread_mutex_unlock(&c->hw_mu);
	}
}

/* ---- the orphan sweep ------------------------------------------------- */

/*
 * Apply the link drop another host left pending on vi (rc_unlinked),
 * whose lock this operation holds EXCLUSIVE: di_nlink goes down by one
 * (an orphan at zero) and the bit is cleared in the same transaction.
 */
static int apply_pending_drop(struct vol *v, struct vinode *vi)
{
	int ret = 0;

	pthread_rwlock_wrlock(&vi->rw);
	/* A directory is never left pending, and the link the drop counts
	 * is always still there (fsck, docs/SPEC.md §8): never below 0. */
	if (!S_ISDIR(vi->mode) && vi->nlink && !vi->deleted)
		ret = vol_link_drop(v, vi);
	pthread_rwlock_unlock(&vi->rw);
	if (!ret)
		ret = vol_res_inode_mark(v, vi->ino, VOL_RC_UNLINKED, false);
	if (!ret)
		vcl_kcache_drop_attr(v->cl, vi->ino);
	return ret;
}

/*
 * One inode of the sweep's list, whose lock the running operation holds
 * (or alone): apply its pending drop, free it if that leaves it an
 * orphan, or free the orphan it was.  True: try again at the next sweep;
 * *unread: an orphan that could not be read (tried again a few times).
 */
static bool sweep_one(struct vol *v, uint64_t ino, uint64_t *freed,
		      bool *unread)
{
	VOL_HANDLE(v);
	bool pending = false, orphan = false, retry = false, busy;
	struct vinode *vi;
	int ret;

	/* Under the cluster's lock: another host's sweep may have dealt
	 * with it since the list was read. */
	ret = vol_res_inode_test(v, ino, VOL_RC_UNLINKED, &pending);
	if (!ret)
		ret = vol_res_inode_test(v, ino, VOL_RC_ORPHAN, &orphan);
	if (ret)
		return true;
	if (!pending && !orphan)
		return false;
	if (op_shared(v))
		ret = vcl_reload_ino(v, ino);
	if (!ret)
		ret = vol_inode_get(v, ino, &vi);
	if (ret == -ESTALE) {
		/* Free on disk: the bits are stale. */
		vol_res_inode_mark(v, ino, VOL_RC_ORPHAN, false);
		vol_res_inode_mark(v, ino, VOL_RC_UNLINKED, false);
		return false;
	}
	/* Not read: the bits stay (a transient failure must not leak the
	 * inode); a pending drop is tried again at the next sweep, an
	 * orphan a few more times. */
	if (ret) {
		*unread |= !pending;
		return pending;
	}
	if (pending && apply_pending_drop(v, vi))
		retry = true;
	pthread_mutex_lock(&v->icache_lock);
	busy = vi->nlookup > 0;
	pthread_mutex_unlock(&v->icache_lock);
	if (vi->nlink) {
		vol_res_inode_mark(v, ino, VOL_RC_ORPHAN, false);
	} else if (busy) {
		pthread_rwlock_wrlock(&vi->rw);
		if (!vi->deleted && !vol_inode_free(v, vi))
			(*freed)++;
		pthread_rwlock_unlock(&vi->rw);
	} else {
		(*freed)++;
	}
	vol_inode_put(v, vi);  /* the last one frees it */
	return retry;
}

/*
 * Free orphans (no links, not open anywhere) and apply pending link drops
 * (rc_unlinked) whose lock we can take.  A drop whose inode another host
 * still has open stays pending: the sweep is wanted again at the next
 * tick, and the holder's last close asks for one too.
 */
/*
 * An orphan whose lock another host holds is usually open there, and
 * its holder frees it at its last close; but the holder may only have
 * been running an operation on it (a stat, its own sweep), and then
 * nobody else would come back for it.  So the sweep comes back for such
 * orphans this many times (a renewal interval apart, ~30 s by default)
 * before leaving them to their holder or the next event.
 */
#define VCL_ORPHAN_PASSES 15

void vol_orphans_sweep(struct vol *v, bool quiet)
{
	struct vol_orphan *list = NULL;
	uint64_t freed = 0;
	size_t n = 0;
	bool retry = false, busy = false;

	if (vol_is_rdonly(v))
		return;
	/* Shared: the bits as on disk now, read between operations (an
	 * operation's cached cluster changes may not be home yet). */
	if (vcl_shared(v)) {
		VCL_OP(v);

		if (VCL_END(v, vol_res_refresh_inodes(v))) {
			/* A header read while another host wrote it, say:
			 * never drop the sweep, try at the next tick. */
			vcl_sweep_want(v);
			return;
		}
	}
	if (vol_res_orphans_list(v, &list, &n)) {
		vcl_sweep_want(v);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct vcl_optab op;
		uint64_t addr = res_addr(v, VMFS_RES_INODE, list[i].ino);
		int ret;

		/* Open here: not ours to free yet. */
		if (v->cl) {
			struct vheld *h;
			bool open;

			pthread_mutex_lock(&v->cl->held_mu);
			h = held_find(v->cl, addr, false);
			open = h && (h->open_ro || h->open_rw);
			pthread_mutex_unlock(&v->cl->held_mu);
			if (open) {
				retry |= list[i].pending;
				continue;
			}
		}
		vcl_begin(v, &op);
		ret = op_shared(v) ? vcl_lock_addr(v, addr, VMFS_LOCK_EXCLUSIVE, 0,
						   NULL, NULL)
				   : 0;
		/* Locked elsewhere: a pending drop waits for us to come
		 * back; an orphan most likely for its holder's last close
		 * (VCL_ORPHAN_PASSES). */
		retry |= ret && list[i].pending;
		busy |= ret && !list[i].pending;
		if (!ret)
			retry |= sweep_one(v, list[i].ino, &freed, &busy);
		vcl_end(v, &op, 0);
	}
	if (retry) {
		vcl_sweep_want(v);
	} else if (v->cl) {
		pthread_mutex_lock(&v->cl->held_mu);
		if (!busy)
			v->cl->orphan_passes = 0;
		else if (++v->cl->orphan_passes <= VCL_ORPHAN_PASSES)
			v->cl->sweep_wanted = true;
		pthread_mutex_unlock(&v->cl->held_mu);
	}
	/* A routine sweep (after a last close) says it at info level. */
	if (freed)
		VLOG(quiet ? LOG_INFO : LOG_NOTICE, "%s: freed %llu inodes that were unlinked while open",
		     lun_name(v->lun), (unsigned long long)freed);
	free(list);
}

/* ---- start, tick, stop ------------------------------------------------ */

/*
 * The watcher's tick: watch the slots (recovering dead hosts), switch
 * modes, then have the maintenance worker do the rest.  The rest waits
 * for operations (the sweep is one, the geometry check takes the
 * allocator's mutex), and an operation may be waiting for a lock of a
 * dead host, which only the watcher's recovery makes breakable: run here,
 * the two would wait for each other until the operation gives up, again
 * and again (docs/PROTOCOL.md §5).
 */
static void vcl_tick(struct vol *v)
{
	struct vcl *c = v->cl;
	bool others;

	vcl_watch_slots(v, &others);
	if (!c->shared && others) {
		vcl_go_shared(v);
	} else if (c->shared && !others) {
		vcl_go_alone(v);
	}
	pthread_mutex_lock(&c->mt_mu);
	c->mt_tick = true;
	pthread_cond_signal(&c->mt_cv);
	pthread_mutex_unlock(&c->mt_mu);
}

/* The maintenance worker: after every tick of the watcher, the geometry
 * another host may have grown, and the orphan sweep when it is wanted. */
static void *vcl_mt_thread(void *arg)
{
	struct vol *v = arg;
	struct vcl *c = v->cl;

	pthread_mutex_lock(&c->mt_mu);
	while (!c->mt_stopping) {
		uint64_t recovered;
		bool sweep;

		if (!c->mt_tick) {
			pthread_cond_wait(&c->mt_cv, &c->mt_mu);
			continue;
		}
		c->mt_tick = false;
		pthread_mutex_unlock(&c->mt_mu);
		/* Shared, another host may grow the volume (vol_grow_online). */
		if (vcl_shared(v))
			vol_geom_refresh(v);
		pthread_mutex_lock(&c->held_mu);
		sweep = c->sweep_wanted;
		c->sweep_wanted = false;
		held_prune(c, vmfs_mono_ms());
		pthread_mutex_unlock(&c->held_mu);
		recovered = atomic_exchange(&c->recovered, 0);
		if (recovered || sweep)
			vol_orphans_sweep(v, !recovered);
		pthread_mutex_lock(&c->mt_mu);
	}
	pthread_mutex_unlock(&c->mt_mu);
	return NULL;
}

/*
 * How often the watcher reads the slots of hosts that left our group:
 * so that one is recovered within this much of the moment its lease
 * runs out, not up to a renewal interval later.
 */
#define VCL_CLOSE_WATCH_MS 100

/*
 * The watcher reads the slots every renewal interval divided by this
 * (500 ms at the default lease), its other work every renewal interval.
 * A slot's stillness is counted from the first read that showed its last
 * change, which comes up to one such interval after the renewal landed;
 * read only every renewal, that delay was up to 2 s at the default lease,
 * and it lengthened every recovery by as much (1 s on average).
 */
#define VCL_WATCH_DIV 4

/* Did a release fail since the last tick?  (Clears it: a retry that
 * fails again sets it again.) */
static bool vcl_retry_wanted(struct vcl *c)
{
	bool ret;

	pthread_mutex_lock(&c->held_mu);
	ret = c->release_failed;
	c->release_failed = false;
	pthread_mutex_unlock(&c->held_mu);
	return ret;
}

static void *vcl_thread(void *arg)
{
	struct vol *v = arg;
	struct vcl *c = v->cl;
	int64_t watch_ms = c->o.t.renew_ms / VCL_WATCH_DIV;
	int64_t next_tick = vmfs_mono_ms() + c->o.t.renew_ms;
	int64_t next_watch = vmfs_mono_ms() + watch_ms;

	pthread_mutex_lock(&c->thr_mu);
	while (!c->stopping) {
		int64_t now = vmfs_mono_ms();
		int64_t until_ms = next_tick < next_watch ? next_tick : next_watch;
		bool check, full;

		if (c->any_suspect && now + VCL_CLOSE_WATCH_MS < until_ms)
			until_ms = now + VCL_CLOSE_WATCH_MS;
		if (!c->net_check && now < until_ms) {
			struct timespec until = vmfs_mono_timespec(until_ms *
								   1000000LL);

			pthread_cond_timedwait(&c->thr_cv, &c->thr_mu, &until);
			continue;
		}
		check = c->net_check;
		c->net_check = false;
		full = now >= next_tick;
		if (full)
			next_tick = now + c->o.t.renew_ms;
		next_watch = now + watch_ms;
		pthread_mutex_unlock(&c->thr_mu);
		if (lun_is_fenced(v->lun)) {
			vcl_kcache_off(c);
		} else {
			if (full) {
				vcl_tick(v);
			} else {
				bool others;

				vcl_watch_slots(v, &others);
			}
			if (full || check)
				vcl_net_decide(v);
			if (full && (c->caching || vcl_retry_wanted(c))) {
				pthread_mutex_lock(&c->hw_mu);
				c->hw_trim = true;
				pthread_cond_signal(&c->hw_cv);
				pthread_mutex_unlock(&c->hw_mu);
			}
		}
		pthread_mutex_lock(&c->thr_mu);
	}
	pthread_mutex_unlock(&c->thr_mu);
	return NULL;
}

/*
 * Join the volume.  Our slot is ACTIVE already.  The volume lock FREE:
 * take it EXCLUSIVE and check the slots (vcl_try_alone); failing that,
 * or with it FREE and other hosts about, share without holding it.  Held
 * EXCLUSIVE by a live host: wait for it to notice our slot and let go;
 * by a dead one: recover it on the way.  READONLY by live hosts: -EROFS.
 * Bounded by two dead times and a lease.
 */
static int vcl_take_volume_lock(struct vol *v)
{
	struct vcl *c = v->cl;
	int64_t end = vmfs_mono_ms() + 2 * c->o.t.dead_ms + c->o.t.lease_ms;
	struct lock_state st;
	bool others;
	int ret;

	for (;;) {
		ret = vcl_try_alone(c);
		if (!ret) {
			c->shared = false;
			atomic_store(&c->kc_ok, true);
			return 0;
		}
		if (ret != -EBUSY)
			return ret;
		ret = lock_read(c->lk, vcl_region_addr(c), &st);
		if (ret)
			return ret;
		if (st.mode == VMFS_LOCK_FREE) {
			/* Other hosts, none alone: share.  Inode slots read
			 * ahead before (at open) may change under them now. */
			c->shared = true;
			vol_inode_ira_drop_all(v);
			return 0;
		}
		/* Read-only hosts take no per-object locks: a writer cannot
		 * join them (vmfsd says who they are). */
		if (st.mode == VMFS_LOCK_READONLY)
			for (uint32_t i = 0; i < st.nholders; i++)
				if (lock_hbwatch_judge(c->watch, &st.holders[i]) ==
				    LOCK_HOLDER_LIVE) {
					vol_lock_owner_text(v, &st, c->why,
							    sizeof(c->why));
					return -EROFS;
				}
		/* A lone holder switches within a renewal interval; a dead
		 * one is recovered once it stood still long enough. */
		vcl_watch_slots(v, &others);
		if (vmfs_mono_ms() >= end)
			return -EBUSY;
		sleep_ms(c->o.t.renew_ms / 8 + (unsigned)(random() % 50));
	}
}

int vol_cluster_start(struct vol *v, const struct vol_cluster_opts *o)
{
	struct vcl *c = calloc(1, sizeof(*c));
	struct lock_host host;
	int ret;

	if (!c)
		return -ENOMEM;
	c->o = *o;
	memcpy(c->host_uuid, o->host_uuid, VMFS_UUID_SIZE);
	c->o.host_uuid = c->host_uuid;
	c->nslots = v->g.max_hosts;
	c->seen = calloc(c->nslots, sizeof(*c->seen));
	c->si = calloc(c->nslots, sizeof(*c->si));
	c->last_si = calloc(c->nslots, sizeof(*c->last_si));
	c->wq = calloc(c->nslots, sizeof(*c->wq));
	pthread_rwlock_init(&c->mode_rw, NULL);
	pthread_mutex_init(&c->op_mu, NULL);
	pthread_mutex_init(&c->held_mu, NULL);
	pthread_mutex_init(&c->thr_mu, NULL);
	pthread_rwlock_init(&c->net_rw, NULL);
	pthread_mutex_init(&c->hw_mu, NULL);
	pthread_cond_init(&c->hw_cv, NULL);
	pthread_mutex_init(&c->mt_mu, NULL);
	pthread_cond_init(&c->mt_cv, NULL);
	pthread_rwlock_init(&c->kc_rw, NULL);
	vmfs_cond_init_mono(&c->thr_cv);
	if (!c->seen || !c->si || !c->wq) {
		ret = -ENOMEM;
		goto err;
	}
	ret = lock_hbwatch_open(o->hb_lun, o->hb_offset, &c->watch);
	if (ret)
		goto err;
	memset(&host, 0, sizeof(host));
	memcpy(host.self.uuid, o->host_uuid, VMFS_UUID_SIZE);
	host.self.slot = o->my_slot;
	host.self.hb_gen = o->my_hb_gen;
	host.is_live = lock_hbwatch_holds;
	host.live_arg = c->watch;
	ret = lock_ctx_open(o->lock_lun ? o->lock_lun : o->hb_lun, &host,
			    o->prim, &c->lk);
	if (ret)
		goto err;
	v->cl = c;
	vol_res_spread(v, o->my_slot, c->nslots);
	ret = vcl_take_volume_lock(v);
	if (ret) {
		if (o->why && o->why_len)
			snprintf(o->why, o->why_len, "%s", c->why);
		v->cl = NULL;
		goto err;
	}
	VLOG(LOG_NOTICE, "%s: %s", lun_name(v->lun),
	     c->shared ? "sharing the volume with other hosts: operations take their on-disk locks" :
			 "alone on the volume: volume lock taken exclusive");
	vol_orphans_sweep(v, false);
	ret = -pthread_create(&c->thr, NULL, vcl_thread, v);
	if (ret) {
		vol_cluster_stop(v);
		return ret;
	}
	c->thr_started = true;
	ret = -pthread_create(&c->mt_thr, NULL, vcl_mt_thread, v);
	if (ret) {
		vol_cluster_stop(v);
		return ret;
	}
	c->mt_started = true;
	ret = -pthread_create(&c->hw_thr, NULL, vcl_hw_thread, v);
	if (ret) {
		vol_cluster_stop(v);
		return ret;
	}
	c->hw_started = true;
	return 0;
err:
	lock_ctx_close(c->lk);
	lock_hbwatch_close(c->watch);
	free(c->seen);
	free(c->si);
	free(c->last_si);
	free(c->wq);
	free(c);
	return ret;
}

bool vol_cluster_is_shared(struct vol *v)
{
	return vcl_shared(v);
}

/* Tell a thread of ours to stop (under its mutex) and wait for it. */
static void vcl_thread_end(pthread_mutex_t *mu, pthread_cond_t *cv,
			   bool *stopping, bool started, pthread_t thr)
{
	pthread_mutex_lock(mu);
	*stopping = true;
	pthread_cond_signal(cv);
	pthread_mutex_unlock(mu);
	if (started)
		pthread_join(thr, NULL);
}

void vol_cluster_stop(struct vol *v)
{
	struct vcl *c = v->cl;
	struct lock_state st;

	if (!c)
		return;
	/* The watcher first: it wakes the other two. */
	vcl_thread_end(&c->thr_mu, &c->thr_cv, &c->stopping, c->thr_started,
		       c->thr);
	vcl_thread_end(&c->mt_mu, &c->mt_cv, &c->mt_stopping, c->mt_started,
		       c->mt_thr);
	vcl_thread_end(&c->hw_mu, &c->hw_cv, &c->hw_stopping, c->hw_started,
		       c->hw_thr);
	atomic_store(&c->kc_ok, false);  /* the adapter is gone by now */
	vcl_kc_clear(c);
	c->caching = false;
	pthread_rwlock_wrlock(&c->mode_rw);
	vol_icache_flush_times(v);
	if (!lun_is_fenced(v->lun) && (!v->j || !jnl_drain(v->j))) {
		for (uint32_t b = 0; b < VHELD_BUCKETS; b++)
			for (struct vheld *h = c->held[b]; h; h = h->next)
				if (h->mode != VMFS_LOCK_FREE)
					vcl_release_addr(c, h);
		if (!c->shared)
			lock_release(c->lk, vcl_region_addr(c), &st);
	}
	c->shared = false;   /* the close runs alone from here */
	v->keep_orphans = true;  /* the next mount's sweep frees them */
	pthread_rwlock_unlock(&c->mode_rw);
	for (uint32_t b = 0; b < VHELD_BUCKETS; b++)
		while (c->held[b]) {
			struct vheld *h = c->held[b];

			c->held[b] = h->next;
			free(h);
		}
	c->nheld = 0;
	lock_ctx_close(c->lk);
	lock_hbwatch_close(c->watch);
	pthread_rwlock_destroy(&c->mode_rw);
	pthread_mutex_destroy(&c->op_mu);
	pthread_mutex_destroy(&c->held_mu);
	pthread_mutex_destroy(&c->thr_mu);
	pthread_cond_destroy(&c->thr_cv);
	pthread_rwlock_destroy(&c->net_rw);
	pthread_mutex_destroy(&c->hw_mu);
	pthread_mutex_destroy(&c->mt_mu);
	pthread_cond_destroy(&c->mt_cv);
	pthread_rwlock_destroy(&c->kc_rw);
	pthread_cond_destroy(&c->hw_cv);
	free(c->hw_q);
	free(c->seen);
	free(c->si);
	free(c->last_si);
	free(c->wq);
	free(c);
	v->cl = NULL;
}
