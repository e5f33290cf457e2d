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
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "s3tgt/cache.h"
#include "s3tgt/core.h"
#include "s3tgt/log.h"
#include "s3tgt/store.h"

#include "cache_internal.h"

#define COMP "cache"
#define TICK_MS 50u
#define BACKOFF_MIN_MS 200u
#define BACKOFF_MAX_MS 10000u
#define JOURNAL_THREADS 4u
#define ARENA_ALIGN (2u << 20) /* x86-64 huge page */
#define POPULATE_STEP (64u << 20)

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
	bool jhdr_stale; /* dirty bitmap changed since the last journaled header */
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
	uint8_t *hdr; /* owned header buffer (kept while the record is recycled) */
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
	uint8_t *map;	/* the mapping; arena is map aligned to ARENA_ALIGN */
	pthread_t pop_thread; /* populate_main() */
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

static void schedule(struct cache *c);
static void waitq_run(struct cache *c);
static void check_syncs(struct cache *c);
static void cio_put(struct cio *w, int status);
static void internal_done(struct cache *c);
static void waitq_pop(struct cache *c);

/* ---- bitmaps ---- */

static uint32_t bm_set(uint64_t *bm, uint32_t first, uint32_t n)
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

static bool bm_test(const uint64_t *bm, uint32_t i)
{
	return (bm[i / 64] >> (i % 64)) & 1u;
}

static bool bm_all(const uint64_t *bm, uint32_t first, uint32_t n)
{
	for (uint32_t i = first; i < first + n; i++) {
		if (!bm_test(bm, i)) {
			return false;
		}
	}
	return true;
}

/*
 * Copy blocks first..first+n-1 whose bit in bm equals `set` from src to dst
 * (both starting at block `first`). One memcpy per run, not per block: a
 * cold 4 MiB fill is 8192 blocks of 512 bytes.
 */
static void copy_blocks(const struct cache *c, const uint64_t *bm, bool set, uint8_t *dst,
			const uint8_t *src, uint32_t first, uint32_t n)
{
	uint32_t i = 0;

	while (i < n) {
		uint32_t j = i + 1;

		if (bm_test(bm, first + i) != set) {
			i++;
			continue;
		}
		while (j < n && bm_test(bm, first + j) == set) {
			j++;
		}
		memcpy(dst + (size_t)i * c->bs, src + (size_t)i * c->bs, (size_t)(j - i) * c->bs);
		i = j;
	}
}

/* ---- geometry ---- */

static uint32_t chunk_len(const struct cache *c, uint64_t idx)
{
	uint64_t start = idx * c->chunk;
	uint64_t left = c->lower->size - start;

	return left < c->chunk ? (uint32_t)left : c->chunk;
}

static uint32_t chunk_blocks(const struct cache *c, uint64_t idx)
{
	return chunk_len(c, idx) / c->bs;
}

/* ---- lists and hash ---- */

static void list_del(struct cache *c, struct centry *e)
{
	struct centry **head, **tail;

	switch (e->list) {
	case L_FREE:
		head = &c->free_head;
		tail = &c->free_tail;
		break;
	case L_CLEAN:
		head = &c->clean_head;
		tail = &c->clean_tail;
		break;
	case L_DIRTY:
		head = &c->dirty_head;
		tail = &c->dirty_tail;
		c->ndirty_slots--;
		break;
	default:
		return;
	}
	if (e->lprev) {
		e->lprev->lnext = e->lnext;
	} else {
		*head = e->lnext;
	}
	if (e->lnext) {
		e->lnext->lprev = e->lprev;
	} else {
		*tail = e->lprev;
	}
	e->lprev = e->lnext = NULL;
	e->list = L_NONE;
}

static void list_add_tail(struct cache *c, struct centry *e, enum elist l)
{
	struct centry **head, **tail;

	list_del(c, e);
	if (l == L_FREE) {
		head = &c->free_head;
		tail = &c->free_tail;
	} else if (l == L_CLEAN) {
		head = &c->clean_head;
		tail = &c->clean_tail;
	} else {
		head = &c->dirty_head;
		tail = &c->dirty_tail;
		c->ndirty_slots++;
	}
	e->lprev = *tail;
	e->lnext = NULL;
	if (*tail) {
		(*tail)->lnext = e;
	} else {
		*head = e;
	}
	*tail = e;
	e->list = l;
}

static uint32_t hash_idx(const struct cache *c, uint64_t idx)
{
	return (uint32_t)((idx * 0x9E3779B97F4A7C15ull) >> 32) & c->hmask;
}

static struct centry *lookup(struct cache *c, uint64_t idx)
{
	for (struct centry *e = c->hash[hash_idx(c, idx)]; e; e = e->hnext) {
		if (e->idx == idx) {
			return e;
		}
	}
	return NULL;
}

static void hash_del(struct cache *c, struct centry *e)
{
	struct centry **pp = &c->hash[hash_idx(c, e->idx)];

	while (*pp && *pp != e) {
		pp = &(*pp)->hnext;
	}
	if (*pp) {
		*pp = e->hnext;
	}
	e->hnext = NULL;
}

static void entry_reset(struct cache *c, struct centry *e, uint64_t idx)
{
	memset(e->valid, 0, c->words * sizeof(uint64_t));
	memset(e->dirty, 0, c->words * sizeof(uint64_t));
	e->nvalid = e->ndirty = 0;
	e->gen = 0;
	e->dirty_seq = UINT64_MAX;
	e->fails = 0;
	e->retry_at_ms = 0;
	e->idx = idx;
	e->used = true;
	e->hnext = c->hash[hash_idx(c, idx)];
	c->hash[hash_idx(c, idx)] = e;
}

