/*
 * Journal records: the region header, and the descriptor and commit
 * blocks of a transaction in the ring.  Whether a transaction is whole
 * (sequence, jid, index, counts, crc) is the walker's to judge
 * (journal/walk.c); here are the fields.
 */
#include <endian.h>

#include "vmfs/error.h"
#include "vmfs/format.h"

int fmt_jnl_hdr_decode(const struct vmfs_jnl_hdr *d, struct fmt_jnl_hdr *jh)
{
	jh->gen = le64toh(d->jh_hdr.bh_gen);
	jh->slot = le32toh(d->jh_slot);
	jh->state = le32toh(d->jh_state);
	jh->size_bytes = le64toh(d->jh_size_bytes);
	jh->tail = le64toh(d->jh_tail);
	jh->head = le64toh(d->jh_head);
	jh->seq = le64toh(d->jh_seq);
	jh->jid = le64toh(d->jh_jid);
	return jh->state > VMFS_JNL_DIRTY ? -VMFS_E_CORRUPT : 0;
}

void fmt_jnl_hdr_encode(const struct fmt_jnl_hdr *jh, struct vmfs_jnl_hdr *d)
{
	d->jh_hdr.bh_gen = htole64(jh->gen);
	d->jh_slot = htole32(jh->slot);
	d->jh_state = htole32(jh->state);
	d->jh_size_bytes = htole64(jh->size_bytes);
	d->jh_tail = htole64(jh->tail);
	d->jh_head = htole64(jh->head);
	d->jh_seq = htole64(jh->seq);
	d->jh_jid = htole64(jh->jid);
}

int fmt_jnl_desc_decode(const struct vmfs_jnl_desc *d,
			struct fmt_jnl_desc *jd)
{
	jd->gen = le64toh(d->jd_hdr.bh_gen);
	jd->seq = le64toh(d->jd_seq);
	jd->jid = le64toh(d->jd_jid);
	jd->ntags = le32toh(d->jd_ntags);
	jd->index = le32toh(d->jd_index);
	if (!jd->ntags || jd->ntags > VMFS_JNL_TAGS_PER_DESC)
		return -VMFS_E_CORRUPT;
	return 0;
}

void fmt_jnl_desc_encode(const struct fmt_jnl_desc *jd,
			 struct vmfs_jnl_desc *d)
{
	d->jd_hdr.bh_gen = htole64(jd->gen);
	d->jd_seq = htole64(jd->seq);
	d->jd_jid = htole64(jd->jid);
	d->jd_ntags = htole32(jd->ntags);
	d->jd_index = htole32(jd->index);
}

void fmt_jnl_tag_get(const struct vmfs_jnl_desc *d, uint32_t i,
		     uint64_t *addr, uint32_t *flags)
{
	*addr = le64toh(d->jd_tags[i].jt_addr);
	*flags = le32toh(d->jd_tags[i].jt_flags);
}

void fmt_jnl_tag_set(struct vmfs_jnl_desc *d, uint32_t i, uint64_t addr,
		     uint32_t flags)
{
	d->jd_tags[i].jt_addr = htole64(addr);
	d->jd_tags[i].jt_flags = htole32(flags);
}

void fmt_jnl_commit_decode(const struct vmfs_jnl_commit *d,
			   struct fmt_jnl_commit *jc)
{
	jc->gen = le64toh(d->jc_hdr.bh_gen);
	jc->seq = le64toh(d->jc_seq);
	jc->jid = le64toh(d->jc_jid);
	jc->nblocks = le32toh(d->jc_nblocks);
	jc->crc = le32toh(d->jc_crc);
	jc->time_ns = (int64_t)le64toh(d->jc_time_ns);
	jc->nimages = le32toh(d->jc_nimages);
}

void fmt_jnl_commit_encode(const struct fmt_jnl_commit *jc,
			   struct vmfs_jnl_commit *d)
{
	d->jc_hdr.bh_gen = htole64(jc->gen);
	d->jc_seq = htole64(jc->seq);
	d->jc_jid = htole64(jc->jid);
	d->jc_nblocks = htole32(jc->nblocks);
	d->jc_crc = htole32(jc->crc);
	d->jc_time_ns = htole64((uint64_t)jc->time_ns);
	d->jc_nimages = htole32(jc->nimages);
}
