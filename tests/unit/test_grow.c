/*
 * Growing a file that fails leaves it exactly as before: size, contents,
 * map type, allocated bytes, mtime and the use of every allocator area
 * are the same after the failed call, fsck -n is clean, and all of it
 * reads the same after a reopen.
 *
 * One case per transition x failure x operation:
 *   inline -> small blocks, small -> file blocks, direct pointers ->
 *   single indirect, an existing single-indirect block -> double indirect;
 *   ENOSPC on a volume filled to the brim (one file block left where the
 *   transition needs two, so the first allocation succeeds), EIO from the
 *   fault wrapper on every data write;
 *   buffered write (unaligned buffer and offset), direct write (aligned),
 *   fallocate (plain for ENOSPC, FALLOC_FL_ZERO_RANGE for EIO, which
 *   writes) and truncate up (which allocates only to change the map type:
 *   for a file already in file blocks it must succeed).
 * Plus: EIO at each write in turn of growing writes; small files when the
 * small-block area is full; statfs against what can really be written.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
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
#include "../../vol/vol_int.h"

#define KIB 1024ull
#define MIB (1024ull * 1024)

static const char *path;
static struct lun *lun;   /* the fault wrapper */
static struct vol *vol;

static void vol_up(void)
{
	struct vol_open_opts o = { .commit_ms = 60000 };
	struct lun *inner;

	CU_ASSERT_FATAL(lun_open(path, 0, &inner) == 0);
	CU_ASSERT_FATAL(lun_fault_wrap(inner, &lun) == 0);
	CU_ASSERT_FATAL(vol_open_ex(lun, &o, &vol) == 0);
}

/* Close the volume (and the LUN); returns vol_close's result. */
static int vol_down(void)
{
	int ret = 0;

	if (vol) {
		lun_fault_fail_writes_from(lun, 0, 0);
		lun_fault_fail_nth_write(lun, 0, 0);
		ret = vol_close(vol);
	}
	if (lun)
		lun_close(lun);
	vol = NULL;
	lun = NULL;
	return ret;
}

static int cleanup(void)
{
	return vol_down() ? -1 : 0;
}

/* A fresh 256 MiB volume: 1 MiB file blocks, 128 small blocks of 64 KiB. */
static void fresh(void)
{
	struct vol_mkfs_opts o;
	struct lun *l;

	vol_down();
	if (!path)
		path = unit_tmp_path("grow.img");
	unit_scratch_opts(&o);
	o.label = "grow";
	unit_scratch_mkfs(path, 256 * MIB, &o, &l);
	lun_close(l);
	vol_up();
}

/* fsck -n of the closed volume must be clean; then open it again. */
static void fsck_clean(const char *what)
{
	CU_ASSERT_EQUAL(vol_down(), 0);
	CU_ASSERT(unit_fsck_clean(path, what));
	vol_up();
}

static void pattern(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 29 + i * 11 + (i >> 10));
}

static uint64_t mkfile(const char *name)
{
	struct vol_attr a;
	int ret = vol_create(vol, VMFS_ROOT_INO, name, S_IFREG | 0644, 0, 0, 0, &a);

	CU_ASSERT_EQUAL_FATAL(ret, 0);
	return a.ino;
}

static void put(uint64_t ino, uint64_t off, size_t len, unsigned seed)
{
	uint8_t *buf = lun_buf_alloc(len);

	pattern(buf, len, seed);
	CU_ASSERT_EQUAL_FATAL(vol_write(vol, ino, buf, len, off), (ssize_t)len);
	lun_buf_free(buf);
}

/* Everything a failed call must leave as it was. */
struct fstate {
	uint64_t size, alloc_bytes;
	int64_t mtime_ns;
	uint16_t map_type;
	uint32_t crc;          /* of all size bytes */
	struct vol_usage u;
};

