/*
 * The iSCSI backend: a LUN on a SAN, reached with libiscsi's userspace
 * initiator.  Spec: iscsi://[USER[%SECRET]@]PORTAL[:PORT]/IQN/LUN
 * (libiscsi's URL; a ':' in the IQN may be written %3A).  CHAP
 * credentials should come from a file (lun_set_chap_file(), which the
 * programs take from VMFS_CHAP_FILE) rather than the URL, which shows in
 * ps(1) and in logs.
 *
 * Threading: a libiscsi context is not thread-safe.  Each lun handle has
 * a control session and, where no SCSI-2 reservation is in use, three
 * data sessions; every session is used by one thread at a time under its
 * own mutex, driven with the async API and our own poll loop:
 *  - a thread takes the first free data session (trylock from a
 *    rotating start), so up to three batches are on the wire at once;
 *    the control session carries no data where data sessions exist, so
 *    that a control command never waits behind a batch;
 *  - a batch (lun_submit) is queued whole before we wait, so a batch of
 *    n I/Os is n commands in flight, not n round trips;
 *  - our own loop bounds every wait by lun->io_timeout_ms to the
 *    millisecond (libiscsi's own timeouts are whole seconds and only
 *    advance inside its service call);
 *  - control commands (probes, COMPARE AND WRITE, reservations) go to the
 *    control session, whose mutex (il->mu) also guards the handle's state.
 * Every session is a nexus of its own: the fencing registration is made
 * on each with the same key, so one PREEMPT of that key fences them all.
 * A SCSI-2 RESERVE(6) belongs to one nexus and would refuse the others,
 * so a handle that reserves that way has the control session only.
 *
 * Commands: READ(16) and WRITE(16) for data, SYNCHRONIZE CACHE(16) for
 * flush, READ CAPACITY(16) for the geometry, COMPARE AND WRITE when the
 * target has it, RESERVE(6)/RELEASE(6) and PERSISTENT RESERVE IN/OUT for
 * locks and fencing.  Never WRITE SAME, UNMAP, ORWRITE or WRITE AND
 * VERIFY: tgt does not check those against persistent reservations, so a
 * fenced host could still change the LUN through them; zero_range writes
 * zeros with WRITE(16).
 *
 * Persistent reservations (fencing, the lock-LU mutex) are in
 * lun/iscsi_pr.c; lun/iscsi_int.h is what the two files share.
 *
 * Auto-reconnect is off: libiscsi would log in again and re-issue what
 * was in flight, on a new nexus, which a fence must not allow.  A lost
 * session fails its commands with -EIO (-ETIMEDOUT past the deadline).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vmfs/log.h"

#include "vmfs/clock.h"
#include "iscsi_int.h"


/*
 * With a fencing registration, RESERVATION CONFLICT on a write means that
 * another host preempted ours (docs/PROTOCOL.md "Storage fencing").
 */
static bool isc_fence_armed(struct lun *lun)
{
	return atomic_load(&lun_isc_of(lun)->pr_key) != 0;
}

/* ---- the CHAP file -------------------------------------------------------- */

static char *isc_chap_file;
static pthread_mutex_t isc_chap_mu = PTHREAD_MUTEX_INITIALIZER;

int lun_set_chap_file(const char *path)
{
	char *p = NULL;

	/* Absolute, for a daemon that changes directory later; a file that
	 * does not exist yet is reported when a LUN is opened. */
	if (path && !(p = realpath(path, NULL)) && !(p = strdup(path)))
		return -ENOMEM;
	pthread_mutex_lock(&isc_chap_mu);
	free(isc_chap_file);
	isc_chap_file = p;
	pthread_mutex_unlock(&isc_chap_mu);
	return 0;
}

/*
 * "username=NAME" and "password=SECRET" lines (blank lines and '#'
 * comments allowed), as mount.cifs credential files.  Both must be there.
 */
int lun_iscsi_chap_parse(const char *text, char *user, size_t ulen,
			 char *secret, size_t slen)
{
	const char *line = text, *eol, *val;
	bool have_u = false, have_s = false;
	size_t klen, vlen;

	while (line && *line) {
		eol = strchr(line, '\n');
		vlen = eol ? (size_t)(eol - line) : strlen(line);
		if (vlen && line[vlen - 1] == '\r')
			vlen--;
		val = memchr(line, '=', vlen);
		if (vlen && line[0] != '#' && !val)
			return -VMFS_E_ISCSI_CHAP_FILE;
		if (val) {
			klen = (size_t)(val - line);
			val++;
			vlen -= klen + 1;
			if (klen == 8 && !memcmp(line, "username", 8)) {
				if (vlen >= ulen)
					return -ENAMETOOLONG;
				memcpy(user, val, vlen);
				user[vlen] = 0;
				have_u = vlen > 0;
			} else if (klen == 8 && !memcmp(line, "password", 8)) {
				if (vlen >= slen)
					return -ENAMETOOLONG;
				memcpy(secret, val, vlen);
				secret[vlen] = 0;
				have_s = vlen > 0;
			} else if (line[0] != '#') {
				return -VMFS_E_ISCSI_CHAP_FILE;
			}
		}
		line = eol ? eol + 1 : NULL;
	}
	return have_u && have_s ? 0 : -VMFS_E_ISCSI_CHAP_FILE;
}

