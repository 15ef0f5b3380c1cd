/*
 * Private interfaces of the volume engine.
 *
 * Locking (outermost first; never take an earlier lock while holding a
 * later one):
 *   vol->ns_lock      namespace changes (create, unlink, rename, ...)
 *   vinode->rw        one inode: read-held by data I/O that changes no
 *                     metadata, write-held by anything that changes the
 *                     inode, its block map or its directory chunks
 *   vol->alloc_lock   resource-cluster bitmaps
 *   vol->icache_lock  the inode cache table, pin counts and the cache
 *                     budget's counts and LRU list (cache.c) (leaf)
 *
 * Journal handles (journal.h) come before all of these: an operation that
 * may change metadata opens one (VOL_HANDLE) before its first lock and
 * closes it after its last unlock, and never waits for a commit inside.
 *
 * Metadata goes through the host's journal: vol_md_write() hands the whole
 * 4 KiB block image to the running transaction, which the commit thread
 * makes durable and then writes home; vol_md_read() sees images not yet home.
 * An operation's blocks always commit together, so a crash leaves every
 * operation done or not done.  New data blocks are written before the
 * transaction pointing at them commits (the commit flushes first), and a
 * freed file or small block is not reused before its transaction can
 * never replay (alloc.c).  A read-only volume has no journal.
 * Timestamps alone are written lazily, like lazytime: with the next inode
 * write, at fsync, at eviction and at unmount.
 */
#ifndef VMFS_VOL_INT_H
#define VMFS_VOL_INT_H

#include <endian.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "vmfs/log.h"
#include "vmfs/format.h"
#include "vmfs/journal.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"

/* One resource cluster's in-memory state. */
struct rcluster {
	uint8_t *blk;       /* 4 KiB image of the cluster header block */
	uint32_t nobjs;
	uint32_t nfree;     /* clear bits in the bitmap */
	uint32_t nbusy;     /* of those, freed but not yet reusable */
	uint8_t *busy;      /* bitmap of those, allocated on first use */
};

/* An object freed by transaction seq, reusable once it can't replay. */
struct rfreed {
	uint64_t idx, seq;
};

struct rarea {
	struct vol_res_geom g;
	struct rcluster *cl;
	uint8_t *blks;      /* every cl[c].blk, one allocation */
	uint32_t rotor;     /* cluster to try first */
	uint64_t used;
	uint32_t cut_cl;    /* 1 + a cluster whose header a cut grow left
			     * counting fewer objects (vol_rc_grow_cut), or 0 */
	struct rfreed *freed;  /* FIFO, sequences ascending */
	size_t freed_head, freed_n, freed_cap;
	int64_t full_said_ms;  /* when we last logged it full (alloc_lock) */
};

/* Directory index entry: where a name lives. */
struct dslot {
	uint32_t hash;
	uint32_t pos;       /* chunk * VMFS_DIRENTS_PER_CHUNK + slot */
};

struct vdir {
	uint32_t nchunks;
	uint8_t **chunks;   /* 4 KiB images */
	uint64_t *caddr;    /* their LUN addresses */
	uint32_t cap;
	struct dslot *tab;  /* open addressing, tabsize power of two */
	uint32_t tabsize;
	uint32_t tabused;   /* live + tombstones */
	uint32_t *roomy;    /* stack of chunks that may have a free slot */
	uint32_t nroomy, roomy_cap;
};

/* Cached pointer block. */
struct pblk {
	uint64_t addr;
	uint8_t *blk;
	bool dirty;          /* changed in memory, vol_bmap_flush writes it */
	bool in_undo;        /* the running operation (vi->undo) has its
			      * old image: no need to look it up again */
	struct pblk *next;
};

struct vinode {
	uint64_t ino;
	struct vinode *hnext;
	uint32_t pins;       /* threads using it (icache_lock) */
	uint64_t nlookup;    /* kernel references (icache_lock) */
	pthread_rwlock_t rw;
	pthread_mutex_t lk;  /* pointer-block cache and timestamps under a
			      * read-held rw */
	uint64_t addr;       /* byte address of its block */
	uint8_t *blk;        /* 4 KiB on-disk image (lock record kept) */

	/* host-order copy of the inode; the map stays little-endian in blk */
	uint64_t gen, incarnation;
	uint32_t mode, nlink, uid, gid, flags;
	uint64_t size, alloc_bytes, parent, rdev, nentries;
	int64_t atime_ns, mtime_ns, ctime_ns, btime_ns;
	uint16_t map_type;
	bool times_dirty;
	bool deleted;        /* freed on disk; cache entry dying */
	bool unhashed;       /* out of the inode table (icache_lock) */

