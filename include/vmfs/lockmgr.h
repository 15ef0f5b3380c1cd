/*
 * lockmgr: heartbeats and on-disk lock records.
 *
 * A mounted host holds one heartbeat slot and renews it with a
 * compare-and-write; liveness of other hosts is judged only by seeing
 * their counters move on our own monotonic clock.  Lock records live in
 * the first sector of every lockable block; the lock manager (second
 * half of this header) acquires, releases and breaks them.  Handing locks
 * over between hosts and corosync membership will build on these.
 */
#ifndef VMFS_LOCKMGR_H
#define VMFS_LOCKMGR_H

#include <stdbool.h>
#include <stdint.h>
#include "vmfs/format.h"
#include "vmfs/error.h"

struct lun;

/* Default heartbeat timing advertised in the region header (ms). */
#define HB_DEFAULT_RENEW_MS 2000u
#define HB_DEFAULT_LEASE_MS 10000u
/*
 * Leases outside this range are clamped when used and make a slot read
 * from disk count as damaged: a corrupt lease must not make an observer
 * wait for days.
 */
#define HB_MIN_LEASE_MS 500u
#define HB_MAX_LEASE_MS 120000u

/*
 * Every heartbeat timer derives from the lease a host advertises
 * (timeouts.c).  Peers are always judged by the lease THEY advertise.
 */
struct hb_timeouts {
	uint32_t lease_ms;     /* advertised: dead after this long unchanged */
	uint32_t renew_ms;     /* renewal interval */
	uint32_t io_timeout_ms;/* one heartbeat I/O may take this long */
	uint32_t data_io_timeout_ms; /* any other I/O of the volume */
	/* Writes stop at the start of the last successful renewal + this. */
	uint32_t fence_ms;
	uint32_t dead_ms;      /* observer: no change for this long = dead */
};
void hb_timeouts_from_lease(uint32_t lease_ms, struct hb_timeouts *t);

/*
 * Fill the first VMFS_LOCK_SIZE bytes of buf with a free lock record for
 * the lockable block at address self.  gen is the lock generation to
 * record (bumped by the caller when it replaces an older record).
 */
void lock_record_init_free(void *buf, uint64_t self, uint64_t gen);

/* Decode and verify the lock record at the start of buf (host order out).
 * An all-zero record is valid and free.  Returns 0 or -VMFS_E_BAD_*. */
struct lock_record {
	enum vmfs_lock_mode mode;
	uint64_t gen;
	uint8_t owner_uuid[VMFS_UUID_SIZE];
	uint32_t owner_slot;
	uint64_t owner_hb_gen;
	uint32_t nholders;
};
int lock_record_decode(const void *buf, uint64_t self, struct lock_record *out);

/*
 * Writing metadata blocks home around their lock records (SPEC §1.3).
 * The lock record of a lockable block changes only by compare-and-write
 * (this lock manager, on any host); a write of the object must never
 * carry a cached copy of the record along, or it could undo another
 * host's change (a holder joining a shared lock).
 *
 * lock_obj_write writes the object part of the lockable block whose
 * VMFS_MD_BLOCK_SIZE-byte image is img, home at addr (img's first
 * VMFS_LOCK_SIZE bytes are ignored):
 *  - on a LUN of 512-byte sectors: bytes [VMFS_OBJ_OFFSET, 4096) only;
 *  - on a LUN of 4096-byte sectors, where no write can leave the record
 *    out: a compare-and-write of the whole block (through the primitive
 *    the LUN offers, as lock_ctx_open picks it without flags: a handle
 *    whose lock context was forced to the other one must not carry
 *    object writes, SPEC §5.2) whose new bytes are the lock record as
 *    read and the new object.  When the block changed in between
 *    (someone's lock change), it is written again over what is there
 *    now, at once the first time and then with backoff, for at most
 *    LOCK_PRIM_WAIT_MS (-EBUSY after that).  A LUN with neither primitive
 *    can hold no lock at all: the block is read and written back with the
 *    record as found.
 * Returns 0 or a negative error; -ETIMEDOUT / -EIO leave the outcome
 * unknown, as for any write.
 */
int lock_obj_write(struct lun *lun, const void *img, uint64_t addr);

/* One metadata block image to write home (lock_md_writev). */
struct lock_md_blk {
	const void *img;       /* VMFS_MD_BLOCK_SIZE bytes, lun_buf_alloc'd */
	uint64_t addr;
	bool lockable;         /* write the object part only (lock_obj_write) */
};

