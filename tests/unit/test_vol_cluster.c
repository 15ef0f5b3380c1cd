/*
 * Two hosts in one process sharing a volume (vol/cluster.c): each with its
 * own LUN handles, heartbeat slot and engine, as two vmfsd would be (a
 * third, when one must die, in a child process).  The cases here are
 * those a test through FUSE mounts cannot set up deterministically: one
 * host's cached copy of an object it does not hold being older than the
 * disk, and a recoverer dying in the middle of a recovery.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include "unit.h"
#include "uhost.h"
#include "vmfs/clock.h"
#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"
#include "../../vol/vol_int.h"

#define MIB (1024ull * 1024)


static struct uhost hosts[2];

/* A fresh volume and hosts A and B sharing it. */
static void two_hosts(void)
{
	uhost_volume("cluster.img");
	uhost_up(&hosts[0], 0, false);
	uhost_up(&hosts[1], 1, false);
	CU_ASSERT_FATAL(vol_cluster_is_shared(hosts[0].v));
	CU_ASSERT_FATAL(vol_cluster_is_shared(hosts[1].v));
}

static int cleanup(void)
{
	int b = uhost_down(&hosts[1]);

	return uhost_down(&hosts[0]) || b;
}

static uint64_t mkdir_at(struct vol *v, uint64_t parent, const char *name)
{
	struct vol_attr a;

	CU_ASSERT_EQUAL_FATAL(vol_mkdir(v, parent, name, 0755, 0, 0, &a), 0);
	return a.ino;
}

static uint64_t lookup_at(struct vol *v, uint64_t parent, const char *name)
{
	struct vol_attr a;

	CU_ASSERT_EQUAL_FATAL(vol_lookup(v, parent, name, &a), 0);
	return a.ino;
}

/*
 * A directory never moves below itself, even when another host moved the
 * directories between: B has /d2 cached with the root as its parent; A
 * moves d2 into d1 (so d1/d2/d3); B's move of d1 into d3 must see d2's
 * parent as it is on disk and refuse, or d1, d2 and d3 would form a cycle
 * cut off from the root.
 */
static void test_no_cycle_across_hosts(void)
{
	struct vol *a, *b;
	uint64_t d1, d2, d3, bd1, bd2, bd3;

	two_hosts();
	a = hosts[0].v;
	b = hosts[1].v;
	d1 = mkdir_at(a, VMFS_ROOT_INO, "d1");
	d2 = mkdir_at(a, VMFS_ROOT_INO, "d2");
	d3 = mkdir_at(a, d2, "d3");
	/* B looks everything up: its engine caches the three directories. */
	bd1 = lookup_at(b, VMFS_ROOT_INO, "d1");
	bd2 = lookup_at(b, VMFS_ROOT_INO, "d2");
	bd3 = lookup_at(b, bd2, "d3");
	CU_ASSERT_EQUAL(bd1, d1);
	CU_ASSERT_EQUAL(bd2, d2);
	CU_ASSERT_EQUAL(bd3, d3);

	CU_ASSERT_EQUAL_FATAL(vol_rename(a, VMFS_ROOT_INO, "d2", d1, "d2", 0), 0);
	CU_ASSERT_EQUAL(vol_rename(b, VMFS_ROOT_INO, "d1", d3, "d1", 0), -EINVAL);
	/* B sees A's move, and the tree is still whole. */
	CU_ASSERT_EQUAL(lookup_at(b, d1, "d2"), d2);
	CU_ASSERT_EQUAL(lookup_at(b, VMFS_ROOT_INO, "d1"), d1);

	CU_ASSERT_EQUAL(cleanup(), 0);
	CU_ASSERT(unit_fsck_clean(uhost_lun_path, "after the crossing moves"));
}


static uint64_t create_at(struct vol *v, uint64_t parent, const char *name,
			  struct vol_attr *a)
{
	CU_ASSERT_EQUAL_FATAL(vol_create(v, parent, name, S_IFREG | 0644, 0, 0,
					 0, a), 0);
	vol_forget(v, a->ino, 1);   /* as the kernel would, in time */
	return a->ino;
}

/*
 * An inode number another host freed and used again: B's kernel still
 * holds the old file (B looked it up), B found it freed, and A creates a
 * file that gets the same inode number.  B must look the new file up (a
 * new incarnation, not "an entry naming a free inode"), and the kernel's
 * forgets of both (FUSE forgets by node id, which is the inode number)
 * must leave B's cache as it was.
 */
static void test_inode_reused_by_another_host(void)
{
	struct vol_cache_stats s0, s;
	struct vol_attr fa, ga, la;
	struct vol *a, *b;
	uint64_t ino = 0;
	char name[32];

	two_hosts();
	a = hosts[0].v;
	b = hosts[1].v;
	vol_cache_stats_get(b, &s0);
	create_at(a, VMFS_ROOT_INO, "f", &fa);
	CU_ASSERT_EQUAL_FATAL(vol_lookup(b, VMFS_ROOT_INO, "f", &la), 0);
	CU_ASSERT_EQUAL(la.ino, fa.ino);
	CU_ASSERT_EQUAL_FATAL(vol_unlink(a, VMFS_ROOT_INO, "f"), 0);
	/* B takes the inode's lock (a chmod through its kernel's old
	 * entry) and finds it freed. */
	{
		struct vol_setattr sa = { .mode = 0600 };

		CU_ASSERT_EQUAL(vol_setattr(b, fa.ino, &sa, VOL_SET_MODE, &la),
				-ESTALE);
	}
	/* A creates until its allocator hands out that number again. */
	for (int i = 0; i < 64 && ino != fa.ino; i++) {
		snprintf(name, sizeof(name), "g%d", i);
		ino = create_at(a, VMFS_ROOT_INO, name, &ga);
	}
	CU_ASSERT_EQUAL_FATAL(ino, fa.ino);
	CU_ASSERT_EQUAL_FATAL(vol_lookup(b, VMFS_ROOT_INO, name, &la), 0);
	CU_ASSERT_EQUAL(la.ino, ga.ino);
	CU_ASSERT_EQUAL(la.generation, ga.generation);
	CU_ASSERT_NOT_EQUAL(la.generation, fa.generation);
	CU_ASSERT_EQUAL(vol_open_file(b, ga.ino, false), 0);
	vol_release_file(b, ga.ino, false);
	/* The kernel forgets the old file and the new one. */
	vol_forget(b, fa.ino, 1);
	vol_forget(b, ga.ino, 1);
	vol_cache_stats_get(b, &s);
	CU_ASSERT_EQUAL(s.inodes, s0.inodes);

	CU_ASSERT_EQUAL(cleanup(), 0);
	CU_ASSERT(unit_fsck_clean(uhost_lun_path, "after the reuse"));
}

/*
 * Online grow while shared (vol_grow_online): A grows the volume; B, which
 * did not, at once writes a file larger than all the free space it knew
 * of (its allocation takes the new geometry before it would fail with
 * ENOSPC: its tick is seconds away), its statfs counts exactly the new
 * file blocks, growing again on B finds nothing to do, A reads B's file
 * and removes it (freeing blocks of the new space that another host
 * allocated), and fsck is clean.
 */
static void test_grow_online_shared(void)
{
	struct vol_grow_opts go = { 0 };
	struct vol_grow_result r, r2;
	struct statvfs st0, st;
	struct vol_attr fa, la;
	int ret;
	uint8_t *buf, *got;
	struct vol *a, *b;
	size_t len;

	uhost_volume_sized("cluster-grow.img", 64 * MIB);
	/* A 10 s lease ticks every 2 s: B writes long before its tick. */
	uhost_lease_ms = 10000;
	uhost_up(&hosts[0], 0, false);
	uhost_up(&hosts[1], 1, false);
	uhost_lease_ms = UHOST_LEASE_MS_DEFAULT;
	a = hosts[0].v;
	b = hosts[1].v;
	CU_ASSERT_FATAL(vol_cluster_is_shared(a) && vol_cluster_is_shared(b));
	CU_ASSERT_EQUAL_FATAL(vol_statfs(b, &st0), 0);
	len = (size_t)(st0.f_bavail * st0.f_frsize + 8 * MIB);
	buf = malloc(len);
	got = malloc(len);
	CU_ASSERT_FATAL(buf && got);
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 7 + (i >> 12));
	create_at(b, VMFS_ROOT_INO, "big", &fa);

	CU_ASSERT_FATAL(truncate(uhost_lun_path, (off_t)(128 * MIB)) == 0);
	CU_ASSERT_EQUAL_FATAL(vol_grow_online(a, &go, &r), 0);
	CU_ASSERT_EQUAL(r.old_size_bytes, 64 * MIB);
	CU_ASSERT_EQUAL(r.new_size_bytes, 128 * MIB);
	CU_ASSERT_FATAL(r.new_file_blocks > r.old_file_blocks);
	CU_ASSERT_EQUAL(vol_write(b, fa.ino, buf, len, 0), (ssize_t)len);
	CU_ASSERT_EQUAL_FATAL(vol_statfs(b, &st), 0);
	CU_ASSERT_EQUAL((uint64_t)st.f_blocks * st.f_frsize -
			(uint64_t)st0.f_blocks * st0.f_frsize,
			(r.new_file_blocks - r.old_file_blocks) * r.file_block_size);
	/* Growing again: nothing to do. */
	ret = vol_grow_online(b, &go, &r2);
	if (ret != -VMFS_E_NOT_GROWN)
		fprintf(stderr, "\n  grow again on B: %s ", vmfs_strerror(ret));
	CU_ASSERT_EQUAL(ret, -VMFS_E_NOT_GROWN);
	CU_ASSERT_EQUAL(r2.new_size_bytes, 128 * MIB);
	CU_ASSERT_EQUAL_FATAL(vol_lookup(a, VMFS_ROOT_INO, "big", &la), 0);
	CU_ASSERT_EQUAL(vol_read(a, la.ino, got, len, 0), (ssize_t)len);
	CU_ASSERT(memcmp(buf, got, len) == 0);
	vol_forget(a, la.ino, 1);
	CU_ASSERT_EQUAL(vol_unlink(a, VMFS_ROOT_INO, "big"), 0);
	free(buf);
	free(got);

	CU_ASSERT_EQUAL(cleanup(), 0);
	CU_ASSERT(unit_fsck_clean(uhost_lun_path, "after an online grow while shared"));
}

