/*
 * The HA agent: restarts, on this host, the HA VMs of hosts that died.
 *
 * Every HA_TICK_MS the loop thread reads the heartbeat slots (one read
 * of the region).  A host whose slot was there and is gone has been
 * recovered by some survivor (vol_recover_slot frees the slot only after
 * its journal is replayed, so its locks are breakable now) or has
 * unmounted cleanly (its VMs were stopped then, and their run records
 * cleared).  Then, after a placement delay, the agent walks the
 * datastore (through a `vmfsd --mount-io` child: mntio.c) for run records
 * (hypervisor/hastate.c: VMs that should be running) of HA VMs whose host
 * is no longer on the volume, and starts
 * them here, highest restart priority first, through the supervisor
 * (vmfsd_vm_start).  The config's open lock decides who runs each VM:
 * taking it is a compare-and-write, so of all the survivors trying at
 * once exactly one wins.  The others get -EBUSY and look again after a
 * random pause, a few times (the lock may have been held only by other
 * survivors reading the VM's config at that moment, all of whom would
 * otherwise give up); once the winner runs the VM its run record names
 * a live host and no scan finds the VM any more.
 *
 * Placement (a small DRS, through the disk): every host advertises in
 * its heartbeat slot the memory it has for more VMs (ha_free_mib: what
 * --vm-memory, by default MemTotal, gives VMs less what the VMs it runs
 * are configured with, and never more than MemAvailable).  Every survivor
 * computes the same assignment from the same slots and run records
 * (ha_assign): VMs in restart-priority order, each to the host with the
 * most memory left after the VMs assigned before it (ties: the lower
 * slot), so a dead host's VMs go to the emptiest hosts and spread once
 * those fill up.  A host restarts at once the VMs assigned to it; the
 * others only after HA_FALLBACK_MS (plus HA_SLOT_MS per slot number), if
 * the host they were assigned to has not restarted them by then (it has
 * no quorum, it died too, its view of the slots differed).  A VM that
 * would not fit in this host's free memory is left to the others; a host
 * that left one looks again once any host advertises more than it did
 * since, and enough (ha_room_appeared).  The assignment only decides who
 * tries first; the lock decides who runs.
 *
 * No VM twice: a host cut off from the cluster network but still
 * heartbeating keeps its slot, so its VMs are never candidates; its locks
 * stay live anyway.  Without quorum (corosync says so) the agent starts
 * nothing and waits; with --no-cluster there is no quorum to ask and the
 * on-disk locks alone decide.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "vmfs/log.h"

#include "vmfs/clock.h"
#include "vmfs/hypervisor.h"
#include "vmfs/lockmgr.h"
#include "vmfs/vol.h"
#include "vmfsd_int.h"

#define HA_TICK_MS        500
/* A VM assigned to another host is tried here this long after the
 * assignment, plus HA_SLOT_MS per slot number, if still not running. */
#define HA_FALLBACK_MS    5000
#define HA_SLOT_MS        300
/* By then a restarted guest shows in MemAvailable as much as it will. */
#define HA_PLACED_MS      60000
#define HA_EVENTS         16
/* A look because room appeared, then no other for this long, doubled
 * each time up to HA_ROOM_MAX_MS, until one restarts a VM here. */
#define HA_ROOM_AFTER_MS  30000
#define HA_ROOM_MAX_MS    (10 * 60000)
#define HA_CANDIDATES_MAX 256
/* Scans again after its lock was taken elsewhere (ha_scan). */
#define HA_BUSY_RETRIES   20

struct ha_host {
	uint8_t uuid[VMFS_UUID_SIZE];
	char name[65];
};

struct vmfsd_ha {
	struct vmfsd *d;
	qb_loop_timer_handle timer;
	bool timer_set;
	uint32_t max;
	struct hb_slot_info *si;   /* the last read of the slots: nsi */
	uint32_t nsi;
	struct ha_host *present;   /* hosts on the volume at the last read */
	uint32_t npresent;
	bool surveyed;
	/* A scan to run at due_ms (monotonic), and why. */
	bool scan;
	bool fallback;             /* try VMs assigned to other hosts too */
	int64_t due_ms;
	char why[250];
	bool said_no_quorum;
	unsigned busy_retries;     /* scans again after a lock contention */
	uint64_t placed_mib;       /* restarted here lately (HA_PLACED_MS) */
	int64_t placed_ms;         /* the last of them, monotonic */
	/*
	 * VMs this host left for lack of memory in its last scan: the
	 * smallest one's need (0: none), and what every host advertised
	 * then.  A host that advertises more than it did, and enough, makes
	 * the agent look again (ha_room_appeared).
	 */
	uint64_t left_need_mib;
	uint64_t scan_need_mib;    /* ha_scan: the same, for this scan */
	struct ha_room { uint32_t slot; uint64_t mib; } *left_room;
	uint32_t nleft_room;
	/* Looks again after HA_ROOM_AFTER_MS, doubled at each look that
	 * restarted nothing here (a host with room that fails to start VMs
	 * would otherwise be looked at again at every rise of its figure). */
	int64_t room_after_ms;     /* monotonic: no look before */
	unsigned room_looks;
	char events[HA_EVENTS][400];
	unsigned nevents;
};

