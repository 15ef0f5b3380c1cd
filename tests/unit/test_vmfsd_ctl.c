/*
 * The control socket's wire format (vmfsd/ctl_proto.c): frames survive a
 * round trip and every inconsistent one is refused with its own error;
 * bodies survive a round trip, unknown fields are ignored and missing ones
 * stay zero (so old and new CLIs and daemons can talk), and a field of the
 * wrong type is refused; service names are stable and tell mount points
 * apart.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "vmfs/vmfsd.h"

static char buf[VMFSD_CTL_MSG_MAX + 64];

static void test_frame_roundtrip(void)
{
	const char *body;
	uint32_t type, version;
	char *big;
	ssize_t n;
	int err;

	n = vmfsd_ctl_req_frame(VMFSD_CTL_UMOUNT, "{\"a\":1}", buf, sizeof(buf));
	CU_ASSERT_FATAL(n == (ssize_t)(sizeof(struct vmfsd_ctl_frame) + 8));
	CU_ASSERT_EQUAL(vmfsd_ctl_req_parse(buf, (size_t)n, &type, &version,
					    &body), 0);
	CU_ASSERT_EQUAL(type, VMFSD_CTL_UMOUNT);
	CU_ASSERT_EQUAL(version, VMFSD_CTL_VERSION);
	CU_ASSERT_STRING_EQUAL(body, "{\"a\":1}");

	n = vmfsd_ctl_reply_frame(VMFSD_CTL_INFO, -EBUSY, "{}", buf, sizeof(buf));
	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_EQUAL(vmfsd_ctl_reply_parse(buf, (size_t)n, &type, &err,
					      &body), 0);
	CU_ASSERT_EQUAL(type, VMFSD_CTL_INFO);
	CU_ASSERT_EQUAL(err, -EBUSY);
	CU_ASSERT_STRING_EQUAL(body, "{}");

	/* Too big for the buffer, or for any message. */
	CU_ASSERT_EQUAL(vmfsd_ctl_req_frame(1, "{}", buf, 8), -E2BIG);
	big = malloc(VMFSD_CTL_MSG_MAX + 1);
	CU_ASSERT_FATAL(big != NULL);
	memset(big, ' ', VMFSD_CTL_MSG_MAX);
	big[VMFSD_CTL_MSG_MAX] = '\0';
	CU_ASSERT_EQUAL(vmfsd_ctl_req_frame(1, big, buf, sizeof(buf)), -E2BIG);
	free(big);
}

static void test_frame_bad(void)
{
	struct vmfsd_ctl_frame f;
	const char *body;
	uint32_t type, version, v;
	ssize_t n;

	n = vmfsd_ctl_req_frame(VMFSD_CTL_INFO, "{}", buf, sizeof(buf));
	CU_ASSERT_FATAL(n > 0);
	/* Shorter than a header; shorter than it says. */
	CU_ASSERT_EQUAL(vmfsd_ctl_req_parse(buf, 4, &type, &version, &body),
			-EBADMSG);
	CU_ASSERT_EQUAL(vmfsd_ctl_req_parse(buf, (size_t)n - 1, &type, &version,
					    &body), -EBADMSG);
	/* Another protocol version: named, not just refused. */
	memcpy(&f, buf, sizeof(f));
	f.version = VMFSD_CTL_VERSION + 1;
	memcpy(buf, &f, sizeof(f));
	CU_ASSERT_EQUAL(vmfsd_ctl_req_parse(buf, (size_t)n, &type, &version,
					    &body), -EPROTONOSUPPORT);
	CU_ASSERT_EQUAL(version, VMFSD_CTL_VERSION + 1);
	f.version = VMFSD_CTL_VERSION;
	/* body_len that disagrees with the size. */
	v = f.body_len;
	f.body_len = v + 1;
	memcpy(buf, &f, sizeof(f));
	CU_ASSERT_EQUAL(vmfsd_ctl_req_parse(buf, (size_t)n, &type, &version,
					    &body), -EBADMSG);
	f.body_len = v;
	memcpy(buf, &f, sizeof(f));
	/* A body without its NUL, or with one inside. */
	buf[n - 1] = '}';
	CU_ASSERT_EQUAL(vmfsd_ctl_req_parse(buf, (size_t)n, &type, &version,
					    &body), -EBADMSG);
	buf[n - 1] = '\0';
	buf[n - 2] = '\0';
	CU_ASSERT_EQUAL(vmfsd_ctl_req_parse(buf, (size_t)n, &type, &version,
					    &body), -EBADMSG);
	/* Text that is not a JSON object. */
	n = vmfsd_ctl_req_frame(VMFSD_CTL_INFO, "[1]", buf, sizeof(buf));
	CU_ASSERT_EQUAL(vmfsd_ctl_req_parse(buf, (size_t)n, &type, &version,
					    &body), -EBADMSG);
	n = vmfsd_ctl_req_frame(VMFSD_CTL_INFO, "{\"a\":", buf, sizeof(buf));
	CU_ASSERT_EQUAL(vmfsd_ctl_req_parse(buf, (size_t)n, &type, &version,
					    &body), -EBADMSG);
}

