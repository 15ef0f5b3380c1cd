/*
 * vmfs disk: VM disk files on a mounted volume, the vmkfstools way.
 *
 *   thin              ftruncate: blocks are allocated on first write.
 *   zeroedthick       fallocate(mode 0): every block is allocated now and
 *                     marked to-be-zeroed, so it reads as zeros until its
 *                     first write zeroes the rest of it (no old data from
 *                     the LUN can ever show through).
 *   eagerzeroedthick  fallocate(FALLOC_FL_ZERO_RANGE): blocks are allocated
 *                     and zeroed on the LUN now, in 256 MiB steps with a
 *                     progress bar, so the first write of a running VM
 *                     never pays for zeroing (what clustering and FT want).
 *
 * The type is recorded in the xattr trusted.vmfs.disk_type.  A disk that
 * cannot be made completely is removed: a half-made thick disk would
 * silently be thin where the allocation stopped.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cli.h"

#define DISK_ZERO_CHUNK   (256ULL << 20)

enum disk_type { DISK_THIN, DISK_ZEROEDTHICK, DISK_EAGERZEROEDTHICK };

static const char *const disk_type_names[] = {
	[DISK_THIN] = "thin",
	[DISK_ZEROEDTHICK] = "zeroedthick",
	[DISK_EAGERZEROEDTHICK] = "eagerzeroedthick",
};

static void help_disk_create(void)
{
	printf("usage: vmfs disk create --size SIZE [--type TYPE] PATH\n\n"
	       "Create a VM disk file at PATH on a mounted vmfs volume (a path\n"
	       "elsewhere is refused).\n\n"
	       "Options:\n"
	       "  -s, --size SIZE   disk size (K, M, G, T suffixes)\n"
	       "  -t, --type TYPE   thin: allocate on first write (default)\n"
	       "                    zeroedthick: allocate now, zero on first write\n"
	       "                    eagerzeroedthick: allocate and zero now\n"
	       "  -h, --help        show this help\n");
}

static void help_disk_info(void)
{
	printf("usage: vmfs disk info PATH\n\n"
	       "Show the size, the bytes allocated and the type of a disk file on\n"
	       "a mounted vmfs volume (a path elsewhere is refused).\n");
}

void help_disk(void)
{
	printf("usage: vmfs disk <create|info|set|import|clone|extend|inflate> [options] PATH\n\n"
	       "  create --size SIZE --type thin|zeroedthick|eagerzeroedthick PATH\n"
	       "         create a VM disk file on a mounted volume\n"
	       "  info PATH\n"
	       "         show its size, allocated bytes, type and multi-writer flag\n"
	       "  set --multi-writer on|off PATH\n"
	       "         let every host open it for writing at once\n"
	       "  import [--type thin|zeroedthick] SRC PATH\n"
	       "         bring an image (raw, qcow2, vmdk, vhdx, ...) onto the volume\n"
	       "  clone [--type thin|zeroedthick] SRC PATH\n"
	       "         copy a disk of the volume to a new one\n"
	       "  extend --size SIZE PATH\n"
	       "         grow a disk (its type kept for the new part)\n"
	       "  inflate PATH\n"
	       "         make a thin disk eagerzeroedthick, its data kept\n\n"
	       "Run 'vmfs disk <command> --help' for details.\n");
}

/* Set by SIGINT/SIGTERM so eager zeroing can stop and remove the disk. */
static volatile sig_atomic_t disk_interrupted;

static void disk_on_signal(int sig)
{
	(void)sig;
	disk_interrupted = 1;
}

static int disk_zero_eager(int fd, uint64_t size, const char *path)
{
	struct cli_progress prog;
	uint64_t off, len;
	int rc = 0;

	cli_progress_start(&prog, path, size);
	for (off = 0; off < size; off += len) {
		if (disk_interrupted) {
			rc = -EINTR;
			break;
		}
		len = size - off < DISK_ZERO_CHUNK ? size - off : DISK_ZERO_CHUNK;
		if (fallocate(fd, FALLOC_FL_ZERO_RANGE, (off_t)off, (off_t)len)) {
			rc = -errno;
			break;
		}
		cli_progress_update(&prog, off + len);
	}
	cli_progress_end(&prog, rc == 0);
	return rc;
}

/*
 * A thick disk needs its whole size free.  Check first so that a disk that
 * cannot fit fails at once instead of after minutes of eager zeroing; the
 * allocation itself still decides (other hosts allocate too).
 */
static bool disk_space_short(const char *path, uint64_t size)
{
	char dir[PATH_MAX];
	struct statvfs sv;

	snprintf(dir, sizeof(dir), "%s", path);
	if (statvfs(dirname(dir), &sv))
		return false;
	return (uint64_t)sv.f_bavail * sv.f_frsize < size;
}

/*
 * Disk files belong on a volume: on another file system create would make
 * an ordinary file (with no disk type where it cannot store trusted.*
 * attributes) and info would describe one, both "successfully".  where is
 * the directory for create, the file itself for info.
 */
