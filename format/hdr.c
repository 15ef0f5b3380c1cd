/*
 * The metadata-block header and block pointers: the two pieces every
 * other structure of the codec is built from.
 *
 * The envelope's rules (which fields the crc covers, the order of the
 * checks) are lun/mdblock.c's; here are only the field conversions for
 * code that needs a header's values, most often its generation.
 */
#include <endian.h>

#include "vmfs/format.h"

void fmt_hdr_decode(const struct vmfs_blk_hdr *d, struct fmt_hdr *h)
{
	h->magic = le32toh(d->bh_magic);
	h->major = le16toh(d->bh_major);
	h->minor = le16toh(d->bh_minor);
	h->self = le64toh(d->bh_self);
	h->gen = le64toh(d->bh_gen);
	h->crc = le32toh(d->bh_crc);
	h->len = le32toh(d->bh_len);
}

uint64_t fmt_hdr_gen(const struct vmfs_blk_hdr *d)
{
	return le64toh(d->bh_gen);
}

void fmt_hdr_set_gen(struct vmfs_blk_hdr *d, uint64_t gen)
{
	d->bh_gen = htole64(gen);
}

