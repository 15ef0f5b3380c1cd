/*
 * Commands that must not write under a live host: `vmfs journal replay`
 * (unless --force) and `vmfs mkfs` (always).  Liveness is judged exactly
 * as fsck judges it before its first write (fsck_hosts_watch: every held
 * slot watched for its advertised lease on our own clock), and live hosts
 * are named as fsck names them (fsck_host_describe).
 */
#include <stdio.h>
#include <stdlib.h>

#include "vmfs/fsck.h"
#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"
#include "cli.h"

int cli_refuse_if_live(struct lun *lun, const struct vol_geom *g,
		       const char *spec, const char *refusal)
{
	struct hb_slot_info *si = calloc(g->max_hosts, sizeof(*si));
	uint32_t n = 0, wait_ms = 0, nlive = 0;
	int rc;

	if (!si) {
		cli_err("out of memory");
		return CLI_EXIT_FAIL;
	}
	/* Only to say why we wait; fsck_hosts_watch decides. */
	if (!hb_survey(lun, g->hb_offset, false, si, g->max_hosts, &n)) {
		for (uint32_t i = 0; i < n; i++) {
			struct hb_timeouts t;

			hb_timeouts_from_lease(si[i].lease_ms, &t);
			if (t.dead_ms > wait_ms)
				wait_ms = t.dead_ms;
		}
		if (n)
			fprintf(stderr, "%s: %u heartbeat slot%s held; watching for "
				"%.1f s whether %s live\n", cli_prog(), n,
				n == 1 ? "" : "s", wait_ms / 1000.0,
				n == 1 ? "its host is" : "their hosts are");
	}
	rc = fsck_hosts_watch(lun, g, si, &n);
	if (rc) {
		cli_err("cannot read the heartbeat slots of %s to see which hosts "
			"are live: %s; run 'vmfs fsck %s' first", spec,
			vmfs_strerror(rc), spec);
		free(si);
		return CLI_EXIT_FAIL;
	}
	for (uint32_t i = 0; i < n; i++) {
		char who[200];

		if (!si[i].live)
			continue;
		fsck_host_describe(&si[i], who, sizeof(who));
		cli_err("heartbeat %s is live: that host has %s mounted", who, spec);
		nlive++;
	}
	free(si);
	if (!nlive)
		return -1;
	cli_err("%s", refusal);
	return CLI_EXIT_FAIL;
}
