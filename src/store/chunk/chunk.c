/*
 * chunk.c - the chunked store: a device cut into fixed-size chunks, one
 * object per chunk, on any objstore (dir files or S3). Shared by the `dir`
 * and `s3` stores; the write-back cache (issue 5) stacks on top as a store.
 *
 * A store_io is split into per-chunk ops. Ops are created lazily, in io
 * submission order, from a fixed pool; each op lives in the queue of its chunk
 * (a bucket list of a small hash table, FIFO per chunk index):
 *
 *   submit ──> pending io FIFO ──(free op)──> QUEUED ──(kick)──> READY ──(free slot)──> RUNNING
 *                                                                  │                       │
 *                          hole read / no-op write (no request) ───┴──> done <─────────────┘
 *
 *   A write starting at the head of its chunk queue absorbs the writes queued
 *   right behind it (up to the next READ): they become OP_MERGED, are applied
 *   in queue order in the same RMW, and complete with it.
 *
 *   RUNNING steps:  READ:   GET range ─> verify CRCs ─> copy out
 *                   WRITE full chunk:  PUT  (or DELETE if all zero and mapped)
 *                   partial / UNMAP / WRITE_ZEROES:
 *                           GET whole (if mapped) ─> verify ─> merge ─> PUT, or DELETE if all zero
 *
 *   Whole-chunk DELETEs that become ready in the same dispatch() pass (the
 *   chunks of one large UNMAP / WRITE SAME with UNMAP, or of several ios)
 *   are not sent one by one: they fill a batch, sent as one DELETE_MULTI
 *   (S3 DeleteObjects) when the pass ends or the batch is full. Each member
 *   is RUNNING at the head of its own chunk queue, as a lone DELETE would
 *   be, and completes by its own key's status; a batch of one is sent as a
 *   plain DELETE. The DELETE that ends an RMW runs alone.
 *
 * Invariants:
 *  - Per chunk, a non-READ op runs only at the head of its chunk queue, alone;
 *    READ ops run concurrently with each other but never pass a queued write.
 *    So RMWs of one chunk are serialized (no lost update) and a DELETE can never
 *    be overtaken by an older PUT (no deleted chunk comes back).
 *  - The chunk map bit changes only when a PUT (set) or DELETE (clear)
 *    completes, i.e. only under the head op of that chunk; the next op of the
 *    chunk starts after that and sees the new state.
 *  - A chunk with no queued op and a clear map bit costs no request: reads give
 *    zeros, UNMAP/WRITE_ZEROES/zero writes do nothing.
 *  - Object requests in flight <= max_inflight: every RUNNING op holds one
 *    request slot, except batched DELETEs, whose batch holds one slot for
 *    all of them (so a 1000-key DeleteObjects weighs what one PUT does).
 *    A slot-holding op that moves data also holds one of max_inflight chunk
 *    buffers, so a buffer is always free for it; a DELETE needs none.
 *  - io->cb runs exactly once, always via reactor_post (never inside submit),
 *    when all its parts finished; the first error wins.
 *  - A change (PUT, DELETE) is sent only while the volume lease is confirmed
 *    ours (chunk_lease_confirmed): after a pause or an outage longer than the
 *    renewal period, the write at the head of the ready FIFO waits for a
 *    renewal (and so does what is behind it), then goes, or fails with
 *    WRITE PROTECTED if another daemon took the volume meanwhile.
 *
 * Object bodies are always a whole chunk; metadata carries one CRC32C per
 * segment (docs/OBJECT-FORMAT.md), so reads widen to segments and verify.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3tgt/core.h"
#include "s3tgt/log.h"
#include "s3tgt/store.h"

#include "chunk.h"
#include "lease.h"
#include "objstore.h"

#define CHUNK_BUCKETS 256u

enum op_state { OP_FREE, OP_QUEUED, OP_READY, OP_RUNNING, OP_MERGED };
enum op_step { STEP_NONE, STEP_READ_GET, STEP_RMW_GET, STEP_RMW_BUILD, STEP_PUT, STEP_DELETE };

struct chunk_store;
struct chunk_batch;

struct chunk_op {
	struct chunk_store *cs;
	struct store_io *io; /* borrowed: the io this op is part of */
	uint64_t idx;
	uint32_t off; /* byte range inside the chunk */
	uint32_t len;
	uint8_t *data; /* borrowed slice of io->buf (READ/WRITE), NULL otherwise */
	enum store_op kind;
	enum op_state state;
	enum op_step step;
	bool data_zero;		   /* the bytes this op writes are all zero */
	uint8_t *buf;		   /* chunk buffer while RUNNING, if the step moves data */
	struct chunk_batch *batch; /* the DELETE_MULTI this op is a member of, if any */
	const uint8_t *body;	   /* PUT body: data (full chunk) or buf (RMW) */
	uint8_t *bounce;	   /* READ: where the GET landed if not straight in data */
	uint32_t get_off;	   /* READ: segment-aligned range fetched */
	uint32_t get_len;
	struct chunk_op *qnext, *qprev; /* chunk hash bucket, in arrival order */
	struct chunk_op *rnext;		/* ready FIFO or free list */
	struct chunk_op *mnext;		/* later writes of this chunk merged into this RMW */
	struct obj_req req;
};

/* Whole-chunk DELETEs sent as one DELETE_MULTI (see the top of the file). */
struct chunk_batch {
	struct chunk_store *cs;
	struct chunk_batch *next; /* free list */
	struct chunk_op **ops;	  /* members; keys[i] is ops[i]->req.key */
	const char **keys;
	int *key_status;
	unsigned n;
	struct obj_req req;
};

