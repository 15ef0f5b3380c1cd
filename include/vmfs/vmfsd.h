/*
 * vmfsd: what the per-host daemon keeps on this machine, its host state
 * (a Tokyo Cabinet DB in the state directory), and its control socket:
 * the protocol and the client `vmfs` talks to a running daemon with.
 */
#ifndef VMFS_VMFSD_H
#define VMFS_VMFSD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <qb/qbipc_common.h>
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
 * The host's name (vmfs mount --host-name): shown in heartbeat slots,
 * logs, `vmfs hosts` and `vmfs locks`.  1 to VMFSD_HOST_NAME_MAX bytes
 * (the heartbeat slot's field), printable ASCII without spaces or '/'.
 */
#define VMFSD_HOST_NAME_MAX 64
/* The rule, for the messages that refuse a name. */
#define VMFSD_HOST_NAME_RULE "a host name is 1 to 64 printable ASCII " \
	"characters, without spaces or '/'"
bool vmfsd_host_name_valid(const char *name);
/* The name stored in the DB, "" when none was ever given. */
const char *vmfsd_host_name(struct vmfsd_host *h);
/* Store name (valid, else -EINVAL) for this and later mounts. */
int vmfsd_host_set_name(struct vmfsd_host *h, const char *name);

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

/* ---- the control socket ------------------------------------------------
 *
 * Every vmfsd serves a libqb IPC service on this machine, named after the
 * canonical path of its mount point (vmfsd_ctl_name), so that `vmfs` finds
 * the daemon of a mount point without knowing its state directory, and
 * several daemons (several state directories, even the same volume at
 * different mount points) each have their own.  libqb's sockets are
 * abstract unix sockets on Linux: they belong to the network namespace the
 * daemon runs in, and a client must run in the same one.
 *
 * Only root and the daemon's own user may connect: the daemon checks the
 * peer's credentials when it accepts the connection and refuses the rest
 * (vmfsd_ctl_connect gives -EACCES).
 *
 * A message is a fixed header (the libqb header with the request type or
 * the reply's error, then the protocol version and the body length) and a
 * body of NUL-terminated JSON text.  Fields are added to a body without
 * changing the version, and a reader ignores the fields it does not know
 * and takes a default for those that are missing; the version changes
 * only when an existing field changes meaning.  Requests the daemon does
 * not know get an error reply (-EOPNOTSUPP), never silence.
 *
 * These objects (the wire format and the client) are in libvmfs, for the
 * CLI; the server is part of bin/vmfsd alone.  The client lives here,
 * next to the server that defines the protocol, rather than in cli/: the
 * hypervisor tools and the tests speak the same protocol, and a change of
 * the format then touches one component.
 */
#define VMFSD_CTL_VERSION   1
#define VMFSD_CTL_MSG_MAX   (64 * 1024)   /* whole message, header included */
#define VMFSD_CTL_NAME_MAX  64
#define VMFSD_HA_EVENTS_MAX 8192

enum vmfsd_ctl_type {
	VMFSD_CTL_INFO = 1,     /* {} -> struct vmfsd_info */
	VMFSD_CTL_UMOUNT = 2,   /* {"stop_vms"} -> struct vmfsd_close_status, once closed */
	VMFSD_CTL_VM_START = 3, /* {"path"} -> {} once QEMU answers on QMP */
	VMFSD_CTL_VM_STOP = 4,  /* {"path", "force", "timeout_ms"} -> {}: begun */
	VMFSD_CTL_VM_LIST = 5,  /* {} -> {"vms": [struct vmfsd_vm_info]} */
	VMFSD_CTL_GROW = 6,     /* {"dry_run"} -> struct vmfsd_grow_status */
	VMFSD_CTL_VM_MIGRATE = 7, /* {"path", "to", "bandwidth"} -> {}: begun */
	VMFSD_CTL_VM_MIGRATE_STATUS = 8, /* {"path"} -> the migration's state
				  * (vmfsd/migrate.c) */
};

/* The libqb service name of the daemon serving mountpoint (canonical,
 * absolute path).  -ENAMETOOLONG if len is too small. */
int vmfsd_ctl_name(const char *mountpoint, char *out, size_t len);

/* The smallest --cache-size (vmfsd's and `vmfs mount`'s): below it the
 * budget would drop directory indexes at nearly every operation. */
#define VMFSD_CACHE_MIN_BYTES (1ull << 20)

/* A process in the volume's CPG group, as vmfsd saw it. */
#define VMFSD_CLUSTER_MAX_MEMBERS 64
struct vmfsd_cluster_member {
	uint32_t nodeid, pid;       /* corosync's node id, the vmfsd's pid */
	bool known;                 /* it said which host it is */
	char host_uuid[37];
	uint32_t slot;              /* its heartbeat slot and generation */
	uint64_t hb_gen;
	char host_name[VMFSD_HOST_NAME_MAX + 1];
	char node_name[VMFSD_HOST_NAME_MAX + 1];   /* corosync's nodelist */
	char node_addr[64];                         /* its ring0_addr */
};

/* What `vmfs info MOUNTPOINT` shows that only the running daemon knows. */
struct vmfsd_info {
	pid_t pid;
	int64_t since_ns;           /* mounted at, wall clock, display only */
	char version[64];           /* the daemon's VMFS_VERSION */
	char vol_uuid[37];
	char host_uuid[37];
	char host_name[VMFSD_HOST_NAME_MAX + 1];
	char lun[4096];
	char mountpoint[4096];
	char state_dir[4096];
	uint32_t fuse_threads;
	char lock_primitive[16];    /* "ats" or "reserve" ("" from an older vmfsd) */
	/* The paths of its LUN handles, a line each: "HANDLE PORTAL STATE
	 * FAILED_AGO_MS" (data or heartbeat; in-use or standby; -1: never
	 * failed); "" from an older vmfsd.  And the failovers since mount. */
	char paths[1024];
	uint32_t path_failovers;
	bool read_only;             /* mounted --ro */
	/* heartbeat */
	uint32_t hb_slot;
	uint64_t hb_generation;
	uint32_t lease_ms, renew_ms, fence_ms;
	/* hb_renew_times: the last renewal's and the slowest one's duration
	 * (0 from an older vmfsd) */
	uint32_t renew_last_ms, renew_max_ms;
	bool fenced;                /* I/O stopped: the lease could not be renewed */
	/* the metadata journal since the mount (jnl_stats) */
	uint64_t jnl_commits, jnl_images, jnl_ring_blocks, jnl_flushes;
	uint64_t jnl_checkpoints, jnl_forced;
	/* the engine's caches (vol_cache_stats; all 0 from an older vmfsd) */
	uint64_t cache_budget_bytes, cache_used_bytes, cache_fixed_bytes;
	uint64_t cache_index_bytes, cache_inode_bytes, cache_inodes;
	uint64_t cache_evictions;
	/* what the kernel may keep (fuse/kcache.c; 0 from an older vmfsd):
	 * names and inodes now, and how many it was told to forget */
	uint64_t kcache_names, kcache_inodes, kcache_forgotten;
	uint64_t kcache_expired;
	/* the cluster fast path (corosync CPG); "" from an older vmfsd */
	char cluster_state[16];     /* "joined", "down" (why says), "off" */
	char cluster_why[160];
	char cluster_group[64];     /* "vmfs-<volume uuid>" */
	uint32_t cluster_nodeid;
	bool cluster_quorate;
	uint32_t cluster_joins;     /* 1, plus one per return of corosync */
	uint64_t cluster_rejected;  /* messages dropped (malformed, ...) */
	/* the engine's use of it (vol_cluster_net_stats) */
	bool cluster_caching;
	uint64_t cluster_cached, cluster_asked, cluster_answered;
	uint64_t cluster_ask_timeouts, cluster_requests, cluster_handed;
	/* Disk asks (PROTOCOL.md §9a): ours, others' for our locks, answered "kept". */
	uint64_t disk_asked, disk_requests, disk_busy;
	uint32_t cluster_nmembers;
	struct vmfsd_cluster_member cluster_members[VMFSD_CLUSTER_MAX_MEMBERS];
	/* the HA agent's recent decisions, one per line, oldest first ("" from
	 * an older vmfsd or a read-only mount) */
	char ha_events[VMFSD_HA_EVENTS_MAX];
};

/* How the daemon's unmount ended: the reply to VMFSD_CTL_UMOUNT. */
struct vmfsd_close_status {
	pid_t pid;                  /* the vmfsd that closed the volume */
	int err;                    /* 0: unmounted and closed cleanly, else -errno */
	bool unmounted;             /* the mount is gone (err: the close failed) */
	char msg[4096];             /* what failed and what to do ("" when clean) */
};

/*
 * The reply to VMFSD_CTL_GROW: vol_grow_online's result (vol.h struct
 * vol_grow_result), filled as far as known on failure too; the frame's
 * error is its return (0, -errno or a -VMFS_E_* code).
 */
struct vmfsd_grow_status {
	uint64_t lun_bytes, old_size_bytes, new_size_bytes;
	uint64_t old_file_blocks, new_file_blocks;
	uint64_t max_file_blocks, max_size_bytes;
	uint32_t file_block_size;
	bool capped, finished;
	char msg[1024];             /* why, for refusals the codes do not say */
};

/* ---- wire format (both ends) ---- */

/*
 * The header of every message, followed by body_len bytes of JSON text
 * whose last byte is its NUL.  The libqb header comes first because libqb
 * reads it: its id is the request type (a reply repeats it), its size the
 * whole message; a reply's error is 0 or -errno.  Host byte order: both
 * ends are on one machine.
 */
struct vmfsd_ctl_frame {
	union {
		struct qb_ipc_request_header req;
		struct qb_ipc_response_header res;
	} qb;
	uint32_t version;      /* VMFSD_CTL_VERSION of the sender */
	uint32_t body_len;     /* with the NUL */
};

/*
 * Frame type and body (NUL-terminated JSON) into buf as a request; returns
 * the message size or -E2BIG.  vmfsd_ctl_reply_frame does the same for a
 * reply carrying err (0 or -errno).
 */
ssize_t vmfsd_ctl_req_frame(uint32_t type, const char *body, void *buf,
			    size_t len);
ssize_t vmfsd_ctl_reply_frame(uint32_t type, int err, const char *body,
			      void *buf, size_t len);
/*
 * Check a received message of len bytes and point *body into it.
 * -EBADMSG: truncated, sizes that disagree, a body that is not one
 * NUL-terminated JSON object;
 * -EPROTONOSUPPORT: another protocol version (*version says which).
 */
int vmfsd_ctl_req_parse(const void *buf, size_t len, uint32_t *type,
			uint32_t *version, const char **body);
int vmfsd_ctl_reply_parse(const void *buf, size_t len, uint32_t *type,
			  int *err, const char **body);

/* Bodies: malloc'd JSON text, or NULL when out of memory. */
char *vmfsd_info_encode(const struct vmfsd_info *in);
char *vmfsd_close_status_encode(const struct vmfsd_close_status *in);
char *vmfsd_ctl_error_encode(const char *msg);
char *vmfsd_grow_status_encode(const struct vmfsd_grow_status *in);
int vmfsd_grow_status_decode(const char *body, struct vmfsd_grow_status *out);
/* 0, or -EBADMSG when body is not a JSON object or a field has the wrong
 * type; missing fields are left zero. */
int vmfsd_info_decode(const char *body, struct vmfsd_info *out);
int vmfsd_close_status_decode(const char *body, struct vmfsd_close_status *out);
/* The "message" of an error reply ("" if none), into msg. */
void vmfsd_ctl_error_decode(const char *body, char *msg, size_t len);

/* ---- client ---- */

struct vmfsd_ctl;

/*
 * Connect to the daemon serving mountpoint (canonicalised here when it
 * can be; a dead FUSE mount cannot, and the path is taken as given).
 * -ENOENT: no daemon serves it in this network namespace; -EACCES: the
 * daemon refused us (not root, not its user); else -errno.
 */
int vmfsd_ctl_connect(const char *mountpoint, struct vmfsd_ctl **out);
/* The same for a mount point known to be canonical (the kernel's mount
 * table): never touches the path, so a hung mount cannot block it; and,
 * with timeout_ms >= 0, -ETIMEDOUT when the daemon does not answer the
 * connection in that time (it is stopped or hung). */
int vmfsd_ctl_connect_canonical(const char *mountpoint, int timeout_ms,
				struct vmfsd_ctl **out);
void vmfsd_ctl_disconnect(struct vmfsd_ctl *c);

/*
 * Send a request and wait up to timeout_ms (-1: forever) for its reply.
 * Returns 0 when a reply came, with its error in *err and its body
 * (malloc'd, free() it) in *reply; or -errno when none did (-ETIMEDOUT,
 * -ENOTCONN: the daemon went away, -EBADMSG: not a reply we understand).
 */
int vmfsd_ctl_call(struct vmfsd_ctl *c, uint32_t type, const char *body,
		   int timeout_ms, int *err, char **reply);
/* The same with a message framed by the caller (len bytes at msg), for
 * tests that send what vmfsd_ctl_req_frame never makes; type is what the
 * reply must carry. */
int vmfsd_ctl_call_raw(struct vmfsd_ctl *c, const void *msg, size_t len,
		       uint32_t type, int timeout_ms, int *err, char **reply);

/* VMFSD_CTL_INFO: 0, the transport's -errno, or the daemon's error with
 * its message in msg. */
int vmfsd_ctl_info(struct vmfsd_ctl *c, struct vmfsd_info *out, char *msg,
		   size_t msglen);
/*
 * VMFSD_CTL_UMOUNT: the daemon unmounts (not lazily: -EBUSY while files
 * are open there), closes the volume and releases it, then replies and
 * exits.  0 when the reply came (its outcome in *out), else the
 * transport's -errno.
 */
int vmfsd_ctl_umount(struct vmfsd_ctl *c, int timeout_ms,
		     struct vmfsd_close_status *out);
/*
 * VMFSD_CTL_GROW: the daemon grows its volume online into the space the
 * LUN gained (dry_run: says what it would do).  0 when the reply came,
 * with the outcome in *err and *out; else the transport's -errno.
 */
int vmfsd_ctl_grow(struct vmfsd_ctl *c, bool dry_run, int timeout_ms,
		   int *err, struct vmfsd_grow_status *out);

/* ---- the VM supervisor (vmfsd/vm.c; client: vmfsd/ctl_vm.c) ----------
 *
 * A VM is a directory on the volume (include/vmfs/hypervisor.h); requests
 * name it by its path inside the volume ("/vms/web1").  While QEMU runs,
 * the daemon holds the open lock of the VM's config and of each of its
 * disks for writing (exclusive, for the host): a second host's start
 * fails with -EBUSY naming the holder, and `vmfs vm list` on any host
 * reads the state from those locks.  The supervisor's own view (this
 * host's QEMU processes and how the last ones ended) is VMFSD_CTL_VM_LIST.
 */
/*
 * The unix sockets of a running VM, in the daemon's state dir and named
 * by the inode of the VM's config: kind "qmp" (the supervisor's) or
 * "console" (the serial console, vmfs vm console attaches to it).  0, or
 * -ENAMETOOLONG when the path does not fit a unix socket address (or
 * holds a comma, which QEMU's option parser would split at).
 */
#define VMFSD_VM_SOCK_MAX 108
int vmfsd_vm_sock_path(const char *state_dir, uint64_t config_ino,
		       const char *kind, char out[VMFSD_VM_SOCK_MAX]);

struct vmfsd_vm_info {
	char path[4096];            /* inside the volume */
	char name[65];
	pid_t pid;                  /* QEMU's; 0 once it has exited */
	char state[16];             /* running, stopping, stopped, crashed */
	char why[256];              /* how it ended ("killed by signal 9") */
	int64_t since_ns;           /* started or ended at, wall clock */
};

/* Each returns 0, the transport's -errno, or the daemon's error with its
 * message in msg. */
int vmfsd_ctl_vm_start(struct vmfsd_ctl *c, const char *path, char *msg,
		       size_t msglen);
int vmfsd_ctl_vm_stop(struct vmfsd_ctl *c, const char *path, bool force,
		      int timeout_ms, char *msg, size_t msglen);
/* Begin migrating the VM at path (running on this vmfsd's host) to host
 * `to` (name or UUID), at most bandwidth bytes/s (0: vmfsd's default);
 * _status: the migration's state as JSON text
 * (malloc'd), see vmfsd/migrate.c mig_status. */
int vmfsd_ctl_vm_migrate(struct vmfsd_ctl *c, const char *path, const char *to,
			 uint64_t bandwidth, char *msg, size_t msglen);
int vmfsd_ctl_vm_migrate_status(struct vmfsd_ctl *c, const char *path,
				char **json, char *msg, size_t msglen);
/* *out: malloc'd array of *n entries (free()). */
int vmfsd_ctl_vm_list(struct vmfsd_ctl *c, struct vmfsd_vm_info **out,
		      size_t *n, char *msg, size_t msglen);
/* VMFSD_CTL_UMOUNT with stop_vms: the daemon stops this host's VMs first
 * instead of refusing while they run. */
int vmfsd_ctl_umount_vms(struct vmfsd_ctl *c, int timeout_ms, bool stop_vms,
			 struct vmfsd_close_status *out);
/* Bodies of VMFSD_CTL_VM_LIST (both ends). */
char *vmfsd_vm_list_encode(const struct vmfsd_vm_info *vms, size_t n);
int vmfsd_vm_list_decode(const char *body, struct vmfsd_vm_info **out,
			 size_t *n);

#endif /* VMFS_VMFSD_H */
