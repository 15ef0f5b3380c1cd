/*
 * Pass 1: heartbeat region, heartbeat slots and lock records.
 *
 * Liveness first (fsck_hosts_survey, called from pass 0 before any
 * write, through fsck_hosts_watch, which `vmfs journal replay` uses
 * too): hb_survey() with watch samples every non-free slot twice, the
 * longest advertised lease (plus a renewal) apart on our own monotonic
 * clock; a host whose counter moved is live.  When the region header is
 * too damaged for hb_survey, the slots are found from the geometry and
 * watched the same way.  Repairs are refused while a host is live unless
 * --force; -n goes on with a warning.
 *
 * Checks:
 *   - the region header: envelope, slot count = vh_max_hosts, slot 0
 *     right after it (PR_1_HB_REGION_BAD: rewritten from the geometry,
 *     keeping a sane advertised timing);
 *   - every slot: envelope, its own index, a known state
 *     (PR_1_HB_SLOT_BAD: reset free); active or replaying but not live
 *     (PR_1_HB_SLOT_STALE: freed the way hb_leave frees it, generation
 *     kept so the next mount moves past it).  With no live host every
 *     active slot is stale.  A read-only run judges a stale slot with
 *     its journal at the end of pass 2 (fsck_stale_slots_settle): a
 *     crashed host whose journal is clean or replayable is routine (the
 *     next mount or fsck -y frees the slot and replays), so it is a note,
 *     not a problem left; with a journal pass 2 found damaged, a problem;
 *   - lock records of the region header, every journal header and every
 *     resource-cluster header here, and of every allocated inode in pass 3
 *     (same fsck_lock_check(), as pass 3 reads each inode block anyway):
 *     damaged (PR_1_LOCK_BAD), impossible mode or holder count
 *     (PR_1_LOCK_BAD_MODE), held by a slot that is free, not live, or of
 *     another heartbeat generation or host (PR_1_LOCK_STALE).  All are
 *     reset free with lock_record_init_free(), lock generation + 1, so a
 *     host's compare-and-write against the old record fails.  A stale
 *     lock is a note in a read-only run: hosts break a dead host's locks
 *     only when they need them, so a healthy volume has some.
 *
 * Hands on: c->slots[] (valid, state, generation, uuid, live) for the
 * lock checks of pass 3.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "fsck_int.h"

static uint64_t slot_addr(const struct fsck_ctx *c, uint32_t i)
{
	return c->g.hb_offset + VMFS_MD_BLOCK_SIZE + (uint64_t)i * VMFS_MD_BLOCK_SIZE;
}

static int slots_read(struct fsck_ctx *c, uint8_t **out)
{
	size_t len = (size_t)c->g.max_hosts * VMFS_MD_BLOCK_SIZE;
	uint8_t *buf = lun_buf_alloc(len);
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = fsck_read(c, buf, len, slot_addr(c, 0));
	if (ret) {
		lun_buf_free(buf);
		return ret;
	}
	*out = buf;
	return 0;
}

static bool slot_ok(const struct fsck_ctx *c, const uint8_t *blk, uint32_t i)
{
	const struct vmfs_hb_slot *hs = (const struct vmfs_hb_slot *)blk;
	struct fmt_hb_slot h;

	return !lun_md_verify(&hs->hs_hdr, VMFS_MAGIC_HBSLOT, slot_addr(c, i),
			      sizeof(*hs)) &&
	       !fmt_hb_slot_decode(hs, &h) && h.slot == i;
}

/* Would hb_survey accept the region header?  (It logs when it does not.) */
static bool region_ok(struct lun *lun, const struct vol_geom *g)
{
	uint8_t *blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	const struct vmfs_hb_region *hr =
		(const struct vmfs_hb_region *)(blk + VMFS_OBJ_OFFSET);
	struct fmt_hb_region h;
	bool ok;

	if (!blk)
		return false;
	ok = !lun_read(lun, blk, VMFS_MD_BLOCK_SIZE, g->hb_offset) &&
	     !lun_md_verify(&hr->hr_hdr, VMFS_MAGIC_HBREGION, g->hb_offset,
			    FSCK_OBJ_LEN);
	if (ok) {
		/* Only the two fields hb_survey compares, as it does. */
		(void)fmt_hb_region_decode(hr, &h);
		ok = h.nslots == g->max_hosts &&
		     h.slot0_offset == g->hb_offset + VMFS_MD_BLOCK_SIZE;
	}
	lun_buf_free(blk);
	return ok;
}

