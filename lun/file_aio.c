/*
 * Data path of the file backend: O_DIRECT reads and writes through libaio,
 * each batch waiting at most the lun's I/O timeout.
 *
 * Contexts.  Every (thread, lun) pair gets its own io_context, made on the
 * thread's first I/O to that lun.  A context is only ever waited on by the
 * thread that owns it, so io_getevents() never hands a thread somebody
 * else's completion and the data path takes no lock.  A context is on two
 * lists: its thread's (file_tls, touched only by that thread) and its
 * lun's (fl->ctxs, under file_ctx_lock).  Whichever ends first tears it
 * down:
 *   - lun_close destroys the contexts of every thread and marks them
 *     orphaned (lun_id = 0); the struct stays on its thread's list, and the
 *     thread frees it the next time it makes a context, or when it exits;
 *   - thread exit (a pthread key destructor) unlinks the thread's contexts
 *     from their luns, destroys them, and frees them.
 * Lun ids are never reused, so a thread cannot mistake an orphan for the
 * context of a new lun that happens to sit at the same address.  The main
 * thread runs no key destructors; its contexts go when their lun closes.
 * aio contexts do not survive fork(): a child process opens its own luns.
 *
 * Timeouts and bounce buffers.  The kernel reads from (write) or stores
 * into (read) the buffer of an I/O until the I/O completes, and an I/O that
 * timed out has not completed.  So no I/O ever uses the caller's buffer:
 * each of a context's FILE_AIO_DEPTH slots owns an aligned bounce buffer;
 * writes are copied into it before submission, reads out of it after
 * completion.  On timeout the caller gets -ETIMEDOUT and may free or reuse
 * its buffer at once; the slot is marked abandoned and keeps its bounce
 * buffer until a later io_getevents() on the same context reaps the late
 * completion (any later I/O of that thread to that lun does), or until
 * io_destroy(), which waits for every outstanding request, at lun_close or
 * thread exit (sanlock diskio.c keeps timed-out iobufs the same way).  The
 * copy is the price of that rule; buffers up to FILE_BOUNCE_KEEP stay
 * cached in their slot, so the steady state allocates nothing.
 */
#include <errno.h>
#include <libaio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmfs/clock.h"
#include "lun_int.h"

/*
 * In-flight I/Os per context.  io_setup reserves about twice this many
 * events from the system-wide fs.aio-max-nr (65536 by default) for every
 * (thread, lun) pair, so keep it modest; larger batches are split.
 */
#define FILE_AIO_DEPTH 64
/* Bounce buffers up to this size stay cached in their slot. */
#define FILE_BOUNCE_KEEP (1u << 20)

enum file_slot_state { SLOT_FREE, SLOT_BUSY, SLOT_ABANDONED };

struct file_slot {
	struct iocb cb;
	void *bounce;
	size_t bounce_cap;
	struct lun_io *io;		/* the caller's I/O while SLOT_BUSY */
	enum file_slot_state state;
};

struct file_ctx {
	io_context_t aio;
	_Atomic uint64_t lun_id;	/* 0: the lun closed (orphan) */
	struct file_lun *fl;		/* valid while lun_id != 0 */
	struct file_ctx *tnext;		/* owner thread's list */
	struct file_ctx *lnext;		/* the lun's list, file_ctx_lock */
	unsigned nfree;
	unsigned free_idx[FILE_AIO_DEPTH];
	struct file_slot slots[FILE_AIO_DEPTH];
};

static pthread_mutex_t file_ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t file_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t file_key;
static int file_key_err;
static __thread struct file_ctx *file_tls;

/* ---- context lifetime --------------------------------------------------- */

/*
 * Destroy the kernel context (waiting for everything still in flight,
 * abandoned I/O included) and only then free the bounce buffers.
 */
static void file_ctx_teardown(struct file_ctx *ctx)
{
	unsigned i;

	io_destroy(ctx->aio);
	for (i = 0; i < FILE_AIO_DEPTH; i++) {
		free(ctx->slots[i].bounce);
		ctx->slots[i].bounce = NULL;
	}
}

static void file_ctx_unlink_lun_locked(struct file_ctx *ctx)
{
	struct file_ctx **pp;

	for (pp = &ctx->fl->ctxs; *pp; pp = &(*pp)->lnext) {
		if (*pp == ctx) {
			*pp = ctx->lnext;
			break;
		}
	}
}

/* Free this thread's orphans (their luns already tore them down). */
static void file_tls_prune_locked(void)
{
	struct file_ctx **pp = &file_tls;

	while (*pp) {
		struct file_ctx *ctx = *pp;

		if (atomic_load(&ctx->lun_id) == 0) {
			*pp = ctx->tnext;
			free(ctx);
		} else {
			pp = &ctx->tnext;
		}
	}
}

