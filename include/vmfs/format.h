/*
 * vmfs on-disk format: the contract between every host that attaches the
 * volume, and between this software and any later version of it.
 *
 * docs/SPEC.md describes the same bytes in prose; tests/unit/test_format.c
 * checks every offset below against a golden table.  Change one, change all
 * three, and bump VMFS_FORMAT_MINOR (compatible additions in reserved space)
 * or VMFS_FORMAT_MAJOR (anything an older reader would misinterpret).
 *
 * Rules:
 *  - every multi-byte integer is little-endian (le16/le32/le64 below are
 *    storage types only; the codec at the end of this header, format/,
 *    converts them, and the vmfs_* inline helpers before it hold the
 *    small computations every reader and writer shares);
 *  - every metadata block is VMFS_MD_BLOCK_SIZE (4 KiB) and starts with, or
 *    (lockable blocks) carries at VMFS_OBJ_OFFSET, a struct vmfs_blk_hdr:
 *    magic, format version, its own byte address, a generation bumped at
 *    every write, and a crc32c of its bytes;
 *  - a lockable block (inode, resource-cluster header, journal header,
 *    heartbeat-region header) keeps its lock record in the first 512 bytes
 *    so that the lock can be changed with a single-sector compare-and-write
 *    without rewriting the object; the object's own crc never covers the
 *    lock record;
 *  - addresses are 64-bit byte offsets, or 64-bit counts of 4 KiB units in
 *    block pointers (VMFS_PTR_ADDR_MASK), so volumes and files go far past
 *    64 TiB.
 */
#ifndef VMFS_FORMAT_H
#define VMFS_FORMAT_H

#include <endian.h>
#include <stdint.h>
#include <stddef.h>

typedef uint16_t le16;
typedef uint32_t le32;
typedef uint64_t le64;

/* The format version is not the software version. */
#define VMFS_FORMAT_MAJOR 3
#define VMFS_FORMAT_MINOR 0

#define VMFS_MD_BLOCK_SIZE 4096u      /* every metadata block */
#define VMFS_MD_BLOCK_SHIFT 12
#define VMFS_LOCK_SIZE 512u           /* lock record at the start of a lockable block */
#define VMFS_OBJ_OFFSET VMFS_LOCK_SIZE /* object header after the lock record */

/* Magic numbers: four ASCII letters, read as a little-endian le32. */
#define VMFS_MAGIC_VOLUME   0x53464d56u /* "VMFS" volume header */
#define VMFS_MAGIC_LOCK     0x4b434f4cu /* "LOCK" lock record */
#define VMFS_MAGIC_HBREGION 0x47524248u /* "HBRG" heartbeat region header */
#define VMFS_MAGIC_HBSLOT   0x544c5348u /* "HSLT" heartbeat slot */
#define VMFS_MAGIC_JOURNAL  0x4c4e524au /* "JRNL" journal region header */
#define VMFS_MAGIC_RCLUSTER 0x4c435352u /* "RSCL" resource-cluster header */
#define VMFS_MAGIC_INODE    0x45444f4eu /* "NODE" inode */
#define VMFS_MAGIC_PTRBLK   0x4b4c4250u /* "PBLK" pointer block */
#define VMFS_MAGIC_DIRBLK   0x4b4c5244u /* "DRLK" directory chunk */
#define VMFS_MAGIC_JDESC    0x4353444au /* "JDSC" journal descriptor */
#define VMFS_MAGIC_JCOMMIT  0x544d434au /* "JCMT" journal commit record */

/*
 * Common header of every metadata block (or of the object part of a
 * lockable block).  bh_crc is the crc32c (Castagnoli, initial ~0, final
 * xor ~0) of bh_len bytes starting at this header, computed with bh_crc
 * set to zero.
 */
struct vmfs_blk_hdr {
/*0x00*/ le32 bh_magic;
/*0x04*/ le16 bh_major;
/*0x06*/ le16 bh_minor;
/*0x08*/ le64 bh_self;   /* byte address of the block this header sits in */
/*0x10*/ le64 bh_gen;    /* bumped at every write of the block */
/*0x18*/ le32 bh_crc;
/*0x1c*/ le32 bh_len;    /* bytes covered by bh_crc, header included */
};
_Static_assert(sizeof(struct vmfs_blk_hdr) == 0x20, "vmfs_blk_hdr");

/* ------------------------------------------------------------------ */
/* Lock record: the first 512 bytes of every lockable block.           */

enum vmfs_lock_mode {
	VMFS_LOCK_FREE = 0,
	VMFS_LOCK_EXCLUSIVE = 1,
	VMFS_LOCK_READONLY = 2,   /* shared, read-only */
	VMFS_LOCK_MULTIWRITER = 3 /* shared, every holder may write */
};

#define VMFS_LOCK_MAX_HOLDERS 13
#define VMFS_UUID_SIZE 16

