/*
 * Shared helpers of the libFuzzer harnesses (tests/fuzz/fuzz_*.c):
 * consuming the fuzzer's bytes, routing the library's log messages, and
 * scratch LUNs.
 *
 * Input rule: a harness never rejects a short input; every take_*() on an
 * exhausted input yields zeros, so the fuzzer's smallest inputs still reach
 * the code (and minimised crash inputs stay small).
 *
 * Logging: the library logs through libqb.  The messages are formatted for
 * every input (formatting on-disk strings and numbers is a path worth
 * fuzzing too) into a custom target that drops them, unless
 * VMFS_FUZZ_VERBOSE is set, which sends them to stderr instead.
 *
 * Scratch LUNs are O_DIRECT files (lun_open needs it), so they go to a
 * real file system: $VMFS_FUZZ_DIR, default /tmp (ext4 here; tmpfs only
 * does O_DIRECT from Linux 6.6).  They are unlinked right after
 * lun_open, so a crash or a kill never leaves one behind.
 */
#ifndef VMFS_TESTS_FUZZ_H
#define VMFS_TESTS_FUZZ_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "vmfs/log.h"

#include "vmfs/lun.h"

struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline void take_bytes(struct fuzz_in *in, void *out, size_t len)
{
	size_t k = in->n < len ? in->n : len;

	memcpy(out, in->p, k);
	memset((uint8_t *)out + k, 0, len - k);
	in->p += k;
	in->n -= k;
}

static inline uint8_t take_u8(struct fuzz_in *in)
{
	uint8_t v;

	take_bytes(in, &v, sizeof(v));
	return v;
}

/* Multi-byte values are little-endian in the input, like the format. */
static inline uint16_t take_u16(struct fuzz_in *in)
{
	uint8_t b[2];

	take_bytes(in, b, sizeof(b));
	return (uint16_t)(b[0] | b[1] << 8);
}

static inline uint32_t take_u32(struct fuzz_in *in)
{
	return take_u16(in) | (uint32_t)take_u16(in) << 16;
}

static inline uint64_t take_u64(struct fuzz_in *in)
{
	return take_u32(in) | (uint64_t)take_u32(in) << 32;
}

/* A failure in the harness itself (not a finding): say so and stop. */
#define FUZZ_DIE(...) do {						\
	fprintf(stderr, "fuzz harness: " __VA_ARGS__);			\
	fputc('\n', stderr);						\
	abort();							\
} while (0)

static void fuzz_log_drop(int32_t t, struct qb_log_callsite *cs,
			  struct timespec *ts, const char *msg)
{
	(void)t;
	(void)cs;
	(void)ts;
	(void)msg;
}

static inline void fuzz_log_init(const char *name)
{
	int32_t t;

	qb_log_init(name, LOG_USER, LOG_EMERG);
	qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, QB_FALSE);
	if (getenv("VMFS_FUZZ_VERBOSE")) {
		qb_log_filter_ctl(QB_LOG_STDERR, QB_LOG_FILTER_ADD,
				  QB_LOG_FILTER_FILE, "*", LOG_DEBUG);
		qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_TRUE);
		return;
	}
	qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_FALSE);
	t = qb_log_custom_open(fuzz_log_drop, NULL, NULL, NULL);
	if (t < 0)
		FUZZ_DIE("qb_log_custom_open: %s", strerror((int)-t));
	qb_log_filter_ctl(t, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*",
			  LOG_DEBUG);
	qb_log_ctl(t, QB_LOG_CONF_ENABLED, QB_TRUE);
}

static inline const char *fuzz_dir(void)
{
	const char *d = getenv("VMFS_FUZZ_DIR");

	return d && *d ? d : "/tmp";
}

/*
 * A fresh sparse file of size bytes opened as a lun, the file already
 * unlinked.  stem names it while it exists (in error messages).
 */
static inline struct lun *fuzz_lun_scratch(const char *stem, uint64_t size)
{
	char path[4096];
	struct lun *lun;
	int fd, ret;

	snprintf(path, sizeof(path), "%s/vmfs-fuzz-%d-%s.img", fuzz_dir(),
		 (int)getpid(), stem);
	fd = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		FUZZ_DIE("%s: %s", path, strerror(errno));
	if (ftruncate(fd, (off_t)size) < 0)
		FUZZ_DIE("%s: ftruncate: %s", path, strerror(errno));
	close(fd);
	ret = lun_open(path, 0, &lun);
	unlink(path);
	if (ret)
		FUZZ_DIE("lun_open %s: %s (O_DIRECT needs a disk file system: set VMFS_FUZZ_DIR)",
			 path, vmfs_strerror(ret));
	return lun;
}

/* Write one 4 KiB block through the lun (O_DIRECT, aligned copy). */
static inline void fuzz_lun_put(struct lun *lun, const void *blk, size_t len,
				uint64_t off)
{
	void *buf = lun_buf_alloc(len);
	int ret;

	if (!buf)
		FUZZ_DIE("out of memory");
	memcpy(buf, blk, len);
	ret = lun_write(lun, buf, len, off);
	lun_buf_free(buf);
	if (ret)
		FUZZ_DIE("lun_write %zu at %llu: %s", len,
			 (unsigned long long)off, vmfs_strerror(ret));
}

/*
 * Seeds: every harness can write its own seed corpus, made by the library
 * itself (mkfs, seal), so the seeds follow the format when it changes:
 *   VMFS_FUZZ_WRITE_SEEDS=tests/fuzz/corpus/<harness> build-fuzz/fuzz_<harness>
 * (tests/fuzz/run.sh --seeds does it for every harness).
 */
static inline const char *fuzz_seed_dir(void)
{
	const char *d = getenv("VMFS_FUZZ_WRITE_SEEDS");

	return d && *d ? d : NULL;
}

static inline void fuzz_seed_write(const char *name, const void *data,
				   size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", fuzz_seed_dir(), name);
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f))
		FUZZ_DIE("%s: %s", path, strerror(errno));
}

/* Growable byte buffer for building seeds. */
struct fuzz_buf {
	uint8_t *p;
	size_t n, cap;
};

static inline void fuzz_buf_put(struct fuzz_buf *b, const void *data,
				size_t len)
{
	if (b->n + len > b->cap) {
		size_t cap = (b->n + len) * 2;
		uint8_t *p = realloc(b->p, cap);

		if (!p)
			FUZZ_DIE("out of memory");
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, data, len);
	b->n += len;
}

static inline void fuzz_buf_u8(struct fuzz_buf *b, uint8_t v)
{
	fuzz_buf_put(b, &v, 1);
}

static inline void fuzz_buf_u16(struct fuzz_buf *b, uint16_t v)
{
	uint8_t x[2] = { (uint8_t)v, (uint8_t)(v >> 8) };

	fuzz_buf_put(b, x, 2);
}

static inline void fuzz_buf_u32(struct fuzz_buf *b, uint32_t v)
{
	fuzz_buf_u16(b, (uint16_t)v);
	fuzz_buf_u16(b, (uint16_t)(v >> 16));
}

static inline void fuzz_buf_u64(struct fuzz_buf *b, uint64_t v)
{
	fuzz_buf_u32(b, (uint32_t)v);
	fuzz_buf_u32(b, (uint32_t)(v >> 32));
}

#endif /* VMFS_TESTS_FUZZ_H */
