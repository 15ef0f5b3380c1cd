/*
 * The iSCSI backend's persistent reservations (docs/PROTOCOL.md §12):
 * the probe (REPORT CAPABILITIES), storage fencing (the open key, the
 * host key under Write Exclusive - Registrants Only, PREEMPT of a dead
 * host, telling a preemption from a passing SCSI-2 reservation) and the
 * lock-LU mutex used on targets without COMPARE AND WRITE.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "vmfs/log.h"

#include "vmfs/clock.h"
#include "iscsi_int.h"

struct isc_prin_arg {
	int lun_nr;
	int sa;
	uint16_t len;
};

static struct scsi_task *isc_issue_prin(struct isc_lun *il,
		struct iscsi_context *ctx, void *arg, struct isc_cmd *c)
{
	struct isc_prin_arg *a = arg;

	(void)il;
	return iscsi_persistent_reserve_in_task(ctx, a->lun_nr, a->sa,
						a->len, lun_isc_cmd_cb, c);
}

/*
 * A PERSISTENT RESERVE IN that ran (with rc): take(unmarshalled data,
 * out) reads the answer while the task is alive, then c is freed.  -EIO
 * when the data cannot be decoded.
 */
static int isc_prin_take(struct isc_cmd *c, int rc,
			 void (*take)(void *data, void *out), void *out)
{
	void *data;

	if (!rc) {
		data = scsi_datain_unmarshall(c->task);
		if (data)
			take(data, out);
		else
			rc = -EIO;
	}
	lun_isc_cmds_free(c, 1);
	return rc;
}

/* One PERSISTENT RESERVE IN on the control session. */
static int isc_prin(struct isc_lun *il, int lun_nr, int sa, uint16_t len,
		    void (*take)(void *data, void *out), void *out)
{
	struct isc_prin_arg a = { .lun_nr = lun_nr, .sa = sa, .len = len };
	struct isc_cmd c;
	int rc;

	pthread_mutex_lock(&il->mu);
	rc = lun_isc_run_locked(il, isc_issue_prin, &a, &c, lun_isc_deadline(il));
	rc = isc_prin_take(&c, rc, take, out);
	pthread_mutex_unlock(&il->mu);
	return rc;
}

static void isc_take_caps(void *data, void *out)
{
	struct scsi_persistent_reserve_in_report_capabilities *r = data;
	struct lun_probe *p = out;

	p->pr = LUN_PROBE_YES;
	p->pr_types = r->persistent_reservation_type_mask;
}

/* PERSISTENT RESERVE IN, REPORT CAPABILITIES: which PR types exist. */
int lun_isc_probe_pr(struct isc_lun *il)
{
	int rc = isc_prin(il, il->lun_nr, SCSI_PERSISTENT_RESERVE_REPORT_CAPABILITIES, 8,
			  isc_take_caps, &il->probe);

	if (rc == -EOPNOTSUPP || rc == -EINVAL) {
		il->probe.pr = LUN_PROBE_NO;
		rc = 0;
	}
	return rc;
}

/* ---- persistent reservations: storage fencing ------------------------------ */

struct isc_prout_arg {
	int lun_nr, sa, type;
	struct scsi_persistent_reserve_out_basic p;
};

static struct scsi_task *isc_issue_prout(struct isc_lun *il,
		struct iscsi_context *ctx, void *arg, struct isc_cmd *c)
{
	struct isc_prout_arg *a = arg;

	(void)il;
	return iscsi_persistent_reserve_out_task(ctx, a->lun_nr, a->sa,
		SCSI_PERSISTENT_RESERVE_SCOPE_LU, a->type, &a->p, lun_isc_cmd_cb, c);
}

static int isc_prout_on(struct isc_lun *il, int lun_nr, int sa, int type,
			uint64_t key, uint64_t sa_key)
{
	struct isc_prout_arg a = { .lun_nr = lun_nr, .sa = sa, .type = type };

	a.p.reservation_key = key;
	a.p.service_action_reservation_key = sa_key;
	return lun_isc_run(il, isc_issue_prout, &a, lun_isc_deadline(il));
}

/* On the data LU. */
static int isc_prout(struct isc_lun *il, int sa, int type, uint64_t key,
		     uint64_t sa_key)
{
	return isc_prout_on(il, il->lun_nr, sa, type, key, sa_key);
}

/*
 * A registration change on every session of the handle (each is a nexus
 * of its own): the control session first, then the data sessions.
 */
static int isc_prout_all(struct isc_lun *il, int sa, uint64_t key,
			 uint64_t sa_key)
{
	struct isc_prout_arg a = { .lun_nr = il->lun_nr, .sa = sa };
	struct isc_cmd c;
	unsigned i;
	int rc;

	rc = isc_prout(il, sa, 0, key, sa_key);
	a.p.reservation_key = key;
	a.p.service_action_reservation_key = sa_key;
	for (i = 0; !rc && i < il->nextra; i++) {
		struct isc_sess_ref x = lun_isc_sess_ref(il, i + 1);

		pthread_mutex_lock(x.mu);
		rc = lun_isc_run_on(il, &x, isc_issue_prout, &a, &c,
				    lun_isc_deadline(il));
		lun_isc_cmds_free(&c, 1);
		pthread_mutex_unlock(x.mu);
	}
	return rc;
}

struct isc_resv {
	uint64_t key;	/* 0: no reservation */
	int type;
};

static void isc_take_resv(void *data, void *out)
{
	struct scsi_persistent_reserve_in_read_reservation *r = data;
	struct isc_resv *v = out;

	v->key = r->reserved ? r->reservation_key : 0;
	v->type = r->reserved ? r->pr_type : 0;
}

