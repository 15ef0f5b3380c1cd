/*
 * Corruption tool, pass 2 journal contents: committed transactions
 * written into a journal ring by hand, in the record format of format.h
 * (a descriptor, the images its tags list, a commit record whose crc32c
 * covers both), the way a host that crashed after a commit leaves them.
 *
 * Committed transactions are not damage by themselves: the damage is in
 * the home blocks they were meant to reach.  Both functions journal the
 * current, sound image of a few inodes and then break the home copies,
 * so that only a checker that replays the journal first (or, with -n,
 * reads through it) sees a sound volume; one that ignored or discarded
 * the journal would report damaged inodes and lose files.  The repair
 * must therefore leave every file as it was: no target paths.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "corrupt_int.h"

/* A journal ring being appended to. */
struct jring {
	uint32_t slot;
	uint64_t off;        /* region (header block) address */
	uint64_t nblocks;    /* ring blocks after the header */
	uint64_t jid;
	uint64_t pos;        /* next ring block, taken modulo nblocks */
	uint64_t seq;        /* sequence of the next transaction */
	uint8_t *hdr;        /* the header block, 4 KiB */
	uint8_t *b;          /* scratch, 4 KiB */
};

static uint64_t jring_addr(const struct jring *r, uint64_t i)
{
	return r->off + VMFS_MD_BLOCK_SIZE + (i % r->nblocks) * VMFS_MD_BLOCK_SIZE;
}

static void jring_free(struct jring *r)
{
	lun_buf_free(r->hdr);
	lun_buf_free(r->b);
}

/* Open a seeded slot's ring at its tail: new transactions replay first. */
static int jring_open(struct corrupt *c, struct jring *r)
{
	const struct vmfs_jnl_hdr *jh;
	struct fmt_jnl_hdr h;
	int ret;

	memset(r, 0, sizeof(*r));
	r->slot = (uint32_t)corrupt_pick(c, c->g.max_hosts);
	r->off = vol_jnl_offset(&c->g, r->slot);
	r->nblocks = c->g.journal_size_bytes / VMFS_MD_BLOCK_SIZE - 1;
	r->hdr = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	r->b = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	if (!r->hdr || !r->b)
		return -ENOMEM;
	ret = corrupt_read(c, r->hdr, r->off);
	if (ret)
		return ret;
	if (lun_md_verify(corrupt_hdr(r->hdr, CK_JOURNAL), VMFS_MAGIC_JOURNAL,
			  r->off, VMFS_MD_BLOCK_SIZE - VMFS_OBJ_OFFSET))
		return -ENOENT;
	jh = (const struct vmfs_jnl_hdr *)(r->hdr + VMFS_OBJ_OFFSET);
	(void)fmt_jnl_hdr_decode(jh, &h);
	if (h.tail < VMFS_MD_BLOCK_SIZE || h.tail >= c->g.journal_size_bytes)
		return -ENOENT;
	r->jid = h.jid;
	r->seq = h.seq;
	r->pos = (h.tail - VMFS_MD_BLOCK_SIZE) / VMFS_MD_BLOCK_SIZE;
	return 0;
}

/*
 * Append one committed transaction: images n (at most one descriptor's
 * worth) for the home addresses addr[] with tag flags[].  -ENOENT when the
 * ring cannot hold it next to what was appended already.
 */
