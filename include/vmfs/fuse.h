/*
 * fuse: the FUSE3 low-level adapter that mounts a volume (struct vol from
 * vmfs/vmfsd.h) on a directory of this host.
 *
 * The adapter is a thin translation: FUSE inode numbers are the engine's
 * inode numbers, the kernel's lookup counts are the engine's references
 * (vol_ref / vol_forget), and every engine error goes back to the caller
 * as its errno; -VMFS_E_* codes, which errno cannot say, become EIO and
 * are logged with their vmfs_strerror() text.
 *
 * Coherence between hosts: entry and attribute timeouts are 0 and opened
 * files keep no page cache across opens, so every host sees the others'
 * changes at the next system call.  The data path goes straight to the
 * LUN: O_DIRECT opens get FUSE direct I/O (what QEMU's cache=none needs),
 * fsync reaches the LUN, and the adapter keeps no write-back state.
 *
 * Threads: vfuse_run() serves requests on up to max_threads worker
 * threads, each with its own /dev/fuse clone and its own aligned I/O
 * buffer; the adapter takes no lock of its own on the request path.
 */
#ifndef VMFS_FUSE_H
#define VMFS_FUSE_H

#include <stdbool.h>
#include "vmfs/error.h"

struct vol;
struct vfuse;

#define VFUSE_DEFAULT_THREADS 16
#define VFUSE_MAX_THREADS     1024

struct vfuse_opts {
	const char *mountpoint;  /* existing directory */
	const char *fsname;      /* source shown in /proc/mounts (NULL: "vmfs") */
	unsigned max_threads;    /* worker threads; 0: VFUSE_DEFAULT_THREADS */
	bool debug;              /* trace every request (libfuse -d) at DEBUG */
	bool allow_other;        /* let other users than the mounter in */
	bool rdonly;             /* mount "ro": the kernel refuses writes with
	                          * EROFS (open the volume VOL_RDONLY too) */
};

void vfuse_opts_init(struct vfuse_opts *o);

/*
 * Mount v on o->mountpoint (type "fuse.vmfs", default_permissions: the
 * kernel checks modes and owners).  The volume stays the caller's: close
 * it after vfuse_unmount_destroy().  Returns 0 or -errno (-ENOENT,
 * -ENOTDIR, -EPERM, -ENODEV when /dev/fuse is missing, ...).
 */
int vfuse_mount(struct vol *v, const struct vfuse_opts *o, struct vfuse **out);

/*
 * Serve requests until the file system is unmounted (umount, fusermount3
 * -u) or vfuse_stop() is called.  Returns 0 after either, or -errno if
 * the session failed.
 */
int vfuse_run(struct vfuse *f);

/*
 * Make vfuse_run() return.  Async-signal-safe: call it from a SIGTERM
 * handler.  vfuse_run() notices at once when the handler runs on the
 * thread inside vfuse_run() (libfuse's workers block SIGTERM, SIGINT,
 * SIGHUP and SIGQUIT; block them in your other threads too); from any
 * other thread, call it and then deliver such a signal to that thread.
 * Calls before vfuse_run() make it return at once.  Requests already
 * being served are finished; the mount is undone by
 * vfuse_unmount_destroy().
 */
void vfuse_stop(struct vfuse *f);

/* What the kernel may keep now (names, inodes), how many names and
 * inodes it was told to forget since the mount, and how many times
 * letting go of a lock went by the expiry of names the kernel could not
 * be told about in time (fuse/kcache.c). */
void vfuse_kc_stats(struct vfuse *f, uint64_t *names, uint64_t *inodes,
		    uint64_t *forgotten, uint64_t *expired);

/*
 * Unmount the FUSE file system at mountpoint as umount(8) does, not
 * lazily: root unmounts with umount2(), other users through the setuid
 * fusermount3 -u.  The serving session then ends by itself.  Returns 0,
 * -EBUSY while a process has a file or its working directory there,
 * -EINVAL when nothing is mounted there, -ENOENT when fusermount3 is
 * missing, -EPERM, or another -errno.  Works on a mount whose daemon has
 * died too (its calls fail with ENOTCONN).
 */
int vfuse_umount_path(const char *mountpoint);

/* Unmount (lazily if still busy) and free.  f may be NULL. */
void vfuse_unmount_destroy(struct vfuse *f);

#endif /* VMFS_FUSE_H */