	struct vdir *dir;    /* loaded directory index */
	struct pblk **pbtab; /* pointer-block cache, 64 buckets */
	uint32_t npb;        /* pointer blocks in it */
	struct vundo *undo;  /* the running growth operation (under rw) */

	/* cache.c, under icache_lock */
	struct vinode *lru_prev, *lru_next;
	bool on_lru;
	bool cache_counted;   /* in vcache.ninodes */
	uint64_t cache_extra; /* what vcache.extra_bytes counts for it */
};

/* An object of an allocator area. */
struct vobj {
	enum vmfs_res_type t;
	uint64_t idx;
};

/* A pointer block as it was before the operation (img NULL: new in it). */
struct vpbsave {
	uint64_t addr;
	uint8_t *img;
};

/*
 * What one operation that grows a file (write, fallocate, truncate up)
 * changed, so a failure can put the inode back exactly as it was: the
 * inode block and its host fields, every pointer block it touched, and
 * the objects it allocated (freed again).  Objects the operation stops
 * using (the old blocks of a map-type change) are freed only when it
 * succeeds.  All of it happens inside one journal handle, so the
 * transaction holds the old images again and nothing half-done commits.
 */
struct vundo {
	bool owner;          /* false: nested in a running operation */
	uint8_t img[VMFS_MD_BLOCK_SIZE];
	uint64_t size, alloc_bytes;
	int64_t mtime_ns, ctime_ns;
	uint16_t map_type;
	struct vobj *allocs, *frees;
	uint32_t nallocs, nfrees, cap_allocs, cap_frees;
	struct vpbsave *pbs;
	uint32_t npbs, cap_pbs;
};

/* The cache budget (cache.c); fields under icache_lock unless noted. */
struct vcache {
	uint64_t budget_bytes;  /* holds fixed_bytes + extra_bytes */
	uint64_t fixed_bytes;   /* resource-cluster state, loaded at mount */
	uint64_t extra_bytes;   /* directory indexes and pointer blocks */
	uint64_t ninodes;       /* inodes counted (each CACHE_INODE_BYTES) */
	uint64_t evictions;     /* indexes and pointer-block caches dropped */
	uint64_t freed_bytes;   /* since the last malloc_trim (atomic) */
	struct vinode *lru_head, *lru_tail;  /* least recently used first */
	pthread_mutex_t trim_lock;
};

struct vol {
	struct lun *lun;
	struct jnl *j;               /* NULL when read-only */
	unsigned flags;
	struct vol_geom g;
	uint32_t ss;                 /* sector size */
	pthread_mutex_t ns_lock;
	pthread_mutex_t alloc_lock;
	pthread_mutex_t icache_lock;
	struct rarea res[VMFS_RES_NTYPES];
	struct vinode **itab;
	uint32_t itab_size;
	struct vcache cache;
	struct vcl *cl;              /* sharing with other hosts (cluster.c) */
	bool keep_orphans;           /* close: leave orphans to the next sweep */
	bool geom_warned;            /* vol_geom_refresh said a header is odd */
	/* inode.c: inode slots read ahead by vol_inode_alloc (ira_*). */
	pthread_mutex_t ira_lock;
	uint8_t *ira_buf;            /* VOL_IRA_SLOTS blocks */
	uint64_t ira_lo, ira_hi;     /* their byte range (atomics) */
	uint64_t ira_first;          /* inode number of the first */
	uint64_t ira_valid;          /* bit i: block i still usable */
	uint64_t ira_epoch;          /* vol_kcache_epoch before the read */
};

#define VOL_IRA_SLOTS 64   /* at most 64: ira_valid */
/* This host wrote the block at addr: a copy read ahead is stale. */
void vol_inode_ira_drop(struct vol *v, uint64_t addr);
/* Every block read ahead is stale (another host may change them). */
void vol_inode_ira_drop_all(struct vol *v);

#define VLOG(lvl, fmt, ...) qb_log(lvl, "vol: " fmt, ##__VA_ARGS__)

static inline int64_t ts_to_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec;
}

int64_t vol_now_ns(void);
bool vol_is_rdonly(const struct vol *v);

/* Read / write one whole metadata block (lockable: its first 512 bytes
 * are a lock record the write must leave alone). */