int fsck_hosts_watch(struct lun *lun, const struct vol_geom *g,
		     struct hb_slot_info *out, uint32_t *n)
{
	*n = 0;
	if (region_ok(lun, g) &&
	    !hb_survey(lun, g->hb_offset, true, out, g->max_hosts, n))
		return 0;
	/* A region header hb_survey refuses: the slots from the geometry. */
	return hb_survey_slots(lun, g->hb_offset + VMFS_MD_BLOCK_SIZE,
			       g->max_hosts, true, out, g->max_hosts, n);
}

void fsck_host_describe(const struct hb_slot_info *si, char *out, size_t len)
{
	char uuid[37];

	vol_uuid_format(si->host_uuid, uuid);
	snprintf(out, len, "slot %u (host %.64s, uuid %s)", si->slot,
		 si->hostname[0] ? si->hostname : "?", uuid);
}

int fsck_hosts_survey(struct fsck_ctx *c)
{
	struct hb_slot_info *info;
	char who[200];
	char hosts[sizeof(c->r->error)] = "";
	uint32_t n = 0;
	int ret;

	c->slots = calloc(c->g.max_hosts, sizeof(*c->slots));
	info = calloc(c->g.max_hosts, sizeof(*info));
	if (!c->slots || !info) {
		free(info);
		fsck_fail(c, -ENOMEM, "heartbeat survey");
		return -ENOMEM;
	}
	ret = fsck_hosts_watch(c->lun, &c->g, info, &n);
	for (uint32_t k = 0; !ret && k < n; k++) {
		struct fsck_slot *s;

		if (info[k].slot >= c->g.max_hosts || !info[k].live)
			continue;
		s = &c->slots[info[k].slot];
		s->live = true;
		memcpy(s->uuid, info[k].host_uuid, VMFS_UUID_SIZE);
		memcpy(s->hostname, info[k].hostname, sizeof(s->hostname));
		s->hostname[64] = 0;
		c->nlive++;
		fsck_host_describe(&info[k], who, sizeof(who));
		fsck_info(c, "heartbeat %s is live: that host has the volume mounted",
			  who);
		if (strlen(hosts) + strlen(who) + 3 < sizeof(hosts) - 100) {
			if (hosts[0])
				strcat(hosts, "; ");
			strcat(hosts, who);
		}
	}
	free(info);
	if (ret) {
		fsck_fail(c, ret, "cannot read the heartbeat slots to see which "
			  "hosts are live");
		return ret;
	}
	if (!c->nlive)
		return 0;
	if (c->writable && !c->o->force) {
		fsck_fail(c, 0, "the volume is in use by a live host: %s; unmount "
			  "it there, or pass --force if you are sure that host is gone",
			  hosts);
		return -EBUSY;
	}
	fsck_info(c, c->writable ?
		  "warning: repairing while a host is live (--force)" :
		  "warning: the volume is mounted by a live host; results may be "
		  "inconsistent while it writes");
	return 0;
}

static bool holder_live(const struct fsck_ctx *c, uint32_t slot,
			uint64_t hb_gen, const uint8_t *uuid)
{
	const struct fsck_slot *s;

	if (slot >= c->g.max_hosts)
		return false;
	s = &c->slots[slot];
	return s->valid && s->state != VMFS_HB_FREE && s->live &&
	       s->hb_gen == hb_gen && !memcmp(s->uuid, uuid, VMFS_UUID_SIZE);
}