struct ha_cand {
	char path[PATH_MAX];
	struct hv_ha_state s;
	bool moved;                /* it went to s.moving_*, which is gone */
	uint32_t to;               /* ha_assign: the host's slot; HA_NOBODY */
};

#define HA_NOBODY UINT32_MAX

__attribute__((format(printf, 3, 4)))
static void ha_event(struct vmfsd_ha *ha, int level, const char *fmt, ...)
{
	char line[sizeof(ha->events[0])], when[32];
	struct tm tm;
	time_t now = time(NULL);
	va_list ap;
	unsigned i;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	qb_log(level, "HA: %s", line);
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (ha->nevents == HA_EVENTS) {
		memmove(ha->events[0], ha->events[1],
			sizeof(ha->events[0]) * (HA_EVENTS - 1));
		ha->nevents--;
	}
	i = ha->nevents++;
	snprintf(ha->events[i], sizeof(ha->events[i]), "%.24s %.370s", when, line);
}

/* MemTotal and MemAvailable, MiB (0 where /proc/meminfo says nothing). */
static void ha_meminfo_mib(uint64_t *total, uint64_t *avail)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	unsigned long long kib;

	*total = *avail = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "MemTotal: %llu kB", &kib) == 1)
			*total = kib / 1024;
		else if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1)
			*avail = kib / 1024;
	}
	fclose(f);
}

/* What this host has for another VM: what it gives VMs (--vm-memory, by
 * default MemTotal) less what the VMs it runs are configured with, and
 * no more than MemAvailable less what the VMs it restarted lately will
 * take (QEMU has not touched their memory yet). */
static uint64_t room_mib(struct vmfsd *d, uint64_t placed_mib)
{
	uint64_t total, avail, give, used = vmfsd_vms_memory_mib(d);

	ha_meminfo_mib(&total, &avail);
	give = d->a->vm_mem_bytes ? d->a->vm_mem_bytes >> 20 : total;
	give = give > used ? give - used : 0;
	avail = avail > placed_mib ? avail - placed_mib : 0;
	return give < avail ? give : avail;
}

static uint64_t ha_free_mib(struct vmfsd_ha *ha)
{
	if (vmfs_mono_ms() - ha->placed_ms > HA_PLACED_MS)
		ha->placed_mib = 0;
	return room_mib(ha->d, ha->placed_mib);
}

uint64_t vmfsd_vm_room_mib(struct vmfsd *d)
{
	return d->ha ? ha_free_mib(d->ha) : room_mib(d, 0);
}

static int64_t ha_fallback_ms(struct vmfsd_ha *ha)
{
	return HA_FALLBACK_MS +
	       (int64_t)hb_slot_index(ha->d->hb) * HA_SLOT_MS;
}

static bool ha_is_present(struct vmfsd_ha *ha, const char *uuid_text)
{
	char u[37];

	for (uint32_t i = 0; i < ha->npresent; i++) {
		vol_uuid_format(ha->present[i].uuid, u);
		if (!strcmp(u, uuid_text))
			return true;
	}
	return false;
}