/*
 * Write n block images home: a plain block whole, a lockable one as
 * lock_obj_write does.  Where no compare-and-write is needed (every block
 * on a 512-byte-sector LUN) the writes go to the LUN together, in
 * lun_submit batches.  0 or the first error.
 */
int lock_md_writev(struct lun *lun, const struct lock_md_blk *blks,
		   unsigned n);
/* lock_md_writev of one block. */
int lock_md_write(struct lun *lun, const void *img, uint64_t addr,
		  bool lockable);

/*
 * Write the heartbeat region at offset off: a lockable header block with
 * nslots and the default timing, then nslots free slot blocks.  Batched;
 * returns 0 or a negative error.
 */
int hb_region_format(struct lun *lun, uint64_t off, uint32_t nslots);

struct hb;

struct hb_opts {
	const uint8_t *host_uuid;     /* VMFS_UUID_SIZE bytes */
	const char *hostname;         /* display only */
	const char *addr;             /* cluster address, may be NULL */
	uint32_t lease_ms;            /* 0: the region's default */
	uint64_t journal_offset;      /* journal of slot 0 ... */
	uint64_t journal_size;        /* ... and the size of each */
	unsigned prim;                /* LOCK_PRIM_*; 0: the LUN's best */
	/*
	 * Another handle of the same LUN (the volume's data handle) whose
	 * writes must stop with our lease, or NULL.  hb_join arms the write
	 * gate (lun_gate_arm) of it and of the heartbeat's own handle, whose
	 * slot sector alone is exempt; every renewal moves the deadline on.
	 */
	struct lun *gate_lun;
	/* Advertise VMFS_HB_F_ASKS: the engine reads other hosts' wants
	 * and lets go of the locks they name (hb_want). */
	bool asks;
	/*
	 * Called once when we fenced ourselves: from the renewal thread, or
	 * from whichever thread's write found the lease run out.  Both luns
	 * are fenced by then.
	 */
	void (*on_fence)(void *ctx, const char *why);
	void *ctx;
};

/*
 * Claim a heartbeat slot (a free one, or this host's own left over from a
 * crash) with compare-and-write and start renewing it.  On a LUN without
 * COMPARE AND WRITE every write of the slot goes through RESERVE, read,
 * compare, write, RELEASE instead (the lock manager's primitive).
 * o->prim forces one of the two.  -EUSERS when every slot is held by
 * another host, -EOPNOTSUPP when the LUN lacks the forced primitive (or
 * has neither), writing nothing.
 */
int hb_join(struct lun *lun, uint64_t hb_offset, const struct hb_opts *o,
	    struct hb **out);
/*
 * Stop renewing and free the slot (compare-and-write, either primitive),
 * then disarm the write gates: call it after the last write through
 * either handle.  A host whose lease ran out (it fences then, if it had
 * not) leaves its slot as it is, for the next mount or a survivor to
 * take over.
 */
int hb_leave(struct hb *hb);
uint32_t hb_slot_index(const struct hb *hb);
/* The memory (MiB) this host has for more VMs, for other hosts' HA
 * placement: written into the slot from the next renewal on (0: none
 * advertised, as before the first call). */
void hb_set_vm_free(struct hb *hb, uint64_t mib);
/*
 * Disk-only asks (docs/PROTOCOL.md §9a).  hb_want puts "this host waits
 * for the lock at addr" in the slot with a new sequence (returned) and
 * has the renewal thread write the slot now rather than at its time;
 * addr 0 takes the want back (written at the next renewal).  hb_busy
 * answers another host's want "kept for files open here" the same way
 * (written now).  Neither waits for the write.
 */
uint32_t hb_want(struct hb *hb, uint64_t addr, bool excl);
void hb_busy(struct hb *hb, uint32_t slot, uint32_t seq, uint64_t addr);
/* LOCK_PRIM_ATS or LOCK_PRIM_RESERVE: what the slot's writes go through. */
unsigned hb_primitive(const struct hb *hb);
uint64_t hb_generation(const struct hb *hb);
/* How long the last successful renewal took, from its start to its
 * answer, and the longest one since the join (ms; 0: none yet).  Set
 * against the fence time, it says how close the host came to fencing. */
void hb_renew_times(struct hb *hb, uint32_t *last_ms, uint32_t *max_ms);
void hb_timeouts_get(const struct hb *hb, struct hb_timeouts *t);

