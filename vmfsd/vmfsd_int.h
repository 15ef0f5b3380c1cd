/*
 * vmfsd: the daemon's private header, shared by its files and linked only
 * into bin/vmfsd:
 *
 *   main.c      arguments, detaching, the launcher that reports start-up
 *   log.c       libqb logging policy and the blackbox
 *   mount.c     the mount sequence (claim, heartbeat, open, FUSE) and its
 *               undoing
 *   loop.c      the main loop: signals, the FUSE thread, the stop sequence
 *   ctl.c       the control socket server
 *   notify.c    sd_notify: READY, STOPPING, STATUS for systemd
 *   cluster.c   the cluster fast path (corosync CPG) plugged into the
 *               engine
 *   vm.c        the VM supervisor: QEMU processes and their locks
 *   ha.c        the HA agent: restarts the HA VMs of dead hosts
 *
 * Threads: the main thread runs the qb_loop and does everything that is
 * not a FUSE request: signals, control requests, timers, start-up and
 * shutdown.  FUSE requests are served by libfuse's worker threads, under
 * one thread of ours that sits in vfuse_run() and tells the loop (a pipe)
 * when the session has ended.  The heartbeat, the journal and the cluster
 * fast path (lockmgr/clusternet.c) run their own threads inside the
 * library.
 */
#ifndef VMFSD_INT_H
#define VMFSD_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <qb/qbloop.h>

#include "vmfs/vmfsd.h"

#define VMFSD_EXIT_OK    0
#define VMFSD_EXIT_FAIL  1
#define VMFSD_EXIT_USAGE 2

#define VMFSD_MSG_MAX 4096

struct vmfsd_args {
	char lun[PATH_MAX];        /* fits vmfsd_mount_rec.lun */
	char mountpoint[PATH_MAX];
	char state_dir[PATH_MAX];
	char log_file[PATH_MAX];
	bool have_lun, have_mountpoint, have_log_file;
	bool foreground;
	bool debug;
	bool ro;                  /* --ro: VOL_RDONLY, FUSE "ro" */
	int ready_fd;             /* -1: none */
	unsigned threads;
	unsigned commit_ms;
	uint64_t cache_bytes;     /* --cache-size; 0: the engine's default */
	unsigned lease_ms;        /* --lease-ms; 0: the volume's default */
	char host_name[VMFSD_HOST_NAME_MAX + 1];   /* --host-name; "": not given */
	unsigned lock_prim;       /* --lock-primitive: LOCK_PRIM_*, 0 auto */
	bool no_cluster;          /* --no-cluster: disk-only */
};

struct vmfsd_ctl_server;

struct vmfsd {
	struct vmfsd_args *a;
	/* mount.c */
	struct lun *lun;
	struct lun *hb_lun;	/* own handle: heartbeat I/O has a short timeout */
	struct hb *hb;
	struct vmfsd_host *host;
	struct vol *vol;
	struct vfuse *fuse;
	bool claimed;
	/* Set once, by whichever thread the heartbeat fenced from; the why
	 * is written before the flag. */
	volatile bool fenced;
	char fence_why[256];
	/* The fence tells the engine (vol_cluster_fenced) while vol_live:
	 * cleared before the volume closes. */
	pthread_mutex_t fence_mu;
	bool vol_live;
	char uuid[37];
	char host_uuid[37];
	char host_name[VMFSD_HOST_NAME_MAX + 1];
	/* What the heartbeat writes through; the lock context is to be opened
	 * with it too, so that one host never mixes primitives on a LUN. */
	unsigned lock_prim;
	struct lock_ctx *ro_lk; /* read-only mount: its volume lock */
	uint64_t ro_locked;     /* the lock's address + 1 while held */
	int64_t since_ns;       /* mounted at, wall clock */
	/* cluster.c */
	struct cn *cn;          /* NULL: not started (--no-cluster, --ro) */
	uint8_t vol_uuid[VMFS_UUID_SIZE];
	/* loop.c */
	qb_loop_t *loop;
	pthread_t fuse_thread;
	bool fuse_running;
	int fuse_done[2];       /* pipe: the FUSE thread's "I returned" */
	int fuse_ret;
	bool stopping;
	bool said_stopping;     /* STOPPING=1 sent */
	qb_loop_timer_handle wake_timer;
	int exit_status;
	/* ctl.c */
	struct vmfsd_ctl_server *ctl;
	/* vm.c: the loop thread changes the list; vms_mu also guards it
	 * for the fence callback, which kills from another thread. */
	struct vmfsd_vm *vms;
	pthread_mutex_t vms_mu;
	/* ha.c */
	struct vmfsd_ha *ha;
};

