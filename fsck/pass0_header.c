/*
 * Pass 0: the volume header.
 *
 * Checks, in order:
 *   - the primary header (offset 0) and the backup (vh_backup_offset of a
 *     good primary, else the last 4 KiB of the LUN): envelope (magic,
 *     version, self, crc) and a geometry that is possible (the same rules
 *     as the engine's vol_geom_check: areas in order, aligned, inside the
 *     volume, counts matching their clusters);
 *   - both usable: the copies agree (everything after the block header);
 *   - only one usable: the other is restored from it (PR_0_PRIMARY_BAD,
 *     PR_0_BACKUP_BAD), after the liveness survey, so nothing is written
 *     to a volume another host has mounted;
 *   - neither usable: PR_0_NOT_VOLUME (no magic anywhere, exit 8) or
 *     PR_0_GEOMETRY (exit 4); later passes do not run.
 *   A header of a newer format major is an operational error: this fsck
 *   must not touch what it cannot understand.
 *
 * Hands on: c->g, the geometry every later pass trusts and checks each
 * index against; c->slots[].live and c->nlive from fsck_hosts_survey()
 * (pass1_hb.c), which refuses repairs while a host is live without
 * --force.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "fsck_int.h"

/* Read and check one copy.  Returns 0, -VMFS_E_GEOMETRY or an envelope
 * error; *magic gets what was found. */
static int hdr_load(struct fsck_ctx *c, uint64_t off, uint8_t *blk,
		    struct vol_geom *g, uint32_t *magic)
{
	const struct vmfs_volume *d = (const struct vmfs_volume *)blk;
	struct fmt_hdr h;
	int ret;

	*magic = 0;
	ret = fsck_read(c, blk, VMFS_MD_BLOCK_SIZE, off);
	if (ret)
		return ret;
	fmt_hdr_decode(&d->vh_hdr, &h);
	*magic = h.magic;
	ret = lun_md_verify(&d->vh_hdr, VMFS_MAGIC_VOLUME, off,
			    VMFS_MD_BLOCK_SIZE);
	if (ret)
		return ret;
	vol_geom_from_disk(d, g);
	return vol_geom_check(g, lun_size(c->lun));
}

/* Write copy src (a verified header) at off. */
static int hdr_copy(struct fsck_ctx *c, const uint8_t *src, uint64_t off)
{
	uint8_t *blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	struct vmfs_volume *d = (struct vmfs_volume *)blk;
	int ret;

	if (!blk)
		return -ENOMEM;
	memcpy(blk, src, VMFS_MD_BLOCK_SIZE);
	lun_md_seal(&d->vh_hdr, VMFS_MAGIC_VOLUME, off, VMFS_MD_BLOCK_SIZE);
	ret = fsck_write_md(c, blk, VMFS_MD_BLOCK_SIZE, off);
	lun_buf_free(blk);
	return ret;
}

int fsck_pass0(struct fsck_ctx *c)
{
	uint64_t size = lun_size(c->lun);
	uint8_t *b0 = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	uint8_t *b1 = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	struct vol_geom g0, g1;
	uint32_t m0 = 0, m1 = 0;
	uint64_t boff;
	int r0, r1, ret = 0;

	if (!b0 || !b1) {
		fsck_fail(c, -ENOMEM, "pass 0");
		ret = -ENOMEM;
		goto out;
	}
	if (size < 2 * VMFS_MD_BLOCK_SIZE) {
		fsck_unfixed(c, PR_0_NOT_VOLUME, 0, "the LUN holds only %llu bytes",
			     (unsigned long long)size);
		fsck_fail(c, 0, "not a vmfs volume (the LUN holds only %llu bytes)",
			  (unsigned long long)size);
		c->r->exit_code &= ~FSCK_EXIT_UNCORRECTED;
		ret = -VMFS_E_NOT_VOLUME;
		goto out;
	}
	r0 = hdr_load(c, 0, b0, &g0, &m0);
	boff = !r0 ? g0.backup_offset
		   : (size & ~(uint64_t)(VMFS_MD_BLOCK_SIZE - 1)) - VMFS_MD_BLOCK_SIZE;
	r1 = c->abort ? -EIO : hdr_load(c, boff, b1, &g1, &m1);
	if (c->abort) {
		ret = -EIO;
		goto out;
	}
	if (r0 == -VMFS_E_BAD_VERSION || r1 == -VMFS_E_BAD_VERSION) {
		fsck_fail(c, 0, "the volume has a newer on-disk format than this "
			  "fsck understands (%d.x); use a newer vmfs",
			  VMFS_FORMAT_MAJOR);
		ret = -VMFS_E_BAD_VERSION;
		goto out;
	}
	if (r0 && r1) {
		if (m0 != VMFS_MAGIC_VOLUME && m1 != VMFS_MAGIC_VOLUME) {
			fsck_unfixed(c, PR_0_NOT_VOLUME, 0,
				     "magic 0x%08x at offset 0 and 0x%08x at %llu",
				     m0, m1, (unsigned long long)boff);
			fsck_fail(c, 0, "not a vmfs volume (no header at offset 0 "
				  "nor in the backup place); run 'vmfs mkfs' to create one");
			/* Nothing to check is an operational error, not damage left. */
			c->r->exit_code &= ~FSCK_EXIT_UNCORRECTED;
			ret = -VMFS_E_NOT_VOLUME;
		} else {
			char e0[256];

			snprintf(e0, sizeof(e0), "%s", fsck_err(r0));
			fsck_unfixed(c, PR_0_GEOMETRY, 0,
				     "primary: %s; backup at %llu: %s", e0,
				     (unsigned long long)boff, fsck_err(r1));
			ret = 1;  /* exit 4: nothing later can be trusted */
		}
		goto out;
	}
	c->g = !r0 ? g0 : g1;
	c->header_which = r0 ? 1 : 0;

	ret = fsck_hosts_survey(c);
	if (ret || c->abort)
		goto out;

	if (!r0 && r1) {
		if (fsck_fix(c, PR_0_BACKUP_BAD, boff, "backup at %llu: %s",
			     (unsigned long long)boff, fsck_err(r1)))
			ret = hdr_copy(c, b0, boff);
	} else if (r0 && !r1) {
		if (fsck_fix(c, PR_0_PRIMARY_BAD, 0, "offset 0: %s; backup at %llu is good",
			     fsck_err(r0), (unsigned long long)boff))
			ret = hdr_copy(c, b1, 0);
	} else if (memcmp(b0 + sizeof(struct vmfs_blk_hdr),
			  b1 + sizeof(struct vmfs_blk_hdr),
			  VMFS_MD_BLOCK_SIZE - sizeof(struct vmfs_blk_hdr))) {
		if (fsck_fix(c, PR_0_HEADERS_DIFFER, boff,
			     "backup at %llu differs from the primary",
			     (unsigned long long)boff))
			ret = hdr_copy(c, b0, boff);
	}
out:
	lun_buf_free(b0);
	lun_buf_free(b1);
	return ret;
}
