/*
 * Inodes: one 4 KiB lockable block each, numbered by their index in the
 * inode area, cached in memory while in use.
 *
 * A cached inode is pinned by every thread using it and referenced by the
 * kernel's lookups (nlookup).  It leaves the cache when both drop to zero;
 * an inode whose link count reached zero is freed on disk at that moment,
 * which is how an unlinked file stays readable while it is still open.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "vmfs/clock.h"
#include "vol_int.h"
#include "vmfs/lockmgr.h"

#define INODE_LEN (VMFS_MD_BLOCK_SIZE - VMFS_OBJ_OFFSET)

static struct vmfs_inode *di_of(const struct vinode *vi)
{
	return (struct vmfs_inode *)(vi->blk + VMFS_OBJ_OFFSET);
}

/* The mode in vi's block image (0: a free inode). */
static uint32_t blk_mode(const struct vinode *vi)
{
	struct fmt_inode fi;

	(void)fmt_inode_decode(di_of(vi), &fi);
	return fi.mode;
}

/* The codec's host copy into the cached inode's fields. */
static void inode_decode(struct vinode *vi, const struct fmt_inode *fi)
{
	vi->gen = fi->gen;
	vi->incarnation = fi->incarnation;
	vi->mode = fi->mode;
	vi->nlink = fi->nlink;
	vi->uid = fi->uid;
	vi->gid = fi->gid;
	vi->size = fi->size;
	vi->alloc_bytes = fi->alloc_bytes;
	vi->atime_ns = fi->atime_ns;
	vi->mtime_ns = fi->mtime_ns;
	vi->ctime_ns = fi->ctime_ns;
	vi->btime_ns = fi->btime_ns;
	vi->parent = fi->parent;
	vi->flags = fi->flags;
	vi->map_type = fi->map_type;
	vi->rdev = fi->rdev;
	vi->nentries = fi->nentries;
}

/*
 * Host fields into the block image (map, inline data, xattrs live there;
 * di_xattr_len is vol/xattr.c's and kept as the image has it).
 */
static void inode_encode(struct vinode *vi)
{
	struct vmfs_inode *di = di_of(vi);
	struct fmt_inode fi;

	(void)fmt_inode_decode(di, &fi);
	fi.gen = ++vi->gen;
	fi.ino = vi->ino;
	fi.incarnation = vi->incarnation;
	fi.mode = vi->mode;
	fi.nlink = vi->nlink;
	fi.uid = vi->uid;
	fi.gid = vi->gid;
	fi.size = vi->size;
	fi.alloc_bytes = vi->alloc_bytes;
	fi.atime_ns = vi->atime_ns;
	fi.mtime_ns = vi->mtime_ns;
	fi.ctime_ns = vi->ctime_ns;
	fi.btime_ns = vi->btime_ns;
	fi.parent = vi->parent;
	fi.flags = vi->flags;
	fi.map_type = vi->map_type;
	fi.rdev = vi->rdev;
	fi.nentries = vi->nentries;
	fmt_inode_encode(&fi, di);
	lun_md_seal(&di->di_hdr, VMFS_MAGIC_INODE, vi->addr, INODE_LEN);
}

int vol_inode_write(struct vol *v, struct vinode *vi)
{
	if (vol_is_rdonly(v))
		return -EROFS;
	inode_encode(vi);
	vi->times_dirty = false;
	return vol_md_write(v, vi->blk, vi->addr, true);
}

int vol_inode_flush_times(struct vol *v, struct vinode *vi)
{
	return vi->times_dirty && !vi->deleted && !vol_is_rdonly(v) ?
	       vol_inode_write(v, vi) : 0;
}

void vol_inode_touch(struct vinode *vi, bool m, bool c)
{
	int64_t now = vol_now_ns();

	if (m)
		vi->mtime_ns = now;
	if (c)
		vi->ctime_ns = now;
	vi->times_dirty = true;
}

static struct vinode *vinode_new(struct vol *v, uint64_t ino)
{
	struct vinode *vi = calloc(1, sizeof(*vi));

	if (!vi)
		return NULL;
	vi->blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	if (!vi->blk) {
		free(vi);
		return NULL;
	}
	vi->ino = ino;
	vi->addr = res_addr(v, VMFS_RES_INODE, ino);
	pthread_rwlock_init(&vi->rw, NULL);
	pthread_mutex_init(&vi->lk, NULL);
	return vi;
}

