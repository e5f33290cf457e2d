/*
 * test_api.c - the /v1/ router against a real iSCSI server object and RAM
 * LUNs (status codes, field names in errors, write-only secrets, metrics),
 * persistence through a second state loading the saved file, and the HTTP
 * layer end to end over the Unix socket (413, 405, mode 0600, TCP token).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mgmt_internal.h"
#include "s3tgt/cache.h"
#include "s3tgt/core.h"
#include "s3tgt/scsi.h"

#define T1 "iqn.2026-11.io.s3tgt:api1"
#define I1 "iqn.2026-11.io.s3tgt:init1"

struct fixture {
	char dir[64];
	char cfgpath[128];
	struct reactor *r;
	struct iscsi_server *srv;
	struct mgmt_state *s;
};

static struct fixture *g_fx;

static void fx_state(struct fixture *fx, struct mgmt_state **out)
{
	struct mgmt_state_opts o = {
	    .r = fx->r,
	    .srv = fx->srv,
	    .config_path = fx->cfgpath,
	    .version = "9.9",
	};
	char err[256] = "";

	assert_int_equal(mgmt_state_create(&o, out), 0);
	if (mgmt_state_load(*out, true, err, sizeof(err)) != 0) {
		fail_msg("load: %s", err);
	}
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/s3tgt-test-api-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->cfgpath, sizeof(fx->cfgpath), "%s/s3tgtd.json", fx->dir);
	assert_int_equal(reactor_create(&fx->r), 0);
	assert_int_equal(iscsi_server_create(fx->r, &fx->srv), 0);
	fx_state(fx, &fx->s);
	g_fx = fx;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char cmd[160];

	mgmt_state_destroy(fx->s);
	iscsi_server_destroy(fx->srv);
	reactor_destroy(fx->r);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->dir);
	assert_int_equal(system(cmd), 0);
	free(fx);
	return 0;
}

struct call {
	struct mgmt_req req;
	json_t *j;
};

static void answered(struct mgmt_req *req)
{
	*(bool *)req->done_arg = true;
	reactor_stop(g_fx->r);
}

/* Deletes answer once their LUs are flushed: run the reactor until then. */
static struct call *call(struct mgmt_state *s, const char *method, const char *path,
			 const char *body, bool force)
{
	static struct call c;
	static bool done;

	mgmt_req_fini(&c.req);
	json_decref(c.j);
	memset(&c, 0, sizeof(c));
	c.req.method = method;
	c.req.path = path;
	c.req.body = body;
	c.req.body_len = body ? strlen(body) : 0;
	c.req.force = force;
	c.req.done = answered;
	c.req.done_arg = &done;
	done = false;
	if (!mgmt_api_handle(s, &c.req)) {
		assert_int_equal(reactor_run(g_fx->r), 0);
		assert_true(done);
	}
	c.j = c.req.reply ? json_loads(c.req.reply, 0, NULL) : NULL;
	return &c;
}

static void expect_status(struct call *c, unsigned status, const char *field)
{
	if (c->req.status != status) {
		fail_msg("expected %u, got %u: %s", status, c->req.status,
			 c->req.reply ? c->req.reply : "");
	}
	if (field) {
		const char *f = json_string_value(json_object_get(c->j, "field"));
		if (!f || strcmp(f, field) != 0) {
			fail_msg("expected field '%s' in %s", field, c->req.reply);
		}
		assert_non_null(json_string_value(json_object_get(c->j, "error")));
	}
}

static void test_version_and_routes(void **state)
{
	struct fixture *fx = *state;
	struct call *c;

	c = call(fx->s, "GET", "/v1/version", NULL, false);
	expect_status(c, 200, NULL);
	assert_string_equal(json_string_value(json_object_get(c->j, "api")), "v1");
	assert_string_equal(json_string_value(json_object_get(c->j, "version")), "9.9");
	expect_status(call(fx->s, "GET", "/v2/version", NULL, false), 404, "path");
	expect_status(call(fx->s, "GET", "/v1/nothing", NULL, false), 404, "path");
	c = call(fx->s, "POST", "/v1/version", NULL, false);
	expect_status(c, 405, "method");
	assert_string_equal(c->req.allow, "GET");
	c = call(fx->s, "PATCH", "/v1/targets", NULL, false);
	expect_status(c, 405, "method");
	assert_string_equal(c->req.allow, "GET, POST");
}

