/*
 * CUnit runner for every unit suite.  Usage: test_unit [SUITE [TEST]]
 * runs everything, one suite, or one test (the names a failure prints).
 * Scratch files go to $VMFS_TEST_DIR (default /tmp) and are removed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <syslog.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <CUnit/Basic.h>
#include "unit.h"
#include "vmfs/fsck.h"
#include "vmfs/log.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"

#define MAX_SUITES 64

static struct {
	const char *name;
	CU_InitializeFunc init;
	CU_CleanupFunc cleanup;
	CU_TestInfo *tests;
} suites[MAX_SUITES];
static int nsuites;

void unit_suite_add(const char *name, CU_InitializeFunc init,
		    CU_CleanupFunc cleanup, CU_TestInfo *tests)
{
	if (nsuites == MAX_SUITES) {
		fprintf(stderr, "test_unit: too many suites\n");
		abort();
	}
	suites[nsuites].name = name;
	suites[nsuites].init = init;
	suites[nsuites].cleanup = cleanup;
	suites[nsuites].tests = tests;
	nsuites++;
}

static int raw_read(void *ctx, void *blk, uint64_t addr)
{
	return lun_read(ctx, blk, VMFS_MD_BLOCK_SIZE, addr);
}

static int raw_write(void *ctx, const void *blk, uint64_t addr)
{
	return lun_write(ctx, blk, VMFS_MD_BLOCK_SIZE, addr);
}

/* No test may allocate through them: a fresh object would be unmarked. */
static int raw_alloc(void *ctx, enum vmfs_res_type t, uint64_t owner,
		     uint64_t *idx)
{
	(void)ctx;
	(void)t;
	(void)owner;
	(void)idx;
	CU_FAIL("vol_raw allocated");
	return -ENOSPC;
}

void unit_raw_init(struct vol_raw *r, const struct vol_geom *g,
		   struct lun *lun)
{
	*r = (struct vol_raw){
		.g = g, .md_read = raw_read, .md_write = raw_write,
		.res_alloc = raw_alloc, .ctx = lun,
	};
}

static char *tmp_paths[256];
static int ntmp;

static void unit_fsck_report(void *ctx, const struct fsck_problem_info *p,
			     uint64_t addr, const char *detail, bool fixed)
{
	(void)fixed;
	fprintf(stderr, "\n  %s: %s at %llu: %s", (const char *)ctx, p->name,
		(unsigned long long)addr, detail);
}

bool unit_fsck_clean(const char *path, const char *what)
{
	struct fsck_result r;
	struct fsck_opts o;
	struct lun *lun;
	int rc;

	fsck_opts_init(&o);
	o.mode = FSCK_MODE_NO;
	o.report = unit_fsck_report;
	o.ctx = (void *)what;
	CU_ASSERT_FATAL(lun_open(path, LUN_RDONLY, &lun) == 0);
	rc = fsck_run(lun, &o, &r);
	lun_close(lun);
	if (rc)
		fprintf(stderr, "\n  %s: fsck -n of %s exited %d with %llu problems: %s\n",
			what, path, rc, (unsigned long long)r.problems_found, r.error);
	return rc == 0;
}

void unit_scratch_opts(struct vol_mkfs_opts *o)
{
	vol_mkfs_opts_init(o);
	o->max_hosts = 4;
	o->journal_size = 1024 * 1024;
	o->label = "unit";
}

void unit_scratch_mkfs(const char *path, uint64_t size,
		       const struct vol_mkfs_opts *o, struct lun **lun)
{
	struct vol_mkfs_opts def;
	int fd;

	if (!o) {
		unit_scratch_opts(&def);
		o = &def;
	}
	fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(ftruncate(fd, (off_t)size) == 0);
	close(fd);
	CU_ASSERT_FATAL(lun_open(path, 0, lun) == 0);
	CU_ASSERT_FATAL(vol_mkfs(*lun, o, NULL) == 0);
}

const char *unit_scratch_volume(const char *stem, uint64_t size,
				struct lun **lun)
{
	const char *path = unit_tmp_path(stem);

