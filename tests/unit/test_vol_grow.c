/*
 * vol_grow: an offline volume takes the space its LUN gained.
 *
 *   - grown once and twice: the files read back unchanged, statfs grew
 *     by exactly the new file blocks, all of the free space (old and new)
 *     can be written and no more, fsck -n is clean;
 *   - a LUN that did not grow, grew by less than a file block, or shrank:
 *     the named error, nothing written;
 *   - a LUN larger than the file-block cluster table allows: grown to the
 *     table's maximum, and the next grow says the table is full;
 *   - --dry-run writes nothing;
 *   - power lost at every write of a grow (every prefix of the recorded
 *     writes, every subset of a flush epoch, the last write torn at
 *     sector boundaries): the volume opens, fsck -n exits 0, the size is
 *     the old or the new one, the files are intact; fsck -y then leaves it
 *     clean without notes, and grow run again ends at the new size;
 *   - the same for vol_grow_online of a volume open read-write when its
 *     LUN grows (the mount's and unmount's journal writes recorded too):
 *     each state is mounted first (its journal replayed), and grown again
 *     online.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include "unit.h"
#include "vmfs/fsck.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"

#define KIB 1024ull
#define MIB (1024ull * 1024)
#define FBS (64 * KIB)
#define SECTOR 512u

/* The files every test writes before it grows the volume. */
static const struct {
	const char *name;
	size_t len;
	unsigned seed;
} files[] = {
	{ "tiny", 700, 1 },             /* inline */
	{ "small", 20 * KIB + 5, 2 },   /* small blocks */
	{ "big", 3 * MIB + 4096, 3 },   /* file blocks */
};
#define NFILES (sizeof(files) / sizeof(files[0]))

static void pattern(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 9));
}

static void file_resize(const char *path, uint64_t size)
{
	int fd = open(path, O_CREAT | O_RDWR, 0600);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(ftruncate(fd, (off_t)size) == 0);
	close(fd);
}

/*
 * mkfs on a fresh sparse file of size bytes, with room to grow to
 * max_grow (vol_mkfs_opts.max_grow_size), then write the files.
 */
static const char *make_volume_max(const char *stem, uint64_t size,
				   uint64_t max_grow)
{
	const char *path = unit_tmp_path(stem);
	struct vol_mkfs_opts o;
	struct lun *lun;
	struct vol *v;

	file_resize(path, size);
	CU_ASSERT_FATAL(lun_open(path, 0, &lun) == 0);
	vol_mkfs_opts_init(&o);
	o.max_grow_size = max_grow;
	o.file_block_size = FBS;
	o.small_block_size = 4 * KIB;
	o.max_hosts = 2;
	o.journal_size = MIB;
	CU_ASSERT_FATAL(vol_mkfs(lun, &o, NULL) == 0);
	CU_ASSERT_FATAL(vol_open(lun, 0, &v) == 0);
	for (size_t i = 0; i < NFILES; i++) {
		uint8_t *buf = malloc(files[i].len);
		struct vol_attr a;

		CU_ASSERT_FATAL(buf != NULL);
		pattern(buf, files[i].len, files[i].seed);
		CU_ASSERT_FATAL(vol_create(v, VMFS_ROOT_INO, files[i].name,
					   S_IFREG | 0644, 0, 0, 0, &a) == 0);
		CU_ASSERT_FATAL(vol_write(v, a.ino, buf, files[i].len, 0) ==
				(ssize_t)files[i].len);
		free(buf);
	}
	CU_ASSERT_FATAL(vol_close(v) == 0);
	lun_close(lun);
	return path;
}

static const char *make_volume(const char *stem, uint64_t size)
{
	return make_volume_max(stem, size, VOL_GROW_DEFAULT);
}

/* Every file reads back as written; false (and why) otherwise. */
static bool files_intact(struct vol *v, char *why, size_t len)
{
	for (size_t i = 0; i < NFILES; i++) {
		uint8_t *want = malloc(files[i].len), *got = malloc(files[i].len + 1);
		struct vol_attr a;
		bool ok;

		pattern(want, files[i].len, files[i].seed);
		ok = vol_lookup(v, VMFS_ROOT_INO, files[i].name, &a) == 0 &&
		     a.size == files[i].len &&
		     vol_read(v, a.ino, got, files[i].len + 1, 0) ==
			     (ssize_t)files[i].len &&
		     !memcmp(want, got, files[i].len);
		free(want);
		free(got);
		if (!ok) {
			snprintf(why, len, "file %s differs", files[i].name);
			return false;
		}
	}
	return true;
}