static void state_get(uint64_t ino, struct fstate *s)
{
	static uint8_t buf[MIB];
	struct vinode *vi;
	struct vol_attr a;

	memset(s, 0, sizeof(*s));
	CU_ASSERT_FATAL(vol_getattr(vol, ino, &a) == 0);
	s->size = a.size;
	s->alloc_bytes = a.alloc_bytes;
	s->mtime_ns = ts_to_ns(&a.mtime);
	CU_ASSERT_FATAL(vol_inode_get(vol, ino, &vi) == 0);
	s->map_type = vi->map_type;
	vol_inode_put(vol, vi);
	for (uint64_t off = 0; off < s->size; off += sizeof(buf)) {
		size_t n = s->size - off < sizeof(buf) ? s->size - off : sizeof(buf);

		CU_ASSERT_EQUAL_FATAL(vol_read(vol, ino, buf, n, off), (ssize_t)n);
		s->crc = lun_crc32c(s->crc, buf, n);
	}
	vol_usage_get(vol, &s->u);
}

static void state_same(const char *what, const struct fstate *a,
		       const struct fstate *b)
{
	bool same = a->size == b->size && a->alloc_bytes == b->alloc_bytes &&
		    a->mtime_ns == b->mtime_ns && a->map_type == b->map_type &&
		    a->crc == b->crc &&
		    !memcmp(a->u.used, b->u.used, sizeof(a->u.used));

	if (!same) {
		fprintf(stderr, "\n  %s: size %llu/%llu alloc %llu/%llu map %u/%u crc %08x/%08x mtime %s",
			what, (unsigned long long)a->size, (unsigned long long)b->size,
			(unsigned long long)a->alloc_bytes,
			(unsigned long long)b->alloc_bytes, a->map_type,
			b->map_type, a->crc, b->crc,
			a->mtime_ns == b->mtime_ns ? "same" : "changed");
		for (int t = 0; t < VMFS_RES_NTYPES; t++)
			fprintf(stderr, " %s %llu/%llu", vol_res_name(t),
				(unsigned long long)a->u.used[t],
				(unsigned long long)b->u.used[t]);
		fprintf(stderr, "\n");
	}
	CU_ASSERT(same);
}

/* Leave exactly k free file blocks, with a file holding the rest. */
static void fill_file_blocks(uint64_t k)
{
	uint64_t avail = vol_res_avail(vol, VMFS_RES_FILE), ino;

	CU_ASSERT_FATAL(avail > k);
	ino = mkfile("fill");
	CU_ASSERT_EQUAL_FATAL(vol_fallocate(vol, ino, 0, 0, (avail - k) * MIB), 0);
	CU_ASSERT_EQUAL_FATAL(vol_res_avail(vol, VMFS_RES_FILE), k);
	vol_forget(vol, ino, 1);
}

/*
 * Fill the small-block area with regular files of up to 16 small blocks
 * while they go there (the engine keeps the last 1/16 of it for
 * directories and symlinks); returns how many files that made.
 */
static int fill_small_files(void)
{
	uint64_t avail;
	int i;

	for (i = 0; (avail = vol_res_avail(vol, VMFS_RES_SMALL)) > 0; i++) {
		char name[32];
		uint64_t ino, n = avail < 16 ? avail : 16;

		snprintf(name, sizeof(name), "small%d", i);
		ino = mkfile(name);
		put(ino, 0, n * 64 * KIB, (unsigned)i);
		vol_forget(vol, ino, 1);
		if (vol_res_avail(vol, VMFS_RES_SMALL) == avail)
			break;  /* went to file blocks: the reserve is reached */
	}
	return i;
}

/* Use every small block: regular files, then long symlinks (one each). */
static void fill_small_blocks(void)
{
	static char target[3000];

	fill_small_files();
	memset(target, 't', sizeof(target) - 1);
	for (int i = 0; vol_res_avail(vol, VMFS_RES_SMALL) > 0; i++) {
		char name[32];
		struct vol_attr a;

		snprintf(name, sizeof(name), "link%d", i);
		CU_ASSERT_EQUAL_FATAL(vol_symlink(vol, VMFS_ROOT_INO, name, target,
						  0, 0, &a), 0);
		vol_forget(vol, a.ino, 1);
	}
}

enum trans { T_INLINE, T_SMALL, T_DIRECT, T_IND1 };
enum op { OP_WRITE, OP_DIRECT, OP_FALLOC, OP_TRUNC };
enum fail { F_NOSPC, F_EIO };

static const char *const trans_name[] = {
	"inline->small", "small->file", "direct->indirect",
	"single->double indirect"
};
static const char *const op_name[] = {
	"write", "direct write", "fallocate", "truncate up"
};

