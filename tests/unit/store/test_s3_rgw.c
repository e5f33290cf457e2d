/*
 * test_s3_rgw.c - the S3 client against a real Ceph RGW (no mock): PUT/GET,
 * ranged GET, metadata, DELETE, paged listing, If-None-Match, wrong secret,
 * missing bucket, hundreds of requests in flight, DeleteObjects of 1000 keys
 * in one request, and retries while RGW is stopped and restarted.
 *
 * Uses the RGW named by S3_ENDPOINT/S3_KEY/S3_SECRET and RGW_DIR when set
 * (tests/integration/test_s3_client.sh), otherwise starts its own with
 * tests/integration/rgw.sh and stops it at the end. If no RGW can be had the
 * test FAILS: a skipped S3 test is not a passed one.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "s3tgt/core.h"
#include "s3/s3.h"
#include "s3/s3_internal.h"

static char g_dir[256];
static char g_rgw_sh[1024];
static bool g_own_rgw;
static char g_bucket[64];
static char g_endpoint[512], g_key[512], g_secret[512]; /* as long as an s3.env line */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static int read_env_file(void)
{
	char path[512], line[512];
	FILE *f;

	(void)snprintf(path, sizeof(path), "%s/s3.env", g_dir);
	f = fopen(path, "r");
	if (!f) {
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "S3_ENDPOINT=", 12) == 0) {
			(void)snprintf(g_endpoint, sizeof(g_endpoint), "%s", line + 12);
		} else if (strncmp(line, "S3_KEY=", 7) == 0) {
			(void)snprintf(g_key, sizeof(g_key), "%s", line + 7);
		} else if (strncmp(line, "S3_SECRET=", 10) == 0) {
			(void)snprintf(g_secret, sizeof(g_secret), "%s", line + 10);
		}
	}
	fclose(f);
	return g_endpoint[0] && g_key[0] && g_secret[0] ? 0 : -1;
}

