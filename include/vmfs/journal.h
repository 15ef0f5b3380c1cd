/*
 * journal: one physical redo journal per heartbeat slot (format.h,
 * docs/SPEC.md §7, docs/journal.md).
 *
 * Two halves:
 *  - reading a region, for any slot, by any host: jnl_header_read,
 *    jnl_walk (every committed transaction from the tail, for dumps and
 *    checks) and jnl_replay (apply them, flush, mark the region clean).
 *    Replay is idempotent and stops at the first transaction that is not
 *    whole or whose commit does not check out.
 *  - the running journal of a mounted volume (struct jnl): operations run
 *    inside handles, hand every metadata block they change to jnl_dirty,
 *    and a commit thread writes the blocks of all handles of a period as
 *    one transaction (group commit), then writes them in place
 *    (checkpoint).  Nothing reaches its home address before the
 *    transaction holding it is durable.
 */
#ifndef VMFS_JOURNAL_H
#define VMFS_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>
#include "vmfs/format.h"
#include "vmfs/error.h"

struct lun;

struct jnl_info {
	uint32_t slot;
	enum vmfs_jnl_state state;
	uint64_t size_bytes;
	uint64_t head, tail, seq;   /* byte offsets in the region; seq at tail */
	uint64_t jid;
	uint16_t major, minor;      /* format version that wrote the header */
};

/* Write clean headers for nslots journal regions of size bytes each,
 * the first at off; each region gets a fresh random jid.  -EINVAL for a
 * size jnl_header_read would refuse (under 8 KiB or not whole 4 KiB
 * blocks). */
int jnl_regions_format(struct lun *lun, uint64_t off, uint64_t size,
		       uint32_t nslots);
/* Read and verify the header of the journal region at off. */
int jnl_header_read(struct lun *lun, uint64_t off, struct jnl_info *out);
/*
 * Rewrite the header of the region at off (never its lock record:
 * lock_obj_write): state, tail == head == pos, seq; the rest from info.
 * Not flushed.
 */
int jnl_header_write(struct lun *lun, uint64_t off,
		     const struct jnl_info *info, enum vmfs_jnl_state state,
		     uint64_t pos, uint64_t seq);

/* Home addresses a journal may write: [lo, hi), 4 KiB aligned. */
struct jnl_bounds {
	uint64_t lo, hi;
};

/* One committed transaction as found in the ring. */
struct jnl_txn {
	uint64_t seq;
	uint64_t pos;            /* region byte offset of its first block */
	uint32_t len;            /* ring blocks: descriptors, images, commit */
	uint32_t nimages;
	int64_t time_ns;
	const uint64_t *addr;    /* [nimages] home addresses */
	const uint32_t *flags;   /* [nimages] VMFS_JNL_TAG_* */
	const uint8_t *img;      /* nimages * 4 KiB */
};

/* Why a walk stopped. */
enum jnl_stop {
	JNL_STOP_CLEAN,      /* the header says clean: nothing to walk */
	JNL_STOP_END,        /* next block is not a descriptor of the next seq */
	JNL_STOP_TORN,       /* a transaction started but is not whole */
	JNL_STOP_BAD_COMMIT, /* commit record present, checksum wrong */
	JNL_STOP_BAD_TAG,    /* a tag names an address outside the bounds */
	JNL_STOP_TOO_LONG    /* a transaction longer than the ring */
};
const char *jnl_stop_str(enum jnl_stop s);

struct jnl_walk_result {
	struct jnl_info hdr;
	uint64_t ntxn, nimages;
	uint64_t end;            /* region byte offset after the last one */
	uint64_t next_seq;
	enum jnl_stop stop;
};

/*
 * Call cb for every committed transaction from the tail, in order (a
 * non-zero return from cb ends the walk with that value).  With
 * from_tail_even_if_clean, a clean header is walked too (dumps).
 */
typedef int (*jnl_txn_cb)(void *ctx, const struct jnl_txn *t);
int jnl_walk(struct lun *lun, uint64_t off, const struct jnl_bounds *b,
	     bool from_tail_even_if_clean, jnl_txn_cb cb, void *ctx,
	     struct jnl_walk_result *res);