int vol_md_read(struct vol *v, void *blk, uint64_t addr);
int vol_md_write(struct vol *v, const void *blk, uint64_t addr, bool lockable);

/* Bump a block header's generation and seal it: every rewrite of a
 * pointer block, chunk or inode, the engine's and vol_raw_*'s alike. */
static inline void md_reseal(void *hdr, uint32_t magic, uint64_t self,
			     uint32_t len)
{
	struct vmfs_blk_hdr *h = hdr;

	fmt_hdr_set_gen(h, fmt_hdr_gen(h) + 1);
	lun_md_seal(hdr, magic, self, len);
}

static inline struct vol *vol_handle_begin(struct vol *v)
{
	if (v->j)
		jnl_handle_begin(v->j);
	return v;
}

static inline void vol_handle_end(struct vol **vp)
{
	if ((*vp)->j)
		jnl_handle_end((*vp)->j);
}

/* A journal handle for the rest of the enclosing scope. */
#define VOL_HANDLE(v) \
	struct vol *vol_handle_ __attribute__((cleanup(vol_handle_end), unused)) = \
		vol_handle_begin(v)

/*
 * After -ENOSPC: if freed blocks are waiting for their transaction, make
 * them reusable (commit, write home, move the tail) and return true so
 * the caller retries once.  Never inside a handle.
 */
bool vol_reclaim(struct vol *v);

/* The value of expr, evaluated once more after a successful vol_reclaim
 * if the first run gave -ENOSPC.  Use outside any handle. */
#define VOL_RETRY_NOSPC(v, expr) ({                              \
	__typeof__(expr) r_ = (expr);                            \
	if (r_ == -ENOSPC && vol_reclaim(v))                     \
		r_ = (expr);                                     \
	r_;                                                      \
})

/* geom.c */
/* Write a header copy of g at off; keep (optional): the copy it replaces,
 * whose reserved bytes it keeps. */
int vol_header_write(struct lun *lun, const struct vol_geom *g, uint64_t off,
		     const struct vmfs_volume *keep);
/* One header copy at off, its geometry checked against a LUN of
 * lun_bytes; *magic gets the magic found there. */
int vol_header_read_at(struct lun *lun, uint64_t off, uint64_t lun_bytes,
		       struct vol_geom *g, uint32_t *magic);

/* alloc.c */
int vol_res_load(struct vol *v);
void vol_res_unload(struct vol *v);
int vol_res_alloc(struct vol *v, enum vmfs_res_type t, uint64_t hint,
	      uint64_t *out, uint32_t n, uint32_t *got);
int vol_res_free(struct vol *v, enum vmfs_res_type t, const uint64_t *idx,
	     uint32_t n);
/* Shared: lock the cluster of object idx for the running operation now,
 * ahead of a free into it later in the operation (the order of cluster
 * locks, docs/PROTOCOL.md §3).  0 alone, or outside the area (the free
 * reports that). */
int vol_res_lock_of(struct vol *v, enum vmfs_res_type t, uint64_t idx);
/* Objects of type t that an allocation can get now. */
uint64_t vol_res_avail(struct vol *v, enum vmfs_res_type t);
int vol_res_cluster_format(struct lun *lun, const struct vol_geom *g,
		       enum vmfs_res_type t, uint32_t from,
		       const uint64_t *used, uint32_t nused);
/*
 * Online grow: take geometry g, a grown copy of v->g (only the file-block
 * area's count and nclusters differ), into the allocator: the new
 * cluster headers read and verified, the old last cluster counting its
 * new objects in memory (written by vol_res_grow_finish or its next
 * allocation).  alloc_lock held; on failure nothing changed.
 */
int vol_res_regeom(struct vol *v, const struct vol_geom *g);
/* After an online grow's commit, as an operation: write the old last
 * cluster's header with its new count, and zero the old backup header
 * at old_backup (0: none) if the file block over it is still free. */
int vol_res_grow_finish(struct vol *v, uint64_t old_backup);
/*
 * Read the primary volume header; if another host grew the volume, take
 * the new geometry (the LUN's new size, vol_res_regeom).  1: it changed,
 * 0: it did not, or -errno (a header caught half written says nothing:
 * the next call looks again).
 */
int vol_geom_refresh(struct vol *v);
/* grow: rewrite header c so it counts the objects g gives its cluster. */
int vol_res_cluster_resize(struct lun *lun, const struct vol_geom *g,
			   enum vmfs_res_type t, uint32_t c);