static void test_info_roundtrip(void)
{
	struct vmfsd_info in, out;
	char *json;

	memset(&in, 0, sizeof(in));
	in.pid = 4242;
	in.since_ns = 1796205306138119127LL;
	snprintf(in.version, sizeof(in.version), "0.1.0");
	snprintf(in.vol_uuid, sizeof(in.vol_uuid),
		 "2ec3044c-a58b-46e8-bc60-24791e09decc");
	snprintf(in.lun, sizeof(in.lun), "/tmp/a \"quoted\"\\lun\n");
	snprintf(in.mountpoint, sizeof(in.mountpoint), "/mnt/é");
	snprintf(in.host_name, sizeof(in.host_name), "esx-02");
	snprintf(in.lock_primitive, sizeof(in.lock_primitive), "reserve");
	in.fuse_threads = 16;
	in.read_only = true;
	in.hb_slot = 3;
	in.hb_generation = 0xfedcba9876543210ULL;   /* above INT64_MAX */
	in.lease_ms = 10000;
	in.fenced = true;
	in.jnl_commits = 7;
	in.jnl_forced = 2;
	json = vmfsd_info_encode(&in);
	CU_ASSERT_FATAL(json != NULL);
	memset(&out, 0x5a, sizeof(out));
	CU_ASSERT_EQUAL(vmfsd_info_decode(json, &out), 0);
	CU_ASSERT_EQUAL(out.pid, 4242);
	CU_ASSERT_EQUAL(out.since_ns, in.since_ns);
	CU_ASSERT_STRING_EQUAL(out.lun, in.lun);
	CU_ASSERT_STRING_EQUAL(out.mountpoint, in.mountpoint);
	CU_ASSERT_STRING_EQUAL(out.vol_uuid, in.vol_uuid);
	CU_ASSERT_STRING_EQUAL(out.host_uuid, "");
	CU_ASSERT_STRING_EQUAL(out.host_name, "esx-02");
	CU_ASSERT_STRING_EQUAL(out.lock_primitive, "reserve");
	CU_ASSERT_EQUAL(out.hb_slot, 3);
	CU_ASSERT_EQUAL(out.hb_generation, in.hb_generation);
	CU_ASSERT_EQUAL(out.fenced, true);
	CU_ASSERT_EQUAL(out.read_only, true);
	CU_ASSERT_EQUAL(out.jnl_commits, 7);
	CU_ASSERT_EQUAL(out.jnl_forced, 2);
	CU_ASSERT_EQUAL(out.jnl_flushes, 0);
	free(json);
}