static void vinode_destroy(struct vinode *vi)
{
	vol_dir_unload(vi);
	vol_bmap_cache_drop(vi);
	pthread_rwlock_destroy(&vi->rw);
	pthread_mutex_destroy(&vi->lk);
	lun_buf_free(vi->blk);
	free(vi);
}

static uint32_t ihash(const struct vol *v, uint64_t ino)
{
	return (uint32_t)((ino * 0x9e3779b97f4a7c15ull) >> 32) & (v->itab_size - 1);
}

static struct vinode *icache_find(struct vol *v, uint64_t ino)
{
	struct vinode *vi;

	for (vi = v->itab[ihash(v, ino)]; vi; vi = vi->hnext)
		if (vi->ino == ino)
			return vi;
	return NULL;
}

static void icache_unlink(struct vol *v, struct vinode *vi)
{
	struct vinode **pp = &v->itab[ihash(v, vi->ino)];

	if (vi->unhashed)
		return;
	while (*pp && *pp != vi)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = vi->hnext;
	vi->unhashed = true;
	vol_cache_remove(v, vi);
}

/* Verify an inode block just read; on success, take its fields. */
static int inode_verify(struct vinode *vi)
{
	const struct vmfs_inode *di = di_of(vi);
	int ret = lun_md_verify(&di->di_hdr, VMFS_MAGIC_INODE, vi->addr,
				INODE_LEN);
	struct fmt_inode fi;
	struct fmt_hdr h;
	int bad = fmt_inode_decode(di, &fi);

	if (!ret && (bad || fi.ino != vi->ino || fi.mode == 0))
		ret = -VMFS_E_CORRUPT;
	if (ret) {
		fmt_hdr_decode(&di->di_hdr, &h);
		VLOG(LOG_ERR, "inode %llu at offset %llu: %s (magic 0x%08x, ino %llu, gen %llu, mode 0%o); run 'vmfs fsck'",
		     (unsigned long long)vi->ino, (unsigned long long)vi->addr,
		     vmfs_strerror(ret), h.magic, (unsigned long long)fi.ino,
		     (unsigned long long)fi.gen, fi.mode);
	} else {
		inode_decode(vi, &fi);
	}
	return ret;
}

/* Is ino allocated in its cluster bitmap? */
static bool inode_in_use(struct vol *v, uint64_t ino)
{
	struct rarea *ra = &v->res[VMFS_RES_INODE];
	uint32_t c = (uint32_t)(ino / ra->g.per_cluster);
	uint32_t bit = (uint32_t)(ino % ra->g.per_cluster);
	const struct vmfs_rc *rc;
	bool used;

	pthread_mutex_lock(&v->alloc_lock);
	rc = (const struct vmfs_rc *)(ra->cl[c].blk + VMFS_OBJ_OFFSET);
	used = rc->rc_bitmap[bit >> 3] & (1u << (bit & 7));
	pthread_mutex_unlock(&v->alloc_lock);
	return used;
}

int vol_inode_get(struct vol *v, uint64_t ino, struct vinode **out)
{
	struct vinode *vi, *other, *dead = NULL;
	int ret;

	if (ino == 0 || ino >= v->g.res[VMFS_RES_INODE].count)
		return -ESTALE;
	pthread_mutex_lock(&v->icache_lock);
	vi = icache_find(v, ino);
	if (vi && !vi->deleted) {
		vi->pins++;
		pthread_mutex_unlock(&v->icache_lock);
		*out = vi;
		return 0;
	}
	pthread_mutex_unlock(&v->icache_lock);
	/* A dead incarnation: only another host can have freed the number
	 * and used it again (below). */
	if (vi && !vcl_shared(v))
		return -ESTALE;
	/* Shared: the cached bitmap may be older than the entry that led
	 * here; the block itself tells (a freed inode has mode 0). */
	if (!vcl_shared(v) && !inode_in_use(v, ino))
		return -ESTALE;

	vi = vinode_new(v, ino);
	if (!vi)
		return -ENOMEM;
	ret = vol_md_read(v, vi->blk, vi->addr);
	/* Shared: freed by another host since whatever named it here (an
	 * orphan bit another host's sweep cleared): not damage. */
	if (!ret && vcl_shared(v) && !blk_mode(vi))
		ret = -ESTALE;
	if (!ret)
		ret = inode_verify(vi);
	if (ret) {
		vinode_destroy(vi);
		return ret;
	}

	pthread_mutex_lock(&v->icache_lock);
	other = icache_find(v, ino);
	if (other && other->deleted) {
		/*
		 * Another host freed ino and used it again.  The new
		 * incarnation takes the dead one's place, with the kernel's
		 * references to it: FUSE forgets by node id, which is the
		 * inode number, so the counts add up across incarnations.
		 * Whoever still pins the dead one frees it (unhashed).
		 */
		vi->nlookup = other->nlookup;
		other->nlookup = 0;
		icache_unlink(v, other);
		dead = other->pins ? NULL : other;
		other = NULL;
	}
	if (other) {
		/* Lost a race with another loader: use theirs. */
		if (other->deleted) {
			pthread_mutex_unlock(&v->icache_lock);
			vinode_destroy(vi);
			return -ESTALE;
		}
		other->pins++;
		pthread_mutex_unlock(&v->icache_lock);
		vinode_destroy(vi);
		*out = other;
		return 0;
	}
	vi->pins = 1;
	vi->hnext = v->itab[ihash(v, ino)];
	v->itab[ihash(v, ino)] = vi;
	pthread_mutex_unlock(&v->icache_lock);
	if (dead)
		vinode_destroy(dead);
	*out = vi;
	return 0;
}

