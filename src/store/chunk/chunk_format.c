/*
 * chunk_format.c - what a chunk object is called and how its checksums are
 * written and read back (docs/OBJECT-FORMAT.md): the key of chunk N, and the
 * metadata that carries one CRC32C per segment, built at every PUT and
 * checked on every GET. Kept apart from chunk.c's request machinery because
 * it is the on-object format: the tools that read a volume without a daemon
 * need it, and a format change starts here.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "s3tgt/core.h"

#include "chunk.h"

#define META_PREFIX "v=1 seg="

void chunk_key(char *buf, size_t len, uint64_t idx)
{
	snprintf(buf, len, CHUNK_KEY_PREFIX "%016" PRIx64, idx);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	return -1;
}

int chunk_key_parse(const char *key, uint64_t *idx)
{
	const char *s = strrchr(key, '/');
	uint64_t v = 0;
	size_t dlen = sizeof(CHUNK_KEY_PREFIX) - 2; /* "chunks" */

	if (!s || (size_t)(s - key) < dlen || memcmp(s - dlen, CHUNK_KEY_PREFIX, dlen) != 0) {
		return -EINVAL;
	}
	if (s - dlen != key && s[-(ptrdiff_t)dlen - 1] != '/') {
		return -EINVAL;
	}
	s++;
	if (strlen(s) != 16) {
		return -EINVAL;
	}
	for (int i = 0; i < 16; i++) {
		int h = hexval(s[i]);
		if (h < 0) {
			return -EINVAL;
		}
		v = v << 4 | (uint64_t)h;
	}
	*idx = v;
	return 0;
}

uint32_t chunk_seg_size(uint32_t chunk_size)
{
	uint32_t s = chunk_size / CHUNK_SEGS_MAX;

	return s < CHUNK_SEG_MIN ? CHUNK_SEG_MIN : s;
}

int chunk_meta_build(char *meta, size_t metalen, const uint8_t *data, uint32_t chunk_size)
{
	uint32_t seg = chunk_seg_size(chunk_size);
	int n = snprintf(meta, metalen, META_PREFIX "%" PRIu32 " crc32c=", seg);
	size_t pos;

	if (n < 0 || (size_t)n >= metalen) {
		return -ENOSPC;
	}
	pos = (size_t)n;
	for (uint32_t off = 0; off < chunk_size; off += seg) {
		n = snprintf(meta + pos, metalen - pos, "%08" PRIx32, crc32c(0, data + off, seg));
		if (n != 8) {
			return -ENOSPC;
		}
		pos += 8;
	}
	return 0;
}

int chunk_meta_verify(const char *meta, const uint8_t *data, uint32_t chunk_size, uint32_t off,
		      uint32_t len, unsigned *bad_seg)
{
	uint32_t seg = chunk_seg_size(chunk_size);
	char want[64];
	const char *crcs;
	int n;

	n = snprintf(want, sizeof(want), META_PREFIX "%" PRIu32 " crc32c=", seg);
	if (n < 0 || (size_t)n >= sizeof(want) || strncmp(meta, want, (size_t)n) != 0) {
		return -EBADMSG;
	}
	crcs = meta + n;
	if (strlen(crcs) != (size_t)(chunk_size / seg) * 8 || off % seg || len % seg ||
	    off + len > chunk_size) {
		return -EBADMSG;
	}
	for (uint32_t o = off; o < off + len; o += seg) {
		const char *h = crcs + (o / seg) * 8;
		uint32_t expect = 0;

		for (int i = 0; i < 8; i++) {
			int v = hexval(h[i]);
			if (v < 0) {
				return -EBADMSG;
			}
			expect = expect << 4 | (uint32_t)v;
		}
		if (crc32c(0, data + (o - off), seg) != expect) {
			*bad_seg = o / seg;
			return -EILSEQ;
		}
	}
	return 0;
}
