/*
 * Volume engine: mkfs layout, allocator, block maps, directories, file
 * data paths, namespace operations and persistence across reopen, on a
 * sparse LUN file.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include "unit.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"
#include "../../vol/vol_int.h"

#define MIB (1024ull * 1024)

static const char *lun_path;
static struct lun *lun;
static struct vol *vol;

/* Fresh volume of size bytes with small options, opened. */
static void fresh(uint64_t size)
{

	if (vol)
		vol_close(vol);
	if (lun)
		lun_close(lun);
	vol = NULL;
	lun = NULL;
	lun_path = unit_scratch_volume("vol.img", size, &lun);
	CU_ASSERT_FATAL(vol_open(lun, 0, &vol) == 0);
}

/* Close and reopen the volume (everything must come back from disk). */
static void reopen(void)
{
	CU_ASSERT_FATAL(vol_close(vol) == 0);
	vol = NULL;
	lun_close(lun);
	CU_ASSERT_FATAL(lun_open(lun_path, 0, &lun) == 0);
	CU_ASSERT_FATAL(vol_open(lun, 0, &vol) == 0);
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

static uint64_t mkfile(uint64_t parent, const char *name)
{
	struct vol_attr a;
	int ret = vol_create(vol, parent, name, S_IFREG | 0644, 0, 0, 0, &a);

	CU_ASSERT_EQUAL(ret, 0);
	return ret ? 0 : a.ino;
}

static void fill(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

static void test_mkfs_layout(void)
{
	struct vol_geom g;
	struct vol_attr a;
	struct vol_usage u;
	uint64_t need = 0;
	struct vol_mkfs_opts o;
	struct lun *small;
	const char *p = unit_tmp_path("tiny.img");
	int fd;

	fresh(2048 * MIB);
	vol_geom_get(vol, &g);
	CU_ASSERT_STRING_EQUAL(g.label, "unit");
	CU_ASSERT_EQUAL(g.max_hosts, 4);
	CU_ASSERT_EQUAL(g.file_block_size, MIB);
	CU_ASSERT(g.res[VMFS_RES_FILE].count > 1000);
	CU_ASSERT_EQUAL(vol_geom_check(&g, 2048 * MIB), 0);
	/* Areas do not overlap and are aligned. */
	for (int t = 1; t < VMFS_RES_NTYPES; t++)
		CU_ASSERT(g.res[t].hdr_offset >= g.res[t - 1].obj_offset +
			  g.res[t - 1].count * g.res[t - 1].obj_size);
	CU_ASSERT_EQUAL(g.res[VMFS_RES_FILE].obj_offset % MIB, 0);
	CU_ASSERT_EQUAL(vol_lookup(vol, VMFS_ROOT_INO, "lost+found", &a), 0);
	CU_ASSERT_EQUAL(a.ino, VMFS_LOSTFOUND_INO);
	CU_ASSERT(S_ISDIR(a.mode));
	vol_forget(vol, a.ino, 1);
	CU_ASSERT_EQUAL(vol_getattr(vol, VMFS_ROOT_INO, &a), 0);
	CU_ASSERT_EQUAL(a.nlink, 3);
	vol_usage_get(vol, &u);
	CU_ASSERT_EQUAL(u.used[VMFS_RES_INODE], 3);
	CU_ASSERT_EQUAL(u.used[VMFS_RES_SMALL], 1);
	CU_ASSERT_EQUAL(u.used[VMFS_RES_FILE], 0);

	/* Too small: refused with the size needed, nothing written. */
	fd = open(p, O_CREAT | O_TRUNC | O_RDWR, 0600);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(ftruncate(fd, 8 * MIB) == 0);
	close(fd);
	CU_ASSERT_FATAL(lun_open(p, 0, &small) == 0);
	vol_mkfs_opts_init(&o);
	CU_ASSERT_EQUAL(vol_mkfs(small, &o, &need), -VMFS_E_TOO_SMALL);
	CU_ASSERT(need > 64 * 16 * MIB);
	CU_ASSERT_EQUAL(vol_geom_read(small, &g, NULL, NULL), -VMFS_E_NOT_VOLUME);
	lun_close(small);
}

/* Layouts whose sums wrap past 2^64 must be refused (fuzzer finds). */
static void test_geom_wraps(void)
{
	struct vol_geom g, bad;
	const uint64_t size = 1024 * MIB;

	fresh(size);
	vol_geom_get(vol, &g);
	CU_ASSERT_EQUAL(vol_geom_check(&g, size), 0);
	bad = g;
	bad.journal_size_bytes = (UINT64_MAX / bad.max_hosts) & ~4095ull;
	CU_ASSERT_EQUAL(vol_geom_check(&bad, size), -VMFS_E_GEOMETRY);
	bad = g;
	bad.journal_offset = 0xfffffffffff00000ull;
	CU_ASSERT_EQUAL(vol_geom_check(&bad, size), -VMFS_E_GEOMETRY);
	bad = g;
	bad.res[VMFS_RES_FILE].obj_offset = 0 - 15 * MIB;
	CU_ASSERT_EQUAL(vol_geom_check(&bad, size), -VMFS_E_GEOMETRY);
	bad = g;
	bad.res[VMFS_RES_FILE].hdr_offset = 0xfffffffffffff000ull;
	CU_ASSERT_EQUAL(vol_geom_check(&bad, size), -VMFS_E_GEOMETRY);
}

static void test_header_backup(void)
{
	struct vol_geom g;
	uint8_t *junk = lun_buf_alloc(4096);
	int which = -1;

	fresh(1024 * MIB);
	vol_close(vol);
	vol = NULL;
	memset(junk, 0x5a, 4096);
	CU_ASSERT_FATAL(lun_write(lun, junk, 4096, 0) == 0);
	CU_ASSERT_EQUAL(vol_geom_read(lun, &g, &which, NULL), 0);
	CU_ASSERT_EQUAL(which, 1);
	CU_ASSERT_EQUAL(vol_open(lun, 0, &vol), 0);
	lun_buf_free(junk);
}

static void test_allocator(void)
{
	uint64_t idx[600];
	uint32_t got;
	struct vol_usage u0, u1;
	uint64_t nsmall;

	fresh(1024 * MIB);
	vol_usage_get(vol, &u0);
	CU_ASSERT_EQUAL(vol_res_alloc(vol, VMFS_RES_FILE, UINT64_MAX, idx, 600, &got), 0);
	CU_ASSERT_EQUAL(got, 600);
	/* Contiguous from an empty area, each exactly once. */
	for (int i = 1; i < 600; i++)
		CU_ASSERT_EQUAL(idx[i], idx[i - 1] + 1);
	reopen();
	vol_usage_get(vol, &u1);
	CU_ASSERT_EQUAL(u1.used[VMFS_RES_FILE], u0.used[VMFS_RES_FILE] + 600);
	CU_ASSERT_EQUAL(vol_res_free(vol, VMFS_RES_FILE, idx, 600), 0);
	reopen();
	vol_usage_get(vol, &u1);
	CU_ASSERT_EQUAL(u1.used[VMFS_RES_FILE], u0.used[VMFS_RES_FILE]);

	/* Exhaust the small blocks: partial grant, then ENOSPC. */
	nsmall = u1.total[VMFS_RES_SMALL] - u1.used[VMFS_RES_SMALL];
	{
		uint64_t *all = calloc(nsmall + 10, sizeof(*all));

		CU_ASSERT_EQUAL(vol_res_alloc(vol, VMFS_RES_SMALL, UINT64_MAX, all,
					  (uint32_t)nsmall + 10, &got), 0);
		CU_ASSERT_EQUAL(got, nsmall);
		CU_ASSERT_EQUAL(vol_res_alloc(vol, VMFS_RES_SMALL, UINT64_MAX, idx, 1,
					  &got), -ENOSPC);
		CU_ASSERT_EQUAL(vol_res_free(vol, VMFS_RES_SMALL, all, (uint32_t)nsmall), 0);
		free(all);
	}
}

static void test_bmap(void)
{
	struct vinode *vi;
	uint64_t ino, p;
	const uint64_t lbns[] = {
		0, 250, 251, 251 + 505, 251 + 506, 251 + 506 + 506 * 506 - 1,
		251 + 506 + 506 * 506, 251 + 506 + 506 * 506 + 506ull * 506 * 506,
		vol_bmap_max_blocks() - 1
	};
	const int n = sizeof(lbns) / sizeof(lbns[0]);
	struct vol_usage u0, u1;

	fresh(1024 * MIB);
	ino = mkfile(VMFS_ROOT_INO, "map");
	vol_usage_get(vol, &u0);
	CU_ASSERT_FATAL(vol_inode_get(vol, ino, &vi) == 0);
	pthread_rwlock_wrlock(&vi->rw);
	vi->map_type = VMFS_MAP_FILE;
	for (int i = 0; i < n; i++)
		CU_ASSERT_EQUAL(vol_bmap_set(vol, vi, lbns[i], 0x1000 + i, false), 0);
	CU_ASSERT_EQUAL(vol_bmap_set(vol, vi, vol_bmap_max_blocks(), 1, false), -EFBIG);
	CU_ASSERT_EQUAL(vol_inode_write(vol, vi), 0);
	pthread_rwlock_unlock(&vi->rw);
	vol_inode_put(vol, vi);
	vol_usage_get(vol, &u1);
	/* 1 + 2 + 3 + 4 pointer blocks for the four indirect trees used,
	 * and one more in each of two double-indirect subtrees. */
	CU_ASSERT(u1.used[VMFS_RES_PTRBLK] > u0.used[VMFS_RES_PTRBLK] + 9);

	reopen();
	CU_ASSERT_FATAL(vol_inode_get(vol, ino, &vi) == 0);
	pthread_rwlock_wrlock(&vi->rw);
	for (int i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(vol_bmap_get(vol, vi, lbns[i], &p), 0);
		CU_ASSERT_EQUAL(p, 0x1000u + i);
	}
	CU_ASSERT_EQUAL(vol_bmap_get(vol, vi, 252, &p), 0);
	CU_ASSERT_EQUAL(p, 0);
	/* Clear the fake pointers by hand (they are not real blocks), then
	 * free the range: every pointer block goes back. */
	for (int i = 0; i < n; i++)
		CU_ASSERT_EQUAL(vol_bmap_set(vol, vi, lbns[i], 0, false), 0);
	CU_ASSERT_EQUAL(vol_bmap_free_range(vol, vi, 0, UINT64_MAX), 0);
	pthread_rwlock_unlock(&vi->rw);
	vol_inode_put(vol, vi);
	vol_usage_get(vol, &u1);
	CU_ASSERT_EQUAL(u1.used[VMFS_RES_PTRBLK], u0.used[VMFS_RES_PTRBLK]);
}

static void test_dirs(void)
{
	char name[300];
	struct vol_attr a;
	uint64_t sub;
	int ret;

	fresh(1024 * MIB);
	CU_ASSERT_FATAL(vol_mkdir(vol, VMFS_ROOT_INO, "d", 0755, 0, 0, &a) == 0);
	sub = a.ino;
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "file-%04d", i);
		mkfile(sub, name);
	}
	CU_ASSERT_EQUAL(vol_create(vol, sub, "file-0007", S_IFREG | 0644, 0, 0,
				   0, &a), -EEXIST);
	for (int i = 0; i < 1000; i += 2) {
		snprintf(name, sizeof(name), "file-%04d", i);
		CU_ASSERT_EQUAL(vol_unlink(vol, sub, name), 0);
	}
	memset(name, 'x', 256);
	name[256] = 0;
	CU_ASSERT_EQUAL(vol_create(vol, sub, name, S_IFREG | 0644, 0, 0, 0, &a),
			-ENAMETOOLONG);
	CU_ASSERT_EQUAL(vol_lookup(vol, sub, name, &a), -ENAMETOOLONG);
	name[255] = 0;
	CU_ASSERT_EQUAL(vol_create(vol, sub, name, S_IFREG | 0644, 0, 0, 0, &a), 0);
	CU_ASSERT_EQUAL(vol_unlink(vol, sub, name), 0);
	reopen();
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "file-%04d", i);
		ret = vol_lookup(vol, sub, name, &a);
		CU_ASSERT_EQUAL(ret, i % 2 ? 0 : -ENOENT);
	}
	CU_ASSERT_EQUAL(vol_rmdir(vol, VMFS_ROOT_INO, "d"), -ENOTEMPTY);
}

