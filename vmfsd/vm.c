/*
 * The VM supervisor: runs QEMU for the VMs this host starts, holds their
 * locks for as long as QEMU runs, and notices when it exits.
 *
 * Start: the open lock of the config is taken for writing through the
 * engine (vol_open_file_who: exclusive for this host; another host's
 * holding fails with -EBUSY naming it), the config is read through our own
 * mount by a child process (vmfsd_mio_config_load; mntio.c says why not
 * by vmfsd itself), then every disk's open lock is taken too, QEMU is
 * spawned (it opens the disks through the mount on this host, where the
 * locks are already ours), and its pidfd joins the main loop.  The reply
 * waits until QEMU answers on its QMP socket, or reports how it died.
 *
 * Exit: the pidfd becomes readable when QEMU exits for any reason (stop,
 * guest power-off, crash, kill -9); the loop reaps it, releases the
 * locks and keeps how it ended for VMFSD_CTL_VM_LIST.  Nothing is
 * restarted here.
 *
 * Stop: QMP system_powerdown (the guest's ACPI power button), after
 * timeout_ms QMP quit, 5 s later SIGKILL; --force is SIGKILL at once.
 *
 * QEMU dies with vmfsd (PR_SET_PDEATHSIG, SIGKILL; vmfsd_spawn): a kill -9
 * of the daemon leaves no VM running on locks nobody renews.
 *
 * The daemon's end: `vmfs umount` refuses while VMs run (-EBUSY naming
 * them) unless asked to stop them (--stop-vms); a stop signal (SIGTERM,
 * systemd) stops them (SIGTERM to QEMU, SIGKILL after 10 s) before the
 * volume closes, so no VM outlives the locks that guard it.  A fence
 * kills every QEMU with SIGKILL at once, from the thread that fenced,
 * before any other host may break the locks (the lease must run out
 * first).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>
#include "vmfs/log.h"

#include "vmfs/clock.h"
#include "vmfs/hypervisor.h"
#include "vmfs/vol.h"
#include "vmfsd_int.h"

#define VM_QUIT_AFTER_MS    5000
#define VM_KILL_AFTER_MS    5000
#define VM_START_WAIT_MS    15000
#define VM_TERM_WAIT_MS     10000
/* The power button is pressed again this often while the guest stays
 * up: one pressed before its ACPI driver loaded is lost. */
#define VM_POWERDOWN_EVERY_MS 2000
/* How many ended VMs the supervisor remembers for `vmfs vm status`. */
#define VM_ENDED_MAX        32

static int64_t vm_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct vmfsd_vm *vmfsd_vm_find(struct vmfsd *d, const char *path)
{
	for (struct vmfsd_vm *vm = d->vms; vm; vm = vm->next)
		if (!strcmp(vm->path, path))
			return vm;
	return NULL;
}

static void vm_unlink(struct vmfsd *d, struct vmfsd_vm *vm)
{
	for (struct vmfsd_vm **p = &d->vms; *p; p = &(*p)->next)
		if (*p == vm) {
			*p = vm->next;
			return;
		}
}

static void vm_free(struct vmfsd_vm *vm)
{
	vmfsd_migrate_free(vm);
	free(vm);
}

/* Walk path (inside the volume) to its inode; a lookup reference stays
 * on the result (vol_forget when done), none on the directories. */
int vmfsd_vm_resolve(struct vol *v, const char *path, uint64_t *ino)
{
	char buf[PATH_MAX * 2 + 2], *save = NULL, *c;
	struct vol_geom g;
	struct vol_attr a;
	uint64_t cur;
	bool ref = false;
	int ret;

	vol_geom_get(v, &g);
	cur = g.root_ino;
	snprintf(buf, sizeof(buf), "%s", path);
	for (c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (!strcmp(c, "."))
			continue;
		if (!strcmp(c, ".."))
			return -EINVAL;
		ret = vol_lookup(v, cur, c, &a);
		if (ref)
			vol_forget(v, cur, 1);
		if (ret)
			return ret;
		cur = a.ino;
		ref = true;
	}
	if (!ref)
		return -EISDIR;
	*ino = cur;
	return 0;
}

