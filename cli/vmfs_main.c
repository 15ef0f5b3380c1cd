/*
 * vmfs: the admin command.  `vmfs <command> [options] [args]`.
 *
 * The commands are a table (kvmtool kvm-cmd.c): each entry names the
 * function that runs the command and the one that prints its help, so
 * `vmfs <cmd> --help` and `vmfs help <cmd>` work for every command.  This
 * file also owns the process-wide setup the library must not do itself:
 * logging (libqb to stderr at WARNING, so engine warnings reach the
 * administrator) and the environment (VMFS_STATE_DIR).
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include "vmfs/log.h"

#include "vmfs/format.h"
#include "vmfs/lun.h"
#include "vmfs/vmfsd.h"
#include "cli.h"

static int cmd_help(int argc, char **argv);
static void help_help(void);

static const struct cli_cmd cli_cmds[] = {
	{ "mkfs",   cmd_mkfs,   help_mkfs,   "create a vmfs volume on a LUN" },
	{ "grow",   cmd_grow,   help_grow,   "grow an unmounted volume into its enlarged LUN" },
	{ "info",   cmd_info,   help_info,   "show a volume's layout and usage" },
	{ "mount",  cmd_mount,  help_mount,  "mount a volume (starts vmfsd)" },
	{ "umount", cmd_umount, help_umount, "unmount a volume and wait for vmfsd" },
	{ "disk",   cmd_disk,   help_disk,   "create and inspect VM disk files" },
	{ "fsck",   cmd_fsck,   help_fsck,   "check and repair a volume" },
	{ "journal", cmd_journal, help_journal, "show or replay the per-host metadata journals" },
	{ "hosts",  cmd_hosts,  help_hosts,  "list the hosts in the heartbeat slots, live or dead" },
	{ "locks",  cmd_locks,  help_locks,  "list every lock held on a volume and its holders" },
	{ "paths",  cmd_paths,  help_paths,  "list the paths to a LUN (iSCSI portals) and their state" },
	{ "vm",     cmd_vm,     help_vm,     "create, start, stop and list VMs on a datastore" },
	{ "cluster", cmd_cluster, help_cluster, "write the corosync configuration of a cluster" },
	{ "help",   cmd_help,   help_help,   "show help for a command" },
};
#define CLI_NCMDS CLI_NELEMS(cli_cmds)

static char cli_prog_buf[64] = "vmfs";
static const char *cli_state_dir_default = VMFSD_DEFAULT_STATE_DIR;

void cli_set_prog(const char *prog)
{
	snprintf(cli_prog_buf, sizeof(cli_prog_buf), "%s", prog);
}

const char *cli_prog(void)
{
	return cli_prog_buf;
}

static void cli_verr(const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", cli_prog_buf);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void cli_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_verr(fmt, ap);
	va_end(ap);
}

int cli_usage_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_verr(fmt, ap);
	va_end(ap);
	fprintf(stderr, "see '%s --help'\n", cli_prog_buf);
	return CLI_EXIT_USAGE;
}

int cli_one_operand(int argc, char **argv, const char *what, const char **out)
{
	if (optind == argc)
		return cli_usage_err("missing %s", what);
	if (argc - optind > 1)
		return cli_usage_err("unexpected argument '%s'", argv[optind + 1]);
	*out = argv[optind];
	return 0;
}

/*
 * getopt_long is told to stay quiet (optstring starting with ':') so that
 * every message has our prefix and the --help hint.  For an unknown long
 * option optopt is 0 and the offending word is the one just consumed.
 */
int cli_getopt_err(int c, char **argv)
{
	const char *word = argv[optind - 1];

	if (c == ':') {
		if (optopt && strncmp(word, "--", 2))
			return cli_usage_err("option '-%c' needs a value", optopt);
		return cli_usage_err("option '%s' needs a value", word);
	}
	if (optopt)
		return cli_usage_err("unknown option '-%c'", optopt);
	return cli_usage_err("unknown option '%s'", word);
}

const char *cli_default_state_dir(void)
{
	return cli_state_dir_default;
}

static const struct cli_cmd *cli_cmd_find(const char *name)
{
	return cli_cmd_lookup(cli_cmds, CLI_NCMDS, name);
}

