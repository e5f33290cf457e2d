/*
 * chunk.h - the chunked store logic shared by the `dir` and `s3` stores
 * (private to src/store). A store's open() parses its own options, builds an
 * objstore (see objstore.h) and hands it to chunk_store_open(); every other
 * store_ops entry is the chunk_store_* function of the same name.
 *
 * Key scheme (docs/OBJECT-FORMAT.md): "manifest" and "chunks/<16 hex digits>",
 * relative to the volume prefix the objstore adds.
 */
#ifndef S3TGT_STORE_CHUNK_H
#define S3TGT_STORE_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "s3tgt/store.h"

#include "lease.h"

struct objstore;

#define CHUNK_SIZE_DEFAULT (4u << 20)
#define CHUNK_SIZE_MIN (64u << 10)
#define CHUNK_SIZE_MAX (64u << 20)
#define CHUNK_MAX_INFLIGHT_DEFAULT 32u
#define CHUNK_MAX_INFLIGHT_MAX 1024u
/* At most 64 CRCs per object so the checksum list fits in OBJ_META_MAX. */
#define CHUNK_SEG_MIN (64u << 10)
#define CHUNK_SEGS_MAX 64u

#define CHUNK_MANIFEST_KEY "manifest"
#define CHUNK_KEY_PREFIX "chunks/"

/* Options every chunked store accepts (chunk_size, max_inflight). */
struct chunk_opts {
	uint32_t chunk_size;   /* 0 = not given: the manifest's, or the default for a new volume */
	unsigned max_inflight; /* bound on concurrent object requests */
	struct chunk_lease_opts lease; /* lease_holder= (borrowed from the params), ... */
};

/*
 * Parse chunk_size=, max_inflight=, lease_holder=, break_lease=,
 * lease_renew_ms= from p. Message in err.
 */
int chunk_opts_parse(const struct store_params *p, struct chunk_opts *o, char *err, size_t errlen);

/*
 * Open a chunked volume on os (takes ownership: destroyed on failure and by
 * chunk_store_close). Reads or creates the manifest, lists the existing
 * chunks, fills st->size/caps/priv/opt_io_bytes. May block.
 */
int chunk_store_open(struct store *st, const struct store_params *p, const struct chunk_opts *o,
		     struct objstore *os, char *err, size_t errlen);
int chunk_store_submit(struct store *st, struct store_io *io);
void chunk_store_close(struct store *st);
void chunk_store_quiesce(struct store *st);
int chunk_store_lba_status(struct store *st, uint64_t offset, bool *mapped, uint64_t *run);
int chunk_store_resize(struct store *st, uint64_t new_size);
const char *chunk_store_volume_id(struct store *st);
bool chunk_store_resumed(struct store *st);
bool chunk_store_fenced(struct store *st);
/* Chunk-level gauges, then the object back end's metrics (store.h). */
void chunk_store_metrics(struct store *st, store_metric_fn fn, void *arg);

/* Key of chunk idx into buf (>= 24 bytes). */
void chunk_key(char *buf, size_t len, uint64_t idx);
/* Parse a listed key ("chunks/<16 hex>", optionally after a prefix). Returns 0 or -EINVAL. */
int chunk_key_parse(const char *key, uint64_t *idx);

/*
 * Checksum metadata (docs/OBJECT-FORMAT.md): "v=1 seg=<bytes> crc32c=<8 hex per segment>".
 * Segment size for a chunk size: max(64 KiB, chunk_size / 64).
 */
uint32_t chunk_seg_size(uint32_t chunk_size);
int chunk_meta_build(char *meta, size_t metalen, const uint8_t *data, uint32_t chunk_size);
/*
 * Verify data (the bytes [off, off+len) of a chunk, segment-aligned) against meta.
 * Returns 0, -EILSEQ (mismatch; *bad_seg set) or -EBADMSG (unparseable metadata).
 */
int chunk_meta_verify(const char *meta, const uint8_t *data, uint32_t chunk_size, uint32_t off,
		      uint32_t len, unsigned *bad_seg);

/* The volume manifest (manifest.c). */
struct chunk_manifest {
	char volume_id[37]; /* RFC 4122 UUID string */
	uint64_t size;
	uint32_t chunk_size;
	uint32_t block_size;
	uint64_t created; /* Unix seconds */
};

#define CHUNK_MANIFEST_MAGIC "s3tgt-volume"
#define CHUNK_MANIFEST_VERSION 1

/* Fill a new manifest with a random volume id. Returns 0 or -errno. */
int chunk_manifest_init(struct chunk_manifest *m, uint64_t size, uint32_t chunk_size,
			uint32_t block_size);
/* Serialize to JSON; returns bytes written (excluding NUL) or -ENOSPC / -ENOMEM. */
int chunk_manifest_encode(const struct chunk_manifest *m, char *buf, size_t len);
/* Parse JSON of len bytes. Returns 0 or -EBADMSG with a message in err. */
int chunk_manifest_decode(const char *buf, size_t len, struct chunk_manifest *m, char *err,
			  size_t errlen);

#endif
