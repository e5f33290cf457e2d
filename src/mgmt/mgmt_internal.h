/*
 * mgmt_internal.h - private types of the management module: the persistent
 * configuration model (config.c), the live state (state.c), per-LUN I/O
 * statistics (stats.c) and the request router (api.c).
 */
#ifndef S3TGT_MGMT_INTERNAL_H
#define S3TGT_MGMT_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3tgt/iscsi.h"
#include "s3tgt/mgmt.h"
#include "s3tgt/store.h"

/* ---- config.c: the JSON schema (a superset of s3tgtd --config) ----
 *
 * { "portals": ["127.0.0.1:3260"], "state_dir": "/var/lib/s3tgt",
 *   "nop_interval": 15, "nop_timeout": 30,
 *   "targets": [ { "name": "iqn.2026-11.io.example:t1", "alias": "disk",
 *                  "luns": [ { "lun": 0, "uri": "ram:?size=1G" } ],
 *                  "acl": { "initiators": ["iqn..."], "networks": ["10.0.0.0/8"] },
 *                  "chap": { "user": "u", "secret": "...",
 *                            "mutual_user": "t", "mutual_secret": "..." } } ] }
 */
struct mgmt_lun_cfg {
	uint64_t lun;
	char *uri;
};

struct mgmt_target_cfg {
	char *name;
	char *alias;
	struct mgmt_lun_cfg *luns;
	size_t nluns;
	char **initiators;
	size_t ninitiators;
	char **networks;
	size_t nnetworks;
	bool has_chap;
	struct iscsi_chap_config chap;
};

struct mgmt_config {
	char **portals;
	size_t nportals;
	char *state_dir;
	/* iSCSI keepalive in seconds (iscsi_server_set_nop); kept only if the file sets it */
	bool has_nop_interval;
	bool has_nop_timeout;
	uint32_t nop_interval;
	uint32_t nop_timeout;
	struct mgmt_target_cfg *targets;
	size_t ntargets;
};

/* Validation shared by the config loader and the API; messages name `field`. */
int mgmt_check_name(const char *name, const char *field, char *err, size_t errlen);
int mgmt_check_lun(json_t *v, const char *field, uint64_t *out, char *err, size_t errlen);
int mgmt_check_uri(const char *uri, const char *field, char *err, size_t errlen);
int mgmt_check_cidr(const char *cidr, const char *field, char *err, size_t errlen);
/* Fill a CHAP config from a JSON object; -EINVAL naming "<prefix>.user" etc. */
int mgmt_chap_from_json(json_t *o, const char *prefix, struct iscsi_chap_config *c, char *err,
			size_t errlen);

/* Parse and validate a whole document. cfg is filled (fini on error too). */
int mgmt_config_parse(const char *text, size_t len, struct mgmt_config *cfg, char *err,
		      size_t errlen);
/* A missing file gives an empty configuration and *missing = true. */
int mgmt_config_load(const char *path, struct mgmt_config *cfg, bool *missing, char *err,
		     size_t errlen);
/* The document (with CHAP secrets: it is the persistent copy). New reference. */
json_t *mgmt_config_to_json(const struct mgmt_config *cfg);
/* Atomic save: temp file (0600), fsync, rename, fsync directory. */
int mgmt_config_save(const char *path, const struct mgmt_config *cfg, char *err, size_t errlen);
void mgmt_config_fini(struct mgmt_config *cfg);
void mgmt_target_cfg_fini(struct mgmt_target_cfg *t);
struct mgmt_target_cfg *mgmt_config_find(struct mgmt_config *cfg, const char *name,
					 size_t *index);
int mgmt_strv_add(char ***v, size_t *n, const char *s);
void mgmt_strv_remove(char **v, size_t *n, size_t i);

/* ---- stats.c: a store layer that counts I/O per operation ---- */
#define MGMT_STAT_OPS 5	     /* enum store_op values */
#define MGMT_LAT_BUCKETS 12  /* + the implicit +Inf bucket */

struct mgmt_op_stats {
	uint64_t count;
	uint64_t errors;
	uint64_t bytes;
	uint64_t lat_sum_ns;
	uint64_t lat_bucket[MGMT_LAT_BUCKETS + 1]; /* cumulative when printed */
};

struct mgmt_lun_stats {
	struct mgmt_op_stats op[MGMT_STAT_OPS];
};

