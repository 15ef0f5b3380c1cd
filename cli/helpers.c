/*
 * mount.vmfs, fsck.vmfs, mkfs.vmfs: the helpers mount(8), fsck(8) and
 * mkfs(8) run for "-t vmfs".  They are links to the vmfs binary, which
 * picks one by the name it was run as (argv[0]'s basename).
 *
 * Each helper only translates the calling convention of its front end
 * into the arguments of the matching vmfs command and calls that
 * command's function, so the helpers can never drift from `vmfs mount`,
 * `vmfs fsck` and `vmfs mkfs`: options, checks and messages are theirs.
 *
 *   mount.vmfs SPEC DIR [-sfnv] [-o OPTS] [-t TYPE]   (mount(8) "EXTERNAL
 *        HELPERS"); exits 0, 1 (incorrect invocation) or 32 (mount
 *        failure), mount(8)'s codes.
 *   fsck.vmfs [-a|-p|-n|-y] [-f] [-C FD] [-V] DEVICE  (fsck(8), e2fsck's
 *        letters); exits with `vmfs fsck`'s fsck(8) bits.
 *   mkfs.vmfs [vmfs mkfs options] DEVICE, or -V/--version.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmfs/fsck.h"
#include "vmfs/version.h"
#include "cli.h"

/* mount(8) RETURN CODES. */
#define HELPER_MOUNT_EXIT_USAGE 1
#define HELPER_MOUNT_EXIT_FAIL  32

/* fsck(8) bit for a usage error (`vmfs fsck` uses the same). */
#define HELPER_FSCK_EXIT_USAGE  16

/* Room for every option a helper translates, several times over. */
#define HELPER_ARGV_MAX 64

struct helper_argv {
	char *v[HELPER_ARGV_MAX + 1];
	int n;
};

/* False when the array is full: the caller must not run a partial argv. */
static bool helper_argv_add(struct helper_argv *a, const char *s)
{
	if (a->n == HELPER_ARGV_MAX)
		return false;
	a->v[a->n++] = (char *)s;
	a->v[a->n] = NULL;
	return true;
}

/* The command line a helper runs, for -v and for the -f (fake) mount. */
static void helper_argv_print(const struct helper_argv *a)
{
	int i;

	fprintf(stderr, "%s: running: vmfs", cli_prog());
	for (i = 0; i < a->n; i++)
		fprintf(stderr, " %s", a->v[i]);
	fputc('\n', stderr);
}

/* Run a vmfs command the way main() runs a subcommand. */
static int helper_run(int (*fn)(int, char **), int argc, char **argv)
{
	optind = 0;
	return fn(argc, argv);
}

static bool helper_is_version(const char *arg)
{
	return !strcmp(arg, "-V") || !strcmp(arg, "--version");
}

static int helper_version(void)
{
	printf("%s from vmfs %s\n", cli_prog(), VMFS_VERSION_LINE);
	return 0;
}

/* ---- mount.vmfs --------------------------------------------------------- */

/*
 * -o options mount(8) hands every helper and that mean nothing to vmfs:
 * they steer mount(8) itself (auto, user, _netdev, nofail, x-*) or are the
 * defaults.  Accepted and ignored, as mount(8) expects of a helper.
 */
static const char *const helper_mount_ignored[] = {
	"rw", "defaults", "_netdev", "nofail", "auto", "noauto", "user",
	"nouser", "users", "owner", "noowner", "group", "nogroup",
};

