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
 * Names the kernel removed itself (unlink, rmdir) leave the tables, and
 * so do the names leading to an inode and in it, and its attributes, once
 * the kernel forgot the inode (no reference left: it has no entry for it
 * either); only records made before that forget began, so a lookup that
 * raced it keeps its own (stamps).  Names recorded by a rename (whose
 * inode is not known) stay until the next drop: forgetting an entry the
 * kernel no longer has is harmless.  Past VFUSE_KC_MAX names and inodes,
 * new replies get timeouts of zero.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "vmfs/clock.h"
#include "vmfs/log.h"

#include "vfuse_int.h"

/* An inode the tables know: its attributes, the names in it (a
 * directory), the names that lead to it. */
struct kc_ino {
	struct kc_ino *next;     /* bucket chain */
	uint64_t ino;
	bool attr;               /* the kernel keeps its attributes */
	bool pinned;             /* kc_take_ino works on it */
	uint64_t attr_stamp;
	struct kc_name *names;   /* entries in it */
	struct kc_name *refs;    /* entries that lead to it */
};

struct kc_name {
	struct kc_name *next;    /* bucket chain; out lists */
	struct kc_name *dnext, **dpprev;  /* dir->names */
	struct kc_name *rnext, **rpprev;  /* child->refs */
	struct kc_ino *dir, *child;       /* child: NULL if not known */
	uint64_t stamp;
	int64_t until;           /* the kernel has let it expire (mono ms) */
	uint64_t parent;
	size_t len;
	char name[];
};

#define KC_BUCKETS 65536u

/* Threads that tell the kernel to forget names (kc_forget_out). */
#define KC_POOL 4

/* Names handed to the pool: the waiter and the thread each hold it. */
struct kc_job {
	struct kc_job *next;
	struct kc_name *names;
	bool done;
	int refs;
};

struct vfuse_kc {
	pthread_rwlock_t rw;     /* replies read; a drop writes */
	pthread_mutex_t mu;      /* the tables */
	bool dropping;           /* a drop of all runs: renames record */
	_Atomic bool closing;    /* unmounting: the kernel is told nothing */
	struct kc_name **names;  /* KC_BUCKETS each */
	struct kc_ino **inos;
	size_t nnames, ninos;    /* names; inodes whose attributes are kept */
	uint64_t stamp;          /* of the last record (mu) */
	_Atomic uint64_t forgotten;
	_Atomic uint64_t expired;  /* names let go once they had expired */
	/* The pool (jmu): jobs in order, its threads, how many wait. */
	pthread_mutex_t jmu;
	pthread_cond_t jcv, dcv;   /* work; a job done (monotonic) */
	struct kc_job *jhead, **jtail;
	pthread_t thr[KC_POOL];
	unsigned nthr, idle;
	bool jstop;
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

static struct kc_ino **kc_ino_find(struct vfuse_kc *k, uint64_t ino)
{
	struct kc_ino **pp = &k->inos[kc_ino_hash(ino)];

	while (*pp && (*pp)->ino != ino)
		pp = &(*pp)->next;
	return pp;
}

/* The node of ino, made if need be (mu held).  NULL: no memory. */
static struct kc_ino *kc_ino_get(struct vfuse_kc *k, uint64_t ino)
{
	struct kc_ino **pp = kc_ino_find(k, ino);