struct chunk_store {
	struct store *st;
	struct objstore *os;
	struct chunk_manifest man;
	uint32_t chunk_size;
	uint32_t seg_size;
	uint64_t nchunks;
	uint64_t *map; /* bit per chunk: object exists */
	size_t map_words;
	unsigned max_inflight;
	uint8_t **bufs; /* free chunk buffers (stack) */
	unsigned nfree_bufs;
	uint8_t **all_bufs;
	struct chunk_op *ops; /* the op pool */
	unsigned nops;
	struct chunk_op *free_ops;
	struct chunk_op *qhead[CHUNK_BUCKETS];
	struct chunk_op *qtail[CHUNK_BUCKETS];
	struct chunk_op *ready_head, *ready_tail;
	struct store_io *pend_head, *pend_tail; /* ios not yet fully split */
	/*
	 * One batch per request slot at most, each with room for batch_max keys:
	 * the op pool bounds how many DELETEs can be ready at once anyway.
	 */
	struct chunk_batch *batches;
	struct chunk_batch *free_batches;
	struct chunk_batch *filling; /* collecting this dispatch pass's DELETEs */
	unsigned batch_max;
	struct chunk_op **batch_ops; /* backing arrays of the batches */
	const char **batch_keys;
	int *batch_status;
	bool dispatching;
	unsigned running;	   /* request slots in use */
	unsigned running_peak;	   /* for tests and stats */
	struct chunk_lease *lease; /* one writer per volume (lease.c) */
	int gate_err;		   /* lease_notify: the renewal that writes waited for failed */
	bool gate_open;		   /* lease_notify: ... or succeeded */
	/* quiesce: completions kept here and run by chunk_store_quiesce itself */
	bool quiescing;
	struct store_io *done_head, *done_tail;
};

/* store_io scratch use */
#define IO_NEXT(io) ((io)->store_priv[0])
#define IO_CURSOR(io) ((io)->store_u64[0])
#define IO_PARTS(io) ((io)->store_u64[1])

static void dispatch(struct chunk_store *cs);

/* ---- chunk map ---- */

static bool map_test(const struct chunk_store *cs, uint64_t idx)
{
	return idx < cs->nchunks && (cs->map[idx / 64] >> (idx % 64) & 1);
}

static void map_set(struct chunk_store *cs, uint64_t idx, bool on)
{
	if (idx >= cs->nchunks) {
		return;
	}
	if (on) {
		cs->map[idx / 64] |= UINT64_C(1) << (idx % 64);
	} else {
		cs->map[idx / 64] &= ~(UINT64_C(1) << (idx % 64));
	}
}

static int map_grow(struct chunk_store *cs, uint64_t nchunks)
{
	size_t words = (size_t)((nchunks + 63) / 64);
	uint64_t *m;

	if (words > cs->map_words) {
		m = realloc(cs->map, words * sizeof(*m));
		if (!m) {
			return -ENOMEM;
		}
		memset(m + cs->map_words, 0, (words - cs->map_words) * sizeof(*m));
		cs->map = m;
		cs->map_words = words;
	}
	cs->nchunks = nchunks;
	return 0;
}

/* ---- queues ---- */

static unsigned bucket_of(uint64_t idx)
{
	return (unsigned)(idx % CHUNK_BUCKETS);
}

static bool chunk_busy(const struct chunk_store *cs, uint64_t idx)
{
	for (const struct chunk_op *o = cs->qhead[bucket_of(idx)]; o; o = o->qnext) {
		if (o->idx == idx) {
			return true;
		}
	}
	return false;
}

static void bucket_append(struct chunk_store *cs, struct chunk_op *op)
{
	unsigned b = bucket_of(op->idx);

	op->qnext = NULL;
	op->qprev = cs->qtail[b];
	if (cs->qtail[b]) {
		cs->qtail[b]->qnext = op;
	} else {
		cs->qhead[b] = op;
	}
	cs->qtail[b] = op;
}

static void bucket_remove(struct chunk_store *cs, struct chunk_op *op)
{
	unsigned b = bucket_of(op->idx);

	if (op->qprev) {
		op->qprev->qnext = op->qnext;
	} else {
		cs->qhead[b] = op->qnext;
	}
	if (op->qnext) {
		op->qnext->qprev = op->qprev;
	} else {
		cs->qtail[b] = op->qprev;
	}
	op->qnext = op->qprev = NULL;
}

static void make_ready(struct chunk_store *cs, struct chunk_op *op)
{
	op->state = OP_READY;
	op->rnext = NULL;
	if (cs->ready_tail) {
		cs->ready_tail->rnext = op;
	} else {
		cs->ready_head = op;
	}
	cs->ready_tail = op;
}

/* Move every op of chunk idx that may now run to the ready FIFO (see invariants). */
static void kick(struct chunk_store *cs, uint64_t idx)
{
	bool first = true;

	for (struct chunk_op *o = cs->qhead[bucket_of(idx)]; o; o = o->qnext) {
		if (o->idx != idx) {
			continue;
		}
		if (!first && o->kind != STORE_OP_READ) {
			break;
		}
		if (o->state == OP_QUEUED) {
			make_ready(cs, o);
		}
		if (o->kind != STORE_OP_READ) {
			break;
		}
		first = false;
	}
}

/* ---- io completion ---- */

static void io_done_msg(void *arg)
{
	struct store_io *io = arg;

	io->cb(io);
}

static void io_list_append(struct store_io **head, struct store_io **tail, struct store_io *io)
{
	IO_NEXT(io) = NULL;
	if (*tail) {
		IO_NEXT(*tail) = io;
	} else {
		*head = io;
	}
	*tail = io;
}

static void io_complete(struct chunk_store *cs, struct store_io *io)
{
	if (cs->quiescing) {
		io_list_append(&cs->done_head, &cs->done_tail, io);
		return;
	}
	if (reactor_post(cs->st->reactor, io_done_msg, io) != 0) {
		/* Out of memory for the message: completing late beats never completing. */
		LOG_ERR("chunk", "%s: cannot post io completion, completing inline", cs->st->uri);
		io->cb(io);
	}
}

static void io_maybe_complete(struct chunk_store *cs, struct store_io *io)
{
	if (IO_CURSOR(io) == io->len && IO_PARTS(io) == 0) {
		io_complete(cs, io);
	}
}

/* Back-end status during I/O -> store_io status (store.h). */
static int io_status(int e)
{
	switch (e) {
	case 0:
	case -ETIMEDOUT:
	case -EAGAIN:
	case -EILSEQ:
	case -ENOSPC:
		return e;
	default:
		return -EIO;
	}
}

static void op_release(struct chunk_store *cs, struct chunk_op *op, int status)
{
	struct store_io *io = op->io;

	bucket_remove(cs, op);
	op->state = OP_FREE;
	op->mnext = NULL;
	op->rnext = cs->free_ops;
	cs->free_ops = op;
	if (status && io->status == 0) {
		io->status = status;
	}
	IO_PARTS(io)--;
	io_maybe_complete(cs, io);
}

