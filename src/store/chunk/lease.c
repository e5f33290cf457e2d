/*
 * lease.c - one writer per volume (issue 5): a "lease" object under the volume
 * prefix names the daemon that serves the volume. Two daemons writing the same
 * chunks would silently lose each other's updates, so the second one is refused.
 *
 *   take:    PUT lease If-None-Match: *  ── ok ──────────────────────────────> HELD
 *              └─ exists: GET ─ released, or holder is ours (restart with the
 *                               same cache_dir), or break_lease=1 ── PUT ───> HELD
 *                             └ held by another holder ──> -EBUSY, message names it
 *   HELD:    rewritten every renew_ms (lease_renew_ms=) with a new time (one PUT in flight)
 *   release: PUT with state "released" (close), so the next open takes it at once;
 *            a renewal still in flight is quiesced first (cancelled if it waits
 *            for a retry), so the release is the last write and the lease is
 *            not left "held"
 *
 * Every write after the create is a compare-and-swap: PUT If-Match with the
 * ETag of the lease as we last wrote or read it. So of two daemons taking
 * over the same lease at once only one wins, and a daemon whose lease was
 * broken (break_lease=1 elsewhere, while it was still alive) finds out at
 * its next renewal instead of overwriting the new holder: the lease is then
 * LOST, and the store refuses writes (chunk_lease_lost).
 *
 * The lease is "confirmed" while the last write that proved it ours (the
 * take, a renewal) was sent less than 1.5 renewal periods ago. The chunk
 * store sends and retries its own writes only then (chunk_lease_confirmed,
 * obj_req.valid_until): a daemon that was paused or cut off longer renews
 * first, so what it held back never lands over a new holder's data. Each
 * renewal's end is reported to the owner (chunk_lease_set_notify).
 *
 * A 412 is ambiguous, so the lease is read back: our own body means an
 * earlier attempt of this PUT landed (adopt its ETag); an unchanged ETag
 * means the endpoint did not accept the tag as sent (RGW 16 compares it
 * unquoted, RFC 7232 quotes it: the other form is tried, then plain PUTs,
 * with a warning); anything else is another writer. The form is learned at
 * open, by one conditional PUT. An endpoint that ignores If-Match makes
 * every PUT succeed: the lease then works as it did without it.
 *
 * Body (docs/DURABILITY.md): "s3tgt-lease 1 <held|released> <holder> <unix time>\n".
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
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
	char what[512]; /* the LUN's store URI, for messages */
	char body[256];
	struct obj_req req;
	char cur[256];		 /* the lease as read back after a 412 */
	char etag[OBJ_ETAG_MAX]; /* of the lease as we last wrote or read it */
	bool quote;		 /* send If-Match quoted (learned at open) */
	bool no_cas;		 /* the endpoint cannot do If-Match: plain PUTs */
	bool lost;		 /* another holder took the lease: refuse writes */
	bool busy;
	bool resumed;
	unsigned renew_ms;
	uint64_t sent_ms; /* when the renewal under way (or last) was sent */
	/*
	 * Confirmed ours until then (reactor_now_ms): 1.5 periods after the last
	 * write that proved it was sent; 0 once lost. Atomic: the object store's
	 * threads read it (obj_req.valid_until).
	 */
	_Atomic uint64_t valid_until;
	void (*notify)(void *arg, int status);
	void *notify_arg;
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

/* A PUT of l->body (len bytes), conditional on l->etag unless the endpoint cannot do it. */
static void lease_put_req(struct chunk_lease *l, size_t len)
{
	lease_req(l, OBJ_PUT, false, len);
	if (!l->no_cas && l->etag[0]) {
		snprintf(l->req.if_match, sizeof(l->req.if_match), l->quote ? "\"%s\"" : "%s",
			 l->etag);
	}
}

/* A GET of the lease into l->cur (NUL-terminated once done: lease_cur_end). */
static void lease_get_req(struct chunk_lease *l)
{
	lease_req(l, OBJ_GET, false, 0);
	l->req.buf = l->cur;
	l->req.len = sizeof(l->cur) - 1;
}

