/*
 * Corruption tool, passes 0-2: the volume header and its backup, the
 * heartbeat region and its slots, lock records, journal headers.
 *
 * None of this damage touches a file's name or data, so none of these
 * functions names a target path: a repair must leave every file as it
 * was (PR_0_NOT_VOLUME and PR_0_GEOMETRY excepted: the volume is gone).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "corrupt_int.h"
#include "vmfs/lockmgr.h"

/* ---- pass 0: volume header ------------------------------------------------- */

/* PR_0_PRIMARY_BAD: the primary header at offset 0 fails verification
 * (crc, magic or self address); the backup is intact. */
int corrupt_pr0_primary_bad(struct corrupt *c)
{
	const char *how;
	int ret = corrupt_break(c, 0, CK_VOLUME, &how);

	corrupt_say(c, "primary volume header at 0: %s", how);
	return ret;
}

/* PR_0_BACKUP_BAD: the backup header fails verification; the primary
 * is intact. */
int corrupt_pr0_backup_bad(struct corrupt *c)
{
	const char *how;
	int ret = corrupt_break(c, c->g.backup_offset, CK_VOLUME, &how);

	corrupt_say(c, "backup volume header at %llu: %s",
		    (unsigned long long)c->g.backup_offset, how);
	return ret;
}

/* Reseal a volume header copy where it is, generation unchanged, so the
 * copies differ only in what the caller changed. */
static int header_put(struct corrupt *c, uint64_t off)
{
	struct vmfs_volume *vh = (struct vmfs_volume *)c->blk;

	lun_md_seal(&vh->vh_hdr, VMFS_MAGIC_VOLUME, off, VMFS_MD_BLOCK_SIZE);
	return corrupt_write(c, c->blk, off);
}

/* PR_0_HEADERS_DIFFER: both copies verify, but the backup's label or
 * creation time differs from the primary's (resealed). */
int corrupt_pr0_headers_differ(struct corrupt *c)
{
	struct vmfs_volume *vh = (struct vmfs_volume *)c->blk;
	uint64_t off = c->g.backup_offset;
	int ret = corrupt_read(c, c->blk, off);

	if (ret)
		return ret;
	if (corrupt_pick(c, 2)) {
		uint64_t delta = 1 + corrupt_pick(c, 1000000000ull);
		struct vol_geom g;

		vol_geom_from_disk(vh, &g);
		g.ctime_ns += (int64_t)delta;
		vol_geom_to_disk(&g, vh);
		corrupt_say(c, "backup volume header at %llu: creation time +%llu ns",
			    (unsigned long long)off, (unsigned long long)delta);
	} else {
		char label[VMFS_LABEL_SIZE + 1];

		snprintf(label, sizeof(label), "differs-%04u",
			 (unsigned)corrupt_pick(c, 10000));
		memset(vh->vh_label, 0, sizeof(vh->vh_label));
		memcpy(vh->vh_label, label, strlen(label));
		corrupt_say(c, "backup volume header at %llu: label '%s' (primary '%s')",
			    (unsigned long long)off, label, c->g.label);
	}
	c->target = off;
	return header_put(c, off);
}

/* PR_0_NOT_VOLUME: both header copies zeroed; nothing says "vmfs". */
int corrupt_pr0_not_volume(struct corrupt *c)
{
	uint64_t last = (lun_size(c->lun) & ~(uint64_t)(VMFS_MD_BLOCK_SIZE - 1)) -
			VMFS_MD_BLOCK_SIZE;
	int ret;

	memset(c->blk, 0, VMFS_MD_BLOCK_SIZE);
	ret = corrupt_write(c, c->blk, 0);
	if (!ret)
		ret = corrupt_write(c, c->blk, c->g.backup_offset);
	if (!ret && last != c->g.backup_offset)
		ret = corrupt_write(c, c->blk, last);
	c->target = 0;
	corrupt_say(c, "both volume headers zeroed (0 and %llu)",
		    (unsigned long long)c->g.backup_offset);
	return ret;
}

/*
 * PR_0_GEOMETRY: both copies verify but describe an impossible layout:
 * a file block size that is not a power of two, no host slots, or the
 * small-block area on top of the inode area.
 */