struct vmfs_lock_holder {
/*0x00*/ uint8_t lh_uuid[VMFS_UUID_SIZE];
/*0x10*/ le32 lh_slot;
/*0x14*/ le32 lh_pad;
/*0x18*/ le64 lh_hb_gen;
};
_Static_assert(sizeof(struct vmfs_lock_holder) == 0x20, "vmfs_lock_holder");

/*
 * lk_hdr.bh_gen is the lock generation: bumped at every change of mode or
 * owner, so a compare-and-write against a stale copy always fails.  An
 * all-zero record (never initialised) reads as free.
 */
struct vmfs_lock {
/*0x000*/ struct vmfs_blk_hdr lk_hdr;   /* bh_self = address of the locked block */
/*0x020*/ le32 lk_mode;                 /* enum vmfs_lock_mode */
/*0x024*/ le32 lk_nholders;             /* shared modes */
/*0x028*/ le64 lk_owner_hb_gen;         /* owner's heartbeat generation */
/*0x030*/ uint8_t lk_owner_uuid[VMFS_UUID_SIZE];
/*0x040*/ le32 lk_owner_slot;
/*0x044*/ le32 lk_pad;
/*0x048*/ struct vmfs_lock_holder lk_holders[VMFS_LOCK_MAX_HOLDERS];
/*0x1e8*/ uint8_t lk_reserved[0x18];
};
_Static_assert(sizeof(struct vmfs_lock) == VMFS_LOCK_SIZE, "vmfs_lock");

/* ------------------------------------------------------------------ */
/* Volume header: offset 0, backup copy in the last 4 KiB of the volume. */

enum vmfs_res_type {
	VMFS_RES_INODE = 0,   /* 4 KiB inodes */
	VMFS_RES_PTRBLK = 1,  /* 4 KiB pointer blocks */
	VMFS_RES_SMALL = 2,   /* small blocks (directories, small files) */
	VMFS_RES_FILE = 3,    /* file blocks (VM disks, large files) */
	VMFS_RES_NTYPES = 4
};

/*
 * One resource area: ra_nclusters cluster headers (one 4 KiB lockable
 * block each) from ra_hdr_offset, and ra_count objects of ra_obj_size bytes
 * from ra_obj_offset (aligned to ra_obj_size).  Cluster c owns objects
 * [c * ra_per_cluster, min((c + 1) * ra_per_cluster, ra_count)).
 */
struct vmfs_res_area {
/*0x00*/ le64 ra_hdr_offset;
/*0x08*/ le64 ra_obj_offset;
/*0x10*/ le64 ra_count;
/*0x18*/ le32 ra_obj_size;
/*0x1c*/ le32 ra_per_cluster;
/*0x20*/ le32 ra_nclusters;
/*0x24*/ le32 ra_pad;
/*0x28*/ le64 ra_reserved;
};
_Static_assert(sizeof(struct vmfs_res_area) == 0x30, "vmfs_res_area");

#define VMFS_LABEL_SIZE 64

struct vmfs_volume {
/*0x000*/ struct vmfs_blk_hdr vh_hdr;   /* bh_len = 4096 */
/*0x020*/ uint8_t vh_uuid[VMFS_UUID_SIZE];
/*0x030*/ char vh_label[VMFS_LABEL_SIZE]; /* NUL-padded */
/*0x070*/ le64 vh_size_bytes;           /* bytes of the LUN the volume uses */
/*0x078*/ le64 vh_ctime_ns;             /* creation, wall clock, display only */
/*0x080*/ le32 vh_sector_size;          /* LUN logical sector size at mkfs */
/*0x084*/ le32 vh_md_block_size;        /* VMFS_MD_BLOCK_SIZE */
/*0x088*/ le32 vh_file_block_size;      /* == FILE area ra_obj_size */
/*0x08c*/ le32 vh_small_block_size;     /* == SMALL area ra_obj_size */
/*0x090*/ le32 vh_max_hosts;            /* heartbeat slots == journal regions */
/*0x094*/ le32 vh_flags;
/*0x098*/ le64 vh_journal_size_bytes;   /* per host slot */
/*0x0a0*/ le64 vh_hb_offset;            /* heartbeat region header block */
/*0x0a8*/ le64 vh_journal_offset;       /* journal region of slot 0 */
/*0x0b0*/ le64 vh_root_ino;
/*0x0b8*/ le64 vh_lostfound_ino;
/*0x0c0*/ struct vmfs_res_area vh_res[VMFS_RES_NTYPES];
/*0x180*/ le64 vh_backup_offset;        /* where the other copy lives */
/*0x188*/ uint8_t vh_reserved[0x1000 - 0x188];
};
_Static_assert(sizeof(struct vmfs_volume) == VMFS_MD_BLOCK_SIZE, "vmfs_volume");

/* ------------------------------------------------------------------ */
/* Heartbeat region: a lockable header block, then one block per slot.  */

