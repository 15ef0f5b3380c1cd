/*
 * vmfs vm: VMs on a datastore (include/vmfs/hypervisor.h).  A VM is a
 * directory on a mounted vmfs volume; start and stop go to the vmfsd of
 * that mount (its supervisor runs QEMU and holds the VM's locks);
 * status and list read the state from the on-disk lock of the VM's
 * config, so every host gives the same answer.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "vmfs/hypervisor.h"
#include "vmfs/lockmgr.h"
#include "cli.h"

#define VM_STOP_TIMEOUT_S 30

static void help_vm_cmds(void)
{
	printf("usage: vmfs vm COMMAND ...\n\n"
	       "  create PATH --memory SIZE [--cpus N] --disk SIZE[:TYPE] ...\n"
	       "         (--kernel K --initrd I [--cmdline C] | --boot-disk FILE) [--ha]\n"
	       "         [--accel auto|kvm|tcg]  (auto: KVM when /dev/kvm opens)\n"
	       "         [--nic MODEL[:MAC]] ...  (user-mode NAT; MODEL e.g.\n"
	       "         virtio-net-pci or e1000; MAC 52:54:00:xx:xx:xx)\n"
	       "  start PATH               run the VM on this host\n"
	       "  stop PATH [--force] [--timeout S]\n"
	       "                           ACPI power-down, QMP quit after S seconds\n"
	       "                           (default %d), then kill; --force kills at once\n"
	       "  status PATH [--json]     state and host, from the on-disk locks\n"
	       "  list [DATASTORE] [--json]\n"
	       "                           every VM (directory with %s) on the\n"
	       "                           datastore, default all vmfs mounts here\n"
	       "  console PATH [--log]     attach to the serial console of a VM\n"
	       "                           running on this host; Ctrl-] detaches,\n"
	       "                           the VM keeps running.  --log: follow its\n"
	       "                           console.log instead (read-only; on the\n"
	       "                           VM's host, or any host once it stopped)\n"
	       "  migrate PATH --to HOST [--max-bandwidth BYTES/S] [--json]\n"
	       "                           live-migrate a VM running on this host\n"
	       "                           to HOST (as 'vmfs hosts' names it); its\n"
	       "                           locks move at the switchover\n"
	       "  destroy PATH             remove a stopped VM's directory\n"
	       "  set PATH [--ha on|off] [--restart-priority N]\n"
	       "                           HA: restart the VM on a surviving host\n"
	       "                           when its host dies (higher N first)\n\n"
	       "PATH is the VM's directory on a mounted vmfs volume.  A running VM\n"
	       "holds the open lock of its config and disks for its host: another\n"
	       "host's start fails naming it.  'vmfs umount' refuses while VMs run\n"
	       "on that mount unless given --stop-vms.\n", VM_STOP_TIMEOUT_S,
	       HV_CONFIG_NAME);
}

void help_vm(void)
{
	help_vm_cmds();
}

/* Where a VM is: the mount serving it and its path inside the volume. */
struct vm_where {
	char dir[PATH_MAX];         /* canonical, through the mount */
	char mp[PATH_MAX];
	char path[PATH_MAX];        /* inside the volume */
};

struct mp_find {
	const char *dir;
	char best[PATH_MAX];
};

static int vm_mp_cb(void *ctx, const char *mp)
{
	struct mp_find *f = ctx;
	size_t n = strlen(mp);

	if (!strncmp(f->dir, mp, n) && (f->dir[n] == '/' || !f->dir[n]) &&
	    n > strlen(f->best))
		snprintf(f->best, sizeof(f->best), "%s", mp);
	return 0;
}

static int vm_locate(const char *arg, struct vm_where *w)
{
	struct mp_find f = { .dir = w->dir };

	if (!realpath(arg, w->dir)) {
		cli_err("%s: %s; give the VM's directory on a mounted vmfs volume",
			arg, strerror(errno));
		return -1;
	}
	cli_vmfs_mounts_each(vm_mp_cb, &f);
	if (!f.best[0] || !strcmp(f.best, w->dir)) {
		cli_err("%s is not a directory inside a mounted vmfs volume; "
			"'vmfs mount' the datastore and give the VM's directory "
			"there", arg);
		return -1;
	}
	snprintf(w->mp, sizeof(w->mp), "%s", f.best);
	snprintf(w->path, sizeof(w->path), "%s", w->dir + strlen(f.best));
	return 0;
}

static int vm_connect(const struct vm_where *w, struct vmfsd_ctl **c,
		      struct vmfsd_info *di)
{
	int ret = cli_daemon_open(w->mp, c, di);

	if (ret == -ENOENT)
		cli_err("no vmfsd serves %s here; mount it again", w->mp);
	return ret;
}

/* The one PATH of a command without options but --help: -1 with *path
 * set, or the exit status. */
static int vm_path_arg(int argc, char **argv, const char **path)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (ch != 'h')
			return cli_getopt_err(ch, argv);
		help_vm_cmds();
		return CLI_EXIT_OK;
	}
	if (cli_one_operand(argc, argv, "PATH", path))
		return CLI_EXIT_USAGE;
	return -1;
}

/* ---- create ---- */

/* Write text to p: a new file, or (replace) over the existing one in
 * place, keeping its inode and so its lock. */
