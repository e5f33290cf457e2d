/*
 * test_dir.c - the `dir` store end to end on a real temporary directory,
 * through the store registry: round trips across chunks, object files on disk
 * (documented keys and header), zero chunks and UNMAP removing files (many at
 * once: a DELETE_MULTI), manifest checks, persistence across reopen, listing
 * that ignores temp files; and the objstore's DELETE_MULTI per-key results.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "s3tgt/core.h"
#include "s3tgt/store.h"

#include "chunk/lease.h"
#include "chunk/objstore.h"
#include "dir/dir.h"

struct env {
	struct reactor *r;
	char root[128];
	unsigned outstanding;
};

static void io_cb(struct store_io *io)
{
	struct env *e = io->cb_arg;

	if (--e->outstanding == 0) {
		reactor_stop(e->r);
	}
}

static int do_io(struct env *e, struct store *st, enum store_op op, uint64_t off, uint64_t len,
		 void *buf)
{
	struct store_io io = {0};

	io.op = op;
	io.offset = off;
	io.len = len;
	io.buf = buf;
	io.cb = io_cb;
	io.cb_arg = e;
	e->outstanding = 1;
	assert_int_equal(store_submit(st, &io), 0);
	assert_int_equal(reactor_run(e->r), 0);
	assert_int_equal(e->outstanding, 0);
	return io.status;
}

static int open_uri(struct env *e, const char *query, struct store **st, char *err, size_t len)
{
	char uri[256];

	snprintf(uri, sizeof(uri), "dir:%s%s", e->root, query);
	err[0] = '\0';
	return store_open_uri(uri, e->r, st, err, len);
}

static bool file_exists(struct env *e, const char *rel)
{
	char p[256];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/%s", e->root, rel);
	return stat(p, &sb) == 0;
}

static unsigned count_chunks(struct env *e)
{
	char p[256];
	unsigned n = 0;
	struct dirent *de;
	DIR *d;

	snprintf(p, sizeof(p), "%s/chunks", e->root);
	d = opendir(p);
	assert_non_null(d);
	while ((de = readdir(d))) {
		n += de->d_name[0] != '.';
	}
	closedir(d);
	return n;
}

static void rm_rf(const char *root)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	snprintf(e->root, sizeof(e->root), "/tmp/s3tgt-test-dir-XXXXXX");
	assert_non_null(mkdtemp(e->root));
	/* A not-yet-existing subdirectory: the store creates it. */
	assert_true(strlen(e->root) + 5 < sizeof(e->root));
	memcpy(e->root + strlen(e->root), "/vol", 5);
	assert_int_equal(reactor_create(&e->r), 0);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	char *slash = strrchr(e->root, '/');

	*slash = '\0';
	rm_rf(e->root);
	reactor_destroy(e->r);
	free(e);
	return 0;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		p[i] = (uint8_t)(seed + i * 13 + (i >> 11)) | 0x80;
	}
}

