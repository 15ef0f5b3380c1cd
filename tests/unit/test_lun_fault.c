/*
 * The fault-injecting lun (lun/fault.c): failed, torn and delayed writes,
 * write recording, and forwarding to the wrapped lun.  Every check looks at
 * the file itself, so "the data did not reach the LUN" is observed, not
 * inferred from a return code.  Latency is asserted only as a lower bound.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "vmfs/lun.h"
#include "lun_scratch.h"

/* ---- fault wrapper ------------------------------------------------------ */

static struct lun *open_fault(const char *path, struct lun **inner_out)
{
	struct lun *inner = open_lun(path);
	struct lun *f = NULL;

	CU_ASSERT_FATAL(lun_fault_wrap(inner, &f) == 0);
	CU_ASSERT_EQUAL(lun_size(f), lun_size(inner));
	CU_ASSERT_EQUAL(lun_sector_size(f), lun_sector_size(inner));
	if (inner_out)
		*inner_out = inner;
	return f;
}

static void test_fault_nth(void)
{
	const char *path = mkfile("fnth", MiB);
	struct lun *f = open_fault(path, NULL);
	uint32_t ss = lun_sector_size(f);
	unsigned char *buf = lun_buf_alloc(ss);
	unsigned i;

	lun_fault_fail_nth_write(f, 3, -EIO);
	for (i = 0; i < 5; i++) {
		fill(buf, ss, i + 1);
		CU_ASSERT_EQUAL(lun_write(f, buf, ss, (uint64_t)i * ss),
				i == 2 ? -EIO : 0);
	}
	CU_ASSERT_EQUAL(lun_fault_writes(f), 5);
	for (i = 0; i < 5; i++) {
		pread_file(path, buf, ss, (off_t)i * ss);
		CU_ASSERT(i == 2 ? is_zero(buf, ss) : is_filled(buf, ss, i + 1));
	}
	/* One-shot: the sixth write passes; reads are never failed. */
	CU_ASSERT_EQUAL(lun_write(f, buf, ss, 0), 0);
	CU_ASSERT_EQUAL(lun_read(f, buf, ss, 0), 0);

	/* CAW counts as a write, and a failed CAW writes nothing. */
	lun_fault_fail_nth_write(f, 1, -VMFS_E_FAULT);
	memset(buf, 0x77, ss);
	{
		unsigned char *exp = malloc(ss);

		pread_file(path, exp, ss, 0);
		CU_ASSERT_EQUAL(lun_compare_and_write(f, exp, buf, ss, 0, NULL),
				-VMFS_E_FAULT);
		pread_file(path, buf, ss, 0);
		CU_ASSERT_EQUAL(memcmp(buf, exp, ss), 0);
		free(exp);
	}
	CU_ASSERT_EQUAL(lun_fault_writes(f), 7);
	lun_buf_free(buf);
	lun_close(f);
}

static void test_fault_from(void)
{
	const char *path = mkfile("ffrom", MiB);
	struct lun *f = open_fault(path, NULL);
	uint32_t ss = lun_sector_size(f);
	unsigned char *buf = lun_buf_alloc(2 * ss);
	struct lun_io ios[3];

	fill(buf, 2 * ss, 5);
	lun_fault_fail_writes_from(f, 64 * ss, -ENOSPC);
	CU_ASSERT_EQUAL(lun_write(f, buf, ss, 63 * ss), 0);
	CU_ASSERT_EQUAL(lun_write(f, buf, 2 * ss, 63 * ss), -ENOSPC);
	CU_ASSERT_EQUAL(lun_write(f, buf, ss, 100 * ss), -ENOSPC);
	CU_ASSERT_EQUAL(lun_zero_range(f, 60 * ss, 8 * ss), -ENOSPC);
	/* In a batch only the I/O past the limit fails. */
	ios[0] = (struct lun_io){ LUN_OP_WRITE, buf, ss, 10 * ss, 1 };
	ios[1] = (struct lun_io){ LUN_OP_WRITE, buf, ss, 70 * ss, 1 };
	ios[2] = (struct lun_io){ LUN_OP_READ, buf + ss, ss, 80 * ss, 1 };
	CU_ASSERT_EQUAL(lun_submit(f, ios, 3), -ENOSPC);
	CU_ASSERT_EQUAL(ios[0].result, 0);
	CU_ASSERT_EQUAL(ios[1].result, -ENOSPC);
	CU_ASSERT_EQUAL(ios[2].result, 0);
	pread_file(path, buf + ss, ss, 70 * ss);
	CU_ASSERT(is_zero(buf + ss, ss));
	pread_file(path, buf + ss, ss, 10 * ss);
	CU_ASSERT(is_filled(buf + ss, ss, 5));

	lun_fault_fail_writes_from(f, 0, 0);
	CU_ASSERT_EQUAL(lun_write(f, buf, ss, 100 * ss), 0);
	lun_buf_free(buf);
	lun_close(f);
}