static int vm_write_file(const char *p, const char *text, bool replace)
{
	int fd = open(p, O_CREAT | (replace ? O_TRUNC : O_EXCL) | O_WRONLY |
		      O_CLOEXEC, 0644);
	size_t len = strlen(text);

	if (fd < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd)) {
		cli_err("cannot write %s: %s", p, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return close(fd);
}

static int vm_copy_in(const char *src, const char *dst)
{
	char buf[1 << 16];
	ssize_t n;
	int in = open(src, O_RDONLY | O_CLOEXEC), out;
	int rc = 0;

	if (in < 0) {
		cli_err("cannot read %s: %s", src, strerror(errno));
		return -1;
	}
	out = open(dst, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
	if (out < 0) {
		cli_err("cannot create %s: %s", dst, strerror(errno));
		close(in);
		return -1;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n) {
			n = -1;
			break;
		}
	if (n < 0 || fsync(out)) {
		cli_err("cannot copy %s to %s: %s", src, dst, strerror(errno));
		rc = -1;
	}
	close(in);
	close(out);
	return rc;
}

static const char *vm_base(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

/* --nic MODEL[:MAC]; hv_config_check judges the model and the MAC. */
static int vm_nic_opt(struct hv_config *cfg, const char *arg)
{
	struct hv_nic *n;
	const char *colon = strchr(arg, ':');
	size_t mlen = colon ? (size_t)(colon - arg) : strlen(arg);

	if (cfg->nnics == HV_NICS_MAX)
		return cli_usage_err("at most %d --nic", HV_NICS_MAX);
	if (!mlen || mlen >= sizeof(n->model) ||
	    (colon && strlen(colon + 1) >= sizeof(n->mac)))
		return cli_usage_err("--nic %s: give MODEL or MODEL:MAC, e.g. "
				     "virtio-net-pci or e1000:52:54:00:12:34:56",
				     arg);
	n = &cfg->nics[cfg->nnics++];
	snprintf(n->model, sizeof(n->model), "%.*s", (int)mlen, arg);
	snprintf(n->mac, sizeof(n->mac), "%s", colon ? colon + 1 : "");
	return 0;
}

static int vm_create(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "memory",    required_argument, NULL, 'm' },
		{ "cpus",      required_argument, NULL, 'c' },
		{ "disk",      required_argument, NULL, 'd' },
		{ "kernel",    required_argument, NULL, 'k' },
		{ "initrd",    required_argument, NULL, 'i' },
		{ "cmdline",   required_argument, NULL, 'l' },
		{ "boot-disk", required_argument, NULL, 'b' },
		{ "ha",        no_argument,       NULL, 'a' },
		{ "accel",     required_argument, NULL, 'A' },
		{ "nic",       required_argument, NULL, 'n' },
		{ "help",      no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct hv_config cfg = { .cpus = 1 };
	const char *disk_spec[HV_DISKS_MAX], *kernel = NULL, *initrd = NULL;
	const char *boot = NULL, *path, *slash, *mem_arg = NULL;
	char dir[PATH_MAX], parent[PATH_MAX], p[PATH_MAX * 2], err[HV_ERR_MAX];
	char *text;
	uint64_t mem = 0, cpus;
	unsigned ndisks = 0;
	int ch;

	while ((ch = getopt_long(argc, argv, ":m:c:d:k:i:l:b:aA:n:h", longopts,
				 NULL)) != -1) {
		switch (ch) {
		case 'm':
			if (cli_size_opt("--memory", optarg, 1, UINT64_MAX, &mem))
				return CLI_EXIT_USAGE;
			mem_arg = optarg;
			break;
		case 'c':
			if (cli_count_opt("--cpus", optarg, 1, HV_CPUS_MAX,
					  "CPUs", &cpus))
				return CLI_EXIT_USAGE;
			cfg.cpus = (unsigned)cpus;
			break;
		case 'd':
			if (ndisks == HV_DISKS_MAX)
				return cli_usage_err("at most %d --disk", HV_DISKS_MAX);
			disk_spec[ndisks++] = optarg;
			break;
		case 'k':
			kernel = optarg;
			break;
		case 'i':
			initrd = optarg;
			break;
		case 'l':
			snprintf(cfg.cmdline, sizeof(cfg.cmdline), "%s", optarg);
			break;
		case 'b':
			boot = optarg;
			break;
		case 'a':
			cfg.ha = true;
			break;
		case 'A':
			snprintf(cfg.accel, sizeof(cfg.accel), "%.7s", optarg);
			break;
		case 'n':
			if (vm_nic_opt(&cfg, optarg))
				return CLI_EXIT_USAGE;
			break;
		case 'h':
			help_vm_cmds();
			return CLI_EXIT_OK;
		default:
			return cli_getopt_err(ch, argv);
		}
	}
	if (cli_one_operand(argc, argv, "PATH", &path))
		return CLI_EXIT_USAGE;
	if (!mem)
		return cli_usage_err("missing --memory (e.g. --memory 256M)");
	if (mem % (1 << 20))
		return cli_usage_err("--memory %s: a whole number of MiB",
				     mem_arg);
	cfg.memory_mib = mem >> 20;
	if (!kernel == !boot)
		return cli_usage_err("give --kernel K --initrd I, or --boot-disk "
				     "FILE");
	if (kernel && !initrd)
		return cli_usage_err("--kernel needs --initrd");
	snprintf(dir, sizeof(dir), "%s", path);
	while (strlen(dir) > 1 && dir[strlen(dir) - 1] == '/')
		dir[strlen(dir) - 1] = 0;
	slash = strrchr(dir, '/');
	if (strlen(slash ? slash + 1 : dir) > HV_NAME_MAX)
		return cli_usage_err("%s: the VM's name (its directory's) is longer "
				     "than %d characters", path, HV_NAME_MAX);
	snprintf(cfg.name, sizeof(cfg.name), "%.64s", slash ? slash + 1 : dir);
	snprintf(parent, sizeof(parent), "%.*s", slash ? (int)(slash - dir) : 1,
		 slash ? dir : ".");
	if (!parent[0])
		snprintf(parent, sizeof(parent), "/");
	{
		struct vm_where w;

		if (vm_locate(parent, &w))
			return CLI_EXIT_FAIL;
	}
	for (unsigned i = 0; i < ndisks; i++)
		snprintf(cfg.disks[i], PATH_MAX, "disk%u.img", i);
	cfg.ndisks = ndisks;
	if (kernel) {
		snprintf(cfg.kernel, sizeof(cfg.kernel), "%s", vm_base(kernel));
		snprintf(cfg.initrd, sizeof(cfg.initrd), "%s", vm_base(initrd));
	} else {
		snprintf(cfg.boot_disk, sizeof(cfg.boot_disk), "%s", vm_base(boot));
		snprintf(cfg.disks[cfg.ndisks++], PATH_MAX, "%s", cfg.boot_disk);
	}
	if (hv_config_check(&cfg, HV_CONFIG_NAME, err, sizeof(err))) {
		cli_err("%s", err);
		return CLI_EXIT_USAGE;
	}
	if (mkdir(dir, 0755)) {
		cli_err("cannot create %s: %s%s", dir, strerror(errno),
			errno == EEXIST ? " (choose another name, or 'vmfs vm "
			"destroy' it)" : "");
		return CLI_EXIT_FAIL;
	}
	for (unsigned i = 0; i < ndisks; i++) {
		char size[64], *colon;
		const char *type = "thin";
		char *dargv[8];

		snprintf(size, sizeof(size), "%s", disk_spec[i]);
		colon = strchr(size, ':');
		if (colon) {
			*colon = 0;
			type = disk_spec[i] + (colon - size) + 1;
		}
		snprintf(p, sizeof(p), "%s/%s", dir, cfg.disks[i]);
		dargv[0] = "disk";
		dargv[1] = "create";
		dargv[2] = "--size";
		dargv[3] = size;
		dargv[4] = "--type";
		dargv[5] = (char *)type;
		dargv[6] = p;
		dargv[7] = NULL;
		/* The disk is made by `vmfs disk create`, messages and all. */
		if (cmd_disk(7, dargv) != CLI_EXIT_OK) {
			cli_set_prog("vmfs vm create");
			cli_err("the VM's directory %s is left for you to fix or "
				"remove ('vmfs vm destroy')", dir);
			return CLI_EXIT_FAIL;
		}
		cli_set_prog("vmfs vm create");
	}
	if (kernel) {
		snprintf(p, sizeof(p), "%s/%s", dir, cfg.kernel);
		if (vm_copy_in(kernel, p))
			return CLI_EXIT_FAIL;
		snprintf(p, sizeof(p), "%s/%s", dir, cfg.initrd);
		if (vm_copy_in(initrd, p))
			return CLI_EXIT_FAIL;
	} else {
		snprintf(p, sizeof(p), "%s/%s", dir, cfg.boot_disk);
		if (vm_copy_in(boot, p))
			return CLI_EXIT_FAIL;
	}
	text = hv_config_encode(&cfg);
	if (!text)
		return CLI_EXIT_FAIL;
	snprintf(p, sizeof(p), "%s/%s", dir, HV_CONFIG_NAME);
	ch = vm_write_file(p, text, false);
	free(text);
	if (ch)
		return CLI_EXIT_FAIL;
	printf("created VM %s in %s (%" PRIu64 " MiB, %u vCPU, %u disk%s)\n",
	       cfg.name, dir, cfg.memory_mib, cfg.cpus, cfg.ndisks,
	       cfg.ndisks == 1 ? "" : "s");
	return CLI_EXIT_OK;
}

/* ---- start, stop ---- */

static int vm_start(int argc, char **argv)
{
	struct vm_where w;
	struct vmfsd_ctl *c;
	struct vmfsd_info di;
	char msg[4096];
	const char *path;
	int ret;

	if ((ret = vm_path_arg(argc, argv, &path)) >= 0)
		return ret;
	if (vm_locate(path, &w) || vm_connect(&w, &c, &di))
		return CLI_EXIT_FAIL;
	ret = vmfsd_ctl_vm_start(c, w.path, msg, sizeof(msg));
	vmfsd_ctl_disconnect(c);
	if (ret) {
		cli_err("cannot start %s: %s", w.dir, msg[0] ? msg :
			vmfs_strerror(ret));
		return CLI_EXIT_FAIL;
	}
	printf("started VM %s on host %s\n", w.dir,
	       di.host_name[0] ? di.host_name : di.host_uuid);
	return CLI_EXIT_OK;
}

/* This host's supervisor's view of the VM at path; 0 when it knows it. */
static int vm_local(struct vmfsd_ctl *c, const char *path,
		    struct vmfsd_vm_info *out)
{
	struct vmfsd_vm_info *vms;
	char msg[256];
	size_t n;
	int ret = -ENOENT;

	if (vmfsd_ctl_vm_list(c, &vms, &n, msg, sizeof(msg)))
		return -EIO;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(vms[i].path, path)) {
			*out = vms[i];
			ret = 0;
		}
	free(vms);
	return ret;
}

static int vm_stop(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "force",   no_argument,       NULL, 'f' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help",    no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct vmfsd_vm_info vi;
	struct vm_where w;
	struct vmfsd_ctl *c;
	struct vmfsd_info di;
	char msg[4096];
	const char *path;
	bool force = false;
	int timeout_s = VM_STOP_TIMEOUT_S, ch, ret;
	uint64_t n;

	while ((ch = getopt_long(argc, argv, ":ft:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			force = true;
			break;
		case 't':
			if (cli_count_opt("--timeout", optarg, 0, 3600,
					  "seconds", &n))
				return CLI_EXIT_USAGE;
			timeout_s = (int)n;
			break;
		case 'h':
			help_vm_cmds();
			return CLI_EXIT_OK;
		default:
			return cli_getopt_err(ch, argv);
		}
	}
	if (cli_one_operand(argc, argv, "PATH", &path))
		return CLI_EXIT_USAGE;
	if (vm_locate(path, &w) || vm_connect(&w, &c, &di))
		return CLI_EXIT_FAIL;
	ret = vmfsd_ctl_vm_stop(c, w.path, force, timeout_s * 1000, msg,
				sizeof(msg));
	if (ret) {
		vmfsd_ctl_disconnect(c);
		cli_err("cannot stop %s: %s", w.dir, msg[0] ? msg :
			vmfs_strerror(ret));
		return CLI_EXIT_FAIL;
	}
	/* Power-down, quit, kill: each step is bounded; wait for the end. */
	for (int waited = 0; waited < (timeout_s + 20) * 10; waited++) {
		if (vm_local(c, w.path, &vi) || (strcmp(vi.state, "running") &&
						 strcmp(vi.state, "stopping")))
			break;
		poll(NULL, 0, 100);
	}
	vmfsd_ctl_disconnect(c);
	if (!strcmp(vi.state, "running") || !strcmp(vi.state, "stopping")) {
		cli_err("%s has not stopped yet (QEMU pid %ld); see 'vmfs vm "
			"status %s'", w.dir, (long)vi.pid, path);
		return CLI_EXIT_FAIL;
	}
	printf("stopped VM %s (%s)\n", w.dir, vi.why);
	return CLI_EXIT_OK;
}

/* ---- status, list ---- */

struct vm_state {
	char state[16];             /* running, stopped, crashed, unknown */
	char host[VMFSD_HOST_NAME_MAX + 1];
	char why[256];
	pid_t pid;                  /* when it runs here */
	bool have_rec;              /* its run record (HA) */
	struct hv_ha_state rec;
};

/* How HA last restarted the VM, from its run record, into out. */
static void vm_restart_text(const struct hv_ha_state *r, char *out,
			    size_t len)
{
	char when[32] = "?";
	time_t t = (time_t)(r->restarted_ns / 1000000000);
	struct tm tm;

	out[0] = 0;
	if (!r->restarted_ns)
		return;
	if (gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(out, len, "HA-restarted %s on %s from %s: %s", when,
		 r->host_name[0] ? r->host_name : r->host_uuid,
		 r->from_name[0] ? r->from_name : r->from_uuid, r->why);
}

/*
 * The state of the VM in w: from the on-disk lock of its config (held
 * exclusive by the host running it) and its run record (naming that
 * host); this host's supervisor adds the
 * QEMU pid and how the last run here ended.  While only one host has
 * the volume mounted the engine keeps locks in memory (they reach the
 * disk when a second host mounts), so this host's own VMs come from its
 * supervisor.
 */
static int vm_state_of(const struct vm_where *w, const struct vmfsd_info *di,
		       struct vmfsd_ctl *c, struct vm_state *s)
{
	struct cli_path_lock lk;
	struct vmfsd_vm_info vi;
	uint64_t ino;
	bool local;

	memset(s, 0, sizeof(*s));
	{
		char err[256];

		s->have_rec = !hv_ha_state_read(w->dir, &s->rec, err,
						sizeof(err));
	}
	local = c && !vm_local(c, w->path, &vi);
	if (local && (!strcmp(vi.state, "running") ||
		      !strcmp(vi.state, "stopping"))) {
		snprintf(s->state, sizeof(s->state), "%s", vi.state);
		snprintf(s->host, sizeof(s->host), "%s", di->host_name[0] ?
			 di->host_name : di->host_uuid);
		s->pid = vi.pid;
		return 0;
	}
	{
		char mcfg[PATH_MAX + 16];
		struct stat st;

		/* The inode through our mount: the engine gets it even while
		 * the entry is only in another host's journal. */
		snprintf(mcfg, sizeof(mcfg), "%s/%s", w->dir, HV_CONFIG_NAME);
		if (stat(mcfg, &st)) {
			cli_err("%s: %s", mcfg, strerror(errno));
			snprintf(s->state, sizeof(s->state), "unknown");
			return -EIO;
		}
		ino = st.st_ino;
	}
	if (cli_lock_of_ino(di->lun, ino, &lk)) {
		snprintf(s->state, sizeof(s->state), "unknown");
		return -EIO;
	}
	/* The lock alone does not say "running": a host keeps the locks
	 * it took between operations (PROTOCOL.md §9, §9a), so a config it
	 * just wrote reads the same.  A VM runs where its run record, which
	 * its host writes before QEMU starts and clears at its stop, says
	 * (or whither it is migrating). */
	if (lk.mode == VMFS_LOCK_EXCLUSIVE && !lk.stale && s->have_rec &&
	    (!strcmp(s->rec.host_uuid, lk.host_uuid) ||
	     !strcmp(s->rec.moving_uuid, lk.host_uuid))) {
		snprintf(s->state, sizeof(s->state), "running");
		snprintf(s->host, sizeof(s->host), "%s", lk.host);
	} else {
		snprintf(s->state, sizeof(s->state), "%s", local &&
			 !strcmp(vi.state, "crashed") ? "crashed" : "stopped");
		if (local)
			snprintf(s->why, sizeof(s->why), "%s", vi.why);
		if (lk.stale)
			snprintf(s->why, sizeof(s->why), "its lock is held by "
				 "dead host %s (to be broken)", lk.host_uuid);
	}
	return 0;
}

static void vm_print(const struct vm_where *w, const struct vm_state *s,
		     bool json, bool first)
{
	char restart[512] = "";

	if (s->have_rec && !strcmp(s->state, "running"))
		vm_restart_text(&s->rec, restart, sizeof(restart));
	if (!json) {
		printf("%-40s %-8s %-16s %s%s%s\n", w->dir, s->state,
		       s->host[0] ? s->host : "-", s->why,
		       s->why[0] && restart[0] ? "; " : "", restart);
		return;
	}
	printf("%s{ \"path\": ", first ? "" : ",\n  ");
	cli_json_str(w->dir);
	printf(", \"volume_path\": ");
	cli_json_str(w->path);
	printf(", \"state\": ");
	cli_json_str(s->state);
	printf(", \"host\": ");
	cli_json_str(s->host);
	printf(", \"pid\": %ld, \"why\": ", (long)s->pid);
	cli_json_str(s->why);
	printf(", \"should_run\": %s, \"ha\": %s, \"restart_priority\": %u",
	       s->have_rec ? "true" : "false",
	       s->have_rec && s->rec.ha ? "true" : "false",
	       s->have_rec ? s->rec.priority : 0);
	if (s->have_rec && s->rec.restarted_ns) {
		printf(", \"restarted_ns\": %lld, \"restarted_from\": ",
		       (long long)s->rec.restarted_ns);
		cli_json_str(s->rec.from_name[0] ? s->rec.from_name :
			     s->rec.from_uuid);
		printf(", \"restarted_from_uuid\": ");
		cli_json_str(s->rec.from_uuid);
		printf(", \"restart_why\": ");
		cli_json_str(s->rec.why);
		printf(", \"restart\": ");
		cli_json_str(restart);
	}
	printf(" }");
}

/* --json and --help, the options of status and list: -1 to go on, or
 * the exit status. */
static int vm_json_opt(int argc, char **argv, bool *json)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	while ((ch = getopt_long(argc, argv, ":jh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			*json = true;
			break;
		case 'h':
			help_vm_cmds();
			return CLI_EXIT_OK;
		default:
			return cli_getopt_err(ch, argv);
		}
	}
	return -1;
}

static int vm_status(int argc, char **argv)
{
	struct vm_where w;
	struct vm_state s;
	struct vmfsd_ctl *c;
	struct vmfsd_info di;
	const char *path;
	bool json = false;
	int ret;

	if ((ret = vm_json_opt(argc, argv, &json)) >= 0)
		return ret;
	if (cli_one_operand(argc, argv, "PATH", &path))
		return CLI_EXIT_USAGE;
	if (vm_locate(path, &w) || vm_connect(&w, &c, &di))
		return CLI_EXIT_FAIL;
	ret = vm_state_of(&w, &di, c, &s);
	vmfsd_ctl_disconnect(c);
	vm_print(&w, &s, json, true);
	if (json)
		printf("\n");
	return ret ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

struct vm_list_ctx {
	bool json;
	unsigned n;
	int rc;
};

/* Every directory of the datastore at mp holding a VM config (one level
 * below the top, or two: /vms/NAME). */
static void vm_list_dir(struct vm_list_ctx *lc, const char *mp,
			const char *dir, int depth, struct vmfsd_ctl *c,
			const struct vmfsd_info *di)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char sub[PATH_MAX], cfg[PATH_MAX + 16];
		struct vm_where w;
		struct vm_state s;
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name) >=
		    (int)sizeof(sub) || stat(sub, &st) || !S_ISDIR(st.st_mode))
			continue;
		snprintf(cfg, sizeof(cfg), "%s/%s", sub, HV_CONFIG_NAME);
		if (access(cfg, F_OK)) {
			if (depth < 2)
				vm_list_dir(lc, mp, sub, depth + 1, c, di);
			continue;
		}
		snprintf(w.dir, sizeof(w.dir), "%s", sub);
		snprintf(w.mp, sizeof(w.mp), "%s", mp);
		snprintf(w.path, sizeof(w.path), "%s", sub + strlen(mp));
		if (vm_state_of(&w, di, c, &s))
			lc->rc = CLI_EXIT_FAIL;
		vm_print(&w, &s, lc->json, lc->n == 0);
		lc->n++;
	}
	closedir(d);
}

static int vm_list_mp(void *ctx, const char *mp)
{
	struct vm_list_ctx *lc = ctx;
	struct vmfsd_ctl *c;
	struct vmfsd_info di;

	if (cli_daemon_open(mp, &c, &di))
		return 0;
	vm_list_dir(lc, mp, mp, 1, c, &di);
	vmfsd_ctl_disconnect(c);
	return 0;
}

static int vm_list(int argc, char **argv)
{
	struct vm_list_ctx lc = { .rc = CLI_EXIT_OK };
	int ch;

	if ((ch = vm_json_opt(argc, argv, &lc.json)) >= 0)
		return ch;
	if (argc - optind > 1)
		return cli_usage_err("unexpected argument %s", argv[optind + 1]);
	if (lc.json)
		printf("{ \"vms\": [");
	else
		printf("%-40s %-8s %-16s %s\n", "VM", "STATE", "HOST", "");
	if (optind < argc) {
		char real[PATH_MAX];

		if (!realpath(argv[optind], real)) {
			cli_err("%s: %s", argv[optind], strerror(errno));
			return CLI_EXIT_FAIL;
		}
		vm_list_mp(&lc, real);
	} else {
		cli_vmfs_mounts_each(vm_list_mp, &lc);
	}
	if (lc.json)
		printf("] }\n");
	return lc.rc;
}

/* ---- set ---- */

static int vm_set(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "ha",               required_argument, NULL, 'a' },
		{ "restart-priority", required_argument, NULL, 'p' },
		{ "help",             no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct hv_config cfg;
	struct vm_where w;
	struct vm_state s;
	struct vmfsd_ctl *c;
	struct vmfsd_info di;
	char err[HV_ERR_MAX], p[PATH_MAX + 16], *text;
	const char *path, *me;
	int ha = -1, ch;
	uint64_t prio = 0;
	bool have_prio = false;

	while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			if (!strcmp(optarg, "on"))
				ha = 1;
			else if (!strcmp(optarg, "off"))
				ha = 0;
			else
				return cli_usage_err("--ha %s: give on or off", optarg);
			break;
		case 'p':
			if (cli_count_opt("--restart-priority", optarg, 0,
					  HV_PRIORITY_MAX, "priority (higher "
					  "restarts first)", &prio))
				return CLI_EXIT_USAGE;
			have_prio = true;
			break;
		case 'h':
			help_vm_cmds();
			return CLI_EXIT_OK;
		default:
			return cli_getopt_err(ch, argv);
		}
	}
	if (cli_one_operand(argc, argv, "PATH", &path))
		return CLI_EXIT_USAGE;
	if (ha < 0 && !have_prio)
		return cli_usage_err("nothing to set: give --ha on|off and/or "
				     "--restart-priority N");
	if (vm_locate(path, &w) || vm_connect(&w, &c, &di))
		return CLI_EXIT_FAIL;
	vm_state_of(&w, &di, c, &s);
	vmfsd_ctl_disconnect(c);
	me = di.host_name[0] ? di.host_name : di.host_uuid;
	if ((!strcmp(s.state, "running") || !strcmp(s.state, "stopping")) &&
	    strcmp(s.host, me)) {
		cli_err("VM %s runs on host %s, which holds the lock of its "
			"config; run 'vmfs vm set' there, or stop the VM first",
			w.dir, s.host);
		return CLI_EXIT_FAIL;
	}
	memset(&cfg, 0, sizeof(cfg));
	if (hv_config_load(w.dir, &cfg, err, sizeof(err))) {
		cli_err("%s", err);
		return CLI_EXIT_FAIL;
	}
	if (ha >= 0)
		cfg.ha = ha;
	if (have_prio)
		cfg.restart_priority = (unsigned)prio;
	snprintf(p, sizeof(p), "%s/%s", w.dir, HV_CONFIG_NAME);
	if (hv_config_check(&cfg, p, err, sizeof(err))) {
		cli_err("%s", err);
		return CLI_EXIT_FAIL;
	}
	text = hv_config_encode(&cfg);
	if (!text) {
		cli_err("out of memory");
		return CLI_EXIT_FAIL;
	}
	/* In place: the open lock of the config (taken for this host by
	 * the open, or held already while the VM runs here) guards it. */
	ch = vm_write_file(p, text, true);
	free(text);
	if (ch)
		return CLI_EXIT_FAIL;
	/* Running here: its run record takes the change at once. */
	if (s.have_rec && !strcmp(s.rec.host_name, me)) {
		s.rec.ha = cfg.ha;
		s.rec.priority = cfg.restart_priority;
		if (hv_ha_state_write(w.dir, &s.rec)) {
			cli_err("set %s, but cannot update its run record %s/%s: "
				"%s; it takes effect at the VM's next start", p,
				w.dir, HV_HA_STATE_NAME, strerror(errno));
			return CLI_EXIT_FAIL;
		}
	}
	printf("VM %s: ha %s, restart priority %u\n", w.dir,
	       cfg.ha ? "on" : "off", cfg.restart_priority);
	return CLI_EXIT_OK;
}

