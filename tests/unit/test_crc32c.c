/*
 * crc32c (lun/crc32c.c) and the metadata-block envelope it protects
 * (lun/mdblock.c).
 *
 * The software and SSE4.2 paths are compared directly through the private
 * entry points in lun/lun_int.h, since lun_crc32c() only ever runs one of
 * them on a given machine.
 */
#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "vmfs/format.h"
#include "vmfs/lun.h"
#include "../../lun/lun_int.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

/* RFC 3720 appendix B.4 and the customary "123456789" check value. */
static void check_vectors(crc_fn fn)
{
	unsigned char buf[32];
	int i;

	CU_ASSERT_EQUAL(fn(0, "123456789", 9), 0xE3069283u);
	memset(buf, 0, sizeof(buf));
	CU_ASSERT_EQUAL(fn(0, buf, 32), 0x8A9136AAu);
	memset(buf, 0xff, sizeof(buf));
	CU_ASSERT_EQUAL(fn(0, buf, 32), 0x62A8AB43u);
	for (i = 0; i < 32; i++)
		buf[i] = (unsigned char)i;
	CU_ASSERT_EQUAL(fn(0, buf, 32), 0x46DD794Eu);
	for (i = 0; i < 32; i++)
		buf[i] = (unsigned char)(31 - i);
	CU_ASSERT_EQUAL(fn(0, buf, 32), 0x113FDB5Cu);
	CU_ASSERT_EQUAL(fn(0, buf, 0), 0);
}

static void test_crc_vectors(void)
{
	check_vectors(lun_crc32c);
}

static void test_crc_vectors_sw(void)
{
	check_vectors(lun_crc32c_sw);
}

static void test_crc_vectors_hw(void)
{
	if (!lun_crc32c_hw_available()) {
		/* Nothing to compare on this CPU; say so in the log. */
		CU_PASS("no SSE4.2 on this CPU");
		return;
	}
	check_vectors(lun_crc32c_hw);
}

/* crc(crc(0, a), b) == crc(0, a || b) at every split point. */
static void test_crc_chaining(void)
{
	unsigned char buf[100];
	uint32_t whole;
	size_t i;

	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 37 + 11);
	whole = lun_crc32c(0, buf, sizeof(buf));
	for (i = 0; i <= sizeof(buf); i++) {
		uint32_t c = lun_crc32c(0, buf, i);

		c = lun_crc32c(c, buf + i, sizeof(buf) - i);
		CU_ASSERT_EQUAL(c, whole);
		CU_ASSERT_EQUAL(lun_crc32c_sw(lun_crc32c_sw(0, buf, i),
					      buf + i, sizeof(buf) - i), whole);
	}
}

/* A single flipped bit anywhere must change the crc. */
static void test_crc_detects_flips(void)
{
	unsigned char buf[64];
	uint32_t good;
	size_t i;
	int b;

	memset(buf, 0x5a, sizeof(buf));
	good = lun_crc32c(0, buf, sizeof(buf));
	for (i = 0; i < sizeof(buf); i++)
		for (b = 0; b < 8; b++) {
			buf[i] ^= (unsigned char)(1u << b);
			CU_ASSERT_NOT_EQUAL(lun_crc32c(0, buf, sizeof(buf)),
					    good);
			buf[i] ^= (unsigned char)(1u << b);
		}
}

/*
 * Software and hardware agree on random data for every length up to 1 KiB
 * at every alignment 0..15, chained from random initial values, and on
 * one large buffer.
 */
static void test_crc_sw_hw_agree(void)
{
	enum { MAXLEN = 1024, BIG = 1 << 20 };
	unsigned char *buf = malloc(BIG + 16);
	unsigned seed = 12345;
	size_t len, i;
	unsigned align;
	unsigned bad = 0;

	CU_ASSERT_FATAL(buf != NULL);
	if (!lun_crc32c_hw_available()) {
		free(buf);
		CU_PASS("no SSE4.2 on this CPU");
		return;
	}
	for (i = 0; i < BIG + 16; i++)
		buf[i] = (unsigned char)rand_r(&seed);
	for (align = 0; align < 16; align++)
		for (len = 0; len <= MAXLEN; len++) {
			uint32_t init = (uint32_t)rand_r(&seed);
			uint32_t sw = lun_crc32c_sw(init, buf + align, len);
			uint32_t hw = lun_crc32c_hw(init, buf + align, len);

			bad += sw != hw;
		}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(lun_crc32c_sw(0, buf + 3, BIG),
			lun_crc32c_hw(0, buf + 3, BIG));
	free(buf);
}

/* ---- metadata-block envelope ------------------------------------------ */

#define MD_SELF 0x123456789000ull
#define MD_LEN 3584u

