/*
 * api.c - the /v1/ routes and GET /metrics, independent of HTTP: a request
 * (method, path, query flags, body) goes in, a status and a body come out.
 * Runs on the reactor thread. Every successful change is saved before the
 * reply; errors are {"error": "...", "field": "..."} with the HTTP status.
 *
 * Secrets are write-only: CHAP secrets are accepted by PUT and never put in
 * a reply or a log line.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mgmt_internal.h"
#include "s3tgt/core.h"
#include "s3tgt/log.h"
#include "s3tgt/scsi.h"

#define PATH_PARTS 8
#define FORCE_RETRY_MS 50
#define FORCE_TIMEOUT_MS 10000

void mgmt_req_fini(struct mgmt_req *req)
{
	free(req->reply);
	req->reply = NULL;
}

static void reply_json(struct mgmt_req *req, unsigned status, json_t *body)
{
	free(req->reply);
	req->reply = NULL;
	req->status = status;
	req->content_type = "application/json";
	if (body) {
		req->reply = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(body);
		if (!req->reply) {
			req->status = 500;
		}
	}
}

/*
 * Messages are "field: what is wrong"; the field is the part before ": "
 * when that part is one word (a key path such as "luns[0].uri").
 */
static void reply_error(struct mgmt_req *req, unsigned status, const char *msg)
{
	const char *colon = strstr(msg, ": ");
	json_t *o = json_object();
	char field[128];

	if (o) {
		json_object_set_new(o, "error", json_string(msg));
		if (colon && (size_t)(colon - msg) < sizeof(field) &&
		    !memchr(msg, ' ', (size_t)(colon - msg))) {
			memcpy(field, msg, (size_t)(colon - msg));
			field[colon - msg] = '\0';
			json_object_set_new(o, "field", json_string(field));
		}
	}
	reply_json(req, status, o);
}

static void reply_errorf(struct mgmt_req *req, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void reply_errorf(struct mgmt_req *req, unsigned status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	reply_error(req, status, msg);
}

static unsigned errno_status(int rc)
{
	switch (rc) {
	case -ENOENT:
		return 404;
	case -EEXIST:
	case -EBUSY:
	case -ESTALE: /* the volume moved on without this LUN's cache_dir */
	case -EROFS:  /* fenced: another daemon took the volume */
		return 409;
	case -EINVAL:
	case -ERANGE:
	case -ENOTSUP:
	case -E2BIG:
		return 400;
	default:
		return 500;
	}
}

/* Save after a change; a failed save is reported (the change is live but not durable). */
static bool saved(struct mgmt_state *s, struct mgmt_req *req)
{
	char err[512] = "";
	int rc = mgmt_state_save(s, err, sizeof(err));

	if (rc < 0) {
		LOG_ERR("mgmt", "saving %s failed: %s", s->config_path, err);
		reply_errorf(req, 500, "config: change applied but not saved: %s",
			     err[0] ? err : strerror(-rc));
		return false;
	}
	return true;
}

static json_t *parse_body(struct mgmt_req *req)
{
	json_error_t jerr;
	json_t *o;

	if (req->body_len == 0) {
		reply_error(req, 400, "body: a JSON object is required");
		return NULL;
	}
	o = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o) {
		/* jansson quotes the text "near" the error: it could be part of a secret. */
		char *near = strstr(jerr.text, " near ");
		if (near) {
			*near = '\0';
		}
		reply_errorf(req, 400, "body: invalid JSON at line %d column %d: %s", jerr.line,
			     jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		reply_error(req, 400, "body: expected a JSON object");
		return NULL;
	}
	return o;
}

static const char *body_str(struct mgmt_req *req, json_t *o, const char *key, bool required)
{
	json_t *v = json_object_get(o, key);

	if (!v && !required) {
		return NULL;
	}
	if (!json_is_string(v)) {
		reply_errorf(req, 400, "%s: %s", key, v ? "expected a string" : "required");
		return NULL;
	}
	return json_string_value(v);
}

static bool only_keys(struct mgmt_req *req, json_t *o, const char *const *keys)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v) {
		bool ok = false;
		for (size_t i = 0; keys[i]; i++) {
			ok |= strcmp(k, keys[i]) == 0;
		}
		if (!ok) {
			reply_errorf(req, 400, "%.64s: unknown key", k);
			return false;
		}
	}
	return true;
}

static json_t *strv_json(char **v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++) {
		json_array_append_new(a, json_string(v[i]));
	}
	return a;
}

static json_t *acl_json(const struct mgmt_target_cfg *tc)
{
	return json_pack("{s:o,s:o}", "initiators", strv_json(tc->initiators, tc->ninitiators),
			 "networks", strv_json(tc->networks, tc->nnetworks));
}

static json_t *chap_json(const struct mgmt_target_cfg *tc)
{
	json_t *o = json_pack("{s:b}", "enabled", tc->has_chap);

	if (o && tc->has_chap) {
		json_object_set_new(o, "user", json_string(tc->chap.user));
		json_object_set_new(o, "mutual", json_boolean(tc->chap.mutual_user[0] != '\0'));
		if (tc->chap.mutual_user[0]) {
			json_object_set_new(o, "mutual_user", json_string(tc->chap.mutual_user));
		}
	}
	return o;
}

static json_t *lun_json(struct mgmt_state *s, const struct mgmt_target_cfg *tc,
			const struct mgmt_target_rt *rt, size_t k)
{
	struct scsi_lu *lu = scsi_target_get_lu(rt->t, tc->luns[k].lun);
	struct store *st = lu ? scsi_lu_store(lu) : NULL;

	return json_pack("{s:s,s:I,s:s,s:I,s:I,s:s,s:I,s:b}", "target", tc->name, "lun",
			 (json_int_t)tc->luns[k].lun, "uri", tc->luns[k].uri, "size",
			 (json_int_t)(st ? st->size : 0), "block_size",
			 (json_int_t)(st ? st->block_size : 0), "store",
			 st ? st->ops->name : "?", "in_flight",
			 (json_int_t)(lu ? scsi_lu_busy(lu) : 0), "fenced",
			 st && store_fenced(st));
}