static int isc_chap_load(char *user, size_t ulen, char *secret, size_t slen)
{
	char buf[1024];
	FILE *f = NULL;
	size_t n;
	int rc = 1;	/* no file configured */

	pthread_mutex_lock(&isc_chap_mu);
	if (isc_chap_file) {
		f = fopen(isc_chap_file, "re");
		rc = f ? 0 : -errno;
	}
	pthread_mutex_unlock(&isc_chap_mu);
	if (rc)
		return rc;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	rc = ferror(f) ? -EIO : 0;
	fclose(f);
	if (rc)
		return rc;
	buf[n] = 0;
	rc = lun_iscsi_chap_parse(buf, user, ulen, secret, slen);
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

/* ---- running commands ---------------------------------------------------- */

static struct iscsi_context *isc_ctx_new(struct isc_lun *il, unsigned idx);
static int isc_connect(struct isc_lun *il, struct iscsi_context *ctx,
		       unsigned path, unsigned timeout_ms);

/* ---- paths ----------------------------------------------------------------- */

/*
 * Paths: a URL may name several portals of one target
 * (iscsi://A,B[:PORT]/IQN/LUN: docs/OPERATIONS.md "An iSCSI LUN").
 * Every session logs in on the path il->path names.  A path fails when a
 * login through it fails, or, with more than one path, when a command on
 * it gets no answer within half the I/O timeout (a portal whose link is
 * down answers nothing; the I/O deadline is not over yet, so what was in
 * flight is issued again through the next path: isc_rw, lun_isc_run_on).
 * The sessions then move to the next path as they are next used, each
 * logging in with its own ISID, which makes the target end its old
 * session (session reinstatement): nothing still queued on the dead path
 * reaches the LUN after the move.  The first path is the preferred one:
 * while another is in use, a short login on it is tried every
 * ISC_FAILBACK_MS, and the sessions move back once it answers.
 */
static int64_t isc_path_deadline(struct isc_lun *il, int64_t deadline_ms)
{
	int64_t d;

	if (il->npaths < 2)
		return deadline_ms;
	d = vmfs_mono_ms() + atomic_load(&il->lun.io_timeout_ms) / 2;
	return d < deadline_ms ? d : deadline_ms;
}

/* Path p failed: the sessions move to the next one (once per failure,
 * however many sessions saw it). */
static void isc_path_failed(struct isc_lun *il, unsigned p, const char *why)
{
	unsigned cur = p, next;
	int64_t now = vmfs_mono_ms();
	int64_t before = atomic_exchange(&il->path_failed_ms[p], now);

	if (il->npaths < 2)
		return;
	next = (p + 1) % il->npaths;
	if (!atomic_compare_exchange_strong(&il->path, &cur, next))
		return;
	atomic_fetch_add(&il->path_failovers, 1);
	atomic_store(&il->failback_ms, now + ISC_FAILBACK_MS);
	/* Once per path and ISC_FAILBACK_MS: with every path gone, the
	 * sessions go round them many times a second. */
	if (!before || now - before >= ISC_FAILBACK_MS)
		qb_log(LOG_WARNING, "lun %s: path %s failed (%s): I/O goes "
		       "through %s", il->lun.name, il->portals[p], why,
		       il->portals[next]);
}


void lun_isc_cmd_cb(struct iscsi_context *ctx, int status,
		       void *command_data, void *private_data)
{
	struct isc_cmd *c = private_data;

	(void)ctx;
	(void)command_data;	/* the same task as c->task */
	c->done = true;
	c->status = status;
}

static bool isc_all_done(const struct isc_cmd *c, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (c[i].task && !c[i].done)
			return false;
	return true;
}

/*
 * End the session's connection so that nothing it still holds ever
 * reaches the target: an abortive close (SO_LINGER 0: RST, the socket's
 * send queue dropped) instead of the kernel's usual one, which keeps
 * sending what was queued after close(2), for minutes if the path is
 * down.  A command we gave up on (timed out, cancelled here) would
 * otherwise land when the path came back, after others took over what it
 * wrote: the stale write of a lock record whose hold was broken, a RESERVE
 * nobody knows of, data older than what replaced it.  The context then
 * has no fd: the session is broken, and its next use logs in afresh
 * (lun_isc_session_restore).
 */
static void isc_abort(struct iscsi_context *ctx)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int fd = iscsi_get_fd(ctx);

	if (fd < 0)
		return;
	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	(void)iscsi_disconnect(ctx);
}

/* Every unfinished command's callback runs (CANCELLED) before we return. */
static void isc_cancel(struct iscsi_context *ctx, struct isc_cmd *c,
		       unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (c[i].task && !c[i].done)
			iscsi_scsi_cancel_task(ctx, c[i].task);
}

/*
 * Drive the session until every queued command of c[] finished or the
 * deadline passed.  0, -ETIMEDOUT (the unfinished ones are cancelled
 * locally and the connection is aborted, *broken set: what the target
 * received it may still execute, so the outcome of a timed-out write is
 * unknown, as with the file backend, but nothing more of it leaves this
 * host) or -EIO when the session broke (*broken set).  Called with the
 * session's mutex held.
 */
static int isc_wait(struct iscsi_context *ctx, bool *broken,
		    struct isc_cmd *c, unsigned n, int64_t deadline_ms)
{
	struct pollfd pfd;
	int64_t left;
	int rc;

	while (!isc_all_done(c, n)) {
		if (iscsi_get_fd(ctx) < 0)
			break;	/* the session dropped: below */
		left = deadline_ms - vmfs_mono_ms();
		if (left <= 0) {
			isc_cancel(ctx, c, n);
			isc_abort(ctx);
			*broken = true;
			return -ETIMEDOUT;
		}
		pfd.fd = iscsi_get_fd(ctx);
		pfd.events = (short)iscsi_which_events(ctx);
		pfd.revents = 0;
		rc = poll(&pfd, 1, left > 100 ? 100 : (int)left);
		if (rc < 0 && errno != EINTR) {
			rc = -errno;
			isc_cancel(ctx, c, n);
			isc_abort(ctx);
			*broken = true;
			return rc;
		}
		if (iscsi_service(ctx, rc > 0 ? pfd.revents : 0) < 0) {
			*broken = true;
			isc_cancel(ctx, c, n);
			isc_abort(ctx);
			return -EIO;
		}
	}
	/*
	 * With auto-reconnect off, libiscsi answers a dropped connection
	 * (the target restarted, the connection was reset) by completing
	 * every queued command as CANCELLED, which we do only past the
	 * deadline (above): the session is gone, whatever they did.
	 */
	for (unsigned i = 0; i < n; i++)
		if (iscsi_get_fd(ctx) < 0 ||
		    (c[i].task && c[i].status == SCSI_STATUS_CANCELLED)) {
			*broken = true;
			isc_cancel(ctx, c, n);
			isc_abort(ctx);
			return -EIO;
		}
	return 0;
}

void lun_isc_cmds_free(struct isc_cmd *c, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (c[i].task) {
			scsi_free_scsi_task(c[i].task);
			c[i].task = NULL;
		}
}

/*
 * A finished command's status as an error code.  RESERVATION CONFLICT is
 * returned as -VMFS_E_RESERVED and UNIT ATTENTION as -EAGAIN; callers
 * decide what they mean.
 */
static int isc_status(const struct isc_cmd *c)
{
	const struct scsi_sense *s;

	switch (c->status) {
	case SCSI_STATUS_GOOD:
		return 0;
	case SCSI_STATUS_RESERVATION_CONFLICT:
		return -VMFS_E_RESERVED;
	case SCSI_STATUS_BUSY:
	case SCSI_STATUS_TASK_SET_FULL:
		return -EAGAIN;
	case SCSI_STATUS_CANCELLED:
		return -ETIMEDOUT;
	case SCSI_STATUS_CHECK_CONDITION:
		s = &c->task->sense;
		if (s->key == SCSI_SENSE_MISCOMPARE)
			return -VMFS_E_MISCOMPARE;
		if (s->key == SCSI_SENSE_UNIT_ATTENTION)
			return -EAGAIN;
		if (s->key == SCSI_SENSE_ILLEGAL_REQUEST &&
		    (s->ascq == SCSI_SENSE_ASCQ_INVALID_OPERATION_CODE ||
		     s->ascq == SCSI_SENSE_ASCQ_INVALID_FIELD_IN_CDB))
			return -EOPNOTSUPP;
		if (s->key == SCSI_SENSE_ILLEGAL_REQUEST)
			return -EINVAL;
		return -EIO;
	default:
		return -EIO;
	}
}


