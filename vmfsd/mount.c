/*
 * vmfsd's mount sequence and its undoing: check the mount point, open the
 * LUN, read the volume header, claim the volume in the host state DB,
 * make sure no other host serves it, take a heartbeat slot, open the
 * volume (replaying journals) and mount it through FUSE; at the end,
 * unmount, close, leave the heartbeat and release the claim, in that
 * order, keeping the first failure for whoever asked for the unmount.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include "vmfs/log.h"

#include "vmfs/format.h"
#include "vmfs/fuse.h"
#include "vmfs/journal.h"
#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"
#include "vmfs/version.h"
#include "vmfs/vmfsd.h"
#include "vmfs/vol.h"
#include "vmfsd_int.h"


/* Say why we cannot serve, to the log and to whoever waits for us. */
void vmfsd_fail(struct vmfsd *d, const char *fmt, ...)
{
	char msg[VMFSD_MSG_MAX], line[VMFSD_MSG_MAX + 16];
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	qb_log(LOG_WARNING, "%s", msg);
	vmfsd_notify_status("cannot mount: %s", msg);
	if (d->a->ready_fd >= 0) {
		n = snprintf(line, sizeof(line), "error: %s\n", msg);
		vmfsd_write_all(d->a->ready_fd, line,
				(size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
		close(d->a->ready_fd);
		d->a->ready_fd = -1;
	}
}

void vmfsd_ready(struct vmfsd *d)
{
	vmfsd_notify_ready(d->a->mountpoint, d->uuid, d->a->ro);
	if (d->a->ready_fd < 0)
		return;
	vmfsd_write_all(d->a->ready_fd, "ok\n", 3);
	close(d->a->ready_fd);
	d->a->ready_fd = -1;
}

/* Major format version in the primary header, for the upgrade message. */
static unsigned vmfsd_disk_major(struct lun *lun)
{
	struct vmfs_volume vh;
	unsigned major = 0;
	void *buf;

	buf = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	if (!buf)
		return 0;
	if (lun_read(lun, buf, VMFS_MD_BLOCK_SIZE, 0) == 0) {
		struct fmt_hdr h;

		memcpy(&vh, buf, sizeof(vh));
		fmt_hdr_decode(&vh.vh_hdr, &h);
		major = h.major;
	}
	lun_buf_free(buf);
	return major;
}

static int vmfsd_read_header(struct vmfsd *d, struct vol_geom *g)
{
	const char *lun = d->a->lun;
	uint32_t magic = 0;
	int ret;

	ret = vol_geom_read(d->lun, g, NULL, &magic);
	if (ret == -VMFS_E_NOT_VOLUME)
		vmfsd_fail(d, "%s is not a vmfs volume (bad magic 0x%08x at "
			   "offset 0); run 'vmfs mkfs %s' to create one",
			   lun, magic, lun);
	else if (ret == -VMFS_E_BAD_VERSION)
		vmfsd_fail(d, "volume format is newer than this vmfsd "
			   "understands (major %u); upgrade vmfs",
			   vmfsd_disk_major(d->lun));
	else if (ret)
		vmfsd_fail(d, "cannot read the volume header of %s: %s; run "
			   "'vmfs fsck %s'", lun, vmfs_strerror(ret), lun);
	return ret;
}

static int vmfsd_claim(struct vmfsd *d)
{
	struct vmfsd_mount_rec rec, existing;
	uint8_t hu[VMFS_UUID_SIZE];
	struct timespec now;
	int ret;

	ret = vmfsd_host_open(d->a->state_dir, &d->host);
	if (ret) {
		vmfsd_fail(d, "cannot open the host state in %s: %s",
			   d->a->state_dir, vmfs_strerror(ret));
		return ret;
	}
	vmfsd_host_uuid(d->host, hu);
	vol_uuid_format(hu, d->host_uuid);

	memset(&rec, 0, sizeof(rec));
	snprintf(rec.vol_uuid, sizeof(rec.vol_uuid), "%s", d->uuid);
	snprintf(rec.lun, sizeof(rec.lun), "%s", d->a->lun);
	snprintf(rec.mountpoint, sizeof(rec.mountpoint), "%s", d->a->mountpoint);
	rec.pid = getpid();
	clock_gettime(CLOCK_REALTIME, &now);
	rec.since_ns = (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
	d->since_ns = rec.since_ns;

	ret = vmfsd_host_claim(d->host, &rec, &existing);
	if (ret == -EBUSY) {
		char pid[24] = "unknown";

		if (existing.pid > 0)
			snprintf(pid, sizeof(pid), "%ld", (long)existing.pid);
		vmfsd_fail(d, "volume %s (%s) is already mounted by this host "
			   "on %s (vmfsd pid %s)", d->uuid, d->a->lun,
			   existing.mountpoint[0] ? existing.mountpoint : "?",
			   pid);
	} else if (ret) {
		vmfsd_fail(d, "cannot record the mount of volume %s in %s: %s",
			   d->uuid, d->a->state_dir, vmfs_strerror(ret));
	} else {
		d->claimed = true;
	}
	return ret;
}

/*
 * Who this host says it is: --host-name (stored for later mounts, a
 * different one renaming the host), else the stored name, else the
 * machine's hostname, which is not stored so that it follows the machine.
 * Runs after the claim, so that a refused mount renames nothing.
 */
static int vmfsd_name_host(struct vmfsd *d)
{
	const char *stored = vmfsd_host_name(d->host);
	char old[VMFSD_HOST_NAME_MAX + 1];
	int ret;

	if (!d->a->host_name[0]) {
		if (stored[0])
			snprintf(d->host_name, sizeof(d->host_name), "%s", stored);
		else if (gethostname(d->host_name, sizeof(d->host_name) - 1))
			d->host_name[0] = '\0';
		return 0;
	}
	snprintf(d->host_name, sizeof(d->host_name), "%s", d->a->host_name);
	if (!strcmp(stored, d->a->host_name))
		return 0;
	snprintf(old, sizeof(old), "%s", stored);
	ret = vmfsd_host_set_name(d->host, d->a->host_name);
	if (ret) {
		vmfsd_fail(d, "cannot store host name %s in %s: %s",
			   d->a->host_name, d->a->state_dir, vmfs_strerror(ret));
		return ret;
	}
	if (old[0])
		qb_log(LOG_NOTICE, "host %s renamed from %s to %s (--host-name); "
		       "volumes it has mounted show the new name from their "
		       "next mount", d->host_uuid, old, d->host_name);
	else
		qb_log(LOG_INFO, "host %s named %s", d->host_uuid, d->host_name);
	return 0;
}

static int vmfsd_check_mountpoint(struct vmfsd *d)
{
	const char *mp = d->a->mountpoint;
	char real[PATH_MAX];
	struct stat st;

	if (stat(mp, &st)) {
		if (errno == ENOENT)
			vmfsd_fail(d, "mount point %s does not exist; create it "
				   "with mkdir -p %s", mp, mp);
		else
			vmfsd_fail(d, "mount point %s: %s", mp, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		vmfsd_fail(d, "mount point %s is not a directory", mp);
		return -1;
	}
	/* The host state records the canonical path; `vmfs umount` finds it. */
	if (realpath(mp, real))
		snprintf(d->a->mountpoint, sizeof(d->a->mountpoint), "%s", real);
	return 0;
}

/*
 * The heartbeat fenced both handles (its own and the data handle, its
 * gate_lun), so nothing this host still has queued reaches the volume:
 * its renewal failed or lost the slot, or the lease ran out before a
 * renewal or a write (the host was stopped).  Every FUSE call that
 * reaches the volume fails with EIO from here on (answers from caches are
 * at worst stale); the admin unmounts and mounts again.  Runs on the
 * heartbeat's thread or on the FUSE or journal thread whose write found
 * the lease run out.
 */
static void vmfsd_on_fence(void *ctx, const char *why)
{
	struct vmfsd *d = ctx;

	snprintf(d->fence_why, sizeof(d->fence_why), "%s", why);
	d->fenced = true;
	/* Before any other host may break their locks (once our lease has
	 * run out), this host's VMs are gone; then the admin is told, before
	 * anything that waits for another thread's lock. */
	vmfsd_vms_kill_all(d);
	qb_log(LOG_CRIT, "volume %s fenced: %s; all I/O now fails, unmount "
	       "and mount again once the LUN is reachable", d->uuid, why);
	pthread_mutex_lock(&d->fence_mu);
	if (d->vol_live)
		vol_cluster_fenced(d->vol);
	pthread_mutex_unlock(&d->fence_mu);
	vmfsd_notify_status("FENCED: %s; all I/O fails, unmount and mount "
			    "again", why);
}

/*
 * A read-only host takes no locks, so it may not look at a volume that
 * other hosts change: refuse while another host's heartbeat is live.
 * Slots of other hosts are watched only when one is active (a lease and a
 * renewal); a crashed host's slot stops moving and does not block.
 */
static int vmfsd_single_host(struct vmfsd *d, const struct vol_geom *g,
			     const uint8_t *hu)
{
	struct hb_slot_info *si = calloc(g->max_hosts, sizeof(*si));
	bool others = false;
	uint32_t n, i;
	int ret;

	if (!si)
		return -ENOMEM;
	ret = hb_survey(d->hb_lun, g->hb_offset, false, si, g->max_hosts, &n);
	for (i = 0; !ret && i < n; i++)
		others |= memcmp(si[i].host_uuid, hu, VMFS_UUID_SIZE) != 0;
	if (!ret && others) {
		qb_log(LOG_INFO, "another host holds a heartbeat slot of volume "
		       "%s; checking whether it is alive", d->uuid);
		ret = hb_survey(d->hb_lun, g->hb_offset, true, si,
				g->max_hosts, &n);
	}
	for (i = 0; !ret && i < n; i++) {
		char u[37];

		if (!si[i].live || !memcmp(si[i].host_uuid, hu, VMFS_UUID_SIZE))
			continue;
		vol_uuid_format(si[i].host_uuid, u);
		if (d->a->ro)
			vmfsd_fail(d, "volume %s is mounted by host %s (%s, "
				   "heartbeat slot %u, live); a read-only mount "
				   "cannot share a volume with read-write hosts "
				   "yet: mount it read-write, or unmount it there "
				   "first", d->uuid, u,
				   si[i].hostname[0] ? si[i].hostname : "?",
				   si[i].slot);
		else
			vmfsd_fail(d, "volume %s is mounted read-only by host %s "
				   "(%s, heartbeat slot %u, live); read-write "
				   "hosts cannot share it with read-only ones yet: "
				   "unmount it there first", d->uuid,
				   si[i].hostname[0] ? si[i].hostname : "?", u,
				   si[i].slot);
		ret = -EBUSY;
	}
	if (ret && ret != -EBUSY)
		vmfsd_fail(d, "cannot read the heartbeat region of volume %s: "
			   "%s; run 'vmfs fsck %s'", d->uuid, vmfs_strerror(ret),
			   d->a->lun);
	free(si);
	return ret;
}

/*
 * This host's own slot left ACTIVE (or half-recovered) by a crash: the
 * host state lock guarantees no other process of ours runs, so recover
 * it at once, like any survivor would (mark it being-replayed, replay its
 * journal, free it) before joining again.  Its old locks then name a slot
 * that moved on and are broken by whoever needs them.
 */
static int vmfsd_recover_self(struct vmfsd *d, const struct vol_geom *g,
			      const uint8_t *hu)
{
	struct hb_slot_info *si = calloc(g->max_hosts, sizeof(*si));
	struct hb_timeouts t;
	unsigned prim = lock_prim_pick(d->hb_lun, d->a->lock_prim);
	uint32_t n, i;
	int ret;

	if (!si)
		return -ENOMEM;
	ret = hb_survey(d->hb_lun, g->hb_offset, false, si, g->max_hosts, &n);
	for (i = 0; !ret && i < n; i++) {
		if (memcmp(si[i].host_uuid, hu, VMFS_UUID_SIZE) ||
		    si[i].state == VMFS_HB_FREE)
			continue;
		if (!prim) {
			ret = -EOPNOTSUPP;
			break;
		}
		hb_timeouts_from_lease(si[i].lease_ms, &t);
		qb_log(LOG_NOTICE, "heartbeat slot %u of volume %s is this "
		       "host's, left by a crash: recovering it before joining",
		       si[i].slot, d->uuid);
		ret = vol_recover_slot(d->lun, d->hb_lun, g, prim, &t, &si[i]);
		if (ret == -VMFS_E_MISCOMPARE)
			ret = 0;   /* another host recovered it meanwhile */
	}
	if (ret)
		vmfsd_fail(d, "cannot recover this host's crashed heartbeat slot "
			   "of volume %s: %s; run 'vmfs fsck %s'", d->uuid,
			   vmfs_strerror(ret), d->a->lun);
	free(si);
	return ret;
}

/* The volume lock's mode as on disk now (FREE when it cannot be read:
 * taking it says why later). */
static enum vmfs_lock_mode vmfsd_volume_lock_mode(struct vmfsd *d,
						  const struct vol_geom *g)
{
	uint8_t *buf = lun_buf_alloc(VMFS_MD_BLOCK_SIZE);
	struct lock_state st;
	enum vmfs_lock_mode m = VMFS_LOCK_FREE;

	if (buf && !lun_read(d->hb_lun, buf, VMFS_MD_BLOCK_SIZE, g->hb_offset) &&
	    !lock_state_from_disk(buf, g->hb_offset, &st))
		m = st.mode;
	lun_buf_free(buf);
	return m;
}

/*
 * Open the heartbeat's own LUN handle.  A read-write host shares the
 * volume with every other read-write host (the volume lock and the
 * per-object locks, vol/cluster.c); a read-only host still refuses while
 * another host is live, since it takes no per-object locks, and a
 * read-write host refuses while a read-only one holds the volume lock,
 * before it writes anything (docs/OPERATIONS.md).
 */
static int vmfsd_hb_check(struct vmfsd *d, const struct vol_geom *g)
{
	uint8_t hu[VMFS_UUID_SIZE];
	int ret;

	ret = lun_open(d->a->lun, 0, &d->hb_lun);
	if (ret) {
		vmfsd_fail(d, "cannot open LUN %s: %s", d->a->lun,
			   vmfs_strerror(ret));
		return ret;
	}
	vmfsd_host_uuid(d->host, hu);
	if (d->a->ro || vmfsd_volume_lock_mode(d, g) == VMFS_LOCK_READONLY)
		ret = vmfsd_single_host(d, g, hu);
	if (!ret && !d->a->ro)
		ret = vmfsd_recover_self(d, g, hu);
	return ret;
}

/*
 * A read-only host holds the volume lock READONLY for as long as it is
 * mounted, so that no read-write host starts changing what it reads
 * (vol_cluster_start refuses then); it is the one thing besides its
 * heartbeat slot that it writes (docs/OPERATIONS.md).
 */
/* The liveness oracle of a read-only host's volume lock: vmfsd_single_host
 * has just watched every other slot and found none live, and every
 * journal is clean (vol_open refuses otherwise), so what still holds the
 * lock is a crashed host with nothing left to write. */
static int vmfsd_none_live(void *arg, const struct lock_holder *h)
{
	(void)arg;
	(void)h;
	return 0;
}

static int vmfsd_ro_lock(struct vmfsd *d, const struct vol_geom *g)
{
	struct lock_host host;
	struct lock_state st;
	int ret;

	memset(&host, 0, sizeof(host));
	vmfsd_host_uuid(d->host, host.self.uuid);
	host.self.slot = hb_slot_index(d->hb);
	host.self.hb_gen = hb_generation(d->hb);
	host.is_live = vmfsd_none_live;
	ret = lock_ctx_open(d->hb_lun, &host, d->lock_prim, &d->ro_lk);
	if (!ret)
		ret = lock_acquire(d->ro_lk, g->hb_offset, VMFS_LOCK_READONLY,
				   0, &st);
	/* A record changed since (a host mounting now) miscompares: refused. */
	if (ret == -EBUSY && !lock_break(d->ro_lk, &st, NULL))
		ret = lock_acquire(d->ro_lk, g->hb_offset, VMFS_LOCK_READONLY,
				   0, &st);
	if (ret == -EBUSY)
		vmfsd_fail(d, "volume %s is mounted read-write by another host "
			   "(it holds the volume lock); unmount it there first, "
			   "or mount read-write", d->uuid);
	else if (ret)
		vmfsd_fail(d, "cannot take the volume lock of %s read-only: %s",
			   d->uuid, vmfs_strerror(ret));
	if (!ret)
		d->ro_locked = g->hb_offset + 1;
	return ret;
}

/* Asks on the disk (PROTOCOL.md §9a): unless --disk-asks off; a
 * read-only host takes no locks, so it neither asks nor is asked. */
static bool vmfsd_disk_asks(const struct vmfsd *d)
{
	return !d->a->no_disk_asks && !d->a->ro;
}

/* Share the volume: the volume lock, and the watcher of other hosts. */
static int vmfsd_cluster(struct vmfsd *d, const struct vol_geom *g)
{
	struct vol_cluster_opts co;
	uint8_t hu[VMFS_UUID_SIZE];
	char why[600] = "";
	int ret;

	vmfsd_notify_status("taking the volume lock of %s", d->uuid);
	vmfsd_host_uuid(d->host, hu);
	memset(&co, 0, sizeof(co));
	co.hb_lun = d->hb_lun;
	co.lock_lun = d->lun;      /* gated like every write of the volume */
	co.hb_offset = g->hb_offset;
	co.host_uuid = hu;
	co.my_slot = hb_slot_index(d->hb);
	co.my_hb_gen = hb_generation(d->hb);
	co.prim = d->lock_prim;
	if (vmfsd_disk_asks(d))
		co.hb = d->hb;
	hb_timeouts_get(d->hb, &co.t);
	co.why = why;
	co.why_len = sizeof(why);
	ret = vol_cluster_start(d->vol, &co);
	if (ret == -EROFS)
		vmfsd_fail(d, "volume %s is mounted read-only by %s; read-write "
			   "hosts cannot share it with read-only ones yet: "
			   "unmount it there first", d->uuid, why);
	else if (ret == -EBUSY)
		vmfsd_fail(d, "cannot take the volume lock of %s: other hosts "
			   "hold it and did not let go within %u s; see 'vmfs "
			   "hosts %s' and the other hosts' logs", d->uuid,
			   (2 * co.t.dead_ms + co.t.lease_ms) / 1000, d->a->lun);
	else if (ret)
		vmfsd_fail(d, "cannot take the volume lock of %s: %s; run "
			   "'vmfs fsck %s'", d->uuid, vmfs_strerror(ret),
			   d->a->lun);
	if (!ret) {
		pthread_mutex_lock(&d->fence_mu);
		d->vol_live = true;
		pthread_mutex_unlock(&d->fence_mu);
	}
	return ret;
}

/*
 * Storage fencing (docs/PROTOCOL.md "Storage fencing"): register this
 * host's key, made of its uuid and the generation of the slot it just
 * took, on both its handles; a survivor that recovers it preempts that
 * key.  A LUN without persistent reservations (a file) has none: the
 * host fences itself, as ever.  The registration is made once per mount,
 * on handles opened for this mount, right after the slot was claimed as
 * this host's; a preempted handle never registers again.
 */
static int vmfsd_fence_register(struct vmfsd *d)
{
	struct lun_probe p, dp;
	uint8_t hu[VMFS_UUID_SIZE];
	uint64_t key;
	int ret;

	vmfsd_host_uuid(d->host, hu);
	key = lun_pr_key(hu, hb_generation(d->hb));
	ret = lun_pr_register(d->hb_lun, key);
	if (!ret && !d->a->ro)
		ret = lun_pr_register(d->lun, key);
	if (ret == -EOPNOTSUPP) {
		qb_log(LOG_INFO, "storage fencing: LUN %s has no persistent "
		       "reservations; this host fences itself", d->a->lun);
		return 0;
	}
	if (ret) {
		vmfsd_fail(d, "cannot register this host's persistent-"
			   "reservation key on %s: %s", d->a->lun,
			   vmfs_strerror(ret));
		return ret;
	}
	qb_log(LOG_NOTICE, "storage fencing: key 0x%016llx registered on %s "
	       "(Write Exclusive - Registrants Only); a host that recovers "
	       "this one preempts it", (unsigned long long)key, d->a->lun);
	lun_describe(d->hb_lun, &p);
	if (d->lock_prim == LOCK_PRIM_RESERVE && p.reserve_how &&
	    !strncmp(p.reserve_how, "SCSI-2", 6))
		qb_log(LOG_WARNING, "locks on %s go through SCSI-2 RESERVE(6), "
		       "which stalls every other host's I/O while held and "
		       "which a fenced host can still take: give the URL a lock "
		       "LUN (?lock_lun=N, docs/OPERATIONS.md \"An iSCSI LUN\")",
		       d->a->lun);
	lun_describe(d->lun, &dp);
	/* Which handle a lock-LU hold key names: a waiter that gave up
	 * logs the key it saw longest (lun/iscsi_pr.c). */
	if (p.lock_key_bits || dp.lock_key_bits)
		qb_log(LOG_INFO, "lock LU hold keys of this host carry handle "
		       "bits 0x%07" PRIx32 " (heartbeat) and 0x%07" PRIx32
		       " (data)", p.lock_key_bits, dp.lock_key_bits);
	return 0;
}

/* Take a heartbeat slot (vmfsd_hb_check first). */
static int vmfsd_join(struct vmfsd *d, const struct vol_geom *g)
{
	struct hb_timeouts t;
	struct hb_opts o;
	uint8_t hu[VMFS_UUID_SIZE];
	int ret;

	vmfsd_notify_status("joining the heartbeat of volume %s", d->uuid);
	vmfsd_host_uuid(d->host, hu);
	memset(&o, 0, sizeof(o));
	o.host_uuid = hu;
	o.hostname = d->host_name;
	o.prim = d->a->lock_prim;
	o.journal_offset = g->journal_offset;
	o.journal_size = g->journal_size_bytes;
	o.lease_ms = d->a->lease_ms;
	o.gate_lun = d->lun;
	o.asks = vmfsd_disk_asks(d);
	o.on_fence = vmfsd_on_fence;
	o.ctx = d;
	ret = hb_join(d->hb_lun, g->hb_offset, &o, &d->hb);
	if (ret == -EUSERS) {
		vmfsd_fail(d, "all %u host slots of volume %s are in use by "
			   "live or crashed hosts; unmount it elsewhere, or run "
			   "'vmfs fsck' to free the slots of hosts that are gone",
			   g->max_hosts, d->uuid);
		return ret;
	}
	if (ret == -EOPNOTSUPP && o.prim) {
		vmfsd_fail(d, "LUN %s does not support %s, which --lock-primitive "
			   "%s forces; mount with --lock-primitive auto to use "
			   "what the LUN has", d->a->lun,
			   o.prim == LOCK_PRIM_ATS ? "COMPARE AND WRITE (ATS)" :
			   "SCSI-2 RESERVE/RELEASE", lock_prim_name(o.prim));
		return ret;
	}
	if (ret == -EOPNOTSUPP) {
		vmfsd_fail(d, "LUN %s supports neither COMPARE AND WRITE nor "
			   "RESERVE/RELEASE, so no host can lock anything on it; "
			   "serve it from a target that has one of them",
			   d->a->lun);
		return ret;
	}
	if (ret) {
		vmfsd_fail(d, "cannot join the heartbeat of volume %s: %s",
			   d->uuid, vmfs_strerror(ret));
		return ret;
	}
	d->lock_prim = hb_primitive(d->hb);
	hb_timeouts_get(d->hb, &t);
	lun_set_io_timeout(d->hb_lun, t.io_timeout_ms);
	lun_set_io_timeout(d->lun, t.data_io_timeout_ms);
	/* Its lock changes hold the mutex the renewals need: heartbeat
	 * timing for them (a hold it leaves is broken in time). */
	lun_set_lock_io_timeout(d->lun, t.io_timeout_ms);
	qb_log(LOG_INFO, "heartbeat slot %u generation %llu through %s: lease "
	       "%u ms, renew %u ms, I/O timeout %u ms (data %u ms), writes "
	       "stop %u ms after the start of the last renewal",
	       hb_slot_index(d->hb), (unsigned long long)hb_generation(d->hb),
	       lock_prim_name(d->lock_prim), t.lease_ms, t.renew_ms,
	       t.io_timeout_ms, t.data_io_timeout_ms, t.fence_ms);
	return vmfsd_fence_register(d);
}

/*
 * A read-write host replays its own slot's journal (clean after
 * vmfsd_recover_self) and journals into it.  A read-only host replays
 * nothing and has no journal: it refuses a volume with transactions to
 * replay.
 */
static int vmfsd_open_vol(struct vmfsd *d)
{
	struct vol_open_opts oo = { 0 };
	int ret;

	vmfsd_notify_status("opening volume %s%s", d->uuid, d->a->ro ? "" :
			    " (replaying any journal a crash left)");
	/* Read-write: our own journal only; other hosts' are recovered
	 * through their slots. */
	oo.flags = d->a->ro ? VOL_RDONLY : VOL_OWN_JOURNAL;
	oo.journal_slot = d->a->ro ? 0 : hb_slot_index(d->hb);
	oo.commit_ms = d->a->commit_ms;
	oo.cache_bytes = d->a->cache_bytes;
	ret = vol_open_ex(d->lun, &oo, &d->vol);
	if (ret == -VMFS_E_JNL_DIRTY && d->a->ro)
		vmfsd_fail(d, "volume %s on %s has journal transactions to "
			   "replay, which a read-only mount cannot write: mount "
			   "it read-write once (and unmount it), or run 'vmfs "
			   "journal replay %s' or 'vmfs fsck -y %s', then mount "
			   "it read-only again", d->uuid, d->a->lun, d->a->lun,
			   d->a->lun);
	else if (ret)
		vmfsd_fail(d, "cannot open volume %s on %s: %s; run 'vmfs fsck "
			   "%s'", d->uuid, d->a->lun, vmfs_strerror(ret),
			   d->a->lun);
	return ret;
}

static bool vmfsd_stopped_early(struct vmfsd *d)
{
	if (!vmfsd_stop_pending())
		return false;
	vmfsd_fail(d, "stopped by a signal before %s was mounted",
		   d->a->mountpoint);
	return true;
}

int vmfsd_start(struct vmfsd *d)
{
	struct vfuse_opts fo;
	struct vol_geom g;
	int ret;

	if (vmfsd_check_mountpoint(d))
		return -1;
	/* Read-only: the data handle cannot write at all, whatever the
	 * engine does; only the heartbeat's own handle (vmfsd_hb_check) can. */
	ret = lun_open(d->a->lun, d->a->ro ? LUN_RDONLY : 0, &d->lun);
	if (ret) {
		vmfsd_fail(d, "cannot open LUN %s: %s", d->a->lun,
			   vmfs_strerror(ret));
		return ret;
	}
	ret = vmfsd_read_header(d, &g);
	if (ret)
		return ret;
	vol_uuid_format(g.uuid, d->uuid);
	memcpy(d->vol_uuid, g.uuid, VMFS_UUID_SIZE);
	vmfsd_log_volume(d->uuid);
	vmfsd_notify_status("claiming volume %s", d->uuid);
	ret = vmfsd_claim(d);
	if (!ret)
		ret = vmfsd_name_host(d);
	if (ret)
		return ret;
	if (vmfsd_stopped_early(d))
		return -1;
	ret = vmfsd_hb_check(d, &g);
	if (ret)
		return ret;
	/*
	 * A read-only host opens the volume before it takes a slot: a
	 * volume it refuses (a journal to replay) is then left exactly as
	 * it was, its slots included.  A read-write host opens it once it
	 * holds its slot, the one it journals into.
	 */
	if (d->a->ro)
		ret = vmfsd_open_vol(d);
	if (!ret)
		ret = vmfsd_join(d, &g);
	if (!ret && !d->a->ro)
		ret = vmfsd_open_vol(d);
	if (!ret)
		ret = d->a->ro ? vmfsd_ro_lock(d, &g) : vmfsd_cluster(d, &g);
	if (ret)
		return ret;
	if (vmfsd_stopped_early(d))
		return -1;

	vfuse_opts_init(&fo);
	fo.mountpoint = d->a->mountpoint;
	fo.fsname = d->a->lun;
	fo.max_threads = d->a->threads;
	fo.debug = d->a->debug;
	fo.rdonly = d->a->ro;
	/* Root's mount serves every user, as a disk file system does; the
	 * kernel enforces modes (default_permissions). */
	fo.allow_other = geteuid() == 0;
	ret = vfuse_mount(d->vol, &fo, &d->fuse);
	if (ret) {
		vmfsd_fail(d, "cannot mount volume %s on %s: %s", d->uuid,
			   d->a->mountpoint, vmfs_strerror(ret));
		return ret;
	}

	qb_log(LOG_NOTICE, "mounted volume %s%s%s%s from %s on %s%s: host %s "
	       "(%s), lock primitive %s, state %s, %u FUSE threads, pid %ld",
	       d->uuid, g.label[0] ? " (" : "", g.label, g.label[0] ? ")" : "",
	       d->a->lun, d->a->mountpoint, d->a->ro ? " read-only" : "",
	       d->host_name, d->host_uuid, lock_prim_name(d->lock_prim),
	       d->a->state_dir, d->a->threads, (long)getpid());
	vmfsd_cluster_net_start(d);
	return 0;
}

/* The first failure of the unmount: logged, and kept for `vmfs umount`. */
static void vmfsd_close_failed(struct vmfsd *d, struct vmfsd_close_status *st,
			       int err, const char *what)
{
	if (st->err)
		return;
	st->err = err;
	/* A fenced host's I/O fails by design: the cure is a new mount (it
	 * replays the journal), not fsck. */
	if (d->fenced)
		snprintf(st->msg, sizeof(st->msg), "%s volume %s failed: this "
			 "host fenced itself (%.300s) and stopped writing to "
			 "it; mount it again, which replays its journal",
			 what, d->uuid, d->fence_why);
	else
		snprintf(st->msg, sizeof(st->msg), "%s volume %s failed: %s; "
			 "run 'vmfs fsck %.3500s'", what, d->uuid,
			 vmfs_strerror(err), d->a->lun);
	qb_log(LOG_ERR, "%s", st->msg);
}

void vmfsd_finish(struct vmfsd *d, struct vmfsd_close_status *st)
{
	int ret;

	memset(st, 0, sizeof(*st));
	st->pid = getpid();
	/* A grow the control socket started ends before the volume closes. */
	vmfsd_ctl_quiesce(d);
	vfuse_unmount_destroy(d->fuse);
	d->fuse = NULL;
	st->unmounted = true;
	vmfsd_ha_stop(d);
	/* No request reaches the engine now: leave the group before the
	 * volume lets its locks go. */
	vmfsd_cluster_net_stop(d);
	pthread_mutex_lock(&d->fence_mu);
	d->vol_live = false;
	pthread_mutex_unlock(&d->fence_mu);
	if (d->vol) {
		ret = vol_close(d->vol);
		if (ret)
			vmfsd_close_failed(d, st, ret, "closing");
		d->vol = NULL;
	}
	if (d->ro_locked && !d->fenced)
		lock_release(d->ro_lk, d->ro_locked - 1, NULL);
	d->ro_locked = 0;
	lock_ctx_close(d->ro_lk);
	d->ro_lk = NULL;
	/* Give the slot back only after the volume is flushed. */
	if (d->hb) {
		ret = hb_leave(d->hb);
		if (ret)
			vmfsd_close_failed(d, st, ret, "freeing the heartbeat slot of");
	}
	d->hb = NULL;
	if (d->hb_lun)
		lun_close(d->hb_lun);
	d->hb_lun = NULL;
	if (d->lun)
		lun_close(d->lun);
	d->lun = NULL;
	if (d->claimed) {
		ret = vmfsd_host_release(d->host, d->uuid);
		if (ret)
			qb_log(LOG_WARNING, "cannot remove the mount record of "
			       "volume %s from %s: %s", d->uuid,
			       d->a->state_dir, vmfs_strerror(ret));
		d->claimed = false;
	}
	vmfsd_host_close(d->host);
	d->host = NULL;
}

/* The live view for `vmfs info MOUNTPOINT`; runs on the loop thread while
 * the volume is open (FUSE threads may be changing the counters). */
/* The paths of both LUN handles (vmfsd_info.paths). */
static void vmfsd_paths_info(struct vmfsd *d, struct vmfsd_info *out)
{
	struct lun *h[2] = { d->lun, d->hb_lun };
	static const char *const name[2] = { "data", "heartbeat" };
	size_t len = 0;

	for (int k = 0; k < 2; k++) {
		struct lun_path p[8];
		unsigned n;

		if (!h[k] || (k == 1 && h[1] == h[0]))
			continue;
		n = lun_paths(h[k], false, p, 8);
		out->path_failovers += lun_path_failovers(h[k]);
		for (unsigned i = 0; i < n && i < 8; i++) {
			int w = snprintf(out->paths + len, sizeof(out->paths) - len,
					 "%s %s %s %lld\n", name[k], p[i].portal,
					 p[i].in_use ? "in-use" : "standby",
					 (long long)p[i].failed_ago_ms);

			if (w < 0 || (size_t)w >= sizeof(out->paths) - len)
				return;
			len += (size_t)w;
		}
	}
}

void vmfsd_info_get(struct vmfsd *d, struct vmfsd_info *out)
{
	struct hb_timeouts t;
	struct jnl_stats js = { 0 };
	struct vol_cache_stats cs;

	memset(out, 0, sizeof(*out));
	out->pid = getpid();
	out->since_ns = d->since_ns;
	snprintf(out->version, sizeof(out->version), "%s", VMFS_VERSION);
	snprintf(out->vol_uuid, sizeof(out->vol_uuid), "%s", d->uuid);
	snprintf(out->host_uuid, sizeof(out->host_uuid), "%s", d->host_uuid);
	snprintf(out->host_name, sizeof(out->host_name), "%s", d->host_name);
	if (d->lock_prim)
		snprintf(out->lock_primitive, sizeof(out->lock_primitive), "%s",
			 lock_prim_name(d->lock_prim));
	snprintf(out->lun, sizeof(out->lun), "%s", d->a->lun);
	vmfsd_paths_info(d, out);
	snprintf(out->mountpoint, sizeof(out->mountpoint), "%s", d->a->mountpoint);
	snprintf(out->state_dir, sizeof(out->state_dir), "%s", d->a->state_dir);
	out->fuse_threads = d->a->threads;
	out->read_only = d->a->ro;
	if (d->hb) {
		hb_timeouts_get(d->hb, &t);
		out->hb_slot = hb_slot_index(d->hb);
		out->hb_generation = hb_generation(d->hb);
		out->lease_ms = t.lease_ms;
		out->renew_ms = t.renew_ms;
		out->fence_ms = t.fence_ms;
		hb_renew_times(d->hb, &out->renew_last_ms, &out->renew_max_ms);
	}
	out->fenced = d->fenced;
	if (d->vol)
		vol_journal_stats(d->vol, &js);
	out->jnl_commits = js.commits;
	out->jnl_images = js.images;
	out->jnl_ring_blocks = js.ring_blocks;
	out->jnl_flushes = js.flushes;
	out->jnl_checkpoints = js.checkpoints;
	out->jnl_forced = js.forced;
	if (d->vol) {
		vol_cache_stats_get(d->vol, &cs);
		out->cache_budget_bytes = cs.budget_bytes;
		out->cache_used_bytes = cs.used_bytes;
		out->cache_fixed_bytes = cs.fixed_bytes;
		out->cache_index_bytes = cs.index_bytes;
		out->cache_inode_bytes = cs.inode_bytes;
		out->cache_inodes = cs.inodes;
		out->cache_evictions = cs.evictions;
	}
	if (d->fuse)
		vfuse_kc_stats(d->fuse, &out->kcache_names,
			       &out->kcache_inodes, &out->kcache_forgotten,
			       &out->kcache_expired);
	vmfsd_cluster_net_info(d, out);
	vmfsd_ha_events(d, out->ha_events, sizeof(out->ha_events));
}
