/*
 * test_chunk.c - the chunk logic on a fake objstore that keeps objects in
 * memory, completes requests later and in random order (applying each request's
 * effect only when it completes, as a real back end may), counts requests,
 * and injects faults. Checks per-chunk ordering (the result equals applying
 * the ios in submission order), RMW under concurrent overlapping writes,
 * zero-chunk deletion, batched whole-chunk deletes (DELETE_MULTI) with per-key
 * failures, multi-chunk splitting, the in-flight bound, checksum verification
 * and error mapping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <unistd.h>

#include "chunk/chunk.c"

#define FAKE_MAX_OBJS 1024
#define FAKE_MAX_PENDING 4096

struct fake_obj {
	char key[256];
	uint8_t *data;
	size_t len;
	char meta[OBJ_META_MAX];
	unsigned gen; /* the entity tag is "g<gen>" */
};

struct fake_os {
	struct objstore os;
	struct reactor *r;
	struct fake_obj objs[FAKE_MAX_OBJS];
	struct obj_req *pending[FAKE_MAX_PENDING];
	unsigned npending;
	unsigned peak;
	unsigned nreq[4]; /* by enum obj_op */
	int fail_op;	  /* inject: -1 none, else enum obj_op */
	int fail_status;
	unsigned fail_count;
	const char *fail_only; /* inject: only requests for this key fail (NULL: any) */
	char fail_key[32];     /* inject: this key of a DELETE_MULTI fails with fail_key_status */
	int fail_key_status;
	unsigned max_batch; /* most keys in one DELETE_MULTI */
	bool inorder;	    /* complete FIFO instead of random */
	bool violated;	    /* two mutating requests on one key in flight */
	unsigned gen;	    /* last entity tag generation handed out */
	/* inject: just before the next If-Match PUT of race_key, another writer puts race_body */
	const char *race_key;
	const char *race_body;
	const char *slow_key; /* inject: requests for this key answer after slow_ms */
	unsigned slow_ms;
	const char *refuse_key; /* inject: submitting a request for this key fails */
};

static struct fake_obj *fake_find(struct fake_os *f, const char *key)
{
	for (int i = 0; i < FAKE_MAX_OBJS; i++) {
		if (f->objs[i].data && strcmp(f->objs[i].key, key) == 0) {
			return &f->objs[i];
		}
	}
	return NULL;
}

static unsigned fake_count(struct fake_os *f)
{
	unsigned n = 0;

	for (int i = 0; i < FAKE_MAX_OBJS; i++) {
		n += f->objs[i].data && strncmp(f->objs[i].key, "chunks/", 7) == 0;
	}
	return n;
}

static void fake_apply(struct fake_os *f, struct obj_req *req);

/* As S3 compares If-Match: quoted or not. */
static bool fake_tag_matches(const struct fake_obj *o, const char *if_match)
{
	char tag[32];
	size_t n = strlen(if_match);

	snprintf(tag, sizeof(tag), "g%u", o->gen);
	if (n >= 2 && if_match[0] == '"' && if_match[n - 1] == '"') {
		return n - 2 == strlen(tag) && strncmp(if_match + 1, tag, n - 2) == 0;
	}
	return strcmp(if_match, tag) == 0;
}

static void fake_race(struct fake_os *f, const struct obj_req *req)
{
	struct obj_req other = {.op = OBJ_PUT};

	if (!f->race_key || req->op != OBJ_PUT || !req->if_match[0] ||
	    strcmp(req->key, f->race_key) != 0) {
		return;
	}
	f->race_key = NULL;
	snprintf(other.key, sizeof(other.key), "%s", req->key);
	other.buf = (void *)(uintptr_t)f->race_body;
	other.len = strlen(f->race_body);
	fake_apply(f, &other);
}

static void fake_apply(struct fake_os *f, struct obj_req *req)
{
	struct fake_obj *o;

	fake_race(f, req);
	o = fake_find(f, req->key);
	req->status = 0;
	switch (req->op) {
	case OBJ_GET: {
		uint64_t n;

		if (!o) {
			req->status = -ENOENT;
			return;
		}
		n = req->range_len ? req->range_len : o->len;
		if (req->range_off > o->len) {
			n = 0;
		} else if (n > o->len - req->range_off) {
			n = o->len - req->range_off;
		}
		if (n > req->len) {
			n = req->len;
		}
		memcpy(req->buf, o->data + req->range_off, n);
		req->got = n;
		memcpy(req->meta, o->meta, sizeof(req->meta));
		snprintf(req->etag, sizeof(req->etag), "g%u", o->gen);
		return;
	}
	case OBJ_PUT:
		if (o && req->if_none_match) {
			req->status = -EEXIST;
			return;
		}
		if (req->if_match[0] && (!o || !fake_tag_matches(o, req->if_match))) {
			req->status = -ESTALE;
			return;
		}
		if (!o) {
			for (int i = 0; i < FAKE_MAX_OBJS && !o; i++) {
				if (!f->objs[i].data) {
					o = &f->objs[i];
				}
			}
			assert_non_null(o);
			snprintf(o->key, sizeof(o->key), "%s", req->key);
		} else {
			free(o->data);
		}
		o->data = malloc(req->len ? req->len : 1);
		assert_non_null(o->data);
		memcpy(o->data, req->buf, req->len);
		o->len = req->len;
		memcpy(o->meta, req->meta, sizeof(o->meta));
		o->gen = ++f->gen;
		snprintf(req->etag, sizeof(req->etag), "g%u", o->gen);
		return;
	case OBJ_DELETE:
		if (o) {
			free(o->data);
			o->data = NULL;
		}
		return;
	case OBJ_DELETE_MULTI:
		for (unsigned i = 0; i < req->nkeys; i++) {
			if (strcmp(req->keys[i], f->fail_key) == 0) {
				req->key_status[i] = f->fail_key_status;
				continue;
			}
			o = fake_find(f, req->keys[i]);
			if (o) {
				free(o->data);
				o->data = NULL;
			}
			req->key_status[i] = 0;
		}
		return;
	}
}

