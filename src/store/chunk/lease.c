/*
 * lease.c - one writer per volume (issue 5): a "lease" object under the volume
 * prefix names the daemon that serves the volume. Two daemons writing the same
 * chunks would silently lose each other's updates, so the second one is refused.
 *
 *   take:    PUT lease If-None-Match: *  ── ok ──────────────────────────────> HELD
 *              └─ exists: GET ─ released, or holder is ours (restart with the
 *                               same cache_dir), or break_lease=1 ── PUT ───> HELD
 *                             └ held by another holder ──> -EBUSY, message names it
 *   HELD:    rewritten every CHUNK_LEASE_RENEW_MS with a new time (one PUT in flight)
 *   release: PUT with state "released" (close), so the next open takes it at once;
 *            a renewal still in flight is quiesced first (cancelled if it waits
 *            for a retry), so the release is the last write and the lease is
 *            not left "held"
 *
 * Body (docs/DURABILITY.md): "s3tgt-lease 1 <held|released> <holder> <unix time>\n".
 * S3 offers no compare-and-swap on overwrite, so taking over a released or
 * broken lease is a plain PUT; the If-None-Match create is the only atomic step.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "s3tgt/core.h"
#include "s3tgt/log.h"

#include "lease.h"
#include "objstore.h"

struct chunk_lease {
	struct objstore *os;
	struct reactor *r;
	struct reactor_timer *timer;
	char holder[CHUNK_LEASE_HOLDER_MAX + 1];
	char what[128];
	char body[256];
	struct obj_req req;
	bool busy;
	bool resumed;
	/* chunk_lease_release_async */
	struct reactor_msg *done_msg;
	void (*done)(void *);
	void *done_arg;
};

static int lease_body(struct chunk_lease *l, const char *state)
{
	int n = snprintf(l->body, sizeof(l->body), "s3tgt-lease 1 %s %s %lld\n", state, l->holder,
			 (long long)time(NULL));

	return n < 0 || (size_t)n >= sizeof(l->body) ? -ENAMETOOLONG : n;
}

static void lease_req(struct chunk_lease *l, enum obj_op op, bool create, size_t len)
{
	memset(&l->req, 0, sizeof(l->req));
	l->req.op = op;
	snprintf(l->req.key, sizeof(l->req.key), "%s", CHUNK_LEASE_KEY);
	l->req.buf = l->body;
	l->req.len = len;
	l->req.if_none_match = create;
}

int chunk_lease_holder_random(char *buf, size_t len)
{
	uint8_t u[16];

	if (len < 2 * sizeof(u) + 1) {
		return -ENOSPC;
	}
	if (getrandom(u, sizeof(u), 0) != (ssize_t)sizeof(u)) {
		return -EIO;
	}
	for (size_t i = 0; i < sizeof(u); i++) {
		snprintf(buf + 2 * i, 3, "%02x", u[i]);
	}
	return 0;
}

static bool holder_ok(const char *h)
{
	size_t n = strlen(h);

	if (n == 0 || n > CHUNK_LEASE_HOLDER_MAX) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		char ch = h[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '_' || ch == '.')) {
			return false;
		}
	}
	return true;
}

static void renew_done(struct obj_req *req)
{
	struct chunk_lease *l = req->cb_arg;

	l->busy = false;
	if (req->status && req->status != -ECANCELED) {
		LOG_RATELIMIT(LOG_LEVEL_WARN, "chunk", "%s: renewing the lease failed: %s", l->what,
			      strerror(-req->status));
	}
}

static void renew_tick(void *arg)
{
	struct chunk_lease *l = arg;
	int n;

	if (l->busy) {
		return;
	}
	n = lease_body(l, "held");
	if (n < 0) {
		return;
	}
	lease_req(l, OBJ_PUT, false, (size_t)n);
	l->req.cb = renew_done;
	l->req.cb_arg = l;
	if (l->os->ops->submit(l->os, &l->req) == 0) {
		l->busy = true;
	}
}

