/*
 * cache_internal.h - private to src/cache: the cache's state (struct cache,
 * its slots and its per-command records), the cache_dir format constants,
 * the helpers and functions the cache's files share (declared by the file
 * that defines them), and the cache store's ops table that params.c hooks up.
 * The slot state machine and the invariants: the comment at the top of cache.c.
 */
#ifndef S3TGT_CACHE_INTERNAL_H
#define S3TGT_CACHE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3tgt/cache.h"
#include "s3tgt/core.h"
#include "s3tgt/store.h"

/* A slot and the list it is on: the state machine at the top of cache.c. */
enum elist { L_NONE, L_FREE, L_CLEAN, L_DIRTY };

struct centry {
	struct cache *c;
	uint32_t slot;
	bool used;
	uint64_t idx; /* chunk index while used */
	uint8_t *buf;
	uint64_t *valid, *dirty;
	uint32_t nvalid, ndirty;
	uint64_t gen;
	uint64_t dirty_seq; /* smallest wseq not yet stored; UINT64_MAX when clean */
	uint64_t dirty_ms;
	uint64_t retry_at_ms;
	unsigned fails;
	unsigned pins; /* direct reads that overlay this slot at completion */
	bool uploading;
	struct cup *lent; /* the upload whose PUT is sending buf itself */
	bool jhdr_stale;  /* dirty bitmap changed since the last journaled header */
	enum elist list;
	struct centry *lprev, *lnext;
	struct centry *hnext;
	/* journal FIFO of this slot */
	struct jjob *jhead, *jtail;
	bool jbusy;
};

enum cio_kind { CIO_READ, CIO_WRITE, CIO_RANGE, CIO_FLUSH };

struct cio {
	struct cache *c;
	struct store_io *io;
	enum cio_kind kind;
	unsigned pending;
	int status;
	uint64_t cursor;
	uint64_t wseq;
	uint64_t enq_ms;
	bool synced;
	/* sync wait (FLUSH, FUA) */
	uint64_t sync_seq, c0, c1, deadline;
	struct store_io lio; /* forwarded range op or lower FLUSH */
	struct cio *next;    /* waitq, sync list or range in-flight list */
};

struct cpiece {
	struct cache *c;
	struct cio *cio;
	uint64_t idx;
	uint32_t off, len; /* inside the chunk */
	uint8_t *dst;
	struct centry *pin;
	struct store_io lio;
	struct cpiece *next;
};

struct cfill {
	struct cache *c;
	bool busy;
	uint64_t idx;
	uint64_t seq;
	uint8_t *buf;
	struct store_io lio;
	struct cpiece *waiters;
};

struct cup {
	struct cache *c;
	bool busy;
	bool merging;
	struct centry *e;
	uint8_t *buf;
	uint64_t snap_gen, snap_wseq;
	struct store_io lio;
};

struct jjob {
	struct cache *c;
	struct centry *e;
	struct cio *cio; /* completes a part of it, or NULL */
	const void *src;
	size_t len;
	uint64_t data_off;
	uint8_t *hdr;  /* owned header buffer (kept while the record is recycled) */
	bool with_hdr; /* hdr holds a snapshot to write */
	bool sync;
	int rc;
	struct jjob *next;	  /* slot FIFO */
	struct reactor_node done; /* back from the worker */
};

/*
 * The journal workers: a pool of this cache's own, whose completions come
 * back through its own reactor queue, so that close() can drain both
 * synchronously, leaving no message behind on a reactor that may already be
 * stopped. Once stopped (close), jobs run inline.
 */
struct jqueue {
	struct thread_pool *tp;
	struct reactor_queue *done;
	bool stopped;
};

struct crange {
	struct cache *c;
	struct cio *w;
	struct store_io lio;
	struct crange *next;
};

