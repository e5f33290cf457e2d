/*
 * test_file.c - the file store on real files (io_uring path and thread-pool
 * fallback), driven through a real reactor. Includes file.c to reach the
 * fallback switch.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "file/file.c"

struct io_wait {
	struct reactor *r;
	int pending;
	bool inside_submit;
	bool ran_inside_submit;
};

static void io_cb(struct store_io *io)
{
	struct io_wait *w = io->cb_arg;

	if (w->inside_submit) {
		w->ran_inside_submit = true;
	}
	if (--w->pending == 0) {
		reactor_stop(w->r);
	}
}

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
	assert_int_equal(w.pending, 0);
	return io.status;
}

static void fill(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		b[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 9));
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
	char dir[64];
	char path[128];
	char uri[256];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

	if (!f || reactor_create(&f->r) != 0) {
		return -1;
	}
	if (snprintf(f->dir, sizeof(f->dir), "%s/s3tgt-test-file-XXXXXX", base) >=
		(int)sizeof(f->dir) ||
	    !mkdtemp(f->dir)) {
		return -1;
	}
	if (snprintf(f->path, sizeof(f->path), "%s/disk.img", f->dir) >= (int)sizeof(f->path)) {
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->path);
	rmdir(f->dir);
	reactor_destroy(f->r);
	free(f);
	return 0;
}

static int open_uri(struct fixture *f, const char *query, struct store **st, char *err,
		    size_t errlen)
{
	snprintf(f->uri, sizeof(f->uri), "file:%s%s", f->path, query);
	return store_open_uri(f->uri, f->r, st, err, errlen);
}

static uint64_t file_size(const char *path)
{
	struct stat sb;

	assert_int_equal(stat(path, &sb), 0);
	return (uint64_t)sb.st_size;
}

static void force_thread_pool(struct store *st)
{
	struct file_store *fs = st->priv;

	assert_true(fs->have_ring);
	reactor_del_fd(fs->reactor, fs->ring_evfd);
	io_uring_queue_exit(&fs->ring);
	close(fs->ring_evfd);
	fs->ring_evfd = -1;
	fs->have_ring = false;
}

static void test_create_sparse(void **state)
{
	struct fixture *f = *state;
	struct store *st;
	char err[256];
	bool mapped;
	uint64_t run;
	struct stat sb;

	assert_int_equal(open_uri(f, "?size=16M", &st, err, sizeof(err)), 0);
	assert_int_equal(st->size, 16 << 20);
	assert_int_equal(st->caps, STORE_CAP_WRITE_CACHE | STORE_CAP_UNMAP | STORE_CAP_LBA_STATUS);
	assert_int_equal(file_size(f->path), 16 << 20);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_true(sb.st_blocks == 0);
	assert_int_equal(st->ops->lba_status(st, 0, &mapped, &run), 0);
	assert_false(mapped);
	assert_int_equal(run, 16 << 20);
	store_close(st);
}

static void rw_pattern(struct store *st)
{
	const size_t n = 300 * 1024;
	uint8_t *w = malloc(n);
	uint8_t *r = malloc(n);

	fill(w, n, 3);
	assert_int_equal(do_io(st, STORE_OP_WRITE, 4096 * 5, n, w, false), 0);
	assert_int_equal(do_io(st, STORE_OP_READ, 4096 * 5, n, r, false), 0);
	assert_memory_equal(w, r, n);
	assert_int_equal(do_io(st, STORE_OP_WRITE, st->size - 4096, 4096, w, true), 0);
	assert_int_equal(do_io(st, STORE_OP_READ, st->size - 4096, 4096, r, false), 0);
	assert_memory_equal(w, r, 4096);
	assert_int_equal(do_io(st, STORE_OP_FLUSH, 0, 0, NULL, false), 0);
	assert_int_equal(do_io(st, STORE_OP_READ, 0, 4096 * 5, r, false), 0);
	assert_true(all_zero(r, 4096 * 5));
	free(w);
	free(r);
}

static void test_write_read(void **state)
{
	struct fixture *f = *state;
	struct store *st;
	char err[256];

	assert_int_equal(open_uri(f, "?size=16M", &st, err, sizeof(err)), 0);
	assert_true(((struct file_store *)st->priv)->have_ring);
	rw_pattern(st);
	store_close(st);
}

static void test_write_read_thread_pool(void **state)
{
	struct fixture *f = *state;
	struct store *st;
	char err[256];

	assert_int_equal(open_uri(f, "?size=16M", &st, err, sizeof(err)), 0);
	force_thread_pool(st);
	rw_pattern(st);
	assert_int_equal(do_io(st, STORE_OP_UNMAP, 0, 1 << 20, NULL, false), 0);
	store_close(st);
}

/* QD32 random 4 KiB writes then reads against a shadow copy. */
static void qd32(struct store *st, struct reactor *r)
{
	enum { QD = 32, BS = 4096, ROUNDS = 20 };
	const uint64_t nblocks = st->size / BS;
	uint8_t *shadow = calloc(1, st->size);
	static uint8_t bufs[QD][BS];
	struct store_io ios[QD];
	uint64_t blk[QD];
	unsigned seed = 12345;

	for (int round = 0; round < ROUNDS; round++) {
		bool write = round % 2 == 0;
		struct io_wait w = {.r = r, .pending = QD};

		for (int i = 0; i < QD; i++) {
			/* Distinct blocks per round: concurrent writes to one block have no order.
			 */
			bool dup;
			do {
				seed = seed * 1103515245u + 12345u;
				blk[i] = (seed >> 8) % nblocks;
				dup = false;
				for (int j = 0; j < i; j++) {
					dup |= blk[j] == blk[i];
				}
			} while (dup);
			if (write) {
				fill(bufs[i], BS, seed);
				memcpy(shadow + blk[i] * BS, bufs[i], BS);
			}
			ios[i] = (struct store_io){.op = write ? STORE_OP_WRITE : STORE_OP_READ,
						   .offset = blk[i] * BS,
						   .len = BS,
						   .buf = bufs[i],
						   .cb = io_cb,
						   .cb_arg = &w};
			assert_int_equal(store_submit(st, &ios[i]), 0);
		}
		assert_int_equal(reactor_run(r), 0);
		for (int i = 0; i < QD; i++) {
			assert_int_equal(ios[i].status, 0);
			if (!write) {
				assert_memory_equal(bufs[i], shadow + blk[i] * BS, BS);
			}
		}
	}
	free(shadow);
}