int corrupt_pr0_geometry(struct corrupt *c)
{
	const uint64_t offs[2] = { 0, c->g.backup_offset };
	struct vmfs_volume *vh = (struct vmfs_volume *)c->blk;
	unsigned how = (unsigned)corrupt_pick(c, 3);
	int ret = 0;

	for (int i = 0; i < 2 && !ret; i++) {
		struct vol_geom g;

		ret = corrupt_read(c, c->blk, offs[i]);
		if (ret)
			break;
		vol_geom_from_disk(vh, &g);
		switch (how) {
		case 0: {
			uint32_t bs = g.file_block_size * 3 / 2;

			g.file_block_size = bs;
			g.res[VMFS_RES_FILE].obj_size = bs;
			corrupt_say(c, "both volume headers: file block size %u (not a power of two)",
				    bs);
			break;
		}
		case 1:
			g.max_hosts = 0;
			corrupt_say(c, "both volume headers: max hosts 0");
			break;
		default:
			g.res[VMFS_RES_SMALL].obj_offset =
				g.res[VMFS_RES_INODE].obj_offset;
			corrupt_say(c, "both volume headers: small-block area overlaps the inode area at %llu",
				    (unsigned long long)c->g.res[VMFS_RES_INODE].obj_offset);
			break;
		}
		vol_geom_to_disk(&g, vh);
		ret = header_put(c, offs[i]);
	}
	c->target = 0;
	return ret;
}

/* ---- pass 1: heartbeat region, slots, lock records ------------------------- */

/* Address of slot i: from the region header when it verifies. */
static uint64_t slot_addr(struct corrupt *c, uint32_t i)
{
	uint8_t *b = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	uint64_t slot0 = c->g.hb_offset + VMFS_MD_BLOCK_SIZE;

	if (b && !corrupt_read(c, b, c->g.hb_offset)) {
		const struct vmfs_hb_region *hr = (const struct vmfs_hb_region *)
			(b + VMFS_OBJ_OFFSET);
		struct fmt_hb_region h;

		if (!lun_md_verify(&hr->hr_hdr, VMFS_MAGIC_HBREGION,
				   c->g.hb_offset,
				   VMFS_MD_BLOCK_SIZE - VMFS_OBJ_OFFSET)) {
			(void)fmt_hb_region_decode(hr, &h);
			slot0 = h.slot0_offset;
		}
	}
	lun_buf_free(b);
	return slot0 + (uint64_t)i * VMFS_MD_BLOCK_SIZE;
}

/* Slots that verify and are FREE (all-zero slots count as free). */
static int free_slots(struct corrupt *c, struct corrupt_vec *out)
{
	uint8_t *b = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	const struct vmfs_hb_slot *hs = (const struct vmfs_hb_slot *)b;
	int ret = 0;

	if (!b)
		return -ENOMEM;
	for (uint32_t i = 0; i < c->g.max_hosts && !ret; i++) {
		uint64_t addr = slot_addr(c, i);
		static const uint8_t zero[sizeof(struct vmfs_hb_slot)];
		struct fmt_hb_slot h;

		ret = corrupt_read(c, b, addr);
		if (ret)
			break;
		(void)fmt_hb_slot_decode(hs, &h);
		if (!memcmp(b, zero, sizeof(zero)) ||
		    (!lun_md_verify(&hs->hs_hdr, VMFS_MAGIC_HBSLOT, addr,
				    sizeof(*hs)) && h.state == VMFS_HB_FREE))
			ret = corrupt_vec_push(out, i);
	}
	lun_buf_free(b);
	return ret;
}

/* PR_1_HB_REGION_BAD: the heartbeat-region header fails verification. */
int corrupt_pr1_hb_region_bad(struct corrupt *c)
{
	const char *how;
	int ret = corrupt_break(c, c->g.hb_offset, CK_HBREGION, &how);

	corrupt_say(c, "heartbeat region header at %llu: %s",
		    (unsigned long long)c->g.hb_offset, how);
	return ret;
}

/* PR_1_HB_SLOT_BAD: one heartbeat slot block fails verification. */
int corrupt_pr1_hb_slot_bad(struct corrupt *c)
{
	uint32_t i = (uint32_t)corrupt_pick(c, c->g.max_hosts);
	uint64_t addr = slot_addr(c, i);
	const char *how;
	int ret = corrupt_break(c, addr, CK_HBSLOT, &how);

	corrupt_say(c, "heartbeat slot %u at %llu: %s", i,
		    (unsigned long long)addr, how);
	return ret;
}

