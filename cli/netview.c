/*
 * The cluster fast path as a mounted host's vmfsd reports it (its info
 * reply): the lines and JSON `vmfs info MOUNTPOINT` and `vmfs hosts`
 * print.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

const struct vmfsd_cluster_member *cli_net_member(const struct vmfsd_info *d,
						  const char *uuid,
						  uint32_t slot,
						  uint64_t hb_gen)
{
	for (uint32_t i = 0; i < d->cluster_nmembers; i++) {
		const struct vmfsd_cluster_member *m = &d->cluster_members[i];

		if (m->known && m->slot == slot && m->hb_gen == hb_gen &&
		    !strcmp(m->host_uuid, uuid))
			return m;
	}
	return NULL;
}

struct net_local_ctx {
	const char *vol_uuid;
	struct vmfsd_info *di;
	unsigned silent;          /* vmfsds that did not answer in time */
};

int cli_net_info_at(const char *mp, const char *vol_uuid,
		    struct vmfsd_info *di)
{
	struct vmfsd_ctl *ctl;
	char msg[256];
	int ret;

	/* Only vmfsds of this network namespace answer (abstract sockets).
	 * mp is canonical (the mount table's, or what a vmfsd reported):
	 * resolving it again could block on a hung mount. */
	ret = vmfsd_ctl_connect_canonical(mp, CLI_NET_CONNECT_MS, &ctl);
	if (ret)
		return ret;
	ret = vmfsd_ctl_info(ctl, di, msg, sizeof(msg));
	vmfsd_ctl_disconnect(ctl);
	if (!ret && strcmp(di->vol_uuid, vol_uuid))
		ret = -ENOENT;
	return ret;
}

static int net_local_one(void *ctx, const char *mp)
{
	struct net_local_ctx *c = ctx;
	int ret = cli_net_info_at(mp, c->vol_uuid, c->di);

	if (ret == -ETIMEDOUT)
		c->silent++;
	return !ret;
}

int cli_net_local_info(const char *vol_uuid, struct vmfsd_info *di)
{
	struct net_local_ctx c = { vol_uuid, di, 0 };

	if (cli_vmfs_mounts_each(net_local_one, &c) == 1)
		return 0;
	return c.silent ? -ETIMEDOUT : -ENOENT;
}

/* The lock cache, with or without the group: asks on the disk. */
static void net_print_disk(const struct vmfsd_info *d)
{
	printf("lock cache          %s (%" PRIu64 " locks kept now); asked on "
	       "the disk %" PRIu64 " times; asked on the disk by others %" PRIu64
	       " times (%" PRIu64 " answered \"kept for open files\")\n",
	       d->cluster_caching ? "on" : "off", d->cluster_cached,
	       d->disk_asked, d->disk_requests, d->disk_busy);
}

void cli_net_print_text(const struct vmfsd_info *d)
{
	if (!d->cluster_state[0]) {
		printf("cluster             unknown (this vmfsd predates the "
		       "cluster fast path)\n");
		return;
	}
	net_print_disk(d);
	if (!strcmp(d->cluster_state, "off")) {
		printf("cluster             off (%s): the volume is shared through "
		       "the disk alone\n", d->cluster_why);
		return;
	}
	if (strcmp(d->cluster_state, "joined")) {
		printf("cluster             not joined: %s; disk-only until it "
		       "is (vmfsd tries every second)\n", d->cluster_why);
		return;
	}
	printf("cluster             joined CPG group %s as node %u, quorate "
	       "%s, %u member%s:", d->cluster_group, d->cluster_nodeid,
	       d->cluster_quorate ? "yes" : "no", d->cluster_nmembers,
	       d->cluster_nmembers == 1 ? "" : "s");
	for (uint32_t i = 0; i < d->cluster_nmembers; i++) {
		const struct vmfsd_cluster_member *m = &d->cluster_members[i];

		printf("%s %s (node %u%s%s)", i ? "," : "",
		       m->known ? (m->host_name[0] ? m->host_name : "?") :
		       "unknown process", m->nodeid, m->node_addr[0] ? " at " : "",
		       m->node_addr);
	}
	printf("\nlock fast path      caching %s (%" PRIu64 " locks kept now); "
	       "asked others %" PRIu64 " times (%" PRIu64 " answered, %" PRIu64
	       " timed out); asked by others %" PRIu64 " times (%" PRIu64
	       " handed over); %" PRIu64 " messages ignored; joined %u time%s\n",
	       d->cluster_caching ? "on" : "off", d->cluster_cached,
	       d->cluster_asked, d->cluster_answered, d->cluster_ask_timeouts,
	       d->cluster_requests, d->cluster_handed, d->cluster_rejected,
	       d->cluster_joins, d->cluster_joins == 1 ? "" : "s");
}

void cli_net_print_json(const struct vmfsd_info *d)
{
	printf("{ \"state\": ");
	cli_json_str(d->cluster_state[0] ? d->cluster_state : "unknown");
	printf(", \"why\": ");
	cli_json_str(d->cluster_why);
	printf(", \"group\": ");
	cli_json_str(d->cluster_group);
	printf(", \"nodeid\": %u, \"quorate\": %s, \"joins\": %u, "
	       "\"rejected\": %" PRIu64 ", \"caching\": %s, \"cached\": %" PRIu64
	       ", \"asked\": %" PRIu64 ", \"answered\": %" PRIu64
	       ", \"ask_timeouts\": %" PRIu64 ", \"requests\": %" PRIu64
	       ", \"handed\": %" PRIu64 ", \"disk_asked\": %" PRIu64
	       ", \"disk_requests\": %" PRIu64 ", \"disk_busy\": %" PRIu64
	       ", \"members\": [",
	       d->cluster_nodeid, d->cluster_quorate ? "true" : "false",
	       d->cluster_joins, d->cluster_rejected,
	       d->cluster_caching ? "true" : "false", d->cluster_cached,
	       d->cluster_asked, d->cluster_answered, d->cluster_ask_timeouts,
	       d->cluster_requests, d->cluster_handed, d->disk_asked,
	       d->disk_requests, d->disk_busy);
	for (uint32_t i = 0; i < d->cluster_nmembers; i++) {
		const struct vmfsd_cluster_member *m = &d->cluster_members[i];

		printf("%s { \"nodeid\": %u, \"pid\": %u, \"known\": %s",
		       i ? "," : "", m->nodeid, m->pid, m->known ? "true" : "false");
		if (m->known) {
			printf(", \"host_uuid\": ");
			cli_json_str(m->host_uuid);
			printf(", \"slot\": %u, \"hb_gen\": %" PRIu64
			       ", \"host_name\": ", m->slot, m->hb_gen);
			cli_json_str(m->host_name);
		}
		printf(", \"node_name\": ");
		cli_json_str(m->node_name);
		printf(", \"node_addr\": ");
		cli_json_str(m->node_addr);
		printf(" }");
	}
	printf("%s] }", d->cluster_nmembers ? " " : "");
}
