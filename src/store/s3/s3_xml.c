/*
 * s3_xml.c - the S3 XML documents the client reads: <Error> bodies,
 * ListObjectsV2 results (<ListBucketResult>) and DeleteObjects results
 * (<DeleteResult>); and the one it writes, the DeleteObjects <Delete> body.
 * Parsed with libxml2 from untrusted network input: no network access, no
 * entity expansion, no DTD loading, errors silenced (a malformed body is just
 * -EINVAL). Elements are matched by local name so a namespaced result
 * (xmlns="http://s3.amazonaws.com/doc/2006-03-01/") and a bare one both work.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "s3_internal.h"

#define S3_XML_OPTS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA)

static xmlDocPtr parse(const char *body, size_t len)
{
	if (!body || len == 0 || len > INT_MAX) {
		return NULL;
	}
	return xmlReadMemory(body, (int)len, "s3.xml", NULL, S3_XML_OPTS);
}

static bool is_elem(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

/* Copy the text of n into out (truncated to fit, always NUL-terminated). */
static void text_of(const xmlNode *n, char *out, size_t outlen)
{
	xmlChar *t = xmlNodeGetContent(n);

	(void)snprintf(out, outlen, "%s", t ? (const char *)t : "");
	xmlFree(t);
}

int s3_xml_parse_error(const char *body, size_t len, struct s3_xml_error *out)
{
	xmlDocPtr doc;
	xmlNode *root;
	int rc = -EINVAL;

	memset(out, 0, sizeof(*out));
	doc = parse(body, len);
	if (!doc) {
		return -EINVAL;
	}
	root = xmlDocGetRootElement(doc);
	if (!root || !is_elem(root, "Error")) {
		goto out;
	}
	for (xmlNode *n = root->children; n; n = n->next) {
		if (is_elem(n, "Code")) {
			text_of(n, out->code, sizeof(out->code));
		} else if (is_elem(n, "Message")) {
			text_of(n, out->message, sizeof(out->message));
		} else if (is_elem(n, "RequestId")) {
			text_of(n, out->request_id, sizeof(out->request_id));
		}
	}
	rc = out->code[0] ? 0 : -EINVAL;
out:
	xmlFreeDoc(doc);
	return rc;
}

static int parse_u64_text(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9') {
		return -EINVAL;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end) {
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int contents(const xmlNode *c, s3_xml_key_fn fn, void *arg)
{
	xmlChar *key = NULL;
	uint64_t size = 0;
	bool has_size = false;
	int rc;

	for (const xmlNode *n = c->children; n; n = n->next) {
		if (is_elem(n, "Key") && !key) {
			key = xmlNodeGetContent(n);
		} else if (is_elem(n, "Size")) {
			char buf[32];

			text_of(n, buf, sizeof(buf));
			if (parse_u64_text(buf, &size) < 0) {
				rc = -EINVAL;
				goto out;
			}
			has_size = true;
		}
	}
	if (!key || !key[0] || !has_size) {
		rc = -EINVAL;
		goto out;
	}
	rc = fn(arg, (const char *)key, size);
out:
	xmlFree(key);
	return rc;
}

int s3_xml_parse_list(const char *body, size_t len, s3_xml_key_fn fn, void *arg,
		      bool *truncated, char *token, size_t tokenlen)
{
	xmlDocPtr doc;
	xmlNode *root;
	int rc = 0;

	*truncated = false;
	if (tokenlen) {
		token[0] = '\0';
	}
	doc = parse(body, len);
	if (!doc) {
		return -EINVAL;
	}
	root = xmlDocGetRootElement(doc);
	if (!root || !is_elem(root, "ListBucketResult")) {
		rc = -EINVAL;
		goto out;
	}
	for (xmlNode *n = root->children; n && rc == 0; n = n->next) {
		if (is_elem(n, "Contents")) {
			rc = contents(n, fn, arg);
		} else if (is_elem(n, "IsTruncated")) {
			char buf[8];

			text_of(n, buf, sizeof(buf));
			*truncated = strcmp(buf, "true") == 0;
		} else if (is_elem(n, "NextContinuationToken")) {
			xmlChar *t = xmlNodeGetContent(n);

			if (!t || strlen((const char *)t) >= tokenlen) {
				rc = -EINVAL;
			} else {
				memcpy(token, t, strlen((const char *)t) + 1);
			}
			xmlFree(t);
		}
	}
	/* A truncated page without a token would make the caller loop forever. */
	if (rc == 0 && *truncated && (tokenlen == 0 || !token[0])) {
		rc = -EINVAL;
	}
out:
	xmlFreeDoc(doc);
	return rc;
}

int s3_classify(long http_status, const char *code)
{
	static const struct {
		const char *code;
		int err;
	} map[] = {
		{ "AccessDenied", -EACCES },
		{ "InvalidAccessKeyId", -EACCES },
		{ "SignatureDoesNotMatch", -EACCES },
		{ "RequestTimeTooSkewed", -EACCES },
		{ "InvalidToken", -EACCES },
		{ "AllAccessDisabled", -EACCES },
		{ "NoSuchBucket", -ENXIO },
		{ "NoSuchKey", -ENOENT },
		{ "PreconditionFailed", -EEXIST },
		{ "SlowDown", -EAGAIN },
		{ "RequestTimeout", -EAGAIN },
		{ "InternalError", -EAGAIN },
		{ "ServiceUnavailable", -EAGAIN },
		/* AWS: a concurrent conditional write was in progress; retrying decides it. */
		{ "ConditionalRequestConflict", -EAGAIN },
		/* The body was damaged in transit; the one in memory is intact: send it again. */
		{ "BadDigest", -EAGAIN },
		{ "XAmzContentSHA256Mismatch", -EAGAIN },
		/* Temporary credentials expired: the client refreshes them and retries. */
		{ "ExpiredToken", -EAGAIN },
		{ "TokenRefreshRequired", -EAGAIN },
	};

	if (http_status >= 200 && http_status < 300) {
		return 0;
	}
	for (size_t i = 0; code && i < sizeof(map) / sizeof(map[0]); i++) {
		if (strcmp(code, map[i].code) == 0) {
			return map[i].err;
		}
	}
	switch (http_status) {
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 412:
		return -EEXIST;
	case 500:
	case 502:
	case 503:
	case 504:
		return -EAGAIN;
	default:
		return -EIO;
	}
}

/* ---- DeleteObjects ---- */

/* Appends past cap are counted, not written (snprintf-style sizing). */
struct xml_out {
	char *p;
	size_t cap;
	size_t len;
};

static void out_put(struct xml_out *o, const char *s, size_t n)
{
	if (o->len < o->cap) {
		size_t room = o->cap - o->len;

		memcpy(o->p + o->len, s, n < room ? n : room);
	}
	o->len += n;
}

static void out_str(struct xml_out *o, const char *s)
{
	out_put(o, s, strlen(s));
}

static int out_escaped(struct xml_out *o, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			out_str(o, "&amp;");
			break;
		case '<':
			out_str(o, "&lt;");
			break;
		case '>':
			out_str(o, "&gt;");
			break;
		case '"':
			out_str(o, "&quot;");
			break;
		case '\'':
			out_str(o, "&apos;");
			break;
		default:
			/* XML 1.0 has no way to write most of these, and would turn CR into LF. */
			if ((unsigned char)*s < 0x20) {
				return -EINVAL;
			}
			out_put(o, s, 1);
			break;
		}
	}
	return 0;
}

