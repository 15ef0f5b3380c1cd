/*
 * The lun write gate (lun_gate_arm): past its deadline every kind of
 * write (write, a batch with a write, flush, zero-range, compare-and-
 * write) is refused with -EIO, fences the handle and reaches nothing on
 * the file; reads are not gated until then; a write inside the exempt
 * range passes; extending the deadline before it passes keeps writes
 * working; disarming lifts the gate.  The heartbeat side (renewals move
 * the deadline, a stalled renewal fences) is in test_hb.c.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "vmfs/clock.h"
#include "vmfs/lun.h"
#include "lun_scratch.h"

#define GATE_LUN_BYTES (1 * MiB)
#define BLK 4096u
#define OFF (64u * 1024u)    /* where the gated writes aim */

static atomic_int expired_calls;
static atomic_llong expired_overdue;

static void on_expired(void *ctx, int64_t overdue_ms)
{
	atomic_fetch_add(&expired_calls, 1);
	atomic_store(&expired_overdue, (long long)overdue_ms);
	(void)ctx;
}

/* Arm lun's gate at until_ms (exempt: [exempt_off, +exempt_len)). */
static void arm(struct lun *lun, int64_t until_ms, uint64_t exempt_off,
		uint64_t exempt_len)
{
	struct lun_gate g = { .valid_until_ms = until_ms,
			      .exempt_off = exempt_off,
			      .exempt_len = exempt_len,
			      .expired = on_expired };

	atomic_store(&expired_calls, 0);
	atomic_store(&expired_overdue, -1);
	lun_gate_arm(lun, &g);
}

/* A scratch LUN whose block at OFF holds pattern 1. */
static const char *scratch(void)
{
	const char *path = mkfile("gate.img", GATE_LUN_BYTES);
	struct lun *lun = open_lun(path);
	void *buf = lun_buf_alloc(BLK);

	fill(buf, BLK, 1);
	CU_ASSERT_FATAL(lun_write(lun, buf, BLK, OFF) == 0);
	lun_buf_free(buf);
	lun_close(lun);
	return path;
}

enum gated_op { OP_WRITE, OP_SUBMIT, OP_FLUSH, OP_ZERO, OP_CAW, OP_COUNT };
static const char *const op_name[OP_COUNT] = {
	"write", "submit", "flush", "zero_range", "compare_and_write"
};

static int do_op(struct lun *lun, enum gated_op op, void *buf, void *old)
{
	struct lun_io ios[2] = {
		{ .op = LUN_OP_READ, .buf = old, .len = BLK, .off = 0 },
		{ .op = LUN_OP_WRITE, .buf = buf, .len = BLK, .off = OFF },
	};

	switch (op) {
	case OP_WRITE:
		return lun_write(lun, buf, BLK, OFF);
	case OP_SUBMIT:
		return lun_submit(lun, ios, 2);
	case OP_FLUSH:
		return lun_flush(lun);
	case OP_ZERO:
		return lun_zero_range(lun, OFF, BLK);
	case OP_CAW:
		fill(old, BLK, 1);
		return lun_compare_and_write(lun, old, buf, BLK, OFF, NULL);
	default:
		return -EINVAL;
	}
}

/*
 * Every gated call past the deadline: -EIO, the handle fenced (reads
 * fail too from then on), the owner told once, the file untouched.  The
 * same call with the deadline ahead succeeds, so the refusal is the
 * gate's doing.  A read before the first gated call still works.
 */
static void test_past_deadline_refused(void)
{
	const char *path = scratch();
	void *buf = lun_buf_alloc(BLK), *old = lun_buf_alloc(BLK);
	void *file = malloc(BLK);
	int op, rc;

	for (op = 0; op < OP_COUNT; op++) {
		struct lun *lun = open_lun(path);

		arm(lun, vmfs_mono_ms() - 1, 0, 0);
		CU_ASSERT_EQUAL(lun_read(lun, old, BLK, OFF), 0);
		CU_ASSERT(is_filled(old, BLK, 1));
		CU_ASSERT(!lun_is_fenced(lun));
		fill(buf, BLK, 2);
		rc = do_op(lun, op, buf, old);
		if (rc != -EIO)
			fprintf(stderr, "\n  lun_gate: %s past the deadline "
				"returned %d, not -EIO\n", op_name[op], rc);
		CU_ASSERT_EQUAL(rc, -EIO);
		CU_ASSERT(lun_is_fenced(lun));
		CU_ASSERT_EQUAL(atomic_load(&expired_calls), 1);
		CU_ASSERT(atomic_load(&expired_overdue) >= 1);
		/* Fenced for good: reads too, and no second callback. */
		CU_ASSERT_EQUAL(lun_read(lun, old, BLK, OFF), -EIO);
		CU_ASSERT_EQUAL(lun_write(lun, buf, BLK, OFF), -EIO);
		CU_ASSERT_EQUAL(atomic_load(&expired_calls), 1);
		pread_file(path, file, BLK, OFF);
		CU_ASSERT(is_filled(file, BLK, 1));
		lun_close(lun);

		/* Ahead of the deadline the same call goes through. */
		lun = open_lun(path);
		arm(lun, vmfs_mono_ms() + 60000, 0, 0);
		CU_ASSERT_EQUAL(do_op(lun, op, buf, old), 0);
		CU_ASSERT(!lun_is_fenced(lun));
		CU_ASSERT_EQUAL(atomic_load(&expired_calls), 0);
		fill(buf, BLK, 1);
		CU_ASSERT_EQUAL(lun_write(lun, buf, BLK, OFF), 0);
		lun_close(lun);
	}
	free(file);
	lun_buf_free(buf);
	lun_buf_free(old);
}

