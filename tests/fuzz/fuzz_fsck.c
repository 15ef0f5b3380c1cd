/*
 * libFuzzer harness: fsck_run on a small volume whose metadata the input
 * damages.
 *
 * The image, made once at start: vol_mkfs of a 32 MiB LUN with one host,
 * a 1 MiB journal, default block sizes and 32 inodes (the smallest such
 * volume is 28 MiB, 31 MiB with the default 1024 inodes: 16 file blocks
 * and the 4 MiB pointer-block area dominate; fsck reads every inode
 * block twice a run, so the inode count sets the pace: 256 inodes ran
 * at a third of the speed), then a tree that touches
 * every kind of metadata: nested directories, one of two chunks, an
 * inline file with an xattr, a hard link, a symlink, a FIFO, a
 * small-block file, and a sparse file-block file with a single-indirect
 * pointer block and to-be-zeroed blocks.  The whole image is kept in
 * memory; the input patches the blocks of it that hold metadata (found by
 * scanning for the format's magic numbers, plus every inode slot, used or
 * not).
 *
 * Input: [u8 flags] then up to MAX_PATCHES records
 *   [u8 op][u16 block][u16 offset][u8 len][data]
 *   block      index into the table of metadata blocks (modulo its size)
 *   op & 3     0: write len data bytes at offset; 1: xor them in;
 *              2: copy len*16 bytes at offset from the pristine copy
 *                 of another block, whose index follows as a u16;
 *              3: zero len*16 bytes at offset
 *   op & 0x80  then refresh the crc of the block's object header and lock
 *              record, keeping every fuzzed field, so fsck judges the
 *              fields rather than only the checksum
 *   flags & 1  run fsck -n before the repair too (reports on damage
 *              nothing repaired yet)
 *   flags & 2  memory limit of 4 KiB: the checker's maps spill to disk
 * then: fsck_run FSCK_MODE_YES, then FSCK_MODE_NO.
 *
 * It must never crash, hang, leak memory, file descriptors or spill
 * files (the spill directory is checked empty after every run), or break
 * its own result contract (fixed <= found, only the fsck(8) bits).  A
 * second run that still finds problems after a repair is counted and
 * printed at exit (as is one that repaired something and then hit an
 * operational error); VMFS_FUZZ_FSCK_STRICT=1 makes it a crash, to minimise
 * one.  VMFS_FUZZ_VERBOSE=1 prints every run's problems and result.
 *
 * The LUN sits behind the fault wrapper with write recording on: after
 * every input the harness puts back the pristine bytes under every write
 * and zeroed range (patches included), so each input starts from the same
 * image in a few writes instead of a 32 MiB copy.
 */
#include <dirent.h>
#include <endian.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmfs/format.h"
#include "vmfs/fsck.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"
#include "fuzz.h"

#define BLK VMFS_MD_BLOCK_SIZE
#define MIB (1024ull * 1024)
#define LUN_BYTES (32 * MIB)
#define NINODES 32       /* 27 in use: the fewer, the faster passes 3 and 5 */
#define MAX_PATCHES 64
#define NMANY 16         /* entries of "many": more than a chunk holds */

/* How to refresh a block's checksums: where its header sits, how long. */
struct target {
	uint64_t addr;
	uint32_t hdr_off;   /* object header offset; UINT32_MAX: no header */
	uint32_t len;       /* bytes the object crc covers */
	bool lock;          /* a lock record in the first 512 bytes */
};

static struct lun *lun;          /* the fault wrapper */
static uint8_t *pristine;        /* the whole image */
static struct target *targets;
static size_t ntargets;
static char spill_dir[4096];

static struct {
	uint64_t inputs, yes_fixed, yes_error, second_dirty, not_clean_code;
	uint64_t found_codes[7];       /* problems reported, by pass */
} stats;
static bool strict, verbose;

struct run_log {
	uint64_t reports;
	char first[256];
};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_report(void *ctx, const struct fsck_problem_info *p,
		      uint64_t addr, const char *detail, bool fixed)
{
	struct run_log *rl = ctx;

	if (!p || !p->name || !p->message)
		FUZZ_DIE("fsck reported a problem without its table entry");
	if (rl->reports++ == 0)
		snprintf(rl->first, sizeof(rl->first), "%s at %llu: %s%s",
			 p->name, (unsigned long long)addr,
			 detail ? detail : "", fixed ? " (fixed)" : "");
	if ((p->code >> 8) < 7)
		stats.found_codes[p->code >> 8]++;
	if (verbose)
		fprintf(stderr, "fuzz_fsck:   %s at %llu: %s%s\n", p->name,
			(unsigned long long)addr, detail ? detail : "",
			fixed ? " (fixed)" : "");
}

