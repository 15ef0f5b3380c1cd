/*
 * mkfs: lay a new volume on a LUN.
 *
 * Order: first destroy any old header (both copies) so an interrupted
 * mkfs never leaves something that looks like a volume; then the
 * heartbeat region, the journal regions, every resource-cluster header,
 * the root and lost+found inodes; flush; then the backup header, flush,
 * and the primary header last.
 *
 * What mkfs writes does not grow with the inode or pointer-block count:
 * their clusters are left uninitialised (VMFS_RC_UNINIT) and zeroed at
 * first use (vmfsd/alloc.c), except inode cluster 0, which holds the root
 * and lost+found and which vol_res_cluster_format zeroes.  The rest is the headers (one per
 * cluster) and one 4 KiB block per journal and heartbeat slot.
 */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include "vol_int.h"
#include "vmfs/journal.h"
#include "vmfs/lockmgr.h"

void vol_mkfs_opts_init(struct vol_mkfs_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->file_block_size = 1024 * 1024;
	o->small_block_size = 64 * 1024;
	o->max_hosts = 64;
	o->journal_size = 16ull * 1024 * 1024;
	o->max_grow_size = VOL_GROW_DEFAULT;
}

static int mkfs_dir_chunk(struct lun *lun, uint64_t addr, uint64_t dir_ino,
			  const char *name, uint64_t ino)
{
	uint8_t *blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	struct vmfs_dirblk *db = (struct vmfs_dirblk *)blk;
	int ret;

	if (!blk)
		return -ENOMEM;
	memset(blk, 0, VMFS_MD_BLOCK_SIZE);
	fmt_dirblk_encode(&(struct fmt_dirblk){ .gen = 1, .dir_ino = dir_ino,
						.chunk = 0, .count = 1 }, db);
	fmt_dirent_encode(&db->db_ents[0], ino, name, strlen(name), DT_DIR);
	lun_md_seal(&db->db_hdr, VMFS_MAGIC_DIRBLK, addr, VMFS_MD_BLOCK_SIZE);
	ret = lun_write(lun, blk, VMFS_MD_BLOCK_SIZE, addr);
	lun_buf_free(blk);
	return ret;
}

/*
 * Write a fresh directory inode at ino.  With a child, the directory gets
 * its first chunk (in small block 0) holding the one entry for it: the
 * root's "lost+found".
 */
static int mkfs_dir_inode(struct lun *lun, const struct vol_geom *g,
			  uint64_t ino, uint64_t parent, uint32_t perm,
			  int64_t now, const char *child, uint64_t child_ino)
{
	uint64_t addr = g->res[VMFS_RES_INODE].obj_offset +
			ino * VMFS_MD_BLOCK_SIZE;
	uint8_t *blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	struct vmfs_inode *di = (struct vmfs_inode *)(blk + VMFS_OBJ_OFFSET);
	struct fmt_inode fi = {
		.gen = 1, .ino = ino, .incarnation = 1,
		.mode = S_IFDIR | perm, .nlink = 2, .parent = parent,
		.atime_ns = now, .mtime_ns = now, .ctime_ns = now,
		.btime_ns = now, .map_type = VMFS_MAP_SMALL,
	};
	int ret;

	if (!blk)
		return -ENOMEM;
	memset(blk, 0, VMFS_MD_BLOCK_SIZE);
	lock_record_init_free(blk, addr, 1);
	if (child) {
		uint64_t caddr = g->res[VMFS_RES_SMALL].obj_offset;

		fi.nlink++;
		fi.size = VMFS_MD_BLOCK_SIZE;
		fi.alloc_bytes = g->small_block_size;
		fi.nentries = 1;
		fmt_ptr_store(&di->di_map[0], caddr >> VMFS_MD_BLOCK_SHIFT);
		ret = mkfs_dir_chunk(lun, caddr, ino, child, child_ino);
		if (ret)
			goto out;
	}
	fmt_inode_encode(&fi, di);
	lun_md_seal(&di->di_hdr, VMFS_MAGIC_INODE, addr,
		    VMFS_MD_BLOCK_SIZE - VMFS_OBJ_OFFSET);
	ret = lun_write(lun, blk, VMFS_MD_BLOCK_SIZE, addr);
out:
	lun_buf_free(blk);
	return ret;
}

