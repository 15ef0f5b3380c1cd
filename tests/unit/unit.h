/*
 * Tiny registration layer over CUnit: every tests/unit/test_*.c registers
 * its suite from a constructor, and main.c adds them all to the registry,
 * so adding a suite never touches a shared file.
 *
 *   static CU_TestInfo tests[] = { { "name", fn }, CU_TEST_INFO_NULL };
 *   UNIT_SUITE("lun", NULL, NULL, tests);
 */
#ifndef VMFS_TESTS_UNIT_H
#define VMFS_TESTS_UNIT_H

#include <stdbool.h>
#include <stdint.h>
#include <CUnit/CUnit.h>
#include "vmfs/log.h"

void unit_suite_add(const char *name, CU_InitializeFunc init,
		    CU_CleanupFunc cleanup, CU_TestInfo *tests);

/* A scratch file path under the test directory (unique per call). */
const char *unit_tmp_path(const char *stem);
/* libqb's logging, initialised once per process (warnings and up, syslog
 * off); tests add their own targets. */
void unit_log_init(void);
/* A target of warnings and up that calls fn, enabled (unit_log_init
 * first): its number, or < 0. */
int32_t unit_log_target(qb_log_logger_fn fn);
/* Collect the notices and worse logged from now on (one at a time). */
void unit_log_collect_begin(void);
/* Wait at most ms for the collected text to contain needle. */
bool unit_log_wait_for(const char *needle, unsigned ms);
/* Stop collecting; what was collected, until the next begin. */
const char *unit_log_collect_end(void);

/* A fresh volume on a sparse scratch file of size bytes (max_hosts 4,
 * 1 MiB journals, label "unit"), opened read-write into *lun; its path. */
struct lun;
struct vol_mkfs_opts;
const char *unit_scratch_volume(const char *stem, uint64_t size,
				struct lun **lun);
/* The same at path, made with mkfs options o (NULL: those above). */
void unit_scratch_mkfs(const char *path, uint64_t size,
		       const struct vol_mkfs_opts *o, struct lun **lun);
/* The options above, for a caller to change some of. */
void unit_scratch_opts(struct vol_mkfs_opts *o);

/* fsck -n of the volume in the file at path (not in use): true when it
 * exits 0; otherwise each problem and the summary go to stderr, headed
 * by what. */
bool unit_fsck_clean(const char *path, const char *what);

struct vol_raw;
struct vol_geom;
struct lun;
/* Raw writers (vol_raw_*) over lun with geometry g; any allocation they
 * try fails the running test. */
void unit_raw_init(struct vol_raw *r, const struct vol_geom *g,
		   struct lun *lun);

#define UNIT_SUITE(name, init, cleanup, tests)                        \
	static void __attribute__((constructor)) unit_reg_##tests(void) \
	{                                                               \
		unit_suite_add(name, init, cleanup, tests);             \
	}

#endif