static void op_finish(struct chunk_op *op, int status)
{
	struct chunk_store *cs = op->cs;
	uint64_t idx = op->idx;
	struct chunk_op *m = op->mnext;

	if (op->buf) {
		cs->bufs[cs->nfree_bufs++] = op->buf;
	}
	if (op->state == OP_RUNNING && !op->batch) {
		cs->running--;
	}
	op->buf = NULL;
	op->batch = NULL;
	op_release(cs, op, status);
	while (m) {
		struct chunk_op *next = m->mnext;

		op_release(cs, m, status);
		m = next;
	}
	kick(cs, idx);
	dispatch(cs);
}

/* ---- running an op ---- */

static void req_done(struct obj_req *req);

/* Fill op->req for step. Returns 0 or -EIO. */
static int req_setup(struct chunk_op *op, enum op_step step)
{
	struct chunk_store *cs = op->cs;
	struct obj_req *r = &op->req;
	int ret;

	op->step = step;
	r->range_off = 0;
	r->range_len = 0;
	r->got = 0;
	r->if_none_match = false;
	r->status = 0;
	r->meta[0] = '\0';
	/* A change is retried only while the lease is confirmed (obj_req.valid_until). */
	r->valid_until = (step == STEP_PUT || step == STEP_DELETE) && cs->lease
			     ? chunk_lease_valid_until(cs->lease)
			     : NULL;
	r->cb = req_done;
	r->cb_arg = op;
	chunk_key(r->key, sizeof(r->key), op->idx);
	switch (step) {
	case STEP_READ_GET:
		r->op = OBJ_GET;
		r->range_off = op->get_off;
		r->range_len = op->get_len;
		r->buf = op->bounce ? op->bounce : op->data;
		r->len = op->get_len;
		break;
	case STEP_RMW_GET:
		r->op = OBJ_GET;
		r->buf = op->buf;
		r->len = cs->chunk_size;
		break;
	case STEP_PUT:
		r->op = OBJ_PUT;
		/* The back end only reads a PUT body. */
		r->buf = (void *)(uintptr_t)op->body;
		r->len = cs->chunk_size;
		ret = chunk_meta_build(r->meta, sizeof(r->meta), op->body, cs->chunk_size);
		if (ret) {
			return -EIO;
		}
		break;
	case STEP_DELETE:
		r->op = OBJ_DELETE;
		r->buf = NULL;
		r->len = 0;
		break;
	default:
		return -EIO;
	}
	return 0;
}

static void op_submit(struct chunk_op *op, enum op_step step)
{
	struct chunk_store *cs = op->cs;
	struct obj_req *r = &op->req;
	int ret = req_setup(op, step);

	if (ret) {
		op_finish(op, ret);
		return;
	}
	ret = cs->os->ops->submit(cs->os, r);
	if (ret) {
		LOG_RATELIMIT(LOG_LEVEL_ERR, "chunk", "%s: %s: submit failed: %s", cs->st->uri,
			      r->key, strerror(-ret));
		op_finish(op, ret == -ENOMEM ? -EAGAIN : io_status(ret));
	}
}

/* buf holds the old chunk (or zeros): apply the op, then PUT or DELETE the result. */
static void rmw_merge_and_store(struct chunk_op *op)
{
	struct chunk_store *cs = op->cs;

	for (struct chunk_op *o = op; o; o = o->mnext) {
		if (o->kind == STORE_OP_WRITE) {
			memcpy(op->buf + o->off, o->data, o->len);
		} else {
			memset(op->buf + o->off, 0, o->len);
		}
	}
	if (mem_is_zero(op->buf, cs->chunk_size)) {
		if (map_test(cs, op->idx)) {
			op_submit(op, STEP_DELETE);
		} else {
			op_finish(op, 0);
		}
		return;
	}
	op->body = op->buf;
	op_submit(op, STEP_PUT);
}

static int verify(struct chunk_op *op, const uint8_t *data, uint32_t off, uint32_t len)
{
	struct chunk_store *cs = op->cs;
	unsigned bad = 0;
	int ret = chunk_meta_verify(op->req.meta, data, cs->chunk_size, off, len, &bad);

	if (ret == -EILSEQ) {
		LOG_RATELIMIT(LOG_LEVEL_ERR, "chunk",
			      "%s: %s: CRC32C mismatch in segment %u (bytes %" PRIu64 "..%" PRIu64
			      ")",
			      cs->st->uri, op->req.key, bad, (uint64_t)bad * cs->seg_size,
			      (uint64_t)(bad + 1) * cs->seg_size - 1);
	} else if (ret) {
		LOG_RATELIMIT(LOG_LEVEL_ERR, "chunk", "%s: %s: missing or bad checksum metadata",
			      cs->st->uri, op->req.key);
		ret = -EILSEQ;
	}
	return ret;
}