int vol_mkfs(struct lun *lun, const struct vol_mkfs_opts *o,
	     uint64_t *need_bytes_out)
{
	struct vol_geom g;
	uint8_t *zero;
	int64_t now = vol_now_ns();
	/* ino 0 is never used; root and lost+found exist from the start. */
	const uint64_t used_inodes[] = { 0, VMFS_ROOT_INO, VMFS_LOSTFOUND_INO };
	const uint64_t used_small[] = { 0 };  /* the root's first chunk */
	int ret;

	ret = vol_layout(lun_size(lun), lun_sector_size(lun), o, &g,
			 need_bytes_out);
	if (ret)
		return ret;
	if (o->label) {
		if (strlen(o->label) > VMFS_LABEL_SIZE)
			return -ENAMETOOLONG;
		memcpy(g.label, o->label, strlen(o->label) + 1);
	}
	if (o->uuid)
		memcpy(g.uuid, o->uuid, VMFS_UUID_SIZE);
	else if (getrandom(g.uuid, VMFS_UUID_SIZE, 0) != VMFS_UUID_SIZE)
		return -EIO;
	g.uuid[6] = (g.uuid[6] & 0x0f) | 0x40; /* RFC 4122 version 4 */
	g.uuid[8] = (g.uuid[8] & 0x3f) | 0x80;
	g.ctime_ns = now;

	zero = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	if (!zero)
		return -ENOMEM;
	memset(zero, 0, VMFS_MD_BLOCK_SIZE);
	ret = lun_write(lun, zero, VMFS_MD_BLOCK_SIZE, 0);
	if (!ret)
		ret = lun_write(lun, zero, VMFS_MD_BLOCK_SIZE, g.backup_offset);
	lun_buf_free(zero);
	if (!ret)
		ret = lun_flush(lun);
	if (!ret)
		ret = hb_region_format(lun, g.hb_offset, g.max_hosts);
	if (!ret)
		ret = jnl_regions_format(lun, g.journal_offset,
					 g.journal_size_bytes, g.max_hosts);
	for (int t = 0; t < VMFS_RES_NTYPES && !ret; t++)
		ret = vol_res_cluster_format(lun, &g, t, 0,
					 t == VMFS_RES_INODE ? used_inodes :
					 t == VMFS_RES_SMALL ? used_small : NULL,
					 t == VMFS_RES_INODE ? 3 :
					 t == VMFS_RES_SMALL ? 1 : 0);
	if (!ret)
		ret = mkfs_dir_inode(lun, &g, VMFS_ROOT_INO, VMFS_ROOT_INO, 0755,
				     now, "lost+found", VMFS_LOSTFOUND_INO);
	if (!ret)
		ret = mkfs_dir_inode(lun, &g, VMFS_LOSTFOUND_INO, VMFS_ROOT_INO,
				     0700, now, NULL, 0);
	if (!ret)
		ret = lun_flush(lun);
	if (!ret)
		ret = vol_header_write(lun, &g, g.backup_offset, NULL);
	if (!ret)
		ret = lun_flush(lun);
	if (!ret)
		ret = vol_header_write(lun, &g, 0, NULL);
	if (!ret)
		ret = lun_flush(lun);
	return ret;
}

int vol_usage_read(struct lun *lun, const struct vol_geom *g,
		   struct vol_usage *u)
{
	struct vol v;
	int ret;

	memset(&v, 0, sizeof(v));
	v.lun = lun;
	v.flags = VOL_RDONLY;
	v.g = *g;
	pthread_mutex_init(&v.alloc_lock, NULL);
	ret = vol_res_load(&v);
	if (!ret) {
		vol_usage_get(&v, u);
		vol_res_unload(&v);
	}
	pthread_mutex_destroy(&v.alloc_lock);
	return ret;
}
