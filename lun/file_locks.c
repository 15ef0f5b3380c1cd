/*
 * SCSI primitives of the file backend, emulated with OFD byte-range locks.
 *
 * On a SAN, mutual exclusion between hosts comes from the target:
 *  - SCSI-2 RESERVE(6)/RELEASE(6): while one initiator holds the
 *    reservation, the target answers other initiators with RESERVATION
 *    CONFLICT;
 *  - SBC-3 COMPARE AND WRITE (5.2): the device server reads the blocks,
 *    compares them with the verify data and, only if they are equal,
 *    writes the new data, "as an uninterrupted series of actions"; on a
 *    difference it writes nothing and ends with MISCOMPARE.  VMFS calls
 *    this ATS (atomic test and set) and builds its on-disk locks on it.
 *
 * In tests every "host" shares one kernel and one LUN file, so the
 * kernel's byte-range locks can stand in for the target.  We need OFD
 * ("open file description") locks, not classic POSIX locks: POSIX locks
 * belong to a process (two lun_open()s in one process would share them,
 * and closing any fd of the file drops them all), whereas OFD locks belong
 * to one open(), i.e. to one lun handle, which is exactly one initiator.
 *
 * The reservation is an exclusive OFD lock on one byte at 2^62, far past
 * any data.  A COMPARE AND WRITE takes:
 *   1. this handle's stripe mutexes of its sectors (OFD locks of one
 *      handle never conflict with each other, so threads of one handle
 *      are serialized here instead);
 *   2. a shared OFD lock on the reservation byte, unless this handle holds
 *      the reservation: refused at once if another handle holds it
 *      (RESERVATION CONFLICT), and while held it keeps other handles from
 *      reserving, so a reserve/read/compare/write/release sequence on one
 *      host and a COMPARE AND WRITE on another never interleave;
 *   3. an exclusive OFD lock on [off, off + len) of the file.
 * then reads, compares, writes, and drops them in reverse order.
 *
 * The OFD lock state of the reservation byte is a function of this
 * handle's state, changed only under res_lock: exclusive while res_held,
 * else shared while caw_gate > 0, else unlocked.
 *
 * Writer starvation: all CAWs of a busy handle share one shared lock, which
 * could stay held for as long as its threads keep overlapping, and a
 * reserve() would then poll in vain.  So a reserver first takes an
 * exclusive "intent" lock on the byte after the reservation byte; every
 * new CAW of another handle that sees it answers RESERVATION CONFLICT at
 * once (on a target the reservation would already be granted), the CAWs
 * in progress drain, and the reservation is taken.
 *
 * Locks are polled with F_OFD_SETLK and short sleeps rather than taken
 * with F_OFD_SETLKW: the waits must be bounded (a stopped host process
 * must not hang the others forever) and SETLKW has no timeout.
 *
 * Differences from a real target, acceptable for tests: a plain read is
 * not atomic with another handle's write of the same sector (a disk's
 * sector is), so readers of slots and lock records read again what does
 * not verify (docs/PROTOCOL.md §1, "Torn reads"); plain reads and
 * writes from other handles are not refused while the LUN is reserved
 * (every vmfs host reserves before the metadata writes the reservation
 * protects); a reservation disappears when its handle closes or its
 * process dies (SCSI-2 keeps it until RELEASE or a reset); and if the
 * write of a COMPARE AND WRITE times out, the late write may land after
 * the range lock is dropped, so -ETIMEDOUT means "outcome unknown, re-read
 * before trusting the on-disk state", as it does on a SAN.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmfs/clock.h"
#include "lun_int.h"

#define FILE_RES_OFFSET (1LL << 62)
#define FILE_INTENT_OFFSET (FILE_RES_OFFSET + 1)

/* Poll intervals (microseconds): a CAW holds its range for two I/Os, a
 * reservation for a whole read-modify-write sequence. */
#define FILE_CAW_POLL_MIN_US 20
#define FILE_CAW_POLL_MAX_US 1000
#define FILE_RES_POLL_MIN_US 100
#define FILE_RES_POLL_MAX_US 5000

int lun_file_locks_init(struct file_lun *fl)
{
	int rc;
	int i;

	rc = pthread_mutex_init(&fl->res_lock, NULL);
	if (rc)
		return -rc;
	for (i = 0; i < FILE_CAW_STRIPES; i++) {
		rc = pthread_mutex_init(&fl->caw_stripe[i], NULL);
		if (rc) {
			while (i--)
				pthread_mutex_destroy(&fl->caw_stripe[i]);
			pthread_mutex_destroy(&fl->res_lock);
			return -rc;
		}
	}
	return 0;
}

