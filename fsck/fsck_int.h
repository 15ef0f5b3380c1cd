/*
 * Private interfaces of the checker.
 *
 * fsck reads raw blocks itself (lun_read + lun_md_verify): it must work
 * on volumes the engine refuses to open.  Its repairs of inodes and
 * directory entries, and its walks of block maps after pass 3, go through
 * the engine's writers for a volume that is not open (vol_raw_*,
 * vmfs/vol.h), the way e2fsck repairs through lib/ext2fs; repair.c gives
 * them fsck's reader, checked writer and allocator.
 *
 * State handed from pass to pass lives in struct fsck_ctx:
 *   - per-object bitmaps, one bit per object, always in memory: what the
 *     cluster headers say is in use (disk_bm), what fsck found an owner
 *     for (owned; for inodes: valid in-use inodes), directories, ...;
 *   - u64 -> u64 maps (map.c) for owners, link counts, parents: an
 *     in-memory hash up to opts->mem_limit_bytes, spilling beyond that to
 *     on-disk Tokyo Cabinet B+trees in a private temp directory.
 *
 * Repairs that allocate or free objects (cloning, lost+found chunks,
 * orphans) update disk_bm and mark the cluster dirty, so pass 6 writes
 * the bitmap without reporting fsck's own changes as problems.
 *
 * Operational errors (I/O, memory, spill files) go through fsck_fail():
 * exit bit 8, a message in result->error, and c->abort stops the passes.
 */
#ifndef VMFS_FSCK_INT_H
#define VMFS_FSCK_INT_H

#include <endian.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include "vmfs/format.h"
#include "vmfs/fsck.h"
#include "vmfs/journal.h"
#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"

#define FSCK_OBJ_LEN (VMFS_MD_BLOCK_SIZE - VMFS_OBJ_OFFSET) /* bh_len of lockable objects */
#define FSCK_BATCH 256u          /* metadata blocks per read */
#define FSCK_MAX_DUPS (1u << 20) /* duplicate claims remembered for cloning */

/* ---- maps (map.c) ------------------------------------------------------ */

struct fsck_ctx;
struct fsck_map;

struct fsck_map *fsck_map_open(struct fsck_ctx *c, const char *name);
void fsck_map_close(struct fsck_ctx *c, struct fsck_map *m);
/* Value of k, or 0 with *found false (found may be NULL). */
uint64_t fsck_map_get(struct fsck_ctx *c, struct fsck_map *m, uint64_t k,
		      bool *found);
void fsck_map_set(struct fsck_ctx *c, struct fsck_map *m, uint64_t k,
		  uint64_t v);
/* Add delta (may be negative) to k's value (0 when absent); new value. */
uint64_t fsck_map_add(struct fsck_ctx *c, struct fsck_map *m, uint64_t k,
		      int64_t delta);
void fsck_map_del(struct fsck_ctx *c, struct fsck_map *m, uint64_t k);
void fsck_map_clear(struct fsck_ctx *c, struct fsck_map *m);
/* Remove the spill directory (end of the run). */
void fsck_maps_cleanup(struct fsck_ctx *c);

/* ---- context ------------------------------------------------------------ */

/* What fsck knows about one heartbeat slot (pass 1 fills it). */
struct fsck_slot {
	bool valid;                  /* the slot block verified */
	enum vmfs_hb_state state;
	uint64_t hb_gen;
	uint8_t uuid[VMFS_UUID_SIZE];
	bool live;                   /* counter moved while we watched */
	char hostname[65];
	/* Read-only run: active but not live, reported after pass 2 as a
	 * note when its journal is sound (jnl_sound), else as a problem. */
	bool stale;
	bool jnl_sound;              /* pass 2 found nothing wrong with it */
};

