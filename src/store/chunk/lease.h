/*
 * lease.h - one writer per volume: the lease object (lease.c). Private to src/store.
 */
#ifndef S3TGT_STORE_CHUNK_LEASE_H
#define S3TGT_STORE_CHUNK_LEASE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct objstore;
struct reactor;
struct chunk_lease;

#define CHUNK_LEASE_KEY "lease"
#define CHUNK_LEASE_HOLDER_MAX 64
#define CHUNK_LEASE_RENEW_MS 30000u
#define CHUNK_LEASE_RENEW_MS_MIN 100u
#define CHUNK_LEASE_RENEW_MS_MAX 3600000u
#define CHUNK_LEASE_RELEASE_MS 5000u

/* The LUN options of the lease (docs/OBJECT-FORMAT.md). */
struct chunk_lease_opts {
	const char *holder; /* borrowed; NULL: a random one, so only break_lease=1 takes it
			       back after a crash */
	bool break_lease;   /* take over a lease held by another holder */
	unsigned renew_ms;  /* how often the lease is rewritten */
};

/*
 * Take the lease of the volume on os (borrowed; must outlive the lease).
 * Renewal runs on r (NULL: none). Synchronous, at open. Returns 0, -EBUSY
 * (held by another holder; message in err) or another -errno.
 */
int chunk_lease_take(struct objstore *os, struct reactor *r, const struct chunk_lease_opts *o,
		     const char *what, struct chunk_lease **out, char *err, size_t errlen);
/* Mark the lease released (synchronous PUT) and free it. NULL is a no-op. */
void chunk_lease_release(struct chunk_lease *l);
/*
 * The same without blocking, for a close while the reactor runs (an LU
 * deleted during an S3 outage must not stall the others for the release's
 * retries): the PUT is submitted, and once it finished l is freed and
 * done(arg) runs as a reactor message, outside the object store's callback,
 * so done may destroy the store. Returns 0, or -ENOMEM (l untouched: release
 * it synchronously).
 */
int chunk_lease_release_async(struct chunk_lease *l, void (*done)(void *), void *arg);
const char *chunk_lease_holder(const struct chunk_lease *l);
/* The lease taken was this holder's own (released or held): no other writer since. */
bool chunk_lease_resumed(const struct chunk_lease *l);
/*
 * Rewrite the lease now (compare-and-swap; asynchronous, on the reactor).
 * The timer does this every renew_ms; a no-op while a renewal
 * is in flight or once the lease is lost.
 */
void chunk_lease_renew(struct chunk_lease *l);
/*
 * Another holder took the lease over (found at a renewal): the volume is no
 * longer ours to write. Stays true until the store is reopened.
 */
bool chunk_lease_lost(const struct chunk_lease *l);
/*
 * May the volume be written now? Only while the lease is known to be ours:
 * a write that proved it (the take, a renewal) was sent less than 1.5
 * renewal periods ago. A daemon that was stopped or cut off from S3 for
 * longer (the lease may have been broken meanwhile) must renew first, so
 * that its held-back writes never land over a new holder's. False once lost.
 */
bool chunk_lease_confirmed(const struct chunk_lease *l);
/*
 * Until when (reactor_now_ms) it is confirmed: 0 once lost. For
 * obj_req.valid_until; valid as long as the lease.
 */
const _Atomic uint64_t *chunk_lease_valid_until(const struct chunk_lease *l);
/*
 * fn(arg, status) runs on the reactor when a renewal ends: 0 (the lease is
 * confirmed ours), -EROFS (lost) or the error that ended it. NULL: none.
 * Cleared by the release.
 */
void chunk_lease_set_notify(struct chunk_lease *l, void (*fn)(void *arg, int status), void *arg);
/* 32 random hex digits into buf (>= 33 bytes). */
int chunk_lease_holder_random(char *buf, size_t len);

#endif