static void file_thread_exit(void *unused)
{
	struct file_ctx *ctx;

	(void)unused;
	pthread_mutex_lock(&file_ctx_lock);
	while ((ctx = file_tls)) {
		file_tls = ctx->tnext;
		if (atomic_load(&ctx->lun_id) != 0) {
			file_ctx_unlink_lun_locked(ctx);
			file_ctx_teardown(ctx);
		}
		free(ctx);
	}
	pthread_mutex_unlock(&file_ctx_lock);
}

static void file_key_init(void)
{
	file_key_err = pthread_key_create(&file_key, file_thread_exit);
}

static int file_ctx_create(struct file_lun *fl, struct file_ctx **out)
{
	struct file_ctx *ctx;
	unsigned i;
	int rc;

	pthread_once(&file_key_once, file_key_init);
	if (file_key_err)
		return -file_key_err;
	/* Any non-NULL value arms the destructor for this thread. */
	rc = pthread_setspecific(file_key, &file_tls);
	if (rc)
		return -rc;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	rc = io_setup(FILE_AIO_DEPTH, &ctx->aio);
	if (rc < 0) {
		free(ctx);
		return rc;	/* -EAGAIN: fs.aio-max-nr exhausted */
	}
	for (i = 0; i < FILE_AIO_DEPTH; i++)
		ctx->free_idx[i] = i;
	ctx->nfree = FILE_AIO_DEPTH;
	ctx->fl = fl;
	atomic_init(&ctx->lun_id, fl->id);

	pthread_mutex_lock(&file_ctx_lock);
	file_tls_prune_locked();
	ctx->lnext = fl->ctxs;
	fl->ctxs = ctx;
	ctx->tnext = file_tls;
	file_tls = ctx;
	pthread_mutex_unlock(&file_ctx_lock);
	*out = ctx;
	return 0;
}

static int file_ctx_get(struct file_lun *fl, struct file_ctx **out)
{
	struct file_ctx *ctx;

	for (ctx = file_tls; ctx; ctx = ctx->tnext) {
		if (atomic_load_explicit(&ctx->lun_id, memory_order_relaxed) ==
		    fl->id) {
			*out = ctx;
			return 0;
		}
	}
	return file_ctx_create(fl, out);
}

/*
 * Called from lun_close, when no other thread may use fl any more (but
 * threads that once did may still be alive, or exiting right now: the
 * global lock orders us against their exit handler).
 */
void lun_file_aio_fini(struct file_lun *fl)
{
	struct file_ctx *ctx;

	pthread_mutex_lock(&file_ctx_lock);
	while ((ctx = fl->ctxs)) {
		fl->ctxs = ctx->lnext;
		file_ctx_teardown(ctx);
		ctx->fl = NULL;
		atomic_store(&ctx->lun_id, 0);
	}
	file_tls_prune_locked();
	pthread_mutex_unlock(&file_ctx_lock);
}

/* ---- slots -------------------------------------------------------------- */

static struct file_slot *file_slot_get(struct file_ctx *ctx, size_t len)
{
	struct file_slot *slot = &ctx->slots[ctx->free_idx[ctx->nfree - 1]];

	if (slot->bounce_cap < len) {
		void *buf;

		if (posix_memalign(&buf, LUN_BUF_ALIGN, len))
			return NULL;
		free(slot->bounce);
		slot->bounce = buf;
		slot->bounce_cap = len;
	}
	ctx->nfree--;
	slot->state = SLOT_BUSY;
	return slot;
}

static void file_slot_put(struct file_ctx *ctx, struct file_slot *slot)
{
	if (slot->bounce_cap > FILE_BOUNCE_KEEP) {
		free(slot->bounce);
		slot->bounce = NULL;
		slot->bounce_cap = 0;
	}
	slot->io = NULL;
	slot->state = SLOT_FREE;
	ctx->free_idx[ctx->nfree++] = (unsigned)(slot - ctx->slots);
}

/* Returns true if the event finished one of the caller's I/Os. */
static bool file_aio_complete(struct file_ctx *ctx, const struct io_event *ev)
{
	struct file_slot *slot = ev->data;
	struct lun_io *io = slot->io;
	long res = (long)ev->res;

	if (slot->state == SLOT_ABANDONED) {
		file_slot_put(ctx, slot);	/* a late completion: recycle */
		return false;
	}
	if (res < 0) {
		io->result = (int)res;
	} else if ((size_t)res != io->len) {
		io->result = -EIO;	/* short transfer, e.g. past EOF */
	} else {
		io->result = 0;
		if (io->op == LUN_OP_READ)
			memcpy(io->buf, slot->bounce, io->len);
	}
	file_slot_put(ctx, slot);
	return true;
}

