/*
 * The cluster fast path of one mounted volume: the corosync CPG group
 * "vmfs-<volume uuid>" (lockmgr.h, "The cluster fast path"; the wire
 * format is cn_int.h's).
 *
 * Threads.  One thread of ours owns every corosync handle (CPG, quorum,
 * cmap), so that a corosync restart, which replaces them, never races a
 * caller.  It polls their fds and an eventfd the callers write to, runs
 * cpg_dispatch(CS_DISPATCH_ALL), whose callbacks only record what arrived
 * (in order), and handles the records once the dispatch has returned
 * (ocfs2_controld's way; cnrecv.c).  Callers never touch a handle: cn_ask_release
 * and cn_released queue their message for the thread and wake it.
 * cn->mu guards what callers read (the view, the waiting asks, the
 * queue); the engine's callbacks run without it.
 *
 * Trust.  CPG gives authenticated, totally ordered delivery among the
 * corosyncs that share the cluster key, but a member may be a buggy or
 * newer program.  So a message is handled only when it decodes cleanly,
 * comes from a process in the current membership, and, for everything
 * but HELLO, from one that said who it is; a HELLO that contradicts an
 * earlier one, or claims a host another member already is, is dropped.
 * Even a message that passes can only make us release a lock (always
 * safe: the next holder reads the disk) or wake a waiter (who reads the
 * disk again).  Leaving the group is reported to the engine, which only
 * watches that host's heartbeat more closely: no lock is ever broken
 * because of the network.
 *
 * corosync absent, dead or restarted: the thread finalizes its handles,
 * reports every known member as gone (we are cut off from all of them),
 * fails the waiting asks with -ENOTCONN and tries again every second.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <corosync/cmap.h>
#include <corosync/corotypes.h>
#include <corosync/cpg.h>
#include <corosync/quorum.h>
#include "vmfs/log.h"

#include "vmfs/clock.h"
#include "cn_int.h"

#define CN_RETRY_MS        1000   /* corosync absent: try again after */
#define CN_TRY_AGAIN_MAX   50     /* CS_ERR_TRY_AGAIN: retries, ... */
#define CN_TRY_AGAIN_MS    20     /* ... this far apart */

/* ---- small helpers ------------------------------------------------------ */

static void cn_uuid_text(const uint8_t *u, char out[37])
{
	static const char hex[] = "0123456789abcdef";
	int k = 0;

	for (int i = 0; i < VMFS_UUID_SIZE; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[k++] = '-';
		out[k++] = hex[u[i] >> 4];
		out[k++] = hex[u[i] & 15];
	}
	out[k] = '\0';
}

bool cn_holder_is(const struct cn_member *m, const struct lock_holder *h)
{
	return m->known && m->slot == h->slot && m->hb_gen == h->hb_gen &&
	       !memcmp(m->host_uuid, h->uuid, VMFS_UUID_SIZE);
}

bool cn_is_self(const struct cn *cn, const struct lock_holder *h)
{
	return h->slot == cn->self.slot && h->hb_gen == cn->self.hb_gen &&
	       !memcmp(h->uuid, cn->self.host_uuid, VMFS_UUID_SIZE);
}

bool cn_holder_is_nobody(const struct lock_holder *h)
{
	static const uint8_t zero[VMFS_UUID_SIZE];

	return !h->slot && !h->hb_gen && !memcmp(h->uuid, zero, sizeof(zero));
}

