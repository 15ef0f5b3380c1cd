/*
 * libFuzzer harness: the small lockable-block readers, lock records
 * (lockmgr/lockrec.c), journal region headers (journal/region.c) and the
 * heartbeat survey (lockmgr/heartbeat.c, hb_survey without watching).
 *
 * Input: [u8 sel][u64 self][u16 arg][blocks...]
 *   sel % 3 == 0  lock_record_decode of a 512-byte record (a buffer of
 *                 exactly 512 bytes, so ASan sees any read past it)
 *   sel % 3 == 1  jnl_header_read of a 4 KiB block written at block
 *                 self % 256 of a 1 MiB LUN; then jnl_regions_format of
 *                 arg-chosen regions read back with jnl_header_read
 *   sel % 3 == 2  hb_survey of a region header at 64 KiB and arg & 15
 *                 slot blocks after it, into an array of (arg >> 4) % 1025
 *                 entries (exactly that size)
 *   sel & 0x10    refresh the crc of the object header (keeping every
 *                 fuzzed field) so the reader judges the fields
 *   sel & 0x20    the same for lock records and slot blocks
 *   sel & 0x40    read at the block's own bh_self instead of where it was
 *                 written (jnl) / take self from the record (lock)
 *
 * Checks: decode results stay inside what the format allows (mode,
 * holder count, journal state), an all-zero lock record is free, a record
 * made by lock_record_init_free decodes to itself, formatted journal
 * headers read back clean, the formatter refuses (-EINVAL) the one-block
 * region the reader would call corrupt, hb_survey never reports more
 * than it was given room for.  Each case zeroes what it wrote, so every
 * input runs on the same LUN contents.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmfs/format.h"
#include "vmfs/journal.h"
#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"
#include "fuzz.h"

#define BLK VMFS_MD_BLOCK_SIZE
#define OBJ_LEN (BLK - VMFS_OBJ_OFFSET)
#define JNL_LUN_BYTES (1024u * 1024)
#define HB_LUN_BYTES (8u * 1024 * 1024)
#define HB_OFF (64u * 1024)
#define HB_MAX_SLOTS_IN 15

static struct lun *jnl_lun, *hb_lun;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void crc_refresh(uint8_t *hdr, uint32_t len)
{
	const size_t off = offsetof(struct vmfs_blk_hdr, bh_crc);
	le32 crc = 0;

	memcpy(hdr + off, &crc, sizeof(crc));
	crc = htole32(lun_crc32c(0, hdr, len));
	memcpy(hdr + off, &crc, sizeof(crc));
}

static uint64_t hdr_self(const uint8_t *hdr)
{
	struct vmfs_blk_hdr h;
	struct fmt_hdr fh;

	memcpy(&h, hdr, sizeof(h));
	fmt_hdr_decode(&h, &fh);
	return fh.self;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

static void zero_back(struct lun *lun, uint64_t off, uint64_t len)
{
	int ret = lun_zero_range(lun, off, len);

	if (ret)
		FUZZ_DIE("lun_zero_range: %s", vmfs_strerror(ret));
}

static void case_lock(struct fuzz_in *in, uint8_t sel, uint64_t self,
		      uint16_t arg)
{
	uint8_t *rec = malloc(VMFS_LOCK_SIZE);
	struct lock_record lr;
	int ret;

	if (!rec)
		FUZZ_DIE("out of memory");
	take_bytes(in, rec, VMFS_LOCK_SIZE);
	if (sel & 0x30)
		crc_refresh(rec, VMFS_LOCK_SIZE);
	if (sel & 0x40)
		self = hdr_self(rec);
	ret = lock_record_decode(rec, self, &lr);
	if (ret != 0 && ret != -VMFS_E_BAD_MAGIC && ret != -VMFS_E_BAD_VERSION &&
	    ret != -VMFS_E_BAD_LEN && ret != -VMFS_E_BAD_SELF &&
	    ret != -VMFS_E_BAD_CRC && ret != -VMFS_E_CORRUPT)
		FUZZ_DIE("lock_record_decode returned %d", ret);
	if (all_zero(rec, VMFS_LOCK_SIZE) && (ret || lr.mode != VMFS_LOCK_FREE))
		FUZZ_DIE("an all-zero lock record is not free (%d)", ret);
	if (!ret && ((unsigned)lr.mode > VMFS_LOCK_MULTIWRITER ||
		     lr.nholders > VMFS_LOCK_MAX_HOLDERS))
		FUZZ_DIE("lock_record_decode accepted mode %u with %u holders",
			 (unsigned)lr.mode, lr.nholders);

	lock_record_init_free(rec, self, arg);
	ret = lock_record_decode(rec, self, &lr);
	if (ret || lr.mode != VMFS_LOCK_FREE || lr.gen != arg || lr.nholders)
		FUZZ_DIE("a fresh free record (self %llu gen %u) decodes as %d mode %u gen %llu",
			 (unsigned long long)self, arg, ret, (unsigned)lr.mode,
			 (unsigned long long)lr.gen);
	free(rec);
}

static void case_jnl(struct fuzz_in *in, uint8_t sel, uint64_t self,
		     uint16_t arg)
{
	uint8_t *blk = lun_buf_alloc(BLK);
	uint64_t woff = (self % 256) * BLK, roff = woff;
	/* Formatted regions go to the second half of the LUN. */
	uint32_t nslots = arg % 4 + 1;
	uint64_t rsize = ((arg >> 2) % 4 + 1) * (uint64_t)BLK;
	uint64_t base = JNL_LUN_BYTES / 2;
	struct jnl_info ji;
	int ret;

	if (!blk)
		FUZZ_DIE("out of memory");
	take_bytes(in, blk, BLK);
	if (sel & 0x10)
		crc_refresh(blk + VMFS_OBJ_OFFSET, OBJ_LEN);
	if (sel & 0x20)
		crc_refresh(blk, VMFS_LOCK_SIZE);
	if (sel & 0x40)
		roff = hdr_self(blk + VMFS_OBJ_OFFSET);
	fuzz_lun_put(jnl_lun, blk, BLK, woff);
	memset(&ji, 0, sizeof(ji));
	ret = jnl_header_read(jnl_lun, roff, &ji);
	if (ret > 0 || (ret < 0 && !vmfs_strerror(ret)))
		FUZZ_DIE("jnl_header_read returned %d", ret);
	if (!ret && (unsigned)ji.state > VMFS_JNL_DIRTY)
		FUZZ_DIE("jnl_header_read accepted state %u", (unsigned)ji.state);
	zero_back(jnl_lun, woff, BLK);

	/* A single block has no room for records: jnl_header_read would
	 * call it corrupt, so the formatter must refuse it. */
	ret = jnl_regions_format(jnl_lun, base, rsize, nslots);
	if (rsize < 2 * BLK) {
		if (ret != -EINVAL)
			FUZZ_DIE("jnl_regions_format of a %llu-byte region returned %d, not -EINVAL",
				 (unsigned long long)rsize, ret);
		lun_buf_free(blk);
		return;
	}
	if (ret)
		FUZZ_DIE("jnl_regions_format: %s", vmfs_strerror(ret));
	for (uint32_t i = 0; i < nslots; i++) {
		ret = jnl_header_read(jnl_lun, base + i * rsize, &ji);
		if (ret || ji.slot != i || ji.state != VMFS_JNL_CLEAN ||
		    ji.size_bytes != rsize || ji.head != ji.tail)
			FUZZ_DIE("formatted journal %u of %u (size %llu) reads back as %d slot %u state %u size %llu",
				 i, nslots, (unsigned long long)rsize, ret,
				 ji.slot, (unsigned)ji.state,
				 (unsigned long long)ji.size_bytes);
	}
	zero_back(jnl_lun, base, nslots * rsize);
	lun_buf_free(blk);
}

