/*
 * fsck: check and repair a vmfs volume.
 *
 * The checker runs a fixed table of passes (fsck/passN_*.c), each opening
 * with a comment that lists its checks and what it hands to later passes.
 * Every repair goes through fsck_fix() with a problem code from the table
 * below; the table (fsck/problem.c) holds the message and what answering
 * "yes" does, and docs/fsck.md lists every code.  The corruption tool
 * (tools/corrupt/, a test program apart from the product) damages a
 * fresh volume exactly as a code describes, so each code has a test
 * image (tests/fsck/).
 *
 * Library rules: no printing, no exit; messages, questions and progress
 * go through the callbacks in struct fsck_opts.
 */
#ifndef VMFS_FSCK_H
#define VMFS_FSCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vmfs/error.h"

struct lun;
struct vol_geom;
struct hb_slot_info;

/*
 * Problem codes: PR_<pass>_<what>.  Values are stable (they appear in
 * logs, --json output and test names); never renumber, only append.
 */
enum fsck_problem {
	/* pass 0: volume header, backup, geometry */
	PR_0_PRIMARY_BAD = 0x0001,      /* primary header damaged: restore from backup */
	PR_0_BACKUP_BAD = 0x0002,       /* backup header damaged: rewrite from primary */
	PR_0_HEADERS_DIFFER = 0x0003,   /* copies disagree: rewrite backup from primary */
	PR_0_NOT_VOLUME = 0x0004,       /* no header at all: give up (exit 8) */
	PR_0_GEOMETRY = 0x0005,         /* impossible layout in both copies: give up */

	/* pass 1: heartbeat region, slots, lock records */
	PR_1_HB_REGION_BAD = 0x0101,    /* region header damaged: rewrite it */
	PR_1_HB_SLOT_BAD = 0x0102,      /* slot block damaged: reset it free */
	PR_1_HB_SLOT_STALE = 0x0103,    /* slot active, host not live: free it */
	PR_1_LOCK_BAD = 0x0104,         /* lock record damaged: reset it free */
	PR_1_LOCK_STALE = 0x0105,       /* held by a free or dead slot: free it */
	PR_1_LOCK_BAD_MODE = 0x0106,    /* impossible mode or holder count: free it */

	/* pass 2: journal regions */
	PR_2_JOURNAL_BAD = 0x0201,      /* journal header damaged: rewrite clean */
	PR_2_JOURNAL_SLOT = 0x0202,     /* header names the wrong slot or size: fix */
	PR_2_JOURNAL_DIRTY = 0x0203,    /* committed transactions not replayed: replay */
	PR_2_JOURNAL_RECORD_BAD = 0x0204, /* a transaction names blocks outside the
					   * metadata areas or overruns the ring:
					   * replay what precedes it */

	/* pass 3: resource clusters, inodes, block maps */
	PR_3_CLUSTER_BAD = 0x0301,      /* cluster header damaged: rebuild it */
	PR_3_INODE_BAD = 0x0302,        /* inode block fails verification: clear inode */
	PR_3_INODE_MODE = 0x0303,       /* unknown file type: clear inode */
	PR_3_INODE_MAP_TYPE = 0x0304,   /* map type impossible for the file type: fix */
	PR_3_PTR_RANGE = 0x0305,        /* pointer outside its area or misaligned: make a hole */
	PR_3_PTRBLK_BAD = 0x0306,       /* pointer block damaged: drop its subtree */
	PR_3_BLOCK_DUP = 0x0307,        /* block claimed twice: clone it for one owner */
	PR_3_ALLOC_BYTES = 0x0308,      /* allocated-bytes count wrong: fix */
	PR_3_TBZ_BAD = 0x0309,          /* to-be-zeroed flag where none may be: clear it */
	PR_3_INLINE_TAIL = 0x030a,      /* inline bytes past EOF not zero: zero them */
	PR_3_INLINE_SIZE = 0x030b,      /* inline file larger than the inline area: truncate */
	PR_3_DIR_SIZE = 0x030c,         /* directory size not whole chunks: fix */
	PR_3_XATTR_BAD = 0x030d,        /* xattr area inconsistent: keep the valid prefix */
	PR_3_SMALL_TOO_BIG = 0x030e,    /* small-block file needs indirection: truncate map */
	PR_3_PTRBLK_OWNER = 0x030f,     /* pointer block names another owner or level: drop */
	PR_3_CLUSTER_UNINIT = 0x0310,   /* cluster flagged never initialised has objects
					 * in use: trust the bits, drop the flag */

	/* pass 4: directories and connectivity */
	PR_4_CHUNK_BAD = 0x0401,        /* directory chunk damaged: clear it */
	PR_4_DIRENT_BAD_INODE = 0x0402, /* entry names a free or cleared inode: remove */
	PR_4_DIRENT_BAD_NAME = 0x0403,  /* empty name, '/', NUL, "." or "..": remove */
	PR_4_DIRENT_HASH = 0x0404,      /* stored name hash wrong: fix */
	PR_4_DIRENT_DUP = 0x0405,       /* same name twice: rename the later one */
	PR_4_DIRENT_TYPE = 0x0406,      /* entry type differs from the inode: fix */
	PR_4_CHUNK_COUNT = 0x0407,      /* chunk's live-entry count wrong: fix */
	PR_4_DIR_PARENT = 0x0408,       /* ".." (di_parent) wrong: fix */
	PR_4_DIR_MULTILINK = 0x0409,    /* directory named twice: remove the extra entry */
	PR_4_UNREACHABLE = 0x040a,      /* inode not reachable from root: to lost+found */
	PR_4_NO_ROOT = 0x040b,          /* root missing or not a directory: recreate */
	PR_4_NO_LOSTFOUND = 0x040c,     /* lost+found missing: recreate */

