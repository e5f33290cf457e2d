/*
 * test_cache.c - the write-back cache over a fake lower store that can hold
 * (gate) its writes, fail every request, and counts what it was asked to do.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "s3tgt/cache.h"
#include "s3tgt/core.h"
#include "s3tgt/store.h"

#define CH (64u << 10) /* chunk size of the fake lower store */
#define DEV (16u * CH)

/* ---- fake lower store ---- */

struct held {
	struct store_io *io;
	struct held *next;
};

static struct fake {
	uint8_t data[DEV];
	bool gate;    /* hold WRITE/UNMAP until released */
	bool fail;    /* fail every request with -ETIMEDOUT */
	bool drop;    /* complete held requests with -EIO without applying (crash) */
	bool fenced;  /* another daemon took the volume (store_ops.fenced) */
	bool lease;   /* open with a store_ops.resumed that answers `resumed` */
	bool resumed; /* the lease taken was our own */
	const char *vol;
	unsigned reads, writes, unmaps, flushes;
	struct held *held;
	struct reactor *r;
} g_fake;

static void fake_apply(struct store_io *io)
{
	if (g_fake.fail) {
		io->status = -ETIMEDOUT;
		return;
	}
	io->status = 0;
	switch (io->op) {
	case STORE_OP_READ:
		memcpy(io->buf, g_fake.data + io->offset, io->len);
		break;
	case STORE_OP_WRITE:
		g_fake.writes++;
		memcpy(g_fake.data + io->offset, io->buf, io->len);
		break;
	case STORE_OP_UNMAP:
	case STORE_OP_WRITE_ZEROES:
		g_fake.unmaps++;
		memset(g_fake.data + io->offset, 0, io->len);
		break;
	case STORE_OP_FLUSH:
		g_fake.flushes++;
		break;
	}
}

static void fake_complete(void *arg)
{
	struct store_io *io = arg;

	fake_apply(io);
	io->cb(io);
}

static int fake_submit(struct store *st, struct store_io *io)
{
	(void)st;
	if (io->op == STORE_OP_READ) {
		g_fake.reads++;
	}
	if (g_fake.gate && (io->op == STORE_OP_WRITE || io->op == STORE_OP_UNMAP)) {
		struct held *h = calloc(1, sizeof(*h)), **pp = &g_fake.held;

		assert_non_null(h);
		h->io = io;
		while (*pp) {
			pp = &(*pp)->next;
		}
		*pp = h;
		return 0;
	}
	return reactor_post(g_fake.r, fake_complete, io);
}

/* Complete the oldest held request (applying it, unless drop); false if none. */
static bool fake_release_one(void)
{
	struct held *h = g_fake.held;
	struct store_io *io;

	if (!h) {
		return false;
	}
	io = h->io;
	g_fake.held = h->next;
	free(h);
	if (g_fake.drop) {
		io->status = -EIO;
	} else {
		fake_apply(io);
	}
	io->cb(io);
	return true;
}

/* Complete every held request in order, also those held meanwhile. */
static void fake_release(void)
{
	while (fake_release_one()) {
	}
}

static unsigned fake_nheld(void)
{
	unsigned n = 0;

	for (struct held *h = g_fake.held; h; h = h->next) {
		n++;
	}
	return n;
}

static void fake_close(struct store *st)
{
	(void)st;
}

/* Everything below 2 chunks is mapped, the rest deallocated. */
static int fake_lba_status(struct store *st, uint64_t offset, bool *mapped, uint64_t *run)
{
	*mapped = offset < 2 * CH;
	*run = *mapped ? 2 * CH - offset : st->size - offset;
	return 0;
}

static const char *fake_volume_id(struct store *st)
{
	(void)st;
	return g_fake.vol;
}

static bool fake_fenced(struct store *st)
{
	(void)st;
	return g_fake.fenced;
}

static const struct store_ops fake_ops = {
    .name = "fake",
    .fenced = fake_fenced,
    .submit = fake_submit,
    .close = fake_close,
    .volume_id = fake_volume_id,
    .lba_status = fake_lba_status,
};

static bool fake_resumed(struct store *st)
{
	(void)st;
	return g_fake.resumed;
}

static struct store *fake_open(struct reactor *r)
{
	struct store *st = calloc(1, sizeof(*st));

	assert_non_null(st);
	g_fake.r = r;
	st->ops = &fake_ops;
	if (g_fake.lease) {
		/* The same store with a lease, as the chunk stores have. */
		static struct store_ops lease_ops;

		lease_ops = fake_ops;
		lease_ops.resumed = fake_resumed;
		st->ops = &lease_ops;
	}
	st->reactor = r;
	st->uri = strdup("fake:vol");
	st->size = DEV;
	st->block_size = 512;
	st->caps = STORE_CAP_UNMAP | STORE_CAP_LBA_STATUS;
	st->opt_io_bytes = CH;
	return st;
}

