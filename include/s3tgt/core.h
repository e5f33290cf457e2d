/*
 * core.h - the event-driven core: reactor (epoll + eventfd + timerfd),
 * cross-thread messages, timers, a worker thread pool, byte-order accessors
 * and CRC32C.
 *
 * Threading model: one reactor thread owns every connection, session, LU and
 * store object. Slow work (disk, S3) runs on other threads and comes back as a
 * message posted with reactor_post(), so nothing ever blocks the reactor.
 */
#ifndef S3TGT_CORE_H
#define S3TGT_CORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct reactor;
struct reactor_msg;
struct reactor_timer;
struct thread_pool;

typedef void (*reactor_fd_fn)(void *arg, uint32_t events); /* events: EPOLLIN|EPOLLOUT|... */
typedef void (*reactor_msg_fn)(void *arg);
typedef void (*reactor_timer_fn)(void *arg);
typedef void (*thread_pool_fn)(void *arg);

/* Returns 0 and a new reactor in *out, or -errno. */
int reactor_create(struct reactor **out);
/* destroy(NULL) is a no-op. Messages still queued are dropped. */
void reactor_destroy(struct reactor *r);

/* Watch fd (borrowed: the caller closes it after reactor_del_fd). Level-triggered. */
int reactor_add_fd(struct reactor *r, int fd, uint32_t events, reactor_fd_fn fn, void *arg);
int reactor_mod_fd(struct reactor *r, int fd, uint32_t events);
int reactor_del_fd(struct reactor *r, int fd);

/*
 * Thread-safe: queue fn(arg) to run on the reactor thread, in FIFO order,
 * never synchronously inside the call (also when called on the reactor thread,
 * which is how stores complete "later, on the submitting reactor").
 * Returns 0 or -ENOMEM.
 */
int reactor_post(struct reactor *r, reactor_msg_fn fn, void *arg);

/*
 * Reserve a message node up front so that a later post cannot fail: the
 * thread pool reserves at submit time and posts from a worker thread, where
 * an -ENOMEM would have nobody to report to; a store reserves the message
 * that finishes an asynchronous close. Returns NULL on allocation failure.
 */
struct reactor_msg *reactor_msg_alloc(struct reactor *r);
/* Post a reserved node (takes ownership; thread-safe). Never fails. */
void reactor_msg_post(struct reactor *r, struct reactor_msg *m, reactor_msg_fn fn, void *arg);
/* Return an unposted reserved node. */
void reactor_msg_free(struct reactor *r, struct reactor_msg *m);

/*
 * A completion queue of one owner (a store's back end): other threads push
 * nodes, and the reactor runs fn(node->arg) for each, in FIFO order, as it
 * runs messages. Unlike reactor_post(), the owner can also run what it has
 * outstanding itself: reactor_queue_run(q, true) blocks until at least one
 * node arrives, then runs every node pushed so far. That is how an owner
 * with work on other threads completes it before it frees itself; messages
 * posted with reactor_post() would sit in the reactor's queue, out of its
 * reach, and run after the owner is gone (or never, once the loop stopped).
 * The node is the caller's, so pushing cannot fail.
 *
 * The queue also counts what its owner awaits: reactor_queue_expect() when
 * work that will push a node is handed to another thread, and each node run
 * settles one. reactor_queue_pending() is that count, and
 * reactor_queue_drain() runs nodes until it is 0, which is how an owner
 * waits out its outstanding work before it frees itself.
 *
 * create, expect, pending, run, drain and destroy: reactor thread only (or
 * before the loop runs); push: any thread. destroy runs the nodes still
 * queued; the owner makes sure no producer pushes after that.
 */
struct reactor_queue;
struct reactor_node {
	struct reactor_node *next;
	void *arg;
};
int reactor_queue_create(struct reactor *r, reactor_msg_fn fn, struct reactor_queue **out);
void reactor_queue_push(struct reactor_queue *q, struct reactor_node *n);
void reactor_queue_expect(struct reactor_queue *q);
unsigned reactor_queue_pending(const struct reactor_queue *q);
void reactor_queue_run(struct reactor_queue *q, bool wait);
void reactor_queue_drain(struct reactor_queue *q);
void reactor_queue_destroy(struct reactor_queue *q);

/*
 * One-shot or periodic timer in milliseconds, reactor thread only. Returns a
 * new timer owned by the reactor until reactor_timer_cancel() (which frees it;
 * a one-shot timer that fired is freed by the reactor after fn returns, so
 * cancel it only before it fires).
 */
struct reactor_timer *reactor_timer_add(struct reactor *r, uint64_t ms, bool periodic,
					reactor_timer_fn fn, void *arg);
void reactor_timer_cancel(struct reactor *r, struct reactor_timer *t);

/* Monotonic clock in milliseconds and nanoseconds. */
uint64_t reactor_now_ms(void);
uint64_t reactor_now_ns(void);

/* Run until reactor_stop(); returns 0 or -errno on a fatal epoll error. */
int reactor_run(struct reactor *r);
/* Thread-safe (and async-signal-safe: it only writes an eventfd). */
void reactor_stop(struct reactor *r);
bool reactor_is_current(const struct reactor *r);

/*
 * Worker thread pool for blocking work (file I/O). work(arg) runs on a worker
 * thread; then done(arg) is posted to reactor r. Returns 0 or -errno (then
 * neither function runs).
 */
int thread_pool_create(unsigned nthreads, struct thread_pool **out);
void thread_pool_destroy(struct thread_pool *tp); /* drains queued work first */
int thread_pool_submit(struct thread_pool *tp, thread_pool_fn work, struct reactor *r,
		       reactor_msg_fn done, void *arg);

/*
 * Start a service thread with every signal blocked, so SIGTERM/SIGINT always
 * reach the daemon's signalfd on the reactor and never kill the process from
 * a worker, whatever mask the creating thread had. Returns 0 or -errno.
 */
int core_thread_spawn(pthread_t *thread, void *(*fn)(void *), void *arg);

/* Big-endian wire accessors (never cast wire bytes to wider types). */
static inline uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}
static inline uint32_t get_be24(const uint8_t *p)
{
	return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}
static inline uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}
static inline void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void put_be24(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 16);
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)v;
}
static inline void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}
static inline void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

/* CRC32C (Castagnoli) as iSCSI uses it (RFC 7143 13.1), via isa-l. */
uint32_t crc32c(uint32_t seed, const void *buf, size_t len);
/*
 * crc32c() is chainable: crc32c(crc32c(0, a), b) == crc32c(0, a||b), and
 * crc32c(0, "123456789", 9) == 0xE3069283. iSCSI puts the value on the wire
 * least significant byte first (RFC 3720 B.4: 32 zero bytes -> aa 36 91 8a).
 */
uint32_t iscsi_crc32c(const void *buf, size_t len); /* == crc32c(0, buf, len) */

/*
 * Parse a size with optional K/M/G/T suffix (powers of 1024). Returns 0 or
 * -EINVAL (bad syntax) / -ERANGE (overflow).
 */
int parse_size(const char *s, uint64_t *out);
/* strtoull wrapper: whole string must be a number in [min, max]. */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Value of a hex digit (either case), or -1. */
int hex_digit(char c);
/* Are all len bytes at p zero? (len 0: true) */
bool mem_is_zero(const void *p, size_t len);

#endif
