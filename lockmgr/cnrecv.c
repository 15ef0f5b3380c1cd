/*
 * The cluster fast path: handling what corosync delivered, once the
 * dispatch that recorded it has returned (clusternet.c's thread; the
 * rules of trust are at the top of clusternet.c).  A membership change
 * keeps what members said and reports those that left; a message is
 * decoded, checked against the membership and its sender's HELLO, and
 * then does the one thing its type allows: learn a host, answer an ASK
 * for us through the engine, or wake the askers a RELEASED or a BUSY is
 * for.  Everything dropped is logged, at most CN_REJECT_LOG_MAX lines a
 * minute.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "vmfs/log.h"

#include "vmfs/clock.h"
#include "cn_int.h"

/* Dropped messages: at most this many log lines per window. */
#define CN_REJECT_LOG_MAX  10
#define CN_REJECT_WINDOW_MS 60000

/*
 * Log a dropped message, at most CN_REJECT_LOG_MAX lines a minute: a
 * misbehaving member must not flood the log.
 */
static void cn_reject(struct cn *cn, uint32_t nodeid, uint32_t pid,
		      const char *why)
{
	int64_t now = vmfs_mono_ms();

	pthread_mutex_lock(&cn->mu);
	cn->view.rejected++;
	pthread_mutex_unlock(&cn->mu);
	if (now - cn->reject_window_ms >= CN_REJECT_WINDOW_MS) {
		if (cn->reject_quiet)
			qb_log(LOG_WARNING, "cluster: %" PRIu64 " more messages "
			       "ignored in the last minute (not logged)",
			       cn->reject_quiet);
		cn->reject_window_ms = now;
		cn->reject_logged = 0;
		cn->reject_quiet = 0;
	}
	if (cn->reject_logged >= CN_REJECT_LOG_MAX) {
		cn->reject_quiet++;
		return;
	}
	cn->reject_logged++;
	qb_log(LOG_WARNING, "cluster: ignored a message from node %u pid %u "
	       "in group %s: %s", nodeid, pid, cn->group_text, why);
}

/* corosync's nodelist entry for nodeid, from cmap, into m. */
static void cn_node_lookup(struct cn *cn, struct cn_member *m)
{
	char key[64], *s;
	uint32_t id;

	if (!cn->have_cmap)
		return;
	for (unsigned i = 0; i < 1024; i++) {
		snprintf(key, sizeof(key), "nodelist.node.%u.nodeid", i);
		if (cmap_get_uint32(cn->cmap, key, &id) != CS_OK)
			return;
		if (id != m->nodeid)
			continue;
		snprintf(key, sizeof(key), "nodelist.node.%u.name", i);
		if (cmap_get_string(cn->cmap, key, &s) == CS_OK) {
			snprintf(m->node_name, sizeof(m->node_name), "%s", s);
			free(s);
		}
		snprintf(key, sizeof(key), "nodelist.node.%u.ring0_addr", i);
		if (cmap_get_string(cn->cmap, key, &s) == CS_OK) {
			snprintf(m->node_addr, sizeof(m->node_addr), "%s", s);
			free(s);
		}
		return;
	}
}

static void cn_member_text(const struct cn_member *m, char *buf, size_t len)
{
	snprintf(buf, len, "host %s (slot %u, node %u%s%s)",
		 m->host_name[0] ? m->host_name : "?", m->slot, m->nodeid,
		 m->node_addr[0] ? " at " : "", m->node_addr);
}

