/*
 * The journal overlay: what a read-only run (-n) reads instead of the
 * disk where a dirty journal holds committed transactions.
 *
 * fsck -n must not replay, yet a crashed host's journal routinely holds
 * transactions whose blocks never reached home; checking the home blocks
 * alone would report the half-written state a mount repairs by itself.
 * So pass 2 collects every committed image of every dirty journal (slot
 * order, then transaction order: what vol_open's replay writes last
 * wins), and fsck_read() patches them into whatever it reads.  The lock
 * record of a lockable block stays as on disk, as jnl_replay leaves it.
 *
 * Images are kept in memory: at most one ring's worth per dirty journal
 * (journal_size per crashed host), counted in the map peak.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "vmfs/journal.h"
#include "fsck_int.h"

struct ovl_ent {
	uint64_t addr;
	uint64_t order;     /* later replays win */
	uint32_t flags;     /* VMFS_JNL_TAG_* */
	uint8_t *img;
};

struct fsck_overlay {
	struct ovl_ent *ent;
	size_t n, cap;
	uint64_t next_order;
	bool sorted;
};

int fsck_overlay_add(struct fsck_ctx *c, uint64_t addr, uint32_t flags,
		     const uint8_t *img)
{
	struct fsck_overlay *o = c->ovl;
	struct ovl_ent *e;

	if (!o) {
		o = calloc(1, sizeof(*o));
		if (!o)
			return -ENOMEM;
		c->ovl = o;
	}
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 64;
		struct ovl_ent *ne = realloc(o->ent, cap * sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		o->ent = ne;
		o->cap = cap;
	}
	e = &o->ent[o->n];
	e->img = malloc(VMFS_MD_BLOCK_SIZE);
	if (!e->img)
		return -ENOMEM;
	memcpy(e->img, img, VMFS_MD_BLOCK_SIZE);
	e->addr = addr;
	e->flags = flags;
	e->order = o->next_order++;
	o->n++;
	o->sorted = false;
	c->map_bytes += VMFS_MD_BLOCK_SIZE + sizeof(*e);
	if (c->map_bytes > c->r->peak_map_bytes)
		c->r->peak_map_bytes = c->map_bytes;
	return 0;
}

static int ent_cmp(const void *a, const void *b)
{
	const struct ovl_ent *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

size_t fsck_overlay_seal(struct fsck_ctx *c)
{
	struct fsck_overlay *o = c->ovl;
	size_t k = 0;

	if (!o)
		return 0;
	qsort(o->ent, o->n, sizeof(*o->ent), ent_cmp);
	/* Keep the last image of every address. */
	for (size_t i = 0; i < o->n; i++) {
		if (i + 1 < o->n && o->ent[i + 1].addr == o->ent[i].addr) {
			free(o->ent[i].img);
			c->map_bytes -= VMFS_MD_BLOCK_SIZE + sizeof(*o->ent);
			continue;
		}
		o->ent[k++] = o->ent[i];
	}
	o->n = k;
	o->sorted = true;
	return k;
}

void fsck_overlay_apply(const struct fsck_ctx *c, void *buf, size_t len,
			uint64_t off)
{
	const struct fsck_overlay *o = c->ovl;
	uint64_t first, end = off + len;
	size_t lo = 0, hi;

	if (!o || !o->sorted || !o->n || !len)
		return;
	/* First image that can reach into [off, end). */
	first = off >= VMFS_MD_BLOCK_SIZE ? off - (VMFS_MD_BLOCK_SIZE - 1) : 0;
	hi = o->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (o->ent[mid].addr < first)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < o->n && o->ent[i].addr < end; i++) {
		const struct ovl_ent *e = &o->ent[i];
		/* Replay leaves a lockable block's lock record alone. */
		uint64_t from = e->addr + (e->flags & VMFS_JNL_TAG_LOCKABLE ?
					   VMFS_OBJ_OFFSET : 0);
		uint64_t to = e->addr + VMFS_MD_BLOCK_SIZE;

		if (from < off)
			from = off;
		if (to > end)
			to = end;
		if (from < to)
			memcpy((uint8_t *)buf + (from - off),
			       e->img + (from - e->addr), (size_t)(to - from));
	}
}

void fsck_overlay_free(struct fsck_ctx *c)
{
	struct fsck_overlay *o = c->ovl;

	if (!o)
		return;
	for (size_t i = 0; i < o->n; i++)
		free(o->ent[i].img);
	c->map_bytes -= o->n * (VMFS_MD_BLOCK_SIZE + sizeof(*o->ent));
	free(o->ent);
	free(o);
	c->ovl = NULL;
}
