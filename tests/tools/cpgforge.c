/*
 * cpgforge: a test program (never installed) that joins a volume's CPG
 * group as a stranger and sends what a well-behaved vmfsd never would, so
 * that tests/integration/t_cluster_hosts.sh can check that every vmfsd
 * logs it and ignores it (lockmgr/clusternet.c, "Trust").
 *
 *   cpgforge --group vmfs-UUID [--target UUID:SLOT:GEN] [--addr N] KIND...
 *
 * KIND, one message each, in order:
 *   crc      a well-formed RELEASED whose crc is wrong
 *   short    10 bytes: less than a header
 *   magic    a RELEASED with another magic (sealed)
 *   length   a RELEASED whose length field says 8 bytes more
 *   newer    a RELEASED of protocol version 2, sealed correctly
 *   ask      a valid ASK for --addr from us, who never sent a HELLO: an
 *            unknown host (needs --target, the host asked)
 *   hello    a valid HELLO claiming --target's identity, which its real
 *            vmfsd already holds
 *
 * Runs in the network namespace of a host whose corosync it talks to.
 * Waits until corosync has delivered its own messages back (so every
 * member got them: CPG's agreed order) and prints "sent N".  Exit 0, or
 * 1 with a message.
 */
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <corosync/cpg.h>

#include "../../lockmgr/cn_int.h"

static unsigned forge_joined, forge_echoed;

static void forge_deliver(cpg_handle_t h, const struct cpg_name *g,
			  uint32_t nodeid, uint32_t pid, void *msg, size_t len)
{
	(void)h;
	(void)g;
	(void)nodeid;
	(void)msg;
	(void)len;
	if (pid == (uint32_t)getpid())
		forge_echoed++;
}

static void forge_confchg(cpg_handle_t h, const struct cpg_name *g,
			  const struct cpg_address *m, size_t nm,
			  const struct cpg_address *l, size_t nl,
			  const struct cpg_address *j, size_t nj)
{
	(void)h;
	(void)g;
	(void)l;
	(void)nl;
	(void)j;
	(void)nj;
	for (size_t i = 0; i < nm; i++)
		if (m[i].pid == (uint32_t)getpid())
			forge_joined = 1;
}

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx:SLOT:GEN" into h. */
static int forge_parse_target(const char *s, struct lock_holder *h)
{
	unsigned long long gen;
	unsigned slot, k = 0;
	const char *p = s;

	while (k < VMFS_UUID_SIZE && *p && *p != ':') {
		unsigned v;

		if (*p == '-') {
			p++;
			continue;
		}
		if (sscanf(p, "%2x", &v) != 1)
			return -1;
		h->uuid[k++] = (uint8_t)v;
		p += 2;
	}
	if (k != VMFS_UUID_SIZE || sscanf(p, ":%u:%llu", &slot, &gen) != 2)
		return -1;
	h->slot = slot;
	h->hb_gen = gen;
	return 0;
}

/* The bytes of message kind into buf; its length, or -1. */
static ssize_t forge_build(const char *kind, const struct lock_holder *target,
			   bool have_target, uint64_t addr, uint8_t *buf)
{
	struct cn_msg m = { .type = CN_MSG_RELEASED };
	uint16_t v16;
	uint32_t v32;
	ssize_t n;

	m.u.released.addr = addr;
	if (!strcmp(kind, "ask") || !strcmp(kind, "hello")) {
		if (!have_target)
			return -1;
		if (kind[0] == 'a') {
			m.type = CN_MSG_ASK;
			m.u.ask.req_id = 1;
			m.u.ask.addr = addr;
			m.u.ask.mode = VMFS_LOCK_EXCLUSIVE;
			m.u.ask.target = *target;
		} else {
			m.type = CN_MSG_HELLO;
			memcpy(m.u.hello.host_uuid, target->uuid, VMFS_UUID_SIZE);
			m.u.hello.slot = target->slot;
			m.u.hello.hb_gen = target->hb_gen;
			strcpy(m.u.hello.name, "impostor");
		}
	}
	n = cn_msg_encode(&m, buf, CN_MSG_MAX);
	if (n < 0)
		return -1;
	if (!strcmp(kind, "crc")) {
		buf[n - 1] ^= 0x5a;
	} else if (!strcmp(kind, "short")) {
		n = 10;
	} else if (!strcmp(kind, "magic")) {
		memcpy(buf, "XCPG", 4);
		cn_msg_seal(buf, (size_t)n);
	} else if (!strcmp(kind, "length")) {
		v32 = htole32((uint32_t)n + 8);
		memcpy(buf + offsetof(struct cn_wire_hdr, ch_length), &v32, 4);
	} else if (!strcmp(kind, "newer")) {
		v16 = htole16(CN_PROTO_VERSION + 1);
		memcpy(buf + offsetof(struct cn_wire_hdr, ch_version), &v16, 2);
		cn_msg_seal(buf, (size_t)n);
	} else if (strcmp(kind, "ask") && strcmp(kind, "hello")) {
		return -1;
	}
	return n;
}

