/*
 * vmfs fsck: check and repair a volume (fsck/ does the work; this file
 * turns its callbacks into lines, questions and JSON).
 *
 * Exit status is fsck(8)'s bit set, not the CLI's 0/1/2: 0 clean, 1
 * problems fixed, 4 problems left, 8 operational error (cannot open or
 * read the LUN, a live host has the volume mounted, ...), 16 usage.
 * -n opens the LUN read-only, so it is safe on a volume another host has
 * mounted (the results may then be inconsistent while that host writes).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmfs/fsck.h"
#include "vmfs/lun.h"
#include "cli.h"

#define FSCK_EXIT_USAGE 16


void help_fsck(void)
{
	printf("usage: vmfs fsck [-n | -y | -p] [--force] [--progress] [--json]\n"
	       "                 [--mem-limit SIZE] [--tmp-dir DIR] LUN\n\n"
	       "Check the vmfs volume on LUN and repair what is wrong: volume\n"
	       "headers, heartbeats and locks, journals, inodes and block maps,\n"
	       "directories, link counts and bitmaps (see docs/fsck.md).  Dirty\n"
	       "journals are replayed first; -n reads through them instead and\n"
	       "checks the volume as it will be after replay.\n"
	       "Without -n, -y or -p, each repair is asked for on a terminal;\n"
	       "without a terminal nothing is repaired.  Repairs are refused while\n"
	       "a host holds a live heartbeat on the volume.\n\n"
	       "Options:\n"
	       "  -n, --no              report only; open the LUN read-only\n"
	       "  -y, --yes             repair everything\n"
	       "  -p, --preen           repair only what is safe unattended\n"
	       "  -f, --force           repair even though a host looks live\n"
	       "  -P, --progress        show each pass's progress on stderr\n"
	       "  -j, --json            print one JSON object\n"
	       "  -m, --mem-limit SIZE  memory for the checker's maps (default\n"
	       "                        256M); beyond it they spill to disk\n"
	       "  -T, --tmp-dir DIR     where spilled maps go (default /tmp)\n"
	       "  -h, --help            show this help\n\n"
	       "Exit status (fsck(8) bits): 0 clean, 1 problems fixed, 4 problems\n"
	       "left uncorrected, 8 operational error, 16 usage error.\n");
}

struct fsck_rec {
	const struct fsck_problem_info *p;
	uint64_t addr;
	char *detail;
	bool fixed;
	bool note;                  /* information only (fsck_opts.note) */
};

struct fsck_cli {
	bool json;
	bool progress;
	bool yes_all;               /* answered "a" in ask mode */
	struct fsck_rec *recs;
	size_t nrecs, cap;
	int last_pass;
	struct timespec last_draw;
};

/* A problem (or note): one line, or a record for the JSON at the end. */
static void fsck_cli_rec(struct fsck_cli *c, const struct fsck_problem_info *p,
			 uint64_t addr, const char *detail, bool fixed, bool note)
{
	if (!c->json) {
		printf("%s: %s: %s ... %s\n", p->name, p->message, detail,
		       note ? "note (information, not an error)" :
		       fixed ? "fixed" : "NOT fixed");
		fflush(stdout);
		return;
	}
	if (c->nrecs == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct fsck_rec *n = realloc(c->recs, cap * sizeof(*n));

		if (!n)
			return;
		c->recs = n;
		c->cap = cap;
	}
	c->recs[c->nrecs].p = p;
	c->recs[c->nrecs].addr = addr;
	c->recs[c->nrecs].detail = strdup(detail);
	c->recs[c->nrecs].fixed = fixed;
	c->recs[c->nrecs].note = note;
	c->nrecs++;
}

static void fsck_cli_report(void *ctx, const struct fsck_problem_info *p,
			    uint64_t addr, const char *detail, bool fixed)
{
	fsck_cli_rec(ctx, p, addr, detail, fixed, false);
}

static void fsck_cli_note(void *ctx, const struct fsck_problem_info *p,
			  uint64_t addr, const char *detail)
{
	fsck_cli_rec(ctx, p, addr, detail, false, true);
}