struct cache {
	struct store *st; /* the wrapper; NULL once closed */
	struct store *lower;
	struct reactor *r;
	struct cache_params p;
	uint32_t bs;
	uint32_t chunk;
	uint32_t nblk; /* blocks per chunk */
	uint32_t words;
	uint32_t nslots;
	struct centry *e;
	struct centry **hash;
	uint32_t hmask;
	struct centry *free_head, *free_tail;
	struct centry *clean_head, *clean_tail;
	struct centry *dirty_head, *dirty_tail;
	uint32_t ndirty_slots;
	uint64_t dirty_blocks;
	uint8_t *map;	      /* the mapping; arena is map aligned to ARENA_ALIGN */
	pthread_t pop_thread; /* cache_populate_main() */
	bool pop_started;
	atomic_bool pop_stop;
	size_t map_len;
	uint8_t *arena;
	size_t arena_len;
	struct cup *ups;
	unsigned nups, ups_busy;
	struct cfill *fills;
	unsigned nfills;
	uint64_t wseq;
	uint64_t inval_seq;
	struct cio *waitq_head, *waitq_tail;
	struct cio *syncs;
	struct crange *ranges; /* forwarded range pieces in flight */
	uint64_t last_read_end;
	unsigned seq_streak;
	struct reactor_timer *tick;
	unsigned internal; /* lower ios and journal jobs in flight */
	bool closing;
	bool quiescing;	   /* close is completing the lower ios itself */
	bool fence_logged; /* fence_fail() said once why nothing is uploaded */
	struct cache_stats stats;
	/* journal (cache_dir) */
	int jfd;
	struct jqueue jq;
	bool jq_init;
	uint32_t slot_hdr;
	uint64_t jseq;
	bool jsnapshot; /* the journal header's J_OFF_SNAPSHOT */
	bool jdiverged; /* the journal header's J_OFF_DIVERGED */
	/*
	 * Per-command records are recycled, as the sessions' tasks and the
	 * reactor's messages are: the I/O path allocates only when more are in
	 * flight than ever before. Reactor thread only.
	 */
	struct cio *free_cios;
	struct cpiece *free_pieces;
	struct jjob *free_jjobs;
	uint8_t *zeros;
	char *vol_id;
};

/* ---- cache_dir (journal.c) ---- */

/* On-disk format: docs/DURABILITY.md "cache_dir format". */
#define J_MAGIC "S3TGTCCH"
#define J_VERSION 1u
#define J_HDR_SIZE 4096u
#define J_OFF_VERSION 8
#define J_OFF_BS 12
#define J_OFF_CHUNK 16
#define J_OFF_NSLOTS 20
#define J_OFF_SLOTHDR 24
#define J_OFF_CRC 28
#define J_OFF_VOLLEN 32
#define J_OFF_VOL 34
#define J_VOL_MAX 255u
/* 1: the state-2 slots are the clean snapshot of a clean close, not yet reopened */
#define J_OFF_SNAPSHOT 292
/* 1: the dirty slots were written before another daemon wrote the volume (refused) */
#define J_OFF_DIVERGED 296
#define S_MAGIC 0x534c4f54u /* "SLOT" */
#define S_OFF_STATE 4
#define S_OFF_IDX 8
#define S_OFF_SEQ 16
#define S_OFF_NBLK 24
#define S_OFF_CRC 28
#define S_OFF_BITMAP 32
#define S_OFF_DATACRC S_OFF_BITMAP /* state 2: CRC32C of the chunk's bytes after the header */
#define S_STATE_FREE 0u
#define S_STATE_DIRTY 1u
#define S_STATE_CLEAN 2u
_Static_assert(J_OFF_VOL + J_VOL_MAX < J_OFF_SNAPSHOT, "volume id before the snapshot flag");
_Static_assert(J_OFF_SNAPSHOT + 4 <= J_HDR_SIZE, "snapshot flag fits the header");

/* ---- bitmaps and geometry: tiny, on every I/O path, so inline ---- */