/* A lockable-block layout: lock record first, object header at 512. */
static unsigned char *md_block(void)
{
	unsigned char *blk = malloc(VMFS_MD_BLOCK_SIZE);
	uint64_t gen = htole64(77);
	unsigned seed = 99;
	size_t i;

	CU_ASSERT_FATAL(blk != NULL);
	for (i = 0; i < VMFS_MD_BLOCK_SIZE; i++)
		blk[i] = (unsigned char)rand_r(&seed);
	memcpy(blk + VMFS_OBJ_OFFSET + offsetof(struct vmfs_blk_hdr, bh_gen),
	       &gen, sizeof(gen));
	lun_md_seal(blk + VMFS_OBJ_OFFSET, VMFS_MAGIC_INODE, MD_SELF, MD_LEN);
	return blk;
}

static int md_verify(const unsigned char *blk)
{
	return lun_md_verify(blk + VMFS_OBJ_OFFSET, VMFS_MAGIC_INODE, MD_SELF,
			     MD_LEN);
}

static void test_md_roundtrip(void)
{
	unsigned char *blk = md_block();
	unsigned char *h = blk + VMFS_OBJ_OFFSET;
	unsigned char *copy = malloc(VMFS_MD_BLOCK_SIZE);
	struct vmfs_blk_hdr hdr;
	uint32_t crc;

	CU_ASSERT_FATAL(copy != NULL);
	CU_ASSERT_EQUAL(md_verify(blk), 0);
	/* The on-disk bytes are little-endian whatever the host. */
	CU_ASSERT_EQUAL(memcmp(h, "NODE", 4), 0);
	memcpy(&hdr, h, sizeof(hdr));
	CU_ASSERT_EQUAL(le16toh(hdr.bh_major), VMFS_FORMAT_MAJOR);
	CU_ASSERT_EQUAL(le16toh(hdr.bh_minor), VMFS_FORMAT_MINOR);
	CU_ASSERT_EQUAL(le64toh(hdr.bh_self), MD_SELF);
	CU_ASSERT_EQUAL(le32toh(hdr.bh_len), MD_LEN);
	CU_ASSERT_EQUAL(le64toh(hdr.bh_gen), 77);	/* seal leaves it */

	/* The crc is the crc of the covered bytes with bh_crc zeroed. */
	memcpy(copy, blk, VMFS_MD_BLOCK_SIZE);
	memset(copy + VMFS_OBJ_OFFSET + offsetof(struct vmfs_blk_hdr, bh_crc),
	       0, 4);
	crc = lun_crc32c(0, copy + VMFS_OBJ_OFFSET, MD_LEN);
	CU_ASSERT_EQUAL(le32toh(hdr.bh_crc), crc);

	/* verify never writes to the block */
	memcpy(copy, blk, VMFS_MD_BLOCK_SIZE);
	CU_ASSERT_EQUAL(md_verify(blk), 0);
	CU_ASSERT_EQUAL(memcmp(copy, blk, VMFS_MD_BLOCK_SIZE), 0);

	/* The lock record before the header is not covered by its crc. */
	blk[0] ^= 1;
	blk[VMFS_OBJ_OFFSET - 1] ^= 1;
	CU_ASSERT_EQUAL(md_verify(blk), 0);
	free(copy);
	free(blk);
}

/* Overwrite a header field and re-seal nothing: the failure it names. */
static void md_poke(unsigned char *blk, size_t field, const void *v,
		    size_t n)
{
	memcpy(blk + VMFS_OBJ_OFFSET + field, v, n);
}

