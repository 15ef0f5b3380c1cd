/*
 * Bounded-memory u64 -> u64 maps for the checker (owners, link counts,
 * parents).
 *
 * Each map is an open-addressing hash in memory while the run's total map
 * memory stays under opts->mem_limit_bytes; once a table can no longer
 * grow inside that budget, new keys go to a Tokyo Cabinet B+tree (tcbdb)
 * of that map in a private directory under opts->tmp_dir, removed at the
 * end of the run.  A key lives in exactly one of the two.  Like e2fsck's
 * tdb-backed icount, this trades speed for being able to check volumes
 * whose metadata does not fit in RAM; the per-object bitmaps (one bit per
 * object) always stay in memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <tcutil.h>
#include <tcbdb.h>
#include "fsck_int.h"

#define MAP_EMPTY UINT64_MAX          /* never a key we store in the hash */
#define MAP_TOMB (UINT64_MAX - 1)
#define MAP_MIN_CAP 16u

struct map_slot {
	uint64_t k, v;
};

struct fsck_map {
	char name[32];
	struct map_slot *tab;
	uint64_t cap;       /* power of two, or 0 */
	uint64_t used;      /* live + tombstones */
	uint64_t live;
	TCBDB *bdb;         /* spill, opened on first use */
	char path[4200];
	uint64_t nspilled;  /* keys in bdb */
};

static uint64_t map_hash(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ull;
	k ^= k >> 33;
	return k;
}

static void map_account(struct fsck_ctx *c, int64_t delta)
{
	c->map_bytes = (uint64_t)((int64_t)c->map_bytes + delta);
	if (c->map_bytes > c->r->peak_map_bytes)
		c->r->peak_map_bytes = c->map_bytes;
}

struct fsck_map *fsck_map_open(struct fsck_ctx *c, const char *name)
{
	struct fsck_map *m = calloc(1, sizeof(*m));

	if (!m) {
		fsck_fail(c, -ENOMEM, "no memory for the %s map", name);
		return NULL;
	}
	snprintf(m->name, sizeof(m->name), "%s", name);
	return m;
}

static void map_bdb_close(struct fsck_map *m)
{
	if (!m->bdb)
		return;
	tcbdbclose(m->bdb);
	tcbdbdel(m->bdb);
	m->bdb = NULL;
	unlink(m->path);
}

void fsck_map_close(struct fsck_ctx *c, struct fsck_map *m)
{
	if (!m)
		return;
	if (m->tab)
		map_account(c, -(int64_t)(m->cap * sizeof(*m->tab)));
	free(m->tab);
	map_bdb_close(m);
	free(m);
}

void fsck_maps_cleanup(struct fsck_ctx *c)
{
	if (c->tmpdir_made) {
		rmdir(c->tmpdir);
		c->tmpdir_made = false;
	}
}

/* Open the map's B+tree, making the run's spill directory if needed. */
static bool map_bdb_open(struct fsck_ctx *c, struct fsck_map *m)
{
	if (m->bdb)
		return true;
	if (c->abort)
		return false;
	if (!c->tmpdir_made) {
		const char *dir = c->o->tmp_dir && *c->o->tmp_dir ? c->o->tmp_dir
								  : "/tmp";

		snprintf(c->tmpdir, sizeof(c->tmpdir), "%s/vmfs-fsck.XXXXXX", dir);
		if (!mkdtemp(c->tmpdir)) {
			fsck_fail(c, -errno, "cannot make a spill directory under %s "
				  "(maps over the memory limit go there); pass "
				  "a bigger --mem-limit or a writable tmp dir", dir);
			return false;
		}
		c->tmpdir_made = true;
	}
	snprintf(m->path, sizeof(m->path), "%s/%s-%u.tcb", c->tmpdir, m->name,
		 c->nspill++);
	m->bdb = tcbdbnew();
	if (!m->bdb) {
		fsck_fail(c, -ENOMEM, "no memory for the %s spill tree", m->name);
		return false;
	}
	tcbdbsetcmpfunc(m->bdb, tccmpint64, NULL);
	tcbdbsetxmsiz(m->bdb, 0);
	if (!tcbdbopen(m->bdb, m->path, BDBOWRITER | BDBOCREAT | BDBOTRUNC)) {
		fsck_fail(c, -EIO, "cannot create spill file %s: %s", m->path,
			  tcbdberrmsg(tcbdbecode(m->bdb)));
		tcbdbdel(m->bdb);
		m->bdb = NULL;
		return false;
	}
	return true;
}

/* Slot holding k, or NULL. */
static struct map_slot *tab_find(struct fsck_map *m, uint64_t k)
{
	uint64_t mask, i;

	if (!m->cap)
		return NULL;
	mask = m->cap - 1;
	for (i = map_hash(k) & mask; m->tab[i].k != MAP_EMPTY; i = (i + 1) & mask)
		if (m->tab[i].k == k)
			return &m->tab[i];
	return NULL;
}

static void tab_put(struct fsck_map *m, uint64_t k, uint64_t v)
{
	uint64_t mask = m->cap - 1, i;

	for (i = map_hash(k) & mask;
	     m->tab[i].k != MAP_EMPTY && m->tab[i].k != MAP_TOMB;
	     i = (i + 1) & mask)
		;
	if (m->tab[i].k == MAP_EMPTY)
		m->used++;
	m->tab[i].k = k;
	m->tab[i].v = v;
	m->live++;
}