struct vmfs_hb_region {
/*0x000*/ struct vmfs_blk_hdr hr_hdr;   /* at VMFS_OBJ_OFFSET, bh_len = 3584 */
/*0x020*/ le32 hr_nslots;
/*0x024*/ le32 hr_lease_ms;             /* default lease a host advertises */
/*0x028*/ le32 hr_renew_ms;             /* default renewal interval */
/*0x02c*/ le32 hr_pad;
/*0x030*/ le64 hr_slot0_offset;         /* slot i at hr_slot0_offset + i * 4096 */
/*0x038*/ uint8_t hr_reserved[0xe00 - 0x38];
};
_Static_assert(sizeof(struct vmfs_hb_region) == 0xe00, "vmfs_hb_region");

/* hs_flags */
#define VMFS_HB_F_ASKS      0x1  /* reads other hosts' wants (hs_want_*) and
				  * lets go of what they name: it may keep
				  * locks between operations */
#define VMFS_HB_F_WANT_EXCL 0x2  /* hs_want_addr is wanted EXCLUSIVE */

enum vmfs_hb_state {
	VMFS_HB_FREE = 0,
	VMFS_HB_ACTIVE = 1,
	VMFS_HB_REPLAYING = 2 /* a survivor is replaying this host's journal */
};

/*
 * A heartbeat slot: its own 4 KiB block, but all live fields are in the
 * first 512 bytes so renewal is a one-sector compare-and-write.
 * bh_len = 512.
 */
struct vmfs_hb_slot {
/*0x000*/ struct vmfs_blk_hdr hs_hdr;
/*0x020*/ le32 hs_state;                /* enum vmfs_hb_state */
/*0x024*/ le32 hs_slot;
/*0x028*/ le64 hs_hb_gen;               /* bumped at every mount */
/*0x030*/ le64 hs_counter;              /* bumped at every renewal */
/*0x038*/ le32 hs_lease_ms;             /* the lease this host advertises */
/*0x03c*/ le32 hs_renew_ms;
/*0x040*/ uint8_t hs_host_uuid[VMFS_UUID_SIZE];
/*0x050*/ le64 hs_journal_offset;
/*0x058*/ le64 hs_journal_size;
/*0x060*/ char hs_addr[64];             /* cluster address, NUL-padded */
/*0x0a0*/ char hs_hostname[64];         /* display only */
/*0x0e0*/ le64 hs_vm_free_mib;          /* memory for more VMs; 0: none said */
/*0x0e8*/ le32 hs_flags;                /* VMFS_HB_F_* */
/*0x0ec*/ le32 hs_want_seq;             /* + 1 at every new want */
/*0x0f0*/ le64 hs_want_addr;            /* lock this host waits for; 0: none */
/*0x0f8*/ le32 hs_busy_slot;            /* the asker answered "kept": */
/*0x0fc*/ le32 hs_busy_seq;             /*   its slot and want sequence, */
/*0x100*/ le64 hs_busy_addr;            /*   and the lock */
/*0x108*/ uint8_t hs_reserved[0x200 - 0x108];
};
_Static_assert(sizeof(struct vmfs_hb_slot) == 0x200, "vmfs_hb_slot");

/* ------------------------------------------------------------------ */
/* Journal region header: first block of each slot's journal region.   */

enum vmfs_jnl_state {
	VMFS_JNL_CLEAN = 0,  /* nothing to replay */
	VMFS_JNL_DIRTY = 1   /* transactions between tail and head */
};

struct vmfs_jnl_hdr {
/*0x000*/ struct vmfs_blk_hdr jh_hdr;   /* at VMFS_OBJ_OFFSET, bh_len = 3584 */
/*0x020*/ le32 jh_slot;
/*0x024*/ le32 jh_state;                /* enum vmfs_jnl_state */
/*0x028*/ le64 jh_size_bytes;           /* whole region, header included */
/*0x030*/ le64 jh_tail;                 /* byte offset in region of oldest live txn */
/*0x038*/ le64 jh_head;                 /* clean: where the next transaction
					 * goes (= tail); dirty: informational */
/*0x040*/ le64 jh_seq;                  /* sequence of the transaction at tail */
/*0x048*/ le64 jh_jid;                  /* random, set when the region is formatted */
/*0x050*/ uint8_t jh_reserved[0xe00 - 0x50];
};
_Static_assert(sizeof(struct vmfs_jnl_hdr) == 0xe00, "vmfs_jnl_hdr");

/*
 * Journal records.  After the header block the region is a ring of 4 KiB
 * blocks.  A transaction is one or more descriptor blocks, each followed
 * by the images its tags list (in tag order), then one commit block; all
 * carry the transaction's sequence number and the region's jid.  The
 * commit's jc_crc is the crc32c of every descriptor and image block of the
 * transaction in ring order.  Replay starts at jh_tail with jh_seq and
 * applies transactions while each one is whole and its commit checks out.
 * Both record kinds have their vmfs_blk_hdr at offset 0 with bh_len 4096
 * and bh_self = their byte address on the LUN.
 */
#define VMFS_JNL_TAG_LOCKABLE 0x1  /* leave the lock record (first 512
				    * bytes) as it is on disk at replay */

