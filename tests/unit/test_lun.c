/*
 * The lun component: the file backend (open, geometry, O_DIRECT I/O
 * through libaio, zero_range, RESERVE/RELEASE and COMPARE AND WRITE on OFD
 * locks).  The fault wrapper is test_lun_fault.c.
 *
 * Every test works on its own sparse scratch file (unit_tmp_path) and
 * checks what reached the file, not only what the lun API says: reads go
 * through a second handle or a plain pread().  Timing is asserted only as
 * a lower bound (a configured delay or wait did happen), never as a speed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"
#include "vmfs/lun.h"
#include "lun_scratch.h"

/* ---- open and geometry -------------------------------------------------- */

static void test_open_sparse(void)
{
	const char *path = mkfile("sparse", LUN_BYTES);
	struct lun *lun = open_lun(path);
	uint32_t ss = lun_sector_size(lun);
	char spec[512];
	struct lun *lun2 = NULL;

	CU_ASSERT_EQUAL(lun_size(lun), LUN_BYTES);
	CU_ASSERT(ss == 512 || ss == 4096);
	CU_ASSERT_STRING_EQUAL(lun_name(lun), path);
	printf("[sector size %u] ", ss);

	snprintf(spec, sizeof(spec), "file:%s", path);
	CU_ASSERT_EQUAL(lun_open(spec, LUN_RDONLY, &lun2), 0);
	CU_ASSERT_EQUAL(lun_size(lun2), LUN_BYTES);
	CU_ASSERT_EQUAL(lun_sector_size(lun2), ss);
	CU_ASSERT_STRING_EQUAL(lun_name(lun2), path);
	lun_close(lun2);
	lun_close(lun);
}

/*
 * A LUN enlarged under an open handle (truncate -s, lvextend): I/O past
 * the old end asks for the new size once and goes through; a LUN that
 * shrank keeps the handle's size and says so.  The fault wrapper follows
 * its inner LUN.
 */
static void test_size_refresh(void)
{
	const char *path = mkfile("refresh", LUN_BYTES);
	struct lun *lun = open_lun(path), *fl;
	void *buf = lun_buf_alloc(4096);
	uint64_t seen = 0;
	int fd;

	CU_ASSERT_FATAL(buf != NULL);
	CU_ASSERT_FATAL(lun_fault_wrap(open_lun(path), &fl) == 0);
	memset(buf, 0xa5, 4096);
	CU_ASSERT_EQUAL(lun_read(lun, buf, 4096, LUN_BYTES), -EINVAL);
	fd = open(path, O_RDWR);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(ftruncate(fd, 2 * LUN_BYTES + 100) == 0);
	CU_ASSERT_EQUAL(lun_size(lun), LUN_BYTES);
	CU_ASSERT_EQUAL(lun_write(lun, buf, 4096, LUN_BYTES), 0);
	CU_ASSERT_EQUAL(lun_size(lun), 2 * LUN_BYTES);
	CU_ASSERT_EQUAL(lun_read(fl, buf, 4096, 2 * LUN_BYTES - 4096), 0);
	CU_ASSERT_EQUAL(lun_size(fl), 2 * LUN_BYTES);
	CU_ASSERT_EQUAL(lun_read(lun, buf, 4096, 2 * LUN_BYTES), -EINVAL);
	CU_ASSERT_FATAL(ftruncate(fd, LUN_BYTES) == 0);
	CU_ASSERT_EQUAL(lun_size_refresh(lun, &seen), -VMFS_E_LUN_SHRUNK);
	CU_ASSERT_EQUAL(seen, LUN_BYTES);
	CU_ASSERT_EQUAL(lun_size(lun), 2 * LUN_BYTES);
	seen = 0;
	CU_ASSERT_EQUAL(lun_size_refresh(fl, &seen), -VMFS_E_LUN_SHRUNK);
	CU_ASSERT_EQUAL(seen, LUN_BYTES);
	close(fd);
	lun_buf_free(buf);
	lun_close(fl);
	lun_close(lun);
}

/* O_DIRECT cannot reach a partial last sector: it is not part of the lun. */
static void test_open_partial_sector(void)
{
	const char *path = mkfile("partial", MiB + 100);
	struct lun *lun = open_lun(path);

	CU_ASSERT_EQUAL(lun_size(lun), MiB);
	lun_close(lun);
}

static void test_open_errors(void)
{
	const char *dir = unit_tmp_path("dir");
	const char *path = mkfile("errs", MiB);
	struct lun *lun = (struct lun *)1;

	CU_ASSERT_EQUAL(lun_open(unit_tmp_path("missing"), 0, &lun), -ENOENT);
	CU_ASSERT_PTR_NULL(lun);
	CU_ASSERT_EQUAL(lun_open("file:/nonexistent/x", 0, &lun), -ENOENT);

	CU_ASSERT_FATAL(mkdir(dir, 0700) == 0);
	CU_ASSERT_EQUAL(lun_open(dir, 0, &lun), -EISDIR);
	CU_ASSERT_EQUAL(lun_open(dir, LUN_RDONLY, &lun), -EISDIR);
	rmdir(dir);

	CU_ASSERT_EQUAL(lun_open("/dev/null", 0, &lun), -ENOTBLK);
	/* An iscsi:// URL without IQN or LUN; nothing listens on port 1 of
	 * the loopback: both fail before any traffic leaves this host. */
	CU_ASSERT_EQUAL(lun_open("iscsi://10.99.0.1/", 0, &lun),
			-VMFS_E_ISCSI_URL);
	CU_ASSERT_EQUAL(lun_open("iscsi://127.0.0.1:1/iqn.2024-01.vmfs:t/1",
				 0, &lun), -VMFS_E_ISCSI_PORTAL);
	CU_ASSERT_EQUAL(lun_open("nbd://host/x", 0, &lun), -VMFS_E_BAD_SPEC);
	CU_ASSERT_EQUAL(lun_open("file:", 0, &lun), -VMFS_E_BAD_SPEC);
	CU_ASSERT_EQUAL(lun_open("", 0, &lun), -VMFS_E_BAD_SPEC);
	CU_ASSERT_EQUAL(lun_open(path, 0x100, &lun), -EINVAL);
	CU_ASSERT_EQUAL(lun_open(NULL, 0, &lun), -EINVAL);
	CU_ASSERT_PTR_NULL(lun);
	CU_ASSERT_PTR_NOT_NULL(strstr(vmfs_strerror(-VMFS_E_BAD_SPEC),
				      "iscsi://PORTAL"));
}

