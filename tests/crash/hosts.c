/*
 * The hosts of a two-host run (README §5), driven in one process through
 * the public API the way vmfsd drives one host each (vmfsd/mount.c): a
 * heartbeat slot (hb_join), the volume opened journaling into that
 * slot's journal (VOL_OWN_JOURNAL), then shared (vol_cluster_start).
 * Each host has its own handle of the image, a recording fault wrapper,
 * which is also its heartbeat's handle: so the slots' writes are in the
 * log like everything else, and a crash image shows host A's slot as A
 * left it, for B to recover.
 *
 * After a crash, a restarted host B first recovers its own slot, as
 * vmfsd_recover_self does, then every other one, as its watcher does for
 * a slot that stood still for its lease (vol_recover_slot; the judgement
 * "A is dead" is tested with the lock manager, not here), and opens the
 * volume on its own journal.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmfs/format.h"
#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"
#include "crashsim.h"

void cs_host_uuid(uint64_t seed, unsigned h, uint8_t uuid[16])
{
	uint64_t a = cs_mix(seed ^ (0x4ca57ull << 8) ^ h);
	uint64_t b = cs_mix(a);

	memcpy(uuid, &a, 8);
	memcpy(uuid + 8, &b, 8);
	uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40);
	uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);
}

int cs_host_join(struct lun *flun, uint64_t seed, unsigned h,
		 unsigned lease_ms, struct cs_host *ch)
{
	struct vol_geom g;
	struct hb_opts o;
	int ret = vol_geom_read(flun, &g, NULL, NULL);

	if (ret)
		return ret;
	cs_host_uuid(seed, h, ch->uuid);
	memset(&o, 0, sizeof(o));
	o.host_uuid = ch->uuid;
	o.hostname = h == CS_HOST_A ? "crashsim-a" : "crashsim-b";
	o.lease_ms = lease_ms;
	o.journal_offset = g.journal_offset;
	o.journal_size = g.journal_size_bytes;
	/* One handle: its writes are gated by the lease as vmfsd's data
	 * handle is (its gate_lun). */
	ret = hb_join(flun, g.hb_offset, &o, &ch->hb);
	/* Slot h: the restarted B of the check journals into slot B. */
	if (!ret && hb_slot_index(ch->hb) != h)
		ret = -EUSERS;
	return ret;
}

int cs_host_open(struct lun *flun, unsigned commit_ms, struct cs_host *ch)
{
	struct vol_open_opts oo = { .flags = VOL_OWN_JOURNAL,
				    .journal_slot = hb_slot_index(ch->hb),
				    .commit_ms = commit_ms };
	struct vol_cluster_opts co;
	struct vol_geom g;
	int ret = vol_open_ex(flun, &oo, &ch->v);

	if (ret)
		return ret;
	vol_geom_get(ch->v, &g);
	memset(&co, 0, sizeof(co));
	co.hb_lun = flun;
	co.hb_offset = g.hb_offset;
	co.my_slot = hb_slot_index(ch->hb);
	co.my_hb_gen = hb_generation(ch->hb);
	co.prim = hb_primitive(ch->hb);
	hb_timeouts_get(ch->hb, &co.t);
	co.host_uuid = ch->uuid;
	ret = vol_cluster_start(ch->v, &co);
	if (ret) {
		vol_close(ch->v);
		ch->v = NULL;
	}
	return ret;
}

int cs_host_close(struct cs_host *ch)
{
	int ret = 0, lret;

	if (ch->v)
		ret = vol_close(ch->v);
	ch->v = NULL;
	/* The slot goes only after the volume is home (vmfsd_finish). */
	if (ch->hb) {
		lret = hb_leave(ch->hb);
		if (!ret)
			ret = lret;
	}
	ch->hb = NULL;
	return ret;
}

/* Recover slot si as a host of the volume would. */
static int recover(struct lun *lun, const struct vol_geom *g, unsigned prim,
		   const struct hb_slot_info *si, char *msg, size_t len)
{
	struct hb_timeouts t;
	int ret;

	hb_timeouts_from_lease(si->lease_ms, &t);
	ret = vol_recover_slot(lun, lun, g, prim, &t, si);
	if (ret)
		cs_msg(msg, len, "recovering slot %u (%s, state %u): %s", si->slot,
		       si->hostname, (unsigned)si->state, vmfs_strerror(ret));
	return ret;
}

int cs_host_recover_b(struct lun *lun, uint64_t seed, struct vol **out,
		      char *msg, size_t len)
{
	struct hb_slot_info si[CS_MAX_HOSTS];
	struct vol_open_opts oo = { .flags = VOL_OWN_JOURNAL,
				    .journal_slot = CS_HOST_B };
	uint8_t ub[VMFS_UUID_SIZE];
	unsigned prim = lock_prim_pick(lun, 0);
	struct vol_geom g;
	uint32_t n = 0;
	int ret;

	*out = NULL;
	cs_host_uuid(seed, CS_HOST_B, ub);
	ret = vol_geom_read(lun, &g, NULL, NULL);
	if (!ret)
		ret = hb_survey(lun, g.hb_offset, false, si, CS_MAX_HOSTS, &n);
	if (ret) {
		cs_msg(msg, len, "reading the heartbeat region: %s",
		       vmfs_strerror(ret));
		return ret;
	}
	/* B's own slot first (a restart), then A's (the survivor). */
	for (int pass = 0; pass < 2 && !ret; pass++)
		for (uint32_t i = 0; i < n && !ret; i++) {
			bool mine = !memcmp(si[i].host_uuid, ub, sizeof(ub));

			if (si[i].state != VMFS_HB_FREE && mine == (pass == 0))
				ret = recover(lun, &g, prim, &si[i], msg, len);
		}
	if (!ret) {
		ret = vol_open_ex(lun, &oo, out);
		if (ret)
			cs_msg(msg, len, "host B's vol_open on its own journal: %s",
			       vmfs_strerror(ret));
	}
	return ret;
}