bool fsck_lock_check(struct fsck_ctx *c, uint8_t *blk, uint64_t addr,
		     const char *what)
{
	struct lock_record lr;
	struct fmt_lock lk;
	char uuid[37];
	int ret;
	bool fix;

	/* lock_record_decode verifies; the raw fields are for messages. */
	(void)fmt_lock_decode((const struct vmfs_lock *)blk, &lk);
	ret = lock_record_decode(blk, addr, &lr);
	if (ret == -VMFS_E_CORRUPT) {
		fix = fsck_fix(c, PR_1_LOCK_BAD_MODE, addr,
			       "%s: mode %u, %u holders", what, lk.mode,
			       lk.nholders);
	} else if (ret) {
		fix = fsck_fix(c, PR_1_LOCK_BAD, addr, "%s: %s", what,
			       fsck_err(ret));
	} else if (lr.mode == VMFS_LOCK_FREE) {
		return false;
	} else if ((lr.mode == VMFS_LOCK_EXCLUSIVE) != (lr.nholders == 0)) {
		fix = fsck_fix(c, PR_1_LOCK_BAD_MODE, addr,
			       "%s: mode %u with %u holders", what, lr.mode,
			       lr.nholders);
	} else {
		bool live = false;

		if (lr.mode == VMFS_LOCK_EXCLUSIVE) {
			live = holder_live(c, lr.owner_slot, lr.owner_hb_gen,
					   lr.owner_uuid);
		} else {
			for (uint32_t i = 0; i < lr.nholders && !live; i++)
				live = holder_live(c, lk.holders[i].slot,
						   lk.holders[i].hb_gen,
						   lk.holders[i].uuid);
		}
		if (live)
			return false;
		vol_uuid_format(lr.owner_uuid, uuid);
		/*
		 * A crashed or recovered host's locks stay on disk until a
		 * host that needs one breaks it (docs/PROTOCOL.md): routine,
		 * not damage.  A read-only run says so; a repair frees them.
		 */
		if (!c->writable) {
			fsck_note(c, PR_1_LOCK_STALE, addr,
				  "%s: held %s by a host that is not live; the "
				  "next host that needs it breaks it", what,
				  lr.mode == VMFS_LOCK_EXCLUSIVE ? "exclusive" :
				  lr.mode == VMFS_LOCK_READONLY ? "read-only" :
				  "multi-writer");
			return false;
		}
		if (lr.mode == VMFS_LOCK_EXCLUSIVE)
			fix = fsck_fix(c, PR_1_LOCK_STALE, addr,
				       "%s: held exclusive by slot %u generation %llu host %s",
				       what, lr.owner_slot,
				       (unsigned long long)lr.owner_hb_gen, uuid);
		else
			fix = fsck_fix(c, PR_1_LOCK_STALE, addr,
				       "%s: held %s by %u holders, none live", what,
				       lr.mode == VMFS_LOCK_READONLY ? "read-only"
								     : "multi-writer",
				       lr.nholders);
	}
	if (!fix)
		return false;
	lock_record_init_free(blk, addr, lk.gen + 1);
	return true;
}