/*
 * Replay the journal region at off: write every committed block image
 * home (a lockable block keeps the lock record that is on disk), flush,
 * then mark the region clean after the last transaction.  A clean
 * region is left alone.  Safe to repeat after a crash at any point.
 */
int jnl_replay(struct lun *lun, uint64_t off, const struct jnl_bounds *b,
	       struct jnl_walk_result *res);

/* ---- the running journal of a mounted volume ---------------------- */

struct jnl;

struct jnl_params {
	uint32_t commit_ms;   /* commit at least this often (default 1000) */
};

struct jnl_stats {
	uint64_t commits, images, ring_blocks, flushes, checkpoints;
	uint64_t forced;      /* commits asked for by fsync and friends */
};

/*
 * Start journaling into the region at off (which must be clean: replay
 * first).  The header is marked dirty (durably) before this returns.
 */
int jnl_start(struct lun *lun, uint64_t off, const struct jnl_bounds *b,
	      const struct jnl_params *p, struct jnl **out);
/* Commit, checkpoint, mark the region clean and free everything. */
int jnl_stop(struct jnl *j);

/*
 * Handles: every change of metadata runs between begin and end; a
 * transaction only ever holds whole handles.  Handles nest (per thread).
 * Begin before taking any engine lock, end after releasing them all, and
 * never wait for a commit inside a handle.
 */
void jnl_handle_begin(struct jnl *j);
void jnl_handle_end(struct jnl *j);
bool jnl_in_handle(void);

/*
 * The 4 KiB block image for home address addr, as it must be once the
 * running transaction commits.  Copied; the caller keeps its buffer.
 */
int jnl_dirty(struct jnl *j, uint64_t addr, const void *img, uint32_t flags);
/*
 * The running transaction makes a file point at data just written in
 * place (a new block, a cleared to-be-zeroed flag): its commit flushes
 * the LUN before writing the commit record.  A transaction without such
 * data commits with a single flush.
 */
void jnl_note_data(struct jnl *j);
/* The newest image of addr not yet written home, if there is one. */
bool jnl_lookup(struct jnl *j, uint64_t addr, void *buf);

/* Commit the running transaction and wait until it is durable. */
int jnl_sync(struct jnl *j);
/*
 * jnl_sync, then write everything home and move the durable tail past
 * it: afterwards jnl_reusable_seq() is past every transaction so far.
 */
int jnl_drain(struct jnl *j);
/*
 * Close the running transaction here, without waiting for any I/O: what
 * the handles did so far becomes a sealed transaction that the commit
 * thread writes before anything that comes later, and the next handle
 * starts a new one.  *seq is the sequence that holds everything so far
 * (for jnl_drain_to).  Waits only for handles open now to end; never
 * inside a handle (-EDEADLK).
 */
int jnl_seal(struct jnl *j, uint64_t *seq);
/*
 * Commit, write home and move the tail past transaction seq (from
 * jnl_seal).  A sealed transaction never waits for a handle: the commit
 * thread puts off the running transaction (whose handles may be waiting
 * on another host) while a sealed one is wanted.
 */
int jnl_drain_to(struct jnl *j, uint64_t seq);
/* Sequence of the running transaction (what jnl_dirty joins now). */
uint64_t jnl_running_seq(struct jnl *j);
/*
 * Blocks freed by a transaction with a sequence below this may be reused
 * for data: that transaction is durable and can never be replayed again.
 */
uint64_t jnl_reusable_seq(struct jnl *j);
/*
 * Moves each time transactions were written home, just before their
 * images leave jnl_lookup: a read of the LUN that began before a move may
 * hold a block older than the image that left (see vol/inode.c ira_read).
 */
uint64_t jnl_home_seq(struct jnl *j);
/* Set when a journal write failed: every later commit fails. */
int jnl_error(struct jnl *j);
void jnl_stats_get(struct jnl *j, struct jnl_stats *s);

#endif
