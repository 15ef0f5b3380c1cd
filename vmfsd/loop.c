/*
 * vmfsd's main loop (libqb qb_loop) on the main thread: the signals, the
 * control socket (ctl.c), timers, and the end of the FUSE session.  Later
 * sources (corosync's CPG fd, lock timers, the VM supervisor's QMP
 * sockets) are more fds and timers on the same loop; their callbacks only
 * record what happened or answer at once, never wait on I/O.
 *
 * FUSE requests never pass through the loop: one thread of ours sits in
 * vfuse_run(), whose libfuse workers serve the kernel straight from
 * /dev/fuse as before there was a loop.  When the session ends (an
 * unmount from outside, a umount request, a stop signal), that thread
 * writes a byte to a pipe the loop polls, and the loop closes the volume,
 * answers the umount requests waiting for that, and stops.
 *
 * Signals: SIGTERM, SIGINT, SIGHUP stop; SIGUSR1 dumps the blackbox.  They
 * are blocked in every thread but the loop's, where libqb's handlers turn
 * them into loop events (so nothing runs inside a signal handler).  To end
 * the session, vfuse_stop() sets libfuse's exit flag and VMFSD_WAKE_SIG
 * interrupts the FUSE thread's wait; since that signal can arrive just
 * before the thread starts waiting, a timer repeats it until the thread
 * has returned.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <qb/qbloop.h>
#include "vmfs/log.h"

#include "vmfs/fuse.h"
#include "vmfsd_int.h"

#define VMFSD_WAKE_SIG      SIGUSR2
#define VMFSD_WAKE_EVERY_MS 100

static void vmfsd_on_wake(int sig)
{
	(void)sig;      /* only there to interrupt the FUSE thread's wait */
}

static void vmfsd_loop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
}

/*
 * Before any thread exists: block the loop's signals and the wake signal,
 * so every thread the LUN, the heartbeat and the engine start keeps them
 * blocked.  A stop signal during start-up stays pending: start-up checks
 * for it (vmfsd_stop_pending) and the loop takes it once it runs.
 */
void vmfsd_signals_setup(void)
{
	struct sigaction sa;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = vmfsd_on_wake;
	sigaction(VMFSD_WAKE_SIG, &sa, NULL);

	vmfsd_loop_signals(&set);
	sigaddset(&set, VMFSD_WAKE_SIG);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

bool vmfsd_stop_pending(void)
{
	sigset_t p;

	if (sigpending(&p))
		return false;
	return sigismember(&p, SIGTERM) == 1 || sigismember(&p, SIGINT) == 1 ||
	       sigismember(&p, SIGHUP) == 1;
}

static void *vmfsd_fuse_main(void *arg)
{
	struct vmfsd *d = arg;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, VMFSD_WAKE_SIG);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	d->fuse_ret = vfuse_run(d->fuse);
	vmfsd_write_all(d->fuse_done[1], "x", 1);
	return NULL;
}

static void vmfsd_wake_fuse(void *data)
{
	struct vmfsd *d = data;

	if (!d->fuse_running)
		return;
	pthread_kill(d->fuse_thread, VMFSD_WAKE_SIG);
	qb_loop_timer_add(d->loop, QB_LOOP_HIGH,
			  VMFSD_WAKE_EVERY_MS * QB_TIME_NS_IN_MSEC, d,
			  vmfsd_wake_fuse, &d->wake_timer);
}

/* Once, whichever way the unmount began. */
static void vmfsd_say_stopping(struct vmfsd *d)
{
	if (d->said_stopping)
		return;
	d->said_stopping = true;
	vmfsd_notify_stopping(d->a->mountpoint);
}

void vmfsd_stop(struct vmfsd *d)
{
	if (d->stopping || !d->fuse_running)
		return;
	/* No VM outlives the locks that guard it (vm.c). */
	vmfsd_vms_stop_all(d);
	vmfsd_say_stopping(d);
	d->stopping = true;
	vfuse_stop(d->fuse);
	vmfsd_wake_fuse(d);
}