struct vmfs_jnl_tag {
/*0x00*/ le64 jt_addr;                  /* home byte address of the block */
/*0x08*/ le32 jt_flags;                 /* VMFS_JNL_TAG_* */
/*0x0c*/ le32 jt_pad;
};
_Static_assert(sizeof(struct vmfs_jnl_tag) == 0x10, "vmfs_jnl_tag");

#define VMFS_JNL_TAGS_PER_DESC 252

struct vmfs_jnl_desc {
/*0x000*/ struct vmfs_blk_hdr jd_hdr;
/*0x020*/ le64 jd_seq;
/*0x028*/ le64 jd_jid;
/*0x030*/ le32 jd_ntags;                /* 1..VMFS_JNL_TAGS_PER_DESC */
/*0x034*/ le32 jd_index;                /* 0 for the first descriptor */
/*0x038*/ le64 jd_reserved;
/*0x040*/ struct vmfs_jnl_tag jd_tags[VMFS_JNL_TAGS_PER_DESC];
};
_Static_assert(sizeof(struct vmfs_jnl_desc) == VMFS_MD_BLOCK_SIZE,
	       "vmfs_jnl_desc");

struct vmfs_jnl_commit {
/*0x000*/ struct vmfs_blk_hdr jc_hdr;
/*0x020*/ le64 jc_seq;
/*0x028*/ le64 jc_jid;
/*0x030*/ le32 jc_nblocks;              /* descriptor + image blocks before it */
/*0x034*/ le32 jc_crc;                  /* crc32c of those blocks */
/*0x038*/ le64 jc_time_ns;              /* wall clock at commit, display only */
/*0x040*/ le32 jc_nimages;
/*0x044*/ uint8_t jc_reserved[VMFS_MD_BLOCK_SIZE - 0x44];
};
_Static_assert(sizeof(struct vmfs_jnl_commit) == VMFS_MD_BLOCK_SIZE,
	       "vmfs_jnl_commit");

/* ------------------------------------------------------------------ */
/* Resource-cluster header: lockable, one per cluster, holds the bitmap. */

#define VMFS_RC_MAX_OBJS 8192  /* bitmap bits in one header */

/*
 * rc_flags (2.0).  VMFS_RC_UNINIT: the objects of this cluster were never
 * initialised; their blocks hold whatever the LUN held before mkfs, and
 * nobody reads them.  Such a cluster has no bit set in rc_bitmap or
 * rc_orphan.  The first allocation zeroes the cluster's whole object range,
 * flushes, and only then writes the header without the flag (the same
 * header write that marks the allocation), so an init cut half-way leaves
 * the flag set and is simply done again.  mkfs sets it on inode and
 * pointer-block clusters so that it writes a bounded amount on any LUN.
 */
#define VMFS_RC_UNINIT 0x1

struct vmfs_rc {
/*0x000*/ struct vmfs_blk_hdr rc_hdr;   /* at VMFS_OBJ_OFFSET, bh_len = 3584 */
/*0x020*/ le32 rc_type;                 /* enum vmfs_res_type */
/*0x024*/ le32 rc_index;                /* cluster number within its area */
/*0x028*/ le32 rc_nobjs;                /* objects this cluster owns */
/*0x02c*/ le32 rc_nfree;
/*0x030*/ le64 rc_first_obj;            /* index of its first object */
/*0x038*/ le32 rc_flags;                /* VMFS_RC_* (2.0) */
/*0x03c*/ le32 rc_pad0;
/*0x040*/ uint8_t rc_bitmap[VMFS_RC_MAX_OBJS / 8]; /* bit set = in use */
/*
 * Inode clusters only: bit set = the inode has no links left but was
 * still open when its last name went; the next mount (after replay)
 * frees it, fsck frees it without calling it a problem.  Set in the same
 * transaction that takes the last link, cleared by the one that frees.
 */
/*0x440*/ uint8_t rc_orphan[VMFS_RC_MAX_OBJS / 8];
/*
 * Inode clusters only (3.0): bit set = one link of the inode was removed
 * by a host that could not lock the inode (another host had it open).
 * Its di_nlink still counts that link: the next host that holds the
 * inode EXCLUSIVE decrements di_nlink (marking it an orphan at zero) and
 * clears the bit in one transaction.  At most one pending drop per inode.
 */
/*0x840*/ uint8_t rc_unlinked[VMFS_RC_MAX_OBJS / 8];
/*0xc40*/ uint8_t rc_reserved[0xe00 - 0xc40];
};
_Static_assert(sizeof(struct vmfs_rc) == 0xe00, "vmfs_rc");

/* ------------------------------------------------------------------ */
/* Inode: one 4 KiB lockable block; inode number = object index.       */

/* ino 0 is never used; root and lost+found are made by mkfs. */
#define VMFS_ROOT_INO 1
#define VMFS_LOSTFOUND_INO 2

enum vmfs_map_type {
	VMFS_MAP_INLINE = 0,  /* data in di_inline */
	VMFS_MAP_SMALL = 1,   /* di_map addresses small blocks */
	VMFS_MAP_FILE = 2     /* di_map addresses file blocks */
};

