/*
 * prfence: storage fencing at the target, without a mount in the way
 * (tests/integration/t_iscsi_fence.sh).  Two lun handles on one iSCSI
 * LUN stand for two hosts, each registered with its own host key:
 *
 *   prfence LUN OFFSET
 *
 *   1. A and B register (lun_pr_register); A writes pattern 'a' at
 *      OFFSET, B writes 'b' at OFFSET + 4096: both land;
 *   2. B preempts A's key (lun_pr_preempt), as a survivor recovering A;
 *   3. A writes pattern 'z' at OFFSET: it must fail with EIO (the target
 *      answered RESERVATION CONFLICT) and A must be fenced;
 *   4. B reads OFFSET back: still 'a' (nothing A wrote after the preempt
 *      is on the LUN); B still writes;
 *   5. B preempting A again is success (A holds no registration).
 * Prints one line per step; exit 0 when every expectation held, 1 with
 * the first that did not.
 *
 *   prfence --leave-hold LUN [IO_TIMEOUT_MS [LOCK_IO_TIMEOUT_MS]]
 *
 * takes the LUN's reservation (lun_reserve: on a URL with ?lock_lun=N,
 * the lock LU's hold) and ends without releasing it, as a host does that
 * dies inside a hold, or whose RESERVE reached the target after it gave
 * up on it.  With IO_TIMEOUT_MS, the handle has that I/O timeout (a
 * mounted host's heartbeat handle has its heartbeat's), which sets the
 * hold's break time; LOCK_IO_TIMEOUT_MS sets lun_set_lock_io_timeout (a
 * mounted host's data handle: a longer I/O timeout, the heartbeat's for
 * its holds); without, a tool's default.
 *
 *   prfence --keys LUN
 *
 * prints the keys registered on the LUN, one "key 0x..." line each (a
 * read-only handle: it registers none of its own).
 *
 *   prfence --holder LUN
 *
 * prints "holder 0x... break N ms" for the key holding the reservation
 * (the lock LU's on a URL with ?lock_lun=N) and the break time it
 * announces (lun/iscsi_pr.c), or "holder none".
 *
 *   prfence --wait LUN MS
 *
 * waits up to MS for the reservation (lun_reserve), releases it if it
 * got it and prints "held" or "not held: ERROR"; exit 0 either way.
 * The backend's warnings go to stderr (a wait for the lock LU that ends
 * without it names what stood in the way).
 *
 *   prfence --cut-in-hold LUN OFFSET CMD
 *
 * a mounted host's two handles through a path cut in the middle of a
 * lock change (tests/integration/t_iscsi_multipath.sh): D, a data handle
 * (I/O timeout 4 s, 2 s inside its holds), and H, a heartbeat handle
 * (2 s), both logged in on LUN (a list of portals).  D takes the lock
 * LU's hold; CMD runs (sh -c: it cuts the path in use); H asks for the
 * hold, as a renewal would; D writes at OFFSET (the body's write, lost
 * with the path) and releases.  Prints the milliseconds from the cut to
 * D's write returning, to H holding the hold, and to D's release
 * returning ("cut: write N ms (RESULT), other handle held M ms, release
 * K ms"); exit 0 once H held it, 1 if it never did.
 *
 *   prfence --idle-backlog LUN HOLDS STALE IO_TIMEOUT_MS
 *
 * a handle I idle (I/O timeout IO_TIMEOUT_MS) while another, H, takes
 * and releases the lock LU's hold HOLDS times, with STALE registrations
 * left on the lock LU by handles killed while they waited for it (as a
 * lost session leaves one).  tgt queues a unit attention on I's nexus for
 * every stale registration at every release; I then takes the hold and
 * must get it, however far the backlog outlasts one command's deadline
 * (lun/iscsi.c lun_isc_run_raw).  Prints "idle: held after N ms behind M
 * holds" or fails.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmfs/clock.h"
#include "vmfs/log.h"
#include "vmfs/lun.h"
#include "../../lun/lun_int.h"

static int fail(const char *what, int err)
{
	fprintf(stderr, "prfence: %s: %s\n", what, vmfs_strerror(err));
	return 1;
}

static int leave_hold(const char *url, const char *io_ms,
		      const char *lock_io_ms)
{
	struct lun *l = NULL;
	int rc;

	if ((rc = lun_open(url, 0, &l)))
		return fail("open", rc);
	if (io_ms)
		lun_set_io_timeout(l, (unsigned)strtoul(io_ms, NULL, 10));
	if (lock_io_ms)
		lun_set_lock_io_timeout(l,
			(unsigned)strtoul(lock_io_ms, NULL, 10));
	if ((rc = lun_reserve(l, 5000)))
		return fail("reserve", rc);
	printf("reserved; ending without a release\n");
	fflush(stdout);
	_exit(0);
}

static int wait_hold(const char *url, const char *ms)
{
	struct lun *l = NULL;
	int rc;

	qb_log_init("prfence", LOG_USER, LOG_WARNING);
	qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, QB_FALSE);
	qb_log_filter_ctl(QB_LOG_STDERR, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE,
			  "*", LOG_WARNING);
	qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_TRUE);
	if ((rc = lun_open(url, 0, &l)))
		return fail("open", rc);
	rc = lun_reserve(l, (unsigned)strtoul(ms, NULL, 10));
	if (!rc)
		lun_release(l);
	printf("%s%s\n", rc ? "not held: " : "held", rc ? vmfs_strerror(rc) : "");
	lun_close(l);
	qb_log_fini();
	return 0;
}

static int list_keys(const char *url)
{
	uint64_t keys[64];
	struct lun *l = NULL;
	unsigned n;
	int rc;

	if ((rc = lun_open(url, LUN_RDONLY, &l)))
		return fail("open", rc);
	if ((rc = lun_iscsi_read_keys(l, keys, 64, &n)))
		return fail("read keys", rc);
	for (unsigned i = 0; i < n; i++)
		printf("key 0x%016" PRIx64 "\n", keys[i]);
	lun_close(l);
	return 0;
}

static int show_holder(const char *url)
{
	struct lun *l = NULL;
	uint64_t key;
	int rc;

	if ((rc = lun_open(url, LUN_RDONLY, &l)))
		return fail("open", rc);
	if ((rc = lun_iscsi_read_holder(l, &key)))
		return fail("read reservation", rc);
	if (key)	/* the top 12 bits: 16 ms units (lun/iscsi_pr.c) */
		printf("holder 0x%016" PRIx64 " break %u ms\n", key,
		       (unsigned)(key >> 52) * 16);
	else
		printf("holder none\n");
	lun_close(l);
	return 0;
}

