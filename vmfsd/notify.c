/*
 * vmfsd's word to systemd (Type=notify, contrib/systemd/vmfs@.service):
 * READY=1 once the volume is mounted and served, STOPPING=1 when the
 * unmount begins, and STATUS= lines saying what start-up is doing or why
 * it failed (systemctl status shows the last one).  Through libsystemd's
 * sd_notify, which does nothing when NOTIFY_SOCKET is not set (vmfsd not
 * started by systemd), so the calls need no condition.
 *
 * NOTIFY_SOCKET stays in the environment: the stop comes long after the
 * start, and the helpers libfuse runs (fusermount3) ignore it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "vmfsd_int.h"

void vmfsd_notify_status(const char *fmt, ...)
{
	char msg[VMFSD_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One datagram, one line per field: a newline would end the field. */
	for (char *p = msg; *p; p++)
		if (*p == '\n')
			*p = ' ';
	sd_notifyf(0, "STATUS=%s", msg);
}

void vmfsd_notify_ready(const char *mountpoint, const char *vol_uuid,
			bool ro)
{
	sd_notifyf(0, "READY=1\nSTATUS=serving volume %s on %s%s", vol_uuid,
		   mountpoint, ro ? " read-only" : "");
}

void vmfsd_notify_stopping(const char *mountpoint)
{
	sd_notifyf(0, "STOPPING=1\nSTATUS=unmounting %s", mountpoint);
}