/*
 * A block pointer: a 4 KiB-unit address in bits 0..55 (0 = hole), flags in
 * the top byte.  VMFS_PTR_TBZ marks an allocated file block that was never
 * written since allocation: it reads as zeros and is zeroed on first write.
 */
#define VMFS_PTR_ADDR_MASK 0x00ffffffffffffffull
#define VMFS_PTR_TBZ       0x8000000000000000ull

#define VMFS_NMAP 256
#define VMFS_NDIRECT 251
#define VMFS_MAP_IND1 251  /* single indirect */
#define VMFS_MAP_IND2 252
#define VMFS_MAP_IND3 253
#define VMFS_MAP_IND4 254
#define VMFS_MAP_SPARE 255
#define VMFS_INLINE_MAX (VMFS_NMAP * 8)
#define VMFS_XATTR_AREA 0x500
#define VMFS_NAME_MAX 255

/* di_flags */
#define VMFS_DI_DISK_THIN      0x1   /* informational: how the disk was made */
#define VMFS_DI_DISK_ZEROED    0x2
#define VMFS_DI_DISK_EAGER     0x4
#define VMFS_DI_MULTIWRITER    0x8   /* every host may open it for writing (§12) */

struct vmfs_inode {
/*0x000*/ struct vmfs_blk_hdr di_hdr;   /* at VMFS_OBJ_OFFSET, bh_len = 3584 */
/*0x020*/ le64 di_ino;
/*0x028*/ le64 di_incarnation;          /* bumped each time the slot is reused */
/*0x030*/ le32 di_mode;                 /* S_IFMT | permission bits */
/*0x034*/ le32 di_nlink;
/*0x038*/ le32 di_uid;
/*0x03c*/ le32 di_gid;
/*0x040*/ le64 di_size;
/*0x048*/ le64 di_alloc_bytes;          /* data + pointer blocks owned */
/*0x050*/ le64 di_atime_ns;             /* since the epoch, signed */
/*0x058*/ le64 di_mtime_ns;
/*0x060*/ le64 di_ctime_ns;
/*0x068*/ le64 di_btime_ns;
/*0x070*/ le64 di_parent;               /* directories: parent ino */
/*0x078*/ le32 di_flags;
/*0x07c*/ le16 di_map_type;             /* enum vmfs_map_type */
/*0x07e*/ le16 di_xattr_len;            /* bytes used in di_xattr */
/*0x080*/ le64 di_rdev;
/*0x088*/ le64 di_nentries;             /* directories: live entries */
/*0x090*/ uint8_t di_reserved[0x100 - 0x90];
/*0x100*/ union {
		le64 di_map[VMFS_NMAP];
		uint8_t di_inline[VMFS_INLINE_MAX];
	};
/*0x900*/ uint8_t di_xattr[VMFS_XATTR_AREA];
};
_Static_assert(sizeof(struct vmfs_inode) == 0xe00, "vmfs_inode");

/*
 * xattr area: packed records { u8 name_len; u8 pad; le16 value_len;
 * name bytes (no NUL); value bytes }, di_xattr_len bytes in all.
 */
struct vmfs_xattr_rec {
/*0x00*/ uint8_t xr_name_len;
/*0x01*/ uint8_t xr_pad;
/*0x02*/ le16 xr_value_len;
};
_Static_assert(sizeof(struct vmfs_xattr_rec) == 4, "vmfs_xattr_rec");

/* ------------------------------------------------------------------ */
/* Pointer block: 4 KiB, owned by one inode (covered by its lock).      */

#define VMFS_PTRS_PER_BLK 506

struct vmfs_ptrblk {
/*0x000*/ struct vmfs_blk_hdr pb_hdr;   /* bh_len = 4096 */
/*0x020*/ le64 pb_owner_ino;
/*0x028*/ le32 pb_level;                /* 1 = points at data blocks */
/*0x02c*/ le32 pb_pad;
/*0x030*/ le64 pb_ptr[VMFS_PTRS_PER_BLK];
};
_Static_assert(sizeof(struct vmfs_ptrblk) == VMFS_MD_BLOCK_SIZE, "vmfs_ptrblk");

/* ------------------------------------------------------------------ */
/* Directory chunk: 4 KiB; a directory's data is an array of chunks.   */

#define VMFS_DIRENTS_PER_CHUNK 14

struct vmfs_dirent {
/*0x000*/ le64 de_ino;                  /* 0 = empty slot */
/*0x008*/ le32 de_hash;                 /* crc32c of the name */
/*0x00c*/ uint8_t de_name_len;
/*0x00d*/ uint8_t de_type;              /* DT_* of the target */
/*0x00e*/ le16 de_pad;
/*0x010*/ char de_name[VMFS_NAME_MAX + 1];
};
_Static_assert(sizeof(struct vmfs_dirent) == 0x110, "vmfs_dirent");

