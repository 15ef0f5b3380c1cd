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

static void test_url_split(void)
{
	char url[64];
	int n;

	CU_ASSERT_EQUAL(lun_iscsi_url_split("iscsi://a/iqn.x/1", url,
					    sizeof(url), &n), 0);
	CU_ASSERT_STRING_EQUAL(url, "iscsi://a/iqn.x/1");
	CU_ASSERT_EQUAL(n, -1);
	CU_ASSERT_EQUAL(lun_iscsi_url_split("iscsi://a/iqn.x/1?lock_lun=2",
					    url, sizeof(url), &n), 0);
	CU_ASSERT_STRING_EQUAL(url, "iscsi://a/iqn.x/1");
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(lun_iscsi_url_split("iscsi://a/iqn.x/1?lock_lun=",
					    url, sizeof(url), &n),
			-VMFS_E_ISCSI_URL);
	CU_ASSERT_EQUAL(lun_iscsi_url_split("iscsi://a/iqn.x/1?lock_lun=2x",
					    url, sizeof(url), &n),
			-VMFS_E_ISCSI_URL);
	CU_ASSERT_EQUAL(lun_iscsi_url_split("iscsi://a/iqn.x/1?lock_lun=256",
					    url, sizeof(url), &n),
			-VMFS_E_ISCSI_URL);
	CU_ASSERT_EQUAL(lun_iscsi_url_split("iscsi://a/iqn.x/1", url, 8, &n),
			-ENAMETOOLONG);
}

/* Host keys: top bit clear (never an open key), never 0, and two
 * generations of one host differ. */
static void test_pr_key(void)
{
	uint8_t u[16] = { 1, 2, 3 };
	uint64_t k1 = lun_pr_key(u, 1), k2 = lun_pr_key(u, 2);

	CU_ASSERT_NOT_EQUAL(k1, 0);
	CU_ASSERT_NOT_EQUAL(k1, k2);
	CU_ASSERT_EQUAL(k1 & LUN_PR_OPEN_KEY_BIT, 0);
	CU_ASSERT_EQUAL(k1 >> 32, k2 >> 32);
	u[0] = 9;
	CU_ASSERT_NOT_EQUAL(lun_pr_key(u, 1), k1);
}

static CU_TestInfo lun_iscsi_tests[] = {
	{ "url_split", test_url_split },
	{ "pr_key", test_pr_key },
	{ "chap_parse", test_chap_parse },
	{ "login_error", test_login_error },
	CU_TEST_INFO_NULL
};
UNIT_SUITE("lun_iscsi", NULL, NULL, lun_iscsi_tests);
