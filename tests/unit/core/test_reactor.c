/*
 * test_reactor.c - message ordering, timers, fd events, stale events, stop.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "s3tgt/core.h"

struct order_ctx {
	struct reactor *r;
	int seen[64];
	int n;
	int stop_at;
};

struct order_item {
	struct order_ctx *ctx;
	int id;
};

static void record(void *arg)
{
	struct order_item *it = arg;
	struct order_ctx *c = it->ctx;

	c->seen[c->n++] = it->id;
	if (c->n == c->stop_at) {
		reactor_stop(c->r);
	}
}

static void test_post_fifo(void **state)
{
	struct order_ctx c = {.stop_at = 10};
	struct order_item items[10];

	assert_int_equal(reactor_create(&c.r), 0);
	for (int i = 0; i < 10; i++) {
		items[i] = (struct order_item){.ctx = &c, .id = i};
		assert_int_equal(reactor_post(c.r, record, &items[i]), 0);
	}
	assert_int_equal(c.n, 0); /* never synchronous */
	assert_int_equal(reactor_run(c.r), 0);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(c.seen[i], i);
	}
	reactor_destroy(c.r);
}

/* A post from the reactor thread itself must not run inside reactor_post(). */
struct inline_ctx {
	struct reactor *r;
	bool inner_ran;
	bool ran_inside;
};

static void inner(void *arg)
{
	struct inline_ctx *c = arg;

	c->inner_ran = true;
	reactor_stop(c->r);
}

static void outer(void *arg)
{
	struct inline_ctx *c = arg;

	assert_true(reactor_is_current(c->r));
	assert_int_equal(reactor_post(c->r, inner, c), 0);
	c->ran_inside = c->inner_ran;
}

static void test_post_from_reactor_not_inline(void **state)
{
	struct inline_ctx c = {0};

	assert_int_equal(reactor_create(&c.r), 0);
	assert_false(reactor_is_current(c.r));
	assert_int_equal(reactor_post(c.r, outer, &c), 0);
	assert_int_equal(reactor_run(c.r), 0);
	assert_true(c.inner_ran);
	assert_false(c.ran_inside);
	reactor_destroy(c.r);
}

/* Many threads posting concurrently: each thread's messages arrive in order, none lost. */
#define POSTERS 4
#define PER_POSTER 20000

struct mt_ctx {
	struct reactor *r;
	int last[POSTERS];
	int total;
	bool out_of_order;
};

struct mt_msg {
	struct mt_ctx *c;
	int thread;
	int seq;
};

static struct mt_msg g_mt_msgs[POSTERS][PER_POSTER];

static void mt_recv(void *arg)
{
	struct mt_msg *m = arg;
	struct mt_ctx *c = m->c;

	if (m->seq != c->last[m->thread] + 1) {
		c->out_of_order = true;
	}
	c->last[m->thread] = m->seq;
	if (++c->total == POSTERS * PER_POSTER) {
		reactor_stop(c->r);
	}
}

struct poster_arg {
	struct mt_ctx *c;
	int thread;
};

static void *poster(void *p)
{
	struct poster_arg *a = p;

	for (int i = 0; i < PER_POSTER; i++) {
		struct mt_msg *m = &g_mt_msgs[a->thread][i];
		*m = (struct mt_msg){.c = a->c, .thread = a->thread, .seq = i};
		while (reactor_post(a->c->r, mt_recv, m) != 0) {
		}
	}
	return NULL;
}

static void test_post_multithread(void **state)
{
	struct mt_ctx c = {0};
	pthread_t th[POSTERS];
	struct poster_arg args[POSTERS];

	assert_int_equal(reactor_create(&c.r), 0);
	for (int i = 0; i < POSTERS; i++) {
		c.last[i] = -1;
		args[i] = (struct poster_arg){.c = &c, .thread = i};
		assert_int_equal(pthread_create(&th[i], NULL, poster, &args[i]), 0);
	}
	assert_int_equal(reactor_run(c.r), 0);
	for (int i = 0; i < POSTERS; i++) {
		pthread_join(th[i], NULL);
	}
	assert_int_equal(c.total, POSTERS * PER_POSTER);
	assert_false(c.out_of_order);
	reactor_destroy(c.r);
}

