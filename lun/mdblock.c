/*
 * The metadata-block envelope: struct vmfs_blk_hdr (format.h) at the start
 * of every metadata block, or of the object part of a lockable block.
 *
 * The header is read and written field by field in disk (little-endian)
 * order through a local copy: the caller's buffer may be any sector
 * buffer, and we never cast it and use it in host order.  The crc covers
 * bh_len bytes from the header with bh_crc counted as zero.  Verify
 * computes it as crc(bytes before bh_crc) + crc(four zero bytes) +
 * crc(bytes after), so it never writes to a buffer that may be shared
 * with readers or mapped read-only.
 */
#include <endian.h>
#include <poll.h>
#include <stddef.h>
#include <string.h>

#include "vmfs/format.h"
#include "lun_int.h"

#define MD_CRC_OFF offsetof(struct vmfs_blk_hdr, bh_crc)
#define MD_CRC_END (MD_CRC_OFF + sizeof(le32))

/* crc of len bytes at hdr with bh_crc taken as zero; len >= header size. */
static uint32_t md_crc(const void *hdr, uint32_t len)
{
	static const unsigned char zero[sizeof(le32)];
	const unsigned char *p = hdr;
	uint32_t crc;

	crc = lun_crc32c(0, p, MD_CRC_OFF);
	crc = lun_crc32c(crc, zero, sizeof(zero));
	return lun_crc32c(crc, p + MD_CRC_END, len - MD_CRC_END);
}

/*
 * A len smaller than the header is a caller bug that seal cannot report;
 * it still seals the header itself so the block is not left with a stale
 * crc, and verify refuses it as VMFS_E_BAD_LEN.
 */
void lun_md_seal(void *hdr, uint32_t magic, uint64_t self, uint32_t len)
{
	lun_md_seal_version(hdr, magic, self, len, VMFS_FORMAT_MAJOR,
			    VMFS_FORMAT_MINOR);
}

void lun_md_seal_version(void *hdr, uint32_t magic, uint64_t self,
			 uint32_t len, uint16_t major, uint16_t minor)
{
	struct vmfs_blk_hdr h;
	uint32_t crc_len = len;

	if (crc_len < sizeof(h))
		crc_len = sizeof(h);
	memcpy(&h, hdr, sizeof(h));
	h.bh_magic = htole32(magic);
	h.bh_major = htole16(major);
	h.bh_minor = htole16(minor);
	h.bh_self = htole64(self);
	h.bh_len = htole32(len);
	h.bh_crc = 0;
	memcpy(hdr, &h, sizeof(h));
	h.bh_crc = htole32(md_crc(hdr, crc_len));
	memcpy((unsigned char *)hdr + MD_CRC_OFF, &h.bh_crc, sizeof(h.bh_crc));
}

/*
 * The order is the one the failures are most useful in: a wrong magic
 * says "not this kind of block at all" (an all-zero, never written block
 * lands here), a newer major says "upgrade the software", a wrong length
 * or self address says the block is of the right kind but not where it
 * belongs (a misdirected or torn write), and only a block that passes all
 * of those is worth blaming on its bytes.  Minor versions are compatible
 * by definition and are not checked.  Major 0 never existed.
 */
int lun_md_verify(const void *hdr, uint32_t magic, uint64_t self, uint32_t len)
{
	struct vmfs_blk_hdr h;
	uint16_t major;

	memcpy(&h, hdr, sizeof(h));
	if (le32toh(h.bh_magic) != magic)
		return -VMFS_E_BAD_MAGIC;
	major = le16toh(h.bh_major);
	if (major == 0 || major > VMFS_FORMAT_MAJOR)
		return -VMFS_E_BAD_VERSION;
	if (len < sizeof(h) || le32toh(h.bh_len) != len)
		return -VMFS_E_BAD_LEN;
	if (le64toh(h.bh_self) != self)
		return -VMFS_E_BAD_SELF;
	if (le32toh(h.bh_crc) != md_crc(hdr, len))
		return -VMFS_E_BAD_CRC;
	return 0;
}

int lun_reread_torn(struct lun *lun, void *buf, size_t len, uint64_t off,
		    int (*verify)(const void *buf, uint64_t off, void *arg),
		    void *arg)
{
	int bad = verify(buf, off, arg);

	for (int k = 0; bad && k < LUN_TORN_READS; k++) {
		int ret;

		poll(NULL, 0, 1);
		ret = lun_read(lun, buf, len, off);
		if (ret)
			return ret;
		bad = verify(buf, off, arg);
	}
	return bad;
}
