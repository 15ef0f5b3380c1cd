/*
 * Serialized logging (include/vmfs/log.h says why).
 *
 * This qb_log_real_() stands in for libqb's own: the callsites of our
 * sources reach it through the qb_log() macro, and libqb's and corosync's
 * libraries reach it through their PLT, since the programs export it
 * (-Wl,--export-dynamic-symbol in the Makefile).  The mutex is recursive
 * so that a log target that itself logs does not deadlock; libqb then
 * drops the inner message, as it always did.  Messages that come from
 * outside libqb's callsites (libfuse's) take the mutex too:
 * vmfs_log_external().
 */
#include <pthread.h>
#include <stdarg.h>

#include "vmfs/log.h"

static pthread_mutex_t vmfs_log_mu = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

void qb_log_real_(struct qb_log_callsite *cs, ...)
{
	va_list ap;

	if (!cs)
		return;
	va_start(ap, cs);
	pthread_mutex_lock(&vmfs_log_mu);
	qb_log_real_va_(cs, ap);
	pthread_mutex_unlock(&vmfs_log_mu);
	va_end(ap);
}

void vmfs_log_external(const char *function, const char *filename,
		       uint8_t priority, uint32_t lineno, const char *msg)
{
	pthread_mutex_lock(&vmfs_log_mu);
	qb_log_from_external_source(function, filename, "%s", priority,
				    lineno, 0, msg);
	pthread_mutex_unlock(&vmfs_log_mu);
}
