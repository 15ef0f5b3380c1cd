/*
 * Volume geometry: the volume header at the disk boundary, the layout mkfs
 * computes, and the sanity rules every reader applies before trusting the
 * header (an impossible geometry is refused rather than followed).
 *
 * Layout, in address order (docs/SPEC.md):
 *   0        volume header (4 KiB)
 *   64 KiB   heartbeat region: header + one block per slot
 *   1 MiB-aligned: one journal region per slot
 *   resource areas: inodes, pointer blocks, small blocks, file blocks,
 *            each a table of cluster headers then the object array
 *            aligned to the object size
 *   last 4 KiB: backup volume header
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "vol_int.h"
#include "vmfs/lockmgr.h"

#define HB_OFFSET (64u * 1024)
#define MIB (1024ull * 1024)

/* Objects per resource cluster, by type. */
static const uint32_t per_cluster[VMFS_RES_NTYPES] = {
	[VMFS_RES_INODE] = 512,
	[VMFS_RES_PTRBLK] = 1024,
	[VMFS_RES_SMALL] = 1024,
	[VMFS_RES_FILE] = 1024,
};

static const char *const res_names[VMFS_RES_NTYPES] = {
	[VMFS_RES_INODE] = "inodes",
	[VMFS_RES_PTRBLK] = "pointer blocks",
	[VMFS_RES_SMALL] = "small blocks",
	[VMFS_RES_FILE] = "file blocks",
};

const char *vol_res_name(enum vmfs_res_type t)
{
	return (unsigned)t < VMFS_RES_NTYPES ? res_names[t] : "?";
}

void vol_uuid_format(const uint8_t u[VMFS_UUID_SIZE], char out[37])
{
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
		 u[10], u[11], u[12], u[13], u[14], u[15]);
}

void vol_geom_from_disk(const struct vmfs_volume *d, struct vol_geom *g)
{
	memset(g, 0, sizeof(*g));
	memcpy(g->uuid, d->vh_uuid, VMFS_UUID_SIZE);
	memcpy(g->label, d->vh_label, VMFS_LABEL_SIZE);
	g->label[VMFS_LABEL_SIZE] = 0;
	g->major = le16toh(d->vh_hdr.bh_major);
	g->minor = le16toh(d->vh_hdr.bh_minor);
	g->generation = le64toh(d->vh_hdr.bh_gen);
	g->size_bytes = le64toh(d->vh_size_bytes);
	g->ctime_ns = (int64_t)le64toh(d->vh_ctime_ns);
	g->sector_size = le32toh(d->vh_sector_size);
	g->md_block_size = le32toh(d->vh_md_block_size);
	g->file_block_size = le32toh(d->vh_file_block_size);
	g->small_block_size = le32toh(d->vh_small_block_size);
	g->max_hosts = le32toh(d->vh_max_hosts);
	g->flags = le32toh(d->vh_flags);
	g->journal_size_bytes = le64toh(d->vh_journal_size_bytes);
	g->hb_offset = le64toh(d->vh_hb_offset);
	g->journal_offset = le64toh(d->vh_journal_offset);
	g->root_ino = le64toh(d->vh_root_ino);
	g->lostfound_ino = le64toh(d->vh_lostfound_ino);
	g->backup_offset = le64toh(d->vh_backup_offset);
	for (int t = 0; t < VMFS_RES_NTYPES; t++) {
		const struct vmfs_res_area *ra = &d->vh_res[t];

		g->res[t].hdr_offset = le64toh(ra->ra_hdr_offset);
		g->res[t].obj_offset = le64toh(ra->ra_obj_offset);
		g->res[t].count = le64toh(ra->ra_count);
		g->res[t].obj_size = le32toh(ra->ra_obj_size);
		g->res[t].per_cluster = le32toh(ra->ra_per_cluster);
		g->res[t].nclusters = le32toh(ra->ra_nclusters);
	}
}