/*
 * One command, re-issued at once on UNIT ATTENTION (a target reports
 * resets, reservation preemptions, releases and capacity changes that
 * way, one per command: a nexus may have a backlog of them, as tgt 1.0.85
 * queues RESERVATIONS RELEASED on every nexus for every registrant of the
 * lock LU at each RELEASE, including registrations its lost sessions
 * left), and on BUSY or TASK SET FULL (the target asks for a later try)
 * after a pause that doubles, until its deadline.  An answer that is a
 * unit attention is progress: it moves the deadline on by the command's
 * budget, up to ISC_UA_MAX of them, so that a long backlog is drained
 * rather than taken for a target that does not answer.  (Safe for the
 * lock LU's hold timing: a RESERVE re-issued later only starts its hold
 * later than the t0 its holder counts from.)  With the session's mutex
 * held.  A broken session fails it with -EIO.
 */
int lun_isc_run_raw(struct isc_lun *il, struct iscsi_context *ctx,
		    bool *broken, int path, isc_issue_fn issue, void *arg,
		    struct isc_cmd *out, int64_t deadline_ms)
{
	unsigned pause_ms = ISC_BUSY_PAUSE_MS, ua = 0;
	int64_t budget = deadline_ms - vmfs_mono_ms(), path_deadline;
	int rc;

	for (;;) {
		memset(out, 0, sizeof(*out));
		if (*broken)
			return -EIO;
		out->task = issue(il, ctx, arg, out);
		if (!out->task)
			return -ENOMEM;
		path_deadline = path >= 0 ? isc_path_deadline(il, deadline_ms) :
					    deadline_ms;
		rc = isc_wait(ctx, broken, out, 1, path_deadline);
		if (rc == -ETIMEDOUT && path_deadline < deadline_ms) {
			isc_path_failed(il, (unsigned)path, "no answer within "
					"half the I/O timeout");
			*broken = true;
			return -EIO;
		}
		if (!rc)
			rc = isc_status(out);
		if (rc != -EAGAIN)
			return rc;	/* the caller frees out->task */
		if (out->status == SCSI_STATUS_BUSY ||
		    out->status == SCSI_STATUS_TASK_SET_FULL) {
			if (vmfs_mono_ms() + pause_ms >= deadline_ms)
				break;
			lun_isc_cmds_free(out, 1);
			usleep(pause_ms * 1000);
			if (pause_ms < ISC_BUSY_PAUSE_MAX_MS)
				pause_ms *= 2;
			continue;
		}
		if (++ua >= ISC_UA_MAX)
			break;
		if (budget > 0)
			deadline_ms = vmfs_mono_ms() + budget;
		if (ua % ISC_UA_LOG_EVERY == 0)
			qb_log(LOG_INFO, "lun %s: %u unit attentions drained on "
			       "one command so far (a target that queues one for "
			       "every reservation change elsewhere)",
			       il->lun.name, ua);
		lun_isc_cmds_free(out, 1);
	}
	lun_isc_cmds_free(out, 1);
	return -EAGAIN;
}

/*
 * Log a fresh context for session s in on the path il->path says, trying
 * the next path when that one does not answer, until the deadline.
 */
static int isc_login_some_path(struct isc_lun *il, const struct isc_sess_ref *s,
			       int64_t deadline_ms, struct iscsi_context **out,
			       unsigned *path)
{
	unsigned tries;
	int rc = -EIO;

	for (tries = 0; tries < il->npaths; tries++) {
		int64_t left = deadline_ms - vmfs_mono_ms();
		struct iscsi_context *nc;
		unsigned p = atomic_load(&il->path);

		if (left <= 0)
			break;
		nc = isc_ctx_new(il, s->idx);
		if (!nc)
			return -ENOMEM;
		rc = isc_connect(il, nc, p, (unsigned)left);
		if (!rc) {
			*out = nc;
			*path = p;
			return 0;
		}
		iscsi_destroy_context(nc);
		isc_path_failed(il, p, "cannot log in");
	}
	return rc ? -EIO : -ETIMEDOUT;
}

/* Back to the first path, the preferred one, once it answers again: one
 * short login try per ISC_FAILBACK_MS while another path is in use. */
static void isc_failback_try(struct isc_lun *il, const struct isc_sess_ref *s,
			     int64_t deadline_ms, struct iscsi_context **nc,
			     unsigned *np)
{
	int64_t now = vmfs_mono_ms(), left = deadline_ms - now;
	struct iscsi_context *c;

	if (il->npaths < 2 || atomic_load(&il->path) == 0 ||
	    now < atomic_load(&il->failback_ms) || left <= 0)
		return;
	atomic_store(&il->failback_ms, now + ISC_FAILBACK_MS);
	c = isc_ctx_new(il, s->idx);
	if (!c)
		return;
	if (isc_connect(il, c, 0, left < ISC_FAILBACK_LOGIN_MS ?
			(unsigned)left : ISC_FAILBACK_LOGIN_MS)) {
		iscsi_destroy_context(c);
		return;
	}
	atomic_store(&il->path, 0);
	qb_log(LOG_NOTICE, "lun %s: path %s answers again: I/O goes back to it",
	       il->lun.name, il->portals[0]);
	*nc = c;
	*np = 0;
}

/*
 * A session that broke (the connection was reset, the target restarted,
 * its path stopped answering), or that is on another path than the one
 * in use, is logged in again before its next command, until that
 * command's deadline, and its fencing registration restored
 * (lun_isc_rearm: our key registered again on the new nexus, after which
 * the owner check decides).  The login uses the session's own ISID, so
 * the target ends the old session if it still has it (session
 * reinstatement): nothing queued on the old path reaches the LUN after
 * that.  A command that was in flight when it broke failed with -EIO;
 * the data path and lun_isc_run_on issue it again, nothing else does.
 * With the session's mutex held.
 */
int lun_isc_session_restore(struct isc_lun *il, const struct isc_sess_ref *s,
			    int64_t deadline_ms)
{
	struct iscsi_context *nc = NULL;
	unsigned np = 0, old = *s->path;
	bool was_broken = *s->broken;
	int rc;

	if (atomic_load(&il->lun.fenced))
		return -EIO;
	isc_failback_try(il, s, deadline_ms, &nc, &np);
	if (!nc && !*s->broken && *s->path == atomic_load(&il->path))
		return 0;
	if (!nc) {
		rc = isc_login_some_path(il, s, deadline_ms, &nc, &np);
		if (rc)
			return rc == -ENOMEM ? rc : -EIO;
	}
	/* Broken: no logout to send; moved: the login ended it.  Either
	 * way nothing still queued on it may leave later. */
	isc_abort(*s->ctx);
	iscsi_destroy_context(*s->ctx);
	*s->ctx = nc;
	*s->path = np;
	*s->broken = false;
	if (s->idx == 0)
		il->ctl_nexus++;	/* il->mu is this session's mutex */
	rc = lun_isc_rearm(il, nc, s->broken, (int)np, deadline_ms);
	if (rc) {
		/* Registered or not, unknown: do it all again next time. */
		*s->broken = true;
		return rc == -VMFS_E_FENCED ? -EIO : rc;
	}
	if (was_broken)
		qb_log(LOG_NOTICE, "lun %s: a session to %s was lost; logged in "
		       "again%s%s%s", il->lun.name, il->portals[old],
		       np != old ? " through " : "",
		       np != old ? il->portals[np] : "",
		       atomic_load(&il->pr_key) ?
		       " and registered its key again" : "");
	return 0;
}

