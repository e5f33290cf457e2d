/*
 * fuzz_s3_xml.c - both S3 XML parsers (error bodies, ListObjectsV2 pages)
 * on arbitrary bytes, which is what an S3 endpoint or a man in the middle of
 * plain HTTP can send. Invariants: no crash or leak, results NUL-terminated,
 * a truncated page always carries a token.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
	return 0;
}
