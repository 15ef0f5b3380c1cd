/*
 * Talking to the vmfsd of a mount point over its control socket (the
 * protocol and client: include/vmfs/vmfsd.h), with the messages `vmfs
 * info MOUNTPOINT` and `vmfs umount` share.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmfs/vmfsd.h"
#include "cli.h"

/*
 * -ENOENT covers "nobody listens under that name" (no daemon, a dead one,
 * one in another network namespace) and "the one listening serves another
 * mount point" (two paths whose names collide): the caller tells them
 * apart by looking at the mount.
 */
int cli_daemon_open(const char *mp, struct vmfsd_ctl **out,
		    struct vmfsd_info *info)
{
	char real[PATH_MAX], msg[1024];
	const char *want = realpath(mp, real) ? real : mp;
	int rc;

	rc = vmfsd_ctl_connect(mp, out);
	if (rc == -EACCES) {
		cli_err("permission denied: only root may talk to vmfsd for %s "
			"(and the user it runs as); run this as root", mp);
		return rc;
	}
	if (rc == -ENOENT)
		return rc;          /* the caller says what that means for it */
	if (rc) {
		cli_err("cannot reach the vmfsd of %s: %s", mp, strerror(-rc));
		return rc;
	}
	rc = vmfsd_ctl_info(*out, info, msg, sizeof(msg));
	if (!rc && strcmp(info->mountpoint, want))
		rc = -ENOENT;       /* a name collision: not our daemon */
	if (rc) {
		if (rc != -ENOENT && msg[0])
			cli_err("the vmfsd of %s refused: %s", mp, msg);
		else if (rc != -ENOENT)
			cli_err("the vmfsd of %s does not answer: %s; see its log",
				mp, strerror(-rc));
		vmfsd_ctl_disconnect(*out);
		*out = NULL;
	}
	return rc;
}