static int setup(void **state)
{
	const char *src = getenv("S3TGT_SRC"), *dir = getenv("RGW_DIR");

	(void)state;
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	if (src) {
		(void)snprintf(g_rgw_sh, sizeof(g_rgw_sh), "%s/tests/integration/rgw.sh", src);
	} else {
		const char *slash = strrchr(__FILE__, '/');

		(void)snprintf(g_rgw_sh, sizeof(g_rgw_sh), "%.*s/../../integration/rgw.sh",
			       (int)(slash - __FILE__), __FILE__);
	}
	if (dir && *dir) {
		(void)snprintf(g_dir, sizeof(g_dir), "%s", dir);
	} else {
		(void)snprintf(g_dir, sizeof(g_dir), "/tmp/s3tgt-test-s3-rgw-%ld", (long)getpid());
		if (sh("bash %s start %s >/dev/null", g_rgw_sh, g_dir) != 0) {
			fprintf(stderr, "FAIL: cannot start RGW with %s (scripts/install-deps.sh test)\n",
				g_rgw_sh);
			return -1;
		}
		g_own_rgw = true;
	}
	if (read_env_file() < 0) {
		fprintf(stderr, "FAIL: no usable %s/s3.env\n", g_dir);
		return -1;
	}
	(void)snprintf(g_bucket, sizeof(g_bucket), "s3client-%ld", (long)getpid());
	if (sh("bash %s mkbucket %s %s", g_rgw_sh, g_dir, g_bucket) != 0) {
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (g_own_rgw) {
		(void)sh("bash %s stop %s 2>/dev/null", g_rgw_sh, g_dir);
		(void)sh("rm -rf %s", g_dir);
	}
	return 0;
}

static struct objstore *open_store_at(struct reactor *r, const char *endpoint,
				      const char *bucket, const char *secret, const char *prefix,
				      unsigned max_keys, unsigned deadline_ms, unsigned timeout_ms)
{
	struct s3_config cfg = {
		.bucket = bucket,
		.prefix = prefix,
		.endpoint = endpoint,
		.region = "us-east-1",
		.path_style = true,
		.access_key = g_key,
		.secret_key = secret,
		.list_max_keys = max_keys,
		.timeout_ms = timeout_ms,
		.retry_deadline_ms = deadline_ms,
	};
	struct objstore *os = NULL;
	char err[256] = "";

	assert_int_equal(s3_objstore_create(&cfg, r, &os, err, sizeof(err)), 0);
	return os;
}

static struct objstore *open_store(struct reactor *r, const char *bucket, const char *secret,
				   const char *prefix, unsigned max_keys, unsigned deadline_ms)
{
	return open_store_at(r, g_endpoint, bucket, secret, prefix, max_keys, deadline_ms, 5000);
}

static int put(struct objstore *os, const char *key, const void *buf, size_t len,
	       const char *meta, bool inm)
{
	struct obj_req req = { .op = OBJ_PUT, .buf = (void *)buf, .len = len,
			       .if_none_match = inm };

	(void)snprintf(req.key, sizeof(req.key), "%s", key);
	(void)snprintf(req.meta, sizeof(req.meta), "%s", meta ? meta : "");
	return os->ops->put_sync(os, &req);
}

static void test_roundtrip(void **state)
{
	struct objstore *os = open_store(NULL, g_bucket, g_secret, "/vol-rt/", 0, 0);
	static uint8_t data[1 << 20], back[1 << 20];
	struct obj_req g = { .op = OBJ_GET, .buf = back, .len = sizeof(back) };

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++) {
		data[i] = (uint8_t)(i * 7 + (i >> 12));
	}
	assert_int_equal(put(os, "chunks/0000000000000001", data, sizeof(data),
			     "v=1 crc=deadbeef", false), 0);
	(void)snprintf(g.key, sizeof(g.key), "chunks/0000000000000001");
	assert_int_equal(os->ops->get_sync(os, &g), 0);
	assert_int_equal(g.got, sizeof(data));
	assert_memory_equal(back, data, sizeof(data));
	assert_string_equal(g.meta, "v=1 crc=deadbeef");

	/* Ranged GET fetches only the asked bytes. */
	memset(back, 0, sizeof(back));
	g.range_off = 4093;
	g.range_len = 10000;
	assert_int_equal(os->ops->get_sync(os, &g), 0);
	assert_int_equal(g.got, 10000);
	assert_memory_equal(back, data + 4093, 10000);

	/* A body larger than the buffer is an error, not an overrun. */
	g.range_off = g.range_len = 0;
	g.len = 1000;
	assert_int_equal(os->ops->get_sync(os, &g), -EIO);
	g.len = sizeof(back);

	/* The key really lives under the trimmed volume prefix. */
	{
		struct objstore *raw = open_store(NULL, g_bucket, g_secret, NULL, 0, 0);
		struct obj_req rg = { .op = OBJ_GET, .buf = back, .len = sizeof(back) };

		(void)snprintf(rg.key, sizeof(rg.key), "vol-rt/chunks/0000000000000001");
		assert_int_equal(raw->ops->get_sync(raw, &rg), 0);
		assert_int_equal(rg.got, sizeof(data));
		raw->ops->destroy(raw);
	}

	/* DELETE, twice (missing is success), then GET says ENOENT. */
	{
		struct obj_req d = { .op = OBJ_DELETE };

		(void)snprintf(d.key, sizeof(d.key), "chunks/0000000000000001");
		assert_int_equal(os->ops->put_sync(os, &d), 0);
		assert_int_equal(os->ops->put_sync(os, &d), 0);
	}
	assert_int_equal(os->ops->get_sync(os, &g), -ENOENT);

	/* Empty objects round-trip too. */
	assert_int_equal(put(os, "empty", NULL, 0, NULL, false), 0);
	(void)snprintf(g.key, sizeof(g.key), "empty");
	assert_int_equal(os->ops->get_sync(os, &g), 0);
	assert_int_equal(g.got, 0);
	assert_string_equal(g.meta, "");
	os->ops->destroy(os);
}

