/*
 * vmfs mount / vmfs umount: start and stop the per-host daemon that
 * serves a volume through FUSE.
 *
 * mount runs vmfsd (the one installed next to this binary, else the one in
 * PATH) and waits on a pipe for its readiness line: "ok\n" once the volume
 * is mounted, or "error: <why>\n".  The daemon detaches on its own; the
 * pipe is the only way to learn whether it succeeded, so the write end is
 * the one fd we let through exec.
 *
 * umount asks the daemon of the mount point, over its control socket, to
 * unmount and close the volume; the daemon replies once the volume is
 * closed (journal flushed, heartbeat slot freed, claim released), saying
 * whether that went cleanly, and we wait for it to exit too: a caller that
 * reuses the LUN right after `vmfs umount` returns (fsck, another mount)
 * must find the volume clean.  Exit 1 when the close failed, or when the
 * daemon had died before the unmount (its dead FUSE mount, ENOTCONN, is
 * detached all the same).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmfs/clock.h"
#include "vmfs/fuse.h"
#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"
#include "vmfs/vmfsd.h"
#include "vmfs/vol.h"
#include "cli.h"

#define MOUNT_READY_TIMEOUT_MS  60000
#define UMOUNT_EXIT_TIMEOUT_MS  30000
#define MOUNT_LINE_MAX          4096

void help_mount(void)
{
	printf("usage: vmfs mount [options] LUN MOUNTPOINT\n\n"
	       "Mount the vmfs volume on LUN at MOUNTPOINT: start vmfsd for it and\n"
	       "wait (up to %d s) until the volume is mounted or vmfsd reports why\n"
	       "it cannot be.  A host mounts a volume at most once.\n\n"
	       "Options:\n"
	       "  -S, --state-dir DIR    host state directory: the host's identity and\n"
	       "                         its mounts (default $VMFS_STATE_DIR or %s)\n"
	       "  -f, --foreground       run vmfsd in the foreground (exec it)\n"
	       "  -t, --threads N        FUSE worker threads for vmfsd (default %d)\n"
	       "  -c, --commit-ms MS     commit the metadata journal at least every MS\n"
	       "                         milliseconds, 10 to 60000 (default 1000); fsync\n"
	       "                         always commits at once\n"
	       "      --cache-size SIZE  memory budget of vmfsd's directory indexes and\n"
	       "                         pointer blocks (inodes the kernel holds come on\n"
	       "                         top), K/M/G/T suffixes, at least 1M (default\n"
	       "                         256M); see 'Memory' in docs/OPERATIONS.md\n"
	       "      --lease-ms MS      the heartbeat lease this host advertises, %u\n"
	       "                         to %u (default: the volume's, 10000); a host\n"
	       "                         that could not renew in time stops writing\n"
	       "                         and fails every call with EIO\n"
	       "  -l, --log-file PATH    vmfsd's log file\n"
	       "  -d, --debug            vmfsd logs debug messages\n"
	       "      --host-name NAME   name this host in heartbeats, logs, 'vmfs hosts'\n"
	       "                         and 'vmfs locks'; kept in the state directory\n"
	       "                         for later mounts (default: the stored name, else\n"
	       "                         the machine's hostname)\n"
	       "      --lock-primitive P ats, reserve or auto (default): how this host\n"
	       "                         writes heartbeats and locks; auto takes ATS when\n"
	       "                         the LUN has it, else SCSI-2 reservations\n"
	       "  -r, --ro               mount read-only: nothing is written to the\n"
	       "                         volume but this host's heartbeat slot; a\n"
	       "                         volume whose journal needs replaying is refused\n"
	       "      --vm-memory SIZE   memory this host gives VMs (default: all of\n"
	       "                         MemTotal); what the VMs it runs do not take\n"
	       "                         is advertised in its heartbeat, and HA\n"
	       "                         restarts a dead host's VMs on the hosts with\n"
	       "                         the most of it first\n"
	       "      --no-cluster       do not join the volume's corosync group: share\n"
	       "                         the volume through the disk alone (slower lock\n"
	       "                         handovers; 'vmfs hosts' on other hosts shows\n"
	       "                         this one as not in the group)\n"
	       "      --disk-asks on|off hosts that cannot ask for a lock over corosync\n"
	       "                         ask through their heartbeat slots, so locks stay\n"
	       "                         cached between operations without corosync too\n"
	       "                         (default on; off: without corosync every\n"
	       "                         operation lets go of its locks at its end)\n"
	       "  -h, --help             show this help\n",
	       MOUNT_READY_TIMEOUT_MS / 1000, VMFSD_DEFAULT_STATE_DIR,
	       VFUSE_DEFAULT_THREADS, HB_MIN_LEASE_MS, HB_MAX_LEASE_MS);
}

void help_umount(void)
{
	printf("usage: vmfs umount [--stop-vms] MOUNTPOINT\n\n"
	       "Ask the vmfsd serving MOUNTPOINT, over its control socket (root, or\n"
	       "the user vmfsd runs as), to unmount the volume, close it and exit,\n"
	       "and wait (up to %d s) for that, so that the volume is clean when this\n"
	       "returns.  Exits 1 when the volume did not close cleanly.  A mount\n"
	       "whose vmfsd has died is detached (exit 1: the volume was not closed).\n"
	       "Refused while VMs run on this host from the mount ('vmfs vm list'),\n"
	       "unless --stop-vms: their QEMU is stopped first (SIGTERM, SIGKILL\n"
	       "after 10 s) and their locks released.\n\n"
	       "Options:\n"
	       "      --stop-vms         stop this host's VMs on the mount first\n"
	       "  -S, --state-dir DIR    ignored (accepted for older scripts)\n"
	       "  -h, --help             show this help\n",
	       UMOUNT_EXIT_TIMEOUT_MS / 1000);
}

/* ---- paths ------------------------------------------------------------- */

