/*
 * test_s3_xml.c - S3 XML error bodies and ListObjectsV2 pages (fixtures in
 * s3_fixtures/, captured shapes from RGW and AWS), and the status/code ->
 * errno classification the retry logic relies on.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "s3/s3_xml.c"

/* Fixture text, read relative to this source file. */
static char *fixture(const char *name, size_t *len)
{
	char path[1024];
	const char *slash = strrchr(__FILE__, '/');
	int dl = slash ? (int)(slash - __FILE__) : 1;
	FILE *f;
	char *buf = malloc(65536);

	assert_non_null(buf);
	(void)snprintf(path, sizeof(path), "%.*s/s3_fixtures/%s", dl, slash ? __FILE__ : ".", name);
	f = fopen(path, "r");
	assert_non_null(f);
	*len = fread(buf, 1, 65535, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

static void test_error_rgw(void **state)
{
	struct s3_xml_error e;
	size_t len;
	char *b = fixture("error_rgw_nosuchbucket.xml", &len);

	(void)state;
	assert_int_equal(s3_xml_parse_error(b, len, &e), 0);
	assert_string_equal(e.code, "NoSuchBucket");
	assert_string_equal(e.message, "");
	assert_string_equal(e.request_id, "tx000001-rgw");
	assert_int_equal(s3_classify(404, e.code), -ENXIO);
	free(b);
}

static void test_error_aws(void **state)
{
	struct s3_xml_error e;
	size_t len;
	char *b = fixture("error_aws_slowdown.xml", &len);

	(void)state;
	assert_int_equal(s3_xml_parse_error(b, len, &e), 0);
	assert_string_equal(e.code, "SlowDown");
	assert_string_equal(e.message, "Please reduce your request rate.");
	assert_string_equal(e.request_id, "4442587FB7D0A2F9");
	assert_int_equal(s3_classify(503, e.code), -EAGAIN);
	free(b);
}

static void test_error_malformed(void **state)
{
	struct s3_xml_error e;
	const char *bad[] = { "", "<Error>", "<Error><Message>x</Message></Error>",
			      "<NotError><Code>x</Code></NotError>", "plain text" };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(s3_xml_parse_error(bad[i], strlen(bad[i]), &e), -EINVAL);
	}
	assert_int_equal(s3_xml_parse_error(NULL, 0, &e), -EINVAL);
}

struct seen {
	char keys[4][64];
	uint64_t sizes[4];
	int n;
};

static int on_key(void *arg, const char *key, uint64_t size)
{
	struct seen *s = arg;

	assert_true(s->n < 4);
	(void)snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", key);
	s->sizes[s->n++] = size;
	return 0;
}

static void test_list(void **state)
{
	struct seen s = { .n = 0 };
	char token[128];
	bool trunc;
	size_t len;
	char *b = fixture("list_truncated.xml", &len);

	(void)state;
	assert_int_equal(s3_xml_parse_list(b, len, on_key, &s, &trunc, token, sizeof(token)), 0);
	assert_true(trunc);
	assert_string_equal(token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
	assert_int_equal(s.n, 2);
	assert_string_equal(s.keys[0], "vol/chunks/0000000000000000");
	assert_int_equal(s.sizes[0], 4194304);
	assert_string_equal(s.keys[1], "vol/manifest");
	assert_int_equal(s.sizes[1], 512);
	/* The token must fit. */
	assert_int_equal(s3_xml_parse_list(b, len, on_key, &(struct seen){ .n = 0 }, &trunc, token,
					   8),
			 -EINVAL);
	free(b);

	b = fixture("list_empty.xml", &len);
	s.n = 0;
	assert_int_equal(s3_xml_parse_list(b, len, on_key, &s, &trunc, token, sizeof(token)), 0);
	assert_false(trunc);
	assert_string_equal(token, "");
	assert_int_equal(s.n, 0);
	free(b);
}

static void test_list_malformed(void **state)
{
	const char *bad[] = {
		/* truncated without a token would loop forever */
		"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
		"<Error><Code>AccessDenied</Code></Error>",
		"<ListBucketResult>",
	};
	char token[64];
	bool trunc;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct seen s = { .n = 0 };

		assert_int_equal(s3_xml_parse_list(bad[i], strlen(bad[i]), on_key, &s, &trunc,
						   token, sizeof(token)),
				 -EINVAL);
	}
}

static void test_classify(void **state)
{
	(void)state;
	assert_int_equal(s3_classify(200, ""), 0);
	assert_int_equal(s3_classify(206, ""), 0);
	assert_int_equal(s3_classify(204, ""), 0);
	assert_int_equal(s3_classify(403, "AccessDenied"), -EACCES);
	assert_int_equal(s3_classify(403, "InvalidAccessKeyId"), -EACCES);
	assert_int_equal(s3_classify(403, "SignatureDoesNotMatch"), -EACCES);
	assert_int_equal(s3_classify(403, ""), -EACCES);
	assert_int_equal(s3_classify(404, "NoSuchKey"), -ENOENT);
	assert_int_equal(s3_classify(404, "NoSuchBucket"), -ENXIO);
	assert_int_equal(s3_classify(404, ""), -ENOENT);
	assert_int_equal(s3_classify(412, "PreconditionFailed"), -EEXIST);
	assert_int_equal(s3_classify(412, ""), -EEXIST);
	assert_int_equal(s3_classify(503, "SlowDown"), -EAGAIN);
	assert_int_equal(s3_classify(400, "RequestTimeout"), -EAGAIN);
	assert_int_equal(s3_classify(400, "BadDigest"), -EAGAIN);
	assert_int_equal(s3_classify(400, "XAmzContentSHA256Mismatch"), -EAGAIN);
	assert_int_equal(s3_classify(500, ""), -EAGAIN);
	assert_int_equal(s3_classify(502, ""), -EAGAIN);
	assert_int_equal(s3_classify(504, ""), -EAGAIN);
	assert_int_equal(s3_classify(400, "InvalidArgument"), -EIO);
	assert_int_equal(s3_classify(416, "InvalidRange"), -EIO);
	assert_int_equal(s3_classify(301, "PermanentRedirect"), -EIO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_rgw),  cmocka_unit_test(test_error_aws),
		cmocka_unit_test(test_error_malformed), cmocka_unit_test(test_list),
		cmocka_unit_test(test_list_malformed), cmocka_unit_test(test_classify),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
