/*
 * vmfs hosts LUN: the heartbeat slots that are not free, read from the
 * LUN (read-only, so safe while hosts have the volume mounted).
 *
 * Liveness follows SPEC §6.3 and nothing else: a host is live when we saw
 * its (hb_gen, counter) pair move on our own CLOCK_MONOTONIC, dead when it
 * stood still for its advertised lease plus one renewal.  So a full answer
 * takes up to that long (about 12 s with the default lease); the watch
 * stops early once every slot has moved.  --no-watch reads once and says
 * "unknown".  Each slot's journal is walked as 'vmfs journal dump' walks
 * it, to say whether a replay is pending.
 *
 * Next to that disk view, the cluster view of this host's vmfsd serving
 * the volume (the one at the mount point given, or for a LUN the one
 * found among this machine's vmfs mounts that answers in this network
 * namespace): whether each host is in the volume's corosync group, its
 * node id, and whether the group is quorate.  Members of our CPG view are
 * in our totem ring, so they share our quorum.  Where the two views
 * disagree, a flag says what it likely means; the disk stays the
 * authority (a host out of the group but live on disk keeps its locks).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vmfs/clock.h"
#include "vmfs/journal.h"
#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"
#include "cli.h"

/*
 * How often the watch re-reads the slots: well under the shortest
 * renewal interval a valid lease gives (HB_MIN_LEASE_MS / 5), so that
 * "last moved" is accurate to a fraction of a renewal.  One read of the
 * whole slot array each time.
 */
#define HOSTS_POLL_MS 100u

void help_hosts(void)
{
	printf("usage: vmfs hosts [--json] [--no-watch] LUN|MOUNTPOINT\n\n"
	       "List the hosts that hold a heartbeat slot of the volume: slot,\n"
	       "host name, host UUID, state, heartbeat generation, how long ago\n"
	       "its heartbeat counter last moved, its lease, and whether its\n"
	       "journal has transactions to replay.  Only reads the LUN; a mount\n"
	       "point stands for the LUN its vmfsd serves.\n\n"
	       "State: 'live' (the counter moved while we watched), 'dead' (it\n"
	       "stood still for the host's lease plus one renewal: the host\n"
	       "crashed or hangs), 'being-replayed' (a survivor is replaying its\n"
	       "journal), 'left' (it freed its slot while we watched).  Telling\n"
	       "live from dead takes up to one lease plus one renewal (about 12 s\n"
	       "with the default lease); the watch ends early once every host's\n"
	       "counter has moved.\n\n"
	       "Options:\n"
	       "  -j, --json       print one JSON object\n"
	       "  -n, --no-watch   read the slots once: state as on disk,\n"
	       "                   liveness 'unknown'\n"
	       "  -h, --help       show this help\n\n"
	       "Cluster view, side by side: whether the host is a member of the\n"
	       "volume's corosync CPG group (cpg), its corosync node id, whether\n"
	       "the group is quorate, and its corosync address, as this host's\n"
	       "vmfsd sees them (the vmfsd serving MOUNTPOINT, or for a LUN the one\n"
	       "serving it on this host, if any: 'no local mount' otherwise).\n"
	       "Disagreements are flagged:\n"
	       "'in CPG but heartbeat dead', 'heartbeat live but not in CPG:\n"
	       "network partition (or --no-cluster / corosync down there)',\n"
	       "'member unknown to the disk'.  The disk decides: no lock is ever\n"
	       "broken because a host left the group.\n");
}

/* One slot and what the watch saw of it. */
struct hosts_row {
	struct hb_slot_info si;     /* as first read */
	uint64_t last_gen, last_counter;
	int64_t moved_ms;           /* when we last saw it move (mono) */
	bool moved, left;
	uint32_t dead_ms;           /* its lease plus one renewal */
	int jerr;                   /* journal walk error */
	struct jnl_walk_result jw;
};

struct hosts_ctx {
	const char *spec;
	/* the cluster view: this host's vmfsd serving the volume, if any */
	struct vmfsd_info *di;
	bool have_di, joined;
	int di_err;               /* !have_di: -ENOENT none, -ETIMEDOUT silent */
	struct lun *lun;
	struct vol_geom g;
	struct hosts_row *rows;
	uint32_t n;
	bool watch;
	int64_t watched_ms;
};