static void lease_cur_end(struct chunk_lease *l)
{
	l->cur[l->req.got < sizeof(l->cur) ? l->req.got : sizeof(l->cur) - 1] = '\0';
}

static bool lease_parse(const char *body, char *state, char *holder, long long *when)
{
	return sscanf(body, "s3tgt-lease 1 %15s %64s %lld", state, holder, when) == 3;
}

enum cas_verdict {
	CAS_OURS,  /* the lease holds what we wrote: an earlier attempt landed */
	CAS_FORM,  /* unchanged since we read it: our If-Match was not understood */
	CAS_TAKEN, /* someone else wrote (or deleted) it */
};

/*
 * After a 412: what the lease read back (status rc, body l->cur, tag in
 * l->req) says. CAS_OURS adopts the tag of our landed write.
 */
static enum cas_verdict cas_verdict(struct chunk_lease *l, int rc)
{
	if (rc != 0) {
		l->cur[0] = '\0'; /* -ENOENT: deleted under us */
		return CAS_TAKEN;
	}
	lease_cur_end(l);
	if (strcmp(l->cur, l->body) == 0) {
		snprintf(l->etag, sizeof(l->etag), "%s", l->req.etag);
		return CAS_OURS;
	}
	if (l->req.etag[0] && strcmp(l->req.etag, l->etag) == 0) {
		return CAS_FORM;
	}
	return CAS_TAKEN;
}

/* CAS_FORM: try the other form of the tag, then give up on conditional PUTs. */
static void cas_next_form(struct chunk_lease *l)
{
	if (!l->quote) {
		l->quote = true;
		return;
	}
	l->no_cas = true;
	LOG_WARN("chunk",
		 "%s: the endpoint refuses If-Match on PUT with the lease's own ETag; the "
		 "lease is rewritten without compare-and-swap (docs/DURABILITY.md)",
		 l->what);
}

/* The PUT succeeded: its tag conditions the next one. None given: no CAS possible. */
static void cas_written(struct chunk_lease *l)
{
	snprintf(l->etag, sizeof(l->etag), "%s", l->req.etag);
	if (!l->etag[0] && !l->no_cas) {
		l->no_cas = true;
		LOG_WARN("chunk",
			 "%s: the endpoint returns no ETag for the lease; it is rewritten "
			 "without compare-and-swap",
			 l->what);
	}
}

/* Who holds the lease read back into l->cur, for a message ("?", "deleted" if unknown). */
static void cur_holder(const struct chunk_lease *l, char state[16],
		       char other[CHUNK_LEASE_HOLDER_MAX + 1])
{
	long long when = 0;

	if (!lease_parse(l->cur, state, other, &when)) {
		snprintf(state, 16, "deleted");
		snprintf(other, CHUNK_LEASE_HOLDER_MAX + 1, "?");
	}
}

static void lease_lost(struct chunk_lease *l)
{
	char state[16], other[CHUNK_LEASE_HOLDER_MAX + 1];

	cur_holder(l, state, other);
	l->lost = true;
	atomic_store(&l->valid_until, 0);
	if (l->timer) {
		reactor_timer_cancel(l->r, l->timer);
		l->timer = NULL;
	}
	LOG_ERR("chunk",
		"%s: the volume lease was taken over (now holder %s, state %s); this LUN "
		"no longer writes to the volume: writes fail with WRITE PROTECTED until it "
		"is reopened",
		l->what, other, state);
}

/*
 * Write "held" with compare-and-swap against l->etag (open: synchronous).
 * breaking: the holder break_lease=1 takes the lease from (NULL: none); its
 * own renewals meanwhile do not stop the takeover, another daemon's write does.
 * Returns 0, -EBUSY (another writer got there first; message in err) or -errno.
 */
