/*
 * journal.c - cache_dir, the journal that keeps acknowledged writes across a
 * crash (format: docs/DURABILITY.md "cache_dir format"; its constants are in
 * cache_internal.h, since open (cache.c) sizes the slot headers and the
 * volume id by them). It owns the per-slot FIFO of journal writes run on the
 * cache's own worker pool (struct jqueue), the snapshot of clean chunks kept
 * at a clean close, and at open the check of the file's header, the recovery
 * of the dirty slots (two slots of one chunk merged, newest block wins), the
 * reload of the snapshot and the refusal of writes from a history the volume
 * no longer has. Why a write completes only once journaled: the invariants at
 * the top of cache.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "s3tgt/core.h"
#include "s3tgt/log.h"
#include "s3tgt/store.h"

#include "cache_internal.h"

#define COMP "cache"
#define JOURNAL_THREADS 4u

/* ---- recycled job records ---- */

/* A zeroed job record with room for a slot header; NULL if out of memory. */
static struct jjob *jjob_get(struct cache *c)
{
	struct jjob *j = c->free_jjobs;
	uint8_t *hdr;

	if (!j) {
		j = calloc(1, sizeof(*j));
		if (!j) {
			return NULL;
		}
		j->hdr = malloc(c->slot_hdr);
		if (!j->hdr) {
			free(j);
			return NULL;
		}
		return j;
	}
	c->free_jjobs = j->next;
	hdr = j->hdr;
	memset(j, 0, sizeof(*j));
	j->hdr = hdr;
	return j;
}

static void jjob_free(struct cache *c, struct jjob *j)
{
	j->next = c->free_jjobs;
	c->free_jjobs = j;
}

/* ---- headers and file I/O (format constants: cache_internal.h) ---- */

static uint64_t slot_off(const struct cache *c, uint32_t slot)
{
	return J_HDR_SIZE + (uint64_t)slot * (c->slot_hdr + c->chunk);
}

/*
 * Slot e's header into h: dirty (with its bitmap) or free, as e is; or, with
 * snapshot_crc, a clean chunk of the clean-close snapshot whose data has that CRC.
 */
static void slot_hdr_build(struct cache *c, const struct centry *e, const uint32_t *snapshot_crc,
			   uint8_t *h)
{
	uint32_t state = S_STATE_FREE;

	if (snapshot_crc) {
		state = S_STATE_CLEAN;
	} else if (e->used && e->ndirty) {
		state = S_STATE_DIRTY;
	}

	memset(h, 0, c->slot_hdr);
	put_be32(h, S_MAGIC);
	put_be32(h + S_OFF_STATE, state);
	put_be64(h + S_OFF_IDX, e->used ? e->idx : 0);
	put_be64(h + S_OFF_SEQ, c->jseq++);
	put_be32(h + S_OFF_NBLK, c->nblk);
	if (state == S_STATE_DIRTY) {
		/*
		 * Bit i of the on-disk bitmap is bit i % 8 of byte i / 8, i.e. the
		 * words stored least significant byte first: a byte at a time, not a
		 * bit at a time (this runs for every journaled write).
		 */
		for (uint32_t b = 0; b < (c->nblk + 7) / 8; b++) {
			h[S_OFF_BITMAP + b] = (uint8_t)(e->dirty[b / 8] >> (b % 8 * 8));
		}
		if (c->nblk % 8) {
			h[S_OFF_BITMAP + c->nblk / 8] &= (uint8_t)((1u << (c->nblk % 8)) - 1);
		}
	} else if (state == S_STATE_CLEAN) {
		put_be32(h + S_OFF_DATACRC, *snapshot_crc);
	}
	put_be32(h + S_OFF_CRC, crc32c(0, h, c->slot_hdr));
}