/* The first read: every slot that is not free. */
static int hosts_read(struct hosts_ctx *c)
{
	struct hb_slot_info *si = calloc(c->g.max_hosts, sizeof(*si));
	int rc;

	c->rows = calloc(c->g.max_hosts, sizeof(*c->rows));
	if (!si || !c->rows) {
		free(si);
		return -ENOMEM;
	}
	rc = hb_survey(c->lun, c->g.hb_offset, false, si, c->g.max_hosts, &c->n);
	for (uint32_t k = 0; !rc && k < c->n; k++) {
		struct hosts_row *r = &c->rows[k];
		struct hb_timeouts t;

		r->si = si[k];
		r->last_gen = si[k].hb_gen;
		r->last_counter = si[k].counter;
		hb_timeouts_from_lease(si[k].lease_ms, &t);
		r->dead_ms = t.dead_ms;
	}
	free(si);
	return rc;
}

/*
 * Re-read the slots every HOSTS_POLL_MS until each has moved or the
 * longest dead time of them has passed; the time of each one's last
 * move is ours.  A slot re-read as free (or as another host) left.
 */
static int hosts_watch(struct hosts_ctx *c)
{
	struct hb_slot_info *si = calloc(c->g.max_hosts, sizeof(*si));
	int64_t start = vmfs_mono_ms(), now = start;
	uint32_t wait_ms = 0, pending = c->n;
	int rc = 0;

	if (!si)
		return -ENOMEM;
	for (uint32_t k = 0; k < c->n; k++)
		if (c->rows[k].dead_ms > wait_ms)
			wait_ms = c->rows[k].dead_ms;
	if (isatty(STDERR_FILENO))
		fprintf(stderr, "%s: watching heartbeats for up to %u s\n",
			cli_prog(), (wait_ms + 999) / 1000);
	while (pending && now - start < wait_ms) {
		struct timespec ts = { 0, HOSTS_POLL_MS * 1000000L };
		uint32_t n;

		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
		rc = hb_survey(c->lun, c->g.hb_offset, false, si,
			       c->g.max_hosts, &n);
		if (rc)
			break;
		now = vmfs_mono_ms();
		for (uint32_t k = 0; k < c->n; k++) {
			struct hosts_row *r = &c->rows[k];
			const struct hb_slot_info *cur = NULL;

			for (uint32_t i = 0; i < n && !cur; i++)
				if (si[i].slot == r->si.slot)
					cur = &si[i];
			if (r->left)
				continue;
			if (!cur || memcmp(cur->host_uuid, r->si.host_uuid,
					   VMFS_UUID_SIZE)) {
				r->left = true;
				pending -= !r->moved;
				continue;
			}
			if (cur->hb_gen == r->last_gen &&
			    cur->counter == r->last_counter)
				continue;
			pending -= !r->moved;
			r->moved = true;
			r->moved_ms = now;
			r->last_gen = cur->hb_gen;
			r->last_counter = cur->counter;
		}
	}
	c->watched_ms = vmfs_mono_ms() - start;
	free(si);
	return rc;
}

static void hosts_journals(struct hosts_ctx *c)
{
	struct jnl_bounds b = vol_jnl_bounds(&c->g);

	for (uint32_t k = 0; k < c->n; k++) {
		struct hosts_row *r = &c->rows[k];

		r->jerr = jnl_walk(c->lun, vol_jnl_offset(&c->g, r->si.slot), &b,
				   false, NULL, NULL, &r->jw);
	}
}

/* live / dead / being-replayed / left, or the on-disk state unwatched. */
static const char *hosts_state(const struct hosts_ctx *c,
			       const struct hosts_row *r)
{
	if (r->si.state == VMFS_HB_REPLAYING)
		return "being-replayed";
	if (!c->watch)
		return "active";
	if (r->left)
		return "left";
	return r->moved ? "live" : "dead";
}

static const char *hosts_liveness(const struct hosts_ctx *c,
				  const struct hosts_row *r)
{
	if (!c->watch)
		return "unknown";
	if (r->left)
		return "left";
	return r->moved ? "live" : "dead";
}

