/*
 * dir.h - the local-directory object back end (private to src/store): each
 * object is one file under a root directory, written atomically (temp file,
 * fsync, rename, fsync of the directory). File format in docs/OBJECT-FORMAT.md.
 */
#ifndef S3TGT_STORE_DIR_H
#define S3TGT_STORE_DIR_H

#include <stddef.h>

#include "chunk/objstore.h"

struct reactor;

/* Size of the header in front of every object body: magic, version, metadata. */
#define DIR_OBJ_HEADER 4096u
#define DIR_OBJ_MAGIC "S3TGTOB1"
#define DIR_OBJ_VERSION 1u

/*
 * Create the object store rooted at `root` (borrowed; created with parents
 * if missing). File I/O runs on a pool of nthreads workers; completions are
 * posted to r (borrowed, must outlive the store). Returns 0 and *out, or
 * -errno with a message in err.
 */
int dir_objstore_create(const char *root, struct reactor *r, unsigned nthreads,
			struct objstore **out, char *err, size_t errlen);

#endif