void vol_geom_to_disk(const struct vol_geom *g, struct vmfs_volume *d)
{
	memset(d, 0, sizeof(*d));
	memcpy(d->vh_uuid, g->uuid, VMFS_UUID_SIZE);
	memcpy(d->vh_label, g->label, strnlen(g->label, VMFS_LABEL_SIZE));
	d->vh_hdr.bh_gen = htole64(g->generation);
	d->vh_size_bytes = htole64(g->size_bytes);
	d->vh_ctime_ns = htole64((uint64_t)g->ctime_ns);
	d->vh_sector_size = htole32(g->sector_size);
	d->vh_md_block_size = htole32(g->md_block_size);
	d->vh_file_block_size = htole32(g->file_block_size);
	d->vh_small_block_size = htole32(g->small_block_size);
	d->vh_max_hosts = htole32(g->max_hosts);
	d->vh_flags = htole32(g->flags);
	d->vh_journal_size_bytes = htole64(g->journal_size_bytes);
	d->vh_hb_offset = htole64(g->hb_offset);
	d->vh_journal_offset = htole64(g->journal_offset);
	d->vh_root_ino = htole64(g->root_ino);
	d->vh_lostfound_ino = htole64(g->lostfound_ino);
	d->vh_backup_offset = htole64(g->backup_offset);
	for (int t = 0; t < VMFS_RES_NTYPES; t++) {
		struct vmfs_res_area *ra = &d->vh_res[t];

		ra->ra_hdr_offset = htole64(g->res[t].hdr_offset);
		ra->ra_obj_offset = htole64(g->res[t].obj_offset);
		ra->ra_count = htole64(g->res[t].count);
		ra->ra_obj_size = htole32(g->res[t].obj_size);
		ra->ra_per_cluster = htole32(g->res[t].per_cluster);
		ra->ra_nclusters = htole32(g->res[t].nclusters);
	}
}

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

static bool pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

static uint64_t clamp64(uint64_t x, uint64_t lo, uint64_t hi)
{
	return x < lo ? lo : x > hi ? hi : x;
}

/*
 * Objects per cluster for an area of count objects: the type's default,
 * doubled while the area would need more than MAX_CLUSTERS headers (up to
 * what one bitmap holds; inodes and pointer blocks stop at INIT_MAX_OBJS,
 * as a cluster's first use zeroes all its objects).  Every header is
 * written by mkfs and loaded by every mount and fsck, so their number,
 * not the LUN size, is what those cost: 64 TiB with the defaults has
 * about 19k headers (74 MiB) instead of 119k.  4096 clusters per area
 * still leave many more clusters than hosts to allocate in parallel.
 */
#define MAX_CLUSTERS 4096u
#define INIT_MAX_OBJS 2048u

static uint32_t cluster_objs(enum vmfs_res_type t, uint64_t count)
{
	uint32_t n = per_cluster[t];
	uint32_t max = t == VMFS_RES_INODE || t == VMFS_RES_PTRBLK ?
		       INIT_MAX_OBJS : VMFS_RC_MAX_OBJS;

	while (n < max && count > (uint64_t)n * MAX_CLUSTERS)
		n *= 2;
	return n;
}

/*
 * Place one area at *pos; returns its end.  The cluster-header table gets
 * a slot for every cluster of max_count objects (at least count): the
 * slots past nclusters are never read, a grow writes them (vol/grow.c).
 */
static uint64_t place_area(struct vol_res_geom *r, uint64_t pos,
			   enum vmfs_res_type t, uint32_t obj_size,
			   uint64_t count, uint64_t max_count)
{
	uint64_t slots;

	r->obj_size = obj_size;
	r->per_cluster = cluster_objs(t, count);
	r->count = count;
	r->nclusters = (uint32_t)((count + r->per_cluster - 1) / r->per_cluster);
	slots = (max_count + r->per_cluster - 1) / r->per_cluster;
	if (slots > UINT32_MAX)
		slots = UINT32_MAX;
	if (slots < r->nclusters)
		slots = r->nclusters;
	r->hdr_offset = align_up(pos, VMFS_MD_BLOCK_SIZE);
	r->obj_offset = align_up(r->hdr_offset + slots * VMFS_MD_BLOCK_SIZE,
				 obj_size);
	return r->obj_offset + count * obj_size;
}

