/*
 * s3_store.c - the `s3` store: the chunked store (chunk.c) on the S3 object
 * back end (s3.h). This file only turns the LUN URI into an s3_config:
 *
 *   s3://BUCKET/PREFIX?size=10G&chunk_size=4M&endpoint=http://127.0.0.1:7480
 *       &region=us-east-1&path_style=1&ca_file=/etc/ca.pem&max_inflight=32&sign_payload=0
 *
 * Credentials are never part of the URI: they come from the AWS default chain.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3tgt/core.h"
#include "s3tgt/store.h"

#include "chunk/chunk.h"
#include "chunk/objstore.h"
#include "s3.h"

static const char *const s3_options[] = {
    "chunk_size",   "max_inflight", "endpoint",	    "region",
    "path_style",   "ca_file",	    "timeout_ms",   "retry_deadline_ms",
    "lease_holder", "break_lease",  "sign_payload", "lease_renew_ms",
    NULL,
};

static int opt_ms(const struct store_params *p, const char *key, unsigned *out, char *err,
		  size_t errlen)
{
	const char *v = store_param_get(p, key);
	uint64_t x;

	if (!v) {
		return 0;
	}
	if (parse_u64(v, 1, 3600000, &x) != 0) {
		snprintf(err, errlen, "s3: %s '%s': must be 1..3600000 (milliseconds)", key, v);
		return -EINVAL;
	}
	*out = (unsigned)x;
	return 0;
}

static int opt_bool(const struct store_params *p, const char *key, bool *out, char *err,
		    size_t errlen)
{
	const char *v = store_param_get(p, key);

	if (!v) {
		return 0;
	}
	if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0) {
		snprintf(err, errlen, "s3: %s must be 0 or 1, got '%s'", key, v);
		return -EINVAL;
	}
	*out = v[0] == '1';
	return 0;
}

static int s3_open(struct store *st, const struct store_params *p, char *err, size_t errlen)
{
	struct s3_config cfg = {0};
	struct chunk_opts o;
	struct objstore *os;
	const char *path = p->path ? p->path : "";
	char *bucket = NULL;
	const char *slash;
	int ret;

	ret = chunk_opts_parse(p, &o, err, errlen);
	if (ret) {
		return ret;
	}
	/* "s3://b/p" arrives as path "//b/p"; accept "s3:b/p" too. */
	while (*path == '/') {
		path++;
	}
	slash = strchr(path, '/');
	bucket = slash ? strndup(path, (size_t)(slash - path)) : strdup(path);
	if (!bucket) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (!bucket[0]) {
		snprintf(err, errlen, "s3: a bucket is required (s3://BUCKET/PREFIX?size=...)");
		ret = -EINVAL;
		goto out;
	}
	cfg.bucket = bucket;
	cfg.prefix = slash ? slash + 1 : "";
	cfg.endpoint = store_param_get(p, "endpoint");
	cfg.region = store_param_get(p, "region");
	cfg.ca_file = store_param_get(p, "ca_file");
	cfg.max_inflight = o.max_inflight;
	ret = opt_bool(p, "path_style", &cfg.path_style, err, errlen);
	if (!ret) {
		ret = opt_bool(p, "sign_payload", &cfg.sign_payload, err, errlen);
	}
	if (!ret) {
		ret = opt_ms(p, "timeout_ms", &cfg.timeout_ms, err, errlen);
	}
	if (!ret) {
		ret = opt_ms(p, "retry_deadline_ms", &cfg.retry_deadline_ms, err, errlen);
	}
	if (ret) {
		goto out;
	}
	ret = s3_objstore_create(&cfg, st->reactor, &os, err, errlen);
	if (ret) {
		goto out;
	}
	ret = chunk_store_open(st, p, &o, os, err, errlen);
out:
	free(bucket);
	return ret;
}

const struct store_ops store_s3_ops = {
    .name = "s3",
    .options = s3_options,
    .open = s3_open,
    .submit = chunk_store_submit,
    .close = chunk_store_close,
    .quiesce = chunk_store_quiesce,
    .lba_status = chunk_store_lba_status,
    .resize = chunk_store_resize,
    .volume_id = chunk_store_volume_id,
    .resumed = chunk_store_resumed,
    .fenced = chunk_store_fenced,
    .metrics = chunk_store_metrics,
};