/* A free slot, or the least recently used clean unpinned one; NULL if none. */
static struct centry *slot_get(struct cache *c, uint64_t idx)
{
	struct centry *e = c->free_head;

	if (!e) {
		for (e = c->clean_head; e && e->pins; e = e->lnext) {
		}
		if (!e) {
			return NULL;
		}
		hash_del(c, e);
		c->stats.evictions++;
	}
	list_del(c, e);
	entry_reset(c, e, idx);
	return e;
}

static void entry_drop(struct cache *c, struct centry *e)
{
	if (e->ndirty) {
		c->dirty_blocks -= e->ndirty;
	}
	e->ndirty = 0;
	e->dirty_seq = UINT64_MAX;
	hash_del(c, e);
	e->used = false;
	list_add_tail(c, e, L_FREE);
}

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

/* A zeroed job record with room for a slot header; NULL if out of memory. */
static struct jjob *jjob_get(struct cache *c)
{
	struct jjob *j = c->free_jjobs;
	uint8_t *hdr;

	if (!j) {
		j = calloc(1, sizeof(*j));
		if (!j) {
			return NULL;
		}
		j->hdr = malloc(c->slot_hdr);
		if (!j->hdr) {
			free(j);
			return NULL;
		}
		return j;
	}
	c->free_jjobs = j->next;
	hdr = j->hdr;
	memset(j, 0, sizeof(*j));
	j->hdr = hdr;
	return j;
}

static void jjob_free(struct cache *c, struct jjob *j)
{
	j->next = c->free_jjobs;
	c->free_jjobs = j;
}

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

static void flush_lower_done(struct store_io *lio)
{
	struct cio *w = lio->cb_arg;
	struct cache *c = w->c;

	internal_done(c);
	cio_put(w, lio->status);
}

static void sync_register(struct cio *w, uint64_t seq, uint64_t c0, uint64_t c1)
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
	schedule(c);
}

static void cio_put(struct cio *w, int status)
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
			sync_register(w, w->wseq, first, last);
			return;
		}
		if (w->kind == CIO_FLUSH) {
			w->synced = true;
			sync_register(w, w->c->wseq, 0, UINT64_MAX);
			return;
		}
	}
	cio_finish(w);
}

static void finalize_msg(void *arg);

static void internal_done(struct cache *c)
{
	c->internal--;
	if (c->closing && c->internal == 0 && !c->quiescing) {
		/* Not from inside the lower store's callback: it may still use itself. */
		if (reactor_post(c->r, finalize_msg, c) != 0) {
			LOG_ERR(COMP, "cannot post the final close; leaking the cache");
		}
	}
}

/* ---- journal (cache_dir) ---- */

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

static uint64_t slot_off(const struct cache *c, uint32_t slot)
{
	return J_HDR_SIZE + (uint64_t)slot * (c->slot_hdr + c->chunk);
}

/*
 * Slot e's header into h: dirty (with its bitmap) or free, as e is; or, with
 * snapshot_crc, a clean chunk of the clean-close snapshot whose data has that CRC.
 */
static void slot_hdr_build(struct cache *c, const struct centry *e, const uint32_t *snapshot_crc,
			   uint8_t *h)
{
	uint32_t state = S_STATE_FREE;

	if (snapshot_crc) {
		state = S_STATE_CLEAN;
	} else if (e->used && e->ndirty) {
		state = S_STATE_DIRTY;
	}

	memset(h, 0, c->slot_hdr);
	put_be32(h, S_MAGIC);
	put_be32(h + S_OFF_STATE, state);
	put_be64(h + S_OFF_IDX, e->used ? e->idx : 0);
	put_be64(h + S_OFF_SEQ, c->jseq++);
	put_be32(h + S_OFF_NBLK, c->nblk);
	if (state == S_STATE_DIRTY) {
		/*
		 * Bit i of the on-disk bitmap is bit i % 8 of byte i / 8, i.e. the
		 * words stored least significant byte first: a byte at a time, not a
		 * bit at a time (this runs for every journaled write).
		 */
		for (uint32_t b = 0; b < (c->nblk + 7) / 8; b++) {
			h[S_OFF_BITMAP + b] = (uint8_t)(e->dirty[b / 8] >> (b % 8 * 8));
		}
		if (c->nblk % 8) {
			h[S_OFF_BITMAP + c->nblk / 8] &= (uint8_t)((1u << (c->nblk % 8)) - 1);
		}
	} else if (state == S_STATE_CLEAN) {
		put_be32(h + S_OFF_DATACRC, *snapshot_crc);
	}
	put_be32(h + S_OFF_CRC, crc32c(0, h, c->slot_hdr));
}

