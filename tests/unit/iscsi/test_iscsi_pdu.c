/*
 * test_iscsi_pdu.c - the PDU receive state machine (pdu.c): BHS, AHS,
 * header/data digests, padding, resumption on short reads, bad lengths.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "iscsi_internal.h"

struct sink {
	unsigned headers;
	unsigned pdus;
	uint8_t data[4096];
	uint32_t data_len;
	uint8_t last_op;
	uint32_t last_ahs;
	bool digest_bad;
	int fail_header;
};

static int sink_header(void *arg, struct iscsi_rx *rx)
{
	struct sink *s = arg;

	s->headers++;
	s->last_op = iscsi_bhs_opcode(rx->bhs);
	s->last_ahs = rx->ahs_len;
	if (s->fail_header) {
		return s->fail_header;
	}
	rx->data = rx->data_len <= sizeof(s->data) ? s->data : NULL;
	return 0;
}

static int sink_pdu(void *arg, struct iscsi_rx *rx)
{
	struct sink *s = arg;

	s->pdus++;
	s->data_len = rx->data_len;
	s->digest_bad = rx->data_digest_bad;
	return 0;
}

static const struct iscsi_rx_ops g_ops = { .header = sink_header, .pdu = sink_pdu };

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* Build a PDU: BHS, optional AHS words, optional digests, data + pad. */
static size_t build(uint8_t *out, uint8_t op, uint8_t ahs_words, const char *data, bool hd,
		    bool dd)
{
	uint32_t dl = data ? (uint32_t)strlen(data) : 0;
	size_t off = 0;

	memset(out, 0, ISCSI_BHS_LEN);
	out[0] = op;
	out[1] = 0x80;
	out[ISCSI_BHS_AHS_LEN] = ahs_words;
	put_be24(out + ISCSI_BHS_DATA_LEN, dl);
	off = ISCSI_BHS_LEN;
	for (unsigned i = 0; i < ahs_words * 4u; i++) {
		out[off++] = (uint8_t)i;
	}
	if (hd) {
		put_le32(out + off, iscsi_crc32c(out, off));
		off += 4;
	}
	if (dl) {
		size_t start = off;
		memcpy(out + off, data, dl);
		off += dl;
		while (off & 3) {
			out[off++] = 0;
		}
		if (dd) {
			put_le32(out + off, iscsi_crc32c(out + start, off - start));
			off += 4;
		}
	}
	return off;
}

static void test_crc_vector(void **state)
{
	uint8_t zeros[32] = { 0 };
	uint32_t crc = iscsi_crc32c(zeros, sizeof(zeros));

	/* RFC 3720 B.4: 32 bytes of zeros -> aa 36 91 8a on the wire (LSB first). */
	assert_int_equal(crc & 0xff, 0xaa);
	assert_int_equal((crc >> 8) & 0xff, 0x36);
	assert_int_equal((crc >> 16) & 0xff, 0x91);
	assert_int_equal((crc >> 24) & 0xff, 0x8a);
}

static void test_plain_pdu_one_shot_and_bytewise(void **state)
{
	uint8_t buf[256];
	size_t n = build(buf, ISCSI_OP_NOP_OUT, 0, "hello", false, false);
	struct iscsi_rx rx;
	struct sink s = { 0 };

	assert_int_equal(n, 48 + 8); /* 5 bytes + 3 pad */
	iscsi_rx_init(&rx, 8192);
	assert_int_equal(iscsi_rx_feed(&rx, buf, n, &g_ops, &s, NULL), (long)n);
	assert_int_equal(s.pdus, 1);
	assert_int_equal(s.data_len, 5);
	assert_memory_equal(s.data, "hello", 5);

	memset(&s, 0, sizeof(s));
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(iscsi_rx_feed(&rx, buf + i, 1, &g_ops, &s, NULL), 1);
	}
	assert_int_equal(s.headers, 1);
	assert_int_equal(s.pdus, 1);
	assert_memory_equal(s.data, "hello", 5);
	assert_int_equal(rx.state, ISCSI_RX_BHS);
}

static void test_two_pdus_in_one_buffer(void **state)
{
	uint8_t buf[512];
	size_t n = build(buf, ISCSI_OP_NOP_OUT, 0, NULL, false, false);
	struct iscsi_rx rx;
	struct sink s = { 0 };

	n += build(buf + n, ISCSI_OP_TEXT_REQ, 0, "a=b", false, false);
	iscsi_rx_init(&rx, 8192);
	assert_int_equal(iscsi_rx_feed(&rx, buf, n, &g_ops, &s, NULL), (long)n);
	assert_int_equal(s.pdus, 2);
	assert_int_equal(s.last_op, ISCSI_OP_TEXT_REQ);
}