static int jring_txn(struct corrupt *c, struct jring *r, uint32_t n,
		     const uint64_t *addr, const uint32_t *flags,
		     const uint8_t *imgs, uint64_t used)
{
	struct vmfs_jnl_desc *d = (struct vmfs_jnl_desc *)r->b;
	struct vmfs_jnl_commit *cm = (struct vmfs_jnl_commit *)r->b;
	uint32_t crc;
	int ret;

	if (!n || n > VMFS_JNL_TAGS_PER_DESC || used + n + 2 > r->nblocks)
		return -ENOENT;
	memset(r->b, 0, VMFS_MD_BLOCK_SIZE);
	fmt_jnl_desc_encode(&(struct fmt_jnl_desc){ .gen = 1, .seq = r->seq,
						    .jid = r->jid, .ntags = n,
						    .index = 0 }, d);
	for (uint32_t k = 0; k < n; k++)
		fmt_jnl_tag_set(d, k, addr[k], flags[k]);
	lun_md_seal(&d->jd_hdr, VMFS_MAGIC_JDESC, jring_addr(r, r->pos),
		    VMFS_MD_BLOCK_SIZE);
	crc = lun_crc32c(0, r->b, VMFS_MD_BLOCK_SIZE);
	ret = corrupt_write(c, r->b, jring_addr(r, r->pos));
	for (uint32_t k = 0; !ret && k < n; k++) {
		memcpy(r->b, imgs + (size_t)k * VMFS_MD_BLOCK_SIZE,
		       VMFS_MD_BLOCK_SIZE);
		crc = lun_crc32c(crc, r->b, VMFS_MD_BLOCK_SIZE);
		ret = corrupt_write(c, r->b, jring_addr(r, r->pos + 1 + k));
	}
	if (ret)
		return ret;
	memset(r->b, 0, VMFS_MD_BLOCK_SIZE);
	/* jc_time_ns is display only; derived from the volume so a seed is
	 * repeatable. */
	fmt_jnl_commit_encode(&(struct fmt_jnl_commit){
				      .gen = 1, .seq = r->seq, .jid = r->jid,
				      .nblocks = n + 1, .nimages = n, .crc = crc,
				      .time_ns = c->g.ctime_ns + (int64_t)r->seq },
			      cm);
	lun_md_seal(&cm->jc_hdr, VMFS_MAGIC_JCOMMIT,
		    jring_addr(r, r->pos + n + 1), VMFS_MD_BLOCK_SIZE);
	ret = corrupt_write(c, r->b, jring_addr(r, r->pos + n + 1));
	if (!ret) {
		r->pos += n + 2;
		r->seq++;
	}
	return ret;
}

/* Mark the header dirty, its head after the last transaction appended. */
static int jring_close(struct corrupt *c, struct jring *r)
{
	struct vmfs_jnl_hdr *jh = (struct vmfs_jnl_hdr *)(r->hdr + VMFS_OBJ_OFFSET);
	struct fmt_jnl_hdr h;

	(void)fmt_jnl_hdr_decode(jh, &h);
	h.state = VMFS_JNL_DIRTY;
	h.head = VMFS_MD_BLOCK_SIZE + (r->pos % r->nblocks) * VMFS_MD_BLOCK_SIZE;
	fmt_jnl_hdr_encode(&h, jh);
	corrupt_seal(r->hdr, CK_JOURNAL, r->off);
	c->target = r->off;
	return corrupt_write(c, r->hdr, r->off);
}

static bool is_user(const struct corrupt *c, const struct corrupt_node *n)
{
	return corrupt_is_user(c, n->ino);
}

/*
 * Journal the current image of a seeded user inode as one transaction,
 * then break its home copy.  Appends "ino (how)" to what.
 */
static int journal_inode(struct corrupt *c, struct jring *r, uint64_t used,
			 char *what, size_t len)
{
	struct corrupt_node *n;
	uint8_t *img = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	uint32_t flags = VMFS_JNL_TAG_LOCKABLE;
	const char *how;
	uint64_t addr;
	size_t at;
	int ret = img ? corrupt_pick_node(c, is_user, &n) : -ENOMEM;

	if (ret)
		goto out;
	addr = corrupt_inode_addr(c, n->ino);
	ret = corrupt_read(c, img, addr);
	if (!ret)
		ret = jring_txn(c, r, 1, &addr, &flags, img, used);
	if (!ret)
		ret = corrupt_break(c, addr, CK_INODE, &how);
	if (!ret) {
		at = strlen(what);
		snprintf(what + at, len - at, "%sinode %llu (%s)", at ? ", " : "",
			 (unsigned long long)n->ino, how);
	}
out:
	lun_buf_free(img);
	return ret;
}