void vmfsd_vm_locks_release(struct vmfsd *d, struct vmfsd_vm *vm)
{
	for (unsigned i = 0; i < vm->nino; i++) {
		if (vm->unopened) {
			vol_forget(d->vol, vm->ino[i], 1);
			continue;
		}
		vol_release_file(d->vol, vm->ino[i], true);
		/* Kept as a cache, the lock would read as "runs here" to
		 * every other host's `vmfs vm list`. */
		vol_file_uncache(d->vol, vm->ino[i]);
		vol_forget(d->vol, vm->ino[i], 1);
	}
	vm->nino = 0;
}

/* Take the open lock of path (in the VM's directory) for writing. */
static int vm_lock_file(struct vmfsd *d, struct vmfsd_vm *vm, const char *rel,
			char *msg, size_t len)
{
	char p[PATH_MAX * 2], who[600] = "";
	uint64_t ino;
	int ret;

	snprintf(p, sizeof(p), "%s/%s", vm->path, rel);
	ret = vmfsd_vm_resolve(d->vol, p, &ino);
	if (ret) {
		snprintf(msg, len, "cannot find %s on the volume: %s", p,
			 vmfs_strerror(ret));
		return ret;
	}
	ret = vol_open_file_who(d->vol, ino, true, who, sizeof(who));
	if (ret < 0) {
		vol_forget(d->vol, ino, 1);
		if (ret == -EBUSY)
			snprintf(msg, len, "VM %s runs on %s (it holds the lock of "
				 "%s); stop it there first ('vmfs vm stop' on that "
				 "host)", vm->path, who[0] ? who : "another host", p);
		else
			snprintf(msg, len, "cannot lock %s: %s", p,
				 vmfs_strerror(ret));
		return ret;
	}
	vm->ino[vm->nino++] = ino;
	return 0;
}

static void vm_timer_cancel(struct vmfsd_vm *vm)
{
	if (vm->timer_set)
		qb_loop_timer_del(vm->d->loop, vm->timer);
	vm->timer_set = false;
}