static void test_targets(void **state)
{
	struct fixture *fx = *state;
	struct call *c;

	expect_status(call(fx->s, "POST", "/v1/targets", NULL, false), 400, "body");
	expect_status(call(fx->s, "POST", "/v1/targets", "{", false), 400, "body");
	expect_status(call(fx->s, "POST", "/v1/targets", "[]", false), 400, "body");
	expect_status(call(fx->s, "POST", "/v1/targets", "{\"name\":\"bad\"}", false), 400, "name");
	expect_status(call(fx->s, "POST", "/v1/targets", "{\"name\":1}", false), 400, "name");
	expect_status(call(fx->s, "POST", "/v1/targets", "{\"nam\":\"x\"}", false), 400, "nam");
	c = call(fx->s, "POST", "/v1/targets", "{\"name\":\"" T1 "\",\"alias\":\"disk\"}", false);
	expect_status(c, 201, NULL);
	assert_string_equal(json_string_value(json_object_get(c->j, "alias")), "disk");
	expect_status(call(fx->s, "POST", "/v1/targets", "{\"name\":\"" T1 "\"}", false), 409,
		      "name");
	assert_non_null(iscsi_server_find_target(fx->srv, T1));
	c = call(fx->s, "GET", "/v1/targets", NULL, false);
	expect_status(c, 200, NULL);
	assert_int_equal(json_array_size(c->j), 1);
	expect_status(call(fx->s, "GET", "/v1/targets/" T1, NULL, false), 200, NULL);
	expect_status(call(fx->s, "GET", "/v1/targets/iqn.2026-11.io.s3tgt:nope", NULL, false), 404,
		      "target");
	expect_status(call(fx->s, "DELETE", "/v1/targets/" T1, NULL, false), 204, NULL);
	assert_null(iscsi_server_find_target(fx->srv, T1));
	expect_status(call(fx->s, "DELETE", "/v1/targets/" T1, NULL, false), 404, "target");
}