/*
 * Reap whatever completes before deadline_ms (at least one event, unless
 * the deadline passes).  Returns how many of the caller's I/Os finished,
 * -ETIMEDOUT when nothing came before the deadline, or an io_getevents
 * error.
 */
static int file_aio_reap(struct file_ctx *ctx, int64_t deadline_ms)
{
	struct io_event events[FILE_AIO_DEPTH];
	int ours = 0;
	int n;
	int i;

	for (;;) {
		int64_t left = deadline_ms - vmfs_mono_ms();
		struct timespec ts;

		if (left < 0)
			left = 0;
		ts.tv_sec = left / 1000;
		ts.tv_nsec = (left % 1000) * 1000000;
		n = io_getevents(ctx->aio, 1, FILE_AIO_DEPTH, events, &ts);
		if (n == -EINTR)
			continue;
		if (n < 0)
			return n;
		for (i = 0; i < n; i++)
			ours += file_aio_complete(ctx, &events[i]);
		if (n > 0)
			return ours;
		if (left == 0)
			return -ETIMEDOUT;
	}
}

/*
 * Submit ios[0..n) (n <= ctx->nfree) and wait for them until deadline_ms.
 * Every ios[i].result is set.  I/Os still running at the deadline are
 * abandoned with -ETIMEDOUT: see the top of this file.
 */
static void file_aio_batch(struct file_lun *fl, struct file_ctx *ctx,
			   struct lun_io *ios, unsigned n, int64_t deadline_ms)
{
	struct iocb *cbs[FILE_AIO_DEPTH];
	unsigned nprep = 0;
	unsigned nsub = 0;
	unsigned pending;
	unsigned i;
	int rc = 0;

	for (i = 0; i < n; i++) {
		struct lun_io *io = &ios[i];
		struct file_slot *slot = file_slot_get(ctx, io->len);

		if (!slot) {
			io->result = -ENOMEM;
			continue;
		}
		slot->io = io;
		if (io->op == LUN_OP_WRITE) {
			memcpy(slot->bounce, io->buf, io->len);
			io_prep_pwrite(&slot->cb, fl->fd, slot->bounce, io->len,
				       (long long)io->off);
		} else {
			io_prep_pread(&slot->cb, fl->fd, slot->bounce, io->len,
				      (long long)io->off);
		}
		slot->cb.data = slot;
		cbs[nprep++] = &slot->cb;
	}

	/* io_submit may take fewer than asked; an error fails the rest. */
	while (nsub < nprep) {
		rc = io_submit(ctx->aio, (long)(nprep - nsub), cbs + nsub);
		if (rc == -EINTR)
			continue;
		if (rc <= 0) {
			for (i = nsub; i < nprep; i++) {
				struct file_slot *slot = cbs[i]->data;

				slot->io->result = rc < 0 ? rc : -EIO;
				file_slot_put(ctx, slot);
			}
			break;
		}
		nsub += (unsigned)rc;
	}

	pending = nsub;
	while (pending) {
		rc = file_aio_reap(ctx, deadline_ms);
		if (rc < 0)
			break;
		pending -= (unsigned)rc;
	}
	if (!pending)
		return;
	for (i = 0; i < nsub; i++) {
		struct file_slot *slot = cbs[i]->data;

		if (slot->state == SLOT_BUSY) {
			slot->io->result = rc;
			slot->io = NULL;
			slot->state = SLOT_ABANDONED;
		}
	}
}

int lun_file_aio_rw(struct file_lun *fl, struct lun_io *ios, unsigned n)
{
	unsigned timeout_ms = atomic_load(&fl->lun.io_timeout_ms);
	int64_t deadline_ms = vmfs_mono_ms() + timeout_ms;
	struct file_ctx *ctx;
	unsigned done = 0;
	unsigned i;
	int rc;

	rc = file_ctx_get(fl, &ctx);
	while (!rc && done < n) {
		unsigned k = n - done;

		/* Room comes back only as abandoned I/O is reaped. */
		while (!rc && ctx->nfree == 0) {
			int r = file_aio_reap(ctx, deadline_ms);

			rc = r < 0 ? r : 0;
		}
		if (rc)
			break;
		if (k > ctx->nfree)
			k = ctx->nfree;
		file_aio_batch(fl, ctx, ios + done, k, deadline_ms);
		done += k;
	}
	for (i = done; i < n; i++)
		ios[i].result = rc;
	for (i = 0; i < n; i++)
		if (ios[i].result)
			return ios[i].result;
	return 0;
}