/* READ RESERVATION: the holder's key and type, or key 0 when none. */
static int isc_read_reservation(struct isc_lun *il, int lun_nr,
				uint64_t *key, int *type)
{
	struct isc_resv v = { 0 };
	int rc = isc_prin(il, lun_nr, SCSI_PERSISTENT_RESERVE_READ_RESERVATION, 32,
			  isc_take_resv, &v);

	*key = v.key;
	*type = v.type;
	return rc;
}

struct isc_keys {
	uint64_t *keys;
	unsigned max, n;
};

static void isc_take_keys(void *data, void *out)
{
	struct scsi_persistent_reserve_in_read_keys *r = data;
	struct isc_keys *k = out;

	for (int i = 0; i < r->num_keys && k->n < k->max; i++)
		k->keys[k->n++] = r->keys[i];
}

int lun_iscsi_read_keys(struct lun *lun, uint64_t *keys, unsigned max,
			unsigned *n)
{
	struct isc_keys k = { .keys = keys, .max = max };
	int rc = isc_prin(lun_isc_of(lun), lun_isc_of(lun)->lun_nr,
			  SCSI_PERSISTENT_RESERVE_READ_KEYS,
			  8 + 8 * 64, isc_take_keys, &k);

	*n = k.n;
	return rc;
}

/* PERSISTENT RESERVE IN READ RESERVATION of the lock LU where the URL
 * names one, else of the LUN: the holder's key, 0 when none. */
int lun_iscsi_read_holder(struct lun *lun, uint64_t *key)
{
	struct isc_lun *il = lun_isc_of(lun);
	int type;

	return isc_read_reservation(il, il->lock_lun >= 0 ? il->lock_lun :
				    il->lun_nr, key, &type);
}

/*
 * A read-write handle registers a key of its own at open, so that it may
 * write while hosts hold the fencing reservation (Write Exclusive - All
 * Registrants: only registered nexuses write).  Until a mount replaces it
 * with its host key (lun_pr_register) it is an "open key": the top bit
 * set, the rest random, never what a host key looks like, so no survivor
 * ever preempts it.  Without a reservation on the LUN a registration
 * changes nothing.
 */
int lun_isc_pr_open(struct isc_lun *il)
{
	uint64_t key;
	int rc;

	if (il->probe.pr != LUN_PROBE_YES || (il->lun.flags & LUN_RDONLY))
		return 0;
	if (getrandom(&key, sizeof(key), 0) != sizeof(key))
		key = (uint64_t)vmfs_mono_us() * 0x9E3779B97F4A7C15ull ^
		      (uint64_t)getpid();
	key |= LUN_PR_OPEN_KEY_BIT;
	rc = isc_prout_all(il,
		SCSI_PERSISTENT_RESERVE_REGISTER_AND_IGNORE_EXISTING_KEY, 0, key);
	if (rc)
		return rc;
	atomic_store(&il->pr_key, key);
	return 0;
}

/*
 * The fencing reservation's type.  Registrants Only, not All Registrants:
 * tgt's PREEMPT of the registration that made an All Registrants
 * reservation frees that registration but keeps pointing at it as the
 * reservation's holder, so that the target reports a reservation of type
 * 0 held by whichever registration reuses the memory (the next host to
 * register: its mount then failed), and checks writes against freed
 * memory.  Under Registrants Only, PREEMPT of the holder hands the
 * reservation to the preempting host.  A reservation of the old type is
 * still taken for vmfs's.
 */
static bool isc_fencing_type(int type)
{
	return type == SCSI_PERSISTENT_RESERVE_TYPE_WRITE_EXCLUSIVE_REGISTRANTS_ONLY ||
	       type == SCSI_PERSISTENT_RESERVE_TYPE_WRITE_EXCLUSIVE_ALL_REGISTRANTS;
}

/*
 * Make the fencing reservation with key unless one is in place: 0 when
 * it is, -VMFS_E_PR_FOREIGN when a reservation of another kind is,
 * -VMFS_E_RESERVED when the RESERVE met a conflict (look again).  *type
 * gets the type in place.
 */
static int isc_reserve_fencing_type(struct isc_lun *il, uint64_t key,
				    int *type)
{
	uint64_t holder;
	int rc;

	rc = isc_read_reservation(il, il->lun_nr, &holder, type);
	if (rc || isc_fencing_type(*type))
		return rc;
	if (holder || *type)
		return -VMFS_E_PR_FOREIGN;
	*type = SCSI_PERSISTENT_RESERVE_TYPE_WRITE_EXCLUSIVE_REGISTRANTS_ONLY;
	return isc_prout(il, SCSI_PERSISTENT_RESERVE_RESERVE, *type, key, 0);
}

static int isc_reserve_fencing(struct isc_lun *il, uint64_t key)
{
	int type;

	return isc_reserve_fencing_type(il, key, &type);
}

int lun_isc_pr_register(struct lun *lun, uint64_t key)
{
	struct isc_lun *il = lun_isc_of(lun);
	uint64_t old;
	int rc, tries;

	if (il->probe.pr != LUN_PROBE_YES)
		return -EOPNOTSUPP;
	old = atomic_load(&il->pr_key);
	/* From our own key to the host key: one command on this nexus. */
	rc = isc_prout_all(il, old ? SCSI_PERSISTENT_RESERVE_REGISTER :
			   SCSI_PERSISTENT_RESERVE_REGISTER_AND_IGNORE_EXISTING_KEY,
			   old, key);
	if (rc)
		return rc == -VMFS_E_RESERVED ? -VMFS_E_FENCED : rc;
	atomic_store(&il->pr_key, key);
	/*
	 * The fencing reservation: Write Exclusive - Registrants Only, made
	 * by the first host (it holds it; every registrant writes), and a
	 * nexus without a registration (a preempted host) cannot write.
	 * Two hosts making it at once: the loser's RESERVE is a conflict,
	 * so look again; so is a RESERVE that meets the reservation
	 * changing hands (a survivor's PREEMPT), which a later look finds
	 * in place or gone.
	 */
	for (tries = 0; tries < ISC_PR_RESERVE_TRIES; tries++) {
		rc = isc_reserve_fencing(il, key);
		if (rc != -VMFS_E_RESERVED)
			return rc;
		usleep(ISC_RES_POLL_MS * 1000 << tries);
	}
	return -EAGAIN;
}

