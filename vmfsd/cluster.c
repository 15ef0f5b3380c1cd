/*
 * vmfsd's glue between the cluster fast path (lockmgr/clusternet.c, the
 * volume's corosync CPG group) and the engine (vol.h, vol_net_ops): what
 * the group says goes to vol_cluster_membership and
 * vol_cluster_release_request; what the engine asks goes to
 * cn_ask_release, cn_is_member and cn_released.
 *
 * Started once the volume is mounted and shared (vol_cluster_start
 * succeeded), stopped before it closes; the engine sees the ops from the
 * start (they answer -ENOTCONN while corosync is away) until just before
 * the group is left.  A fast path that cannot start never fails the
 * mount: the volume is then shared through the disk alone, as with
 * --no-cluster.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vmfs/log.h"

#include "vmfs/lockmgr.h"
#include "vmfs/vol.h"
#include "vmfsd_int.h"

/* ---- what the group says, to the engine (the fast path's thread) ---- */

static void vmfsd_cn_membership(void *arg, bool left, const struct cn_member *m)
{
	struct vmfsd *d = arg;

	vol_cluster_membership(d->vol, left, m->slot);
	if (left)
		vmfsd_migrate_left(d, m);
}

static void vmfsd_cn_app(void *arg, const struct cn_member *m,
			 const char *data, size_t len)
{
	vmfsd_migrate_app(arg, m, data, len);
}

static int vmfsd_cn_release_req(void *arg, uint64_t addr, uint32_t want)
{
	struct vmfsd *d = arg;

	return vol_cluster_release_request(d->vol, addr,
					   (enum vmfs_lock_mode)want);
}

static const struct cn_ops vmfsd_cn_ops = {
	.membership = vmfsd_cn_membership,
	.release_req = vmfsd_cn_release_req,
	.app = vmfsd_cn_app,
};

/* ---- what the engine asks, to the group (any engine thread) ---- */

static int vmfsd_net_ask(void *arg, const struct lock_holder *h, uint64_t addr,
			 enum vmfs_lock_mode mode, unsigned timeout_ms)
{
	struct vmfsd *d = arg;

	return cn_ask_release(d->cn, h, addr, mode, timeout_ms);
}

static bool vmfsd_net_is_member(void *arg, const struct lock_holder *h)
{
	struct vmfsd *d = arg;

	return cn_is_member(d->cn, h);
}

static void vmfsd_net_released(void *arg, uint64_t addr)
{
	struct vmfsd *d = arg;

	cn_released(d->cn, addr);
}

static const struct vol_net_ops vmfsd_net_ops = {
	.ask_release = vmfsd_net_ask,
	.is_member = vmfsd_net_is_member,
	.released = vmfsd_net_released,
};

void vmfsd_cluster_net_start(struct vmfsd *d)
{
	struct cn_self self;
	int ret;

	if (d->a->no_cluster || d->a->ro) {
		qb_log(LOG_NOTICE, "cluster: not joining the corosync group of "
		       "volume %s (%s): sharing it through the disk alone",
		       d->uuid, d->a->ro ? "read-only mount" : "--no-cluster");
		return;
	}
	memset(&self, 0, sizeof(self));
	memcpy(self.vol_uuid, d->vol_uuid, VMFS_UUID_SIZE);
	vmfsd_host_uuid(d->host, self.host_uuid);
	self.slot = hb_slot_index(d->hb);
	self.hb_gen = hb_generation(d->hb);
	snprintf(self.host_name, sizeof(self.host_name), "%s", d->host_name);
	ret = cn_start(&self, &vmfsd_cn_ops, d, &d->cn);
	if (ret) {
		qb_log(LOG_WARNING, "cluster: cannot start the fast path of "
		       "volume %s: %s; sharing it through the disk alone",
		       d->uuid, strerror(-ret));
		d->cn = NULL;
		return;
	}
	vol_cluster_set_net(d->vol, &vmfsd_net_ops, d);
}

void vmfsd_cluster_net_stop(struct vmfsd *d)
{
	if (!d->cn)
		return;
	if (d->vol)
		vol_cluster_set_net(d->vol, NULL, NULL);
	cn_stop(d->cn);
	d->cn = NULL;
}

void vmfsd_cluster_net_info(struct vmfsd *d, struct vmfsd_info *out)
{
	struct vol_net_stats ns;
	struct cn_view *v;

	snprintf(out->cluster_group, sizeof(out->cluster_group), "vmfs-%s",
		 d->uuid);
	/* The lock cache works without the group too (disk asks). */
	if (d->vol) {
		vol_cluster_net_stats(d->vol, &ns);
		out->cluster_caching = ns.caching;
		out->cluster_cached = ns.cached;
		out->cluster_asked = ns.asked;
		out->cluster_answered = ns.answered;
		out->cluster_ask_timeouts = ns.ask_timeouts;
		out->cluster_requests = ns.requests;
		out->cluster_handed = ns.handed;
		out->disk_asked = ns.disk_asked;
		out->disk_requests = ns.disk_requests;
		out->disk_busy = ns.disk_busy;
	}
	if (!d->cn) {
		snprintf(out->cluster_state, sizeof(out->cluster_state), "off");
		snprintf(out->cluster_why, sizeof(out->cluster_why), "%s",
			 d->a->ro ? "read-only mount" : "--no-cluster");
		return;
	}
	v = malloc(sizeof(*v));
	if (!v)
		return;
	cn_view_get(d->cn, v);
	snprintf(out->cluster_state, sizeof(out->cluster_state), "%s",
		 v->up ? "joined" : "down");
	snprintf(out->cluster_why, sizeof(out->cluster_why), "%s", v->why);
	out->cluster_nodeid = v->my_nodeid;
	out->cluster_quorate = v->quorate;
	out->cluster_joins = v->joins;
	out->cluster_rejected = v->rejected;
	for (uint32_t i = 0; i < v->n && i < VMFSD_CLUSTER_MAX_MEMBERS; i++) {
		const struct cn_member *m = &v->m[i];
		struct vmfsd_cluster_member *o = &out->cluster_members[i];

		o->nodeid = m->nodeid;
		o->pid = m->pid;
		o->known = m->known;
		if (m->known)
			vol_uuid_format(m->host_uuid, o->host_uuid);
		o->slot = m->slot;
		o->hb_gen = m->hb_gen;
		snprintf(o->host_name, sizeof(o->host_name), "%s", m->host_name);
		snprintf(o->node_name, sizeof(o->node_name), "%s", m->node_name);
		snprintf(o->node_addr, sizeof(o->node_addr), "%s", m->node_addr);
		out->cluster_nmembers = i + 1;
	}
	free(v);
}