static void req_done(struct obj_req *req)
{
	struct chunk_op *op = req->cb_arg;
	struct chunk_store *cs = op->cs;
	int st = req->status;

	if (st == -ENOENT && (op->step == STEP_READ_GET || op->step == STEP_RMW_GET)) {
		/* The map said it exists; someone removed it behind our back. */
		LOG_RATELIMIT(LOG_LEVEL_WARN, "chunk", "%s: %s: object vanished, reading zeros",
			      cs->st->uri, req->key);
		map_set(cs, op->idx, false);
		if (op->step == STEP_READ_GET) {
			memset(op->data, 0, op->len);
			op_finish(op, 0);
		} else {
			memset(op->buf, 0, cs->chunk_size);
			rmw_merge_and_store(op);
		}
		return;
	}
	if (st) {
		LOG_RATELIMIT(LOG_LEVEL_ERR, "chunk", "%s: %s: %s failed: %s", cs->st->uri,
			      req->key,
			      req->op == OBJ_GET   ? "GET"
			      : req->op == OBJ_PUT ? "PUT"
						   : "DELETE",
			      strerror(-st));
		op_finish(op, io_status(st));
		return;
	}
	switch (op->step) {
	case STEP_READ_GET: {
		const uint8_t *got = op->bounce ? op->bounce : op->data;
		int ret;

		if (req->got != op->get_len) {
			LOG_RATELIMIT(LOG_LEVEL_ERR, "chunk",
				      "%s: %s: short object (%zu of %" PRIu32 " bytes)",
				      cs->st->uri, req->key, req->got, op->get_len);
			op_finish(op, -EIO);
			return;
		}
		ret = verify(op, got, op->get_off, op->get_len);
		if (ret == 0 && op->bounce) {
			memcpy(op->data, op->bounce + (op->off - op->get_off), op->len);
		}
		op_finish(op, ret);
		return;
	}
	case STEP_RMW_GET: {
		int ret;

		if (req->got != cs->chunk_size) {
			LOG_RATELIMIT(LOG_LEVEL_ERR, "chunk",
				      "%s: %s: short object (%zu of %" PRIu32 " bytes)",
				      cs->st->uri, req->key, req->got, cs->chunk_size);
			op_finish(op, -EIO);
			return;
		}
		ret = verify(op, op->buf, 0, cs->chunk_size);
		if (ret) {
			op_finish(op, ret);
			return;
		}
		rmw_merge_and_store(op);
		return;
	}
	case STEP_PUT:
		map_set(cs, op->idx, true);
		op_finish(op, 0);
		return;
	case STEP_DELETE:
		map_set(cs, op->idx, false);
		op_finish(op, 0);
		return;
	default:
		op_finish(op, -EIO);
		return;
	}
}

/* Decide what a READY op must do; STEP_NONE means it is already done (no request). */
static enum op_step op_plan(struct chunk_op *op)
{
	struct chunk_store *cs = op->cs;
	bool mapped = map_test(cs, op->idx);

	if (op->kind == STORE_OP_READ) {
		if (!mapped) {
			memset(op->data, 0, op->len);
			return STEP_NONE;
		}
		return STEP_READ_GET;
	}
	if (op->off == 0 && op->len == cs->chunk_size) {
		if (op->data_zero) {
			return mapped ? STEP_DELETE : STEP_NONE;
		}
		return STEP_PUT;
	}
	if (mapped) {
		return STEP_RMW_GET;
	}
	return op->data_zero ? STEP_NONE : STEP_RMW_BUILD;
}

static void op_start(struct chunk_op *op, enum op_step step)
{
	struct chunk_store *cs = op->cs;

	switch (step) {
	case STEP_READ_GET: {
		uint32_t seg = cs->seg_size;

		op->get_off = op->off / seg * seg;
		op->get_len = (op->off + op->len + seg - 1) / seg * seg - op->get_off;
		op->bounce = (op->get_off == op->off && op->get_len == op->len) ? NULL : op->buf;
		op_submit(op, STEP_READ_GET);
		break;
	}
	case STEP_RMW_BUILD:
		op->step = step;
		memset(op->buf, 0, cs->chunk_size);
		rmw_merge_and_store(op);
		break;
	case STEP_PUT:
		op->body = op->data;
		op_submit(op, STEP_PUT);
		break;
	default:
		op_submit(op, step);
		break;
	}
}

/* Split pending ios into ops while the op pool lasts, in submission order. */
static void split_pending(struct chunk_store *cs)
{
	while (cs->pend_head && cs->free_ops) {
		struct store_io *io = cs->pend_head;
		uint64_t pos = io->offset + IO_CURSOR(io);
		uint64_t idx = pos / cs->chunk_size;
		uint32_t off = (uint32_t)(pos % cs->chunk_size);
		uint64_t left = io->len - IO_CURSOR(io);
		uint32_t len =
		    (uint32_t)(left < cs->chunk_size - off ? left : cs->chunk_size - off);
		uint8_t *data = NULL;
		bool zero = true;
		struct chunk_op *op;

		if (io->op == STORE_OP_READ || io->op == STORE_OP_WRITE) {
			data = (uint8_t *)io->buf + IO_CURSOR(io);
		}
		if (io->op == STORE_OP_WRITE) {
			zero = mem_is_zero(data, len);
		}
		IO_CURSOR(io) += len;
		if (IO_CURSOR(io) == io->len) {
			cs->pend_head = IO_NEXT(io);
			if (!cs->pend_head) {
				cs->pend_tail = NULL;
			}
		}
		if (!chunk_busy(cs, idx) && !map_test(cs, idx) &&
		    (io->op == STORE_OP_READ || zero)) {
			/* A hole with nothing queued: answer without a request. */
			if (io->op == STORE_OP_READ) {
				memset(data, 0, len);
			}
			io_maybe_complete(cs, io);
			continue;
		}
		op = cs->free_ops;
		cs->free_ops = op->rnext;
		op->io = io;
		op->idx = idx;
		op->off = off;
		op->len = len;
		op->data = data;
		op->kind = io->op;
		op->data_zero = zero;
		op->state = OP_QUEUED;
		op->step = STEP_NONE;
		op->buf = NULL;
		op->batch = NULL;
		op->bounce = NULL;
		op->mnext = NULL;
		IO_PARTS(io)++;
		bucket_append(cs, op);
		kick(cs, idx);
	}
}

/*
 * The head write of a chunk is about to run: absorb the writes queued right
 * behind it (up to the next READ) into one RMW, so a burst of small writes to
 * one chunk costs one GET+PUT instead of one each. They complete together.
 */
static enum op_step coalesce(struct chunk_op *op, enum op_step step)
{
	struct chunk_store *cs = op->cs;
	struct chunk_op *tail = op;
	uint32_t covered = 0;
	bool progress = true;

	for (struct chunk_op *o = op->qnext; o; o = o->qnext) {
		if (o->idx != op->idx) {
			continue;
		}
		if (o->kind == STORE_OP_READ || o->state != OP_QUEUED) {
			break;
		}
		o->state = OP_MERGED;
		tail->mnext = o;
		tail = o;
	}
	if (!op->mnext) {
		return step;
	}
	/* Does the union of the merged ranges cover the chunk? Then the old data is moot. */
	while (progress && covered < cs->chunk_size) {
		progress = false;
		for (struct chunk_op *o = op; o; o = o->mnext) {
			if (o->off <= covered && o->off + o->len > covered) {
				covered = o->off + o->len;
				progress = true;
			}
		}
	}
	if (covered < cs->chunk_size && map_test(cs, op->idx)) {
		return STEP_RMW_GET;
	}
	return STEP_RMW_BUILD;
}

