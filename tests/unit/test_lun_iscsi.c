/*
 * The iSCSI backend's pure parts: the CHAP file grammar and which part of
 * a URL a login failure blames.  The backend against a real target is
 * tested by tests/integration/t_iscsi*.sh (tgtd in a namespace).
 */
#include <errno.h>
#include <string.h>

#include "../../lun/lun_int.h"
#include "unit.h"

static void test_chap_parse(void)
{
	char u[16], s[16];

	CU_ASSERT_EQUAL(lun_iscsi_chap_parse("username=alice\npassword=s3:cr=t\n",
					     u, sizeof(u), s, sizeof(s)), 0);
	CU_ASSERT_STRING_EQUAL(u, "alice");
	CU_ASSERT_STRING_EQUAL(s, "s3:cr=t");	/* only the first '=' splits */
	/* Comments, blank lines, CRLF, any order. */
	CU_ASSERT_EQUAL(lun_iscsi_chap_parse("# x\r\n\r\npassword=p\r\nusername=b",
					     u, sizeof(u), s, sizeof(s)), 0);
	CU_ASSERT_STRING_EQUAL(u, "b");
	CU_ASSERT_STRING_EQUAL(s, "p");
	/* Missing or empty fields, unknown keys, lines without '='. */
	CU_ASSERT_EQUAL(lun_iscsi_chap_parse("username=a\n", u, sizeof(u), s,
					     sizeof(s)), -VMFS_E_ISCSI_CHAP_FILE);
	CU_ASSERT_EQUAL(lun_iscsi_chap_parse("username=a\npassword=\n", u,
					     sizeof(u), s, sizeof(s)),
			-VMFS_E_ISCSI_CHAP_FILE);
	CU_ASSERT_EQUAL(lun_iscsi_chap_parse("user=a\npassword=b\n", u,
					     sizeof(u), s, sizeof(s)),
			-VMFS_E_ISCSI_CHAP_FILE);
	CU_ASSERT_EQUAL(lun_iscsi_chap_parse("alice secret\n", u, sizeof(u), s,
					     sizeof(s)), -VMFS_E_ISCSI_CHAP_FILE);
	CU_ASSERT_EQUAL(lun_iscsi_chap_parse("", u, sizeof(u), s, sizeof(s)),
			-VMFS_E_ISCSI_CHAP_FILE);
	CU_ASSERT_EQUAL(lun_iscsi_chap_parse("username=0123456789abcdefX\n"
					     "password=p", u, sizeof(u), s,
					     sizeof(s)), -ENAMETOOLONG);
}

/* The messages libiscsi 1.19 gives against tgt 1.0.85 (seen in
 * tests/integration/t_iscsi_bad_input.sh). */
static void test_login_error(void)
{
	CU_ASSERT_EQUAL(lun_iscsi_login_error(
		"Failed to log in to target. Status: Target not found(515)"),
		-VMFS_E_ISCSI_TARGET);
	CU_ASSERT_EQUAL(lun_iscsi_login_error(
		"Failed to log in to target. Status: Authentication failure(513)"),
		-VMFS_E_ISCSI_AUTH);
	CU_ASSERT_EQUAL(lun_iscsi_login_error(
		"SENSE KEY:ILLEGAL_REQUEST(5) ASCQ:LOGICAL_UNIT_NOT_SUPPORTED(0x2500)"),
		-VMFS_E_ISCSI_LUN);
	CU_ASSERT_EQUAL(lun_iscsi_login_error(
		"iscsi_service_reconnect_if_loggedin. Can not reconnect right now."),
		-VMFS_E_ISCSI_PORTAL);
	CU_ASSERT_EQUAL(lun_iscsi_login_error(NULL), -VMFS_E_ISCSI_PORTAL);
}

static CU_TestInfo lun_iscsi_tests[] = {
	{ "chap_parse", test_chap_parse },
	{ "login_error", test_login_error },
	CU_TEST_INFO_NULL
};
UNIT_SUITE("lun_iscsi", NULL, NULL, lun_iscsi_tests);
