/*
 * A minimal QMP client (QEMU Machine Protocol, docs/interop/qmp-spec):
 * greeting, qmp_capabilities, then commands and their returns.  Each
 * reply is one JSON object per line; asynchronous events ({"event": ...})
 * may come between: a session hands them to its callback, in order.
 * Parsed and built with json-c.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <json-c/json.h>

#include "vmfs/hypervisor.h"

#define QMP_LINE_MAX 65536

struct hv_qmp {
	int fd;
	hv_qmp_event_fn on_event;
	void *arg;
	size_t len;
	char buf[QMP_LINE_MAX];
};

/* An event's "timestamp" (QEMU's wall clock when it happened), in ns;
 * 0 if it has none. */
static int64_t qmp_event_time_ns(json_object *o)
{
	json_object *ts, *v;
	int64_t ns = 0;

	if (!json_object_object_get_ex(o, "timestamp", &ts))
		return 0;
	if (json_object_object_get_ex(ts, "seconds", &v))
		ns = json_object_get_int64(v) * 1000000000;
	if (ns && json_object_object_get_ex(ts, "microseconds", &v))
		ns += json_object_get_int64(v) * 1000;
	return ns > 0 ? ns : 0;
}

static void qmp_event(struct hv_qmp *q, json_object *o)
{
	json_object *ev, *data = NULL;

	if (!q->on_event || !json_object_object_get_ex(o, "event", &ev))
		return;
	json_object_object_get_ex(o, "data", &data);
	q->on_event(q->arg, json_object_get_string(ev),
		    data ? json_object_to_json_string_ext(data,
				JSON_C_TO_STRING_PLAIN) : "{}",
		    qmp_event_time_ns(o));
}

/*
 * The next line that is not an event, parsed (events go to the
 * callback); NULL with *ret set.  timeout_ms 0: only what has arrived
 * (-EAGAIN when no reply is complete).
 */
static json_object *qmp_read(struct hv_qmp *q, int timeout_ms, int *ret)
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
				qmp_event(q, o);
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
			*ret = n ? -errno : timeout_ms ? -ETIMEDOUT : -EAGAIN;
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

int hv_qmp_call(struct hv_qmp *q, const char *cmd, const char *args_json,
		int timeout_ms, char **result, char *err, size_t errlen)
{
	json_object *req = json_object_new_object(), *args = NULL, *o, *e, *d;
	const char *text;
	size_t n;
	int ret = 0;

	err[0] = 0;
	if (result)
		*result = NULL;
	if (!req)
		return -ENOMEM;
	if (args_json && !(args = json_tokener_parse(args_json))) {
		json_object_put(req);
		snprintf(err, errlen, "QMP %s: arguments are not JSON", cmd);
		return -EINVAL;
	}
	json_object_object_add(req, "execute", json_object_new_string(cmd));
	if (args)
		json_object_object_add(req, "arguments", args);
	text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	n = strlen(text);
	if (write(q->fd, text, n) != (ssize_t)n || write(q->fd, "\n", 1) != 1)
		ret = errno ? -errno : -EIO;
	json_object_put(req);
	if (ret)
		return ret;
	o = qmp_read(q, timeout_ms, &ret);
	if (!o)
		return ret;
	if (json_object_object_get_ex(o, "error", &e)) {
		snprintf(err, errlen, "QMP %s: %s", cmd,
			 json_object_object_get_ex(e, "desc", &d) ?
			 json_object_get_string(d) : "error");
		ret = -EPROTO;
	} else if (result && json_object_object_get_ex(o, "return", &d)) {
		*result = strdup(json_object_to_json_string_ext(d,
					JSON_C_TO_STRING_PLAIN));
		if (!*result)
			ret = -ENOMEM;
	}
	json_object_put(o);
	return ret;
}

int hv_qmp_open(const char *qmp_path, int timeout_ms, hv_qmp_event_fn on_event,
		void *arg, struct hv_qmp **out, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct hv_qmp *q;
	json_object *greet;
	int ret = 0;

	err[0] = 0;
	if (strlen(qmp_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, qmp_path);
	q = malloc(sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->len = 0;
	q->on_event = on_event;
	q->arg = arg;
	q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (q->fd < 0) {
		ret = -errno;
		free(q);
		return ret;
	}
	if (connect(q->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		ret = -errno;
		goto fail;
	}
	greet = qmp_read(q, timeout_ms, &ret);
	if (!greet)
		goto fail;
	json_object_put(greet);
	ret = hv_qmp_call(q, "qmp_capabilities", NULL, timeout_ms, NULL, err,
			  errlen);
	if (ret)
		goto fail;
	*out = q;
	return 0;
fail:
	hv_qmp_close(q);
	return ret;
}

int hv_qmp_fd(const struct hv_qmp *q)
{
	return q->fd;
}

int hv_qmp_poll_events(struct hv_qmp *q)
{
	json_object *o;
	int ret = 0;

	/* A reply with no command outstanding is not expected: dropped. */
	while ((o = qmp_read(q, 0, &ret)))
		json_object_put(o);
	return ret == -EAGAIN ? 0 : ret;
}

void hv_qmp_close(struct hv_qmp *q)
{
	if (!q)
		return;
	if (q->fd >= 0)
		close(q->fd);
	free(q);
}

int hv_qmp_command(const char *qmp_path, const char *command, int timeout_ms,
		   char *err, size_t errlen)
{
	struct hv_qmp *q;
	int ret = hv_qmp_open(qmp_path, timeout_ms, NULL, NULL, &q, err, errlen);

	if (ret)
		return ret;
	ret = hv_qmp_call(q, command, NULL, timeout_ms, NULL, err, errlen);
	hv_qmp_close(q);
	return ret;
}
