/*
 * Private interfaces of the corruption tool (corrupt_damage, ocfs2's
 * fswreck).  corrupt.c holds the entry point, the code table and
 * the block, bitmap and report helpers below; corrupt_scan.c reads the
 * picture of the volume (inodes, block maps, directory entries);
 * corrupt_hdr.c, corrupt_jnl.c, corrupt_inode.c, corrupt_dir.c and
 * corrupt_bitmap.c hold one damage function per problem code of passes
 * 0-2 (headers), 2 (journal contents), 3, 4-5 and 6.
 *
 * The tool works on the raw LUN, never through the engine: it reads the
 * geometry, walks bitmaps, inodes, block maps and directories itself and
 * keeps an in-memory picture of the volume (struct corrupt) from which a
 * damage function picks its target with the seeded generator.  The same
 * seed on the same image always picks the same target and writes the
 * same bytes.
 *
 * A damage function returns 0 after writing its damage, -ENOENT when the
 * volume has no suitable target (nothing written), or another negative
 * error.  It describes what it did with corrupt_say() and names every
 * file whose name, data or attributes the damage (or its repair) may
 * change with corrupt_target_ino()/corrupt_target_path(); those become
 * the "target-path: PATH" lines of the hint.
 */
#ifndef VMFS_TOOLS_CORRUPT_INT_H
#define VMFS_TOOLS_CORRUPT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vmfs/format.h"
#include "vmfs/fsck.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"
#include "corrupt.h"

/* Kinds of metadata block: where the header sits, its magic and length. */
enum corrupt_kind {
	CK_VOLUME,   /* volume header (either copy) */
	CK_LOCK,     /* lock record, first 512 bytes of a lockable block */
	CK_HBREGION, /* heartbeat-region header (object at 512) */
	CK_HBSLOT,   /* heartbeat slot */
	CK_JOURNAL,  /* journal-region header (object at 512) */
	CK_RC,       /* resource-cluster header (object at 512) */
	CK_INODE,    /* inode (object at 512) */
	CK_PTRBLK,   /* pointer block */
	CK_DIRBLK    /* directory chunk */
};

/* An allocated inode that verified, host order. */
struct corrupt_node {
	uint64_t ino;
	uint32_t mode, nlink, flags;
	uint64_t size, alloc_bytes, parent, nentries;
	uint16_t map_type, xattr_len;
	bool reached;            /* named by some directory entry */
};

/* A live directory entry, where it sits and the path it gives. */
struct corrupt_ent {
	uint64_t dir;            /* directory inode */
	uint32_t chunk;          /* chunk index within the directory */
	uint64_t caddr;          /* byte address of the chunk */
	uint32_t slot;           /* entry index in the chunk */
	uint64_t ino;
	uint8_t type;
	char *name;
	char *path;              /* absolute, "/" + names */
};

/* A directory chunk: where it is and how many live entries it holds. */
struct corrupt_chunk {
	uint64_t dir;
	uint32_t chunk;
	uint64_t addr;
	uint32_t live;
	uint32_t nfree_slots;
};

/*
 * A block pointer found by walking a map: in the inode's di_map (kind
 * CK_INODE, holder = inode block) or in a pointer block (CK_PTRBLK).
 * level 0 = points at a data block; k > 0 = points at a level-k pointer
 * block.
 */
struct corrupt_ptr {
	uint64_t ino;
	uint64_t lbn;            /* first logical block it covers */
	uint64_t val;            /* the pointer as stored (flags kept) */
	uint64_t holder;         /* address of the block holding it */
	uint32_t off;            /* byte offset of the pointer in that block */
	enum corrupt_kind holder_kind;
	int level;
};

struct corrupt {
	struct lun *lun;
	struct vol_geom g;
	uint64_t rng;
	uint8_t *blk;            /* scratch 4 KiB, aligned */
	/* The fields of the inode in blk: decoded by corrupt_inode_read,
	 * encoded into blk by corrupt_inode_write. */
	struct fmt_inode fi;
	bool loaded;
	struct corrupt_node *nodes;  /* ascending ino */
	size_t nnodes;
	struct corrupt_ent *ents;
	size_t nents, cap_ents;
	struct corrupt_chunk *chunks;
	size_t nchunks, cap_chunks;
	char desc[512];          /* corrupt_say() */
	char **tpaths;           /* corrupt_target_*() */
	size_t ntpaths;
	uint64_t target;         /* address of the damaged block */
};

/* A growable vector of 64-bit candidates. */
struct corrupt_vec {
	uint64_t *v;
	size_t n, cap;
};
int corrupt_vec_push(struct corrupt_vec *cv, uint64_t x);
void corrupt_vec_free(struct corrupt_vec *cv);