static int grow(const char *path, struct vol_grow_result *r)
{
	struct vol_grow_opts o = { 0 };
	struct lun *lun;
	int ret;

	CU_ASSERT_FATAL(lun_open(path, 0, &lun) == 0);
	ret = vol_grow(lun, &o, r);
	lun_close(lun);
	return ret;
}

static void statfs_of(const char *path, struct statvfs *st)
{
	struct lun *lun;
	struct vol *v;
	char why[64];

	CU_ASSERT_FATAL(lun_open(path, LUN_RDONLY, &lun) == 0);
	CU_ASSERT_FATAL(vol_open(lun, VOL_RDONLY, &v) == 0);
	CU_ASSERT(files_intact(v, why, sizeof(why)));
	vol_statfs(v, st);
	vol_close(v);
	lun_close(lun);
}

/* Write the whole free space in one file: it must all fit, and one more
 * file block must not. */
static void fill(const char *path)
{
	enum { CHUNK = 1024 * 1024 };
	uint8_t *buf = malloc(CHUNK);
	struct statvfs st;
	struct vol_attr a;
	struct lun *lun;
	struct vol *v;
	uint64_t free_bytes, off = 0;

	CU_ASSERT_FATAL(buf != NULL);
	memset(buf, 0x5a, CHUNK);
	CU_ASSERT_FATAL(lun_open(path, 0, &lun) == 0);
	CU_ASSERT_FATAL(vol_open(lun, 0, &v) == 0);
	vol_statfs(v, &st);
	free_bytes = (uint64_t)st.f_bfree * st.f_frsize;
	CU_ASSERT_FATAL(vol_create(v, VMFS_ROOT_INO, "fill", S_IFREG | 0644, 0,
				   0, 0, &a) == 0);
	while (off < free_bytes) {
		size_t n = free_bytes - off < CHUNK ? free_bytes - off : CHUNK;
		ssize_t w = vol_write(v, a.ino, buf, n, off);

		CU_ASSERT_EQUAL(w, (ssize_t)n);
		if (w != (ssize_t)n) {
			fprintf(stderr, "\n  fill: write at %llu of %llu free: %zd\n",
				(unsigned long long)off,
				(unsigned long long)free_bytes, w);
			break;
		}
		off += n;
	}
	CU_ASSERT_EQUAL(vol_write(v, a.ino, buf, FBS, off), -ENOSPC);
	CU_ASSERT_EQUAL(vol_close(v), 0);
	lun_close(lun);
	free(buf);
}

static void grow_and_check(const char *path, uint64_t new_lun)
{
	struct statvfs before, after;
	struct vol_grow_result r;

	statfs_of(path, &before);
	file_resize(path, new_lun);
	CU_ASSERT_EQUAL_FATAL(grow(path, &r), 0);
	CU_ASSERT_EQUAL(r.new_size_bytes, new_lun);
	CU_ASSERT(r.new_file_blocks > r.old_file_blocks);
	CU_ASSERT_FALSE(r.capped);
	CU_ASSERT_FALSE(r.finished);
	CU_ASSERT(unit_fsck_clean(path, "after grow"));
	statfs_of(path, &after);
	CU_ASSERT_EQUAL((uint64_t)(after.f_blocks - before.f_blocks) * after.f_frsize,
			(r.new_file_blocks - r.old_file_blocks) * FBS);
	CU_ASSERT_EQUAL((uint64_t)(after.f_bfree - before.f_bfree) * after.f_frsize,
			(r.new_file_blocks - r.old_file_blocks) * FBS);
}

static void test_grow_fill(void)
{
	const char *path = make_volume("grow-fill.img", 48 * MIB);

	grow_and_check(path, 96 * MIB);
	fill(path);
	CU_ASSERT(unit_fsck_clean(path, "after filling the grown volume"));
}

static uint64_t grow_recorded(const char *path, bool dry_run, int *ret,
			      struct vol_grow_result *r);

/*
 * Allocate the whole free space in one file without writing it (to-be-
 * zeroed blocks, so a GiB costs no data writes): it must all fit, one
 * more file block must not, and the last block reads back as written.
 */
