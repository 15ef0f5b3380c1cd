/*
 * What else is on a LUN: filesystems, partition tables, LVM physical
 * volumes, RAID members, encrypted volumes, as libblkid knows them (what
 * mkfs.ext4 and mkfs.xfs consult before they overwrite a device).
 *
 * libblkid reads from a file descriptor; a LUN may be an iSCSI target.
 * So the LUN's first PROBE_HEAD and last PROBE_TAIL bytes are read
 * through the lun layer into a sparse memfd of the LUN's size, and
 * libblkid probes that.  Every signature libblkid knows sits in those
 * windows (superblocks in the first MiB, VMware's own VMFS at 1 MiB, MD
 * RAID 0.90/1.0, backup GPT and ZFS labels in the last 512 KiB).
 *
 * Wiping zeroes the sectors that hold each signature's magic, through
 * the lun layer, as wipefs(8) does: after mkfs --force nothing probes as
 * the old content any more, even a RAID superblock at the end of the LUN
 * that mkfs itself never writes.
 */
#include <blkid.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmfs/lun.h"
#include "cli.h"

#define PROBE_HEAD (2ull << 20)
#define PROBE_TAIL (1ull << 20)
#define PROBE_CHUNK (1u << 20)

/* Copy [off, off + len) of the LUN to the same offset of fd. */
static int probe_copy(struct lun *lun, int fd, uint64_t off, uint64_t len)
{
	uint8_t *buf = lun_buf_alloc(PROBE_CHUNK);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	for (uint64_t done = 0; done < len && !ret; done += PROBE_CHUNK) {
		size_t n = len - done < PROBE_CHUNK ? (size_t)(len - done)
						     : PROBE_CHUNK;
		ssize_t w;

		ret = lun_read(lun, buf, n, off + done);
		if (ret)
			break;
		w = pwrite(fd, buf, n, (off_t)(off + done));
		if (w != (ssize_t)n)
			ret = w < 0 ? -errno : -EIO;
	}
	lun_buf_free(buf);
	return ret;
}

/* A memfd that reads like the LUN where signatures live, zeros elsewhere. */
static int probe_image(struct lun *lun, int *fd_out)
{
	uint64_t size = lun_size(lun), ss = lun_sector_size(lun);
	uint64_t head = size < PROBE_HEAD ? size / ss * ss : PROBE_HEAD;
	uint64_t tail = size / ss * ss;
	int fd = memfd_create("vmfs-mkfs-probe", MFD_CLOEXEC);
	int ret;

	if (fd < 0)
		return -errno;
	tail = tail - head < PROBE_TAIL ? tail - head : PROBE_TAIL;
	ret = ftruncate(fd, (off_t)size) ? -errno : 0;
	if (!ret)
		ret = probe_copy(lun, fd, 0, head);
	if (!ret && tail)
		ret = probe_copy(lun, fd, size / ss * ss - tail, tail);
	if (ret) {
		close(fd);
		return ret;
	}
	*fd_out = fd;
	return 0;
}

static const char *probe_val(blkid_probe pr, const char *name)
{
	const char *v = NULL;

	return blkid_probe_lookup_value(pr, name, &v, NULL) == 0 && v && *v ? v
									    : NULL;
}

/* Append ", what" (or " (what" for the first) to the description. */
static void desc_add(char *d, size_t len, bool *open, const char *fmt,
		     const char *v)
{
	size_t n = strlen(d);

	if (n + 3 >= len)
		return;
	strcpy(d + n, *open ? ", " : " (");
	*open = true;
	n += 2;
	snprintf(d + n, len - n, fmt, v);
}

/*
 * "ext4 filesystem (label 'data', uuid ...)", "gpt partition table",
 * "LVM physical volume (type LVM2_member, uuid ...)", and where its magic
 * is.
 */