/* "clean", "dirty: 3 transactions to replay", "damaged (...)". */
static void hosts_jnl_str(const struct hosts_row *r, char *buf, size_t len)
{
	if (r->jerr)
		snprintf(buf, len, "damaged (%s)", vmfs_strerror(r->jerr));
	else if (r->jw.stop == JNL_STOP_CLEAN || !r->jw.ntxn)
		snprintf(buf, len, "%s", r->jw.hdr.state == VMFS_JNL_DIRTY ?
			 "dirty: nothing to replay" : "clean");
	else
		snprintf(buf, len, "dirty: %" PRIu64 " transaction%s to replay",
			 r->jw.ntxn, r->jw.ntxn == 1 ? "" : "s");
}

/* How long ago the counter last moved, as far as we watched. */
static void hosts_since_str(const struct hosts_ctx *c,
			    const struct hosts_row *r, int64_t end_ms,
			    char *buf, size_t len)
{
	if (!c->watch)
		snprintf(buf, len, "-");
	else if (r->moved)
		snprintf(buf, len, "%.1f s ago", (double)(end_ms - r->moved_ms) / 1000);
	else
		snprintf(buf, len, ">= %.1f s ago", (double)c->watched_ms / 1000);
}

/* ---- the cluster view ---------------------------------------------- */

/* The group member that is row r, or NULL (also without a view). */
static const struct vmfsd_cluster_member *hosts_member(const struct hosts_ctx *c,
							const struct hosts_row *r)
{
	char uuid[37];

	if (!c->joined)
		return NULL;
	vol_uuid_format(r->si.host_uuid, uuid);
	return cli_net_member(c->di, uuid, r->si.slot, r->si.hb_gen);
}

#define HOSTS_FLAG_DEAD "in CPG but heartbeat dead"
#define HOSTS_FLAG_PARTITION "heartbeat live but not in CPG: network " \
	"partition (or --no-cluster / corosync down there)"
#define HOSTS_FLAG_UNKNOWN "member unknown to the disk"
#define HOSTS_FLAG_SILENT "in the group but never said which host it is"

/* Where the disk and the group disagree about row r, or NULL.  Only a
 * watched heartbeat says live or dead. */
static const char *hosts_flag(const struct hosts_ctx *c,
			      const struct hosts_row *r)
{
	bool member, live;

	if (!c->joined || !c->watch)
		return NULL;
	member = hosts_member(c, r) != NULL;
	live = r->moved && !r->left && r->si.state != VMFS_HB_REPLAYING;
	if (member && !live)
		return HOSTS_FLAG_DEAD;
	if (!member && live)
		return HOSTS_FLAG_PARTITION;
	return NULL;
}

/* A group member no slot of ours is: its flag, or NULL when it is one. */
static const char *hosts_member_flag(const struct hosts_ctx *c,
				     const struct vmfsd_cluster_member *m)
{
	char uuid[37];

	if (!m->known)
		return HOSTS_FLAG_SILENT;
	for (uint32_t k = 0; k < c->n; k++) {
		vol_uuid_format(c->rows[k].si.host_uuid, uuid);
		if (c->rows[k].si.slot == m->slot &&
		    c->rows[k].si.hb_gen == m->hb_gen &&
		    !strcmp(uuid, m->host_uuid))
			return NULL;
	}
	return HOSTS_FLAG_UNKNOWN;
}

/* The cpg, node, quorate and address columns of row r (len bytes each;
 * addr gets alen). */
static void hosts_cluster_cols(const struct hosts_ctx *c,
			       const struct hosts_row *r, char *cpg,
			       char *node, char *quorate, size_t len,
			       char *addr, size_t alen)
{
	const struct vmfsd_cluster_member *m = hosts_member(c, r);

	snprintf(node, len, "-");
	snprintf(quorate, len, "-");
	snprintf(addr, alen, "%s", m && m->node_addr[0] ? m->node_addr : "-");
	if (!c->have_di)
		snprintf(cpg, len, "%s", c->di_err == -ETIMEDOUT ?
			 "no answer" : "no local mount");
	else if (!c->joined)
		snprintf(cpg, len, "not joined");
	else
		snprintf(cpg, len, "%s", m ? "yes" : "no");
	if (m) {
		snprintf(node, len, "%u", m->nodeid);
		snprintf(quorate, len, "%s", c->di->cluster_quorate ? "yes" : "no");
	}
}

