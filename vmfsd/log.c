/*
 * vmfsd's logging: one facility, libqb's qb_log, for the daemon and the
 * library code it runs.  The policy:
 *   LOG_ERR      should never happen (corrupt metadata, failed I/O, a
 *                broken lock protocol): syslog, and the daemon log;
 *   LOG_WARNING  the operator should know (a mount refused, a peer gone,
 *                a control client refused): syslog and the daemon log
 *                (--log-file; stderr with --foreground);
 *   LOG_NOTICE   what an admin looks for in the system log: mounted,
 *                journal replayed, unmounted and why; syslog and the
 *                daemon log;
 *   LOG_INFO     the rest of the lifecycle (parameters, threads): daemon
 *                log;
 *   LOG_DEBUG    everything else: only the in-memory blackbox ring, unless
 *                --debug; SIGUSR1 writes the ring to
 *                STATE_DIR/vmfsd-PID.blackbox (read it with qb-blackbox).
 * The blackbox receives every message, so a dump shows the context of an
 * error, not just the debug lines.  Once the volume is known, syslog and
 * log file lines carry its uuid (vmfsd_log_volume): one machine runs a
 * vmfsd per volume, all under the name "vmfsd".
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "vmfs/log.h"

#include "vmfsd_int.h"

#define VMFSD_BLACKBOX_BYTES (4u << 20)
#define VMFSD_FILE_FORMAT    "%t %N[%P] %p: "
/* __FILE__ of the components linked into vmfsd, as the Makefile compiles
 * them (from the top of the tree).  libqb compiles it as a POSIX basic
 * regular expression: \( \| \) are glibc's grouping and alternation. */
#define VMFSD_OWN_SOURCES \
	"^\\(error\\|lun\\|lockmgr\\|journal\\|vol\\|vmfsd\\|fuse\\)/"

static int32_t vmfsd_log_file_target = -1;


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

int vmfsd_log_setup(const struct vmfsd_args *a)
{
	int level = a->debug ? LOG_DEBUG : LOG_INFO;
	int32_t t;

	qb_log_init("vmfsd", LOG_DAEMON, LOG_INFO);
	qb_log_filter_ctl(QB_LOG_SYSLOG, QB_LOG_FILTER_CLEAR_ALL,
			  QB_LOG_FILTER_FILE, "*", LOG_TRACE);
	/*
	 * Only our own messages: libqb logs a client refused on its
	 * credentials as an error of its own ("Invalid IPC credentials"),
	 * where ctl.c has already said what happened, as a warning.  libqb's
	 * messages still reach the daemon log and the blackbox.
	 */
	qb_log_filter_ctl(QB_LOG_SYSLOG, QB_LOG_FILTER_ADD,
			  QB_LOG_FILTER_FILE_REGEX, VMFSD_OWN_SOURCES, LOG_NOTICE);
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
		qb_log_format_set(t, VMFSD_FILE_FORMAT "%b");
		qb_log_ctl(t, QB_LOG_CONF_ENABLED, QB_TRUE);
		vmfsd_log_file_target = t;
	}
	return 0;
}

void vmfsd_log_volume(const char *vol_uuid)
{
	char fmt[128];

	/* A uuid is hex digits and dashes: nothing libqb would take for a
	 * format directive. */
	snprintf(fmt, sizeof(fmt), "[volume %s] %%b", vol_uuid);
	qb_log_format_set(QB_LOG_SYSLOG, fmt);
	if (vmfsd_log_file_target >= 0) {
		snprintf(fmt, sizeof(fmt), "%s[volume %s] %%b",
			 VMFSD_FILE_FORMAT, vol_uuid);
		qb_log_format_set(vmfsd_log_file_target, fmt);
	}
}

/*
 * SIGUSR1, from the loop (outside the signal handler): write the
 * blackbox ring out.  libqb writes the file in place, header first and
 * then the ring (4 MiB); qb-blackbox run on it before the last byte is
 * there fails with "Invalid word size read from blackbox header", and
 * "the file exists and is not empty" is what a person or a script waits
 * for.  So the ring goes to a temporary name in the same directory and
 * is renamed into place: the file under its own name is always whole.
 */
void vmfsd_blackbox_dump(const struct vmfsd_args *a)
{
	char path[PATH_MAX + 64], tmp[PATH_MAX + 80];
	ssize_t n;
	int err = 0;

	snprintf(path, sizeof(path), "%s/vmfsd-%ld.blackbox", a->state_dir,
		 (long)getpid());
	snprintf(tmp, sizeof(tmp), "%s.partial", path);
	n = qb_log_blackbox_write_to_file(tmp);
	if (n < 0)
		err = (int)-n;
	else if (rename(tmp, path))
		err = errno;
	if (err) {
		unlink(tmp);
		qb_log(LOG_WARNING, "cannot write the debug log to %s: %s",
		       path, strerror(err));
	} else {
		qb_log(LOG_INFO, "wrote the debug log to %s (%zd bytes); "
		       "read it with qb-blackbox %s", path, n, path);
	}
}
