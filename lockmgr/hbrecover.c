/*
 * Recovering a dead host's heartbeat slot (SPEC §6.3): the survivor that
 * wins the compare-and-write of the slot from ACTIVE (as it last read it)
 * to REPLAYING is the one that replays the dead host's journal; the others
 * see REPLAYING and wait.  While it replays it keeps moving the slot's
 * counter, so that if it dies too the slot stops moving and the next
 * survivor takes the recovery over by the same compare-and-write.  The
 * slot keeps the dead host's UUID and heartbeat generation until it is
 * FREE: only FREE (or a later generation) tells other hosts that the dead
 * host's lock records may be broken (lock_hbwatch_holds), and that
 * happens after the replay.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "vmfs/log.h"
#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"
#include "lock_int.h"

struct hb_recovery {
	struct lun *lun;
	unsigned prim;
	uint32_t ss, slot, io_timeout_ms;
	uint64_t addr;
	uint8_t *cur, *next;
};

static void recov_seal(uint8_t *sector, uint64_t addr)
{
	struct vmfs_hb_slot *hs = (struct vmfs_hb_slot *)sector;

	fmt_hdr_set_gen(&hs->hs_hdr, fmt_hdr_gen(&hs->hs_hdr) + 1);
	lun_md_seal(&hs->hs_hdr, VMFS_MAGIC_HBSLOT, addr, sizeof(*hs));
}

/* cur -> next with state and counter + 1, compare-and-write. */
static int recov_step(struct hb_recovery *r, enum vmfs_hb_state state)
{
	struct vmfs_hb_slot *hs = (struct vmfs_hb_slot *)r->next;
	struct fmt_hb_slot h;
	uint8_t *t;
	int ret;

	memcpy(r->next, r->cur, r->ss);
	(void)fmt_hb_slot_decode(hs, &h);
	h.state = state;
	h.counter++;
	if (state == VMFS_HB_FREE) {
		memset(h.host_uuid, 0, VMFS_UUID_SIZE);
		h.vm_free_mib = 0;
	}
	fmt_hb_slot_encode(&h, hs);
	recov_seal(r->next, r->addr);
	ret = lock_prim_caw(r->lun, r->prim, r->io_timeout_ms, r->cur, r->next,
			    r->ss, r->addr, NULL);
	if (!ret) {
		t = r->cur;
		r->cur = r->next;
		r->next = t;
	}
	return ret;
}

static void recov_free(struct hb_recovery *r)
{
	if (!r)
		return;
	lun_buf_free(r->cur);
	lun_buf_free(r->next);
	free(r);
}

int hb_recover_claim(struct lun *lun, unsigned prim, uint64_t hb_offset,
		     const struct hb_slot_info *seen, uint32_t io_timeout_ms,
		     struct hb_recovery **out)
{
	struct hb_recovery *r;
	struct fmt_hb_slot h;
	int ret;

	*out = NULL;
	if (seen->state != VMFS_HB_ACTIVE && seen->state != VMFS_HB_REPLAYING)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->lun = lun;
	r->prim = prim;
	r->ss = lun_sector_size(lun);
	r->slot = seen->slot;
	r->io_timeout_ms = io_timeout_ms;
	r->addr = hb_offset + VMFS_MD_BLOCK_SIZE +
		  (uint64_t)seen->slot * VMFS_MD_BLOCK_SIZE;
	r->cur = lun_buf_alloc(r->ss);
	r->next = lun_buf_alloc(r->ss);
	if (!r->cur || !r->next) {
		recov_free(r);
		return -ENOMEM;
	}
	ret = lun_read(lun, r->cur, r->ss, r->addr);
	if (ret) {
		recov_free(r);
		return ret;
	}
	/* Only the slot exactly as the caller judged it dead. */
	if (lun_md_verify(&((struct vmfs_hb_slot *)r->cur)->hs_hdr,
			  VMFS_MAGIC_HBSLOT, r->addr, sizeof(struct vmfs_hb_slot)) ||
	    fmt_hb_slot_decode((struct vmfs_hb_slot *)r->cur, &h) ||
	    h.state != seen->state || h.hb_gen != seen->hb_gen ||
	    h.counter != seen->counter ||
	    memcmp(h.host_uuid, seen->host_uuid, VMFS_UUID_SIZE)) {
		recov_free(r);
		return -VMFS_E_MISCOMPARE;
	}
	ret = recov_step(r, VMFS_HB_REPLAYING);
	if (ret) {
		recov_free(r);
		return ret;
	}
	qb_log(LOG_NOTICE, "hb: slot %u (host %s, generation %llu) marked "
	       "being-replayed by this host", r->slot,
	       seen->hostname[0] ? seen->hostname : "?",
	       (unsigned long long)seen->hb_gen);
	*out = r;
	return 0;
}

int hb_recover_renew(struct hb_recovery *r)
{
	return recov_step(r, VMFS_HB_REPLAYING);
}

uint64_t hb_recover_journal(const struct hb_recovery *r)
{
	struct fmt_hb_slot h;

	(void)fmt_hb_slot_decode((const struct vmfs_hb_slot *)r->cur, &h);
	return h.journal_offset;
}

int hb_recover_done(struct hb_recovery *r, bool free_slot)
{
	int ret = 0;

	if (!r)
		return 0;
	if (free_slot)
		ret = recov_step(r, VMFS_HB_FREE);
	recov_free(r);
	return ret;
}