/* ---- console, destroy ---- */

static volatile sig_atomic_t vm_detach;

static void vm_on_int(int sig)
{
	(void)sig;
	vm_detach = 1;
}

/* Follow dir's console.log (any host, the VM running or not). */
static int vm_console_log(const char *dir)
{
	struct sigaction sa = { .sa_handler = vm_on_int };
	char p[PATH_MAX + 16], buf[4096];
	ssize_t n;
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, HV_CONSOLE_NAME);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		cli_err("cannot open the console log %s: %s (has the VM ever "
			"started?)", p, strerror(errno));
		return CLI_EXIT_FAIL;
	}
	sigaction(SIGINT, &sa, NULL);
	fprintf(stderr, "[console log of %s; Ctrl-C stops following, the VM "
		"keeps running]\n", dir);
	while (!vm_detach) {
		n = read(fd, buf, sizeof(buf));
		if (n > 0) {
			if (write(1, buf, (size_t)n) != n)
				break;
		} else {
			poll(NULL, 0, 200);
		}
	}
	close(fd);
	return CLI_EXIT_OK;
}

/*
 * Attach to the serial console of a VM running on this host (through
 * the socket this host's vmfsd gave its QEMU); elsewhere, say where it
 * runs.  --log: follow console.log instead, read-only, from any host.
 */
