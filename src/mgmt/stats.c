/*
 * stats.c - a store layer that counts I/O per operation (commands, bytes,
 * errors, latency histogram) for GET /metrics. It stacks like any store
 * (STYLE.md 2): the LU sees it, it forwards to the real store.
 *
 * Each forwarded io needs its own store_io (the lower store owns the
 * store_priv scratch of the one it gets), so the wrapper keeps a free list
 * of them: it grows to the queue depth once, then the I/O path allocates
 * nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mgmt_internal.h"
#include "s3tgt/core.h"

const double mgmt_lat_bounds[MGMT_LAT_BUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
};

struct stat_io {
	struct store_io io; /* what the lower store sees */
	struct store_io *orig;
	struct stat_store *ss;
	uint64_t start_ns;
	struct stat_io *next_free;
};

struct stat_store {
	struct store_ops ops; /* the lower store's name, so INQUIRY still reports it */
	struct store *lower;
	struct mgmt_lun_stats stats;
	struct stat_io *free_list;
};

const char *mgmt_op_name(unsigned op)
{
	static const char *const names[MGMT_STAT_OPS] = {
		[STORE_OP_READ] = "read",
		[STORE_OP_WRITE] = "write",
		[STORE_OP_FLUSH] = "flush",
		[STORE_OP_UNMAP] = "unmap",
		[STORE_OP_WRITE_ZEROES] = "write_zeroes",
	};
	return op < MGMT_STAT_OPS ? names[op] : "other";
}

static void account(struct mgmt_lun_stats *st, const struct store_io *io, uint64_t ns)
{
	struct mgmt_op_stats *o;
	double secs = (double)ns / 1e9;
	unsigned b = 0;

	if ((unsigned)io->op >= MGMT_STAT_OPS) {
		return;
	}
	o = &st->op[io->op];
	o->count++;
	if (io->status < 0) {
		o->errors++;
	} else if (io->op == STORE_OP_READ || io->op == STORE_OP_WRITE) {
		o->bytes += io->len;
	}
	o->lat_sum_ns += ns;
	while (b < MGMT_LAT_BUCKETS && secs > mgmt_lat_bounds[b]) {
		b++;
	}
	o->lat_bucket[b]++;
}

static void stat_done(struct store_io *lio)
{
	struct stat_io *si = lio->cb_arg;
	struct store_io *orig = si->orig;
	struct stat_store *ss = si->ss;

	orig->status = lio->status;
	account(&ss->stats, orig, reactor_now_ns() - si->start_ns);
	si->next_free = ss->free_list;
	ss->free_list = si;
	orig->cb(orig);
}

static int stat_submit(struct store *st, struct store_io *io)
{
	struct stat_store *ss = st->priv;
	struct stat_io *si = ss->free_list;
	int rc;

	if (si) {
		ss->free_list = si->next_free;
	} else {
		si = malloc(sizeof(*si));
		if (!si) {
			return -ENOMEM;
		}
	}
	memset(&si->io, 0, sizeof(si->io));
	si->io.op = io->op;
	si->io.offset = io->offset;
	si->io.len = io->len;
	si->io.buf = io->buf;
	si->io.fua = io->fua;
	si->io.cb = stat_done;
	si->io.cb_arg = si;
	si->orig = io;
	si->ss = ss;
	si->start_ns = reactor_now_ns();
	/* Completion comes from the lower store, later: the async rule holds. */
	rc = store_submit(ss->lower, &si->io);
	if (rc < 0) {
		si->next_free = ss->free_list;
		ss->free_list = si;
	}
	return rc;
}

static void stat_close(struct store *st)
{
	struct stat_store *ss = st->priv;

	store_close(ss->lower);
	while (ss->free_list) {
		struct stat_io *n = ss->free_list->next_free;
		free(ss->free_list);
		ss->free_list = n;
	}
	free(ss);
}

static int stat_lba_status(struct store *st, uint64_t offset, bool *mapped, uint64_t *run)
{
	struct stat_store *ss = st->priv;

	return ss->lower->ops->lba_status(ss->lower, offset, mapped, run);
}

static int stat_resize(struct store *st, uint64_t new_size)
{
	struct stat_store *ss = st->priv;
	int rc;

	rc = ss->lower->ops->resize(ss->lower, new_size);
	if (rc == 0) {
		st->size = ss->lower->size;
	}
	return rc;
}

static void stat_metrics(struct store *st, store_metric_fn fn, void *arg)
{
	struct stat_store *ss = st->priv;

	store_metrics(ss->lower, fn, arg);
}

static bool stat_fenced(struct store *st)
{
	struct stat_store *ss = st->priv;

	return store_fenced(ss->lower);
}

static int stat_open(struct store *st, const struct store_params *p, char *err, size_t errlen)
{
	return -ENOTSUP; /* only built by mgmt_stats_wrap() */
}

static const struct store_ops stat_ops = {
    .name = "stats",
    .open = stat_open,
    .submit = stat_submit,
    .close = stat_close,
    .lba_status = stat_lba_status,
    .resize = stat_resize,
    .metrics = stat_metrics,
    .fenced = stat_fenced,
};

int mgmt_stats_wrap(struct store *lower, struct store **out, struct mgmt_lun_stats **stats)
{
	struct store *st = calloc(1, sizeof(*st));
	struct stat_store *ss = calloc(1, sizeof(*ss));

	if (!st || !ss || !(st->uri = strdup(lower->uri ? lower->uri : ""))) {
		free(st);
		free(ss);
		store_close(lower);
		return -ENOMEM;
	}
	ss->lower = lower;
	ss->ops = stat_ops;
	ss->ops.name = lower->ops->name;
	ss->ops.options = lower->ops->options;
	if (!lower->ops->lba_status) {
		ss->ops.lba_status = NULL;
	}
	if (!lower->ops->resize) {
		ss->ops.resize = NULL;
	}
	st->ops = &ss->ops;
	st->priv = ss;
	st->reactor = lower->reactor;
	st->size = lower->size;
	st->block_size = lower->block_size;
	st->caps = lower->caps;
	st->thin = lower->thin;
	st->read_only = lower->read_only;
	st->opt_io_bytes = lower->opt_io_bytes;
	*out = st;
	*stats = &ss->stats;
	return 0;
}