static void reserve_all(const char *path)
{
	uint8_t in[64], out[64];
	struct statvfs st;
	struct vol_attr a;
	struct lun *lun;
	struct vol *v;
	uint64_t free_bytes;

	memset(in, 0xc3, sizeof(in));
	CU_ASSERT_FATAL(lun_open(path, 0, &lun) == 0);
	CU_ASSERT_FATAL(vol_open(lun, 0, &v) == 0);
	vol_statfs(v, &st);
	free_bytes = (uint64_t)st.f_bfree * st.f_frsize;
	CU_ASSERT_FATAL(vol_create(v, VMFS_ROOT_INO, "reserved", S_IFREG | 0644,
				   0, 0, 0, &a) == 0);
	CU_ASSERT_EQUAL(vol_fallocate(v, a.ino, 0, 0, free_bytes), 0);
	CU_ASSERT_EQUAL(vol_fallocate(v, a.ino, 0, free_bytes, FBS), -ENOSPC);
	CU_ASSERT_EQUAL(vol_write(v, a.ino, in, sizeof(in), free_bytes - FBS),
			(ssize_t)sizeof(in));
	CU_ASSERT_EQUAL(vol_read(v, a.ino, out, sizeof(out), free_bytes - FBS),
			(ssize_t)sizeof(out));
	CU_ASSERT(!memcmp(in, out, sizeof(in)));
	vol_statfs(v, &st);
	CU_ASSERT_EQUAL(st.f_bfree, 0);
	CU_ASSERT_EQUAL(vol_close(v), 0);
	lun_close(lun);
}

/*
 * The grow limit a volume was made with (vol_grow_max on its header).
 * mkfs's table for the default target is the only room: with 64 KiB
 * blocks the alignment padding alone holds 16 headers (1 GiB of blocks).
 */
static void grow_limit(const char *path, uint64_t *max_blocks,
		       uint64_t *max_size)
{
	struct vol_geom g;
	struct lun *lun;

	CU_ASSERT_FATAL(lun_open(path, LUN_RDONLY, &lun) == 0);
	CU_ASSERT_FATAL(vol_geom_read(lun, &g, NULL, NULL) == 0);
	lun_close(lun);
	vol_grow_max(&g, max_blocks, max_size);
}

#define BASE_16X (80 * MIB)  /* 16x = 1.25 GiB, past the padding's 1 GiB */

/* Made at A, grown to 16A in one step: the default reservation. */
static void test_grow_16x(void)
{
	const char *path = make_volume("grow-16x.img", BASE_16X);
	uint64_t max_blocks, max_size;
	struct vol_grow_result r;
	int ret;

	grow_limit(path, &max_blocks, &max_size);
	CU_ASSERT(max_size >= 16 * BASE_16X);
	CU_ASSERT(max_blocks > 1024 * 16);
	grow_and_check(path, 16 * BASE_16X);
	reserve_all(path);
	CU_ASSERT(unit_fsck_clean(path, "after a 16x grow and filling it"));
	/* Beyond the table: capped at the limit mkfs reported, then refused. */
	file_resize(path, 2 * max_size);
	CU_ASSERT_EQUAL_FATAL(grow(path, &r), 0);
	CU_ASSERT(r.capped);
	CU_ASSERT_EQUAL(r.max_file_blocks, max_blocks);
	CU_ASSERT_EQUAL(r.max_size_bytes, max_size);
	CU_ASSERT_EQUAL(r.new_file_blocks, max_blocks);
	file_resize(path, 3 * max_size);
	CU_ASSERT_EQUAL(grow_recorded(path, false, &ret, &r), 0);
	CU_ASSERT_EQUAL(ret, -VMFS_E_GROW_FULL);
	CU_ASSERT(unit_fsck_clean(path, "after growing to the limit"));
}

/* Made at A, grown to 16A in several steps (one not block-aligned). */
static void test_grow_16x_steps(void)
{
	const char *path = make_volume("grow-16x-steps.img", BASE_16X);

	grow_and_check(path, 2 * BASE_16X);
	grow_and_check(path, 5 * BASE_16X + 20 * KIB);
	grow_and_check(path, 11 * BASE_16X);
	grow_and_check(path, 16 * BASE_16X);
	reserve_all(path);
	CU_ASSERT(unit_fsck_clean(path, "after four grows to 16x and filling it"));
}

/*
 * --max-grow-size: a larger target gets a larger table, and 0 gives the
 * layout mkfs made before the reservation (the table padded to a file
 * block only), which still grows to that padding's limit.
 */
