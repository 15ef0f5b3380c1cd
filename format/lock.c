/*
 * Lock records.  A record changes only by compare-and-write of its own
 * sector (lockmgr/lockrec.c), so like a heartbeat slot it must survive
 * decode and encode byte for byte; pads and reserved bytes are left as
 * they are.
 */
#include <endian.h>
#include <string.h>

#include "vmfs/error.h"
#include "vmfs/format.h"

int fmt_lock_decode(const struct vmfs_lock *d, struct fmt_lock *lk)
{
	lk->gen = le64toh(d->lk_hdr.bh_gen);
	lk->mode = le32toh(d->lk_mode);
	lk->nholders = le32toh(d->lk_nholders);
	memcpy(lk->owner_uuid, d->lk_owner_uuid, VMFS_UUID_SIZE);
	lk->owner_slot = le32toh(d->lk_owner_slot);
	lk->owner_hb_gen = le64toh(d->lk_owner_hb_gen);
	for (int i = 0; i < VMFS_LOCK_MAX_HOLDERS; i++) {
		const struct vmfs_lock_holder *h = &d->lk_holders[i];

		memcpy(lk->holders[i].uuid, h->lh_uuid, VMFS_UUID_SIZE);
		lk->holders[i].slot = le32toh(h->lh_slot);
		lk->holders[i].hb_gen = le64toh(h->lh_hb_gen);
	}
	if (lk->mode > VMFS_LOCK_MULTIWRITER ||
	    lk->nholders > VMFS_LOCK_MAX_HOLDERS)
		return -VMFS_E_CORRUPT;
	return 0;
}

void fmt_lock_encode(const struct fmt_lock *lk, struct vmfs_lock *d)
{
	d->lk_hdr.bh_gen = htole64(lk->gen);
	d->lk_mode = htole32(lk->mode);
	d->lk_nholders = htole32(lk->nholders);
	memcpy(d->lk_owner_uuid, lk->owner_uuid, VMFS_UUID_SIZE);
	d->lk_owner_slot = htole32(lk->owner_slot);
	d->lk_owner_hb_gen = htole64(lk->owner_hb_gen);
	for (int i = 0; i < VMFS_LOCK_MAX_HOLDERS; i++) {
		struct vmfs_lock_holder *h = &d->lk_holders[i];

		memcpy(h->lh_uuid, lk->holders[i].uuid, VMFS_UUID_SIZE);
		h->lh_slot = htole32(lk->holders[i].slot);
		h->lh_hb_gen = htole64(lk->holders[i].hb_gen);
	}
}
