/*
 * vol: the volume engine (mkfs, superblock, allocator, inodes,
 * directories, block maps, VM disk files), a library under the daemon,
 * fsck, the CLI and the tests.
 *
 * The engine speaks in inode numbers, like the FUSE low-level API, so the
 * FUSE adapter is a thin translation.  All functions return 0 (or a byte
 * count) or a negative error (-errno, or -VMFS_E_* from vmfs/lun.h), and are
 * safe to call from many threads at once.
 *
 * Lookup references: every call that hands back a struct vol_attr for a
 * directory entry (vol_lookup, vol_create, vol_mkdir, vol_symlink,
 * vol_link) takes one reference on that inode; vol_ref() takes one more
 * (readdirplus); vol_forget() drops n.  An inode whose link count reaches 0
 * is freed once its references are gone, as POSIX requires for a file that
 * is still open after unlink.
 */
#ifndef VMFS_VOL_H
#define VMFS_VOL_H

#include <stdint.h>
#include <stdbool.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include "vmfs/error.h"
#include "vmfs/format.h"
#include "vmfs/journal.h"
#include "vmfs/lockmgr.h"

struct lun;
struct vol;
struct jnl_stats;

/* ---- geometry and usage ------------------------------------------------ */

struct vol_res_geom {
	uint64_t hdr_offset;
	uint64_t obj_offset;
	uint64_t count;
	uint32_t obj_size;
	uint32_t per_cluster;
	uint32_t nclusters;
};

/* Host-order copy of the volume header. */
struct vol_geom {
	uint8_t uuid[VMFS_UUID_SIZE];
	char label[VMFS_LABEL_SIZE + 1];
	uint16_t major, minor;
	uint64_t generation;
	uint64_t size_bytes;
	int64_t ctime_ns;
	uint32_t sector_size;
	uint32_t md_block_size;
	uint32_t file_block_size;
	uint32_t small_block_size;
	uint32_t max_hosts;
	uint32_t flags;
	uint64_t journal_size_bytes;
	uint64_t hb_offset;
	uint64_t journal_offset;
	uint64_t root_ino;
	uint64_t lostfound_ino;
	uint64_t backup_offset;
	struct vol_res_geom res[VMFS_RES_NTYPES];
};

/* In-use and total objects of each resource type. */
struct vol_usage {
	uint64_t used[VMFS_RES_NTYPES];
	uint64_t total[VMFS_RES_NTYPES];
};

const char *vol_res_name(enum vmfs_res_type t);
void vol_uuid_format(const uint8_t uuid[VMFS_UUID_SIZE], char out[37]);

/* Header conversions at the disk boundary (no I/O). */
void vol_geom_from_disk(const struct vmfs_volume *d, struct vol_geom *g);
void vol_geom_to_disk(const struct vol_geom *g, struct vmfs_volume *d);

/* 0 when the geometry is possible on a LUN of lun_bytes, else
 * -VMFS_E_GEOMETRY (overlapping, misaligned or out-of-range areas). */
int vol_geom_check(const struct vol_geom *g, uint64_t lun_bytes);

/*
 * Read and verify the volume header of lun.  Tries the primary copy at
 * offset 0, then the backup in the last 4 KiB; *which_out (optional) says
 * which copy was good (0 primary, 1 backup).  Fails with
 * -VMFS_E_NOT_VOLUME (no magic at offset 0 nor at the backup),
 * -VMFS_E_BAD_VERSION (newer format major), -VMFS_E_GEOMETRY, or the
 * verification error.  *bad_magic_out (optional) gets the magic found at
 * offset 0 so the caller can name it.
 */
int vol_geom_read(struct lun *lun, struct vol_geom *g, int *which_out,
		  uint32_t *bad_magic_out);
/*
 * A file-block cluster header that counts rc_nobjs objects where the
 * geometry gives it want: true for the one state a grow cut between its
 * commit and the rewrite of the old last cluster leaves (fewer, never
 * none).  The engine and fsck accept it; the geometry decides.
 */
bool vol_rc_grow_cut(enum vmfs_res_type t, uint32_t rc_nobjs, uint32_t want);
/* Read the bitmaps of every resource cluster and count objects in use. */
int vol_usage_read(struct lun *lun, const struct vol_geom *g,
		   struct vol_usage *u);

