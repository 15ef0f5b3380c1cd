/*
 * The on-disk format is a contract: this suite pins every offset and size
 * in include/vmfs/format.h to a golden table written out by hand (in the
 * manner of e2fsprogs lib/ext2fs/tst_super_size.c), so that no edit of a
 * struct, a type or an array length can move a byte without failing here.
 *
 * The golden values below were copied from the hex comments in format.h
 * and checked against docs/SPEC.md.  Changing the format means changing
 * all three, and bumping VMFS_FORMAT_MINOR or VMFS_FORMAT_MAJOR.
 *
 * Besides the literal offsets, the rows of each struct must tile it
 * exactly (no gap, no overlap except the members of a union, last field
 * ending at sizeof), which catches a field added to format.h without a
 * row here.
 */
#include <endian.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "vmfs/format.h"
#include "vmfs/vol.h"
#include "unit.h"

/* Report a failure that names what failed, then keep going. */
static void check(int ok, const char *func, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void check(int ok, const char *func, int line, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (ok) {
		CU_assertImplementation(CU_TRUE, line, "ok", __FILE__, func,
					CU_FALSE);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	CU_assertImplementation(CU_FALSE, line, msg, __FILE__, func, CU_FALSE);
}

#define CHECK(ok, ...) check((ok), __func__, __LINE__, __VA_ARGS__)

/* ---- golden table of fields ------------------------------------------ */

struct field_row {
	const char *type;
	const char *field;
	size_t off;        /* golden */
	size_t size;       /* golden */
	size_t real_off;   /* offsetof() */
	size_t real_size;  /* sizeof() of the member */
};

#define F(t, f, o, s) \
	{ #t, #f, (o), (s), offsetof(struct t, f), sizeof(((struct t *)0)->f) }

static const struct field_row fields[] = {
	F(vmfs_blk_hdr, bh_magic,                0x000,    4),
	F(vmfs_blk_hdr, bh_major,                0x004,    2),
	F(vmfs_blk_hdr, bh_minor,                0x006,    2),
	F(vmfs_blk_hdr, bh_self,                 0x008,    8),
	F(vmfs_blk_hdr, bh_gen,                  0x010,    8),
	F(vmfs_blk_hdr, bh_crc,                  0x018,    4),
	F(vmfs_blk_hdr, bh_len,                  0x01c,    4),

	F(vmfs_lock_holder, lh_uuid,             0x000,   16),
	F(vmfs_lock_holder, lh_slot,             0x010,    4),
	F(vmfs_lock_holder, lh_pad,              0x014,    4),
	F(vmfs_lock_holder, lh_hb_gen,           0x018,    8),

	F(vmfs_lock, lk_hdr,                     0x000,   32),
	F(vmfs_lock, lk_mode,                    0x020,    4),
	F(vmfs_lock, lk_nholders,                0x024,    4),
	F(vmfs_lock, lk_owner_hb_gen,            0x028,    8),
	F(vmfs_lock, lk_owner_uuid,              0x030,   16),
	F(vmfs_lock, lk_owner_slot,              0x040,    4),
	F(vmfs_lock, lk_pad,                     0x044,    4),
	F(vmfs_lock, lk_holders,                 0x048,  416),
	F(vmfs_lock, lk_reserved,                0x1e8,   24),

	F(vmfs_res_area, ra_hdr_offset,          0x000,    8),
	F(vmfs_res_area, ra_obj_offset,          0x008,    8),
	F(vmfs_res_area, ra_count,               0x010,    8),
	F(vmfs_res_area, ra_obj_size,            0x018,    4),
	F(vmfs_res_area, ra_per_cluster,         0x01c,    4),
	F(vmfs_res_area, ra_nclusters,           0x020,    4),
	F(vmfs_res_area, ra_pad,                 0x024,    4),
	F(vmfs_res_area, ra_reserved,            0x028,    8),

	F(vmfs_volume, vh_hdr,                   0x000,   32),
	F(vmfs_volume, vh_uuid,                  0x020,   16),
	F(vmfs_volume, vh_label,                 0x030,   64),
	F(vmfs_volume, vh_size_bytes,            0x070,    8),
	F(vmfs_volume, vh_ctime_ns,              0x078,    8),
	F(vmfs_volume, vh_sector_size,           0x080,    4),
	F(vmfs_volume, vh_md_block_size,         0x084,    4),
	F(vmfs_volume, vh_file_block_size,       0x088,    4),
	F(vmfs_volume, vh_small_block_size,      0x08c,    4),
	F(vmfs_volume, vh_max_hosts,             0x090,    4),
	F(vmfs_volume, vh_flags,                 0x094,    4),
	F(vmfs_volume, vh_journal_size_bytes,    0x098,    8),
	F(vmfs_volume, vh_hb_offset,             0x0a0,    8),
	F(vmfs_volume, vh_journal_offset,        0x0a8,    8),
	F(vmfs_volume, vh_root_ino,              0x0b0,    8),
	F(vmfs_volume, vh_lostfound_ino,         0x0b8,    8),
	F(vmfs_volume, vh_res,                   0x0c0,  192),
	F(vmfs_volume, vh_backup_offset,         0x180,    8),
	F(vmfs_volume, vh_reserved,              0x188, 3704),

	F(vmfs_hb_region, hr_hdr,                0x000,   32),
	F(vmfs_hb_region, hr_nslots,             0x020,    4),
	F(vmfs_hb_region, hr_lease_ms,           0x024,    4),
	F(vmfs_hb_region, hr_renew_ms,           0x028,    4),
	F(vmfs_hb_region, hr_pad,                0x02c,    4),
	F(vmfs_hb_region, hr_slot0_offset,       0x030,    8),
	F(vmfs_hb_region, hr_reserved,           0x038, 3528),

	F(vmfs_hb_slot, hs_hdr,                  0x000,   32),
	F(vmfs_hb_slot, hs_state,                0x020,    4),
	F(vmfs_hb_slot, hs_slot,                 0x024,    4),
	F(vmfs_hb_slot, hs_hb_gen,               0x028,    8),
	F(vmfs_hb_slot, hs_counter,              0x030,    8),
	F(vmfs_hb_slot, hs_lease_ms,             0x038,    4),
	F(vmfs_hb_slot, hs_renew_ms,             0x03c,    4),
	F(vmfs_hb_slot, hs_host_uuid,            0x040,   16),
	F(vmfs_hb_slot, hs_journal_offset,       0x050,    8),
	F(vmfs_hb_slot, hs_journal_size,         0x058,    8),
	F(vmfs_hb_slot, hs_addr,                 0x060,   64),
	F(vmfs_hb_slot, hs_hostname,             0x0a0,   64),
	F(vmfs_hb_slot, hs_vm_free_mib,          0x0e0,    8),
	F(vmfs_hb_slot, hs_flags,                0x0e8,    4),
	F(vmfs_hb_slot, hs_want_seq,             0x0ec,    4),
	F(vmfs_hb_slot, hs_want_addr,            0x0f0,    8),
	F(vmfs_hb_slot, hs_busy_slot,            0x0f8,    4),
	F(vmfs_hb_slot, hs_busy_seq,             0x0fc,    4),
	F(vmfs_hb_slot, hs_busy_addr,            0x100,    8),
	F(vmfs_hb_slot, hs_reserved,             0x108,  248),

	F(vmfs_jnl_hdr, jh_hdr,                  0x000,   32),
	F(vmfs_jnl_hdr, jh_slot,                 0x020,    4),
	F(vmfs_jnl_hdr, jh_state,                0x024,    4),
	F(vmfs_jnl_hdr, jh_size_bytes,           0x028,    8),
	F(vmfs_jnl_hdr, jh_tail,                 0x030,    8),
	F(vmfs_jnl_hdr, jh_head,                 0x038,    8),
	F(vmfs_jnl_hdr, jh_seq,                  0x040,    8),
	F(vmfs_jnl_hdr, jh_jid,                  0x048,    8),
	F(vmfs_jnl_hdr, jh_reserved,             0x050, 3504),
	F(vmfs_jnl_tag, jt_addr,                 0x000,    8),
	F(vmfs_jnl_tag, jt_flags,                0x008,    4),
	F(vmfs_jnl_tag, jt_pad,                  0x00c,    4),
	F(vmfs_jnl_desc, jd_hdr,                 0x000,   32),
	F(vmfs_jnl_desc, jd_seq,                 0x020,    8),
	F(vmfs_jnl_desc, jd_jid,                 0x028,    8),
	F(vmfs_jnl_desc, jd_ntags,               0x030,    4),
	F(vmfs_jnl_desc, jd_index,               0x034,    4),
	F(vmfs_jnl_desc, jd_reserved,            0x038,    8),
	F(vmfs_jnl_desc, jd_tags,                0x040, 4032),
	F(vmfs_jnl_commit, jc_hdr,               0x000,   32),
	F(vmfs_jnl_commit, jc_seq,               0x020,    8),
	F(vmfs_jnl_commit, jc_jid,               0x028,    8),
	F(vmfs_jnl_commit, jc_nblocks,           0x030,    4),
	F(vmfs_jnl_commit, jc_crc,               0x034,    4),
	F(vmfs_jnl_commit, jc_time_ns,           0x038,    8),
	F(vmfs_jnl_commit, jc_nimages,           0x040,    4),
	F(vmfs_jnl_commit, jc_reserved,          0x044, 4028),

	F(vmfs_rc, rc_hdr,                       0x000,   32),
	F(vmfs_rc, rc_type,                      0x020,    4),
	F(vmfs_rc, rc_index,                     0x024,    4),
	F(vmfs_rc, rc_nobjs,                     0x028,    4),
	F(vmfs_rc, rc_nfree,                     0x02c,    4),
	F(vmfs_rc, rc_first_obj,                 0x030,    8),
	F(vmfs_rc, rc_flags,                     0x038,    4),
	F(vmfs_rc, rc_pad0,                      0x03c,    4),
	F(vmfs_rc, rc_bitmap,                    0x040, 1024),
	F(vmfs_rc, rc_orphan,                   0x440, 1024),
	F(vmfs_rc, rc_unlinked,                 0x840, 1024),
	F(vmfs_rc, rc_reserved,                 0xc40,  448),

	F(vmfs_inode, di_hdr,                    0x000,   32),
	F(vmfs_inode, di_ino,                    0x020,    8),
	F(vmfs_inode, di_incarnation,            0x028,    8),
	F(vmfs_inode, di_mode,                   0x030,    4),
	F(vmfs_inode, di_nlink,                  0x034,    4),
	F(vmfs_inode, di_uid,                    0x038,    4),
	F(vmfs_inode, di_gid,                    0x03c,    4),
	F(vmfs_inode, di_size,                   0x040,    8),
	F(vmfs_inode, di_alloc_bytes,            0x048,    8),
	F(vmfs_inode, di_atime_ns,               0x050,    8),
	F(vmfs_inode, di_mtime_ns,               0x058,    8),
	F(vmfs_inode, di_ctime_ns,               0x060,    8),
	F(vmfs_inode, di_btime_ns,               0x068,    8),
	F(vmfs_inode, di_parent,                 0x070,    8),
	F(vmfs_inode, di_flags,                  0x078,    4),
	F(vmfs_inode, di_map_type,               0x07c,    2),
	F(vmfs_inode, di_xattr_len,              0x07e,    2),
	F(vmfs_inode, di_rdev,                   0x080,    8),
	F(vmfs_inode, di_nentries,               0x088,    8),
	F(vmfs_inode, di_reserved,               0x090,  112),
	F(vmfs_inode, di_map,                    0x100, 2048),
	F(vmfs_inode, di_inline,                 0x100, 2048), /* union */
	F(vmfs_inode, di_xattr,                  0x900, 1280),

	F(vmfs_xattr_rec, xr_name_len,           0x000,    1),
	F(vmfs_xattr_rec, xr_pad,                0x001,    1),
	F(vmfs_xattr_rec, xr_value_len,          0x002,    2),

	F(vmfs_ptrblk, pb_hdr,                   0x000,   32),
	F(vmfs_ptrblk, pb_owner_ino,             0x020,    8),
	F(vmfs_ptrblk, pb_level,                 0x028,    4),
	F(vmfs_ptrblk, pb_pad,                   0x02c,    4),
	F(vmfs_ptrblk, pb_ptr,                   0x030, 4048),

	F(vmfs_dirent, de_ino,                   0x000,    8),
	F(vmfs_dirent, de_hash,                  0x008,    4),
	F(vmfs_dirent, de_name_len,              0x00c,    1),
	F(vmfs_dirent, de_type,                  0x00d,    1),
	F(vmfs_dirent, de_pad,                   0x00e,    2),
	F(vmfs_dirent, de_name,                  0x010,  256),

	F(vmfs_dirblk, db_hdr,                   0x000,   32),
	F(vmfs_dirblk, db_dir_ino,               0x020,    8),
	F(vmfs_dirblk, db_chunk,                 0x028,    4),
	F(vmfs_dirblk, db_count,                 0x02c,    2),
	F(vmfs_dirblk, db_pad,                   0x02e,    2),
	F(vmfs_dirblk, db_ents,                  0x030, 3808),
	F(vmfs_dirblk, db_reserved,              0xf10,  240),
};

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/* ---- golden table of struct sizes ------------------------------------ */

struct size_row {
	const char *type;
	size_t size;       /* golden */
	size_t real_size;  /* sizeof() */
};

#define S(t, s) { #t, (s), sizeof(struct t) }

static const struct size_row sizes[] = {
	S(vmfs_blk_hdr,       32),
	S(vmfs_lock_holder,   32),
	S(vmfs_lock,         512),
	S(vmfs_res_area,      48),
	S(vmfs_volume,      4096),
	S(vmfs_hb_region,   3584),
	S(vmfs_hb_slot,      512),
	S(vmfs_jnl_hdr,     3584),
	S(vmfs_jnl_tag,       16),
	S(vmfs_jnl_desc,    4096),
	S(vmfs_jnl_commit,  4096),
	S(vmfs_rc,          3584),
	S(vmfs_inode,       3584),
	S(vmfs_xattr_rec,      4),
	S(vmfs_ptrblk,      4096),
	S(vmfs_dirent,       272),
	S(vmfs_dirblk,      4096),
};

#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static size_t golden_size(const char *type)
{
	size_t i;

	for (i = 0; i < NSIZES; i++)
		if (!strcmp(sizes[i].type, type))
			return sizes[i].size;
	return 0;
}

/* ---- tests ------------------------------------------------------------ */

static void test_field_offsets(void)
{
	size_t i;

	for (i = 0; i < NFIELDS; i++) {
		const struct field_row *r = &fields[i];

		CHECK(r->real_off == r->off,
		      "offsetof(struct %s, %s) = 0x%zx, golden 0x%zx",
		      r->type, r->field, r->real_off, r->off);
		CHECK(r->real_size == r->size,
		      "sizeof(struct %s.%s) = %zu, golden %zu",
		      r->type, r->field, r->real_size, r->size);
	}
}

static void test_struct_sizes(void)
{
	size_t i;

	for (i = 0; i < NSIZES; i++)
		CHECK(sizes[i].real_size == sizes[i].size,
		      "sizeof(struct %s) = %zu, golden %zu",
		      sizes[i].type, sizes[i].real_size, sizes[i].size);
}

/*
 * The golden rows of each struct must cover it byte for byte: the first
 * at 0, each next one where the previous ended (or, for a union member,
 * at the same offset with the same size), the last ending at the golden
 * sizeof.  A field added to format.h without a row here leaves a gap.
 */
static void test_fields_tile_structs(void)
{
	size_t i = 0;

	while (i < NFIELDS) {
		const char *type = fields[i].type;
		size_t total = golden_size(type);
		size_t start = i, end = 0, prev_off = 0, prev_size = 0;

		CHECK(total != 0, "struct %s has no row in the size table",
		      type);
		for (; i < NFIELDS && !strcmp(fields[i].type, type); i++) {
			const struct field_row *r = &fields[i];

			if (i > start && r->off == prev_off &&
			    r->size == prev_size)
				continue;   /* another member of a union */
			CHECK(r->off == end,
			      "struct %s: %s at 0x%zx, previous field ends at 0x%zx",
			      type, r->field, r->off, end);
			prev_off = r->off;
			prev_size = r->size;
			end = r->off + r->size;
		}
		CHECK(end == total,
		      "struct %s: fields end at 0x%zx, struct is 0x%zx",
		      type, end, total);
	}
}

/* Every struct in the size table has field rows, each in one run. */
static void test_every_struct_listed(void)
{
	size_t i, j, runs;

	for (i = 0; i < NSIZES; i++) {
		runs = 0;
		for (j = 0; j < NFIELDS; j++)
			if (!strcmp(fields[j].type, sizes[i].type) &&
			    (j == 0 || strcmp(fields[j - 1].type,
					      sizes[i].type)))
				runs++;
		CHECK(runs == 1, "struct %s: %zu runs of field rows, want 1",
		      sizes[i].type, runs);
	}
}

/* Lockable objects sit after the one-sector lock record and fill 4 KiB. */
static void test_block_geometry(void)
{
	CHECK(VMFS_MD_BLOCK_SIZE == 4096, "VMFS_MD_BLOCK_SIZE %u",
	      VMFS_MD_BLOCK_SIZE);
	CHECK(1u << VMFS_MD_BLOCK_SHIFT == VMFS_MD_BLOCK_SIZE,
	      "VMFS_MD_BLOCK_SHIFT %d", VMFS_MD_BLOCK_SHIFT);
	CHECK(VMFS_LOCK_SIZE == 512 && VMFS_OBJ_OFFSET == 512,
	      "lock record %u bytes, object at %u", VMFS_LOCK_SIZE,
	      VMFS_OBJ_OFFSET);
	CHECK(sizeof(struct vmfs_lock) == VMFS_LOCK_SIZE,
	      "vmfs_lock is %zu bytes", sizeof(struct vmfs_lock));
	CHECK(VMFS_OBJ_OFFSET + sizeof(struct vmfs_hb_region) ==
	      VMFS_MD_BLOCK_SIZE, "hb region header does not end the block");
	CHECK(VMFS_OBJ_OFFSET + sizeof(struct vmfs_jnl_hdr) ==
	      VMFS_MD_BLOCK_SIZE, "journal header does not end the block");
	CHECK(VMFS_OBJ_OFFSET + sizeof(struct vmfs_rc) == VMFS_MD_BLOCK_SIZE,
	      "cluster header does not end the block");
	CHECK(VMFS_OBJ_OFFSET + sizeof(struct vmfs_inode) ==
	      VMFS_MD_BLOCK_SIZE, "inode does not end the block");
	CHECK(sizeof(struct vmfs_hb_slot) == VMFS_LOCK_SIZE,
	      "heartbeat slot live part is not one 512-byte sector");
	CHECK(sizeof(((struct vmfs_lock *)0)->lk_holders) ==
	      VMFS_LOCK_MAX_HOLDERS * sizeof(struct vmfs_lock_holder),
	      "lk_holders is not VMFS_LOCK_MAX_HOLDERS holders");
	CHECK(sizeof(struct vmfs_res_area) * VMFS_RES_NTYPES ==
	      sizeof(((struct vmfs_volume *)0)->vh_res),
	      "vh_res is not one area per resource type");
}

static void test_magic_ascii(void)
{
	static const struct {
		uint32_t magic;
		const char *name;
	} m[] = {
		{ VMFS_MAGIC_VOLUME,   "VMFS" },
		{ VMFS_MAGIC_LOCK,     "LOCK" },
		{ VMFS_MAGIC_HBREGION, "HBRG" },
		{ VMFS_MAGIC_HBSLOT,   "HSLT" },
		{ VMFS_MAGIC_JOURNAL,  "JRNL" },
		{ VMFS_MAGIC_RCLUSTER, "RSCL" },
		{ VMFS_MAGIC_INODE,    "NODE" },
		{ VMFS_MAGIC_PTRBLK,   "PBLK" },
		{ VMFS_MAGIC_DIRBLK,   "DRLK" },
		{ VMFS_MAGIC_JDESC,    "JDSC" },
		{ VMFS_MAGIC_JCOMMIT,  "JCMT" },
	};
	size_t i, j;

	for (i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		le32 disk = htole32(m[i].magic);

		CHECK(!memcmp(&disk, m[i].name, 4),
		      "magic 0x%08x is not \"%s\" stored little-endian",
		      m[i].magic, m[i].name);
		for (j = 0; j < i; j++)
			CHECK(m[i].magic != m[j].magic,
			      "magics %s and %s are equal", m[i].name,
			      m[j].name);
	}
}

/* Enum values are stored on disk: pin them. */
static void test_enum_values(void)
{
	CHECK(VMFS_LOCK_FREE == 0 && VMFS_LOCK_EXCLUSIVE == 1 &&
	      VMFS_LOCK_READONLY == 2 && VMFS_LOCK_MULTIWRITER == 3,
	      "enum vmfs_lock_mode values moved");
	CHECK(VMFS_RES_INODE == 0 && VMFS_RES_PTRBLK == 1 &&
	      VMFS_RES_SMALL == 2 && VMFS_RES_FILE == 3 &&
	      VMFS_RES_NTYPES == 4, "enum vmfs_res_type values moved");
	CHECK(VMFS_HB_FREE == 0 && VMFS_HB_ACTIVE == 1 &&
	      VMFS_HB_REPLAYING == 2, "enum vmfs_hb_state values moved");
	CHECK(VMFS_JNL_CLEAN == 0 && VMFS_JNL_DIRTY == 1,
	      "enum vmfs_jnl_state values moved");
	CHECK(VMFS_MAP_INLINE == 0 && VMFS_MAP_SMALL == 1 &&
	      VMFS_MAP_FILE == 2, "enum vmfs_map_type values moved");
	CHECK(VMFS_ROOT_INO == 1 && VMFS_LOSTFOUND_INO == 2,
	      "reserved inode numbers moved");
	CHECK(VMFS_DI_DISK_THIN == 0x1 && VMFS_DI_DISK_ZEROED == 0x2 &&
	      VMFS_DI_DISK_EAGER == 0x4, "VMFS_DI_DISK_* flags moved");
	CHECK(VMFS_DI_MULTIWRITER == 0x8, "VMFS_DI_MULTIWRITER moved");
}

static void test_block_map(void)
{
	const uint64_t mib = 1ull << 20;
	uint64_t n = VMFS_PTRS_PER_BLK, blocks;

	CHECK(VMFS_NMAP == 256 && VMFS_NDIRECT == 251, "map is %d/%d",
	      VMFS_NMAP, VMFS_NDIRECT);
	CHECK(VMFS_MAP_IND1 == VMFS_NDIRECT && VMFS_MAP_IND2 == 252 &&
	      VMFS_MAP_IND3 == 253 && VMFS_MAP_IND4 == 254 &&
	      VMFS_MAP_SPARE == VMFS_NMAP - 1, "indirect slots moved");
	CHECK(VMFS_INLINE_MAX == sizeof(((struct vmfs_inode *)0)->di_map),
	      "inline data does not overlay the map exactly");
	CHECK(VMFS_XATTR_AREA == sizeof(((struct vmfs_inode *)0)->di_xattr),
	      "VMFS_XATTR_AREA %d", VMFS_XATTR_AREA);
	CHECK(VMFS_PTR_ADDR_MASK == (1ull << 56) - 1,
	      "VMFS_PTR_ADDR_MASK is not bits 0..55");
	CHECK(VMFS_PTR_TBZ == 1ull << 63, "VMFS_PTR_TBZ is not bit 63");
	CHECK(!(VMFS_PTR_ADDR_MASK & VMFS_PTR_TBZ),
	      "to-be-zeroed flag overlaps the address");

	/*
	 * Largest file with 1 MiB file blocks (docs/SPEC.md states the same
	 * number): 251 direct + 506 + 506^2 + 506^3 + 506^4 blocks.
	 */
	blocks = VMFS_NDIRECT + n + n * n + n * n * n + n * n * n * n;
	CHECK(blocks == 65684244305ull, "map reaches %llu blocks",
	      (unsigned long long)blocks);
	CHECK(blocks * mib == 68874922156359680ull &&
	      blocks * mib > 64 * (1ull << 40),
	      "max file size %llu bytes", (unsigned long long)(blocks * mib));
}

/* The per-block counts are the largest that fit their 4 KiB blocks. */
static void test_counts_fit_blocks(void)
{
	size_t ents = offsetof(struct vmfs_dirblk, db_ents);
	size_t ptrs = offsetof(struct vmfs_ptrblk, pb_ptr);
	size_t de = sizeof(struct vmfs_dirent);

	CHECK(ents + VMFS_DIRENTS_PER_CHUNK * de <= VMFS_MD_BLOCK_SIZE,
	      "%d dirents do not fit a chunk", VMFS_DIRENTS_PER_CHUNK);
	CHECK(ents + (VMFS_DIRENTS_PER_CHUNK + 1) * de > VMFS_MD_BLOCK_SIZE,
	      "a chunk has room for more than %d dirents",
	      VMFS_DIRENTS_PER_CHUNK);
	CHECK(ptrs + VMFS_PTRS_PER_BLK * sizeof(le64) == VMFS_MD_BLOCK_SIZE,
	      "%d pointers do not fill a pointer block exactly",
	      VMFS_PTRS_PER_BLK);
	CHECK(VMFS_RC_MAX_OBJS ==
	      8 * sizeof(((struct vmfs_rc *)0)->rc_bitmap),
	      "rc_bitmap is not VMFS_RC_MAX_OBJS bits");
	CHECK(VMFS_NAME_MAX <= UINT8_MAX &&
	      VMFS_NAME_MAX + 1 == sizeof(((struct vmfs_dirent *)0)->de_name),
	      "VMFS_NAME_MAX %d does not fit de_name_len/de_name",
	      VMFS_NAME_MAX);
}

/*
 * The inline helpers against values worked out by hand from the rules
 * they replace (docs/SPEC.md): a pointer's 4 KiB-unit address in bits
 * 0..55, spans of 506^d, DT_* = S_IFMT >> 12, object index within an area.
 */
static void test_helpers(void)
{
	const uint64_t tbz = VMFS_PTR_TBZ;

	CHECK(vmfs_ptr_addr(0) == 0, "a hole has an address");
	CHECK(vmfs_ptr_addr(0x1234) == 0x1234000ull, "ptr 0x1234 -> 0x%llx",
	      (unsigned long long)vmfs_ptr_addr(0x1234));
	CHECK(vmfs_ptr_addr(tbz | 5) == 5 * 4096ull,
	      "the to-be-zeroed flag leaks into the address");
	CHECK(vmfs_ptr_addr(0x0000ffffffffffffull) == 0x0ffffffffffff000ull,
	      "high address bits lost");
	CHECK(vmfs_ptr_addr(0x0100000000000001ull) == 4096,
	      "bits 56..62 leak into the address");
	CHECK(vmfs_ptr_bad_bits(tbz | 7) == 0 && vmfs_ptr_bad_bits(7) == 0,
	      "a valid pointer has bad bits");
	CHECK(vmfs_ptr_bad_bits(0x4000000000000007ull) == 0x4000000000000000ull,
	      "bit 62 is not a bad bit");

	CHECK(vmfs_map_span(0) == 1 && vmfs_map_span(1) == 506 &&
	      vmfs_map_span(2) == 256036ull &&
	      vmfs_map_span(3) == 129554216ull &&
	      vmfs_map_span(4) == 65554433296ull,
	      "map spans %llu %llu %llu %llu",
	      (unsigned long long)vmfs_map_span(1),
	      (unsigned long long)vmfs_map_span(2),
	      (unsigned long long)vmfs_map_span(3),
	      (unsigned long long)vmfs_map_span(4));

	/* Linux DT_* values, spelled out: the header must not depend on them. */
	CHECK(vmfs_dirent_type(0100644) == 8 && vmfs_dirent_type(040755) == 4 &&
	      vmfs_dirent_type(0120777) == 10 && vmfs_dirent_type(010600) == 1 &&
	      vmfs_dirent_type(020600) == 2 && vmfs_dirent_type(060600) == 6 &&
	      vmfs_dirent_type(0140755) == 12 && vmfs_dirent_type(0) == 0,
	      "dirent types: reg %u dir %u lnk %u", vmfs_dirent_type(0100644),
	      vmfs_dirent_type(040755), vmfs_dirent_type(0120777));

	CHECK(vmfs_res_index(1 << 20, 4096, 10, 1 << 20) == 0 &&
	      vmfs_res_index(1 << 20, 4096, 10, (1 << 20) + 9 * 4096) == 9,
	      "first/last object index");
	CHECK(vmfs_res_index(1 << 20, 4096, 10, (1 << 20) + 10 * 4096) == -1,
	      "address past the area has an index");
	CHECK(vmfs_res_index(1 << 20, 4096, 10, (1 << 20) - 4096) == -1,
	      "address before the area has an index");
	CHECK(vmfs_res_index(1 << 20, 4096, 10, (1 << 20) + 100) == -1,
	      "unaligned address has an index");
	CHECK(vmfs_res_index(0, 0, 10, 0) == -1, "empty area has an index");
}

/* ---- golden layouts (docs/SPEC.md §15 and §8.1) ------------------- */

struct golden_area {
	uint64_t hdr, obj, count;
	uint32_t per_cluster, nclusters;
};

static void check_area(const char *what, const struct vol_res_geom *r,
		       const struct golden_area *w, int line)
{
	check(r->hdr_offset == w->hdr && r->obj_offset == w->obj &&
	      r->count == w->count && r->per_cluster == w->per_cluster &&
	      r->nclusters == w->nclusters, __func__, line,
	      "%s: hdr 0x%llx obj 0x%llx count %llu per %u n %u, golden "
	      "hdr 0x%llx obj 0x%llx count %llu per %u n %u", what,
	      (unsigned long long)r->hdr_offset, (unsigned long long)r->obj_offset,
	      (unsigned long long)r->count, r->per_cluster, r->nclusters,
	      (unsigned long long)w->hdr, (unsigned long long)w->obj,
	      (unsigned long long)w->count, w->per_cluster, w->nclusters);
}

/*
 * What mkfs lays out with the defaults.  8 GiB: SPEC §15, where the
 * alignment padding of the file-block table already holds the 128 slots
 * of a 16x grow, so the layout is the one mkfs always made.  1 TiB: the
 * table gets its 16,384 slots for 16 TiB (the objects start 60 MiB
 * later); --max-grow-size 0 gives the earlier layout (SPEC §8.1).
 */
static void test_mkfs_layout_golden(void)
{
	static const struct golden_area g8[VMFS_RES_NTYPES] = {
		{ 0x40100000, 0x40110000, 8192, 512, 16 },
		{ 0x42110000, 0x42112000, 1792, 1024, 2 },
		{ 0x42812000, 0x42820000, 4096, 1024, 4 },
		{ 0x52820000, 0x52900000, 6870, 1024, 7 },
	};
	static const struct golden_area f1t = {
		0x958f70000, 0x95d000000, 1010223, 1024, 987 };
	static const struct golden_area f1t_old = {
		0x958f70000, 0x959400000, 1010283, 1024, 987 };
	struct vol_mkfs_opts o;
	struct vol_geom g;
	uint64_t max_blocks, max_size;

	vol_mkfs_opts_init(&o);
	CU_ASSERT_FATAL(vol_layout(8ull << 30, 512, &o, &g, NULL) == 0);
	for (int t = 0; t < VMFS_RES_NTYPES; t++)
		check_area(vol_res_name(t), &g.res[t], &g8[t], __LINE__);
	check(g.size_bytes == 0x200000000 && g.backup_offset == 0x1fffff000,
	      __func__, __LINE__, "8 GiB: size/backup");
	vol_grow_max(&g, &max_blocks, &max_size);
	check(max_blocks == 229376, __func__, __LINE__,
	      "8 GiB: grows to %llu file blocks, golden 229376",
	      (unsigned long long)max_blocks);

	CU_ASSERT_FATAL(vol_layout(1ull << 40, 512, &o, &g, NULL) == 0);
	check_area("1 TiB file blocks", &g.res[VMFS_RES_FILE], &f1t, __LINE__);
	vol_grow_max(&g, &max_blocks, &max_size);
	check(max_size >= 16ull << 40, __func__, __LINE__,
	      "1 TiB: grows to %llu bytes, less than 16 TiB",
	      (unsigned long long)max_size);
	o.max_grow_size = 0;
	CU_ASSERT_FATAL(vol_layout(1ull << 40, 512, &o, &g, NULL) == 0);
	check_area("1 TiB --max-grow-size 0", &g.res[VMFS_RES_FILE], &f1t_old,
		   __LINE__);
}

/*
 * The pointer-block area does not grow: mkfs gives it one pointer block
 * per 256 file blocks of the grow target (a fully-mapped file needs one
 * per 506) when that is more than its one per 16 data blocks of the LUN.
 */
static void test_mkfs_ptrblk_for_target(void)
{
	struct vol_mkfs_opts o;
	struct vol_geom g;
	uint64_t nptr16, target = 64ull << 40;

	vol_mkfs_opts_init(&o);
	CU_ASSERT_FATAL(vol_layout(1ull << 40, 512, &o, &g, NULL) == 0);
	nptr16 = g.res[VMFS_RES_PTRBLK].count;
	CU_ASSERT(nptr16 >= (16ull << 40) / (1 << 20) / 256);
	o.max_grow_size = target;
	CU_ASSERT_FATAL(vol_layout(1ull << 40, 512, &o, &g, NULL) == 0);
	CU_ASSERT(g.res[VMFS_RES_PTRBLK].count >= target / (1 << 20) / 256);
	CU_ASSERT(g.res[VMFS_RES_PTRBLK].count > nptr16);
}

static CU_TestInfo tests[] = {
	{ "field_offsets", test_field_offsets },
	{ "struct_sizes", test_struct_sizes },
	{ "fields_tile_structs", test_fields_tile_structs },
	{ "every_struct_listed", test_every_struct_listed },
	{ "block_geometry", test_block_geometry },
	{ "magic_ascii", test_magic_ascii },
	{ "enum_values", test_enum_values },
	{ "block_map", test_block_map },
	{ "counts_fit_blocks", test_counts_fit_blocks },
	{ "helpers", test_helpers },
	{ "mkfs_layout_golden", test_mkfs_layout_golden },
	{ "mkfs_ptrblk_for_target", test_mkfs_ptrblk_for_target },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE("format", NULL, NULL, tests);