/* The FUSE session has ended, however it came to: close and quit. */
static int32_t vmfsd_on_fuse_done(int32_t fd, int32_t revents, void *data)
{
	struct vmfsd *d = data;
	struct vmfsd_close_status st;
	char c;

	(void)revents;
	if (read(fd, &c, 1) != 1)
		return 0;       /* spurious: the thread writes exactly once */
	pthread_join(d->fuse_thread, NULL);
	d->fuse_running = false;
	d->stopping = true;
	qb_loop_timer_del(d->loop, d->wake_timer);
	qb_loop_poll_del(d->loop, fd);

	vmfsd_say_stopping(d);
	vmfsd_finish(d, &st);
	if (d->fuse_ret && !st.err) {
		st.err = d->fuse_ret;
		snprintf(st.msg, sizeof(st.msg), "the FUSE session of %.3000s "
			 "failed: %s; see vmfsd's log", d->a->mountpoint,
			 strerror(-d->fuse_ret));
	}
	vmfsd_ctl_stop(d, &st);
	qb_log(LOG_NOTICE, "unmounted %s (volume %s)%s", d->a->mountpoint,
	       d->uuid, st.err ? " after an error" : "");
	d->exit_status = st.err ? VMFSD_EXIT_FAIL : VMFSD_EXIT_OK;
	qb_loop_stop(d->loop);
	return 0;
}

static int32_t vmfsd_on_signal(int32_t sig, void *data)
{
	struct vmfsd *d = data;

	if (sig == SIGUSR1) {
		vmfsd_blackbox_dump(d->a);
		return 0;
	}
	if (!d->stopping)
		qb_log(LOG_NOTICE, "%s: unmounting %s", strsignal(sig),
		       d->a->mountpoint);
	vmfsd_stop(d);
	return 0;
}

static int vmfsd_loop_setup(struct vmfsd *d)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1 };
	int ret;

	if (pipe2(d->fuse_done, O_CLOEXEC | O_NONBLOCK)) {
		ret = -errno;
		vmfsd_fail(d, "cannot create a pipe: %s", strerror(errno));
		return ret;
	}
	ret = qb_loop_poll_add(d->loop, QB_LOOP_HIGH, d->fuse_done[0], POLLIN,
			       d, vmfsd_on_fuse_done);
	for (size_t i = 0; !ret && i < sizeof(sigs) / sizeof(sigs[0]); i++)
		ret = qb_loop_signal_add(d->loop, QB_LOOP_HIGH, sigs[i], d,
					 vmfsd_on_signal, NULL);
	if (ret)
		vmfsd_fail(d, "cannot set up the main loop: %s", strerror(-ret));
	return ret;
}

int vmfsd_serve(struct vmfsd_args *a)
{
	struct vmfsd_close_status st;
	struct vmfsd d;
	sigset_t set;
	int ret;

	memset(&d, 0, sizeof(d));
	d.a = a;
	pthread_mutex_init(&d.fence_mu, NULL);
	d.fuse_done[0] = d.fuse_done[1] = -1;
	pthread_mutex_init(&d.vms_mu, NULL);
	d.loop = qb_loop_create();
	if (!d.loop) {
		vmfsd_fail(&d, "cannot create the main loop: out of memory");
		return VMFSD_EXIT_FAIL;
	}
	ret = vmfsd_migrate_init(&d);
	if (ret) {
		vmfsd_fail(&d, "cannot set up migrations: %s", strerror(-ret));
		qb_loop_destroy(d.loop);
		return VMFSD_EXIT_FAIL;
	}
	ret = vmfsd_start(&d);
	if (!ret)
		ret = vmfsd_loop_setup(&d);
	if (!ret)
		ret = vmfsd_ctl_start(&d);
	if (!ret) {
		ret = -pthread_create(&d.fuse_thread, NULL, vmfsd_fuse_main, &d);
		if (ret)
			vmfsd_fail(&d, "cannot start the FUSE thread: %s",
				   strerror(-ret));
	}
	if (ret) {
		vmfsd_ctl_stop(&d, NULL);
		vmfsd_finish(&d, &st);
		d.exit_status = VMFSD_EXIT_FAIL;
		goto out;
	}
	d.fuse_running = true;
	vmfsd_ready(&d);
	vmfsd_ha_start(&d);

	vmfsd_loop_signals(&set);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	qb_loop_run(d.loop);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
out:
	vmfsd_migrate_fini(&d);
	qb_loop_destroy(d.loop);
	for (int i = 0; i < 2; i++)
		if (d.fuse_done[i] >= 0)
			close(d.fuse_done[i]);
	return d.exit_status;
}