static int vm_console(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "log",  no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	char cfg[PATH_MAX + 16], sock[VMFSD_VM_SOCK_MAX];
	struct vmfsd_vm_info vi;
	struct vmfsd_info di;
	struct vmfsd_ctl *c;
	struct vm_where w;
	struct vm_state s;
	struct stat st;
	const char *path;
	bool log = false, here;
	int ch;

	while ((ch = getopt_long(argc, argv, ":lh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			log = true;
			break;
		case 'h':
			help_vm_cmds();
			return CLI_EXIT_OK;
		default:
			return cli_getopt_err(ch, argv);
		}
	}
	if (cli_one_operand(argc, argv, "PATH", &path))
		return CLI_EXIT_USAGE;
	if (vm_locate(path, &w))
		return CLI_EXIT_FAIL;
	if (log)
		return vm_console_log(w.dir);
	if (vm_connect(&w, &c, &di))
		return CLI_EXIT_FAIL;
	here = !vm_local(c, w.path, &vi) && !strcmp(vi.state, "running");
	if (!here)
		vm_state_of(&w, &di, c, &s);
	vmfsd_ctl_disconnect(c);
	if (!here) {
		if (!strcmp(s.state, "running") || !strcmp(s.state, "stopping"))
			cli_err("VM %s runs on host %s: attach to its console "
				"there ('vmfs vm console' on %s; its console.log "
				"is that host's while it runs)", w.dir, s.host,
				s.host);
		else
			cli_err("VM %s is not running (%s); start it with 'vmfs "
				"vm start', or read its last output with 'vmfs vm "
				"console --log %s'", w.dir, s.state, path);
		return CLI_EXIT_FAIL;
	}
	snprintf(cfg, sizeof(cfg), "%s/%s", w.dir, HV_CONFIG_NAME);
	if (stat(cfg, &st)) {
		cli_err("%s: %s", cfg, strerror(errno));
		return CLI_EXIT_FAIL;
	}
	if (vmfsd_vm_sock_path(di.state_dir, st.st_ino, "console", sock)) {
		cli_err("the console socket path under %s is too long", di.state_dir);
		return CLI_EXIT_FAIL;
	}
	return cli_vm_console_attach(sock, w.dir);
}

static int vm_destroy(int argc, char **argv)
{
	struct hv_config cfg;
	struct vm_where w;
	struct vm_state s;
	struct vmfsd_ctl *c;
	struct vmfsd_info di;
	char err[HV_ERR_MAX], p[PATH_MAX * 2];
	const char *path;
	struct dirent *e;
	DIR *dir;
	int rc;

	if ((rc = vm_path_arg(argc, argv, &path)) >= 0)
		return rc;
	if (vm_locate(path, &w) || vm_connect(&w, &c, &di))
		return CLI_EXIT_FAIL;
	vm_state_of(&w, &di, c, &s);
	vmfsd_ctl_disconnect(c);
	if (!strcmp(s.state, "running") || !strcmp(s.state, "stopping")) {
		cli_err("VM %s runs on %s; stop it first ('vmfs vm stop')", w.dir,
			s.host);
		return CLI_EXIT_FAIL;
	}
	memset(&cfg, 0, sizeof(cfg));
	/* A missing disk still leaves the rest to remove. */
	if (hv_config_load(w.dir, &cfg, err, sizeof(err)) && !cfg.name[0]) {
		cli_err("%s; not removing %s", err, w.dir);
		return CLI_EXIT_FAIL;
	}
	for (unsigned i = 0; i < cfg.ndisks; i++) {
		snprintf(p, sizeof(p), "%s/%s", w.dir, cfg.disks[i]);
		unlink(p);
	}
	if (cfg.kernel[0]) {
		snprintf(p, sizeof(p), "%s/%s", w.dir, cfg.kernel);
		unlink(p);
		snprintf(p, sizeof(p), "%s/%s", w.dir, cfg.initrd);
		unlink(p);
	}
	snprintf(p, sizeof(p), "%s/%s", w.dir, HV_CONSOLE_NAME);
	unlink(p);
	snprintf(p, sizeof(p), "%s/%s", w.dir, HV_HA_STATE_NAME);
	unlink(p);
	/* QEMU's logs, one per host that ran it (qemu-HOST.log). */
	dir = opendir(w.dir);
	while (dir && (e = readdir(dir))) {
		size_t n = strlen(e->d_name);

		if (!strncmp(e->d_name, "qemu", 4) && n >= 8 &&
		    !strcmp(e->d_name + n - 4, ".log") &&
		    (e->d_name[4] == '-' || e->d_name[4] == '.')) {
			snprintf(p, sizeof(p), "%s/%s", w.dir, e->d_name);
			unlink(p);
		}
	}
	if (dir)
		closedir(dir);
	snprintf(p, sizeof(p), "%s/%s", w.dir, HV_CONFIG_NAME);
	unlink(p);
	if (rmdir(w.dir)) {
		cli_err("removed the VM's files, but not %s: %s (other files are "
			"left there)", w.dir, strerror(errno));
		return CLI_EXIT_FAIL;
	}
	printf("destroyed VM %s\n", w.dir);
	return CLI_EXIT_OK;
}

/* One status of the migration of w's VM; NULL (said why) on failure. */
static json_object *vm_mig_status(struct vmfsd_ctl *c, const struct vm_where *w)
{
	char msg[1024], *text = NULL;
	json_object *o;
	int ret = vmfsd_ctl_vm_migrate_status(c, w->path, &text, msg,
					      sizeof(msg));

	if (ret) {
		cli_err("cannot follow the migration of %s: %s", w->dir,
			msg[0] ? msg : vmfs_strerror(ret));
		return NULL;
	}
	o = json_tokener_parse(text);
	free(text);
	if (!o)
		cli_err("vmfsd sent a migration status that is not JSON");
	return o;
}

static int64_t vm_j64(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

static const char *vm_jstr(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

static int vm_migrate(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "max-bandwidth", required_argument, NULL, 'b' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *to = NULL;
	uint64_t bw = 0;
	bool json = false, tty = isatty(STDOUT_FILENO);
	struct vm_where w;
	struct vmfsd_ctl *c;
	struct vmfsd_info di;
	json_object *st = NULL;
	char msg[4096];
	int opt, ret;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 't':
			to = optarg;
			break;
		case 'b':
			if (cli_size_opt("--max-bandwidth", optarg, 1ull << 20,
					 1ull << 40, &bw))
				return CLI_EXIT_USAGE;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			help_vm_cmds();
			return CLI_EXIT_OK;
		default:
			return cli_getopt_err(opt, argv);
		}
	}
	if (optind + 1 != argc || !to || !to[0])
		return cli_usage_err("give one VM directory and --to HOST, the "
				     "host to move it to");
	if (vm_locate(argv[optind], &w) || vm_connect(&w, &c, &di))
		return CLI_EXIT_FAIL;
	ret = vmfsd_ctl_vm_migrate(c, w.path, to, bw, msg, sizeof(msg));
	if (ret) {
		vmfsd_ctl_disconnect(c);
		cli_err("cannot migrate %s: %s", w.dir, msg[0] ? msg :
			vmfs_strerror(ret));
		return CLI_EXIT_FAIL;
	}
	for (;;) {
		const char *state;

		json_object_put(st);
		st = vm_mig_status(c, &w);
		if (!st)
			break;
		state = vm_jstr(st, "state");
		if (!strcmp(state, "done") || !strcmp(state, "failed"))
			break;
		if (!json && tty) {
			int64_t total = vm_j64(st, "ram_total");

			printf("\r%-10s %5.1f s  RAM %" PRId64 "/%" PRId64 " MiB   ",
			       state, vm_j64(st, "elapsed_ms") / 1000.0,
			       vm_j64(st, "ram_transferred") >> 20, total >> 20);
			fflush(stdout);
		}
		poll(NULL, 0, 100);
	}
	vmfsd_ctl_disconnect(c);
	if (!st)
		return CLI_EXIT_FAIL;
	if (!json && tty)
		printf("\r%60s\r", "");
	ret = strcmp(vm_jstr(st, "state"), "done") ? CLI_EXIT_FAIL : CLI_EXIT_OK;
	if (json) {
		json_object_object_add(st, "vm", json_object_new_string(w.dir));
		json_object_object_add(st, "from", json_object_new_string(
			di.host_name[0] ? di.host_name : di.host_uuid));
		printf("%s\n", json_object_to_json_string_ext(st,
			JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	} else if (ret) {
		cli_err("migration of %s to %s failed: %s", w.dir, to,
			vm_jstr(st, "msg"));
	} else {
		int64_t gap = vm_j64(st, "counter_gap_ms");
		int64_t pause = vm_j64(st, "pause_ms");

		printf("migrated VM %s from %s to %s in %.1f s: ", w.dir,
		       di.host_name[0] ? di.host_name : di.host_uuid, to,
		       vm_j64(st, "elapsed_ms") / 1000.0);
		if (pause >= 0)
			printf("guest paused %" PRId64 " ms, ", pause);
		printf("QEMU downtime %" PRId64 " ms, lock handover %" PRId64
		       " ms", vm_j64(st, "downtime_ms"),
		       vm_j64(st, "handover_ms"));
		if (gap >= 0)
			printf(", guest counter gap %" PRId64 " ms across the "
			       "switchover (at most %" PRId64 " ms between its "
			       "writes before; counter %" PRId64 " -> %" PRId64
			       ")", gap, vm_j64(st, "counter_interval_ms"),
			       vm_j64(st, "counter_first"),
			       vm_j64(st, "counter_last"));
		printf("\n");
	}
	json_object_put(st);
	return ret;
}

static const struct cli_cmd vm_cmds[] = {
	{ "create",  vm_create,  help_vm_cmds, "create a VM directory" },
	{ "start",   vm_start,   help_vm_cmds, "run a VM on this host" },
	{ "stop",    vm_stop,    help_vm_cmds, "stop a VM running on this host" },
	{ "status",  vm_status,  help_vm_cmds, "state and host of a VM" },
	{ "list",    vm_list,    help_vm_cmds, "every VM on the datastores" },
	{ "console", vm_console, help_vm_cmds, "attach to a VM's serial console" },
	{ "migrate", vm_migrate, help_vm_cmds, "live-migrate a VM to another host" },
	{ "destroy", vm_destroy, help_vm_cmds, "remove a stopped VM" },
	{ "set",     vm_set,     help_vm_cmds, "change a VM's HA settings" },
};

int cmd_vm(int argc, char **argv)
{
	return cli_dispatch(vm_cmds, CLI_NELEMS(vm_cmds), help_vm, argc, argv);
}