/* ---- mkfs ------------------------------------------------------------- */

struct vol_mkfs_opts {
	const char *label;          /* NULL: empty */
	uint32_t file_block_size;   /* default 1 MiB; power of two, 64 KiB..256 MiB */
	uint32_t small_block_size;  /* default 64 KiB; power of two, 4 KiB..file block */
	uint32_t max_hosts;         /* default 64; 1..1024 */
	uint64_t journal_size;      /* per host, default 16 MiB; >= 1 MiB */
	uint64_t inode_count;       /* 0: derived from the size */
	const uint8_t *uuid;        /* NULL: random */
	/*
	 * The volume size vmfs grow may reach: mkfs lays out the file-block
	 * cluster-header table with a slot for every cluster of a volume
	 * that large.  VOL_GROW_DEFAULT (what vol_mkfs_opts_init sets):
	 * VOL_GROW_FACTOR times the LUN.  At most the LUN's size (0 too):
	 * no slot beyond the table's alignment padding.  Capped at
	 * VOL_MAX_SIZE_BYTES.
	 */
	uint64_t max_grow_size;
};
#define VOL_GROW_DEFAULT UINT64_MAX
#define VOL_GROW_FACTOR 16u
/*
 * The largest volume: the LUN is read and written at off_t offsets
 * (signed 64-bit), so 2^63 bytes less the last 4 KiB.  The format itself
 * reaches further (block pointers address 2^68 bytes).
 */
#define VOL_MAX_SIZE_BYTES ((UINT64_C(1) << 63) - 4096)
void vol_mkfs_opts_init(struct vol_mkfs_opts *o);

/*
 * Lay out a new volume on the whole lun.  Computes the layout first and
 * fails with -VMFS_E_TOO_SMALL (and writes nothing) when it does not fit;
 * *need_bytes_out (optional) then says the minimum size.  Writes the
 * backup header last and the primary header after it, so an interrupted
 * mkfs never leaves something that looks like a volume.
 */
int vol_mkfs(struct lun *lun, const struct vol_mkfs_opts *o,
	     uint64_t *need_bytes_out);
/*
 * The layout vol_mkfs would write on a LUN of lun_bytes, without writing:
 * -EINVAL for impossible options, -VMFS_E_TOO_SMALL with *need_bytes.
 * (So a command can refuse before it destroys anything.)
 */
int vol_layout(uint64_t lun_bytes, uint32_t sector_size,
	       const struct vol_mkfs_opts *o, struct vol_geom *g,
	       uint64_t *need_bytes);

/* ---- grow (offline) ----------------------------------------------------- */

struct vol_grow_opts {
	bool dry_run;               /* compute and check, write nothing */
};

struct vol_grow_result {
	uint64_t lun_bytes;         /* the LUN's size now */
	uint64_t old_size_bytes;    /* vh_size_bytes before */
	uint64_t new_size_bytes;    /* after (= old when nothing grew) */
	uint64_t old_file_blocks;
	uint64_t new_file_blocks;
	uint32_t file_block_size;
	/* The most file blocks the file-block cluster table mkfs laid out
	 * can hold, and the volume size at which that is reached. */
	uint64_t max_file_blocks;
	uint64_t max_size_bytes;
	bool capped;                /* the LUN has more room than the table */
	bool finished;              /* an interrupted grow was completed */
};

/*
 * Grow the volume on lun, which nobody may have mounted (the caller
 * checks the heartbeats), into the space between its end and the LUN's
 * end: more file blocks (new clusters laid out as mkfs would, the last
 * old cluster extended), the backup header moved to the new end.  The
 * inode, pointer-block and small-block areas keep their mkfs size.  The
 * primary header write is the commit point; a crash before it leaves the
 * old volume, after it the new one (docs/SPEC.md, "Growing a volume").
 * Also completes a grow that a crash cut after its commit (r->finished).
 * Fails with -VMFS_E_NOT_GROWN (no room a file block could use),
 * -VMFS_E_GROW_FULL (the cluster table is full; r->max_* say where),
 * -VMFS_E_LUN_SHRUNK (r->old_size_bytes, r->lun_bytes), -VMFS_E_JNL_DIRTY
 * (replay first) or what opening the volume read-only fails with.  r is
 * filled as far as known, on failure too.
 */
