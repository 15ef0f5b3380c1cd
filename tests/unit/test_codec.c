/*
 * The codec (format/, fmt_*): each encoder must put every field at its
 * golden offset in little-endian order, each decoder must read back what
 * was encoded, leave nothing out (a field added to a host struct but not
 * to the codec reads back as 0 here), and refuse exactly the values its
 * header comment names.  Values are distinct per byte so that a field
 * written at the wrong offset, with the wrong width or in host order on
 * a big-endian machine shows up as a wrong byte.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "vmfs/error.h"
#include "vmfs/format.h"
#include "unit.h"

/* Little-endian value of n bytes at p + off, read byte by byte. */
static uint64_t le_at(const void *p, size_t off, size_t n)
{
	const uint8_t *b = (const uint8_t *)p + off;
	uint64_t v = 0;

	for (size_t i = n; i-- > 0;)
		v = v << 8 | b[i];
	return v;
}

static void test_hdr(void)
{
	struct vmfs_blk_hdr d;
	struct fmt_hdr h;
	const uint8_t bytes[32] = {
		0x4e, 0x4f, 0x44, 0x45, 0x02, 0x00, 0x01, 0x00,
		0x00, 0x10, 0, 0, 0, 0, 0, 0,
		0x07, 0, 0, 0, 0, 0, 0, 0x01,
		0x78, 0x56, 0x34, 0x12, 0x00, 0x0e, 0, 0,
	};

	memcpy(&d, bytes, sizeof(d));
	fmt_hdr_decode(&d, &h);
	CU_ASSERT_EQUAL(h.magic, VMFS_MAGIC_INODE);
	CU_ASSERT_EQUAL(h.major, 2);
	CU_ASSERT_EQUAL(h.minor, 1);
	CU_ASSERT_EQUAL(h.self, 0x1000);
	CU_ASSERT_EQUAL(h.gen, 0x0100000000000007ull);
	CU_ASSERT_EQUAL(h.crc, 0x12345678u);
	CU_ASSERT_EQUAL(h.len, 0xe00);
	CU_ASSERT_EQUAL(fmt_hdr_gen(&d), 0x0100000000000007ull);
	fmt_hdr_set_gen(&d, 0x0a0b0c0d0e0f1011ull);
	CU_ASSERT_EQUAL(le_at(&d, 0x10, 8), 0x0a0b0c0d0e0f1011ull);
	CU_ASSERT(memcmp(&d, bytes, 0x10) == 0);
	CU_ASSERT(memcmp((uint8_t *)&d + 0x18, bytes + 0x18, 8) == 0);
}

static void test_ptr(void)
{
	le64 slot[2] = { 0, 0 };

	fmt_ptr_store(&slot[1], VMFS_PTR_TBZ | 0x0102030405ull);
	CU_ASSERT_EQUAL(le_at(slot, 8, 8), VMFS_PTR_TBZ | 0x0102030405ull);
	CU_ASSERT_EQUAL(fmt_ptr_load(&slot[1]), VMFS_PTR_TBZ | 0x0102030405ull);
	CU_ASSERT_EQUAL(slot[0], 0);
}