static void test_luns(void **state)
{
	struct fixture *fx = *state;
	struct call *c;

	expect_status(call(fx->s, "POST", "/v1/targets", "{\"name\":\"" T1 "\"}", false), 201,
		      NULL);
	expect_status(call(fx->s, "POST", "/v1/targets/" T1 "/luns",
			   "{\"lun\":16384,\"uri\":\"ram:?size=1M\"}", false),
		      400, "lun");
	expect_status(call(fx->s, "POST", "/v1/targets/" T1 "/luns",
			   "{\"lun\":\"0\",\"uri\":\"ram:?size=1M\"}", false),
		      400, "lun");
	expect_status(call(fx->s, "POST", "/v1/targets/" T1 "/luns",
			   "{\"lun\":0,\"uri\":\"nope:?size=1M\"}", false),
		      400, "uri");
	expect_status(call(fx->s, "POST", "/v1/targets/" T1 "/luns",
			   "{\"lun\":0,\"uri\":\"ram:?size=1M&bogus=1\"}", false),
		      400, "uri");
	expect_status(call(fx->s, "POST", "/v1/targets/iqn.2026-11.io.s3tgt:x/luns",
			   "{\"lun\":0,\"uri\":\"ram:?size=1M\"}", false),
		      404, "target");
	c = call(fx->s, "POST", "/v1/targets/" T1 "/luns", "{\"lun\":0,\"uri\":\"ram:?size=1M\"}",
		 false);
	expect_status(c, 201, NULL);
	assert_int_equal(json_integer_value(json_object_get(c->j, "size")), 1048576);
	expect_status(call(fx->s, "POST", "/v1/targets/" T1 "/luns",
			   "{\"lun\":0,\"uri\":\"ram:?size=1M\"}", false),
		      409, "lun");
	expect_status(call(fx->s, "POST", "/v1/targets/" T1 "/luns",
			   "{\"lun\":7,\"uri\":\"ram:?size=2M&block_size=4096\"}", false),
		      201, NULL);
	/* write-back cache options stack the cache (s3tgt/cache.h) */
	expect_status(call(fx->s, "POST", "/v1/targets/" T1 "/luns",
			   "{\"lun\":9,\"uri\":\"ram:?size=8M&cache_size=4M&writeback=1\"}", false),
		      201, NULL);
	expect_status(call(fx->s, "POST", "/v1/targets/" T1 "/luns",
			   "{\"lun\":10,\"uri\":\"ram:?size=2M&cache_size=lots\"}", false),
		      400, "uri");
	c = call(fx->s, "GET", "/metrics", NULL, false);
	assert_non_null(
	    strstr(c->req.reply, "s3tgt_cache_dirty_bytes{target=\"" T1 "\",lun=\"9\"} 0"));
	expect_status(call(fx->s, "DELETE", "/v1/targets/" T1 "/luns/9", NULL, false), 204, NULL);
	c = call(fx->s, "GET", "/v1/luns", NULL, false);
	expect_status(c, 200, NULL);
	assert_int_equal(json_array_size(c->j), 2);
	c = call(fx->s, "GET", "/v1/targets/" T1 "/luns", NULL, false);
	assert_int_equal(json_array_size(c->j), 2);
	assert_non_null(scsi_target_get_lu(iscsi_server_find_target(fx->srv, T1), 7));

	/* resize: grow only, and only stores that can */
	expect_status(call(fx->s, "PUT", "/v1/targets/" T1 "/luns/0", "{\"size\":\"4M\"}", false),
		      400, "size");
	char body[256];
	snprintf(body, sizeof(body), "{\"lun\":0,\"uri\":\"file:%s/lun0.img?size=1M\"}", fx->dir);
	expect_status(call(fx->s, "DELETE", "/v1/targets/" T1 "/luns/0", NULL, false), 204, NULL);
	expect_status(call(fx->s, "POST", "/v1/targets/" T1 "/luns", body, false), 201, NULL);
	c = call(fx->s, "PUT", "/v1/targets/" T1 "/luns/0", "{\"size\":\"4M\"}", false);
	expect_status(c, 200, NULL);
	assert_int_equal(json_integer_value(json_object_get(c->j, "size")), 4 * 1048576);
	assert_non_null(strstr(json_string_value(json_object_get(c->j, "uri")), "size=4194304"));
	expect_status(call(fx->s, "PUT", "/v1/targets/" T1 "/luns/0", "{\"size\":\"1M\"}", false),
		      400, "size");
	expect_status(call(fx->s, "PUT", "/v1/targets/" T1 "/luns/0", "{\"size\":\"lots\"}", false),
		      400, "size");
	expect_status(call(fx->s, "PUT", "/v1/targets/" T1 "/luns/3", "{\"size\":\"8M\"}", false),
		      404, "lun");
	expect_status(call(fx->s, "GET", "/v1/targets/" T1 "/luns/abc", NULL, false), 400, "lun");

	expect_status(call(fx->s, "DELETE", "/v1/targets/" T1 "/luns/7", NULL, false), 204, NULL);
	assert_null(scsi_target_get_lu(iscsi_server_find_target(fx->srv, T1), 7));
	expect_status(call(fx->s, "DELETE", "/v1/targets/" T1 "/luns/7", NULL, false), 404, "lun");

	c = call(fx->s, "GET", "/metrics", NULL, false);
	expect_status(c, 200, NULL);
	assert_non_null(
	    strstr(c->req.reply, "s3tgt_lun_ops_total{target=\"" T1 "\",lun=\"0\",op=\"read\"} 0"));
	assert_non_null(strstr(c->req.reply, "s3tgt_lun_latency_seconds_bucket{target=\"" T1
					     "\",lun=\"0\",op=\"write\",le=\"+Inf\"} 0"));
	assert_non_null(
	    strstr(c->req.reply, "s3tgt_lun_size_bytes{target=\"" T1 "\",lun=\"0\"} 4194304"));
	assert_non_null(strstr(c->req.reply, "s3tgt_sessions{target=\"" T1 "\"} 0"));
}