/*
 * Restore the session if it broke, then run the command on it; one that
 * failed because the session broke under it is issued again on the
 * restored one, until the deadline.  (What re-issuing means for the
 * lock LU's RESERVE: lun/iscsi_pr.c isc_lock_try.)
 */
int lun_isc_run_on(struct isc_lun *il, const struct isc_sess_ref *s,
		   isc_issue_fn issue, void *arg, struct isc_cmd *out,
		   int64_t deadline_ms)
{
	int rc;

	for (;;) {
		memset(out, 0, sizeof(*out));
		rc = lun_isc_session_restore(il, s, deadline_ms);
		if (!rc) {
			rc = lun_isc_run_raw(il, *s->ctx, s->broken,
					     (int)*s->path, issue, arg, out,
					     deadline_ms);
			if (rc != -EIO || !*s->broken)
				return rc;
			lun_isc_cmds_free(out, 1);
		}
		if (rc == -ENOMEM || atomic_load(&il->lun.fenced) ||
		    vmfs_mono_ms() + ISC_RELOGIN_PAUSE_MS >= deadline_ms)
			return rc;
		usleep(ISC_RELOGIN_PAUSE_MS * 1000);
	}
}

/* On the control session, with il->mu held. */
int lun_isc_run_locked(struct isc_lun *il, isc_issue_fn issue, void *arg,
			  struct isc_cmd *out, int64_t deadline_ms)
{
	struct isc_sess_ref s = lun_isc_sess_ref(il, 0);

	return lun_isc_run_on(il, &s, issue, arg, out, deadline_ms);
}

int64_t lun_isc_deadline(struct isc_lun *il)
{
	return vmfs_mono_ms() + atomic_load(&il->lun.io_timeout_ms);
}

/* ---- data path ------------------------------------------------------------ */

/* A session to issue on: the control session (0) or a data one. */
struct isc_sess_ref lun_isc_sess_ref(struct isc_lun *il, unsigned i)
{
	struct isc_sess_ref r = { .idx = i };

	if (i == 0) {
		r.mu = &il->mu;
		r.ctx = &il->ctx;
		r.broken = &il->broken;
		r.path = &il->ctl_path;
	} else {
		r.mu = &il->extra[i - 1].mu;
		r.ctx = &il->extra[i - 1].ctx;
		r.broken = &il->extra[i - 1].broken;
		r.path = &il->extra[i - 1].path;
	}
	return r;
}

/*
 * The first free data session from a rotating start, else wait for that
 * one.  Data sessions exist only where no SCSI-2 reservation is in use
 * (it belongs to the control session's nexus and would refuse the
 * others); without them the control session carries the data too.  With
 * them it carries none: a read or write there would hold il->mu for as
 * long as it takes, up to half an I/O timeout on a path that went dark,
 * and the commands that must not wait behind data (a heartbeat renewal's
 * RESERVE and RELEASE of the lock LU, a PREEMPT that fences a dead host)
 * would wait behind it.
 */
static struct isc_sess_ref isc_sess_get(struct isc_lun *il)
{
	unsigned n = il->nextra ? il->nextra : 1, first = il->nextra ? 1 : 0;
	unsigned start, i;
	struct isc_sess_ref r;

	start = atomic_fetch_add(&il->next_sess, 1) % n;
	for (i = 0; i < n; i++) {
		r = lun_isc_sess_ref(il, first + (start + i) % n);
		if (!pthread_mutex_trylock(r.mu))
			return r;
	}
	r = lun_isc_sess_ref(il, first + start);
	pthread_mutex_lock(r.mu);
	return r;
}

/*
 * Queue io (split into ISC_MAX_XFER pieces) as commands c[*k...].  The
 * iovecs point into the caller's buffer: no copy.
 */
static int isc_queue_io(struct isc_lun *il, struct iscsi_context *ctx,
			const struct lun_io *io, struct isc_cmd *c, unsigned *k)
{
	size_t done = 0, len;
	uint64_t lba;

	while (done < io->len) {
		struct isc_cmd *cmd = &c[(*k)++];

		len = io->len - done < ISC_MAX_XFER ? io->len - done :
						       ISC_MAX_XFER;
		lba = (io->off + done) / il->block;
		memset(cmd, 0, sizeof(*cmd));
		cmd->iov.iov_base = (char *)io->buf + done;
		cmd->iov.iov_len = len;
		if (io->op == LUN_OP_READ)
			cmd->task = iscsi_read16_iov_task(ctx, il->lun_nr,
				lba, (uint32_t)len, (int)il->block, 0, 0, 0, 0,
				0, lun_isc_cmd_cb, cmd, &cmd->iov, 1);
		else
			cmd->task = iscsi_write16_iov_task(ctx, il->lun_nr,
				lba, NULL, (uint32_t)len, (int)il->block, 0, 0,
				0, 0, 0, lun_isc_cmd_cb, cmd, &cmd->iov, 1);
		if (!cmd->task)
			return -ENOMEM;
		done += len;
	}
	return 0;
}

static unsigned isc_pieces(const struct lun_io *io)
{
	return (unsigned)((io->len + ISC_MAX_XFER - 1) / ISC_MAX_XFER);
}

/*
 * One pass over a batch: every piece queued, then waited for together.
 * *again when some piece met RESERVATION CONFLICT, UNIT ATTENTION or
 * BUSY: isc_rw decides (a preempted registration fences the handle,
 * lun_isc_pr_lost; anything else is retried, the whole batch, until the
 * deadline: re-writing what already landed writes the same bytes).
 */