int vol_grow(struct lun *lun, const struct vol_grow_opts *o,
	     struct vol_grow_result *r);
/*
 * Online grow of a volume this host has open read-write (vmfsd, for
 * `vmfs grow MOUNTPOINT`), with the same write order and the same results
 * and errors as vol_grow, plus -EROFS (a read-only mount), -EIO (this
 * host is fenced) and -EBUSY (another host kept the volume lock for
 * longer than a lease).  The LUN's new size is read here.  Shared with
 * other hosts, this host takes the volume lock EXCLUSIVE for the change
 * and the others take the new geometry at their next tick or before
 * they call the volume full (docs/PROTOCOL.md §2).
 */
int vol_grow_online(struct vol *v, const struct vol_grow_opts *o,
		    struct vol_grow_result *r);
/*
 * The most file blocks the volume's file-block cluster-header table can
 * hold (the slots mkfs laid out), and the volume size that reaching it
 * gives (the size vmfs grow can go to at most).
 */
void vol_grow_max(const struct vol_geom *g, uint64_t *max_file_blocks,
		  uint64_t *max_size_bytes);
/* The geometry vol_grow would write for a LUN of lun_bytes (no I/O). */
int vol_grow_layout(const struct vol_geom *old, uint64_t lun_bytes,
		    struct vol_geom *g, struct vol_grow_result *r);

/* The journal region of heartbeat slot s. */
uint64_t vol_jnl_offset(const struct vol_geom *g, uint32_t slot);
/* Home addresses a journal may write: the metadata areas after the
 * journal regions, up to the backup header. */
struct jnl_bounds vol_jnl_bounds(const struct vol_geom *g);

/* ---- open / close ----------------------------------------------------- */

#define VOL_RDONLY 0x1
/*
 * With VOL_RDONLY: open even when journals hold transactions (a host has
 * the volume mounted, or crashed), and see only what is written home.
 * For listings that name things (`vmfs locks` resolving inode numbers to
 * paths), never for anything that decides or repairs.
 */
#define VOL_STALE_OK 0x2
/* Replay only journal_slot's journal (the others are recovered through
 * their heartbeat slots, vol_recover_slot). */
#define VOL_OWN_JOURNAL 0x4

struct vol_open_opts {
	unsigned flags;          /* VOL_RDONLY, VOL_STALE_OK */
	uint32_t journal_slot;   /* the heartbeat slot this host holds */
	uint32_t commit_ms;      /* journal commit interval (0: 1000 ms) */
	uint64_t cache_bytes;    /* cache budget (0: VOL_CACHE_DEFAULT_BYTES) */
};

/*
 * The engine's caches share one budget: the resource-cluster state loaded
 * at mount plus the directory indexes and pointer-block caches.  Over it,
 * the least recently used indexes and pointer-block caches that no
 * operation is using are dropped (they reload from disk).  An inode the
 * kernel has forgotten is freed when its last user is done; the inodes
 * the kernel still references are counted but stay, outside the budget.
 */
#define VOL_CACHE_DEFAULT_BYTES (256ull << 20)

struct vol_cache_stats {
	uint64_t budget_bytes;
	uint64_t used_bytes;     /* the three below */
	uint64_t fixed_bytes;    /* resource-cluster state (never evicted) */
	uint64_t index_bytes;    /* directory indexes and pointer blocks */
	uint64_t inode_bytes;    /* the cached inodes themselves */
	uint64_t inodes;         /* how many */
	uint64_t evictions;      /* indexes and pointer-block caches dropped */
};
void vol_cache_stats_get(struct vol *v, struct vol_cache_stats *s);

/*
 * Open a volume.  Read-write: replay every dirty journal (the caller has
 * made sure no other host is live), then journal into journal_slot.  A
 * read-only open writes nothing and fails with -VMFS_E_JNL_DIRTY when a
 * journal holds transactions to replay.
 */
int vol_open_ex(struct lun *lun, const struct vol_open_opts *o,
		struct vol **out);