static void test_roundtrip_and_files(void **state)
{
	enum { CZ = 64 << 10, SIZE = 4 << 20 };
	struct env *e = *state;
	struct store *st = NULL;
	char err[256];
	uint8_t *buf = malloc(SIZE), *back = malloc(SIZE);
	uint8_t hdr[16];
	bool mapped;
	uint64_t run;
	int fd;

	assert_int_equal(
	    open_uri(e, "?size=4M&chunk_size=64K&max_inflight=4", &st, err, sizeof(err)), 0);
	assert_int_equal(st->size, SIZE);
	assert_int_equal(st->opt_io_bytes, CZ);
	assert_true(file_exists(e, "manifest"));
	assert_int_equal(count_chunks(e), 0);
	/* A hole reads as zeros. */
	memset(back, 0xaa, CZ);
	assert_int_equal(do_io(e, st, STORE_OP_READ, 0, CZ, back), 0);
	assert_true(back[0] == 0 && memcmp(back, back + 1, CZ - 1) == 0);

	/* Multi-chunk unaligned write: chunks 1..4 exist. */
	fill(buf, 3 * CZ, 1);
	assert_int_equal(do_io(e, st, STORE_OP_WRITE, CZ + 4096, 3 * CZ, buf), 0);
	assert_int_equal(count_chunks(e), 4);
	assert_true(file_exists(e, "chunks/0000000000000001"));
	assert_true(file_exists(e, "chunks/0000000000000004"));
	assert_int_equal(do_io(e, st, STORE_OP_READ, CZ + 4096, 3 * CZ, back), 0);
	assert_memory_equal(buf, back, 3 * CZ);
	assert_int_equal(do_io(e, st, STORE_OP_READ, CZ + 4096 + 512, 1024, back), 0);
	assert_memory_equal(buf + 512, back, 1024);
	/* Object file: magic, version, metadata. */
	snprintf((char *)back, 256, "%s/chunks/0000000000000002", e->root);
	fd = open((char *)back, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, hdr, sizeof(hdr)), sizeof(hdr));
	close(fd);
	assert_memory_equal(hdr, DIR_OBJ_MAGIC, 8);
	assert_int_equal(get_be32(hdr + 8), DIR_OBJ_VERSION);
	assert_int_equal(get_be32(hdr + 12), strlen("v=1 seg=65536 crc32c=") + 8);

	/* UNMAP chunk 2 entirely and part of 3: file 2 disappears. */
	assert_int_equal(do_io(e, st, STORE_OP_UNMAP, 2 * CZ, CZ + 8192, NULL), 0);
	assert_false(file_exists(e, "chunks/0000000000000002"));
	assert_true(file_exists(e, "chunks/0000000000000003"));
	assert_int_equal(st->ops->lba_status(st, 2 * CZ, &mapped, &run), 0);
	assert_false(mapped);
	assert_int_equal(run, CZ);
	/* Zeros written over all of chunk 4's data: deleted. */
	memset(buf, 0, CZ);
	assert_int_equal(do_io(e, st, STORE_OP_WRITE, 4 * CZ, CZ, buf), 0);
	assert_false(file_exists(e, "chunks/0000000000000004"));
	store_close(st);

	/* Reopen (size omitted): data intact, map rebuilt from the listing. */
	fill(buf, 3 * CZ, 1);
	memset(buf + CZ - 4096, 0, CZ + 8192);
	memset(buf + 3 * CZ - 4096, 0, 4096);
	/* A stale temp file from a crash must be ignored. */
	snprintf((char *)back, 256, "%s/chunks/.0000000000000009.tmp.1.1", e->root);
	fd = open((char *)back, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(open_uri(e, "", &st, err, sizeof(err)), 0);
	assert_int_equal(st->size, SIZE);
	assert_int_equal(st->opt_io_bytes, CZ);
	assert_int_equal(do_io(e, st, STORE_OP_READ, CZ + 4096, 3 * CZ, back), 0);
	assert_memory_equal(buf, back, 3 * CZ);
	assert_int_equal(st->ops->lba_status(st, 9 * CZ, &mapped, &run), 0);
	assert_false(mapped);
	assert_int_equal(st->ops->lba_status(st, CZ, &mapped, &run), 0);
	assert_true(mapped);
	assert_int_equal(run, CZ);
	store_close(st);
	free(buf);
	free(back);
}

static void test_manifest_checks(void **state)
{
	struct env *e = *state;
	struct store *st = NULL;
	char err[256];

	assert_int_equal(open_uri(e, "", &st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "size"));
	assert_int_equal(open_uri(e, "?size=1M&chunk_size=128K", &st, err, sizeof(err)), 0);
	store_close(st);
	assert_int_equal(open_uri(e, "?chunk_size=64K", &st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "65536"));
	assert_non_null(strstr(err, "131072"));
	assert_int_equal(open_uri(e, "?block_size=4096", &st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "4096"));
	assert_non_null(strstr(err, "512"));
	assert_int_equal(open_uri(e, "?size=512K", &st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "smaller"));
	assert_int_equal(open_uri(e, "?bogus=1", &st, err, sizeof(err)), -EINVAL);
	assert_int_equal(open_uri(e, "?lease_renew_ms=50", &st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "lease_renew_ms '50'"));
	assert_int_equal(open_uri(e, "?lease_renew_ms=1s", &st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "lease_renew_ms"));
	assert_int_equal(open_uri(e, "?size=2M&lease_renew_ms=100", &st, err, sizeof(err)), 0);
	assert_int_equal(st->size, 2 << 20);
	assert_int_equal(st->ops->resize(st, 3 << 20), 0);
	store_close(st);
	assert_int_equal(open_uri(e, "", &st, err, sizeof(err)), 0);
	assert_int_equal(st->size, 3 << 20);
	store_close(st);
}