static int isc_rw_once(struct isc_lun *il, struct lun_io *ios, unsigned n,
		       int64_t deadline_ms, bool *again)
{
	struct isc_sess_ref s;
	struct isc_cmd *c;
	unsigned i, total = 0, k = 0, p;
	int rc = 0, first = 0;

	*again = false;
	for (i = 0; i < n; i++)
		total += isc_pieces(&ios[i]);
	c = calloc(total, sizeof(*c));
	if (!c)
		return -ENOMEM;
	s = isc_sess_get(il);
	/* A write inside a lock-LU hold that ran out is not issued (after
	 * the wait for a session: that wait counts against the hold). */
	for (i = 0; i < n; i++)
		if (ios[i].op == LUN_OP_WRITE && lun_isc_lock_check(il)) {
			pthread_mutex_unlock(s.mu);
			free(c);
			for (i = 0; i < n; i++)
				ios[i].result = -VMFS_E_RESERVED;
			return -VMFS_E_RESERVED;
		}
	rc = lun_isc_session_restore(il, &s, deadline_ms);
	for (i = 0; i < n && !rc; i++)
		rc = isc_queue_io(il, *s.ctx, &ios[i], c, &k);
	if (rc) {
		isc_cancel(*s.ctx, c, k);
	} else {
		int64_t path_deadline = isc_path_deadline(il, deadline_ms);

		rc = isc_wait(*s.ctx, s.broken, c, k, path_deadline);
		if (rc == -ETIMEDOUT && path_deadline < deadline_ms) {
			isc_path_failed(il, *s.path, "no answer within half "
					"the I/O timeout");
			*s.broken = true;
			rc = -EIO;
		}
	}
	/* The session broke (before or during the batch) or could not be
	 * restored yet: restore it and issue the batch again, until the
	 * deadline. */
	if (rc && rc != -ETIMEDOUT && *s.broken &&
	    !atomic_load(&il->lun.fenced)) {
		*again = true;
		rc = -EIO;
	}
	pthread_mutex_unlock(s.mu);

	for (i = 0, k = 0; i < n; i++) {
		ios[i].result = rc;
		for (p = isc_pieces(&ios[i]); p--; k++) {
			int r = rc ? rc : (c[k].task ? isc_status(&c[k]) : -ENOMEM);

			if ((r == -EAGAIN || r == -VMFS_E_RESERVED))
				*again = true;
			if (!ios[i].result)
				ios[i].result = r;
		}
		if (ios[i].result && !first)
			first = ios[i].result;
	}
	lun_isc_cmds_free(c, total);
	free(c);
	return first;
}

static int isc_rw(struct lun *lun, struct lun_io *ios, unsigned n)
{
	struct isc_lun *il = lun_isc_of(lun);
	int64_t deadline_ms = lun_isc_io_deadline(il);
	unsigned pause_ms;
	bool again;
	int rc;

	for (;;) {
		rc = isc_rw_once(il, ios, n, deadline_ms, &again);
		if (!rc || !again)
			return rc;
		if (rc == -VMFS_E_RESERVED && isc_fence_armed(lun) &&
		    lun_isc_pr_lost(lun)) {
			for (unsigned i = 0; i < n; i++)
				ios[i].result = -EIO;
			return -EIO;
		}
		/* -EIO with again: the session is lost and being restored;
		 * a login try per ISC_RELOGIN_PAUSE_MS. */
		pause_ms = rc == -EIO ? ISC_RELOGIN_PAUSE_MS : ISC_RES_POLL_MS;
		if (vmfs_mono_ms() + pause_ms >= deadline_ms)
			return rc == -EAGAIN ? -EIO : rc;
		usleep(pause_ms * 1000);
	}
}

static int isc_read(struct lun *lun, void *buf, size_t len, uint64_t off)
{
	struct lun_io io = { .op = LUN_OP_READ, .buf = buf, .len = len,
			     .off = off };

	return isc_rw(lun, &io, 1);
}

static int isc_write(struct lun *lun, const void *buf, size_t len,
		     uint64_t off)
{
	/* WRITE(16) only reads from buf. */
	struct lun_io io = { .op = LUN_OP_WRITE, .buf = (void *)buf,
			     .len = len, .off = off };

	return isc_rw(lun, &io, 1);
}

static int isc_submit(struct lun *lun, struct lun_io *ios, unsigned n)
{
	return isc_rw(lun, ios, n);
}

/* Zeros written with WRITE(16): WRITE SAME would bypass the fence on tgt. */
static int isc_zero_range(struct lun *lun, uint64_t off, uint64_t len)
{
	return lun_zero_by_writes(lun, off, len);
}

static struct scsi_task *isc_issue_sync(struct isc_lun *il,
		struct iscsi_context *ctx, void *arg, struct isc_cmd *c)
{
	(void)arg;
	return iscsi_synchronizecache16_task(ctx, il->lun_nr, 0, 0, 0, 0,
					     lun_isc_cmd_cb, c);
}

/* One command with its own deadline, under the mutex, task freed. */
int lun_isc_run(struct isc_lun *il, isc_issue_fn issue, void *arg,
		   int64_t deadline_ms)
{
	struct isc_cmd c;
	int rc;

	pthread_mutex_lock(&il->mu);
	rc = lun_isc_run_locked(il, issue, arg, &c, deadline_ms);
	lun_isc_cmds_free(&c, 1);
	pthread_mutex_unlock(&il->mu);
	return rc;
}

static int isc_flush(struct lun *lun)
{
	struct isc_lun *il = lun_isc_of(lun);
	int rc = lun_isc_run(il, isc_issue_sync, NULL, lun_isc_deadline(il));

	if (rc == -VMFS_E_RESERVED && isc_fence_armed(lun) && lun_isc_pr_lost(lun))
		return -EIO;
	/* A target without a write cache may refuse the command. */
	return rc == -EOPNOTSUPP ? 0 : rc;
}

/* ---- SCSI-2 RESERVE / RELEASE -------------------------------------------- */

static struct scsi_task *isc_issue_reserve6(struct isc_lun *il,
		struct iscsi_context *ctx, void *arg, struct isc_cmd *c)
{
	(void)arg;
	return iscsi_reserve6_task(ctx, il->lun_nr, lun_isc_cmd_cb, c);
}

struct scsi_task *lun_isc_issue_release6(struct isc_lun *il,
		struct iscsi_context *ctx, void *arg, struct isc_cmd *c)
{
	(void)arg;
	return iscsi_release6_task(ctx, il->lun_nr, lun_isc_cmd_cb, c);
}

static int isc_reserve(struct lun *lun, unsigned wait_ms)
{
	struct isc_lun *il = lun_isc_of(lun);
	int64_t until = vmfs_mono_ms() + wait_ms;
	int rc;

	if (lun->flags & LUN_RDONLY)
		return -EROFS;
	if (il->lock_lun >= 0)
		return lun_isc_lock_reserve(il, wait_ms);
	for (;;) {
		rc = lun_isc_run(il, isc_issue_reserve6, NULL, lun_isc_deadline(il));
		if (rc != -VMFS_E_RESERVED ||
		    vmfs_mono_ms() + ISC_RES_POLL_MS > until)
			return rc;
		usleep(ISC_RES_POLL_MS * 1000);
	}
}

static int isc_release(struct lun *lun)
{
	struct isc_lun *il = lun_isc_of(lun);

	if (il->lock_lun >= 0)
		return lun_isc_lock_release(il);
	return lun_isc_run(il, lun_isc_issue_release6, NULL, lun_isc_deadline(il));
}

static unsigned isc_reserve_break_ms(struct lun *lun)
{
	struct isc_lun *il = lun_isc_of(lun);

	/* RESERVE(6) ends with its holder's session; a lock LU's hold
	 * stays until a waiter breaks it. */
	return il->lock_lun >= 0 ? lun_isc_lock_break_ms(il) : 0;
}

/* ---- COMPARE AND WRITE ---------------------------------------------------- */

struct isc_caw_arg {
	uint64_t lba;
	unsigned char *buf;	/* verify data then write data */
	uint32_t len;		/* of buf: twice the blocks */
};

