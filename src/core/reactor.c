/*
 * reactor.c - one event loop per thread: epoll (level-triggered) for fds, an
 * eventfd for cross-thread messages, a timerfd for timers.
 *
 * One round of reactor_run():
 *
 *     epoll_wait ──> fd callbacks ──> messages (one snapshot) ──> expired timers
 *          ^                                                            |
 *          └────────────────────────────────────────────────────────────┘
 *
 * Invariants:
 * - Messages run in the round after they were posted, never inside
 *   reactor_post(). Each round runs a snapshot of the queue, so a message that
 *   re-posts itself waits for the next round and cannot starve I/O.
 * - Messages from other threads go through `remote` (mutex) and wake the loop
 *   with one eventfd write per empty->signalled transition; messages posted on
 *   the reactor thread itself go through `local` (no lock, no syscall) and make
 *   the next epoll_wait non-blocking.
 * - epoll data carries (generation << 32 | fd). Deleting an fd bumps its
 *   generation, so an event already returned in the same epoll batch for an fd
 *   a callback just deleted (or deleted and re-added) is recognised as stale
 *   and skipped.
 * - Timers live in a min-heap on absolute CLOCK_MONOTONIC deadlines; the
 *   timerfd is armed for the earliest one (re-armed lazily: an early spurious
 *   expiry is harmless, a late one is not possible).
 */
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "s3tgt/core.h"

#define REACTOR_MAX_EVENTS 128
/* Recycled message nodes kept per free list; beyond this they go back to malloc. */
#define REACTOR_FREE_MAX 4096

struct reactor_msg {
	struct reactor_msg *next;
	reactor_msg_fn fn;
	void *arg;
};

struct msg_list {
	struct reactor_msg *head;
	struct reactor_msg *tail;
	size_t nfree; /* only used for free lists */
};

struct fd_slot {
	reactor_fd_fn fn; /* NULL: not registered */
	void *arg;
	uint32_t gen;
	uint32_t events;
};

struct reactor_timer {
	uint64_t deadline_ns;
	uint64_t period_ns; /* 0: one-shot */
	reactor_timer_fn fn;
	void *arg;
	size_t idx; /* position in the heap */
};

struct reactor {
	int epfd;
	int evfd;
	int tfd;
	atomic_bool stop;

	/*
	 * `lock` protects remote, remote_free and signalled. Lock order: it is a
	 * leaf lock, nothing is called while holding it.
	 */
	pthread_mutex_t lock;
	struct msg_list remote;
	struct msg_list remote_free;
	bool signalled; /* an eventfd write is pending for the remote queue */

	/* Reactor-thread only. */
	struct msg_list local;
	struct msg_list local_free;

	struct fd_slot *slots;
	size_t nslots;

	struct reactor_timer **heap;
	size_t nheap;
	size_t heap_cap;
	uint64_t armed_ns;	      /* deadline the timerfd is armed for, 0 = disarmed */
	struct reactor_timer *firing; /* one-shot timer whose fn is running */
};

/* reactor_stop() is called from signal handlers; only lock-free atomics are safe there. */
_Static_assert(ATOMIC_BOOL_LOCK_FREE == 2, "reactor stop flag must be lock-free");

static _Thread_local struct reactor *tl_current;

uint64_t reactor_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t reactor_now_ms(void)
{
	return reactor_now_ns() / 1000000ull;
}

bool reactor_is_current(const struct reactor *r)
{
	return tl_current == r;
}

static void list_append(struct msg_list *l, struct reactor_msg *m)
{
	m->next = NULL;
	if (l->tail) {
		l->tail->next = m;
	} else {
		l->head = m;
	}
	l->tail = m;
}

static struct reactor_msg *list_pop(struct msg_list *l)
{
	struct reactor_msg *m = l->head;

	if (m) {
		l->head = m->next;
		if (!l->head) {
			l->tail = NULL;
		}
		l->nfree--;
	}
	return m;
}

static void list_free_all(struct reactor_msg *m)
{
	while (m) {
		struct reactor_msg *next = m->next;
		free(m);
		m = next;
	}
}

