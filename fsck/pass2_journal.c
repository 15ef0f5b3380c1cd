/*
 * Pass 2: journal regions, one per heartbeat slot.  fsck replays every
 * journal first (DESIGN.md), so the passes after this one read the
 * metadata a host would see after a mount.
 *
 * Header checks (jnl_header_read verifies the envelope and the state):
 *   - a header that fails verification, or whose tail/head lie outside
 *     its region, or that says clean while tail != head
 *     (PR_2_JOURNAL_BAD: rewritten clean and empty, as mkfs writes it;
 *     what the journal held is lost with its header);
 *   - a header naming another slot or another region size
 *     (PR_2_JOURNAL_SLOT: both set from the geometry).
 * Then every dirty journal is walked from its tail (jnl_walk):
 *   - committed transactions (PR_2_JOURNAL_DIRTY) are replayed with
 *     jnl_replay, which also marks the journal clean.  A mount does the
 *     same, so preen does it too.  A journal that is dirty with nothing
 *     committed (its host stopped while idle) is only marked clean, with
 *     an info line and no problem: it changes nothing a host would see;
 *   - a committed transaction that names a block outside the metadata
 *     areas, or that is longer than the ring (PR_2_JOURNAL_RECORD_BAD):
 *     the transactions before it are replayed and the journal is marked
 *     clean, so it and whatever follows are discarded (what a mount does
 *     too, with a warning);
 *   - -n never writes: the committed images of every dirty journal go
 *     into the overlay (overlay.c) that fsck_read() reads through, so
 *     the later passes check the volume as it will be after replay, and
 *     an info line says which journals a mount or fsck -y will replay.
 *     A live host's journal (dirty while it is mounted) is read the same
 *     way: its latest transactions may not be home yet;
 *   - a "no" to either problem (ask mode; preen for a bad record) leaves
 *     that journal as it is, reads it through the overlay, and makes the
 *     rest of the run read-only: a repair written home now would be
 *     overwritten by the next replay of the older images.
 * The lock record in front of each header was checked in pass 1 and is
 * kept as it is on disk; replay and the overlay keep every lock record.
 *
 * Hands on: clean journals and their transactions home; or, in a
 * read-only run, the overlay (c->ovl) that fsck_read() applies.  Each
 * slot's jnl_sound (nothing reported about its journal), with which the
 * stale slots of a read-only run are then settled (pass1_hb.c).
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include "vmfs/journal.h"
#include "fsck_int.h"

/*
 * Rewrite the object part of the header block at addr, clean and empty,
 * with a fresh jid (as mkfs does) so that no record left in the ring can
 * pass for one of the new header's.
 */
static int jnl_rewrite(struct fsck_ctx *c, uint8_t *blk, uint64_t addr,
		       uint32_t slot, uint64_t seq)
{
	struct vmfs_jnl_hdr *jh = (struct vmfs_jnl_hdr *)(blk + VMFS_OBJ_OFFSET);
	struct fmt_jnl_hdr h;
	uint64_t jid;

	(void)fmt_jnl_hdr_decode(jh, &h);
	if (getrandom(&jid, sizeof(jid), 0) != sizeof(jid))
		jid = h.jid ^ (h.gen * 0x9e3779b97f4a7c15ull) ^ addr;
	memset(jh, 0, FSCK_OBJ_LEN);
	fmt_jnl_hdr_encode(&(struct fmt_jnl_hdr){
				   .gen = h.gen, .slot = slot,
				   .state = VMFS_JNL_CLEAN,
				   .size_bytes = c->g.journal_size_bytes,
				   .tail = VMFS_MD_BLOCK_SIZE,
				   .head = VMFS_MD_BLOCK_SIZE,
				   .seq = seq ? seq : 1, .jid = jid }, jh);
	fsck_seal(&jh->jh_hdr, VMFS_MAGIC_JOURNAL, addr, FSCK_OBJ_LEN);
	return fsck_write_md(c, blk, VMFS_MD_BLOCK_SIZE, addr);
}

