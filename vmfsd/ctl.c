/*
 * vmfsd's control socket: a libqb IPC service on the main loop, named
 * after the mount point (vmfsd_ctl_name), that answers `vmfs info
 * MOUNTPOINT` and `vmfs umount` (the protocol: include/vmfs/vmfsd.h).
 *
 * Who may talk to us: root and the user the daemon runs as, checked on
 * the peer credentials libqb takes from the socket (SO_PEERCRED) when it
 * accepts the connection; everyone else is refused before sending a byte
 * and logged.
 *
 * Requests are served on the loop thread and answered at once, except a
 * umount, whose reply waits until the volume is closed (vmfsd_ctl_stop).
 * Nothing here waits on a client: libqb reads a request only when it has
 * arrived whole, and a reply to a client that stopped reading fails
 * instead of blocking.  A bad frame, an unknown type or another protocol
 * version gets an error reply with a message.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <qb/qbipcs.h>
#include <qb/qbloop.h>
#include "vmfs/log.h"
#include <json-c/json.h>

#include "vmfs/fuse.h"
#include "vmfs/version.h"
#include "vmfs/vol.h"
#include "vmfsd_int.h"

/* Concurrent `vmfs umount` of one mount point: more is a runaway script. */
#define CTL_WAITERS_MAX 8

/* A grow runs on its own thread; the loop replies once it is done. */
struct ctl_grow_job {
	qb_ipcs_connection_t *c;    /* referenced until the reply */
	uint32_t type;
	struct vol *vol;
	struct vol_grow_opts o;
	struct vol_grow_result r;
	int ret;
	pthread_t thr;
	bool started;               /* thr runs (join it) */
	int done[2];                /* pipe: the thread's "I returned" */
};

struct vmfsd_ctl_server {
	struct vmfsd *d;
	qb_ipcs_service_t *svc;
	char name[VMFSD_CTL_NAME_MAX];
	qb_ipcs_connection_t *waiters[CTL_WAITERS_MAX];
	struct ctl_grow_job *grow;  /* the grow running, if any */
	char buf[VMFSD_CTL_MSG_MAX];
};

/* libqb's poll callbacks carry no context of ours; one daemon, one loop. */
static qb_loop_t *ctl_loop;

static int32_t ctl_poll_add(enum qb_loop_priority p, int32_t fd, int32_t events,
			    void *data, qb_ipcs_dispatch_fn_t fn)
{
	return qb_loop_poll_add(ctl_loop, p, fd, events, data, fn);
}

static int32_t ctl_poll_mod(enum qb_loop_priority p, int32_t fd, int32_t events,
			    void *data, qb_ipcs_dispatch_fn_t fn)
{
	return qb_loop_poll_mod(ctl_loop, p, fd, events, data, fn);
}

static int32_t ctl_poll_del(int32_t fd)
{
	return qb_loop_poll_del(ctl_loop, fd);
}

static int32_t ctl_job_add(enum qb_loop_priority p, void *data,
			   qb_loop_job_dispatch_fn fn)
{
	return qb_loop_job_add(ctl_loop, p, data, fn);
}

static struct vmfsd_ctl_server *ctl_of(qb_ipcs_connection_t *c)
{
	return qb_ipcs_connection_service_context_get(c);
}

static pid_t ctl_peer_pid(qb_ipcs_connection_t *c)
{
	struct qb_ipcs_connection_stats st;

	if (qb_ipcs_connection_stats_get(c, &st, QB_FALSE))
		return 0;
	return st.client_pid;
}

static int32_t ctl_accept(qb_ipcs_connection_t *c, uid_t uid, gid_t gid)
{
	struct vmfsd_ctl_server *s = ctl_of(c);

	if (uid == 0 || uid == geteuid())
		return 0;
	qb_log(LOG_WARNING, "control socket %s: refused pid %ld (uid %ld, gid "
	       "%ld): only root and uid %ld may control the mount of %s",
	       s->name, (long)ctl_peer_pid(c), (long)uid, (long)gid,
	       (long)geteuid(), s->d->a->mountpoint);
	return -EACCES;
}

