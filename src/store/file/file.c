/*
 * file.c - "file:/path/disk.img?size=10G": a regular file or a block device.
 *
 * No I/O ever runs on the reactor thread:
 *
 *   READ/WRITE/FLUSH ──> io_uring SQ ──(batched io_uring_submit in one posted
 *                        message per reactor round)──> kernel ──> CQ ──> eventfd
 *                        watched by the reactor ──> reap ──> io->cb
 *   UNMAP/WRITE_ZEROES ─> thread pool (fallocate can block for long; these are rare)
 *
 * If io_uring is unavailable (old kernel, seccomp, io_uring_disabled) every
 * op goes through the thread pool instead.
 *
 * Invariants:
 * - io->store_u64[0] counts bytes already transferred; a short read or write
 *   is resubmitted for the rest. A read that hits EOF (res == 0) is -EIO: the
 *   file was truncated behind our back.
 * - SQEs that did not fit in the ring wait on `backlog` (linked through
 *   store_priv[1]) and are queued again when completions free slots.
 * - The page cache is a volatile write cache (STORE_CAP_WRITE_CACHE): FLUSH is
 *   fdatasync and FUA is RWF_DSYNC (SBC-3 5.24 SYNCHRONIZE CACHE, 4.11 FUA).
 * - An exclusive flock(2) held for the store's lifetime keeps two daemons (or
 *   two LUNs) from serving one file.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#ifdef S3TGT_HAVE_VALGRIND
#include <valgrind/memcheck.h>
#endif

#include "s3tgt/core.h"
#include "s3tgt/log.h"
#include "s3tgt/store.h"

#define FILE_RING_ENTRIES 256
#define FILE_POOL_THREADS 4
#define FILE_ZERO_CHUNK (64u * 1024u)

struct file_store {
	int fd;
	bool is_blk;
	bool thin;
	char *path;
	struct reactor *reactor;
	struct thread_pool *tp;

	bool have_ring;
	struct io_uring ring;
	int ring_evfd;
	bool submit_posted; /* a flush_sq message is queued */
	unsigned unsubmitted;
	struct store_io *backlog_head;
	struct store_io *backlog_tail;

	bool in_reap; /* reap_cq is on the stack */
	bool closing; /* close requested during reap_cq: finish it there */
};

static const char *const g_file_options[] = {NULL};
static const uint8_t g_zeros[FILE_ZERO_CHUNK];

static void file_destroy(struct file_store *fs);

/* ---- blocking helpers (thread pool) ---- */

static int rw_full(int fd, struct store_io *io)
{
	uint8_t *buf = io->buf;
	uint64_t done = 0;

	while (done < io->len) {
		struct iovec iov = {.iov_base = buf + done, .iov_len = io->len - done};
		ssize_t n;

		if (io->op == STORE_OP_READ) {
			n = preadv(fd, &iov, 1, (off_t)(io->offset + done));
		} else {
			n = pwritev2(fd, &iov, 1, (off_t)(io->offset + done),
				     io->fua ? RWF_DSYNC : 0);
		}
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				continue;
			}
			return -errno;
		}
		if (n == 0) {
			return -EIO;
		}
		done += (uint64_t)n;
	}
	return 0;
}