/* Read the slots; note hosts that left.  -errno when the read failed. */
static int ha_survey(struct vmfsd_ha *ha)
{
	struct vmfsd *d = ha->d;
	struct vol_geom g;
	struct ha_host *now;
	uint32_t n = 0;
	int ret;

	/* The engine's watcher reads the slots every quarter renewal: its
	 * read, if fresh enough, saves one of ours. */
	vol_geom_get(d->vol, &g);
	ret = vol_cluster_slots(d->vol, HA_TICK_MS, ha->si, ha->max, &n);
	if (ret)
		ret = hb_survey(d->hb_lun, g.hb_offset, false, ha->si, ha->max,
				&n);
	if (ret) {
		ha->nsi = 0;
		return ret;
	}
	ha->nsi = n;
	now = calloc(n ? n : 1, sizeof(*now));
	if (!now)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		memcpy(now[i].uuid, ha->si[i].host_uuid, VMFS_UUID_SIZE);
		snprintf(now[i].name, sizeof(now[i].name), "%s",
			 ha->si[i].hostname);
	}
	for (uint32_t i = 0; ha->surveyed && i < ha->npresent; i++) {
		bool still = false;
		char u[37];

		for (uint32_t j = 0; j < n && !still; j++)
			still = !memcmp(now[j].uuid, ha->present[i].uuid,
					VMFS_UUID_SIZE);
		if (still)
			continue;
		vol_uuid_format(ha->present[i].uuid, u);
		if (!strcmp(u, d->host_uuid))
			continue;
		ha_event(ha, LOG_NOTICE, "host %s (%s) left the volume (its slot "
			 "is free: recovered after its death, or unmounted); "
			 "looking for its HA VMs", ha->present[i].name[0] ?
			 ha->present[i].name : "?", u);
		snprintf(ha->why, sizeof(ha->why), "host %s (%s) died",
			 ha->present[i].name[0] ? ha->present[i].name : "?", u);
		if (!ha->scan) {
			ha->fallback = false;
			ha->due_ms = vmfs_mono_ms();
		}
		ha->scan = true;
		ha->busy_retries = 0;
	}
	if (!ha->surveyed) {
		/* At mount: VMs whose host went away while we were not here. */
		snprintf(ha->why, sizeof(ha->why), "its host was gone when %s "
			 "mounted the volume", d->host_name[0] ? d->host_name :
			 d->host_uuid);
		ha->scan = true;
		ha->fallback = true;   /* the others are not looking */
		ha->due_ms = vmfs_mono_ms() +
			     (int64_t)hb_slot_index(d->hb) * HA_SLOT_MS;
	}
	free(ha->present);
	ha->present = now;
	ha->npresent = n;
	ha->surveyed = true;
	return 0;
}

struct ha_walk {
	struct vmfsd_ha *ha;
	struct ha_cand *c;
	unsigned n;
};

/* A run record the walk found: a candidate when this host should try to
 * restart its VM. */
static int ha_walk_one(void *arg, const char *path, int ret,
		       const struct hv_ha_state *s, const char *err)
{
	struct ha_walk *w = arg;
	struct vmfsd *d = w->ha->d;
	bool moved;

	if (ret) {
		qb_log(LOG_WARNING, "HA: %s", err[0] ? err : vmfs_strerror(ret));
		return 0;
	}
	/* A VM whose host migrated it to a host that is gone now: the
	 * destination died before it rewrote the record, perhaps after the
	 * guest ran there (migrate.c mig_src_record).  If the migration
	 * failed instead, the VM still runs on its host, whose lock keeps
	 * the survivors off. */
	moved = s->moving_uuid[0] && !ha_is_present(w->ha, s->moving_uuid);
	if (!moved && ha_is_present(w->ha, s->host_uuid))
		return 0;
	/* Ours: a VM this daemon ran (and saw end) is not restarted; one
	 * our previous incarnation ran is, and so is one we migrated away
	 * to a host that died. */
	if (!strcmp(s->host_uuid, d->host_uuid) && vmfsd_vm_known(d, path) &&
	    (!moved || vmfsd_vm_runs_here(d, path)))
		return 0;
	snprintf(w->c[w->n].path, sizeof(w->c[w->n].path), "%s", path);
	w->c[w->n].s = *s;
	w->c[w->n].moved = moved;
	return ++w->n == HA_CANDIDATES_MAX;
}

static int ha_cand_cmp(const void *a, const void *b)
{
	const struct ha_cand *x = a, *y = b;

	if (x->s.priority != y->s.priority)
		return x->s.priority > y->s.priority ? -1 : 1;
	return strcmp(x->path, y->path);
}

/*
 * The placement every survivor computes alike: c[] in restart order, each
 * to the host (a live slot that advertises memory) with the most left
 * after the VMs before it; ties to the lower slot.  c[i].to is that
 * host's slot, HA_NOBODY when none has room.
 */