/* Send a reply; a client that has gone or stopped reading loses it. */
static void ctl_reply(qb_ipcs_connection_t *c, uint32_t type, int err,
		      const char *body)
{
	struct vmfsd_ctl_server *s = ctl_of(c);
	ssize_t n;

	n = vmfsd_ctl_reply_frame(type, err, body ? body : "{}", s->buf,
				  sizeof(s->buf));
	if (n < 0) {
		qb_log(LOG_ERR, "control socket %s: reply to request %u does not "
		       "fit a message", s->name, type);
		return;
	}
	n = qb_ipcs_response_send(c, s->buf, (size_t)n);
	if (n < 0)
		qb_log(LOG_DEBUG, "control socket %s: cannot reply to pid %ld: %s",
		       s->name, (long)ctl_peer_pid(c), strerror((int)-n));
}

__attribute__((format(printf, 4, 5)))
static void ctl_reply_err(qb_ipcs_connection_t *c, uint32_t type, int err,
			  const char *fmt, ...)
{
	char msg[VMFSD_MSG_MAX], *body;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	body = vmfsd_ctl_error_encode(msg);
	ctl_reply(c, type, err, body);
	free(body);
}

static void ctl_info(qb_ipcs_connection_t *c, uint32_t type, const char *body)
{
	struct vmfsd_info info;
	char *reply;

	(void)body;
	vmfsd_info_get(ctl_of(c)->d, &info);
	reply = vmfsd_info_encode(&info);
	if (!reply)
		ctl_reply_err(c, type, -ENOMEM, "vmfsd is out of memory");
	else
		ctl_reply(c, type, 0, reply);
	free(reply);
}

static bool ctl_wait_add(struct vmfsd_ctl_server *s, qb_ipcs_connection_t *c)
{
	for (int i = 0; i < CTL_WAITERS_MAX; i++)
		if (!s->waiters[i]) {
			qb_ipcs_connection_ref(c);
			s->waiters[i] = c;
			return true;
		}
	return false;
}

/*
 * Unmount the way umount(8) does, not lazily, so a busy mount stays and
 * the caller hears why; the FUSE session then ends on its own and the
 * loop closes the volume (vmfsd_ctl_stop replies).
 */
static void ctl_umount(qb_ipcs_connection_t *c, uint32_t type, const char *body)
{
	struct vmfsd_ctl_server *s = ctl_of(c);
	const char *mp = s->d->a->mountpoint;
	int ret = 0;

	if (!s->d->stopping) {
		char names[1024];
		unsigned n = vmfsd_vms_running(s->d, names, sizeof(names));
		json_object *o = json_tokener_parse(body), *v;
		bool stop_vms = o && json_object_object_get_ex(o, "stop_vms", &v) &&
			json_object_get_boolean(v);

		json_object_put(o);
		/* A host that fenced itself killed its VMs (mount.c); until
		 * their QEMUs have ended they hold files open on the mount.
		 * The client asks again (vmfs umount does for a while). */
		if (n && s->d->fenced) {
			vmfsd_vms_kill_all(s->d);
			ctl_reply_err(c, type, -EAGAIN, "this host fenced itself "
				      "and killed its VM%s (%s); %s still "
				      "ending: retry in a moment", n > 1 ? "s" :
				      "", names, n > 1 ? "they are" : "it is");
			return;
		}
		if (n && !stop_vms) {
			ctl_reply_err(c, type, -EBUSY, "%u VM%s run%s on this host "
				      "from %s (%s); stop them ('vmfs vm stop') or "
				      "unmount with --stop-vms", n, n > 1 ? "s" : "",
				      n > 1 ? "" : "s", mp, names);
			return;
		}
		if (n) {
			qb_log(LOG_NOTICE, "unmount of %s with --stop-vms: "
			       "stopping %u VMs", mp, n);
			vmfsd_vms_stop_all(s->d);
		}
		ret = vfuse_umount_path(mp);
		/* -EINVAL: unmounted already; the session is ending anyway. */
		if (ret == -EINVAL)
			ret = 0;
	}
	if (ret == -EBUSY) {
		ctl_reply_err(c, type, ret, "%s is busy: a process has a file open "
			      "there or its working directory inside; close them "
			      "('fuser -vm %s' lists them) and retry", mp, mp);
		return;
	}
	if (ret) {
		ctl_reply_err(c, type, ret, "cannot unmount %s: %s%s", mp,
			      strerror(-ret), ret == -ENOENT ?
			      " (fusermount3 not found: install fuse3)" : "");
		return;
	}
	if (!ctl_wait_add(s, c)) {
		ctl_reply_err(c, type, -EBUSY, "%s is being unmounted already "
			      "by %d other requests; wait for them", mp,
			      CTL_WAITERS_MAX);
		return;
	}
	qb_log(LOG_NOTICE, "unmount of %s asked by pid %ld", mp,
	       (long)ctl_peer_pid(c));
	vmfsd_stop(s->d);
}