static struct scsi_task *isc_issue_caw(struct isc_lun *il,
		struct iscsi_context *ctx, void *arg, struct isc_cmd *c)
{
	struct isc_caw_arg *a = arg;

	return iscsi_compareandwrite_task(ctx, il->lun_nr, a->lba, a->buf,
					  a->len, (int)il->block, 0, 0, 0, 0,
					  0, lun_isc_cmd_cb, c);
}

static int isc_caw(struct isc_lun *il, const void *expect, const void *data,
		   size_t len, uint64_t off, int64_t deadline_ms)
{
	struct isc_caw_arg a = { .lba = off / il->block,
				 .len = (uint32_t)(2 * len) };
	int rc;

	a.buf = malloc(2 * len);
	if (!a.buf)
		return -ENOMEM;
	memcpy(a.buf, expect, len);
	memcpy(a.buf + len, data, len);
	rc = lun_isc_run(il, isc_issue_caw, &a, deadline_ms);
	free(a.buf);
	return rc;
}

/*
 * The target compares and writes atomically but does not return what it
 * found: on MISCOMPARE, current gets a read made just after, which is
 * what the caller would have re-read anyway.
 */
static int isc_compare_and_write(struct lun *lun, const void *expect,
				 const void *data, size_t len, uint64_t off,
				 void *current)
{
	struct isc_lun *il = lun_isc_of(lun);
	void *buf;
	int rc;

	rc = isc_caw(il, expect, data, len, off, lun_isc_deadline(il));
	if (rc == -VMFS_E_RESERVED && isc_fence_armed(lun) && lun_isc_pr_lost(lun))
		return -EIO;
	if (rc != -VMFS_E_MISCOMPARE || !current)
		return rc;
	buf = lun_buf_alloc(len);
	if (!buf)
		return -ENOMEM;
	if (!isc_read(lun, buf, len, off))
		memcpy(current, buf, len);
	lun_buf_free(buf);
	return rc;
}

/* ---- capability probes ---------------------------------------------------- */

/*
 * COMPARE AND WRITE, found out by trying it (tgt 1.0.85 does not report
 * what it lacks anywhere else): on the last block, with verify data that
 * cannot match (the block as read, one bit flipped), so that a target
 * that has the command answers MISCOMPARE and writes nothing, and one
 * that lacks it answers ILLEGAL REQUEST.  Read-only handles may probe.
 */
static int isc_probe_caw(struct isc_lun *il)
{
	uint64_t off = il->lun.size_bytes - il->block;
	unsigned char *cur;
	int rc;

	cur = lun_buf_alloc(il->block);
	if (!cur)
		return -ENOMEM;
	rc = isc_read(&il->lun, cur, il->block, off);
	if (!rc) {
		cur[0] ^= 1;
		rc = isc_caw(il, cur, cur, il->block, off, lun_isc_deadline(il));
	}
	lun_buf_free(cur);
	if (rc == -VMFS_E_MISCOMPARE) {
		il->probe.caw = LUN_PROBE_YES;
		return 0;
	}
	if (rc == -EOPNOTSUPP || rc == -EINVAL) {
		il->probe.caw = LUN_PROBE_NO;
		return 0;
	}
	/* Wrote it (impossible but harmless: the verify data differed) or
	 * a transport error: say so rather than guess. */
	il->probe.caw = rc ? LUN_PROBE_UNKNOWN : LUN_PROBE_YES;
	return rc == -ETIMEDOUT || rc == -EIO ? rc : 0;
}

/* ---- open and close ------------------------------------------------------- */

static struct scsi_task *isc_issue_cap16(struct isc_lun *il,
		struct iscsi_context *ctx, void *arg, struct isc_cmd *c)
{
	(void)arg;
	return iscsi_readcapacity16_task(ctx, il->lun_nr, lun_isc_cmd_cb, c);
}

/* READ CAPACITY(16): the logical block size and the LUN's size. */
static int isc_read_capacity(struct isc_lun *il, uint32_t *block,
			     uint64_t *bytes)
{
	struct scsi_readcapacity16 *cap;
	struct isc_cmd c;
	int rc;

	pthread_mutex_lock(&il->mu);
	rc = lun_isc_run_locked(il, isc_issue_cap16, NULL, &c, lun_isc_deadline(il));
	if (!rc) {
		cap = scsi_datain_unmarshall(c.task);
		if (!cap)
			rc = -EIO;
		else if (cap->block_length != 512 && cap->block_length != 4096)
			rc = -VMFS_E_ISCSI_GEOMETRY;
		else {
			*block = cap->block_length;
			*bytes = (cap->returned_lba + 1) * cap->block_length;
		}
	}
	lun_isc_cmds_free(&c, 1);
	pthread_mutex_unlock(&il->mu);
	return rc;
}

static int isc_geometry(struct isc_lun *il)
{
	uint32_t block = 0;
	uint64_t bytes = 0;
	int rc = isc_read_capacity(il, &block, &bytes);

	if (!rc) {
		il->block = block;
		il->lun.sector_size = block;
		il->lun.size_bytes = bytes;
	}
	return rc;
}

/* The target enlarged the LUN (tgtadm, the array's tool). */
static int isc_capacity(struct lun *lun, uint64_t *bytes)
{
	struct isc_lun *il = lun_container_of(lun, struct isc_lun, lun);
	uint32_t block = 0;
	int rc = isc_read_capacity(il, &block, bytes);

	return !rc && block != il->block ? -VMFS_E_ISCSI_GEOMETRY : rc;
}

struct isc_login {
	bool done;
	int status;
};

static void isc_login_cb(struct iscsi_context *ctx, int status,
			 void *command_data, void *private_data)
{
	struct isc_login *l = private_data;

	(void)ctx;
	(void)command_data;
	l->done = true;
	l->status = status;
}

/*
 * Which part of the URL was wrong, from libiscsi's message (it has no
 * error codes for these): the iSCSI login status names the target and
 * the authentication failures, the LUN check is a TEST UNIT READY that
 * the target answers LOGICAL UNIT NOT SUPPORTED, and everything before
 * the login is the portal.
 */
int lun_iscsi_login_error(const char *msg)
{
	if (!msg)
		return -VMFS_E_ISCSI_PORTAL;
	if (strcasestr(msg, "not found") || strcasestr(msg, "target removed")
	    || strcasestr(msg, "TargetName"))
		return -VMFS_E_ISCSI_TARGET;
	if (strcasestr(msg, "auth") || strcasestr(msg, "CHAP"))
		return -VMFS_E_ISCSI_AUTH;
	if (strcasestr(msg, "LOGICAL_UNIT_NOT_SUPPORTED") ||
	    strcasestr(msg, "LOGICAL UNIT NOT SUPPORTED"))
		return -VMFS_E_ISCSI_LUN;
	return -VMFS_E_ISCSI_PORTAL;
}

