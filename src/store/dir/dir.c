/*
 * dir.c - the `dir` store: the chunked store (chunk.c) on an object back end
 * that keeps each object as a file under a root directory.
 *
 * Object file = DIR_OBJ_HEADER bytes (magic, version, metadata length,
 * metadata, zero padding) followed by the body, so a ranged GET is one pread
 * at a fixed offset. Requests run on a thread pool, never on the reactor; a
 * DELETE_MULTI is one work item that unlinks its keys in order. Completions
 * come back through the store's own reactor queue, so quiesce can wait for
 * them and run their callbacks.
 *
 * Atomicity: a PUT writes "<dir>/.<name>.tmp.<pid>.<seq>", fsyncs it, then
 * renames it over the key (link() for If-None-Match, which fails with EEXIST
 * atomically) and fsyncs the directory, so a crash leaves either the old or
 * the new object, never a torn one. Temp files start with '.', which listing
 * skips.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "s3tgt/core.h"
#include "s3tgt/log.h"
#include "s3tgt/store.h"

#include "chunk/chunk.h"
#include "chunk/objstore.h"
#include "dir.h"

#define DIR_THREADS_MAX 16u

struct dir_os {
	struct objstore os;
	char *root;
	int rootfd;
	struct thread_pool *tp;
	struct reactor_queue *done;
	atomic_uint tmp_seq; /* unique temp names across worker threads */
};

_Static_assert(DIR_OBJ_HEADER >= 16 + OBJ_META_MAX, "metadata must fit in the header");

/* A truncated diagnostic is acceptable; it stays NUL-terminated. */
static void __attribute__((format(printf, 2, 3)))
set_os_err(struct objstore *os, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(os->err, sizeof(os->err), fmt, ap);
	va_end(ap);
}

static int full_pread(int fd, void *buf, size_t len, off_t off, size_t *got)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		if (n == 0) {
			break;
		}
		done += (size_t)n;
	}
	*got = done;
	return 0;
}

static int full_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, off + (off_t)done);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		done += (size_t)n;
	}
	return 0;
}

/* fsync the directory holding key, so a rename or unlink survives a crash. */
static int sync_parent(struct dir_os *d, const char *key)
{
	const char *slash = strrchr(key, '/');
	char dir[256];
	int fd, ret = 0;

	if (!slash) {
		return fsync(d->rootfd) ? -errno : 0;
	}
	if ((size_t)(slash - key) >= sizeof(dir)) {
		return -ENAMETOOLONG;
	}
	memcpy(dir, key, (size_t)(slash - key));
	dir[slash - key] = '\0';
	fd = openat(d->rootfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		return -errno;
	}
	if (fsync(fd)) {
		ret = -errno;
	}
	close(fd);
	return ret;
}

static int key_ok(const char *key)
{
	/* Keys come from chunk.c, but refuse anything that could leave the root. */
	if (!key[0] || key[0] == '/' || strstr(key, "..") || strlen(key) > 200) {
		return -EINVAL;
	}
	return 0;
}

/*
 * A file's entity tag: inode, modification time and size. Every PUT renames
 * a new file over the key, so any write changes it.
 */
static void file_etag(const struct stat *sb, char *out)
{
	snprintf(out, OBJ_ETAG_MAX, "%" PRIx64 "-%" PRIx64 "-%" PRIx64, (uint64_t)sb->st_ino,
		 (uint64_t)sb->st_mtim.tv_sec * 1000000000u + (uint64_t)sb->st_mtim.tv_nsec,
		 (uint64_t)sb->st_size);
}

/* req->if_match against the key's current tag, quotes ignored (S3 sends them). */
static bool etag_matches(const struct obj_req *req, const char *cur)
{
	const char *m = req->if_match;
	size_t n = strlen(m);

	if (n >= 2 && m[0] == '"' && m[n - 1] == '"') {
		m++;
		n -= 2;
	}
	return strlen(cur) == n && memcmp(cur, m, n) == 0;
}

