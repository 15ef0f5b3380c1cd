/*
 * Heartbeats: claiming slots with compare-and-write, renewal seen by a
 * watcher, leaving, running out of slots, and self-fencing when another
 * host takes our slot over; the same on a LUN without COMPARE AND WRITE
 * (the reserve path), and a volume mounted over such a LUN.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "unit.h"
#include "vmfs/clock.h"
#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"

#define NSLOTS 4
#define HB_OFF (64 * 1024)
#define LEASE_MS 500

static const char *path;

static struct lun *open_lun(void)
{
	struct lun *l;

	CU_ASSERT_FATAL(lun_open(path, 0, &l) == 0);
	return l;
}

static void fresh(void)
{
	struct lun *l;
	int fd;

	path = unit_tmp_path("hb.img");
	fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(ftruncate(fd, 4 * 1024 * 1024) == 0);
	close(fd);
	l = open_lun();
	CU_ASSERT_FATAL(hb_region_format(l, HB_OFF, NSLOTS) == 0);
	lun_close(l);
}

static void opts(struct hb_opts *o, uint8_t *uuid, int id)
{
	memset(o, 0, sizeof(*o));
	memset(uuid, id, VMFS_UUID_SIZE);
	o->host_uuid = uuid;
	o->hostname = "unit";
	o->lease_ms = LEASE_MS;
	o->journal_offset = 1024 * 1024;
	o->journal_size = 1024 * 1024;
}

static void test_timeouts(void)
{
	struct hb_timeouts t;

	hb_timeouts_from_lease(5000, &t);
	CU_ASSERT_EQUAL(t.renew_ms, 1000);
	CU_ASSERT_EQUAL(t.fence_ms, 3000);
	CU_ASSERT_EQUAL(t.dead_ms, 6000);
	/* A lease from a damaged slot is clamped. */
	hb_timeouts_from_lease(0x7fffffff, &t);
	CU_ASSERT_EQUAL(t.lease_ms, HB_MAX_LEASE_MS);
	CU_ASSERT(t.dead_ms > t.lease_ms);
	CU_ASSERT_EQUAL(t.data_io_timeout_ms, 2 * t.renew_ms);
	/* Fencing always comes before anyone may call us dead: the last
	 * write issued before the gate closes ends before an observer that
	 * saw the renewal opening it can count us dead (timeouts.c). */
	for (uint32_t l = 100; l < 100000; l += 777) {
		hb_timeouts_from_lease(l, &t);
		CU_ASSERT(t.fence_ms + t.io_timeout_ms < t.lease_ms);
		CU_ASSERT(t.fence_ms + t.data_io_timeout_ms < t.dead_ms);
		CU_ASSERT(t.data_io_timeout_ms >= t.io_timeout_ms);
		CU_ASSERT(t.dead_ms > t.lease_ms);
	}
}

