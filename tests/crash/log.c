/*
 * The recorded log: what the fault wrapper saw (lun_fault_records), copied
 * into our own array after every op, so that the log index at which each
 * op ended (and each fsync returned) is known.  Write data goes to a file
 * and is mapped read-only once the recording is over.
 */
#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmfs/clock.h"
#include "vmfs/lun.h"
#include "crashsim.h"

int cs_log_init(struct cs_log *l, const char *path)
{
	memset(l, 0, sizeof(*l));
	l->data_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	return l->data_fd < 0 ? -errno : 0;
}

int cs_log_append(struct cs_log *l, int kind, uint64_t off, uint64_t len,
		  int64_t t_ns, const void *data, uint8_t host)
{
	struct cs_rec *r;

	if (l->data)
		return -EINVAL;	/* sealed */
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;
		void *p = realloc(l->recs, cap * sizeof(*l->recs));

		if (!p)
			return -ENOMEM;
		l->recs = p;
		l->cap = cap;
	}
	r = &l->recs[l->n];
	memset(r, 0, sizeof(*r));
	r->kind = (uint8_t)kind;
	r->off = off;
	r->len = len;
	r->t_ns = t_ns;
	r->host = host;
	if (kind == CS_REC_WRITE) {
		const uint8_t *p = data;
		uint64_t done = 0;

		while (done < len) {
			ssize_t w = pwrite(l->data_fd, p + done, len - done,
					   (off_t)(l->data_len + done));

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return w < 0 ? -errno : -EIO;
			done += (uint64_t)w;
		}
		r->data_off = l->data_len;
		l->data_len += len;
	}
	l->n++;
	return 0;
}

/*
 * The wrappers are never cleared while the volume is open: the journal's
 * commit thread may record between our snapshot and a clear, and that
 * record would be lost.  So each drain takes the entries past the ones
 * already taken; cs_log_drain_final clears once nothing runs any more.
 *
 * Several wrappers (one per host) are merged by completion time.  A
 * wrapper stamps each entry when it appends it, under its lock, so once
 * the clock read below has passed, no wrapper can still append an entry
 * stamped earlier: taking only the entries stamped up to it from every
 * wrapper keeps the merged log in completion order across drains.
 */
int cs_log_drain(struct cs_log *l, struct lun *const *fault_lun,
		 unsigned nhosts)
{
	const struct lun_rec_entry *e[CS_MAX_HOSTS];
	size_t n[CS_MAX_HOSTS], at[CS_MAX_HOSTS];
	int64_t upto = nhosts > 1 ? vmfs_mono_ns() : INT64_MAX;
	int ret = 0;

	for (unsigned h = 0; h < nhosts; h++) {
		n[h] = 0;
		e[h] = lun_fault_records(fault_lun[h], &n[h]);
		if (!e[h] && n[h])
			return -ENOMEM;
		at[h] = l->taken[h];
	}
	for (;;) {
		const struct lun_rec_entry *r = NULL;
		unsigned from = 0;

		for (unsigned h = 0; h < nhosts; h++)
			if (at[h] < n[h] && e[h][at[h]].t_ns <= upto &&
			    (!r || e[h][at[h]].t_ns < r->t_ns)) {
				r = &e[h][at[h]];
				from = h;
			}
		if (!r)
			break;
		if (r->kind == LUN_REC_WRITE && !r->data)
			ret = -ENOMEM;	/* the wrapper lost the copy */
		else
			ret = cs_log_append(l, r->kind, r->off, r->len, r->t_ns,
					    r->data, (uint8_t)from);
		if (ret)
			return ret;
		at[from]++;
	}
	for (unsigned h = 0; h < nhosts; h++)
		l->taken[h] = at[h];
	return 0;
}

int64_t cs_log_cut_ns(const struct cs_log *l, uint32_t durable)
{
	return durable && durable <= l->n ? l->recs[durable - 1].t_ns : 0;
}

int cs_log_drain_final(struct cs_log *l, struct lun *const *fault_lun,
		       unsigned nhosts)
{
	int ret = cs_log_drain(l, fault_lun, nhosts);

	for (unsigned h = 0; h < nhosts; h++) {
		lun_fault_record_clear(fault_lun[h]);
		l->taken[h] = 0;
	}
	return ret;
}

/*
 * Every record's length is a multiple of the sector size, so every
 * data_off is too and data + data_off is aligned for O_DIRECT as well.
 */
int cs_log_seal(struct cs_log *l)
{
	void *p;

	if (!l->data_len) {
		static const uint8_t none[1];

		l->data = none;
		return 0;
	}
	p = mmap(NULL, l->data_len, PROT_READ, MAP_SHARED, l->data_fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	l->data = p;
	return 0;
}

void cs_log_free(struct cs_log *l)
{
	if (l->data && l->data_len)
		munmap((void *)l->data, l->data_len);
	if (l->data_fd >= 0)
		close(l->data_fd);
	free(l->recs);
	memset(l, 0, sizeof(*l));
	l->data_fd = -1;
}
