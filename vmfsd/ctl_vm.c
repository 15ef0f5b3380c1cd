/*
 * The VM requests of the control socket, client side, and the body of
 * VMFSD_CTL_VM_LIST (both ends): JSON through json-c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "vmfs/vmfsd.h"

#define VM_CALL_MS 30000

int vmfsd_vm_sock_path(const char *state_dir, uint64_t config_ino,
		       const char *kind, char out[VMFSD_VM_SOCK_MAX])
{
	int n = snprintf(out, VMFSD_VM_SOCK_MAX, "%s/vm/%llu.%s", state_dir,
			 (unsigned long long)config_ino, kind);

	if (n < 0 || n >= VMFSD_VM_SOCK_MAX || strchr(out, ','))
		return -ENAMETOOLONG;
	return 0;
}

/* A request whose reply carries nothing but its error. */
static int vm_call(struct vmfsd_ctl *c, uint32_t type, json_object *req,
		   char **reply_out, char *msg, size_t msglen)
{
	char *reply = NULL;
	int err, ret;

	msg[0] = 0;
	ret = vmfsd_ctl_call(c, type, json_object_to_json_string_ext(req,
			     JSON_C_TO_STRING_PLAIN), VM_CALL_MS, &err, &reply);
	json_object_put(req);
	if (ret)
		return ret;
	if (err)
		vmfsd_ctl_error_decode(reply, msg, msglen);
	if (err || !reply_out)
		free(reply);
	else
		*reply_out = reply;
	return err;
}

int vmfsd_ctl_vm_start(struct vmfsd_ctl *c, const char *path, char *msg,
		       size_t msglen)
{
	json_object *o = json_object_new_object();

	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "path", json_object_new_string(path));
	return vm_call(c, VMFSD_CTL_VM_START, o, NULL, msg, msglen);
}

int vmfsd_ctl_vm_stop(struct vmfsd_ctl *c, const char *path, bool force,
		      int timeout_ms, char *msg, size_t msglen)
{
	json_object *o = json_object_new_object();

	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "path", json_object_new_string(path));
	json_object_object_add(o, "force", json_object_new_boolean(force));
	json_object_object_add(o, "timeout_ms", json_object_new_int(timeout_ms));
	return vm_call(c, VMFSD_CTL_VM_STOP, o, NULL, msg, msglen);
}

int vmfsd_ctl_vm_migrate(struct vmfsd_ctl *c, const char *path, const char *to,
			 uint64_t bandwidth, char *msg, size_t msglen)
{
	json_object *o = json_object_new_object();

	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "path", json_object_new_string(path));
	json_object_object_add(o, "to", json_object_new_string(to));
	if (bandwidth)
		json_object_object_add(o, "bandwidth",
				       json_object_new_int64((int64_t)bandwidth));
	return vm_call(c, VMFSD_CTL_VM_MIGRATE, o, NULL, msg, msglen);
}

int vmfsd_ctl_vm_migrate_status(struct vmfsd_ctl *c, const char *path,
				char **json, char *msg, size_t msglen)
{
	json_object *o = json_object_new_object();

	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "path", json_object_new_string(path));
	return vm_call(c, VMFSD_CTL_VM_MIGRATE_STATUS, o, json, msg, msglen);
}

int vmfsd_ctl_vm_list(struct vmfsd_ctl *c, struct vmfsd_vm_info **out,
		      size_t *n, char *msg, size_t msglen)
{
	json_object *o = json_object_new_object();
	char *reply = NULL;
	int ret;

	if (!o)
		return -ENOMEM;
	ret = vm_call(c, VMFSD_CTL_VM_LIST, o, &reply, msg, msglen);
	if (ret)
		return ret;
	ret = vmfsd_vm_list_decode(reply, out, n);
	free(reply);
	return ret;
}

char *vmfsd_vm_list_encode(const struct vmfsd_vm_info *vms, size_t n)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();
	char *out = NULL;

	if (!o || !a) {
		json_object_put(o);
		json_object_put(a);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_new_object();

		json_object_object_add(e, "path", json_object_new_string(vms[i].path));
		json_object_object_add(e, "name", json_object_new_string(vms[i].name));
		json_object_object_add(e, "pid", json_object_new_int(vms[i].pid));
		json_object_object_add(e, "state", json_object_new_string(vms[i].state));
		json_object_object_add(e, "why", json_object_new_string(vms[i].why));
		json_object_object_add(e, "since_ns",
				       json_object_new_int64(vms[i].since_ns));
		json_object_array_add(a, e);
	}
	json_object_object_add(o, "vms", a);
	out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return out;
}

static void vm_str(json_object *e, const char *key, char *out, size_t len)
{
	json_object *v;

	if (json_object_object_get_ex(e, key, &v) &&
	    json_object_is_type(v, json_type_string))
		snprintf(out, len, "%s", json_object_get_string(v));
}

int vmfsd_vm_list_decode(const char *body, struct vmfsd_vm_info **out,
			 size_t *n)
{
	json_object *o = json_tokener_parse(body), *a, *v;
	struct vmfsd_vm_info *vms;
	size_t cnt;

	if (!o || !json_object_object_get_ex(o, "vms", &a) ||
	    !json_object_is_type(a, json_type_array)) {
		json_object_put(o);
		return -EBADMSG;
	}
	cnt = json_object_array_length(a);
	vms = calloc(cnt ? cnt : 1, sizeof(*vms));
	if (!vms) {
		json_object_put(o);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cnt; i++) {
		json_object *e = json_object_array_get_idx(a, i);

		vm_str(e, "path", vms[i].path, sizeof(vms[i].path));
		vm_str(e, "name", vms[i].name, sizeof(vms[i].name));
		vm_str(e, "state", vms[i].state, sizeof(vms[i].state));
		vm_str(e, "why", vms[i].why, sizeof(vms[i].why));
		if (json_object_object_get_ex(e, "pid", &v))
			vms[i].pid = json_object_get_int(v);
		if (json_object_object_get_ex(e, "since_ns", &v))
			vms[i].since_ns = json_object_get_int64(v);
	}
	json_object_put(o);
	*out = vms;
	*n = cnt;
	return 0;
}