/*
 * The volume size the file-block table leaves room for (vol_mkfs_opts
 * .max_grow_size): VOL_GROW_FACTOR times the LUN by default, since
 * datastores outgrow their first LUN many times over and each slot costs
 * only 4 KiB per cluster of file blocks (docs/SPEC.md §8.1).
 */
static uint64_t grow_target(uint64_t lun_bytes, uint64_t max_grow_size)
{
	if (max_grow_size != VOL_GROW_DEFAULT)
		return max_grow_size < VOL_MAX_SIZE_BYTES ? max_grow_size :
		       VOL_MAX_SIZE_BYTES;
	return lun_bytes < VOL_MAX_SIZE_BYTES / VOL_GROW_FACTOR ?
	       lun_bytes * VOL_GROW_FACTOR : VOL_MAX_SIZE_BYTES;
}

/* Minimum objects of each kind for a usable volume. */
#define MIN_INODES 1024u
#define MIN_SMALL 64u
#define MIN_FILE 16u

/*
 * Default inode count: a datastore holds VM directories of a dozen or so
 * files each, most of them multi-GiB disks, so files are few and large;
 * VMFS itself stays near 130k files per volume whatever its size.  One
 * inode per MiB of LUN (0.4% of it reserved for 4 KiB inodes) is ten
 * times what a datastore of 10 GiB disks needs; LUNs up to 8 GiB keep at
 * least 8192 (one per 128 KiB below 1 GiB) for small test and ISO
 * volumes; the count stops at 4M (30 times VMFS's limit, 16 GiB of
 * inode area).  Inode clusters are initialised at first use, so the count
 * costs mkfs and mount only their headers.
 */
static uint64_t default_inodes(uint64_t lun_bytes)
{
	uint64_t small = lun_bytes / (128 * 1024);
	uint64_t n = lun_bytes / MIB;

	if (n < 8192)
		n = small < 8192 ? small : 8192;
	return clamp64(n, MIN_INODES, 4ull << 20);
}