static void test_qd32_random(void **state)
{
	struct fixture *f = *state;
	struct store *st;
	char err[256];

	assert_int_equal(open_uri(f, "?size=4M", &st, err, sizeof(err)), 0);
	qd32(st, f->r);
	store_close(st);
	unlink(f->path);
	assert_int_equal(open_uri(f, "?size=4M", &st, err, sizeof(err)), 0);
	force_thread_pool(st);
	qd32(st, f->r);
	store_close(st);
}

static void test_unmap_zeroes_lba_status(void **state)
{
	struct fixture *f = *state;
	struct store *st;
	char err[256];
	const size_t mb = 1 << 20;
	uint8_t *b = malloc(4 * mb);
	bool mapped;
	uint64_t run;

	assert_int_equal(open_uri(f, "?size=8M", &st, err, sizeof(err)), 0);
	fill(b, 4 * mb, 9);
	assert_int_equal(do_io(st, STORE_OP_WRITE, 2 * mb, 4 * mb, b, false), 0);

	assert_int_equal(st->ops->lba_status(st, 0, &mapped, &run), 0);
	assert_false(mapped);
	assert_int_equal(run, 2 * mb);
	assert_int_equal(st->ops->lba_status(st, 2 * mb, &mapped, &run), 0);
	assert_true(mapped);
	assert_int_equal(run, 4 * mb);
	assert_int_equal(st->ops->lba_status(st, 6 * mb, &mapped, &run), 0);
	assert_false(mapped);
	assert_int_equal(run, 2 * mb);

	assert_int_equal(do_io(st, STORE_OP_UNMAP, 3 * mb, mb, NULL, false), 0);
	assert_int_equal(do_io(st, STORE_OP_READ, 3 * mb, mb, b, false), 0);
	assert_true(all_zero(b, mb));
	assert_int_equal(st->ops->lba_status(st, 3 * mb, &mapped, &run), 0);
	assert_false(mapped);
	assert_int_equal(run, mb);
	assert_int_equal(st->ops->lba_status(st, 2 * mb + 512, &mapped, &run), 0);
	assert_true(mapped);
	assert_int_equal(run, mb - 512);

	/* Partial-page unmap: the block still reads zeros. */
	assert_int_equal(do_io(st, STORE_OP_UNMAP, 4 * mb + 512, 1024, NULL, false), 0);
	assert_int_equal(do_io(st, STORE_OP_READ, 4 * mb, 4096, b, false), 0);
	assert_true(all_zero(b + 512, 1024));
	assert_false(all_zero(b, 512));

	assert_int_equal(do_io(st, STORE_OP_WRITE_ZEROES, 5 * mb, mb, NULL, false), 0);
	assert_int_equal(do_io(st, STORE_OP_READ, 5 * mb, mb, b, false), 0);
	assert_true(all_zero(b, mb));
	assert_int_equal(st->ops->lba_status(st, 8 * mb, &mapped, &run), -EINVAL);
	store_close(st);
	free(b);
}