static void test_concurrent(void **state)
{
	enum { CZ = 64 << 10, SIZE = 16 * CZ, N = 32 };
	struct env *e = *state;
	struct store *st = NULL;
	struct store_io ios[N];
	uint8_t *bufs[N], *model = calloc(1, SIZE), *back = malloc(SIZE);
	char err[256];

	assert_int_equal(
	    open_uri(e, "?size=1M&chunk_size=64K&max_inflight=8", &st, err, sizeof(err)), 0);
	srand(7);
	e->outstanding = N;
	for (int i = 0; i < N; i++) {
		uint64_t off = (uint64_t)(rand() % (SIZE / 512 - 300)) * 512;
		uint64_t len = (uint64_t)(1 + rand() % 300) * 512;

		bufs[i] = malloc(len);
		fill(bufs[i], len, (unsigned)i * 31);
		memcpy(model + off, bufs[i], len);
		memset(&ios[i], 0, sizeof(ios[i]));
		ios[i].op = STORE_OP_WRITE;
		ios[i].offset = off;
		ios[i].len = len;
		ios[i].buf = bufs[i];
		ios[i].cb = io_cb;
		ios[i].cb_arg = e;
		assert_int_equal(store_submit(st, &ios[i]), 0);
	}
	assert_int_equal(reactor_run(e->r), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(ios[i].status, 0);
		free(bufs[i]);
	}
	assert_int_equal(do_io(e, st, STORE_OP_READ, 0, SIZE, back), 0);
	assert_memory_equal(back, model, SIZE);
	assert_int_equal(do_io(e, st, STORE_OP_FLUSH, 0, 0, NULL), 0);
	store_close(st);
	free(model);
	free(back);
}

/* UNMAP of 62 whole chunks between two partial ones: files gone, zeros back, across reopen. */
static void test_unmap_many(void **state)
{
	enum { CZ = 64 << 10, NCH = 64, SIZE = NCH * CZ };
	struct env *e = *state;
	struct store *st = NULL;
	uint8_t *buf = malloc(SIZE);
	char err[256], key[32];
	bool mapped;
	uint64_t run;

	assert_int_equal(
	    open_uri(e, "?size=4M&chunk_size=64K&max_inflight=4", &st, err, sizeof(err)), 0);
	fill(buf, SIZE, 3);
	assert_int_equal(do_io(e, st, STORE_OP_WRITE, 0, SIZE, buf), 0);
	assert_int_equal(count_chunks(e), NCH);
	assert_int_equal(do_io(e, st, STORE_OP_UNMAP, CZ - 4096, SIZE - 2 * CZ + 8192, NULL), 0);
	assert_int_equal(count_chunks(e), 2);
	assert_true(file_exists(e, "chunks/0000000000000000"));
	assert_true(file_exists(e, "chunks/000000000000003f"));
	assert_int_equal(st->ops->lba_status(st, CZ, &mapped, &run), 0);
	assert_false(mapped);
	assert_int_equal(run, (uint64_t)(NCH - 2) * CZ);
	store_close(st);
	assert_int_equal(open_uri(e, "", &st, err, sizeof(err)), 0);
	memset(buf, 0xee, SIZE);
	assert_int_equal(do_io(e, st, STORE_OP_READ, 0, SIZE, buf), 0);
	for (size_t i = CZ - 4096; i < SIZE - CZ + 4096; i++) {
		assert_int_equal(buf[i], 0);
	}
	assert_int_not_equal(buf[CZ - 4097], 0);
	assert_int_not_equal(buf[SIZE - CZ + 4096], 0);
	for (unsigned c = 1; c < NCH - 1; c++) {
		snprintf(key, sizeof(key), "chunks/%016x", c);
		assert_false(file_exists(e, key));
	}
	store_close(st);
	free(buf);
}