static json_t *luns_json(struct mgmt_state *s, size_t i)
{
	json_t *a = json_array();

	for (size_t k = 0; a && k < s->cfg.targets[i].nluns; k++) {
		json_array_append_new(a, lun_json(s, &s->cfg.targets[i], &s->rt[i], k));
	}
	return a;
}

static json_t *target_json(struct mgmt_state *s, size_t i)
{
	const struct mgmt_target_cfg *tc = &s->cfg.targets[i];
	json_t *o = json_pack("{s:s,s:o,s:I,s:o,s:o}", "name", tc->name, "luns", luns_json(s, i),
			      "sessions",
			      (json_int_t)iscsi_server_target_sessions(s->srv, tc->name), "acl",
			      acl_json(tc), "chap", chap_json(tc));

	if (o && tc->alias) {
		json_object_set_new(o, "alias", json_string(tc->alias));
	}
	return o;
}

static bool target_index(struct mgmt_state *s, struct mgmt_req *req, const char *name,
			 size_t *i)
{
	if (!mgmt_config_find(&s->cfg, name, i)) {
		reply_errorf(req, 404, "target: no target %.230s", name);
		return false;
	}
	return true;
}

/* ---- routes ---- */

static void get_version(struct mgmt_state *s, struct mgmt_req *req)
{
	reply_json(req, 200,
		   json_pack("{s:s,s:s}", "api", MGMT_API_VERSION, "version", s->version));
}

static void list_targets(struct mgmt_state *s, struct mgmt_req *req)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < s->cfg.ntargets; i++) {
		json_array_append_new(a, target_json(s, i));
	}
	reply_json(req, 200, a);
}

static void create_target(struct mgmt_state *s, struct mgmt_req *req)
{
	static const char *const keys[] = { "name", "alias", NULL };
	json_t *o = parse_body(req);
	const char *name, *alias = NULL;
	char err[512];
	size_t i;
	int rc;

	if (!o) {
		return;
	}
	if (!only_keys(req, o, keys) || !(name = body_str(req, o, "name", true))) {
		goto out;
	}
	if (json_object_get(o, "alias") && !(alias = body_str(req, o, "alias", false))) {
		goto out;
	}
	rc = mgmt_target_create(s, name, alias, err, sizeof(err));
	if (rc < 0) {
		reply_error(req, errno_status(rc), err);
		goto out;
	}
	LOG_INFO("mgmt", "target %s created", name);
	if (saved(s, req) && mgmt_config_find(&s->cfg, name, &i)) {
		reply_json(req, 201, target_json(s, i));
	}
out:
	json_decref(o);
}

/*
 * A delete in progress: a forced target delete first waits for the logged-out
 * sessions to go; every delete then waits for the flush of its LUs
 * (mgmt_target_delete / mgmt_lun_delete) before it answers.
 */
struct del_ctx {
	struct mgmt_state *s;
	struct mgmt_req *req; /* NULL: nobody can wait (no req->done), freed by the callback */
	char name[ISCSI_NAME_MAX + 1];
	bool is_lun;
	uint64_t lun;
	uint64_t deadline;
	bool save_failed; /* saved() has put its error reply */
	bool async;	  /* mgmt_api_handle() returned false: req->done() answers */
	bool flushed;	  /* the flush callback ran */
	int status;
};

static void del_reply(struct del_ctx *dc)
{
	struct mgmt_req *req = dc->req;
	char what[ISCSI_NAME_MAX + 32];

	if (dc->is_lun) {
		snprintf(what, sizeof(what), "%s LUN %llu", dc->name, (unsigned long long)dc->lun);
	} else {
		snprintf(what, sizeof(what), "target %s", dc->name);
	}
	if (dc->status < 0) {
		reply_errorf(req, 503,
			     "flush: %s is deleted, but its cached writes are not all stored yet "
			     "(%s); its store stays open and keeps retrying",
			     what, strerror(-dc->status));
	} else if (!dc->save_failed) {
		LOG_INFO("mgmt", "%s deleted", what);
		reply_json(req, 204, NULL);
	}
}

static void del_flushed(void *arg, int status)
{
	struct del_ctx *dc = arg;

	dc->flushed = true;
	dc->status = status;
	if (!dc->req) {
		free(dc);
	} else if (dc->async) {
		del_reply(dc);
		dc->req->done(dc->req);
		free(dc);
	}
}

static struct del_ctx *del_ctx_new(struct mgmt_state *s, struct mgmt_req *req, const char *name)
{
	struct del_ctx *dc = calloc(1, sizeof(*dc));

	if (!dc) {
		reply_error(req, 500, "out of memory");
		return NULL;
	}
	dc->s = s;
	dc->req = req;
	snprintf(dc->name, sizeof(dc->name), "%s", name);
	return dc;
}

/*
 * The delete call returned 0: save, then answer now if the flush is over,
 * else later. Returns what mgmt_api_handle() returns.
 */
static bool del_started(struct del_ctx *dc)
{
	struct mgmt_req *req = dc->req;

	dc->save_failed = !saved(dc->s, req);
	if (dc->flushed) {
		bool async = dc->async;
		del_reply(dc);
		free(dc);
		if (async) {
			req->done(req);
		}
		return !async;
	}
	if (dc->async || req->done) {
		dc->async = true;
		return false;
	}
	/* No way to answer later: answer now; the flush goes on and frees dc. */
	if (!dc->save_failed) {
		reply_json(req, 204, NULL);
	}
	dc->req = NULL;
	return true;
}