/* A message that re-posts itself forever must not starve fd events. */
struct starve_ctx {
	struct reactor *r;
	int pipefd[2];
	int reposts;
	bool fd_seen;
};

static void repost(void *arg)
{
	struct starve_ctx *c = arg;

	c->reposts++;
	if (!c->fd_seen && c->reposts < 1000000) {
		assert_int_equal(reactor_post(c->r, repost, c), 0);
	} else {
		reactor_stop(c->r);
	}
}

static void starve_fd(void *arg, uint32_t events)
{
	struct starve_ctx *c = arg;
	char b;

	assert_true(events & EPOLLIN);
	assert_int_equal(read(c->pipefd[0], &b, 1), 1);
	c->fd_seen = true;
}

static void test_repost_does_not_starve_io(void **state)
{
	struct starve_ctx c = {0};

	assert_int_equal(reactor_create(&c.r), 0);
	assert_int_equal(pipe(c.pipefd), 0);
	assert_int_equal(reactor_add_fd(c.r, c.pipefd[0], EPOLLIN, starve_fd, &c), 0);
	assert_int_equal(reactor_post(c.r, repost, &c), 0);
	assert_int_equal(write(c.pipefd[1], "x", 1), 1);
	assert_int_equal(reactor_run(c.r), 0);
	assert_true(c.fd_seen);
	assert_true(c.reposts < 10);
	assert_int_equal(reactor_del_fd(c.r, c.pipefd[0]), 0);
	close(c.pipefd[0]);
	close(c.pipefd[1]);
	reactor_destroy(c.r);
}

/* fd callback deleting another fd that is ready in the same epoll batch. */
struct pair_ctx {
	struct reactor *r;
	int a[2];
	int b[2];
	int calls_a;
	int calls_b;
	int rounds;
};

static void on_a(void *arg, uint32_t events);
static void on_b(void *arg, uint32_t events);

static void kill_other(struct pair_ctx *c, int victim)
{
	/* Its event may already sit in this epoll batch; the reactor must skip it. */
	assert_int_equal(reactor_del_fd(c->r, victim), 0);
}

static void on_a(void *arg, uint32_t events)
{
	struct pair_ctx *c = arg;
	char ch;

	c->calls_a++;
	assert_int_equal(read(c->a[0], &ch, 1), 1);
	if (c->calls_b == 0) {
		kill_other(c, c->b[0]);
	}
}

static void on_b(void *arg, uint32_t events)
{
	struct pair_ctx *c = arg;
	char ch;

	c->calls_b++;
	assert_int_equal(read(c->b[0], &ch, 1), 1);
	if (c->calls_a == 0) {
		kill_other(c, c->a[0]);
	}
}

static void stop_msg(void *arg)
{
	reactor_stop(arg);
}

static void test_delete_other_fd_in_batch(void **state)
{
	struct pair_ctx c = {0};
	struct reactor_timer *t;

	assert_int_equal(reactor_create(&c.r), 0);
	assert_int_equal(pipe(c.a), 0);
	assert_int_equal(pipe(c.b), 0);
	assert_int_equal(reactor_add_fd(c.r, c.a[0], EPOLLIN, on_a, &c), 0);
	assert_int_equal(reactor_add_fd(c.r, c.b[0], EPOLLIN, on_b, &c), 0);
	assert_int_equal(write(c.a[1], "x", 1), 1);
	assert_int_equal(write(c.b[1], "x", 1), 1);
	t = reactor_timer_add(c.r, 20, false, stop_msg, c.r);
	assert_non_null(t);
	assert_int_equal(reactor_run(c.r), 0);
	/* Exactly one of the two ran; the other's event in the same batch was skipped. */
	assert_int_equal(c.calls_a + c.calls_b, 1);
	reactor_del_fd(c.r, c.calls_a ? c.a[0] : c.b[0]);
	close(c.a[0]);
	close(c.a[1]);
	close(c.b[0]);
	close(c.b[1]);
	reactor_destroy(c.r);
}

