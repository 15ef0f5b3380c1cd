/*
 * vmfs debug: tools for developers and tests, not for production volumes.
 *
 *   corrupt --problem CODE|NAME [--seed N] LUN
 *       damage an unmounted volume the way one fsck problem code
 *       describes (fsck_corrupt, ocfs2's fswreck), on a target chosen by
 *       the seed, and print what was damaged:
 *
 *         problem: PR_3_PTR_RANGE (0x0305)
 *         seed: 7
 *         target: 78315520 (0x4ab0000)
 *         damage: inode 17 (/big.bin) data pointer for block 3 ...
 *         target-path: /big.bin
 *
 *       one "target-path:" line for every file whose name, data or
 *       attributes the damage (or its repair) may change; every other
 *       file must read back unchanged after fsck.  tests/fsck/ builds its
 *       corpus with it.
 *   corrupt --list
 *       the problem codes, their names and messages.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vmfs/fsck.h"
#include "vmfs/lun.h"
#include "cli.h"

static void help_debug_corrupt(void)
{
	printf("usage: vmfs debug corrupt --problem CODE|NAME [--seed N] LUN\n"
	       "       vmfs debug corrupt --list\n\n"
	       "Damage the volume on LUN the way fsck problem CODE describes, for\n"
	       "testing fsck.  CODE is a number (0x0305) or a name (PR_3_PTR_RANGE,\n"
	       "3_PTR_RANGE); the seed chooses the target among the objects that\n"
	       "fit, and the same seed on the same volume does the same damage.\n"
	       "The volume must not be mounted.  Prints the damage and one\n"
	       "'target-path: PATH' line per file it may change.\n\n"
	       "Options:\n"
	       "  -p, --problem CODE   the problem code or name\n"
	       "  -s, --seed N         seed of the choices (default 0)\n"
	       "  -l, --list           list the problem codes\n"
	       "  -h, --help           show this help\n\n"
	       "This destroys data: use it only on scratch volumes.\n");
}

void help_debug(void)
{
	printf("usage: vmfs debug <subcommand> [options]\n\n"
	       "  corrupt --problem CODE|NAME [--seed N] LUN\n"
	       "         damage a scratch volume as an fsck problem code describes\n"
	       "  corrupt --list\n"
	       "         list the problem codes\n\n"
	       "Run 'vmfs debug corrupt --help' for details.\n");
}

/* "0x0305", "773", "PR_3_PTR_RANGE", "pr_3_ptr_range", "3_PTR_RANGE". */
static const struct fsck_problem_info *debug_problem_parse(const char *s)
{
	const struct fsck_problem_info *p;
	char name[64], *end;
	unsigned long v;
	size_t i;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (!errno && *s && !*end)
		return fsck_problem_find((enum fsck_problem)v);
	snprintf(name, sizeof(name), "%s%s",
		 strncasecmp(s, "PR_", 3) ? "PR_" : "", s);
	for (i = 0; name[i]; i++)
		if (name[i] >= 'a' && name[i] <= 'z')
			name[i] = (char)(name[i] - 'a' + 'A');
	p = fsck_problem_by_name(name);
	return p;
}

static void debug_list(void)
{
	const struct fsck_problem_info *t;
	unsigned n;

	t = fsck_problem_table(&n);
	for (unsigned i = 0; i < n; i++)
		printf("0x%04x  %-22s %s\n", (unsigned)t[i].code, t[i].name,
		       t[i].message);
}

static int debug_corrupt(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "problem", required_argument, NULL, 'p' },
		{ "seed",    required_argument, NULL, 's' },
		{ "list",    no_argument,       NULL, 'l' },
		{ "help",    no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const struct fsck_problem_info *p = NULL;
	struct lun *lun;
	uint64_t seed = 0, target = 0;
	char hint[4096], *end;
	const char *spec, *nl;
	int c, ret;

	while ((c = getopt_long(argc, argv, ":p:s:lh", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			p = debug_problem_parse(optarg);
			if (!p)
				return cli_usage_err("--problem %s: no such problem code "
						     "(see 'vmfs debug corrupt --list')",
						     optarg);
			break;
		case 's':
			errno = 0;
			seed = strtoull(optarg, &end, 0);
			if (errno || !*optarg || *end)
				return cli_usage_err("--seed %s: must be a number", optarg);
			break;
		case 'l':
			debug_list();
			return CLI_EXIT_OK;
		case 'h':
			help_debug_corrupt();
			return CLI_EXIT_OK;
		default:
			return cli_getopt_err(c, argv);
		}
	}
	if (!p)
		return cli_usage_err("missing --problem");
	if (optind == argc)
		return cli_usage_err("missing LUN");
	if (argc - optind > 1)
		return cli_usage_err("unexpected argument '%s'", argv[optind + 1]);
	spec = argv[optind];

	ret = lun_open(spec, 0, &lun);
	if (ret) {
		cli_err("cannot open %s: %s", spec, vmfs_strerror(ret));
		return CLI_EXIT_FAIL;
	}
	ret = fsck_corrupt(lun, p->code, seed, &target, hint, sizeof(hint));
	lun_close(lun);
	if (ret == -ENOENT) {
		cli_err("%s: the volume has nothing %s can damage (seed %" PRIu64
			"); put more on it", spec, p->name, seed);
		return CLI_EXIT_FAIL;
	}
	if (ret == -EINVAL) {
		cli_err("the corruption tool has no damage for %s", p->name);
		return CLI_EXIT_FAIL;
	}
	if (ret) {
		cli_err("%s: %s failed: %s", spec, p->name, vmfs_strerror(ret));
		return CLI_EXIT_FAIL;
	}
	/* The hint: a description, then "target-path:" lines. */
	nl = strchr(hint, '\n');
	printf("problem: %s (0x%04x)\nseed: %" PRIu64 "\n"
	       "target: %" PRIu64 " (0x%" PRIx64 ")\ndamage: %.*s\n",
	       p->name, (unsigned)p->code, seed, target, target,
	       nl ? (int)(nl - hint) : (int)strlen(hint), hint);
	if (nl)
		printf("%s\n", nl + 1);
	return CLI_EXIT_OK;
}

int cmd_debug(int argc, char **argv)
{
	static const struct cli_cmd subcmds[] = {
		{ "corrupt", debug_corrupt, help_debug_corrupt,
		  "damage a volume as an fsck problem code describes" },
	};
	char prog[64];
	unsigned i;

	if (argc < 2)
		return cli_usage_err("missing subcommand (corrupt)");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		help_debug();
		return CLI_EXIT_OK;
	}
	for (i = 0; i < sizeof(subcmds) / sizeof(subcmds[0]); i++) {
		if (strcmp(argv[1], subcmds[i].name))
			continue;
		snprintf(prog, sizeof(prog), "vmfs debug %s", subcmds[i].name);
		cli_set_prog(prog);
		optind = 0;
		return subcmds[i].fn(argc - 1, argv + 1);
	}
	if (argv[1][0] == '-')
		return cli_usage_err("unknown option '%s'", argv[1]);
	return cli_usage_err("unknown subcommand '%s' (corrupt)", argv[1]);
}