/* ---- LUN specs (one grammar: lun_open, vmfs mount, vmfsd --lun) ------- */

static void test_spec_parse(void)
{
	static const struct {
		const char *spec;
		int ret;
		enum lun_spec_kind kind;
		const char *path;
		bool file_prefix;
	} cases[] = {
		{ "/dev/sdb", 0, LUN_SPEC_PATH, "/dev/sdb", false },
		{ "vol.img", 0, LUN_SPEC_PATH, "vol.img", false },
		{ "file:/tmp/v", 0, LUN_SPEC_PATH, "/tmp/v", true },
		{ "file:rel", 0, LUN_SPEC_PATH, "rel", true },
		{ "iscsi://10.0.0.1/iqn.x/1", 0, LUN_SPEC_URL, NULL, false },
		{ "nbd+unix://x", 0, LUN_SPEC_URL, NULL, false },
		/* Not a scheme before "://": a relative path. */
		{ "dir/a://b", 0, LUN_SPEC_PATH, "dir/a://b", false },
		{ "ISCSI://x", 0, LUN_SPEC_PATH, "ISCSI://x", false },
		{ "://x", 0, LUN_SPEC_PATH, "://x", false },
		{ "", -VMFS_E_BAD_SPEC, 0, NULL, false },
		{ "file:", -VMFS_E_BAD_SPEC, 0, NULL, false },
	};
	struct lun_spec ls;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret = lun_spec_parse(cases[i].spec, &ls);

		CU_ASSERT_EQUAL(ret, cases[i].ret);
		if (ret)
			continue;
		CU_ASSERT_EQUAL(ls.kind, cases[i].kind);
		CU_ASSERT_EQUAL(ls.file_prefix, cases[i].file_prefix);
		if (cases[i].path)
			CU_ASSERT_STRING_EQUAL(ls.path, cases[i].path);
	}
	CU_ASSERT_EQUAL(lun_spec_parse(NULL, &ls), -EINVAL);
}