/* ---- driving the reactor ---- */

struct tio {
	struct store_io io;
	bool done;
};

static void tio_cb(struct store_io *io)
{
	((struct tio *)io->cb_arg)->done = true;
}

static void tio_submit(struct store *st, struct tio *t, enum store_op op, uint64_t off,
		       uint64_t len, void *buf, bool fua)
{
	memset(t, 0, sizeof(*t));
	t->io = (struct store_io){.op = op,
				  .offset = off,
				  .len = len,
				  .buf = buf,
				  .fua = fua,
				  .cb = tio_cb,
				  .cb_arg = t,
				  .status = 12345};
	assert_int_equal(store_submit(st, &t->io), 0);
	assert_false(t->done); /* never inside submit */
}

struct poll {
	struct reactor *r;
	bool (*pred)(void *);
	void *arg;
	uint64_t deadline;
};

static void poll_fn(void *arg)
{
	struct poll *p = arg;

	if ((p->pred && p->pred(p->arg)) || reactor_now_ms() >= p->deadline) {
		reactor_stop(p->r);
	}
}

/* Run the reactor until pred(arg) or max_ms passed; returns pred's final value. */
static bool run_until(struct reactor *r, bool (*pred)(void *), void *arg, unsigned max_ms)
{
	struct poll p = {.r = r, .pred = pred, .arg = arg, .deadline = reactor_now_ms() + max_ms};
	struct reactor_timer *t = reactor_timer_add(r, 2, true, poll_fn, &p);

	assert_non_null(t);
	assert_int_equal(reactor_run(r), 0);
	reactor_timer_cancel(r, t);
	return pred ? pred(arg) : true;
}

static bool tio_done(void *arg)
{
	return ((struct tio *)arg)->done;
}

static int do_io(struct store *st, enum store_op op, uint64_t off, uint64_t len, void *buf,
		 bool fua)
{
	struct tio t;

	tio_submit(st, &t, op, off, len, buf, fua);
	assert_true(run_until(st->reactor, tio_done, &t, 10000));
	return t.io.status;
}

static void pattern(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		b[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 9) + 1);
	}
}

static bool is_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (b[i]) {
			return false;
		}
	}
	return true;
}

struct fx {
	struct reactor *r;
	struct store *st;
	struct cache_params p;
	char dir[64];
};

static void params_default(struct cache_params *p, uint64_t size)
{
	bool any;

	assert_int_equal(cache_params_from_opts(NULL, 0, p, &any, NULL, 0), 0);
	p->cache_size = size;
	p->writeback_age_ms = 3600000; /* only explicit flushes/pressure write back */
}

