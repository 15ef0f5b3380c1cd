/*
 * The error component (include/vmfs/error.h, error/error.c): one table
 * holds a message for every VMFS_E_* code, each code once, in its
 * component's range, and vmfs_strerror() finds them, falls back to
 * glibc for errno values and formats what it does not know.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include <qb/qbrb.h>

#include "unit.h"
#include "vmfs/error.h"
#include "vmfs/log.h"

/* Every code of enum vmfs_error: add new ones here too. */
static const enum vmfs_error all_codes[] = {
	VMFS_E_BAD_MAGIC, VMFS_E_BAD_VERSION, VMFS_E_BAD_SELF,
	VMFS_E_BAD_CRC, VMFS_E_BAD_LEN, VMFS_E_MISCOMPARE,
	VMFS_E_RESERVED, VMFS_E_BAD_SPEC, VMFS_E_UNALIGNED, VMFS_E_FAULT,
	VMFS_E_ISCSI_URL, VMFS_E_ISCSI_PORTAL, VMFS_E_ISCSI_TARGET,
	VMFS_E_ISCSI_LUN, VMFS_E_ISCSI_AUTH, VMFS_E_ISCSI_CHAP_FILE,
	VMFS_E_ISCSI_GEOMETRY, VMFS_E_FENCED, VMFS_E_PR_FOREIGN,
	VMFS_E_ISCSI_LOCK_LUN,
	VMFS_E_JNL_FULL, VMFS_E_JNL_DIRTY, VMFS_E_JNL_ABORTED,
	VMFS_E_NOT_VOLUME, VMFS_E_TOO_SMALL, VMFS_E_GEOMETRY,
	VMFS_E_CORRUPT, VMFS_E_HEADER_MISMATCH, VMFS_E_NOT_GROWN,
	VMFS_E_LUN_SHRUNK, VMFS_E_GROW_FULL,
};
#define NCODES (sizeof(all_codes) / sizeof(all_codes[0]))

/* Each code has exactly one row, rows are in code order, in range. */
static void test_table(void)
{
	const struct vmfs_error_info *t;
	size_t n, i, j, rows;

	t = vmfs_error_table(&n);
	CU_ASSERT_FATAL(t != NULL);
	CU_ASSERT_EQUAL(n, NCODES);
	for (i = 0; i < n; i++) {
		CU_ASSERT(t[i].code >= VMFS_E_BASE && t[i].code < VMFS_E_LAST);
		CU_ASSERT(t[i].msg && strlen(t[i].msg) > 10);
		if (i)
			CU_ASSERT(t[i].code > t[i - 1].code);
		for (j = 0; j < i; j++) {
			CU_ASSERT_NOT_EQUAL(t[i].code, t[j].code);
			CU_ASSERT_STRING_NOT_EQUAL(t[i].msg, t[j].msg);
		}
	}
	for (i = 0; i < NCODES; i++) {
		for (rows = 0, j = 0; j < n; j++)
			rows += t[j].code == all_codes[i];
		if (rows != 1)
			CU_FAIL("a VMFS_E_* code has no row or more than one");
		CU_ASSERT_EQUAL(rows, 1);
	}
}

static void test_strerror(void)
{
	const struct vmfs_error_info *t;
	size_t n, i;

	t = vmfs_error_table(&n);
	for (i = 0; i < n; i++) {
		CU_ASSERT_PTR_EQUAL(vmfs_strerror(-(int)t[i].code), t[i].msg);
		/* A bare (positive) code is accepted too. */
		CU_ASSERT_PTR_EQUAL(vmfs_strerror((int)t[i].code), t[i].msg);
		CU_ASSERT_PTR_NULL(strstr(t[i].msg, "unknown"));
	}
	CU_ASSERT_STRING_EQUAL(vmfs_strerror(-ENOENT),
			       "No such file or directory");
	CU_ASSERT_STRING_EQUAL(vmfs_strerror(-ETIMEDOUT),
			       "Connection timed out");
	CU_ASSERT_STRING_EQUAL(vmfs_strerror(0), "success");
	CU_ASSERT_STRING_EQUAL(vmfs_strerror(-1099), "unknown vmfs error -1099");
	CU_ASSERT_STRING_EQUAL(vmfs_strerror(-900), "unknown error -900");
}

/*
 * include/vmfs/log.h: messages logged by many threads at once all reach
 * the targets (libqb alone drops those logged while another thread is
 * inside its logger).
 */
#define LOG_THREADS 4
#define LOG_EACH 3000

static atomic_uint log_seen;