static void target_del_failed(struct del_ctx *dc, int rc)
{
	if (rc == -EBUSY) {
		reply_errorf(dc->req, 409, "target: %s still has sessions", dc->name);
	} else {
		reply_errorf(dc->req, errno_status(rc), "target: %s: %s", dc->name, strerror(-rc));
	}
}

static void force_delete_retry(void *arg)
{
	struct del_ctx *dc = arg;
	struct mgmt_req *req = dc->req;
	int rc = mgmt_target_delete(dc->s, dc->name, del_flushed, dc);

	if (rc == -EBUSY && reactor_now_ms() < dc->deadline) {
		/* Closed connections leave once their commands completed. */
		if (reactor_timer_add(dc->s->r, FORCE_RETRY_MS, false, force_delete_retry, dc)) {
			return;
		}
	}
	if (rc == 0) {
		del_started(dc);
		return;
	}
	target_del_failed(dc, rc);
	req->done(req);
	free(dc);
}

static bool delete_target(struct mgmt_state *s, struct mgmt_req *req, const char *name)
{
	struct del_ctx *dc;
	size_t i;
	unsigned n;
	int rc;

	if (!target_index(s, req, name, &i)) {
		return true;
	}
	n = iscsi_server_target_sessions(s->srv, s->cfg.targets[i].name);
	if (n > 0 && !req->force) {
		reply_errorf(req, 409, "target: %s has %u session(s) logged in; use force=true", name,
			     n);
		return true;
	}
	dc = del_ctx_new(s, req, s->cfg.targets[i].name);
	if (!dc) {
		return true;
	}
	dc->deadline = reactor_now_ms() + FORCE_TIMEOUT_MS;
	if (n > 0) {
		LOG_INFO("mgmt", "target %s: logging out %u session(s) before delete", dc->name,
			 mgmt_logout_target(s, dc->name));
	}
	rc = mgmt_target_delete(s, dc->name, del_flushed, dc);
	if (rc == 0) {
		return del_started(dc);
	}
	if (rc == -EBUSY && req->force && req->done &&
	    reactor_timer_add(s->r, FORCE_RETRY_MS, false, force_delete_retry, dc)) {
		dc->async = true;
		return false;
	}
	target_del_failed(dc, rc);
	free(dc);
	return true;
}

static void list_luns(struct mgmt_state *s, struct mgmt_req *req, const char *target)
{
	json_t *a = json_array();
	size_t only = 0;

	if (target && !target_index(s, req, target, &only)) {
		json_decref(a);
		return;
	}
	for (size_t i = 0; a && i < s->cfg.ntargets; i++) {
		if (target && i != only) {
			continue;
		}
		for (size_t k = 0; k < s->cfg.targets[i].nluns; k++) {
			json_array_append_new(a, lun_json(s, &s->cfg.targets[i], &s->rt[i], k));
		}
	}
	reply_json(req, 200, a);
}

static void create_lun(struct mgmt_state *s, struct mgmt_req *req, const char *target)
{
	static const char *const keys[] = { "lun", "uri", NULL };
	json_t *o;
	const char *uri;
	char err[512];
	uint64_t lun;
	size_t i;
	int rc;

	if (!target_index(s, req, target, &i)) {
		return;
	}
	o = parse_body(req);
	if (!o) {
		return;
	}
	if (!only_keys(req, o, keys)) {
		goto out;
	}
	if (mgmt_check_lun(json_object_get(o, "lun"), "lun", &lun, err, sizeof(err)) < 0) {
		reply_error(req, 400, err);
		goto out;
	}
	if (!(uri = body_str(req, o, "uri", true))) {
		goto out;
	}
	rc = mgmt_lun_create(s, s->cfg.targets[i].name, lun, uri, err, sizeof(err));
	if (rc < 0) {
		reply_error(req, rc == -ENOENT && strncmp(err, "target", 6) == 0 ? 404
				 : rc == -EEXIST				   ? 409
									   : 400,
			    err);
		goto out;
	}
	LOG_INFO("mgmt", "%s LUN %llu created", s->cfg.targets[i].name, (unsigned long long)lun);
	if (saved(s, req)) {
		reply_json(req, 201,
			   lun_json(s, &s->cfg.targets[i], &s->rt[i], s->cfg.targets[i].nluns - 1));
	}
out:
	json_decref(o);
}

static bool parse_lun_path(struct mgmt_req *req, const char *text, uint64_t *lun)
{
	if (parse_u64(text, 0, SCSI_MAX_LUN, lun) < 0) {
		reply_errorf(req, 400, "lun: expected an integer 0..%d", SCSI_MAX_LUN);
		return false;
	}
	return true;
}