static int cas_put_sync(struct chunk_lease *l, const char *breaking, char *err, size_t errlen)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		int n = lease_body(l, "held"), ret;

		if (n < 0) {
			return n;
		}
		lease_put_req(l, (size_t)n);
		ret = l->os->ops->put_sync(l->os, &l->req);
		if (ret == 0 && l->req.status) {
			ret = l->req.status;
		}
		if (ret == 0) {
			cas_written(l);
			return 0;
		}
		if (ret != -ESTALE) {
			snprintf(err, errlen, "cannot write the volume lease: %s", strerror(-ret));
			return ret;
		}
		lease_get_req(l);
		ret = l->os->ops->get_sync(l->os, &l->req);
		if (ret == 0 && l->req.status) {
			ret = l->req.status;
		}
		if (ret && ret != -ENOENT) {
			snprintf(err, errlen, "cannot read the volume lease: %s", strerror(-ret));
			return ret;
		}
		switch (cas_verdict(l, ret)) {
		case CAS_OURS:
			return 0;
		case CAS_FORM:
			cas_next_form(l);
			break;
		case CAS_TAKEN: {
			char state[16], other[CHUNK_LEASE_HOLDER_MAX + 1];

			cur_holder(l, state, other);
			if (breaking && strcmp(state, "held") == 0 &&
			    strcmp(other, breaking) == 0) {
				/* The holder we break renewed meanwhile: against its new tag. */
				snprintf(l->etag, sizeof(l->etag), "%s", l->req.etag);
				continue;
			}
			snprintf(err, errlen,
				 "the volume lease changed while this daemon took it (now holder "
				 "%s, state %s): another daemon opened the volume at the same time",
				 other, state);
			return -EBUSY;
		}
		}
	}
	snprintf(err, errlen, "cannot write the volume lease: If-Match keeps failing");
	return -EIO;
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

/* A write that proved the lease ours was sent at since. */
static void lease_confirm(struct chunk_lease *l, uint64_t since)
{
	/* Without a reactor nothing renews it: the take confirms it for good. */
	atomic_store(&l->valid_until, l->r ? since + l->renew_ms + l->renew_ms / 2 : UINT64_MAX);
}

/* A renewal ended: 0 = the lease is ours as of l->sent_ms, -EROFS = lost, else its error. */
static void renew_end(struct chunk_lease *l, int status)
{
	l->busy = false;
	if (status == 0) {
		lease_confirm(l, l->sent_ms);
	}
	if (l->notify) {
		l->notify(l->notify_arg, status);
	}
}

static void check_done(struct obj_req *req)
{
	struct chunk_lease *l = req->cb_arg;

	if (req->status && req->status != -ENOENT) {
		if (req->status != -ECANCELED) {
			LOG_RATELIMIT(LOG_LEVEL_WARN, "chunk",
				      "%s: reading the lease back failed: %s", l->what,
				      strerror(-req->status));
		}
		renew_end(l, req->status);
		return;
	}
	switch (cas_verdict(l, req->status)) {
	case CAS_OURS:
		renew_end(l, 0);
		break;
	case CAS_FORM:
		/* Not written: again at once in the other form, so waiting writes wait less. */
		cas_next_form(l);
		l->busy = false;
		chunk_lease_renew(l);
		if (!l->busy) {
			renew_end(l, -EIO);
		}
		break;
	case CAS_TAKEN:
		lease_lost(l);
		renew_end(l, -EROFS);
		break;
	}
}

static void renew_done(struct obj_req *req)
{
	struct chunk_lease *l = req->cb_arg;

	if (req->status == -ESTALE) {
		lease_get_req(l);
		l->req.cb = check_done;
		l->req.cb_arg = l;
		if (l->os->ops->submit(l->os, &l->req) == 0) {
			return; /* still busy */
		}
	}
	if (req->status == 0) {
		cas_written(l);
	} else if (req->status != -ECANCELED && req->status != -ESTALE) {
		LOG_RATELIMIT(LOG_LEVEL_WARN, "chunk", "%s: renewing the lease failed: %s", l->what,
			      strerror(-req->status));
	}
	renew_end(l, req->status == -ESTALE ? -EIO : req->status);
}

static void renew_tick(void *arg)
{
	chunk_lease_renew(arg);
}

void chunk_lease_renew(struct chunk_lease *l)
{
	int n;

	if (l->busy || l->lost) {
		return;
	}
	n = lease_body(l, "held");
	if (n < 0) {
		return;
	}
	lease_put_req(l, (size_t)n);
	l->req.cb = renew_done;
	l->req.cb_arg = l;
	l->sent_ms = reactor_now_ms();
	if (l->os->ops->submit(l->os, &l->req) == 0) {
		l->busy = true;
	}
}

