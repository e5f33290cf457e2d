/*
 * state.c - the live configuration: the persistent model (struct
 * mgmt_config) and, in parallel arrays, the objects built from it (SCSI
 * targets and LUs exported by the iSCSI server, ACLs, CHAP accounts).
 *
 * Invariants: cfg.targets[i] and rt[i] describe the same target; every
 * target in cfg is exported by the server; a LUN in cfg has an LU in its
 * target. A deleted LU leaves cfg and its target at once and moves to the
 * dying list, checked by a 100 ms timer:
 *
 *   DRAIN --scsi_lu_busy() == 0--> FLUSH --flush ok / -ENOTSUP / hard error--> CLOSE
 *     ^                              |                                           |
 *     +--- -ETIMEDOUT/-EAGAIN, 5 s --+                       scsi_lu_destroy (store_close)
 *
 * The store is never closed while its flush is in flight. Everything runs on
 * the reactor thread.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mgmt_internal.h"
#include "s3tgt/core.h"
#include "s3tgt/log.h"
#include "s3tgt/scsi.h"

#define REAP_MS 100

/*
 * A deleted LU on its way out. DRAIN: commands still running, or waiting to
 * retry a failed flush; FLUSH: STORE_OP_FLUSH in flight (the store must stay
 * open); CLOSE: flushed, destroyed at the next reap.
 */
enum dying_state {
	DYING_DRAIN,
	DYING_FLUSH,
	DYING_CLOSE,
};

struct mgmt_dying {
	struct mgmt_dying *next;
	struct mgmt_state *s;
	struct scsi_lu *lu;
	struct scsi_target *t; /* destroyed with the entry when set */
	struct mgmt_retire *w; /* who waits for the flush; NULL: nobody (any more) */
	enum dying_state state;
	int status;	   /* CLOSE: the flush result told to w once closed */
	uint64_t retry_ms; /* DRAIN after a failed flush: not before this time */
	struct store_io io;
};

/* One delete call waiting for the flushes of its LUs. */
struct mgmt_retire {
	struct mgmt_state *s;
	unsigned pending; /* LUs not yet flushed (or failed) */
	int status;	  /* first failure */
	struct reactor_timer *timer;
	mgmt_retired_fn done;
	void *arg;
};

static char *dup_or_null(const char *s, int *bad)
{
	char *d = s ? strdup(s) : NULL;

	*bad |= s && !d;
	return d;
}

