/*
 * Live migration of a VM between hosts (docs/PROTOCOL.md §13).
 *
 * The source host's vmfsd drives it; the two vmfsds talk over the
 * volume's corosync group (APP messages, JSON), QEMU's stream goes over
 * TCP between the hosts' cluster addresses.
 *
 *   source                                  destination
 *   prepare {path, config} ------------->   files detached (opens without
 *                                           their locks), QEMU -incoming
 *                                           with late-block-activate
 *              <------------------------   prepared {uri}
 *   migrate (pause-before-switchover):
 *   RAM copied while the guest runs;
 *   at "pre-switchover" the guest is
 *   stopped and its disks flushed:
 *   the files are detached here (what
 *   their locks cover goes home, the
 *   locks are released on disk)
 *   switch ----------------------------->   the locks taken on disk
 *              <------------------------   switched
 *   migrate-continue: the device state
 *   goes, the destination activates its
 *   disks and runs the guest
 *              <------------------------   resumed {run_ms, proc_ms}
 *   (the guest's whole pause: pause_ms)
 *
 * At no instant may both QEMUs write the disks: a detached file refuses
 * writes (vol_file_detach), and the destination attaches only once the
 * source has let the locks go.  If the destination cannot take them, or
 * never answers, the source takes them back and the guest goes on there;
 * if the source cannot take them back (the destination holds them and
 * went away), its QEMU is killed: the VM then recovers as a crash.
 *
 * Everything here runs on the loop thread; the fast path's thread only
 * queues what arrives (mig_pipe).  Each side's QEMU sends its MIGRATION
 * events on a QMP session kept open, polled by the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>
#include "vmfs/log.h"

#include "vmfs/hypervisor.h"
#include "vmfs/lockmgr.h"
#include "vmfs/vol.h"
#include "vmfsd_int.h"

/* The destination's QEMU up: it answers on QMP only once it has
 * allocated the guest's memory (-mem-prealloc, 0.7-1.5 s per GiB on a
 * nested test machine), so both deadlines grow with the memory. */
#define MIG_UP_MS         15000
#define MIG_UP_MS_PER_GIB  3000
#define MIG_PREPARE_MS    45000   /* plus mig_up_ms: "prepared" */
#define MIG_COPY_MS      300000   /* RAM copied */
#define MIG_SWITCH_MS     10000   /* the destination took the locks */
/* The largest VM config the destination reads back (the source can send
 * less: CN_APP_MAX). */
#define MIG_CONFIG_MAX  (64 * 1024)
#define MIG_COMPLETE_MS   30000   /* the device state went */
#define MIG_TICK_MS          10   /* deadlines and the disk sampler */
#define MIG_TAIL_MS        3000   /* sampling after the switchover, at most */
#define MIG_QMP_MS         5000
#define MIG_BANDWIDTH  (1ull << 30)   /* bytes/s; QEMU's default: 32 MiB */
#define MIG_DOWNTIME_MS     100   /* QEMU's target; its default: 300 */

enum mig_state {
	MIG_PREPARING,   /* source: waiting for "prepared" */
	MIG_COPYING,     /* RAM goes; destination: waiting for "switch" */
	MIG_SWITCHING,   /* source: files detached, waiting for "switched" */
	MIG_COMPLETING,  /* locks moved, device state goes */
	MIG_FINISHING,   /* source: done, sampling the disk a little longer */
	MIG_DONE,
	MIG_FAILED,
};

static const char *const mig_state_names[] = {
	"preparing", "copying", "switching", "completing", "finishing",
	"done", "failed",
};

/* What the fast path's thread hands to the loop. */
struct mig_msg {
	struct mig_msg *next;
	struct lock_holder from;
	char from_name[CN_HOST_NAME_MAX + 1];
	bool left;                  /* the member left; no data */
	char data[];
};

struct vm_mig {
	struct vmfsd *d;
	struct vmfsd_vm *vm;
	bool source;
	uint64_t id;                /* the source's */
	enum mig_state state;
	struct lock_holder peer;
	char peer_name[CN_HOST_NAME_MAX + 1];
	char msg[512];              /* why it failed */
	int64_t t0_ms, deadline_ms;
	/* the console log, handed over with the disks (a lookup ref) */
	uint64_t con_ino;
	bool detached;              /* the files are detached here */
	bool moving_recorded;       /* source: the run record names peer */
	/* QEMU's QMP session and what its events said */
	struct hv_qmp *q;
	bool ev_pre, ev_completed, ev_failed, ev_resumed;
	qb_loop_timer_handle timer;
	bool timer_set;
	/* figures */
	uint64_t ram_total, ram_done, ram_remaining;
	int64_t switch_t0, handover_ms, downtime_ms, total_ms, done_ms;
	/*
	 * The guest's whole pause, source STOP to destination RESUME
	 * (pause_ms, 0 until known), from both hosts' own clocks: the
	 * source's STOP to its "switch" going out, the one-way trip of that
	 * message (half the round trip to "switched", less the
	 * destination's time between the two), and the destination's
	 * "switch" arriving to its RESUME, which it sends in "resumed".
	 * STOP and RESUME are when QEMU says they happened (the events'
	 * timestamps, mig_event_ms), not when the loop read them: the loop
	 * may be busy (the destination writes the run record then).
	 */
	int64_t stop_ms, switch_tx_ms, switch_rx_ms, switched_tx_ms, pause_ms;
	int64_t resume_ms;
	/* the guest's counter: offset 0 of its first disk, sampled */
	char sample[64];
	int64_t sample_ms, gap_ms, normal_ms;
	uint64_t counter_first, counter_last;
	bool counter_seen;
	/* the destination: the config the source sent (the run record) */
	struct hv_config *cfg;
};

static int mig_up_ms(uint64_t memory_mib)
{
	return MIG_UP_MS + (int)((memory_mib * MIG_UP_MS_PER_GIB) >> 10);
}

static int64_t mig_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct lock_holder mig_holder_of(const struct cn_member *m)
{
	struct lock_holder h = { .slot = m->slot, .hb_gen = m->hb_gen };

	memcpy(h.uuid, m->host_uuid, VMFS_UUID_SIZE);
	return h;
}

static bool mig_holder_eq(const struct lock_holder *a,
			  const struct lock_holder *b)
{
	return a->slot == b->slot && a->hb_gen == b->hb_gen &&
	       !memcmp(a->uuid, b->uuid, VMFS_UUID_SIZE);
}

/* ---- messages ---- */

static void mig_send(struct vmfsd_vm *vm, json_object *o)
{
	struct vm_mig *g = vm->mig;
	const char *text;
	int ret;

	json_object_object_add(o, "id", json_object_new_int64((int64_t)g->id));
	json_object_object_add(o, "path", json_object_new_string(vm->path));
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	ret = g->d->cn ? cn_send_app(g->d->cn, &g->peer, text, strlen(text)) :
		-ENOTCONN;
	if (ret)
		qb_log(LOG_WARNING, "migration of VM %s: cannot send to host %s: "
		       "%s", vm->path, g->peer_name, strerror(-ret));
	json_object_put(o);
}

static void mig_send_op(struct vmfsd_vm *vm, const char *op, const char *msg)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "op", json_object_new_string(op));
	if (msg)
		json_object_object_add(o, "msg", json_object_new_string(msg));
	mig_send(vm, o);
}