void lun_file_locks_fini(struct file_lun *fl)
{
	int i;

	for (i = 0; i < FILE_CAW_STRIPES; i++)
		pthread_mutex_destroy(&fl->caw_stripe[i]);
	pthread_mutex_destroy(&fl->res_lock);
}

/* One non-blocking OFD lock operation; -EAGAIN when another handle's
 * lock conflicts. */
static int file_ofd(int fd, short type, off_t start, off_t len)
{
	struct flock lk = {
		.l_type = type,
		.l_whence = SEEK_SET,
		.l_start = start,
		.l_len = len,
		.l_pid = 0,	/* required for OFD locks */
	};

	if (fcntl(fd, F_OFD_SETLK, &lk) == 0)
		return 0;
	return (errno == EACCES) ? -EAGAIN : -errno;
}

/* 1 if another handle holds a lock on byte start, 0 if not, or -errno. */
static int file_ofd_held_elsewhere(int fd, off_t start)
{
	struct flock lk = {
		.l_type = F_RDLCK,
		.l_whence = SEEK_SET,
		.l_start = start,
		.l_len = 1,
		.l_pid = 0,
	};

	/* Our own locks never conflict, so GETLK reports only others'. */
	if (fcntl(fd, F_OFD_GETLK, &lk) < 0)
		return -errno;
	return lk.l_type != F_UNLCK;
}

/*
 * Sleep before the next poll: the current interval, doubled for next time
 * up to max_us, never past the deadline.  Returns false once the deadline
 * has passed (the caller makes one last attempt before sleeping, never
 * after).
 */
static bool file_backoff(int64_t deadline_us, unsigned *delay_us,
			 unsigned max_us)
{
	int64_t left = deadline_us - vmfs_mono_us();
	struct timespec ts;
	unsigned us;

	if (left <= 0)
		return false;
	us = (int64_t)*delay_us < left ? *delay_us : (unsigned)left;
	ts.tv_sec = us / 1000000;
	ts.tv_nsec = (long)(us % 1000000) * 1000;
	nanosleep(&ts, NULL);
	*delay_us = *delay_us * 2 > max_us ? max_us : *delay_us * 2;
	return true;
}

/* ---- RESERVE / RELEASE -------------------------------------------------- */

static int file_reserve_try(struct file_lun *fl)
{
	int rc = 0;

	pthread_mutex_lock(&fl->res_lock);
	if (!fl->res_held) {
		/* Converts our own shared lock (CAW gate) if any. */
		rc = file_ofd(fl->fd, F_WRLCK, FILE_RES_OFFSET, 1);
		if (!rc)
			fl->res_held = true;
	}
	pthread_mutex_unlock(&fl->res_lock);
	return rc;
}

int lun_file_reserve(struct lun *lun, unsigned wait_ms)
{
	struct file_lun *fl = file_lun_of(lun);
	int64_t deadline_us = vmfs_mono_us() + (int64_t)wait_ms * 1000;
	unsigned delay_us = FILE_RES_POLL_MIN_US;
	int rc;

	/* An exclusive OFD lock needs an fd open for writing. */
	if (lun->flags & LUN_RDONLY)
		return -EROFS;
	rc = file_reserve_try(fl);	/* re-reserving is not an error */
	if (rc != -EAGAIN)
		return rc;

	/* Announce the intent, then wait for the CAWs in flight to drain. */
	while ((rc = file_ofd(fl->fd, F_WRLCK, FILE_INTENT_OFFSET, 1)) ==
	       -EAGAIN &&
	       file_backoff(deadline_us, &delay_us, FILE_RES_POLL_MAX_US))
		;
	if (rc)
		return rc == -EAGAIN ? -VMFS_E_RESERVED : rc;
	delay_us = FILE_RES_POLL_MIN_US;
	while ((rc = file_reserve_try(fl)) == -EAGAIN &&
	       file_backoff(deadline_us, &delay_us, FILE_RES_POLL_MAX_US))
		;
	file_ofd(fl->fd, F_UNLCK, FILE_INTENT_OFFSET, 1);
	return rc == -EAGAIN ? -VMFS_E_RESERVED : rc;
}

/* Releasing a reservation one does not hold is a no-op, as in SCSI-2. */
int lun_file_release(struct lun *lun)
{
	struct file_lun *fl = file_lun_of(lun);
	int rc = 0;

	pthread_mutex_lock(&fl->res_lock);
	if (fl->res_held) {
		/* Downgrading our own lock cannot conflict. */
		rc = file_ofd(fl->fd, fl->caw_gate ? F_RDLCK : F_UNLCK,
			      FILE_RES_OFFSET, 1);
		if (!rc)
			fl->res_held = false;
	}
	pthread_mutex_unlock(&fl->res_lock);
	return rc;
}

/* ---- COMPARE AND WRITE -------------------------------------------------- */

