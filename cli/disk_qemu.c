/*
 * vmfs disk import, clone, extend: what vmkfstools -i and -X do, with
 * qemu-img doing the format work.  import reads any image qemu-img knows
 * (raw, qcow2, vmdk, vhdx, ...) and writes a raw disk on the volume
 * (holes stay holes: a thin disk unless --type zeroedthick allocates the
 * rest); clone is the same from a disk of the volume.  extend grows a
 * disk, allocating the new part the way its type says.  Writing through
 * the mount takes the file's open lock: a disk a VM runs from on another
 * host is refused (EBUSY) by the engine.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cli.h"

void cli_help_disk_import(void)
{
	printf("usage: vmfs disk import [--type thin|zeroedthick] SRC PATH\n"
	       "       vmfs disk clone [--type thin|zeroedthick] SRC PATH\n\n"
	       "import: convert the image SRC (raw, qcow2, vmdk, vhdx, ... as\n"
	       "qemu-img reads them) into a raw disk at PATH on a mounted vmfs\n"
	       "volume; clone: the same from a disk on the volume.  Unwritten\n"
	       "parts stay unallocated (thin) unless --type zeroedthick, which\n"
	       "allocates them now.  A progress bar is shown on a terminal.\n\n"
	       "Options:\n"
	       "  -t, --type TYPE   thin (default) or zeroedthick\n"
	       "  -h, --help        show this help\n");
}

void cli_help_disk_extend(void)
{
	printf("usage: vmfs disk extend --size SIZE PATH\n\n"
	       "Grow the disk at PATH on a mounted vmfs volume to SIZE; the new\n"
	       "part is allocated as the disk's type says (thin: not at all).\n"
	       "The guest sees the new size at its next start.\n\n"
	       "Options:\n"
	       "  -s, --size SIZE   the new size (K, M, G, T suffixes)\n"
	       "  -h, --help        show this help\n");
}

/* Run argv, waiting; 0 when it exited 0. */
static int disk_run(char *const argv[])
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (!pid) {
		execvp(argv[0], argv);
		fprintf(stderr, "%s: cannot run %s: %s (install qemu-utils: "
			"make deps)\n", cli_prog(), argv[0], strerror(errno));
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -EIO;
}

