/*
 * The engine's writers for a volume that is not open (vol_raw_*, what
 * fsck repairs through): what they write, the engine reads back and
 * fsck -n finds clean; what they read, they do not trust.
 *
 *   - dir_add / dir_remove: an entry added to a directory of the engine's
 *     (full first chunk: the add starts a chunk) is found by vol_lookup
 *     with the counts it implies, removed again it is gone, and fsck -n is
 *     clean after each step; dir_find agrees;
 *   - dir_create: a rewritten lost+found is an empty directory of the
 *     next incarnation;
 *   - bmap_get / bmap_walk on a file with a single-indirect block: the
 *     pointer leads to the data the engine wrote, a hole is 0, and after
 *     the pointer block is damaged the block reads as a hole and the walk
 *     does not descend.
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "unit.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"

#define MIB (1024ull * 1024)

static const char *path;
static struct lun *lun;
static struct vol_geom geom;

static struct vol_raw raw;

/* A fresh volume; fill runs on it opened, then it is closed and the lun
 * stays open for the raw writers. */
static void setup(void (*fill)(struct vol *v))
{
	struct vol *v;

	if (lun)
		lun_close(lun);
	path = unit_scratch_volume("vol_raw.img", 512 * MIB, &lun);
	CU_ASSERT_FATAL(vol_open(lun, 0, &v) == 0);
	fill(v);
	CU_ASSERT_FATAL(vol_close(v) == 0);
	CU_ASSERT_FATAL(vol_geom_read(lun, &geom, NULL, NULL) == 0);
	unit_raw_init(&raw, &geom, lun);
}

static int cleanup(void)
{
	if (lun)
		lun_close(lun);
	lun = NULL;
	return 0;
}

/* Look name up in parent through the engine (the lun stays open). */
static int engine_lookup(uint64_t parent, const char *name, struct vol_attr *a)
{
	struct vol *v;
	int ret;

	CU_ASSERT_FATAL(vol_open(lun, VOL_RDONLY, &v) == 0);
	ret = vol_lookup(v, parent, name, a);
	if (!ret)
		vol_forget(v, a->ino, 1);
	vol_close(v);
	return ret;
}

static uint64_t dir_ino, file_ino;

/* Directory /d with exactly one full chunk, and a file /f. */
static void fill_dir(struct vol *v)
{
	struct vol_attr a;
	char name[16];

	vol_geom_get(v, &geom);
	CU_ASSERT_FATAL(vol_mkdir(v, geom.root_ino, "d", 0755, 0, 0, &a) == 0);
	dir_ino = a.ino;
	vol_forget(v, a.ino, 1);
	for (int i = 0; i < VMFS_DIRENTS_PER_CHUNK; i++) {
		snprintf(name, sizeof(name), "e%d", i);
		CU_ASSERT_FATAL(vol_create(v, dir_ino, name, S_IFREG | 0644, 0, 0,
					   0, &a) == 0);
		vol_forget(v, a.ino, 1);
	}
	CU_ASSERT_FATAL(vol_create(v, geom.root_ino, "f", S_IFREG | 0644, 0, 0, 0, &a) == 0);
	file_ino = a.ino;
	vol_forget(v, a.ino, 1);
}

static void test_dir_add_remove(void)
{
	uint8_t *iblk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	uint32_t hint = 0;
	uint64_t loc, ino;
	struct vol_attr a;
	uint8_t type;

	CU_ASSERT_FATAL(iblk != NULL);
	setup(fill_dir);
	CU_ASSERT_EQUAL(vol_raw_dir_find(&raw, dir_ino, "e3"), 0);
	CU_ASSERT_EQUAL(vol_raw_dir_find(&raw, dir_ino, "extra"), -ENOENT);

	/* A second name for /f, in a new chunk of /d; the link count with it. */
	CU_ASSERT_EQUAL_FATAL(vol_raw_dir_add(&raw, dir_ino, "extra", file_ino,
					      DT_REG, iblk, &hint, &loc), 0);
	CU_ASSERT_EQUAL(hint, 1);
	CU_ASSERT_EQUAL(le64toh(((struct vmfs_inode *)(iblk + VMFS_OBJ_OFFSET))->di_nentries),
			VMFS_DIRENTS_PER_CHUNK + 1);
	CU_ASSERT_EQUAL(vol_raw_inode_adjust(&raw, file_ino, iblk, 1, 0), 0);
	CU_ASSERT_EQUAL(vol_raw_dir_find(&raw, dir_ino, "extra"), 0);
	CU_ASSERT_EQUAL(engine_lookup(dir_ino, "extra", &a), 0);
	CU_ASSERT_EQUAL(a.ino, file_ino);
	CU_ASSERT_EQUAL(a.nlink, 2);
	CU_ASSERT_EQUAL(engine_lookup(geom.root_ino, "d", &a), 0);
	CU_ASSERT_EQUAL(a.size, 2 * VMFS_MD_BLOCK_SIZE);
	CU_ASSERT(unit_fsck_clean(path, "after vol_raw_dir_add"));

	CU_ASSERT_EQUAL(vol_raw_dir_remove(&raw, dir_ino, loc, iblk, &ino, &type), 0);
	CU_ASSERT_EQUAL(ino, file_ino);
	CU_ASSERT_EQUAL(type, DT_REG);
	CU_ASSERT_EQUAL(vol_raw_dir_remove(&raw, dir_ino, loc, iblk, &ino, &type),
			-ESTALE);
	CU_ASSERT_EQUAL(vol_raw_inode_adjust(&raw, file_ino, iblk, -1, 0), 0);
	CU_ASSERT_EQUAL(engine_lookup(dir_ino, "extra", &a), -ENOENT);
	CU_ASSERT_EQUAL(engine_lookup(geom.root_ino, "f", &a), 0);
	CU_ASSERT_EQUAL(a.nlink, 1);
	CU_ASSERT(unit_fsck_clean(path, "after vol_raw_dir_remove"));
	lun_buf_free(iblk);
}

