/*
 * Opening and closing a volume, attributes and statfs.
 *
 * vol_open verifies the header (falling back to the backup copy), checks
 * the geometry, replays the journals, loads every resource-cluster bitmap,
 * starts the host's journal and loads the root inode.  A read-only open
 * never writes at all.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include "vmfs/lockmgr.h"
#include "vol_int.h"

int64_t vol_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts_to_ns(&ts);
}

bool vol_is_rdonly(const struct vol *v)
{
	return v->flags & VOL_RDONLY;
}

int vol_md_read(struct vol *v, void *blk, uint64_t addr)
{
	if (v->j && jnl_lookup(v->j, addr, blk))
		return 0;
	return lun_read(v->lun, blk, VMFS_MD_BLOCK_SIZE, addr);
}

int vol_md_write(struct vol *v, const void *blk, uint64_t addr, bool lockable)
{
	int ret;

	if (vol_is_rdonly(v))
		return -EROFS;
	if (v->j)
		ret = jnl_dirty(v->j, addr, blk,
				lockable ? VMFS_JNL_TAG_LOCKABLE : 0);
	else
		ret = lock_md_write(v->lun, blk, addr, lockable);
	/* After the write: a read ahead that missed it saw it (inode.c). */
	vol_inode_ira_drop(v, addr);
	return ret;
}

/*
 * Replay the journals a read-write open is responsible for; a read-only
 * open only checks that none holds anything.
 */
static int vol_journals_replay(struct lun *lun, const struct vol_geom *g,
			       const struct vol_open_opts *o)
{
	struct jnl_bounds b = vol_jnl_bounds(g);
	bool ro = o->flags & VOL_RDONLY;

	for (uint32_t s = 0; s < g->max_hosts; s++) {
		uint64_t off = vol_jnl_offset(g, s);
		struct jnl_walk_result r;
		int ret;

		if ((o->flags & VOL_OWN_JOURNAL) && s != o->journal_slot)
			continue;

		ret = ro ? jnl_walk(lun, off, &b, false, NULL, NULL, &r)
			 : jnl_replay(lun, off, &b, &r);
		if (ret) {
			VLOG(LOG_ERR, "%s: journal of slot %u: %s", lun_name(lun),
			     s, vmfs_strerror(ret));
			return ret;
		}
		if (r.stop == JNL_STOP_BAD_TAG || r.stop == JNL_STOP_TOO_LONG)
			VLOG(LOG_WARNING, "%s: journal of slot %u ends with %s; run 'vmfs fsck'",
			     lun_name(lun), s, jnl_stop_str(r.stop));
		if (ro && r.ntxn && !(o->flags & VOL_STALE_OK)) {
			VLOG(LOG_ERR, "%s: journal of slot %u holds %llu transactions to replay",
			     lun_name(lun), s, (unsigned long long)r.ntxn);
			return -VMFS_E_JNL_DIRTY;
		}
		if (r.ntxn)
			VLOG(LOG_NOTICE, "%s: replayed %llu transactions (%llu blocks) of slot %u's journal",
			     lun_name(lun), (unsigned long long)r.ntxn,
			     (unsigned long long)r.nimages, s);
	}
	return 0;
}

int vol_open(struct lun *lun, unsigned flags, struct vol **out)
{
	struct vol_open_opts o = { .flags = flags };

	return vol_open_ex(lun, &o, out);
}

int vol_open_ex(struct lun *lun, const struct vol_open_opts *o,
		struct vol **out)
{
	struct vol *v;
	struct vinode *root;
	int which, ret;

	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->lun = lun;
	v->flags = o->flags;
	v->ss = lun_sector_size(lun);
	pthread_mutex_init(&v->ns_lock, NULL);
	pthread_mutex_init(&v->alloc_lock, NULL);
	pthread_mutex_init(&v->icache_lock, NULL);
	pthread_mutex_init(&v->ira_lock, NULL);
	vol_cache_init(v, o->cache_bytes);
	ret = vol_geom_read(lun, &v->g, &which, NULL);
	if (ret)
		goto err;
	if (which)
		VLOG(LOG_WARNING, "%s: primary volume header is damaged, using the backup; run 'vmfs fsck' to restore it",
		     lun_name(lun));
	if (v->ss > v->g.sector_size && v->ss > VMFS_MD_BLOCK_SIZE) {
		ret = -VMFS_E_GEOMETRY;
		goto err;
	}
	if (o->journal_slot >= v->g.max_hosts) {
		ret = -EINVAL;
		goto err;
	}
	ret = vol_journals_replay(lun, &v->g, o);
	if (ret)
		goto err;
	v->itab_size = vol_cache_inode_buckets(v);
	v->itab = calloc(v->itab_size, sizeof(*v->itab));
	if (!v->itab) {
		ret = -ENOMEM;
		goto err;
	}
	ret = vol_res_load(v);
	if (ret)
		goto err;
	vol_cache_count_fixed(v);
	if (!vol_is_rdonly(v)) {
		struct jnl_params jp = { .commit_ms = o->commit_ms };
		struct jnl_bounds b = vol_jnl_bounds(&v->g);

		ret = jnl_start(lun, vol_jnl_offset(&v->g, o->journal_slot),
				&b, &jp, &v->j);
		if (ret)
			goto err_res;
	}
	ret = vol_inode_get(v, v->g.root_ino, &root);
	if (ret)
		goto err_jnl;
	if (!S_ISDIR(root->mode)) {
		VLOG(LOG_ERR, "%s: root inode %llu is not a directory; run 'vmfs fsck'",
		     lun_name(lun), (unsigned long long)v->g.root_ino);
		vol_inode_put(v, root);
		ret = -VMFS_E_CORRUPT;
		goto err_cache;
	}
	vol_inode_put(v, root);
	/* Clustered: after the volume lock decides who may free them
	 * (vol_cluster_start). */
	if (!vol_is_rdonly(v) && !(o->flags & VOL_OWN_JOURNAL))
		vol_orphans_sweep(v, false);
	*out = v;
	return 0;
err_cache:
	vol_icache_evict_all(v);
err_jnl:
	jnl_stop(v->j);
err_res:
	vol_res_unload(v);
err:
	free(v->itab);
	vol_cache_fini(v);
	free(v);
	return ret;
}

