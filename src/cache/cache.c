/*
 * cache.c - the write-back chunk cache: a store whose lower store is s3, dir,
 * file or ram (STYLE.md 2: layers stack). Everything here runs on the store's
 * reactor thread, except the journal writes (cache_dir) which run on the
 * cache's own worker pool (struct jqueue) and come back through its reactor queue.
 *
 * The device is cut into cache chunks (the lower store's opt_io_bytes, i.e.
 * the S3 chunk size, else 1 MiB). A fixed number of slots (cache_size /
 * chunk_size) each holds one chunk buffer plus two block bitmaps: `valid`
 * (the cached block is current) and `dirty` (valid and not yet in the lower
 * store; dirty is a subset of valid). A slot is on exactly one list:
 *
 *            write                      upload ok, gen unchanged
 *   FREE ──────────────> DIRTY ───────────────────────────────────> CLEAN (LRU)
 *    ^  \  fill (read)     ^  \ upload (one at a time per slot) ─┐     │   │
 *    │   └───────────────────────────────────────────────────────┼───> │   │
 *    │                     └── write / upload failed / gen moved ┘     │   │
 *    │                     <──────────────── write ────────────────────┘   │
 *    └──────────────── evict (LRU, unpinned) or UNMAP drop ────────────────┘
 *
 * Upload of a slot: if every block is valid, one full-chunk lower write of
 * the slot's own buffer (no read, no copy; a write arriving meanwhile first
 * moves the slot to the upload's spare buffer); otherwise one lower read of
 * the chunk into the spare buffer, the missing blocks are filled into the
 * slot (it is valid from then on: merged once), then the full-chunk write.
 * `gen` counts writes into the slot; if it moved while uploading the slot
 * stays dirty and is uploaded again.
 *
 * Invariants:
 *  - At most one upload per slot; a dirty or uploading slot is never evicted.
 *  - Per chunk, lower writes (uploads) never overlap a forwarded UNMAP/WRITE
 *    ZEROES of that chunk: a range op waits until no slot in its range is
 *    uploading (and every write behind it waits in the FIFO `waitq`), and an
 *    upload never starts while a forwarded range op covering it is in flight.
 *  - Every write's `wseq` is ordered; a slot's dirty_seq is the smallest wseq
 *    of its writes not yet stored. FLUSH with seq S completes when no dirty
 *    slot has dirty_seq <= S (then a lower FLUSH). FUA: the same, for its chunks.
 *  - A fill (lower read that populates the cache) is inserted only if no range
 *    op started since it was issued (inval_seq) and none is in flight over it,
 *    and only into blocks still not valid, so it never hides newer data.
 *  - Memory: slots + (max_uploads + nfill) transfer buffers, all allocated at
 *    open; writes that find no free or evictable slot wait in `waitq`.
 *  - With cache_dir, a write completes only after its blocks and the slot's
 *    dirty bitmap are written and fdatasync'ed (journal, docs/DURABILITY.md);
 *    journal jobs of one slot run in FIFO order, one at a time.
 *  - io->cb runs exactly once and never inside submit (completion is posted).
 *
 * The files: cache.c (this one: the store ops, the per-command records and
 * their completion, close, stats and open), slots.c (the memory arena, the
 * slots, their hash and lists), read.c (reads, fills, prefetch), writeback.c
 * (writes and range ops, backpressure, uploads, FLUSH and FUA, the fence),
 * journal.c (cache_dir and its crash recovery) and params.c (options, URI
 * hook-up). What they share is in cache_internal.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "s3tgt/cache.h"
#include "s3tgt/core.h"
#include "s3tgt/log.h"
#include "s3tgt/store.h"

#include "cache_internal.h"

#define COMP "cache"
#define TICK_MS 50u

/* ---- recycled per-command records ---- */

static struct cio *cio_get(struct cache *c)
{
	struct cio *w = c->free_cios;

	if (!w) {
		return calloc(1, sizeof(*w));
	}
	c->free_cios = w->next;
	memset(w, 0, sizeof(*w));
	return w;
}