static void test_body_compat(void)
{
	struct vmfsd_info info;
	struct vmfsd_close_status st;
	char msg[64];
	char *json;

	/* A newer daemon's fields are ignored, missing ones stay zero. */
	CU_ASSERT_EQUAL(vmfsd_info_decode("{\"pid\": 7, \"locks_held\": [1,2], "
					  "\"future\": {\"x\": true}}", &info), 0);
	CU_ASSERT_EQUAL(info.pid, 7);
	CU_ASSERT_EQUAL(info.lease_ms, 0);
	CU_ASSERT_STRING_EQUAL(info.lun, "");
	/* Wrong types and ranges are refused, not guessed at. */
	CU_ASSERT_EQUAL(vmfsd_info_decode("{\"pid\": \"7\"}", &info), -EBADMSG);
	CU_ASSERT_EQUAL(vmfsd_info_decode("{\"pid\": -1}", &info), -EBADMSG);
	CU_ASSERT_EQUAL(vmfsd_info_decode("{\"lease_ms\": 4294967296}", &info),
			-EBADMSG);
	CU_ASSERT_EQUAL(vmfsd_info_decode("{\"fenced\": 1}", &info), -EBADMSG);
	CU_ASSERT_EQUAL(vmfsd_info_decode("{\"lun\": 5}", &info), -EBADMSG);
	CU_ASSERT_EQUAL(vmfsd_info_decode("[]", &info), -EBADMSG);
	CU_ASSERT_EQUAL(vmfsd_info_decode("", &info), -EBADMSG);

	memset(&st, 0, sizeof(st));
	st.pid = 9;
	st.err = -EIO;
	st.unmounted = true;
	snprintf(st.msg, sizeof(st.msg), "closing volume x failed: I/O error");
	json = vmfsd_close_status_encode(&st);
	CU_ASSERT_FATAL(json != NULL);
	memset(&st, 0, sizeof(st));
	CU_ASSERT_EQUAL(vmfsd_close_status_decode(json, &st), 0);
	CU_ASSERT_EQUAL(st.pid, 9);
	CU_ASSERT_EQUAL(st.err, -EIO);
	CU_ASSERT_EQUAL(st.unmounted, true);
	CU_ASSERT_STRING_EQUAL(st.msg, "closing volume x failed: I/O error");
	free(json);

	/* An error reply's message, cut to the caller's buffer. */
	json = vmfsd_ctl_error_encode("unknown request type 99; this vmfsd "
				      "knows info and umount");
	CU_ASSERT_FATAL(json != NULL);
	vmfsd_ctl_error_decode(json, msg, 20);
	CU_ASSERT_STRING_EQUAL(msg, "unknown request typ");
	vmfsd_ctl_error_decode("{\"message\": 3}", msg, sizeof(msg));
	CU_ASSERT_STRING_EQUAL(msg, "");
	free(json);
}

/* The reply to a grow: every field there and back. */
static void test_grow_status_roundtrip(void)
{
	struct vmfsd_grow_status in, out;
	char *json;

	/* memset: memcmp below compares the padding too. */
	memset(&in, 0, sizeof(in));
	in.lun_bytes = 1ull << 40;
	in.old_size_bytes = 1ull << 36;
	in.new_size_bytes = (1ull << 40) - 4096;
	in.old_file_blocks = 65000;
	in.new_file_blocks = 1048000;
	in.max_file_blocks = 1ull << 24;
	in.max_size_bytes = 1ull << 44;
	in.file_block_size = 1u << 20;
	in.capped = true;
	in.finished = true;
	snprintf(in.msg, sizeof(in.msg), "another host kept the volume lock");
	json = vmfsd_grow_status_encode(&in);
	CU_ASSERT_FATAL(json != NULL);
	CU_ASSERT_EQUAL(vmfsd_grow_status_decode(json, &out), 0);
	CU_ASSERT_EQUAL(memcmp(&in, &out, sizeof(in)), 0);
	free(json);
	/* An error reply ({"message"}) reads as a status with its message. */
	json = vmfsd_ctl_error_encode("read-only");
	CU_ASSERT_FATAL(json != NULL);
	CU_ASSERT_EQUAL(vmfsd_grow_status_decode(json, &out), 0);
	CU_ASSERT_STRING_EQUAL(out.msg, "read-only");
	CU_ASSERT_EQUAL(out.new_size_bytes, 0);
	free(json);
}