/* ---- the image ---------------------------------------------------------- */

#define CHECK(call) do {						\
	int ret_ = (int)(call);						\
	if (ret_ < 0)							\
		FUZZ_DIE("%s: %s", #call, vmfs_strerror(ret_));		\
} while (0)

static uint64_t mk(struct vol *v, uint64_t parent, const char *name,
		   uint32_t mode)
{
	struct vol_attr a;

	if (S_ISDIR(mode))
		CHECK(vol_mkdir(v, parent, name, mode & 07777, 0, 0, &a));
	else
		CHECK(vol_create(v, parent, name, mode, 0, 0, 0, &a));
	vol_forget(v, a.ino, 1);
	return a.ino;
}

static void populate(struct vol *v)
{
	static char buf[16384];
	struct vol_attr a;
	uint64_t d1, d2, many, f, big;

	memset(buf, 'x', sizeof(buf));
	d1 = mk(v, VMFS_ROOT_INO, "a", S_IFDIR | 0755);
	d2 = mk(v, d1, "b", S_IFDIR | 0700);
	f = mk(v, d1, "inline", S_IFREG | 0644);
	CHECK(vol_write(v, f, buf, 100, 0));
	CHECK(vol_setxattr(v, f, "user.fuzz", "value", 5, 0));
	CHECK(vol_link(v, f, d2, "hardlink", &a));
	vol_forget(v, a.ino, 1);
	CHECK(vol_symlink(v, d1, "sym", "inline", 0, 0, &a));
	vol_forget(v, a.ino, 1);
	mk(v, d2, "fifo", S_IFIFO | 0600);
	f = mk(v, d2, "small", S_IFREG | 0644);
	CHECK(vol_write(v, f, buf, 10000, 0));
	/* A file-block file: block 0, a block past the direct pointers
	 * (single indirect), and two to-be-zeroed blocks. */
	big = mk(v, VMFS_ROOT_INO, "big", S_IFREG | 0600);
	CHECK(vol_write(v, big, buf, sizeof(buf), 300 * MIB));
	CHECK(vol_write(v, big, buf, BLK, 0));
	CHECK(vol_fallocate(v, big, FALLOC_FL_KEEP_SIZE, 10 * MIB, 2 * MIB));
	/* More than one chunk of entries (14 a chunk). */
	many = mk(v, VMFS_ROOT_INO, "many", S_IFDIR | 0755);
	for (int i = 0; i < NMANY; i++) {
		char name[16];

		snprintf(name, sizeof(name), "e%02d", i);
		mk(v, many, name, S_IFREG | 0644);
	}
}

/* Which kind of metadata block sits at addr, from its magic. */
static bool classify(const uint8_t *blk, uint64_t addr, bool inode_area,
		     struct target *t)
{
	struct vmfs_blk_hdr h;
	struct fmt_hdr h0, h1;
	uint32_t m0, m1;

	memcpy(&h, blk, sizeof(h));
	fmt_hdr_decode(&h, &h0);
	memcpy(&h, blk + VMFS_OBJ_OFFSET, sizeof(h));
	fmt_hdr_decode(&h, &h1);
	m0 = h0.magic;
	m1 = h1.magic;
	t->addr = addr;
	t->lock = false;
	t->hdr_off = 0;
	switch (m0) {
	case VMFS_MAGIC_VOLUME:
	case VMFS_MAGIC_PTRBLK:
	case VMFS_MAGIC_DIRBLK:
		t->len = BLK;
		return true;
	case VMFS_MAGIC_HBSLOT:
		t->len = sizeof(struct vmfs_hb_slot);
		return true;
	default:
		break;
	}
	if (inode_area || m1 == VMFS_MAGIC_HBREGION ||
	    m1 == VMFS_MAGIC_JOURNAL || m1 == VMFS_MAGIC_RCLUSTER ||
	    m1 == VMFS_MAGIC_INODE) {
		t->hdr_off = VMFS_OBJ_OFFSET;
		t->len = BLK - VMFS_OBJ_OFFSET;
		t->lock = true;
		return true;
	}
	return false;
}