static void test_inode(void)
{
	static struct vmfs_inode d, d2;
	struct fmt_inode in = {
		.gen = 0x1111111111111101ull, .ino = 0x2222222222222202ull,
		.incarnation = 0x3333333333333303ull, .mode = 0100644,
		.nlink = 0x44444404u, .uid = 0x55555505u, .gid = 0x66666606u,
		.flags = VMFS_DI_DISK_EAGER, .size = 0x7777777777777707ull,
		.alloc_bytes = 0x0808080808080808ull,
		.parent = 0x0909090909090909ull, .rdev = 0x0a0a0a0a0a0a0a0aull,
		.nentries = 0x0b0b0b0b0b0b0b0bull, .atime_ns = -1,
		.mtime_ns = -2, .ctime_ns = 0x0c0c0c0c0c0c0c0cll,
		.btime_ns = 0x0d0d0d0d0d0d0d0dll, .map_type = VMFS_MAP_FILE,
		.xattr_len = VMFS_XATTR_AREA,
	}, out;

	memset(&d, 0xee, sizeof(d));
	fmt_inode_encode(&in, &d);
	CU_ASSERT_EQUAL(le_at(&d, 0x10, 8), in.gen);
	CU_ASSERT_EQUAL(le_at(&d, 0x20, 8), in.ino);
	CU_ASSERT_EQUAL(le_at(&d, 0x28, 8), in.incarnation);
	CU_ASSERT_EQUAL(le_at(&d, 0x30, 4), in.mode);
	CU_ASSERT_EQUAL(le_at(&d, 0x34, 4), in.nlink);
	CU_ASSERT_EQUAL(le_at(&d, 0x38, 4), in.uid);
	CU_ASSERT_EQUAL(le_at(&d, 0x3c, 4), in.gid);
	CU_ASSERT_EQUAL(le_at(&d, 0x40, 8), in.size);
	CU_ASSERT_EQUAL(le_at(&d, 0x48, 8), in.alloc_bytes);
	CU_ASSERT_EQUAL(le_at(&d, 0x50, 8), UINT64_MAX);
	CU_ASSERT_EQUAL(le_at(&d, 0x58, 8), UINT64_MAX - 1);
	CU_ASSERT_EQUAL(le_at(&d, 0x60, 8), (uint64_t)in.ctime_ns);
	CU_ASSERT_EQUAL(le_at(&d, 0x68, 8), (uint64_t)in.btime_ns);
	CU_ASSERT_EQUAL(le_at(&d, 0x70, 8), in.parent);
	CU_ASSERT_EQUAL(le_at(&d, 0x78, 4), in.flags);
	CU_ASSERT_EQUAL(le_at(&d, 0x7c, 2), in.map_type);
	CU_ASSERT_EQUAL(le_at(&d, 0x7e, 2), in.xattr_len);
	CU_ASSERT_EQUAL(le_at(&d, 0x80, 8), in.rdev);
	CU_ASSERT_EQUAL(le_at(&d, 0x88, 8), in.nentries);
	/* The map, the xattr area and the reserved bytes are not its own. */
	CU_ASSERT_EQUAL(d.di_reserved[0], 0xee);
	CU_ASSERT_EQUAL(d.di_inline[0], 0xee);
	CU_ASSERT_EQUAL(d.di_xattr[0], 0xee);

	CU_ASSERT_EQUAL(fmt_inode_decode(&d, &out), 0);
	memcpy(&d2, &d, sizeof(d2));
	/* Zero what the encoder owns, so a field decode forgot shows. */
	memset((uint8_t *)&d2 + 0x10, 0, 8);
	memset((uint8_t *)&d2 + 0x20, 0, 0x90 - 0x20);
	fmt_inode_encode(&out, &d2);
	CU_ASSERT(memcmp(&d2, &d, sizeof(d)) == 0);
	CU_ASSERT_EQUAL(fmt_xattr_len(&d), VMFS_XATTR_AREA);

	/* Out of range: refused, but every field still read for fsck. */
	in.map_type = VMFS_MAP_FILE + 1;
	fmt_inode_encode(&in, &d);
	CU_ASSERT_EQUAL(fmt_inode_decode(&d, &out), -VMFS_E_CORRUPT);
	CU_ASSERT_EQUAL(out.map_type, VMFS_MAP_FILE + 1);
	CU_ASSERT_EQUAL(out.size, in.size);
	in.map_type = VMFS_MAP_INLINE;
	in.xattr_len = VMFS_XATTR_AREA + 1;
	fmt_inode_encode(&in, &d);
	CU_ASSERT_EQUAL(fmt_inode_decode(&d, &out), -VMFS_E_CORRUPT);
	fmt_xattr_set_len(&d, 3);
	CU_ASSERT_EQUAL(le_at(&d, 0x7e, 2), 3);
	CU_ASSERT_EQUAL(fmt_inode_decode(&d, &out), 0);
}

