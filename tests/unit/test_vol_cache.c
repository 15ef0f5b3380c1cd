/*
 * The engine's cache budget (vol/cache.c): with a small budget, many
 * directories whose indexes together exceed it and files with pointer
 * blocks, the budgeted bytes (resource-cluster state + indexes + pointer
 * blocks) stay within it, an inode the kernel forgot leaves the cache at
 * once, and every name and every byte still reads back right -- from the
 * evicted caches, and again after a reopen.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "unit.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"

#define MIB (1024ull * 1024)
#define BUDGET MIB
#define NDIRS 16
#define PER_DIR 300     /* 22 chunks: ~100 KiB of index per directory */
#define KEEP_EVERY 50   /* files the "kernel" keeps referenced */
#define DATA_EVERY 7    /* files with a little inline data */
#define MAPPED_EVERY 97 /* files with blocks far apart (pointer blocks) */
/* Offsets of a mapped file's writes, in 1 MiB file blocks: a direct
 * pointer, one behind a single and one behind a double indirection (past
 * VMFS_NDIRECT + VMFS_PTRS_PER_BLK), so the file caches pointer blocks. */
static const uint64_t mapped_off[] = { 0, 300 * MIB, 1000 * MIB };

static struct lun *lun;
static struct vol *vol;
static const char *lun_path;
static uint64_t dir_ino[NDIRS];
static uint64_t file_ino[NDIRS][PER_DIR];

static void open_budget(uint64_t budget)
{
	struct vol_open_opts o = { .cache_bytes = budget };

	CU_ASSERT_FATAL(lun_open(lun_path, 0, &lun) == 0);
	CU_ASSERT_FATAL(vol_open_ex(lun, &o, &vol) == 0);
}

static void close_vol(void)
{
	CU_ASSERT_EQUAL(vol_close(vol), 0);
	lun_close(lun);
	vol = NULL;
	lun = NULL;
}

static int cleanup(void)
{
	if (vol)
		vol_close(vol);
	if (lun)
		lun_close(lun);
	vol = NULL;
	lun = NULL;
	return 0;
}

/* What a file holds, from its place: a line naming it. */
static int content(int d, int i, char *buf, size_t len)
{
	return snprintf(buf, len, "dir %d file %d: %u\n", d, i,
			(unsigned)(d * 7919 + i * 31));
}

/* The budgeted part stays within the budget; say where when it fails. */
static void check_budget(const char *where, int d)
{
	struct vol_cache_stats s;

	vol_cache_stats_get(vol, &s);
	if (s.fixed_bytes + s.index_bytes > s.budget_bytes)
		fprintf(stderr, "\n%s, directory %d: fixed %llu + indexes %llu > budget %llu\n",
			where, d, (unsigned long long)s.fixed_bytes,
			(unsigned long long)s.index_bytes,
			(unsigned long long)s.budget_bytes);
	CU_ASSERT(s.fixed_bytes + s.index_bytes <= s.budget_bytes);
	CU_ASSERT_EQUAL(s.used_bytes,
			s.fixed_bytes + s.index_bytes + s.inode_bytes);
}

static void fill_file(int d, int i, uint64_t ino)
{
	char buf[64];
	int n = content(d, i, buf, sizeof(buf));

	if (i % MAPPED_EVERY == 0) {
		for (size_t k = 0; k < sizeof(mapped_off) / sizeof(*mapped_off); k++)
			CU_ASSERT_EQUAL(vol_write(vol, ino, buf, (size_t)n,
						  mapped_off[k]), n);
	} else if (i % DATA_EVERY == 0) {
		CU_ASSERT_EQUAL(vol_write(vol, ino, buf, (size_t)n, 0), n);
	}
}

static void check_file(int d, int i)
{
	char name[32], want[64], got[64];
	int n = content(d, i, want, sizeof(want));
	struct vol_attr a;

	snprintf(name, sizeof(name), "f%04d", i);
	CU_ASSERT_EQUAL_FATAL(vol_lookup(vol, dir_ino[d], name, &a), 0);
	CU_ASSERT_EQUAL(a.ino, file_ino[d][i]);
	if (i % MAPPED_EVERY == 0) {
		CU_ASSERT_EQUAL(a.size, mapped_off[2] + (uint64_t)n);
		for (size_t k = 0; k < sizeof(mapped_off) / sizeof(*mapped_off); k++) {
			memset(got, 0, sizeof(got));
			CU_ASSERT_EQUAL(vol_read(vol, a.ino, got, (size_t)n,
						 mapped_off[k]), n);
			CU_ASSERT(!memcmp(got, want, (size_t)n));
		}
	} else if (i % DATA_EVERY == 0) {
		memset(got, 0, sizeof(got));
		CU_ASSERT_EQUAL(a.size, (uint64_t)n);
		CU_ASSERT_EQUAL(vol_read(vol, a.ino, got, sizeof(got), 0), n);
		CU_ASSERT(!memcmp(got, want, (size_t)n));
	} else {
		CU_ASSERT_EQUAL(a.size, 0);
	}
	vol_forget(vol, a.ino, 1);
}

