/*
 * s3_internal.h - pieces of the S3 back end shared between its files:
 * SigV4 signing (sigv4.c), the credential chain (creds.c), the XML response
 * parsers (s3_xml.c), the curl-multi client (s3_client.c) and the checks of
 * requests and configuration (s3_check.c).
 */
#ifndef S3TGT_S3_INTERNAL_H
#define S3TGT_S3_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "s3.h"

/* ---------------------------------------------------------------- sigv4 */

#define S3_SHA256_HEX_LEN 64
#define S3_AMZ_DATE_LEN 16 /* "20130524T000000Z" */
/* SHA-256 of the empty string: the payload hash of every body-less request. */
#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define S3_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
/* base64 of a big-endian CRC32C, as x-amz-checksum-crc32c carries it: 8 chars + NUL. */
#define S3_CRC32C_B64_LEN 8
/* base64 of an MD5 digest, as Content-MD5 carries it (RFC 1864). */
#define S3_MD5_B64_LEN 24

struct s3_kv {
	const char *k;
	const char *v;
};

struct s3_sign_req {
	const char *method;
	const char *path;	    /* raw (unencoded) absolute path, "/bucket/key" or "/key" */
	const struct s3_kv *query;  /* raw parameters, any order; v may be "" */
	size_t nquery;
	const struct s3_kv *hdrs;   /* lower-case names, each signed; any order */
	size_t nhdrs;
	const char *payload_hash;   /* hex SHA-256 of the body, or S3_UNSIGNED_PAYLOAD */
	const char *amz_date;	    /* ISO 8601 basic, as sent in x-amz-date */
	const char *region;
	const char *service;	    /* "s3" */
	const char *access_key;
	const char *secret_key;
};

/* x-amz-checksum-crc32c: base64 of the big-endian CRC32C (RFC 3720 polynomial) of buf. */
void s3_crc32c_b64(const void *buf, size_t len, char out[S3_CRC32C_B64_LEN + 1]);
/* Hex SHA-256 of buf into out[65]. Returns 0 or -EIO (OpenSSL failure). */
int s3_sha256_hex(const void *buf, size_t len, char out[S3_SHA256_HEX_LEN + 1]);
/* Content-MD5: base64 of the MD5 of buf. Returns 0 or -EIO (OpenSSL failure). */
int s3_md5_b64(const void *buf, size_t len, char out[S3_MD5_B64_LEN + 1]);

/*
 * RFC 3986 percent-encoding as SigV4 wants it: unreserved characters
 * (A-Z a-z 0-9 - . _ ~) kept, '/' kept when keep_slash, every other byte
 * %XX upper-case. Returns the length written or -ENAMETOOLONG.
 */
int s3_uri_encode(const char *in, bool keep_slash, char *out, size_t outlen);

/* Encoded, sorted "k=v&k2=v2" (the canonical query, also used in the URL). */
int s3_canonical_query(const struct s3_kv *q, size_t n, char *out, size_t outlen);

/* time -> "YYYYMMDDTHHMMSSZ" */
void s3_amz_date(time_t t, char out[S3_AMZ_DATE_LEN + 1]);

/*
 * The Authorization header value (without "Authorization: ") for sr.
 * creq/creqlen, when non-NULL, receive the canonical request (tests).
 * Returns 0, -ENAMETOOLONG (does not fit) or -EIO.
 */
int s3_sigv4_authorization(const struct s3_sign_req *sr, char *out, size_t outlen, char *creq,
			   size_t creqlen);

/* ---------------------------------------------------------------- creds */

struct s3_creds {
	char access_key[128];
	char secret_key[128];
	char token[4096];
	time_t expiration; /* 0 = static credentials that never expire */
	char source[48];   /* "environment", "profile default", "container", "imds" */
};

/* Refresh this long before Expiration (AWS SDKs use 5 minutes). */
#define S3_CREDS_REFRESH_SLACK_S 300

/*
 * Walk the AWS default chain: environment, shared credentials/config files
 * (AWS_PROFILE), container endpoint, EC2 IMDSv2 (skipped when
 * AWS_EC2_METADATA_DISABLED=true). Blocking (container/IMDS use 1 s
 * timeouts). Returns 0, or -ENOENT / -EACCES / -EIO with a message in err.
 */
int s3_creds_resolve(struct s3_creds *out, char *err, size_t errlen);
bool s3_creds_need_refresh(const struct s3_creds *c, time_t now);
/* explicit_bzero the secrets. */
void s3_creds_wipe(struct s3_creds *c);

/*
 * INI lookup (AWS shared files): value of `key` in section `[section]`.
 * Comments start with '#' or ';'; keys and values are trimmed. Returns 0,
 * -ENOENT (not there) or -ENAMETOOLONG.
 */
int s3_ini_get(const char *text, const char *section, const char *key, char *out, size_t outlen);

/*
 * Parse a container / IMDS credential document (JSON: AccessKeyId,
 * SecretAccessKey, Token, Expiration). Returns 0 or -EINVAL.
 */
int s3_creds_parse_json(const char *json, size_t len, struct s3_creds *out);
/* "2024-05-01T12:00:00Z" (fraction and offset allowed) -> time_t. 0 or -EINVAL. */
int s3_parse_iso8601(const char *s, time_t *out);

