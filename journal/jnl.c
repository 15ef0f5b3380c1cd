/*
 * The running journal of a mounted volume.
 *
 * Operations run inside handles and give every metadata block they change
 * to jnl_dirty(), which copies the image into the block table (one entry
 * per home address: the newest image not yet written home).  The running
 * transaction is the set of entries dirtied since the last commit.
 *
 * One commit thread does all journal I/O, one transaction at a time:
 *   1. stop new handles, wait for the open ones to end, copy the running
 *      transaction's images into a ring buffer, let handles go again
 *      (they now fill the next transaction);
 *   2. if the transaction points at data written in place (the handles
 *      said so, jnl_note_data), or the tail is due to move, flush first:
 *      that data, and the home writes of earlier transactions, are
 *      durable; then move the header's tail past what is home;
 *   3. write descriptors, images and commit record in one go, flush: the
 *      transaction is durable (fsync waiters wake here);
 *   4. write the images home (checkpoint) and drop table entries that no
 *      newer transaction changed since.
 * So a commit costs one flush, or two when it orders data or moves the
 * tail; the tail moves at least once per commit interval under load, when
 * the ring needs the room, and when the journal goes idle.
 * A commit happens commit_ms after the first change, when the running
 * transaction reaches a quarter of the ring, or when someone syncs.  When
 * idle, the tail moves up after commit_ms so a crash replays nothing.
 *
 * jnl_seal closes the running transaction without I/O (a host that keeps
 * its cluster locks, at the end of each operation); until the commit
 * thread takes the newest sealed one, later seals join it (seal_join),
 * so such a host too writes each block once per commit.
 *
 * Freed data blocks: the engine must not reuse a block freed by
 * transaction T before jnl_reusable_seq() > T; by then T is durable and
 * the tail is past every record of it, so no replay can write an old
 * image over the block's new contents.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "vmfs/log.h"
#include "vmfs/clock.h"
#include "vmfs/journal.h"
#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"
#include "jnl_int.h"

#define JLOG(lvl, fmt, ...) qb_log(lvl, "journal: " fmt, ##__VA_ARGS__)
#define HOME_BATCH 64

struct jent {
	uint64_t addr;
	uint64_t seq;          /* newest transaction holding this image */
	uint32_t flags;
	bool running;          /* on the running transaction's list */
	uint64_t open_gen;     /* in the open sealed transaction of this */
	uint32_t open_idx;     /* generation, as its image open_idx */
	struct jent *hnext;
	struct jent *rnext;
	uint8_t img[VMFS_MD_BLOCK_SIZE];
};

/* A transaction copied out of the table, being written. */
struct jcommit {
	uint64_t seq;
	uint32_t nimages, ndesc, len;
	uint32_t cap;          /* images the buffers have room for */
	bool data;             /* points at data written in place */
	int64_t since;         /* when its first block changed */
	uint8_t *ring;         /* len blocks: descriptors, images, commit */
	uint64_t *addr;
	uint32_t *flags;
	uint32_t *at;          /* ring block of each image */
};

/* A transaction jnl_seal closed, waiting for the commit thread. */
struct jsealed {
	struct jcommit c;
	struct jsealed *next;
};

/* The most sealed transactions one commit writes (one flush for all). */
#define SEALED_BATCH 256

struct jnl {
	struct lun *lun;
	struct jnl_ring r;
	struct jnl_info hdr;
	struct jnl_bounds b;
	int64_t commit_ns;
	uint32_t trigger;      /* commit early at this many blocks */
	uint32_t full;         /* new handles wait at this many */

	pthread_mutex_t mu;
	pthread_cond_t cv;     /* handles and waiters */
	pthread_cond_t kick;   /* the commit thread */
	pthread_t thr;

	/* running transaction */
	uint64_t run_seq;
	struct jent *run_list;
	uint32_t run_n;
	uint32_t updates;      /* open handles */
	bool run_data;         /* jnl_note_data since the last commit */
	bool locked;           /* commit is waiting for handles to end */
	int64_t run_since;

	/* sealed transactions (jnl_seal), oldest first: written before the
	 * running one, whose sequence is above theirs */
	struct jsealed *sealed, **sealed_tail;
	uint32_t sealed_blocks;
	/* the newest sealed one while the commit thread has not taken it:
	 * the next seal joins it (jnl_seal); its entries carry open_gen */
	struct jsealed *open;
	uint64_t open_gen;

	/* every image not yet home */
	struct jent **tab;
	uint64_t tabmask;