struct hb_try {
	struct lun *h;
	int64_t t0, held_ms;
	int rc;
};

static void *hb_reserve(void *arg)
{
	struct hb_try *t = arg;

	t->rc = lun_reserve(t->h, 15000);
	t->held_ms = vmfs_mono_ms() - t->t0;
	if (!t->rc)
		lun_release(t->h);
	return NULL;
}

static int cut_in_hold(const char *url, const char *off, const char *cmd)
{
	struct hb_try t = { 0 };
	struct lun *d = NULL;
	int64_t write_ms, release_ms;
	pthread_t th;
	char *buf = lun_buf_alloc(4096);
	int rc, wrc;

	if (!buf)
		return fail("allocating", -ENOMEM);
	if ((rc = lun_open(url, 0, &d)) || (rc = lun_open(url, 0, &t.h)))
		return fail("open", rc);
	lun_set_io_timeout(d, 4000);
	lun_set_lock_io_timeout(d, 2000);
	lun_set_io_timeout(t.h, 2000);
	memset(buf, 'd', 4096);
	if ((rc = lun_reserve(d, 5000)))
		return fail("D's reserve", rc);
	if (system(cmd) != 0)
		return fail("the cut command", -EINVAL);
	t.t0 = vmfs_mono_ms();
	if ((rc = pthread_create(&th, NULL, hb_reserve, &t)))
		return fail("starting H", -rc);
	wrc = lun_write(d, buf, 4096, strtoull(off, NULL, 0));
	write_ms = vmfs_mono_ms() - t.t0;
	lun_release(d);
	release_ms = vmfs_mono_ms() - t.t0;
	pthread_join(th, NULL);
	printf("cut: write %lld ms (%s), other handle held %lld ms, release "
	       "%lld ms\n", (long long)write_ms,
	       wrc ? vmfs_strerror(wrc) : "written", (long long)t.held_ms,
	       (long long)release_ms);
	lun_close(t.h);
	lun_close(d);
	lun_buf_free(buf);
	return t.rc ? fail("H's reserve", t.rc) : 0;
}

/* A registration on the lock LU that nobody will end: a child's wait for
 * the hold h has, cut short by SIGKILL. */
static int leave_registration(const char *url, struct lun *h)
{
	struct lun *c = NULL;
	pid_t pid;
	int rc, st;

	if ((rc = lun_reserve(h, 5000)))
		return rc;
	pid = fork();
	if (pid < 0) {
		lun_release(h);
		return -errno;
	}
	if (!pid) {
		if (!lun_open(url, 0, &c))
			(void)lun_reserve(c, 60000);
		_exit(0);
	}
	usleep(500 * 1000);	/* its login, registration and first tries */
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return lun_release(h);
}