static void vm_ended(struct vmfsd_vm *vm, int status)
{
	struct vmfsd *d = vm->d;
	unsigned ended = 0;

	vm_timer_cancel(vm);
	if (WIFSIGNALED(status))
		snprintf(vm->why, sizeof(vm->why), "QEMU killed by signal %d",
			 WTERMSIG(status));
	else if (!WEXITSTATUS(status) && vm->phase == VM_RUNNING)
		/* Unasked: a reboot or a panic resets the guest in place
		 * (hypervisor/qemu.c), so this was its power-off. */
		snprintf(vm->why, sizeof(vm->why), "the guest powered off "
			 "(QEMU exited with status 0)");
	else
		snprintf(vm->why, sizeof(vm->why), "QEMU exited with status %d",
			 WEXITSTATUS(status));
	/* Asked to stop, QEMU ends by quit (0), SIGTERM or our SIGKILL. */
	vm->crashed = vm->phase == VM_RUNNING &&
		(WIFSIGNALED(status) || WEXITSTATUS(status));
	/* A migration's end: the files it detached, and why. */
	if (vm->mig)
		vmfsd_migrate_exited(d, vm);
	if (vm->migrated_to[0]) {
		snprintf(vm->why, sizeof(vm->why), "migrated to %s",
			 vm->migrated_to);
		vm->crashed = false;
	}
	qb_log(vm->crashed ? LOG_WARNING : LOG_NOTICE, "VM %s (%s, pid %ld) "
	       "ended: %s; releasing its locks", vm->path, vm->name,
	       (long)vm->pid, vm->why);
	/* A crash: what QEMU last said, from its log on the datastore (not
	 * on a fenced host, whose mount fails every call). */
	if (vm->crashed && !d->fenced) {
		char dir[PATH_MAX * 2], log[PATH_MAX * 2 + 64], msg[700];

		snprintf(dir, sizeof(dir), "%s%s", d->a->mountpoint, vm->path);
		vmfsd_vm_log_path(d, dir, log, sizeof(log));
		snprintf(msg, sizeof(msg), "VM %.200s: QEMU's log %.200s ends",
			 vm->path, log);
		vmfsd_mio_tail(log, msg, sizeof(msg));
		qb_log(LOG_WARNING, "%s", msg);
	}
	pthread_mutex_lock(&d->vms_mu);
	vm->pid = 0;
	vm->phase = VM_ENDED;
	pthread_mutex_unlock(&d->vms_mu);
	if (vm->pidfd >= 0) {
		qb_loop_poll_del(d->loop, vm->pidfd);
		close(vm->pidfd);
		vm->pidfd = -1;
	}
	/* A clean end (stop, guest power-off, the daemon's stop) clears
	 * the run record while the config's lock is still ours; a crash
	 * keeps it, for HA (ha.c) to restart the VM should this host die.
	 * A VM that migrated away is the destination's, and so is its
	 * record (vmfsd/migrate.c rewrote it there); an incoming migration
	 * that never completed here leaves the source's record alone. */
	if (!vm->crashed && !d->fenced && !vmfsd_migrate_keeps_record(vm)) {
		char vmdir[PATH_MAX * 2];

		snprintf(vmdir, sizeof(vmdir), "%s%s", d->a->mountpoint, vm->path);
		vmfsd_mio_ha_clear(vmdir);
	}
	vmfsd_vm_locks_release(d, vm);
	unlink(vm->qmp);
	unlink(vm->con);
	vm->since_ns = vm_wall_ns();
	/* Forget the oldest ended VMs beyond VM_ENDED_MAX. */
	pthread_mutex_lock(&d->vms_mu);
	for (struct vmfsd_vm *p = d->vms, *next; p; p = next) {
		next = p->next;
		if (p->phase == VM_ENDED && ++ended > VM_ENDED_MAX && p != vm) {
			vm_unlink(d, p);
			vm_free(p);
		}
	}
	pthread_mutex_unlock(&d->vms_mu);
}

static int32_t vm_on_exit(int32_t fd, int32_t revents, void *data)
{
	struct vmfsd_vm *vm = data;
	int status = 0;

	(void)fd;
	(void)revents;
	if (waitpid(vm->pid, &status, WNOHANG) != vm->pid)
		return 0;
	vm_ended(vm, status);
	return 0;
}

static void vm_on_timer(void *data)
{
	struct vmfsd_vm *vm = data;
	char err[HV_ERR_MAX];
	int ret;

	vm->timer_set = false;
	if (vm->phase == VM_POWERDOWN && vm->powerdown_left_ms > 0) {
		int step = vm->powerdown_left_ms < VM_POWERDOWN_EVERY_MS ?
			vm->powerdown_left_ms : VM_POWERDOWN_EVERY_MS;

		hv_qmp_command(vm->qmp, "system_powerdown", 1000, err,
			       sizeof(err));
		vm->powerdown_left_ms -= step;
		qb_loop_timer_add(vm->d->loop, QB_LOOP_MED, step * 1000000ull,
				  vm, vm_on_timer, &vm->timer);
		vm->timer_set = true;
	} else if (vm->phase == VM_POWERDOWN) {
		qb_log(LOG_NOTICE, "VM %s did not power off in time; QMP quit",
		       vm->path);
		vm->phase = VM_QUIT;
		ret = hv_qmp_command(vm->qmp, "quit", 2000, err, sizeof(err));
		if (ret)
			kill(vm->pid, SIGKILL);
		qb_loop_timer_add(vm->d->loop, QB_LOOP_MED,
				  VM_KILL_AFTER_MS * 1000000ull, vm, vm_on_timer,
				  &vm->timer);
		vm->timer_set = true;
	} else if (vm->phase == VM_QUIT && vm->pid) {
		qb_log(LOG_WARNING, "VM %s: QEMU (pid %ld) still runs; SIGKILL",
		       vm->path, (long)vm->pid);
		kill(vm->pid, SIGKILL);
	}
}

