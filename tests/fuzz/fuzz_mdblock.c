/*
 * libFuzzer harness: the metadata-block envelope (lun/mdblock.c).
 *
 * Input: [u8 sel][u64 self][u16 len][u16 flip][4 KiB block]
 *   sel % 9      which block kind (magic, where its header sits, the
 *                length its crc covers), as format.h lays them out
 *   sel & 0x10   refresh the crc over the canonical length first, keeping
 *                every other fuzzed header field, so verify gets past the
 *                crc and judges magic/version/length/self on their own
 *   sel & 0x20   use len % (room + 1) instead of the canonical length: any
 *                length a caller could legally pass for this buffer
 *   sel & 0x40   self comes from the block's own bh_self
 *
 * Checks, beyond "no crash and no out-of-bounds read" (the block lives in
 * a buffer of exactly 4 KiB, so ASan sees a read past it):
 *   - lun_md_verify returns 0 or one of the -VMFS_E_BAD_* codes it
 *     documents, and an all-zero header is -VMFS_E_BAD_MAGIC;
 *   - a 0 means every header field matches what the caller asked for;
 *   - lun_md_seal of the same bytes then verifies, never writes outside
 *     [hdr, hdr + len), and any single bit flipped inside that range makes
 *     verify fail (crc32c catches every one-bit error).
 */
#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmfs/format.h"
#include "vmfs/lun.h"
#include "fuzz.h"

#define BLK VMFS_MD_BLOCK_SIZE
#define HDR_SIZE sizeof(struct vmfs_blk_hdr)
#define OBJ_LEN (BLK - VMFS_OBJ_OFFSET)

static const struct kind {
	uint32_t magic;
	uint32_t hdr_off;   /* where the header sits in the 4 KiB block */
	uint32_t len;       /* bytes its crc covers */
} kinds[] = {
	{ VMFS_MAGIC_VOLUME,   0,               BLK },
	{ VMFS_MAGIC_LOCK,     0,               VMFS_LOCK_SIZE },
	{ VMFS_MAGIC_HBREGION, VMFS_OBJ_OFFSET, OBJ_LEN },
	{ VMFS_MAGIC_HBSLOT,   0,               sizeof(struct vmfs_hb_slot) },
	{ VMFS_MAGIC_JOURNAL,  VMFS_OBJ_OFFSET, OBJ_LEN },
	{ VMFS_MAGIC_RCLUSTER, VMFS_OBJ_OFFSET, OBJ_LEN },
	{ VMFS_MAGIC_INODE,    VMFS_OBJ_OFFSET, OBJ_LEN },
	{ VMFS_MAGIC_PTRBLK,   0,               BLK },
	{ VMFS_MAGIC_DIRBLK,   0,               BLK },
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static bool verify_result_known(int r)
{
	return r == 0 || r == -VMFS_E_BAD_MAGIC || r == -VMFS_E_BAD_VERSION ||
	       r == -VMFS_E_BAD_LEN || r == -VMFS_E_BAD_SELF ||
	       r == -VMFS_E_BAD_CRC;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

/* Recompute bh_crc over len bytes the way the format defines it. */
static void crc_refresh(uint8_t *hdr, uint32_t len)
{
	const size_t off = offsetof(struct vmfs_blk_hdr, bh_crc);
	le32 crc = 0;

	memcpy(hdr + off, &crc, sizeof(crc));
	crc = htole32(lun_crc32c(0, hdr, len));
	memcpy(hdr + off, &crc, sizeof(crc));
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One valid sealed block of each kind, at a plausible address. */
static void write_seeds(void)
{
	uint8_t *blk = calloc(1, BLK);

	if (!blk)
		FUZZ_DIE("out of memory");
	for (unsigned i = 0; i < NKINDS; i++) {
		const struct kind *k = &kinds[i];
		uint64_t self = 0x100000 + (uint64_t)i * BLK;
		struct fuzz_buf b = { 0 };
		char name[32];

		memset(blk, 0, BLK);
		for (uint32_t j = HDR_SIZE; j < k->len; j++)
			blk[k->hdr_off + j] = (uint8_t)(j * 7);
		lun_md_seal(blk + k->hdr_off, k->magic, self, k->len);
		fuzz_buf_u8(&b, (uint8_t)i);
		fuzz_buf_u64(&b, self);
		fuzz_buf_u16(&b, (uint16_t)k->len);
		fuzz_buf_u16(&b, 0);
		fuzz_buf_put(&b, blk, BLK);
		snprintf(name, sizeof(name), "sealed-%u", i);
		fuzz_seed_write(name, b.p, b.n);
		free(b.p);
	}
	free(blk);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_log_init("fuzz_mdblock");
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
	uint16_t len_in = take_u16(&in);
	uint16_t flip = take_u16(&in);
	const struct kind *k = &kinds[sel % NKINDS];
	uint32_t room = BLK - k->hdr_off;
	uint32_t len = k->len;
	uint8_t *blk = malloc(BLK), *copy = malloc(BLK), *hdr;
	struct vmfs_blk_hdr h;
	struct fmt_hdr fh;
	int r;

	if (!blk || !copy)
		FUZZ_DIE("out of memory");
	take_bytes(&in, blk, BLK);
	hdr = blk + k->hdr_off;
	if (sel & 0x10)
		crc_refresh(hdr, k->len);
	if (sel & 0x20)
		len = len_in % (room + 1);
	if (sel & 0x40) {
		memcpy(&h, hdr, sizeof(h));
		fmt_hdr_decode(&h, &fh);
		self = fh.self;
	}

	r = lun_md_verify(hdr, k->magic, self, len);
	if (!verify_result_known(r))
		FUZZ_DIE("lun_md_verify returned %d (%s)", r, vmfs_strerror(r));
	if (all_zero(hdr, HDR_SIZE) && r != -VMFS_E_BAD_MAGIC)
		FUZZ_DIE("all-zero header verified as %d, not BAD_MAGIC", r);
	if (r == 0) {
		memcpy(&h, hdr, sizeof(h));
		fmt_hdr_decode(&h, &fh);
		if (fh.magic != k->magic || fh.major == 0 ||
		    fh.major > VMFS_FORMAT_MAJOR || fh.len != len ||
		    fh.self != self)
			FUZZ_DIE("lun_md_verify accepted a header that does not match (magic 0x%08x len %u self %llu)",
				 fh.magic, fh.len, (unsigned long long)fh.self);
	}

	/* Seal must produce a block that verifies, touching only its range. */
	if (len >= HDR_SIZE) {
		memcpy(copy, blk, BLK);
		lun_md_seal(copy + k->hdr_off, k->magic, self, len);
		if (memcmp(copy, blk, k->hdr_off) ||
		    memcmp(copy + k->hdr_off + len, blk + k->hdr_off + len,
			   room - len))
			FUZZ_DIE("lun_md_seal wrote outside [hdr, hdr + %u)", len);
		r = lun_md_verify(copy + k->hdr_off, k->magic, self, len);
		if (r)
			FUZZ_DIE("a block sealed with len %u fails verify: %s",
				 len, vmfs_strerror(r));
		copy[k->hdr_off + (flip / 8) % len] ^= (uint8_t)(1u << (flip % 8));
		r = lun_md_verify(copy + k->hdr_off, k->magic, self, len);
		if (r == 0)
			FUZZ_DIE("one bit flipped at byte %u of %u still verifies",
				 (flip / 8) % len, len);
	}
	free(blk);
	free(copy);
	return 0;
}
