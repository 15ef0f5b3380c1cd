/*
 * The inode's xattr area: packed records { u8 name_len; u8 pad; le16
 * value_len; name; value }, di_xattr_len bytes in all.  Records start at
 * any byte offset, so their headers are copied, never cast.
 */
#include <endian.h>
#include <string.h>

#include "vmfs/format.h"

uint16_t fmt_xattr_len(const struct vmfs_inode *d)
{
	return le16toh(d->di_xattr_len);
}

void fmt_xattr_set_len(struct vmfs_inode *d, uint16_t len)
{
	d->di_xattr_len = htole16(len);
}

void fmt_xattr_rec_decode(const uint8_t *p, size_t *name_len,
			  size_t *value_len)
{
	struct vmfs_xattr_rec r;

	memcpy(&r, p, sizeof(r));
	*name_len = r.xr_name_len;
	*value_len = le16toh(r.xr_value_len);
}

void fmt_xattr_rec_encode(uint8_t *p, size_t name_len, size_t value_len)
{
	struct vmfs_xattr_rec r = {
		.xr_name_len = (uint8_t)name_len,
		.xr_value_len = htole16((uint16_t)value_len),
	};

	memcpy(p, &r, sizeof(r));
}
