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
 *   migrate.c   live migration: the exchange with the other host, QEMU's
 *               migration, the locks handed over at its switchover
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

#include "vmfs/hypervisor.h"
#include "vmfs/vmfsd.h"

struct vol;

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
	bool no_disk_asks;        /* --disk-asks off */
	uint64_t vm_mem_bytes;    /* --vm-memory; 0: MemTotal */
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
	/* migrate.c: what the fast path's thread hands to the loop */
	int mig_pipe[2];
	pthread_mutex_t mig_mu;
	struct mig_msg *mig_q;
	uint64_t mig_next_id;
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
/* Wait for a grow the control socket started (and answer it): before the
 * volume closes. */
void vmfsd_ctl_quiesce(struct vmfsd *d);

/* vm.c: the loop thread's, as is the list */
/* VM_INCOMING: QEMU waits for a migration to this host (migrate.c). */
enum vm_phase { VM_RUNNING, VM_POWERDOWN, VM_QUIT, VM_ENDED, VM_INCOMING };
struct vm_mig;

struct vmfsd_vm {
	struct vmfsd_vm *next;
	struct vmfsd *d;
	char path[PATH_MAX];        /* inside the volume */
	char name[HV_NAME_MAX + 1];
	uint64_t memory_mib;        /* its config's, for HA placement */
	char qmp[VMFSD_VM_SOCK_MAX];
	char con[VMFSD_VM_SOCK_MAX];  /* the serial console's socket */
	pid_t pid;
	int pidfd;
	enum vm_phase phase;
	bool crashed;
	char why[256];
	int64_t since_ns;
	unsigned nino;
	uint64_t ino[1 + HV_DISKS_MAX];
	qb_loop_timer_handle timer;
	bool timer_set;
	int powerdown_left_ms;      /* VM_POWERDOWN: until QMP quit */
	bool unopened;              /* ino[] looked up, not opened (an
				     * incoming migration before its switch) */
	char migrated_to[VMFSD_HOST_NAME_MAX + 1];  /* ended by migrating */
	struct vm_mig *mig;         /* the migration under way or last */
};

struct vmfsd_vm *vmfsd_vm_find(struct vmfsd *d, const char *path);
/* Walk path (inside the volume) to its inode; a lookup reference stays
 * on the result (vol_forget when done). */
int vmfsd_vm_resolve(struct vol *v, const char *path, uint64_t *ino);
/* Release the opens of ino[] (unless unopened) and forget them. */
void vmfsd_vm_locks_release(struct vmfsd *d, struct vmfsd_vm *vm);
/* Fork and exec (vm.c says how): -1 with errno, or the child's pid. */
pid_t vmfsd_spawn(const char *file, char **argv, int in, int out,
		  const char *log);
/* Wait up to wait_ms for the VM's QEMU to answer on QMP: 0, -ECHILD
 * (it exited: *status) or -ETIMEDOUT. */
int vmfsd_vm_wait_up(struct vmfsd_vm *vm, int wait_ms, int *status);
/* This host's QEMU log of the VM in vmdir (through the mount). */
void vmfsd_vm_log_path(struct vmfsd *d, const char *vmdir, char *out,
		       size_t len);
/* The QMP and console socket paths into vm->qmp and vm->con (by
 * vm->ino[0]), nothing left there; -ENAMETOOLONG with msg. */
int vmfsd_vm_sock_paths(struct vmfsd *d, struct vmfsd_vm *vm, char *msg,
			size_t len);
/* Watch QEMU's exit (pidfd in the loop); -EIO with msg, QEMU killed. */
int vmfsd_vm_watch(struct vmfsd *d, struct vmfsd_vm *vm, char *msg,
		   size_t len);
/* Into the list, in place of an ended VM of the same path. */
void vmfsd_vm_link(struct vmfsd *d, struct vmfsd_vm *vm);
/* A VMFSD_CTL_VM_* request: 0 with *reply (malloc'd JSON or NULL for
 * "{}"), or -errno with msg. */
int vmfsd_vm_request(struct vmfsd *d, uint32_t type, const char *body,
		     char **reply, char *msg, size_t len);
/* Start the VM at path (inside the volume) here, as `vmfs vm start`
 * does; from: how the HA agent restarts it (kept in its run record), or
 * NULL.  -EBUSY when another host holds its lock.  Loop thread. */
struct hv_ha_state;
/* Write the run record (hypervisor/hastate.c, "should be running") of a
 * VM that runs here from now on; from: how HA restarted it, or NULL. */