static void test_name(void)
{
	char a[VMFSD_CTL_NAME_MAX], b[VMFSD_CTL_NAME_MAX];

	CU_ASSERT_EQUAL(vmfsd_ctl_name("/mnt/a", a, sizeof(a)), 0);
	CU_ASSERT_EQUAL(vmfsd_ctl_name("/mnt/b", b, sizeof(b)), 0);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	/* Stable across versions: an older CLI must find a newer daemon.
	 * FNV-1a 64 of "/mnt/a". */
	CU_ASSERT_STRING_EQUAL(a, "vmfsd-5af2babcdc20279f");
	CU_ASSERT_EQUAL(vmfsd_ctl_name("/mnt/a", a, 10), -ENAMETOOLONG);
}

static void test_host_name_valid(void)
{
	char max[VMFSD_HOST_NAME_MAX + 2];

	CU_ASSERT(vmfsd_host_name_valid("esx-01"));
	CU_ASSERT(vmfsd_host_name_valid("a"));
	CU_ASSERT(vmfsd_host_name_valid("host_1.lab:2"));
	CU_ASSERT(!vmfsd_host_name_valid(""));
	CU_ASSERT(!vmfsd_host_name_valid(NULL));
	CU_ASSERT(!vmfsd_host_name_valid("two words"));
	CU_ASSERT(!vmfsd_host_name_valid("a/b"));
	CU_ASSERT(!vmfsd_host_name_valid("tab\there"));
	CU_ASSERT(!vmfsd_host_name_valid("nl\n"));
	CU_ASSERT(!vmfsd_host_name_valid("\x7f"));
	CU_ASSERT(!vmfsd_host_name_valid("h\xc3\xa9"));
	memset(max, 'x', VMFSD_HOST_NAME_MAX);
	max[VMFSD_HOST_NAME_MAX] = '\0';
	CU_ASSERT(vmfsd_host_name_valid(max));
	max[VMFSD_HOST_NAME_MAX] = 'x';
	max[VMFSD_HOST_NAME_MAX + 1] = '\0';
	CU_ASSERT(!vmfsd_host_name_valid(max));
}

/* The name is kept with the host UUID: a later open sees it, a new one
 * replaces it, and an invalid one changes nothing. */