/*
 * Absolute form of path without requiring it to be reachable: a dead FUSE
 * mount point fails stat() with ENOTCONN, and that is exactly when
 * umount is needed.  NULL when it does not fit.
 */
static const char *mount_abspath(const char *path, char *buf, size_t len)
{
	char cwd[PATH_MAX];
	int n;

	if (realpath(path, cwd))
		n = snprintf(buf, len, "%s", cwd);
	else if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		n = snprintf(buf, len, "%s", path);
	else
		n = snprintf(buf, len, "%s/%s", cwd, path);
	return n < 0 || (size_t)n >= len ? NULL : buf;
}

/* Undo the octal escapes (\040 for a space) of /proc/self/mountinfo. */
static void mount_unescape(char *s)
{
	char *d = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*d++ = *s++;
		}
	}
	*d = '\0';
}

/*
 * Call cb(ctx, mountpoint, "major:minor", type) for every line of
 * /proc/self/mountinfo, in order, until it returns non-zero (which is
 * returned); -errno when the table cannot be read.
 */
static int mount_each(int (*cb)(void *ctx, const char *mp, const char *devno,
				const char *type), void *ctx)
{
	char *line = NULL, *devno, *mp, *sep, *type, *save;
	size_t cap = 0;
	int ret = 0;
	FILE *f;

	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	/* id parent major:minor root mountpoint options [optional...] - type ... */
	while (!ret && getline(&line, &cap, f) > 0) {
		strtok_r(line, " \n", &save);
		strtok_r(NULL, " \n", &save);
		devno = strtok_r(NULL, " \n", &save);
		strtok_r(NULL, " \n", &save);
		mp = strtok_r(NULL, " \n", &save);
		sep = strstr(save ? save : "", " - ");
		if (!devno || !mp || !sep)
			continue;
		mount_unescape(mp);
		type = strtok_r(sep + 3, " \n", &save);
		ret = cb(ctx, mp, devno, type ? type : "?");
	}
	free(line);
	fclose(f);
	return ret;
}

struct mount_find_ctx {
	const char *path;
	dev_t dev;
	char *fstype;
	size_t len;
	bool found;
};

static int mount_find_one(void *ctx, const char *mp, const char *devno,
			  const char *type)
{
	struct mount_find_ctx *c = ctx;
	unsigned maj, min;

	if (c->path ? strcmp(mp, c->path) != 0 :
	    sscanf(devno, "%u:%u", &maj, &min) != 2 ||
	    makedev(maj, min) != c->dev)
		return 0;
	c->found = true;
	if (c->fstype)
		snprintf(c->fstype, c->len, "%s", type);
	return 0;
}