static void cn_wake(struct cn *cn)
{
	uint64_t one = 1;

	if (write(cn->wake_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is already non-zero, the thread wakes */
	}
}

/* Under mu: queue m for the thread. */
static void cn_queue_locked(struct cn *cn, const struct cn_msg *m)
{
	struct cn_out *o = malloc(sizeof(*o));
	ssize_t n;

	if (!o)
		return;       /* the asker times out and reads the disk */
	n = cn_msg_encode(m, o->buf, sizeof(o->buf));
	if (n < 0) {
		free(o);
		return;
	}
	o->len = (size_t)n;
	o->next = NULL;
	*cn->outq_tail = o;
	cn->outq_tail = &o->next;
}

void cn_queue(struct cn *cn, const struct cn_msg *m)
{
	pthread_mutex_lock(&cn->mu);
	cn_queue_locked(cn, m);
	pthread_mutex_unlock(&cn->mu);
	cn_wake(cn);
}

void cn_queue_hello(struct cn *cn)
{
	struct cn_msg m = { .type = CN_MSG_HELLO };

	memcpy(m.u.hello.host_uuid, cn->self.host_uuid, VMFS_UUID_SIZE);
	m.u.hello.slot = cn->self.slot;
	m.u.hello.hb_gen = cn->self.hb_gen;
	snprintf(m.u.hello.name, sizeof(m.u.hello.name), "%s",
		 cn->self.host_name);
	cn_queue(cn, &m);
}

/* Under mu: finish every ask (target NULL) or those waiting on target. */
void cn_fail_asks_locked(struct cn *cn, const struct cn_member *target)
{
	for (struct cn_ask *a = cn->asks; a; a = a->next)
		if (!a->done && (!target || cn_holder_is(target, &a->target))) {
			a->done = true;
			a->result = -ENOTCONN;
		}
	pthread_cond_broadcast(&cn->cond);
}

/* ---- corosync callbacks: record only ------------------------------------ */

static void cn_record(struct cn *cn, struct cn_event *e)
{
	if (!e) {
		cn->ev_lost = true;
		return;
	}
	e->next = NULL;
	*cn->ev_tail = e;
	cn->ev_tail = &e->next;
}

static void cn_on_deliver(cpg_handle_t h, const struct cpg_name *group,
			  uint32_t nodeid, uint32_t pid, void *msg, size_t len)
{
	struct cn *cn = NULL;
	struct cn_event *e;

	(void)group;
	if (cpg_context_get(h, (void **)&cn) != CS_OK || !cn)
		return;
	/* Longer than any message: keep only what proves it is one. */
	e = calloc(1, sizeof(*e) + (len > CN_MSG_MAX ? CN_MSG_MAX : len));
	if (e) {
		e->nodeid = nodeid;
		e->pid = pid;
		e->len = len;
		memcpy(e->data, msg, len > CN_MSG_MAX ? CN_MSG_MAX : len);
	}
	cn_record(cn, e);
}

static void cn_on_confchg(cpg_handle_t h, const struct cpg_name *group,
			  const struct cpg_address *members, size_t nmembers,
			  const struct cpg_address *left, size_t nleft,
			  const struct cpg_address *joined, size_t njoined)
{
	struct cn *cn = NULL;
	struct cn_event *e;

	(void)group;
	(void)left;
	(void)nleft;
	(void)joined;
	if (cpg_context_get(h, (void **)&cn) != CS_OK || !cn)
		return;
	e = calloc(1, sizeof(*e) + nmembers * sizeof(*members));
	if (e) {
		e->confchg = true;
		e->len = nmembers;
		e->njoined = njoined;
		memcpy(e->data, members, nmembers * sizeof(*members));
	}
	cn_record(cn, e);
}

static void cn_on_quorum(quorum_handle_t h, uint32_t quorate,
			 uint64_t ring_seq, uint32_t n, uint32_t *nodes)
{
	struct cn *cn = NULL;

	(void)ring_seq;
	(void)n;
	(void)nodes;
	if (quorum_context_get(h, (const void **)&cn) != CS_OK || !cn)
		return;
	pthread_mutex_lock(&cn->mu);
	if (cn->view.quorate != !!quorate && cn->connected)
		qb_log(LOG_NOTICE, "cluster: group %s: quorum %s",
		       cn->group_text, quorate ? "gained" : "lost");
	cn->view.quorate = quorate;
	pthread_mutex_unlock(&cn->mu);
}

/* ---- connecting and losing corosync ------------------------------------- */

static void cn_events_free(struct cn *cn)
{
	while (cn->ev_head) {
		struct cn_event *e = cn->ev_head;

		cn->ev_head = e->next;
		free(e);
	}
	cn->ev_tail = &cn->ev_head;
	cn->ev_lost = false;
}

/*
 * Lost corosync (or stopping): finalize, fail the waiting asks and, when
 * we lost it (not when we leave), tell the engine that every host it
 * knew through us is gone from our view.
 */
void cn_disconnect(struct cn *cn, const char *why, bool report)
{
	struct cn_member gone[CN_MAX_MEMBERS];
	uint32_t ngone = 0;

	if (cn->connected)
		cpg_finalize(cn->cpg);
	if (cn->have_quorum)
		quorum_finalize(cn->quorum);
	if (cn->have_cmap)
		cmap_finalize(cn->cmap);
	cn->connected = cn->have_quorum = cn->have_cmap = false;
	cn->cpg_fd = cn->quorum_fd = -1;
	cn_events_free(cn);

	pthread_mutex_lock(&cn->mu);
	for (uint32_t i = 0; i < cn->view.n; i++) {
		const struct cn_member *m = &cn->view.m[i];

		if (m->known && (m->nodeid != cn->view.my_nodeid ||
				 m->pid != (uint32_t)getpid()))
			gone[ngone++] = *m;
	}
	cn->view.up = false;
	cn->view.quorate = false;
	cn->view.n = 0;
	snprintf(cn->view.why, sizeof(cn->view.why), "%s", why);
	cn_fail_asks_locked(cn, NULL);
	pthread_mutex_unlock(&cn->mu);

	for (uint32_t i = 0; report && i < ngone; i++)
		if (cn->ops.membership)
			cn->ops.membership(cn->arg, true, &gone[i]);
}

static void cn_down_why(struct cn *cn, const char *fmt, cs_error_t err)
{
	char why[CN_WHY_MAX];

	snprintf(why, sizeof(why), fmt, cs_strerror(err));
	pthread_mutex_lock(&cn->mu);
	snprintf(cn->view.why, sizeof(cn->view.why), "%s", why);
	pthread_mutex_unlock(&cn->mu);
}

/* The quorum service is optional: without it the view says not quorate. */
static void cn_quorum_connect(struct cn *cn)
{
	quorum_callbacks_t qcb = { .quorum_notify_fn = cn_on_quorum };
	uint32_t qtype = 0;
	int quorate = 0;

	if (quorum_initialize(&cn->quorum, &qcb, &qtype) != CS_OK)
		return;
	cn->have_quorum = true;
	quorum_context_set(cn->quorum, cn);
	if (quorum_getquorate(cn->quorum, &quorate) != CS_OK)
		quorate = 0;
	pthread_mutex_lock(&cn->mu);
	cn->view.quorate = quorate;
	pthread_mutex_unlock(&cn->mu);
	if (quorum_trackstart(cn->quorum, CS_TRACK_CHANGES) != CS_OK ||
	    quorum_fd_get(cn->quorum, &cn->quorum_fd) != CS_OK)
		cn->quorum_fd = -1;
}

/* Initialize, join the group; 0 or -1 (view.why set). */
static int cn_connect(struct cn *cn)
{
	cpg_model_v1_data_t model = {
		.model = CPG_MODEL_V1,
		.cpg_deliver_fn = cn_on_deliver,
		.cpg_confchg_fn = cn_on_confchg,
	};
	unsigned nodeid = 0;
	cs_error_t err;
	int tries = 0;

	err = cpg_model_initialize(&cn->cpg, CPG_MODEL_V1,
				   (cpg_model_data_t *)&model, cn);
	if (err != CS_OK) {
		/* libqb cannot reach corosync's socket: not running here (in
		 * this network namespace). */
		if (err == CS_ERR_LIBRARY || err == CS_ERR_NOT_EXIST)
			cn_down_why(cn, "corosync is not running on this host%.0s",
				    err);
		else
			cn_down_why(cn, "cannot connect to corosync: %s", err);
		return -1;
	}
	cn->connected = true;
	do {
		err = cpg_join(cn->cpg, &cn->group);
		if (err == CS_ERR_TRY_AGAIN)
			usleep(CN_TRY_AGAIN_MS * 1000);
	} while (err == CS_ERR_TRY_AGAIN && ++tries < CN_TRY_AGAIN_MAX);
	if (err == CS_OK)
		err = cpg_local_get(cn->cpg, &nodeid);
	if (err == CS_OK)
		err = cpg_fd_get(cn->cpg, &cn->cpg_fd);
	if (err != CS_OK) {
		cn_disconnect(cn, "", false);
		cn_down_why(cn, "cannot join the CPG group: %s", err);
		return -1;
	}
	cn->have_cmap = cmap_initialize(&cn->cmap) == CS_OK;
	cn_quorum_connect(cn);

	pthread_mutex_lock(&cn->mu);
	cn->view.up = true;
	cn->view.why[0] = '\0';
	cn->view.my_nodeid = nodeid;
	cn->view.joins++;
	pthread_mutex_unlock(&cn->mu);
	if (cn->ever_up)
		qb_log(LOG_NOTICE, "cluster: corosync is back: rejoined CPG "
		       "group %s as node %u (quorate %s); the fast path comes "
		       "back", cn->group_text, nodeid,
		       cn->view.quorate ? "yes" : "no");
	else
		qb_log(LOG_NOTICE, "cluster: joined CPG group %s as node %u "
		       "(quorate %s)", cn->group_text, nodeid,
		       cn->view.quorate ? "yes" : "no");
	cn->ever_up = true;
	cn->said_absent = false;
	return 0;
}

/* Multicast what the callers queued; false when corosync went away. */
static bool cn_send_queued(struct cn *cn)
{
	struct cn_out *q;
	cs_error_t err = CS_OK;

	pthread_mutex_lock(&cn->mu);
	q = cn->outq;
	cn->outq = NULL;
	cn->outq_tail = &cn->outq;
	pthread_mutex_unlock(&cn->mu);
	while (q) {
		struct cn_out *o = q;
		struct iovec iov = { o->buf, o->len };
		int tries = 0;

		q = o->next;
		while (err == CS_OK || err == CS_ERR_TRY_AGAIN) {
			err = cpg_mcast_joined(cn->cpg, CPG_TYPE_AGREED, &iov, 1);
			if (err != CS_ERR_TRY_AGAIN || ++tries >= CN_TRY_AGAIN_MAX)
				break;
			usleep(CN_TRY_AGAIN_MS * 1000);
		}
		free(o);
		if (err == CS_ERR_TRY_AGAIN)
			err = CS_OK;   /* dropped: the asker times out */
	}
	if (err != CS_OK)
		qb_log(LOG_DEBUG, "cluster: cpg_mcast_joined: %s",
		       cs_strerror(err));
	return err == CS_OK || err == CS_ERR_TRY_AGAIN;
}

/* ---- the thread --------------------------------------------------------- */

static void cn_drain_wake(struct cn *cn)
{
	uint64_t v;

	if (read(cn->wake_fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing to drain */
	}
}

static bool cn_stopping(struct cn *cn)
{
	bool s;

	pthread_mutex_lock(&cn->mu);
	s = cn->stopping;
	pthread_mutex_unlock(&cn->mu);
	return s;
}

/* Wait for corosync: one attempt a second, until it works or we stop. */
static void cn_wait_for_corosync(struct cn *cn)
{
	struct pollfd p = { .fd = cn->wake_fd, .events = POLLIN };

	while (!cn_stopping(cn) && cn_connect(cn)) {
		if (!cn->said_absent) {
			char why[CN_WHY_MAX];

			pthread_mutex_lock(&cn->mu);
			snprintf(why, sizeof(why), "%s", cn->view.why);
			pthread_mutex_unlock(&cn->mu);
			qb_log(LOG_NOTICE, "cluster: %s: the volume is shared "
			       "disk-only until corosync runs (trying every "
			       "second)", why);
			cn->said_absent = true;
		}
		/* Messages queued meanwhile have nowhere to go. */
		pthread_mutex_lock(&cn->mu);
		while (cn->outq) {
			struct cn_out *o = cn->outq;

			cn->outq = o->next;
			free(o);
		}
		cn->outq_tail = &cn->outq;
		pthread_mutex_unlock(&cn->mu);
		if (poll(&p, 1, CN_RETRY_MS) > 0)
			cn_drain_wake(cn);
	}
}

static void cn_lost(struct cn *cn, const char *what, cs_error_t err)
{
	char why[CN_WHY_MAX];

	snprintf(why, sizeof(why), "corosync went away (%s: %s)", what,
		 cs_strerror(err));
	qb_log(LOG_NOTICE, "cluster: %s; the fast path is down and the volume "
	       "goes on disk-only; rejoining when it comes back", why);
	cn_disconnect(cn, why, true);
	cn->said_absent = true;    /* said just now */
}

static void *cn_main(void *arg)
{
	struct cn *cn = arg;

	for (;;) {
		struct pollfd p[3];
		nfds_t np = 0;
		cs_error_t err;

		if (!cn->connected)
			cn_wait_for_corosync(cn);
		if (cn_stopping(cn))
			break;
		p[np++] = (struct pollfd){ .fd = cn->wake_fd, .events = POLLIN };
		p[np++] = (struct pollfd){ .fd = cn->cpg_fd, .events = POLLIN };
		if (cn->quorum_fd >= 0)
			p[np++] = (struct pollfd){ .fd = cn->quorum_fd,
						   .events = POLLIN };
		if (poll(p, np, CN_RETRY_MS) < 0)
			continue;
		if (p[0].revents)
			cn_drain_wake(cn);
		if (cn_stopping(cn))
			break;
		if (p[1].revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL)) {
			err = cpg_dispatch(cn->cpg, CS_DISPATCH_ALL);
			cn_handle_events(cn);
			if (err != CS_OK && err != CS_ERR_TRY_AGAIN) {
				cn_lost(cn, "cpg_dispatch", err);
				continue;
			}
		}
		if (np > 2 && (p[2].revents & (POLLIN | POLLERR | POLLHUP))) {
			err = quorum_dispatch(cn->quorum, CS_DISPATCH_ALL);
			if (err != CS_OK && err != CS_ERR_TRY_AGAIN)
				cn->quorum_fd = -1;   /* cpg notices too */
		}
		if (cn->connected && !cn_send_queued(cn))
			cn_lost(cn, "cpg_mcast_joined", CS_ERR_BAD_HANDLE);
	}
	if (cn->connected) {
		cn_send_queued(cn);
		cpg_leave(cn->cpg, &cn->group);
	}
	cn_disconnect(cn, "stopped", false);
	return NULL;
}

/* ---- the API ------------------------------------------------------------ */

int cn_start(const struct cn_self *self, const struct cn_ops *ops, void *arg,
	     struct cn **out)
{
	sigset_t all, old;
	char uuid[37];
	struct cn *cn;
	int ret;

	cn = calloc(1, sizeof(*cn));
	if (!cn)
		return -ENOMEM;
	cn->self = *self;
	cn->self.host_name[CN_HOST_NAME_MAX] = '\0';
	if (ops)
		cn->ops = *ops;
	cn->arg = arg;
	cn_uuid_text(self->vol_uuid, uuid);
	snprintf(cn->group_text, sizeof(cn->group_text), "vmfs-%s", uuid);
	cn->group.length = (uint32_t)strlen(cn->group_text);
	memcpy(cn->group.value, cn->group_text, cn->group.length);
	cn->cpg_fd = cn->quorum_fd = -1;
	cn->outq_tail = &cn->outq;
	cn->ev_tail = &cn->ev_head;
	cn->next_req_id = 1;
	cn->reject_window_ms = vmfs_mono_ms();
	snprintf(cn->view.why, sizeof(cn->view.why), "starting");
	cn->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (cn->wake_fd < 0) {
		ret = -errno;
		free(cn);
		return ret;
	}
	pthread_mutex_init(&cn->mu, NULL);
	vmfs_cond_init_mono(&cn->cond);
	/* The thread takes no signal: they are the process's business. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&cn->thread, NULL, cn_main, cn);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		pthread_cond_destroy(&cn->cond);
		pthread_mutex_destroy(&cn->mu);
		close(cn->wake_fd);
		free(cn);
		return ret;
	}
	*out = cn;
	return 0;
}

void cn_stop(struct cn *cn)
{
	if (!cn)
		return;
	pthread_mutex_lock(&cn->mu);
	cn->stopping = true;
	pthread_mutex_unlock(&cn->mu);
	cn_wake(cn);
	pthread_join(cn->thread, NULL);
	while (cn->outq) {
		struct cn_out *o = cn->outq;

		cn->outq = o->next;
		free(o);
	}
	close(cn->wake_fd);
	pthread_cond_destroy(&cn->cond);
	pthread_mutex_destroy(&cn->mu);
	free(cn);
}

/* Under mu: the known member that is h, or NULL. */
static const struct cn_member *cn_find_locked(struct cn *cn,
					      const struct lock_holder *h)
{
	if (!cn->view.up)
		return NULL;
	for (uint32_t k = 0; k < cn->view.n; k++)
		if (cn_holder_is(&cn->view.m[k], h))
			return &cn->view.m[k];
	return NULL;
}

int cn_ask_release(struct cn *cn, const struct lock_holder *h, uint64_t addr,
		   uint32_t mode, unsigned timeout_ms)
{
	struct cn_ask a = { .addr = addr, .target = *h }, **pp;
	struct cn_msg m = { .type = CN_MSG_ASK };
	struct timespec until;
	int ret = 0;

	if (cn_is_self(cn, h))
		return -ENOTCONN;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&cn->mu);
	if (cn->stopping || !cn_find_locked(cn, h)) {
		pthread_mutex_unlock(&cn->mu);
		return -ENOTCONN;
	}
	a.req_id = cn->next_req_id++;
	a.next = cn->asks;
	cn->asks = &a;
	m.u.ask.req_id = a.req_id;
	m.u.ask.addr = addr;
	m.u.ask.mode = mode;
	m.u.ask.target = *h;
	cn_queue_locked(cn, &m);
	cn_wake(cn);
	while (!a.done && !ret)
		ret = pthread_cond_timedwait(&cn->cond, &cn->mu, &until);
	ret = a.done ? a.result : -ETIMEDOUT;
	for (pp = &cn->asks; *pp; pp = &(*pp)->next)
		if (*pp == &a) {
			*pp = a.next;
			break;
		}
	pthread_mutex_unlock(&cn->mu);
	return ret;
}

int cn_send_app(struct cn *cn, const struct lock_holder *h, const void *data,
		size_t len)
{
	struct cn_msg *m;
	int ret = 0;

	if (len > CN_APP_MAX)
		return -E2BIG;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->type = CN_MSG_APP;
	if (h)
		m->u.app.target = *h;
	m->u.app.len = (uint32_t)len;
	memcpy(m->u.app.data, data, len);
	pthread_mutex_lock(&cn->mu);
	if (!cn->view.up || cn->stopping || (h && !cn_find_locked(cn, h)))
		ret = -ENOTCONN;
	else
		cn_queue_locked(cn, m);
	pthread_mutex_unlock(&cn->mu);
	free(m);
	if (!ret)
		cn_wake(cn);
	return ret;
}

void cn_released(struct cn *cn, uint64_t addr)
{
	struct cn_msg m = { .type = CN_MSG_RELEASED };

	m.u.released.addr = addr;
	pthread_mutex_lock(&cn->mu);
	if (cn->view.up)
		cn_queue_locked(cn, &m);
	pthread_mutex_unlock(&cn->mu);
	cn_wake(cn);
}

bool cn_is_member(struct cn *cn, const struct lock_holder *h)
{
	bool yes;

	pthread_mutex_lock(&cn->mu);
	yes = cn_find_locked(cn, h) != NULL;
	pthread_mutex_unlock(&cn->mu);
	return yes;
}

void cn_view_get(struct cn *cn, struct cn_view *out)
{
	pthread_mutex_lock(&cn->mu);
	*out = cn->view;
	pthread_mutex_unlock(&cn->mu);
}
