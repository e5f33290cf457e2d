/*
 * cache.h - the write-back chunk cache: a store that wraps another store
 * (s3, dir, file, ram). Sits above the store module and below scsi.
 *
 * The cache is a store layer (cache_layer_ops, registered with
 * store_layer_register() by the program's main): store_open_uri() of a LUN
 * URI with any cache option (cache_size, cache_dir, writeback, flush_timeout,
 * cache_uploads, cache_prefetch, writeback_age) opens the lower store with
 * the remaining options, then the cache wraps it. With cache_dir, a lower
 * store that takes the lease_holder option (s3, dir) gets the holder id kept
 * in cache_dir, so a restart with the same cache_dir takes its own lease
 * back. docs/DURABILITY.md explains what is safe after a crash.
 */
#ifndef S3TGT_CACHE_H
#define S3TGT_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3tgt/store.h"

struct reactor;

#define CACHE_SIZE_DEFAULT (256ull << 20)
#define CACHE_CHUNK_DEFAULT (1u << 20) /* when the lower store has no opt_io_bytes */
#define CACHE_FLUSH_TIMEOUT_MS_DEFAULT 60000u
#define CACHE_UPLOADS_DEFAULT 8u
#define CACHE_PREFETCH_DEFAULT 4u
#define CACHE_WRITEBACK_AGE_MS_DEFAULT 1000u

struct cache_params {
	uint64_t cache_size;	   /* RAM for cached chunks, bytes */
	char *cache_dir;	   /* owned; NULL = no local journal */
	bool writeback;		   /* false: write-through (WCE=0, every write waits) */
	unsigned flush_timeout_ms; /* SYNCHRONIZE CACHE / FUA wait before -ETIMEDOUT */
	unsigned max_uploads;	   /* concurrent lower writes */
	unsigned prefetch;	   /* chunks read ahead on a sequential stream */
	unsigned writeback_age_ms; /* dirty data older than this is written back */
};

/* Counters (monotonic unless noted). */
struct cache_stats {
	uint64_t hits;		/* read chunk pieces served from the cache */
	uint64_t misses;	/* read chunk pieces fetched from the lower store */
	uint64_t dirty_bytes;	/* current, not monotonic */
	uint64_t dirty_chunks;	/* current */
	uint64_t uploads;	/* chunk writes to the lower store that succeeded */
	uint64_t upload_errors; /* failed attempts (retried) */
	uint64_t merge_reads;	/* lower reads done to merge a partially dirty chunk */
	uint64_t evictions;	/* clean chunks dropped to make room */
	uint64_t prefetches;	/* read-ahead chunk fetches started */
	uint64_t backpressure;	/* writes that had to wait for room */
	uint64_t recovered;	/* dirty chunks recovered from cache_dir at open */
	uint64_t reloaded;	/* clean chunks cached again from cache_dir at open */
};

/*
 * Fill cp from the cache options among opts (others are ignored); *any is
 * set when at least one cache option is present. cp is initialised with the
 * defaults first. Returns 0 or -EINVAL with a message naming the option.
 */
int cache_params_from_opts(const struct store_opt *opts, size_t nopts, struct cache_params *cp,
			   bool *any, char *err, size_t errlen);
void cache_params_fini(struct cache_params *cp);

/*
 * Wrap an open store. Takes ownership of lower (closed by store_close(*out),
 * or at once on failure). p is borrowed. May block (reads cache_dir and
 * recovers dirty chunks into RAM; their upload starts once the reactor runs).
 */
int cache_store_wrap(struct store *lower, const struct cache_params *p, struct store **out,
		     char *err, size_t errlen);

/* The cache as a store layer (see top). */
extern const struct store_layer_ops cache_layer_ops;

/* True if st is a cache store. */
bool cache_store_is(const struct store *st);
/* Copy the counters; -EINVAL if st is not a cache store. */
int cache_store_get_stats(struct store *st, struct cache_stats *out);

#endif
