/*
 * The file backend: a LUN that is a regular file (tests, one shared file
 * standing in for the SAN) or a block device (a real FC/iSCSI disk the
 * kernel already attached).
 *
 * This file opens the LUN and discovers its geometry, and implements the
 * operations that are plain system calls (flush, zero_range, close).  The
 * data path is file_aio.c; RESERVE and COMPARE AND WRITE are file_locks.c.
 *
 * Every data I/O uses O_DIRECT: hosts share the LUN, and each host's page
 * cache would otherwise hide the other hosts' writes from it (and delay
 * its own past the point where it believes they are on disk).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lun_int.h"

/* Keys the per-thread aio contexts; a closed lun's id is never reused. */
static _Atomic uint64_t file_next_id = 1;

/* Map a direct-I/O offset alignment to the sector size we expose. */
static int file_sector_from_align(uint32_t align, uint32_t *sector)
{
	if (align == 0)
		return -EINVAL;	/* the filesystem cannot do O_DIRECT */
	if (align <= 512)
		*sector = 512;
	else if (align <= 4096)
		*sector = 4096;
	else
		return -EINVAL;	/* not a geometry vmfs supports */
	return 0;
}

/*
 * Logical sector size of a regular file: the smallest O_DIRECT offset
 * alignment the filesystem accepts, which is the logical block size of the
 * device under it, not st_blksize (the filesystem block, usually 4 KiB even
 * on 512-byte disks).  statx(STATX_DIOALIGN) (Linux 6.1) reports it.  On
 * older kernels fall back to a 512-byte O_DIRECT read at offset 0, which
 * fails with EINVAL when the device needs 4096.  The probe can only see
 * the truth where offset 0 is allocated: a hole is served without touching
 * the device, so a fresh sparse file on a 4Kn disk of an old kernel reads
 * as 512.
 */
static int file_probe_sector(int fd, uint32_t *sector)
{
	struct statx stx;
	void *buf;
	ssize_t n;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN))
		return file_sector_from_align(stx.stx_dio_offset_align,
					      sector);

	buf = lun_buf_alloc(LUN_BUF_ALIGN);
	if (!buf)
		return -ENOMEM;
	do {
		n = pread(fd, buf, 512, 0);
	} while (n < 0 && errno == EINTR);
	*sector = (n < 0 && errno == EINVAL) ? 4096 : 512;
	lun_buf_free(buf);
	return 0;
}

static int file_probe_geometry(struct file_lun *fl, const struct stat *st)
{
	uint64_t size;
	int ssz;
	int rc;

	if (fl->is_blkdev) {
		if (ioctl(fl->fd, BLKSSZGET, &ssz) < 0)
			return -errno;
		rc = file_sector_from_align((uint32_t)ssz,
					    &fl->lun.sector_size);
		if (rc)
			return rc;
		if (ioctl(fl->fd, BLKGETSIZE64, &size) < 0)
			return -errno;
	} else {
		rc = file_probe_sector(fl->fd, &fl->lun.sector_size);
		if (rc)
			return rc;
		size = (uint64_t)st->st_size;
	}
	/* A trailing partial sector cannot be read with O_DIRECT: drop it. */
	fl->lun.size_bytes = size & ~(uint64_t)(fl->lun.sector_size - 1);
	return 0;
}

/*
 * Open without O_CREAT (a LUN is provisioned, never conjured by a typo),
 * with O_NONBLOCK so that a FIFO given by mistake cannot hang the open,
 * and without O_DIRECT, which open() refuses with a bare EINVAL on
 * directories and most character devices.  Once the type check has
 * accepted a regular file or block device, F_SETFL turns O_DIRECT on (and
 * O_NONBLOCK off); an EINVAL there means the filesystem cannot do direct
 * I/O.
 */
static int file_open_fd(const char *path, int flags, bool *is_blkdev,
			struct stat *st)
{
	int oflags = O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
	int fd;
	int rc;

	oflags |= (flags & LUN_RDONLY) ? O_RDONLY : O_RDWR;
	fd = open(path, oflags);
	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0) {
		rc = -errno;
		goto err_close;
	}
	if (S_ISDIR(st->st_mode)) {
		rc = -EISDIR;
		goto err_close;
	}
	if (!S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode)) {
		rc = -ENOTBLK;
		goto err_close;
	}
	if (fcntl(fd, F_SETFL, O_DIRECT) < 0) {
		rc = -errno;
		goto err_close;
	}
	*is_blkdev = S_ISBLK(st->st_mode);
	return fd;

err_close:
	close(fd);
	return rc;
}

static int file_read(struct lun *lun, void *buf, size_t len, uint64_t off)
{
	struct lun_io io = { .op = LUN_OP_READ, .buf = buf, .len = len,
			     .off = off };

	return lun_file_aio_rw(file_lun_of(lun), &io, 1);
}

