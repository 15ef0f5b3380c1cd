/*
 * vmfs info: what a volume is, how full it is, which hosts hold it, the
 * state of every host's journal and where its areas lie.
 *
 * Also home of cli_volume_read(), the one place that turns a failed
 * vol_geom_read() into advice, so `info`, `mount` and friends say the same
 * thing about the same LUN.  It only reads the LUN: info on a mounted
 * volume is safe (the header and the cluster bitmaps are read with
 * O_DIRECT, so they are as fresh as the LUN, though a bitmap may change
 * right after it was read).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "vmfs/format.h"
#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"
#include "vmfs/vmfsd.h"
#include "vmfs/vol.h"
#include "cli.h"

void help_info(void)
{
	printf("usage: vmfs info [--json] LUN|MOUNTPOINT\n\n"
	       "Show a volume's identity, geometry, usage per resource type, the\n"
	       "hosts holding heartbeat slots, each slot's journal (clean or dirty,\n"
	       "and the committed transactions a dirty one would replay) and the\n"
	       "offsets of its on-disk areas.  Given a mount point, ask the vmfsd\n"
	       "serving it (over its control socket: root, or the user vmfsd runs\n"
	       "as) for the LUN and for what only it knows: its pid, since when it\n"
	       "serves the mount, its heartbeat slot, its journal's counters, and\n"
	       "the cluster fast path: whether it joined the volume's corosync\n"
	       "group (or why not), its node id, the members, and whether it keeps\n"
	       "locks cached.\n\n"
	       "Options:\n"
	       "  -j, --json             print one JSON object\n"
	       "  -S, --state-dir DIR    ignored (accepted for older scripts)\n"
	       "  -h, --help             show this help\n");
}

/* Read the first metadata block of the LUN (the primary header's place). */
static int info_read_primary(struct lun *lun, struct vmfs_volume *out)
{
	void *buf = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	int rc;

	if (!buf)
		return -ENOMEM;
	rc = lun_read(lun, buf, VMFS_MD_BLOCK_SIZE, 0);
	if (!rc)
		memcpy(out, buf, sizeof(*out));
	lun_buf_free(buf);
	return rc;
}

int cli_volume_read(struct lun *lun, const char *lun_name,
		    struct vol_geom *g, int *which_out)
{
	struct vmfs_volume primary;
	struct fmt_hdr h = { 0 };
	uint32_t magic = 0;
	int which = 0;
	int rc, vrc;

	/* Every failure is explained below; the engine's warnings would
	 * only say the same twice. */
	cli_log_quiet(true);
	rc = vol_geom_read(lun, g, &which, &magic);
	cli_log_quiet(false);
	if (which_out)
		*which_out = which;
	if (rc == 0 && which == 1) {
		/* Name what is wrong with the primary: fsck will need to know. */
		vrc = info_read_primary(lun, &primary);
		if (!vrc)
			vrc = lun_md_verify(&primary, VMFS_MAGIC_VOLUME, 0,
					    VMFS_MD_BLOCK_SIZE);
		fprintf(stderr,
			"%s: warning: the primary volume header of %s (offset 0) is "
			"damaged (%s); using the backup header at offset 0x%" PRIx64
			"; run 'vmfs fsck %s' to repair it\n",
			cli_prog(), lun_name,
			vrc ? vmfs_strerror(vrc) : "it differs from the backup",
			g->backup_offset, lun_name);
		return 0;
	}
	if (rc == 0)
		return 0;