	/* ring positions, ever-growing block numbers */
	uint64_t head;         /* where the next transaction goes */
	uint64_t home;         /* transactions before this are written home */
	uint64_t home_seq;     /* first sequence not home */
	uint64_t tail;         /* durable tail */
	uint64_t tail_seq;
	uint64_t durable_seq;  /* every sequence below this is durable */
	uint64_t sync_want;    /* commit at least through this sequence */
	uint64_t drain_seq;    /* move the tail until tail_seq >= this */
	int64_t home_since;
	int64_t late_warned;   /* last "commits are late" warning */
	int64_t lag_since;     /* home got ahead of the tail (0: it is not) */
	bool stopping;
	int err;
	struct jnl_stats st;
};

static __thread unsigned handle_depth;

static void cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m,
			    int64_t mono_deadline)
{
	struct timespec ts = vmfs_mono_timespec(mono_deadline);

	pthread_cond_timedwait(c, m, &ts);
}

static uint64_t ring_rel(const struct jnl *j, uint64_t pos)
{
	return VMFS_MD_BLOCK_SIZE + (pos % j->r.nblocks) * VMFS_MD_BLOCK_SIZE;
}

static struct jent **tab_slot(struct jnl *j, uint64_t addr)
{
	uint64_t h = (addr >> VMFS_MD_BLOCK_SHIFT) * 0x9e3779b97f4a7c15ull;

	return &j->tab[(h >> 20) & j->tabmask];
}

static struct jent *tab_find(struct jnl *j, uint64_t addr)
{
	struct jent *e = *tab_slot(j, addr);

	while (e && e->addr != addr)
		e = e->hnext;
	return e;
}

static void tab_drop(struct jnl *j, uint64_t addr, uint64_t seq)
{
	struct jent **pp = tab_slot(j, addr);

	for (; *pp; pp = &(*pp)->hnext) {
		struct jent *e = *pp;

		if (e->addr != addr)
			continue;
		if (e->seq == seq && !e->running) {
			*pp = e->hnext;
			free(e);
		}
		return;
	}
}

static void fail_locked(struct jnl *j, int err, const char *what)
{
	if (!j->err) {
		JLOG(LOG_CRIT, "%s: %s: %s; metadata changes stop here", lun_name(j->lun),
		     what, vmfs_strerror(err));
		j->err = err;
	}
	pthread_cond_broadcast(&j->cv);
}

/* ---- handles ---------------------------------------------------------- */

void jnl_handle_begin(struct jnl *j)
{
	if (handle_depth++)
		return;
	pthread_mutex_lock(&j->mu);
	/* Back-pressure: the running transaction must stay well inside the
	 * ring, whatever the handles already open still add to it. */
	while (j->locked ||
	       (j->run_n + j->sealed_blocks >= j->full && !j->err)) {
		if (j->run_n + j->sealed_blocks >= j->full)
			pthread_cond_signal(&j->kick);
		pthread_cond_wait(&j->cv, &j->mu);
	}
	j->updates++;
	pthread_mutex_unlock(&j->mu);
}

void jnl_handle_end(struct jnl *j)
{
	if (--handle_depth)
		return;
	pthread_mutex_lock(&j->mu);
	if (!--j->updates && j->locked)
		pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
}

bool jnl_in_handle(void)
{
	return handle_depth > 0;
}

int jnl_dirty(struct jnl *j, uint64_t addr, const void *img, uint32_t flags)
{
	bool own = !handle_depth;
	struct jent *e;
	int ret = 0;

	if (own) {
		JLOG(LOG_WARNING, "block %llu changed outside a handle",
		     (unsigned long long)addr);
		jnl_handle_begin(j);
	}
	pthread_mutex_lock(&j->mu);
	if (j->err) {
		ret = j->err == -VMFS_E_JNL_FULL ? -VMFS_E_JNL_ABORTED : j->err;
		goto out;
	}
	e = tab_find(j, addr);
	if (!e) {
		e = malloc(sizeof(*e));
		if (!e) {
			ret = -ENOMEM;
			goto out;
		}
		e->addr = addr;
		e->running = false;
		e->open_gen = 0;
		e->hnext = *tab_slot(j, addr);
		*tab_slot(j, addr) = e;
	}
	memcpy(e->img, img, VMFS_MD_BLOCK_SIZE);
	e->flags = flags;
	e->seq = j->run_seq;
	if (!e->running) {
		e->running = true;
		e->rnext = j->run_list;
		j->run_list = e;
		/* The first block of a transaction starts its commit clock:
		 * wake the commit thread, which may be asleep with nothing
		 * due, so that it commits commit_ns from now even if no one
		 * syncs.  With a sealed transaction or home writes pending it
		 * wakes up sooner than that anyway, and looks again.  At the
		 * trigger it commits at once. */
		if (!j->run_n++) {
			j->run_since = vmfs_mono_ns();
			if (!j->sealed && j->home <= j->tail)
				pthread_cond_signal(&j->kick);
		}
		if (j->run_n == j->trigger)
			pthread_cond_signal(&j->kick);
	}
out:
	pthread_mutex_unlock(&j->mu);
	if (own)
		jnl_handle_end(j);
	return ret;
}