static void test_fault_tear(void)
{
	const char *path = mkfile("ftear", MiB);
	struct lun *f = open_fault(path, NULL);
	uint32_t ss = lun_sector_size(f);
	size_t len = 8 * ss;
	unsigned char *old = lun_buf_alloc(len), *new = lun_buf_alloc(len);
	unsigned char *back = malloc(len);

	fill(old, len, 1);
	fill(new, len, 2);
	CU_ASSERT_FATAL(lun_write(f, old, len, 0) == 0);
	/* keep_bytes is rounded down to whole sectors. */
	lun_fault_tear_nth_write(f, 2, 3 * ss + 100);
	CU_ASSERT_EQUAL(lun_write(f, old, ss, len), 0);
	CU_ASSERT_EQUAL(lun_write(f, new, len, 0), -EIO);
	pread_file(path, back, len, 0);
	CU_ASSERT_EQUAL(memcmp(back, new, 3 * ss), 0);
	CU_ASSERT_EQUAL(memcmp(back + 3 * ss, old + 3 * ss, len - 3 * ss), 0);
	/* Only once. */
	CU_ASSERT_EQUAL(lun_write(f, new, len, 0), 0);
	pread_file(path, back, len, 0);
	CU_ASSERT_EQUAL(memcmp(back, new, len), 0);

	/* An atomic CAW is never split: a partial tear writes nothing. */
	lun_fault_tear_nth_write(f, 1, ss);
	CU_ASSERT_EQUAL(lun_compare_and_write(f, new, old, len, 0, NULL), -EIO);
	pread_file(path, back, len, 0);
	CU_ASSERT_EQUAL(memcmp(back, new, len), 0);
	free(back);
	lun_buf_free(old);
	lun_buf_free(new);
	lun_close(f);
}

static void test_fault_record(void)
{
	const char *path = mkfile("frec", MiB);
	struct lun *f = open_fault(path, NULL);
	uint32_t ss = lun_sector_size(f);
	unsigned char *a = lun_buf_alloc(2 * ss), *b = lun_buf_alloc(ss);
	unsigned char *c = malloc(ss), *z = calloc(1, ss);
	const struct lun_rec_entry *r;
	struct lun_io ios[3];
	size_t n = 99;

	fill(a, 2 * ss, 1);
	fill(b, ss, 2);
	fill(c, ss, 3);
	CU_ASSERT_EQUAL(lun_write(f, a, ss, 0), 0);	/* not recording */
	lun_fault_record(f, true);
	CU_ASSERT_EQUAL(lun_write(f, a, 2 * ss, 4 * ss), 0);
	ios[0] = (struct lun_io){ LUN_OP_WRITE, b, ss, 10 * ss, 1 };
	ios[1] = (struct lun_io){ LUN_OP_READ, a, ss, 0, 1 };
	ios[2] = (struct lun_io){ LUN_OP_WRITE, b, ss, 11 * ss, 1 };
	CU_ASSERT_EQUAL(lun_submit(f, ios, 3), 0);
	CU_ASSERT_EQUAL(lun_flush(f), 0);
	lun_fault_fail_nth_write(f, 1, -EIO);
	CU_ASSERT_EQUAL(lun_write(f, b, ss, 20 * ss), -EIO);	/* no record */
	CU_ASSERT_EQUAL(lun_zero_range(f, 30 * ss, 2 * ss), 0);
	CU_ASSERT_EQUAL(lun_compare_and_write(f, z, c, ss, 40 * ss, NULL), 0);
	lun_fault_tear_nth_write(f, 1, ss);
	CU_ASSERT_EQUAL(lun_write(f, a, 2 * ss, 50 * ss), -EIO);
	CU_ASSERT_EQUAL(lun_flush(f), 0);

	r = lun_fault_records(f, &n);
	CU_ASSERT_EQUAL_FATAL(n, 8);
	CU_ASSERT(r[0].kind == LUN_REC_WRITE && r[0].off == 4 * ss &&
		  r[0].len == 2 * ss);
	fill(a, 2 * ss, 1);
	CU_ASSERT_EQUAL(memcmp(r[0].data, a, 2 * ss), 0);
	CU_ASSERT(r[1].kind == LUN_REC_WRITE && r[1].off == 10 * ss &&
		  r[1].len == ss && !memcmp(r[1].data, b, ss));
	CU_ASSERT(r[2].kind == LUN_REC_WRITE && r[2].off == 11 * ss);
	CU_ASSERT(r[3].kind == LUN_REC_FLUSH);
	CU_ASSERT(r[4].kind == LUN_REC_ZERO && r[4].off == 30 * ss &&
		  r[4].len == 2 * ss && r[4].data == NULL);
	CU_ASSERT(r[5].kind == LUN_REC_WRITE && r[5].off == 40 * ss &&
		  !memcmp(r[5].data, c, ss));
	CU_ASSERT(r[6].kind == LUN_REC_WRITE && r[6].off == 50 * ss &&
		  r[6].len == ss && !memcmp(r[6].data, a, ss));
	CU_ASSERT(r[7].kind == LUN_REC_FLUSH);

	/* The snapshot stays valid while recording goes on. */
	CU_ASSERT_EQUAL(lun_write(f, b, ss, 60 * ss), 0);
	CU_ASSERT_EQUAL(r[0].off, 4 * ss);
	lun_fault_records(f, &n);
	CU_ASSERT_EQUAL(n, 9);
	lun_fault_record_clear(f);
	CU_ASSERT_PTR_NOT_NULL(lun_fault_records(f, &n));
	CU_ASSERT_EQUAL(n, 0);
	lun_fault_record(f, false);
	CU_ASSERT_EQUAL(lun_write(f, b, ss, 60 * ss), 0);
	lun_fault_records(f, &n);
	CU_ASSERT_EQUAL(n, 0);
	free(c);
	free(z);
	lun_buf_free(a);
	lun_buf_free(b);
	lun_close(f);
}

