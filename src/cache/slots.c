/*
 * slots.c - the cache's memory and its slots: the arena (one chunk buffer per
 * slot, per upload and per fill, all mapped at open and made resident on a
 * thread of its own), the chunk-index hash, and the FREE / CLEAN (LRU order) /
 * DIRTY lists a slot moves between. Kept apart from the I/O paths so that what
 * a slot holds and which list it is on has one owner; the read, write-back and
 * journal code decide when a slot moves. The slot state machine and the
 * invariants: the comment at the top of cache.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "s3tgt/core.h"
#include "s3tgt/log.h"
#include "s3tgt/store.h"

#include "cache_internal.h"

#define COMP "cache"
#define ARENA_ALIGN (2u << 20) /* x86-64 huge page */
#define POPULATE_STEP (64u << 20)

/* ---- bitmaps ---- */

/*
 * Copy blocks first..first+n-1 whose bit in bm equals `set` from src to dst
 * (both starting at block `first`). One memcpy per run, not per block: a
 * cold 4 MiB fill is 8192 blocks of 512 bytes.
 */
void cache_copy_blocks(const struct cache *c, const uint64_t *bm, bool set, uint8_t *dst,
		       const uint8_t *src, uint32_t first, uint32_t n)
{
	uint32_t i = 0;

	while (i < n) {
		uint32_t j = i + 1;

		if (bm_test(bm, first + i) != set) {
			i++;
			continue;
		}
		while (j < n && bm_test(bm, first + j) == set) {
			j++;
		}
		memcpy(dst + (size_t)i * c->bs, src + (size_t)i * c->bs, (size_t)(j - i) * c->bs);
		i = j;
	}
}

/* ---- lists and hash ---- */

void cache_list_del(struct cache *c, struct centry *e)
{
	struct centry **head, **tail;

	switch (e->list) {
	case L_FREE:
		head = &c->free_head;
		tail = &c->free_tail;
		break;
	case L_CLEAN:
		head = &c->clean_head;
		tail = &c->clean_tail;
		break;
	case L_DIRTY:
		head = &c->dirty_head;
		tail = &c->dirty_tail;
		c->ndirty_slots--;
		break;
	default:
		return;
	}
	if (e->lprev) {
		e->lprev->lnext = e->lnext;
	} else {
		*head = e->lnext;
	}
	if (e->lnext) {
		e->lnext->lprev = e->lprev;
	} else {
		*tail = e->lprev;
	}
	e->lprev = e->lnext = NULL;
	e->list = L_NONE;
}

void cache_list_add_tail(struct cache *c, struct centry *e, enum elist l)
{
	struct centry **head, **tail;

	cache_list_del(c, e);
	if (l == L_FREE) {
		head = &c->free_head;
		tail = &c->free_tail;
	} else if (l == L_CLEAN) {
		head = &c->clean_head;
		tail = &c->clean_tail;
	} else {
		head = &c->dirty_head;
		tail = &c->dirty_tail;
		c->ndirty_slots++;
	}
	e->lprev = *tail;
	e->lnext = NULL;
	if (*tail) {
		(*tail)->lnext = e;
	} else {
		*head = e;
	}
	*tail = e;
	e->list = l;
}

uint32_t cache_hash_idx(const struct cache *c, uint64_t idx)
{
	return (uint32_t)((idx * 0x9E3779B97F4A7C15ull) >> 32) & c->hmask;
}

struct centry *cache_lookup(struct cache *c, uint64_t idx)
{
	for (struct centry *e = c->hash[cache_hash_idx(c, idx)]; e; e = e->hnext) {
		if (e->idx == idx) {
			return e;
		}
	}
	return NULL;
}

void cache_hash_del(struct cache *c, struct centry *e)
{
	struct centry **pp = &c->hash[cache_hash_idx(c, e->idx)];

	while (*pp && *pp != e) {
		pp = &(*pp)->hnext;
	}
	if (*pp) {
		*pp = e->hnext;
	}
	e->hnext = NULL;
}

void cache_entry_reset(struct cache *c, struct centry *e, uint64_t idx)
{
	memset(e->valid, 0, c->words * sizeof(uint64_t));
	memset(e->dirty, 0, c->words * sizeof(uint64_t));
	e->nvalid = e->ndirty = 0;
	e->gen = 0;
	e->dirty_seq = UINT64_MAX;
	e->fails = 0;
	e->retry_at_ms = 0;
	e->idx = idx;
	e->used = true;
	e->hnext = c->hash[cache_hash_idx(c, idx)];
	c->hash[cache_hash_idx(c, idx)] = e;
}

/* A free slot, or the least recently used clean unpinned one; NULL if none. */
struct centry *cache_slot_get(struct cache *c, uint64_t idx)
{
	struct centry *e = c->free_head;