/* ------------------------------------------------------------------ xml */

struct s3_xml_error {
	char code[64];
	char message[256];
	char request_id[128];
};

/* Parse an S3 <Error> body. Returns 0 or -EINVAL (not an S3 error document). */
int s3_xml_parse_error(const char *body, size_t len, struct s3_xml_error *out);

typedef int (*s3_xml_key_fn)(void *arg, const char *key, uint64_t size);

/*
 * Parse a ListObjectsV2 result: fn(arg, Key, Size) for each <Contents>
 * (a non-zero return stops and is returned), *truncated from IsTruncated,
 * token from NextContinuationToken ("" when absent). Returns 0 or -EINVAL.
 */
int s3_xml_parse_list(const char *body, size_t len, s3_xml_key_fn fn, void *arg,
		      bool *truncated, char *token, size_t tokenlen);

/*
 * The DeleteObjects request body for keys[0..n) (relative; sent as
 * "prefix/key", or bare when prefix is ""), in quiet mode:
 * <Delete><Quiet>true</Quiet><Object><Key>k</Key></Object>...</Delete>,
 * keys XML-escaped. Like snprintf: returns the body's length (excluding the
 * NUL) and writes it, NUL-terminated and truncated to outlen, so a first call
 * with outlen 0 sizes the buffer. -EINVAL if a key holds a control character,
 * which XML 1.0 cannot carry, or the body would exceed INT_MAX bytes.
 */
int s3_xml_build_delete(const char *prefix, const char *const *keys, size_t n, char *out,
			size_t outlen);

typedef int (*s3_xml_delete_err_fn)(void *arg, const char *key, const char *code,
				    const char *message);

/*
 * Parse a DeleteObjects result (<DeleteResult>): fn(arg, Key, Code, Message)
 * for each <Error> (a non-zero return stops and is returned); <Deleted>
 * entries, which quiet mode omits, are skipped. Returns 0 or -EINVAL.
 */
int s3_xml_parse_delete(const char *body, size_t len, s3_xml_delete_err_fn fn, void *arg);

/*
 * Per-key results of a DeleteObjects result for the keys sent with
 * s3_xml_build_delete(prefix, keys, n): status[i] = 0, or key i's <Error>
 * mapped by s3_classify() (NoSuchKey counts as deleted). Returns 0, or
 * -EINVAL when the body is not a DeleteResult or names a key that was not
 * sent (which key failed is then unknown); status is then unspecified.
 */
int s3_xml_delete_status(const char *body, size_t len, const char *prefix,
			 const char *const *keys, size_t n, int *status);

/* ------------------------------------------------------------- errors */

/*
 * Map an S3 response to an errno: 0 for 2xx, -ENOENT, -ENXIO, -EACCES,
 * -EEXIST, -EAGAIN (retryable: SlowDown, 5xx, RequestTimeout), -EIO.
 * code may be "" when the body had no XML.
 */
int s3_classify(long http_status, const char *code);

/* --------------------------------------------------------------- client */

struct s3_client;
struct reactor;

/* See s3_objstore_create(); the client owns a thread and a curl multi handle. */
int s3_client_create(const struct s3_config *cfg, struct reactor *r, struct s3_client **out,
		     char *err, size_t errlen);
/* Quiesces first (requests still outstanding complete). destroy(NULL) is a no-op. */
void s3_client_destroy(struct s3_client *cl);
/* objstore quiesce contract (objstore.h). Reactor thread only. */
void s3_client_quiesce(struct s3_client *cl);
/* Async (objstore submit contract). req is borrowed until its callback. */
int s3_client_submit(struct s3_client *cl, struct obj_req *req);
/*
 * Blocking GET/PUT/DELETE, for open-time work; never call it on the client
 * thread. Sets req->status and returns it; on failure err says what to fix.
 */
int s3_client_run_sync(struct s3_client *cl, struct obj_req *req, char *err, size_t errlen);
/* Blocking, paged ListObjectsV2 of the relative prefix; fn runs on the caller. */
int s3_client_list(struct s3_client *cl, const char *prefix, obj_list_fn fn, void *arg,
		   char *err, size_t errlen);
void s3_client_stats(struct s3_client *cl, struct s3_stats *out);

/* ------------------------------------------------------------- s3_check */

/* 0 if req is well formed for its op (keys, lengths, header values), else -EINVAL. */
int s3_check_req(const struct obj_req *req);
/* Bucket name rules (3..63 characters of [a-zA-Z0-9._-]). */
bool s3_bucket_valid(const char *b);
/* The key prefix without leading and trailing '/' (new string; NULL: ""). NULL on ENOMEM. */
char *s3_prefix_dup(const char *p);
/* r if given, else AWS_REGION, AWS_DEFAULT_REGION, "us-east-1". Borrowed. */
const char *s3_default_region(const char *r);
/*
 * "scheme://host[:port][/]" -> *host (the bucket's virtual host unless
 * path_style) and *scheme_host (new strings). -EINVAL with a message in err
 * for anything else (a path, query or user info); -ENOMEM.
 */
int s3_endpoint_split(const char *ep, bool path_style, const char *bucket, char **host,
		      char **scheme_host, char *err, size_t errlen);

#endif
