/*
 * Crash states and the images they make.
 *
 * Kinds (log of records W (write or zero_range) and F (flush)):
 *   prefix  every record below an index, nothing after it: power lost
 *           right after a write completed;
 *   subset  within one flush epoch (the records between two flushes) a
 *           random subset of its writes, in random order, on top of
 *           everything before the epoch: a disk cache that destaged some
 *           of the unflushed writes;
 *   torn    the prefix before one write plus a random subset of that
 *           write's 512-byte sectors: power lost in the middle of it.
 * The plan (cs_plan) is a deterministic function of the log, the seed and
 * the budget; states are sorted by prefix so one pass over the log
 * builds them all.
 *
 * Two hosts (README §5): the crash is host A's.  Epochs are A's (between
 * two of A's flushes), subsets and tears are of A's writes; host B's
 * records below the crash index are all applied, in log order, and none
 * from it on (B lives: what it wrote has landed).
 *
 * Images: the shadow file holds base + the current prefix, the work file
 * the same plus whatever the state under test wrote, which is undone
 * afterwards by copying those ranges back from the shadow.  No state
 * costs a copy of the volume.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmfs/lun.h"
#include "crashsim.h"

#define IMG_BUF (1u << 20)
#define TORN_SMALL_BYTES (16u << 10)

const char *cs_state_kind_name(int kind)
{
	switch (kind) {
	case CS_ST_PREFIX:
		return "prefix";
	case CS_ST_SUBSET:
		return "subset";
	case CS_ST_TORN:
		return "torn";
	}
	return "?";
}

/* ---- the plan -------------------------------------------------------------- */

struct epoch {
	uint32_t start, end;   /* records [start, end), all writes */
};

static int cmp_state(const void *a, const void *b)
{
	const struct cs_state *x = a, *y = b;

	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return x->seed < y->seed ? -1 : x->seed > y->seed;
}

/* Selection sampling (Knuth's algorithm S): k of the n, in order. */
static size_t sample(struct cs_rng *r, const uint32_t *from, size_t n,
		     size_t k, struct cs_state *out)
{
	size_t got = 0;

	for (size_t i = 0; i < n && got < k; i++) {
		if (cs_below(r, n - i) < k - got) {
			out[got].kind = CS_ST_PREFIX;
			out[got].at = from[i];
			out[got].end = from[i];
			out[got].seed = 0;
			got++;
		}
	}
	return got;
}

int cs_plan(const struct cs_log *l, const struct cs_plan_opts *o,
	    struct cs_state **out, size_t *nout)
{
	struct cs_rng r = { cs_mix(o->seed ^ 0x5157415445ull) };
	uint32_t *pos = NULL, *torn = NULL, *small = NULL;
	struct epoch *ep = NULL;
	uint64_t *wsum = NULL;
	struct cs_state *st = NULL;
	size_t npos = 0, ntorn = 0, nsmall = 0, nep = 0, n = 0;
	size_t want_prefix, want_sub, want_torn, total;
	uint32_t start = 0;
	int ret = -ENOMEM;

	pos = malloc((l->n + 1) * sizeof(*pos));
	torn = malloc((l->n + 1) * sizeof(*torn));
	small = malloc((l->n + 1) * sizeof(*small));
	ep = malloc((l->n + 1) * sizeof(*ep));
	wsum = malloc((l->n + 1) * sizeof(*wsum));
	if (!pos || !torn || !small || !ep || !wsum)
		goto out;
	pos[npos++] = 0;
	for (uint32_t i = 0, nw = 0; i <= l->n; i++) {
		bool flush = i == l->n || (l->recs[i].kind == CS_REC_FLUSH &&
					   l->recs[i].host == CS_HOST_A);

		if (flush) {
			/* Only epochs of two writes or more have new subsets. */
			if (nw >= 2) {
				ep[nep].start = start;
				ep[nep].end = i;
				wsum[nep] = (nep ? wsum[nep - 1] : 0) +
					    (nw < 32 ? nw : 32);
				nep++;
			}
			start = i + 1;
			nw = 0;
			continue;
		}
		pos[npos++] = i + 1;
		if (l->recs[i].host != CS_HOST_A || !cs_rec_is_write(&l->recs[i]))
			continue;
		nw++;
		if (l->recs[i].len >= 2 * CS_SECTOR) {
			torn[ntorn++] = i;
			if (l->recs[i].len <= TORN_SMALL_BYTES)
				small[nsmall++] = i;
		}
	}

