/*
 * test_sigv4.c - SigV4 against the worked examples of AWS's "Signature
 * Calculations for the Authorization Header: Transferring Payload in a Single
 * Chunk" (S3 API reference): GET Object with Range, PUT Object, GET Bucket
 * Lifecycle, GET Bucket (List Objects). The expected signatures are the ones
 * printed in that document. Plus the canonical request of a DeleteObjects
 * POST and Content-MD5 against the RFC 1321 test suite.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "s3/sigv4.c"

#define EX_KEY "AKIAIOSFODNN7EXAMPLE"
#define EX_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define EX_DATE "20130524T000000Z"
#define EX_HOST "examplebucket.s3.amazonaws.com"
#define EX_CRED "AWS4-HMAC-SHA256 Credential=" EX_KEY "/20130524/us-east-1/s3/aws4_request,"

static void sign(const char *method, const char *path, const struct s3_kv *q, size_t nq,
		 const struct s3_kv *h, size_t nh, const char *payload, char *auth, size_t authlen,
		 char *creq, size_t creqlen)
{
	struct s3_sign_req sr = {
		.method = method,
		.path = path,
		.query = q,
		.nquery = nq,
		.hdrs = h,
		.nhdrs = nh,
		.payload_hash = payload,
		.amz_date = EX_DATE,
		.region = "us-east-1",
		.service = "s3",
		.access_key = EX_KEY,
		.secret_key = EX_SECRET,
	};

	assert_int_equal(s3_sigv4_authorization(&sr, auth, authlen, creq, creqlen), 0);
}

static void test_get_object_range(void **state)
{
	/* Given in a different order than the canonical one on purpose. */
	const struct s3_kv h[] = {
		{ "x-amz-date", EX_DATE },
		{ "range", "bytes=0-9" },
		{ "host", EX_HOST },
		{ "x-amz-content-sha256", S3_EMPTY_SHA256 },
	};
	char auth[512], creq[1024];

	(void)state;
	sign("GET", "/test.txt", NULL, 0, h, 4, S3_EMPTY_SHA256, auth, sizeof(auth), creq,
	     sizeof(creq));
	assert_string_equal(creq, "GET\n/test.txt\n\nhost:" EX_HOST "\nrange:bytes=0-9\n"
				  "x-amz-content-sha256:" S3_EMPTY_SHA256 "\n"
				  "x-amz-date:" EX_DATE "\n\n"
				  "host;range;x-amz-content-sha256;x-amz-date\n" S3_EMPTY_SHA256);
	assert_string_equal(auth, EX_CRED "SignedHeaders=host;range;x-amz-content-sha256;"
					  "x-amz-date,Signature="
					  "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

static void test_put_object(void **state)
{
	const char body[] = "Welcome to Amazon S3.";
	char hash[65], auth[512], creq[1024];
	struct s3_kv h[] = {
		{ "host", EX_HOST },
		{ "date", "Fri, 24 May 2013 00:00:00 GMT" },
		{ "x-amz-date", EX_DATE },
		{ "x-amz-storage-class", "REDUCED_REDUNDANCY" },
		{ "x-amz-content-sha256", hash },
	};

	(void)state;
	assert_int_equal(s3_sha256_hex(body, strlen(body), hash), 0);
	assert_string_equal(hash,
			    "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
	sign("PUT", "/test$file.text", NULL, 0, h, 5, hash, auth, sizeof(auth), creq,
	     sizeof(creq));
	assert_non_null(strstr(creq, "PUT\n/test%24file.text\n\n"));
	assert_string_equal(auth, EX_CRED "SignedHeaders=date;host;x-amz-content-sha256;"
					  "x-amz-date;x-amz-storage-class,Signature="
					  "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

static void test_get_bucket_lifecycle(void **state)
{
	const struct s3_kv q[] = { { "lifecycle", "" } };
	const struct s3_kv h[] = {
		{ "host", EX_HOST },
		{ "x-amz-date", EX_DATE },
		{ "x-amz-content-sha256", S3_EMPTY_SHA256 },
	};
	char auth[512], creq[1024];

	(void)state;
	sign("GET", "/", q, 1, h, 3, S3_EMPTY_SHA256, auth, sizeof(auth), creq, sizeof(creq));
	assert_non_null(strstr(creq, "GET\n/\nlifecycle=\n"));
	assert_string_equal(auth, EX_CRED "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
					  "Signature="
					  "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

static void test_list_objects(void **state)
{
	/* Unsorted on input: the canonical query must sort them. */
	const struct s3_kv q[] = { { "prefix", "J" }, { "max-keys", "2" } };
	const struct s3_kv h[] = {
		{ "host", EX_HOST },
		{ "x-amz-date", EX_DATE },
		{ "x-amz-content-sha256", S3_EMPTY_SHA256 },
	};
	char auth[512], creq[1024];

	(void)state;
	sign("GET", "/", q, 2, h, 3, S3_EMPTY_SHA256, auth, sizeof(auth), creq, sizeof(creq));
	assert_non_null(strstr(creq, "GET\n/\nmax-keys=2&prefix=J\n"));
	assert_string_equal(auth, EX_CRED "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
					  "Signature="
					  "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

static void test_uri_encode(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(s3_uri_encode("a b/c~d+e=f&%é", true, out, sizeof(out)), 29);
	assert_string_equal(out, "a%20b/c~d%2Be%3Df%26%25%C3%A9");
	assert_true(s3_uri_encode("a/b", false, out, sizeof(out)) > 0);
	assert_string_equal(out, "a%2Fb");
	assert_int_equal(s3_uri_encode("abcdef", true, out, 6), -ENAMETOOLONG);
	assert_int_equal(s3_uri_encode("abcde", true, out, 6), 5);
}

static void test_canonical_query(void **state)
{
	const struct s3_kv q[] = {
		{ "prefix", "vol/chunks/" },
		{ "list-type", "2" },
		{ "continuation-token", "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=" },
	};
	char out[256];

	(void)state;
	assert_int_equal(s3_canonical_query(q, 3, out, sizeof(out)), 0);
	assert_string_equal(out, "continuation-token=1ueGcxLPRx1Tr%2FXYExHnhbYLgveDs2J%2Fwm36Hy4v"
				 "bOwM%3D&list-type=2&prefix=vol%2Fchunks%2F");
	assert_int_equal(s3_canonical_query(q, 3, out, 20), -ENAMETOOLONG);
}

static void test_amz_date(void **state)
{
	char d[S3_AMZ_DATE_LEN + 1];

	(void)state;
	s3_amz_date(1369353600, d); /* 2013-05-24 00:00:00 UTC */
	assert_string_equal(d, EX_DATE);
}

/* x-amz-checksum-crc32c values: the CRC-32C check values, big-endian, base64. */
static void test_checksum_crc32c(void **state)
{
	static const char fox[] = "The quick brown fox jumps over the lazy dog";
	char b64[S3_CRC32C_B64_LEN + 1];

	(void)state;
	s3_crc32c_b64("123456789", 9, b64); /* 0xE3069283 */
	assert_string_equal(b64, "4waSgw==");
	s3_crc32c_b64(fox, sizeof(fox) - 1, b64); /* 0x22620404 */
	assert_string_equal(b64, "ImIEBA==");
	s3_crc32c_b64("", 0, b64);
	assert_string_equal(b64, "AAAAAA==");
}

/* POST /bucket?delete signs its empty-valued parameter as "delete=". */
static void test_delete_objects(void **state)
{
	const struct s3_kv q[] = { { "delete", "" } };
	const struct s3_kv h[] = {
		{ "host", "127.0.0.1:7480" },
		{ "x-amz-date", EX_DATE },
		{ "content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==" },
		{ "x-amz-content-sha256", S3_EMPTY_SHA256 },
	};
	char auth[512], creq[1024];

	(void)state;
	sign("POST", "/examplebucket", q, 1, h, 4, S3_EMPTY_SHA256, auth, sizeof(auth), creq,
	     sizeof(creq));
	assert_string_equal(creq, "POST\n/examplebucket\ndelete=\n"
				  "content-md5:1B2M2Y8AsgTpgAmY7PhCfg==\nhost:127.0.0.1:7480\n"
				  "x-amz-content-sha256:" S3_EMPTY_SHA256 "\n"
				  "x-amz-date:" EX_DATE "\n\n"
				  "content-md5;host;x-amz-content-sha256;x-amz-date\n"
				  S3_EMPTY_SHA256);
}

/* Content-MD5: base64 of the RFC 1321 test-suite digests. */
static void test_content_md5(void **state)
{
	static const char fox[] = "The quick brown fox jumps over the lazy dog";
	char b64[S3_MD5_B64_LEN + 1];

	(void)state;
	assert_int_equal(s3_md5_b64("", 0, b64), 0); /* d41d8cd98f00b204e9800998ecf8427e */
	assert_string_equal(b64, "1B2M2Y8AsgTpgAmY7PhCfg==");
	assert_int_equal(s3_md5_b64("abc", 3, b64), 0); /* 900150983cd24fb0d6963f7d28e17f72 */
	assert_string_equal(b64, "kAFQmDzST7DWlj99KOF/cg==");
	assert_int_equal(s3_md5_b64(fox, sizeof(fox) - 1, b64), 0);
	assert_string_equal(b64, "nhB9nTcrtoJr2B01QqQZ1g==");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_object_range),    cmocka_unit_test(test_put_object),
		cmocka_unit_test(test_get_bucket_lifecycle), cmocka_unit_test(test_list_objects),
		cmocka_unit_test(test_uri_encode),	    cmocka_unit_test(test_canonical_query),
		cmocka_unit_test(test_amz_date),	    cmocka_unit_test(test_checksum_crc32c),
		cmocka_unit_test(test_delete_objects),	    cmocka_unit_test(test_content_md5),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
