/*
 * Link drops left pending in rc_unlinked (SPEC §8): the state a host
 * leaves when it removes a name whose inode another host has open, built
 * here from a volume of the engine's (entry gone, di_nlink one too many,
 * the bit set), as the unlinking host writes it.
 *
 *   - fsck -n finds it clean (the link counts as gone) and notes it;
 *     fsck -y applies the drops without a problem and finds nothing to
 *     do in a second run;
 *   - a bit whose drop was already made (di_nlink = entries, as a 2.x
 *     fsck would leave it) is a wrong link count to fsck, repaired to
 *     the entries, never a second drop;
 *   - a mount (no cluster layer) applies them: the file with another
 *     name keeps one link, the file with none is freed and its space
 *     is free again;
 *   in both cases every bit ends cleared.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include "unit.h"
#include "vmfs/format.h"
#include "vmfs/fsck.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"

#define MIB (1024ull * 1024)

struct pending {
	const char *path;
	uint64_t kept, gone;    /* the file with another name, the one without */
	uint64_t bfree;         /* free blocks before `gone` was written */
};

/* Set (or test) ino's bit in its cluster header's map at offset off. */
static bool rc_bit(struct lun *lun, const struct vol_geom *g, uint64_t ino,
		   size_t off, int set)
{
	const struct vol_res_geom *r = &g->res[VMFS_RES_INODE];
	uint64_t addr = r->hdr_offset +
			(ino / r->per_cluster) * VMFS_MD_BLOCK_SIZE;
	uint32_t j = (uint32_t)(ino % r->per_cluster);
	uint8_t *blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	struct vmfs_rc *rc = (struct vmfs_rc *)(blk + VMFS_OBJ_OFFSET);
	uint8_t *map = (uint8_t *)rc + off;
	bool was;

	CU_ASSERT_FATAL(lun_read(lun, blk, VMFS_MD_BLOCK_SIZE, addr) == 0);
	was = map[j >> 3] & (1u << (j & 7));
	if (set >= 0) {
		if (set)
			map[j >> 3] |= (uint8_t)(1u << (j & 7));
		else
			map[j >> 3] &= (uint8_t)~(1u << (j & 7));
		lun_md_seal(&rc->rc_hdr, VMFS_MAGIC_RCLUSTER, addr,
			    VMFS_MD_BLOCK_SIZE - VMFS_OBJ_OFFSET);
		CU_ASSERT_FATAL(lun_write(lun, blk, VMFS_MD_BLOCK_SIZE, addr) == 0);
	}
	lun_buf_free(blk);
	return was;
}

static uint64_t create_file(struct vol *v, const char *name, size_t len)
{
	static uint8_t buf[MIB];
	struct vol_attr a;

	CU_ASSERT_FATAL(vol_create(v, 1, name, S_IFREG | 0644, 0, 0, 0, &a) == 0);
	memset(buf, 0x5a, sizeof(buf));
	for (size_t off = 0; off < len; off += sizeof(buf))
		CU_ASSERT_FATAL(vol_write(v, a.ino, buf, sizeof(buf), off) ==
				(ssize_t)sizeof(buf));
	return a.ino;
}

/*
 * /kept and its second name /kept2, and /gone (4 MiB); then /kept2 and
 * /gone removed as a host that could not lock them does: the entry goes,
 * di_nlink stays, the rc_unlinked bit is set.
 */
static void make_pending(struct pending *p)
{
	struct vol_geom g;
	struct statvfs st;
	struct vol_attr a;
	struct lun *lun;
	struct vol *v;
	uint8_t *blk;

	p->path = unit_scratch_volume("unlinked", 512 * MIB, &lun);

	CU_ASSERT_FATAL(vol_open(lun, 0, &v) == 0);
	p->kept = create_file(v, "kept", MIB);
	CU_ASSERT_FATAL(vol_link(v, p->kept, 1, "kept2", &a) == 0);
	CU_ASSERT_FATAL(vol_statfs(v, &st) == 0);
	p->bfree = st.f_bfree;
	p->gone = create_file(v, "gone", 4 * MIB);
	CU_ASSERT_FATAL(vol_close(v) == 0);

	/* The entries go; the link counts stay as they were. */
	CU_ASSERT_FATAL(vol_open(lun, 0, &v) == 0);
	CU_ASSERT_FATAL(vol_unlink(v, 1, "kept2") == 0);
	CU_ASSERT_FATAL(vol_unlink(v, 1, "gone") == 0);
	CU_ASSERT_FATAL(vol_close(v) == 0);
	CU_ASSERT_FATAL(vol_geom_read(lun, &g, NULL, NULL) == 0);
	{
		struct vol_raw raw;

		unit_raw_init(&raw, &g, lun);
		blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
		CU_ASSERT_FATAL(vol_raw_inode_adjust(&raw, p->kept, blk, 1, 0) == 0);
		CU_ASSERT_FATAL(vol_raw_inode_adjust(&raw, p->gone, blk, 1, 0) == 0);
		lun_buf_free(blk);
	}
	/* /gone had no link left: the unlink made it an orphan, which it is
	 * not while its drop is pending. */
	rc_bit(lun, &g, p->gone, offsetof(struct vmfs_rc, rc_orphan), 0);
	rc_bit(lun, &g, p->kept, offsetof(struct vmfs_rc, rc_unlinked), 1);
	rc_bit(lun, &g, p->gone, offsetof(struct vmfs_rc, rc_unlinked), 1);
	lun_close(lun);
}

