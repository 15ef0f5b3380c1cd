/*
 * Heartbeat timing, all of it derived from the one lease a host
 * advertises in its slot (sanlock's timeouts.c does the same from its
 * io_timeout).  With the default 10 s lease:
 *
 *   renew every                  lease/5          2 s
 *   one heartbeat I/O may take   renew            2 s
 *   any other I/O may take       2*renew          4 s
 *   writes stop at               renewal start + lease - 2*renew = +6 s
 *   a peer is dead after         lease + renew   12 s without a change
 *
 * The default is 10 s rather than the 5 s first aimed at: on these shared
 * virtual disks a full-bandwidth sequential write through the mount
 * stalled small writes for over 3 s, and a 5 s lease (fence after 3 s)
 * fenced a healthy host.  A SAN with steadier latency can use a shorter
 * lease; VMware's own heartbeat timeout is longer still.  The data I/O
 * timeout is twice the heartbeat's for the same reason: a large write
 * queued behind others may take longer than a one-sector renewal, and
 * the margin below still holds.
 *
 * Safety (docs/PROTOCOL.md "Timing"): no write of ours lands after a
 * peer may count us dead and break our locks.  A peer starts its clock
 * when it SEES our counter change (heartbeat.c's survey, hbwatch.c), so
 * no earlier than the issue time s of our last renewal that changed it,
 * and counts us dead no earlier than s + dead_ms.  The write gate
 * (lun_gate_arm) issues no write at or after s + fence_ms, and an issued
 * write ends within data_io_timeout_ms, so our last write ends by
 *
 *   s + fence + data_io = s + lease  <  s + lease + renew = s + dead,
 *
 * one renewal interval of margin (for clock rate differences and an
 * observer's sampling).  Observers add one renewal to the lease because
 * they sample at that interval.
 */
#include "vmfs/lockmgr.h"


void hb_timeouts_from_lease(uint32_t lease_ms, struct hb_timeouts *t)
{
	if (lease_ms < HB_MIN_LEASE_MS)
		lease_ms = HB_MIN_LEASE_MS;
	if (lease_ms > HB_MAX_LEASE_MS)
		lease_ms = HB_MAX_LEASE_MS;
	t->lease_ms = lease_ms;
	t->renew_ms = lease_ms / 5;
	t->io_timeout_ms = t->renew_ms;
	t->data_io_timeout_ms = 2 * t->renew_ms;
	t->fence_ms = lease_ms - 2 * t->renew_ms;
	t->dead_ms = lease_ms + t->renew_ms;
}
