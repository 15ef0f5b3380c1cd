/*
 * Resource-cluster headers.  The bitmaps (rc_bitmap, rc_orphan) are bytes
 * with bit i of the cluster at byte i / 8, bit i % 8, and need no
 * conversion; only the fixed fields are here.
 */
#include <endian.h>

#include "vmfs/error.h"
#include "vmfs/format.h"

int fmt_rc_decode(const struct vmfs_rc *d, struct fmt_rc *rc)
{
	rc->gen = le64toh(d->rc_hdr.bh_gen);
	rc->type = le32toh(d->rc_type);
	rc->index = le32toh(d->rc_index);
	rc->nobjs = le32toh(d->rc_nobjs);
	rc->nfree = le32toh(d->rc_nfree);
	rc->first_obj = le64toh(d->rc_first_obj);
	rc->flags = le32toh(d->rc_flags);
	/* rc_nfree is a hint (the bitmap is the truth): not checked. */
	if (rc->type >= VMFS_RES_NTYPES || rc->nobjs > VMFS_RC_MAX_OBJS)
		return -VMFS_E_CORRUPT;
	return 0;
}

void fmt_rc_encode(const struct fmt_rc *rc, struct vmfs_rc *d)
{
	d->rc_hdr.bh_gen = htole64(rc->gen);
	d->rc_type = htole32(rc->type);
	d->rc_index = htole32(rc->index);
	d->rc_nobjs = htole32(rc->nobjs);
	d->rc_nfree = htole32(rc->nfree);
	d->rc_first_obj = htole64(rc->first_obj);
	d->rc_flags = htole32(rc->flags);
}
