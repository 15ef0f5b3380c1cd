/*
 * vmfsd: the per-host daemon that serves one vmfs volume through FUSE.
 *
 *   vmfsd --lun LUN --mountpoint DIR [--state-dir DIR] [--foreground]
 *         [--ready-fd N] [--log-file PATH] [--debug] [--threads N]
 *         [--commit-ms MS] [--lease-ms MS] [--cache-size SIZE]
 *         [--vm-memory SIZE]
 *         [--host-name NAME]
 *         [--lock-primitive P] [--ro] [--no-cluster]
 *
 * This file: the command line, detaching, and the launcher that reports
 * how start-up went.  Start-up: detach (unless --foreground), open the
 * LUN, read the volume header for its uuid, claim the volume in the host
 * state DB (one mount per volume per host), open the volume, mount it,
 * open the control socket, then say "ok\n" on the ready fd, or
 * "error: <what to do>\n" and exit 1.  `vmfs mount` starts us with a pipe
 * as --ready-fd and prints what comes through it.  Detaching comes first,
 * so that every failure reaches the caller the same way and the pid
 * recorded in the host state DB is the daemon's own.
 *
 * Shutdown (loop.c): SIGTERM, SIGINT and SIGHUP, an unmount from outside
 * (umount, fusermount3 -u) or a umount request on the control socket
 * (`vmfs umount`) end the FUSE session; then the volume is closed (its
 * metadata flushed), the claim released, and the exit status is 0 when
 * all of that went cleanly.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include "vmfs/log.h"

#include "vmfs/fuse.h"
#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"
#include "vmfs/version.h"
#include "vmfs/vmfsd.h"
#include "vmfsd_int.h"

static void vmfsd_help(void)
{
	printf("usage: vmfsd --lun LUN --mountpoint DIR [options]\n\n"
	       "Serve the vmfs volume on LUN through FUSE at the existing directory DIR,\n"
	       "until it is unmounted or vmfsd gets SIGTERM, SIGINT or SIGHUP.  One vmfsd\n"
	       "runs per mounted volume; 'vmfs mount' is the usual way to start it.\n"
	       "'vmfs info DIR' and 'vmfs umount DIR' talk to it over its control socket\n"
	       "(root and vmfsd's own user only; abstract, so from the same network\n"
	       "namespace).\n\n"
	       "Options:\n"
	       "  --lun LUN           block device, regular file or file:PATH holding the volume\n"
	       "  --mountpoint DIR    directory to mount the volume on\n"
	       "  --state-dir DIR     host state directory: the host's identity and its\n"
	       "                      mounts (default %s)\n"
	       "  --foreground        do not detach; log to stderr\n"
	       "  --ready-fd N        write \"ok\" or \"error: <reason>\" and a newline to\n"
	       "                      file descriptor N once the volume is mounted or cannot be\n"
	       "  --log-file PATH     append the daemon log (warnings and progress) to PATH\n"
	       "  --debug             log debug messages and every FUSE request too\n"
	       "  --threads N         FUSE worker threads, 1 to %d (default %d)\n"
	       "  --commit-ms MS      commit the metadata journal at least every MS\n"
	       "                      milliseconds, 10 to 60000 (default 1000)\n"
	       "  --cache-size SIZE   memory budget of the directory indexes and pointer\n"
	       "                      blocks (inodes the kernel holds come on top): bytes\n"
	       "                      or with a K, M, G or T suffix, at least 1M\n"
	       "                      (default 256M)\n"
	       "  --lease-ms MS       the heartbeat lease this host advertises, %u to\n"
	       "                      %u (default: the volume's, 10000); every timer,\n"
	       "                      the self-fence included, follows from it\n"
	       "  --host-name NAME    name this host in heartbeats, logs, 'vmfs hosts' and\n"
	       "                      'vmfs locks'; kept in the state directory for later\n"
	       "                      mounts (default: the stored name, else the machine's\n"
	       "                      hostname)\n"
	       "  --lock-primitive P  ats, reserve or auto (default auto: ATS when the LUN\n"
	       "                      has COMPARE AND WRITE, else SCSI-2 reservations)\n"
	       "  --ro                mount read-only: write nothing to the volume but this\n"
	       "                      host's heartbeat slot; refused while a journal holds\n"
	       "                      transactions to replay\n"
	       "  --vm-memory SIZE    memory this host gives VMs, less what the VMs it\n"
	       "                      runs are configured with (and never more than the\n"
	       "                      kernel's MemAvailable), is advertised in its\n"
	       "                      heartbeat for the HA placement of other hosts' VMs:\n"
	       "                      bytes or with a K, M, G or T suffix, at least 1M\n"
	       "                      (default: the machine's MemTotal)\n"
	       "  --no-cluster        do not join the volume's corosync CPG group: share\n"
	       "                      the volume through the disk alone (by default vmfsd\n"
	       "                      joins it whenever corosync runs on this host, and\n"
	       "                      follows corosync going away and coming back)\n"
	       "  --disk-asks on|off  keep locks between operations also while a host\n"
	       "                      cannot ask for them over corosync: such hosts\n"
	       "                      ask through their heartbeat slots (default on;\n"
	       "                      off: without corosync every operation lets go of\n"
	       "                      its locks at its end)\n"
	       "  --help              show this help\n"
	       "  --version           show the version (alone on the command line)\n\n"
	       "Notices (mounted, journal replayed, unmounted), warnings and errors also\n"
	       "go to syslog, each naming the volume.  SIGUSR1 writes the in-memory debug\n"
	       "log to STATE_DIR/vmfsd-PID.blackbox; read it with qb-blackbox.\n",
	       VMFSD_DEFAULT_STATE_DIR, VFUSE_MAX_THREADS, VFUSE_DEFAULT_THREADS,
	       HB_MIN_LEASE_MS, HB_MAX_LEASE_MS);
}

void vmfsd_write_all(int fd, const char *s, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(fd, s, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

/* ---- argument parsing ---------------------------------------------------- */