int vol_layout(uint64_t lun_bytes, uint32_t sector_size,
	       const struct vol_mkfs_opts *o, struct vol_geom *g,
	       uint64_t *need_bytes)
{
	uint64_t pos, end, fb_bytes, ninodes, nsmall, nptr, nfile, backup;
	uint64_t target, max_file, slots_min;
	uint32_t fbs = o->file_block_size, sbs = o->small_block_size;

	if (!pow2(fbs) || fbs < 64 * 1024 || fbs > 256 * MIB ||
	    !pow2(sbs) || sbs < VMFS_MD_BLOCK_SIZE || sbs > fbs ||
	    o->max_hosts < 1 || o->max_hosts > 1024 ||
	    o->journal_size < MIB || o->journal_size % VMFS_MD_BLOCK_SIZE ||
	    sector_size < 512 || sector_size > VMFS_MD_BLOCK_SIZE)
		return -EINVAL;

	memset(g, 0, sizeof(*g));
	g->major = VMFS_FORMAT_MAJOR;
	g->minor = VMFS_FORMAT_MINOR;
	g->generation = 1;
	g->sector_size = sector_size;
	g->md_block_size = VMFS_MD_BLOCK_SIZE;
	g->file_block_size = fbs;
	g->small_block_size = sbs;
	g->max_hosts = o->max_hosts;
	g->journal_size_bytes = o->journal_size;
	g->hb_offset = HB_OFFSET;
	g->journal_offset = align_up(HB_OFFSET + hb_region_bytes(o->max_hosts),
				     MIB);
	g->root_ino = VMFS_ROOT_INO;
	g->lostfound_ino = VMFS_LOSTFOUND_INO;
	pos = g->journal_offset + (uint64_t)o->max_hosts * o->journal_size;

	/* Size the metadata areas from the LUN; they are small beside it. */
	ninodes = o->inode_count ? o->inode_count : default_inodes(lun_bytes);
	nsmall = clamp64(lun_bytes / 32 / sbs, MIN_SMALL, 16ull << 20);
	nfile = lun_bytes / fbs;
	target = grow_target(lun_bytes, o->max_grow_size);
	max_file = target > lun_bytes ? target / fbs : 0;
	/*
	 * Room for a leaf pointer block per 16 data blocks: scattered
	 * writes to thin disks need many more than a dense map would.  The
	 * area does not grow, so it also gets one per 256 file blocks of
	 * the grow target: twice the one per 506 a fully-mapped file needs.
	 * With the default 16x target the first rule already gives that.
	 */
	nptr = (nfile + nsmall) / 16;
	if (nptr < max_file / 256)
		nptr = max_file / 256;
	nptr = clamp64(nptr + 1024, 1024, 1ull << 30);

	pos = place_area(&g->res[VMFS_RES_INODE], pos, VMFS_RES_INODE,
			 VMFS_MD_BLOCK_SIZE, ninodes, 0);
	pos = place_area(&g->res[VMFS_RES_PTRBLK], pos, VMFS_RES_PTRBLK,
			 VMFS_MD_BLOCK_SIZE, nptr, 0);
	pos = place_area(&g->res[VMFS_RES_SMALL], pos, VMFS_RES_SMALL, sbs,
			 nsmall, 0);

	/*
	 * File blocks take the rest.  Their cluster headers come first, so
	 * solve for the count: each block costs fbs plus 1/per_cluster of a
	 * header block.
	 */
	backup = (lun_bytes & ~(uint64_t)(VMFS_MD_BLOCK_SIZE - 1)) -
		 VMFS_MD_BLOCK_SIZE;
	fb_bytes = backup > pos ? backup - pos : 0;
	/* Start below the table's slots for the grow target, which no
	 * cluster size makes fewer than one per VMFS_RC_MAX_OBJS blocks:
	 * counting down one block at a time from the top would take long. */
	slots_min = (max_file + VMFS_RC_MAX_OBJS - 1) / VMFS_RC_MAX_OBJS;
	if (slots_min > UINT32_MAX)
		slots_min = UINT32_MAX;
	slots_min *= VMFS_MD_BLOCK_SIZE;
	fb_bytes = fb_bytes > slots_min ? fb_bytes - slots_min : 0;
	nfile = fb_bytes / fbs;
	for (;;) {
		struct vol_res_geom r;

		end = place_area(&r, pos, VMFS_RES_FILE, fbs, nfile, max_file);
		if (end <= backup || nfile == 0)
			break;
		nfile--;
	}
	if (nfile < MIN_FILE || lun_bytes < pos) {
		if (need_bytes) {
			struct vol_res_geom r;

			*need_bytes = place_area(&r, pos, VMFS_RES_FILE, fbs,
						 MIN_FILE, max_file) +
				      VMFS_MD_BLOCK_SIZE;
		}
		return -VMFS_E_TOO_SMALL;
	}
	place_area(&g->res[VMFS_RES_FILE], pos, VMFS_RES_FILE, fbs, nfile,
		   max_file);
	g->backup_offset = backup;
	g->size_bytes = backup + VMFS_MD_BLOCK_SIZE;
	return 0;
}

/*
 * Refuse a header that describes something impossible: areas that
 * overlap, are misaligned, run past the volume, or have counts that do
 * not fit their clusters.  Readers (the engine, fsck) never recompute the
 * layout, they check it.
 */