	switch (rc) {
	case -VMFS_E_NOT_VOLUME:
		cli_err("%s is not a vmfs volume (bad magic 0x%08x at offset 0); "
			"run 'vmfs mkfs %s' to create one", lun_name, magic, lun_name);
		break;
	case -VMFS_E_BAD_VERSION:
		if (!info_read_primary(lun, &primary))
			fmt_hdr_decode(&primary.vh_hdr, &h);
		if (h.magic == VMFS_MAGIC_VOLUME)
			cli_err("%s holds a vmfs volume of on-disk format %u.%u, newer "
				"than this vmfs understands (format %d.x); use a newer "
				"vmfs to access it", lun_name, h.major, h.minor,
				VMFS_FORMAT_MAJOR);
		else
			cli_err("%s holds a vmfs volume of a newer on-disk format than "
				"this vmfs understands (format %d.x); use a newer vmfs to "
				"access it", lun_name, VMFS_FORMAT_MAJOR);
		break;
	default:
		if (rc > -VMFS_E_BASE)
			cli_err("cannot read the volume header of %s: %s", lun_name,
				vmfs_strerror(rc));
		else
			cli_err("%s: the vmfs volume header and its backup are both "
				"unusable (%s); run 'vmfs fsck %s'", lun_name,
				vmfs_strerror(rc), lun_name);
		break;
	}
	return rc;
}

/* ---- output ------------------------------------------------------------ */

struct info_ctx {
	const char *lun;
	const char *mountpoint;     /* NULL for a LUN argument */
	const struct vmfsd_info *live; /* the daemon's view, for a mount point */
	struct vol_geom g;
	struct vol_usage u;
	bool have_usage;
	int which;
	struct hb_slot_info *hosts; /* heartbeat slots not free */
	uint32_t nhosts;
	bool have_hosts;
	struct info_jnl *jnl;       /* g.max_hosts journals */
	struct lun_probe probe;     /* what the LUN's target offers */
	const char *lock_prim;      /* what a mount would lock with */
};

/* The persistent-reservation types of a REPORT CAPABILITIES mask. */
static void info_pr_types(uint16_t mask, char *buf, size_t len)
{
	static const struct { uint16_t bit; const char *name; } t[] = {
		{ 1u << 9, "WE" }, { 1u << 11, "EA" }, { 1u << 13, "WE-RO" },
		{ 1u << 14, "EA-RO" }, { 1u << 15, "WE-AR" }, { 1u << 0, "EA-AR" },
	};
	size_t i, n = 0;

	buf[0] = 0;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if ((mask & t[i].bit) && n < len)
			n += (size_t)snprintf(buf + n, len - n, "%s%s",
					      n ? " " : "", t[i].name);
}

static void info_print_probe_text(const struct info_ctx *c)
{
	const struct lun_probe *p = &c->probe;
	bool how = p->reserve_how && !strcmp(c->lock_prim, "reserve");
	char types[64];

	info_pr_types(p->pr_types, types, sizeof(types));
	printf("LUN backend         %s: COMPARE AND WRITE %s, persistent "
	       "reservations %s%s%s%s\n"
	       "lock primitive      %s%s%s%s\n"
	       "storage fencing     %s\n",
	       p->backend, lun_probe_answer_name(p->caw),
	       lun_probe_answer_name(p->pr), types[0] ? " (" : "", types,
	       types[0] ? ")" : "", c->lock_prim, how ? " (" : "",
	       how ? p->reserve_how : "", how ? ")" : "",
	       p->fencing ? p->fencing : "none (hosts fence themselves)");
}

static void info_print_probe_json(const struct info_ctx *c)
{
	const struct lun_probe *p = &c->probe;
	char types[64];

	info_pr_types(p->pr_types, types, sizeof(types));
	printf(",\n  \"lun_backend\": { \"kind\": ");
	cli_json_str(p->backend);
	printf(", \"compare_and_write\": \"%s\", "
	       "\"persistent_reservations\": \"%s\", \"pr_types\": ",
	       lun_probe_answer_name(p->caw), lun_probe_answer_name(p->pr));
	cli_json_str(types);
	printf(", \"lock_primitive\": ");
	cli_json_str(c->lock_prim);
	printf(", \"reserve\": ");
	cli_json_str(p->reserve_how ? p->reserve_how : "");
	printf(", \"fencing\": ");
	cli_json_str(p->fencing ? p->fencing : "");
	printf(" }");
}

