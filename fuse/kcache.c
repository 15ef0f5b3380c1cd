/*
 * What the kernel may cache, and making it forget.
 *
 * While the engine says nothing can change behind this host
 * (vol_kcache_ok: it works alone on the volume), replies give the kernel
 * positive entry and attribute timeouts, and this file remembers every
 * name (parent, name) and inode it was allowed to keep.  When that ends
 * (another host mounts, the host is fenced) the engine calls
 * kc_drop_all before anything can change, and the kernel is told to
 * forget each of them (fuse_lowlevel_notify_inval_entry/_inode).
 *
 * The rwlock makes the switch exact: a reply decides and records under
 * it (read), and the drop takes it for writing after the engine said no
 * more, so no reply that was allowed can reach the kernel after the drop
 * collected the tables.  The invalidations themselves run with nothing
 * held: the kernel takes the parent directory's lock for each entry, and
 * so waits for a lookup or rename there to finish (the entry then exists
 * and is forgotten).  A rename moves a name the kernel keeps: the new
 * name is recorded, and a rename that ended while a drop ran is caught by
 * the drop's second round.
 *
 * Names the kernel removed itself (unlink, rmdir) leave the table; names
 * of forgotten inodes may stay until the next drop (forgetting an entry
 * the kernel no longer has is harmless).  Past VFUSE_KC_MAX names, new
 * replies get timeouts of zero.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <qb/qblog.h>

#include "vfuse_int.h"

struct kc_name {
	struct kc_name *next;
	uint64_t parent;
	size_t len;
	char name[];
};

struct kc_ino {
	struct kc_ino *next;
	uint64_t ino;
};

#define KC_BUCKETS 65536u

struct vfuse_kc {
	pthread_rwlock_t rw;     /* replies read; a drop writes */
	pthread_mutex_t mu;      /* the tables */
	bool dropping;           /* a drop runs: renames record anyway */
	struct kc_name **names;  /* KC_BUCKETS each */
	struct kc_ino **inos;
	size_t nnames, ninos;
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

/* Record a name (mu held).  False: no room (force: past the limit
 * rather), or no memory; the kernel must keep nothing then. */
static bool kc_name_add(struct vfuse_kc *k, uint64_t parent, const char *name,
			bool force)
{
	size_t len = strlen(name);
	struct kc_name **pp = kc_name_find(k, parent, name, len), *n;

	if (*pp)
		return true;
	if (k->nnames + k->ninos >= VFUSE_KC_MAX && !force)
		return false;
	n = malloc(sizeof(*n) + len + 1);
	if (!n)
		return false;
	n->next = NULL;
	n->parent = parent;
	n->len = len;
	memcpy(n->name, name, len + 1);
	*pp = n;
	k->nnames++;
	return true;
}

/* True if it was recorded. */
static bool kc_name_del(struct vfuse_kc *k, uint64_t parent, const char *name)
{
	struct kc_name **pp = kc_name_find(k, parent, name, strlen(name)), *n;

	n = *pp;
	if (!n)
		return false;
	*pp = n->next;
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

int vfuse_kc_init(struct vfuse *f)
{
	struct vfuse_kc *k = calloc(1, sizeof(*k));

	if (!k)
		return -ENOMEM;
	k->names = calloc(KC_BUCKETS, sizeof(*k->names));
	k->inos = calloc(KC_BUCKETS, sizeof(*k->inos));
	if (!k->names || !k->inos) {
		free(k->names);
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

		if (tell)
			fuse_lowlevel_notify_inval_entry(f->se, names->parent,
							 names->name,
							 names->len);
		free(names);
		names = next;
		n++;
	}
	while (inos) {
		struct kc_ino *next = inos->next;

		if (tell)
			fuse_lowlevel_notify_inval_inode(f->se, inos->ino, -1, 0);
		free(inos);
		inos = next;
		n++;
	}
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

static void kc_drop_attr(void *arg, uint64_t ino)
{
	struct vfuse *f = arg;

	fuse_lowlevel_notify_inval_inode(f->se, ino, -1, 0);
}

static const struct vol_kcache_ops kc_ops = {
	.drop_all = kc_drop_all,
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
	vol_kcache_set(f->v, NULL, NULL);
	kc_take(k, &names, &inos);
	kc_invalidate(f, names, inos, false);
	free(k->names);
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

/* Between vfuse_kc_lock and _unlock: how long the kernel may keep the
 * entry parent/name (NULL: none, attributes only) and ino's attributes. */
void vfuse_kc_grant(struct vfuse *f, uint64_t parent, const char *name,
		    uint64_t ino, double *entry_timeout, double *attr_timeout)
{
	struct vfuse_kc *k = f->kc;
	bool attr, entry = false;

	*entry_timeout = *attr_timeout = 0.0;
	if (!vol_kcache_ok(f->v))
		return;
	pthread_mutex_lock(&k->mu);
	attr = kc_ino_add(k, ino);
	if (name && strcmp(name, ".") && strcmp(name, ".."))
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
 * A rename succeeded (called between vfuse_kc_lock and _unlock, before
 * the reply): the kernel moves the entry it kept, with its timeout, to
 * the new name (with exchange, both names stay), so the new name is
 * recorded.  While a drop runs, recorded or not, it goes in too, for the
 * drop's second round.  Past the limit all the same: the kernel keeps it
 * whatever we say.  (No memory for it: logged; the kernel forgets it at
 * its timeout.)
 */
void vfuse_kc_renamed(struct vfuse *f, uint64_t parent, const char *name,
		      uint64_t newparent, const char *newname, bool exchange)
{
	struct vfuse_kc *k = f->kc;
	bool had, had_new, ok = true;

	pthread_mutex_lock(&k->mu);
	had = kc_name_del(k, parent, name);
	had_new = kc_name_del(k, newparent, newname);
	if (had || k->dropping || (exchange && had_new)) {
		ok = kc_name_add(k, newparent, newname, true);
		if (exchange)
			ok &= kc_name_add(k, parent, name, true);
	}
	pthread_mutex_unlock(&k->mu);
	if (!ok)
		qb_log(LOG_WARNING, "fuse: no memory to track a renamed entry the kernel caches");
}
