/*
 * test_login_auth.c - CHAP (RFC 7143 12.1.3) and ACLs in the login phase and
 * SendTargets, driven as byte streams over a socketpair into a real
 * connection on a reactor: AuthMethod offers only what the target needs,
 * the T bit is held back while CHAP runs, a wrong response or a skipped
 * security stage fails with 0x0201, mutual CHAP answers with the target's
 * account, an initiator outside the ACL gets 0x0202 and does not see the
 * target in discovery.
 */
#include <errno.h>

#include "chap.h"
#include "iscsi_test_util.h"

#define TGT "iqn.2026-11.test:auth"
#define INIT "iqn.2026-11.test:init"

static int setup(void **state)
{
	struct fixture *f = fixture_create(TGT, NULL, "a0", 0x3000000000000003ull);
	struct iscsi_chap_config c = {0};

	snprintf(c.user, sizeof(c.user), "alice");
	snprintf(c.secret, sizeof(c.secret), "secretsecret1");
	snprintf(c.mutual_user, sizeof(c.mutual_user), "tgt");
	snprintf(c.mutual_secret, sizeof(c.mutual_secret), "mutualsecret99");
	assert_int_equal(iscsi_server_set_chap(f->srv, TGT, &c), 0);
	/* CHAP and ACL are owned by the target entry: fixture_teardown frees them (ASan checks). */
	*state = f;
	return 0;
}

#define SEC_T1 (ISCSI_LOGIN_FLAG_TRANSIT | (0 << 2) | 1)
#define SEC_T0 ((0 << 2) | 0)
#define OP_FFP (ISCSI_LOGIN_FLAG_TRANSIT | (1 << 2) | 3)

static const char k_first[] =
    "InitiatorName=" INIT "\0SessionType=Normal\0TargetName=" TGT "\0AuthMethod=CHAP,None\0";

/* AuthMethod + CHAP_A; returns the identifier and fills the challenge. */
static uint8_t start_chap(struct fixture *f, uint8_t chal[32])
{
	uint8_t rsp[48];
	char data[4096];
	uint64_t id;
	int n;

	n = login_exchange(f, SEC_T1, 1, KEYS(k_first), rsp, data, sizeof(data));
	assert_int_equal(login_status(rsp), 0);
	/* the exchange is not over: no transit yet */
	assert_int_equal(rsp[1] & ISCSI_LOGIN_FLAG_TRANSIT, 0);
	assert_string_equal(get_key(data, n, "AuthMethod"), "CHAP");
	n = login_exchange(f, SEC_T1, 1, KEYS("CHAP_A=5\0"), rsp, data, sizeof(data));
	assert_int_equal(login_status(rsp), 0);
	assert_int_equal(rsp[1] & ISCSI_LOGIN_FLAG_TRANSIT, 0);
	assert_string_equal(get_key(data, n, "CHAP_A"), "5");
	assert_int_equal(iscsi_text_number(get_key(data, n, "CHAP_I"), &id), 0);
	assert_int_equal(iscsi_chap_decode(get_key(data, n, "CHAP_C"), chal, 32), 32);
	return (uint8_t)id;
}

static size_t response_keys(char *buf, size_t cap, uint8_t id, const char *secret,
			    const uint8_t *chal, bool mutual)
{
	uint8_t d[16];
	char hex[40];
	int n;

	assert_int_equal(iscsi_chap_md5(id, (const uint8_t *)secret, strlen(secret), chal, 32, d),
			 0);
	assert_int_equal(iscsi_chap_encode_hex(d, 16, hex, sizeof(hex)), 0);
	n = snprintf(buf, cap, "CHAP_N=alice%cCHAP_R=%s%c", 0, hex, 0);
	if (mutual) {
		n += snprintf(buf + n, cap - (size_t)n,
			      "CHAP_I=9%cCHAP_C=0x000102030405060708090a0b0c0d0e0f%c", 0, 0);
	}
	return (size_t)n;
}

static void test_none_refused(void **state)
{
	struct fixture *f = *state;
	uint8_t rsp[48];
	char data[1024];
	static const char k[] =
	    "InitiatorName=" INIT "\0SessionType=Normal\0TargetName=" TGT "\0AuthMethod=None\0";

	login_exchange(f, SEC_T1, 1, KEYS(k), rsp, data, sizeof(data));
	assert_int_equal(login_status(rsp), ISCSI_LOGIN_AUTH_FAILED);
}