static bool fsck_cli_ask(void *ctx, const struct fsck_problem_info *p,
			 const char *detail)
{
	struct fsck_cli *c = ctx;
	char line[64];

	if (c->yes_all)
		return true;
	fprintf(stderr, "%s: %s: %s\n  %s? [y]es, [n]o, [a]ll: ", p->name,
		p->message, detail, p->fix);
	fflush(stderr);
	if (!fgets(line, sizeof(line), stdin))
		return false;
	if (line[0] == 'a' || line[0] == 'A') {
		c->yes_all = true;
		return true;
	}
	return line[0] == 'y' || line[0] == 'Y';
}

static void fsck_cli_info(void *ctx, const char *line)
{
	(void)ctx;
	cli_err("%s", line);
}

static void fsck_cli_progress(void *ctx, int pass, const char *name,
			      uint64_t done, uint64_t total)
{
	struct fsck_cli *c = ctx;
	struct timespec now;
	long long ms;

	if (!c->progress)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (pass != c->last_pass) {
		c->last_pass = pass;
		c->last_draw = now;
		fprintf(stderr, "pass %d: %s\n", pass, name);
		return;
	}
	ms = (long long)(now.tv_sec - c->last_draw.tv_sec) * 1000 +
	     (now.tv_nsec - c->last_draw.tv_nsec) / 1000000;
	if (total <= 1 || done >= total || ms < 1000)
		return;
	c->last_draw = now;
	fprintf(stderr, "pass %d: %s: %" PRIu64 "%%\n", pass, name,
		done * 100 / total);
}

