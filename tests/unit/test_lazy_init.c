/*
 * Inode and pointer-block clusters initialised at first use
 * (VMFS_RC_UNINIT, vmfsd/alloc.c):
 *   - what mkfs writes does not grow with the LUN (write recorder of the
 *     fault wrapper, 2 GiB against 8 TiB);
 *   - a first-use init cut after every write, flush and zeroing it makes
 *     (and half-way through each zeroing and write) leaves a volume that
 *     opens, checks clean, and whose next first use zeroes the cluster
 *     again: the cluster's objects were garbage before (a LUN that held
 *     something else, with a stale inode that verifies), and none of it
 *     may ever be seen.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "unit.h"
#include "vmfs/fsck.h"
#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"

#define MIB (1024ull * 1024)

static const char *sparse_file(const char *path, uint64_t size)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(ftruncate(fd, (off_t)size) == 0);
	close(fd);
	return path;
}

static void mkfs_opts(struct vol_mkfs_opts *o)
{
	vol_mkfs_opts_init(o);
	o->max_hosts = 4;
	o->journal_size = MIB;
}

/* Bytes vol_mkfs writes or zeroes on a sparse LUN of size bytes. */
static uint64_t mkfs_bytes(uint64_t size)
{
	const char *p = sparse_file(unit_tmp_path("mkfs-bytes.img"), size);
	struct lun *inner, *lun;
	const struct lun_rec_entry *r;
	struct vol_mkfs_opts o;
	uint64_t bytes = 0;
	size_t n;

	CU_ASSERT_FATAL(lun_open(p, 0, &inner) == 0);
	CU_ASSERT_FATAL(lun_fault_wrap(inner, &lun) == 0);
	lun_fault_record(lun, true);
	mkfs_opts(&o);
	CU_ASSERT_FATAL(vol_mkfs(lun, &o, NULL) == 0);
	r = lun_fault_records(lun, &n);
	for (size_t i = 0; i < n; i++)
		if (r[i].kind != LUN_REC_FLUSH)
			bytes += r[i].len;
	lun_close(lun);
	unlink(p);
	return bytes;
}

static void test_mkfs_bounded(void)
{
	uint64_t small = mkfs_bytes(2048 * MIB);
	uint64_t big = mkfs_bytes(8ull << 40);

	/*
	 * Cluster headers and one block per journal and heartbeat slot;
	 * nothing per inode or pointer block.  Headers are at most 4096 per
	 * area up to 32 TiB with 1 MiB blocks (vmfsd/geom.c), so 8 TiB
	 * writes ~57 MiB where zeroing its inodes alone was 64 GiB.
	 */
	CU_ASSERT(small < 16 * MIB);
	CU_ASSERT(big < 96 * MIB);
	if (small >= 16 * MIB || big >= 96 * MIB)
		fprintf(stderr, "\n  mkfs wrote %llu bytes on 2 GiB, %llu on 8 TiB\n",
			(unsigned long long)small, (unsigned long long)big);
}

/* ---- a first-use init cut at every step --------------------------------- */

static const char *base_path, *img_path;
static struct vol_geom geo;