const _Atomic uint64_t *chunk_lease_valid_until(const struct chunk_lease *l)
{
	return &l->valid_until;
}

bool chunk_lease_confirmed(const struct chunk_lease *l)
{
	return reactor_now_ms() < atomic_load(&l->valid_until);
}

void chunk_lease_set_notify(struct chunk_lease *l, void (*fn)(void *arg, int status), void *arg)
{
	l->notify = fn;
	l->notify_arg = arg;
}

int chunk_lease_take(struct objstore *os, struct reactor *r, const struct chunk_lease_opts *o,
		     const char *what, struct chunk_lease **out, char *err, size_t errlen)
{
	const char *holder = o->holder;
	struct chunk_lease *l = calloc(1, sizeof(*l));
	char state[16], other[CHUNK_LEASE_HOLDER_MAX + 1];
	bool breaking = false;
	long long when = 0;
	int n, ret;

	if (!l) {
		return -ENOMEM;
	}
	l->os = os;
	l->r = r;
	l->renew_ms = o->renew_ms;
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
	if (ret == 0 && l->req.status) {
		ret = l->req.status;
	}
	if (ret == 0) {
		/* Created. One conditional rewrite learns how the endpoint takes If-Match. */
		snprintf(l->etag, sizeof(l->etag), "%s", l->req.etag);
	} else if (ret == -EEXIST) {
		lease_get_req(l);
		ret = os->ops->get_sync(os, &l->req);
		if (ret == 0 && l->req.status) {
			ret = l->req.status;
		}
		if (ret == 0) {
			lease_cur_end(l);
			snprintf(l->etag, sizeof(l->etag), "%s", l->req.etag);
		}
		if (ret == -ENOENT) {
			state[0] = '\0'; /* released by deletion meanwhile */
		} else if (ret) {
			snprintf(err, errlen, "cannot read the volume lease: %s", strerror(-ret));
			goto err;
		} else if (!lease_parse(l->cur, state, other, &when)) {
			snprintf(err, errlen,
				 "the volume lease object is unreadable; start with "
				 "break_lease=1 if no other daemon serves this volume");
			ret = -EBADMSG;
			goto err;
		}
		if (state[0] && strcmp(state, "released") != 0 && strcmp(other, l->holder) != 0) {
			if (!o->break_lease) {
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
			breaking = true;
		} else if (state[0] && strcmp(other, l->holder) == 0) {
			LOG_INFO("chunk", "%s: taking back our own lease (holder %s)", what, other);
			l->resumed = true;
		}
		if (!state[0]) {
			l->etag[0] = '\0'; /* deleted: nothing to compare against */
		}
	} else {
		snprintf(err, errlen, "cannot write the volume lease: %s", strerror(-ret));
		goto err;
	}
	lease_confirm(l, reactor_now_ms());
	ret = cas_put_sync(l, breaking ? other : NULL, err, errlen);
	if (ret) {
		goto err;
	}
	if (r) {
		l->timer = reactor_timer_add(r, o->renew_ms, true, renew_tick, l);
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
	l->notify = NULL; /* the owner is closing */
	if (l->busy) {
		l->os->ops->quiesce(l->os);
	}
	if (l->lost) {
		return 0; /* the lease is another holder's now: leave it alone */
	}
	n = lease_body(l, "released");
	if (n > 0) {
		lease_put_req(l, (size_t)n);
		/* At close S3 may be down: do not hold the close for the whole retry deadline. */
		l->req.deadline_ms = CHUNK_LEASE_RELEASE_MS;
	}
	return n;
}

static void release_result(struct chunk_lease *l, int rc)
{
	if (rc == -ESTALE || l->req.status == -ESTALE) {
		LOG_WARN("chunk",
			 "%s: the lease changed since this daemon last wrote it; left as it is "
			 "(holder %s did not release it)",
			 l->what, l->holder);
	} else if (rc != 0 || l->req.status) {
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

bool chunk_lease_lost(const struct chunk_lease *l)
{
	return l->lost;
}