bool vol_inode_forget(struct vol *v, uint64_t ino, uint64_t n)
{
	struct vinode *vi;
	bool gone = true;

	pthread_mutex_lock(&v->icache_lock);
	vi = icache_find(v, ino);
	if (vi) {
		vi->nlookup = vi->nlookup > n ? vi->nlookup - n : 0;
		gone = vi->nlookup == 0;
		vi->pins++;
	}
	pthread_mutex_unlock(&v->icache_lock);
	if (vi)
		vol_inode_put(v, vi);   /* the last one frees it */
	return gone;
}

/*
 * Drop a pin.  The last user of an inode nobody references any more
 * writes its lazy timestamps, or frees it when it has no links left.
 */
void vol_inode_put(struct vol *v, struct vinode *vi)
{
	bool last, evicted = false;

	pthread_mutex_lock(&v->icache_lock);
	last = --vi->pins == 0 && vi->nlookup == 0 &&
	       vi->ino != v->g.root_ino;
	if (last)
		vi->pins = 1; /* keep it while we finish it off */
	else if (!vi->pins)
		evicted = vol_cache_idle(v, vi);
	pthread_mutex_unlock(&v->icache_lock);
	if (!last) {
		if (evicted)
			vol_cache_trim(v);
		return;
	}

	pthread_rwlock_wrlock(&vi->rw);
	if (vi->nlink == 0 && !vi->deleted && !vol_is_rdonly(v) &&
	    !v->keep_orphans && vcl_may_free(v, vi))
		vol_inode_free(v, vi);
	else if (!vi->deleted && vcl_holds_ino(v, vi->ino))
		vol_inode_flush_times(v, vi);
	pthread_rwlock_unlock(&vi->rw);

	pthread_mutex_lock(&v->icache_lock);
	if (--vi->pins == 0 && vi->nlookup == 0) {
		icache_unlink(v, vi);
		pthread_mutex_unlock(&v->icache_lock);
		vinode_destroy(vi);
		vol_cache_trim(v);
		return;
	}
	if (!vi->pins)  /* looked up again meanwhile: it stays */
		vol_cache_idle(v, vi);
	pthread_mutex_unlock(&v->icache_lock);
}

int vol_inode_cached(struct vol *v, uint64_t ino, struct vinode **out)
{
	struct vinode *vi;

	pthread_mutex_lock(&v->icache_lock);
	vi = icache_find(v, ino);
	if (vi && !vi->deleted)
		vi->pins++;
	else
		vi = NULL;
	pthread_mutex_unlock(&v->icache_lock);
	*out = vi;
	return vi ? 0 : -ENOENT;
}

int vol_inode_reload(struct vol *v, struct vinode *vi)
{
	int ret;

	vol_dir_unload(vi);
	vol_bmap_cache_drop(vi);
	vi->times_dirty = false;
	ret = vol_md_read(v, vi->blk, vi->addr);
	if (ret)
		return ret;
	if (!blk_mode(vi)) {
		/* Freed by another host: this cache entry is dead. */
		vi->deleted = true;
		vi->nlink = 0;
		return -ESTALE;
	}
	return inode_verify(vi);
}

/*
 * Read inode ino from the LUN into a fresh, uncached vinode (the caller
 * destroys it): for objects this host does not hold, whose cached copy
 * may be older than the disk.
 */
