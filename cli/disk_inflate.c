/*
 * vmfs disk inflate: a thin (or zeroedthick) disk becomes eagerzeroedthick
 * in place, like vmkfstools -j: every block never written is allocated
 * and zeroed on the LUN, the data already written is kept.
 *
 * Two passes through the mount, both under the file's open lock (another
 * host's VM holding the disk makes the open fail with EBUSY):
 *
 *  1. fallocate(KEEP_SIZE) over the whole disk: holes get blocks, marked
 *     to-be-zeroed (they read as zeros); written blocks are untouched.
 *  2. read the disk (O_DIRECT, so no stale host cache decides) and zero
 *     on the LUN, fallocate(FALLOC_FL_ZERO_RANGE), every block-sized run
 *     that reads as zeros: the to-be-zeroed blocks among them are exactly
 *     the never-written ones; a written block of zeros is rewritten with
 *     the zeros it holds.  Blocks holding data are left alone.
 *
 * ZERO_RANGE over the whole file (what create --type eagerzeroedthick
 * does) would destroy the data, hence the read.  The disk must not be in
 * use on this host either: an OFD write lock over the whole file (QEMU
 * takes its own image locks) refuses a disk a local VM has open.  The type
 * xattr says eagerzeroedthick only once both passes succeeded.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cli.h"

#define INFLATE_CHUNK (4U << 20)

static volatile sig_atomic_t inflate_interrupted;

static void inflate_on_signal(int sig)
{
	(void)sig;
	inflate_interrupted = 1;
}

void cli_help_disk_inflate(void)
{
	printf("usage: vmfs disk inflate PATH\n\n"
	       "Make the thin or zeroedthick disk at PATH on a mounted vmfs\n"
	       "volume eagerzeroedthick, keeping its data (like vmkfstools -j):\n"
	       "every block never written is allocated and zeroed on the LUN\n"
	       "now.  The whole disk is read; a progress bar is shown on a\n"
	       "terminal.  The disk must not be in use (stop its VM first).\n"
	       "Interrupted, it keeps its data and its type: run it again.\n\n"
	       "Options:\n"
	       "  -h, --help        show this help\n");
}

static bool all_zero(const unsigned char *p, size_t n)
{
	return !n || (!p[0] && !memcmp(p, p + 1, n - 1));
}

/* Zero [off, off+len) on the LUN; 0 or -errno. */
static int inflate_zero(int fd, uint64_t off, uint64_t len)
{
	if (!len)
		return 0;
	return fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_ZERO_RANGE,
			 (off_t)off, (off_t)len) ? -errno : 0;
}

/*
 * Pass 2: read fd (O_DIRECT) and zero on the LUN the bs-sized runs that
 * read as zeros.  Consecutive zero runs are zeroed in one call.
 */
static int inflate_zero_unwritten(int fd, uint64_t size, uint64_t bs,
				  const char *path, uint64_t *zeroed)
{
	struct cli_progress prog;
	uint64_t off, run_start = 0, run_len = 0;
	unsigned char *buf;
	size_t chunk = INFLATE_CHUNK;
	int rc = 0;

	if (chunk % bs)
		chunk = (size_t)bs;
	if (posix_memalign((void **)&buf, 4096, chunk))
		return -ENOMEM;
	cli_progress_start(&prog, path, size);
	for (off = 0; off < size && !rc;) {
		ssize_t n;

		if (inflate_interrupted) {
			rc = -EINTR;
			break;
		}
		n = pread(fd, buf, chunk, (off_t)off);
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (!n) {
			rc = -EIO;  /* shorter than its size: changed under us */
			break;
		}
		for (size_t i = 0; i < (size_t)n && !rc; i += bs) {
			size_t len = (size_t)n - i < bs ? (size_t)n - i : bs;

			if (all_zero(buf + i, len)) {
				if (!run_len)
					run_start = off + i;
				run_len += len;
				continue;
			}
			rc = inflate_zero(fd, run_start, run_len);
			*zeroed += run_len;
			run_len = 0;
		}
		off += (uint64_t)n;
		cli_progress_update(&prog, off);
	}
	if (!rc) {
		rc = inflate_zero(fd, run_start, run_len);
		*zeroed += run_len;
	}
	cli_progress_end(&prog, rc == 0);
	free(buf);
	return rc;
}

int cli_disk_inflate(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	struct sigaction sa, old_int, old_term;
	char type[32], s1[CLI_SIZE_STR_LEN], s2[CLI_SIZE_STR_LEN];
	const char *path, *step = "open";
	uint64_t size, bs, zeroed = 0;
	struct stat st;
	ssize_t tn;
	int ch, fd, err = 0;

	while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (ch != 'h')
			return cli_getopt_err(ch, argv);
		cli_help_disk_inflate();
		return CLI_EXIT_OK;
	}
	if (cli_one_operand(argc, argv, "PATH", &path))
		return CLI_EXIT_USAGE;
	if (!cli_disk_on_vmfs(path, path))
		return CLI_EXIT_FAIL;
	tn = getxattr(path, DISK_XATTR, type, sizeof(type) - 1);
	type[tn > 0 ? tn : 0] = 0;
	if (!strcmp(type, "eagerzeroedthick")) {
		printf("%s is eagerzeroedthick already\n", path);
		return CLI_EXIT_OK;
	}
	fd = cli_disk_open(path, O_RDWR | O_DIRECT, &st);
	if (fd < 0)
		return CLI_EXIT_FAIL;
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		cli_err("%s is not a disk file (not a regular file)", path);
		return CLI_EXIT_FAIL;
	}
	if (fcntl(fd, F_OFD_SETLK, &fl)) {
		close(fd);
		cli_err("%s is in use on this host (a running VM holds it); stop "
			"it first", path);
		return CLI_EXIT_FAIL;
	}
	size = (uint64_t)st.st_size;
	bs = st.st_blksize > 0 ? (uint64_t)st.st_blksize : 4096;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = inflate_on_signal;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	if (size) {
		step = "allocating the holes (fallocate)";
		if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)size))
			err = -errno;
	}
	if (!err) {
		step = "zeroing the unwritten blocks";
		err = inflate_zero_unwritten(fd, size, bs, path, &zeroed);
	}
	if (!err) {
		step = "fsync";
		if (fsync(fd))
			err = -errno;
	}
	if (!err) {
		step = "setting " DISK_XATTR;
		if (fsetxattr(fd, DISK_XATTR, "eagerzeroedthick",
			      strlen("eagerzeroedthick"), 0))
			err = -errno;
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	close(fd);
	if (err == -EINTR) {
		cli_err("interrupted: %s keeps its data and its type (%s); run "
			"'vmfs disk inflate' again", path, type[0] ? type : "thin");
		return CLI_EXIT_FAIL;
	}
	if (err == -ENOSPC) {
		cli_err("not enough free space on the volume to inflate %s (%s); "
			"free space first: its data and type (%s) are kept", path,
			cli_size_str(size, s1, sizeof(s1)), type[0] ? type : "thin");
		return CLI_EXIT_FAIL;
	}
	if (err) {
		cli_err("%s: %s failed: %s; its data and type (%s) are kept", path,
			step, strerror(-err), type[0] ? type : "thin");
		return CLI_EXIT_FAIL;
	}
	printf("%s: inflated to eagerzeroedthick (%s, %s zeroed on the LUN)\n",
	       path, cli_size_str(size, s1, sizeof(s1)),
	       cli_size_str(zeroed, s2, sizeof(s2)));
	return CLI_EXIT_OK;
}