/* The slot of host n (uhost_up's uuid) as on disk, or NULL. */
static bool slot_of(unsigned n, struct hb_slot_info *out)
{
	struct hb_slot_info si[8];
	struct lun *lun;
	uint32_t cnt = 0;
	bool found = false;

	CU_ASSERT_FATAL(lun_open(uhost_lun_path, 0, &lun) == 0);
	if (hb_survey(lun, uhost_geom.hb_offset, false, si, 8, &cnt) == 0)
		for (uint32_t i = 0; i < cnt && !found; i++)
			if (si[i].host_uuid[0] == 0xa0 + n &&
			    si[i].host_uuid[15] == 1) {
				*out = si[i];
				found = true;
			}
	lun_close(lun);
	return found;
}

/*
 * Host C in a forked child: once go_fd gives a byte (go_fd -1: at once)
 * it joins, creates /c-disk, opens it for writing, writes and fsyncs
 * "from C", sends the inode number on done_fd and waits to be killed,
 * holding the file open (its lock EXCLUSIVE on disk).
 */
static void __attribute__((noreturn)) host_c_holds_file(int go_fd, int done_fd)
{
	struct uhost c;
	struct vol_attr a;
	char x;

	memset(&c, 0, sizeof(c));
	if (go_fd >= 0 && read(go_fd, &x, 1) != 1)
		_exit(2);
	uhost_up(&c, 2, false);
	if (vol_create(c.v, VMFS_ROOT_INO, "c-disk", S_IFREG | 0644, 0, 0, 0,
		       &a) || vol_open_file(c.v, a.ino, true) < 0 ||
	    vol_write(c.v, a.ino, "from C", 6, 0) != 6 ||
	    vol_fsync(c.v, a.ino, false))
		_exit(3);
	if (write(done_fd, &a.ino, sizeof(a.ino)) != sizeof(a.ino))
		_exit(4);
	pause();   /* killed here */
	_exit(5);
}

/*
 * A survivor that dies in the middle of a recovery leaves the dead host's
 * slot REPLAYING, standing still; another survivor's watcher takes the
 * recovery over, and then the dead host's open file can be opened for
 * writing with what it wrote.  Host C runs in a child process killed with
 * SIGKILL holding its file open for writing; the test itself plays the
 * first recoverer, which claims the slot and stops (hb_recover_done
 * without freeing it); A and B's watchers must finish the job.
 */
static void test_recoverer_dies(void)
{
	int go[2], done[2];
	struct hb_slot_info si;
	struct hb_recovery *rec;
	struct hb_timeouts t;
	struct vol_attr fa;
	char buf[16] = "";
	pid_t pid;
	int st;

	uhost_volume("cluster.img");
	uhost_lease_ms = 1000;	/* C's death is seen within seconds */
	CU_ASSERT_FATAL(pipe(go) == 0 && pipe(done) == 0);
	pid = fork();   /* before any thread: the child starts its own */
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0)
		host_c_holds_file(go[0], done[1]);
	/* Only the child writes done and reads go: a child that ends early
	 * gives the read below EOF instead of a wait for ever. */
	close(go[0]);
	close(done[1]);
	uhost_up(&hosts[0], 0, false);
	uhost_up(&hosts[1], 1, false);
	uhost_lease_ms = UHOST_LEASE_MS_DEFAULT;	/* C has its own copy */
	CU_ASSERT_FATAL(write(go[1], "g", 1) == 1);
	if (read(done[0], &fa.ino, sizeof(fa.ino)) != sizeof(fa.ino)) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		printf("[host C ended before it held its file: %s %d] ",
		       WIFEXITED(st) ? "exit" : "signal",
		       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		close(go[1]);
		close(done[0]);
		CU_FAIL_FATAL("host C's process ended early");
	}
	kill(pid, SIGKILL);
	CU_ASSERT_FATAL(waitpid(pid, &st, 0) == pid);

	/* The first recoverer: claims C's slot, then "dies". */
	CU_ASSERT_FATAL(slot_of(2, &si));
	hb_timeouts_from_lease(si.lease_ms, &t);
	CU_ASSERT_EQUAL_FATAL(hb_recover_claim(hosts[0].hb_lun,
					       hb_primitive(hosts[0].hb),
					       uhost_geom.hb_offset, &si,
					       t.io_timeout_ms, &rec), 0);
	CU_ASSERT_EQUAL(hb_recover_done(rec, false), 0);
	CU_ASSERT_FATAL(slot_of(2, &si));
	CU_ASSERT_EQUAL(si.state, VMFS_HB_REPLAYING);

	/* The watchers take it over: the slot goes FREE. */
	for (int i = 0; i < 200 && slot_of(2, &si); i++)
		usleep(50 * 1000);
	CU_ASSERT_FALSE(slot_of(2, &si));
	CU_ASSERT_EQUAL(vol_open_file(hosts[0].v, fa.ino, true), 0);
	CU_ASSERT_EQUAL(vol_read(hosts[0].v, fa.ino, buf, sizeof(buf), 0), 6);
	CU_ASSERT_EQUAL(memcmp(buf, "from C", 6), 0);
	vol_release_file(hosts[0].v, fa.ino, true);

	close(go[1]);
	close(done[0]);
	CU_ASSERT_EQUAL(cleanup(), 0);
	CU_ASSERT(unit_fsck_clean(uhost_lun_path, "after the recovery taken over"));
}

/*
 * The engine's side of the cluster fast path between the two hosts: the
 * request goes straight to the other engine, as vmfsd's glue does when
 * the CPG message arrives (the CPG itself is tested with real corosync
 * daemons in tests/integration/t_cluster_*.sh).
 */
struct unet {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t released[2][64];   /* per host: the addresses it let go */
	unsigned nreleased[2];
	bool member[2];             /* is host i in the group */
};
static struct unet unet = {
	.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,
};

static unsigned unet_self(void *arg)
{
	return (unsigned)(uintptr_t)arg;
}

static bool unet_seen(unsigned who, uint64_t addr)
{
	for (unsigned i = 0; i < unet.nreleased[who]; i++)
		if (unet.released[who][i] == addr)
			return true;
	return false;
}

static int unet_ask(void *arg, const struct lock_holder *h, uint64_t addr,
		    enum vmfs_lock_mode mode, unsigned timeout_ms)
{
	unsigned other = 1 - unet_self(arg);
	struct timespec until;
	int ret;

	(void)h;
	if (!unet.member[other] || !unet.member[unet_self(arg)])
		return -ENOTCONN;
	pthread_mutex_lock(&unet.mu);
	unet.nreleased[other] = 0;
	pthread_mutex_unlock(&unet.mu);
	ret = vol_cluster_release_request(hosts[other].v, addr, mode);
	if (ret != -EINPROGRESS)
		return ret;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000 + 1;
	pthread_mutex_lock(&unet.mu);
	while (!unet_seen(other, addr) &&
	       pthread_cond_timedwait(&unet.cv, &unet.mu, &until) != ETIMEDOUT)
		;
	ret = unet_seen(other, addr) ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&unet.mu);
	return ret;
}

static bool unet_is_member(void *arg, const struct lock_holder *h)
{
	(void)h;
	return unet.member[1 - unet_self(arg)];
}

static void unet_released(void *arg, uint64_t addr)
{
	unsigned self = unet_self(arg);

	pthread_mutex_lock(&unet.mu);
	if (unet.nreleased[self] < 64)
		unet.released[self][unet.nreleased[self]++] = addr;
	pthread_cond_broadcast(&unet.cv);
	pthread_mutex_unlock(&unet.mu);
}

static const struct vol_net_ops unet_ops = {
	.ask_release = unet_ask,
	.is_member = unet_is_member,
	.released = unet_released,
};

/* Wait (up to 5 s) for host i's engine to say caching is `on`. */
static bool caching_becomes(unsigned i, bool on)
{
	struct vol_net_stats ns;

	for (int k = 0; k < 100; k++) {
		vol_cluster_net_stats(hosts[i].v, &ns);
		if (ns.caching == on)
			return true;
		usleep(50000);
	}
	return false;
}

/* A fresh volume, hosts A and B sharing it, both in the group (unet)
 * and caching their locks. */
static void two_hosts_caching(void)
{
	two_hosts();
	unet.member[0] = unet.member[1] = true;
	unet.nreleased[0] = unet.nreleased[1] = 0;
	vol_cluster_set_net(hosts[0].v, &unet_ops, (void *)(uintptr_t)0);
	vol_cluster_set_net(hosts[1].v, &unet_ops, (void *)(uintptr_t)1);
	CU_ASSERT_FATAL(caching_becomes(0, true));
	CU_ASSERT_FATAL(caching_becomes(1, true));
}

static int count_entry(void *ctx, const char *name,
		       const struct vol_attr *a, uint64_t next_cookie)
{
	(void)name, (void)a, (void)next_cookie;
	(*(unsigned *)ctx)++;
	return 0;
}

