/*
 * read.c - READ. A piece of a read (its part in one chunk) is served from the
 * chunk's slot when every block it needs is valid; otherwise from a fill, one
 * lower read of the whole chunk that also populates the cache; or, when the
 * chunk has a slot that lacks some blocks (or no fill buffer is free), from a
 * direct lower read of the piece, overlaid at completion with the slot's newer
 * blocks. A sequential stream also starts read-ahead fills (prefetch). When a
 * fill may enter the cache: the invariants at the top of cache.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "s3tgt/core.h"
#include "s3tgt/store.h"

#include "cache_internal.h"

/* ---- recycled read pieces ---- */

static struct cpiece *piece_get(struct cache *c)
{
	struct cpiece *pc = c->free_pieces;

	if (!pc) {
		return calloc(1, sizeof(*pc));
	}
	c->free_pieces = pc->next;
	memset(pc, 0, sizeof(*pc));
	return pc;
}

static void piece_free(struct cache *c, struct cpiece *pc)
{
	pc->next = c->free_pieces;
	c->free_pieces = pc;
}

/* ---- reads ---- */

static void piece_done(struct cpiece *pc, int status)
{
	struct cio *w = pc->cio;

	piece_free(pc->c, pc);
	cache_cio_put(w, status);
}

static void copy_from_entry(struct cache *c, struct centry *e, struct cpiece *pc)
{
	cache_copy_blocks(c, e->valid, true, pc->dst, e->buf + pc->off, pc->off / c->bs,
			  pc->len / c->bs);
}

static void direct_done(struct store_io *lio)
{
	struct cpiece *pc = lio->cb_arg;
	struct cache *c = pc->c;

	cache_internal_done(c);
	if (pc->pin) {
		/* Cached blocks are newer than what the lower store had. */
		if (!lio->status) {
			copy_from_entry(c, pc->pin, pc);
		}
		pc->pin->pins--;
	}
	piece_done(pc, lio->status);
	cache_after_event(c);
}

static int direct_read(struct cache *c, struct cpiece *pc, struct centry *pin)
{
	int rc;

	pc->pin = pin;
	pc->lio = (struct store_io){.op = STORE_OP_READ,
				    .offset = pc->idx * c->chunk + pc->off,
				    .len = pc->len,
				    .buf = pc->dst,
				    .cb = direct_done,
				    .cb_arg = pc};
	rc = store_submit(c->lower, &pc->lio);
	if (rc) {
		return rc;
	}
	if (pin) {
		pin->pins++;
	}
	c->internal++;
	return 0;
}

static struct cfill *fill_find(struct cache *c, uint64_t idx)
{
	for (unsigned i = 0; i < c->nfills; i++) {
		if (c->fills[i].busy && c->fills[i].idx == idx) {
			return &c->fills[i];
		}
	}
	return NULL;
}

static void fill_done(struct store_io *lio)
{
	struct cfill *f = lio->cb_arg;
	struct cache *c = f->c;
	struct centry *e = NULL;
	struct cpiece *pc;
	bool whole = false; /* e holds the whole chunk, fill merged */

	cache_internal_done(c);
	if (!lio->status && !c->closing) {
		e = cache_lookup(c, f->idx);
		if (f->seq == c->inval_seq && !cache_range_inflight_over(c, f->idx)) {
			uint32_t n = chunk_blocks(c, f->idx);

			if (!e) {
				e = cache_slot_get(c, f->idx);
				if (e) {
					cache_list_add_tail(c, e, L_CLEAN);
				}
			}
			if (e && !e->nvalid) {
				/*
				 * Nothing in the slot to keep: it takes the fetched
				 * buffer and the fill the slot's, instead of a whole-chunk copy.
				 */
				uint8_t *t = e->buf;

				e->buf = f->buf;
				f->buf = t;
			} else if (e) {
				cache_copy_blocks(c, e->valid, false, e->buf, f->buf, 0, n);
			}
			if (e) {
				e->nvalid += bm_set(e->valid, 0, n);
				whole = true;
			}
		}
	}
	while ((pc = f->waiters)) {
		f->waiters = pc->next;
		if (!lio->status && whole) {
			/* The slot holds every block now (its newer ones kept): one copy, no
			 * overlay. */
			memcpy(pc->dst, e->buf + pc->off, pc->len);
		} else if (!lio->status) {
			memcpy(pc->dst, f->buf + pc->off, pc->len);
			if (e) {
				copy_from_entry(c, e, pc);
			}
		}
		piece_done(pc, lio->status);
	}
	f->busy = false;
	cache_after_event(c);
}