static void test_join_survey_leave(void)
{
	struct lun *a = NULL, *b = NULL, *w;
	struct hb *ha, *hb2;
	struct hb_opts o;
	uint8_t ua[16], ub[16];
	struct hb_slot_info si[NSLOTS];
	uint32_t n;

	fresh();
	a = open_lun();
	b = open_lun();
	w = open_lun();
	opts(&o, ua, 0xa1);
	CU_ASSERT_FATAL(hb_join(a, HB_OFF, &o, &ha) == 0);
	opts(&o, ub, 0xb2);
	CU_ASSERT_FATAL(hb_join(b, HB_OFF, &o, &hb2) == 0);
	CU_ASSERT_EQUAL(hb_slot_index(ha), 0);
	CU_ASSERT_EQUAL(hb_slot_index(hb2), 1);
	CU_ASSERT_EQUAL(hb_survey(w, HB_OFF, true, si, NSLOTS, &n), 0);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT(si[0].live && si[1].live);
	CU_ASSERT(memcmp(si[1].host_uuid, ub, 16) == 0);
	CU_ASSERT_EQUAL(hb_leave(hb2), 0);
	CU_ASSERT_EQUAL(hb_survey(w, HB_OFF, false, si, NSLOTS, &n), 0);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(si[0].slot, 0);
	/* Rejoining takes the free slot with a newer generation. */
	CU_ASSERT_FATAL(hb_join(b, HB_OFF, &o, &hb2) == 0);
	CU_ASSERT_EQUAL(hb_slot_index(hb2), 1);
	CU_ASSERT_EQUAL(hb_generation(hb2), 2);
	CU_ASSERT_EQUAL(hb_leave(hb2), 0);
	/* A slot advertising an absurd lease counts as damaged: a watcher
	 * does not wait on it (found by fuzzing: a 24-day sleep). */
	{
		uint8_t *buf = lun_buf_alloc(4096);
		struct vmfs_hb_slot *hs = (struct vmfs_hb_slot *)buf;
		uint64_t addr = HB_OFF + 4096 * 3;
		struct fmt_hb_slot f;

		CU_ASSERT_FATAL(lun_read(w, buf, 512, addr) == 0);
		CU_ASSERT_FATAL(fmt_hb_slot_decode(hs, &f) == 0);
		f.state = VMFS_HB_ACTIVE;
		f.lease_ms = 0x7fffffff;
		fmt_hb_slot_encode(&f, hs);
		lun_md_seal(&hs->hs_hdr, VMFS_MAGIC_HBSLOT, addr, 512);
		CU_ASSERT_FATAL(lun_write(w, buf, 512, addr) == 0);
		CU_ASSERT_EQUAL(hb_survey(w, HB_OFF, false, si, NSLOTS, &n), 0);
		CU_ASSERT_EQUAL(n, 1);
		CU_ASSERT_EQUAL(si[0].slot, 0);
		memset(buf, 0, 4096);
		lun_buf_free(buf);
	}
	/* A slot read while its host rewrites it can come back torn: it is
	 * read again, not taken for unused (vmfs locks would call the
	 * host's locks stale, the HA agent think the host left). */
	{
		struct lun *t = NULL;
		/* Slot 0's block follows the region's header block. */
		uint64_t slot0 = HB_OFF + 4096;

		CU_ASSERT_FATAL(lun_fault_wrap(open_lun(), &t) == 0);
		lun_fault_tear_reads_at(t, slot0 + 256, 2);
		CU_ASSERT_EQUAL(hb_survey(t, HB_OFF, false, si, NSLOTS, &n), 0);
		CU_ASSERT_EQUAL(n, 1);
		CU_ASSERT_EQUAL(si[0].slot, 0);
		/* Torn at every read: damaged, then it counts as unused. */
		lun_fault_tear_reads_at(t, slot0 + 256, 100);
		CU_ASSERT_EQUAL(hb_survey(t, HB_OFF, false, si, NSLOTS, &n), 0);
		CU_ASSERT_EQUAL(n, 0);
		lun_fault_tear_reads_at(t, 0, 0);
		lun_close(t);
	}
	CU_ASSERT_EQUAL(hb_leave(ha), 0);
	/* Nobody renews any more: a watcher sees no live host. */
	CU_ASSERT_EQUAL(hb_survey(w, HB_OFF, true, si, NSLOTS, &n), 0);
	CU_ASSERT_EQUAL(n, 0);
	lun_close(a);
	lun_close(b);
	lun_close(w);
}

static void test_slots_full(void)
{
	struct lun *l[NSLOTS + 1];
	struct hb *h[NSLOTS + 1];
	struct hb_opts o;
	uint8_t u[NSLOTS + 1][16];

	fresh();
	for (int i = 0; i <= NSLOTS; i++) {
		int want;

		l[i] = open_lun();
		opts(&o, u[i], 0x10 + i);
		want = i < NSLOTS ? 0 : -EUSERS;
		CU_ASSERT_EQUAL(hb_join(l[i], HB_OFF, &o, &h[i]), want);
	}
	for (int i = 0; i < NSLOTS; i++)
		hb_leave(h[i]);
	for (int i = 0; i <= NSLOTS; i++)
		lun_close(l[i]);
}

static atomic_int fenced;
static char fence_why[256];

static void on_fence(void *ctx, const char *why)
{
	(void)ctx;
	snprintf(fence_why, sizeof(fence_why), "%s", why);
	atomic_store(&fenced, 1);
}

static struct lun *open_no_ats(const char *p);

/* Fresh region; host id joins through a (opened by open_a), s is a
 * survivor's handle. */
static struct hb *join_watched_on(struct lun *(*open_a)(void), int id,
				  struct lun **a, struct lun **s)
{
	static uint8_t u[16];
	struct hb_opts o;
	struct hb *h = NULL;

	fresh();
	*a = open_a();
	*s = open_lun();
	opts(&o, u, id);
	o.on_fence = on_fence;
	atomic_store(&fenced, 0);
	CU_ASSERT_FATAL(hb_join(*a, HB_OFF, &o, &h) == 0);
	return h;
}

static struct hb *join_watched(int id, struct lun **a, struct lun **s)
{
	return join_watched_on(open_lun, id, a, s);
}

static struct lun *open_lun_no_ats(void)
{
	return open_no_ats(path);
}

/* A survivor rewrites our slot: our next renewal fails its compare and
 * we fence ourselves, after which no I/O gets through our handle. */
