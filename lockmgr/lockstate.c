/*
 * The whole lock record as the lock manager sees it (struct lock_state):
 * mode, generation and every holder, with the owner of an exclusive lock
 * as holders[0] so that callers name whoever is in the way the same way
 * in every mode.  lockrec.c verifies the envelope and the scalar fields;
 * this file adds the per-mode rules of SPEC §5 (a record that breaks them
 * is corrupt, and acting on it could grant a lock twice) and the holders.
 */
#include <string.h>

#include "vmfs/lun.h"
#include "lock_int.h"

static const uint8_t zero_uuid[VMFS_UUID_SIZE];

static void holder_from_fmt(const struct fmt_lock_holder *f,
			    struct lock_holder *h)
{
	memcpy(h->uuid, f->uuid, VMFS_UUID_SIZE);
	h->slot = f->slot;
	h->hb_gen = f->hb_gen;
}

static void holder_to_fmt(const struct lock_holder *h,
			  struct fmt_lock_holder *f)
{
	memcpy(f->uuid, h->uuid, VMFS_UUID_SIZE);
	f->slot = h->slot;
	f->hb_gen = h->hb_gen;
}

int lock_state_decode(const void *buf, uint64_t addr, struct lock_state *out)
{
	struct lock_record r;
	struct fmt_lock f;
	int ret;

	memset(out, 0, sizeof(*out));
	out->addr = addr;
	memcpy(out->raw, buf, VMFS_LOCK_SIZE);
	ret = lock_record_decode(buf, addr, &r);
	if (ret)
		return ret;
	out->mode = r.mode;
	out->gen = r.gen;
	switch (r.mode) {
	case VMFS_LOCK_FREE:
		if (r.nholders || r.owner_slot || r.owner_hb_gen ||
		    memcmp(r.owner_uuid, zero_uuid, VMFS_UUID_SIZE))
			return -VMFS_E_CORRUPT;
		break;
	case VMFS_LOCK_EXCLUSIVE:
		if (r.nholders)
			return -VMFS_E_CORRUPT;
		memcpy(out->holders[0].uuid, r.owner_uuid, VMFS_UUID_SIZE);
		out->holders[0].slot = r.owner_slot;
		out->holders[0].hb_gen = r.owner_hb_gen;
		out->nholders = 1;
		break;
	default:	/* the shared modes; lockrec.c refused the others */
		if (r.nholders == 0 ||
		    fmt_lock_decode((const struct vmfs_lock *)buf, &f))
			return -VMFS_E_CORRUPT;
		for (uint32_t i = 0; i < r.nholders; i++)
			holder_from_fmt(&f.holders[i], &out->holders[i]);
		out->nholders = r.nholders;
		break;
	}
	return 0;
}

void lock_state_encode(const struct lock_state *st, uint64_t addr, void *buf)
{
	struct vmfs_lock *lk = buf;
	/* Unused fields and holder entries are zero (SPEC §5). */
	struct fmt_lock f = { .gen = st->gen, .mode = st->mode };

	lock_record_init_free(buf, addr, st->gen);
	if (st->mode == VMFS_LOCK_FREE)
		return;
	if (st->mode == VMFS_LOCK_EXCLUSIVE) {
		memcpy(f.owner_uuid, st->holders[0].uuid, VMFS_UUID_SIZE);
		f.owner_slot = st->holders[0].slot;
		f.owner_hb_gen = st->holders[0].hb_gen;
	} else {
		f.nholders = st->nholders;
		for (uint32_t i = 0; i < st->nholders; i++)
			holder_to_fmt(&st->holders[i], &f.holders[i]);
	}
	fmt_lock_encode(&f, lk);
	lun_md_seal(&lk->lk_hdr, VMFS_MAGIC_LOCK, addr, VMFS_LOCK_SIZE);
}

bool lock_holder_eq(const struct lock_holder *a, const struct lock_holder *b)
{
	return a->slot == b->slot && a->hb_gen == b->hb_gen &&
	       !memcmp(a->uuid, b->uuid, VMFS_UUID_SIZE);
}

int lock_state_find(const struct lock_state *st, const struct lock_holder *h)
{
	for (uint32_t i = 0; i < st->nholders; i++)
		if (lock_holder_eq(&st->holders[i], h))
			return (int)i;
	return -1;
}

int lock_state_from_disk(const void *buf, uint64_t addr, struct lock_state *out)
{
	return lock_state_decode(buf, addr, out);
}