/* The fast path's thread: queue for the loop. */
static void mig_queue(struct vmfsd *d, const struct cn_member *m,
		      const char *data, size_t len, bool left)
{
	struct mig_msg *q = calloc(1, sizeof(*q) + len + 1), **pp;
	char one = 1;

	if (!q)
		return;     /* the other side's deadline ends it */
	q->from = mig_holder_of(m);
	snprintf(q->from_name, sizeof(q->from_name), "%s", m->host_name);
	q->left = left;
	memcpy(q->data, data, len);
	pthread_mutex_lock(&d->mig_mu);
	for (pp = &d->mig_q; *pp; pp = &(*pp)->next)
		;
	*pp = q;
	pthread_mutex_unlock(&d->mig_mu);
	if (write(d->mig_pipe[1], &one, 1) < 0) {
		/* EAGAIN: the loop wakes anyway */
	}
}

void vmfsd_migrate_app(struct vmfsd *d, const struct cn_member *m,
		       const char *data, size_t len)
{
	mig_queue(d, m, data, len, false);
}

void vmfsd_migrate_left(struct vmfsd *d, const struct cn_member *m)
{
	if (m->known)
		mig_queue(d, m, "", 0, true);
}

/* ---- the guest's counter ---- */

static void mig_sample(struct vm_mig *g)
{
	struct vmfsd_vm *vm = g->vm;
	char buf[512];
	int64_t now = mig_now_ms();
	unsigned long long n;
	ssize_t r;

	if (vm->nino < 2)
		return;
	r = vol_read(g->d->vol, vm->ino[1], buf, sizeof(buf), 0);
	if (r < (ssize_t)sizeof(g->sample))
		return;
	if (!memcmp(buf, g->sample, sizeof(g->sample)))
		return;
	memcpy(g->sample, buf, sizeof(g->sample));
	/* The write interval that spans the switchover is the guest's
	 * pause; those before it, how often it writes anyway. */
	if (g->sample_ms && g->switch_t0 && g->sample_ms <= g->switch_t0)
		g->gap_ms = now - g->sample_ms;
	else if (g->sample_ms && !g->switch_t0 &&
		 now - g->sample_ms > g->normal_ms)
		g->normal_ms = now - g->sample_ms;
	g->sample_ms = now;
	if (sscanf(buf, "vmfs-guest-counter %llu", &n) == 1) {
		if (!g->counter_seen)
			g->counter_first = n;
		g->counter_last = n;
		g->counter_seen = true;
	}
}

/* ---- QMP ---- */

/* When an event QEMU stamped time_ns (CLOCK_REALTIME) happened, on
 * our monotonic clock: now less how long ago it was, never later than
 * now (a stamp from the future, or none, counts as now). */
static int64_t mig_event_ms(int64_t time_ns)
{
	struct timespec ts;
	int64_t ago_ns;

	clock_gettime(CLOCK_REALTIME, &ts);
	ago_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - time_ns;
	if (!time_ns || ago_ns < 0 || ago_ns > (int64_t)MIG_COMPLETE_MS * 1000000)
		ago_ns = 0;
	return mig_now_ms() - ago_ns / 1000000;
}

static void mig_on_event(void *arg, const char *event, const char *data,
			 int64_t time_ns)
{
	struct vm_mig *g = arg;
	json_object *o, *st;

	if (!strcmp(event, "RESUME")) {
		g->ev_resumed = true;
		g->resume_ms = mig_event_ms(time_ns);
		return;
	}
	if (!strcmp(event, "STOP") && g->source && g->state == MIG_COPYING) {
		g->stop_ms = mig_event_ms(time_ns);
		return;
	}
	if (strcmp(event, "MIGRATION"))
		return;
	o = json_tokener_parse(data);
	if (o && json_object_object_get_ex(o, "status", &st)) {
		const char *s = json_object_get_string(st);

		if (!strcmp(s, "pre-switchover"))
			g->ev_pre = true;
		else if (!strcmp(s, "completed"))
			g->ev_completed = true;
		else if (!strcmp(s, "failed") || !strcmp(s, "cancelled"))
			g->ev_failed = true;
	}
	json_object_put(o);
}

static void mig_step(struct vm_mig *g);

static int32_t mig_on_qmp(int32_t fd, int32_t revents, void *data)
{
	struct vm_mig *g = data;

	(void)fd;
	(void)revents;
	if (hv_qmp_poll_events(g->q)) {
		/* QEMU went away: its pidfd tells the rest. */
		qb_loop_poll_del(g->d->loop, hv_qmp_fd(g->q));
		hv_qmp_close(g->q);
		g->q = NULL;
		return 0;
	}
	mig_step(g);
	return 0;
}

static int mig_qmp_open(struct vm_mig *g, char *msg, size_t len)
{
	char err[HV_ERR_MAX];
	int ret = hv_qmp_open(g->vm->qmp, MIG_QMP_MS, mig_on_event, g, &g->q,
			      err, sizeof(err));

	if (ret) {
		snprintf(msg, len, "cannot talk to QEMU of VM %s on QMP: %s",
			 g->vm->path, err[0] ? err : strerror(-ret));
		return ret;
	}
	if (qb_loop_poll_add(g->d->loop, QB_LOOP_HIGH, hv_qmp_fd(g->q),
			     POLLIN, g, mig_on_qmp)) {
		hv_qmp_close(g->q);
		g->q = NULL;
		snprintf(msg, len, "cannot poll QEMU's QMP socket");
		return -EIO;
	}
	return 0;
}

static void mig_qmp_close(struct vm_mig *g)
{
	if (!g->q)
		return;
	qb_loop_poll_del(g->d->loop, hv_qmp_fd(g->q));
	hv_qmp_close(g->q);
	g->q = NULL;
}

/* A QMP command on the session; msg says why it failed. */
static int mig_qmp(struct vm_mig *g, const char *cmd, const char *args,
		   char **result, char *msg, size_t len)
{
	char err[HV_ERR_MAX];
	int ret;

	if (!g->q) {
		snprintf(msg, len, "QEMU of VM %s is gone", g->vm->path);
		return -ECONNRESET;
	}
	ret = hv_qmp_call(g->q, cmd, args, MIG_QMP_MS, result, err,
			  sizeof(err));
	if (ret)
		snprintf(msg, len, "QEMU of VM %s: %s", g->vm->path,
			 err[0] ? err : strerror(-ret));
	return ret;
}

/* The QMP session of a migration, with MIGRATION events and cap
 * (the source's pause-before-switchover, the destination's
 * late-block-activate) on. */
static int mig_qmp_session(struct vm_mig *g, const char *cap, char *msg,
			   size_t len)
{
	char args[200];
	int ret = mig_qmp_open(g, msg, len);

	snprintf(args, sizeof(args), "{\"capabilities\": [{\"capability\": "
		 "\"%s\", \"state\": true}, {\"capability\": \"events\", "
		 "\"state\": true}]}", cap);
	if (!ret)
		ret = mig_qmp(g, "migrate-set-capabilities", args, NULL, msg,
			      len);
	return ret;
}

/* query-migrate's figures into g. */
static void mig_query(struct vm_mig *g)
{
	json_object *o, *ram, *v;
	char *res = NULL, msg[256];

	if (mig_qmp(g, "query-migrate", NULL, &res, msg, sizeof(msg)) || !res)
		return;
	o = json_tokener_parse(res);
	free(res);
	if (!o)
		return;
	if (json_object_object_get_ex(o, "ram", &ram)) {
		if (json_object_object_get_ex(ram, "total", &v))
			g->ram_total = (uint64_t)json_object_get_int64(v);
		if (json_object_object_get_ex(ram, "transferred", &v))
			g->ram_done = (uint64_t)json_object_get_int64(v);
		if (json_object_object_get_ex(ram, "remaining", &v))
			g->ram_remaining = (uint64_t)json_object_get_int64(v);
	}
	if (json_object_object_get_ex(o, "downtime", &v))
		g->downtime_ms = json_object_get_int64(v);
	if (json_object_object_get_ex(o, "total-time", &v))
		g->total_ms = json_object_get_int64(v);
	if (json_object_object_get_ex(o, "error-desc", &v))
		snprintf(g->msg, sizeof(g->msg), "QEMU: %s",
			 json_object_get_string(v));
	json_object_put(o);
}