static void test_takeover_fences(void)
{
	struct lun *a, *s;
	struct hb *h = join_watched(0x33, &a, &s);
	uint8_t *buf;

	buf = lun_buf_alloc(4096);
	CU_ASSERT_FATAL(lun_read(s, buf, 512, HB_OFF + 4096) == 0);
	{
		struct vmfs_hb_slot *hs = (struct vmfs_hb_slot *)buf;
		struct fmt_hb_slot f;

		CU_ASSERT_FATAL(fmt_hb_slot_decode(hs, &f) == 0);
		f.state = VMFS_HB_REPLAYING;
		f.gen += 1000;
		fmt_hb_slot_encode(&f, hs);
		lun_md_seal(&hs->hs_hdr, VMFS_MAGIC_HBSLOT, HB_OFF + 4096, 512);
	}
	CU_ASSERT_FATAL(lun_write(s, buf, 512, HB_OFF + 4096) == 0);
	for (int i = 0; i < 50 && !atomic_load(&fenced); i++)
		usleep(20000);
	CU_ASSERT_EQUAL(atomic_load(&fenced), 1);
	CU_ASSERT(lun_is_fenced(a));
	CU_ASSERT_EQUAL(lun_read(a, buf, 512, 0), -EIO);
	CU_ASSERT_EQUAL(lun_write(a, buf, 512, 0), -EIO);
	/* Leaving a fenced slot writes nothing: the survivor owns it. */
	CU_ASSERT_EQUAL(hb_leave(h), 0);
	CU_ASSERT_FATAL(lun_read(s, buf, 512, HB_OFF + 4096) == 0);
	{
		struct fmt_hb_slot f;

		fmt_hb_slot_decode((struct vmfs_hb_slot *)buf, &f);
		CU_ASSERT_EQUAL(f.state, VMFS_HB_REPLAYING);
	}
	lun_buf_free(buf);
	lun_close(a);
	lun_close(s);
}

/*
 * What a renewal of slot 0 that timed out and landed later leaves: the
 * slot's counter (and block generation) moved on by `by`, written
 * through handle w.  Returns the counter written.
 */
static uint64_t slot0_land_late(struct lun *w, uint64_t by)
{
	uint8_t *buf = lun_buf_alloc(4096);
	struct vmfs_hb_slot *hs = (struct vmfs_hb_slot *)buf;
	struct fmt_hb_slot f;

	CU_ASSERT_FATAL(lun_read(w, buf, 512, HB_OFF + 4096) == 0);
	CU_ASSERT_FATAL(fmt_hb_slot_decode(hs, &f) == 0);
	f.counter += by;
	f.gen += by;
	fmt_hb_slot_encode(&f, hs);
	lun_md_seal(&hs->hs_hdr, VMFS_MAGIC_HBSLOT, HB_OFF + 4096, 512);
	CU_ASSERT_FATAL(lun_write(w, buf, 512, HB_OFF + 4096) == 0);
	lun_buf_free(buf);
	return f.counter;
}

/*
 * A renewal whose compare-and-write timed out may land later.  The next
 * renewal then finds its own newer image on disk: that is not a
 * takeover, and the host must go on renewing without fencing.
 */
static void test_late_renewal_not_takeover(void)
{
	struct lun *a, *s;
	struct hb *h = join_watched(0x44, &a, &s);
	uint64_t landed;
	uint32_t n;
	struct hb_slot_info si[NSLOTS];

	landed = slot0_land_late(s, 3);
	usleep(500000);
	CU_ASSERT_EQUAL(atomic_load(&fenced), 0);
	CU_ASSERT(!lun_is_fenced(a));
	CU_ASSERT_EQUAL(hb_survey(s, HB_OFF, false, si, NSLOTS, &n), 0);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT(si[0].counter > landed);
	CU_ASSERT_EQUAL(hb_leave(h), 0);
	CU_ASSERT_EQUAL(hb_survey(s, HB_OFF, false, si, NSLOTS, &n), 0);
	CU_ASSERT_EQUAL(n, 0);
	lun_close(a);
	lun_close(s);
}

/* A handle on path that claims RESERVE only, as a tgt LUN does. */
static struct lun *open_no_ats(const char *p)
{
	struct lun *in, *l;

	CU_ASSERT_FATAL(lun_open(p, 0, &in) == 0);
	CU_ASSERT_FATAL(lun_fault_wrap(in, &l) == 0);
	lun_fault_set_caps(l, LUN_CAP_RESERVE);
	CU_ASSERT_FATAL(lun_caps(l) == LUN_CAP_RESERVE);
	/* What the heartbeat used before: no COMPARE AND WRITE here. */
	CU_ASSERT_FATAL(lun_compare_and_write(l, "", "", 0, 0, NULL) ==
			-EOPNOTSUPP);
	return l;
}

/*
 * Without ATS: join, renewals a watcher sees, a second host in the next
 * slot, fencing when a survivor takes the slot over, leaving.  Every
 * change goes through RESERVE/read/compare/write/RELEASE.
 */