int s3_xml_build_delete(const char *prefix, const char *const *keys, size_t n, char *out,
			size_t outlen)
{
	struct xml_out o = { .p = out, .cap = outlen ? outlen - 1 : 0 };

	out_str(&o, "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		    "<Quiet>true</Quiet>");
	for (size_t i = 0; i < n; i++) {
		out_str(&o, "<Object><Key>");
		if (prefix[0]) {
			if (out_escaped(&o, prefix) < 0) {
				return -EINVAL;
			}
			out_str(&o, "/");
		}
		if (out_escaped(&o, keys[i]) < 0) {
			return -EINVAL;
		}
		out_str(&o, "</Key></Object>");
	}
	out_str(&o, "</Delete>");
	if (outlen) {
		out[o.len < o.cap ? o.len : o.cap] = '\0';
	}
	return o.len > INT_MAX ? -EINVAL : (int)o.len;
}

static int delete_error(const xmlNode *e, s3_xml_delete_err_fn fn, void *arg)
{
	xmlChar *key = NULL;
	char code[64] = "", message[256] = "";
	int rc;

	for (const xmlNode *n = e->children; n; n = n->next) {
		if (is_elem(n, "Key") && !key) {
			key = xmlNodeGetContent(n);
		} else if (is_elem(n, "Code")) {
			text_of(n, code, sizeof(code));
		} else if (is_elem(n, "Message")) {
			text_of(n, message, sizeof(message));
		}
	}
	if (!key || !key[0] || !code[0]) {
		rc = -EINVAL;
		goto out;
	}
	rc = fn(arg, (const char *)key, code, message);
out:
	xmlFree(key);
	return rc;
}

int s3_xml_parse_delete(const char *body, size_t len, s3_xml_delete_err_fn fn, void *arg)
{
	xmlDocPtr doc;
	xmlNode *root;
	int rc = 0;

	doc = parse(body, len);
	if (!doc) {
		return -EINVAL;
	}
	root = xmlDocGetRootElement(doc);
	if (!root || !is_elem(root, "DeleteResult")) {
		rc = -EINVAL;
		goto out;
	}
	for (xmlNode *n = root->children; n && rc == 0; n = n->next) {
		if (is_elem(n, "Error")) {
			rc = delete_error(n, fn, arg);
		}
	}
out:
	xmlFreeDoc(doc);
	return rc;
}

struct delete_ctx {
	const char *prefix;
	size_t plen;
	const char *const *keys;
	size_t n;
	int *status;
};

static int delete_key_error(void *arg, const char *key, const char *code, const char *message)
{
	struct delete_ctx *c = arg;
	bool found = false;
	int err;

	(void)message;
	if (c->plen) {
		if (strncmp(key, c->prefix, c->plen) != 0 || key[c->plen] != '/') {
			return -EINVAL;
		}
		key += c->plen + 1;
	}
	/* A per-key error has no HTTP status of its own: its code alone decides. */
	err = s3_classify(0, code);
	if (err == -ENOENT) {
		err = 0;
	}
	for (size_t i = 0; i < c->n; i++) {
		if (strcmp(c->keys[i], key) == 0) {
			c->status[i] = err;
			found = true;
		}
	}
	return found ? 0 : -EINVAL;
}

int s3_xml_delete_status(const char *body, size_t len, const char *prefix,
			 const char *const *keys, size_t n, int *status)
{
	struct delete_ctx c = {
		.prefix = prefix, .plen = strlen(prefix), .keys = keys, .n = n, .status = status,
	};

	for (size_t i = 0; i < n; i++) {
		status[i] = 0;
	}
	return s3_xml_parse_delete(body, len, delete_key_error, &c) ? -EINVAL : 0;
}
