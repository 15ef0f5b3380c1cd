/*
 * Aligned I/O buffers, and a pool for the 4 KiB ones.
 *
 * Metadata lives in 4 KiB blocks that must be 4 KiB aligned for O_DIRECT
 * on a 4Kn LUN: a cached inode keeps one, so does every directory index
 * chunk, pointer block and journal image.  glibc's posix_memalign(4096,
 * 4096) carves each from an 8 KiB span and leaves the other page of it to
 * chunk headers and fragments: two resident pages per block, and the heap
 * grows a page at a time (one mprotect and two page faults per block in a
 * worker thread's arena).  So 4 KiB buffers come from here instead:
 *
 *   - one address range reserved once (POOL_RANGE, PROT_NONE: address
 *     space only), cut into 2 MiB chunks of 512 blocks, a chunk made
 *     writable and populated in one call when first needed;
 *   - a bitmap of free blocks per chunk, and one of chunks with a free
 *     block; a buffer comes from the lowest such chunk, so the pool stays
 *     packed at the bottom and the chunks above it drain;
 *   - lun_buf_free tells a pool block from a malloc'd buffer by address
 *     (inside the range or not), so both kinds share one free call;
 *   - lun_buf_trim hands the pages of blocks freed since the last trim
 *     back to the system (MADV_DONTNEED), as malloc_trim does for the
 *     heap: the volume's cache calls both once it has freed enough.
 *
 * Past the range (POOL_RANGE / 4 KiB = 16 Mi blocks in use at once), or
 * where the range cannot be reserved, blocks come from posix_memalign as
 * before.  Address-sanitizer builds always use posix_memalign, so that a
 * use after free stays visible to it.
 *
 * All functions are thread-safe (one mutex: taking and giving back a
 * block is a few bit operations).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "lun_int.h"

#define POOL_CHUNK_SHIFT 21
#define POOL_CHUNK       ((size_t)1 << POOL_CHUNK_SHIFT)       /* 2 MiB */
#define POOL_PER_CHUNK   (POOL_CHUNK / LUN_BUF_ALIGN)           /* 512 */
#define POOL_CWORDS      (POOL_PER_CHUNK / 64)
#define POOL_RANGE       ((size_t)64 << 30)                      /* 64 GiB */
#define POOL_NCHUNKS     (POOL_RANGE >> POOL_CHUNK_SHIFT)       /* 32 Ki */
#define POOL_MWORDS      (POOL_NCHUNKS / 64)

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#if defined(__SANITIZE_ADDRESS__)
#define POOL_OFF 1
#else
#define POOL_OFF 0
#endif

struct pchunk {
	uint32_t nfree;
	uint64_t free[POOL_CWORDS];    /* 1: free */
	uint64_t idle[POOL_CWORDS];    /* 1: free, pages maybe still resident */
};

static struct {
	pthread_mutex_t mu;
	pthread_once_t once;
	uint8_t *base;                 /* NULL: no range (posix_memalign) */
	struct pchunk **chunk;         /* [POOL_NCHUNKS], NULL: not yet used */
	uint64_t has_free[POOL_MWORDS];  /* chunks with a free block */
	uint32_t nchunks;              /* chunks made writable so far */
	uint64_t used;                 /* blocks handed out now */
	uint64_t idle;                 /* blocks freed since the last trim */
} pool = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.once = PTHREAD_ONCE_INIT,
};

static void pool_init(void)
{
	void *p;

	if (POOL_OFF)
		return;
	pool.chunk = calloc(POOL_NCHUNKS, sizeof(*pool.chunk));
	if (!pool.chunk)
		return;
	/* Address space only: nothing is committed (nor counted against
	 * the overcommit limit) until a chunk is made writable.  One chunk
	 * more, to start the range on a chunk boundary. */
	p = mmap(NULL, POOL_RANGE + POOL_CHUNK, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		free(pool.chunk);
		pool.chunk = NULL;
		return;
	}
	__atomic_store_n(&pool.base,
			 (uint8_t *)(((uintptr_t)p + POOL_CHUNK - 1) &
				     ~(uintptr_t)(POOL_CHUNK - 1)),
			 __ATOMIC_RELEASE);
}

/* A new chunk, writable and populated, all of it free; mu held. */
static struct pchunk *pool_chunk_add(void)
{
	uint32_t i = pool.nchunks;
	uint8_t *at = pool.base + ((size_t)i << POOL_CHUNK_SHIFT);
	struct pchunk *c;

	if (i >= POOL_NCHUNKS)
		return NULL;
	c = malloc(sizeof(*c));
	if (!c)
		return NULL;
	/* Counted against the overcommit limit now: refused, the caller
	 * takes its block from the heap. */
	if (mprotect(at, POOL_CHUNK, PROT_READ | PROT_WRITE)) {
		free(c);
		return NULL;
	}
	/* Fault the chunk in with one call instead of 512 traps; an older
	 * kernel without it faults page by page. */
	(void)madvise(at, POOL_CHUNK, MADV_POPULATE_WRITE);
	c->nfree = POOL_PER_CHUNK;
	memset(c->free, 0xff, sizeof(c->free));
	memset(c->idle, 0, sizeof(c->idle));
	pool.chunk[i] = c;
	pool.has_free[i / 64] |= 1ull << (i % 64);
	pool.nchunks++;
	return c;
}