struct count_ctx {
	int n;
	int stop_after;
	uint64_t last_cookie;
	char seen[2000];
};

static int count_cb(void *c, const char *name, const struct vol_attr *a,
		    uint64_t next)
{
	struct count_ctx *cc = c;
	int i;

	(void)a;
	if (cc->stop_after && cc->n == cc->stop_after)
		return 1;
	if (sscanf(name, "e%d", &i) == 1 && i >= 0 && i < 2000)
		cc->seen[i]++;
	cc->n++;
	cc->last_cookie = next;
	return 0;
}

static void test_readdir_cookies(void)
{
	char name[32];
	struct count_ctx cc;
	struct vol_attr a;
	uint64_t d;

	fresh(1024 * MIB);
	CU_ASSERT_FATAL(vol_mkdir(vol, VMFS_ROOT_INO, "r", 0755, 0, 0, &a) == 0);
	d = a.ino;
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "e%d", i);
		mkfile(d, name);
	}
	/* Read 40 entries, change the directory, resume: no entry that
	 * stayed is lost or repeated. */
	memset(&cc, 0, sizeof(cc));
	cc.stop_after = 42;
	CU_ASSERT_EQUAL(vol_readdir(vol, d, 0, false, count_cb, &cc), 0);
	CU_ASSERT_EQUAL(cc.n, 42);
	for (int i = 50; i < 60; i++) {
		snprintf(name, sizeof(name), "e%d", i);
		CU_ASSERT_EQUAL(vol_unlink(vol, d, name), 0);
	}
	cc.stop_after = 0;
	CU_ASSERT_EQUAL(vol_readdir(vol, d, cc.last_cookie, true, count_cb, &cc), 0);
	for (int i = 0; i < 100; i++)
		CU_ASSERT_EQUAL(cc.seen[i], i >= 50 && i < 60 ? 0 : 1);
}