static int inode_peek(struct vol *v, uint64_t ino, struct vinode **out)
{
	struct vinode *vi;
	int ret = -EIO;

	if (ino == 0 || ino >= v->g.res[VMFS_RES_INODE].count)
		return -ESTALE;
	vi = vinode_new(v, ino);
	if (!vi)
		return -ENOMEM;
	/* A write of the object by its holder may be under way: a torn
	 * image fails its CRC, and a second read sees it whole.  An image
	 * our journal has not written home yet is newer than the disk: only
	 * this host changed it since it last let go of its lock (letting go
	 * writes everything home first). */
	for (int tries = 0; tries < 3 && ret; tries++) {
		ret = vol_md_read(v, vi->blk, vi->addr);
		if (ret)
			break;
		if (!blk_mode(vi)) {
			ret = -ESTALE;
			break;
		}
		if (lun_md_verify(&di_of(vi)->di_hdr, VMFS_MAGIC_INODE, vi->addr,
				  INODE_LEN))
			ret = -EIO;
		else
			ret = inode_verify(vi);
	}
	if (ret)
		vinode_destroy(vi);
	else
		*out = vi;
	return ret;
}

int vol_inode_peek(struct vol *v, uint64_t ino, struct vol_attr *a)
{
	struct vinode *vi;
	int ret = inode_peek(v, ino, &vi);

	if (!ret) {
		vol_inode_to_attr(v, vi, a);
		vinode_destroy(vi);
	}
	return ret;
}

int vol_inode_peek_parent(struct vol *v, uint64_t ino, uint64_t *parent)
{
	struct vinode *vi;
	int ret = inode_peek(v, ino, &vi);

	if (!ret) {
		*parent = vi->parent;
		vinode_destroy(vi);
	}
	return ret;
}

void vol_icache_flush_times(struct vol *v)
{
	for (uint32_t i = 0; i < v->itab_size; i++) {
		struct vinode *vi;

		pthread_mutex_lock(&v->icache_lock);
		for (vi = v->itab[i]; vi; vi = vi->hnext) {
			if (!vi->times_dirty || vi->deleted)
				continue;
			vi->pins++;
			pthread_mutex_unlock(&v->icache_lock);
			{
				VOL_HANDLE(v);

				pthread_rwlock_wrlock(&vi->rw);
				vol_inode_flush_times(v, vi);
				pthread_rwlock_unlock(&vi->rw);
			}
			pthread_mutex_lock(&v->icache_lock);
			vi->pins--;
		}
		pthread_mutex_unlock(&v->icache_lock);
	}
}

int vol_caches_reload(struct vol *v)
{
	int ret = vol_res_reload_all(v);

	for (uint32_t i = 0; i < v->itab_size; i++) {
		struct vinode *vi;

		pthread_mutex_lock(&v->icache_lock);
		for (vi = v->itab[i]; vi; vi = vi->hnext) {
			if (vi->deleted)
				continue;
			vi->pins++;
			pthread_mutex_unlock(&v->icache_lock);
			pthread_rwlock_wrlock(&vi->rw);
			if (!vcl_holds_ino(v, vi->ino))
				vol_inode_reload(v, vi);
			pthread_rwlock_unlock(&vi->rw);
			pthread_mutex_lock(&v->icache_lock);
			vi->pins--;
		}
		pthread_mutex_unlock(&v->icache_lock);
	}
	return ret;
}

void vol_icache_evict_all(struct vol *v)
{
	for (uint32_t i = 0; i < v->itab_size; i++) {
		struct vinode *vi = v->itab[i], *next;

		for (; vi; vi = next) {
			/* One handle per inode: each is its own operation. */
			VOL_HANDLE(v);

			next = vi->hnext;
			if (vi->nlink == 0 && !vi->deleted && !vol_is_rdonly(v) &&
			    !v->keep_orphans)
				vol_inode_free(v, vi);
			else
				vol_inode_flush_times(v, vi);
			vol_cache_remove(v, vi);
			vinode_destroy(vi);
		}
		v->itab[i] = NULL;
	}
}

/*
 * Start a new life of slot ino in blk (at addr), which holds whatever the
 * slot held: all zero, a free lock record one generation past the old
 * one (a host's cached copy of the old lock is stale), and the old
 * incarnation -- when the old inode verifies -- moved on by inc_step
 * (1 for a new inode, so a handle to the old file is stale; 0 for a slot
 * that only becomes free).
 */