static void req_cb(struct obj_req *req)
{
	struct env *e = req->cb_arg;

	if (--e->outstanding == 0) {
		reactor_stop(e->r);
	}
}

/* The dir objstore's DELETE_MULTI: each key gets what a lone DELETE would. */
static void test_objstore_delete_multi(void **state)
{
	struct env *e = *state;
	struct objstore *os = NULL;
	const char *keys[] = {"chunks/a",   "chunks/missing", "../escape",
			      "chunks/sub", "chunks/b",	      "top"};
	const char *present[] = {"chunks/a", "chunks/b", "top"};
	int status[6];
	struct obj_req put = {.op = OBJ_PUT, .buf = "x", .len = 1};
	struct obj_req q = {
	    .op = OBJ_DELETE_MULTI, .keys = keys, .key_status = status, .cb = req_cb, .cb_arg = e};
	char err[256], sub[300];

	assert_int_equal(dir_objstore_create(e->root, e->r, 2, &os, err, sizeof(err)), 0);
	for (size_t i = 0; i < sizeof(present) / sizeof(present[0]); i++) {
		snprintf(put.key, sizeof(put.key), "%s", present[i]);
		assert_int_equal(os->ops->put_sync(os, &put), 0);
	}
	snprintf(sub, sizeof(sub), "%s/chunks/sub", e->root);
	assert_int_equal(mkdir(sub, 0755), 0);
	q.nkeys = 0;
	assert_int_equal(os->ops->submit(os, &q), -EINVAL);
	q.nkeys = OBJ_DELETE_MULTI_MAX + 1;
	assert_int_equal(os->ops->submit(os, &q), -EINVAL);
	q.nkeys = 6;
	e->outstanding = 1;
	assert_int_equal(os->ops->submit(os, &q), 0);
	assert_int_equal(reactor_run(e->r), 0);
	assert_int_equal(e->outstanding, 0);
	assert_int_equal(q.status, 0);
	assert_int_equal(status[0], 0);
	assert_int_equal(status[1], 0);	      /* missing: success */
	assert_int_equal(status[2], -EINVAL); /* outside the root: refused */
	assert_int_equal(status[3], -EISDIR);
	assert_int_equal(status[4], 0);
	assert_int_equal(status[5], 0);
	assert_false(file_exists(e, "chunks/a"));
	assert_false(file_exists(e, "chunks/b"));
	assert_false(file_exists(e, "top"));
	assert_true(file_exists(e, "chunks/sub"));
	os->ops->destroy(os);
}

struct quiesce_ctx {
	unsigned done;
	unsigned failed;
};

static void quiesce_cb(struct obj_req *req)
{
	struct quiesce_ctx *c = req->cb_arg;

	c->done++;
	c->failed += req->status != 0;
}

/*
 * quiesce and destroy run the callback of every request outstanding before
 * they return, without the reactor running (as at daemon shutdown, where the
 * lease's last renewal must complete before its release is written).
 */
static void test_objstore_quiesce(void **state)
{
	enum { N = 16 };
	struct env *e = *state;
	struct objstore *os = NULL;
	struct obj_req q[N];
	struct quiesce_ctx c = {0};
	char err[256], last[32];

	assert_int_equal(dir_objstore_create(e->root, e->r, 4, &os, err, sizeof(err)), 0);
	for (int pass = 0; pass < 2; pass++) {
		c.done = 0;
		for (int i = 0; i < N; i++) {
			memset(&q[i], 0, sizeof(q[i]));
			q[i].op = OBJ_PUT;
			snprintf(q[i].key, sizeof(q[i].key), "chunks/q%d-%d", pass, i);
			q[i].buf = "payload";
			q[i].len = 7;
			q[i].cb = quiesce_cb;
			q[i].cb_arg = &c;
			assert_int_equal(os->ops->submit(os, &q[i]), 0);
		}
		if (pass == 0) {
			os->ops->quiesce(os);
		} else {
			os->ops->destroy(os);
		}
		assert_int_equal(c.done, N);
		assert_int_equal(c.failed, 0);
		snprintf(last, sizeof(last), "chunks/q%d-%d", pass, N - 1);
		assert_true(file_exists(e, last));
	}
}

