/*
 * The cluster fast path's message codec (lockmgr/cnwire.c): every type
 * round-trips, and every way a message can be wrong is refused with its
 * own reason (short, bad magic, bad crc, newer version, a length that
 * lies, an oversize or unprintable name, unknown type, bad body size).
 */
#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "../../lockmgr/cn_int.h"
#include "unit.h"

static const uint8_t uuid_a[VMFS_UUID_SIZE] = {
	0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe,
	1, 2, 3, 4, 5, 6, 7, 8
};

static struct cn_msg hello_msg(void)
{
	struct cn_msg m = { .type = CN_MSG_HELLO };

	memcpy(m.u.hello.host_uuid, uuid_a, VMFS_UUID_SIZE);
	m.u.hello.slot = 3;
	m.u.hello.hb_gen = 0x0102030405060708ull;
	strcpy(m.u.hello.name, "esx-02.lab");
	return m;
}

/* Encode m, decode it, and compare. */
static void roundtrip(const struct cn_msg *m)
{
	uint8_t buf[CN_MSG_MAX];
	struct cn_msg back;
	const char *why;
	ssize_t n;

	n = cn_msg_encode(m, buf, sizeof(buf));
	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_EQUAL(cn_msg_decode(buf, (size_t)n, &back, &why), 0);
	CU_ASSERT_EQUAL(back.type, m->type);
	CU_ASSERT_EQUAL(memcmp(&back.u, &m->u, sizeof(m->u)), 0);
}

static void test_roundtrip(void)
{
	struct cn_msg m = hello_msg();

	roundtrip(&m);
	memset(m.u.hello.name, 0, sizeof(m.u.hello.name));   /* no name */
	roundtrip(&m);
	memset(m.u.hello.name, 'x', CN_HOST_NAME_MAX);   /* the longest */
	roundtrip(&m);

	memset(&m, 0, sizeof(m));
	m.type = CN_MSG_ASK;
	m.u.ask.req_id = 77;
	m.u.ask.addr = 0x123456789000ull;
	m.u.ask.mode = VMFS_LOCK_EXCLUSIVE;
	m.u.ask.target.slot = 5;
	m.u.ask.target.hb_gen = 9;
	memcpy(m.u.ask.target.uuid, uuid_a, VMFS_UUID_SIZE);
	roundtrip(&m);

	memset(&m, 0, sizeof(m));
	m.type = CN_MSG_RELEASED;
	m.u.released.addr = 0xfffffffffffff000ull;
	roundtrip(&m);

	memset(&m, 0, sizeof(m));
	m.type = CN_MSG_BUSY;
	m.u.busy.nodeid = 2;
	m.u.busy.pid = 4242;
	m.u.busy.req_id = 1;
	m.u.busy.addr = 8192;
	roundtrip(&m);

	memset(&m, 0, sizeof(m));
	m.type = CN_MSG_APP;
	m.u.app.target.slot = 2;
	m.u.app.target.hb_gen = 3;
	memcpy(m.u.app.target.uuid, uuid_a, VMFS_UUID_SIZE);
	m.u.app.len = 11;
	memcpy(m.u.app.data, "{\"op\": \"x\"}", 11);
	roundtrip(&m);
	m.u.app.len = CN_APP_MAX;               /* the longest */
	memset(m.u.app.data, 'y', CN_APP_MAX);
	roundtrip(&m);
	m.u.app.len = CN_APP_MAX + 1;           /* longer: refused */
	{
		uint8_t buf[CN_MSG_MAX];

		CU_ASSERT_EQUAL(cn_msg_encode(&m, buf, sizeof(buf)), -EINVAL);
	}
}