static inline uint32_t bm_set(uint64_t *bm, uint32_t first, uint32_t n)
{
	uint32_t added = 0;

	for (uint32_t i = first; i < first + n; i++) {
		uint64_t bit = 1ull << (i % 64);
		if (!(bm[i / 64] & bit)) {
			bm[i / 64] |= bit;
			added++;
		}
	}
	return added;
}

static inline bool bm_test(const uint64_t *bm, uint32_t i)
{
	return (bm[i / 64] >> (i % 64)) & 1u;
}

static inline bool bm_all(const uint64_t *bm, uint32_t first, uint32_t n)
{
	for (uint32_t i = first; i < first + n; i++) {
		if (!bm_test(bm, i)) {
			return false;
		}
	}
	return true;
}

static inline uint32_t chunk_len(const struct cache *c, uint64_t idx)
{
	uint64_t start = idx * c->chunk;
	uint64_t left = c->lower->size - start;

	return left < c->chunk ? (uint32_t)left : c->chunk;
}

static inline uint32_t chunk_blocks(const struct cache *c, uint64_t idx)
{
	return chunk_len(c, idx) / c->bs;
}

/* ---- cache.c: completion of commands and of the cache's own lower ios ---- */

/* Ends one part of command w (status: its result); the last part completes it. */
void cache_cio_put(struct cio *w, int status);
/* One of the cache's own lower ios or journal jobs is done (close waits for all). */
void cache_internal_done(struct cache *c);

/* ---- slots.c: arena, slots, hash, lists ---- */

void cache_copy_blocks(const struct cache *c, const uint64_t *bm, bool set, uint8_t *dst,
		       const uint8_t *src, uint32_t first, uint32_t n);
void cache_list_del(struct cache *c, struct centry *e);
void cache_list_add_tail(struct cache *c, struct centry *e, enum elist l);
uint32_t cache_hash_idx(const struct cache *c, uint64_t idx);
struct centry *cache_lookup(struct cache *c, uint64_t idx);
void cache_hash_del(struct cache *c, struct centry *e);
void cache_entry_reset(struct cache *c, struct centry *e, uint64_t idx);
struct centry *cache_slot_get(struct cache *c, uint64_t idx);
void cache_entry_drop(struct cache *c, struct centry *e);
/* Maps the arena and sets up the slots, uploads and fills (open; err: why not). */
int cache_alloc(struct cache *c, char *err, size_t errlen);
/* Thread body: makes the arena resident (c->pop_thread). */
void *cache_populate_main(void *arg);

/* ---- read.c ---- */

void cache_read_start(struct cache *c, struct cio *w);

/* ---- writeback.c: writes, range ops, backpressure, uploads, syncs, fence ---- */

/* After any completion: react to a fence, retry waiting commands and syncs, upload. */
void cache_after_event(struct cache *c);
/* Starts the uploads that are due. */
void cache_schedule(struct cache *c);
/*
 * FLUSH or FUA write w waits until no dirty slot of chunks c0..c1 holds a
 * write of wseq <= seq, then flushes the lower store.
 */
void cache_sync_register(struct cio *w, uint64_t seq, uint64_t c0, uint64_t c1);
bool cache_range_inflight_over(const struct cache *c, uint64_t idx);
bool cache_write_progress(struct cache *c, struct cio *w);
bool cache_range_try(struct cache *c, struct cio *w);
void cache_waitq_push(struct cache *c, struct cio *w);
/* The cache's timer (TICK_MS): timeouts, and uploads due by age or after a backoff. */
void cache_tick(void *arg);

/* ---- journal.c: cache_dir ---- */

int cache_journal_queue(struct cache *c, struct centry *e, struct cio *w, const void *src,
			uint32_t off, uint32_t len, bool sync, bool force_hdr);
void cache_jq_stop(struct cache *c);
void cache_journal_save_clean(struct cache *c);
int cache_journal_open(struct cache *c, char *err, size_t errlen);

extern const struct store_ops cache_store_ops;

#endif
