/*
 * The model of the recorded workload: every file and directory it made
 * (nodes), what each file holds sector by sector (the version of the
 * write that put each sector there), every version ever written, every
 * path each node ever had, and the history the oracle needs: each fsync
 * that returned (with a copy of the file as it was) and each later op
 * that touched the file (cs_promise()).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crashsim.h"

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t n = *cap ? *cap : 16;
	void *q;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	q = realloc(*p, n * elem);
	if (!q)
		return -ENOMEM;
	memset((char *)q + *cap * elem, 0, (n - *cap) * elem);
	*p = q;
	*cap = n;
	return 0;
}

int cs_model_init(struct cs_model *m)
{
	struct cs_node *root, *lf;

	memset(m, 0, sizeof(*m));
	m->nvers = 1;	/* version 0 means "zeros" */
	if (grow((void **)&m->vers, &m->vcap, 1, sizeof(*m->vers)))
		return -ENOMEM;
	root = cs_node_new(m, true, 0, "", 1);
	if (!root)
		return -ENOMEM;
	lf = cs_node_new(m, true, 0, "lost+found", 2);
	if (!lf)
		return -ENOMEM;
	if (cs_path_note(m, "/", 0) || cs_path_note(m, "/lost+found", 1))
		return -ENOMEM;
	return 0;
}

void cs_model_free(struct cs_model *m)
{
	for (size_t i = 0; i < m->nnodes; i++) {
		struct cs_node *n = &m->nodes[i];

		free(n->sect);
		for (size_t j = 0; j < n->nfsync; j++) {
			free(n->fsyncs[j].path);
			free(n->fsyncs[j].sect);
		}
		free(n->fsyncs);
		free(n->touches);
	}
	for (size_t b = 0; b < CS_PATH_BUCKETS; b++) {
		while (m->paths[b]) {
			struct cs_path *p = m->paths[b];

			m->paths[b] = p->next;
			free(p->ids);
			free(p);
		}
	}
	free(m->nodes);
	free(m->vers);
	free(m->ops);
	memset(m, 0, sizeof(*m));
}

struct cs_node *cs_node_new(struct cs_model *m, bool dir, uint32_t parent,
			    const char *name, uint64_t ino)
{
	struct cs_node *n;

	if (grow((void **)&m->nodes, &m->cap, m->nnodes + 1, sizeof(*n)))
		return NULL;
	n = &m->nodes[m->nnodes];
	memset(n, 0, sizeof(*n));
	n->id = (uint32_t)m->nnodes++;
	n->dir = dir;
	n->live = true;
	n->ino = ino;
	n->parent = parent;
	snprintf(n->name, sizeof(n->name), "%s", name);
	return n;
}

void cs_node_path(const struct cs_model *m, uint32_t id, char *out,
		  size_t len)
{
	const char *parts[64];
	size_t np = 0, o = 0;

	if (id == 0) {
		snprintf(out, len, "/");
		return;
	}
	while (id != 0 && np < 64) {
		parts[np++] = m->nodes[id].name;
		id = m->nodes[id].parent;
	}
	out[0] = 0;
	while (np-- > 0 && o < len) {
		int w = snprintf(out + o, len - o, "/%s", parts[np]);

		if (w < 0)
			break;
		o += (size_t)w;
	}
}

static uint32_t path_hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h % CS_PATH_BUCKETS;
}

const struct cs_path *cs_path_find(const struct cs_model *m,
				   const char *path)
{
	const struct cs_path *p;

	for (p = m->paths[path_hash(path)]; p; p = p->next)
		if (!strcmp(p->path, path))
			return p;
	return NULL;
}

bool cs_path_had(const struct cs_path *p, uint32_t id)
{
	for (size_t i = 0; p && i < p->nids; i++)
		if (p->ids[i] == id)
			return true;
	return false;
}