	if (!*pp) {
		*pp = calloc(1, sizeof(**pp));
		if (*pp)
			(*pp)->ino = ino;
	}
	return *pp;
}

/* Free ino's node if nothing is left in it (mu held). */
static void kc_ino_put(struct vfuse_kc *k, struct kc_ino *i)
{
	struct kc_ino **pp;

	if (!i || i->attr || i->pinned || i->names || i->refs)
		return;
	pp = kc_ino_find(k, i->ino);
	*pp = i->next;
	free(i);
}

/* Take n out of the tables (mu held); the caller frees it or lists it. */
static void kc_name_unlink(struct vfuse_kc *k, struct kc_name *n)
{
	struct kc_name **pp = kc_name_find(k, n->parent, n->name, n->len);

	*pp = n->next;
	n->next = NULL;
	*n->dpprev = n->dnext;
	if (n->dnext)
		n->dnext->dpprev = n->dpprev;
	if (n->child) {
		*n->rpprev = n->rnext;
		if (n->rnext)
			n->rnext->rpprev = n->rpprev;
	}
	k->nnames--;
	kc_ino_put(k, n->dir);
	kc_ino_put(k, n->child);
}

static void kc_ref_link(struct kc_name *n, struct kc_ino *child)
{
	n->child = child;
	n->rnext = child->refs;
	n->rpprev = &child->refs;
	if (child->refs)
		child->refs->rpprev = &n->rnext;
	child->refs = n;
}

/* Record parent/name, leading to child (0: not known) (mu held).  False:
 * no room (force: past the limit rather), or no memory; the kernel must
 * keep nothing then. */
static bool kc_name_add(struct vfuse_kc *k, uint64_t parent, const char *name,
			uint64_t child, bool force, int64_t until)
{
	size_t len = strlen(name);
	struct kc_name **pp = kc_name_find(k, parent, name, len), *n = *pp;
	struct kc_ino *d, *c = NULL;

	if (n) {
		/* Again: a newer record (stamp), and its inode if new. */
		n->stamp = ++k->stamp;
		if (until > n->until)
			n->until = until;
		if (child && (!n->child || n->child->ino != child)) {
			struct kc_ino *old = n->child;

			c = kc_ino_get(k, child);
			if (!c)
				return false;
			if (old) {
				*n->rpprev = n->rnext;
				if (n->rnext)
					n->rnext->rpprev = n->rpprev;
			}
			kc_ref_link(n, c);
			kc_ino_put(k, old);
		}
		return true;
	}
	if (k->nnames + k->ninos >= VFUSE_KC_MAX && !force)
		return false;
	d = kc_ino_get(k, parent);
	c = child ? kc_ino_get(k, child) : NULL;
	n = d && (c || !child) ? malloc(sizeof(*n) + len + 1) : NULL;
	if (!n) {
		kc_ino_put(k, d);
		kc_ino_put(k, c);
		return false;
	}
	memset(n, 0, sizeof(*n));
	n->dir = d;
	n->dnext = d->names;
	n->dpprev = &d->names;
	if (d->names)
		d->names->dpprev = &n->dnext;
	d->names = n;
	if (c)
		kc_ref_link(n, c);
	n->stamp = ++k->stamp;
	n->until = until;
	n->parent = parent;
	n->len = len;
	memcpy(n->name, name, len + 1);
	n->next = *pp;
	*pp = n;
	k->nnames++;
	return true;
}

/* True if it was recorded. */
static bool kc_name_del(struct vfuse_kc *k, uint64_t parent, const char *name)
{
	struct kc_name *n = *kc_name_find(k, parent, name, strlen(name));

	if (!n)
		return false;
	kc_name_unlink(k, n);
	free(n);
	return true;
}

/* The kernel keeps ino's attributes (mu held). */
static bool kc_attr_add(struct vfuse_kc *k, uint64_t ino)
{
	struct kc_ino *i;

	if (k->nnames + k->ninos >= VFUSE_KC_MAX) {
		i = *kc_ino_find(k, ino);
		if (!i || !i->attr)
			return false;
	}
	i = kc_ino_get(k, ino);
	if (!i)
		return false;
	if (!i->attr)
		k->ninos++;
	i->attr = true;
	i->attr_stamp = ++k->stamp;
	return true;
}

/* What a drop tells the kernel to forget; until: the last of its names
 * to expire there. */
struct kc_out {
	struct kc_name *names;
	uint64_t *inos;
	size_t ninos, cap;
	int64_t until;
};

static void kc_out_ino(struct kc_out *o, uint64_t ino)
{
	if (o->ninos == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 64;
		uint64_t *p = realloc(o->inos, cap * sizeof(*p));

		if (!p)
			return;  /* its attributes expire at their timeout */
		o->inos = p;
		o->cap = cap;
	}
	o->inos[o->ninos++] = ino;
}

/* n, unlinked, to the out list (or freed). */
static void kc_out_name(struct kc_name *n, struct kc_out *o)
{
	if (o) {
		n->next = o->names;
		o->names = n;
		if (n->until > o->until)
			o->until = n->until;
	} else {
		free(n);
	}
}

/* ino's attributes, the names in it (names_in) and those leading to it
 * (refs), out of the tables: only records made up to stamp (mu held). */
static void kc_take_ino(struct vfuse_kc *k, struct kc_ino *i, bool names_in,
			bool refs, uint64_t stamp, struct kc_out *o)
{
	struct kc_name *n, *next;

	if (!i)
		return;
	i->pinned = true;  /* unlinking its last name would free it */
	if (i->attr && i->attr_stamp <= stamp) {
		i->attr = false;
		k->ninos--;
		if (o)
			kc_out_ino(o, i->ino);
	}
	for (n = names_in ? i->names : NULL; n; n = next) {
		next = n->dnext;
		if (n->stamp <= stamp) {
			kc_name_unlink(k, n);
			kc_out_name(n, o);
		}
	}
	for (n = refs ? i->refs : NULL; n; n = next) {
		next = n->rnext;
		if (n->stamp <= stamp) {
			kc_name_unlink(k, n);
			kc_out_name(n, o);
		}
	}
	i->pinned = false;
	kc_ino_put(k, i);
}

void vfuse_kc_stats(struct vfuse *f, uint64_t *names, uint64_t *inodes,
		    uint64_t *forgotten, uint64_t *expired)
{
	struct vfuse_kc *k = f->kc;

	pthread_mutex_lock(&k->mu);
	*names = k->nnames;
	*inodes = k->ninos;
	pthread_mutex_unlock(&k->mu);
	*forgotten = atomic_load(&k->forgotten);
	*expired = atomic_load(&k->expired);
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
	pthread_mutex_init(&k->jmu, NULL);
	pthread_cond_init(&k->jcv, NULL);
	vmfs_cond_init_mono(&k->dcv);
	k->jtail = &k->jhead;
	f->kc = k;
	return 0;
}

/* Everything out of the tables (mu held), leaving them empty. */
static void kc_take_all(struct vfuse_kc *k, struct kc_out *o)
{
	for (uint32_t b = 0; b < KC_BUCKETS; b++) {
		while (k->names[b]) {
			struct kc_name *n = k->names[b];

			k->names[b] = n->next;
			kc_out_name(n, o);
		}
		while (k->inos[b]) {
			struct kc_ino *i = k->inos[b];

			k->inos[b] = i->next;
			if (i->attr && o)
				kc_out_ino(o, i->ino);
			free(i);
		}
	}
	k->nnames = k->ninos = 0;
}

/* Tell the kernel to forget names (nothing held), and free them. */
static size_t kc_tell_names(struct vfuse *f, struct vfuse_kc *k,
			    struct kc_name *names)
{
	size_t n = 0;