/* Would coalesce() merge a queued write into op? */
static bool has_mergeable(const struct chunk_op *op)
{
	for (const struct chunk_op *o = op->qnext; o; o = o->qnext) {
		if (o->idx == op->idx) {
			return o->kind != STORE_OP_READ && o->state == OP_QUEUED;
		}
	}
	return false;
}

static void batch_add(struct chunk_batch *b, struct chunk_op *op)
{
	int ret = req_setup(op, STEP_DELETE);

	/* A DELETE needs no checksum metadata: setting it up cannot fail. */
	assert(ret == 0);
	(void)ret;
	op->batch = b;
	b->ops[b->n] = op;
	b->keys[b->n] = op->req.key;
	b->n++;
}

/*
 * Every member completes as a lone DELETE would (req_done: same logging and
 * error mapping), by its own key's status unless the whole request failed.
 * Dispatching waits until all are done, so the chunks they free are split
 * and batched together.
 */
static void batch_done(struct obj_req *req)
{
	struct chunk_batch *b = req->cb_arg;
	struct chunk_store *cs = b->cs;
	bool nested = cs->dispatching;

	cs->dispatching = true;
	for (unsigned i = 0; i < b->n; i++) {
		struct chunk_op *op = b->ops[i];

		op->req.status = req->status ? req->status : b->key_status[i];
		req_done(&op->req);
	}
	b->n = 0;
	b->next = cs->free_batches;
	cs->free_batches = b;
	cs->running--;
	cs->dispatching = nested;
	dispatch(cs);
}

static void batch_submit(struct chunk_store *cs)
{
	struct chunk_batch *b = cs->filling;
	struct obj_req *r = &b->req;
	int ret;

	cs->filling = NULL;
	if (b->n == 1) {
		/* Alone: a plain DELETE, which takes over the batch's request slot. */
		struct chunk_op *op = b->ops[0];

		op->batch = NULL;
		b->n = 0;
		b->next = cs->free_batches;
		cs->free_batches = b;
		op_submit(op, STEP_DELETE);
		return;
	}
	r->op = OBJ_DELETE_MULTI;
	r->valid_until = cs->lease ? chunk_lease_valid_until(cs->lease) : NULL;
	r->keys = b->keys;
	r->key_status = b->key_status;
	r->nkeys = b->n;
	r->status = 0;
	r->cb = batch_done;
	r->cb_arg = b;
	ret = cs->os->ops->submit(cs->os, r);
	if (ret) {
		LOG_RATELIMIT(LOG_LEVEL_ERR, "chunk", "%s: DELETE of %u chunks: submit failed: %s",
			      cs->st->uri, b->n, strerror(-ret));
		r->status = ret == -ENOMEM ? -EAGAIN : ret;
		batch_done(r);
	}
}

static void ready_pop(struct chunk_store *cs)
{
	cs->ready_head = cs->ready_head->rnext;
	if (!cs->ready_head) {
		cs->ready_tail = NULL;
	}
}

/*
 * May op (a change that needs a request) be sent? Only under a confirmed
 * lease (chunk_lease_confirmed). 0: go; -EINPROGRESS: wait for the renewal
 * (lease_notify dispatches again); another -errno: fail op with it.
 */
static int lease_gate(struct chunk_store *cs)
{
	if (!cs->lease || cs->gate_open || chunk_lease_confirmed(cs->lease)) {
		return 0;
	}
	if (chunk_lease_lost(cs->lease)) {
		return -EROFS;
	}
	if (cs->gate_err) {
		return cs->gate_err;
	}
	if (cs->quiescing) {
		return -EIO; /* nothing may wait now, and no timer renews meanwhile */
	}
	chunk_lease_renew(cs->lease);
	return -EINPROGRESS;
}

/* A renewal ended: what waited for it goes on (or fails with its error). */
static void lease_notify(void *arg, int status)
{
	struct chunk_store *cs = arg;

	/*
	 * A renewal slower than the window (S3 slower than lease_renew_ms)
	 * still proved the lease ours when it was sent: what waited for it goes.
	 */
	cs->gate_open = status == 0;
	cs->gate_err = status == 0 || status == -EROFS ? 0 : io_status(status);
	dispatch(cs);
	cs->gate_open = false;
	cs->gate_err = 0;
}

/* Start the head of the ready FIFO; false when it must wait (request slot, lease). */
static bool dispatch_one(struct chunk_store *cs)
{
	struct chunk_op *op = cs->ready_head;
	enum op_step step = op_plan(op);
	bool joins = step == STEP_DELETE && cs->filling && cs->filling->n < cs->batch_max &&
		     !has_mergeable(op);

	if (step != STEP_NONE && op->kind != STORE_OP_READ) {
		int gate = lease_gate(cs);

		if (gate == -EINPROGRESS) {
			return false;
		}
		if (gate) {
			ready_pop(cs);
			op_finish(op, gate);
			return true;
		}
	}
	if (step != STEP_NONE && !joins && cs->running >= cs->max_inflight) {
		return false;
	}
	ready_pop(cs);
	if (step == STEP_NONE) {
		op_finish(op, 0);
		return true;
	}
	op->state = OP_RUNNING;
	if (joins) {
		batch_add(cs->filling, op);
		return true;
	}
	cs->running++;
	if (cs->running > cs->running_peak) {
		cs->running_peak = cs->running;
	}
	if (op->kind != STORE_OP_READ) {
		step = coalesce(op, step);
	}
	if (step == STEP_DELETE) {
		/* The slot just taken becomes the new batch's. */
		if (cs->filling) {
			batch_submit(cs);
		}
		cs->filling = cs->free_batches;
		assert(cs->filling);
		cs->free_batches = cs->filling->next;
		batch_add(cs->filling, op);
		return true;
	}
	assert(cs->nfree_bufs > 0);
	op->buf = cs->bufs[--cs->nfree_bufs];
	op_start(op, step);
	return true;
}

static void dispatch(struct chunk_store *cs)
{
	if (cs->dispatching) {
		return;
	}
	cs->dispatching = true;
	for (;;) {
		split_pending(cs);
		if (cs->ready_head && dispatch_one(cs)) {
			continue;
		}
		if (!cs->filling) {
			break;
		}
		batch_submit(cs);
	}
	cs->dispatching = false;
}

