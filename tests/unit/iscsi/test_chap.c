/*
 * test_chap.c - CHAP (RFC 1994 / RFC 7143 12.1.3): MD5 vectors computed
 * independently with `openssl dgst -md5`, binary-value codecs, secret rules
 * and the one-way and mutual exchanges driven like login.c drives them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "chap.c"

/*
 * Expected digests, from the shell:
 *  ( printf '\x01'; printf 'secretsecret1'; printf '\x00\x01...\x0f' ) | openssl dgst -md5
 *  ( printf '\x7f'; printf 'mutualsecret99'; bytes 0xa0..0xbf ) | openssl dgst -md5
 */
static const char *const k_vec1 = "0x71133038ef3394e5d0284e40a4a27ea2";
static const char *const k_vec2 = "0xb3cef19a6af1b25fe789df0a2f5bdbd0";

struct kvbuf {
	char raw[4096];
	struct iscsi_kv kv[32];
	int n;
};

/* Build a request from "k=v" strings. */
static void make_req(struct kvbuf *b, int n, ...)
{
	va_list ap;
	size_t off = 0;

	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		const char *s = va_arg(ap, const char *);
		size_t l = strlen(s) + 1;
		assert_true(off + l <= sizeof(b->raw));
		memcpy(b->raw + off, s, l);
		off += l;
	}
	va_end(ap);
	b->n = iscsi_text_parse(b->raw, off, b->kv, 32);
	assert_int_equal(b->n, n);
}

static const char *out_get(struct iscsi_text_out *out, const char *key)
{
	size_t kl = strlen(key);

	for (size_t off = 0; off < out->len;) {
		const char *p = out->buf + off;
		if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
			return p + kl + 1;
		}
		off += strlen(p) + 1;
	}
	return NULL;
}

static void cfg_oneway(struct iscsi_chap_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->user, sizeof(c->user), "%s", "alice");
	snprintf(c->secret, sizeof(c->secret), "%s", "secretsecret1");
}

static void test_md5_vectors(void **state)
{
	uint8_t chal[32], d[ISCSI_CHAP_DIGEST_LEN];
	char hex[64];

	for (int i = 0; i < 16; i++) {
		chal[i] = (uint8_t)i;
	}
	assert_int_equal(iscsi_chap_md5(1, (const uint8_t *)"secretsecret1", 13, chal, 16, d), 0);
	assert_int_equal(iscsi_chap_encode_hex(d, 16, hex, sizeof(hex)), 0);
	assert_string_equal(hex, k_vec1);

	for (int i = 0; i < 32; i++) {
		chal[i] = (uint8_t)(0xa0 + i);
	}
	assert_int_equal(iscsi_chap_md5(0x7f, (const uint8_t *)"mutualsecret99", 14, chal, 32, d),
			 0);
	assert_int_equal(iscsi_chap_encode_hex(d, 16, hex, sizeof(hex)), 0);
	assert_string_equal(hex, k_vec2);
}

static void test_codecs(void **state)
{
	uint8_t b[8];
	char hex[8];

	assert_int_equal(iscsi_chap_decode("0x0102", b, sizeof(b)), 2);
	assert_int_equal(b[0], 1);
	assert_int_equal(b[1], 2);
	assert_int_equal(iscsi_chap_decode("0XaBc", b, sizeof(b)), 2); /* implied leading 0 */
	assert_int_equal(b[0], 0x0a);
	assert_int_equal(b[1], 0xbc);
	assert_int_equal(iscsi_chap_decode("0bAQID", b, sizeof(b)), 3);
	assert_int_equal(b[2], 3);
	assert_int_equal(iscsi_chap_decode("0bAQ==", b, sizeof(b)), 1);
	assert_int_equal(iscsi_chap_decode("0BAQI=", b, sizeof(b)), 2);
	assert_int_equal(iscsi_chap_decode("0x", b, sizeof(b)), -EINVAL);
	assert_int_equal(iscsi_chap_decode("0xzz", b, sizeof(b)), -EINVAL);
	assert_int_equal(iscsi_chap_decode("1234", b, sizeof(b)), -EINVAL);
	assert_int_equal(iscsi_chap_decode("0bAQ=", b, sizeof(b)), -EINVAL);
	assert_int_equal(iscsi_chap_decode("0bA===", b, sizeof(b)), -EINVAL);
	assert_int_equal(iscsi_chap_decode("0bAQ==AQID", b, sizeof(b)), -EINVAL);
	assert_int_equal(iscsi_chap_decode("0x010203040506070809", b, sizeof(b)), -E2BIG);
	assert_int_equal(iscsi_chap_encode_hex((const uint8_t *)"\x01\xff", 2, hex, sizeof(hex)), 0);
	assert_string_equal(hex, "0x01ff");
	assert_int_equal(iscsi_chap_encode_hex(b, 3, hex, 8), -E2BIG);
}