/*
 * PR_2_JOURNAL_DIRTY: a journal left dirty by a host that crashed after
 * committing 1-3 transactions, each holding the sound image of an inode
 * whose home copy is then broken (bad crc, bad magic or misdirected) --
 * what a crash between commit and checkpoint leaves, made visible.
 */
int corrupt_pr2_journal_dirty(struct corrupt *c)
{
	struct jring r;
	char what[256] = "";
	uint64_t ntxn = 1 + corrupt_pick(c, 3), used = 0;
	int ret = jring_open(c, &r);

	for (uint64_t t = 0; !ret && t < ntxn; t++, used += 3)
		ret = journal_inode(c, &r, used, what, sizeof(what));
	if (!ret)
		ret = jring_close(c, &r);
	if (!ret)
		corrupt_say(c, "journal of slot %u at %llu: dirty, %llu committed "
			    "transactions; home copies broken: %s", r.slot,
			    (unsigned long long)r.off, (unsigned long long)ntxn, what);
	jring_free(&r);
	return ret;
}

/*
 * PR_2_JOURNAL_RECORD_BAD: a dirty journal whose last committed
 * transaction (sound in every other way) tags a block outside the
 * metadata areas -- the volume header, a heartbeat slot, a journal
 * header, the backup header, the last block before the metadata areas,
 * or an address that is not block-aligned -- next to a garbage image for
 * a real inode, which must not reach home either.  With odd seeds a
 * sound transaction (an inode journaled, its home copy broken) comes
 * first and must be replayed.
 */
int corrupt_pr2_journal_record_bad(struct corrupt *c)
{
	const struct vol_geom *g = &c->g;
	uint64_t lo = vol_jnl_bounds(g).lo;
	uint64_t bad[6] = {
		0, g->hb_offset + VMFS_MD_BLOCK_SIZE, 0, g->backup_offset,
		lo - VMFS_MD_BLOCK_SIZE, lo + VMFS_OBJ_OFFSET,
	};
	static const char *const bad_name[6] = {
		"the volume header", "heartbeat slot 0", "its own journal header",
		"the backup header", "the last block of the journal area",
		"an unaligned address",
	};
	uint8_t *imgs = lun_buf_alloc(2 * VMFS_MD_BLOCK_SIZE);
	struct corrupt_node *n;
	struct jring r;
	char what[256] = "";
	uint64_t addr[2];
	uint32_t flags[2], which, first;
	bool good = corrupt_pick(c, 2);
	int ret = imgs ? jring_open(c, &r) : -ENOMEM;

	if (ret)
		goto out;
	bad[2] = r.off;
	if (good)
		ret = journal_inode(c, &r, 0, what, sizeof(what));
	if (!ret)
		ret = corrupt_pick_node(c, is_user, &n);
	if (ret)
		goto out;
	which = (uint32_t)corrupt_pick(c, 6);
	first = (uint32_t)corrupt_pick(c, 2);
	/* Garbage for a real inode, and the tag out of bounds. */
	memset(imgs, 0xa5, 2 * VMFS_MD_BLOCK_SIZE);
	addr[first] = corrupt_inode_addr(c, n->ino);
	flags[first] = VMFS_JNL_TAG_LOCKABLE;
	addr[!first] = bad[which];
	flags[!first] = 0;
	ret = jring_txn(c, &r, 2, addr, flags, imgs, good ? 3 : 0);
	if (!ret)
		ret = jring_close(c, &r);
	if (!ret)
		corrupt_say(c, "journal of slot %u at %llu: dirty; %s%s%scommitted "
			    "transaction %llu tags %s (%llu) and garbage for inode %llu",
			    r.slot, (unsigned long long)r.off,
			    good ? "a sound transaction first (home copy broken: " : "",
			    what, good ? "), then " : "",
			    (unsigned long long)(r.seq - 1), bad_name[which],
			    (unsigned long long)bad[which],
			    (unsigned long long)n->ino);
out:
	if (imgs)
		jring_free(&r);
	lun_buf_free(imgs);
	return ret;
}
