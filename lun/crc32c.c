/*
 * crc32c (Castagnoli, reflected polynomial 0x82F63B78), the checksum of
 * every vmfs metadata block and journal transaction, and the one iSCSI
 * uses for its digests (RFC 3720 section 12.1, test vectors in B.4).
 *
 * Convention as zlib's crc32(): start with 0, and chaining holds:
 * crc(crc(0, a), b) == crc(0, a || b).  Internally the register starts at
 * ~0 and the result is inverted, so lun_crc32c(0, "123456789", 9) is the
 * standard check value 0xE3069283.
 *
 * Two implementations give identical results: the SSE4.2 crc32
 * instruction (8 bytes per instruction) when the CPU has it, chosen once
 * at run time, and table-driven slicing-by-8 in portable C otherwise.
 */
#include <endian.h>
#include <pthread.h>
#include <string.h>

#include "lun_int.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#define LUN_CRC32C_HAVE_SSE42 1
#endif

#define CRC32C_POLY 0x82F63B78u

/* crc32c_tab[k][b]: the crc of byte b followed by k zero bytes. */
static uint32_t crc32c_tab[8][256];
static uint32_t (*crc32c_impl)(uint32_t, const void *, size_t);
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void crc32c_init(void)
{
	uint32_t c;
	int i, j, k;

	for (i = 0; i < 256; i++) {
		c = (uint32_t)i;
		for (j = 0; j < 8; j++)
			c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		crc32c_tab[0][i] = c;
	}
	for (k = 1; k < 8; k++)
		for (i = 0; i < 256; i++) {
			c = crc32c_tab[k - 1][i];
			crc32c_tab[k][i] = (c >> 8) ^ crc32c_tab[0][c & 0xff];
		}
	crc32c_impl = lun_crc32c_hw_available() ? lun_crc32c_hw
						: lun_crc32c_sw;
}

uint32_t lun_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint32_t c = ~crc;

	pthread_once(&crc32c_once, crc32c_init);
	while (len && ((uintptr_t)p & 7)) {
		c = crc32c_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
		len--;
	}
	/*
	 * Slicing-by-8: fold the register into the next 8 message bytes and
	 * look each byte up in the table that accounts for how many bytes
	 * still follow it in the word (the first byte has seven).
	 */
	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		w = le64toh(w) ^ c;
		c = crc32c_tab[7][w & 0xff] ^
		    crc32c_tab[6][(w >> 8) & 0xff] ^
		    crc32c_tab[5][(w >> 16) & 0xff] ^
		    crc32c_tab[4][(w >> 24) & 0xff] ^
		    crc32c_tab[3][(w >> 32) & 0xff] ^
		    crc32c_tab[2][(w >> 40) & 0xff] ^
		    crc32c_tab[1][(w >> 48) & 0xff] ^
		    crc32c_tab[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		c = crc32c_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

#ifdef LUN_CRC32C_HAVE_SSE42
bool lun_crc32c_hw_available(void)
{
	return __builtin_cpu_supports("sse4.2");
}

__attribute__((target("sse4.2")))
uint32_t lun_crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t c = ~crc;

	/* The instruction takes unaligned words, but aligned ones are
	 * cheaper and the head loop is at most 7 bytes. */
	while (len && ((uintptr_t)p & 7)) {
		c = _mm_crc32_u8((uint32_t)c, *p++);
		len--;
	}
	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		c = _mm_crc32_u64(c, w);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return ~(uint32_t)c;
}
#else
bool lun_crc32c_hw_available(void)
{
	return false;
}

uint32_t lun_crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	return lun_crc32c_sw(crc, buf, len);
}
#endif

uint32_t lun_crc32c(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc32c_once, crc32c_init);
	return crc32c_impl(crc, buf, len);
}
