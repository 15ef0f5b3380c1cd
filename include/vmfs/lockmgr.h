/*
 * lockmgr: heartbeat region and on-disk lock records.
 *
 * Today it formats the heartbeat region and writes lock records in their
 * free state; acquiring, breaking and handing over locks between hosts,
 * heartbeat renewal and corosync membership build on these records.
 */
#ifndef VMFS_LOCKMGR_H
#define VMFS_LOCKMGR_H

#include <stdint.h>
#include "vmfs/format.h"

struct lun;

/* Default heartbeat timing advertised in the region header (ms). */
#define HB_DEFAULT_RENEW_MS 1000u
#define HB_DEFAULT_LEASE_MS 5000u

/*
 * Fill the first VMFS_LOCK_SIZE bytes of buf with a free lock record for
 * the lockable block at address self.  gen is the lock generation to
 * record (bumped by the caller when it replaces an older record).
 */
void lock_record_init_free(void *buf, uint64_t self, uint64_t gen);

/* Decode and verify the lock record at the start of buf (host order out).
 * An all-zero record is valid and free.  Returns 0 or -VMFS_E_BAD_*. */
struct lock_record {
	enum vmfs_lock_mode mode;
	uint64_t gen;
	uint8_t owner_uuid[VMFS_UUID_SIZE];
	uint32_t owner_slot;
	uint64_t owner_hb_gen;
	uint32_t nholders;
};
int lock_record_decode(const void *buf, uint64_t self, struct lock_record *out);

/*
 * Write the heartbeat region at offset off: a lockable header block with
 * nslots and the default timing, then nslots free slot blocks.  Batched;
 * returns 0 or a negative error.
 */
int hb_region_format(struct lun *lun, uint64_t off, uint32_t nslots);

/* Size in bytes of a heartbeat region with nslots slots. */
static inline uint64_t hb_region_bytes(uint32_t nslots)
{
	return (uint64_t)(nslots + 1) * VMFS_MD_BLOCK_SIZE;
}

#endif