struct vmfs_dirblk {
/*0x000*/ struct vmfs_blk_hdr db_hdr;   /* bh_len = 4096 */
/*0x020*/ le64 db_dir_ino;
/*0x028*/ le32 db_chunk;                /* index within the directory */
/*0x02c*/ le16 db_count;                /* live entries in this chunk */
/*0x02e*/ le16 db_pad;
/*0x030*/ struct vmfs_dirent db_ents[VMFS_DIRENTS_PER_CHUNK];
/*0xf10*/ uint8_t db_reserved[0x1000 - 0xf10];
};
_Static_assert(sizeof(struct vmfs_dirblk) == VMFS_MD_BLOCK_SIZE, "vmfs_dirblk");

/* ------------------------------------------------------------------ */
/*
 * Small computations on the format, as inline helpers so that every
 * reader and writer (engine, fsck, journal walker, corruption tool, fuzz
 * harnesses) computes them one way.  They take and return host-order
 * values: byte order is the codec's business (format/, fmt_* below).
 */

/* Byte address of a block pointer's target (0 for a hole), flags dropped. */
static inline uint64_t vmfs_ptr_addr(uint64_t p)
{
	return (p & VMFS_PTR_ADDR_MASK) << VMFS_MD_BLOCK_SHIFT;
}

/* The bits of a block pointer that no valid pointer has set. */
static inline uint64_t vmfs_ptr_bad_bits(uint64_t p)
{
	return p & ~(VMFS_PTR_ADDR_MASK | VMFS_PTR_TBZ);
}

/*
 * Blocks one pointer covers at depth d below it: 1 for a data pointer
 * (d = 0), VMFS_PTRS_PER_BLK^d for a pointer to a level-d pointer block.
 * Root slot VMFS_MAP_IND1 + d - 1 maps vmfs_map_span(d) blocks.
 */
static inline uint64_t vmfs_map_span(int d)
{
	uint64_t span = 1;

	while (d-- > 0)
		span *= VMFS_PTRS_PER_BLK;
	return span;
}

/*
 * de_type of an entry naming an inode of this mode: the S_IFMT bits
 * (0170000, the same on every POSIX system we know) shifted down, which
 * is Linux's DT_* value.  Spelled out so the on-disk meaning does not hang
 * on the host's headers.
 */
static inline uint8_t vmfs_dirent_type(uint32_t mode)
{
	return (uint8_t)((mode & 0170000u) >> 12);
}

/*
 * Index of the object at byte address addr in a resource area whose
 * objects are obj_size bytes from obj_offset, count of them; -1 when addr
 * is not the start of one (before the area, not aligned, past the end).
 */
static inline int64_t vmfs_res_index(uint64_t obj_offset, uint32_t obj_size,
				     uint64_t count, uint64_t addr)
{
	if (addr < obj_offset || !obj_size || (addr - obj_offset) % obj_size ||
	    (addr - obj_offset) / obj_size >= count)
		return -1;
	return (int64_t)((addr - obj_offset) / obj_size);
}

/* ------------------------------------------------------------------ */
/*
 * The codec (format/, prefix fmt_): the one place where the bytes of the
 * structures above are read and written.  Every component (vol/, lockmgr/,
 * journal/, fsck/, cli/, the corruption tool, the fuzz harnesses) goes
 * through it instead of converting fields itself.
 *
 * fmt_X_decode(disk, host) fills a host-order struct fmt_X from the disk
 * bytes and checks what the bytes alone can tell (ranges, a name against
 * its hash); it returns 0 or -VMFS_E_CORRUPT, and fills host in full even
 * then, so fsck can see what is wrong and repair it.  fmt_X_encode(host,
 * disk) writes the fields of fmt_X into the disk bytes and nothing else:
 * the block's envelope (magic, version, self, crc) is lun_md_seal()'s and
 * lun_md_verify()'s (lun/mdblock.c), checksums being lun's crc32c; bytes
 * the host struct does not carry (the map, inline data, xattrs, bitmaps)
 * are left as they are, reached through the accessors below.
 *
 * format/ sits on lun/ (its crc32c, for fmt_name_hash) and under every
 * other component.  The one structure not here is the volume header: its
 * host form is the engine's struct vol_geom, so its codec is
 * vol_geom_from_disk()/vol_geom_to_disk() in vol/geom.c.
 */

/* The header every metadata block carries (struct vmfs_blk_hdr). */
struct fmt_hdr {
	uint32_t magic;
	uint16_t major, minor;
	uint64_t self;
	uint64_t gen;
	uint32_t crc;
	uint32_t len;
};
void fmt_hdr_decode(const struct vmfs_blk_hdr *d, struct fmt_hdr *h);
/* bh_gen alone: the field every writer bumps before sealing. */
uint64_t fmt_hdr_gen(const struct vmfs_blk_hdr *d);
void fmt_hdr_set_gen(struct vmfs_blk_hdr *d, uint64_t gen);

