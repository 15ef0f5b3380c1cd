/*
 * The namespace: lookup, create, mkdir, symlink, link, unlink, rmdir,
 * rename, readlink, readdir.
 *
 * Every change runs under vol->ns_lock, then the write locks of the
 * inodes involved.  Order of writes so that a crash leaves at most a
 * leaked inode (fsck moves it to lost+found), never an entry pointing at
 * nothing: a new inode is written before the entry naming it; an entry is
 * removed before the inode loses its last link; rename retargets the
 * destination entry in place before removing the source entry.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "vol_int.h"

static int check_name(const char *name)
{
	size_t len = strlen(name);

	if (!len || strchr(name, '/'))
		return -EINVAL;
	if (len > VMFS_NAME_MAX)
		return -ENAMETOOLONG;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return -EEXIST;
	return 0;
}

/* Get a directory inode, or -ENOTDIR. */
static int dir_get(struct vol *v, uint64_t ino, struct vinode **out)
{
	int ret = vol_inode_get(v, ino, out);

	if (!ret && !S_ISDIR((*out)->mode)) {
		vol_inode_put(v, *out);
		ret = -ENOTDIR;
	}
	return ret;
}

static void take_ref(struct vol *v, struct vinode *vi)
{
	pthread_mutex_lock(&v->icache_lock);
	vi->nlookup++;
	pthread_mutex_unlock(&v->icache_lock);
}

static int lookup_body(struct vol *v, uint64_t parent, const char *name,
		       struct vol_attr *a)
{
	struct vinode *dir, *vi;
	uint64_t ino;
	int ret;

	if (strlen(name) > VMFS_NAME_MAX)
		return -ENAMETOOLONG;
	ret = dir_get(v, parent, &dir);
	if (ret)
		return ret;
	if (!strcmp(name, ".") || !strcmp(name, "..")) {
		ino = name[1] ? dir->parent : dir->ino;
		ret = 0;
	} else {
		/*
		 * Lookups in one directory run in parallel once its index is
		 * built; building it (first use) needs the write lock.
		 */
		pthread_rwlock_rdlock(&dir->rw);
		if (!dir->dir) {
			pthread_rwlock_unlock(&dir->rw);
			pthread_rwlock_wrlock(&dir->rw);
		}
		ret = vol_dir_find(v, dir, name, &ino, NULL, NULL);
		pthread_rwlock_unlock(&dir->rw);
	}
	vol_inode_put(v, dir);
	if (ret)
		return ret;
	ret = vol_inode_get(v, ino, &vi);
	if (ret) {
		if (ret == -ESTALE) {
			VLOG(LOG_ERR, "entry '%s' in directory %llu names free inode %llu; run 'vmfs fsck'",
			     name, (unsigned long long)parent,
			     (unsigned long long)ino);
			ret = -EIO;
		}
		return ret;
	}
	pthread_rwlock_rdlock(&vi->rw);
	vol_inode_to_attr(v, vi, a);
	pthread_rwlock_unlock(&vi->rw);
	take_ref(v, vi);
	vol_inode_put(v, vi);
	return 0;
}

/* Shared: attributes of an inode this host does not hold come from disk. */
static int fresh_attr(struct vol *v, struct vol_attr *a)
{
	if (!vcl_shared(v) || vcl_holds_ino(v, a->ino))
		return 0;
	return vol_attr_unheld(v, a->ino, a);
}

int vol_lookup(struct vol *v, uint64_t parent, const char *name,
	       struct vol_attr *a)
{
	VCL_OP(v);
	int ret = vcl_lock_ino(v, parent, VMFS_LOCK_READONLY);

	if (!ret)
		ret = lookup_body(v, parent, name, a);
	if (!ret) {
		int err = fresh_attr(v, a);

		if (err) {
			vol_forget(v, a->ino, 1);
			ret = err == -ESTALE ? -ENOENT : err;
		}
	}
	return VCL_END(v, ret);
}

