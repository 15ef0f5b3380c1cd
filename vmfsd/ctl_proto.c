/*
 * The control socket's wire format, shared by the daemon (vmfsd/ctl.c)
 * and its clients (vmfsd/ctl_client.c): the frame around a message and
 * the JSON bodies (json-c).
 *
 * A frame is struct vmfsd_ctl_frame (include/vmfs/vmfsd.h) followed by
 * body_len bytes of JSON text whose last byte is its NUL.
 *
 * Decoding is lenient about what may grow and strict about what cannot:
 * unknown fields are ignored and missing ones stay zero (so an older CLI
 * reads a newer daemon's reply, and the reverse), but a field of the
 * wrong JSON type, or a frame whose sizes disagree, is -EBADMSG.
 */
#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "vmfs/vmfsd.h"

int vmfsd_ctl_name(const char *mountpoint, char *out, size_t len)
{
	/* FNV-1a: stable across versions and machines, unlike a seeded hash.
	 * A collision is caught by the client, which checks the mount point
	 * the daemon reports. */
	uint64_t h = 0xcbf29ce484222325ULL;
	int n;

	for (const unsigned char *p = (const unsigned char *)mountpoint; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	n = snprintf(out, len, "vmfsd-%016" PRIx64, h);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static ssize_t ctl_frame(uint32_t type, bool reply, int err, const char *body,
			 void *buf, size_t len)
{
	struct vmfsd_ctl_frame f;
	size_t blen = strlen(body) + 1, total = sizeof(f) + blen;

	if (total > len || total > VMFSD_CTL_MSG_MAX)
		return -E2BIG;
	memset(&f, 0, sizeof(f));
	if (reply) {
		f.qb.res.id = (int32_t)type;
		f.qb.res.size = (int32_t)total;
		f.qb.res.error = err;
	} else {
		f.qb.req.id = (int32_t)type;
		f.qb.req.size = (int32_t)total;
	}
	f.version = VMFSD_CTL_VERSION;
	f.body_len = (uint32_t)blen;
	memcpy(buf, &f, sizeof(f));
	memcpy((char *)buf + sizeof(f), body, blen);
	return (ssize_t)total;
}

ssize_t vmfsd_ctl_req_frame(uint32_t type, const char *body, void *buf,
			    size_t len)
{
	return ctl_frame(type, false, 0, body, buf, len);
}

ssize_t vmfsd_ctl_reply_frame(uint32_t type, int err, const char *body,
			      void *buf, size_t len)
{
	return ctl_frame(type, true, err, body, buf, len);
}

/* The checks both directions share; *f is a copy (buf may be unaligned). */
static int ctl_parse(const void *buf, size_t len, int32_t qb_size,
		     struct vmfsd_ctl_frame *f, const char **body)
{
	const char *b = (const char *)buf + sizeof(*f);
	json_object *o;
	bool ok;

	if (qb_size < 0 || (size_t)qb_size != len)
		return -EBADMSG;
	if (f->version != VMFSD_CTL_VERSION)
		return -EPROTONOSUPPORT;
	if (f->body_len == 0 || f->body_len != len - sizeof(*f) ||
	    memchr(b, '\0', f->body_len) != b + f->body_len - 1)
		return -EBADMSG;
	/* Every body is a JSON object, whatever the type: checked here once,
	 * so no handler meets text it cannot read. */
	o = json_tokener_parse(b);
	ok = o && json_object_is_type(o, json_type_object);
	json_object_put(o);
	if (!ok)
		return -EBADMSG;
	*body = b;
	return 0;
}

int vmfsd_ctl_req_parse(const void *buf, size_t len, uint32_t *type,
			uint32_t *version, const char **body)
{
	struct vmfsd_ctl_frame f;

	if (len < sizeof(f))
		return -EBADMSG;
	memcpy(&f, buf, sizeof(f));
	*type = (uint32_t)f.qb.req.id;
	*version = f.version;
	return ctl_parse(buf, len, f.qb.req.size, &f, body);
}

int vmfsd_ctl_reply_parse(const void *buf, size_t len, uint32_t *type,
			  int *err, const char **body)
{
	struct vmfsd_ctl_frame f;

	if (len < sizeof(f))
		return -EBADMSG;
	memcpy(&f, buf, sizeof(f));
	*type = (uint32_t)f.qb.res.id;
	*err = f.qb.res.error;
	return ctl_parse(buf, len, f.qb.res.size, &f, body);
}

/* ---- bodies -------------------------------------------------------------- */

/* The fields of a body, for both directions: one table per body keeps
 * the encoder and the decoder from drifting apart. */
enum ctl_ftype { F_STR, F_I64, F_U64, F_U32, F_PID, F_INT, F_BOOL };

struct ctl_field {
	const char *key;
	enum ctl_ftype type;
	size_t off, size;
};

#define FLD(st, key, type, member) \
	{ key, type, offsetof(struct st, member), sizeof(((struct st *)0)->member) }

static const struct ctl_field info_fields[] = {
	FLD(vmfsd_info, "pid", F_PID, pid),
	FLD(vmfsd_info, "since_ns", F_I64, since_ns),
	FLD(vmfsd_info, "version", F_STR, version),
	FLD(vmfsd_info, "vol_uuid", F_STR, vol_uuid),
	FLD(vmfsd_info, "host_uuid", F_STR, host_uuid),
	FLD(vmfsd_info, "host_name", F_STR, host_name),
	FLD(vmfsd_info, "lock_primitive", F_STR, lock_primitive),
	FLD(vmfsd_info, "lun", F_STR, lun),
	FLD(vmfsd_info, "mountpoint", F_STR, mountpoint),
	FLD(vmfsd_info, "state_dir", F_STR, state_dir),
	FLD(vmfsd_info, "fuse_threads", F_U32, fuse_threads),
	FLD(vmfsd_info, "paths", F_STR, paths),
	FLD(vmfsd_info, "path_failovers", F_U32, path_failovers),
	FLD(vmfsd_info, "read_only", F_BOOL, read_only),
	FLD(vmfsd_info, "hb_slot", F_U32, hb_slot),
	FLD(vmfsd_info, "hb_generation", F_U64, hb_generation),
	FLD(vmfsd_info, "lease_ms", F_U32, lease_ms),
	FLD(vmfsd_info, "renew_ms", F_U32, renew_ms),
	FLD(vmfsd_info, "fence_ms", F_U32, fence_ms),
	FLD(vmfsd_info, "renew_last_ms", F_U32, renew_last_ms),
	FLD(vmfsd_info, "renew_max_ms", F_U32, renew_max_ms),
	FLD(vmfsd_info, "fenced", F_BOOL, fenced),
	FLD(vmfsd_info, "journal_commits", F_U64, jnl_commits),
	FLD(vmfsd_info, "journal_images", F_U64, jnl_images),
	FLD(vmfsd_info, "journal_ring_blocks", F_U64, jnl_ring_blocks),
	FLD(vmfsd_info, "journal_flushes", F_U64, jnl_flushes),
	FLD(vmfsd_info, "journal_checkpoints", F_U64, jnl_checkpoints),
	FLD(vmfsd_info, "journal_forced", F_U64, jnl_forced),
	FLD(vmfsd_info, "cache_budget_bytes", F_U64, cache_budget_bytes),
	FLD(vmfsd_info, "cache_used_bytes", F_U64, cache_used_bytes),
	FLD(vmfsd_info, "cache_fixed_bytes", F_U64, cache_fixed_bytes),
	FLD(vmfsd_info, "cache_index_bytes", F_U64, cache_index_bytes),
	FLD(vmfsd_info, "cache_inode_bytes", F_U64, cache_inode_bytes),
	FLD(vmfsd_info, "cache_inodes", F_U64, cache_inodes),
	FLD(vmfsd_info, "cache_evictions", F_U64, cache_evictions),
	FLD(vmfsd_info, "kcache_names", F_U64, kcache_names),
	FLD(vmfsd_info, "kcache_inodes", F_U64, kcache_inodes),
	FLD(vmfsd_info, "kcache_forgotten", F_U64, kcache_forgotten),
	FLD(vmfsd_info, "kcache_expired", F_U64, kcache_expired),
	FLD(vmfsd_info, "cluster_state", F_STR, cluster_state),
	FLD(vmfsd_info, "cluster_why", F_STR, cluster_why),
	FLD(vmfsd_info, "cluster_group", F_STR, cluster_group),
	FLD(vmfsd_info, "cluster_nodeid", F_U32, cluster_nodeid),
	FLD(vmfsd_info, "cluster_quorate", F_BOOL, cluster_quorate),
	FLD(vmfsd_info, "cluster_joins", F_U32, cluster_joins),
	FLD(vmfsd_info, "cluster_rejected", F_U64, cluster_rejected),
	FLD(vmfsd_info, "cluster_caching", F_BOOL, cluster_caching),
	FLD(vmfsd_info, "cluster_cached", F_U64, cluster_cached),
	FLD(vmfsd_info, "cluster_asked", F_U64, cluster_asked),
	FLD(vmfsd_info, "cluster_answered", F_U64, cluster_answered),
	FLD(vmfsd_info, "cluster_ask_timeouts", F_U64, cluster_ask_timeouts),
	FLD(vmfsd_info, "cluster_requests", F_U64, cluster_requests),
	FLD(vmfsd_info, "cluster_handed", F_U64, cluster_handed),
	FLD(vmfsd_info, "disk_asked", F_U64, disk_asked),
	FLD(vmfsd_info, "disk_requests", F_U64, disk_requests),
	FLD(vmfsd_info, "disk_busy", F_U64, disk_busy),
	FLD(vmfsd_info, "ha_events", F_STR, ha_events),
};

/* One element of the info's "cluster_members" array. */
static const struct ctl_field member_fields[] = {
	FLD(vmfsd_cluster_member, "nodeid", F_U32, nodeid),
	FLD(vmfsd_cluster_member, "pid", F_U32, pid),
	FLD(vmfsd_cluster_member, "known", F_BOOL, known),
	FLD(vmfsd_cluster_member, "host_uuid", F_STR, host_uuid),
	FLD(vmfsd_cluster_member, "slot", F_U32, slot),
	FLD(vmfsd_cluster_member, "hb_gen", F_U64, hb_gen),
	FLD(vmfsd_cluster_member, "host_name", F_STR, host_name),
	FLD(vmfsd_cluster_member, "node_name", F_STR, node_name),
	FLD(vmfsd_cluster_member, "node_addr", F_STR, node_addr),
};

static const struct ctl_field close_fields[] = {
	FLD(vmfsd_close_status, "pid", F_PID, pid),
	FLD(vmfsd_close_status, "error", F_INT, err),
	FLD(vmfsd_close_status, "unmounted", F_BOOL, unmounted),
	FLD(vmfsd_close_status, "message", F_STR, msg),
};

static const struct ctl_field grow_fields[] = {
	FLD(vmfsd_grow_status, "lun_bytes", F_U64, lun_bytes),
	FLD(vmfsd_grow_status, "old_size_bytes", F_U64, old_size_bytes),
	FLD(vmfsd_grow_status, "new_size_bytes", F_U64, new_size_bytes),
	FLD(vmfsd_grow_status, "old_file_blocks", F_U64, old_file_blocks),
	FLD(vmfsd_grow_status, "new_file_blocks", F_U64, new_file_blocks),
	FLD(vmfsd_grow_status, "max_file_blocks", F_U64, max_file_blocks),
	FLD(vmfsd_grow_status, "max_size_bytes", F_U64, max_size_bytes),
	FLD(vmfsd_grow_status, "file_block_size", F_U32, file_block_size),
	FLD(vmfsd_grow_status, "capped", F_BOOL, capped),
	FLD(vmfsd_grow_status, "finished_interrupted", F_BOOL, finished),
	FLD(vmfsd_grow_status, "message", F_STR, msg),
};

/* An error reply: {"message": "..."}, the close status's own key. */
static const struct ctl_field error_fields[] = {
	FLD(vmfsd_close_status, "message", F_STR, msg),
};

/* The fields of in as a new JSON object, or NULL when out of memory. */
static json_object *ctl_obj(const struct ctl_field *fl, size_t n, const void *in)
{
	const char *base = in;
	json_object *o = json_object_new_object(), *v;

	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const void *p = base + fl[i].off;

		switch (fl[i].type) {
		case F_STR:
			v = json_object_new_string_len(p, (int)strnlen(p, fl[i].size));
			break;
		case F_I64:
			v = json_object_new_int64(*(const int64_t *)p);
			break;
		case F_U64:
			v = json_object_new_uint64(*(const uint64_t *)p);
			break;
		case F_U32:
			v = json_object_new_int64(*(const uint32_t *)p);
			break;
		case F_PID:
			v = json_object_new_int64(*(const pid_t *)p);
			break;
		case F_INT:
			v = json_object_new_int64(*(const int *)p);
			break;
		default:
			v = json_object_new_boolean(*(const bool *)p);
			break;
		}
		if (!v || json_object_object_add(o, fl[i].key, v)) {
			json_object_put(v);
			json_object_put(o);
			return NULL;
		}
	}
	return o;
}

/* o as text (malloc'd), and o put; NULL when o is. */
static char *ctl_text(json_object *o)
{
	char *out;

	if (!o)
		return NULL;
	out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return out;
}

static char *ctl_encode(const struct ctl_field *fl, size_t n, const void *in)
{
	return ctl_text(ctl_obj(fl, n, in));
}

/* Integers must be JSON integers within the field's range. */
static int ctl_get_int(json_object *v, int64_t min, int64_t max, int64_t *out)
{
	if (!json_object_is_type(v, json_type_int))
		return -EBADMSG;
	errno = 0;
	*out = json_object_get_int64(v);
	if (errno || *out < min || *out > max)
		return -EBADMSG;
	return 0;
}

/* The fields of object o into outp. */
static int ctl_fields_get(const struct ctl_field *fl, size_t n, json_object *o,
			  void *outp)
{
	char *base = outp;
	json_object *v;
	int64_t x;
	int ret = 0;

	if (!json_object_is_type(o, json_type_object))
		return -EBADMSG;
	for (size_t i = 0; i < n && !ret; i++) {
		void *p = base + fl[i].off;

		if (!json_object_object_get_ex(o, fl[i].key, &v))
			continue;
		switch (fl[i].type) {
		case F_STR:
			if (!json_object_is_type(v, json_type_string))
				ret = -EBADMSG;
			else
				snprintf(p, fl[i].size, "%s", json_object_get_string(v));
			break;
		case F_U64:
			/* json-c keeps values above INT64_MAX as unsigned. */
			if (!json_object_is_type(v, json_type_int))
				ret = -EBADMSG;
			else
				*(uint64_t *)p = json_object_get_uint64(v);
			break;
		case F_BOOL:
			if (!json_object_is_type(v, json_type_boolean))
				ret = -EBADMSG;
			else
				*(bool *)p = json_object_get_boolean(v);
			break;
		case F_I64:
			ret = ctl_get_int(v, INT64_MIN, INT64_MAX, &x);
			if (!ret)
				*(int64_t *)p = x;
			break;
		case F_U32:
			ret = ctl_get_int(v, 0, UINT32_MAX, &x);
			if (!ret)
				*(uint32_t *)p = (uint32_t)x;
			break;
		case F_PID:
			ret = ctl_get_int(v, 0, INT32_MAX, &x);
			if (!ret)
				*(pid_t *)p = (pid_t)x;
			break;
		default:
			ret = ctl_get_int(v, INT32_MIN, INT32_MAX, &x);
			if (!ret)
				*(int *)p = (int)x;
			break;
		}
	}
	return ret;
}

static int ctl_decode(const struct ctl_field *fl, size_t n, const char *body,
		      void *outp)
{
	json_object *o = json_tokener_parse(body);
	int ret = o ? ctl_fields_get(fl, n, o, outp) : -EBADMSG;

	json_object_put(o);
	return ret;
}

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* The info's fields, and its cluster members as an array of objects. */
char *vmfsd_info_encode(const struct vmfsd_info *in)
{
	json_object *o = ctl_obj(info_fields, NELEMS(info_fields), in);
	json_object *arr = o ? json_object_new_array() : NULL, *m;
	uint32_t n = in->cluster_nmembers;

	if (!arr || json_object_object_add(o, "cluster_members", arr)) {
		json_object_put(arr);
		json_object_put(o);
		return NULL;
	}
	for (uint32_t i = 0; i < n && i < VMFSD_CLUSTER_MAX_MEMBERS; i++) {
		m = ctl_obj(member_fields, NELEMS(member_fields),
			    &in->cluster_members[i]);
		if (!m || json_object_array_add(arr, m)) {
			json_object_put(m);
			json_object_put(o);
			return NULL;
		}
	}
	return ctl_text(o);
}

int vmfsd_info_decode(const char *body, struct vmfsd_info *out)
{
	json_object *o = json_tokener_parse(body), *arr;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!o)
		return -EBADMSG;
	ret = ctl_fields_get(info_fields, NELEMS(info_fields), o, out);
	if (!ret && json_object_object_get_ex(o, "cluster_members", &arr)) {
		size_t n;

		if (!json_object_is_type(arr, json_type_array))
			ret = -EBADMSG;
		n = ret ? 0 : json_object_array_length(arr);
		for (size_t i = 0; i < n && !ret; i++) {
			if (i == VMFSD_CLUSTER_MAX_MEMBERS) {
				ret = -EBADMSG;
				break;
			}
			ret = ctl_fields_get(member_fields, NELEMS(member_fields),
					     json_object_array_get_idx(arr, i),
					     &out->cluster_members[i]);
			out->cluster_nmembers = (uint32_t)i + 1;
		}
	}
	json_object_put(o);
	return ret;
}

