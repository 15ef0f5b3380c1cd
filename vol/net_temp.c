/*
 * TEMP engine hooks: the engine's side of the cluster fast path
 * (include/vmfs/vol.h, vol_net_ops) as no-ops, so that vmfsd links until
 * vol/cluster.c implements them.  Drop this file with its commit.
 */
#include <string.h>

#include "vmfs/vol.h"

void vol_cluster_set_net(struct vol *v, const struct vol_net_ops *ops,
			 void *arg)
{
	(void)v;
	(void)ops;
	(void)arg;
}

int vol_cluster_release_request(struct vol *v, uint64_t addr,
				enum vmfs_lock_mode want)
{
	(void)v;
	(void)addr;
	(void)want;
	return 0;
}

void vol_cluster_membership(struct vol *v, bool left, uint32_t slot)
{
	(void)v;
	(void)left;
	(void)slot;
}

void vol_cluster_net_stats(struct vol *v, struct vol_net_stats *s)
{
	(void)v;
	memset(s, 0, sizeof(*s));
}
