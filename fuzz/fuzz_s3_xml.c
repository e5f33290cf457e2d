/*
 * fuzz_s3_xml.c - the S3 XML parsers (error bodies, ListObjectsV2 pages,
 * DeleteObjects results) on arbitrary bytes, which is what an S3 endpoint or
 * a man in the middle of plain HTTP can send. Invariants: no crash or leak,
 * results NUL-terminated, a truncated page always carries a token, a
 * DeleteObjects <Error> always names a key and a code, and per-key results
 * are 0 or a negative errno.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "store/s3/s3_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_key(void *arg, const char *key, uint64_t sz)
{
	size_t *n = arg;

	(void)sz;
	*n += strlen(key) > 0;
	return 0;
}

static int check_delete_error(void *arg, const char *key, const char *code, const char *message)
{
	size_t *n = arg;

	if (!key[0] || !code[0] || strlen(code) >= 64 || strlen(message) >= 256) {
		__builtin_trap();
	}
	(*n)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The keys the seeds' results name, under prefix "vol". */
	static const char *const keys[] = {"chunks/0000000000000001", "chunks/0000000000000002",
					   "chunks/0000000000000005", "a&b<c>"};
	int st[4];
	struct s3_xml_error e;
	char token[1024];
	bool truncated;
	size_t n = 0;

	if (s3_xml_parse_error((const char *)data, size, &e) == 0) {
		if (!e.code[0] || strlen(e.message) >= sizeof(e.message)) {
			__builtin_trap();
		}
		(void)s3_classify(400, e.code);
	}
	if (s3_xml_parse_list((const char *)data, size, count_key, &n, &truncated, token,
			      sizeof(token)) == 0) {
		if (truncated && !token[0]) {
			__builtin_trap();
		}
	}
	(void)s3_xml_parse_delete((const char *)data, size, check_delete_error, &n);
	if (s3_xml_delete_status((const char *)data, size, "vol", keys, 4, st) == 0) {
		for (int i = 0; i < 4; i++) {
			if (st[i] > 0) {
				__builtin_trap();
			}
		}
	}
	return 0;
}
