/*
 * Extended attributes.  getxattr and listxattr follow the system calls'
 * protocol: size 0 asks for the length (fuse_reply_xattr), otherwise the
 * value comes back, or ERANGE when it does not fit.
 */
#include <errno.h>

#include "vfuse_int.h"

/* XATTR_SIZE_MAX from <linux/limits.h>: the kernel never asks for more. */
#define VFUSE_XATTR_MAX 65536u

void vfuse_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		       const char *value, size_t size, int flags)
{
	int ret = vol_setxattr(vfuse_of(req)->v, ino, name, value, size, flags);

	if (ret < 0)
		vfuse_reply_fail(req, "setxattr", ino, ret);
	else
		fuse_reply_err(req, 0);
}

/* A list of names reads like a value whose name is ignored. */
static ssize_t list_as_get(struct vol *v, uint64_t ino, const char *name,
			   void *buf, size_t size)
{
	(void)name;
	return vol_listxattr(v, ino, buf, size);
}

/*
 * getxattr and listxattr answer the same way: size 0 asks for the length
 * (fuse_reply_xattr), otherwise the bytes go back (at most
 * VFUSE_XATTR_MAX, which covers the whole in-inode xattr area).
 */
static void xattr_reply(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size, const char *what,
			ssize_t (*get)(struct vol *, uint64_t, const char *,
				       void *, size_t))
{
	struct vfuse *f = vfuse_of(req);
	void *buf = NULL;
	ssize_t n;

	if (size > VFUSE_XATTR_MAX)
		size = VFUSE_XATTR_MAX;
	if (size) {
		buf = vfuse_tbuf(f, size);
		if (!buf) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
	}
	n = get(f->v, ino, name, buf, size);
	if (n < 0)
		vfuse_reply_fail(req, what, ino, n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

void vfuse_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		       size_t size)
{
	xattr_reply(req, ino, name, size, "getxattr", vol_getxattr);
}

void vfuse_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	xattr_reply(req, ino, NULL, size, "listxattr", list_as_get);
}

void vfuse_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	int ret = vol_removexattr(vfuse_of(req)->v, ino, name);

	if (ret < 0)
		vfuse_reply_fail(req, "removexattr", ino, ret);
	else
		fuse_reply_err(req, 0);
}