static void ctl_vm(qb_ipcs_connection_t *c, uint32_t type, const char *body)
{
	char msg[VMFSD_MSG_MAX], *reply = NULL;
	int ret = vmfsd_vm_request(ctl_of(c)->d, type, body, &reply, msg,
				   sizeof(msg));

	if (ret)
		ctl_reply_err(c, type, ret, "%s", msg[0] ? msg : strerror(-ret));
	else
		ctl_reply(c, type, 0, reply);
	free(reply);
}

/*
 * vmfs grow MOUNTPOINT: the engine grows the volume online
 * (vol_grow_online).  Alone that is a few writes and flushes; shared it
 * may wait up to a lease for the volume lock, so it runs on a thread of
 * its own and the loop answers when the thread is done (ctl_grow_end),
 * or before the volume closes (vmfsd_ctl_quiesce).
 */
static void *ctl_grow_main(void *arg)
{
	struct ctl_grow_job *j = arg;

	j->ret = vol_grow_online(j->vol, &j->o, &j->r);
	if (write(j->done[1], "g", 1) != 1)
		qb_log(LOG_ERR, "grow: cannot wake the loop: %s", strerror(errno));
	return NULL;
}

/* Join the grow thread, answer its caller, free it (the loop's thread). */
static void ctl_grow_end(struct vmfsd_ctl_server *s)
{
	struct ctl_grow_job *j = s->grow;
	struct vmfsd_grow_status st = { 0 };
	char *reply;

	if (!j)
		return;
	if (j->started)
		pthread_join(j->thr, NULL);
	qb_loop_poll_del(s->d->loop, j->done[0]);
	close(j->done[0]);
	close(j->done[1]);
	s->grow = NULL;
	st.lun_bytes = j->r.lun_bytes;
	st.old_size_bytes = j->r.old_size_bytes;
	st.new_size_bytes = j->r.new_size_bytes;
	st.old_file_blocks = j->r.old_file_blocks;
	st.new_file_blocks = j->r.new_file_blocks;
	st.max_file_blocks = j->r.max_file_blocks;
	st.max_size_bytes = j->r.max_size_bytes;
	st.file_block_size = j->r.file_block_size;
	st.capped = j->r.capped;
	st.finished = j->r.finished;
	if (j->ret == -EBUSY)
		snprintf(st.msg, sizeof(st.msg), "another host kept the volume "
			 "lock for longer than a lease (it is growing the "
			 "volume too, mounting it, or died holding it and is "
			 "being recovered); retry in a moment ('vmfs locks' "
			 "shows the holder)");
	reply = vmfsd_grow_status_encode(&st);
	if (!reply)
		ctl_reply_err(j->c, j->type, -ENOMEM, "vmfsd is out of memory");
	else
		ctl_reply(j->c, j->type, j->ret, reply);
	free(reply);
	qb_ipcs_connection_unref(j->c);
	free(j);
}

static int32_t ctl_grow_done(int32_t fd, int32_t revents, void *data)
{
	struct vmfsd_ctl_server *s = data;
	char c;

	(void)revents;
	if (read(fd, &c, 1) == 1)
		ctl_grow_end(s);
	return 0;
}