/* A new membership: keep what members said, report those that left. */
static void cn_handle_confchg(struct cn *cn, const struct cn_event *e)
{
	const struct cpg_address *a = (const struct cpg_address *)e->data;
	struct cn_member *next, gone[CN_MAX_MEMBERS];
	uint32_t n = 0, ngone = 0, me = (uint32_t)getpid();
	bool still_in = false;
	char text[160];

	next = calloc(CN_MAX_MEMBERS, sizeof(*next));
	if (!next)
		return;
	pthread_mutex_lock(&cn->mu);
	for (size_t i = 0; i < e->len && n < CN_MAX_MEMBERS; i++) {
		struct cn_member *m = &next[n++], *old = NULL;

		for (uint32_t k = 0; k < cn->view.n && !old; k++)
			if (cn->view.m[k].nodeid == a[i].nodeid &&
			    cn->view.m[k].pid == a[i].pid)
				old = &cn->view.m[k];
		if (old) {
			*m = *old;
		} else {
			memset(m, 0, sizeof(*m));
			m->nodeid = a[i].nodeid;
			m->pid = a[i].pid;
			cn_node_lookup(cn, m);
		}
		if (m->nodeid == cn->view.my_nodeid && m->pid == me) {
			still_in = true;
			m->known = true;
			memcpy(m->host_uuid, cn->self.host_uuid, VMFS_UUID_SIZE);
			m->slot = cn->self.slot;
			m->hb_gen = cn->self.hb_gen;
			snprintf(m->host_name, sizeof(m->host_name), "%s",
				 cn->self.host_name);
		}
	}
	for (uint32_t k = 0; k < cn->view.n; k++) {
		const struct cn_member *old = &cn->view.m[k];
		bool stays = false;

		for (uint32_t i = 0; i < n && !stays; i++)
			stays = next[i].nodeid == old->nodeid &&
				next[i].pid == old->pid;
		if (!stays && old->known && !(old->nodeid == cn->view.my_nodeid &&
					      old->pid == me)) {
			gone[ngone++] = *old;
			cn_fail_asks_locked(cn, old);
		}
	}
	memcpy(cn->view.m, next, n * sizeof(*next));
	cn->view.n = n;
	pthread_mutex_unlock(&cn->mu);
	free(next);

	for (uint32_t i = 0; i < ngone; i++) {
		cn_member_text(&gone[i], text, sizeof(text));
		qb_log(LOG_NOTICE, "cluster: %s left group %s", text,
		       cn->group_text);
		if (cn->ops.membership)
			cn->ops.membership(cn->arg, true, &gone[i]);
	}
	if (e->njoined && still_in)
		cn_queue_hello(cn);
}

/* A HELLO from member m (under mu): NULL (*is_new: first one), or why
 * it is dropped. */
static const char *cn_hello_check(struct cn *cn, struct cn_member *m,
				  const struct cn_msg *msg, bool *is_new)
{
	struct lock_holder h = { .slot = msg->u.hello.slot,
				 .hb_gen = msg->u.hello.hb_gen };

	memcpy(h.uuid, msg->u.hello.host_uuid, VMFS_UUID_SIZE);
	*is_new = false;
	if (m->known) {
		if (!cn_holder_is(m, &h))
			return "hello contradicts the one it sent before "
			       "(another host uuid, slot or generation)";
		return NULL;
	}
	if (!memcmp(h.uuid, cn->self.host_uuid, VMFS_UUID_SIZE))
		return "hello claims to be this host";
	/* One heartbeat slot generation is one mount of one host: two
	 * processes cannot both be it.  (A host that mounted again has a new
	 * generation, and may say so before its old process is seen gone.) */
	for (uint32_t k = 0; k < cn->view.n; k++)
		if (&cn->view.m[k] != m && cn->view.m[k].known &&
		    cn->view.m[k].hb_gen == h.hb_gen &&
		    (!memcmp(cn->view.m[k].host_uuid, h.uuid, VMFS_UUID_SIZE) ||
		     cn->view.m[k].slot == h.slot))
			return "hello claims a host or heartbeat slot another "
			       "member already is";
	m->known = true;
	memcpy(m->host_uuid, h.uuid, VMFS_UUID_SIZE);
	m->slot = h.slot;
	m->hb_gen = h.hb_gen;
	snprintf(m->host_name, sizeof(m->host_name), "%s", msg->u.hello.name);
	*is_new = true;
	return NULL;
}

/* The engine's answer to an ASK for us, sent on at once. */
static void cn_answer_ask(struct cn *cn, uint32_t nodeid, uint32_t pid,
			  const struct cn_msg *msg)
{
	struct cn_msg out = { 0 };
	int ret = -EBUSY;

	if (cn->ops.release_req)
		ret = cn->ops.release_req(cn->arg, msg->u.ask.addr,
					  msg->u.ask.mode);
	if (ret == 0) {
		out.type = CN_MSG_RELEASED;
		out.u.released.addr = msg->u.ask.addr;
	} else if (ret == -EBUSY) {
		out.type = CN_MSG_BUSY;
		out.u.busy.nodeid = nodeid;
		out.u.busy.pid = pid;
		out.u.busy.req_id = msg->u.ask.req_id;
		out.u.busy.addr = msg->u.ask.addr;
	} else {
		/* -EINPROGRESS: cn_released follows; anything else: the
		 * asker times out and goes by the disk. */
		return;
	}
	cn_queue(cn, &out);
}