static inline uint64_t res_geom_addr(const struct vol_res_geom *r, uint64_t idx)
{
	return r->obj_offset + idx * r->obj_size;
}
static inline uint64_t res_addr(const struct vol *v, enum vmfs_res_type t,
				uint64_t idx)
{
	return res_geom_addr(&v->g.res[t], idx);
}
/* The per-inode maps of an inode-cluster header (format.h). */
enum vol_rc_map {
	VOL_RC_ORPHAN,    /* rc_orphan: no links left, was open */
	VOL_RC_UNLINKED,  /* rc_unlinked: a link drop waits for the inode's lock */
};
/* Set or clear inode ino's bit in map m (locks its cluster). */
int vol_res_inode_mark(struct vol *v, uint64_t ino, enum vol_rc_map m,
		       bool on);
/* Read inode ino's bit in map m under its cluster's lock. */
int vol_res_inode_test(struct vol *v, uint64_t ino, enum vol_rc_map m,
		       bool *set);
/* Is inode ino's rc_unlinked bit set?  reread (shared, between
 * operations): as on disk now, its cluster header read again without
 * its lock, a hint for an operation that then locks it. */
bool vol_res_unlinked_pending(struct vol *v, uint64_t ino, bool reread);
/* Reread every inode-cluster header (orphan bits) from disk. */
int vol_res_refresh_inodes(struct vol *v);
/* Start allocating at part/parts of every area (a host's share). */
void vol_res_spread(struct vol *v, uint32_t part, uint32_t parts);
/* Reread every cluster header of every area (vol_caches_reload). */
int vol_res_reload_all(struct vol *v);
/* Every inode whose orphan or unlinked bit is set (malloc'ed list). */
struct vol_orphan {
	uint64_t ino;
	bool pending;     /* its rc_unlinked bit */
};
int vol_res_orphans_list(struct vol *v, struct vol_orphan **out, size_t *n);
/* Index of the object at byte address addr, or -1 if not one. */
int64_t vol_res_index(const struct vol *v, enum vmfs_res_type t, uint64_t addr);
static inline int64_t res_geom_index(const struct vol_res_geom *r, uint64_t addr)
{
	if (addr < r->obj_offset || (addr - r->obj_offset) % r->obj_size ||
	    (addr - r->obj_offset) / r->obj_size >= r->count)
		return -1;
	return (int64_t)((addr - r->obj_offset) / r->obj_size);
}

/*
 * -EIO once the heartbeat fenced this host (its LUN handles refuse all
 * I/O then), else 0.  Every entry point checks it, not only those that
 * reach the LUN: an answer from the cache after the fence may be one
 * that another host, which broke our locks, has made wrong.
 */
static inline int vol_fenced(const struct vol *v)
{
	return lun_is_fenced(v->lun) ? -EIO : 0;
}

/* cluster.c: on-disk locks of the running operation (no-ops while this
 * host is alone on the volume or the volume is not clustered) */
struct vcl_optab;
struct vcl_op_buf {
	uint64_t space[70];
};
int vcl_begin(struct vol *v, struct vcl_optab *op);
/* A rename moved a name from directory from to directory to (both locked
 * EXCLUSIVE by the running operation): what the kernel keeps of it moves
 * too, so to's lock is let go only after the kernel forgot it. */
void vcl_kc_carry(struct vol *v, uint64_t from, uint64_t to, bool exchange);
int vcl_end(struct vol *v, struct vcl_optab *op, int ret);
/* One operation's scope: VCL_OP(v); ... return VCL_END(v, ret); */
#define VCL_OP(v) \
	struct vcl_op_buf vcl_buf_; \
	vcl_begin((v), (struct vcl_optab *)&vcl_buf_)
#define VCL_END(v, ret) vcl_end((v), (struct vcl_optab *)&vcl_buf_, (ret))
bool vcl_shared(const struct vol *v);
/*
 * The geometry changes (vol_grow_online) between vcl_geom_begin and
 * vcl_geom_end: every operation of this host waits, and while the volume
 * is shared this host holds the volume lock EXCLUSIVE, so no two hosts
 * change it at once and a host that mounts meanwhile waits.  -EBUSY:
 * another host kept the volume lock.
 */