static void ctl_grow(qb_ipcs_connection_t *c, uint32_t type, const char *body)
{
	struct vmfsd_ctl_server *s = ctl_of(c);
	struct vmfsd *d = s->d;
	json_object *o = json_tokener_parse(body), *v;
	struct ctl_grow_job *j;
	int ret;

	if (d->a->ro) {
		json_object_put(o);
		ctl_reply_err(c, type, -EROFS, "%s is mounted read-only (--ro): "
			      "a read-only host cannot grow the volume; run "
			      "'vmfs grow' on a host that has it mounted "
			      "read-write, or unmount it everywhere and run "
			      "'vmfs grow LUN'", d->a->mountpoint);
		return;
	}
	if (d->fenced || d->stopping || s->grow) {
		json_object_put(o);
		if (d->fenced)
			ctl_reply_err(c, type, -EIO, "this host is fenced (%s): "
				      "it writes nothing to the volume any more; "
				      "unmount %s and mount it again, then grow",
				      d->fence_why, d->a->mountpoint);
		else
			ctl_reply_err(c, type, -EBUSY, "%s is %s; retry once it "
				      "is done", d->a->mountpoint, d->stopping ?
				      "being unmounted" : "being grown already");
		return;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		json_object_put(o);
		ctl_reply_err(c, type, -ENOMEM, "vmfsd is out of memory");
		return;
	}
	j->o.dry_run = o && json_object_object_get_ex(o, "dry_run", &v) &&
		       json_object_get_boolean(v);
	json_object_put(o);
	j->c = c;
	j->type = type;
	j->vol = d->vol;
	ret = pipe2(j->done, O_CLOEXEC) ? -errno : 0;
	if (!ret) {
		ret = qb_loop_poll_add(d->loop, QB_LOOP_MED, j->done[0], POLLIN,
				       s, ctl_grow_done);
		if (ret) {
			close(j->done[0]);
			close(j->done[1]);
		}
	}
	if (ret) {
		free(j);
		ctl_reply_err(c, type, ret, "cannot start the grow: %s",
			      strerror(-ret));
		return;
	}
	qb_log(LOG_NOTICE, "grow%s of %s asked by pid %ld",
	       j->o.dry_run ? " --dry-run" : "", d->a->mountpoint,
	       (long)ctl_peer_pid(c));
	qb_ipcs_connection_ref(c);
	s->grow = j;
	ret = -pthread_create(&j->thr, NULL, ctl_grow_main, j);
	j->started = !ret;
	if (ret) {
		/* Answered as the thread would have: nothing was done. */
		j->ret = ret;
		if (write(j->done[1], "g", 1) != 1)
			qb_log(LOG_ERR, "grow: cannot wake the loop");
	}
}

static const struct {
	uint32_t type;
	const char *name;
	void (*fn)(qb_ipcs_connection_t *c, uint32_t type, const char *body);
} ctl_requests[] = {
	{ VMFSD_CTL_INFO,   "info",   ctl_info },
	{ VMFSD_CTL_UMOUNT, "umount", ctl_umount },
	{ VMFSD_CTL_VM_START, "vm start", ctl_vm },
	{ VMFSD_CTL_VM_STOP, "vm stop", ctl_vm },
	{ VMFSD_CTL_VM_LIST, "vm list", ctl_vm },
	{ VMFSD_CTL_VM_MIGRATE, "vm migrate", ctl_vm },
	{ VMFSD_CTL_VM_MIGRATE_STATUS, "vm migrate status", ctl_vm },
	{ VMFSD_CTL_GROW, "grow", ctl_grow },
};