/*
 * PREEMPT victim's registrations (every nexus registered with that key:
 * both handles of a mounted host).  A key that is not registered (never
 * was, or preempted already) is success: the host cannot write either
 * way.
 */
int lun_isc_pr_preempt(struct lun *lun, uint64_t victim)
{
	struct isc_lun *il = lun_isc_of(lun);
	uint64_t keys[64], mine;
	unsigned n, i;
	int rc, type;

	if (il->probe.pr != LUN_PROBE_YES)
		return -EOPNOTSUPP;
	mine = atomic_load(&il->pr_key);
	if (!mine)
		return -VMFS_E_FENCED;
	if (victim == mine)
		return -EINVAL;
	/* Without a reservation in place (its holder unmounted cleanly),
	 * taking the victim's registration away would not stop its writes:
	 * make it first.  A conflict means another host just made it. */
	rc = isc_reserve_fencing_type(il, mine, &type);
	if (rc == -VMFS_E_RESERVED)
		rc = isc_reserve_fencing_type(il, mine, &type);
	if (rc)
		return rc;
	rc = isc_prout(il, SCSI_PERSISTENT_RESERVE_PREEMPT, type, mine, victim);
	if (rc != -VMFS_E_RESERVED)
		return rc;
	/* Conflict: either the victim is not registered, or we are not. */
	rc = lun_iscsi_read_keys(lun, keys, 64, &n);
	if (rc)
		return rc;
	for (i = 0; i < n; i++)
		if (keys[i] == mine)
			return 0;	/* the victim's key is gone */
	lun_fence(lun);
	return -VMFS_E_FENCED;
}

/*
 * A write met RESERVATION CONFLICT while we hold a registration: either
 * another host preempted us (our key is gone: fence, true) or another
 * initiator holds a SCSI-2 reservation for a moment (false: retry).  A
 * fenced handle also gives back a SCSI-2 reservation it may hold: tgt
 * does not check RESERVE(6) against persistent reservations, so a
 * preempted host's RESERVE succeeds, and it must not keep it.
 */
bool lun_isc_pr_lost(struct lun *lun)
{
	struct isc_lun *il = lun_isc_of(lun);
	uint64_t keys[64], mine;
	unsigned n, i;

	mine = atomic_load(&il->pr_key);
	if (lun_iscsi_read_keys(lun, keys, 64, &n))
		return false;	/* cannot tell: the deadline decides */
	for (i = 0; i < n; i++)
		if (keys[i] == mine)
			return false;
	lun_fence(lun);
	lun_isc_run(il, lun_isc_issue_release6, NULL, lun_isc_deadline(il));
	return true;
}

/* ---- a lost session: the registration restored ----------------------------- */

/* PERSISTENT RESERVE OUT on one session, no restore (lun_isc_rearm's). */
static int isc_prout_raw(struct isc_lun *il, struct iscsi_context *ctx,
			 bool *broken, int path, int sa, int type, uint64_t key,
			 uint64_t sa_key, int64_t deadline_ms)
{
	struct isc_prout_arg a = { .lun_nr = il->lun_nr, .sa = sa,
				   .type = type };
	struct isc_cmd c;
	int rc;

	a.p.reservation_key = key;
	a.p.service_action_reservation_key = sa_key;
	rc = lun_isc_run_raw(il, ctx, broken, path, isc_issue_prout, &a, &c,
			     deadline_ms);
	lun_isc_cmds_free(&c, 1);
	return rc;
}

struct isc_read_arg {
	uint64_t lba;
	uint32_t len;
};

static struct scsi_task *isc_issue_read_raw(struct isc_lun *il,
		struct iscsi_context *ctx, void *arg, struct isc_cmd *c)
{
	struct isc_read_arg *a = arg;

	return iscsi_read16_task(ctx, il->lun_nr, a->lba, a->len,
				 (int)il->block, 0, 0, 0, 0, 0,
				 lun_isc_cmd_cb, c);
}

/*
 * The owner check (lun_set_owner_check): read its range on this session
 * and ask.  1: still ours (or no check), 0: not ours, < 0: error.
 */
static int isc_owner_check(struct isc_lun *il, struct iscsi_context *ctx,
			   bool *broken, int path, int64_t deadline_ms)
{
	struct lun *lun = &il->lun;
	struct isc_read_arg a;
	struct isc_cmd c;
	int rc;

	pthread_mutex_lock(&lun->owner_mu);
	if (!lun->owner_ok) {
		pthread_mutex_unlock(&lun->owner_mu);
		return 1;
	}
	a.lba = lun->owner_off / il->block;
	a.len = (uint32_t)((lun->owner_len + il->block - 1) / il->block *
			   il->block);
	rc = lun_isc_run_raw(il, ctx, broken, path, isc_issue_read_raw, &a, &c,
			     deadline_ms);
	if (!rc) {
		if (c.task->datain.size < (int)lun->owner_len)
			rc = -EIO;
		else
			rc = lun->owner_ok(c.task->datain.data +
					   lun->owner_off % il->block,
					   lun->owner_arg) ? 1 : 0;
	}
	lun_isc_cmds_free(&c, 1);
	pthread_mutex_unlock(&lun->owner_mu);
	return rc;
}