static void cio_free(struct cache *c, struct cio *w)
{
	w->next = c->free_cios;
	c->free_cios = w;
}

/* Every free list: also read.c's pieces and journal.c's jobs (close). */
static void records_free(struct cache *c)
{
	while (c->free_cios) {
		struct cio *w = c->free_cios;
		c->free_cios = w->next;
		free(w);
	}
	while (c->free_pieces) {
		struct cpiece *pc = c->free_pieces;
		c->free_pieces = pc->next;
		free(pc);
	}
	while (c->free_jjobs) {
		struct jjob *j = c->free_jjobs;
		c->free_jjobs = j->next;
		free(j->hdr);
		free(j);
	}
}

/* ---- completion plumbing ---- */

static void io_finish_msg(void *arg)
{
	struct cio *w = arg;
	struct store_io *io = w->io;

	io->status = w->status;
	cio_free(w->c, w);
	io->cb(io);
}

static void cio_finish(struct cio *w)
{
	/* Always posted: the async rule forbids running cb inside submit(). */
	if (reactor_post(w->c->r, io_finish_msg, w) != 0) {
		LOG_ERR(COMP, "%s: cannot post a completion (out of memory)", w->c->lower->uri);
		io_finish_msg(w);
	}
}

void cache_cio_put(struct cio *w, int status)
{
	if (status && !w->status) {
		w->status = status;
	}
	if (--w->pending) {
		return;
	}
	if (w->status == 0 && !w->synced) {
		if (w->kind == CIO_WRITE && w->io->fua) {
			uint64_t first = w->io->offset / w->c->chunk;
			uint64_t last = (w->io->offset + w->io->len - 1) / w->c->chunk;

			w->synced = true;
			cache_sync_register(w, w->wseq, first, last);
			return;
		}
		if (w->kind == CIO_FLUSH) {
			w->synced = true;
			cache_sync_register(w, w->c->wseq, 0, UINT64_MAX);
			return;
		}
	}
	cio_finish(w);
}

static void finalize_msg(void *arg);

void cache_internal_done(struct cache *c)
{
	c->internal--;
	if (c->closing && c->internal == 0 && !c->quiescing) {
		/* Not from inside the lower store's callback: it may still use itself. */
		if (reactor_post(c->r, finalize_msg, c) != 0) {
			LOG_ERR(COMP, "cannot post the final close; leaking the cache");
		}
	}
}

/* ---- store ops ---- */

/*
 * Fenced with the store below: a write taken into the cache now could never
 * be uploaded, so store_submit() refuses it; what is dirty stays in the
 * cache (and cache_dir), and fence_fail() ends what waits for it.
 */
static bool cache_fenced(struct store *st)
{
	struct cache *c = st->priv;

	return store_fenced(c->lower);
}

static int cache_submit(struct store *st, struct store_io *io)
{
	struct cache *c = st->priv;
	struct cio *w = cio_get(c);

	if (!w) {
		return -ENOMEM;
	}
	w->c = c;
	w->io = io;
	w->pending = 1;
	switch (io->op) {
	case STORE_OP_READ:
		w->kind = CIO_READ;
		cache_read_start(c, w);
		cache_cio_put(w, 0);
		break;
	case STORE_OP_WRITE:
		w->kind = CIO_WRITE;
		if (c->waitq_head || !cache_write_progress(c, w)) {
			c->stats.backpressure++;
			cache_waitq_push(c, w);
			cache_schedule(c);
			break;
		}
		cache_cio_put(w, 0);
		cache_schedule(c);
		break;
	case STORE_OP_UNMAP:
	case STORE_OP_WRITE_ZEROES:
		w->kind = CIO_RANGE;
		if (c->waitq_head || !cache_range_try(c, w)) {
			cache_waitq_push(c, w);
			break;
		}
		cache_cio_put(w, 0);
		break;
	case STORE_OP_FLUSH:
		w->kind = CIO_FLUSH;
		cache_cio_put(w, 0);
		break;
	default:
		cio_free(c, w);
		return -ENOTSUP;
	}
	return 0;
}