/* Dispatch until cond holds or timeout_ms passed. */
static int forge_wait(cpg_handle_t h, unsigned *what, unsigned want,
		      int timeout_ms)
{
	struct pollfd p = { .events = POLLIN };

	if (cpg_fd_get(h, &p.fd) != CS_OK)
		return -1;
	while (*what < want && timeout_ms > 0) {
		if (poll(&p, 1, 100) > 0 &&
		    cpg_dispatch(h, CS_DISPATCH_ALL) != CS_OK)
			return -1;
		timeout_ms -= 100;
	}
	return *what >= want ? 0 : -1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "group",  required_argument, NULL, 'g' },
		{ "target", required_argument, NULL, 't' },
		{ "addr",   required_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 }
	};
	cpg_callbacks_t cb = { .cpg_deliver_fn = forge_deliver,
			       .cpg_confchg_fn = forge_confchg };
	struct lock_holder target = { 0 };
	bool have_target = false;
	struct cpg_name group = { 0 };
	uint64_t addr = 4096;
	cpg_handle_t h;
	unsigned sent = 0;
	cs_error_t err;
	int c;

	while ((c = getopt_long(argc, argv, "g:t:a:", longopts, NULL)) != -1) {
		switch (c) {
		case 'g':
			if (strlen(optarg) >= sizeof(group.value))
				goto usage;
			group.length = (uint32_t)strlen(optarg);
			memcpy(group.value, optarg, group.length);
			break;
		case 't':
			if (forge_parse_target(optarg, &target))
				goto usage;
			have_target = true;
			break;
		case 'a':
			addr = strtoull(optarg, NULL, 0);
			break;
		default:
			goto usage;
		}
	}
	if (!group.length || optind == argc)
		goto usage;
	err = cpg_initialize(&h, &cb);
	if (err != CS_OK) {
		fprintf(stderr, "cpgforge: cannot reach corosync: %s\n",
			cs_strerror(err));
		return 1;
	}
	err = cpg_join(h, &group);
	if (err != CS_OK || forge_wait(h, &forge_joined, 1, 10000)) {
		fprintf(stderr, "cpgforge: cannot join %s: %s\n", group.value,
			cs_strerror(err));
		return 1;
	}
	for (int i = optind; i < argc; i++) {
		uint8_t buf[CN_MSG_MAX];
		ssize_t n = forge_build(argv[i], &target, have_target, addr, buf);
		struct iovec iov;

		if (n < 0) {
			fprintf(stderr, "cpgforge: cannot build '%s' (unknown kind, "
				"or ask/hello without --target)\n", argv[i]);
			return 1;
		}
		iov.iov_base = buf;
		iov.iov_len = (size_t)n;
		do {
			err = cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1);
		} while (err == CS_ERR_TRY_AGAIN && !usleep(10000));
		if (err != CS_OK) {
			fprintf(stderr, "cpgforge: cpg_mcast_joined: %s\n",
				cs_strerror(err));
			return 1;
		}
		sent++;
	}
	if (forge_wait(h, &forge_echoed, sent, 10000)) {
		fprintf(stderr, "cpgforge: only %u of %u messages came back\n",
			forge_echoed, sent);
		return 1;
	}
	cpg_leave(h, &group);
	cpg_finalize(h);
	printf("sent %u\n", sent);
	return 0;
usage:
	fprintf(stderr, "usage: cpgforge --group vmfs-UUID [--target "
		"UUID:SLOT:GEN] [--addr N] crc|short|magic|length|newer|ask|"
		"hello...\n");
	return 2;
}
