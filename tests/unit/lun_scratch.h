/*
 * Scratch LUNs for the lun unit tests (test_lun.c, test_lun_fault.c):
 * sparse files from unit_tmp_path(), byte patterns to write and check,
 * and a way to read the file behind the lun's back.
 */
#ifndef VMFS_TESTS_LUN_SCRATCH_H
#define VMFS_TESTS_LUN_SCRATCH_H

#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"
#include "vmfs/lun.h"

#define MiB (1024u * 1024u)
#define LUN_BYTES (16 * MiB)

static inline int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A sparse file of size bytes; unit.h removes it after the run. */
static inline const char *mkfile(const char *stem, off_t size)
{
	const char *path = unit_tmp_path(stem);
	int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(ftruncate(fd, size) == 0);
	close(fd);
	return path;
}

static inline struct lun *open_lun(const char *path)
{
	struct lun *lun = NULL;

	CU_ASSERT_FATAL(lun_open(path, 0, &lun) == 0);
	CU_ASSERT_FATAL(lun != NULL);
	return lun;
}

static inline void fill(void *buf, size_t len, unsigned seed)
{
	unsigned char *p = buf;
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (unsigned char)(seed * 131 + i * 7 + (i >> 9));
}

static inline bool is_filled(const void *buf, size_t len, unsigned seed)
{
	unsigned char *want = malloc(len);
	bool same;

	fill(want, len, seed);
	same = memcmp(buf, want, len) == 0;
	free(want);
	return same;
}

static inline bool is_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* Read the file behind the lun's back (buffered, another open). */
static inline void pread_file(const char *path, void *buf, size_t len, off_t off)
{
	int fd = open(path, O_RDONLY);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(pread(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

#endif
