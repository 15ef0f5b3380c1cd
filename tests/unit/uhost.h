/*
 * Hosts of a shared volume inside one test process (uhost.c): each with
 * its own LUN handles, heartbeat slot and engine with its cluster state
 * started, as a vmfsd would have.  test_vol_cluster.c runs two of them;
 * test_fuse_kcache.c one, alone on the volume.
 */
#ifndef VMFS_TESTS_UHOST_H
#define VMFS_TESTS_UHOST_H

#include <stdbool.h>
#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"

struct uhost {
	struct lun *lun, *hb_lun;
	struct hb *hb;
	struct vol *v;
};

/* The volume uhost_volume made last, and its geometry. */
extern const char *uhost_lun_path;
extern struct vol_geom uhost_geom;
/* The lease uhost_up advertises, for hosts brought up from now on.  The
 * default is long enough that a disk stall of a second or two on a
 * loaded machine fences nobody (a test that wants a death seen fast sets
 * a short one, then restores it). */
#define UHOST_LEASE_MS_DEFAULT 4000u
extern unsigned uhost_lease_ms;
/* Hosts brought up from now on ask for locks on the disk and read the
 * others' asks (hb_opts.asks, vol_cluster_opts.hb); false by default. */
extern bool uhost_disk_asks;

/* A fresh volume of size bytes (named after stem), no host on it;
 * uhost_volume's is 256 MiB. */
void uhost_volume_sized(const char *stem, uint64_t size);
void uhost_volume(const char *stem);
/* Host n joins the heartbeat, opens the engine on its own journal and
 * starts its cluster state (alone, or sharing).  faulty: the engine's
 * LUN (its lock records too) is a fault-injecting wrapper (lun_fault_*). */
void uhost_up(struct uhost *h, unsigned n, bool faulty);
/* 0, or the first error of the clean shutdown (no assertion here: a
 * suite's cleanup calls it too, outside any test).  h is zeroed. */
int uhost_down(struct uhost *h);

#endif