static void cache_free(struct cache *c)
{
	if (c->pop_started) {
		atomic_store(&c->pop_stop, true);
		pthread_join(c->pop_thread, NULL);
	}
	cache_jq_stop(c);
	records_free(c);
	if (c->jfd >= 0) {
		close(c->jfd);
	}
	if (c->map) {
		munmap(c->map, c->map_len);
	}
	if (c->e) {
		free(c->e[0].valid);
	}
	free(c->e);
	free(c->hash);
	free(c->ups);
	free(c->fills);
	free(c->zeros);
	free(c->vol_id);
	cache_params_fini(&c->p);
	store_close(c->lower);
	free(c);
}

static void finalize_msg(void *arg)
{
	cache_free(arg);
}

static void cache_close(struct store *st)
{
	struct cache *c = st->priv;

	if (c->tick) {
		reactor_timer_cancel(c->r, c->tick);
		c->tick = NULL;
	}
	if (c->ndirty_slots) {
		if (c->jfd >= 0) {
			LOG_WARN(COMP,
				 "%s: closing with %" PRIu32 " dirty chunks; they are kept in "
				 "%s and uploaded at the next start",
				 c->lower->uri, c->ndirty_slots, c->p.cache_dir);
		} else {
			LOG_ERR(COMP,
				"%s: closing with %" PRIu32 " dirty chunks not in the lower "
				"store and no cache_dir: that data is lost (flush before close)",
				c->lower->uri, c->ndirty_slots);
		}
	}
	cache_jq_stop(c);
	if (c->jfd >= 0 && !c->ndirty_slots && !c->ups_busy && c->lower->ops->resumed) {
		cache_journal_save_clean(c);
	}
	c->closing = true;
	c->st = NULL;
	st->priv = NULL;
	if (c->internal && c->lower->ops->quiesce) {
		/* Uploads still retrying (flush failed): cancel them; cache_dir keeps the data. */
		c->quiescing = true;
		c->lower->ops->quiesce(c->lower);
		c->quiescing = false;
	}
	if (c->internal == 0) {
		cache_free(c);
		return;
	}
	LOG_WARN(COMP, "%s: closed with %u lower requests in flight; freed when they finish",
		 c->lower->uri, c->internal);
}

static int cache_lba_status(struct store *st, uint64_t offset, bool *mapped, uint64_t *run)
{
	struct cache *c = st->priv;
	uint64_t idx = offset / c->chunk;
	struct centry *e = cache_lookup(c, idx);
	int rc;

	if (e && e->ndirty) {
		uint64_t end = idx * c->chunk + chunk_len(c, idx);
		*mapped = true;
		*run = end - offset;
		return 0;
	}
	rc = c->lower->ops->lba_status(c->lower, offset, mapped, run);
	if (rc || *mapped) {
		return rc;
	}
	/* A deallocated run ends where a chunk with unstored data begins. */
	for (const struct centry *d = c->dirty_head; d; d = d->lnext) {
		uint64_t start = d->idx * c->chunk;
		if (start > offset && start < offset + *run) {
			*run = start - offset;
		}
	}
	return 0;
}

static int cache_resize(struct store *st, uint64_t new_size)
{
	struct cache *c = st->priv;
	int rc;

	if (!c->lower->ops->resize) {
		return -ENOTSUP;
	}
	rc = c->lower->ops->resize(c->lower, new_size);
	if (!rc) {
		st->size = c->lower->size;
	}
	return rc;
}

static const char *cache_volume_id(struct store *st)
{
	struct cache *c = st->priv;

	return c->vol_id;
}

