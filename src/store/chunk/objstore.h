/*
 * objstore.h - the object back end under the chunked stores (private to
 * src/store). The chunk logic (chunk.c) speaks only this interface; `dir`
 * implements it with files in a directory, `s3` with S3 requests.
 *
 * Async rule as for stores: submit() returns 0 and req->cb runs exactly once,
 * later, on the reactor given at creation (or inside quiesce() or destroy());
 * or it returns -errno and cb never runs.
 * Keys are relative to the volume prefix ("chunks/0000000000000abc").
 */
#ifndef S3TGT_OBJSTORE_H
#define S3TGT_OBJSTORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3tgt/core.h"
#include "s3tgt/store.h"

struct objstore;
struct obj_req;

enum obj_op {
	OBJ_GET,	  /* whole object, or [range_off, range_off+range_len) */
	OBJ_PUT,	  /* whole object */
	OBJ_DELETE,	  /* missing object is success */
	OBJ_DELETE_MULTI, /* keys[0..nkeys) in one request (S3 DeleteObjects) */
};

#define OBJ_META_MAX 1024
/* S3 ETags are 32 hex digits, "-N" for multipart; room for quotes and more. */
#define OBJ_ETAG_MAX 80
/* S3 DeleteObjects takes at most 1000 keys per request. */
#define OBJ_DELETE_MULTI_MAX 1000u

typedef void (*obj_cb_fn)(struct obj_req *req);

struct obj_req {
	enum obj_op op;
	char key[256];
	uint64_t range_off;
	uint64_t range_len; /* GET: 0 = whole object */
	void *buf;	    /* borrowed. GET: room for `len` bytes; PUT: `len` bytes of body */
	size_t len;
	size_t got;	    /* GET: bytes received */
	/* User metadata: PUT sends it, GET returns it (S3: x-amz-meta-s3tgt). NUL-terminated. */
	char meta[OBJ_META_MAX];
	bool if_none_match; /* PUT only if the object does not exist (-EEXIST otherwise) */
	/*
	 * PUT only if the object exists with this entity tag (-ESTALE
	 * otherwise): compare-and-swap. Sent as given; "" = unconditional.
	 */
	char if_match[OBJ_ETAG_MAX];
	/* Set by a successful GET or PUT: the object's entity tag, unquoted ("" if unknown). */
	char etag[OBJ_ETAG_MAX];
	unsigned deadline_ms; /* retry transient failures this long at most; 0: back end's default */
	/*
	 * Optional, for a change made under a lease: retry it only while the
	 * monotonic clock (reactor_now_ms) is before *valid_until; after that a
	 * transient failure ends with -ETIMEDOUT, so a write sent before its
	 * owner lost the volume cannot land long after. Read on the back end's
	 * threads, hence atomic. NULL: retried until the deadline.
	 */
	const _Atomic uint64_t *valid_until;
	/*
	 * DELETE_MULTI (`key` unused): keys and key_status are borrowed arrays of
	 * nkeys (1..OBJ_DELETE_MULTI_MAX) entries. When status is 0, key_status[i]
	 * is key i's own result: 0 (deleted, or was missing) or -errno as for
	 * status, -EAGAIN for a transient per-key failure, which the back end
	 * does not retry. When status is not 0 the request failed as a whole and
	 * key_status is unspecified.
	 */
	const char *const *keys;
	int *key_status;
	unsigned nkeys;
	/*
	 * 0, or -ENOENT (no such object), -EEXIST (If-None-Match PUT lost),
	 * -ESTALE (If-Match PUT lost),
	 * -EACCES (denied / bad credentials), -ENXIO (no such bucket),
	 * -ETIMEDOUT / -EIO (failed after retries).
	 */
	int status;
	obj_cb_fn cb;
	void *cb_arg;
	void *priv;		  /* back end's scratch */
	struct reactor_node done; /* back end's completion queue link */
};

typedef void (*obj_list_fn)(void *arg, const char *key, uint64_t size);

struct objstore_ops {
	const char *name;
	int (*submit)(struct objstore *os, struct obj_req *req);
	/*
	 * Synchronous listing of every key under `prefix` (relative), paged as
	 * the back end needs. Used at open only, may block. Returns 0 or -errno.
	 */
	int (*list)(struct objstore *os, const char *prefix, obj_list_fn fn, void *arg);
	/* Synchronous single-object helpers for open-time work (manifest). */
	int (*get_sync)(struct objstore *os, struct obj_req *req);
	int (*put_sync)(struct objstore *os, struct obj_req *req);
	/*
	 * Reactor thread only, may block. Runs the callback of every request
	 * outstanding before it returns; none is retried any more: a request
	 * still waiting completes with -ECANCELED, one being carried out finishes
	 * (bounded by the back end's request timeout). So a request that follows
	 * is carried out after them, and an owner can free what its callbacks use.
	 * The store stays usable.
	 */
	void (*quiesce)(struct objstore *os);
	/* Quiesces first, so no callback runs after it returned. */
	void (*destroy)(struct objstore *os);
	/* Optional: counters for GET /metrics (store.h store_metrics()). Never blocks. */
	void (*metrics)(struct objstore *os, store_metric_fn fn, void *arg);
};

struct objstore {
	const struct objstore_ops *ops;
	void *priv;
	char err[256]; /* last error message for open-time failures */
};

#endif
