/*
 * Pass 2: journal region headers, one per heartbeat slot.
 *
 * Checks (jnl_header_read verifies the envelope and the state):
 *   - a header that fails verification, or whose tail/head lie outside
 *     its region, or that says clean while tail != head
 *     (PR_2_JOURNAL_BAD: rewritten clean and empty, as mkfs writes it);
 *   - a header naming another slot or another region size
 *     (PR_2_JOURNAL_SLOT: both set from the geometry);
 *   - a dirty journal (PR_2_JOURNAL_DIRTY): replay comes with the
 *     journaling work (DESIGN.md: fsck replays every journal first); until
 *     then the only repair is to mark it clean, which discards its
 *     transactions, so it is never done by preen.
 * The lock record in front of each header was checked in pass 1 and is
 * kept as it is on disk.
 *
 * Hands on: nothing; after this pass every journal is clean, so the
 * metadata later passes read is the metadata a host would see.
 */
#include <errno.h>
#include <string.h>
#include "vmfs/journal.h"
#include "fsck_int.h"

/* Rewrite the object part of the header block at addr, clean and empty. */
static int jnl_rewrite(struct fsck_ctx *c, uint8_t *blk, uint64_t addr,
		       uint32_t slot, uint64_t seq)
{
	struct vmfs_jnl_hdr *jh = (struct vmfs_jnl_hdr *)(blk + VMFS_OBJ_OFFSET);
	uint64_t gen = le64toh(jh->jh_hdr.bh_gen);

	memset(jh, 0, FSCK_OBJ_LEN);
	jh->jh_slot = htole32(slot);
	jh->jh_state = htole32(VMFS_JNL_CLEAN);
	jh->jh_size_bytes = htole64(c->g.journal_size_bytes);
	jh->jh_tail = htole64(VMFS_MD_BLOCK_SIZE);
	jh->jh_head = htole64(VMFS_MD_BLOCK_SIZE);
	jh->jh_seq = htole64(seq ? seq : 1);
	jh->jh_hdr.bh_gen = htole64(gen);
	fsck_seal(&jh->jh_hdr, VMFS_MAGIC_JOURNAL, addr, FSCK_OBJ_LEN);
	return fsck_write_md(c, blk, VMFS_MD_BLOCK_SIZE, addr);
}

int fsck_pass2(struct fsck_ctx *c)
{
	uint8_t *blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	uint64_t size = c->g.journal_size_bytes;
	int ret = 0;

	if (!blk)
		return -ENOMEM;
	for (uint32_t i = 0; !ret && i < c->g.max_hosts && !c->abort; i++) {
		uint64_t addr = c->g.journal_offset + (uint64_t)i * size;
		struct vmfs_jnl_hdr *jh = (struct vmfs_jnl_hdr *)(blk + VMFS_OBJ_OFFSET);
		struct jnl_info ji;
		int vr;

		fsck_progress(c, 2, "journals", i, c->g.max_hosts);
		vr = jnl_header_read(c->lun, addr, &ji);
		if (vr == -EIO || vr == -ENOMEM || vr == -ETIMEDOUT) {
			fsck_fail(c, vr, "reading the journal header of slot %u", i);
			ret = vr;
			break;
		}
		ret = fsck_read(c, blk, VMFS_MD_BLOCK_SIZE, addr);
		if (ret)
			break;
		if (!vr && (ji.tail < VMFS_MD_BLOCK_SIZE || ji.tail >= size ||
			    ji.head < VMFS_MD_BLOCK_SIZE || ji.head >= size ||
			    (ji.state == VMFS_JNL_CLEAN && ji.tail != ji.head)))
			vr = -VMFS_E_CORRUPT;
		if (vr) {
			if (fsck_fix(c, PR_2_JOURNAL_BAD, addr,
				     "slot %u at %llu: %s", i,
				     (unsigned long long)addr, fsck_err(vr)))
				ret = jnl_rewrite(c, blk, addr, i,
						  le64toh(jh->jh_seq) + 1);
			continue;
		}
		if (ji.slot != i || ji.size_bytes != size) {
			if (fsck_fix(c, PR_2_JOURNAL_SLOT, addr,
				     "slot %u: header says slot %u, %llu bytes (want %llu)",
				     i, ji.slot, (unsigned long long)ji.size_bytes,
				     (unsigned long long)size)) {
				jh->jh_slot = htole32(i);
				jh->jh_size_bytes = htole64(size);
				fsck_seal(&jh->jh_hdr, VMFS_MAGIC_JOURNAL, addr,
					  FSCK_OBJ_LEN);
				ret = fsck_write_md(c, blk, VMFS_MD_BLOCK_SIZE, addr);
			}
		}
		if (!ret && ji.state == VMFS_JNL_DIRTY &&
		    fsck_fix(c, PR_2_JOURNAL_DIRTY, addr,
			     "slot %u: transactions from sequence %llu (tail %llu, head %llu)",
			     i, (unsigned long long)ji.seq,
			     (unsigned long long)ji.tail, (unsigned long long)ji.head))
			ret = jnl_rewrite(c, blk, addr, i, ji.seq + 1);
	}
	lun_buf_free(blk);
	return ret;
}
