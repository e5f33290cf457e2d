/*
 * s3_client.c - the S3 request engine: one thread, one curl multi handle.
 *
 * Request life cycle (struct s3_op):
 *
 *   submit (any thread) --lock--> queue --wakeup--> pending (client thread)
 *   pending --(inflight < max_inflight)--> ATTEMPT: signed, added to multi
 *   ATTEMPT done --2xx / final error--> complete: the client's reactor
 *                                        queue (async) or condvar (sync caller)
 *   ATTEMPT done --retryable, deadline not reached--> retry list (due time)
 *   retry list --due--> pending
 *
 * Invariants: the queue and the op free list are the only state shared
 * between threads and are protected by cl->lock (a leaf lock: nothing else
 * is taken while holding it). pending, retry, credentials and the multi
 * handle belong to the client thread. An async op returns to the free list
 * on the reactor thread just before its callback runs, so a callback may
 * submit again. The completion queue counts async ops whose callback has
 * not run yet; s3_client_quiesce() (and so destroy) cancels what waits and runs
 * every callback before it returns, so no completion outlives the client.
 * Nothing here blocks the reactor: hashing the PUT body, building and
 * hashing a DeleteObjects body (into a buffer the op keeps for reuse),
 * signing and refreshing temporary credentials all run on the client thread.
 *
 * Retries (SlowDown, 500/502/503/504, RequestTimeout, curl timeouts and
 * connection failures) back off exponentially with full jitter (AWS
 * architecture blog "Exponential Backoff and Jitter"): sleep = rand(0,
 * min(cap, base * 2^attempt)), until the request's deadline, and for a
 * change made under a lease only while obj_req.valid_until is ahead (then
 * -ETIMEDOUT: a write must not land long after its daemon lost the volume,
 * and the chunk store sends it again once the lease is confirmed). While the
 * client is quiescing nothing is retried: an op waiting for its turn or its
 * retry completes at once with -ECANCELED, an attempt on the wire may finish
 * for S3_QUIESCE_GRACE_MS and is then aborted (-ECANCELED). The grace keeps
 * a lease renewal answered in milliseconds ordered before the release that
 * follows; the bound keeps a black-holed endpoint from holding the reactor
 * for the whole request timeout.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <libxml/parser.h>

#include "s3tgt/core.h"
#include "s3tgt/log.h"

#include "s3_internal.h"

#define S3_COMP "s3"
#define S3_ERRBODY_MAX 4096
#define S3_BODY_MAX (16u << 20) /* a ListObjectsV2 page or a DeleteObjects result */
#define S3_PATH_MAX 1280
#define S3_BACKOFF_BASE_MS 100
#define S3_BACKOFF_CAP_MS 10000
#define S3_QUIESCE_GRACE_MS 2000
#define S3_META_HDR "x-amz-meta-s3tgt"

enum s3_kind { S3_KIND_GET, S3_KIND_PUT, S3_KIND_DELETE, S3_KIND_LIST, S3_KIND_DELETE_MULTI };

struct s3_waiter {
	pthread_mutex_t m;
	pthread_cond_t c;
	bool done;
};

struct s3_op {
	struct s3_op *next;
	struct s3_client *cl;
	enum s3_kind kind;
	struct obj_req *req;	  /* GET/PUT/DELETE/DELETE_MULTI */
	struct s3_waiter *waiter; /* NULL = async: complete on the reactor */
	struct reactor_node done; /* async completion, in cl->done */
	/* LIST page parameters and body */
	char list_prefix[1024];
	char list_token[1024];
	unsigned list_max_keys;
	char *body; /* response body of LIST and DELETE_MULTI */
	size_t body_len, body_cap;
	char *upload; /* DELETE_MULTI request body, kept across attempts */
	size_t upload_len, upload_cap;
	char md5_b64[S3_MD5_B64_LEN + 1];

	CURL *easy;
	struct curl_slist *hdrs;
	char payload_hash[S3_SHA256_HEX_LEN + 1];
	char crc_b64[S3_CRC32C_B64_LEN + 1]; /* PUT body checksum when the payload is unsigned */
	bool hashed;
	unsigned attempt;
	uint64_t deadline_ms;
	uint64_t due_ms;
	size_t put_off;
	bool overflow;
	long http_status;
	char errbody[S3_ERRBODY_MAX + 1];
	size_t errbody_len;
	struct s3_xml_error xerr;
	int last_err; /* what a retryable failure becomes when the deadline passes */
	unsigned wire_idx; /* in cl->wire while an attempt runs */
	int status;
};

struct s3_client {
	/* configuration (immutable after create) */
	char *bucket, *prefix, *region, *scheme_host, *host, *ca_file;
	bool path_style;
	bool sign_payload;
	unsigned max_inflight, timeout_ms, retry_deadline_ms, list_max_keys;

	pthread_t thread;
	bool thread_started;
	CURLM *multi;

	pthread_mutex_t lock; /* protects queue, free_ops, stopping, cancel, stats */
	struct s3_op *queue_head, *queue_tail;
	struct s3_op *free_ops;
	bool stopping;
	bool cancel; /* quiescing: retry nothing, start nothing */
	struct s3_stats stats;

	/* client thread only */
	struct s3_op *pending_head, *pending_tail;
	struct s3_op *retry;
	bool cancelling; /* the client thread's copy of cancel */
	uint64_t cancel_since;
	struct s3_op **wire; /* ops with an attempt in the multi handle: [0, inflight) */
	unsigned inflight;
	struct s3_creds creds;
	bool creds_refreshable;
	bool force_refresh;
	uint64_t rng;

	/* reactor thread only */
	struct reactor_queue *done;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const char *kind_name(enum s3_kind k)
{
	static const char *const names[] = { "GET", "PUT", "DELETE", "LIST", "DELETE_MULTI" };

	return names[k];
}

static enum s3_req_type kind_stat(enum s3_kind k)
{
	static const enum s3_req_type map[] = { S3_REQ_GET, S3_REQ_PUT, S3_REQ_DELETE,
						S3_REQ_LIST, S3_REQ_DELETE_MULTI };