static int32_t ctl_msg(qb_ipcs_connection_t *c, void *data, size_t size)
{
	uint32_t type = 0, version = 0;
	const char *body;
	int ret;

	ret = vmfsd_ctl_req_parse(data, size, &type, &version, &body);
	if (ret == -EPROTONOSUPPORT) {
		ctl_reply_err(c, type, ret, "control protocol version %u is not "
			      "spoken by this vmfsd (%s, version %d); use the vmfs "
			      "of the same release", version, VMFS_VERSION,
			      VMFSD_CTL_VERSION);
		return 0;
	}
	if (ret) {
		ctl_reply_err(c, type, ret, "malformed request (%zu bytes) on "
			      "the control socket", size);
		return 0;
	}
	for (size_t i = 0; i < sizeof(ctl_requests) / sizeof(ctl_requests[0]); i++)
		if (ctl_requests[i].type == type) {
			qb_log(LOG_DEBUG, "control request %s from pid %ld",
			       ctl_requests[i].name, (long)ctl_peer_pid(c));
			ctl_requests[i].fn(c, type, body);
			return 0;
		}
	ctl_reply_err(c, type, -EOPNOTSUPP, "unknown request type %u; this vmfsd "
		      "(%s) knows info (%d), umount (%d), vm start, stop, list "
		      "(%d-%d), grow (%d) and vm migrate, migrate status "
		      "(%d-%d)", type, VMFS_VERSION, VMFSD_CTL_INFO,
		      VMFSD_CTL_UMOUNT, VMFSD_CTL_VM_START, VMFSD_CTL_VM_LIST,
		      VMFSD_CTL_GROW, VMFSD_CTL_VM_MIGRATE,
		      VMFSD_CTL_VM_MIGRATE_STATUS);
	return 0;
}

static int32_t ctl_closed(qb_ipcs_connection_t *c)
{
	(void)c;
	return 0;
}

/* A client gone while it waited for the close: forget it. */
static void ctl_destroyed(qb_ipcs_connection_t *c)
{
	struct vmfsd_ctl_server *s = ctl_of(c);

	for (int i = 0; s && i < CTL_WAITERS_MAX; i++)
		if (s->waiters[i] == c) {
			s->waiters[i] = NULL;
			qb_ipcs_connection_unref(c);
		}
}

int vmfsd_ctl_start(struct vmfsd *d)
{
	static struct qb_ipcs_service_handlers h = {
		.connection_accept = ctl_accept,
		.msg_process = ctl_msg,
		.connection_closed = ctl_closed,
		.connection_destroyed = ctl_destroyed,
	};
	static struct qb_ipcs_poll_handlers ph = {
		.job_add = ctl_job_add,
		.dispatch_add = ctl_poll_add,
		.dispatch_mod = ctl_poll_mod,
		.dispatch_del = ctl_poll_del,
	};
	struct vmfsd_ctl_server *s;
	int ret;

	s = calloc(1, sizeof(*s));
	if (!s) {
		vmfsd_fail(d, "out of memory");
		return -ENOMEM;
	}
	s->d = d;
	ret = vmfsd_ctl_name(d->a->mountpoint, s->name, sizeof(s->name));
	if (!ret) {
		s->svc = qb_ipcs_create(s->name, 0, QB_IPC_SOCKET, &h);
		ret = s->svc ? 0 : -ENOMEM;
	}
	if (!ret) {
		ctl_loop = d->loop;
		qb_ipcs_service_context_set(s->svc, s);
		qb_ipcs_poll_handlers_set(s->svc, &ph);
		ret = qb_ipcs_run(s->svc);
	}
	if (ret) {
		vmfsd_fail(d, "cannot open the control socket %s for %s: %s%s",
			   s->name, d->a->mountpoint, strerror(-ret),
			   ret == -EADDRINUSE ? " (another vmfsd serves this "
			   "mount point in this network namespace)" : "");
		if (s->svc)
			qb_ipcs_destroy(s->svc);
		free(s);
		return ret;
	}
	d->ctl = s;
	qb_log(LOG_INFO, "control socket %s (abstract, this network namespace)",
	       s->name);
	return 0;
}

void vmfsd_ctl_quiesce(struct vmfsd *d)
{
	if (d->ctl)
		ctl_grow_end(d->ctl);
}

void vmfsd_ctl_stop(struct vmfsd *d, const struct vmfsd_close_status *st)
{
	struct vmfsd_ctl_server *s = d->ctl;
	char *body = NULL;

	if (!s)
		return;
	if (st)
		body = vmfsd_close_status_encode(st);
	for (int i = 0; i < CTL_WAITERS_MAX; i++) {
		qb_ipcs_connection_t *c = s->waiters[i];

		if (!c)
			continue;
		if (body)
			ctl_reply(c, VMFSD_CTL_UMOUNT, st->err, body);
		s->waiters[i] = NULL;
		qb_ipcs_connection_unref(c);
	}
	free(body);
	qb_ipcs_destroy(s->svc);
	free(s);
	d->ctl = NULL;
}
