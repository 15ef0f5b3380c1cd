/*
 * The control socket's client: connect to the vmfsd of a mount point,
 * send a request, wait for its reply.  Library code for the CLI (and the
 * tests): it neither prints nor exits; what went wrong comes back as
 * -errno or as the daemon's own message.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <qb/qbipcc.h>

#include "vmfs/vmfsd.h"

struct vmfsd_ctl {
	qb_ipcc_connection_t *qb;
	char req[VMFSD_CTL_MSG_MAX];
	char buf[VMFSD_CTL_MSG_MAX];
};

int vmfsd_ctl_connect(const char *mountpoint, struct vmfsd_ctl **out)
{
	char real[PATH_MAX];

	/* The daemon named its service after realpath() of its mount point;
	 * a dead or hung mount cannot be resolved, so fall back to the path
	 * as given (`vmfs` makes it absolute). */
	return vmfsd_ctl_connect_canonical(realpath(mountpoint, real) ? real :
					   mountpoint, -1, out);
}

/* No listener: libqb says ECONNREFUSED or ENOENT. */
static int ctl_connect_err(void)
{
	int ret = errno ? -errno : -ENOENT;

	return ret == -ECONNREFUSED ? -ENOENT : ret;
}

int vmfsd_ctl_connect_canonical(const char *mountpoint, int timeout_ms,
				struct vmfsd_ctl **out)
{
	char name[VMFSD_CTL_NAME_MAX];
	struct pollfd p = { .events = POLLIN };
	struct vmfsd_ctl *c;
	int ret;

	ret = vmfsd_ctl_name(mountpoint, name, sizeof(name));
	if (ret)
		return ret;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (timeout_ms < 0) {
		c->qb = qb_ipcc_connect(name, VMFSD_CTL_MSG_MAX);
		if (!c->qb) {
			ret = ctl_connect_err();
			free(c);
			return ret;
		}
		*out = c;
		return 0;
	}
	/*
	 * A daemon that is stopped (SIGSTOP, a hung host) still has its
	 * socket, and the kernel queues our connection: only its answer to
	 * libqb's setup request says it is there.  Wait for that answer no
	 * longer than timeout_ms.
	 */
	c->qb = qb_ipcc_connect_async(name, VMFSD_CTL_MSG_MAX, &p.fd);
	if (!c->qb) {
		ret = ctl_connect_err();
		free(c);
		return ret;
	}
	do {
		ret = poll(&p, 1, timeout_ms);
	} while (ret < 0 && errno == EINTR);
	if (ret <= 0) {
		qb_ipcc_disconnect(c->qb);
		free(c);
		return ret ? -errno : -ETIMEDOUT;
	}
	errno = 0;
	if (qb_ipcc_connect_continue(c->qb)) {
		/* The daemon refused us, or went away: c->qb is freed. */
		ret = ctl_connect_err();
		free(c);
		return ret;
	}
	*out = c;
	return 0;
}

void vmfsd_ctl_disconnect(struct vmfsd_ctl *c)
{
	if (!c)
		return;
	qb_ipcc_disconnect(c->qb);
	free(c);
}

int vmfsd_ctl_call_raw(struct vmfsd_ctl *c, const void *msg, size_t len,
		       uint32_t type, int timeout_ms, int *err, char **reply)
{
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
	const char *rbody;
	uint32_t rtype;
	ssize_t n;
	int ret;

	*reply = NULL;
	n = qb_ipcc_sendv_recv(c->qb, &iov, 1, c->buf, sizeof(c->buf), timeout_ms);
	if (n < 0)
		return n == -EAGAIN ? -ETIMEDOUT : (int)n;
	ret = vmfsd_ctl_reply_parse(c->buf, (size_t)n, &rtype, err, &rbody);
	if (ret)
		return ret;
	if (rtype != type)
		return -EBADMSG;
	*reply = strdup(rbody);
	return *reply ? 0 : -ENOMEM;
}

int vmfsd_ctl_call(struct vmfsd_ctl *c, uint32_t type, const char *body,
		   int timeout_ms, int *err, char **reply)
{
	ssize_t n;

	/* The request is framed in its own buffer: the reply lands in c->buf. */
	n = vmfsd_ctl_req_frame(type, body, c->req, sizeof(c->req));
	if (n < 0)
		return (int)n;
	return vmfsd_ctl_call_raw(c, c->req, (size_t)n, type, timeout_ms, err,
				  reply);
}

int vmfsd_ctl_info(struct vmfsd_ctl *c, struct vmfsd_info *out, char *msg,
		   size_t msglen)
{
	char *reply;
	int err, ret;

	msg[0] = '\0';
	ret = vmfsd_ctl_call(c, VMFSD_CTL_INFO, "{}", 10000, &err, &reply);
	if (ret)
		return ret;
	if (err)
		vmfsd_ctl_error_decode(reply, msg, msglen);
	else
		err = vmfsd_info_decode(reply, out);
	free(reply);
	return err;
}

int vmfsd_ctl_umount(struct vmfsd_ctl *c, int timeout_ms,
		     struct vmfsd_close_status *out)
{
	return vmfsd_ctl_umount_vms(c, timeout_ms, false, out);
}

int vmfsd_ctl_grow(struct vmfsd_ctl *c, bool dry_run, int timeout_ms,
		   int *err, struct vmfsd_grow_status *out)
{
	char *reply;
	int ret;

	ret = vmfsd_ctl_call(c, VMFSD_CTL_GROW, dry_run ?
			     "{\"dry_run\": true}" : "{}", timeout_ms, err,
			     &reply);
	if (ret)
		return ret;
	ret = vmfsd_grow_status_decode(reply, out);
	free(reply);
	return ret;
}

int vmfsd_ctl_umount_vms(struct vmfsd_ctl *c, int timeout_ms, bool stop_vms,
			 struct vmfsd_close_status *out)
{
	char *reply;
	int err, ret;

	ret = vmfsd_ctl_call(c, VMFSD_CTL_UMOUNT, stop_vms ?
			     "{\"stop_vms\": true}" : "{}", timeout_ms, &err,
			     &reply);
	if (ret)
		return ret;
	ret = vmfsd_close_status_decode(reply, out);
	free(reply);
	/* The frame's error is the outcome; the body says what it means. */
	out->err = err;
	return ret;
}