static bool lun_item(struct mgmt_state *s, struct mgmt_req *req, const char *target,
		     const char *lun_text)
{
	struct mgmt_target_cfg *tc;
	char err[512];
	uint64_t lun, size;
	json_t *o, *v;
	size_t i;
	int rc;

	if (!target_index(s, req, target, &i) || !parse_lun_path(req, lun_text, &lun)) {
		return true;
	}
	tc = &s->cfg.targets[i];
	for (size_t k = 0; k < tc->nluns; k++) {
		if (tc->luns[k].lun != lun) {
			continue;
		}
		if (strcmp(req->method, "GET") == 0) {
			reply_json(req, 200, lun_json(s, tc, &s->rt[i], k));
			return true;
		}
		if (strcmp(req->method, "DELETE") == 0) {
			struct del_ctx *dc = del_ctx_new(s, req, tc->name);
			if (!dc) {
				return true;
			}
			dc->is_lun = true;
			dc->lun = lun;
			rc = mgmt_lun_delete(s, tc->name, lun, req->force, del_flushed, dc);
			if (rc == 0) {
				return del_started(dc);
			}
			free(dc);
			if (rc == -EBUSY) {
				reply_errorf(req, 409,
					     "lun: LUN %llu of %s is in use (sessions logged in or "
					     "commands running); use force=true",
					     (unsigned long long)lun, tc->name);
			} else {
				reply_errorf(req, errno_status(rc), "lun: %s", strerror(-rc));
			}
			return true;
		}
		/* PUT / PATCH: resize */
		static const char *const keys[] = { "size", NULL };
		o = parse_body(req);
		if (!o) {
			return true;
		}
		if (!only_keys(req, o, keys)) {
			json_decref(o);
			return true;
		}
		v = json_object_get(o, "size");
		if (json_is_integer(v) && json_integer_value(v) > 0) {
			size = (uint64_t)json_integer_value(v);
		} else if (!json_is_string(v) || parse_size(json_string_value(v), &size) < 0) {
			reply_error(req, 400,
				    "size: expected bytes as an integer or a string like \"2G\"");
			json_decref(o);
			return true;
		}
		json_decref(o);
		rc = mgmt_lun_resize(s, tc->name, lun, size, err, sizeof(err));
		if (rc < 0) {
			reply_error(req, errno_status(rc), err);
		} else if (saved(s, req)) {
			LOG_INFO("mgmt", "%s LUN %llu resized to %llu bytes", tc->name,
				 (unsigned long long)lun, (unsigned long long)size);
			reply_json(req, 200, lun_json(s, tc, &s->rt[i], k));
		}
		return true;
	}
	reply_errorf(req, 404, "lun: no LUN %llu on %s", (unsigned long long)lun, tc->name);
	return true;
}

static void list_tpgts(struct mgmt_state *s, struct mgmt_req *req)
{
	struct iscsi_portal_info *p;
	size_t n = iscsi_server_list_portals(s->srv, NULL, 0);
	json_t *a = json_array();

	p = calloc(n ? n : 1, sizeof(*p));
	if (!p || !a) {
		free(p);
		json_decref(a);
		reply_error(req, 500, "out of memory");
		return;
	}
	n = iscsi_server_list_portals(s->srv, p, n);
	for (size_t i = 0; i < n; i++) {
		json_t *g = NULL, *e;
		size_t k;
		json_array_foreach(a, k, e) {
			if (json_integer_value(json_object_get(e, "tpgt")) == p[i].tpgt) {
				g = e;
			}
		}
		if (!g) {
			g = json_pack("{s:I,s:[]}", "tpgt", (json_int_t)p[i].tpgt, "portals");
			json_array_append_new(a, g);
		}
		json_array_append_new(json_object_get(g, "portals"), json_string(p[i].addr));
	}
	free(p);
	reply_json(req, 200, a);
}

static json_t *session_json(struct mgmt_state *s, const struct iscsi_session_info *in)
{
	struct iscsi_session_params p;
	char isid[13];
	json_t *o;

	for (int k = 0; k < 6; k++) {
		snprintf(isid + 2 * k, 3, "%02x", in->isid[k]);
	}
	o = json_pack("{s:I,s:s,s:s,s:s,s:I,s:s,s:b,s:I}", "id", (json_int_t)in->id, "target",
		      in->target, "initiator", in->initiator, "isid", isid, "tsih",
		      (json_int_t)in->tsih, "peer", in->peer, "discovery", in->discovery, "tasks",
		      (json_int_t)in->tasks);
	if (o && iscsi_server_session_params(s->srv, in->id, &p) == 0) {
		json_object_set_new(o, "tpgt", json_integer(p.tpgt));
		json_object_set_new(o, "portal", json_string(p.local));
		json_object_set_new(
			o, "params",
			json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:b,s:b,s:I,s:I}", "HeaderDigest",
				  p.header_digest ? "CRC32C" : "None", "DataDigest",
				  p.data_digest ? "CRC32C" : "None", "MaxRecvDataSegmentLength",
				  (json_int_t)p.initiator_mrdsl, "TargetMaxRecvDataSegmentLength",
				  (json_int_t)p.target_mrdsl, "MaxBurstLength",
				  (json_int_t)p.max_burst, "FirstBurstLength",
				  (json_int_t)p.first_burst, "ImmediateData", p.immediate_data,
				  "InitialR2T", p.initial_r2t, "MaxOutstandingR2T",
				  (json_int_t)p.max_outstanding_r2t, "ErrorRecoveryLevel",
				  (json_int_t)p.erl));
	}
	return o;
}

/* Snapshot of every session; returns the count (*out owned by the caller). */
static size_t sessions(struct mgmt_state *s, struct iscsi_session_info **out)
{
	size_t n = iscsi_server_list_sessions(s->srv, NULL, 0);

	*out = calloc(n ? n : 1, sizeof(**out));
	if (!*out) {
		return 0;
	}
	return iscsi_server_list_sessions(s->srv, *out, n) < n ? 0 : n;
}

static void list_sessions(struct mgmt_state *s, struct mgmt_req *req)
{
	struct iscsi_session_info *in;
	size_t n = sessions(s, &in);
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++) {
		json_array_append_new(a, session_json(s, &in[i]));
	}
	free(in);
	reply_json(req, 200, a);
}

static void session_item(struct mgmt_state *s, struct mgmt_req *req, const char *id_text)
{
	struct iscsi_session_info *in;
	uint64_t id;
	size_t n;

	if (parse_u64(id_text, 0, UINT64_MAX, &id) < 0) {
		reply_error(req, 400, "id: expected a session id (an integer)");
		return;
	}
	n = sessions(s, &in);
	for (size_t i = 0; i < n; i++) {
		if (in[i].id != id) {
			continue;
		}
		if (strcmp(req->method, "GET") == 0) {
			reply_json(req, 200, session_json(s, &in[i]));
		} else {
			LOG_INFO("mgmt", "logging out session %llu of %s", (unsigned long long)id,
				 in[i].initiator);
			iscsi_server_close_session(s->srv, id);
			reply_json(req, 204, NULL);
		}
		free(in);
		return;
	}
	free(in);
	reply_errorf(req, 404, "id: no session %llu", (unsigned long long)id);
}