/* Upper bounds of the latency buckets in seconds (Prometheus "le"). */
extern const double mgmt_lat_bounds[MGMT_LAT_BUCKETS];
/*
 * Wrap lower (takes ownership) in a counting store; *stats stays valid until
 * the wrapper is closed. Returns 0 or -ENOMEM (lower is closed then).
 */
int mgmt_stats_wrap(struct store *lower, struct store **out, struct mgmt_lun_stats **stats);
const char *mgmt_op_name(unsigned op);

/* ---- state.c ---- */
struct mgmt_lun_rt {
	uint64_t lun;
	struct scsi_lu *lu;		/* owned by the scsi target */
	struct mgmt_lun_stats *stats;	/* owned by the LU's store */
};

struct mgmt_target_rt {
	struct scsi_target *t;
	struct mgmt_lun_rt *luns;
	size_t nluns;
};

struct mgmt_dying; /* deleted LUs waiting to drain, be flushed and be closed */

struct mgmt_state {
	struct reactor *r;
	struct iscsi_server *srv;
	char *config_path;
	char *state_dir;
	char *version;
	struct mgmt_config cfg;		/* the persistent model */
	struct mgmt_target_rt *rt;	/* parallel to cfg.targets */
	struct mgmt_dying *dying;
	struct reactor_timer *reap_timer;
	struct reactor_timer *reap_kick; /* one-shot: close a flushed LU at once */
};

/* HTTP-free request/response, so the router is unit-testable. */
struct mgmt_req {
	const char *method;
	const char *path;
	bool force;
	const char *cidr; /* ?cidr= for network removal */
	const char *body;
	size_t body_len;
	/* reply */
	unsigned status;
	char *reply;	      /* owned (malloc); JSON or Prometheus text */
	const char *content_type;
	const char *allow;    /* Allow header for 405 */
	/* asynchronous completion (forced deletes wait for sessions to go) */
	void (*done)(struct mgmt_req *req);
	void *done_arg;
};

/*
 * Route and run one request on the reactor thread. Returns true if the reply
 * is complete on return; false if req->done(req) will run later.
 */
bool mgmt_api_handle(struct mgmt_state *s, struct mgmt_req *req);
void mgmt_req_fini(struct mgmt_req *req);

/* state.c operations; return 0 or -errno with err (and *field) set. */
int mgmt_target_create(struct mgmt_state *s, const char *name, const char *alias, char *err,
		       size_t errlen);
/*
 * Deletes hand their LUs to the reaper: each waits until its commands are
 * done, gets STORE_OP_FLUSH (a write-back cache stores what it acknowledged),
 * and only then is closed. done(arg, status) runs exactly once, from the
 * reactor or before the call returns: status 0 once every LU of the call is
 * flushed and closed; -ETIMEDOUT after MGMT_FLUSH_TIMEOUT_MS, or the first
 * flush error. A store whose flush timed out or failed transiently stays
 * open and the flush is retried every MGMT_FLUSH_RETRY_MS, so nothing
 * acknowledged is dropped while the daemon runs. On -errno returns (nothing
 * changed) done never runs.
 */
#define MGMT_FLUSH_TIMEOUT_MS 20000u
#define MGMT_FLUSH_RETRY_MS 5000u
typedef void (*mgmt_retired_fn)(void *arg, int status);
/* -EBUSY while sessions are logged in to it. */
int mgmt_target_delete(struct mgmt_state *s, const char *name, mgmt_retired_fn done, void *arg);
int mgmt_lun_create(struct mgmt_state *s, const char *target, uint64_t lun, const char *uri,
		    char *err, size_t errlen);
/* -EBUSY while the LU has commands in flight (unless force: removed, destroyed once drained). */
int mgmt_lun_delete(struct mgmt_state *s, const char *target, uint64_t lun, bool force,
		    mgmt_retired_fn done, void *arg);
int mgmt_lun_resize(struct mgmt_state *s, const char *target, uint64_t lun, uint64_t size,
		    char *err, size_t errlen);
int mgmt_acl_apply(struct mgmt_state *s, struct mgmt_target_cfg *tc);
int mgmt_chap_apply(struct mgmt_state *s, struct mgmt_target_cfg *tc);
int mgmt_state_save(struct mgmt_state *s, char *err, size_t errlen);
struct mgmt_target_rt *mgmt_state_rt(struct mgmt_state *s, const char *name,
				     struct mgmt_target_cfg **cfg);
/* Close every session logged in to the target. Returns how many. */
unsigned mgmt_logout_target(struct mgmt_state *s, const char *name);
void mgmt_metrics_render(struct mgmt_state *s, struct mgmt_req *req);

#endif
