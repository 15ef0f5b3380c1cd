/*
 * The QEMU command line of a VM.  Disks are raw files on the datastore
 * reached through this host's FUSE mount, opened with cache=none and
 * aio=native: O_DIRECT, so the host keeps no dirty copy a failover could
 * lose and another host that starts the VM reads what the guest wrote.
 * QEMU's own image locks (file.locking) do not cross hosts through FUSE;
 * the on-disk locks vmfsd holds for the host are the guard, so QEMU's are
 * left at their default (they still catch a second QEMU on this host).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmfs/hypervisor.h"

#define QEMU_ARGS_MAX (40 + 4 * HV_DISKS_MAX + 4 * HV_NICS_MAX)

struct qargv {
	char **v;
	unsigned n;
	bool oom;
};

__attribute__((format(printf, 2, 3)))
static void qarg(struct qargv *a, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (a->oom || a->n + 1 >= QEMU_ARGS_MAX) {
		a->oom = true;
		return;
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (!s)
		a->oom = true;
	else
		a->v[a->n++] = s;
}

void hv_argv_free(char **argv)
{
	for (unsigned i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

int hv_argv_append(char ***argv, const char *arg)
{
	size_t n = 0;
	char **v, *s = strdup(arg);

	while ((*argv)[n])
		n++;
	v = s ? realloc(*argv, (n + 2) * sizeof(char *)) : NULL;
	if (!v) {
		free(s);
		return -ENOMEM;
	}
	v[n] = s;
	v[n + 1] = NULL;
	*argv = v;
	return 0;
}

int hv_qemu_argv(const struct hv_config *c, const char *vmdir,
		 const char *qmp_path, const char *console_sock, bool kvm,
		 char ***argv_out)
{
	struct qargv a = { .v = calloc(QEMU_ARGS_MAX, sizeof(char *)) };

	if (!a.v)
		return -ENOMEM;
	qarg(&a, "qemu-system-x86_64");
	qarg(&a, "-name");
	qarg(&a, "%s", c->name);
	qarg(&a, "-machine");
	if (!strcmp(c->accel, "kvm") || !strcmp(c->accel, "tcg"))
		kvm = c->accel[0] == 'k';
	qarg(&a, "q35,accel=%s", kvm ? "kvm" : "tcg");
	qarg(&a, "-m");
	qarg(&a, "%llu", (unsigned long long)c->memory_mib);
	qarg(&a, "-smp");
	qarg(&a, "%u", c->cpus);
	/* No display, no monitor on stdio: the serial console goes to the
	 * VM's log on the datastore (and to whoever is attached to its
	 * socket: vmfs vm console; output nobody reads is dropped, the
	 * guest never waits for a reader), QMP to the supervisor's
	 * socket. */
	qarg(&a, "-display");
	qarg(&a, "none");
	qarg(&a, "-nodefaults");
	qarg(&a, "-no-user-config");
	/* The log is appended to, never truncated: a migration's incoming
	 * QEMU opens it while the source's still writes (vmfsd/migrate.c). */
	if (console_sock) {
		qarg(&a, "-chardev");
		qarg(&a, "socket,id=con0,path=%s,server=on,wait=off,"
		     "logfile=%s/%s,logappend=on", console_sock, vmdir,
		     HV_CONSOLE_NAME);
	} else {
		qarg(&a, "-chardev");
		qarg(&a, "file,id=con0,path=%s/%s,append=on", vmdir,
		     HV_CONSOLE_NAME);
	}
	qarg(&a, "-serial");
	qarg(&a, "chardev:con0");
	qarg(&a, "-qmp");
	qarg(&a, "unix:%s,server=on,wait=off", qmp_path);
	/* No -no-reboot: a reboot inside the guest, or a guest kernel panic
	 * (the default command line's panic=-1 reboots at once), resets the
	 * guest in place, as on a real machine.  QEMU keeps running, and the
	 * VM its locks; only a power-off ends it. */
	if (c->kernel[0]) {
		qarg(&a, "-kernel");
		qarg(&a, "%s/%s", vmdir, c->kernel);
		qarg(&a, "-initrd");
		qarg(&a, "%s/%s", vmdir, c->initrd);
		qarg(&a, "-append");
		qarg(&a, "%s", c->cmdline[0] ? c->cmdline :
		     "console=ttyS0 quiet panic=-1");
	}
	for (unsigned i = 0; i < c->ndisks; i++) {
		qarg(&a, "-drive");
		/* A comma in a file name is doubled for QEMU's option parser;
		 * config paths are checked to hold none. */
		qarg(&a, "file=%s/%s,format=raw,if=virtio,cache=none,aio=native%s",
		     vmdir, c->disks[i], c->boot_disk[0] &&
		     !strcmp(c->boot_disk, c->disks[i]) ? ",index=0" : "");
	}
	if (c->boot_disk[0]) {
		qarg(&a, "-boot");
		qarg(&a, "c");
	}
	if (!c->nnics) {
		qarg(&a, "-nic");
		qarg(&a, "none");
	}
	for (unsigned i = 0; i < c->nnics; i++) {
		qarg(&a, "-nic");
		qarg(&a, "user,model=%s%s%s", c->nics[i].model,
		     c->nics[i].mac[0] ? ",mac=" : "", c->nics[i].mac);
	}
	if (a.oom) {
		hv_argv_free(a.v);
		return -ENOMEM;
	}
	*argv_out = a.v;
	return 0;
}