int mgmt_state_create(const struct mgmt_state_opts *o, struct mgmt_state **out)
{
	struct mgmt_state *s = calloc(1, sizeof(*s));
	int bad = 0;

	if (!s) {
		return -ENOMEM;
	}
	s->r = o->r;
	s->srv = o->srv;
	s->config_path = dup_or_null(o->config_path, &bad);
	s->state_dir = dup_or_null(o->state_dir, &bad);
	s->version = dup_or_null(o->version ? o->version : "0", &bad);
	if (bad) {
		mgmt_state_destroy(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

/* FNV-1a 64 of target name + LUN: the same serial and NAA id as s3tgtd's quick mode. */
static uint64_t lun_hash(const char *s, uint64_t lun)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 0x100000001b3ull;
	}
	for (int i = 0; i < 8; i++) {
		h ^= (uint8_t)(lun >> (8 * i));
		h *= 0x100000001b3ull;
	}
	return h;
}

static const char *state_dir(struct mgmt_state *s)
{
	return s->state_dir ? s->state_dir : s->cfg.state_dir;
}

static int build_lu(struct mgmt_state *s, const char *target, uint64_t lun, const char *uri,
		    struct mgmt_lun_rt *out, char *err, size_t errlen)
{
	struct store *lower = NULL, *st = NULL;
	struct scsi_lu_params p = {0};
	struct mgmt_lun_stats *stats;
	char serial[32], pr_path[4096];
	uint64_t h = lun_hash(target, lun);
	char why[384] = "";
	int rc;

	/* the store layer builds the whole stack the URI asks for (cache options: the cache) */
	rc = store_open_uri(uri, s->r, &lower, why, sizeof(why));
	if (rc < 0) {
		snprintf(err, errlen, "uri: %s", why[0] ? why : strerror(-rc));
		return rc;
	}
	rc = mgmt_stats_wrap(lower, &st, &stats);
	if (rc < 0) {
		return rc;
	}
	snprintf(serial, sizeof(serial), "%016llx", (unsigned long long)h);
	p.serial = serial;
	/* SPC-4 7.8.6.6.4: NAA 3 = locally assigned, 60 bits of ours. */
	p.naa_id = (3ull << 60) | (h & 0x0fffffffffffffffull);
	if (state_dir(s)) {
		int n = snprintf(pr_path, sizeof(pr_path), "%s/%016llx.pr", state_dir(s),
				 (unsigned long long)h);
		if (n < 0 || (size_t)n >= sizeof(pr_path)) {
			store_close(st);
			return -ENAMETOOLONG;
		}
		p.pr_path = pr_path;
	}
	rc = scsi_lu_create(st, &p, &out->lu);
	if (rc < 0) {
		snprintf(err, errlen, "uri: cannot create the logical unit: %s", strerror(-rc));
		store_close(st);
		return rc;
	}
	out->lun = lun;
	out->stats = stats;
	return 0;
}

struct mgmt_target_rt *mgmt_state_rt(struct mgmt_state *s, const char *name,
				     struct mgmt_target_cfg **cfg)
{
	size_t i;
	struct mgmt_target_cfg *tc = mgmt_config_find(&s->cfg, name, &i);

	if (!tc) {
		return NULL;
	}
	if (cfg) {
		*cfg = tc;
	}
	return &s->rt[i];
}

int mgmt_acl_apply(struct mgmt_state *s, struct mgmt_target_cfg *tc)
{
	struct iscsi_acl *acl;
	int rc = iscsi_acl_create(&acl);

	for (size_t i = 0; !rc && i < tc->ninitiators; i++) {
		rc = iscsi_acl_add_initiator(acl, tc->initiators[i]);
	}
	for (size_t i = 0; !rc && i < tc->nnetworks; i++) {
		rc = iscsi_acl_add_network(acl, tc->networks[i]);
	}
	if (!rc) {
		rc = iscsi_server_set_acl(s->srv, tc->name, acl);
	}
	iscsi_acl_destroy(acl);
	return rc;
}

int mgmt_chap_apply(struct mgmt_state *s, struct mgmt_target_cfg *tc)
{
	return iscsi_server_set_chap(s->srv, tc->name, tc->has_chap ? &tc->chap : NULL);
}

static void retire_finish(struct mgmt_retire *w)
{
	struct mgmt_state *s = w->s;

	if (w->timer) {
		reactor_timer_cancel(s->r, w->timer);
	}
	for (struct mgmt_dying *d = s->dying; d; d = d->next) {
		if (d->w == w) {
			d->w = NULL;
		}
	}
	w->done(w->arg, w->status);
	free(w);
}

static void retire_timeout(void *arg)
{
	struct mgmt_retire *w = arg;

	w->timer = NULL; /* a fired one-shot timer is freed by the reactor */
	if (!w->status) {
		w->status = -ETIMEDOUT;
	}
	retire_finish(w);
}

/* Transient: the store keeps the data and may store it later (cache.h outage rules). */
static bool flush_retryable(int status)
{
	return status == -ETIMEDOUT || status == -EAGAIN;
}

static void retire_one_done(struct mgmt_retire *w, int status)
{
	if (status < 0 && !w->status) {
		w->status = status;
	}
	if (--w->pending == 0) {
		retire_finish(w);
	}
}

static void reap(void *arg);

static void reap_kick(void *arg)
{
	struct mgmt_state *s = arg;

	s->reap_kick = NULL; /* fired one-shot: the reactor frees it */
	reap(s);
}

static void flushed(struct mgmt_dying *d, int status)
{
	struct mgmt_state *s = d->s;
	struct mgmt_retire *w = d->w;

	if (status == -ENOTSUP) {
		status = 0; /* nothing volatile to write back */
	}
	if (status < 0) {
		LOG_ERR("mgmt", "deleted LUN of %s: flush failed: %s%s", scsi_lu_store(d->lu)->uri,
			strerror(-status),
			flush_retryable(status) ? "; the store stays open and the flush is retried"
						: "; closing it anyway");
	}
	if (status < 0 && flush_retryable(status)) {
		d->state = DYING_DRAIN;
		d->retry_ms = reactor_now_ms() + MGMT_FLUSH_RETRY_MS;
		if (w) {
			d->w = NULL;
			retire_one_done(w, status);
		}
		return;
	}
	/* Closed from the reactor, not inside the store's own callback; w hears after. */
	d->state = DYING_CLOSE;
	d->status = status;
	if (!s->reap_kick) {
		s->reap_kick = reactor_timer_add(s->r, 0, false, reap_kick, s);
	}
}

static void flush_done(struct store_io *io)
{
	flushed(io->cb_arg, io->status);
}

static void reap(void *arg)
{
	struct mgmt_state *s = arg;
	struct mgmt_dying **pp = &s->dying;
	uint64_t now = reactor_now_ms();
	int rc;

	while (*pp) {
		struct mgmt_dying *d = *pp;
		if (d->state == DYING_DRAIN && !scsi_lu_busy(d->lu) && now >= d->retry_ms) {
			/*
			 * SBC-3 5.22: what SYNCHRONIZE CACHE would make durable must be
			 * durable before the store closes, or a write-back cache loses
			 * acknowledged writes with the LUN.
			 */
			memset(&d->io, 0, sizeof(d->io));
			d->io.op = STORE_OP_FLUSH;
			d->io.cb = flush_done;
			d->io.cb_arg = d;
			d->state = DYING_FLUSH;
			rc = store_submit(scsi_lu_store(d->lu), &d->io);
			if (rc < 0) {
				flushed(d, rc);
			}
		}
		if (d->state != DYING_CLOSE) {
			pp = &d->next;
			continue;
		}
		*pp = d->next;
		scsi_lu_destroy(d->lu);
		scsi_target_destroy(d->t);
		if (d->w) {
			retire_one_done(d->w, d->status);
		}
		free(d);
	}
	if (!s->dying && s->reap_timer) {
		reactor_timer_cancel(s->r, s->reap_timer);
		s->reap_timer = NULL;
	}
}

/*
 * Queue an LU (flushed, then destroyed) and/or a target (destroyed) for the
 * reaper; w, when set, counts the LU until its flush is done.
 */
static int retire_lu(struct mgmt_state *s, struct scsi_lu *lu, struct scsi_target *t,
		     struct mgmt_retire *w)
{
	struct mgmt_dying *d;

	if (!lu && !t) {
		return 0;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		return -ENOMEM;
	}
	d->s = s;
	d->lu = lu;
	d->t = t;
	d->state = lu ? DYING_DRAIN : DYING_CLOSE;
	if (lu && w) {
		d->w = w;
		w->pending++;
	}
	d->next = s->dying;
	s->dying = d;
	if (!s->reap_timer) {
		s->reap_timer = reactor_timer_add(s->r, REAP_MS, true, reap, s);
		if (!s->reap_timer) {
			return -ENOMEM;
		}
	}
	return 0;
}

static struct mgmt_retire *retire_begin(struct mgmt_state *s, mgmt_retired_fn done, void *arg)
{
	struct mgmt_retire *w = calloc(1, sizeof(*w));

	if (w) {
		w->s = s;
		w->done = done;
		w->arg = arg;
	}
	return w;
}

/* Every LU of the call is queued: wait (bounded) for their flushes, or answer now. */
static void retire_arm(struct mgmt_retire *w)
{
	if (w->pending) {
		w->timer =
		    reactor_timer_add(w->s->r, MGMT_FLUSH_TIMEOUT_MS, false, retire_timeout, w);
		if (w->timer) {
			return;
		}
		w->status = -ENOMEM;
	}
	retire_finish(w);
}

static int cfg_add_target(struct mgmt_state *s, const char *name, const char *alias)
{
	struct mgmt_target_cfg *nt;
	struct mgmt_target_rt *nr;
	int bad = 0;

	nt = realloc(s->cfg.targets, (s->cfg.ntargets + 1) * sizeof(*nt));
	if (!nt) {
		return -ENOMEM;
	}
	s->cfg.targets = nt;
	nr = realloc(s->rt, (s->cfg.ntargets + 1) * sizeof(*nr));
	if (!nr) {
		return -ENOMEM;
	}
	s->rt = nr;
	memset(&nt[s->cfg.ntargets], 0, sizeof(*nt));
	memset(&nr[s->cfg.ntargets], 0, sizeof(*nr));
	nt[s->cfg.ntargets].name = dup_or_null(name, &bad);
	nt[s->cfg.ntargets].alias = dup_or_null(alias, &bad);
	if (bad) {
		mgmt_target_cfg_fini(&nt[s->cfg.ntargets]);
		return -ENOMEM;
	}
	s->cfg.ntargets++;
	return 0;
}

static void cfg_drop_target(struct mgmt_state *s, size_t i)
{
	mgmt_target_cfg_fini(&s->cfg.targets[i]);
	free(s->rt[i].luns);
	memmove(&s->cfg.targets[i], &s->cfg.targets[i + 1],
		(s->cfg.ntargets - i - 1) * sizeof(*s->cfg.targets));
	memmove(&s->rt[i], &s->rt[i + 1], (s->cfg.ntargets - i - 1) * sizeof(*s->rt));
	s->cfg.ntargets--;
}

/* Export the target of cfg.targets[i] (its LUNs, ACL, CHAP) on the server. */
static int export_target(struct mgmt_state *s, size_t i, char *err, size_t errlen)
{
	struct mgmt_target_cfg *tc = &s->cfg.targets[i];
	struct mgmt_target_rt *rt = &s->rt[i];
	int rc;

	rc = scsi_target_create(tc->name, &rt->t);
	if (rc < 0) {
		snprintf(err, errlen, "name: cannot create target: %s", strerror(-rc));
		return rc;
	}
	/* Commands for LUNs without an LU (REPORT LUNS on an empty target) complete here. */
	scsi_target_set_reactor(rt->t, s->r);
	rt->luns = calloc(tc->nluns ? tc->nluns : 1, sizeof(*rt->luns));
	if (!rt->luns) {
		rc = -ENOMEM;
		goto err;
	}
	for (size_t k = 0; k < tc->nluns; k++) {
		char why[384];
		rc = build_lu(s, tc->name, tc->luns[k].lun, tc->luns[k].uri, &rt->luns[k], why,
			      sizeof(why));
		if (rc == 0) {
			rc = scsi_target_add_lu(rt->t, tc->luns[k].lun, rt->luns[k].lu);
			if (rc < 0) {
				scsi_lu_destroy(rt->luns[k].lu);
				snprintf(why, sizeof(why), "lun: %s", strerror(-rc));
			}
		}
		if (rc < 0) {
			snprintf(err, errlen, "luns[%zu].%s", k, why);
			goto err;
		}
		rt->nluns++;
	}
	rc = iscsi_server_add_target(s->srv, rt->t, tc->alias, NULL);
	if (rc < 0) {
		snprintf(err, errlen, "name: %s", rc == -EEXIST ? "target exists" : strerror(-rc));
		goto err;
	}
	rc = mgmt_acl_apply(s, tc);
	if (!rc) {
		rc = mgmt_chap_apply(s, tc);
	}
	if (rc < 0) {
		snprintf(err, errlen, "acl: %s", strerror(-rc));
		iscsi_server_remove_target(s->srv, tc->name);
		goto err;
	}
	return 0;
err:
	scsi_target_destroy(rt->t);
	rt->t = NULL;
	free(rt->luns);
	rt->luns = NULL;
	rt->nluns = 0;
	return rc;
}

int mgmt_state_load(struct mgmt_state *s, bool skip_portals, char *err, size_t errlen)
{
	uint32_t nop_interval, nop_timeout;
	bool missing;
	char why[512];
	int rc;

	if (!s->config_path) {
		return 0;
	}
	rc = mgmt_config_load(s->config_path, &s->cfg, &missing, why, sizeof(why));
	if (rc < 0) {
		snprintf(err, errlen, "%s", why);
		return rc;
	}
	if (missing) {
		LOG_INFO("mgmt", "%s does not exist: starting empty", s->config_path);
		return 0;
	}
	iscsi_server_get_nop(s->srv, &nop_interval, &nop_timeout);
	rc = iscsi_server_set_nop(s->srv,
				  s->cfg.has_nop_interval ? s->cfg.nop_interval : nop_interval,
				  s->cfg.has_nop_timeout ? s->cfg.nop_timeout : nop_timeout);
	assert(rc == 0); /* mgmt_config_parse() checked the ranges */
	s->rt = calloc(s->cfg.ntargets ? s->cfg.ntargets : 1, sizeof(*s->rt));
	if (!s->rt) {
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->cfg.ntargets; i++) {
		rc = export_target(s, i, why, sizeof(why));
		if (rc < 0) {
			snprintf(err, errlen, "targets[%zu].%s", i, why);
			return rc;
		}
	}
	for (size_t i = 0; !skip_portals && i < s->cfg.nportals; i++) {
		rc = iscsi_server_add_portal(s->srv, s->cfg.portals[i], 1, why, sizeof(why));
		if (rc < 0) {
			snprintf(err, errlen, "portals[%zu]: %s", i, why);
			return rc;
		}
	}
	return 0;
}

int mgmt_state_add_portal(struct mgmt_state *s, const char *hostport, char *err, size_t errlen)
{
	return iscsi_server_add_portal(s->srv, hostport, 1, err, errlen);
}

int mgmt_state_save(struct mgmt_state *s, char *err, size_t errlen)
{
	if (!s->config_path) {
		return 0;
	}
	return mgmt_config_save(s->config_path, &s->cfg, err, errlen);
}

int mgmt_target_create(struct mgmt_state *s, const char *name, const char *alias, char *err,
		       size_t errlen)
{
	char why[384];
	int rc;

	rc = mgmt_check_name(name, "name", err, errlen);
	if (rc) {
		return rc;
	}
	if (alias && strlen(alias) > 255) {
		snprintf(err, errlen, "alias: at most 255 characters");
		return -EINVAL;
	}
	if (mgmt_config_find(&s->cfg, name, NULL) || iscsi_server_find_target(s->srv, name)) {
		snprintf(err, errlen, "name: target %s exists", name);
		return -EEXIST;
	}
	rc = cfg_add_target(s, name, alias);
	if (rc) {
		return rc;
	}
	rc = export_target(s, s->cfg.ntargets - 1, why, sizeof(why));
	if (rc) {
		snprintf(err, errlen, "%s", why);
		cfg_drop_target(s, s->cfg.ntargets - 1);
	}
	return rc;
}

int mgmt_state_add_target(struct mgmt_state *s, const char *name, const char *alias, char *err,
			  size_t errlen)
{
	return mgmt_target_create(s, name, alias, err, errlen);
}

int mgmt_target_delete(struct mgmt_state *s, const char *name, mgmt_retired_fn done, void *arg)
{
	struct mgmt_target_rt *rt;
	struct mgmt_target_cfg *tc;
	struct mgmt_retire *w;
	size_t idx;
	int rc;

	tc = mgmt_config_find(&s->cfg, name, &idx);
	if (!tc) {
		return -ENOENT;
	}
	w = retire_begin(s, done, arg);
	if (!w) {
		return -ENOMEM;
	}
	rt = &s->rt[idx];
	rc = iscsi_server_remove_target(s->srv, tc->name);
	if (rc < 0 && rc != -ENOENT) {
		free(w);
		return rc;
	}
	/* Unexported: no new command can reach it; running ones drain first. */
	for (size_t k = 0; k < rt->nluns; k++) {
		struct scsi_lu *lu = scsi_target_remove_lu(rt->t, rt->luns[k].lun);
		if (retire_lu(s, lu, NULL, w) < 0) {
			LOG_ERR("mgmt", "%s LUN %llu: out of memory, leaking the LU", tc->name,
				(unsigned long long)rt->luns[k].lun);
		}
	}
	if (retire_lu(s, NULL, rt->t, NULL) < 0) {
		LOG_ERR("mgmt", "%s: out of memory", tc->name);
	}
	rt->t = NULL;
	cfg_drop_target(s, idx);
	retire_arm(w);
	return 0;
}

static ssize_t find_lun(const struct mgmt_target_cfg *tc, uint64_t lun)
{
	for (size_t k = 0; k < tc->nluns; k++) {
		if (tc->luns[k].lun == lun) {
			return (ssize_t)k;
		}
	}
	return -1;
}

int mgmt_lun_create(struct mgmt_state *s, const char *target, uint64_t lun, const char *uri,
		    char *err, size_t errlen)
{
	struct mgmt_target_cfg *tc;
	struct mgmt_target_rt *rt = mgmt_state_rt(s, target, &tc);
	struct mgmt_lun_cfg *nl;
	struct mgmt_lun_rt *nr, lr;
	char *copy;
	int rc;

	if (!rt) {
		snprintf(err, errlen, "target: no target %s", target);
		return -ENOENT;
	}
	if (lun > SCSI_MAX_LUN) {
		snprintf(err, errlen, "lun: expected an integer 0..%d", SCSI_MAX_LUN);
		return -EINVAL;
	}
	rc = mgmt_check_uri(uri, "uri", err, errlen);
	if (rc) {
		return rc;
	}
	if (find_lun(tc, lun) >= 0) {
		snprintf(err, errlen, "lun: LUN %llu exists on %s", (unsigned long long)lun,
			 tc->name);
		return -EEXIST;
	}
	nl = realloc(tc->luns, (tc->nluns + 1) * sizeof(*nl));
	if (!nl) {
		return -ENOMEM;
	}
	tc->luns = nl;
	nr = realloc(rt->luns, (rt->nluns + 1) * sizeof(*nr));
	if (!nr) {
		return -ENOMEM;
	}
	rt->luns = nr;
	copy = strdup(uri);
	if (!copy) {
		return -ENOMEM;
	}
	rc = build_lu(s, tc->name, lun, uri, &lr, err, errlen);
	if (rc < 0) {
		free(copy);
		return rc;
	}
	rc = scsi_target_add_lu(rt->t, lun, lr.lu);
	if (rc < 0) {
		snprintf(err, errlen, "lun: %s", strerror(-rc));
		scsi_lu_destroy(lr.lu);
		free(copy);
		return rc;
	}
	nl[tc->nluns].lun = lun;
	nl[tc->nluns].uri = copy;
	tc->nluns++;
	nr[rt->nluns++] = lr;
	return 0;
}

int mgmt_state_add_lun(struct mgmt_state *s, const char *target, uint64_t lun, const char *uri,
		       char *err, size_t errlen)
{
	return mgmt_lun_create(s, target, lun, uri, err, errlen);
}

int mgmt_lun_delete(struct mgmt_state *s, const char *target, uint64_t lun, bool force,
		    mgmt_retired_fn done, void *arg)
{
	struct mgmt_target_cfg *tc;
	struct mgmt_target_rt *rt = mgmt_state_rt(s, target, &tc);
	struct mgmt_retire *w;
	struct scsi_lu *lu;
	ssize_t k;

	if (!rt || (k = find_lun(tc, lun)) < 0) {
		return -ENOENT;
	}
	lu = scsi_target_get_lu(rt->t, lun);
	if (!force &&
	    (iscsi_server_target_sessions(s->srv, tc->name) > 0 || (lu && scsi_lu_busy(lu)))) {
		return -EBUSY;
	}
	w = retire_begin(s, done, arg);
	if (!w) {
		return -ENOMEM;
	}
	/* SAM-5: removal raises REPORTED LUNS DATA HAS CHANGED for logged-in initiators. */
	lu = scsi_target_remove_lu(rt->t, lun);
	if (retire_lu(s, lu, NULL, w) < 0) {
		LOG_ERR("mgmt", "%s LUN %llu: out of memory, leaking the LU", tc->name,
			(unsigned long long)lun);
	}
	free(tc->luns[k].uri);
	memmove(&tc->luns[k], &tc->luns[k + 1], (tc->nluns - (size_t)k - 1) * sizeof(*tc->luns));
	tc->nluns--;
	for (size_t i = 0; i < rt->nluns; i++) {
		if (rt->luns[i].lun == lun) {
			memmove(&rt->luns[i], &rt->luns[i + 1],
				(rt->nluns - i - 1) * sizeof(*rt->luns));
			rt->nluns--;
			break;
		}
	}
	retire_arm(w);
	return 0;
}

/* Rewrite (or add) the size= option of a LUN URI so a restart opens the grown size. */
static char *uri_with_size(const char *uri, uint64_t size)
{
	const char *q = strchr(uri, '?');
	size_t cap = strlen(uri) + 32, o = 0;
	char *out = malloc(cap);
	const char *p;

	if (!out) {
		return NULL;
	}
	if (!q) {
		snprintf(out, cap, "%s?size=%llu", uri, (unsigned long long)size);
		return out;
	}
	memcpy(out, uri, (size_t)(q - uri) + 1);
	o = (size_t)(q - uri) + 1;
	p = q + 1;
	while (*p) {
		const char *e = strchr(p, '&');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (!(n >= 5 && strncmp(p, "size=", 5) == 0)) {
			memcpy(out + o, p, n);
			o += n;
			out[o++] = '&';
		}
		p += n;
		if (*p == '&') {
			p++;
		}
	}
	snprintf(out + o, cap - o, "size=%llu", (unsigned long long)size);
	return out;
}

int mgmt_lun_resize(struct mgmt_state *s, const char *target, uint64_t lun, uint64_t size,
		    char *err, size_t errlen)
{
	struct mgmt_target_cfg *tc;
	struct mgmt_target_rt *rt = mgmt_state_rt(s, target, &tc);
	struct scsi_lu *lu;
	struct store *st;
	char *uri;
	ssize_t k;
	int rc;

	if (!rt || (k = find_lun(tc, lun)) < 0) {
		snprintf(err, errlen, "lun: no LUN %llu on %s", (unsigned long long)lun, target);
		return -ENOENT;
	}
	lu = scsi_target_get_lu(rt->t, lun);
	st = scsi_lu_store(lu);
	if (size % st->block_size) {
		snprintf(err, errlen, "size: must be a multiple of the block size %u",
			 st->block_size);
		return -EINVAL;
	}
	if (size < st->size) {
		snprintf(err, errlen, "size: can only grow (now %llu bytes)",
			 (unsigned long long)st->size);
		return -EINVAL;
	}
	if (size == st->size) {
		return 0;
	}
	uri = uri_with_size(tc->luns[k].uri, size);
	if (!uri) {
		return -ENOMEM;
	}
	if (!st->ops->resize) {
		snprintf(err, errlen, "size: the %s store cannot be resized", st->ops->name);
		free(uri);
		return -ENOTSUP;
	}
	rc = st->ops->resize(st, size);
	if (rc < 0) {
		snprintf(err, errlen, "size: resize failed: %s", strerror(-rc));
		free(uri);
		return rc;
	}
	/* SBC-3 4.x: initiators learn through CAPACITY DATA HAS CHANGED. */
	scsi_lu_capacity_changed(lu);
	free(tc->luns[k].uri);
	tc->luns[k].uri = uri;
	return 0;
}

unsigned mgmt_logout_target(struct mgmt_state *s, const char *name)
{
	struct iscsi_session_info *info;
	size_t n = iscsi_server_list_sessions(s->srv, NULL, 0), got;
	unsigned closed = 0;

	if (n == 0) {
		return 0;
	}
	info = calloc(n, sizeof(*info));
	if (!info) {
		return 0;
	}
	got = iscsi_server_list_sessions(s->srv, info, n);
	for (size_t i = 0; i < got && i < n; i++) {
		if (!info[i].discovery && strcasecmp(info[i].target, name) == 0 &&
		    iscsi_server_close_session(s->srv, info[i].id) == 0) {
			closed++;
		}
	}
	free(info);
	return closed;
}

void mgmt_state_foreach_lu(struct mgmt_state *s, void (*fn)(struct scsi_lu *lu, void *arg),
			   void *arg)
{
	for (size_t i = 0; i < s->cfg.ntargets; i++) {
		for (size_t k = 0; k < s->rt[i].nluns; k++) {
			fn(s->rt[i].luns[k].lu, arg);
		}
	}
	/* Deleted LUs not yet closed hold acknowledged writes too. */
	for (struct mgmt_dying *d = s->dying; d; d = d->next) {
		if (d->lu && d->state != DYING_CLOSE) {
			fn(d->lu, arg);
		}
	}
}

size_t mgmt_state_print_urls(struct mgmt_state *s, void (*fn)(const char *url, void *arg),
			     void *arg)
{
	struct iscsi_portal_info portals[16];
	size_t np = iscsi_server_list_portals(s->srv, portals, 16), n = 0;
	char url[512];

	for (size_t p = 0; p < np && p < 16; p++) {
		for (size_t i = 0; i < s->cfg.ntargets; i++) {
			for (size_t k = 0; k < s->cfg.targets[i].nluns; k++, n++) {
				snprintf(url, sizeof(url), "iscsi://%s/%s/%llu", portals[p].addr,
					 s->cfg.targets[i].name,
					 (unsigned long long)s->cfg.targets[i].luns[k].lun);
				fn(url, arg);
			}
		}
	}
	return n;
}

void mgmt_state_destroy(struct mgmt_state *s)
{
	if (!s) {
		return;
	}
	while (s->cfg.ntargets > 0) {
		struct mgmt_target_cfg *tc = &s->cfg.targets[s->cfg.ntargets - 1];
		struct mgmt_target_rt *rt = &s->rt[s->cfg.ntargets - 1];
		if (rt->t) {
			iscsi_server_remove_target(s->srv, tc->name);
			scsi_target_destroy(rt->t);
		}
		free(rt->luns);
		mgmt_target_cfg_fini(tc);
		s->cfg.ntargets--;
	}
	while (s->dying) {
		struct mgmt_dying *d = s->dying;
		s->dying = d->next;
		if (d->w && --d->w->pending == 0) {
			/*
			 * Nobody to tell: the API server is gone by now (mgmt.h order),
			 * so calling done would reach a freed connection.
			 */
			if (d->w->timer) {
				reactor_timer_cancel(s->r, d->w->timer);
			}
			free(d->w);
		}
		if (d->state == DYING_FLUSH) {
			/* The store still owns d->io: closing it now would free memory in use. */
			LOG_ERR("mgmt", "deleted LUN of %s: still flushing at exit, left open",
				scsi_lu_store(d->lu)->uri);
			continue;
		}
		scsi_lu_destroy(d->lu);
		scsi_target_destroy(d->t);
		free(d);
	}
	if (s->reap_timer) {
		reactor_timer_cancel(s->r, s->reap_timer);
	}
	if (s->reap_kick) {
		reactor_timer_cancel(s->r, s->reap_kick);
	}
	mgmt_config_fini(&s->cfg);
	free(s->rt);
	free(s->config_path);
	free(s->state_dir);
	free(s->version);
	free(s);
}
