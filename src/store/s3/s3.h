/*
 * s3.h - the S3 object back end (private to src/store). It implements
 * struct objstore_ops (src/store/chunk/objstore.h) with a libcurl-multi
 * client running on its own thread; completions are posted back to the
 * reactor given at creation.
 */
#ifndef S3TGT_S3_H
#define S3TGT_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../chunk/objstore.h"

struct reactor;

#define S3_DEFAULT_MAX_INFLIGHT 32
#define S3_DEFAULT_TIMEOUT_MS 30000
#define S3_DEFAULT_RETRY_DEADLINE_MS 120000

struct s3_config {
	const char *bucket;   /* required */
	const char *prefix;   /* volume key prefix; leading/trailing '/' ignored; NULL or "" = none */
	/*
	 * "http://127.0.0.1:7480" or "https://host[:port]". NULL = AWS:
	 * https://BUCKET.s3.REGION.amazonaws.com (virtual-hosted).
	 */
	const char *endpoint;
	const char *region;   /* NULL = $AWS_REGION, $AWS_DEFAULT_REGION, else "us-east-1" */
	bool path_style;      /* http://endpoint/BUCKET/KEY instead of BUCKET.endpoint */
	/*
	 * true: x-amz-content-sha256 is the SHA-256 of each PUT body. false
	 * (default): UNSIGNED-PAYLOAD plus a signed x-amz-checksum-crc32c header,
	 * as the AWS SDKs do since 2025; see docs/OBJECT-FORMAT.md.
	 */
	bool sign_payload;
	const char *ca_file;  /* NULL = system CA store; verification is always on */
	unsigned max_inflight;        /* 0 = S3_DEFAULT_MAX_INFLIGHT */
	unsigned timeout_ms;          /* per attempt; 0 = S3_DEFAULT_TIMEOUT_MS */
	unsigned retry_deadline_ms;   /* total per request; 0 = S3_DEFAULT_RETRY_DEADLINE_MS */
	unsigned list_max_keys;       /* ListObjectsV2 page size; 0 = 1000 (tests use small pages) */
	/*
	 * Explicit credentials (tests, config files). NULL access_key = the AWS
	 * default chain (env, shared files, container, IMDSv2). Borrowed; copied.
	 */
	const char *access_key;
	const char *secret_key;
	const char *session_token;
};

/*
 * Create an S3 object store. All strings in cfg are borrowed (copied). The
 * reactor r is borrowed and must outlive the store; every submit() callback
 * runs on it (NULL: synchronous use only, submit() fails with -EINVAL). Resolves credentials (may block briefly at creation) but does
 * not contact the bucket. Returns 0 and *out, or -errno with a message in err
 * (never containing a secret).
 */
int s3_objstore_create(const struct s3_config *cfg, struct reactor *r, struct objstore **out,
		       char *err, size_t errlen);

/* Counters for metrics; a snapshot copied under the client's lock. */
enum s3_req_type { S3_REQ_GET, S3_REQ_PUT, S3_REQ_DELETE, S3_REQ_LIST, S3_REQ_DELETE_MULTI,
		   S3_REQ_TYPES };
enum s3_status_class { S3_ST_2XX, S3_ST_3XX, S3_ST_4XX, S3_ST_5XX, S3_ST_NET, S3_ST_CLASSES };

struct s3_stats {
	uint64_t requests[S3_REQ_TYPES][S3_ST_CLASSES]; /* every attempt, by outcome */
	uint64_t retries;
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t inflight;
};

/* os must have been created by s3_objstore_create(). */
void s3_objstore_stats(struct objstore *os, struct s3_stats *out);

#endif