static void test_acl(void **state)
{
	struct fixture *fx = *state;
	struct call *c;

	expect_status(call(fx->s, "POST", "/v1/targets", "{\"name\":\"" T1 "\"}", false), 201,
		      NULL);
	c = call(fx->s, "GET", "/v1/targets/" T1 "/acl", NULL, false);
	expect_status(c, 200, NULL);
	assert_int_equal(json_array_size(json_object_get(c->j, "initiators")), 0);
	expect_status(call(fx->s, "POST", "/v1/targets/" T1 "/acl/initiators",
			   "{\"name\":\"not a name\"}", false),
		      400, "name");
	expect_status(call(fx->s, "POST", "/v1/targets/" T1 "/acl/initiators",
			   "{\"name\":\"" I1 "\"}", false),
		      201, NULL);
	assert_false(iscsi_acl_is_open(iscsi_server_get_acl(fx->srv, T1)));
	assert_false(iscsi_acl_allows(iscsi_server_get_acl(fx->srv, T1),
				      "iqn.2026-11.io.s3tgt:other", NULL));
	expect_status(call(fx->s, "POST", "/v1/targets/" T1 "/acl/initiators",
			   "{\"name\":\"" I1 "\"}", false),
		      409, "name");
	expect_status(call(fx->s, "POST", "/v1/targets/" T1 "/acl/networks",
			   "{\"cidr\":\"10.0.0.1/8\"}", false),
		      400, "cidr");
	expect_status(call(fx->s, "POST", "/v1/targets/" T1 "/acl/networks",
			   "{\"cidr\":\"127.0.0.0/8\"}", false),
		      201, NULL);
	c = call(fx->s, "GET", "/v1/targets/" T1 "/acl", NULL, false);
	assert_int_equal(json_array_size(json_object_get(c->j, "networks")), 1);
	{
		struct mgmt_req r = {.method = "DELETE",
				     .path = "/v1/targets/" T1 "/acl/networks",
				     .cidr = "127.0.0.0/08"};
		assert_true(mgmt_api_handle(fx->s, &r));
		assert_int_equal(r.status, 200);
		mgmt_req_fini(&r);
		assert_true(mgmt_api_handle(fx->s, &r));
		assert_int_equal(r.status, 404);
		mgmt_req_fini(&r);
		r.cidr = NULL;
		assert_true(mgmt_api_handle(fx->s, &r));
		assert_int_equal(r.status, 400);
		mgmt_req_fini(&r);
	}
	expect_status(call(fx->s, "DELETE", "/v1/targets/" T1 "/acl/initiators/" I1, NULL, false),
		      200, NULL);
	expect_status(call(fx->s, "DELETE", "/v1/targets/" T1 "/acl/initiators/" I1, NULL, false),
		      404, "name");
	c = call(fx->s, "PUT", "/v1/targets/" T1 "/acl", "{\"initiators\":[\"" I1 "\"]}", false);
	expect_status(c, 200, NULL);
	assert_int_equal(json_array_size(json_object_get(c->j, "networks")), 0);
	expect_status(call(fx->s, "PUT", "/v1/targets/" T1 "/acl", "{\"networks\":[\"x\"]}", false),
		      400, "networks[0]");
	c = call(fx->s, "PUT", "/v1/targets/" T1 "/acl", "{}", false);
	expect_status(c, 200, NULL);
	assert_true(iscsi_acl_is_open(iscsi_server_get_acl(fx->srv, T1)));
}