int cli_disk_open(const char *path, int flags, struct stat *st)
{
	int fd = open(path, flags | O_CLOEXEC);

	if (fd < 0 || fstat(fd, st)) {
		cli_err("cannot open %s: %s%s", path, strerror(errno),
			errno == EBUSY ? " (a host runs it: see 'vmfs locks "
			"--path'; stop its VM first)" : "");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static void disk_type_read(const char *path, char *type, size_t len)
{
	ssize_t n = getxattr(path, DISK_XATTR, type, len - 1);

	type[n > 0 ? n : 0] = 0;
	if (n <= 0)
		snprintf(type, len, "thin");
}

static int disk_convert(int argc, char **argv, bool clone)
{
	static const struct option longopts[] = {
		{ "type", required_argument, NULL, 't' },
		{ "help", no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *type = "thin", *src, *dst;
	char dir[PATH_MAX], srcopt[PATH_MAX + 16];
	struct stat st;
	int ch, fd, err = 0;

	while ((ch = getopt_long(argc, argv, ":t:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 't':
			if (strcmp(optarg, "thin") && strcmp(optarg, "zeroedthick"))
				return cli_usage_err("--type %s: thin or zeroedthick "
						     "(for eagerzeroedthick, 'vmfs disk "
						     "create' one and copy into it)", optarg);
			type = optarg;
			break;
		case 'h':
			cli_help_disk_import();
			return CLI_EXIT_OK;
		default:
			return cli_getopt_err(ch, argv);
		}
	}
	if (argc - optind != 2)
		return cli_usage_err("give SRC and PATH");
	src = argv[optind];
	dst = argv[optind + 1];
	if (stat(src, &st) || !S_ISREG(st.st_mode)) {
		cli_err("%s: %s", src, errno ? strerror(errno) : "not a regular file");
		return CLI_EXIT_FAIL;
	}
	if (clone && !cli_disk_on_vmfs(src, src))
		return CLI_EXIT_FAIL;
	snprintf(dir, sizeof(dir), "%s", dst);
	if (!cli_disk_on_vmfs(dirname(dir), dst))
		return CLI_EXIT_FAIL;
	/* Claim the name first: qemu-img would overwrite a disk. */
	fd = open(dst, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0) {
		cli_err("cannot create %s: %s%s", dst, strerror(errno),
			errno == EEXIST ? " (remove it or choose another name)" : "");
		return CLI_EXIT_FAIL;
	}
	close(fd);
	/* A clone reads its source as raw: never probe the format of a
	 * guest-written disk (a guest could make it look like qcow2). */
	snprintf(srcopt, sizeof(srcopt), "%s", src);
	{
		char *av[12];
		int n = 0;

		av[n++] = "qemu-img";
		av[n++] = "convert";
		av[n++] = isatty(1) ? "-p" : "-q";
		av[n++] = "-O";
		av[n++] = "raw";
		av[n++] = "-t";         /* O_DIRECT writes through the mount */
		av[n++] = "none";
		if (clone) {
			av[n++] = "-f";
			av[n++] = "raw";
		}
		av[n++] = srcopt;
		av[n++] = (char *)dst;
		av[n] = NULL;
		err = disk_run(av);
	}
	if (err) {
		cli_err("qemu-img could not convert %s to %s (its message is "
			"above); %s removed", src, dst, dst);
		goto fail;
	}
	fd = open(dst, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		goto fail;
	}
	if (!strcmp(type, "zeroedthick") && fstat(fd, &st) == 0 &&
	    fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, st.st_size))
		err = -errno;
	if (!err && fsetxattr(fd, DISK_XATTR, type, strlen(type), 0))
		err = -errno;
	if (!err && fsync(fd))
		err = -errno;
	close(fd);
	if (err) {
		cli_err("%s: finishing the %s disk failed: %s; removed it", dst,
			type, strerror(-err));
		goto fail;
	}
	printf("%s %s to %s (%s, raw)\n", clone ? "cloned" : "imported", src,
	       dst, type);
	return CLI_EXIT_OK;
fail:
	unlink(dst);
	return CLI_EXIT_FAIL;
}

int cli_disk_import(int argc, char **argv)
{
	return disk_convert(argc, argv, false);
}

int cli_disk_clone(int argc, char **argv)
{
	return disk_convert(argc, argv, true);
}

int cli_disk_extend(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "help", no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	char type[32], s1[CLI_SIZE_STR_LEN];
	const char *path;
	uint64_t size = 0;
	struct stat st;
	int ch, fd, err = 0;

	while ((ch = getopt_long(argc, argv, ":s:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (cli_size_opt("--size", optarg, 1, INT64_MAX, &size))
				return CLI_EXIT_USAGE;
			break;
		case 'h':
			cli_help_disk_extend();
			return CLI_EXIT_OK;
		default:
			return cli_getopt_err(ch, argv);
		}
	}
	if (!size)
		return cli_usage_err("missing --size");
	if (cli_one_operand(argc, argv, "PATH", &path))
		return CLI_EXIT_USAGE;
	if (!cli_disk_on_vmfs(path, path))
		return CLI_EXIT_FAIL;
	fd = cli_disk_open(path, O_WRONLY, &st);
	if (fd < 0)
		return CLI_EXIT_FAIL;
	if (size <= (uint64_t)st.st_size) {
		close(fd);
		cli_err("%s is %s already; extend only grows a disk (give a "
			"larger --size)", path, cli_size_str((uint64_t)st.st_size,
			s1, sizeof(s1)));
		return CLI_EXIT_FAIL;
	}
	disk_type_read(path, type, sizeof(type));
	if (!strcmp(type, "zeroedthick"))
		err = fallocate(fd, 0, st.st_size, (off_t)size - st.st_size);
	else if (!strcmp(type, "eagerzeroedthick"))
		err = fallocate(fd, FALLOC_FL_ZERO_RANGE, st.st_size,
				(off_t)size - st.st_size);
	else
		err = ftruncate(fd, (off_t)size);
	if (!err)
		err = fsync(fd);
	if (err) {
		cli_err("extending %s (%s) to %s failed: %s; it keeps its size",
			path, type, cli_size_str(size, s1, sizeof(s1)),
			strerror(errno));
		if (ftruncate(fd, st.st_size))
			cli_err("could not set %s back to %" PRIu64 " bytes: %s",
				path, (uint64_t)st.st_size, strerror(errno));
		close(fd);
		return CLI_EXIT_FAIL;
	}
	close(fd);
	printf("%s: extended to %s (%s)\n", path, cli_size_str(size, s1,
	       sizeof(s1)), type);
	return CLI_EXIT_OK;
}
