/*
 * vmfsd: the per-host daemon that serves one vmfs volume through FUSE.
 *
 *   vmfsd --lun LUN --mountpoint DIR [--state-dir DIR] [--foreground]
 *         [--ready-fd N] [--log-file PATH] [--debug] [--threads N]
 *         [--commit-ms MS]
 *
 * Start-up: detach (unless --foreground), open the LUN, read the volume
 * header for its uuid, claim the volume in the host state DB (one mount
 * per volume per host), open the volume, mount it, then say "ok\n" on the
 * ready fd, or "error: <what to do>\n" and exit 1.  `vmfs mount` starts us
 * with a pipe as --ready-fd and prints what comes through it.  Detaching
 * comes first, so that every failure reaches the caller the same way and
 * the pid recorded in the host state DB is the daemon's own.
 *
 * Shutdown: SIGTERM, SIGINT and SIGHUP, or an unmount from outside
 * (umount, fusermount3 -u, vmfs umount), end the FUSE loop; then the
 * volume is closed (its metadata flushed), the claim released, and the
 * exit status is 0 when all of that went cleanly.
 *
 * Logging policy (libqb qb_log, the one facility of the daemon and of the
 * library code it runs):
 *   LOG_ERR      should never happen (corrupt metadata, failed I/O, a
 *                broken lock protocol): syslog, and the daemon log;
 *   LOG_WARNING  the operator should know (a mount refused, a peer gone):
 *                the daemon log (--log-file; stderr with --foreground);
 *   LOG_INFO     lifecycle (mounted, parameters, unmounted): daemon log;
 *   LOG_DEBUG    everything else: only the in-memory blackbox ring, unless
 *                --debug; SIGUSR1 writes the ring to
 *                STATE_DIR/vmfsd-PID.blackbox (read it with qb-blackbox).
 * The blackbox receives every message, so a dump shows the context of an
 * error, not just the debug lines.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <qb/qblog.h>

#include "vmfs/format.h"
#include "vmfs/fuse.h"
#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"
#include "vmfs/version.h"
#include "vmfs/vmfsd.h"
#include "vmfs/vol.h"

#define VMFSD_EXIT_OK    0
#define VMFSD_EXIT_FAIL  1
#define VMFSD_EXIT_USAGE 2

#define VMFSD_BLACKBOX_BYTES (4u << 20)
#define VMFSD_MSG_MAX 4096

struct vmfsd_args {
	char lun[PATH_MAX];        /* fits vmfsd_mount_rec.lun */
	char mountpoint[PATH_MAX];
	char state_dir[PATH_MAX];
	char log_file[PATH_MAX];
	bool have_lun, have_mountpoint, have_log_file;
	bool foreground;
	bool debug;
	int ready_fd;             /* -1: none */
	unsigned threads;
	unsigned commit_ms;
};

static struct vfuse *volatile vmfsd_fuse;
static volatile sig_atomic_t vmfsd_signal;

static void vmfsd_help(void)
{
	printf("usage: vmfsd --lun LUN --mountpoint DIR [options]\n\n"
	       "Serve the vmfs volume on LUN through FUSE at the existing directory DIR,\n"
	       "until it is unmounted or vmfsd gets SIGTERM, SIGINT or SIGHUP.  One vmfsd\n"
	       "runs per mounted volume; 'vmfs mount' is the usual way to start it.\n\n"
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
	       "  --help              show this help\n"
	       "  --version           show the version (alone on the command line)\n\n"
	       "Errors also go to syslog.  SIGUSR1 writes the in-memory debug log to\n"
	       "STATE_DIR/vmfsd-PID.blackbox; read it with qb-blackbox.\n",
	       VMFSD_DEFAULT_STATE_DIR, VFUSE_MAX_THREADS, VFUSE_DEFAULT_THREADS);
}

/* ---- argument parsing ---------------------------------------------------- */

static void vmfsd_write_all(int fd, const char *s, size_t len)
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
	       O_THREADS, O_COMMIT };
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

/* ---- logging --------------------------------------------------------------- */

/* Gone, or a zombie nobody has reaped yet (daemons are reparented). */
static bool vmfsd_pid_gone(long pid)
{
	char path[64], buf[256], *p;
	FILE *f;
	bool gone = false;

	if (kill((pid_t)pid, 0) != 0)
		return errno == ESRCH;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) && p[1] == ' ')
		gone = p[2] == 'Z';
	fclose(f);
	return gone;
}