static int file_caw_gate_enter(struct file_lun *fl)
{
	int rc = 0;

	pthread_mutex_lock(&fl->res_lock);
	if (!fl->res_held) {
		/* Checked by every CAW: see "Writer starvation" above. */
		rc = file_ofd_held_elsewhere(fl->fd, FILE_INTENT_OFFSET);
		if (rc > 0)
			rc = -EAGAIN;
		if (!rc && fl->caw_gate == 0)
			rc = file_ofd(fl->fd, F_RDLCK, FILE_RES_OFFSET, 1);
	}
	if (!rc)
		fl->caw_gate++;
	pthread_mutex_unlock(&fl->res_lock);
	return rc == -EAGAIN ? -VMFS_E_RESERVED : rc;
}

static void file_caw_gate_leave(struct file_lun *fl)
{
	pthread_mutex_lock(&fl->res_lock);
	if (--fl->caw_gate == 0 && !fl->res_held)
		file_ofd(fl->fd, F_UNLCK, FILE_RES_OFFSET, 1);
	pthread_mutex_unlock(&fl->res_lock);
}

/* The stripes covering [off, off + len), as a bit mask. */
static unsigned file_caw_stripes(const struct file_lun *fl, uint64_t off,
				 size_t len)
{
	uint64_t first = off / fl->lun.sector_size;
	uint64_t count = len / fl->lun.sector_size;
	unsigned mask = 0;
	uint64_t s;

	if (count >= FILE_CAW_STRIPES)
		return (1u << FILE_CAW_STRIPES) - 1;
	for (s = first; s < first + count; s++)
		mask |= 1u << (s % FILE_CAW_STRIPES);
	return mask;
}

/* Always in ascending stripe order, so two ranges cannot deadlock. */
static void file_caw_stripes_lock(struct file_lun *fl, unsigned mask)
{
	int i;

	for (i = 0; i < FILE_CAW_STRIPES; i++)
		if (mask & (1u << i))
			pthread_mutex_lock(&fl->caw_stripe[i]);
}

static void file_caw_stripes_unlock(struct file_lun *fl, unsigned mask)
{
	int i;

	for (i = FILE_CAW_STRIPES - 1; i >= 0; i--)
		if (mask & (1u << i))
			pthread_mutex_unlock(&fl->caw_stripe[i]);
}

static int file_caw_range_lock(struct file_lun *fl, uint64_t off, size_t len)
{
	unsigned timeout_ms = atomic_load(&fl->lun.io_timeout_ms);
	int64_t deadline_us = vmfs_mono_us() + (int64_t)timeout_ms * 1000;
	unsigned delay_us = FILE_CAW_POLL_MIN_US;
	int rc;

	do {
		rc = file_ofd(fl->fd, F_WRLCK, (off_t)off, (off_t)len);
		if (rc != -EAGAIN)
			return rc;
	} while (file_backoff(deadline_us, &delay_us, FILE_CAW_POLL_MAX_US));
	return -ETIMEDOUT;
}

/* Read, compare, write: runs with the range locked against every handle. */
static int file_caw_locked(struct file_lun *fl, const void *expect,
			   const void *data, size_t len, uint64_t off,
			   void *current)
{
	struct lun_io io = { .op = LUN_OP_READ, .len = len, .off = off };
	int rc;

	/* The data path copies through its own aligned bounce buffers, so
	 * neither this buffer nor the caller's need sector alignment. */
	io.buf = malloc(len);
	if (!io.buf)
		return -ENOMEM;
	rc = lun_file_aio_rw(fl, &io, 1);
	if (rc)
		goto out;
	if (memcmp(io.buf, expect, len) != 0) {
		if (current)
			memcpy(current, io.buf, len);
		rc = -VMFS_E_MISCOMPARE;
		goto out;
	}
	free(io.buf);
	io.op = LUN_OP_WRITE;
	io.buf = (void *)data;	/* only copied from */
	return lun_file_aio_rw(fl, &io, 1);
out:
	free(io.buf);
	return rc;
}

int lun_file_compare_and_write(struct lun *lun, const void *expect,
			   const void *data, size_t len, uint64_t off,
			   void *current)
{
	struct file_lun *fl = file_lun_of(lun);
	unsigned stripes = file_caw_stripes(fl, off, len);
	int rc;

	file_caw_stripes_lock(fl, stripes);
	rc = file_caw_gate_enter(fl);
	if (rc)
		goto out_stripes;
	rc = file_caw_range_lock(fl, off, len);
	if (rc)
		goto out_gate;
	rc = file_caw_locked(fl, expect, data, len, off, current);
	file_ofd(fl->fd, F_UNLCK, (off_t)off, (off_t)len);
out_gate:
	file_caw_gate_leave(fl);
out_stripes:
	file_caw_stripes_unlock(fl, stripes);
	return rc;
}