static void test_chap_login_mutual(void **state)
{
	struct fixture *f = *state;
	uint8_t rsp[48], chal[32], c2[16], d[16];
	char data[4096], keys[512], hex[40];
	uint8_t id = start_chap(f, chal);
	size_t kl = response_keys(keys, sizeof(keys), id, "secretsecret1", chal, true);
	int n;

	n = login_exchange(f, SEC_T1, 1, keys, kl, rsp, data, sizeof(data));
	assert_int_equal(login_status(rsp), 0);
	assert_int_equal(rsp[1], SEC_T1);
	assert_string_equal(get_key(data, n, "CHAP_N"), "tgt");
	for (int i = 0; i < 16; i++) {
		c2[i] = (uint8_t)i;
	}
	assert_int_equal(iscsi_chap_md5(9, (const uint8_t *)"mutualsecret99", 14, c2, 16, d), 0);
	assert_int_equal(iscsi_chap_encode_hex(d, 16, hex, sizeof(hex)), 0);
	assert_string_equal(get_key(data, n, "CHAP_R"), hex);
	login_exchange(f, OP_FFP, 1, KEYS("MaxRecvDataSegmentLength=65536\0"), rsp, data,
		       sizeof(data));
	assert_int_equal(login_status(rsp), 0);
	assert_true(get_be16(rsp + ISCSI_LOGIN_TSIH) != 0);
	assert_int_equal(iscsi_server_target_sessions(f->srv, TGT), 1);
}

static void test_chap_wrong_response(void **state)
{
	struct fixture *f = *state;
	uint8_t rsp[48], chal[32];
	char data[4096], keys[512];
	uint8_t id = start_chap(f, chal);
	size_t kl = response_keys(keys, sizeof(keys), id, "secretsecret2", chal, false);

	login_exchange(f, SEC_T1, 1, keys, kl, rsp, data, sizeof(data));
	assert_int_equal(login_status(rsp), ISCSI_LOGIN_AUTH_FAILED);
}

static void test_skip_security_stage(void **state)
{
	struct fixture *f = *state;
	uint8_t rsp[48];
	char data[1024];
	static const char k[] = "InitiatorName=" INIT "\0SessionType=Normal\0TargetName=" TGT "\0";

	login_exchange(f, OP_FFP, 1, KEYS(k), rsp, data, sizeof(data));
	assert_int_equal(login_status(rsp), ISCSI_LOGIN_AUTH_FAILED);
	assert_int_equal(iscsi_server_target_sessions(f->srv, TGT), 0);
}

static void test_chap_keys_without_chap(void **state)
{
	struct fixture *f = *state;
	uint8_t rsp[48];
	char data[1024];
	static const char k[] =
	    "InitiatorName=" INIT "\0SessionType=Normal\0TargetName=" TGT "\0CHAP_A=5\0";

	assert_int_equal(iscsi_server_set_chap(f->srv, TGT, NULL), 0);
	login_exchange(f, SEC_T1, 1, KEYS(k), rsp, data, sizeof(data));
	assert_int_equal(login_status(rsp), ISCSI_LOGIN_INITIATOR_ERROR);
}

static void test_acl_refused(void **state)
{
	struct fixture *f = *state;
	struct iscsi_acl *acl;
	uint8_t rsp[48];
	char data[1024];

	assert_int_equal(iscsi_acl_create(&acl), 0);
	assert_int_equal(iscsi_acl_add_initiator(acl, "iqn.2026-11.test:someone-else"), 0);
	assert_int_equal(iscsi_server_set_acl(f->srv, TGT, acl), 0);
	iscsi_acl_destroy(acl);
	login_exchange(f, SEC_T1, 1, KEYS(k_first), rsp, data, sizeof(data));
	assert_int_equal(login_status(rsp), ISCSI_LOGIN_NOT_AUTHORIZED);
}

static void test_acl_admits(void **state)
{
	struct fixture *f = *state;
	struct iscsi_acl *acl;
	uint8_t rsp[48];
	char data[1024];
	static const char k[] =
	    "InitiatorName=" INIT "\0SessionType=Normal\0TargetName=" TGT "\0AuthMethod=None\0";

	assert_int_equal(iscsi_server_set_chap(f->srv, TGT, NULL), 0);
	assert_int_equal(iscsi_acl_create(&acl), 0);
	assert_int_equal(iscsi_acl_add_initiator(acl, "IQN.2026-11.TEST:INIT"), 0);
	assert_int_equal(iscsi_server_set_acl(f->srv, TGT, acl), 0);
	iscsi_acl_destroy(acl);
	login_exchange(f, SEC_T1, 1, KEYS(k), rsp, data, sizeof(data));
	assert_int_equal(login_status(rsp), 0);
}