static void test_grow_max_option(void)
{
	const char *big = make_volume_max("grow-max-big.img", BASE_16X, 4ull << 30);
	const char *old = make_volume_max("grow-max-old.img", BASE_16X, 0);
	uint64_t max_blocks, max_size;
	struct vol_grow_result r;
	struct vol_geom g;
	struct lun *lun;
	int ret;

	grow_limit(big, &max_blocks, &max_size);
	/* 64 headers' room, plus at most 15 for the table's alignment. */
	CU_ASSERT(max_size >= 4ull << 30);
	CU_ASSERT(max_blocks >= 64 * 1024 && max_blocks <= 79 * 1024);

	CU_ASSERT_FATAL(lun_open(old, LUN_RDONLY, &lun) == 0);
	CU_ASSERT_FATAL(vol_geom_read(lun, &g, NULL, NULL) == 0);
	lun_close(lun);
	CU_ASSERT_EQUAL(g.res[VMFS_RES_FILE].obj_offset,
			(g.res[VMFS_RES_FILE].hdr_offset +
			 g.res[VMFS_RES_FILE].nclusters * VMFS_MD_BLOCK_SIZE +
			 FBS - 1) / FBS * FBS);
	grow_limit(old, &max_blocks, &max_size);
	CU_ASSERT_EQUAL(max_blocks, (g.res[VMFS_RES_FILE].obj_offset -
				     g.res[VMFS_RES_FILE].hdr_offset) /
				    VMFS_MD_BLOCK_SIZE * 1024);
	CU_ASSERT(max_blocks <= (FBS / VMFS_MD_BLOCK_SIZE) * 1024);
	file_resize(old, 16 * BASE_16X);
	CU_ASSERT_EQUAL_FATAL(grow(old, &r), 0);
	CU_ASSERT(r.capped);
	CU_ASSERT_EQUAL(r.new_file_blocks, max_blocks);
	CU_ASSERT(r.max_size_bytes < 16 * BASE_16X);
	CU_ASSERT(unit_fsck_clean(old, "after growing an unreserved volume"));
	file_resize(old, 32 * BASE_16X);
	CU_ASSERT_EQUAL(grow_recorded(old, false, &ret, &r), 0);
	CU_ASSERT_EQUAL(ret, -VMFS_E_GROW_FULL);
}

static void test_grow_twice(void)
{
	const char *path = make_volume("grow-twice.img", 40 * MIB);

	grow_and_check(path, 56 * MIB + 12 * KIB);  /* not file-block aligned */
	grow_and_check(path, 80 * MIB);
	fill(path);
	CU_ASSERT(unit_fsck_clean(path, "after two grows and a fill"));
}

/* Bytes the recorder saw written (writes and zeroes) by a grow of path. */
static uint64_t grow_recorded(const char *path, bool dry_run, int *ret,
			      struct vol_grow_result *r)
{
	struct vol_grow_opts o = { .dry_run = dry_run };
	const struct lun_rec_entry *e;
	struct lun *inner, *lun;
	uint64_t bytes = 0;
	size_t n;

	CU_ASSERT_FATAL(lun_open(path, 0, &inner) == 0);
	CU_ASSERT_FATAL(lun_fault_wrap(inner, &lun) == 0);
	lun_fault_record(lun, true);
	*ret = vol_grow(lun, &o, r);
	e = lun_fault_records(lun, &n);
	for (size_t i = 0; i < n; i++)
		if (e[i].kind != LUN_REC_FLUSH)
			bytes += e[i].len;
	lun_close(lun);
	return bytes;
}

/* Bytes between the last file block and the backup header. */
static uint64_t tail_bytes(const char *path)
{
	const struct vol_res_geom *f;
	struct vol_geom g;
	struct lun *lun;

	CU_ASSERT_FATAL(lun_open(path, LUN_RDONLY, &lun) == 0);
	CU_ASSERT_FATAL(vol_geom_read(lun, &g, NULL, NULL) == 0);
	lun_close(lun);
	f = &g.res[VMFS_RES_FILE];
	return g.backup_offset - (f->obj_offset + f->count * f->obj_size);
}