/* One slot's journal: header, and what a dirty one would replay. */
struct info_jnl {
	int err;                    /* the header or the walk failed */
	struct jnl_walk_result w;
};

static const char *info_hb_state(enum vmfs_hb_state st)
{
	switch (st) {
	case VMFS_HB_ACTIVE:
		return "active";
	case VMFS_HB_REPLAYING:
		return "being replayed";
	default:
		return "free";
	}
}

void cli_time_str(int64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000LL);
	struct tm tm;

	if (!localtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S %z", &tm))
		snprintf(buf, len, "%" PRId64 " ns", ns);
}

/*
 * Every slot's journal: a dirty one is walked (no callback) to count the
 * committed transactions waiting for replay -- for a live host's journal,
 * what a crash right now would replay.  Clean ones cost a header read.
 */
static struct info_jnl *info_journals_read(struct lun *lun,
					   const struct vol_geom *g)
{
	struct jnl_bounds b = vol_jnl_bounds(g);
	struct info_jnl *j = calloc(g->max_hosts, sizeof(*j));

	for (uint32_t s = 0; j && s < g->max_hosts; s++)
		j[s].err = jnl_walk(lun, vol_jnl_offset(g, s), &b, false, NULL,
				    NULL, &j[s].w);
	return j;
}

/*
 * One line per journal that is dirty or damaged; the clean ones, which is
 * nearly all of them on a volume with 64 slots, as one count at the end
 * (--json lists every slot).
 */
static void info_print_journals(const struct info_ctx *c)
{
	uint32_t nclean = 0;

	printf("\njournals            state    tail        head        seq           "
	       "pending replay\n");
	for (uint32_t s = 0; s < c->g.max_hosts; s++) {
		const struct info_jnl *j = &c->jnl[s];
		const struct jnl_walk_result *w = &j->w;
		bool bad = w->stop == JNL_STOP_BAD_TAG || w->stop == JNL_STOP_TOO_LONG;
		char name[16];

		if (!j->err && w->stop == JNL_STOP_CLEAN) {
			nclean++;
			continue;
		}
		snprintf(name, sizeof(name), "slot %u", s);
		if (j->err) {
			printf("  %-17s damaged  (%s)\n", name, vmfs_strerror(j->err));
			continue;
		}
		printf("  %-17s %-7s  0x%08" PRIx64 "  0x%08" PRIx64 "  %-12" PRIu64 "  ",
		       name, w->hdr.state == VMFS_JNL_DIRTY ? "dirty" : "clean",
		       w->hdr.tail, w->hdr.head, w->hdr.seq);
		if (w->stop == JNL_STOP_CLEAN)
			printf("-\n");
		else
			printf("%" PRIu64 " transaction%s (%" PRIu64 " block%s)%s%s\n",
			       w->ntxn, w->ntxn == 1 ? "" : "s", w->nimages,
			       w->nimages == 1 ? "" : "s", bad ? ", then " : "",
			       bad ? jnl_stop_str(w->stop) : "");
	}
	if (nclean)
		printf("  %s%u slot%s clean: nothing to replay\n",
		       nclean < c->g.max_hosts ? "the other " : "all ", nclean,
		       nclean == 1 ? "" : "s");
}

