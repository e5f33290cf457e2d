/*
 * test_util.c - CRC32C vectors (RFC 3720 B.4), size and number parsing.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "s3tgt/core.h"

static void test_crc32c_vectors(void **state)
{
	uint8_t buf[32];

	assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(iscsi_crc32c("123456789", 9), 0xE3069283u);

	/* RFC 3720 B.4 */
	memset(buf, 0, sizeof(buf));
	assert_int_equal(iscsi_crc32c(buf, sizeof(buf)), 0x8A9136AAu);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(iscsi_crc32c(buf, sizeof(buf)), 0x62A8AB43u);
	for (int i = 0; i < 32; i++) {
		buf[i] = (uint8_t)i;
	}
	assert_int_equal(iscsi_crc32c(buf, sizeof(buf)), 0x46DD794Eu);
	for (int i = 0; i < 32; i++) {
		buf[i] = (uint8_t)(31 - i);
	}
	assert_int_equal(iscsi_crc32c(buf, sizeof(buf)), 0x113FDB5Cu);

	assert_int_equal(crc32c(0, NULL, 0), 0);
}

static void test_crc32c_chaining(void **state)
{
	const char *s = "The quick brown fox jumps over the lazy dog";
	size_t n = strlen(s);
	uint32_t whole = crc32c(0, s, n);

	for (size_t split = 0; split <= n; split++) {
		assert_int_equal(crc32c(crc32c(0, s, split), s + split, n - split), whole);
	}
}

static void test_crc32c_wire_order(void **state)
{
	uint8_t zeros[32] = {0};
	uint32_t c = iscsi_crc32c(zeros, sizeof(zeros));
	/* RFC 3720 B.4: the digest goes on the wire least significant byte first. */
	uint8_t wire[4] = {(uint8_t)c, (uint8_t)(c >> 8), (uint8_t)(c >> 16), (uint8_t)(c >> 24)};
	const uint8_t expect[4] = {0xaa, 0x36, 0x91, 0x8a};

	assert_memory_equal(wire, expect, 4);
}

static void test_parse_size(void **state)
{
	uint64_t v;

	assert_int_equal(parse_size("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_size("512", &v), 0);
	assert_int_equal(v, 512);
	assert_int_equal(parse_size("4K", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(parse_size("1k", &v), 0);
	assert_int_equal(v, 1024);
	assert_int_equal(parse_size("10M", &v), 0);
	assert_int_equal(v, 10ull << 20);
	assert_int_equal(parse_size("1G", &v), 0);
	assert_int_equal(v, 1ull << 30);
	assert_int_equal(parse_size("2T", &v), 0);
	assert_int_equal(v, 2ull << 40);
	assert_int_equal(parse_size("16777215T", &v), 0);
	assert_int_equal(v, 16777215ull << 40);
	assert_int_equal(parse_size("18446744073709551615", &v), 0);
	assert_int_equal(v, UINT64_MAX);

	assert_int_equal(parse_size("16777216T", &v), -ERANGE);
	assert_int_equal(parse_size("18446744073709551616", &v), -ERANGE);
	assert_int_equal(parse_size("99999999999999999999999", &v), -ERANGE);
	assert_int_equal(parse_size("", &v), -EINVAL);
	assert_int_equal(parse_size("G", &v), -EINVAL);
	assert_int_equal(parse_size("1GB", &v), -EINVAL);
	assert_int_equal(parse_size("1X", &v), -EINVAL);
	assert_int_equal(parse_size("-1", &v), -EINVAL);
	assert_int_equal(parse_size("+1", &v), -EINVAL);
	assert_int_equal(parse_size(" 1", &v), -EINVAL);
	assert_int_equal(parse_size("1 ", &v), -EINVAL);
	assert_int_equal(parse_size("0x10", &v), -EINVAL);
	assert_int_equal(parse_size("1.5G", &v), -EINVAL);
	assert_int_equal(parse_size(NULL, &v), -EINVAL);
}

static void test_parse_u64(void **state)
{
	uint64_t v;

	assert_int_equal(parse_u64("42", 0, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(parse_u64("0", 0, 0, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_u64("101", 0, 100, &v), -ERANGE);
	assert_int_equal(parse_u64("4", 5, 100, &v), -ERANGE);
	assert_int_equal(parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, UINT64_MAX);
	assert_int_equal(parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
	assert_int_equal(parse_u64("-1", 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(parse_u64("12a", 0, 100, &v), -EINVAL);
	assert_int_equal(parse_u64("", 0, 100, &v), -EINVAL);
	assert_int_equal(parse_u64("1K", 0, 10000, &v), -EINVAL);
}

static void test_be_accessors(void **state)
{
	uint8_t b[8];

	put_be64(b, 0x0102030405060708ull);
	assert_int_equal(b[0], 1);
	assert_int_equal(b[7], 8);
	assert_int_equal(get_be64(b), 0x0102030405060708ull);
	put_be24(b, 0xabcdef);
	assert_int_equal(get_be24(b), 0xabcdef);
	put_be16(b, 0xbeef);
	assert_int_equal(get_be16(b), 0xbeef);
	put_be32(b, 0xdeadbeef);
	assert_int_equal(get_be32(b), 0xdeadbeef);
}

static void test_hex_digit(void **state)
{
	(void)state;
	assert_int_equal(hex_digit('0'), 0);
	assert_int_equal(hex_digit('9'), 9);
	assert_int_equal(hex_digit('a'), 10);
	assert_int_equal(hex_digit('F'), 15);
	assert_int_equal(hex_digit('g'), -1);
	assert_int_equal(hex_digit('/'), -1);
	assert_int_equal(hex_digit('\0'), -1);
}

static void test_mem_is_zero(void **state)
{
	uint8_t b[4096] = {0};

	(void)state;
	assert_true(mem_is_zero(b, 0));
	assert_true(mem_is_zero(b, 1));
	assert_true(mem_is_zero(b, sizeof(b)));
	b[sizeof(b) - 1] = 1;
	assert_false(mem_is_zero(b, sizeof(b)));
	assert_true(mem_is_zero(b, sizeof(b) - 1));
	b[0] = 1;
	assert_false(mem_is_zero(b, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crc32c_vectors),    cmocka_unit_test(test_crc32c_chaining),
	    cmocka_unit_test(test_crc32c_wire_order), cmocka_unit_test(test_parse_size),
	    cmocka_unit_test(test_parse_u64),	      cmocka_unit_test(test_be_accessors),
	    cmocka_unit_test(test_hex_digit),	      cmocka_unit_test(test_mem_is_zero),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