static void test_grow_refusals(void)
{
	const char *path = make_volume("grow-refuse.img", 32 * MIB);
	struct vol_grow_result r;
	uint64_t exact;
	int ret;

	/* Not enlarged. */
	CU_ASSERT_EQUAL(grow_recorded(path, false, &ret, &r), 0);
	CU_ASSERT_EQUAL(ret, -VMFS_E_NOT_GROWN);
	CU_ASSERT_EQUAL(r.old_size_bytes, 32 * MIB);
	CU_ASSERT_EQUAL(r.lun_bytes, 32 * MIB);
	/* A dry run computes the result and writes nothing. */
	file_resize(path, 64 * MIB);
	CU_ASSERT_EQUAL(grow_recorded(path, true, &ret, &r), 0);
	CU_ASSERT_EQUAL(ret, 0);
	CU_ASSERT_EQUAL(r.new_size_bytes, 64 * MIB);
	CU_ASSERT(r.new_file_blocks > r.old_file_blocks);
	/* Grown to leave no tail, then enlarged by less than a file block. */
	exact = 32 * MIB - tail_bytes(path) + 2 * FBS;
	file_resize(path, exact);
	CU_ASSERT_EQUAL_FATAL(grow(path, &r), 0);
	CU_ASSERT_EQUAL(tail_bytes(path), 0);
	file_resize(path, exact + FBS - VMFS_MD_BLOCK_SIZE);
	CU_ASSERT_EQUAL(grow_recorded(path, false, &ret, &r), 0);
	CU_ASSERT_EQUAL(ret, -VMFS_E_NOT_GROWN);
	CU_ASSERT_EQUAL(r.lun_bytes, exact + FBS - VMFS_MD_BLOCK_SIZE);
	CU_ASSERT(unit_fsck_clean(path, "after refused grows"));
	/* Shrunk below the volume (which loses its backup header). */
	file_resize(path, 24 * MIB);
	CU_ASSERT_EQUAL(grow_recorded(path, false, &ret, &r), 0);
	CU_ASSERT_EQUAL(ret, -VMFS_E_LUN_SHRUNK);
	CU_ASSERT_EQUAL(r.old_size_bytes, exact);
	CU_ASSERT_EQUAL(r.lun_bytes, 24 * MIB);
}

static void test_grow_capped(void)
{
	const char *path = make_volume("grow-cap.img", 32 * MIB);
	struct vol_grow_result r;
	struct statvfs st;
	int ret;

	file_resize(path, 64ull << 30);
	CU_ASSERT_EQUAL_FATAL(grow(path, &r), 0);
	CU_ASSERT(r.capped);
	CU_ASSERT_EQUAL(r.new_file_blocks, r.max_file_blocks);
	CU_ASSERT_EQUAL(r.new_size_bytes, 64ull << 30);
	CU_ASSERT(r.max_size_bytes < r.new_size_bytes);
	CU_ASSERT(r.max_size_bytes > 32 * MIB);
	CU_ASSERT(unit_fsck_clean(path, "after a capped grow"));
	statfs_of(path, &st);
	CU_ASSERT_EQUAL((uint64_t)st.f_blocks * st.f_frsize, r.max_file_blocks * FBS);
	/* The table is full: a bigger LUN adds nothing. */
	file_resize(path, 128ull << 30);
	CU_ASSERT_EQUAL(grow_recorded(path, false, &ret, &r), 0);
	CU_ASSERT_EQUAL(ret, -VMFS_E_GROW_FULL);
	CU_ASSERT_EQUAL(r.new_file_blocks, r.max_file_blocks);
	CU_ASSERT(unit_fsck_clean(path, "after a refused grow past the table"));
}

/* Set (or read) byte 0x200 of the header copy at off: in vh_reserved,
 * where a newer minor would put its fields. */
static uint8_t header_reserved_byte(const char *path, uint64_t off, int set)
{
	struct vmfs_volume *d;
	struct lun *lun;
	uint8_t b;

	CU_ASSERT_FATAL(lun_open(path, 0, &lun) == 0);
	d = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	CU_ASSERT_FATAL(d && lun_read(lun, d, VMFS_MD_BLOCK_SIZE, off) == 0);
	if (set >= 0) {
		d->vh_reserved[0x200 - 0x188] = (uint8_t)set;
		lun_md_seal(&d->vh_hdr, VMFS_MAGIC_VOLUME, off, VMFS_MD_BLOCK_SIZE);
		CU_ASSERT_FATAL(lun_write(lun, d, VMFS_MD_BLOCK_SIZE, off) == 0);
	}
	b = d->vh_reserved[0x200 - 0x188];
	lun_buf_free(d);
	lun_close(lun);
	return b;
}