static void test_xattr_rec(void)
{
	uint8_t area[8];
	size_t n, v;

	memset(area, 0xee, sizeof(area));
	/* At an odd offset: records are packed with no alignment. */
	fmt_xattr_rec_encode(area + 1, 9, 0x0203);
	CU_ASSERT_EQUAL(area[1], 9);
	CU_ASSERT_EQUAL(area[2], 0);
	CU_ASSERT_EQUAL(le_at(area, 3, 2), 0x0203);
	CU_ASSERT_EQUAL(area[5], 0xee);
	fmt_xattr_rec_decode(area + 1, &n, &v);
	CU_ASSERT_EQUAL(n, 9);
	CU_ASSERT_EQUAL(v, 0x0203);
}

static void test_ptrblk(void)
{
	static struct vmfs_ptrblk d;
	struct fmt_ptrblk in = { .gen = 9, .owner_ino = 0x0102030405060708ull,
				 .level = 4 }, out;

	fmt_ptrblk_encode(&in, &d);
	CU_ASSERT_EQUAL(le_at(&d, 0x10, 8), 9);
	CU_ASSERT_EQUAL(le_at(&d, 0x20, 8), in.owner_ino);
	CU_ASSERT_EQUAL(le_at(&d, 0x28, 4), 4);
	CU_ASSERT_EQUAL(fmt_ptrblk_decode(&d, &out), 0);
	CU_ASSERT(out.gen == in.gen && out.owner_ino == in.owner_ino &&
		  out.level == in.level);
	for (uint32_t bad = 0; bad < 7; bad += 5) {  /* 0 and 5 */
		in.level = bad;
		fmt_ptrblk_encode(&in, &d);
		CU_ASSERT_EQUAL(fmt_ptrblk_decode(&d, &out), -VMFS_E_CORRUPT);
		CU_ASSERT_EQUAL(out.level, bad);
	}
}

static void test_dirent(void)
{
	static struct vmfs_dirblk db;
	struct vmfs_dirent *d = &db.db_ents[3];
	struct fmt_dirblk in = { .gen = 5, .dir_ino = 0x0102030405060708ull,
				 .chunk = 0x0a0b0c0d, .count = 14 }, out;
	struct fmt_dirent de;

	/* "a" hashes to crc32c("a") = 0xc1d04330 (RFC 3720 test vectors'
	 * the value the engine has always stored in de_hash. */
	CU_ASSERT_EQUAL(fmt_name_hash("a", 1), 0xc1d04330u);
	CU_ASSERT_EQUAL(fmt_name_hash("123456789", 9), 0xe3069283u);

	memset(d, 0xee, sizeof(*d));
	fmt_dirent_encode(d, 0x1122334455667788ull, "name", 4, 8);
	CU_ASSERT_EQUAL(le_at(d, 0x00, 8), 0x1122334455667788ull);
	CU_ASSERT_EQUAL(le_at(d, 0x08, 4), fmt_name_hash("name", 4));
	CU_ASSERT_EQUAL(d->de_name_len, 4);
	CU_ASSERT_EQUAL(d->de_type, 8);
	CU_ASSERT_EQUAL(le_at(d, 0x0e, 2), 0);
	CU_ASSERT(memcmp(d->de_name, "name", 4) == 0);
	for (size_t i = 4; i < sizeof(d->de_name); i++)
		CU_ASSERT_EQUAL_FATAL(d->de_name[i], 0);
	CU_ASSERT_EQUAL(fmt_dirent_decode(d, &de), 0);
	CU_ASSERT_EQUAL(de.ino, 0x1122334455667788ull);
	CU_ASSERT_STRING_EQUAL(de.name, "name");
	CU_ASSERT_EQUAL(fmt_dirent_ino(d), de.ino);
	CU_ASSERT_EQUAL(fmt_dirent_hash(d), de.hash);

	/* Re-encoding from its own name (fsck re-hashing) keeps the name. */
	fmt_dirent_set_hash(d, 1);
	CU_ASSERT_EQUAL(fmt_dirent_decode(d, &de), -VMFS_E_CORRUPT);
	fmt_dirent_encode(d, de.ino, d->de_name, d->de_name_len, de.type);
	CU_ASSERT_EQUAL(fmt_dirent_decode(d, &de), 0);
	CU_ASSERT_STRING_EQUAL(de.name, "name");

	/* A NUL in the name, an empty name: refused; an empty slot: fine. */
	fmt_dirent_encode(d, 7, "a\0b", 3, 8);
	CU_ASSERT_EQUAL(fmt_dirent_decode(d, &de), -VMFS_E_CORRUPT);
	fmt_dirent_encode(d, 7, "", 0, 8);
	CU_ASSERT_EQUAL(fmt_dirent_decode(d, &de), -VMFS_E_CORRUPT);
	fmt_dirent_set_ino(d, 0);
	CU_ASSERT_EQUAL(fmt_dirent_decode(d, &de), 0);

	fmt_dirblk_encode(&in, &db);
	CU_ASSERT_EQUAL(le_at(&db, 0x10, 8), 5);
	CU_ASSERT_EQUAL(le_at(&db, 0x20, 8), in.dir_ino);
	CU_ASSERT_EQUAL(le_at(&db, 0x28, 4), in.chunk);
	CU_ASSERT_EQUAL(le_at(&db, 0x2c, 2), 14);
	CU_ASSERT_EQUAL(fmt_dirblk_decode(&db, &out), 0);
	CU_ASSERT(out.gen == in.gen && out.dir_ino == in.dir_ino &&
		  out.chunk == in.chunk && out.count == in.count);
	fmt_dirblk_set_count(&db, 15);
	CU_ASSERT_EQUAL(fmt_dirblk_count(&db), 15);
	CU_ASSERT_EQUAL(fmt_dirblk_decode(&db, &out), -VMFS_E_CORRUPT);
}