int reactor_create(struct reactor **out)
{
	struct reactor *r = calloc(1, sizeof(*r));
	struct epoll_event ev = {.events = EPOLLIN};
	int rc;

	if (!r) {
		return -ENOMEM;
	}
	r->epfd = r->evfd = r->tfd = -1;
	rc = pthread_mutex_init(&r->lock, NULL);
	if (rc) {
		free(r);
		return -rc;
	}
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0) {
		goto err_errno;
	}
	r->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->evfd < 0) {
		goto err_errno;
	}
	r->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (r->tfd < 0) {
		goto err_errno;
	}
	ev.data.u64 = (uint64_t)(uint32_t)r->evfd;
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->evfd, &ev) != 0) {
		goto err_errno;
	}
	ev.data.u64 = (uint64_t)(uint32_t)r->tfd;
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->tfd, &ev) != 0) {
		goto err_errno;
	}
	atomic_init(&r->stop, false);
	*out = r;
	return 0;

err_errno:
	rc = -errno;
	reactor_destroy(r);
	return rc;
}

void reactor_destroy(struct reactor *r)
{
	if (!r) {
		return;
	}
	list_free_all(r->remote.head);
	list_free_all(r->remote_free.head);
	list_free_all(r->local.head);
	list_free_all(r->local_free.head);
	for (size_t i = 0; i < r->nheap; i++) {
		free(r->heap[i]);
	}
	free(r->heap);
	free(r->slots);
	if (r->tfd >= 0) {
		close(r->tfd);
	}
	if (r->evfd >= 0) {
		close(r->evfd);
	}
	if (r->epfd >= 0) {
		close(r->epfd);
	}
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* ---- fds ---- */

static int slots_reserve(struct reactor *r, int fd)
{
	size_t want = (size_t)fd + 1;
	size_t n = r->nslots ? r->nslots : 64;
	struct fd_slot *s;

	if (want <= r->nslots) {
		return 0;
	}
	while (n < want) {
		n *= 2;
	}
	s = realloc(r->slots, n * sizeof(*s));
	if (!s) {
		return -ENOMEM;
	}
	memset(s + r->nslots, 0, (n - r->nslots) * sizeof(*s));
	r->slots = s;
	r->nslots = n;
	return 0;
}

static uint64_t slot_data(int fd, uint32_t gen)
{
	return (uint64_t)gen << 32 | (uint32_t)fd;
}

int reactor_add_fd(struct reactor *r, int fd, uint32_t events, reactor_fd_fn fn, void *arg)
{
	struct epoll_event ev = {.events = events};
	struct fd_slot *s;
	int rc;

	if (fd < 0 || !fn || fd == r->evfd || fd == r->tfd || fd == r->epfd) {
		return -EINVAL;
	}
	rc = slots_reserve(r, fd);
	if (rc) {
		return rc;
	}
	s = &r->slots[fd];
	if (s->fn) {
		return -EEXIST;
	}
	s->gen++;
	ev.data.u64 = slot_data(fd, s->gen);
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		return -errno;
	}
	s->fn = fn;
	s->arg = arg;
	s->events = events;
	return 0;
}

int reactor_mod_fd(struct reactor *r, int fd, uint32_t events)
{
	struct epoll_event ev = {.events = events};
	struct fd_slot *s;

	if (fd < 0 || (size_t)fd >= r->nslots || !r->slots[fd].fn) {
		return -ENOENT;
	}
	s = &r->slots[fd];
	if (s->events == events) {
		return 0;
	}
	ev.data.u64 = slot_data(fd, s->gen);
	if (epoll_ctl(r->epfd, EPOLL_CTL_MOD, fd, &ev) != 0) {
		return -errno;
	}
	s->events = events;
	return 0;
}

int reactor_del_fd(struct reactor *r, int fd)
{
	struct fd_slot *s;
	int rc = 0;

	if (fd < 0 || (size_t)fd >= r->nslots || !r->slots[fd].fn) {
		return -ENOENT;
	}
	s = &r->slots[fd];
	if (epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL) != 0) {
		rc = -errno;
	}
	/* Forget the slot even if the fd was already closed: its events are stale now. */
	s->fn = NULL;
	s->arg = NULL;
	s->events = 0;
	s->gen++;
	return rc;
}

/* ---- messages ---- */

static void wake_fd(int efd)
{
	uint64_t one = 1;
	ssize_t n;

	do {
		n = write(efd, &one, sizeof(one));
	} while (n < 0 && errno == EINTR);
	/* EAGAIN means the counter is saturated, i.e. a wakeup is pending anyway. */
}

static void wake(struct reactor *r)
{
	wake_fd(r->evfd);
}