static unsigned count_dir(struct vol *v, uint64_t dir)
{
	unsigned n = 0;

	CU_ASSERT_EQUAL(vol_readdir(v, dir, 0, false, count_entry, &n), 0);
	return n;
}

/* v sees room for inodes in the first cluster only (in memory: it
 * allocates there, and asks for it when another host holds it). */
static void inodes_in_cluster_0(struct vol *v)
{
	struct rarea *ra = &v->res[VMFS_RES_INODE];

	pthread_mutex_lock(&v->alloc_lock);
	for (uint32_t c = 1; c < ra->g.nclusters; c++)
		ra->cl[c].nfree = 0;
	pthread_mutex_unlock(&v->alloc_lock);
}

/*
 * A slot read ahead is not used once another host may have changed it
 * (vol/inode.c ira_read): A creates a file and reads the next slots of
 * its inode cluster ahead; B (allocating in the same cluster) asks A for
 * the cluster, takes the next slot and frees it again, and A's next file
 * gets that slot.  Its generation must be past B's file's, not the one A
 * read ahead before B used the slot.
 */
static void test_readahead_not_past_handover(void)
{
	struct vol_attr a0, a1, b0;
	struct vol *a, *b;

	two_hosts_caching();
	a = hosts[0].v;
	b = hosts[1].v;
	inodes_in_cluster_0(a);
	inodes_in_cluster_0(b);
	create_at(a, VMFS_ROOT_INO, "a0", &a0);
	create_at(b, VMFS_ROOT_INO, "b0", &b0);
	CU_ASSERT_EQUAL_FATAL(b0.ino, a0.ino + 1);
	CU_ASSERT_EQUAL_FATAL(vol_unlink(b, VMFS_ROOT_INO, "b0"), 0);
	create_at(a, VMFS_ROOT_INO, "a1", &a1);
	CU_ASSERT_EQUAL_FATAL(a1.ino, b0.ino);
	CU_ASSERT(a1.generation > b0.generation);

	CU_ASSERT_EQUAL(cleanup(), 0);
	CU_ASSERT(unit_fsck_clean(uhost_lun_path, "after the slot moved"));
}

/* A creates 20 files in d with its locks cached: no lock taken and no
 * journal drained one by one, so fewer LUN flushes than creates (without
 * the cache, each one drains: three flushes); it keeps locks. */
static void creates_cached(struct vol *a, uint64_t d)
{
	struct vol_net_stats na;
	struct jnl_stats j0, j1;
	struct vol_attr at;
	char name[32];

	vol_journal_stats(a, &j0);
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "a%d", i);
		create_at(a, d, name, &at);
	}
	vol_journal_stats(a, &j1);
	CU_ASSERT(j1.flushes - j0.flushes < 20);
	vol_cluster_net_stats(a, &na);
	CU_ASSERT(na.cached >= 2);          /* the directory, a cluster... */
}

/*
 * Locks stay cached between operations while both hosts are members and
 * are handed over on request: A works in its directory without letting
 * go, B's create there asks A and gets the lock at once (no timeout),
 * A's next create asks B back; both see every file.  Out of the group
 * (or with no fast path), nothing stays cached.
 */
static void test_cached_locks_handed_over(void)
{
	struct vol_net_stats na, nb;
	struct vol_attr at;
	struct vol *a, *b;
	uint64_t d;
	char name[32];

	two_hosts_caching();
	a = hosts[0].v;
	b = hosts[1].v;

	d = mkdir_at(a, VMFS_ROOT_INO, "shared");
	create_at(a, d, "a-first", &at);
	creates_cached(a, d);
	vol_cluster_net_stats(a, &na);
	CU_ASSERT_EQUAL(na.asked, 0);

	/* Ping-pong: each create on one host takes the directory from the
	 * other, asking; every request is answered. */
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "b%d", i);
		create_at(b, d, name, &at);
		snprintf(name, sizeof(name), "a%d", i + 20);
		create_at(a, d, name, &at);
	}
	vol_cluster_net_stats(a, &na);
	vol_cluster_net_stats(b, &nb);
	CU_ASSERT(nb.asked >= 5);
	CU_ASSERT_EQUAL(nb.ask_timeouts, 0);
	CU_ASSERT_EQUAL(na.ask_timeouts, 0);
	CU_ASSERT(na.handed >= 5);
	CU_ASSERT(nb.handed >= 4);
	CU_ASSERT_EQUAL(count_dir(a, d), 33);   /* with . and .. */
	CU_ASSERT_EQUAL(count_dir(b, d), 33);

	/* B leaves the group: A may not keep anything B would have to wait
	 * for on the disk, and B stops caching with no fast path. */
	unet.member[1] = false;
	vol_cluster_set_net(b, NULL, NULL);
	vol_cluster_membership(a, true, 1);
	CU_ASSERT(caching_becomes(0, false));
	CU_ASSERT(caching_becomes(1, false));
	for (int k = 0; k < 100; k++) {
		vol_cluster_net_stats(a, &na);
		vol_cluster_net_stats(b, &nb);
		if (!na.cached && !nb.cached)
			break;
		usleep(50000);
	}
	CU_ASSERT_EQUAL(na.cached, 0);
	CU_ASSERT_EQUAL(nb.cached, 0);
	/* Disk-only again: B creates without asking, A sees it. */
	vol_cluster_net_stats(b, &nb);
	create_at(b, d, "b-disk", &at);
	vol_cluster_net_stats(b, &na);
	CU_ASSERT_EQUAL(na.asked, nb.asked);
	CU_ASSERT_EQUAL(count_dir(a, d), 34);

	vol_cluster_set_net(a, NULL, NULL);
	CU_ASSERT_EQUAL(cleanup(), 0);
	CU_ASSERT(unit_fsck_clean(uhost_lun_path, "after the handovers"));
}

/* The lock of inode ino as on disk (read through lun). */
static struct lock_state disk_lock_at(struct lun *lun, uint64_t addr)
{
	struct lock_state st;
	void *buf = lun_buf_alloc(VMFS_LOCK_SIZE);

	memset(&st, 0, sizeof(st));
	CU_ASSERT_FATAL(buf != NULL);
	CU_ASSERT_EQUAL(lun_read(lun, buf, VMFS_LOCK_SIZE, addr), 0);
	CU_ASSERT_EQUAL(lock_state_from_disk(buf, addr, &st), 0);
	lun_buf_free(buf);
	return st;
}

/* The lock of inode ino as on disk. */
static struct lock_state disk_lock(struct lun *lun, uint64_t ino)
{
	const struct vol_res_geom *r = &uhost_geom.res[VMFS_RES_INODE];

	return disk_lock_at(lun, r->obj_offset + ino * r->obj_size);
}

/* Wait (up to 10 s) for the lock of ino to read FREE on disk. */
static bool disk_lock_frees(struct lun *lun, uint64_t ino)
{
	for (int k = 0; k < 200; k++) {
		if (disk_lock(lun, ino).mode == VMFS_LOCK_FREE)
			return true;
		usleep(50000);
	}
	return false;
}

/*
 * vol_file_uncache is this host's own wish (vmfsd/vm.c, at a VM's stop),
 * not a member's request: the cached lock goes free on disk, but it is
 * neither counted as a request nor answered with a RELEASED nobody asked
 * for.
 */
static void test_uncache_is_not_a_request(void)
{
	struct vol_net_stats n0, n1;
	struct vol_attr fa;
	struct vol *a, *b;
	uint64_t d;

	two_hosts_caching();
	a = hosts[0].v;
	b = hosts[1].v;

	d = mkdir_at(a, VMFS_ROOT_INO, "vmdir");
	create_at(a, d, "vm.json", &fa);
	/* Opened and closed: its lock stays cached EXCLUSIVE. */
	CU_ASSERT_EQUAL_FATAL(vol_open_file(a, fa.ino, true), 0);
	vol_release_file(a, fa.ino, true);
	CU_ASSERT_NOT_EQUAL(disk_lock(hosts[0].lun, fa.ino).mode,
			    VMFS_LOCK_FREE);
	vol_cluster_net_stats(a, &n0);
	CU_ASSERT_EQUAL(vol_file_uncache(a, fa.ino), 0);
	CU_ASSERT(disk_lock_frees(hosts[1].lun, fa.ino));
	vol_cluster_net_stats(a, &n1);
	CU_ASSERT_EQUAL(n1.requests, n0.requests);
	CU_ASSERT_EQUAL(n1.handed, n0.handed);
	pthread_mutex_lock(&unet.mu);
	CU_ASSERT_EQUAL(unet.nreleased[0], 0);
	pthread_mutex_unlock(&unet.mu);

	vol_cluster_set_net(a, NULL, NULL);
	vol_cluster_set_net(b, NULL, NULL);
	unet.member[0] = unet.member[1] = false;
	CU_ASSERT_EQUAL(cleanup(), 0);
	CU_ASSERT(unit_fsck_clean(uhost_lun_path, "after the uncache"));
}

/*
 * Hosts A and B share a fresh volume, B's engine on a fault-injecting
 * LUN; A creates /f and B opens it for reading (READONLY on disk).
 */
static void b_reads_a_file(struct vol_attr *fa)
{
	uhost_volume("cluster.img");
	uhost_up(&hosts[0], 0, false);
	uhost_up(&hosts[1], 1, true);
	CU_ASSERT_FATAL(vol_cluster_is_shared(hosts[0].v));
	CU_ASSERT_FATAL(vol_cluster_is_shared(hosts[1].v));
	create_at(hosts[0].v, VMFS_ROOT_INO, "f", fa);
	CU_ASSERT_EQUAL_FATAL(vol_lookup(hosts[1].v, VMFS_ROOT_INO, "f", fa), 0);
	CU_ASSERT_EQUAL_FATAL(vol_open_file(hosts[1].v, fa->ino, false), 0);
	CU_ASSERT_EQUAL_FATAL(disk_lock(hosts[0].lun, fa->ino).mode,
			      VMFS_LOCK_READONLY);
}