	if (o->full || npos <= o->max_states * 2 / 5)
		want_prefix = npos;
	else
		want_prefix = o->max_states * 2 / 5;
	total = o->max_states > want_prefix ? o->max_states - want_prefix : 0;
	if (o->full && total < o->max_states / 2)
		total = o->max_states / 2;
	want_sub = nep ? total * 3 / 5 : 0;
	want_torn = ntorn ? total - want_sub : 0;
	if (!ntorn)
		want_sub = nep ? total : 0;
	if (!nep && !ntorn)
		want_prefix = npos;

	st = calloc(want_prefix + want_sub + want_torn + 1, sizeof(*st));
	if (!st)
		goto out;
	n = sample(&r, pos, npos, want_prefix, st);
	for (size_t k = 0; k < want_sub; k++) {
		uint64_t x = cs_below(&r, wsum[nep - 1]);
		size_t lo = 0, hi = nep - 1;

		/* Every epoch once if the budget allows, then by size. */
		if (want_sub >= nep && k < nep)
			lo = k;
		while (lo < hi && !(want_sub >= nep && k < nep)) {
			size_t mid = (lo + hi) / 2;

			if (wsum[mid] > x)	/* first epoch whose sum passes x */
				hi = mid;
			else
				lo = mid + 1;
		}
		st[n].kind = CS_ST_SUBSET;
		st[n].at = ep[lo].start;
		st[n].end = ep[lo].end;
		st[n].seed = cs_rand(&r);
		n++;
	}
	for (size_t k = 0; k < want_torn; k++) {
		/* Mostly metadata-sized writes: those tears matter most. */
		bool pick_small = nsmall && cs_below(&r, 10) < 7;
		uint32_t i = pick_small ? small[cs_below(&r, nsmall)]
					: torn[cs_below(&r, ntorn)];

		st[n].kind = CS_ST_TORN;
		st[n].at = i;
		st[n].end = i + 1;
		st[n].seed = cs_rand(&r);
		n++;
	}
	qsort(st, n, sizeof(*st), cmp_state);
	*out = st;
	*nout = n;
	st = NULL;
	ret = 0;
out:
	free(pos);
	free(torn);
	free(small);
	free(ep);
	free(wsum);
	free(st);
	return ret;
}

/* ---- what a state writes ---------------------------------------------------- */

static int extra_push(struct cs_extra **v, size_t *n, size_t *cap,
		      uint32_t rec, uint64_t off, uint64_t len)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		void *p = realloc(*v, c * sizeof(**v));

		if (!p)
			return -ENOMEM;
		*v = p;
		*cap = c;
	}
	(*v)[*n].rec = rec;
	(*v)[*n].off = off;
	(*v)[*n].len = len;
	(*n)++;
	return 0;
}

/* Do records a and b write some byte in common? */
static bool overlap(const struct cs_rec *a, const struct cs_rec *b)
{
	return a->off < b->off + b->len && b->off < a->off + a->len;
}

/*
 * The epoch's writes (host A's) in the subset, shuffled.  A subset that
 * is a prefix of the epoch (nothing, or its first j writes) is a prefix
 * state: it is changed into one that is not, deterministically.
 *
 * Then host B's writes of the epoch below the crash index, in log order:
 * B lives, so they landed.  One that a later applied write of A covers
 * is left out: A wrote over it after B (A took the lock B gave up), and
 * a B write applied last would undo that.
 */