static struct reactor_msg *msg_get_remote_locked(struct reactor *r)
{
	struct reactor_msg *m = list_pop(&r->remote_free);

	return m ? m : malloc(sizeof(*m));
}

static void post_remote(struct reactor *r, struct reactor_msg *m)
{
	bool need_wake;

	pthread_mutex_lock(&r->lock);
	list_append(&r->remote, m);
	need_wake = !r->signalled;
	r->signalled = true;
	pthread_mutex_unlock(&r->lock);
	if (need_wake) {
		wake(r);
	}
}

int reactor_post(struct reactor *r, reactor_msg_fn fn, void *arg)
{
	struct reactor_msg *m;

	if (tl_current == r) {
		m = list_pop(&r->local_free);
		if (!m) {
			m = malloc(sizeof(*m));
			if (!m) {
				return -ENOMEM;
			}
		}
		m->fn = fn;
		m->arg = arg;
		list_append(&r->local, m);
		return 0;
	}

	pthread_mutex_lock(&r->lock);
	m = msg_get_remote_locked(r);
	if (!m) {
		pthread_mutex_unlock(&r->lock);
		return -ENOMEM;
	}
	m->fn = fn;
	m->arg = arg;
	list_append(&r->remote, m);
	if (r->signalled) {
		pthread_mutex_unlock(&r->lock);
		return 0;
	}
	r->signalled = true;
	pthread_mutex_unlock(&r->lock);
	wake(r);
	return 0;
}

struct reactor_msg *reactor_msg_alloc(struct reactor *r)
{
	struct reactor_msg *m;

	pthread_mutex_lock(&r->lock);
	m = msg_get_remote_locked(r);
	pthread_mutex_unlock(&r->lock);
	return m;
}

void reactor_msg_free(struct reactor *r, struct reactor_msg *m)
{
	if (!m) {
		return;
	}
	pthread_mutex_lock(&r->lock);
	if (r->remote_free.nfree < REACTOR_FREE_MAX) {
		list_append(&r->remote_free, m);
		r->remote_free.nfree++;
		m = NULL;
	}
	pthread_mutex_unlock(&r->lock);
	free(m);
}

void reactor_msg_post(struct reactor *r, struct reactor_msg *m, reactor_msg_fn fn, void *arg)
{
	m->fn = fn;
	m->arg = arg;
	if (tl_current == r) {
		list_append(&r->local, m);
	} else {
		post_remote(r, m);
	}
}

static void run_batch(struct reactor_msg *m)
{
	for (; m; m = m->next) {
		m->fn(m->arg);
	}
}

static void recycle(struct msg_list *fl, struct reactor_msg *head)
{
	while (head) {
		struct reactor_msg *next = head->next;
		if (fl->nfree < REACTOR_FREE_MAX) {
			list_append(fl, head);
			fl->nfree++;
		} else {
			free(head);
		}
		head = next;
	}
}

static void drain_messages(struct reactor *r, bool evfd_ready)
{
	struct reactor_msg *remote = NULL;
	struct reactor_msg *local = r->local.head;

	r->local.head = r->local.tail = NULL;
	if (evfd_ready) {
		uint64_t v;
		/*
		 * Consume the wakeup before taking the queue: a post racing with us
		 * then either lands in this snapshot or sees signalled == false and
		 * writes the eventfd again. The other order could lose a wakeup.
		 */
		if (read(r->evfd, &v, sizeof(v)) < 0) {
			/* EAGAIN: a previous round consumed it; nothing to do. */
		}
		pthread_mutex_lock(&r->lock);
		remote = r->remote.head;
		r->remote.head = r->remote.tail = NULL;
		r->signalled = false;
		pthread_mutex_unlock(&r->lock);
	}
	/*
	 * Remote first: messages posted before reactor_run() started (from any
	 * thread) then precede those the loop itself posted.
	 */
	if (remote) {
		run_batch(remote);
		pthread_mutex_lock(&r->lock);
		recycle(&r->remote_free, remote);
		pthread_mutex_unlock(&r->lock);
	}
	if (local) {
		run_batch(local);
		recycle(&r->local_free, local);
	}
}

/* ---- owner completion queues ---- */

struct reactor_queue {
	struct reactor *r;
	int efd;
	reactor_msg_fn fn;
	pthread_mutex_t lock; /* protects head, tail, signalled; leaf lock */
	struct reactor_node *head, *tail;
	bool signalled;	  /* an eventfd write is pending for head */
	unsigned pending; /* expected nodes not run yet; reactor thread only */
};