/* cluster flags */
#define FSCK_CL_BAD   0x1  /* header failed verification: bits unknown */
#define FSCK_CL_DIRTY 0x2  /* fsck changed disk_bm: rewrite in pass 6 */
#define FSCK_CL_REBUILD 0x4 /* rebuild from ownership in pass 6 */
#define FSCK_CL_UNINIT 0x8  /* VMFS_RC_UNINIT, nothing in use: objects unread */
#define FSCK_CL_INITED 0x10 /* drop VMFS_RC_UNINIT in pass 6 (PR_3_CLUSTER_UNINIT) */
#define FSCK_CL_GROWCUT 0x20 /* counts fewer objects than the geometry: a
			     * grow cut before its step 4 (vol_rc_grow_cut) */

struct fsck_res {
	uint64_t count;
	uint8_t *disk_bm;   /* in use per the cluster headers (and fsck's changes) */
	uint8_t *owned;     /* fsck found an owner (inodes: valid, in use) */
	uint8_t *clflags;   /* per cluster, FSCK_CL_* */
	uint64_t rotor;     /* next object fsck_obj_alloc tries */
};

/* A block claimed a second time (pass 3), cloned by pass3_dup.c. */
struct fsck_dup {
	uint64_t ino;          /* the second claimant */
	uint64_t holder;       /* address of the block holding the pointer */
	uint32_t slot;         /* index in di_map or pb_ptr */
	bool in_inode;         /* holder is the inode block */
	uint8_t type;          /* VMFS_RES_SMALL or VMFS_RES_FILE */
	uint64_t idx;          /* object claimed twice */
};

struct fsck_ctx {
	struct lun *lun;
	const struct fsck_opts *o;
	struct fsck_result *r;
	struct vol_geom g;
	uint32_t ss;
	bool writable;               /* mode != NO */
	bool wrote;
	bool abort;                  /* operational error: stop */
	int header_which;            /* 0 primary, 1 backup used */

	struct fsck_slot *slots;     /* g.max_hosts */
	uint32_t nlive;

	struct fsck_res res[VMFS_RES_NTYPES];
	uint8_t *isdir;              /* per inode */
	uint8_t *orphan;             /* per inode: rc_orphan bit (unlinked while open) */
	uint64_t orphans;            /* of those, found with no links (pass 5) */
	uint8_t *unlinked;           /* per inode: rc_unlinked bit (a link drop pending) */
	uint64_t pending;            /* of those, drops counted by pass 5 */
	uint8_t *reached;            /* per inode, pass 4 connectivity */
	uint8_t *onpath;             /* per inode, pass 4 walk in progress */

	struct fsck_map *own;        /* (type << 56 | idx) -> owner ino */
	struct fsck_map *imode;      /* ino -> mode | nlink << 32 (on disk) */
	struct fsck_map *links;      /* ino -> entries naming it */
	struct fsck_map *parent;     /* dir -> directory holding its entry */
	struct fsck_map *dloc;       /* dir -> chunk address | slot of that entry */
	struct fsck_map *dparent;    /* dir -> di_parent on disk */
	struct fsck_map *nent;       /* dir -> live entries found */
	struct fsck_map *names;      /* per directory: name key -> position */

	struct fsck_dup *dups;
	size_t ndups, capdups;

	/* overlay.c: committed journal images a read-only run reads through */
	struct fsck_overlay *ovl;

	/* repair.c: the engine's writers' view of this run, and where
	 * the last fsck_dir_add found room */
	struct vol_raw raw;
	uint64_t add_dir;
	uint32_t add_hint;

	/* map.c */
	char tmpdir[4096];
	bool tmpdir_made;
	unsigned nspill;
	uint64_t map_bytes;
};

static inline bool bm_test(const uint8_t *bm, uint64_t i)
{
	return bm[i >> 3] & (1u << (i & 7));
}
static inline void bm_set(uint8_t *bm, uint64_t i)
{
	bm[i >> 3] |= (uint8_t)(1u << (i & 7));
}
/* Links of inode ino that di_nlink still counts though their entry is
 * gone: a drop another host left pending (rc_unlinked, SPEC §8). */