/*
 * If-Match: compare and rename under an exclusive flock() on the root, taken
 * through a descriptor of its own, so the check and the rename are one step
 * against other threads and other daemons alike (all If-Match writers lock).
 */
static int rename_if_match(struct dir_os *d, struct obj_req *req, const char *tmp)
{
	char cur[OBJ_ETAG_MAX];
	struct stat sb;
	int lfd, ret = 0;

	lfd = openat(d->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lfd < 0) {
		return -errno;
	}
	while (flock(lfd, LOCK_EX) != 0) {
		if (errno != EINTR) {
			ret = -errno;
			goto out;
		}
	}
	if (fstatat(d->rootfd, req->key, &sb, 0) != 0) {
		ret = errno == ENOENT ? -ESTALE : -errno;
	} else {
		file_etag(&sb, cur);
		if (!etag_matches(req, cur)) {
			ret = -ESTALE;
		} else if (renameat(d->rootfd, tmp, d->rootfd, req->key)) {
			ret = -errno;
		}
	}
out:
	close(lfd); /* drops the lock */
	return ret;
}

static int do_get(struct dir_os *d, struct obj_req *req)
{
	uint8_t hdr[DIR_OBJ_HEADER];
	struct stat sb;
	size_t got = 0;
	uint64_t body, want;
	uint32_t mlen;
	int fd, ret;

	fd = openat(d->rootfd, req->key, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return -errno;
	}
	if (fstat(fd, &sb)) {
		ret = -errno;
		goto out;
	}
	ret = full_pread(fd, hdr, sizeof(hdr), 0, &got);
	if (ret) {
		goto out;
	}
	if (got != sizeof(hdr) || memcmp(hdr, DIR_OBJ_MAGIC, 8) != 0 ||
	    get_be32(hdr + 8) != DIR_OBJ_VERSION) {
		LOG_RATELIMIT(LOG_LEVEL_ERR, "dir", "%s/%s: not an object file", d->root, req->key);
		ret = -EIO;
		goto out;
	}
	mlen = get_be32(hdr + 12);
	if (mlen >= OBJ_META_MAX) {
		ret = -EIO;
		goto out;
	}
	memcpy(req->meta, hdr + 16, mlen);
	req->meta[mlen] = '\0';
	file_etag(&sb, req->etag);
	body = (uint64_t)sb.st_size - DIR_OBJ_HEADER;
	req->got = 0;
	if (req->range_off >= body) {
		goto out;
	}
	want = req->range_len ? req->range_len : body;
	if (want > body - req->range_off) {
		want = body - req->range_off;
	}
	if (want > req->len) {
		want = req->len;
	}
	ret =
	    full_pread(fd, req->buf, (size_t)want, (off_t)(DIR_OBJ_HEADER + req->range_off), &got);
	req->got = got;
out:
	close(fd);
	return ret;
}