static void read_lease(struct env *e, char *out, size_t len)
{
	struct objstore *os = NULL;
	struct obj_req g = {.op = OBJ_GET, .buf = out, .len = len - 1};
	char err[256];

	assert_int_equal(dir_objstore_create(e->root, e->r, 1, &os, err, sizeof(err)), 0);
	snprintf(g.key, sizeof(g.key), "%s", CHUNK_LEASE_KEY);
	assert_int_equal(os->ops->get_sync(os, &g), 0);
	out[g.got] = '\0';
	os->ops->destroy(os);
}

/*
 * The lease is rewritten with compare-and-swap: when another daemon broke it
 * (break_lease=1 while its holder still ran), the old holder's next renewal
 * finds out instead of overwriting it, stops writing, and does not "release"
 * the new holder's lease at close.
 */
static int take(struct objstore *os, struct reactor *r, const char *holder, bool break_lease,
		struct chunk_lease **out, char *err, size_t errlen)
{
	struct chunk_lease_opts o = {
	    .holder = holder, .break_lease = break_lease, .renew_ms = CHUNK_LEASE_RENEW_MS};

	return chunk_lease_take(os, r, &o, holder, out, err, errlen);
}

static void test_lease_cas(void **state)
{
	struct env *e = *state;
	struct objstore *osa = NULL, *osb = NULL;
	struct chunk_lease *a = NULL, *b = NULL, *c = NULL;
	char err[256], body[256];

	assert_int_equal(dir_objstore_create(e->root, e->r, 2, &osa, err, sizeof(err)), 0);
	assert_int_equal(dir_objstore_create(e->root, e->r, 2, &osb, err, sizeof(err)), 0);
	assert_int_equal(take(osa, e->r, "daemon-a", false, &a, err, sizeof(err)), 0);
	/* A renewal of the holder alone succeeds, again and again. */
	for (int i = 0; i < 3; i++) {
		chunk_lease_renew(a);
		osa->ops->quiesce(osa);
		assert_false(chunk_lease_lost(a));
	}
	assert_int_equal(take(osb, e->r, "daemon-b", false, &b, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "daemon-a"));
	assert_int_equal(take(osb, e->r, "daemon-b", true, &b, err, sizeof(err)), 0);
	chunk_lease_renew(a);
	osa->ops->quiesce(osa);
	assert_true(chunk_lease_lost(a));
	read_lease(e, body, sizeof(body));
	assert_non_null(strstr(body, " held daemon-b "));
	chunk_lease_release(a); /* lost: leaves b's lease alone */
	read_lease(e, body, sizeof(body));
	assert_non_null(strstr(body, " held daemon-b "));
	chunk_lease_renew(b);
	osb->ops->quiesce(osb);
	assert_false(chunk_lease_lost(b));
	chunk_lease_release(b);
	read_lease(e, body, sizeof(body));
	assert_non_null(strstr(body, " released daemon-b "));
	/* Released: the next holder takes it without break_lease. */
	assert_int_equal(take(osa, e->r, "daemon-c", false, &c, err, sizeof(err)), 0);
	chunk_lease_release(c);
	osa->ops->destroy(osa);
	osb->ops->destroy(osb);
}

/* daemon-a's store of the lease tests: 1M in 64K chunks, renewing every 100 ms. */
static struct store *open_daemon_a(struct env *e)
{
	struct store *st = NULL;
	char err[256];

	assert_int_equal(
	    open_uri(e, "?size=1M&chunk_size=64K&lease_holder=daemon-a&lease_renew_ms=100", &st,
		     err, sizeof(err)),
	    0);
	return st;
}

/* daemon-b, on its own objstore, breaks the lease (break_lease=1). */
static struct chunk_lease *break_as_b(struct env *e, struct objstore **osb)
{
	struct chunk_lease *b = NULL;
	char err[256];