static struct vmfs_inode *inode_reset(uint8_t *blk, uint64_t addr,
				      uint64_t ino, uint64_t inc_step)
{
	struct vmfs_inode *di = (struct vmfs_inode *)(blk + VMFS_OBJ_OFFSET);
	uint64_t inc = 0, lock_gen = 0;
	struct lock_record lr;
	struct fmt_inode fi;

	/* Field ranges do not matter here: only the incarnation. */
	if (!lun_md_verify(&di->di_hdr, VMFS_MAGIC_INODE, addr, INODE_LEN)) {
		(void)fmt_inode_decode(di, &fi);
		inc = fi.incarnation;
	}
	if (!lock_record_decode(blk, addr, &lr))
		lock_gen = lr.gen;
	memset(blk, 0, VMFS_MD_BLOCK_SIZE);
	lock_record_init_free(blk, addr, lock_gen + 1);
	memset(&fi, 0, sizeof(fi));
	fi.ino = ino;
	fi.incarnation = inc + inc_step;
	fmt_inode_encode(&fi, di);
	return di;
}

/* A new inode of mode in blk (see inode_reset); a directory is empty,
 * with two links and a small-block map. */
static struct vmfs_inode *inode_fresh(uint8_t *blk, uint64_t addr,
				      uint64_t ino, uint32_t mode, int64_t now)
{
	struct vmfs_inode *di = inode_reset(blk, addr, ino, 1);
	struct fmt_inode fi;

	(void)fmt_inode_decode(di, &fi);
	fi.mode = mode;
	fi.nlink = S_ISDIR(mode) ? 2 : 1;
	fi.map_type = S_ISDIR(mode) ? VMFS_MAP_SMALL : VMFS_MAP_INLINE;
	fi.atime_ns = fi.mtime_ns = fi.ctime_ns = fi.btime_ns = now;
	fmt_inode_encode(&fi, di);
	return di;
}

/*
 * Read-ahead of inode slots.  A new inode starts from its slot's previous
 * life (inode_make_fresh: its incarnation moves on), which costs a read
 * of the slot's block per create.  Slots are mostly allocated in order,
 * so the read of one also reads the next VOL_IRA_SLOTS - 1 of its
 * cluster, and the next creates take their block from memory.  A block
 * read ahead is used (once) only while it is certainly what the slot
 * holds:
 *  - the slot is being allocated, so its bit is clear, and a clear slot
 *    is written by nobody but a host holding its cluster's lock, which
 *    this host took before it read the block (or is alone);
 *  - no lock of this host was let go since the read (vol_kcache_epoch:
 *    another host may have taken the cluster since), and going shared
 *    drops them all (vol_inode_ira_drop_all);
 *  - this host's own writes of a slot drop its block (vol_md_write).  The
 *    range is published before the read and a write checks it after its
 *    own write: either the write finds the range and waits for the read
 *    to end before it drops the block, or the write came before, and the
 *    read's journal lookup finds it;
 *  - a journal image leaves the lookup only after its home write, which
 *    may have landed after the read took the old block: when anything
 *    was written home during the read (jnl_home_seq), nothing is kept.
 */
static bool ira_in(struct vol *v, uint64_t addr)
{
	return addr >= __atomic_load_n(&v->ira_lo, __ATOMIC_SEQ_CST) &&
	       addr < __atomic_load_n(&v->ira_hi, __ATOMIC_SEQ_CST);
}

void vol_inode_ira_drop(struct vol *v, uint64_t addr)
{
	uint32_t bs = v->g.res[VMFS_RES_INODE].obj_size;

	if (!ira_in(v, addr))
		return;
	pthread_mutex_lock(&v->ira_lock);
	if (ira_in(v, addr) && bs)
		v->ira_valid &= ~(1ull << ((addr - v->ira_lo) / bs));
	pthread_mutex_unlock(&v->ira_lock);
}

void vol_inode_ira_drop_all(struct vol *v)
{
	pthread_mutex_lock(&v->ira_lock);
	v->ira_valid = 0;
	pthread_mutex_unlock(&v->ira_lock);
}

/*
 * Slot ino's block into blk: read ahead, or read with the next ones.  A
 * slot of the window read ahead that was used already (a create and
 * unlink loop takes the same slot again and again) is read alone: the
 * others are still good, and reading the window again would cost 64
 * blocks per create.
 */
