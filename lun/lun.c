/*
 * lun front end: spec parsing, the accessors, aligned buffers, and the one
 * place where every argument is validated before it reaches a backend.
 *
 * Backends (file.c; the fault wrapper in fault.c; iscsi later) implement
 * struct lun_ops from lun_int.h.  Because validation lives here, a backend
 * may assume: buffers aligned to the sector size, offsets and lengths
 * sector multiples inside the LUN, len > 0, and no write to a read-only
 * lun.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmfs/clock.h"
#include "lun_int.h"

int lun_init_common(struct lun *lun, const struct lun_ops *ops,
		    const char *name, int flags)
{
	lun->ops = ops;
	pthread_mutex_init(&lun->owner_mu, NULL);
	pthread_mutex_init(&lun->hold_mu, NULL);
	lun->name = strdup(name);
	if (!lun->name)
		return -ENOMEM;
	lun->flags = flags;
	atomic_init(&lun->io_timeout_ms, LUN_DEFAULT_IO_TIMEOUT_MS);
	atomic_init(&lun->lock_io_timeout_ms, 0);
	atomic_init(&lun->fenced, false);
	atomic_init(&lun->caps, 0);
	atomic_init(&lun->gate_until_ms, INT64_MAX);
	atomic_init(&lun->gate_tripped, false);
	return 0;
}

void lun_fini_common(struct lun *lun)
{
	pthread_mutex_destroy(&lun->owner_mu);
	pthread_mutex_destroy(&lun->hold_mu);
	free(lun->name);
	lun->name = NULL;
}

int lun_zero_by_writes(struct lun *lun, uint64_t off, uint64_t len)
{
	size_t chunk = len < LUN_ZERO_CHUNK ? (size_t)len : LUN_ZERO_CHUNK;
	void *zeros = lun_buf_alloc(chunk);
	int rc = 0;

	if (!zeros)
		return -ENOMEM;
	memset(zeros, 0, chunk);
	while (len && !rc) {
		size_t n = len < chunk ? (size_t)len : chunk;

		rc = lun->ops->write(lun, zeros, n, off);
		off += n;
		len -= n;
	}
	lun_buf_free(zeros);
	return rc;
}

/* "scheme://": a scheme is lower-case letters, digits, '+', '-', '.'. */
static bool lun_spec_is_url(const char *spec)
{
	const char *p;

	for (p = spec; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '+' || *p == '-' || *p == '.')
			continue;
		return p != spec && strncmp(p, "://", 3) == 0;
	}
	return false;
}

