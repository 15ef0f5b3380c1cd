/*
 * Journal regions: one per heartbeat slot, each opening with a lockable
 * header block.  A clean header (tail == head) means there is nothing to
 * replay; mkfs writes every region clean, each with its own random jid
 * so records left by an earlier volume on the same LUN never replay.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/random.h>
#include "vmfs/journal.h"
#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"

#define JNL_HDR_LEN (VMFS_MD_BLOCK_SIZE - VMFS_OBJ_OFFSET)

/*
 * What a region's size must be, for the formatter and the reader alike:
 * whole blocks, the header and at least one block of records.  A region
 * the formatter wrote but the reader refuses would read as corrupt on the
 * first mount.
 */
static bool jnl_region_size_ok(uint64_t size)
{
	return size >= 2 * VMFS_MD_BLOCK_SIZE && !(size % VMFS_MD_BLOCK_SIZE);
}

static void jnl_header_fill(uint8_t *buf, uint64_t addr, uint32_t slot,
			    uint64_t size, enum vmfs_jnl_state state,
			    uint64_t pos, uint64_t seq, uint64_t jid)
{
	struct vmfs_jnl_hdr *jh = (struct vmfs_jnl_hdr *)(buf + VMFS_OBJ_OFFSET);
	struct fmt_jnl_hdr h = {
		.gen = fmt_hdr_gen(&jh->jh_hdr) + 1, .slot = slot,
		.state = state, .size_bytes = size, .tail = pos, .head = pos,
		.seq = seq, .jid = jid,
	};

	memset(jh, 0, JNL_HDR_LEN);
	fmt_jnl_hdr_encode(&h, jh);
	lun_md_seal(&jh->jh_hdr, VMFS_MAGIC_JOURNAL, addr, JNL_HDR_LEN);
}

int jnl_regions_format(struct lun *lun, uint64_t off, uint64_t size,
		       uint32_t nslots)
{
	uint8_t *buf;
	int ret = 0;

	if (!jnl_region_size_ok(size))
		return -EINVAL;
	buf = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	if (!buf)
		return -ENOMEM;
	for (uint32_t i = 0; !ret && i < nslots; i++) {
		uint64_t addr = off + (uint64_t)i * size;
		uint64_t jid;

		if (getrandom(&jid, sizeof(jid), 0) != sizeof(jid)) {
			ret = -errno;
			break;
		}
		memset(buf, 0, VMFS_MD_BLOCK_SIZE);
		lock_record_init_free(buf, addr, 1);
		jnl_header_fill(buf, addr, i, size, VMFS_JNL_CLEAN,
				VMFS_MD_BLOCK_SIZE, 1, jid);
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
		struct fmt_jnl_hdr h;
		struct fmt_hdr bh;
		int bad = fmt_jnl_hdr_decode(jh, &h);

		fmt_hdr_decode(&jh->jh_hdr, &bh);
		out->slot = h.slot;
		out->state = h.state;
		out->size_bytes = h.size_bytes;
		out->head = h.head;
		out->tail = h.tail;
		out->seq = h.seq;
		out->jid = h.jid;
		out->major = bh.major;
		out->minor = bh.minor;
		if (bad ||
		    !jnl_region_size_ok(out->size_bytes) ||
		    out->tail < VMFS_MD_BLOCK_SIZE ||
		    out->tail >= out->size_bytes ||
		    out->tail % VMFS_MD_BLOCK_SIZE ||
		    out->head < VMFS_MD_BLOCK_SIZE ||
		    out->head >= out->size_bytes ||
		    out->head % VMFS_MD_BLOCK_SIZE)
			ret = -VMFS_E_CORRUPT;
	}
	lun_buf_free(buf);
	return ret;
}

int jnl_header_write(struct lun *lun, uint64_t off,
		     const struct jnl_info *info, enum vmfs_jnl_state state,
		     uint64_t pos, uint64_t seq)
{
	uint8_t *buf = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	int ret;

	if (!buf)
		return -ENOMEM;
	/* Read for the generation; the lock record read here is not written
	 * back (lock_obj_write keeps the one on disk). */
	ret = lun_read(lun, buf, VMFS_MD_BLOCK_SIZE, off);
	if (!ret) {
		jnl_header_fill(buf, off, info->slot, info->size_bytes, state,
				pos, seq, info->jid);
		ret = lock_obj_write(lun, buf, off);
	}
	lun_buf_free(buf);
	return ret;
}