static void test_file_data(void)
{
	enum { LEN = 5 * 1024 * 1024 + 777 };
	uint8_t *buf = malloc(LEN), *back = malloc(LEN);
	struct vol_attr a;
	uint64_t ino;

	fresh(1024 * MIB);
	ino = mkfile(VMFS_ROOT_INO, "data");
	fill(buf, LEN, 1);
	/* Grow through inline (2 KiB), small blocks and file blocks with
	 * unaligned pieces. */
	{
		size_t off = 0, step = 1000;

		while (off < LEN) {
			size_t n = off + step > LEN ? LEN - off : step;

			CU_ASSERT_EQUAL_FATAL(vol_write(vol, ino, buf + off, n, off),
					      (ssize_t)n);
			off += n;
			step = step * 3 + 1;
		}
	}
	CU_ASSERT_EQUAL(vol_getattr(vol, ino, &a), 0);
	CU_ASSERT_EQUAL(a.size, LEN);
	CU_ASSERT_EQUAL(a.blksize, MIB);
	reopen();
	memset(back, 0, LEN);
	CU_ASSERT_EQUAL(vol_read(vol, ino, back, LEN + 100, 0), LEN);
	CU_ASSERT(memcmp(buf, back, LEN) == 0);
	/* Overwrite in the middle across a block boundary. */
	memset(buf + MIB - 10, 0xee, 20);
	CU_ASSERT_EQUAL(vol_write(vol, ino, buf + MIB - 10, 20, MIB - 10), 20);
	CU_ASSERT_EQUAL(vol_read(vol, ino, back, LEN, 0), LEN);
	CU_ASSERT(memcmp(buf, back, LEN) == 0);
	free(buf);
	free(back);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* No file ever shows bytes another file left behind. */
static void test_no_stale_data(void)
{
	enum { LEN = 8 * 1024 * 1024 };
	uint8_t *buf = malloc(LEN);
	struct vol_setattr sa = { 0 };
	struct vol_attr a;
	uint64_t ino;

	fresh(1024 * MIB);
	ino = mkfile(VMFS_ROOT_INO, "secret");
	memset(buf, 0xab, LEN);
	CU_ASSERT_EQUAL(vol_write(vol, ino, buf, LEN, 0), LEN);
	CU_ASSERT_EQUAL(vol_unlink(vol, VMFS_ROOT_INO, "secret"), 0);
	vol_forget(vol, ino, 1);

	/* thin file written sparsely, zeroedthick-style fallocate, truncate
	 * grow, and a punched then partly rewritten block */
	ino = mkfile(VMFS_ROOT_INO, "thin");
	CU_ASSERT_EQUAL(vol_write(vol, ino, "x", 1, 3 * MIB + 5), 1);
	CU_ASSERT_EQUAL(vol_read(vol, ino, buf, LEN, 0), 3 * MIB + 6);
	buf[3 * MIB + 5] = 0;
	CU_ASSERT(all_zero(buf, 3 * MIB + 6));

	ino = mkfile(VMFS_ROOT_INO, "zt");
	CU_ASSERT_EQUAL(vol_fallocate(vol, ino, 0, 0, LEN), 0);
	CU_ASSERT_EQUAL(vol_getattr(vol, ino, &a), 0);
	CU_ASSERT(a.alloc_bytes >= LEN);
	CU_ASSERT_EQUAL(vol_read(vol, ino, buf, LEN, 0), LEN);
	CU_ASSERT(all_zero(buf, LEN));
	CU_ASSERT_EQUAL(vol_write(vol, ino, "y", 1, MIB + 100), 1);
	CU_ASSERT_EQUAL(vol_read(vol, ino, buf, LEN, 0), LEN);
	CU_ASSERT_EQUAL(buf[MIB + 100], 'y');
	buf[MIB + 100] = 0;
	CU_ASSERT(all_zero(buf, LEN));

	ino = mkfile(VMFS_ROOT_INO, "grow");
	CU_ASSERT_EQUAL(vol_write(vol, ino, "abc", 3, 0), 3);
	sa.size = 5 * MIB;
	CU_ASSERT_EQUAL(vol_setattr(vol, ino, &sa, VOL_SET_SIZE, &a), 0);
	CU_ASSERT_EQUAL(vol_read(vol, ino, buf, LEN, 0), 5 * MIB);
	CU_ASSERT(memcmp(buf, "abc", 3) == 0);
	CU_ASSERT(all_zero(buf + 3, 5 * MIB - 3));

	/* Truncate down inside a block, then grow: the tail reads zero. */
	memset(buf, 0xcd, 2 * MIB);
	CU_ASSERT_EQUAL(vol_write(vol, ino, buf, 2 * MIB, 0), 2 * MIB);
	sa.size = MIB + 3;
	CU_ASSERT_EQUAL(vol_setattr(vol, ino, &sa, VOL_SET_SIZE, &a), 0);
	sa.size = 2 * MIB;
	CU_ASSERT_EQUAL(vol_setattr(vol, ino, &sa, VOL_SET_SIZE, &a), 0);
	CU_ASSERT_EQUAL(vol_read(vol, ino, buf, 2 * MIB, 0), 2 * MIB);
	CU_ASSERT(all_zero(buf + MIB + 3, MIB - 3));
	CU_ASSERT_EQUAL(buf[MIB + 2], 0xcd);

	/* Punch a hole across blocks: zeros inside, data outside kept. */
	memset(buf, 0xcd, 2 * MIB);
	CU_ASSERT_EQUAL(vol_write(vol, ino, buf, 2 * MIB, 0), 2 * MIB);
	CU_ASSERT_EQUAL(vol_fallocate(vol, ino, FALLOC_FL_PUNCH_HOLE |
				      FALLOC_FL_KEEP_SIZE, 100, MIB + 50), 0);
	CU_ASSERT_EQUAL(vol_read(vol, ino, buf, 2 * MIB, 0), 2 * MIB);
	CU_ASSERT_EQUAL(buf[99], 0xcd);
	CU_ASSERT(all_zero(buf + 100, MIB + 50));
	CU_ASSERT_EQUAL(buf[MIB + 150], 0xcd);
	CU_ASSERT_EQUAL(vol_fallocate(vol, ino, FALLOC_FL_PUNCH_HOLE, 0, 10),
			-EINVAL);
	free(buf);
}

static void test_eager_zero(void)
{
	enum { LEN = 6 * 1024 * 1024 };
	uint8_t *buf = malloc(LEN);
	struct vol_attr a;
	uint64_t ino;

	fresh(1024 * MIB);
	ino = mkfile(VMFS_ROOT_INO, "ezt");
	CU_ASSERT_EQUAL(vol_fallocate(vol, ino, FALLOC_FL_ZERO_RANGE, 0, LEN), 0);
	CU_ASSERT_EQUAL(vol_getattr(vol, ino, &a), 0);
	CU_ASSERT_EQUAL(a.size, LEN);
	CU_ASSERT(a.alloc_bytes >= LEN);
	CU_ASSERT_EQUAL(vol_read(vol, ino, buf, LEN, 0), LEN);
	CU_ASSERT(all_zero(buf, LEN));
	/* Eager blocks are written blocks: no TBZ left. */
	{
		struct vinode *vi;
		uint64_t p;

		CU_ASSERT_FATAL(vol_inode_get(vol, ino, &vi) == 0);
		for (uint64_t l = 0; l < LEN / MIB; l++) {
			CU_ASSERT_EQUAL(vol_bmap_get(vol, vi, l, &p), 0);
			CU_ASSERT(p && !(p & VMFS_PTR_TBZ));
		}
		vol_inode_put(vol, vi);
	}
	CU_ASSERT_EQUAL(vol_fallocate(vol, ino, 0x80, 0, 1), -EOPNOTSUPP);
	free(buf);
}

static void test_namespace(void)
{
	struct vol_attr a, b;
	uint64_t d1, d2, f;
	char buf[64];

	fresh(1024 * MIB);
	CU_ASSERT_FATAL(vol_mkdir(vol, VMFS_ROOT_INO, "d1", 0755, 0, 0, &a) == 0);
	d1 = a.ino;
	CU_ASSERT_FATAL(vol_mkdir(vol, VMFS_ROOT_INO, "d2", 0755, 0, 0, &a) == 0);
	d2 = a.ino;
	f = mkfile(d1, "f");
	CU_ASSERT_EQUAL(vol_link(vol, f, d2, "hard", &a), 0);
	CU_ASSERT_EQUAL(a.nlink, 2);
	CU_ASSERT_EQUAL(vol_symlink(vol, d2, "sym", "../d1/f", 0, 0, &a), 0);
	CU_ASSERT_EQUAL(vol_readlink(vol, a.ino, buf, sizeof(buf)), 7);
	CU_ASSERT(memcmp(buf, "../d1/f", 7) == 0);

	/* rename across directories, over an existing file */
	mkfile(d2, "victim");
	CU_ASSERT_EQUAL(vol_rename(vol, d1, "f", d2, "victim", 0), 0);
	CU_ASSERT_EQUAL(vol_lookup(vol, d2, "victim", &a), 0);
	CU_ASSERT_EQUAL(a.ino, f);
	CU_ASSERT_EQUAL(vol_lookup(vol, d1, "f", &a), -ENOENT);
	/* NOREPLACE and EXCHANGE */
	mkfile(d1, "other");
	CU_ASSERT_EQUAL(vol_rename(vol, d2, "victim", d1, "other",
				   VOL_RENAME_NOREPLACE), -EEXIST);
	CU_ASSERT_EQUAL(vol_lookup(vol, d1, "other", &b), 0);
	CU_ASSERT_EQUAL(vol_rename(vol, d2, "victim", d1, "other",
				   VOL_RENAME_EXCHANGE), 0);
	CU_ASSERT_EQUAL(vol_lookup(vol, d1, "other", &a), 0);
	CU_ASSERT_EQUAL(a.ino, f);
	CU_ASSERT_EQUAL(vol_lookup(vol, d2, "victim", &a), 0);
	CU_ASSERT_EQUAL(a.ino, b.ino);
	CU_ASSERT_EQUAL(vol_rename(vol, d2, "nothere", d1, "x",
				   VOL_RENAME_EXCHANGE), -ENOENT);
	/* directories: into own subtree refused; link counts follow moves */
	CU_ASSERT_EQUAL(vol_mkdir(vol, d1, "sub", 0755, 0, 0, &a), 0);
	CU_ASSERT_EQUAL(vol_rename(vol, VMFS_ROOT_INO, "d1", a.ino, "loop", 0),
			-EINVAL);
	CU_ASSERT_EQUAL(vol_getattr(vol, d1, &a), 0);
	CU_ASSERT_EQUAL(a.nlink, 3);
	CU_ASSERT_EQUAL(vol_rename(vol, d1, "sub", d2, "sub", 0), 0);
	CU_ASSERT_EQUAL(vol_getattr(vol, d1, &a), 0);
	CU_ASSERT_EQUAL(a.nlink, 2);
	CU_ASSERT_EQUAL(vol_getattr(vol, d2, &a), 0);
	CU_ASSERT_EQUAL(a.nlink, 3);
	CU_ASSERT_EQUAL(vol_lookup(vol, d2, "sub", &a), 0);
	CU_ASSERT_EQUAL(vol_lookup(vol, a.ino, "..", &b), 0);
	CU_ASSERT_EQUAL(b.ino, d2);
	/* dir over non-dir and back */
	CU_ASSERT_EQUAL(vol_rename(vol, d2, "sub", d1, "other", 0), -ENOTDIR);
	CU_ASSERT_EQUAL(vol_rename(vol, d1, "other", d2, "sub", 0), -EISDIR);
	reopen();
	CU_ASSERT_EQUAL(vol_lookup(vol, d2, "sub", &a), 0);
	CU_ASSERT_EQUAL(vol_rmdir(vol, d2, "sub"), 0);
	CU_ASSERT_EQUAL(vol_getattr(vol, d2, &a), 0);
	CU_ASSERT_EQUAL(a.nlink, 2);
}

/* An unlinked file stays readable while referenced, then is freed. */
static void test_unlink_open(void)
{
	struct vol_usage u0, u1;
	char buf[8];
	uint64_t ino;

	fresh(1024 * MIB);
	vol_usage_get(vol, &u0);
	ino = mkfile(VMFS_ROOT_INO, "open");
	{
		static uint8_t big[3 * 1024 * 1024];

		memset(big, 1, sizeof(big));
		CU_ASSERT_EQUAL(vol_write(vol, ino, big, sizeof(big), 0),
				(ssize_t)sizeof(big));
	}
	CU_ASSERT_EQUAL(vol_unlink(vol, VMFS_ROOT_INO, "open"), 0);
	CU_ASSERT_EQUAL(vol_read(vol, ino, buf, 8, 0), 8);
	CU_ASSERT_EQUAL(buf[0], 1);
	vol_forget(vol, ino, 1);
	vol_usage_get(vol, &u1);
	CU_ASSERT_EQUAL(u1.used[VMFS_RES_INODE], u0.used[VMFS_RES_INODE]);
	CU_ASSERT_EQUAL(u1.used[VMFS_RES_FILE], u0.used[VMFS_RES_FILE]);
	CU_ASSERT_EQUAL(vol_read(vol, ino, buf, 8, 0), -ESTALE);
}

static void test_xattrs(void)
{
	char buf[2048];
	uint64_t ino;

	fresh(1024 * MIB);
	ino = mkfile(VMFS_ROOT_INO, "x");
	CU_ASSERT_EQUAL(vol_setxattr(vol, ino, "user.a", "1", 1, 0), 0);
	CU_ASSERT_EQUAL(vol_setxattr(vol, ino, "user.b", "22", 2, 0), 0);
	CU_ASSERT_EQUAL(vol_setxattr(vol, ino, "user.a", "x", 1, XATTR_CREATE),
			-EEXIST);
	CU_ASSERT_EQUAL(vol_setxattr(vol, ino, "user.c", "x", 1, XATTR_REPLACE),
			-ENODATA);
	CU_ASSERT_EQUAL(vol_setxattr(vol, ino, "user.a", "333", 3, XATTR_REPLACE), 0);
	CU_ASSERT_EQUAL(vol_getxattr(vol, ino, "user.a", NULL, 0), 3);
	CU_ASSERT_EQUAL(vol_getxattr(vol, ino, "user.a", buf, 2), -ERANGE);
	reopen();
	CU_ASSERT_EQUAL(vol_getxattr(vol, ino, "user.a", buf, sizeof(buf)), 3);
	CU_ASSERT(memcmp(buf, "333", 3) == 0);
	CU_ASSERT_EQUAL(vol_listxattr(vol, ino, buf, sizeof(buf)), 14);
	CU_ASSERT(memcmp(buf, "user.b\0user.a\0", 14) == 0);
	CU_ASSERT_EQUAL(vol_removexattr(vol, ino, "user.b"), 0);
	CU_ASSERT_EQUAL(vol_getxattr(vol, ino, "user.b", buf, 10), -ENODATA);
	memset(buf, 'v', sizeof(buf));
	CU_ASSERT_EQUAL(vol_setxattr(vol, ino, "user.big", buf, 1400, 0), -E2BIG);
	CU_ASSERT_EQUAL(vol_setxattr(vol, ino, "user.big", buf, 1270, 0), -ENOSPC);
	CU_ASSERT_EQUAL(vol_getxattr(vol, ino, "user.a", buf, sizeof(buf)), 3);
}

/* Fill the volume: ENOSPC, and everything written before survives. */
static void test_enospc(void)
{
	static uint8_t chunk[1024 * 1024];
	uint64_t ino, written = 0, f0 = 0;
	ssize_t r = 0;
	int files = 0;

	fresh(400 * MIB);
	fill(chunk, sizeof(chunk), 9);
	while (r >= 0) {
		char name[32];
		uint64_t off = 0;

		snprintf(name, sizeof(name), "f%d", files++);
		ino = mkfile(VMFS_ROOT_INO, name);
		for (int i = 0; i < 64; i++) {
			r = vol_write(vol, ino, chunk, sizeof(chunk), off);
			if (r != (ssize_t)sizeof(chunk))
				break;
			off += r;
			written += r;
		}
		if (r != (ssize_t)sizeof(chunk))
			break;
	}
	CU_ASSERT_EQUAL(r, -ENOSPC);
	CU_ASSERT(written > 100 * MIB);
	reopen();
	{
		static uint8_t back[1024 * 1024];
		uint64_t seen = 0;

		for (int f = 0; f < files; f++) {
			char name[32];
			struct vol_attr a;

			snprintf(name, sizeof(name), "f%d", f);
			CU_ASSERT_FATAL(vol_lookup(vol, VMFS_ROOT_INO, name, &a) == 0);
			if (f == 0)
				f0 = a.ino;
			for (uint64_t off = 0; off + sizeof(back) <= a.size;
			     off += sizeof(back)) {
				CU_ASSERT_EQUAL(vol_read(vol, a.ino, back, sizeof(back), off),
						(ssize_t)sizeof(back));
				CU_ASSERT(memcmp(back, chunk, sizeof(back)) == 0);
				seen += sizeof(back);
			}
		}
		CU_ASSERT_EQUAL(seen, written);
	}
	/* Freeing space lets writes succeed again. */
	CU_ASSERT_EQUAL(vol_unlink(vol, VMFS_ROOT_INO, "f0"), 0);
	vol_forget(vol, f0, 1);
	ino = mkfile(VMFS_ROOT_INO, "again");
	CU_ASSERT_EQUAL(vol_write(vol, ino, chunk, sizeof(chunk), 0),
			(ssize_t)sizeof(chunk));
}

/*
 * Inode slots are read ahead in batches when one is allocated (vol/inode.c
 * ira_read).  A slot freed and used again while its last life is only in
 * the journal (not yet written home) must start from that life: each new
 * life's generation is past the one before, never equal to it.
 */
static void test_inode_slot_reuse(void)
{
	struct vol_attr f[3], g;
	char name[16];

	fresh(256 * MIB);
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		CU_ASSERT_EQUAL_FATAL(vol_create(vol, VMFS_ROOT_INO, name,
						 S_IFREG | 0644, 0, 0, 0, &f[i]), 0);
	}
	CU_ASSERT_EQUAL(f[1].ino, f[0].ino + 1);
	CU_ASSERT_EQUAL(f[2].ino, f[0].ino + 2);
	for (int round = 0; round < 4; round++) {
		CU_ASSERT_EQUAL_FATAL(vol_unlink(vol, VMFS_ROOT_INO, "f1"), 0);
		vol_forget(vol, f[1].ino, 1);
		CU_ASSERT_EQUAL_FATAL(vol_create(vol, VMFS_ROOT_INO, "f1",
						 S_IFREG | 0644, 0, 0, 0, &g), 0);
		CU_ASSERT_EQUAL(g.ino, f[1].ino);
		CU_ASSERT(g.generation > f[1].generation);
		f[1] = g;
	}
	for (int i = 0; i < 3; i++)
		vol_forget(vol, f[i].ino, 1);
	CU_ASSERT_EQUAL(cleanup(), 0);
	CU_ASSERT(unit_fsck_clean(lun_path, "after slots used again"));
}

static CU_TestInfo tests[] = {
	{ "mkfs_layout", test_mkfs_layout },
	{ "geom_wraps", test_geom_wraps },
	{ "header_backup", test_header_backup },
	{ "allocator", test_allocator },
	{ "bmap", test_bmap },
	{ "dirs", test_dirs },
	{ "readdir_cookies", test_readdir_cookies },
	{ "file_data", test_file_data },
	{ "no_stale_data", test_no_stale_data },
	{ "eager_zero", test_eager_zero },
	{ "namespace", test_namespace },
	{ "unlink_open", test_unlink_open },
	{ "xattrs", test_xattrs },
	{ "enospc", test_enospc },
	{ "inode_slot_reuse", test_inode_slot_reuse },
	CU_TEST_INFO_NULL
};

UNIT_SUITE("vol", NULL, cleanup, tests);