/*
 * A session was logged in again (lun_isc_session_restore): its nexus is
 * new, and the target knows no registration for it (tgt keeps the old
 * nexus's as an orphan; a target restart drops them all).  Register our
 * key on it, make the fencing reservation again if the target lost it,
 * and only then ask the owner whether we may: a survivor that took our
 * heartbeat slot over preempts our key after it did, so a registration
 * made before its PREEMPT is removed by it, and one made after is seen
 * here (the slot is no longer ours), dropped, and the handle fenced.
 * Nothing was issued on the session before.  -VMFS_E_FENCED then.
 */
int lun_isc_rearm(struct isc_lun *il, struct iscsi_context *ctx, bool *broken,
		  int path, int64_t deadline_ms)
{
	uint64_t key = atomic_load(&il->pr_key), holder;
	struct isc_prin_arg pa = { .lun_nr = il->lun_nr,
				   .sa = SCSI_PERSISTENT_RESERVE_READ_RESERVATION,
				   .len = 32 };
	struct isc_resv v = { 0 };
	struct isc_cmd c;
	int rc;

	if (!key)
		return 0;
	rc = isc_prout_raw(il, ctx, broken, path,
			   SCSI_PERSISTENT_RESERVE_REGISTER_AND_IGNORE_EXISTING_KEY,
			   0, 0, key, deadline_ms);
	if (rc)
		return rc;
	rc = lun_isc_run_raw(il, ctx, broken, path, isc_issue_prin, &pa, &c,
			     deadline_ms);
	rc = isc_prin_take(&c, rc, isc_take_resv, &v);
	if (rc)
		return rc;
	holder = v.key;
	if (!holder && !v.type) {
		/* Lost with the target's state (or its holder unmounted):
		 * a conflict means another host just made it. */
		rc = isc_prout_raw(il, ctx, broken, path,
				   SCSI_PERSISTENT_RESERVE_RESERVE,
				   SCSI_PERSISTENT_RESERVE_TYPE_WRITE_EXCLUSIVE_REGISTRANTS_ONLY,
				   key, 0, deadline_ms);
		if (rc && rc != -VMFS_E_RESERVED)
			return rc;
		if (!rc)
			qb_log(LOG_NOTICE, "lun %s: the fencing reservation "
			       "was gone (the target restarted?): made it "
			       "again with key 0x%016" PRIx64, il->lun.name,
			       key);
	}
	rc = isc_owner_check(il, ctx, broken, path, deadline_ms);
	if (rc < 0)
		return rc;
	if (rc == 1)
		return 0;
	(void)isc_prout_raw(il, ctx, broken, path,
			    SCSI_PERSISTENT_RESERVE_REGISTER, 0, key, 0,
			    deadline_ms);
	qb_log(LOG_CRIT, "lun %s: a session was lost, and this host no longer "
	       "owns its heartbeat slot: its key 0x%016" PRIx64 " is not "
	       "registered again; fencing the handle", il->lun.name, key);
	lun_fence(&il->lun);
	return -VMFS_E_FENCED;
}

/* A clean close gives the registration back (the last registrant's
 * going also ends the fencing reservation). */
void lun_isc_pr_close(struct isc_lun *il)
{
	if (il->lock_lun >= 0 && il->lock_key && !il->broken)
		isc_prout_on(il, il->lock_lun, SCSI_PERSISTENT_RESERVE_REGISTER,
			     0, il->lock_key, 0);
	if (il->pr_key && !il->broken && !atomic_load(&il->lun.fenced))
		isc_prout_all(il, SCSI_PERSISTENT_RESERVE_REGISTER, il->pr_key,
			      0);
}

/* ---- the lock-LU mutex ------------------------------------------------------ */

/*
 * On a target with persistent reservations but without COMPARE AND
 * WRITE (tgt), the reserve/read/compare/write/release path needs a mutex
 * that neither blocks the other hosts' I/O (SCSI-2 RESERVE(6) does: every
 * command of another initiator meets RESERVATION CONFLICT while it is
 * held) nor survives the fencing of its holder (tgt does not check
 * RESERVE(6) against persistent reservations, and PREEMPT cannot remove
 * it).  docs/PROTOCOL.md section 12 has the argument; in short:
 *  - the mutex is a Write Exclusive persistent reservation on a small
 *    LU of its own (the URL's ?lock_lun=N), whose data nobody uses;
 *  - each hold registers a fresh key and then RESERVEs: a holder's key
 *    names one hold, never two, and announces the hold's break time;
 *  - a holder issues writes through this handle only within the hold
 *    limit H of sending its RESERVE (lun_isc_lock_check), then refuses
 *    them (the caller releases and tries again);
 *  - a waiter that sees the same holder key for the break time
 *    (H + one I/O timeout + a margin, or what the key announces if that
 *    is longer) PREEMPTs it: the holder's last write ended before.
 * "I/O timeout" is the lock's (lun_lock_io_timeout: a mount's data
 * handle has the heartbeat's there, shorter than its own), and it bounds
 * every command the holding thread issues inside a hold
 * (lun_isc_io_deadline).
 *
 * Both fit inside a heartbeat's fence time.  That was needed while the
 * mounted hosts renewed their heartbeats through this mutex; renewals
 * take no reservation now (lockmgr/heartbeat.c renew), and it keeps a
 * lock change that meets a dead holder's hold from waiting long.
 */

/* A key: the break time in ISC_KEY_BREAK_UNIT_MS units (never 0, so
 * neither is a key), 28 random bits, a 24-bit sequence number. */