static void ha_assign(struct vmfsd_ha *ha, struct ha_cand *c, unsigned n)
{
	uint64_t *left = calloc(ha->nsi ? ha->nsi : 1, sizeof(*left));

	for (uint32_t j = 0; left && j < ha->nsi; j++)
		left[j] = ha->si[j].state == VMFS_HB_ACTIVE ?
			  ha->si[j].vm_free_mib : 0;
	for (unsigned i = 0; i < n; i++) {
		uint32_t best = HA_NOBODY;

		for (uint32_t j = 0; left && j < ha->nsi; j++)
			if (left[j] && left[j] >= c[i].s.memory_mib &&
			    (best == HA_NOBODY || left[j] > left[best]))
				best = j;   /* slots come in order: ties stay */
		c[i].to = best == HA_NOBODY ? HA_NOBODY : ha->si[best].slot;
		if (best != HA_NOBODY)
			left[best] -= c[i].s.memory_mib;
	}
	free(left);
}

/* The name of the host in slot, from the last read of the slots. */
static const char *ha_slot_name(struct vmfsd_ha *ha, uint32_t slot)
{
	for (uint32_t j = 0; j < ha->nsi; j++)
		if (ha->si[j].slot == slot)
			return ha->si[j].hostname[0] ? ha->si[j].hostname : "?";
	return "?";
}

/* 1: restarted here; 0: left to others; -EBUSY: its lock was taken by
 * another host (a winner, or only other survivors looking at it at the
 * same moment: the next scan tells). */
static int ha_restart(struct vmfsd_ha *ha, struct ha_cand *c)
{
	struct vmfsd *d = ha->d;
	char vmdir[PATH_MAX * 2], msg[VMFSD_MSG_MAX], err[256];
	struct hv_ha_state now, from;
	struct timespec ts;
	uint64_t avail;
	int64_t t0 = vmfs_mono_ms();
	int ret;

	snprintf(vmdir, sizeof(vmdir), "%s%s", d->a->mountpoint, c->path);
	/* Another survivor may have won meanwhile: it rewrote the record. */
	if (!vmfsd_mio_ha_read(vmdir, &now, err, sizeof(err)) &&
	    strcmp(now.host_uuid, c->s.host_uuid)) {
		ha_event(ha, LOG_NOTICE, "VM %s: restarted by host %s already; "
			 "leaving it", c->path, now.host_name[0] ?
			 now.host_name : now.host_uuid);
		return 0;
	}
	if (c->moved && !now.moving_uuid[0]) {
		ha_event(ha, LOG_NOTICE, "VM %s: its migration to host %s ended "
			 "and it runs on host %s; leaving it", c->path,
			 c->s.moving_name, now.host_name);
		return 0;
	}
	avail = ha_free_mib(ha);
	if (c->s.memory_mib > avail) {
		ha_event(ha, LOG_NOTICE, "VM %s needs %llu MiB, this host has "
			 "%llu MiB available: leaving it to the others", c->path,
			 (unsigned long long)c->s.memory_mib,
			 (unsigned long long)avail);
		if (!ha->scan_need_mib || c->s.memory_mib < ha->scan_need_mib)
			ha->scan_need_mib = c->s.memory_mib;
		return 0;
	}
	memset(&from, 0, sizeof(from));
	snprintf(from.from_uuid, sizeof(from.from_uuid), "%s",
		 c->moved ? c->s.moving_uuid : c->s.host_uuid);
	snprintf(from.from_name, sizeof(from.from_name), "%s",
		 c->moved ? c->s.moving_name : c->s.host_name);
	snprintf(from.why, sizeof(from.why), "%.250s", ha->why);
	clock_gettime(CLOCK_REALTIME, &ts);
	from.restarted_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	ret = vmfsd_vm_start(d, c->path, &from, msg, sizeof(msg));
	if (!ret) {
		ha->placed_mib += c->s.memory_mib;
		ha->placed_ms = vmfs_mono_ms();
		ha->room_looks = 0;
		ha->room_after_ms = 0;
		ha_event(ha, LOG_NOTICE, "restarted VM %s (priority %u) here, in "
			 "%lld ms: it ran on host %s; %s", c->path,
			 c->s.priority, (long long)(vmfs_mono_ms() - t0),
			 from.from_name[0] ? from.from_name : from.from_uuid,
			 ha->why);
		return 1;
	}
	if (ret == -EBUSY) {
		ha_event(ha, LOG_NOTICE, "VM %s: its lock is taken elsewhere "
			 "(%s); looking again shortly", c->path, msg);
		return -EBUSY;
	}
	ha_event(ha, LOG_WARNING, "cannot restart VM %s here: %s",
		 c->path, msg[0] ? msg : vmfs_strerror(ret));
	return 0;
}