/* One slot as read from disk. */
struct hb_slot_info {
	uint32_t slot;
	enum vmfs_hb_state state;
	uint8_t host_uuid[VMFS_UUID_SIZE];
	uint64_t hb_gen, counter;
	uint32_t lease_ms;
	char hostname[65];
	uint64_t vm_free_mib;         /* what it advertises (hb_set_vm_free) */
	uint32_t flags;               /* VMFS_HB_F_* */
	uint32_t want_seq;            /* hb_want */
	uint64_t want_addr;
	uint32_t busy_slot, busy_seq; /* hb_busy */
	uint64_t busy_addr;
	bool live;                    /* hb_survey with watch: counter moved */
};

/*
 * Read every slot that is not free into out (at most max; *n set).  With
 * watch, sample twice, the advertised lease (plus one renewal) apart on
 * our own monotonic clock, and set live for slots whose counter moved;
 * without, live is false everywhere.
 */
int hb_survey(struct lun *lun, uint64_t hb_offset, bool watch,
	      struct hb_slot_info *out, uint32_t max, uint32_t *n);
/* The same over nslots slots from slot0, without the region header (for
 * fsck when the header itself is damaged). */
int hb_survey_slots(struct lun *lun, uint64_t slot0, uint32_t nslots,
		    bool watch, struct hb_slot_info *out, uint32_t max,
		    uint32_t *n);

/*
 * Recovery of a dead host's slot (lockmgr/hbrecover.c, SPEC §6.3).
 * hb_recover_claim compare-and-writes slot seen->slot from exactly the
 * state seen describes (ACTIVE whose counter stood still for its lease,
 * or REPLAYING whose recoverer stopped moving it) to REPLAYING with the
 * counter + 1: -VMFS_E_MISCOMPARE when the slot changed since (another
 * survivor won, or the host is alive after all).  The winner replays the
 * journal at hb_recover_journal(), calls hb_recover_renew at least once a
 * renewal interval meanwhile, and ends with hb_recover_done(free_slot =
 * true) once the journal is clean: the slot becomes FREE and the dead
 * host's lock records breakable.  free_slot = false abandons (the slot
 * stays REPLAYING and stops moving: the next survivor takes over).
 */
struct hb_recovery;
int hb_recover_claim(struct lun *lun, unsigned prim, uint64_t hb_offset,
		     const struct hb_slot_info *seen, uint32_t io_timeout_ms,
		     struct hb_recovery **out);
int hb_recover_renew(struct hb_recovery *r);
uint64_t hb_recover_journal(const struct hb_recovery *r);
int hb_recover_done(struct hb_recovery *r, bool free_slot);

/* Size in bytes of a heartbeat region with nslots slots. */
static inline uint64_t hb_region_bytes(uint32_t nslots)
{
	return (uint64_t)(nslots + 1) * VMFS_MD_BLOCK_SIZE;
}

/* ==== lock manager: acquire, release, upgrade, downgrade, break ======== */

/*
 * The lock of a lockable block (SPEC §1.3, §5) is changed only by a
 * compare-and-write of its whole record against the bytes last read, with
 * the generation + 1, through one of two primitives (SPEC §5.2): COMPARE
 * AND WRITE where the LUN has it, else RESERVE, read, compare in memory,
 * write, RELEASE.  Nothing is cached: every call reads the record, so the
 * LUN is the only truth and a host never needs another host's cooperation
 * to make progress against a dead one.
 *
 * The engine's cluster layer (vol/cluster.c) takes every lock through
 * it, and `vmfs locks` reads records with it.
 */

/* A holder of a lock: the owner of an exclusive lock or one host sharing
 * it, identified as SPEC §5 "Validity of a holder" says. */
struct lock_holder {
	uint8_t uuid[VMFS_UUID_SIZE];
	uint32_t slot;      /* its heartbeat slot */
	uint64_t hb_gen;    /* its heartbeat generation when it took the lock */
};

/*
 * The liveness oracle: 1 if holder h still holds the lock, 0 if lock_break
 * may remove it, or a negative error when it cannot tell.
 * lock_hbwatch_holds and lock_hbwatch_is_live are the real ones (below);
 * tests pass their own.
 */
typedef int (*lock_live_fn)(void *arg, const struct lock_holder *h);

/* Who we are. */
struct lock_host {
	struct lock_holder self;
	lock_live_fn is_live;   /* used by lock_break only */
	void *live_arg;
};

/* self from a joined heartbeat (uuid as given to hb_join); the oracle
 * fields are cleared for the caller to set. */
void lock_host_from_hb(struct lock_host *host, const struct hb *hb,
		       const uint8_t *uuid);