static int idle_backlog(const char *url, const char *holds,
			const char *stale, const char *io_ms)
{
	unsigned nholds = (unsigned)strtoul(holds, NULL, 10);
	unsigned nstale = (unsigned)strtoul(stale, NULL, 10);
	struct lun *h = NULL, *idle = NULL;
	int64_t t0;
	int rc;

	if ((rc = lun_open(url, 0, &h)) || (rc = lun_open(url, 0, &idle)))
		return fail("open", rc);
	lun_set_io_timeout(idle, (unsigned)strtoul(io_ms, NULL, 10));
	for (unsigned i = 0; i < nstale; i++)
		if ((rc = leave_registration(url, h)))
			return fail("leaving a registration behind", rc);
	for (unsigned i = 0; i < nholds; i++) {
		if ((rc = lun_reserve(h, 5000)))
			return fail("H's reserve", rc);
		if ((rc = lun_release(h)))
			return fail("H's release", rc);
	}
	t0 = vmfs_mono_ms();
	if ((rc = lun_reserve(idle, 5000)))
		return fail("the idle handle's reserve", rc);
	printf("idle: held after %lld ms behind %u holds\n",
	       (long long)(vmfs_mono_ms() - t0), nholds);
	lun_release(idle);
	lun_close(idle);
	lun_close(h);
	return 0;
}

int main(int argc, char **argv)
{
	static const uint8_t ua[16] = { 0xa }, ub[16] = { 0xb };
	struct lun *a = NULL, *b = NULL;
	uint64_t off, ka, kb;
	char *buf;
	int rc;

	if (argc != 3 && !(argc >= 4 && argc <= 5 &&
			   !strcmp(argv[1], "--leave-hold")) &&
	    !(argc == 5 && !strcmp(argv[1], "--cut-in-hold")) &&
	    !(argc == 6 && !strcmp(argv[1], "--idle-backlog")) &&
	    !(argc == 4 && !strcmp(argv[1], "--wait")))
		return fprintf(stderr, "usage: prfence LUN OFFSET | "
			       "prfence --leave-hold LUN [IO_TIMEOUT_MS "
			       "[LOCK_IO_TIMEOUT_MS]] | prfence --keys LUN | "
			       "prfence --holder LUN | prfence --wait LUN MS | "
			       "prfence --cut-in-hold LUN OFFSET CMD | "
			       "prfence --idle-backlog LUN HOLDS STALE "
			       "IO_TIMEOUT_MS\n"), 2;
	if (getenv("VMFS_CHAP_FILE"))	/* as the programs take it */
		lun_set_chap_file(getenv("VMFS_CHAP_FILE"));
	if (!strcmp(argv[1], "--keys"))
		return list_keys(argv[2]);
	if (!strcmp(argv[1], "--holder"))
		return show_holder(argv[2]);
	if (!strcmp(argv[1], "--wait"))
		return wait_hold(argv[2], argv[3]);
	if (!strcmp(argv[1], "--cut-in-hold"))
		return cut_in_hold(argv[2], argv[3], argv[4]);
	if (!strcmp(argv[1], "--idle-backlog"))
		return idle_backlog(argv[2], argv[3], argv[4], argv[5]);
	if (!strcmp(argv[1], "--leave-hold"))
		return leave_hold(argv[2], argc >= 4 ? argv[3] : NULL,
				  argc == 5 ? argv[4] : NULL);
	off = strtoull(argv[2], NULL, 0);
	ka = lun_pr_key(ua, 1);
	kb = lun_pr_key(ub, 1);
	buf = lun_buf_alloc(4096);
	if (!buf)
		return fail("allocating", -ENOMEM);
	if ((rc = lun_open(argv[1], 0, &a)) || (rc = lun_open(argv[1], 0, &b)))
		return fail("open", rc);
	if ((rc = lun_pr_register(a, ka)) || (rc = lun_pr_register(b, kb)))
		return fail("register", rc);
	printf("registered A 0x%016" PRIx64 " B 0x%016" PRIx64 "\n", ka, kb);
	memset(buf, 'a', 4096);
	if ((rc = lun_write(a, buf, 4096, off)))
		return fail("A's write before the preempt", rc);
	memset(buf, 'b', 4096);
	if ((rc = lun_write(b, buf, 4096, off + 4096)))
		return fail("B's write", rc);
	printf("both wrote\n");
	if ((rc = lun_pr_preempt(b, ka)))
		return fail("B preempting A", rc);
	printf("B preempted A\n");
	memset(buf, 'z', 4096);
	rc = lun_write(a, buf, 4096, off);
	if (rc != -EIO || !lun_is_fenced(a))
		return fail("A's write after the preempt did not fail with EIO "
			    "and fence A", rc ? rc : -EEXIST);
	printf("A's write refused: %s; A fenced\n", vmfs_strerror(rc));
	if ((rc = lun_read(b, buf, 4096, off)))
		return fail("B's read", rc);
	if (buf[0] != 'a' || memcmp(buf, buf + 1, 4095))
		return fail("the LUN holds what A wrote after the preempt",
			    -EEXIST);
	memset(buf, 'c', 4096);
	if ((rc = lun_write(b, buf, 4096, off)))
		return fail("B's write after the preempt", rc);
	if ((rc = lun_pr_preempt(b, ka)))
		return fail("B preempting A again", rc);
	printf("LUN unchanged by A; B writes; preempting again is a no-op\n");
	lun_close(a);
	lun_close(b);
	lun_buf_free(buf);
	return 0;
}
