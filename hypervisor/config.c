/*
 * The VM config: vm.json in the VM's directory, read with json-c.
 *
 *   { "name": "web1", "memory_mib": 256, "cpus": 1,
 *     "disks": [ "disk0.img" ],
 *     "nics": [ { "model": "virtio-net-pci", "mac": "52:54:00:12:34:56" } ],
 *     "boot": { "kernel": "vmlinuz", "initrd": "initrd.img",
 *               "cmdline": "console=ttyS0" }   or  { "disk": "disk0.img" },
 *     "ha": false, "restart_priority": 0 }
 *
 * Unknown keys are errors (a misspelt "memroy" must not silently give a
 * default), and every message names the file, the key and what is
 * allowed.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <json-c/json.h>

#include "vmfs/hypervisor.h"

#define HV_DEFAULT_CMDLINE "console=ttyS0 quiet panic=-1"

__attribute__((format(printf, 3, 4)))
static int cfg_err(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* A relative path that stays in the VM directory's datastore. */
static bool cfg_path_ok(const char *p)
{
	/* ',' would need doubling on QEMU's command line. */
	if (!*p || *p == '/' || strchr(p, ',') || strlen(p) >= PATH_MAX)
		return false;
	for (const char *s = p; s; s = strchr(s, '/')) {
		if (*s == '/')
			s++;
		if (!strncmp(s, "..", 2) && (s[2] == '/' || !s[2]))
			return false;
	}
	return true;
}

static int cfg_str(json_object *o, const char *file, const char *key,
		   char *out, size_t len, bool path, char *err, size_t errlen)
{
	const char *s;

	if (!json_object_is_type(o, json_type_string))
		return cfg_err(err, errlen, "%s: \"%s\" must be a string", file,
			       key);
	s = json_object_get_string(o);
	if (strlen(s) >= len)
		return cfg_err(err, errlen, "%s: \"%s\" is too long (at most %zu "
			       "bytes)", file, key, len - 1);
	if (path && !cfg_path_ok(s))
		return cfg_err(err, errlen, "%s: \"%s\" is \"%s\": a path must be "
			       "relative to the VM's directory, without \"..\" "
			       "or \",\" (copy the file into the VM's directory)", file,
			       key, s);
	snprintf(out, len, "%s", s);
	return 0;
}

static int cfg_uint(json_object *o, const char *file, const char *key,
		    uint64_t min, uint64_t max, uint64_t *out, char *err,
		    size_t errlen)
{
	int64_t v;

	if (!json_object_is_type(o, json_type_int))
		return cfg_err(err, errlen, "%s: \"%s\" must be a whole number "
			       "from %llu to %llu", file, key,
			       (unsigned long long)min, (unsigned long long)max);
	v = json_object_get_int64(o);
	if (v < 0 || (uint64_t)v < min || (uint64_t)v > max)
		return cfg_err(err, errlen, "%s: \"%s\" is %lld; allowed: %llu to "
			       "%llu", file, key, (long long)v,
			       (unsigned long long)min, (unsigned long long)max);
	*out = (uint64_t)v;
	return 0;
}

static int cfg_nic(json_object *o, const char *file, unsigned i,
		   struct hv_nic *n, char *err, size_t errlen)
{
	char key[64];
	int ret;

	if (!json_object_is_type(o, json_type_object))
		return cfg_err(err, errlen, "%s: \"nics\"[%u] must be an object "
			       "with \"model\" and \"mac\"", file, i);
	snprintf(n->model, sizeof(n->model), "virtio-net-pci");
	json_object_object_foreach(o, k, val) {
		snprintf(key, sizeof(key), "nics[%u].%s", i, k);
		if (!strcmp(k, "model"))
			ret = cfg_str(val, file, key, n->model, sizeof(n->model),
				      false, err, errlen);
		else if (!strcmp(k, "mac"))
			ret = cfg_str(val, file, key, n->mac, sizeof(n->mac),
				      false, err, errlen);
		else
			ret = cfg_err(err, errlen, "%s: unknown key \"%s\"; a nic "
				      "has \"model\" and \"mac\"", file, key);
		if (ret)
			return ret;
	}
	return 0;
}

