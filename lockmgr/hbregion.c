/*
 * Heartbeat region layout: a lockable header block that advertises the
 * slot count and default timing, then one 4 KiB block per host slot.
 * mkfs writes every slot free; a mounting host claims one and renews it.
 */
#include <errno.h>
#include <string.h>
#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"

/* Slots written per batch. */
#define HB_BATCH 64

int hb_region_format(struct lun *lun, uint64_t off, uint32_t nslots)
{
	uint8_t *buf = lun_buf_alloc(VMFS_MD_BLOCK_SIZE * HB_BATCH);
	struct vmfs_hb_region *hr;
	uint64_t slot0 = off + VMFS_MD_BLOCK_SIZE;
	uint32_t i, n;
	int ret;

	if (!buf)
		return -ENOMEM;
	memset(buf, 0, VMFS_MD_BLOCK_SIZE);
	lock_record_init_free(buf, off, 1);
	hr = (struct vmfs_hb_region *)(buf + VMFS_OBJ_OFFSET);
	fmt_hb_region_encode(&(struct fmt_hb_region){
				     .gen = 1, .nslots = nslots,
				     .lease_ms = HB_DEFAULT_LEASE_MS,
				     .renew_ms = HB_DEFAULT_RENEW_MS,
				     .slot0_offset = slot0 }, hr);
	lun_md_seal(&hr->hr_hdr, VMFS_MAGIC_HBREGION, off,
		    VMFS_MD_BLOCK_SIZE - VMFS_OBJ_OFFSET);
	ret = lun_write(lun, buf, VMFS_MD_BLOCK_SIZE, off);

	for (i = 0; !ret && i < nslots; i += n) {
		n = nslots - i < HB_BATCH ? nslots - i : HB_BATCH;
		memset(buf, 0, (size_t)n * VMFS_MD_BLOCK_SIZE);
		for (uint32_t j = 0; j < n; j++) {
			uint64_t addr = slot0 + (uint64_t)(i + j) * VMFS_MD_BLOCK_SIZE;
			struct vmfs_hb_slot *hs = (struct vmfs_hb_slot *)
				(buf + (size_t)j * VMFS_MD_BLOCK_SIZE);

			fmt_hb_slot_encode(&(struct fmt_hb_slot){
						   .gen = 1, .state = VMFS_HB_FREE,
						   .slot = i + j }, hs);
			lun_md_seal(&hs->hs_hdr, VMFS_MAGIC_HBSLOT, addr,
				    sizeof(*hs));
		}
		ret = lun_write(lun, buf, (size_t)n * VMFS_MD_BLOCK_SIZE,
				slot0 + (uint64_t)i * VMFS_MD_BLOCK_SIZE);
	}
	lun_buf_free(buf);
	return ret;
}