static int write_zeros(int fd, uint64_t off, uint64_t len)
{
	while (len) {
		size_t n = len < sizeof(g_zeros) ? (size_t)len : sizeof(g_zeros);
		ssize_t w = pwrite(fd, g_zeros, n, (off_t)off);

		if (w < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		if (w == 0) {
			return -EIO;
		}
		off += (uint64_t)w;
		len -= (uint64_t)w;
	}
	return 0;
}

/*
 * For block devices fallocate(PUNCH_HOLE) is "zero, deallocating if the
 * device can" (blkdev_fallocate), which keeps the reads-as-zeros promise that
 * a plain BLKDISCARD does not make on every device (SBC-3 4.7.3.4 LBPRZ).
 */
static int deallocate(struct file_store *fs, struct store_io *io)
{
	int mode;

	if (io->op == STORE_OP_UNMAP || fs->thin) {
		mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	} else {
		mode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
	}
	if (fallocate(fs->fd, mode, (off_t)io->offset, (off_t)io->len) == 0) {
		return 0;
	}
	if (errno != EOPNOTSUPP && errno != EINVAL) {
		return -errno;
	}
	if (fs->is_blk) {
		uint64_t range[2] = {io->offset, io->len};
		if (ioctl(fs->fd, BLKZEROOUT, range) == 0) {
			return 0;
		}
	}
	return write_zeros(fs->fd, io->offset, io->len);
}

static void pool_work(void *arg)
{
	struct store_io *io = arg;
	struct file_store *fs = io->store_priv[0];

	switch (io->op) {
	case STORE_OP_READ:
	case STORE_OP_WRITE:
		io->status = rw_full(fs->fd, io);
		break;
	case STORE_OP_FLUSH:
		io->status = fdatasync(fs->fd) == 0 ? 0 : -errno;
		break;
	case STORE_OP_UNMAP:
	case STORE_OP_WRITE_ZEROES:
		io->status = deallocate(fs, io);
		break;
	default:
		io->status = -ENOTSUP;
		break;
	}
}

static void pool_done(void *arg)
{
	struct store_io *io = arg;

	io->cb(io);
}

/* ---- io_uring path ---- */

static void flush_sq(void *arg)
{
	struct file_store *fs = arg;
	int rc;

	fs->submit_posted = false;
	if (!fs->unsubmitted) {
		return;
	}
	rc = io_uring_submit(&fs->ring);
	if (rc >= 0 && (unsigned)rc >= fs->unsubmitted) {
		fs->unsubmitted = 0;
		return;
	}
	if (rc >= 0) {
		/* The kernel took only part of the SQ; the rest stays queued in the ring. */
		fs->unsubmitted -= (unsigned)rc;
	} else {
		/* -EAGAIN/-EBUSY: short of resources or the CQ is full; retry next round. */
		LOG_RATELIMIT(LOG_LEVEL_WARN, "file", "%s: io_uring_submit: %s", fs->path,
			      strerror(-rc));
	}
	if (reactor_post(fs->reactor, flush_sq, fs) == 0) {
		fs->submit_posted = true;
	}
}

static void schedule_submit(struct file_store *fs)
{
	if (fs->submit_posted) {
		return;
	}
	if (reactor_post(fs->reactor, flush_sq, fs) == 0) {
		fs->submit_posted = true;
	} else {
		flush_sq(fs);
	}
}

static bool ring_prep(struct file_store *fs, struct store_io *io)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&fs->ring);
	uint64_t done = io->store_u64[0];

	if (!sqe) {
		return false;
	}
	switch (io->op) {
	case STORE_OP_READ:
		io_uring_prep_read(sqe, fs->fd, (uint8_t *)io->buf + done,
				   (unsigned)(io->len - done), io->offset + done);
		break;
	case STORE_OP_WRITE:
		io_uring_prep_write(sqe, fs->fd, (uint8_t *)io->buf + done,
				    (unsigned)(io->len - done), io->offset + done);
		if (io->fua) {
			sqe->rw_flags = RWF_DSYNC;
		}
		break;
	default:
		io_uring_prep_fsync(sqe, fs->fd, IORING_FSYNC_DATASYNC);
		break;
	}
	io_uring_sqe_set_data(sqe, io);
	fs->unsubmitted++;
	return true;
}

static void ring_queue(struct file_store *fs, struct store_io *io)
{
	if (!fs->backlog_head && ring_prep(fs, io)) {
		schedule_submit(fs);
		return;
	}
	io->store_priv[1] = NULL;
	if (fs->backlog_tail) {
		fs->backlog_tail->store_priv[1] = io;
	} else {
		fs->backlog_head = io;
	}
	fs->backlog_tail = io;
	/* Push what is already in the SQ so completions make room for the backlog. */
	schedule_submit(fs);
}

static void drain_backlog(struct file_store *fs)
{
	while (fs->backlog_head && ring_prep(fs, fs->backlog_head)) {
		fs->backlog_head = fs->backlog_head->store_priv[1];
		if (!fs->backlog_head) {
			fs->backlog_tail = NULL;
		}
	}
	if (fs->unsubmitted) {
		schedule_submit(fs);
	}
}

