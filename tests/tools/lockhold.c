/*
 * lockhold: a test program that takes on-disk locks through the lock
 * manager, as a host of its own, so that `vmfs locks` has records to list
 * before the engine takes any (tests/integration/t_hosts_locks.sh).
 *
 *   lockhold [--name NAME] [--exit] LUN OBJ=MODE...
 *     OBJ   hb | jnl:SLOT | rc:TYPE:INDEX (TYPE 0-3) | ino:N
 *     MODE  ex | ro | mw
 *
 * It joins the volume's heartbeat as host NAME (a fresh host UUID), takes
 * every lock, prints "ready slot S uuid U" and then:
 *   --exit   leaves the heartbeat (frees the slot) and exits at once, so
 *            the locks stay behind with a holder whose slot moved on;
 *   else     keeps renewing until SIGTERM/SIGINT, then releases the locks
 *            and leaves.  SIGKILL leaves a dead host holding them.
 * Exit status 0, or 1 with a message.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmfs/lockmgr.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"

#define MAX_LOCKS 64

static int die(const char *what, int err)
{
	fprintf(stderr, "lockhold: %s: %s\n", what, vmfs_strerror(err));
	return 1;
}

/* The lockable block an OBJ names, or 0 when it names none. */
static uint64_t obj_addr(const struct vol_geom *g, const char *obj)
{
	unsigned long long a, b;

	if (!strcmp(obj, "hb"))
		return g->hb_offset;
	if (sscanf(obj, "jnl:%llu", &a) == 1 && a < g->max_hosts)
		return vol_jnl_offset(g, (uint32_t)a);
	if (sscanf(obj, "rc:%llu:%llu", &a, &b) == 2 && a < VMFS_RES_NTYPES &&
	    b < g->res[a].nclusters)
		return g->res[a].hdr_offset + b * VMFS_MD_BLOCK_SIZE;
	if (sscanf(obj, "ino:%llu", &a) == 1 && a && a < g->res[VMFS_RES_INODE].count)
		return g->res[VMFS_RES_INODE].obj_offset +
		       a * g->res[VMFS_RES_INODE].obj_size;
	return 0;
}

static int mode_of(const char *m)
{
	if (!strcmp(m, "ex"))
		return VMFS_LOCK_EXCLUSIVE;
	if (!strcmp(m, "ro"))
		return VMFS_LOCK_READONLY;
	if (!strcmp(m, "mw"))
		return VMFS_LOCK_MULTIWRITER;
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "exit", no_argument,       NULL, 'x' },
		{ NULL, 0, NULL, 0 }
	};
	const char *name = "lockhold";
	bool leave_now = false;
	uint64_t addr[MAX_LOCKS];
	int mode[MAX_LOCKS], nlocks = 0, c, rc, sig;
	uint8_t uuid[VMFS_UUID_SIZE];
	char ustr[37];
	struct vol_geom g;
	struct hb_opts o = { 0 };
	struct lock_host host;
	struct lock_ctx *ctx;
	struct lun *lun;
	struct hb *hb;
	sigset_t ss;
	FILE *rnd;

	while ((c = getopt_long(argc, argv, "n:x", longopts, NULL)) != -1) {
		if (c == 'n')
			name = optarg;
		else if (c == 'x')
			leave_now = true;
		else
			return 2;
	}
	if (argc - optind < 2) {
		fprintf(stderr, "usage: lockhold [--name NAME] [--exit] LUN OBJ=MODE...\n");
		return 2;
	}
	rc = lun_open(argv[optind], 0, &lun);
	if (rc)
		return die(argv[optind], rc);
	rc = vol_geom_read(lun, &g, NULL, NULL);
	if (rc)
		return die("volume header", rc);
	for (int i = optind + 1; i < argc; i++) {
		char *eq = strchr(argv[i], '=');

		if (!eq || nlocks == MAX_LOCKS)
			return die(argv[i], -EINVAL);
		*eq = 0;
		addr[nlocks] = obj_addr(&g, argv[i]);
		mode[nlocks] = mode_of(eq + 1);
		if (!addr[nlocks] || mode[nlocks] < 0)
			return die(argv[i], -EINVAL);
		nlocks++;
	}
	rnd = fopen("/dev/urandom", "r");
	if (!rnd || fread(uuid, 1, sizeof(uuid), rnd) != sizeof(uuid))
		return die("/dev/urandom", -EIO);
	fclose(rnd);
	o.host_uuid = uuid;
	o.hostname = name;
	o.journal_offset = g.journal_offset;
	o.journal_size = g.journal_size_bytes;
	rc = hb_join(lun, g.hb_offset, &o, &hb);
	if (rc)
		return die("joining the heartbeat", rc);
	lock_host_from_hb(&host, hb, uuid);
	rc = lock_ctx_open(lun, &host, 0, &ctx);
	if (rc)
		return die("lock context", rc);
	for (int i = 0; i < nlocks; i++) {
		rc = lock_acquire(ctx, addr[i], (enum vmfs_lock_mode)mode[i], 0, NULL);
		if (rc)
			return die("acquire", rc);
	}
	vol_uuid_format(uuid, ustr);
	printf("ready slot %u uuid %s\n", hb_slot_index(hb), ustr);
	fflush(stdout);
	if (!leave_now) {
		sigemptyset(&ss);
		sigaddset(&ss, SIGTERM);
		sigaddset(&ss, SIGINT);
		sigprocmask(SIG_BLOCK, &ss, NULL);
		sigwait(&ss, &sig);
		for (int i = 0; i < nlocks; i++)
			lock_release(ctx, addr[i], NULL);
	}
	lock_ctx_close(ctx);
	rc = hb_leave(hb);
	lun_close(lun);
	return rc ? die("leaving the heartbeat", rc) : 0;
}