static void random_uuid(struct corrupt *c, uint8_t *u)
{
	for (int i = 0; i < VMFS_UUID_SIZE; i++)
		u[i] = (uint8_t)corrupt_rand(c);
	u[6] = (u[6] & 0x0f) | 0x40;
	u[8] = (u[8] & 0x3f) | 0x80;
}

/*
 * PR_1_HB_SLOT_STALE: a free slot made ACTIVE for a host uuid nobody
 * has, as a host that crashed while mounted leaves it: sealed, counter
 * frozen, advertising a 1 s lease so the checker need not wait long.
 */
int corrupt_pr1_hb_slot_stale(struct corrupt *c)
{
	struct vmfs_hb_slot *hs = (struct vmfs_hb_slot *)c->blk;
	struct corrupt_vec fs = { 0 };
	struct fmt_hb_slot h;
	uint64_t addr, gen = 0;
	uint32_t i;
	char uuid[37];
	int ret = free_slots(c, &fs);

	if (!ret && !fs.n)
		ret = -ENOENT;
	if (ret)
		goto out;
	i = (uint32_t)fs.v[corrupt_pick(c, fs.n)];
	addr = slot_addr(c, i);
	ret = corrupt_read(c, c->blk, addr);
	if (ret)
		goto out;
	(void)fmt_hb_slot_decode(hs, &h);
	if (!lun_md_verify(&hs->hs_hdr, VMFS_MAGIC_HBSLOT, addr, sizeof(*hs)))
		gen = h.hb_gen;
	h = (struct fmt_hb_slot){
		.gen = gen + 1, .state = VMFS_HB_ACTIVE, .slot = i,
		.hb_gen = gen + 1, .counter = 1 + corrupt_pick(c, 100000),
		.lease_ms = 1000, .renew_ms = 200,
		.journal_offset = c->g.journal_offset +
				  (uint64_t)i * c->g.journal_size_bytes,
		.journal_size = c->g.journal_size_bytes,
	};
	random_uuid(c, h.host_uuid);
	snprintf(h.hostname, sizeof(h.hostname) - 1, "crashed-host-%u", i);
	memset(hs, 0, sizeof(*hs));
	fmt_hb_slot_encode(&h, hs);
	corrupt_seal(c->blk, CK_HBSLOT, addr);
	ret = corrupt_write(c, c->blk, addr);
	c->target = addr;
	vol_uuid_format(hs->hs_host_uuid, uuid);
	corrupt_say(c, "heartbeat slot %u at %llu: ACTIVE for host %s, never renewed",
		    i, (unsigned long long)addr, uuid);
out:
	corrupt_vec_free(&fs);
	return ret;
}

/*
 * Every lockable block: the heartbeat-region header, the journal
 * headers, every cluster header and every allocated inode.
 */
static int lockables(struct corrupt *c, struct corrupt_vec *out)
{
	int ret = corrupt_load(c);

	if (!ret)
		ret = corrupt_vec_push(out, c->g.hb_offset);
	for (uint32_t s = 0; s < c->g.max_hosts && !ret; s++)
		ret = corrupt_vec_push(out, c->g.journal_offset +
				       (uint64_t)s * c->g.journal_size_bytes);
	for (int t = 0; t < VMFS_RES_NTYPES && !ret; t++)
		for (uint32_t cl = 0; cl < c->g.res[t].nclusters && !ret; cl++)
			ret = corrupt_vec_push(out, corrupt_rc_addr(c, t, cl));
	for (size_t i = 0; i < c->nnodes && !ret; i++)
		ret = corrupt_vec_push(out, corrupt_inode_addr(c, c->nodes[i].ino));
	return ret;
}

/* What the lockable block at addr is, for the hint. */
static void lockable_name(struct corrupt *c, uint64_t addr, char *buf,
			  size_t len)
{
	const struct vol_res_geom *ri = &c->g.res[VMFS_RES_INODE];

	if (addr == c->g.hb_offset) {
		snprintf(buf, len, "heartbeat region header");
	} else if (addr >= c->g.journal_offset &&
		   addr < c->g.journal_offset +
			  (uint64_t)c->g.max_hosts * c->g.journal_size_bytes) {
		snprintf(buf, len, "journal header of slot %llu",
			 (unsigned long long)((addr - c->g.journal_offset) /
					      c->g.journal_size_bytes));
	} else if (addr >= ri->obj_offset &&
		   addr < ri->obj_offset + ri->count * VMFS_MD_BLOCK_SIZE) {
		uint64_t ino = (addr - ri->obj_offset) / VMFS_MD_BLOCK_SIZE;

		snprintf(buf, len, "inode %llu (%s)", (unsigned long long)ino,
			 corrupt_path(c, ino));
	} else {
		snprintf(buf, len, "cluster header");
		for (int t = 0; t < VMFS_RES_NTYPES; t++) {
			const struct vol_res_geom *r = &c->g.res[t];

			if (addr >= r->hdr_offset &&
			    addr < r->hdr_offset + (uint64_t)r->nclusters * VMFS_MD_BLOCK_SIZE)
				snprintf(buf, len, "%s cluster %llu header",
					 vol_res_name(t),
					 (unsigned long long)((addr - r->hdr_offset) /
							      VMFS_MD_BLOCK_SIZE));
		}
	}
}