static void ring_complete(struct file_store *fs, struct store_io *io, int res)
{
	if (res == -EAGAIN || res == -EINTR) {
		ring_queue(fs, io);
		return;
	}
	if (res < 0) {
		io->status = res;
	} else if (io->op == STORE_OP_READ || io->op == STORE_OP_WRITE) {
		if (res == 0) {
			LOG_RATELIMIT(LOG_LEVEL_ERR, "file",
				      "%s: %s at offset %llu hit end of file", fs->path,
				      io->op == STORE_OP_READ ? "read" : "write",
				      (unsigned long long)(io->offset + io->store_u64[0]));
			io->status = -EIO;
		} else {
#ifdef S3TGT_HAVE_VALGRIND
			/* The kernel filled the buffer behind memcheck's back: io_uring
			 * completions are not syscalls it can see. A no-op otherwise. */
			if (io->op == STORE_OP_READ) {
				VALGRIND_MAKE_MEM_DEFINED((uint8_t *)io->buf + io->store_u64[0],
							  (size_t)res);
			}
#endif
			io->store_u64[0] += (uint64_t)res;
			if (io->store_u64[0] < io->len) {
				ring_queue(fs, io);
				return;
			}
			io->status = 0;
		}
	} else {
		io->status = 0;
	}
	if (io->status) {
		LOG_RATELIMIT(LOG_LEVEL_ERR, "file", "%s: op %d offset %llu len %llu: %s", fs->path,
			      (int)io->op, (unsigned long long)io->offset,
			      (unsigned long long)io->len, strerror(-io->status));
	}
	io->cb(io);
}

static void reap_cq(void *arg, uint32_t events)
{
	struct file_store *fs = arg;
	struct io_uring_cqe *cqe;
	uint64_t v;

	if (read(fs->ring_evfd, &v, sizeof(v)) < 0) {
		/* EAGAIN: completions were already reaped in an earlier round. */
	}
	fs->in_reap = true;
	while (!fs->closing && io_uring_peek_cqe(&fs->ring, &cqe) == 0) {
		struct store_io *io = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&fs->ring, cqe);
		ring_complete(fs, io, res);
	}
	fs->in_reap = false;
	if (fs->closing) {
		file_destroy(fs);
		return;
	}
	drain_backlog(fs);
}

static int ring_setup(struct file_store *fs)
{
	int rc = io_uring_queue_init(FILE_RING_ENTRIES, &fs->ring, 0);

	if (rc < 0) {
		return rc;
	}
	fs->ring_evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fs->ring_evfd < 0) {
		rc = -errno;
		goto err_ring;
	}
	rc = io_uring_register_eventfd(&fs->ring, fs->ring_evfd);
	if (rc < 0) {
		goto err_evfd;
	}
	rc = reactor_add_fd(fs->reactor, fs->ring_evfd, EPOLLIN, reap_cq, fs);
	if (rc < 0) {
		goto err_evfd;
	}
	fs->have_ring = true;
	return 0;

err_evfd:
	close(fs->ring_evfd);
	fs->ring_evfd = -1;
err_ring:
	io_uring_queue_exit(&fs->ring);
	return rc;
}

/* ---- open / close ---- */

static int open_blk(struct file_store *fs, const struct store_params *p, uint64_t *size, char *err,
		    size_t errlen)
{
	uint64_t devsize;
	int lbs;

	if (ioctl(fs->fd, BLKGETSIZE64, &devsize) != 0 || ioctl(fs->fd, BLKSSZGET, &lbs) != 0) {
		int rc = -errno;
		snprintf(err, errlen, "file: '%s': cannot get device geometry: %s", fs->path,
			 strerror(-rc));
		return rc;
	}
	if (lbs <= 0 || (uint32_t)lbs > p->block_size) {
		snprintf(err, errlen,
			 "block_size: %u is smaller than the logical block size %d of '%s'",
			 p->block_size, lbs, fs->path);
		return -EINVAL;
	}
	if (p->size > devsize) {
		snprintf(err, errlen, "size: %llu is larger than device '%s' (%llu bytes)",
			 (unsigned long long)p->size, fs->path, (unsigned long long)devsize);
		return -EINVAL;
	}
	*size = p->size ? p->size : devsize - devsize % p->block_size;
	return 0;
}