/* vmfs's own -o options: NAME=VALUE (or NAME) -> `vmfs mount` option. */
static const struct helper_mount_opt {
	const char *name;
	const char *vmfs_opt;
	bool has_value;
} helper_mount_opts[] = {
	{ "commit",    "--commit-ms", true },
	{ "commit-ms", "--commit-ms", true },
	{ "cache_size", "--cache-size", true },
	{ "cache-size", "--cache-size", true },
	{ "lease-ms",  "--lease-ms",  true },
	{ "vm_memory", "--vm-memory", true },
	{ "vm-memory", "--vm-memory", true },
	{ "state-dir", "--state-dir", true },
	{ "threads",   "--threads",   true },
	{ "log-file",  "--log-file",  true },
	{ "debug",     "--debug",     false },
	{ "host-name", "--host-name", true },
	{ "lock-primitive", "--lock-primitive", true },
	{ "no_cluster", "--no-cluster", false },
	{ "no-cluster", "--no-cluster", false },
	{ "disk_asks", "--disk-asks", true },
	{ "disk-asks", "--disk-asks", true },
	/* ro wins over rw wherever each comes: a volume asked for read-only
	 * is never mounted read-write. */
	{ "ro",        "--ro",        false },
};


static void help_mount_helper(void)
{
	printf("usage: mount.vmfs LUN DIR [-sfnv] [-o OPTIONS]\n"
	       "       mount -t vmfs [-o OPTIONS] LUN DIR\n\n"
	       "The mount(8) helper: mounts the vmfs volume on LUN at DIR with\n"
	       "'vmfs mount'.\n\n"
	       "Options:\n"
	       "  -o OPTIONS  comma-separated; vmfs's own:\n"
	       "                commit=MS      --commit-ms MS (also commit-ms=MS)\n"
	       "                cache_size=SIZE\n"
	       "                               --cache-size SIZE (also cache-size=)\n"
	       "                vm_memory=SIZE --vm-memory SIZE (also vm-memory=)\n"
	       "                state-dir=DIR  --state-dir DIR\n"
	       "                threads=N      --threads N\n"
	       "                log-file=PATH  --log-file PATH\n"
	       "                debug          --debug\n"
	       "                host-name=NAME --host-name NAME\n"
	       "                lock-primitive=ats|reserve|auto\n"
	       "                               --lock-primitive P\n"
	       "                ro             --ro (read-only; wins over rw)\n"
	       "                no_cluster     --no-cluster (also no-cluster)\n"
	       "                disk_asks=on|off\n"
	       "                               --disk-asks on|off (also disk-asks=)\n"
	       "              accepted and ignored (mount(8)'s): rw, defaults, _netdev,\n"
	       "              nofail, auto, noauto, user, nouser, users, owner, group,\n"
	       "              x-*, comment=*\n"
	       "  -s          sloppy: warn about unknown options instead of failing\n"
	       "  -f          fake: check the options, mount nothing\n"
	       "  -n          accepted (there is no /etc/mtab to skip)\n"
	       "  -v          print the 'vmfs mount' command line run\n"
	       "  -t TYPE     accepted (vmfs or vmfs.SUBTYPE)\n"
	       "  -h, --help  show this help\n\n"
	       "Exit status (mount(8)'s): 0 mounted, 1 incorrect invocation,\n"
	       "32 mount failure.\n");
}

static void helper_mount_known_list(void)
{
	size_t i;

	fprintf(stderr, "known options: ");
	for (i = 0; i < CLI_NELEMS(helper_mount_opts); i++)
		fprintf(stderr, "%s%s, ", helper_mount_opts[i].name,
			helper_mount_opts[i].has_value ? "=" : "");
	for (i = 0; i < CLI_NELEMS(helper_mount_ignored); i++)
		fprintf(stderr, "%s, ", helper_mount_ignored[i]);
	fprintf(stderr, "x-*, comment=*\n");
}

/*
 * Translate one -o option into out.  Returns 0, or the exit status of an
 * error already reported.  opt points into argv, which outlives out.
 */
