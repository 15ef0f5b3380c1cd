/*
 * vmfsd-ctl-raw: send one hand-made request to the vmfsd of a mount point
 * and print its reply, for tests/integration/t_ctl.sh: requests the CLI
 * never sends (unknown types, another protocol version, broken frames)
 * must get an error reply, and a client that connects and then says
 * nothing must not hold the daemon up.  A test program, never installed.
 *
 *   vmfsd-ctl-raw MOUNTPOINT TYPE [BODY]   prints "error N" and the body
 *   vmfsd-ctl-raw MOUNTPOINT --version N   an info request of version N
 *   vmfsd-ctl-raw MOUNTPOINT --short       a frame whose body_len lies
 *   vmfsd-ctl-raw MOUNTPOINT --hold SECS   connect, then stay silent
 *
 * Exit status: 0 a reply came (whatever its error), 1 none did, 2 usage.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmfs/vmfsd.h"

static char buf[VMFSD_CTL_MSG_MAX];


int main(int argc, char **argv)
{
	struct vmfsd_ctl *c;
	char *reply = NULL;
	uint32_t type = VMFSD_CTL_INFO;
	const char *body = "{}";
	int ret, err = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: vmfsd-ctl-raw MOUNTPOINT TYPE [BODY] | "
			"--version N | --short | --hold SECS\n");
		return 2;
	}
	ret = vmfsd_ctl_connect(argv[1], &c);
	if (ret) {
		fprintf(stderr, "vmfsd-ctl-raw: connect: %s\n", strerror(-ret));
		return 1;
	}
	if (!strcmp(argv[2], "--hold") && argc == 4) {
		printf("connected\n");
		fflush(stdout);
		sleep((unsigned)atoi(argv[3]));
		vmfsd_ctl_disconnect(c);
		return 0;
	}
	if (!strcmp(argv[2], "--version") && argc == 4) {
		ssize_t n = vmfsd_ctl_req_frame(type, body, buf, sizeof(buf));
		uint32_t v = (uint32_t)atoi(argv[3]);

		memcpy(buf + offsetof(struct vmfsd_ctl_frame, version), &v, sizeof(v));
		ret = vmfsd_ctl_call_raw(c, buf, (size_t)n, type, 5000, &err, &reply);
	} else if (!strcmp(argv[2], "--short") && argc == 3) {
		ssize_t n = vmfsd_ctl_req_frame(type, body, buf, sizeof(buf));
		uint32_t bl = 1000;

		memcpy(buf + offsetof(struct vmfsd_ctl_frame, body_len), &bl, sizeof(bl));
		ret = vmfsd_ctl_call_raw(c, buf, (size_t)n, type, 5000, &err, &reply);
	} else {
		type = (uint32_t)strtoul(argv[2], NULL, 0);
		if (argc > 3)
			body = argv[3];
		ret = vmfsd_ctl_call(c, type, body, 5000, &err, &reply);
	}
	vmfsd_ctl_disconnect(c);
	if (ret) {
		fprintf(stderr, "vmfsd-ctl-raw: no reply: %s\n", strerror(-ret));
		return 1;
	}
	printf("error %d\n%s\n", err, reply);
	free(reply);
	return 0;
}