/*
 * Sharing the volume with other hosts (vol/cluster.c, docs/PROTOCOL.md).
 * Without vol_cluster_start a volume is a single host's, as in tools and
 * tests.  vmfsd starts it once the volume is open: it takes the volume
 * lock (EXCLUSIVE alone, MULTIWRITER shared, waiting for a lone holder to
 * switch and recovering dead holders on the way) and starts the thread
 * that watches other hosts every renewal interval.  vol_close stops it.
 */
struct vol_cluster_opts {
	struct lun *hb_lun;        /* the heartbeat's handle: slots */
	/* The handle lock records are changed through: not the heartbeat's,
	 * so that on a LUN without ATS the renewals never queue behind this
	 * host's own lock changes for the reservation (NULL: hb_lun). */
	struct lun *lock_lun;
	uint64_t hb_offset;
	const uint8_t *host_uuid;  /* VMFS_UUID_SIZE */
	uint32_t my_slot;
	uint64_t my_hb_gen;
	unsigned prim;             /* LOCK_PRIM_* of the heartbeat */
	/* This host's heartbeat, joined with hb_opts.asks: hosts that
	 * cannot ask over the fast path ask on the disk (hb_want), and this
	 * host reads their wants (docs/PROTOCOL.md §9a).  NULL: no disk
	 * asks; locks are kept only while the fast path can ask. */
	struct hb *hb;
	struct hb_timeouts t;
	char *why;                 /* -EROFS: the read-only hosts in the way */
	size_t why_len;
};
/* -EROFS: read-only hosts hold the volume (o->why names them); -EBUSY:
 * other hosts did not let go of the volume lock in time. */
int vol_cluster_start(struct vol *v, const struct vol_cluster_opts *o);
void vol_cluster_stop(struct vol *v);
bool vol_cluster_is_shared(struct vol *v);

/*
 * The cluster fast path (corosync CPG, lockmgr/clusternet.c) as the
 * engine sees it; vmfsd plugs it in once it has joined the volume's
 * group (vol_cluster_set_net) and takes it out before it leaves (NULL).
 * The disk stays the only authority: nothing the fast path says can make
 * the engine write without its on-disk lock or break a live host's lock.
 * It only makes waiting shorter and lets a host keep its locks between
 * operations (docs/PROTOCOL.md §9).
 */
struct vol_net_ops {
	/* Ask holder h to let go of the lock at addr, which we want in
	 * mode.  0: it answered (released, or it no longer holds it): look
	 * at the disk again now; -EBUSY: it keeps it (files open there);
	 * -ETIMEDOUT: no answer in timeout_ms; -ENOTCONN: h is not in our
	 * group, or the fast path is down.  Any error: the disk-only wait
	 * goes on. */
	int (*ask_release)(void *arg, const struct lock_holder *h,
			   uint64_t addr, enum vmfs_lock_mode mode,
			   unsigned timeout_ms);
	/* Is host h in our group now (same UUID, slot and generation)? */
	bool (*is_member)(void *arg, const struct lock_holder *h);
	/* The lock at addr, which a member asked for, is released now. */
	void (*released)(void *arg, uint64_t addr);
};
void vol_cluster_set_net(struct vol *v, const struct vol_net_ops *ops,
			 void *arg);
/*
 * A member asks us to let go of the lock at addr (any thread; never
 * blocks).  -EINPROGRESS: queued for the handover worker, which lets go
 * of it once its changes are home and no operation uses it (or brings it
 * down to what files open here need) and then calls ops->released;
 * -EBUSY: files open here keep it in a mode that conflicts with want
 * (the asker goes by the disk); 0: no cluster running here, answer at
 * once; -ENOMEM.
 */
int vol_cluster_release_request(struct vol *v, uint64_t addr,
				enum vmfs_lock_mode want);
/*
 * Membership changed (any thread).  left: the host in heartbeat slot
 * `slot` left our group: the watcher reads its heartbeat closely from
 * now on and recovers it the moment the disk says it is dead (leaving
 * the group alone never breaks a lock).  Either way the engine checks
 * whether it may keep caching locks (only while every other live host
 * is a member and can ask).
 */
void vol_cluster_membership(struct vol *v, bool left, uint32_t slot);
/*
 * The heartbeat slots as the watcher last read them (it reads them every
 * quarter renewal), if that read is at most max_age_ms old: the slots in
 * use, as hb_survey gives them, into si[max] and *n.  -EAGAIN: no such
 * read (not shared yet, the watcher stalled, fenced): read them yourself.
 */
