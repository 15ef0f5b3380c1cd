/*
 * What the kernel may cache, and making it forget.
 *
 * A reply gives the kernel positive entry and attribute timeouts where
 * the engine says nothing can change behind this host (vol_kcache_hold:
 * it works alone on the volume, or keeps the covering lock EXCLUSIVE as
 * a cache), and this file remembers every name (parent, name) and inode
 * it let the kernel keep, names grouped by directory.  Before that stops
 * being true the engine calls kc_drop_all (another host mounts, the host
 * is fenced, the fast path ends) or kc_drop_ino (the lock of one inode
 * is let go: its attributes and the names in it), and the kernel is told
 * to forget them (fuse_lowlevel_notify_inval_entry/_inode).
 *
 * The rwlock makes the switch exact: a reply decides and records under
 * it (read), and a drop takes it for writing after the engine said no
 * more, so no reply that was allowed can reach the kernel after the drop
 * collected what it forgets.  The invalidations themselves run with
 * nothing held: the kernel takes the parent directory's lock for each
 * entry, and so waits for a lookup or rename there to finish (the entry
 * then exists and is forgotten).  A rename moves a name the kernel
 * keeps: the new name is recorded (the engine keeps the new parent's
 * lock until it is forgotten, vcl_kc_carry), and a rename that ended
 * while a drop of everything ran is caught by the drop's second round.
 *
 * Names the kernel removed itself (unlink, rmdir) leave the tables; names
 * of forgotten inodes may stay until the next drop (forgetting an entry
 * the kernel no longer has is harmless).  Past VFUSE_KC_MAX names and
 * inodes, new replies get timeouts of zero.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <qb/qblog.h>

#include "vfuse_int.h"

struct kc_dir;

struct kc_name {
	struct kc_name *next;    /* bucket chain */
	struct kc_name *dnext, **dpprev;  /* the directory's list */
	struct kc_dir *dir;
	uint64_t parent;
	size_t len;
	char name[];
};

/* The remembered names in one directory. */
struct kc_dir {
	struct kc_dir *next;     /* bucket chain */
	uint64_t ino;
	struct kc_name *names;
};

struct kc_ino {
	struct kc_ino *next;
	uint64_t ino;
};

#define KC_BUCKETS 65536u

struct vfuse_kc {
	pthread_rwlock_t rw;     /* replies read; a drop writes */
	pthread_mutex_t mu;      /* the tables */
	bool dropping;           /* a drop of all runs: renames record */
	_Atomic bool closing;    /* unmounting: the kernel is told nothing */
	struct kc_name **names;  /* KC_BUCKETS each */
	struct kc_dir **dirs;
	struct kc_ino **inos;
	size_t nnames, ninos;
	_Atomic uint64_t forgotten;
};

static uint32_t kc_hash(uint64_t parent, const char *name, size_t len)
{
	uint64_t h = 1469598103934665603ull ^ parent;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)name[i]) * 1099511628211ull;
	return (uint32_t)(h ^ (h >> 32)) % KC_BUCKETS;
}

static uint32_t kc_ino_hash(uint64_t ino)
{
	return (uint32_t)((ino * 0x9e3779b97f4a7c15ull) >> 48) % KC_BUCKETS;
}

static struct kc_name **kc_name_find(struct vfuse_kc *k, uint64_t parent,
				     const char *name, size_t len)
{
	struct kc_name **pp = &k->names[kc_hash(parent, name, len)];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->parent == parent && (*pp)->len == len &&
		    !memcmp((*pp)->name, name, len))
			break;
	return pp;
}

static struct kc_dir **kc_dir_find(struct vfuse_kc *k, uint64_t ino)
{
	struct kc_dir **pp = &k->dirs[kc_ino_hash(ino)];

	while (*pp && (*pp)->ino != ino)
		pp = &(*pp)->next;
	return pp;
}

/* Record a name (mu held).  False: no room (force: past the limit
 * rather), or no memory; the kernel must keep nothing then. */