/*
 * The mount whose mount point is path (when path is set) or whose device
 * is dev: true if there is one, with its type in fstype (optional), e.g.
 * "fuse.vmfs".  The last match wins: a later mount covers an earlier one.
 */
static bool mount_find(const char *path, dev_t dev, char *fstype, size_t len)
{
	struct mount_find_ctx c = { path, dev, fstype, len, false };

	mount_each(mount_find_one, &c);
	return c.found;
}

struct mount_vmfs_ctx {
	int (*cb)(void *ctx, const char *mp);
	void *ctx;
};

static int mount_vmfs_one(void *ctx, const char *mp, const char *devno,
			  const char *type)
{
	struct mount_vmfs_ctx *c = ctx;

	(void)devno;
	return strcmp(type, "fuse.vmfs") ? 0 : c->cb(c->ctx, mp);
}

int cli_vmfs_mounts_each(int (*cb)(void *ctx, const char *mp), void *ctx)
{
	struct mount_vmfs_ctx c = { cb, ctx };

	return mount_each(mount_vmfs_one, &c);
}

/* Is path a mount point?  fstype (optional) gets its type. */
static bool mount_is_mounted(const char *path, char *fstype, size_t len)
{
	return mount_find(path, 0, fstype, len);
}

bool cli_on_vmfs(const char *path, char *fstype, size_t len)
{
	struct stat st;

	snprintf(fstype, len, "?");
	if (stat(path, &st))
		return false;
	return mount_find(NULL, st.st_dev, fstype, len) &&
	       !strcmp(fstype, "fuse.vmfs");
}

/* ---- finding vmfsd ------------------------------------------------------ */

/*
 * Prefer the vmfsd installed beside this vmfs, so a build tree or a
 * private prefix never mixes with another version found in PATH.
 * Returns false when execvp() should search PATH for "vmfsd".
 */
static bool mount_vmfsd_path(char *buf, size_t len)
{
	char self[PATH_MAX];
	ssize_t n;
	char *slash;

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return false;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return false;
	*slash = '\0';
	if ((size_t)snprintf(buf, len, "%s/vmfsd", self) >= len)
		return false;
	return access(buf, X_OK) == 0;
}

static void mount_exec_vmfsd(char **args)
{
	char path[PATH_MAX];

	if (mount_vmfsd_path(path, sizeof(path))) {
		args[0] = path;
		execv(path, args);
	} else {
		args[0] = "vmfsd";
		execvp("vmfsd", args);
	}
}

/* ---- mount ------------------------------------------------------------- */

/*
 * Alive, and not a zombie: a daemon that has exited is gone for our
 * purposes even before init (or a subreaper) reaps it.
 */
static bool mount_pid_alive(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	if (pid <= 0 || (kill(pid, 0) && errno != EPERM))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	/* "pid (comm) S ...": comm may hold spaces and parentheses. */
	p = strrchr(buf, ')');
	return !(p && p[1] == ' ' && p[2] == 'Z');
}

/*
 * The daemon refuses a second mount of one volume by the same host
 * (vmfsd_host_claim), but by then it has been started for nothing and its
 * message comes through a pipe; check first so the common mistake gets an
 * immediate answer that names the existing mount.  This reads the host
 * state DB, not a control socket: what is asked is "which daemon of this
 * host identity has volume U", and only the state directory knows that
 * (sockets are found by mount point).  The state dir is only read if it
 * exists: a first mount must not fail here.
 */
static int mount_check_twice(const char *state_dir, const char *uuid,
			     const char *lun)
{
	struct vmfsd_mount_rec rec;
	struct vmfsd_host *h;
	struct stat st;
	int rc;

	if (stat(state_dir, &st) || !S_ISDIR(st.st_mode))
		return 0;
	if (vmfsd_host_open(state_dir, &h))
		return 0;
	rc = vmfsd_host_find(h, uuid, NULL, &rec);
	vmfsd_host_close(h);
	if (rc || !mount_pid_alive(rec.pid))
		return 0;
	cli_err("volume %s on %s is already mounted at %s by this host (vmfsd "
		"pid %d, state directory %s); a host mounts a volume once: use "
		"that mount point, or 'vmfs umount %s' first", uuid, lun,
		rec.mountpoint, (int)rec.pid, state_dir, rec.mountpoint);
	return -EBUSY;
}