static int isc_connect(struct isc_lun *il, struct iscsi_context *ctx,
		       unsigned path, unsigned timeout_ms)
{
	struct isc_login l = { 0 };
	int64_t deadline = vmfs_mono_ms() + timeout_ms;
	struct pollfd pfd;
	int rc;

	if (iscsi_full_connect_async(ctx, il->portals[path], il->lun_nr,
				     isc_login_cb, &l))
		return lun_iscsi_login_error(iscsi_get_error(ctx));
	while (!l.done) {
		int64_t left = deadline - vmfs_mono_ms();

		if (left <= 0)
			return -VMFS_E_ISCSI_PORTAL;
		pfd.fd = iscsi_get_fd(ctx);
		pfd.events = (short)iscsi_which_events(ctx);
		pfd.revents = 0;
		rc = poll(&pfd, 1, left > 100 ? 100 : (int)left);
		if (rc < 0 && errno != EINTR)
			return -errno;
		if (iscsi_service(ctx, rc > 0 ? pfd.revents : 0) < 0 &&
		    !l.done)
			return lun_iscsi_login_error(iscsi_get_error(ctx));
	}
	if (l.status != SCSI_STATUS_GOOD)
		return lun_iscsi_login_error(iscsi_get_error(ctx));
	return 0;
}

/* Our initiator name: one per process, so that every host is its own
 * initiator in the target's eyes (and in its reservation tables). */
static void isc_initiator_name(char *buf, size_t len)
{
	char host[64];

	if (gethostname(host, sizeof(host)) < 0)
		strcpy(host, "host");
	host[sizeof(host) - 1] = 0;
	snprintf(buf, len, "iqn.2026-01.org.vmfs:%s-%ld", host,
		 (long)getpid());
}

/*
 * A context for il's session idx (not connected yet); NULL: out of
 * memory.  Its ISID is the handle's random part and idx, the same for
 * every login of that session, on whichever path.
 */
static struct iscsi_context *isc_ctx_new(struct isc_lun *il, unsigned idx)
{
	struct iscsi_context *ctx;
	char iname[160];

	isc_initiator_name(iname, sizeof(iname));
	ctx = iscsi_create_context(iname);
	if (!ctx)
		return NULL;
	iscsi_set_isid_random(ctx, il->isid_rnd, idx);
	if (iscsi_set_targetname(ctx, il->target) ||
	    iscsi_set_session_type(ctx, ISCSI_SESSION_NORMAL) ||
	    iscsi_set_header_digest(ctx, ISCSI_HEADER_DIGEST_NONE_CRC32C) ||
	    (il->user[0] && iscsi_set_initiator_username_pwd(ctx, il->user,
							     il->secret))) {
		iscsi_destroy_context(ctx);
		return NULL;
	}
	iscsi_set_noautoreconnect(ctx, 1);
	iscsi_set_reconnect_max_retries(ctx, 0);
	return ctx;
}

static void isc_ctx_close(struct iscsi_context *ctx, bool broken)
{
	if (!broken && iscsi_is_logged_in(ctx))
		iscsi_logout_sync(ctx);
	iscsi_destroy_context(ctx);
}

/* The data sessions, logged in like the control session. */
static int isc_extra_open(struct isc_lun *il, unsigned timeout_ms)
{
	int rc;

	while (il->nextra < ISC_EXTRA_SESS) {
		struct isc_sess *x = &il->extra[il->nextra];

		x->ctx = isc_ctx_new(il, il->nextra + 1);
		x->path = atomic_load(&il->path);
		if (!x->ctx)
			return -ENOMEM;
		rc = pthread_mutex_init(&x->mu, NULL);
		if (rc) {
			iscsi_destroy_context(x->ctx);
			return -rc;
		}
		il->nextra++;
		rc = isc_connect(il, x->ctx, x->path, timeout_ms);
		if (rc)
			return rc;
	}
	return 0;
}

static void isc_close(struct lun *lun)
{
	struct isc_lun *il = lun_isc_of(lun);

	if (il->ctx && !il->broken && iscsi_is_logged_in(il->ctx))
		lun_isc_pr_close(il);
	for (unsigned i = 0; i < il->nextra; i++) {
		isc_ctx_close(il->extra[i].ctx, il->extra[i].broken);
		pthread_mutex_destroy(&il->extra[i].mu);
	}
	if (il->ctx)
		isc_ctx_close(il->ctx, il->broken);
	explicit_bzero(il->secret, sizeof(il->secret));
	pthread_mutex_destroy(&il->mu);
	for (unsigned i = 0; i < il->npaths; i++)
		free(il->portals[i]);
	free(il->target);
	lun_fini_common(lun);
	free(il);
}

static void isc_describe(struct lun *lun, struct lun_probe *out)
{
	struct isc_lun *il = lun_isc_of(lun);

	*out = il->probe;
	if (il->probe.pr == LUN_PROBE_YES)
		out->fencing = "persistent reservations (Write Exclusive - "
			       "Registrants Only; survivors preempt a dead host's key)";
}

static unsigned isc_paths(struct lun *lun, bool probe, struct lun_path *out,
			  unsigned max, unsigned *failovers)
{
	struct isc_lun *il = lun_isc_of(lun);
	int64_t now = vmfs_mono_ms();

	*failovers = atomic_load(&il->path_failovers);
	for (unsigned i = 0; i < il->npaths && i < max; i++) {
		struct lun_path *p = &out[i];
		int64_t f = atomic_load(&il->path_failed_ms[i]);

		memset(p, 0, sizeof(*p));
		snprintf(p->portal, sizeof(p->portal), "%s", il->portals[i]);
		p->in_use = atomic_load(&il->path) == i;
		p->failed_ago_ms = f ? now - f : -1;
		p->reachable = -1;
		if (probe) {
			struct iscsi_context *c = isc_ctx_new(il, 0x7fff);
			int rc = c ? isc_connect(il, c, i, ISC_LOGIN_MIN_MS) :
				     -ENOMEM;

			p->reachable = !rc;
			if (rc)
				snprintf(p->why, sizeof(p->why), "%s",
					 vmfs_strerror(rc));
			else if (iscsi_is_logged_in(c))
				iscsi_logout_sync(c);
			if (c)
				iscsi_destroy_context(c);
		}
	}
	return il->npaths;
}

static const struct lun_ops isc_ops = {
	.kind = "iscsi",
	.read = isc_read,
	.write = isc_write,
	.submit = isc_submit,
	.flush = isc_flush,
	.zero_range = isc_zero_range,
	.reserve = isc_reserve,
	.release = isc_release,
	.reserve_break_ms = isc_reserve_break_ms,
	.compare_and_write = isc_compare_and_write,
	.describe = isc_describe,
	.paths = isc_paths,
	.pr_register = lun_isc_pr_register,
	.pr_preempt = lun_isc_pr_preempt,
	.capacity = isc_capacity,
	.close = isc_close,
};


/*
 * One portal of the URL: libiscsi parses "iscsi://[USERINFO@]PORTAL/REST"
 * and gives the portal as HOST:PORT; the first also gives the target,
 * the LUN and the CHAP account.
 */