/* ---- seeded choices ---------------------------------------------------- */
uint64_t corrupt_rand(struct corrupt *c);
/* Uniform in [0, n); n > 0. */
uint64_t corrupt_pick(struct corrupt *c, uint64_t n);

/* ---- blocks ------------------------------------------------------------- */
int corrupt_read(struct corrupt *c, void *buf, uint64_t addr);   /* 4 KiB */
int corrupt_write(struct corrupt *c, const void *buf, uint64_t addr);
/* Bump the generation and reseal the header of kind k in blk (at addr). */
void corrupt_seal(void *blk, enum corrupt_kind k, uint64_t addr);
/* Header of kind k inside a 4 KiB block image. */
struct vmfs_blk_hdr *corrupt_hdr(void *blk, enum corrupt_kind k);
/*
 * Make the block of kind k at addr fail verification, in one of three
 * seeded ways: a flipped bit the crc catches, a wrong magic, or a
 * misdirected write (sealed for another address).  *how names it.
 */
int corrupt_break(struct corrupt *c, uint64_t addr, enum corrupt_kind k,
		  const char **how);

/* ---- the volume picture ------------------------------------------------- */
/* Read every allocated inode and walk the tree from the root (once). */
int corrupt_load(struct corrupt *c);
struct corrupt_node *corrupt_node(struct corrupt *c, uint64_t ino);
/* First path naming ino ("/" for the root, "?" when unreachable). */
const char *corrupt_path(struct corrupt *c, uint64_t ino);
uint64_t corrupt_inode_addr(const struct corrupt *c, uint64_t ino);
/* Inode block of ino into c->blk and c->fi / c->fi into c->blk, sealed. */
int corrupt_inode_read(struct corrupt *c, uint64_t ino);
int corrupt_inode_write(struct corrupt *c, uint64_t ino);
static inline struct vmfs_inode *corrupt_di(struct corrupt *c)
{
	return (struct vmfs_inode *)(c->blk + VMFS_OBJ_OFFSET);
}
/* Is ino allocated and not the root, lost+found or inode 0? */
bool corrupt_is_user(const struct corrupt *c, uint64_t ino);

/* Bitmaps: cluster header of object idx of area t. */
uint64_t corrupt_rc_addr(const struct corrupt *c, enum vmfs_res_type t,
			 uint32_t cl);
int corrupt_bit_get(struct corrupt *c, enum vmfs_res_type t, uint64_t idx,
		    bool *set);
/* Set or clear the bit of idx, keeping rc_nfree right; resealed. */
int corrupt_bit_put(struct corrupt *c, enum vmfs_res_type t, uint64_t idx,
		    bool set);
/*
 * Clusters whose header verifies, as (type << 32 | cluster index); with
 * used_only, only those with an object in use.
 */
int corrupt_clusters(struct corrupt *c, bool used_only,
		     struct corrupt_vec *out);
/* Index of the object at addr in area t, or -1. */
int64_t corrupt_res_index(const struct corrupt *c, enum vmfs_res_type t,
			  uint64_t addr);

/*
 * Walk the block map of ino: cb for every non-zero pointer, parents
 * before children.  Pointer blocks that fail verification are reported
 * but not descended into.  cb returns non-zero to stop.
 */
int corrupt_map_walk(struct corrupt *c, uint64_t ino,
		     int (*cb)(void *ctx, const struct corrupt_ptr *p),
		     void *ctx);
/* Every pointer of ino with level in [lo, hi] into *out (malloc'd). */
int corrupt_ptrs(struct corrupt *c, uint64_t ino, int lo, int hi,
		 struct corrupt_ptr **out, size_t *n);
/*
 * Pointers with level in [lo, hi] of every reachable inode for which
 * pred (may be NULL: all) says yes, concatenated in inode order.
 */
int corrupt_all_ptrs(struct corrupt *c,
		     bool (*pred)(const struct corrupt *c,
				  const struct corrupt_node *n),
		     int lo, int hi, struct corrupt_ptr **out, size_t *n);
/* Pick a reachable inode pred says yes to; -ENOENT when there is none. */
int corrupt_pick_node(struct corrupt *c,
		      bool (*pred)(const struct corrupt *c,
				   const struct corrupt_node *n),
		      struct corrupt_node **out);
/* Rewrite one pointer in its holder block and reseal the holder. */
int corrupt_ptr_set(struct corrupt *c, const struct corrupt_ptr *p,
		    uint64_t val);