	assert_int_equal(dir_objstore_create(e->root, e->r, 2, osb, err, sizeof(err)), 0);
	assert_int_equal(take(*osb, e->r, "daemon-b", true, &b, err, sizeof(err)), 0);
	return b;
}

/* After daemon-a closed: the lease is still daemon-b's, which then releases it. */
static void b_still_holds(struct env *e, struct objstore *osb, struct chunk_lease *b)
{
	char body[256];

	read_lease(e, body, sizeof(body));
	assert_non_null(strstr(body, " held daemon-b "));
	chunk_lease_release(b);
	osb->ops->destroy(osb);
}

static void stop_reactor(void *arg)
{
	reactor_stop(arg);
}

/*
 * The whole fence, from the store's own renewal timer (lease_renew_ms) to
 * store_submit(): once another daemon broke the lease, the store refuses
 * every change with -EROFS (WRITE PROTECTED) and still serves reads; its
 * close leaves the new holder's lease alone.
 */
static void test_lease_fence(void **state)
{
	struct env *e = *state;
	struct store *st = open_daemon_a(e);
	struct objstore *osb = NULL;
	struct chunk_lease *b;
	struct store_io io = {0};
	static const enum store_op changes[] = {STORE_OP_WRITE, STORE_OP_UNMAP,
						STORE_OP_WRITE_ZEROES};
	static uint8_t wbuf[64 << 10], rbuf[64 << 10];

	fill(wbuf, sizeof(wbuf), 7);
	assert_int_equal(do_io(e, st, STORE_OP_WRITE, 0, sizeof(wbuf), wbuf), 0);
	b = break_as_b(e, &osb);
	/* Several renewal periods: the first one after the takeover finds it. */
	assert_non_null(reactor_timer_add(e->r, 500, false, stop_reactor, e->r));
	assert_int_equal(reactor_run(e->r), 0);
	io.offset = 0;
	io.len = sizeof(wbuf);
	io.buf = wbuf;
	io.cb = io_cb;
	io.cb_arg = e;
	for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
		io.op = changes[i];
		assert_int_equal(store_submit(st, &io), -EROFS);
	}
	assert_int_equal(do_io(e, st, STORE_OP_FLUSH, 0, 0, NULL), 0);
	assert_int_equal(do_io(e, st, STORE_OP_READ, 0, sizeof(rbuf), rbuf), 0);
	assert_memory_equal(rbuf, wbuf, sizeof(rbuf));
	/* The manifest is the new holder's too. */
	assert_int_equal(st->ops->resize(st, 2 << 20), -EROFS);
	assert_int_equal(st->size, 1 << 20);
	store_close(st);
	b_still_holds(e, osb, b);
}

/*
 * A daemon that was stopped (SIGSTOP, a frozen VM) longer than its renewal
 * period may have lost its lease meanwhile: its next write waits for a
 * renewal first. Not broken: the write goes. Broken: the write fails with
 * -EROFS and never reaches the new holder's chunk.
 */
static void test_lease_pause(void **state)
{
	struct env *e = *state;
	struct store *st = open_daemon_a(e);
	struct objstore *osb = NULL;
	struct chunk_lease *b;
	static uint8_t w[64 << 10], r[64 << 10];

	/* The reactor does not run: no renewal, as in a stopped process. */
	usleep(300 * 1000);
	fill(w, sizeof(w), 31);
	assert_int_equal(do_io(e, st, STORE_OP_WRITE, 0, sizeof(w), w), 0);
	usleep(300 * 1000);
	b = break_as_b(e, &osb);
	fill(w, sizeof(w), 32);
	assert_int_equal(do_io(e, st, STORE_OP_WRITE, 0, sizeof(w), w), -EROFS);
	assert_int_equal(do_io(e, st, STORE_OP_READ, 0, sizeof(r), r), 0);
	fill(w, sizeof(w), 31);
	assert_memory_equal(r, w, sizeof(r));
	store_close(st);
	b_still_holds(e, osb, b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_roundtrip_and_files, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_manifest_checks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unmap_many, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_objstore_delete_multi, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_objstore_quiesce, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lease_cas, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lease_fence, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lease_pause, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