static void test_if_none_match(void **state)
{
	struct objstore *os = open_store(NULL, g_bucket, g_secret, "vol-inm", 0, 0);

	(void)state;
	assert_int_equal(put(os, "manifest", "first", 5, "m1", true), 0);
	assert_int_equal(put(os, "manifest", "second", 6, "m2", true), -EEXIST);
	{
		char back[16] = "";
		struct obj_req g = { .op = OBJ_GET, .buf = back, .len = sizeof(back) };

		(void)snprintf(g.key, sizeof(g.key), "manifest");
		assert_int_equal(os->ops->get_sync(os, &g), 0);
		assert_int_equal(g.got, 5);
		assert_memory_equal(back, "first", 5);
		assert_string_equal(g.meta, "m1");
	}
	os->ops->destroy(os);
}

/*
 * If-Match on PUT (the lease's compare-and-swap): RGW 16 takes the ETag
 * unquoted; a stale or wrong tag, or a missing object, is -ESTALE and
 * leaves the object alone. The PUT and the GET report the same tag.
 */
static void test_if_match(void **state)
{
	struct objstore *os = open_store(NULL, g_bucket, g_secret, "/vol-im/", 0, 0);
	struct obj_req p = {.op = OBJ_PUT, .buf = "first", .len = 5};
	struct obj_req g = {.op = OBJ_GET};
	char first[OBJ_ETAG_MAX], back[16] = "";

	(void)state;
	snprintf(p.key, sizeof(p.key), "lease");
	assert_int_equal(os->ops->put_sync(os, &p), 0);
	assert_true(strlen(p.etag) >= 32);
	assert_null(strchr(p.etag, '"'));
	snprintf(first, sizeof(first), "%s", p.etag);
	p.buf = "second";
	p.len = 6;
	snprintf(p.if_match, sizeof(p.if_match), "0123456789abcdef0123456789abcdef");
	assert_int_equal(os->ops->put_sync(os, &p), -ESTALE);
	snprintf(p.if_match, sizeof(p.if_match), "%s", first);
	assert_int_equal(os->ops->put_sync(os, &p), 0);
	assert_string_not_equal(p.etag, first);
	p.buf = "third";
	p.len = 5;
	snprintf(p.if_match, sizeof(p.if_match), "%s", first); /* stale now */
	assert_int_equal(os->ops->put_sync(os, &p), -ESTALE);
	snprintf(g.key, sizeof(g.key), "lease");
	g.buf = back;
	g.len = sizeof(back) - 1;
	assert_int_equal(os->ops->get_sync(os, &g), 0);
	assert_int_equal(g.got, 6);
	assert_memory_equal(back, "second", 6);
	snprintf(p.key, sizeof(p.key), "no-such-lease");
	assert_int_equal(os->ops->put_sync(os, &p), -ESTALE);
	os->ops->destroy(os);
}

struct listed {
	int n;
	bool seen[64];
	bool bad;
};

static void on_list(void *arg, const char *key, uint64_t size)
{
	struct listed *l = arg;
	unsigned idx;

	if (sscanf(key, "chunks/%08u", &idx) != 1 || idx >= 64 || l->seen[idx] || size != idx) {
		l->bad = true;
		return;
	}
	l->seen[idx] = true;
	l->n++;
}

static void test_list_paged(void **state)
{
	/* 7 keys per page: 25 chunks take 4 pages. */
	struct objstore *os = open_store(NULL, g_bucket, g_secret, "vol-list", 7, 0);
	static char buf[64];
	struct listed l = { .n = 0 };

	(void)state;
	for (unsigned i = 0; i < 25; i++) {
		char key[64];

		(void)snprintf(key, sizeof(key), "chunks/%08u", i);
		assert_int_equal(put(os, key, buf, i, NULL, false), 0);
	}
	/* Outside the listed prefix: must not show up. */
	assert_int_equal(put(os, "manifest", buf, 3, NULL, false), 0);
	{
		struct objstore *other = open_store(NULL, g_bucket, g_secret, "vol-listx", 0, 0);

		assert_int_equal(put(other, "chunks/00000001", buf, 1, NULL, false), 0);
		other->ops->destroy(other);
	}
	assert_int_equal(os->ops->list(os, "chunks/", on_list, &l), 0);
	assert_false(l.bad);
	assert_int_equal(l.n, 25);
	os->ops->destroy(os);
}