/* Region header: lock record and object, written once. */
static int check_region(struct fsck_ctx *c, uint8_t *blk)
{
	struct vmfs_hb_region *hr = (struct vmfs_hb_region *)(blk + VMFS_OBJ_OFFSET);
	uint64_t off = c->g.hb_offset;
	struct fmt_hb_region h;
	bool dirty;
	int ret;

	ret = fsck_read(c, blk, VMFS_MD_BLOCK_SIZE, off);
	if (ret)
		return ret;
	ret = lun_md_verify(&hr->hr_hdr, VMFS_MAGIC_HBREGION, off, FSCK_OBJ_LEN);
	/* Decoded even when the envelope fails: the message shows it. */
	if (fmt_hb_region_decode(hr, &h) && !ret)
		ret = -VMFS_E_CORRUPT;
	if (!ret && (h.nslots != c->g.max_hosts ||
		     h.slot0_offset != off + VMFS_MD_BLOCK_SIZE))
		ret = -VMFS_E_CORRUPT;
	dirty = fsck_lock_check(c, blk, off, "heartbeat region header");
	if (ret && fsck_fix(c, PR_1_HB_REGION_BAD, off, "at %llu: %s (%u slots, slot 0 at %llu)",
			    (unsigned long long)off, fsck_err(ret),
			    h.nslots, (unsigned long long)h.slot0_offset)) {
		if (h.lease_ms < 500 || h.lease_ms > 600000 || h.renew_ms == 0 ||
		    h.renew_ms >= h.lease_ms) {
			h.lease_ms = HB_DEFAULT_LEASE_MS;
			h.renew_ms = HB_DEFAULT_RENEW_MS;
		}
		h.nslots = c->g.max_hosts;
		h.slot0_offset = off + VMFS_MD_BLOCK_SIZE;
		memset(hr, 0, FSCK_OBJ_LEN);
		fmt_hb_region_encode(&h, hr);
		fsck_seal(&hr->hr_hdr, VMFS_MAGIC_HBREGION, off, FSCK_OBJ_LEN);
		dirty = true;
	}
	return dirty ? fsck_write_md(c, blk, VMFS_MD_BLOCK_SIZE, off) : 0;
}

static int check_slots(struct fsck_ctx *c)
{
	uint8_t *all = NULL;
	int ret = slots_read(c, &all);

	for (uint32_t i = 0; !ret && i < c->g.max_hosts && !c->abort; i++) {
		uint8_t *blk = all + (size_t)i * VMFS_MD_BLOCK_SIZE;
		struct vmfs_hb_slot *hs = (struct vmfs_hb_slot *)blk;
		struct fsck_slot *s = &c->slots[i];
		uint64_t addr = slot_addr(c, i);
		bool dirty = false;
		char uuid[37];

		if (!slot_ok(c, blk, i)) {
			if (fsck_fix(c, PR_1_HB_SLOT_BAD, addr, "slot %u at %llu", i,
				     (unsigned long long)addr)) {
				struct fmt_hb_slot h;
				uint64_t hb_gen;

				(void)fmt_hb_slot_decode(hs, &h);
				hb_gen = h.hb_gen;
				memset(hs, 0, sizeof(*hs));
				fmt_hb_slot_encode(&(struct fmt_hb_slot){
							   .gen = h.gen,
							   .state = VMFS_HB_FREE,
							   .slot = i,
							   .hb_gen = hb_gen + 1 }, hs);
				fsck_seal(&hs->hs_hdr, VMFS_MAGIC_HBSLOT, addr, sizeof(*hs));
				dirty = true;
				s->valid = true;
				s->hb_gen = hb_gen + 1;
			}
		} else {
			struct fmt_hb_slot h;

			(void)fmt_hb_slot_decode(hs, &h);  /* slot_ok checked it */
			s->valid = true;
			s->state = h.state;
			s->hb_gen = h.hb_gen;
			memcpy(s->uuid, h.host_uuid, VMFS_UUID_SIZE);
			if (s->state != VMFS_HB_FREE && !s->live &&
			    !c->writable) {
				/* Judged with its journal, after pass 2. */
				s->stale = true;
				snprintf(s->hostname, sizeof(s->hostname), "%.64s",
					 hs->hs_hostname);
			} else if (s->state != VMFS_HB_FREE && !s->live) {
				vol_uuid_format(s->uuid, uuid);
				if (fsck_fix(c, PR_1_HB_SLOT_STALE, addr,
					     "slot %u: host %.64s (%s), generation %llu",
					     i, hs->hs_hostname, uuid,
					     (unsigned long long)s->hb_gen)) {
					h.state = VMFS_HB_FREE;
					memset(h.host_uuid, 0, VMFS_UUID_SIZE);
					fmt_hb_slot_encode(&h, hs);
					fsck_seal(&hs->hs_hdr, VMFS_MAGIC_HBSLOT, addr,
						  sizeof(*hs));
					s->state = VMFS_HB_FREE;
					dirty = true;
				}
			}
		}
		if (dirty)
			ret = fsck_write_md(c, blk, VMFS_MD_BLOCK_SIZE, addr);
	}
	lun_buf_free(all);
	return ret;
}

