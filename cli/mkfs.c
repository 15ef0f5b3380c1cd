/*
 * vmfs mkfs: lay out a new volume on a LUN.
 *
 * The options are checked here against the limits vmfsd.h documents so
 * that a mistake is named by its option, before the LUN is touched, and
 * the layout is computed (vol_layout) before anything is written.  Then
 * what the LUN holds:
 *   - a vmfs volume (or anything that carries our header magic) is only
 *     overwritten with --force, and the refusal names it (label, uuid) so
 *     the administrator can tell which datastore would have been lost;
 *   - a volume that a live host has mounted is never overwritten, --force
 *     or not: that host would fence itself seconds later.  Liveness is
 *     judged as fsck -y judges it (cli_refuse_if_live);
 *   - anything libblkid knows (filesystem, partition table, LVM physical
 *     volume, RAID member, ...) is only overwritten with --force, and its
 *     signatures are then wiped so that nothing probes as the old content.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmfs/format.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"
#include "cli.h"

#define MKFS_FILE_BLOCK_MIN   (64ULL << 10)
#define MKFS_FILE_BLOCK_MAX   (256ULL << 20)
#define MKFS_SMALL_BLOCK_MIN  (4ULL << 10)
#define MKFS_MAX_HOSTS_MAX    1024
#define MKFS_JOURNAL_MIN      (1ULL << 20)
#define MKFS_JOURNAL_MAX      (4ULL << 30)

void help_mkfs(void)
{
	printf("usage: vmfs mkfs [options] LUN\n\n"
	       "Create a vmfs volume on the whole of LUN (a block device, a file,\n"
	       "or file:PATH).  Refuses to overwrite anything it recognises unless\n"
	       "--force, and a volume that a live host has mounted even then.\n\n"
	       "Options:\n"
	       "  -L, --label LABEL          volume label (up to %d bytes)\n"
	       "  -b, --block-size SIZE      file block size for VM disks and large\n"
	       "                             files: a power of two, 64K..256M (default 1M)\n"
	       "  -s, --small-block-size SIZE\n"
	       "                             block size for directories and small files:\n"
	       "                             a power of two, 4K..block size (default 64K)\n"
	       "  -H, --max-hosts N          hosts that can mount the volume at once,\n"
	       "                             1..%d (default 64); each gets a heartbeat\n"
	       "                             slot and a journal\n"
	       "  -j, --journal-size SIZE    journal per host, >= 1M (default 16M)\n"
	       "  -i, --inodes N             number of inodes (default: one per MiB of\n"
	       "                             LUN, at least 8192 up to 8G, at most 4M)\n"
	       "  -g, --max-grow-size SIZE   the size 'vmfs grow' may take the volume\n"
	       "                             to (default: %u times the LUN); 0 or the\n"
	       "                             LUN's size: no room reserved to grow\n"
	       "  -f, --force                overwrite an existing vmfs volume,\n"
	       "                             filesystem, partition table, LVM or\n"
	       "                             RAID member (never a volume that a live\n"
	       "                             host has mounted)\n"
	       "  -h, --help                 show this help\n",
	       VMFS_LABEL_SIZE, MKFS_MAX_HOSTS_MAX, VOL_GROW_FACTOR);
}

static bool mkfs_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

struct mkfs_args {
	struct vol_mkfs_opts o;
	bool force;
	const char *lun_spec;
};

/* Returns 0, or the exit status of a usage error already reported. */
static int mkfs_parse(int argc, char **argv, struct mkfs_args *a)
{
	static const struct option longopts[] = {
		{ "label",            required_argument, NULL, 'L' },
		{ "block-size",       required_argument, NULL, 'b' },
		{ "small-block-size", required_argument, NULL, 's' },
		{ "max-hosts",        required_argument, NULL, 'H' },
		{ "journal-size",     required_argument, NULL, 'j' },
		{ "inodes",           required_argument, NULL, 'i' },
		{ "max-grow-size",    required_argument, NULL, 'g' },
		{ "force",            no_argument,       NULL, 'f' },
		{ "help",             no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	bool small_given = false;
	uint64_t v;
	char *end;
	int c;

	vol_mkfs_opts_init(&a->o);
	while ((c = getopt_long(argc, argv, ":L:b:s:H:j:i:g:fh", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'L':
			if (strlen(optarg) > VMFS_LABEL_SIZE)
				return cli_usage_err("--label '%s': longer than %d bytes",
						     optarg, VMFS_LABEL_SIZE);
			a->o.label = optarg;
			break;
		case 'b':
			if (cli_size_opt("--block-size", optarg, MKFS_FILE_BLOCK_MIN,
					 MKFS_FILE_BLOCK_MAX, &v))
				return CLI_EXIT_USAGE;
			if (!mkfs_pow2(v))
				return cli_usage_err("--block-size %s: must be a power of two",
						     optarg);
			a->o.file_block_size = (uint32_t)v;
			break;
		case 's':
			if (cli_size_opt("--small-block-size", optarg,
					 MKFS_SMALL_BLOCK_MIN, MKFS_FILE_BLOCK_MAX, &v))
				return CLI_EXIT_USAGE;
			if (!mkfs_pow2(v))
				return cli_usage_err("--small-block-size %s: must be a power of two",
						     optarg);
			a->o.small_block_size = (uint32_t)v;
			small_given = true;
			break;
		case 'H':
			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (errno || *end || optarg[0] == '-' || v < 1 ||
			    v > MKFS_MAX_HOSTS_MAX)
				return cli_usage_err("--max-hosts %s: must be a number from 1 to %d",
						     optarg, MKFS_MAX_HOSTS_MAX);
			a->o.max_hosts = (uint32_t)v;
			break;
		case 'j':
			if (cli_size_opt("--journal-size", optarg, MKFS_JOURNAL_MIN,
					 MKFS_JOURNAL_MAX, &a->o.journal_size))
				return CLI_EXIT_USAGE;
			if (a->o.journal_size % VMFS_MD_BLOCK_SIZE)
				return cli_usage_err("--journal-size %s: must be a multiple of 4K",
						     optarg);
			break;
		case 'i':
			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (errno || *end || optarg[0] == '-' || v < 16)
				return cli_usage_err("--inodes %s: must be a number >= 16",
						     optarg);
			a->o.inode_count = v;
			break;
		case 'g':
			if (cli_size_opt("--max-grow-size", optarg, 0,
					 VOL_MAX_SIZE_BYTES, &a->o.max_grow_size))
				return CLI_EXIT_USAGE;
			break;
		case 'f':
			a->force = true;
			break;
		case 'h':
			help_mkfs();
			exit(CLI_EXIT_OK);
		default:
			return cli_getopt_err(c, argv);
		}
	}
	if (cli_one_operand(argc, argv, "LUN", &a->lun_spec))
		return CLI_EXIT_USAGE;

	if (a->o.small_block_size > a->o.file_block_size) {
		char s1[CLI_SIZE_STR_LEN], s2[CLI_SIZE_STR_LEN];

		/* A bigger default would only be a surprise: say which option. */
		return cli_usage_err("%s %s is larger than the block size %s",
				     small_given ? "--small-block-size" :
						   "the default small block size",
				     cli_size_str(a->o.small_block_size, s1, sizeof(s1)),
				     cli_size_str(a->o.file_block_size, s2, sizeof(s2)));
	}
	return 0;
}

#define MKFS_LIVE_REFUSAL \
	"refusing to create a volume over one that a live host has mounted: " \
	"that host would fence itself within seconds; unmount it there first " \
	"(--force does not override this)"

/*
 * Refuse to overwrite something that is, or was, a volume.  A volume whose
 * header fails verification still holds somebody's data: fsck may be able
 * to save it, so it too needs --force.  Returns 0 to go on, 1 when the LUN
 * holds no vmfs volume at all (look for other content), or -errno after
 * the message.
 */
static int mkfs_check_vmfs(struct lun *lun, const struct mkfs_args *a)
{
	struct vol_geom g;
	char uuid[37];
	int which = 0;
	uint32_t magic = 0;
	int rc;

	cli_log_quiet(true);
	rc = vol_geom_read(lun, &g, &which, &magic);
	cli_log_quiet(false);
	if (rc == -VMFS_E_NOT_VOLUME)
		return 1;
	if (rc == 0) {
		vol_uuid_format(g.uuid, uuid);
		if (!a->force) {
			cli_err("%s already holds a vmfs volume (label '%s', uuid %s%s); "
				"use --force to overwrite it and lose everything on it",
				a->lun_spec, g.label, uuid,
				which ? ", found by its backup header" : "");
			return -EEXIST;
		}
		if (cli_refuse_if_live(lun, &g, a->lun_spec, MKFS_LIVE_REFUSAL) >= 0)
			return -EBUSY;
		fprintf(stderr, "%s: overwriting vmfs volume '%s' (uuid %s) on %s\n",
			cli_prog(), g.label, uuid, a->lun_spec);
		return 0;
	}
	if (rc > -VMFS_E_BASE) {
		cli_err("cannot read %s: %s", a->lun_spec, vmfs_strerror(rc));
		return rc;
	}
	if (!a->force) {
		cli_err("%s holds a vmfs volume header that cannot be used (%s); "
			"run 'vmfs fsck %s' to try to repair it, or use --force to "
			"overwrite it", a->lun_spec, vmfs_strerror(rc), a->lun_spec);
		return -EEXIST;
	}
	fprintf(stderr, "%s: overwriting an unreadable vmfs volume on %s (%s)\n",
		cli_prog(), a->lun_spec, vmfs_strerror(rc));
	return 0;
}

/*
 * Anything else libblkid recognises: refused without --force, naming
 * each signature; with --force, each is named and wiped.
 */
static int mkfs_check_other(struct lun *lun, const struct mkfs_args *a)
{
	struct cli_probe_sig *sigs;
	size_t n;
	int rc = cli_probe_signatures(lun, &sigs, &n);

	if (rc) {
		cli_err("cannot probe %s for existing content: %s", a->lun_spec,
			vmfs_strerror(rc));
		return rc;
	}
	for (size_t i = 0; i < n && !rc; i++) {
		if (!a->force) {
			cli_err("%s holds an existing %s; use --force to overwrite it and "
				"lose everything on it", a->lun_spec, sigs[i].desc);
			continue;
		}
		fprintf(stderr, "%s: overwriting %s on %s\n", cli_prog(),
			sigs[i].desc, a->lun_spec);
		rc = cli_probe_wipe(lun, &sigs[i]);
		if (rc)
			cli_err("cannot wipe the %s on %s: %s", sigs[i].desc,
				a->lun_spec, vmfs_strerror(rc));
	}
	if (!rc && n && !a->force)
		rc = -EEXIST;
	free(sigs);
	return rc;
}

static void mkfs_print_summary(struct lun *lun, const char *spec)
{
	char s[4][CLI_SIZE_STR_LEN];
	uint64_t max_blocks, max_size;
	struct vol_geom g;
	char uuid[37];

	if (vol_geom_read(lun, &g, NULL, NULL)) {
		printf("created vmfs volume on %s\n", spec);
		return;
	}
	vol_uuid_format(g.uuid, uuid);
	printf("created vmfs volume on %s\n"
	       "  uuid              %s\n"
	       "  label             %s\n"
	       "  format version    %u.%u\n"
	       "  size              %s (%" PRIu64 " bytes)\n",
	       spec, uuid, g.label[0] ? g.label : "(none)", g.major, g.minor,
	       cli_size_str(g.size_bytes, s[0], sizeof(s[0])), g.size_bytes);
	printf("  file blocks       %" PRIu64 " x %s\n"
	       "  small blocks      %" PRIu64 " x %s\n"
	       "  inodes            %" PRIu64 "\n"
	       "  max hosts         %u (journal %s each)\n",
	       g.res[VMFS_RES_FILE].count,
	       cli_size_str(g.file_block_size, s[1], sizeof(s[1])),
	       g.res[VMFS_RES_SMALL].count,
	       cli_size_str(g.small_block_size, s[2], sizeof(s[2])),
	       g.res[VMFS_RES_INODE].count, g.max_hosts,
	       cli_size_str(g.journal_size_bytes, s[3], sizeof(s[3])));
	vol_grow_max(&g, &max_blocks, &max_size);
	printf("  grows to at most  %s (%" PRIu64 " bytes, vmfs grow)\n",
	       cli_size_str(max_size, s[0], sizeof(s[0])), max_size);
}

int cmd_mkfs(int argc, char **argv)
{
	char s1[CLI_SIZE_STR_LEN], s2[CLI_SIZE_STR_LEN];
	struct mkfs_args a = { 0 };
	struct vol_geom g;
	struct lun *lun;
	uint64_t need = 0;
	int rc;

	rc = mkfs_parse(argc, argv, &a);
	if (rc)
		return rc;

	rc = lun_open(a.lun_spec, 0, &lun);
	if (rc) {
		cli_err("cannot open LUN %s: %s", a.lun_spec, vmfs_strerror(rc));
		return CLI_EXIT_FAIL;
	}
	/* Nothing is destroyed for options that cannot make a volume. */
	rc = vol_layout(lun_size(lun), lun_sector_size(lun), &a.o, &g, &need);
	if (rc == -VMFS_E_TOO_SMALL) {
		cli_err("LUN %s is %" PRIu64 " bytes (%s); a volume with these "
			"options needs at least %" PRIu64 " bytes (%s); grow the LUN "
			"or lower --max-hosts/--journal-size/--max-grow-size",
			a.lun_spec, lun_size(lun),
			cli_size_str(lun_size(lun), s1, sizeof(s1)), need,
			cli_size_str(need, s2, sizeof(s2)));
		goto out;
	}
	if (rc) {
		cli_err("the engine rejected these options for %s (%s); see 'vmfs mkfs --help' for the limits",
			a.lun_spec, vmfs_strerror(rc));
		goto out;
	}
	rc = mkfs_check_vmfs(lun, &a);
	if (rc == 1)
		rc = mkfs_check_other(lun, &a);
	if (rc)
		goto out;

	rc = vol_mkfs(lun, &a.o, &need);
	if (rc) {
		cli_err("creating the volume on %s failed: %s; the LUN does not "
			"hold a usable volume, run mkfs again once the problem is fixed",
			a.lun_spec, vmfs_strerror(rc));
		goto out;
	}
	mkfs_print_summary(lun, a.lun_spec);
out:
	lun_close(lun);
	return rc ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