static int open_cache(struct fx *f, char *err, size_t errlen)
{
	return cache_store_wrap(fake_open(f->r), &f->p, &f->st, err, errlen);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	if (!f || reactor_create(&f->r) != 0) {
		return -1;
	}
	memset(&g_fake, 0, sizeof(g_fake));
	g_fake.vol = "vol-A";
	params_default(&f->p, 8 * CH);
	if (open_cache(f, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static void close_cache(struct fx *f)
{
	store_close(f->st);
	f->st = NULL;
	/* Let deferred internal work finish (the close is then completed). */
	g_fake.gate = false;
	fake_release();
	run_until(f->r, NULL, NULL, 50);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->st) {
		close_cache(f);
	}
	reactor_destroy(f->r);
	cache_params_fini(&f->p);
	free(f);
	return 0;
}

/* ---- tests ---- */

static void test_writeback_then_flush(void **state)
{
	struct fx *f = *state;
	uint8_t w[4096], r[4096];
	struct tio fl;
	struct cache_stats cs;

	assert_true(f->st->caps & STORE_CAP_WRITE_CACHE);
	g_fake.gate = true;
	pattern(w, sizeof(w), 1);
	assert_int_equal(do_io(f->st, STORE_OP_WRITE, 3 * CH + 8192, sizeof(w), w, false), 0);
	assert_int_equal(g_fake.writes, 0); /* completed before any lower write */
	assert_int_equal(do_io(f->st, STORE_OP_READ, 3 * CH + 8192, sizeof(r), r, false), 0);
	assert_memory_equal(w, r, sizeof(w));
	assert_int_equal(cache_store_get_stats(f->st, &cs), 0);
	assert_int_equal(cs.dirty_bytes, 4096);
	tio_submit(f->st, &fl, STORE_OP_FLUSH, 0, 0, NULL, false);
	assert_false(run_until(f->r, tio_done, &fl, 200)); /* the upload is held */
	assert_true(fake_nheld() >= 1);
	g_fake.gate = false;
	fake_release();
	assert_true(run_until(f->r, tio_done, &fl, 5000));
	assert_int_equal(fl.io.status, 0);
	assert_memory_equal(g_fake.data + 3 * CH + 8192, w, sizeof(w));
	assert_true(g_fake.flushes >= 1);
	assert_int_equal(cache_store_get_stats(f->st, &cs), 0);
	assert_int_equal(cs.dirty_bytes, 0);
	assert_int_equal(cs.uploads, 1);
}

static void test_fua_goes_through(void **state)
{
	struct fx *f = *state;
	uint8_t w[8192];
	struct tio t;

	g_fake.gate = true;
	pattern(w, sizeof(w), 2);
	tio_submit(f->st, &t, STORE_OP_WRITE, 5 * CH, sizeof(w), w, true);
	assert_false(run_until(f->r, tio_done, &t, 200));
	assert_int_equal(fake_nheld(), 1);
	fake_release();
	g_fake.gate = false;
	assert_true(run_until(f->r, tio_done, &t, 5000));
	assert_int_equal(t.io.status, 0);
	assert_memory_equal(g_fake.data + 5 * CH, w, sizeof(w));
}

static void test_full_chunk_no_read(void **state)
{
	struct fx *f = *state;
	uint8_t *w = malloc(2 * CH);

	pattern(w, 2 * CH, 3);
	/* Two full chunks in pieces: no lower read, one lower write each. */
	assert_int_equal(do_io(f->st, STORE_OP_WRITE, 2 * CH, CH / 2, w, false), 0);
	assert_int_equal(
	    do_io(f->st, STORE_OP_WRITE, 2 * CH + CH / 2, CH + CH / 2, w + CH / 2, false), 0);
	assert_int_equal(do_io(f->st, STORE_OP_FLUSH, 0, 0, NULL, false), 0);
	assert_int_equal(g_fake.reads, 0);
	assert_int_equal(g_fake.writes, 2);
	assert_memory_equal(g_fake.data + 2 * CH, w, 2 * CH);
	free(w);
}

static void test_partial_merges_once(void **state)
{
	struct fx *f = *state;
	uint8_t *expect = malloc(CH);
	uint8_t a[4096], b[1024];
	struct cache_stats cs;

	pattern(g_fake.data + 7 * CH, CH, 9);
	memcpy(expect, g_fake.data + 7 * CH, CH);
	pattern(a, sizeof(a), 4);
	pattern(b, sizeof(b), 5);
	assert_int_equal(do_io(f->st, STORE_OP_WRITE, 7 * CH + 4096, sizeof(a), a, false), 0);
	assert_int_equal(do_io(f->st, STORE_OP_WRITE, 7 * CH + 40960, sizeof(b), b, false), 0);
	memcpy(expect + 4096, a, sizeof(a));
	memcpy(expect + 40960, b, sizeof(b));
	assert_int_equal(do_io(f->st, STORE_OP_FLUSH, 0, 0, NULL, false), 0);
	assert_int_equal(g_fake.reads, 1);
	assert_int_equal(g_fake.writes, 1);
	assert_memory_equal(g_fake.data + 7 * CH, expect, CH);
	/* The slot is whole now: the next partial write needs no read. */
	assert_int_equal(do_io(f->st, STORE_OP_WRITE, 7 * CH, sizeof(b), b, false), 0);
	assert_int_equal(do_io(f->st, STORE_OP_FLUSH, 0, 0, NULL, false), 0);
	assert_int_equal(g_fake.reads, 1);
	assert_int_equal(g_fake.writes, 2);
	memcpy(expect, b, sizeof(b));
	assert_memory_equal(g_fake.data + 7 * CH, expect, CH);
	assert_int_equal(cache_store_get_stats(f->st, &cs), 0);
	assert_int_equal(cs.merge_reads, 1);
	free(expect);
}

static void test_rewrite_during_upload(void **state)
{
	struct fx *f = *state;
	uint8_t *a = malloc(CH);
	uint8_t b[4096];
	struct tio fl;

	pattern(a, CH, 6);
	pattern(b, sizeof(b), 7);
	g_fake.gate = true;
	assert_int_equal(do_io(f->st, STORE_OP_WRITE, CH, CH, a, false), 0);
	run_until(f->r, NULL, NULL, 120); /* full chunk: upload starts and is held */
	assert_int_equal(fake_nheld(), 1);
	assert_int_equal(do_io(f->st, STORE_OP_WRITE, CH + 8192, sizeof(b), b, false), 0);
	tio_submit(f->st, &fl, STORE_OP_FLUSH, 0, 0, NULL, false);
	/* The held PUT sends what it started with, not the block written since. */
	assert_true(fake_release_one());
	assert_memory_equal(g_fake.data + CH, a, CH);
	g_fake.gate = false;
	fake_release(); /* the chunk stayed dirty: its second upload */
	assert_true(run_until(f->r, tio_done, &fl, 5000));
	assert_int_equal(fl.io.status, 0);
	memcpy(a + 8192, b, sizeof(b));
	assert_memory_equal(g_fake.data + CH, a, CH);
	assert_int_equal(g_fake.writes, 2);
	free(a);
}

static bool count_done(void *arg)
{
	struct tio *t = arg;

	for (int i = 0; i < 6; i++) {
		if (!t[i].done) {
			return false;
		}
	}
	return true;
}

static void test_backpressure(void **state)
{
	struct fx *f = *state;
	struct tio t[6];
	uint8_t *w = malloc(CH);
	struct cache_stats cs;
	int done = 0;

	/* 8 slots; hold every upload; 10 dirty chunks cannot all fit. */
	pattern(w, CH, 8);
	g_fake.gate = true;
	for (int i = 0; i < 4; i++) {
		assert_int_equal(do_io(f->st, STORE_OP_WRITE, (uint64_t)i * CH, 4096, w, false), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(
		    do_io(f->st, STORE_OP_WRITE, (uint64_t)(i + 4) * CH, 4096, w, false), 0);
	}
	for (int i = 0; i < 6; i++) {
		tio_submit(f->st, &t[i], STORE_OP_WRITE, (uint64_t)(i + 8) * CH, 4096, w, false);
	}
	run_until(f->r, NULL, NULL, 200);
	for (int i = 0; i < 6; i++) {
		done += t[i].done;
	}
	assert_int_equal(done, 0);
	assert_int_equal(cache_store_get_stats(f->st, &cs), 0);
	assert_true(cs.backpressure >= 6);
	assert_int_equal(cs.dirty_chunks, 8);
	g_fake.gate = false;
	fake_release();
	assert_true(run_until(f->r, count_done, t, 5000));
	for (int i = 0; i < 6; i++) {
		assert_int_equal(t[i].io.status, 0);
	}
	assert_int_equal(do_io(f->st, STORE_OP_FLUSH, 0, 0, NULL, false), 0);
	for (int i = 0; i < 14; i++) {
		assert_memory_equal(g_fake.data + (uint64_t)i * CH, w, 4096);
	}
	free(w);
}

static void test_lru_eviction(void **state)
{
	struct fx *f = *state;
	uint8_t r[4096];
	struct cache_stats cs;

	for (int i = 0; i < 16; i++) {
		pattern(g_fake.data + (uint64_t)i * CH, CH, 20 + i);
	}
	/* Random (non-sequential) reads: no prefetch. 12 chunks through 8 slots. */
	for (int i = 11; i >= 0; i--) {
		assert_int_equal(
		    do_io(f->st, STORE_OP_READ, (uint64_t)i * CH + 512, sizeof(r), r, false), 0);
		assert_memory_equal(r, g_fake.data + (uint64_t)i * CH + 512, sizeof(r));
	}
	assert_int_equal(cache_store_get_stats(f->st, &cs), 0);
	assert_int_equal(cs.misses, 12);
	assert_int_equal(cs.evictions, 4);
	/* Most recent (chunk 0) is a hit; the oldest (chunk 11) was evicted. */
	assert_int_equal(do_io(f->st, STORE_OP_READ, 0, sizeof(r), r, false), 0);
	assert_int_equal(do_io(f->st, STORE_OP_READ, 11 * CH, sizeof(r), r, false), 0);
	assert_int_equal(cache_store_get_stats(f->st, &cs), 0);
	assert_int_equal(cs.hits, 1);
	assert_int_equal(cs.misses, 13);
}

static void test_prefetch(void **state)
{
	struct fx *f = *state;
	uint8_t *r = malloc(CH);
	struct cache_stats cs;

	for (int i = 0; i < 16; i++) {
		pattern(g_fake.data + (uint64_t)i * CH, CH, 40 + i);
	}
	for (int i = 0; i < 6; i++) {
		assert_int_equal(do_io(f->st, STORE_OP_READ, (uint64_t)i * CH, CH, r, false), 0);
		assert_memory_equal(r, g_fake.data + (uint64_t)i * CH, CH);
		run_until(f->r, NULL, NULL, 20);
	}
	assert_int_equal(cache_store_get_stats(f->st, &cs), 0);
	assert_true(cs.prefetches >= 3);
	assert_true(cs.hits >= 3);
	free(r);
}

static void test_unmap_coherent(void **state)
{
	struct fx *f = *state;
	uint8_t *w = malloc(CH), *r = malloc(CH);
	struct tio um;

	pattern(w, CH, 11);
	/* Dirty chunk dropped by a whole-chunk UNMAP: never reaches the lower store. */
	assert_int_equal(do_io(f->st, STORE_OP_WRITE, 4 * CH, 4096, w, false), 0);
	assert_int_equal(do_io(f->st, STORE_OP_UNMAP, 4 * CH, CH, NULL, false), 0);
	assert_int_equal(do_io(f->st, STORE_OP_READ, 4 * CH, CH, r, false), 0);
	assert_true(is_zero(r, CH));
	/* Partial UNMAP of a cached chunk zeroes just those blocks. */
	assert_int_equal(do_io(f->st, STORE_OP_WRITE, 6 * CH, CH, w, false), 0);
	assert_int_equal(do_io(f->st, STORE_OP_UNMAP, 6 * CH + 4096, 8192, NULL, false), 0);
	assert_int_equal(do_io(f->st, STORE_OP_READ, 6 * CH, CH, r, false), 0);
	assert_true(is_zero(r + 4096, 8192));
	assert_memory_equal(r, w, 4096);
	assert_memory_equal(r + 12288, w + 12288, CH - 12288);
	/* UNMAP behind an upload in flight waits for it, then lands after it. */
	assert_int_equal(do_io(f->st, STORE_OP_FLUSH, 0, 0, NULL, false), 0);
	g_fake.gate = true;
	assert_int_equal(do_io(f->st, STORE_OP_WRITE, 9 * CH, CH, w, false), 0);
	run_until(f->r, NULL, NULL, 120);
	assert_int_equal(fake_nheld(), 1);
	tio_submit(f->st, &um, STORE_OP_UNMAP, 9 * CH, 2 * CH, NULL, false);
	assert_false(run_until(f->r, tio_done, &um, 100));
	assert_int_equal(fake_nheld(), 1); /* not forwarded yet */
	g_fake.gate = false;
	fake_release();
	assert_true(run_until(f->r, tio_done, &um, 5000));
	assert_int_equal(um.io.status, 0);
	assert_true(is_zero(g_fake.data + 9 * CH, 2 * CH));
	assert_int_equal(do_io(f->st, STORE_OP_READ, 9 * CH, CH, r, false), 0);
	assert_true(is_zero(r, CH));
	assert_int_equal(do_io(f->st, STORE_OP_FLUSH, 0, 0, NULL, false), 0);
	assert_true(is_zero(g_fake.data + 4 * CH, CH));
	assert_true(is_zero(g_fake.data + 6 * CH + 4096, 8192));
	assert_memory_equal(g_fake.data + 6 * CH, w, 4096);
	/* A partial UNMAP of an uncached chunk costs no request now: zeros merge at upload. */
	pattern(g_fake.data + 13 * CH, CH, 18);
	memcpy(w, g_fake.data + 13 * CH, CH);
	g_fake.unmaps = 0;
	assert_int_equal(do_io(f->st, STORE_OP_UNMAP, 13 * CH + 512, 1024, NULL, false), 0);
	assert_int_equal(g_fake.unmaps, 0);
	assert_int_equal(do_io(f->st, STORE_OP_READ, 13 * CH, CH, r, false), 0);
	memset(w + 512, 0, 1024);
	assert_memory_equal(r, w, CH);
	/* Chunk-spanning: head and tail in the cache, the whole chunk in between forwarded. */
	assert_int_equal(do_io(f->st, STORE_OP_UNMAP, 13 * CH + 4096, 2 * CH, NULL, false), 0);
	assert_int_equal(g_fake.unmaps, 1);
	assert_int_equal(do_io(f->st, STORE_OP_FLUSH, 0, 0, NULL, false), 0);
	memset(w + 4096, 0, CH - 4096);
	assert_memory_equal(g_fake.data + 13 * CH, w, CH);
	assert_true(is_zero(g_fake.data + 14 * CH, CH + 4096));
	free(w);
	free(r);
}

static void test_lower_outage(void **state)
{
	struct fx *f = *state;
	uint8_t w[8192];
	struct cache_stats cs;

	cache_params_fini(&f->p);
	store_close(f->st);
	run_until(f->r, NULL, NULL, 20);
	params_default(&f->p, 8 * CH);
	f->p.flush_timeout_ms = 1000;
	assert_int_equal(open_cache(f, NULL, 0), 0);
	g_fake.fail = true;
	pattern(w, sizeof(w), 12);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(
		    do_io(f->st, STORE_OP_WRITE, (uint64_t)i * CH, sizeof(w), w, false), 0);
	}
	assert_int_equal(do_io(f->st, STORE_OP_FLUSH, 0, 0, NULL, false), -ETIMEDOUT);
	assert_int_equal(cache_store_get_stats(f->st, &cs), 0);
	assert_true(cs.upload_errors >= 3);
	assert_int_equal(cs.dirty_chunks, 3);
	g_fake.fail = false;
	/* Retries back off, so the first flush after recovery may still time out. */
	for (int i = 0; i < 15 && do_io(f->st, STORE_OP_FLUSH, 0, 0, NULL, false) != 0; i++) {
	}
	assert_int_equal(do_io(f->st, STORE_OP_FLUSH, 0, 0, NULL, false), 0);
	for (int i = 0; i < 3; i++) {
		assert_memory_equal(g_fake.data + (uint64_t)i * CH, w, sizeof(w));
	}
}

/*
 * The lower store lost the volume (fenced): dirty data is no longer
 * uploaded, and a SYNCHRONIZE CACHE that needs an upload fails at once with
 * -EROFS (WRITE PROTECTED), not after flush_timeout. Reads still see the
 * dirty data; new writes are refused.
 */
static void test_fenced_flush(void **state)
{
	struct fx *f = *state;
	uint8_t w[4096], r[4096];
	struct store_io io;
	uint64_t t0;

	pattern(w, sizeof(w), 21);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(
		    do_io(f->st, STORE_OP_WRITE, (uint64_t)i * CH, sizeof(w), w, false), 0);
	}
	g_fake.fenced = true;
	t0 = reactor_now_ms();
	assert_int_equal(do_io(f->st, STORE_OP_FLUSH, 0, 0, NULL, false), -EROFS);
	assert_true(reactor_now_ms() - t0 < f->p.flush_timeout_ms / 2);
	assert_int_equal(g_fake.writes, 0);
	assert_int_equal(do_io(f->st, STORE_OP_READ, CH, sizeof(r), r, false), 0);
	assert_memory_equal(r, w, sizeof(r));
	io = (struct store_io){.op = STORE_OP_WRITE, .len = sizeof(w), .buf = w, .cb = tio_cb};
	assert_int_equal(store_submit(f->st, &io), -EROFS);
	run_until(f->r, NULL, NULL, 200);
	assert_int_equal(g_fake.writes, 0);
}

/* Writes held back for room when the fence comes fail with -EROFS at once. */
static void test_fenced_waiting_writes(void **state)
{
	struct fx *f = *state;
	struct tio t[6];
	uint8_t w[4096];

	pattern(w, sizeof(w), 22);
	g_fake.gate = true;
	for (int i = 0; i < 8; i++) {
		assert_int_equal(
		    do_io(f->st, STORE_OP_WRITE, (uint64_t)i * CH, sizeof(w), w, false), 0);
	}
	for (int i = 0; i < 6; i++) {
		tio_submit(f->st, &t[i], STORE_OP_WRITE, (uint64_t)(i + 8) * CH, sizeof(w), w,
			   false);
	}
	run_until(f->r, NULL, NULL, 100);
	for (int i = 0; i < 6; i++) {
		assert_false(t[i].done);
	}
	g_fake.fenced = true;
	assert_true(run_until(f->r, count_done, t, 1000));
	for (int i = 0; i < 6; i++) {
		assert_int_equal(t[i].io.status, -EROFS);
	}
}

static void make_dir(struct fx *f)
{
	snprintf(f->dir, sizeof(f->dir), "/tmp/s3tgt-cache-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
}

static void rm_dir(struct fx *f)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/cache.dat", f->dir);
	unlink(path);
	rmdir(f->dir);
}

/* Close the fixture's cache; the next open_cache() journals in a fresh cache_dir. */
static void use_cache_dir(struct fx *f)
{
	store_close(f->st);
	f->st = NULL;
	run_until(f->r, NULL, NULL, 20);
	make_dir(f);
	free(f->p.cache_dir);
	f->p.cache_dir = strdup(f->dir);
}

static void test_cache_dir_crash_recovery(void **state)
{
	struct fx *f = *state;
	uint8_t a[4096], b[512];
	uint8_t *big = malloc(CH);
	struct cache_stats cs;
	pid_t pid;
	int wst;

	use_cache_dir(f);
	pattern(a, sizeof(a), 13);
	pattern(b, sizeof(b), 14);
	pattern(big, CH, 15);
	pattern(g_fake.data + 10 * CH, CH, 16);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* The daemon: writes acknowledged, nothing reaches the lower store, then dies. */
		char err[256];
		int ok;

		g_fake.gate = true;
		ok = open_cache(f, err, sizeof(err)) == 0 &&
		     do_io(f->st, STORE_OP_WRITE, 2 * CH + 1024, sizeof(a), a, false) == 0 &&
		     do_io(f->st, STORE_OP_WRITE, 10 * CH + 512, sizeof(b), b, false) == 0 &&
		     do_io(f->st, STORE_OP_WRITE, 12 * CH, CH, big, false) == 0 &&
		     do_io(f->st, STORE_OP_WRITE, 2 * CH + 1024, sizeof(b), b, false) == 0;
		/* The test's own buffer: valgrind's leak check in this child must not count it. */
		free(big);
		_exit(ok ? 0 : 1); /* like kill -9: no close, no flush */
	}
	assert_int_equal(waitpid(pid, &wst, 0), pid);
	assert_true(WIFEXITED(wst));
	assert_int_equal(WEXITSTATUS(wst), 0);
	assert_true(is_zero(g_fake.data + 2 * CH, CH));
	assert_int_equal(open_cache(f, NULL, 0), 0);
	assert_int_equal(cache_store_get_stats(f->st, &cs), 0);
	assert_int_equal(cs.recovered, 3);
	assert_int_equal(do_io(f->st, STORE_OP_FLUSH, 0, 0, NULL, false), 0);
	memcpy(a, b, sizeof(b));
	assert_memory_equal(g_fake.data + 2 * CH + 1024, a, sizeof(a));
	assert_memory_equal(g_fake.data + 10 * CH + 512, b, sizeof(b));
	assert_memory_equal(g_fake.data + 12 * CH, big, CH);
	pattern(a, sizeof(a), 16);
	assert_memory_equal(g_fake.data + 10 * CH, a, 512); /* merged with the stored chunk */
	/* After a clean flush nothing is left to recover. */
	close_cache(f);
	assert_int_equal(open_cache(f, NULL, 0), 0);
	assert_int_equal(cache_store_get_stats(f->st, &cs), 0);
	assert_int_equal(cs.recovered, 0);
	close_cache(f);
	rm_dir(f);
	free(big);
}