static int ira_read(struct vol *v, uint64_t ino, uint8_t *blk)
{
	const struct vol_res_geom *r = &v->g.res[VMFS_RES_INODE];
	uint64_t addr = res_addr(v, VMFS_RES_INODE, ino), end, epoch, home;
	uint32_t n, bs = VMFS_MD_BLOCK_SIZE;
	int ret;

	pthread_mutex_lock(&v->ira_lock);
	epoch = vol_kcache_epoch(v);
	if (ino >= v->ira_first && ino - v->ira_first < VOL_IRA_SLOTS &&
	    v->ira_valid && v->ira_epoch == epoch) {
		bool valid = v->ira_valid >> (ino - v->ira_first) & 1;

		if (valid) {
			memcpy(blk, v->ira_buf + (ino - v->ira_first) * bs, bs);
			v->ira_valid &= ~(1ull << (ino - v->ira_first));
		}
		pthread_mutex_unlock(&v->ira_lock);
		return valid ? 0 : vol_md_read(v, blk, addr);
	}
	end = r->per_cluster ? (ino / r->per_cluster + 1) * r->per_cluster :
	      ino + 1;
	if (end > r->count)
		end = r->count;
	n = end - ino < VOL_IRA_SLOTS ? (uint32_t)(end - ino) : VOL_IRA_SLOTS;
	if (!v->ira_buf)
		v->ira_buf = lun_buf_alloc((size_t)VOL_IRA_SLOTS * bs);
	if (n < 2 || r->obj_size != bs || !v->ira_buf) {
		pthread_mutex_unlock(&v->ira_lock);
		return vol_md_read(v, blk, addr);
	}
	v->ira_valid = 0;
	v->ira_first = ino;
	__atomic_store_n(&v->ira_hi, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&v->ira_lo, addr, __ATOMIC_SEQ_CST);
	__atomic_store_n(&v->ira_hi, addr + (uint64_t)n * bs, __ATOMIC_SEQ_CST);
	home = v->j ? jnl_home_seq(v->j) : 0;
	ret = lun_read(v->lun, v->ira_buf, (size_t)n * bs, addr);
	/* Written home meanwhile: what we read may predate the home write of
	 * an image the lookup below no longer finds.  Read the one slot. */
	if (!ret && v->j && jnl_home_seq(v->j) != home)
		ret = -EAGAIN;
	if (!ret) {
		for (uint32_t i = 0; v->j && i < n; i++)
			(void)jnl_lookup(v->j, addr + (uint64_t)i * bs,
					 v->ira_buf + (size_t)i * bs);
		v->ira_valid = (n == 64 ? ~0ull : (1ull << n) - 1) & ~1ull;
		v->ira_epoch = epoch;
		memcpy(blk, v->ira_buf, bs);
	}
	pthread_mutex_unlock(&v->ira_lock);
	return ret ? vol_md_read(v, blk, addr) : 0;
}

/*
 * Make vi (write-locked, or not yet visible) the fresh inode of its slot
 * (inode_fresh) and write it.  Written as a lockable block, so that its
 * home write keeps the lock record on disk: with locks kept between
 * operations that write may come after this host (or another, done with
 * the slot's previous life) took the inode's lock, and wiping the record
 * would hand the lock to anyone while its holder still counts on it.
 */
static int inode_make_fresh(struct vol *v, struct vinode *vi, uint32_t mode,
			    uint32_t uid, uint32_t gid)
{
	struct fmt_inode fi;

	/* The slot's previous life, if it had one (unreadable: none). */
	if (ira_read(v, vi->ino, vi->blk))
		memset(vi->blk, 0, VMFS_MD_BLOCK_SIZE);
	(void)fmt_inode_decode(inode_fresh(vi->blk, vi->addr, vi->ino, mode,
					   vol_now_ns()), &fi);
	inode_decode(vi, &fi);
	vi->uid = uid;
	vi->gid = gid;
	inode_encode(vi);
	return vol_md_write(v, vi->blk, vi->addr, true);
}

/*
 * Every inode is in use: a create fails with ENOSPC while df may show
 * free blocks, which misleads.  Say so in the log, once a minute at most
 * (every create after it fails too).
 */