static void test_config_rules(void **state)
{
	struct iscsi_chap_config c;
	char err[128];

	cfg_oneway(&c);
	assert_int_equal(iscsi_chap_config_check(&c, err, sizeof(err)), 0);
	snprintf(c.secret, sizeof(c.secret), "%s", "short1234");
	assert_int_equal(iscsi_chap_config_check(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "secret"));
	assert_null(strstr(err, "short1234"));
	cfg_oneway(&c);
	c.user[0] = '\0';
	assert_int_equal(iscsi_chap_config_check(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "user"));
	cfg_oneway(&c);
	snprintf(c.mutual_user, sizeof(c.mutual_user), "%s", "target1");
	snprintf(c.mutual_secret, sizeof(c.mutual_secret), "%s", "secretsecret1");
	assert_int_equal(iscsi_chap_config_check(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "mutual_secret"));
	snprintf(c.mutual_secret, sizeof(c.mutual_secret), "%s", "mutualsecret99");
	assert_int_equal(iscsi_chap_config_check(&c, err, sizeof(err)), 0);
	c.mutual_user[0] = '\0';
	assert_int_equal(iscsi_chap_config_check(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "mutual_user"));
}

/* Run CHAP_A and return the challenge the target sent. */
static void do_step_a(struct iscsi_chap *ch, uint8_t chal[32], uint8_t *id)
{
	char ob[1024];
	struct iscsi_text_out out = { .buf = ob, .cap = sizeof(ob) };
	struct kvbuf req;
	uint64_t v;

	make_req(&req, 1, "CHAP_A=7,5");
	assert_int_equal(iscsi_chap_step(ch, req.kv, (size_t)req.n, &out), ISCSI_CHAP_CONTINUE);
	assert_string_equal(out_get(&out, "CHAP_A"), "5");
	assert_int_equal(iscsi_text_number(out_get(&out, "CHAP_I"), &v), 0);
	assert_true(v <= 255);
	*id = (uint8_t)v;
	/* RFC 7143 12.1.3: at least 16 bytes of challenge; ours is 32. */
	assert_int_equal(iscsi_chap_decode(out_get(&out, "CHAP_C"), chal, 32), 32);
}

static void respond(uint8_t id, const char *secret, const uint8_t *chal, char *hex, size_t hl)
{
	uint8_t d[16];

	assert_int_equal(iscsi_chap_md5(id, (const uint8_t *)secret, strlen(secret), chal, 32, d), 0);
	assert_int_equal(iscsi_chap_encode_hex(d, 16, hex, hl), 0);
}

static void test_oneway_ok(void **state)
{
	struct iscsi_chap_config c;
	struct iscsi_chap ch = { 0 };
	uint8_t chal[32], id;
	char hex[64], n[80], r[80], ob[512];
	struct iscsi_text_out out = { .buf = ob, .cap = sizeof(ob) };
	struct kvbuf req;

	cfg_oneway(&c);
	iscsi_chap_start(&ch, &c);
	make_req(&req, 1, "AuthMethod=CHAP");
	assert_int_equal(iscsi_chap_step(&ch, req.kv, 1, &out), ISCSI_CHAP_CONTINUE);
	assert_int_equal(out.len, 0);
	do_step_a(&ch, chal, &id);
	respond(id, "secretsecret1", chal, hex, sizeof(hex));
	snprintf(n, sizeof(n), "CHAP_N=alice");
	snprintf(r, sizeof(r), "CHAP_R=%s", hex);
	make_req(&req, 2, n, r);
	assert_int_equal(iscsi_chap_step(&ch, req.kv, 2, &out), ISCSI_CHAP_SUCCESS);
	assert_int_equal(out.len, 0);
	assert_true(iscsi_chap_is_done(&ch));
	/* the challenge is spent */
	for (size_t i = 0; i < sizeof(ch.challenge); i++) {
		assert_int_equal(ch.challenge[i], 0);
	}
	/* more CHAP keys after success are an initiator error */
	assert_int_equal(iscsi_chap_step(&ch, req.kv, 2, &out), ISCSI_CHAP_INITIATOR_ERROR);
	iscsi_chap_fini(&ch);
	for (size_t i = 0; i < sizeof(ch.cfg.secret); i++) {
		assert_int_equal(ch.cfg.secret[i], 0);
	}
}