static int do_put(struct dir_os *d, struct obj_req *req)
{
	uint8_t hdr[DIR_OBJ_HEADER] = {0};
	const char *slash = strrchr(req->key, '/');
	struct stat sb;
	size_t mlen = strnlen(req->meta, OBJ_META_MAX);
	char tmp[320];
	int fd, ret, n;

	if (mlen >= OBJ_META_MAX) {
		return -EINVAL;
	}
	n = snprintf(tmp, sizeof(tmp), "%.*s.%s.tmp.%ld.%u",
		     slash ? (int)(slash - req->key + 1) : 0, req->key,
		     slash ? slash + 1 : req->key, (long)getpid(),
		     atomic_fetch_add(&d->tmp_seq, 1));
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		return -ENAMETOOLONG;
	}
	memcpy(hdr, DIR_OBJ_MAGIC, 8);
	put_be32(hdr + 8, DIR_OBJ_VERSION);
	put_be32(hdr + 12, (uint32_t)mlen);
	memcpy(hdr + 16, req->meta, mlen);
	fd = openat(d->rootfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		return -errno;
	}
	ret = full_pwrite(fd, hdr, sizeof(hdr), 0);
	if (!ret) {
		ret = full_pwrite(fd, req->buf, req->len, DIR_OBJ_HEADER);
	}
	if (!ret && fsync(fd)) {
		ret = -errno;
	}
	if (!ret && fstat(fd, &sb)) {
		ret = -errno;
	}
	if (close(fd) && !ret) {
		ret = -errno;
	}
	if (ret) {
		goto err_unlink;
	}
	if (req->if_none_match) {
		if (linkat(d->rootfd, tmp, d->rootfd, req->key, 0)) {
			ret = -errno;
		}
		unlinkat(d->rootfd, tmp, 0);
		if (ret) {
			return ret;
		}
	} else if (req->if_match[0]) {
		ret = rename_if_match(d, req, tmp);
		if (ret) {
			goto err_unlink;
		}
	} else if (renameat(d->rootfd, tmp, d->rootfd, req->key)) {
		ret = -errno;
		goto err_unlink;
	}
	ret = sync_parent(d, req->key);
	if (!ret) {
		file_etag(&sb, req->etag);
	}
	return ret;
err_unlink:
	unlinkat(d->rootfd, tmp, 0);
	return ret;
}

static int do_delete(struct dir_os *d, struct obj_req *req)
{
	if (unlinkat(d->rootfd, req->key, 0)) {
		return errno == ENOENT ? 0 : -errno;
	}
	return sync_parent(d, req->key);
}

static bool same_parent(const char *a, const char *b)
{
	const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');
	size_t la = sa ? (size_t)(sa - a) : 0, lb = sb ? (size_t)(sb - b) : 0;

	return la == lb && memcmp(a, b, la) == 0;
}

/* key_status of a key unlinked, its directory not yet fsynced */
#define DIR_UNLINKED 1

/*
 * Per key, the result a lone DELETE would have had. The directory fsync that
 * makes an unlink durable runs once per directory after all the unlinks, not
 * once per key: a batch is normally many keys of "chunks/".
 */
static void do_delete_multi(struct dir_os *d, struct obj_req *req)
{
	for (unsigned i = 0; i < req->nkeys; i++) {
		int ret = key_ok(req->keys[i]);

		if (!ret) {
			if (unlinkat(d->rootfd, req->keys[i], 0) == 0) {
				ret = DIR_UNLINKED;
			} else if (errno != ENOENT) {
				ret = -errno;
			}
		}
		req->key_status[i] = ret;
	}
	for (unsigned i = 0; i < req->nkeys; i++) {
		int ret;

		if (req->key_status[i] != DIR_UNLINKED) {
			continue;
		}
		ret = sync_parent(d, req->keys[i]);
		for (unsigned j = i; j < req->nkeys; j++) {
			if (req->key_status[j] == DIR_UNLINKED &&
			    same_parent(req->keys[i], req->keys[j])) {
				req->key_status[j] = ret;
			}
		}
	}
	for (unsigned i = 0; i < req->nkeys; i++) {
		if (req->key_status[i]) {
			LOG_RATELIMIT(LOG_LEVEL_ERR, "dir", "%s/%s: %s", d->root, req->keys[i],
				      strerror(-req->key_status[i]));
		}
	}
	req->status = 0;
}

static void do_req(struct dir_os *d, struct obj_req *req)
{
	int ret;

	if (req->op == OBJ_DELETE_MULTI) {
		do_delete_multi(d, req);
		return;
	}
	req->etag[0] = '\0';
	ret = key_ok(req->key);
	if (!ret) {
		switch (req->op) {
		case OBJ_GET:
			ret = do_get(d, req);
			break;
		case OBJ_PUT:
			ret = do_put(d, req);
			break;
		case OBJ_DELETE:
			ret = do_delete(d, req);
			break;
		default:
			ret = -EINVAL;
			break;
		}
	}
	if (ret && ret != -ENOENT && ret != -EEXIST && ret != -ESTALE) {
		LOG_RATELIMIT(LOG_LEVEL_ERR, "dir", "%s/%s: %s", d->root, req->key, strerror(-ret));
	}
	req->status = ret;
}