static void test_chap(void **state)
{
	struct fixture *fx = *state;
	struct call *c;
	bool mutual;

	expect_status(call(fx->s, "POST", "/v1/targets", "{\"name\":\"" T1 "\"}", false), 201,
		      NULL);
	c = call(fx->s, "GET", "/v1/targets/" T1 "/chap", NULL, false);
	expect_status(c, 200, NULL);
	assert_false(json_is_true(json_object_get(c->j, "enabled")));
	expect_status(call(fx->s, "PUT", "/v1/targets/" T1 "/chap",
			   "{\"user\":\"alice\",\"secret\":\"short\"}", false),
		      400, "secret");
	expect_status(call(fx->s, "PUT", "/v1/targets/" T1 "/chap", "{\"user\":\"alice\"}", false),
		      400, "secret");
	expect_status(call(fx->s, "PUT", "/v1/targets/" T1 "/chap",
			   "{\"user\":\"alice\",\"secret\":\"secretsecret1\",\"mutual_user\":"
			   "\"t\",\"mutual_secret\":\"secretsecret1\"}",
			   false),
		      400, "mutual_secret");
	c = call(fx->s, "PUT", "/v1/targets/" T1 "/chap",
		 "{\"user\":\"alice\",\"secret\":\"secretsecret1\",\"mutual_user\":\"tgt\","
		 "\"mutual_secret\":\"mutualsecret99\"}",
		 false);
	expect_status(c, 200, NULL);
	assert_null(strstr(c->req.reply, "secretsecret1"));
	assert_true(iscsi_server_has_chap(fx->srv, T1, &mutual));
	assert_true(mutual);
	c = call(fx->s, "GET", "/v1/targets/" T1, NULL, false);
	assert_null(strstr(c->req.reply, "secretsecret1"));
	assert_null(strstr(c->req.reply, "mutualsecret99"));
	assert_non_null(strstr(c->req.reply, "\"mutual_user\":\"tgt\""));
	c = call(fx->s, "GET", "/v1/targets", NULL, false);
	assert_null(strstr(c->req.reply, "secret1"));
	expect_status(call(fx->s, "DELETE", "/v1/targets/" T1 "/chap", NULL, false), 204, NULL);
	assert_false(iscsi_server_has_chap(fx->srv, T1, NULL));
}

static void test_persistence(void **state)
{
	struct fixture *fx = *state;
	struct mgmt_state *s2;
	struct stat sb;
	json_t *a, *b;

	expect_status(call(fx->s, "POST", "/v1/targets", "{\"name\":\"" T1 "\"}", false), 201,
		      NULL);
	expect_status(call(fx->s, "POST", "/v1/targets/" T1 "/luns",
			   "{\"lun\":3,\"uri\":\"ram:?size=1M\"}", false),
		      201, NULL);
	expect_status(call(fx->s, "POST", "/v1/targets/" T1 "/acl/initiators",
			   "{\"name\":\"" I1 "\"}", false),
		      201, NULL);
	expect_status(call(fx->s, "PUT", "/v1/targets/" T1 "/chap",
			   "{\"user\":\"alice\",\"secret\":\"secretsecret1\"}", false),
		      200, NULL);
	assert_int_equal(stat(fx->cfgpath, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);

	/* "restart": tear the first state down, load the file into a fresh one */
	a = mgmt_config_to_json(&fx->s->cfg);
	mgmt_state_destroy(fx->s);
	fx->s = NULL;
	assert_null(iscsi_server_find_target(fx->srv, T1));
	fx_state(fx, &s2);
	fx->s = s2;
	b = mgmt_config_to_json(&s2->cfg);
	assert_true(json_equal(a, b));
	assert_non_null(scsi_target_get_lu(iscsi_server_find_target(fx->srv, T1), 3));
	assert_true(iscsi_server_has_chap(fx->srv, T1, NULL));
	assert_false(iscsi_acl_allows(iscsi_server_get_acl(fx->srv, T1),
				      "iqn.2026-11.io.s3tgt:other", NULL));
	json_decref(a);
	json_decref(b);
}

/* The file's nop_interval reaches the server; a save keeps it and adds no nop_timeout. */
static void test_nop_settings(void **state)
{
	struct fixture *fx = *state;
	struct mgmt_state *s2;
	uint32_t interval, timeout;
	json_t *j;
	FILE *f;

	mgmt_state_destroy(fx->s);
	fx->s = NULL;
	f = fopen(fx->cfgpath, "w");
	assert_non_null(f);
	fputs("{\"nop_interval\":4,\"targets\":[]}", f);
	fclose(f);
	fx_state(fx, &s2);
	fx->s = s2;
	iscsi_server_get_nop(fx->srv, &interval, &timeout);
	assert_int_equal(interval, 4);
	assert_int_equal(timeout, ISCSI_NOP_TIMEOUT_DEFAULT_S);
	expect_status(call(fx->s, "POST", "/v1/targets", "{\"name\":\"" T1 "\"}", false), 201,
		      NULL);
	j = json_load_file(fx->cfgpath, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "nop_interval")), 4);
	assert_null(json_object_get(j, "nop_timeout"));
	json_decref(j);
}