/* main.c */
void vmfsd_write_all(int fd, const char *s, size_t len);

/* log.c */
int vmfsd_log_setup(const struct vmfsd_args *a);
void vmfsd_blackbox_dump(const struct vmfsd_args *a);
/* From now on, syslog and log file lines name the volume. */
void vmfsd_log_volume(const char *vol_uuid);

/* mount.c */
__attribute__((format(printf, 2, 3)))
void vmfsd_fail(struct vmfsd *d, const char *fmt, ...);
void vmfsd_ready(struct vmfsd *d);
int vmfsd_start(struct vmfsd *d);
/* Undo whatever vmfsd_start() did; st gets how the close went. */
void vmfsd_finish(struct vmfsd *d, struct vmfsd_close_status *st);
void vmfsd_info_get(struct vmfsd *d, struct vmfsd_info *out);

/* cluster.c */
/* Join the volume's CPG group (unless --no-cluster or --ro) and plug the
 * fast path into the engine; never fails the mount. */
void vmfsd_cluster_net_start(struct vmfsd *d);
/* Unplug and leave, before the volume closes. */
void vmfsd_cluster_net_stop(struct vmfsd *d);
/* The cluster part of `vmfs info`. */
void vmfsd_cluster_net_info(struct vmfsd *d, struct vmfsd_info *out);

/* loop.c */
void vmfsd_signals_setup(void);
bool vmfsd_stop_pending(void);
int vmfsd_serve(struct vmfsd_args *a);
/* Begin the shutdown: end the FUSE session (the mount is undone lazily
 * unless someone unmounted it already).  Idempotent. */
void vmfsd_stop(struct vmfsd *d);

/* notify.c: no-ops unless systemd (NOTIFY_SOCKET) started us */
__attribute__((format(printf, 1, 2)))
void vmfsd_notify_status(const char *fmt, ...);
void vmfsd_notify_ready(const char *mountpoint, const char *vol_uuid, bool ro);
void vmfsd_notify_stopping(const char *mountpoint);

/* ctl.c */
int vmfsd_ctl_start(struct vmfsd *d);
/* Reply to every pending umount request with st, then close the socket. */
void vmfsd_ctl_stop(struct vmfsd *d, const struct vmfsd_close_status *st);

/* vm.c */
/* A VMFSD_CTL_VM_* request: 0 with *reply (malloc'd JSON or NULL for
 * "{}"), or -errno with msg. */
int vmfsd_vm_request(struct vmfsd *d, uint32_t type, const char *body,
		     char **reply, char *msg, size_t len);
/* Start the VM at path (inside the volume) here, as `vmfs vm start`
 * does; from: how the HA agent restarts it (kept in its run record), or
 * NULL.  -EBUSY when another host holds its lock.  Loop thread. */
struct hv_ha_state;
int vmfsd_vm_start(struct vmfsd *d, const char *path,
		   const struct hv_ha_state *from, char *msg, size_t len);
/* Has this daemon run (or does it run) the VM at path? */
bool vmfsd_vm_known(struct vmfsd *d, const char *path);
/* How many VMs run here; their paths, comma-separated, into names. */
unsigned vmfsd_vms_running(struct vmfsd *d, char *names, size_t len);
/* Stop every VM (SIGTERM, SIGKILL after a while) and release its locks;
 * returns when all have exited.  Loop thread. */
void vmfsd_vms_stop_all(struct vmfsd *d);
/* SIGKILL to every QEMU; any thread (the fence). */
void vmfsd_vms_kill_all(struct vmfsd *d);

/* ha.c */
/* Start the HA agent (a timer on the loop); read-write mounts only. */
void vmfsd_ha_start(struct vmfsd *d);
void vmfsd_ha_stop(struct vmfsd *d);
/* Its recent decisions, newest last, one per line, into out. */
void vmfsd_ha_events(struct vmfsd *d, char *out, size_t len);

#endif /* VMFSD_INT_H */
