/*
 * The VM config (hypervisor/config.c) and the QEMU command line
 * (hypervisor/qemu.c): good configs round-trip through encode/parse, bad
 * ones are refused with a message naming the file and the key, and the
 * disks go to QEMU with cache=none and aio=native.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "vmfs/hypervisor.h"

static const char good[] =
	"{ \"name\": \"g1\", \"memory_mib\": 256, \"cpus\": 2,"
	"  \"disks\": [\"disk0.img\"], \"nics\": [{\"model\": \"e1000\"}],"
	"  \"boot\": {\"kernel\": \"vmlinuz\", \"initrd\": \"initrd.img\"},"
	"  \"ha\": true, \"restart_priority\": 7 }";

static void test_good_roundtrip(void)
{
	struct hv_config c, c2;
	char err[HV_ERR_MAX], *text;

	CU_ASSERT_EQUAL_FATAL(hv_config_parse(good, "vm.json", &c, err,
					      sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(c.name, "g1");
	CU_ASSERT_EQUAL(c.memory_mib, 256);
	CU_ASSERT_EQUAL(c.cpus, 2);
	CU_ASSERT_EQUAL(c.ndisks, 1);
	CU_ASSERT_STRING_EQUAL(c.nics[0].model, "e1000");
	CU_ASSERT(c.ha);
	CU_ASSERT_EQUAL(c.restart_priority, 7);
	text = hv_config_encode(&c);
	CU_ASSERT_FATAL(text != NULL);
	CU_ASSERT_EQUAL(hv_config_parse(text, "vm.json", &c2, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(c2.disks[0], "disk0.img");
	CU_ASSERT_STRING_EQUAL(c2.kernel, "vmlinuz");
	CU_ASSERT_EQUAL(c2.memory_mib, 256);
	CU_ASSERT_EQUAL(c2.restart_priority, 7);
	free(text);
}

/* The run record (hypervisor/hastate.c): written, read back whole,
 * cleared; a damaged one is refused saying what to do. */
static void test_ha_state(void)
{
	char dir[] = "/tmp/vmfs-unit-hastate-XXXXXX", err[256], p[64];
	struct hv_ha_state s, r;
	FILE *f;

	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	CU_ASSERT_EQUAL(hv_ha_state_read(dir, &r, err, sizeof(err)), -ENOENT);
	memset(&s, 0, sizeof(s));
	s.ha = true;
	s.priority = 12;
	s.memory_mib = 128;
	snprintf(s.host_uuid, sizeof(s.host_uuid), "%s",
		 "11111111-2222-4333-8444-555555555555");
	snprintf(s.host_name, sizeof(s.host_name), "h2");
	s.started_ns = 1700000000123456789LL;
	snprintf(s.from_name, sizeof(s.from_name), "h1");
	snprintf(s.why, sizeof(s.why), "host h1 died");
	s.restarted_ns = 1700000000000000001LL;
	snprintf(s.moving_uuid, sizeof(s.moving_uuid), "%s",
		 "66666666-7777-4888-8999-aaaaaaaaaaaa");
	snprintf(s.moving_name, sizeof(s.moving_name), "h3");
	CU_ASSERT_EQUAL_FATAL(hv_ha_state_write(dir, &s), 0);
	CU_ASSERT_EQUAL_FATAL(hv_ha_state_read(dir, &r, err, sizeof(err)), 0);
	CU_ASSERT(r.ha);
	CU_ASSERT_EQUAL(r.priority, 12);
	CU_ASSERT_EQUAL(r.memory_mib, 128);
	CU_ASSERT_STRING_EQUAL(r.host_uuid, s.host_uuid);
	CU_ASSERT_STRING_EQUAL(r.host_name, "h2");
	CU_ASSERT_EQUAL(r.started_ns, s.started_ns);
	CU_ASSERT_STRING_EQUAL(r.from_name, "h1");
	CU_ASSERT_STRING_EQUAL(r.why, "host h1 died");
	CU_ASSERT_EQUAL(r.restarted_ns, s.restarted_ns);
	CU_ASSERT_STRING_EQUAL(r.moving_uuid, s.moving_uuid);
	CU_ASSERT_STRING_EQUAL(r.moving_name, "h3");
	/* No migration under way: no such key, and none read back. */
	s.moving_uuid[0] = s.moving_name[0] = 0;
	CU_ASSERT_EQUAL_FATAL(hv_ha_state_write(dir, &s), 0);
	CU_ASSERT_EQUAL_FATAL(hv_ha_state_read(dir, &r, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(r.moving_uuid, "");
	snprintf(p, sizeof(p), "%s/%s", dir, HV_HA_STATE_NAME);
	f = fopen(p, "w");
	CU_ASSERT_FATAL(f != NULL);
	fputs("{ not json", f);
	fclose(f);
	CU_ASSERT_EQUAL(hv_ha_state_read(dir, &r, err, sizeof(err)), -EINVAL);
	CU_ASSERT(strstr(err, "remove it") != NULL);
	CU_ASSERT_EQUAL(hv_ha_state_clear(dir), 0);
	CU_ASSERT_EQUAL(hv_ha_state_clear(dir), 0);
	CU_ASSERT_EQUAL(hv_ha_state_read(dir, &r, err, sizeof(err)), -ENOENT);
	rmdir(dir);
}

static void test_bad(void)
{
	static const struct { const char *text, *want; } cases[] = {
		{ "{ \"name\": ", "not valid JSON" },
		{ "[1]", "one JSON object" },
		{ "{\"name\":\"a\",\"memory_mib\":0,\"boot\":{\"kernel\":\"k\",\"initrd\":\"i\"}}",
		  "\"memory_mib\" is 0" },
		{ "{\"name\":\"a\",\"memroy\":256}", "unknown key \"memroy\"" },
		{ "{\"name\":\"a\",\"memory_mib\":256,\"boot\":{\"kernel\":\"../k\",\"initrd\":\"i\"}}",
		  "\"boot.kernel\"" },
		{ "{\"name\":\"a\",\"memory_mib\":256,\"disks\":[\"/abs\"],\"boot\":{\"disk\":\"/abs\"}}",
		  "\"disks[0]\"" },
		{ "{\"name\":\"a\",\"memory_mib\":256}", "exactly one of" },
		{ "{\"name\":\"a\",\"memory_mib\":256,\"cpus\":\"2\",\"boot\":{\"kernel\":\"k\",\"initrd\":\"i\"}}",
		  "\"cpus\" must be a whole number" },
		{ "{\"name\":\"a b\",\"memory_mib\":256,\"boot\":{\"kernel\":\"k\",\"initrd\":\"i\"}}",
		  "\"name\"" },
		/* A NIC's model or MAC must not add QEMU options. */
		{ "{\"name\":\"a\",\"memory_mib\":256,\"nics\":[{\"model\":\"e1000,hostfwd=tcp::22-:22\"}],"
		  "\"boot\":{\"kernel\":\"k\",\"initrd\":\"i\"}}", "\"nics[0].model\"" },
		{ "{\"name\":\"a\",\"memory_mib\":256,\"nics\":[{\"model\":\"e1000\",\"mac\":\"52:54:00:12:34\"}],"
		  "\"boot\":{\"kernel\":\"k\",\"initrd\":\"i\"}}", "\"nics[0].mac\"" },
		{ "{\"name\":\"a\",\"memory_mib\":256,\"nics\":[{\"mac\":\"01:00:5e:00:00:01\"}],"
		  "\"boot\":{\"kernel\":\"k\",\"initrd\":\"i\"}}", "unicast" },
	};
	struct hv_config c;
	char err[HV_ERR_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = 0;
		CU_ASSERT_NOT_EQUAL(hv_config_parse(cases[i].text, "x/vm.json",
						    &c, err, sizeof(err)), 0);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "x/vm.json"));
		if (!strstr(err, cases[i].want))
			fprintf(stderr, "case %zu: '%s' lacks '%s'\n", i, err,
				cases[i].want);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].want));
	}
}

