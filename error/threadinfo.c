/*
 * threadinfo: describe another thread of this process (include/vmfs/threadinfo.h).
 *
 * The stack is taken the way glibc's own tools and most daemons' watchdogs
 * do: a signal to that one thread, whose handler calls backtrace() into a
 * static array.  backtrace() loads libgcc's unwinder on its first call,
 * which may allocate, so it is called once before the handler is
 * installed; after that it only walks the stack.  The handler is installed
 * on SIGRTMIN + 3, and only where nobody else has claimed that signal.
 */
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmfs/threadinfo.h"

#define STK_MAX 40
/* The handler's own frame and the kernel's signal trampoline. */
#define STK_SKIP 2

static pthread_mutex_t stk_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t stk_once = PTHREAD_ONCE_INIT;
static int stk_sig;            /* 0: no signal could be had */
static void *stk_frames[STK_MAX];
static pthread_t stk_target;
static int stk_wanted;         /* the handler records only while set */
static int stk_n;              /* frames recorded; -1 until then */

static void stk_handler(int sig)
{
	int saved = errno;

	(void)sig;
	if (__atomic_load_n(&stk_wanted, __ATOMIC_ACQUIRE) &&
	    pthread_equal(pthread_self(), stk_target))
		__atomic_store_n(&stk_n, backtrace(stk_frames, STK_MAX),
				 __ATOMIC_RELEASE);
	errno = saved;
}

static void stk_setup(void)
{
	struct sigaction sa, old;
	void *warm[2];
	int sig = SIGRTMIN + 3;

	(void)backtrace(warm, 2);
	if (sig > SIGRTMAX || sigaction(sig, NULL, &old) ||
	    old.sa_handler != SIG_DFL)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = stk_handler;
	sa.sa_flags = SA_RESTART;
	sigfillset(&sa.sa_mask);
	if (!sigaction(sig, &sa, NULL))
		stk_sig = sig;
}

/* Read a small /proc file of thread tid into buf; bytes read or -errno. */
static ssize_t task_file(pid_t tid, const char *name, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/%s", (int)tid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0)
		n = -errno;
	else
		buf[n] = 0;
	close(fd);
	return n;
}

int thread_cpu_get(pid_t tid, struct thread_cpu *out)
{
	char buf[128];
	long long run, wait;
	ssize_t n = task_file(tid, "schedstat", buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	if (sscanf(buf, "%lld %lld", &run, &wait) != 2)
		return -ENOENT;
	out->run_ns = run;
	out->wait_ns = wait;
	return 0;
}

void thread_state_describe(pid_t tid, char *buf, size_t len)
{
	char stat[512], wchan[128];
	const char *p;
	const char *what;
	ssize_t n;

	n = task_file(tid, "stat", stat, sizeof(stat));
	/* The state follows the ")" that ends the command name. */
	p = n > 0 ? strrchr(stat, ')') : NULL;
	if (!p || p[1] != ' ' || !p[2]) {
		snprintf(buf, len, "in an unknown state (no /proc/self/task/%d)",
			 (int)tid);
		return;
	}
	switch (p[2]) {
	case 'R': what = "running or waiting for a CPU"; break;
	case 'S': what = "sleeping"; break;
	case 'D': what = "in uninterruptible I/O wait"; break;
	case 'T': case 't': what = "stopped"; break;
	default: what = "in another state"; break;
	}
	n = task_file(tid, "wchan", wchan, sizeof(wchan));
	if (n > 0 && strcmp(wchan, "0") != 0)
		snprintf(buf, len, "%s (state %c) in %s", what, p[2], wchan);
	else
		snprintf(buf, len, "%s (state %c)", what, p[2]);
}

/* "/lib/x86_64-linux-gnu/libc.so.6(__poll+0x4f) [0x7f..]" ->
 * "libc.so.6(__poll+0x4f)" */
static void frame_append(const char *sym, char *buf, size_t len, size_t *at)
{
	const char *open = strchr(sym, '(');
	const char *close = open ? strchr(open, ')') : NULL;
	const char *base = sym;
	const char *s;
	int n;

	for (s = sym; *s && (!open || s < open); s++)
		if (*s == '/')
			base = s + 1;
	if (close)
		n = snprintf(buf + *at, len - *at, "%s%.*s", *at ? " < " : "",
			     (int)(close + 1 - base), base);
	else
		n = snprintf(buf + *at, len - *at, "%s%s", *at ? " < " : "",
			     base);
	if (n > 0)
		*at = (size_t)n < len - *at ? *at + (size_t)n : len - 1;
}

void thread_stack_describe(pthread_t thr, unsigned wait_ms, char *buf,
			   size_t len)
{
	struct timespec ts = { 0, 1000000L };
	char **syms;
	size_t at = 0;
	unsigned waited;
	int n = -1;
	int rc;

	buf[0] = 0;
	pthread_once(&stk_once, stk_setup);
	if (!stk_sig) {
		snprintf(buf, len, "no stack (signal SIGRTMIN+3 is taken)");
		return;
	}
	pthread_mutex_lock(&stk_mu);
	stk_target = thr;
	__atomic_store_n(&stk_n, -1, __ATOMIC_RELAXED);
	__atomic_store_n(&stk_wanted, 1, __ATOMIC_RELEASE);
	rc = pthread_kill(thr, stk_sig);
	for (waited = 0; !rc; waited++) {
		n = __atomic_load_n(&stk_n, __ATOMIC_ACQUIRE);
		if (n >= 0 || waited >= wait_ms)
			break;
		nanosleep(&ts, NULL);
	}
	__atomic_store_n(&stk_wanted, 0, __ATOMIC_RELEASE);
	if (rc)
		snprintf(buf, len, "no stack (%s)", strerror(rc));
	else if (n < 0)
		snprintf(buf, len, "no stack (the thread did not take the "
			 "signal within %u ms: it is not running)", wait_ms);
	else if (n <= STK_SKIP)
		snprintf(buf, len, "no stack (empty)");
	else if (!(syms = backtrace_symbols(stk_frames + STK_SKIP,
					    n - STK_SKIP)))
		snprintf(buf, len, "no stack (out of memory)");
	else {
		for (int i = 0; i < n - STK_SKIP && at + 1 < len; i++)
			frame_append(syms[i], buf, len, &at);
		free(syms);
	}
	pthread_mutex_unlock(&stk_mu);
}