/* Make room for one more key in memory if the budget allows. */
static bool tab_room(struct fsck_ctx *c, struct fsck_map *m)
{
	uint64_t ncap, nbytes, obytes;
	struct map_slot *old = m->tab, *nt;

	if (m->cap && (m->used + 1) * 10 <= m->cap * 7)
		return true;
	/* Mostly tombstones: rehash at the same size. */
	ncap = m->cap && m->live * 2 < m->cap ? m->cap :
	       m->cap ? m->cap * 2 : MAP_MIN_CAP;
	nbytes = ncap * sizeof(*nt);
	obytes = m->cap * sizeof(*nt);
	/* Old and new tables coexist while rehashing: both count. */
	if (c->map_bytes + nbytes > c->o->mem_limit_bytes)
		return false;
	nt = malloc(nbytes);
	if (!nt)
		return false;
	for (uint64_t i = 0; i < ncap; i++)
		nt[i].k = MAP_EMPTY;
	m->tab = nt;
	map_account(c, (int64_t)nbytes);
	m->used = m->live = 0;
	{
		uint64_t ocap = m->cap;

		m->cap = ncap;
		for (uint64_t i = 0; i < ocap; i++)
			if (old[i].k != MAP_EMPTY && old[i].k != MAP_TOMB)
				tab_put(m, old[i].k, old[i].v);
	}
	free(old);
	map_account(c, -(int64_t)obytes);
	return true;
}

static bool bdb_get(struct fsck_map *m, uint64_t k, uint64_t *v)
{
	int sz;
	const void *p;

	if (!m->bdb || !m->nspilled)
		return false;
	p = tcbdbget3(m->bdb, &k, sizeof(k), &sz);
	if (!p || sz != sizeof(*v))
		return false;
	memcpy(v, p, sizeof(*v));
	return true;
}

uint64_t fsck_map_get(struct fsck_ctx *c, struct fsck_map *m, uint64_t k,
		      bool *found)
{
	struct map_slot *s;
	uint64_t v = 0;
	bool f;

	(void)c;
	if (!m) {
		f = false;
	} else if ((s = tab_find(m, k))) {
		v = s->v;
		f = true;
	} else {
		f = bdb_get(m, k, &v);
	}
	if (found)
		*found = f;
	return f ? v : 0;
}

void fsck_map_set(struct fsck_ctx *c, struct fsck_map *m, uint64_t k,
		  uint64_t v)
{
	struct map_slot *s;
	uint64_t old;

	if (!m || c->abort)
		return;
	s = tab_find(m, k);
	if (s) {
		s->v = v;
		return;
	}
	if (k < MAP_TOMB && !bdb_get(m, k, &old) && tab_room(c, m)) {
		tab_put(m, k, v);
		return;
	}
	if (!map_bdb_open(c, m))
		return;
	if (!bdb_get(m, k, &old)) {
		m->nspilled++;
		c->r->spilled_entries++;
	}
	if (!tcbdbput(m->bdb, &k, sizeof(k), &v, sizeof(v)))
		fsck_fail(c, -EIO, "spill file %s: %s", m->path,
			  tcbdberrmsg(tcbdbecode(m->bdb)));
}

uint64_t fsck_map_add(struct fsck_ctx *c, struct fsck_map *m, uint64_t k,
		      int64_t delta)
{
	uint64_t v = fsck_map_get(c, m, k, NULL) + (uint64_t)delta;

	fsck_map_set(c, m, k, v);
	return v;
}

void fsck_map_del(struct fsck_ctx *c, struct fsck_map *m, uint64_t k)
{
	struct map_slot *s;
	uint64_t old;

	if (!m)
		return;
	s = tab_find(m, k);
	if (s) {
		s->k = MAP_TOMB;
		m->live--;
		return;
	}
	if (bdb_get(m, k, &old)) {
		if (tcbdbout(m->bdb, &k, sizeof(k)))
			m->nspilled--;
		else
			fsck_fail(c, -EIO, "spill file %s: %s", m->path,
				  tcbdberrmsg(tcbdbecode(m->bdb)));
	}
}

void fsck_map_clear(struct fsck_ctx *c, struct fsck_map *m)
{
	if (!m)
		return;
	/* A big table left by one huge directory would make clearing it
	 * for each small one quadratic: give it back instead. */
	if (m->tab && m->cap > 4096) {
		map_account(c, -(int64_t)(m->cap * sizeof(*m->tab)));
		free(m->tab);
		m->tab = NULL;
		m->cap = m->used = m->live = 0;
	} else if (m->tab && m->used) {
		for (uint64_t i = 0; i < m->cap; i++)
			m->tab[i].k = MAP_EMPTY;
		m->used = m->live = 0;
	}
	if (m->bdb && m->nspilled) {
		if (!tcbdbvanish(m->bdb))
			fsck_fail(c, -EIO, "spill file %s: %s", m->path,
				  tcbdberrmsg(tcbdbecode(m->bdb)));
		m->nspilled = 0;
	}
}