static int subset_extras(const struct cs_state *s, struct cs_extra **out,
			 size_t *n, uint32_t *crash, const struct cs_log *l)
{
	struct cs_rng r = { s->seed };
	uint32_t span = s->end - s->at, m = 0, j = 0, max = 0;
	double p = 0.15 + 0.7 * (double)cs_below(&r, 1000) / 1000.0;
	uint8_t *in = calloc(span, 1);
	uint32_t *order = malloc(span * sizeof(*order));
	uint32_t *aw = malloc(span * sizeof(*aw));
	size_t cap = 0, k = 0, na;
	int ret = 0;

	if (!in || !order || !aw) {
		ret = -ENOMEM;
		goto out;
	}
	for (uint32_t i = s->at; i < s->end; i++)
		if (l->recs[i].host == CS_HOST_A && cs_rec_is_write(&l->recs[i]))
			aw[m++] = i;
	for (uint32_t i = 0; i < m; i++)
		in[i] = (double)cs_below(&r, 1000000) / 1000000.0 < p;
	while (j < m && in[j])
		j++;
	for (uint32_t i = j; i < m; i++)
		if (in[i])
			goto ok;
	/* The first j and nothing else: make a hole in it. */
	if (j == 0) {
		in[1 + cs_below(&r, m - 1)] = 1;
	} else if (j < m) {
		in[cs_below(&r, j)] = 0;
		in[j] = 1;
	} else {
		in[cs_below(&r, m - 1)] = 0;
	}
ok:
	for (uint32_t i = 0; i < m; i++)
		if (in[i])
			order[k++] = aw[i];
	na = k;
	for (size_t i = k; i > 1; i--) {
		size_t x = cs_below(&r, i);
		uint32_t t = order[i - 1];

		order[i - 1] = order[x];
		order[x] = t;
	}
	for (size_t i = 0; i < k && !ret; i++) {
		const struct cs_rec *rec = &l->recs[order[i]];

		ret = extra_push(out, n, &cap, order[i], rec->off, rec->len);
		if (order[i] + 1 > max)
			max = order[i] + 1;
	}
	for (uint32_t i = s->at; i < max && !ret; i++) {
		const struct cs_rec *rec = &l->recs[i];
		bool covered = false;

		if (rec->host == CS_HOST_A || !cs_rec_is_write(rec))
			continue;
		for (size_t x = 0; x < na && !covered; x++)
			covered = order[x] > i && overlap(&l->recs[order[x]], rec);
		if (!covered)
			ret = extra_push(out, n, &cap, i, rec->off, rec->len);
	}
	*crash = max;
out:
	free(in);
	free(order);
	free(aw);
	return ret;
}

/* Some sectors of one write: its head, its tail, or any of them. */
static int torn_extras(const struct cs_state *s, struct cs_extra **out,
		       size_t *n, const struct cs_log *l)
{
	const struct cs_rec *rec = &l->recs[s->at];
	struct cs_rng r = { s->seed };
	uint64_t ns = rec->len / CS_SECTOR, run = 0;
	unsigned how = (unsigned)cs_below(&r, 3);
	uint8_t *keep = calloc(ns, 1);
	size_t cap = 0;
	uint64_t k, cnt = 0;
	int ret = 0;

	if (!keep)
		return -ENOMEM;
	if (how == 0) {
		k = cs_range(&r, 1, ns - 1);
		memset(keep, 1, k);
	} else if (how == 1) {
		k = cs_range(&r, 1, ns - 1);
		memset(keep + ns - k, 1, k);
	} else {
		for (uint64_t i = 0; i < ns; i++)
			cnt += keep[i] = (uint8_t)cs_below(&r, 2);
		if (cnt == 0 || cnt == ns) {
			memset(keep, 0, ns);
			memset(keep, 1, ns / 2);
		}
	}
	for (uint64_t i = 0; i <= ns && !ret; i++) {
		if (i < ns && keep[i]) {
			run++;
			continue;
		}
		if (run)
			ret = extra_push(out, n, &cap, s->at,
					 rec->off + (i - run) * CS_SECTOR,
					 run * CS_SECTOR);
		run = 0;
	}
	free(keep);
	return ret;
}