/* Reserved header bytes (a newer minor's fields) survive a grow (§14). */
static void test_grow_keeps_reserved(void)
{
	const char *path = make_volume("grow-keep.img", 32 * MIB);
	struct vol_grow_result r;

	header_reserved_byte(path, 0, 0xa5);
	header_reserved_byte(path, 32 * MIB - VMFS_MD_BLOCK_SIZE, 0xa5);
	file_resize(path, 48 * MIB);
	CU_ASSERT_EQUAL_FATAL(grow(path, &r), 0);
	CU_ASSERT_EQUAL(header_reserved_byte(path, 0, -1), 0xa5);
	CU_ASSERT_EQUAL(header_reserved_byte(path, 48 * MIB - VMFS_MD_BLOCK_SIZE, -1),
			0xa5);
	CU_ASSERT(unit_fsck_clean(path, "after growing a header with reserved bytes"));
}

/* ---- power lost at every write ------------------------------------------ */

struct crash_ctx {
	bool online;               /* vol_grow_online on an open volume */
	int base_fd, work_fd;
	const char *work;
	uint64_t old_size, new_size;
	const struct lun_rec_entry *rec;
	size_t nrec;
	unsigned states, failed;
	unsigned at_old, at_new, noted;
};

static void range_copy(int from, int to, uint64_t off, uint64_t len)
{
	static uint8_t buf[1 << 20];

	while (len) {
		size_t n = len < sizeof(buf) ? len : sizeof(buf);
		ssize_t r = pread(from, buf, n, (off_t)off);

		CU_ASSERT_FATAL(r == (ssize_t)n);
		CU_ASSERT_FATAL(pwrite(to, buf, n, (off_t)off) == (ssize_t)n);
		off += n;
		len -= n;
	}
}

/* Apply the sectors of record i that mask selects (all when mask is 0). */
static void rec_apply(struct crash_ctx *x, size_t i, uint64_t mask)
{
	const struct lun_rec_entry *e = &x->rec[i];
	static const uint8_t zero[SECTOR];

	for (uint64_t s = 0; s < e->len / SECTOR; s++) {
		const void *src = e->kind == LUN_REC_ZERO ? zero :
				  (const uint8_t *)e->data + s * SECTOR;

		if (mask && !(s < 64 && (mask >> s & 1)))
			continue;
		CU_ASSERT_FATAL(pwrite(x->work_fd, src, SECTOR,
				       (off_t)(e->off + s * SECTOR)) == SECTOR);
	}
}

static void note_cb(void *ctx, const struct fsck_problem_info *p,
		    uint64_t addr, const char *detail)
{
	(void)ctx;
	(void)p;
	(void)addr;
	(void)detail;
}

static int fsck_on(struct lun *lun, enum fsck_mode mode, struct fsck_result *r)
{
	struct fsck_opts o;

	fsck_opts_init(&o);
	o.mode = mode;
	o.note = note_cb;
	return fsck_run(lun, &o, r);
}

/*
 * Check the work image as it is; every write the check makes goes
 * through a recorder so that the image can be put back afterwards.
 */
