/*
 * store.h - the backing-store contract. Every store (ram, file, dir, s3, and
 * the write-back cache that wraps another store) is one `const struct
 * store_ops` plus a private pointer.
 *
 * Async rule: submit() returns 0 and io->cb runs exactly once, later, on the
 * store's reactor thread (never inside submit()); or submit() returns a
 * negative errno and the callback never runs.
 *
 * The SCSI layer decodes and checks everything first, so a store only sees
 * normalized requests in bytes, aligned to block_size and inside the device.
 */
#ifndef S3TGT_STORE_H
#define S3TGT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct reactor;
struct store;
struct store_io;

enum store_op {
	STORE_OP_READ,
	STORE_OP_WRITE,
	STORE_OP_FLUSH,	       /* make every completed write durable */
	STORE_OP_UNMAP,	       /* deallocate; the range then reads back as zeros */
	STORE_OP_WRITE_ZEROES, /* zeros, allocated (thick) or not (thin): store's choice */
};

/* Capability bits; the SCSI layer turns them into VPD pages and mode pages. */
#define STORE_CAP_UNMAP (1u << 0)	/* UNMAP supported; reads of unmapped ranges give zeros */
#define STORE_CAP_WRITE_CACHE (1u << 1) /* writes may sit in a volatile cache until FLUSH */
#define STORE_CAP_LBA_STATUS (1u << 2)	/* lba_status() is implemented */

typedef void (*store_cb_fn)(struct store_io *io);

/*
 * One sample a store reports for GET /metrics (Prometheus text format). The
 * caller adds the LUN's own labels (target, lun) in front of these.
 */
enum store_metric_type {
	STORE_METRIC_COUNTER,
	STORE_METRIC_GAUGE,
};

#define STORE_METRIC_LABELS_MAX 2

struct store_metric {
	const char *name; /* static: "s3tgt_s3_requests_total" */
	const char *help; /* static: one line, no newline */
	enum store_metric_type type;
	unsigned nlabels;
	const char *label_name[STORE_METRIC_LABELS_MAX];  /* static, [a-z_]+ */
	const char *label_value[STORE_METRIC_LABELS_MAX]; /* borrowed for the call only */
	uint64_t value;
};

/* Receives each sample; m is borrowed for the call only. */
typedef void (*store_metric_fn)(void *arg, const struct store_metric *m);

struct store_io {
	enum store_op op;
	uint64_t offset; /* bytes, multiple of block_size */
	uint64_t len;	 /* bytes, multiple of block_size; 0 for FLUSH */
	void *buf;	 /* borrowed: READ fills it, WRITE reads it; len bytes */
	bool fua;	 /* WRITE: durable before completion */
	store_cb_fn cb;
	void *cb_arg;
	/*
	 * Set before cb: 0, or -errno. -EIO is an unrecoverable medium error,
	 * -EILSEQ a checksum mismatch (also a medium error), -ENOSPC out of
	 * space, -ETIMEDOUT/-EAGAIN a transient back-end failure, -ENOTSUP an
	 * op the store cannot do.
	 */
	int status;
	/* Store-private scratch, free for the store to use while it owns the io. */
	void *store_priv[4];
	uint64_t store_u64[2];
};

/* One key=value option from a LUN URI's query string (already percent-decoded). */
struct store_opt {
	char *key;
	char *value;
};

/*
 * A parsed LUN URI: scheme:path?opt=v&opt=v. `size`, `block_size`, `thin`
 * and `read_only` are common to every store and removed from opts; the rest are the store's.
 */
struct store_params {
	char *scheme;
	char *path;	     /* everything between "scheme:" and '?', percent-decoded */
	uint64_t size;	     /* bytes; 0 = not given (a store may then take an existing size) */
	uint32_t block_size; /* 512 or 4096 */
	bool thin;
	bool read_only; /* the LU refuses writes: DATA PROTECT, WRITE PROTECTED */
	struct store_opt *opts;
	size_t nopts;
};

struct store_ops {
	const char *name;	    /* URI scheme: "ram", "file", "dir", "s3" */
	const char *const *options; /* store-specific option names, NULL-terminated */
	/*
	 * Open: fill st->size (bytes, multiple of block_size), st->caps and
	 * st->priv. On error return -errno and write a message naming the bad
	 * part into err. Runs on the reactor thread at configuration time and
	 * may block (it is not on the I/O path).
	 */
	int (*open)(struct store *st, const struct store_params *p, char *err, size_t errlen);
	int (*submit)(struct store *st, struct store_io *io);
	/* Close: every submitted io has completed. Frees priv. */
	void (*close)(struct store *st);
	/*
	 * Optional: complete every submitted io now, so a layer above can
	 * close when its lower ios would otherwise outlive it (the cache closing
	 * during an S3 outage). Reactor thread, blocks for a bounded time; work
	 * waiting for a retry fails with -ECANCELED. The callbacks run before it
	 * returns; the store stays usable.
	 */
	void (*quiesce)(struct store *st);
	/*
	 * Optional (STORE_CAP_LBA_STATUS): is the byte at offset mapped? *run is
	 * set to the length in bytes (>= block_size) of the run starting at offset
	 * with the same state. Synchronous and cheap. Returns 0 or -errno.
	 */
	int (*lba_status)(struct store *st, uint64_t offset, bool *mapped, uint64_t *run);
	/* Optional: grow to new_size bytes. Returns 0 or -errno. */
	int (*resize)(struct store *st, uint64_t new_size);
	/*
	 * Optional: a stable identity of the data behind this store (the chunk
	 * store's manifest volume id), so a layer above (the cache's cache_dir)
	 * can tell volumes apart. Borrowed string, valid until close. NULL op or
	 * NULL result: no identity; the layer above falls back to the URI.
	 */
	const char *(*volume_id)(struct store *st);
	/*
	 * Optional: true if nobody can have written the volume since this
	 * holder last had it (the chunk store took back its own lease: released
	 * at a clean close, or still held after a crash), so what a layer above
	 * kept across the restart still fits the volume: the cache's clean
	 * chunks are current, and its unstored writes may be uploaded. NULL op:
	 * the store cannot tell (no lease).
	 */
	bool (*resumed)(struct store *st);
	/*
	 * Optional: true once the store lost its claim on the volume (another
	 * daemon took its lease over). store_submit() then refuses every io but
	 * READ and FLUSH with -EROFS; a layer above reports its lower store's
	 * state, so it refuses writes instead of holding them. NULL op: false.
	 */
	bool (*fenced)(struct store *st);
	/*
	 * Optional: report this layer's counters through fn, one call per
	 * sample, then those of what it wraps (store_metrics() on its lower
	 * store, or its object back end): layering stays down-only and the
	 * caller needs no knowledge of the stack. Reactor thread, never blocks.
	 */
	void (*metrics)(struct store *st, store_metric_fn fn, void *arg);
};

