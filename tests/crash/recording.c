/*
 * A recording on disk: the log's records and the model, next to the
 * base image and the write data (DIR/base.img, DIR/log.data), so a
 * failing state can be checked again exactly, by index, after the engine
 * changed (the journal writes from a commit thread, so two recordings of
 * one seed differ).  Host byte order: a debugging artifact of one
 * machine, not a format.
 *
 * File: magic, seed, ops, hosts; then the records; the versions; the
 * ops; the nodes, each with its sectors, fsyncs and touches; the paths.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crashsim.h"

#define REC_MAGIC 0x33434552534d4943ull   /* "CIMSREC3": and hosts */

static int put(FILE *f, const void *p, size_t len)
{
	return len && fwrite(p, len, 1, f) != 1 ? -EIO : 0;
}

static int get(FILE *f, void *p, size_t len)
{
	return len && fread(p, len, 1, f) != 1 ? -EIO : 0;
}

#define PUT(f, x) put(f, &(x), sizeof(x))
#define GET(f, x) get(f, &(x), sizeof(x))

/* An array of n elements of size sz, allocated on load (NULL when 0). */
static int get_array(FILE *f, void **p, size_t n, size_t sz)
{
	*p = NULL;
	if (!n)
		return 0;
	if (n > (1ull << 32) / sz)
		return -EINVAL;
	*p = calloc(n, sz);
	if (!*p)
		return -ENOMEM;
	return get(f, *p, n * sz);
}

static int put_str(FILE *f, const char *s)
{
	uint32_t n = (uint32_t)strlen(s);
	int ret = PUT(f, n);

	return ret ? ret : put(f, s, n);
}

static int get_str(FILE *f, char **s)
{
	uint32_t n;
	int ret = GET(f, n);

	if (ret)
		return ret;
	if (n > 65536)
		return -EINVAL;
	*s = calloc(1, n + 1u);
	if (!*s)
		return -ENOMEM;
	return get(f, *s, n);
}

static uint64_t nsect(uint64_t size)
{
	return (size + CS_SECTOR - 1) / CS_SECTOR;
}

int cs_recording_save(const char *path, uint64_t seed, unsigned nops,
		      unsigned hosts, const struct cs_log *l,
		      const struct cs_model *m)
{
	FILE *f = fopen(path, "wb");
	uint64_t magic = REC_MAGIC, n;
	int ret = 0;

	if (!f)
		return -errno;
	ret |= PUT(f, magic) | PUT(f, seed) | PUT(f, nops) | PUT(f, hosts);
	n = l->n;
	ret |= PUT(f, n) | put(f, l->recs, l->n * sizeof(*l->recs));
	n = m->nvers;
	ret |= PUT(f, n) | put(f, m->vers, m->nvers * sizeof(*m->vers));
	n = m->nops;
	ret |= PUT(f, n) | put(f, m->ops, m->nops * sizeof(*m->ops));
	n = m->nnodes;
	ret |= PUT(f, n);
	for (size_t i = 0; i < m->nnodes && !ret; i++) {
		const struct cs_node *nd = &m->nodes[i];

		ret |= put(f, nd, sizeof(*nd));
		ret |= put(f, nd->sect, nsect(nd->size) * sizeof(*nd->sect));
		for (size_t j = 0; j < nd->nfsync && !ret; j++) {
			const struct cs_fsync *fs = &nd->fsyncs[j];

			ret |= put(f, fs, sizeof(*fs)) | put_str(f, fs->path);
			ret |= put(f, fs->sect, nsect(fs->size) * sizeof(*fs->sect));
		}
		ret |= put(f, nd->touches, nd->ntouch * sizeof(*nd->touches));
	}
	n = 0;
	for (size_t b = 0; b < CS_PATH_BUCKETS; b++)
		for (const struct cs_path *p = m->paths[b]; p; p = p->next)
			n++;
	ret |= PUT(f, n);
	for (size_t b = 0; b < CS_PATH_BUCKETS && !ret; b++) {
		for (const struct cs_path *p = m->paths[b]; p && !ret; p = p->next) {
			uint64_t k = p->nids;

			ret |= put_str(f, p->path) | PUT(f, k);
			ret |= put(f, p->ids, p->nids * sizeof(*p->ids));
		}
	}
	if (fclose(f) && !ret)
		ret = -errno;
	return ret ? -EIO : 0;
}