static void test_rc(void)
{
	static struct vmfs_rc d, d2;
	struct fmt_rc in = { .gen = 3, .type = VMFS_RES_FILE,
			     .index = 0x01020304, .nobjs = VMFS_RC_MAX_OBJS,
			     .nfree = 0x0a0b0c0d, .first_obj = 0x1122334455667788ull,
			     .flags = VMFS_RC_UNINIT }, out;

	memset(&d, 0xee, sizeof(d));
	fmt_rc_encode(&in, &d);
	CU_ASSERT_EQUAL(le_at(&d, 0x10, 8), 3);
	CU_ASSERT_EQUAL(le_at(&d, 0x20, 4), VMFS_RES_FILE);
	CU_ASSERT_EQUAL(le_at(&d, 0x24, 4), in.index);
	CU_ASSERT_EQUAL(le_at(&d, 0x28, 4), in.nobjs);
	CU_ASSERT_EQUAL(le_at(&d, 0x2c, 4), in.nfree);
	CU_ASSERT_EQUAL(le_at(&d, 0x30, 8), in.first_obj);
	CU_ASSERT_EQUAL(le_at(&d, 0x38, 4), VMFS_RC_UNINIT);
	CU_ASSERT_EQUAL(d.rc_bitmap[0], 0xee);
	/* nfree above nobjs is only a stale hint: decodes. */
	CU_ASSERT_EQUAL(fmt_rc_decode(&d, &out), 0);
	memcpy(&d2, &d, sizeof(d2));
	memset((uint8_t *)&d2 + 0x10, 0, 8);
	memset((uint8_t *)&d2 + 0x20, 0, 0x3c - 0x20);  /* rc_pad0 not ours */
	fmt_rc_encode(&out, &d2);
	CU_ASSERT(memcmp(&d2, &d, sizeof(d)) == 0);
	in.type = VMFS_RES_NTYPES;
	fmt_rc_encode(&in, &d);
	CU_ASSERT_EQUAL(fmt_rc_decode(&d, &out), -VMFS_E_CORRUPT);
	in.type = VMFS_RES_INODE;
	in.nobjs = VMFS_RC_MAX_OBJS + 1;
	fmt_rc_encode(&in, &d);
	CU_ASSERT_EQUAL(fmt_rc_decode(&d, &out), -VMFS_E_CORRUPT);
	CU_ASSERT_EQUAL(out.nobjs, VMFS_RC_MAX_OBJS + 1);
}