	return map[k];
}

/* ------------------------------------------------------------ op lists */

static void list_append(struct s3_op **head, struct s3_op **tail, struct s3_op *op)
{
	op->next = NULL;
	if (*tail) {
		(*tail)->next = op;
	} else {
		*head = op;
	}
	*tail = op;
}

static void op_reset(struct s3_op *op)
{
	CURL *easy = op->easy;
	char *body = op->body, *upload = op->upload;
	size_t cap = op->body_cap, ucap = op->upload_cap;

	memset(op, 0, sizeof(*op));
	op->easy = easy;
	op->body = body;
	op->body_cap = cap;
	op->upload = upload;
	op->upload_cap = ucap;
}

static void op_free(struct s3_op *op)
{
	if (!op) {
		return;
	}
	curl_slist_free_all(op->hdrs);
	curl_easy_cleanup(op->easy);
	free(op->body);
	free(op->upload);
	free(op);
}

/* An op from the free list (reused so the I/O path normally does not malloc). */
static struct s3_op *op_get(struct s3_client *cl)
{
	struct s3_op *op;

	pthread_mutex_lock(&cl->lock);
	op = cl->free_ops;
	if (op) {
		cl->free_ops = op->next;
	}
	pthread_mutex_unlock(&cl->lock);
	if (!op) {
		op = calloc(1, sizeof(*op));
		if (!op) {
			return NULL;
		}
	}
	op_reset(op);
	op->cl = cl;
	return op;
}

static void op_put(struct s3_client *cl, struct s3_op *op)
{
	curl_slist_free_all(op->hdrs);
	op->hdrs = NULL;
	pthread_mutex_lock(&cl->lock);
	op->next = cl->free_ops;
	cl->free_ops = op;
	pthread_mutex_unlock(&cl->lock);
}

/* obj_req.valid_until: may this change still be retried at now? */
static bool may_retry(const struct s3_op *op, uint64_t now)
{
	return !op->req || !op->req->valid_until || now < atomic_load(op->req->valid_until);
}

static int enqueue(struct s3_client *cl, struct s3_op *op)
{
	op->deadline_ms = now_ms() + (op->req && op->req->deadline_ms ? op->req->deadline_ms
								      : cl->retry_deadline_ms);
	op->last_err = -EIO;
	pthread_mutex_lock(&cl->lock);
	if (cl->stopping) {
		pthread_mutex_unlock(&cl->lock);
		return -ESHUTDOWN;
	}
	list_append(&cl->queue_head, &cl->queue_tail, op);
	cl->stats.inflight++;
	pthread_mutex_unlock(&cl->lock);
	curl_multi_wakeup(cl->multi);
	return 0;
}

/* ----------------------------------------------------------- callbacks */

/*
 * Copy a header's value (v, len bytes, after the colon) into out (cap
 * bytes) without surrounding blanks, CR/LF and, if `strip`, these characters
 * too (an ETag's quotes). A value too long for out leaves out unchanged.
 */
static void header_value(char *out, size_t cap, const char *v, size_t len, const char *strip)
{
	const char *e = v + len;

	while (v < e && (*v == ' ' || *v == '\t' || (*v && strchr(strip, *v)))) {
		v++;
	}
	while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t' ||
			 (e[-1] && strchr(strip, e[-1])))) {
		e--;
	}
	if ((size_t)(e - v) < cap) {
		memcpy(out, v, (size_t)(e - v));
		out[e - v] = '\0';
	}
}

/* An outcome the caller asked about (missing object, lost condition), not a failure to log. */
static bool is_answer(int rc)
{
	return rc == -ENOENT || rc == -EEXIST || rc == -ESTALE;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct s3_op *op = arg;
	size_t len = size * n, hl = strlen(S3_META_HDR);

	if (len > 5 && memcmp(p, "HTTP/", 5) == 0) {
		const char *sp = memchr(p, ' ', len);

		/* A new response (status line): forget what an earlier one said. */
		op->http_status = sp ? strtol(sp + 1, NULL, 10) : 0;
		op->errbody_len = 0;
		return len;
	}
	if ((op->kind == S3_KIND_GET || op->kind == S3_KIND_PUT) && len > 5 &&
	    strncasecmp(p, "etag:", 5) == 0) {
		header_value(op->req->etag, sizeof(op->req->etag), p + 5, len - 5, "\"");
		return len;
	}
	if (op->kind == S3_KIND_GET && len > hl + 1 && strncasecmp(p, S3_META_HDR, hl) == 0 &&
	    p[hl] == ':') {
		header_value(op->req->meta, sizeof(op->req->meta), p + hl + 1, len - hl - 1, "");
	}
	return len;
}

static size_t on_write(char *p, size_t size, size_t n, void *arg)
{
	struct s3_op *op = arg;
	size_t len = size * n;

	if (op->http_status < 200 || op->http_status >= 300) {
		size_t room = S3_ERRBODY_MAX - op->errbody_len;
		size_t c = len < room ? len : room;

		memcpy(op->errbody + op->errbody_len, p, c);
		op->errbody_len += c;
		op->errbody[op->errbody_len] = '\0';
		return len;
	}
	if (op->kind == S3_KIND_GET) {
		struct obj_req *req = op->req;

		/* Zero-copy into the caller's buffer; more than it holds is an error. */
		if (len > req->len - req->got) {
			op->overflow = true;
			return 0;
		}
		memcpy((char *)req->buf + req->got, p, len);
		req->got += len;
		return len;
	}
	if (op->kind == S3_KIND_LIST || op->kind == S3_KIND_DELETE_MULTI) {
		if (op->body_len + len + 1 > op->body_cap) {
			size_t cap = op->body_cap ? op->body_cap : 65536;
			char *nb;

			while (cap < op->body_len + len + 1) {
				cap *= 2;
			}
			if (cap > S3_BODY_MAX) {
				op->overflow = true;
				return 0;
			}
			nb = realloc(op->body, cap);
			if (!nb) {
				return 0;
			}
			op->body = nb;
			op->body_cap = cap;
		}
		memcpy(op->body + op->body_len, p, len);
		op->body_len += len;
		op->body[op->body_len] = '\0';
	}
	return len;
}

static size_t on_read(char *p, size_t size, size_t n, void *arg)
{
	struct s3_op *op = arg;
	size_t room = size * n, left = op->req->len - op->put_off;
	size_t c = left < room ? left : room;

	memcpy(p, (const char *)op->req->buf + op->put_off, c);
	op->put_off += c;
	return c;
}

static int on_seek(void *arg, curl_off_t off, int origin)
{
	struct s3_op *op = arg;

	if (origin != SEEK_SET || off < 0 || (uint64_t)off > op->req->len) {
		return CURL_SEEKFUNC_CANTSEEK;
	}
	op->put_off = (size_t)off;
	return CURL_SEEKFUNC_OK;
}

