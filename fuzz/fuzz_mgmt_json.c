/*
 * fuzz_mgmt_json.c - the management JSON parsers on arbitrary bytes.
 * First byte outside 'A'..'F' (the seeds use 'Z'): the input is a whole
 * configuration document (mgmt_config_parse); a document that parses must
 * serialize and parse again to the same JSON, and a failure must explain
 * itself. First byte 'A'..'F': the rest is a request body for one API route
 * (targets, ACL, CHAP, LUN create with a RAM store of at most 1 MiB); the
 * reply must be a valid status with a JSON body, and a CHAP secret in the
 * body must never come back.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mgmt/mgmt_internal.h"
#include "s3tgt/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define T "iqn.2026-11.io.s3tgt:fuzz"

static struct reactor *g_r;
static struct iscsi_server *g_srv;

static void fuzz_config(const char *text, size_t len)
{
	struct mgmt_config a, b;
	char err[512] = "";
	json_t *ja, *jb;
	char *dump;

	if (mgmt_config_parse(text, len, &a, err, sizeof(err)) < 0) {
		assert(err[0] != '\0');
		return;
	}
	ja = mgmt_config_to_json(&a);
	assert(ja);
	dump = json_dumps(ja, 0);
	assert(dump);
	if (mgmt_config_parse(dump, strlen(dump), &b, err, sizeof(err)) != 0) {
		abort(); /* what we wrote must read back */
	}
	jb = mgmt_config_to_json(&b);
	assert(json_equal(ja, jb));
	json_decref(ja);
	json_decref(jb);
	free(dump);
	mgmt_config_fini(&a);
	mgmt_config_fini(&b);
}

/* LUN creation would let the input pick store sizes; only small RAM LUNs. */
static bool lun_body_ok(const char *body)
{
	const char *u = strstr(body, "ram:");

	return u && !strchr(body, '/') && strstr(body, "size=1M") && !strstr(body, "size=1M0");
}

static void fuzz_api(char route, const char *body, size_t len)
{
	static const struct {
		const char *method, *path;
	} routes[] = {
		{ "POST", "/v1/targets" },
		{ "PUT", "/v1/targets/" T "/acl" },
		{ "PUT", "/v1/targets/" T "/chap" },
		{ "POST", "/v1/targets/" T "/acl/initiators" },
		{ "POST", "/v1/targets/" T "/acl/networks" },
		{ "POST", "/v1/targets/" T "/luns" },
	};
	unsigned i = (unsigned)(route - 'A');
	struct mgmt_state_opts o = { .r = g_r, .srv = g_srv, .version = "fuzz" };
	struct mgmt_state *s;
	struct mgmt_req req = { 0 };
	char err[256];
	json_t *j;

	if (i == 5 && !lun_body_ok(body)) {
		return;
	}
	if (mgmt_state_create(&o, &s) < 0) {
		return;
	}
	if (mgmt_target_create(s, T, NULL, err, sizeof(err)) < 0) {
		mgmt_state_destroy(s);
		return;
	}
	req.method = routes[i].method;
	req.path = routes[i].path;
	req.body = body;
	req.body_len = len;
	if (!mgmt_api_handle(s, &req)) {
		abort(); /* every route answers synchronously here */
	}
	assert(req.status >= 200 && req.status < 600);
	if (req.reply) {
		j = json_loads(req.reply, 0, NULL);
		assert(j);
		json_decref(j);
		if (i == 2) {
			const char *sec = strstr(body, "secret\":\"");
			if (sec && sec[9] && sec[9] != '"' && strlen(sec + 9) > 12) {
				char probe[13];
				memcpy(probe, sec + 9, 12);
				probe[12] = '\0';
				/*
				 * Only a probe that occurs nowhere else in the body (say,
				 * inside the user name, which is echoed) proves a leak.
				 */
				if (!strchr(probe, '"') && !strchr(probe, '\\') &&
				    strstr(body, probe) == sec + 9 && !strstr(sec + 10, probe)) {
					assert(!strstr(req.reply, probe));
				}
			}
		}
	} else {
		assert(req.status == 204);
	}
	mgmt_req_fini(&req);
	mgmt_state_destroy(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size == 0) {
		return 0;
	}
	if (!g_r && (reactor_create(&g_r) < 0 || iscsi_server_create(g_r, &g_srv) < 0)) {
		abort();
	}
	text = malloc(size);
	if (!text) {
		return 0;
	}
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if (data[0] >= 'A' && data[0] <= 'F') {
		fuzz_api((char)data[0], text, size - 1);
	} else {
		fuzz_config(text, size - 1);
	}
	free(text);
	return 0;
}