static bool kc_name_add(struct vfuse_kc *k, uint64_t parent, const char *name,
			bool force)
{
	size_t len = strlen(name);
	struct kc_name **pp = kc_name_find(k, parent, name, len), *n;
	struct kc_dir **dp, *d;

	if (*pp)
		return true;
	if (k->nnames + k->ninos >= VFUSE_KC_MAX && !force)
		return false;
	dp = kc_dir_find(k, parent);
	d = *dp;
	if (!d) {
		d = calloc(1, sizeof(*d));
		if (!d)
			return false;
		d->ino = parent;
		*dp = d;
	}
	n = malloc(sizeof(*n) + len + 1);
	if (!n) {
		if (!d->names) {
			*dp = d->next;
			free(d);
		}
		return false;
	}
	n->next = NULL;
	n->dir = d;
	n->dnext = d->names;
	n->dpprev = &d->names;
	if (d->names)
		d->names->dpprev = &n->dnext;
	d->names = n;
	n->parent = parent;
	n->len = len;
	memcpy(n->name, name, len + 1);
	*pp = n;
	k->nnames++;
	return true;
}

/* Unlink n from its directory's list (mu held); the directory goes with
 * its last name. */
static void kc_name_undir(struct vfuse_kc *k, struct kc_name *n)
{
	struct kc_dir *d = n->dir;

	*n->dpprev = n->dnext;
	if (n->dnext)
		n->dnext->dpprev = n->dpprev;
	if (!d->names) {
		struct kc_dir **dp = kc_dir_find(k, d->ino);

		*dp = d->next;
		free(d);
	}
}

/* True if it was recorded. */
static bool kc_name_del(struct vfuse_kc *k, uint64_t parent, const char *name)
{
	struct kc_name **pp = kc_name_find(k, parent, name, strlen(name)), *n;

	n = *pp;
	if (!n)
		return false;
	*pp = n->next;
	kc_name_undir(k, n);
	free(n);
	k->nnames--;
	return true;
}

static struct kc_ino **kc_ino_find(struct vfuse_kc *k, uint64_t ino)
{
	struct kc_ino **pp = &k->inos[kc_ino_hash(ino)];

	while (*pp && (*pp)->ino != ino)
		pp = &(*pp)->next;
	return pp;
}

static bool kc_ino_add(struct vfuse_kc *k, uint64_t ino)
{
	struct kc_ino **pp = kc_ino_find(k, ino);

	if (*pp)
		return true;
	if (k->nnames + k->ninos >= VFUSE_KC_MAX)
		return false;
	*pp = malloc(sizeof(**pp));
	if (!*pp)
		return false;
	(*pp)->next = NULL;
	(*pp)->ino = ino;
	k->ninos++;
	return true;
}

void vfuse_kc_stats(struct vfuse *f, uint64_t *names, uint64_t *inodes,
		    uint64_t *forgotten)
{
	struct vfuse_kc *k = f->kc;

	pthread_mutex_lock(&k->mu);
	*names = k->nnames;
	*inodes = k->ninos;
	pthread_mutex_unlock(&k->mu);
	*forgotten = atomic_load(&k->forgotten);
}

int vfuse_kc_init(struct vfuse *f)
{
	struct vfuse_kc *k = calloc(1, sizeof(*k));

	if (!k)
		return -ENOMEM;
	k->names = calloc(KC_BUCKETS, sizeof(*k->names));
	k->dirs = calloc(KC_BUCKETS, sizeof(*k->dirs));
	k->inos = calloc(KC_BUCKETS, sizeof(*k->inos));
	if (!k->names || !k->dirs || !k->inos) {
		free(k->names);
		free(k->dirs);
		free(k->inos);
		free(k);
		return -ENOMEM;
	}
	pthread_rwlock_init(&k->rw, NULL);
	pthread_mutex_init(&k->mu, NULL);
	f->kc = k;
	return 0;
}

/* Take the tables (mu held), leaving empty ones. */
static void kc_take(struct vfuse_kc *k, struct kc_name **names,
		    struct kc_ino **inos)
{
	*names = NULL;
	*inos = NULL;
	for (uint32_t b = 0; b < KC_BUCKETS; b++) {
		while (k->names[b]) {
			struct kc_name *n = k->names[b];

			k->names[b] = n->next;
			n->next = *names;
			*names = n;
		}
		while (k->dirs[b]) {
			struct kc_dir *d = k->dirs[b];

			k->dirs[b] = d->next;
			free(d);
		}
		while (k->inos[b]) {
			struct kc_ino *i = k->inos[b];

			k->inos[b] = i->next;
			i->next = *inos;
			*inos = i;
		}
	}
	k->nnames = k->ninos = 0;
}

