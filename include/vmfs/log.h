/*
 * Logging through libqb, with every message serialized.
 *
 * libqb's qb_log_real_va_() guards against recursion with a process-wide
 * flag that is not per thread: a message logged while another thread is
 * inside the logger is dropped without a trace.  With many threads that
 * is not rare, and it lost the very lines an admin needs: a host that
 * fenced itself logged it from one thread while its FUSE threads logged
 * their failed writes, and the fence lines never reached the log.  Every
 * qb_log of ours goes through vmfs_log_real(), which takes one mutex
 * around libqb's logger.  Include this instead of <qb/qblog.h>.
 */
#ifndef VMFS_LOG_H
#define VMFS_LOG_H

#include <qb/qblog.h>

void vmfs_log_real(struct qb_log_callsite *cs, ...);

/* qb_log's expansion calls qb_log_real_() by name: route it to ours. */
#define qb_log_real_(...) vmfs_log_real(__VA_ARGS__)

#endif /* VMFS_LOG_H */