static void cli_help_all(void)
{
	size_t i;

	printf("usage: vmfs [--version] [--help] <command> [options] [args]\n\n"
	       "Administer vmfs volumes: clustered file systems for VM disks\n"
	       "on a LUN shared by many hosts.\n\n"
	       "Commands:\n");
	for (i = 0; i < CLI_NCMDS; i++)
		printf("  %-8s %s\n", cli_cmds[i].name, cli_cmds[i].summary);
	printf("\nRun 'vmfs <command> --help' for a command's options.\n"
	       "Sizes take K, M, G, T suffixes (binary: 1M = 1048576 bytes).\n"
	       "Commands that use the host's state directory take --state-dir;\n"
	       "its default is $VMFS_STATE_DIR, else %s.\n",
	       VMFSD_DEFAULT_STATE_DIR);
}

static void help_help(void)
{
	printf("usage: vmfs help [COMMAND]\n\n"
	       "Show the help of COMMAND, or the list of commands.\n");
}

static int cmd_help(int argc, char **argv)
{
	const struct cli_cmd *cmd;

	if (argc < 2) {
		cli_help_all();
		return CLI_EXIT_OK;
	}
	if (argc > 2)
		return cli_usage_err("too many arguments");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		help_help();
		return CLI_EXIT_OK;
	}
	cmd = cli_cmd_find(argv[1]);
	if (!cmd) {
		cli_err("unknown command '%s'", argv[1]);
		fprintf(stderr, "see 'vmfs --help'\n");
		return CLI_EXIT_USAGE;
	}
	cmd->help();
	return CLI_EXIT_OK;
}

/*
 * Library messages (qb_log) go to stderr at WARNING and above, prefixed
 * so they are told apart from the command's own messages; syslog stays
 * off because an interactive command is not a daemon.
 */
static void cli_log_init(void)
{
	qb_log_init("vmfs", LOG_USER, LOG_WARNING);
	qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, QB_FALSE);
	qb_log_filter_ctl(QB_LOG_STDERR, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE,
			  "*", LOG_WARNING);
	qb_log_format_set(QB_LOG_STDERR, "vmfs: %p: %b");
	qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_TRUE);
}

void cli_log_quiet(bool quiet)
{
	qb_log_filter_ctl(QB_LOG_STDERR, QB_LOG_FILTER_CLEAR_ALL,
			  QB_LOG_FILTER_FILE, "*", LOG_TRACE);
	qb_log_filter_ctl(QB_LOG_STDERR, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE,
			  "*", quiet ? LOG_ERR : LOG_WARNING);
}

/*
 * Run a command (or a helper) as prog: process-wide setup, then fn with
 * getopt re-initialised (optind = 0 makes glibc start afresh).
 */
static int cli_run(const char *prog, int (*fn)(int, char **), int argc,
		   char **argv)
{
	const char *env;
	int rc;

	env = getenv("VMFS_STATE_DIR");
	if (env && *env)
		cli_state_dir_default = env;
	/* CHAP credentials of iscsi:// LUNs (docs/OPERATIONS.md). */
	env = getenv("VMFS_CHAP_FILE");
	if (env && *env && lun_set_chap_file(env)) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return CLI_EXIT_FAIL;
	}
	cli_set_prog(prog);
	cli_log_init();
	optind = 0;
	rc = fn(argc, argv);
	qb_log_fini();
	return rc;
}

int main(int argc, char **argv)
{
	const struct cli_cmd *cmd;
	char prog[64];

	/* Run as mount.vmfs, fsck.vmfs or mkfs.vmfs (links to vmfs)? */
	cmd = cli_helper_find(argv[0] ? argv[0] : "");
	if (cmd)
		return cli_run(cmd->name, cmd->fn, argc, argv);

	if (argc < 2) {
		cli_help_all();
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		cli_help_all();
		return CLI_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("vmfs %s\n", VMFS_VERSION_LINE);
		return CLI_EXIT_OK;
	}
	if (argv[1][0] == '-') {
		fprintf(stderr, "vmfs: unknown option '%s'\nsee 'vmfs --help'\n",
			argv[1]);
		return CLI_EXIT_USAGE;
	}
	cmd = cli_cmd_find(argv[1]);
	if (!cmd) {
		fprintf(stderr, "vmfs: unknown command '%s'\nsee 'vmfs --help'\n",
			argv[1]);
		return CLI_EXIT_USAGE;
	}
	snprintf(prog, sizeof(prog), "vmfs %s", cmd->name);
	return cli_run(prog, cmd->fn, argc - 1, argv + 1);
}
