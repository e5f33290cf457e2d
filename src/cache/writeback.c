/*
 * writeback.c - what makes data dirty and then clean again: WRITE, UNMAP and
 * WRITE ZEROES applied to slots (range ops over whole chunks forwarded to the
 * lower store); the wait queue that holds commands back while no slot is free
 * (backpressure) or behind a waiting range op; choosing and running uploads
 * (merge read, full-chunk write, retry with backoff); SYNCHRONIZE CACHE and FUA
 * waiters and their timeouts; and the reaction to a fence (the volume's lease
 * lost to another daemon). The slot state machine this drives and its ordering
 * invariants: the comment at the top of cache.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "s3tgt/core.h"
#include "s3tgt/log.h"
#include "s3tgt/store.h"

#include "cache_internal.h"

#define COMP "cache"
#define BACKOFF_MIN_MS 200u
#define BACKOFF_MAX_MS 10000u

static void waitq_run(struct cache *c);
static void check_syncs(struct cache *c);
static void waitq_pop(struct cache *c);

/* ---- writeback ---- */

bool cache_range_inflight_over(const struct cache *c, uint64_t idx)
{
	for (const struct crange *r = c->ranges; r; r = r->next) {
		uint64_t first = r->lio.offset / c->chunk;
		uint64_t last = (r->lio.offset + r->lio.len - 1) / c->chunk;
		if (idx >= first && idx <= last) {
			return true;
		}
	}
	return false;
}

static void upload_release(struct cup *u)
{
	struct cache *c = u->c;

	u->e->lent = NULL;
	u->e->uploading = false;
	u->busy = false;
	u->e = NULL;
	c->ups_busy--;
}

static void upload_failed(struct cup *u, int rc, const char *what)
{
	struct cache *c = u->c;
	struct centry *e = u->e;
	unsigned shift = e->fails < 6 ? e->fails : 6;
	uint64_t delay = (uint64_t)BACKOFF_MIN_MS << shift;

	if (delay > BACKOFF_MAX_MS) {
		delay = BACKOFF_MAX_MS;
	}
	e->fails++;
	e->retry_at_ms = reactor_now_ms() + delay;
	c->stats.upload_errors++;
	LOG_RATELIMIT(LOG_LEVEL_WARN, COMP,
		      "%s: chunk %" PRIu64 " %s failed (%s), attempt %u, retrying in %" PRIu64
		      " ms; data stays in the cache",
		      c->lower->uri, e->idx, what, strerror(-rc), e->fails, delay);
	upload_release(u);
}

/*
 * The store below lost the volume: nothing dirty can ever be uploaded, so
 * uploads stop (they would only retry), and what waits on them fails now
 * with -EROFS (WRITE PROTECTED) rather than after flush_timeout: every
 * SYNCHRONIZE CACHE or FUA write that still needs an upload, and the writes
 * held back for room. Syncs already satisfied complete as usual.
 */
static void fence_fail(struct cache *c)
{
	struct cio *w;

	check_syncs(c);
	while ((w = c->syncs)) {
		c->syncs = w->next;
		w->next = NULL;
		cache_cio_put(w, -EROFS);
	}
	while ((w = c->waitq_head)) {
		waitq_pop(c);
		cache_cio_put(w, -EROFS);
	}
	if (!c->fence_logged) {
		c->fence_logged = true;
		if (c->ndirty_slots == 0) {
			LOG_ERR(COMP, "%s: the volume belongs to another daemon now; no dirty data",
				c->lower->uri);
		} else {
			LOG_ERR(COMP,
				"%s: the volume belongs to another daemon now; %" PRIu32
				" dirty chunks are not uploaded and stay in %s",
				c->lower->uri, c->ndirty_slots,
				c->jfd >= 0 ? c->p.cache_dir : "RAM until this LUN closes");
		}
	}
}

void cache_after_event(struct cache *c)
{
	if (c->closing) {
		return;
	}
	if (store_fenced(c->lower)) {
		fence_fail(c);
		return;
	}
	waitq_run(c);
	check_syncs(c);
	cache_schedule(c);
}