struct mount_args {
	const char *state_dir;
	const char *threads;
	const char *commit_ms;
	char cache_bytes[24];       /* decimal; "" when not given */
	char vm_mem_bytes[24];      /* decimal; "" when not given */
	const char *lease_ms;
	const char *log_file;
	const char *host_name;
	const char *lock_prim;
	bool foreground;
	bool debug;
	bool ro;
	bool no_cluster;
	const char *disk_asks;
	char lun[PATH_MAX + 8];
	char mountpoint[PATH_MAX];
	char log_abs[PATH_MAX];
};

/* vmfsd's argv: every option mount passes on, once, and the NULL. */
#define MOUNT_MAX_ARGS 40

static void mount_build_argv(const struct mount_args *a, char **args,
			     char *fdbuf)
{
	int n = 0;

	args[n++] = "vmfsd";
	args[n++] = "--lun";
	args[n++] = (char *)a->lun;
	args[n++] = "--mountpoint";
	args[n++] = (char *)a->mountpoint;
	args[n++] = "--state-dir";
	args[n++] = (char *)a->state_dir;
	if (a->foreground)
		args[n++] = "--foreground";
	if (fdbuf) {
		args[n++] = "--ready-fd";
		args[n++] = fdbuf;
	}
	if (a->log_file) {
		args[n++] = "--log-file";
		args[n++] = (char *)a->log_abs;
	}
	if (a->debug)
		args[n++] = "--debug";
	if (a->ro)
		args[n++] = "--ro";
	if (a->no_cluster)
		args[n++] = "--no-cluster";
	if (a->disk_asks) {
		args[n++] = "--disk-asks";
		args[n++] = (char *)a->disk_asks;
	}
	if (a->threads) {
		args[n++] = "--threads";
		args[n++] = (char *)a->threads;
	}
	if (a->commit_ms) {
		args[n++] = "--commit-ms";
		args[n++] = (char *)a->commit_ms;
	}
	if (a->cache_bytes[0]) {
		args[n++] = "--cache-size";
		args[n++] = (char *)a->cache_bytes;
	}
	if (a->vm_mem_bytes[0]) {
		args[n++] = "--vm-memory";
		args[n++] = (char *)a->vm_mem_bytes;
	}
	if (a->lease_ms) {
		args[n++] = "--lease-ms";
		args[n++] = (char *)a->lease_ms;
	}
	if (a->host_name) {
		args[n++] = "--host-name";
		args[n++] = (char *)a->host_name;
	}
	if (a->lock_prim) {
		args[n++] = "--lock-primitive";
		args[n++] = (char *)a->lock_prim;
	}
	args[n] = NULL;
	assert(n < MOUNT_MAX_ARGS);
}

/*
 * Read the readiness line.  Returns 1 with the line in buf, 0 on EOF
 * before a full line (the daemon died), -ETIMEDOUT.
 */
static int mount_read_ready(int fd, char *buf, size_t len, int timeout_ms)
{
	long long deadline = vmfs_mono_ms() + timeout_ms;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t used = 0;
	ssize_t n;
	char *nl;
	int left;

	for (;;) {
		left = (int)(deadline - vmfs_mono_ms());
		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, left) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (!pfd.revents)
			continue;
		n = read(fd, buf + used, len - 1 - used);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (n == 0)
			return 0;
		used += (size_t)n;
		buf[used] = '\0';
		nl = strchr(buf, '\n');
		if (nl || used == len - 1) {
			if (nl)
				*nl = '\0';
			return 1;
		}
	}
}

/* Say how a daemon that never reported ended. */
static void mount_report_child(pid_t child, const struct mount_args *a)
{
	int status;

	if (waitpid(child, &status, 0) != child) {
		cli_err("vmfsd closed its readiness pipe without a word; see its log");
		return;
	}
	if (WIFEXITED(status))
		cli_err("vmfsd exited with status %d before it reported the mount; "
			"%s%s%srun 'vmfs mount --foreground %s %s' to see why",
			WEXITSTATUS(status), a->log_file ? "see " : "",
			a->log_file ? a->log_abs : "", a->log_file ? " or " : "",
			a->lun, a->mountpoint);
	else if (WIFSIGNALED(status))
		cli_err("vmfsd was killed by signal %d (%s) before it reported the "
			"mount", WTERMSIG(status), strsignal(WTERMSIG(status)));
}