static int open_reg(struct file_store *fs, const struct store_params *p, uint64_t fsz,
		    uint64_t *size, char *err, size_t errlen)
{
	if (!p->size) {
		if (fsz == 0 || fsz % p->block_size) {
			snprintf(err, errlen,
				 "file: size of '%s' (%llu bytes) is not a positive multiple of "
				 "block_size %u; give size=",
				 fs->path, (unsigned long long)fsz, p->block_size);
			return -EINVAL;
		}
		*size = fsz;
		return 0;
	}
	if (p->size < fsz) {
		snprintf(err, errlen,
			 "size: %llu is smaller than the existing file '%s' (%llu bytes); "
			 "refusing to truncate",
			 (unsigned long long)p->size, fs->path, (unsigned long long)fsz);
		return -EINVAL;
	}
	if (p->size > fsz && ftruncate(fs->fd, (off_t)p->size) != 0) {
		int rc = -errno;
		snprintf(err, errlen, "file: cannot grow '%s' to %llu bytes: %s", fs->path,
			 (unsigned long long)p->size, strerror(-rc));
		return rc;
	}
	*size = p->size;
	return 0;
}

static void file_destroy(struct file_store *fs)
{
	if (fs->have_ring) {
		reactor_del_fd(fs->reactor, fs->ring_evfd);
		io_uring_queue_exit(&fs->ring);
		close(fs->ring_evfd);
	}
	thread_pool_destroy(fs->tp);
	if (fs->fd >= 0) {
		close(fs->fd); /* also drops the flock */
	}
	free(fs->path);
	free(fs);
}

static int file_open(struct store *st, const struct store_params *p, char *err, size_t errlen)
{
	struct file_store *fs;
	struct stat sb;
	uint64_t size = 0;
	bool created = false;
	int rc;

	if (!p->path || !p->path[0]) {
		snprintf(err, errlen, "file: a path is required (file:/path/disk.img?size=10G)");
		return -EINVAL;
	}
	if (!st->reactor) {
		snprintf(err, errlen, "file: no reactor");
		return -EINVAL;
	}
	fs = calloc(1, sizeof(*fs));
	if (!fs) {
		return -ENOMEM;
	}
	fs->fd = -1;
	fs->ring_evfd = -1;
	fs->thin = p->thin;
	fs->reactor = st->reactor;
	fs->path = strdup(p->path);
	if (!fs->path) {
		rc = -ENOMEM;
		goto err;
	}

	fs->fd = open(p->path, O_RDWR | O_CLOEXEC);
	if (fs->fd < 0 && errno == ENOENT) {
		if (!p->size) {
			snprintf(err, errlen, "file: '%s' does not exist and no size= was given",
				 p->path);
			rc = -ENOENT;
			goto err;
		}
		fs->fd = open(p->path, O_RDWR | O_CLOEXEC | O_CREAT | O_EXCL, 0600);
		created = fs->fd >= 0;
	}
	if (fs->fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "file: cannot open '%s': %s", p->path, strerror(-rc));
		goto err;
	}
	if (flock(fs->fd, LOCK_EX | LOCK_NB) != 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		snprintf(err, errlen, "file: '%s' is in use (locked by another store or process)",
			 p->path);
		goto err;
	}
	if (fstat(fs->fd, &sb) != 0) {
		rc = -errno;
		snprintf(err, errlen, "file: cannot stat '%s': %s", p->path, strerror(-rc));
		goto err;
	}
	if (S_ISBLK(sb.st_mode)) {
		fs->is_blk = true;
		rc = open_blk(fs, p, &size, err, errlen);
	} else if (S_ISREG(sb.st_mode)) {
		rc = open_reg(fs, p, (uint64_t)sb.st_size, &size, err, errlen);
	} else {
		snprintf(err, errlen, "file: '%s' is neither a regular file nor a block device",
			 p->path);
		rc = -EINVAL;
	}
	if (rc) {
		goto err;
	}
	rc = thread_pool_create(FILE_POOL_THREADS, &fs->tp);
	if (rc) {
		snprintf(err, errlen, "file: cannot start I/O threads: %s", strerror(-rc));
		goto err;
	}
	rc = ring_setup(fs);
	if (rc) {
		LOG_WARN("file", "%s: io_uring unavailable (%s), using %d I/O threads", p->path,
			 strerror(-rc), FILE_POOL_THREADS);
	}
	st->priv = fs;
	st->size = size;
	st->caps = STORE_CAP_WRITE_CACHE;
	if (p->thin) {
		st->caps |= STORE_CAP_UNMAP;
	}
	if (!fs->is_blk) {
		st->caps |= STORE_CAP_LBA_STATUS;
	}
	LOG_INFO("file", "%s: opened %s, %llu bytes, %s%s", p->path,
		 fs->is_blk ? "block device"
		 : created  ? "new file"
			    : "file",
		 (unsigned long long)size, fs->have_ring ? "io_uring" : "thread pool",
		 p->thin ? ", thin" : "");
	return 0;