static int pick_lockable(struct corrupt *c, uint64_t *addr)
{
	struct corrupt_vec v = { 0 };
	int ret = lockables(c, &v);

	if (!ret)
		*addr = v.v[corrupt_pick(c, v.n)];
	corrupt_vec_free(&v);
	return ret;
}

/* PR_1_LOCK_BAD: the lock record of some lockable block fails
 * verification; the object behind it is intact. */
int corrupt_pr1_lock_bad(struct corrupt *c)
{
	char what[300];
	const char *how;
	uint64_t addr;
	int ret = pick_lockable(c, &addr);

	if (ret)
		return ret;
	ret = corrupt_break(c, addr, CK_LOCK, &how);
	lockable_name(c, addr, what, sizeof(what));
	corrupt_say(c, "lock record of %s at %llu: %s", what,
		    (unsigned long long)addr, how);
	return ret;
}

/* Read the lock record at addr; *gen gets its generation (0 if unreadable). */
static int lock_load(struct corrupt *c, uint64_t addr, uint64_t *gen)
{
	struct lock_record lr;
	int ret = corrupt_read(c, c->blk, addr);

	*gen = 0;
	if (!ret && !lock_record_decode(c->blk, addr, &lr))
		*gen = lr.gen;
	return ret;
}

/* Seal the lock record in c->blk with generation gen and write it. */
static int lock_put(struct corrupt *c, uint64_t addr, uint64_t gen)
{
	struct vmfs_lock *lk = (struct vmfs_lock *)c->blk;

	fmt_hdr_set_gen(&lk->lk_hdr, gen);
	lun_md_seal(&lk->lk_hdr, VMFS_MAGIC_LOCK, addr, VMFS_LOCK_SIZE);
	c->target = addr;
	return corrupt_write(c, c->blk, addr);
}

/*
 * PR_1_LOCK_STALE: a sealed lock record held (exclusive, or shared by
 * one to three holders) by hosts whose heartbeat slots are free: what a
 * crashed host's locks look like after its slot was reset.
 */
int corrupt_pr1_lock_stale(struct corrupt *c)
{
	struct vmfs_lock *lk = (struct vmfs_lock *)c->blk;
	struct fmt_lock f = { 0 };
	struct corrupt_vec fs = { 0 };
	char what[300];
	uint64_t addr, gen;
	int ret = free_slots(c, &fs);

	if (!ret && !fs.n)
		ret = -ENOENT;
	if (!ret)
		ret = pick_lockable(c, &addr);
	if (!ret)
		ret = lock_load(c, addr, &gen);
	if (ret)
		goto out;
	lockable_name(c, addr, what, sizeof(what));
	memset(lk, 0, sizeof(*lk));
	if (corrupt_pick(c, 3)) {
		uint32_t slot = (uint32_t)fs.v[corrupt_pick(c, fs.n)];

		f.mode = VMFS_LOCK_EXCLUSIVE;
		random_uuid(c, f.owner_uuid);
		f.owner_slot = slot;
		f.owner_hb_gen = 1 + corrupt_pick(c, 5);
		corrupt_say(c, "lock record of %s at %llu: exclusive, owner in free slot %u",
			    what, (unsigned long long)addr, slot);
	} else {
		uint32_t n = 1 + (uint32_t)corrupt_pick(c, 3);

		f.mode = corrupt_pick(c, 2) ? VMFS_LOCK_READONLY :
					      VMFS_LOCK_MULTIWRITER;
		f.nholders = n;
		for (uint32_t i = 0; i < n; i++) {
			random_uuid(c, f.holders[i].uuid);
			f.holders[i].slot = (uint32_t)fs.v[corrupt_pick(c, fs.n)];
			f.holders[i].hb_gen = 1;
		}
		corrupt_say(c, "lock record of %s at %llu: %s, %u holders in free slots",
			    what, (unsigned long long)addr,
			    f.mode == VMFS_LOCK_READONLY ?
			    "read-only" : "multi-writer", n);
	}
	fmt_lock_encode(&f, lk);
	ret = lock_put(c, addr, gen + 1);
out:
	corrupt_vec_free(&fs);
	return ret;
}