/*
 * Unstored writes in cache_dir are uploaded only when the lease taken was
 * our own: when another daemon wrote the volume since, they would overwrite
 * its data, so the LUN is refused, and stays refused even once the lease
 * reads as ours again (the refused open released it as ours).
 */
static void test_cache_dir_diverged(void **state)
{
	struct fx *f = *state;
	uint8_t w[4096];
	struct cache_stats cs;
	char err[512], moved[80];

	use_cache_dir(f);
	g_fake.lease = true;
	pattern(w, sizeof(w), 23);
	assert_int_equal(open_cache(f, err, sizeof(err)), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(
		    do_io(f->st, STORE_OP_WRITE, (uint64_t)i * CH, sizeof(w), w, false), 0);
	}
	close_cache(f);	       /* dirty: kept in cache_dir */
	g_fake.resumed = true; /* our own lease, e.g. a restart after a crash */
	assert_int_equal(open_cache(f, err, sizeof(err)), 0);
	assert_int_equal(cache_store_get_stats(f->st, &cs), 0);
	assert_int_equal(cs.recovered, 2);
	close_cache(f);
	g_fake.resumed = false; /* another daemon had the volume meanwhile */
	assert_int_equal(open_cache(f, err, sizeof(err)), -ESTALE);
	assert_non_null(strstr(err, ": 2 chunks of acknowledged writes never reached"));
	assert_non_null(strstr(err, f->dir));
	g_fake.resumed = true;
	assert_int_equal(open_cache(f, err, sizeof(err)), -ESTALE);
	run_until(f->r, NULL, NULL, 100);
	assert_int_equal(g_fake.writes, 0);
	/* Moved away as the message says: the LUN opens with a fresh cache_dir. */
	snprintf(moved, sizeof(moved), "%s.kept", f->dir);
	assert_int_equal(rename(f->dir, moved), 0);
	assert_int_equal(open_cache(f, err, sizeof(err)), 0);
	assert_int_equal(cache_store_get_stats(f->st, &cs), 0);
	assert_int_equal(cs.recovered, 0);
	close_cache(f);
	rm_dir(f);
	assert_int_equal(rename(moved, f->dir), 0);
	rm_dir(f);
}