static int cfg_boot(json_object *o, const char *file, struct hv_config *c,
		    char *err, size_t errlen)
{
	int ret;

	if (!json_object_is_type(o, json_type_object))
		return cfg_err(err, errlen, "%s: \"boot\" must be an object: "
			       "{\"kernel\", \"initrd\", \"cmdline\"} or {\"disk\"}",
			       file);
	json_object_object_foreach(o, k, val) {
		if (!strcmp(k, "kernel"))
			ret = cfg_str(val, file, "boot.kernel", c->kernel,
				      sizeof(c->kernel), true, err, errlen);
		else if (!strcmp(k, "initrd"))
			ret = cfg_str(val, file, "boot.initrd", c->initrd,
				      sizeof(c->initrd), true, err, errlen);
		else if (!strcmp(k, "cmdline"))
			ret = cfg_str(val, file, "boot.cmdline", c->cmdline,
				      sizeof(c->cmdline), false, err, errlen);
		else if (!strcmp(k, "disk"))
			ret = cfg_str(val, file, "boot.disk", c->boot_disk,
				      sizeof(c->boot_disk), true, err, errlen);
		else
			ret = cfg_err(err, errlen, "%s: unknown key \"boot.%s\"; "
				      "allowed: kernel, initrd, cmdline, disk",
				      file, k);
		if (ret)
			return ret;
	}
	return 0;
}

/* A MAC as QEMU takes it: six hex pairs with ':', unicast. */
static bool cfg_mac_ok(const char *m)
{
	if (strlen(m) != 17)
		return false;
	for (int i = 0; i < 17; i++)
		if (i % 3 == 2 ? m[i] != ':' : !isxdigit((unsigned char)m[i]))
			return false;
	return !(strtoul(m, NULL, 16) & 1);
}

/*
 * A NIC's model and MAC go into QEMU's -nic option: a model is a device
 * name (letters, digits, '-', '_'), never anything that adds options.
 */
