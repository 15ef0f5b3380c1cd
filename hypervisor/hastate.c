/*
 * The VM's run record, vmdir/HV_HA_STATE_NAME (include/vmfs/hypervisor.h):
 *
 *   { "ha": true, "restart_priority": 10, "memory_mib": 128,
 *     "host_uuid": "...", "host_name": "h1", "started_ns": ...,
 *     "restarted_from_uuid": "...", "restarted_from_name": "h2",
 *     "restarted_why": "...", "restarted_ns": ... }
 *
 * Written by the host running the VM while it holds the config's open
 * lock, so two hosts never write it at once.  Written whole to a
 * temporary name and renamed over: a crash leaves the old record or the
 * new one, never half of one.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>

#include "vmfs/hypervisor.h"

#define HA_STATE_TEXT_MAX 8192
#define HS_BUSY_TRIES     100
#define HS_BUSY_WAIT_MS   50

static void hs_str(json_object *o, const char *key, char *out, size_t len)
{
	json_object *v;

	out[0] = 0;
	if (json_object_object_get_ex(o, key, &v) &&
	    json_object_is_type(v, json_type_string))
		snprintf(out, len, "%s", json_object_get_string(v));
}

static int64_t hs_int(json_object *o, const char *key)
{
	json_object *v;

	if (json_object_object_get_ex(o, key, &v) &&
	    json_object_is_type(v, json_type_int))
		return json_object_get_int64(v);
	return 0;
}

int hv_ha_state_read(const char *vmdir, struct hv_ha_state *s, char *err,
		     size_t errlen)
{
	char p[PATH_MAX + 32], *text;
	json_object *o, *v;
	ssize_t n;
	int fd;

	memset(s, 0, sizeof(*s));
	snprintf(p, sizeof(p), "%s/%s", vmdir, HV_HA_STATE_NAME);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	text = malloc(HA_STATE_TEXT_MAX + 1);
	if (!text) {
		close(fd);
		return -ENOMEM;
	}
	n = read(fd, text, HA_STATE_TEXT_MAX);
	close(fd);
	if (n < 0) {
		int ret = -errno;

		free(text);
		snprintf(err, errlen, "%s: %s", p, strerror(-ret));
		return ret;
	}
	text[n] = 0;
	o = json_tokener_parse(text);
	free(text);
	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		snprintf(err, errlen, "%s: not a JSON object; remove it if the "
			 "VM does not run ('vmfs vm status')", p);
		return -EINVAL;
	}
	s->ha = json_object_object_get_ex(o, "ha", &v) &&
		json_object_get_boolean(v);
	s->priority = (unsigned)hs_int(o, "restart_priority");
	s->memory_mib = (uint64_t)hs_int(o, "memory_mib");
	hs_str(o, "host_uuid", s->host_uuid, sizeof(s->host_uuid));
	hs_str(o, "host_name", s->host_name, sizeof(s->host_name));
	s->started_ns = hs_int(o, "started_ns");
	hs_str(o, "restarted_from_uuid", s->from_uuid, sizeof(s->from_uuid));
	hs_str(o, "restarted_from_name", s->from_name, sizeof(s->from_name));
	hs_str(o, "restarted_why", s->why, sizeof(s->why));
	s->restarted_ns = hs_int(o, "restarted_ns");
	hs_str(o, "migrating_to_uuid", s->moving_uuid, sizeof(s->moving_uuid));
	hs_str(o, "migrating_to_name", s->moving_name, sizeof(s->moving_name));
	json_object_put(o);
	return 0;
}

static int hs_write_once(const char *p, const char *tmp, const char *text,
			 size_t len)
{
	int fd, ret = 0;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	errno = 0;
	if (write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
	    fsync(fd))
		ret = errno ? -errno : -EIO;
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret && rename(tmp, p))
		ret = -errno;
	if (ret)
		unlink(tmp);
	return ret;
}

int hv_ha_state_write(const char *vmdir, const struct hv_ha_state *s)
{
	char p[PATH_MAX + 32], tmp[PATH_MAX + 40];
	json_object *o = json_object_new_object();
	const char *text;
	size_t len;
	int ret = 0;

	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "ha", json_object_new_boolean(s->ha));
	json_object_object_add(o, "restart_priority",
			       json_object_new_int((int)s->priority));
	json_object_object_add(o, "memory_mib",
			       json_object_new_int64((int64_t)s->memory_mib));
	json_object_object_add(o, "host_uuid", json_object_new_string(s->host_uuid));
	json_object_object_add(o, "host_name", json_object_new_string(s->host_name));
	json_object_object_add(o, "started_ns", json_object_new_int64(s->started_ns));
	if (s->restarted_ns) {
		json_object_object_add(o, "restarted_from_uuid",
				       json_object_new_string(s->from_uuid));
		json_object_object_add(o, "restarted_from_name",
				       json_object_new_string(s->from_name));
		json_object_object_add(o, "restarted_why",
				       json_object_new_string(s->why));
		json_object_object_add(o, "restarted_ns",
				       json_object_new_int64(s->restarted_ns));
	}
	if (s->moving_uuid[0]) {
		json_object_object_add(o, "migrating_to_uuid",
				       json_object_new_string(s->moving_uuid));
		json_object_object_add(o, "migrating_to_name",
				       json_object_new_string(s->moving_name));
	}
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
					      JSON_C_TO_STRING_SPACED);
	len = strlen(text);
	snprintf(p, sizeof(p), "%s/%s", vmdir, HV_HA_STATE_NAME);
	snprintf(tmp, sizeof(tmp), "%s.tmp", p);
	/* Other hosts read the record (their HA agents, `vmfs vm list`);
	 * while one has it open its lock refuses the rename (EBUSY) for a
	 * moment. */
	for (int tries = 0; tries < HS_BUSY_TRIES; tries++) {
		ret = hs_write_once(p, tmp, text, len);
		if (ret != -EBUSY)
			break;
		poll(NULL, 0, HS_BUSY_WAIT_MS);
	}
	json_object_put(o);
	return ret;
}

int hv_ha_state_clear(const char *vmdir)
{
	char p[PATH_MAX + 32];

	snprintf(p, sizeof(p), "%s/%s", vmdir, HV_HA_STATE_NAME);
	for (int tries = 0; tries < HS_BUSY_TRIES; tries++) {
		if (!unlink(p) || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			break;
		poll(NULL, 0, HS_BUSY_WAIT_MS);
	}
	return -errno;
}
