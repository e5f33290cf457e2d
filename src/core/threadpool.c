/*
 * threadpool.c - worker threads for blocking work (file I/O, fallocate, ioctl).
 *
 * A job's life: submit (any thread) -> queue -> work() on a worker ->
 * done() posted to the job's reactor with a message node reserved at submit
 * time, so completion delivery cannot fail once submit returned 0.
 * destroy() lets the workers finish every queued job, then joins them.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "s3tgt/core.h"

struct tp_job {
	struct tp_job *next;
	thread_pool_fn work;
	reactor_msg_fn done;
	void *arg;
	struct reactor *r;
	struct reactor_msg *msg;
};

struct thread_pool {
	/* `lock` protects head, tail and shutdown; leaf lock. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct tp_job *head;
	struct tp_job *tail;
	bool shutdown;
	unsigned nthreads;
	pthread_t *threads;
};

static void *worker_main(void *p)
{
	struct thread_pool *tp = p;

	for (;;) {
		struct tp_job *j;

		pthread_mutex_lock(&tp->lock);
		while (!tp->head && !tp->shutdown) {
			pthread_cond_wait(&tp->cond, &tp->lock);
		}
		j = tp->head;
		if (!j) {
			pthread_mutex_unlock(&tp->lock);
			return NULL;
		}
		tp->head = j->next;
		if (!tp->head) {
			tp->tail = NULL;
		}
		pthread_mutex_unlock(&tp->lock);

		j->work(j->arg);
		if (j->done) {
			reactor_msg_post(j->r, j->msg, j->done, j->arg);
		} else {
			reactor_msg_free(j->r, j->msg);
		}
		free(j);
	}
}

int thread_pool_create(unsigned nthreads, struct thread_pool **out)
{
	struct thread_pool *tp;
	int rc;

	if (nthreads == 0) {
		return -EINVAL;
	}
	tp = calloc(1, sizeof(*tp));
	if (!tp) {
		return -ENOMEM;
	}
	tp->threads = calloc(nthreads, sizeof(*tp->threads));
	if (!tp->threads) {
		rc = -ENOMEM;
		goto err_free;
	}
	rc = pthread_mutex_init(&tp->lock, NULL);
	if (rc) {
		rc = -rc;
		goto err_free;
	}
	rc = pthread_cond_init(&tp->cond, NULL);
	if (rc) {
		rc = -rc;
		goto err_mutex;
	}
	for (; tp->nthreads < nthreads; tp->nthreads++) {
		rc = core_thread_spawn(&tp->threads[tp->nthreads], worker_main, tp);
		if (rc) {
			thread_pool_destroy(tp);
			return rc;
		}
	}
	*out = tp;
	return 0;

err_mutex:
	pthread_mutex_destroy(&tp->lock);
err_free:
	free(tp->threads);
	free(tp);
	return rc;
}

void thread_pool_destroy(struct thread_pool *tp)
{
	if (!tp) {
		return;
	}
	pthread_mutex_lock(&tp->lock);
	tp->shutdown = true;
	pthread_cond_broadcast(&tp->cond);
	pthread_mutex_unlock(&tp->lock);
	for (unsigned i = 0; i < tp->nthreads; i++) {
		pthread_join(tp->threads[i], NULL);
	}
	pthread_cond_destroy(&tp->cond);
	pthread_mutex_destroy(&tp->lock);
	free(tp->threads);
	free(tp);
}

int thread_pool_submit(struct thread_pool *tp, thread_pool_fn work, struct reactor *r,
		       reactor_msg_fn done, void *arg)
{
	struct tp_job *j;

	if (!work || (done && !r)) {
		return -EINVAL;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		return -ENOMEM;
	}
	j->work = work;
	j->done = done;
	j->arg = arg;
	j->r = r;
	if (r) {
		j->msg = reactor_msg_alloc(r);
		if (!j->msg) {
			free(j);
			return -ENOMEM;
		}
	}
	pthread_mutex_lock(&tp->lock);
	if (tp->shutdown) {
		pthread_mutex_unlock(&tp->lock);
		reactor_msg_free(r, j->msg);
		free(j);
		return -ESHUTDOWN;
	}
	if (tp->tail) {
		tp->tail->next = j;
	} else {
		tp->head = j;
	}
	tp->tail = j;
	pthread_cond_signal(&tp->cond);
	pthread_mutex_unlock(&tp->lock);
	return 0;
}

int core_thread_spawn(pthread_t *thread, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	rc = pthread_sigmask(SIG_BLOCK, &all, &old);
	if (rc) {
		return -rc;
	}
	rc = pthread_create(thread, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -rc;
}