err:
	if (created) {
		unlink(p->path);
	}
	file_destroy(fs);
	return rc;
}

static void file_close(struct store *st)
{
	struct file_store *fs = st->priv;

	if (!fs) {
		return;
	}
	st->priv = NULL;
	if (fs->in_reap) {
		/* Called from a completion callback: reap_cq frees it on the way out. */
		fs->closing = true;
		return;
	}
	file_destroy(fs);
}

static int file_submit(struct store *st, struct store_io *io)
{
	struct file_store *fs = st->priv;

	io->store_priv[0] = fs;
	io->store_u64[0] = 0;
	io->status = 0;
	if (io->op == STORE_OP_UNMAP && !fs->thin) {
		return -ENOTSUP;
	}
	if (fs->have_ring &&
	    (io->op == STORE_OP_READ || io->op == STORE_OP_WRITE || io->op == STORE_OP_FLUSH)) {
		/* The SQE length field is 32 bits; longer requests take the pool. */
		if (io->len <= UINT32_MAX) {
			ring_queue(fs, io);
			return 0;
		}
	}
	return thread_pool_submit(fs->tp, pool_work, fs->reactor, pool_done, io);
}

static int file_lba_status(struct store *st, uint64_t offset, bool *mapped, uint64_t *run)
{
	struct file_store *fs = st->priv;
	uint64_t end = st->size;
	off_t data;
	off_t hole;

	if (offset >= st->size) {
		return -EINVAL;
	}
	data = lseek(fs->fd, (off_t)offset, SEEK_DATA);
	if (data < 0 && errno != ENXIO) {
		return -errno;
	}
	if (data < 0 || (uint64_t)data >= end) {
		*mapped = false;
		*run = end - offset;
		return 0;
	}
	if ((uint64_t)data > offset) {
		*mapped = false;
		end = (uint64_t)data;
	} else {
		hole = lseek(fs->fd, (off_t)offset, SEEK_HOLE);
		if (hole < 0) {
			return -errno;
		}
		*mapped = true;
		if ((uint64_t)hole < end) {
			end = (uint64_t)hole;
		}
	}
	/* File systems track extents in pages; report whole blocks. */
	end -= end % st->block_size;
	*run = end > offset ? end - offset : st->block_size;
	return 0;
}

static int file_resize(struct store *st, uint64_t new_size)
{
	struct file_store *fs = st->priv;

	if (new_size < st->size || new_size % st->block_size) {
		return -EINVAL;
	}
	if (fs->is_blk) {
		return -ENOTSUP;
	}
	if (ftruncate(fs->fd, (off_t)new_size) != 0) {
		return -errno;
	}
	st->size = new_size;
	return 0;
}

const struct store_ops store_file_ops = {
    .name = "file",
    .options = g_file_options,
    .open = file_open,
    .submit = file_submit,
    .close = file_close,
    .lba_status = file_lba_status,
    .resize = file_resize,
};