int vcl_geom_begin(struct vol *v);
void vcl_geom_end(struct vol *v);
int vcl_parent_of(struct vol *v, uint64_t ino, uint64_t *parent);
int vcl_lock_ino(struct vol *v, uint64_t ino, enum vmfs_lock_mode mode);
/* The same, waiting a moment only (vcl_lock_ino_brief in cluster.c):
 * -EBUSY when a live host holds it longer, and nothing logged. */
int vcl_lock_ino_brief(struct vol *v, uint64_t ino, enum vmfs_lock_mode mode);
/* Locks kept between operations (the fast path runs)? */
bool vcl_caching(struct vol *v);
/* Lock inode ino READONLY to read what it is now: its holder lets go and
 * writes its changes home; -EBUSY at once if the holder keeps it (files
 * open there).  Nothing logged. */
int vcl_lock_ino_fresh(struct vol *v, uint64_t ino);
/* ino's attributes now, for an inode this host does not hold (shared):
 * vol.c. */
int vol_attr_unheld(struct vol *v, uint64_t ino, struct vol_attr *a);
/* Ask for an orphan sweep after the watcher's next tick (vol_orphans_sweep). */
void vcl_sweep_want(struct vol *v);
int vcl_lock_ino2(struct vol *v, uint64_t a, uint64_t b,
		  enum vmfs_lock_mode mode);
int vcl_find_child(struct vol *v, uint64_t parent, const char *name,
		   uint64_t *ino);
int vcl_lock_child(struct vol *v, uint64_t parent, const char *name,
		   enum vmfs_lock_mode mode, uint64_t *ino);
int vcl_lock_cluster(struct vol *v, enum vmfs_res_type t, uint32_t cl,
		     bool try, bool *moved);
bool vcl_may_free(struct vol *v, const struct vinode *vi);
bool vcl_holds_ino(struct vol *v, uint64_t ino);
/* 0, or -EIO (logged) when ino is detached here (vol_file_detach). */
int vcl_may_write(struct vol *v, uint64_t ino);
/*
 * The running operation takes over ino's lock if this host holds it
 * already (open, or cached), without taking it: a change the operation
 * makes under it (timestamps written when the inode leaves the cache)
 * is then written home or sealed with the operation, before the lock can
 * be let go.  Nothing when the lock is not held.
 */
void vcl_adopt_ino(struct vol *v, uint64_t ino);
void vol_orphans_sweep(struct vol *v, bool quiet);

/* inode.c */
/* The cached inode ino, pinned (0), or -ENOENT when not cached. */
int vol_inode_cached(struct vol *v, uint64_t ino, struct vinode **out);
/* Read vi again from disk (its lock moved): fields, block, and drop its
 * directory index and pointer-block cache.  Caller holds vi->rw. */
int vol_inode_reload(struct vol *v, struct vinode *vi);
/* Attributes of ino read from disk now, cache untouched (shared mode,
 * an inode this host does not hold). */
int vol_inode_peek(struct vol *v, uint64_t ino, struct vol_attr *a);
int vol_inode_peek_parent(struct vol *v, uint64_t ino, uint64_t *parent);
/* The kernel forgets n references to ino (whatever incarnation it
 * meant: node ids are inode numbers). */
bool vol_inode_forget(struct vol *v, uint64_t ino, uint64_t n);
/* Write every cached inode's lazy timestamps (each in its own handle). */
void vol_icache_flush_times(struct vol *v);
/* Alone again: reread every cached inode and cluster header. */
int vol_caches_reload(struct vol *v);
int vol_inode_get(struct vol *v, uint64_t ino, struct vinode **out);
void vol_inode_put(struct vol *v, struct vinode *vi);
int vol_inode_write(struct vol *v, struct vinode *vi);
int vol_inode_alloc(struct vol *v, uint64_t hint, uint32_t mode, uint32_t uid,
		uint32_t gid, struct vinode **out);
int vol_inode_free(struct vol *v, struct vinode *vi);
void vol_inode_to_attr(const struct vol *v, const struct vinode *vi,
		   struct vol_attr *a);
void vol_inode_touch(struct vinode *vi, bool m, bool c);
int vol_inode_flush_times(struct vol *v, struct vinode *vi);
void vol_icache_evict_all(struct vol *v);

/* cache.c: one memory budget for inodes, directory indexes and pointer
 * blocks.  idle, remove and the eviction they do run under icache_lock;
 * trim outside every lock. */
void vol_cache_init(struct vol *v, uint64_t budget_bytes);
/* Buckets for the inode table: about one per inode the budget holds
 * (4096 to 1M, a power of two). */