static void test_argv(void)
{
	struct hv_config c;
	char err[HV_ERR_MAX], **argv;
	bool drive = false, qmp = false;

	CU_ASSERT_EQUAL_FATAL(hv_config_parse(good, "vm.json", &c, err,
					      sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(hv_qemu_argv(&c, "/mnt/ds/g1", "/run/q.sock",
					   NULL, false, &argv), 0);
	for (unsigned i = 0; argv[i]; i++) {
		drive |= !strcmp(argv[i], "file=/mnt/ds/g1/disk0.img,format=raw,"
				 "if=virtio,cache=none,aio=native");
		qmp |= !strcmp(argv[i], "unix:/run/q.sock,server=on,wait=off");
	}
	CU_ASSERT(drive);
	CU_ASSERT(qmp);
	hv_argv_free(argv);

	/* An attachable console: a socket, logged to the datastore too
	 * (appended: a migration's two QEMUs both open the log). */
	CU_ASSERT_EQUAL_FATAL(hv_qemu_argv(&c, "/mnt/ds/g1", "/run/q.sock",
					   "/run/c.sock", false, &argv), 0);
	drive = qmp = false;
	for (unsigned i = 0; argv[i]; i++) {
		drive |= !strcmp(argv[i], "socket,id=con0,path=/run/c.sock,"
				 "server=on,wait=off,logfile=/mnt/ds/g1/console.log,"
				 "logappend=on");
		qmp |= !strcmp(argv[i], "chardev:con0");
	}
	CU_ASSERT(drive);
	CU_ASSERT(qmp);
	hv_argv_free(argv);

	/* A NIC with a MAC: user networking, model and MAC as given. */
	snprintf(c.nics[0].mac, sizeof(c.nics[0].mac), "52:54:00:12:34:56");
	CU_ASSERT_EQUAL_FATAL(hv_config_check(&c, "vm.json", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(hv_qemu_argv(&c, "/mnt/ds/g1", "/run/q.sock",
					   NULL, false, &argv), 0);
	drive = false;
	for (unsigned i = 0; argv[i]; i++)
		drive |= !strcmp(argv[i], "user,model=e1000,mac=52:54:00:12:34:56");
	CU_ASSERT(drive);
	hv_argv_free(argv);
}

static CU_TestInfo tests[] = {
	{ "good config round-trips", test_good_roundtrip },
	{ "bad configs name file and key", test_bad },
	{ "qemu argv", test_argv },
	{ "run record round-trips", test_ha_state },
	CU_TEST_INFO_NULL
};

UNIT_SUITE("hv_config", NULL, NULL, tests);