/* Every committed image of a transaction into the overlay. */
static int overlay_txn(void *arg, const struct jnl_txn *t)
{
	struct fsck_ctx *c = arg;

	for (uint32_t n = 0; n < t->nimages; n++) {
		int ret = fsck_overlay_add(c, t->addr[n], t->flags[n],
					   t->img + (size_t)n * VMFS_MD_BLOCK_SIZE);

		if (ret)
			return ret;
	}
	return 0;
}

/* Read the committed transactions of slot i's journal into the overlay. */
static int overlay_load(struct fsck_ctx *c, uint32_t i, uint64_t addr,
			const struct jnl_bounds *b)
{
	const struct fsck_slot *s = &c->slots[i];
	struct jnl_walk_result w;
	int ret;

	ret = jnl_walk(c->lun, addr, b, false, overlay_txn, c, &w);
	if (ret) {
		fsck_fail(c, ret, "reading the journal of slot %u", i);
		return ret;
	}
	if (!w.ntxn)
		return 0;
	if (s->live)
		fsck_info(c, "slot %u (live host %s): its journal holds %llu "
			  "committed transaction%s (%llu block%s) that may not all "
			  "be written home yet; checking the volume with them applied",
			  i, s->hostname[0] ? s->hostname : "?",
			  (unsigned long long)w.ntxn, w.ntxn == 1 ? "" : "s",
			  (unsigned long long)w.nimages, w.nimages == 1 ? "" : "s");
	else
		fsck_info(c, "slot %u: its journal holds %llu committed "
			  "transaction%s (%llu block%s) that a mount or 'vmfs fsck -y' "
			  "will replay; checking the volume as it will be after replay",
			  i, (unsigned long long)w.ntxn, w.ntxn == 1 ? "" : "s",
			  (unsigned long long)w.nimages, w.nimages == 1 ? "" : "s");
	return 0;
}

/* A dirty journal: replay it, or (read-only) read it into the overlay. */
static int jnl_check(struct fsck_ctx *c, uint32_t i, uint64_t addr)
{
	struct jnl_bounds b = vol_jnl_bounds(&c->g);
	struct jnl_walk_result w;
	bool replay = true;
	int ret;

	ret = jnl_walk(c->lun, addr, &b, false, NULL, NULL, &w);
	if (ret) {
		fsck_fail(c, ret, "reading the journal of slot %u", i);
		return ret;
	}
	if (w.stop == JNL_STOP_BAD_TAG || w.stop == JNL_STOP_TOO_LONG)
		replay = fsck_fix(c, PR_2_JOURNAL_RECORD_BAD, addr,
				  "slot %u: the log stops at transaction %llu (after %llu "
				  "sound ones) with %s", i,
				  (unsigned long long)w.next_seq,
				  (unsigned long long)w.ntxn, jnl_stop_str(w.stop));
	if (!c->writable)
		return overlay_load(c, i, addr, &b);
	if (replay && w.ntxn)
		replay = fsck_fix(c, PR_2_JOURNAL_DIRTY, addr,
				  "slot %u: %llu transaction%s (%llu block%s) from sequence %llu",
				  i, (unsigned long long)w.ntxn, w.ntxn == 1 ? "" : "s",
				  (unsigned long long)w.nimages, w.nimages == 1 ? "" : "s",
				  (unsigned long long)w.hdr.seq);
	if (!replay) {
		fsck_info(c, "slot %u: journal not replayed; the rest of this run "
			  "only reports, checking the volume as it will be after "
			  "replay", i);
		c->writable = false;
		return overlay_load(c, i, addr, &b);
	}
	ret = jnl_replay(c->lun, addr, &b, &w);
	c->wrote = true;
	if (ret) {
		fsck_fail(c, ret, "replaying the journal of slot %u", i);
		return ret;
	}
	if (w.ntxn)
		fsck_info(c, "slot %u: replayed %llu transaction%s (%llu block%s)",
			  i, (unsigned long long)w.ntxn, w.ntxn == 1 ? "" : "s",
			  (unsigned long long)w.nimages, w.nimages == 1 ? "" : "s");
	else if (w.stop != JNL_STOP_BAD_TAG && w.stop != JNL_STOP_TOO_LONG)
		fsck_info(c, "slot %u: journal was dirty with nothing committed; "
			  "marked clean", i);
	return 0;
}

