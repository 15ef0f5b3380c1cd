/*
 * vmfs grow: give an unmounted volume the space its LUN gained.
 *
 * Offline only: a volume some host has mounted is refused, judged as
 * mkfs and fsck -y judge it (cli_refuse_if_live), and a mount point is
 * refused outright until online grow arrives with multi-host support.
 * The engine (vol_grow) decides everything else and writes nothing when
 * it refuses; this file turns its refusals into what the administrator
 * does next: enlarge the LUN, give a shrunk LUN its size back, replay a
 * journal, or accept the size the file-block cluster table allows.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vmfs/lun.h"
#include "vmfs/vol.h"
#include "cli.h"

void help_grow(void)
{
	printf("usage: vmfs grow [--dry-run] [--json] LUN\n\n"
	       "Grow the vmfs volume on LUN (a block device, a file, or file:PATH)\n"
	       "into the space the LUN gained after mkfs (lvextend, truncate -s, the\n"
	       "array's tool): more file blocks, and the backup header moved to the\n"
	       "new end.  The volume must not be mounted on any host; a crash at any\n"
	       "point leaves it at the old or the new size, and running grow again\n"
	       "completes it.  Online grow of a mounted volume (MOUNTPOINT) comes\n"
	       "with multi-host support.\n\n"
	       "Options:\n"
	       "  -n, --dry-run   say what would change, write nothing\n"
	       "  -j, --json      print one JSON object\n"
	       "  -h, --help      show this help\n");
}

#define GROW_LIVE_REFUSAL \
	"refusing to grow a volume that a live host has mounted; unmount it " \
	"on every host first (online grow comes with multi-host support)"

struct grow_args {
	bool dry_run;
	bool json;
	const char *spec;
};

static int grow_parse(int argc, char **argv, struct grow_args *a)
{
	static const struct option longopts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "json",    no_argument, NULL, 'j' },
		{ "help",    no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	while ((c = getopt_long(argc, argv, ":njh", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			a->dry_run = true;
			break;
		case 'j':
			a->json = true;
			break;
		case 'h':
			help_grow();
			exit(CLI_EXIT_OK);
		default:
			return cli_getopt_err(c, argv);
		}
	}
	if (cli_one_operand(argc, argv, "LUN", &a->spec))
		return CLI_EXIT_USAGE;
	return 0;
}

/* A refusal of vol_grow, as what to do next. */
static void grow_explain(const struct grow_args *a, int rc,
			 const struct vol_grow_result *r)
{
	char s1[CLI_SIZE_STR_LEN], s2[CLI_SIZE_STR_LEN];

	switch (rc) {
	case -VMFS_E_NOT_GROWN:
		if (r->lun_bytes <= r->old_size_bytes)
			cli_err("LUN %s is %" PRIu64 " bytes (%s), the volume already "
				"uses it; enlarge the LUN first (truncate -s / lvextend / "
				"the array's tool)", a->spec, r->lun_bytes,
				cli_size_str(r->lun_bytes, s1, sizeof(s1)));
		else
			cli_err("LUN %s is %" PRIu64 " bytes (%s), only %" PRIu64
				" bytes more than the volume: not enough for one more "
				"%s file block; enlarge the LUN further first",
				a->spec, r->lun_bytes,
				cli_size_str(r->lun_bytes, s1, sizeof(s1)),
				r->lun_bytes - r->old_size_bytes,
				cli_size_str(r->file_block_size, s2, sizeof(s2)));
		break;
	case -VMFS_E_LUN_SHRUNK:
		cli_err("LUN %s is %" PRIu64 " bytes (%s) but the volume on it is %"
			PRIu64 " bytes (%s): the LUN shrank and the end of the volume "
			"(its backup header, maybe file data) is cut off; do not "
			"mount, fsck or grow it: give the LUN back at least %" PRIu64
			" bytes (lvextend / the array's tool), then run 'vmfs fsck -n %s'",
			a->spec, r->lun_bytes, cli_size_str(r->lun_bytes, s1, sizeof(s1)),
			r->old_size_bytes, cli_size_str(r->old_size_bytes, s2, sizeof(s2)),
			r->old_size_bytes, a->spec);
		break;
	case -VMFS_E_GROW_FULL:
		cli_err("the volume on %s already has %" PRIu64 " file blocks, the "
			"most its file-block cluster table (laid out by mkfs) holds: "
			"it cannot use more than %s of a LUN (the LUN is %s); to use "
			"the whole LUN, copy the data to a volume made on it with "
			"'vmfs mkfs' (which leaves room to grow %u times the LUN; "
			"--max-grow-size sets more)",
			a->spec, r->old_file_blocks,
			cli_size_str(r->max_size_bytes, s1, sizeof(s1)),
			cli_size_str(r->lun_bytes, s2, sizeof(s2)), VOL_GROW_FACTOR);
		break;
	case -VMFS_E_JNL_DIRTY:
		cli_err("a journal on %s holds transactions that were never "
			"replayed; run 'vmfs fsck -y %s' (or mount and unmount the "
			"volume) first, then grow it", a->spec, a->spec);
		break;
	default:
		cli_err("cannot grow the volume on %s: %s", a->spec,
			vmfs_strerror(rc));
		break;
	}
}

