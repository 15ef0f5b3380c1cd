/*
 * A minimal QMP client (QEMU Machine Protocol, docs/interop/qmp-spec):
 * greeting, qmp_capabilities, one command, its return.  Each reply is one
 * JSON object per line; asynchronous events ({"event": ...}) may come
 * between and are skipped.  Parsed with json-c.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <json-c/json.h>

#include "vmfs/hypervisor.h"

#define QMP_LINE_MAX 8192

struct qmp {
	int fd;
	char buf[QMP_LINE_MAX];
	size_t len;
};

/* The next line that is not an event, parsed; NULL with *ret set. */
static json_object *qmp_read(struct qmp *q, int timeout_ms, int *ret)
{
	for (;;) {
		char *nl = memchr(q->buf, '\n', q->len);

		if (nl) {
			json_object *o;

			*nl = 0;
			o = json_tokener_parse(q->buf);
			q->len -= (size_t)(nl + 1 - q->buf);
			memmove(q->buf, nl + 1, q->len);
			if (!o) {
				*ret = -EPROTO;
				return NULL;
			}
			if (json_object_object_get_ex(o, "event", NULL)) {
				json_object_put(o);
				continue;
			}
			return o;
		}
		if (q->len == sizeof(q->buf)) {
			*ret = -EPROTO;
			return NULL;
		}
		struct pollfd p = { .fd = q->fd, .events = POLLIN };
		int n = poll(&p, 1, timeout_ms);

		if (n <= 0) {
			*ret = n ? -errno : -ETIMEDOUT;
			return NULL;
		}
		ssize_t r = read(q->fd, q->buf + q->len, sizeof(q->buf) - q->len);

		if (r <= 0) {
			*ret = r ? -errno : -ECONNRESET;
			return NULL;
		}
		q->len += (size_t)r;
	}
}

static int qmp_exec(struct qmp *q, const char *cmd, int timeout_ms, char *err,
		    size_t errlen)
{
	char line[256];
	json_object *o, *e, *d;
	int ret = 0, n;

	n = snprintf(line, sizeof(line), "{\"execute\": \"%s\"}\n", cmd);
	if (write(q->fd, line, (size_t)n) != n)
		return -errno ? -errno : -EIO;
	o = qmp_read(q, timeout_ms, &ret);
	if (!o)
		return ret;
	if (json_object_object_get_ex(o, "error", &e)) {
		snprintf(err, errlen, "QMP %s: %s", cmd,
			 json_object_object_get_ex(e, "desc", &d) ?
			 json_object_get_string(d) : "error");
		ret = -EPROTO;
	}
	json_object_put(o);
	return ret;
}

int hv_qmp_command(const char *qmp_path, const char *command, int timeout_ms,
		   char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct qmp q = { .len = 0 };
	json_object *greet;
	int ret = 0;

	err[0] = 0;
	if (strlen(qmp_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, qmp_path);
	q.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (q.fd < 0)
		return -errno;
	if (connect(q.fd, (struct sockaddr *)&sa, sizeof(sa))) {
		ret = -errno;
		goto out;
	}
	greet = qmp_read(&q, timeout_ms, &ret);
	if (!greet)
		goto out;
	json_object_put(greet);
	ret = qmp_exec(&q, "qmp_capabilities", timeout_ms, err, errlen);
	if (!ret)
		ret = qmp_exec(&q, command, timeout_ms, err, errlen);
out:
	close(q.fd);
	return ret;
}