static int mount_spawn(const struct mount_args *a)
{
	char *args[MOUNT_MAX_ARGS];
	char fdbuf[16], line[MOUNT_LINE_MAX];
	int pfd[2], status, rc;
	pid_t child;

	if (pipe2(pfd, O_CLOEXEC)) {
		cli_err("pipe: %s", strerror(errno));
		return CLI_EXIT_FAIL;
	}
	snprintf(fdbuf, sizeof(fdbuf), "%d", pfd[1]);
	mount_build_argv(a, args, fdbuf);

	child = fork();
	if (child < 0) {
		cli_err("fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return CLI_EXIT_FAIL;
	}
	if (child == 0) {
		/* Only the write end crosses exec; stdout stays ours. */
		fcntl(pfd[1], F_SETFD, 0);
		mount_exec_vmfsd(args);
		dprintf(pfd[1], "error: cannot run vmfsd (%s); install it next "
			"to vmfs or in PATH\n", strerror(errno));
		_exit(127);
	}
	close(pfd[1]);

	rc = mount_read_ready(pfd[0], line, sizeof(line), MOUNT_READY_TIMEOUT_MS);
	close(pfd[0]);
	if (rc == 1 && !strcmp(line, "ok")) {
		/* Reap the launcher if vmfsd detached; a foreground one stays. */
		waitpid(child, &status, WNOHANG);
		return CLI_EXIT_OK;
	}
	if (rc == 1) {
		cli_err("%s", strncmp(line, "error: ", 7) ? line : line + 7);
		waitpid(child, &status, 0);
		return CLI_EXIT_FAIL;
	}
	if (rc == -ETIMEDOUT) {
		cli_err("vmfsd (pid %d) did not report within %d s that %s is "
			"mounted; stopping it; check the LUN's latency and the "
			"vmfsd log", (int)child, MOUNT_READY_TIMEOUT_MS / 1000,
			a->mountpoint);
		kill(child, SIGTERM);
		waitpid(child, &status, 0);
		return CLI_EXIT_FAIL;
	}
	if (rc < 0) {
		cli_err("reading vmfsd's readiness pipe: %s", strerror(-rc));
		return CLI_EXIT_FAIL;
	}
	mount_report_child(child, a);
	return CLI_EXIT_FAIL;
}

/* Is there a volume on the LUN this vmfs can mount?  Gives its uuid. */
static int mount_check_lun(const char *lun_spec, char uuid[37])
{
	struct vol_geom g;
	struct lun *lun;
	int rc;

	rc = lun_open(lun_spec, LUN_RDONLY, &lun);
	if (rc) {
		cli_err("cannot open LUN %s: %s", lun_spec, vmfs_strerror(rc));
		return rc;
	}
	rc = cli_volume_read(lun, lun_spec, &g, NULL);
	if (!rc)
		vol_uuid_format(g.uuid, uuid);
	lun_close(lun);
	return rc;
}

int cmd_mount(int argc, char **argv)
{
	enum { O_HOST_NAME = 256, O_LOCK_PRIM, O_LEASE, O_CACHE, O_NO_CLUSTER,
	       O_VM_MEM, O_DISK_ASKS };
	static const struct option longopts[] = {
		{ "state-dir",  required_argument, NULL, 'S' },
		{ "foreground", no_argument,       NULL, 'f' },
		{ "host-name",  required_argument, NULL, O_HOST_NAME },
		{ "lock-primitive", required_argument, NULL, O_LOCK_PRIM },
		{ "threads",    required_argument, NULL, 't' },
		{ "commit-ms",  required_argument, NULL, 'c' },
		{ "cache-size", required_argument, NULL, O_CACHE },
		{ "lease-ms",   required_argument, NULL, O_LEASE },
		{ "log-file",   required_argument, NULL, 'l' },
		{ "debug",      no_argument,       NULL, 'd' },
		{ "ro",         no_argument,       NULL, 'r' },
		{ "no-cluster", no_argument,       NULL, O_NO_CLUSTER },
		{ "vm-memory",  required_argument, NULL, O_VM_MEM },
		{ "disk-asks",  required_argument, NULL, O_DISK_ASKS },
		{ "help",       no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	static struct mount_args a;
	char fstype[64], uuid[37], state_abs[PATH_MAX];
	char *args[MOUNT_MAX_ARGS];
	struct stat st;
	unsigned prim;
	uint64_t bytes;
	char *end;
	long v;
	int c, ret;

	a.state_dir = cli_default_state_dir();
	while ((c = getopt_long(argc, argv, ":S:ft:c:l:drh", longopts, NULL)) != -1) {
		switch (c) {
		case 'S':
			a.state_dir = optarg;
			break;
		case 'f':
			a.foreground = true;
			break;
		case 't':
			v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > VFUSE_MAX_THREADS)
				return cli_usage_err("--threads %s: must be a number from 1 to %d",
						     optarg, VFUSE_MAX_THREADS);
			a.threads = optarg;
			break;
		case 'c':
			v = strtol(optarg, &end, 10);
			if (!*optarg || *end || v < 10 || v > 60000)
				return cli_usage_err("--commit-ms %s: must be a number of milliseconds from 10 to 60000",
						     optarg);
			a.commit_ms = optarg;
			break;
		case O_CACHE:
			if (cli_size_parse(optarg, &bytes) ||
			    bytes < VMFSD_CACHE_MIN_BYTES)
				return cli_usage_err("--cache-size %s: must be a size of at least 1M, e.g. 64M or 2G",
						     optarg);
			snprintf(a.cache_bytes, sizeof(a.cache_bytes), "%" PRIu64,
				 bytes);
			break;
		case O_VM_MEM:
			if (cli_size_parse(optarg, &bytes) || bytes < (1u << 20))
				return cli_usage_err("--vm-memory %s: must be a size of at least 1M, e.g. 16G",
						     optarg);
			snprintf(a.vm_mem_bytes, sizeof(a.vm_mem_bytes), "%" PRIu64,
				 bytes);
			break;
		case O_LEASE:
			v = strtol(optarg, &end, 10);
			if (!*optarg || *end || v < HB_MIN_LEASE_MS ||
			    v > HB_MAX_LEASE_MS)
				return cli_usage_err("--lease-ms %s: must be a number of milliseconds from %u to %u",
						     optarg, HB_MIN_LEASE_MS,
						     HB_MAX_LEASE_MS);
			a.lease_ms = optarg;
			break;
		case 'l':
			a.log_file = optarg;
			break;
		case 'd':
			a.debug = true;
			break;
		case O_HOST_NAME:
			if (!vmfsd_host_name_valid(optarg))
				return cli_usage_err("--host-name '%s': "
						     VMFSD_HOST_NAME_RULE, optarg);
			a.host_name = optarg;
			break;
		case O_LOCK_PRIM:
			if (lock_prim_parse(optarg, &prim))
				return cli_usage_err("--lock-primitive '%s': must be "
						     "ats, reserve or auto", optarg);
			a.lock_prim = optarg;
			break;
		case 'r':
			a.ro = true;
			break;
		case O_NO_CLUSTER:
			a.no_cluster = true;
			break;
		case O_DISK_ASKS:
			if (strcmp(optarg, "on") && strcmp(optarg, "off"))
				return cli_usage_err("--disk-asks '%s': must be on or off",
						     optarg);
			a.disk_asks = optarg;
			break;
		case 'h':
			help_mount();
			return CLI_EXIT_OK;
		default:
			return cli_getopt_err(c, argv);
		}
	}
	if (argc - optind < 2)
		return cli_usage_err("missing %s", optind == argc ?
				     "LUN and MOUNTPOINT" : "MOUNTPOINT");
	if (argc - optind > 2)
		return cli_usage_err("unexpected argument '%s'", argv[optind + 2]);

	/* vmfsd detaches and changes directory: give it absolute paths. */
	ret = lun_spec_abspath(argv[optind], a.lun, sizeof(a.lun));
	if (ret == -VMFS_E_BAD_SPEC) {
		cli_err("LUN '%s': %s", argv[optind], vmfs_strerror(ret));
		return CLI_EXIT_USAGE;
	}
	if (ret ||
	    !mount_abspath(argv[optind + 1], a.mountpoint, sizeof(a.mountpoint)) ||
	    !(a.state_dir = mount_abspath(a.state_dir, state_abs, sizeof(state_abs))) ||
	    (a.log_file && !mount_abspath(a.log_file, a.log_abs, sizeof(a.log_abs)))) {
		cli_err("a path is longer than %d bytes", PATH_MAX - 1);
		return CLI_EXIT_FAIL;
	}

	if (stat(a.mountpoint, &st)) {
		if (errno == ENOENT)
			cli_err("mount point %s does not exist; create it with "
				"'mkdir -p %s'", a.mountpoint, a.mountpoint);
		else if (errno == ENOTCONN)
			cli_err("mount point %s is a dead FUSE mount (Transport "
				"endpoint is not connected): the daemon that served "
				"it has died; run 'vmfs umount %s' first",
				a.mountpoint, a.mountpoint);
		else
			cli_err("mount point %s: %s", a.mountpoint, strerror(errno));
		return CLI_EXIT_FAIL;
	}
	if (!S_ISDIR(st.st_mode)) {
		cli_err("mount point %s is not a directory", a.mountpoint);
		return CLI_EXIT_FAIL;
	}
	if (mount_is_mounted(a.mountpoint, fstype, sizeof(fstype))) {
		cli_err("%s is already a mount point (%s); unmount it first or "
			"choose another directory", a.mountpoint, fstype);
		return CLI_EXIT_FAIL;
	}
	if (mount_check_lun(a.lun, uuid))
		return CLI_EXIT_FAIL;
	if (mount_check_twice(a.state_dir, uuid, a.lun))
		return CLI_EXIT_FAIL;

	if (!a.foreground)
		return mount_spawn(&a);

	mount_build_argv(&a, args, NULL);
	fflush(NULL);
	mount_exec_vmfsd(args);
	cli_err("cannot run vmfsd: %s; install it next to vmfs or in PATH",
		strerror(errno));
	return CLI_EXIT_FAIL;
}

/* ---- umount ------------------------------------------------------------ */

/*
 * A pidfd names the process itself, not a number that may be reused, so
 * waiting on it cannot mistake a new process for the old daemon.  Opened
 * before the unmount, while the daemon is surely alive.
 */
static int umount_pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

/* Returns 0 once pid has exited, -ETIMEDOUT. */
static int umount_wait_exit(pid_t pid, int pidfd, int timeout_ms)
{
	long long deadline = vmfs_mono_ms() + timeout_ms;
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
	int left;

	for (;;) {
		left = (int)(deadline - vmfs_mono_ms());
		if (pidfd >= 0) {
			if (left <= 0)
				return -ETIMEDOUT;
			if (poll(&pfd, 1, left) > 0)
				return 0;
			continue;
		}
		if (!mount_pid_alive(pid))
			return 0;
		if (left <= 0)
			return -ETIMEDOUT;
		usleep(20000);
	}
}

/* The unmount failed and the mount stays: say why and what to do. */
static void umount_failed(const char *mp, int rc)
{
	if (rc == -EBUSY)
		cli_err("%s is busy: a process has a file open there or its "
			"working directory inside; close them ('fuser -vm %s' "
			"lists them) and retry", mp, mp);
	else if (rc == -ENOENT)
		cli_err("cannot unmount %s: fusermount3 not found; install "
			"fuse3 or run as root", mp);
	else
		cli_err("cannot unmount %s: %s", mp, strerror(-rc));
}

/*
 * The daemon answers: ask it to unmount and close, then wait for it to
 * exit.  Its pid comes from the info it gave before the request, so the
 * pidfd names the daemon itself.
 */
static int umount_by_daemon(const char *mp, struct vmfsd_ctl *c,
			    const struct vmfsd_info *info, bool stop_vms)
{
	struct vmfsd_close_status st;
	int rc, pidfd;

	pidfd = umount_pidfd_open(info->pid);
	/* -EAGAIN: the host fenced itself and the VMs it killed are still
	 * ending (vmfsd/ctl.c); they end within moments. */
	for (int waited = 0;; waited += 100) {
		rc = vmfsd_ctl_umount_vms(c, UMOUNT_EXIT_TIMEOUT_MS, stop_vms,
					  &st);
		if (rc || st.err != -EAGAIN || st.unmounted ||
		    waited >= UMOUNT_EXIT_TIMEOUT_MS)
			break;
		poll(NULL, 0, 100);
	}
	vmfsd_ctl_disconnect(c);
	if (rc == -ETIMEDOUT) {
		cli_err("asked vmfsd (pid %d) to unmount %s, but it has not "
			"answered in %d s, so the volume may not be clean yet; see "
			"its log", (int)info->pid, mp, UMOUNT_EXIT_TIMEOUT_MS / 1000);
		goto fail;
	}
	if (rc) {
		cli_err("vmfsd (pid %d) went away without saying whether volume "
			"%s closed cleanly (did it crash?); see its log and run "
			"'vmfs fsck -n %s'", (int)info->pid, info->vol_uuid, info->lun);
		goto fail;
	}
	if (st.err && !st.unmounted) {
		cli_err("%s", st.msg[0] ? st.msg : strerror(-st.err));
		goto fail;
	}
	if (umount_wait_exit(info->pid, pidfd, UMOUNT_EXIT_TIMEOUT_MS)) {
		cli_err("unmounted %s, but vmfsd (pid %d) is still running after "
			"%d s; see its log", mp, (int)info->pid,
			UMOUNT_EXIT_TIMEOUT_MS / 1000);
		goto fail;
	}
	if (pidfd >= 0)
		close(pidfd);
	if (st.err) {
		cli_err("unmounted %s, but the volume did not close cleanly: %s",
			mp, st.msg);
		return CLI_EXIT_FAIL;
	}
	return CLI_EXIT_OK;
fail:
	if (pidfd >= 0)
		close(pidfd);
	return CLI_EXIT_FAIL;
}

int cmd_umount(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "state-dir", required_argument, NULL, 'S' },
		{ "stop-vms",  no_argument,       NULL, 'V' },
		{ "help",      no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	char mp[PATH_MAX], fstype[64];
	struct vmfsd_info info;
	struct vmfsd_ctl *ctl;
	bool dead, stop_vms = false;
	struct stat st;
	int c, rc;

	while ((c = getopt_long(argc, argv, ":S:Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'S':
			break;      /* the daemon is found by its mount point now */
		case 'V':
			stop_vms = true;
			break;
		case 'h':
			help_umount();
			return CLI_EXIT_OK;
		default:
			return cli_getopt_err(c, argv);
		}
	}
	if (optind == argc)
		return cli_usage_err("missing MOUNTPOINT");
	if (argc - optind > 1)
		return cli_usage_err("unexpected argument '%s'", argv[optind + 1]);
	if (!mount_abspath(argv[optind], mp, sizeof(mp))) {
		cli_err("%s: path too long", argv[optind]);
		return CLI_EXIT_FAIL;
	}

	rc = cli_daemon_open(mp, &ctl, &info);
	if (!rc)
		return umount_by_daemon(mp, ctl, &info, stop_vms);
	if (rc != -ENOENT)
		return CLI_EXIT_FAIL;

	/* No daemon answers: undo what is left of the mount ourselves.  A
	 * FUSE mount whose daemon died answers every call with ENOTCONN. */
	dead = stat(mp, &st) && errno == ENOTCONN;
	if (!mount_is_mounted(mp, fstype, sizeof(fstype))) {
		cli_err("%s is not mounted", mp);
		return CLI_EXIT_FAIL;
	}
	rc = vfuse_umount_path(mp);
	if (rc) {
		umount_failed(mp, rc);
		return CLI_EXIT_FAIL;
	}
	if (dead) {
		cli_err("the vmfsd serving %s had died (killed or crashed), so "
			"the volume was not closed: detached the dead mount.  The "
			"next mount of the volume replays its journal; 'vmfs fsck "
			"-n LUN' checks it before then", mp);
		return CLI_EXIT_FAIL;
	}
	fprintf(stderr, "%s: warning: unmounted %s (%s), but no vmfsd answered "
		"on its control socket (one in another network namespace is out "
		"of reach), so did not wait for the volume to be released\n",
		cli_prog(), mp, fstype);
	return CLI_EXIT_OK;
}