static void test_fd_add_errors(void **state)
{
	struct reactor *r;
	int p[2];

	assert_int_equal(reactor_create(&r), 0);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(reactor_add_fd(r, p[0], EPOLLIN, on_a, NULL), 0);
	assert_int_equal(reactor_add_fd(r, p[0], EPOLLIN, on_a, NULL), -EEXIST);
	assert_int_equal(reactor_mod_fd(r, p[0], EPOLLIN | EPOLLOUT), 0);
	assert_int_equal(reactor_del_fd(r, p[0]), 0);
	assert_int_equal(reactor_del_fd(r, p[0]), -ENOENT);
	assert_int_equal(reactor_mod_fd(r, p[0], EPOLLIN), -ENOENT);
	assert_int_equal(reactor_add_fd(r, -1, EPOLLIN, on_a, NULL), -EINVAL);
	close(p[0]);
	close(p[1]);
	reactor_destroy(r);
}

/* EPOLLOUT is level-triggered: it keeps firing until the callback drops it. */
struct out_ctx {
	struct reactor *r;
	int fd;
	int calls;
};

static void on_out(void *arg, uint32_t events)
{
	struct out_ctx *c = arg;

	assert_true(events & EPOLLOUT);
	if (++c->calls == 3) {
		assert_int_equal(reactor_mod_fd(c->r, c->fd, EPOLLIN), 0);
		assert_int_equal(reactor_post(c->r, stop_msg, c->r), 0);
	}
}

static void test_level_triggered(void **state)
{
	struct out_ctx c = {0};
	int p[2];

	assert_int_equal(reactor_create(&c.r), 0);
	assert_int_equal(pipe(p), 0);
	c.fd = p[1];
	assert_int_equal(reactor_add_fd(c.r, p[1], EPOLLOUT, on_out, &c), 0);
	assert_int_equal(reactor_run(c.r), 0);
	assert_int_equal(c.calls, 3);
	assert_int_equal(reactor_del_fd(c.r, p[1]), 0);
	close(p[0]);
	close(p[1]);
	reactor_destroy(c.r);
}

/* ---- timers ---- */

struct timer_ctx {
	struct reactor *r;
	int order[8];
	int n;
	int periodic_hits;
	struct reactor_timer *periodic;
	struct reactor_timer *victim;
	uint64_t start_ms;
	uint64_t fired_ms[8];
};

struct timer_item {
	struct timer_ctx *c;
	int id;
};

static void timer_record(void *arg)
{
	struct timer_item *it = arg;

	it->c->fired_ms[it->c->n] = reactor_now_ms();
	it->c->order[it->c->n++] = it->id;
}

static void timer_stop(void *arg)
{
	struct timer_ctx *c = arg;

	reactor_stop(c->r);
}

static void test_timers_order_and_delay(void **state)
{
	struct timer_ctx c = {0};
	struct timer_item it[3];

	assert_int_equal(reactor_create(&c.r), 0);
	for (int i = 0; i < 3; i++) {
		it[i] = (struct timer_item){.c = &c, .id = i};
	}
	c.start_ms = reactor_now_ms();
	assert_non_null(reactor_timer_add(c.r, 30, false, timer_record, &it[2]));
	assert_non_null(reactor_timer_add(c.r, 10, false, timer_record, &it[0]));
	assert_non_null(reactor_timer_add(c.r, 20, false, timer_record, &it[1]));
	assert_non_null(reactor_timer_add(c.r, 40, false, timer_stop, &c));
	assert_int_equal(reactor_run(c.r), 0);
	assert_int_equal(c.n, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(c.order[i], i);
		assert_true(c.fired_ms[i] >= c.start_ms + 10u * (unsigned)(i + 1));
	}
	reactor_destroy(c.r);
}

static void periodic_tick(void *arg)
{
	struct timer_ctx *c = arg;

	if (++c->periodic_hits == 5) {
		reactor_timer_cancel(c->r, c->periodic); /* cancel from its own callback */
		assert_non_null(reactor_timer_add(c->r, 15, false, timer_stop, c));
	}
}

static void never(void *arg)
{
	fail_msg("cancelled timer fired");
}