int chunk_store_submit(struct store *st, struct store_io *io)
{
	struct chunk_store *cs = st->priv;

	io->status = 0;
	if (io->op == STORE_OP_FLUSH || io->len == 0) {
		/* No volatile cache here: every completed WRITE is already durable. */
		return reactor_post(st->reactor, io_done_msg, io);
	}
	if (io->op != STORE_OP_READ && io->op != STORE_OP_WRITE && io->op != STORE_OP_UNMAP &&
	    io->op != STORE_OP_WRITE_ZEROES) {
		return -ENOTSUP;
	}
	IO_CURSOR(io) = 0;
	IO_PARTS(io) = 0;
	io_list_append(&cs->pend_head, &cs->pend_tail, io);
	dispatch(cs);
	return 0;
}

/* The manifest's volume id: the cache layer keys its cache_dir by it (cache.h). */
const char *chunk_store_volume_id(struct store *st)
{
	struct chunk_store *cs = st->priv;

	return cs->man.volume_id;
}

bool chunk_store_resumed(struct store *st)
{
	struct chunk_store *cs = st->priv;

	return cs->lease && chunk_lease_resumed(cs->lease);
}

bool chunk_store_fenced(struct store *st)
{
	struct chunk_store *cs = st->priv;

	return cs->lease && chunk_lease_lost(cs->lease);
}

void chunk_store_metrics(struct store *st, store_metric_fn fn, void *arg)
{
	struct chunk_store *cs = st->priv;
	struct store_metric m = {
	    .name = "s3tgt_chunk_requests_in_flight",
	    .help = "Object requests (chunk GET/PUT/DELETE; a batch of DELETEs counts once) in "
		    "progress.",
	    .type = STORE_METRIC_GAUGE,
	    .value = cs->running,
	};

	fn(arg, &m);
	m = (struct store_metric){
	    .name = "s3tgt_chunk_lease_lost",
	    .help = "1 once another daemon took the volume lease over: writes are refused.",
	    .type = STORE_METRIC_GAUGE,
	    .value = chunk_store_fenced(st),
	};
	fn(arg, &m);
	if (cs->os->ops->metrics) {
		cs->os->ops->metrics(cs->os, fn, arg);
	}
}

int chunk_store_lba_status(struct store *st, uint64_t offset, bool *mapped, uint64_t *run)
{
	struct chunk_store *cs = st->priv;
	uint64_t idx, end, stop;
	bool m;

	if (offset >= st->size) {
		return -EINVAL;
	}
	idx = offset / cs->chunk_size;
	m = map_test(cs, idx);
	for (end = idx + 1; end < cs->nchunks && map_test(cs, end) == m; end++) {
	}
	stop = end * cs->chunk_size;
	if (stop > st->size) {
		stop = st->size;
	}
	*mapped = m;
	*run = stop - offset;
	return 0;
}

/* ---- open / close ---- */

static void chunk_store_free(struct chunk_store *cs)
{
	if (!cs) {
		return;
	}
	chunk_lease_release(cs->lease);
	if (cs->os) {
		cs->os->ops->destroy(cs->os);
	}
	if (cs->all_bufs) {
		for (unsigned i = 0; i < cs->max_inflight; i++) {
			free(cs->all_bufs[i]);
		}
	}
	free(cs->all_bufs);
	free(cs->bufs);
	free(cs->batch_status);
	free(cs->batch_keys);
	free(cs->batch_ops);
	free(cs->batches);
	free(cs->ops);
	free(cs->map);
	free(cs);
}

static int manifest_put(struct chunk_store *cs, bool create, char *err, size_t errlen)
{
	struct obj_req *r = calloc(1, sizeof(*r));
	char *body = NULL;
	int n, ret;

	if (!r) {
		return -ENOMEM;
	}
	body = calloc(1, 4096);
	if (!body) {
		ret = -ENOMEM;
		goto out;
	}
	n = chunk_manifest_encode(&cs->man, body, 4096);
	if (n < 0) {
		ret = n;
		goto out;
	}
	r->op = OBJ_PUT;
	snprintf(r->key, sizeof(r->key), "%s", CHUNK_MANIFEST_KEY);
	r->buf = body;
	r->len = (size_t)n;
	r->if_none_match = create;
	cs->os->err[0] = '\0';
	ret = cs->os->ops->put_sync(cs->os, r);
	if (ret == 0) {
		ret = r->status;
	}
	if (ret && ret != -EEXIST) {
		if (cs->os->err[0]) {
			snprintf(err, errlen, "%s", cs->os->err);
		} else {
			snprintf(err, errlen, "cannot write manifest: %s", strerror(-ret));
		}
	}
out:
	free(body);
	free(r);
	return ret;
}

/* Read the manifest into cs->man: 0, -ENOENT (new volume), or -errno with err set. */
static int manifest_get(struct chunk_store *cs, char *err, size_t errlen)
{
	struct obj_req *r = calloc(1, sizeof(*r));
	char *body = NULL;
	int ret;

	if (!r) {
		return -ENOMEM;
	}
	body = calloc(1, 4096);
	if (!body) {
		ret = -ENOMEM;
		goto out;
	}
	r->op = OBJ_GET;
	snprintf(r->key, sizeof(r->key), "%s", CHUNK_MANIFEST_KEY);
	r->buf = body;
	r->len = 4095;
	cs->os->err[0] = '\0';
	ret = cs->os->ops->get_sync(cs->os, r);
	if (ret == 0) {
		ret = r->status;
	}
	if (ret == -ENOENT) {
		goto out;
	}
	if (ret) {
		if (cs->os->err[0]) {
			snprintf(err, errlen, "%s", cs->os->err);
		} else {
			snprintf(err, errlen, "cannot read manifest: %s", strerror(-ret));
		}
		goto out;
	}
	ret = chunk_manifest_decode(body, r->got, &cs->man, err, errlen);
out:
	free(body);
	free(r);
	return ret;
}

static void list_cb(void *arg, const char *key, uint64_t size)
{
	struct chunk_store *cs = arg;
	uint64_t idx;

	if (chunk_key_parse(key, &idx) != 0) {
		return;
	}
	if (idx >= cs->nchunks) {
		LOG_WARN("chunk", "%s: ignoring %s beyond the volume's end", cs->st->uri, key);
		return;
	}
	map_set(cs, idx, true);
}