static void test_wrong_secret(void **state)
{
	struct objstore *os = open_store(NULL, g_bucket, "not-the-secret", "v", 0, 0);
	struct listed l = { .n = 0 };

	(void)state;
	assert_int_equal(put(os, "x", "a", 1, NULL, false), -EACCES);
	assert_non_null(strstr(os->err, "check the access key"));
	assert_null(strstr(os->err, "not-the-secret"));
	assert_int_equal(os->ops->list(os, "", on_list, &l), -EACCES);
	os->ops->destroy(os);
}

static void test_missing_bucket(void **state)
{
	struct objstore *os = open_store(NULL, "no-such-bucket-s3tgt", g_secret, "v", 0, 0);
	struct listed l = { .n = 0 };
	char back[8];
	struct obj_req g = { .op = OBJ_GET, .buf = back, .len = sizeof(back) };

	(void)state;
	(void)snprintf(g.key, sizeof(g.key), "manifest");
	assert_int_equal(os->ops->get_sync(os, &g), -ENXIO);
	assert_non_null(strstr(os->err, "no-such-bucket-s3tgt"));
	assert_int_equal(os->ops->list(os, "", on_list, &l), -ENXIO);
	os->ops->destroy(os);
}

/* ----------------------------------------------------------- async */

#define NASYNC 200
#define ASYNC_LEN 65536

struct async_ctx {
	struct reactor *r;
	int left;
	int failed;
	int last_status;
	bool on_reactor;
};

static void async_cb(struct obj_req *req)
{
	struct async_ctx *c = req->cb_arg;

	if (!reactor_is_current(c->r)) {
		c->on_reactor = false;
	}
	if (req->status != 0) {
		c->failed++;
		c->last_status = req->status;
	}
	if (--c->left == 0) {
		reactor_stop(c->r);
	}
}

static void test_async_many(void **state)
{
	struct reactor *r = NULL;
	struct objstore *os;
	static struct obj_req reqs[NASYNC];
	static uint8_t bufs[NASYNC][ASYNC_LEN];
	struct async_ctx c = { .on_reactor = true };
	struct s3_stats st;

	(void)state;
	assert_int_equal(reactor_create(&r), 0);
	os = open_store(r, g_bucket, g_secret, "vol-async", 0, 0);
	c.r = r;
	for (int pass = 0; pass < 2; pass++) {
		c.left = NASYNC;
		for (int i = 0; i < NASYNC; i++) {
			struct obj_req *q = &reqs[i];

			memset(q, 0, sizeof(*q));
			q->op = pass == 0 ? OBJ_PUT : OBJ_GET;
			(void)snprintf(q->key, sizeof(q->key), "chunks/%04d", i);
			if (pass == 0) {
				memset(bufs[i], i & 0xff, ASYNC_LEN);
			} else {
				memset(bufs[i], 0xee, ASYNC_LEN);
			}
			q->buf = bufs[i];
			q->len = ASYNC_LEN;
			q->cb = async_cb;
			q->cb_arg = &c;
			assert_int_equal(os->ops->submit(os, q), 0);
		}
		assert_int_equal(reactor_run(r), 0);
		assert_int_equal(c.failed, 0);
		assert_true(c.on_reactor);
	}
	for (int i = 0; i < NASYNC; i++) {
		assert_int_equal(reqs[i].got, ASYNC_LEN);
		for (int j = 0; j < ASYNC_LEN; j += 4096) {
			assert_int_equal(bufs[i][j], i & 0xff);
		}
	}
	s3_objstore_stats(os, &st);
	assert_true(st.requests[S3_REQ_PUT][S3_ST_2XX] >= NASYNC);
	assert_true(st.requests[S3_REQ_GET][S3_ST_2XX] >= NASYNC);
	assert_true(st.bytes_out >= (uint64_t)NASYNC * ASYNC_LEN);
	assert_int_equal(st.inflight, 0);
	os->ops->destroy(os);
	reactor_destroy(r);
}