void jnl_note_data(struct jnl *j)
{
	pthread_mutex_lock(&j->mu);
	j->run_data = true;
	pthread_mutex_unlock(&j->mu);
}

bool jnl_lookup(struct jnl *j, uint64_t addr, void *buf)
{
	struct jent *e;

	pthread_mutex_lock(&j->mu);
	e = tab_find(j, addr);
	if (e)
		memcpy(buf, e->img, VMFS_MD_BLOCK_SIZE);
	pthread_mutex_unlock(&j->mu);
	return e != NULL;
}

/* ---- commit ----------------------------------------------------------- */

static void jcommit_free(struct jcommit *c)
{
	lun_buf_free(c->ring);
	free(c->addr);
	free(c->flags);
	free(c->at);
}

/* Does someone wait for a sealed transaction (mu held)? */
static bool sealed_wanted(const struct jnl *j)
{
	return j->sealed && (j->stopping || j->drain_seq > j->tail_seq ||
			     j->sync_want >= j->sealed->c.seq);
}

/* Does a drain wait for nothing but the tail to move up to home? */
static bool tail_wanted(const struct jnl *j)
{
	return j->home > j->tail && j->drain_seq > j->tail_seq &&
	       j->drain_seq <= j->home_seq;
}

#define TAGS VMFS_JNL_TAGS_PER_DESC

/* Ring block of image i: a descriptor comes before each TAGS images. */
static uint32_t img_block(uint32_t i)
{
	return i + i / TAGS + 1;
}

/* Ring blocks of a transaction of n images: descriptors, images, commit. */
static uint32_t txn_len(uint32_t n)
{
	return (n + TAGS - 1) / TAGS + n + 1;
}

/* Room in c for n images in all; what it holds stays.  A new one gets
 * exactly n (the commit thread's build of a lone host's transaction); a
 * growing one (joins) at least doubles. */
static int jcommit_room(struct jcommit *c, uint32_t n)
{
	uint32_t cap = c->cap * 2;
	size_t bytes;
	uint8_t *ring;
	void *p;

	if (n <= c->cap)
		return 0;
	if (cap < n)
		cap = n;
	bytes = (size_t)txn_len(cap) * VMFS_MD_BLOCK_SIZE;
	ring = lun_buf_alloc(bytes);
	if (!ring)
		return -ENOMEM;
	memset(ring, 0, bytes);
	if (c->ring)
		memcpy(ring, c->ring, (size_t)c->len * VMFS_MD_BLOCK_SIZE);
	lun_buf_free(c->ring);
	c->ring = ring;
	p = realloc(c->addr, cap * sizeof(*c->addr));
	if (!p)
		return -ENOMEM;
	c->addr = p;
	p = realloc(c->flags, cap * sizeof(*c->flags));
	if (!p)
		return -ENOMEM;
	c->flags = p;
	p = realloc(c->at, cap * sizeof(*c->at));
	if (!p)
		return -ENOMEM;
	c->at = p;
	c->cap = cap;
	return 0;
}

/* e's image as image i of c (i == c->nimages: one more; room made). */
static void jcommit_put(struct jcommit *c, uint32_t i, const struct jent *e)
{
	uint32_t t = i % TAGS, k = img_block(i);
	struct vmfs_jnl_desc *d =
		(void *)(c->ring + (size_t)(k - t - 1) * VMFS_MD_BLOCK_SIZE);

	fmt_jnl_tag_set(d, t, e->addr, e->flags);
	if (i == c->nimages) {
		/* seq, jid and gen are commit_seal's. */
		fmt_jnl_desc_encode(&(struct fmt_jnl_desc){ .index = i / TAGS,
							    .ntags = t + 1 }, d);
		c->nimages = i + 1;
		c->ndesc = i / TAGS + 1;
		c->len = txn_len(i + 1);
	}
	memcpy(c->ring + (size_t)k * VMFS_MD_BLOCK_SIZE, e->img,
	       VMFS_MD_BLOCK_SIZE);
	c->addr[i] = e->addr;
	c->flags[i] = e->flags;
	c->at[i] = k;
}

/*
 * Stop new handles and wait for the open ones to end (mu held).  yield:
 * the commit thread's own build, which gives way (-EAGAIN) when a sealed
 * transaction is wanted meanwhile, because the handles it waits for may
 * themselves wait for what that sealed one lets go.
 */
static int run_quiesce(struct jnl *j, bool yield)
{
	j->locked = true;
	while (j->updates) {
		if (yield && (sealed_wanted(j) || tail_wanted(j))) {
			j->locked = false;
			pthread_cond_broadcast(&j->cv);
			return -EAGAIN;
		}
		pthread_cond_wait(&j->cv, &j->mu);
	}
	return 0;
}