/* Every name in every directory, as the kernel would after dropping its
 * caches: look up, read, forget. */
static void check_all(const char *where)
{
	for (int d = 0; d < NDIRS; d++) {
		for (int i = 0; i < PER_DIR; i++)
			check_file(d, i);
		check_budget(where, d);
	}
}

static void test_budget_holds(void)
{
	struct vol_mkfs_opts mo;
	struct vol_cache_stats s;
	struct vol_attr a;
	char name[32];

	lun_path = unit_tmp_path("cache.img");
	unit_scratch_opts(&mo);
	mo.max_hosts = 2;
	unit_scratch_mkfs(lun_path, 2048 * MIB, &mo, &lun);
	lun_close(lun);
	lun = NULL;

	/* 0 is the default budget. */
	open_budget(0);
	vol_cache_stats_get(vol, &s);
	CU_ASSERT_EQUAL(s.budget_bytes, VOL_CACHE_DEFAULT_BYTES);
	close_vol();

	open_budget(BUDGET);
	vol_cache_stats_get(vol, &s);
	CU_ASSERT_EQUAL(s.budget_bytes, BUDGET);
	/* The resource-cluster state is counted, and leaves room. */
	CU_ASSERT(s.fixed_bytes > 0 && s.fixed_bytes < BUDGET / 4);

	/*
	 * Directories stay referenced (a shell sitting in each); each new
	 * file's reference is dropped at once, as when the kernel is short
	 * of memory, except every KEEP_EVERY-th.
	 */
	for (int d = 0; d < NDIRS; d++) {
		snprintf(name, sizeof(name), "d%02d", d);
		CU_ASSERT_EQUAL_FATAL(vol_mkdir(vol, VMFS_ROOT_INO, name, 0755, 0, 0, &a), 0);
		dir_ino[d] = a.ino;
		for (int i = 0; i < PER_DIR; i++) {
			snprintf(name, sizeof(name), "f%04d", i);
			int ret = vol_create(vol, dir_ino[d], name,
					     S_IFREG | 0644, 0, 0, 0, &a);

			if (ret)
				fprintf(stderr, "\ncreate %s in directory %d: %d\n",
					name, d, ret);
			CU_ASSERT_EQUAL_FATAL(ret, 0);
			file_ino[d][i] = a.ino;
			fill_file(d, i, a.ino);
			if (i % KEEP_EVERY)
				vol_forget(vol, a.ino, 1);
		}
		check_budget("creating", d);
	}
	vol_cache_stats_get(vol, &s);
	/* The indexes did not all fit: some were dropped. */
	CU_ASSERT(s.evictions > 0);
	/* Forgotten inodes are gone; the root, the directories and the
	 * files still referenced stay. */
	CU_ASSERT_EQUAL(s.inodes, 1 + NDIRS + NDIRS * ((PER_DIR - 1) / KEEP_EVERY + 1));

	check_all("reading back");

	/* The kernel lets go of everything: only the root stays. */
	for (int d = 0; d < NDIRS; d++) {
		for (int i = 0; i < PER_DIR; i += KEEP_EVERY)
			vol_forget(vol, file_ino[d][i], 1);
		vol_forget(vol, dir_ino[d], 1);
	}
	vol_cache_stats_get(vol, &s);
	CU_ASSERT_EQUAL(s.inodes, 1);
	close_vol();
	CU_ASSERT(unit_fsck_clean(lun_path, "after the budget test"));

	/* Everything came from disk, not from a cache that hid a loss. */
	open_budget(BUDGET);
	for (int d = 0; d < NDIRS; d++) {
		snprintf(name, sizeof(name), "d%02d", d);
		CU_ASSERT_EQUAL_FATAL(vol_lookup(vol, VMFS_ROOT_INO, name, &a), 0);
		CU_ASSERT_EQUAL(a.ino, dir_ino[d]);
	}
	check_all("after reopen");
	close_vol();
}

static CU_TestInfo tests[] = {
	{ "budget_holds", test_budget_holds },
	CU_TEST_INFO_NULL
};

UNIT_SUITE("vol_cache", NULL, cleanup, tests);