int cs_path_note(struct cs_model *m, const char *path, uint32_t id)
{
	struct cs_path *p = (struct cs_path *)cs_path_find(m, path);
	uint32_t *ids;

	if (!p) {
		uint32_t h = path_hash(path);

		p = calloc(1, sizeof(*p) + strlen(path) + 1);
		if (!p)
			return -ENOMEM;
		strcpy(p->path, path);
		p->next = m->paths[h];
		m->paths[h] = p;
	}
	if (cs_path_had(p, id))
		return 0;
	ids = realloc(p->ids, (p->nids + 1) * sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	ids[p->nids++] = id;
	p->ids = ids;
	return 0;
}

uint32_t cs_ver_new(struct cs_model *m, uint32_t fid, int xattr_slot,
		    uint64_t first, uint64_t count)
{
	struct cs_ver *v;

	if (grow((void **)&m->vers, &m->vcap, m->nvers + 1, sizeof(*v)))
		return 0;
	v = &m->vers[m->nvers];
	v->fid = fid;
	v->xattr = (uint8_t)(xattr_slot < 0 ? 0 : xattr_slot + 1);
	v->first = first;
	v->count = count;
	return (uint32_t)m->nvers++;
}

bool cs_ver_valid(const struct cs_model *m, uint32_t fid, uint32_t ver,
		  uint64_t sector)
{
	const struct cs_ver *v;

	if (ver == 0 || ver >= m->nvers)
		return false;
	v = &m->vers[ver];
	return v->fid == fid && !v->xattr && sector >= v->first &&
	       sector - v->first < v->count;
}

bool cs_xver_valid(const struct cs_model *m, uint32_t fid, uint32_t slot,
		   uint32_t ver)
{
	const struct cs_ver *v;

	if (ver == 0 || ver >= m->nvers)
		return false;
	v = &m->vers[ver];
	return v->fid == fid && v->xattr == slot + 1;
}

/* New sectors read as zeros; a shrink forgets the cut ones. */
int cs_node_resize(struct cs_node *n, uint64_t size)
{
	uint64_t ns = (size + CS_SECTOR - 1) / CS_SECTOR;
	uint64_t old = (n->size + CS_SECTOR - 1) / CS_SECTOR;

	if (grow((void **)&n->sect, &n->sect_cap, ns, sizeof(*n->sect)))
		return -ENOMEM;
	if (ns < old)
		memset(n->sect + ns, 0, (old - ns) * sizeof(*n->sect));
	n->size = size;
	if (size > n->max_size)
		n->max_size = size;
	return 0;
}

int cs_touch_add(struct cs_node *n, uint32_t start, uint8_t what)
{
	if (grow((void **)&n->touches, &n->touch_cap, n->ntouch + 1,
		 sizeof(*n->touches)))
		return -ENOMEM;
	n->touches[n->ntouch].start = start;
	n->touches[n->ntouch].what = what;
	n->ntouch++;
	return 0;
}

int cs_touch_tree(struct cs_model *m, uint32_t id, uint32_t start,
		  uint8_t what)
{
	int ret = cs_touch_add(&m->nodes[id], start, what);

	if (ret || !m->nodes[id].dir)
		return ret;
	for (size_t i = 2; i < m->nnodes; i++) {
		if (!m->nodes[i].live || m->nodes[i].parent != id || i == id)
			continue;
		ret = cs_touch_tree(m, (uint32_t)i, start, what);
		if (ret)
			return ret;
	}
	return 0;
}

static int snap_add(struct cs_model *m, struct cs_node *n, uint32_t ret,
		    bool datasync, int64_t due_ns, bool live);

int cs_fsync_add(struct cs_model *m, struct cs_node *n, uint32_t ret,
		 bool datasync)
{
	return snap_add(m, n, ret, datasync, 0, false);
}

int cs_interval_add(struct cs_model *m, struct cs_node *n, uint32_t ret,
		    int64_t due_ns)
{
	return snap_add(m, n, ret, false, due_ns, false);
}

int cs_live_add(struct cs_model *m, struct cs_node *n, uint32_t ret)
{
	return snap_add(m, n, ret, false, 0, true);
}

/* A copy of what n is now: an fsync's (due_ns 0) or an op's promise. */
static int snap_add(struct cs_model *m, struct cs_node *n, uint32_t ret,
		    bool datasync, int64_t due_ns, bool live)
{
	struct cs_fsync *f;
	uint64_t ns = (n->size + CS_SECTOR - 1) / CS_SECTOR;
	char path[512];

	if (grow((void **)&n->fsyncs, &n->fsync_cap, n->nfsync + 1,
		 sizeof(*f)))
		return -ENOMEM;
	f = &n->fsyncs[n->nfsync];
	cs_node_path(m, n->id, path, sizeof(path));
	f->ret = ret;
	f->datasync = datasync;
	f->gone = !n->live;
	f->live = live;
	f->due_ns = due_ns;
	f->size = n->size;
	f->path = strdup(path);
	f->sect = malloc((ns ? ns : 1) * sizeof(*f->sect));
	if (!f->path || !f->sect) {
		free(f->path);
		free(f->sect);
		return -ENOMEM;
	}
	if (ns)
		memcpy(f->sect, n->sect, ns * sizeof(*f->sect));
	memcpy(f->xattr, n->xattr, sizeof(f->xattr));
	n->nfsync++;
	return 0;
}

int cs_op_begin(struct cs_model *m, uint32_t start, const char *fmt, ...)
{
	struct cs_op *op;
	va_list ap;

	if (grow((void **)&m->ops, &m->ops_cap, m->nops + 1, sizeof(*op)))
		return -ENOMEM;
	op = &m->ops[m->nops++];
	op->start = op->end = start;
	va_start(ap, fmt);
	vsnprintf(op->text, sizeof(op->text), fmt, ap);
	va_end(ap);
	return 0;
}

/* Ops are in log order: the last one that started at or before idx, if
 * record idx came before its end. */
const struct cs_op *cs_op_at(const struct cs_model *m, uint32_t idx)
{
	size_t lo = 0, hi = m->nops;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (m->ops[mid].start <= idx)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo || m->ops[lo - 1].end <= idx)
		return NULL;
	return &m->ops[lo - 1];
}

const struct cs_fsync *cs_promise(const struct cs_node *n, uint32_t durable,
				  uint32_t crash, int64_t cut_ns, uint8_t what)
{
	const struct cs_fsync *f = NULL;

	/* In log order; an op's promise may come due after a later fsync's. */
	for (size_t i = 0; i < n->nfsync; i++) {
		const struct cs_fsync *c = &n->fsyncs[i];
		bool due = c->due_ns ? c->due_ns <= cut_ns :
			   c->live ? c->ret <= crash : c->ret <= durable;

		if (due && (!(what & CS_TOUCH_XATTR) || !c->datasync))
			f = c;
	}
	if (!f)
		return NULL;
	for (size_t i = 0; i < n->ntouch; i++) {
		const struct cs_touch *t = &n->touches[i];

		if (t->start >= f->ret && t->start < crash && (t->what & what))
			return NULL;
	}
	return f;
}