/* What the daemon of a mount point told us. */
static void info_print_live_text(const struct vmfsd_info *d)
{
	char since[64];

	cli_time_str(d->since_ns, since, sizeof(since));
	printf("mounted at          %s%s (vmfsd pid %d, since %s)\n"
	       "vmfsd               version %s, host %s (%s), state directory %s, "
	       "%u FUSE threads\n"
	       "heartbeat           slot %u generation %" PRIu64 ", lock primitive "
	       "%s, lease %u ms, renew every %u ms, self-fence after %u ms; "
	       "the last renewal took %u ms, the slowest %u ms%s\n"
	       "journal (live)      %" PRIu64 " commits (%" PRIu64 " forced), %"
	       PRIu64 " blocks logged, %" PRIu64 " ring blocks, %" PRIu64
	       " flushes, %" PRIu64 " checkpoints\n",
	       d->mountpoint, d->read_only ? " read-only" : "", (int)d->pid,
	       since, d->version, d->host_name[0] ? d->host_name : "?",
	       d->host_uuid,
	       d->state_dir, d->fuse_threads, d->hb_slot, d->hb_generation,
	       d->lock_primitive[0] ? d->lock_primitive : "?",
	       d->lease_ms, d->renew_ms, d->fence_ms, d->renew_last_ms,
	       d->renew_max_ms,
	       d->fenced ? "; FENCED: all I/O fails, unmount and mount again" : "",
	       d->jnl_commits, d->jnl_forced, d->jnl_images, d->jnl_ring_blocks,
	       d->jnl_flushes, d->jnl_checkpoints);
	if (d->cache_budget_bytes) {
		char s[5][CLI_SIZE_STR_LEN];

		printf("cache               budget %s: %s fixed + %s directory "
		       "indexes and pointer blocks; %s in %" PRIu64 " inodes the "
		       "kernel holds (outside the budget); %s in all, %" PRIu64
		       " evictions\n",
		       cli_size_str(d->cache_budget_bytes, s[0], sizeof(s[0])),
		       cli_size_str(d->cache_fixed_bytes, s[1], sizeof(s[1])),
		       cli_size_str(d->cache_index_bytes, s[2], sizeof(s[2])),
		       cli_size_str(d->cache_inode_bytes, s[3], sizeof(s[3])),
		       d->cache_inodes,
		       cli_size_str(d->cache_used_bytes, s[4], sizeof(s[4])),
		       d->cache_evictions);
		printf("kernel cache        %" PRIu64 " names and %" PRIu64
		       " inodes kept by the kernel now, %" PRIu64
		       " forgotten since the mount, %" PRIu64
		       " times let expire instead\n", d->kcache_names,
		       d->kcache_inodes, d->kcache_forgotten,
		       d->kcache_expired);
	}
	cli_net_print_text(d);
}

static void info_print_live_json(const struct vmfsd_info *d)
{
	char since[64];

	cli_time_str(d->since_ns, since, sizeof(since));
	printf(",\n  \"mountpoint\": ");
	cli_json_str(d->mountpoint);
	printf(",\n  \"vmfsd_pid\": %d,\n  \"vmfsd\": {\n    \"pid\": %d, "
	       "\"since_ns\": %" PRId64 ", \"since\": ", (int)d->pid, (int)d->pid,
	       d->since_ns);
	cli_json_str(since);
	printf(", \"version\": ");
	cli_json_str(d->version);
	printf(", \"host_uuid\": ");
	cli_json_str(d->host_uuid);
	printf(", \"host_name\": ");
	cli_json_str(d->host_name);
	printf(", \"state_dir\": ");
	cli_json_str(d->state_dir);
	printf(", \"fuse_threads\": %u, \"read_only\": %s,\n    "
	       "\"heartbeat\": { \"slot\": %u, \"generation\": %" PRIu64
	       ", \"lock_primitive\": ",
	       d->fuse_threads, d->read_only ? "true" : "false", d->hb_slot,
	       d->hb_generation);
	cli_json_str(d->lock_primitive);
	printf(", \"lease_ms\": %u, \"renew_ms\": %u, \"fence_ms\": %u, "
	       "\"renew_last_ms\": %u, \"renew_max_ms\": %u, "
	       "\"fenced\": %s },\n    \"journal\": { \"commits\": %" PRIu64
	       ", \"forced\": %" PRIu64 ", \"images\": %" PRIu64
	       ", \"ring_blocks\": %" PRIu64 ", \"flushes\": %" PRIu64
	       ", \"checkpoints\": %" PRIu64 " },\n    \"cache\": { "
	       "\"budget_bytes\": %" PRIu64 ", \"used_bytes\": %" PRIu64
	       ", \"fixed_bytes\": %" PRIu64 ", \"index_bytes\": %" PRIu64
	       ", \"inode_bytes\": %" PRIu64 ", \"inodes\": %" PRIu64
	       ", \"evictions\": %" PRIu64 " },\n    \"kernel_cache\": { "
	       "\"kernel_names\": %" PRIu64 ", \"kernel_inodes\": %" PRIu64
	       ", \"kernel_forgotten\": %" PRIu64
	       ", \"kernel_expired\": %" PRIu64 " }\n  }",
	       d->lease_ms, d->renew_ms, d->fence_ms, d->renew_last_ms,
	       d->renew_max_ms, d->fenced ? "true" : "false",
	       d->jnl_commits, d->jnl_forced, d->jnl_images, d->jnl_ring_blocks,
	       d->jnl_flushes, d->jnl_checkpoints, d->cache_budget_bytes,
	       d->cache_used_bytes, d->cache_fixed_bytes, d->cache_index_bytes,
	       d->cache_inode_bytes, d->cache_inodes, d->cache_evictions,
	       d->kcache_names, d->kcache_inodes, d->kcache_forgotten,
	       d->kcache_expired);
	printf(",\n  \"cluster\": ");
	cli_net_print_json(d);
}