#define ISC_KEY_BREAK_SHIFT 52
#define ISC_KEY_BREAK_UNIT_MS 16u
#define ISC_KEY_BREAK_MAX ((1u << (64 - ISC_KEY_BREAK_SHIFT)) - 1)
#define ISC_KEY_RANDOM_MASK (((1ull << 28) - 1) << 24)
#define ISC_KEY_SEQ_MASK ((1ull << 24) - 1)

/* The handle bits of a hold key (what its mount logs for each handle). */
static uint32_t isc_key_bits(uint64_t key)
{
	return (uint32_t)((key & ISC_KEY_RANDOM_MASK) >> 24);
}

/* The hold limit H: the body is one read and one write, milliseconds at
 * their usual latency; a body slower than a quarter of the I/O timeout
 * gives up its write rather than stretching the hold. */
static unsigned isc_hold_ms(struct isc_lun *il)
{
	unsigned io = lun_lock_io_timeout(&il->lun);

	return io / 4 ? io / 4 : 1;
}

/* H, then one I/O timeout for the last write issued within H to end, and
 * a quarter of one for clock rates and the holder's own scheduling. */
static unsigned isc_break_after_ms(struct isc_lun *il)
{
	unsigned io = lun_lock_io_timeout(&il->lun);

	return isc_hold_ms(il) + io + io / 4;
}

static uint64_t isc_hold_key(struct isc_lun *il)
{
	uint64_t units = (isc_break_after_ms(il) + ISC_KEY_BREAK_UNIT_MS - 1) /
			 ISC_KEY_BREAK_UNIT_MS;

	if (units > ISC_KEY_BREAK_MAX)
		units = ISC_KEY_BREAK_MAX;
	if (!units)
		units = 1;
	return units << ISC_KEY_BREAK_SHIFT |
	       (il->lock_base & ISC_KEY_RANDOM_MASK) |
	       (++il->lock_seq & ISC_KEY_SEQ_MASK);
}

/* How long a waiter must see key before it breaks the hold: ours or what
 * the key announces (a holder with a longer I/O timeout), the longer. */
static int64_t isc_key_break_ms(struct isc_lun *il, uint64_t key)
{
	int64_t said = (int64_t)(key >> ISC_KEY_BREAK_SHIFT) *
		       ISC_KEY_BREAK_UNIT_MS;
	int64_t own = isc_break_after_ms(il);

	return said > own ? said : own;
}

/* What a mount waits for a hold left behind: its break time (the last
 * holder key seen announces it), and one command's time for the look
 * that starts the clock. */
unsigned lun_isc_lock_break_ms(struct isc_lun *il)
{
	uint64_t seen;

	pthread_mutex_lock(&il->mu);
	seen = il->seen_key;
	pthread_mutex_unlock(&il->mu);
	return (unsigned)isc_key_break_ms(il, seen) +
	       atomic_load(&il->lun.io_timeout_ms);
}

/*
 * Just before a write is queued on a session (whose mutex the caller
 * holds, il->mu perhaps): past the hold limit the holding thread's write
 * (the body of the hold: lockmgr/lockprim.c runs it on the thread that
 * reserved) is not issued,
 * and the caller hears -VMFS_E_RESERVED, as if the mutex had not been
 * had (the lock manager releases and tries again; nothing was written).
 */
int lun_isc_lock_check(struct isc_lun *il)
{
	int64_t until = atomic_load(&il->lock_writes_until_ms), now, last;
	unsigned h = isc_hold_ms(il);

	if (!until || atomic_load(&il->lock_tid) != gettid() ||
	    (now = vmfs_mono_ms()) < until)
		return 0;
	/* What a lock change that failed with "reserved by another host"
	 * may have met instead of another's hold: its own body too slow,
	 * try after try (at most one line a second). */
	last = atomic_load(&il->lock_late_logged_ms);
	if (now - last >= 1000 &&
	    atomic_compare_exchange_strong(&il->lock_late_logged_ms, &last, now))
		qb_log(LOG_WARNING, "lun %s: lock LU %d: a write inside our "
		       "hold came %lld ms after its RESERVE, past the hold "
		       "limit of %u ms: not issued, the hold is given up and "
		       "tried again (the LUN or this host answers slowly)",
		       il->lun.name, il->lock_lun,
		       (long long)(now - (until - h)), h);
	return -VMFS_E_RESERVED;
}

/*
 * The deadline of an I/O starting now: the handle's I/O timeout, or,
 * for the thread inside a hold of the lock LU, the lock's (shorter, on a
 * mount's data handle): a write it issues within the hold limit ends,
 * one way or the other, within the break time others wait.
 */
int64_t lun_isc_io_deadline(struct isc_lun *il)
{
	bool holding = atomic_load(&il->lock_writes_until_ms) &&
		       atomic_load(&il->lock_tid) == gettid();

	return vmfs_mono_ms() + (holding ? lun_lock_io_timeout(&il->lun) :
				 atomic_load(&il->lun.io_timeout_ms));
}

/*
 * A RESERVE or RELEASE that failed: whether this nexus holds the lock LU
 * may be unknown, and a hold nobody here knows of would stop every host
 * until a waiter breaks it.  Drop the nexus's registration, which ends a
 * reservation it holds.  Where the command got no answer (timed out, or
 * the session broke) its connection was aborted (lun/iscsi.c isc_abort):
 * nothing of it reaches the target any more, but what did may have made
 * a hold on the old nexus, which this new one cannot end; a waiter breaks
 * it after its break time, as a dead holder's.  Best effort.
 */
static void isc_lock_give_back(struct isc_lun *il)
{
	(void)isc_prout_on(il, il->lock_lun,
			   SCSI_PERSISTENT_RESERVE_REGISTER_AND_IGNORE_EXISTING_KEY,
			   0, 0, 0);
}

/* A fresh hold key (*key), registered on the lock LU through the control
 * session (REGISTER AND IGNORE EXISTING KEY: it replaces the nexus's). */