/* The file each transition starts from; returns its inode. */
static uint64_t prep(enum trans tr)
{
	uint64_t ino = mkfile("f");

	switch (tr) {
	case T_INLINE:
		put(ino, 0, 1000, 1);                   /* inline */
		break;
	case T_SMALL:
		put(ino, 0, 512 * KIB + 100, 2);        /* 9 small blocks */
		break;
	case T_DIRECT:
		put(ino, 250 * MIB, MIB, 3);            /* last direct pointer */
		break;
	case T_IND1:
		put(ino, 251 * MIB, MIB, 4);            /* first single-indirect */
		put(ino, 755 * MIB, MIB, 5);            /* and its last one */
		break;
	}
	return ino;
}

/* Where each operation grows the file of each transition. */
static void op_range(enum trans tr, enum op op, uint64_t *off, uint64_t *len)
{
	static const uint64_t unaligned[][2] = {
		[T_INLINE] = { 1000, 64 * KIB },
		[T_SMALL]  = { 512 * KIB + 100, 600 * KIB },
		[T_DIRECT] = { 251 * MIB - 100, 2 * MIB },
		[T_IND1]   = { 756 * MIB - 100, 2 * MIB },
	};
	static const uint64_t aligned[][2] = {
		[T_INLINE] = { 4 * KIB, 64 * KIB },
		[T_SMALL]  = { MIB, 64 * KIB },
		[T_DIRECT] = { 251 * MIB, 2 * MIB },
		[T_IND1]   = { 756 * MIB, 2 * MIB },
	};
	const uint64_t *r = op == OP_DIRECT ? aligned[tr] : unaligned[tr];

	*off = r[0];
	*len = r[1];
}

static int do_op(uint64_t ino, enum trans tr, enum op op, enum fail f)
{
	uint64_t off, len;
	uint8_t *buf;
	ssize_t r;

	op_range(tr, op, &off, &len);
	switch (op) {
	case OP_WRITE:
	case OP_DIRECT:
		buf = lun_buf_alloc(len + 1);
		pattern(buf, len + 1, 9);
		/* A buffered write comes from an unaligned user buffer. */
		r = vol_write(vol, ino, buf + (op == OP_WRITE), len, off);
		lun_buf_free(buf);
		return r == (ssize_t)len ? 0 : r < 0 ? (int)r : -EIO;
	case OP_FALLOC:
		return vol_fallocate(vol, ino, f == F_EIO ? FALLOC_FL_ZERO_RANGE : 0,
				     off, len);
	case OP_TRUNC: {
		struct vol_setattr sa = { .size = off + len };

		return vol_setattr(vol, ino, &sa, VOL_SET_SIZE, NULL);
	}
	}
	return -EINVAL;
}

/* Make the next growth fail: EIO on every data write (small or file block). */
static void eio_on(void)
{
	struct vol_geom g;

	vol_geom_get(vol, &g);
	lun_fault_fail_writes_from(lun, g.res[VMFS_RES_SMALL].obj_offset, -EIO);
}

/* Run the operation; it must return want and, if it fails, change nothing. */
static void op_expect(const char *what, uint64_t ino, enum trans tr,
		      enum op op, enum fail f, int want)
{
	struct fstate before, after;
	int ret;

	state_get(ino, &before);
	ret = do_op(ino, tr, op, f);
	lun_fault_fail_writes_from(lun, 0, 0);
	if (ret != want)
		fprintf(stderr, "\n  %s: returned %d, want %d\n", what, ret, want);
	CU_ASSERT_EQUAL(ret, want);
	if (want) {
		state_get(ino, &after);
		state_same(what, &before, &after);
	}
}

/*
 * The failure, checked in memory and (fsck -n clean) after a reopen; then
 * once more on the reopened volume, and with the cause gone (space freed,
 * LUN healthy) the same call on the same cached inode succeeds.
 */