static void cache_metrics(struct store *st, store_metric_fn fn, void *arg)
{
	static const struct {
		const char *name, *help;
		enum store_metric_type type;
		size_t off;
	} fam[] = {
	    {"s3tgt_cache_hits_total", "Read chunk pieces served from the cache.",
	     STORE_METRIC_COUNTER, offsetof(struct cache_stats, hits)},
	    {"s3tgt_cache_misses_total", "Read chunk pieces fetched from the lower store.",
	     STORE_METRIC_COUNTER, offsetof(struct cache_stats, misses)},
	    {"s3tgt_cache_dirty_bytes", "Bytes written but not yet stored in the lower store.",
	     STORE_METRIC_GAUGE, offsetof(struct cache_stats, dirty_bytes)},
	    {"s3tgt_cache_dirty_chunks", "Chunks holding data not yet stored in the lower store.",
	     STORE_METRIC_GAUGE, offsetof(struct cache_stats, dirty_chunks)},
	    {"s3tgt_cache_uploads_total", "Chunk writes to the lower store that succeeded.",
	     STORE_METRIC_COUNTER, offsetof(struct cache_stats, uploads)},
	    {"s3tgt_cache_upload_errors_total",
	     "Chunk writes to the lower store that failed "
	     "(retried).",
	     STORE_METRIC_COUNTER, offsetof(struct cache_stats, upload_errors)},
	    {"s3tgt_cache_merge_reads_total", "Lower reads to merge a partially dirty chunk.",
	     STORE_METRIC_COUNTER, offsetof(struct cache_stats, merge_reads)},
	    {"s3tgt_cache_evictions_total", "Clean chunks dropped to make room.",
	     STORE_METRIC_COUNTER, offsetof(struct cache_stats, evictions)},
	    {"s3tgt_cache_prefetches_total", "Read-ahead chunk fetches started.",
	     STORE_METRIC_COUNTER, offsetof(struct cache_stats, prefetches)},
	    {"s3tgt_cache_backpressure_total", "Writes that waited for room in the cache.",
	     STORE_METRIC_COUNTER, offsetof(struct cache_stats, backpressure)},
	    {"s3tgt_cache_recovered_chunks_total",
	     "Dirty chunks recovered from cache_dir at "
	     "open.",
	     STORE_METRIC_COUNTER, offsetof(struct cache_stats, recovered)},
	    {"s3tgt_cache_reloaded_chunks_total",
	     "Clean chunks cached again from cache_dir at open (kept at the last clean close).",
	     STORE_METRIC_COUNTER, offsetof(struct cache_stats, reloaded)},
	};
	struct cache *c = st->priv;
	struct cache_stats cs;

	if (cache_store_get_stats(st, &cs) < 0) {
		return;
	}
	for (size_t i = 0; i < sizeof(fam) / sizeof(fam[0]); i++) {
		struct store_metric m = {
		    .name = fam[i].name,
		    .help = fam[i].help,
		    .type = fam[i].type,
		};
		memcpy(&m.value, (const char *)&cs + fam[i].off, sizeof(m.value));
		fn(arg, &m);
	}
	store_metrics(c->lower, fn, arg);
}

static const char *const g_cache_options[] = {
    "cache_size",    "cache_dir",      "writeback",	"flush_timeout",
    "cache_uploads", "cache_prefetch", "writeback_age", NULL,
};

const struct store_ops cache_store_ops = {
    .name = "cache",
    .options = g_cache_options,
    .submit = cache_submit,
    .close = cache_close,
    .lba_status = cache_lba_status,
    .resize = cache_resize,
    .volume_id = cache_volume_id,
    .fenced = cache_fenced,
    .metrics = cache_metrics,
};

bool cache_store_is(const struct store *st)
{
	return st && st->ops == &cache_store_ops;
}

int cache_store_get_stats(struct store *st, struct cache_stats *out)
{
	struct cache *c;

	if (!cache_store_is(st) || !st->priv) {
		return -EINVAL;
	}
	c = st->priv;
	*out = c->stats;
	out->dirty_bytes = c->dirty_blocks * c->bs;
	out->dirty_chunks = c->ndirty_slots;
	return 0;
}

/* ---- open ---- */