/* Reads, and a batch of reads only, are not gated. */
static void test_reads_ungated(void)
{
	const char *path = scratch();
	struct lun *lun = open_lun(path);
	void *buf = lun_buf_alloc(2 * BLK);
	struct lun_io ios[2] = {
		{ .op = LUN_OP_READ, .buf = buf, .len = BLK, .off = OFF },
		{ .op = LUN_OP_READ, .buf = (char *)buf + BLK, .len = BLK,
		  .off = 0 },
	};

	arm(lun, vmfs_mono_ms() - 1000, 0, 0);
	CU_ASSERT_EQUAL(lun_read(lun, buf, BLK, OFF), 0);
	CU_ASSERT(is_filled(buf, BLK, 1));
	CU_ASSERT_EQUAL(lun_submit(lun, ios, 2), 0);
	CU_ASSERT(!lun_is_fenced(lun));
	CU_ASSERT_EQUAL(atomic_load(&expired_calls), 0);
	lun_close(lun);
	lun_buf_free(buf);
}

/* A write wholly inside the exempt range passes; one that reaches past
 * it is gated like any other. */
static void test_exempt_range(void)
{
	const char *path = scratch();
	struct lun *lun = open_lun(path);
	void *buf = lun_buf_alloc(2 * BLK), *file = malloc(BLK);

	arm(lun, vmfs_mono_ms() - 1, OFF, BLK);
	fill(buf, 2 * BLK, 3);
	CU_ASSERT_EQUAL(lun_write(lun, buf, 512, OFF + BLK - 512), 0);
	CU_ASSERT_EQUAL(lun_write(lun, buf, BLK, OFF), 0);
	CU_ASSERT(!lun_is_fenced(lun));
	pread_file(path, file, BLK, OFF);
	CU_ASSERT(is_filled(file, BLK, 3));
	CU_ASSERT_EQUAL(lun_write(lun, buf, 2 * BLK, OFF), -EIO);
	CU_ASSERT(lun_is_fenced(lun));
	CU_ASSERT_EQUAL(atomic_load(&expired_calls), 1);
	lun_close(lun);
	free(file);
	lun_buf_free(buf);
}

/*
 * Extending the deadline before it passes keeps writes working past the
 * first deadline; a later "extension" to an earlier time changes nothing.
 * Only the order of events matters here: the sleep makes the first
 * deadline lie in the past, however slow the machine.
 */
static void test_extend(void)
{
	const char *path = scratch();
	struct lun *lun = open_lun(path);
	void *buf = lun_buf_alloc(BLK);
	int64_t first = vmfs_mono_ms() + 200;

	arm(lun, first, 0, 0);
	fill(buf, BLK, 4);
	CU_ASSERT_EQUAL(lun_write(lun, buf, BLK, OFF), 0);
	lun_gate_extend(lun, vmfs_mono_ms() + 60000);
	lun_gate_extend(lun, first);      /* never moves back */
	while (vmfs_mono_ms() <= first + 50)
		usleep(50000);
	CU_ASSERT_EQUAL(lun_write(lun, buf, BLK, OFF), 0);
	CU_ASSERT_EQUAL(lun_flush(lun), 0);
	CU_ASSERT(!lun_is_fenced(lun));
	CU_ASSERT_EQUAL(atomic_load(&expired_calls), 0);

	/* Disarmed, a handle writes whatever the old deadline said. */
	arm(lun, vmfs_mono_ms() - 1, 0, 0);
	lun_gate_arm(lun, NULL);
	CU_ASSERT_EQUAL(lun_write(lun, buf, BLK, OFF), 0);
	CU_ASSERT(!lun_is_fenced(lun));
	lun_close(lun);
	lun_buf_free(buf);
}

static CU_TestInfo gate_tests[] = {
	{ "past_deadline_refused", test_past_deadline_refused },
	{ "reads_ungated", test_reads_ungated },
	{ "exempt_range", test_exempt_range },
	{ "extend", test_extend },
	CU_TEST_INFO_NULL
};
UNIT_SUITE("lun_gate", NULL, NULL, gate_tests);
