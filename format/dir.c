/*
 * Directory chunks and entries.  An entry's name is stored without a NUL
 * in de_name[de_name_len], the rest of de_name zero; de_hash is the
 * crc32c of the name bytes (lun's crc32c, the one every checksum of the
 * format uses).
 */
#include <endian.h>
#include <string.h>

#include "vmfs/error.h"
#include "vmfs/format.h"
#include "vmfs/lun.h"

uint32_t fmt_name_hash(const char *name, size_t len)
{
	return lun_crc32c(0, name, len);
}

int fmt_dirent_decode(const struct vmfs_dirent *d, struct fmt_dirent *de)
{
	de->ino = le64toh(d->de_ino);
	de->hash = le32toh(d->de_hash);
	de->name_len = d->de_name_len;
	de->type = d->de_type;
	memcpy(de->name, d->de_name, de->name_len);
	de->name[de->name_len] = 0;
	if (!de->ino)
		return 0;
	if (!de->name_len || memchr(d->de_name, 0, de->name_len) ||
	    de->hash != fmt_name_hash(d->de_name, de->name_len))
		return -VMFS_E_CORRUPT;
	return 0;
}

void fmt_dirent_encode(struct vmfs_dirent *d, uint64_t ino, const char *name,
		       size_t len, uint8_t type)
{
	char copy[VMFS_NAME_MAX + 1];

	/* name may be d->de_name itself (fsck re-hashing an entry). */
	memcpy(copy, name, len);
	d->de_ino = htole64(ino);
	d->de_hash = htole32(fmt_name_hash(copy, len));
	d->de_name_len = (uint8_t)len;
	d->de_type = type;
	d->de_pad = 0;
	memset(d->de_name, 0, sizeof(d->de_name));
	memcpy(d->de_name, copy, len);
}

uint64_t fmt_dirent_ino(const struct vmfs_dirent *d)
{
	return le64toh(d->de_ino);
}

uint32_t fmt_dirent_hash(const struct vmfs_dirent *d)
{
	return le32toh(d->de_hash);
}

void fmt_dirent_set_ino(struct vmfs_dirent *d, uint64_t ino)
{
	d->de_ino = htole64(ino);
}

void fmt_dirent_set_hash(struct vmfs_dirent *d, uint32_t hash)
{
	d->de_hash = htole32(hash);
}

int fmt_dirblk_decode(const struct vmfs_dirblk *d, struct fmt_dirblk *db)
{
	db->gen = le64toh(d->db_hdr.bh_gen);
	db->dir_ino = le64toh(d->db_dir_ino);
	db->chunk = le32toh(d->db_chunk);
	db->count = le16toh(d->db_count);
	return db->count > VMFS_DIRENTS_PER_CHUNK ? -VMFS_E_CORRUPT : 0;
}

void fmt_dirblk_encode(const struct fmt_dirblk *db, struct vmfs_dirblk *d)
{
	d->db_hdr.bh_gen = htole64(db->gen);
	d->db_dir_ino = htole64(db->dir_ino);
	d->db_chunk = htole32(db->chunk);
	d->db_count = htole16(db->count);
}

uint16_t fmt_dirblk_count(const struct vmfs_dirblk *d)
{
	return le16toh(d->db_count);
}

void fmt_dirblk_set_count(struct vmfs_dirblk *d, uint16_t count)
{
	d->db_count = htole16(count);
}