static void targets_build(const struct vol_geom *g)
{
	const struct vol_res_geom *ino = &g->res[VMFS_RES_INODE];
	uint64_t end = g->res[VMFS_RES_SMALL].obj_offset +
		       g->res[VMFS_RES_SMALL].count * g->res[VMFS_RES_SMALL].obj_size;

	targets = calloc(LUN_BYTES / BLK, sizeof(*targets));
	if (!targets)
		FUZZ_DIE("out of memory");
	for (uint64_t a = 0; a < LUN_BYTES; a += BLK) {
		bool inode_area = a >= ino->obj_offset &&
				  a < ino->obj_offset + ino->count * BLK;
		bool meta = a < end || a == g->backup_offset ||
			    (a >= g->res[VMFS_RES_FILE].hdr_offset &&
			     a < g->res[VMFS_RES_FILE].obj_offset);

		if (meta && classify(pristine + a, a, inode_area,
				     &targets[ntargets]))
			ntargets++;
	}
	if (ntargets < 16)
		FUZZ_DIE("only %zu metadata blocks found in the image", ntargets);
}

static void crc_refresh(uint8_t *hdr, uint32_t len)
{
	const size_t off = offsetof(struct vmfs_blk_hdr, bh_crc);
	le32 crc = 0;

	memcpy(hdr + off, &crc, sizeof(crc));
	crc = htole32(lun_crc32c(0, hdr, len));
	memcpy(hdr + off, &crc, sizeof(crc));
}

static size_t dir_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	size_t n = 0;

	if (!d)
		FUZZ_DIE("%s: %s", path, strerror(errno));
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void print_stats(void)
{
	if (!stats.inputs)
		return;
	fprintf(stderr,
		"fuzz_fsck: %llu inputs; -y fixed something in %llu, ended in an operational error in %llu; "
		"the -n run after -y was not clean in %llu; problems reported by pass 0..6: "
		"%llu %llu %llu %llu %llu %llu %llu\n",
		(unsigned long long)stats.inputs,
		(unsigned long long)stats.yes_fixed,
		(unsigned long long)stats.yes_error,
		(unsigned long long)stats.second_dirty,
		(unsigned long long)stats.found_codes[0],
		(unsigned long long)stats.found_codes[1],
		(unsigned long long)stats.found_codes[2],
		(unsigned long long)stats.found_codes[3],
		(unsigned long long)stats.found_codes[4],
		(unsigned long long)stats.found_codes[5],
		(unsigned long long)stats.found_codes[6]);
}

static void cleanup(void)
{
	print_stats();
	if (spill_dir[0])
		rmdir(spill_dir);
}

static int run_fsck(enum fsck_mode mode, bool spill, struct fsck_result *r,
		    struct run_log *rl)
{
	struct fsck_opts o;
	int ret;

	fsck_opts_init(&o);
	o.mode = mode;
	o.tmp_dir = spill_dir;
	if (spill)
		o.mem_limit_bytes = 4096;
	o.report = on_report;
	o.ctx = rl;
	memset(rl, 0, sizeof(*rl));
	if (verbose)
		fprintf(stderr, "fuzz_fsck: fsck %s\n",
			mode == FSCK_MODE_NO ? "-n" : "-y");
	ret = fsck_run(lun, &o, r);
	if (verbose)
		fprintf(stderr, "fuzz_fsck: exit %d, %llu found, %llu fixed%s%s\n",
			r->exit_code, (unsigned long long)r->problems_found,
			(unsigned long long)r->problems_fixed,
			r->error[0] ? "; error: " : "", r->error);
	if (ret != r->exit_code || (r->exit_code & ~0xf) ||
	    r->problems_fixed > r->problems_found ||
	    (mode == FSCK_MODE_NO && r->problems_fixed) ||
	    ((r->exit_code & FSCK_EXIT_ERROR) && !r->error[0]) ||
	    !memchr(r->error, 0, sizeof(r->error)))
		FUZZ_DIE("fsck_run (%s) broke its result contract: returned %d, exit_code %d, found %llu, fixed %llu, error '%.200s'",
			 mode == FSCK_MODE_NO ? "-n" : "-y", ret, r->exit_code,
			 (unsigned long long)r->problems_found,
			 (unsigned long long)r->problems_fixed, r->error);
	if (dir_entries(spill_dir))
		FUZZ_DIE("fsck_run (%s) left files in its spill directory %s",
			 mode == FSCK_MODE_NO ? "-n" : "-y", spill_dir);
	return ret;
}