/* Replace the ACL lists of tc with validated ones from a JSON object. */
static void put_acl(struct mgmt_state *s, struct mgmt_req *req, struct mgmt_target_cfg *tc)
{
	static const char *const keys[] = { "initiators", "networks", NULL };
	struct mgmt_target_cfg tmp = { 0 };
	char err[512], field[64];
	json_t *o = parse_body(req), *e;
	size_t k;

	if (!o) {
		return;
	}
	if (!only_keys(req, o, keys)) {
		goto out;
	}
	for (int which = 0; which < 2; which++) {
		json_t *arr = json_object_get(o, keys[which]);
		if (!arr) {
			continue;
		}
		if (!json_is_array(arr)) {
			reply_errorf(req, 400, "%s: expected an array of strings", keys[which]);
			goto out;
		}
		json_array_foreach(arr, k, e) {
			const char *v = json_string_value(e);
			snprintf(field, sizeof(field), "%s[%zu]", keys[which], k);
			if (!v) {
				reply_errorf(req, 400, "%s: expected a string", field);
				goto out;
			}
			if ((which == 0 ? mgmt_check_name(v, field, err, sizeof(err))
					: mgmt_check_cidr(v, field, err, sizeof(err))) < 0) {
				reply_error(req, 400, err);
				goto out;
			}
			if (mgmt_strv_add(which == 0 ? &tmp.initiators : &tmp.networks,
					  which == 0 ? &tmp.ninitiators : &tmp.nnetworks, v) < 0) {
				reply_error(req, 500, "out of memory");
				goto out;
			}
		}
	}
	/* swap in the new lists; tmp then frees the old ones */
	{
		char **iv = tc->initiators, **nv = tc->networks;
		size_t ni = tc->ninitiators, nn = tc->nnetworks;
		tc->initiators = tmp.initiators;
		tc->ninitiators = tmp.ninitiators;
		tc->networks = tmp.networks;
		tc->nnetworks = tmp.nnetworks;
		tmp.initiators = iv;
		tmp.ninitiators = ni;
		tmp.networks = nv;
		tmp.nnetworks = nn;
	}
	if (mgmt_acl_apply(s, tc) < 0) {
		reply_error(req, 500, "acl: cannot apply");
	} else if (saved(s, req)) {
		reply_json(req, 200, acl_json(tc));
	}
out:
	mgmt_target_cfg_fini(&tmp);
	json_decref(o);
}

static void acl_entry(struct mgmt_state *s, struct mgmt_req *req, struct mgmt_target_cfg *tc,
		      bool networks, const char *item)
{
	char ***v = networks ? &tc->networks : &tc->initiators;
	size_t *n = networks ? &tc->nnetworks : &tc->ninitiators;
	const char *key = networks ? "cidr" : "name";
	char err[512], canon[INET6_ADDRSTRLEN + 8];
	json_t *o = NULL;
	const char *val = item;
	struct iscsi_acl *tmp = NULL;
	ssize_t found = -1;

	if (strcmp(req->method, "POST") == 0) {
		static const char *const nkeys[] = { "name", NULL };
		static const char *const ckeys[] = { "cidr", NULL };
		o = parse_body(req);
		if (!o || !only_keys(req, o, networks ? ckeys : nkeys) ||
		    !(val = body_str(req, o, key, true))) {
			goto out;
		}
	} else if (!val) {
		reply_errorf(req, 400, "%s: required (as ?cidr=)", key);
		goto out;
	}
	if ((networks ? mgmt_check_cidr(val, key, err, sizeof(err))
		      : mgmt_check_name(val, key, err, sizeof(err))) < 0) {
		reply_error(req, 400, err);
		goto out;
	}
	if (networks) {
		/* compare in canonical form: "10.0.0.0/8" == "10.0.0.0/08" */
		const char *const *c;
		if (iscsi_acl_create(&tmp) < 0 || iscsi_acl_add_network(tmp, val) < 0) {
			reply_error(req, 500, "out of memory");
			goto out;
		}
		iscsi_acl_networks(tmp, &c);
		snprintf(canon, sizeof(canon), "%s", c[0]);
		val = canon;
	}
	for (size_t i = 0; i < *n; i++) {
		if (strcasecmp((*v)[i], val) == 0) {
			found = (ssize_t)i;
		}
	}
	if (strcmp(req->method, "POST") == 0) {
		if (found >= 0) {
			reply_errorf(req, 409, "%s: %.230s is already listed", key, val);
			goto out;
		}
		if (mgmt_strv_add(v, n, val) < 0) {
			reply_error(req, 500, "out of memory");
			goto out;
		}
	} else {
		if (found < 0) {
			reply_errorf(req, 404, "%s: %.230s is not listed", key, val);
			goto out;
		}
		mgmt_strv_remove(*v, n, (size_t)found);
	}
	if (mgmt_acl_apply(s, tc) < 0) {
		reply_error(req, 500, "acl: cannot apply");
	} else if (saved(s, req)) {
		LOG_INFO("mgmt", "%s: ACL %s %s", tc->name,
			 strcmp(req->method, "POST") == 0 ? "allows" : "no longer lists", val);
		reply_json(req, strcmp(req->method, "POST") == 0 ? 201 : 200, acl_json(tc));
	}
out:
	iscsi_acl_destroy(tmp);
	json_decref(o);
}