/*
 * The running transaction's entries are copied out (into c, or joined to
 * the open sealed one): it starts empty, and handles may go on.  next:
 * it also takes the next sequence (it did not join an earlier one).
 */
static int run_reset(struct jnl *j, bool next)
{
	for (struct jent *e = j->run_list; e; e = e->rnext)
		e->running = false;
	j->run_list = NULL;
	j->run_n = 0;
	j->run_data = false;
	if (next)
		j->run_seq++;
	j->locked = false;
	pthread_cond_broadcast(&j->cv);
	return j->err;
}

/*
 * Step 1, with mu held: wait for handles, copy the running transaction
 * out.  Returns 0, or an error (the journal is then failed), or -EAGAIN
 * (yield, run_quiesce: nothing done).  gen: nonzero when c is to be the
 * open sealed transaction, which later seals may join.
 */
static int commit_build(struct jnl *j, struct jcommit *c, bool yield,
			uint64_t gen)
{
	uint32_t i = 0;
	int ret = run_quiesce(j, yield);

	if (ret)
		return ret;
	memset(c, 0, sizeof(*c));
	c->seq = j->run_seq;
	c->since = j->run_since;
	c->data = j->run_data;
	if (txn_len(j->run_n) > j->r.nblocks) {
		JLOG(LOG_CRIT, "%s: one transaction needs %u journal blocks, the journal has %llu",
		     lun_name(j->lun), txn_len(j->run_n),
		     (unsigned long long)j->r.nblocks);
		fail_locked(j, -VMFS_E_JNL_FULL, "committing");
	} else if (jcommit_room(c, j->run_n)) {
		fail_locked(j, -ENOMEM, "committing");
	}
	for (struct jent *e = j->run_list; e && !j->err; e = e->rnext, i++) {
		jcommit_put(c, i, e);
		e->open_gen = gen;
		e->open_idx = i;
	}
	return run_reset(j, true);
}

/*
 * jnl_seal's other way, with mu held and handles quiesced: the running
 * transaction joins the open sealed one o (same sequence; a block both
 * changed keeps the newer image).  Nothing in o has been written yet, so
 * a replay sees both or neither, like one running transaction.
 */
static int seal_join(struct jnl *j, struct jsealed *o)
{
	uint32_t len = o->c.len;

	if (jcommit_room(&o->c, o->c.nimages + j->run_n)) {
		fail_locked(j, -ENOMEM, "sealing");
		return run_reset(j, false);
	}
	for (struct jent *e = j->run_list; e; e = e->rnext) {
		if (e->open_gen != j->open_gen) {
			e->open_gen = j->open_gen;
			e->open_idx = o->c.nimages;
		}
		jcommit_put(&o->c, e->open_idx, e);
		/* Home with o now, whatever sequence dirtied it. */
		e->seq = o->c.seq;
	}
	o->c.data |= j->run_data;
	j->sealed_blocks += o->c.len - len;
	return run_reset(j, false);
}

/* Seal descriptors and commit record for ring position pos. */
static void commit_seal(struct jnl *j, struct jcommit *c, uint64_t pos)
{
	struct vmfs_jnl_commit *cm =
		(void *)(c->ring + (size_t)(c->len - 1) * VMFS_MD_BLOCK_SIZE);
	uint32_t crc = 0;

	for (uint32_t k = 0; k + 1 < c->len; k++) {
		struct vmfs_jnl_desc *d = (void *)(c->ring + (size_t)k * VMFS_MD_BLOCK_SIZE);

		/* Descriptors sit at 0, then after every full set of tags. */
		if (k % (VMFS_JNL_TAGS_PER_DESC + 1) == 0) {
			struct fmt_jnl_desc jd;

			(void)fmt_jnl_desc_decode(d, &jd);
			jd.seq = c->seq;
			jd.jid = j->r.jid;
			jd.gen = 1;
			fmt_jnl_desc_encode(&jd, d);
			lun_md_seal(&d->jd_hdr, VMFS_MAGIC_JDESC,
				    jnl_ring_addr(&j->r, (pos + k) % j->r.nblocks),
				    VMFS_MD_BLOCK_SIZE);
		}
		crc = lun_crc32c(crc, d, VMFS_MD_BLOCK_SIZE);
	}
	fmt_jnl_commit_encode(&(struct fmt_jnl_commit){
				      .gen = 1, .seq = c->seq, .jid = j->r.jid,
				      .nblocks = c->len - 1, .crc = crc,
				      .time_ns = vmfs_wall_ns(),
				      .nimages = c->nimages }, cm);
	lun_md_seal(&cm->jc_hdr, VMFS_MAGIC_JCOMMIT,
		    jnl_ring_addr(&j->r, (pos + c->len - 1) % j->r.nblocks),
		    VMFS_MD_BLOCK_SIZE);
}