static void test_sessions_and_tpgt(void **state)
{
	struct fixture *fx = *state;
	struct call *c;

	c = call(fx->s, "GET", "/v1/sessions", NULL, false);
	expect_status(c, 200, NULL);
	assert_int_equal(json_array_size(c->j), 0);
	expect_status(call(fx->s, "DELETE", "/v1/sessions/42", NULL, false), 404, "id");
	expect_status(call(fx->s, "DELETE", "/v1/sessions/x", NULL, false), 400, "id");
	c = call(fx->s, "GET", "/v1/portal_groups", NULL, false);
	expect_status(c, 200, NULL);
	assert_true(json_is_array(c->j));
}

/* ---- HTTP end to end ---- */

struct buf {
	char *p;
	size_t len;
};

static size_t wr(char *d, size_t sz, size_t n, void *arg)
{
	struct buf *b = arg;
	char *np = realloc(b->p, b->len + sz * n + 1);

	assert_non_null(np);
	memcpy(np + b->len, d, sz * n);
	b->p = np;
	b->len += sz * n;
	b->p[b->len] = '\0';
	return sz * n;
}

static long http(const char *sock, const char *url, const char *method, const char *body,
		 const char *token, char **out)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hd = NULL;
	struct buf b = {0};
	char auth[128];
	long status = 0;

	curl_easy_setopt(h, CURLOPT_URL, url);
	if (sock) {
		curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock);
	}
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, wr);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	}
	if (token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		hd = curl_slist_append(hd, auth);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
	}
	assert_int_equal(curl_easy_perform(h), CURLE_OK);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	curl_slist_free_all(hd);
	if (out) {
		*out = b.p;
	} else {
		free(b.p);
	}
	return status;
}

static void *run_reactor(void *arg)
{
	reactor_run(arg);
	return NULL;
}

static void stopped(void *arg)
{
	reactor_stop(arg);
}

static void shutdown_msg(void *arg)
{
	mgmt_server_shutdown(arg, stopped, g_fx->r);
}

