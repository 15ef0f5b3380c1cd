/*
 * libFuzzer harness: the volume header and the geometry check
 * (vmfsd/geom.c: vol_geom_from_disk, vol_geom_read and the check behind
 * it, then vol_usage_read on what the check accepted).
 *
 * Input: [u8 flags][4 KiB primary header][4 KiB backup header]
 *   flags & 3     the LUN: 8 KiB, 4 MiB, 32 MiB (a real volume, made by
 *                 vol_mkfs at start, whose two header blocks the input
 *                 replaces), or 1 TiB (sparse, empty)
 *   flags & 0x04  refresh the primary's crc, keeping every fuzzed field,
 *                 so the geometry check sees the fuzzed layout
 *   flags & 0x08  the same for the backup
 *   flags & 0x10  the backup is a copy of the primary (before 0x08)
 *   flags & 0x20  after a successful read, vol_usage_read the bitmaps
 *
 * Checks, beyond no crash, leak or undefined behaviour:
 *   - vol_geom_from_disk leaves a NUL-terminated label;
 *   - vol_geom_read returns 0 or a negative code vmfs_strerror names;
 *   - a geometry it accepts is possible, the promise of vol_geom_check:
 *     every region inside the volume, in order, none overlapping, counts
 *     that fit their clusters, root and lost+found inside the inode area.
 *     The harness checks that in 128-bit arithmetic, so a check that an
 *     overflow fooled shows up here.
 */
#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmfs/format.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"
#include "fuzz.h"

#define BLK VMFS_MD_BLOCK_SIZE
#define MIB (1024ull * 1024)
#define VOL_LUN 2   /* index of the LUN that holds a real volume */
/* vol_usage_read only for layouts this small: it reads every header. */
#define USAGE_MAX_CLUSTERS 65536u

typedef unsigned __int128 u128;

static const uint64_t lun_sizes[4] = { 2 * BLK, 4 * MIB, 32 * MIB,
				       1ull << 40 };
static struct lun *luns[4];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void crc_refresh(uint8_t *blk)
{
	const size_t off = offsetof(struct vmfs_blk_hdr, bh_crc);
	le32 crc = 0;

	memcpy(blk + off, &crc, sizeof(crc));
	crc = htole32(lun_crc32c(0, blk, BLK));
	memcpy(blk + off, &crc, sizeof(crc));
}

/* Whether [off, off + len) fits before limit, without overflow. */
static bool fits(u128 off, u128 len, u128 limit)
{
	return off + len <= limit;
}

/*
 * NULL if g is a possible layout on a LUN of lun_bytes, else why not
 * (in why[], with the numbers).
 */
static const char *geom_impossible(const struct vol_geom *g,
				   uint64_t lun_bytes, char *why, size_t len)
{
	u128 prev_end, jend;

	if (g->size_bytes > lun_bytes) {
		snprintf(why, len, "volume of %llu bytes on a LUN of %llu",
			 (unsigned long long)g->size_bytes,
			 (unsigned long long)lun_bytes);
		return why;
	}
	if ((u128)g->backup_offset + BLK != g->size_bytes) {
		snprintf(why, len, "backup header at %llu, not in the last 4 KiB of %llu bytes",
			 (unsigned long long)g->backup_offset,
			 (unsigned long long)g->size_bytes);
		return why;
	}
	if (g->max_hosts == 0 || g->hb_offset < BLK ||
	    !fits(g->hb_offset, (u128)(g->max_hosts + 1ull) * BLK,
		  g->journal_offset)) {
		snprintf(why, len, "heartbeat region at %llu for %u hosts does not fit before the journals at %llu",
			 (unsigned long long)g->hb_offset, g->max_hosts,
			 (unsigned long long)g->journal_offset);
		return why;
	}
	jend = (u128)g->journal_offset +
	       (u128)g->max_hosts * g->journal_size_bytes;
	prev_end = jend;
	for (int t = 0; t < VMFS_RES_NTYPES; t++) {
		const struct vol_res_geom *r = &g->res[t];
		u128 end = (u128)r->obj_offset + (u128)r->count * r->obj_size;

		if (r->per_cluster == 0 || r->per_cluster > VMFS_RC_MAX_OBJS ||
		    r->count == 0 ||
		    r->nclusters != (r->count + r->per_cluster - 1) / r->per_cluster)
			snprintf(why, len, "%s: %llu objects do not fit %u clusters of %u",
				 vol_res_name(t), (unsigned long long)r->count,
				 r->nclusters, r->per_cluster);
		else if (r->hdr_offset < prev_end)
			snprintf(why, len, "%s: cluster headers at %llu overlap what ends at %s%llu (journals: %u x %llu bytes from %llu)",
				 vol_res_name(t), (unsigned long long)r->hdr_offset,
				 prev_end >> 64 ? "2^64 + " : "",
				 (unsigned long long)prev_end,
				 g->max_hosts,
				 (unsigned long long)g->journal_size_bytes,
				 (unsigned long long)g->journal_offset);
		else if (!fits(r->hdr_offset, (u128)r->nclusters * BLK,
			       r->obj_offset))
			snprintf(why, len, "%s: %u cluster headers at %llu run into the objects at %llu",
				 vol_res_name(t), r->nclusters,
				 (unsigned long long)r->hdr_offset,
				 (unsigned long long)r->obj_offset);
		else if (end > g->backup_offset)
			snprintf(why, len, "%s: %llu objects of %u bytes at %llu end at %s%llu, past the backup header at %llu",
				 vol_res_name(t), (unsigned long long)r->count,
				 r->obj_size, (unsigned long long)r->obj_offset,
				 end >> 64 ? "2^64 + " : "",
				 (unsigned long long)end,
				 (unsigned long long)g->backup_offset);
		else {
			prev_end = end;
			continue;
		}
		return why;
	}
	if (g->root_ino >= g->res[VMFS_RES_INODE].count ||
	    g->lostfound_ino >= g->res[VMFS_RES_INODE].count) {
		snprintf(why, len, "root %llu or lost+found %llu outside %llu inodes",
			 (unsigned long long)g->root_ino,
			 (unsigned long long)g->lostfound_ino,
			 (unsigned long long)g->res[VMFS_RES_INODE].count);
		return why;
	}
	return NULL;
}