static void chap_item(struct mgmt_state *s, struct mgmt_req *req, struct mgmt_target_cfg *tc)
{
	struct iscsi_chap_config c;
	char err[512];
	json_t *o;

	if (strcmp(req->method, "GET") == 0) {
		reply_json(req, 200, chap_json(tc));
		return;
	}
	if (strcmp(req->method, "DELETE") == 0) {
		explicit_bzero(&tc->chap, sizeof(tc->chap));
		tc->has_chap = false;
	} else {
		o = parse_body(req);
		if (!o) {
			return;
		}
		if (mgmt_chap_from_json(o, "", &c, err, sizeof(err)) < 0) {
			json_decref(o);
			reply_error(req, 400, err);
			return;
		}
		/* the body held secrets: wipe jansson's copies before freeing */
		const char *k;
		json_t *v;
		json_object_foreach(o, k, v) {
			if (json_is_string(v)) {
				explicit_bzero((char *)json_string_value(v), json_string_length(v));
			}
		}
		json_decref(o);
		tc->chap = c;
		tc->has_chap = true;
		explicit_bzero(&c, sizeof(c));
	}
	if (mgmt_chap_apply(s, tc) < 0) {
		reply_error(req, 500, "chap: cannot apply");
	} else if (saved(s, req)) {
		LOG_INFO("mgmt", "%s: CHAP %s", tc->name,
			 tc->has_chap ? (tc->chap.mutual_user[0] ? "set (mutual)" : "set")
				      : "cleared");
		reply_json(req, strcmp(req->method, "DELETE") == 0 ? 204 : 200,
			   strcmp(req->method, "DELETE") == 0 ? NULL : chap_json(tc));
	}
}

/* ---- metrics (Prometheus text exposition format 0.0.4) ---- */

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom) {
		return;
	}
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->p && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t ncap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
		char *np = realloc(b->p, ncap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
}

/*
 * Text format 0.0.4: a label value escapes backslash, double quote and
 * newline; HELP text escapes backslash and newline. New string or NULL.
 */
static char *prom_escape(const char *v, bool quote)
{
	size_t n = 0;
	char *out, *o;

	for (const char *p = v; *p; p++) {
		n += (*p == '\\' || *p == '\n' || (quote && *p == '"')) ? 2 : 1;
	}
	out = malloc(n + 1);
	if (!out) {
		return NULL;
	}
	o = out;
	for (const char *p = v; *p; p++) {
		if (*p == '\\' || (quote && *p == '"')) {
			*o++ = '\\';
			*o++ = *p;
		} else if (*p == '\n') {
			*o++ = '\\';
			*o++ = 'n';
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return out;
}

/*
 * Samples the stores report (store.h store_metrics()), grouped by metric
 * name: the format wants every sample of a family after its one HELP/TYPE
 * pair, while the stores report LUN by LUN.
 */
struct msample {
	size_t target; /* index into the escaped target names */
	uint64_t lun;
	char *labels; /* ",k=\"v\"..." (escaped), or "" */
	uint64_t value;
};

struct mfamily {
	const char *name, *help; /* static, from the store */
	enum store_metric_type type;
	struct msample *v;
	size_t n, cap;
};

struct mcollect {
	struct mfamily *f;
	size_t n, cap;
	size_t target;
	uint64_t lun;
	bool oom;
};

static struct mfamily *mc_family(struct mcollect *mc, const struct store_metric *m)
{
	struct mfamily *f;

	for (size_t i = 0; i < mc->n; i++) {
		if (strcmp(mc->f[i].name, m->name) == 0) {
			return &mc->f[i];
		}
	}
	if (mc->n == mc->cap) {
		size_t ncap = mc->cap ? mc->cap * 2 : 16;
		f = realloc(mc->f, ncap * sizeof(*f));
		if (!f) {
			return NULL;
		}
		mc->f = f;
		mc->cap = ncap;
	}
	f = &mc->f[mc->n++];
	memset(f, 0, sizeof(*f));
	f->name = m->name;
	f->help = m->help;
	f->type = m->type;
	return f;
}

static void mc_add(void *arg, const struct store_metric *m)
{
	struct mcollect *mc = arg;
	struct mfamily *f;
	struct sbuf lb = {0};
	struct msample *v;

	if (mc->oom || !(f = mc_family(mc, m))) {
		mc->oom = true;
		return;
	}
	for (unsigned i = 0; i < m->nlabels && i < STORE_METRIC_LABELS_MAX; i++) {
		char *e = prom_escape(m->label_value[i] ? m->label_value[i] : "", true);
		if (!e) {
			lb.oom = true;
			break;
		}
		sb_printf(&lb, ",%s=\"%s\"", m->label_name[i], e);
		free(e);
	}
	if (!lb.oom && !lb.p) {
		lb.p = strdup("");
		lb.oom = !lb.p;
	}
	if (!lb.oom && f->n == f->cap) {
		size_t ncap = f->cap ? f->cap * 2 : 16;
		v = realloc(f->v, ncap * sizeof(*v));
		if (v) {
			f->v = v;
			f->cap = ncap;
		}
		lb.oom = !v;
	}
	if (lb.oom) {
		free(lb.p);
		mc->oom = true;
		return;
	}
	f->v[f->n++] = (struct msample){
	    .target = mc->target, .lun = mc->lun, .labels = lb.p, .value = m->value};
}

static void mc_fini(struct mcollect *mc)
{
	for (size_t i = 0; i < mc->n; i++) {
		for (size_t k = 0; k < mc->f[i].n; k++) {
			free(mc->f[i].v[k].labels);
		}
		free(mc->f[i].v);
	}
	free(mc->f);
}

static void render_store_metrics(struct mgmt_state *s, char **tn, struct sbuf *b)
{
	struct mcollect mc = {0};

	for (size_t i = 0; i < s->cfg.ntargets; i++) {
		for (size_t k = 0; k < s->rt[i].nluns; k++) {
			mc.target = i;
			mc.lun = s->rt[i].luns[k].lun;
			store_metrics(scsi_lu_store(s->rt[i].luns[k].lu), mc_add, &mc);
		}
	}
	b->oom |= mc.oom;
	for (size_t i = 0; i < mc.n && !b->oom; i++) {
		const struct mfamily *f = &mc.f[i];
		char *help = prom_escape(f->help ? f->help : "", false);
		if (!help) {
			b->oom = true;
			break;
		}
		sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", f->name, help, f->name,
			  f->type == STORE_METRIC_GAUGE ? "gauge" : "counter");
		free(help);
		for (size_t k = 0; k < f->n; k++) {
			sb_printf(b, "%s{target=\"%s\",lun=\"%llu\"%s} %llu\n", f->name,
				  tn[f->v[k].target], (unsigned long long)f->v[k].lun,
				  f->v[k].labels, (unsigned long long)f->v[k].value);
		}
	}
	mc_fini(&mc);
}

static void render_lun_metrics(struct mgmt_state *s, char **tnames, struct sbuf *b)
{
	static const struct {
		const char *name, *type, *help;
	} fam[] = {
		{ "s3tgt_lun_size_bytes", "gauge", "LUN capacity." },
		{ "s3tgt_lun_in_flight", "gauge", "SCSI commands in progress on the LUN." },
		{ "s3tgt_lun_ops_total", "counter", "Store operations completed, by op." },
		{ "s3tgt_lun_errors_total", "counter", "Store operations failed, by op." },
		{ "s3tgt_lun_bytes_total", "counter", "Bytes read or written, by op." },
		{ "s3tgt_lun_latency_seconds", "histogram", "Store operation latency, by op." },
	};

	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", fam[f].name, fam[f].help, fam[f].name,
			  fam[f].type);
		for (size_t i = 0; i < s->cfg.ntargets; i++) {
			const char *tn = tnames[i];
			for (size_t k = 0; k < s->rt[i].nluns; k++) {
				const struct mgmt_lun_rt *lr = &s->rt[i].luns[k];
				unsigned long long lun = (unsigned long long)lr->lun;
				if (f == 0) {
					sb_printf(b, "%s{target=\"%s\",lun=\"%llu\"} %llu\n",
						  fam[f].name, tn, lun,
						  (unsigned long long)scsi_lu_store(lr->lu)->size);
					continue;
				}
				if (f == 1) {
					sb_printf(b, "%s{target=\"%s\",lun=\"%llu\"} %u\n",
						  fam[f].name, tn, lun, scsi_lu_busy(lr->lu));
					continue;
				}
				for (unsigned op = 0; op < MGMT_STAT_OPS; op++) {
					const struct mgmt_op_stats *o = &lr->stats->op[op];
					const char *on = mgmt_op_name(op);
					if (f == 2 || f == 3) {
						sb_printf(
						    b,
						    "%s{target=\"%s\",lun=\"%llu\",op=\"%s\"} "
						    "%llu\n",
						    fam[f].name, tn, lun, on,
						    (unsigned long long)(f == 2 ? o->count
										: o->errors));
					} else if (f == 4) {
						if (op != STORE_OP_READ && op != STORE_OP_WRITE) {
							continue;
						}
						sb_printf(
						    b,
						    "%s{target=\"%s\",lun=\"%llu\",op=\"%s\"} "
						    "%llu\n",
						    fam[f].name, tn, lun, on,
						    (unsigned long long)o->bytes);
					} else {
						uint64_t cum = 0;
						for (unsigned bk = 0; bk < MGMT_LAT_BUCKETS; bk++) {
							cum += o->lat_bucket[bk];
							sb_printf(
							    b,
							    "%s_bucket{target=\"%s\",lun=\"%"
							    "llu\",op=\"%s\",le=\"%g\"} %llu\n",
							    fam[f].name, tn, lun, on,
							    mgmt_lat_bounds[bk],
							    (unsigned long long)cum);
						}
						sb_printf(
						    b,
						    "%s_bucket{target=\"%s\",lun=\"%llu\",op=\""
						    "%s\",le=\"+Inf\"} %llu\n"
						    "%s_sum{target=\"%s\",lun=\"%llu\",op=\"%s\"}"
						    " %.9f\n"
						    "%s_count{target=\"%s\",lun=\"%llu\",op=\"%"
						    "s\"} %llu\n",
						    fam[f].name, tn, lun, on,
						    (unsigned long long)o->count, fam[f].name, tn,
						    lun, on, (double)o->lat_sum_ns / 1e9,
						    fam[f].name, tn, lun, on,
						    (unsigned long long)o->count);
					}
				}
			}
		}
	}
}

