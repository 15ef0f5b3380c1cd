/*
 * Open files and the data path.
 *
 * Data goes straight to the LUN and metadata into the host's journal, so
 * flush has nothing to do; fsync (and every O_SYNC / O_DSYNC write)
 * commits the journal, which flushes the LUN's write cache first, so the
 * data and the metadata that reaches it are durable when it returns.  Each request costs one copy in
 * this process: write data, from the splice pipe (or from libfuse's
 * buffer, where it sits 80 bytes in and so is never sector aligned), into
 * the worker's aligned buffer, from which the engine can do O_DIRECT I/O
 * without a bounce buffer of its own; reads are done into that buffer and
 * written to the kernel from there.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>

#include "vfuse_int.h"

/*
 * Page-cache policy of an open file.  O_DIRECT opens (QEMU cache=none
 * and directsync) get FUSE direct I/O, so the kernel passes every read
 * and write through unchanged and never caches.  Other opens use the page
 * cache for reads but drop it at every open (keep_cache = 0), so data
 * another host wrote shows up by the next open.  No flush on close:
 * writes are already on the LUN.
 */
static void vfuse_open_policy(struct fuse_file_info *fi)
{
	fi->direct_io = (fi->flags & O_DIRECT) ? 1 : 0;
	fi->keep_cache = 0;
	fi->noflush = 1;
}

void vfuse_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct vfuse *f = vfuse_of(req);
	struct vol_setattr sa;
	struct vol_attr a;
	int ret;

	/*
	 * With FUSE_CAP_ATOMIC_O_TRUNC the kernel leaves O_TRUNC to us
	 * instead of sending a setattr first.  The kernel has checked write
	 * permission and, like Linux on local file systems, asks for the
	 * truncation even with O_RDONLY.
	 */
	if (fi->flags & O_TRUNC) {
		memset(&sa, 0, sizeof(sa));
		ret = vol_setattr(f->v, ino, &sa, VOL_SET_SIZE, &a);
		if (ret < 0) {
			vfuse_reply_fail(req, "open O_TRUNC", ino, ret);
			return;
		}
	}
	ret = vol_open_file(f->v, ino, (fi->flags & O_ACCMODE) != O_RDONLY);
	if (ret < 0) {
		vfuse_reply_fail(req, "open", ino, ret);
		return;
	}
	vfuse_open_policy(fi);
	if (ret == VOL_OPEN_DIRECT)
		fi->direct_io = 1;  /* multi-writer: no host caches its data */
	if (fuse_reply_open(req, fi) == -ENOENT)
		vol_release_file(f->v, ino, (fi->flags & O_ACCMODE) != O_RDONLY);
}

void vfuse_op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, struct fuse_file_info *fi)
{
	struct vfuse *f = vfuse_of(req);
	uint64_t ep = vfuse_kc_epoch(f);
	struct fuse_entry_param e;
	uint32_t m = S_IFREG | (mode & 07777), uid, gid;
	struct vol_attr a;
	int ret;

	ret = vfuse_new_owner(req, parent, &m, &uid, &gid);
	if (ret == 0)
		ret = vol_create(f->v, parent, name, m, uid, gid, 0, &a);
	/*
	 * Another host created the name between the kernel's lookup and this
	 * create: without O_EXCL, open what is there, as a local file system
	 * does (the kernel has checked nothing about that file, so it must
	 * be a regular file we may open; O_TRUNC truncates it).
	 */
	if (ret == -EEXIST && !(fi->flags & O_EXCL)) {
		ret = vol_lookup(f->v, parent, name, &a);
		if (ret == 0 && !S_ISREG(a.mode)) {
			vol_forget(f->v, a.ino, 1);
			ret = S_ISDIR(a.mode) ? -EISDIR : -EEXIST;
		}
		if (ret == 0 && (fi->flags & O_TRUNC)) {
			struct vol_setattr sa;

			memset(&sa, 0, sizeof(sa));
			ret = vol_setattr(f->v, a.ino, &sa, VOL_SET_SIZE, &a);
			if (ret < 0)
				vol_forget(f->v, a.ino, 1);
		}
	}
	if (ret < 0) {
		vfuse_reply_fail(req, "create", parent, ret);
		return;
	}
	ret = vol_open_file(f->v, a.ino, (fi->flags & O_ACCMODE) != O_RDONLY);
	if (ret < 0) {
		vol_forget(f->v, a.ino, 1);
		vfuse_reply_fail(req, "create (open)", parent, ret);
		return;
	}
	vfuse_open_policy(fi);
	if (ret == VOL_OPEN_DIRECT)
		fi->direct_io = 1;
	vfuse_entry_fill(&a, &e);
	vfuse_kc_lock(f);
	vfuse_kc_grant(f, parent, name, a.ino, ep, &e.entry_timeout,
		       &e.attr_timeout);
	ret = fuse_reply_create(req, &e, fi);
	vfuse_kc_unlock(f);
	if (ret == -ENOENT) {
		vol_release_file(f->v, a.ino, (fi->flags & O_ACCMODE) != O_RDONLY);
		vol_forget(f->v, a.ino, 1);
	}
}