int chunk_opts_parse(const struct store_params *p, struct chunk_opts *o, char *err, size_t errlen)
{
	const char *v;
	uint64_t x;

	o->chunk_size = 0;
	o->max_inflight = CHUNK_MAX_INFLIGHT_DEFAULT;
	v = store_param_get(p, "chunk_size");
	if (v) {
		if (parse_size(v, &x) != 0 || x < CHUNK_SIZE_MIN || x > CHUNK_SIZE_MAX ||
		    (x & (x - 1))) {
			snprintf(err, errlen,
				 "chunk_size '%s': must be a power of two from 64K to 64M", v);
			return -EINVAL;
		}
		o->chunk_size = (uint32_t)x;
	}
	v = store_param_get(p, "max_inflight");
	if (v) {
		if (parse_u64(v, 1, CHUNK_MAX_INFLIGHT_MAX, &x) != 0) {
			snprintf(err, errlen, "max_inflight '%s': must be 1..%u", v,
				 CHUNK_MAX_INFLIGHT_MAX);
			return -EINVAL;
		}
		o->max_inflight = (unsigned)x;
	}
	o->lease.holder = store_param_get(p, "lease_holder");
	o->lease.break_lease = false;
	v = store_param_get(p, "break_lease");
	if (v) {
		if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0) {
			snprintf(err, errlen, "break_lease '%s': must be 0 or 1", v);
			return -EINVAL;
		}
		o->lease.break_lease = v[0] == '1';
	}
	o->lease.renew_ms = CHUNK_LEASE_RENEW_MS;
	v = store_param_get(p, "lease_renew_ms");
	if (v) {
		if (parse_u64(v, CHUNK_LEASE_RENEW_MS_MIN, CHUNK_LEASE_RENEW_MS_MAX, &x) != 0) {
			snprintf(err, errlen, "lease_renew_ms '%s': must be %u..%u", v,
				 CHUNK_LEASE_RENEW_MS_MIN, CHUNK_LEASE_RENEW_MS_MAX);
			return -EINVAL;
		}
		o->lease.renew_ms = (unsigned)x;
	}
	return 0;
}

static int open_manifest(struct chunk_store *cs, const struct store_params *p,
			 const struct chunk_opts *o, uint32_t bs, char *err, size_t errlen)
{
	int ret;

	for (int attempt = 0; attempt < 2; attempt++) {
		uint32_t cz = o->chunk_size ? o->chunk_size : CHUNK_SIZE_DEFAULT;

		ret = manifest_get(cs, err, errlen);
		if (ret != -ENOENT) {
			break;
		}
		if (p->size == 0) {
			snprintf(err, errlen, "new volume: size= is required");
			return -EINVAL;
		}
		if (cz % bs) {
			snprintf(err, errlen,
				 "chunk_size %" PRIu32 " is not a multiple of block size %" PRIu32,
				 cz, bs);
			return -EINVAL;
		}
		ret = chunk_manifest_init(&cs->man, p->size, cz, bs);
		if (ret) {
			snprintf(err, errlen, "cannot create volume id: %s", strerror(-ret));
			return ret;
		}
		/* Conditional PUT: of two daemons racing to create, one wins, the other re-reads.
		 */
		ret = manifest_put(cs, true, err, errlen);
		if (ret != -EEXIST) {
			if (ret == 0) {
				LOG_INFO("chunk",
					 "%s: created volume %s (%" PRIu64
					 " bytes, chunk_size %" PRIu32 ")",
					 cs->st->uri, cs->man.volume_id, cs->man.size,
					 cs->man.chunk_size);
			}
			return ret;
		}
	}
	if (ret) {
		return ret;
	}
	if (o->chunk_size && o->chunk_size != cs->man.chunk_size) {
		snprintf(err, errlen,
			 "chunk_size %" PRIu32 " does not match the volume's chunk_size %" PRIu32
			 " recorded in its manifest",
			 o->chunk_size, cs->man.chunk_size);
		return -EINVAL;
	}
	if (bs != cs->man.block_size) {
		snprintf(err, errlen,
			 "block_size %" PRIu32 " does not match the volume's block_size %" PRIu32
			 " recorded in its manifest",
			 bs, cs->man.block_size);
		return -EINVAL;
	}
	if (p->size && p->size < cs->man.size) {
		snprintf(err, errlen,
			 "size %" PRIu64 " is smaller than the volume's size %" PRIu64
			 ": shrinking is not supported",
			 p->size, cs->man.size);
		return -EINVAL;
	}
	if (p->size > cs->man.size) {
		uint64_t old = cs->man.size;

		cs->man.size = p->size;
		ret = manifest_put(cs, false, err, errlen);
		if (ret) {
			return ret;
		}
		LOG_INFO("chunk", "%s: volume grown from %" PRIu64 " to %" PRIu64 " bytes",
			 cs->st->uri, old, p->size);
	}
	return 0;
}

int chunk_store_open(struct store *st, const struct store_params *p, const struct chunk_opts *o,
		     struct objstore *os, char *err, size_t errlen)
{
	struct chunk_store *cs;
	uint32_t bs = p->block_size ? p->block_size : 512;
	int ret;

