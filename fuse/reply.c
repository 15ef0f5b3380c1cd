/*
 * Replies shared by the request handlers: engine attributes to struct
 * stat, entries with their lookup reference, errors, and the owner of a
 * new inode.
 */
#include <errno.h>
#include <string.h>
#include "vmfs/log.h"

#include "vfuse_int.h"

void vfuse_attr_to_stat(const struct vol_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_rdev = a->rdev;
	st->st_size = (off_t)a->size;
	st->st_blksize = a->blksize;
	st->st_blocks = (blkcnt_t)((a->alloc_bytes + 511) / 512);
	st->st_atim = a->atime;
	st->st_mtim = a->mtime;
	st->st_ctim = a->ctime;
}

void vfuse_entry_fill(const struct vol_attr *a, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = a->ino;
	e->generation = a->generation;
	vfuse_attr_to_stat(a, &e->attr);
	/* Timeouts zero: vfuse_reply_entry grants them where it may. */
}

/*
 * ret is a negative engine return: -errno goes back as it is; -VMFS_E_*
 * means something errno cannot name (corrupt metadata, a lock protocol
 * failure) and should never happen, so it is logged and becomes EIO.
 */
void vfuse_reply_fail(fuse_req_t req, const char *op, uint64_t ino, long ret)
{
	int err;

	if (ret <= -VMFS_E_BASE) {
		qb_log(LOG_ERR, "fuse %s (inode %llu): %s (error %ld); "
		       "returning EIO", op, (unsigned long long)ino,
		       vmfs_strerror((int)ret), ret);
		err = EIO;
	} else if (ret < 0) {
		err = (int)-ret;
	} else {
		qb_log(LOG_ERR, "fuse %s (inode %llu): engine returned %ld "
		       "where an error was expected", op,
		       (unsigned long long)ino, ret);
		err = EIO;
	}
	fuse_reply_err(req, err);
}

/*
 * The engine took one reference for the entry.  If the reply cannot be
 * delivered (the request was interrupted), the kernel never counts the
 * lookup and will never forget it, so give the reference back.
 */
void vfuse_reply_entry(fuse_req_t req, uint64_t parent, const char *name,
		       const struct vol_attr *a, uint64_t epoch)
{
	struct vfuse *f = vfuse_of(req);
	struct fuse_entry_param e;
	int ret;

	vfuse_entry_fill(a, &e);
	vfuse_kc_lock(f);
	vfuse_kc_grant(f, parent, name, a->ino, epoch, &e.entry_timeout,
		       &e.attr_timeout);
	ret = fuse_reply_entry(req, &e);
	vfuse_kc_unlock(f);
	if (ret == -ENOENT)
		vol_forget(f->v, a->ino, 1);
}

void vfuse_reply_attr(fuse_req_t req, const struct vol_attr *a,
		      uint64_t epoch)
{
	struct vfuse *f = vfuse_of(req);
	double entry_timeout, attr_timeout;
	struct stat st;

	vfuse_attr_to_stat(a, &st);
	vfuse_kc_lock(f);
	vfuse_kc_grant(f, 0, NULL, a->ino, epoch, &entry_timeout,
		       &attr_timeout);
	fuse_reply_attr(req, &st, attr_timeout);
	vfuse_kc_unlock(f);
}

/*
 * Owner and mode of a new inode, as local file systems set them
 * (inode_init_owner): the caller's fsuid and fsgid, except that a
 * set-group-ID directory hands down its group, and its set-group-ID bit
 * to subdirectories.  The kernel has already applied the umask unless the
 * mount does POSIX ACLs; applying the caller's umask again is harmless and
 * keeps this right if that ever changes.
 */
int vfuse_new_owner(fuse_req_t req, uint64_t parent, uint32_t *mode,
		    uint32_t *uid, uint32_t *gid)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct vfuse *f = vfuse_of(req);
	struct vol_attr pa;
	int ret;

	if (!S_ISLNK(*mode))
		*mode &= ~((uint32_t)ctx->umask & 0777);
	*uid = ctx->uid;
	*gid = ctx->gid;
	ret = vol_getattr(f->v, parent, &pa);
	if (ret < 0)
		return ret;
	if (pa.mode & S_ISGID) {
		*gid = pa.gid;
		if (S_ISDIR(*mode))
			*mode |= S_ISGID;
	}
	return 0;
}
