/*
 * Self-describing data: every 512-byte sector the workload writes says
 * which file, which write (version) and which file offset it belongs to,
 * and the rest of its bytes derive from those three.  A sector read back
 * after a crash is then all zeros, exactly one sector some write put at
 * that offset of that file, or garbage; nothing in between passes.
 *
 * Sector layout (little-endian):
 *   0x00 u32 magic "CSIM"   0x04 u32 file id   0x08 u32 version
 *   0x0c u32 0              0x10 u64 file offset in bytes
 *   0x18 .. 0x1ff  splitmix64 stream seeded by (file id, version, offset)
 * xattr values carry the same idea with { "CSIX", file id, slot, version }.
 */
#include <endian.h>
#include <stdio.h>
#include <string.h>

#include "crashsim.h"

#define HDR_LEN 0x18u

static uint64_t seed_of(uint32_t fid, uint32_t ver, uint64_t off)
{
	return cs_mix(((uint64_t)fid << 32 | ver) ^ cs_mix(off));
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

/* The derived bytes from HDR_LEN to the end of a buffer of len bytes. */
static void body_fill(uint8_t *p, size_t len, uint64_t seed)
{
	struct cs_rng r = { seed };

	for (size_t i = HDR_LEN; i < len; i += 8) {
		uint64_t x = htole64(cs_rand(&r));

		memcpy(p + i, &x, len - i < 8 ? len - i : 8);
	}
}

void cs_sector_fill(uint8_t *s, uint32_t fid, uint32_t ver, uint64_t off)
{
	put32(s, CS_SECT_MAGIC);
	put32(s + 4, fid);
	put32(s + 8, ver);
	put32(s + 12, 0);
	put64(s + 16, off);
	body_fill(s, CS_SECTOR, seed_of(fid, ver, off));
}

bool cs_sector_header(const uint8_t *s, size_t len, uint32_t *fid,
		      uint32_t *ver, uint64_t *off)
{
	if (len < HDR_LEN || get32(s) != CS_SECT_MAGIC || get32(s + 12))
		return false;
	*fid = get32(s + 4);
	*ver = get32(s + 8);
	*off = get64(s + 16);
	return true;
}

bool cs_sector_is(const uint8_t *s, size_t len, uint32_t fid, uint32_t ver,
		  uint64_t off)
{
	uint8_t want[CS_SECTOR];

	if (len > CS_SECTOR)
		return false;
	cs_sector_fill(want, fid, ver, off);
	return memcmp(s, want, len) == 0;
}

bool cs_is_zero(const uint8_t *p, size_t len)
{
	static const uint8_t zero[4096];

	while (len) {
		size_t n = len < sizeof(zero) ? len : sizeof(zero);

		if (memcmp(p, zero, n))
			return false;
		p += n;
		len -= n;
	}
	return true;
}

/* Value lengths vary with the version so a torn update shows. */
size_t cs_xattr_fill(uint8_t *v, size_t cap, uint32_t fid, uint32_t slot,
		     uint32_t ver)
{
	size_t len = 16 + cs_mix((uint64_t)fid << 40 ^ (uint64_t)slot << 32 ^ ver) % 160;

	if (len > cap)
		len = cap;
	put32(v, CS_XATTR_MAGIC);
	put32(v + 4, fid);
	put32(v + 8, slot);
	put32(v + 12, ver);
	for (size_t i = 16; i < len; i++)
		v[i] = (uint8_t)cs_mix(seed_of(fid, ver, slot) + i);
	return len;
}

bool cs_xattr_parse(const uint8_t *v, size_t len, uint32_t *fid,
		    uint32_t *slot, uint32_t *ver)
{
	uint8_t want[256];

	if (len < 16 || len > sizeof(want) || get32(v) != CS_XATTR_MAGIC)
		return false;
	*fid = get32(v + 4);
	*slot = get32(v + 8);
	*ver = get32(v + 12);
	return *slot < CS_NXATTR &&
	       cs_xattr_fill(want, sizeof(want), *fid, *slot, *ver) == len &&
	       memcmp(v, want, len) == 0;
}

void cs_xattr_name(uint32_t slot, char out[16])
{
	snprintf(out, 16, "user.cs%u", slot);
}