static void case_hb(struct fuzz_in *in, uint8_t sel, uint16_t arg)
{
	uint32_t nin = arg & HB_MAX_SLOTS_IN, max = (arg >> 4) % 1025, n = 0;
	uint8_t *blk = lun_buf_alloc((size_t)(nin + 1) * BLK);
	struct hb_slot_info *out = malloc((max ? max : 1) * sizeof(*out));
	int ret;

	if (!blk || !out)
		FUZZ_DIE("out of memory");
	take_bytes(in, blk, (size_t)(nin + 1) * BLK);
	if (sel & 0x10)
		crc_refresh(blk + VMFS_OBJ_OFFSET, OBJ_LEN);
	for (uint32_t i = 1; (sel & 0x20) && i <= nin; i++)
		crc_refresh(blk + (size_t)i * BLK, sizeof(struct vmfs_hb_slot));
	fuzz_lun_put(hb_lun, blk, (size_t)(nin + 1) * BLK, HB_OFF);
	ret = hb_survey(hb_lun, HB_OFF, false, out, max, &n);
	if (ret > 0 || (ret < 0 && !vmfs_strerror(ret)))
		FUZZ_DIE("hb_survey returned %d", ret);
	if (n > max)
		FUZZ_DIE("hb_survey filled %u entries of %u", n, max);
	for (uint32_t k = 0; !ret && k < n; k++)
		if (out[k].slot >= 1024 || out[k].state == VMFS_HB_FREE ||
		    out[k].live || strnlen(out[k].hostname, 65) > 64)
			FUZZ_DIE("hb_survey entry %u: slot %u state %u live %d",
				 k, out[k].slot, (unsigned)out[k].state,
				 out[k].live);
	zero_back(hb_lun, HB_OFF, (uint64_t)(nin + 1) * BLK);
	free(out);
	lun_buf_free(blk);
}