static void test_hb(void)
{
	static struct vmfs_hb_region r;
	static struct vmfs_hb_slot d, d2;
	struct fmt_hb_region rin = { .gen = 2, .nslots = 0x01020304,
				     .lease_ms = 0x05060708,
				     .renew_ms = 0x090a0b0c,
				     .slot0_offset = 0x1112131415161718ull }, rout;
	struct fmt_hb_slot in = {
		.gen = 4, .state = VMFS_HB_REPLAYING, .slot = 0x01020304,
		.hb_gen = 0x1112131415161718ull, .counter = 0x2122232425262728ull,
		.lease_ms = 0x31323334, .renew_ms = 0x41424344,
		.journal_offset = 0x5152535455565758ull,
		.journal_size = 0x6162636465666768ull,
		.vm_free_mib = 0x7172737475767778ull,
		.flags = 0x81828384, .want_seq = 0x85868788,
		.want_addr = 0x9192939495969798ull,
		.busy_slot = 0xa1a2a3a4, .busy_seq = 0xa5a6a7a8,
		.busy_addr = 0xb1b2b3b4b5b6b7b8ull,
	}, out;

	fmt_hb_region_encode(&rin, &r);
	CU_ASSERT_EQUAL(le_at(&r, 0x10, 8), 2);
	CU_ASSERT_EQUAL(le_at(&r, 0x20, 4), rin.nslots);
	CU_ASSERT_EQUAL(le_at(&r, 0x24, 4), rin.lease_ms);
	CU_ASSERT_EQUAL(le_at(&r, 0x28, 4), rin.renew_ms);
	CU_ASSERT_EQUAL(le_at(&r, 0x30, 8), rin.slot0_offset);
	CU_ASSERT_EQUAL(fmt_hb_region_decode(&r, &rout), 0);
	CU_ASSERT(rout.gen == 2 && rout.nslots == rin.nslots &&
		  rout.lease_ms == rin.lease_ms &&
		  rout.renew_ms == rin.renew_ms &&
		  rout.slot0_offset == rin.slot0_offset);
	rin.renew_ms = 0;
	fmt_hb_region_encode(&rin, &r);
	CU_ASSERT_EQUAL(fmt_hb_region_decode(&r, &rout), -VMFS_E_CORRUPT);

	for (int i = 0; i < VMFS_UUID_SIZE; i++)
		in.host_uuid[i] = (uint8_t)(0x80 + i);
	/* A name may fill its field with no NUL; the other is short. */
	memset(in.addr, 'a', sizeof(in.addr) - 1);
	in.addr[sizeof(in.addr) - 1] = 0;
	snprintf(in.hostname, sizeof(in.hostname), "host-1");
	memset(&d, 0xee, sizeof(d));
	fmt_hb_slot_encode(&in, &d);
	CU_ASSERT_EQUAL(le_at(&d, 0x10, 8), 4);
	CU_ASSERT_EQUAL(le_at(&d, 0x20, 4), VMFS_HB_REPLAYING);
	CU_ASSERT_EQUAL(le_at(&d, 0x24, 4), in.slot);
	CU_ASSERT_EQUAL(le_at(&d, 0x28, 8), in.hb_gen);
	CU_ASSERT_EQUAL(le_at(&d, 0x30, 8), in.counter);
	CU_ASSERT_EQUAL(le_at(&d, 0x38, 4), in.lease_ms);
	CU_ASSERT_EQUAL(le_at(&d, 0x3c, 4), in.renew_ms);
	CU_ASSERT(memcmp((uint8_t *)&d + 0x40, in.host_uuid, 16) == 0);
	CU_ASSERT_EQUAL(le_at(&d, 0x50, 8), in.journal_offset);
	CU_ASSERT_EQUAL(le_at(&d, 0x58, 8), in.journal_size);
	CU_ASSERT(memcmp(d.hs_addr, in.addr, sizeof(d.hs_addr)) == 0);
	CU_ASSERT(memcmp(d.hs_hostname, "host-1\0\0", 8) == 0);
	CU_ASSERT_EQUAL(d.hs_hostname[63], 0);
	CU_ASSERT_EQUAL(le_at(&d, 0xe0, 8), in.vm_free_mib);
	CU_ASSERT_EQUAL(le_at(&d, 0xe8, 4), in.flags);
	CU_ASSERT_EQUAL(le_at(&d, 0xec, 4), in.want_seq);
	CU_ASSERT_EQUAL(le_at(&d, 0xf0, 8), in.want_addr);
	CU_ASSERT_EQUAL(le_at(&d, 0xf8, 4), in.busy_slot);
	CU_ASSERT_EQUAL(le_at(&d, 0xfc, 4), in.busy_seq);
	CU_ASSERT_EQUAL(le_at(&d, 0x100, 8), in.busy_addr);
	CU_ASSERT_EQUAL(d.hs_reserved[0], 0xee);
	/* Renewal is a compare-and-write of these bytes: exact round trip. */
	CU_ASSERT_EQUAL(fmt_hb_slot_decode(&d, &out), 0);
	CU_ASSERT_STRING_EQUAL(out.addr, in.addr);
	CU_ASSERT_STRING_EQUAL(out.hostname, "host-1");
	CU_ASSERT(out.vm_free_mib == in.vm_free_mib);
	CU_ASSERT(out.flags == in.flags && out.want_seq == in.want_seq &&
		  out.want_addr == in.want_addr &&
		  out.busy_slot == in.busy_slot &&
		  out.busy_seq == in.busy_seq && out.busy_addr == in.busy_addr);
	memset(&d2, 0xee, sizeof(d2));
	memset(&d2, 0, 0x108);
	memcpy(&d2, &d, 0x10);
	memcpy((uint8_t *)&d2 + 0x18, (uint8_t *)&d + 0x18, 8);
	fmt_hb_slot_encode(&out, &d2);
	CU_ASSERT(memcmp(&d2, &d, sizeof(d)) == 0);
	in.state = VMFS_HB_REPLAYING + 1;
	fmt_hb_slot_encode(&in, &d);
	CU_ASSERT_EQUAL(fmt_hb_slot_decode(&d, &out), -VMFS_E_CORRUPT);
}