/* PR_1_LOCK_BAD_MODE: a sealed lock record with a mode that does not
 * exist, or a shared mode with more holders than the record has room
 * for. */
int corrupt_pr1_lock_bad_mode(struct corrupt *c)
{
	struct vmfs_lock *lk = (struct vmfs_lock *)c->blk;
	struct fmt_lock f = { 0 };
	char what[300];
	uint64_t addr, gen;
	int ret = pick_lockable(c, &addr);

	if (!ret)
		ret = lock_load(c, addr, &gen);
	if (ret)
		return ret;
	lockable_name(c, addr, what, sizeof(what));
	memset(lk, 0, sizeof(*lk));
	if (corrupt_pick(c, 2)) {
		uint32_t mode = VMFS_LOCK_MULTIWRITER + 1 +
				(uint32_t)corrupt_pick(c, 60);

		f.mode = mode;
		corrupt_say(c, "lock record of %s at %llu: mode %u", what,
			    (unsigned long long)addr, mode);
	} else {
		uint32_t n = VMFS_LOCK_MAX_HOLDERS + 1 +
			     (uint32_t)corrupt_pick(c, 20);

		f.mode = VMFS_LOCK_READONLY;
		f.nholders = n;
		corrupt_say(c, "lock record of %s at %llu: read-only with %u holders",
			    what, (unsigned long long)addr, n);
	}
	fmt_lock_encode(&f, lk);
	return lock_put(c, addr, gen + 1);
}

/* ---- pass 2: journal headers ------------------------------------------------ */

static uint64_t jnl_addr(const struct corrupt *c, uint32_t s)
{
	return c->g.journal_offset + (uint64_t)s * c->g.journal_size_bytes;
}

/* PR_2_JOURNAL_BAD: one journal header fails verification. */
int corrupt_pr2_journal_bad(struct corrupt *c)
{
	uint32_t s = (uint32_t)corrupt_pick(c, c->g.max_hosts);
	const char *how;
	int ret = corrupt_break(c, jnl_addr(c, s), CK_JOURNAL, &how);

	corrupt_say(c, "journal header of slot %u at %llu: %s", s,
		    (unsigned long long)jnl_addr(c, s), how);
	return ret;
}

/* PR_2_JOURNAL_SLOT: a sealed journal header that names another slot,
 * or another region size, than where it sits. */
int corrupt_pr2_journal_slot(struct corrupt *c)
{
	struct vmfs_jnl_hdr *jh = (struct vmfs_jnl_hdr *)(c->blk + VMFS_OBJ_OFFSET);
	uint32_t s = (uint32_t)corrupt_pick(c, c->g.max_hosts);
	uint64_t addr = jnl_addr(c, s);
	struct fmt_jnl_hdr h;
	int ret = corrupt_read(c, c->blk, addr);

	if (ret)
		return ret;
	(void)fmt_jnl_hdr_decode(jh, &h);
	if (corrupt_pick(c, 2)) {
		uint32_t other = c->g.max_hosts > 1 ?
			(s + 1 + (uint32_t)corrupt_pick(c, c->g.max_hosts - 1)) %
			c->g.max_hosts : s + 1;

		h.slot = other;
		corrupt_say(c, "journal header of slot %u at %llu: names slot %u",
			    s, (unsigned long long)addr, other);
	} else {
		uint64_t size = c->g.journal_size_bytes +
				VMFS_MD_BLOCK_SIZE * (1 + corrupt_pick(c, 64));

		h.size_bytes = size;
		corrupt_say(c, "journal header of slot %u at %llu: size %llu, region is %llu",
			    s, (unsigned long long)addr, (unsigned long long)size,
			    (unsigned long long)c->g.journal_size_bytes);
	}
	fmt_jnl_hdr_encode(&h, jh);
	corrupt_seal(c->blk, CK_JOURNAL, addr);
	c->target = addr;
	return corrupt_write(c, c->blk, addr);
}