void vol_ref(struct vol *v, uint64_t ino)
{
	struct vinode *vi;

	if (vol_inode_get(v, ino, &vi))
		return;
	take_ref(v, vi);
	vol_inode_put(v, vi);
}

bool vol_forget(struct vol *v, uint64_t ino, uint64_t n)
{
	/* The last reference may write its timestamps under a lock held
	 * as a cache: an operation, so they go home with it. */
	VCL_OP(v);
	bool gone;

	vcl_adopt_ino(v, ino);
	{
		VOL_HANDLE(v);

		gone = vol_inode_forget(v, ino, n);
	}
	VCL_END(v, 0);
	return gone;
}

/*
 * Common body of create, mkdir and symlink: make the inode, fill it, name
 * it in parent.  fill() runs with the new inode write-locked and before
 * the entry exists (symlink target).
 */
static int make_node_once(struct vol *v, uint64_t parent, const char *name,
			  uint32_t mode, uint32_t uid, uint32_t gid,
			  uint64_t rdev, const char *target, struct vol_attr *a)
{
	VOL_HANDLE(v);
	struct vinode *dir, *vi = NULL;
	uint64_t existing;
	int ret;

	if (vol_is_rdonly(v))
		return -EROFS;
	ret = check_name(name);
	if (ret)
		return ret;
	pthread_mutex_lock(&v->ns_lock);
	ret = dir_get(v, parent, &dir);
	if (ret)
		goto out_unlock;
	pthread_rwlock_wrlock(&dir->rw);
	if (dir->nlink == 0) {
		ret = -ENOENT;
		goto out_dir;
	}
	ret = vol_dir_find(v, dir, name, &existing, NULL, NULL);
	if (ret != -ENOENT) {
		ret = ret ? ret : -EEXIST;
		goto out_dir;
	}
	if (S_ISDIR(mode) && dir->nlink >= UINT32_MAX - 1) {
		ret = -EMLINK;
		goto out_dir;
	}
	ret = vol_inode_alloc(v, dir->ino, mode, uid, gid, &vi);
	if (ret)
		goto out_dir;
	pthread_rwlock_wrlock(&vi->rw);
	vi->rdev = rdev;
	if (S_ISDIR(mode))
		vi->parent = dir->ino;
	if (target) {
		size_t tlen = strlen(target);

		ret = vol_file_write_locked(v, vi, target, tlen, 0);
		ret = ret == (int)tlen ? 0 : ret < 0 ? ret : -ENOSPC;
	} else if (rdev || S_ISDIR(mode)) {
		ret = vol_inode_write(v, vi);
	}
	if (!ret)
		ret = vol_dir_add(v, dir, name, vi->ino, vmfs_dirent_type(mode));
	if (ret) {
		vi->nlink = 0;  /* freed by the vol_inode_put below */
		pthread_rwlock_unlock(&vi->rw);
		goto out_dir;
	}
	vol_inode_to_attr(v, vi, a);
	pthread_rwlock_unlock(&vi->rw);
	if (S_ISDIR(mode))
		dir->nlink++;
	vol_inode_touch(dir, true, true);
	ret = vol_inode_write(v, dir);
	if (!ret)
		take_ref(v, vi);
out_dir:
	pthread_rwlock_unlock(&dir->rw);
	vol_inode_put(v, dir);
	if (vi)
		vol_inode_put(v, vi);
out_unlock:
	pthread_mutex_unlock(&v->ns_lock);
	return ret;
}

static int make_node(struct vol *v, uint64_t parent, const char *name,
		     uint32_t mode, uint32_t uid, uint32_t gid, uint64_t rdev,
		     const char *target, struct vol_attr *a)
{
	VCL_OP(v);
	int ret = vcl_lock_ino(v, parent, VMFS_LOCK_EXCLUSIVE);

	if (!ret)
		ret = VOL_RETRY_NOSPC(v, make_node_once(v, parent, name, mode,
							 uid, gid, rdev, target,
							 a));
	return VCL_END(v, ret);
}