static void test_fault_latency(void)
{
	const char *path = mkfile("flat", MiB);
	struct lun *f = open_fault(path, NULL);
	uint32_t ss = lun_sector_size(f);
	unsigned char *buf = lun_buf_alloc(ss);
	int64_t t0;

	memset(buf, 0, ss);
	lun_fault_set_latency(f, 30000, 60000);
	t0 = now_ms();
	CU_ASSERT_EQUAL(lun_read(f, buf, ss, 0), 0);
	CU_ASSERT(now_ms() - t0 >= 30);
	t0 = now_ms();
	CU_ASSERT_EQUAL(lun_write(f, buf, ss, 0), 0);
	CU_ASSERT(now_ms() - t0 >= 60);
	lun_fault_set_latency(f, 0, 0);
	lun_buf_free(buf);
	lun_close(f);
}

/* The knobs ignore a plain lun; the wrapper forwards reserve/release. */
static void test_fault_plain_and_forward(void)
{
	const char *path = mkfile("fplain", MiB);
	struct lun *plain = open_lun(path);
	struct lun *other = open_lun(path);
	struct lun *f = open_fault(path, NULL);
	size_t n = 5;

	lun_fault_fail_nth_write(plain, 1, -EIO);
	lun_fault_record(plain, true);
	CU_ASSERT_PTR_NULL(lun_fault_records(plain, &n));
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_EQUAL(lun_fault_writes(plain), 0);
	CU_ASSERT_EQUAL(lun_fault_wrap(NULL, &f), -EINVAL);

	CU_ASSERT_EQUAL(lun_reserve(f, 0), 0);
	CU_ASSERT_EQUAL(lun_reserve(other, 0), -VMFS_E_RESERVED);
	CU_ASSERT_EQUAL(lun_release(f), 0);
	CU_ASSERT_EQUAL(lun_reserve(other, 0), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(lun_name(f), path));
	lun_close(f);
	lun_close(other);
	lun_close(plain);
}

/* The file backend has both primitives; the wrapper can hide one (a LUN
 * without ATS, as on tgt), and a hidden primitive is refused. */