/* Tell the kernel to forget them (nothing held; tell: the session
 * runs), and free them. */
static size_t kc_invalidate(struct vfuse *f, struct kc_name *names,
			    struct kc_ino *inos, bool tell)
{
	size_t n = 0;

	while (names) {
		struct kc_name *next = names->next;

		if (tell && !atomic_load(&f->kc->closing))
			fuse_lowlevel_notify_inval_entry(f->se, names->parent,
							 names->name,
							 names->len);
		free(names);
		names = next;
		n++;
	}
	while (inos) {
		struct kc_ino *next = inos->next;

		if (tell && !atomic_load(&f->kc->closing))
			fuse_lowlevel_notify_inval_inode(f->se, inos->ino, -1, 0);
		free(inos);
		inos = next;
		n++;
	}
	if (tell)
		atomic_fetch_add(&f->kc->forgotten, n);
	return n;
}

static void kc_drop_all(void *arg)
{
	struct vfuse *f = arg;
	struct vfuse_kc *k = f->kc;
	size_t n = 0;

	for (int round = 0; round < 2; round++) {
		struct kc_name *names;
		struct kc_ino *inos;

		pthread_rwlock_wrlock(&k->rw);
		pthread_mutex_lock(&k->mu);
		k->dropping = round == 0;
		kc_take(k, &names, &inos);
		pthread_mutex_unlock(&k->mu);
		pthread_rwlock_unlock(&k->rw);
		n += kc_invalidate(f, names, inos, true);
	}
	qb_log(LOG_INFO, "fuse: the kernel forgot %zu cached names and attributes",
	       n);
}

/* The lock of ino is let go: the kernel forgets ino's attributes and the
 * names in it (if a directory). */
static void kc_drop_ino(void *arg, uint64_t ino)
{
	struct vfuse *f = arg;
	struct vfuse_kc *k = f->kc;
	struct kc_name *names = NULL;
	struct kc_ino *inos = NULL, **ip;
	struct kc_dir **dp, *d;

	pthread_rwlock_wrlock(&k->rw);
	pthread_mutex_lock(&k->mu);
	dp = kc_dir_find(k, ino);
	d = *dp;
	if (d) {
		*dp = d->next;
		while (d->names) {
			struct kc_name *n = d->names, **pp;

			d->names = n->dnext;
			pp = kc_name_find(k, n->parent, n->name, n->len);
			*pp = n->next;
			n->next = names;
			names = n;
			k->nnames--;
		}
		free(d);
	}
	ip = kc_ino_find(k, ino);
	if (*ip) {
		inos = *ip;
		*ip = inos->next;
		inos->next = NULL;
		k->ninos--;
	}
	pthread_mutex_unlock(&k->mu);
	pthread_rwlock_unlock(&k->rw);
	kc_invalidate(f, names, inos, true);
}

static void kc_drop_attr(void *arg, uint64_t ino)
{
	struct vfuse *f = arg;

	if (!atomic_load(&f->kc->closing))
		fuse_lowlevel_notify_inval_inode(f->se, ino, -1, 0);
}

static const struct vol_kcache_ops kc_ops = {
	.drop_all = kc_drop_all,
	.drop_ino = kc_drop_ino,
	.drop_attr = kc_drop_attr,
};

void vfuse_kc_start(struct vfuse *f)
{
	vol_kcache_set(f->v, &kc_ops, f);
}

void vfuse_kc_fini(struct vfuse *f)
{
	struct vfuse_kc *k = f->kc;
	struct kc_name *names;
	struct kc_ino *inos;

	if (!k)
		return;
	/* The session serves no more requests: a hook that told the kernel
	 * now could wait for one of them for ever. */
	atomic_store(&k->closing, true);
	vol_kcache_set(f->v, NULL, NULL);
	kc_take(k, &names, &inos);
	kc_invalidate(f, names, inos, false);
	free(k->names);
	free(k->dirs);
	free(k->inos);
	pthread_rwlock_destroy(&k->rw);
	pthread_mutex_destroy(&k->mu);
	free(k);
	f->kc = NULL;
}

void vfuse_kc_lock(struct vfuse *f)
{
	pthread_rwlock_rdlock(&f->kc->rw);
}