static void test_no_ats(void)
{
	struct lun *a, *b, *w;
	struct hb *ha, *hb2;
	struct hb_opts o;
	uint8_t ua[16], ub[16], *buf;
	struct hb_slot_info si[NSLOTS];
	uint32_t n;

	fresh();
	a = open_no_ats(path);
	b = open_no_ats(path);
	w = open_lun();
	opts(&o, ua, 0xc1);
	o.on_fence = on_fence;
	atomic_store(&fenced, 0);
	CU_ASSERT_FATAL(hb_join(a, HB_OFF, &o, &ha) == 0);
	opts(&o, ub, 0xd2);
	CU_ASSERT_FATAL(hb_join(b, HB_OFF, &o, &hb2) == 0);
	CU_ASSERT_EQUAL(hb_slot_index(ha), 0);
	CU_ASSERT_EQUAL(hb_slot_index(hb2), 1);
	/* Both renew: a watcher sees both counters move. */
	CU_ASSERT_EQUAL(hb_survey(w, HB_OFF, true, si, NSLOTS, &n), 0);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT(n == 2 && si[0].live && si[1].live);
	CU_ASSERT_EQUAL(atomic_load(&fenced), 0);
	/* Leaving frees the slot. */
	CU_ASSERT_EQUAL(hb_leave(hb2), 0);
	CU_ASSERT_EQUAL(hb_survey(w, HB_OFF, false, si, NSLOTS, &n), 0);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(si[0].slot, 0);
	/* A survivor marks slot 0 being-replayed: a fences itself. */
	buf = lun_buf_alloc(4096);
	CU_ASSERT_FATAL(lun_read(w, buf, 512, HB_OFF + 4096) == 0);
	{
		struct vmfs_hb_slot *hs = (struct vmfs_hb_slot *)buf;

		hs->hs_state = htole32(VMFS_HB_REPLAYING);
		hs->hs_hdr.bh_gen = htole64(le64toh(hs->hs_hdr.bh_gen) + 1000);
		lun_md_seal(&hs->hs_hdr, VMFS_MAGIC_HBSLOT, HB_OFF + 4096, 512);
	}
	CU_ASSERT_FATAL(lun_write(w, buf, 512, HB_OFF + 4096) == 0);
	for (int i = 0; i < 50 && !atomic_load(&fenced); i++)
		usleep(20000);
	CU_ASSERT_EQUAL(atomic_load(&fenced), 1);
	CU_ASSERT(lun_is_fenced(a));
	CU_ASSERT_EQUAL(hb_leave(ha), 0);
	CU_ASSERT_FATAL(lun_read(w, buf, 512, HB_OFF + 4096) == 0);
	CU_ASSERT_EQUAL(le32toh(((struct vmfs_hb_slot *)buf)->hs_state),
			VMFS_HB_REPLAYING);
	lun_buf_free(buf);
	lun_close(a);
	lun_close(b);
	lun_close(w);
}

/*
 * Without ATS a renewal takes no reservation (docs/PROTOCOL.md "Renewals
 * take no reservation"): another host that keeps the LUN reserved for
 * three leases (a lock change stalled on a cut path, a hold nobody broke
 * yet) delays no renewal and fences nobody; the counter keeps moving
 * while the reservation is held.  A renewal of ours that timed out and
 * landed later, with a higher counter, is moved past, not taken for a
 * takeover.  And the slot is freed while the reservation is held.
 */
static void test_no_ats_renewal_takes_no_reservation(void)
{
	struct lun *a, *o2, *w;
	struct hb *h = join_watched_on(open_lun_no_ats, 0xe7, &a, &w);
	struct hb_slot_info si[NSLOTS];
	uint64_t c0, landed;
	uint32_t n;

	o2 = open_no_ats(path);
	CU_ASSERT_EQUAL(hb_primitive(h), LOCK_PRIM_RESERVE);
	CU_ASSERT_FATAL(lun_reserve(o2, 1000) == 0);
	CU_ASSERT_FATAL(hb_survey(w, HB_OFF, false, si, NSLOTS, &n) == 0 &&
			n == 1);
	c0 = si[0].counter;
	usleep(3 * LEASE_MS * 1000);
	CU_ASSERT_FATAL(hb_survey(w, HB_OFF, false, si, NSLOTS, &n) == 0 &&
			n == 1);
	/* A renewal every lease / 5: about 15 in three leases. */
	CU_ASSERT(si[0].counter >= c0 + 5);
	CU_ASSERT_EQUAL(atomic_load(&fenced), 0);
	CU_ASSERT(!lun_is_fenced(a));
	CU_ASSERT_EQUAL(lun_release(o2), 0);

	landed = slot0_land_late(w, 100);
	usleep(LEASE_MS * 1000);
	CU_ASSERT_EQUAL(atomic_load(&fenced), 0);
	CU_ASSERT_FATAL(hb_survey(w, HB_OFF, false, si, NSLOTS, &n) == 0 &&
			n == 1);
	CU_ASSERT(si[0].counter > landed);
	/* Freeing the slot takes no reservation either. */
	CU_ASSERT_FATAL(lun_reserve(o2, 1000) == 0);
	CU_ASSERT_EQUAL(hb_leave(h), 0);
	CU_ASSERT_FATAL(hb_survey(w, HB_OFF, false, si, NSLOTS, &n) == 0);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_EQUAL(lun_release(o2), 0);
	lun_close(a);
	lun_close(o2);
	lun_close(w);
}