static void test_http(void **state)
{
	struct fixture *fx = *state;
	struct mgmt_server *m;
	struct mgmt_server_opts o = {0};
	char sock[160], err[256] = "", *out = NULL, *big;
	char tcp[32];
	struct stat sb;
	pthread_t th;
	int port = 20000 + (int)(getpid() % 20000);

	snprintf(sock, sizeof(sock), "%s/api.sock", fx->dir);
	snprintf(tcp, sizeof(tcp), "127.0.0.1:%d", port);
	o.socket_path = sock;
	o.tcp_listen = tcp;
	o.token = "short";
	assert_int_equal(mgmt_server_start(fx->s, &o, &m, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "token"));
	o.token = "0123456789abcdef0123";
	if (mgmt_server_start(fx->s, &o, &m, err, sizeof(err)) != 0) {
		fail_msg("start: %s", err);
	}
	assert_int_equal(stat(sock, &sb), 0);
	assert_true(S_ISSOCK(sb.st_mode));
	assert_int_equal(sb.st_mode & 0777, 0600);
	{
		/* a second server on the same live socket is refused, not stolen */
		struct mgmt_server *m2;
		struct mgmt_server_opts o2 = {.socket_path = sock};
		assert_int_equal(mgmt_server_start(fx->s, &o2, &m2, err, sizeof(err)), -EADDRINUSE);
		assert_non_null(strstr(err, "another daemon"));
	}
	assert_int_equal(pthread_create(&th, NULL, run_reactor, fx->r), 0);

	assert_int_equal(http(sock, "http://x/v1/version", "GET", NULL, NULL, &out), 200);
	assert_non_null(strstr(out, "\"api\":\"v1\""));
	free(out);
	assert_int_equal(
	    http(sock, "http://x/v1/targets", "POST", "{\"name\":\"" T1 "\"}", NULL, NULL), 201);
	assert_int_equal(http(sock, "http://x/v1/targets", "PUT", "{}", NULL, NULL), 405);
	assert_int_equal(
	    http(sock, "http://x/v1/targets/" T1 "?force=true", "GET", NULL, NULL, &out), 200);
	free(out);
	big = malloc(MGMT_BODY_MAX + 2);
	memset(big, ' ', MGMT_BODY_MAX + 1);
	big[MGMT_BODY_MAX + 1] = '\0';
	assert_int_equal(http(sock, "http://x/v1/targets", "POST", big, NULL, &out), 413);
	assert_non_null(strstr(out, "error"));
	free(out);
	free(big);
	assert_int_equal(http(sock, "http://x/metrics", "GET", NULL, NULL, &out), 200);
	assert_non_null(strstr(out, "s3tgt_targets 1"));
	free(out);

	/* TCP: only with the token */
	char url[64];
	snprintf(url, sizeof(url), "http://%s/v1/version", tcp);
	assert_int_equal(http(NULL, url, "GET", NULL, NULL, NULL), 401);
	assert_int_equal(http(NULL, url, "GET", NULL, "wrongwrongwrongwrong", NULL), 401);
	assert_int_equal(http(NULL, url, "GET", NULL, "0123456789abcdef0123", NULL), 200);

	assert_int_equal(reactor_post(fx->r, shutdown_msg, m), 0);
	pthread_join(th, NULL);
	assert_int_equal(access(sock, F_OK), -1);
}

/*
 * A store that records flushes and closes and reports metrics with a label
 * value that needs escaping (Prometheus text format 0.0.4).
 */
static unsigned g_fake_flushes, g_fake_closes;
static bool g_fake_flush_before_close;
static int g_fake_flush_status;

static int fake_open(struct store *st, const struct store_params *p, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	st->size = p->size;
	return 0;
}

static void fake_complete(void *arg)
{
	struct store_io *io = arg;

	io->cb(io);
}

static int fake_submit(struct store *st, struct store_io *io)
{
	if (io->op == STORE_OP_FLUSH) {
		g_fake_flushes++;
		io->status = g_fake_flush_status;
	} else {
		io->status = 0;
	}
	return reactor_post(st->reactor, fake_complete, io);
}

static void fake_close(struct store *st)
{
	(void)st;
	g_fake_closes++;
	g_fake_flush_before_close = g_fake_flushes >= g_fake_closes;
}

static void fake_metrics(struct store *st, store_metric_fn fn, void *arg)
{
	struct store_metric m = {
	    .name = "s3tgt_fake_things_total",
	    .help = "Things with a back\\slash\nand a newline.",
	    .type = STORE_METRIC_COUNTER,
	    .nlabels = 1,
	    .label_name = {"kind"},
	    .label_value = {"a\"b\\c\nd"},
	    .value = st->size,
	};

	fn(arg, &m);
	m = (struct store_metric){
	    .name = "s3tgt_fake_level",
	    .help = "A gauge.",
	    .type = STORE_METRIC_GAUGE,
	    .value = 7,
	};
	fn(arg, &m);
}

static const struct store_ops g_fake_ops = {
    .name = "mfake",
    .open = fake_open,
    .submit = fake_submit,
    .close = fake_close,
    .metrics = fake_metrics,
};

static size_t count_of(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++) {
		n++;
	}
	return n;
}