int vol_cluster_slots(struct vol *v, int64_t max_age_ms,
		      struct hb_slot_info *si, uint32_t max, uint32_t *n);
/* What the engine does with the fast path, for vmfs info and hosts. */
struct vol_net_stats {
	bool caching;             /* keeps its locks between operations */
	uint64_t cached;          /* locks held as a cache now */
	uint64_t asked, answered, ask_timeouts;  /* our requests */
	uint64_t requests, handed;               /* members' requests */
	uint64_t disk_asked;      /* our wants on the disk (§9a) */
	uint64_t disk_requests;   /* others' wants for a lock held here */
	uint64_t disk_busy;       /* ... answered "kept" */
	uint64_t entries;         /* lock-table entries: locks held, files
				   * open, generations remembered (bounded,
				   * vol/cluster.c VHELD_KEEP) */
};
void vol_cluster_net_stats(struct vol *v, struct vol_net_stats *s);
/*
 * The kernel's caches of names and attributes (the FUSE adapter's).  The
 * kernel may keep what a reply tells it only while nothing can change
 * behind this host: while it works alone on the volume (it holds the
 * volume lock EXCLUSIVE), or, shared, while it keeps the covering lock
 * (EXCLUSIVE or READONLY) as a cache that every other host can ask for
 * (over the fast path or on the disk); never once fenced.  For each
 * reply the adapter reads the epoch before the operation and asks
 * vol_kcache_hold(ino, epoch) after it: for ino's
 * attributes, and for the names in directory ino.  True means the kernel
 * may keep them; the adapter remembers what it let the kernel keep.
 *
 * Before that stops being true the engine makes the adapter forget:
 * drop_all (another host mounts, the host is fenced, the fast path
 * ends) or drop_ino (a lock is handed over or let go: ino's attributes
 * and the names in it).  Only once it returned does another host get to
 * change anything.  Both return once the kernel forgot, or once what it
 * was told to forget has expired there (the adapter knows when): a
 * request being served may hold the directory's lock in the kernel.
 * drop_attr(ino): the engine changed ino's attributes on its own (a link
 * drop another host left pending); any thread.
 */
struct vol_kcache_ops {
	void (*drop_all)(void *arg);
	void (*drop_ino)(void *arg, uint64_t ino);
	void (*drop_attr)(void *arg, uint64_t ino);
};
/* Plug the adapter in (NULL: take it out, once the kernel is gone). */
void vol_kcache_set(struct vol *v, const struct vol_kcache_ops *ops,
		    void *arg);
uint64_t vol_kcache_epoch(struct vol *v);
bool vol_kcache_hold(struct vol *v, uint64_t ino, uint64_t epoch);
/* Alone on the volume: what the kernel keeps changes only through us
 * (it may keep it longer). */
bool vol_kcache_alone(struct vol *v);
/* May the kernel keep something under ino now (alone, or its lock keeps
 * or is forgetting a grant)?  For renames, which move what it keeps. */
bool vol_kcache_covered(struct vol *v, uint64_t ino);
/* The host was fenced (any thread, never blocks): the watcher makes the
 * kernel forget what it keeps at once, not at its next tick. */
void vol_cluster_fenced(struct vol *v);
/*
 * The open lock of a file (FUSE open/create and release): held on disk
 * for as long as the file is open on this host while the volume is
 * shared (taken on disk at the switch when it becomes shared).  -EBUSY
 * when another host holds it in a conflicting mode (logged with the
 * holder's name, UUID and slot).
 */
int vol_open_file(struct vol *v, uint64_t ino, bool write);
/* The same, naming the holder ("host NAME (UUID, slot N)") in holder
 * when it fails with -EBUSY. */
int vol_open_file_who(struct vol *v, uint64_t ino, bool write, char *holder,
		      size_t holder_len);
/* vol_open_file's positive answer: a multi-writer file, which must be
 * opened for direct I/O (no host may cache its data). */
#define VOL_OPEN_DIRECT 1
/* The extended attribute that reads and sets a file's multi-writer flag
 * ("on"/"off"; on needs an eagerzeroedthick disk nobody has open). */
