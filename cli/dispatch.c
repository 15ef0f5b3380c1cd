/*
 * Commands with subcommands (`vmfs disk create`, `vmfs journal dump`):
 * one dispatcher, so that every group answers --help, a missing or an
 * unknown subcommand the same way (git's and kvmtool's nested tables).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

const struct cli_cmd *cli_cmd_lookup(const struct cli_cmd *table, size_t n,
				     const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(table[i].name, name))
			return &table[i];
	return NULL;
}

/* "create or info", "a, b or c": the names, for the messages. */
static const char *cli_cmd_names(const struct cli_cmd *table, size_t n,
				 char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s",
					!i ? "" : i + 1 < n ? ", " : " or ",
					table[i].name);
	return buf;
}

int cli_dispatch(const struct cli_cmd *table, size_t n, void (*help)(void),
		 int argc, char **argv)
{
	const struct cli_cmd *sub;
	char names[256], prog[64];

	if (argc < 2)
		return cli_usage_err("missing subcommand (%s)",
				     cli_cmd_names(table, n, names, sizeof(names)));
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		help();
		return CLI_EXIT_OK;
	}
	sub = cli_cmd_lookup(table, n, argv[1]);
	if (sub) {
		snprintf(prog, sizeof(prog), "%s %s", cli_prog(), sub->name);
		cli_set_prog(prog);
		optind = 0;
		return sub->fn(argc - 1, argv + 1);
	}
	if (argv[1][0] == '-')
		return cli_usage_err("unknown option '%s'", argv[1]);
	return cli_usage_err("unknown subcommand '%s' (%s)", argv[1],
			     cli_cmd_names(table, n, names, sizeof(names)));
}