static void inodes_full_note(struct vol *v)
{
	struct rarea *ra = &v->res[VMFS_RES_INODE];
	int64_t now = vmfs_mono_ms();
	bool say;

	pthread_mutex_lock(&v->alloc_lock);
	say = !ra->full_said_ms || now - ra->full_said_ms >= 60000;
	if (say)
		ra->full_said_ms = now;
	pthread_mutex_unlock(&v->alloc_lock);
	if (say)
		VLOG(LOG_WARNING, "no free inode: all %llu are in use, so creating "
		     "a file or directory fails with 'No space left on device' "
		     "while blocks may be free (df -i shows it); remove files, "
		     "or move them to a volume made with more inodes (vmfs mkfs "
		     "--inodes N): their number is set at mkfs",
		     (unsigned long long)ra->g.count);
}

/* Allocate and write a fresh inode (inode_fresh). */
int vol_inode_alloc(struct vol *v, uint64_t hint, uint32_t mode, uint32_t uid,
		uint32_t gid, struct vinode **out)
{
	struct vinode *vi;
	uint64_t ino;
	uint32_t got;
	int ret;

	ret = vol_res_alloc(v, VMFS_RES_INODE, hint, &ino, 1, &got);
	if (ret == -ENOSPC)
		inodes_full_note(v);
	if (ret)
		return ret;
	/*
	 * An entry may still stand for the slot's previous inode: dying
	 * (freed while the kernel had it looked up) or stale (freed by
	 * another host).  One entry per number: it becomes the new inode
	 * and keeps the kernel's lookups of the old one, which the kernel
	 * tells apart by the generation and forgets in time.
	 */
	pthread_mutex_lock(&v->icache_lock);
	vi = icache_find(v, ino);
	if (vi)
		vi->pins++;
	pthread_mutex_unlock(&v->icache_lock);
	if (vi) {
		pthread_rwlock_wrlock(&vi->rw);
		vol_dir_unload(vi);
		vol_bmap_cache_drop(vi);
		vi->times_dirty = false;
		ret = inode_make_fresh(v, vi, mode, uid, gid);
		vi->deleted = ret != 0;
		pthread_rwlock_unlock(&vi->rw);
		if (ret) {
			vol_res_free(v, VMFS_RES_INODE, &ino, 1);
			vol_inode_put(v, vi);
			return ret;
		}
		*out = vi;
		return 0;
	}
	vi = vinode_new(v, ino);
	if (!vi) {
		vol_res_free(v, VMFS_RES_INODE, &ino, 1);
		return -ENOMEM;
	}
	ret = inode_make_fresh(v, vi, mode, uid, gid);
	if (ret) {
		vol_res_free(v, VMFS_RES_INODE, &ino, 1);
		vinode_destroy(vi);
		return ret;
	}
	vi->pins = 1;
	pthread_mutex_lock(&v->icache_lock);
	vi->hnext = v->itab[ihash(v, ino)];
	v->itab[ihash(v, ino)] = vi;
	pthread_mutex_unlock(&v->icache_lock);
	*out = vi;
	return 0;
}

/* Free every data and pointer block of the inode (it keeps existing). */
static int inode_release_blocks(struct vol *v, struct vinode *vi)
{
	int ret = 0;

	if (vi->map_type != VMFS_MAP_INLINE)
		ret = vol_bmap_free_range(v, vi, 0, UINT64_MAX);
	vol_dir_unload(vi);
	return ret;
}

/*
 * Free an inode with no links: blocks first, then mark the block free
 * (mode 0, incarnation kept), then clear its bitmap bit.  The caller holds
 * vi->rw for writing.  Shared, its inode cluster is locked before any
 * block's cluster, as a create locks them (the inode, then a directory
 * chunk): a host freeing here and another creating there must not each
 * hold the cluster the other waits for (docs/PROTOCOL.md §3).
 */
int vol_inode_free(struct vol *v, struct vinode *vi)
{
	uint64_t ino = vi->ino;
	int ret;

	ret = vol_res_lock_of(v, VMFS_RES_INODE, ino);
	if (!ret)
		ret = inode_release_blocks(v, vi);
	if (ret)
		return ret;
	vi->mode = 0;
	vi->size = 0;
	vi->alloc_bytes = 0;
	vi->map_type = VMFS_MAP_INLINE;
	memset(di_of(vi)->di_map, 0, sizeof(di_of(vi)->di_map));
	di_of(vi)->di_xattr_len = 0;
	ret = vol_inode_write(v, vi);
	if (ret)
		return ret;
	vi->deleted = true;
	return vol_res_free(v, VMFS_RES_INODE, &ino, 1);
}