/* ---- the files the migration hands over ---- */

static void mig_files_detach_end(struct vm_mig *g)
{
	struct vmfsd_vm *vm = g->vm;

	if (!g->detached)
		return;
	for (unsigned i = 0; i < vm->nino; i++)
		vol_file_detach_end(g->d->vol, vm->ino[i]);
	if (g->con_ino)
		vol_file_detach_end(g->d->vol, g->con_ino);
	g->detached = false;
}

/* Detach every file of the VM here; on failure none stays detached. */
static int mig_files_detach(struct vm_mig *g, char *msg, size_t len)
{
	struct vmfsd_vm *vm = g->vm;
	int ret = 0;

	g->detached = true;
	for (unsigned i = 0; i <= vm->nino && !ret; i++) {
		uint64_t ino = i < vm->nino ? vm->ino[i] : g->con_ino;

		if (ino)
			ret = vol_file_detach(g->d->vol, ino);
	}
	if (ret)
		snprintf(msg, len, "cannot let the locks of VM %.300s go: %s",
			 vm->path, strerror(-ret));
	return ret;
}

/* Take the locks of every detached file as the opens here need them;
 * -EBUSY naming the holder in msg. */
static int mig_files_attach(struct vm_mig *g, char *msg, size_t len)
{
	struct vmfsd_vm *vm = g->vm;
	char who[600] = "";
	int ret = 0;

	for (unsigned i = 0; i <= vm->nino && !ret; i++) {
		uint64_t ino = i < vm->nino ? vm->ino[i] : g->con_ino;

		if (ino)
			ret = vol_file_attach(g->d->vol, ino, who, sizeof(who));
	}
	if (ret == -EBUSY)
		snprintf(msg, len, "the files of VM %.300s are locked by %.600s", vm->path,
			 who[0] ? who : "another host");
	else if (ret)
		snprintf(msg, len, "cannot lock the files of VM %.300s: %s", vm->path,
			 strerror(-ret));
	if (!ret)
		g->detached = false;
	return ret;
}

/* ---- both sides ---- */

static void mig_timer(void *data);

static void mig_timer_arm(struct vm_mig *g)
{
	if (g->timer_set)
		return;
	if (!qb_loop_timer_add(g->d->loop, QB_LOOP_HIGH,
			       MIG_TICK_MS * 1000000ull, g, mig_timer, &g->timer))
		g->timer_set = true;
}

static void mig_timer_cancel(struct vm_mig *g)
{
	if (g->timer_set)
		qb_loop_timer_del(g->d->loop, g->timer);
	g->timer_set = false;
}

static bool mig_active(const struct vm_mig *g)
{
	return g && g->state != MIG_DONE && g->state != MIG_FAILED;
}

bool vmfsd_migrate_busy(const struct vmfsd_vm *vm)
{
	return mig_active(vm->mig);
}

bool vmfsd_migrate_keeps_record(const struct vmfsd_vm *vm)
{
	const struct vm_mig *g = vm->mig;

	if (vm->migrated_to[0])
		return true;    /* the destination's now */
	/* An incoming VM that never ran here: the source's record. */
	return g && !g->source && g->state != MIG_DONE;
}

static void mig_fail(struct vm_mig *g, const char *why)
{
	if (!mig_active(g))
		return;
	snprintf(g->msg, sizeof(g->msg), "%s", why);
	g->state = MIG_FAILED;
	g->done_ms = mig_now_ms();
	mig_timer_cancel(g);
	/* QEMU's QMP socket serves one client at a time: the supervisor's
	 * own commands (a stop's system_powerdown) need it back. */
	mig_qmp_close(g);
	qb_log(LOG_WARNING, "migration of VM %s %s host %s failed: %s",
	       g->vm->path, g->source ? "to" : "from", g->peer_name, why);
}

/* ---- the source ---- */

/*
 * The run record (HA, ha.c) names the destination as where the VM is
 * going (going), or no longer: written before "prepare" goes out, under the
 * config's lock, which is ours until the switchover.  The destination
 * rewrites the record once the guest runs there; should it die before
 * that, the survivors find a record whose destination is gone and
 * restart the VM (the lock decides, as always: while the VM still runs
 * here they cannot take it).
 */
static void mig_src_record(struct vm_mig *g, bool going)
{
	char vmdir[PATH_MAX * 2], err[256];
	struct hv_ha_state s;
	int ret;

	if (!going && !g->moving_recorded)
		return;
	snprintf(vmdir, sizeof(vmdir), "%s%s", g->d->a->mountpoint,
		 g->vm->path);
	ret = vmfsd_mio_ha_read(vmdir, &s, err, sizeof(err));
	if (ret == -ENOENT)
		return;
	if (!ret) {
		s.moving_uuid[0] = s.moving_name[0] = 0;
		if (going) {
			vol_uuid_format(g->peer.uuid, s.moving_uuid);
			snprintf(s.moving_name, sizeof(s.moving_name), "%s",
				 g->peer_name);
		}
		ret = vmfsd_mio_ha_write(vmdir, &s);
	}
	if (ret)
		qb_log(LOG_WARNING, "VM %s: cannot write its run record %s/%s: "
		       "%s%s%s%s", g->vm->path, vmdir, HV_HA_STATE_NAME,
		       vmfs_strerror(ret),
		       going ? "; HA could not restart it should host " : "",
		       going ? g->peer_name : "",
		       going ? " die right after the switchover" : "");
	else
		g->moving_recorded = going;
}

/* The guest cannot go on here: neither its locks nor its QEMU. */
static void mig_src_kill(struct vm_mig *g, const char *why)
{
	struct vmfsd_vm *vm = g->vm;

	qb_log(LOG_ERR, "migration of VM %s to host %s: %s; killing its QEMU "
	       "here (pid %ld) so that it never runs twice; if it does not run "
	       "on %s, start it again once that host is recovered", vm->path,
	       g->peer_name, why, (long)vm->pid, g->peer_name);
	vm->phase = VM_QUIT;
	if (vm->pid > 0)
		kill(vm->pid, SIGKILL);
	mig_fail(g, why);
}

/* Before the destination took the locks: back to running here. */
static void mig_src_back(struct vm_mig *g, const char *why)
{
	char msg[512];

	if (g->detached && mig_files_attach(g, msg, sizeof(msg))) {
		char text[1100];

		snprintf(text, sizeof(text), "%s, and the locks cannot be taken "
			 "back (%s)", why, msg);
		mig_send_op(g->vm, "abort", why);
		mig_src_kill(g, text);
		return;
	}
	if (g->state >= MIG_COPYING)
		mig_qmp(g, "migrate_cancel", NULL, NULL, msg, sizeof(msg));
	mig_send_op(g->vm, "abort", why);
	mig_fail(g, why);
	mig_src_record(g, false);
	qb_log(LOG_NOTICE, "VM %s keeps running on this host", g->vm->path);
}