static void test_host_name_stored(void)
{
	const char *dir = unit_tmp_path("hostname-state");
	struct vmfsd_host *h;
	uint8_t u1[VMFS_UUID_SIZE], u2[VMFS_UUID_SIZE];
	char db[4200];

	CU_ASSERT_FATAL(vmfsd_host_open(dir, &h) == 0);
	CU_ASSERT_STRING_EQUAL(vmfsd_host_name(h), "");
	vmfsd_host_uuid(h, u1);
	CU_ASSERT_EQUAL(vmfsd_host_set_name(h, "esx-01"), 0);
	CU_ASSERT_STRING_EQUAL(vmfsd_host_name(h), "esx-01");
	vmfsd_host_close(h);

	CU_ASSERT_FATAL(vmfsd_host_open(dir, &h) == 0);
	CU_ASSERT_STRING_EQUAL(vmfsd_host_name(h), "esx-01");
	vmfsd_host_uuid(h, u2);
	CU_ASSERT(memcmp(u1, u2, sizeof(u1)) == 0);
	CU_ASSERT_EQUAL(vmfsd_host_set_name(h, "bad name"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(vmfsd_host_name(h), "esx-01");
	CU_ASSERT_EQUAL(vmfsd_host_set_name(h, "esx-02"), 0);
	vmfsd_host_close(h);

	CU_ASSERT_FATAL(vmfsd_host_open(dir, &h) == 0);
	CU_ASSERT_STRING_EQUAL(vmfsd_host_name(h), "esx-02");
	vmfsd_host_close(h);
	snprintf(db, sizeof(db), "%s/host.tch", dir);
	unlink(db);
	rmdir(dir);
}

/* The cluster view: its fields and the members array, the largest group
 * included; a malformed members array is refused. */
static void test_info_cluster(void)
{
	struct vmfsd_info *in = calloc(1, sizeof(*in));
	struct vmfsd_info *out = calloc(1, sizeof(*out));
	char *json;

	CU_ASSERT_FATAL(in && out);
	snprintf(in->cluster_state, sizeof(in->cluster_state), "joined");
	snprintf(in->cluster_group, sizeof(in->cluster_group), "vmfs-x");
	in->cluster_nodeid = 3;
	in->cluster_quorate = true;
	in->cluster_rejected = 9;
	in->cluster_handed = 0xfedcba9876543210ULL;
	in->cluster_nmembers = VMFSD_CLUSTER_MAX_MEMBERS;
	for (uint32_t i = 0; i < VMFSD_CLUSTER_MAX_MEMBERS; i++) {
		struct vmfsd_cluster_member *m = &in->cluster_members[i];

		m->nodeid = i + 1;
		m->pid = 1000 + i;
		m->known = i % 2;
		m->slot = i;
		m->hb_gen = 5;
		memset(m->host_name, 'h', VMFSD_HOST_NAME_MAX);
		snprintf(m->host_uuid, sizeof(m->host_uuid),
			 "2ec3044c-a58b-46e8-bc60-24791e09de%02x", i);
		snprintf(m->node_addr, sizeof(m->node_addr), "10.99.0.%u", i);
	}
	json = vmfsd_info_encode(in);
	CU_ASSERT_FATAL(json != NULL);
	CU_ASSERT(strlen(json) < VMFSD_CTL_MSG_MAX - sizeof(struct vmfsd_ctl_frame));
	CU_ASSERT_EQUAL(vmfsd_info_decode(json, out), 0);
	CU_ASSERT_STRING_EQUAL(out->cluster_state, "joined");
	CU_ASSERT_STRING_EQUAL(out->cluster_group, "vmfs-x");
	CU_ASSERT_EQUAL(out->cluster_nodeid, 3);
	CU_ASSERT_EQUAL(out->cluster_quorate, true);
	CU_ASSERT_EQUAL(out->cluster_rejected, 9);
	CU_ASSERT_EQUAL(out->cluster_handed, in->cluster_handed);
	CU_ASSERT_EQUAL(out->cluster_nmembers, VMFSD_CLUSTER_MAX_MEMBERS);
	CU_ASSERT_EQUAL(memcmp(out->cluster_members, in->cluster_members,
			       sizeof(in->cluster_members)), 0);
	free(json);

	CU_ASSERT_EQUAL(vmfsd_info_decode("{\"cluster_members\": 5}", out),
			-EBADMSG);
	CU_ASSERT_EQUAL(vmfsd_info_decode("{\"cluster_members\": [1]}", out),
			-EBADMSG);
	CU_ASSERT_EQUAL(vmfsd_info_decode("{\"cluster_members\": "
					  "[{\"nodeid\": \"1\"}]}", out),
			-EBADMSG);
	/* An older vmfsd: no cluster fields at all. */
	CU_ASSERT_EQUAL(vmfsd_info_decode("{\"pid\": 7}", out), 0);
	CU_ASSERT_STRING_EQUAL(out->cluster_state, "");
	CU_ASSERT_EQUAL(out->cluster_nmembers, 0);
	free(in);
	free(out);
}

static CU_TestInfo tests[] = {
	{ "frame_roundtrip", test_frame_roundtrip },
	{ "frame_bad", test_frame_bad },
	{ "info_roundtrip", test_info_roundtrip },
	{ "info_cluster", test_info_cluster },
	{ "body_compat", test_body_compat },
	{ "grow_status_roundtrip", test_grow_status_roundtrip },
	{ "name", test_name },
	{ "host_name_valid", test_host_name_valid },
	{ "host_name_stored", test_host_name_stored },
	CU_TEST_INFO_NULL
};

UNIT_SUITE("vmfsd_ctl", NULL, NULL, tests);