static void test_ahs_and_digests(void **state)
{
	uint8_t buf[512];
	size_t n = build(buf, ISCSI_OP_SCSI_CMD, 2, "abcdef", true, true);
	struct iscsi_rx rx;
	struct sink s = { 0 };

	iscsi_rx_init(&rx, 8192);
	rx.header_digest = rx.data_digest = true;
	assert_int_equal(iscsi_rx_feed(&rx, buf, n, &g_ops, &s, NULL), (long)n);
	assert_int_equal(s.last_ahs, 8);
	assert_int_equal(s.pdus, 1);
	assert_false(s.digest_bad);

	/* Corrupt one data byte: the PDU is delivered with data_digest_bad. */
	buf[48 + 8 + 4 + 1] ^= 1;
	memset(&s, 0, sizeof(s));
	assert_int_equal(iscsi_rx_feed(&rx, buf, n, &g_ops, &s, NULL), (long)n);
	assert_true(s.digest_bad);

	/* Corrupt the BHS: the header digest fails and framing stops. */
	buf[20] ^= 1;
	iscsi_rx_init(&rx, 8192);
	rx.header_digest = rx.data_digest = true;
	assert_int_equal(iscsi_rx_feed(&rx, buf, n, &g_ops, &s, NULL), -EBADMSG);
}

static void test_data_len_limit(void **state)
{
	uint8_t buf[64] = { 0 };
	struct iscsi_rx rx;
	struct sink s = { 0 };

	put_be24(buf + ISCSI_BHS_DATA_LEN, 8193);
	iscsi_rx_init(&rx, 8192);
	assert_int_equal(iscsi_rx_feed(&rx, buf, 48, &g_ops, &s, NULL), -EMSGSIZE);
	assert_int_equal(s.headers, 0);

	put_be24(buf + ISCSI_BHS_DATA_LEN, 0xffffff);
	iscsi_rx_init(&rx, ISCSI_MRDSL_MAX);
	s.fail_header = -EPROTO;
	assert_int_equal(iscsi_rx_feed(&rx, buf, 48, &g_ops, &s, NULL), -EPROTO);
}

static void test_discard_and_direct(void **state)
{
	static uint8_t big[48 + 8192];
	struct iscsi_rx rx;
	struct sink s = { 0 };
	uint8_t *dst;
	size_t want;

	memset(big, 0, sizeof(big));
	put_be24(big + ISCSI_BHS_DATA_LEN, 8192);
	iscsi_rx_init(&rx, 16384);
	/* data_len > sink buffer: header() leaves rx->data NULL -> discarded */
	assert_int_equal(iscsi_rx_feed(&rx, big, 48 + 100, &g_ops, &s, NULL), 148);
	assert_int_equal(iscsi_rx_direct(&rx, &dst), 0);
	assert_int_equal(iscsi_rx_feed(&rx, big + 148, sizeof(big) - 148, &g_ops, &s, NULL),
			 (long)(sizeof(big) - 148));
	assert_int_equal(s.pdus, 1);

	/* A known destination can be filled in place. */
	memset(&s, 0, sizeof(s));
	put_be24(big + ISCSI_BHS_DATA_LEN, 1000);
	assert_int_equal(iscsi_rx_feed(&rx, big, 48, &g_ops, &s, NULL), 48);
	want = iscsi_rx_direct(&rx, &dst);
	assert_int_equal(want, 1000);
	assert_ptr_equal(dst, s.data);
	memset(dst, 0x5a, 600);
	assert_int_equal(iscsi_rx_direct_done(&rx, 600, &g_ops, &s), 0);
	want = iscsi_rx_direct(&rx, &dst);
	assert_int_equal(want, 400);
	memset(dst, 0x5a, 400);
	assert_int_equal(iscsi_rx_direct_done(&rx, 400, &g_ops, &s), 0);
	assert_int_equal(s.pdus, 1);
	assert_int_equal(s.data[999], 0x5a);
}

static void test_sn_arith(void **state)
{
	assert_true(iscsi_sn_lt(1, 2));
	assert_true(iscsi_sn_lt(0xffffffffu, 0));
	assert_false(iscsi_sn_lt(0, 0xffffffffu));
	assert_true(iscsi_sn_le(5, 5));
	assert_int_equal(ISCSI_PAD(5), 3);
	assert_int_equal(ISCSI_PAD(8), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc_vector),
		cmocka_unit_test(test_plain_pdu_one_shot_and_bytewise),
		cmocka_unit_test(test_two_pdus_in_one_buffer),
		cmocka_unit_test(test_ahs_and_digests),
		cmocka_unit_test(test_data_len_limit),
		cmocka_unit_test(test_discard_and_direct),
		cmocka_unit_test(test_sn_arith),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