static void probe_describe(blkid_probe pr, struct cli_probe_sig *s)
{
	const char *pt = probe_val(pr, "PTTYPE");
	const char *type = pt ? pt : probe_val(pr, "TYPE");
	const char *usage = probe_val(pr, "USAGE");
	const char *off = probe_val(pr, pt ? "PTMAGIC_OFFSET" : "SBMAGIC_OFFSET");
	const char *what = NULL, *magic = NULL;
	size_t magic_len = 0;
	bool open = false;

	if (!type)
		type = "unknown";
	if (!pt && !strcmp(type, "LVM2_member"))
		what = "LVM physical volume";
	else if (!pt && usage && !strcmp(usage, "raid"))
		what = "RAID member";
	else if (!pt && usage && !strcmp(usage, "crypto"))
		what = "encrypted volume";
	if (what) {
		snprintf(s->desc, sizeof(s->desc), "%s", what);
		desc_add(s->desc, sizeof(s->desc), &open, "type %s", type);
	} else {
		snprintf(s->desc, sizeof(s->desc), "%s %s", type,
			 pt ? "partition table" :
			 usage && !strcmp(usage, "filesystem") ? "filesystem" :
			 "signature");
	}
	if (probe_val(pr, "LABEL"))
		desc_add(s->desc, sizeof(s->desc), &open, "label '%s'",
			 probe_val(pr, "LABEL"));
	if (probe_val(pr, "UUID"))
		desc_add(s->desc, sizeof(s->desc), &open, "uuid %s",
			 probe_val(pr, "UUID"));
	if (open && strlen(s->desc) + 1 < sizeof(s->desc))
		strcat(s->desc, ")");
	blkid_probe_lookup_value(pr, pt ? "PTMAGIC" : "SBMAGIC", &magic,
				 &magic_len);
	s->magic_off = off ? strtoull(off, NULL, 10) : 0;
	s->magic_len = magic ? magic_len : 0;
}

int cli_probe_signatures(struct lun *lun, struct cli_probe_sig **out,
			 size_t *n_out)
{
	struct cli_probe_sig *sigs = NULL;
	size_t n = 0;
	blkid_probe pr;
	int fd = -1, ret;

	*out = NULL;
	*n_out = 0;
	ret = probe_image(lun, &fd);
	if (ret)
		return ret;
	pr = blkid_new_probe();
	if (!pr || blkid_probe_set_device(pr, fd, 0, 0)) {
		ret = -ENOMEM;
		goto out;
	}
	/* As wipefs(8): every signature, checksum mismatches included. */
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_LABEL |
					  BLKID_SUBLKS_UUID | BLKID_SUBLKS_TYPE |
					  BLKID_SUBLKS_USAGE | BLKID_SUBLKS_MAGIC |
					  BLKID_SUBLKS_BADCSUM);
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC);
	while (blkid_do_probe(pr) == 0) {
		struct cli_probe_sig *ns = realloc(sigs, (n + 1) * sizeof(*ns));

		if (!ns) {
			ret = -ENOMEM;
			break;
		}
		sigs = ns;
		memset(&sigs[n], 0, sizeof(sigs[n]));
		probe_describe(pr, &sigs[n++]);
	}
out:
	if (pr)
		blkid_free_probe(pr);
	close(fd);
	if (ret) {
		free(sigs);
		return ret;
	}
	*out = sigs;
	*n_out = n;
	return 0;
}

int cli_probe_wipe(struct lun *lun, const struct cli_probe_sig *s)
{
	uint64_t ss = lun_sector_size(lun);
	uint64_t a = s->magic_off / ss * ss;
	uint64_t e = (s->magic_off + s->magic_len + ss - 1) / ss * ss;
	uint8_t *buf;
	int ret;

	if (!s->magic_len || e > lun_size(lun))
		return 0;
	buf = lun_buf_alloc(e - a);
	if (!buf)
		return -ENOMEM;
	ret = lun_read(lun, buf, e - a, a);
	if (!ret) {
		memset(buf + (s->magic_off - a), 0, s->magic_len);
		ret = lun_write(lun, buf, e - a, a);
	}
	lun_buf_free(buf);
	return ret;
}