/* The journal region of slot i: its header, then replay or read-through. */
static int jnl_region_check(struct fsck_ctx *c, uint8_t *blk, uint32_t i)
{
	uint64_t size = c->g.journal_size_bytes;
	uint64_t addr = vol_jnl_offset(&c->g, i);
	struct vmfs_jnl_hdr *jh = (struct vmfs_jnl_hdr *)(blk + VMFS_OBJ_OFFSET);
	struct fmt_jnl_hdr h;
	struct jnl_info ji;
	int vr, ret;

	vr = jnl_header_read(c->lun, addr, &ji);
	if (vr == -EIO || vr == -ENOMEM || vr == -ETIMEDOUT) {
		fsck_fail(c, vr, "reading the journal header of slot %u", i);
		return vr;
	}
	ret = fsck_read(c, blk, VMFS_MD_BLOCK_SIZE, addr);
	if (ret)
		return ret;
	/* jnl_header_read judged it; the raw fields serve the repairs. */
	(void)fmt_jnl_hdr_decode(jh, &h);
	if (!vr && (ji.tail < VMFS_MD_BLOCK_SIZE || ji.tail >= size ||
		    ji.head < VMFS_MD_BLOCK_SIZE || ji.head >= size ||
		    (ji.state == VMFS_JNL_CLEAN && ji.tail != ji.head)))
		vr = -VMFS_E_CORRUPT;
	if (vr) {
		if (fsck_fix(c, PR_2_JOURNAL_BAD, addr,
			     "slot %u at %llu: %s", i,
			     (unsigned long long)addr, fsck_err(vr)))
			ret = jnl_rewrite(c, blk, addr, i, h.seq + 1);
		return ret;
	}
	if (ji.slot != i || ji.size_bytes != size) {
		if (fsck_fix(c, PR_2_JOURNAL_SLOT, addr,
			     "slot %u: header says slot %u, %llu bytes (want %llu)",
			     i, ji.slot, (unsigned long long)ji.size_bytes,
			     (unsigned long long)size)) {
			h.slot = i;
			h.size_bytes = size;
			fmt_jnl_hdr_encode(&h, jh);
			fsck_seal(&jh->jh_hdr, VMFS_MAGIC_JOURNAL, addr,
				  FSCK_OBJ_LEN);
			ret = fsck_write_md(c, blk, VMFS_MD_BLOCK_SIZE, addr);
			ji.size_bytes = size;
		}
	}
	if (ret || ji.state != VMFS_JNL_DIRTY)
		return ret;
	/* The walk goes by the header's size: never past the region. */
	if (ji.size_bytes != size) {
		fsck_info(c, "slot %u: the journal header names a %llu-byte "
			  "region; its transactions are not read until that "
			  "is repaired", i, (unsigned long long)ji.size_bytes);
		return 0;
	}
	return jnl_check(c, i, addr);
}

int fsck_pass2(struct fsck_ctx *c)
{
	uint8_t *blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	int ret = 0;

	if (!blk)
		return -ENOMEM;
	for (uint32_t i = 0; !ret && i < c->g.max_hosts && !c->abort; i++) {
		uint64_t found = c->r->problems_found;

		fsck_progress(c, 2, "journals", i, c->g.max_hosts);
		ret = jnl_region_check(c, blk, i);
		/* Clean, or dirty and replayable (replayed, or read through
		 * in a read-only run): nothing reported about it. */
		c->slots[i].jnl_sound = !ret && !c->abort &&
					c->r->problems_found == found;
	}
	lun_buf_free(blk);
	if (!ret && c->ovl)
		fsck_overlay_seal(c);
	fsck_stale_slots_settle(c);
	return ret;
}