int lun_spec_parse(const char *spec, struct lun_spec *out)
{
	if (!spec || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (strncmp(spec, "file:", 5) == 0) {
		out->file_prefix = true;
		out->path = spec + 5;
	} else if (lun_spec_is_url(spec)) {
		out->kind = LUN_SPEC_URL;
		return 0;
	} else {
		out->path = spec;
	}
	return *out->path ? 0 : -VMFS_E_BAD_SPEC;
}

int lun_spec_abspath(const char *spec, char *buf, size_t len)
{
	char tmp[PATH_MAX], cwd[PATH_MAX];
	struct lun_spec ls;
	const char *abs = tmp;
	int ret, n;

	ret = lun_spec_parse(spec, &ls);
	if (ret)
		return ret;
	if (ls.kind == LUN_SPEC_URL)
		abs = spec;
	else if (realpath(ls.path, tmp))
		;
	else if (ls.path[0] == '/')
		abs = ls.path;
	else if (!getcwd(cwd, sizeof(cwd)))
		return -errno;
	else if ((size_t)snprintf(tmp, sizeof(tmp), "%s/%s", cwd, ls.path) >=
		 sizeof(tmp))
		return -ENAMETOOLONG;
	n = snprintf(buf, len, "%s%s", ls.file_prefix ? "file:" : "", abs);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int lun_open(const char *spec, int flags, struct lun **out)
{
	struct lun_spec ls;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (flags & ~LUN_RDONLY)
		return -EINVAL;
	ret = lun_spec_parse(spec, &ls);
	if (ret)
		return ret;
	if (ls.kind == LUN_SPEC_URL) {
		if (strncmp(spec, "iscsi://", 8) == 0)
			return lun_iscsi_open(spec, flags, out);
		return -VMFS_E_BAD_SPEC;
	}
	return lun_file_open(ls.path, flags, out);
}

void lun_close(struct lun *lun)
{
	if (lun)
		lun->ops->close(lun);
}

uint64_t lun_size(const struct lun *lun)
{
	return atomic_load(&lun->size_bytes);
}

uint32_t lun_sector_size(const struct lun *lun)
{
	return lun->sector_size;
}

const char *lun_name(const struct lun *lun)
{
	return lun->name;
}

/*
 * 0 means "do not wait": an I/O not complete at the first look times out.
 * Only tests want that (to exercise the abandoned-I/O path); the daemon
 * derives its value from the lease in timeouts.c.
 */
void lun_set_io_timeout(struct lun *lun, unsigned timeout_ms)
{
	atomic_store(&lun->io_timeout_ms, timeout_ms);
	if (lun->ops->set_io_timeout)
		lun->ops->set_io_timeout(lun, timeout_ms);
}

pthread_mutex_t *lun_hold_mutex(struct lun *lun)
{
	return &lun->hold_mu;
}

void lun_set_lock_io_timeout(struct lun *lun, unsigned timeout_ms)
{
	atomic_store(&lun->lock_io_timeout_ms, timeout_ms);
	if (lun->ops->set_lock_io_timeout)
		lun->ops->set_lock_io_timeout(lun, timeout_ms);
}

unsigned lun_lock_io_timeout(const struct lun *lun)
{
	unsigned io = atomic_load(&lun->io_timeout_ms);
	unsigned lk = atomic_load(&lun->lock_io_timeout_ms);

	return lk && lk < io ? lk : io;
}

/* ---- validation --------------------------------------------------------- */

/*
 * Misalignment gets its own code because it is always a caller bug that
 * O_DIRECT would report as a bare EINVAL; a range past the end is -EINVAL
 * (SCSI: LOGICAL BLOCK ADDRESS OUT OF RANGE).  Overflow-safe for any off.
 * A range past the end asks the backend once whether the LUN was enlarged
 * (another host of the volume grew it into the new space: SPEC "Growing
 * a volume"), so a host reads and writes there without a remount.
 */
static bool lun_range_in(const struct lun *lun, uint64_t off, uint64_t len)
{
	uint64_t size = atomic_load(&lun->size_bytes);

	return off <= size && len <= size - off;
}

static int lun_check_range(struct lun *lun, uint64_t off, uint64_t len)
{
	uint64_t mask = lun->sector_size - 1;

	if ((off | len) & mask)
		return -VMFS_E_UNALIGNED;
	if (!lun_range_in(lun, off, len) &&
	    (lun_size_refresh(lun, NULL) || !lun_range_in(lun, off, len)))
		return -EINVAL;
	return 0;
}

int lun_size_refresh(struct lun *lun, uint64_t *seen_bytes)
{
	uint64_t now, bytes = 0;
	int rc;

	if (!lun->ops->capacity)
		return -EOPNOTSUPP;
	rc = lun->ops->capacity(lun, &bytes);
	bytes &= ~(uint64_t)(lun->sector_size - 1);
	if (seen_bytes)
		*seen_bytes = bytes;
	if (rc)
		return rc;      /* -VMFS_E_LUN_SHRUNK from a wrapped LUN too */
	now = atomic_load(&lun->size_bytes);
	/* Never smaller: what the volume uses stays addressable, and the
	 * caller (vmfs grow) says what a shrunk LUN means. */
	while (bytes > now &&
	       !atomic_compare_exchange_weak(&lun->size_bytes, &now, bytes))
		;
	return bytes < now ? -VMFS_E_LUN_SHRUNK : 0;
}

static int lun_check_io(struct lun *lun, const void *buf, size_t len,
			uint64_t off, bool write)
{
	if (atomic_load(&lun->fenced))
		return -EIO;
	if (!buf)
		return -EINVAL;
	if ((uintptr_t)buf & (lun->sector_size - 1))
		return -VMFS_E_UNALIGNED;
	if (write && (lun->flags & LUN_RDONLY))
		return -EROFS;
	return lun_check_range(lun, off, len);
}

/* ---- the write gate ------------------------------------------------------ */

void lun_gate_arm(struct lun *lun, const struct lun_gate *g)
{
	if (!g) {
		atomic_store(&lun->gate_until_ms, INT64_MAX);
		lun->gate_expired = NULL;
		lun->gate_ctx = NULL;
		return;
	}
	lun->gate_exempt_off = g->exempt_off;
	lun->gate_exempt_len = g->exempt_len;
	lun->gate_expired = g->expired;
	lun->gate_ctx = g->ctx;
	atomic_store(&lun->gate_until_ms, g->valid_until_ms);
}

void lun_gate_extend(struct lun *lun, int64_t valid_until_ms)
{
	int64_t cur = atomic_load(&lun->gate_until_ms);

	while (cur < valid_until_ms &&
	       !atomic_compare_exchange_weak(&lun->gate_until_ms, &cur,
					     valid_until_ms))
		;
}

/*
 * Called right before a write of [off, off+len) (len 0: a flush, never
 * exempt) is handed to the backend.  The clock is read here and not
 * earlier so that the window between the check and the issue is as short
 * as this process can make it.  Fencing comes before the callback: by the
 * time the owner hears of it, no other thread can start a write.
 */
static int lun_gate_check(struct lun *lun, uint64_t off, uint64_t len)
{
	int64_t until = atomic_load(&lun->gate_until_ms);
	int64_t now;

	if (until == INT64_MAX)
		return 0;
	if (len && off >= lun->gate_exempt_off &&
	    off - lun->gate_exempt_off + len <= lun->gate_exempt_len)
		return 0;
	now = vmfs_mono_ms();
	if (now < until)
		return 0;
	lun_fence(lun);
	if (!atomic_exchange(&lun->gate_tripped, true) && lun->gate_expired)
		lun->gate_expired(lun->gate_ctx, now - until);
	return -EIO;
}

int lun_read(struct lun *lun, void *buf, size_t len, uint64_t off)
{
	int rc = lun_check_io(lun, buf, len, off, false);

	if (rc || len == 0)
		return rc;
	return lun->ops->read(lun, buf, len, off);
}

int lun_write(struct lun *lun, const void *buf, size_t len, uint64_t off)
{
	int rc = lun_check_io(lun, buf, len, off, true);

	if (rc || len == 0)
		return rc;
	rc = lun_gate_check(lun, off, len);
	if (rc)
		return rc;
	return lun->ops->write(lun, buf, len, off);
}

/*
 * A batch is all or nothing at validation time: if any I/O is malformed
 * none is submitted (the bad ones get their error, the others
 * -ECANCELED), so a caller never has to work out which half of a batch
 * reached the disk because of a programming error.
 */
int lun_submit(struct lun *lun, struct lun_io *ios, unsigned n)
{
	int first = 0;
	unsigned i;

	if (n == 0)
		return 0;
	if (!ios)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		bool write = ios[i].op == LUN_OP_WRITE;

		if (ios[i].op != LUN_OP_READ && !write)
			ios[i].result = -EINVAL;
		else
			ios[i].result = lun_check_io(lun, ios[i].buf,
						     ios[i].len, ios[i].off,
						     write);
		if (ios[i].result && !first)
			first = ios[i].result;
	}
	if (first) {
		for (i = 0; i < n; i++)
			if (!ios[i].result)
				ios[i].result = -ECANCELED;
		return first;
	}
	/* Past the gate, the handle is fenced: every I/O of the batch fails. */
	for (i = 0; i < n && !first; i++)
		if (ios[i].op == LUN_OP_WRITE && ios[i].len)
			first = lun_gate_check(lun, ios[i].off, ios[i].len);
	if (first) {
		for (i = 0; i < n; i++)
			ios[i].result = first;
		return first;
	}
	return lun->ops->submit(lun, ios, n);
}

/*
 * Self-fencing: a host whose heartbeat lease may have run out in other
 * hosts' eyes must stop touching the volume at once, before anything it
 * still has queued could land on blocks a survivor now owns.  From here
 * on every I/O through this handle fails with -EIO.  There is no unfence:
 * the volume is mounted again from scratch.
 */
void lun_set_owner_check(struct lun *lun, uint64_t off, size_t len,
			 bool (*ok)(const void *buf, void *arg), void *arg)
{
	pthread_mutex_lock(&lun->owner_mu);
	lun->owner_off = off;
	lun->owner_len = len;
	lun->owner_ok = ok;
	lun->owner_arg = arg;
	pthread_mutex_unlock(&lun->owner_mu);
}

void lun_fence(struct lun *lun)
{
	atomic_store(&lun->fenced, true);
}

bool lun_is_fenced(const struct lun *lun)
{
	return atomic_load(&lun->fenced);
}

int lun_flush(struct lun *lun)
{
	if (atomic_load(&lun->fenced) || lun_gate_check(lun, 0, 0))
		return -EIO;
	return lun->ops->flush(lun);
}

int lun_zero_range(struct lun *lun, uint64_t off, uint64_t len)
{
	int rc;

	if (atomic_load(&lun->fenced))
		return -EIO;
	if (lun->flags & LUN_RDONLY)
		return -EROFS;
	rc = lun_check_range(lun, off, len);
	if (!rc && len)
		rc = lun_gate_check(lun, off, len);
	if (rc || len == 0)
		return rc;
	return lun->ops->zero_range(lun, off, len);
}

const char *lun_probe_answer_name(enum lun_probe_answer a)
{
	return a == LUN_PROBE_YES ? "yes" : a == LUN_PROBE_NO ? "no" :
	       "unknown";
}

unsigned lun_paths(struct lun *lun, bool probe, struct lun_path *out,
		   unsigned max)
{
	unsigned failovers;

	if (lun->ops->paths)
		return lun->ops->paths(lun, probe, out, max, &failovers);
	if (max) {
		memset(out, 0, sizeof(*out));
		snprintf(out->portal, sizeof(out->portal), "%s", lun->name);
		out->in_use = true;
		out->failed_ago_ms = -1;
		out->reachable = -1;
	}
	return 1;
}

unsigned lun_path_failovers(struct lun *lun)
{
	unsigned failovers = 0;

	if (lun->ops->paths)
		(void)lun->ops->paths(lun, false, NULL, 0, &failovers);
	return failovers;
}

void lun_describe(struct lun *lun, struct lun_probe *out)
{
	unsigned caps = atomic_load(&lun->caps);

	memset(out, 0, sizeof(*out));
	out->backend = lun->ops->kind;
	/* The file backend emulates both primitives (file_locks.c). */
	out->caw = caps & LUN_CAP_ATS ? LUN_PROBE_YES : LUN_PROBE_NO;
	out->pr = LUN_PROBE_NO;
	if (caps & LUN_CAP_RESERVE)
		out->reserve_how = "RESERVE emulated with OFD locks";
	if (lun->ops->describe)
		lun->ops->describe(lun, out);
}

uint64_t lun_pr_key(const uint8_t host_uuid[16], uint64_t hb_gen)
{
	uint64_t key = (uint64_t)(lun_crc32c(0, host_uuid, 16) & 0x7fffffffu)
		       << 32 | (uint32_t)hb_gen;

	return key ? key : 1;	/* 0 means "no key" in SCSI */
}

int lun_pr_register(struct lun *lun, uint64_t key)
{
	if (!lun->ops->pr_register)
		return -EOPNOTSUPP;
	if (atomic_load(&lun->fenced))
		return -EIO;
	if (!key || (key & LUN_PR_OPEN_KEY_BIT))
		return -EINVAL;
	return lun->ops->pr_register(lun, key);
}

int lun_pr_preempt(struct lun *lun, uint64_t victim)
{
	if (!lun->ops->pr_preempt)
		return -EOPNOTSUPP;
	if (atomic_load(&lun->fenced))
		return -EIO;
	if (!victim)
		return -EINVAL;
	return lun->ops->pr_preempt(lun, victim);
}

unsigned lun_caps(const struct lun *lun)
{
	return atomic_load(&lun->caps);
}

int lun_reserve(struct lun *lun, unsigned wait_ms)
{
	if (!(atomic_load(&lun->caps) & LUN_CAP_RESERVE))
		return -EOPNOTSUPP;
	/* A fenced handle writes nothing, so it needs no reservation; one
	 * it took would only hold the other hosts up. */
	if (atomic_load(&lun->fenced))
		return -EIO;
	return lun->ops->reserve(lun, wait_ms);
}

unsigned lun_reserve_break_ms(struct lun *lun)
{
	return lun->ops->reserve_break_ms ? lun->ops->reserve_break_ms(lun) : 0;
}

int lun_release(struct lun *lun)
{
	if (!(atomic_load(&lun->caps) & LUN_CAP_RESERVE))
		return -EOPNOTSUPP;
	return lun->ops->release(lun);
}

int lun_compare_and_write(struct lun *lun, const void *expect,
			  const void *data, size_t len, uint64_t off,
			  void *current)
{
	int rc;

	/* expect/data/current are only memcmp'd and copied: any alignment. */
	if (!expect || !data)
		return -EINVAL;
	if (!(atomic_load(&lun->caps) & LUN_CAP_ATS))
		return -EOPNOTSUPP;
	if (atomic_load(&lun->fenced))
		return -EIO;
	if (lun->flags & LUN_RDONLY)
		return -EROFS;
	rc = lun_check_range(lun, off, len);
	if (rc)
		return rc;
	if (len == 0)
		return -EINVAL;
	rc = lun_gate_check(lun, off, len);
	if (rc)
		return rc;
	return lun->ops->compare_and_write(lun, expect, data, len, off,
					   current);
}