int vol_geom_check(const struct vol_geom *g, uint64_t lun_bytes)
{
	uint64_t prev_end;

	if (g->md_block_size != VMFS_MD_BLOCK_SIZE ||
	    !pow2(g->file_block_size) || !pow2(g->small_block_size) ||
	    g->small_block_size < VMFS_MD_BLOCK_SIZE ||
	    g->small_block_size > g->file_block_size ||
	    g->max_hosts < 1 || g->max_hosts > 1024 ||
	    g->sector_size < 512 || g->sector_size > VMFS_MD_BLOCK_SIZE ||
	    g->size_bytes > lun_bytes || g->backup_offset < VMFS_MD_BLOCK_SIZE ||
	    g->backup_offset + VMFS_MD_BLOCK_SIZE != g->size_bytes ||
	    g->backup_offset % VMFS_MD_BLOCK_SIZE ||
	    g->hb_offset < VMFS_MD_BLOCK_SIZE || g->hb_offset % VMFS_MD_BLOCK_SIZE ||
	    g->journal_offset < g->hb_offset + hb_region_bytes(g->max_hosts) ||
	    g->journal_offset % VMFS_MD_BLOCK_SIZE ||
	    g->journal_size_bytes < VMFS_MD_BLOCK_SIZE ||
	    g->journal_size_bytes % VMFS_MD_BLOCK_SIZE ||
	    g->journal_size_bytes > lun_bytes ||
	    g->root_ino == 0 || g->lostfound_ino == 0 ||
	    g->root_ino == g->lostfound_ino)
		return -VMFS_E_GEOMETRY;
	/* Every sum below is guarded against wrapping past 2^64. */
	if (g->journal_offset > g->backup_offset ||
	    g->journal_size_bytes > (g->backup_offset - g->journal_offset) /
				    g->max_hosts)
		return -VMFS_E_GEOMETRY;
	prev_end = g->journal_offset + (uint64_t)g->max_hosts *
		   g->journal_size_bytes;
	for (int t = 0; t < VMFS_RES_NTYPES; t++) {
		const struct vol_res_geom *r = &g->res[t];
		uint64_t want = t == VMFS_RES_FILE ? g->file_block_size :
				t == VMFS_RES_SMALL ? g->small_block_size :
				VMFS_MD_BLOCK_SIZE;

		if (r->obj_size != want || r->per_cluster == 0 ||
		    r->per_cluster > VMFS_RC_MAX_OBJS || r->count == 0 ||
		    r->nclusters != (r->count + r->per_cluster - 1) / r->per_cluster ||
		    r->hdr_offset < prev_end || r->hdr_offset % VMFS_MD_BLOCK_SIZE ||
		    r->hdr_offset > g->backup_offset ||
		    r->obj_offset % r->obj_size ||
		    r->obj_offset < r->hdr_offset +
				    (uint64_t)r->nclusters * VMFS_MD_BLOCK_SIZE ||
		    r->obj_offset > g->backup_offset ||
		    r->count > (g->backup_offset - r->obj_offset) / r->obj_size)
			return -VMFS_E_GEOMETRY;
		prev_end = r->obj_offset + r->count * r->obj_size;
	}
	if (prev_end > g->backup_offset ||
	    g->root_ino >= g->res[VMFS_RES_INODE].count ||
	    g->lostfound_ino >= g->res[VMFS_RES_INODE].count)
		return -VMFS_E_GEOMETRY;
	return 0;
}

/* Keep the reserved bytes of old (SPEC §14: fields of a newer minor). */
static void header_keep_reserved(struct vmfs_volume *d,
				 const struct vmfs_volume *old)
{
	memcpy(d->vh_reserved, old->vh_reserved, sizeof(d->vh_reserved));
	for (int t = 0; t < VMFS_RES_NTYPES; t++) {
		d->vh_res[t].ra_pad = old->vh_res[t].ra_pad;
		d->vh_res[t].ra_reserved = old->vh_res[t].ra_reserved;
	}
}