	if (!e) {
		for (e = c->clean_head; e && e->pins; e = e->lnext) {
		}
		if (!e) {
			return NULL;
		}
		cache_hash_del(c, e);
		c->stats.evictions++;
	}
	cache_list_del(c, e);
	cache_entry_reset(c, e, idx);
	return e;
}

void cache_entry_drop(struct cache *c, struct centry *e)
{
	if (e->ndirty) {
		c->dirty_blocks -= e->ndirty;
	}
	e->ndirty = 0;
	e->dirty_seq = UINT64_MAX;
	cache_hash_del(c, e);
	e->used = false;
	cache_list_add_tail(c, e, L_FREE);
}

/* ---- the arena ---- */

/*
 * Chunks are filled and evicted whole, megabytes at a time. Faulting the
 * arena in on first use cost a page fault and a page clear per 4 KiB (a third
 * of the daemon's CPU on a cold read), and even with huge pages their
 * allocation stalled reads unpredictably. So the arena is made resident once,
 * like a database's buffer pool, on its own thread so that opening a LUN
 * never blocks the reactor for it (about 1 s per GiB here); reads and writes
 * meanwhile fault their pages in themselves. RSS is then the bound of
 * docs/DURABILITY.md "Memory" from the start, not only under load.
 */
void *cache_populate_main(void *arg)
{
	struct cache *c = arg;
	uint64_t t0 = reactor_now_ms();
	size_t off;

	for (off = 0; off < c->arena_len && !atomic_load(&c->pop_stop); off += POPULATE_STEP) {
		size_t n = c->arena_len - off < POPULATE_STEP ? c->arena_len - off : POPULATE_STEP;

		if (madvise(c->arena + off, n, MADV_POPULATE_WRITE) != 0) {
			/* EINVAL: a kernel before 5.14; pages then come on first use. */
			if (errno != EINVAL) {
				LOG_WARN(
				    COMP, "%s: only %zu of %zu MiB of the cache made resident: %s",
				    c->lower->uri, off >> 20, c->arena_len >> 20, strerror(errno));
			}
			return NULL;
		}
	}
	if (off >= c->arena_len) {
		LOG_INFO(COMP, "%s: cache memory resident: %zu MiB in %" PRIu64 " ms",
			 c->lower->uri, c->arena_len >> 20, reactor_now_ms() - t0);
	}
	return NULL;
}

int cache_alloc(struct cache *c, char *err, size_t errlen)
{
	uint64_t *bits;
	uint32_t hsize = 1;
	size_t nbuf = (size_t)c->nslots + c->nups + c->nfills;

	c->arena_len = nbuf * c->chunk;
	c->map_len = c->arena_len + ARENA_ALIGN;
	c->map = mmap(NULL, c->map_len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (c->map == MAP_FAILED) {
		c->map = NULL;
		snprintf(err, errlen, "cache: cannot map %zu bytes for the cache", c->map_len);
		return -ENOMEM;
	}
	/*
	 * Huge pages where the kernel allows them (advice: harmless if not); see
	 * cache_populate_main().
	 */
	c->arena =
	    (uint8_t *)(((uintptr_t)c->map + ARENA_ALIGN - 1) & ~(uintptr_t)(ARENA_ALIGN - 1));
	(void)madvise(c->arena, c->arena_len, MADV_HUGEPAGE);
	while (hsize < c->nslots * 2) {
		hsize <<= 1;
	}
	c->hmask = hsize - 1;
	c->hash = calloc(hsize, sizeof(*c->hash));
	c->e = calloc(c->nslots, sizeof(*c->e));
	bits = calloc((size_t)c->nslots * 2 * c->words, sizeof(uint64_t));
	c->ups = calloc(c->nups, sizeof(*c->ups));
	c->fills = calloc(c->nfills, sizeof(*c->fills));
	if (!c->hash || !c->e || !bits || !c->ups || !c->fills) {
		free(bits);
		snprintf(err, errlen, "cache: out of memory");
		return -ENOMEM;
	}
	for (uint32_t s = 0; s < c->nslots; s++) {
		struct centry *e = &c->e[s];
		e->c = c;
		e->slot = s;
		e->buf = c->arena + (size_t)s * c->chunk;
		e->valid = bits + (size_t)s * 2 * c->words;
		e->dirty = e->valid + c->words;
		e->dirty_seq = UINT64_MAX;
		cache_list_add_tail(c, e, L_FREE);
	}
	for (unsigned i = 0; i < c->nups; i++) {
		c->ups[i].c = c;
		c->ups[i].buf = c->arena + ((size_t)c->nslots + i) * c->chunk;
	}
	for (unsigned i = 0; i < c->nfills; i++) {
		c->fills[i].c = c;
		c->fills[i].buf = c->arena + ((size_t)c->nslots + c->nups + i) * c->chunk;
	}
	return 0;
}
