/*
 * test_threadpool.c - work runs on a worker, done on the reactor, destroy drains.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "s3tgt/core.h"

#define NJOBS 1000

struct job {
	struct reactor *r;
	pthread_t main_thread;
	bool worked_off_main;
	bool done_on_reactor;
	atomic_int *worked;
	int *done;
};

static void work(void *arg)
{
	struct job *j = arg;

	j->worked_off_main = !pthread_equal(pthread_self(), j->main_thread);
	atomic_fetch_add(j->worked, 1);
}

static void done(void *arg)
{
	struct job *j = arg;

	j->done_on_reactor =
	    reactor_is_current(j->r) && pthread_equal(pthread_self(), j->main_thread);
	if (++*j->done == NJOBS) {
		reactor_stop(j->r);
	}
}

static struct job g_jobs[NJOBS];

static void test_submit_and_done(void **state)
{
	struct reactor *r;
	struct thread_pool *tp;
	atomic_int worked = 0;
	int ndone = 0;

	assert_int_equal(reactor_create(&r), 0);
	assert_int_equal(thread_pool_create(4, &tp), 0);
	for (int i = 0; i < NJOBS; i++) {
		g_jobs[i] = (struct job){
		    .r = r, .main_thread = pthread_self(), .worked = &worked, .done = &ndone};
		assert_int_equal(thread_pool_submit(tp, work, r, done, &g_jobs[i]), 0);
	}
	assert_int_equal(reactor_run(r), 0);
	assert_int_equal(ndone, NJOBS);
	for (int i = 0; i < NJOBS; i++) {
		assert_true(g_jobs[i].worked_off_main);
		assert_true(g_jobs[i].done_on_reactor);
	}
	thread_pool_destroy(tp);
	reactor_destroy(r);
}

static void slow_work(void *arg)
{
	atomic_int *n = arg;

	usleep(1000);
	atomic_fetch_add(n, 1);
}

static void test_destroy_drains(void **state)
{
	struct thread_pool *tp;
	atomic_int n = 0;

	assert_int_equal(thread_pool_create(2, &tp), 0);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(thread_pool_submit(tp, slow_work, NULL, NULL, &n), 0);
	}
	thread_pool_destroy(tp);
	assert_int_equal(atomic_load(&n), 50);
	thread_pool_destroy(NULL);
}

static void test_bad_args(void **state)
{
	struct thread_pool *tp;

	assert_int_equal(thread_pool_create(0, &tp), -EINVAL);
	assert_int_equal(thread_pool_create(1, &tp), 0);
	assert_int_equal(thread_pool_submit(tp, NULL, NULL, NULL, NULL), -EINVAL);
	assert_int_equal(thread_pool_submit(tp, slow_work, NULL, done, NULL), -EINVAL);
	thread_pool_destroy(tp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_submit_and_done),
	    cmocka_unit_test(test_destroy_drains),
	    cmocka_unit_test(test_bad_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