uint32_t vol_cache_inode_buckets(const struct vol *v);
void vol_cache_fini(struct vol *v);
/* Count the resource-cluster state (after vol_res_load). */
void vol_cache_count_fixed(struct vol *v);
/* vi's last pin is gone and it stays cached: count it, mark it recently
 * used, evict while over the budget; true when something was dropped. */
bool vol_cache_idle(struct vol *v, struct vinode *vi);
/* vi leaves the inode cache. */
void vol_cache_remove(struct vol *v, struct vinode *vi);
/* Give freed memory back to the system once enough has been freed. */
void vol_cache_trim(struct vol *v);

/* bmap.c: block maps of regular files, directories and symlinks */
static inline uint32_t bmap_bsize(const struct vol *v, const struct vinode *vi)
{
	return vi->map_type == VMFS_MAP_FILE ? v->g.file_block_size
					     : v->g.small_block_size;
}
static inline enum vmfs_res_type bmap_res(const struct vinode *vi)
{
	return vi->map_type == VMFS_MAP_FILE ? VMFS_RES_FILE : VMFS_RES_SMALL;
}
int vol_bmap_get(struct vol *v, struct vinode *vi, uint64_t lbn, uint64_t *ptr);
int vol_bmap_set(struct vol *v, struct vinode *vi, uint64_t lbn, uint64_t ptr,
	     bool defer);
int vol_bmap_flush(struct vol *v, struct vinode *vi);
int vol_bmap_free_range(struct vol *v, struct vinode *vi, uint64_t first,
		    uint64_t last);
void vol_bmap_cache_drop(struct vinode *vi);
/* Bytes of vi's pointer-block cache; whether none of it is dirty or
 * saved for an undo (so that vol_bmap_cache_drop loses nothing). */
uint64_t vol_bmap_cache_bytes(const struct vinode *vi);
bool vol_bmap_cache_clean(const struct vinode *vi);
/* The operation that kept the pointer block at addr is over: on rollback
 * put it back to img (written) or drop it (img NULL: it was new). */
int vol_bmap_pb_release(struct vol *v, struct vinode *vi, uint64_t addr,
		    const uint8_t *img, bool rollback);
uint64_t vol_bmap_max_blocks(void);

/* file.c */
int vol_file_truncate(struct vol *v, struct vinode *vi, uint64_t size);
int vol_file_read_locked(struct vol *v, struct vinode *vi, void *buf,
		     size_t len, uint64_t off);
int vol_file_write_locked(struct vol *v, struct vinode *vi, const void *buf,
		      size_t len, uint64_t off);

/* undo.c: make a growth operation all or nothing (struct vundo) */
void vol_undo_begin(struct vinode *vi, struct vundo *u);
int vol_undo_end(struct vol *v, struct vinode *vi, struct vundo *u, int ret);
int vol_undo_note_alloc(struct vinode *vi, enum vmfs_res_type t,
		    const uint64_t *idx, uint32_t n);
int vol_undo_note_pb(struct vinode *vi, struct pblk *pb, bool is_new);
int vol_undo_free_later(struct vol *v, struct vinode *vi, enum vmfs_res_type t,
		    const uint64_t *idx, uint32_t n);

/* namei.c */
/* Drop one link of vi (write-locked), marking it an orphan at zero. */
int vol_link_drop(struct vol *v, struct vinode *vi);

/* dir.c */
int vol_dir_load(struct vol *v, struct vinode *dir);
void vol_dir_unload(struct vinode *dir);
/* Bytes of dir's loaded index (0: none). */
uint64_t vol_dir_cache_bytes(const struct vinode *dir);
int vol_dir_find(struct vol *v, struct vinode *dir, const char *name,
	     uint64_t *ino, uint8_t *type, uint32_t *pos);
int vol_dir_add(struct vol *v, struct vinode *dir, const char *name,
	    uint64_t ino, uint8_t type);
int vol_dir_remove_pos(struct vol *v, struct vinode *dir, uint32_t pos);
int vol_dir_replace_pos(struct vol *v, struct vinode *dir, uint32_t pos,
		    uint64_t ino, uint8_t type);
int vol_dir_iterate(struct vol *v, struct vinode *dir, uint64_t cookie,
		int (*cb)(void *ctx, const char *name, uint64_t ino,
			  uint8_t type, uint64_t next),
		void *ctx);

#endif