static void write_seeds(void)
{
	uint8_t *lock = calloc(1, VMFS_LOCK_SIZE), *blk = lun_buf_alloc(2 * BLK);
	struct fuzz_buf b = { 0 };
	int ret;

	if (!lock || !blk)
		FUZZ_DIE("out of memory");
	/* A free lock record of generation 7 for the block at 1 MiB. */
	lock_record_init_free(lock, 1 << 20, 7);
	fuzz_buf_u8(&b, 0);
	fuzz_buf_u64(&b, 1 << 20);
	fuzz_buf_u16(&b, 7);
	fuzz_buf_put(&b, lock, VMFS_LOCK_SIZE);
	fuzz_seed_write("lock-free", b.p, b.n);

	/* A clean journal header as mkfs writes it, at block 3, of the
	 * smallest region (two blocks); arg 4 formats one such region. */
	ret = jnl_regions_format(jnl_lun, 3 * BLK, 2 * BLK, 1);
	if (!ret)
		ret = lun_read(jnl_lun, blk, BLK, 3 * BLK);
	if (ret)
		FUZZ_DIE("journal seed: %s", vmfs_strerror(ret));
	b.n = 0;
	fuzz_buf_u8(&b, 1);
	fuzz_buf_u64(&b, 3);
	fuzz_buf_u16(&b, 4);
	fuzz_buf_put(&b, blk, BLK);
	fuzz_seed_write("jnl-clean", b.p, b.n);

	/* A heartbeat region of one free slot, as mkfs writes it. */
	ret = hb_region_format(hb_lun, HB_OFF, 1);
	if (!ret)
		ret = lun_read(hb_lun, blk, 2 * BLK, HB_OFF);
	if (ret)
		FUZZ_DIE("heartbeat seed: %s", vmfs_strerror(ret));
	b.n = 0;
	fuzz_buf_u8(&b, 2);
	fuzz_buf_u64(&b, 0);
	fuzz_buf_u16(&b, 1 | 4 << 4);
	fuzz_buf_put(&b, blk, 2 * BLK);
	fuzz_seed_write("hb-one-slot", b.p, b.n);
	free(b.p);
	free(lock);
	lun_buf_free(blk);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_log_init("fuzz_lockjnl");
	jnl_lun = fuzz_lun_scratch("jnl", JNL_LUN_BYTES);
	hb_lun = fuzz_lun_scratch("hb", HB_LUN_BYTES);
	if (fuzz_seed_dir()) {
		write_seeds();
		exit(0);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	uint8_t sel = take_u8(&in);
	uint64_t self = take_u64(&in);
	uint16_t arg = take_u16(&in);

	switch (sel % 3) {
	case 0:
		case_lock(&in, sel, self, arg);
		break;
	case 1:
		case_jnl(&in, sel, self, arg);
		break;
	default:
		case_hb(&in, sel, arg);
		break;
	}
	return 0;
}