static void test_oneway_base64_response(void **state)
{
	struct iscsi_chap_config c;
	struct iscsi_chap ch = { 0 };
	uint8_t chal[32], id, d[16];
	char r[80], ob[64];
	struct iscsi_text_out out = { .buf = ob, .cap = sizeof(ob) };
	struct kvbuf req;
	int len;

	cfg_oneway(&c);
	iscsi_chap_start(&ch, &c);
	do_step_a(&ch, chal, &id);
	assert_int_equal(iscsi_chap_md5(id, (const uint8_t *)c.secret, strlen(c.secret), chal, 32, d),
			 0);
	len = snprintf(r, sizeof(r), "CHAP_R=0b");
	assert_int_equal(EVP_EncodeBlock((unsigned char *)r + len, d, 16), 24);
	make_req(&req, 2, "CHAP_N=alice", r);
	assert_int_equal(iscsi_chap_step(&ch, req.kv, 2, &out), ISCSI_CHAP_SUCCESS);
	iscsi_chap_fini(&ch);
}

static void test_oneway_failures(void **state)
{
	struct iscsi_chap_config c;
	struct iscsi_chap ch = { 0 };
	uint8_t chal[32], id;
	char hex[64], r[80], ob[512];
	struct iscsi_text_out out = { .buf = ob, .cap = sizeof(ob) };
	struct kvbuf req;

	cfg_oneway(&c);

	/* wrong secret */
	iscsi_chap_start(&ch, &c);
	do_step_a(&ch, chal, &id);
	respond(id, "secretsecret2", chal, hex, sizeof(hex));
	snprintf(r, sizeof(r), "CHAP_R=%s", hex);
	make_req(&req, 2, "CHAP_N=alice", r);
	assert_int_equal(iscsi_chap_step(&ch, req.kv, 2, &out), ISCSI_CHAP_AUTH_FAIL);
	assert_null(strstr(ch.why, "secret1"));
	/* terminal */
	assert_int_equal(iscsi_chap_step(&ch, req.kv, 2, &out), ISCSI_CHAP_AUTH_FAIL);

	/* right secret, wrong user */
	iscsi_chap_start(&ch, &c);
	do_step_a(&ch, chal, &id);
	respond(id, "secretsecret1", chal, hex, sizeof(hex));
	snprintf(r, sizeof(r), "CHAP_R=%s", hex);
	make_req(&req, 2, "CHAP_N=mallory", r);
	assert_int_equal(iscsi_chap_step(&ch, req.kv, 2, &out), ISCSI_CHAP_AUTH_FAIL);

	/* response to another identifier */
	iscsi_chap_start(&ch, &c);
	do_step_a(&ch, chal, &id);
	respond((uint8_t)(id + 1), "secretsecret1", chal, hex, sizeof(hex));
	snprintf(r, sizeof(r), "CHAP_R=%s", hex);
	make_req(&req, 2, "CHAP_N=alice", r);
	assert_int_equal(iscsi_chap_step(&ch, req.kv, 2, &out), ISCSI_CHAP_AUTH_FAIL);

	/* missing response */
	iscsi_chap_start(&ch, &c);
	do_step_a(&ch, chal, &id);
	make_req(&req, 1, "CHAP_N=alice");
	assert_int_equal(iscsi_chap_step(&ch, req.kv, 1, &out), ISCSI_CHAP_INITIATOR_ERROR);

	/* garbage response */
	iscsi_chap_start(&ch, &c);
	do_step_a(&ch, chal, &id);
	make_req(&req, 2, "CHAP_N=alice", "CHAP_R=0xnothex");
	assert_int_equal(iscsi_chap_step(&ch, req.kv, 2, &out), ISCSI_CHAP_INITIATOR_ERROR);

	/* no MD5 offered */
	iscsi_chap_start(&ch, &c);
	out.len = 0;
	make_req(&req, 1, "CHAP_A=6,7");
	assert_int_equal(iscsi_chap_step(&ch, req.kv, 1, &out), ISCSI_CHAP_AUTH_FAIL);
	assert_string_equal(out_get(&out, "CHAP_A"), "Reject");

	/* response keys before the challenge */
	iscsi_chap_start(&ch, &c);
	make_req(&req, 2, "CHAP_N=alice", "CHAP_R=0x00");
	assert_int_equal(iscsi_chap_step(&ch, req.kv, 2, &out), ISCSI_CHAP_INITIATOR_ERROR);
	iscsi_chap_fini(&ch);
}

static void test_challenges_differ(void **state)
{
	struct iscsi_chap_config c;
	struct iscsi_chap ch = { 0 };
	uint8_t c1[32], c2[32], id;

	cfg_oneway(&c);
	iscsi_chap_start(&ch, &c);
	do_step_a(&ch, c1, &id);
	iscsi_chap_start(&ch, &c);
	do_step_a(&ch, c2, &id);
	assert_memory_not_equal(c1, c2, 32);
	iscsi_chap_fini(&ch);
}