static void upload_write_done(struct store_io *lio)
{
	struct cup *u = lio->cb_arg;
	struct cache *c = u->c;
	struct centry *e = u->e;

	LOG_DEBUG(COMP, "%s: chunk %" PRIu64 " upload done: %d", c->lower->uri, e->idx,
		  lio->status);
	if (lio->status) {
		upload_failed(u, lio->status, "upload");
		goto out;
	}
	c->stats.uploads++;
	e->fails = 0;
	if (e->gen == u->snap_gen) {
		c->dirty_blocks -= e->ndirty;
		memset(e->dirty, 0, c->words * sizeof(uint64_t));
		e->ndirty = 0;
		e->dirty_seq = UINT64_MAX;
		e->jhdr_stale = true;
		cache_list_add_tail(c, e, L_CLEAN);
		if (cache_journal_queue(c, e, NULL, NULL, 0, 0, false, true) != 0) {
			LOG_WARN(COMP,
				 "%s: cannot journal clean chunk %" PRIu64
				 " (it will be uploaded again after a restart)",
				 c->lower->uri, e->idx);
		}
	} else {
		/* Rewritten while uploading: what the snapshot held is stored, the rest is not. */
		e->dirty_seq = u->snap_wseq + 1;
		e->dirty_ms = reactor_now_ms();
		cache_list_add_tail(c, e, L_DIRTY);
	}
	upload_release(u);
out:
	cache_internal_done(c);
	cache_after_event(c);
}

static void upload_put(struct cup *u)
{
	struct cache *c = u->c;
	struct centry *e = u->e;
	int rc;

	/*
	 * The PUT sends the slot's buffer itself, not a copy: a write arriving
	 * before it completes first moves the slot to the upload's spare buffer
	 * (slot_unshare), so what is sent is what the PUT started with.
	 */
	e->lent = u;
	u->snap_gen = e->gen;
	u->snap_wseq = c->wseq;
	u->merging = false;
	u->lio = (struct store_io){.op = STORE_OP_WRITE,
				   .offset = e->idx * c->chunk,
				   .len = chunk_len(c, e->idx),
				   .buf = e->buf,
				   .cb = upload_write_done,
				   .cb_arg = u};
	rc = store_submit(c->lower, &u->lio);
	if (rc) {
		upload_failed(u, rc, "upload submit");
		return;
	}
	c->internal++;
}

static void upload_read_done(struct store_io *lio)
{
	struct cup *u = lio->cb_arg;
	struct cache *c = u->c;
	struct centry *e = u->e;
	uint32_t n = chunk_blocks(c, e->idx);

	cache_internal_done(c);
	if (lio->status) {
		upload_failed(u, lio->status, "merge read");
		cache_after_event(c);
		return;
	}
	/* Merge once: the slot takes the stored blocks it lacks and is fully valid after. */
	cache_copy_blocks(c, e->valid, false, e->buf, u->buf, 0, n);
	e->nvalid += bm_set(e->valid, 0, n);
	if (c->closing) {
		upload_release(u);
		return;
	}
	upload_put(u);
}

static void upload_start(struct cache *c, struct centry *e)
{
	struct cup *u = NULL;
	int rc;

	for (unsigned i = 0; i < c->nups; i++) {
		if (!c->ups[i].busy) {
			u = &c->ups[i];
			break;
		}
	}
	if (!u) {
		return;
	}
	u->busy = true;
	u->e = e;
	e->uploading = true;
	LOG_DEBUG(COMP, "%s: chunk %" PRIu64 " upload (%" PRIu32 "/%" PRIu32 " blocks dirty)",
		  c->lower->uri, e->idx, e->ndirty, chunk_blocks(c, e->idx));
	c->ups_busy++;
	if (e->nvalid >= chunk_blocks(c, e->idx)) {
		upload_put(u);
		return;
	}
	c->stats.merge_reads++;
	u->merging = true;
	u->lio = (struct store_io){.op = STORE_OP_READ,
				   .offset = e->idx * c->chunk,
				   .len = chunk_len(c, e->idx),
				   .buf = u->buf,
				   .cb = upload_read_done,
				   .cb_arg = u};
	rc = store_submit(c->lower, &u->lio);
	if (rc) {
		upload_failed(u, rc, "merge read submit");
		return;
	}
	c->internal++;
}