static void jhdr_build(const struct cache *c, uint8_t *h)
{
	size_t vlen = strlen(c->vol_id);

	memset(h, 0, J_HDR_SIZE);
	memcpy(h, J_MAGIC, 8);
	put_be32(h + J_OFF_VERSION, J_VERSION);
	put_be32(h + J_OFF_BS, c->bs);
	put_be32(h + J_OFF_CHUNK, c->chunk);
	put_be32(h + J_OFF_NSLOTS, c->nslots);
	put_be32(h + J_OFF_SLOTHDR, c->slot_hdr);
	put_be16(h + J_OFF_VOLLEN, (uint16_t)vlen);
	memcpy(h + J_OFF_VOL, c->vol_id, vlen);
	put_be32(h + J_OFF_SNAPSHOT, c->jsnapshot ? 1u : 0u);
	put_be32(h + J_OFF_DIVERGED, c->jdiverged ? 1u : 0u);
	put_be32(h + J_OFF_CRC, crc32c(0, h, J_HDR_SIZE));
}

static int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		if (n == 0) {
			return -EIO;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* ---- the job queue: per-slot FIFO, run on the worker pool ---- */

static void jjob_work(void *arg)
{
	struct jjob *j = arg;
	struct cache *c = j->c;
	int rc = 0;

	if (j->len) {
		rc = pwrite_full(c->jfd, j->src, j->len, j->data_off);
	}
	if (!rc && j->with_hdr) {
		/*
		 * The blocks must be stable before the bitmap that claims them, or a
		 * power loss could leave a header pointing at stale bytes.
		 */
		if (j->len && j->sync && fdatasync(c->jfd) != 0) {
			rc = -errno;
		}
		if (!rc) {
			rc = pwrite_full(c->jfd, j->hdr, c->slot_hdr, slot_off(c, j->e->slot));
		}
	}
	if (!rc && j->sync && fdatasync(c->jfd) != 0) {
		rc = -errno;
	}
	j->rc = rc;
}

static void jjob_start(struct centry *e);

static void jjob_done(struct jjob *j)
{
	struct centry *e = j->e;
	struct cache *c = j->c;

	if (j->rc) {
		LOG_RATELIMIT(LOG_LEVEL_ERR, COMP, "%s: cache_dir write for slot %u failed: %s",
			      c->p.cache_dir, e->slot, strerror(-j->rc));
	}
	e->jhead = j->next;
	if (!e->jhead) {
		e->jtail = NULL;
	}
	e->jbusy = false;
	if (j->cio) {
		cache_cio_put(j->cio, j->rc ? -EIO : 0);
	}
	jjob_free(c, j);
	jjob_start(e);
}

static void jq_work(void *arg)
{
	struct jjob *j = arg;

	jjob_work(j);
	reactor_queue_push(j->c->jq.done, &j->done);
}

static void jq_done(void *arg)
{
	jjob_done(arg);
}

static int jq_start(struct cache *c)
{
	int rc = thread_pool_create(JOURNAL_THREADS, &c->jq.tp);

	if (rc) {
		return rc;
	}
	rc = reactor_queue_create(c->r, jq_done, &c->jq.done);
	if (rc) {
		thread_pool_destroy(c->jq.tp);
		c->jq.tp = NULL;
		return rc;
	}
	c->jq_init = true;
	return 0;
}

/* Finish every journal write (close: may block), then stop the workers. */
void cache_jq_stop(struct cache *c)
{
	if (!c->jq_init) {
		return;
	}
	thread_pool_destroy(c->jq.tp);
	c->jq.tp = NULL;
	c->jq.stopped = true;
	/* Done jobs start their slot's next job, which now runs inline. */
	reactor_queue_destroy(c->jq.done);
	c->jq.done = NULL;
	c->jq_init = false;
}

static void jjob_start(struct centry *e)
{
	struct jjob *j = e->jhead;

	if (e->jbusy || !j) {
		return;
	}
	e->jbusy = true;
	j->done.arg = j;
	if (!e->c->jq.stopped && thread_pool_submit(e->c->jq.tp, jq_work, NULL, NULL, j) == 0) {
		reactor_queue_expect(e->c->jq.done);
		return;
	}
	/* Closing, or no memory for the pool's job: write it now, on the reactor. */
	jjob_work(j);
	jjob_done(j);
}

/*
 * Queue a journal write for slot e: `len` bytes from src at chunk offset off
 * (len 0: header only), plus the header if the dirty bitmap changed. The
 * snapshot of the header is taken now, so jobs of a slot land in order.
 */
int cache_journal_queue(struct cache *c, struct centry *e, struct cio *w, const void *src,
			uint32_t off, uint32_t len, bool sync, bool force_hdr)
{
	struct jjob *j;

	if (c->jfd < 0) {
		return 0;
	}
	j = jjob_get(c);
	if (!j) {
		return -ENOMEM;
	}
	if (e->jhdr_stale || force_hdr) {
		j->with_hdr = true;
		slot_hdr_build(c, e, NULL, j->hdr);
		e->jhdr_stale = false;
	}
	j->c = c;
	j->e = e;
	j->cio = w;
	j->src = src;
	j->len = len;
	j->data_off = slot_off(c, e->slot) + c->slot_hdr + off;
	j->sync = sync;
	if (w) {
		w->pending++;
	}
	if (e->jtail) {
		e->jtail->next = j;
	} else {
		e->jhead = j;
	}
	e->jtail = j;
	jjob_start(e);
	return 0;
}

/* ---- clean close ---- */

/*
 * Clean close: keep the clean chunks for the next start. Every slot header is
 * rewritten (state 2 with the data's CRC for a fully valid chunk, free for
 * any other slot), so no older state-2 header joins the snapshot; the journal
 * header's flag goes last, once the data is stable. The next open uses the
 * snapshot only if the lower store says nobody else wrote the volume since
 * (store_ops.resumed). Failure only costs the snapshot: the data is in the
 * lower store.
 */
void cache_journal_save_clean(struct cache *c)
{
	size_t hlen = c->slot_hdr > J_HDR_SIZE ? c->slot_hdr : J_HDR_SIZE;
	uint8_t *h = malloc(hlen);
	uint64_t n = 0;
	int rc = h ? 0 : -ENOMEM;

	for (uint32_t s = 0; s < c->nslots && !rc; s++) {
		struct centry *e = &c->e[s];
		uint32_t len = e->used ? chunk_len(c, e->idx) : 0;
		bool keep = e->used && !e->ndirty && e->nvalid >= chunk_blocks(c, e->idx);
		uint32_t dcrc = keep ? crc32c(0, e->buf, len) : 0;

		if (keep) {
			rc = pwrite_full(c->jfd, e->buf, len, slot_off(c, s) + c->slot_hdr);
			n++;
		}
		slot_hdr_build(c, e, keep ? &dcrc : NULL, h);
		if (!rc) {
			rc = pwrite_full(c->jfd, h, c->slot_hdr, slot_off(c, s));
		}
	}
	if (!rc && fdatasync(c->jfd) != 0) {
		rc = -errno;
	}
	if (!rc && n) {
		c->jsnapshot = true;
		jhdr_build(c, h);
		rc = pwrite_full(c->jfd, h, J_HDR_SIZE, 0);
		if (!rc && fdatasync(c->jfd) != 0) {
			rc = -errno;
		}
	}
	if (rc) {
		LOG_WARN(COMP, "%s: cannot keep the clean chunks in %s: %s", c->lower->uri,
			 c->p.cache_dir, strerror(-rc));
	} else if (n) {
		LOG_INFO(COMP, "%s: %" PRIu64 " clean chunks kept in %s for the next start",
			 c->lower->uri, n, c->p.cache_dir);
	}
	free(h);
}

/* ---- open: checks and crash recovery ---- */

/* Rewrite the journal header (h: a J_HDR_SIZE buffer) durably. */
static int jhdr_write(struct cache *c, uint8_t *h, const char *path, char *err, size_t errlen)
{
	int rc;

	jhdr_build(c, h);
	rc = pwrite_full(c->jfd, h, J_HDR_SIZE, 0);
	if (!rc && fdatasync(c->jfd) != 0) {
		rc = -errno;
	}
	if (rc) {
		snprintf(err, errlen, "cache_dir: cannot write %s: %s", path, strerror(-rc));
	}
	return rc;
}

static int journal_create(struct cache *c, const char *path, char *err, size_t errlen)
{
	uint8_t *h = calloc(1, J_HDR_SIZE);
	int rc = 0;

	if (!h) {
		return -ENOMEM;
	}
	jhdr_build(c, h);
	/* Fresh slot headers are zero: not "SLOT", so nothing to recover. */
	if (ftruncate(c->jfd, 0) != 0 || ftruncate(c->jfd, (off_t)slot_off(c, c->nslots)) != 0) {
		rc = -errno;
	} else {
		rc = pwrite_full(c->jfd, h, J_HDR_SIZE, 0);
	}
	if (!rc && fdatasync(c->jfd) != 0) {
		rc = -errno;
	}
	if (rc) {
		snprintf(err, errlen, "cache_dir: cannot initialise %s: %s", path, strerror(-rc));
	}
	free(h);
	return rc;
}

/* Fold the dirty blocks of older slot o into newer slot n (same chunk), durably. */
static int recover_merge(struct cache *c, struct centry *o, struct centry *n)
{
	uint8_t *h = malloc(c->slot_hdr);
	int rc = 0;

	if (!h) {
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < c->nblk && !rc; i++) {
		if (bm_test(o->dirty, i) && !bm_test(n->dirty, i)) {
			memcpy(n->buf + (size_t)i * c->bs, o->buf + (size_t)i * c->bs, c->bs);
			n->nvalid += bm_set(n->valid, i, 1);
			n->ndirty += bm_set(n->dirty, i, 1);
			rc = pwrite_full(c->jfd, n->buf + (size_t)i * c->bs, c->bs,
					 slot_off(c, n->slot) + c->slot_hdr + (uint64_t)i * c->bs);
		}
	}
	if (!rc && fdatasync(c->jfd) != 0) {
		rc = -errno;
	}
	if (!rc) {
		slot_hdr_build(c, n, NULL, h);
		rc = pwrite_full(c->jfd, h, c->slot_hdr, slot_off(c, n->slot));
	}
	if (!rc) {
		o->ndirty = 0;
		o->used = false;
		slot_hdr_build(c, o, NULL, h);
		rc = pwrite_full(c->jfd, h, c->slot_hdr, slot_off(c, o->slot));
	}
	if (!rc && fdatasync(c->jfd) != 0) {
		rc = -errno;
	}
	free(h);
	return rc;
}

/*
 * Load the dirty slots, and with load_clean the clean snapshot of the last
 * clean close (state 2, each checked against its data CRC: the snapshot is
 * written without ordering its data before its headers).
 */
static int journal_recover(struct cache *c, const char *path, bool load_clean, char *err,
			   size_t errlen)
{
	uint8_t *h = malloc(c->slot_hdr);
	uint64_t *seqs = calloc(c->nslots, sizeof(uint64_t));
	uint64_t nclean = 0;
	int rc = 0;

	if (!h || !seqs) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t s = 0; s < c->nslots; s++) {
		struct centry *e = &c->e[s];
		uint32_t crc, state;

		rc = pread_full(c->jfd, h, c->slot_hdr, slot_off(c, s));
		if (rc) {
			snprintf(err, errlen, "cache_dir: cannot read %s: %s", path, strerror(-rc));
			goto out;
		}
		if (get_be32(h) != S_MAGIC) {
			continue;
		}
		crc = get_be32(h + S_OFF_CRC);
		put_be32(h + S_OFF_CRC, 0);
		if (crc != crc32c(0, h, c->slot_hdr) || get_be32(h + S_OFF_NBLK) != c->nblk) {
			LOG_ERR(COMP, "%s: slot %u header is damaged; its data cannot be recovered",
				path, s);
			continue;
		}
		if (get_be64(h + S_OFF_SEQ) >= c->jseq) {
			c->jseq = get_be64(h + S_OFF_SEQ) + 1;
		}
		state = get_be32(h + S_OFF_STATE);
		if (state != S_STATE_DIRTY && !(state == S_STATE_CLEAN && load_clean)) {
			continue;
		}
		if (get_be64(h + S_OFF_IDX) * c->chunk >= c->lower->size) {
			LOG_ERR(COMP, "%s: slot %u holds chunk %" PRIu64 " beyond the volume end",
				path, s, get_be64(h + S_OFF_IDX));
			continue;
		}
		cache_list_del(c, e);
		cache_entry_reset(c, e, get_be64(h + S_OFF_IDX));
		seqs[s] = get_be64(h + S_OFF_SEQ);
		if (state == S_STATE_CLEAN) {
			rc = pread_full(c->jfd, e->buf, chunk_len(c, e->idx),
					slot_off(c, s) + c->slot_hdr);
			if (rc) {
				snprintf(err, errlen, "cache_dir: cannot read %s: %s", path,
					 strerror(-rc));
				goto out;
			}
			if (crc32c(0, e->buf, chunk_len(c, e->idx)) !=
			    get_be32(h + S_OFF_DATACRC)) {
				LOG_WARN(COMP,
					 "%s: clean chunk %" PRIu64 " in slot %u is damaged; "
					 "it will be read from the lower store",
					 path, e->idx, s);
				cache_entry_drop(c, e);
				continue;
			}
			e->nvalid = bm_set(e->valid, 0, chunk_blocks(c, e->idx));
			cache_list_add_tail(c, e, L_CLEAN);
			nclean++;
			continue;
		}
		for (uint32_t i = 0; i < c->nblk; i++) {
			if (h[S_OFF_BITMAP + i / 8] & (1u << (i % 8))) {
				e->nvalid += bm_set(e->valid, i, 1);
				e->ndirty += bm_set(e->dirty, i, 1);
			}
		}
		rc = pread_full(c->jfd, e->buf, chunk_len(c, e->idx), slot_off(c, s) + c->slot_hdr);
		if (rc) {
			snprintf(err, errlen, "cache_dir: cannot read %s: %s", path, strerror(-rc));
			goto out;
		}
	}
	/* The same chunk in two slots (evicted, then written again): newest wins per block. */
	for (uint32_t s = 0; s < c->nslots; s++) {
		struct centry *e = &c->e[s];
		struct centry *o;

		if (!e->used) {
			continue;
		}
		for (o = c->hash[cache_hash_idx(c, e->idx)]; o; o = o->hnext) {
			if (o != e && o->idx == e->idx && o->used) {
				break;
			}
		}
		if (!o) {
			continue;
		}
		if (seqs[o->slot] > seqs[e->slot]) {
			struct centry *t = o;
			o = e;
			e = t;
		}
		rc = recover_merge(c, o, e);
		if (rc) {
			snprintf(err, errlen, "cache_dir: cannot merge slots in %s: %s", path,
				 strerror(-rc));
			goto out;
		}
		cache_hash_del(c, o);
		cache_list_add_tail(c, o, L_FREE);
	}
	for (uint32_t s = 0; s < c->nslots; s++) {
		struct centry *e = &c->e[s];

		if (!e->used || !e->ndirty) {
			continue;
		}
		e->gen = 1;
		e->dirty_seq = ++c->wseq;
		e->dirty_ms = 0; /* old: written back at once */
		c->dirty_blocks += e->ndirty;
		cache_list_add_tail(c, e, L_DIRTY);
		c->stats.recovered++;
	}
	c->stats.reloaded = nclean;
out:
	free(h);
	free(seqs);
	return rc;
}