/* A LUN with neither primitive: joining fails, writing nothing. */
static void test_no_primitive(void)
{
	struct lun *a = NULL;
	struct hb *h = NULL;
	struct hb_opts o;
	uint8_t u[16];

	fresh();
	a = open_no_ats(path);
	lun_fault_set_caps(a, 0);
	opts(&o, u, 0xe3);
	CU_ASSERT_EQUAL(hb_join(a, HB_OFF, &o, &h), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(lun_fault_writes(a), 0);
	lun_close(a);
}

/*
 * --lock-primitive: a forced primitive is used even where the LUN has
 * both, and one the LUN lacks is refused before anything is written.
 */
static void test_forced_primitive(void)
{
	struct lun *a, *w;
	struct hb *h = NULL;
	struct hb_opts o;
	struct hb_slot_info si[NSLOTS];
	uint8_t u[16];
	uint32_t n;

	fresh();
	w = open_lun();
	CU_ASSERT_FATAL(lun_caps(w) == (LUN_CAP_ATS | LUN_CAP_RESERVE));
	opts(&o, u, 0xa5);
	o.prim = LOCK_PRIM_RESERVE;
	CU_ASSERT_FATAL(hb_join(w, HB_OFF, &o, &h) == 0);
	CU_ASSERT_EQUAL(hb_primitive(h), LOCK_PRIM_RESERVE);
	/* Renewals through RESERVE move the counter. */
	CU_ASSERT_EQUAL(hb_survey(w, HB_OFF, true, si, NSLOTS, &n), 0);
	CU_ASSERT(n == 1 && si[0].live);
	CU_ASSERT_EQUAL(hb_leave(h), 0);
	o.prim = 0;
	CU_ASSERT_FATAL(hb_join(w, HB_OFF, &o, &h) == 0);
	CU_ASSERT_EQUAL(hb_primitive(h), LOCK_PRIM_ATS);
	CU_ASSERT_EQUAL(hb_leave(h), 0);
	o.prim = LOCK_PRIM_ATS | LOCK_PRIM_RESERVE;
	CU_ASSERT_EQUAL(hb_join(w, HB_OFF, &o, &h), -EINVAL);
	lun_close(w);

	/* ATS forced on a LUN that has RESERVE only: refused, nothing written. */
	a = open_no_ats(path);
	o.prim = LOCK_PRIM_ATS;
	CU_ASSERT_EQUAL(hb_join(a, HB_OFF, &o, &h), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(lun_fault_writes(a), 0);
	o.prim = LOCK_PRIM_RESERVE;
	CU_ASSERT_FATAL(hb_join(a, HB_OFF, &o, &h) == 0);
	CU_ASSERT_EQUAL(hb_primitive(h), LOCK_PRIM_RESERVE);
	CU_ASSERT_EQUAL(hb_leave(h), 0);
	lun_close(a);
}

static void test_prim_parse(void)
{
	unsigned f = 99;

	CU_ASSERT(lock_prim_parse("ats", &f) == 0 && f == LOCK_PRIM_ATS);
	CU_ASSERT(lock_prim_parse("reserve", &f) == 0 && f == LOCK_PRIM_RESERVE);
	CU_ASSERT(lock_prim_parse("auto", &f) == 0 && f == 0);
	CU_ASSERT_EQUAL(lock_prim_parse("ATS", &f), -EINVAL);
	CU_ASSERT_EQUAL(lock_prim_parse("", &f), -EINVAL);
	CU_ASSERT_STRING_EQUAL(lock_prim_name(LOCK_PRIM_RESERVE), "reserve");
	CU_ASSERT_STRING_EQUAL(lock_prim_name(LOCK_PRIM_ATS), "ats");
}

/* The mount sequence (heartbeat, then the volume in its journal slot)
 * over a LUN without ATS, and a change that survives a remount. */
static void test_no_ats_mount(void)
{
	const char *img = unit_tmp_path("hbvol.img");
	struct vol_mkfs_opts mo;
	struct vol_open_opts vo = { 0 };
	struct vol_geom g;
	struct vol_attr at;
	struct lun *l;
	struct hb *h;
	struct hb_opts o;
	struct vol *v;
	uint8_t u[16];
	int fd;

	fd = open(img, O_CREAT | O_TRUNC | O_RDWR, 0600);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(ftruncate(fd, 64 * 1024 * 1024) == 0);
	close(fd);
	l = open_no_ats(img);
	vol_mkfs_opts_init(&mo);
	mo.max_hosts = 4;
	mo.journal_size = 1024 * 1024;
	CU_ASSERT_FATAL(vol_mkfs(l, &mo, NULL) == 0);
	CU_ASSERT_FATAL(vol_geom_read(l, &g, NULL, NULL) == 0);
	for (int round = 0; round < 2; round++) {
		opts(&o, u, 0xf4);
		o.journal_offset = g.journal_offset;
		o.journal_size = g.journal_size_bytes;
		CU_ASSERT_FATAL(hb_join(l, g.hb_offset, &o, &h) == 0);
		vo.journal_slot = hb_slot_index(h);
		CU_ASSERT_FATAL(vol_open_ex(l, &vo, &v) == 0);
		if (!round) {
			CU_ASSERT_EQUAL(vol_create(v, VMFS_ROOT_INO, "f", 0100644,
						   0, 0, 0, &at), 0);
		} else {
			CU_ASSERT_EQUAL(vol_lookup(v, VMFS_ROOT_INO, "f", &at), 0);
		}
		CU_ASSERT_EQUAL(vol_close(v), 0);
		CU_ASSERT_EQUAL(hb_leave(h), 0);
	}
	lun_close(l);
	CU_ASSERT(unit_fsck_clean(img, "no_ats_mount"));
}

/* ---- the write gate: renewals move it, a stalled host is fenced -------- */

/*
 * Join through hb_lun (a fault wrapper: its latency stalls renewals) with
 * data as the gate_lun, at the given lease.
 */
static struct hb *join_gated(int id, uint32_t lease_ms, struct lun **hb_lun,
			     struct lun *data)
{
	static uint8_t u[16];
	struct lun *in;
	struct hb_opts o;
	struct hb *h = NULL;

	CU_ASSERT_FATAL(lun_open(path, 0, &in) == 0);
	CU_ASSERT_FATAL(lun_fault_wrap(in, hb_lun) == 0);
	opts(&o, u, id);
	o.lease_ms = lease_ms;
	o.gate_lun = data;
	o.on_fence = on_fence;
	atomic_store(&fenced, 0);
	fence_why[0] = '\0';
	CU_ASSERT_FATAL(hb_join(*hb_lun, HB_OFF, &o, &h) == 0);
	return h;
}

/* The offset the gated writes of these tests aim at: past the region. */
#define DATA_OFF (1024 * 1024)

/*
 * Renewals keep moving the deadline: writes through the data handle go
 * on working for several fence times, and after hb_leave (gate disarmed).
 */
static void test_gate_follows_renewals(void)
{
	struct lun *a, *d;
	struct hb_timeouts t;
	struct hb *h;
	uint8_t *buf = lun_buf_alloc(4096);
	int64_t end;

	fresh();
	d = open_lun();
	h = join_gated(0x51, 2000, &a, d);
	hb_timeouts_get(h, &t);
	memset(buf, 0x5a, 4096);
	end = vmfs_mono_ms() + 3 * (int64_t)t.fence_ms;
	while (vmfs_mono_ms() < end) {
		CU_ASSERT_EQUAL(lun_write(d, buf, 4096, DATA_OFF), 0);
		usleep(100000);
	}
	CU_ASSERT_EQUAL(atomic_load(&fenced), 0);
	CU_ASSERT(!lun_is_fenced(d));
	CU_ASSERT_EQUAL(hb_leave(h), 0);
	CU_ASSERT_EQUAL(lun_write(d, buf, 4096, DATA_OFF), 0);
	lun_buf_free(buf);
	lun_close(a);
	lun_close(d);
}

/* Stall the renewal in flight (it was issued in time) for stall_ms. */
static void stall_renewals(struct lun *hb_lun, unsigned stall_ms)
{
	lun_fault_set_latency(hb_lun, 0, stall_ms * 1000);
}

/*
 * A host whose renewal thread is stuck (as in a SIGSTOP; here a renewal
 * that hangs) past fence_ms: a write through the data handle finds the
 * lease run out, fails with -EIO, reaches nothing, and fences both
 * handles; the owner is told why.  Without the gate the write lands.
 */
static void test_gate_stalled_host_writes_nothing(void)
{
	struct lun *a, *d, *s;
	struct hb_timeouts t;
	struct hb *h;
	uint8_t *buf = lun_buf_alloc(4096);

	fresh();
	d = open_lun();
	s = open_lun();
	h = join_gated(0x52, LEASE_MS, &a, d);
	hb_timeouts_get(h, &t);
	memset(buf, 0x11, 4096);
	CU_ASSERT_EQUAL(lun_write(d, buf, 4096, DATA_OFF), 0);
	stall_renewals(a, 4 * t.fence_ms);
	/* Past any deadline a renewal issued before the stall could set. */
	usleep((t.renew_ms + t.io_timeout_ms + t.fence_ms + 100) * 1000);
	memset(buf, 0x22, 4096);
	CU_ASSERT_EQUAL(lun_write(d, buf, 4096, DATA_OFF), -EIO);
	CU_ASSERT_EQUAL(atomic_load(&fenced), 1);
	CU_ASSERT(strstr(fence_why, "lease ran out") != NULL);
	CU_ASSERT(lun_is_fenced(d));
	CU_ASSERT(lun_is_fenced(a));
	CU_ASSERT_EQUAL(lun_read(s, buf, 4096, DATA_OFF), 0);
	CU_ASSERT_EQUAL(buf[0], 0x11);
	CU_ASSERT_EQUAL(buf[4095], 0x11);
	stall_renewals(a, 0);
	CU_ASSERT_EQUAL(hb_leave(h), 0);
	lun_buf_free(buf);
	lun_close(a);
	lun_close(d);
	lun_close(s);
}

/*
 * The same stall with no write in between: when the renewal thread runs
 * again after the deadline it fences without renewing, and leaving
 * writes nothing (the slot stays ACTIVE for a survivor or the next
 * mount).  Before the gate, the stalled renewal succeeded, renewing went
 * on and leaving freed the slot.
 */
static void test_gate_lapsed_renewal_fences(void)
{
	struct lun *a, *d, *s;
	struct hb_slot_info si[NSLOTS];
	struct hb_timeouts t;
	struct hb *h;
	uint32_t n;

	fresh();
	d = open_lun();
	s = open_lun();
	h = join_gated(0x53, LEASE_MS, &a, d);
	hb_timeouts_get(h, &t);
	/* Long enough for one renewal to start stalled, then no more. */
	stall_renewals(a, 2 * t.fence_ms);
	usleep((t.renew_ms + 50) * 1000);
	stall_renewals(a, 0);
	for (int i = 0; i < 100 && !atomic_load(&fenced); i++)
		usleep(20000);
	CU_ASSERT_EQUAL(atomic_load(&fenced), 1);
	CU_ASSERT(strstr(fence_why, "lease ran out") != NULL);
	CU_ASSERT(lun_is_fenced(d));
	CU_ASSERT_EQUAL(hb_leave(h), 0);
	CU_ASSERT_EQUAL(hb_survey(s, HB_OFF, false, si, NSLOTS, &n), 0);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT(n == 1 && si[0].state == VMFS_HB_ACTIVE);
	lun_close(a);
	lun_close(d);
	lun_close(s);
}

/*
 * A renewal that takes longer than renew_ms (every write of the heartbeat
 * handle stalls, here for less than the fence time): the watchdog warns
 * once with where the renewal thread waits (asleep, in the stalled
 * write's sleep) and how much CPU it had, and the renewal thread says
 * when the slow renewal ended.  The host does not fence.
 */
static void test_slow_renewal_reported(void)
{
	struct lun *a, *d;
	struct hb_timeouts t;
	struct hb *h;
	const char *text;

	fresh();
	d = open_lun();
	h = join_gated(0x54, 2000, &a, d);
	hb_timeouts_get(h, &t);
	unit_log_collect_begin();
	stall_renewals(a, t.renew_ms + t.renew_ms / 2);
	CU_ASSERT(unit_log_wait_for("a renewal has run for", 4 * t.renew_ms));
	CU_ASSERT(unit_log_wait_for("the slow renewal ended after",
				    4 * t.renew_ms));
	stall_renewals(a, 0);
	text = unit_log_collect_end();
	CU_ASSERT(strstr(text, "the renewal thread is sleeping") != NULL);
	CU_ASSERT(strstr(text, "waited") != NULL &&
		  strstr(text, "ms for a CPU") != NULL);
	CU_ASSERT(strstr(text, "renewal thread stack: ") != NULL);
	CU_ASSERT(strstr(text, "nanosleep") != NULL);
	CU_ASSERT(strstr(text, "renewed") != NULL);
	if (!strstr(text, "nanosleep") || !strstr(text, "renewed"))
		fprintf(stderr, "\n  warnings logged: %s\n", text);
	CU_ASSERT_EQUAL(atomic_load(&fenced), 0);
	CU_ASSERT_EQUAL(hb_leave(h), 0);
	lun_close(a);
	lun_close(d);
}


/* The slot of host uuid byte id in a survey (NULL: not there). */
static const struct hb_slot_info *slot_with(const struct hb_slot_info *si,
					    uint32_t n, int id)
{
	for (uint32_t i = 0; i < n; i++)
		if (si[i].host_uuid[0] == (uint8_t)id)
			return &si[i];
	return NULL;
}

/* Read the slots through w every 10 ms, for up to 500 ms, until host
 * id's slot shows a want (busy: an answer) for addr; NULL if it never
 * did. */
static const struct hb_slot_info *slot_shows(struct lun *w,
					     struct hb_slot_info *si, int id,
					     uint64_t addr, bool busy)
{
	for (int k = 0; k < 50; k++) {
		const struct hb_slot_info *me;
		uint32_t n;

		usleep(10000);
		CU_ASSERT_EQUAL(hb_survey(w, HB_OFF, false, si, NSLOTS, &n), 0);
		me = slot_with(si, n, id);
		if (me && (busy ? me->busy_addr : me->want_addr) == addr)
			return me;
	}
	return NULL;
}

/*
 * A want (hb_want) and an answer (hb_busy) reach the slot at once, not
 * at the next renewal (a 10 s lease renews every 2 s), with the ASKS
 * flag the join advertised; wants that come fast are written at most
 * once per 50 ms; leaving clears them all.
 */
static void test_want_written_now(void)
{
	struct lun *a, *w;
	struct hb *h;
	struct hb_opts o;
	uint8_t ua[16];
	struct hb_slot_info si[NSLOTS];
	const struct hb_slot_info *me;
	uint64_t c0;
	uint32_t n, seq;
	int k;

	fresh();
	a = open_lun();
	w = open_lun();
	opts(&o, ua, 0xa1);
	o.lease_ms = 10000;
	o.asks = true;
	CU_ASSERT_FATAL(hb_join(a, HB_OFF, &o, &h) == 0);
	CU_ASSERT_EQUAL(hb_survey(w, HB_OFF, false, si, NSLOTS, &n), 0);
	me = slot_with(si, n, 0xa1);
	CU_ASSERT_FATAL(me != NULL);
	CU_ASSERT_EQUAL(me->flags, VMFS_HB_F_ASKS);
	CU_ASSERT_EQUAL(me->want_addr, 0);
	c0 = me->counter;

	/* Within 500 ms, a quarter renewal. */
	seq = hb_want(h, 0x123000, true);
	me = slot_shows(w, si, 0xa1, 0x123000, false);
	CU_ASSERT_FATAL(me != NULL);
	CU_ASSERT_EQUAL(me->want_seq, seq);
	CU_ASSERT_EQUAL(me->flags, VMFS_HB_F_ASKS | VMFS_HB_F_WANT_EXCL);

	hb_busy(h, 5, 77, 0x456000);
	me = slot_shows(w, si, 0xa1, 0x456000, true);
	CU_ASSERT_FATAL(me != NULL);
	CU_ASSERT(me->busy_slot == 5 && me->busy_seq == 77);

	/* 40 wants in 200 ms: at most one write per 50 ms (a few more
	 * for the timing of the reads). */
	CU_ASSERT_EQUAL(hb_survey(w, HB_OFF, false, si, NSLOTS, &n), 0);
	c0 = slot_with(si, n, 0xa1)->counter;
	for (k = 0; k < 40; k++) {
		hb_want(h, 0x200000 + (uint64_t)k * 4096, false);
		usleep(5000);
	}
	CU_ASSERT_EQUAL(hb_survey(w, HB_OFF, false, si, NSLOTS, &n), 0);
	me = slot_with(si, n, 0xa1);
	CU_ASSERT_FATAL(me != NULL);
	CU_ASSERT(me->counter - c0 <= 6);
	CU_ASSERT(me->counter - c0 >= 2);

	CU_ASSERT_EQUAL(hb_leave(h), 0);
	{
		uint8_t *buf = lun_buf_alloc(4096);
		struct fmt_hb_slot f;

		CU_ASSERT_FATAL(lun_read(w, buf, 512, HB_OFF + 4096) == 0);
		CU_ASSERT_EQUAL(fmt_hb_slot_decode((struct vmfs_hb_slot *)buf,
						   &f), 0);
		CU_ASSERT(f.state == VMFS_HB_FREE && !f.flags &&
			  !f.want_addr && !f.busy_addr);
		lun_buf_free(buf);
	}
	lun_close(a);
	lun_close(w);
}

static CU_TestInfo tests[] = {
	{ "timeouts", test_timeouts },
	{ "join_survey_leave", test_join_survey_leave },
	{ "slots_full", test_slots_full },
	{ "takeover_fences", test_takeover_fences },
	{ "late_renewal_not_takeover", test_late_renewal_not_takeover },
	{ "no_ats", test_no_ats },
	{ "no_ats_renewal_takes_no_reservation", test_no_ats_renewal_takes_no_reservation },
	{ "no_primitive", test_no_primitive },
	{ "forced_primitive", test_forced_primitive },
	{ "prim_parse", test_prim_parse },
	{ "no_ats_mount", test_no_ats_mount },
	{ "gate_follows_renewals", test_gate_follows_renewals },
	{ "gate_stalled_host_writes_nothing", test_gate_stalled_host_writes_nothing },
	{ "gate_lapsed_renewal_fences", test_gate_lapsed_renewal_fences },
	{ "slow_renewal_reported", test_slow_renewal_reported },
	{ "want_written_now", test_want_written_now },
	CU_TEST_INFO_NULL
};

UNIT_SUITE("hb", NULL, NULL, tests);