void cache_schedule(struct cache *c)
{
	uint64_t now = reactor_now_ms();
	uint64_t urgent_seq = 0;
	bool pressure = c->waitq_head != NULL || c->ndirty_slots * 2 >= c->nslots;
	struct centry *e, *next;

	if (c->closing || store_fenced(c->lower)) {
		return; /* fenced: fence_fail() */
	}
	for (struct cio *w = c->syncs; w; w = w->next) {
		if (w->sync_seq > urgent_seq) {
			urgent_seq = w->sync_seq;
		}
	}
	for (e = c->dirty_head; e && c->ups_busy < c->nups; e = next) {
		next = e->lnext;
		if (e->uploading || now < e->retry_at_ms || cache_range_inflight_over(c, e->idx)) {
			continue;
		}
		if (pressure || e->dirty_seq <= urgent_seq ||
		    now - e->dirty_ms >= c->p.writeback_age_ms ||
		    e->ndirty >= chunk_blocks(c, e->idx)) {
			upload_start(c, e);
		}
	}
}

/* ---- sync waiters (FLUSH, FUA) ---- */

static void flush_lower_done(struct store_io *lio)
{
	struct cio *w = lio->cb_arg;
	struct cache *c = w->c;

	cache_internal_done(c);
	cache_cio_put(w, lio->status);
}

void cache_sync_register(struct cio *w, uint64_t seq, uint64_t c0, uint64_t c1)
{
	struct cache *c = w->c;

	w->sync_seq = seq;
	w->c0 = c0;
	w->c1 = c1;
	w->deadline = reactor_now_ms() + w->c->p.flush_timeout_ms;
	w->pending++;
	w->next = c->syncs;
	c->syncs = w;
	check_syncs(c);
	cache_schedule(c);
}

static bool sync_ready(const struct cache *c, const struct cio *w)
{
	/* A FLUSH also quiesces read-ahead, so nothing is in flight once it is done. */
	if (w->kind == CIO_FLUSH) {
		for (unsigned i = 0; i < c->nfills; i++) {
			if (c->fills[i].busy && !c->fills[i].waiters) {
				return false;
			}
		}
	}
	for (const struct centry *e = c->dirty_head; e; e = e->lnext) {
		if (e->dirty_seq <= w->sync_seq && e->idx >= w->c0 && e->idx <= w->c1) {
			return false;
		}
	}
	return true;
}

static void check_syncs(struct cache *c)
{
	struct cio **pp = &c->syncs;

	while (*pp) {
		struct cio *w = *pp;
		int rc;

		if (!sync_ready(c, w)) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		w->next = NULL;
		/* The chunks are in the lower store; make them durable there too. */
		w->lio =
		    (struct store_io){.op = STORE_OP_FLUSH, .cb = flush_lower_done, .cb_arg = w};
		rc = store_submit(c->lower, &w->lio);
		if (rc) {
			cache_cio_put(w, rc);
			continue;
		}
		c->internal++;
	}
}

static void sync_timeouts(struct cache *c, uint64_t now)
{
	struct cio **pp = &c->syncs;

	while (*pp) {
		struct cio *w = *pp;

		if (now < w->deadline) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		w->next = NULL;
		LOG_RATELIMIT(LOG_LEVEL_WARN, COMP,
			      "%s: %s not stored in the lower store after %u ms (%" PRIu64
			      " dirty chunks); failing it, the data stays in the cache",
			      c->lower->uri,
			      w->kind == CIO_FLUSH ? "SYNCHRONIZE CACHE" : "FUA write",
			      c->p.flush_timeout_ms, (uint64_t)c->ndirty_slots);
		cache_cio_put(w, -ETIMEDOUT);
	}
}

/* ---- writes ---- */

/* Give the slot its own copy of a buffer an upload is sending; the upload keeps the original. */
static void slot_unshare(struct cache *c, struct centry *e)
{
	struct cup *u = e->lent;
	uint8_t *spare = u->buf;

	memcpy(spare, e->buf, chunk_len(c, e->idx));
	u->buf = e->buf;
	e->buf = spare;
	e->lent = NULL;
}