/* Whose view the cluster columns are, in one line. */
static void hosts_print_view_text(const struct hosts_ctx *c)
{
	const struct vmfsd_info *d = c->di;

	if (!c->have_di && c->di_err == -ETIMEDOUT) {
		printf("cluster view: no answer (a vmfsd of this host did not "
		       "answer its control socket within %u s: stopped or hung; "
		       "see its log)\n", CLI_NET_CONNECT_MS / 1000);
		return;
	}
	if (!c->have_di) {
		printf("cluster view: no local mount (no vmfsd serving this "
		       "volume answers in this network namespace; run vmfs hosts "
		       "on a host that has it mounted)\n");
		return;
	}
	printf("cluster view from host %s (vmfsd pid %d at %s): ",
	       d->host_name[0] ? d->host_name : "?", (int)d->pid, d->mountpoint);
	if (c->joined)
		printf("CPG group %s, node %u, quorate %s, %u member%s\n",
		       d->cluster_group, d->cluster_nodeid,
		       d->cluster_quorate ? "yes" : "no", d->cluster_nmembers,
		       d->cluster_nmembers == 1 ? "" : "s");
	else if (!strcmp(d->cluster_state, "off"))
		printf("not in the CPG group (%s)\n", d->cluster_why);
	else
		printf("not in the CPG group: %s\n", d->cluster_why[0] ?
		       d->cluster_why : "this vmfsd has no cluster fast path");
}

/* The flags under the table. */
static void hosts_print_flags_text(const struct hosts_ctx *c)
{
	const char *flag;

	for (uint32_t k = 0; k < c->n; k++) {
		const struct hosts_row *r = &c->rows[k];

		flag = hosts_flag(c, r);
		if (flag)
			printf("  slot %u (%s): %s\n", r->si.slot,
			       r->si.hostname[0] ? r->si.hostname : "?", flag);
	}
	for (uint32_t i = 0; c->joined && i < c->di->cluster_nmembers; i++) {
		const struct vmfsd_cluster_member *m = &c->di->cluster_members[i];

		flag = hosts_member_flag(c, m);
		if (!flag)
			continue;
		if (m->known)
			printf("  node %u pid %u, host %s (%s, slot %u, generation "
			       "%" PRIu64 "): %s\n", m->nodeid, m->pid,
			       m->host_name[0] ? m->host_name : "?", m->host_uuid,
			       m->slot, m->hb_gen, flag);
		else
			printf("  node %u pid %u: %s\n", m->nodeid, m->pid, flag);
	}
}

/* The memory a host advertises for more VMs (vmfsd --vm-memory). */
static void hosts_vm_free_str(uint64_t mib, char *out, size_t len)
{
	if (!mib)
		snprintf(out, len, "none");
	else if (mib < 10240)
		snprintf(out, len, "%" PRIu64 " MiB", mib);
	else
		snprintf(out, len, "%.1f GiB", (double)mib / 1024);
}

static void hosts_print_text(const struct hosts_ctx *c, int64_t end_ms)
{
	char uuid[37];

	vol_uuid_format(c->g.uuid, uuid);
	if (!c->n) {
		printf("no host holds a heartbeat slot of volume %s on %s: "
		       "every slot is free\n", uuid, c->spec);
		return;
	}
	printf("volume %s on %s: %u of %u heartbeat slots in use", uuid,
	       c->spec, c->n, c->g.max_hosts);
	if (c->watch)
		printf(", watched %.1f s\n", (double)c->watched_ms / 1000);
	else
		printf(", not watched (liveness unknown)\n");
	hosts_print_view_text(c);
	printf("%-4s  %-14s  %-16s  %-36s  %-6s  %-14s  %-6s  %-9s  %-14s  "
	       "%-5s  %-7s  %-15s  %s\n", "slot", "state", "host", "uuid",
	       "hb-gen", "last moved", "lease", "vm-free", "cpg", "node",
	       "quorate", "address", "journal");
	for (uint32_t k = 0; k < c->n; k++) {
		const struct hosts_row *r = &c->rows[k];
		char since[32], jnl[96], lease[16], cpg[16], node[16], q[16];
		char addr[64], vmfree[24];

		vol_uuid_format(r->si.host_uuid, uuid);
		hosts_since_str(c, r, end_ms, since, sizeof(since));
		hosts_vm_free_str(r->si.vm_free_mib, vmfree, sizeof(vmfree));
		hosts_jnl_str(r, jnl, sizeof(jnl));
		snprintf(lease, sizeof(lease), "%.1f s",
			 (double)r->si.lease_ms / 1000);
		hosts_cluster_cols(c, r, cpg, node, q, sizeof(cpg), addr,
				   sizeof(addr));
		printf("%-4u  %-14s  %-16s  %-36s  %-6" PRIu64 "  %-14s  %-6s  "
		       "%-9s  %-14s  %-5s  %-7s  %-15s  %s\n",
		       r->si.slot, hosts_state(c, r),
		       r->si.hostname[0] ? r->si.hostname : "?", uuid,
		       r->si.hb_gen, since, lease, vmfree, cpg, node, q, addr,
		       jnl);
	}
	hosts_print_flags_text(c);
	if (c->have_di && c->di->ha_events[0])
		printf("HA events on host %s:\n%s", c->di->host_name[0] ?
		       c->di->host_name : "?", c->di->ha_events);
}