int vol_create(struct vol *v, uint64_t parent, const char *name,
	       uint32_t mode, uint32_t uid, uint32_t gid, uint64_t rdev,
	       struct vol_attr *a)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFCHR:
	case S_IFBLK:
		break;
	case 0:
		mode |= S_IFREG;
		break;
	default:
		return -EINVAL;
	}
	return make_node(v, parent, name, mode, uid, gid,
			 S_ISCHR(mode) || S_ISBLK(mode) ? rdev : 0, NULL, a);
}

int vol_mkdir(struct vol *v, uint64_t parent, const char *name,
	      uint32_t mode, uint32_t uid, uint32_t gid, struct vol_attr *a)
{
	return make_node(v, parent, name, S_IFDIR | (mode & 07777), uid, gid,
			 0, NULL, a);
}

int vol_symlink(struct vol *v, uint64_t parent, const char *name,
		const char *target, uint32_t uid, uint32_t gid,
		struct vol_attr *a)
{
	size_t tlen = strlen(target);

	if (!tlen)
		return -ENOENT;
	if (tlen >= 4096)
		return -ENAMETOOLONG;
	return make_node(v, parent, name, S_IFLNK | 0777, uid, gid, 0,
			 target, a);
}

ssize_t vol_readlink(struct vol *v, uint64_t ino, char *buf, size_t size)
{
	VCL_OP(v);
	struct vinode *vi;
	char tmp[4096];
	int ret;

	ret = vcl_lock_ino(v, ino, VMFS_LOCK_READONLY);
	if (!ret)
		ret = vol_inode_get(v, ino, &vi);
	if (ret)
		return VCL_END(v, ret);
	pthread_rwlock_rdlock(&vi->rw);
	if (!S_ISLNK(vi->mode))
		ret = -EINVAL;
	else if (vi->size > sizeof(tmp))
		ret = -EIO;
	else
		ret = vol_file_read_locked(v, vi, tmp, (size_t)vi->size, 0);
	pthread_rwlock_unlock(&vi->rw);
	vol_inode_put(v, vi);
	if (ret >= 0)
		memcpy(buf, tmp, (size_t)ret < size ? (size_t)ret : size);
	return VCL_END(v, ret);
}

static int link_once(struct vol *v, uint64_t ino, uint64_t newparent,
		     const char *newname, struct vol_attr *a)
{
	VOL_HANDLE(v);
	struct vinode *dir, *vi;
	uint64_t existing;
	int ret;

	if (vol_is_rdonly(v))
		return -EROFS;
	ret = check_name(newname);
	if (ret)
		return ret;
	pthread_mutex_lock(&v->ns_lock);
	ret = vol_inode_get(v, ino, &vi);
	if (ret)
		goto out_unlock;
	if (S_ISDIR(vi->mode)) {
		ret = -EPERM;
		goto out_vi;
	}
	ret = dir_get(v, newparent, &dir);
	if (ret)
		goto out_vi;
	pthread_rwlock_wrlock(&dir->rw);
	pthread_rwlock_wrlock(&vi->rw);
	if (vi->nlink == 0 || dir->nlink == 0) {
		ret = -ENOENT;
		goto out_locked;
	}
	if (vi->nlink >= UINT32_MAX - 1)
		ret = -EMLINK;
	else
		ret = vol_dir_find(v, dir, newname, &existing, NULL, NULL);
	if (ret != -ENOENT) {
		ret = ret ? ret : -EEXIST;
		goto out_locked;
	}
	/* Count the link first: a crash then leaves a count too high. */
	vi->nlink++;
	vol_inode_touch(vi, false, true);
	ret = vol_inode_write(v, vi);
	if (!ret)
		ret = vol_dir_add(v, dir, newname, vi->ino, vmfs_dirent_type(vi->mode));
	if (ret) {
		vi->nlink--;
		vol_inode_write(v, vi);
		goto out_locked;
	}
	vol_inode_touch(dir, true, true);
	ret = vol_inode_write(v, dir);
	vol_inode_to_attr(v, vi, a);
	if (!ret)
		take_ref(v, vi);
out_locked:
	pthread_rwlock_unlock(&vi->rw);
	pthread_rwlock_unlock(&dir->rw);
	vol_inode_put(v, dir);
out_vi:
	vol_inode_put(v, vi);
out_unlock:
	pthread_mutex_unlock(&v->ns_lock);
	return ret;
}