static void info_print_text(const struct info_ctx *c)
{
	const struct vol_geom *g = &c->g;
	char s[6][CLI_SIZE_STR_LEN];
	uint64_t max_blocks, max_size;
	char uuid[37], when[64];
	unsigned t;

	vol_uuid_format(g->uuid, uuid);
	cli_time_str(g->ctime_ns, when, sizeof(when));
	vol_grow_max(g, &max_blocks, &max_size);
	printf("LUN                 %s\n", c->lun);
	if (c->live)
		info_print_live_text(c->live);
	printf("uuid                %s\n"
	       "label               %s\n"
	       "format version      %u.%u\n"
	       "created             %s\n"
	       "size                %s (%" PRIu64 " bytes)\n"
	       "sector size         %u\n"
	       "metadata block      %s\n"
	       "file block size     %s\n"
	       "small block size    %s\n"
	       "max hosts           %u\n"
	       "journal size        %s per host\n"
	       "grows to at most    %s (vmfs grow; %" PRIu64 " file blocks)\n"
	       "header in use       %s\n",
	       uuid, g->label[0] ? g->label : "(none)", g->major, g->minor, when,
	       cli_size_str(g->size_bytes, s[0], sizeof(s[0])), g->size_bytes,
	       g->sector_size,
	       cli_size_str(g->md_block_size, s[1], sizeof(s[1])),
	       cli_size_str(g->file_block_size, s[2], sizeof(s[2])),
	       cli_size_str(g->small_block_size, s[3], sizeof(s[3])),
	       g->max_hosts,
	       cli_size_str(g->journal_size_bytes, s[4], sizeof(s[4])),
	       cli_size_str(max_size, s[5], sizeof(s[5])), max_blocks,
	       c->which ? "backup (primary damaged; run fsck)" : "primary");
	info_print_probe_text(c);

	if (c->have_usage) {
		printf("\nusage               used / total objects      object    used bytes of total\n");
		for (t = 0; t < VMFS_RES_NTYPES; t++) {
			uint64_t osz = g->res[t].obj_size;
			double pct = c->u.total[t] ?
				100.0 * (double)c->u.used[t] / (double)c->u.total[t] : 0;

			printf("  %-17s %10" PRIu64 " / %-10" PRIu64 " %5.1f%%  %-8s  %s of %s\n",
			       vol_res_name(t), c->u.used[t], c->u.total[t], pct,
			       cli_size_str(osz, s[0], sizeof(s[0])),
			       cli_size_str(c->u.used[t] * osz, s[1], sizeof(s[1])),
			       cli_size_str(c->u.total[t] * osz, s[2], sizeof(s[2])));
		}
	}

	if (c->have_hosts) {
		printf("\nhosts (heartbeat slots in use: %u of %u)\n", c->nhosts,
		       g->max_hosts);
		for (uint32_t i = 0; i < c->nhosts; i++) {
			const struct hb_slot_info *h = &c->hosts[i];

			vol_uuid_format(h->host_uuid, uuid);
			printf("  slot %-4u %-15s host %s (%s) generation %" PRIu64
			       " renewals %" PRIu64 " lease %u ms\n",
			       h->slot, info_hb_state(h->state), uuid,
			       h->hostname[0] ? h->hostname : "?", h->hb_gen,
			       h->counter, h->lease_ms);
		}
	}

	if (c->jnl)
		info_print_journals(c);

	printf("\nareas                     offset              objects     size     per cluster  clusters\n");
	printf("  %-23s 0x%016" PRIx64 "\n", "volume header", (uint64_t)0);
	printf("  %-23s 0x%016" PRIx64 "  %-10u  4 KiB\n", "heartbeat",
	       g->hb_offset, g->max_hosts);
	printf("  %-23s 0x%016" PRIx64 "  %-10u  %s\n", "journals",
	       g->journal_offset, g->max_hosts,
	       cli_size_str(g->journal_size_bytes, s[0], sizeof(s[0])));
	for (t = 0; t < VMFS_RES_NTYPES; t++) {
		const struct vol_res_geom *r = &g->res[t];
		char name[32];

		snprintf(name, sizeof(name), "%s clusters", vol_res_name(t));
		printf("  %-23s 0x%016" PRIx64 "  %-10u  4 KiB\n", name,
		       r->hdr_offset, r->nclusters);
		snprintf(name, sizeof(name), "%s objects", vol_res_name(t));
		printf("  %-23s 0x%016" PRIx64 "  %-10" PRIu64 "  %-8s %-12u %u\n",
		       name, r->obj_offset, r->count,
		       cli_size_str(r->obj_size, s[0], sizeof(s[0])),
		       r->per_cluster, r->nclusters);
	}
	printf("  %-23s 0x%016" PRIx64 "\n", "backup header", g->backup_offset);
}