/* Row r's "cluster" and "flag" members (with a trailing ", "). */
static void hosts_print_cluster_json(const struct hosts_ctx *c,
				     const struct hosts_row *r)
{
	const struct vmfsd_cluster_member *m = hosts_member(c, r);
	const char *flag = hosts_flag(c, r);

	if (!c->joined)
		printf("\"cluster\": null, ");
	else if (!m)
		printf("\"cluster\": { \"member\": false }, ");
	else {
		printf("\"cluster\": { \"member\": true, \"nodeid\": %u, "
		       "\"quorate\": %s, \"node_addr\": ", m->nodeid,
		       c->di->cluster_quorate ? "true" : "false");
		cli_json_str(m->node_addr);
		printf(" }, ");
	}
	printf("\"flag\": ");
	if (flag)
		cli_json_str(flag);
	else
		printf("null");
	printf(", ");
}

/* Whose view, the view itself, and the members no slot is. */
static void hosts_print_view_json(const struct hosts_ctx *c)
{
	bool first = true;

	if (!c->have_di) {
		printf("{ \"local_mount\": false, \"no_answer\": %s }",
		       c->di_err == -ETIMEDOUT ? "true" : "false");
		return;
	}
	printf("{ \"local_mount\": true, \"mountpoint\": ");
	cli_json_str(c->di->mountpoint);
	printf(", \"vmfsd_pid\": %d, \"host_name\": ", (int)c->di->pid);
	cli_json_str(c->di->host_name);
	printf(",\n    \"cluster\": ");
	cli_net_print_json(c->di);
	printf(",\n    \"unknown_members\": [");
	for (uint32_t i = 0; c->joined && i < c->di->cluster_nmembers; i++) {
		const struct vmfsd_cluster_member *m = &c->di->cluster_members[i];
		const char *flag = hosts_member_flag(c, m);

		if (!flag)
			continue;
		printf("%s { \"nodeid\": %u, \"pid\": %u, \"known\": %s, "
		       "\"host_uuid\": ", first ? "" : ",", m->nodeid, m->pid,
		       m->known ? "true" : "false");
		cli_json_str(m->host_uuid);
		printf(", \"slot\": %u, \"hb_gen\": %" PRIu64 ", \"host_name\": ",
		       m->slot, m->hb_gen);
		cli_json_str(m->host_name);
		printf(", \"flag\": ");
		cli_json_str(flag);
		printf(" }");
		first = false;
	}
	printf("%s] }", first ? "" : " ");
}