/*
 * Drop one link of vi (write-locked); freeing waits for vol_inode_put.  The
 * last link marks it an orphan in the same transaction, so if the host
 * stops before the last reference goes, the next mount frees it.
 */
int vol_link_drop(struct vol *v, struct vinode *vi)
{
	int ret;

	if (S_ISDIR(vi->mode))
		vi->nlink = 0;
	else if (vi->nlink)
		vi->nlink--;
	vol_inode_touch(vi, false, true);
	ret = vol_inode_write(v, vi);
	if (!ret && !vi->nlink)
		ret = vol_res_inode_mark(v, vi->ino, VOL_RC_ORPHAN, true);
	/* Shared, the free waits for the last reference here (the kernel's
	 * forget), which the kernel may hold back: the next sweep frees the
	 * orphan then, unless a file is open on it (t_multihost saw one left
	 * for the next mount). */
	if (!ret && !vi->nlink && vcl_shared(v))
		vcl_sweep_want(v);
	return ret;
}

/*
 * Removing a name whose inode another host holds (it has the file open)
 * cannot change the inode: the drop of its link waits in the inode's
 * rc_unlinked bit, written in the same transaction as the directory
 * change, for the next host that holds the inode EXCLUSIVE
 * (vol_orphans_sweep).  One drop may wait per inode: a second one is
 * -EBUSY until the first is applied.  Call drop_pending_check before
 * changing the directory, drop_pending after.
 */
static int drop_pending_check(struct vol *v, uint64_t ino)
{
	bool pending;
	int ret = vol_res_inode_test(v, ino, VOL_RC_UNLINKED, &pending);

	if (!ret && pending) {
		VLOG(LOG_WARNING, "inode %llu: another of its names was removed while another host has it open, and that removal is not applied yet; remove this name once the file is closed there",
		     (unsigned long long)ino);
		ret = -EBUSY;
	}
	return ret;
}

static int drop_pending(struct vol *v, uint64_t ino)
{
	int ret = vol_res_inode_mark(v, ino, VOL_RC_UNLINKED, true);

	if (!ret)
		vcl_sweep_want(v);
	return ret;
}

/*
 * Lock the inode ino that name in parent (locked) names, to remove that
 * name.  Another host holding a file past a brief wait (it has it open)
 * makes *pending true instead of waiting a lease for EBUSY: the removal
 * leaves its link drop pending.  The brief wait keeps the drop direct
 * when the holder only runs an operation or is closing the file.
 * A directory is never open on a host: its lock is waited for as before.
 */
static int lock_victim(struct vol *v, uint64_t parent, const char *name,
		       uint64_t ino, bool *pending)
{
	int ret;

	*pending = false;
	if (!ino)
		return 0;
	ret = vcl_lock_ino_brief(v, ino, VMFS_LOCK_EXCLUSIVE);
	if (ret != -EBUSY)
		return ret;
	{
		struct vinode *dir;
		uint64_t found;
		uint8_t type = 0;

		ret = dir_get(v, parent, &dir);
		if (ret)
			return ret;
		pthread_rwlock_wrlock(&dir->rw);
		if (vol_dir_find(v, dir, name, &found, &type, NULL) ||
		    found != ino)
			type = 0;
		pthread_rwlock_unlock(&dir->rw);
		vol_inode_put(v, dir);
		if (!type || type == vmfs_dirent_type(S_IFDIR))
			return vcl_lock_ino(v, ino, VMFS_LOCK_EXCLUSIVE);
	}
	*pending = true;
	return 0;
}