/*
 * DELETE_MULTI: the most keys S3 takes in one POST ?delete, some present, most
 * missing (success too), some needing XML escapes, under a prefix needing one.
 */
static void test_delete_multi(void **state)
{
	enum { N = OBJ_DELETE_MULTI_MAX };
	static char names[N][64];
	static const char *keys[N];
	static int status[N];
	struct reactor *r = NULL;
	struct objstore *os;
	struct async_ctx c = { .left = 1, .on_reactor = true };
	struct obj_req q = { .op = OBJ_DELETE_MULTI, .keys = keys, .key_status = status };
	struct listed l = { .n = 0 };
	struct s3_stats st;
	char back[8];

	(void)state;
	assert_int_equal(reactor_create(&r), 0);
	c.r = r;
	os = open_store(r, g_bucket, g_secret, "vol-dm&<x>", 0, 0);
	for (int i = 0; i < N; i++) {
		(void)snprintf(names[i], sizeof(names[i]), "chunks/%04d%s", i,
			       i % 40 == 0 ? " a&b<c>'\"" : "");
		keys[i] = names[i];
		status[i] = 99;
		if (i % 20 == 0) {
			assert_int_equal(put(os, names[i], "x", 1, NULL, false), 0);
		}
	}
	/* Refused before any request: no keys, too many, an empty key. */
	q.cb = async_cb;
	q.cb_arg = &c;
	q.nkeys = 0;
	assert_int_equal(os->ops->submit(os, &q), -EINVAL);
	q.nkeys = N + 1;
	assert_int_equal(os->ops->submit(os, &q), -EINVAL);
	keys[1] = "";
	q.nkeys = N;
	assert_int_equal(os->ops->submit(os, &q), -EINVAL);
	keys[1] = names[1];

	assert_int_equal(os->ops->submit(os, &q), 0);
	assert_int_equal(reactor_run(r), 0);
	assert_true(c.on_reactor);
	assert_int_equal(c.failed, 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(status[i], 0);
	}
	for (int i = 0; i < N; i += 20) {
		struct obj_req g = { .op = OBJ_GET, .buf = back, .len = sizeof(back) };

		(void)snprintf(g.key, sizeof(g.key), "%.63s", names[i]);
		assert_int_equal(os->ops->get_sync(os, &g), -ENOENT);
	}
	assert_int_equal(os->ops->list(os, "chunks/", on_list, &l), 0);
	assert_int_equal(l.n, 0);
	s3_objstore_stats(os, &st);
	assert_int_equal(st.requests[S3_REQ_DELETE_MULTI][S3_ST_2XX], 1);
	for (int k = 0; k < S3_ST_CLASSES; k++) {
		assert_int_equal(st.requests[S3_REQ_DELETE][k], 0);
	}
	assert_int_equal(st.inflight, 0);
	os->ops->destroy(os);
	reactor_destroy(r);
}

static void *restart_later(void *arg)
{
	(void)arg;
	sleep(2);
	(void)sh("bash %s start-rgw %s", g_rgw_sh, g_dir);
	return NULL;
}