void vmfsd_vm_record(struct vmfsd *d, const char *vmdir,
		     const struct hv_config *c, const struct hv_ha_state *from);
int vmfsd_vm_start(struct vmfsd *d, const char *path,
		   const struct hv_ha_state *from, char *msg, size_t len);
/* Has this daemon run (or does it run) the VM at path? */
bool vmfsd_vm_known(struct vmfsd *d, const char *path);
/* It runs here (not ended, not migrated away). */
bool vmfsd_vm_runs_here(struct vmfsd *d, const char *path);
/* How many VMs run here; their paths, comma-separated, into names. */
unsigned vmfsd_vms_running(struct vmfsd *d, char *names, size_t len);
/* The memory the VMs this host runs or receives are configured with. */
uint64_t vmfsd_vms_memory_mib(struct vmfsd *d);
/* Stop every VM (SIGTERM, SIGKILL after a while) and release its locks;
 * returns when all have exited.  Loop thread. */
void vmfsd_vms_stop_all(struct vmfsd *d);
/* SIGKILL to every QEMU; any thread (the fence). */
void vmfsd_vms_kill_all(struct vmfsd *d);

/* migrate.c: live migration between hosts (loop thread unless said) */
int vmfsd_migrate_init(struct vmfsd *d);
void vmfsd_migrate_fini(struct vmfsd *d);
/* VMFSD_CTL_VM_MIGRATE and _STATUS, as vmfsd_vm_request. */
int vmfsd_migrate_request(struct vmfsd *d, uint32_t type, const char *body,
			  char **reply, char *msg, size_t len);
/* From the fast path's thread: a member's message, a member gone. */
struct cn_member;
void vmfsd_migrate_app(struct vmfsd *d, const struct cn_member *m,
		       const char *data, size_t len);
void vmfsd_migrate_left(struct vmfsd *d, const struct cn_member *m);
/* vm's QEMU exited while vm->mig is set (vm_ended, before the locks go). */
void vmfsd_migrate_exited(struct vmfsd *d, struct vmfsd_vm *vm);
bool vmfsd_migrate_busy(const struct vmfsd_vm *vm);
/* Must vm's end leave its run record (HA) alone?  It migrated away, or
 * an incoming migration of it never completed here. */
bool vmfsd_migrate_keeps_record(const struct vmfsd_vm *vm);
void vmfsd_migrate_free(struct vmfsd_vm *vm);
/* ha.c */
/* Start the HA agent (a timer on the loop); read-write mounts only. */
void vmfsd_ha_start(struct vmfsd *d);
void vmfsd_ha_stop(struct vmfsd *d);
/* Its recent decisions, newest last, one per line, into out. */
void vmfsd_ha_events(struct vmfsd *d, char *out, size_t len);
/* The memory this host has for another VM, MiB: what --vm-memory (by
 * default MemTotal) gives VMs less what those it runs are configured
 * with, and at most MemAvailable (less what VMs the HA agent restarted
 * lately will still take).  What it advertises in its heartbeat. */
uint64_t vmfsd_vm_room_mib(struct vmfsd *d);

/*
 * I/O on this daemon's own mount, made by a child process (mntio.c): the
 * hypervisor library's calls of the same names, and a few more.
 */
int vmfsd_mio_main(int argc, char **argv);     /* vmfsd --mount-io */
int vmfsd_mio_ha_read(const char *vmdir, struct hv_ha_state *s, char *err,
		      size_t errlen);
int vmfsd_mio_ha_write(const char *vmdir, const struct hv_ha_state *s);
int vmfsd_mio_ha_clear(const char *vmdir);
int vmfsd_mio_config_load(const char *vmdir, struct hv_config *c, char *err,
			  size_t errlen);
/* A small file's whole text (malloc'd, NUL-terminated). */
int vmfsd_mio_read_text(const char *path, char **text, char *err,
			size_t errlen);
/* ": <the tail of the file>" (QEMU's log) appended to msg. */
void vmfsd_mio_tail(const char *path, char *msg, size_t len);
/* Create the file if it is missing. */
int vmfsd_mio_touch(const char *path);
/* fn(arg, path inside the volume, result, record, error) for each run
 * record under top (a mount point) of an HA VM, and for each that cannot
 * be read (result < 0, error says why); fn returns nonzero to stop. */
typedef int (*vmfsd_mio_walk_fn)(void *arg, const char *path, int ret,
				 const struct hv_ha_state *s, const char *err);
int vmfsd_mio_ha_walk(const char *top, vmfsd_mio_walk_fn fn, void *arg);

#endif /* VMFSD_INT_H */