/*
 * Unstored writes found in cache_dir, but another daemon wrote the volume
 * since this holder last had it (its lease was not ours): those writes
 * belong to a history the volume no longer has, and uploading them would
 * overwrite the other daemon's data block by block. Refuse the LUN, and say
 * so in the header too: the refused open closes the volume and so releases
 * the lease as ours, which must not make the next open upload them.
 */
static int journal_diverged(struct cache *c, uint8_t *h, const char *path, char *err, size_t errlen)
{
	int rc = 0;

	if (!c->jdiverged) {
		c->jdiverged = true;
		rc = jhdr_write(c, h, path, err, errlen);
		if (rc) {
			return rc;
		}
	}
	snprintf(err, errlen,
		 "cache_dir %s: %" PRIu64 " chunks of acknowledged writes never reached the "
		 "volume, and another daemon wrote it since; uploading them would overwrite its "
		 "data. To serve the volume as that daemon left it, move this cache_dir away (it "
		 "keeps those writes) and start again",
		 c->p.cache_dir, c->stats.recovered);
	return -ESTALE;
}

int cache_journal_open(struct cache *c, char *err, size_t errlen)
{
	char path[4096];
	uint8_t *h = NULL;
	struct stat sb;
	bool snapshot, resumed;
	int rc;

	if (mkdir(c->p.cache_dir, 0700) != 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "cache_dir: cannot create %s: %s", c->p.cache_dir,
			 strerror(errno));
		return rc;
	}
	rc = snprintf(path, sizeof(path), "%s/cache.dat", c->p.cache_dir);
	if (rc < 0 || (size_t)rc >= sizeof(path)) {
		snprintf(err, errlen, "cache_dir: path too long");
		return -ENAMETOOLONG;
	}
	c->jfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (c->jfd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cache_dir: cannot open %s: %s", path, strerror(errno));
		return rc;
	}
	/* One daemon per cache_dir: two would journal over each other. */
	if (flock(c->jfd, LOCK_EX | LOCK_NB) != 0) {
		rc = -errno;
		snprintf(err, errlen, "cache_dir: %s is in use by another process", path);
		return rc == -EWOULDBLOCK ? -EBUSY : rc;
	}
	if (fstat(c->jfd, &sb) != 0) {
		rc = -errno;
		snprintf(err, errlen, "cache_dir: cannot stat %s: %s", path, strerror(errno));
		return rc;
	}
	c->zeros = calloc(1, c->chunk);
	h = calloc(1, J_HDR_SIZE);
	if (!c->zeros || !h) {
		rc = -ENOMEM;
		goto out;
	}
	rc = jq_start(c);
	if (rc) {
		snprintf(err, errlen, "cache: cannot start journal threads: %s", strerror(-rc));
		goto out;
	}
	if ((uint64_t)sb.st_size < J_HDR_SIZE) {
		rc = journal_create(c, path, err, errlen);
		goto out;
	}
	rc = pread_full(c->jfd, h, J_HDR_SIZE, 0);
	if (rc) {
		snprintf(err, errlen, "cache_dir: cannot read %s: %s", path, strerror(-rc));
		goto out;
	}
	{
		uint32_t crc = get_be32(h + J_OFF_CRC);
		uint16_t vlen = get_be16(h + J_OFF_VOLLEN);
		char vol[J_VOL_MAX + 1];

		put_be32(h + J_OFF_CRC, 0);
		if (memcmp(h, J_MAGIC, 8) != 0 || crc != crc32c(0, h, J_HDR_SIZE) ||
		    vlen > J_VOL_MAX) {
			snprintf(
			    err, errlen,
			    "cache_dir: %s is not an s3tgt cache file (bad magic or checksum); "
			    "move it away if it holds nothing you need",
			    path);
			rc = -EINVAL;
			goto out;
		}
		if (get_be32(h + J_OFF_VERSION) != J_VERSION) {
			snprintf(err, errlen,
				 "cache_dir: %s has format version %u, this build "
				 "reads version %u",
				 path, get_be32(h + J_OFF_VERSION), J_VERSION);
			rc = -EINVAL;
			goto out;
		}
		memcpy(vol, h + J_OFF_VOL, vlen);
		vol[vlen] = '\0';
		if (strcmp(vol, c->vol_id) != 0) {
			snprintf(
			    err, errlen,
			    "cache_dir: %s belongs to volume '%s', but this LUN is volume '%s'; "
			    "give each volume its own cache_dir",
			    c->p.cache_dir, vol, c->vol_id);
			rc = -EINVAL;
			goto out;
		}
		if (get_be32(h + J_OFF_BS) != c->bs || get_be32(h + J_OFF_CHUNK) != c->chunk ||
		    get_be32(h + J_OFF_NSLOTS) != c->nslots ||
		    get_be32(h + J_OFF_SLOTHDR) != c->slot_hdr) {
			/* Only a journal without dirty data may be re-laid out. */
			struct cache probe = *c;

			probe.bs = get_be32(h + J_OFF_BS);
			probe.chunk = get_be32(h + J_OFF_CHUNK);
			probe.nslots = get_be32(h + J_OFF_NSLOTS);
			probe.slot_hdr = get_be32(h + J_OFF_SLOTHDR);
			for (uint32_t s = 0; s < probe.nslots && probe.slot_hdr >= S_OFF_BITMAP;
			     s++) {
				uint8_t sh[S_OFF_BITMAP];

				if (pread_full(c->jfd, sh, sizeof(sh), slot_off(&probe, s)) != 0) {
					break;
				}
				if (get_be32(sh) == S_MAGIC && get_be32(sh + S_OFF_STATE) == 1) {
					snprintf(err, errlen,
						 "cache_dir: %s holds unstored data laid out for "
						 "cache_size=%" PRIu64
						 " (chunk %u, block %u); restart "
						 "with that cache_size so it can be uploaded",
						 path, (uint64_t)probe.nslots * probe.chunk,
						 probe.chunk, probe.bs);
					rc = -EINVAL;
					goto out;
				}
			}
			rc = journal_create(c, path, err, errlen);
			goto out;
		}
	}
	snapshot = get_be32(h + J_OFF_SNAPSHOT) == 1;
	c->jdiverged = get_be32(h + J_OFF_DIVERGED) == 1;
	resumed = c->lower->ops->resumed && c->lower->ops->resumed(c->lower);
	if (snapshot && !resumed) {
		LOG_WARN(COMP,
			 "%s: the clean chunks kept in %s are not used: the volume may have "
			 "been written elsewhere since this cache_dir's last clean close",
			 c->lower->uri, c->p.cache_dir);
	}
	rc = journal_recover(c, path, snapshot && resumed, err, errlen);
	if (rc) {
		goto out;
	}
	if (c->stats.recovered && (c->jdiverged || (c->lower->ops->resumed && !resumed))) {
		rc = journal_diverged(c, h, path, err, errlen);
		goto out;
	}
	if (c->stats.recovered) {
		LOG_INFO(COMP, "%s: recovered %" PRIu64 " dirty chunks from %s; uploading them",
			 c->lower->uri, c->stats.recovered, path);
	}
	if (c->stats.reloaded) {
		LOG_INFO(COMP,
			 "%s: %" PRIu64 " clean chunks kept in %s at the last clean close "
			 "are cached again",
			 c->lower->uri, c->stats.reloaded, path);
	}
	if (snapshot) {
		/*
		 * From the first write on, the snapshot no longer describes the
		 * volume: a crash must not bring it back.
		 */
		c->jsnapshot = false;
		rc = jhdr_write(c, h, path, err, errlen);
	}
out:
	free(h);
	return rc;
}