static bool crash_check(struct crash_ctx *x, char *why, size_t len)
{
	struct vol_grow_opts go = { 0 };
	struct vol_grow_result gr;
	struct fsck_result fr;
	struct lun *inner, *lun;
	const struct lun_rec_entry *e;
	struct vol_geom g;
	struct vol *v;
	bool ok = false;
	size_t n;
	int ret;

	CU_ASSERT_FATAL(lun_open(x->work, 0, &inner) == 0);
	CU_ASSERT_FATAL(lun_fault_wrap(inner, &lun) == 0);
	lun_fault_record(lun, true);
	/* The host that grew it online was cut too: a mount replays its
	 * journal (the last old cluster's header may be in it). */
	if (x->online) {
		ret = vol_open(lun, 0, &v);
		if (ret) {
			snprintf(why, len, "mount: %s", vmfs_strerror(ret));
			goto out;
		}
		CU_ASSERT_EQUAL(vol_close(v), 0);
	}
	ret = vol_open(lun, VOL_RDONLY, &v);
	if (ret) {
		snprintf(why, len, "read-only open: %s", vmfs_strerror(ret));
		goto out;
	}
	vol_geom_get(v, &g);
	ok = files_intact(v, why, len);
	vol_close(v);
	if (!ok)
		goto out;
	ok = false;
	if (g.size_bytes != x->old_size && g.size_bytes != x->new_size) {
		snprintf(why, len, "size %llu is neither old nor new",
			 (unsigned long long)g.size_bytes);
		goto out;
	}
	x->at_old += g.size_bytes == x->old_size;
	x->at_new += g.size_bytes == x->new_size;
	ret = fsck_on(lun, FSCK_MODE_NO, &fr);
	if (ret) {
		snprintf(why, len, "fsck -n exit %d (%llu problems)", ret,
			 (unsigned long long)fr.problems_found);
		goto out;
	}
	x->noted += fr.notes != 0;
	ret = fsck_on(lun, FSCK_MODE_YES, &fr);
	if (ret & ~FSCK_EXIT_FIXED) {
		snprintf(why, len, "fsck -y exit %d", ret);
		goto out;
	}
	ret = fsck_on(lun, FSCK_MODE_NO, &fr);
	if (ret || fr.notes) {
		snprintf(why, len, "fsck -n after -y: exit %d, %llu notes", ret,
			 (unsigned long long)fr.notes);
		goto out;
	}
	/* Growing again ends at the new size (done already: NOT_GROWN). */
	if (x->online) {
		ret = vol_open(lun, 0, &v);
		if (!ret) {
			ret = vol_grow_online(v, &go, &gr);
			CU_ASSERT_EQUAL(vol_close(v), 0);
		}
	} else {
		ret = vol_grow(lun, &go, &gr);
	}
	if ((ret && ret != -VMFS_E_NOT_GROWN) || gr.new_size_bytes != x->new_size) {
		snprintf(why, len, "grow again: %s, size %llu", vmfs_strerror(ret),
			 (unsigned long long)gr.new_size_bytes);
		goto out;
	}
	ret = vol_open(lun, 0, &v);
	if (ret) {
		snprintf(why, len, "open after grow again: %s", vmfs_strerror(ret));
		goto out;
	}
	ok = files_intact(v, why, len);
	CU_ASSERT_EQUAL(vol_close(v), 0);
	if (ok && fsck_on(lun, FSCK_MODE_NO, &fr)) {
		snprintf(why, len, "fsck -n after grow again");
		ok = false;
	}
out:
	/* Put back every range the check wrote. */
	e = lun_fault_records(lun, &n);
	for (size_t i = 0; i < n; i++)
		if (e[i].kind != LUN_REC_FLUSH)
			range_copy(x->base_fd, x->work_fd, e[i].off, e[i].len);
	lun_close(lun);
	return ok;
}

/* One state: records [0, k) whole, then record k's sectors in mask (if
 * any), then the extra records of list (a subset of an epoch). */
static void crash_state(struct crash_ctx *x, size_t k, uint64_t mask,
			const size_t *extra, size_t nextra, const char *kind)
{
	char why[160] = "";

	for (size_t i = 0; i < k; i++)
		if (x->rec[i].kind != LUN_REC_FLUSH)
			rec_apply(x, i, 0);
	if (mask)
		rec_apply(x, k, mask);
	for (size_t i = 0; i < nextra; i++)
		rec_apply(x, extra[i], 0);
	x->states++;
	if (!crash_check(x, why, sizeof(why))) {
		if (x->failed++ < 10)
			fprintf(stderr, "\n  crash state %s k=%zu mask=0x%llx extra=%zu: %s",
				kind, k, (unsigned long long)mask, nextra, why);
	}
	for (size_t i = 0; i < x->nrec; i++)
		if (x->rec[i].kind != LUN_REC_FLUSH)
			range_copy(x->base_fd, x->work_fd, x->rec[i].off,
				   x->rec[i].len);
}

/*
 * Record a grow of a volume whose last file-block cluster is partial, from
 * a LUN enlarged to 72 MiB, then check every state a power cut can leave.
 * online: the volume is open (as a mount has it) when the LUN grows, and
 * vol_grow_online grows it; the records include the mount's and the
 * unmount's writes (its journal).
 */
