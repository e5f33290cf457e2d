/*
 * test_ram.c - the sparse RAM store driven through a real reactor.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "s3tgt/core.h"
#include "s3tgt/store.h"

struct io_wait {
	struct reactor *r;
	int pending;
	int completions;
	bool inside_submit;
	bool ran_inside_submit;
};

static void io_cb(struct store_io *io)
{
	struct io_wait *w = io->cb_arg;

	if (w->inside_submit) {
		w->ran_inside_submit = true;
	}
	w->completions++;
	if (--w->pending == 0) {
		reactor_stop(w->r);
	}
}

/* Submit one io and run the reactor until it completes; returns io->status. */
static int do_io(struct store *st, enum store_op op, uint64_t off, uint64_t len, void *buf,
		 bool fua)
{
	struct io_wait w = {.r = st->reactor, .pending = 1};
	struct store_io io = {.op = op,
			      .offset = off,
			      .len = len,
			      .buf = buf,
			      .fua = fua,
			      .cb = io_cb,
			      .cb_arg = &w,
			      .status = 12345};
	int rc;

	w.inside_submit = true;
	rc = store_submit(st, &io);
	w.inside_submit = false;
	if (rc) {
		return rc;
	}
	assert_int_equal(reactor_run(st->reactor), 0);
	assert_false(w.ran_inside_submit);
	assert_int_equal(w.completions, 1);
	return io.status;
}

static void fill(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		b[i] = (uint8_t)(seed * 31u + i * 7u + (i >> 9));
	}
}

static bool all_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (b[i]) {
			return false;
		}
	}
	return true;
}