static void cn_handle_msg(struct cn *cn, const struct cn_event *e)
{
	const char *why = NULL;
	struct cn_member *m = NULL, copy = { 0 };
	struct cn_msg msg;
	bool is_new = false, me;
	int ret;

	if (e->len > CN_MSG_MAX) {
		cn_reject(cn, e->nodeid, e->pid, "longer than any message");
		return;
	}
	ret = cn_msg_decode(e->data, e->len, &msg, &why);
	if (ret == -EPROTONOSUPPORT) {
		cn_reject(cn, e->nodeid, e->pid, "newer protocol version: "
			  "that host runs a newer vmfs; it must speak version 1 "
			  "to this one (upgrade this host)");
		return;
	}
	if (ret) {
		char text[CN_WHY_MAX];

		snprintf(text, sizeof(text), "malformed: %s", why);
		cn_reject(cn, e->nodeid, e->pid, text);
		return;
	}
	why = NULL;      /* from here: why we drop a well-formed message */

	pthread_mutex_lock(&cn->mu);
	me = e->nodeid == cn->view.my_nodeid && e->pid == (uint32_t)getpid();
	for (uint32_t k = 0; k < cn->view.n && !m; k++)
		if (cn->view.m[k].nodeid == e->nodeid &&
		    cn->view.m[k].pid == e->pid)
			m = &cn->view.m[k];
	if (me) {
		pthread_mutex_unlock(&cn->mu);
		return;          /* our own, delivered back to us */
	}
	if (!m)
		why = "sender is not in the group's membership";
	else if (msg.type == CN_MSG_HELLO)
		why = cn_hello_check(cn, m, &msg, &is_new);
	else if (!m->known)
		why = "sender never said which host it is (no hello)";
	if (m)
		copy = *m;
	if (!why && msg.type == CN_MSG_RELEASED) {
		for (struct cn_ask *a = cn->asks; a; a = a->next)
			if (!a->done && a->addr == msg.u.released.addr) {
				a->done = true;
				a->result = 0;
			}
		pthread_cond_broadcast(&cn->cond);
	}
	if (!why && msg.type == CN_MSG_BUSY &&
	    msg.u.busy.nodeid == cn->view.my_nodeid &&
	    msg.u.busy.pid == (uint32_t)getpid()) {
		for (struct cn_ask *a = cn->asks; a; a = a->next)
			if (!a->done && a->req_id == msg.u.busy.req_id &&
			    a->addr == msg.u.busy.addr) {
				a->done = true;
				a->result = -EBUSY;
			}
		pthread_cond_broadcast(&cn->cond);
	}
	pthread_mutex_unlock(&cn->mu);

	if (why) {
		cn_reject(cn, e->nodeid, e->pid, why);
		return;
	}
	if (is_new) {
		char text[160];

		cn_member_text(&copy, text, sizeof(text));
		qb_log(LOG_NOTICE, "cluster: %s joined group %s", text,
		       cn->group_text);
		if (cn->ops.membership)
			cn->ops.membership(cn->arg, false, &copy);
	}
	if (msg.type == CN_MSG_ASK && cn_is_self(cn, &msg.u.ask.target))
		cn_answer_ask(cn, e->nodeid, e->pid, &msg);
	if (msg.type == CN_MSG_APP && cn->ops.app &&
	    (cn_holder_is_nobody(&msg.u.app.target) ||
	     cn_is_self(cn, &msg.u.app.target)))
		cn->ops.app(cn->arg, &copy, msg.u.app.data, msg.u.app.len);
}

void cn_handle_events(struct cn *cn)
{
	while (cn->ev_head) {
		struct cn_event *e = cn->ev_head;

		cn->ev_head = e->next;
		if (!cn->ev_head)
			cn->ev_tail = &cn->ev_head;
		if (e->confchg)
			cn_handle_confchg(cn, e);
		else
			cn_handle_msg(cn, e);
		free(e);
	}
	/* A lost record may be a lost membership change: start over. */
	if (cn->ev_lost)
		cn_disconnect(cn, "out of memory while following the group; "
			      "rejoining", true);
}