void mgmt_metrics_render(struct mgmt_state *s, struct mgmt_req *req)
{
	struct sbuf b = {0};
	struct iscsi_session_info *in;
	size_t nsess = sessions(s, &in);
	char **tn = calloc(s->cfg.ntargets ? s->cfg.ntargets : 1, sizeof(*tn));
	unsigned disc = 0;

	b.oom = !tn;
	for (size_t i = 0; tn && i < s->cfg.ntargets; i++) {
		tn[i] = prom_escape(s->cfg.targets[i].name, true);
		b.oom |= !tn[i];
	}
	sb_printf(&b,
		  "# HELP s3tgt_targets Targets configured.\n# TYPE s3tgt_targets gauge\n"
		  "s3tgt_targets %zu\n",
		  s->cfg.ntargets);
	sb_printf(&b, "# HELP s3tgt_sessions Sessions logged in, by target.\n"
		      "# TYPE s3tgt_sessions gauge\n");
	for (size_t i = 0; !b.oom && i < s->cfg.ntargets; i++) {
		sb_printf(&b, "s3tgt_sessions{target=\"%s\"} %u\n", tn[i],
			  iscsi_server_target_sessions(s->srv, s->cfg.targets[i].name));
	}
	for (size_t i = 0; i < nsess; i++) {
		disc += in[i].discovery;
	}
	free(in);
	sb_printf(&b,
		  "# HELP s3tgt_discovery_sessions Discovery sessions open.\n"
		  "# TYPE s3tgt_discovery_sessions gauge\ns3tgt_discovery_sessions %u\n",
		  disc);
	if (!b.oom) {
		render_lun_metrics(s, tn, &b);
		render_store_metrics(s, tn, &b);
	}
	for (size_t i = 0; tn && i < s->cfg.ntargets; i++) {
		free(tn[i]);
	}
	free(tn);
	if (b.oom) {
		free(b.p);
		reply_error(req, 500, "out of memory");
		return;
	}
	free(req->reply);
	req->reply = b.p ? b.p : strdup("");
	req->status = req->reply ? 200 : 500;
	req->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

/* ---- router ---- */

static bool method_is(struct mgmt_req *req, const char *allow)
{
	/* allow: "GET, POST" */
	size_t ml = strlen(req->method);
	const char *p = allow;

	while ((p = strstr(p, req->method)) != NULL) {
		if ((p == allow || p[-1] == ' ') && (p[ml] == '\0' || p[ml] == ',')) {
			return true;
		}
		p += ml;
	}
	req->allow = allow;
	reply_errorf(req, 405, "method: %s not allowed here (allowed: %s)", req->method, allow);
	return false;
}

bool mgmt_api_handle(struct mgmt_state *s, struct mgmt_req *req)
{
	char path[1024];
	char *part[PATH_PARTS];
	size_t n = 0;
	char *p, *save;
	struct mgmt_target_cfg *tc;
	size_t ti;

	req->status = 0;
	req->allow = NULL;
	if (strcmp(req->path, "/metrics") == 0) {
		if (method_is(req, "GET")) {
			mgmt_metrics_render(s, req);
		}
		return true;
	}
	if (strlen(req->path) >= sizeof(path)) {
		reply_error(req, 404, "path: not found");
		return true;
	}
	snprintf(path, sizeof(path), "%s", req->path);
	for (p = strtok_r(path, "/", &save); p && n < PATH_PARTS; p = strtok_r(NULL, "/", &save)) {
		part[n++] = p;
	}
	if (p || n < 2 || strcmp(part[0], "v1") != 0) {
		reply_errorf(req, 404, "path: no route %.200s (API %s lives under /v1/)", req->path,
			     MGMT_API_VERSION);
		return true;
	}
	if (n == 2 && strcmp(part[1], "version") == 0) {
		if (method_is(req, "GET")) {
			get_version(s, req);
		}
		return true;
	}
	if (strcmp(part[1], "targets") == 0) {
		if (n == 2) {
			if (method_is(req, "GET, POST")) {
				strcmp(req->method, "GET") == 0 ? list_targets(s, req)
								: create_target(s, req);
			}
			return true;
		}
		if (n == 3) {
			if (!method_is(req, "GET, DELETE")) {
				return true;
			}
			if (strcmp(req->method, "DELETE") == 0) {
				return delete_target(s, req, part[2]);
			}
			if (target_index(s, req, part[2], &ti)) {
				reply_json(req, 200, target_json(s, ti));
			}
			return true;
		}
		if (strcmp(part[3], "luns") == 0 && n == 4) {
			if (method_is(req, "GET, POST")) {
				strcmp(req->method, "GET") == 0 ? list_luns(s, req, part[2])
								: create_lun(s, req, part[2]);
			}
			return true;
		}
		if (strcmp(part[3], "luns") == 0 && n == 5) {
			return !method_is(req, "GET, PUT, PATCH, DELETE") ||
			       lun_item(s, req, part[2], part[4]);
		}
		if (strcmp(part[3], "acl") == 0 && n == 4) {
			if (method_is(req, "GET, PUT") && target_index(s, req, part[2], &ti)) {
				tc = &s->cfg.targets[ti];
				strcmp(req->method, "GET") == 0 ? reply_json(req, 200, acl_json(tc))
								: put_acl(s, req, tc);
			}
			return true;
		}
		if (strcmp(part[3], "acl") == 0 && n >= 5 && n <= 6 &&
		    (strcmp(part[4], "initiators") == 0 || strcmp(part[4], "networks") == 0)) {
			bool nets = strcmp(part[4], "networks") == 0;
			if (n == 5 && !method_is(req, nets ? "GET, POST, DELETE" : "GET, POST")) {
				return true;
			}
			if (n == 6 && (nets || !method_is(req, "DELETE"))) {
				if (nets) {
					reply_error(req, 404,
						    "path: remove a network with DELETE "
						    ".../acl/networks?cidr=ADDR/PREFIX");
				}
				return true;
			}
			if (!target_index(s, req, part[2], &ti)) {
				return true;
			}
			tc = &s->cfg.targets[ti];
			if (strcmp(req->method, "GET") == 0) {
				reply_json(req, 200,
					   nets ? strv_json(tc->networks, tc->nnetworks)
						: strv_json(tc->initiators, tc->ninitiators));
				return true;
			}
			acl_entry(s, req, tc, nets, n == 6 ? part[5] : req->cidr);
			return true;
		}
		if (strcmp(part[3], "chap") == 0 && n == 4) {
			if (method_is(req, "GET, PUT, DELETE") && target_index(s, req, part[2], &ti)) {
				chap_item(s, req, &s->cfg.targets[ti]);
			}
			return true;
		}
	}
	if (strcmp(part[1], "luns") == 0 && n == 2) {
		if (method_is(req, "GET")) {
			list_luns(s, req, NULL);
		}
		return true;
	}
	if ((strcmp(part[1], "portal_groups") == 0 || strcmp(part[1], "tpgts") == 0) && n == 2) {
		if (method_is(req, "GET")) {
			list_tpgts(s, req);
		}
		return true;
	}
	if (strcmp(part[1], "sessions") == 0 && n <= 3) {
		if (n == 2 && method_is(req, "GET")) {
			list_sessions(s, req);
		} else if (n == 3 && method_is(req, "GET, DELETE")) {
			session_item(s, req, part[2]);
		}
		return true;
	}
	reply_errorf(req, 404, "path: no route %.200s", req->path);
	return true;
}
