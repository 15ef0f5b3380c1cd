/*
 * One memory budget for everything the engine caches.
 *
 * What is counted: every cached inode (struct vinode and its 4 KiB block
 * image), the directory indexes (chunk images, hash table, bookkeeping)
 * and pointer-block caches hanging off them, and the resource-cluster
 * state loaded at mount (fixed: never evicted).  Bytes are what the
 * engine asks malloc for; the allocator's own overhead (alignment of the
 * 4 KiB images, per-thread arenas) comes on top.
 *
 * The budget holds the fixed state plus the indexes and pointer blocks.
 * When an inode loses its last pin and stays cached (the kernel still
 * references it, or it is the root), its bytes are counted again and, if
 * it holds an index or pointer blocks, it moves to the recent end of an
 * LRU list.  While fixed + indexes + pointer blocks exceed the budget,
 * the least recently used lose theirs; they reload from disk (through the
 * journal, which sees blocks not yet home) on next use, so dropping them
 * loses nothing.  The inode just used is the last candidate: a directory
 * whose index alone exceeds the budget would otherwise be read again at
 * every operation on it.  Never evicted:
 *   - anything pinned: a thread is inside an operation on it (pins > 0);
 *     every use of an inode pins it under icache_lock, so holding
 *     icache_lock on an unpinned inode keeps every other thread out;
 *   - a pointer-block cache holding a dirty block or one saved for an
 *     operation's undo;
 *   - an inode the kernel references (nlookup > 0) or the root: the kernel
 *     holds its number.  These are counted (used_bytes) but not held to
 *     the budget -- evicting others for them would throw away every index
 *     at every operation once the kernel holds more inodes than the
 *     budget, and gain nothing.  The kernel lets go of them under memory
 *     pressure or when told to drop its caches.
 *
 * An inode the kernel forgot (nlookup 0) and no thread pins is not kept
 * for the budget to evict later: vol_inode_put writes its lazy times and
 * frees it at once, as before.  The kernel forgets an inode when it is
 * short of memory or told to drop its caches; keeping the inode here
 * would hold on to the memory the kernel was trying to get back, and the
 * next access (a fresh lookup) costs only one 4 KiB read.
 *
 * Freed memory goes back to the system: glibc keeps freed chunks in its
 * arenas and the lun's buffer pool keeps freed 4 KiB images, so once an
 * eighth of the budget has been freed, malloc_trim and lun_buf_trim hand
 * the free pages back.  Without it vmfsd kept its peak RSS after
 * the kernel had dropped every inode.
 */
#include <malloc.h>
#include <string.h>
#include "vol_int.h"

/* Trim after freeing this share of the budget (at least 1 MiB). */
#define CACHE_TRIM_SHARE 8
#define CACHE_TRIM_MIN   (1u << 20)

static uint64_t cache_rarea_bytes(const struct rarea *ra)
{
	return ra->g.nclusters * ((uint64_t)VMFS_MD_BLOCK_SIZE + sizeof(*ra->cl)) +
	       ra->freed_cap * sizeof(*ra->freed);
}

void vol_cache_init(struct vol *v, uint64_t budget_bytes)
{
	struct vcache *c = &v->cache;

	memset(c, 0, sizeof(*c));
	c->budget_bytes = budget_bytes ? budget_bytes : VOL_CACHE_DEFAULT_BYTES;
	pthread_mutex_init(&c->trim_lock, NULL);
}

void vol_cache_fini(struct vol *v)
{
	pthread_mutex_destroy(&v->cache.trim_lock);
}

void vol_cache_count_fixed(struct vol *v)
{
	struct vcache *c = &v->cache;

	c->fixed_bytes = 0;
	for (int t = 0; t < VMFS_RES_NTYPES; t++)
		c->fixed_bytes += cache_rarea_bytes(&v->res[t]);
}

/* An inode's own bytes, and those of its index and pointer blocks. */
#define CACHE_INODE_BYTES (sizeof(struct vinode) + VMFS_MD_BLOCK_SIZE)

uint32_t vol_cache_inode_buckets(const struct vol *v)
{
	uint64_t want = v->cache.budget_bytes / CACHE_INODE_BYTES;
	uint32_t n = 4096;

	while (n < want && n < (1u << 20))
		n <<= 1;
	return n;
}

static uint64_t cache_extra_bytes(const struct vinode *vi)
{
	return vol_dir_cache_bytes(vi) + vol_bmap_cache_bytes(vi);
}

static bool cache_evictable(const struct vinode *vi)
{
	return vi->dir || vi->pbtab;
}