static int ring_write(struct jnl *j, const uint8_t *buf, uint64_t pos,
		      uint64_t n)
{
	while (n) {
		uint64_t at = pos % j->r.nblocks;
		uint64_t run = j->r.nblocks - at < n ? j->r.nblocks - at : n;
		int ret = lun_write(j->lun, buf, run * VMFS_MD_BLOCK_SIZE,
				    jnl_ring_addr(&j->r, at));

		if (ret)
			return ret;
		buf += run * VMFS_MD_BLOCK_SIZE;
		pos += run;
		n -= run;
	}
	return 0;
}

static int lun_flush_counted(struct jnl *j)
{
	pthread_mutex_lock(&j->mu);
	j->st.flushes++;
	pthread_mutex_unlock(&j->mu);
	return lun_flush(j->lun);
}

/*
 * Step 4: every image of c to its home address, in batches; a lockable
 * block's lock record is never written (lock_md_writev), whatever the
 * logged image holds there.
 */
static int commit_home(struct jnl *j, const struct jcommit *c)
{
	struct lock_md_blk b[HOME_BATCH];

	for (uint32_t i = 0; i < c->nimages;) {
		unsigned n = 0;
		int ret;

		for (; i < c->nimages && n < HOME_BATCH; i++, n++)
			b[n] = (struct lock_md_blk){
				.img = c->ring + (size_t)c->at[i] * VMFS_MD_BLOCK_SIZE,
				.addr = c->addr[i],
				.lockable = c->flags[i] & VMFS_JNL_TAG_LOCKABLE,
			};
		ret = lock_md_writev(j->lun, b, n);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * The commit interval bounds what a crash loses only while commits keep
 * up: say so when a transaction became durable more than two intervals
 * after its first change (a slow or overloaded LUN), at most once a
 * minute.  With mu held.
 */
static void commit_lateness(struct jnl *j, const struct jcommit *c)
{
	int64_t now = vmfs_mono_ns(), age = now - c->since;

	if (age <= 2 * j->commit_ns ||
	    (j->late_warned && now - j->late_warned < 60000000000LL))
		return;
	j->late_warned = now;
	JLOG(LOG_WARNING, "%s: transaction %llu became durable %lld ms after its first change (commit interval %lld ms): the LUN is slow, and a crash now loses up to that much un-synced work",
	     lun_name(j->lun), (unsigned long long)c->seq, (long long)(age / 1000000),
	     (long long)(j->commit_ns / 1000000));
}

/*
 * Steps 2-4 for n built transactions in sequence order, with mu held
 * (dropped for the I/O, held again on return): one flush before (when
 * one of them points at data or the tail moves), their descriptors,
 * images and commit records back to back, one flush, then home.
 */
static void commit_batch(struct jnl *j, struct jcommit *cs, uint32_t n)
{
	uint64_t pos, total = 0, new_tail, new_tail_seq;
	bool advance, data = false;
	int ret = 0;

	pos = j->head;
	for (uint32_t i = 0; i < n; i++) {
		total += cs[i].len;
		data |= cs[i].data;
	}
	new_tail = j->tail;
	new_tail_seq = j->tail_seq;
	/* Move the tail when a flush is due anyway, when the ring needs the
	 * room, when someone waits for it, or once per commit interval. */
	advance = j->home > j->tail &&
		  (data || pos + total - j->tail > j->r.nblocks ||
		   j->drain_seq > j->tail_seq ||
		   vmfs_mono_ns() - j->lag_since >= j->commit_ns);
	pthread_mutex_unlock(&j->mu);

	for (uint32_t i = 0, off = 0; i < n; off += cs[i].len, i++)
		commit_seal(j, &cs[i], pos + off);
	/* Data the transactions point at, and earlier home writes, first. */
	if (data || advance)
		ret = lun_flush_counted(j);
	if (!ret && advance) {
		new_tail = j->home;
		new_tail_seq = j->home_seq;
		ret = jnl_header_write(j->lun, j->r.off, &j->hdr, VMFS_JNL_DIRTY,
				       ring_rel(j, new_tail), new_tail_seq);
	}
	/* Either the ring has room after the old tail, or the tail moved up
	 * to pos (everything before it is home): total <= nblocks fits. */
	for (uint32_t i = 0, off = 0; !ret && i < n; off += cs[i].len, i++)
		ret = ring_write(j, cs[i].ring, pos + off, cs[i].len);
	if (!ret)
		ret = lun_flush_counted(j);

	pthread_mutex_lock(&j->mu);
	if (ret) {
		fail_locked(j, ret, "writing a transaction");
		return;
	}
	if (new_tail != j->tail)
		j->lag_since = 0;
	j->tail = new_tail;
	j->tail_seq = new_tail_seq;
	j->head = pos + total;
	j->durable_seq = cs[n - 1].seq + 1;
	for (uint32_t i = 0; i < n; i++) {
		commit_lateness(j, &cs[i]);
		j->st.commits++;
		j->st.images += cs[i].nimages;
		j->st.ring_blocks += cs[i].len;
	}
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);

	for (uint32_t i = 0; !ret && i < n; i++)
		ret = commit_home(j, &cs[i]);

	pthread_mutex_lock(&j->mu);
	if (ret) {
		fail_locked(j, ret, "writing metadata home");
		return;
	}
	j->home = j->head;
	j->home_seq = cs[n - 1].seq + 1;
	j->home_since = vmfs_mono_ns();
	if (!j->lag_since)
		j->lag_since = j->home_since;
	j->st.checkpoints++;
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t k = 0; k < cs[i].nimages; k++)
			tab_drop(j, cs[i].addr[k], cs[i].seq);
	pthread_cond_broadcast(&j->cv);
}