static void mig_src_switch(struct vm_mig *g)
{
	char msg[512];

	g->state = MIG_SWITCHING;
	g->switch_t0 = mig_now_ms();
	g->deadline_ms = g->switch_t0 + MIG_SWITCH_MS;
	/* The guest is stopped and QEMU flushed its disks: what the locks
	 * cover goes home and the locks are let go on disk. */
	if (mig_files_detach(g, msg, sizeof(msg))) {
		mig_src_back(g, msg);
		return;
	}
	mig_send_op(g->vm, "switch", NULL);
	g->switch_tx_ms = mig_now_ms();
}

static void mig_src_switched(struct vm_mig *g)
{
	char msg[512];

	g->handover_ms = mig_now_ms() - g->switch_t0;
	g->state = MIG_COMPLETING;
	g->deadline_ms = mig_now_ms() + MIG_COMPLETE_MS;
	if (mig_qmp(g, "migrate-continue", "{\"state\": \"pre-switchover\"}",
		    NULL, msg, sizeof(msg)))
		mig_src_kill(g, msg);
}

/* The destination's RESUME: the guest's whole pause (see pause_ms). */
static void mig_src_resumed(struct vm_mig *g, json_object *o)
{
	int64_t run = 0, proc = 0, rtt;
	json_object *v;

	if (json_object_object_get_ex(o, "run_ms", &v))
		run = json_object_get_int64(v);
	if (json_object_object_get_ex(o, "proc_ms", &v))
		proc = json_object_get_int64(v);
	rtt = g->switch_t0 + g->handover_ms - g->switch_tx_ms - proc;
	/* Figures from the network: only sane ones count. */
	if (!g->stop_ms || !g->switch_tx_ms || run < 0 || run > MIG_COMPLETE_MS ||
	    proc < 0 || proc > run)
		return;
	g->pause_ms = g->switch_tx_ms - g->stop_ms + (rtt > 0 ? rtt / 2 : 0) +
		      run;
}

static void mig_src_completed(struct vm_mig *g)
{
	mig_query(g);
	g->state = MIG_FINISHING;
	g->done_ms = mig_now_ms();
	g->deadline_ms = g->done_ms + MIG_TAIL_MS;
	qb_log(LOG_NOTICE, "VM %s migrated to host %s: %" PRId64 " ms, QEMU "
	       "downtime %" PRId64 " ms, lock handover %" PRId64 " ms",
	       g->vm->path, g->peer_name, g->done_ms - g->t0_ms,
	       g->downtime_ms, g->handover_ms);
}

static void mig_src_finish(struct vm_mig *g)
{
	struct vmfsd_vm *vm = g->vm;
	char msg[256];

	mig_timer_cancel(g);
	if (!g->downtime_ms)
		mig_query(g);   /* QEMU may say it only after its event */
	g->state = MIG_DONE;
	snprintf(vm->migrated_to, sizeof(vm->migrated_to), "%s", g->peer_name);
	vm->phase = VM_QUIT;
	if (mig_qmp(g, "quit", NULL, NULL, msg, sizeof(msg)) && vm->pid > 0)
		kill(vm->pid, SIGKILL);
	mig_qmp_close(g);
}

/* ---- the destination ---- */

static void mig_dst_abort(struct vm_mig *g, const char *why)
{
	struct vmfsd_vm *vm = g->vm;

	mig_fail(g, why);
	if (vm->pid > 0) {
		vm->phase = VM_QUIT;
		kill(vm->pid, SIGKILL);
	}
}

/* Is the VM's config on disk (read once its lock is ours) the one the
 * source sent?  -EPROTO with msg if not.  Read through the engine, by
 * the inode whose lock we hold (vm->ino[0]): this runs while the guest
 * is paused, and needs no trip through the kernel and our mount. */
static int mig_dst_config_same(struct vm_mig *g, char *msg, size_t len)
{
	char file[PATH_MAX + 16], *sent, *disk;
	struct hv_config *c = malloc(sizeof(*c));
	char *text = malloc(MIG_CONFIG_MAX + 1);
	ssize_t n = -ENOMEM, got;
	int ret;

	snprintf(file, sizeof(file), "%s/%s", g->vm->path, HV_CONFIG_NAME);
	if (c && text && g->cfg)
		for (n = 0; n <= MIG_CONFIG_MAX; n += got) {
			got = vol_read(g->d->vol, g->vm->ino[0], text + n,
				       MIG_CONFIG_MAX + 1 - (size_t)n,
				       (uint64_t)n);
			if (got <= 0) {
				n = got < 0 ? got : n;
				break;
			}
		}
	if (n < 0 || n > MIG_CONFIG_MAX) {
		ret = n < 0 ? (int)n : -EFBIG;
		snprintf(msg, len, "cannot read %.400s on host %s: %s", file,
			 g->d->host_name, strerror(-ret));
		free(c);
		free(text);
		return ret;
	}
	text[n] = 0;
	ret = hv_config_parse(text, file, c, msg, len);
	free(text);
	if (ret) {
		free(c);
		return ret;
	}
	sent = hv_config_encode(g->cfg);
	disk = hv_config_encode(c);
	free(c);
	if (!sent || !disk)
		ret = -ENOMEM;
	else if (strcmp(sent, disk))
		ret = -EPROTO;
	if (ret)
		snprintf(msg, len, ret == -ENOMEM ? "out of memory" :
			 "%s/%s on the datastore is not the config host %s "
			 "sent: not taking VM %s over", g->vm->path,
			 HV_CONFIG_NAME, g->peer_name, g->vm->path);
	free(sent);
	free(disk);
	return ret;
}

static void mig_dst_switch(struct vm_mig *g)
{
	struct vmfsd_vm *vm = g->vm;
	char msg[1024];
	unsigned opened = 0;
	int ret;

	ret = mig_files_attach(g, msg, sizeof(msg));
	/* The supervisor's own opens of the config and disks, as at a
	 * start: they keep the locks while QEMU runs. */
	while (!ret && opened < vm->nino) {
		char who[600] = "";

		ret = vol_open_file_who(g->d->vol, vm->ino[opened], true, who,
					sizeof(who));
		if (ret < 0) {
			snprintf(msg, sizeof(msg), "cannot lock a file of VM %.300s: "
				 "%s%s%.600s", vm->path, strerror(-ret),
				 who[0] ? ", held by " : "", who);
			break;
		}
		ret = 0;
		opened++;
	}
	/* The config came over the network: the one on disk, which the
	 * lock now ours guards, must say the same. */
	if (!ret)
		ret = mig_dst_config_same(g, msg, sizeof(msg));
	if (ret) {
		while (opened--)
			vol_release_file(g->d->vol, vm->ino[opened], true);
		/* Whatever was taken goes back. */
		mig_files_detach(g, msg + strlen(msg), 0);
		mig_send_op(vm, "failed", msg);
		mig_dst_abort(g, msg);
		return;
	}
	vm->unopened = false;
	g->state = MIG_COMPLETING;
	g->deadline_ms = mig_now_ms() + MIG_COMPLETE_MS;
	mig_send_op(vm, "switched", NULL);
	g->switched_tx_ms = mig_now_ms();
}

/*
 * The run record names this host now (HA, ha.c): written under the
 * config's lock, which is ours.  Once the guest runs here, not while it
 * is paused: the write goes through our mount (a helper process, an
 * fsync, a rename that may wait for the file's lock to come from the
 * source), and done before the RESUME it lengthened the guest's pause by
 * about 30 ms (median, bench/migrate.sh), presumably by keeping this
 * host's mount busy while QEMU reopened its disks through it.  The
 * source's record says where the VM went meanwhile (mig_src_record).
 */