int vol_header_write(struct lun *lun, const struct vol_geom *g, uint64_t off,
		     const struct vmfs_volume *keep)
{
	struct vmfs_volume *d = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	int ret;

	if (!d)
		return -ENOMEM;
	vol_geom_to_disk(g, d);
	if (keep)
		header_keep_reserved(d, keep);
	/* The header carries the volume's format version, which only mkfs
	 * and an explicit upgrade set (a grow keeps it). */
	lun_md_seal_version(&d->vh_hdr, VMFS_MAGIC_VOLUME, off,
			    VMFS_MD_BLOCK_SIZE, g->major, g->minor);
	ret = lun_write(lun, d, VMFS_MD_BLOCK_SIZE, off);
	lun_buf_free(d);
	return ret;
}

/* Read one header copy; *magic gets what was found there. */
static int header_read_at(struct lun *lun, uint64_t off, struct vol_geom *g,
			  uint32_t *magic)
{
	return vol_header_read_at(lun, off, lun_size(lun), g, magic);
}

int vol_header_read_at(struct lun *lun, uint64_t off, uint64_t lun_bytes,
		       struct vol_geom *g, uint32_t *magic)
{
	struct vmfs_volume *d = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	int ret;

	if (!d)
		return -ENOMEM;
	ret = lun_read(lun, d, VMFS_MD_BLOCK_SIZE, off);
	if (!ret) {
		struct fmt_hdr h;

		fmt_hdr_decode(&d->vh_hdr, &h);
		*magic = h.magic;
		ret = lun_md_verify(&d->vh_hdr, VMFS_MAGIC_VOLUME, off,
				    VMFS_MD_BLOCK_SIZE);
		if (ret)
			VLOG(LOG_WARNING,
			     "%s: volume header at offset %llu: %s (magic 0x%08x, major %u, self %llu, gen %llu)",
			     lun_name(lun), (unsigned long long)off,
			     vmfs_strerror(ret), *magic, h.major,
			     (unsigned long long)h.self,
			     (unsigned long long)h.gen);
	}
	if (!ret) {
		vol_geom_from_disk(d, g);
		ret = vol_geom_check(g, lun_bytes);
		if (ret)
			VLOG(LOG_ERR, "%s: volume header at offset %llu describes an impossible layout",
			     lun_name(lun), (unsigned long long)off);
	}
	lun_buf_free(d);
	return ret;
}

int vol_geom_read(struct lun *lun, struct vol_geom *g, int *which_out,
		  uint32_t *bad_magic_out)
{
	uint64_t size = lun_size(lun);
	uint32_t magic0 = 0, magic1 = 0;
	int ret0, ret1;

	if (size < 2 * VMFS_MD_BLOCK_SIZE) {
		if (bad_magic_out)
			*bad_magic_out = 0;
		return -VMFS_E_NOT_VOLUME;
	}
	ret0 = header_read_at(lun, 0, g, &magic0);
	if (bad_magic_out)
		*bad_magic_out = magic0;
	if (!ret0) {
		if (which_out)
			*which_out = 0;
		return 0;
	}
	if (ret0 == -VMFS_E_BAD_VERSION)
		return ret0;
	/* The backup sits in the last 4 KiB of the LUN as mkfs saw it. */
	ret1 = header_read_at(lun, (size & ~(uint64_t)(VMFS_MD_BLOCK_SIZE - 1)) -
			      VMFS_MD_BLOCK_SIZE, g, &magic1);
	if (!ret1) {
		if (which_out)
			*which_out = 1;
		return 0;
	}
	if (ret1 == -VMFS_E_BAD_VERSION)
		return ret1;
	if (magic0 != VMFS_MAGIC_VOLUME && magic1 != VMFS_MAGIC_VOLUME)
		return -VMFS_E_NOT_VOLUME;
	return ret0 == -VMFS_E_BAD_MAGIC ? ret1 : ret0;
}

uint64_t vol_jnl_offset(const struct vol_geom *g, uint32_t slot)
{
	return g->journal_offset + (uint64_t)slot * g->journal_size_bytes;
}

struct jnl_bounds vol_jnl_bounds(const struct vol_geom *g)
{
	struct jnl_bounds b = {
		.lo = vol_jnl_offset(g, g->max_hosts),
		.hi = g->backup_offset,
	};

	return b;
}
