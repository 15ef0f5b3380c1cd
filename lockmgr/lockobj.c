/*
 * Writing metadata blocks home without touching their lock records
 * (SPEC §1.3, lockmgr.h lock_obj_write).
 *
 * Every writer of a lockable block holds a cached 4 KiB image of it: the
 * engine's inode cache, the journal's logged image, a header read a
 * moment ago.  Its first 512 bytes are the lock record as it was when
 * the image was taken.  Other hosts change that record with
 * compare-and-write at any time (a holder joining a shared lock needs no
 * one's permission), so writing the cached record back would silently
 * undo their change.  The record is therefore never written from a cache:
 *
 *  - 512-byte sectors: the object starts on a sector boundary and is
 *    written alone.  A lock change is a compare-and-write of sector 0,
 *    the object write covers sectors 1..7: they never overlap, and no
 *    ordering between them matters.
 *  - 4096-byte sectors: the block is one sector, so every write of it
 *    carries the record.  Both sides then compare-and-write the whole
 *    block against the bytes they read, and each keeps the other's half
 *    as found: the lock manager keeps the object (lock_try_build), this
 *    file keeps the record.  Whichever lands second sees a miscompare,
 *    takes the bytes that are there now and writes again, so neither
 *    change is lost.  Through RESERVE the read-compare-write happens
 *    inside the reservation, and a COMPARE AND WRITE from another host is
 *    refused while it is held (SPEC §5.2), so the two primitives exclude
 *    each other too.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "vmfs/clock.h"
#include "vmfs/lun.h"
#include "lock_int.h"

#define BLK VMFS_MD_BLOCK_SIZE
#define OBJ VMFS_OBJ_OFFSET

/* Plain writes handed to one lun_submit (the journal's home batch). */
#define MD_BATCH 64

/* The whole-block compare-and-write of a 4096-byte-sector LUN. */
static int obj_write_whole(struct lun *lun, const uint8_t *img, uint64_t addr)
{
	int64_t start_us = vmfs_mono_us();
	int64_t end_us = start_us + (int64_t)LOCK_PRIM_WAIT_MS * 1000;
	struct lock_backoff bo = { .delay_us = LOCK_BACKOFF_MIN_US };
	unsigned prim = lock_prim_pick(lun, 0);
	uint8_t *buf = lun_buf_alloc(3 * BLK);
	uint8_t *cur = buf, *next = buf + BLK, *seen = buf + 2 * BLK, *t;
	unsigned races = 0;
	bool reserved = false;
	int ret;

	if (!buf)
		return -ENOMEM;
	bo.rng = (uint64_t)vmfs_mono_ns() ^ addr ^ (uintptr_t)buf;
	ret = lun_read(lun, cur, BLK, addr);
	while (!ret) {
		int64_t left_ms = (end_us - vmfs_mono_us()) / 1000;

		memcpy(next, cur, OBJ);
		memcpy(next + OBJ, img + OBJ, BLK - OBJ);
		if (!prim) {
			/* Nothing can lock on this LUN, so nothing races. */
			ret = lun_write(lun, next, BLK, addr);
			break;
		}
		ret = lock_prim_caw(lun, prim, left_ms > 0 ? (unsigned)left_ms : 0,
				    cur, next, BLK, addr, seen);
		if (ret == -VMFS_E_MISCOMPARE) {
			/* seen is the re-read: write again over it, at once the
			 * first time, then with backoff (SPEC §5.3). */
			t = cur;
			cur = seen;
			seen = t;
			if (races++ && !lock_backoff_sleep(&bo, end_us))
				ret = -EBUSY;
			else
				ret = 0;
		} else if (ret == -VMFS_E_RESERVED) {
			if (!reserved) {
				reserved = true;
				end_us = lock_prim_reserved_end(lun, start_us,
								end_us);
			}
			if (!lock_backoff_sleep(&bo, end_us))
				break;
			ret = 0;
		} else {
			break;
		}
	}
	lun_buf_free(buf);
	return ret;
}

int lock_obj_write(struct lun *lun, const void *img, uint64_t addr)
{
	const uint8_t *p = img;

	if (lun_sector_size(lun) <= OBJ)
		return lun_write(lun, p + OBJ, BLK - OBJ, addr + OBJ);
	return obj_write_whole(lun, p, addr);
}

int lock_md_writev(struct lun *lun, const struct lock_md_blk *blks,
		   unsigned n)
{
	bool split = lun_sector_size(lun) <= OBJ;
	struct lun_io io[MD_BATCH];
	unsigned m = 0;
	int ret = 0;

	for (unsigned i = 0; !ret && i < n; i++) {
		const struct lock_md_blk *b = &blks[i];
		uint32_t skip = b->lockable ? OBJ : 0;

		if (b->lockable && !split) {
			ret = obj_write_whole(lun, b->img, b->addr);
			continue;
		}
		io[m] = (struct lun_io){
			.op = LUN_OP_WRITE,
			.buf = (uint8_t *)b->img + skip,
			.len = BLK - skip,
			.off = b->addr + skip,
		};
		if (++m == MD_BATCH) {
			ret = lun_submit(lun, io, m);
			m = 0;
		}
	}
	if (!ret && m)
		ret = lun_submit(lun, io, m);
	return ret;
}

int lock_md_write(struct lun *lun, const void *img, uint64_t addr,
		  bool lockable)
{
	struct lock_md_blk b = { .img = img, .addr = addr, .lockable = lockable };

	return lock_md_writev(lun, &b, 1);
}
