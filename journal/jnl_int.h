/*
 * Private to journal/: the ring of a region.
 *
 * A region of size S at byte address off is a header block, then a ring
 * of (S - 4096) / 4096 blocks; ring block i lives at off + 4096 + i * 4096.
 * The running journal counts positions as ever-growing block numbers and
 * takes them modulo the ring size.
 */
#ifndef VMFS_JNL_INT_H
#define VMFS_JNL_INT_H

#include <stdint.h>
#include "vmfs/journal.h"

/* Internal tag bit (never on disk): address outside the bounds. */
#define JNL_TAG_OUT_OF_BOUNDS 0x80000000u

struct jnl_ring {
	uint64_t off;       /* region (header block) address */
	uint64_t nblocks;   /* ring blocks */
	uint64_t jid;
};

static inline void jnl_ring_init(struct jnl_ring *r, uint64_t off,
				 const struct jnl_info *h)
{
	r->off = off;
	r->nblocks = (h->size_bytes - VMFS_MD_BLOCK_SIZE) / VMFS_MD_BLOCK_SIZE;
	r->jid = h->jid;
}

/* LUN byte address of ring block i (0 <= i < nblocks). */
static inline uint64_t jnl_ring_addr(const struct jnl_ring *r, uint64_t i)
{
	return r->off + VMFS_MD_BLOCK_SIZE + i * VMFS_MD_BLOCK_SIZE;
}

#endif