	while (names) {
		struct kc_name *next = names->next;

		if (!atomic_load(&k->closing))
			fuse_lowlevel_notify_inval_entry(f->se, names->parent,
							 names->name,
							 names->len);
		free(names);
		names = next;
		n++;
	}
	return n;
}

/* jmu held; the names are told (or still the pool's) by then. */
static void kc_job_put(struct kc_job *j)
{
	if (--j->refs == 0)
		free(j);
}

static void *kc_pool_thread(void *arg)
{
	struct vfuse *f = arg;
	struct vfuse_kc *k = f->kc;

	pthread_mutex_lock(&k->jmu);
	for (;;) {
		struct kc_job *j;

		while (!k->jhead && !k->jstop) {
			k->idle++;
			pthread_cond_wait(&k->jcv, &k->jmu);
			k->idle--;
		}
		j = k->jhead;
		if (!j)
			break;
		k->jhead = j->next;
		if (!k->jhead)
			k->jtail = &k->jhead;
		pthread_mutex_unlock(&k->jmu);
		kc_tell_names(f, k, j->names);
		pthread_mutex_lock(&k->jmu);
		j->names = NULL;
		j->done = true;
		pthread_cond_broadcast(&k->dcv);
		kc_job_put(j);
	}
	pthread_mutex_unlock(&k->jmu);
	return NULL;
}

/*
 * Tell the kernel to forget what o lists (nothing held) and free it.
 * Returns once it has, or once every name in it has expired in the
 * kernel (o->until), whichever comes first.  Forgetting a name waits for
 * the kernel's lock of its directory, which a request being served here
 * may hold while it waits for another host's lock, and that host may be
 * waiting for the very lock this drop lets go of (PROTOCOL.md §9, "The
 * kernel under cached locks"): a name the kernel may no longer trust
 * needs no telling.  So the names go to the pool, and the caller waits
 * for the pool or for their expiry.  Attributes are forgotten without
 * any lock in the kernel, here and now.
 */
static size_t kc_forget_out(struct vfuse *f, struct kc_out *o)
{
	struct vfuse_kc *k = f->kc;
	size_t n = o->ninos;
	struct kc_job *j;
	bool late = false;

	for (size_t i = 0; i < o->ninos; i++)
		if (!atomic_load(&k->closing))
			fuse_lowlevel_notify_inval_inode(f->se, o->inos[i], -1, 0);
	free(o->inos);
	o->inos = NULL;
	o->ninos = 0;
	j = o->names ? calloc(1, sizeof(*j)) : NULL;
	if (!j) {
		n += kc_tell_names(f, k, o->names);  /* none, or no memory */
		goto out;
	}
	for (struct kc_name *m = o->names; m; m = m->next)
		n++;
	j->names = o->names;
	j->refs = 2;
	pthread_mutex_lock(&k->jmu);
	*k->jtail = j;
	k->jtail = &j->next;
	if (!k->idle && k->nthr < KC_POOL &&
	    !pthread_create(&k->thr[k->nthr], NULL, kc_pool_thread, f))
		k->nthr++;
	if (!k->nthr) {
		/* No thread: told here, as it would be at the pool. */
		k->jhead = NULL;
		k->jtail = &k->jhead;
		pthread_mutex_unlock(&k->jmu);
		kc_tell_names(f, k, j->names);
		free(j);
		goto out;
	}
	pthread_cond_signal(&k->jcv);
	/* Names that expired already need no waiting (nor counting). */
	late = vmfs_mono_ms() < o->until;
	while (!j->done) {
		struct timespec ts;

		if (vmfs_mono_ms() >= o->until)
			break;
		ts.tv_sec = o->until / 1000;
		ts.tv_nsec = (long)(o->until % 1000) * 1000000L;
		pthread_cond_timedwait(&k->dcv, &k->jmu, &ts);
	}
	late = late && !j->done;
	kc_job_put(j);
	pthread_mutex_unlock(&k->jmu);
	if (late) {
		atomic_fetch_add(&k->expired, 1);
		qb_log(LOG_INFO, "fuse: the kernel could not be told to forget names in time (a request holds their directory); they have expired there, and it is told when the request ends");
	}
out:
	o->names = NULL;
	o->until = 0;
	atomic_fetch_add(&k->forgotten, n);
	return n;
}

static void kc_drop_all(void *arg)
{
	struct vfuse *f = arg;
	struct vfuse_kc *k = f->kc;
	size_t n = 0;

	for (int round = 0; round < 2; round++) {
		struct kc_out o = { 0 };

		pthread_rwlock_wrlock(&k->rw);
		pthread_mutex_lock(&k->mu);
		k->dropping = round == 0;
		kc_take_all(k, &o);
		pthread_mutex_unlock(&k->mu);
		pthread_rwlock_unlock(&k->rw);
		n += kc_forget_out(f, &o);
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
	struct kc_out o = { 0 };

	pthread_rwlock_wrlock(&k->rw);
	pthread_mutex_lock(&k->mu);
	kc_take_ino(k, *kc_ino_find(k, ino), true, false, UINT64_MAX, &o);
	pthread_mutex_unlock(&k->mu);
	pthread_rwlock_unlock(&k->rw);
	kc_forget_out(f, &o);
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
	bool stuck = false;

	if (!k)
		return;
	/* The session serves no more requests: a hook that told the kernel
	 * now could wait for one of them for ever. */
	atomic_store(&k->closing, true);
	vol_kcache_set(f->v, NULL, NULL);
	pthread_mutex_lock(&k->jmu);
	k->jstop = true;
	pthread_cond_broadcast(&k->jcv);
	pthread_mutex_unlock(&k->jmu);
	for (unsigned i = 0; i < k->nthr; i++) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 5;
		if (pthread_timedjoin_np(k->thr[i], NULL, &ts)) {
			pthread_detach(k->thr[i]);
			stuck = true;
		}
	}
	if (stuck) {
		/* A request the session no longer serves holds a directory
		 * the pool tells the kernel about: the pool keeps the
		 * tables' lock and queue, so they stay. */
		qb_log(LOG_WARNING, "fuse: a thread telling the kernel to forget names is still waiting for a directory; left running");
		f->kc = NULL;
		return;
	}
	kc_take_all(k, NULL);
	free(k->names);
	free(k->inos);
	pthread_rwlock_destroy(&k->rw);
	pthread_mutex_destroy(&k->mu);
	pthread_mutex_destroy(&k->jmu);
	pthread_cond_destroy(&k->jcv);
	pthread_cond_destroy(&k->dcv);
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

/* When an entry granted now for timeout seconds has expired in the
 * kernel, whose clock starts when the request's thread takes the reply
 * (VFUSE_KC_LATE_MS later at the most). */
static int64_t kc_until(double timeout)
{
	return vmfs_mono_ms() + (int64_t)(timeout * 1000) + VFUSE_KC_LATE_MS;
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
	double timeout = vol_kcache_alone(f->v) ? VFUSE_KC_TIMEOUT
						: VFUSE_KC_SHARED_TIMEOUT;

	*entry_timeout = *attr_timeout = 0.0;
	attr = vol_kcache_hold(f->v, ino, epoch);
	if (name && strcmp(name, ".") && strcmp(name, ".."))
		entry = vol_kcache_hold(f->v, parent, epoch);
	if (!attr && !entry)
		return;
	pthread_mutex_lock(&k->mu);
	if (attr)
		attr = kc_attr_add(k, ino);
	if (entry)
		entry = kc_name_add(k, parent, name, ino, false,
				    kc_until(timeout));
	pthread_mutex_unlock(&k->mu);
	if (attr)
		*attr_timeout = timeout;
	if (entry)
		*entry_timeout = timeout;
}

/* The kernel removed the name itself (unlink, rmdir). */
void vfuse_kc_gone(struct vfuse *f, uint64_t parent, const char *name)
{
	struct vfuse_kc *k = f->kc;

	pthread_mutex_lock(&k->mu);
	kc_name_del(k, parent, name);
	pthread_mutex_unlock(&k->mu);
}

/* The stamp a forget compares records with: read before it runs. */
uint64_t vfuse_kc_stamp(struct vfuse *f)
{
	uint64_t stamp;

	pthread_mutex_lock(&f->kc->mu);
	stamp = f->kc->stamp;
	pthread_mutex_unlock(&f->kc->mu);
	return stamp;
}

/* The kernel has no reference to ino left (its forget, begun at stamp):
 * no entry leads to it, none is in it, it keeps no attributes of it;
 * records made since came with a new lookup and stay. */
void vfuse_kc_forget(struct vfuse *f, uint64_t ino, uint64_t stamp)
{
	struct vfuse_kc *k = f->kc;

	pthread_mutex_lock(&k->mu);
	kc_take_ino(k, *kc_ino_find(k, ino), true, true, stamp, NULL);
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

	struct kc_name *n;
	uint64_t child = 0, newchild = 0;
	/* The kernel moves an entry with the time it had left; one we did
	 * not record can have no more than a grant made now. */
	int64_t now_until = kc_until(vol_kcache_alone(f->v) ?
				     VFUSE_KC_TIMEOUT : VFUSE_KC_SHARED_TIMEOUT);
	int64_t until = now_until, newuntil = now_until;

	pthread_mutex_lock(&k->mu);
	n = *kc_name_find(k, parent, name, strlen(name));
	from = n || k->dropping;
	if (n && n->child)
		child = n->child->ino;
	if (n && n->until > until)
		until = n->until;
	n = exchange ? *kc_name_find(k, newparent, newname, strlen(newname)) : NULL;
	to = exchange && (n || k->dropping);
	if (n && n->child)
		newchild = n->child->ino;
	if (n && n->until > newuntil)
		newuntil = n->until;
	pthread_mutex_unlock(&k->mu);
	from = from || vol_kcache_covered(f->v, parent);
	to = to || (exchange && vol_kcache_covered(f->v, newparent));
	pthread_mutex_lock(&k->mu);
	if (from)
		ok = kc_name_add(k, newparent, newname, child, true, until);
	if (to)
		ok &= kc_name_add(k, parent, name, newchild, true, newuntil);
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