bool cli_disk_on_vmfs(const char *where, const char *path)
{
	char fstype[64];
	struct stat st;

	if (stat(where, &st)) {
		if (where == path)
			cli_err("%s: %s", path, strerror(errno));
		else
			cli_err("cannot create %s: directory %s: %s", path, where,
				strerror(errno));
		return false;
	}
	if (cli_on_vmfs(where, fstype, sizeof(fstype)))
		return true;
	cli_err("%s is not on a mounted vmfs volume (%s is on %s); disk files "
		"live on a volume: mount one with 'vmfs mount LUN MOUNTPOINT' "
		"and use a path under MOUNTPOINT", path, where, fstype);
	return false;
}

static void disk_explain(int err, const char *path, const char *type,
			 uint64_t size, const char *step)
{
	char s[CLI_SIZE_STR_LEN];

	cli_size_str(size, s, sizeof(s));
	switch (err) {
	case ENOSPC:
		cli_err("not enough free space on the volume for a %s %s disk; "
			"use --type thin or free space", s, type);
		break;
	case EINTR:
		cli_err("interrupted while zeroing %s; removed it", path);
		break;
	case EOPNOTSUPP:
		cli_err("%s: the file system does not support %s (%s); is %s on a "
			"mounted vmfs volume?", path, step, strerror(err), path);
		break;
	case EFBIG:
		cli_err("%s: %s is larger than the volume allows for one file", path, s);
		break;
	case EPERM:
		cli_err("%s: %s: %s; the disk type is a trusted.* attribute, "
			"which needs root (CAP_SYS_ADMIN)", path, step, strerror(err));
		break;
	default:
		cli_err("%s: %s failed: %s", path, step, strerror(err));
		break;
	}
}

static int disk_create(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "type", required_argument, NULL, 't' },
		{ "help", no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *path, *step = NULL;
	char dir[PATH_MAX];
	enum disk_type type = DISK_THIN;
	struct sigaction sa, old_int, old_term;
	bool have_size = false;
	uint64_t size = 0;
	unsigned i;
	int c, fd, err = 0;

	while ((c = getopt_long(argc, argv, ":s:t:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (cli_size_opt("--size", optarg, 1, INT64_MAX, &size))
				return CLI_EXIT_USAGE;
			have_size = true;
			break;
		case 't':
			for (i = 0; i < 3; i++)
				if (!strcmp(optarg, disk_type_names[i]))
					break;
			if (i == 3)
				return cli_usage_err("--type %s: must be thin, "
						     "zeroedthick or eagerzeroedthick",
						     optarg);
			type = (enum disk_type)i;
			break;
		case 'h':
			help_disk_create();
			return CLI_EXIT_OK;
		default:
			return cli_getopt_err(c, argv);
		}
	}
	if (!have_size)
		return cli_usage_err("missing --size");
	if (cli_one_operand(argc, argv, "PATH", &path))
		return CLI_EXIT_USAGE;

	snprintf(dir, sizeof(dir), "%s", path);
	if (!cli_disk_on_vmfs(dirname(dir), path))
		return CLI_EXIT_FAIL;
	if (type != DISK_THIN && disk_space_short(path, size)) {
		disk_explain(ENOSPC, path, disk_type_names[type], size, "statvfs");
		return CLI_EXIT_FAIL;
	}
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			cli_err("%s already exists; remove it or choose another name",
				path);
		else
			cli_err("cannot create %s: %s", path, strerror(errno));
		return CLI_EXIT_FAIL;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = disk_on_signal;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);

	switch (type) {
	case DISK_THIN:
		step = "ftruncate";
		if (ftruncate(fd, (off_t)size))
			err = errno;
		break;
	case DISK_ZEROEDTHICK:
		step = "fallocate";
		if (fallocate(fd, 0, 0, (off_t)size))
			err = errno;
		break;
	case DISK_EAGERZEROEDTHICK:
		step = "fallocate(FALLOC_FL_ZERO_RANGE)";
		err = -disk_zero_eager(fd, size, path);
		break;
	}
	if (!err) {
		step = "setting " DISK_XATTR;
		if (fsetxattr(fd, DISK_XATTR, disk_type_names[type],
			      strlen(disk_type_names[type]), 0))
			err = errno;
	}
	if (!err) {
		step = "fsync";
		if (fsync(fd))
			err = errno;
	}
	if (close(fd) && !err) {
		step = "close";
		err = errno;
	}
	if (err) {
		disk_explain(err, path, disk_type_names[type], size, step);
		if (unlink(path) && errno != ENOENT)
			cli_err("could not remove the half-made %s: %s; remove it "
				"by hand", path, strerror(errno));
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	return err ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

static int disk_info(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	char s1[CLI_SIZE_STR_LEN], s2[CLI_SIZE_STR_LEN], type[64], mwbuf[8];
	const char *path;
	struct stat st;
	ssize_t n;
	int c;

	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			help_disk_info();
			return CLI_EXIT_OK;
		default:
			return cli_getopt_err(c, argv);
		}
	}
	if (cli_one_operand(argc, argv, "PATH", &path))
		return CLI_EXIT_USAGE;

	if (stat(path, &st)) {
		cli_err("%s: %s", path, strerror(errno));
		return CLI_EXIT_FAIL;
	}
	if (!S_ISREG(st.st_mode)) {
		cli_err("%s is not a regular file", path);
		return CLI_EXIT_FAIL;
	}
	if (!cli_disk_on_vmfs(path, path))
		return CLI_EXIT_FAIL;
	n = getxattr(path, DISK_XATTR, type, sizeof(type) - 1);
	if (n >= 0)
		type[n] = '\0';
	else if (errno == ENODATA || errno == ENOTSUP)
		snprintf(type, sizeof(type), "(not set: not made by 'vmfs disk create')");
	else
		snprintf(type, sizeof(type), "(unreadable: %s)", strerror(errno));

	n = getxattr(path, VOL_XATTR_MULTIWRITER, mwbuf, sizeof(mwbuf) - 1);
	mwbuf[n > 0 ? n : 0] = '\0';
	printf("path       %s\n"
	       "type       %s\n"
	       "size       %s (%" PRIu64 " bytes)\n"
	       "allocated  %s (%" PRIu64 " bytes)\n"
	       "multi-writer %s\n",
	       path, type,
	       cli_size_str((uint64_t)st.st_size, s1, sizeof(s1)),
	       (uint64_t)st.st_size,
	       cli_size_str((uint64_t)st.st_blocks * 512, s2, sizeof(s2)),
	       (uint64_t)st.st_blocks * 512, n > 0 ? mwbuf : "?");
	return CLI_EXIT_OK;
}

