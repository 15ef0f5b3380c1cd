/*
 * Serialized logging (include/vmfs/log.h says why).
 */
#include <pthread.h>
#include <stdarg.h>

#include "vmfs/log.h"

static pthread_mutex_t vmfs_log_mu = PTHREAD_MUTEX_INITIALIZER;

void vmfs_log_real(struct qb_log_callsite *cs, ...)
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