int cs_state_extras(const struct cs_log *l, const struct cs_state *s,
		    struct cs_extra **out, size_t *n, uint32_t *durable,
		    uint32_t *crash)
{
	uint32_t d = s->at;

	*out = NULL;
	*n = 0;
	switch (s->kind) {
	case CS_ST_PREFIX:
		/* Flushes change no byte: the state after them is this one. */
		while (d < l->n && l->recs[d].kind == CS_REC_FLUSH)
			d++;
		*durable = *crash = d;
		return 0;
	case CS_ST_SUBSET:
		*durable = s->at;
		return subset_extras(s, out, n, crash, l);
	case CS_ST_TORN:
		*durable = s->at;
		*crash = s->at + 1;
		return torn_extras(s, out, n, l);
	}
	return -EINVAL;
}

void cs_state_describe(const struct cs_log *l, const struct cs_state *s,
		       char *out, size_t len)
{
	struct cs_extra *e = NULL;
	size_t n = 0, o;
	uint32_t d = 0, c = 0;

	o = (size_t)snprintf(out, len, "%s at log index %u", cs_state_kind_name(s->kind),
			     s->at);
	if (s->kind == CS_ST_PREFIX || o >= len ||
	    cs_state_extras(l, s, &e, &n, &d, &c)) {
		free(e);
		return;
	}
	if (s->kind == CS_ST_SUBSET) {
		o += (size_t)snprintf(out + o, len - o,
				      " + %zu writes of epoch [%u, %u):",
				      n, s->at, s->end);
		for (size_t i = 0; i < n && o < len; i++)
			o += (size_t)snprintf(out + o, len - o, " %u", e[i].rec);
	} else {
		const struct cs_rec *r = &l->recs[s->at];

		o += (size_t)snprintf(out + o, len - o,
				      " + part of record %u (%s of %" PRIu64
				      " bytes at 0x%" PRIx64 "), sectors",
				      s->at, r->kind == CS_REC_ZERO ? "zero_range" : "write",
				      r->len, r->off);
		for (size_t i = 0; i < n && o < len; i++)
			o += (size_t)snprintf(out + o, len - o, " %" PRIu64 "+%" PRIu64,
					      (e[i].off - r->off) / CS_SECTOR,
					      e[i].len / CS_SECTOR);
	}
	free(e);
}

/* ---- images ------------------------------------------------------------------- */

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t w = pwrite(fd, p, len, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		off += (uint64_t)w;
		len -= (size_t)w;
	}
	return 0;
}

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t r = pread(fd, p, len, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0) {
			memset(p, 0, len);	/* past EOF of a sparse file */
			return 0;
		}
		p += r;
		off += (uint64_t)r;
		len -= (size_t)r;
	}
	return 0;
}

static int write_zeros(int fd, uint64_t off, uint64_t len)
{
	static const uint8_t zero[64 << 10];

	while (len) {
		size_t n = len < sizeof(zero) ? (size_t)len : sizeof(zero);
		int ret = pwrite_all(fd, zero, n, off);

		if (ret)
			return ret;
		off += n;
		len -= n;
	}
	return 0;
}

/* Sparse copy: all-zero megabytes stay holes. */
int cs_file_copy(const char *from, const char *to)
{
	int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, ret = 0;
	uint8_t *buf = malloc(IMG_BUF);
	struct stat st;

	if (in < 0 || !buf || fstat(in, &st)) {
		ret = in < 0 ? -errno : -ENOMEM;
		goto out;
	}
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0 || ftruncate(out, st.st_size)) {
		ret = -errno;
		goto out;
	}
	for (uint64_t off = 0; off < (uint64_t)st.st_size && !ret; off += IMG_BUF) {
		size_t n = (uint64_t)st.st_size - off < IMG_BUF ?
			   (size_t)((uint64_t)st.st_size - off) : IMG_BUF;

		ret = pread_all(in, buf, n, off);
		if (!ret && !cs_is_zero(buf, n))
			ret = pwrite_all(out, buf, n, off);
	}
