/*
 * vmfs paths: the paths to a LUN (the portals of an iSCSI URL's list
 * form, lun/iscsi.c "Paths") and their state.  For a mount point, as its
 * vmfsd's handles see them (which path is in use, when each last failed,
 * how often they moved); for a LUN, as this command finds them: it logs
 * in through each.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vmfs/lun.h"
#include "vmfs/vmfsd.h"
#include "cli.h"

#define PATHS_MAX 8

void help_paths(void)
{
	printf("usage: vmfs paths [--json] LUN|MOUNTPOINT\n\n"
	       "List the paths to the LUN and their state.  An iSCSI URL names\n"
	       "several portals of one target in its list form,\n"
	       "iscsi://A[:PORT],B[:PORT]/IQN/LUN: I/O goes through one and moves\n"
	       "to the next when that one stops answering, and back to the first\n"
	       "once it answers again.  Any other LUN has one path.\n\n"
	       "For a mount point: the paths of its vmfsd's two LUN handles (data\n"
	       "and heartbeat), which one each uses ('in-use', else 'standby'),\n"
	       "how long ago each last failed, and how often the handles moved\n"
	       "since the mount.  For a LUN: this command logs in through every\n"
	       "path and says whether it could ('reachable' or why not).\n\n"
	       "Options:\n"
	       "  -j, --json   print one JSON object\n"
	       "  -h, --help   show this help\n");
}

static void print_ago(int64_t ms)
{
	if (ms < 0)
		printf("never");
	else
		printf("%.1f s ago", (double)ms / 1000.0);
}

/* A mount point: the lines vmfsd gave ("HANDLE PORTAL STATE AGO_MS"). */
static int paths_of_mount(const struct vmfsd_info *di, bool json)
{
	char buf[sizeof(di->paths)], *save = NULL, *line;
	bool first = true;

	snprintf(buf, sizeof(buf), "%s", di->paths);
	if (!buf[0]) {
		cli_err("the vmfsd serving %s (version %s) does not report its "
			"paths; use a vmfs of the same release", di->mountpoint,
			di->version);
		return CLI_EXIT_FAIL;
	}
	if (json) {
		printf("{\n  \"mountpoint\": ");
		cli_json_str(di->mountpoint);
		printf(",\n  \"lun\": ");
		cli_json_str(di->lun);
		printf(",\n  \"failovers\": %u,\n  \"paths\": [",
		       di->path_failovers);
	} else {
		printf("%s (LUN %s), %u failover%s since the mount:\n",
		       di->mountpoint, di->lun, di->path_failovers,
		       di->path_failovers == 1 ? "" : "s");
		printf("  %-10s %-24s %-8s %s\n", "HANDLE", "PATH", "STATE",
		       "LAST FAILURE");
	}
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char handle[16], portal[128], state[16];
		long long ago;

		if (sscanf(line, "%15s %127s %15s %lld", handle, portal, state,
			   &ago) != 4)
			continue;
		if (json) {
			printf("%s\n    { \"handle\": \"%s\", \"path\": ",
			       first ? "" : ",", handle);
			cli_json_str(portal);
			printf(", \"state\": \"%s\", \"failed_ago_ms\": %lld }",
			       state, ago);
		} else {
			printf("  %-10s %-24s %-8s ", handle, portal, state);
			print_ago(ago);
			putchar('\n');
		}
		first = false;
	}
	if (json)
		printf("\n  ]\n}\n");
	return CLI_EXIT_OK;
}

/* A LUN: log in through each path. */
static int paths_of_lun(const char *spec, bool json)
{
	struct lun_path p[PATHS_MAX];
	struct lun *lun;
	unsigned n;
	int rc;

	rc = lun_open(spec, LUN_RDONLY, &lun);
	if (rc) {
		cli_err("cannot open LUN %s: %s", spec, vmfs_strerror(rc));
		return CLI_EXIT_FAIL;
	}
	n = lun_paths(lun, true, p, PATHS_MAX);
	if (n > PATHS_MAX)
		n = PATHS_MAX;
	if (json) {
		printf("{\n  \"lun\": ");
		cli_json_str(spec);
		printf(",\n  \"paths\": [");
	} else {
		printf("LUN %s:\n  %-24s %-8s %s\n", spec, "PATH", "STATE",
		       "LOGIN");
	}
	for (unsigned i = 0; i < n; i++) {
		const char *login = p[i].reachable < 0 ? "not tried" :
				    p[i].reachable ? "reachable" : p[i].why;

		if (json) {
			printf("%s\n    { \"path\": ", i ? "," : "");
			cli_json_str(p[i].portal);
			printf(", \"state\": \"%s\", \"reachable\": %s, "
			       "\"why\": ", p[i].in_use ? "in-use" : "standby",
			       p[i].reachable < 0 ? "null" :
			       p[i].reachable ? "true" : "false");
			cli_json_str(p[i].reachable == 0 ? p[i].why : "");
			printf(" }");
		} else {
			printf("  %-24s %-8s %s\n", p[i].portal,
			       p[i].in_use ? "in-use" : "standby", login);
		}
	}
	if (json)
		printf("\n  ]\n}\n");
	lun_close(lun);
	return CLI_EXIT_OK;
}

int cmd_paths(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct vmfsd_info di;
	const char *spec;
	struct stat st;
	bool json = false;
	int ch;

	while ((ch = getopt_long(argc, argv, ":jh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json = true;
			break;
		case 'h':
			help_paths();
			return CLI_EXIT_OK;
		default:
			return cli_getopt_err(ch, argv);
		}
	}
	if (cli_one_operand(argc, argv, "LUN", &spec))
		return CLI_EXIT_USAGE;
	if (!stat(spec, &st) && S_ISDIR(st.st_mode)) {
		memset(&di, 0, sizeof(di));
		if (cli_daemon_info(spec, &di))
			return CLI_EXIT_FAIL;
		return paths_of_mount(&di, json);
	}
	return paths_of_lun(spec, json);
}