/* After a scan: what it left for lack of memory, and what every host
 * advertised meanwhile. */
static void ha_left_note(struct vmfsd_ha *ha)
{
	ha->left_need_mib = ha->scan_need_mib;
	ha->nleft_room = 0;
	free(ha->left_room);
	ha->left_room = NULL;
	if (!ha->left_need_mib || !ha->nsi)
		return;
	ha->left_room = calloc(ha->nsi, sizeof(*ha->left_room));
	if (!ha->left_room) {
		ha->left_need_mib = 0;
		return;
	}
	for (uint32_t j = 0; j < ha->nsi; j++)
		ha->left_room[ha->nleft_room++] = (struct ha_room){
			.slot = ha->si[j].slot, .mib = ha->si[j].vm_free_mib };
}

/*
 * Does a host now advertise more memory than it did since VMs were left
 * for lack of it, and enough for the smallest of them?  Its name into
 * who.  The figures kept are the lowest seen since (a slot shows a VM
 * started in the same scan only at its next renewal).
 */
static bool ha_room_appeared(struct vmfsd_ha *ha, const char **who)
{
	for (uint32_t j = 0; ha->left_need_mib && j < ha->nsi; j++) {
		const struct hb_slot_info *s = &ha->si[j];
		struct ha_room *r = NULL;

		if (s->state != VMFS_HB_ACTIVE)
			continue;
		for (uint32_t k = 0; k < ha->nleft_room && !r; k++)
			if (ha->left_room[k].slot == s->slot)
				r = &ha->left_room[k];
		if (r && s->vm_free_mib <= r->mib) {
			r->mib = s->vm_free_mib;
			continue;
		}
		if (s->vm_free_mib >= ha->left_need_mib) {
			*who = s->hostname[0] ? s->hostname : "?";
			return true;
		}
	}
	return false;
}

static void ha_scan(struct vmfsd_ha *ha)
{
	struct ha_cand *c = calloc(HA_CANDIDATES_MAX, sizeof(*c));
	uint32_t me = hb_slot_index(ha->d->hb);
	unsigned n = 0, others = 0;
	bool busy = false;

	if (!c)
		return;
	ha->scan_need_mib = 0;
	{
		struct ha_walk w = { .ha = ha, .c = c };
		int ret = vmfsd_mio_ha_walk(ha->d->a->mountpoint, ha_walk_one,
					    &w);

		if (ret)
			qb_log(LOG_WARNING, "HA: cannot walk %s for run "
			       "records: %s", ha->d->a->mountpoint,
			       vmfs_strerror(ret));
		n = w.n;
	}
	if (n)
		ha_event(ha, LOG_NOTICE, "%u HA VM%s to restart (%s)%s", n,
			 n == 1 ? "" : "s", ha->why, ha->fallback ?
			 "; trying every one not restarted yet" : "");
	else
		ha_event(ha, LOG_NOTICE, "no HA VM left to restart (%s): none "
			 "should run on a host that is gone", ha->why);
	qsort(c, n, sizeof(*c), ha_cand_cmp);
	ha_assign(ha, c, n);
	for (unsigned i = 0; i < n && !ha->d->fenced && !ha->d->stopping; i++) {
		int r;

		if (!ha->fallback) {
			if (c[i].to == HA_NOBODY)
				ha_event(ha, LOG_NOTICE, "placement: VM %s "
					 "(%llu MiB): no host advertises room "
					 "for it", c[i].path, (unsigned long long)
					 c[i].s.memory_mib);
			else
				ha_event(ha, LOG_NOTICE, "placement: VM %s "
					 "(%llu MiB) to host %s", c[i].path,
					 (unsigned long long)c[i].s.memory_mib,
					 ha_slot_name(ha, c[i].to));
			if (c[i].to != me) {
				others++;
				continue;
			}
		}
		r = ha_restart(ha, &c[i]);
		busy |= r == -EBUSY;
	}
	ha_left_note(ha);
	/* VMs placed elsewhere: tried here later if still not running. */
	if (others && !ha->d->fenced && !ha->d->stopping) {
		ha->scan = true;
		ha->fallback = true;
		ha->due_ms = vmfs_mono_ms() + ha_fallback_ms(ha);
	}
	/*
	 * A lock taken elsewhere is a winner's, or only other survivors'
	 * looking at the VM at the same moment (reading its config takes
	 * the lock READONLY): scan again after a random pause, a bounded
	 * number of times.  Once a winner runs the VM its record names a
	 * live host and the scan finds nothing more to do.
	 */
	if (busy && !ha->scan && ha->busy_retries < HA_BUSY_RETRIES) {
		ha->busy_retries++;
		ha->scan = true;
		ha->due_ms = vmfs_mono_ms() + 500 + random() % 1500;
	}
	free(c);
}

