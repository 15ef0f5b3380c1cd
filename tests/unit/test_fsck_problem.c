/*
 * fsck: the problem table (every code of fsck.h exactly once, names and
 * texts sane), then whole runs of fsck_run on a fresh volume filled
 * through the engine -- clean, clean again with a tiny memory limit (the
 * maps must spill to disk), and a few damaged images made by hand that
 * run 1 repairs and run 2 finds clean.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "unit.h"
#include "vmfs/format.h"
#include "vmfs/fsck.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"

#define MIB (1024ull * 1024)

static const enum fsck_problem all_codes[] = {
	PR_0_PRIMARY_BAD, PR_0_BACKUP_BAD, PR_0_HEADERS_DIFFER, PR_0_NOT_VOLUME,
	PR_0_GEOMETRY,
	PR_1_HB_REGION_BAD, PR_1_HB_SLOT_BAD, PR_1_HB_SLOT_STALE, PR_1_LOCK_BAD,
	PR_1_LOCK_STALE, PR_1_LOCK_BAD_MODE,
	PR_2_JOURNAL_BAD, PR_2_JOURNAL_SLOT, PR_2_JOURNAL_DIRTY,
	PR_2_JOURNAL_RECORD_BAD,
	PR_3_CLUSTER_BAD, PR_3_INODE_BAD, PR_3_INODE_MODE, PR_3_INODE_MAP_TYPE,
	PR_3_PTR_RANGE, PR_3_PTRBLK_BAD, PR_3_BLOCK_DUP, PR_3_ALLOC_BYTES,
	PR_3_TBZ_BAD, PR_3_INLINE_TAIL, PR_3_INLINE_SIZE, PR_3_DIR_SIZE,
	PR_3_XATTR_BAD, PR_3_SMALL_TOO_BIG, PR_3_PTRBLK_OWNER, PR_3_CLUSTER_UNINIT,
	PR_4_CHUNK_BAD, PR_4_DIRENT_BAD_INODE, PR_4_DIRENT_BAD_NAME,
	PR_4_DIRENT_HASH, PR_4_DIRENT_DUP, PR_4_DIRENT_TYPE, PR_4_CHUNK_COUNT,
	PR_4_DIR_PARENT, PR_4_DIR_MULTILINK, PR_4_UNREACHABLE, PR_4_NO_ROOT,
	PR_4_NO_LOSTFOUND,
	PR_5_NLINK, PR_5_NENTRIES, PR_5_ORPHAN,
	PR_6_LEAKED, PR_6_UNMARKED, PR_6_NFREE, PR_6_BITS_BEYOND,
};
#define NCODES (sizeof(all_codes) / sizeof(all_codes[0]))

static void test_table(void)
{
	unsigned n, seen;
	const struct fsck_problem_info *t = fsck_problem_table(&n);

	CU_ASSERT_EQUAL(n, NCODES);
	for (size_t i = 0; i < NCODES; i++) {
		seen = 0;
		for (unsigned j = 0; j < n; j++)
			seen += t[j].code == all_codes[i];
		if (seen != 1)
			fprintf(stderr, "code 0x%04x appears %u times\n", all_codes[i], seen);
		CU_ASSERT_EQUAL(seen, 1);
		CU_ASSERT_PTR_NOT_NULL(fsck_problem_find(all_codes[i]));
	}
	for (unsigned j = 0; j < n; j++) {
		const char *name = t[j].name;

		CU_ASSERT_FATAL(name != NULL);
		CU_ASSERT(strncmp(name, "PR_", 3) == 0 && isdigit((unsigned char)name[3]) &&
			  name[4] == '_');
		/* The digit is the pass, which is the code's high byte. */
		CU_ASSERT_EQUAL(name[3] - '0', (int)(t[j].code >> 8));
		CU_ASSERT(t[j].message && t[j].message[0]);
		CU_ASSERT(t[j].fix && t[j].fix[0]);
		CU_ASSERT_PTR_EQUAL(fsck_problem_by_name(name), &t[j]);
		CU_ASSERT_PTR_EQUAL(fsck_problem_find(t[j].code), &t[j]);
		for (unsigned k = j + 1; k < n; k++) {
			CU_ASSERT(strcmp(name, t[k].name) != 0);
			CU_ASSERT(t[j].code != t[k].code);
		}
	}
	CU_ASSERT_PTR_NULL(fsck_problem_by_name("PR_9_NOPE"));
	CU_ASSERT_PTR_NULL(fsck_problem_find((enum fsck_problem)0x7777));
}