static void test_store_metrics_and_delete_flush(void **state)
{
	struct fixture *fx = *state;
	struct call *c;

	g_fake_flushes = g_fake_closes = 0;
	g_fake_flush_status = 0;
	expect_status(call(fx->s, "POST", "/v1/targets", "{\"name\":\"" T1 "\"}", false), 201,
		      NULL);
	expect_status(call(fx->s, "POST", "/v1/targets/" T1 "/luns",
			   "{\"lun\":1,\"uri\":\"mfake:?size=1M\"}", false),
		      201, NULL);
	expect_status(call(fx->s, "POST", "/v1/targets/" T1 "/luns",
			   "{\"lun\":2,\"uri\":\"mfake:?size=4M&cache_size=2M\"}", false),
		      201, NULL);
	c = call(fx->s, "GET", "/metrics", NULL, false);
	expect_status(c, 200, NULL);
	/* one HELP/TYPE per family, samples of both LUNs (one through the cache) under it */
	assert_int_equal(count_of(c->req.reply, "# TYPE s3tgt_fake_things_total counter\n"), 1);
	assert_int_equal(count_of(c->req.reply, "# HELP s3tgt_fake_things_total "), 1);
	assert_non_null(strstr(c->req.reply, "# HELP s3tgt_fake_things_total Things with a "
					     "back\\\\slash\\nand a newline.\n"
					     "# TYPE s3tgt_fake_things_total counter\n"
					     "s3tgt_fake_things_total{target=\"" T1 "\",lun=\"1\","
					     "kind=\"a\\\"b\\\\c\\nd\"} 1048576\n"
					     "s3tgt_fake_things_total{target=\"" T1 "\",lun=\"2\","
					     "kind=\"a\\\"b\\\\c\\nd\"} 4194304\n"));
	assert_non_null(strstr(c->req.reply, "# TYPE s3tgt_fake_level gauge\n"));
	assert_non_null(strstr(c->req.reply, "s3tgt_fake_level{target=\"" T1 "\",lun=\"2\"} 7\n"));
	assert_non_null(
	    strstr(c->req.reply, "s3tgt_cache_hits_total{target=\"" T1 "\",lun=\"2\"} 0\n"));
	assert_null(strstr(c->req.reply, "s3tgt_cache_hits_total{target=\"" T1 "\",lun=\"1\"}"));

	/* a delete answers only once the store is flushed and closed */
	expect_status(call(fx->s, "DELETE", "/v1/targets/" T1 "/luns/2", NULL, false), 204, NULL);
	assert_int_equal(g_fake_flushes, 1); /* the cache passes the flush down */
	assert_int_equal(g_fake_closes, 1);
	assert_true(g_fake_flush_before_close);

	/* a transient flush failure is reported and the store stays open */
	g_fake_flush_status = -ETIMEDOUT;
	expect_status(call(fx->s, "DELETE", "/v1/targets/" T1 "/luns/1", NULL, false), 503,
		      "flush");
	assert_int_equal(g_fake_flushes, 2);
	assert_int_equal(g_fake_closes, 1);
	assert_int_equal(json_array_size(call(fx->s, "GET", "/v1/luns", NULL, false)->j), 0);
	g_fake_flush_status = 0;

	/* target delete flushes its LUNs too */
	expect_status(call(fx->s, "POST", "/v1/targets/" T1 "/luns",
			   "{\"lun\":3,\"uri\":\"mfake:?size=1M\"}", false),
		      201, NULL);
	expect_status(call(fx->s, "DELETE", "/v1/targets/" T1, NULL, false), 204, NULL);
	assert_int_equal(g_fake_flushes, 3);
	assert_int_equal(g_fake_closes, 2);
	assert_true(g_fake_flush_before_close);
	/* teardown closes the LUN whose flush is being retried (no leak under ASan) */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_version_and_routes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_targets, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_luns, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_acl, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_chap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_persistence, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_nop_settings, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sessions_and_tpgt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_http, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_metrics_and_delete_flush, setup, teardown),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	store_register(&g_fake_ops);
	store_layer_register(&cache_layer_ops);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