	/* pass 5: link and entry counts */
	PR_5_NLINK = 0x0501,            /* link count wrong: fix */
	PR_5_NENTRIES = 0x0502,         /* directory entry count wrong: fix */
	PR_5_ORPHAN = 0x0503,           /* allocated inode with no links: free it */

	/* pass 6: bitmaps and summary counts */
	PR_6_LEAKED = 0x0601,           /* in use in the bitmap, owned by nothing: free */
	PR_6_UNMARKED = 0x0602,         /* owned but free in the bitmap: mark in use */
	PR_6_NFREE = 0x0603,            /* cluster free count wrong: fix */
	PR_6_BITS_BEYOND = 0x0604,      /* bits set past the cluster's objects: clear */
};

/* fsck(8) exit status bits. */
#define FSCK_EXIT_OK 0
#define FSCK_EXIT_FIXED 1
#define FSCK_EXIT_UNCORRECTED 4
#define FSCK_EXIT_ERROR 8

enum fsck_mode {
	FSCK_MODE_NO,      /* -n: report only, open read-only */
	FSCK_MODE_YES,     /* -y: repair everything */
	FSCK_MODE_PREEN,   /* -p: repair what is safe without asking */
	FSCK_MODE_ASK      /* ask through opts->ask for every repair */
};

struct fsck_problem_info {
	enum fsck_problem code;
	const char *name;      /* "PR_3_BLOCK_DUP" */
	const char *message;   /* what is wrong */
	const char *fix;       /* what "yes" does */
	bool preen_ok;         /* -p may do it without asking */
};

/* The code table (for docs, tests and the corruption tool). */
const struct fsck_problem_info *fsck_problem_table(unsigned *n);
const struct fsck_problem_info *fsck_problem_find(enum fsck_problem code);
const struct fsck_problem_info *fsck_problem_by_name(const char *name);

struct fsck_opts {
	enum fsck_mode mode;
	bool force;                 /* repair even though a host is live */
	uint64_t mem_limit_bytes;   /* default 256 MiB; maps spill to disk beyond */
	const char *tmp_dir;        /* where spill files go (default /tmp) */
	/* A problem found: code, the object's address, a detail line, and
	 * whether it was fixed. */
	void (*report)(void *ctx, const struct fsck_problem_info *p,
		       uint64_t addr, const char *detail, bool fixed);
	/* FSCK_MODE_ASK: return true to repair. */
	bool (*ask)(void *ctx, const struct fsck_problem_info *p,
		    const char *detail);
	/* pass (0..6), name, done and total units of that pass */
	void (*progress)(void *ctx, int pass, const char *name,
			 uint64_t done, uint64_t total);
	/* Informational lines (which hosts are live, summary). */
	void (*info)(void *ctx, const char *line);
	/* A problem reported as information only: not repaired, counted in
	 * fsck_result.notes, not in problems_found, no exit bit.  Today, in
	 * a read-only run: a dead host's stale heartbeat slot, when that
	 * host's journal is clean or replayable, and a file-block cluster
	 * header a cut grow left counting fewer objects (what a mount or
	 * fsck -y does with either is routine). */
	void (*note)(void *ctx, const struct fsck_problem_info *p,
		     uint64_t addr, const char *detail);
	void *ctx;
};

struct fsck_result {
	int exit_code;              /* FSCK_EXIT_* bits */
	uint64_t problems_found;
	uint64_t problems_fixed;
	uint64_t notes;             /* reported as information (opts.note) */
	uint64_t inodes_checked;
	uint64_t dirs_checked;
	uint64_t blocks_checked;
	uint64_t peak_map_bytes;    /* in-memory map peak */
	uint64_t spilled_entries;   /* entries that went to the on-disk maps */
	char error[256];            /* operational error, when exit_code has 8 */
};

/*
 * The liveness survey fsck makes before it writes anything, for other
 * commands that must not write under a live host (vmfs journal replay):
 * every heartbeat slot that is not free, sampled twice a lease and a
 * renewal apart on our own clock (hb_survey with watch; from the geometry
 * when the region header is damaged), live set where the counter moved.
 * out has room for g->max_hosts slots.  Sleeps only when a slot is held.
 */
int fsck_hosts_watch(struct lun *lun, const struct vol_geom *g,
		     struct hb_slot_info *out, uint32_t *n);

/*
 * "slot 3 (host esx1, uuid ...)": how fsck and the commands that refuse
 * to write under a live host name it.
 */
void fsck_host_describe(const struct hb_slot_info *si, char *out, size_t len);

void fsck_opts_init(struct fsck_opts *o);
/* Check (and repair, per mode) the volume on lun. */
int fsck_run(struct lun *lun, const struct fsck_opts *o, struct fsck_result *r);

#endif /* VMFS_FSCK_H */
