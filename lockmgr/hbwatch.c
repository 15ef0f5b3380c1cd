/*
 * The liveness oracle of the lock manager over the heartbeat region: is
 * the holder (uuid, slot, hb_gen) of a lock still live (SPEC §5 "Validity
 * of a holder", §6.3)?
 *
 * A holder is dead at once when its slot no longer shows it: free,
 * damaged (its owner cannot renew a slot that does not verify and fences
 * itself, heartbeat.c), REPLAYING (a survivor declared it dead), or held
 * by another host or a later generation (the host remounted; locks of its
 * earlier mount are stale).  Otherwise it is live until this watcher has
 * seen its (hb_gen, counter) pair unchanged for the holder's own
 * advertised lease plus one renewal, on our CLOCK_MONOTONIC, counted from
 * the first read that showed that pair.  Another host's clock is never
 * read, and a holder we have just started watching is live: only time we
 * measured ourselves can make it dead.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vmfs/clock.h"
#include "lock_int.h"

/* hb_survey reads at most this many slots (heartbeat.c). */
#define HBW_MAX_SLOTS 1024

struct hbw_seen {
	bool valid;
	uint64_t hb_gen, counter;
	int64_t since_ms;        /* when we first saw this pair */
};

struct lock_hbwatch {
	struct lun *lun;
	uint64_t hb_offset;
	pthread_mutex_t mu;
	struct hbw_seen seen[HBW_MAX_SLOTS];
	struct hb_slot_info info[HBW_MAX_SLOTS];   /* scratch, under mu */
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
	w->hb_offset = hb_offset;
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

/* Called with w->mu held. */
static int hbw_judge(struct lock_hbwatch *w, const struct lock_holder *h)
{
	const struct hb_slot_info *si = NULL;
	struct hbw_seen *s;
	struct hb_timeouts t;
	int64_t now = vmfs_mono_ms();
	uint32_t n;
	int ret;

	if (h->slot >= HBW_MAX_SLOTS)
		return 0;	/* no such slot can hold anything */
	ret = hb_survey(w->lun, w->hb_offset, false, w->info, HBW_MAX_SLOTS,
			&n);
	if (ret)
		return ret;
	for (uint32_t i = 0; i < n && !si; i++)
		if (w->info[i].slot == h->slot)
			si = &w->info[i];
	if (!si || si->state != VMFS_HB_ACTIVE || si->hb_gen != h->hb_gen ||
	    memcmp(si->host_uuid, h->uuid, VMFS_UUID_SIZE))
		return 0;
	s = &w->seen[h->slot];
	if (!s->valid || s->hb_gen != si->hb_gen || s->counter != si->counter) {
		s->valid = true;
		s->hb_gen = si->hb_gen;
		s->counter = si->counter;
		s->since_ms = now;
		return 1;
	}
	hb_timeouts_from_lease(si->lease_ms, &t);
	return now - s->since_ms < (int64_t)t.dead_ms;
}

int lock_hbwatch_is_live(void *watcher, const struct lock_holder *h)
{
	struct lock_hbwatch *w = watcher;
	int ret;

	if (!w || !h)
		return -EINVAL;
	pthread_mutex_lock(&w->mu);
	ret = hbw_judge(w, h);
	pthread_mutex_unlock(&w->mu);
	return ret;
}
