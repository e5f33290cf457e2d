/*
 * util.c - CRC32C, number parsing and small byte helpers.
 */
#include <errno.h>
#include <isa-l/crc.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "s3tgt/core.h"

/*
 * isa-l's crc32_iscsi() neither pre- nor post-inverts; the standard CRC32C
 * (RFC 7143 13.1, RFC 3720 B.4) does both. Wrapping the raw update in ~ on
 * both sides makes crc32c() chainable through its return value.
 */
uint32_t crc32c(uint32_t seed, const void *buf, size_t len)
{
	unsigned char *p = (unsigned char *)(uintptr_t)buf;
	uint32_t crc = ~seed;

	while (len > 0) {
		int chunk = len > (size_t)INT_MAX ? INT_MAX : (int)len;
		crc = crc32_iscsi(p, chunk, crc);
		p += chunk;
		len -= (size_t)chunk;
	}
	return ~crc;
}

uint32_t iscsi_crc32c(const void *buf, size_t len)
{
	return crc32c(0, buf, len);
}

/* Leading digits of s as a u64; *end at the first non-digit. */
static int parse_digits(const char *s, uint64_t *out, const char **end)
{
	unsigned long long v;
	char *e;

	/* strtoull would accept leading blanks, a sign (and negate!) and "0x". */
	if (!s || *s < '0' || *s > '9') {
		return -EINVAL;
	}
	errno = 0;
	v = strtoull(s, &e, 10);
	if (errno == ERANGE) {
		return -ERANGE;
	}
	*out = v;
	*end = e;
	return 0;
}

int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *end;
	uint64_t v;
	int rc = parse_digits(s, &v, &end);

	if (rc) {
		return rc;
	}
	if (*end != '\0') {
		return -EINVAL;
	}
	if (v < min || v > max) {
		return -ERANGE;
	}
	*out = v;
	return 0;
}

int parse_size(const char *s, uint64_t *out)
{
	const char *end;
	unsigned shift = 0;
	uint64_t v;
	int rc = parse_digits(s, &v, &end);

	if (rc) {
		return rc;
	}
	switch (*end) {
	case '\0':
		break;
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	case 't':
	case 'T':
		shift = 40;
		break;
	default:
		return -EINVAL;
	}
	if (shift) {
		end++;
		if (*end != '\0') {
			return -EINVAL;
		}
		if (v > (UINT64_MAX >> shift)) {
			return -ERANGE;
		}
		v <<= shift;
	}
	*out = v;
	return 0;
}

int hex_digit(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

bool mem_is_zero(const void *p, size_t len)
{
	const uint8_t *b = p;

	/* Compare the buffer with itself shifted by one: libc's vectorised memcmp. */
	return len == 0 || (b[0] == 0 && memcmp(b, b + 1, len - 1) == 0);
}