/* Called with mu held and a non-empty running transaction, no sealed
 * one waiting. */
static void commit_locked(struct jnl *j)
{
	struct jcommit c;
	int ret = commit_build(j, &c, true, 0);

	if (ret == -EAGAIN)
		return;   /* sealed ones first */
	if (!ret)
		commit_batch(j, &c, 1);
	jcommit_free(&c);
}

/* Write the sealed transactions that fit in half the ring, mu held. */
static void commit_sealed_locked(struct jnl *j)
{
	struct jcommit *cs = malloc(SEALED_BATCH * sizeof(*cs));
	struct jsealed *taken[SEALED_BATCH];
	uint64_t total = 0;
	uint32_t n = 0;

	if (!cs) {
		fail_locked(j, -ENOMEM, "committing");
		return;
	}
	while (j->sealed && n < SEALED_BATCH &&
	       (!n || total + j->sealed->c.len <= j->r.nblocks / 2)) {
		struct jsealed *s = j->sealed;

		j->sealed = s->next;
		if (!j->sealed)
			j->sealed_tail = &j->sealed;
		if (s == j->open)
			j->open = NULL;   /* later seals start a new one */
		j->sealed_blocks -= s->c.len;
		total += s->c.len;
		cs[n] = s->c;
		taken[n++] = s;
	}
	pthread_cond_broadcast(&j->cv);   /* back-pressure eased */
	commit_batch(j, cs, n);
	for (uint32_t i = 0; i < n; i++) {
		jcommit_free(&taken[i]->c);
		free(taken[i]);
	}
	free(cs);
}

/* Is the oldest sealed transaction due (mu held)? */
static bool sealed_due(const struct jnl *j, int64_t now)
{
	return j->sealed &&
	       (sealed_wanted(j) || j->sealed_blocks >= j->trigger ||
		now - j->sealed->c.since >= j->commit_ns);
}

/* Move the durable tail up to home (everything home is flushed first). */
static void advance_locked(struct jnl *j)
{
	uint64_t h = j->home, hs = j->home_seq;
	int ret;

	pthread_mutex_unlock(&j->mu);
	ret = lun_flush_counted(j);
	if (!ret)
		ret = jnl_header_write(j->lun, j->r.off, &j->hdr, VMFS_JNL_DIRTY,
				       ring_rel(j, h), hs);
	if (!ret)
		ret = lun_flush_counted(j);
	pthread_mutex_lock(&j->mu);
	if (ret) {
		fail_locked(j, ret, "moving the journal tail");
		return;
	}
	j->tail = h;
	j->tail_seq = hs;
	j->lag_since = 0;
	pthread_cond_broadcast(&j->cv);
}