static int remove_entry(struct vol *v, uint64_t parent, const char *name,
			bool want_dir, bool pending)
{
	VOL_HANDLE(v);
	struct vinode *dir, *vi;
	uint64_t ino;
	uint32_t pos;
	uint8_t type;
	int ret;

	if (vol_is_rdonly(v))
		return -EROFS;
	if (!strcmp(name, "."))
		return -EINVAL;
	if (!strcmp(name, ".."))
		return -ENOTEMPTY;
	pthread_mutex_lock(&v->ns_lock);
	ret = dir_get(v, parent, &dir);
	if (ret)
		goto out_unlock;
	pthread_rwlock_wrlock(&dir->rw);
	ret = vol_dir_find(v, dir, name, &ino, &type, &pos);
	if (ret)
		goto out_dir;
	if (pending) {
		/* lock_victim only leaves files pending. */
		ret = type == vmfs_dirent_type(S_IFDIR) ? -EISDIR :
		      drop_pending_check(v, ino);
		if (!ret)
			ret = vol_dir_remove_pos(v, dir, pos);
		if (!ret)
			ret = drop_pending(v, ino);
		if (!ret) {
			vol_inode_touch(dir, true, true);
			ret = vol_inode_write(v, dir);
		}
		goto out_dir;
	}
	ret = vol_inode_get(v, ino, &vi);
	if (ret)
		goto out_dir;
	pthread_rwlock_wrlock(&vi->rw);
	if (want_dir && !S_ISDIR(vi->mode))
		ret = -ENOTDIR;
	else if (!want_dir && S_ISDIR(vi->mode))
		ret = -EISDIR;
	else if (want_dir && vi->nentries)
		ret = -ENOTEMPTY;
	if (!ret)
		ret = vol_dir_remove_pos(v, dir, pos);
	if (!ret) {
		ret = vol_link_drop(v, vi);
		if (want_dir)
			dir->nlink--;
		vol_inode_touch(dir, true, true);
		if (!ret)
			ret = vol_inode_write(v, dir);
	}
	pthread_rwlock_unlock(&vi->rw);
	vol_inode_put(v, vi);
out_dir:
	pthread_rwlock_unlock(&dir->rw);
	vol_inode_put(v, dir);
out_unlock:
	pthread_mutex_unlock(&v->ns_lock);
	return ret;
}

int vol_link(struct vol *v, uint64_t ino, uint64_t newparent,
	     const char *newname, struct vol_attr *a)
{
	VCL_OP(v);
	int ret = vcl_lock_ino2(v, newparent, ino, VMFS_LOCK_EXCLUSIVE);

	if (!ret)
		ret = VOL_RETRY_NOSPC(v, link_once(v, ino, newparent, newname,
						    a));
	return VCL_END(v, ret);
}

/* The parent, then the inode the name names. */
static int remove_locked(struct vol *v, uint64_t parent, const char *name,
			 bool want_dir)
{
	VCL_OP(v);
	uint64_t ino;
	bool pending = false;
	int ret = vcl_lock_ino(v, parent, VMFS_LOCK_EXCLUSIVE);

	if (!ret && want_dir)
		ret = vcl_lock_child(v, parent, name, VMFS_LOCK_EXCLUSIVE, &ino);
	else if (!ret)
		ret = vcl_find_child(v, parent, name, &ino);
	if (!ret && !want_dir)
		ret = lock_victim(v, parent, name, ino, &pending);
	if (!ret)
		ret = remove_entry(v, parent, name, want_dir, pending);
	return VCL_END(v, ret);
}

int vol_unlink(struct vol *v, uint64_t parent, const char *name)
{
	return remove_locked(v, parent, name, false);
}

int vol_rmdir(struct vol *v, uint64_t parent, const char *name)
{
	return remove_locked(v, parent, name, true);
}

/* Is dir ino an ancestor of (or equal to) start?  Walks ".." to the root
 * (vcl_parent_of: from disk while shared). */
static int is_ancestor(struct vol *v, uint64_t ino, uint64_t start)
{
	uint64_t cur = start;

	for (int depth = 0; depth < 65536; depth++) {
		uint64_t up;
		int ret;

		if (cur == ino)
			return 1;
		if (cur == v->g.root_ino)
			return 0;
		ret = vcl_parent_of(v, cur, &up);
		if (ret)
			return ret;
		cur = up;
	}
	return -ELOOP;
}

