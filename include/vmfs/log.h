/*
 * Logging through libqb, with every message serialized.
 *
 * libqb's qb_log_real_va_() guards against recursion with a process-wide
 * flag that is not per thread: a message logged while another thread is
 * inside the logger is dropped without a trace.  With many threads that
 * is not rare, and it lost the very lines an admin needs: a host that
 * fenced itself logged it from one thread while its FUSE threads logged
 * their failed writes, and the fence lines never reached the log.
 * error/log.c defines qb_log_real_() itself, taking one mutex around
 * libqb's logger, and every program exports it, so that the messages of
 * libqb and of corosync's libraries (called through their PLT) take the
 * same mutex, as do libfuse's (vmfs_log_external): none of them can be
 * inside the logger while one of ours arrives.  Before, they could: with
 * corosync down, the cluster thread's try every second has libqb log
 * "qb_ipcc_disconnect()" (debug, for the blackbox), and a host continued
 * after a stop runs that overdue try at the very moment it fences: the
 * likely way a fenced host lost both its fence lines in a test run.
 * Include this instead of <qb/qblog.h>.
 */
#ifndef VMFS_LOG_H
#define VMFS_LOG_H

#include <stdint.h>

#include <qb/qblog.h>

/* qb_log_from_external_source() for a finished message, serialized with
 * every other message. */
void vmfs_log_external(const char *function, const char *filename,
		       uint8_t priority, uint32_t lineno, const char *msg);

#endif /* VMFS_LOG_H */
