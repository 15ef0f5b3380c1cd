/*
 * Heartbeat timing, all of it derived from the one lease a host
 * advertises in its slot (sanlock's timeouts.c does the same from its
 * io_timeout).  With the default 10 s lease:
 *
 *   renew every lease/5          2 s
 *   one heartbeat I/O may take   renew           2 s
 *   fence ourselves after        lease - 2*renew 6 s without a renewal
 *   a peer is dead after         lease + renew  12 s without a change
 *
 * The default is 10 s rather than the 5 s first aimed at: on these shared
 * virtual disks a full-bandwidth sequential write through the mount
 * stalled small writes for over 3 s, and a 5 s lease (fence after 3 s)
 * fenced a healthy host.  A SAN with steadier latency can use a shorter
 * lease; VMware's own heartbeat timeout is longer still.
 *
 * Safety: a peer starts its clock only when it sees our counter stop,
 * which is after our last successful renewal, so it cannot declare us
 * dead before last_ok + lease.  We stop all I/O at last_ok + lease -
 * 2*renew, and an I/O already in flight ends within io_timeout = renew,
 * which leaves one renewal interval of margin.  Observers add one renewal
 * to the lease because they sample at that interval.
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
	t->fence_ms = lease_ms - 2 * t->renew_ms;
	t->dead_ms = lease_ms + t->renew_ms;
}