static void fake_pump(void *arg)
{
	struct fake_os *f = arg;
	struct obj_req *req;
	unsigned i;

	if (f->npending == 0) {
		return;
	}
	i = f->inorder ? 0 : (unsigned)rand() % f->npending;
	req = f->pending[i];
	memmove(&f->pending[i], &f->pending[i + 1], (f->npending - i - 1) * sizeof(req));
	f->npending--;
	if (f->slow_key && strcmp(req->key, f->slow_key) == 0) {
		usleep(f->slow_ms * 1000); /* the reactor's clock moves on meanwhile */
	}
	if (f->fail_count && (int)req->op == f->fail_op &&
	    (!f->fail_only || strcmp(req->key, f->fail_only) == 0)) {
		f->fail_count--;
		req->status = f->fail_status;
	} else {
		fake_apply(f, req);
	}
	req->cb(req);
}

/* The keys a request names: its key, or a DELETE_MULTI's keys. */
static unsigned req_nkeys(const struct obj_req *req)
{
	return req->op == OBJ_DELETE_MULTI ? req->nkeys : 1;
}

static const char *req_key(const struct obj_req *req, unsigned i)
{
	return req->op == OBJ_DELETE_MULTI ? req->keys[i] : req->key;
}

static bool req_conflicts(const struct obj_req *a, const struct obj_req *b)
{
	if (a->op == OBJ_GET && b->op == OBJ_GET) {
		return false;
	}
	for (unsigned i = 0; i < req_nkeys(a); i++) {
		for (unsigned j = 0; j < req_nkeys(b); j++) {
			if (strcmp(req_key(a, i), req_key(b, j)) == 0) {
				return true;
			}
		}
	}
	return false;
}

static int fake_submit(struct objstore *os, struct obj_req *req)
{
	struct fake_os *f = os->priv;

	if (f->refuse_key && req->op != OBJ_DELETE_MULTI && strcmp(req->key, f->refuse_key) == 0) {
		return -ENOMEM;
	}
	assert_true(f->npending < FAKE_MAX_PENDING);
	if (req->op == OBJ_DELETE_MULTI) {
		/* chunk.c sends a lone DELETE as a plain one. */
		assert_true(req->nkeys >= 2 && req->nkeys <= OBJ_DELETE_MULTI_MAX);
		for (unsigned i = 0; i < req->nkeys; i++) {
			for (unsigned j = 0; j < i; j++) {
				assert_string_not_equal(req->keys[i], req->keys[j]);
			}
		}
		if (req->nkeys > f->max_batch) {
			f->max_batch = req->nkeys;
		}
	}
	for (unsigned i = 0; i < f->npending; i++) {
		if (req_conflicts(f->pending[i], req)) {
			f->violated = true;
		}
	}
	f->pending[f->npending++] = req;
	if (f->npending > f->peak) {
		f->peak = f->npending;
	}
	f->nreq[req->op]++;
	return reactor_post(f->r, fake_pump, f);
}

static int fake_list(struct objstore *os, const char *prefix, obj_list_fn fn, void *arg)
{
	struct fake_os *f = os->priv;

	for (int i = 0; i < FAKE_MAX_OBJS; i++) {
		if (f->objs[i].data && strncmp(f->objs[i].key, prefix, strlen(prefix)) == 0) {
			fn(arg, f->objs[i].key, f->objs[i].len);
		}
	}
	return 0;
}

static int fake_sync(struct objstore *os, struct obj_req *req)
{
	fake_apply(os->priv, req);
	return req->status;
}

static void fake_quiesce(struct objstore *os)
{
	struct fake_os *f = os->priv;

	while (f->npending) {
		fake_pump(f);
	}
}

static void fake_destroy(struct objstore *os)
{
	struct fake_os *f = os->priv;

	/* The fake outlives stores in tests (reopen); fake_free releases it. */
	assert_int_equal(f->npending, 0);
}

static const struct objstore_ops fake_ops = {
    .name = "fake",
    .submit = fake_submit,
    .list = fake_list,
    .get_sync = fake_sync,
    .put_sync = fake_sync,
    .quiesce = fake_quiesce,
    .destroy = fake_destroy,
};

static struct fake_os *fake_new(struct reactor *r)
{
	struct fake_os *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->os.ops = &fake_ops;
	f->os.priv = f;
	f->r = r;
	f->fail_op = -1;
	return f;
}

static void fake_free(struct fake_os *f)
{
	for (int i = 0; i < FAKE_MAX_OBJS; i++) {
		free(f->objs[i].data);
	}
	free(f);
}

/* ---- harness ---- */

struct env {
	struct reactor *r;
	struct fake_os *f;
	struct store st;
	unsigned outstanding;
};

static void io_cb(struct store_io *io)
{
	struct env *e = io->cb_arg;

	assert_true(e->outstanding > 0);
	if (--e->outstanding == 0) {
		reactor_stop(e->r);
	}
}

/* opts: "CHUNK_SIZE[,MAX_INFLIGHT[,LEASE_RENEW_MS]]" (empty fields: the default), or NULL. */
static int env_open(struct env *e, const char *opts, uint64_t size, char *err, size_t errlen)
{
	static const char *const keys[] = {"chunk_size", "max_inflight", "lease_renew_ms"};
	struct store_params p = {0};
	struct store_opt o[3];
	struct chunk_opts co;
	char v[3][32] = {"", "", ""};
	int ret;

	if (opts && sscanf(opts, "%31[^,],%31[^,],%31s", v[0], v[1], v[2]) < 1 &&
	    sscanf(opts, ",%31[^,],%31s", v[1], v[2]) < 1) {
		return -EINVAL;
	}
	p.size = size;
	p.block_size = 512;
	p.opts = o;
	for (unsigned i = 0; i < 3; i++) {
		if (v[i][0]) {
			o[p.nopts].key = (char *)keys[i];
			o[p.nopts].value = v[i];
			p.nopts++;
		}
	}
	memset(&e->st, 0, sizeof(e->st));
	e->st.reactor = e->r;
	e->st.uri = (char *)"test:fake";
	e->st.block_size = 512;
	ret = chunk_opts_parse(&p, &co, err, errlen);
	if (ret) {
		return ret;
	}
	return chunk_store_open(&e->st, &p, &co, &e->f->os, err, errlen);
}

static void env_setup(struct env *e)
{
	memset(e, 0, sizeof(*e));
	assert_int_equal(reactor_create(&e->r), 0);
	e->f = fake_new(e->r);
}

static void env_teardown(struct env *e)
{
	chunk_store_close(&e->st);
	fake_free(e->f);
	reactor_destroy(e->r);
}

static void submit(struct env *e, struct store_io *io, enum store_op op, uint64_t off, uint64_t len,
		   void *buf)
{
	memset(io, 0, sizeof(*io));
	io->op = op;
	io->offset = off;
	io->len = len;
	io->buf = buf;
	io->cb = io_cb;
	io->cb_arg = e;
	io->status = 12345;
	e->outstanding++;
	assert_int_equal(chunk_store_submit(&e->st, io), 0);
}