static void test_lock(void)
{
	static struct vmfs_lock d, d2;
	struct fmt_lock in = { .gen = 0x0102030405060708ull,
			       .mode = VMFS_LOCK_MULTIWRITER, .nholders = 2,
			       .owner_slot = 0x11121314,
			       .owner_hb_gen = 0x2122232425262728ull }, out;

	for (int i = 0; i < VMFS_UUID_SIZE; i++)
		in.owner_uuid[i] = (uint8_t)(0x40 + i);
	for (int h = 0; h < VMFS_LOCK_MAX_HOLDERS; h++) {
		in.holders[h].uuid[0] = (uint8_t)h;
		in.holders[h].slot = 0x31323300u + (uint32_t)h;
		in.holders[h].hb_gen = 0x4142434445464700ull + (uint64_t)h;
	}
	memset(&d, 0xee, sizeof(d));
	fmt_lock_encode(&in, &d);
	CU_ASSERT_EQUAL(le_at(&d, 0x10, 8), in.gen);
	CU_ASSERT_EQUAL(le_at(&d, 0x20, 4), VMFS_LOCK_MULTIWRITER);
	CU_ASSERT_EQUAL(le_at(&d, 0x24, 4), 2);
	CU_ASSERT_EQUAL(le_at(&d, 0x28, 8), in.owner_hb_gen);
	CU_ASSERT(memcmp((uint8_t *)&d + 0x30, in.owner_uuid, 16) == 0);
	CU_ASSERT_EQUAL(le_at(&d, 0x40, 4), in.owner_slot);
	/* Holder 12, the last: at 0x48 + 12 * 0x20. */
	CU_ASSERT_EQUAL(((uint8_t *)&d)[0x1c8], 12);
	CU_ASSERT_EQUAL(le_at(&d, 0x1d8, 4), 0x3132330cu);
	CU_ASSERT_EQUAL(le_at(&d, 0x1e0, 8), 0x414243444546470cull);
	CU_ASSERT_EQUAL(le_at(&d, 0x44, 4), 0xeeeeeeeeu);  /* lk_pad kept */
	CU_ASSERT_EQUAL(fmt_lock_decode(&d, &out), 0);
	/* A record changes by compare-and-write: exact round trip. */
	memcpy(&d2, &d, sizeof(d2));
	memset((uint8_t *)&d2 + 0x10, 0, 8);
	memset((uint8_t *)&d2 + 0x20, 0, 0x24);
	for (int h = 0; h < VMFS_LOCK_MAX_HOLDERS; h++) {
		memset(&d2.lk_holders[h].lh_uuid, 0, 0x14);
		d2.lk_holders[h].lh_hb_gen = 0;
	}
	fmt_lock_encode(&out, &d2);
	CU_ASSERT(memcmp(&d2, &d, sizeof(d)) == 0);
	in.mode = VMFS_LOCK_MULTIWRITER + 1;
	fmt_lock_encode(&in, &d);
	CU_ASSERT_EQUAL(fmt_lock_decode(&d, &out), -VMFS_E_CORRUPT);
	in.mode = VMFS_LOCK_READONLY;
	in.nholders = VMFS_LOCK_MAX_HOLDERS + 1;
	fmt_lock_encode(&in, &d);
	CU_ASSERT_EQUAL(fmt_lock_decode(&d, &out), -VMFS_E_CORRUPT);
	CU_ASSERT_EQUAL(out.nholders, VMFS_LOCK_MAX_HOLDERS + 1);
}