/* Lock two directories (maybe the same one) in inode-number order. */
static void lock2(struct vinode *a, struct vinode *b)
{
	if (a == b) {
		pthread_rwlock_wrlock(&a->rw);
	} else if (a->ino < b->ino) {
		pthread_rwlock_wrlock(&a->rw);
		pthread_rwlock_wrlock(&b->rw);
	} else {
		pthread_rwlock_wrlock(&b->rw);
		pthread_rwlock_wrlock(&a->rw);
	}
}

static void unlock2(struct vinode *a, struct vinode *b)
{
	pthread_rwlock_unlock(&a->rw);
	if (a != b)
		pthread_rwlock_unlock(&b->rw);
}

/* Re-parent a directory moved to newdir. */
static int reparent(struct vol *v, struct vinode *vi, struct vinode *olddir,
		    struct vinode *newdir)
{
	if (!S_ISDIR(vi->mode) || olddir == newdir)
		return 0;
	pthread_rwlock_wrlock(&vi->rw);
	vi->parent = newdir->ino;
	vol_inode_touch(vi, false, true);
	{
		int ret = vol_inode_write(v, vi);

		pthread_rwlock_unlock(&vi->rw);
		if (ret)
			return ret;
	}
	olddir->nlink--;
	newdir->nlink++;
	return 0;
}

