/*
 * s3_check.c - what the S3 client accepts before it sends anything: the
 * fields of an object request (keys, and header values that must not smuggle
 * CR/LF into the request), and its configuration (bucket names, the endpoint
 * URL, the region and prefix defaults). Apart from s3_client.c because none
 * of it touches curl or the client thread: these are the rules a request
 * and a configuration must pass, checked once, in one place.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "s3_internal.h"

static bool is_valid_key(const char *key)
{
	size_t n = strnlen(key, 256);

	return n > 0 && n < 256;
}

static bool is_header_value(const char *m, size_t max)
{
	size_t n = strnlen(m, max);

	if (n >= max) {
		return false;
	}
	/* An HTTP header value: printable ASCII only (no CR/LF injection). */
	for (size_t i = 0; i < n; i++) {
		if (m[i] < 0x20 || m[i] > 0x7e) {
			return false;
		}
	}
	return true;
}

static int check_multi(const struct obj_req *req)
{
	if (!req->keys || !req->key_status || req->nkeys == 0 ||
	    req->nkeys > OBJ_DELETE_MULTI_MAX) {
		return -EINVAL;
	}
	for (unsigned i = 0; i < req->nkeys; i++) {
		if (!req->keys[i] || !is_valid_key(req->keys[i])) {
			return -EINVAL;
		}
	}
	return 0;
}

int s3_check_req(const struct obj_req *req)
{
	if (req->op != OBJ_DELETE_MULTI && !is_valid_key(req->key)) {
		return -EINVAL;
	}
	switch (req->op) {
	case OBJ_GET:
		if ((req->len && !req->buf) || req->range_len > req->len) {
			return -EINVAL;
		}
		return 0;
	case OBJ_PUT:
		if ((req->len && !req->buf) || !is_header_value(req->meta, OBJ_META_MAX) ||
		    !is_header_value(req->if_match, OBJ_ETAG_MAX) ||
		    (req->if_match[0] && req->if_none_match)) {
			return -EINVAL;
		}
		return 0;
	case OBJ_DELETE:
		return 0;
	case OBJ_DELETE_MULTI:
		return check_multi(req);
	}
	return -EINVAL;
}

char *s3_prefix_dup(const char *p)
{
	size_t n;
	char *out;

	if (!p) {
		p = "";
	}
	while (*p == '/') {
		p++;
	}
	n = strlen(p);
	while (n && p[n - 1] == '/') {
		n--;
	}
	out = malloc(n + 1);
	if (out) {
		memcpy(out, p, n);
		out[n] = '\0';
	}
	return out;
}

static char *dup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *dup_printf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

const char *s3_default_region(const char *r)
{
	if (r && *r) {
		return r;
	}
	r = getenv("AWS_REGION");
	if (r && *r) {
		return r;
	}
	r = getenv("AWS_DEFAULT_REGION");
	return (r && *r) ? r : "us-east-1";
}

/* Split "scheme://host[:port][/]" ; no path, query or user info. */
int s3_endpoint_split(const char *ep, bool path_style, const char *bucket, char **host,
		      char **scheme_host, char *err, size_t errlen)
{
	const char *hs = strstr(ep, "://");
	size_t schemelen, hostlen;
	char scheme[8];

	if (!hs) {
		goto bad;
	}
	schemelen = (size_t)(hs - ep);
	if (schemelen >= sizeof(scheme)) {
		goto bad;
	}
	memcpy(scheme, ep, schemelen);
	scheme[schemelen] = '\0';
	if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
		goto bad;
	}
	hs += 3;
	hostlen = strcspn(hs, "/?#@");
	if (hostlen == 0 || (hs[hostlen] && strcmp(hs + hostlen, "/") != 0)) {
		goto bad;
	}
	if (path_style) {
		*host = strndup(hs, hostlen);
	} else {
		*host = dup_printf("%s.%.*s", bucket, (int)hostlen, hs);
	}
	if (!*host) {
		return -ENOMEM;
	}
	*scheme_host = dup_printf("%s://%s", scheme, *host);
	return *scheme_host ? 0 : -ENOMEM;
bad:
	(void)snprintf(err, errlen,
		       "S3 endpoint '%s': expected http://HOST[:PORT] or https://HOST[:PORT]", ep);
	return -EINVAL;
}

bool s3_bucket_valid(const char *b)
{
	size_t n = b ? strlen(b) : 0;

	if (n < 3 || n > 63) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		char c = b[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		      c == '_' || (c >= 'A' && c <= 'Z'))) {
			return false;
		}
	}
	return true;
}
