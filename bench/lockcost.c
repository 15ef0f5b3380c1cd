/*
 * What a lock costs (issue #10's "lock costs"): the I/Os and the time of
 * an uncontended acquire and release, and the time from a holder's
 * release to a waiting host having the lock, with each primitive, on a
 * LUN file.  The baseline in the same run is one 512-byte read and one
 * 512-byte write of the same file (the I/Os a change needs at least).
 * The third figure, the break of a dead host's locks, needs a host to
 * die: bench/cluster.sh measures it (kill -9 to the lock taken).
 *
 *   lockcost [DIR]        scratch file in DIR (default /tmp)
 *   lockcost --lun SPEC   a scratch LUN (an iscsi:// URL: the reserve path
 *                         through its lock LU); its first MiB is written
 *
 * On a LUN, only the primitives it has are measured.
 */
#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "vmfs/clock.h"
#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"

#define ADDR (8 * 4096u)
#define ROUNDS 2000
#define HANDOVERS 50

static int live(void *arg, const struct lock_holder *h)
{
	(void)arg;
	(void)h;
	return 1;
}

static void ident(struct lock_host *id, unsigned slot)
{
	memset(id, 0, sizeof(*id));
	memset(id->self.uuid, 0xb0 + slot, VMFS_UUID_SIZE);
	id->self.slot = slot;
	id->self.hb_gen = 1;
	id->is_live = live;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static void die(const char *what, int err)
{
	fprintf(stderr, "lockcost: %s: %s\n", what, strerror(-err));
	exit(1);
}

struct waiter {
	struct lock_ctx *ctx;
	atomic_int go;           /* 1: acquire now; 2: stop */
	atomic_llong got_us;     /* when the acquire returned */
	atomic_int waiting;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;

	for (;;) {
		int g;

		while (!(g = atomic_load(&w->go)))
			usleep(100);
		if (g == 2)
			return NULL;
		atomic_store(&w->go, 0);
		atomic_store(&w->waiting, 1);
		if (lock_acquire(w->ctx, ADDR, VMFS_LOCK_EXCLUSIVE, 30000, NULL))
			die("waiter acquire", -EBUSY);
		atomic_store(&w->got_us, vmfs_mono_us());
		atomic_store(&w->waiting, 0);
		if (lock_release(w->ctx, ADDR, NULL))
			die("waiter release", -EIO);
	}
}

static void one_primitive(const char *path, unsigned prim, double io_us)
{
	struct lun *inner, *f, *lb;
	struct lock_ctx *a, *b;
	struct lock_host ida, idb;
	struct lun_fault_counts c0, c1;
	int64_t t[HANDOVERS], t0;
	struct waiter w;
	pthread_t th;
	int ret;

	if ((ret = lun_open(path, 0, &inner)) || (ret = lun_fault_wrap(inner, &f)) ||
	    (ret = lun_open(path, 0, &lb)))
		die("open", ret);
	ident(&ida, 1);
	ident(&idb, 2);
	if ((ret = lock_ctx_open(f, &ida, prim, &a)) ||
	    (ret = lock_ctx_open(lb, &idb, prim, &b)))
		die("lock context", ret);

	/* Uncontended: acquire + release, ROUNDS times (the first one reads). */
	if ((ret = lock_acquire(a, ADDR, VMFS_LOCK_EXCLUSIVE, 0, NULL)) ||
	    (ret = lock_release(a, ADDR, NULL)))
		die("acquire", ret);
	lun_fault_counts(f, &c0);
	t0 = vmfs_mono_us();
	for (int i = 0; i < ROUNDS; i++) {
		if ((ret = lock_acquire(a, ADDR, VMFS_LOCK_EXCLUSIVE, 0, NULL)) ||
		    (ret = lock_release(a, ADDR, NULL)))
			die("acquire", ret);
	}
	{
		double us = (double)(vmfs_mono_us() - t0) / (2.0 * ROUNDS);

		lun_fault_counts(f, &c1);
		printf("%-8s uncontended acquire or release: %.1f us (%.2fx one read + one write); per change: %.2f reads, %.2f writes, %.2f compare-and-writes, %.2f reserves, %.2f releases\n",
		       lock_prim_name(prim), us, us / io_us,
		       (double)(c1.reads - c0.reads) / (2.0 * ROUNDS),
		       (double)(c1.writes - c0.writes) / (2.0 * ROUNDS),
		       (double)(c1.caws - c0.caws) / (2.0 * ROUNDS),
		       (double)(c1.reserves - c0.reserves) / (2.0 * ROUNDS),
		       (double)(c1.releases - c0.releases) / (2.0 * ROUNDS));
	}

	/* Handover: B waits while A holds; A releases; B has it when? */
	memset(&w, 0, sizeof(w));
	w.ctx = b;
	if (pthread_create(&th, NULL, waiter_main, &w))
		die("thread", -EAGAIN);
	for (int i = 0; i < HANDOVERS; i++) {
		int64_t rel;

		if ((ret = lock_acquire(a, ADDR, VMFS_LOCK_EXCLUSIVE, 30000, NULL)))
			die("holder acquire", ret);
		atomic_store(&w.got_us, 0);
		atomic_store(&w.go, 1);
		while (!atomic_load(&w.waiting))
			usleep(100);
		usleep(20000 + (useconds_t)(rand() % 20000)); /* B is in its backoff */
		rel = vmfs_mono_us();
		if ((ret = lock_release(a, ADDR, NULL)))
			die("holder release", ret);
		while (!atomic_load(&w.got_us))
			usleep(50);
		t[i] = atomic_load(&w.got_us) - rel;
	}
	atomic_store(&w.go, 2);
	pthread_join(th, NULL);
	qsort(t, HANDOVERS, sizeof(t[0]), cmp_i64);
	printf("%-8s handover (release by the holder to the waiter's acquire returning), %d rounds: median %.1f ms, p90 %.1f ms, max %.1f ms\n",
	       lock_prim_name(prim), HANDOVERS, t[HANDOVERS / 2] / 1000.0,
	       t[HANDOVERS * 9 / 10] / 1000.0, t[HANDOVERS - 1] / 1000.0);
	lock_ctx_close(a);
	lock_ctx_close(b);
	lun_close(f);
	lun_close(lb);
}

int main(int argc, char **argv)
{
	bool on_lun = argc > 2 && !strcmp(argv[1], "--lun");
	const char *dir = argc > 1 && !on_lun ? argv[1] : "/tmp";
	char path[4096];
	struct lun *lun;
	void *buf;
	int64_t t0;
	double io_us;
	int fd, ret;

	if (on_lun) {
		snprintf(path, sizeof(path), "%s", argv[2]);
		if (getenv("VMFS_CHAP_FILE"))
			lun_set_chap_file(getenv("VMFS_CHAP_FILE"));
	} else {
		snprintf(path, sizeof(path), "%s/vmfs-lockcost-%d.img", dir,
			 (int)getpid());
		fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
		if (fd < 0 || ftruncate(fd, 1 << 20)) {
			perror(path);
			return 1;
		}
		close(fd);
	}
	if ((ret = lun_open(path, 0, &lun)))
		die(path, ret);
	buf = lun_buf_alloc(4096);
	memset(buf, 0, 4096);
	t0 = vmfs_mono_us();
	for (int i = 0; i < ROUNDS; i++) {
		if ((ret = lun_read(lun, buf, 512, ADDR)) ||
		    (ret = lun_write(lun, buf, 512, ADDR)))
			die("baseline I/O", ret);
	}
	io_us = (double)(vmfs_mono_us() - t0) / ROUNDS;
	lun_buf_free(buf);
	printf("baseline one 512-byte read + one 512-byte write of the %s: %.1f us\n",
	       on_lun ? "LUN" : "LUN file", io_us);
	if (lock_prim_pick(lun, LOCK_PRIM_ATS))
		one_primitive(path, LOCK_PRIM_ATS, io_us);
	if (lock_prim_pick(lun, LOCK_PRIM_RESERVE))
		one_primitive(path, LOCK_PRIM_RESERVE, io_us);
	lun_close(lun);
	if (!on_lun)
		unlink(path);
	return 0;
}
