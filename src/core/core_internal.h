/*
 * core_internal.h - reactor internals shared by the thread pool (private to src/core/).
 */
#ifndef S3TGT_CORE_INTERNAL_H
#define S3TGT_CORE_INTERNAL_H

#include "s3tgt/core.h"

struct reactor_msg;

/*
 * Reserve a message node up front so that a later post cannot fail: the
 * thread pool reserves at submit time and posts from a worker thread, where
 * an -ENOMEM would have nobody to report to. Returns NULL on allocation failure.
 */
struct reactor_msg *reactor_msg_alloc(struct reactor *r);
/* Post a reserved node (takes ownership; thread-safe). Never fails. */
void reactor_msg_post(struct reactor *r, struct reactor_msg *m, reactor_msg_fn fn, void *arg);
/* Return an unposted reserved node. */
void reactor_msg_free(struct reactor *r, struct reactor_msg *m);

#endif