/*
 * A lock record as read from disk.  The owner of an EXCLUSIVE lock is
 * holders[0] (nholders = 1), so "who holds it" is always holders[0 ..
 * nholders); FREE has none.  raw is the record exactly as read: what the
 * next compare-and-write of it expects (lock_break).
 */
struct lock_state {
	uint64_t addr;
	enum vmfs_lock_mode mode;
	uint64_t gen;
	uint32_t nholders;
	struct lock_holder holders[VMFS_LOCK_MAX_HOLDERS];
	uint8_t raw[VMFS_LOCK_SIZE];
};

/* Primitive choice (lock_ctx_open flags); neither: the LUN decides. */
#define LOCK_PRIM_ATS     0x1u  /* force COMPARE AND WRITE */
#define LOCK_PRIM_RESERVE 0x2u  /* force reserve/read/compare/write/release */

/* "ats", "reserve" or "auto" (0: the LUN decides) into *flags, for
 * --lock-primitive; -EINVAL for anything else. */
int lock_prim_parse(const char *s, unsigned *flags);
/* "ats", "reserve", or "auto" for 0. */
const char *lock_prim_name(unsigned prim);

/* The primitive flags (a LOCK_PRIM_* or 0) choose on lun: the forced one
 * if the LUN has it, else ATS where it has it, else RESERVE; 0 when it
 * lacks what is asked for. */
unsigned lock_prim_pick(const struct lun *lun, unsigned flags);

struct lock_ctx;

/*
 * A lock context over lun for host (copied).  Without a LOCK_PRIM_* flag
 * the LUN's capabilities pick: ATS if it has it, else RESERVE.
 * -EOPNOTSUPP when the forced (or every) primitive is missing, -EINVAL
 * for both flags at once.  A context may be used by many threads.
 */
int lock_ctx_open(struct lun *lun, const struct lock_host *host,
		  unsigned flags, struct lock_ctx **out);
void lock_ctx_close(struct lock_ctx *ctx);
/* LOCK_PRIM_ATS or LOCK_PRIM_RESERVE: what the context uses. */
unsigned lock_ctx_primitive(const struct lock_ctx *ctx);

/*
 * Every call below reads the record of the lockable block at addr (a
 * multiple of VMFS_MD_BLOCK_SIZE), decides, and writes the changed record
 * with one compare-and-write; out (may be NULL) gets the record as it is
 * afterwards, or, on -EBUSY and -EPERM, as found (holders name who is in
 * the way).  Returns 0, or:
 *   -EBUSY          the lock is held in a way that conflicts (after
 *                   retrying until timeout_ms), or 13 hosts share it;
 *   -EPERM          release/upgrade/downgrade of a lock we do not hold;
 *   -EINVAL         a mode change acquire cannot make (use upgrade/
 *                   downgrade), or bad arguments;
 *   -VMFS_E_RESERVED the LUN stayed reserved by another host;
 *   -VMFS_E_CORRUPT / -VMFS_E_BAD_* the record does not verify (run fsck);
 *   -ETIMEDOUT, -EIO  the write's outcome is unknown: lock_read and look
 *                   for ourselves before trusting either answer.
 * timeout_ms bounds the wait for conflicting holders: 0 tries once.
 * Whatever the timeout, a miscompare (the record changed under us) is
 * re-read and decided again, and a reservation held by another host's
 * lock change is waited for, for at most LOCK_PRIM_WAIT_MS (or the LUN's
 * break time of a hold left behind, lun_reserve_break_ms, if longer):
 * both are transient, not a holder in the way.  Waits back off exponentially with
 * jitter; nothing spins.
 */
#define LOCK_PRIM_WAIT_MS 2000u

/*
 * Take the lock in mode (EXCLUSIVE, READONLY or MULTIWRITER).  A free
 * lock becomes ours; a shared lock in the same mode adds us to its
 * holders.  Already ours in that mode: 0 without a write.
 */
int lock_acquire(struct lock_ctx *ctx, uint64_t addr, enum vmfs_lock_mode mode,
		 unsigned timeout_ms, struct lock_state *out);
/* Leave the lock: FREE (sealed, generation + 1) once nobody holds it. */
int lock_release(struct lock_ctx *ctx, uint64_t addr, struct lock_state *out);
/* READONLY held by us alone -> EXCLUSIVE; waits up to timeout_ms for the
 * other readers to leave. */
int lock_upgrade(struct lock_ctx *ctx, uint64_t addr, unsigned timeout_ms,
		 struct lock_state *out);