__attribute__((format(printf, 2, 3)))
static int vmfsd_usage_err(const struct vmfsd_args *a, const char *fmt, ...)
{
	char msg[VMFSD_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "vmfsd: %s; see vmfsd --help\n", msg);
	if (a->ready_fd >= 0) {
		char line[VMFSD_MSG_MAX + 32];
		int n = snprintf(line, sizeof(line), "error: %s\n", msg);

		vmfsd_write_all(a->ready_fd, line, (size_t)n < sizeof(line) ?
				(size_t)n : sizeof(line) - 1);
	}
	return VMFSD_EXIT_USAGE;
}

/* Absolute form of path without resolving it: we chdir("/") later, and
 * a path that does not exist yet must keep its meaning. */
static bool vmfsd_abspath(const char *path, char *out, size_t len)
{
	char cwd[PATH_MAX];
	int n;

	if (path[0] == '/')
		n = snprintf(out, len, "%s", path);
	else if (getcwd(cwd, sizeof(cwd)))
		n = snprintf(out, len, "%s/%s", cwd, path);
	else
		return false;
	return n >= 0 && (size_t)n < len;
}

/*
 * A size: digits and an optional binary K, M, G or T (1K = 1024, as
 * `vmfs mount`, which hands us the byte count, reads it), at least min.
 */
static bool vmfsd_parse_size(const char *s, uint64_t min, uint64_t *out)
{
	static const char units[] = "KMGT";
	unsigned long long v;
	unsigned shift = 0;
	const char *u;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return false;
	if (*end && (u = strchr(units, toupper((unsigned char)*end)))) {
		shift = 10 * (unsigned)(u - units + 1);
		end++;
	}
	if (*end || v > (UINT64_MAX >> shift) || (v << shift) < min)
		return false;
	*out = (uint64_t)v << shift;
	return true;
}