/* The bytes on the wire are little-endian at the documented offsets. */
static void test_layout(void)
{
	struct cn_msg m = hello_msg();
	uint8_t buf[CN_MSG_MAX];
	ssize_t n = cn_msg_encode(&m, buf, sizeof(buf));

	CU_ASSERT_EQUAL_FATAL(n, 16 + 32 + 10);
	CU_ASSERT_EQUAL(memcmp(buf, "VCPG", 4), 0);
	CU_ASSERT_EQUAL(buf[4], CN_PROTO_VERSION);
	CU_ASSERT_EQUAL(buf[6], CN_MSG_HELLO);
	CU_ASSERT_EQUAL(buf[8], n);
	CU_ASSERT_EQUAL(buf[16 + 16], 3);          /* slot */
	CU_ASSERT_EQUAL(buf[16 + 20], 10);         /* name length */
	CU_ASSERT_EQUAL(buf[16 + 24], 0x08);       /* hb_gen, low byte first */
	CU_ASSERT_EQUAL(memcmp(buf + 48, "esx-02.lab", 10), 0);
}

/* Decode buf[0..len) and expect err with why containing what. */
static void expect_bad(const uint8_t *buf, size_t len, int err,
		       const char *what)
{
	struct cn_msg m;
	const char *why = NULL;
	int ret = cn_msg_decode(buf, len, &m, &why);

	CU_ASSERT_EQUAL(ret, err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(why);
	if (!strstr(why, what)) {
		fprintf(stderr, "\n  expected '%s', got '%s'\n", what, why);
		CU_FAIL("wrong reason");
	}
}

static size_t encoded(const struct cn_msg *m, uint8_t *buf)
{
	ssize_t n = cn_msg_encode(m, buf, CN_MSG_MAX);

	CU_ASSERT_FATAL(n > 0);
	return (size_t)n;
}

static void test_malformed(void)
{
	struct cn_msg m = hello_msg();
	uint8_t buf[CN_MSG_MAX + 64];
	size_t n = encoded(&m, buf);
	uint16_t v16;
	uint32_t v32;

	/* short: no header, then a header whose body is cut */
	expect_bad(buf, 0, -EBADMSG, "shorter than a header");
	expect_bad(buf, 15, -EBADMSG, "shorter than a header");
	expect_bad(buf, n - 1, -EBADMSG, "length field");

	/* bad magic */
	buf[0] ^= 0xff;
	expect_bad(buf, n, -EBADMSG, "bad magic");
	buf[0] ^= 0xff;

	/* a flipped bit anywhere after the header */
	for (size_t i = 16; i < n; i++) {
		buf[i] ^= 0x04;
		expect_bad(buf, n, -EBADMSG, "bad crc");
		buf[i] ^= 0x04;
	}

	/* newer version, sealed correctly: refused as such */
	v16 = htole16(CN_PROTO_VERSION + 1);
	memcpy(buf + 4, &v16, 2);
	cn_msg_seal(buf, n);
	expect_bad(buf, n, -EPROTONOSUPPORT, "newer protocol version");
	v16 = 0;
	memcpy(buf + 4, &v16, 2);
	cn_msg_seal(buf, n);
	expect_bad(buf, n, -EBADMSG, "version 0");
	v16 = htole16(CN_PROTO_VERSION);
	memcpy(buf + 4, &v16, 2);
	cn_msg_seal(buf, n);
	CU_ASSERT_EQUAL(cn_msg_decode(buf, n, &m, &(const char *){ 0 }), 0);

	/* the length field lies (more, less than received) */
	v32 = htole32((uint32_t)n + 8);
	memcpy(buf + 8, &v32, 4);
	expect_bad(buf, n, -EBADMSG, "length field");
	v32 = htole32((uint32_t)n - 1);
	memcpy(buf + 8, &v32, 4);
	expect_bad(buf, n, -EBADMSG, "length field");
	cn_msg_seal(buf, n);

	/* longer than any message, sealed */
	memset(buf + n, 0, sizeof(buf) - n);
	cn_msg_seal(buf, CN_MSG_MAX + 8);
	expect_bad(buf, CN_MSG_MAX + 8, -EBADMSG, "longer than any");

	/* unknown type */
	n = encoded(&m, buf);
	v16 = htole16(99);
	memcpy(buf + 6, &v16, 2);
	cn_msg_seal(buf, n);
	expect_bad(buf, n, -EBADMSG, "unknown message type");
}

static void test_bad_bodies(void)
{
	struct cn_msg m = hello_msg();
	uint8_t buf[CN_MSG_MAX];
	size_t n = encoded(&m, buf);
	uint16_t v16;
	uint32_t mode;

	/* a name length past the limit, and one that disagrees */
	v16 = htole16(CN_HOST_NAME_MAX + 1);
	memcpy(buf + 16 + 20, &v16, 2);
	cn_msg_seal(buf, n);
	expect_bad(buf, n, -EBADMSG, "host name too long");
	v16 = htole16(9);
	memcpy(buf + 16 + 20, &v16, 2);
	cn_msg_seal(buf, n);
	expect_bad(buf, n, -EBADMSG, "disagrees with its name");

	/* a name with a space or control character */
	n = encoded(&m, buf);
	buf[48 + 3] = ' ';
	cn_msg_seal(buf, n);
	expect_bad(buf, n, -EBADMSG, "not printable");
	buf[48 + 3] = '\n';
	cn_msg_seal(buf, n);
	expect_bad(buf, n, -EBADMSG, "not printable");

	/* flags that version 1 does not define */
	n = encoded(&m, buf);
	buf[16 + 22] = 1;
	cn_msg_seal(buf, n);
	expect_bad(buf, n, -EBADMSG, "flags");

	/* a hello too short for its fixed part */
	n = encoded(&m, buf);
	cn_msg_seal(buf, 16 + 31);
	expect_bad(buf, 16 + 31, -EBADMSG, "hello body too short");

	/* asks, releases and refusals of the wrong size */
	memset(&m, 0, sizeof(m));
	m.type = CN_MSG_ASK;
	m.u.ask.mode = VMFS_LOCK_EXCLUSIVE;
	n = encoded(&m, buf);
	cn_msg_seal(buf, n - 8);
	expect_bad(buf, n - 8, -EBADMSG, "ask body of the wrong size");
	/* and for a mode that does not exist */
	mode = htole32(VMFS_LOCK_MULTIWRITER + 1);
	memcpy(buf + 16 + 16, &mode, 4);
	cn_msg_seal(buf, n);
	expect_bad(buf, n, -EBADMSG, "lock mode");
	mode = htole32(VMFS_LOCK_FREE);
	memcpy(buf + 16 + 16, &mode, 4);
	cn_msg_seal(buf, n);
	expect_bad(buf, n, -EBADMSG, "lock mode");

	memset(&m, 0, sizeof(m));
	m.type = CN_MSG_RELEASED;
	n = encoded(&m, buf);
	buf[n] = 0;
	cn_msg_seal(buf, n + 1);
	expect_bad(buf, n + 1, -EBADMSG, "released body of the wrong size");

	memset(&m, 0, sizeof(m));
	m.type = CN_MSG_BUSY;
	n = encoded(&m, buf);
	cn_msg_seal(buf, n - 4);
	expect_bad(buf, n - 4, -EBADMSG, "busy body of the wrong size");
}

/* The encoder refuses what the decoder would. */
static void test_encode_refuses(void)
{
	struct cn_msg m = hello_msg();
	uint8_t buf[CN_MSG_MAX];

	m.u.hello.name[2] = ' ';
	CU_ASSERT_EQUAL(cn_msg_encode(&m, buf, sizeof(buf)), -EINVAL);
	m = hello_msg();
	CU_ASSERT_EQUAL(cn_msg_encode(&m, buf, 20), -E2BIG);
	m.type = (enum cn_msg_type)42;
	CU_ASSERT_EQUAL(cn_msg_encode(&m, buf, sizeof(buf)), -EINVAL);
	CU_ASSERT_STRING_EQUAL(cn_msg_type_name(CN_MSG_ASK), "ask");
	CU_ASSERT_STRING_EQUAL(cn_msg_type_name(42), "unknown");
}

static CU_TestInfo cnwire_tests[] = {
	{ "roundtrip", test_roundtrip },
	{ "layout", test_layout },
	{ "malformed", test_malformed },
	{ "bad_bodies", test_bad_bodies },
	{ "encode_refuses", test_encode_refuses },
	CU_TEST_INFO_NULL
};
UNIT_SUITE("cnwire", NULL, NULL, cnwire_tests);