/* A block pointer slot (di_map[i], pb_ptr[i]) in host order. */
/* Inline: every block-map lookup of every 4 KiB I/O takes one per level. */
static inline uint64_t fmt_ptr_load(const le64 *slot)
{
	return le64toh(*slot);
}

static inline void fmt_ptr_store(le64 *slot, uint64_t p)
{
	*slot = htole64(p);
}

/* Inode (struct vmfs_inode, the object part of its block). */
struct fmt_inode {
	uint64_t gen;          /* di_hdr.bh_gen */
	uint64_t ino, incarnation;
	uint32_t mode, nlink, uid, gid, flags;
	uint64_t size, alloc_bytes, parent, rdev, nentries;
	int64_t atime_ns, mtime_ns, ctime_ns, btime_ns;
	uint16_t map_type;     /* enum vmfs_map_type */
	uint16_t xattr_len;
};
/* -VMFS_E_CORRUPT: map type unknown or xattr length past the area. */
int fmt_inode_decode(const struct vmfs_inode *d, struct fmt_inode *fi);
void fmt_inode_encode(const struct fmt_inode *fi, struct vmfs_inode *d);

/*
 * The xattr area: di_xattr_len alone (vol/xattr.c edits the area in
 * place), and one packed record header at p (no alignment: copied).
 */
uint16_t fmt_xattr_len(const struct vmfs_inode *d);
void fmt_xattr_set_len(struct vmfs_inode *d, uint16_t len);
void fmt_xattr_rec_decode(const uint8_t *p, size_t *name_len,
			  size_t *value_len);
void fmt_xattr_rec_encode(uint8_t *p, size_t name_len, size_t value_len);

/* Pointer block (struct vmfs_ptrblk) header fields; slots by fmt_ptr_*. */
struct fmt_ptrblk {
	uint64_t gen;
	uint64_t owner_ino;
	uint32_t level;
};
/* -VMFS_E_CORRUPT: level outside 1..4. */
int fmt_ptrblk_decode(const struct vmfs_ptrblk *d, struct fmt_ptrblk *pb);
void fmt_ptrblk_encode(const struct fmt_ptrblk *pb, struct vmfs_ptrblk *d);

/* Directory entry (struct vmfs_dirent); name NUL-terminated in host form. */
struct fmt_dirent {
	uint64_t ino;          /* 0: empty slot */
	uint32_t hash;
	uint8_t name_len;
	uint8_t type;          /* DT_* */
	char name[VMFS_NAME_MAX + 1];
};
/* de_hash of a name: crc32c of its bytes, no NUL. */
uint32_t fmt_name_hash(const char *name, size_t len);
/*
 * -VMFS_E_CORRUPT for a live entry whose name is empty, holds a NUL or
 * does not match its hash; an empty slot (ino 0) always decodes.
 */
int fmt_dirent_decode(const struct vmfs_dirent *d, struct fmt_dirent *de);
/*
 * Write a live entry ino -> name (len <= VMFS_NAME_MAX bytes, no NUL
 * needed; may be d's own de_name) with its hash, the rest of de_name and
 * de_pad zeroed, as every writer of entries must.
 */
void fmt_dirent_encode(struct vmfs_dirent *d, uint64_t ino, const char *name,
		       size_t len, uint8_t type);
/* Entry fields read often on their own. */
uint64_t fmt_dirent_ino(const struct vmfs_dirent *d);
uint32_t fmt_dirent_hash(const struct vmfs_dirent *d);
void fmt_dirent_set_ino(struct vmfs_dirent *d, uint64_t ino);
/* A stored hash as given, right or wrong (the corruption tool). */
void fmt_dirent_set_hash(struct vmfs_dirent *d, uint32_t hash);

/* Directory chunk (struct vmfs_dirblk) header fields. */
struct fmt_dirblk {
	uint64_t gen;
	uint64_t dir_ino;
	uint32_t chunk;
	uint16_t count;
};
/* -VMFS_E_CORRUPT: db_count above VMFS_DIRENTS_PER_CHUNK. */
int fmt_dirblk_decode(const struct vmfs_dirblk *d, struct fmt_dirblk *db);
void fmt_dirblk_encode(const struct fmt_dirblk *db, struct vmfs_dirblk *d);
/* db_count alone: every add and remove of an entry moves it. */
uint16_t fmt_dirblk_count(const struct vmfs_dirblk *d);
void fmt_dirblk_set_count(struct vmfs_dirblk *d, uint16_t count);

/* Resource-cluster header (struct vmfs_rc); bitmaps by bit index. */
struct fmt_rc {
	uint64_t gen;
	uint32_t type;         /* enum vmfs_res_type */
	uint32_t index;
	uint32_t nobjs, nfree;
	uint64_t first_obj;
	uint32_t flags;        /* VMFS_RC_* */
};
/* -VMFS_E_CORRUPT: unknown type or nobjs past the bitmap. */
int fmt_rc_decode(const struct vmfs_rc *d, struct fmt_rc *rc);
void fmt_rc_encode(const struct fmt_rc *rc, struct vmfs_rc *d);