/*
 * A release whose lock write fails (an I/O error here; a miscompare
 * alike) is tried again at a later tick: the lock must not stay held on
 * disk for ever while no operation of ours touches it (another host
 * waiting for it, or for the space of a file unlinked while open here,
 * would wait for ever).  Disk-only (no fast path): every close lets go.
 */
static void test_failed_release_retried(void)
{
	struct vol_attr fa;
	struct lock_state st;
	struct vol *a, *b;

	b_reads_a_file(&fa);
	a = hosts[0].v;
	b = hosts[1].v;
	/* B's close: its release is the next write of B's engine. */
	lun_fault_fail_nth_write(hosts[1].lun, 1, -EIO);
	vol_release_file(b, fa.ino, false);
	lun_fault_fail_nth_write(hosts[1].lun, 0, 0);
	st = disk_lock(hosts[0].lun, fa.ino);
	CU_ASSERT_EQUAL(st.mode, VMFS_LOCK_READONLY);  /* the fault hit it */
	CU_ASSERT(disk_lock_frees(hosts[0].lun, fa.ino));
	/* And A may change the file now. */
	CU_ASSERT_EQUAL(vol_open_file(a, fa.ino, true), 0);
	vol_release_file(a, fa.ino, true);
	vol_forget(b, fa.ino, 1);

	CU_ASSERT_EQUAL(cleanup(), 0);
	CU_ASSERT(unit_fsck_clean(uhost_lun_path, "after the retried release"));
}

/*
 * B holds a file READONLY (open for reading) and changes its mode, which
 * upgrades the lock; the upgrade's answer is lost (its compare-and-write
 * times out, as when a path goes away).  The upgrade is asked again
 * within the operation's wait instead of the chmod failing.
 */
static void test_lost_upgrade_retried(void)
{
	struct vol_setattr sa = { .mode = 0600 };
	struct vol_attr fa, a2;
	struct vol *a, *b;

	b_reads_a_file(&fa);
	a = hosts[0].v;
	b = hosts[1].v;
	/* The upgrade is the next write of B's engine. */
	lun_fault_fail_nth_write(hosts[1].lun, 1, -ETIMEDOUT);
	CU_ASSERT_EQUAL(vol_setattr(b, fa.ino, &sa, VOL_SET_MODE, &a2), 0);
	lun_fault_fail_nth_write(hosts[1].lun, 0, 0);
	CU_ASSERT_EQUAL(a2.mode & 07777, 0600);
	vol_release_file(b, fa.ino, false);
	CU_ASSERT(disk_lock_frees(hosts[0].lun, fa.ino));
	CU_ASSERT_EQUAL(vol_getattr(a, fa.ino, &a2), 0);
	CU_ASSERT_EQUAL(a2.mode & 07777, 0600);
	vol_forget(b, fa.ino, 1);

	CU_ASSERT_EQUAL(cleanup(), 0);
	CU_ASSERT(unit_fsck_clean(uhost_lun_path, "after the retried upgrade"));
}

/*
 * A lock change of B's whose answer was lost landed after all (a path
 * cut mid-command): the record names B as the EXCLUSIVE holder of a
 * directory while B's engine counts it free.  B's next operation there
 * wants it READONLY: it must take the lock as it is (EXCLUSIVE covers
 * reading) instead of failing with EINVAL, as every operation there did,
 * and let it go at the operation's end so that A can use the directory.
 */
static void test_lost_answer_adopted(void)
{
	uint8_t uuid[VMFS_UUID_SIZE] = { 0xa1, [15] = 1 };
	struct lock_host lh;
	struct lock_ctx *lk;
	struct lock_state st;
	struct vol_attr fa;
	struct lun *raw;
	uint64_t d;
	struct vol *a, *b;

	uhost_volume("cluster.img");
	uhost_up(&hosts[0], 0, false);
	uhost_up(&hosts[1], 1, false);
	CU_ASSERT_FATAL(vol_cluster_is_shared(hosts[1].v));
	a = hosts[0].v;
	b = hosts[1].v;
	d = mkdir_at(a, VMFS_ROOT_INO, "d");
	CU_ASSERT_EQUAL_FATAL(vol_lookup(b, VMFS_ROOT_INO, "d", &fa), 0);

	/* B's lost acquire: its identity, another handle, EXCLUSIVE. */
	memset(&lh, 0, sizeof(lh));
	lock_host_from_hb(&lh, hosts[1].hb, uuid);
	CU_ASSERT_FATAL(lun_open(uhost_lun_path, 0, &raw) == 0);
	CU_ASSERT_FATAL(lock_ctx_open(raw, &lh, hb_primitive(hosts[1].hb),
				      &lk) == 0);
	CU_ASSERT_EQUAL_FATAL(lock_acquire(lk, uhost_geom.res[VMFS_RES_INODE].obj_offset +
					   d * uhost_geom.res[VMFS_RES_INODE].obj_size,
					   VMFS_LOCK_EXCLUSIVE, 0, &st), 0);
	CU_ASSERT_EQUAL(disk_lock(hosts[0].lun, d).mode, VMFS_LOCK_EXCLUSIVE);

	/* B reads the directory (READONLY wanted), then creates in it. */
	CU_ASSERT_EQUAL(vol_lookup(b, d, "nothing", &fa), -ENOENT);
	create_at(b, d, "f", &fa);
	/* Let go at the operation's end: A works there. */
	CU_ASSERT(disk_lock_frees(hosts[0].lun, d));
	CU_ASSERT_EQUAL(vol_lookup(a, d, "f", &fa), 0);
	create_at(a, d, "g", &fa);

	lock_ctx_close(lk);
	lun_close(raw);
	CU_ASSERT_EQUAL(cleanup(), 0);
	CU_ASSERT(unit_fsck_clean(uhost_lun_path, "after the adopted lock"));
}

/*
 * A VM's lock handover (vol_file_detach / _attach): host A has a disk
 * open for writing, host B opens it too without its lock (detached),
 * A lets the lock go while its open stays, B takes it; at no point may
 * both write, and the lock on disk always names the host that may.
 */
static void handover_once(struct vol *a, struct vol *b, uint64_t ino,
			  const char *a_name)
{
	char buf[512], who[600] = "";

	memset(buf, 'a', sizeof(buf));
	CU_ASSERT_EQUAL_FATAL(vol_open_file(a, ino, true), 0);
	CU_ASSERT_EQUAL(vol_write(a, ino, buf, sizeof(buf), 0), 512);
	/* B: detached first, then its open needs no lock... */
	CU_ASSERT_EQUAL_FATAL(vol_file_detach(b, ino), 0);
	CU_ASSERT_EQUAL(vol_open_file(b, ino, true), VOL_OPEN_DIRECT);
	/* ... and it may not write while A holds the lock. */
	memset(buf, 'b', sizeof(buf));
	CU_ASSERT_EQUAL(vol_write(b, ino, buf, sizeof(buf), 0), -EIO);
	{
		struct vol_setattr sa = { .size = 0 };
		struct vol_attr at;

		CU_ASSERT_EQUAL(vol_setattr(b, ino, &sa, VOL_SET_SIZE, &at),
				-EIO);
	}
	/* B cannot take it while A's open holds it. */
	CU_ASSERT_EQUAL(vol_file_attach(b, ino, who, sizeof(who)), -EBUSY);
	CU_ASSERT(strstr(who, a_name) != NULL);
	CU_ASSERT_EQUAL(vol_write(b, ino, buf, sizeof(buf), 0), -EIO);
	/* A lets it go; its open stays, its writes are refused. */
	CU_ASSERT_EQUAL_FATAL(vol_file_detach(a, ino), 0);
	memset(buf, 'a', sizeof(buf));
	CU_ASSERT_EQUAL(vol_write(a, ino, buf, sizeof(buf), 512), -EIO);
	/* B takes it and writes. */
	CU_ASSERT_EQUAL_FATAL(vol_file_attach(b, ino, who, sizeof(who)), 0);
	memset(buf, 'b', sizeof(buf));
	CU_ASSERT_EQUAL(vol_write(b, ino, buf, sizeof(buf), 0), 512);
	/* A's open ends; no lock is taken back for it, B keeps writing. */
	vol_file_detach_end(a, ino);
	vol_release_file(a, ino, true);
	CU_ASSERT_EQUAL(vol_write(b, ino, buf, sizeof(buf), 512), 512);
	/* A, normal again, is refused an open while B holds it. */
	CU_ASSERT_EQUAL(vol_open_file(a, ino, true), -EBUSY);
	CU_ASSERT_EQUAL(vol_read(a, ino, buf, sizeof(buf), 0), 512);
	CU_ASSERT_EQUAL(buf[0], 'b');
	vol_release_file(b, ino, true);
}

