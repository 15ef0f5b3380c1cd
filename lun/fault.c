/*
 * The fault-injecting lun (e2fsprogs test_io, littlefs's emulated block
 * device): wraps any lun, forwards every call, and on the way can
 *  - fail the nth write, or every write reaching past an offset, with a
 *    chosen error; nothing of a failed write reaches the inner lun;
 *  - tear the nth write: its first keep_bytes (rounded down to a sector,
 *    the unit a disk writes atomically) reach the lun, then -EIO;
 *  - delay reads and writes;
 *  - tear reads: the next reads (lun_read) covering a given byte come
 *    back garbled from it to the end of its sector, as a read racing
 *    another host's write of the block can;
 *  - claim 4096-byte sectors over a 512-byte lun (a 4Kn LUN for tests);
 *  - call a function once, just before the first write that covers a
 *    given byte goes to the lun: another host's write landing in the
 *    middle of a read-modify-write, at a chosen point, every time;
 *  - record every write that reached the lun (with a copy of its data),
 *    every zero_range and every flush, in completion order, so a test can
 *    replay any prefix of the history to simulate power loss at every
 *    write.
 *
 * What counts as a write: lun_write, each write of a lun_submit batch, and
 * lun_compare_and_write.  COMPARE AND WRITE is atomic on a real target, so
 * a tear cannot split it: a tear that keeps less than the whole range
 * writes nothing; one that keeps it all performs the CAW and still
 * reports -EIO (a lost completion, the other half of the same failure).
 * zero_range is not counted as a write for the nth-write knobs, but a
 * fail_writes_from limit (a bad region of the disk) applies to it.
 *
 * Knob and counter updates, fault decisions and recording happen under one
 * mutex; the forwarded I/O and the latency sleeps happen outside it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmfs/clock.h"
#include "lun_int.h"

enum fault_action { FAULT_PASS, FAULT_FAIL, FAULT_TEAR };

struct fault_plan {
	enum fault_action action;
	int err;		/* FAULT_FAIL */
	size_t keep;		/* FAULT_TEAR: bytes that reach the lun */
};

/* lun_fault_records() hands out snapshots that live until clear/close. */
struct fault_snap {
	struct fault_snap *next;
	struct lun_rec_entry ents[];
};

struct fault_lun {
	struct lun lun;
	struct lun *inner;
	pthread_mutex_t mu;
	uint64_t writes;
	struct lun_fault_counts n;	/* lun_fault_counts() */
	uint64_t fail_nth_left;		/* countdown; 0 = off */
	int fail_nth_err;
	uint64_t fail_from;
	int fail_from_err;		/* 0 = off */
	unsigned read_us, write_us;
	uint64_t tear_nth_left;		/* countdown; 0 = off */
	size_t tear_keep;
	uint64_t rtear_off;		/* lun_fault_tear_reads_at */
	unsigned rtear_left;
	bool recording;
	void (*hook_fn)(void *arg);	/* lun_fault_before_write_at */
	void *hook_arg;
	uint64_t hook_off;
	struct lun_rec_entry *recs;
	size_t nrecs, cap;
	struct fault_snap *snaps;
};

static const struct lun_ops fault_ops;

static struct fault_lun *fault_of(struct lun *lun)
{
	if (!lun || lun->ops != &fault_ops)
		return NULL;
	return lun_container_of(lun, struct fault_lun, lun);
}