static void *jnl_thread(void *arg)
{
	struct jnl *j = arg;

	pthread_mutex_lock(&j->mu);
	while (!j->err) {
		int64_t now = vmfs_mono_ns(), deadline = INT64_MAX;

		if (sealed_due(j, now)) {
			commit_sealed_locked(j);
			continue;
		}
		/* A drain that the running transaction has no part in. */
		if (tail_wanted(j)) {
			advance_locked(j);
			continue;
		}
		/* (locked: jnl_seal is copying it out) */
		if (j->run_n && !j->sealed && !j->locked &&
		    (j->stopping || j->sync_want >= j->run_seq ||
		     j->drain_seq > j->tail_seq || j->run_n >= j->trigger ||
		     now - j->run_since >= j->commit_ns)) {
			commit_locked(j);
			continue;
		}
		if (j->home > j->tail &&
		    (j->stopping || j->drain_seq > j->tail_seq ||
		     now - j->home_since >= j->commit_ns)) {
			advance_locked(j);
			continue;
		}
		if (j->stopping)
			break;
		if (j->sealed)
			deadline = j->sealed->c.since + j->commit_ns;
		else if (j->run_n)
			deadline = j->run_since + j->commit_ns;
		else if (j->home > j->tail)
			deadline = j->home_since + j->commit_ns;
		if (deadline == INT64_MAX)
			pthread_cond_wait(&j->kick, &j->mu);
		else
			cond_wait_until(&j->kick, &j->mu, deadline);
	}
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

int jnl_sync(struct jnl *j)
{
	bool own;
	uint64_t target;
	int ret;

	if (handle_depth) {
		JLOG(LOG_ERR, "sync inside a handle would wait for itself");
		return -EDEADLK;
	}
	pthread_mutex_lock(&j->mu);
	own = j->run_n > 0;
	target = own ? j->run_seq : j->run_seq - 1;
	if (target >= j->durable_seq && !j->err) {
		j->st.forced++;
		if (j->sync_want < target)
			j->sync_want = target;
		pthread_cond_signal(&j->kick);
		while (j->durable_seq <= target && !j->err)
			pthread_cond_wait(&j->cv, &j->mu);
	}
	/* Durable is what was asked; a later failure is not this caller's. */
	ret = j->durable_seq > target ? 0 : j->err;
	pthread_mutex_unlock(&j->mu);
	/* A commit that began before the caller's data was written does not
	 * cover that data: flush once more. */
	if (!ret && !own)
		ret = lun_flush(j->lun);
	return ret;
}

int jnl_drain(struct jnl *j)
{
	uint64_t target;
	int ret;

	if (handle_depth) {
		JLOG(LOG_ERR, "drain inside a handle would wait for itself");
		return -EDEADLK;
	}
	pthread_mutex_lock(&j->mu);
	target = j->run_n ? j->run_seq + 1 : j->run_seq;
	if (j->drain_seq < target)
		j->drain_seq = target;
	if (j->sync_want < target - 1)
		j->sync_want = target - 1;
	pthread_cond_signal(&j->kick);
	while (j->tail_seq < target && !j->err)
		pthread_cond_wait(&j->cv, &j->mu);
	ret = j->err;
	pthread_mutex_unlock(&j->mu);
	return ret;
}

int jnl_seal(struct jnl *j, uint64_t *seq)
{
	struct jsealed *sl;
	int ret;

	if (handle_depth) {
		JLOG(LOG_ERR, "seal inside a handle would wait for itself");
		return -EDEADLK;
	}
	sl = calloc(1, sizeof(*sl));
	if (!sl)
		return -ENOMEM;
	pthread_mutex_lock(&j->mu);
	/* The commit thread may be copying the running transaction out: it
	 * is then no longer running, and holds everything so far. */
	while (j->locked && !j->err)
		pthread_cond_wait(&j->cv, &j->mu);
	ret = j->err;
	if (!ret && !j->run_n) {
		*seq = j->run_seq - 1;
	} else if (!ret) {
		ret = run_quiesce(j, false);
		/* Join the open one while it stays small: a host that keeps
		 * its locks seals every operation, and one commit (one home
		 * write per block) then serves them all, as the running
		 * transaction does for a lone host. */
		if (!ret && j->open &&
		    txn_len(j->open->c.nimages + j->run_n) <= j->trigger) {
			*seq = j->open->c.seq;
			ret = seal_join(j, j->open);
			/* Due when o is (the commit thread knows when). */
			if (j->sealed_blocks >= j->trigger)
				pthread_cond_signal(&j->kick);
		} else if (!ret) {
			/* (run_quiesce again: it returns at once) */
			ret = commit_build(j, &sl->c, false, ++j->open_gen);
			if (!ret) {
				*seq = sl->c.seq;
				j->sealed_blocks += sl->c.len;
				*j->sealed_tail = sl;
				j->sealed_tail = &sl->next;
				j->open = sl;
				sl = NULL;
			}
			pthread_cond_signal(&j->kick);
		}
	}
	pthread_mutex_unlock(&j->mu);
	if (sl) {
		jcommit_free(&sl->c);
		free(sl);
	}
	return ret;
}

int jnl_drain_to(struct jnl *j, uint64_t seq)
{
	int ret;

	pthread_mutex_lock(&j->mu);
	if (j->drain_seq < seq + 1)
		j->drain_seq = seq + 1;
	if (j->sync_want < seq)
		j->sync_want = seq;
	pthread_cond_signal(&j->kick);
	/* A commit thread waiting for handles gives way (commit_build). */
	pthread_cond_broadcast(&j->cv);
	while (j->tail_seq <= seq && !j->err)
		pthread_cond_wait(&j->cv, &j->mu);
	ret = j->tail_seq > seq ? 0 : j->err;
	pthread_mutex_unlock(&j->mu);
	return ret;
}

static uint64_t locked_get(struct jnl *j, const uint64_t *field)
{
	uint64_t v;

	pthread_mutex_lock(&j->mu);
	v = *field;
	pthread_mutex_unlock(&j->mu);
	return v;
}

uint64_t jnl_running_seq(struct jnl *j)
{
	return locked_get(j, &j->run_seq);
}

uint64_t jnl_reusable_seq(struct jnl *j)
{
	return locked_get(j, &j->tail_seq);
}

uint64_t jnl_home_seq(struct jnl *j)
{
	return locked_get(j, &j->home_seq);
}

int jnl_error(struct jnl *j)
{
	int e;

	pthread_mutex_lock(&j->mu);
	e = j->err;
	pthread_mutex_unlock(&j->mu);
	return e;
}

void jnl_stats_get(struct jnl *j, struct jnl_stats *s)
{
	pthread_mutex_lock(&j->mu);
	*s = j->st;
	pthread_mutex_unlock(&j->mu);
}

/* ---- start and stop ---------------------------------------------------- */

int jnl_start(struct lun *lun, uint64_t off, const struct jnl_bounds *b,
	      const struct jnl_params *p, struct jnl **out)
{
	struct jnl *j;
	uint64_t slots;
	int ret;

	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->lun = lun;
	j->b = *b;
	ret = jnl_header_read(lun, off, &j->hdr);
	if (ret)
		goto err;
	if (j->hdr.state != VMFS_JNL_CLEAN) {
		ret = -VMFS_E_JNL_DIRTY;
		goto err;
	}
	jnl_ring_init(&j->r, off, &j->hdr);
	j->commit_ns = (int64_t)(p && p->commit_ms ? p->commit_ms : 1000) * 1000000LL;
	j->trigger = (uint32_t)(j->r.nblocks / 4 ? j->r.nblocks / 4 : 1);
	j->full = (uint32_t)(j->r.nblocks / 2 ? j->r.nblocks / 2 : 1);
	for (slots = 64; slots < j->r.nblocks * 2; slots *= 2)
		;
	j->tab = calloc(slots, sizeof(*j->tab));
	if (!j->tab) {
		ret = -ENOMEM;
		goto err;
	}
	j->tabmask = slots - 1;
	j->head = j->home = j->tail =
		(j->hdr.head - VMFS_MD_BLOCK_SIZE) / VMFS_MD_BLOCK_SIZE;
	j->run_seq = j->home_seq = j->tail_seq = j->durable_seq = j->hdr.seq;
	j->drain_seq = j->hdr.seq;
	j->sealed_tail = &j->sealed;
	/* From here on a crash means: replay this region. */
	ret = jnl_header_write(lun, off, &j->hdr, VMFS_JNL_DIRTY,
			       j->hdr.head, j->hdr.seq);
	if (!ret)
		ret = lun_flush(lun);
	if (ret)
		goto err;
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	vmfs_cond_init_mono(&j->kick);
	ret = -pthread_create(&j->thr, NULL, jnl_thread, j);
	if (ret) {
		pthread_mutex_destroy(&j->mu);
		pthread_cond_destroy(&j->cv);
		pthread_cond_destroy(&j->kick);
		goto err;
	}
	*out = j;
	return 0;
err:
	free(j->tab);
	free(j);
	return ret;
}

int jnl_stop(struct jnl *j)
{
	int ret;

	if (!j)
		return 0;
	pthread_mutex_lock(&j->mu);
	j->stopping = true;
	pthread_cond_signal(&j->kick);
	pthread_mutex_unlock(&j->mu);
	pthread_join(j->thr, NULL);
	ret = j->err;
	/* Everything is home and flushed: nothing left to replay. */
	if (!ret)
		ret = jnl_header_write(j->lun, j->r.off, &j->hdr, VMFS_JNL_CLEAN,
				       ring_rel(j, j->head), j->run_seq);
	if (!ret)
		ret = lun_flush(j->lun);
	while (j->sealed) {   /* left by a failed journal */
		struct jsealed *sl = j->sealed;

		j->sealed = sl->next;
		j->open = NULL;
		jcommit_free(&sl->c);
		free(sl);
	}
	for (uint64_t i = 0; i <= j->tabmask; i++) {
		while (j->tab[i]) {
			struct jent *e = j->tab[i];

			j->tab[i] = e->hnext;
			free(e);
		}
	}
	free(j->tab);
	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->cv);
	pthread_cond_destroy(&j->kick);
	free(j);
	return ret == -VMFS_E_JNL_FULL ? -VMFS_E_JNL_ABORTED : ret;
}
