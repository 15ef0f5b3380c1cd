/*
 * Reading a journal region: walk its committed transactions from the tail,
 * and replay them.  Any host may do this for any slot (a survivor replays
 * a dead host's journal; fsck replays every journal first).
 *
 * A transaction counts only when every block of it is there: descriptors
 * that verify and carry the expected sequence and the region's jid, tags
 * inside the bounds, and a commit record whose crc32c matches the
 * descriptor and image blocks.  The first transaction that fails any of
 * that ends the walk; what follows it was never acknowledged.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "vmfs/journal.h"
#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"
#include "jnl_int.h"

const char *jnl_stop_str(enum jnl_stop s)
{
	switch (s) {
	case JNL_STOP_CLEAN:
		return "clean";
	case JNL_STOP_END:
		return "end of the log";
	case JNL_STOP_TORN:
		return "a transaction that was never completely written";
	case JNL_STOP_BAD_COMMIT:
		return "a commit record whose checksum does not match";
	case JNL_STOP_BAD_TAG:
		return "a transaction naming a block outside the metadata areas";
	case JNL_STOP_TOO_LONG:
		return "a transaction longer than the journal";
	}
	return "?";
}

/* Read n ring blocks starting at ring block index i (wrapping). */
static int ring_read(struct lun *lun, const struct jnl_ring *r, uint64_t i,
		     uint8_t *buf, uint64_t n)
{
	while (n) {
		uint64_t at = i % r->nblocks;
		uint64_t run = r->nblocks - at < n ? r->nblocks - at : n;
		int ret = lun_read(lun, buf, run * VMFS_MD_BLOCK_SIZE,
				   jnl_ring_addr(r, at));

		if (ret)
			return ret;
		buf += run * VMFS_MD_BLOCK_SIZE;
		i += run;
		n -= run;
	}
	return 0;
}

struct walk_buf {
	uint8_t *img;          /* images, lun-aligned */
	uint64_t *addr;
	uint32_t *flags;
	uint64_t cap;
};

