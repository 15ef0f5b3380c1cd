/*
 * The liveness oracle of the lock manager over the heartbeat region: what
 * has become of the holder (uuid, slot, hb_gen) of a lock (SPEC §5
 * "Validity of a holder", §6.3)?
 *
 *   LIVE  its slot is ACTIVE with its uuid and hb_gen, and this watcher
 *         has not yet seen the (hb_gen, counter) pair stand still for the
 *         holder's own advertised lease plus one renewal, on our
 *         CLOCK_MONOTONIC, counted from the first read that showed that
 *         pair.  Another host's clock is never read, and a holder we have
 *         only just started watching is live: only time we measured
 *         ourselves can make it dead.
 *   DEAD  its slot still names it but it stopped, or a survivor marked
 *         the slot REPLAYING, or the slot does not verify (its owner
 *         cannot renew it and fences itself, heartbeat.c): its journal
 *         may hold work that must be replayed before its locks are
 *         broken.
 *   GONE  its slot is free or names another host or a later generation.
 *         A slot moves on from a host only after its journal was
 *         replayed (by a survivor through REPLAYING, or by the host
 *         itself at its next mount), so its locks may be broken now.
 *
 * Each judgement reads the holder's slot sector (one 512-byte read).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vmfs/clock.h"
#include "vmfs/lun.h"
#include "vmfs/lockmgr.h"

/* The most slots a region has (heartbeat.c refuses more). */
#define HBW_MAX_SLOTS 1024

struct hbw_seen {
	bool valid;
	uint64_t hb_gen, counter;
	int64_t since_ms;        /* when we first saw this pair */
};

struct lock_hbwatch {
	struct lun *lun;
	uint64_t slot0;          /* slot i at slot0 + i * 4096 (SPEC §6) */
	pthread_mutex_t mu;
	struct hbw_seen seen[HBW_MAX_SLOTS];
};

int lock_hbwatch_open(struct lun *lun, uint64_t hb_offset,
		      struct lock_hbwatch **out)
{
	struct lock_hbwatch *w;

	if (!lun || !out)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->lun = lun;
	w->slot0 = hb_offset + VMFS_MD_BLOCK_SIZE;
	pthread_mutex_init(&w->mu, NULL);
	*out = w;
	return 0;
}

void lock_hbwatch_close(struct lock_hbwatch *w)
{
	if (!w)
		return;
	pthread_mutex_destroy(&w->mu);
	free(w);
}

/* The fate of h given its slot sector as read now.  Called with w->mu. */
static int hbw_judge_slot(struct lock_hbwatch *w, const struct lock_holder *h,
			  const struct vmfs_hb_slot *hs, uint64_t addr)
{
	static const uint8_t zero[sizeof(struct vmfs_hb_slot)];
	struct hbw_seen *s = &w->seen[h->slot];
	int64_t now = vmfs_mono_ms();
	struct fmt_hb_slot f;
	struct hb_timeouts t;
	uint32_t lease_ms;
	uint64_t counter;

	if (!memcmp(hs, zero, sizeof(zero)))
		return LOCK_HOLDER_GONE;	/* never used: free (SPEC §6.3) */
	/* Out-of-range fields still decode; the checks below judge them. */
	(void)fmt_hb_slot_decode(hs, &f);
	if (lun_md_verify(&hs->hs_hdr, VMFS_MAGIC_HBSLOT, addr, sizeof(*hs)) ||
	    f.slot != h->slot || f.state > VMFS_HB_REPLAYING)
		return LOCK_HOLDER_DEAD;	/* damaged */
	if (f.state == VMFS_HB_FREE || f.hb_gen != h->hb_gen ||
	    memcmp(f.host_uuid, h->uuid, VMFS_UUID_SIZE))
		return LOCK_HOLDER_GONE;
	lease_ms = f.lease_ms;
	if (f.state == VMFS_HB_REPLAYING ||
	    lease_ms < HB_MIN_LEASE_MS || lease_ms > HB_MAX_LEASE_MS)
		return LOCK_HOLDER_DEAD;	/* being replayed, or damaged */
	counter = f.counter;
	if (!s->valid || s->hb_gen != h->hb_gen || s->counter != counter) {
		s->valid = true;
		s->hb_gen = h->hb_gen;
		s->counter = counter;
		s->since_ms = now;
		return LOCK_HOLDER_LIVE;
	}
	hb_timeouts_from_lease(lease_ms, &t);
	return now - s->since_ms < (int64_t)t.dead_ms ? LOCK_HOLDER_LIVE :
							LOCK_HOLDER_DEAD;
}

int lock_hbwatch_judge(struct lock_hbwatch *w, const struct lock_holder *h)
{
	uint64_t addr;
	uint8_t *buf;
	int ret;

	if (!w || !h)
		return -EINVAL;
	if (h->slot >= HBW_MAX_SLOTS)
		return LOCK_HOLDER_DEAD;	/* a damaged record: fsck's */
	addr = w->slot0 + (uint64_t)h->slot * VMFS_MD_BLOCK_SIZE;
	buf = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	if (!buf)
		return -ENOMEM;
	/* The live fields are in the first 512 bytes; read a whole sector. */
	ret = lun_read(w->lun, buf, lun_sector_size(w->lun), addr);
	if (!ret) {
		pthread_mutex_lock(&w->mu);
		ret = hbw_judge_slot(w, h, (const struct vmfs_hb_slot *)buf,
				     addr);
		pthread_mutex_unlock(&w->mu);
	}
	lun_buf_free(buf);
	return ret;
}

int64_t lock_hbwatch_seen_ms(struct lock_hbwatch *w,
			     const struct lock_holder *h)
{
	int64_t ret = -1;

	if (!w || !h || h->slot >= HBW_MAX_SLOTS)
		return -1;
	pthread_mutex_lock(&w->mu);
	if (w->seen[h->slot].valid && w->seen[h->slot].hb_gen == h->hb_gen)
		ret = w->seen[h->slot].since_ms;
	pthread_mutex_unlock(&w->mu);
	return ret;
}

int lock_hbwatch_is_live(void *watcher, const struct lock_holder *h)
{
	int ret = lock_hbwatch_judge(watcher, h);

	return ret < 0 ? ret : ret == LOCK_HOLDER_LIVE;
}

int lock_hbwatch_holds(void *watcher, const struct lock_holder *h)
{
	int ret = lock_hbwatch_judge(watcher, h);

	return ret < 0 ? ret : ret != LOCK_HOLDER_GONE;
}