static bool vmfsd_parse_uint(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* Returns -1 to go on, or the exit status. */
static int vmfsd_parse_args(int argc, char **argv, struct vmfsd_args *a)
{
	enum { O_LUN = 256, O_MP, O_STATE, O_FG, O_READY, O_LOG, O_DEBUG,
	       O_THREADS, O_COMMIT, O_LEASE, O_CACHE, O_HOST_NAME, O_LOCK_PRIM, O_RO,
	       O_NO_CLUSTER, O_VM_MEM, O_DISK_ASKS };
	static const struct option longopts[] = {
		{ "lun",        required_argument, NULL, O_LUN },
		{ "mountpoint", required_argument, NULL, O_MP },
		{ "state-dir",  required_argument, NULL, O_STATE },
		{ "foreground", no_argument,       NULL, O_FG },
		{ "ready-fd",   required_argument, NULL, O_READY },
		{ "log-file",   required_argument, NULL, O_LOG },
		{ "debug",      no_argument,       NULL, O_DEBUG },
		{ "threads",    required_argument, NULL, O_THREADS },
		{ "commit-ms",  required_argument, NULL, O_COMMIT },
		{ "cache-size", required_argument, NULL, O_CACHE },
		{ "lease-ms",   required_argument, NULL, O_LEASE },
		{ "host-name",  required_argument, NULL, O_HOST_NAME },
		{ "lock-primitive", required_argument, NULL, O_LOCK_PRIM },
		{ "ro",         no_argument,       NULL, O_RO },
		{ "no-cluster", no_argument,       NULL, O_NO_CLUSTER },
		{ "vm-memory",  required_argument, NULL, O_VM_MEM },
		{ "disk-asks",  required_argument, NULL, O_DISK_ASKS },
		{ "help",       no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *state_dir = VMFSD_DEFAULT_STATE_DIR;
	const char *bad;
	long v;
	int c;

	memset(a, 0, sizeof(*a));
	a->ready_fd = -1;
	a->threads = VFUSE_DEFAULT_THREADS;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case O_LUN:
			if (lun_spec_abspath(optarg, a->lun, sizeof(a->lun)))
				return vmfsd_usage_err(a, "--lun '%s': not a usable LUN name",
						       optarg);
			a->have_lun = true;
			break;
		case O_MP:
			if (!*optarg || !vmfsd_abspath(optarg, a->mountpoint,
						       sizeof(a->mountpoint)))
				return vmfsd_usage_err(a, "--mountpoint '%s': not a usable path",
						       optarg);
			a->have_mountpoint = true;
			break;
		case O_STATE:
			state_dir = optarg;
			break;
		case O_FG:
			a->foreground = true;
			break;
		case O_READY:
			if (!vmfsd_parse_uint(optarg, 0, INT_MAX, &v) ||
			    fcntl((int)v, F_GETFD) < 0)
				return vmfsd_usage_err(a, "--ready-fd %s: not an open file descriptor",
						       optarg);
			a->ready_fd = (int)v;
			break;
		case O_LOG:
			if (!*optarg || !vmfsd_abspath(optarg, a->log_file,
						       sizeof(a->log_file)))
				return vmfsd_usage_err(a, "--log-file '%s': not a usable path",
						       optarg);
			a->have_log_file = true;
			break;
		case O_DEBUG:
			a->debug = true;
			break;
		case O_THREADS:
			if (!vmfsd_parse_uint(optarg, 1, VFUSE_MAX_THREADS, &v))
				return vmfsd_usage_err(a, "--threads %s: must be a number from 1 to %d",
						       optarg, VFUSE_MAX_THREADS);
			a->threads = (unsigned)v;
			break;
		case O_COMMIT:
			if (!vmfsd_parse_uint(optarg, 10, 60000, &v))
				return vmfsd_usage_err(a, "--commit-ms %s: must be a number of milliseconds from 10 to 60000",
						       optarg);
			a->commit_ms = (unsigned)v;
			break;
		case O_CACHE:
			if (!vmfsd_parse_size(optarg, VMFSD_CACHE_MIN_BYTES,
					      &a->cache_bytes))
				return vmfsd_usage_err(a, "--cache-size %s: must be a size of at least 1M (bytes, or with a K, M, G or T suffix)",
						       optarg);
			break;
		case O_VM_MEM:
			if (!vmfsd_parse_size(optarg, 1 << 20, &a->vm_mem_bytes))
				return vmfsd_usage_err(a, "--vm-memory %s: must be a size of at least 1M (bytes, or with a K, M, G or T suffix), e.g. 16G",
						       optarg);
			break;
		case O_LEASE:
			if (!vmfsd_parse_uint(optarg, HB_MIN_LEASE_MS,
					      HB_MAX_LEASE_MS, &v))
				return vmfsd_usage_err(a, "--lease-ms %s: must be a number of milliseconds from %u to %u",
						       optarg, HB_MIN_LEASE_MS,
						       HB_MAX_LEASE_MS);
			a->lease_ms = (unsigned)v;
			break;
		case O_HOST_NAME:
			if (!vmfsd_host_name_valid(optarg))
				return vmfsd_usage_err(a, "--host-name '%.100s': "
						       VMFSD_HOST_NAME_RULE, optarg);
			snprintf(a->host_name, sizeof(a->host_name), "%s", optarg);
			break;
		case O_LOCK_PRIM:
			if (lock_prim_parse(optarg, &a->lock_prim))
				return vmfsd_usage_err(a, "--lock-primitive '%.100s': "
						       "must be ats, reserve or auto",
						       optarg);
			break;
		case O_RO:
			a->ro = true;
			break;
		case O_NO_CLUSTER:
			a->no_cluster = true;
			break;
		case O_DISK_ASKS:
			if (strcmp(optarg, "on") && strcmp(optarg, "off"))
				return vmfsd_usage_err(a, "--disk-asks '%.100s': must be on or off",
						       optarg);
			a->no_disk_asks = !strcmp(optarg, "off");
			break;
		case 'h':
			vmfsd_help();
			return VMFSD_EXIT_OK;
		case ':':
			return vmfsd_usage_err(a, "option '%s' needs an argument",
					       argv[optind - 1]);
		default:
			if (optopt)
				return vmfsd_usage_err(a, "unknown option '-%c'", optopt);
			bad = argv[optind - 1];
			return vmfsd_usage_err(a, "unknown option '%.*s'",
					       (int)strcspn(bad, "="), bad);
		}
	}
	if (optind < argc)
		return vmfsd_usage_err(a, "unexpected argument '%s'", argv[optind]);
	if (!a->have_lun || !a->have_mountpoint)
		return vmfsd_usage_err(a, "missing %s", !a->have_lun ?
				       (!a->have_mountpoint ? "--lun and --mountpoint" : "--lun")
				       : "--mountpoint");
	if (!*state_dir || !vmfsd_abspath(state_dir, a->state_dir,
					  sizeof(a->state_dir)))
		return vmfsd_usage_err(a, "--state-dir '%s': not a usable path",
				       state_dir);
	return -1;
}

/* ---- detaching ------------------------------------------------------------ */

static volatile sig_atomic_t vmfsd_launcher_sig;

static void vmfsd_launcher_on_signal(int sig)
{
	vmfsd_launcher_sig = sig;
}

/*
 * The process that was started waits for the daemon's verdict and passes
 * it on: to the caller's --ready-fd, or to stderr for a person who ran
 * vmfsd by hand; its exit status says the same (0 mounted, 1 not).  The
 * daemon first sends "pid N\n", so that a caller who gives up on us and
 * sends SIGTERM stops the daemon rather than only this launcher.
 */
static int vmfsd_launcher(int rfd, pid_t child, int ready_fd)
{
	struct sigaction sa;
	char buf[VMFSD_MSG_MAX + 64], *line, *nl;
	size_t used = 0;
	long daemon_pid = 0;
	bool killed = false, ok = false, have_verdict = false;
	ssize_t n;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = vmfsd_launcher_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	for (;;) {
		if (vmfsd_launcher_sig && !killed && daemon_pid > 0) {
			kill((pid_t)daemon_pid, SIGTERM);
			killed = true;
		}
		n = read(rfd, buf + used, sizeof(buf) - 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		used += (size_t)n;
		buf[used] = '\0';
		while ((nl = strchr(buf, '\n')) != NULL) {
			*nl = '\0';
			line = buf;
			if (!strncmp(line, "pid ", 4)) {
				daemon_pid = strtol(line + 4, NULL, 10);
			} else if (!have_verdict) {
				have_verdict = true;
				ok = !strcmp(line, "ok");
				if (!killed && ready_fd >= 0)
					dprintf(ready_fd, "%s\n", line);
				else if (!killed && !ok)
					fprintf(stderr, "vmfsd: %s\n",
						strncmp(line, "error: ", 7) ? line : line + 7);
			}
			used -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, used + 1);
		}
		if (used == sizeof(buf) - 1)
			used = 0;   /* an over-long line is not ours */
		if (have_verdict)
			break;
	}
	waitpid(child, NULL, 0);
	if (!have_verdict) {
		const char *why = "vmfsd exited before the volume was mounted; "
				  "run it with --foreground to see why";

		if (ready_fd >= 0)
			dprintf(ready_fd, "error: %s\n", why);
		else
			fprintf(stderr, "vmfsd: %s\n", why);
	}
	return ok && !killed ? VMFSD_EXIT_OK : VMFSD_EXIT_FAIL;
}

/*
 * Double fork: the daemon is not a session leader and can never regain a
 * terminal.  Returns in the daemon, with a->ready_fd now the pipe to the
 * launcher; the launcher and the middle process exit here.
 */
static void vmfsd_daemonize(struct vmfsd_args *a)
{
	int pfd[2], nullfd;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC)) {
		fprintf(stderr, "vmfsd: cannot create a pipe: %s\n", strerror(errno));
		exit(VMFSD_EXIT_FAIL);
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "vmfsd: cannot fork: %s\n", strerror(errno));
		exit(VMFSD_EXIT_FAIL);
	}
	if (pid > 0) {
		close(pfd[1]);
		exit(vmfsd_launcher(pfd[0], pid, a->ready_fd));
	}

	close(pfd[0]);
	if (a->ready_fd >= 0)
		close(a->ready_fd);    /* the launcher passes our word on */
	a->ready_fd = pfd[1];
	if (setsid() < 0)
		_exit(VMFSD_EXIT_FAIL);
	pid = fork();
	if (pid < 0) {
		dprintf(pfd[1], "error: cannot fork: %s\n", strerror(errno));
		_exit(VMFSD_EXIT_FAIL);
	}
	if (pid > 0)
		_exit(VMFSD_EXIT_OK);

	dprintf(pfd[1], "pid %ld\n", (long)getpid());
	if (chdir("/"))
		_exit(VMFSD_EXIT_FAIL);
	umask(022);
	nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nullfd >= 0) {
		dup2(nullfd, STDIN_FILENO);
		dup2(nullfd, STDOUT_FILENO);
		dup2(nullfd, STDERR_FILENO);
		if (nullfd > STDERR_FILENO)
			close(nullfd);
	}
}

