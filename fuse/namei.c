/*
 * Names and attributes: lookup and forget, getattr and setattr, the calls
 * that create and remove names, and statfs.
 *
 * Every reply that hands the kernel an entry (lookup, mknod, mkdir,
 * symlink, link) passes on the one reference the engine took for it; the
 * kernel gives references back with forget.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "vfuse_int.h"

void vfuse_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct vfuse *f = vfuse_of(req);
	uint64_t ep = vfuse_kc_epoch(f);
	struct vol_attr a;
	int ret;

	/*
	 * With FUSE_CAP_EXPORT_SUPPORT the kernel resolves an NFS file handle
	 * by looking up "." in the handle's inode, which may be any type of
	 * file, not only a directory: answer with the inode itself.  The
	 * reference comes first, so the inode cannot be freed in between.
	 */
	if (name[0] == '.' && name[1] == '\0') {
		vol_ref(f->v, parent);
		ret = vol_getattr(f->v, parent, &a);
		if (ret < 0) {
			vol_forget(f->v, parent, 1);
			vfuse_reply_fail(req, "lookup .", parent, ret);
			return;
		}
		vfuse_reply_entry(req, parent, name, &a, ep);
		return;
	}

	ret = vol_lookup(f->v, parent, name, &a);
	if (ret < 0) {
		vfuse_reply_fail(req, "lookup", parent, ret);
		return;
	}
	vfuse_reply_entry(req, parent, name, &a, ep);
}

void vfuse_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct vfuse *f = vfuse_of(req);
	uint64_t stamp = vfuse_kc_stamp(f);

	if (vol_forget(f->v, ino, nlookup))
		vfuse_kc_forget(f, ino, stamp);
	fuse_reply_none(req);
}

void vfuse_op_forget_multi(fuse_req_t req, size_t count,
			   struct fuse_forget_data *forgets)
{
	struct vfuse *f = vfuse_of(req);
	size_t i;

	for (i = 0; i < count; i++) {
		uint64_t stamp = vfuse_kc_stamp(f);

		if (vol_forget(f->v, forgets[i].ino, forgets[i].nlookup))
			vfuse_kc_forget(f, forgets[i].ino, stamp);
	}
	fuse_reply_none(req);
}

void vfuse_op_getattr(fuse_req_t req, fuse_ino_t ino,
		      struct fuse_file_info *fi)
{
	struct vfuse *f = vfuse_of(req);
	uint64_t ep = vfuse_kc_epoch(f);
	struct vol_attr a;
	int ret;

	(void)fi;
	ret = vol_getattr(f->v, ino, &a);
	if (ret < 0) {
		vfuse_reply_fail(req, "getattr", ino, ret);
		return;
	}
	vfuse_reply_attr(req, &a, ep);
}

/*
 * The kernel has checked the caller's right to each change
 * (default_permissions) and, with FUSE_CAP_HANDLE_KILLPRIV off, adds the
 * clearing of set-user-ID and set-group-ID bits to the mode it sends.
 * "Now" is left to the engine, so times come from one clock: the one
 * that also stamps writes.
 */
void vfuse_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		      int to_set, struct fuse_file_info *fi)
{
	struct vfuse *f = vfuse_of(req);
	uint64_t ep = vfuse_kc_epoch(f);
	struct vol_setattr sa;
	struct vol_attr a;
	unsigned mask = 0;
	int ret;

	(void)fi;
	memset(&sa, 0, sizeof(sa));
	if (to_set & FUSE_SET_ATTR_MODE) {
		sa.mode = attr->st_mode & 07777;
		mask |= VOL_SET_MODE;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		sa.uid = attr->st_uid;
		mask |= VOL_SET_UID;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		sa.gid = attr->st_gid;
		mask |= VOL_SET_GID;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (attr->st_size < 0) {
			fuse_reply_err(req, EINVAL);
			return;
		}
		sa.size = (uint64_t)attr->st_size;
		mask |= VOL_SET_SIZE;
	}
	if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
		mask |= VOL_SET_ATIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_ATIME) {
		sa.atime = attr->st_atim;
		mask |= VOL_SET_ATIME;
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		mask |= VOL_SET_MTIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_MTIME) {
		sa.mtime = attr->st_mtim;
		mask |= VOL_SET_MTIME;
	}
	if (to_set & FUSE_SET_ATTR_CTIME) {
		sa.ctime = attr->st_ctim;
		mask |= VOL_SET_CTIME;
	}

	ret = vol_setattr(f->v, ino, &sa, mask, &a);
	if (ret < 0) {
		vfuse_reply_fail(req, "setattr", ino, ret);
		return;
	}
	vfuse_reply_attr(req, &a, ep);
}