static void test_retry_rgw_restart(void **state)
{
	struct reactor *r = NULL;
	struct objstore *os;
	struct obj_req q = { .op = OBJ_PUT };
	struct async_ctx c = { .left = 1, .on_reactor = true };
	struct s3_stats st;
	pthread_t t;
	uint64_t t0;

	(void)state;
	assert_int_equal(reactor_create(&r), 0);
	c.r = r;

	/* RGW down, short deadline: fails (after retries) with an error, no hang. */
	assert_int_equal(sh("bash %s stop-rgw %s", g_rgw_sh, g_dir), 0);
	os = open_store(r, g_bucket, g_secret, "vol-retry", 0, 1500);
	(void)snprintf(q.key, sizeof(q.key), "chunks/1");
	q.buf = "payload";
	q.len = 7;
	q.cb = async_cb;
	q.cb_arg = &c;
	t0 = reactor_now_ms();
	assert_int_equal(os->ops->submit(os, &q), 0);
	assert_int_equal(reactor_run(r), 0);
	assert_int_equal(c.failed, 1);
	assert_true(c.last_status == -EIO || c.last_status == -ETIMEDOUT);
	assert_true(reactor_now_ms() - t0 < 5000);
	s3_objstore_stats(os, &st);
	assert_true(st.retries >= 1);
	assert_true(st.requests[S3_REQ_PUT][S3_ST_NET] >= 2);
	os->ops->destroy(os);

	/*
	 * A change made under a lease is retried only while the lease is
	 * confirmed (obj_req.valid_until): here 300 ms, against a 30 s deadline.
	 */
	{
		_Atomic uint64_t until = reactor_now_ms() + 300;

		os = open_store(r, g_bucket, g_secret, "vol-retry", 0, 30000);
		c.left = 1;
		c.failed = 0;
		q.valid_until = &until;
		t0 = reactor_now_ms();
		assert_int_equal(os->ops->submit(os, &q), 0);
		assert_int_equal(reactor_run(r), 0);
		assert_int_equal(c.failed, 1);
		assert_int_equal(c.last_status, -ETIMEDOUT);
		assert_true(reactor_now_ms() - t0 < 5000);
		q.valid_until = NULL;
		os->ops->destroy(os);
	}

	/* RGW comes back within the deadline: the same request succeeds. */
	os = open_store(r, g_bucket, g_secret, "vol-retry", 0, 30000);
	c.left = 1;
	c.failed = 0;
	assert_int_equal(pthread_create(&t, NULL, restart_later, NULL), 0);
	assert_int_equal(os->ops->submit(os, &q), 0);
	assert_int_equal(reactor_run(r), 0);
	pthread_join(t, NULL);
	assert_int_equal(c.failed, 0);
	s3_objstore_stats(os, &st);
	assert_true(st.retries >= 1);
	{
		char back[16];
		struct obj_req g = { .op = OBJ_GET, .buf = back, .len = sizeof(back) };

		(void)snprintf(g.key, sizeof(g.key), "chunks/1");
		assert_int_equal(os->ops->get_sync(os, &g), 0);
		assert_int_equal(g.got, 7);
		assert_memory_equal(back, "payload", 7);
	}
	os->ops->destroy(os);
	reactor_destroy(r);
}

struct quiesce_ctx {
	pthread_t owner;
	int done;
	int other_thread;
	int bad_status;
};

static void quiesce_cb(struct obj_req *req)
{
	struct quiesce_ctx *c = req->cb_arg;

	c->done++;
	if (!pthread_equal(pthread_self(), c->owner)) {
		c->other_thread++;
	}
	/* Waiting: cancelled; an attempt on the wire when quiesce began: its own error. */
	if (req->status != -ECANCELED && req->status != -EIO) {
		c->bad_status++;
	}
}

static void submit_puts(struct objstore *os, struct obj_req *q, int n, struct quiesce_ctx *c)
{
	for (int i = 0; i < n; i++) {
		memset(&q[i], 0, sizeof(q[i]));
		q[i].op = OBJ_PUT;
		(void)snprintf(q[i].key, sizeof(q[i].key), "chunks/q%d", i);
		q[i].buf = "payload";
		q[i].len = 7;
		q[i].cb = quiesce_cb;
		q[i].cb_arg = c;
		assert_int_equal(os->ops->submit(os, &q[i]), 0);
	}
}

/*
 * With S3 unreachable, requests retry until a deadline (60 s here). quiesce
 * must not wait for it: what waits is cancelled and every callback runs, on
 * the caller, before it returns; destroy does the same for what is still
 * outstanding. Before quiesce existed, destroy waited out the deadline and
 * the callbacks were posted to a reactor that no longer ran: leaked requests
 * (the shutdown leak of a lease renewal caught in an S3 outage).
 */