static int apply_write(struct cache *c, struct centry *e, struct cio *w, uint32_t off, uint32_t len,
		       const uint8_t *src)
{
	uint32_t first = off / c->bs, n = len / c->bs;
	uint32_t added;

	if (e->lent) {
		slot_unshare(c, e);
	}
	if (src) {
		memcpy(e->buf + off, src, len);
	} else {
		memset(e->buf + off, 0, len);
	}
	e->nvalid += bm_set(e->valid, first, n);
	added = bm_set(e->dirty, first, n);
	e->ndirty += added;
	c->dirty_blocks += added;
	if (added) {
		e->jhdr_stale = true;
	}
	e->gen++;
	c->wseq++;
	if (e->list != L_DIRTY) {
		e->dirty_seq = c->wseq;
		e->dirty_ms = reactor_now_ms();
		cache_list_add_tail(c, e, L_DIRTY);
	}
	return cache_journal_queue(c, e, w, src ? (const void *)src : c->zeros, off, len, true,
				   false);
}

/* Apply as much of write w as fits; false if it must wait for a slot. */
bool cache_write_progress(struct cache *c, struct cio *w)
{
	struct store_io *io = w->io;

	while (w->cursor < io->len) {
		uint64_t off = io->offset + w->cursor;
		uint64_t idx = off / c->chunk;
		uint32_t coff = (uint32_t)(off % c->chunk);
		uint64_t n = io->len - w->cursor;
		struct centry *e = cache_lookup(c, idx);
		int rc;

		if (n > chunk_len(c, idx) - coff) {
			n = chunk_len(c, idx) - coff;
		}
		if (!e) {
			e = cache_slot_get(c, idx);
			if (!e) {
				return false;
			}
		}
		rc = apply_write(c, e, w, coff, (uint32_t)n, (const uint8_t *)io->buf + w->cursor);
		if (rc && !w->status) {
			w->status = rc;
		}
		w->cursor += n;
	}
	w->wseq = c->wseq;
	return true;
}

/* ---- range ops (UNMAP, WRITE ZEROES) ---- */

static void range_lower_done(struct store_io *lio)
{
	struct crange *r = lio->cb_arg;
	struct cache *c = r->c;
	struct crange **pp = &c->ranges;
	struct cio *w = r->w;
	int status = lio->status; /* lio lives in r */

	while (*pp && *pp != r) {
		pp = &(*pp)->next;
	}
	if (*pp) {
		*pp = r->next;
	}
	free(r);
	cache_internal_done(c);
	cache_cio_put(w, status);
	cache_after_event(c);
}

/* Send [off, off+len) of range op w to the lower store. */
static int range_forward(struct cache *c, struct cio *w, uint64_t off, uint64_t len)
{
	struct crange *r = calloc(1, sizeof(*r));
	int rc;

	if (!r) {
		return -ENOMEM;
	}
	r->c = c;
	r->w = w;
	r->lio = (struct store_io){
	    .op = w->io->op, .offset = off, .len = len, .cb = range_lower_done, .cb_arg = r};
	LOG_DEBUG(COMP, "%s: forward %s %" PRIu64 "+%" PRIu64, c->lower->uri,
		  w->io->op == STORE_OP_UNMAP ? "UNMAP" : "WRITE ZEROES", off, len);
	rc = store_submit(c->lower, &r->lio);
	if (rc) {
		free(r);
		return rc;
	}
	c->internal++;
	w->pending++;
	r->next = c->ranges;
	c->ranges = r;
	return 0;
}

/*
 * Zero [a, b) of chunk idx in the cache (a partial chunk): the zeros are
 * dirty data like any write, so no lower request now and one merge at upload.
 * Returns 1 if there was no slot (the caller forwards), 0, or -errno.
 */
static int range_partial(struct cache *c, struct cio *w, uint64_t idx, uint64_t a, uint64_t b)
{
	struct centry *e = cache_lookup(c, idx);
	uint64_t cstart = idx * c->chunk;

	if (!e) {
		e = cache_slot_get(c, idx);
		if (!e) {
			return 1;
		}
	}
	return apply_write(c, e, w, (uint32_t)(a - cstart), (uint32_t)(b - a), NULL);
}

static bool chunk_whole(const struct cache *c, uint64_t idx, uint64_t start, uint64_t end)
{
	uint64_t cs = idx * c->chunk;

	return start <= cs && end >= cs + chunk_len(c, idx);
}

/* Zero [a, b) inside one chunk in the cache, or forward it if there is no slot. */
static void range_piece(struct cache *c, struct cio *w, uint64_t idx, uint64_t a, uint64_t b)
{
	int rc = range_partial(c, w, idx, a, b);

	if (rc == 1) {
		rc = range_forward(c, w, a, b - a);
	}
	if (rc && !w->status) {
		w->status = rc;
	}
}