#define VOL_XATTR_MULTIWRITER "trusted.vmfs.multi_writer"
void vol_release_file(struct vol *v, uint64_t ino, bool write);
/*
 * Let go of the lock of inode ino if it stays here only as the fast
 * path's cache (queued for the handover worker; not a member's request:
 * not counted as one, and no RELEASED goes out for it), so that the disk
 * soon shows it free: for locks other hosts read as state, such as a
 * VM's config (vmfsd/vm.c).  0, or -ENOMEM.
 */
int vol_file_uncache(struct vol *v, uint64_t ino);
/*
 * A VM's lock handover (docs/PROTOCOL.md §13).  vol_file_detach: from
 * now on the opens of ino on this host hold no lock on it; if this host
 * holds it, what it covers goes home and the lock is released on disk
 * (waits up to 10 s for that).  Writes, truncates and fallocates of a
 * detached file fail with -EIO; opens of it succeed without the lock
 * (VOL_OPEN_DIRECT: its data is never cached here); reads go to the LUN
 * and may see another host's writes half-done.  vol_file_attach takes
 * the lock as the opens here need it (-EBUSY naming the holder, and the
 * file stays detached); vol_file_detach_end: the file goes back to
 * normal once the last open of it here is closed (no lock is taken for
 * the opens left meanwhile).
 */
int vol_file_detach(struct vol *v, uint64_t ino);
int vol_file_attach(struct vol *v, uint64_t ino, char *holder,
		    size_t holder_len);
void vol_file_detach_end(struct vol *v, uint64_t ino);
/* "host NAME (UUID, slot N), ..." for the holders in st. */
void vol_lock_owner_text(struct vol *v, const struct lock_state *st,
			 char *out, size_t len);
/*
 * Recover a dead host's slot si: mark it being-replayed (only one host
 * wins: -VMFS_E_MISCOMPARE for the others), replay its journal into lun,
 * free the slot.  For vmfsd before it joins (its own crashed slot) and
 * for the watcher thread.
 */
int vol_recover_slot(struct lun *lun, struct lun *hb_lun,
		     const struct vol_geom *g, unsigned prim,
		     const struct hb_timeouts *t,
		     const struct hb_slot_info *si);

/* vol_open_ex with slot 0 and the defaults. */
int vol_open(struct lun *lun, unsigned flags, struct vol **out);
/* Commit, write everything home, mark the journal clean, free; the lun
 * stays open (the caller owns it). */
int vol_close(struct vol *v);
/* Make every completed change durable (what fsync does for a file). */
int vol_sync(struct vol *v);
/* Journal counters (all zero on a read-only volume). */
void vol_journal_stats(struct vol *v, struct jnl_stats *s);
void vol_geom_get(struct vol *v, struct vol_geom *g);
void vol_usage_get(struct vol *v, struct vol_usage *u);

/* ---- attributes ------------------------------------------------------- */

struct vol_attr {
	uint64_t ino;
	uint64_t generation;   /* incarnation of the inode slot */
	uint32_t mode;
	uint32_t nlink;
	uint32_t uid, gid;
	uint64_t rdev;
	uint64_t size;
	uint64_t alloc_bytes;
	uint32_t blksize;      /* preferred I/O size */
	uint32_t flags;        /* VMFS_DI_* */
	struct timespec atime, mtime, ctime, btime;
};

/* vol_setattr mask */
#define VOL_SET_MODE   0x01
#define VOL_SET_UID    0x02
#define VOL_SET_GID    0x04
#define VOL_SET_SIZE   0x08
#define VOL_SET_ATIME  0x10
#define VOL_SET_MTIME  0x20
#define VOL_SET_ATIME_NOW 0x40
#define VOL_SET_MTIME_NOW 0x80
#define VOL_SET_CTIME  0x100

struct vol_setattr {
	uint32_t mode, uid, gid;
	uint64_t size;
	struct timespec atime, mtime, ctime;
};

int vol_getattr(struct vol *v, uint64_t ino, struct vol_attr *a);
int vol_setattr(struct vol *v, uint64_t ino, const struct vol_setattr *sa,
		unsigned mask, struct vol_attr *a);
int vol_statfs(struct vol *v, struct statvfs *st);

/* ---- namespace -------------------------------------------------------- */