static void run_case(enum trans tr, enum op op, enum fail f)
{
	struct fstate before, after;
	char what[128];
	uint64_t ino;
	int want;

	snprintf(what, sizeof(what), "%s, %s, %s", trans_name[tr], op_name[op],
		 f == F_NOSPC ? "ENOSPC" : "EIO");
	fresh();
	ino = prep(tr);
	if (f == F_NOSPC) {
		if (tr == T_INLINE)
			fill_small_blocks();
		/* Where two file blocks are needed leave one, so the first
		 * allocation succeeds and the second fails. */
		fill_file_blocks(tr == T_INLINE || (tr == T_SMALL && op == OP_TRUNC)
				 ? 0 : 1);
	} else {
		eio_on();
	}
	/* Truncating a block-mapped file up allocates nothing. */
	want = op == OP_TRUNC && tr >= T_DIRECT ? 0 :
	       f == F_NOSPC ? -ENOSPC : -EIO;
	state_get(ino, &before);
	op_expect(what, ino, tr, op, f, want);
	fsck_clean(what);
	if (!want)
		return;
	state_get(ino, &after);
	state_same(what, &before, &after);

	if (f == F_EIO)
		eio_on();
	op_expect(what, ino, tr, op, f, want);
	if (f == F_NOSPC)
		CU_ASSERT_EQUAL(vol_unlink(vol, VMFS_ROOT_INO, "fill"), 0);
	op_expect(what, ino, tr, op, f, 0);
	fsck_clean(what);
}

#define CASE(tag, tr, op, f) \
	static void test_##tag(void) { run_case(tr, op, f); }