static int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		if (n == 0) {
			return -EIO;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static void jjob_work(void *arg)
{
	struct jjob *j = arg;
	struct cache *c = j->c;
	int rc = 0;

	if (j->len) {
		rc = pwrite_full(c->jfd, j->src, j->len, j->data_off);
	}
	if (!rc && j->with_hdr) {
		/*
		 * The blocks must be stable before the bitmap that claims them, or a
		 * power loss could leave a header pointing at stale bytes.
		 */
		if (j->len && j->sync && fdatasync(c->jfd) != 0) {
			rc = -errno;
		}
		if (!rc) {
			rc = pwrite_full(c->jfd, j->hdr, c->slot_hdr, slot_off(c, j->e->slot));
		}
	}
	if (!rc && j->sync && fdatasync(c->jfd) != 0) {
		rc = -errno;
	}
	j->rc = rc;
}

static void jjob_start(struct centry *e);

static void jjob_done(struct jjob *j)
{
	struct centry *e = j->e;
	struct cache *c = j->c;

	if (j->rc) {
		LOG_RATELIMIT(LOG_LEVEL_ERR, COMP, "%s: cache_dir write for slot %u failed: %s",
			      c->p.cache_dir, e->slot, strerror(-j->rc));
	}
	e->jhead = j->next;
	if (!e->jhead) {
		e->jtail = NULL;
	}
	e->jbusy = false;
	if (j->cio) {
		cio_put(j->cio, j->rc ? -EIO : 0);
	}
	jjob_free(c, j);
	jjob_start(e);
}

static void jq_work(void *arg)
{
	struct jjob *j = arg;

	jjob_work(j);
	reactor_queue_push(j->c->jq.done, &j->done);
}

static void jq_done(void *arg)
{
	jjob_done(arg);
}

static int jq_start(struct cache *c)
{
	int rc = thread_pool_create(JOURNAL_THREADS, &c->jq.tp);

	if (rc) {
		return rc;
	}
	rc = reactor_queue_create(c->r, jq_done, &c->jq.done);
	if (rc) {
		thread_pool_destroy(c->jq.tp);
		c->jq.tp = NULL;
		return rc;
	}
	c->jq_init = true;
	return 0;
}

/* Finish every journal write (close: may block), then stop the workers. */
static void jq_stop(struct cache *c)
{
	if (!c->jq_init) {
		return;
	}
	thread_pool_destroy(c->jq.tp);
	c->jq.tp = NULL;
	c->jq.stopped = true;
	/* Done jobs start their slot's next job, which now runs inline. */
	reactor_queue_destroy(c->jq.done);
	c->jq.done = NULL;
	c->jq_init = false;
}

static void jjob_start(struct centry *e)
{
	struct jjob *j = e->jhead;

	if (e->jbusy || !j) {
		return;
	}
	e->jbusy = true;
	j->done.arg = j;
	if (!e->c->jq.stopped && thread_pool_submit(e->c->jq.tp, jq_work, NULL, NULL, j) == 0) {
		reactor_queue_expect(e->c->jq.done);
		return;
	}
	/* Closing, or no memory for the pool's job: write it now, on the reactor. */
	jjob_work(j);
	jjob_done(j);
}

/*
 * Queue a journal write for slot e: `len` bytes from src at chunk offset off
 * (len 0: header only), plus the header if the dirty bitmap changed. The
 * snapshot of the header is taken now, so jobs of a slot land in order.
 */
static int journal_queue(struct cache *c, struct centry *e, struct cio *w, const void *src,
			 uint32_t off, uint32_t len, bool sync, bool force_hdr)
{
	struct jjob *j;

	if (c->jfd < 0) {
		return 0;
	}
	j = jjob_get(c);
	if (!j) {
		return -ENOMEM;
	}
	if (e->jhdr_stale || force_hdr) {
		j->with_hdr = true;
		slot_hdr_build(c, e, NULL, j->hdr);
		e->jhdr_stale = false;
	}
	j->c = c;
	j->e = e;
	j->cio = w;
	j->src = src;
	j->len = len;
	j->data_off = slot_off(c, e->slot) + c->slot_hdr + off;
	j->sync = sync;
	if (w) {
		w->pending++;
	}
	if (e->jtail) {
		e->jtail->next = j;
	} else {
		e->jhead = j;
	}
	e->jtail = j;
	jjob_start(e);
	return 0;
}

/* ---- writeback ---- */

static bool range_inflight_over(const struct cache *c, uint64_t idx)
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
		cio_put(w, -EROFS);
	}
	while ((w = c->waitq_head)) {
		waitq_pop(c);
		cio_put(w, -EROFS);
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

static void after_event(struct cache *c)
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
	schedule(c);
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
		list_add_tail(c, e, L_CLEAN);
		if (journal_queue(c, e, NULL, NULL, 0, 0, false, true) != 0) {
			LOG_WARN(COMP,
				 "%s: cannot journal clean chunk %" PRIu64
				 " (it will be uploaded again after a restart)",
				 c->lower->uri, e->idx);
		}
	} else {
		/* Rewritten while uploading: what the snapshot held is stored, the rest is not. */
		e->dirty_seq = u->snap_wseq + 1;
		e->dirty_ms = reactor_now_ms();
		list_add_tail(c, e, L_DIRTY);
	}
	upload_release(u);
out:
	internal_done(c);
	after_event(c);
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

	internal_done(c);
	if (lio->status) {
		upload_failed(u, lio->status, "merge read");
		after_event(c);
		return;
	}
	/* Merge once: the slot takes the stored blocks it lacks and is fully valid after. */
	copy_blocks(c, e->valid, false, e->buf, u->buf, 0, n);
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

static void schedule(struct cache *c)
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
		if (e->uploading || now < e->retry_at_ms || range_inflight_over(c, e->idx)) {
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
			cio_put(w, rc);
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
		cio_put(w, -ETIMEDOUT);
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
		list_add_tail(c, e, L_DIRTY);
	}
	return journal_queue(c, e, w, src ? (const void *)src : c->zeros, off, len, true, false);
}