static void *pool_alloc(void)
{
	struct pchunk *c = NULL;
	uint32_t ci = 0, bi;
	void *p = NULL;

	pthread_once(&pool.once, pool_init);
	if (!pool.base)
		return NULL;
	pthread_mutex_lock(&pool.mu);
	for (uint32_t w = 0; w < (pool.nchunks + 63) / 64; w++) {
		if (pool.has_free[w]) {
			ci = w * 64 + (uint32_t)__builtin_ctzll(pool.has_free[w]);
			c = pool.chunk[ci];
			break;
		}
	}
	if (!c) {
		ci = pool.nchunks;
		c = pool_chunk_add();
	}
	if (!c)
		goto out;
	for (uint32_t w = 0; w < POOL_CWORDS; w++) {
		if (!c->free[w])
			continue;
		bi = w * 64 + (uint32_t)__builtin_ctzll(c->free[w]);
		c->free[w] &= ~(1ull << (bi % 64));
		if (c->idle[w] & 1ull << (bi % 64)) {
			c->idle[w] &= ~(1ull << (bi % 64));
			pool.idle--;
		}
		if (!--c->nfree)
			pool.has_free[ci / 64] &= ~(1ull << (ci % 64));
		pool.used++;
		p = pool.base + ((size_t)ci << POOL_CHUNK_SHIFT) +
		    (size_t)bi * LUN_BUF_ALIGN;
		break;
	}
out:
	pthread_mutex_unlock(&pool.mu);
	return p;
}

/* Gives p back if it is a pool block; false if it is not. */
static bool pool_free(void *p)
{
	uint8_t *base = __atomic_load_n(&pool.base, __ATOMIC_ACQUIRE);
	uintptr_t off = (uintptr_t)p - (uintptr_t)base;
	uint32_t ci, bi;
	struct pchunk *c;

	if (!base || (uint8_t *)p < base || off >= POOL_RANGE)
		return false;
	ci = (uint32_t)(off >> POOL_CHUNK_SHIFT);
	bi = (uint32_t)((off & (POOL_CHUNK - 1)) / LUN_BUF_ALIGN);
	pthread_mutex_lock(&pool.mu);
	c = pool.chunk[ci];
	if (!c || off % LUN_BUF_ALIGN || c->free[bi / 64] & 1ull << (bi % 64))
		abort();  /* not a block handed out: a double free */
	c->free[bi / 64] |= 1ull << (bi % 64);
	c->idle[bi / 64] |= 1ull << (bi % 64);
	if (c->nfree++ == 0)
		pool.has_free[ci / 64] |= 1ull << (ci % 64);
	pool.used--;
	pool.idle++;
	pthread_mutex_unlock(&pool.mu);
	return true;
}

void *lun_buf_alloc(size_t len)
{
	void *buf;

	if (!len)
		len = LUN_BUF_ALIGN;
	if (len == LUN_BUF_ALIGN && (buf = pool_alloc()))
		return buf;
	/* 4 KiB fits every logical sector size we accept (512, 4096). */
	if (posix_memalign(&buf, LUN_BUF_ALIGN, len))
		return NULL;
	return buf;
}

void lun_buf_free(void *buf)
{
	if (buf && !pool_free(buf))
		free(buf);
}

void lun_buf_trim(void)
{
	pthread_mutex_lock(&pool.mu);
	for (uint32_t ci = 0; ci < pool.nchunks && pool.idle; ci++) {
		struct pchunk *c = pool.chunk[ci];
		uint8_t *at = pool.base + ((size_t)ci << POOL_CHUNK_SHIFT);
		uint32_t run = 0;

		/* Runs of idle blocks, one madvise each. */
		for (uint32_t bi = 0; bi <= POOL_PER_CHUNK; bi++) {
			bool idle = bi < POOL_PER_CHUNK &&
				    c->idle[bi / 64] & 1ull << (bi % 64);

			if (idle) {
				run++;
				continue;
			}
			if (run) {
				(void)madvise(at + (size_t)(bi - run) *
					      LUN_BUF_ALIGN,
					      (size_t)run * LUN_BUF_ALIGN,
					      MADV_DONTNEED);
				pool.idle -= run;
				run = 0;
			}
		}
		memset(c->idle, 0, sizeof(c->idle));
	}
	pthread_mutex_unlock(&pool.mu);
}

void lun_buf_stats(struct lun_buf_stats *s)
{
	pthread_mutex_lock(&pool.mu);
	s->pool_blocks = pool.used;
	s->pool_bytes = (uint64_t)pool.nchunks << POOL_CHUNK_SHIFT;
	s->idle_blocks = pool.idle;
	pthread_mutex_unlock(&pool.mu);
}