/*
 * libqb keeps the blackbox ring in /dev/shm (qb-vmfsd-PID-blackbox-*) and
 * removes it at a clean exit; a vmfsd that was killed leaves 4 MiB
 * behind.  Sweep the rings of vmfsd PIDs that no longer run (a PID reused
 * by another program keeps its files).
 */
static void vmfsd_blackbox_sweep(void)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[300];
		long pid;
		int n = 0;

		if (sscanf(e->d_name, "qb-vmfsd-%ld-blackbox-%n", &pid, &n) != 1 ||
		    !n || pid <= 0 || !vmfsd_pid_gone(pid))
			continue;
		snprintf(path, sizeof(path), "/dev/shm/%s", e->d_name);
		unlink(path);
	}
	closedir(d);
}

static int vmfsd_log_setup(const struct vmfsd_args *a)
{
	int level = a->debug ? LOG_DEBUG : LOG_INFO;
	int32_t t;

	qb_log_init("vmfsd", LOG_DAEMON, LOG_INFO);
	qb_log_filter_ctl(QB_LOG_SYSLOG, QB_LOG_FILTER_CLEAR_ALL,
			  QB_LOG_FILTER_FILE, "*", LOG_TRACE);
	qb_log_filter_ctl(QB_LOG_SYSLOG, QB_LOG_FILTER_ADD,
			  QB_LOG_FILTER_FILE, "*", LOG_ERR);
	qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, QB_TRUE);

	vmfsd_blackbox_sweep();
	qb_log_ctl(QB_LOG_BLACKBOX, QB_LOG_CONF_SIZE, VMFSD_BLACKBOX_BYTES);
	qb_log_ctl(QB_LOG_BLACKBOX, QB_LOG_CONF_ENABLED, QB_TRUE);
	qb_log_filter_ctl(QB_LOG_BLACKBOX, QB_LOG_FILTER_ADD,
			  QB_LOG_FILTER_FILE, "*", LOG_DEBUG);

	if (a->foreground) {
		qb_log_filter_ctl(QB_LOG_STDERR, QB_LOG_FILTER_ADD,
				  QB_LOG_FILTER_FILE, "*", level);
		qb_log_format_set(QB_LOG_STDERR, "%N: %b");
		qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_TRUE);
	}
	if (a->have_log_file) {
		t = qb_log_file_open(a->log_file);
		if (t < 0)
			return t;
		qb_log_filter_ctl(t, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE,
				  "*", level);
		qb_log_format_set(t, "%t %N[%P] %p: %b");
		qb_log_ctl(t, QB_LOG_CONF_ENABLED, QB_TRUE);
	}
	return 0;
}

/* SIGUSR1: write the blackbox ring out.  Runs on its own thread, so the
 * file I/O happens outside any signal handler. */
static void *vmfsd_blackbox_thread(void *arg)
{
	const struct vmfsd_args *a = arg;
	char path[PATH_MAX + 64];
	sigset_t set;
	ssize_t n;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	snprintf(path, sizeof(path), "%s/vmfsd-%ld.blackbox", a->state_dir,
		 (long)getpid());
	for (;;) {
		if (sigwait(&set, &sig))
			continue;
		n = qb_log_blackbox_write_to_file(path);
		if (n < 0)
			qb_log(LOG_WARNING, "cannot write the debug log to %s: %s",
			       path, strerror((int)-n));
		else
			qb_log(LOG_INFO, "wrote the debug log to %s (%zd bytes); "
			       "read it with qb-blackbox", path, n);
	}
	return NULL;
}

/* ---- signals ---------------------------------------------------------------- */

static void vmfsd_on_signal(int sig)
{
	struct vfuse *f = vmfsd_fuse;

	vmfsd_signal = sig;
	if (f)
		vfuse_stop(f);
}

static void vmfsd_stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

/*
 * Before any thread exists: the stop signals get a handler and are
 * blocked, and so stay blocked in every thread the LUN and the engine
 * start.  Only the thread in vfuse_run() unblocks them, so the handler
 * runs there and interrupts libfuse's wait at once (see vfuse_stop()).
 * A signal that comes during start-up waits, pending, until then.
 */
