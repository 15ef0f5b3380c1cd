/*
 * vmfs journal: look into and replay the per-host metadata journals.
 *
 *   dump    every chosen slot's journal header and each committed
 *           transaction from its tail (jnl_walk, from the tail even when
 *           the header is clean, so a dump shows what a clean tail points
 *           at: normally nothing), with --blocks each block image it
 *           would write home.  Read-only (LUN_RDONLY): safe on a volume a
 *           host has mounted, though a live host's journal moves on while
 *           it is read.
 *   replay  jnl_replay of the chosen journals, what a read-write mount
 *           does first.  Replaying under a running host would write older
 *           images over its newer blocks and mark its journal clean under
 *           it, so it is refused while another host's heartbeat is live;
 *           liveness is judged exactly as fsck judges it
 *           (cli_refuse_if_live), and --force overrides it as fsck's does.
 *
 * Also home of cli_jnl_stop_key(), shared with `vmfs info`.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmfs/format.h"
#include "vmfs/fsck.h"
#include "vmfs/journal.h"
#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"
#include "cli.h"

static void help_journal_dump(void)
{
	printf("usage: vmfs journal dump [--slot N | --all] [--blocks] [--json] LUN\n\n"
	       "Print each journal's header (state, tail, head, sequence, jid, size)\n"
	       "and every committed transaction from its tail: sequence, position in\n"
	       "the ring, length, images and commit time; then why the walk stopped.\n"
	       "A clean journal normally shows none.  Only reads the LUN.\n\n"
	       "Options:\n"
	       "  -s, --slot N   only the journal of heartbeat slot N\n"
	       "  -a, --all      every slot (the default)\n"
	       "  -b, --blocks   list each transaction's block images: home address,\n"
	       "                 flags and what the block is\n"
	       "  -j, --json     print one JSON object\n"
	       "  -h, --help     show this help\n");
}

static void help_journal_replay(void)
{
	printf("usage: vmfs journal replay [--slot N | --all] [--force] LUN\n\n"
	       "Write every committed transaction of the chosen journals to its\n"
	       "home blocks, flush, and mark each journal clean -- what a\n"
	       "read-write mount does first.  Refused while another host's\n"
	       "heartbeat is live (that host has the volume mounted); when slots\n"
	       "are held this takes one heartbeat lease (about 12 s) to find out.\n"
	       "Never run it on a volume mounted on this machine.\n\n"
	       "Options:\n"
	       "  -s, --slot N   only the journal of heartbeat slot N\n"
	       "  -a, --all      every slot (the default)\n"
	       "  -f, --force    replay even though a host looks live\n"
	       "  -h, --help     show this help\n");
}

void help_journal(void)
{
	printf("usage: vmfs journal <dump|replay> [options] LUN\n\n"
	       "Every heartbeat slot of a volume has a metadata journal.  A host\n"
	       "that crashed leaves its journal dirty; the next read-write mount,\n"
	       "'vmfs fsck -y' or 'vmfs journal replay' writes its committed\n"
	       "transactions home.\n\n"
	       "  dump [--slot N | --all] [--blocks] [--json] LUN\n"
	       "         show the journals' headers and committed transactions\n"
	       "  replay [--slot N | --all] [--force] LUN\n"
	       "         replay them (refused while another host is live)\n\n"
	       "Run 'vmfs journal <dump|replay> --help' for details.\n");
}

const char *cli_jnl_stop_key(enum jnl_stop s)
{
	switch (s) {
	case JNL_STOP_CLEAN:
		return "clean";
	case JNL_STOP_END:
		return "end";
	case JNL_STOP_TORN:
		return "torn";
	case JNL_STOP_BAD_COMMIT:
		return "bad_commit";
	case JNL_STOP_BAD_TAG:
		return "bad_tag";
	case JNL_STOP_TOO_LONG:
		return "too_long";
	}
	return "?";
}

static const char *plural(uint64_t n)
{
	return n == 1 ? "" : "s";
}

/* ---- options both subcommands share --------------------------------------- */

