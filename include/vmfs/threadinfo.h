/*
 * threadinfo: what one thread of this process is doing, told from
 * outside it, for warnings about work that takes too long (the heartbeat
 * renewal watchdog).  Linux only: /proc/self/task/TID and a signal that
 * makes the thread record its own stack.
 */
#ifndef VMFS_THREADINFO_H
#define VMFS_THREADINFO_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* CPU a thread has had, and has waited for, since it started
 * (/proc/self/task/TID/schedstat). */
struct thread_cpu {
	int64_t run_ns;    /* on a CPU */
	int64_t wait_ns;   /* runnable, waiting on a run queue */
};

/* 0, or -errno (the kernel keeps no such figures: -ENOENT). */
int thread_cpu_get(pid_t tid, struct thread_cpu *out);

/* "running", "sleeping in do_sys_poll", ... (/proc state and wchan). */
void thread_state_describe(pid_t tid, char *buf, size_t len);

/*
 * The user-space stack of thread thr, innermost first, as
 * "vmfsd(+0x1f2a0) < libc.so.6(__poll+0x4f) < ...".  Frames without a
 * symbol are offsets in their file: `addr2line -f -e bin/vmfsd 0x1f2a0`
 * names them.  Interrupts the thread with a signal (SA_RESTART; the
 * handler only records the stack) and waits for it at most wait_ms; one
 * caller at a time process-wide.  On failure buf says why.
 */
void thread_stack_describe(pthread_t thr, unsigned wait_ms, char *buf,
			   size_t len);

#endif
