/*
 * lockmgr: heartbeats and on-disk lock records.
 *
 * A mounted host holds one heartbeat slot and renews it with a
 * compare-and-write; liveness of other hosts is judged only by seeing
 * their counters move on our own monotonic clock.  Lock records live in
 * the first sector of every lockable block.  Acquiring, breaking and
 * handing over locks between hosts and corosync membership build on
 * these.
 */
#ifndef VMFS_LOCKMGR_H
#define VMFS_LOCKMGR_H

#include <stdbool.h>
#include <stdint.h>
#include "vmfs/format.h"
#include "vmfs/error.h"

struct lun;

/* Default heartbeat timing advertised in the region header (ms). */
#define HB_DEFAULT_RENEW_MS 2000u
#define HB_DEFAULT_LEASE_MS 10000u
/*
 * Leases outside this range are clamped when used and make a slot read
 * from disk count as damaged: a corrupt lease must not make an observer
 * wait for days.
 */
#define HB_MIN_LEASE_MS 500u
#define HB_MAX_LEASE_MS 120000u

/*
 * Every heartbeat timer derives from the lease a host advertises
 * (timeouts.c).  Peers are always judged by the lease THEY advertise.
 */
struct hb_timeouts {
	uint32_t lease_ms;     /* advertised: dead after this long unchanged */
	uint32_t renew_ms;     /* renewal interval */
	uint32_t io_timeout_ms;/* one heartbeat I/O may take this long */
	uint32_t fence_ms;     /* no renewal for this long: fence ourselves */
	uint32_t dead_ms;      /* observer: no change for this long = dead */
};
void hb_timeouts_from_lease(uint32_t lease_ms, struct hb_timeouts *t);

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

struct hb;

struct hb_opts {
	const uint8_t *host_uuid;     /* VMFS_UUID_SIZE bytes */
	const char *hostname;         /* display only */
	const char *addr;             /* cluster address, may be NULL */
	uint32_t lease_ms;            /* 0: the region's default */
	uint64_t journal_offset;      /* journal of slot 0 ... */
	uint64_t journal_size;        /* ... and the size of each */
	/* Called once, from the renewal thread, when we fenced ourselves. */
	void (*on_fence)(void *ctx, const char *why);
	void *ctx;
};

/*
 * Claim a heartbeat slot (a free one, or this host's own left over from a
 * crash) with compare-and-write and start renewing it.  -EUSERS when every
 * slot is held by another host.
 */
int hb_join(struct lun *lun, uint64_t hb_offset, const struct hb_opts *o,
	    struct hb **out);
/* Stop renewing and free the slot (compare-and-write). */
int hb_leave(struct hb *hb);
uint32_t hb_slot_index(const struct hb *hb);
uint64_t hb_generation(const struct hb *hb);
void hb_timeouts_get(const struct hb *hb, struct hb_timeouts *t);

/* One slot as read from disk. */
struct hb_slot_info {
	uint32_t slot;
	enum vmfs_hb_state state;
	uint8_t host_uuid[VMFS_UUID_SIZE];
	uint64_t hb_gen, counter;
	uint32_t lease_ms;
	char hostname[65];
	bool live;                    /* hb_survey with watch: counter moved */
};

/*
 * Read every slot that is not free into out (at most max; *n set).  With
 * watch, sample twice, the advertised lease (plus one renewal) apart on
 * our own monotonic clock, and set live for slots whose counter moved;
 * without, live is false everywhere.
 */
int hb_survey(struct lun *lun, uint64_t hb_offset, bool watch,
	      struct hb_slot_info *out, uint32_t max, uint32_t *n);
/* The same over nslots slots from slot0, without the region header (for
 * fsck when the header itself is damaged). */
int hb_survey_slots(struct lun *lun, uint64_t slot0, uint32_t nslots,
		    bool watch, struct hb_slot_info *out, uint32_t max,
		    uint32_t *n);

/* Size in bytes of a heartbeat region with nslots slots. */
static inline uint64_t hb_region_bytes(uint32_t nslots)
{
	return (uint64_t)(nslots + 1) * VMFS_MD_BLOCK_SIZE;
}

#endif
