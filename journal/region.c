/*
 * Journal regions: one per heartbeat slot, each opening with a lockable
 * header block.  A clean header (tail == head) means there is nothing to
 * replay; mkfs writes every region clean.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>
#include "vmfs/journal.h"
#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"

#define JNL_HDR_LEN (VMFS_MD_BLOCK_SIZE - VMFS_OBJ_OFFSET)

int jnl_regions_format(struct lun *lun, uint64_t off, uint64_t size,
		       uint32_t nslots)
{
	uint8_t *buf = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	for (uint32_t i = 0; !ret && i < nslots; i++) {
		uint64_t addr = off + (uint64_t)i * size;
		struct vmfs_jnl_hdr *jh =
			(struct vmfs_jnl_hdr *)(buf + VMFS_OBJ_OFFSET);

		memset(buf, 0, VMFS_MD_BLOCK_SIZE);
		lock_record_init_free(buf, addr, 1);
		jh->jh_slot = htole32(i);
		jh->jh_state = htole32(VMFS_JNL_CLEAN);
		jh->jh_size_bytes = htole64(size);
		jh->jh_tail = htole64(VMFS_MD_BLOCK_SIZE);
		jh->jh_head = htole64(VMFS_MD_BLOCK_SIZE);
		jh->jh_seq = htole64(1);
		jh->jh_hdr.bh_gen = htole64(1);
		lun_md_seal(&jh->jh_hdr, VMFS_MAGIC_JOURNAL, addr, JNL_HDR_LEN);
		ret = lun_write(lun, buf, VMFS_MD_BLOCK_SIZE, addr);
	}
	lun_buf_free(buf);
	return ret;
}

int jnl_header_read(struct lun *lun, uint64_t off, struct jnl_info *out)
{
	uint8_t *buf = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	const struct vmfs_jnl_hdr *jh =
		(const struct vmfs_jnl_hdr *)(buf + VMFS_OBJ_OFFSET);
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = lun_read(lun, buf, VMFS_MD_BLOCK_SIZE, off);
	if (!ret)
		ret = lun_md_verify(&jh->jh_hdr, VMFS_MAGIC_JOURNAL, off,
				    JNL_HDR_LEN);
	if (!ret) {
		out->slot = le32toh(jh->jh_slot);
		out->state = le32toh(jh->jh_state);
		out->size_bytes = le64toh(jh->jh_size_bytes);
		out->head = le64toh(jh->jh_head);
		out->tail = le64toh(jh->jh_tail);
		out->seq = le64toh(jh->jh_seq);
		if (out->state > VMFS_JNL_DIRTY)
			ret = -VMFS_E_CORRUPT;
	}
	lun_buf_free(buf);
	return ret;
}
