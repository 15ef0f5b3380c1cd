/*
 * vmfs grow: give a volume the space its LUN gained.
 *
 * Online: a mount point, or a LUN that a vmfsd of this host has mounted,
 * is grown by that vmfsd (VMFSD_CTL_GROW, vol_grow_online): the CLI never
 * writes a mounted volume behind its daemon's back.  Offline: a LUN
 * nobody has mounted is grown here (vol_grow); one that only other hosts
 * have mounted is refused, judged as mkfs and fsck -y judge it
 * (cli_refuse_if_live).  The engine decides everything else and writes
 * nothing when it refuses; this file turns its refusals into what the
 * administrator does next: enlarge the LUN, give a shrunk LUN its size
 * back, replay a journal, or accept the size the file-block cluster
 * table allows.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vmfs/lun.h"
#include "vmfs/vmfsd.h"
#include "vmfs/vol.h"
#include "cli.h"

void help_grow(void)
{
	printf("usage: vmfs grow [--dry-run] [--json] LUN|MOUNTPOINT\n\n"
	       "Grow the vmfs volume on LUN (a block device, a file, or file:PATH)\n"
	       "into the space the LUN gained after mkfs (lvextend, truncate -s, the\n"
	       "array's tool): more file blocks, and the backup header moved to the\n"
	       "new end.  A crash at any point leaves it at the old or the new size,\n"
	       "and running grow again completes it.\n\n"
	       "Online: given the MOUNTPOINT of a read-write mount on this host (or\n"
	       "a LUN this host has mounted), the host's vmfsd grows the volume while\n"
	       "it stays mounted; every other host that has it mounted takes the new\n"
	       "size within a renewal interval (df shows it), without a remount.\n"
	       "Offline: a LUN no host has mounted is grown by this command; one that\n"
	       "only other hosts have mounted is refused (grow it there).\n\n"
	       "Options:\n"
	       "  -n, --dry-run   say what would change, write nothing\n"
	       "  -j, --json      print one JSON object\n"
	       "  -h, --help      show this help\n");
}

#define GROW_LIVE_REFUSAL \
	"refusing to grow a volume that a live host has mounted, and no vmfsd " \
	"of this host (in this network namespace) serves it; run 'vmfs grow " \
	"MOUNTPOINT' on a host that has it mounted (it grows online), or " \
	"unmount it on every host first"

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
	if (cli_one_operand(argc, argv, "LUN or MOUNTPOINT", &a->spec))
		return CLI_EXIT_USAGE;
	return 0;
}

/* A refusal of vol_grow, as what to do next. */
static void grow_explain(const struct grow_args *a, int rc,
			 const struct vol_grow_result *r, const char *msg)
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
	case -EROFS:
	case -EIO:
	case -EBUSY:
		if (msg && msg[0]) {
			cli_err("cannot grow the volume on %s: %s", a->spec, msg);
			break;
		}
		cli_err("cannot grow the volume on %s: %s", a->spec,
			vmfs_strerror(rc));
		break;
	case -VMFS_E_JNL_DIRTY:
		cli_err("a journal on %s holds transactions that were never "
			"replayed; run 'vmfs fsck -y %s' (or mount and unmount the "
			"volume) first, then grow it", a->spec, a->spec);
		break;
	default:
		if (msg && msg[0])
			cli_err("cannot grow the volume on %s: %s", a->spec, msg);
		else
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

/* What grow printed as a warning or the result, for either path. */
static int grow_report(const struct grow_args *a, int rc,
		       const struct vol_grow_result *r, const char *msg)
{
	char s1[CLI_SIZE_STR_LEN];

	if (rc)
		grow_explain(a, rc, r, msg);
	else if (r->capped)
		fprintf(stderr, "%s: the LUN is %s, but the file-block cluster table "
			"laid out by mkfs holds at most %" PRIu64 " file blocks: the "
			"volume %s them and the rest of the LUN stays unused\n",
			cli_prog(), cli_size_str(r->lun_bytes, s1, sizeof(s1)),
			r->max_file_blocks, a->dry_run ? "would use" : "now uses");
	grow_print(a, rc, r);
	return rc ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

/* Generous: shared, the daemon may wait a lease for the volume lock. */
#define GROW_CTL_TIMEOUT_MS 120000

/* Online: the vmfsd serving mp grows its volume. */
static int grow_online(const struct grow_args *a, const char *mp)
{
	struct vmfsd_grow_status st;
	struct vol_grow_result r = { 0 };
	struct vmfsd_info info;
	struct vmfsd_ctl *ctl;
	char fstype[64];
	int rc, err = 0;

	rc = cli_daemon_open(mp, &ctl, &info);
	if (rc == -ENOENT) {
		if (cli_on_vmfs(mp, fstype, sizeof(fstype)))
			cli_err("no vmfsd of this network namespace serves %s; run "
				"'vmfs grow' where its vmfsd runs", mp);
		else
			cli_err("%s is a directory but not a vmfs mount point; give "
				"the mount point of a mounted volume, or the LUN of an "
				"unmounted one", mp);
	}
	if (rc)
		return CLI_EXIT_FAIL;
	rc = vmfsd_ctl_grow(ctl, a->dry_run, GROW_CTL_TIMEOUT_MS, &err, &st);
	vmfsd_ctl_disconnect(ctl);
	if (rc) {
		cli_err("the vmfsd of %s did not answer the grow: %s; see its log",
			mp, strerror(-rc));
		return CLI_EXIT_FAIL;
	}
	r.lun_bytes = st.lun_bytes;
	r.old_size_bytes = st.old_size_bytes;
	r.new_size_bytes = st.new_size_bytes;
	r.old_file_blocks = st.old_file_blocks;
	r.new_file_blocks = st.new_file_blocks;
	r.max_file_blocks = st.max_file_blocks;
	r.max_size_bytes = st.max_size_bytes;
	r.file_block_size = st.file_block_size;
	r.capped = st.capped;
	r.finished = st.finished;
	return grow_report(a, err, &r, st.msg);
}

int cmd_grow(int argc, char **argv)
{
	struct grow_args a = { 0 };
	struct vol_grow_opts o = { 0 };
	struct vol_grow_result r;
	struct vmfsd_info di;
	char uuid[37];
	struct vol_geom g;
	struct stat st;
	struct lun *lun;
	int rc;

	rc = grow_parse(argc, argv, &a);
	if (rc)
		return rc;
	if (!stat(a.spec, &st) && S_ISDIR(st.st_mode))
		return grow_online(&a, a.spec);
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
	if (!rc) {
		/* Mounted on this host: its vmfsd grows it online. */
		vol_uuid_format(g.uuid, uuid);
		if (!cli_net_local_info(uuid, &di)) {
			lun_close(lun);
			cli_log_quiet(false);
			fprintf(stderr, "%s: %s is mounted on this host at %s: its "
				"vmfsd grows it online\n", cli_prog(), a.spec,
				di.mountpoint);
			return grow_online(&a, di.mountpoint);
		}
		if (cli_refuse_if_live(lun, &g, a.spec, GROW_LIVE_REFUSAL) >= 0) {
			lun_close(lun);
			return CLI_EXIT_FAIL;
		}
	}
	o.dry_run = a.dry_run;
	rc = vol_grow(lun, &o, &r);
	cli_log_quiet(false);
	lun_close(lun);
	return grow_report(&a, rc, &r, NULL);
}
