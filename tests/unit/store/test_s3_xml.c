/*
 * test_s3_xml.c - S3 XML error bodies, ListObjectsV2 pages and DeleteObjects
 * results (fixtures in s3_fixtures/, captured shapes from RGW and AWS), the
 * DeleteObjects request body (escaping, sizing), and the status/code -> errno
 * classification the retry logic relies on.
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

static void test_delete_build(void **state)
{
	const char *keys[] = { "chunks/0000000000000001", "a&b<c>\"d'e" };
	const char *want = "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
			   "<Quiet>true</Quiet>"
			   "<Object><Key>vol/chunks/0000000000000001</Key></Object>"
			   "<Object><Key>vol/a&amp;b&lt;c&gt;&quot;d&apos;e</Key></Object>"
			   "</Delete>";
	char out[512], small[16];
	int n;

	(void)state;
	/* Sizing call, then the real one; like snprintf. */
	n = s3_xml_build_delete("vol", keys, 2, NULL, 0);
	assert_int_equal(n, strlen(want));
	assert_int_equal(s3_xml_build_delete("vol", keys, 2, out, sizeof(out)), n);
	assert_string_equal(out, want);
	/* Too small: truncated, still terminated, same length reported. */
	assert_int_equal(s3_xml_build_delete("vol", keys, 2, small, sizeof(small)), n);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_memory_equal(small, want, sizeof(small) - 1);
	/* No prefix: bare keys. */
	assert_true(s3_xml_build_delete("", keys, 1, out, sizeof(out)) > 0);
	assert_non_null(strstr(out, "<Key>chunks/0000000000000001</Key>"));
	/* Control characters cannot be carried by XML 1.0: refused, in a key or the prefix. */
	keys[1] = "a\rb";
	assert_int_equal(s3_xml_build_delete("vol", keys, 2, out, sizeof(out)), -EINVAL);
	keys[1] = "ok";
	assert_int_equal(s3_xml_build_delete("v\x01", keys, 2, out, sizeof(out)), -EINVAL);
}

/* The built body parses back (libxml2) to exactly the keys, prefixed. */
static void test_delete_build_roundtrip(void **state)
{
	const char *keys[] = { "chunks/0000000000000abc", "&amp;", "<![CDATA[x]]>", "ü/€ key" };
	char out[1024];
	xmlDocPtr doc;
	xmlNode *root;
	size_t i = 0;
	int n;

	(void)state;
	n = s3_xml_build_delete("p&q", keys, 4, out, sizeof(out));
	assert_true(n > 0 && (size_t)n < sizeof(out));
	doc = parse(out, (size_t)n);
	assert_non_null(doc);
	root = xmlDocGetRootElement(doc);
	assert_true(is_elem(root, "Delete"));
	for (xmlNode *o = root->children; o; o = o->next) {
		char want[64], got[64];

		if (is_elem(o, "Quiet")) {
			text_of(o, got, sizeof(got));
			assert_string_equal(got, "true");
			continue;
		}
		assert_true(is_elem(o, "Object"));
		assert_true(i < 4);
		text_of(o->children, got, sizeof(got));
		(void)snprintf(want, sizeof(want), "p&q/%s", keys[i++]);
		assert_string_equal(got, want);
	}
	assert_int_equal(i, 4);
	xmlFreeDoc(doc);
}