static void test_mutual(void **state)
{
	struct iscsi_chap_config c;
	struct iscsi_chap ch = { 0 };
	uint8_t chal[32], id;
	char hex[64], r[80], ic[100], ob[512];
	struct iscsi_text_out out = { .buf = ob, .cap = sizeof(ob) };
	struct kvbuf req;
	size_t o;

	cfg_oneway(&c);
	snprintf(c.mutual_user, sizeof(c.mutual_user), "%s", "target-one");
	snprintf(c.mutual_secret, sizeof(c.mutual_secret), "%s", "mutualsecret99");
	iscsi_chap_start(&ch, &c);
	do_step_a(&ch, chal, &id);
	respond(id, "secretsecret1", chal, hex, sizeof(hex));
	snprintf(r, sizeof(r), "CHAP_R=%s", hex);
	o = (size_t)snprintf(ic, sizeof(ic), "CHAP_C=0x");
	for (int i = 0; i < 32; i++) {
		o += (size_t)snprintf(ic + o, sizeof(ic) - o, "%02x", 0xa0 + i);
	}
	make_req(&req, 4, "CHAP_N=alice", r, "CHAP_I=127", ic);
	assert_int_equal(iscsi_chap_step(&ch, req.kv, 4, &out), ISCSI_CHAP_SUCCESS);
	assert_string_equal(out_get(&out, "CHAP_N"), "target-one");
	assert_string_equal(out_get(&out, "CHAP_R"), k_vec2);
	iscsi_chap_fini(&ch);

	/* mutual asked for but not configured */
	cfg_oneway(&c);
	iscsi_chap_start(&ch, &c);
	do_step_a(&ch, chal, &id);
	respond(id, "secretsecret1", chal, hex, sizeof(hex));
	snprintf(r, sizeof(r), "CHAP_R=%s", hex);
	make_req(&req, 4, "CHAP_N=alice", r, "CHAP_I=127", ic);
	assert_int_equal(iscsi_chap_step(&ch, req.kv, 4, &out), ISCSI_CHAP_AUTH_FAIL);

	/* CHAP_I without CHAP_C */
	snprintf(c.mutual_user, sizeof(c.mutual_user), "%s", "target-one");
	snprintf(c.mutual_secret, sizeof(c.mutual_secret), "%s", "mutualsecret99");
	iscsi_chap_start(&ch, &c);
	do_step_a(&ch, chal, &id);
	respond(id, "secretsecret1", chal, hex, sizeof(hex));
	snprintf(r, sizeof(r), "CHAP_R=%s", hex);
	make_req(&req, 3, "CHAP_N=alice", r, "CHAP_I=1");
	assert_int_equal(iscsi_chap_step(&ch, req.kv, 3, &out), ISCSI_CHAP_INITIATOR_ERROR);
	iscsi_chap_fini(&ch);
}

static void test_mutual_reflection(void **state)
{
	struct iscsi_chap_config c;
	struct iscsi_chap ch = { 0 };
	uint8_t chal[32], id;
	char hex[64], r[80], ic[100], ob[512];
	struct iscsi_text_out out = { .buf = ob, .cap = sizeof(ob) };
	struct kvbuf req;

	cfg_oneway(&c);
	snprintf(c.mutual_user, sizeof(c.mutual_user), "%s", "target-one");
	snprintf(c.mutual_secret, sizeof(c.mutual_secret), "%s", "mutualsecret99");
	iscsi_chap_start(&ch, &c);
	do_step_a(&ch, chal, &id);
	respond(id, "secretsecret1", chal, hex, sizeof(hex));
	snprintf(r, sizeof(r), "CHAP_R=%s", hex);
	memcpy(ic, "CHAP_C=", 7);
	assert_int_equal(iscsi_chap_encode_hex(chal, 32, ic + 7, sizeof(ic) - 7), 0);
	make_req(&req, 4, "CHAP_N=alice", r, "CHAP_I=5", ic);
	assert_int_equal(iscsi_chap_step(&ch, req.kv, 4, &out), ISCSI_CHAP_AUTH_FAIL);
	assert_null(out_get(&out, "CHAP_R"));
	iscsi_chap_fini(&ch);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_md5_vectors),
		cmocka_unit_test(test_codecs),
		cmocka_unit_test(test_config_rules),
		cmocka_unit_test(test_oneway_ok),
		cmocka_unit_test(test_oneway_base64_response),
		cmocka_unit_test(test_oneway_failures),
		cmocka_unit_test(test_challenges_differ),
		cmocka_unit_test(test_mutual),
		cmocka_unit_test(test_mutual_reflection),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