static int cfg_nic_check(const struct hv_nic *n, unsigned i, const char *file,
			 char *err, size_t errlen)
{
	if (!n->model[0])
		return cfg_err(err, errlen, "%s: \"nics[%u].model\" is empty; "
			       "e.g. virtio-net-pci or e1000", file, i);
	for (const char *s = n->model; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
			return cfg_err(err, errlen, "%s: \"nics[%u].model\" \"%s\": "
				       "a QEMU device name (letters, digits, '-', "
				       "'_'), e.g. virtio-net-pci or e1000", file, i,
				       n->model);
	if (n->mac[0] && !cfg_mac_ok(n->mac))
		return cfg_err(err, errlen, "%s: \"nics[%u].mac\" \"%s\": six "
			       "hex pairs with ':' and the first even (unicast), "
			       "e.g. 52:54:00:12:34:56", file, i, n->mac);
	return 0;
}

int hv_config_check(const struct hv_config *c, const char *file, char *err,
		    size_t errlen)
{
	if (!c->name[0])
		return cfg_err(err, errlen, "%s: \"name\" is missing (1 to %d "
			       "characters)", file, HV_NAME_MAX);
	for (const char *s = c->name; *s; s++)
		if (*s <= ' ' || *s > '~' || *s == '/' || *s == ',')
			return cfg_err(err, errlen, "%s: \"name\" \"%s\": allowed "
				       "are printable ASCII characters without "
				       "spaces, '/' or ','", file, c->name);
	if (c->accel[0] && strcmp(c->accel, "auto") && strcmp(c->accel, "kvm") &&
	    strcmp(c->accel, "tcg"))
		return cfg_err(err, errlen, "%s: \"accel\" is \"%s\"; allowed: "
			       "auto, kvm, tcg", file, c->accel);
	if (c->memory_mib < HV_MEMORY_MIN_MIB || c->memory_mib > HV_MEMORY_MAX_MIB)
		return cfg_err(err, errlen, "%s: \"memory_mib\" is %llu; allowed: "
			       "%d to %d", file, (unsigned long long)c->memory_mib,
			       HV_MEMORY_MIN_MIB, HV_MEMORY_MAX_MIB);
	if (c->cpus < 1 || c->cpus > HV_CPUS_MAX)
		return cfg_err(err, errlen, "%s: \"cpus\" is %u; allowed: 1 to %d",
			       file, c->cpus, HV_CPUS_MAX);
	if (!c->kernel[0] == !c->boot_disk[0])
		return cfg_err(err, errlen, "%s: \"boot\" needs exactly one of "
			       "\"kernel\" (with \"initrd\") and \"disk\"", file);
	if (c->kernel[0] && !c->initrd[0])
		return cfg_err(err, errlen, "%s: \"boot.kernel\" needs "
			       "\"boot.initrd\"", file);
	if (c->boot_disk[0]) {
		unsigned i;

		for (i = 0; i < c->ndisks && strcmp(c->disks[i], c->boot_disk); i++)
			;
		if (i == c->ndisks)
			return cfg_err(err, errlen, "%s: \"boot.disk\" \"%s\" is "
				       "not one of \"disks\"; add it there", file,
				       c->boot_disk);
	}
	if (c->boot_disk[0] && (c->initrd[0] || c->cmdline[0]))
		return cfg_err(err, errlen, "%s: \"boot.disk\" takes no initrd or "
			       "cmdline (they go with \"boot.kernel\")", file);
	for (unsigned i = 0; i < c->nnics; i++) {
		int ret = cfg_nic_check(&c->nics[i], i, file, err, errlen);

		if (ret)
			return ret;
	}
	return 0;
}

int hv_config_parse(const char *text, const char *file, struct hv_config *c,
		    char *err, size_t errlen)
{
	enum json_tokener_error jerr;
	json_object *root;
	uint64_t u;
	int ret = 0;

	memset(c, 0, sizeof(*c));
	c->cpus = 1;
	root = json_tokener_parse_verbose(text, &jerr);
	if (!root)
		return cfg_err(err, errlen, "%s: not valid JSON: %s; fix the file "
			       "or recreate it with 'vmfs vm create'", file,
			       json_tokener_error_desc(jerr));
	if (!json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		return cfg_err(err, errlen, "%s: must hold one JSON object", file);
	}
	json_object_object_foreach(root, k, val) {
		if (!strcmp(k, "name")) {
			ret = cfg_str(val, file, k, c->name, sizeof(c->name), false,
				      err, errlen);
		} else if (!strcmp(k, "memory_mib")) {
			ret = cfg_uint(val, file, k, HV_MEMORY_MIN_MIB,
				       HV_MEMORY_MAX_MIB, &c->memory_mib, err,
				       errlen);
		} else if (!strcmp(k, "cpus")) {
			ret = cfg_uint(val, file, k, 1, HV_CPUS_MAX, &u, err, errlen);
			c->cpus = (unsigned)u;
		} else if (!strcmp(k, "ha")) {
			if (!json_object_is_type(val, json_type_boolean))
				ret = cfg_err(err, errlen, "%s: \"ha\" must be true "
					      "or false", file);
			c->ha = json_object_get_boolean(val);
		} else if (!strcmp(k, "disks") || !strcmp(k, "nics")) {
			bool disks = k[0] == 'd';
			size_t n, max = disks ? HV_DISKS_MAX : HV_NICS_MAX;

			if (!json_object_is_type(val, json_type_array)) {
				ret = cfg_err(err, errlen, "%s: \"%s\" must be an "
					      "array", file, k);
				break;
			}
			n = json_object_array_length(val);
			if (n > max) {
				ret = cfg_err(err, errlen, "%s: \"%s\" has %zu "
					      "entries; at most %zu", file, k, n, max);
				break;
			}
			for (size_t i = 0; !ret && i < n; i++) {
				json_object *e = json_object_array_get_idx(val, i);
				char key[32];

				snprintf(key, sizeof(key), "disks[%zu]", i);
				if (disks)
					ret = cfg_str(e, file, key, c->disks[i],
						      PATH_MAX, true, err, errlen);
				else
					ret = cfg_nic(e, file, (unsigned)i,
						      &c->nics[i], err, errlen);
			}
			if (disks)
				c->ndisks = (unsigned)n;
			else
				c->nnics = (unsigned)n;
		} else if (!strcmp(k, "restart_priority")) {
			ret = cfg_uint(val, file, k, 0, HV_PRIORITY_MAX, &u, err,
				       errlen);
			c->restart_priority = (unsigned)u;
		} else if (!strcmp(k, "accel")) {
			ret = cfg_str(val, file, k, c->accel, sizeof(c->accel),
				      false, err, errlen);
		} else if (!strcmp(k, "boot")) {
			ret = cfg_boot(val, file, c, err, errlen);
		} else {
			ret = cfg_err(err, errlen, "%s: unknown key \"%s\"; allowed: "
				      "name, memory_mib, cpus, disks, nics, boot, "
				      "ha, restart_priority, accel", file, k);
		}
		if (ret)
			break;
	}
	json_object_put(root);
	if (!ret && !c->memory_mib)
		ret = cfg_err(err, errlen, "%s: \"memory_mib\" is missing; allowed: "
			      "%d to %d", file, HV_MEMORY_MIN_MIB,
			      HV_MEMORY_MAX_MIB);
	if (!ret)
		ret = hv_config_check(c, file, err, errlen);
	return ret;
}

static int cfg_file_exists(const char *vmdir, const char *file,
			   const char *key, const char *rel, char *err,
			   size_t errlen)
{
	char p[PATH_MAX * 2 + 2];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", vmdir, rel);
	if (stat(p, &st)) {
		int e = errno;

		cfg_err(err, errlen, "%s: \"%s\" names %s: %s; create it ('vmfs "
			"disk create') or fix the key", file, key, p, strerror(e));
		return -e;
	}
	if (!S_ISREG(st.st_mode))
		return cfg_err(err, errlen, "%s: \"%s\" names %s, which is not a "
			       "regular file", file, key, p);
	return 0;
}

/* Config files are small; a bigger one is not ours. */
#define CFG_TEXT_MAX (64 * 1024)

int hv_config_load(const char *vmdir, struct hv_config *c, char *err,
		   size_t errlen)
{
	char file[PATH_MAX + 16], key[32], *text;
	size_t n;
	FILE *f;
	int ret;

	snprintf(file, sizeof(file), "%s/%s", vmdir, HV_CONFIG_NAME);
	f = fopen(file, "re");
	if (!f) {
		int e = errno;

		cfg_err(err, errlen, "%s: %s; is %s a VM directory ('vmfs vm "
			"create')?", file, strerror(e), vmdir);
		return -e;
	}
	text = malloc(CFG_TEXT_MAX + 1);
	n = text ? fread(text, 1, CFG_TEXT_MAX + 1, f) : 0;
	ret = !text ? -ENOMEM : ferror(f) ? -EIO : 0;
	fclose(f);
	if (!ret && n > CFG_TEXT_MAX)
		ret = cfg_err(err, errlen, "%s: larger than %d bytes; not a VM "
			      "config", file, CFG_TEXT_MAX);
	if (ret == -EIO || ret == -ENOMEM)
		cfg_err(err, errlen, "%s: %s", file, strerror(-ret));
	if (!ret) {
		text[n] = 0;
		ret = hv_config_parse(text, file, c, err, errlen);
	}
	free(text);
	if (ret)
		return ret;
	for (unsigned i = 0; i < c->ndisks; i++) {
		snprintf(key, sizeof(key), "disks[%u]", i);
		ret = cfg_file_exists(vmdir, file, key, c->disks[i], err, errlen);
		if (ret)
			return ret;
	}
	if (c->kernel[0]) {
		ret = cfg_file_exists(vmdir, file, "boot.kernel", c->kernel, err,
				      errlen);
		if (!ret)
			ret = cfg_file_exists(vmdir, file, "boot.initrd",
					      c->initrd, err, errlen);
	}
	return ret;
}

char *hv_config_encode(const struct hv_config *c)
{
	json_object *o = json_object_new_object(), *a, *b;
	char *out = NULL;

	if (!o)
		return NULL;
	json_object_object_add(o, "name", json_object_new_string(c->name));
	json_object_object_add(o, "memory_mib",
			       json_object_new_int64((int64_t)c->memory_mib));
	json_object_object_add(o, "cpus", json_object_new_int((int)c->cpus));
	a = json_object_new_array();
	for (unsigned i = 0; i < c->ndisks; i++)
		json_object_array_add(a, json_object_new_string(c->disks[i]));
	json_object_object_add(o, "disks", a);
	a = json_object_new_array();
	for (unsigned i = 0; i < c->nnics; i++) {
		json_object *n = json_object_new_object();

		json_object_object_add(n, "model",
				       json_object_new_string(c->nics[i].model));
		if (c->nics[i].mac[0])
			json_object_object_add(n, "mac",
					       json_object_new_string(c->nics[i].mac));
		json_object_array_add(a, n);
	}
	json_object_object_add(o, "nics", a);
	b = json_object_new_object();
	if (c->kernel[0]) {
		json_object_object_add(b, "kernel", json_object_new_string(c->kernel));
		json_object_object_add(b, "initrd", json_object_new_string(c->initrd));
		json_object_object_add(b, "cmdline", json_object_new_string(
			c->cmdline[0] ? c->cmdline : HV_DEFAULT_CMDLINE));
	} else {
		json_object_object_add(b, "disk",
				       json_object_new_string(c->boot_disk));
	}
	json_object_object_add(o, "boot", b);
	json_object_object_add(o, "ha", json_object_new_boolean(c->ha));
	if (c->restart_priority)
		json_object_object_add(o, "restart_priority",
				       json_object_new_int((int)c->restart_priority));
	json_object_object_add(o, "accel", json_object_new_string(
		c->accel[0] ? c->accel : "auto"));
	out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
						    JSON_C_TO_STRING_SPACED));
	json_object_put(o);
	return out;
}