static void image_make(struct lun *inner)
{
	static const uint8_t uuid[VMFS_UUID_SIZE] = { 0x66, 0x73, 0x63, 0x6b };
	struct vol_mkfs_opts mo;
	struct vol_geom g;
	struct vol *v;
	uint64_t need = 0;
	struct fsck_result r;
	struct run_log rl;
	int ret;

	vol_mkfs_opts_init(&mo);
	mo.max_hosts = 1;
	mo.journal_size = MIB;
	mo.inode_count = NINODES;
	mo.label = "fuzz-fsck";
	mo.uuid = uuid;
	ret = vol_mkfs(inner, &mo, &need);
	if (ret)
		FUZZ_DIE("vol_mkfs on %llu bytes: %s (needs %llu)",
			 (unsigned long long)LUN_BYTES, vmfs_strerror(ret),
			 (unsigned long long)need);
	CHECK(vol_open(inner, 0, &v));
	populate(v);
	vol_geom_get(v, &g);
	CHECK(vol_close(v));

	pristine = lun_buf_alloc(LUN_BYTES);
	if (!pristine)
		FUZZ_DIE("out of memory");
	CHECK(lun_read(inner, pristine, LUN_BYTES, 0));
	targets_build(&g);

	/* The image must be clean to begin with, or every input starts
	 * with the same finding. */
	run_fsck(FSCK_MODE_NO, false, &r, &rl);
	if (r.exit_code)
		fprintf(stderr, "fuzz_fsck: WARNING: fsck -n finds the fresh image not clean (exit %d, %llu problems; first: %s; error: %s)\n",
			r.exit_code, (unsigned long long)r.problems_found,
			rl.first, r.error);
}

/* ---- seeds -------------------------------------------------------------- */

static void write_seeds(void)
{
	struct fuzz_buf b = { 0 };

	/* One patch per target kind: a bad crc, and a resealed bad field. */
	for (size_t i = 0; i < ntargets; i += ntargets / 12 + 1) {
		char name[48];

		b.n = 0;
		fuzz_buf_u8(&b, 0);
		fuzz_buf_u8(&b, 1);                /* xor, no reseal */
		fuzz_buf_u16(&b, (uint16_t)i);
		fuzz_buf_u16(&b, (uint16_t)(targets[i].hdr_off + 0x40));
		fuzz_buf_u8(&b, 1);
		fuzz_buf_u8(&b, 0x10);
		snprintf(name, sizeof(name), "crc-%04zu", i);
		fuzz_seed_write(name, b.p, b.n);

		b.n = 0;
		fuzz_buf_u8(&b, 2);
		fuzz_buf_u8(&b, 0x80);             /* write, reseal */
		fuzz_buf_u16(&b, (uint16_t)i);
		fuzz_buf_u16(&b, (uint16_t)(targets[i].hdr_off + 0x30));
		fuzz_buf_u8(&b, 4);
		fuzz_buf_u32(&b, 0xffffffffu);
		snprintf(name, sizeof(name), "field-%04zu", i);
		fuzz_seed_write(name, b.p, b.n);
	}
	/* Two inode slots holding the same inode (duplicate blocks). */
	b.n = 0;
	fuzz_buf_u8(&b, 1);
	fuzz_buf_u8(&b, 0x82);
	fuzz_buf_u16(&b, (uint16_t)(ntargets / 2));
	fuzz_buf_u16(&b, 0);
	fuzz_buf_u8(&b, 255);
	fuzz_buf_u16(&b, (uint16_t)(ntargets / 2 + 1));
	fuzz_seed_write("copy-block", b.p, b.n);
	free(b.p);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct lun *inner;
	const char *s;
	int ret;

	(void)argc;
	(void)argv;
	fuzz_log_init("fuzz_fsck");
	s = getenv("VMFS_FUZZ_FSCK_STRICT");
	strict = s && *s && strcmp(s, "0");
	verbose = getenv("VMFS_FUZZ_VERBOSE") != NULL;
	snprintf(spill_dir, sizeof(spill_dir), "%s/vmfs-fuzz-fsck-%d.XXXXXX",
		 fuzz_dir(), (int)getpid());
	if (!mkdtemp(spill_dir))
		FUZZ_DIE("mkdtemp %s: %s", spill_dir, strerror(errno));
	atexit(cleanup);
	inner = fuzz_lun_scratch("fsck", LUN_BYTES);
	ret = lun_fault_wrap(inner, &lun);
	if (ret)
		FUZZ_DIE("lun_fault_wrap: %s", vmfs_strerror(ret));
	image_make(lun);
	if (fuzz_seed_dir()) {
		write_seeds();
		exit(0);
	}
	return 0;
}