static void work_fn(void *arg)
{
	struct obj_req *req = arg;
	struct dir_os *d = req->priv;

	do_req(d, req);
	reactor_queue_push(d->done, &req->done);
}

static void done_fn(void *arg)
{
	struct obj_req *req = arg;

	req->cb(req);
}

static int dir_submit(struct objstore *os, struct obj_req *req)
{
	struct dir_os *d = os->priv;
	int ret;

	if (req->op == OBJ_DELETE_MULTI && (!req->keys || !req->key_status || req->nkeys == 0 ||
					    req->nkeys > OBJ_DELETE_MULTI_MAX)) {
		return -EINVAL;
	}
	req->priv = d;
	req->done.arg = req;
	ret = thread_pool_submit(d->tp, work_fn, NULL, NULL, req);
	if (ret == 0) {
		reactor_queue_expect(d->done);
	}
	return ret;
}

/* Nothing to cancel: a file request is short and cannot be taken back. */
static void dir_quiesce(struct objstore *os)
{
	struct dir_os *d = os->priv;

	reactor_queue_drain(d->done);
}

static int dir_get_sync(struct objstore *os, struct obj_req *req)
{
	do_req(os->priv, req);
	if (req->status && req->status != -ENOENT) {
		set_os_err(os, "dir: %s/%s: %s", ((struct dir_os *)os->priv)->root, req->key,
			   strerror(-req->status));
	}
	return req->status;
}

static int dir_put_sync(struct objstore *os, struct obj_req *req)
{
	do_req(os->priv, req);
	if (req->status && req->status != -EEXIST) {
		set_os_err(os, "dir: %s/%s: %s", ((struct dir_os *)os->priv)->root, req->key,
			   strerror(-req->status));
	}
	return req->status;
}

static int dir_list(struct objstore *os, const char *prefix, obj_list_fn fn, void *arg)
{
	struct dir_os *d = os->priv;
	char sub[256];
	size_t plen = strlen(prefix);
	struct dirent *de;
	DIR *dp;
	int fd;

	if (plen == 0 || plen >= sizeof(sub) || key_ok(prefix)) {
		return -EINVAL;
	}
	memcpy(sub, prefix, plen + 1);
	if (sub[plen - 1] == '/') {
		sub[plen - 1] = '\0';
	}
	fd = openat(d->rootfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		if (e == ENOENT) {
			return 0;
		}
		set_os_err(os, "dir: %s/%s: %s", d->root, sub, strerror(e));
		return -e;
	}
	dp = fdopendir(fd);
	if (!dp) {
		int e = errno;
		close(fd);
		return -e;
	}
	while ((errno = 0, de = readdir(dp)) != NULL) {
		char key[300];
		struct stat sb;
		int n;

		if (de->d_name[0] == '.') {
			continue;
		}
		if (fstatat(fd, de->d_name, &sb, 0) || !S_ISREG(sb.st_mode) ||
		    sb.st_size < (off_t)DIR_OBJ_HEADER) {
			continue;
		}
		n = snprintf(key, sizeof(key), "%s/%s", sub, de->d_name);
		if (n < 0 || (size_t)n >= sizeof(key)) {
			continue;
		}
		fn(arg, key, (uint64_t)sb.st_size - DIR_OBJ_HEADER);
	}
	closedir(dp);
	return 0;
}