static int isc_lock_register_fresh(struct isc_lun *il, uint64_t *key)
{
	pthread_mutex_lock(&il->mu);
	*key = isc_hold_key(il);
	pthread_mutex_unlock(&il->mu);
	return isc_prout_on(il, il->lock_lun,
			    SCSI_PERSISTENT_RESERVE_REGISTER_AND_IGNORE_EXISTING_KEY,
			    0, 0, *key);
}

/* key is one of the last few this handle made (its random bits, a
 * sequence number at most 8 behind). */
static bool isc_key_own_recent(struct isc_lun *il, uint64_t key)
{
	uint32_t behind;

	if ((key & ISC_KEY_RANDOM_MASK) != (il->lock_base & ISC_KEY_RANDOM_MASK))
		return false;
	pthread_mutex_lock(&il->mu);
	behind = (uint32_t)((il->lock_seq - key) & ISC_KEY_SEQ_MASK);
	pthread_mutex_unlock(&il->mu);
	return behind < 8;
}

/*
 * Holds of this process whose body has ended but which may still hold
 * the mutex: one whose RELEASE is under way (lun_isc_lock_release), and
 * one left on a lost session that isc_lock_end_own was called for and
 * has not yet ended (its commands failed too, with their path).  Every
 * write of such a hold's body has answered or had its connection
 * aborted (lun/iscsi.c isc_wait), so nothing of it can land any more:
 * any handle of the process that finds one holding the mutex may end it,
 * as its own handle would.  Otherwise the data handle's hold, its
 * body's write timed out on the lost path, would stand until its RELEASE
 * got no answer there either (half an I/O timeout more) or until a
 * waiter's break time, and the process's other handle would wait for it
 * (heartbeat renewals did, until they stopped taking the mutex).  A RELEASE under way counts only once it had
 * ISC_RELEASE_STUCK_MS to land (an answered one takes a round trip),
 * so that a waiter does not race an ordinary RELEASE.  Keys are never
 * reused (a handle's random bits, a sequence number), so an entry
 * matches that hold only.
 */
#define ISC_ENDED_MAX 16
#define ISC_RELEASE_STUCK_MS 100
static pthread_mutex_t isc_ended_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	uint64_t key;
	int64_t from_ms;    /* others may end it from then on */
} isc_ended[ISC_ENDED_MAX];
static unsigned isc_ended_next;

/* Note key's body ended (others may end its hold from after_ms on), or,
 * with after_ms < 0, that its hold ended. */
static void isc_ended_mark(uint64_t key, int64_t after_ms)
{
	unsigned i;

	pthread_mutex_lock(&isc_ended_mu);
	for (i = 0; i < ISC_ENDED_MAX && isc_ended[i].key != key; i++)
		;
	if (after_ms >= 0 && i == ISC_ENDED_MAX) {
		i = isc_ended_next;
		isc_ended_next = (isc_ended_next + 1) % ISC_ENDED_MAX;
	}
	if (after_ms >= 0) {
		isc_ended[i].key = key;
		isc_ended[i].from_ms = vmfs_mono_ms() + after_ms;
	} else if (i < ISC_ENDED_MAX) {
		isc_ended[i].key = 0;
	}
	pthread_mutex_unlock(&isc_ended_mu);
}

/* key's body ended long enough ago that its hold may be ended here. */
static bool isc_ended_has(uint64_t key)
{
	int64_t now = vmfs_mono_ms();
	bool found = false;

	if (!key)
		return false;
	pthread_mutex_lock(&isc_ended_mu);
	for (unsigned i = 0; i < ISC_ENDED_MAX && !found; i++)
		found = isc_ended[i].key == key && now >= isc_ended[i].from_ms;
	pthread_mutex_unlock(&isc_ended_mu);
	return found;
}

static uint64_t isc_ctl_nexus(struct isc_lun *il)
{
	uint64_t n;

	pthread_mutex_lock(&il->mu);
	n = il->ctl_nexus;
	pthread_mutex_unlock(&il->mu);
	return n;
}

/*
 * Our hold of key old was left on a control session that is gone (its
 * RESERVE or RELEASE got no answer, or was issued again on a new
 * session, which has no registration there): end it now from the new
 * session instead of leaving every host (our own heartbeat among them)
 * to wait out its break time.  Safe at once: the old session's
 * connection was aborted (nothing more of it reaches the target), and
 * the hold's body had ended before its RELEASE was sent, or never ran
 * if its RESERVE was the one without an answer.  A fresh key is
 * registered, PREEMPTs old (which ends its hold, making ours), and is
 * released.  When old is registered nowhere, PREEMPT answers
 * RESERVATION CONFLICT: nothing was left.  Best effort (with every path
 * down nothing here answers either): what remains is broken by a waiter
 * after its break time, as a dead holder's.
 */
static void isc_lock_end_own(struct isc_lun *il, uint64_t old, const char *why)
{
	uint64_t key;
	int rc;

	isc_ended_mark(old, 0);
	rc = isc_lock_register_fresh(il, &key);
	if (!rc) {
		rc = isc_prout_on(il, il->lock_lun,
				  SCSI_PERSISTENT_RESERVE_PREEMPT,
				  SCSI_PERSISTENT_RESERVE_TYPE_WRITE_EXCLUSIVE,
				  key, old);
		if (rc == -VMFS_E_RESERVED) {
			/* old is registered nowhere */
			isc_ended_mark(old, -1);
			return;
		}
	}
	if (!rc)
		isc_ended_mark(old, -1);	/* ours now, not old's */
	/* Ours now, if old held it: let go, and drop the key (which does
	 * the same if the RELEASE fails; lun_isc_lock_release says why the
	 * key goes anyway). */
	if (!rc)
		rc = isc_prout_on(il, il->lock_lun,
				  SCSI_PERSISTENT_RESERVE_RELEASE,
				  SCSI_PERSISTENT_RESERVE_TYPE_WRITE_EXCLUSIVE,
				  key, 0);
	isc_lock_give_back(il);
	qb_log(rc ? LOG_WARNING : LOG_NOTICE, "lun %s: lock LU %d: %s our hold "
	       "of key 0x%016" PRIx64 ", %s%s%s",
	       il->lun.name, il->lock_lun, rc ? "could not end" : "ended",
	       old, why, rc ? ": " : "", rc ? vmfs_strerror(rc) : "");
}

