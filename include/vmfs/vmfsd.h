/*
 * vmfsd: what the per-host daemon keeps on this machine, its host state
 * (a Tokyo Cabinet DB in the state directory).
 */
#ifndef VMFS_VMFSD_H
#define VMFS_VMFSD_H

#include <stdint.h>
#include <sys/types.h>
#include "vmfs/error.h"
#include "vmfs/format.h"

/*
 * A host's identity is its state directory (default /var/lib/vmfs): the
 * DB there holds the host UUID, made at first use, and one record per
 * mounted volume.  Several hosts can run on one machine with different
 * state directories.
 */
struct vmfsd_host;

struct vmfsd_mount_rec {
	char vol_uuid[37];
	char lun[4096];
	char mountpoint[4096];
	pid_t pid;          /* vmfsd serving the mount */
	int64_t since_ns;   /* wall clock, display only */
};

#define VMFSD_DEFAULT_STATE_DIR "/var/lib/vmfs"

int vmfsd_host_open(const char *state_dir, struct vmfsd_host **out);
void vmfsd_host_close(struct vmfsd_host *h);
void vmfsd_host_uuid(struct vmfsd_host *h, uint8_t uuid[VMFS_UUID_SIZE]);
const char *vmfsd_host_dir(struct vmfsd_host *h);

/*
 * Claim a volume for this host: takes an exclusive lock (held until
 * vmfsd_host_release or process exit) so the same host identity can never
 * mount one volume twice, and records the mount.  Fails with -EBUSY and
 * fills *existing when it is already mounted by this host.
 */
int vmfsd_host_claim(struct vmfsd_host *h, const struct vmfsd_mount_rec *rec,
		   struct vmfsd_mount_rec *existing);
int vmfsd_host_release(struct vmfsd_host *h, const char *vol_uuid);
/* Find the mount record by volume uuid or by mount point. */
int vmfsd_host_find(struct vmfsd_host *h, const char *vol_uuid,
		  const char *mountpoint, struct vmfsd_mount_rec *out);
/* Call cb for every record whose vmfsd is still running. */
int vmfsd_host_list(struct vmfsd_host *h,
		  int (*cb)(void *ctx, const struct vmfsd_mount_rec *r),
		  void *ctx);

/*
 * How a vmfsd's unmount ended, handed to `vmfs umount` through the DB
 * (there is no control channel to the daemon yet): the daemon puts it
 * just before it releases the volume, umount takes it (reads and
 * deletes it) once that pid has exited.  One per volume, the latest.
 */
struct vmfsd_close_status {
	pid_t pid;          /* the vmfsd that closed the volume */
	int err;            /* 0: closed cleanly, else -errno */
	char msg[4096];     /* what failed and what to do ("" when clean) */
};

int vmfsd_host_close_status_put(struct vmfsd_host *h, const char *vol_uuid,
			      const struct vmfsd_close_status *st);
/* -ENOENT when none was recorded by that pid. */
int vmfsd_host_close_status_take(struct vmfsd_host *h, const char *vol_uuid,
			       pid_t pid, struct vmfsd_close_status *out);

#endif /* VMFS_VMFSD_H */