int vol_close(struct vol *v)
{
	int ret = 0;

	if (!v)
		return 0;
	vol_cluster_stop(v);
	vol_icache_evict_all(v);
	if (v->j) {
		ret = jnl_stop(v->j);
		v->j = NULL;
	} else if (!vol_is_rdonly(v)) {
		ret = lun_flush(v->lun);
	}
	vol_res_unload(v);
	free(v->itab);
	pthread_mutex_destroy(&v->ns_lock);
	pthread_mutex_destroy(&v->alloc_lock);
	pthread_mutex_destroy(&v->icache_lock);
	pthread_mutex_destroy(&v->ira_lock);
	lun_buf_free(v->ira_buf);
	vol_cache_fini(v);
	free(v);
	return ret;
}

int vol_sync(struct vol *v)
{
	if (vol_is_rdonly(v))
		return 0;
	return v->j ? jnl_sync(v->j) : lun_flush(v->lun);
}

bool vol_reclaim(struct vol *v)
{
	bool pending = false;

	if (!v->j)
		return false;
	pthread_mutex_lock(&v->alloc_lock);
	for (int t = 0; t < VMFS_RES_NTYPES; t++)
		pending |= v->res[t].freed_n > v->res[t].freed_head;
	pthread_mutex_unlock(&v->alloc_lock);
	return pending && !jnl_drain(v->j);
}

void vol_journal_stats(struct vol *v, struct jnl_stats *s)
{
	memset(s, 0, sizeof(*s));
	if (v->j)
		jnl_stats_get(v->j, s);
}

void vol_geom_get(struct vol *v, struct vol_geom *g)
{
	*g = v->g;
}

void vol_usage_get(struct vol *v, struct vol_usage *u)
{
	pthread_mutex_lock(&v->alloc_lock);
	for (int t = 0; t < VMFS_RES_NTYPES; t++) {
		u->used[t] = v->res[t].used;
		u->total[t] = v->g.res[t].count;
	}
	pthread_mutex_unlock(&v->alloc_lock);
}

int vol_statfs(struct vol *v, struct statvfs *st)
{
	struct vol_usage u;
	uint64_t fbs = v->g.file_block_size, sbs = v->g.small_block_size;

	if (vol_fenced(v))
		return vol_fenced(v);
	/* Shared: other hosts allocate too; count from the headers on disk,
	 * between operations (nothing of ours is waiting to go home). */
	if (vcl_shared(v)) {
		VCL_OP(v);

		/* Another host may have grown the volume since our tick. */
		vol_geom_refresh(v);
		VCL_END(v, vol_res_reload_all(v));
	}
	vol_usage_get(v, &u);
	memset(st, 0, sizeof(*st));
	/*
	 * Only the file-block area counts: free space is what a new large
	 * file can get.  The small-block area (directories, symlinks, files
	 * up to small_max) is no space a large file can use, so counting it
	 * made df promise bytes a write then refused.  Small files fall back
	 * to file blocks when it is full, which this count covers.  Blocks
	 * freed by a transaction that can still replay count as free: a
	 * write that needs them drains the journal and gets them.  Units
	 * stay small blocks, as before.
	 */
	st->f_bsize = (unsigned long)fbs;
	st->f_frsize = (unsigned long)sbs;
	st->f_blocks = u.total[VMFS_RES_FILE] * (fbs / sbs);
	st->f_bfree = (u.total[VMFS_RES_FILE] - u.used[VMFS_RES_FILE]) * (fbs / sbs);
	st->f_bavail = st->f_bfree;
	st->f_files = u.total[VMFS_RES_INODE];
	st->f_ffree = u.total[VMFS_RES_INODE] - u.used[VMFS_RES_INODE];
	st->f_favail = st->f_ffree;
	st->f_namemax = VMFS_NAME_MAX;
	memcpy(&st->f_fsid, v->g.uuid, sizeof(st->f_fsid));
	return 0;
}