static void mig_dst_record(struct vm_mig *g)
{
	char vmdir[PATH_MAX * 2], herr[256];
	struct hv_ha_state prev;
	bool have;

	if (!g->cfg)
		return;
	snprintf(vmdir, sizeof(vmdir), "%s%s", g->d->a->mountpoint,
		 g->vm->path);
	have = !vmfsd_mio_ha_read(vmdir, &prev, herr, sizeof(herr));
	vmfsd_vm_record(g->d, vmdir, g->cfg, have ? &prev : NULL);
}

/* ---- the state machine ---- */

static void mig_step(struct vm_mig *g)
{
	int64_t now = mig_now_ms();

	if (!mig_active(g))
		return;
	if (g->source) {
		if (g->ev_failed && g->state <= MIG_SWITCHING) {
			char why[600];

			mig_query(g);
			snprintf(why, sizeof(why), "QEMU's migration failed%s%s",
				 g->msg[0] ? ": " : "", g->msg);
			mig_src_back(g, why);
			return;
		}
		if (g->ev_failed && g->state == MIG_COMPLETING) {
			mig_src_kill(g, "QEMU's migration failed after the locks "
				     "moved to the destination");
			return;
		}
		if (g->state == MIG_COPYING && g->ev_pre)
			mig_src_switch(g);
		if (g->state == MIG_COMPLETING && g->ev_completed)
			mig_src_completed(g);
		/* Done once the guest wrote its counter again (or writes
		 * none: not the test guest). */
		if (g->state == MIG_FINISHING &&
		    (now >= g->deadline_ms ||
		     ((g->gap_ms || !g->counter_seen) && g->pause_ms)))
			mig_src_finish(g);
	} else if (g->state == MIG_COMPLETING && g->ev_resumed) {
		json_object *r = json_object_new_object();

		json_object_object_add(r, "op", json_object_new_string("resumed"));
		json_object_object_add(r, "run_ms", json_object_new_int64(
			g->resume_ms - g->switch_rx_ms));
		json_object_object_add(r, "proc_ms", json_object_new_int64(
			g->switched_tx_ms - g->switch_rx_ms));
		mig_send(g->vm, r);
		g->vm->phase = VM_RUNNING;
		g->vm->since_ns = (int64_t)time(NULL) * 1000000000;
		g->state = MIG_DONE;
		g->done_ms = now;
		mig_timer_cancel(g);
		mig_qmp_close(g);   /* the supervisor's again (mig_fail) */
		qb_log(LOG_NOTICE, "VM %s migrated in from host %s and runs here "
		       "(QEMU pid %ld)", g->vm->path, g->peer_name,
		       (long)g->vm->pid);
		mig_dst_record(g);
		return;
	}
	if (!mig_active(g) || now < g->deadline_ms ||
	    g->state == MIG_FINISHING)
		return;
	/* A deadline passed. */
	if (!g->source) {
		mig_dst_abort(g, g->state == MIG_COPYING ?
			      "the source never switched over" :
			      "the guest never resumed here");
	} else if (g->state == MIG_COMPLETING) {
		mig_src_kill(g, "the device state did not reach the destination "
			     "in time after the locks moved");
	} else {
		char why[256];

		snprintf(why, sizeof(why), "no answer from host %s in time "
			 "(%s)", g->peer_name, mig_state_names[g->state]);
		mig_src_back(g, why);
	}
}

static void mig_timer(void *data)
{
	struct vm_mig *g = data;

	g->timer_set = false;
	if (!mig_active(g))
		return;
	if (g->source)
		mig_sample(g);
	mig_step(g);
	if (mig_active(g))
		mig_timer_arm(g);
}

/* ---- messages from the peer (loop thread) ---- */

static struct vmfsd_vm *mig_vm_of(struct vmfsd *d, const char *path,
				  uint64_t id, const struct lock_holder *from)
{
	struct vmfsd_vm *vm = vmfsd_vm_find(d, path);

	if (!vm || !vm->mig || vm->mig->id != id ||
	    !mig_holder_eq(&vm->mig->peer, from))
		return NULL;
	return vm;
}

static int mig_dst_prepare(struct vmfsd *d, const struct mig_msg *m,
			   uint64_t id, const char *path, const char *config,
			   char *msg, size_t len);

static void mig_handle(struct vmfsd *d, const struct mig_msg *m)
{
	json_object *o = json_tokener_parse(m->data), *v;
	const char *op = NULL, *path = NULL, *text = NULL;
	struct vmfsd_vm *vm;
	uint64_t id = 0;

	if (!o)
		return;
	if (json_object_object_get_ex(o, "op", &v))
		op = json_object_get_string(v);
	if (json_object_object_get_ex(o, "path", &v))
		path = json_object_get_string(v);
	if (json_object_object_get_ex(o, "id", &v))
		id = (uint64_t)json_object_get_int64(v);
	if (json_object_object_get_ex(o, "msg", &v))
		text = json_object_get_string(v);
	if (!op || !path || path[0] != '/') {
		json_object_put(o);
		return;
	}
	if (!strcmp(op, "prepare")) {
		char msg[1024];
		const char *cfg = NULL;

		if (json_object_object_get_ex(o, "config", &v))
			cfg = json_object_get_string(v);
		if (mig_dst_prepare(d, m, id, path, cfg ? cfg : "", msg,
				    sizeof(msg))) {
			json_object *r = json_object_new_object();
			const char *t;

			qb_log(LOG_WARNING, "migration of VM %s from host %s "
			       "refused: %s", path, m->from_name, msg);
			json_object_object_add(r, "op", json_object_new_string("failed"));
			json_object_object_add(r, "msg", json_object_new_string(msg));
			json_object_object_add(r, "id", json_object_new_int64((int64_t)id));
			json_object_object_add(r, "path", json_object_new_string(path));
			t = json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN);
			if (d->cn)
				cn_send_app(d->cn, &m->from, t, strlen(t));
			json_object_put(r);
		}
		json_object_put(o);
		return;
	}
	vm = mig_vm_of(d, path, id, &m->from);
	if (!vm || !mig_active(vm->mig)) {
		json_object_put(o);
		return;
	}
	if (vm->mig->source) {
		struct vm_mig *g = vm->mig;

		if (!strcmp(op, "prepared") && g->state == MIG_PREPARING &&
		    json_object_object_get_ex(o, "uri", &v)) {
			json_object *a = json_object_new_object();
			const char *uri = json_object_get_string(v);
			char msg[512];

			g->state = MIG_COPYING;
			g->deadline_ms = mig_now_ms() + MIG_COPY_MS;
			/* From the network: a tcp: URI only, quoted by json-c. */
			json_object_object_add(a, "uri", json_object_new_string(uri));
			if (strncmp(uri, "tcp:", 4)) {
				snprintf(msg, sizeof(msg), "host %s answered with "
					 "a migration address that is not tcp:",
					 g->peer_name);
				mig_src_back(g, msg);
			} else if (mig_qmp(g, "migrate",
					   json_object_to_json_string_ext(a,
						JSON_C_TO_STRING_PLAIN),
					   NULL, msg, sizeof(msg))) {
				mig_src_back(g, msg);
			}
			json_object_put(a);
		} else if (!strcmp(op, "switched") &&
			   g->state == MIG_SWITCHING) {
			mig_src_switched(g);
		} else if (!strcmp(op, "resumed") && g->state >= MIG_COMPLETING) {
			mig_src_resumed(g, o);
		} else if (!strcmp(op, "failed")) {
			char why[700];

			snprintf(why, sizeof(why), "host %s: %s", g->peer_name,
				 text ? text : "failed");
			if (g->state == MIG_COMPLETING)
				mig_src_kill(g, why);
			else
				mig_src_back(g, why);
		}
	} else if (!strcmp(op, "switch") && vm->mig->state == MIG_COPYING) {
		vm->mig->switch_rx_ms = mig_now_ms();
		mig_dst_switch(vm->mig);
	} else if (!strcmp(op, "abort")) {
		char why[700];

		snprintf(why, sizeof(why), "the source host %s gave up: %s",
			 vm->mig->peer_name, text ? text : "");
		if (vm->mig->state < MIG_COMPLETING)
			mig_dst_abort(vm->mig, why);
	}
	json_object_put(o);
}

