/*
 * hypervisor: a VM as the datastore holds it -- a directory with its
 * config (HV_CONFIG_NAME, JSON read with json-c), its disks and its
 * serial console log -- and the QEMU command line that runs it.  Library
 * code: it reads files and builds argv; vmfsd's supervisor (vmfsd/vm.c)
 * takes the locks, runs QEMU and watches it.
 *
 * Functions return 0 or a negative errno; those that can fail on user
 * input also fill err with a message that names the file, the key and
 * what is allowed.
 */
#ifndef VMFS_HYPERVISOR_H
#define VMFS_HYPERVISOR_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HV_CONFIG_NAME   "vm.json"
#define HV_CONSOLE_NAME  "console.log"
#define HV_NAME_MAX      64
#define HV_DISKS_MAX     8
#define HV_NICS_MAX      4
#define HV_MEMORY_MIN_MIB 16
#define HV_MEMORY_MAX_MIB (1024 * 1024)
#define HV_CPUS_MAX      64
#define HV_ERR_MAX       1024
#define HV_PRIORITY_MAX  1000
/* The VM's "should be running" record (hypervisor/hastate.c). */
#define HV_HA_STATE_NAME "ha-state.json"

/*
 * Paths in a config (disks, kernel, initrd, boot disk) are relative to
 * the VM's directory and stay on the datastore: no absolute path, no
 * "..".  So the VM moves with its directory and every host sees the same
 * files through its own mount.
 */
struct hv_nic {
	char model[32];           /* "virtio-net-pci" (default), "e1000" */
	char mac[18];             /* "52:54:00:..."; "" = QEMU picks */
};

struct hv_config {
	char name[HV_NAME_MAX + 1];
	uint64_t memory_mib;
	unsigned cpus;
	unsigned ndisks;
	char disks[HV_DISKS_MAX][PATH_MAX];
	unsigned nnics;
	struct hv_nic nics[HV_NICS_MAX];
	/* boot: kernel (+ initrd, cmdline) or boot_disk, exactly one */
	char kernel[PATH_MAX];
	char initrd[PATH_MAX];
	char cmdline[512];
	char boot_disk[PATH_MAX];
	bool ha;                  /* restarted elsewhere when its host dies */
	unsigned restart_priority; /* 0..HV_PRIORITY_MAX; higher first */
	/* "accel": "auto" (default: KVM when /dev/kvm can be opened, else
	 * TCG), "kvm" or "tcg".  "tcg" is for hosts whose /dev/kvm accepts
	 * VMs that then never run (nested virtualisation without support). */
	char accel[8];
};

/* Parse the config text of file (named in messages); checks the keys,
 * types and ranges, not the files. */
int hv_config_parse(const char *text, const char *file, struct hv_config *c,
		    char *err, size_t errlen);
/* Read and parse vmdir/HV_CONFIG_NAME, then check that every file it
 * names exists in vmdir (-ENOENT naming the key otherwise). */
int hv_config_load(const char *vmdir, struct hv_config *c, char *err,
		   size_t errlen);
/* The config as JSON text (malloc'd), or NULL when out of memory. */
char *hv_config_encode(const struct hv_config *c);
/* Check a config built in memory (what hv_config_parse checks). */
int hv_config_check(const struct hv_config *c, const char *file, char *err,
		    size_t errlen);

/*
 * The QEMU command line (NULL-terminated, malloc'd: hv_argv_free) of the
 * VM in vmdir (a path through this host's mount): disks with cache=none
 * and aio=native (O_DIRECT through the mount: nothing cached on the host
 * that a failover could lose), the serial console appended to
 * vmdir/HV_CONSOLE_NAME, no display, QMP on the unix socket qmp_path.
 * console_sock (NULL: none): the serial console is also a unix socket
 * there, which one client at a time may attach to, reading and typing
 * (vmfs vm console).  Neither path may hold a comma.  The config's accel
 * decides KVM or TCG; for "auto", kvm says whether /dev/kvm is usable
 * here.
 */