static void test_detached_handover(void)
{
	struct vol_attr at;
	struct vol *a, *b;
	uint64_t ino;

	/* Nothing here waits for a lease: a long one, so that a disk stall
	 * of a few seconds fences nobody (at a 1 s lease one did, and the
	 * steps answered EIO instead of what they check). */
	uhost_lease_ms = 10000;
	two_hosts();
	uhost_lease_ms = UHOST_LEASE_MS_DEFAULT;
	a = hosts[0].v;
	b = hosts[1].v;
	ino = create_at(a, VMFS_ROOT_INO, "disk", &at);
	/* Disk only, then with the fast path's cached locks. */
	handover_once(a, b, ino, "u0");
	unet.member[0] = unet.member[1] = true;
	vol_cluster_set_net(a, &unet_ops, (void *)(uintptr_t)0);
	vol_cluster_set_net(b, &unet_ops, (void *)(uintptr_t)1);
	CU_ASSERT_FATAL(caching_becomes(0, true));
	CU_ASSERT_FATAL(caching_becomes(1, true));
	handover_once(a, b, ino, "u0");
	/* And back: B to A. */
	handover_once(b, a, ino, "u1");
	vol_cluster_set_net(a, NULL, NULL);
	vol_cluster_set_net(b, NULL, NULL);
	unet.member[0] = unet.member[1] = false;
	CU_ASSERT_EQUAL(cleanup(), 0);
	CU_ASSERT(unit_fsck_clean(uhost_lun_path, "after the detached handovers"));
}

/*
 * A fresh volume; host C (a child process, lease c_lease_ms) creates a
 * file and holds it open for writing; A and B join (lease 2 s: a
 * waiter's wait for a live holder is that long); prep(arg), if given,
 * runs; C is killed right after a renewal of its heartbeat.  Returns the
 * file's inode number.
 */
static uint64_t c_dies_holding_file_after(unsigned c_lease_ms,
					  void (*prep)(void *), void *arg)
{
	struct hb_slot_info si;
	uint64_t ino, counter;
	int done[2], st, k;
	pid_t pid;

	uhost_volume("cluster.img");
	uhost_lease_ms = c_lease_ms;
	CU_ASSERT_FATAL(pipe(done) == 0);
	pid = fork();   /* before any thread: the child starts its own */
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0)
		host_c_holds_file(-1, done[1]);
	close(done[1]);
	uhost_lease_ms = 2000;
	uhost_up(&hosts[0], 0, false);
	uhost_up(&hosts[1], 1, false);
	uhost_lease_ms = UHOST_LEASE_MS_DEFAULT;
	if (read(done[0], &ino, sizeof(ino)) != sizeof(ino)) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		close(done[0]);
		CU_FAIL_FATAL("host C's process ended early");
	}
	close(done[0]);
	if (prep)
		prep(arg);
	CU_ASSERT_FATAL(slot_of(2, &si));
	counter = si.counter;
	for (k = 0; k < 1000 && slot_of(2, &si) && si.counter == counter; k++)
		usleep(2000);
	kill(pid, SIGKILL);
	CU_ASSERT_FATAL(waitpid(pid, &st, 0) == pid);
	CU_ASSERT_FATAL(si.counter != counter);
	return ino;
}

static uint64_t c_dies_holding_file(void)
{
	return c_dies_holding_file_after(2000, NULL, NULL);
}

/*
 * A host that dies just after a renewal holds a lock another host waits
 * for.  The waiter judges it dead only a lease and a renewal after it
 * first saw that renewal, later than the wait for a live holder (one
 * lease) ends: the waiter must not give up with EBUSY then, but wait
 * until the dead host is recovered and its lock broken.
 */
static void test_dead_holder_waited_for(void)
{
	struct hb_slot_info si;
	struct vol_setattr sa = { .mode = 0600 };
	struct vol_attr fa, a2;
	struct timespec t0, t1;
	int ret;

	fa.ino = c_dies_holding_file();

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = vol_setattr(hosts[0].v, fa.ino, &sa, VOL_SET_MODE, &a2);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("[chmod %d after %ld ms] ", ret,
	       (long)((t1.tv_sec - t0.tv_sec) * 1000 +
		      (t1.tv_nsec - t0.tv_nsec) / 1000000));
	CU_ASSERT_EQUAL(ret, 0);
	CU_ASSERT_EQUAL(a2.mode & 07777, 0600);
	CU_ASSERT_FALSE(slot_of(2, &si));   /* recovered: its slot is free */

	CU_ASSERT_EQUAL(cleanup(), 0);
	CU_ASSERT(unit_fsck_clean(uhost_lun_path, "after the dead holder's lock was broken"));
}

/* What a test's thread does an operation on, and how it went. */
struct op_arg {
	struct vol *v;
	uint64_t ino;
	ssize_t ret;
	int64_t took_ms, end_ms;
};

static int64_t ms_now(void);

static void *chmod_thread(void *p)
{
	struct op_arg *ca = p;
	struct vol_setattr sa = { .mode = 0640 };
	struct vol_attr a;
	int64_t t0 = ms_now();

	ca->ret = vol_setattr(ca->v, ca->ino, &sa, VOL_SET_MODE, &a);
	ca->end_ms = ms_now();
	ca->took_ms = ca->end_ms - t0;
	return NULL;
}

/* One try of test_dead_holder_two_waiters: false if B took the lock
 * before A could (the case the test is about did not come up). */
static bool two_waiters_once(void)
{
	struct hb_slot_info si;
	struct op_arg ca;
	struct vol_attr fa;
	pthread_t th;
	int64_t t0, a_ms;
	int ret;

	fa.ino = c_dies_holding_file();

	ca.v = hosts[1].v;
	ca.ino = fa.ino;
	CU_ASSERT_FATAL(pthread_create(&th, NULL, chmod_thread, &ca) == 0);
	/* C's slot freed: A takes the lock (a read-only open) and keeps it
	 * a second.  B polls it a few hundred ms apart by now, and may
	 * come first. */
	t0 = ms_now();
	while (slot_of(2, &si) && ms_now() - t0 < 30000)
		usleep(1000);
	ret = vol_open_file(hosts[0].v, fa.ino, false);
	a_ms = ms_now();
	CU_ASSERT(ret >= 0);
	sleep(1);
	if (ret >= 0)
		vol_release_file(hosts[0].v, fa.ino, false);
	pthread_join(th, NULL);
	printf("[B's chmod %d after %lld ms, %s] ", (int)ca.ret,
	       (long long)ca.took_ms,
	       ca.end_ms < a_ms ? "before A's open" : "after A's open");
	CU_ASSERT_EQUAL(ca.ret, 0);

	CU_ASSERT_EQUAL(cleanup(), 0);
	CU_ASSERT(unit_fsck_clean(uhost_lun_path, "after two survivors took a dead host's lock"));
	return ca.end_ms >= a_ms;
}

/*
 * Two survivors wait for the same lock of a dead host.  B's chmod waits
 * for it from the kill on; once C is recovered, A breaks the lock first
 * (a read-only open) and holds it for a second, well past the lease B's
 * wait for a live holder started with.  B must then wait for A as for
 * any live holder (a wait of its own), not give up with EBUSY because
 * its time went on the dead host: in the multi-host storm, write()
 * failed so when two survivors wanted the volume's one small-block
 * cluster after its holder died.  B wins the race about half the time;
 * then the try tells nothing, and it is made again (up to 6 tries).
 */
static void test_dead_holder_two_waiters(void)
{
	int k;

	for (k = 0; k < 6; k++)
		if (two_waiters_once())
			break;
	CU_ASSERT(k < 6);
}

/* A bare host: a heartbeat slot and a lock manager, no engine (as
 * build/lockhold), to hold a lock an engine's operation must wait for. */
struct bare {
	struct lun *lun;
	struct hb *hb;
	struct lock_ctx *ctx;
};

static void bare_up(struct bare *b, uint8_t id)
{
	uint8_t uuid[VMFS_UUID_SIZE] = { id, [15] = 1 };
	struct lock_host host;
	struct hb_opts o;

	CU_ASSERT_FATAL(lun_open(uhost_lun_path, 0, &b->lun) == 0);
	memset(&o, 0, sizeof(o));
	o.host_uuid = uuid;
	o.hostname = "bare";
	o.lease_ms = uhost_lease_ms;
	o.journal_offset = uhost_geom.journal_offset;
	o.journal_size = uhost_geom.journal_size_bytes;
	CU_ASSERT_FATAL(hb_join(b->lun, uhost_geom.hb_offset, &o, &b->hb) == 0);
	lock_host_from_hb(&host, b->hb, uuid);
	CU_ASSERT_FATAL(lock_ctx_open(b->lun, &host, 0, &b->ctx) == 0);
}

static void bare_down(struct bare *b)
{
	lock_ctx_close(b->ctx);
	CU_ASSERT_EQUAL(hb_leave(b->hb), 0);
	lun_close(b->lun);
}

/* B writes dir/f (len bytes of data) and goes, after a bare host (id)
 * joined so that A keeps sharing the volume.  Returns f's inode. */
static uint64_t b_leaves_file(uint64_t dir, const char *data, size_t len,
			      struct bare *bare, uint8_t id)
{
	struct vol_attr fa;

	create_at(hosts[1].v, dir, "f", &fa);
	CU_ASSERT_FATAL(vol_open_file(hosts[1].v, fa.ino, true) == 0);
	CU_ASSERT_FATAL(vol_write(hosts[1].v, fa.ino, data, len, 0) ==
			(ssize_t)len);
	vol_release_file(hosts[1].v, fa.ino, true);
	bare_up(bare, id);
	CU_ASSERT_EQUAL_FATAL(uhost_down(&hosts[1]), 0);
	return fa.ino;
}

/* An operation that frees inode ino (no links left), as a forget does
 * on a host that kept the file's lock from its unlink. */
static void *free_thread(void *p)
{
	struct op_arg *fa = p;
	struct vinode *vi;
	VCL_OP(fa->v);
	int ret = vcl_lock_ino(fa->v, fa->ino, VMFS_LOCK_EXCLUSIVE);

	if (!ret)
		ret = vol_inode_get(fa->v, fa->ino, &vi);
	if (!ret) {
		{
			VOL_HANDLE(fa->v);

			pthread_rwlock_wrlock(&vi->rw);
			ret = vol_inode_free(fa->v, vi);
			pthread_rwlock_unlock(&vi->rw);
		}
		vol_inode_put(fa->v, vi);
	}
	fa->ret = VCL_END(fa->v, ret);
	return NULL;
}