/* dst_pending: the target's inode is another host's (lock_victim). */
static int rename_once(struct vol *v, uint64_t parent, const char *name,
		       uint64_t newparent, const char *newname, unsigned flags,
		       bool dst_pending)
{
	VOL_HANDLE(v);
	struct vinode *od = NULL, *nd = NULL, *src = NULL, *dst = NULL;
	uint64_t sino, dino;
	uint32_t spos, dpos;
	uint8_t dtype = 0;
	int ret, dret;

	if (vol_is_rdonly(v))
		return -EROFS;
	if (flags & ~(VOL_RENAME_NOREPLACE | VOL_RENAME_EXCHANGE) ||
	    (flags & VOL_RENAME_NOREPLACE && flags & VOL_RENAME_EXCHANGE))
		return -EINVAL;
	if (!strcmp(name, ".") || !strcmp(name, "..") ||
	    !strcmp(newname, ".") || !strcmp(newname, ".."))
		return -EBUSY;
	ret = check_name(newname);
	if (ret)
		return ret;
	pthread_mutex_lock(&v->ns_lock);
	ret = dir_get(v, parent, &od);
	if (!ret)
		ret = dir_get(v, newparent, &nd);
	if (ret)
		goto out;
	lock2(od, nd);
	ret = vol_dir_find(v, od, name, &sino, NULL, &spos);
	if (ret)
		goto out_locked;
	dret = vol_dir_find(v, nd, newname, &dino, &dtype, &dpos);
	if (dret && dret != -ENOENT) {
		ret = dret;
		goto out_locked;
	}
	if (!dret && dino == sino) {
		/* Same inode under both names: POSIX says do nothing. */
		goto out_locked;
	}
	if ((flags & VOL_RENAME_EXCHANGE) && dret) {
		ret = -ENOENT;
		goto out_locked;
	}
	if ((flags & VOL_RENAME_NOREPLACE) && !dret) {
		ret = -EEXIST;
		goto out_locked;
	}
	ret = vol_inode_get(v, sino, &src);
	if (!ret && !dret && !dst_pending)
		ret = vol_inode_get(v, dino, &dst);
	if (ret)
		goto out_locked;
	/* A directory may not move below itself. */
	if (S_ISDIR(src->mode) && od != nd) {
		int anc = is_ancestor(v, src->ino, nd->ino);

		if (anc) {
			ret = anc < 0 ? anc : -EINVAL;
			goto out_locked;
		}
	}
	if (dst && (flags & VOL_RENAME_EXCHANGE) && S_ISDIR(dst->mode) &&
	    od != nd) {
		int anc = is_ancestor(v, dst->ino, od->ino);

		if (anc) {
			ret = anc < 0 ? anc : -EINVAL;
			goto out_locked;
		}
	}

	if (flags & VOL_RENAME_EXCHANGE) {
		ret = vol_dir_replace_pos(v, nd, dpos, src->ino,
				      vmfs_dirent_type(src->mode));
		if (!ret)
			ret = vol_dir_replace_pos(v, od, spos, dst->ino,
					      vmfs_dirent_type(dst->mode));
		if (!ret)
			ret = reparent(v, src, od, nd);
		if (!ret)
			ret = reparent(v, dst, nd, od);
		goto out_times;
	}

	if (dst) {
		pthread_rwlock_wrlock(&dst->rw);
		if (S_ISDIR(src->mode) && !S_ISDIR(dst->mode))
			ret = -ENOTDIR;
		else if (!S_ISDIR(src->mode) && S_ISDIR(dst->mode))
			ret = -EISDIR;
		else if (S_ISDIR(dst->mode) && dst->nentries)
			ret = -ENOTEMPTY;
		if (!ret)
			ret = vol_dir_replace_pos(v, nd, dpos, src->ino,
					      vmfs_dirent_type(src->mode));
		if (!ret) {
			if (S_ISDIR(dst->mode))
				nd->nlink--;
			ret = vol_link_drop(v, dst);
		}
		pthread_rwlock_unlock(&dst->rw);
	} else if (!dret) {
		/* dst_pending: a file (lock_victim), its inode not ours. */
		if (S_ISDIR(src->mode) || dtype == vmfs_dirent_type(S_IFDIR))
			ret = S_ISDIR(src->mode) ? -ENOTDIR : -EISDIR;
		else
			ret = drop_pending_check(v, dino);
		if (!ret)
			ret = vol_dir_replace_pos(v, nd, dpos, src->ino,
					      vmfs_dirent_type(src->mode));
		if (!ret)
			ret = drop_pending(v, dino);
	} else {
		ret = vol_dir_add(v, nd, newname, src->ino,
			      vmfs_dirent_type(src->mode));
	}
	if (ret)
		goto out_locked;
	/* Entries never move, so spos still names the source. */
	ret = vol_dir_remove_pos(v, od, spos);
	if (!ret)
		ret = reparent(v, src, od, nd);
out_times:
	if (!ret) {
		pthread_rwlock_wrlock(&src->rw);
		vol_inode_touch(src, false, true);
		pthread_rwlock_unlock(&src->rw);
		vol_inode_touch(od, true, true);
		ret = vol_inode_write(v, od);
		if (!ret && nd != od) {
			vol_inode_touch(nd, true, true);
			ret = vol_inode_write(v, nd);
		}
	}
out_locked:
	unlock2(od, nd);
out:
	if (dst)
		vol_inode_put(v, dst);
	if (src)
		vol_inode_put(v, src);
	if (nd)
		vol_inode_put(v, nd);
	if (od)
		vol_inode_put(v, od);
	pthread_mutex_unlock(&v->ns_lock);
	return ret;
}

struct rd_ctx {
	struct vol *v;
	bool plus;
	vol_readdir_cb cb;
	void *ctx;
};

static int rd_one(void *c, const char *name, uint64_t ino, uint8_t type,
		  uint64_t next)
{
	struct rd_ctx *rc = c;
	struct vol_attr a;

	memset(&a, 0, sizeof(a));
	a.ino = ino;
	a.mode = (uint32_t)type << 12;
	if (rc->plus) {
		struct vinode *vi;

		if (vcl_shared(rc->v) && !vcl_holds_ino(rc->v, ino)) {
			if (vol_inode_peek(rc->v, ino, &a))
				a.mode = (uint32_t)type << 12;
		} else if (vol_inode_get(rc->v, ino, &vi) == 0) {
			pthread_rwlock_rdlock(&vi->rw);
			vol_inode_to_attr(rc->v, vi, &a);
			pthread_rwlock_unlock(&vi->rw);
			vol_inode_put(rc->v, vi);
		}
	}
	return rc->cb(rc->ctx, name, &a, next);
}