/* EXCLUSIVE held by us -> READONLY held by us. */
int lock_downgrade(struct lock_ctx *ctx, uint64_t addr, struct lock_state *out);
/* Decode the current record (for `vmfs locks`). */
int lock_read(struct lock_ctx *ctx, uint64_t addr, struct lock_state *out);
/*
 * The same decode of a record already read (VMFS_LOCK_SIZE bytes at buf,
 * the record of the lockable block at addr), for a scan that reads many
 * records in one batch: 0, or -VMFS_E_CORRUPT / -VMFS_E_BAD_*.
 */
int lock_state_from_disk(const void *buf, uint64_t addr, struct lock_state *out);

/*
 * Break the dead holders out of the record *expected (as read by
 * lock_read or returned in an -EBUSY): every holder for which the oracle
 * (lock_host.is_live) returns 0 is removed, and the lock becomes FREE when none is left (a FREE
 * *expected: 0, nothing to do).  broken (may be NULL) gets the removed
 * holders in its holders[], and the record now on disk in its other
 * fields.  -EBUSY when the owner of an exclusive lock, or every holder
 * of a shared one, still holds it; -VMFS_E_MISCOMPARE when the record is
 * no longer *expected (someone else changed or broke it: re-read and
 * decide again).  Two hosts breaking the same record: exactly one wins.
 *
 * The caller's ordering: a holder is broken only after its journal was
 * replayed (SPEC §5, §6.3, §7), so that nothing the dead host committed
 * is lost or lands over the next holder's writes.  The survivor that wins
 * the dead host's slot (compare-and-write to REPLAYING) replays its
 * journal and then breaks with lock_hbwatch_is_live; every other host
 * breaks with lock_hbwatch_holds, which lets it remove only holders whose
 * slot has moved on.  lock_break itself does not replay.
 */
int lock_break(struct lock_ctx *ctx, const struct lock_state *expected,
	       struct lock_state *broken);

/*
 * The real liveness oracle, over reads of the heartbeat region at
 * hb_offset (lockmgr/hbwatch.c).  What has become of a holder:
 */
enum lock_holder_fate {
	/* Its slot shows it ACTIVE with its uuid and hb_gen, and this
	 * watcher has not seen its (hb_gen, counter) stand still for its
	 * advertised lease plus one renewal on our CLOCK_MONOTONIC, counted
	 * from the first read that showed that pair.  So a holder only turns
	 * DEAD for a watcher that looked at least that long ago: poll. */
	LOCK_HOLDER_LIVE = 1,
	/* Its slot still names it but its counter stopped, or the slot is
	 * REPLAYING or damaged: its journal may need replaying first. */
	LOCK_HOLDER_DEAD = 0,
	/* Its slot is free or names another host or a later generation: the
	 * slot moved on only after its journal was replayed, so its locks
	 * may be broken now. */
	LOCK_HOLDER_GONE = 2
};
struct lock_hbwatch;
/* Thread-safe; lun must outlive the watcher. */
int lock_hbwatch_open(struct lun *lun, uint64_t hb_offset,
		      struct lock_hbwatch **out);
void lock_hbwatch_close(struct lock_hbwatch *w);
/* One LOCK_HOLDER_* (one sector read), or a negative error. */
int lock_hbwatch_judge(struct lock_hbwatch *w, const struct lock_holder *h);
/*
 * When this watcher first saw h's current (hb_gen, counter) pair, on our
 * CLOCK_MONOTONIC, as of its last judgement of h (no read); -1 if it has
 * not judged h in this generation.  A holder whose value is not later
 * than a moment t has not renewed since t, as far as this watcher saw.
 */
int64_t lock_hbwatch_seen_ms(struct lock_hbwatch *w,
			     const struct lock_holder *h);
/*
 * Two lock_live_fn over a watcher (pass it as live_arg):
 * lock_hbwatch_holds counts DEAD holders as still holding: what every
 * host uses, so that nobody breaks a lock before the dead holder's
 * journal is replayed.  lock_hbwatch_is_live counts only LIVE ones
 * (SPEC §5): for the survivor that marked the dead holder's slot
 * REPLAYING and replayed its journal.
 */
int lock_hbwatch_holds(void *watcher, const struct lock_holder *h);
int lock_hbwatch_is_live(void *watcher, const struct lock_holder *h);