static void json_str(const char *s)
{
	for (putchar('"'); *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static const char *mode_name(enum fsck_mode m)
{
	switch (m) {
	case FSCK_MODE_YES:
		return "yes";
	case FSCK_MODE_PREEN:
		return "preen";
	case FSCK_MODE_ASK:
		return "ask";
	default:
		return "no";
	}
}

/* The "problems" (notes false) or "notes" array of the JSON object. */
static void fsck_cli_json_recs(const struct fsck_cli *c, bool notes)
{
	size_t n = 0;

	for (size_t i = 0; i < c->nrecs; i++) {
		const struct fsck_rec *e = &c->recs[i];

		if (e->note != notes)
			continue;
		printf("%s\n    { \"code\": \"%s\", \"value\": %u, \"message\": ",
		       n++ ? "," : "", e->p->name, (unsigned)e->p->code);
		json_str(e->p->message);
		printf(", \"address\": %" PRIu64 ", \"detail\": ", e->addr);
		json_str(e->detail ? e->detail : "");
		if (!notes)
			printf(", \"fixed\": %s", e->fixed ? "true" : "false");
		printf(" }");
	}
	printf("%s]", n ? "\n  " : "");
}

static void fsck_cli_json(const struct fsck_cli *c, const char *lun,
			  enum fsck_mode mode, const struct fsck_result *r)
{
	printf("{\n  \"lun\": ");
	json_str(lun);
	printf(",\n  \"mode\": \"%s\",\n  \"problems\": [", mode_name(mode));
	fsck_cli_json_recs(c, false);
	printf(",\n  \"notes\": [");
	fsck_cli_json_recs(c, true);
	printf(",\n  \"counts\": { \"found\": %" PRIu64 ", \"fixed\": %" PRIu64
	       ", \"notes\": %" PRIu64
	       ", \"inodes\": %" PRIu64 ", \"directories\": %" PRIu64
	       ", \"blocks\": %" PRIu64 ", \"peak_map_bytes\": %" PRIu64
	       ", \"spilled_entries\": %" PRIu64 " },\n  \"error\": ",
	       r->problems_found, r->problems_fixed, r->notes,
	       r->inodes_checked, r->dirs_checked, r->blocks_checked,
	       r->peak_map_bytes, r->spilled_entries);
	json_str(r->error);
	printf(",\n  \"exit_code\": %d\n}\n", r->exit_code);
}

int cmd_fsck(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "no",        no_argument,       NULL, 'n' },
		{ "yes",       no_argument,       NULL, 'y' },
		{ "preen",     no_argument,       NULL, 'p' },
		{ "force",     no_argument,       NULL, 'f' },
		{ "progress",  no_argument,       NULL, 'P' },
		{ "json",      no_argument,       NULL, 'j' },
		{ "mem-limit", required_argument, NULL, 'm' },
		{ "tmp-dir",   required_argument, NULL, 'T' },
		{ "help",      no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct fsck_cli c = { .last_pass = -1 };
	struct fsck_opts o;
	struct fsck_result r;
	struct lun *lun;
	const char *spec;
	int nmodes = 0, ch, rc;

	fsck_opts_init(&o);
	o.mode = isatty(STDIN_FILENO) ? FSCK_MODE_ASK : FSCK_MODE_NO;
	while ((ch = getopt_long(argc, argv, ":nypfPjm:T:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			o.mode = FSCK_MODE_NO;
			nmodes++;
			break;
		case 'y':
			o.mode = FSCK_MODE_YES;
			nmodes++;
			break;
		case 'p':
			o.mode = FSCK_MODE_PREEN;
			nmodes++;
			break;
		case 'f':
			o.force = true;
			break;
		case 'P':
			c.progress = true;
			break;
		case 'j':
			c.json = true;
			break;
		case 'm':
			if (cli_size_opt("--mem-limit", optarg, 0, UINT64_MAX,
					 &o.mem_limit_bytes))
				return FSCK_EXIT_USAGE;
			break;
		case 'T':
			o.tmp_dir = optarg;
			break;
		case 'h':
			help_fsck();
			return FSCK_EXIT_OK;
		default:
			cli_getopt_err(ch, argv);
			return FSCK_EXIT_USAGE;
		}
	}
	if (nmodes > 1) {
		cli_usage_err("-n, -y and -p exclude each other");
		return FSCK_EXIT_USAGE;
	}
	if (optind == argc) {
		cli_usage_err("missing LUN");
		return FSCK_EXIT_USAGE;
	}
	if (argc - optind > 1) {
		cli_usage_err("unexpected argument '%s'", argv[optind + 1]);
		return FSCK_EXIT_USAGE;
	}
	spec = argv[optind];
	if (o.mode == FSCK_MODE_ASK && c.json) {
		cli_usage_err("--json needs -n, -y or -p (it cannot ask questions)");
		return FSCK_EXIT_USAGE;
	}

	rc = lun_open(spec, o.mode == FSCK_MODE_NO ? LUN_RDONLY : 0, &lun);
	if (rc) {
		memset(&r, 0, sizeof(r));
		r.exit_code = FSCK_EXIT_ERROR;
		snprintf(r.error, sizeof(r.error), "cannot open LUN %s%s: %s",
			 spec, o.mode == FSCK_MODE_NO ? "" : " for writing",
			 vmfs_strerror(rc));
		/* --json promises one object, failure included. */
		if (c.json)
			fsck_cli_json(&c, spec, o.mode, &r);
		cli_err("%s", r.error);
		return FSCK_EXIT_ERROR;
	}
	o.report = fsck_cli_report;
	o.note = fsck_cli_note;
	o.ask = fsck_cli_ask;
	o.info = fsck_cli_info;
	o.progress = fsck_cli_progress;
	o.ctx = &c;
	/* The checker explains every failure itself. */
	cli_log_quiet(true);
	rc = fsck_run(lun, &o, &r);
	cli_log_quiet(false);
	lun_close(lun);

	if (c.json) {
		fsck_cli_json(&c, spec, o.mode, &r);
	} else if (!(r.exit_code & FSCK_EXIT_ERROR) || r.problems_found) {
		/*
		 * A run that stopped on an operational error before finding
		 * anything (refused for a live host, no volume, ...) prints
		 * no summary: "0 problems found" would read as a clean
		 * result.  The error line below says why it stopped.
		 */
		char notes[48] = "";

		if (r.notes)
			snprintf(notes, sizeof(notes), ", %" PRIu64 " note%s",
				 r.notes, r.notes == 1 ? "" : "s");
		printf("%s: %s%" PRIu64 " problem%s found, %" PRIu64 " fixed, %" PRIu64
		       " left%s; %" PRIu64 " inodes, %" PRIu64 " directories, %" PRIu64
		       " blocks checked\n", spec,
		       r.exit_code & FSCK_EXIT_ERROR ? "check stopped early: " : "",
		       r.problems_found, r.problems_found == 1 ? "" : "s",
		       r.problems_fixed, r.problems_found - r.problems_fixed, notes,
		       r.inodes_checked, r.dirs_checked, r.blocks_checked);
	}
	if (r.exit_code & FSCK_EXIT_ERROR)
		cli_err("%s: %s", spec, r.error[0] ? r.error : "check failed");
	for (size_t i = 0; i < c.nrecs; i++)
		free(c.recs[i].detail);
	free(c.recs);
	return r.exit_code;
}