	unit_scratch_mkfs(path, size, NULL, lun);
	return path;
}

void unit_log_init(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	qb_log_init("unit", LOG_USER, LOG_WARNING);
	qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, QB_FALSE);
}

int32_t unit_log_target(qb_log_logger_fn fn)
{
	int32_t t;

	unit_log_init();
	t = qb_log_custom_open(fn, NULL, NULL, NULL);
	if (t < 0)
		return t;
	/* libqb 2.0 keeps a closed target's filters: a target reopened in
	 * its slot would refuse the same filter (EEXIST) and stay deaf to
	 * callsites met while it was closed.  Start from none. */
	qb_log_filter_ctl(t, QB_LOG_FILTER_CLEAR_ALL, QB_LOG_FILTER_FILE, "*",
			  0);
	qb_log_filter_ctl(t, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*",
			  LOG_WARNING);
	qb_log_ctl(t, QB_LOG_CONF_ENABLED, QB_TRUE);
	return t;
}

static pthread_mutex_t collect_mu = PTHREAD_MUTEX_INITIALIZER;
static char collect_text[16384];
static int32_t collect_t = -1;

static void collect_msg(int32_t t, struct qb_log_callsite *cs,
			struct timespec *ts, const char *msg)
{
	size_t o;

	(void)t;
	(void)cs;
	(void)ts;
	pthread_mutex_lock(&collect_mu);
	o = strlen(collect_text);
	snprintf(collect_text + o, sizeof(collect_text) - o, "%s\n", msg);
	pthread_mutex_unlock(&collect_mu);
}

void unit_log_collect_begin(void)
{
	pthread_mutex_lock(&collect_mu);
	collect_text[0] = 0;
	pthread_mutex_unlock(&collect_mu);
	collect_t = unit_log_target(collect_msg);
	CU_ASSERT_FATAL(collect_t >= 0);
	qb_log_filter_ctl(collect_t, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*",
			  LOG_NOTICE);
}

bool unit_log_wait_for(const char *needle, unsigned ms)
{
	for (unsigned waited = 0;; waited += 10) {
		bool found;

		pthread_mutex_lock(&collect_mu);
		found = strstr(collect_text, needle) != NULL;
		pthread_mutex_unlock(&collect_mu);
		if (found || waited >= ms)
			return found;
		usleep(10000);
	}
}

const char *unit_log_collect_end(void)
{
	if (collect_t >= 0) {
		qb_log_ctl(collect_t, QB_LOG_CONF_ENABLED, QB_FALSE);
		qb_log_custom_close(collect_t);
		collect_t = -1;
	}
	return collect_text;
}

const char *unit_tmp_path(const char *stem)
{
	const char *dir = getenv("VMFS_TEST_DIR");
	char *p;

	if (!dir || !*dir)
		dir = "/tmp";
	if (ntmp == 256)
		abort();
	if (asprintf(&p, "%s/vmfs-unit-%d-%d-%s", dir, (int)getpid(), ntmp,
		     stem) < 0)
		abort();
	tmp_paths[ntmp++] = p;
	unlink(p);
	return p;
}

int main(int argc, char **argv)
{
	const char *only_suite = argc > 1 ? argv[1] : NULL;
	const char *only_test = argc > 2 ? argv[2] : NULL;
	unsigned failed;
	int i;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	for (i = 0; i < nsuites; i++) {
		CU_pSuite s;
		CU_TestInfo *t;

		if (only_suite && strcmp(only_suite, suites[i].name))
			continue;
		s = CU_add_suite(suites[i].name, suites[i].init,
				 suites[i].cleanup);
		if (!s)
			return 2;
		for (t = suites[i].tests; t->pName; t++) {
			if (only_test && strcmp(only_test, t->pName))
				continue;
			CU_add_test(s, t->pName, t->pTestFunc);
		}
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() +
		 CU_get_number_of_suites_failed();
	for (i = 0; i < ntmp; i++) {
		unlink(tmp_paths[i]);
		free(tmp_paths[i]);
	}
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