void cli_json_str(const char *s)
{
	const unsigned char *p;

	putchar('"');
	for (p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

/* "pointer blocks" -> "pointer_blocks": JSON keys without spaces. */
static const char *json_key(const char *name, char *buf, size_t len)
{
	size_t i;

	for (i = 0; name[i] && i + 1 < len; i++)
		buf[i] = name[i] == ' ' ? '_' : name[i];
	buf[i] = '\0';
	return buf;
}

static void info_print_json(const struct info_ctx *c)
{
	const struct vol_geom *g = &c->g;
	char uuid[37], when[64], key[32];
	uint64_t max_blocks, max_size;
	unsigned t;

	vol_grow_max(g, &max_blocks, &max_size);

	vol_uuid_format(g->uuid, uuid);
	cli_time_str(g->ctime_ns, when, sizeof(when));
	printf("{\n  \"lun\": ");
	cli_json_str(c->lun);
	if (c->live)
		info_print_live_json(c->live);
	printf(",\n  \"uuid\": \"%s\",\n  \"label\": ", uuid);
	cli_json_str(g->label);
	printf(",\n  \"format_version\": \"%u.%u\",\n"
	       "  \"format_major\": %u,\n  \"format_minor\": %u,\n"
	       "  \"generation\": %" PRIu64 ",\n"
	       "  \"created_ns\": %" PRId64 ",\n  \"created\": ",
	       g->major, g->minor, g->major, g->minor, g->generation,
	       g->ctime_ns);
	cli_json_str(when);
	printf(",\n  \"size_bytes\": %" PRIu64 ",\n"
	       "  \"sector_size\": %u,\n  \"md_block_size\": %u,\n"
	       "  \"file_block_size\": %u,\n  \"small_block_size\": %u,\n"
	       "  \"max_hosts\": %u,\n  \"journal_size_bytes\": %" PRIu64 ",\n"
	       "  \"flags\": %u,\n  \"root_ino\": %" PRIu64 ",\n"
	       "  \"lostfound_ino\": %" PRIu64 ",\n  \"header\": \"%s\",\n"
	       "  \"max_size_bytes\": %" PRIu64 ",\n"
	       "  \"max_file_blocks\": %" PRIu64,
	       g->size_bytes, g->sector_size, g->md_block_size,
	       g->file_block_size, g->small_block_size, g->max_hosts,
	       g->journal_size_bytes, g->flags, g->root_ino, g->lostfound_ino,
	       c->which ? "backup" : "primary", max_size, max_blocks);
	info_print_probe_json(c);

	if (c->have_usage) {
		printf(",\n  \"usage\": {");
		for (t = 0; t < VMFS_RES_NTYPES; t++)
			printf("%s\n    \"%s\": { \"used\": %" PRIu64 ", \"total\": %"
			       PRIu64 ", \"object_size\": %u }", t ? "," : "",
			       json_key(vol_res_name(t), key, sizeof(key)),
			       c->u.used[t], c->u.total[t], g->res[t].obj_size);
		printf("\n  }");
	}

	if (c->have_hosts) {
		printf(",\n  \"hosts\": [");
		for (uint32_t i = 0; i < c->nhosts; i++) {
			const struct hb_slot_info *h = &c->hosts[i];

			vol_uuid_format(h->host_uuid, uuid);
			printf("%s\n    { \"slot\": %u, \"state\": \"%s\", "
			       "\"host_uuid\": \"%s\", \"hostname\": ",
			       i ? "," : "", h->slot, info_hb_state(h->state), uuid);
			cli_json_str(h->hostname);
			printf(", \"generation\": %" PRIu64 ", \"renewals\": %" PRIu64
			       ", \"lease_ms\": %u }", h->hb_gen, h->counter,
			       h->lease_ms);
		}
		printf("%s]", c->nhosts ? "\n  " : "");
	}
	if (c->jnl) {
		printf(",\n  \"journals\": [");
		for (uint32_t s = 0; s < g->max_hosts; s++) {
			const struct info_jnl *j = &c->jnl[s];
			const struct jnl_walk_result *w = &j->w;

			printf("%s\n    { \"slot\": %u, ", s ? "," : "", s);
			if (j->err) {
				printf("\"state\": \"damaged\", \"error\": ");
				cli_json_str(vmfs_strerror(j->err));
				printf(" }");
				continue;
			}
			printf("\"state\": \"%s\", \"tail\": %" PRIu64 ", \"head\": %"
			       PRIu64 ", \"seq\": %" PRIu64 ", \"pending_transactions\": %"
			       PRIu64 ", \"pending_blocks\": %" PRIu64 ", \"stop\": \"%s\" }",
			       w->hdr.state == VMFS_JNL_DIRTY ? "dirty" : "clean",
			       w->hdr.tail, w->hdr.head, w->hdr.seq, w->ntxn,
			       w->nimages, cli_jnl_stop_key(w->stop));
		}
		printf("%s]", g->max_hosts ? "\n  " : "");
	}
	printf(",\n  \"areas\": {\n    \"volume_header\": { \"offset\": 0 },\n"
	       "    \"heartbeat\": { \"offset\": %" PRIu64 ", \"slots\": %u },\n"
	       "    \"journals\": { \"offset\": %" PRIu64 ", \"count\": %u, "
	       "\"size_bytes\": %" PRIu64 " }",
	       g->hb_offset, g->max_hosts, g->journal_offset, g->max_hosts,
	       g->journal_size_bytes);
	for (t = 0; t < VMFS_RES_NTYPES; t++) {
		const struct vol_res_geom *r = &g->res[t];

		printf(",\n    \"%s\": { \"header_offset\": %" PRIu64
		       ", \"object_offset\": %" PRIu64 ", \"count\": %" PRIu64
		       ", \"object_size\": %u, \"per_cluster\": %u, \"clusters\": %u }",
		       json_key(vol_res_name(t), key, sizeof(key)),
		       r->hdr_offset, r->obj_offset, r->count,
		       r->obj_size, r->per_cluster, r->nclusters);
	}
	printf(",\n    \"backup_header\": { \"offset\": %" PRIu64 " }\n  }\n}\n",
	       g->backup_offset);
}

/* ---- the command --------------------------------------------------------- */

/*
 * A mount point: its daemon says which LUN it serves and what only it
 * knows (its pid, the heartbeat it holds, its journal's counters); the
 * rest is read from the LUN as for a LUN argument.
 */
int cli_daemon_info(const char *dir, struct vmfsd_info *di)
{
	struct vmfsd_ctl *c;
	int rc;

	rc = cli_daemon_open(dir, &c, di);
	if (!rc)
		vmfsd_ctl_disconnect(c);
	else if (rc == -ENOENT)
		cli_err("no vmfsd answers for %s: it is not a vmfs mount point, or "
			"its vmfsd runs in another network namespace (run vmfs "
			"there); to read a volume that is not mounted here, pass "
			"its LUN", dir);
	return rc;
}

int cmd_info(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json",      no_argument,       NULL, 'j' },
		{ "state-dir", required_argument, NULL, 'S' },
		{ "help",      no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct info_ctx c = { 0 };
	struct vmfsd_info di;
	struct lun *lun;
	bool json = false;
	struct stat st;
	const char *arg;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, ":jS:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json = true;
			break;
		case 'S':
			break;      /* the daemon is asked directly now */
		case 'h':
			help_info();
			return CLI_EXIT_OK;
		default:
			return cli_getopt_err(ch, argv);
		}
	}
	if (cli_one_operand(argc, argv, "LUN or mount point", &arg))
		return CLI_EXIT_USAGE;

	c.lun = arg;
	if (stat(arg, &st) && errno == ENOTCONN) {
		cli_err("the vmfsd serving %s has died (killed or crashed); run "
			"'vmfs umount %s' to detach the dead mount, or pass the LUN",
			arg, arg);
		return CLI_EXIT_FAIL;
	} else if (!stat(arg, &st) && S_ISDIR(st.st_mode)) {
		if (cli_daemon_info(arg, &di))
			return CLI_EXIT_FAIL;
		c.lun = di.lun;
		c.mountpoint = di.mountpoint;
		c.live = &di;
	}

	rc = lun_open(c.lun, LUN_RDONLY, &lun);
	if (rc) {
		cli_err("cannot open LUN %s: %s", c.lun, vmfs_strerror(rc));
		return CLI_EXIT_FAIL;
	}
	rc = cli_volume_read(lun, c.lun, &c.g, &c.which);
	if (rc)
		goto out;
	lun_describe(lun, &c.probe);
	c.lock_prim = lock_prim_name(lock_prim_pick(lun, 0));
	rc = vol_usage_read(lun, &c.g, &c.u);
	if (rc)
		cli_err("warning: cannot count the objects in use on %s: %s; "
			"run 'vmfs fsck %s'", c.lun, vmfs_strerror(rc), c.lun);
	c.have_usage = rc == 0;
	c.hosts = calloc(c.g.max_hosts, sizeof(*c.hosts));
	if (c.hosts) {
		rc = hb_survey(lun, c.g.hb_offset, false, c.hosts, c.g.max_hosts,
			       &c.nhosts);
		if (rc)
			cli_err("warning: cannot read the heartbeat region of %s: %s; "
				"run 'vmfs fsck %s'", c.lun, vmfs_strerror(rc), c.lun);
		c.have_hosts = rc == 0;
	}
	c.jnl = info_journals_read(lun, &c.g);
	rc = 0;
	if (json)
		info_print_json(&c);
	else
		info_print_text(&c);
out:
	free(c.jnl);
	free(c.hosts);
	lun_close(lun);
	return rc ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