static void test_cache_dir_other_volume(void **state)
{
	struct fx *f = *state;
	char err[512];

	use_cache_dir(f);
	assert_int_equal(open_cache(f, err, sizeof(err)), 0);
	close_cache(f);
	g_fake.vol = "vol-B";
	assert_int_equal(open_cache(f, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "vol-A"));
	assert_non_null(strstr(err, "vol-B"));
	rm_dir(f);
}

static void test_open_uri(void **state)
{
	struct fx *f = *state;
	struct store *st = NULL;
	char err[256];
	uint8_t w[4096], r[4096];

	/* The cache is a layer of store_open_uri(), once registered (the daemon's main does it). */
	assert_int_equal(store_open_uri("ram:?size=8M&cache_size=4M", f->r, &st, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "unknown option 'cache_size'"));
	assert_int_equal(store_layer_register(&cache_layer_ops), 0);
	assert_int_equal(store_check_uri("ram:?size=8M&cache_size=4M", err, sizeof(err)), 0);
	assert_int_equal(store_check_uri("ram:?size=8M&cache_size=lots", err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "cache_size"));
	assert_int_equal(store_open_uri("ram:?size=8M&cache_size=4M&cache_uploads=2", f->r, &st,
					err, sizeof(err)),
			 0);
	assert_true(cache_store_is(st));
	assert_true(st->caps & STORE_CAP_WRITE_CACHE);
	assert_string_equal(st->uri, "ram:?size=8M&cache_size=4M&cache_uploads=2");
	pattern(w, sizeof(w), 17);
	assert_int_equal(do_io(st, STORE_OP_WRITE, 4096, sizeof(w), w, false), 0);
	assert_int_equal(do_io(st, STORE_OP_FLUSH, 0, 0, NULL, false), 0);
	assert_int_equal(do_io(st, STORE_OP_READ, 4096, sizeof(r), r, false), 0);
	assert_memory_equal(w, r, sizeof(r));
	store_close(st);
	run_until(f->r, NULL, NULL, 20);
	/* Without cache options it is the plain store. */
	assert_int_equal(store_open_uri("ram:?size=1M", f->r, &st, err, sizeof(err)), 0);
	assert_false(cache_store_is(st));
	store_close(st);
	assert_int_equal(
	    store_open_uri("ram:?size=8M&cache_size=4M&bogus=1", f->r, &st, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "bogus"));
	assert_int_equal(store_open_uri("ram:?size=8M&writeback=2", f->r, &st, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "writeback"));
	assert_int_equal(store_open_uri("ram:?size=8M&cache_size=1M", f->r, &st, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "cache_size"));
	/* writeback=0: write-through, no WCE. */
	assert_int_equal(
	    store_open_uri("ram:?size=8M&cache_size=4M&writeback=0", f->r, &st, err, sizeof(err)),
	    0);
	assert_false(st->caps & STORE_CAP_WRITE_CACHE);
	store_close(st);
	run_until(f->r, NULL, NULL, 20);
}