int vol_lookup(struct vol *v, uint64_t parent, const char *name,
	       struct vol_attr *a);
void vol_ref(struct vol *v, uint64_t ino);
/* True when no reference of the kernel's is left. */
bool vol_forget(struct vol *v, uint64_t ino, uint64_t n);

/* mode carries the file type: S_IFREG (also FIFO, socket, devices). */
int vol_create(struct vol *v, uint64_t parent, const char *name,
	       uint32_t mode, uint32_t uid, uint32_t gid, uint64_t rdev,
	       struct vol_attr *a);
int vol_mkdir(struct vol *v, uint64_t parent, const char *name,
	      uint32_t mode, uint32_t uid, uint32_t gid, struct vol_attr *a);
int vol_symlink(struct vol *v, uint64_t parent, const char *name,
		const char *target, uint32_t uid, uint32_t gid,
		struct vol_attr *a);
int vol_link(struct vol *v, uint64_t ino, uint64_t newparent,
	     const char *newname, struct vol_attr *a);
int vol_unlink(struct vol *v, uint64_t parent, const char *name);
int vol_rmdir(struct vol *v, uint64_t parent, const char *name);

#define VOL_RENAME_NOREPLACE 0x1  /* == RENAME_NOREPLACE */
#define VOL_RENAME_EXCHANGE  0x2  /* == RENAME_EXCHANGE */
int vol_rename(struct vol *v, uint64_t parent, const char *name,
	       uint64_t newparent, const char *newname, unsigned flags);

/* Returns the target length (may exceed size; copies at most size bytes,
 * no NUL added). */
ssize_t vol_readlink(struct vol *v, uint64_t ino, char *buf, size_t size);

/*
 * Directory listing.  cookie 0 starts; "." and ".." come first.  cb gets
 * each entry with the cookie that resumes after it and returns non-zero to
 * stop (the entry it was handed is then not consumed).  Cookies stay
 * valid while entries are added and removed (entries never move).  With
 * plus, attr is filled in; otherwise only ino and mode's type bits are.
 */
typedef int (*vol_readdir_cb)(void *ctx, const char *name,
			      const struct vol_attr *attr, uint64_t next_cookie);
int vol_readdir(struct vol *v, uint64_t ino, uint64_t cookie, bool plus,
		vol_readdir_cb cb, void *ctx);

/* ---- data ------------------------------------------------------------- */

/*
 * Read/write any byte range (no alignment needed; aligned requests on
 * sector boundaries go straight to the LUN with no copy of the data
 * when buf is sector aligned).  Reads past EOF are short; holes and
 * to-be-zeroed blocks read as zeros.  A write to a never-written part of
 * a block zeroes the rest of the block first, so no file ever shows bytes
 * another file left on the LUN.
 */
ssize_t vol_read(struct vol *v, uint64_t ino, void *buf, size_t len,
		 uint64_t off);
ssize_t vol_write(struct vol *v, uint64_t ino, const void *buf, size_t len,
		  uint64_t off);
/* Make the file's data and the metadata that reaches it durable. */
int vol_fsync(struct vol *v, uint64_t ino, bool datasync);

/*
 * mode is fallocate(2)'s: 0 and FALLOC_FL_KEEP_SIZE allocate (new blocks
 * are to-be-zeroed), FALLOC_FL_PUNCH_HOLE|KEEP_SIZE frees, and
 * FALLOC_FL_ZERO_RANGE allocates and zeroes on the LUN (eager zeroing).
 * Others give -EOPNOTSUPP.
 */
int vol_fallocate(struct vol *v, uint64_t ino, int mode, uint64_t off,
		  uint64_t len);

/* ---- extended attributes ---------------------------------------------- */
int vol_setxattr(struct vol *v, uint64_t ino, const char *name,
		 const void *value, size_t size, int flags);
/* size 0: return the value's length. -ERANGE when size is too small. */
ssize_t vol_getxattr(struct vol *v, uint64_t ino, const char *name,
		     void *buf, size_t size);
ssize_t vol_listxattr(struct vol *v, uint64_t ino, char *buf, size_t size);
int vol_removexattr(struct vol *v, uint64_t ino, const char *name);

/* ---- for fsck and tools: writers that work on a volume that is not open -- */