/* Lock record (struct vmfs_lock), the first 512 bytes of a lockable block. */
struct fmt_lock_holder {
	uint8_t uuid[VMFS_UUID_SIZE];
	uint32_t slot;
	uint64_t hb_gen;
};
struct fmt_lock {
	uint64_t gen;          /* lk_hdr.bh_gen: the lock generation */
	uint32_t mode;         /* enum vmfs_lock_mode */
	uint32_t nholders;     /* shared modes */
	uint8_t owner_uuid[VMFS_UUID_SIZE];
	uint32_t owner_slot;
	uint64_t owner_hb_gen;
	struct fmt_lock_holder holders[VMFS_LOCK_MAX_HOLDERS];
};
/*
 * -VMFS_E_CORRUPT: mode unknown or more holders than the record has room
 * for (holders beyond VMFS_LOCK_MAX_HOLDERS are not read).
 */
int fmt_lock_decode(const struct vmfs_lock *d, struct fmt_lock *lk);
void fmt_lock_encode(const struct fmt_lock *lk, struct vmfs_lock *d);

/* Heartbeat region header (struct vmfs_hb_region). */
struct fmt_hb_region {
	uint64_t gen;
	uint32_t nslots;
	uint32_t lease_ms, renew_ms;
	uint64_t slot0_offset;
};
/* -VMFS_E_CORRUPT: no slots, or a zero lease or renewal interval. */
int fmt_hb_region_decode(const struct vmfs_hb_region *d,
			 struct fmt_hb_region *hr);
void fmt_hb_region_encode(const struct fmt_hb_region *hr,
			  struct vmfs_hb_region *d);

/* Heartbeat slot (struct vmfs_hb_slot); strings NUL-terminated here. */
struct fmt_hb_slot {
	uint64_t gen;
	uint32_t state;        /* enum vmfs_hb_state */
	uint32_t slot;
	uint64_t hb_gen, counter;
	uint32_t lease_ms, renew_ms;
	uint8_t host_uuid[VMFS_UUID_SIZE];
	uint64_t journal_offset, journal_size;
	char addr[sizeof(((struct vmfs_hb_slot *)0)->hs_addr) + 1];
	char hostname[sizeof(((struct vmfs_hb_slot *)0)->hs_hostname) + 1];
	uint64_t vm_free_mib;
	uint32_t flags;        /* VMFS_HB_F_* */
	uint32_t want_seq;
	uint64_t want_addr;
	uint32_t busy_slot, busy_seq;
	uint64_t busy_addr;
};
/* -VMFS_E_CORRUPT: state unknown. */
int fmt_hb_slot_decode(const struct vmfs_hb_slot *d, struct fmt_hb_slot *hs);
/* Strings longer than their field are cut; the rest is NUL-padded. */
void fmt_hb_slot_encode(const struct fmt_hb_slot *hs, struct vmfs_hb_slot *d);

/* Journal region header (struct vmfs_jnl_hdr). */
struct fmt_jnl_hdr {
	uint64_t gen;
	uint32_t slot;
	uint32_t state;        /* enum vmfs_jnl_state */
	uint64_t size_bytes;
	uint64_t tail, head;
	uint64_t seq;
	uint64_t jid;
};
/* -VMFS_E_CORRUPT: state unknown (positions are checked by journal/). */
int fmt_jnl_hdr_decode(const struct vmfs_jnl_hdr *d, struct fmt_jnl_hdr *jh);
void fmt_jnl_hdr_encode(const struct fmt_jnl_hdr *jh, struct vmfs_jnl_hdr *d);

/* Journal descriptor (struct vmfs_jnl_desc); tags one at a time. */
struct fmt_jnl_desc {
	uint64_t gen;
	uint64_t seq;
	uint64_t jid;
	uint32_t ntags;
	uint32_t index;
};
/* -VMFS_E_CORRUPT: no tags, or more than a descriptor holds. */
int fmt_jnl_desc_decode(const struct vmfs_jnl_desc *d,
			struct fmt_jnl_desc *jd);
void fmt_jnl_desc_encode(const struct fmt_jnl_desc *jd,
			 struct vmfs_jnl_desc *d);
void fmt_jnl_tag_get(const struct vmfs_jnl_desc *d, uint32_t i,
		     uint64_t *addr, uint32_t *flags);
void fmt_jnl_tag_set(struct vmfs_jnl_desc *d, uint32_t i, uint64_t addr,
		     uint32_t flags);

/* Journal commit record (struct vmfs_jnl_commit). */
struct fmt_jnl_commit {
	uint64_t gen;
	uint64_t seq;
	uint64_t jid;
	uint32_t nblocks;
	uint32_t crc;
	int64_t time_ns;
	uint32_t nimages;
};
void fmt_jnl_commit_decode(const struct vmfs_jnl_commit *d,
			   struct fmt_jnl_commit *jc);
void fmt_jnl_commit_encode(const struct fmt_jnl_commit *jc,
			   struct vmfs_jnl_commit *d);

#endif /* VMFS_FORMAT_H */