static void ha_tick(void *data)
{
	struct vmfsd_ha *ha = data;
	struct vmfsd *d = ha->d;

	ha->timer_set = false;
	if (d->fenced || d->stopping)
		return;
	hb_set_vm_free(d->hb, ha_free_mib(ha));
	ha_survey(ha);
	if (!ha->scan && ha->left_need_mib &&
	    vmfs_mono_ms() >= ha->room_after_ms) {
		const char *who;

		if (ha_room_appeared(ha, &who)) {
			int64_t wait = (int64_t)HA_ROOM_AFTER_MS <<
				       (ha->room_looks < 5 ? ha->room_looks : 5);

			ha->room_looks++;
			ha->room_after_ms = vmfs_mono_ms() +
				(wait < HA_ROOM_MAX_MS ? wait : HA_ROOM_MAX_MS);
			ha_event(ha, LOG_NOTICE, "host %s has room now for an HA "
				 "VM left stopped for lack of memory (the "
				 "smallest needs %llu MiB): looking again", who,
				 (unsigned long long)ha->left_need_mib);
			ha->left_need_mib = 0;
			ha->scan = true;
			ha->fallback = false;
			ha->due_ms = vmfs_mono_ms();
			ha->busy_retries = 0;
		}
	}
	if (ha->scan && vmfs_mono_ms() >= ha->due_ms) {
		struct cn_view v;

		if (d->cn)
			cn_view_get(d->cn, &v);
		/* No walk of the datastore just to say whether anything
		 * waits: the walk comes once there is quorum. */
		if (d->cn && !v.quorate) {
			if (!ha->said_no_quorum && v.up)
				ha_event(ha, LOG_WARNING, "the cluster has no "
					 "quorum here: restarting no VM until "
					 "it has (%s)", ha->why);
			else if (!ha->said_no_quorum)
				ha_event(ha, LOG_NOTICE, "this host is not in "
					 "the cluster group (%s): it restarts "
					 "no VM of another host until it is "
					 "(%s)", v.why, ha->why);
			ha->said_no_quorum = true;
		} else {
			ha->said_no_quorum = false;
			ha->scan = false;
			ha_scan(ha);
		}
	}
	if (!d->fenced && !d->stopping &&
	    !qb_loop_timer_add(d->loop, QB_LOOP_LOW, HA_TICK_MS * 1000000ull,
			       ha, ha_tick, &ha->timer))
		ha->timer_set = true;
}

void vmfsd_ha_start(struct vmfsd *d)
{
	struct vmfsd_ha *ha;
	struct vol_geom g;

	if (d->a->ro || !d->vol || !d->hb)
		return;
	ha = calloc(1, sizeof(*ha));
	if (!ha)
		return;
	vol_geom_get(d->vol, &g);
	ha->d = d;
	ha->max = g.max_hosts;
	ha->si = calloc(ha->max, sizeof(*ha->si));
	if (!ha->si ||
	    qb_loop_timer_add(d->loop, QB_LOOP_LOW, HA_TICK_MS * 1000000ull, ha,
			      ha_tick, &ha->timer)) {
		qb_log(LOG_ERR, "HA: cannot start the agent: out of memory; this "
		       "host restarts no VM of another");
		free(ha->si);
		free(ha);
		return;
	}
	ha->timer_set = true;
	d->ha = ha;
	hb_set_vm_free(d->hb, ha_free_mib(ha));
}

void vmfsd_ha_stop(struct vmfsd *d)
{
	struct vmfsd_ha *ha = d->ha;

	if (!ha)
		return;
	if (ha->timer_set)
		qb_loop_timer_del(d->loop, ha->timer);
	free(ha->present);
	free(ha->si);
	free(ha->left_room);
	free(ha);
	d->ha = NULL;
}

void vmfsd_ha_events(struct vmfsd *d, char *out, size_t len)
{
	struct vmfsd_ha *ha = d->ha;

	if (len)
		out[0] = 0;
	for (unsigned i = 0; ha && i < ha->nevents; i++)
		snprintf(out + strlen(out), len - strlen(out), "%s\n",
			 ha->events[i]);
}
