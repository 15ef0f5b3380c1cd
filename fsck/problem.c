/*
 * The problem table: every code fsck can report, what it means, what
 * answering "yes" does, and whether preen (-p) may do it unasked (e2fsck
 * problem.c, ocfs2 prompt-codes.h).  docs/fsck.md lists the same rows;
 * tests/unit/test_fsck_problem.c checks the table has each code of
 * fsck.h exactly once.
 *
 * Preen repairs only what cannot lose data or hide a deeper problem:
 * stale leases, counts and bitmaps that are recomputed from what is
 * really there, orphans the engine itself would have freed, and journal
 * replay, which a mount does anyway.
 */
#include <string.h>
#include "fsck_int.h"

#define P(code, msg, fix, preen) { code, #code, msg, fix, preen }

static const struct fsck_problem_info fsck_problems[] = {
	P(PR_0_PRIMARY_BAD, "primary volume header is damaged",
	  "restore it from the backup header", false),
	P(PR_0_BACKUP_BAD, "backup volume header is damaged",
	  "rewrite it from the primary header", true),
	P(PR_0_HEADERS_DIFFER, "primary and backup volume headers disagree",
	  "rewrite the backup from the primary", true),
	P(PR_0_NOT_VOLUME, "no vmfs volume header in either copy",
	  "nothing: give up (run 'vmfs mkfs' to make a volume)", false),
	P(PR_0_GEOMETRY, "both volume headers are unusable (impossible layout or damage)",
	  "nothing: give up, the layout cannot be trusted", false),

	P(PR_1_HB_REGION_BAD, "heartbeat region header is damaged",
	  "rewrite it from the geometry", false),
	P(PR_1_HB_SLOT_BAD, "heartbeat slot is damaged",
	  "reset the slot free", false),
	P(PR_1_HB_SLOT_STALE, "heartbeat slot is active but its host is not live",
	  "free the slot", true),
	P(PR_1_LOCK_BAD, "lock record is damaged",
	  "reset the lock free", false),
	P(PR_1_LOCK_STALE, "lock is held by a host that is not live",
	  "free the lock", true),
	P(PR_1_LOCK_BAD_MODE, "lock record has an impossible mode or holder count",
	  "reset the lock free", false),

	P(PR_2_JOURNAL_BAD, "journal header is damaged",
	  "rewrite a clean, empty journal header", false),
	P(PR_2_JOURNAL_SLOT, "journal header names the wrong slot or size",
	  "set the slot and size from the geometry", true),
	P(PR_2_JOURNAL_DIRTY, "journal holds committed transactions that were never replayed",
	  "replay them (write each block home) and mark the journal clean", true),
	P(PR_2_JOURNAL_RECORD_BAD,
	  "committed transaction names blocks outside the metadata areas or "
	  "overruns the journal",
	  "replay the transactions before it and mark the journal clean "
	  "(it and everything after it are discarded)", false),

	P(PR_3_CLUSTER_BAD, "resource-cluster header is damaged",
	  "rebuild it from the objects found in use", false),
	P(PR_3_INODE_BAD, "inode in use fails verification",
	  "clear the inode", false),
	P(PR_3_INODE_MODE, "inode has an unknown file type",
	  "clear the inode", false),
	P(PR_3_INODE_MAP_TYPE, "inode map type is impossible for its file type",
	  "set the map type the file type needs (data that cannot be kept is dropped)",
	  false),
	P(PR_3_PTR_RANGE, "block pointer outside its area or misaligned",
	  "make it a hole", false),
	P(PR_3_PTRBLK_BAD, "pointer block fails verification",
	  "drop its subtree (make it a hole)", false),
	P(PR_3_BLOCK_DUP, "block is claimed by two owners",
	  "copy it to a free block for the second owner", false),
	P(PR_3_ALLOC_BYTES, "inode's allocated-bytes count is wrong",
	  "set it from the blocks the inode owns", true),
	P(PR_3_TBZ_BAD, "to-be-zeroed flag where none may be",
	  "clear the flag", false),
	P(PR_3_INLINE_TAIL, "inline bytes past the end of file are not zero",
	  "zero them", true),
	P(PR_3_INLINE_SIZE, "inline file is larger than the inline area",
	  "truncate it to the inline area", false),
	P(PR_3_DIR_SIZE, "directory size is not a whole number of mapped chunks",
	  "cut it to the chunks that exist", false),
	P(PR_3_XATTR_BAD, "extended attribute area is inconsistent",
	  "keep the valid records before the damage", false),
	P(PR_3_SMALL_TOO_BIG, "small-block file needs indirection or exceeds its limit",
	  "drop the indirect trees and cut the size", false),
	P(PR_3_PTRBLK_OWNER, "pointer block names another owner or level",
	  "drop the reference (make it a hole)", false),
	P(PR_3_CLUSTER_UNINIT, "cluster marked never initialised has objects in use",
	  "keep its objects and drop the mark", false),

	P(PR_4_CHUNK_BAD, "directory chunk is damaged",
	  "clear the chunk (its entries are lost; their inodes go to lost+found)",
	  false),
	P(PR_4_DIRENT_BAD_INODE, "directory entry names a free or cleared inode",
	  "remove the entry", false),
	P(PR_4_DIRENT_BAD_NAME, "directory entry has an invalid name",
	  "remove the entry", false),
	P(PR_4_DIRENT_HASH, "directory entry's name hash is wrong",
	  "recompute it", true),
	P(PR_4_DIRENT_DUP, "directory holds the same name twice",
	  "rename the later entry to NAME.dupN", false),
	P(PR_4_DIRENT_TYPE, "directory entry's type differs from the inode",
	  "set it from the inode", true),
	P(PR_4_CHUNK_COUNT, "directory chunk's live-entry count is wrong",
	  "set it from the entries", true),
	P(PR_4_DIR_PARENT, "directory's parent (\"..\") is wrong",
	  "set it to the directory holding its entry", false),
	P(PR_4_DIR_MULTILINK, "directory is named by more than one entry",
	  "remove the extra entry", false),
	P(PR_4_UNREACHABLE, "inode is not reachable from the root",
	  "connect it to /lost+found as #INO", false),
	P(PR_4_NO_ROOT, "root directory is missing or not a directory",
	  "recreate an empty root", false),
	P(PR_4_NO_LOSTFOUND, "lost+found is missing or not a directory",
	  "recreate it", false),

	P(PR_5_NLINK, "inode link count is wrong",
	  "set it from the entries found", true),
	P(PR_5_NENTRIES, "directory entry count is wrong",
	  "set it from the entries found", true),
	P(PR_5_ORPHAN, "allocated inode has no links",
	  "free the inode and its blocks", true),

	P(PR_6_LEAKED, "objects marked in use are owned by nothing",
	  "mark them free", true),
	P(PR_6_UNMARKED, "objects in use are marked free",
	  "mark them in use", true),
	P(PR_6_NFREE, "cluster free count is wrong",
	  "set it from the bitmap", true),
	P(PR_6_BITS_BEYOND, "bitmap bits are set past the cluster's objects",
	  "clear them", true),
};

#define NPROBLEMS (sizeof(fsck_problems) / sizeof(fsck_problems[0]))

const struct fsck_problem_info *fsck_problem_table(unsigned *n)
{
	if (n)
		*n = NPROBLEMS;
	return fsck_problems;
}

const struct fsck_problem_info *fsck_problem_find(enum fsck_problem code)
{
	for (unsigned i = 0; i < NPROBLEMS; i++)
		if (fsck_problems[i].code == code)
			return &fsck_problems[i];
	return NULL;
}

const struct fsck_problem_info *fsck_problem_by_name(const char *name)
{
	if (!name)
		return NULL;
	for (unsigned i = 0; i < NPROBLEMS; i++)
		if (!strcmp(fsck_problems[i].name, name))
			return &fsck_problems[i];
	return NULL;
}
