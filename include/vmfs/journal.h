/*
 * journal: one redo journal region per heartbeat slot.
 *
 * Today it formats and verifies region headers (empty, clean journals);
 * transactions, commit, checkpoint and replay build on the same regions.
 */
#ifndef VMFS_JOURNAL_H
#define VMFS_JOURNAL_H

#include <stdint.h>
#include "vmfs/format.h"

struct lun;

struct jnl_info {
	uint32_t slot;
	enum vmfs_jnl_state state;
	uint64_t size_bytes;
	uint64_t head, tail, seq;
};

/* Write clean headers for nslots journal regions of size bytes each,
 * the first at off. */
int jnl_regions_format(struct lun *lun, uint64_t off, uint64_t size,
		       uint32_t nslots);
/* Read and verify the header of the journal region at off. */
int jnl_header_read(struct lun *lun, uint64_t off, struct jnl_info *out);

#endif