#define CASES(tag, tr)                                  \
	CASE(tag##_write_nospc, tr, OP_WRITE, F_NOSPC)   \
	CASE(tag##_write_eio, tr, OP_WRITE, F_EIO)       \
	CASE(tag##_direct_nospc, tr, OP_DIRECT, F_NOSPC) \
	CASE(tag##_direct_eio, tr, OP_DIRECT, F_EIO)     \
	CASE(tag##_falloc_nospc, tr, OP_FALLOC, F_NOSPC) \
	CASE(tag##_falloc_eio, tr, OP_FALLOC, F_EIO)     \
	CASE(tag##_trunc_nospc, tr, OP_TRUNC, F_NOSPC)   \
	CASE(tag##_trunc_eio, tr, OP_TRUNC, F_EIO)

CASES(inline, T_INLINE)
CASES(small, T_SMALL)
CASES(direct, T_DIRECT)
CASES(ind1, T_IND1)

/*
 * EIO at each write in turn of a write past EOF, starting in the file's
 * partial last block: the copy into a new block if the map type changes,
 * the tail of the old last block, the new blocks.  Each failure leaves
 * the file as it was, and the bytes past its EOF still zero; the write
 * then succeeds whole.  file_map: the file is in file blocks already
 * (2 MiB + 100 bytes), else in small blocks (512 KiB + 100) and the write
 * moves it to file blocks.
 */
static void eio_sweep(bool file_map)
{
	const uint64_t size = file_map ? 2 * MIB + 100 : 512 * KIB + 100;
	const uint64_t off = size, len = file_map ? 3 * MIB / 2 : 600 * KIB;
	uint8_t *buf = malloc(off + len), *back = malloc(off + len);
	struct fstate before, after;
	uint64_t ino;
	int fails = 0;
	ssize_t r = -EIO;

	fresh();
	ino = mkfile("f");
	pattern(buf, size, 2);
	CU_ASSERT_EQUAL_FATAL(vol_write(vol, ino, buf, size, 0), (ssize_t)size);
	pattern(buf + off, len, 9);
	for (uint64_t n = 1; n < 64 && r < 0; n++) {
		struct vol_setattr sa = { .size = size + 64 * KIB };
		char what[64];

		snprintf(what, sizeof(what), "%s, EIO at write %llu",
			 file_map ? "file blocks" : "small->file",
			 (unsigned long long)n);
		state_get(ino, &before);
		lun_fault_fail_nth_write(lun, n, -EIO);
		r = vol_write(vol, ino, buf + off, len, off);
		lun_fault_fail_nth_write(lun, 0, 0);
		if (r >= 0)
			break;
		fails++;
		CU_ASSERT_EQUAL(r, -EIO);
		state_get(ino, &after);
		state_same(what, &before, &after);
		/* Grown by truncate, the file shows zeros past its old EOF. */
		CU_ASSERT_EQUAL(vol_setattr(vol, ino, &sa, VOL_SET_SIZE, NULL), 0);
		CU_ASSERT_EQUAL(vol_read(vol, ino, back, 64 * KIB, size),
				(ssize_t)(64 * KIB));
		for (uint64_t i = 0; i < 64 * KIB; i++)
			if (back[i]) {
				fprintf(stderr, "\n  %s: byte %llu past EOF is %u\n",
					what, (unsigned long long)(size + i), back[i]);
				CU_FAIL("stale byte past EOF");
				break;
			}
		sa.size = size;
		CU_ASSERT_EQUAL(vol_setattr(vol, ino, &sa, VOL_SET_SIZE, NULL), 0);
	}
	CU_ASSERT_EQUAL(r, (ssize_t)len);
	CU_ASSERT(fails >= 2);
	fsck_clean(file_map ? "file blocks, EIO at every write"
			    : "small->file, EIO at every write");
	CU_ASSERT_EQUAL(vol_read(vol, ino, back, off + len, 0), (ssize_t)(off + len));
	CU_ASSERT(memcmp(back, buf, off + len) == 0);
	free(buf);
	free(back);
}

static void test_eio_every_write_small(void)
{
	eio_sweep(false);
}

static void test_eio_every_write_file(void)
{
	eio_sweep(true);
}

/*
 * The small-block area full, file blocks free: new small files, and a
 * small-block file that grows, go to file blocks; fsck accepts them and
 * they read back after a reopen.
 */
static void test_small_area_full(void)
{
	static const uint64_t sizes[] = {
		100, 3000, 64 * KIB, 100 * KIB, 300 * KIB, MIB
	};
	enum { NFILES = 24 };
	uint64_t ino[NFILES], grower;
	uint8_t *buf = malloc(2 * MIB), *back = malloc(2 * MIB);

	fresh();
	grower = mkfile("grower");
	put(grower, 0, 64 * KIB, 50);
	fill_small_blocks();
	CU_ASSERT_EQUAL(vol_res_avail(vol, VMFS_RES_SMALL), 0);
	for (int i = 0; i < NFILES; i++) {
		char name[32];
		uint64_t sz = sizes[i % 6];

		snprintf(name, sizeof(name), "late%d", i);
		ino[i] = mkfile(name);
		pattern(buf, sz, 100 + i);
		CU_ASSERT_EQUAL(vol_write(vol, ino[i], buf, sz, 0), (ssize_t)sz);
	}
	pattern(buf, 64 * KIB, 51);
	CU_ASSERT_EQUAL(vol_write(vol, grower, buf, 64 * KIB, 64 * KIB),
			(ssize_t)(64 * KIB));
	fsck_clean("small-block area full");
	for (int i = 0; i < NFILES; i++) {
		uint64_t sz = sizes[i % 6];

		pattern(buf, sz, 100 + i);
		CU_ASSERT_EQUAL(vol_read(vol, ino[i], back, 2 * MIB, 0), (ssize_t)sz);
		CU_ASSERT(memcmp(back, buf, sz) == 0);
	}
	CU_ASSERT_EQUAL(vol_read(vol, grower, back, 2 * MIB, 0), (ssize_t)(128 * KIB));
	pattern(buf, 64 * KIB, 50);
	CU_ASSERT(memcmp(back, buf, 64 * KIB) == 0);
	pattern(buf, 64 * KIB, 51);
	CU_ASSERT(memcmp(back + 64 * KIB, buf, 64 * KIB) == 0);
	free(buf);
	free(back);
}

/*
 * Small files fill the small-block area only up to the part kept for
 * directories: after many of them, a new directory still takes names.
 */
static void test_small_reserve_dirs(void)
{
	struct vol_attr d, a;
	uint8_t buf[100];

	fresh();
	CU_ASSERT(fill_small_files() > 4);
	CU_ASSERT(vol_res_avail(vol, VMFS_RES_SMALL) > 0);
	CU_ASSERT_EQUAL_FATAL(vol_mkdir(vol, VMFS_ROOT_INO, "d", 0755, 0, 0, &d), 0);
	for (int i = 0; i < 100; i++) {
		char name[32];

		snprintf(name, sizeof(name), "name-%d", i);
		CU_ASSERT_EQUAL_FATAL(vol_create(vol, d.ino, name, S_IFREG | 0644,
						 0, 0, 0, &a), 0);
		pattern(buf, sizeof(buf), (unsigned)i);
		CU_ASSERT_EQUAL(vol_write(vol, a.ino, buf, sizeof(buf), 0),
				(ssize_t)sizeof(buf));
		vol_forget(vol, a.ino, 1);
	}
	vol_forget(vol, d.ino, 1);
	fsck_clean("small-block reserve for directories");
}

/*
 * statfs: the free space it reports is what a large file can really get
 * (no more, no less), and a volume whose file blocks are gone shows no
 * free space even though small blocks are left.
 */
static void test_statfs_honest(void)
{
	uint8_t *chunk = lun_buf_alloc(MIB);
	struct statvfs st;
	uint64_t avail, written = 0, ino;
	ssize_t r;

	fresh();
	pattern(chunk, MIB, 7);
	CU_ASSERT_EQUAL(vol_statfs(vol, &st), 0);
	avail = (uint64_t)st.f_bavail * st.f_frsize;
	ino = mkfile("big");
	while ((r = vol_write(vol, ino, chunk, MIB, written)) == (ssize_t)MIB)
		written += MIB;
	CU_ASSERT_EQUAL(r, -ENOSPC);
	CU_ASSERT_EQUAL(written, avail);
	CU_ASSERT_EQUAL(vol_statfs(vol, &st), 0);
	CU_ASSERT_EQUAL(st.f_bavail, 0);
	CU_ASSERT_EQUAL(st.f_bfree, 0);
	CU_ASSERT(vol_res_avail(vol, VMFS_RES_SMALL) > 0);
	lun_buf_free(chunk);
}

static CU_TestInfo tests[] = {
	{ "inline_write_nospc", test_inline_write_nospc },
	{ "inline_write_eio", test_inline_write_eio },
	{ "inline_direct_nospc", test_inline_direct_nospc },
	{ "inline_direct_eio", test_inline_direct_eio },
	{ "inline_falloc_nospc", test_inline_falloc_nospc },
	{ "inline_falloc_eio", test_inline_falloc_eio },
	{ "inline_trunc_nospc", test_inline_trunc_nospc },
	{ "inline_trunc_eio", test_inline_trunc_eio },
	{ "small_write_nospc", test_small_write_nospc },
	{ "small_write_eio", test_small_write_eio },
	{ "small_direct_nospc", test_small_direct_nospc },
	{ "small_direct_eio", test_small_direct_eio },
	{ "small_falloc_nospc", test_small_falloc_nospc },
	{ "small_falloc_eio", test_small_falloc_eio },
	{ "small_trunc_nospc", test_small_trunc_nospc },
	{ "small_trunc_eio", test_small_trunc_eio },
	{ "direct_write_nospc", test_direct_write_nospc },
	{ "direct_write_eio", test_direct_write_eio },
	{ "direct_direct_nospc", test_direct_direct_nospc },
	{ "direct_direct_eio", test_direct_direct_eio },
	{ "direct_falloc_nospc", test_direct_falloc_nospc },
	{ "direct_falloc_eio", test_direct_falloc_eio },
	{ "direct_trunc_nospc", test_direct_trunc_nospc },
	{ "direct_trunc_eio", test_direct_trunc_eio },
	{ "ind1_write_nospc", test_ind1_write_nospc },
	{ "ind1_write_eio", test_ind1_write_eio },
	{ "ind1_direct_nospc", test_ind1_direct_nospc },
	{ "ind1_direct_eio", test_ind1_direct_eio },
	{ "ind1_falloc_nospc", test_ind1_falloc_nospc },
	{ "ind1_falloc_eio", test_ind1_falloc_eio },
	{ "ind1_trunc_nospc", test_ind1_trunc_nospc },
	{ "ind1_trunc_eio", test_ind1_trunc_eio },
	{ "eio_every_write_small", test_eio_every_write_small },
	{ "eio_every_write_file", test_eio_every_write_file },
	{ "small_area_full", test_small_area_full },
	{ "small_reserve_dirs", test_small_reserve_dirs },
	{ "statfs_honest", test_statfs_honest },
	CU_TEST_INFO_NULL
};

UNIT_SUITE("grow", NULL, cleanup, tests);
