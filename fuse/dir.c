/*
 * Directory listing.
 *
 * The FUSE offset of an entry is the engine's cookie that resumes after
 * it, so a listing continues correctly across calls while entries are
 * added and removed.  readdirplus hands the kernel an entry per name, and
 * the kernel counts a lookup for each one it receives except "." and ".."
 * (fs/fuse/readdir.c fuse_direntplus_link): those go out with node id 0,
 * and every other entry that made it into the reply takes one engine
 * reference, given back if the reply is never delivered.
 */
#include <errno.h>
#include <string.h>

#include "vfuse_int.h"

struct vfuse_dirbuf {
	struct vfuse *f;
	fuse_req_t req;
	char *buf;
	size_t size;
	size_t used;
	bool plus;
	uint64_t *refs;     /* inodes referenced for this reply (plus) */
	size_t nrefs;
};

/* Smallest entry readdirplus can carry: fuse_entry_out, fuse_dirent, a
 * one-byte name padded to 8. */
#define VFUSE_DIRENTPLUS_MIN (128 + 24 + 8)

static bool vfuse_is_dot(const char *name)
{
	return name[0] == '.' &&
	       (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

static int vfuse_dir_fill(void *ctx, const char *name,
			  const struct vol_attr *a, uint64_t next_cookie)
{
	struct vfuse_dirbuf *d = ctx;
	size_t room = d->size - d->used;
	char *at = d->buf + d->used;
	struct fuse_entry_param e;
	size_t need;

	if (!d->plus) {
		struct stat st;

		memset(&st, 0, sizeof(st));
		st.st_ino = a->ino;
		st.st_mode = a->mode & S_IFMT;
		need = fuse_add_direntry(d->req, at, room, name, &st,
					 (off_t)next_cookie);
		if (need > room)
			return 1;
		d->used += need;
		return 0;
	}

	if (vfuse_is_dot(name)) {
		memset(&e, 0, sizeof(e));
		e.attr.st_ino = a->ino;
		e.attr.st_mode = a->mode & S_IFMT;
	} else {
		vfuse_entry_fill(a, &e);
	}
	need = fuse_add_direntry_plus(d->req, at, room, name, &e,
				      (off_t)next_cookie);
	if (need > room)
		return 1;
	d->used += need;
	if (e.ino) {
		vol_ref(d->f->v, e.ino);
		d->refs[d->nrefs++] = e.ino;
	}
	return 0;
}

static void vfuse_readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size,
				 off_t off, bool plus)
{
	struct vfuse *f = vfuse_of(req);
	struct vfuse_dirbuf d;
	size_t maxrefs = plus ? size / VFUSE_DIRENTPLUS_MIN + 1 : 0;
	size_t i;
	int ret;

	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	memset(&d, 0, sizeof(d));
	d.f = f;
	d.req = req;
	d.size = size;
	d.plus = plus;
	/* The worker's buffer holds the entries, then the reference list. */
	d.buf = vfuse_tbuf(f, size + 8 + maxrefs * sizeof(uint64_t));
	if (!d.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	d.refs = (uint64_t *)(void *)(d.buf + ((size + 7) & ~(size_t)7));

	ret = vol_readdir(f->v, ino, (uint64_t)off, plus, vfuse_dir_fill, &d);
	/* Entries already packed go out; the error comes back next call. */
	if (ret < 0 && d.used == 0) {
		vfuse_reply_fail(req, plus ? "readdirplus" : "readdir", ino,
				 ret);
		return;
	}
	if (fuse_reply_buf(req, d.buf, d.used) == -ENOENT) {
		for (i = 0; i < d.nrefs; i++)
			vol_forget(f->v, d.refs[i], 1);
	}
}

void vfuse_op_opendir(fuse_req_t req, fuse_ino_t ino,
		      struct fuse_file_info *fi)
{
	(void)ino;
	/* No readdir cache: other hosts change directories too. */
	fi->cache_readdir = 0;
	fi->keep_cache = 0;
	fuse_reply_open(req, fi);
}

void vfuse_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	(void)fi;
	vfuse_readdir_common(req, ino, size, off, false);
}

void vfuse_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			  off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	vfuse_readdir_common(req, ino, size, off, true);
}

void vfuse_op_releasedir(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

void vfuse_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
		       struct fuse_file_info *fi)
{
	int ret;

	(void)fi;
	ret = vol_fsync(vfuse_of(req)->v, ino, datasync != 0);
	if (ret < 0)
		vfuse_reply_fail(req, "fsyncdir", ino, ret);
	else
		fuse_reply_err(req, 0);
}
