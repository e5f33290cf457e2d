/*
 * test_iscsi_text.c - key=value parsing and the negotiation rule of each
 * operational key (RFC 7143 6.2, 13): numerical min/max, boolean AND/OR,
 * list selection, declarative values, Reject / Irrelevant / unknown keys.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "iscsi_internal.h"

static char g_buf[4096];

static struct iscsi_text_out out_init(void)
{
	struct iscsi_text_out o = { .buf = g_buf, .cap = sizeof(g_buf) };
	return o;
}

/* Negotiate one key with default params; returns the answer text or "". */
static const char *neg(struct iscsi_params *p, bool disc, const char *k, const char *v)
{
	static char ans[256];
	struct iscsi_text_out o = out_init();
	size_t kl = strlen(k);

	ans[0] = '\0';
	if (iscsi_negotiate_key(p, disc, k, v, &o) == ISCSI_NEG_UNKNOWN) {
		return NULL;
	}
	if (o.len) {
		assert_true(o.len > kl + 1);
		assert_memory_equal(o.buf, k, kl);
		assert_int_equal(o.buf[kl], '=');
		snprintf(ans, sizeof(ans), "%s", o.buf + kl + 1);
	}
	return ans;
}

static void test_parse(void **state)
{
	char ok[] = "A=1\0B=two\0\0C=\0";
	char noeq[] = "A=1\0B\0";
	char torn[] = { 'A', '=', '1' };
	char emptykey[] = "=x\0";
	char longkey[80];
	struct iscsi_kv kv[8];

	assert_int_equal(iscsi_text_parse(ok, sizeof(ok) - 1, kv, 8), 3);
	assert_string_equal(kv[0].key, "A");
	assert_string_equal(kv[1].value, "two");
	assert_string_equal(kv[2].value, "");
	assert_int_equal(iscsi_text_parse(noeq, sizeof(noeq) - 1, kv, 8), -EINVAL);
	assert_int_equal(iscsi_text_parse(torn, sizeof(torn), kv, 8), -EINVAL);
	assert_int_equal(iscsi_text_parse(emptykey, sizeof(emptykey) - 1, kv, 8), -EINVAL);
	memset(longkey, 'k', sizeof(longkey));
	longkey[70] = '=';
	longkey[72] = '\0';
	assert_int_equal(iscsi_text_parse(longkey, 73, kv, 8), -EINVAL);
	{
		char three[] = "A=1\0B=2\0C=3\0";
		assert_int_equal(iscsi_text_parse(three, sizeof(three) - 1, kv, 2), -E2BIG);
	}
	{
		/* RFC 7143 6.2: a repeated key is a protocol error, not "last wins". */
		char dup[] = "InitiatorName=iqn.a\0X=1\0InitiatorName=iqn.b\0";
		assert_int_equal(iscsi_text_parse(dup, sizeof(dup) - 1, kv, 8), -EINVAL);
	}
}

static void test_numbers(void **state)
{
	uint64_t v;

	assert_int_equal(iscsi_text_number("262144", &v), 0);
	assert_int_equal(v, 262144);
	assert_int_equal(iscsi_text_number("0x10", &v), 0);
	assert_int_equal(v, 16);
	assert_int_equal(iscsi_text_number("0x", &v), -EINVAL);
	assert_int_equal(iscsi_text_number("", &v), -EINVAL);
	assert_int_equal(iscsi_text_number("-1", &v), -EINVAL);
	assert_int_equal(iscsi_text_number("12a", &v), -EINVAL);
	assert_int_equal(iscsi_text_number("99999999999999999999999", &v), -ERANGE);
}

static void test_numeric_min_max(void **state)
{
	struct iscsi_params p;

	iscsi_params_default(&p);
	assert_string_equal(neg(&p, false, "MaxBurstLength", "262144"), "262144");
	assert_int_equal(p.max_burst, 262144);
	assert_string_equal(neg(&p, false, "MaxBurstLength", "16777215"), "16776192");
	assert_string_equal(neg(&p, false, "MaxBurstLength", "511"), "Reject");
	assert_string_equal(neg(&p, false, "MaxBurstLength", "abc"), "Reject");
	assert_string_equal(neg(&p, false, "MaxOutstandingR2T", "64"), "16");
	assert_string_equal(neg(&p, false, "MaxOutstandingR2T", "0"), "Reject");
	assert_string_equal(neg(&p, false, "ErrorRecoveryLevel", "2"), "0");
	assert_string_equal(neg(&p, false, "ErrorRecoveryLevel", "3"), "Reject");
	assert_string_equal(neg(&p, false, "MaxConnections", "8"), "1");
	/* DefaultTime2Wait is a maximum function (13.15) */
	assert_string_equal(neg(&p, false, "DefaultTime2Wait", "0"), "2");
	assert_string_equal(neg(&p, false, "DefaultTime2Wait", "10"), "10");
	assert_string_equal(neg(&p, false, "DefaultTime2Retain", "0"), "0");
	assert_string_equal(neg(&p, false, "DefaultTime2Retain", "3601"), "Reject");
}

