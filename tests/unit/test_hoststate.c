/*
 * The host state DB's close status, the channel from a vmfsd that is
 * unmounting to the `vmfs umount` waiting for it: what the daemon puts is
 * what umount takes, once, and only by the pid that put it; a message's
 * newlines do not break the record; mount-record lookups ignore it.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "vmfs/vmfsd.h"
#include "vmfs/vol.h"

#define VOL_UUID "0ba2bbfb-e6ee-47c7-a64a-d695df4b4e07"

/* The state directory holds only files (host.tch, lock files). */
static void state_dir_remove(const char *dir)
{
	char path[4096];
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			unlink(path);
		}
	closedir(d);
	rmdir(dir);
}

static void test_close_status(void)
{
	const char *dir = unit_tmp_path("state");
	struct vmfsd_close_status st = { .pid = 4242, .err = -EIO }, got;
	struct vmfsd_mount_rec rec;
	struct vmfsd_host *h;

	CU_ASSERT_FATAL(vmfsd_host_open(dir, &h) == 0);
	CU_ASSERT_EQUAL(vmfsd_host_close_status_take(h, VOL_UUID, 4242, &got),
			-ENOENT);
	snprintf(st.msg, sizeof(st.msg), "closing volume %s failed:\nsecond line",
		 VOL_UUID);
	CU_ASSERT_EQUAL(vmfsd_host_close_status_put(h, VOL_UUID, &st), 0);
	/* A record is not a mount. */
	CU_ASSERT_EQUAL(vmfsd_host_find(h, VOL_UUID, NULL, &rec), -ENOENT);
	/* Another daemon's status is not this unmount's. */
	CU_ASSERT_EQUAL(vmfsd_host_close_status_take(h, VOL_UUID, 4243, &got),
			-ENOENT);
	memset(&got, 0, sizeof(got));
	CU_ASSERT_EQUAL(vmfsd_host_close_status_take(h, VOL_UUID, 4242, &got), 0);
	CU_ASSERT_EQUAL(got.pid, 4242);
	CU_ASSERT_EQUAL(got.err, -EIO);
	CU_ASSERT_STRING_EQUAL(got.msg, "closing volume " VOL_UUID
			       " failed: second line");
	/* Taken: gone. */
	CU_ASSERT_EQUAL(vmfsd_host_close_status_take(h, VOL_UUID, 4242, &got),
			-ENOENT);

	/* A clean close, over an older record. */
	CU_ASSERT_EQUAL(vmfsd_host_close_status_put(h, VOL_UUID, &st), 0);
	st.pid = 4300;
	st.err = 0;
	st.msg[0] = '\0';
	CU_ASSERT_EQUAL(vmfsd_host_close_status_put(h, VOL_UUID, &st), 0);
	memset(&got, 0x55, sizeof(got));
	CU_ASSERT_EQUAL(vmfsd_host_close_status_take(h, VOL_UUID, 4300, &got), 0);
	CU_ASSERT_EQUAL(got.err, 0);
	CU_ASSERT_STRING_EQUAL(got.msg, "");

	CU_ASSERT_EQUAL(vmfsd_host_close_status_put(h, "not-a-uuid", &st), -EINVAL);
	vmfsd_host_close(h);
	state_dir_remove(dir);
}

static CU_TestInfo tests[] = {
	{ "close_status", test_close_status },
	CU_TEST_INFO_NULL
};

UNIT_SUITE("hoststate", NULL, NULL, tests);