/* The drops applied: /kept one link, /gone free with its space, no bit. */
static void check_applied(const struct pending *p)
{
	struct vol_geom g;
	struct statvfs st;
	struct vol_attr a;
	struct lun *lun;
	struct vol *v;

	CU_ASSERT_FATAL(lun_open(p->path, 0, &lun) == 0);
	CU_ASSERT_FATAL(vol_geom_read(lun, &g, NULL, NULL) == 0);
	CU_ASSERT(!rc_bit(lun, &g, p->kept, offsetof(struct vmfs_rc, rc_unlinked), -1));
	CU_ASSERT(!rc_bit(lun, &g, p->gone, offsetof(struct vmfs_rc, rc_unlinked), -1));
	CU_ASSERT(!rc_bit(lun, &g, p->gone, offsetof(struct vmfs_rc, rc_orphan), -1));
	CU_ASSERT_FATAL(vol_open(lun, 0, &v) == 0);
	CU_ASSERT_FATAL(vol_getattr(v, p->kept, &a) == 0);
	CU_ASSERT_EQUAL(a.nlink, 1);
	CU_ASSERT_EQUAL(vol_getattr(v, p->gone, &a), -ESTALE);
	CU_ASSERT_FATAL(vol_statfs(v, &st) == 0);
	CU_ASSERT_EQUAL(st.f_bfree, p->bfree);
	CU_ASSERT(vol_close(v) == 0);
	lun_close(lun);
	CU_ASSERT(unit_fsck_clean(p->path, "after the drops were applied"));
}

static int fsck_mode(const char *path, enum fsck_mode mode,
		     struct fsck_result *r)
{
	struct fsck_opts o;
	struct lun *lun;
	int rc;

	fsck_opts_init(&o);
	o.mode = mode;
	CU_ASSERT_FATAL(lun_open(path, mode == FSCK_MODE_NO ? LUN_RDONLY : 0,
				 &lun) == 0);
	rc = fsck_run(lun, &o, r);
	lun_close(lun);
	return rc;
}

static void test_fsck(void)
{
	struct pending p;
	struct fsck_result r;

	make_pending(&p);
	CU_ASSERT(unit_fsck_clean(p.path, "pending drops, fsck -n"));
	CU_ASSERT_EQUAL(fsck_mode(p.path, FSCK_MODE_YES, &r) & ~FSCK_EXIT_FIXED,
			FSCK_EXIT_OK);
	CU_ASSERT_EQUAL(r.problems_found, 0);
	check_applied(&p);
	unlink(p.path);
}

static void test_mount(void)
{
	struct pending p;
	struct lun *lun;
	struct vol *v;

	make_pending(&p);
	/* The mount's sweep applies them. */
	CU_ASSERT_FATAL(lun_open(p.path, 0, &lun) == 0);
	CU_ASSERT_FATAL(vol_open(lun, 0, &v) == 0);
	CU_ASSERT(vol_close(v) == 0);
	lun_close(lun);
	check_applied(&p);
	unlink(p.path);
}

/*
 * A bit whose drop was already made (as a 2.x fsck, which lowers
 * di_nlink to the entries and keeps the bit, would leave it): fsck
 * counts a link too few and restores the count (PR_5_NLINK) rather than
 * dropping a link a name still needs; the bit goes.
 */
static void test_fsck_stale_bit(void)
{
	struct pending p;
	struct fsck_result r;
	struct vol_raw raw;
	struct vol_geom g;
	struct lun *lun;
	uint8_t *blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);

	make_pending(&p);
	CU_ASSERT_FATAL(lun_open(p.path, 0, &lun) == 0);
	CU_ASSERT_FATAL(vol_geom_read(lun, &g, NULL, NULL) == 0);
	unit_raw_init(&raw, &g, lun);
	CU_ASSERT_FATAL(vol_raw_inode_adjust(&raw, p.kept, blk, -1, 0) == 0);
	lun_close(lun);
	lun_buf_free(blk);
	CU_ASSERT_EQUAL(fsck_mode(p.path, FSCK_MODE_NO, &r), FSCK_EXIT_UNCORRECTED);
	CU_ASSERT_EQUAL(r.problems_found, 1);
	CU_ASSERT_EQUAL(fsck_mode(p.path, FSCK_MODE_YES, &r), FSCK_EXIT_FIXED);
	/* /gone's drop was pending for real: applied as in test_fsck. */
	check_applied(&p);
	unlink(p.path);
}

static CU_TestInfo unlinked_tests[] = {
	{ "fsck", test_fsck },
	{ "fsck_stale_bit", test_fsck_stale_bit },
	{ "mount", test_mount },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE("vol_unlinked", NULL, NULL, unlinked_tests);