static void grow_print(const struct grow_args *a, int rc,
		       const struct vol_grow_result *r)
{
	char s1[CLI_SIZE_STR_LEN], s2[CLI_SIZE_STR_LEN], s3[CLI_SIZE_STR_LEN];

	if (a->json) {
		printf("{\n  \"lun\": ");
		cli_json_str(a->spec);
		printf(",\n  \"dry_run\": %s,\n  \"lun_bytes\": %" PRIu64
		       ",\n  \"old_size_bytes\": %" PRIu64 ",\n  \"new_size_bytes\": %"
		       PRIu64 ",\n  \"old_file_blocks\": %" PRIu64
		       ",\n  \"new_file_blocks\": %" PRIu64 ",\n  \"file_block_size\": %u"
		       ",\n  \"max_file_blocks\": %" PRIu64 ",\n  \"max_size_bytes\": %"
		       PRIu64 ",\n  \"capped\": %s,\n  \"finished_interrupted\": %s"
		       ",\n  \"error\": ",
		       a->dry_run ? "true" : "false", r->lun_bytes, r->old_size_bytes,
		       r->new_size_bytes, r->old_file_blocks, r->new_file_blocks,
		       r->file_block_size, r->max_file_blocks, r->max_size_bytes,
		       r->capped ? "true" : "false", r->finished ? "true" : "false");
		if (rc)
			cli_json_str(vmfs_strerror(rc));
		else
			printf("null");
		printf(",\n  \"exit_code\": %d\n}\n", rc ? CLI_EXIT_FAIL : CLI_EXIT_OK);
		return;
	}
	if (rc)
		return;
	if (r->new_size_bytes == r->old_size_bytes)
		printf("%s an interrupted grow of the volume on %s\n",
		       a->dry_run ? "would complete" : "completed", a->spec);
	else
		printf("%s the vmfs volume on %s\n", a->dry_run ? "would grow" : "grew",
		       a->spec);
	printf("  size          %s -> %s (%" PRIu64 " -> %" PRIu64 " bytes)\n"
	       "  file blocks   %" PRIu64 " -> %" PRIu64 " x %s\n",
	       cli_size_str(r->old_size_bytes, s1, sizeof(s1)),
	       cli_size_str(r->new_size_bytes, s2, sizeof(s2)),
	       r->old_size_bytes, r->new_size_bytes, r->old_file_blocks,
	       r->new_file_blocks, cli_size_str(r->file_block_size, s3, sizeof(s3)));
}

int cmd_grow(int argc, char **argv)
{
	struct grow_args a = { 0 };
	struct vol_grow_opts o = { 0 };
	struct vol_grow_result r;
	char s1[CLI_SIZE_STR_LEN], fstype[64];
	struct vol_geom g;
	struct stat st;
	struct lun *lun;
	int rc;

	rc = grow_parse(argc, argv, &a);
	if (rc)
		return rc;
	if (!stat(a.spec, &st) && S_ISDIR(st.st_mode)) {
		cli_err("%s is a directory%s: online grow of a mounted volume comes "
			"with multi-host support; unmount the volume on every host, "
			"then run 'vmfs grow LUN'", a.spec,
			cli_on_vmfs(a.spec, fstype, sizeof(fstype)) ?
			" (a mounted vmfs volume)" : "");
		return CLI_EXIT_FAIL;
	}
	rc = lun_open(a.spec, a.dry_run ? LUN_RDONLY : 0, &lun);
	if (rc) {
		cli_err("cannot open LUN %s: %s", a.spec, vmfs_strerror(rc));
		return CLI_EXIT_FAIL;
	}
	/*
	 * A header that cannot be read is vol_grow's to name (a LUN that
	 * shrank under its volume); it then fails before writing anything,
	 * and the engine's warnings about each copy would only repeat it.
	 */
	cli_log_quiet(true);
	rc = vol_geom_read(lun, &g, NULL, NULL);
	cli_log_quiet(!!rc);
	if (!rc && cli_refuse_if_live(lun, &g, a.spec, GROW_LIVE_REFUSAL) >= 0) {
		lun_close(lun);
		return CLI_EXIT_FAIL;
	}
	o.dry_run = a.dry_run;
	rc = vol_grow(lun, &o, &r);
	cli_log_quiet(false);
	lun_close(lun);
	if (rc)
		grow_explain(&a, rc, &r);
	else if (r.capped)
		fprintf(stderr, "%s: the LUN is %s, but the file-block cluster table "
			"laid out by mkfs holds at most %" PRIu64 " file blocks: the "
			"volume %s them and the rest of the LUN stays unused\n",
			cli_prog(), cli_size_str(r.lun_bytes, s1, sizeof(s1)),
			r.max_file_blocks, a.dry_run ? "would use" : "now uses");
	grow_print(&a, rc, &r);
	return rc ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