/*
 * One try for the mutex.  If the control session drops under it, its
 * commands are issued again on the restored session (a new nexus, which
 * has no registration on the lock LU): a RESERVE that had landed through
 * the old one left a hold with our key that the new nexus cannot use or
 * release, and we end it at once (isc_lock_end_own), then try again.
 */
static int isc_lock_try(struct isc_lun *il, uint64_t *seen)
{
	int64_t sent, seen_ms;
	uint64_t key, holder, nexus;
	int type, rc;

	rc = isc_lock_register_fresh(il, &key);
	if (rc)
		return rc;
	nexus = isc_ctl_nexus(il);
	sent = vmfs_mono_ms();
	rc = isc_prout_on(il, il->lock_lun, SCSI_PERSISTENT_RESERVE_RESERVE,
			  SCSI_PERSISTENT_RESERVE_TYPE_WRITE_EXCLUSIVE, key, 0);
	if ((rc && rc != -VMFS_E_RESERVED) || isc_ctl_nexus(il) != nexus) {
		/* No answer, or the answer of a new session (which has no
		 * registration there): the old one may hold it.  End that,
		 * and what this try did, and try again. */
		isc_lock_end_own(il, key, "left on a lost session");
		return rc && rc != -VMFS_E_RESERVED ? rc : -EAGAIN;
	}
	pthread_mutex_lock(&il->mu);
	il->lock_key = key;
	il->lock_nexus = nexus;
	if (!rc) {
		il->lock_held = true;
		atomic_store(&il->lock_tid, gettid());
		atomic_store(&il->lock_writes_until_ms,
			     sent + isc_hold_ms(il));
	}
	pthread_mutex_unlock(&il->mu);
	if (rc != -VMFS_E_RESERVED)
		return rc;
	/* Held by another: break it once it has been held too long. */
	rc = isc_read_reservation(il, il->lock_lun, &holder, &type);
	if (rc || !holder)
		return rc ? rc : -EAGAIN;	/* released meanwhile */
	*seen = holder;
	if (isc_key_own_recent(il, holder)) {
		/* One of this handle's last holds, and none is running: a
		 * handle takes the mutex for one body at a time (lockmgr/
		 * lockprim.c lock_reserved), so every earlier hold of it had
		 * ended, its I/O answered or aborted, before this try began.
		 * Left on a lost session without our noticing (its RELEASE
		 * came too late to end it, say): ended now, not waited out. */
		isc_lock_end_own(il, holder, "left on a lost session");
		return -EAGAIN;
	}
	if (isc_ended_has(holder)) {
		/* Another handle of ours whose body ended (isc_ended_mark):
		 * its RELEASE got no answer yet, or it was left on a lost
		 * session and could not be ended there: the same. */
		isc_lock_end_own(il, holder, "whose body had ended on another "
				 "handle of this host");
		return -EAGAIN;
	}
	pthread_mutex_lock(&il->mu);
	if (holder != il->seen_key) {
		il->seen_key = holder;
		il->seen_since_ms = vmfs_mono_ms();
		rc = -VMFS_E_RESERVED;
	} else if ((seen_ms = vmfs_mono_ms() - il->seen_since_ms) <
		   isc_key_break_ms(il, holder)) {
		rc = -VMFS_E_RESERVED;
	} else {
		il->seen_key = 0;
	}
	pthread_mutex_unlock(&il->mu);
	if (rc)
		return rc;
	rc = isc_prout_on(il, il->lock_lun, SCSI_PERSISTENT_RESERVE_PREEMPT,
			  SCSI_PERSISTENT_RESERVE_TYPE_WRITE_EXCLUSIVE, key,
			  holder);
	qb_log(rc ? LOG_WARNING : LOG_NOTICE, "lun %s: lock LU %d: %s the hold "
	       "of key 0x%016" PRIx64 ", seen for %lld ms (its holder ended or "
	       "stalled inside it)%s%s", il->lun.name, il->lock_lun,
	       rc ? "could not break" : "broke", holder, (long long)seen_ms,
	       rc ? ": " : "", rc ? vmfs_strerror(rc) : "");
	return rc ? rc : -EAGAIN;
}

/* The lock LU must answer PERSISTENT RESERVE IN. */
int lun_isc_lock_probe(struct isc_lun *il)
{
	uint64_t holder;
	int type, rc;

	rc = isc_read_reservation(il, il->lock_lun, &holder, &type);
	if (rc == -EINVAL || rc == -EOPNOTSUPP || rc == -EIO)
		return -VMFS_E_ISCSI_LOCK_LUN;
	return rc;
}

/*
 * What a wait for the mutex met: the holds in the way (each new holder
 * key seen is one), the one seen longest and for how long.  A wait that
 * ends without the mutex says so in the log, so that a lock change that
 * failed on it can be told apart: one hold that was not broken (its
 * key, whose random bits name the handle: lun_isc_lock_key_bits), or the
 * mutex passing from hold to hold without this waiter getting it.
 */
struct isc_wait_seen {
	int64_t start_ms, since_ms, longest_ms;
	uint64_t cur, longest;
	unsigned tries, holds;
};