/* ---- whole runs ----------------------------------------------------------- */

static const char *lun_path;
static struct vol_geom geom;
static uint64_t ino_small, ino_big, ino_sparse;

static void fill(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

static uint64_t mk(struct vol *v, uint64_t dir, const char *name, size_t size,
		   unsigned seed)
{
	struct vol_attr a;
	uint8_t *buf = malloc(size ? size : 1);

	CU_ASSERT_FATAL(buf != NULL);
	CU_ASSERT_FATAL(vol_create(v, dir, name, S_IFREG | 0644, 0, 0, 0, &a) == 0);
	fill(buf, size, seed);
	if (size)
		CU_ASSERT_EQUAL(vol_write(v, a.ino, buf, size, 0), (ssize_t)size);
	free(buf);
	return a.ino;
}

/* A volume with a bit of everything the engine makes. */
static void make_volume(void)
{
	struct lun *lun;
	struct vol *v;
	struct vol_attr a, d;
	uint8_t blk[4096];

	lun_path = unit_scratch_volume("fsck.img", 512 * MIB, &lun);
	CU_ASSERT_FATAL(vol_open(lun, 0, &v) == 0);
	vol_geom_get(v, &geom);

	CU_ASSERT_FATAL(vol_mkdir(v, VMFS_ROOT_INO, "dir", 0755, 0, 0, &d) == 0);
	CU_ASSERT_FATAL(vol_mkdir(v, d.ino, "sub", 0755, 0, 0, &a) == 0);
	ino_small = mk(v, d.ino, "inline", 100, 1);
	mk(v, d.ino, "small", 200 * 1024 + 3, 2);
	ino_big = mk(v, VMFS_ROOT_INO, "big", 3 * MIB + 5, 3);
	CU_ASSERT(vol_link(v, ino_big, a.ino, "big-link", &a) == 0);
	CU_ASSERT(vol_symlink(v, d.ino, "sym", "../big", 0, 0, &a) == 0);
	memset(blk, 'x', 3000);
	blk[3000] = 0;
	CU_ASSERT(vol_symlink(v, VMFS_ROOT_INO, "longsym", (char *)blk, 0, 0, &a) == 0);
	CU_ASSERT(vol_setxattr(v, ino_small, "user.a", "1", 1, 0) == 0);
	CU_ASSERT(vol_setxattr(v, ino_small, "user.bb", "22", 2, 0) == 0);
	CU_ASSERT(vol_create(v, VMFS_ROOT_INO, "fifo", S_IFIFO | 0644, 0, 0, 0, &a) == 0);
	/* zeroedthick-like (TBZ blocks) and a sparse file with indirection */
	CU_ASSERT(vol_create(v, VMFS_ROOT_INO, "thick", S_IFREG | 0644, 0, 0, 0, &a) == 0);
	CU_ASSERT(vol_fallocate(v, a.ino, 0, 0, 4 * MIB) == 0);
	ino_sparse = mk(v, VMFS_ROOT_INO, "sparse", 0, 0);
	fill(blk, sizeof(blk), 9);
	CU_ASSERT(vol_write(v, ino_sparse, blk, sizeof(blk), 300 * MIB) ==
		  (ssize_t)sizeof(blk));
	for (int i = 0; i < 40; i++) {
		char name[32];

		snprintf(name, sizeof(name), "many-%02d", i);
		mk(v, d.ino, name, (size_t)i * 10, (unsigned)i);
	}
	CU_ASSERT(vol_unlink(v, d.ino, "many-07") == 0);
	CU_ASSERT(vol_close(v) == 0);
	lun_close(lun);
}

static struct fsck_result run(enum fsck_mode mode, uint64_t mem_limit)
{
	struct fsck_opts o;
	struct fsck_result r;
	struct lun *lun;

	CU_ASSERT_FATAL(lun_open(lun_path, mode == FSCK_MODE_NO ? LUN_RDONLY : 0,
				 &lun) == 0);
	fsck_opts_init(&o);
	o.mode = mode;
	if (mem_limit)
		o.mem_limit_bytes = mem_limit;
	fsck_run(lun, &o, &r);
	lun_close(lun);
	if (r.exit_code & FSCK_EXIT_ERROR)
		fprintf(stderr, "fsck: %s\n", r.error);
	return r;
}

static void test_fresh_clean(void)
{
	struct fsck_result r;

	make_volume();
	r = run(FSCK_MODE_NO, 0);
	CU_ASSERT_EQUAL(r.exit_code, 0);
	CU_ASSERT_EQUAL(r.problems_found, 0);
	CU_ASSERT(r.inodes_checked >= 40);
	CU_ASSERT(r.dirs_checked >= 4);
	CU_ASSERT(r.spilled_entries == 0);
	r = run(FSCK_MODE_YES, 0);
	CU_ASSERT_EQUAL(r.exit_code, 0);
	/* Tiny memory: the maps spill to Tokyo Cabinet and still agree. */
	r = run(FSCK_MODE_YES, 4096);
	CU_ASSERT_EQUAL(r.exit_code, 0);
	CU_ASSERT_EQUAL(r.problems_found, 0);
	CU_ASSERT(r.spilled_entries > 0);
	CU_ASSERT(r.peak_map_bytes <= 4096);
}

/* ---- hand-made damage ----------------------------------------------------- */

static void raw(bool write, void *blk, uint64_t off)
{
	struct lun *lun;

	CU_ASSERT_FATAL(lun_open(lun_path, 0, &lun) == 0);
	if (write) {
		CU_ASSERT_FATAL(lun_write(lun, blk, 4096, off) == 0);
	} else {
		CU_ASSERT_FATAL(lun_read(lun, blk, 4096, off) == 0);
	}
	lun_close(lun);
}

static uint64_t inode_addr(uint64_t ino)
{
	return geom.res[VMFS_RES_INODE].obj_offset + ino * 4096;
}

static void inode_reseal(uint8_t *blk, uint64_t ino)
{
	lun_md_seal(blk + VMFS_OBJ_OFFSET, VMFS_MAGIC_INODE, inode_addr(ino),
		    4096 - VMFS_OBJ_OFFSET);
}

/* Damage, then: -n finds it (4), -y fixes it (1), -n is clean (0). */
static void expect_repair(const char *what)
{
	struct fsck_result r;

	r = run(FSCK_MODE_NO, 0);
	if (r.exit_code != FSCK_EXIT_UNCORRECTED)
		fprintf(stderr, "%s: -n exit %d\n", what, r.exit_code);
	CU_ASSERT_EQUAL(r.exit_code, FSCK_EXIT_UNCORRECTED);
	r = run(FSCK_MODE_YES, 0);
	if (r.exit_code != FSCK_EXIT_FIXED)
		fprintf(stderr, "%s: -y exit %d\n", what, r.exit_code);
	CU_ASSERT_EQUAL(r.exit_code, FSCK_EXIT_FIXED);
	r = run(FSCK_MODE_NO, 0);
	if (r.exit_code != 0)
		fprintf(stderr, "%s: second -n exit %d, %llu problems\n", what,
			r.exit_code, (unsigned long long)r.problems_found);
	CU_ASSERT_EQUAL(r.exit_code, 0);
}

static void test_repairs(void)
{
	uint8_t *blk = lun_buf_alloc(4096), *b2 = lun_buf_alloc(4096);
	struct vmfs_inode *di = (struct vmfs_inode *)(blk + VMFS_OBJ_OFFSET);
	struct vmfs_inode *d2 = (struct vmfs_inode *)(b2 + VMFS_OBJ_OFFSET);
	uint64_t rc_addr = geom.res[VMFS_RES_FILE].hdr_offset;
	struct vmfs_rc *rc = (struct vmfs_rc *)(blk + VMFS_OBJ_OFFSET);
	struct fmt_inode fi, f2;
	struct fmt_rc h;

	CU_ASSERT_FATAL(blk && b2 && lun_path);

	/* A leaked file block: the last bit of file cluster 0. */
	raw(false, blk, rc_addr);
	CU_ASSERT_FATAL(fmt_rc_decode(rc, &h) == 0);
	rc->rc_bitmap[(h.nobjs - 1) / 8] |= (uint8_t)(1u << ((h.nobjs - 1) % 8));
	h.nfree--;
	fmt_rc_encode(&h, rc);
	lun_md_seal(&rc->rc_hdr, VMFS_MAGIC_RCLUSTER, rc_addr, 4096 - VMFS_OBJ_OFFSET);
	raw(true, blk, rc_addr);
	expect_repair("leaked block");

	/* Wrong link count and alloc bytes. */
	raw(false, blk, inode_addr(ino_big));
	CU_ASSERT_FATAL(fmt_inode_decode(di, &fi) == 0);
	fi.nlink = 7;
	fi.alloc_bytes = 12345;
	fmt_inode_encode(&fi, di);
	inode_reseal(blk, ino_big);
	raw(true, blk, inode_addr(ino_big));
	expect_repair("nlink");

	/* Two files share a block: "sparse" points at big's first block too. */
	raw(false, blk, inode_addr(ino_big));
	raw(false, b2, inode_addr(ino_sparse));
	d2->di_map[0] = di->di_map[0];
	CU_ASSERT_FATAL(fmt_inode_decode(d2, &f2) == 0);
	f2.alloc_bytes += geom.file_block_size;
	if (f2.size < geom.file_block_size)
		f2.size = geom.file_block_size;
	fmt_inode_encode(&f2, d2);
	inode_reseal(b2, ino_sparse);
	raw(true, b2, inode_addr(ino_sparse));
	expect_repair("duplicate block");
	raw(false, b2, inode_addr(ino_sparse));
	CU_ASSERT(d2->di_map[0] != di->di_map[0]);

	/* An inline file's tail and xattr garbage. */
	raw(false, blk, inode_addr(ino_small));
	di->di_inline[1500] = 0x55;
	di->di_xattr[1200] = 1;
	inode_reseal(blk, ino_small);
	raw(true, blk, inode_addr(ino_small));
	expect_repair("inline tail");

	/* An inode nobody names but with a link: goes to lost+found. */
	{
		struct lun *lun;
		struct vol *v;
		struct vol_attr a;

		CU_ASSERT_FATAL(lun_open(lun_path, 0, &lun) == 0);
		CU_ASSERT_FATAL(vol_open(lun, 0, &v) == 0);
		CU_ASSERT_FATAL(vol_create(v, VMFS_ROOT_INO, "lost", S_IFREG | 0600,
					   0, 0, 0, &a) == 0);
		vol_forget(v, a.ino, 1);
		CU_ASSERT(vol_close(v) == 0);
		lun_close(lun);
		/* Drop the root's entry for it, keeping its nlink of 1. */
		raw(false, blk, inode_addr(VMFS_ROOT_INO));
		{
			uint32_t per = geom.small_block_size / 4096;
			bool done = false;
			uint64_t n;

			CU_ASSERT_FATAL(fmt_inode_decode(di, &fi) == 0);
			n = fi.size / 4096;
			for (uint64_t k = 0; k < n && !done; k++) {
				uint64_t p = fmt_ptr_load(&di->di_map[k / per]);
				uint64_t ca = vmfs_ptr_addr(p) + (k % per) * 4096;
				struct vmfs_dirblk *db = (struct vmfs_dirblk *)b2;

				raw(false, b2, ca);
				for (int i = 0; i < VMFS_DIRENTS_PER_CHUNK && !done; i++) {
					if (fmt_dirent_ino(&db->db_ents[i]) != a.ino)
						continue;
					memset(&db->db_ents[i], 0, sizeof(db->db_ents[i]));
					fmt_dirblk_set_count(db, fmt_dirblk_count(db) - 1);
					lun_md_seal(&db->db_hdr, VMFS_MAGIC_DIRBLK, ca, 4096);
					raw(true, b2, ca);
					done = true;
				}
			}
			CU_ASSERT(done);
			fi.nentries--;
			fmt_inode_encode(&fi, di);
			inode_reseal(blk, VMFS_ROOT_INO);
			raw(true, blk, inode_addr(VMFS_ROOT_INO));
		}
		expect_repair("unreachable");
		CU_ASSERT_FATAL(lun_open(lun_path, 0, &lun) == 0);
		CU_ASSERT_FATAL(vol_open(lun, 0, &v) == 0);
		{
			char name[32];
			struct vol_attr b;

			snprintf(name, sizeof(name), "#%llu", (unsigned long long)a.ino);
			CU_ASSERT(vol_lookup(v, VMFS_LOSTFOUND_INO, name, &b) == 0);
			CU_ASSERT_EQUAL(b.ino, a.ino);
			vol_forget(v, b.ino, 1);
		}
		CU_ASSERT(vol_close(v) == 0);
		lun_close(lun);
	}
	lun_buf_free(blk);
	lun_buf_free(b2);
}

static CU_TestInfo fsck_tests[] = {
	{ "table", test_table },
	{ "fresh_clean", test_fresh_clean },
	{ "repairs", test_repairs },
	CU_TEST_INFO_NULL
};
UNIT_SUITE("fsck_problem", NULL, NULL, fsck_tests);