char *vmfsd_close_status_encode(const struct vmfsd_close_status *in)
{
	return ctl_encode(close_fields, NELEMS(close_fields), in);
}

char *vmfsd_grow_status_encode(const struct vmfsd_grow_status *in)
{
	return ctl_encode(grow_fields, NELEMS(grow_fields), in);
}

int vmfsd_grow_status_decode(const char *body, struct vmfsd_grow_status *out)
{
	memset(out, 0, sizeof(*out));
	return ctl_decode(grow_fields, NELEMS(grow_fields), body, out);
}

int vmfsd_close_status_decode(const char *body, struct vmfsd_close_status *out)
{
	memset(out, 0, sizeof(*out));
	return ctl_decode(close_fields, NELEMS(close_fields), body, out);
}

char *vmfsd_ctl_error_encode(const char *msg)
{
	struct vmfsd_close_status st = { 0 };

	snprintf(st.msg, sizeof(st.msg), "%s", msg);
	return ctl_encode(error_fields, NELEMS(error_fields), &st);
}

void vmfsd_ctl_error_decode(const char *body, char *msg, size_t len)
{
	struct vmfsd_close_status st = { 0 };

	if (ctl_decode(error_fields, NELEMS(error_fields), body, &st))
		st.msg[0] = '\0';
	snprintf(msg, len, "%s", st.msg);
}