static void mig_peer_left(struct vmfsd *d, const struct mig_msg *m)
{
	for (struct vmfsd_vm *vm = d->vms; vm; vm = vm->next) {
		struct vm_mig *g = vm->mig;
		char why[200];

		if (!mig_active(g) || !mig_holder_eq(&g->peer, &m->from))
			continue;
		snprintf(why, sizeof(why), "host %s left the cluster group",
			 g->peer_name);
		if (!g->source) {
			if (g->state < MIG_COMPLETING)
				mig_dst_abort(g, why);
		} else if (g->state < MIG_COMPLETING) {
			mig_src_back(g, why);
		}
	}
}

/* What the fast path's thread queued, all of it. */
static struct mig_msg *mig_take_queue(struct vmfsd *d)
{
	struct mig_msg *q;

	pthread_mutex_lock(&d->mig_mu);
	q = d->mig_q;
	d->mig_q = NULL;
	pthread_mutex_unlock(&d->mig_mu);
	return q;
}

static int32_t mig_on_pipe(int32_t fd, int32_t revents, void *data)
{
	struct vmfsd *d = data;
	struct mig_msg *q;
	char buf[64];

	(void)revents;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	q = mig_take_queue(d);
	while (q) {
		struct mig_msg *next = q->next;

		if (q->left)
			mig_peer_left(d, q);
		else
			mig_handle(d, q);
		free(q);
		q = next;
	}
	return 0;
}

/* ---- the destination's start ---- */

/* This host's cluster address (corosync's ring0_addr). */
static int mig_self_addr(struct vmfsd *d, char *out, size_t len)
{
	struct cn_view *v = malloc(sizeof(*v));
	int ret = -ENOENT;

	if (!v)
		return -ENOMEM;
	cn_view_get(d->cn, v);
	for (uint32_t i = 0; i < v->n; i++)
		if (v->m[i].nodeid == v->my_nodeid &&
		    v->m[i].pid == (uint32_t)getpid() && v->m[i].node_addr[0]) {
			snprintf(out, len, "%s", v->m[i].node_addr);
			ret = 0;
		}
	free(v);
	return ret;
}

static struct vm_mig *mig_new(struct vmfsd *d, struct vmfsd_vm *vm,
			      bool source, const struct lock_holder *peer,
			      const char *peer_name)
{
	struct vm_mig *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->d = d;
	g->vm = vm;
	g->source = source;
	g->peer = *peer;
	snprintf(g->peer_name, sizeof(g->peer_name), "%s", peer_name);
	g->t0_ms = mig_now_ms();
	return g;
}

/* Resolve the console log (created if missing: QEMU appends to it). */
static int mig_console_ino(struct vmfsd *d, struct vmfsd_vm *vm, uint64_t *ino)
{
	char p[PATH_MAX + 32];

	snprintf(p, sizeof(p), "%s/%s", vm->path, HV_CONSOLE_NAME);
	if (vmfsd_vm_resolve(d->vol, p, ino)) {
		char full[PATH_MAX * 2 + 32];

		snprintf(full, sizeof(full), "%s%s", d->a->mountpoint, p);
		vmfsd_mio_touch(full);
		return vmfsd_vm_resolve(d->vol, p, ino);
	}
	return 0;
}