int hv_qemu_argv(const struct hv_config *c, const char *vmdir,
		 const char *qmp_path, const char *console_sock, bool kvm,
		 char ***argv_out);
void hv_argv_free(char **argv);
/* Append arg to a NULL-terminated malloc'd argv (hv_qemu_argv's);
 * -ENOMEM leaves it as it was. */
int hv_argv_append(char ***argv, const char *arg);

/* ---- the run record (hypervisor/hastate.c) ---- */

/*
 * vmdir/HV_HA_STATE_NAME says "this VM should be running": written by
 * the host that starts the VM while it holds the config's lock, removed
 * at a clean stop or guest power-off, kept through a crash of the host.
 * Survivors read it to know which VMs of a dead host to restart (HA,
 * vmfsd/ha.c), and `vmfs vm list` shows how the VM last (re)started.
 */
struct hv_ha_state {
	bool ha;                   /* copied from the config at start */
	unsigned priority;
	uint64_t memory_mib;
	char host_uuid[37];        /* the host that runs it */
	char host_name[65];
	int64_t started_ns;        /* wall clock */
	/* Set when an HA agent restarted it: */
	char from_uuid[37];        /* the dead host it ran on */
	char from_name[65];
	char why[256];
	int64_t restarted_ns;
	/* Set by the host that runs it while it migrates it away: a
	 * destination that dies before it rewrote the record leaves the VM
	 * to HA, as its host's death would (vmfsd/ha.c). */
	char moving_uuid[37];
	char moving_name[65];
};

/* 0, -ENOENT (no record: not meant to run), or -errno / -EINVAL with err. */
int hv_ha_state_read(const char *vmdir, struct hv_ha_state *s, char *err,
		     size_t errlen);
/* Write it whole (a temporary file renamed over the record). */
int hv_ha_state_write(const char *vmdir, const struct hv_ha_state *s);
/* Remove it: 0 also when there was none. */
int hv_ha_state_clear(const char *vmdir);

/* ---- QMP (hypervisor/qmp.c) ---- */

/*
 * Connect to QEMU's QMP socket, read its greeting, send
 * qmp_capabilities, then send command (e.g. "system_powerdown") and wait
 * for its return; each step waits at most timeout_ms.  0, -ETIMEDOUT,
 * -EPROTO (an error reply: its "desc" in err), or -errno.
 */
int hv_qmp_command(const char *qmp_path, const char *command, int timeout_ms,
		   char *err, size_t errlen);

/*
 * A QMP session kept open (a migration follows QEMU's events on it).
 * on_event (may be NULL) gets each event's name, its "data" as JSON
 * text and when QEMU says it happened (CLOCK_REALTIME ns, 0 if it did
 * not say), from inside hv_qmp_call or hv_qmp_poll_events.
 */
struct hv_qmp;
typedef void (*hv_qmp_event_fn)(void *arg, const char *event,
				const char *data_json, int64_t time_ns);
int hv_qmp_open(const char *qmp_path, int timeout_ms, hv_qmp_event_fn on_event,
		void *arg, struct hv_qmp **out, char *err, size_t errlen);
/* Run cmd with args_json (an object's JSON text, or NULL); *result (if
 * not NULL): the "return" value as JSON text, malloc'd.  Errors as
 * hv_qmp_command. */
int hv_qmp_call(struct hv_qmp *q, const char *cmd, const char *args_json,
		int timeout_ms, char **result, char *err, size_t errlen);
/* The socket, to poll; hv_qmp_poll_events hands what arrived to the
 * callback without waiting: 0, or -ECONNRESET when QEMU went away. */
int hv_qmp_fd(const struct hv_qmp *q);
int hv_qmp_poll_events(struct hv_qmp *q);
void hv_qmp_close(struct hv_qmp *q);

#endif /* VMFS_HYPERVISOR_H */
