/*
 * sigv4.c - AWS Signature Version 4 for S3 (header-based, single-chunk
 * payload), with OpenSSL 3 EVP SHA-256 and HMAC.
 *
 *   canonical request = METHOD \n URI \n QUERY \n (name:value\n)* \n SIGNED \n PAYLOADHASH
 *   string to sign    = AWS4-HMAC-SHA256 \n DATE \n SCOPE \n hex(sha256(canonical request))
 *   signing key       = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, yyyymmdd), region), service),
 *                            "aws4_request")
 *
 * S3 differs from other services in two ways that matter here: the path is
 * encoded once (not twice) and '/' stays literal. The signing key is derived
 * per call and wiped: it is cheap next to the body hash.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "s3tgt/core.h"

#include "s3_internal.h"

#define SIGV4_MAX_HDRS 16

void s3_crc32c_b64(const void *buf, size_t len, char out[S3_CRC32C_B64_LEN + 1])
{
	uint32_t crc = crc32c(0, buf, len);
	unsigned char be[4] = { (unsigned char)(crc >> 24), (unsigned char)(crc >> 16),
				(unsigned char)(crc >> 8), (unsigned char)crc };

	EVP_EncodeBlock((unsigned char *)out, be, sizeof(be));
}

int s3_sha256_hex(const void *buf, size_t len, char out[S3_SHA256_HEX_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
		return -EIO;
	}
	for (unsigned i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
	return 0;
}

int s3_md5_b64(const void *buf, size_t len, char out[S3_MD5_B64_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(buf, len, md, &mdlen, EVP_md5(), NULL) != 1 || mdlen != 16) {
		return -EIO;
	}
	EVP_EncodeBlock((unsigned char *)out, md, 16);
	return 0;
}

static bool is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

int s3_uri_encode(const char *in, bool keep_slash, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		if (is_unreserved(*p) || (keep_slash && *p == '/')) {
			if (o + 1 >= outlen) {
				return -ENAMETOOLONG;
			}
			out[o++] = (char)*p;
		} else {
			if (o + 3 >= outlen) {
				return -ENAMETOOLONG;
			}
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	if (o >= outlen) {
		return -ENAMETOOLONG;
	}
	out[o] = '\0';
	return (int)o;
}

struct enc_kv {
	char *k;
	char *v;
};

static int cmp_enc_kv(const void *a, const void *b)
{
	const struct enc_kv *x = a, *y = b;
	int c = strcmp(x->k, y->k);

	return c ? c : strcmp(x->v, y->v);
}

int s3_canonical_query(const struct s3_kv *q, size_t n, char *out, size_t outlen)
{
	struct enc_kv *e = NULL;
	size_t o = 0;
	int rc = 0;

	if (outlen == 0) {
		return -ENAMETOOLONG;
	}
	out[0] = '\0';
	if (n == 0) {
		return 0;
	}
	e = calloc(n, sizeof(*e));
	if (!e) {
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		size_t kl = strlen(q[i].k) * 3 + 1, vl = strlen(q[i].v) * 3 + 1;

		e[i].k = malloc(kl);
		e[i].v = malloc(vl);
		if (!e[i].k || !e[i].v) {
			rc = -ENOMEM;
			goto out;
		}
		if (s3_uri_encode(q[i].k, false, e[i].k, kl) < 0 ||
		    s3_uri_encode(q[i].v, false, e[i].v, vl) < 0) {
			rc = -ENAMETOOLONG;
			goto out;
		}
	}
	/* SigV4: sort by encoded name (byte order), then by value. */
	qsort(e, n, sizeof(*e), cmp_enc_kv);
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(out + o, outlen - o, "%s%s=%s", i ? "&" : "", e[i].k, e[i].v);

		if (w < 0 || (size_t)w >= outlen - o) {
			rc = -ENAMETOOLONG;
			goto out;
		}
		o += (size_t)w;
	}
out:
	for (size_t i = 0; i < n; i++) {
		free(e[i].k);
		free(e[i].v);
	}
	free(e);
	return rc;
}

void s3_amz_date(time_t t, char out[S3_AMZ_DATE_LEN + 1])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	if (strftime(out, S3_AMZ_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) != S3_AMZ_DATE_LEN) {
		out[0] = '\0';
	}
}

static int hmac(const void *key, size_t keylen, const char *msg, unsigned char out[32])
{
	unsigned int len = 0;

	if (!HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), out,
		  &len) ||
	    len != 32) {
		return -EIO;
	}
	return 0;
}

/* Appends with truncation check; *o tracks the length. */
__attribute__((format(printf, 4, 5))) static int append(char *buf, size_t len, size_t *o,
							 const char *fmt, ...)
{
	va_list ap;
	int w;

	va_start(ap, fmt);
	w = vsnprintf(buf + *o, len - *o, fmt, ap);
	va_end(ap);

	if (w < 0 || (size_t)w >= len - *o) {
		return -ENAMETOOLONG;
	}
	*o += (size_t)w;
	return 0;
}

static int cmp_kv_name(const void *a, const void *b)
{
	const struct s3_kv *x = a, *y = b;

	return strcmp(x->k, y->k);
}