static int helper_mount_opt(char *opt, bool sloppy, struct helper_argv *out)
{
	char *eq = strchr(opt, '=');
	size_t i, len = eq ? (size_t)(eq - opt) : strlen(opt);

	if (!*opt)
		return 0;
	if (!strncmp(opt, "x-", 2) || !strncmp(opt, "comment=", 8))
		return 0;
	for (i = 0; i < CLI_NELEMS(helper_mount_ignored); i++)
		if (!strcmp(opt, helper_mount_ignored[i]))
			return 0;
	for (i = 0; i < CLI_NELEMS(helper_mount_opts); i++) {
		const struct helper_mount_opt *m = &helper_mount_opts[i];

		if (strlen(m->name) != len || strncmp(opt, m->name, len))
			continue;
		if (m->has_value != !!eq) {
			cli_err("option '%s' %s", opt, m->has_value ?
				"needs a value (NAME=VALUE)" : "takes no value");
			return HELPER_MOUNT_EXIT_FAIL;
		}
		/* Two left for LUN and DIR. */
		if (out->n + 4 > HELPER_ARGV_MAX) {
			cli_err("too many mount options; give each one once");
			return HELPER_MOUNT_EXIT_FAIL;
		}
		helper_argv_add(out, m->vmfs_opt);
		if (eq)
			helper_argv_add(out, eq + 1);
		return 0;
	}
	if (sloppy) {
		fprintf(stderr, "%s: warning: ignoring unknown option '%s' "
			"(sloppy mount)\n", cli_prog(), opt);
		return 0;
	}
	cli_err("unknown mount option '%s'; remove it or fix its spelling",
		opt);
	helper_mount_known_list();
	return HELPER_MOUNT_EXIT_FAIL;
}