/* ------------------------------------------------------------- attempt */

static int full_key(const struct s3_client *cl, const char *rel, char *out, size_t outlen)
{
	int w;

	if (cl->prefix[0]) {
		w = snprintf(out, outlen, "%s/%s", cl->prefix, rel);
	} else {
		w = snprintf(out, outlen, "%s", rel);
	}
	return (w < 0 || (size_t)w >= outlen) ? -ENAMETOOLONG : 0;
}

static int add_hdr(struct curl_slist **l, const char *name, const char *value)
{
	char line[8192];
	struct curl_slist *t;

	if (snprintf(line, sizeof(line), "%s: %s", name, value) >= (int)sizeof(line)) {
		return -ENAMETOOLONG;
	}
	t = curl_slist_append(*l, line);
	explicit_bzero(line, sizeof(line));
	if (!t) {
		return -ENOMEM;
	}
	*l = t;
	return 0;
}

static void refresh_creds(struct s3_client *cl)
{
	struct s3_creds fresh;
	char err[256] = "";

	if (!cl->creds_refreshable) {
		return;
	}
	if (!cl->force_refresh && !s3_creds_need_refresh(&cl->creds, time(NULL))) {
		return;
	}
	cl->force_refresh = false;
	if (s3_creds_resolve(&fresh, err, sizeof(err)) == 0) {
		s3_creds_wipe(&cl->creds);
		cl->creds = fresh;
		LOG_INFO(S3_COMP, "credentials refreshed from %s", cl->creds.source);
	} else {
		LOG_RATELIMIT(LOG_LEVEL_WARN, S3_COMP, "credential refresh failed: %s", err);
	}
	s3_creds_wipe(&fresh);
}

/*
 * The PUT body's integrity on the wire. Signing the payload costs a SHA-256
 * pass over every body here and another in the server, the largest CPU cost
 * of an upload; by default the body is UNSIGNED-PAYLOAD and carries a CRC32C
 * in x-amz-checksum-crc32c instead, a signed header that AWS S3 (and MinIO)
 * verify against the body, rejecting a corrupted upload with BadDigest (retried). This
 * is what the AWS SDKs send by default. A server that ignores the header (Ceph
 * RGW 16) leaves the per-segment CRC32Cs of the object metadata, verified on
 * every read. sign_payload=1 signs the body for plain-http endpoints on
 * networks where the body could be altered deliberately.
 */
static int put_body_digest(struct s3_client *cl, struct s3_op *op)
{
	if (cl->sign_payload) {
		return s3_sha256_hex(op->req->buf, op->req->len, op->payload_hash);
	}
	memcpy(op->payload_hash, S3_UNSIGNED_PAYLOAD, sizeof(S3_UNSIGNED_PAYLOAD));
	s3_crc32c_b64(op->req->buf, op->req->len, op->crc_b64);
	return 0;
}

/*
 * The DeleteObjects body and its digests, once per request. S3 requires
 * Content-MD5 on this call; the body is small, so it is also signed
 * (x-amz-content-sha256 of the body) whatever sign_payload says.
 */
static int delete_body(struct s3_client *cl, struct s3_op *op)
{
	const struct obj_req *req = op->req;
	int n = s3_xml_build_delete(cl->prefix, req->keys, req->nkeys, NULL, 0);

	if (n < 0) {
		return n;
	}
	if ((size_t)n + 1 > op->upload_cap) {
		char *nb = realloc(op->upload, (size_t)n + 1);

		if (!nb) {
			return -ENOMEM;
		}
		op->upload = nb;
		op->upload_cap = (size_t)n + 1;
	}
	(void)s3_xml_build_delete(cl->prefix, req->keys, req->nkeys, op->upload, op->upload_cap);
	op->upload_len = (size_t)n;
	if (s3_sha256_hex(op->upload, op->upload_len, op->payload_hash) < 0 ||
	    s3_md5_b64(op->upload, op->upload_len, op->md5_b64) < 0) {
		return -EIO;
	}
	return 0;
}