static void run(struct env *e)
{
	if (e->outstanding) {
		assert_int_equal(reactor_run(e->r), 0);
	}
	assert_int_equal(e->outstanding, 0);
}

static int do_io(struct env *e, enum store_op op, uint64_t off, uint64_t len, void *buf)
{
	struct store_io io;

	submit(e, &io, op, off, len, buf);
	run(e);
	return io.status;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9)) | 1;
	}
}

/* ---- tests ---- */

static void test_keys_and_meta(void **state)
{
	char k[32];
	uint64_t idx;
	uint8_t *d = malloc(1 << 20);
	char meta[OBJ_META_MAX];
	unsigned bad = 0;

	chunk_key(k, sizeof(k), 0xabc);
	assert_string_equal(k, "chunks/0000000000000abc");
	assert_int_equal(chunk_key_parse(k, &idx), 0);
	assert_int_equal(idx, 0xabc);
	assert_int_equal(chunk_key_parse("vol/chunks/00000000000000ff", &idx), 0);
	assert_int_equal(idx, 0xff);
	assert_int_equal(chunk_key_parse("chunks/.0000000000000abc.tmp.1", &idx), -EINVAL);
	assert_int_equal(chunk_key_parse("xchunks/0000000000000abc", &idx), -EINVAL);
	assert_int_equal(chunk_key_parse("manifest", &idx), -EINVAL);
	assert_int_equal(chunk_seg_size(64 << 10), 64 << 10);
	assert_int_equal(chunk_seg_size(4 << 20), 64 << 10);
	assert_int_equal(chunk_seg_size(64 << 20), 1 << 20);
	/* 64 segments of 8 hex digits must fit in the metadata limit. */
	assert_non_null(d);
	fill(d, 1 << 20, 3);
	assert_int_equal(chunk_meta_build(meta, sizeof(meta), d, 1 << 20), 0);
	assert_int_equal(strlen(meta), strlen("v=1 seg=65536 crc32c=") + 16 * 8);
	assert_int_equal(chunk_meta_verify(meta, d + 65536, 1 << 20, 65536, 131072, &bad), 0);
	d[65536 + 70000] ^= 1;
	assert_int_equal(chunk_meta_verify(meta, d + 65536, 1 << 20, 65536, 131072, &bad), -EILSEQ);
	assert_int_equal(bad, 2);
	assert_int_equal(chunk_meta_verify("junk", d, 1 << 20, 0, 65536, &bad), -EBADMSG);
	free(d);
}