	cs = calloc(1, sizeof(*cs));
	if (!cs) {
		os->ops->destroy(os);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	cs->st = st;
	cs->os = os;
	if (p->size % bs) {
		snprintf(err, errlen, "size %" PRIu64 " is not a multiple of block size %" PRIu32,
			 p->size, bs);
		ret = -EINVAL;
		goto err;
	}
	ret = open_manifest(cs, p, o, bs, err, errlen);
	if (ret) {
		goto err;
	}
	ret = chunk_lease_take(os, st->reactor, &o->lease, st->uri, &cs->lease, err, errlen);
	if (ret) {
		goto err;
	}
	chunk_lease_set_notify(cs->lease, lease_notify, cs);
	cs->chunk_size = cs->man.chunk_size;
	cs->seg_size = chunk_seg_size(cs->chunk_size);
	ret = map_grow(cs, (cs->man.size + cs->chunk_size - 1) / cs->chunk_size);
	if (ret) {
		snprintf(err, errlen, "out of memory for the chunk map");
		goto err;
	}
	os->err[0] = '\0';
	ret = os->ops->list(os, CHUNK_KEY_PREFIX, list_cb, cs);
	if (ret) {
		if (os->err[0]) {
			snprintf(err, errlen, "%s", os->err);
		} else {
			snprintf(err, errlen, "cannot list chunks: %s", strerror(-ret));
		}
		goto err;
	}
	cs->max_inflight = o->max_inflight ? o->max_inflight : CHUNK_MAX_INFLIGHT_DEFAULT;
	cs->nops = cs->max_inflight * 4 + 16;
	cs->ops = calloc(cs->nops, sizeof(*cs->ops));
	cs->bufs = calloc(cs->max_inflight, sizeof(*cs->bufs));
	cs->all_bufs = calloc(cs->max_inflight, sizeof(*cs->all_bufs));
	cs->batch_max = cs->nops < OBJ_DELETE_MULTI_MAX ? cs->nops : OBJ_DELETE_MULTI_MAX;
	cs->batches = calloc(cs->max_inflight, sizeof(*cs->batches));
	cs->batch_ops = calloc((size_t)cs->max_inflight * cs->batch_max, sizeof(*cs->batch_ops));
	cs->batch_keys = calloc((size_t)cs->max_inflight * cs->batch_max, sizeof(*cs->batch_keys));
	cs->batch_status =
	    calloc((size_t)cs->max_inflight * cs->batch_max, sizeof(*cs->batch_status));
	if (!cs->ops || !cs->bufs || !cs->all_bufs || !cs->batches || !cs->batch_ops ||
	    !cs->batch_keys || !cs->batch_status) {
		snprintf(err, errlen, "out of memory");
		ret = -ENOMEM;
		goto err;
	}
	for (unsigned i = 0; i < cs->max_inflight; i++) {
		/* Large allocations are mmap-backed: pages commit only when a buffer is used. */
		cs->all_bufs[i] = malloc(cs->chunk_size);
		if (!cs->all_bufs[i]) {
			snprintf(err, errlen, "out of memory for %u chunk buffers",
				 cs->max_inflight);
			ret = -ENOMEM;
			goto err;
		}
		cs->bufs[i] = cs->all_bufs[i];
	}
	cs->nfree_bufs = cs->max_inflight;
	for (unsigned i = 0; i < cs->nops; i++) {
		cs->ops[i].cs = cs;
		cs->ops[i].rnext = cs->free_ops;
		cs->free_ops = &cs->ops[i];
	}
	for (unsigned i = 0; i < cs->max_inflight; i++) {
		struct chunk_batch *b = &cs->batches[i];
		size_t base = (size_t)i * cs->batch_max;

		b->cs = cs;
		b->ops = cs->batch_ops + base;
		b->keys = cs->batch_keys + base;
		b->key_status = cs->batch_status + base;
		b->next = cs->free_batches;
		cs->free_batches = b;
	}
	st->priv = cs;
	st->size = cs->man.size;
	st->block_size = bs;
	st->caps = STORE_CAP_UNMAP | STORE_CAP_LBA_STATUS;
	st->opt_io_bytes = cs->chunk_size;
	return 0;
err:
	chunk_store_free(cs);
	return ret;
}

int chunk_store_resize(struct store *st, uint64_t new_size)
{
	struct chunk_store *cs = st->priv;
	char err[256];
	uint64_t old = cs->man.size;
	int ret;

	if (new_size < st->size || new_size % st->block_size) {
		return -EINVAL;
	}
	if (new_size == st->size) {
		return 0;
	}
	if (chunk_store_fenced(st)) {
		return -EROFS; /* the manifest is the new holder's now */
	}
	ret = map_grow(cs, (new_size + cs->chunk_size - 1) / cs->chunk_size);
	if (ret) {
		return ret;
	}
	cs->man.size = new_size;
	ret = manifest_put(cs, false, err, sizeof(err));
	if (ret) {
		LOG_ERR("chunk", "%s: resize: %s", st->uri, err);
		cs->man.size = old;
		cs->nchunks = (old + cs->chunk_size - 1) / cs->chunk_size;
		return ret;
	}
	st->size = new_size;
	return 0;
}

/*
 * A chunk op's completion dispatches the next one inline, so the back end's
 * quiesce also sees the ops queued behind it. The ios those ops complete are
 * run here, outside the back end's callbacks; what their callbacks submit is
 * quiesced in the next round.
 */
void chunk_store_quiesce(struct store *st)
{
	struct chunk_store *cs = st->priv;

	cs->quiescing = true;
	dispatch(cs); /* ends what waits for the lease */
	for (;;) {
		unsigned running = cs->running;
		bool ran = cs->done_head != NULL;

		cs->os->ops->quiesce(cs->os);
		ran = ran || cs->done_head != NULL;
		while (cs->done_head) {
			struct store_io *io = cs->done_head;

			cs->done_head = IO_NEXT(io);
			if (!cs->done_head) {
				cs->done_tail = NULL;
			}
			io->cb(io);
		}
		if (!cs->running && !cs->pend_head) {
			break;
		}
		if (!ran && cs->running == running) {
			LOG_ERR("chunk", "%s: quiesce: %u requests running, none outstanding",
				st->uri, cs->running);
			break;
		}
	}
	cs->quiescing = false;
}

static void released_msg(void *arg)
{
	chunk_store_free(arg);
	store_close_background_end();
}

void chunk_store_close(struct store *st)
{
	struct chunk_store *cs = st->priv;

	if (!cs) {
		return;
	}
	if (cs->running || cs->pend_head) {
		LOG_ERR("chunk", "%s: closed with I/O in flight", st->uri);
	}
	st->priv = NULL;
	/*
	 * Inside the loop (an LU deleted at run time) the lease release must not
	 * block it; the rest of cs goes once the release finished. At shutdown the
	 * loop has stopped, and a synchronous release is what is left.
	 */
	if (cs->lease && reactor_is_current(st->reactor)) {
		store_close_background_begin();
		if (chunk_lease_release_async(cs->lease, released_msg, cs) == 0) {
			cs->lease = NULL;
			return;
		}
		store_close_background_end();
	}
	chunk_store_free(cs);
}