/* Copy the data extents of a sparse file. */
static void copy_sparse(const char *from, const char *to)
{
	int in = open(from, O_RDONLY), out;
	struct stat st;
	static char buf[1 << 20];
	off_t pos = 0;

	CU_ASSERT_FATAL(in >= 0 && fstat(in, &st) == 0);
	out = open(to, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	CU_ASSERT_FATAL(out >= 0 && ftruncate(out, st.st_size) == 0);
	while ((pos = lseek(in, pos, SEEK_DATA)) >= 0) {
		off_t end = lseek(in, pos, SEEK_HOLE);

		while (pos < end) {
			size_t n = end - pos < (off_t)sizeof(buf) ? (size_t)(end - pos)
								 : sizeof(buf);

			CU_ASSERT_FATAL(pread(in, buf, n, pos) == (ssize_t)n);
			CU_ASSERT_FATAL(pwrite(out, buf, n, pos) == (ssize_t)n);
			pos += (off_t)n;
		}
	}
	close(in);
	close(out);
}

static uint64_t inode_addr(uint64_t ino)
{
	return geo.res[VMFS_RES_INODE].obj_offset + ino * VMFS_MD_BLOCK_SIZE;
}


static void create_files(struct vol *v, const char *prefix, int n)
{
	for (int i = 0; i < n; i++) {
		struct vol_attr a;
		char name[32];

		snprintf(name, sizeof(name), "%s%d", prefix, i);
		CU_ASSERT_EQUAL_FATAL(vol_create(v, VMFS_ROOT_INO, name,
						 S_IFREG | 0644, 0, 0, 0, &a), 0);
		vol_forget(v, a.ino, 1);
	}
}

/*
 * A volume whose inode cluster 0 is full, and whose cluster 1 holds what
 * a LUN used before might: a pattern, and at inode 600 a sealed inode
 * of mode 0100644 with its own number, which would verify.
 */
static void make_base(void)
{
	uint32_t per;
	struct vol_mkfs_opts o;
	struct vmfs_inode *di;
	struct lun *lun;
	struct vol *v;
	uint8_t *blk;
	int fd;

	base_path = sparse_file(unit_tmp_path("lazy-base.img"), 256 * MIB);
	img_path = unit_tmp_path("lazy-crash.img");
	CU_ASSERT_FATAL(lun_open(base_path, 0, &lun) == 0);
	mkfs_opts(&o);
	CU_ASSERT_FATAL(vol_mkfs(lun, &o, NULL) == 0);
	CU_ASSERT_FATAL(vol_geom_read(lun, &geo, NULL, NULL) == 0);
	per = geo.res[VMFS_RES_INODE].per_cluster;
	/* The stale inode 600 must sit in cluster 1. */
	CU_ASSERT_FATAL(geo.res[VMFS_RES_INODE].nclusters >= 2 && 600 / per == 1);
	CU_ASSERT_FATAL(vol_open(lun, 0, &v) == 0);
	create_files(v, "c0-", (int)per - 3);   /* 0, root, lost+found */
	CU_ASSERT_FATAL(vol_close(v) == 0);

	blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	CU_ASSERT_FATAL(blk != NULL);
	fd = open(base_path, O_RDWR);
	CU_ASSERT_FATAL(fd >= 0);
	for (uint32_t i = 0; i < per; i++) {
		uint64_t ino = per + i;

		memset(blk, 0xa5, VMFS_MD_BLOCK_SIZE);
		if (ino == 600) {
			memset(blk, 0, VMFS_MD_BLOCK_SIZE);
			di = (struct vmfs_inode *)(blk + VMFS_OBJ_OFFSET);
			fmt_inode_encode(&(struct fmt_inode){
						 .ino = ino, .mode = S_IFREG | 0644,
						 .nlink = 1 }, di);
			lun_md_seal(&di->di_hdr, VMFS_MAGIC_INODE, inode_addr(ino),
				    VMFS_MD_BLOCK_SIZE - VMFS_OBJ_OFFSET);
		}
		CU_ASSERT_FATAL(pwrite(fd, blk, VMFS_MD_BLOCK_SIZE,
				       (off_t)inode_addr(ino)) == VMFS_MD_BLOCK_SIZE);
	}
	close(fd);
	lun_buf_free(blk);
	lun_close(lun);
	CU_ASSERT_FATAL(unit_fsck_clean(base_path, "lazy_init"));
}

/* Apply record r to fd, or only its first half. */
static void apply(int fd, const struct lun_rec_entry *r, bool half)
{
	uint64_t len = half ? r->len / 2 / 512 * 512 : r->len;
	static uint8_t zeros[1 << 20];

	if (r->kind == LUN_REC_WRITE) {
		CU_ASSERT_FATAL(pwrite(fd, r->data, len, (off_t)r->off) == (ssize_t)len);
	} else if (r->kind == LUN_REC_ZERO) {
		for (uint64_t o = 0; o < len; o += sizeof(zeros)) {
			size_t n = len - o < sizeof(zeros) ? (size_t)(len - o)
							   : sizeof(zeros);

			CU_ASSERT_FATAL(pwrite(fd, zeros, n, (off_t)(r->off + o)) ==
					(ssize_t)n);
		}
	}
}

/* No free slot of inode cluster 1 may show the garbage of make_base. */
static void check_cluster1_clean(void)
{
	uint32_t per = geo.res[VMFS_RES_INODE].per_cluster;
	uint8_t *blk = malloc(VMFS_MD_BLOCK_SIZE);
	int fd = open(img_path, O_RDONLY);
	uint32_t bad = 0;

	CU_ASSERT_FATAL(blk && fd >= 0);
	for (uint32_t i = 0; i < per; i++) {
		CU_ASSERT_FATAL(pread(fd, blk, VMFS_MD_BLOCK_SIZE,
				      (off_t)inode_addr(per + i)) == VMFS_MD_BLOCK_SIZE);
		bad += blk[0] == 0xa5 || blk[VMFS_MD_BLOCK_SIZE - 1] == 0xa5 ||
		       (per + i == 600 && blk[VMFS_OBJ_OFFSET + 0x30] == 0xa4);
	}
	CU_ASSERT_EQUAL(bad, 0);
	close(fd);
	free(blk);
}

/*
 * Crash state: the base, the first k records, and half of record k when
 * half is set.  It must open (replaying), check clean, hold the file
 * "x" only if the crash came after its commit, and a first use after it
 * must zero cluster 1 (again) and check clean.
 */
static void check_state(const struct lun_rec_entry *r, size_t k, bool half)
{
	struct lun *lun;
	struct vol *v;
	struct vol_attr a;
	int fd;

	copy_sparse(base_path, img_path);
	fd = open(img_path, O_RDWR);
	CU_ASSERT_FATAL(fd >= 0);
	for (size_t i = 0; i < k; i++)
		apply(fd, &r[i], false);
	if (half)
		apply(fd, &r[k], true);
	close(fd);

	CU_ASSERT_FATAL(lun_open(img_path, 0, &lun) == 0);
	CU_ASSERT_FATAL(vol_open(lun, 0, &v) == 0);
	if (vol_lookup(v, VMFS_ROOT_INO, "x0", &a) == 0)
		vol_forget(v, a.ino, 1);
	CU_ASSERT_FATAL(vol_close(v) == 0);
	lun_close(lun);
	if (!unit_fsck_clean(img_path, "lazy_init: a cut first-use init"))
		CU_FAIL("crash state does not check clean");

	/* The next first use: the slots it hands out are zeroed. */
	CU_ASSERT_FATAL(lun_open(img_path, 0, &lun) == 0);
	CU_ASSERT_FATAL(vol_open(lun, 0, &v) == 0);
	create_files(v, "after-", 40);
	CU_ASSERT_FATAL(vol_close(v) == 0);
	lun_close(lun);
	check_cluster1_clean();
	if (!unit_fsck_clean(img_path, "lazy_init: a cut first-use init"))
		CU_FAIL("volume after the crash state and more files does not check clean");
}

static void test_first_use_cut(void)
{
	const struct lun_rec_entry *r;
	struct lun *inner, *lun;
	struct vol *v;
	size_t n, nzero = 0;

	make_base();
	/* The recorded run: one file in cluster 1, synced and closed. */
	copy_sparse(base_path, img_path);
	CU_ASSERT_FATAL(lun_open(img_path, 0, &inner) == 0);
	CU_ASSERT_FATAL(lun_fault_wrap(inner, &lun) == 0);
	CU_ASSERT_FATAL(vol_open(lun, 0, &v) == 0);
	/* Crash states start from the LUN as this open left it (its
	 * journal marked in use), then the recorded writes. */
	copy_sparse(img_path, base_path);
	lun_fault_record(lun, true);
	create_files(v, "x", 1);
	CU_ASSERT_FATAL(vol_close(v) == 0);
	r = lun_fault_records(lun, &n);
	for (size_t i = 0; i < n; i++)
		nzero += r[i].kind == LUN_REC_ZERO &&
			 r[i].off == inode_addr(geo.res[VMFS_RES_INODE].per_cluster);
	CU_ASSERT_EQUAL(nzero, 1);   /* the first-use init of cluster 1 */

	for (size_t k = 0; k <= n; k++) {
		check_state(r, k, false);
		if (k < n && r[k].kind != LUN_REC_FLUSH && r[k].len >= 1024)
			check_state(r, k, true);
	}
	lun_close(lun);
}

static CU_TestInfo tests[] = {
	{ "mkfs_bounded", test_mkfs_bounded },
	{ "first_use_cut", test_first_use_cut },
	CU_TEST_INFO_NULL
};

UNIT_SUITE("lazy_init", NULL, NULL, tests);