static void test_fault_caps(void)
{
	const char *path = mkfile("fcaps", MiB);
	struct lun *f = open_fault(path, NULL);
	uint8_t *a = lun_buf_alloc(512), *b = lun_buf_alloc(512);

	CU_ASSERT_EQUAL(lun_caps(f), LUN_CAP_ATS | LUN_CAP_RESERVE);
	memset(a, 0, 512);
	memset(b, 7, 512);
	lun_fault_set_caps(f, LUN_CAP_RESERVE);
	CU_ASSERT_EQUAL(lun_caps(f), LUN_CAP_RESERVE);
	CU_ASSERT_EQUAL(lun_compare_and_write(f, a, b, 512, 0, NULL), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(lun_reserve(f, 0), 0);
	CU_ASSERT_EQUAL(lun_release(f), 0);
	lun_fault_set_caps(f, LUN_CAP_ATS);
	CU_ASSERT_EQUAL(lun_reserve(f, 0), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(lun_release(f), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(lun_compare_and_write(f, a, b, 512, 0, NULL), 0);
	lun_fault_set_caps(f, ~0u);	/* never more than the inner lun */
	CU_ASSERT_EQUAL(lun_caps(f), LUN_CAP_ATS | LUN_CAP_RESERVE);
	lun_buf_free(a);
	lun_buf_free(b);
	lun_close(f);
}

/* A 4Kn LUN over a 512-byte file: 512-byte I/O is refused as on a disk. */
static void test_fault_sector_size(void)
{
	const char *path = mkfile("fsect", MiB);
	struct lun *f = open_fault(path, NULL);
	unsigned char *buf = lun_buf_alloc(4096);

	if (lun_sector_size(f) != 512) {
		/* The scratch disk is 4Kn already: nothing to emulate. */
		lun_buf_free(buf);
		lun_close(f);
		return;
	}
	CU_ASSERT_EQUAL(lun_fault_set_sector_size(f, 1024), -EINVAL);
	CU_ASSERT_EQUAL(lun_fault_set_sector_size(f, 4096), 0);
	CU_ASSERT_EQUAL(lun_sector_size(f), 4096);
	fill(buf, 4096, 7);
	CU_ASSERT_EQUAL(lun_write(f, buf, 512, 4096), -VMFS_E_UNALIGNED);
	CU_ASSERT_EQUAL(lun_write(f, buf, 4096, 512), -VMFS_E_UNALIGNED);
	CU_ASSERT_EQUAL(lun_write(f, buf, 4096, 4096), 0);
	memset(buf, 0, 4096);
	CU_ASSERT_EQUAL(lun_read(f, buf, 4096, 4096), 0);
	CU_ASSERT(is_filled(buf, 4096, 7));
	lun_buf_free(buf);
	lun_close(f);
}

static void count_hook(void *arg)
{
	(*(unsigned *)arg)++;
}

/* The hook runs once, before the first write that covers its byte. */
static void test_fault_before_write(void)
{
	const char *path = mkfile("fhook", MiB);
	struct lun *f = open_fault(path, NULL);
	uint32_t ss = lun_sector_size(f);
	unsigned char *buf = lun_buf_alloc(2 * ss);
	unsigned calls = 0;

	memset(buf, 0, 2 * ss);
	lun_fault_before_write_at(f, 3 * (uint64_t)ss + 5, count_hook, &calls);
	CU_ASSERT_EQUAL(lun_write(f, buf, 2 * ss, 0), 0);
	CU_ASSERT_EQUAL(calls, 0);
	CU_ASSERT_EQUAL(lun_write(f, buf, 2 * ss, 2 * (uint64_t)ss), 0);
	CU_ASSERT_EQUAL(calls, 1);
	CU_ASSERT_EQUAL(lun_write(f, buf, 2 * ss, 2 * (uint64_t)ss), 0);
	CU_ASSERT_EQUAL(lun_compare_and_write(f, buf, buf, ss, 3 * (uint64_t)ss,
					      NULL), 0);
	CU_ASSERT_EQUAL(calls, 1);
	/* A compare-and-write counts as a write. */
	lun_fault_before_write_at(f, 3 * (uint64_t)ss, count_hook, &calls);
	CU_ASSERT_EQUAL(lun_compare_and_write(f, buf, buf, ss, 3 * (uint64_t)ss,
					      NULL), 0);
	CU_ASSERT_EQUAL(calls, 2);
	lun_buf_free(buf);
	lun_close(f);
}

static CU_TestInfo fault_tests[] = {
	{ "fail_nth_write", test_fault_nth },
	{ "fail_writes_from", test_fault_from },
	{ "torn_write", test_fault_tear },
	{ "record", test_fault_record },
	{ "latency", test_fault_latency },
	{ "plain_and_forward", test_fault_plain_and_forward },
	{ "caps", test_fault_caps },
	{ "sector_size", test_fault_sector_size },
	{ "before_write_at", test_fault_before_write },
	CU_TEST_INFO_NULL
};
UNIT_SUITE("lun_fault", NULL, NULL, fault_tests);