/* ---- one input ---------------------------------------------------------- */

/* Apply the input's patches to copies of the target blocks, write them. */
static void patches_apply(struct fuzz_in *in)
{
	uint8_t *blk = lun_buf_alloc(BLK);

	if (!blk)
		FUZZ_DIE("out of memory");
	for (int k = 0; k < MAX_PATCHES && in->n; k++) {
		uint8_t op = take_u8(in);
		const struct target *t = &targets[take_u16(in) % ntargets];
		uint32_t off = take_u16(in) % BLK;
		uint32_t len = take_u8(in);
		uint8_t data[256];

		CHECK(lun_read(lun, blk, BLK, t->addr));
		switch (op & 3) {
		case 0:
		case 1:
			len = len < BLK - off ? len : BLK - off;
			take_bytes(in, data, len);
			for (uint32_t i = 0; i < len; i++)
				blk[off + i] = (op & 3) ? blk[off + i] ^ data[i]
							: data[i];
			break;
		case 2: {
			const struct target *src =
				&targets[take_u16(in) % ntargets];

			len = len * 16 < BLK - off ? len * 16 : BLK - off;
			memcpy(blk + off, pristine + src->addr + off, len);
			break;
		}
		default:
			len = len * 16 < BLK - off ? len * 16 : BLK - off;
			memset(blk + off, 0, len);
			break;
		}
		if (op & 0x80) {
			if (t->lock)
				crc_refresh(blk, VMFS_LOCK_SIZE);
			crc_refresh(blk + t->hdr_off, t->len);
		}
		CHECK(lun_write(lun, blk, BLK, t->addr));
	}
	lun_buf_free(blk);
}

/* Put the pristine bytes back under everything written since recording. */
static void image_restore(void)
{
	const struct lun_rec_entry *e;
	size_t n;

	lun_fault_record(lun, false);
	e = lun_fault_records(lun, &n);
	for (size_t i = 0; i < n; i++) {
		if (e[i].kind == LUN_REC_FLUSH)
			continue;
		if (e[i].off > LUN_BYTES || e[i].len > LUN_BYTES - e[i].off)
			FUZZ_DIE("a write at %llu of %llu bytes, past the LUN, was recorded",
				 (unsigned long long)e[i].off,
				 (unsigned long long)e[i].len);
		CHECK(lun_write(lun, pristine + e[i].off, e[i].len, e[i].off));
	}
	lun_fault_record_clear(lun);
}

static int count_fds(void)
{
	return (int)dir_entries("/proc/self/fd");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	uint8_t flags = take_u8(&in);
	bool spill = flags & 2;
	struct fsck_result r;
	struct run_log rl;
	int fds = count_fds();
	bool fixed;

	stats.inputs++;
	lun_fault_record(lun, true);
	patches_apply(&in);
	if (flags & 1)
		run_fsck(FSCK_MODE_NO, spill, &r, &rl);
	run_fsck(FSCK_MODE_YES, spill, &r, &rl);
	fixed = r.exit_code & FSCK_EXIT_FIXED;
	if (fixed)
		stats.yes_fixed++;
	if (r.exit_code & FSCK_EXIT_ERROR)
		stats.yes_error++;
	run_fsck(FSCK_MODE_NO, spill, &r, &rl);
	/* After a repair the volume must check clean: no problem left, and
	 * no operational error either (one that -y did not start from). */
	if (r.problems_found || (fixed && r.exit_code)) {
		stats.second_dirty++;
		if (strict)
			FUZZ_DIE("fsck -n after fsck -y is not clean: exit %d, %llu problems; first: %s; error: %s",
				 r.exit_code, (unsigned long long)r.problems_found,
				 rl.first[0] ? rl.first : "-",
				 r.error[0] ? r.error : "-");
	}
	image_restore();
	if (count_fds() != fds)
		FUZZ_DIE("fsck_run leaked file descriptors: %d open before, %d after",
			 fds, count_fds());
	return 0;
}