static void lru_unlink(struct vcache *c, struct vinode *vi)
{
	if (!vi->on_lru)
		return;
	if (vi->lru_prev)
		vi->lru_prev->lru_next = vi->lru_next;
	else
		c->lru_head = vi->lru_next;
	if (vi->lru_next)
		vi->lru_next->lru_prev = vi->lru_prev;
	else
		c->lru_tail = vi->lru_prev;
	vi->lru_prev = vi->lru_next = NULL;
	vi->on_lru = false;
}

static void lru_append(struct vcache *c, struct vinode *vi)
{
	vi->lru_prev = c->lru_tail;
	vi->lru_next = NULL;
	if (c->lru_tail)
		c->lru_tail->lru_next = vi;
	else
		c->lru_head = vi;
	c->lru_tail = vi;
	vi->on_lru = true;
}

/* Written under icache_lock, peeked at without it (vol_cache_trim). */
static void cache_note_freed(struct vcache *c, uint64_t bytes)
{
	__atomic_fetch_add(&c->freed_bytes, bytes, __ATOMIC_SEQ_CST);
}

/* Count vi's bytes as they are now (icache_lock). */
static void cache_recount(struct vcache *c, struct vinode *vi)
{
	uint64_t now = cache_extra_bytes(vi);

	if (!vi->cache_counted) {
		vi->cache_counted = true;
		c->ninodes++;
	}
	c->extra_bytes = c->extra_bytes - vi->cache_extra + now;
	if (now < vi->cache_extra)
		cache_note_freed(c, vi->cache_extra - now);
	vi->cache_extra = now;
}

/* What the budget holds: see the top of this file. */
static bool cache_over(const struct vcache *c)
{
	return c->fixed_bytes + c->extra_bytes > c->budget_bytes;
}

/* Drop what can go of an unpinned inode (icache_lock). */
static void cache_evict_one(struct vcache *c, struct vinode *vi)
{
	lru_unlink(c, vi);
	if (vi->pins)
		return;         /* in use: its put puts it back on the list */
	if (vi->dir) {
		vol_dir_unload(vi);
		c->evictions++;
	}
	if (vi->pbtab && !vi->undo && vol_bmap_cache_clean(vi)) {
		vol_bmap_cache_drop(vi);
		c->evictions++;
	}
	cache_recount(c, vi);
}

bool vol_cache_idle(struct vol *v, struct vinode *vi)
{
	struct vcache *c = &v->cache;
	uint64_t evictions = c->evictions;

	cache_recount(c, vi);
	lru_unlink(c, vi);
	if (cache_evictable(vi))
		lru_append(c, vi);
	while (cache_over(c) && c->lru_head && c->lru_head != vi)
		cache_evict_one(c, c->lru_head);
	return c->evictions != evictions;
}

void vol_cache_remove(struct vol *v, struct vinode *vi)
{
	struct vcache *c = &v->cache;

	lru_unlink(c, vi);
	if (!vi->cache_counted)
		return;
	c->ninodes--;
	c->extra_bytes -= vi->cache_extra;
	cache_note_freed(c, vi->cache_extra + CACHE_INODE_BYTES);
	vi->cache_extra = 0;
	vi->cache_counted = false;
}

void vol_cache_trim(struct vol *v)
{
	struct vcache *c = &v->cache;
	uint64_t step = c->budget_bytes / CACHE_TRIM_SHARE;

	if (step < CACHE_TRIM_MIN)
		step = CACHE_TRIM_MIN;
	/*
	 * One trimmer at a time.  A thread that finds the trimmer busy leaves
	 * its count for it: the trimmer looks again after each trim and after
	 * letting go, so what was freed while it trimmed (a burst of forgets
	 * frees tens of MiB in the time one trim of a large heap takes) is
	 * handed back too, not left waiting for the next step's worth.
	 */
	while (__atomic_load_n(&c->freed_bytes, __ATOMIC_SEQ_CST) >= step) {
		if (pthread_mutex_trylock(&c->trim_lock))
			return;
		while (__atomic_load_n(&c->freed_bytes,
				       __ATOMIC_SEQ_CST) >= step) {
			__atomic_store_n(&c->freed_bytes, 0, __ATOMIC_SEQ_CST);
			malloc_trim(0);
			lun_buf_trim();
		}
		pthread_mutex_unlock(&c->trim_lock);
	}
}

void vol_cache_stats_get(struct vol *v, struct vol_cache_stats *s)
{
	struct vcache *c = &v->cache;

	pthread_mutex_lock(&v->icache_lock);
	s->budget_bytes = c->budget_bytes;
	s->fixed_bytes = c->fixed_bytes;
	s->index_bytes = c->extra_bytes;
	s->inode_bytes = c->ninodes * CACHE_INODE_BYTES;
	s->used_bytes = s->fixed_bytes + s->index_bytes + s->inode_bytes;
	s->inodes = c->ninodes;
	s->evictions = c->evictions;
	pthread_mutex_unlock(&v->icache_lock);
}