int vol_rename(struct vol *v, uint64_t parent, const char *name,
	       uint64_t newparent, const char *newname, unsigned flags)
{
	VCL_OP(v);
	uint64_t a = 0, b = 0;
	bool pending = false;
	int ret = 0;

	/*
	 * Global order (docs/PROTOCOL.md): a rename between directories
	 * takes the root's lock first (it serialises them across hosts, so
	 * the check that a directory does not move below itself sees a
	 * stable tree), then both parents, then both children, each pair
	 * lower inode number first.
	 */
	if (parent != newparent)
		ret = vcl_lock_ino(v, v->g.root_ino, VMFS_LOCK_EXCLUSIVE);
	if (!ret)
		ret = vcl_lock_ino2(v, parent, newparent, VMFS_LOCK_EXCLUSIVE);
	if (!ret)
		ret = vcl_find_child(v, parent, name, &a);
	if (!ret)
		ret = vcl_find_child(v, newparent, newname, &b);
	/* A target another host has open is replaced at once, its link
	 * drop left pending (lock_victim); an exchange changes both inodes
	 * and waits for both. */
	if (!ret && a && b && a != b && !(flags & VOL_RENAME_EXCHANGE)) {
		if (b < a)
			ret = lock_victim(v, newparent, newname, b, &pending);
		if (!ret)
			ret = vcl_lock_ino(v, a, VMFS_LOCK_EXCLUSIVE);
		if (!ret && b > a)
			ret = lock_victim(v, newparent, newname, b, &pending);
	} else if (!ret && a && b) {
		ret = vcl_lock_ino2(v, a, b, VMFS_LOCK_EXCLUSIVE);
	} else if (!ret && (a || b)) {
		ret = vcl_lock_ino(v, a ? a : b, VMFS_LOCK_EXCLUSIVE);
	}
	if (!ret)
		ret = VOL_RETRY_NOSPC(v, rename_once(v, parent, name, newparent,
						      newname, flags, pending));
	/* The kernel moves the entry it may keep with the name. */
	if (!ret && parent != newparent)
		vcl_kc_carry(v, parent, newparent,
			     flags & VOL_RENAME_EXCHANGE);
	return VCL_END(v, ret);
}

int vol_readdir(struct vol *v, uint64_t ino, uint64_t cookie, bool plus,
		vol_readdir_cb cb, void *ctx)
{
	VCL_OP(v);
	struct rd_ctx rc = { v, plus, cb, ctx };
	struct vinode *dir;
	struct vol_attr a;
	int ret;

	ret = vcl_lock_ino(v, ino, VMFS_LOCK_READONLY);
	if (!ret)
		ret = dir_get(v, ino, &dir);
	if (ret)
		return VCL_END(v, ret);
	pthread_rwlock_wrlock(&dir->rw);
	if (cookie == 0) {
		vol_inode_to_attr(v, dir, &a);
		if (cb(ctx, ".", &a, 1))
			goto out;
		cookie = 1;
	}
	if (cookie == 1) {
		struct vinode *up;

		memset(&a, 0, sizeof(a));
		a.ino = dir->parent;
		a.mode = S_IFDIR;
		if (plus && dir->parent != dir->ino &&
		    vol_inode_get(v, dir->parent, &up) == 0) {
			vol_inode_to_attr(v, up, &a);
			vol_inode_put(v, up);
		} else if (dir->parent == dir->ino) {
			vol_inode_to_attr(v, dir, &a);
		}
		if (cb(ctx, "..", &a, 2))
			goto out;
		cookie = 2;
	}
	ret = vol_dir_iterate(v, dir, cookie, rd_one, &rc);
out:
	pthread_rwlock_unlock(&dir->rw);
	vol_inode_put(v, dir);
	return VCL_END(v, ret);
}
