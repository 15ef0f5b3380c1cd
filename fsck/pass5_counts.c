/*
 * Pass 5: link and entry counts, orphans (e2fsck pass 4).
 *
 * Checks, for every inode pass 3 found in use:
 *   - no entry names it and it has no links on disk (an unlinked file
 *     that was still open when its host stopped, or an emptied directory
 *     removed the same way) (PR_5_ORPHAN: its blocks are released, the
 *     inode is written free, mode 0, incarnation kept, and its bit
 *     cleared -- what the engine itself would have done at the last
 *     close);
 *   - di_nlink: files = entries naming them, directories = 2 + the
 *     subdirectories whose entry they hold (PR_5_NLINK);
 *   - di_nentries of directories = live entries pass 4 kept
 *     (PR_5_NENTRIES).
 * An inode with no links whose orphan bit is set (rc_orphan: it was
 * unlinked while open and its host stopped before the last close) is no
 * problem: the next mount frees it, and a repairing run frees it here
 * without a report; a read-only run only counts it.
 * A file whose unlinked bit is set (rc_unlinked: a host removed one of
 * its names while another host had it open, SPEC §8) has one link more
 * on disk than entries: that is no problem either.  A repairing run
 * applies the drop as the engine would (di_nlink one less, the bit
 * cleared, the inode freed at zero links) without a report; a read-only
 * run counts the link as gone and notes how many drops wait.  The bit
 * on a directory, or on a file with no link left to drop, means nothing
 * and a repairing run clears it.
 * A file with links on disk but no entry that pass 4 could not (or was
 * not allowed to) reconnect is left alone: it was already reported.
 *
 * Hands on: ownership with orphans' blocks released, for pass 6.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include "fsck_int.h"

static void free_orphan(struct fsck_ctx *c, uint64_t ino, uint8_t *blk)
{
	if (fsck_inode_unown(c, blk, true) || vol_raw_inode_clear(fsck_raw(c), ino, blk))
		return;
	fsck_obj_release(c, VMFS_RES_INODE, ino);
	bm_clr(c->isdir, ino);
}

static void write_counts(struct fsck_ctx *c, uint64_t ino,
			 uint8_t *blk, const struct fmt_inode *fi)
{
	fmt_inode_encode(fi, fsck_di(blk));
	vol_raw_inode_write(fsck_raw(c), ino, blk);
}

static void check_counts(struct fsck_ctx *c, uint64_t ino, uint8_t *blk)
{
	struct vmfs_inode *di = fsck_di(blk);
	struct fmt_inode fi;
	uint32_t mode, nlink;
	uint64_t addr = fsck_inode_addr(c, ino), want, nent = 0;
	bool dir = bm_test(c->isdir, ino), named, dirty = false, dropped = false;

	/* Pass 3 checked the fields; only the counts matter here. */
	(void)fmt_inode_decode(di, &fi);
	mode = fi.mode;
	nlink = fi.nlink;
	if (bm_test(c->unlinked, ino)) {
		dropped = !dir && nlink > 0;
		if (dropped) {
			nlink--;
			c->pending++;
		}
		if (c->writable) {
			if (dropped) {
				fi.nlink = nlink;
				dirty = true;
			}
			bm_clr(c->unlinked, ino);
			fsck_cluster_dirty(c, VMFS_RES_INODE, ino);
		}
	}

	if (dir) {
		if (ino != c->g.root_ino)
			fsck_map_get(c, c->parent, ino, &named);
		else
			named = true;
		nent = fsck_map_get(c, c->nent, ino, NULL);
		want = 2 + fsck_map_get(c, c->names, ino, NULL);
	} else {
		want = fsck_map_get(c, c->links, ino, NULL);
		named = want > 0;
	}
	if (!named) {
		/* Pass 4 reported what it could not reconnect. */
		if (nlink || (dir && nent) || ino <= VMFS_LOSTFOUND_INO) {
			if (dirty)
				write_counts(c, ino, blk, &fi);
			return;
		}
		/* Its last link was the pending drop: an orphan like any. */
		if (bm_test(c->orphan, ino) || dropped) {
			c->orphans++;
			if (c->writable)
				free_orphan(c, ino, blk);
			return;
		}
		if (fsck_fix(c, PR_5_ORPHAN, addr,
			     "inode %llu (mode 0%o, %llu bytes) has no links",
			     (unsigned long long)ino, mode,
			     (unsigned long long)fi.size))
			free_orphan(c, ino, blk);
		return;
	}
	if (want > UINT32_MAX)
		want = UINT32_MAX;
	if (nlink != want &&
	    fsck_fix(c, PR_5_NLINK, addr, "inode %llu: link count %u, want %llu",
		     (unsigned long long)ino, nlink, (unsigned long long)want)) {
		fi.nlink = (uint32_t)want;
		dirty = true;
	}
	if (dir && fi.nentries != nent &&
	    fsck_fix(c, PR_5_NENTRIES, addr,
		     "directory %llu: %llu entries recorded, %llu found",
		     (unsigned long long)ino,
		     (unsigned long long)fi.nentries,
		     (unsigned long long)nent)) {
		fi.nentries = nent;
		dirty = true;
	}
	if (dirty)
		write_counts(c, ino, blk, &fi);
}

int fsck_pass5(struct fsck_ctx *c)
{
	const struct fsck_res *ri = &c->res[VMFS_RES_INODE];
	uint8_t *buf = fsck_batch_alloc(ri->count);
	bool found;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	/* Subdirectory counts, from where each directory is named. */
	fsck_map_clear(c, c->names);
	for (uint64_t ino = 1; ino < ri->count && !c->abort; ino++) {
		uint64_t p;

		if (!bm_test(c->isdir, ino) || ino == c->g.root_ino)
			continue;
		p = fsck_map_get(c, c->parent, ino, &found);
		if (found)
			fsck_map_add(c, c->names, p, 1);
	}
	for (uint64_t i = 0; !ret && !c->abort && i < ri->count; i += FSCK_BATCH) {
		uint32_t n = ri->count - i < FSCK_BATCH ? (uint32_t)(ri->count - i)
							: FSCK_BATCH;
		bool any = false;

		for (uint32_t k = 0; k < n && !any; k++)
			any = i + k > 0 && bm_test(ri->owned, i + k);
		if (!any)
			continue;
		fsck_progress(c, 5, "link counts", i, ri->count);
		ret = fsck_read(c, buf, (size_t)n * VMFS_MD_BLOCK_SIZE,
				fsck_inode_addr(c, i));
		for (uint32_t k = 0; !ret && k < n && !c->abort; k++)
			if (i + k > 0 && bm_test(ri->owned, i + k))
				check_counts(c, i + k, buf + (size_t)k * VMFS_MD_BLOCK_SIZE);
	}
	lun_buf_free(buf);
	if (c->pending)
		fsck_info(c, c->writable ?
			  "applied %llu link removals that waited for another host to close the file" :
			  "%llu link removals wait for another host to close the file; the next host to lock it, or 'vmfs fsck -y', applies them",
			  (unsigned long long)c->pending);
	if (c->orphans)
		fsck_info(c, c->writable ?
			  "freed %llu inodes that were unlinked while open" :
			  "%llu inodes were unlinked while open; the next mount frees them",
			  (unsigned long long)c->orphans);
	return ret;
}