/* Does slot hold the lock st? */
static bool held_by(const struct lock_state *st, unsigned slot)
{
	for (uint32_t i = 0; i < st->nholders; i++)
		if (st->holders[i].slot == slot)
			return true;
	return false;
}

/*
 * Freeing a file takes its inode's cluster before the clusters of its
 * blocks, in the order a create takes them (the inode, then a directory
 * chunk): a host freeing and another creating must not each hold the
 * cluster the other waits for.  In the multi-host storm they did: both
 * waited a lease, one gave up, and its free was lost (fsck: objects in
 * use owned by nothing; a forget, which frees a file whose lock the
 * host kept, took the blocks' cluster first).  B writes /d/f (a small
 * block) and goes; A looks f up and unlinks it; a bare host (heartbeat and
 * lock manager only, as build/lockhold) takes f's inode cluster; A's
 * operation that frees f must wait for that cluster holding no
 * small-block cluster, and finish once the bare host lets go.  (No host
 * here keeps locks between operations: none can be asked for them.)
 */
static void test_free_takes_inode_cluster_first(void)
{
	const struct vol_res_geom *ri = &uhost_geom.res[VMFS_RES_INODE];
	const struct vol_res_geom *rs;
	char data[5000];
	struct bare bare;
	struct op_arg fr;
	struct vol_attr fa;
	struct lock_state st;
	pthread_t th;
	uint64_t d, rk;
	bool held = false;

	two_hosts();
	rs = &uhost_geom.res[VMFS_RES_SMALL];
	d = mkdir_at(hosts[1].v, VMFS_ROOT_INO, "d");
	memset(data, 'f', sizeof(data));
	fa.ino = b_leaves_file(d, data, sizeof(data), &bare, 0xc7);
	/* Looked up (as a kernel does), so not freed by the unlink. */
	CU_ASSERT_EQUAL_FATAL(lookup_at(hosts[0].v, d, "f"), fa.ino);
	CU_ASSERT_EQUAL_FATAL(vol_unlink(hosts[0].v, d, "f"), 0);
	rk = ri->hdr_offset + fa.ino / ri->per_cluster * VMFS_MD_BLOCK_SIZE;
	CU_ASSERT_FATAL(lock_acquire(bare.ctx, rk, VMFS_LOCK_EXCLUSIVE, 0, NULL) == 0);

	fr.v = hosts[0].v;
	fr.ino = fa.ino;
	CU_ASSERT_FATAL(pthread_create(&th, NULL, free_thread, &fr) == 0);
	/* While A's free waits for the inode cluster: its small blocks'
	 * cluster is not A's. */
	for (int k = 0; k < 20 && !held; k++) {
		usleep(50000);
		st = disk_lock_at(bare.lun, rs->hdr_offset);
		held = held_by(&st, hb_slot_index(hosts[0].hb));
	}
	CU_ASSERT_FALSE(held);
	CU_ASSERT_EQUAL(lock_release(bare.ctx, rk, NULL), 0);
	pthread_join(th, NULL);
	if (fr.ret)
		printf("[the free: %s] ", strerror((int)-fr.ret));
	CU_ASSERT_EQUAL(fr.ret, 0);
	vol_forget(hosts[0].v, fa.ino, 1);
	bare_down(&bare);

	CU_ASSERT_EQUAL(cleanup(), 0);
	CU_ASSERT(unit_fsck_clean(uhost_lun_path, "after a free that waited for its inode cluster"));
}

static void *grow_thread(void *p)
{
	struct op_arg *ga = p;

	ga->ret = vol_write(ga->v, ga->ino, "z", 1, 4 * MIB);
	return NULL;
}

/* Does slot hold any cluster lock of area t (on disk)? */
static bool holds_any_cluster(struct lun *lun, enum vmfs_res_type t,
			      unsigned slot)
{
	const struct vol_res_geom *r = &uhost_geom.res[t];

	for (uint32_t c = 0; c < r->nclusters; c++) {
		struct lock_state st = disk_lock_at(lun, r->hdr_offset +
						    (uint64_t)c * VMFS_MD_BLOCK_SIZE);

		if (held_by(&st, slot))
			return true;
	}
	return false;
}

/*
 * A file that grows out of small blocks locks its small blocks' cluster
 * before it allocates file blocks (small, then file: the order an
 * allocation of small blocks that finds them all used goes in).  B
 * writes /f (a small block) and goes; A opens f for writing; a bare
 * host holds the small-block cluster; A's write at 4 MiB must wait for
 * it holding no file-block cluster, then finish with f's data whole.
 */
static void test_grow_takes_small_cluster_first(void)
{
	const struct vol_res_geom *rs;
	char data[5000], back[5000];
	struct bare bare;
	struct op_arg ga;
	struct vol_attr fa;
	pthread_t th;
	bool held = false;

	two_hosts();
	rs = &uhost_geom.res[VMFS_RES_SMALL];
	memset(data, 'g', sizeof(data));
	fa.ino = b_leaves_file(VMFS_ROOT_INO, data, sizeof(data), &bare, 0xc8);
	CU_ASSERT_FATAL(vol_open_file(hosts[0].v, fa.ino, true) == 0);
	CU_ASSERT_FATAL(lock_acquire(bare.ctx, rs->hdr_offset, VMFS_LOCK_EXCLUSIVE,
				     0, NULL) == 0);

	ga.v = hosts[0].v;
	ga.ino = fa.ino;
	CU_ASSERT_FATAL(pthread_create(&th, NULL, grow_thread, &ga) == 0);
	for (int k = 0; k < 20 && !held; k++) {
		usleep(50000);
		held = holds_any_cluster(bare.lun, VMFS_RES_FILE,
					 hb_slot_index(hosts[0].hb));
	}
	CU_ASSERT_FALSE(held);
	CU_ASSERT_EQUAL(lock_release(bare.ctx, rs->hdr_offset, NULL), 0);
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(ga.ret, 1);
	CU_ASSERT_EQUAL(vol_read(hosts[0].v, fa.ino, back, sizeof(back), 0),
			(ssize_t)sizeof(back));
	CU_ASSERT(memcmp(back, data, sizeof(data)) == 0);
	vol_release_file(hosts[0].v, fa.ino, true);
	bare_down(&bare);

	CU_ASSERT_EQUAL(cleanup(), 0);
	CU_ASSERT(unit_fsck_clean(uhost_lun_path, "after a file grew out of small blocks"));
}

/* A write of two blocks where the file needs its first pointer block. */
static void *span_thread(void *p)
{
	static char two[2 * MIB];
	struct op_arg *wa = p;

	memset(two, 's', sizeof(two));
	wa->ret = vol_write(wa->v, wa->ino, two, sizeof(two),
			    (uint64_t)VMFS_NDIRECT * MIB);
	return NULL;
}

/*
 * A write allocates all its data blocks before it maps them (pointer
 * blocks after file blocks).  The volume has three file-block clusters;
 * A fills the first but one block, a bare host holds the other two.  A's
 * 2 MiB write where f needs its first pointer block gets the free block,
 * then must wait for a cluster of the bare host holding no pointer-block
 * cluster; given it, the write finishes with f's data whole.
 */
static void test_write_takes_data_before_pointers(void)
{
	const struct vol_res_geom *rf;
	struct vol_attr fill, fa;
	struct bare bare;
	struct op_arg wa;
	pthread_t th;
	bool held = false;
	char back[4096];
	uint64_t n0;

	uhost_volume_sized("cluster-span.img", 3072 * MIB);
	rf = &uhost_geom.res[VMFS_RES_FILE];
	CU_ASSERT_FATAL(rf->nclusters >= 3);
	n0 = rf->per_cluster;
	bare_up(&bare, 0xc9);
	uhost_up(&hosts[0], 0, false);
	CU_ASSERT_FATAL(vol_cluster_is_shared(hosts[0].v));
	create_at(hosts[0].v, VMFS_ROOT_INO, "fill", &fill);
	CU_ASSERT_FATAL(vol_fallocate(hosts[0].v, fill.ino, 0, 0,
				      (n0 - 1) * MIB) == 0);
	create_at(hosts[0].v, VMFS_ROOT_INO, "f", &fa);
	CU_ASSERT_FATAL(vol_open_file(hosts[0].v, fa.ino, true) == 0);
	for (uint32_t c = 1; c < rf->nclusters; c++)
		CU_ASSERT_FATAL(lock_acquire(bare.ctx, rf->hdr_offset +
					     (uint64_t)c * VMFS_MD_BLOCK_SIZE,
					     VMFS_LOCK_EXCLUSIVE, 0, NULL) == 0);

	wa.v = hosts[0].v;
	wa.ino = fa.ino;
	unit_log_collect_begin();
	CU_ASSERT_FATAL(pthread_create(&th, NULL, span_thread, &wa) == 0);
	for (int k = 0; k < 20 && !held; k++) {
		usleep(50000);
		held = holds_any_cluster(bare.lun, VMFS_RES_PTRBLK,
					 hb_slot_index(hosts[0].hb));
	}
	CU_ASSERT_FALSE(held);
	for (uint32_t c = 1; c < rf->nclusters; c++)
		CU_ASSERT_EQUAL(lock_release(bare.ctx, rf->hdr_offset +
					     (uint64_t)c * VMFS_MD_BLOCK_SIZE,
					     NULL), 0);
	pthread_join(th, NULL);
	/* The check that would have told (vcl_lock_cluster) says nothing. */
	CU_ASSERT_PTR_NULL(strstr(unit_log_collect_end(), "out of lock order"));
	CU_ASSERT_EQUAL(wa.ret, (ssize_t)(2 * MIB));
	for (int b = 0; b < 2; b++) {
		CU_ASSERT_EQUAL(vol_read(hosts[0].v, fa.ino, back, sizeof(back),
					 (VMFS_NDIRECT + b) * MIB + MIB - sizeof(back)),
				(ssize_t)sizeof(back));
		CU_ASSERT(back[0] == 's' && back[sizeof(back) - 1] == 's');
	}
	vol_release_file(hosts[0].v, fa.ino, true);
	bare_down(&bare);

	CU_ASSERT_EQUAL(cleanup(), 0);
	CU_ASSERT(unit_fsck_clean(uhost_lun_path, "after a write that waited for a data cluster"));
}