static void test_periodic_and_cancel(void **state)
{
	struct timer_ctx c = {0};
	struct reactor_timer *t;

	assert_int_equal(reactor_create(&c.r), 0);
	c.periodic = reactor_timer_add(c.r, 2, true, periodic_tick, &c);
	assert_non_null(c.periodic);
	t = reactor_timer_add(c.r, 5, false, never, NULL);
	assert_non_null(t);
	reactor_timer_cancel(c.r, t);
	assert_int_equal(reactor_run(c.r), 0);
	assert_int_equal(c.periodic_hits, 5);
	reactor_destroy(c.r);
}

/* One-shot timers left pending at destroy are freed (ASan checks for leaks). */
static void test_destroy_with_pending(void **state)
{
	struct reactor *r;
	int x = 0;

	assert_int_equal(reactor_create(&r), 0);
	assert_non_null(reactor_timer_add(r, 100000, false, never, NULL));
	assert_non_null(reactor_timer_add(r, 1000, true, never, NULL));
	assert_int_equal(reactor_post(r, never, &x), 0);
	reactor_destroy(r);
	reactor_destroy(NULL);
}

/* ---- stop from another thread ---- */

static void *stopper(void *p)
{
	usleep(20000);
	reactor_stop(p);
	return NULL;
}

static void test_stop_from_thread_and_rerun(void **state)
{
	struct reactor *r;
	pthread_t th;
	struct order_ctx c = {.stop_at = 1};
	struct order_item it = {.ctx = &c, .id = 7};

	assert_int_equal(reactor_create(&r), 0);
	assert_int_equal(pthread_create(&th, NULL, stopper, r), 0);
	assert_int_equal(reactor_run(r), 0);
	pthread_join(th, NULL);
	/* The reactor can run again after a stop. */
	c.r = r;
	assert_int_equal(reactor_post(r, record, &it), 0);
	assert_int_equal(reactor_run(r), 0);
	assert_int_equal(c.seen[0], 7);
	reactor_destroy(r);
}

static struct reactor *g_sig_reactor;

static void on_alarm(int sig)
{
	reactor_stop(g_sig_reactor);
}

static void test_stop_from_signal_handler(void **state)
{
	struct sigaction sa = {.sa_handler = on_alarm};
	struct itimerval it = {.it_value = {.tv_usec = 20000}};

	assert_int_equal(reactor_create(&g_sig_reactor), 0);
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
	assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
	assert_int_equal(reactor_run(g_sig_reactor), 0);
	signal(SIGALRM, SIG_DFL);
	reactor_destroy(g_sig_reactor);
}

/* ---- owner completion queues ---- */

#define QPUSHERS 4
#define QPER 2000

struct q_ctx {
	struct reactor *r;
	struct reactor_queue *q;
	struct reactor_node nodes[QPUSHERS][QPER];
	int last[QPUSHERS];
	int total;
	int stop_at;
	bool out_of_order;
	bool other_thread;
	pthread_t owner;
};

struct q_item {
	struct q_ctx *c;
	int thread;
	int seq;
};

static struct q_item g_items[QPUSHERS][QPER];

static void q_run(void *arg)
{
	struct q_item *it = arg;
	struct q_ctx *c = it->c;

	if (it->seq != c->last[it->thread] + 1) {
		c->out_of_order = true;
	}
	c->last[it->thread] = it->seq;
	if (!pthread_equal(pthread_self(), c->owner)) {
		c->other_thread = true;
	}
	if (++c->total == c->stop_at) {
		reactor_stop(c->r);
	}
}

static void *q_pusher(void *arg)
{
	struct q_item *items = arg;
	struct q_ctx *c = items[0].c;

	for (int i = 0; i < QPER; i++) {
		c->nodes[items[i].thread][i].arg = &items[i];
		reactor_queue_push(c->q, &c->nodes[items[i].thread][i]);
		if (i % 256 == 0) {
			usleep(100);
		}
	}
	return NULL;
}