/* Start range op w; false if a slot in its range is uploading (then it waits). */
bool cache_range_try(struct cache *c, struct cio *w)
{
	struct store_io *io = w->io;
	uint64_t start = io->offset, end = io->offset + io->len;
	uint64_t first = start / c->chunk;
	uint64_t last = (end - 1) / c->chunk;
	uint64_t wfirst, wend; /* chunks wholly inside the range: [wfirst, wend) */
	int rc;

	for (uint32_t s = 0; s < c->nslots; s++) {
		struct centry *e = &c->e[s];
		if (e->used && e->idx >= first && e->idx <= last && e->uploading) {
			LOG_DEBUG(COMP, "%s: range op waits for the upload of chunk %" PRIu64,
				  c->lower->uri, e->idx);
			return false;
		}
	}
	c->inval_seq++;
	wfirst = chunk_whole(c, first, start, end) ? first : first + 1;
	wend = chunk_whole(c, last, start, end) ? last + 1 : last;
	if (!chunk_whole(c, first, start, end)) {
		uint64_t ce = (first + 1) * c->chunk;
		range_piece(c, w, first, start, end < ce ? end : ce);
	}
	if (last != first && !chunk_whole(c, last, start, end)) {
		range_piece(c, w, last, last * c->chunk, end);
	}
	if (wfirst >= wend) {
		return true;
	}
	/* Whole chunks: forget cached copies (durably), then deallocate below. */
	for (uint32_t s = 0; s < c->nslots; s++) {
		struct centry *e = &c->e[s];

		if (!e->used || e->idx < wfirst || e->idx >= wend) {
			continue;
		}
		if (e->pins) {
			rc = apply_write(c, e, w, 0, chunk_len(c, e->idx), NULL);
		} else {
			cache_entry_drop(c, e);
			e->jhdr_stale = true;
			rc = cache_journal_queue(c, e, w, NULL, 0, 0, true, true);
		}
		if (rc && !w->status) {
			w->status = rc;
		}
	}
	rc = range_forward(c, w, wfirst * c->chunk,
			   (wend - 1) * c->chunk + chunk_len(c, wend - 1) - wfirst * c->chunk);
	if (rc && !w->status) {
		w->status = rc;
	}
	return true;
}

/* ---- wait queue (backpressure and ordering behind a waiting range op) ---- */

void cache_waitq_push(struct cache *c, struct cio *w)
{
	w->next = NULL;
	w->enq_ms = reactor_now_ms();
	if (c->waitq_tail) {
		c->waitq_tail->next = w;
	} else {
		c->waitq_head = w;
	}
	c->waitq_tail = w;
}

static void waitq_pop(struct cache *c)
{
	struct cio *w = c->waitq_head;

	c->waitq_head = w->next;
	if (!c->waitq_head) {
		c->waitq_tail = NULL;
	}
	w->next = NULL;
}

static void waitq_run(struct cache *c)
{
	while (c->waitq_head) {
		struct cio *w = c->waitq_head;
		bool ok = w->kind == CIO_WRITE ? cache_write_progress(c, w) : cache_range_try(c, w);

		if (!ok) {
			break;
		}
		waitq_pop(c);
		cache_cio_put(w, 0);
	}
}

static void waitq_timeouts(struct cache *c, uint64_t now)
{
	while (c->waitq_head && now - c->waitq_head->enq_ms >= c->p.flush_timeout_ms) {
		struct cio *w = c->waitq_head;

		waitq_pop(c);
		LOG_RATELIMIT(LOG_LEVEL_WARN, COMP,
			      "%s: cache full of dirty data for %u ms (lower store not taking "
			      "writes?); failing a waiting command",
			      c->lower->uri, c->p.flush_timeout_ms);
		cache_cio_put(w, -ETIMEDOUT);
	}
}

/* ---- the tick: timeouts, and uploads due by age or after a backoff ---- */

void cache_tick(void *arg)
{
	struct cache *c = arg;
	uint64_t now = reactor_now_ms();

	sync_timeouts(c, now);
	waitq_timeouts(c, now);
	cache_after_event(c);
}