void reactor_queue_expect(struct reactor_queue *q)
{
	q->pending++;
}

unsigned reactor_queue_pending(const struct reactor_queue *q)
{
	return q->pending;
}

void reactor_queue_push(struct reactor_queue *q, struct reactor_node *n)
{
	bool need_wake;

	n->next = NULL;
	pthread_mutex_lock(&q->lock);
	if (q->tail) {
		q->tail->next = n;
	} else {
		q->head = n;
	}
	q->tail = n;
	need_wake = !q->signalled;
	q->signalled = true;
	pthread_mutex_unlock(&q->lock);
	if (need_wake) {
		wake_fd(q->efd);
	}
}

void reactor_queue_run(struct reactor_queue *q, bool wait)
{
	struct reactor_node *n;

	for (;;) {
		struct pollfd pfd = {.fd = q->efd, .events = POLLIN};
		uint64_t v;

		/* Consume the wakeup before taking the list (see drain_messages). */
		if (read(q->efd, &v, sizeof(v)) < 0) {
			/* EAGAIN: nothing was signalled since the last run. */
		}
		pthread_mutex_lock(&q->lock);
		n = q->head;
		q->head = q->tail = NULL;
		q->signalled = false;
		pthread_mutex_unlock(&q->lock);
		if (n || !wait) {
			break;
		}
		while (poll(&pfd, 1, -1) < 0 && errno == EINTR) {
		}
	}
	while (n) {
		struct reactor_node *next = n->next; /* fn may reuse n */

		assert(q->pending > 0);
		q->pending--;
		q->fn(n->arg);
		n = next;
	}
}

void reactor_queue_drain(struct reactor_queue *q)
{
	while (q->pending) {
		reactor_queue_run(q, true);
	}
}

static void queue_event(void *arg, uint32_t events)
{
	(void)events;
	reactor_queue_run(arg, false);
}

int reactor_queue_create(struct reactor *r, reactor_msg_fn fn, struct reactor_queue **out)
{
	struct reactor_queue *q = calloc(1, sizeof(*q));
	int rc;

	if (!q) {
		return -ENOMEM;
	}
	q->r = r;
	q->fn = fn;
	q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->efd < 0) {
		rc = -errno;
		free(q);
		return rc;
	}
	rc = reactor_add_fd(r, q->efd, EPOLLIN, queue_event, q);
	if (rc < 0) {
		close(q->efd);
		free(q);
		return rc;
	}
	pthread_mutex_init(&q->lock, NULL);
	*out = q;
	return 0;
}

void reactor_queue_destroy(struct reactor_queue *q)
{
	if (!q) {
		return;
	}
	reactor_queue_run(q, false);
	reactor_del_fd(q->r, q->efd);
	close(q->efd);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

/* ---- timers ---- */

static bool timer_less(const struct reactor_timer *a, const struct reactor_timer *b)
{
	return a->deadline_ns < b->deadline_ns;
}

static void heap_set(struct reactor *r, size_t i, struct reactor_timer *t)
{
	r->heap[i] = t;
	t->idx = i;
}

static void heap_up(struct reactor *r, size_t i)
{
	struct reactor_timer *t = r->heap[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!timer_less(t, r->heap[p])) {
			break;
		}
		heap_set(r, i, r->heap[p]);
		i = p;
	}
	heap_set(r, i, t);
}

static void heap_down(struct reactor *r, size_t i)
{
	struct reactor_timer *t = r->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= r->nheap) {
			break;
		}
		if (c + 1 < r->nheap && timer_less(r->heap[c + 1], r->heap[c])) {
			c++;
		}
		if (!timer_less(r->heap[c], t)) {
			break;
		}
		heap_set(r, i, r->heap[c]);
		i = c;
	}
	heap_set(r, i, t);
}

static void heap_remove(struct reactor *r, struct reactor_timer *t)
{
	size_t i = t->idx;
	struct reactor_timer *last = r->heap[--r->nheap];

	if (i == r->nheap) {
		return;
	}
	heap_set(r, i, last);
	heap_down(r, i);
	heap_up(r, last->idx);
}