static void test_md_failures(void)
{
	unsigned char *blk = md_block();
	unsigned char *zero = calloc(1, VMFS_MD_BLOCK_SIZE);
	unsigned char good[VMFS_MD_BLOCK_SIZE];
	uint16_t major;
	uint32_t len;
	uint64_t self;

	CU_ASSERT_FATAL(zero != NULL);
	memcpy(good, blk, sizeof(good));

	CU_ASSERT_EQUAL(md_verify(zero), -VMFS_E_BAD_MAGIC);
	CU_ASSERT_EQUAL(lun_md_verify(blk + VMFS_OBJ_OFFSET, VMFS_MAGIC_PTRBLK,
				      MD_SELF, MD_LEN), -VMFS_E_BAD_MAGIC);

	major = htole16(VMFS_FORMAT_MAJOR + 1);
	md_poke(blk, offsetof(struct vmfs_blk_hdr, bh_major), &major, 2);
	CU_ASSERT_EQUAL(md_verify(blk), -VMFS_E_BAD_VERSION);
	major = 0;
	md_poke(blk, offsetof(struct vmfs_blk_hdr, bh_major), &major, 2);
	CU_ASSERT_EQUAL(md_verify(blk), -VMFS_E_BAD_VERSION);
	memcpy(blk, good, sizeof(good));

	CU_ASSERT_EQUAL(lun_md_verify(blk + VMFS_OBJ_OFFSET, VMFS_MAGIC_INODE,
				      MD_SELF, MD_LEN - 512), -VMFS_E_BAD_LEN);
	len = htole32(MD_LEN + 512);
	md_poke(blk, offsetof(struct vmfs_blk_hdr, bh_len), &len, 4);
	CU_ASSERT_EQUAL(md_verify(blk), -VMFS_E_BAD_LEN);
	memcpy(blk, good, sizeof(good));

	CU_ASSERT_EQUAL(lun_md_verify(blk + VMFS_OBJ_OFFSET, VMFS_MAGIC_INODE,
				      MD_SELF + 4096, MD_LEN), -VMFS_E_BAD_SELF);
	self = htole64(MD_SELF - 4096);
	md_poke(blk, offsetof(struct vmfs_blk_hdr, bh_self), &self, 8);
	CU_ASSERT_EQUAL(md_verify(blk), -VMFS_E_BAD_SELF);
	memcpy(blk, good, sizeof(good));

	/* One bit anywhere in the covered bytes, header included. */
	blk[VMFS_OBJ_OFFSET + MD_LEN - 1] ^= 0x80;
	CU_ASSERT_EQUAL(md_verify(blk), -VMFS_E_BAD_CRC);
	memcpy(blk, good, sizeof(good));
	blk[VMFS_OBJ_OFFSET + offsetof(struct vmfs_blk_hdr, bh_gen)] ^= 1;
	CU_ASSERT_EQUAL(md_verify(blk), -VMFS_E_BAD_CRC);
	memcpy(blk, good, sizeof(good));
	blk[VMFS_OBJ_OFFSET + offsetof(struct vmfs_blk_hdr, bh_crc)] ^= 1;
	CU_ASSERT_EQUAL(md_verify(blk), -VMFS_E_BAD_CRC);
	memcpy(blk, good, sizeof(good));

	/* A header shorter than itself is refused, never read past. */
	lun_md_seal(blk + VMFS_OBJ_OFFSET, VMFS_MAGIC_INODE, MD_SELF, 8);
	CU_ASSERT_EQUAL(lun_md_verify(blk + VMFS_OBJ_OFFSET, VMFS_MAGIC_INODE,
				      MD_SELF, 8), -VMFS_E_BAD_LEN);
	free(zero);
	free(blk);
}

/* The fixed order: the earliest check that fails is the one reported. */
static void test_md_order(void)
{
	unsigned char *blk = md_block();
	uint16_t major = htole16(VMFS_FORMAT_MAJOR + 1);
	uint64_t self = htole64(1);

	blk[VMFS_OBJ_OFFSET + 100] ^= 1;	/* crc broken */
	md_poke(blk, offsetof(struct vmfs_blk_hdr, bh_self), &self, 8);
	CU_ASSERT_EQUAL(md_verify(blk), -VMFS_E_BAD_SELF);
	CU_ASSERT_EQUAL(lun_md_verify(blk + VMFS_OBJ_OFFSET, VMFS_MAGIC_INODE,
				      MD_SELF, 512), -VMFS_E_BAD_LEN);
	md_poke(blk, offsetof(struct vmfs_blk_hdr, bh_major), &major, 2);
	CU_ASSERT_EQUAL(md_verify(blk), -VMFS_E_BAD_VERSION);
	CU_ASSERT_EQUAL(lun_md_verify(blk + VMFS_OBJ_OFFSET, VMFS_MAGIC_LOCK,
				      MD_SELF, MD_LEN), -VMFS_E_BAD_MAGIC);
	free(blk);
}

/* A newer minor version is compatible: still verifies. */
static void test_md_minor(void)
{
	unsigned char *blk = md_block();
	unsigned char *h = blk + VMFS_OBJ_OFFSET;
	uint16_t minor = htole16(VMFS_FORMAT_MINOR + 5);
	uint32_t crc;

	md_poke(blk, offsetof(struct vmfs_blk_hdr, bh_minor), &minor, 2);
	memset(h + offsetof(struct vmfs_blk_hdr, bh_crc), 0, 4);
	crc = htole32(lun_crc32c(0, h, MD_LEN));
	memcpy(h + offsetof(struct vmfs_blk_hdr, bh_crc), &crc, 4);
	CU_ASSERT_EQUAL(md_verify(blk), 0);
	free(blk);
}

static CU_TestInfo crc32c_tests[] = {
	{ "vectors", test_crc_vectors },
	{ "vectors_sw", test_crc_vectors_sw },
	{ "vectors_sse42", test_crc_vectors_hw },
	{ "chaining", test_crc_chaining },
	{ "detects_bit_flips", test_crc_detects_flips },
	{ "sw_sse42_agree", test_crc_sw_hw_agree },
	CU_TEST_INFO_NULL
};
UNIT_SUITE("crc32c", NULL, NULL, crc32c_tests);

static CU_TestInfo md_tests[] = {
	{ "seal_verify_roundtrip", test_md_roundtrip },
	{ "each_failure", test_md_failures },
	{ "failure_order", test_md_order },
	{ "newer_minor_ok", test_md_minor },
	CU_TEST_INFO_NULL
};
UNIT_SUITE("lun_md", NULL, NULL, md_tests);