static void fill_nothing(struct vol *v)
{
	(void)v;
}

static void test_dir_create(void)
{
	struct vol_attr a, b;

	setup(fill_nothing);
	CU_ASSERT_EQUAL_FATAL(engine_lookup(geom.root_ino, "lost+found", &a), 0);
	CU_ASSERT_EQUAL(vol_raw_dir_create(&raw, geom.lostfound_ino,
					   geom.root_ino, 0700), 0);
	CU_ASSERT_EQUAL_FATAL(engine_lookup(geom.root_ino, "lost+found", &b), 0);
	CU_ASSERT(S_ISDIR(b.mode));
	CU_ASSERT_EQUAL(b.mode & 07777, 0700);
	CU_ASSERT_EQUAL(b.nlink, 2);
	CU_ASSERT_EQUAL(b.size, 0);
	CU_ASSERT_EQUAL(b.generation, a.generation + 1);
	CU_ASSERT(unit_fsck_clean(path, "after vol_raw_dir_create"));
}

#define FAR_LBN (VMFS_NDIRECT + 5)

/* /big: one byte in file block FAR_LBN (under a single-indirect block),
 * nothing in FAR_LBN - 1. */
static void fill_file(struct vol *v)
{
	struct vol_attr a;

	vol_geom_get(v, &geom);
	CU_ASSERT_FATAL(vol_create(v, geom.root_ino, "big", S_IFREG | 0644, 0, 0,
				   0, &a) == 0);
	file_ino = a.ino;
	vol_forget(v, a.ino, 1);
	CU_ASSERT_FATAL(vol_write(v, file_ino, "Z", 1,
				  (uint64_t)FAR_LBN * geom.file_block_size + 7) == 1);
}

static int count_obj(void *ctx, enum vmfs_res_type t, uint64_t idx, int level)
{
	int *n = ctx;

	(void)idx;
	CU_ASSERT_EQUAL(t, level ? VMFS_RES_PTRBLK : VMFS_RES_FILE);
	n[level]++;
	return 1;
}

static void test_bmap(void)
{
	uint8_t *iblk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	uint8_t *buf = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	struct vmfs_inode *di = (struct vmfs_inode *)(iblk + VMFS_OBJ_OFFSET);
	uint64_t p, pb_addr;
	int n[5] = { 0 };

	CU_ASSERT_FATAL(iblk && buf);
	setup(fill_file);
	CU_ASSERT_EQUAL_FATAL(vol_raw_inode_read(&raw, file_ino, iblk), 0);
	CU_ASSERT_EQUAL_FATAL(le16toh(di->di_map_type), VMFS_MAP_FILE);
	CU_ASSERT_EQUAL(vol_raw_bmap_get(&raw, iblk, FAR_LBN, &p), 0);
	CU_ASSERT_FATAL(p != 0);
	CU_ASSERT_EQUAL(lun_read(lun, buf, VMFS_MD_BLOCK_SIZE,
				 (p & VMFS_PTR_ADDR_MASK) << VMFS_MD_BLOCK_SHIFT), 0);
	CU_ASSERT_EQUAL(buf[7], 'Z');
	CU_ASSERT_EQUAL(vol_raw_bmap_get(&raw, iblk, FAR_LBN - 1, &p), 0);
	CU_ASSERT_EQUAL(p, 0);
	CU_ASSERT_EQUAL(vol_raw_bmap_walk(&raw, iblk, count_obj, n), 0);
	CU_ASSERT_EQUAL(n[0], 1);
	CU_ASSERT_EQUAL(n[1], 1);

	/* A damaged pointer block is a hole, not a pointer into garbage. */
	pb_addr = (le64toh(di->di_map[VMFS_MAP_IND1]) & VMFS_PTR_ADDR_MASK) <<
		  VMFS_MD_BLOCK_SHIFT;
	CU_ASSERT_EQUAL_FATAL(lun_read(lun, buf, VMFS_MD_BLOCK_SIZE, pb_addr), 0);
	buf[VMFS_MD_BLOCK_SIZE - 1] ^= 0xff;
	CU_ASSERT_EQUAL_FATAL(lun_write(lun, buf, VMFS_MD_BLOCK_SIZE, pb_addr), 0);
	CU_ASSERT_EQUAL(vol_raw_bmap_get(&raw, iblk, FAR_LBN, &p), 0);
	CU_ASSERT_EQUAL(p, 0);
	memset(n, 0, sizeof(n));
	CU_ASSERT_EQUAL(vol_raw_bmap_walk(&raw, iblk, count_obj, n), 0);
	CU_ASSERT_EQUAL(n[0], 0);
	CU_ASSERT_EQUAL(n[1], 1);
	lun_buf_free(iblk);
	lun_buf_free(buf);
}

static CU_TestInfo tests[] = {
	{ "dir_add_remove", test_dir_add_remove },
	{ "dir_create", test_dir_create },
	{ "bmap", test_bmap },
	CU_TEST_INFO_NULL,
};
UNIT_SUITE("vol_raw", NULL, cleanup, tests);