static void isc_wait_note(struct isc_wait_seen *w, uint64_t holder)
{
	int64_t now = vmfs_mono_ms();

	w->tries++;
	if (!holder)
		return;
	if (holder != w->cur) {
		w->cur = holder;
		w->since_ms = now;
		w->holds++;
	}
	if (now - w->since_ms >= w->longest_ms) {
		w->longest_ms = now - w->since_ms;
		w->longest = holder;
	}
}

static void isc_wait_report(struct isc_lun *il, const struct isc_wait_seen *w)
{
	int64_t waited = vmfs_mono_ms() - w->start_ms;

	if (waited < ISC_WAIT_REPORT_MS)
		return;
	qb_log(LOG_WARNING, "lun %s: lock LU %d: waited %lld ms for the mutex "
	       "without getting it: %u tries, %u holds in the way; the longest "
	       "seen, key 0x%016" PRIx64 " (handle bits 0x%07" PRIx64 "), for "
	       "%lld ms of its %lld ms break time", il->lun.name, il->lock_lun,
	       (long long)waited, w->tries, w->holds, w->longest,
	       (uint64_t)isc_key_bits(w->longest),
	       (long long)w->longest_ms,
	       (long long)(w->longest ? isc_key_break_ms(il, w->longest) : 0));
}

int lun_isc_lock_reserve(struct isc_lun *il, unsigned wait_ms)
{
	struct isc_wait_seen w = { .start_ms = vmfs_mono_ms() };
	int64_t until = w.start_ms + wait_ms;
	unsigned again = 0;
	uint64_t seen;
	int rc;

	for (;;) {
		seen = 0;
		rc = isc_lock_try(il, &seen);
		isc_wait_note(&w, seen);
		if (rc == -EAGAIN) {
			/* Released, broken or ended: at once, a few times
			 * even past the wait. */
			if (vmfs_mono_ms() < until || again++ < 2)
				continue;
			rc = -VMFS_E_RESERVED;
		}
		if (rc != -VMFS_E_RESERVED ||
		    vmfs_mono_ms() + ISC_RES_POLL_MS > until) {
			if (rc == -VMFS_E_RESERVED)
				isc_wait_report(il, &w);
			/* No registrant left behind by a wait the target
			 * answered; after an error its state is unknown and a
			 * give-back would only wait out another deadline. */
			if (rc == -VMFS_E_RESERVED)
				isc_lock_give_back(il);
			return rc;
		}
		usleep(ISC_RES_POLL_MS * 1000);
	}
}

/* The random bits every hold key of this handle carries (lun_describe:
 * a mount logs its handles', so that a key in a log names its handle). */
uint32_t lun_isc_lock_key_bits(struct isc_lun *il)
{
	return isc_key_bits(il->lock_base);
}

/*
 * A hold that was broken (our key preempted) releases nothing: fine.  A
 * RELEASE without an answer, or answered by a new control session (which
 * holds nothing there), leaves the hold on the old one: ended at once.
 * The body has ended: while the RELEASE is under way, another handle of
 * ours that waits for the mutex may end the hold (isc_ended_mark).
 *
 * Then the nexus drops its key: a nexus stays a registrant of the lock LU
 * only while it holds the mutex or tries for it.  tgt (1.0.85) answers
 * every RELEASE with a UNIT ATTENTION queued on every nexus of the LU for
 * every other registrant, and a nexus reports them one per command, so
 * a nexus idle while others come and go piled them up: the heartbeat
 * handle, which took the mutex again only to free its slot at unmount
 * (it no longer does), met thousands and timed out draining them ("hb:
 * freeing slot N: Connection timed out"); an idle host's first lock
 * change would have too.  With one registrant at a RELEASE, nothing is
 * queued, but registrations that lost sessions leave behind still count
 * (lun_isc_run_raw drains what they cause).
 */
int lun_isc_lock_release(struct isc_lun *il)
{
	uint64_t key, nexus;
	int rc;

	pthread_mutex_lock(&il->mu);
	key = il->lock_held ? il->lock_key : 0;
	nexus = il->lock_nexus;
	il->lock_held = false;
	atomic_store(&il->lock_writes_until_ms, 0);
	pthread_mutex_unlock(&il->mu);
	if (!key)
		return 0;
	isc_ended_mark(key, ISC_RELEASE_STUCK_MS);
	rc = isc_prout_on(il, il->lock_lun, SCSI_PERSISTENT_RESERVE_RELEASE,
			  SCSI_PERSISTENT_RESERVE_TYPE_WRITE_EXCLUSIVE, key, 0);
	if ((rc && rc != -VMFS_E_RESERVED) || isc_ctl_nexus(il) != nexus) {
		isc_lock_end_own(il, key, "left on a lost session");
	} else {
		isc_ended_mark(key, -1);
		isc_lock_give_back(il);
	}
	return 0;
}

/* "?lock_lun=N" at the end of the URL: taken off before libiscsi sees it. */
int lun_iscsi_url_split(const char *spec, char *url, size_t len,
			int *lock_lun)
{
	const char *q = strstr(spec, "?lock_lun=");
	char *end;
	long n;

	*lock_lun = -1;
	if (!q) {
		if (strlen(spec) >= len)
			return -ENAMETOOLONG;
		strcpy(url, spec);
		return 0;
	}
	n = strtol(q + 10, &end, 10);
	if (end == q + 10 || *end || n < 0 || n > 255)
		return -VMFS_E_ISCSI_URL;
	if ((size_t)(q - spec) >= len)
		return -ENAMETOOLONG;
	memcpy(url, spec, (size_t)(q - spec));
	url[q - spec] = 0;
	*lock_lun = (int)n;
	return 0;
}