out:
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) && !ret)
		ret = -errno;
	free(buf);
	return ret;
}

int cs_image_open(struct cs_image *im, const char *base, const char *work,
		  const char *shadow)
{
	int ret;

	memset(im, 0, sizeof(*im));
	im->work_fd = im->shadow_fd = -1;
	ret = cs_file_copy(base, work);
	if (!ret)
		ret = cs_file_copy(base, shadow);
	if (ret)
		return ret;
	im->work_fd = open(work, O_RDWR | O_CLOEXEC);
	im->shadow_fd = open(shadow, O_RDWR | O_CLOEXEC);
	im->buf = malloc(IMG_BUF);
	im->buf_len = IMG_BUF;
	if (im->work_fd < 0 || im->shadow_fd < 0 || !im->buf) {
		ret = im->buf ? -errno : -ENOMEM;
		cs_image_close(im);
	}
	return ret;
}

void cs_image_close(struct cs_image *im)
{
	if (im->work_fd >= 0)
		close(im->work_fd);
	if (im->shadow_fd >= 0)
		close(im->shadow_fd);
	free(im->buf);
	memset(im, 0, sizeof(*im));
	im->work_fd = im->shadow_fd = -1;
}

/* Write part [off, off+len) of record rec into fd. */
static int apply(int fd, const struct cs_log *l, uint32_t rec, uint64_t off,
		 uint64_t len)
{
	const struct cs_rec *r = &l->recs[rec];

	if (r->kind == CS_REC_ZERO)
		return write_zeros(fd, off, len);
	if (r->kind != CS_REC_WRITE)
		return 0;
	return pwrite_all(fd, l->data + r->data_off + (off - r->off), len, off);
}

int cs_image_advance(struct cs_image *im, const struct cs_log *l,
		     uint32_t at)
{
	for (; im->at < at; im->at++) {
		const struct cs_rec *r = &l->recs[im->at];
		int ret;

		if (!cs_rec_is_write(r))
			continue;
		ret = apply(im->work_fd, l, im->at, r->off, r->len);
		if (!ret)
			ret = apply(im->shadow_fd, l, im->at, r->off, r->len);
		if (ret)
			return ret;
	}
	return 0;
}

int cs_image_apply_extra(struct cs_image *im, const struct cs_log *l,
			 const struct cs_extra *e)
{
	return apply(im->work_fd, l, e->rec, e->off, e->len);
}

int cs_image_restore(struct cs_image *im, uint64_t off, uint64_t len)
{
	while (len) {
		size_t n = len < im->buf_len ? (size_t)len : im->buf_len;
		int ret = pread_all(im->shadow_fd, im->buf, n, off);

		if (!ret)
			ret = pwrite_all(im->work_fd, im->buf, n, off);
		if (ret)
			return ret;
		off += n;
		len -= n;
	}
	return 0;
}

bool cs_image_differs(struct cs_image *im)
{
	uint8_t *b = malloc(IMG_BUF);
	struct stat st;
	bool differs = true;

	if (!b || fstat(im->shadow_fd, &st))
		goto out;
	for (uint64_t off = 0; off < (uint64_t)st.st_size; off += IMG_BUF) {
		size_t half = IMG_BUF / 2;

		if (pread_all(im->work_fd, b, half, off) ||
		    pread_all(im->shadow_fd, b + half, half, off) ||
		    memcmp(b, b + half, half) ||
		    pread_all(im->work_fd, b, half, off + half) ||
		    pread_all(im->shadow_fd, b + half, half, off + half) ||
		    memcmp(b, b + half, half))
			goto out;
	}
	differs = false;
out:
	free(b);
	return differs;
}