/*
 * fsck repairs volumes vol_open refuses: it reads through its journal
 * overlay, writes without a journal, and allocates from the bitmaps it
 * rebuilt rather than from the damaged ones on disk.  These writers build
 * the same bytes as the engine's (vol/inode.c, vol/bmap.c, vol/dir.c; the
 * image-level code is shared) but take what they need explicitly: the
 * geometry and the caller's block reader, writer and allocator.
 *
 * Blocks are whole 4 KiB metadata blocks, lock record included; a write
 * bumps the block's generation and seals it.  Nothing read is trusted: a
 * pointer outside its area or with unknown flag bits, and a pointer block
 * or directory chunk that fails its envelope, owner, level or index
 * check, is a hole.  Errors of the callbacks are returned as they are.
 */
struct vol_raw {
	const struct vol_geom *g;
	/* Read / write the metadata block at addr. */
	int (*md_read)(void *ctx, void *blk, uint64_t addr);
	int (*md_write)(void *ctx, const void *blk, uint64_t addr);
	/* Take a free object of area t for owner (-ENOSPC: none left). */
	int (*res_alloc)(void *ctx, enum vmfs_res_type t, uint64_t owner,
			 uint64_t *idx);
	void *ctx;
};

/* Read / write inode ino's block (-EINVAL: ino is past the inode area). */
int vol_raw_inode_read(const struct vol_raw *r, uint64_t ino, uint8_t *blk);
int vol_raw_inode_write(const struct vol_raw *r, uint64_t ino, uint8_t *blk);
/* Rewrite slot ino, which held old, as a free inode (mode 0), keeping
 * its incarnation: what a handle to the old file sees stays stale. */
int vol_raw_inode_clear(const struct vol_raw *r, uint64_t ino,
			const uint8_t *old);
/* Write a new, empty directory at slot ino (next incarnation, nlink 2). */
int vol_raw_dir_create(const struct vol_raw *r, uint64_t ino,
		       uint64_t parent, uint32_t perm);
/* Add the deltas to ino's di_nlink and di_nentries; blk gets the inode
 * as written. */
int vol_raw_inode_adjust(const struct vol_raw *r, uint64_t ino, uint8_t *blk,
			 int nlink_delta, int nentries_delta);

/* Pointer of logical block lbn of the inode image iblk (0: a hole). */
int vol_raw_bmap_get(const struct vol_raw *r, const uint8_t *iblk,
		     uint64_t lbn, uint64_t *ptr);
/*
 * Visit every valid pointer of iblk's map, depth first: cb gets the
 * object (area t, index idx) and its level (0: data, 1..4: a pointer
 * block of that level) and returns 1 to descend into a pointer block,
 * 0 not to, or a negative error to stop with.
 */
typedef int (*vol_raw_ptr_cb)(void *ctx, enum vmfs_res_type t, uint64_t idx,
			      int level);
int vol_raw_bmap_walk(const struct vol_raw *r, const uint8_t *iblk,
		      vol_raw_ptr_cb cb, void *ctx);

/*
 * Add name -> ino (type DT_*) to directory dir: the first free slot from
 * chunk *hint on (0 when past the end), else a new chunk, mapped in a new
 * small block (direct pointers only: -ENOSPC beyond them).  The directory
 * inode is written with the entry (size, map, di_nentries, and di_nlink
 * for a subdirectory); iblk gets it as written, *hint the chunk used and
 * *loc the entry's place (chunk address | slot).  The caller made sure
 * the name is not there.
 */
int vol_raw_dir_add(const struct vol_raw *r, uint64_t dir, const char *name,
		    uint64_t ino, uint8_t type, uint8_t *iblk, uint32_t *hint,
		    uint64_t *loc);
/* Remove the entry at loc from directory dir and write dir's counts
 * (iblk gets its inode as written); *ino and *type say what it named.
 * -ESTALE when loc holds no entry of dir. */
int vol_raw_dir_remove(const struct vol_raw *r, uint64_t dir, uint64_t loc,
		       uint8_t *iblk, uint64_t *ino, uint8_t *type);
/* 0 when dir has an entry name (a linear scan), else -ENOENT. */
int vol_raw_dir_find(const struct vol_raw *r, uint64_t dir, const char *name);

#endif /* VMFS_VOL_H */
