/*
 * Inode and pointer block: the fixed fields of struct vmfs_inode and the
 * header of struct vmfs_ptrblk.  The map slots themselves (di_map[],
 * pb_ptr[]) are read and written one at a time with fmt_ptr_load/store,
 * since every user walks a single path down the tree.
 */
#include <endian.h>

#include "vmfs/error.h"
#include "vmfs/format.h"

int fmt_inode_decode(const struct vmfs_inode *d, struct fmt_inode *fi)
{
	fi->gen = le64toh(d->di_hdr.bh_gen);
	fi->ino = le64toh(d->di_ino);
	fi->incarnation = le64toh(d->di_incarnation);
	fi->mode = le32toh(d->di_mode);
	fi->nlink = le32toh(d->di_nlink);
	fi->uid = le32toh(d->di_uid);
	fi->gid = le32toh(d->di_gid);
	fi->flags = le32toh(d->di_flags);
	fi->size = le64toh(d->di_size);
	fi->alloc_bytes = le64toh(d->di_alloc_bytes);
	fi->parent = le64toh(d->di_parent);
	fi->rdev = le64toh(d->di_rdev);
	fi->nentries = le64toh(d->di_nentries);
	/* Timestamps are signed (before the epoch is legal). */
	fi->atime_ns = (int64_t)le64toh(d->di_atime_ns);
	fi->mtime_ns = (int64_t)le64toh(d->di_mtime_ns);
	fi->ctime_ns = (int64_t)le64toh(d->di_ctime_ns);
	fi->btime_ns = (int64_t)le64toh(d->di_btime_ns);
	fi->map_type = le16toh(d->di_map_type);
	fi->xattr_len = le16toh(d->di_xattr_len);
	if (fi->map_type > VMFS_MAP_FILE || fi->xattr_len > VMFS_XATTR_AREA)
		return -VMFS_E_CORRUPT;
	return 0;
}

void fmt_inode_encode(const struct fmt_inode *fi, struct vmfs_inode *d)
{
	d->di_hdr.bh_gen = htole64(fi->gen);
	d->di_ino = htole64(fi->ino);
	d->di_incarnation = htole64(fi->incarnation);
	d->di_mode = htole32(fi->mode);
	d->di_nlink = htole32(fi->nlink);
	d->di_uid = htole32(fi->uid);
	d->di_gid = htole32(fi->gid);
	d->di_flags = htole32(fi->flags);
	d->di_size = htole64(fi->size);
	d->di_alloc_bytes = htole64(fi->alloc_bytes);
	d->di_parent = htole64(fi->parent);
	d->di_rdev = htole64(fi->rdev);
	d->di_nentries = htole64(fi->nentries);
	d->di_atime_ns = htole64((uint64_t)fi->atime_ns);
	d->di_mtime_ns = htole64((uint64_t)fi->mtime_ns);
	d->di_ctime_ns = htole64((uint64_t)fi->ctime_ns);
	d->di_btime_ns = htole64((uint64_t)fi->btime_ns);
	d->di_map_type = htole16(fi->map_type);
	d->di_xattr_len = htole16(fi->xattr_len);
}

int fmt_ptrblk_decode(const struct vmfs_ptrblk *d, struct fmt_ptrblk *pb)
{
	pb->gen = le64toh(d->pb_hdr.bh_gen);
	pb->owner_ino = le64toh(d->pb_owner_ino);
	pb->level = le32toh(d->pb_level);
	/* Four levels below the root slots reach VMFS_MAP_IND4's span. */
	if (pb->level < 1 || pb->level > 4)
		return -VMFS_E_CORRUPT;
	return 0;
}

void fmt_ptrblk_encode(const struct fmt_ptrblk *pb, struct vmfs_ptrblk *d)
{
	d->pb_hdr.bh_gen = htole64(pb->gen);
	d->pb_owner_ino = htole64(pb->owner_ino);
	d->pb_level = htole32(pb->level);
}
