/*
 * cache_internal.h - private to src/cache: the cache store's ops table,
 * shared by cache.c (the store) and params.c (options and URI hook-up).
 */
#ifndef S3TGT_CACHE_INTERNAL_H
#define S3TGT_CACHE_INTERNAL_H

#include "s3tgt/store.h"

extern const struct store_ops cache_store_ops;

#endif