static void help_disk_set(void)
{
	printf("usage: vmfs disk set --multi-writer on|off PATH\n\n"
	       "Change a VM disk file on a mounted vmfs volume.\n\n"
	       "Options:\n"
	       "  -m, --multi-writer on|off  on: every host may open the disk for\n"
	       "                    writing at the same time (for cluster-aware\n"
	       "                    guests; they must coordinate their own writes).\n"
	       "                    Only an eagerzeroedthick disk that no host has\n"
	       "                    open can be switched; its opens then use direct\n"
	       "                    I/O, and writes that would grow it fail (EPERM)\n"
	       "                    while several hosts share the volume.\n"
	       "  -h, --help        show this help\n");
}

static int disk_set(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "multi-writer", required_argument, NULL, 'm' },
		{ "help",         no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *path, *mw = NULL;
	int c;

	while ((c = getopt_long(argc, argv, ":m:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'm':
			mw = optarg;
			break;
		case 'h':
			help_disk_set();
			return CLI_EXIT_OK;
		default:
			return cli_getopt_err(c, argv);
		}
	}
	if (cli_one_operand(argc, argv, "PATH", &path))
		return CLI_EXIT_USAGE;
	if (!mw) {
		cli_err("nothing to set: give --multi-writer on|off");
		return CLI_EXIT_USAGE;
	}
	if (strcmp(mw, "on") && strcmp(mw, "off")) {
		cli_err("--multi-writer takes on or off, not '%s'", mw);
		return CLI_EXIT_USAGE;
	}
	if (!cli_disk_on_vmfs(path, path))
		return CLI_EXIT_FAIL;
	if (setxattr(path, VOL_XATTR_MULTIWRITER, mw, strlen(mw), 0)) {
		if (errno == EINVAL)
			cli_err("%s: only an eagerzeroedthick disk (vmfs disk "
				"create --type eagerzeroedthick) can be "
				"multi-writer", path);
		else if (errno == EBUSY)
			cli_err("%s is open on a host (see 'vmfs locks --path'); "
				"close it everywhere first", path);
		else
			cli_err("%s: %s", path, strerror(errno));
		return CLI_EXIT_FAIL;
	}
	printf("%s: multi-writer %s\n", path, mw);
	return CLI_EXIT_OK;
}

int cmd_disk(int argc, char **argv)
{
	static const struct cli_cmd subcmds[] = {
		{ "create", disk_create, help_disk_create, "create a disk file" },
		{ "info",   disk_info,   help_disk_info,   "show a disk file" },
		{ "set",    disk_set,    help_disk_set,    "change a disk file" },
		{ "import", cli_disk_import, cli_help_disk_import, "import an image" },
		{ "clone",  cli_disk_clone,  cli_help_disk_import, "clone a disk" },
		{ "extend", cli_disk_extend, cli_help_disk_extend, "grow a disk" },
		{ "inflate", cli_disk_inflate, cli_help_disk_inflate,
		  "make a disk eagerzeroedthick" },
	};

	return cli_dispatch(subcmds, CLI_NELEMS(subcmds), help_disk, argc, argv);
}
