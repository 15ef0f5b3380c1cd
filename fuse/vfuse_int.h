/*
 * Private interfaces of the FUSE adapter.
 *
 * Request handlers are vfuse_op_*(); each replies exactly once.  They find
 * the adapter with fuse_req_userdata() and share nothing else, so worker
 * threads never contend in the adapter: the only per-request state is the
 * worker's own I/O buffer (vfuse_tbuf).
 */
#ifndef VMFS_VFUSE_INT_H
#define VMFS_VFUSE_INT_H

#define FUSE_USE_VERSION 314

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include "vmfs/fuse.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"

/*
 * How long (seconds) the kernel may trust an entry or attributes while
 * the engine allows it (vol_kcache_hold: this host works alone on the
 * volume, or keeps the covering lock); zero otherwise, because another
 * host may change any name or inode at any moment.  kcache.c makes the
 * kernel forget what it kept before the engine lets another host in.
 * Alone, the timeout only bounds what a bug there would cost.  Shared,
 * it also bounds how long letting go of a lock waits for the kernel:
 * telling it to forget a name waits for its directory's lock, which a
 * request may hold while it waits for another host (kc_forget_out), and
 * a name it holds past its timeout plus VFUSE_KC_LATE_MS needs no telling.
 * VFUSE_KC_LATE_MS covers the time from our reply to the kernel's taking
 * it (the requesting thread's wake-up), from which its timeout counts.
 * Past VFUSE_KC_MAX tracked names and inodes, replies get zero.
 */
#define VFUSE_KC_TIMEOUT 30.0
#define VFUSE_KC_SHARED_TIMEOUT 1.0
#define VFUSE_KC_LATE_MS 500
#define VFUSE_KC_MAX (256u * 1024)

/* Largest request the kernel sends us (max_pages 256 with 4 KiB pages). */
#define VFUSE_MAX_IO (1u << 20)

/* Alignment of lun_buf_alloc() buffers; the engine's zero-copy path. */
#define VFUSE_BUF_ALIGN 4096u

struct vfuse {
	struct vol *v;
	struct fuse_session *se;
	char *mountpoint;
	unsigned max_threads;
	pthread_key_t tbuf_key;        /* struct vfuse_tbuf of each worker */
	struct vfuse_kc *kc;           /* what the kernel caches (kcache.c) */
	volatile sig_atomic_t stop;    /* vfuse_stop() was called */
};

static inline struct vfuse *vfuse_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* reply.c */
void vfuse_attr_to_stat(const struct vol_attr *a, struct stat *st);
void vfuse_entry_fill(const struct vol_attr *a, struct fuse_entry_param *e);
void vfuse_reply_fail(fuse_req_t req, const char *op, uint64_t ino, long ret);
void vfuse_reply_entry(fuse_req_t req, uint64_t parent, const char *name,
		       const struct vol_attr *a, uint64_t epoch);
void vfuse_reply_attr(fuse_req_t req, const struct vol_attr *a,
		      uint64_t epoch);
int vfuse_new_owner(fuse_req_t req, uint64_t parent, uint32_t *mode,
		    uint32_t *uid, uint32_t *gid);

/* kcache.c */
int vfuse_kc_init(struct vfuse *f);
void vfuse_kc_start(struct vfuse *f);
void vfuse_kc_fini(struct vfuse *f);
void vfuse_kc_lock(struct vfuse *f);
void vfuse_kc_unlock(struct vfuse *f);
uint64_t vfuse_kc_epoch(struct vfuse *f);
void vfuse_kc_grant(struct vfuse *f, uint64_t parent, const char *name,
		    uint64_t ino, uint64_t epoch, double *entry_timeout,
		    double *attr_timeout);
void vfuse_kc_gone(struct vfuse *f, uint64_t parent, const char *name);
uint64_t vfuse_kc_stamp(struct vfuse *f);
void vfuse_kc_forget(struct vfuse *f, uint64_t ino, uint64_t stamp);
void vfuse_kc_rename_begin(struct vfuse *f, uint64_t parent, const char *name,
			   uint64_t newparent, const char *newname,
			   bool exchange);
void vfuse_kc_rename_done(struct vfuse *f, uint64_t parent, const char *name,
			  bool exchange);

/* session.c */
void *vfuse_tbuf(struct vfuse *f, size_t len);

/* namei.c */
void vfuse_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void vfuse_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void vfuse_op_forget_multi(fuse_req_t req, size_t count,
			   struct fuse_forget_data *forgets);
void vfuse_op_getattr(fuse_req_t req, fuse_ino_t ino,
		      struct fuse_file_info *fi);
void vfuse_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		      int to_set, struct fuse_file_info *fi);
void vfuse_op_readlink(fuse_req_t req, fuse_ino_t ino);
void vfuse_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		    mode_t mode, dev_t rdev);
void vfuse_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		    mode_t mode);
void vfuse_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void vfuse_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void vfuse_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		      const char *name);
void vfuse_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		     fuse_ino_t newparent, const char *newname,
		     unsigned int flags);
void vfuse_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		   const char *newname);
void vfuse_op_statfs(fuse_req_t req, fuse_ino_t ino);

/* file.c */
void vfuse_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void vfuse_op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, struct fuse_file_info *fi);
void vfuse_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi);
void vfuse_op_write_buf(fuse_req_t req, fuse_ino_t ino,
			struct fuse_bufvec *bufv, off_t off,
			struct fuse_file_info *fi);
void vfuse_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void vfuse_op_release(fuse_req_t req, fuse_ino_t ino,
		      struct fuse_file_info *fi);
void vfuse_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		    struct fuse_file_info *fi);
void vfuse_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
			off_t offset, off_t length, struct fuse_file_info *fi);

/* dir.c */
void vfuse_op_opendir(fuse_req_t req, fuse_ino_t ino,
		      struct fuse_file_info *fi);
void vfuse_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi);
void vfuse_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			  off_t off, struct fuse_file_info *fi);
void vfuse_op_releasedir(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi);
void vfuse_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
		       struct fuse_file_info *fi);

/* xattr.c */
void vfuse_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		       const char *value, size_t size, int flags);
void vfuse_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		       size_t size);
void vfuse_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void vfuse_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

#endif /* VMFS_VFUSE_INT_H */