/* Apply as much of write w as fits; false if it must wait for a slot. */
static bool write_progress(struct cache *c, struct cio *w)
{
	struct store_io *io = w->io;

	while (w->cursor < io->len) {
		uint64_t off = io->offset + w->cursor;
		uint64_t idx = off / c->chunk;
		uint32_t coff = (uint32_t)(off % c->chunk);
		uint64_t n = io->len - w->cursor;
		struct centry *e = lookup(c, idx);
		int rc;

		if (n > chunk_len(c, idx) - coff) {
			n = chunk_len(c, idx) - coff;
		}
		if (!e) {
			e = slot_get(c, idx);
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
	internal_done(c);
	cio_put(w, status);
	after_event(c);
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
	struct centry *e = lookup(c, idx);
	uint64_t cstart = idx * c->chunk;

	if (!e) {
		e = slot_get(c, idx);
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
static bool range_try(struct cache *c, struct cio *w)
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
			entry_drop(c, e);
			e->jhdr_stale = true;
			rc = journal_queue(c, e, w, NULL, 0, 0, true, true);
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

static void waitq_push(struct cache *c, struct cio *w)
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
		bool ok = w->kind == CIO_WRITE ? write_progress(c, w) : range_try(c, w);

		if (!ok) {
			break;
		}
		waitq_pop(c);
		cio_put(w, 0);
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
		cio_put(w, -ETIMEDOUT);
	}
}

/* ---- reads ---- */

static void piece_done(struct cpiece *pc, int status)
{
	struct cio *w = pc->cio;

	piece_free(pc->c, pc);
	cio_put(w, status);
}

static void copy_from_entry(struct cache *c, struct centry *e, struct cpiece *pc)
{
	copy_blocks(c, e->valid, true, pc->dst, e->buf + pc->off, pc->off / c->bs,
		    pc->len / c->bs);
}

static void direct_done(struct store_io *lio)
{
	struct cpiece *pc = lio->cb_arg;
	struct cache *c = pc->c;

	internal_done(c);
	if (pc->pin) {
		/* Cached blocks are newer than what the lower store had. */
		if (!lio->status) {
			copy_from_entry(c, pc->pin, pc);
		}
		pc->pin->pins--;
	}
	piece_done(pc, lio->status);
	after_event(c);
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

	internal_done(c);
	if (!lio->status && !c->closing) {
		e = lookup(c, f->idx);
		if (f->seq == c->inval_seq && !range_inflight_over(c, f->idx)) {
			uint32_t n = chunk_blocks(c, f->idx);

			if (!e) {
				e = slot_get(c, f->idx);
				if (e) {
					list_add_tail(c, e, L_CLEAN);
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
				copy_blocks(c, e->valid, false, e->buf, f->buf, 0, n);
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
			/* The slot holds every block now (its newer ones kept): one copy, no overlay. */
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
	after_event(c);
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
		if (lookup(c, idx) || fill_find(c, idx)) {
			continue;
		}
		if (!fill_start(c, idx)) {
			return;
		}
		c->stats.prefetches++;
	}
}

static void read_start(struct cache *c, struct cio *w)
{
	struct store_io *io = w->io;
	uint64_t done = 0;

	while (done < io->len) {
		uint64_t off = io->offset + done;
		uint64_t idx = off / c->chunk;
		uint32_t coff = (uint32_t)(off % c->chunk);
		uint64_t n = io->len - done;
		struct centry *e = lookup(c, idx);
		struct cpiece *pc;
		struct cfill *f;
		int rc;

		if (n > chunk_len(c, idx) - coff) {
			n = chunk_len(c, idx) - coff;
		}
		if (e && bm_all(e->valid, coff / c->bs, (uint32_t)(n / c->bs))) {
			memcpy((uint8_t *)io->buf + done, e->buf + coff, n);
			if (e->list == L_CLEAN) {
				list_add_tail(c, e, L_CLEAN);
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
		read_start(c, w);
		cio_put(w, 0);
		break;
	case STORE_OP_WRITE:
		w->kind = CIO_WRITE;
		if (c->waitq_head || !write_progress(c, w)) {
			c->stats.backpressure++;
			waitq_push(c, w);
			schedule(c);
			break;
		}
		cio_put(w, 0);
		schedule(c);
		break;
	case STORE_OP_UNMAP:
	case STORE_OP_WRITE_ZEROES:
		w->kind = CIO_RANGE;
		if (c->waitq_head || !range_try(c, w)) {
			waitq_push(c, w);
			break;
		}
		cio_put(w, 0);
		break;
	case STORE_OP_FLUSH:
		w->kind = CIO_FLUSH;
		cio_put(w, 0);
		break;
	default:
		cio_free(c, w);
		return -ENOTSUP;
	}
	return 0;
}

static void tick(void *arg)
{
	struct cache *c = arg;
	uint64_t now = reactor_now_ms();

	sync_timeouts(c, now);
	waitq_timeouts(c, now);
	after_event(c);
}

static void cache_free(struct cache *c)
{
	if (c->pop_started) {
		atomic_store(&c->pop_stop, true);
		pthread_join(c->pop_thread, NULL);
	}
	jq_stop(c);
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

static void jhdr_build(const struct cache *c, uint8_t *h);

/*
 * Clean close: keep the clean chunks for the next start. Every slot header is
 * rewritten (state 2 with the data's CRC for a fully valid chunk, free for
 * any other slot), so no older state-2 header joins the snapshot; the journal
 * header's flag goes last, once the data is stable. The next open uses the
 * snapshot only if the lower store says nobody else wrote the volume since
 * (store_ops.resumed). Failure only costs the snapshot: the data is in the
 * lower store.
 */
static void journal_save_clean(struct cache *c)
{
	size_t hlen = c->slot_hdr > J_HDR_SIZE ? c->slot_hdr : J_HDR_SIZE;
	uint8_t *h = malloc(hlen);
	uint64_t n = 0;
	int rc = h ? 0 : -ENOMEM;

	for (uint32_t s = 0; s < c->nslots && !rc; s++) {
		struct centry *e = &c->e[s];
		uint32_t len = e->used ? chunk_len(c, e->idx) : 0;
		bool keep = e->used && !e->ndirty && e->nvalid >= chunk_blocks(c, e->idx);
		uint32_t dcrc = keep ? crc32c(0, e->buf, len) : 0;

		if (keep) {
			rc = pwrite_full(c->jfd, e->buf, len, slot_off(c, s) + c->slot_hdr);
			n++;
		}
		slot_hdr_build(c, e, keep ? &dcrc : NULL, h);
		if (!rc) {
			rc = pwrite_full(c->jfd, h, c->slot_hdr, slot_off(c, s));
		}
	}
	if (!rc && fdatasync(c->jfd) != 0) {
		rc = -errno;
	}
	if (!rc && n) {
		c->jsnapshot = true;
		jhdr_build(c, h);
		rc = pwrite_full(c->jfd, h, J_HDR_SIZE, 0);
		if (!rc && fdatasync(c->jfd) != 0) {
			rc = -errno;
		}
	}
	if (rc) {
		LOG_WARN(COMP, "%s: cannot keep the clean chunks in %s: %s", c->lower->uri,
			 c->p.cache_dir, strerror(-rc));
	} else if (n) {
		LOG_INFO(COMP, "%s: %" PRIu64 " clean chunks kept in %s for the next start",
			 c->lower->uri, n, c->p.cache_dir);
	}
	free(h);
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
	jq_stop(c);
	if (c->jfd >= 0 && !c->ndirty_slots && !c->ups_busy && c->lower->ops->resumed) {
		journal_save_clean(c);
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
	struct centry *e = lookup(c, idx);
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

/* ---- open: geometry, memory, journal recovery ---- */

/*
 * Chunks are filled and evicted whole, megabytes at a time. Faulting the
 * arena in on first use cost a page fault and a page clear per 4 KiB (a third
 * of the daemon's CPU on a cold read), and even with huge pages their
 * allocation stalled reads unpredictably. So the arena is made resident once,
 * like a database's buffer pool, on its own thread so that opening a LUN
 * never blocks the reactor for it (about 1 s per GiB here); reads and writes
 * meanwhile fault their pages in themselves. RSS is then the bound of
 * docs/DURABILITY.md "Memory" from the start, not only under load.
 */
static void *populate_main(void *arg)
{
	struct cache *c = arg;
	uint64_t t0 = reactor_now_ms();
	size_t off;

	for (off = 0; off < c->arena_len && !atomic_load(&c->pop_stop); off += POPULATE_STEP) {
		size_t n = c->arena_len - off < POPULATE_STEP ? c->arena_len - off : POPULATE_STEP;

		if (madvise(c->arena + off, n, MADV_POPULATE_WRITE) != 0) {
			/* EINVAL: a kernel before 5.14; pages then come on first use. */
			if (errno != EINVAL) {
				LOG_WARN(COMP, "%s: only %zu of %zu MiB of the cache made resident: %s",
					 c->lower->uri, off >> 20, c->arena_len >> 20, strerror(errno));
			}
			return NULL;
		}
	}
	if (off >= c->arena_len) {
		LOG_INFO(COMP, "%s: cache memory resident: %zu MiB in %" PRIu64 " ms", c->lower->uri,
			 c->arena_len >> 20, reactor_now_ms() - t0);
	}
	return NULL;
}

static int cache_alloc(struct cache *c, char *err, size_t errlen)
{
	uint64_t *bits;
	uint32_t hsize = 1;
	size_t nbuf = (size_t)c->nslots + c->nups + c->nfills;

	c->arena_len = nbuf * c->chunk;
	c->map_len = c->arena_len + ARENA_ALIGN;
	c->map = mmap(NULL, c->map_len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (c->map == MAP_FAILED) {
		c->map = NULL;
		snprintf(err, errlen, "cache: cannot map %zu bytes for the cache", c->map_len);
		return -ENOMEM;
	}
	/* Huge pages where the kernel allows them (advice: harmless if not); see populate_main(). */
	c->arena = (uint8_t *)(((uintptr_t)c->map + ARENA_ALIGN - 1) & ~(uintptr_t)(ARENA_ALIGN - 1));
	(void)madvise(c->arena, c->arena_len, MADV_HUGEPAGE);
	while (hsize < c->nslots * 2) {
		hsize <<= 1;
	}
	c->hmask = hsize - 1;
	c->hash = calloc(hsize, sizeof(*c->hash));
	c->e = calloc(c->nslots, sizeof(*c->e));
	bits = calloc((size_t)c->nslots * 2 * c->words, sizeof(uint64_t));
	c->ups = calloc(c->nups, sizeof(*c->ups));
	c->fills = calloc(c->nfills, sizeof(*c->fills));
	if (!c->hash || !c->e || !bits || !c->ups || !c->fills) {
		free(bits);
		snprintf(err, errlen, "cache: out of memory");
		return -ENOMEM;
	}
	for (uint32_t s = 0; s < c->nslots; s++) {
		struct centry *e = &c->e[s];
		e->c = c;
		e->slot = s;
		e->buf = c->arena + (size_t)s * c->chunk;
		e->valid = bits + (size_t)s * 2 * c->words;
		e->dirty = e->valid + c->words;
		e->dirty_seq = UINT64_MAX;
		list_add_tail(c, e, L_FREE);
	}
	for (unsigned i = 0; i < c->nups; i++) {
		c->ups[i].c = c;
		c->ups[i].buf = c->arena + ((size_t)c->nslots + i) * c->chunk;
	}
	for (unsigned i = 0; i < c->nfills; i++) {
		c->fills[i].c = c;
		c->fills[i].buf = c->arena + ((size_t)c->nslots + c->nups + i) * c->chunk;
	}
	return 0;
}

static void jhdr_build(const struct cache *c, uint8_t *h)
{
	size_t vlen = strlen(c->vol_id);

	memset(h, 0, J_HDR_SIZE);
	memcpy(h, J_MAGIC, 8);
	put_be32(h + J_OFF_VERSION, J_VERSION);
	put_be32(h + J_OFF_BS, c->bs);
	put_be32(h + J_OFF_CHUNK, c->chunk);
	put_be32(h + J_OFF_NSLOTS, c->nslots);
	put_be32(h + J_OFF_SLOTHDR, c->slot_hdr);
	put_be16(h + J_OFF_VOLLEN, (uint16_t)vlen);
	memcpy(h + J_OFF_VOL, c->vol_id, vlen);
	put_be32(h + J_OFF_SNAPSHOT, c->jsnapshot ? 1u : 0u);
	put_be32(h + J_OFF_DIVERGED, c->jdiverged ? 1u : 0u);
	put_be32(h + J_OFF_CRC, crc32c(0, h, J_HDR_SIZE));
}

/* Rewrite the journal header (h: a J_HDR_SIZE buffer) durably. */
static int jhdr_write(struct cache *c, uint8_t *h, const char *path, char *err, size_t errlen)
{
	int rc;

	jhdr_build(c, h);
	rc = pwrite_full(c->jfd, h, J_HDR_SIZE, 0);
	if (!rc && fdatasync(c->jfd) != 0) {
		rc = -errno;
	}
	if (rc) {
		snprintf(err, errlen, "cache_dir: cannot write %s: %s", path, strerror(-rc));
	}
	return rc;
}

static int journal_create(struct cache *c, const char *path, char *err, size_t errlen)
{
	uint8_t *h = calloc(1, J_HDR_SIZE);
	int rc = 0;

	if (!h) {
		return -ENOMEM;
	}
	jhdr_build(c, h);
	/* Fresh slot headers are zero: not "SLOT", so nothing to recover. */
	if (ftruncate(c->jfd, 0) != 0 || ftruncate(c->jfd, (off_t)slot_off(c, c->nslots)) != 0) {
		rc = -errno;
	} else {
		rc = pwrite_full(c->jfd, h, J_HDR_SIZE, 0);
	}
	if (!rc && fdatasync(c->jfd) != 0) {
		rc = -errno;
	}
	if (rc) {
		snprintf(err, errlen, "cache_dir: cannot initialise %s: %s", path, strerror(-rc));
	}
	free(h);
	return rc;
}

/* Fold the dirty blocks of older slot o into newer slot n (same chunk), durably. */
static int recover_merge(struct cache *c, struct centry *o, struct centry *n)
{
	uint8_t *h = malloc(c->slot_hdr);
	int rc = 0;

	if (!h) {
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < c->nblk && !rc; i++) {
		if (bm_test(o->dirty, i) && !bm_test(n->dirty, i)) {
			memcpy(n->buf + (size_t)i * c->bs, o->buf + (size_t)i * c->bs, c->bs);
			n->nvalid += bm_set(n->valid, i, 1);
			n->ndirty += bm_set(n->dirty, i, 1);
			rc = pwrite_full(c->jfd, n->buf + (size_t)i * c->bs, c->bs,
					 slot_off(c, n->slot) + c->slot_hdr + (uint64_t)i * c->bs);
		}
	}
	if (!rc && fdatasync(c->jfd) != 0) {
		rc = -errno;
	}
	if (!rc) {
		slot_hdr_build(c, n, NULL, h);
		rc = pwrite_full(c->jfd, h, c->slot_hdr, slot_off(c, n->slot));
	}
	if (!rc) {
		o->ndirty = 0;
		o->used = false;
		slot_hdr_build(c, o, NULL, h);
		rc = pwrite_full(c->jfd, h, c->slot_hdr, slot_off(c, o->slot));
	}
	if (!rc && fdatasync(c->jfd) != 0) {
		rc = -errno;
	}
	free(h);
	return rc;
}

/*
 * Load the dirty slots, and with load_clean the clean snapshot of the last
 * clean close (state 2, each checked against its data CRC: the snapshot is
 * written without ordering its data before its headers).
 */
static int journal_recover(struct cache *c, const char *path, bool load_clean, char *err,
			   size_t errlen)
{
	uint8_t *h = malloc(c->slot_hdr);
	uint64_t *seqs = calloc(c->nslots, sizeof(uint64_t));
	uint64_t nclean = 0;
	int rc = 0;

	if (!h || !seqs) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t s = 0; s < c->nslots; s++) {
		struct centry *e = &c->e[s];
		uint32_t crc, state;

		rc = pread_full(c->jfd, h, c->slot_hdr, slot_off(c, s));
		if (rc) {
			snprintf(err, errlen, "cache_dir: cannot read %s: %s", path, strerror(-rc));
			goto out;
		}
		if (get_be32(h) != S_MAGIC) {
			continue;
		}
		crc = get_be32(h + S_OFF_CRC);
		put_be32(h + S_OFF_CRC, 0);
		if (crc != crc32c(0, h, c->slot_hdr) || get_be32(h + S_OFF_NBLK) != c->nblk) {
			LOG_ERR(COMP, "%s: slot %u header is damaged; its data cannot be recovered",
				path, s);
			continue;
		}
		if (get_be64(h + S_OFF_SEQ) >= c->jseq) {
			c->jseq = get_be64(h + S_OFF_SEQ) + 1;
		}
		state = get_be32(h + S_OFF_STATE);
		if (state != S_STATE_DIRTY && !(state == S_STATE_CLEAN && load_clean)) {
			continue;
		}
		if (get_be64(h + S_OFF_IDX) * c->chunk >= c->lower->size) {
			LOG_ERR(COMP, "%s: slot %u holds chunk %" PRIu64 " beyond the volume end",
				path, s, get_be64(h + S_OFF_IDX));
			continue;
		}
		list_del(c, e);
		entry_reset(c, e, get_be64(h + S_OFF_IDX));
		seqs[s] = get_be64(h + S_OFF_SEQ);
		if (state == S_STATE_CLEAN) {
			rc = pread_full(c->jfd, e->buf, chunk_len(c, e->idx),
					slot_off(c, s) + c->slot_hdr);
			if (rc) {
				snprintf(err, errlen, "cache_dir: cannot read %s: %s", path,
					 strerror(-rc));
				goto out;
			}
			if (crc32c(0, e->buf, chunk_len(c, e->idx)) != get_be32(h + S_OFF_DATACRC)) {
				LOG_WARN(COMP, "%s: clean chunk %" PRIu64 " in slot %u is damaged; "
					 "it will be read from the lower store", path, e->idx, s);
				entry_drop(c, e);
				continue;
			}
			e->nvalid = bm_set(e->valid, 0, chunk_blocks(c, e->idx));
			list_add_tail(c, e, L_CLEAN);
			nclean++;
			continue;
		}
		for (uint32_t i = 0; i < c->nblk; i++) {
			if (h[S_OFF_BITMAP + i / 8] & (1u << (i % 8))) {
				e->nvalid += bm_set(e->valid, i, 1);
				e->ndirty += bm_set(e->dirty, i, 1);
			}
		}
		rc = pread_full(c->jfd, e->buf, chunk_len(c, e->idx), slot_off(c, s) + c->slot_hdr);
		if (rc) {
			snprintf(err, errlen, "cache_dir: cannot read %s: %s", path, strerror(-rc));
			goto out;
		}
	}
	/* The same chunk in two slots (evicted, then written again): newest wins per block. */
	for (uint32_t s = 0; s < c->nslots; s++) {
		struct centry *e = &c->e[s];
		struct centry *o;

		if (!e->used) {
			continue;
		}
		for (o = c->hash[hash_idx(c, e->idx)]; o; o = o->hnext) {
			if (o != e && o->idx == e->idx && o->used) {
				break;
			}
		}
		if (!o) {
			continue;
		}
		if (seqs[o->slot] > seqs[e->slot]) {
			struct centry *t = o;
			o = e;
			e = t;
		}
		rc = recover_merge(c, o, e);
		if (rc) {
			snprintf(err, errlen, "cache_dir: cannot merge slots in %s: %s", path,
				 strerror(-rc));
			goto out;
		}
		hash_del(c, o);
		list_add_tail(c, o, L_FREE);
	}
	for (uint32_t s = 0; s < c->nslots; s++) {
		struct centry *e = &c->e[s];

		if (!e->used || !e->ndirty) {
			continue;
		}
		e->gen = 1;
		e->dirty_seq = ++c->wseq;
		e->dirty_ms = 0; /* old: written back at once */
		c->dirty_blocks += e->ndirty;
		list_add_tail(c, e, L_DIRTY);
		c->stats.recovered++;
	}
	c->stats.reloaded = nclean;
out:
	free(h);
	free(seqs);
	return rc;
}

/*
 * Unstored writes found in cache_dir, but another daemon wrote the volume
 * since this holder last had it (its lease was not ours): those writes
 * belong to a history the volume no longer has, and uploading them would
 * overwrite the other daemon's data block by block. Refuse the LUN, and say
 * so in the header too: the refused open closes the volume and so releases
 * the lease as ours, which must not make the next open upload them.
 */
static int journal_diverged(struct cache *c, uint8_t *h, const char *path, char *err,
			    size_t errlen)
{
	int rc = 0;

	if (!c->jdiverged) {
		c->jdiverged = true;
		rc = jhdr_write(c, h, path, err, errlen);
		if (rc) {
			return rc;
		}
	}
	snprintf(err, errlen,
		 "cache_dir %s: %" PRIu64 " chunks of acknowledged writes never reached the "
		 "volume, and another daemon wrote it since; uploading them would overwrite its "
		 "data. To serve the volume as that daemon left it, move this cache_dir away (it "
		 "keeps those writes) and start again",
		 c->p.cache_dir, c->stats.recovered);
	return -ESTALE;
}

static int journal_open(struct cache *c, char *err, size_t errlen)
{
	char path[4096];
	uint8_t *h = NULL;
	struct stat sb;
	bool snapshot, resumed;
	int rc;

	if (mkdir(c->p.cache_dir, 0700) != 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "cache_dir: cannot create %s: %s", c->p.cache_dir,
			 strerror(errno));
		return rc;
	}
	rc = snprintf(path, sizeof(path), "%s/cache.dat", c->p.cache_dir);
	if (rc < 0 || (size_t)rc >= sizeof(path)) {
		snprintf(err, errlen, "cache_dir: path too long");
		return -ENAMETOOLONG;
	}
	c->jfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (c->jfd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cache_dir: cannot open %s: %s", path, strerror(errno));
		return rc;
	}
	/* One daemon per cache_dir: two would journal over each other. */
	if (flock(c->jfd, LOCK_EX | LOCK_NB) != 0) {
		rc = -errno;
		snprintf(err, errlen, "cache_dir: %s is in use by another process", path);
		return rc == -EWOULDBLOCK ? -EBUSY : rc;
	}
	if (fstat(c->jfd, &sb) != 0) {
		rc = -errno;
		snprintf(err, errlen, "cache_dir: cannot stat %s: %s", path, strerror(errno));
		return rc;
	}
	c->zeros = calloc(1, c->chunk);
	h = calloc(1, J_HDR_SIZE);
	if (!c->zeros || !h) {
		rc = -ENOMEM;
		goto out;
	}
	rc = jq_start(c);
	if (rc) {
		snprintf(err, errlen, "cache: cannot start journal threads: %s", strerror(-rc));
		goto out;
	}
	if ((uint64_t)sb.st_size < J_HDR_SIZE) {
		rc = journal_create(c, path, err, errlen);
		goto out;
	}
	rc = pread_full(c->jfd, h, J_HDR_SIZE, 0);
	if (rc) {
		snprintf(err, errlen, "cache_dir: cannot read %s: %s", path, strerror(-rc));
		goto out;
	}
	{
		uint32_t crc = get_be32(h + J_OFF_CRC);
		uint16_t vlen = get_be16(h + J_OFF_VOLLEN);
		char vol[J_VOL_MAX + 1];

		put_be32(h + J_OFF_CRC, 0);
		if (memcmp(h, J_MAGIC, 8) != 0 || crc != crc32c(0, h, J_HDR_SIZE) ||
		    vlen > J_VOL_MAX) {
			snprintf(
			    err, errlen,
			    "cache_dir: %s is not an s3tgt cache file (bad magic or checksum); "
			    "move it away if it holds nothing you need",
			    path);
			rc = -EINVAL;
			goto out;
		}
		if (get_be32(h + J_OFF_VERSION) != J_VERSION) {
			snprintf(err, errlen,
				 "cache_dir: %s has format version %u, this build "
				 "reads version %u",
				 path, get_be32(h + J_OFF_VERSION), J_VERSION);
			rc = -EINVAL;
			goto out;
		}
		memcpy(vol, h + J_OFF_VOL, vlen);
		vol[vlen] = '\0';
		if (strcmp(vol, c->vol_id) != 0) {
			snprintf(
			    err, errlen,
			    "cache_dir: %s belongs to volume '%s', but this LUN is volume '%s'; "
			    "give each volume its own cache_dir",
			    c->p.cache_dir, vol, c->vol_id);
			rc = -EINVAL;
			goto out;
		}
		if (get_be32(h + J_OFF_BS) != c->bs || get_be32(h + J_OFF_CHUNK) != c->chunk ||
		    get_be32(h + J_OFF_NSLOTS) != c->nslots ||
		    get_be32(h + J_OFF_SLOTHDR) != c->slot_hdr) {
			/* Only a journal without dirty data may be re-laid out. */
			struct cache probe = *c;

			probe.bs = get_be32(h + J_OFF_BS);
			probe.chunk = get_be32(h + J_OFF_CHUNK);
			probe.nslots = get_be32(h + J_OFF_NSLOTS);
			probe.slot_hdr = get_be32(h + J_OFF_SLOTHDR);
			for (uint32_t s = 0; s < probe.nslots && probe.slot_hdr >= S_OFF_BITMAP;
			     s++) {
				uint8_t sh[S_OFF_BITMAP];

				if (pread_full(c->jfd, sh, sizeof(sh), slot_off(&probe, s)) != 0) {
					break;
				}
				if (get_be32(sh) == S_MAGIC && get_be32(sh + S_OFF_STATE) == 1) {
					snprintf(err, errlen,
						 "cache_dir: %s holds unstored data laid out for "
						 "cache_size=%" PRIu64
						 " (chunk %u, block %u); restart "
						 "with that cache_size so it can be uploaded",
						 path, (uint64_t)probe.nslots * probe.chunk,
						 probe.chunk, probe.bs);
					rc = -EINVAL;
					goto out;
				}
			}
			rc = journal_create(c, path, err, errlen);
			goto out;
		}
	}
	snapshot = get_be32(h + J_OFF_SNAPSHOT) == 1;
	c->jdiverged = get_be32(h + J_OFF_DIVERGED) == 1;
	resumed = c->lower->ops->resumed && c->lower->ops->resumed(c->lower);
	if (snapshot && !resumed) {
		LOG_WARN(COMP, "%s: the clean chunks kept in %s are not used: the volume may have "
			 "been written elsewhere since this cache_dir's last clean close",
			 c->lower->uri, c->p.cache_dir);
	}
	rc = journal_recover(c, path, snapshot && resumed, err, errlen);
	if (rc) {
		goto out;
	}
	if (c->stats.recovered && (c->jdiverged || (c->lower->ops->resumed && !resumed))) {
		rc = journal_diverged(c, h, path, err, errlen);
		goto out;
	}
	if (c->stats.recovered) {
		LOG_INFO(COMP, "%s: recovered %" PRIu64 " dirty chunks from %s; uploading them",
			 c->lower->uri, c->stats.recovered, path);
	}
	if (c->stats.reloaded) {
		LOG_INFO(COMP, "%s: %" PRIu64 " clean chunks kept in %s at the last clean close "
			 "are cached again", c->lower->uri, c->stats.reloaded, path);
	}
	if (snapshot) {
		/*
		 * From the first write on, the snapshot no longer describes the
		 * volume: a crash must not bring it back.
		 */
		c->jsnapshot = false;
		rc = jhdr_write(c, h, path, err, errlen);
	}
out:
	free(h);
	return rc;
}

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
		rc = journal_open(c, err, errlen);
		if (rc) {
			goto err;
		}
	}
	c->tick = reactor_timer_add(c->r, TICK_MS, true, tick, c);
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
	c->pop_started = core_thread_spawn(&c->pop_thread, populate_main, c) == 0;
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