static int mig_dst_prepare(struct vmfsd *d, const struct mig_msg *m,
			   uint64_t id, const char *path, const char *config,
			   char *msg, size_t len)
{
	char vmdir[PATH_MAX * 2], log[PATH_MAX * 2 + 80], addr[64], file[300];
	char **argv = NULL, *res = NULL, args[160];
	struct vmfsd_vm *vm = vmfsd_vm_find(d, path);
	struct hv_config c;
	struct vm_mig *g;
	json_object *o = NULL, *a, *e, *port;
	uint64_t room;
	int ret, status = 0;

	if (vm && vm->phase != VM_ENDED) {
		snprintf(msg, len, "VM %s already %s on host %s", path,
			 vm->phase == VM_INCOMING ? "comes in" : "runs",
			 d->host_name);
		return -EBUSY;
	}
	if (d->fenced || d->stopping) {
		snprintf(msg, len, "host %s is %s", d->host_name,
			 d->fenced ? "fenced" : "unmounting");
		return -EIO;
	}
	if (mig_self_addr(d, addr, sizeof(addr))) {
		snprintf(msg, len, "host %s has no cluster address in corosync's "
			 "nodelist (ring0_addr) for the migration stream",
			 d->host_name);
		return -EADDRNOTAVAIL;
	}
	snprintf(file, sizeof(file), "%s of VM %s (sent by host %s)",
		 HV_CONFIG_NAME, path, m->from_name);
	ret = hv_config_parse(config, file, &c, msg, len);
	if (ret)
		return ret;
	/* The incoming QEMU takes all of the guest's memory at once (see
	 * -mem-prealloc below): refuse here, before anything moved, a VM
	 * this host has no room for, rather than meet the OOM killer. */
	room = vmfsd_vm_room_mib(d);
	if (c.memory_mib > room) {
		snprintf(msg, len, "host %s has %llu MiB for more VMs (its "
			 "--vm-memory, by default all its memory, less what the "
			 "VMs it runs are configured with, and at most what its "
			 "kernel has available), and VM %s needs %llu MiB: free "
			 "memory there or migrate to another host", d->host_name,
			 (unsigned long long)room, path,
			 (unsigned long long)c.memory_mib);
		return -ENOMEM;
	}
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->d = d;
	vm->pidfd = -1;
	vm->unopened = true;
	vm->phase = VM_INCOMING;
	snprintf(vm->path, sizeof(vm->path), "%s", path);
	snprintf(vm->name, sizeof(vm->name), "%s", c.name);
	vm->memory_mib = c.memory_mib;
	g = vm->mig = mig_new(d, vm, false, &m->from, m->from_name);
	if (!g) {
		free(vm);
		return -ENOMEM;
	}
	g->id = id;
	g->cfg = malloc(sizeof(*g->cfg));
	if (g->cfg)
		*g->cfg = c;
	/* The files, without their locks: the source holds them. */
	for (unsigned i = 0; i <= c.ndisks && !ret; i++) {
		char p[PATH_MAX * 2 + 2];

		snprintf(p, sizeof(p), "%s/%s", path,
			 i ? c.disks[i - 1] : HV_CONFIG_NAME);
		ret = vmfsd_vm_resolve(d->vol, p, &vm->ino[vm->nino]);
		if (ret)
			snprintf(msg, len, "cannot find %.400s on host %s: %s", p,
				 d->host_name, strerror(-ret));
		else
			vm->nino++;
	}
	if (!ret && (ret = mig_console_ino(d, vm, &g->con_ino)))
		snprintf(msg, len, "cannot find or create %s/%s: %s", path,
			 HV_CONSOLE_NAME, strerror(-ret));
	if (!ret)
		ret = mig_files_detach(g, msg, len);
	if (!ret)
		ret = vmfsd_vm_sock_paths(d, vm, msg, len);
	if (ret)
		goto fail;
	snprintf(vmdir, sizeof(vmdir), "%s%s", d->a->mountpoint, path);
	vmfsd_vm_log_path(d, vmdir, log, sizeof(log));
	ret = hv_qemu_argv(&c, vmdir, vm->qmp, vm->con,
			   access("/dev/kvm", R_OK | W_OK) == 0, &argv);
	/*
	 * -mem-prealloc: the guest's memory is allocated (and zeroed by the
	 * kernel) before the stream starts, not page by page as it arrives.
	 * Arriving into fresh memory, every page cost the loading QEMU a page
	 * fault; it fell behind the stream by tens of ms, and all of that
	 * backlog fell into the guest's pause (bench/migrate.sh: 48-61 ms
	 * median, alternate migrations at 100-150 ms; preallocated, 21-32 ms
	 * each; bench/RESULTS.md).  The VM's whole memory is taken on this
	 * host from here on, as it may be on any host running it.
	 */
	if (!ret && (hv_argv_append(&argv, "-incoming") ||
		     hv_argv_append(&argv, "defer") ||
		     hv_argv_append(&argv, "-mem-prealloc")))
		ret = -ENOMEM;
	if (ret) {
		hv_argv_free(argv);
		snprintf(msg, len, "cannot build QEMU's command line: %s",
			 strerror(-ret));
		goto fail;
	}
	vm->pid = vmfsd_spawn(NULL, argv, -1, -1, log);
	hv_argv_free(argv);
	if (vm->pid < 0) {
		ret = -errno;
		vm->pid = 0;
		snprintf(msg, len, "cannot start QEMU (with its log %.400s): %s",
			 log, strerror(-ret));
		goto fail;
	}
	ret = vmfsd_vm_wait_up(vm, mig_up_ms(c.memory_mib), &status);
	if (ret) {
		snprintf(msg, len, "the incoming QEMU on host %s did not come up; "
			 "its log %.400s says", d->host_name, log);
		if (ret != -ECHILD) {
			kill(vm->pid, SIGKILL);
			waitpid(vm->pid, NULL, 0);
		}
		vm->pid = 0;
		vmfsd_mio_tail(log, msg, len);
		ret = -EIO;
		goto fail;
	}
	ret = vmfsd_vm_watch(d, vm, msg, len);
	if (ret) {
		vm->pid = 0;
		goto fail;
	}
	vmfsd_vm_link(d, vm);
	vm->since_ns = (int64_t)time(NULL) * 1000000000;
	/* From here on the pidfd ends it if QEMU dies. */
	ret = mig_qmp_session(g, "late-block-activate", msg, len);
	snprintf(args, sizeof(args), "{\"uri\": \"tcp:%s:0\"}", addr);
	if (!ret)
		ret = mig_qmp(g, "migrate-incoming", args, NULL, msg, len);
	if (!ret)
		ret = mig_qmp(g, "query-migrate", NULL, &res, msg, len);
	if (!ret && (!(o = json_tokener_parse(res)) ||
		     !json_object_object_get_ex(o, "socket-address", &a) ||
		     !(e = json_object_array_get_idx(a, 0)) ||
		     !json_object_object_get_ex(e, "port", &port))) {
		snprintf(msg, len, "QEMU on host %s did not say which port it "
			 "listens on", d->host_name);
		ret = -EPROTO;
	}
	free(res);
	if (ret) {
		json_object_put(o);
		mig_dst_abort(g, msg);
		return ret;
	}
	{
		json_object *r = json_object_new_object();
		char uri[128];

		snprintf(uri, sizeof(uri), "tcp:%s:%s", addr,
			 json_object_get_string(port));
		json_object_object_add(r, "op", json_object_new_string("prepared"));
		json_object_object_add(r, "uri", json_object_new_string(uri));
		mig_send(vm, r);
	}
	json_object_put(o);
	g->state = MIG_COPYING;
	g->deadline_ms = mig_now_ms() + MIG_COPY_MS + MIG_SWITCH_MS;
	mig_timer_arm(g);
	qb_log(LOG_NOTICE, "VM %s: incoming migration from host %s (QEMU pid "
	       "%ld)", path, m->from_name, (long)vm->pid);
	return 0;
fail:
	mig_files_detach_end(g);
	if (g->con_ino)
		vol_forget(d->vol, g->con_ino, 1);
	g->con_ino = 0;
	vmfsd_vm_locks_release(d, vm);
	vmfsd_migrate_free(vm);
	free(vm);
	return ret;
}

/* ---- QEMU exited (vm_ended) ---- */

void vmfsd_migrate_exited(struct vmfsd *d, struct vmfsd_vm *vm)
{
	struct vm_mig *g = vm->mig;

	mig_qmp_close(g);
	if (mig_active(g)) {
		char why[400];

		snprintf(why, sizeof(why), "QEMU on host %s exited: %s",
			 d->host_name, vm->why);
		if (g->source) {
			if (g->state == MIG_FINISHING) {
				g->state = MIG_DONE;   /* gone a bit early */
				snprintf(vm->migrated_to, sizeof(vm->migrated_to),
					 "%s", g->peer_name);
			} else {
				mig_send_op(vm, "abort", why);
				mig_fail(g, why);
			}
		} else {
			if (g->state < MIG_COMPLETING)
				mig_send_op(vm, "failed", why);
			mig_fail(g, why);
		}
	}
	mig_timer_cancel(g);
	mig_files_detach_end(g);
	if (g->con_ino)
		vol_forget(d->vol, g->con_ino, 1);
	g->con_ino = 0;
}

void vmfsd_migrate_free(struct vmfsd_vm *vm)
{
	struct vm_mig *g = vm->mig;

	if (!g)
		return;
	mig_timer_cancel(g);
	mig_qmp_close(g);
	free(g->cfg);
	free(g);
	vm->mig = NULL;
}

/* ---- control requests ---- */

/* Member named name (host name or UUID), known and not this host. */
static int mig_find_member(struct vmfsd *d, const char *name,
			   struct cn_member *out, char *msg, size_t len)
{
	struct cn_view *v = malloc(sizeof(*v));
	char names[1024] = "";
	int ret = -ENOENT;

	if (!v)
		return -ENOMEM;
	cn_view_get(d->cn, v);
	for (uint32_t i = 0; i < v->n; i++) {
		const struct cn_member *m = &v->m[i];
		char u[37];

		if (!m->known)
			continue;
		vol_uuid_format(m->host_uuid, u);
		if (!strcmp(m->host_name, name) || !strcmp(u, name)) {
			*out = *m;
			ret = 0;
		}
		snprintf(names + strlen(names), sizeof(names) - strlen(names),
			 "%s%s", names[0] ? ", " : "", m->host_name);
	}
	if (ret)
		snprintf(msg, len, "host %s is not in volume %s's cluster group "
			 "(other hosts there: %s); give a host name as 'vmfs "
			 "hosts' shows it", name, d->uuid, names[0] ? names : "none");
	free(v);
	return ret;
}