static void vmfsd_signals_setup(void)
{
	struct sigaction sa;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = vmfsd_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	vmfsd_stop_signals(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static bool vmfsd_stop_pending(void)
{
	sigset_t p;

	if (sigpending(&p))
		return false;
	return sigismember(&p, SIGTERM) == 1 || sigismember(&p, SIGINT) == 1 ||
	       sigismember(&p, SIGHUP) == 1;
}

/* ---- serving ------------------------------------------------------------------ */

struct vmfsd {
	struct vmfsd_args *a;
	struct lun *lun;
	struct lun *hb_lun;	/* own handle: heartbeat I/O has a short timeout */
	struct hb *hb;
	struct vmfsd_host *host;
	struct vol *vol;
	struct vfuse *fuse;
	bool claimed;
	char uuid[37];
	char host_uuid[37];
};

/* Say why we cannot serve, to the log and to whoever waits for us. */
__attribute__((format(printf, 2, 3)))
static void vmfsd_fail(struct vmfsd *d, const char *fmt, ...)
{
	char msg[VMFSD_MSG_MAX], line[VMFSD_MSG_MAX + 16];
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	qb_log(LOG_WARNING, "%s", msg);
	if (d->a->ready_fd >= 0) {
		n = snprintf(line, sizeof(line), "error: %s\n", msg);
		vmfsd_write_all(d->a->ready_fd, line,
				(size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
		close(d->a->ready_fd);
		d->a->ready_fd = -1;
	}
}

static void vmfsd_ready(struct vmfsd *d)
{
	if (d->a->ready_fd < 0)
		return;
	vmfsd_write_all(d->a->ready_fd, "ok\n", 3);
	close(d->a->ready_fd);
	d->a->ready_fd = -1;
}

/* Major format version in the primary header, for the upgrade message. */
static unsigned vmfsd_disk_major(struct lun *lun)
{
	struct vmfs_volume vh;
	unsigned major = 0;
	void *buf;

	buf = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	if (!buf)
		return 0;
	if (lun_read(lun, buf, VMFS_MD_BLOCK_SIZE, 0) == 0) {
		struct fmt_hdr h;

		memcpy(&vh, buf, sizeof(vh));
		fmt_hdr_decode(&vh.vh_hdr, &h);
		major = h.major;
	}
	lun_buf_free(buf);
	return major;
}

static int vmfsd_read_header(struct vmfsd *d, struct vol_geom *g)
{
	const char *lun = d->a->lun;
	uint32_t magic = 0;
	int ret;

	ret = vol_geom_read(d->lun, g, NULL, &magic);
	if (ret == -VMFS_E_NOT_VOLUME)
		vmfsd_fail(d, "%s is not a vmfs volume (bad magic 0x%08x at "
			   "offset 0); run 'vmfs mkfs %s' to create one",
			   lun, magic, lun);
	else if (ret == -VMFS_E_BAD_VERSION)
		vmfsd_fail(d, "volume format is newer than this vmfsd "
			   "understands (major %u); upgrade vmfs",
			   vmfsd_disk_major(d->lun));
	else if (ret)
		vmfsd_fail(d, "cannot read the volume header of %s: %s; run "
			   "'vmfs fsck %s'", lun, vmfs_strerror(ret), lun);
	return ret;
}

static int vmfsd_claim(struct vmfsd *d)
{
	struct vmfsd_mount_rec rec, existing;
	uint8_t hu[VMFS_UUID_SIZE];
	struct timespec now;
	int ret;

	ret = vmfsd_host_open(d->a->state_dir, &d->host);
	if (ret) {
		vmfsd_fail(d, "cannot open the host state in %s: %s",
			   d->a->state_dir, vmfs_strerror(ret));
		return ret;
	}
	vmfsd_host_uuid(d->host, hu);
	vol_uuid_format(hu, d->host_uuid);

	memset(&rec, 0, sizeof(rec));
	snprintf(rec.vol_uuid, sizeof(rec.vol_uuid), "%s", d->uuid);
	snprintf(rec.lun, sizeof(rec.lun), "%s", d->a->lun);
	snprintf(rec.mountpoint, sizeof(rec.mountpoint), "%s", d->a->mountpoint);
	rec.pid = getpid();
	clock_gettime(CLOCK_REALTIME, &now);
	rec.since_ns = (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;

	ret = vmfsd_host_claim(d->host, &rec, &existing);
	if (ret == -EBUSY) {
		char pid[24] = "unknown";

		if (existing.pid > 0)
			snprintf(pid, sizeof(pid), "%ld", (long)existing.pid);
		vmfsd_fail(d, "volume %s (%s) is already mounted by this host "
			   "on %s (vmfsd pid %s)", d->uuid, d->a->lun,
			   existing.mountpoint[0] ? existing.mountpoint : "?",
			   pid);
	} else if (ret) {
		vmfsd_fail(d, "cannot record the mount of volume %s in %s: %s",
			   d->uuid, d->a->state_dir, vmfs_strerror(ret));
	} else {
		d->claimed = true;
	}
	return ret;
}

static int vmfsd_check_mountpoint(struct vmfsd *d)
{
	const char *mp = d->a->mountpoint;
	char real[PATH_MAX];
	struct stat st;

	if (stat(mp, &st)) {
		if (errno == ENOENT)
			vmfsd_fail(d, "mount point %s does not exist; create it "
				   "with mkdir -p %s", mp, mp);
		else
			vmfsd_fail(d, "mount point %s: %s", mp, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		vmfsd_fail(d, "mount point %s is not a directory", mp);
		return -1;
	}
	/* The host state records the canonical path; `vmfs umount` finds it. */
	if (realpath(mp, real))
		snprintf(d->a->mountpoint, sizeof(d->a->mountpoint), "%s", real);
	return 0;
}

/*
 * The heartbeat fenced its handle: fence the data handle too, so nothing
 * this host still has queued reaches the volume.  Every FUSE call fails
 * with EIO from here on; the admin unmounts and mounts again.
 */
static void vmfsd_on_fence(void *ctx, const char *why)
{
	struct vmfsd *d = ctx;

	lun_fence(d->lun);
	qb_log(LOG_CRIT, "volume %s fenced: %s; all I/O now fails, unmount "
	       "and mount again once the LUN is reachable", d->uuid, why);
}

/*
 * Until on-disk locks arbitrate between hosts, a volume is served by one
 * host at a time: refuse while another host's heartbeat is live.  Slots of
 * other hosts are watched only when one is active (a lease and a renewal,
 * about 6 s); a crashed host's slot stops moving and does not block.
 */
static int vmfsd_single_host(struct vmfsd *d, const struct vol_geom *g,
			     const uint8_t *hu)
{
	struct hb_slot_info *si = calloc(g->max_hosts, sizeof(*si));
	bool others = false;
	uint32_t n, i;
	int ret;

	if (!si)
		return -ENOMEM;
	ret = hb_survey(d->hb_lun, g->hb_offset, false, si, g->max_hosts, &n);
	for (i = 0; !ret && i < n; i++)
		others |= memcmp(si[i].host_uuid, hu, VMFS_UUID_SIZE) != 0;
	if (!ret && others) {
		qb_log(LOG_INFO, "another host holds a heartbeat slot of volume "
		       "%s; checking whether it is alive", d->uuid);
		ret = hb_survey(d->hb_lun, g->hb_offset, true, si,
				g->max_hosts, &n);
	}
	for (i = 0; !ret && i < n; i++) {
		char u[37];

		if (!si[i].live || !memcmp(si[i].host_uuid, hu, VMFS_UUID_SIZE))
			continue;
		vol_uuid_format(si[i].host_uuid, u);
		vmfsd_fail(d, "volume %s is mounted by host %s (%s, heartbeat "
			   "slot %u, live); this version serves a volume from "
			   "one host at a time: unmount it there first",
			   d->uuid, u, si[i].hostname[0] ? si[i].hostname : "?",
			   si[i].slot);
		ret = -EBUSY;
	}
	if (ret && ret != -EBUSY)
		vmfsd_fail(d, "cannot read the heartbeat region of volume %s: "
			   "%s; run 'vmfs fsck %s'", d->uuid, vmfs_strerror(ret),
			   d->a->lun);
	free(si);
	return ret;
}

/* Take a heartbeat slot on its own LUN handle. */
static int vmfsd_join(struct vmfsd *d, const struct vol_geom *g)
{
	struct hb_timeouts t;
	struct hb_opts o;
	uint8_t hu[VMFS_UUID_SIZE];
	char host[65] = "";
	int ret;

	ret = lun_open(d->a->lun, 0, &d->hb_lun);
	if (ret) {
		vmfsd_fail(d, "cannot open LUN %s: %s", d->a->lun,
			   vmfs_strerror(ret));
		return ret;
	}
	vmfsd_host_uuid(d->host, hu);
	ret = vmfsd_single_host(d, g, hu);
	if (ret)
		return ret;
	gethostname(host, sizeof(host) - 1);
	memset(&o, 0, sizeof(o));
	o.host_uuid = hu;
	o.hostname = host;
	o.journal_offset = g->journal_offset;
	o.journal_size = g->journal_size_bytes;
	o.on_fence = vmfsd_on_fence;
	o.ctx = d;
	ret = hb_join(d->hb_lun, g->hb_offset, &o, &d->hb);
	if (ret == -EUSERS) {
		vmfsd_fail(d, "all %u host slots of volume %s are in use by "
			   "live or crashed hosts; unmount it elsewhere, or run "
			   "'vmfs fsck' to free the slots of hosts that are gone",
			   g->max_hosts, d->uuid);
		return ret;
	}
	if (ret) {
		vmfsd_fail(d, "cannot join the heartbeat of volume %s: %s",
			   d->uuid, vmfs_strerror(ret));
		return ret;
	}
	hb_timeouts_get(d->hb, &t);
	lun_set_io_timeout(d->hb_lun, t.io_timeout_ms);
	qb_log(LOG_INFO, "heartbeat slot %u generation %llu: lease %u ms, "
	       "renew %u ms, I/O timeout %u ms, self-fence after %u ms",
	       hb_slot_index(d->hb), (unsigned long long)hb_generation(d->hb),
	       t.lease_ms, t.renew_ms, t.io_timeout_ms, t.fence_ms);
	return 0;
}

static bool vmfsd_stopped_early(struct vmfsd *d)
{
	if (!vmfsd_stop_pending())
		return false;
	vmfsd_fail(d, "stopped by a signal before %s was mounted",
		   d->a->mountpoint);
	return true;
}

static int vmfsd_start(struct vmfsd *d)
{
	struct vfuse_opts fo;
	struct vol_geom g;
	struct vol_open_opts oo = { 0 };
	int ret;

	if (vmfsd_check_mountpoint(d))
		return -1;
	ret = lun_open(d->a->lun, 0, &d->lun);
	if (ret) {
		vmfsd_fail(d, "cannot open LUN %s: %s", d->a->lun,
			   vmfs_strerror(ret));
		return ret;
	}
	ret = vmfsd_read_header(d, &g);
	if (ret)
		return ret;
	vol_uuid_format(g.uuid, d->uuid);
	ret = vmfsd_claim(d);
	if (ret)
		return ret;
	if (vmfsd_stopped_early(d))
		return -1;
	ret = vmfsd_join(d, &g);
	if (ret)
		return ret;

	/*
	 * No other host is live (vmfsd_join checked), so every dirty journal
	 * is ours to replay; then this host journals into its own slot.
	 */
	oo.journal_slot = hb_slot_index(d->hb);
	oo.commit_ms = d->a->commit_ms;
	ret = vol_open_ex(d->lun, &oo, &d->vol);
	if (ret) {
		vmfsd_fail(d, "cannot open volume %s on %s: %s; run 'vmfs fsck "
			   "%s'", d->uuid, d->a->lun, vmfs_strerror(ret),
			   d->a->lun);
		return ret;
	}
	if (vmfsd_stopped_early(d))
		return -1;

	vfuse_opts_init(&fo);
	fo.mountpoint = d->a->mountpoint;
	fo.fsname = d->a->lun;
	fo.max_threads = d->a->threads;
	fo.debug = d->a->debug;
	/* Root's mount serves every user, as a disk file system does; the
	 * kernel enforces modes (default_permissions). */
	fo.allow_other = geteuid() == 0;
	ret = vfuse_mount(d->vol, &fo, &d->fuse);
	if (ret) {
		vmfsd_fail(d, "cannot mount volume %s on %s: %s", d->uuid,
			   d->a->mountpoint, vmfs_strerror(ret));
		return ret;
	}

	qb_log(LOG_INFO, "mounted volume %s%s%s%s from %s on %s: host %s, "
	       "state %s, %u FUSE threads, pid %ld", d->uuid,
	       g.label[0] ? " (" : "", g.label, g.label[0] ? ")" : "",
	       d->a->lun, d->a->mountpoint, d->host_uuid, d->a->state_dir,
	       d->a->threads, (long)getpid());
	return 0;
}

/* The first failure of the unmount: logged, and kept for `vmfs umount`. */
static void vmfsd_close_failed(struct vmfsd *d, struct vmfsd_close_status *st,
			       int err, const char *what)
{
	if (st->err)
		return;
	st->err = err;
	snprintf(st->msg, sizeof(st->msg), "%s volume %s failed: %s; run "
		 "'vmfs fsck %.3500s'", what, d->uuid, vmfs_strerror(err),
		 d->a->lun);
	qb_log(LOG_ERR, "%s", st->msg);
}

/* Undo whatever vmfsd_start() did; false if the volume did not close
 * cleanly. */
static bool vmfsd_finish(struct vmfsd *d)
{
	struct vmfsd_close_status st = { .pid = getpid() };
	int ret;

	vfuse_unmount_destroy(d->fuse);
	d->fuse = NULL;
	if (d->vol) {
		ret = vol_close(d->vol);
		if (ret)
			vmfsd_close_failed(d, &st, ret, "closing");
		d->vol = NULL;
	}
	/* Give the slot back only after the volume is flushed. */
	if (d->hb) {
		ret = hb_leave(d->hb);
		if (ret)
			vmfsd_close_failed(d, &st, ret, "freeing the heartbeat slot of");
	}
	d->hb = NULL;
	if (d->hb_lun)
		lun_close(d->hb_lun);
	d->hb_lun = NULL;
	if (d->lun)
		lun_close(d->lun);
	d->lun = NULL;
	if (d->claimed) {
		/* For `vmfs umount`, which waits for us to exit: before the
		 * release, so it is there whenever the mount record is gone. */
		ret = vmfsd_host_close_status_put(d->host, d->uuid, &st);
		if (ret)
			qb_log(LOG_WARNING, "cannot record how volume %s closed "
			       "in %s: %s", d->uuid, d->a->state_dir,
			       vmfs_strerror(ret));
		ret = vmfsd_host_release(d->host, d->uuid);
		if (ret)
			qb_log(LOG_WARNING, "cannot remove the mount record of "
			       "volume %s from %s: %s", d->uuid,
			       d->a->state_dir, vmfs_strerror(ret));
	}
	vmfsd_host_close(d->host);
	d->host = NULL;
	return !st.err;
}

static int vmfsd_serve(struct vmfsd_args *a)
{
	struct vmfsd d;
	sigset_t stop;
	int ret;

	memset(&d, 0, sizeof(d));
	d.a = a;
	if (vmfsd_start(&d)) {
		vmfsd_finish(&d);
		return VMFSD_EXIT_FAIL;
	}
	vmfsd_ready(&d);

	vmfsd_fuse = d.fuse;
	vmfsd_stop_signals(&stop);
	pthread_sigmask(SIG_UNBLOCK, &stop, NULL);
	ret = vfuse_run(d.fuse);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	vmfsd_fuse = NULL;

	if (vmfsd_signal)
		qb_log(LOG_INFO, "%s: unmounting %s", strsignal(vmfsd_signal),
		       a->mountpoint);
	if (!vmfsd_finish(&d))
		ret = -EIO;
	qb_log(LOG_INFO, "unmounted %s (volume %s)%s", a->mountpoint, d.uuid,
	       ret ? " after an error" : "");
	return ret ? VMFSD_EXIT_FAIL : VMFSD_EXIT_OK;
}

int main(int argc, char **argv)
{
	struct vmfsd_args a;
	pthread_t bb;
	int ret;

	if (argc == 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))) {
		printf("vmfsd %s\n", VMFS_VERSION_LINE);
		return VMFSD_EXIT_OK;
	}
	ret = vmfsd_parse_args(argc, argv, &a);
	if (ret >= 0)
		return ret;
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
	if (pthread_create(&bb, NULL, vmfsd_blackbox_thread, &a) == 0)
		pthread_detach(bb);

	ret = vmfsd_serve(&a);
	qb_log_fini();
	return ret;
}