static void test_thick(void **state)
{
	struct fixture *f = *state;
	struct store *st;
	char err[256];
	uint8_t b[8192];

	assert_int_equal(open_uri(f, "?size=1M&thin=0&block_size=4096", &st, err, sizeof(err)), 0);
	assert_false(st->caps & STORE_CAP_UNMAP);
	assert_int_equal(st->block_size, 4096);
	fill(b, sizeof(b), 4);
	assert_int_equal(do_io(st, STORE_OP_WRITE, 0, sizeof(b), b, false), 0);
	assert_int_equal(do_io(st, STORE_OP_UNMAP, 0, 4096, NULL, false), -ENOTSUP);
	assert_int_equal(do_io(st, STORE_OP_WRITE_ZEROES, 0, 4096, NULL, false), 0);
	assert_int_equal(do_io(st, STORE_OP_READ, 0, sizeof(b), b, false), 0);
	assert_true(all_zero(b, 4096));
	assert_false(all_zero(b + 4096, 4096));
	store_close(st);
}

static void test_existing_size_rules(void **state)
{
	struct fixture *f = *state;
	struct store *st;
	char err[256];
	int fd;

	/* Missing file and no size. */
	assert_int_equal(open_uri(f, "", &st, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "does not exist and no size= was given"));

	fd = open(f->path, O_CREAT | O_RDWR, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 2 << 20), 0);
	close(fd);

	/* Size omitted: take the file's. */
	assert_int_equal(open_uri(f, "", &st, err, sizeof(err)), 0);
	assert_int_equal(st->size, 2 << 20);
	store_close(st);

	/* Larger: grow. */
	assert_int_equal(open_uri(f, "?size=3M", &st, err, sizeof(err)), 0);
	assert_int_equal(st->size, 3 << 20);
	assert_int_equal(file_size(f->path), 3 << 20);
	/* Growing further online. */
	assert_int_equal(st->ops->resize(st, 4 << 20), 0);
	assert_int_equal(st->size, 4 << 20);
	assert_int_equal(file_size(f->path), 4 << 20);
	assert_int_equal(st->ops->resize(st, 1 << 20), -EINVAL);
	store_close(st);

	/* Smaller: refuse, naming both sizes. */
	assert_int_equal(open_uri(f, "?size=1M", &st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "1048576"));
	assert_non_null(strstr(err, "4194304"));
	assert_int_equal(file_size(f->path), 4 << 20);

	/* A file whose size is not a whole number of blocks. */
	fd = open(f->path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1000), 0);
	close(fd);
	assert_int_equal(open_uri(f, "", &st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a positive multiple of block_size 512"));
	fd = open(f->path, O_RDWR | O_TRUNC);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(open_uri(f, "", &st, err, sizeof(err)), -EINVAL);
}

static void test_exclusive_lock(void **state)
{
	struct fixture *f = *state;
	struct store *a;
	struct store *b;
	char err[256];

	assert_int_equal(open_uri(f, "?size=1M", &a, err, sizeof(err)), 0);
	assert_int_equal(open_uri(f, "?size=1M", &b, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "in use"));
	store_close(a);
	assert_int_equal(open_uri(f, "?size=1M", &b, err, sizeof(err)), 0);
	store_close(b);
}

static void test_bad_paths(void **state)
{
	struct fixture *f = *state;
	struct store *st;
	char err[256];
	char uri[200];

	assert_int_equal(store_open_uri("file:?size=1M", f->r, &st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "path is required"));
	snprintf(uri, sizeof(uri), "file:%s?size=1M", f->dir);
	assert_int_equal(store_open_uri(uri, f->r, &st, err, sizeof(err)), -EISDIR);
	assert_non_null(strstr(err, "cannot open"));
	assert_int_equal(
	    store_open_uri("file:/nonexistent-dir/x.img?size=1M", f->r, &st, err, sizeof(err)),
	    -ENOENT);
	assert_non_null(strstr(err, "/nonexistent-dir/x.img"));
	assert_int_equal(open_uri(f, "?size=1M&block_size=4096&size=2M", &st, err, sizeof(err)),
			 -EINVAL);
}

/* More ios than SQ entries: the overflow waits on the backlog and still completes. */
static void test_backlog(void **state)
{
	struct fixture *f = *state;
	enum { N = FILE_RING_ENTRIES * 3 };
	struct store *st;
	char err[256];
	struct store_io *ios = calloc(N, sizeof(*ios));
	uint8_t *bufs = malloc((size_t)N * 512);
	uint8_t *pattern = malloc((size_t)N * 512);
	struct io_wait w = {.pending = N};

	assert_int_equal(open_uri(f, "?size=1M", &st, err, sizeof(err)), 0);
	w.r = f->r;
	fill(pattern, (size_t)N * 512, 5);
	assert_int_equal(do_io(st, STORE_OP_WRITE, 0, (uint64_t)N * 512, pattern, false), 0);
	for (int i = 0; i < N; i++) {
		ios[i] = (struct store_io){.op = STORE_OP_READ,
					   .offset = (uint64_t)i * 512,
					   .len = 512,
					   .buf = bufs + (size_t)i * 512,
					   .cb = io_cb,
					   .cb_arg = &w};
		assert_int_equal(store_submit(st, &ios[i]), 0);
	}
	assert_non_null(((struct file_store *)st->priv)->backlog_head);
	assert_int_equal(reactor_run(f->r), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(ios[i].status, 0);
	}
	assert_memory_equal(bufs, pattern, (size_t)N * 512);
	assert_null(((struct file_store *)st->priv)->backlog_head);
	store_close(st);
	free(ios);
	free(bufs);
	free(pattern);
}

/* A short transfer is resubmitted for the rest; zero bytes (EOF) is a medium error. */
static void test_short_transfer(void **state)
{
	struct fixture *f = *state;
	struct store *st;
	char err[256];
	uint8_t w8[8192];
	uint8_t r8[8192];
	struct io_wait w = {.pending = 1};
	struct store_io io = {0};
	struct file_store *fs;

	assert_int_equal(open_uri(f, "?size=1M", &st, err, sizeof(err)), 0);
	fs = st->priv;
	w.r = f->r;
	fill(w8, sizeof(w8), 6);
	assert_int_equal(do_io(st, STORE_OP_WRITE, 8192, sizeof(w8), w8, false), 0);

	/* Pretend the kernel returned only the first 4 KiB of an 8 KiB read. */
	memset(r8, 0, sizeof(r8));
	memcpy(r8, w8, 4096);
	io = (struct store_io){
	    .op = STORE_OP_READ, .offset = 8192, .len = 8192, .buf = r8, .cb = io_cb, .cb_arg = &w};
	io.store_priv[0] = fs;
	ring_complete(fs, &io, 4096);
	assert_int_equal(w.pending, 1);
	assert_int_equal(io.store_u64[0], 4096);
	assert_int_equal(reactor_run(f->r), 0);
	assert_int_equal(io.status, 0);
	assert_memory_equal(r8, w8, sizeof(w8));

	w.pending = 1;
	io.store_u64[0] = 0;
	ring_complete(fs, &io, 0);
	assert_int_equal(w.pending, 0);
	assert_int_equal(io.status, -EIO);
	store_close(st);
}

static void test_cloexec(void **state)
{
	struct fixture *f = *state;
	struct store *st;
	char err[256];
	struct file_store *fs;

	assert_int_equal(open_uri(f, "?size=1M", &st, err, sizeof(err)), 0);
	fs = st->priv;
	assert_true(fcntl(fs->fd, F_GETFD) & FD_CLOEXEC);
	store_close(st);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_create_sparse),
	    T(test_write_read),
	    T(test_write_read_thread_pool),
	    T(test_qd32_random),
	    T(test_unmap_zeroes_lba_status),
	    T(test_thick),
	    T(test_existing_size_rules),
	    T(test_exclusive_lock),
	    T(test_bad_paths),
	    T(test_cloexec),
	    T(test_backlog),
	    T(test_short_transfer),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