static void dir_destroy(struct objstore *os)
{
	struct dir_os *d;

	if (!os) {
		return;
	}
	d = os->priv;
	dir_quiesce(os);
	thread_pool_destroy(d->tp);
	reactor_queue_destroy(d->done);
	if (d->rootfd >= 0) {
		close(d->rootfd);
	}
	free(d->root);
	free(d);
}

static const struct objstore_ops dir_os_ops = {
    .name = "dir",
    .submit = dir_submit,
    .list = dir_list,
    .get_sync = dir_get_sync,
    .put_sync = dir_put_sync,
    .quiesce = dir_quiesce,
    .destroy = dir_destroy,
};

/* mkdir -p */
static int make_dirs(const char *path)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf)) {
		return -ENAMETOOLONG;
	}
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0') {
			continue;
		}
		char c = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, 0755) && errno != EEXIST) {
			return -errno;
		}
		buf[i] = c;
	}
	return 0;
}

int dir_objstore_create(const char *root, struct reactor *r, unsigned nthreads,
			struct objstore **out, char *err, size_t errlen)
{
	struct dir_os *d;
	int ret;

	d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	d->rootfd = -1;
	d->os.ops = &dir_os_ops;
	d->os.priv = d;
	d->root = strdup(root);
	if (!d->root) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto err;
	}
	ret = make_dirs(root);
	if (ret) {
		snprintf(err, errlen, "dir: cannot create directory %s: %s", root, strerror(-ret));
		goto err;
	}
	d->rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->rootfd < 0) {
		ret = -errno;
		snprintf(err, errlen, "dir: cannot open directory %s: %s", root, strerror(-ret));
		goto err;
	}
	if (mkdirat(d->rootfd, "chunks", 0755) && errno != EEXIST) {
		ret = -errno;
		snprintf(err, errlen, "dir: cannot create %s/chunks: %s", root, strerror(-ret));
		goto err;
	}
	if (nthreads == 0) {
		nthreads = 1;
	}
	ret = thread_pool_create(nthreads > DIR_THREADS_MAX ? DIR_THREADS_MAX : nthreads, &d->tp);
	if (ret) {
		snprintf(err, errlen, "dir: cannot start I/O threads: %s", strerror(-ret));
		goto err;
	}
	ret = reactor_queue_create(r, done_fn, &d->done);
	if (ret) {
		snprintf(err, errlen, "dir: cannot create the completion queue: %s",
			 strerror(-ret));
		thread_pool_destroy(d->tp);
		goto err;
	}
	*out = &d->os;
	return 0;
err:
	if (d->rootfd >= 0) {
		close(d->rootfd);
	}
	free(d->root);
	free(d);
	return ret;
}

static const char *const dir_options[] = {"chunk_size",	 "max_inflight",   "lease_holder",
					  "break_lease", "lease_renew_ms", NULL};

static int dir_open(struct store *st, const struct store_params *p, char *err, size_t errlen)
{
	struct chunk_opts o;
	struct objstore *os;
	int ret;

	ret = chunk_opts_parse(p, &o, err, errlen);
	if (ret) {
		return ret;
	}
	if (!p->path || !p->path[0]) {
		snprintf(err, errlen, "dir: a directory path is required (dir:/path?size=1G)");
		return -EINVAL;
	}
	ret = dir_objstore_create(p->path, st->reactor, o.max_inflight, &os, err, errlen);
	if (ret) {
		return ret;
	}
	return chunk_store_open(st, p, &o, os, err, errlen);
}

const struct store_ops store_dir_ops = {
    .name = "dir",
    .options = dir_options,
    .open = dir_open,
    .submit = chunk_store_submit,
    .close = chunk_store_close,
    .quiesce = chunk_store_quiesce,
    .lba_status = chunk_store_lba_status,
    .resize = chunk_store_resize,
    .volume_id = chunk_store_volume_id,
    .resumed = chunk_store_resumed,
    .fenced = chunk_store_fenced,
    .metrics = chunk_store_metrics,
};