static void hosts_print_json(const struct hosts_ctx *c, int64_t end_ms)
{
	char uuid[37];

	vol_uuid_format(c->g.uuid, uuid);
	printf("{\n  \"lun\": ");
	cli_json_str(c->spec);
	printf(",\n  \"volume_uuid\": \"%s\",\n  \"max_hosts\": %u,\n"
	       "  \"watched\": %s,\n  \"watched_ms\": %" PRId64 ",\n  \"hosts\": [",
	       uuid, c->g.max_hosts, c->watch ? "true" : "false", c->watched_ms);
	for (uint32_t k = 0; k < c->n; k++) {
		const struct hosts_row *r = &c->rows[k];

		vol_uuid_format(r->si.host_uuid, uuid);
		printf("%s\n    { \"slot\": %u, \"state\": \"%s\", \"liveness\": "
		       "\"%s\", \"disk_state\": \"%s\", \"hostname\": ",
		       k ? "," : "", r->si.slot, hosts_state(c, r),
		       hosts_liveness(c, r),
		       r->si.state == VMFS_HB_REPLAYING ? "replaying" : "active");
		cli_json_str(r->si.hostname);
		printf(", \"host_uuid\": \"%s\", \"hb_gen\": %" PRIu64 ", \"counter\": %"
		       PRIu64 ", \"lease_ms\": %u, \"vm_free_mib\": %" PRIu64
		       ", ", uuid, r->si.hb_gen, r->si.counter, r->si.lease_ms,
		       r->si.vm_free_mib);
		if (c->watch && r->moved)
			printf("\"moved_ms_ago\": %" PRId64 ", ", end_ms - r->moved_ms);
		else if (c->watch)
			printf("\"still_for_at_least_ms\": %" PRId64 ", ", c->watched_ms);
		hosts_print_cluster_json(c, r);
		if (r->jerr) {
			printf("\"journal\": { \"state\": \"damaged\", \"error\": ");
			cli_json_str(vmfs_strerror(r->jerr));
			printf(" } }");
		} else {
			printf("\"journal\": { \"state\": \"%s\", \"to_replay\": %"
			       PRIu64 ", \"stop\": \"%s\" } }",
			       r->jw.hdr.state == VMFS_JNL_DIRTY ? "dirty" : "clean",
			       r->jw.ntxn, cli_jnl_stop_key(r->jw.stop));
		}
	}
	printf("%s],\n  \"cluster_view\": ", c->n ? "\n  " : "");
	hosts_print_view_json(c);
	printf("\n}\n");
}

/*
 * hosts and locks read the LUN itself, which shows every host alike; a
 * mount point stands for the LUN its vmfsd serves.
 */
int cli_lun_open_ro(const char **spec, struct vmfsd_info *di, struct lun **lun)
{
	struct stat st;
	int rc;

	if (!stat(*spec, &st) && S_ISDIR(st.st_mode)) {
		if (cli_daemon_info(*spec, di))
			return CLI_EXIT_FAIL;
		*spec = di->lun;
	}
	rc = lun_open(*spec, LUN_RDONLY, lun);
	if (rc) {
		cli_err("cannot open LUN %s: %s", *spec, vmfs_strerror(rc));
		return CLI_EXIT_FAIL;
	}
	return 0;
}

int cmd_hosts(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json",     no_argument, NULL, 'j' },
		{ "no-watch", no_argument, NULL, 'n' },
		{ "help",     no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct hosts_ctx c = { .watch = true };
	struct vmfsd_info di;
	char vol_uuid[37], mp[4096] = "";
	bool json = false;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, ":jnh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json = true;
			break;
		case 'n':
			c.watch = false;
			break;
		case 'h':
			help_hosts();
			return CLI_EXIT_OK;
		default:
			return cli_getopt_err(ch, argv);
		}
	}
	if (cli_one_operand(argc, argv, "LUN", &c.spec))
		return CLI_EXIT_USAGE;
	memset(&di, 0, sizeof(di));
	if (cli_lun_open_ro(&c.spec, &di, &c.lun))
		return CLI_EXIT_FAIL;
	rc = cli_volume_read(c.lun, c.spec, &c.g, NULL);
	if (rc)
		goto out;
	if (di.pid > 0)
		snprintf(mp, sizeof(mp), "%s", di.mountpoint);
	rc = hosts_read(&c);
	if (!rc && c.watch && c.n)
		rc = hosts_watch(&c);
	if (rc) {
		cli_err("cannot read the heartbeat region of %s: %s; run 'vmfs "
			"fsck -n %s'", c.spec, vmfs_strerror(rc), c.spec);
		goto out;
	}
	hosts_journals(&c);
	/* The cluster view as it is now, after the watch: the mount point's
	 * vmfsd, or for a LUN this host's vmfsd serving the volume. */
	vol_uuid_format(c.g.uuid, vol_uuid);
	c.di = &di;
	c.di_err = mp[0] ? cli_net_info_at(mp, vol_uuid, &di) :
		   cli_net_local_info(vol_uuid, &di);
	c.have_di = !c.di_err;
	c.joined = c.have_di && !strcmp(di.cluster_state, "joined");
	if (json)
		hosts_print_json(&c, vmfs_mono_ms());
	else
		hosts_print_text(&c, vmfs_mono_ms());
out:
	free(c.rows);
	lun_close(c.lun);
	return rc ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