static int send_targets(struct fixture *f, char *data, size_t cap)
{
	uint8_t bhs[48], rsp[48];
	static const char disc[] = "InitiatorName=" INIT "\0SessionType=Discovery\0"
				   "AuthMethod=None\0";
	int n;

	login_exchange(f, ISCSI_LOGIN_FLAG_TRANSIT | 3, 1, KEYS(disc), rsp, data, cap);
	assert_int_equal(login_status(rsp), 0);
	text_bhs(bhs, 0x3000, 1);
	send_pdu(f, bhs, KEYS("SendTargets=All\0"));
	n = recv_pdu(f, rsp, data, cap);
	assert_true(n >= 0);
	assert_int_equal(rsp[0], ISCSI_OP_TEXT_RSP);
	return n;
}

static void test_discovery_hidden(void **state)
{
	struct fixture *f = *state;
	struct iscsi_acl *acl;
	char data[4096];
	int n;

	assert_int_equal(iscsi_acl_create(&acl), 0);
	assert_int_equal(iscsi_acl_add_initiator(acl, "iqn.2026-11.test:someone-else"), 0);
	assert_int_equal(iscsi_server_set_acl(f->srv, TGT, acl), 0);
	iscsi_acl_destroy(acl);
	n = send_targets(f, data, sizeof(data));
	assert_null(get_key(data, n, "TargetName"));
}

static void test_discovery_listed(void **state)
{
	struct fixture *f = *state;
	struct iscsi_acl *acl;
	char data[4096];
	int n;

	assert_int_equal(iscsi_acl_create(&acl), 0);
	assert_int_equal(iscsi_acl_add_initiator(acl, INIT), 0);
	assert_int_equal(iscsi_server_set_acl(f->srv, TGT, acl), 0);
	iscsi_acl_destroy(acl);
	n = send_targets(f, data, sizeof(data));
	assert_non_null(get_key(data, n, "TargetName"));
	assert_string_equal(get_key(data, n, "TargetName"), TGT);
}

/* Settings live in the target: removing it frees them; a re-added target starts open. */
static void test_settings_go_with_target(void **state)
{
	struct fixture *f = *state;
	struct iscsi_chap_config c = {0};
	struct iscsi_acl *acl;
	bool mutual = false;

	assert_int_equal(iscsi_acl_create(&acl), 0);
	assert_int_equal(iscsi_acl_add_initiator(acl, "iqn.2026-11.io.s3tgt:someone"), 0);
	assert_int_equal(iscsi_server_set_acl(f->srv, TGT, acl), 0);
	iscsi_acl_destroy(acl);
	assert_true(iscsi_server_has_chap(f->srv, TGT, &mutual));
	assert_true(mutual);
	assert_non_null(iscsi_server_get_acl(f->srv, TGT));

	assert_int_equal(iscsi_server_remove_target(f->srv, TGT), 0);
	assert_false(iscsi_server_has_chap(f->srv, TGT, NULL));
	assert_null(iscsi_server_get_acl(f->srv, TGT));
	snprintf(c.user, sizeof(c.user), "bob");
	snprintf(c.secret, sizeof(c.secret), "secretsecret2");
	assert_int_equal(iscsi_server_set_chap(f->srv, TGT, &c), -ENOENT);
	assert_int_equal(iscsi_server_set_acl(f->srv, TGT, NULL), -ENOENT);

	assert_int_equal(iscsi_server_add_target(f->srv, f->t, NULL, NULL), 0);
	assert_false(iscsi_server_has_chap(f->srv, TGT, NULL));
	assert_null(iscsi_server_get_acl(f->srv, TGT));
	/* Names compare case-insensitively (RFC 7143 4.2.7.1): same entry either way. */
	assert_int_equal(iscsi_server_set_chap(f->srv, "IQN.2026-11.TEST:AUTH", &c), 0);
	assert_true(iscsi_server_has_chap(f->srv, TGT, &mutual));
	assert_false(mutual);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_none_refused, setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_chap_login_mutual, setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_chap_wrong_response, setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_skip_security_stage, setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_chap_keys_without_chap, setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_acl_refused, setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_acl_admits, setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_discovery_hidden, setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_discovery_listed, setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_settings_go_with_target, setup, fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