/* Header value as SigV4 canonicalizes it: trimmed, inner runs of spaces collapsed. */
static int trim_value(const char *v, char *out, size_t outlen)
{
	size_t o = 0;
	bool space = false;

	while (*v == ' ' || *v == '\t') {
		v++;
	}
	for (; *v; v++) {
		if (*v == ' ' || *v == '\t') {
			space = true;
			continue;
		}
		if (space && o) {
			if (o + 1 >= outlen) {
				return -ENAMETOOLONG;
			}
			out[o++] = ' ';
		}
		space = false;
		if (o + 1 >= outlen) {
			return -ENAMETOOLONG;
		}
		out[o++] = *v;
	}
	out[o] = '\0';
	return 0;
}

int s3_sigv4_authorization(const struct s3_sign_req *sr, char *out, size_t outlen, char *creq,
			   size_t creqlen)
{
	struct s3_kv hdrs[SIGV4_MAX_HDRS];
	char *cr = NULL, *path = NULL, *query = NULL, *val = NULL;
	char signed_hdrs[512] = "", crhash[S3_SHA256_HEX_LEN + 1], scope[160], sts[512];
	char day[9], keybuf[4 + 256];
	unsigned char k[32], sig[32];
	size_t crlen = 65536, o = 0, so = 0;
	int rc;

	if (sr->nhdrs > SIGV4_MAX_HDRS || strlen(sr->amz_date) != S3_AMZ_DATE_LEN ||
	    strlen(sr->secret_key) > 256) {
		return -EINVAL;
	}
	memcpy(hdrs, sr->hdrs, sr->nhdrs * sizeof(hdrs[0]));
	qsort(hdrs, sr->nhdrs, sizeof(hdrs[0]), cmp_kv_name);

	cr = malloc(crlen);
	path = malloc(3 * strlen(sr->path) + 2);
	query = malloc(crlen);
	val = malloc(crlen);
	if (!cr || !path || !query || !val) {
		rc = -ENOMEM;
		goto out;
	}
	rc = s3_uri_encode(sr->path, true, path, 3 * strlen(sr->path) + 2);
	if (rc < 0) {
		goto out;
	}
	rc = s3_canonical_query(sr->query, sr->nquery, query, crlen);
	if (rc < 0) {
		goto out;
	}
	rc = append(cr, crlen, &o, "%s\n%s\n", sr->method, path[0] ? path : "/");
	if (rc == 0) {
		rc = append(cr, crlen, &o, "%s\n%s", query, "");
	}
	for (size_t i = 0; i < sr->nhdrs && rc == 0; i++) {
		rc = trim_value(hdrs[i].v, val, crlen);
		if (rc == 0) {
			rc = append(cr, crlen, &o, "%s:%s\n", hdrs[i].k, val);
		}
		if (rc == 0) {
			rc = append(signed_hdrs, sizeof(signed_hdrs), &so, "%s%s", i ? ";" : "",
				    hdrs[i].k);
		}
	}
	if (rc == 0) {
		rc = append(cr, crlen, &o, "\n%s\n%s", signed_hdrs, sr->payload_hash);
	}
	if (rc < 0) {
		goto out;
	}
	if (creq) {
		if (snprintf(creq, creqlen, "%s", cr) >= (int)creqlen) {
			rc = -ENAMETOOLONG;
			goto out;
		}
	}
	rc = s3_sha256_hex(cr, o, crhash);
	if (rc < 0) {
		goto out;
	}
	memcpy(day, sr->amz_date, 8);
	day[8] = '\0';
	if (snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", day, sr->region, sr->service) >=
		    (int)sizeof(scope) ||
	    snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s\n%s", sr->amz_date, scope,
		     crhash) >= (int)sizeof(sts)) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	(void)snprintf(keybuf, sizeof(keybuf), "AWS4%s", sr->secret_key);
	rc = hmac(keybuf, strlen(keybuf), day, k);
	if (rc == 0) {
		rc = hmac(k, 32, sr->region, k);
	}
	if (rc == 0) {
		rc = hmac(k, 32, sr->service, k);
	}
	if (rc == 0) {
		rc = hmac(k, 32, "aws4_request", k);
	}
	if (rc == 0) {
		rc = hmac(k, 32, sts, sig);
	}
	if (rc < 0) {
		goto out;
	}
	{
		static const char hex[] = "0123456789abcdef";
		char sighex[65];
		int w;

		for (unsigned i = 0; i < 32; i++) {
			sighex[2 * i] = hex[sig[i] >> 4];
			sighex[2 * i + 1] = hex[sig[i] & 15];
		}
		sighex[64] = '\0';
		w = snprintf(out, outlen,
			     "AWS4-HMAC-SHA256 Credential=%s/%s,SignedHeaders=%s,Signature=%s",
			     sr->access_key, scope, signed_hdrs, sighex);
		if (w < 0 || (size_t)w >= outlen) {
			rc = -ENAMETOOLONG;
		}
	}
out:
	explicit_bzero(keybuf, sizeof(keybuf));
	explicit_bzero(k, sizeof(k));
	free(cr);
	free(path);
	free(query);
	free(val);
	return rc;
}