/* Negative times (before 1970) keep a non-negative nanosecond part. */
static void ns_to_ts(int64_t ns, struct timespec *t)
{
	t->tv_sec = ns / 1000000000LL;
	t->tv_nsec = ns % 1000000000LL;
	if (t->tv_nsec < 0) {
		t->tv_sec--;
		t->tv_nsec += 1000000000L;
	}
}

void vol_inode_to_attr(const struct vol *v, const struct vinode *vi,
		   struct vol_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = vi->ino;
	a->generation = vi->incarnation;
	a->mode = vi->mode;
	a->nlink = vi->nlink;
	a->uid = vi->uid;
	a->gid = vi->gid;
	a->rdev = vi->rdev;
	a->size = vi->size;
	a->alloc_bytes = vi->alloc_bytes;
	a->blksize = vi->map_type == VMFS_MAP_FILE ? v->g.file_block_size
						   : v->g.small_block_size;
	a->flags = vi->flags;
	ns_to_ts(vi->atime_ns, &a->atime);
	ns_to_ts(vi->mtime_ns, &a->mtime);
	ns_to_ts(vi->ctime_ns, &a->ctime);
	ns_to_ts(vi->btime_ns, &a->btime);
}

/* ---- vol_raw_*: the same inodes on a volume that is not open ------------ */

static uint64_t raw_inode_addr(const struct vol_raw *r, uint64_t ino)
{
	return res_geom_addr(&r->g->res[VMFS_RES_INODE], ino);
}

int vol_raw_inode_read(const struct vol_raw *r, uint64_t ino, uint8_t *blk)
{
	if (ino >= r->g->res[VMFS_RES_INODE].count)
		return -EINVAL;
	return r->md_read(r->ctx, blk, raw_inode_addr(r, ino));
}

int vol_raw_inode_write(const struct vol_raw *r, uint64_t ino, uint8_t *blk)
{
	uint64_t addr = raw_inode_addr(r, ino);

	if (ino >= r->g->res[VMFS_RES_INODE].count)
		return -EINVAL;
	md_reseal(blk + VMFS_OBJ_OFFSET, VMFS_MAGIC_INODE, addr, INODE_LEN);
	return r->md_write(r->ctx, blk, addr);
}

int vol_raw_inode_clear(const struct vol_raw *r, uint64_t ino,
			const uint8_t *old)
{
	uint8_t *blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	uint64_t gen;
	int ret;

	if (!blk)
		return -ENOMEM;
	memcpy(blk, old, VMFS_MD_BLOCK_SIZE);
	/* The block's generation goes on from the old one, verified or not. */
	gen = fmt_hdr_gen(&((const struct vmfs_inode *)(old + VMFS_OBJ_OFFSET))->di_hdr);
	fmt_hdr_set_gen(&inode_reset(blk, raw_inode_addr(r, ino), ino, 0)->di_hdr,
			gen);
	ret = vol_raw_inode_write(r, ino, blk);
	lun_buf_free(blk);
	return ret;
}

int vol_raw_dir_create(const struct vol_raw *r, uint64_t ino,
		       uint64_t parent, uint32_t perm)
{
	uint8_t *blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	int ret;

	if (!blk)
		return -ENOMEM;
	ret = vol_raw_inode_read(r, ino, blk);
	if (!ret) {
		struct vmfs_inode *di = inode_fresh(blk, raw_inode_addr(r, ino),
						    ino, S_IFDIR | perm,
						    vol_now_ns());
		struct fmt_inode fi;

		(void)fmt_inode_decode(di, &fi);
		fi.parent = parent;
		fmt_inode_encode(&fi, di);
		ret = vol_raw_inode_write(r, ino, blk);
	}
	lun_buf_free(blk);
	return ret;
}

int vol_raw_inode_adjust(const struct vol_raw *r, uint64_t ino, uint8_t *blk,
			 int nlink_delta, int nentries_delta)
{
	struct vmfs_inode *di = (struct vmfs_inode *)(blk + VMFS_OBJ_OFFSET);
	int ret = vol_raw_inode_read(r, ino, blk);
	struct fmt_inode fi;

	if (ret)
		return ret;
	/* A damaged field is fsck's to judge; the counts move regardless. */
	(void)fmt_inode_decode(di, &fi);
	fi.nlink += (uint32_t)nlink_delta;
	fi.nentries += (uint64_t)(int64_t)nentries_delta;
	fmt_inode_encode(&fi, di);
	return vol_raw_inode_write(r, ino, blk);
}