void vfuse_kc_unlock(struct vfuse *f)
{
	pthread_rwlock_unlock(&f->kc->rw);
}

/* The epoch a reply's grant is checked against: read before the
 * operation whose answer the reply carries. */
uint64_t vfuse_kc_epoch(struct vfuse *f)
{
	return vol_kcache_epoch(f->v);
}

/* Between vfuse_kc_lock and _unlock: how long the kernel may keep the
 * entry parent/name (NULL: none, attributes only) and ino's attributes,
 * as an operation begun at epoch found them. */
void vfuse_kc_grant(struct vfuse *f, uint64_t parent, const char *name,
		    uint64_t ino, uint64_t epoch, double *entry_timeout,
		    double *attr_timeout)
{
	struct vfuse_kc *k = f->kc;
	bool attr = false, entry = false;

	*entry_timeout = *attr_timeout = 0.0;
	attr = vol_kcache_hold(f->v, ino, epoch);
	if (name && strcmp(name, ".") && strcmp(name, ".."))
		entry = vol_kcache_hold(f->v, parent, epoch);
	if (!attr && !entry)
		return;
	pthread_mutex_lock(&k->mu);
	if (attr)
		attr = kc_ino_add(k, ino);
	if (entry)
		entry = kc_name_add(k, parent, name, false);
	pthread_mutex_unlock(&k->mu);
	if (attr)
		*attr_timeout = VFUSE_KC_TIMEOUT;
	if (entry)
		*entry_timeout = VFUSE_KC_TIMEOUT;
}

/* The kernel removed the name itself (unlink, rmdir). */
void vfuse_kc_gone(struct vfuse *f, uint64_t parent, const char *name)
{
	struct vfuse_kc *k = f->kc;

	pthread_mutex_lock(&k->mu);
	kc_name_del(k, parent, name);
	pthread_mutex_unlock(&k->mu);
}

/* The kernel forgot the inode: it keeps no attributes of it. */
void vfuse_kc_forget(struct vfuse *f, uint64_t ino)
{
	struct vfuse_kc *k = f->kc;
	struct kc_ino **pp, *i;

	pthread_mutex_lock(&k->mu);
	pp = kc_ino_find(k, ino);
	i = *pp;
	if (i) {
		*pp = i->next;
		free(i);
		k->ninos--;
	}
	pthread_mutex_unlock(&k->mu);
}

/*
 * Before a rename: the kernel moves the entry it may keep, with its
 * timeout, to the new name (with exchange, both names stay), so the new
 * name is recorded first wherever the old one may be kept: recorded,
 * under a lock being let go or kept (vol_kcache_covered), or while a
 * drop of everything runs.  Recorded before the operation, it is in the
 * tables whenever a drop of the new parent runs after it (the engine
 * keeps that lock until then, vcl_kc_carry).  Past the limit all the
 * same: the kernel keeps it whatever we say.  A rename that fails leaves
 * a record of a name the kernel does not have, which is harmless.
 */
void vfuse_kc_rename_begin(struct vfuse *f, uint64_t parent, const char *name,
			   uint64_t newparent, const char *newname,
			   bool exchange)
{
	struct vfuse_kc *k = f->kc;
	bool from, to, ok = true;

	pthread_mutex_lock(&k->mu);
	from = *kc_name_find(k, parent, name, strlen(name)) || k->dropping;
	to = exchange && (*kc_name_find(k, newparent, newname, strlen(newname)) ||
			  k->dropping);
	pthread_mutex_unlock(&k->mu);
	from = from || vol_kcache_covered(f->v, parent);
	to = to || (exchange && vol_kcache_covered(f->v, newparent));
	pthread_mutex_lock(&k->mu);
	if (from)
		ok = kc_name_add(k, newparent, newname, true);
	if (to)
		ok &= kc_name_add(k, parent, name, true);
	pthread_mutex_unlock(&k->mu);
	if (!ok)
		qb_log(LOG_WARNING, "fuse: no memory to track a renamed entry the kernel caches");
}

/* After it succeeded: the old name is gone from the kernel (not with
 * exchange). */
void vfuse_kc_rename_done(struct vfuse *f, uint64_t parent, const char *name,
			  bool exchange)
{
	if (!exchange)
		vfuse_kc_gone(f, parent, name);
}