static int load_node(FILE *f, struct cs_node *nd)
{
	int ret = get(f, nd, sizeof(*nd));
	struct cs_fsync *fs;

	if (ret)
		return ret;
	/* Pointers in the file are stale; counts and fields are good. */
	nd->sect = NULL;
	nd->sect_cap = 0;
	nd->fsyncs = NULL;
	nd->fsync_cap = nd->nfsync;
	nd->touches = NULL;
	nd->touch_cap = nd->ntouch;
	if (nd->size > (1ull << 40))
		return -EINVAL;
	ret = get_array(f, (void **)&nd->sect, nsect(nd->size), sizeof(*nd->sect));
	nd->sect_cap = nsect(nd->size);
	if (!ret && nd->nfsync) {
		nd->fsyncs = calloc(nd->nfsync, sizeof(*nd->fsyncs));
		if (!nd->fsyncs)
			return -ENOMEM;
	}
	for (size_t j = 0; j < nd->nfsync && !ret; j++) {
		fs = &nd->fsyncs[j];
		ret = get(f, fs, sizeof(*fs));
		fs->path = NULL;
		fs->sect = NULL;
		if (!ret)
			ret = get_str(f, &fs->path);
		if (!ret && fs->size > (1ull << 40))
			ret = -EINVAL;
		if (!ret)
			ret = get_array(f, (void **)&fs->sect, nsect(fs->size),
					sizeof(*fs->sect));
		if (!ret && !fs->sect)
			fs->sect = calloc(1, sizeof(*fs->sect));
	}
	if (!ret)
		ret = get_array(f, (void **)&nd->touches, nd->ntouch,
				sizeof(*nd->touches));
	return ret;
}

int cs_recording_load(const char *path, uint64_t *seed, unsigned *nops,
		      unsigned *hosts, struct cs_log *l, struct cs_model *m)
{
	FILE *f = fopen(path, "rb");
	uint64_t magic = 0, n = 0;
	int ret;

	memset(m, 0, sizeof(*m));
	if (!f)
		return -errno;
	ret = GET(f, magic);
	if (!ret && magic != REC_MAGIC)
		ret = -EINVAL;
	if (!ret)
		ret = GET(f, *seed) | GET(f, *nops) | GET(f, *hosts) | GET(f, n);
	if (!ret) {
		ret = get_array(f, (void **)&l->recs, n, sizeof(*l->recs));
		l->n = l->cap = n;
	}
	if (!ret)
		ret = GET(f, n);
	if (!ret) {
		ret = get_array(f, (void **)&m->vers, n, sizeof(*m->vers));
		m->nvers = m->vcap = n;
	}
	if (!ret)
		ret = GET(f, n);
	if (!ret) {
		ret = get_array(f, (void **)&m->ops, n, sizeof(*m->ops));
		m->nops = m->ops_cap = n;
	}
	if (!ret)
		ret = GET(f, n);
	if (!ret && n) {
		m->nodes = calloc(n, sizeof(*m->nodes));
		ret = m->nodes ? 0 : -ENOMEM;
		m->cap = n;
	}
	for (size_t i = 0; i < n && !ret; i++) {
		ret = load_node(f, &m->nodes[i]);
		m->nnodes = i + 1;
	}
	if (!ret)
		ret = GET(f, n);
	for (size_t i = 0; i < n && !ret; i++) {
		char *p = NULL;
		uint64_t k = 0;
		uint32_t *ids = NULL;

		ret = get_str(f, &p);
		if (!ret)
			ret = GET(f, k);
		if (!ret && k > (1u << 20))
			ret = -EINVAL;
		if (!ret)
			ret = get_array(f, (void **)&ids, k, sizeof(*ids));
		for (size_t j = 0; j < k && !ret; j++)
			ret = cs_path_note(m, p, ids[j]);
		free(p);
		free(ids);
	}
	fclose(f);
	return ret;
}