static void test_quiesce_outage(void **state)
{
	struct reactor *r = NULL;
	struct objstore *os;
	struct obj_req q[3];
	struct quiesce_ctx c = { .owner = pthread_self() };
	struct async_ctx ok = { .left = 1, .on_reactor = true };
	uint64_t t0;

	(void)state;
	assert_int_equal(reactor_create(&r), 0);
	ok.r = r;
	assert_int_equal(sh("bash %s stop-rgw %s", g_rgw_sh, g_dir), 0);
	os = open_store(r, g_bucket, g_secret, "vol-quiesce", 0, 60000);
	submit_puts(os, q, 3, &c);
	usleep(300 * 1000); /* let the first attempts fail and wait for a retry */
	t0 = reactor_now_ms();
	os->ops->quiesce(os);
	assert_int_equal(c.done, 3);
	assert_int_equal(c.other_thread, 0);
	assert_int_equal(c.bad_status, 0);
	assert_true(reactor_now_ms() - t0 < 30000);

	/* Still usable: S3 is back, a new request is carried out. */
	assert_int_equal(sh("bash %s start-rgw %s", g_rgw_sh, g_dir), 0);
	q[0].cb = async_cb;
	q[0].cb_arg = &ok;
	assert_int_equal(os->ops->submit(os, &q[0]), 0);
	assert_int_equal(reactor_run(r), 0);
	assert_int_equal(ok.failed, 0);
	assert_true(ok.on_reactor);
	os->ops->destroy(os);

	/* destroy with requests outstanding runs their callbacks before it returns. */
	assert_int_equal(sh("bash %s stop-rgw %s", g_rgw_sh, g_dir), 0);
	os = open_store(r, g_bucket, g_secret, "vol-quiesce", 0, 60000);
	c.done = 0;
	submit_puts(os, q, 2, &c);
	t0 = reactor_now_ms();
	os->ops->destroy(os);
	assert_int_equal(c.done, 2);
	assert_int_equal(c.other_thread, 0);
	assert_int_equal(c.bad_status, 0);
	assert_true(reactor_now_ms() - t0 < 30000);
	assert_int_equal(sh("bash %s start-rgw %s", g_rgw_sh, g_dir), 0);
	reactor_destroy(r);
}

/*
 * An endpoint that takes the connection and never answers (a black hole):
 * the attempt on the wire would last the whole request timeout (60 s here);
 * quiesce aborts it after its short grace instead of holding the caller.
 */
static void test_quiesce_blackhole(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t salen = sizeof(sa);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char endpoint[64];
	struct reactor *r = NULL;
	struct objstore *os;
	struct obj_req q[1];
	struct quiesce_ctx c = { .owner = pthread_self() };
	uint64_t t0;

	(void)state;
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &salen), 0);
	(void)snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%u", ntohs(sa.sin_port));
	assert_int_equal(reactor_create(&r), 0);
	os = open_store_at(r, endpoint, g_bucket, g_secret, "vol-hole", 0, 120000, 60000);
	submit_puts(os, q, 1, &c);
	usleep(300 * 1000); /* connected, request sent, no answer */
	t0 = reactor_now_ms();
	os->ops->quiesce(os);
	assert_int_equal(c.done, 1);
	assert_int_equal(q[0].status, -ECANCELED);
	assert_true(reactor_now_ms() - t0 < 30000);
	os->ops->destroy(os);
	reactor_destroy(r);
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),	cmocka_unit_test(test_if_none_match),
		cmocka_unit_test(test_if_match),
		cmocka_unit_test(test_list_paged),	cmocka_unit_test(test_wrong_secret),
		cmocka_unit_test(test_missing_bucket),	cmocka_unit_test(test_async_many),
		cmocka_unit_test(test_delete_multi),	cmocka_unit_test(test_retry_rgw_restart),
		cmocka_unit_test(test_quiesce_outage),	cmocka_unit_test(test_quiesce_blackhole),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