/* Build, sign and configure one attempt of op on its easy handle. */
static int prepare(struct s3_client *cl, struct s3_op *op)
{
	static const char *const methods[] = { "GET", "PUT", "DELETE", "GET", "POST" };
	char key[S3_PATH_MAX], path[S3_PATH_MAX + 256], epath[3 * (S3_PATH_MAX + 256)];
	char query[4096] = "", url[sizeof(epath) + 4096 + 512], amz_date[S3_AMZ_DATE_LEN + 1];
	char range[64], auth[1024], maxkeys[16], lprefix[2048];
	struct s3_kv q[4], h[10];
	size_t nq = 0, nh = 0;
	struct s3_sign_req sr = { 0 };
	int rc;

	if (!op->easy) {
		op->easy = curl_easy_init();
		if (!op->easy) {
			return -ENOMEM;
		}
	} else {
		curl_easy_reset(op->easy);
	}
	curl_slist_free_all(op->hdrs);
	op->hdrs = NULL;
	op->http_status = 0;
	op->errbody_len = 0;
	op->errbody[0] = '\0';
	op->overflow = false;
	op->put_off = 0;
	op->body_len = 0;
	if (op->req) {
		op->req->got = 0;
	}

	if (op->kind == S3_KIND_LIST) {
		rc = snprintf(path, sizeof(path), "/%s", cl->path_style ? cl->bucket : "");
		if (rc < 0 || (size_t)rc >= sizeof(path)) {
			return -ENAMETOOLONG;
		}
		if (op->list_prefix[0]) {
			rc = full_key(cl, op->list_prefix, lprefix, sizeof(lprefix));
		} else {
			rc = snprintf(lprefix, sizeof(lprefix), "%s%s", cl->prefix,
				      cl->prefix[0] ? "/" : "") >= (int)sizeof(lprefix)
				     ? -ENAMETOOLONG
				     : 0;
		}
		if (rc < 0) {
			return rc;
		}
		(void)snprintf(maxkeys, sizeof(maxkeys), "%u", op->list_max_keys);
		q[nq++] = (struct s3_kv){ "list-type", "2" };
		q[nq++] = (struct s3_kv){ "max-keys", maxkeys };
		q[nq++] = (struct s3_kv){ "prefix", lprefix };
		if (op->list_token[0]) {
			q[nq++] = (struct s3_kv){ "continuation-token", op->list_token };
		}
		rc = s3_canonical_query(q, nq, query, sizeof(query));
		if (rc < 0) {
			return rc;
		}
	} else if (op->kind == S3_KIND_DELETE_MULTI) {
		rc = snprintf(path, sizeof(path), "/%s", cl->path_style ? cl->bucket : "");
		if (rc < 0 || (size_t)rc >= sizeof(path)) {
			return -ENAMETOOLONG;
		}
		/* Signed as "delete=" (SigV4 canonical query), sent as "?delete" as the SDKs do. */
		q[nq++] = (struct s3_kv){ "delete", "" };
		memcpy(query, "delete", sizeof("delete"));
	} else {
		rc = full_key(cl, op->req->key, key, sizeof(key));
		if (rc < 0) {
			return rc;
		}
		rc = snprintf(path, sizeof(path), "/%s%s%s", cl->path_style ? cl->bucket : "",
			      cl->path_style ? "/" : "", key);
		if (rc < 0 || (size_t)rc >= sizeof(path)) {
			return -ENAMETOOLONG;
		}
	}
	rc = s3_uri_encode(path, true, epath, sizeof(epath));
	if (rc < 0) {
		return rc;
	}
	rc = snprintf(url, sizeof(url), "%s%s%s%s", cl->scheme_host, epath, query[0] ? "?" : "",
		      query);
	if (rc < 0 || (size_t)rc >= sizeof(url)) {
		return -ENAMETOOLONG;
	}

	if (op->kind == S3_KIND_PUT || op->kind == S3_KIND_DELETE_MULTI) {
		/* Once per request, not per attempt, and here: off the reactor. */
		if (!op->hashed) {
			rc = op->kind == S3_KIND_PUT ? put_body_digest(cl, op)
						     : delete_body(cl, op);
			if (rc < 0) {
				return rc;
			}
			op->hashed = true;
		}
	} else {
		memcpy(op->payload_hash, S3_EMPTY_SHA256, sizeof(op->payload_hash));
	}
	refresh_creds(cl);
	s3_amz_date(time(NULL), amz_date);

	h[nh++] = (struct s3_kv){ "host", cl->host };
	h[nh++] = (struct s3_kv){ "x-amz-content-sha256", op->payload_hash };
	h[nh++] = (struct s3_kv){ "x-amz-date", amz_date };
	if (cl->creds.token[0]) {
		h[nh++] = (struct s3_kv){ "x-amz-security-token", cl->creds.token };
	}
	if (op->kind == S3_KIND_GET && op->req->range_len) {
		uint64_t last;

		if (__builtin_add_overflow(op->req->range_off, op->req->range_len - 1, &last)) {
			return -EINVAL;
		}
		(void)snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64,
			       op->req->range_off, last);
		h[nh++] = (struct s3_kv){ "range", range };
	}
	if (op->kind == S3_KIND_PUT && op->req->if_none_match) {
		h[nh++] = (struct s3_kv){ "if-none-match", "*" };
	}
	if (op->kind == S3_KIND_PUT && op->req->if_match[0]) {
		h[nh++] = (struct s3_kv){ "if-match", op->req->if_match };
	}
	if (op->kind == S3_KIND_PUT && !cl->sign_payload) {
		h[nh++] = (struct s3_kv){ "x-amz-checksum-crc32c", op->crc_b64 };
	}
	if (op->kind == S3_KIND_PUT && op->req->meta[0]) {
		h[nh++] = (struct s3_kv){ S3_META_HDR, op->req->meta };
	}
	if (op->kind == S3_KIND_DELETE_MULTI) {
		h[nh++] = (struct s3_kv){ "content-md5", op->md5_b64 };
		h[nh++] = (struct s3_kv){ "content-type", "application/xml" };
	}

	sr.method = methods[op->kind];
	sr.path = path;
	sr.query = q;
	sr.nquery = nq;
	sr.hdrs = h;
	sr.nhdrs = nh;
	sr.payload_hash = op->payload_hash;
	sr.amz_date = amz_date;
	sr.region = cl->region;
	sr.service = "s3";
	sr.access_key = cl->creds.access_key;
	sr.secret_key = cl->creds.secret_key;
	rc = s3_sigv4_authorization(&sr, auth, sizeof(auth), NULL, 0);
	if (rc < 0) {
		return rc;
	}
	for (size_t i = 0; i < nh && rc == 0; i++) {
		rc = add_hdr(&op->hdrs, h[i].k, h[i].v);
	}
	if (rc == 0) {
		rc = add_hdr(&op->hdrs, "Authorization", auth);
	}
	/* No 100-continue round trip: S3 answers errors before reading the body anyway. */
	if (rc == 0 && (op->kind == S3_KIND_PUT || op->kind == S3_KIND_DELETE_MULTI)) {
		struct curl_slist *t = curl_slist_append(op->hdrs, "Expect:");

		rc = t ? 0 : -ENOMEM;
		op->hdrs = t ? t : op->hdrs;
	}
	if (rc < 0) {
		return rc;
	}

	curl_easy_setopt(op->easy, CURLOPT_URL, url);
	curl_easy_setopt(op->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(op->easy, CURLOPT_HTTPHEADER, op->hdrs);
	curl_easy_setopt(op->easy, CURLOPT_PRIVATE, op);
	curl_easy_setopt(op->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(op->easy, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(op->easy, CURLOPT_TIMEOUT_MS, (long)cl->timeout_ms);
	curl_easy_setopt(op->easy, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(cl->timeout_ms < 10000 ? cl->timeout_ms : 10000));
	/* A stalled transfer (peer alive, no bytes) fails long before the hard deadline. */
	curl_easy_setopt(op->easy, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(op->easy, CURLOPT_LOW_SPEED_TIME, 15L);
	/* Fewer, larger callbacks for multi-MiB chunk bodies. */
	curl_easy_setopt(op->easy, CURLOPT_BUFFERSIZE, 256L * 1024);
	curl_easy_setopt(op->easy, CURLOPT_UPLOAD_BUFFERSIZE, 1024L * 1024);
	curl_easy_setopt(op->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(op->easy, CURLOPT_HEADERDATA, op);
	curl_easy_setopt(op->easy, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(op->easy, CURLOPT_WRITEDATA, op);
	if (cl->ca_file) {
		curl_easy_setopt(op->easy, CURLOPT_CAINFO, cl->ca_file);
	}
	switch (op->kind) {
	case S3_KIND_GET:
	case S3_KIND_LIST:
		curl_easy_setopt(op->easy, CURLOPT_HTTPGET, 1L);
		break;
	case S3_KIND_PUT:
		curl_easy_setopt(op->easy, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(op->easy, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(op->easy, CURLOPT_READDATA, op);
		curl_easy_setopt(op->easy, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(op->easy, CURLOPT_SEEKDATA, op);
		curl_easy_setopt(op->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)op->req->len);
		break;
	case S3_KIND_DELETE:
		curl_easy_setopt(op->easy, CURLOPT_CUSTOMREQUEST, "DELETE");
		break;
	case S3_KIND_DELETE_MULTI:
		/* Not copied: op->upload outlives every attempt. */
		curl_easy_setopt(op->easy, CURLOPT_POSTFIELDS, op->upload);
		curl_easy_setopt(op->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)op->upload_len);
		break;
	}
	return 0;
}

/* --------------------------------------------------------- completion */

static void on_done_reactor(void *arg)
{
	struct s3_op *op = arg;
	struct s3_client *cl = op->cl;
	struct obj_req *req = op->req;

	op_put(cl, op);
	req->cb(req);
}

/* What a log line names: the key, the listed prefix, or a batch's first key. */
static const char *op_key(const struct s3_op *op)
{
	switch (op->kind) {
	case S3_KIND_LIST:
		return op->list_prefix;
	case S3_KIND_DELETE_MULTI:
		return op->req->keys[0];
	default:
		return op->req->key;
	}
}

static void complete(struct s3_client *cl, struct s3_op *op, int status)
{
	op->status = status;
	pthread_mutex_lock(&cl->lock);
	cl->stats.inflight--;
	pthread_mutex_unlock(&cl->lock);
	if (status < 0 && !is_answer(status)) {
		LOG_RATELIMIT(LOG_LEVEL_WARN, S3_COMP,
			      "%s s3://%s/%s%s%s%s failed: %s (HTTP %ld%s%s) %s",
			      kind_name(op->kind), cl->bucket, cl->prefix, cl->prefix[0] ? "/" : "",
			      op_key(op),
			      op->kind == S3_KIND_DELETE_MULTI ? " and the rest of the batch" : "",
			      strerror(-status), op->http_status, op->xerr.code[0] ? ", " : "",
			      op->xerr.code, op->xerr.request_id);
	}
	if (op->waiter) {
		pthread_mutex_lock(&op->waiter->m);
		op->waiter->done = true;
		pthread_cond_signal(&op->waiter->c);
		pthread_mutex_unlock(&op->waiter->m);
		return;
	}
	op->req->status = status;
	op->done.arg = op;
	reactor_queue_push(cl->done, &op->done);
}

static void count(struct s3_client *cl, struct s3_op *op, CURLcode cc)
{
	enum s3_status_class sc = S3_ST_NET;
	curl_off_t up = 0, down = 0;

	if (cc == CURLE_OK) {
		sc = op->http_status >= 500   ? S3_ST_5XX
		     : op->http_status >= 400 ? S3_ST_4XX
		     : op->http_status >= 300 ? S3_ST_3XX
					      : S3_ST_2XX;
	}
	curl_easy_getinfo(op->easy, CURLINFO_SIZE_UPLOAD_T, &up);
	curl_easy_getinfo(op->easy, CURLINFO_SIZE_DOWNLOAD_T, &down);
	pthread_mutex_lock(&cl->lock);
	cl->stats.requests[kind_stat(op->kind)][sc]++;
	cl->stats.bytes_out += (uint64_t)up;
	cl->stats.bytes_in += (uint64_t)down;
	pthread_mutex_unlock(&cl->lock);
}

static uint64_t rand_below(struct s3_client *cl, uint64_t n)
{
	/* xorshift64: jitter only needs to decorrelate clients, not be secret. */
	cl->rng ^= cl->rng << 13;
	cl->rng ^= cl->rng >> 7;
	cl->rng ^= cl->rng << 17;
	return n ? cl->rng % n : 0;
}

/*
 * A 2xx DeleteObjects answer: per-key results into req->key_status. A 200
 * can still carry an <Error> document instead, a failure reported after the
 * status line went out; it is classified as a 5xx would be.
 */
static int delete_result(struct s3_op *op)
{
	struct obj_req *req = op->req;

	if (s3_xml_delete_status(op->body, op->body_len, op->cl->prefix, req->keys, req->nkeys,
				 req->key_status) == 0) {
		for (unsigned i = 0; i < req->nkeys; i++) {
			if (req->key_status[i]) {
				LOG_RATELIMIT(LOG_LEVEL_WARN, S3_COMP,
					      "DELETE_MULTI s3://%s/%s%s%s: %s", op->cl->bucket,
					      op->cl->prefix, op->cl->prefix[0] ? "/" : "",
					      req->keys[i], strerror(-req->key_status[i]));
			}
		}
		return 0;
	}
	if (s3_xml_parse_error(op->body, op->body_len, &op->xerr) == 0) {
		return s3_classify(500, op->xerr.code);
	}
	(void)snprintf(op->xerr.code, sizeof(op->xerr.code), "malformed DeleteResult");
	return -EIO;
}

static void finish_attempt(struct s3_client *cl, struct s3_op *op, CURLcode cc)
{
	uint64_t now, cap, wait;
	int err;

	count(cl, op, cc);
	memset(&op->xerr, 0, sizeof(op->xerr));
	if (cc == CURLE_OK) {
		if (op->http_status < 200 || op->http_status >= 300) {
			(void)s3_xml_parse_error(op->errbody, op->errbody_len, &op->xerr);
		}
		err = s3_classify(op->http_status, op->xerr.code);
		/* DELETE of a missing object is success (objstore contract). */
		if (op->kind == S3_KIND_DELETE && err == -ENOENT) {
			err = 0;
		}
		/* PreconditionFailed: If-Match lost (and, on RGW, the object is missing). */
		if (op->kind == S3_KIND_PUT && op->req->if_match[0] &&
		    (err == -EEXIST || err == -ENOENT)) {
			err = -ESTALE;
		}
		if (op->kind == S3_KIND_DELETE_MULTI && err == 0) {
			err = delete_result(op);
		}
		if (strcmp(op->xerr.code, "ExpiredToken") == 0 ||
		    strcmp(op->xerr.code, "TokenRefreshRequired") == 0) {
			cl->force_refresh = true;
		}
		if (err == -EAGAIN) {
			op->last_err = -EIO;
		}
	} else if (op->overflow) {
		LOG_RATELIMIT(LOG_LEVEL_ERR, S3_COMP, "%s %s: response larger than the buffer",
			      kind_name(op->kind), op_key(op));
		err = -EIO;
	} else {
		switch (cc) {
		case CURLE_OPERATION_TIMEDOUT:
			op->last_err = -ETIMEDOUT;
			err = -EAGAIN;
			break;
		case CURLE_COULDNT_CONNECT:
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_PARTIAL_FILE:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
		case CURLE_SSL_CONNECT_ERROR:
			op->last_err = -EIO;
			err = -EAGAIN;
			break;
		case CURLE_PEER_FAILED_VERIFICATION:
			err = -EACCES;
			break;
		default:
			err = -EIO;
			break;
		}
		(void)snprintf(op->xerr.code, sizeof(op->xerr.code), "curl: %s",
			       curl_easy_strerror(cc));
	}
	if (err != -EAGAIN || cl->cancelling) {
		complete(cl, op, err == -EAGAIN ? op->last_err : err);
		return;
	}
	now = now_ms();
	if (!may_retry(op, now)) {
		complete(cl, op, -ETIMEDOUT);
		return;
	}
	cap = (uint64_t)S3_BACKOFF_BASE_MS << (op->attempt < 16 ? op->attempt : 16);
	if (cap > S3_BACKOFF_CAP_MS) {
		cap = S3_BACKOFF_CAP_MS;
	}
	wait = rand_below(cl, cap + 1);
	if (now + wait >= op->deadline_ms) {
		complete(cl, op, op->last_err);
		return;
	}
	op->attempt++;
	op->due_ms = now + wait;
	op->next = cl->retry;
	cl->retry = op;
	pthread_mutex_lock(&cl->lock);
	cl->stats.retries++;
	pthread_mutex_unlock(&cl->lock);
	LOG_DEBUG(S3_COMP, "%s %s: %s (HTTP %ld), retry %u in %" PRIu64 " ms", kind_name(op->kind),
		  op_key(op), op->xerr.code, op->http_status, op->attempt, wait);
}

/* ------------------------------------------------------------- thread */

static void start_pending(struct s3_client *cl)
{
	while (cl->pending_head && cl->inflight < cl->max_inflight) {
		struct s3_op *op = cl->pending_head;
		int rc;

		cl->pending_head = op->next;
		if (!cl->pending_head) {
			cl->pending_tail = NULL;
		}
		rc = prepare(cl, op);
		if (rc == 0 && curl_multi_add_handle(cl->multi, op->easy) != CURLM_OK) {
			rc = -ENOMEM;
		}
		if (rc < 0) {
			complete(cl, op, rc);
			continue;
		}
		op->wire_idx = cl->inflight;
		cl->wire[cl->inflight++] = op;
	}
}

static void wire_remove(struct s3_client *cl, struct s3_op *op)
{
	struct s3_op *last = cl->wire[--cl->inflight];

	cl->wire[op->wire_idx] = last;
	last->wire_idx = op->wire_idx;
	curl_multi_remove_handle(cl->multi, op->easy);
}

static void collect_due(struct s3_client *cl, uint64_t now, uint64_t *next_due)
{
	struct s3_op **pp = &cl->retry;

	while (*pp) {
		struct s3_op *op = *pp;

		if (op->due_ms <= now) {
			*pp = op->next;
			if (!may_retry(op, now)) {
				complete(cl, op, -ETIMEDOUT);
				continue;
			}
			list_append(&cl->pending_head, &cl->pending_tail, op);
		} else {
			if (op->due_ms < *next_due) {
				*next_due = op->due_ms;
			}
			pp = &op->next;
		}
	}
}

/*
 * Quiescing: what has not reached the wire completes now, nothing is retried,
 * and attempts still on the wire after the grace are aborted.
 */
static void cancel_waiting(struct s3_client *cl, uint64_t now)
{
	if (now - cl->cancel_since >= S3_QUIESCE_GRACE_MS) {
		while (cl->inflight) {
			struct s3_op *op = cl->wire[0];

			wire_remove(cl, op);
			complete(cl, op, -ECANCELED);
		}
	}
	while (cl->retry) {
		struct s3_op *op = cl->retry;

		cl->retry = op->next;
		complete(cl, op, -ECANCELED);
	}
	while (cl->pending_head) {
		struct s3_op *op = cl->pending_head;

		cl->pending_head = op->next;
		complete(cl, op, -ECANCELED);
	}
	cl->pending_tail = NULL;
}

static void *client_main(void *arg)
{
	struct s3_client *cl = arg;

	for (;;) {
		uint64_t now, next_due = UINT64_MAX;
		struct s3_op *q;
		int running = 0, left, timeout;
		CURLMsg *msg;
		bool stop;

		pthread_mutex_lock(&cl->lock);
		q = cl->queue_head;
		cl->queue_head = cl->queue_tail = NULL;
		stop = cl->stopping;
		if (cl->cancel && !cl->cancelling) {
			cl->cancel_since = now_ms();
		}
		cl->cancelling = cl->cancel;
		pthread_mutex_unlock(&cl->lock);
		while (q) {
			struct s3_op *nx = q->next;

			list_append(&cl->pending_head, &cl->pending_tail, q);
			q = nx;
		}
		if (cl->cancelling) {
			cancel_waiting(cl, now_ms());
		}
		if (stop && !cl->pending_head && !cl->retry && cl->inflight == 0) {
			break;
		}
		now = now_ms();
		collect_due(cl, now, &next_due);
		start_pending(cl);
		curl_multi_perform(cl->multi, &running);
		while ((msg = curl_multi_info_read(cl->multi, &left))) {
			struct s3_op *op = NULL;

			if (msg->msg != CURLMSG_DONE) {
				continue;
			}
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&op);
			wire_remove(cl, op);
			finish_attempt(cl, op, msg->data.result);
		}
		if ((cl->pending_head && cl->inflight < cl->max_inflight)) {
			continue;
		}
		timeout = 1000;
		if (next_due != UINT64_MAX) {
			now = now_ms();
			timeout = next_due <= now ? 0 : (int)(next_due - now < 1000 ? next_due - now : 1000);
		}
		if (cl->cancelling && cl->inflight && timeout > 100) {
			timeout = 100; /* to abort at the end of the grace */
		}
		curl_multi_poll(cl->multi, NULL, 0, timeout, NULL);
	}
	return NULL;
}

/* --------------------------------------------------------------- public */

static enum s3_kind op_kind(enum obj_op o)
{
	switch (o) {
	case OBJ_GET:
		return S3_KIND_GET;
	case OBJ_PUT:
		return S3_KIND_PUT;
	case OBJ_DELETE_MULTI:
		return S3_KIND_DELETE_MULTI;
	default:
		return S3_KIND_DELETE;
	}
}

int s3_client_submit(struct s3_client *cl, struct obj_req *req)
{
	struct s3_op *op;
	int rc;

	if (!req->cb || !cl->done) {
		return -EINVAL;
	}
	rc = s3_check_req(req);
	if (rc < 0) {
		return rc;
	}
	op = op_get(cl);
	if (!op) {
		return -ENOMEM;
	}
	op->kind = op_kind(req->op);
	op->req = req;
	req->got = 0;
	req->etag[0] = '\0';
	if (req->op == OBJ_GET) {
		req->meta[0] = '\0';
	}
	rc = enqueue(cl, op);
	if (rc < 0) {
		op_put(cl, op);
		return rc;
	}
	reactor_queue_expect(cl->done);
	return 0;
}

void s3_client_quiesce(struct s3_client *cl)
{
	/* A client without a reactor (sync requests only) has nothing outstanding. */
	if (!cl->done || reactor_queue_pending(cl->done) == 0) {
		return;
	}
	pthread_mutex_lock(&cl->lock);
	cl->cancel = true;
	pthread_mutex_unlock(&cl->lock);
	curl_multi_wakeup(cl->multi);
	reactor_queue_drain(cl->done);
	pthread_mutex_lock(&cl->lock);
	cl->cancel = false;
	pthread_mutex_unlock(&cl->lock);
}

/* Run op to completion from a non-client thread. */
static int run_sync(struct s3_client *cl, struct s3_op *op)
{
	struct s3_waiter w = { .done = false };
	int rc;

	pthread_mutex_init(&w.m, NULL);
	pthread_cond_init(&w.c, NULL);
	op->waiter = &w;
	rc = enqueue(cl, op);
	if (rc == 0) {
		pthread_mutex_lock(&w.m);
		while (!w.done) {
			pthread_cond_wait(&w.c, &w.m);
		}
		pthread_mutex_unlock(&w.m);
		rc = op->status;
	}
	op->waiter = NULL; /* w dies with this frame */
	pthread_cond_destroy(&w.c);
	pthread_mutex_destroy(&w.m);
	return rc;
}

/* An actionable message for an open-time failure. */
static void describe(const struct s3_client *cl, const struct s3_op *op, int rc, char *err,
		     size_t errlen)
{
	const char *what = op->xerr.code[0] ? op->xerr.code : strerror(-rc);

	switch (rc) {
	case -EACCES:
		(void)snprintf(err, errlen,
			       "S3 bucket '%s' denied %s %s (%s): check the access key, secret key "
			       "(credentials from %s) and the system clock",
			       cl->bucket, kind_name(op->kind), op_key(op), what, cl->creds.source);
		break;
	case -ENXIO:
		(void)snprintf(err, errlen,
			       "S3 bucket '%s' does not exist at %s (NoSuchBucket): create it or fix "
			       "the bucket name",
			       cl->bucket, cl->scheme_host);
		break;
	case -ETIMEDOUT:
		(void)snprintf(err, errlen, "S3 %s %s at %s timed out after retries (%s)",
			       kind_name(op->kind), op_key(op), cl->scheme_host, what);
		break;
	default:
		(void)snprintf(err, errlen, "S3 %s %s in bucket '%s' at %s failed: %s (HTTP %ld)",
			       kind_name(op->kind), op_key(op), cl->bucket, cl->scheme_host, what,
			       op->http_status);
		break;
	}
}

int s3_client_run_sync(struct s3_client *cl, struct obj_req *req, char *err, size_t errlen)
{
	struct s3_op *op;
	int rc;

	rc = s3_check_req(req);
	if (rc < 0) {
		(void)snprintf(err, errlen, "invalid S3 request for key '%.255s'", req->key);
		req->status = rc;
		return rc;
	}
	op = calloc(1, sizeof(*op));
	if (!op) {
		return -ENOMEM;
	}
	op->cl = cl;
	op->kind = op_kind(req->op);
	op->req = req;
	req->got = 0;
	req->etag[0] = '\0';
	if (req->op == OBJ_GET) {
		req->meta[0] = '\0';
	}
	rc = run_sync(cl, op);
	if (rc < 0 && !is_answer(rc)) {
		describe(cl, op, rc, err, errlen);
	}
	req->status = rc;
	op_free(op);
	return rc;
}

struct list_ctx {
	struct s3_client *cl;
	obj_list_fn fn;
	void *arg;
	char last_key[1024];
};

static int list_key(void *arg, const char *key, uint64_t size)
{
	struct list_ctx *lc = arg;
	size_t pl = strlen(lc->cl->prefix);
	const char *rel = key;

	if (pl) {
		if (strncmp(key, lc->cl->prefix, pl) != 0 || key[pl] != '/') {
			return 0;
		}
		rel = key + pl + 1;
	}
	lc->fn(lc->arg, rel, size);
	return 0;
}

int s3_client_list(struct s3_client *cl, const char *prefix, obj_list_fn fn, void *arg,
		   char *err, size_t errlen)
{
	struct list_ctx lc = { .cl = cl, .fn = fn, .arg = arg };
	struct s3_op *op;
	char token[1024] = "";
	bool truncated;
	int rc;

	if (strlen(prefix) >= sizeof(op->list_prefix)) {
		return -ENAMETOOLONG;
	}
	op = calloc(1, sizeof(*op));
	if (!op) {
		return -ENOMEM;
	}
	do {
		CURL *easy = op->easy;
		char *body = op->body;
		size_t cap = op->body_cap;

		curl_slist_free_all(op->hdrs);
		memset(op, 0, sizeof(*op));
		op->easy = easy;
		op->body = body;
		op->body_cap = cap;
		op->cl = cl;
		op->kind = S3_KIND_LIST;
		op->list_max_keys = cl->list_max_keys;
		memcpy(op->list_prefix, prefix, strlen(prefix) + 1);
		memcpy(op->list_token, token, sizeof(token));
		rc = run_sync(cl, op);
		if (rc < 0) {
			describe(cl, op, rc, err, errlen);
			break;
		}
		rc = s3_xml_parse_list(op->body, op->body_len, list_key, &lc, &truncated, token,
				       sizeof(token));
		if (rc < 0) {
			(void)snprintf(err, errlen, "S3 bucket '%s': malformed ListObjectsV2 result",
				       cl->bucket);
			break;
		}
	} while (truncated);
	op_free(op);
	return rc;
}

void s3_client_stats(struct s3_client *cl, struct s3_stats *out)
{
	pthread_mutex_lock(&cl->lock);
	*out = cl->stats;
	pthread_mutex_unlock(&cl->lock);
}

/* ---------------------------------------------------------- lifecycle */

static pthread_once_t g_s3_global_once = PTHREAD_ONCE_INIT;
static CURLcode g_s3_global_rc;

static void global_init(void)
{
	g_s3_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
	xmlInitParser();
}

int s3_client_create(const struct s3_config *cfg, struct reactor *r, struct s3_client **out,
		     char *err, size_t errlen)
{
	struct s3_client *cl;
	int rc;

	*out = NULL;
	if (!s3_bucket_valid(cfg->bucket)) {
		(void)snprintf(err, errlen, "S3 bucket name '%s' is not valid",
			       cfg->bucket ? cfg->bucket : "");
		return -EINVAL;
	}
	pthread_once(&g_s3_global_once, global_init);
	if (g_s3_global_rc != CURLE_OK) {
		(void)snprintf(err, errlen, "libcurl initialization failed");
		return -EIO;
	}
	cl = calloc(1, sizeof(*cl));
	if (!cl) {
		return -ENOMEM;
	}
	pthread_mutex_init(&cl->lock, NULL);
	cl->path_style = cfg->path_style;
	cl->sign_payload = cfg->sign_payload;
	cl->max_inflight = cfg->max_inflight ? cfg->max_inflight : S3_DEFAULT_MAX_INFLIGHT;
	cl->wire = calloc(cl->max_inflight, sizeof(*cl->wire));
	cl->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : S3_DEFAULT_TIMEOUT_MS;
	cl->retry_deadline_ms =
		cfg->retry_deadline_ms ? cfg->retry_deadline_ms : S3_DEFAULT_RETRY_DEADLINE_MS;
	cl->list_max_keys = cfg->list_max_keys ? cfg->list_max_keys : 1000;
	cl->bucket = strdup(cfg->bucket);
	cl->prefix = s3_prefix_dup(cfg->prefix);
	cl->region = strdup(s3_default_region(cfg->region));
	cl->ca_file = cfg->ca_file ? strdup(cfg->ca_file) : NULL;
	cl->rng = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)cl << 16) ^ 0x9e3779b97f4a7c15ull;
	if (!cl->wire || !cl->bucket || !cl->prefix || !cl->region ||
	    (cfg->ca_file && !cl->ca_file)) {
		rc = -ENOMEM;
		goto err;
	}
	if (cfg->endpoint && *cfg->endpoint) {
		rc = s3_endpoint_split(cfg->endpoint, cl->path_style, cl->bucket, &cl->host, &cl->scheme_host, err, errlen);
	} else {
		char aws[256];

		/* AWS: virtual-hosted https://BUCKET.s3.REGION.amazonaws.com unless path_style. */
		(void)snprintf(aws, sizeof(aws), "https://s3.%s.amazonaws.com", cl->region);
		rc = s3_endpoint_split(aws, cl->path_style, cl->bucket, &cl->host, &cl->scheme_host, err, errlen);
	}
	if (rc < 0) {
		goto err;
	}
	if (cfg->access_key) {
		if (!cfg->secret_key || strlen(cfg->access_key) >= sizeof(cl->creds.access_key) ||
		    strlen(cfg->secret_key) >= sizeof(cl->creds.secret_key) ||
		    (cfg->session_token &&
		     strlen(cfg->session_token) >= sizeof(cl->creds.token))) {
			(void)snprintf(err, errlen, "S3 credentials: need an access key and a secret "
						    "key of sane length");
			rc = -EINVAL;
			goto err;
		}
		memcpy(cl->creds.access_key, cfg->access_key, strlen(cfg->access_key) + 1);
		memcpy(cl->creds.secret_key, cfg->secret_key, strlen(cfg->secret_key) + 1);
		if (cfg->session_token) {
			memcpy(cl->creds.token, cfg->session_token, strlen(cfg->session_token) + 1);
		}
		(void)snprintf(cl->creds.source, sizeof(cl->creds.source), "configuration");
	} else {
		rc = s3_creds_resolve(&cl->creds, err, errlen);
		if (rc < 0) {
			goto err;
		}
		cl->creds_refreshable = cl->creds.expiration != 0;
	}
	cl->multi = curl_multi_init();
	if (!cl->multi) {
		rc = -ENOMEM;
		goto err;
	}
	curl_multi_setopt(cl->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)cl->max_inflight);
	curl_multi_setopt(cl->multi, CURLMOPT_MAXCONNECTS, (long)cl->max_inflight);
	rc = r ? reactor_queue_create(r, on_done_reactor, &cl->done) : 0;
	if (rc < 0) {
		(void)snprintf(err, errlen, "cannot create the S3 completion queue: %s",
			       strerror(-rc));
		goto err;
	}
	rc = core_thread_spawn(&cl->thread, client_main, cl);
	if (rc < 0) {
		(void)snprintf(err, errlen, "cannot start the S3 client thread: %s", strerror(-rc));
		goto err;
	}
	cl->thread_started = true;
	LOG_INFO(S3_COMP, "bucket %s prefix '%s' at %s region %s, credentials from %s", cl->bucket,
		 cl->prefix, cl->scheme_host, cl->region, cl->creds.source);
	*out = cl;
	return 0;
err:
	s3_client_destroy(cl);
	return rc;
}

void s3_client_destroy(struct s3_client *cl)
{
	if (!cl) {
		return;
	}
	if (cl->thread_started) {
		s3_client_quiesce(cl);
		pthread_mutex_lock(&cl->lock);
		cl->stopping = true;
		pthread_mutex_unlock(&cl->lock);
		curl_multi_wakeup(cl->multi);
		pthread_join(cl->thread, NULL);
	}
	while (cl->free_ops) {
		struct s3_op *op = cl->free_ops;

		cl->free_ops = op->next;
		op_free(op);
	}
	reactor_queue_destroy(cl->done);
	curl_multi_cleanup(cl->multi);
	s3_creds_wipe(&cl->creds);
	pthread_mutex_destroy(&cl->lock);
	free(cl->wire);
	free(cl->bucket);
	free(cl->prefix);
	free(cl->region);
	free(cl->scheme_host);
	free(cl->host);
	free(cl->ca_file);
	free(cl);
}
