/*
 * Internals of the lock manager (lockstate.c, lockprim.c, lock.c): the
 * context, the record codec, and the one retry loop every lock change
 * goes through.  Only lockmgr/ includes this header.
 */
#ifndef VMFS_LOCK_INT_H
#define VMFS_LOCK_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmfs/lockmgr.h"

/*
 * What a record held when this context last read or wrote it (ATS on a
 * 512-byte-sector LUN only): an acquire or release starts from it instead
 * of reading the record, so an uncontended change is one COMPARE AND
 * WRITE.  Only a compare-and-write that succeeds confirms a guess
 * (lockprim.c).  Direct-mapped by block address.
 */
#define LOCK_GUESS_SLOTS 512
struct lock_guess {
	uint64_t addr;      /* 0: empty (block 0 holds no lock record) */
	uint8_t rec[VMFS_LOCK_SIZE];
};

struct lock_ctx {
	struct lun *lun;
	struct lock_host host;
	unsigned prim;      /* LOCK_PRIM_ATS or LOCK_PRIM_RESERVE */
	uint32_t unit;      /* bytes of one compare-and-write: the sector */
	pthread_mutex_t guess_mu;
	struct lock_guess *guess;   /* LOCK_GUESS_SLOTS, or NULL: none */
};

/* ---- lockstate.c: the record <-> struct lock_state -------------------- */

/* Decode and check buf (VMFS_LOCK_SIZE bytes) as the record of the block
 * at addr: lock_record_decode's checks, plus the SPEC §5 field rules of
 * each mode.  0 or -VMFS_E_CORRUPT / -VMFS_E_BAD_*. */
int lock_state_decode(const void *buf, uint64_t addr, struct lock_state *out);
/* Write st as a sealed record for addr into buf (VMFS_LOCK_SIZE bytes). */
void lock_state_encode(const struct lock_state *st, uint64_t addr, void *buf);
bool lock_holder_eq(const struct lock_holder *a, const struct lock_holder *b);
/* Index of h among st's holders, or -1. */
int lock_state_find(const struct lock_state *st, const struct lock_holder *h);

/* ---- lockprim.c: one lock change, both primitives, with retries ------- */

/* decide's answer when the record already is what the caller wants. */
#define LOCK_NOCHANGE 1

/*
 * Given the current record, fill next (its gen and raw are set by the
 * caller of decide) and return 0 to write it, LOCK_NOCHANGE to write
 * nothing, -EBUSY to wait and decide again on a fresh read, or another
 * negative error to stop.
 */
typedef int (*lock_decide_fn)(const struct lock_ctx *ctx, void *arg,
			      const struct lock_state *cur,
			      struct lock_state *next);

struct lock_op {
	uint64_t addr;
	/* NULL, or the VMFS_LOCK_SIZE bytes the record must still hold: a
	 * difference is -VMFS_E_MISCOMPARE at once, with no retry. */
	const uint8_t *expect;
	lock_decide_fn decide;
	void *arg;
	unsigned timeout_ms;   /* how long -EBUSY is retried */
};

/*
 * Read, decide, compare-and-write (generation + 1) through ctx's
 * primitive, retrying as lockmgr.h describes.  out gets the record
 * written, or the one found (LOCK_NOCHANGE, -EBUSY, -EPERM, ...).
 */
int lock_change(struct lock_ctx *ctx, const struct lock_op *op,
		struct lock_state *out);

/*
 * How long a change waits for a reservation another host holds: until
 * end_us (max(timeout, LOCK_PRIM_WAIT_MS) from start_us), or longer when
 * a hold of the LUN can be left behind and must be waited out before a
 * waiter may break it (an iSCSI lock LU's, whose holder lost its path
 * inside the hold: lun_reserve_break_ms).  Asked at the first conflict.
 */
int64_t lock_prim_reserved_end(struct lun *lun, int64_t start_us,
			       int64_t end_us);

/*
 * One compare-and-write of len bytes at off (the lun_compare_and_write
 * contract: 0, or -VMFS_E_MISCOMPARE with the bytes found in current when
 * it is not NULL) through primitive prim: COMPARE AND WRITE itself, or
 * RESERVE, read, compare, write, RELEASE with the reservation waited for
 * at most wait_ms (-VMFS_E_RESERVED).  No retries: for heartbeats, whose
 * renewal timer is the retry.
 */
int lock_prim_caw(struct lun *lun, unsigned prim, unsigned wait_ms,
		  const void *expect, const void *data, size_t len,
		  uint64_t off, void *current);
/*
 * Backoff between attempts (SPEC §5.3): start with delay_us =
 * LOCK_BACKOFF_MIN_US and rng seeded per call.  lock_backoff_sleep sleeps
 * the next backoff, never past end_us (CLOCK_MONOTONIC), and returns false
 * once end_us has passed.
 */
struct lock_backoff {
	unsigned delay_us;
	uint64_t rng;
};
#define LOCK_BACKOFF_MIN_US 100
bool lock_backoff_sleep(struct lock_backoff *b, int64_t end_us);

/* The primitive to use: the forced one (flags, a LOCK_PRIM_* or 0) if the
 * LUN has it; without one, ATS when the LUN has it, else RESERVE; 0 when
 * the LUN lacks what is asked for (nothing can be locked that way). */
unsigned lock_prim_pick(const struct lun *lun, unsigned flags);

#endif /* VMFS_LOCK_INT_H */