static void test_jnl(void)
{
	static struct vmfs_jnl_hdr h;
	static struct vmfs_jnl_desc d;
	static struct vmfs_jnl_commit c;
	struct fmt_jnl_hdr hin = { .gen = 1, .slot = 0x01020304,
				   .state = VMFS_JNL_DIRTY,
				   .size_bytes = 0x1112131415161718ull,
				   .tail = 0x2122232425262728ull,
				   .head = 0x3132333435363738ull,
				   .seq = 0x4142434445464748ull,
				   .jid = 0x5152535455565758ull }, hout;
	struct fmt_jnl_desc din = { .gen = 2, .seq = 0x0102030405060708ull,
				    .jid = 0x1112131415161718ull,
				    .ntags = VMFS_JNL_TAGS_PER_DESC,
				    .index = 0x21222324 }, dout;
	struct fmt_jnl_commit cin = { .gen = 3, .seq = 0x0102030405060708ull,
				      .jid = 0x1112131415161718ull,
				      .nblocks = 0x21222324, .crc = 0x31323334,
				      .time_ns = -5, .nimages = 0x41424344 },
			      cout;
	uint64_t addr;
	uint32_t flags;

	fmt_jnl_hdr_encode(&hin, &h);
	CU_ASSERT_EQUAL(le_at(&h, 0x10, 8), 1);
	CU_ASSERT_EQUAL(le_at(&h, 0x20, 4), hin.slot);
	CU_ASSERT_EQUAL(le_at(&h, 0x24, 4), VMFS_JNL_DIRTY);
	CU_ASSERT_EQUAL(le_at(&h, 0x28, 8), hin.size_bytes);
	CU_ASSERT_EQUAL(le_at(&h, 0x30, 8), hin.tail);
	CU_ASSERT_EQUAL(le_at(&h, 0x38, 8), hin.head);
	CU_ASSERT_EQUAL(le_at(&h, 0x40, 8), hin.seq);
	CU_ASSERT_EQUAL(le_at(&h, 0x48, 8), hin.jid);
	CU_ASSERT_EQUAL(fmt_jnl_hdr_decode(&h, &hout), 0);
	CU_ASSERT(hout.gen == 1 && hout.slot == hin.slot &&
		  hout.state == hin.state && hout.size_bytes == hin.size_bytes &&
		  hout.tail == hin.tail && hout.head == hin.head &&
		  hout.seq == hin.seq && hout.jid == hin.jid);
	hin.state = VMFS_JNL_DIRTY + 1;
	fmt_jnl_hdr_encode(&hin, &h);
	CU_ASSERT_EQUAL(fmt_jnl_hdr_decode(&h, &hout), -VMFS_E_CORRUPT);

	fmt_jnl_desc_encode(&din, &d);
	fmt_jnl_tag_set(&d, VMFS_JNL_TAGS_PER_DESC - 1, 0x6162636465666768ull,
			VMFS_JNL_TAG_LOCKABLE);
	CU_ASSERT_EQUAL(le_at(&d, 0x10, 8), 2);
	CU_ASSERT_EQUAL(le_at(&d, 0x20, 8), din.seq);
	CU_ASSERT_EQUAL(le_at(&d, 0x28, 8), din.jid);
	CU_ASSERT_EQUAL(le_at(&d, 0x30, 4), VMFS_JNL_TAGS_PER_DESC);
	CU_ASSERT_EQUAL(le_at(&d, 0x34, 4), din.index);
	CU_ASSERT_EQUAL(le_at(&d, 0x40 + 251 * 16, 8), 0x6162636465666768ull);
	CU_ASSERT_EQUAL(le_at(&d, 0x48 + 251 * 16, 4), VMFS_JNL_TAG_LOCKABLE);
	fmt_jnl_tag_get(&d, VMFS_JNL_TAGS_PER_DESC - 1, &addr, &flags);
	CU_ASSERT(addr == 0x6162636465666768ull && flags == VMFS_JNL_TAG_LOCKABLE);
	CU_ASSERT_EQUAL(fmt_jnl_desc_decode(&d, &dout), 0);
	CU_ASSERT(dout.gen == 2 && dout.seq == din.seq && dout.jid == din.jid &&
		  dout.ntags == din.ntags && dout.index == din.index);
	for (uint32_t bad = 0; bad <= VMFS_JNL_TAGS_PER_DESC + 1;
	     bad += VMFS_JNL_TAGS_PER_DESC + 1) {  /* 0 and 253 */
		din.ntags = bad;
		fmt_jnl_desc_encode(&din, &d);
		CU_ASSERT_EQUAL(fmt_jnl_desc_decode(&d, &dout), -VMFS_E_CORRUPT);
	}

	fmt_jnl_commit_encode(&cin, &c);
	CU_ASSERT_EQUAL(le_at(&c, 0x10, 8), 3);
	CU_ASSERT_EQUAL(le_at(&c, 0x20, 8), cin.seq);
	CU_ASSERT_EQUAL(le_at(&c, 0x28, 8), cin.jid);
	CU_ASSERT_EQUAL(le_at(&c, 0x30, 4), cin.nblocks);
	CU_ASSERT_EQUAL(le_at(&c, 0x34, 4), cin.crc);
	CU_ASSERT_EQUAL(le_at(&c, 0x38, 8), UINT64_MAX - 4);
	CU_ASSERT_EQUAL(le_at(&c, 0x40, 4), cin.nimages);
	fmt_jnl_commit_decode(&c, &cout);
	CU_ASSERT(cout.gen == 3 && cout.seq == cin.seq && cout.jid == cin.jid &&
		  cout.nblocks == cin.nblocks && cout.crc == cin.crc &&
		  cout.time_ns == -5 && cout.nimages == cin.nimages);
}

static CU_TestInfo tests[] = {
	{ "hdr", test_hdr },
	{ "ptr", test_ptr },
	{ "inode", test_inode },
	{ "xattr_rec", test_xattr_rec },
	{ "ptrblk", test_ptrblk },
	{ "dirent", test_dirent },
	{ "rc", test_rc },
	{ "hb", test_hb },
	{ "lock", test_lock },
	{ "jnl", test_jnl },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE("codec", NULL, NULL, tests);