static inline uint32_t fsck_pending_links(const struct fsck_ctx *c,
					  uint64_t ino)
{
	return bm_test(c->unlinked, ino) ? 1 : 0;
}

static inline void bm_clr(uint8_t *bm, uint64_t i)
{
	bm[i >> 3] &= (uint8_t)~(1u << (i & 7));
}

/* The old name, for fsck/bmap.c until it goes; new code says vmfs_ptr_addr. */
#define fsck_ptr_addr vmfs_ptr_addr

static inline uint64_t fsck_own_key(enum vmfs_res_type t, uint64_t idx)
{
	return (uint64_t)t << 56 | idx;
}

static inline struct vmfs_inode *fsck_di(uint8_t *blk)
{
	return (struct vmfs_inode *)(blk + VMFS_OBJ_OFFSET);
}

/* ---- run.c: I/O, objects, failures -------------------------------------- */

/* Record an operational error (exit 8) and stop the run. */
void fsck_fail(struct fsck_ctx *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* vmfs_strerror() without the advice to run fsck (thread-local buffer). */
const char *fsck_err(int err);
void fsck_info(struct fsck_ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void fsck_progress(struct fsck_ctx *c, int pass, const char *name,
		   uint64_t done, uint64_t total);

/*
 * Read; failures are operational errors (fsck_fail).  Blocks in the
 * journal overlay (overlay.c) read as the journal has them.
 */
int fsck_read(struct fsck_ctx *c, void *buf, size_t len, uint64_t off);
/*
 * A read buffer for batches of metadata blocks from a run of nblocks:
 * min(nblocks, FSCK_BATCH) blocks, so a loop reading at most FSCK_BATCH
 * at a time fits, and a small volume does not map a whole batch for two
 * cluster headers (lun_buf_free it).
 */
uint8_t *fsck_batch_alloc(uint64_t nblocks);
/* The most cluster headers any area has (for fsck_batch_alloc). */
uint64_t fsck_max_clusters(const struct fsck_ctx *c);
/*
 * Write a metadata block fsck computed the address of.  Refused (a bug,
 * reported as an operational error) in -n mode or outside the metadata
 * areas of the geometry.
 */
int fsck_write_md(struct fsck_ctx *c, const void *buf, size_t len,
		  uint64_t off);
/* Write into a small or file block fsck allocated (cloning). */
int fsck_write_data(struct fsck_ctx *c, const void *buf, size_t len,
		    uint64_t off);

/* Bump the generation and seal a block header. */
void fsck_seal(void *hdr, uint32_t magic, uint64_t self, uint32_t len);

uint64_t fsck_obj_addr(const struct fsck_ctx *c, enum vmfs_res_type t,
		       uint64_t idx);
/* Object index at addr in area t, or -1 (outside or misaligned). */
int64_t fsck_obj_index(const struct fsck_ctx *c, enum vmfs_res_type t,
		       uint64_t addr);
uint64_t fsck_inode_addr(const struct fsck_ctx *c, uint64_t ino);
/* Object idx of area t lies in a never-initialised cluster (pass 3 on). */
bool fsck_uninit(const struct fsck_ctx *c, enum vmfs_res_type t, uint64_t idx);
/* Have pass 6 rewrite the cluster header of object idx of area t. */
void fsck_cluster_dirty(struct fsck_ctx *c, enum vmfs_res_type t,
			uint64_t idx);
uint64_t fsck_cluster_addr(const struct fsck_ctx *c, enum vmfs_res_type t,
			   uint32_t cl);

/*
 * Claim object idx of type t for ino.  Returns false when it was already
 * owned (*prev gets the first owner).
 */
bool fsck_claim(struct fsck_ctx *c, enum vmfs_res_type t, uint64_t idx,
		uint64_t ino, uint64_t *prev);
void fsck_unclaim(struct fsck_ctx *c, enum vmfs_res_type t, uint64_t idx);
/* Allocate a free object (neither owned nor marked) for ino. */
int fsck_obj_alloc(struct fsck_ctx *c, enum vmfs_res_type t, uint64_t ino,
		   uint64_t *idx);
/* Mark an object free in the bitmap fsck will write (repairs only). */
void fsck_obj_release(struct fsck_ctx *c, enum vmfs_res_type t, uint64_t idx);


/* ---- overlay.c: the journal as a read-only run sees it ------------------ */

/* Add the image of one committed block (later additions win). */
int fsck_overlay_add(struct fsck_ctx *c, uint64_t addr, uint32_t flags,
		     const uint8_t *img);
/* Done adding: index the images; returns how many addresses there are. */
size_t fsck_overlay_seal(struct fsck_ctx *c);
/* Patch every image overlapping [off, off+len) into buf. */
void fsck_overlay_apply(const struct fsck_ctx *c, void *buf, size_t len,
			uint64_t off);
void fsck_overlay_free(struct fsck_ctx *c);

/* ---- fix.c -------------------------------------------------------------- */

/*
 * A problem was found: decide by mode whether to repair, count it, set
 * the exit bits and report it.  Returns true when the caller must repair.
 */
bool fsck_fix(struct fsck_ctx *c, enum fsck_problem code, uint64_t addr,
	      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A problem fsck cannot repair (or could not): report it unfixed. */
void fsck_unfixed(struct fsck_ctx *c, enum fsck_problem code, uint64_t addr,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A problem that is information only (fsck_opts.note): no exit bit. */
void fsck_note(struct fsck_ctx *c, enum fsck_problem code, uint64_t addr,
	       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- repair.c: fsck's side of the engine's writers (vol_raw_*) ---------- */

/* The vol_raw the engine's writers use for this run: fsck_read,
 * fsck_write_md and fsck_obj_alloc. */
const struct vol_raw *fsck_raw(struct fsck_ctx *c);
/*
 * Drop ownership of everything the inode owns (orphans, replaced inodes);
 * with release, also mark it free in the bitmaps pass 6 writes.
 */
int fsck_inode_unown(struct fsck_ctx *c, uint8_t *iblk, bool release);
/* Add name -> ino to directory dir (vol_raw_dir_add), with fsck's maps. */
int fsck_dir_add(struct fsck_ctx *c, uint64_t dir, const char *name,
		 uint64_t ino, uint8_t dtype);
/* Remove the entry at loc (chunk address | slot) of directory dir. */
int fsck_dir_remove(struct fsck_ctx *c, uint64_t dir, uint64_t loc);
/* Add delta to an inode's nlink and nentries on disk. */
int fsck_inode_adjust(struct fsck_ctx *c, uint64_t ino, int nlink_delta,
		      int nentries_delta);

/* ---- passes ------------------------------------------------------------- */

int fsck_pass0(struct fsck_ctx *c);
int fsck_pass1(struct fsck_ctx *c);
int fsck_pass2(struct fsck_ctx *c);
/* End of pass 2: report the stale slots pass 1 left to be judged with
 * their journals (a note when the journal is sound, else a problem). */
void fsck_stale_slots_settle(struct fsck_ctx *c);
int fsck_pass3(struct fsck_ctx *c);
int fsck_pass3_dups(struct fsck_ctx *c);
int fsck_pass4(struct fsck_ctx *c);
int fsck_pass5(struct fsck_ctx *c);
int fsck_pass6(struct fsck_ctx *c);

/* pass1_hb.c: which hosts are live (before pass 0 writes anything). */
int fsck_hosts_survey(struct fsck_ctx *c);
/*
 * Check the lock record in the first 512 bytes of blk (a lockable block
 * at addr); fixes it in blk.  Returns true when blk changed.
 */
bool fsck_lock_check(struct fsck_ctx *c, uint8_t *blk, uint64_t addr,
		     const char *what);

#endif /* VMFS_FSCK_INT_H */