int main(int argc, char **argv)
{
	struct vmfsd_args a;
	int ret;

	if (argc == 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))) {
		printf("vmfsd %s\n", VMFS_VERSION_LINE);
		return VMFSD_EXIT_OK;
	}
	if (argc >= 2 && !strcmp(argv[1], "--mount-io"))
		return vmfsd_mio_main(argc, argv);
	ret = vmfsd_parse_args(argc, argv, &a);
	if (ret >= 0)
		return ret;
	/* Before daemonizing: a relative path is made absolute here. */
	if (getenv("VMFS_CHAP_FILE") && *getenv("VMFS_CHAP_FILE") &&
	    lun_set_chap_file(getenv("VMFS_CHAP_FILE"))) {
		fprintf(stderr, "vmfsd: out of memory\n");
		return VMFSD_EXIT_FAIL;
	}
	if (!a.foreground)
		vmfsd_daemonize(&a);

	vmfsd_signals_setup();
	ret = vmfsd_log_setup(&a);
	if (ret) {
		struct vmfsd d = { .a = &a };

		/* Reaches stderr too with --foreground. */
		vmfsd_fail(&d, "cannot open the log file %s: %s", a.log_file,
			   strerror(-ret));
		qb_log_fini();
		return VMFSD_EXIT_FAIL;
	}
	ret = vmfsd_serve(&a);
	qb_log_fini();
	return ret;
}