struct fixture {
	struct reactor *r;
	struct store *st;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	if (!f || reactor_create(&f->r) != 0) {
		return -1;
	}
	if (store_open_uri("ram:?size=8M", f->r, &f->st, err, sizeof(err)) != 0) {
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	store_close(f->st);
	reactor_destroy(f->r);
	free(f);
	return 0;
}

static void test_open(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(f->st->size, 8 << 20);
	assert_int_equal(f->st->block_size, 512);
	assert_int_equal(f->st->caps, STORE_CAP_UNMAP | STORE_CAP_LBA_STATUS);
	assert_false(f->st->caps & STORE_CAP_WRITE_CACHE);
}

static void test_fresh_reads_zero(void **state)
{
	struct fixture *f = *state;
	uint8_t *b = malloc(1 << 20);

	memset(b, 0xaa, 1 << 20);
	assert_int_equal(do_io(f->st, STORE_OP_READ, 3 << 20, 1 << 20, b, false), 0);
	assert_true(all_zero(b, 1 << 20));
	free(b);
}

static void test_write_read_across_pages(void **state)
{
	struct fixture *f = *state;
	const size_t n = 200 * 1024 + 512; /* spans 4 pages, starts mid-page */
	uint8_t *w = malloc(n);
	uint8_t *r = malloc(n);

	fill(w, n, 1);
	assert_int_equal(do_io(f->st, STORE_OP_WRITE, 40 * 512, n, w, false), 0);
	assert_int_equal(do_io(f->st, STORE_OP_READ, 40 * 512, n, r, false), 0);
	assert_memory_equal(w, r, n);
	/* The unwritten head of the first page still reads zeros. */
	assert_int_equal(do_io(f->st, STORE_OP_READ, 0, 40 * 512, r, false), 0);
	assert_true(all_zero(r, 40 * 512));
	/* ...and so does the unwritten tail of the last page written. */
	assert_int_equal(do_io(f->st, STORE_OP_READ, 40 * 512 + n, 4096, r, false), 0);
	assert_true(all_zero(r, 4096));
	/* Last block of the device. */
	assert_int_equal(do_io(f->st, STORE_OP_WRITE, (8 << 20) - 512, 512, w, true), 0);
	assert_int_equal(do_io(f->st, STORE_OP_READ, (8 << 20) - 512, 512, r, false), 0);
	assert_memory_equal(w, r, 512);
	assert_int_equal(do_io(f->st, STORE_OP_FLUSH, 0, 0, NULL, false), 0);
	free(w);
	free(r);
}

static void test_unmap_and_lba_status(void **state)
{
	struct fixture *f = *state;
	const size_t mb = 1 << 20;
	uint8_t *b = malloc(mb);
	bool mapped;
	uint64_t run;

	assert_int_equal(store_ops_find("ram")->lba_status(f->st, 0, &mapped, &run), 0);
	assert_false(mapped);
	assert_int_equal(run, 8 << 20);

	fill(b, mb, 2);
	assert_int_equal(do_io(f->st, STORE_OP_WRITE, mb, mb, b, false), 0);
	assert_int_equal(f->st->ops->lba_status(f->st, 0, &mapped, &run), 0);
	assert_false(mapped);
	assert_int_equal(run, mb);
	assert_int_equal(f->st->ops->lba_status(f->st, mb + 4096, &mapped, &run), 0);
	assert_true(mapped);
	assert_int_equal(run, mb - 4096);

	/* Unmap 1.5 pages in the middle: one page freed, one partially zeroed. */
	assert_int_equal(do_io(f->st, STORE_OP_UNMAP, mb + 65536, 65536 + 32768, NULL, false), 0);
	assert_int_equal(do_io(f->st, STORE_OP_READ, mb, mb, b, false), 0);
	{
		uint8_t *ref = malloc(mb);
		fill(ref, mb, 2);
		memset(ref + 65536, 0, 65536 + 32768);
		assert_memory_equal(b, ref, mb);
		free(ref);
	}
	assert_int_equal(f->st->ops->lba_status(f->st, mb + 65536, &mapped, &run), 0);
	assert_false(mapped);
	assert_int_equal(run, 65536);
	assert_int_equal(f->st->ops->lba_status(f->st, mb, &mapped, &run), 0);
	assert_true(mapped);
	assert_int_equal(run, 65536);

	/* WRITE ZEROES over everything: all unmapped, all zeros. */
	assert_int_equal(do_io(f->st, STORE_OP_WRITE_ZEROES, 0, 8 << 20, NULL, false), 0);
	assert_int_equal(f->st->ops->lba_status(f->st, 0, &mapped, &run), 0);
	assert_false(mapped);
	assert_int_equal(run, 8 << 20);
	assert_int_equal(do_io(f->st, STORE_OP_READ, mb, mb, b, false), 0);
	assert_true(all_zero(b, mb));
	assert_int_equal(f->st->ops->lba_status(f->st, 8 << 20, &mapped, &run), -EINVAL);
	free(b);
}

/* Many ios in flight complete exactly once each, in submission order. */
struct order_io {
	struct store_io io;
	int *next;
	bool in_order;
	struct io_wait *w;
	int idx;
};

static void order_cb(struct store_io *io)
{
	struct order_io *o = io->cb_arg;

	o->in_order = *o->next == o->idx;
	(*o->next)++;
	if (--o->w->pending == 0) {
		reactor_stop(o->w->r);
	}
}

static void test_many_in_flight(void **state)
{
	struct fixture *f = *state;
	enum { N = 64 };
	struct order_io ios[N];
	struct io_wait w = {.r = f->r, .pending = N};
	static uint8_t bufs[N][4096];
	int next = 0;

	for (int i = 0; i < N; i++) {
		fill(bufs[i], 4096, (unsigned)i);
		ios[i] = (struct order_io){.io = {.op = STORE_OP_WRITE,
						  .offset = (uint64_t)i * 4096 * 3,
						  .len = 4096,
						  .buf = bufs[i],
						  .cb = order_cb},
					   .next = &next,
					   .w = &w,
					   .idx = i};
		ios[i].io.cb_arg = &ios[i];
		assert_int_equal(store_submit(f->st, &ios[i].io), 0);
	}
	assert_int_equal(reactor_run(f->r), 0);
	assert_int_equal(next, N);
	for (int i = 0; i < N; i++) {
		uint8_t r[4096];
		assert_true(ios[i].in_order);
		assert_int_equal(ios[i].io.status, 0);
		assert_int_equal(
		    do_io(f->st, STORE_OP_READ, (uint64_t)i * 4096 * 3, 4096, r, false), 0);
		assert_memory_equal(r, bufs[i], 4096);
	}
}

static void test_odd_sizes(void **state)
{
	struct reactor *r;
	struct store *st;
	char err[256];
	bool mapped;
	uint64_t run;
	uint8_t b[512];

	assert_int_equal(reactor_create(&r), 0);
	/* Not a multiple of the 64 KiB page: the last page is partial. */
	assert_int_equal(store_open_uri("ram:?size=66048", r, &st, err, sizeof(err)), 0);
	memset(b, 0x5a, sizeof(b));
	assert_int_equal(do_io(st, STORE_OP_WRITE, 65536, 512, b, false), 0);
	assert_int_equal(st->ops->lba_status(st, 65536, &mapped, &run), 0);
	assert_true(mapped);
	assert_int_equal(run, 512);
	store_close(st);
	assert_int_equal(store_open_uri("ram:?size=1001", r, &st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a multiple of block_size"));
	reactor_destroy(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_open, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fresh_reads_zero, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_read_across_pages, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unmap_and_lba_status, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_many_in_flight, setup, teardown),
	    cmocka_unit_test(test_odd_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