static void q_setup(struct q_ctx *c)
{
	memset(c, 0, sizeof(*c));
	c->owner = pthread_self();
	assert_int_equal(reactor_create(&c->r), 0);
	assert_int_equal(reactor_queue_create(c->r, q_run, &c->q), 0);
	assert_int_equal(reactor_queue_pending(c->q), 0);
	for (int i = 0; i < QPUSHERS * QPER; i++) {
		reactor_queue_expect(c->q);
	}
	for (int t = 0; t < QPUSHERS; t++) {
		c->last[t] = -1;
		for (int i = 0; i < QPER; i++) {
			g_items[t][i] = (struct q_item){.c = c, .thread = t, .seq = i};
		}
	}
}

/* The reactor runs what other threads push, in each pusher's order, on its thread. */
static void test_queue_on_reactor(void **state)
{
	static struct q_ctx c;
	pthread_t th[QPUSHERS];

	(void)state;
	q_setup(&c);
	c.stop_at = QPUSHERS * QPER;
	for (int t = 0; t < QPUSHERS; t++) {
		assert_int_equal(pthread_create(&th[t], NULL, q_pusher, g_items[t]), 0);
	}
	assert_int_equal(reactor_run(c.r), 0);
	for (int t = 0; t < QPUSHERS; t++) {
		pthread_join(th[t], NULL);
	}
	assert_int_equal(c.total, QPUSHERS * QPER);
	assert_false(c.out_of_order);
	assert_false(c.other_thread);
	reactor_queue_destroy(c.q);
	reactor_destroy(c.r);
}

/*
 * The owner drains its queue itself with the reactor not running: run(wait)
 * blocks until a node arrives, drain until every expected node has run;
 * destroy runs what is left.
 */
static void test_queue_owner_drains(void **state)
{
	static struct q_ctx c;
	pthread_t th[QPUSHERS];

	(void)state;
	q_setup(&c);
	reactor_queue_run(c.q, false); /* nothing queued: returns at once */
	assert_int_equal(c.total, 0);
	for (int t = 0; t < QPUSHERS; t++) {
		assert_int_equal(pthread_create(&th[t], NULL, q_pusher, g_items[t]), 0);
	}
	reactor_queue_run(c.q, true);
	assert_true(c.total > 0);
	assert_int_equal(reactor_queue_pending(c.q), QPUSHERS * QPER - c.total);
	reactor_queue_drain(c.q);
	assert_int_equal(c.total, QPUSHERS * QPER);
	assert_int_equal(reactor_queue_pending(c.q), 0);
	reactor_queue_drain(c.q); /* nothing expected: returns at once */
	for (int t = 0; t < QPUSHERS; t++) {
		pthread_join(th[t], NULL);
	}
	assert_false(c.out_of_order);
	assert_false(c.other_thread);
	g_items[0][0].seq = QPER; /* one more from the owner, left for destroy */
	c.nodes[0][0].arg = &g_items[0][0];
	reactor_queue_expect(c.q);
	reactor_queue_push(c.q, &c.nodes[0][0]);
	reactor_queue_destroy(c.q);
	assert_int_equal(c.total, QPUSHERS * QPER + 1);
	assert_false(c.out_of_order);
	reactor_destroy(c.r);
}

static void test_clock(void **state)
{
	uint64_t a = reactor_now_ns();
	uint64_t b = reactor_now_ns();

	assert_true(b >= a);
	assert_true(reactor_now_ms() >= a / 1000000u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_post_fifo),
	    cmocka_unit_test(test_post_from_reactor_not_inline),
	    cmocka_unit_test(test_post_multithread),
	    cmocka_unit_test(test_repost_does_not_starve_io),
	    cmocka_unit_test(test_delete_other_fd_in_batch),
	    cmocka_unit_test(test_fd_add_errors),
	    cmocka_unit_test(test_level_triggered),
	    cmocka_unit_test(test_timers_order_and_delay),
	    cmocka_unit_test(test_periodic_and_cancel),
	    cmocka_unit_test(test_destroy_with_pending),
	    cmocka_unit_test(test_stop_from_thread_and_rerun),
	    cmocka_unit_test(test_stop_from_signal_handler),
	    cmocka_unit_test(test_queue_on_reactor),
	    cmocka_unit_test(test_queue_owner_drains),
	    cmocka_unit_test(test_clock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