static void log_count(int32_t t, struct qb_log_callsite *cs,
		      struct timespec *ts, const char *msg)
{
	(void)t, (void)cs, (void)ts;
	if (strstr(msg, "unit-log-concurrent"))
		atomic_fetch_add(&log_seen, 1);
}

static void *log_thread(void *arg)
{
	for (int i = 0; i < LOG_EACH; i++)
		qb_log(LOG_WARNING, "unit-log-concurrent %u %d",
		       (unsigned)(uintptr_t)arg, i);
	return NULL;
}

static void test_log_concurrent(void)
{
	pthread_t th[LOG_THREADS];
	int32_t t;

	t = unit_log_target(log_count);
	CU_ASSERT_FATAL(t >= 0);
	atomic_store(&log_seen, 0);
	for (int i = 0; i < LOG_THREADS; i++)
		CU_ASSERT_FATAL(pthread_create(&th[i], NULL, log_thread,
					       (void *)(uintptr_t)i) == 0);
	for (int i = 0; i < LOG_THREADS; i++)
		pthread_join(th[i], NULL);
	qb_log_ctl(t, QB_LOG_CONF_ENABLED, QB_FALSE);
	qb_log_custom_close(t);
	CU_ASSERT_EQUAL(atomic_load(&log_seen), LOG_THREADS * LOG_EACH);
	if (atomic_load(&log_seen) != LOG_THREADS * LOG_EACH)
		printf("[%u of %u messages logged] ", atomic_load(&log_seen),
		       LOG_THREADS * LOG_EACH);
}

/*
 * Messages of ours (through qb_log and vmfs_log_external, as libfuse's
 * are) logged while libqb itself is inside the logger (here: qb_rb_open()
 * of a ring that does not exist says so) still arrive: the
 * target below holds libqb's message until the other thread is about to
 * log, and a while longer.  Without error/log.c's qb_log_real_ bound into
 * libqb, ours would meet libqb's recursion flag and vanish.
 */
static atomic_int lib_inside, ours_about, ours_seen;

static void log_hold_lib(int32_t t, struct qb_log_callsite *cs,
			 struct timespec *ts, const char *msg)
{
	struct timespec pause = { 0, 10 * 1000 * 1000 };

	(void)t, (void)cs, (void)ts;
	if (strstr(msg, "unit-log-ours"))
		atomic_fetch_add(&ours_seen, 1);
	if (!strstr(msg, "unit-log-no-such-ring") ||
	    atomic_exchange(&lib_inside, 1))
		return;
	for (int i = 0; i < 200 && !atomic_load(&ours_about); i++)
		nanosleep(&pause, NULL);
	for (int i = 0; i < 10; i++)
		nanosleep(&pause, NULL);
}

static void *log_ours_thread(void *arg)
{
	struct timespec pause = { 0, 1000 * 1000 };

	(void)arg;
	for (int i = 0; i < 2000 && !atomic_load(&lib_inside); i++)
		nanosleep(&pause, NULL);
	atomic_store(&ours_about, 1);
	qb_log(LOG_WARNING, "unit-log-ours while libqb logs");
	vmfs_log_external(__func__, __FILE__, LOG_WARNING, __LINE__,
			  "unit-log-ours from outside, while libqb logs");
	return NULL;
}

static void test_log_with_libqb(void)
{
	qb_ringbuffer_t *rb;
	pthread_t th;
	int32_t t;

	t = unit_log_target(log_hold_lib);
	CU_ASSERT_FATAL(t >= 0);
	qb_log_filter_ctl(t, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*",
			  LOG_TRACE);
	atomic_store(&lib_inside, 0);
	atomic_store(&ours_about, 0);
	atomic_store(&ours_seen, 0);
	CU_ASSERT_FATAL(pthread_create(&th, NULL, log_ours_thread, NULL) == 0);
	rb = qb_rb_open("unit-log-no-such-ring", 4096, 0, 0);
	pthread_join(th, NULL);
	qb_log_ctl(t, QB_LOG_CONF_ENABLED, QB_FALSE);
	qb_log_custom_close(t);
	CU_ASSERT_PTR_NULL(rb);
	CU_ASSERT_EQUAL(atomic_load(&lib_inside), 1);
	CU_ASSERT_EQUAL(atomic_load(&ours_seen), 2);
}

static CU_TestInfo error_tests[] = {
	{ "table", test_table },
	{ "strerror", test_strerror },
	{ "log_concurrent", test_log_concurrent },
	{ "log_with_libqb", test_log_with_libqb },
	CU_TEST_INFO_NULL
};
UNIT_SUITE("error", NULL, NULL, error_tests);