void vfuse_op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct vfuse *f = vfuse_of(req);
	char *buf;
	ssize_t n;

	buf = vfuse_tbuf(f, PATH_MAX + 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = vol_readlink(f->v, ino, buf, PATH_MAX);
	if (n < 0) {
		vfuse_reply_fail(req, "readlink", ino, n);
		return;
	}
	/* The kernel takes at most PATH_MAX - 1 bytes and a NUL. */
	if (n >= PATH_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

void vfuse_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		    mode_t mode, dev_t rdev)
{
	struct vfuse *f = vfuse_of(req);
	uint64_t ep = vfuse_kc_epoch(f);
	uint32_t m = mode, uid, gid;
	struct vol_attr a;
	int ret;

	ret = vfuse_new_owner(req, parent, &m, &uid, &gid);
	if (ret == 0)
		ret = vol_create(f->v, parent, name, m, uid, gid, rdev, &a);
	if (ret < 0) {
		vfuse_reply_fail(req, "mknod", parent, ret);
		return;
	}
	vfuse_reply_entry(req, parent, name, &a, ep);
}

void vfuse_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		    mode_t mode)
{
	struct vfuse *f = vfuse_of(req);
	uint64_t ep = vfuse_kc_epoch(f);
	uint32_t m = S_IFDIR | (mode & 07777), uid, gid;
	struct vol_attr a;
	int ret;

	ret = vfuse_new_owner(req, parent, &m, &uid, &gid);
	if (ret == 0)
		ret = vol_mkdir(f->v, parent, name, m, uid, gid, &a);
	if (ret < 0) {
		vfuse_reply_fail(req, "mkdir", parent, ret);
		return;
	}
	vfuse_reply_entry(req, parent, name, &a, ep);
}

/* The kernel drops the entry of a removed name itself. */
static void reply_removed(fuse_req_t req, const char *op, uint64_t parent,
			  const char *name, int ret)
{
	if (ret < 0) {
		vfuse_reply_fail(req, op, parent, ret);
		return;
	}
	vfuse_kc_gone(vfuse_of(req), parent, name);
	fuse_reply_err(req, 0);
}

void vfuse_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_removed(req, "unlink", parent, name,
		      vol_unlink(vfuse_of(req)->v, parent, name));
}

void vfuse_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_removed(req, "rmdir", parent, name,
		      vol_rmdir(vfuse_of(req)->v, parent, name));
}

void vfuse_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		      const char *name)
{
	struct vfuse *f = vfuse_of(req);
	uint64_t ep = vfuse_kc_epoch(f);
	uint32_t m = S_IFLNK | 0777, uid, gid;
	struct vol_attr a;
	int ret;

	ret = vfuse_new_owner(req, parent, &m, &uid, &gid);
	if (ret == 0)
		ret = vol_symlink(f->v, parent, name, link, uid, gid, &a);
	if (ret < 0) {
		vfuse_reply_fail(req, "symlink", parent, ret);
		return;
	}
	vfuse_reply_entry(req, parent, name, &a, ep);
}

void vfuse_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		     fuse_ino_t newparent, const char *newname,
		     unsigned int flags)
{
	struct vfuse *f = vfuse_of(req);
	unsigned vflags = 0;
	int ret;

	/* RENAME_WHITEOUT is for overlay file systems; nothing else exists. */
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (flags & RENAME_NOREPLACE)
		vflags |= VOL_RENAME_NOREPLACE;
	if (flags & RENAME_EXCHANGE)
		vflags |= VOL_RENAME_EXCHANGE;
	vfuse_kc_rename_begin(f, parent, name, newparent, newname,
			      flags & RENAME_EXCHANGE);
	ret = vol_rename(f->v, parent, name, newparent, newname, vflags);
	if (ret < 0) {
		vfuse_reply_fail(req, "rename", parent, ret);
		return;
	}
	vfuse_kc_rename_done(f, parent, name, flags & RENAME_EXCHANGE);
	fuse_reply_err(req, 0);
}

void vfuse_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		   const char *newname)
{
	struct vfuse *f = vfuse_of(req);
	uint64_t ep = vfuse_kc_epoch(f);
	struct vol_attr a;
	int ret;

	ret = vol_link(f->v, ino, newparent, newname, &a);
	if (ret < 0) {
		vfuse_reply_fail(req, "link", ino, ret);
		return;
	}
	vfuse_reply_entry(req, newparent, newname, &a, ep);
}

void vfuse_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;
	int ret;

	memset(&st, 0, sizeof(st));
	ret = vol_statfs(vfuse_of(req)->v, &st);
	if (ret < 0) {
		vfuse_reply_fail(req, "statfs", ino, ret);
		return;
	}
	fuse_reply_statfs(req, &st);
}