int cache_store_wrap(struct store *lower, const struct cache_params *p, struct store **out,
		     char *err, size_t errlen)
{
	struct cache *c = NULL;
	struct store *st = NULL;
	const char *vid = lower->ops->volume_id ? lower->ops->volume_id(lower) : NULL;
	uint64_t nslots;
	int rc;

	if (err && errlen) {
		err[0] = '\0';
	}
	c = calloc(1, sizeof(*c));
	st = calloc(1, sizeof(*st));
	if (!c || !st) {
		rc = -ENOMEM;
		snprintf(err, errlen, "cache: out of memory");
		goto err;
	}
	c->jfd = -1;
	c->lower = lower;
	c->r = lower->reactor;
	c->p = *p;
	c->p.cache_dir = NULL;
	if (p->cache_dir) {
		c->p.cache_dir = strdup(p->cache_dir);
	}
	/* Without a volume id the identity is the URI's type:path (options may change). */
	c->vol_id = vid && *vid ? strdup(vid) : strndup(lower->uri, strcspn(lower->uri, "?"));
	if ((p->cache_dir && !c->p.cache_dir) || !c->vol_id) {
		rc = -ENOMEM;
		snprintf(err, errlen, "cache: out of memory");
		goto err;
	}
	if (strlen(c->vol_id) > J_VOL_MAX) {
		c->vol_id[J_VOL_MAX] = '\0';
	}
	c->bs = lower->block_size;
	c->chunk = lower->opt_io_bytes >= c->bs && lower->opt_io_bytes % c->bs == 0
		       ? lower->opt_io_bytes
		       : CACHE_CHUNK_DEFAULT;
	c->nblk = c->chunk / c->bs;
	c->words = (c->nblk + 63) / 64;
	c->slot_hdr = (S_OFF_BITMAP + (c->nblk + 7) / 8 + 4095) / 4096 * 4096;
	nslots = p->cache_size / c->chunk;
	if (nslots < 2 || nslots > UINT32_MAX / 2) {
		snprintf(err, errlen,
			 "cache_size: %" PRIu64 " must hold at least 2 chunks of %u bytes",
			 p->cache_size, c->chunk);
		rc = -EINVAL;
		goto err;
	}
	c->nslots = (uint32_t)nslots;
	c->nups = p->max_uploads;
	c->nfills = p->prefetch * 2 > 4 ? p->prefetch * 2 : 4;
	rc = cache_alloc(c, err, errlen);
	if (rc) {
		goto err;
	}
	if (c->p.cache_dir) {
		rc = cache_journal_open(c, err, errlen);
		if (rc) {
			goto err;
		}
	}
	c->tick = reactor_timer_add(c->r, TICK_MS, true, cache_tick, c);
	if (!c->tick) {
		rc = -ENOMEM;
		snprintf(err, errlen, "cache: cannot add a timer");
		goto err;
	}
	st->uri = strdup(lower->uri);
	if (!st->uri) {
		rc = -ENOMEM;
		snprintf(err, errlen, "cache: out of memory");
		goto err;
	}
	st->ops = &cache_store_ops;
	st->priv = c;
	st->reactor = lower->reactor;
	st->size = lower->size;
	st->block_size = lower->block_size;
	st->thin = lower->thin;
	st->read_only = lower->read_only;
	st->opt_io_bytes = lower->opt_io_bytes;
	st->caps = lower->caps & (STORE_CAP_UNMAP | STORE_CAP_LBA_STATUS);
	if (p->writeback) {
		st->caps |= STORE_CAP_WRITE_CACHE;
	}
	c->st = st;
	LOG_INFO(COMP, "%s: cache %" PRIu32 " x %u-byte chunks, %s%s%s", lower->uri, c->nslots,
		 c->chunk, p->writeback ? "write-back" : "write-through",
		 c->p.cache_dir ? ", journal in " : "", c->p.cache_dir ? c->p.cache_dir : "");
	c->pop_started = core_thread_spawn(&c->pop_thread, cache_populate_main, c) == 0;
	if (!c->pop_started) {
		LOG_WARN(COMP, "%s: no thread to make the cache resident; pages come on first use",
			 lower->uri);
	}
	*out = st;
	return 0;

err:
	if (c) {
		if (c->tick) {
			reactor_timer_cancel(c->r, c->tick);
		}
		cache_free(c); /* closes lower */
	} else {
		store_close(lower);
	}
	free(st);
	return rc;
}