/*
 * The cluster fast path (lockmgr/clusternet.c): one mounted volume's
 * membership of the corosync CPG group "vmfs-<volume uuid>", through
 * which hosts ask each other to hand locks over (docs/PROTOCOL.md §9).
 * The disk stays the only authority: a message can only make this host
 * release a lock (always safe) or wake a host that waits for one (it
 * then reads the disk again).  Nothing here ever breaks a lock, and
 * leaving the group says nothing about a host's heartbeat.
 *
 * One thread owns the corosync handles (CPG, quorum, cmap): it polls
 * their fds, dispatches, and does what the callbacks recorded once the
 * dispatch has returned.  corosync may be absent when cn_start runs, die
 * or restart: the thread says why the fast path is down (cn_view.why)
 * and tries again every second.  Every function is thread-safe.
 */
struct cn;

#define CN_HOST_NAME_MAX 64       /* the heartbeat slot's field */
#define CN_MAX_MEMBERS   64
#define CN_WHY_MAX       160

/* Who this host is in the volume's heartbeat. */
struct cn_self {
	uint8_t vol_uuid[VMFS_UUID_SIZE];
	uint8_t host_uuid[VMFS_UUID_SIZE];
	uint32_t slot;
	uint64_t hb_gen;
	char host_name[CN_HOST_NAME_MAX + 1];
};

/* A process in the group.  known: it said who it is (a HELLO). */
struct cn_member {
	uint32_t nodeid, pid;
	bool known;
	uint8_t host_uuid[VMFS_UUID_SIZE];
	uint32_t slot;
	uint64_t hb_gen;
	char host_name[CN_HOST_NAME_MAX + 1];
	/* corosync's nodelist entry of nodeid ("" when cmap has none). */
	char node_name[CN_HOST_NAME_MAX + 1];
	char node_addr[64];      /* ring0_addr */
};

struct cn_view {
	bool up;                  /* in the group now */
	bool quorate;
	uint32_t my_nodeid;
	uint32_t n;               /* members, this process included */
	struct cn_member m[CN_MAX_MEMBERS];
	char why[CN_WHY_MAX];     /* !up: why not */
	/* Messages dropped since cn_start (logged, rate-limited). */
	uint64_t rejected;
	/* Times the thread got into the group (1 + rejoins after corosync
	 * came back). */
	uint32_t joins;
};

/* Called on the fast path's thread, never with its lock held. */
struct cn_ops {
	/* left: member m left the group (or this host lost corosync or was
	 * cut off from m); else m said who it is for the first time. */
	void (*membership)(void *arg, bool left, const struct cn_member *m);
	/* A member asks us to release the lock at addr (it wants it in
	 * want_mode): vol_cluster_release_request's answer (0 released,
	 * -EINPROGRESS cn_released follows, -EBUSY kept). */
	int (*release_req)(void *arg, uint64_t addr, uint32_t want_mode);
	/* Member m sent us (or everyone) len bytes of data (cn_send_app);
	 * data[len] is 0.  Nothing in it is trusted for safety. */
	void (*app)(void *arg, const struct cn_member *m, const char *data,
		    size_t len);
};

/* Starts the thread; succeeds without corosync (the view says why). */
int cn_start(const struct cn_self *self, const struct cn_ops *ops, void *arg,
	     struct cn **out);
/* Leave the group and join the thread; waiting askers get -ENOTCONN. */
void cn_stop(struct cn *cn);
/*
 * Ask holder h to release the lock at addr, which we want in mode, and
 * wait up to timeout_ms for a RELEASED of addr (from anyone).
 * 0: answered, read the disk again; -ETIMEDOUT: no answer; -EBUSY: h
 * keeps it (files open there: fall back to the disk); -ENOTCONN: the fast
 * path is down, h is not a known member, or it left while we waited.
 */
int cn_ask_release(struct cn *cn, const struct lock_holder *h, uint64_t addr,
		   uint32_t mode, unsigned timeout_ms);
/* Tell the group that the lock at addr, which a member asked for, is
 * released now. */
void cn_released(struct cn *cn, uint64_t addr);
/* The longest data cn_send_app sends. */
#define CN_APP_MAX 4000
/*
 * Send len bytes of data to member h (NULL: every member), delivered
 * through its ops.app in the group's order.  0 once queued; -ENOTCONN:
 * the fast path is down or h is not a known member; -E2BIG.
 */
int cn_send_app(struct cn *cn, const struct lock_holder *h, const void *data,
		size_t len);
/* Is h (uuid, slot and generation) a known member now? */
bool cn_is_member(struct cn *cn, const struct lock_holder *h);
void cn_view_get(struct cn *cn, struct cn_view *out);

#endif
