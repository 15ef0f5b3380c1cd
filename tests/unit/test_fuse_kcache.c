/*
 * The FUSE adapter's record of what the kernel caches (fuse/kcache.c),
 * driven without a mount: one host alone on a volume (so the engine lets
 * the kernel keep anything, vol_kcache_hold) and the adapter's tables
 * with no session to notify.  docs/OPERATIONS.md promises a limit of
 * VFUSE_KC_MAX (262,144) names and inodes kept by the kernel: past it,
 * replies get timeouts of zero.
 */
#include <stdio.h>
#include <string.h>
#include "unit.h"
#include "uhost.h"
#include "../../fuse/vfuse_int.h"

static struct uhost host;

static int cleanup(void)
{
	return uhost_down(&host);
}

/*
 * Each grant of a new name and a new inode records two: the limit is
 * reached after VFUSE_KC_MAX / 2 of them, and every grant after that lets
 * the kernel keep nothing (neither a new name nor new attributes) while
 * what is recorded already may still be granted again.
 */
static void test_limit(void)
{
	struct vfuse f;
	uint64_t names, inodes, forgotten, expired, epoch, first_refused = 0, n;
	double et, at;
	char name[32];

	_Static_assert(VFUSE_KC_MAX == 262144, "OPERATIONS.md says 262,144");
	uhost_volume("kcache.img");
	uhost_up(&host, 0, false);
	CU_ASSERT_FATAL(!vol_cluster_is_shared(host.v));
	memset(&f, 0, sizeof(f));
	f.v = host.v;
	CU_ASSERT_EQUAL_FATAL(vfuse_kc_init(&f), 0);

	epoch = vfuse_kc_epoch(&f);
	for (n = 0; n < VFUSE_KC_MAX / 2 + 100; n++) {
		snprintf(name, sizeof(name), "f%llu", (unsigned long long)n);
		vfuse_kc_lock(&f);
		vfuse_kc_grant(&f, VMFS_ROOT_INO, name, 1000 + n, epoch, &et,
			       &at);
		vfuse_kc_unlock(&f);
		if (et == 0.0 && at == 0.0) {
			if (!first_refused)
				first_refused = n;
		} else if (first_refused) {
			CU_FAIL("a grant past the limit let the kernel keep something");
			break;
		}
	}
	vfuse_kc_stats(&f, &names, &inodes, &forgotten, &expired);
	/* The root's inode is recorded once, as the names' directory. */
	CU_ASSERT(names + inodes <= VFUSE_KC_MAX);
	CU_ASSERT(names + inodes >= VFUSE_KC_MAX - 1);
	CU_ASSERT(first_refused >= VFUSE_KC_MAX / 2 - 1);
	CU_ASSERT(first_refused <= VFUSE_KC_MAX / 2);
	/* A name the tables hold already is granted again. */
	vfuse_kc_lock(&f);
	vfuse_kc_grant(&f, VMFS_ROOT_INO, "f0", 1000, epoch, &et, &at);
	vfuse_kc_unlock(&f);
	CU_ASSERT(et > 0.0 && at > 0.0);
	/* Forgetting one inode makes room for one more. */
	vfuse_kc_forget(&f, 1000, vfuse_kc_stamp(&f));
	vfuse_kc_lock(&f);
	vfuse_kc_grant(&f, VMFS_ROOT_INO, "new", 999, epoch, &et, &at);
	vfuse_kc_unlock(&f);
	CU_ASSERT(et > 0.0 && at > 0.0);

	vfuse_kc_fini(&f);
	CU_ASSERT_EQUAL(cleanup(), 0);
}

static CU_TestInfo tests[] = {
	{ "limit", test_limit },
	CU_TEST_INFO_NULL
};

UNIT_SUITE("fuse_kcache", NULL, cleanup, tests);