static void timer_arm(struct reactor *r)
{
	struct itimerspec its = {0};
	uint64_t want = r->nheap ? r->heap[0]->deadline_ns : 0;

	if (want == r->armed_ns) {
		return;
	}
	if (want) {
		its.it_value.tv_sec = (time_t)(want / 1000000000ull);
		its.it_value.tv_nsec = (long)(want % 1000000000ull);
	}
	if (timerfd_settime(r->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0) {
		r->armed_ns = want;
	}
}

struct reactor_timer *reactor_timer_add(struct reactor *r, uint64_t ms, bool periodic,
					reactor_timer_fn fn, void *arg)
{
	struct reactor_timer *t;

	if (r->nheap == r->heap_cap) {
		size_t cap = r->heap_cap ? r->heap_cap * 2 : 16;
		struct reactor_timer **h = realloc(r->heap, cap * sizeof(*h));
		if (!h) {
			return NULL;
		}
		r->heap = h;
		r->heap_cap = cap;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		return NULL;
	}
	/* A zero period would make the timer due forever within one round. */
	if (periodic && ms == 0) {
		ms = 1;
	}
	t->deadline_ns = reactor_now_ns() + ms * 1000000ull;
	t->period_ns = periodic ? ms * 1000000ull : 0;
	t->fn = fn;
	t->arg = arg;
	r->heap[r->nheap] = t;
	t->idx = r->nheap++;
	heap_up(r, t->idx);
	if (r->heap[0] == t && (r->armed_ns == 0 || t->deadline_ns < r->armed_ns)) {
		timer_arm(r);
	}
	return t;
}

void reactor_timer_cancel(struct reactor *r, struct reactor_timer *t)
{
	if (!t) {
		return;
	}
	if (t == r->firing) {
		/* Cancelled from its own callback: the run loop must not free it again. */
		r->firing = NULL;
	} else {
		heap_remove(r, t);
	}
	free(t);
}

static void run_timers(struct reactor *r)
{
	uint64_t v;
	uint64_t now;

	if (read(r->tfd, &v, sizeof(v)) < 0) {
		/* EAGAIN: spurious wakeup after a re-arm; still check the heap. */
	}
	r->armed_ns = 0;
	now = reactor_now_ns();
	while (r->nheap && r->heap[0]->deadline_ns <= now) {
		struct reactor_timer *t = r->heap[0];

		if (t->period_ns) {
			t->deadline_ns += t->period_ns;
			if (t->deadline_ns <= now) {
				/* We fell behind (stalled loop): skip the missed ticks. */
				t->deadline_ns = now + t->period_ns;
			}
			heap_down(r, 0);
			t->fn(t->arg);
		} else {
			heap_remove(r, t);
			r->firing = t;
			t->fn(t->arg);
			if (r->firing == t) {
				free(t);
			}
			r->firing = NULL;
		}
	}
	timer_arm(r);
}

/* ---- loop ---- */

int reactor_run(struct reactor *r)
{
	struct epoll_event evs[REACTOR_MAX_EVENTS];
	struct reactor *prev = tl_current;
	int rc = 0;

	tl_current = r;
	while (!atomic_load_explicit(&r->stop, memory_order_acquire)) {
		bool msg = false;
		bool tmr = false;
		int timeout = r->local.head ? 0 : -1;
		int n = epoll_wait(r->epfd, evs, REACTOR_MAX_EVENTS, timeout);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			rc = -errno;
			break;
		}
		for (int i = 0; i < n; i++) {
			int fd = (int)(uint32_t)evs[i].data.u64;
			uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);
			struct fd_slot *s;

			if (fd == r->evfd) {
				msg = true;
				continue;
			}
			if (fd == r->tfd) {
				tmr = true;
				continue;
			}
			if ((size_t)fd >= r->nslots) {
				continue;
			}
			s = &r->slots[fd];
			if (!s->fn || s->gen != gen) {
				continue; /* deleted by an earlier callback of this batch */
			}
			s->fn(s->arg, evs[i].events);
		}
		drain_messages(r, msg);
		if (tmr) {
			run_timers(r);
		}
	}
	atomic_store_explicit(&r->stop, false, memory_order_relaxed);
	tl_current = prev;
	return rc;
}

void reactor_stop(struct reactor *r)
{
	/* May run in a signal handler: keep the interrupted code's errno. */
	int saved = errno;

	atomic_store_explicit(&r->stop, true, memory_order_release);
	wake(r);
	errno = saved;
}