static int helper_mount(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help",    no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	/* The -o arguments; split in place, they are argv's strings. */
	char *opts[HELPER_ARGV_MAX];
	struct helper_argv out = { .n = 0 };
	bool sloppy = false, fake = false, verbose = false;
	int c, i, nopts = 0, rc = 0;

	helper_argv_add(&out, "mount");
	while ((c = getopt_long(argc, argv, ":sfnvo:t:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			sloppy = true;
			break;
		case 'f':
			fake = true;
			break;
		case 'n':
		case 't':
			break;
		case 'v':
			verbose = true;
			break;
		case 'o':
			if (nopts == HELPER_ARGV_MAX) {
				cli_usage_err("too many -o options");
				return HELPER_MOUNT_EXIT_USAGE;
			}
			opts[nopts++] = optarg;
			break;
		case 'h':
			help_mount_helper();
			return 0;
		case 'V':
			return helper_version();
		default:
			cli_getopt_err(c, argv);
			return HELPER_MOUNT_EXIT_USAGE;
		}
	}
	if (argc - optind < 2) {
		cli_usage_err("missing %s", optind == argc ? "LUN and DIR" : "DIR");
		return HELPER_MOUNT_EXIT_USAGE;
	}
	if (argc - optind > 2) {
		cli_usage_err("unexpected argument '%s'", argv[optind + 2]);
		return HELPER_MOUNT_EXIT_USAGE;
	}
	/* Every option is checked before anything is run. */
	for (i = 0; i < nopts && !rc; i++) {
		char *save = NULL, *opt;

		for (opt = strtok_r(opts[i], ",", &save); opt && !rc;
		     opt = strtok_r(NULL, ",", &save))
			rc = helper_mount_opt(opt, sloppy, &out);
	}
	if (rc)
		return rc;
	helper_argv_add(&out, argv[optind]);
	helper_argv_add(&out, argv[optind + 1]);
	if (verbose || fake)
		helper_argv_print(&out);
	if (fake)
		return 0;
	return helper_run(cmd_mount, out.n, out.v) == CLI_EXIT_OK ? 0 :
	       HELPER_MOUNT_EXIT_FAIL;
}

/* ---- fsck.vmfs ---------------------------------------------------------- */

static void help_fsck_helper(void)
{
	printf("usage: fsck.vmfs [-a | -p | -n | -y] [-f] [-C FD] [-V] LUN\n"
	       "       fsck -t vmfs [-a | -p | -n | -y] LUN\n\n"
	       "The fsck(8) helper: checks the vmfs volume on LUN with 'vmfs fsck'.\n\n"
	       "Options:\n"
	       "  -a, -p      preen: repair only what is safe unattended (vmfs fsck -p)\n"
	       "  -n          check only, open the LUN read-only (vmfs fsck -n)\n"
	       "  -y          repair everything (vmfs fsck -y)\n"
	       "  -f          accepted: vmfs fsck always checks the whole volume,\n"
	       "              clean or not (it is not vmfs fsck's -f/--force)\n"
	       "  -C FD       accepted and ignored: no progress for fsck(8)\n"
	       "  -V          show the version\n"
	       "  -h, --help  show this help\n"
	       "Without -a, -p, -n or -y the repairs are asked for on the terminal;\n"
	       "without a terminal fsck.vmfs refuses (exit 8) and says what to pass.\n\n"
	       "Exit status (fsck(8) bits): 0 clean, 1 problems fixed, 4 problems\n"
	       "left uncorrected, 8 operational error, 16 usage error.\n");
}

static int helper_fsck(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help",    no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct helper_argv out = { .n = 0 };
	const char *mode = NULL;
	int c;

	helper_argv_add(&out, "fsck");
	while ((c = getopt_long(argc, argv, ":apnyfC:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'a':
		case 'p':
		case 'n':
		case 'y':
			c = c == 'a' ? 'p' : c;
			if (mode && mode[1] != c) {
				cli_usage_err("-a/-p, -n and -y exclude each other");
				return HELPER_FSCK_EXIT_USAGE;
			}
			mode = c == 'p' ? "-p" : c == 'n' ? "-n" : "-y";
			break;
		case 'f':
		case 'C':
			break;
		case 'h':
			help_fsck_helper();
			return FSCK_EXIT_OK;
		case 'V':
			return helper_version();
		default:
			cli_getopt_err(c, argv);
			return HELPER_FSCK_EXIT_USAGE;
		}
	}
	if (optind == argc) {
		cli_usage_err("missing LUN");
		return HELPER_FSCK_EXIT_USAGE;
	}
	if (argc - optind > 1) {
		cli_usage_err("unexpected argument '%s'", argv[optind + 1]);
		return HELPER_FSCK_EXIT_USAGE;
	}
	/*
	 * e2fsck's answer when it would have to ask with nobody to answer:
	 * `vmfs fsck` would quietly check read-only instead, which a boot
	 * script could take for a repair.
	 */
	if (!mode && !isatty(STDIN_FILENO)) {
		cli_err("%s: need a terminal for interactive repairs; pass -p (or "
			"-a) to repair what is safe, -n to check only, or -y to "
			"repair everything", argv[optind]);
		return FSCK_EXIT_ERROR;
	}
	if (mode)
		helper_argv_add(&out, mode);
	helper_argv_add(&out, argv[optind]);
	return helper_run(cmd_fsck, out.n, out.v);
}

/* ---- mkfs.vmfs ---------------------------------------------------------- */

/* mkfs(8) passes its options through: they are `vmfs mkfs`'s. */
static int helper_mkfs(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		if (helper_is_version(argv[i]))
			return helper_version();
	/* argv[0] becomes "mkfs"; the rest is passed as it is. */
	argv[0] = "mkfs";
	return helper_run(cmd_mkfs, argc, argv);
}

/* ---- dispatch ----------------------------------------------------------- */

static const struct cli_cmd helper_cmds[] = {
	{ "mount.vmfs", helper_mount, help_mount_helper, "mount(8) helper" },
	{ "fsck.vmfs",  helper_fsck,  help_fsck_helper,  "fsck(8) helper" },
	{ "mkfs.vmfs",  helper_mkfs,  help_mkfs,         "mkfs(8) helper" },
};

const struct cli_cmd *cli_helper_find(const char *argv0)
{
	const char *base = strrchr(argv0, '/');

	base = base ? base + 1 : argv0;
	return cli_cmd_lookup(helper_cmds, CLI_NELEMS(helper_cmds), base);
}