static void grow_crash_run(bool online)
{
	const char *path = make_volume(online ? "grow-ocrash-base.img" :
				       "grow-crash-base.img", 40 * MIB + 20 * KIB);
	const char *rec_path = unit_tmp_path(online ? "grow-ocrash-rec.img" :
					     "grow-crash-rec.img");
	struct crash_ctx x = {
		.online = online,
		.work = unit_tmp_path(online ? "grow-ocrash-work.img" :
				      "grow-crash-work.img"),
	};
	struct vol_grow_opts o = { 0 };
	struct vol_grow_result r;
	struct lun *inner, *lun;
	struct vol *v = NULL;
	int fd;

	/* The LUN grows past a partial last cluster: it gets rewritten. */
	file_resize(path, 72 * MIB);
	fd = open(path, O_RDONLY);
	CU_ASSERT_FATAL(fd >= 0);
	x.base_fd = fd;
	for (int i = 0; i < 2; i++) {
		int out = open(i ? x.work : rec_path, O_CREAT | O_TRUNC | O_RDWR, 0600);
		/* Online, the LUN the volume is mounted from grows later. */
		uint64_t size = !i && online ? 40 * MIB + 20 * KIB : 72 * MIB;

		CU_ASSERT_FATAL(out >= 0);
		CU_ASSERT_FATAL(ftruncate(out, (off_t)size) == 0);
		/* Only the volume's metadata and the files were written. */
		range_copy(fd, out, 0, size);
		if (i)
			x.work_fd = out;
		else
			close(out);
	}

	CU_ASSERT_FATAL(lun_open(rec_path, 0, &inner) == 0);
	CU_ASSERT_FATAL(lun_fault_wrap(inner, &lun) == 0);
	lun_fault_record(lun, true);
	if (online) {
		CU_ASSERT_FATAL(vol_open(lun, 0, &v) == 0);
		file_resize(rec_path, 72 * MIB);
		CU_ASSERT_EQUAL_FATAL(vol_grow_online(v, &o, &r), 0);
		CU_ASSERT_EQUAL_FATAL(vol_close(v), 0);
	} else {
		CU_ASSERT_EQUAL_FATAL(vol_grow(lun, &o, &r), 0);
	}
	CU_ASSERT_FATAL(r.old_file_blocks % 1024 != 0);
	CU_ASSERT_EQUAL_FATAL(r.new_size_bytes, 72 * MIB);
	x.old_size = r.old_size_bytes;
	x.new_size = r.new_size_bytes;
	x.rec = lun_fault_records(lun, &x.nrec);
	CU_ASSERT_FATAL(x.nrec >= 6);

	/* Every prefix, and every write torn at sector boundaries: its
	 * head, its tail, one sector, all but one sector. */
	for (size_t k = 0; k <= x.nrec; k++) {
		uint64_t ns;

		crash_state(&x, k, 0, NULL, 0, "prefix");
		if (k == x.nrec || x.rec[k].kind == LUN_REC_FLUSH)
			continue;
		ns = x.rec[k].len / SECTOR;
		if (ns > 64)
			ns = 64;
		for (uint64_t s = 1; s < ns; s++) {
			uint64_t all = ns == 64 ? ~0ull : (1ull << ns) - 1;
			uint64_t head = (1ull << s) - 1;

			crash_state(&x, k, head, NULL, 0, "torn head");
			crash_state(&x, k, all & ~head, NULL, 0, "torn tail");
			crash_state(&x, k, 1ull << s, NULL, 0, "torn sector");
			crash_state(&x, k, all & ~(1ull << s), NULL, 0, "torn hole");
		}
	}
	/* Within a flush epoch writes may land in any order: every subset. */
	for (size_t start = 0; start < x.nrec;) {
		size_t end = start, m;

		while (end < x.nrec && x.rec[end].kind != LUN_REC_FLUSH)
			end++;
		m = end - start;
		for (uint64_t set = 1; m <= 10 && set < (1ull << m) - 1; set++) {
			size_t extra[10], ne = 0;

			for (size_t i = 0; i < m; i++)
				if (set >> i & 1)
					extra[ne++] = start + i;
			crash_state(&x, start, 0, extra, ne, "subset");
		}
		start = end + 1;
	}
	fprintf(stderr, "\n  %s grow crash states: %u checked, %u failed (%u at the old size, %u at the new, %u with an fsck note) ",
		online ? "online" : "offline", x.states, x.failed, x.at_old,
		x.at_new, x.noted);
	CU_ASSERT_EQUAL(x.failed, 0);
	CU_ASSERT(x.at_old > 0 && x.at_new > 0 && x.noted > 0);
	lun_close(lun);
	close(x.work_fd);
	close(x.base_fd);
}

static void test_grow_crash(void)
{
	grow_crash_run(false);
}

static void test_grow_online_crash(void)
{
	grow_crash_run(true);
}

static CU_TestInfo tests[] = {
	{ "grow_fill", test_grow_fill },
	{ "grow_twice", test_grow_twice },
	{ "grow_16x", test_grow_16x },
	{ "grow_16x_steps", test_grow_16x_steps },
	{ "grow_max_option", test_grow_max_option },
	{ "grow_refusals", test_grow_refusals },
	{ "grow_capped", test_grow_capped },
	{ "grow_keeps_reserved", test_grow_keeps_reserved },
	{ "grow_crash", test_grow_crash },
	{ "grow_online_crash", test_grow_online_crash },
	CU_TEST_INFO_NULL
};

UNIT_SUITE("vol_grow", NULL, NULL, tests);