/* ino's attributes from the cache (read from disk if not cached). */
static int cached_attr(struct vol *v, uint64_t ino, struct vol_attr *a)
{
	struct vinode *vi;
	int ret = vol_inode_get(v, ino, &vi);

	if (ret)
		return ret;
	pthread_rwlock_rdlock(&vi->rw);
	pthread_mutex_lock(&vi->lk);
	vol_inode_to_attr(v, vi, a);
	pthread_mutex_unlock(&vi->lk);
	pthread_rwlock_unlock(&vi->rw);
	vol_inode_put(v, vi);
	return 0;
}

/*
 * Without the fast path every host writes its changes home as each of
 * its operations ends, so the disk says what an inode is now.  With it,
 * a host may keep an inode's lock as a cache with its last changes
 * sealed in its journal and not home yet: take the lock (the holder
 * writes them home and lets go) and read under it; a holder that keeps
 * it for files open there answers at once, and then the disk is the
 * best there is.
 */
int vol_attr_unheld(struct vol *v, uint64_t ino, struct vol_attr *a)
{
	int ret;

	if (vcl_caching(v)) {
		VCL_OP(v);

		ret = vcl_lock_ino_fresh(v, ino);
		if (!ret)
			ret = cached_attr(v, ino, a);
		ret = VCL_END(v, ret);
		if (ret != -EBUSY)
			return ret;
	}
	return vol_inode_peek(v, ino, a);
}

int vol_getattr(struct vol *v, uint64_t ino, struct vol_attr *a)
{
	int ret = vol_fenced(v);

	/* Fenced: the root still answers, from the cache, so that tools find
	 * the mount point (vmfs info, umount) and can say it is fenced. */
	if (ret && ino != v->g.root_ino)
		return ret;
	/* Shared: an inode another host may change. */
	if (!ret && vcl_shared(v) && !vcl_holds_ino(v, ino))
		return vol_attr_unheld(v, ino, a);
	return cached_attr(v, ino, a);
}

static int setattr_once(struct vol *v, uint64_t ino,
			const struct vol_setattr *sa, unsigned mask,
			struct vol_attr *a)
{
	struct vinode *vi;
	int64_t now = vol_now_ns();
	int ret;

	if (vol_is_rdonly(v))
		return -EROFS;
	VOL_HANDLE(v);
	ret = vol_inode_get(v, ino, &vi);
	if (ret)
		return ret;
	pthread_rwlock_wrlock(&vi->rw);
	if (mask & VOL_SET_SIZE) {
		if (S_ISDIR(vi->mode))
			ret = -EISDIR;
		else if (!S_ISREG(vi->mode))
			ret = -EINVAL;
		else
			ret = vol_file_truncate(v, vi, sa->size);
		if (ret)
			goto out;
	}
	if (mask & VOL_SET_MODE)
		vi->mode = (vi->mode & S_IFMT) | (sa->mode & 07777);
	if (mask & VOL_SET_UID)
		vi->uid = sa->uid;
	if (mask & VOL_SET_GID)
		vi->gid = sa->gid;
	if (mask & VOL_SET_ATIME_NOW)
		vi->atime_ns = now;
	else if (mask & VOL_SET_ATIME)
		vi->atime_ns = ts_to_ns(&sa->atime);
	if (mask & VOL_SET_MTIME_NOW)
		vi->mtime_ns = now;
	else if (mask & VOL_SET_MTIME)
		vi->mtime_ns = ts_to_ns(&sa->mtime);
	vi->ctime_ns = mask & VOL_SET_CTIME ? ts_to_ns(&sa->ctime) : now;
	ret = vol_inode_write(v, vi);
out:
	if (!ret && a)
		vol_inode_to_attr(v, vi, a);
	pthread_rwlock_unlock(&vi->rw);
	vol_inode_put(v, vi);
	return ret;
}

/* A truncate up that changes the map type allocates: retried like a write. */
int vol_setattr(struct vol *v, uint64_t ino, const struct vol_setattr *sa,
		unsigned mask, struct vol_attr *a)
{
	VCL_OP(v);
	int ret = vcl_may_write(v, ino);

	if (!ret)
		ret = vcl_lock_ino(v, ino, VMFS_LOCK_EXCLUSIVE);
	if (!ret)
		ret = VOL_RETRY_NOSPC(v, setattr_once(v, ino, sa, mask, a));
	return VCL_END(v, ret);
}
