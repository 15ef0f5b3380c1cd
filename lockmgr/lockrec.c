/*
 * Lock records: the first 512 bytes of every lockable block.
 *
 * A record is changed only as a whole sector (compare-and-write, SBC-3),
 * so its own crc covers only the record; the object behind it has its own
 * header and crc.  The record's generation (lk_hdr.bh_gen) moves at every
 * change of mode or owner so that a compare-and-write against a stale copy
 * fails.  A block that was never initialised holds zeros, which reads as
 * a free lock of generation 0.
 */
#include <string.h>
#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"

void lock_record_init_free(void *buf, uint64_t self, uint64_t gen)
{
	struct vmfs_lock *lk = buf;

	memset(lk, 0, sizeof(*lk));
	fmt_lock_encode(&(struct fmt_lock){ .gen = gen, .mode = VMFS_LOCK_FREE },
			lk);
	lun_md_seal(&lk->lk_hdr, VMFS_MAGIC_LOCK, self, VMFS_LOCK_SIZE);
}

static int all_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		if (p[i])
			return 0;
	return 1;
}

int lock_record_decode(const void *buf, uint64_t self, struct lock_record *out)
{
	const struct vmfs_lock *lk = buf;
	struct fmt_lock f;
	int ret;

	memset(out, 0, sizeof(*out));
	if (all_zero(buf, VMFS_LOCK_SIZE)) {
		out->mode = VMFS_LOCK_FREE;
		return 0;
	}
	ret = lun_md_verify(&lk->lk_hdr, VMFS_MAGIC_LOCK, self, VMFS_LOCK_SIZE);
	if (ret)
		return ret;
	ret = fmt_lock_decode(lk, &f);
	/* As before: a bad mode leaves the rest unread, too many holders
	 * still reports the fields. */
	out->mode = f.mode;
	if (f.mode > VMFS_LOCK_MULTIWRITER)
		return ret;
	out->gen = f.gen;
	memcpy(out->owner_uuid, f.owner_uuid, VMFS_UUID_SIZE);
	out->owner_slot = f.owner_slot;
	out->owner_hb_gen = f.owner_hb_gen;
	out->nholders = f.nholders;
	return ret;
}