int chunk_lease_take(struct objstore *os, struct reactor *r, const char *holder, bool break_lease,
		     const char *what, struct chunk_lease **out, char *err, size_t errlen)
{
	struct chunk_lease *l = calloc(1, sizeof(*l));
	char state[16], other[CHUNK_LEASE_HOLDER_MAX + 1];
	long long when = 0;
	int n, ret;

	if (!l) {
		return -ENOMEM;
	}
	l->os = os;
	l->r = r;
	snprintf(l->what, sizeof(l->what), "%s", what);
	if (holder) {
		if (!holder_ok(holder)) {
			snprintf(err, errlen,
				 "lease_holder '%s': 1-%d letters, digits, '-', '_', '.'", holder,
				 CHUNK_LEASE_HOLDER_MAX);
			ret = -EINVAL;
			goto err;
		}
		snprintf(l->holder, sizeof(l->holder), "%s", holder);
	} else {
		ret = chunk_lease_holder_random(l->holder, sizeof(l->holder));
		if (ret) {
			snprintf(err, errlen, "cannot make a lease holder id: %s", strerror(-ret));
			goto err;
		}
	}
	n = lease_body(l, "held");
	if (n < 0) {
		ret = n;
		goto err;
	}
	lease_req(l, OBJ_PUT, true, (size_t)n);
	ret = os->ops->put_sync(os, &l->req);
	if (ret == -EEXIST || l->req.status == -EEXIST) {
		char cur[256] = "";

		lease_req(l, OBJ_GET, false, 0);
		l->req.buf = cur;
		l->req.len = sizeof(cur) - 1;
		ret = os->ops->get_sync(os, &l->req);
		if (ret == 0) {
			cur[l->req.got < sizeof(cur) ? l->req.got : sizeof(cur) - 1] = '\0';
		}
		if (ret == -ENOENT) {
			state[0] = '\0'; /* released by deletion meanwhile */
		} else if (ret) {
			snprintf(err, errlen, "cannot read the volume lease: %s", strerror(-ret));
			goto err;
		} else if (sscanf(cur, "s3tgt-lease 1 %15s %64s %lld", state, other, &when) != 3) {
			snprintf(err, errlen,
				 "the volume lease object is unreadable; start with "
				 "break_lease=1 if no other daemon serves this volume");
			ret = -EBADMSG;
			goto err;
		}
		if (state[0] && strcmp(state, "released") != 0 && strcmp(other, l->holder) != 0) {
			if (!break_lease) {
				snprintf(
				    err, errlen,
				    "volume is in use by another daemon (lease holder %s, renewed "
				    "%lld s ago); if that daemon is gone for good, start this "
				    "LUN once with break_lease=1",
				    other, (long long)time(NULL) - when);
				ret = -EBUSY;
				goto err;
			}
			LOG_WARN("chunk",
				 "%s: breaking the lease of holder %s (renewed %lld s ago) "
				 "as asked by break_lease=1",
				 what, other, (long long)time(NULL) - when);
		} else if (state[0] && strcmp(other, l->holder) == 0) {
			LOG_INFO("chunk", "%s: taking back our own lease (holder %s)", what, other);
			/* Overwriting a lease is not atomic, but the last writer is named in it. */
			l->resumed = strcmp(state, "released") == 0;
		}
		n = lease_body(l, "held");
		lease_req(l, OBJ_PUT, false, (size_t)n);
		ret = os->ops->put_sync(os, &l->req);
	}
	if (ret == 0 && l->req.status) {
		ret = l->req.status;
	}
	if (ret) {
		snprintf(err, errlen, "cannot write the volume lease: %s", strerror(-ret));
		goto err;
	}
	if (r) {
		l->timer = reactor_timer_add(r, CHUNK_LEASE_RENEW_MS, true, renew_tick, l);
		if (!l->timer) {
			snprintf(err, errlen, "out of memory for the lease timer");
			ret = -ENOMEM;
			goto err;
		}
	}
	*out = l;
	return 0;
err:
	free(l);
	return ret;
}

/* Stop renewing; a renewal in flight completes first, so the release is the last write. */
static int release_prepare(struct chunk_lease *l)
{
	int n;

	if (l->timer) {
		reactor_timer_cancel(l->r, l->timer);
		l->timer = NULL;
	}
	if (l->busy) {
		l->os->ops->quiesce(l->os);
	}
	n = lease_body(l, "released");
	if (n > 0) {
		lease_req(l, OBJ_PUT, false, (size_t)n);
		/* At close S3 may be down: do not hold the close for the whole retry deadline. */
		l->req.deadline_ms = CHUNK_LEASE_RELEASE_MS;
	}
	return n;
}

static void release_result(struct chunk_lease *l, int rc)
{
	if (rc != 0 || l->req.status) {
		LOG_WARN("chunk",
			 "%s: could not release the lease (holder %s); the next "
			 "open by another daemon needs break_lease=1",
			 l->what, l->holder);
	}
}

void chunk_lease_release(struct chunk_lease *l)
{
	if (!l) {
		return;
	}
	if (release_prepare(l) > 0) {
		release_result(l, l->os->ops->put_sync(l->os, &l->req));
	}
	free(l);
}

static void release_done(struct obj_req *req)
{
	struct chunk_lease *l = req->cb_arg;

	release_result(l, 0);
	reactor_msg_post(l->r, l->done_msg, l->done, l->done_arg);
	free(l);
}

int chunk_lease_release_async(struct chunk_lease *l, void (*done)(void *), void *arg)
{
	l->done_msg = reactor_msg_alloc(l->r);
	if (!l->done_msg) {
		return -ENOMEM;
	}
	l->done = done;
	l->done_arg = arg;
	if (release_prepare(l) > 0) {
		l->req.cb = release_done;
		l->req.cb_arg = l;
		if (l->os->ops->submit(l->os, &l->req) == 0) {
			return 0;
		}
		release_result(l, -EIO);
	}
	reactor_msg_post(l->r, l->done_msg, done, arg);
	free(l);
	return 0;
}

const char *chunk_lease_holder(const struct chunk_lease *l)
{
	return l->holder;
}

bool chunk_lease_resumed(const struct chunk_lease *l)
{
	return l->resumed;
}