struct jargs {
	bool all, blocks, json, force;
	bool slot_given;
	uint32_t slot;
	const char *spec;
};

#define JOPT_DUMP   0x1
#define JOPT_REPLAY 0x2

/* Returns -1 to go on, or the exit status (help shown, usage error). */
static int jargs_parse(int argc, char **argv, unsigned which,
		       void (*help)(void), struct jargs *a)
{
	static const struct option longopts[] = {
		{ "slot",   required_argument, NULL, 's' },
		{ "all",    no_argument,       NULL, 'a' },
		{ "blocks", no_argument,       NULL, 'b' },
		{ "json",   no_argument,       NULL, 'j' },
		{ "force",  no_argument,       NULL, 'f' },
		{ "help",   no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	unsigned long v;
	char *end;
	int c;

	memset(a, 0, sizeof(*a));
	while ((c = getopt_long(argc, argv, ":s:abjfh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || !*optarg || *end || optarg[0] == '-' ||
			    v > UINT32_MAX)
				return cli_usage_err("--slot %s: must be a heartbeat "
						     "slot number (0, 1, ...)", optarg);
			a->slot = (uint32_t)v;
			a->slot_given = true;
			break;
		case 'a':
			a->all = true;
			break;
		case 'b':
		case 'j':
			if (!(which & JOPT_DUMP))
				return cli_usage_err("option '%s' is only for 'vmfs "
						     "journal dump'", argv[optind - 1]);
			if (c == 'b')
				a->blocks = true;
			else
				a->json = true;
			break;
		case 'f':
			if (!(which & JOPT_REPLAY))
				return cli_usage_err("option '%s' is only for 'vmfs "
						     "journal replay'", argv[optind - 1]);
			a->force = true;
			break;
		case 'h':
			help();
			return CLI_EXIT_OK;
		default:
			return cli_getopt_err(c, argv);
		}
	}
	if (a->all && a->slot_given)
		return cli_usage_err("--slot and --all exclude each other");
	if (cli_one_operand(argc, argv, "LUN", &a->spec))
		return CLI_EXIT_USAGE;
	return -1;
}

/* Open the LUN and read the geometry; check --slot against it. */
static int jargs_open(const struct jargs *a, unsigned lun_flags,
		      struct lun **lun, struct vol_geom *g)
{
	int rc = lun_open(a->spec, lun_flags, lun);

	if (rc) {
		cli_err("cannot open LUN %s%s: %s", a->spec,
			lun_flags & LUN_RDONLY ? "" : " for writing",
			vmfs_strerror(rc));
		return CLI_EXIT_FAIL;
	}
	if (cli_volume_read(*lun, a->spec, g, NULL)) {
		lun_close(*lun);
		return CLI_EXIT_FAIL;
	}
	if (a->slot_given && a->slot >= g->max_hosts) {
		lun_close(*lun);
		return cli_usage_err("--slot %u: %s has %u heartbeat slots (0-%u)",
				     a->slot, a->spec, g->max_hosts,
				     g->max_hosts - 1);
	}
	return -1;
}

/* ---- dump ------------------------------------------------------------------ */

/* What a block image is, decoded from the header it opens with. */
struct blk_what {
	const char *kind;       /* "inode", "pointer_block", ... */
	char text[96];          /* "inode 57" */
	uint32_t magic;
	bool sound;             /* its header verifies for its home address */
};

static void blk_decode(const uint8_t *img, uint64_t addr, uint32_t flags,
		       struct blk_what *w)
{
	uint32_t off = flags & VMFS_JNL_TAG_LOCKABLE ? VMFS_OBJ_OFFSET : 0;
	const struct vmfs_blk_hdr *h = (const struct vmfs_blk_hdr *)(img + off);
	uint32_t len = VMFS_MD_BLOCK_SIZE - off;
	struct fmt_hdr hh;

	fmt_hdr_decode(h, &hh);
	w->magic = hh.magic;
	w->sound = !lun_md_verify(h, w->magic, addr, len);
	switch (w->magic) {
	case VMFS_MAGIC_INODE: {
		struct fmt_inode fi;

		(void)fmt_inode_decode((const void *)h, &fi);
		w->kind = "inode";
		snprintf(w->text, sizeof(w->text), "inode %" PRIu64, fi.ino);
		break;
	}
	case VMFS_MAGIC_PTRBLK: {
		struct fmt_ptrblk pb;

		(void)fmt_ptrblk_decode((const void *)h, &pb);
		w->kind = "pointer_block";
		snprintf(w->text, sizeof(w->text),
			 "pointer block of inode %" PRIu64 ", level %u",
			 pb.owner_ino, pb.level);
		break;
	}
	case VMFS_MAGIC_DIRBLK: {
		struct fmt_dirblk db;

		(void)fmt_dirblk_decode((const void *)h, &db);
		w->kind = "directory_chunk";
		snprintf(w->text, sizeof(w->text),
			 "directory chunk %u of inode %" PRIu64 " (%u entr%s)",
			 db.chunk, db.dir_ino, db.count,
			 db.count == 1 ? "y" : "ies");
		break;
	}
	case VMFS_MAGIC_RCLUSTER: {
		struct fmt_rc rc;

		(void)fmt_rc_decode((const void *)h, &rc);
		w->kind = "cluster_header";
		snprintf(w->text, sizeof(w->text),
			 "%s cluster header %u (%u of %u free)",
			 rc.type < VMFS_RES_NTYPES ? vol_res_name(rc.type) :
			 "unknown-type", rc.index, rc.nfree, rc.nobjs);
		break;
	}
	default:
		w->kind = "unknown";
		snprintf(w->text, sizeof(w->text), "unknown block (magic 0x%08x)",
			 w->magic);
		break;
	}
}

struct dump_ctx {
	const struct jargs *a;
	uint64_t ntxn;          /* transactions printed in this slot */
};

static int dump_txn(void *arg, const struct jnl_txn *t)
{
	struct dump_ctx *d = arg;
	char when[64];

	cli_time_str(t->time_ns, when, sizeof(when));
	if (d->a->json) {
		printf("%s\n        { \"seq\": %" PRIu64 ", \"pos\": %" PRIu64
		       ", \"len\": %u, \"images\": %u, \"time_ns\": %" PRId64
		       ", \"time\": ", d->ntxn ? "," : "", t->seq, t->pos, t->len,
		       t->nimages, t->time_ns);
		cli_json_str(when);
	} else {
		printf("  transaction %" PRIu64 " at 0x%" PRIx64 ": %u block%s, "
		       "%u image%s, committed %s\n", t->seq, t->pos, t->len,
		       plural(t->len), t->nimages, plural(t->nimages), when);
	}
	if (d->a->blocks) {
		if (d->a->json)
			printf(", \"blocks\": [");
		for (uint32_t n = 0; n < t->nimages; n++) {
			struct blk_what w;
			bool lockable = t->flags[n] & VMFS_JNL_TAG_LOCKABLE;

			blk_decode(t->img + (size_t)n * VMFS_MD_BLOCK_SIZE,
				   t->addr[n], t->flags[n], &w);
			if (!d->a->json) {
				printf("    0x%016" PRIx64 "  %-8s  %s%s\n", t->addr[n],
				       lockable ? "lockable" : "-", w.text,
				       w.sound ? "" : " (does not verify)");
				continue;
			}
			printf("%s\n          { \"addr\": %" PRIu64 ", \"flags\": %u, "
			       "\"lockable\": %s, \"kind\": \"%s\", \"what\": ",
			       n ? "," : "", t->addr[n], t->flags[n],
			       lockable ? "true" : "false", w.kind);
			cli_json_str(w.text);
			printf(", \"verifies\": %s }", w.sound ? "true" : "false");
		}
		if (d->a->json)
			printf("%s]", t->nimages ? "\n        " : "");
	}
	if (d->a->json)
		printf(" }");
	d->ntxn++;
	return 0;
}

/* One slot; returns 0 or the error already printed (text) or recorded. */
static int dump_slot(struct lun *lun, const struct vol_geom *g,
		     const struct jargs *a, uint32_t s, bool first)
{
	struct jnl_bounds b = vol_jnl_bounds(g);
	struct dump_ctx d = { .a = a };
	struct jnl_walk_result w;
	const struct jnl_info *h = &w.hdr;
	char sz[CLI_SIZE_STR_LEN];
	int rc;

	/* The header first, so that a damaged one is told apart. */
	rc = jnl_header_read(lun, vol_jnl_offset(g, s), &w.hdr);
	if (rc) {
		if (a->json) {
			printf("%s\n    { \"slot\": %u, \"state\": \"damaged\", "
			       "\"error\": ", first ? "" : ",", s);
			cli_json_str(vmfs_strerror(rc));
			printf(" }");
		} else {
			printf("slot %u: journal header at 0x%" PRIx64 " is unusable\n",
			       s, vol_jnl_offset(g, s));
		}
		cli_err("slot %u: cannot read the journal header of %s: %s", s,
			a->spec, vmfs_strerror(rc));
		return rc;
	}
	if (a->json) {
		printf("%s\n    { \"slot\": %u, \"state\": \"%s\", \"tail\": %" PRIu64
		       ", \"head\": %" PRIu64 ", \"seq\": %" PRIu64 ", \"jid\": \"0x%016"
		       PRIx64 "\", \"size_bytes\": %" PRIu64 ",\n      \"transactions\": [",
		       first ? "" : ",", s,
		       h->state == VMFS_JNL_DIRTY ? "dirty" : "clean", h->tail,
		       h->head, h->seq, h->jid, h->size_bytes);
	} else {
		printf("slot %u: %s, tail 0x%" PRIx64 ", head 0x%" PRIx64 ", seq %"
		       PRIu64 ", jid 0x%016" PRIx64 ", %s\n", s,
		       h->state == VMFS_JNL_DIRTY ? "dirty" : "clean", h->tail,
		       h->head, h->seq, h->jid,
		       cli_size_str(h->size_bytes, sz, sizeof(sz)));
	}
	rc = jnl_walk(lun, vol_jnl_offset(g, s), &b, true, dump_txn, &d, &w);
	if (a->json) {
		printf("%s],\n      \"ntxn\": %" PRIu64 ", \"nimages\": %" PRIu64
		       ", \"end\": %" PRIu64 ", \"next_seq\": %" PRIu64
		       ", \"stop\": \"%s\", \"stop_reason\": ", d.ntxn ? "\n      " : "",
		       w.ntxn, w.nimages, w.end, w.next_seq,
		       rc ? "error" : cli_jnl_stop_key(w.stop));
		cli_json_str(rc ? vmfs_strerror(rc) : jnl_stop_str(w.stop));
		printf(" }");
	} else if (!rc) {
		printf("  %" PRIu64 " transaction%s (%" PRIu64 " image%s); stopped at "
		       "0x%" PRIx64 ", sequence %" PRIu64 ": %s\n", w.ntxn,
		       plural(w.ntxn), w.nimages, plural(w.nimages), w.end,
		       w.next_seq, jnl_stop_str(w.stop));
	}
	if (rc)
		cli_err("slot %u: reading the journal of %s: %s", s, a->spec,
			vmfs_strerror(rc));
	return rc;
}

/*
 * What dump and replay share: parse the arguments, open the LUN, read the
 * geometry, and the slots [*s0, *s1) asked for.  Returns -1 to go on, or
 * the exit status.
 */
static int jcmd_start(int argc, char **argv, unsigned opts, void (*help)(void),
		      int lun_flags, struct jargs *a, struct lun **lun,
		      struct vol_geom *g, uint32_t *s0, uint32_t *s1)
{
	int rc = jargs_parse(argc, argv, opts, help, a);

	if (rc >= 0)
		return rc;
	rc = jargs_open(a, lun_flags, lun, g);
	if (rc >= 0)
		return rc;
	*s0 = a->slot_given ? a->slot : 0;
	*s1 = a->slot_given ? a->slot + 1 : g->max_hosts;
	return -1;
}

static int journal_dump(int argc, char **argv)
{
	struct vol_geom g;
	struct jargs a;
	struct lun *lun;
	uint32_t s0, s1;
	int rc, failed = 0;

	rc = jcmd_start(argc, argv, JOPT_DUMP, help_journal_dump, LUN_RDONLY,
			&a, &lun, &g, &s0, &s1);
	if (rc >= 0)
		return rc;
	if (a.json) {
		printf("{\n  \"lun\": ");
		cli_json_str(a.spec);
		printf(",\n  \"journals\": [");
	}
	for (uint32_t s = s0; s < s1; s++)
		failed |= dump_slot(lun, &g, &a, s, s == s0) != 0;
	if (a.json)
		printf("\n  ]\n}\n");
	lun_close(lun);
	return failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

/* ---- replay ---------------------------------------------------------------- */

static int replay_slot(struct lun *lun, const struct vol_geom *g,
		       const char *spec, uint32_t s)
{
	struct jnl_bounds b = vol_jnl_bounds(g);
	struct jnl_walk_result w;
	int rc;

	rc = jnl_replay(lun, vol_jnl_offset(g, s), &b, &w);
	if (rc) {
		cli_err("slot %u: cannot replay the journal of %s: %s", s, spec,
			vmfs_strerror(rc));
		return rc;
	}
	if (w.stop == JNL_STOP_CLEAN)
		printf("slot %u: clean, nothing to replay\n", s);
	else if (w.ntxn)
		printf("slot %u: replayed %" PRIu64 " transaction%s (%" PRIu64
		       " block%s); journal marked clean\n", s, w.ntxn,
		       plural(w.ntxn), w.nimages, plural(w.nimages));
	else
		printf("slot %u: dirty with nothing committed; journal marked clean\n",
		       s);
	if (w.stop == JNL_STOP_BAD_TAG || w.stop == JNL_STOP_TOO_LONG)
		cli_err("warning: slot %u: after those the log holds %s; it and "
			"everything after it were discarded; run 'vmfs fsck -n %s' "
			"to check the volume", s, jnl_stop_str(w.stop), spec);
	return 0;
}

static int journal_replay(int argc, char **argv)
{
	struct vol_geom g;
	struct jargs a;
	struct lun *lun;
	uint32_t s0, s1;
	int rc, failed = 0;

	rc = jcmd_start(argc, argv, JOPT_REPLAY, help_journal_replay, 0, &a,
			&lun, &g, &s0, &s1);
	if (rc >= 0)
		return rc;
	if (!a.force) {
		rc = cli_refuse_if_live(lun, &g, a.spec,
					"refusing to replay while a host is live: it "
					"would write older block images over that "
					"host's newer ones; unmount the volume there "
					"(a mount replays its own journal), or pass "
					"--force if you are sure that host is gone");
		if (rc >= 0) {
			lun_close(lun);
			return rc;
		}
	}
	for (uint32_t s = s0; s < s1; s++)
		failed |= replay_slot(lun, &g, a.spec, s) != 0;
	lun_close(lun);
	return failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

/* ---- the command ------------------------------------------------------------ */

int cmd_journal(int argc, char **argv)
{
	static const struct cli_cmd subcmds[] = {
		{ "dump",   journal_dump,   help_journal_dump,
		  "show the journals and their committed transactions" },
		{ "replay", journal_replay, help_journal_replay,
		  "replay the journals" },
	};

	return cli_dispatch(subcmds, CLI_NELEMS(subcmds), help_journal, argc, argv);
}