static struct cfill *fill_start(struct cache *c, uint64_t idx)
{
	struct cfill *f = NULL;

	for (unsigned i = 0; i < c->nfills; i++) {
		if (!c->fills[i].busy) {
			f = &c->fills[i];
			break;
		}
	}
	if (!f) {
		return NULL;
	}
	f->idx = idx;
	f->seq = c->inval_seq;
	f->waiters = NULL;
	f->lio = (struct store_io){.op = STORE_OP_READ,
				   .offset = idx * c->chunk,
				   .len = chunk_len(c, idx),
				   .buf = f->buf,
				   .cb = fill_done,
				   .cb_arg = f};
	if (store_submit(c->lower, &f->lio) != 0) {
		return NULL;
	}
	f->busy = true;
	c->internal++;
	return f;
}

static void prefetch(struct cache *c, uint64_t last_idx)
{
	uint64_t nchunks = (c->lower->size + c->chunk - 1) / c->chunk;

	if (c->syncs) {
		return;
	}
	for (uint64_t k = 1; k <= c->p.prefetch; k++) {
		uint64_t idx = last_idx + k;

		if (idx >= nchunks) {
			return;
		}
		if (cache_lookup(c, idx) || fill_find(c, idx)) {
			continue;
		}
		if (!fill_start(c, idx)) {
			return;
		}
		c->stats.prefetches++;
	}
}

void cache_read_start(struct cache *c, struct cio *w)
{
	struct store_io *io = w->io;
	uint64_t done = 0;

	while (done < io->len) {
		uint64_t off = io->offset + done;
		uint64_t idx = off / c->chunk;
		uint32_t coff = (uint32_t)(off % c->chunk);
		uint64_t n = io->len - done;
		struct centry *e = cache_lookup(c, idx);
		struct cpiece *pc;
		struct cfill *f;
		int rc;

		if (n > chunk_len(c, idx) - coff) {
			n = chunk_len(c, idx) - coff;
		}
		if (e && bm_all(e->valid, coff / c->bs, (uint32_t)(n / c->bs))) {
			memcpy((uint8_t *)io->buf + done, e->buf + coff, n);
			if (e->list == L_CLEAN) {
				cache_list_add_tail(c, e, L_CLEAN);
			}
			c->stats.hits++;
			done += n;
			continue;
		}
		c->stats.misses++;
		pc = piece_get(c);
		if (!pc) {
			w->status = -ENOMEM;
			break;
		}
		*pc = (struct cpiece){.c = c,
				      .cio = w,
				      .idx = idx,
				      .off = coff,
				      .len = (uint32_t)n,
				      .dst = (uint8_t *)io->buf + done};
		w->pending++;
		f = fill_find(c, idx);
		if (!f && !e) {
			f = fill_start(c, idx);
		}
		if (f) {
			pc->next = f->waiters;
			f->waiters = pc;
		} else {
			rc = direct_read(c, pc, e);
			if (rc) {
				piece_done(pc, rc);
			}
		}
		done += n;
	}
	/* Sequential stream: the next read starts where the last one ended. */
	if (io->offset == c->last_read_end) {
		c->seq_streak++;
	} else {
		c->seq_streak = 0;
	}
	c->last_read_end = io->offset + io->len;
	if (c->seq_streak >= 1 && c->p.prefetch) {
		prefetch(c, (io->offset + io->len - 1) / c->chunk);
	}
}
