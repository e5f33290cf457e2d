/*
 * ram.c - "ram:?size=1G": a sparse in-memory disk.
 *
 * The device is an array of fixed 64 KiB pages, each NULL (reads as zeros,
 * reported unmapped) or allocated on its first write. UNMAP and WRITE ZEROES
 * free every page they cover completely and zero the partial ends, so
 * "unmapped reads back as zeros" (SBC-3 4.7.3.4, LBPRZ=1) holds by construction.
 *
 * Every request is executed inside a message posted to the store's reactor:
 * submit() only queues, so the completion is "later" as store.h demands and a
 * failed post leaves nothing half-done.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3tgt/core.h"
#include "s3tgt/log.h"
#include "s3tgt/store.h"

#define RAM_PAGE_SHIFT 16
#define RAM_PAGE_SIZE (1ull << RAM_PAGE_SHIFT)

struct ram_store {
	uint8_t **pages;
	uint64_t npages;
	uint64_t size;
};

static const char *const g_ram_options[] = {NULL};

static int ram_open(struct store *st, const struct store_params *p, char *err, size_t errlen)
{
	struct ram_store *rs;

	if (p->size == 0) {
		snprintf(err, errlen, "ram: size is required (e.g. ram:?size=1G)");
		return -EINVAL;
	}
	rs = calloc(1, sizeof(*rs));
	if (!rs) {
		return -ENOMEM;
	}
	rs->size = p->size;
	rs->npages = (p->size + RAM_PAGE_SIZE - 1) >> RAM_PAGE_SHIFT;
	rs->pages = calloc(rs->npages, sizeof(*rs->pages));
	if (!rs->pages) {
		snprintf(err, errlen, "ram: cannot allocate the page table for %llu bytes",
			 (unsigned long long)p->size);
		free(rs);
		return -ENOMEM;
	}
	st->priv = rs;
	st->size = p->size;
	st->caps = STORE_CAP_UNMAP | STORE_CAP_LBA_STATUS;
	return 0;
}

static void ram_close(struct store *st)
{
	struct ram_store *rs = st->priv;

	if (!rs) {
		return;
	}
	for (uint64_t i = 0; i < rs->npages; i++) {
		free(rs->pages[i]);
	}
	free(rs->pages);
	free(rs);
	st->priv = NULL;
}

static void ram_read(struct ram_store *rs, struct store_io *io)
{
	uint8_t *dst = io->buf;
	uint64_t off = io->offset;
	uint64_t left = io->len;

	while (left) {
		uint64_t pg = off >> RAM_PAGE_SHIFT;
		uint64_t in = off & (RAM_PAGE_SIZE - 1);
		uint64_t n = RAM_PAGE_SIZE - in < left ? RAM_PAGE_SIZE - in : left;

		if (rs->pages[pg]) {
			memcpy(dst, rs->pages[pg] + in, n);
		} else {
			memset(dst, 0, n);
		}
		dst += n;
		off += n;
		left -= n;
	}
}

static int ram_write(struct ram_store *rs, struct store_io *io)
{
	const uint8_t *src = io->buf;
	uint64_t off = io->offset;
	uint64_t left = io->len;

	while (left) {
		uint64_t pg = off >> RAM_PAGE_SHIFT;
		uint64_t in = off & (RAM_PAGE_SIZE - 1);
		uint64_t n = RAM_PAGE_SIZE - in < left ? RAM_PAGE_SIZE - in : left;

		if (!rs->pages[pg]) {
			/*
			 * A new page: zero only what this write does not cover
			 * (zeroing all 64 KiB first doubled the cost of a 4 KiB
			 * first write).
			 */
			rs->pages[pg] = malloc(RAM_PAGE_SIZE);
			if (!rs->pages[pg]) {
				LOG_RATELIMIT(LOG_LEVEL_ERR, "ram",
					      "out of memory writing offset %llu",
					      (unsigned long long)off);
				return -ENOSPC;
			}
			memset(rs->pages[pg], 0, in);
			memset(rs->pages[pg] + in + n, 0, RAM_PAGE_SIZE - in - n);
		}
		memcpy(rs->pages[pg] + in, src, n);
		src += n;
		off += n;
		left -= n;
	}
	return 0;
}

static void ram_deallocate(struct ram_store *rs, struct store_io *io)
{
	uint64_t off = io->offset;
	uint64_t left = io->len;

	while (left) {
		uint64_t pg = off >> RAM_PAGE_SHIFT;
		uint64_t in = off & (RAM_PAGE_SIZE - 1);
		uint64_t n = RAM_PAGE_SIZE - in < left ? RAM_PAGE_SIZE - in : left;

		if (rs->pages[pg]) {
			if (n == RAM_PAGE_SIZE) {
				free(rs->pages[pg]);
				rs->pages[pg] = NULL;
			} else {
				memset(rs->pages[pg] + in, 0, n);
			}
		}
		off += n;
		left -= n;
	}
}

static void ram_execute(void *arg)
{
	struct store_io *io = arg;
	struct store *st = io->store_priv[0];
	struct ram_store *rs = st->priv;

	io->status = 0;
	switch (io->op) {
	case STORE_OP_READ:
		ram_read(rs, io);
		break;
	case STORE_OP_WRITE:
		io->status = ram_write(rs, io);
		break;
	case STORE_OP_FLUSH:
		break;
	case STORE_OP_UNMAP:
	case STORE_OP_WRITE_ZEROES:
		ram_deallocate(rs, io);
		break;
	default:
		io->status = -ENOTSUP;
		break;
	}
	io->cb(io);
}

static int ram_submit(struct store *st, struct store_io *io)
{
	io->store_priv[0] = st;
	return reactor_post(st->reactor, ram_execute, io);
}

static int ram_lba_status(struct store *st, uint64_t offset, bool *mapped, uint64_t *run)
{
	struct ram_store *rs = st->priv;
	uint64_t pg = offset >> RAM_PAGE_SHIFT;
	uint64_t end;
	bool m;

	if (offset >= rs->size) {
		return -EINVAL;
	}
	m = rs->pages[pg] != NULL;
	while (pg + 1 < rs->npages && (rs->pages[pg + 1] != NULL) == m) {
		pg++;
	}
	end = (pg + 1) << RAM_PAGE_SHIFT;
	if (end > rs->size) {
		end = rs->size;
	}
	*mapped = m;
	*run = end - offset;
	return 0;
}

const struct store_ops store_ram_ops = {
    .name = "ram",
    .options = g_ram_options,
    .open = ram_open,
    .submit = ram_submit,
    .close = ram_close,
    .lba_status = ram_lba_status,
};