struct store {
	const struct store_ops *ops;
	void *priv;
	struct reactor *reactor; /* borrowed: where completions run */
	char *uri;		 /* owned copy of the URI it was opened from */
	uint64_t size;		 /* bytes */
	uint32_t block_size;
	uint32_t caps;
	bool thin;
	bool read_only; /* from store_params: the SCSI layer write-protects the LU */
	/* Optional hint for the Block Limits VPD: preferred I/O granularity in bytes (0 = none). */
	uint32_t opt_io_bytes;
};

/* Parse a LUN URI into p (store_params_fini frees it). Error message in err. */
int store_params_parse(const char *uri, struct store_params *p, char *err, size_t errlen);
void store_params_fini(struct store_params *p);
/* Look up a store-specific option; NULL if absent. */
const char *store_param_get(const struct store_params *p, const char *key);

/* Registry. */
const struct store_ops *store_ops_find(const char *scheme);
int store_register(const struct store_ops *ops);

/*
 * A layer is a store that stacks on the store a LUN URI names, turned on by
 * options of its own in that URI (the write-back cache: cache_size, ...).
 * store_open_uri() opens the named store with the store's own options, then
 * every registered layer given an option wraps what is below it, the first
 * registered lowest. The layers are registered once, before any URI is
 * opened, by whoever composes the program (the daemon's main); so the store
 * registry depends on no layer, and its callers (mgmt) on none either.
 */
struct store_layer_ops {
	const char *name;
	const char *const *options; /* the layer's option names, NULL-terminated */
	/* Check the values of its options among p->opts, no I/O: 0, or -EINVAL and a message naming
	 * the option. */
	int (*check)(const struct store_params *p, char *err, size_t errlen);
	/*
	 * Optional, before the store below opens: add options that store needs
	 * because of this layer to *lower_uri (store_uri_add_option). The
	 * cache's cache_dir keeps the lease holder id its lower store takes back.
	 */
	int (*prepare)(const struct store_params *p, char **lower_uri, char *err, size_t errlen);
	/* Wrap lower as p says. Takes lower (closed at once on failure). May block, like open. */
	int (*wrap)(struct store *lower, const struct store_params *p, struct store **out,
		    char *err, size_t errlen);
};
/* Returns 0, or -ENOSPC when the table is full. Registering twice is a no-op. */
int store_layer_register(const struct store_layer_ops *ops);
/* Append key=value to a URI string (*uri is replaced; owned). 0 or -ENOMEM. */
int store_uri_add_option(char **uri, const char *key, const char *value);

/*
 * Parse uri, find the store, reject unknown options (naming them), open it
 * and stack the layers its options turn on. Returns 0 and a new store in
 * *out, or -errno with a message in err.
 */
int store_open_uri(const char *uri, struct reactor *r, struct store **out, char *err,
		   size_t errlen);
/* Everything store_open_uri() checks before it opens anything (API and config checks). */
int store_check_uri(const char *uri, char *err, size_t errlen);
/* Close and free; all submitted io must have completed. NULL is a no-op. */
void store_close(struct store *st);
/*
 * Closes still finishing in the background: a store whose close goes on after
 * close() returned (a chunk store closed while its reactor runs releases its
 * volume lease asynchronously and frees itself after) calls begin when it
 * defers and end when it is done. The daemon keeps its loop running until
 * store_closes_pending() is 0, so no such close is cut short at exit. Any
 * thread.
 */
void store_close_background_begin(void);
void store_close_background_end(void);
unsigned store_closes_pending(void);

/* st->ops->metrics(st, fn, arg) when the store has the op; else nothing. */
void store_metrics(struct store *st, store_metric_fn fn, void *arg);

/* st->ops->fenced(st) when the store has the op; else false. */
bool store_fenced(struct store *st);

/* Submit wrapper: checks alignment/range (asserts, the SCSI layer validated) and calls ops. */
int store_submit(struct store *st, struct store_io *io);

extern const struct store_ops store_ram_ops;
extern const struct store_ops store_file_ops;
extern const struct store_ops store_dir_ops, store_s3_ops;

#endif