void fsck_stale_slots_settle(struct fsck_ctx *c)
{
	char uuid[37];

	for (uint32_t i = 0; i < c->g.max_hosts; i++) {
		const struct fsck_slot *s = &c->slots[i];

		if (!s->stale)
			continue;
		vol_uuid_format(s->uuid, uuid);
		if (s->jnl_sound)
			fsck_note(c, PR_1_HB_SLOT_STALE, slot_addr(c, i),
				  "slot %u: host %s (%s), generation %llu; its journal "
				  "is clean or replayable, so a mount or 'vmfs fsck -y' "
				  "frees the slot", i, s->hostname, uuid,
				  (unsigned long long)s->hb_gen);
		else
			fsck_unfixed(c, PR_1_HB_SLOT_STALE, slot_addr(c, i),
				     "slot %u: host %s (%s), generation %llu; its "
				     "journal cannot be replayed as it is", i,
				     s->hostname, uuid,
				     (unsigned long long)s->hb_gen);
	}
}

/* Lock records of n lockable blocks addr0 + k * stride. */
static int check_locks(struct fsck_ctx *c, uint64_t addr0, uint64_t stride,
		       uint32_t n, const char *what)
{
	bool contiguous = stride == VMFS_MD_BLOCK_SIZE;
	uint32_t batch = contiguous ? FSCK_BATCH : 1;
	uint8_t *buf = fsck_batch_alloc(n < batch ? n : batch);
	char name[96];
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	for (uint32_t i = 0; !ret && i < n && !c->abort; i += batch) {
		uint32_t m = n - i < batch ? n - i : batch;

		ret = fsck_read(c, buf, (size_t)m * VMFS_MD_BLOCK_SIZE,
				addr0 + (uint64_t)i * stride);
		for (uint32_t k = 0; !ret && k < m; k++) {
			uint8_t *blk = buf + (size_t)k * VMFS_MD_BLOCK_SIZE;
			uint64_t addr = addr0 + (uint64_t)(i + k) * stride;

			snprintf(name, sizeof(name), "%s %u", what, i + k);
			if (fsck_lock_check(c, blk, addr, name))
				ret = fsck_write_md(c, blk, VMFS_MD_BLOCK_SIZE, addr);
		}
	}
	lun_buf_free(buf);
	return ret;
}

int fsck_pass1(struct fsck_ctx *c)
{
	uint8_t *blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	int ret;

	if (!blk)
		return -ENOMEM;
	ret = check_slots(c);
	fsck_progress(c, 1, "heartbeat and locks", 1, 3);
	if (!ret)
		ret = check_region(c, blk);
	if (!ret)
		ret = check_locks(c, c->g.journal_offset, c->g.journal_size_bytes,
				  c->g.max_hosts, "journal header");
	fsck_progress(c, 1, "heartbeat and locks", 2, 3);
	for (int t = 0; !ret && t < VMFS_RES_NTYPES; t++) {
		char what[64];

		snprintf(what, sizeof(what), "%s cluster", vol_res_name(t));
		ret = check_locks(c, c->g.res[t].hdr_offset, VMFS_MD_BLOCK_SIZE,
				  c->g.res[t].nclusters, what);
	}
	lun_buf_free(blk);
	return ret;
}