/* Latency is a delay before the I/O, like a slow path to the target. */
static void fault_sleep_us(unsigned us)
{
	struct timespec ts = { .tv_sec = us / 1000000,
			       .tv_nsec = (long)(us % 1000000) * 1000 };

	while (us && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void fault_count(struct fault_lun *fl, uint64_t *counter)
{
	pthread_mutex_lock(&fl->mu);
	(*counter)++;
	pthread_mutex_unlock(&fl->mu);
}

/* Decide the fate of one write; counts it.  Called with mu held. */
static struct fault_plan fault_decide_locked(struct fault_lun *fl,
					     uint64_t off, size_t len)
{
	struct fault_plan plan = { .action = FAULT_PASS };
	bool fail_now = false;
	bool tear_now = false;

	fl->writes++;
	/* Both countdowns advance on every write, whatever else happens. */
	if (fl->fail_nth_left && --fl->fail_nth_left == 0)
		fail_now = true;
	if (fl->tear_nth_left && --fl->tear_nth_left == 0)
		tear_now = true;
	if (fail_now) {
		plan.action = FAULT_FAIL;
		plan.err = fl->fail_nth_err;
	} else if (fl->fail_from_err && off + len > fl->fail_from) {
		plan.action = FAULT_FAIL;
		plan.err = fl->fail_from_err;
	} else if (tear_now) {
		size_t keep = fl->tear_keep < len ? fl->tear_keep : len;

		plan.action = FAULT_TEAR;
		plan.keep = keep & ~(size_t)(fl->lun.sector_size - 1);
	}
	return plan;
}

/*
 * Disarm and hand out the before-write hook if [off, off + len) covers its
 * byte; the caller runs it after dropping mu.  Called with mu held.
 */
static void fault_hook_take_locked(struct fault_lun *fl, uint64_t off,
				   size_t len, void (**fn)(void *), void **arg)
{
	if (!fl->hook_fn || fl->hook_off < off || fl->hook_off - off >= len)
		return;
	*fn = fl->hook_fn;
	*arg = fl->hook_arg;
	fl->hook_fn = NULL;
}

/*
 * Append one record.  Called with mu held.  If memory runs out the record
 * is dropped: the write itself did happen and must not be reported failed.
 */
static void fault_record_locked(struct fault_lun *fl, int kind, uint64_t off,
				uint64_t len, const void *data)
{
	struct lun_rec_entry *e;

	if (!fl->recording)
		return;
	if (fl->nrecs == fl->cap) {
		size_t cap = fl->cap ? fl->cap * 2 : 64;
		void *p = realloc(fl->recs, cap * sizeof(*fl->recs));

		if (!p)
			return;
		fl->recs = p;
		fl->cap = cap;
	}
	e = &fl->recs[fl->nrecs];
	e->kind = kind;
	e->off = off;
	e->len = len;
	e->t_ns = vmfs_mono_ns();
	e->data = NULL;
	if (data) {
		e->data = malloc(len ? len : 1);
		if (!e->data)
			return;
		memcpy(e->data, data, len);
	}
	fl->nrecs++;
}

static void fault_record(struct fault_lun *fl, int kind, uint64_t off,
			 uint64_t len, const void *data)
{
	pthread_mutex_lock(&fl->mu);
	fault_record_locked(fl, kind, off, len, data);
	pthread_mutex_unlock(&fl->mu);
}

/* ---- forwarded operations ----------------------------------------------- */

static int fault_read(struct lun *lun, void *buf, size_t len, uint64_t off)
{
	struct fault_lun *fl = fault_of(lun);
	unsigned us;

	uint64_t tear_at = 0;
	bool tear = false;
	int rc;

	pthread_mutex_lock(&fl->mu);
	us = fl->read_us;
	fl->n.reads++;
	if (fl->rtear_left && fl->rtear_off >= off &&
	    fl->rtear_off < off + len) {
		fl->rtear_left--;
		tear = true;
		tear_at = fl->rtear_off;
	}
	pthread_mutex_unlock(&fl->mu);
	fault_sleep_us(us);
	rc = lun_read(fl->inner, buf, len, off);
	if (!rc && tear) {
		/* From tear_at to the end of its sector, as another version
		 * had it (a page-cache copy tears anywhere). */
		uint32_t ss = lun_sector_size(fl->inner);
		uint64_t end = (tear_at / ss + 1) * ss;

		for (uint64_t b = tear_at; b < end && b < off + len; b++)
			((uint8_t *)buf)[b - off] ^= 0x5a;
	}
	return rc;
}

/*
 * Reads and passing writes go to the inner lun as one batch; failed and
 * torn writes are handled one by one.  Within a batch the order of I/Os
 * is undefined, as on a disk; records follow the array order.
 */
static int fault_submit(struct lun *lun, struct lun_io *ios, unsigned n)
{
	struct fault_lun *fl = fault_of(lun);
	struct fault_plan *plan;
	struct lun_io *fwd;
	unsigned sleep_us = 0;
	unsigned i, m = 0;
	void (*hook)(void *) = NULL;
	void *hook_arg = NULL;
	int rc;

	plan = calloc(n, sizeof(*plan));
	fwd = calloc(n, sizeof(*fwd));
	if (!plan || !fwd) {
		free(plan);
		free(fwd);
		for (i = 0; i < n; i++)
			ios[i].result = -ENOMEM;
		return -ENOMEM;
	}

	pthread_mutex_lock(&fl->mu);
	for (i = 0; i < n; i++) {
		if (ios[i].op == LUN_OP_WRITE) {
			fl->n.writes++;
			plan[i] = fault_decide_locked(fl, ios[i].off,
						      ios[i].len);
			fault_hook_take_locked(fl, ios[i].off, ios[i].len,
					       &hook, &hook_arg);
			if (fl->write_us > sleep_us)
				sleep_us = fl->write_us;
		} else {
			fl->n.reads++;
			if (fl->read_us > sleep_us)
				sleep_us = fl->read_us;
		}
	}
	pthread_mutex_unlock(&fl->mu);
	/* The I/Os of a batch run in parallel: one delay, the longest. */
	fault_sleep_us(sleep_us);
	if (hook)
		hook(hook_arg);

	/* fwd holds copies of the passing I/Os; results go back by order. */
	for (i = 0; i < n; i++)
		if (plan[i].action == FAULT_PASS)
			fwd[m++] = ios[i];
	if (m)
		lun_submit(fl->inner, fwd, m);

	m = 0;
	for (i = 0; i < n; i++) {
		struct lun_io *io = &ios[i];

		switch (plan[i].action) {
		case FAULT_PASS:
			io->result = fwd[m++].result;
			break;
		case FAULT_FAIL:
			io->result = plan[i].err;
			break;
		case FAULT_TEAR:
			rc = 0;
			if (plan[i].keep)
				rc = lun_write(fl->inner, io->buf, plan[i].keep,
					       io->off);
			if (rc)
				plan[i].keep = 0;	/* nothing to record */
			io->result = rc ? rc : -EIO;
			break;
		}
	}

	pthread_mutex_lock(&fl->mu);
	for (i = 0; i < n; i++) {
		const struct lun_io *io = &ios[i];

		if (io->op != LUN_OP_WRITE)
			continue;
		if (plan[i].action == FAULT_PASS && io->result == 0)
			fault_record_locked(fl, LUN_REC_WRITE, io->off,
					    io->len, io->buf);
		else if (plan[i].action == FAULT_TEAR && plan[i].keep)
			fault_record_locked(fl, LUN_REC_WRITE, io->off,
					    plan[i].keep, io->buf);
	}
	pthread_mutex_unlock(&fl->mu);

	free(plan);
	free(fwd);
	for (i = 0; i < n; i++)
		if (ios[i].result)
			return ios[i].result;
	return 0;
}

static int fault_write(struct lun *lun, const void *buf, size_t len,
		       uint64_t off)
{
	struct lun_io io = { .op = LUN_OP_WRITE, .buf = (void *)buf,
			     .len = len, .off = off };

	return fault_submit(lun, &io, 1);
}

static int fault_flush(struct lun *lun)
{
	struct fault_lun *fl = fault_of(lun);
	int rc;

	fault_count(fl, &fl->n.flushes);
	rc = lun_flush(fl->inner);

	/* A replay must not assume durability that was never reached. */
	if (!rc)
		fault_record(fl, LUN_REC_FLUSH, 0, 0, NULL);
	return rc;
}

static int fault_zero_range(struct lun *lun, uint64_t off, uint64_t len)
{
	struct fault_lun *fl = fault_of(lun);
	int err = 0;
	int rc;

	pthread_mutex_lock(&fl->mu);
	if (fl->fail_from_err && off + len > fl->fail_from)
		err = fl->fail_from_err;
	pthread_mutex_unlock(&fl->mu);
	if (err)
		return err;
	rc = lun_zero_range(fl->inner, off, len);
	if (!rc)
		fault_record(fl, LUN_REC_ZERO, off, len, NULL);
	return rc;
}

static int fault_reserve(struct lun *lun, unsigned wait_ms)
{
	struct fault_lun *fl = fault_of(lun);

	fault_count(fl, &fl->n.reserves);
	return lun_reserve(fl->inner, wait_ms);
}

static int fault_release(struct lun *lun)
{
	struct fault_lun *fl = fault_of(lun);

	fault_count(fl, &fl->n.releases);
	return lun_release(fl->inner);
}

static int fault_compare_and_write(struct lun *lun, const void *expect,
				   const void *data, size_t len, uint64_t off,
				   void *current)
{
	struct fault_lun *fl = fault_of(lun);
	struct fault_plan plan;
	void (*hook)(void *) = NULL;
	void *hook_arg = NULL;
	unsigned us;
	int rc;

	pthread_mutex_lock(&fl->mu);
	fl->n.caws++;
	plan = fault_decide_locked(fl, off, len);
	fault_hook_take_locked(fl, off, len, &hook, &hook_arg);
	us = fl->read_us + fl->write_us;	/* a read, then a write */
	pthread_mutex_unlock(&fl->mu);
	fault_sleep_us(us);
	if (hook)
		hook(hook_arg);

	if (plan.action == FAULT_FAIL)
		return plan.err;
	if (plan.action == FAULT_TEAR && plan.keep < len)
		return -EIO;	/* atomic: a partial CAW writes nothing */
	rc = lun_compare_and_write(fl->inner, expect, data, len, off, current);
	if (!rc)
		fault_record(fl, LUN_REC_WRITE, off, len, data);
	if (!rc && plan.action == FAULT_TEAR)
		rc = -EIO;	/* written, but the completion was lost */
	return rc;
}

static void fault_set_io_timeout(struct lun *lun, unsigned timeout_ms)
{
	lun_set_io_timeout(fault_of(lun)->inner, timeout_ms);
}

static void fault_set_lock_io_timeout(struct lun *lun, unsigned timeout_ms)
{
	lun_set_lock_io_timeout(fault_of(lun)->inner, timeout_ms);
}

/* Frees records and snapshots.  Called with mu held, or at close. */
static void fault_record_clear_locked(struct fault_lun *fl)
{
	size_t i;

	for (i = 0; i < fl->nrecs; i++)
		free(fl->recs[i].data);
	free(fl->recs);
	fl->recs = NULL;
	fl->nrecs = fl->cap = 0;
	while (fl->snaps) {
		struct fault_snap *s = fl->snaps;

		fl->snaps = s->next;
		free(s);
	}
}

static void fault_close(struct lun *lun)
{
	struct fault_lun *fl = fault_of(lun);

	lun_close(fl->inner);
	fault_record_clear_locked(fl);
	pthread_mutex_destroy(&fl->mu);
	lun_fini_common(lun);
	free(fl);
}

/* The inner LUN's size, once it has taken it. */
static int fault_capacity(struct lun *lun, uint64_t *bytes)
{
	struct fault_lun *fl = fault_of(lun);
	return lun_size_refresh(fl->inner, bytes);
}

static const struct lun_ops fault_ops = {
	.kind = "fault",
	.read = fault_read,
	.write = fault_write,
	.submit = fault_submit,
	.flush = fault_flush,
	.zero_range = fault_zero_range,
	.reserve = fault_reserve,
	.release = fault_release,
	.compare_and_write = fault_compare_and_write,
	.set_io_timeout = fault_set_io_timeout,
	.set_lock_io_timeout = fault_set_lock_io_timeout,
	.capacity = fault_capacity,
	.close = fault_close,
};

/* ---- public knobs ------------------------------------------------------- */

/* On failure inner is untouched and still the caller's to close. */
int lun_fault_wrap(struct lun *inner, struct lun **out)
{
	struct fault_lun *fl;
	char *name;
	int rc;

	if (!inner || !out)
		return -EINVAL;
	*out = NULL;
	if (asprintf(&name, "fault:%s", inner->name) < 0)
		return -ENOMEM;
	fl = calloc(1, sizeof(*fl));
	if (!fl) {
		rc = -ENOMEM;
		goto err_name;
	}
	rc = lun_init_common(&fl->lun, &fault_ops, name, inner->flags);
	if (rc)
		goto err_free;
	rc = -pthread_mutex_init(&fl->mu, NULL);
	if (rc)
		goto err_common;
	/* Same geometry and timeout: the wrapper is invisible to callers. */
	fl->inner = inner;
	fl->lun.size_bytes = inner->size_bytes;
	fl->lun.sector_size = inner->sector_size;
	atomic_store(&fl->lun.io_timeout_ms, atomic_load(&inner->io_timeout_ms));
	atomic_store(&fl->lun.caps, atomic_load(&inner->caps));
	free(name);
	*out = &fl->lun;
	return 0;

err_common:
	lun_fini_common(&fl->lun);
err_free:
	free(fl);
err_name:
	free(name);
	return rc;
}

/* The knobs ignore a lun that is not a fault wrapper. */
void lun_fault_fail_nth_write(struct lun *lun, uint64_t nth, int err)
{
	struct fault_lun *fl = fault_of(lun);

	if (!fl)
		return;
	pthread_mutex_lock(&fl->mu);
	fl->fail_nth_left = err ? nth : 0;
	fl->fail_nth_err = err;
	pthread_mutex_unlock(&fl->mu);
}

void lun_fault_fail_writes_from(struct lun *lun, uint64_t limit, int err)
{
	struct fault_lun *fl = fault_of(lun);

	if (!fl)
		return;
	pthread_mutex_lock(&fl->mu);
	fl->fail_from = limit;
	fl->fail_from_err = err;
	pthread_mutex_unlock(&fl->mu);
}

/* Only ever narrows: the wrapper cannot add a primitive the inner lacks. */
void lun_fault_set_caps(struct lun *lun, unsigned caps)
{
	struct fault_lun *fl = fault_of(lun);

	if (fl)
		atomic_store(&fl->lun.caps, caps & lun_caps(fl->inner));
}

/*
 * Only 512 -> 4096, and before any I/O: the inner lun takes any I/O
 * aligned to the larger sector, and the checks of lun.c (alignment of
 * buffers, offsets and lengths) then hold callers to it, as a 4Kn disk
 * would.
 */
int lun_fault_set_sector_size(struct lun *lun, uint32_t sector_size)
{
	struct fault_lun *fl = fault_of(lun);

	if (!fl || sector_size % fl->inner->sector_size ||
	    (sector_size != 512 && sector_size != 4096))
		return -EINVAL;
	fl->lun.sector_size = sector_size;
	fl->lun.size_bytes = fl->inner->size_bytes & ~(uint64_t)(sector_size - 1);
	return 0;
}

void lun_fault_set_latency(struct lun *lun, unsigned read_us, unsigned write_us)
{
	struct fault_lun *fl = fault_of(lun);

	if (!fl)
		return;
	pthread_mutex_lock(&fl->mu);
	fl->read_us = read_us;
	fl->write_us = write_us;
	pthread_mutex_unlock(&fl->mu);
}

void lun_fault_tear_nth_write(struct lun *lun, uint64_t nth, size_t keep_bytes)
{
	struct fault_lun *fl = fault_of(lun);

	if (!fl)
		return;
	pthread_mutex_lock(&fl->mu);
	fl->tear_nth_left = nth;
	fl->tear_keep = keep_bytes;
	pthread_mutex_unlock(&fl->mu);
}

void lun_fault_tear_reads_at(struct lun *lun, uint64_t off, unsigned count)
{
	struct fault_lun *fl = fault_of(lun);

	if (!fl)
		return;
	pthread_mutex_lock(&fl->mu);
	fl->rtear_off = off;
	fl->rtear_left = count;
	pthread_mutex_unlock(&fl->mu);
}

void lun_fault_before_write_at(struct lun *lun, uint64_t off,
			       void (*fn)(void *arg), void *arg)
{
	struct fault_lun *fl = fault_of(lun);

	if (!fl)
		return;
	pthread_mutex_lock(&fl->mu);
	fl->hook_fn = fn;
	fl->hook_arg = arg;
	fl->hook_off = off;
	pthread_mutex_unlock(&fl->mu);
}

void lun_fault_record(struct lun *lun, bool on)
{
	struct fault_lun *fl = fault_of(lun);

	if (!fl)
		return;
	pthread_mutex_lock(&fl->mu);
	fl->recording = on;
	pthread_mutex_unlock(&fl->mu);
}

/*
 * A snapshot rather than the live array: recording may go on (and grow
 * the array) while the caller looks at the entries.  The data buffers are
 * shared with the live records; all of it goes at clear or close.
 */
const struct lun_rec_entry *lun_fault_records(struct lun *lun, size_t *count)
{
	struct fault_lun *fl = fault_of(lun);
	struct fault_snap *s;

	if (count)
		*count = 0;
	if (!fl)
		return NULL;
	pthread_mutex_lock(&fl->mu);
	s = malloc(sizeof(*s) + fl->nrecs * sizeof(s->ents[0]));
	if (s) {
		if (fl->nrecs)
			memcpy(s->ents, fl->recs,
			       fl->nrecs * sizeof(s->ents[0]));
		s->next = fl->snaps;
		fl->snaps = s;
		if (count)
			*count = fl->nrecs;
	}
	pthread_mutex_unlock(&fl->mu);
	return s ? s->ents : NULL;
}

void lun_fault_record_clear(struct lun *lun)
{
	struct fault_lun *fl = fault_of(lun);

	if (!fl)
		return;
	pthread_mutex_lock(&fl->mu);
	fault_record_clear_locked(fl);
	pthread_mutex_unlock(&fl->mu);
}

uint64_t lun_fault_writes(struct lun *lun)
{
	struct fault_lun *fl = fault_of(lun);
	uint64_t n;

	if (!fl)
		return 0;
	pthread_mutex_lock(&fl->mu);
	n = fl->writes;
	pthread_mutex_unlock(&fl->mu);
	return n;
}

void lun_fault_counts(struct lun *lun, struct lun_fault_counts *out)
{
	struct fault_lun *fl = fault_of(lun);

	memset(out, 0, sizeof(*out));
	if (!fl)
		return;
	pthread_mutex_lock(&fl->mu);
	*out = fl->n;
	pthread_mutex_unlock(&fl->mu);
}
