/*
 * bench/populate: fill a fresh vmfs volume with many files, fast, for the
 * fsck benchmark (bench/fsck.sh).  Going through FUSE costs a kernel round
 * trip per operation; this calls the volume engine (vol_*) directly on the
 * LUN, the way vmfsd does, from one thread.
 *
 *   populate [-d DIRS] [-i EVERY] [-s EVERY] LUN NFILES
 *
 * Makes DIRS directories under the root (default 1000), then NFILES empty
 * regular files spread evenly over them, one directory after the other.
 * Every EVERY-th file gets data: -i (default 10) a few hundred bytes kept
 * inline in the inode, -s (default 500) 8 KiB, which takes a small block.
 *
 * Memory stays flat whatever NFILES is: each created file's lookup
 * reference is dropped at once (vol_forget), and a directory is forgotten
 * as soon as it is full, so its in-memory index goes with it.
 *
 * The volume must not be mounted anywhere.  Prints one summary line on
 * stdout (files, dirs, data bytes, seconds, files/s) and progress on
 * stderr.  Exit 0, or 1 with a message on the first failure.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "vmfs/log.h"

#include "vmfs/clock.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"

#define SMALL_DATA_BYTES 8192u

static double now_s(void)
{
	return (double)vmfs_mono_ns() / 1e9;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: populate [-d DIRS] [-i EVERY] [-s EVERY] LUN NFILES\n"
		"  -d DIRS    directories under the root (default 1000)\n"
		"  -i EVERY   every EVERY-th file gets inline data (default 10, 0: none)\n"
		"  -s EVERY   every EVERY-th file gets 8 KiB in a small block\n"
		"             (default 500, 0: none)\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || end == s || *end || *s == '-' ? -1 : 0;
}

/* Library messages to stderr, warnings and worse, as the CLI does. */
static void log_init(void)
{
	qb_log_init("populate", LOG_USER, LOG_WARNING);
	qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, QB_FALSE);
	qb_log_filter_ctl(QB_LOG_STDERR, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE,
			  "*", LOG_WARNING);
	qb_log_format_set(QB_LOG_STDERR, "populate: %p: %b");
	qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_TRUE);
}

struct fill {
	struct vol *v;
	uint64_t nfiles, ndirs, inline_every, small_every;
	uint64_t data_bytes;
	char small[SMALL_DATA_BYTES];
};

/* Create files [first, last) in directory dir. */
static int fill_dir(struct fill *f, uint64_t dir, uint64_t first,
		    uint64_t last)
{
	for (uint64_t i = first; i < last; i++) {
		struct vol_attr a;
		char name[32];
		const void *data = NULL;
		size_t len = 0;
		ssize_t n;
		int ret;

		snprintf(name, sizeof(name), "f%08" PRIu64, i);
		ret = vol_create(f->v, dir, name, S_IFREG | 0644, 0, 0, 0, &a);
		if (ret) {
			fprintf(stderr, "populate: create %s: %s\n", name,
				vmfs_strerror(ret));
			return ret;
		}
		if (f->small_every && i % f->small_every == 0) {
			data = f->small;
			len = sizeof(f->small);
		} else if (f->inline_every && i % f->inline_every == 0) {
			data = f->small;
			len = 100 + i % 400;
		}
		if (len) {
			n = vol_write(f->v, a.ino, data, len, 0);
			if (n != (ssize_t)len) {
				fprintf(stderr, "populate: write %s: %s\n", name,
					n < 0 ? vmfs_strerror((int)n) : "short write");
				vol_forget(f->v, a.ino, 1);
				return n < 0 ? (int)n : -EIO;
			}
			f->data_bytes += len;
		}
		vol_forget(f->v, a.ino, 1);
	}
	return 0;
}

static int fill(struct fill *f)
{
	double t0 = now_s(), next_report = t0 + 10;
	uint64_t done = 0;

	for (uint64_t d = 0; d < f->ndirs; d++) {
		/* Even spread: directory d gets files [d*N/D, (d+1)*N/D). */
		uint64_t first = f->nfiles * d / f->ndirs;
		uint64_t last = f->nfiles * (d + 1) / f->ndirs;
		struct vol_attr a;
		char name[32];
		int ret;

		snprintf(name, sizeof(name), "d%05" PRIu64, d);
		ret = vol_mkdir(f->v, VMFS_ROOT_INO, name, 0755, 0, 0, &a);
		if (ret) {
			fprintf(stderr, "populate: mkdir %s: %s\n", name,
				vmfs_strerror(ret));
			return ret;
		}
		ret = fill_dir(f, a.ino, first, last);
		vol_forget(f->v, a.ino, 1);
		if (ret)
			return ret;
		done = last;
		if (now_s() >= next_report) {
			double el = now_s() - t0;

			fprintf(stderr, "populate: %" PRIu64 "/%" PRIu64 " files, %.0f s, %.0f files/s\n",
				done, f->nfiles, el, (double)done / el);
			next_report += 10;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct fill f = { .ndirs = 1000, .inline_every = 10,
			  .small_every = 500 };
	struct lun *lun = NULL;
	double t0, el;
	int opt, ret, cret;

	while ((opt = getopt(argc, argv, "d:i:s:h")) != -1) {
		uint64_t *dst = opt == 'd' ? &f.ndirs :
				opt == 'i' ? &f.inline_every :
				opt == 's' ? &f.small_every : NULL;

		if (!dst) {
			usage();
			return opt == 'h' ? 0 : 1;
		}
		if (parse_u64(optarg, dst)) {
			fprintf(stderr, "populate: -%c %s: not a number\n", opt,
				optarg);
			return 1;
		}
	}
	if (argc - optind != 2 || parse_u64(argv[optind + 1], &f.nfiles)) {
		usage();
		return 1;
	}
	if (f.ndirs == 0 || f.ndirs > f.nfiles) {
		fprintf(stderr, "populate: -d must be from 1 to NFILES\n");
		return 1;
	}
	for (size_t i = 0; i < sizeof(f.small); i++)
		f.small[i] = (char)('a' + i % 26);

	log_init();
	ret = lun_open(argv[optind], 0, &lun);
	if (ret) {
		fprintf(stderr, "populate: %s: %s\n", argv[optind],
			vmfs_strerror(ret));
		return 1;
	}
	ret = vol_open(lun, 0, &f.v);
	if (ret) {
		fprintf(stderr, "populate: %s: %s; run 'vmfs mkfs' first\n",
			argv[optind], vmfs_strerror(ret));
		lun_close(lun);
		return 1;
	}
	t0 = now_s();
	ret = fill(&f);
	cret = vol_close(f.v);
	el = now_s() - t0;
	lun_close(lun);
	if (!ret && cret) {
		fprintf(stderr, "populate: closing the volume: %s\n",
			vmfs_strerror(cret));
		ret = cret;
	}
	if (ret)
		return 1;
	printf("populate: %" PRIu64 " files in %" PRIu64 " dirs, %" PRIu64 " data bytes, %.1f s, %.0f files/s\n",
	       f.nfiles, f.ndirs, f.data_bytes, el,
	       el > 0 ? (double)f.nfiles / el : 0.0);
	qb_log_fini();
	return 0;
}