static void test_manifest(void **state)
{
	struct env e;
	char err[256] = "";
	struct fake_obj *m;
	struct chunk_manifest man;

	env_setup(&e);
	assert_int_equal(env_open(&e, NULL, 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "size"));
	assert_int_equal(env_open(&e, "128K", 1 << 20, err, sizeof(err)), 0);
	assert_int_equal(e.st.size, 1 << 20);
	assert_int_equal(e.st.opt_io_bytes, 128 << 10);
	assert_int_equal(e.st.caps, STORE_CAP_UNMAP | STORE_CAP_LBA_STATUS);
	m = fake_find(e.f, "manifest");
	assert_non_null(m);
	assert_int_equal(chunk_manifest_decode((char *)m->data, m->len, &man, err, sizeof(err)), 0);
	assert_int_equal(man.chunk_size, 128 << 10);
	assert_int_equal(man.size, 1 << 20);
	assert_int_equal(strlen(man.volume_id), 36);
	chunk_store_close(&e.st);

	/* Mismatched chunk size names both values. */
	assert_int_equal(env_open(&e, "256K", 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "262144"));
	assert_non_null(strstr(err, "131072"));
	/* Smaller refused; omitted size takes the manifest's; larger grows. */
	assert_int_equal(env_open(&e, NULL, 512 << 10, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "smaller"));
	assert_int_equal(env_open(&e, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(e.st.size, 1 << 20);
	assert_int_equal(e.st.opt_io_bytes, 128 << 10);
	chunk_store_close(&e.st);
	assert_int_equal(env_open(&e, "128K", 2 << 20, err, sizeof(err)), 0);
	assert_int_equal(e.st.size, 2 << 20);
	assert_int_equal(chunk_store_resize(&e.st, 3 << 20), 0);
	assert_int_equal(e.st.size, 3 << 20);
	chunk_store_close(&e.st);
	m = fake_find(e.f, "manifest");
	assert_int_equal(chunk_manifest_decode((char *)m->data, m->len, &man, err, sizeof(err)), 0);
	assert_int_equal(man.size, 3 << 20);
	/* Bad options. */
	assert_int_equal(env_open(&e, "100K", 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "power of two"));
	assert_int_equal(env_open(&e, "128M", 0, err, sizeof(err)), -EINVAL);
	assert_int_equal(env_open(&e, "32K", 0, err, sizeof(err)), -EINVAL);
	e.st.priv = NULL;
	env_teardown(&e);
}

/* Random concurrent ios; the outcome must equal applying them in submission order. */
static void test_random_linearizable(void **state)
{
	enum { CZ = 64 << 10, NCH = 8, SIZE = CZ * NCH, NIO = 48, ROUNDS = 40 };
	struct env e;
	char err[256];
	uint8_t *model = calloc(1, SIZE);
	uint8_t *bufs[NIO], *expect[NIO];
	struct store_io ios[NIO];

	srand(1234);
	env_setup(&e);
	assert_int_equal(env_open(&e, "64K,6", SIZE, err, sizeof(err)), 0);
	for (int i = 0; i < NIO; i++) {
		bufs[i] = malloc(SIZE);
		expect[i] = malloc(SIZE);
	}
	for (int round = 0; round < ROUNDS; round++) {
		for (int i = 0; i < NIO; i++) {
			uint64_t blk = (uint64_t)rand() % (SIZE / 512);
			uint64_t nblk = 1 + (uint64_t)rand() % (rand() % 4 == 0 ? 600 : 150);
			int kind = rand() % 10;
			enum store_op op;

			if (blk + nblk > SIZE / 512) {
				nblk = SIZE / 512 - blk;
			}
			op = kind < 4	? STORE_OP_WRITE
			     : kind < 7 ? STORE_OP_READ
			     : kind < 9 ? STORE_OP_UNMAP
					: STORE_OP_WRITE_ZEROES;
			if (op == STORE_OP_WRITE) {
				if (rand() % 5 == 0) {
					memset(bufs[i], 0, nblk * 512);
				} else {
					fill(bufs[i], nblk * 512, (unsigned)(round * NIO + i));
				}
				memcpy(model + blk * 512, bufs[i], nblk * 512);
			} else if (op == STORE_OP_READ) {
				memcpy(expect[i], model + blk * 512, nblk * 512);
				memset(bufs[i], 0xee, nblk * 512);
			} else {
				memset(model + blk * 512, 0, nblk * 512);
			}
			submit(&e, &ios[i], op, blk * 512, nblk * 512, bufs[i]);
		}
		run(&e);
		for (int i = 0; i < NIO; i++) {
			assert_int_equal(ios[i].status, 0);
			if (ios[i].op == STORE_OP_READ) {
				assert_memory_equal(bufs[i], expect[i], ios[i].len);
			}
		}
		assert_false(e.f->violated);
		assert_true(e.f->peak <= 6);
	}
	/* Batched DELETEs took part, completing in random order with the rest. */
	assert_true(e.f->nreq[OBJ_DELETE_MULTI] > 0);
	/* Whole-device read back, and zero chunks have no object. */
	assert_int_equal(do_io(&e, STORE_OP_READ, 0, SIZE, bufs[0]), 0);
	assert_memory_equal(bufs[0], model, SIZE);
	for (unsigned c = 0; c < NCH; c++) {
		char key[32];
		bool zero = mem_is_zero(model + (size_t)c * CZ, CZ);

		chunk_key(key, sizeof(key), c);
		assert_int_equal(fake_find(e.f, key) == NULL, zero);
		assert_int_equal(map_test(e.st.priv, c), !zero);
	}
	/* Persistence: reopen lists the same chunks. */
	chunk_store_close(&e.st);
	assert_int_equal(env_open(&e, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(do_io(&e, STORE_OP_READ, 0, SIZE, bufs[0]), 0);
	assert_memory_equal(bufs[0], model, SIZE);
	for (int i = 0; i < NIO; i++) {
		free(bufs[i]);
		free(expect[i]);
	}
	free(model);
	env_teardown(&e);
}

static void test_zero_chunks_and_holes(void **state)
{
	enum { CZ = 64 << 10, SIZE = CZ * 16 };
	struct env e;
	char err[256];
	uint8_t *buf = calloc(1, SIZE);
	unsigned before;
	bool mapped;
	uint64_t run_len;

	env_setup(&e);
	assert_int_equal(env_open(&e, "64K", SIZE, err, sizeof(err)), 0);
	/* Reads of holes, UNMAP of holes and zero writes to holes cost no request. */
	assert_int_equal(do_io(&e, STORE_OP_READ, 0, SIZE, buf), 0);
	assert_int_equal(do_io(&e, STORE_OP_UNMAP, 0, SIZE, NULL), 0);
	assert_int_equal(do_io(&e, STORE_OP_WRITE, 4096, 8192, buf), 0);
	assert_int_equal(e.f->nreq[OBJ_GET] + e.f->nreq[OBJ_PUT] + e.f->nreq[OBJ_DELETE] +
			     e.f->nreq[OBJ_DELETE_MULTI],
			 0);

	/* Full-chunk write: exactly one PUT, no GET. */
	fill(buf, CZ, 1);
	assert_int_equal(do_io(&e, STORE_OP_WRITE, 2 * CZ, CZ, buf), 0);
	assert_int_equal(e.f->nreq[OBJ_PUT], 1);
	assert_int_equal(e.f->nreq[OBJ_GET], 0);
	assert_int_equal(fake_count(e.f), 1);
	assert_int_equal(chunk_store_lba_status(&e.st, 0, &mapped, &run_len), 0);
	assert_false(mapped);
	assert_int_equal(run_len, 2 * CZ);
	assert_int_equal(chunk_store_lba_status(&e.st, 2 * CZ + 512, &mapped, &run_len), 0);
	assert_true(mapped);
	assert_int_equal(run_len, CZ - 512);

	/* Zeroing half then the other half: the chunk becomes all zero and is DELETEd. */
	assert_int_equal(do_io(&e, STORE_OP_WRITE_ZEROES, 2 * CZ, CZ / 2, NULL), 0);
	assert_int_equal(fake_count(e.f), 1);
	memset(buf, 0, CZ);
	before = e.f->nreq[OBJ_PUT];
	assert_int_equal(do_io(&e, STORE_OP_WRITE, 2 * CZ + CZ / 2, CZ / 2, buf), 0);
	assert_int_equal(e.f->nreq[OBJ_PUT], before);
	assert_int_equal(e.f->nreq[OBJ_DELETE], 1);
	assert_int_equal(fake_count(e.f), 0);

	/* Full-chunk UNMAPs of mapped chunks: their DELETEs go in one DELETE_MULTI. */
	fill(buf, 3 * CZ, 2);
	assert_int_equal(do_io(&e, STORE_OP_WRITE, 5 * CZ, 3 * CZ, buf), 0);
	assert_int_equal(fake_count(e.f), 3);
	before = e.f->nreq[OBJ_GET];
	assert_int_equal(do_io(&e, STORE_OP_UNMAP, 5 * CZ, 2 * CZ + 4096, NULL), 0);
	assert_int_equal(e.f->nreq[OBJ_DELETE], 1);
	assert_int_equal(e.f->nreq[OBJ_DELETE_MULTI], 1);
	assert_int_equal(e.f->max_batch, 2);
	assert_int_equal(e.f->nreq[OBJ_GET], before + 1); /* RMW of the partial chunk */
	assert_int_equal(fake_count(e.f), 1);
	assert_int_equal(do_io(&e, STORE_OP_READ, 5 * CZ, 3 * CZ, buf), 0);
	assert_true(mem_is_zero(buf, 2 * CZ + 4096));
	assert_false(mem_is_zero(buf + 2 * CZ + 4096, CZ - 4096));
	/* A full-chunk write of zeros to a mapped chunk deletes it: alone, a plain DELETE. */
	memset(buf, 0, CZ);
	assert_int_equal(do_io(&e, STORE_OP_WRITE, 7 * CZ, CZ, buf), 0);
	assert_int_equal(fake_count(e.f), 0);
	assert_int_equal(e.f->nreq[OBJ_DELETE], 2);
	assert_int_equal(e.f->nreq[OBJ_DELETE_MULTI], 1);
	/* FLUSH completes. */
	assert_int_equal(do_io(&e, STORE_OP_FLUSH, 0, 0, NULL), 0);
	free(buf);
	env_teardown(&e);
}

static void test_inflight_bound(void **state)
{
	enum { CZ = 64 << 10, NCH = 64, SIZE = CZ * NCH };
	struct env e;
	char err[256];
	uint8_t *buf = malloc(SIZE), *back = malloc(SIZE);
	struct chunk_store *cs;

	env_setup(&e);
	assert_int_equal(env_open(&e, "64K,4", SIZE, err, sizeof(err)), 0);
	cs = e.st.priv;
	fill(buf, SIZE, 9);
	/* One io spanning 64 chunks, unaligned at both ends. */
	assert_int_equal(do_io(&e, STORE_OP_WRITE, 512, SIZE - 1024, buf), 0);
	assert_int_equal(e.f->nreq[OBJ_PUT], NCH);
	assert_true(e.f->peak <= 4);
	assert_int_equal(cs->running_peak, 4);
	assert_int_equal(do_io(&e, STORE_OP_READ, 512, SIZE - 1024, back), 0);
	assert_memory_equal(buf, back, SIZE - 1024);
	assert_true(e.f->peak <= 4);
	assert_int_equal(cs->nfree_bufs, 4);
	free(buf);
	free(back);
	env_teardown(&e);
}

static void test_checksum_and_errors(void **state)
{
	enum { CZ = 4 << 20, SIZE = CZ * 2 };
	struct env e;
	char err[256];
	uint8_t *buf = malloc(CZ);
	struct fake_obj *o;

	env_setup(&e);
	assert_int_equal(env_open(&e, NULL, SIZE, err, sizeof(err)), 0);
	assert_int_equal(e.st.opt_io_bytes, CZ);
	fill(buf, CZ, 5);
	assert_int_equal(do_io(&e, STORE_OP_WRITE, 0, CZ, buf), 0);
	o = fake_find(e.f, "chunks/0000000000000000");
	assert_non_null(o);
	assert_memory_equal(o->meta, "v=1 seg=65536 crc32c=", 21);
	/* Corrupt one byte in segment 3: reads touching it fail, others succeed. */
	o->data[3 * 65536 + 100] ^= 0x40;
	assert_int_equal(do_io(&e, STORE_OP_READ, 0, 65536, buf), 0);
	assert_int_equal(do_io(&e, STORE_OP_READ, 3 * 65536 + 4096, 512, buf), -EILSEQ);
	/* RMW of a corrupt chunk fails rather than spreading the damage. */
	assert_int_equal(do_io(&e, STORE_OP_WRITE, 512, 512, buf), -EILSEQ);
	o->data[3 * 65536 + 100] ^= 0x40;
	assert_int_equal(do_io(&e, STORE_OP_READ, 3 * 65536 + 4096, 512, buf), 0);

	/* Back-end errors become io statuses; the store keeps working. */
	e.f->fail_op = OBJ_PUT;
	e.f->fail_status = -ETIMEDOUT;
	e.f->fail_count = 1;
	fill(buf, CZ, 6);
	assert_int_equal(do_io(&e, STORE_OP_WRITE, CZ, CZ, buf), -ETIMEDOUT);
	e.f->fail_op = OBJ_GET;
	e.f->fail_status = -EACCES;
	e.f->fail_count = 1;
	assert_int_equal(do_io(&e, STORE_OP_READ, 0, 4096, buf), -EIO);
	e.f->fail_count = 0;
	assert_int_equal(do_io(&e, STORE_OP_WRITE, CZ, CZ, buf), 0);
	memset(buf, 0, 4096);
	assert_int_equal(do_io(&e, STORE_OP_READ, CZ + 8192, 4096, buf), 0);
	{
		uint8_t *ref = malloc(CZ);
		fill(ref, CZ, 6);
		assert_memory_equal(buf, ref + 8192, 4096);
		free(ref);
	}
	free(buf);
	env_teardown(&e);
}

/*
 * Writes wait for a renewal once the lease is no longer confirmed (here:
 * a reactor that did not run for 3 renewal periods). A renewal that fails
 * fails the writes that waited for it, with its error; the next write asks
 * for a new renewal, which goes through, and so does the write.
 */
static void test_lease_gate(void **state)
{
	enum { CZ = 64 << 10, SIZE = CZ * 4 };
	struct env e;
	char err[256];
	uint8_t *buf = malloc(CZ);
	unsigned puts;

	env_setup(&e);
	assert_int_equal(env_open(&e, "64K,4,100", SIZE, err, sizeof(err)), 0);
	fill(buf, CZ, 21);
	assert_int_equal(do_io(&e, STORE_OP_WRITE, 0, CZ, buf), 0);
	usleep(300 * 1000);
	puts = e.f->nreq[OBJ_PUT];
	e.f->inorder = true;
	e.f->fail_op = OBJ_PUT;
	e.f->fail_status = -ETIMEDOUT;
	e.f->fail_count = 1;
	e.f->fail_only = CHUNK_LEASE_KEY; /* the renewal's PUT */
	assert_int_equal(do_io(&e, STORE_OP_WRITE, CZ, CZ, buf), -ETIMEDOUT);
	assert_true(e.f->nreq[OBJ_PUT] > puts); /* the renewal */
	assert_null(fake_find(e.f, "chunks/0000000000000001"));
	assert_int_equal(do_io(&e, STORE_OP_WRITE, CZ, CZ, buf), 0);
	assert_non_null(fake_find(e.f, "chunks/0000000000000001"));
	free(buf);
	env_teardown(&e);
}

/*
 * break_lease=1 against a holder that is still alive and renews between the
 * breaker's read of the lease and its compare-and-swap: the breaker tries
 * again against the new tag (that holder is the one it was asked to break);
 * a third daemon's write in that window still wins over the breaker.
 */
static void test_lease_break_race(void **state)
{
	struct env e;
	struct chunk_lease *a = NULL, *b = NULL, *d = NULL;
	struct chunk_lease_opts oa = {.holder = "daemon-a", .renew_ms = CHUNK_LEASE_RENEW_MS};
	struct chunk_lease_opts ob = {
	    .holder = "daemon-b", .break_lease = true, .renew_ms = CHUNK_LEASE_RENEW_MS};
	char err[256];
	struct fake_obj *o;

	env_setup(&e);
	assert_int_equal(chunk_lease_take(&e.f->os, NULL, &oa, "a", &a, err, sizeof(err)), 0);
	e.f->race_key = CHUNK_LEASE_KEY;
	e.f->race_body = "s3tgt-lease 1 held daemon-a 2000000000\n";
	assert_int_equal(chunk_lease_take(&e.f->os, NULL, &ob, "b", &b, err, sizeof(err)), 0);
	assert_null(e.f->race_key); /* the race did happen */
	o = fake_find(e.f, CHUNK_LEASE_KEY);
	assert_non_null(o);
	assert_memory_equal(o->data, "s3tgt-lease 1 held daemon-b ", 28);
	e.f->race_key = CHUNK_LEASE_KEY;
	e.f->race_body = "s3tgt-lease 1 held daemon-c 2000000000\n";
	ob.holder = "daemon-d";
	assert_int_equal(chunk_lease_take(&e.f->os, NULL, &ob, "d", &d, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "daemon-c"));
	chunk_lease_release(a); /* lost to b long ago: a's release must fail its CAS */
	chunk_lease_release(b);
	fake_free(e.f);
	reactor_destroy(e.r);
}

static void stop_cb(void *arg)
{
	reactor_stop(arg);
}

#define LAPSED_CZ (64u << 10)

/*
 * A store of 4 chunks whose lease is renewed every 100 ms, left without a
 * running reactor for 200 ms: the lease is no longer confirmed. Returns a
 * chunk of pattern seed.
 */
static uint8_t *open_lapsed(struct env *e, unsigned seed)
{
	char err[256];
	uint8_t *buf = malloc(LAPSED_CZ);

	assert_non_null(buf);
	env_setup(e);
	assert_int_equal(env_open(e, "64K,4,100", 4 * LAPSED_CZ, err, sizeof(err)), 0);
	fill(buf, LAPSED_CZ, seed);
	usleep(200 * 1000);
	return buf;
}

/*
 * Renewals slower than the lease window (S3 slower than lease_renew_ms):
 * each one still proves the lease ours as of when it was sent, so the
 * writes that waited for it go, instead of asking for renewal after renewal.
 */
static void test_lease_slow_renewal(void **state)
{
	struct env e;
	struct store_io io;
	uint8_t *buf = open_lapsed(&e, 22);

	e.f->slow_key = CHUNK_LEASE_KEY;
	e.f->slow_ms = 250;
	submit(&e, &io, STORE_OP_WRITE, 0, LAPSED_CZ, buf);
	assert_non_null(reactor_timer_add(e.r, 3000, false, stop_cb, e.r));
	assert_int_equal(reactor_run(e.r), 0);
	assert_int_equal(io.status, 0);
	assert_non_null(fake_find(e.f, "chunks/0000000000000000"));
	e.f->slow_key = NULL;
	free(buf);
	env_teardown(&e);
}

/*
 * A write waiting for the lease when the store is quiesced (the cache's
 * close) ends there with an error, even with no renewal in flight that
 * could end it (here: the renewal could not be submitted), instead of
 * staying queued past the close.
 */
static void test_lease_gate_quiesce(void **state)
{
	struct env e;
	struct store_io io;
	uint8_t *buf = open_lapsed(&e, 23);

	e.f->refuse_key = CHUNK_LEASE_KEY;
	submit(&e, &io, STORE_OP_WRITE, 0, LAPSED_CZ, buf);
	chunk_store_quiesce(&e.st);
	assert_int_equal(io.status, -EIO);
	assert_int_equal(e.outstanding, 0);
	assert_null(fake_find(e.f, "chunks/0000000000000000"));
	e.f->refuse_key = NULL;
	free(buf);
	env_teardown(&e);
}

/* Many overlapping partial writes to one chunk, completed out of order: no update lost. */
static void test_overlapping_rmw(void **state)
{
	enum { CZ = 64 << 10, N = 64 };
	struct env e;
	char err[256];
	uint8_t *bufs[N], *model = calloc(1, CZ), *back = malloc(CZ);
	struct store_io ios[N];

	srand(99);
	env_setup(&e);
	assert_int_equal(env_open(&e, "64K,16", CZ, err, sizeof(err)), 0);
	for (int i = 0; i < N; i++) {
		uint64_t off = (uint64_t)(rand() % 120) * 512;
		bufs[i] = malloc(8 * 512);
		fill(bufs[i], 8 * 512, (unsigned)i + 100);
		memcpy(model + off, bufs[i], 8 * 512);
		submit(&e, &ios[i], STORE_OP_WRITE, off, 8 * 512, bufs[i]);
	}
	run(&e);
	assert_false(e.f->violated);
	assert_int_equal(do_io(&e, STORE_OP_READ, 0, CZ, back), 0);
	assert_memory_equal(back, model, CZ);
	for (int i = 0; i < N; i++) {
		assert_int_equal(ios[i].status, 0);
		free(bufs[i]);
	}
	free(model);
	free(back);
	env_teardown(&e);
}

/* Writes queued behind a running write of the same chunk are merged into one RMW. */
static void test_coalesce(void **state)
{
	enum { CZ = 64 << 10, Q = CZ / 4 };
	struct env e;
	char err[256];
	uint8_t *buf = malloc(CZ), *back = malloc(CZ);
	struct store_io ios[4];

	env_setup(&e);
	assert_int_equal(env_open(&e, "64K", 2 * CZ, err, sizeof(err)), 0);
	fill(buf, CZ, 77);
	for (int i = 0; i < 4; i++) {
		submit(&e, &ios[i], STORE_OP_WRITE, (uint64_t)i * Q, Q, buf + i * Q);
	}
	run(&e);
	/* First write alone (hole: no GET), the other three merged: one GET + one PUT. */
	assert_int_equal(e.f->nreq[OBJ_PUT], 2);
	assert_int_equal(e.f->nreq[OBJ_GET], 1);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(ios[i].status, 0);
	}
	assert_int_equal(do_io(&e, STORE_OP_READ, 0, CZ, back), 0);
	assert_memory_equal(buf, back, CZ);
	/* A merged group covering the chunk needs no GET even though it is mapped. */
	fill(buf, CZ, 78);
	submit(&e, &ios[0], STORE_OP_WRITE, 512, 512, buf + 512);
	submit(&e, &ios[1], STORE_OP_WRITE, 0, CZ / 2, buf);
	submit(&e, &ios[2], STORE_OP_WRITE, CZ / 2, CZ / 2, buf + CZ / 2);
	run(&e);
	/* GETs so far: the merged RMW and the read-back above, plus the lone first write's. */
	assert_int_equal(e.f->nreq[OBJ_GET], 3);
	assert_int_equal(e.f->nreq[OBJ_PUT], 4);
	assert_int_equal(do_io(&e, STORE_OP_READ, 0, CZ, back), 0);
	assert_memory_equal(buf, back, CZ);
	/* Merged writes ending all zero delete the chunk. */
	memset(buf, 0, CZ);
	submit(&e, &ios[0], STORE_OP_WRITE, 0, 512, buf);
	submit(&e, &ios[1], STORE_OP_UNMAP, 0, CZ / 2, NULL);
	submit(&e, &ios[2], STORE_OP_WRITE_ZEROES, CZ / 2, CZ / 2, NULL);
	run(&e);
	assert_int_equal(fake_count(e.f), 0);
	assert_int_equal(e.f->nreq[OBJ_DELETE], 1);
	free(buf);
	free(back);
	env_teardown(&e);
}

static void check_chunks(struct env *e, unsigned from, unsigned to, bool present)
{
	for (unsigned c = from; c < to; c++) {
		char key[32];

		chunk_key(key, sizeof(key), c);
		assert_int_equal(fake_find(e->f, key) != NULL, present);
		assert_int_equal(map_test(e->st.priv, c), present);
	}
}

/* UNMAP of many whole chunks: one DELETE_MULTI per op-pool's worth, never one DELETE each. */
static void test_unmap_batched(void **state)
{
	enum { CZ = 64 << 10, NCH = 40, SIZE = CZ * NCH };
	struct env e;
	char err[256];
	uint8_t *buf = malloc(SIZE);
	bool mapped;
	uint64_t run_len;

	env_setup(&e);
	assert_int_equal(env_open(&e, "64K", SIZE, err, sizeof(err)), 0);
	fill(buf, SIZE, 11);
	assert_int_equal(do_io(&e, STORE_OP_WRITE, 0, SIZE, buf), 0);
	assert_int_equal(fake_count(e.f), NCH);

	/* Whole chunks 1..38 and the halves of chunks 0 and 39 around them. */
	assert_int_equal(do_io(&e, STORE_OP_UNMAP, CZ / 2, SIZE - CZ, NULL), 0);
	assert_int_equal(e.f->nreq[OBJ_DELETE_MULTI], 1);
	assert_int_equal(e.f->max_batch, NCH - 2);
	assert_int_equal(e.f->nreq[OBJ_DELETE], 0);
	assert_int_equal(e.f->nreq[OBJ_GET], 2); /* the two partial chunks' RMWs */
	check_chunks(&e, 1, NCH - 1, false);
	check_chunks(&e, 0, 1, true);
	check_chunks(&e, NCH - 1, NCH, true);
	assert_int_equal(chunk_store_lba_status(&e.st, CZ, &mapped, &run_len), 0);
	assert_false(mapped);
	assert_int_equal(run_len, (uint64_t)(NCH - 2) * CZ);
	memset(buf, 0xee, SIZE);
	assert_int_equal(do_io(&e, STORE_OP_READ, 0, SIZE, buf), 0);
	assert_true(mem_is_zero(buf + CZ / 2, SIZE - CZ));
	assert_false(mem_is_zero(buf, CZ / 2));
	assert_int_equal(((struct chunk_store *)e.st.priv)->running, 0);
	/* Reopen: the deleted chunks are not listed again. */
	chunk_store_close(&e.st);
	assert_int_equal(env_open(&e, NULL, 0, err, sizeof(err)), 0);
	check_chunks(&e, 1, NCH - 1, false);
	free(buf);
	env_teardown(&e);
}

/*
 * With a small op pool (max_inflight 2: 24 ops) a 40-chunk UNMAP is split in
 * two passes, each one batch, and a batch weighs one request in flight.
 * WRITE SAME with UNMAP (WRITE_ZEROES here) of whole chunks batches the same.
 */
static void test_batch_limits(void **state)
{
	enum { CZ = 64 << 10, NCH = 40, SIZE = CZ * NCH };
	struct env e;
	char err[256];
	uint8_t *buf = malloc(SIZE);
	struct chunk_store *cs;

	env_setup(&e);
	assert_int_equal(env_open(&e, "64K,2", SIZE, err, sizeof(err)), 0);
	cs = e.st.priv;
	assert_int_equal(cs->batch_max, 2 * 4 + 16);
	fill(buf, SIZE, 12);
	assert_int_equal(do_io(&e, STORE_OP_WRITE, 0, SIZE, buf), 0);
	assert_int_equal(do_io(&e, STORE_OP_UNMAP, 0, SIZE, NULL), 0);
	assert_int_equal(e.f->nreq[OBJ_DELETE_MULTI], 2);
	assert_int_equal(e.f->max_batch, 24);
	assert_int_equal(e.f->nreq[OBJ_DELETE], 0);
	assert_int_equal(fake_count(e.f), 0);
	assert_true(e.f->peak <= 2);
	assert_true(cs->running_peak <= 2);

	assert_int_equal(do_io(&e, STORE_OP_WRITE, 0, 8 * CZ, buf), 0);
	assert_int_equal(do_io(&e, STORE_OP_WRITE_ZEROES, 0, 8 * CZ, NULL), 0);
	assert_int_equal(e.f->nreq[OBJ_DELETE_MULTI], 3);
	assert_int_equal(fake_count(e.f), 0);
	assert_int_equal(cs->nfree_bufs, 2);
	assert_int_equal(cs->running, 0);
	free(buf);
	env_teardown(&e);
}

/*
 * Two UNMAPs become ready together (behind a write holding the only request
 * slot) and share one batch. A key that fails fails only the io owning that
 * chunk, whose object and map bit stay; a failed request fails every member.
 */
static void test_batch_errors(void **state)
{
	enum { CZ = 64 << 10, NCH = 20, SIZE = CZ * NCH };
	struct env e;
	char err[256];
	uint8_t *buf = malloc(SIZE), *ref = malloc(SIZE);
	struct store_io ios[3];

	env_setup(&e);
	assert_int_equal(env_open(&e, "64K,1", SIZE, err, sizeof(err)), 0);
	fill(ref, SIZE, 13);
	assert_int_equal(do_io(&e, STORE_OP_WRITE, 0, SIZE, ref), 0);

	chunk_key(e.f->fail_key, sizeof(e.f->fail_key), 3);
	e.f->fail_key_status = -EACCES;
	submit(&e, &ios[0], STORE_OP_WRITE, 19 * CZ, CZ, ref);
	submit(&e, &ios[1], STORE_OP_UNMAP, 0, 8 * CZ, NULL);
	submit(&e, &ios[2], STORE_OP_UNMAP, 8 * CZ, 8 * CZ, NULL);
	run(&e);
	assert_int_equal(e.f->nreq[OBJ_DELETE_MULTI], 1);
	assert_int_equal(e.f->max_batch, 16);
	assert_int_equal(ios[0].status, 0);
	assert_int_equal(ios[1].status, -EIO);
	assert_int_equal(ios[2].status, 0);
	check_chunks(&e, 0, 3, false);
	check_chunks(&e, 3, 4, true);
	check_chunks(&e, 4, 16, false);
	assert_int_equal(do_io(&e, STORE_OP_READ, 3 * CZ, CZ, buf), 0);
	assert_memory_equal(buf, ref + 3 * CZ, CZ);
	/* A transient per-key failure stays transient for the initiator. */
	chunk_key(e.f->fail_key, sizeof(e.f->fail_key), 17);
	e.f->fail_key_status = -EAGAIN;
	assert_int_equal(do_io(&e, STORE_OP_UNMAP, 16 * CZ, 4 * CZ, NULL), -EAGAIN);
	assert_int_equal(e.f->nreq[OBJ_DELETE_MULTI], 2);
	check_chunks(&e, 16, 17, false);
	check_chunks(&e, 17, 18, true);
	check_chunks(&e, 18, NCH, false);
	/* Retried, the two chunks left go in one more batch. */
	e.f->fail_key[0] = '\0';
	assert_int_equal(do_io(&e, STORE_OP_UNMAP, 0, SIZE, NULL), 0);
	assert_int_equal(e.f->nreq[OBJ_DELETE_MULTI], 3);
	assert_int_equal(e.f->max_batch, 16);
	check_chunks(&e, 0, NCH, false);

	/* The whole request failing fails both ios and deletes nothing. */
	assert_int_equal(do_io(&e, STORE_OP_WRITE, 0, 16 * CZ, ref), 0);
	e.f->fail_op = OBJ_DELETE_MULTI;
	e.f->fail_status = -ETIMEDOUT;
	e.f->fail_count = 1;
	submit(&e, &ios[0], STORE_OP_WRITE, 19 * CZ, CZ, ref);
	submit(&e, &ios[1], STORE_OP_UNMAP, 0, 8 * CZ, NULL);
	submit(&e, &ios[2], STORE_OP_WRITE_ZEROES, 8 * CZ, 8 * CZ, NULL);
	run(&e);
	assert_int_equal(e.f->nreq[OBJ_DELETE_MULTI], 4);
	assert_int_equal(ios[0].status, 0);
	assert_int_equal(ios[1].status, -ETIMEDOUT);
	assert_int_equal(ios[2].status, -ETIMEDOUT);
	check_chunks(&e, 0, 16, true);
	assert_int_equal(do_io(&e, STORE_OP_READ, 0, 16 * CZ, buf), 0);
	assert_memory_equal(buf, ref, 16 * CZ);
	assert_int_equal(((struct chunk_store *)e.st.priv)->running, 0);
	free(buf);
	free(ref);
	env_teardown(&e);
}

/*
 * A whole-chunk UNMAP with a write queued right behind it is not batched:
 * the write merges into it (one RMW, no DELETE). The other chunks still go in
 * batches and per-chunk order holds.
 */
static void test_batch_and_merge(void **state)
{
	enum { CZ = 64 << 10, NCH = 8, SIZE = CZ * NCH };
	struct env e;
	char err[256];
	uint8_t *buf = malloc(SIZE), *ref = calloc(1, SIZE);
	struct store_io ios[4];

	env_setup(&e);
	assert_int_equal(env_open(&e, "64K,1", SIZE, err, sizeof(err)), 0);
	fill(buf, SIZE, 14);
	assert_int_equal(do_io(&e, STORE_OP_WRITE, 0, SIZE, buf), 0);
	memcpy(ref + 6 * CZ, buf + 6 * CZ, 2 * CZ);
	fill(buf, 4096, 15);
	memcpy(ref + 2 * CZ + 512, buf, 4096);
	submit(&e, &ios[0], STORE_OP_WRITE, 7 * CZ, CZ, ref + 7 * CZ);
	submit(&e, &ios[1], STORE_OP_UNMAP, 0, 6 * CZ, NULL);
	submit(&e, &ios[2], STORE_OP_WRITE, 2 * CZ + 512, 4096, buf);
	submit(&e, &ios[3], STORE_OP_UNMAP, 5 * CZ, CZ, NULL);
	run(&e);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(ios[i].status, 0);
	}
	assert_false(e.f->violated);
	check_chunks(&e, 0, 2, false);
	check_chunks(&e, 2, 3, true);
	check_chunks(&e, 3, 6, false);
	check_chunks(&e, 6, NCH, true);
	/* Chunks 0-1 and 3-4 in two batches; chunk 5 merged with the UNMAP behind it. */
	assert_int_equal(e.f->nreq[OBJ_DELETE_MULTI], 2);
	assert_int_equal(e.f->nreq[OBJ_DELETE], 1);
	assert_int_equal(do_io(&e, STORE_OP_READ, 0, SIZE, buf), 0);
	assert_memory_equal(buf, ref, SIZE);
	free(buf);
	free(ref);
	env_teardown(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keys_and_meta),
	    cmocka_unit_test(test_manifest),
	    cmocka_unit_test(test_zero_chunks_and_holes),
	    cmocka_unit_test(test_inflight_bound),
	    cmocka_unit_test(test_checksum_and_errors),
	    cmocka_unit_test(test_lease_gate),
	    cmocka_unit_test(test_lease_break_race),
	    cmocka_unit_test(test_lease_slow_renewal),
	    cmocka_unit_test(test_lease_gate_quiesce),
	    cmocka_unit_test(test_overlapping_rmw),
	    cmocka_unit_test(test_coalesce),
	    cmocka_unit_test(test_unmap_batched),
	    cmocka_unit_test(test_batch_limits),
	    cmocka_unit_test(test_batch_errors),
	    cmocka_unit_test(test_batch_and_merge),
	    cmocka_unit_test(test_random_linearizable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