static void test_spec_abspath(void)
{
	const char *path = mkfile("spec", MiB);
	char cwd[PATH_MAX], want[PATH_MAX + 16], buf[PATH_MAX + 16], small[8];
	char *dir = strdup(path), *base = strrchr(dir, '/');

	CU_ASSERT_FATAL(getcwd(cwd, sizeof(cwd)) != NULL);
	CU_ASSERT_FATAL(base != NULL);
	*base++ = '\0';
	CU_ASSERT_FATAL(chdir(dir) == 0);

	/* An existing file, bare or with file:, through a symlink too. */
	CU_ASSERT_EQUAL(lun_spec_abspath(base, buf, sizeof(buf)), 0);
	CU_ASSERT_FATAL(realpath(path, want) != NULL);
	CU_ASSERT_STRING_EQUAL(buf, want);
	CU_ASSERT_FATAL(symlink(base, "spec.link") == 0);
	CU_ASSERT_EQUAL(lun_spec_abspath("file:spec.link", buf, sizeof(buf)), 0);
	CU_ASSERT_EQUAL(strncmp(buf, "file:", 5), 0);
	CU_ASSERT_STRING_EQUAL(buf + 5, want);
	unlink("spec.link");

	/* Not there yet: made absolute, not resolved. */
	CU_ASSERT_EQUAL(lun_spec_abspath("file:new.img", buf, sizeof(buf)), 0);
	CU_ASSERT_FATAL(getcwd(want, sizeof(want)) != NULL);
	strcat(want, "/new.img");
	CU_ASSERT_STRING_EQUAL(buf + 5, want);
	CU_ASSERT_EQUAL(strncmp(buf, "file:", 5), 0);
	CU_ASSERT_EQUAL(lun_spec_abspath("/no/such/lun", buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "/no/such/lun");

	/* URLs as they are; bad specs and short buffers refused. */
	CU_ASSERT_EQUAL(lun_spec_abspath("iscsi://h/t/1", buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "iscsi://h/t/1");
	CU_ASSERT_EQUAL(lun_spec_abspath("file:", buf, sizeof(buf)),
			-VMFS_E_BAD_SPEC);
	CU_ASSERT_EQUAL(lun_spec_abspath("", buf, sizeof(buf)), -VMFS_E_BAD_SPEC);
	CU_ASSERT_EQUAL(lun_spec_abspath("/dev/sdb", small, sizeof(small)),
			-ENAMETOOLONG);

	CU_ASSERT_FATAL(chdir(cwd) == 0);
	free(dir);
}

static void test_buf_alloc(void)
{
	void *b = lun_buf_alloc(12345);

	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL((uintptr_t)b % 4096, 0);
	memset(b, 1, 12345);
	lun_buf_free(b);
	lun_buf_free(NULL);
}

/* The 4 KiB pool (lun/bufpool.c).  It is the process's, shared with
 * every other test, so counts are compared before and after. */
#define POOL_TEST_BLOCKS 1200   /* more than two 512-block chunks */

static bool page_resident(const void *p)
{
	unsigned char v = 0;

	CU_ASSERT_EQUAL(mincore((void *)p, 4096, &v), 0);
	return v & 1;
}

static void test_buf_pool(void)
{
	static uint8_t *b[POOL_TEST_BLOCKS];
	struct lun_buf_stats s0, s1;
	uint8_t *lowest = NULL, *again, *big;
	bool overlap = false;

	lun_buf_stats(&s0);
	for (int i = 0; i < POOL_TEST_BLOCKS; i++) {
		b[i] = lun_buf_alloc(i % 2 ? 4096 : 0);
		CU_ASSERT_PTR_NOT_NULL_FATAL(b[i]);
		CU_ASSERT_EQUAL((uintptr_t)b[i] % 4096, 0);
		memset(b[i], i & 0xff, 4096);
		if (!lowest || b[i] < lowest)
			lowest = b[i];
	}
	lun_buf_stats(&s1);
	CU_ASSERT_EQUAL(s1.pool_blocks, s0.pool_blocks + POOL_TEST_BLOCKS);
	/* No block shares a byte with another: each kept its own pattern. */
	for (int i = 0; i < POOL_TEST_BLOCKS; i++)
		for (int j = 0; j < 4096; j += 512)
			overlap |= b[i][j] != (i & 0xff);
	CU_ASSERT_FALSE(overlap);
	/* A block of another size is a plain aligned allocation, freed by the
	 * same call. */
	big = lun_buf_alloc(8192);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	CU_ASSERT_EQUAL((uintptr_t)big % 4096, 0);
	memset(big, 7, 8192);
	lun_buf_free(big);

	/* Freed, then trimmed: the pages go back to the system. */
	for (int i = 0; i < POOL_TEST_BLOCKS; i++)
		lun_buf_free(b[i]);
	lun_buf_stats(&s1);
	CU_ASSERT_EQUAL(s1.pool_blocks, s0.pool_blocks);
	CU_ASSERT(s1.idle_blocks >= POOL_TEST_BLOCKS);
	CU_ASSERT_TRUE(page_resident(b[0]));
	lun_buf_trim();
	lun_buf_stats(&s1);
	CU_ASSERT_EQUAL(s1.idle_blocks, 0);
	for (int i = 0; i < POOL_TEST_BLOCKS; i++)
		CU_ASSERT_FALSE(page_resident(b[i]));

	/* A new block comes from the lowest chunk with room: no higher than
	 * the lowest block freed above.  Trimmed pages read as zeros. */
	again = lun_buf_alloc(4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(again);
	CU_ASSERT(again <= lowest);
	CU_ASSERT_EQUAL(again[0], 0);
	CU_ASSERT_EQUAL(memcmp(again, again + 1, 4095), 0);
	lun_buf_free(again);
}

/* Freeing a pool block twice is caught, not a corrupted pool. */
static void test_buf_pool_double_free(void)
{
	int status = 0;
	pid_t pid = fork();

	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		void *p = lun_buf_alloc(4096);

		lun_buf_free(p);
		lun_buf_free(p);
		_exit(0);
	}
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

/* ---- data path ---------------------------------------------------------- */

static void test_rw_roundtrip(void)
{
	const char *path = mkfile("rw", LUN_BYTES);
	struct lun *lun = open_lun(path);
	struct lun *other = open_lun(path);
	uint32_t ss = lun_sector_size(lun);
	const struct { uint64_t off; size_t len; } cases[] = {
		{ 0, ss }, { ss, ss }, { 7 * 4096, 3 * ss },
		{ 5 * MiB + ss, MiB }, { LUN_BYTES - ss, ss },
		{ 2 * MiB, 4 * MiB }, { 9 * MiB, 64 * 1024 },
	};
	void *buf = lun_buf_alloc(4 * MiB);
	void *back = lun_buf_alloc(4 * MiB);
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fill(buf, cases[i].len, (unsigned)i + 1);
		CU_ASSERT_EQUAL(lun_write(lun, buf, cases[i].len,
					  cases[i].off), 0);
		/* Straight to the disk: another handle sees it at once. */
		memset(back, 0, cases[i].len);
		CU_ASSERT_EQUAL(lun_read(other, back, cases[i].len,
					 cases[i].off), 0);
		CU_ASSERT(is_filled(back, cases[i].len, (unsigned)i + 1));
		memset(back, 0, cases[i].len);
		pread_file(path, back, cases[i].len, (off_t)cases[i].off);
		CU_ASSERT(is_filled(back, cases[i].len, (unsigned)i + 1));
	}
	/* Neighbours of a write are untouched. */
	CU_ASSERT_EQUAL(lun_read(lun, back, ss, 3 * 4096), 0);
	CU_ASSERT(is_zero(back, ss));
	CU_ASSERT_EQUAL(lun_read(lun, back, 0, 0), 0);
	CU_ASSERT_EQUAL(lun_flush(lun), 0);
	lun_buf_free(buf);
	lun_buf_free(back);
	lun_close(other);
	lun_close(lun);
}

static void test_unaligned(void)
{
	const char *path = mkfile("unal", MiB);
	struct lun *lun = open_lun(path);
	struct lun *ro = NULL;
	uint32_t ss = lun_sector_size(lun);
	unsigned char *buf = lun_buf_alloc(3 * ss);
	struct lun_io ios[3];

	memset(buf, 0xab, 3 * ss);
	CU_ASSERT_EQUAL(lun_write(lun, buf + 1, ss, 0), -VMFS_E_UNALIGNED);
	CU_ASSERT_EQUAL(lun_write(lun, buf + ss / 2, ss, 0),
			-VMFS_E_UNALIGNED);
	CU_ASSERT_EQUAL(lun_write(lun, buf, ss, 1), -VMFS_E_UNALIGNED);
	CU_ASSERT_EQUAL(lun_write(lun, buf, ss + 1, 0), -VMFS_E_UNALIGNED);
	CU_ASSERT_EQUAL(lun_read(lun, buf, ss, ss - 1), -VMFS_E_UNALIGNED);
	CU_ASSERT_EQUAL(lun_read(lun, buf, 100, 0), -VMFS_E_UNALIGNED);
	CU_ASSERT_EQUAL(lun_zero_range(lun, 1, ss), -VMFS_E_UNALIGNED);
	CU_ASSERT_EQUAL(lun_compare_and_write(lun, buf, buf, ss, 3, NULL),
			-VMFS_E_UNALIGNED);
	/* Past the end, and NULL buffers, are errors too. */
	CU_ASSERT_EQUAL(lun_read(lun, buf, 2 * ss, MiB - ss), -EINVAL);
	CU_ASSERT_EQUAL(lun_write(lun, buf, ss, MiB), -EINVAL);
	CU_ASSERT_EQUAL(lun_read(lun, NULL, ss, 0), -EINVAL);

	/* One bad I/O in a batch: nothing at all is submitted. */
	ios[0] = (struct lun_io){ LUN_OP_WRITE, buf, ss, 0, 1 };
	ios[1] = (struct lun_io){ LUN_OP_WRITE, buf, ss, ss + 3, 1 };
	ios[2] = (struct lun_io){ LUN_OP_READ, buf + ss, ss, 2 * ss, 1 };
	CU_ASSERT_EQUAL(lun_submit(lun, ios, 3), -VMFS_E_UNALIGNED);
	CU_ASSERT_EQUAL(ios[0].result, -ECANCELED);
	CU_ASSERT_EQUAL(ios[1].result, -VMFS_E_UNALIGNED);
	CU_ASSERT_EQUAL(ios[2].result, -ECANCELED);
	CU_ASSERT_EQUAL(lun_read(lun, buf, ss, 0), 0);
	CU_ASSERT(is_zero(buf, ss));

	CU_ASSERT_EQUAL(lun_open(path, LUN_RDONLY, &ro), 0);
	CU_ASSERT_EQUAL(lun_write(ro, buf, ss, 0), -EROFS);
	CU_ASSERT_EQUAL(lun_zero_range(ro, 0, ss), -EROFS);
	CU_ASSERT_EQUAL(lun_compare_and_write(ro, buf, buf, ss, 0, NULL),
			-EROFS);
	CU_ASSERT_EQUAL(lun_reserve(ro, 0), -EROFS);
	CU_ASSERT_EQUAL(lun_read(ro, buf, ss, 0), 0);
	lun_close(ro);
	lun_buf_free(buf);
	lun_close(lun);
}

/* 64 mixed I/Os in one lun_submit: 32 writes and 32 reads of other data. */
static void test_submit_batch(void)
{
	const char *path = mkfile("batch", LUN_BYTES);
	struct lun *lun = open_lun(path);
	uint32_t ss = lun_sector_size(lun);
	size_t len = 2 * ss;
	unsigned char *bufs = lun_buf_alloc(64 * len);
	unsigned char *back = lun_buf_alloc(len);
	struct lun_io ios[64];
	unsigned i;

	/* Sectors for the reads hold known data beforehand. */
	for (i = 0; i < 32; i++) {
		fill(bufs, len, 1000 + i);
		CU_ASSERT_FATAL(lun_write(lun, bufs, len,
					  MiB + (uint64_t)i * len) == 0);
	}
	for (i = 0; i < 64; i++) {
		bool w = i % 2 == 0;
		unsigned k = i / 2;

		ios[i].op = w ? LUN_OP_WRITE : LUN_OP_READ;
		ios[i].buf = bufs + (size_t)i * len;
		ios[i].len = len;
		ios[i].off = w ? 4 * MiB + (uint64_t)k * 3 * len
			       : MiB + (uint64_t)k * len;
		ios[i].result = 1;
		if (w)
			fill(ios[i].buf, len, 2000 + k);
		else
			memset(ios[i].buf, 0, len);
	}
	CU_ASSERT_EQUAL(lun_submit(lun, ios, 64), 0);
	for (i = 0; i < 64; i++) {
		unsigned k = i / 2;

		CU_ASSERT_EQUAL(ios[i].result, 0);
		if (ios[i].op == LUN_OP_READ) {
			CU_ASSERT(is_filled(ios[i].buf, len, 1000 + k));
		} else {
			CU_ASSERT_EQUAL(lun_read(lun, back, len, ios[i].off),
					0);
			CU_ASSERT(is_filled(back, len, 2000 + k));
		}
	}
	lun_buf_free(back);
	lun_buf_free(bufs);
	lun_close(lun);
}

/* More I/Os than one aio context holds: split, all done, all checked. */
static void test_submit_large_batch(void)
{
	enum { N = 300 };
	const char *path = mkfile("bigbatch", LUN_BYTES);
	struct lun *lun = open_lun(path);
	uint32_t ss = lun_sector_size(lun);
	unsigned char *bufs = lun_buf_alloc((size_t)N * ss);
	struct lun_io *ios = calloc(N, sizeof(*ios));
	unsigned i;

	for (i = 0; i < N; i++) {
		ios[i] = (struct lun_io){ LUN_OP_WRITE, bufs + (size_t)i * ss,
					  ss, (uint64_t)i * ss, 1 };
		fill(ios[i].buf, ss, i);
	}
	CU_ASSERT_EQUAL(lun_submit(lun, ios, N), 0);
	memset(bufs, 0, (size_t)N * ss);
	for (i = 0; i < N; i++)
		ios[i].op = LUN_OP_READ;
	CU_ASSERT_EQUAL(lun_submit(lun, ios, N), 0);
	for (i = 0; i < N; i++) {
		CU_ASSERT_EQUAL(ios[i].result, 0);
		CU_ASSERT(is_filled(ios[i].buf, ss, i));
	}
	free(ios);
	lun_buf_free(bufs);
	lun_close(lun);
}

static void test_zero_range(void)
{
	const char *path = mkfile("zero", LUN_BYTES);
	struct lun *lun = open_lun(path);
	uint32_t ss = lun_sector_size(lun);
	unsigned char *buf = lun_buf_alloc(4 * MiB);

	fill(buf, 4 * MiB, 7);
	CU_ASSERT_FATAL(lun_write(lun, buf, 4 * MiB, MiB) == 0);
	CU_ASSERT_EQUAL(lun_zero_range(lun, MiB + ss, 2 * MiB), 0);
	CU_ASSERT_EQUAL(lun_zero_range(lun, 0, 0), 0);
	memset(buf, 0xee, 4 * MiB);
	CU_ASSERT_EQUAL(lun_read(lun, buf, 4 * MiB, MiB), 0);
	CU_ASSERT(is_filled(buf, ss, 7));
	CU_ASSERT(is_zero(buf + ss, 2 * MiB));
	/* The tail keeps its bytes: compare with the pattern's tail. */
	{
		unsigned char *want = malloc(4 * MiB);

		fill(want, 4 * MiB, 7);
		CU_ASSERT_EQUAL(memcmp(buf + ss + 2 * MiB,
				       want + ss + 2 * MiB,
				       4 * MiB - ss - 2 * MiB), 0);
		free(want);
	}
	CU_ASSERT_EQUAL(lun_size(lun), LUN_BYTES);
	lun_buf_free(buf);
	lun_close(lun);
}

/*
 * With a zero timeout an I/O that is not complete the moment we look
 * times out; its bounce buffer must survive until the late completion is
 * reaped, while the caller frees and reuses its own buffer at once.  Run
 * under ASan this catches use-after-free of either buffer.
 */
static void test_timeout_abandon(void)
{
	const char *path = mkfile("timeout", LUN_BYTES);
	struct lun *lun = open_lun(path);
	unsigned timeouts = 0;
	unsigned char *buf;
	int i, rc;

	buf = lun_buf_alloc(8 * MiB);
	fill(buf, 8 * MiB, 3);
	CU_ASSERT_FATAL(lun_write(lun, buf, 8 * MiB, 0) == 0);
	lun_buf_free(buf);

	lun_set_io_timeout(lun, 0);
	for (i = 0; i < 100; i++) {
		buf = lun_buf_alloc(4 * MiB);
		rc = lun_read(lun, buf, 4 * MiB, (uint64_t)(i % 2) * 4 * MiB);
		CU_ASSERT(rc == 0 || rc == -ETIMEDOUT);
		timeouts += rc == -ETIMEDOUT;
		memset(buf, 0x11, 4 * MiB);	/* the caller reuses it */
		lun_buf_free(buf);
	}
	printf("[%u/100 reads timed out] ", timeouts);

	lun_set_io_timeout(lun, 10000);
	buf = lun_buf_alloc(8 * MiB);
	CU_ASSERT_EQUAL(lun_read(lun, buf, 8 * MiB, 0), 0);
	CU_ASSERT(is_filled(buf, 8 * MiB, 3));
	lun_buf_free(buf);
	lun_close(lun);	/* reaps whatever is still in flight */
}

/* The reservation mutex's bound: the I/O timeout unless a shorter one
 * is set. */
static void test_lock_io_timeout(void)
{
	const char *path = mkfile("lockio", LUN_BYTES);
	struct lun *lun = open_lun(path);

	lun_set_io_timeout(lun, 4000);
	CU_ASSERT_EQUAL(lun_lock_io_timeout(lun), 4000);
	lun_set_lock_io_timeout(lun, 2000);
	CU_ASSERT_EQUAL(lun_lock_io_timeout(lun), 2000);
	lun_set_io_timeout(lun, 1000);	/* never longer than the I/O's */
	CU_ASSERT_EQUAL(lun_lock_io_timeout(lun), 1000);
	lun_set_io_timeout(lun, 4000);
	lun_set_lock_io_timeout(lun, 0);
	CU_ASSERT_EQUAL(lun_lock_io_timeout(lun), 4000);
	lun_close(lun);
}

/* A transfer cut short (the file shrank under the lun) is -EIO. */
static void test_short_read(void)
{
	const char *path = mkfile("short", MiB);
	struct lun *lun = open_lun(path);
	uint32_t ss = lun_sector_size(lun);
	unsigned char *buf = lun_buf_alloc(4 * ss);

	CU_ASSERT_FATAL(truncate(path, MiB - 2 * ss) == 0);
	CU_ASSERT_EQUAL(lun_read(lun, buf, 4 * ss, MiB - 4 * ss), -EIO);
	CU_ASSERT_EQUAL(lun_read(lun, buf, ss, MiB - ss), -EIO);
	CU_ASSERT_EQUAL(lun_read(lun, buf, 2 * ss, MiB - 4 * ss), 0);
	lun_buf_free(buf);
	lun_close(lun);
}

/* ---- per-thread contexts ------------------------------------------------ */

struct ctx_arg {
	struct lun *lun;
	unsigned id;
	pthread_barrier_t *hold;	/* NULL: exit right after the I/O */
	int rc;
};

static void *ctx_thread(void *p)
{
	struct ctx_arg *a = p;
	uint32_t ss = lun_sector_size(a->lun);
	void *buf = lun_buf_alloc(ss);

	fill(buf, ss, a->id);
	a->rc = lun_write(a->lun, buf, ss, (uint64_t)a->id * ss);
	if (!a->rc)
		a->rc = lun_read(a->lun, buf, ss, (uint64_t)a->id * ss);
	if (!a->rc && !is_filled(buf, ss, a->id))
		a->rc = -EIO;
	lun_buf_free(buf);
	if (a->hold) {
		pthread_barrier_wait(a->hold);	/* lun closed meanwhile */
		pthread_barrier_wait(a->hold);
	}
	return NULL;
}

/*
 * Threads exit before the lun closes, and the lun closes while threads
 * that used it are still alive: both teardown orders, checked for leaks
 * and use-after-free by the sanitizer build.
 */
static void test_thread_contexts(void)
{
	enum { T = 4 };
	const char *path = mkfile("threads", MiB);
	struct lun *lun = open_lun(path);
	struct lun *lun2 = open_lun(path);
	pthread_barrier_t hold;
	struct ctx_arg args[T];
	pthread_t th[T];
	int i;

	for (i = 0; i < T; i++) {
		args[i] = (struct ctx_arg){ lun, (unsigned)i, NULL, -1 };
		CU_ASSERT_FATAL(pthread_create(&th[i], NULL, ctx_thread,
					       &args[i]) == 0);
	}
	for (i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(args[i].rc, 0);
	}
	lun_close(lun);

	pthread_barrier_init(&hold, NULL, T + 1);
	for (i = 0; i < T; i++) {
		args[i] = (struct ctx_arg){ lun2, (unsigned)i + 10, &hold, -1 };
		CU_ASSERT_FATAL(pthread_create(&th[i], NULL, ctx_thread,
					       &args[i]) == 0);
	}
	pthread_barrier_wait(&hold);
	lun_close(lun2);
	pthread_barrier_wait(&hold);
	for (i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(args[i].rc, 0);
	}
	pthread_barrier_destroy(&hold);
}

/* ---- RESERVE / RELEASE -------------------------------------------------- */

static void test_reserve_basic(void)
{
	const char *path = mkfile("res", MiB);
	struct lun *a = open_lun(path);
	struct lun *b = open_lun(path);
	uint32_t ss = lun_sector_size(a);
	unsigned char *buf = lun_buf_alloc(ss);
	unsigned char *cur = malloc(ss);
	int64_t t0;

	memset(buf, 0, ss);
	CU_ASSERT_EQUAL(lun_release(a), 0);	/* not held: no-op */
	CU_ASSERT_EQUAL(lun_reserve(a, 0), 0);
	CU_ASSERT_EQUAL(lun_reserve(a, 0), 0);	/* the holder again */

	t0 = now_ms();
	CU_ASSERT_EQUAL(lun_reserve(b, 50), -VMFS_E_RESERVED);
	CU_ASSERT(now_ms() - t0 >= 50);
	CU_ASSERT_EQUAL(lun_reserve(b, 0), -VMFS_E_RESERVED);

	/* RESERVATION CONFLICT for a COMPARE AND WRITE from the other side. */
	fill(cur, ss, 1);
	CU_ASSERT_EQUAL(lun_compare_and_write(b, buf, cur, ss, 0, NULL),
			-VMFS_E_RESERVED);
	CU_ASSERT_EQUAL(lun_read(b, buf, ss, 0), 0);
	CU_ASSERT(is_zero(buf, ss));
	/* ... while the holder's own CAW goes through. */
	CU_ASSERT_EQUAL(lun_compare_and_write(a, buf, cur, ss, 0, NULL), 0);
	CU_ASSERT_EQUAL(lun_reserve(b, 0), -VMFS_E_RESERVED);

	CU_ASSERT_EQUAL(lun_release(a), 0);
	CU_ASSERT_EQUAL(lun_reserve(b, 0), 0);
	CU_ASSERT_EQUAL(lun_reserve(a, 0), -VMFS_E_RESERVED);
	/* Closing the holder ends its reservation. */
	lun_close(b);
	CU_ASSERT_EQUAL(lun_reserve(a, 0), 0);
	CU_ASSERT_EQUAL(lun_release(a), 0);
	free(cur);
	lun_buf_free(buf);
	lun_close(a);
}

struct release_arg {
	struct lun *lun;
	unsigned delay_ms;
};

static void *release_later(void *p)
{
	struct release_arg *r = p;

	usleep(r->delay_ms * 1000);
	lun_release(r->lun);
	return NULL;
}

/* A waiter gets the reservation once the holder lets go. */
static void test_reserve_wait(void)
{
	const char *path = mkfile("reswait", MiB);
	struct lun *a = open_lun(path);
	struct lun *b = open_lun(path);
	struct release_arg r = { a, 100 };
	pthread_t th;

	CU_ASSERT_EQUAL(lun_reserve(a, 0), 0);
	CU_ASSERT_EQUAL(lun_reserve(b, 0), -VMFS_E_RESERVED);
	CU_ASSERT_FATAL(pthread_create(&th, NULL, release_later, &r) == 0);
	CU_ASSERT_EQUAL(lun_reserve(b, 10000), 0);
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(lun_reserve(a, 0), -VMFS_E_RESERVED);
	lun_close(b);
	lun_close(a);
}

/* Another process is another initiator. */
static int child_reserve(const char *path)
{
	struct lun *lun;
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		int rc = lun_open(path, 0, &lun);

		if (!rc)
			rc = lun_reserve(lun, 20);
		_exit(rc == 0 ? 0 : rc == -VMFS_E_RESERVED ? 1 : 2);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static void test_reserve_processes(void)
{
	const char *path = mkfile("resproc", MiB);
	struct lun *a = open_lun(path);

	CU_ASSERT_EQUAL(lun_reserve(a, 0), 0);
	CU_ASSERT_EQUAL(child_reserve(path), 1);
	CU_ASSERT_EQUAL(lun_release(a), 0);
	CU_ASSERT_EQUAL(child_reserve(path), 0);
	/* The child's reservation died with it. */
	CU_ASSERT_EQUAL(lun_reserve(a, 0), 0);
	lun_close(a);
}

/* ---- COMPARE AND WRITE -------------------------------------------------- */

static void test_caw_basic(void)
{
	const char *path = mkfile("caw", MiB);
	struct lun *lun = open_lun(path);
	uint32_t ss = lun_sector_size(lun);
	size_t len = 4096;
	unsigned char *old = malloc(len), *new = malloc(len);
	unsigned char *other = malloc(len), *cur = malloc(len);
	unsigned char *back = lun_buf_alloc(len);

	fill(old, len, 1);
	fill(new, len, 2);
	fill(other, len, 3);
	memcpy(back, old, len);
	CU_ASSERT_FATAL(lun_write(lun, back, len, 8192) == 0);

	/* Success: the new bytes land. */
	CU_ASSERT_EQUAL(lun_compare_and_write(lun, old, new, len, 8192, cur),
			0);
	pread_file(path, back, len, 8192);
	CU_ASSERT(is_filled(back, len, 2));

	/* Stale expectation: nothing written, the current bytes returned. */
	memset(cur, 0, len);
	CU_ASSERT_EQUAL(lun_compare_and_write(lun, old, other, len, 8192, cur),
			-VMFS_E_MISCOMPARE);
	CU_ASSERT(is_filled(cur, len, 2));
	pread_file(path, back, len, 8192);
	CU_ASSERT(is_filled(back, len, 2));
	CU_ASSERT_EQUAL(lun_compare_and_write(lun, old, other, len, 8192,
					      NULL), -VMFS_E_MISCOMPARE);

	/* A one-sector CAW compares only its sector. */
	CU_ASSERT_EQUAL(lun_compare_and_write(lun, new, other, ss, 8192, NULL),
			0);
	pread_file(path, back, len, 8192);
	CU_ASSERT(is_filled(back, ss, 3));
	CU_ASSERT_EQUAL(memcmp(back + ss, new + ss, len - ss), 0);
	lun_buf_free(back);
	free(old);
	free(new);
	free(other);
	free(cur);
	lun_close(lun);
}

/* Sector image of a race round: the round number and who won it. */
struct race_sector {
	uint64_t round;
	uint64_t winner;
};

struct race_arg {
	struct lun *lun;
	unsigned id;
	unsigned rounds;
	pthread_barrier_t *bar;
	unsigned *wins;		/* per round, shared */
	unsigned bad;
	int err;
};

static void *race_thread(void *p)
{
	struct race_arg *a = p;
	struct lun *lun = a->lun;
	uint32_t ss = lun_sector_size(lun);
	unsigned char *expect, *data, *cur;
	struct race_sector s;
	unsigned r;

	expect = calloc(1, ss);
	data = calloc(1, ss);
	cur = calloc(1, ss);
	for (r = 0; r < a->rounds; r++) {
		int rc;

		s = (struct race_sector){ r + 1, a->id };
		memcpy(data, &s, sizeof(s));
		pthread_barrier_wait(a->bar);
		rc = lun_compare_and_write(lun, expect, data, ss, 4096, cur);
		if (rc == 0) {
			__atomic_add_fetch(&a->wins[r], 1, __ATOMIC_RELAXED);
			memcpy(expect, data, ss);
		} else if (rc == -VMFS_E_MISCOMPARE) {
			/* The loser sees exactly the winner's round r+1. */
			memcpy(&s, cur, sizeof(s));
			if (s.round != r + 1 || s.winner == a->id)
				a->bad++;
			memcpy(expect, cur, ss);
		} else {
			a->bad++;
			a->err = rc;
		}
		pthread_barrier_wait(a->bar);
	}
	free(expect);
	free(data);
	free(cur);
	return NULL;
}

/* Two handles race the same sector from the same expected bytes. */
static void test_caw_race(void)
{
	enum { ROUNDS = 1000 };
	const char *path = mkfile("race", MiB);
	unsigned *wins = calloc(ROUNDS, sizeof(*wins));
	struct race_arg args[2];
	pthread_barrier_t bar;
	pthread_t th[2];
	unsigned r, one = 0;
	int i;

	pthread_barrier_init(&bar, NULL, 2);
	for (i = 0; i < 2; i++) {
		/* Each thread its own handle: two initiators. */
		args[i] = (struct race_arg){ open_lun(path), (unsigned)i + 1,
					     ROUNDS, &bar, wins, 0, 0 };
		CU_ASSERT_FATAL(pthread_create(&th[i], NULL, race_thread,
					       &args[i]) == 0);
	}
	for (i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(args[i].err, 0);
		CU_ASSERT_EQUAL(args[i].bad, 0);
		lun_close(args[i].lun);
	}
	for (r = 0; r < ROUNDS; r++)
		one += wins[r] == 1;
	CU_ASSERT_EQUAL(one, ROUNDS);
	pthread_barrier_destroy(&bar);
	free(wins);
}

/*
 * Counter increments by read + CAW retry loops, from several threads of
 * one handle and from another handle, and by reserve/read/write/release
 * from a third handle: no increment may be lost.  This checks that threads
 * sharing a handle are serialized (OFD locks alone would not), and that a
 * CAW and a reservation exclude each other.
 */
struct incr_arg {
	struct lun *lun;
	bool use_reserve;
	unsigned n;
	int err;
};

static void *incr_thread(void *p)
{
	struct incr_arg *a = p;
	uint32_t ss = lun_sector_size(a->lun);
	unsigned char *cur = lun_buf_alloc(ss);
	unsigned char *next = lun_buf_alloc(ss);
	/* A broken CAW would retry forever: fail instead of hanging. */
	int64_t give_up_ms = now_ms() + 60000;
	unsigned done = 0;
	uint64_t v;
	int rc;

	rc = lun_read(a->lun, cur, ss, 0);
	while (!rc && done < a->n) {
		if (now_ms() > give_up_ms) {
			rc = -ETIMEDOUT;
			break;
		}
		if (a->use_reserve) {
			rc = lun_reserve(a->lun, 10000);
			if (!rc)
				rc = lun_read(a->lun, cur, ss, 0);
		}
		if (rc)
			break;
		memcpy(&v, cur, sizeof(v));
		v++;
		memcpy(next, cur, ss);
		memcpy(next, &v, sizeof(v));
		if (a->use_reserve) {
			rc = lun_write(a->lun, next, ss, 0);
			if (!rc)
				rc = lun_release(a->lun);
			done++;
			continue;
		}
		rc = lun_compare_and_write(a->lun, cur, next, ss, 0, cur);
		if (rc == 0) {
			memcpy(cur, next, ss);
			done++;
		} else if (rc == -VMFS_E_MISCOMPARE || rc == -VMFS_E_RESERVED) {
			rc = rc == -VMFS_E_RESERVED ? lun_read(a->lun, cur, ss, 0)
						    : 0;
		}
	}
	a->err = rc;
	lun_buf_free(cur);
	lun_buf_free(next);
	return NULL;
}

static void test_caw_counter(void)
{
	enum { T = 5, N = 200 };
	const char *path = mkfile("counter", MiB);
	struct lun *h1 = open_lun(path), *h2 = open_lun(path);
	struct lun *h3 = open_lun(path);
	struct incr_arg args[T] = {
		{ h1, false, N, 0 }, { h1, false, N, 0 }, { h1, false, N, 0 },
		{ h2, false, N, 0 }, { h3, true, N, 0 },
	};
	uint32_t ss = lun_sector_size(h1);
	unsigned char *buf = lun_buf_alloc(ss);
	pthread_t th[T];
	uint64_t v;
	int i;

	for (i = 0; i < T; i++)
		CU_ASSERT_FATAL(pthread_create(&th[i], NULL, incr_thread,
					       &args[i]) == 0);
	for (i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(args[i].err, 0);
	}
	CU_ASSERT_EQUAL(lun_read(h2, buf, ss, 0), 0);
	memcpy(&v, buf, sizeof(v));
	CU_ASSERT_EQUAL(v, (uint64_t)T * N);
	lun_buf_free(buf);
	lun_close(h1);
	lun_close(h2);
	lun_close(h3);
}

struct busy_arg {
	struct lun *lun;
	unsigned sector;
	volatile int *stop;
	unsigned cawed;
	int err;
};

/* Back-to-back CAWs on a private sector, counting the ones that ran. */
static void *busy_caw_thread(void *p)
{
	struct busy_arg *a = p;
	uint32_t ss = lun_sector_size(a->lun);
	unsigned char *cur = calloc(1, ss), *next = calloc(1, ss);
	uint64_t off = (uint64_t)a->sector * ss;

	while (!*a->stop && !a->err) {
		int rc;

		memcpy(next, cur, ss);
		next[0]++;
		rc = lun_compare_and_write(a->lun, cur, next, ss, off, cur);
		if (rc == 0) {
			memcpy(cur, next, ss);
			a->cawed++;
		} else if (rc != -VMFS_E_RESERVED) {
			a->err = rc;	/* nobody else writes this sector */
		}
	}
	free(cur);
	free(next);
	return NULL;
}

/*
 * Several threads of one handle keep CAWs in flight without a gap; a
 * reserve() from another handle must still get through (and the CAWs must
 * resume after the release) rather than starve behind them.
 */
static void test_reserve_vs_busy_caw(void)
{
	enum { T = 3 };
	const char *path = mkfile("busy", MiB);
	struct lun *busy = open_lun(path);
	struct lun *res = open_lun(path);
	volatile int stop = 0;
	struct busy_arg args[T];
	pthread_t th[T];
	unsigned before = 0, after = 0;
	int i, round;

	for (i = 0; i < T; i++) {
		args[i] = (struct busy_arg){ busy, (unsigned)i, &stop, 0, 0 };
		CU_ASSERT_FATAL(pthread_create(&th[i], NULL, busy_caw_thread,
					       &args[i]) == 0);
	}
	usleep(20000);
	for (round = 0; round < 20; round++) {
		CU_ASSERT_EQUAL(lun_reserve(res, 2000), 0);
		CU_ASSERT_EQUAL(lun_release(res), 0);
	}
	for (i = 0; i < T; i++)
		before += args[i].cawed;
	usleep(20000);
	stop = 1;
	for (i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(args[i].err, 0);
		after += args[i].cawed;
	}
	CU_ASSERT(after > before);
	lun_close(res);
	lun_close(busy);
}

static CU_TestInfo lun_tests[] = {
	{ "size_refresh", test_size_refresh },
	{ "open_sparse", test_open_sparse },
	{ "open_partial_sector", test_open_partial_sector },
	{ "open_errors", test_open_errors },
	{ "spec_parse", test_spec_parse },
	{ "spec_abspath", test_spec_abspath },
	{ "buf_alloc", test_buf_alloc },
	{ "buf_pool", test_buf_pool },
	{ "buf_pool_double_free", test_buf_pool_double_free },
	{ "rw_roundtrip", test_rw_roundtrip },
	{ "unaligned", test_unaligned },
	{ "submit_batch64", test_submit_batch },
	{ "submit_large_batch", test_submit_large_batch },
	{ "zero_range", test_zero_range },
	{ "short_read", test_short_read },
	{ "timeout_abandon", test_timeout_abandon },
	{ "lock_io_timeout", test_lock_io_timeout },
	{ "thread_contexts", test_thread_contexts },
	{ "reserve_basic", test_reserve_basic },
	{ "reserve_wait", test_reserve_wait },
	{ "reserve_processes", test_reserve_processes },
	{ "caw_basic", test_caw_basic },
	{ "caw_race", test_caw_race },
	{ "caw_counter", test_caw_counter },
	{ "reserve_vs_busy_caw", test_reserve_vs_busy_caw },
	CU_TEST_INFO_NULL
};
UNIT_SUITE("lun", NULL, NULL, lun_tests);