static void test_lba_status(void **state)
{
	struct fx *f = *state;
	uint8_t w[4096];
	bool mapped;
	uint64_t run;

	assert_true(f->st->caps & STORE_CAP_LBA_STATUS);
	pattern(w, sizeof(w), 19);
	assert_int_equal(do_io(f->st, STORE_OP_WRITE, 9 * CH + 4096, sizeof(w), w, false), 0);
	assert_int_equal(f->st->ops->lba_status(f->st, 0, &mapped, &run), 0);
	assert_true(mapped);
	assert_int_equal(run, 2 * CH);
	/* Deallocated below, but the run stops at the chunk holding unstored data. */
	assert_int_equal(f->st->ops->lba_status(f->st, 2 * CH, &mapped, &run), 0);
	assert_false(mapped);
	assert_int_equal(run, 7 * CH);
	assert_int_equal(f->st->ops->lba_status(f->st, 9 * CH + 512, &mapped, &run), 0);
	assert_true(mapped);
	assert_int_equal(run, CH - 512);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_writeback_then_flush, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fua_goes_through, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_full_chunk_no_read, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_partial_merges_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rewrite_during_upload, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backpressure, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lru_eviction, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_prefetch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unmap_coherent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lower_outage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fenced_flush, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fenced_waiting_writes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cache_dir_crash_recovery, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cache_dir_other_volume, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cache_dir_diverged, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_uri, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lba_status, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