static int isc_parse_one(struct isc_lun *il, struct iscsi_context *parse,
			 const char *url_s, bool first)
{
	struct iscsi_url *url = iscsi_parse_full_url(parse, url_s);

	if (!url)
		return -VMFS_E_ISCSI_URL;
	il->portals[il->npaths] = strdup(url->portal);
	if (il->portals[il->npaths])
		il->npaths++;
	if (first) {
		il->target = strdup(url->target);
		il->lun_nr = url->lun;
		if (url->user[0]) {
			snprintf(il->user, sizeof(il->user), "%s", url->user);
			snprintf(il->secret, sizeof(il->secret), "%s",
				 url->passwd);
		}
	}
	iscsi_destroy_url(url);
	return il->npaths && il->target ? 0 : -ENOMEM;
}

/*
 * The URL, in its list form too: iscsi://[USERINFO@]A[:PORT],B[:PORT]/...
 * names one path per portal (at most ISC_MAX_PATHS).
 */
static int isc_parse_paths(struct isc_lun *il, const char *plain)
{
	const char *auth = plain + strlen("iscsi://"), *slash, *at, *h;
	struct iscsi_context *parse;
	char one[1280];
	int rc = 0, ulen;

	if (strncmp(plain, "iscsi://", 8))
		return -VMFS_E_ISCSI_URL;
	slash = strchr(auth, '/');
	if (!slash || slash == auth || slash[-1] == ',')
		return -VMFS_E_ISCSI_URL;
	at = memrchr(auth, '@', (size_t)(slash - auth));
	h = at ? at + 1 : auth;
	ulen = (int)(h - auth);	/* USERINFO@, or nothing */
	parse = iscsi_create_context("iqn.2026-01.org.vmfs:parse");
	if (!parse)
		return -ENOMEM;
	while (!rc && h < slash) {
		const char *end = memchr(h, ',', (size_t)(slash - h));

		if (!end)
			end = slash;
		if (il->npaths == ISC_MAX_PATHS || end == h ||
		    (size_t)snprintf(one, sizeof(one), "iscsi://%.*s%.*s%s",
				     ulen, auth, (int)(end - h), h,
				     slash) >= sizeof(one))
			rc = -VMFS_E_ISCSI_URL;
		else
			rc = isc_parse_one(il, parse, one, il->npaths == 0);
		h = end + 1;
	}
	iscsi_destroy_context(parse);
	if (!rc && !il->npaths)
		rc = -VMFS_E_ISCSI_URL;
	return rc;
}

static int isc_setup(struct isc_lun *il, const char *spec)
{
	char plain[1024];
	int rc;

	rc = lun_iscsi_url_split(spec, plain, sizeof(plain), &il->lock_lun);
	if (rc)
		return rc;
	rc = isc_parse_paths(il, plain);
	if (rc)
		return rc;
	rc = isc_chap_load(il->user, sizeof(il->user), il->secret,
			   sizeof(il->secret));
	if (rc < 0)
		return rc == -ENOENT || rc == -EACCES ?
		       -VMFS_E_ISCSI_CHAP_FILE : rc;
	if (getrandom(&il->isid_rnd, sizeof(il->isid_rnd), 0) !=
	    sizeof(il->isid_rnd))
		il->isid_rnd = (uint32_t)(vmfs_mono_us() ^ (uint64_t)getpid());
	il->ctx = isc_ctx_new(il, 0);
	return il->ctx ? 0 : -ENOMEM;
}

int lun_iscsi_open(const char *spec, int flags, struct lun **out)
{
	struct isc_lun *il;
	unsigned login_ms;
	int rc;

	il = calloc(1, sizeof(*il));
	if (!il)
		return -ENOMEM;
	il->lock_lun = -1;
	rc = lun_init_common(&il->lun, &isc_ops, spec, flags);
	if (rc)
		goto err_free;
	rc = pthread_mutex_init(&il->mu, NULL);
	if (rc) {
		rc = -rc;
		goto err_common;
	}
	rc = isc_setup(il, spec);
	if (rc)
		goto err_close;
	login_ms = atomic_load(&il->lun.io_timeout_ms);
	if (login_ms < ISC_LOGIN_MIN_MS)
		login_ms = ISC_LOGIN_MIN_MS;
	/* The first path that lets us in (the others are tried later). */
	for (unsigned p = 0; p < il->npaths; p++) {
		rc = isc_connect(il, il->ctx, p, login_ms);
		if (!rc) {
			atomic_store(&il->path, p);
			il->ctl_path = p;
			break;
		}
		if (p + 1 < il->npaths) {
			iscsi_destroy_context(il->ctx);
			il->ctx = isc_ctx_new(il, 0);
			if (!il->ctx) {
				rc = -ENOMEM;
				break;
			}
		}
	}
	if (rc)
		goto err_close;
	if (il->npaths > 1)
		qb_log(LOG_INFO, "lun %s: %u paths; logged in through %s",
		       il->lun.name, il->npaths, il->portals[il->ctl_path]);
	rc = isc_geometry(il);
	if (!rc)
		rc = isc_probe_caw(il);
	if (!rc)
		rc = lun_isc_probe_pr(il);
	if (rc)
		goto err_close;
	il->probe.backend = "iscsi";
	if (il->lock_lun >= 0) {
		snprintf(il->reserve_how, sizeof(il->reserve_how),
			 "persistent reservation on lock LUN %d", il->lock_lun);
		il->probe.reserve_how = il->reserve_how;
		if (getrandom(&il->lock_base, sizeof(il->lock_base), 0) !=
		    sizeof(il->lock_base))
			il->lock_base = (uint64_t)vmfs_mono_us() << 20 ^
					(uint64_t)getpid();
		il->lock_base &= ~0xffffffffull;
		if (!il->lock_base)
			il->lock_base = 1ull << 32;
		il->probe.lock_key_bits = lun_isc_lock_key_bits(il);
		rc = lun_isc_lock_probe(il);
		if (rc)
			goto err_close;
	} else {
		il->probe.reserve_how = "SCSI-2 RESERVE(6)";
	}
	/* Data sessions only where RESERVE(6) (one nexus's) is not used. */
	if (il->probe.caw == LUN_PROBE_YES || il->lock_lun >= 0)
		rc = isc_extra_open(il, login_ms);
	if (!rc)
		rc = lun_isc_pr_open(il);
	if (rc)
		goto err_close;
	/*
	 * The lock primitive (docs/PROTOCOL.md "Locks on an iSCSI LUN"):
	 * COMPARE AND WRITE where the target has it, else SCSI-2 RESERVE.
	 */
	atomic_store(&il->lun.caps, (il->probe.caw == LUN_PROBE_YES ?
				     LUN_CAP_ATS : 0) | LUN_CAP_RESERVE);
	*out = &il->lun;
	return 0;

err_close:
	isc_close(&il->lun);	/* frees name, portal, target, ctx */
	return rc;
err_common:
	lun_fini_common(&il->lun);
err_free:
	free(il);
	return rc;
}