static int walk_buf_grow(struct walk_buf *w, uint64_t need)
{
	uint8_t *img;
	uint64_t cap = w->cap ? w->cap : 64;

	if (need <= w->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	img = lun_buf_alloc(cap * VMFS_MD_BLOCK_SIZE);
	if (!img)
		return -ENOMEM;
	if (w->cap)
		memcpy(img, w->img, w->cap * VMFS_MD_BLOCK_SIZE);
	lun_buf_free(w->img);
	w->img = img;
	w->addr = realloc(w->addr, cap * sizeof(*w->addr));
	w->flags = realloc(w->flags, cap * sizeof(*w->flags));
	if (!w->addr || !w->flags)
		return -ENOMEM;
	w->cap = cap;
	return 0;
}

static bool tag_ok(const struct jnl_bounds *b, uint64_t addr)
{
	return addr % VMFS_MD_BLOCK_SIZE == 0 && addr >= b->lo &&
	       addr < b->hi && b->hi - addr >= VMFS_MD_BLOCK_SIZE;
}

/*
 * Read the transaction starting at ring block i with sequence seq.
 * Returns 0 with t filled, 1 with *stop set when there is none, or a
 * negative error for an I/O failure.
 */
static int txn_read(struct lun *lun, const struct jnl_ring *r,
		    const struct jnl_bounds *b, uint64_t i, uint64_t seq,
		    uint8_t *blk, struct walk_buf *w, struct jnl_txn *t,
		    enum jnl_stop *stop)
{
	uint64_t k = 0, nimg = 0;
	uint32_t crc = 0;
	int ret;

	for (uint32_t index = 0;; index++) {
		const struct vmfs_jnl_desc *d = (const void *)blk;
		const struct vmfs_jnl_commit *c = (const void *)blk;
		uint64_t at = (i + k) % r->nblocks;
		struct fmt_jnl_commit jc;
		struct fmt_jnl_desc jd;
		struct fmt_hdr bh;
		uint32_t ntags;

		if (k + 1 > r->nblocks) {
			*stop = JNL_STOP_TOO_LONG;
			return 1;
		}
		ret = ring_read(lun, r, i + k, blk, 1);
		if (ret)
			return ret;
		fmt_hdr_decode(&c->jc_hdr, &bh);
		fmt_jnl_commit_decode(c, &jc);
		if (index > 0 && bh.magic == VMFS_MAGIC_JCOMMIT) {
			if (lun_md_verify(&c->jc_hdr, VMFS_MAGIC_JCOMMIT,
					  jnl_ring_addr(r, at), VMFS_MD_BLOCK_SIZE) ||
			    jc.seq != seq || jc.jid != r->jid) {
				*stop = JNL_STOP_TORN;
				return 1;
			}
			if (jc.nblocks != k || jc.nimages != nimg || jc.crc != crc) {
				*stop = JNL_STOP_BAD_COMMIT;
				return 1;
			}
			t->seq = seq;
			t->pos = jnl_ring_addr(r, i % r->nblocks) - r->off;
			t->len = (uint32_t)(k + 1);
			t->nimages = (uint32_t)nimg;
			t->time_ns = jc.time_ns;
			t->addr = w->addr;
			t->flags = w->flags;
			t->img = w->img;
			return 0;
		}
		/* An out-of-range tag count is refused just below. */
		(void)fmt_jnl_desc_decode(d, &jd);
		if (lun_md_verify(&d->jd_hdr, VMFS_MAGIC_JDESC,
				  jnl_ring_addr(r, at), VMFS_MD_BLOCK_SIZE) ||
		    jd.seq != seq || jd.jid != r->jid || jd.index != index) {
			*stop = index ? JNL_STOP_TORN : JNL_STOP_END;
			return 1;
		}
		ntags = jd.ntags;
		if (!ntags || ntags > VMFS_JNL_TAGS_PER_DESC) {
			*stop = JNL_STOP_TORN;
			return 1;
		}
		if (k + 1 + ntags + 1 > r->nblocks) {
			*stop = JNL_STOP_TOO_LONG;
			return 1;
		}
		crc = lun_crc32c(crc, blk, VMFS_MD_BLOCK_SIZE);
		ret = walk_buf_grow(w, nimg + ntags);
		if (ret)
			return ret;
		for (uint32_t n = 0; n < ntags; n++)
			fmt_jnl_tag_get(d, n, &w->addr[nimg + n],
					&w->flags[nimg + n]);
		ret = ring_read(lun, r, i + k + 1,
				w->img + nimg * VMFS_MD_BLOCK_SIZE, ntags);
		if (ret)
			return ret;
		crc = lun_crc32c(crc, w->img + nimg * VMFS_MD_BLOCK_SIZE,
				 (size_t)ntags * VMFS_MD_BLOCK_SIZE);
		k += 1 + ntags;
		nimg += ntags;
		/* Judged once the commit checks out: a stray tag in a
		 * transaction that never committed is harmless. */
		for (uint64_t n = nimg - ntags; n < nimg; n++)
			if (!tag_ok(b, w->addr[n]))
				w->flags[n] |= JNL_TAG_OUT_OF_BOUNDS;
	}
}

int jnl_walk(struct lun *lun, uint64_t off, const struct jnl_bounds *b,
	     bool from_tail_even_if_clean, jnl_txn_cb cb, void *ctx,
	     struct jnl_walk_result *res)
{
	struct walk_buf w = { 0 };
	struct jnl_ring r;
	uint8_t *blk;
	uint64_t i, seq;
	int ret;

	memset(res, 0, sizeof(*res));
	ret = jnl_header_read(lun, off, &res->hdr);
	if (ret)
		return ret;
	jnl_ring_init(&r, off, &res->hdr);
	res->end = res->hdr.tail;
	res->next_seq = res->hdr.seq;
	if (res->hdr.state == VMFS_JNL_CLEAN && !from_tail_even_if_clean) {
		res->end = res->hdr.head;
		res->stop = JNL_STOP_CLEAN;
		return 0;
	}
	/* Records of a newer minor may mean more than this host knows
	 * (a newer major never verifies; the records of major 1 are those
	 * of major 2, SPEC §14). */
	if (res->hdr.state == VMFS_JNL_DIRTY &&
	    res->hdr.major == VMFS_FORMAT_MAJOR && res->hdr.minor > VMFS_FORMAT_MINOR)
		return -VMFS_E_BAD_VERSION;
	blk = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	if (!blk)
		return -ENOMEM;
	i = (res->hdr.tail - VMFS_MD_BLOCK_SIZE) / VMFS_MD_BLOCK_SIZE;
	seq = res->hdr.seq;
	for (;;) {
		struct jnl_txn t;
		enum jnl_stop stop = JNL_STOP_END;
		bool bad = false;

		ret = txn_read(lun, &r, b, i, seq, blk, &w, &t, &stop);
		if (ret < 0)
			break;
		if (ret == 1) {
			res->stop = stop;
			ret = 0;
			break;
		}
		for (uint32_t n = 0; n < t.nimages; n++)
			bad |= !!(t.flags[n] & JNL_TAG_OUT_OF_BOUNDS);
		if (bad) {
			res->stop = JNL_STOP_BAD_TAG;
			break;
		}
		if (cb) {
			ret = cb(ctx, &t);
			if (ret)
				break;
		}
		res->ntxn++;
		res->nimages += t.nimages;
		i += t.len;
		seq++;
		res->end = jnl_ring_addr(&r, i % r.nblocks) - off;
		res->next_seq = seq;
	}
	lun_buf_free(blk);
	lun_buf_free(w.img);
	free(w.addr);
	free(w.flags);
	return ret;
}

/* Replay writes of one lock_md_writev (the home batch of jnl.c). */
#define REPLAY_BATCH 64

/*
 * Write one transaction's images home.  A lockable block's lock record is
 * the one on disk, never the logged one: the log holds the record as it
 * was when the block was changed, and another host may have changed it
 * since (lock_md_writev leaves it out of the write).
 */
static int replay_txn(void *arg, const struct jnl_txn *t)
{
	struct lun *lun = arg;
	struct lock_md_blk b[REPLAY_BATCH];

	for (uint32_t i = 0; i < t->nimages;) {
		unsigned n = 0;
		int ret;

		for (; i < t->nimages && n < REPLAY_BATCH; i++, n++)
			b[n] = (struct lock_md_blk){
				.img = t->img + (size_t)i * VMFS_MD_BLOCK_SIZE,
				.addr = t->addr[i],
				.lockable = t->flags[i] & VMFS_JNL_TAG_LOCKABLE,
			};
		ret = lock_md_writev(lun, b, n);
		if (ret)
			return ret;
	}
	return 0;
}

int jnl_replay(struct lun *lun, uint64_t off, const struct jnl_bounds *b,
	       struct jnl_walk_result *res)
{
	int ret;

	ret = jnl_walk(lun, off, b, false, replay_txn, lun, res);
	if (ret || res->stop == JNL_STOP_CLEAN)
		return ret;
	/* Everything home and durable before the records may go. */
	ret = lun_flush(lun);
	if (!ret)
		ret = jnl_header_write(lun, off, &res->hdr, VMFS_JNL_CLEAN,
				       res->end, res->next_seq);
	if (!ret)
		ret = lun_flush(lun);
	return ret;
}