static void write_seed(uint8_t flags, const uint8_t *prim,
		       const uint8_t *backup, const char *name)
{
	struct fuzz_buf b = { 0 };

	fuzz_buf_u8(&b, flags);
	fuzz_buf_put(&b, prim, BLK);
	fuzz_buf_put(&b, backup, BLK);
	fuzz_seed_write(name, b.p, b.n);
	free(b.p);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct vol_mkfs_opts o;
	static const uint8_t uuid[VMFS_UUID_SIZE] = { 0x46, 0x55, 0x5a, 0x5a };
	uint64_t need = 0;
	int ret;

	(void)argc;
	(void)argv;
	fuzz_log_init("fuzz_geom");
	for (int i = 0; i < 4; i++) {
		char stem[16];

		snprintf(stem, sizeof(stem), "geom%d", i);
		luns[i] = fuzz_lun_scratch(stem, lun_sizes[i]);
	}
	vol_mkfs_opts_init(&o);
	o.max_hosts = 1;
	o.journal_size = MIB;
	o.label = "fuzz";
	o.uuid = uuid;
	ret = vol_mkfs(luns[VOL_LUN], &o, &need);
	if (ret)
		FUZZ_DIE("vol_mkfs on %llu bytes: %s (needs %llu)",
			 (unsigned long long)lun_sizes[VOL_LUN],
			 vmfs_strerror(ret), (unsigned long long)need);
	if (fuzz_seed_dir()) {
		uint8_t *p = lun_buf_alloc(BLK), *b = lun_buf_alloc(BLK);
		struct vol_geom g;

		if (!p || !b)
			FUZZ_DIE("out of memory");
		ret = vol_geom_read(luns[VOL_LUN], &g, NULL, NULL);
		if (!ret)
			ret = lun_read(luns[VOL_LUN], p, BLK, 0);
		if (!ret)
			ret = lun_read(luns[VOL_LUN], b, BLK, g.backup_offset);
		if (ret)
			FUZZ_DIE("reading the fresh volume: %s",
				 vmfs_strerror(ret));
		write_seed(VOL_LUN | 0x20, p, b, "mkfs-32m");
		write_seed(VOL_LUN | 0x04 | 0x08 | 0x20, p, b,
			   "mkfs-32m-recrc");
		write_seed(VOL_LUN | 0x04 | 0x10 | 0x20, p, b,
			   "mkfs-32m-backup-is-primary");
		write_seed(3 | 0x04 | 0x08 | 0x20, p, b, "mkfs-32m-on-1t");
		lun_buf_free(p);
		lun_buf_free(b);
		exit(0);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	uint8_t flags = take_u8(&in);
	struct lun *lun = luns[flags & 3];
	uint64_t lun_bytes = lun_size(lun);
	uint64_t backup_off = lun_bytes - BLK;
	uint8_t *prim = lun_buf_alloc(BLK), *backup = lun_buf_alloc(BLK);
	struct vol_geom g;
	uint32_t bad_magic = 0;
	char why[512];
	int which = -1, ret;

	if (!prim || !backup)
		FUZZ_DIE("out of memory");
	take_bytes(&in, prim, BLK);
	take_bytes(&in, backup, BLK);
	if (flags & 0x04)
		crc_refresh(prim);
	if (flags & 0x10)
		memcpy(backup, prim, BLK);
	if (flags & 0x08)
		crc_refresh(backup);

	/* The conversion alone, straight from the fuzzer's bytes. */
	vol_geom_from_disk((const struct vmfs_volume *)prim, &g);
	if (strnlen(g.label, sizeof(g.label)) > VMFS_LABEL_SIZE)
		FUZZ_DIE("vol_geom_from_disk left the label unterminated");

	fuzz_lun_put(lun, prim, BLK, 0);
	fuzz_lun_put(lun, backup, BLK, backup_off);
	memset(&g, 0, sizeof(g));
	ret = vol_geom_read(lun, &g, &which, &bad_magic);
	if (ret > 0 || (ret < 0 && !vmfs_strerror(ret)))
		FUZZ_DIE("vol_geom_read returned %d", ret);
	if (ret == 0) {
		uint64_t ncl = 0;

		if (which != 0 && which != 1)
			FUZZ_DIE("vol_geom_read: which = %d", which);
		if (geom_impossible(&g, lun_bytes, why, sizeof(why)))
			FUZZ_DIE("vol_geom_read accepted an impossible geometry (%s copy, LUN %llu bytes): %s",
				 which ? "backup" : "primary",
				 (unsigned long long)lun_bytes, why);
		for (int t = 0; t < VMFS_RES_NTYPES; t++)
			ncl += g.res[t].nclusters;
		if ((flags & 0x20) && ncl <= USAGE_MAX_CLUSTERS) {
			struct vol_usage u;

			ret = vol_usage_read(lun, &g, &u);
			for (int t = 0; !ret && t < VMFS_RES_NTYPES; t++)
				if (u.used[t] > u.total[t])
					FUZZ_DIE("vol_usage_read: %llu of %llu %s in use",
						 (unsigned long long)u.used[t],
						 (unsigned long long)u.total[t],
						 vol_res_name(t));
		}
	}
	lun_buf_free(prim);
	lun_buf_free(backup);
	return 0;
}
