/*
 * cnpeer: a test program (never installed) that runs the cluster fast
 * path (lockmgr/clusternet.c) for a made-up host, without a volume, so
 * that tests/integration/t_cluster_ask.sh can check the lock handover
 * messages end to end over a real corosync: a holder that releases at
 * once, later, refuses, or stays silent, and an asker.
 *
 *   cnpeer serve ID --answer released|late|busy|silent [--seconds N]
 *   cnpeer ask ID --target UUID:SLOT:GEN [--addr N] [--timeout-ms MS]
 *              [--no-wait]
 *
 * ID is --vol UUID --host UUID --slot N --gen N --name NAME.
 *
 * serve: joins and answers every request for us as --answer says
 * (released: 0 at once; late: -EINPROGRESS, then cn_released 500 ms
 * later; busy: -EBUSY; silent: -EINPROGRESS and never a release); prints
 * "ready" once joined, then one line per event: "joined NAME SLOT",
 * "left NAME SLOT", "request ADDR MODE".  Ends after --seconds (default
 * 30) or SIGTERM.
 *
 * ask: joins, waits up to 10 s for the target to be a known member
 * (--no-wait: only for the group), asks it for --addr (exclusive), and
 * prints "result ERRNO-NAME MS": 0,
 * EBUSY, ETIMEDOUT or ENOTCONN and how long the ask took.  Exit 0 when it
 * asked (whatever the answer), 1 otherwise.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "vmfs/log.h"

#include "vmfs/clock.h"
#include "vmfs/lockmgr.h"

enum peer_answer { ANSWER_RELEASED, ANSWER_LATE, ANSWER_BUSY, ANSWER_SILENT };

static struct cn *peer_cn;
static enum peer_answer peer_answer;
static volatile sig_atomic_t peer_stop;
static pthread_mutex_t peer_out = PTHREAD_MUTEX_INITIALIZER;

__attribute__((format(printf, 1, 2)))
static void peer_say(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&peer_out);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	pthread_mutex_unlock(&peer_out);
}

static void peer_membership(void *arg, bool left, const struct cn_member *m)
{
	(void)arg;
	peer_say("%s %s %u", left ? "left" : "joined", m->host_name, m->slot);
}

static void *peer_release_later(void *arg)
{
	uint64_t addr = (uint64_t)(uintptr_t)arg;

	usleep(500 * 1000);
	cn_released(peer_cn, addr);
	return NULL;
}

static int peer_release_req(void *arg, uint64_t addr, uint32_t mode)
{
	pthread_t t;

	(void)arg;
	peer_say("request %" PRIu64 " %u", addr, mode);
	switch (peer_answer) {
	case ANSWER_RELEASED:
		return 0;
	case ANSWER_BUSY:
		return -EBUSY;
	case ANSWER_LATE:
		if (!pthread_create(&t, NULL, peer_release_later,
				    (void *)(uintptr_t)addr))
			pthread_detach(t);
		return -EINPROGRESS;
	default:
		return -EINPROGRESS;
	}
}

static int peer_uuid(const char *s, uint8_t *u)
{
	unsigned k = 0, v;

	while (*s && k < VMFS_UUID_SIZE) {
		if (*s == '-') {
			s++;
			continue;
		}
		if (sscanf(s, "%2x", &v) != 1)
			return -1;
		u[k++] = (uint8_t)v;
		s += 2;
	}
	return k == VMFS_UUID_SIZE && (!*s || *s == ':') ? 0 : -1;
}

static void peer_on_term(int sig)
{
	(void)sig;
	peer_stop = 1;
}

static const char *peer_errname(int ret)
{
	switch (ret) {
	case 0:
		return "0";
	case -EBUSY:
		return "EBUSY";
	case -ETIMEDOUT:
		return "ETIMEDOUT";
	case -ENOTCONN:
		return "ENOTCONN";
	default:
		return "other";
	}
}

static int peer_usage(void)
{
	fprintf(stderr, "usage: cnpeer serve|ask --vol UUID --host UUID --slot N "
		"--gen N --name NAME [--answer released|late|busy|silent] "
		"[--seconds N] [--target UUID:SLOT:GEN] [--addr N] "
		"[--timeout-ms MS] [--no-wait]\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "vol", required_argument, NULL, 'v' },
		{ "host", required_argument, NULL, 'H' },
		{ "slot", required_argument, NULL, 's' },
		{ "gen", required_argument, NULL, 'g' },
		{ "name", required_argument, NULL, 'n' },
		{ "answer", required_argument, NULL, 'A' },
		{ "seconds", required_argument, NULL, 'S' },
		{ "target", required_argument, NULL, 't' },
		{ "addr", required_argument, NULL, 'a' },
		{ "timeout-ms", required_argument, NULL, 'T' },
		{ "no-wait", no_argument, NULL, 'W' },
		{ NULL, 0, NULL, 0 }
	};
	static const struct cn_ops ops = {
		.membership = peer_membership,
		.release_req = peer_release_req,
	};
	struct cn_self self = { 0 };
	struct lock_holder target = { 0 };
	struct cn_view *view;
	unsigned seconds = 30, timeout_ms = 3000;
	uint64_t addr = 8192;
	bool serve, have_target = false, no_wait = false;
	const char *p;
	int c, ret;

	if (argc < 2)
		return peer_usage();
	serve = !strcmp(argv[1], "serve");
	if (!serve && strcmp(argv[1], "ask"))
		return peer_usage();
	optind = 2;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'v':
			if (peer_uuid(optarg, self.vol_uuid))
				return peer_usage();
			break;
		case 'H':
			if (peer_uuid(optarg, self.host_uuid))
				return peer_usage();
			break;
		case 's':
			self.slot = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'g':
			self.hb_gen = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			snprintf(self.host_name, sizeof(self.host_name), "%s", optarg);
			break;
		case 'A':
			if (!strcmp(optarg, "released"))
				peer_answer = ANSWER_RELEASED;
			else if (!strcmp(optarg, "late"))
				peer_answer = ANSWER_LATE;
			else if (!strcmp(optarg, "busy"))
				peer_answer = ANSWER_BUSY;
			else if (!strcmp(optarg, "silent"))
				peer_answer = ANSWER_SILENT;
			else
				return peer_usage();
			break;
		case 'S':
			seconds = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 't':
			p = strchr(optarg, ':');
			if (!p || peer_uuid(optarg, target.uuid) ||
			    sscanf(p, ":%u:%" SCNu64, &target.slot,
				   &target.hb_gen) != 2)
				return peer_usage();
			have_target = true;
			break;
		case 'a':
			addr = strtoull(optarg, NULL, 0);
			break;
		case 'T':
			timeout_ms = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'W':
			no_wait = true;
			break;
		default:
			return peer_usage();
		}
	}
	if (!serve && !have_target)
		return peer_usage();
	qb_log_init("cnpeer", LOG_DAEMON, LOG_INFO);
	qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, QB_FALSE);
	qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_TRUE);
	qb_log_filter_ctl(QB_LOG_STDERR, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE,
			  "*", LOG_INFO);
	signal(SIGTERM, peer_on_term);
	signal(SIGINT, peer_on_term);

	view = malloc(sizeof(*view));
	if (!view)
		return 1;
	ret = cn_start(&self, &ops, NULL, &peer_cn);
	if (ret) {
		fprintf(stderr, "cnpeer: cn_start: %s\n", strerror(-ret));
		return 1;
	}
	for (int w = 0; w < 100; w++) {
		cn_view_get(peer_cn, view);
		if (view->up && (serve || no_wait ||
				 cn_is_member(peer_cn, &target)))
			break;
		usleep(100 * 1000);
	}
	if (!view->up || (!serve && !no_wait &&
			  !cn_is_member(peer_cn, &target))) {
		fprintf(stderr, "cnpeer: %s after 10 s\n", view->up ?
			"the target is not a known member" : view->why);
		cn_stop(peer_cn);
		free(view);
		return 1;
	}
	if (serve) {
		int64_t end = vmfs_mono_ms() + seconds * 1000;

		peer_say("ready");
		while (!peer_stop && vmfs_mono_ms() < end)
			usleep(100 * 1000);
		cn_stop(peer_cn);
		free(view);
		return 0;
	}
	{
		int64_t t0 = vmfs_mono_ms();

		ret = cn_ask_release(peer_cn, &target, addr, VMFS_LOCK_EXCLUSIVE,
				     timeout_ms);
		peer_say("result %s %lld", peer_errname(ret),
			 (long long)(vmfs_mono_ms() - t0));
	}
	cn_stop(peer_cn);
	free(view);
	return 0;
}