static void test_delete_result(void **state)
{
	const char *keys[] = { "chunks/0000000000000001", "chunks/0000000000000002",
			       "chunks/0000000000000005", "a&b<c>" };
	int st[4] = { 99, 99, 99, 99 };
	size_t len;
	char *b = fixture("delete_errors.xml", &len);

	(void)state;
	assert_int_equal(s3_xml_delete_status(b, len, "vol", keys, 4, st), 0);
	assert_int_equal(st[0], 0);	  /* not named: deleted */
	assert_int_equal(st[1], -EACCES); /* AccessDenied */
	assert_int_equal(st[2], 0);	  /* NoSuchKey: was already gone */
	assert_int_equal(st[3], -EAGAIN); /* InternalError: transient */
	/* Keys are matched with the prefix: another prefix names keys not sent. */
	assert_int_equal(s3_xml_delete_status(b, len, "vol2", keys, 4, st), -EINVAL);
	assert_int_equal(s3_xml_delete_status(b, len, "", keys, 4, st), -EINVAL);
	/* An error for a key that was not sent: which one failed is unknown. */
	assert_int_equal(s3_xml_delete_status(b, len, "vol", keys, 3, st), -EINVAL);
	free(b);

	/* A server ignoring Quiet lists what it deleted: all succeeded. */
	b = fixture("delete_verbose.xml", &len);
	memset(st, 0x55, sizeof(st));
	assert_int_equal(s3_xml_delete_status(b, len, "vol", keys, 2, st), 0);
	assert_int_equal(st[0], 0);
	assert_int_equal(st[1], 0);
	free(b);
	/* Quiet with nothing to report: RGW 16's answer, and a bare self-closing one. */
	b = fixture("delete_quiet_rgw.xml", &len);
	memset(st, 0x55, sizeof(st));
	assert_int_equal(s3_xml_delete_status(b, len, "vol", keys, 4, st), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(st[i], 0);
	}
	free(b);
	st[0] = 7;
	assert_int_equal(s3_xml_delete_status("<DeleteResult/>", 15, "", keys, 1, st), 0);
	assert_int_equal(st[0], 0);
}

struct del_seen {
	int n;
	char key[64], code[64], msg[64];
};

static int on_del_error(void *arg, const char *key, const char *code, const char *message)
{
	struct del_seen *d = arg;

	d->n++;
	(void)snprintf(d->key, sizeof(d->key), "%s", key);
	(void)snprintf(d->code, sizeof(d->code), "%s", code);
	(void)snprintf(d->msg, sizeof(d->msg), "%s", message);
	return d->n == 2 ? -ERANGE : 0;
}

static void test_delete_parse(void **state)
{
	struct del_seen d = { .n = 0 };
	size_t len;
	char *b = fixture("delete_errors.xml", &len);

	(void)state;
	/* fn sees the decoded full key, and its non-zero return stops the walk. */
	assert_int_equal(s3_xml_parse_delete(b, len, on_del_error, &d), -ERANGE);
	assert_int_equal(d.n, 2);
	assert_string_equal(d.key, "vol/chunks/0000000000000005");
	assert_string_equal(d.code, "NoSuchKey");
	assert_string_equal(d.msg, "The specified key does not exist.");
	free(b);
}

static void test_delete_malformed(void **state)
{
	const char *bad[] = {
		"",
		"plain text",
		"<DeleteResult>",
		"<DeleteResult><Error><Key>vol/k</Key><Code>AccessDenied</Code></Error>",
		/* an <Error> naming no key, or no code */
		"<DeleteResult><Error><Code>AccessDenied</Code></Error></DeleteResult>",
		"<DeleteResult><Error><Key>vol/k</Key></Error></DeleteResult>",
		"<DeleteResult><Error><Key></Key><Code>X</Code></Error></DeleteResult>",
		/* a whole-request error document is not a result */
		"<Error><Code>InternalError</Code></Error>",
		"<ListBucketResult></ListBucketResult>",
	};
	const char *keys[] = { "k" };
	struct del_seen d = { .n = 0 };
	int st[1];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(s3_xml_delete_status(bad[i], strlen(bad[i]), "vol", keys, 1, st),
				 -EINVAL);
	}
	assert_int_equal(s3_xml_parse_delete(NULL, 0, on_del_error, &d), -EINVAL);
	assert_int_equal(d.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_rgw),  cmocka_unit_test(test_error_aws),
		cmocka_unit_test(test_error_malformed), cmocka_unit_test(test_list),
		cmocka_unit_test(test_list_malformed), cmocka_unit_test(test_classify),
		cmocka_unit_test(test_delete_build), cmocka_unit_test(test_delete_build_roundtrip),
		cmocka_unit_test(test_delete_result), cmocka_unit_test(test_delete_parse),
		cmocka_unit_test(test_delete_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