/*
 * An operation that gives up on a resource cluster says so: which
 * cluster, who holds it, how long it waited and what it held (the
 * line OPERATIONS.md shows).  A bare host keeps the one small-block
 * cluster past a lease; A's write that needs a small block fails with
 * EBUSY and logs it, then works once the cluster is free.
 */
static void test_cluster_give_up_logged(void)
{
	const struct vol_res_geom *rs;
	char data[5000], want[200];
	const char *log;
	struct vol_attr fa;
	struct bare bare;

	uhost_volume("cluster-giveup.img");
	rs = &uhost_geom.res[VMFS_RES_SMALL];
	CU_ASSERT_FATAL(rs->nclusters == 1);
	bare_up(&bare, 0xca);
	uhost_up(&hosts[0], 0, false);
	CU_ASSERT_FATAL(vol_cluster_is_shared(hosts[0].v));
	create_at(hosts[0].v, VMFS_ROOT_INO, "f", &fa);
	CU_ASSERT_FATAL(vol_open_file(hosts[0].v, fa.ino, true) == 0);
	CU_ASSERT_FATAL(lock_acquire(bare.ctx, rs->hdr_offset, VMFS_LOCK_EXCLUSIVE,
				     0, NULL) == 0);
	memset(data, 'q', sizeof(data));
	unit_log_collect_begin();
	CU_ASSERT_EQUAL(vol_write(hosts[0].v, fa.ino, data, sizeof(data), 0),
			-EBUSY);
	log = unit_log_collect_end();
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "small blocks cluster 0 is locked by host bare"));
	snprintf(want, sizeof(want), "gave up after waiting at least %u ms (the operation held: %llu)",
		 uhost_lease_ms, (unsigned long long)(uhost_geom.res[VMFS_RES_INODE].obj_offset +
					       fa.ino * uhost_geom.res[VMFS_RES_INODE].obj_size));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, want));
	if (!strstr(log, want))
		fprintf(stderr, "\n  wanted \"%s\" in: %s\n", want, log);
	CU_ASSERT_EQUAL(lock_release(bare.ctx, rs->hdr_offset, NULL), 0);
	CU_ASSERT_EQUAL(vol_write(hosts[0].v, fa.ino, data, sizeof(data), 0),
			(ssize_t)sizeof(data));
	vol_release_file(hosts[0].v, fa.ino, true);
	bare_down(&bare);

	CU_ASSERT_EQUAL(cleanup(), 0);
	CU_ASSERT(unit_fsck_clean(uhost_lun_path, "after a write gave up on a cluster"));
}

struct stopped_arg {
	struct bare bare;
	struct vol_attr ga;
	uint64_t addr;
};

/* test_live_holder_while_host_stopped's set-up: A creates g, a bare
 * host joins and takes g's lock. */
static void bare_holds_g(void *p)
{
	struct stopped_arg *sa = p;
	const struct vol_res_geom *ri = &uhost_geom.res[VMFS_RES_INODE];

	create_at(hosts[0].v, VMFS_ROOT_INO, "g", &sa->ga);
	bare_up(&sa->bare, 0xcb);
	sa->addr = ri->obj_offset + sa->ga.ino * ri->obj_size;
	CU_ASSERT_FATAL(lock_acquire(sa->bare.ctx, sa->addr, VMFS_LOCK_EXCLUSIVE,
				     0, NULL) == 0);
}

/*
 * A live holder in the way while another host is stopped may itself
 * wait for that host's locks: in the storm, B waited for the root
 * directory, which A's operation held while it waited for the dead C,
 * and gave up a second before C was recovered.  A bare host holds g's
 * lock; C dies; A's chmod of g, from right after the kill, must not
 * fail when its live wait (2 s) ends, C not yet recovered then: it
 * waits on, and the bare host lets go a second past the live wait.
 */
static void test_live_holder_while_host_stopped(void)
{
	struct stopped_arg sa;
	struct op_arg ca;
	pthread_t th;

	/* C's lease 4 s: recovered 4.8 s after the kill at the earliest,
	 * well after A's live wait (2 s) ends. */
	(void)c_dies_holding_file_after(4000, bare_holds_g, &sa);
	ca.v = hosts[0].v;
	ca.ino = sa.ga.ino;
	CU_ASSERT_FATAL(pthread_create(&th, NULL, chmod_thread, &ca) == 0);
	usleep(3000 * 1000);
	CU_ASSERT_EQUAL(lock_release(sa.bare.ctx, sa.addr, NULL), 0);
	pthread_join(th, NULL);
	printf("[A's chmod %d after %lld ms] ", (int)ca.ret, (long long)ca.took_ms);
	CU_ASSERT_EQUAL(ca.ret, 0);
	CU_ASSERT(ca.took_ms >= 2900);
	bare_down(&sa.bare);

	CU_ASSERT_EQUAL(cleanup(), 0);
	CU_ASSERT(unit_fsck_clean(uhost_lun_path, "after a wait for a live holder while a host was dead"));
}

/*
 * An open does not wait so: the holder of a file's open lock has the
 * file open and waits for nobody.  Same set-up (C stopped, its recovery
 * 4.8 s after the kill at the earliest); A's open of g for writing fails
 * with EBUSY after its usual wait (2 s), not after C's recovery.
 */
static void test_open_not_held_by_stopped_host(void)
{
	struct stopped_arg sa;
	int64_t t0, took;
	int ret;

	(void)c_dies_holding_file_after(4000, bare_holds_g, &sa);
	t0 = ms_now();
	ret = vol_open_file(hosts[0].v, sa.ga.ino, true);
	took = ms_now() - t0;
	printf("[A's open %d after %lld ms] ", ret, (long long)took);
	CU_ASSERT_EQUAL(ret, -EBUSY);
	CU_ASSERT(took < 4000);
	if (ret >= 0)
		vol_release_file(hosts[0].v, sa.ga.ino, true);
	CU_ASSERT_EQUAL(lock_release(sa.bare.ctx, sa.addr, NULL), 0);
	bare_down(&sa.bare);

	CU_ASSERT_EQUAL(cleanup(), 0);
	CU_ASSERT(unit_fsck_clean(uhost_lun_path, "after an open refused while a host was dead"));
}

/* Open and close n files f00000.. of the root (looked up, then forgotten). */
static void open_close_files(struct vol *v, int n)
{
	for (int i = 0; i < n; i++) {
		struct vol_attr a;
		char name[16];

		snprintf(name, sizeof(name), "f%05d", i);
		CU_ASSERT_EQUAL_FATAL(vol_lookup(v, VMFS_ROOT_INO, name, &a), 0);
		CU_ASSERT_EQUAL_FATAL(vol_open_file(v, a.ino, true), 0);
		vol_release_file(v, a.ino, true);
		vol_forget(v, a.ino, 1);
	}
}

/* The lock table's entries after waiting at most ms for at most want. */
static uint64_t held_entries_within(struct vol *v, uint64_t want, unsigned ms)
{
	struct vol_net_stats ns;

	for (unsigned waited = 0;; waited += 100) {
		vol_cluster_net_stats(v, &ns);
		if (ns.entries <= want || waited >= ms)
			return ns.entries;
		usleep(100000);
	}
}

/*
 * The lock table stays bounded: a lone host that opened and closed
 * 33,000 files (an entry each, remembering nothing once closed) frees
 * those entries at its next ticks, down to at most 16,384 (VHELD_KEEP).
 * Between that and twice as many, entries go once unused for 10 s
 * (VHELD_IDLE_MS): 20,000 files opened again stay past a tick, and are
 * down to the bound within seconds of the 10 s.
 */
static void test_held_table_bounded(void)
{
	enum { NFILES = 33000 };
	struct vol_net_stats ns;
	struct vol_mkfs_opts o;
	uint64_t left;
	int64_t t0, took;
	struct lun *lun;
	struct vol *v;

	uhost_lun_path = unit_tmp_path("cluster-held.img");
	unit_scratch_opts(&o);
	o.journal_size = 4 * MIB;
	o.inode_count = NFILES + 1024;
	unit_scratch_mkfs(uhost_lun_path, 4096 * MIB, &o, &lun);
	CU_ASSERT_FATAL(vol_geom_read(lun, &uhost_geom, NULL, NULL) == 0);
	lun_close(lun);
	uhost_up(&hosts[0], 0, false);
	v = hosts[0].v;
	for (int i = 0; i < NFILES; i++) {
		struct vol_attr a;
		char name[16];

		snprintf(name, sizeof(name), "f%05d", i);
		CU_ASSERT_EQUAL_FATAL(vol_create(v, VMFS_ROOT_INO, name, S_IFREG | 0644,
						 0, 0, 0, &a), 0);
		CU_ASSERT_EQUAL_FATAL(vol_open_file(v, a.ino, true), 0);
		vol_release_file(v, a.ino, true);
		vol_forget(v, a.ino, 1);
	}
	/* Without the bound: NFILES entries, for as long as it is mounted. */
	left = held_entries_within(v, 16384, 10000);
	CU_ASSERT(left <= 16384);
	if (left > 16384)
		fprintf(stderr, "\n  %llu entries left\n", (unsigned long long)left);

	/* 20,000: the grace keeps them past the next ticks (half a lease
	 * later, all still younger than 10 s); without it, or with a close
	 * not counted as a use, a tick would free every idle one at once. */
	t0 = vmfs_mono_ms();
	open_close_files(v, 20000);
	took = vmfs_mono_ms() - t0;
	vol_cluster_net_stats(v, &ns);
	CU_ASSERT(ns.entries > 16384);
	if (took < 5000) {
		usleep(uhost_lease_ms * 500);   /* half a lease: several ticks */
		vol_cluster_net_stats(v, &ns);
		CU_ASSERT(ns.entries > 16384);
	} else {
		printf("[opening 20,000 files took %lld ms: grace not timed] ",
		       (long long)took);
	}
	left = held_entries_within(v, 16384, 20000);
	CU_ASSERT(left <= 16384);
	CU_ASSERT(vmfs_mono_ms() - t0 >= 10000);

	CU_ASSERT_EQUAL(cleanup(), 0);
	CU_ASSERT(unit_fsck_clean(uhost_lun_path, "after 33,000 files opened and closed"));
}