/*
 * Fork and exec file (argv[0], looked up in PATH, when file is NULL):
 * stdin in (/dev/null when -1); stdout out, or with log (opened in the
 * child, for appending) as both stdout and stderr; stderr vmfsd's
 * otherwise.  The child keeps no other descriptor of ours, /dev/fuse
 * above all: a log on our own mount is opened by the child, not by us
 * (mntio.c says why).  -1 with errno when the fork, the log's open or the
 * exec failed.
 *
 * PR_SET_PDEATHSIG fires when the forking *thread* ends.  QEMU is forked
 * by the loop thread only (migrate.c's incoming QEMU too), which lives as
 * long as vmfsd; so QEMU never outlives this vmfsd (a kill -9 of it
 * included): once survivors break this host's locks (HA, vmfsd/ha.c)
 * nothing here may still write the VM's disks.  Other children are
 * waited for by the thread that forked them.
 */
pid_t vmfsd_spawn(const char *file, char **argv, int in, int out,
		  const char *log)
{
	pid_t parent = getpid(), pid;
	int ep[2], e = 0, fin, fout, fe, fd;
	sigset_t all;
	ssize_t n;

	if (pipe2(ep, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid) {
		e = errno;
		close(ep[1]);
		/* Nothing comes when the exec worked (ep closes on exec). */
		while (pid > 0 && (n = read(ep[0], &e, sizeof(e))) < 0 &&
		       errno == EINTR)
			;
		close(ep[0]);
		if (pid > 0 && n == (ssize_t)sizeof(e)) {
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
			pid = -1;
		}
		if (pid < 0)
			errno = e;
		return pid;
	}
	/* The child of a threaded process: async-signal-safe calls only. */
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	setsid();
	/* Our own session (no terminal's signals), yet bound to vmfsd. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		_exit(126);    /* vmfsd died before the death signal was set */
	/* Out of the way of 0..3 first, then into place. */
	fd = in >= 0 ? in : open("/dev/null", O_RDONLY | O_CLOEXEC);
	fin = fcntl(fd, F_DUPFD_CLOEXEC, 10);
	fout = out >= 0 ? fcntl(out, F_DUPFD_CLOEXEC, 10) : -1;
	fe = fcntl(ep[1], F_DUPFD_CLOEXEC, 10);
	if (fin < 0 || fe < 0 || (out >= 0 && fout < 0) || dup2(fin, 0) < 0 ||
	    (fout >= 0 && dup2(fout, 1) < 0) || dup2(fe, 3) < 0 ||
	    fcntl(3, F_SETFD, FD_CLOEXEC))
		_exit(127);
	syscall(SYS_close_range, 4, ~0u, 0);
	if (log) {
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			goto fail;
		close(fd);
	}
	if (file)
		execv(file, argv);
	else
		execvp(argv[0], argv);
fail:
	e = errno;
	if (write(3, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

/* Wait for QEMU's QMP socket to answer, or for QEMU to die. */
int vmfsd_vm_wait_up(struct vmfsd_vm *vm, int wait_ms, int *status)
{
	char err[HV_ERR_MAX];
	int64_t end = vmfs_mono_ms() + wait_ms;

	do {
		if (waitpid(vm->pid, status, WNOHANG) == vm->pid)
			return -ECHILD;
		if (!hv_qmp_command(vm->qmp, "query-status", 1000, err, sizeof(err)))
			return 0;
		poll(NULL, 0, 50);
	} while (vmfs_mono_ms() < end);
	return -ETIMEDOUT;
}

void vmfsd_vm_log_path(struct vmfsd *d, const char *vmdir, char *out,
		       size_t len)
{
	/* One per host: an incoming migration's QEMU writes its own while
	 * the source's still runs. */
	if (snprintf(out, len, "%s/qemu-%s.log", vmdir, d->host_name) >=
	    (int)len)
		snprintf(out, len, "%s/qemu.log", vmdir);
}

int vmfsd_vm_sock_paths(struct vmfsd *d, struct vmfsd_vm *vm, char *msg,
			size_t len)
{
	char dir[PATH_MAX + 8];

	snprintf(dir, sizeof(dir), "%s/vm", d->a->state_dir);
	mkdir(dir, 0700);
	if (vmfsd_vm_sock_path(d->a->state_dir, vm->ino[0], "qmp", vm->qmp) ||
	    vmfsd_vm_sock_path(d->a->state_dir, vm->ino[0], "console",
			       vm->con)) {
		snprintf(msg, len, "the VM's socket paths under %s are longer "
			 "than a unix socket allows (or hold a comma); use a "
			 "shorter --state-dir", dir);
		return -ENAMETOOLONG;
	}
	unlink(vm->qmp);
	unlink(vm->con);
	return 0;
}

int vmfsd_vm_watch(struct vmfsd *d, struct vmfsd_vm *vm, char *msg,
		   size_t len)
{
	vm->pidfd = (int)syscall(SYS_pidfd_open, vm->pid, 0);
	if (vm->pidfd < 0 || qb_loop_poll_add(d->loop, QB_LOOP_MED, vm->pidfd,
					      POLLIN, vm, vm_on_exit)) {
		/* Without the pidfd nothing would notice the exit: no VM. */
		snprintf(msg, len, "cannot watch QEMU (pidfd_open: %s); stopped it",
			 strerror(errno));
		kill(vm->pid, SIGKILL);
		waitpid(vm->pid, NULL, 0);
		if (vm->pidfd >= 0)
			close(vm->pidfd);
		vm->pidfd = -1;
		return -EIO;
	}
	return 0;
}

void vmfsd_vm_link(struct vmfsd *d, struct vmfsd_vm *vm)
{
	struct vmfsd_vm *old = vmfsd_vm_find(d, vm->path);

	pthread_mutex_lock(&d->vms_mu);
	if (old && old != vm && old->phase == VM_ENDED) {
		vm_unlink(d, old);
		vm_free(old);
	}
	vm->next = d->vms;
	d->vms = vm;
	pthread_mutex_unlock(&d->vms_mu);
}

/* Write the run record (hypervisor/hastate.c) of a VM that just
 * started here; from: how HA restarted it, or NULL. */
void vmfsd_vm_record(struct vmfsd *d, const char *vmdir,
		     const struct hv_config *c, const struct hv_ha_state *from)
{
	struct hv_ha_state s;
	int ret;

	memset(&s, 0, sizeof(s));
	if (from)
		s = *from;
	s.ha = c->ha;
	s.priority = c->restart_priority;
	s.memory_mib = c->memory_mib;
	snprintf(s.host_uuid, sizeof(s.host_uuid), "%s", d->host_uuid);
	snprintf(s.host_name, sizeof(s.host_name), "%s", d->host_name);
	s.moving_uuid[0] = s.moving_name[0] = 0;
	s.started_ns = vm_wall_ns();
	ret = vmfsd_mio_ha_write(vmdir, &s);
	if (ret)
		qb_log(LOG_WARNING, "VM %s: cannot write its run record %s/%s: "
		       "%s; HA could not restart it should this host die",
		       vmdir, vmdir, HV_HA_STATE_NAME, vmfs_strerror(ret));
}

static int vm_start(struct vmfsd *d, const char *path,
		    const struct hv_ha_state *from, char *msg, size_t len)
{
	char vmdir[PATH_MAX * 2], log[PATH_MAX * 2 + 16];
	struct hv_config c;
	struct vmfsd_vm *vm = vmfsd_vm_find(d, path);
	struct hv_ha_state prev;
	char **argv = NULL, herr[256];
	bool have_prev = false, recorded = false;
	int ret, status = 0;

	if (path[0] != '/' || strstr(path, "/../") || strlen(path) >= PATH_MAX) {
		snprintf(msg, len, "%s: give the VM's path inside the volume, "
			 "e.g. /vms/web1", path);
		return -EINVAL;
	}
	if (vm && vm->phase != VM_ENDED) {
		snprintf(msg, len, "VM %s already runs on this host (QEMU pid %ld)",
			 path, (long)vm->pid);
		return -EBUSY;
	}
	if (d->fenced || d->stopping) {
		snprintf(msg, len, "this host is %s; no VM starts here",
			 d->fenced ? "fenced" : "unmounting");
		return -EIO;
	}
	snprintf(vmdir, sizeof(vmdir), "%s%s", d->a->mountpoint, path);
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->d = d;
	vm->pidfd = -1;
	snprintf(vm->path, sizeof(vm->path), "%s", path);
	/* The config's lock first: while another host runs the VM, it holds
	 * the config too (reading it would fail without naming the host). */
	ret = vm_lock_file(d, vm, HV_CONFIG_NAME, msg, len);
	if (!ret)
		ret = vmfsd_mio_config_load(vmdir, &c, msg, len);
	if (!ret) {
		snprintf(vm->name, sizeof(vm->name), "%s", c.name);
		vm->memory_mib = c.memory_mib;
	}
	for (unsigned i = 0; !ret && i < c.ndisks; i++)
		ret = vm_lock_file(d, vm, c.disks[i], msg, len);
	if (ret)
		goto fail;
	ret = vmfsd_vm_sock_paths(d, vm, msg, len);
	if (ret)
		goto fail;
	vmfsd_vm_log_path(d, vmdir, log, sizeof(log));
	ret = hv_qemu_argv(&c, vmdir, vm->qmp, vm->con,
			   access("/dev/kvm", R_OK | W_OK) == 0, &argv);
	if (ret)
		goto fail;
	/* The run record before QEMU: a survivor trying the same VM for HA
	 * (ha.c) sees at once that it runs here.  A failed start puts back
	 * what was there. */
	have_prev = !vmfsd_mio_ha_read(vmdir, &prev, herr, sizeof(herr));
	vmfsd_vm_record(d, vmdir, &c, from);
	recorded = true;
	vm->pid = vmfsd_spawn(NULL, argv, -1, -1, log);
	hv_argv_free(argv);
	if (vm->pid < 0) {
		ret = -errno;
		snprintf(msg, len, "cannot start QEMU (with its log %s): %s", log,
			 strerror(-ret));
		goto fail;
	}
	ret = vmfsd_vm_wait_up(vm, VM_START_WAIT_MS, &status);
	if (ret) {
		if (ret == -ECHILD)
			snprintf(msg, len, "QEMU for %s exited at once (%s %d); its "
				 "log %s says", path, WIFSIGNALED(status) ?
				 "signal" : "status", WIFSIGNALED(status) ?
				 WTERMSIG(status) : WEXITSTATUS(status), log);
		else
			snprintf(msg, len, "QEMU for %s did not answer on QMP in %d "
				 "s; killed it; see %s", path, VM_START_WAIT_MS / 1000,
				 log);
		if (ret != -ECHILD) {
			kill(vm->pid, SIGKILL);
			waitpid(vm->pid, NULL, 0);
		}
		vmfsd_mio_tail(log, msg, len);
		ret = -EIO;
		goto fail;
	}
	ret = vmfsd_vm_watch(d, vm, msg, len);
	if (ret)
		goto fail;
	vm->phase = VM_RUNNING;
	vm->since_ns = vm_wall_ns();
	vmfsd_vm_link(d, vm);
	qb_log(LOG_NOTICE, "VM %s (%s) started: QEMU pid %ld, %u locks held",
	       path, c.name, (long)vm->pid, vm->nino);
	return 0;
fail:
	if (recorded && have_prev)
		vmfsd_mio_ha_write(vmdir, &prev);
	else if (recorded)
		vmfsd_mio_ha_clear(vmdir);
	vmfsd_vm_locks_release(d, vm);
	vm_free(vm);
	return ret;
}

static int vm_stop(struct vmfsd *d, const char *path, bool force,
		   int timeout_ms, char *msg, size_t len)
{
	struct vmfsd_vm *vm = vmfsd_vm_find(d, path);

	if (!vm || vm->phase == VM_ENDED) {
		snprintf(msg, len, "VM %s does not run on this host ('vmfs vm "
			 "status' says where it runs)", path);
		return -ENOENT;
	}
	if (vmfsd_migrate_busy(vm) && !force) {
		snprintf(msg, len, "VM %s is being migrated; wait for the "
			 "migration to end ('vmfs vm status'), or --force", path);
		return -EBUSY;
	}
	if (force) {
		qb_log(LOG_NOTICE, "VM %s: forced stop, SIGKILL to pid %ld",
		       path, (long)vm->pid);
		vm->phase = VM_QUIT;
		kill(vm->pid, SIGKILL);
		return 0;
	}
	if (vm->phase != VM_RUNNING)
		return 0;
	qb_log(LOG_NOTICE, "VM %s: power-down (QMP quit after %d ms)", path,
	       timeout_ms);
	vm->phase = VM_POWERDOWN;
	vm_timer_cancel(vm);
	vm->powerdown_left_ms = timeout_ms;
	vm_on_timer(vm);
	return 0;
}

/* ---- control requests ---- */

static int vm_req(const char *body, char *path, size_t len, bool *force,
		  int *timeout_ms)
{
	json_object *o = json_tokener_parse(body), *v;
	int ret = -EINVAL;

	if (o && json_object_object_get_ex(o, "path", &v) &&
	    json_object_is_type(v, json_type_string)) {
		snprintf(path, len, "%s", json_object_get_string(v));
		ret = 0;
	}
	if (o && force && json_object_object_get_ex(o, "force", &v))
		*force = json_object_get_boolean(v);
	if (o && timeout_ms && json_object_object_get_ex(o, "timeout_ms", &v))
		*timeout_ms = json_object_get_int(v);
	json_object_put(o);
	return ret;
}

int vmfsd_vm_request(struct vmfsd *d, uint32_t type, const char *body,
		     char **reply, char *msg, size_t len)
{
	char path[PATH_MAX];
	bool force = false;
	int timeout_ms = 30000;

	*reply = NULL;
	msg[0] = 0;
	if (type == VMFSD_CTL_VM_MIGRATE || type == VMFSD_CTL_VM_MIGRATE_STATUS)
		return vmfsd_migrate_request(d, type, body, reply, msg, len);
	if (type == VMFSD_CTL_VM_LIST) {
		struct vmfsd_vm_info *vi;
		size_t n = 0;

		for (struct vmfsd_vm *vm = d->vms; vm; vm = vm->next)
			n++;
		vi = calloc(n ? n : 1, sizeof(*vi));
		if (!vi)
			return -ENOMEM;
		n = 0;
		for (struct vmfsd_vm *vm = d->vms; vm; vm = vm->next, n++) {
			snprintf(vi[n].path, sizeof(vi[n].path), "%s", vm->path);
			snprintf(vi[n].name, sizeof(vi[n].name), "%s", vm->name);
			vi[n].pid = vm->pid;
			snprintf(vi[n].state, sizeof(vi[n].state), "%s",
				 vm->migrated_to[0] ? "stopped" :
				 vm->phase == VM_RUNNING ? "running" :
				 vm->phase == VM_INCOMING ? "incoming" :
				 vm->phase != VM_ENDED ? "stopping" :
				 vm->crashed ? "crashed" : "stopped");
			if (vm->migrated_to[0])
				snprintf(vi[n].why, sizeof(vi[n].why),
					 "migrated to %s", vm->migrated_to);
			else
				snprintf(vi[n].why, sizeof(vi[n].why), "%s",
					 vm->why);
			vi[n].since_ns = vm->since_ns;
		}
		*reply = vmfsd_vm_list_encode(vi, n);
		free(vi);
		return *reply ? 0 : -ENOMEM;
	}
	if (vm_req(body, path, sizeof(path), &force, &timeout_ms)) {
		snprintf(msg, len, "the request names no VM (\"path\")");
		return -EINVAL;
	}
	if (timeout_ms < 0)
		timeout_ms = 0;
	if (type == VMFSD_CTL_VM_START)
		return vm_start(d, path, NULL, msg, len);
	return vm_stop(d, path, force, timeout_ms, msg, len);
}

int vmfsd_vm_start(struct vmfsd *d, const char *path,
		   const struct hv_ha_state *from, char *msg, size_t len)
{
	msg[0] = 0;
	return vm_start(d, path, from, msg, len);
}

bool vmfsd_vm_known(struct vmfsd *d, const char *path)
{
	return vmfsd_vm_find(d, path) != NULL;
}

bool vmfsd_vm_runs_here(struct vmfsd *d, const char *path)
{
	struct vmfsd_vm *vm = vmfsd_vm_find(d, path);

	return vm && vm->phase != VM_ENDED && !vm->migrated_to[0];
}

uint64_t vmfsd_vms_memory_mib(struct vmfsd *d)
{
	uint64_t mib = 0;

	for (struct vmfsd_vm *vm = d->vms; vm; vm = vm->next)
		if (vm->phase != VM_ENDED)
			mib += vm->memory_mib;
	return mib;
}

unsigned vmfsd_vms_running(struct vmfsd *d, char *names, size_t len)
{
	unsigned n = 0;

	if (len)
		names[0] = 0;
	for (struct vmfsd_vm *vm = d->vms; vm; vm = vm->next)
		if (vm->phase != VM_ENDED) {
			if (len)
				snprintf(names + strlen(names), len - strlen(names),
					 "%s%s", n ? ", " : "", vm->path);
			n++;
		}
	return n;
}

void vmfsd_vms_stop_all(struct vmfsd *d)
{
	int64_t deadline;
	struct timespec ts;

	for (struct vmfsd_vm *vm = d->vms; vm; vm = vm->next)
		if (vm->phase != VM_ENDED) {
			qb_log(LOG_NOTICE, "VM %s: stopping QEMU (pid %ld): the "
			       "daemon is stopping", vm->path, (long)vm->pid);
			vm->phase = VM_QUIT;
			kill(vm->pid, SIGTERM);
		}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	deadline = ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + VM_TERM_WAIT_MS;
	for (struct vmfsd_vm *vm = d->vms; vm; vm = vm->next) {
		int status = 0;

		while (vm->phase != VM_ENDED) {
			if (waitpid(vm->pid, &status, WNOHANG) == vm->pid) {
				vm_ended(vm, status);
				break;
			}
			clock_gettime(CLOCK_MONOTONIC, &ts);
			if (ts.tv_sec * 1000 + ts.tv_nsec / 1000000 > deadline)
				kill(vm->pid, SIGKILL);
			poll(NULL, 0, 20);
		}
	}
}

void vmfsd_vms_kill_all(struct vmfsd *d)
{
	pthread_mutex_lock(&d->vms_mu);
	for (struct vmfsd_vm *vm = d->vms; vm; vm = vm->next)
		if (vm->pid > 0)
			kill(vm->pid, SIGKILL);
	pthread_mutex_unlock(&d->vms_mu);
}