static void test_first_burst_clamped(void **state)
{
	struct iscsi_params p;

	iscsi_params_default(&p);
	neg(&p, false, "MaxBurstLength", "65536");
	neg(&p, false, "FirstBurstLength", "262144");
	iscsi_params_finish(&p);
	assert_int_equal(p.first_burst, 65536);
}

static void test_booleans(void **state)
{
	struct iscsi_params p;

	iscsi_params_default(&p);
	/* AND: ours Yes */
	assert_string_equal(neg(&p, false, "ImmediateData", "No"), "No");
	assert_false(p.immediate_data);
	assert_string_equal(neg(&p, false, "ImmediateData", "Yes"), "Yes");
	/* OR: ours No for InitialR2T, Yes for the ordering keys */
	assert_string_equal(neg(&p, false, "InitialR2T", "No"), "No");
	assert_false(p.initial_r2t);
	assert_string_equal(neg(&p, false, "InitialR2T", "Yes"), "Yes");
	assert_string_equal(neg(&p, false, "DataPDUInOrder", "No"), "Yes");
	assert_string_equal(neg(&p, false, "DataSequenceInOrder", "No"), "Yes");
	assert_string_equal(neg(&p, false, "ImmediateData", "yes"), "Reject");
	assert_string_equal(neg(&p, false, "IFMarker", "Yes"), "No");
	assert_string_equal(neg(&p, false, "OFMarkInt", "1~65535"), "Irrelevant");
}

static void test_digest_lists(void **state)
{
	struct iscsi_params p;

	iscsi_params_default(&p);
	assert_string_equal(neg(&p, false, "HeaderDigest", "CRC32C,None"), "CRC32C");
	assert_true(p.header_digest);
	assert_string_equal(neg(&p, false, "HeaderDigest", "None,CRC32C"), "None");
	assert_false(p.header_digest);
	assert_string_equal(neg(&p, false, "DataDigest", "md5,CRC32C"), "CRC32C");
	assert_true(p.data_digest);
	assert_string_equal(neg(&p, false, "DataDigest", "md5,sha1"), "Reject");
	assert_string_equal(neg(&p, false, "DataDigest", ""), "Reject");
}

static void test_declarative_and_scope(void **state)
{
	struct iscsi_params p;

	iscsi_params_default(&p);
	/* Declarative: no answer, value recorded */
	assert_string_equal(neg(&p, false, "MaxRecvDataSegmentLength", "65536"), "");
	assert_int_equal(p.initiator_mrdsl, 65536);
	assert_string_equal(neg(&p, false, "MaxRecvDataSegmentLength", "100"), "Reject");
	assert_string_equal(neg(&p, false, "MaxRecvDataSegmentLength", "16777216"), "Reject");
	/* Session keys are Irrelevant in discovery sessions */
	assert_string_equal(neg(&p, true, "MaxBurstLength", "4096"), "Irrelevant");
	assert_string_equal(neg(&p, true, "HeaderDigest", "None"), "None");
	assert_null(neg(&p, false, "X-com.example.Key", "1"));
	assert_null(neg(&p, false, "NoSuchKey", "1"));
}

static void test_text_out_overflow(void **state)
{
	char small[8];
	struct iscsi_text_out o = { .buf = small, .cap = sizeof(small) };

	iscsi_text_add(&o, "A", "1");
	assert_int_equal(o.len, 4);
	iscsi_text_add(&o, "Long", "value");
	assert_true(o.overflow);
	assert_int_equal(o.len, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_numeric_min_max),
		cmocka_unit_test(test_first_burst_clamped),
		cmocka_unit_test(test_booleans),
		cmocka_unit_test(test_digest_lists),
		cmocka_unit_test(test_declarative_and_scope),
		cmocka_unit_test(test_text_out_overflow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