static int mig_start(struct vmfsd *d, const char *path, const char *to,
		     uint64_t bandwidth, char *msg, size_t len)
{
	struct vmfsd_vm *vm = vmfsd_vm_find(d, path);
	char cfgpath[PATH_MAX * 2 + 16], *text = NULL;
	struct cn_member peer;
	struct lock_holder h;
	struct vm_mig *g;
	json_object *o;
	int ret;

	if (!vm || vm->phase != VM_RUNNING) {
		snprintf(msg, len, "VM %s does not run on this host (%s); run "
			 "'vmfs vm migrate' on the host that runs it ('vmfs vm "
			 "status' names it)", path, d->host_name);
		return -ENOENT;
	}
	if (mig_active(vm->mig)) {
		snprintf(msg, len, "VM %s is being migrated already", path);
		return -EBUSY;
	}
	if (!d->cn) {
		snprintf(msg, len, "live migration needs the cluster fast path "
			 "(corosync) on both hosts; this mount has none (%s)",
			 d->a->no_cluster ? "--no-cluster" : "read-only");
		return -ENOTCONN;
	}
	if (!strcmp(to, d->host_name)) {
		snprintf(msg, len, "VM %s runs on %s already", path, to);
		return -EINVAL;
	}
	ret = mig_find_member(d, to, &peer, msg, len);
	if (ret)
		return ret;
	snprintf(cfgpath, sizeof(cfgpath), "%s%s/%s", d->a->mountpoint, path,
		 HV_CONFIG_NAME);
	ret = vmfsd_mio_read_text(cfgpath, &text, msg, len);
	if (ret) {
		if (!msg[0])
			snprintf(msg, len, "cannot read %s: %s", cfgpath,
				 vmfs_strerror(ret));
		return ret;
	}
	if (strlen(text) > CN_APP_MAX - 512) {
		snprintf(msg, len, "%s is too long to send (%zu bytes; at most "
			 "%d)", cfgpath, strlen(text), CN_APP_MAX - 512);
		free(text);
		return -E2BIG;
	}
	h = mig_holder_of(&peer);
	vmfsd_migrate_free(vm);
	g = vm->mig = mig_new(d, vm, true, &h, peer.host_name);
	if (!g) {
		free(text);
		return -ENOMEM;
	}
	g->id = ++d->mig_next_id;
	ret = mig_console_ino(d, vm, &g->con_ino);
	if (ret) {
		snprintf(msg, len, "cannot find %s/%s: %s", path, HV_CONSOLE_NAME,
			 strerror(-ret));
		g->con_ino = 0;
	}
	if (!ret)
		ret = mig_qmp_session(g, "pause-before-switchover", msg, len);
	if (!ret) {
		char args[160];

		snprintf(args, sizeof(args), "{\"max-bandwidth\": %llu, "
			 "\"downtime-limit\": %d}", (unsigned long long)
			 (bandwidth ? bandwidth : MIG_BANDWIDTH),
			 MIG_DOWNTIME_MS);
		ret = mig_qmp(g, "migrate-set-parameters", args, NULL, msg, len);
	}
	if (ret) {
		free(text);
		mig_fail(g, msg);
		mig_qmp_close(g);
		return ret;
	}
	g->state = MIG_PREPARING;
	g->deadline_ms = mig_now_ms() + MIG_PREPARE_MS +
			 mig_up_ms(vm->memory_mib);
	o = json_object_new_object();
	json_object_object_add(o, "op", json_object_new_string("prepare"));
	json_object_object_add(o, "config", json_object_new_string(text));
	free(text);
	/* From before the destination starts its QEMU: the record covers
	 * the whole migration (mig_src_record). */
	mig_src_record(g, true);
	mig_send(vm, o);
	mig_timer_arm(g);
	qb_log(LOG_NOTICE, "VM %s: migration to host %s begins", path,
	       g->peer_name);
	return 0;
}

static char *mig_status(struct vmfsd_vm *vm)
{
	struct vm_mig *g = vm->mig;
	json_object *o = json_object_new_object();
	char *out;

	if (g->source && g->state == MIG_COPYING)
		mig_query(g);
	json_object_object_add(o, "state",
			       json_object_new_string(mig_state_names[g->state]));
	json_object_object_add(o, "source", json_object_new_boolean(g->source));
	json_object_object_add(o, "peer", json_object_new_string(g->peer_name));
	json_object_object_add(o, "msg", json_object_new_string(g->msg));
	json_object_object_add(o, "ram_total",
			       json_object_new_int64((int64_t)g->ram_total));
	json_object_object_add(o, "ram_transferred",
			       json_object_new_int64((int64_t)g->ram_done));
	json_object_object_add(o, "ram_remaining",
			       json_object_new_int64((int64_t)g->ram_remaining));
	json_object_object_add(o, "elapsed_ms", json_object_new_int64(
		(g->done_ms ? g->done_ms : mig_now_ms()) - g->t0_ms));
	json_object_object_add(o, "downtime_ms",
			       json_object_new_int64(g->downtime_ms));
	json_object_object_add(o, "handover_ms",
			       json_object_new_int64(g->handover_ms));
	json_object_object_add(o, "pause_ms",
			       json_object_new_int64(g->pause_ms ? g->pause_ms : -1));
	json_object_object_add(o, "counter_gap_ms",
			       json_object_new_int64(g->counter_seen &&
						     g->gap_ms ? g->gap_ms : -1));
	json_object_object_add(o, "counter_interval_ms",
			       json_object_new_int64(g->normal_ms));
	json_object_object_add(o, "counter_first",
			       json_object_new_int64((int64_t)g->counter_first));
	json_object_object_add(o, "counter_last",
			       json_object_new_int64((int64_t)g->counter_last));
	out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return out;
}

int vmfsd_migrate_request(struct vmfsd *d, uint32_t type, const char *body,
			  char **reply, char *msg, size_t len)
{
	json_object *o = json_tokener_parse(body), *v;
	char path[PATH_MAX], to[VMFSD_HOST_NAME_MAX + 40] = "";
	uint64_t bandwidth = 0;
	struct vmfsd_vm *vm;
	int ret;

	if (!o || !json_object_object_get_ex(o, "path", &v)) {
		json_object_put(o);
		snprintf(msg, len, "the request names no VM (\"path\")");
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "%s", json_object_get_string(v));
	if (json_object_object_get_ex(o, "to", &v))
		snprintf(to, sizeof(to), "%s", json_object_get_string(v));
	if (json_object_object_get_ex(o, "bandwidth", &v))
		bandwidth = (uint64_t)json_object_get_int64(v);
	json_object_put(o);
	if (type == VMFSD_CTL_VM_MIGRATE)
		return mig_start(d, path, to, bandwidth, msg, len);
	vm = vmfsd_vm_find(d, path);
	if (!vm || !vm->mig) {
		snprintf(msg, len, "no migration of VM %s on this host", path);
		return -ENOENT;
	}
	/* The latest events first. */
	if (vm->mig->q && hv_qmp_poll_events(vm->mig->q) == 0)
		mig_step(vm->mig);
	*reply = mig_status(vm);
	ret = *reply ? 0 : -ENOMEM;
	return ret;
}

/* ---- set-up ---- */

int vmfsd_migrate_init(struct vmfsd *d)
{
	pthread_mutex_init(&d->mig_mu, NULL);
	d->mig_pipe[0] = d->mig_pipe[1] = -1;
	if (pipe2(d->mig_pipe, O_NONBLOCK | O_CLOEXEC))
		return -errno;
	return qb_loop_poll_add(d->loop, QB_LOOP_HIGH, d->mig_pipe[0], POLLIN,
				d, mig_on_pipe);
}

void vmfsd_migrate_fini(struct vmfsd *d)
{
	struct mig_msg *q;

	if (d->mig_pipe[0] < 0)
		return;
	qb_loop_poll_del(d->loop, d->mig_pipe[0]);
	close(d->mig_pipe[0]);
	close(d->mig_pipe[1]);
	d->mig_pipe[0] = d->mig_pipe[1] = -1;
	q = mig_take_queue(d);
	while (q) {
		struct mig_msg *next = q->next;

		free(q);
		q = next;
	}
}
