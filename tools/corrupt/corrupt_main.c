/*
 * vmfs-corrupt: the corruption tool's command, a test program that is
 * not installed (tools/corrupt/corrupt.h says why it stands apart).
 *
 *   vmfs-corrupt --problem CODE|NAME [--seed N] LUN
 *       damage an unmounted volume the way one fsck problem code
 *       describes, on a target chosen by the seed, and print what was
 *       damaged:
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
 *   vmfs-corrupt --list
 *       the problem codes, their names and messages.
 *
 * Exit status as vmfs's: 0 done, 1 failed, 2 bad command line.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vmfs/fsck.h"
#include "vmfs/lun.h"
#include "corrupt.h"

#define PROG "vmfs-corrupt"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static void help(void)
{
	printf("usage: " PROG " --problem CODE|NAME [--seed N] LUN\n"
	       "       " PROG " --list\n\n"
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
	       "This destroys data: use it only on scratch volumes.  It is a test\n"
	       "program, built by 'make check' and never installed.\n");
}

/*
 * "vmfs-corrupt: <message>" on stderr, then for EXIT_USAGE the --help
 * hint; returns status.
 */
static int fail(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int fail(int status, const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (status == EXIT_USAGE)
		fputs("see '" PROG " --help'\n", stderr);
	return status;
}

/* "0x0305", "773", "PR_3_PTR_RANGE", "pr_3_ptr_range", "3_PTR_RANGE". */
static const struct fsck_problem_info *problem_parse(const char *s)
{
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
	return fsck_problem_by_name(name);
}

static void list(void)
{
	const struct fsck_problem_info *t;
	unsigned n;

	t = fsck_problem_table(&n);
	for (unsigned i = 0; i < n; i++)
		printf("0x%04x  %-22s %s\n", (unsigned)t[i].code, t[i].name,
		       t[i].message);
}

int main(int argc, char **argv)
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
			p = problem_parse(optarg);
			if (!p)
				return fail(EXIT_USAGE, "--problem %s: no such problem "
					    "code (see '" PROG " --list')", optarg);
			break;
		case 's':
			errno = 0;
			seed = strtoull(optarg, &end, 0);
			if (errno || !*optarg || *end)
				return fail(EXIT_USAGE, "--seed %s: must be a number",
					    optarg);
			break;
		case 'l':
			list();
			return EXIT_OK;
		case 'h':
			help();
			return EXIT_OK;
		case ':':
			return fail(EXIT_USAGE, "option '%s' needs a value",
				    argv[optind - 1]);
		default:
			return fail(EXIT_USAGE, "unknown option '%s'",
				    argv[optind - 1]);
		}
	}
	if (!p)
		return fail(EXIT_USAGE, "missing --problem");
	if (optind == argc)
		return fail(EXIT_USAGE, "missing LUN");
	if (argc - optind > 1)
		return fail(EXIT_USAGE, "unexpected argument '%s'",
			    argv[optind + 1]);
	spec = argv[optind];

	ret = lun_open(spec, 0, &lun);
	if (ret)
		return fail(EXIT_FAIL, "cannot open %s: %s", spec,
			    vmfs_strerror(ret));
	ret = corrupt_damage(lun, p->code, seed, &target, hint, sizeof(hint));
	lun_close(lun);
	if (ret == -ENOENT)
		return fail(EXIT_FAIL, "%s: the volume has nothing %s can damage "
			    "(seed %" PRIu64 "); put more on it", spec, p->name,
			    seed);
	if (ret == -EINVAL)
		return fail(EXIT_FAIL, "the corruption tool has no damage for %s",
			    p->name);
	if (ret)
		return fail(EXIT_FAIL, "%s: %s failed: %s", spec, p->name,
			    vmfs_strerror(ret));
	/* The hint: a description, then "target-path:" lines. */
	nl = strchr(hint, '\n');
	printf("problem: %s (0x%04x)\nseed: %" PRIu64 "\n"
	       "target: %" PRIu64 " (0x%" PRIx64 ")\ndamage: %.*s\n",
	       p->name, (unsigned)p->code, seed, target, target,
	       nl ? (int)(nl - hint) : (int)strlen(hint), hint);
	if (nl)
		printf("%s\n", nl + 1);
	return EXIT_OK;
}