void vfuse_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct vfuse *f = vfuse_of(req);
	ssize_t n;
	void *buf;

	(void)fi;
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	buf = vfuse_tbuf(f, size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = vol_read(f->v, ino, buf, size, (uint64_t)off);
	if (n < 0) {
		vfuse_reply_fail(req, "read", ino, n);
		return;
	}
	fuse_reply_buf(req, buf, (size_t)n);
}

/*
 * write_buf rather than write: the data may sit in a pipe (splice) or in
 * libfuse's buffer; either way one fuse_buf_copy() lands it aligned.
 */
void vfuse_op_write_buf(fuse_req_t req, fuse_ino_t ino,
			struct fuse_bufvec *bufv, off_t off,
			struct fuse_file_info *fi)
{
	struct vfuse *f = vfuse_of(req);
	size_t size = fuse_buf_size(bufv);
	struct fuse_bufvec dst = FUSE_BUFVEC_INIT(size);
	const struct fuse_buf *b0 = &bufv->buf[0];
	const void *data;
	ssize_t n;

	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (bufv->count == 1 && bufv->idx == 0 && bufv->off == 0 &&
	    !(b0->flags & FUSE_BUF_IS_FD) &&
	    ((uintptr_t)b0->mem & (VFUSE_BUF_ALIGN - 1)) == 0) {
		data = b0->mem;
	} else {
		dst.buf[0].mem = vfuse_tbuf(f, size);
		if (!dst.buf[0].mem) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		n = fuse_buf_copy(&dst, bufv, 0);
		if (n < 0) {
			vfuse_reply_fail(req, "write (copy)", ino, n);
			return;
		}
		size = (size_t)n;
		data = dst.buf[0].mem;
	}
	n = vol_write(f->v, ino, data, size, (uint64_t)off);
	/* The kernel passes O_SYNC / O_DSYNC of the write (RWF_DSYNC too). */
	if (n >= 0 && (fi->flags & O_DSYNC)) {
		int ret = vol_fsync(f->v, ino, (fi->flags & O_SYNC) != O_SYNC);

		if (ret < 0)
			n = ret;
	}
	if (n < 0) {
		vfuse_reply_fail(req, "write", ino, n);
		return;
	}
	fuse_reply_write(req, (size_t)n);
}

void vfuse_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

void vfuse_op_release(fuse_req_t req, fuse_ino_t ino,
		      struct fuse_file_info *fi)
{
	vol_release_file(vfuse_of(req)->v, ino,
			 (fi->flags & O_ACCMODE) != O_RDONLY);
	fuse_reply_err(req, 0);
}

void vfuse_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		    struct fuse_file_info *fi)
{
	int ret;

	(void)fi;
	ret = vol_fsync(vfuse_of(req)->v, ino, datasync != 0);
	if (ret < 0)
		vfuse_reply_fail(req, "fsync", ino, ret);
	else
		fuse_reply_err(req, 0);
}

void vfuse_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
			off_t offset, off_t length, struct fuse_file_info *fi)
{
	int ret;

	(void)fi;
	if (offset < 0 || length <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	ret = vol_fallocate(vfuse_of(req)->v, ino, mode, (uint64_t)offset,
			    (uint64_t)length);
	if (ret < 0)
		vfuse_reply_fail(req, "fallocate", ino, ret);
	else
		fuse_reply_err(req, 0);
}