static int file_write(struct lun *lun, const void *buf, size_t len,
		      uint64_t off)
{
	/* The data path copies writes out of buf; it never stores to it. */
	struct lun_io io = { .op = LUN_OP_WRITE, .buf = (void *)buf,
			     .len = len, .off = off };

	return lun_file_aio_rw(file_lun_of(lun), &io, 1);
}

static int file_submit(struct lun *lun, struct lun_io *ios, unsigned n)
{
	return lun_file_aio_rw(file_lun_of(lun), ios, n);
}

/*
 * fdatasync is the SYNCHRONIZE CACHE of a file: every write that completed
 * before the call is durable when it returns.  On a block device it sends
 * a cache flush to the disk.
 */
static int file_flush(struct lun *lun)
{
	if (fdatasync(file_lun_of(lun)->fd) < 0)
		return -errno;
	return 0;
}

static int file_fallocate(int fd, int mode, uint64_t off, uint64_t len)
{
	int rc;

	do {
		rc = fallocate(fd, mode, (off_t)off, (off_t)len);
	} while (rc < 0 && errno == EINTR);
	return rc < 0 ? -errno : 0;
}

static bool file_zero_unsupported(int rc)
{
	return rc == -EOPNOTSUPP || rc == -ENOSYS || rc == -ENOTTY;
}

/*
 * Cheapest first: ZERO_RANGE keeps the blocks allocated (unwritten
 * extents, so a thick disk stays thick); PUNCH_HOLE frees them (still
 * reads as zeros); writing zeros always works.  On a block device
 * BLKZEROOUT already falls back to writing zeros inside the kernel when
 * the disk lacks WRITE ZEROES, so only ENOTTY (no such ioctl) lands in our
 * own fallback.  These calls are synchronous and not bounded by the I/O
 * timeout.
 */
static int file_zero_range(struct lun *lun, uint64_t off, uint64_t len)
{
	struct file_lun *fl = file_lun_of(lun);
	int rc;

	if (fl->is_blkdev) {
		uint64_t range[2] = { off, len };

		rc = ioctl(fl->fd, BLKZEROOUT, range) < 0 ? -errno : 0;
	} else {
		rc = file_fallocate(fl->fd, FALLOC_FL_ZERO_RANGE |
				    FALLOC_FL_KEEP_SIZE, off, len);
		if (file_zero_unsupported(rc))
			rc = file_fallocate(fl->fd, FALLOC_FL_PUNCH_HOLE |
					    FALLOC_FL_KEEP_SIZE, off, len);
	}
	if (file_zero_unsupported(rc))
		rc = lun_zero_by_writes(lun, off, len);
	return rc;
}

static void file_close(struct lun *lun)
{
	struct file_lun *fl = file_lun_of(lun);

	/* Reaps (waits for) every I/O still in flight, even timed-out ones. */
	lun_file_aio_fini(fl);
	/* Closing the fd drops this handle's OFD locks: the reservation. */
	close(fl->fd);
	lun_file_locks_fini(fl);
	lun_fini_common(lun);
	free(fl);
}

/* The size now: a file truncated larger, a block device extended. */
static int file_capacity(struct lun *lun, uint64_t *bytes)
{
	struct file_lun *fl = lun_container_of(lun, struct file_lun, lun);
	struct stat st;

	if (fl->is_blkdev)
		return ioctl(fl->fd, BLKGETSIZE64, bytes) < 0 ? -errno : 0;
	if (fstat(fl->fd, &st) < 0)
		return -errno;
	*bytes = (uint64_t)st.st_size;
	return 0;
}

static const struct lun_ops file_ops = {
	.kind = "file",
	.read = file_read,
	.write = file_write,
	.submit = file_submit,
	.flush = file_flush,
	.zero_range = file_zero_range,
	.reserve = lun_file_reserve,
	.release = lun_file_release,
	.compare_and_write = lun_file_compare_and_write,
	.capacity = file_capacity,
	.close = file_close,
};

int lun_file_open(const char *path, int flags, struct lun **out)
{
	struct file_lun *fl;
	struct stat st;
	int rc;

	fl = calloc(1, sizeof(*fl));
	if (!fl)
		return -ENOMEM;
	rc = lun_init_common(&fl->lun, &file_ops, path, flags);
	if (rc)
		goto err_free;
	rc = lun_file_locks_init(fl);
	if (rc)
		goto err_common;
	fl->fd = file_open_fd(path, flags, &fl->is_blkdev, &st);
	if (fl->fd < 0) {
		rc = fl->fd;
		goto err_locks;
	}
	rc = file_probe_geometry(fl, &st);
	if (rc)
		goto err_fd;
	fl->id = atomic_fetch_add(&file_next_id, 1);
	/* Both emulated with OFD locks (file_locks.c). */
	atomic_store(&fl->lun.caps, LUN_CAP_ATS | LUN_CAP_RESERVE);
	*out = &fl->lun;
	return 0;

err_fd:
	close(fl->fd);
err_locks:
	lun_file_locks_fini(fl);
err_common:
	lun_fini_common(&fl->lun);
err_free:
	free(fl);
	return rc;
}