/* Chunk images: read/write the chunk at addr through c->blk. */
static inline struct vmfs_dirblk *corrupt_db(struct corrupt *c)
{
	return (struct vmfs_dirblk *)c->blk;
}

/* ---- the report --------------------------------------------------------- */
void corrupt_say(struct corrupt *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Name every path of ino (the root: "/") as damaged. */
void corrupt_target_ino(struct corrupt *c, uint64_t ino);
void corrupt_target_path(struct corrupt *c, const char *path);

/* ---- the damage functions, one per code --------------------------------- */
typedef int (*corrupt_fn)(struct corrupt *c);

/* corrupt_hdr.c: passes 0-2 */
int corrupt_pr0_primary_bad(struct corrupt *c);
int corrupt_pr0_backup_bad(struct corrupt *c);
int corrupt_pr0_headers_differ(struct corrupt *c);
int corrupt_pr0_not_volume(struct corrupt *c);
int corrupt_pr0_geometry(struct corrupt *c);
int corrupt_pr1_hb_region_bad(struct corrupt *c);
int corrupt_pr1_hb_slot_bad(struct corrupt *c);
int corrupt_pr1_hb_slot_stale(struct corrupt *c);
int corrupt_pr1_lock_bad(struct corrupt *c);
int corrupt_pr1_lock_stale(struct corrupt *c);
int corrupt_pr1_lock_bad_mode(struct corrupt *c);
int corrupt_pr2_journal_bad(struct corrupt *c);
int corrupt_pr2_journal_slot(struct corrupt *c);

/* corrupt_jnl.c: pass 2, committed transactions in a journal ring */
int corrupt_pr2_journal_dirty(struct corrupt *c);
int corrupt_pr2_journal_record_bad(struct corrupt *c);

/* corrupt_inode.c: pass 3 */
int corrupt_pr3_cluster_bad(struct corrupt *c);
int corrupt_pr3_inode_bad(struct corrupt *c);
int corrupt_pr3_inode_mode(struct corrupt *c);
int corrupt_pr3_inode_map_type(struct corrupt *c);
int corrupt_pr3_ptr_range(struct corrupt *c);
int corrupt_pr3_ptrblk_bad(struct corrupt *c);
int corrupt_pr3_block_dup(struct corrupt *c);
int corrupt_pr3_alloc_bytes(struct corrupt *c);
int corrupt_pr3_tbz_bad(struct corrupt *c);
int corrupt_pr3_inline_tail(struct corrupt *c);
int corrupt_pr3_inline_size(struct corrupt *c);
int corrupt_pr3_dir_size(struct corrupt *c);
int corrupt_pr3_xattr_bad(struct corrupt *c);
int corrupt_pr3_small_too_big(struct corrupt *c);
int corrupt_pr3_ptrblk_owner(struct corrupt *c);
int corrupt_pr3_cluster_uninit(struct corrupt *c);

/* corrupt_dir.c: passes 4-5 */
int corrupt_pr4_chunk_bad(struct corrupt *c);
int corrupt_pr4_dirent_bad_inode(struct corrupt *c);
int corrupt_pr4_dirent_bad_name(struct corrupt *c);
int corrupt_pr4_dirent_hash(struct corrupt *c);
int corrupt_pr4_dirent_dup(struct corrupt *c);
int corrupt_pr4_dirent_type(struct corrupt *c);
int corrupt_pr4_chunk_count(struct corrupt *c);
int corrupt_pr4_dir_parent(struct corrupt *c);
int corrupt_pr4_dir_multilink(struct corrupt *c);
int corrupt_pr4_unreachable(struct corrupt *c);
int corrupt_pr4_no_root(struct corrupt *c);
int corrupt_pr4_no_lostfound(struct corrupt *c);
int corrupt_pr5_nlink(struct corrupt *c);
int corrupt_pr5_nentries(struct corrupt *c);
int corrupt_pr5_orphan(struct corrupt *c);

/* corrupt_bitmap.c: pass 6 */
int corrupt_pr6_leaked(struct corrupt *c);
int corrupt_pr6_unmarked(struct corrupt *c);
int corrupt_pr6_nfree(struct corrupt *c);
int corrupt_pr6_bits_beyond(struct corrupt *c);

/* corrupt_dir.c helpers shared with pass-3/5 damage */
/* Remove entry e from its chunk (count kept right) and its directory
 * (di_nentries, and di_nlink when it named a directory). */
int corrupt_ent_remove(struct corrupt *c, const struct corrupt_ent *e);

#endif /* VMFS_TOOLS_CORRUPT_INT_H */