/*
 * The watcher's reads of the slots are handed out (vol_cluster_slots:
 * the HA agent takes them instead of reading the slots itself): both
 * hosts are there, the reads keep coming (B's counter moves in them),
 * they come every quarter renewal (never older than half a renewal at 16
 * moments spread over two renewals; with reads a renewal apart, about
 * half of those moments would find an older one), and a read older than
 * asked for is refused.
 */
static void test_watcher_slots_shared(void)
{
	struct hb_slot_info si[8];
	uint64_t first = 0;
	uint32_t n = 0;
	bool moved = false;
	int found, fresh = 0;
	int64_t half = UHOST_LEASE_MS_DEFAULT / 5 / 2;

	two_hosts();
	/* Its first read comes a quarter renewal after the start. */
	for (int k = 0; k < 100 && vol_cluster_slots(hosts[0].v, 1000, si, 8,
							 &n); k++)
		usleep(20000);
	CU_ASSERT_EQUAL_FATAL(vol_cluster_slots(hosts[0].v, 1000, si, 8, &n), 0);
	CU_ASSERT_EQUAL(n, 2);
	found = 0;
	for (uint32_t i = 0; i < n; i++) {
		found |= si[i].host_uuid[0] == 0xa0 ? 1 : 0;
		if (si[i].host_uuid[0] == 0xa1) {
			found |= 2;
			first = si[i].counter;
		}
	}
	CU_ASSERT_EQUAL(found, 3);
	/* B renews every lease / 5; A's later reads show it. */
	for (int k = 0; k < 200 && !moved; k++) {
		usleep(20000);
		if (vol_cluster_slots(hosts[0].v, 1000, si, 8, &n))
			continue;
		for (uint32_t i = 0; i < n; i++)
			moved |= si[i].host_uuid[0] == 0xa1 &&
				 si[i].counter != first;
	}
	CU_ASSERT(moved);
	for (int k = 0; k < 16; k++) {
		usleep(110000);
		fresh += !vol_cluster_slots(hosts[0].v, half, si, 8, &n);
	}
	CU_ASSERT(fresh >= 14);
	if (fresh < 14)
		fprintf(stderr, "\n  %d of 16 reads at most %lld ms old\n",
			fresh, (long long)half);
	CU_ASSERT_EQUAL(vol_cluster_slots(hosts[0].v, -1, si, 8, &n), -EAGAIN);
	/* Room for fewer slots than are in use: refused, not cut short. */
	CU_ASSERT_EQUAL(vol_cluster_slots(hosts[0].v, 1000, si, 1, &n), -EAGAIN);
	CU_ASSERT_EQUAL(cleanup(), 0);
}


static int64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Without the fast path, hosts that ask on the disk (PROTOCOL.md §9a)
 * keep their locks between operations: A's creates in its own directory
 * take no lock and drain nothing one by one.  B's look into that
 * directory puts a want in B's slot; A's watcher sees it within a
 * quarter renewal and lets go, and both stop caching for a while (hosts
 * taking turns go the disk-only way), then cache again.  A file A keeps
 * open for writing is answered "kept" in A's slot, and B's stat of it
 * goes by the disk well before the lease-long wait would end.
 */
static void test_disk_asks(void)
{
	struct vol_net_stats na, nb;
	struct vol_attr at;
	struct vol *a, *b;
	struct hb_timeouts t;
	int64_t t0, took, look;
	int ret;
	uint64_t d, f;

	uhost_disk_asks = true;
	two_hosts();
	uhost_disk_asks = false;
	a = hosts[0].v;
	b = hosts[1].v;
	hb_timeouts_get(hosts[0].hb, &t);
	CU_ASSERT_FATAL(caching_becomes(0, true));
	CU_ASSERT_FATAL(caching_becomes(1, true));

	d = mkdir_at(a, VMFS_ROOT_INO, "own");
	create_at(a, d, "first", &at);
	creates_cached(a, d);
	vol_cluster_net_stats(a, &na);
	CU_ASSERT_EQUAL(na.disk_requests, 0);

	/* B looks in: A's directory lock is asked for on the disk. */
	t0 = ms_now();
	CU_ASSERT_EQUAL(count_dir(b, d), 23);   /* with . and .. */
	look = ms_now() - t0;
	CU_ASSERT(look < (int64_t)t.lease_ms);
	vol_cluster_net_stats(a, &na);
	vol_cluster_net_stats(b, &nb);
	CU_ASSERT(nb.disk_asked >= 1);
	CU_ASSERT(na.disk_requests >= 1);
	/* A let go of everything it kept, and both let go of the directory
	 * after each operation while they take turns at it; 5 s after the
	 * last ask, A keeps it again. */
	for (int k = 0; k < 100; k++) {
		vol_cluster_net_stats(a, &na);
		if (!na.cached)
			break;
		usleep(50000);
	}
	CU_ASSERT_EQUAL(na.cached, 0);
	create_at(b, d, "b0", &at);
	CU_ASSERT_EQUAL(disk_lock(hosts[1].lun, d).mode, VMFS_LOCK_FREE);
	create_at(a, d, "a-turn", &at);
	CU_ASSERT_EQUAL(disk_lock(hosts[0].lun, d).mode, VMFS_LOCK_FREE);
	CU_ASSERT_EQUAL(count_dir(a, d), 25);
	CU_ASSERT(caching_becomes(0, true));
	sleep(6);
	create_at(a, d, "a-again", &at);
	CU_ASSERT_EQUAL(disk_lock(hosts[0].lun, d).mode, VMFS_LOCK_EXCLUSIVE);

	/* A file A keeps open for writing: B's stat is answered "kept". */
	f = create_at(a, d, "disk.img", &at);
	CU_ASSERT_EQUAL_FATAL(vol_open_file(a, f, true), 0);
	create_at(a, d, "after-open", &at);   /* A caches it all again */
	t0 = ms_now();
	ret = vol_getattr(b, f, &at);
	CU_ASSERT_EQUAL(ret, 0);
	if (ret)
		fprintf(stderr, "\n  stat: %s ", strerror(-ret));
	took = ms_now() - t0;
	CU_ASSERT_EQUAL(at.ino, f);
	CU_ASSERT(took < (int64_t)t.lease_ms);
	vol_cluster_net_stats(a, &na);
	CU_ASSERT(na.disk_busy >= 1);
	fprintf(stderr, "\n  a look into a cached directory: %lld ms; stat of a file open elsewhere: %lld ms (lease %u ms) ",
		(long long)look, (long long)took,
		t.lease_ms);
	vol_release_file(a, f, true);

	CU_ASSERT_EQUAL(cleanup(), 0);
	CU_ASSERT(unit_fsck_clean(uhost_lun_path, "after the disk asks"));
}

static CU_TestInfo tests[] = {
	{ "watcher_slots_shared", test_watcher_slots_shared },
	{ "grow_online_shared", test_grow_online_shared },
	{ "no_cycle_across_hosts", test_no_cycle_across_hosts },
	{ "inode_reused_by_another_host", test_inode_reused_by_another_host },
	{ "readahead_not_past_handover", test_readahead_not_past_handover },
	{ "recoverer_dies", test_recoverer_dies },
	{ "dead_holder_waited_for", test_dead_holder_waited_for },
	{ "dead_holder_two_waiters", test_dead_holder_two_waiters },
	{ "free_takes_inode_cluster_first", test_free_takes_inode_cluster_first },
	{ "grow_takes_small_cluster_first", test_grow_takes_small_cluster_first },
	{ "write_takes_data_before_pointers", test_write_takes_data_before_pointers },
	{ "cluster_give_up_logged", test_cluster_give_up_logged },
	{ "live_holder_while_host_stopped", test_live_holder_while_host_stopped },
	{ "open_not_held_by_stopped_host", test_open_not_held_by_stopped_host },
	{ "held_table_bounded", test_held_table_bounded },
	{ "cached_locks_handed_over", test_cached_locks_handed_over },
	{ "uncache_is_not_a_request", test_uncache_is_not_a_request },
	{ "failed_release_retried", test_failed_release_retried },
	{ "lost_answer_adopted", test_lost_answer_adopted },
	{ "lost_upgrade_retried", test_lost_upgrade_retried },
	{ "detached_handover", test_detached_handover },
	{ "disk_asks", test_disk_asks },
	CU_TEST_INFO_NULL
};

UNIT_SUITE("vol_cluster", NULL, cleanup, tests);
