/*
 * sbc.c - block commands (SBC-3): READ/WRITE/VERIFY, READ CAPACITY,
 * SYNCHRONIZE CACHE, WRITE SAME, UNMAP, GET LBA STATUS, COMPARE AND WRITE,
 * PRE-FETCH (SANITIZE is sanitize.c's). Parsers normalise the CDB into
 * lba/nblocks/xfer_len/flags; the central checks in lu.c then run before any
 * exec function.
 *
 * Multi-step commands (VERIFY, COMPARE AND WRITE, WRITE SAME, UNMAP) run as a
 * small state machine on their scsi_io_ctx, one store io at a time (UNMAP:
 * several, see unmap_pump):
 *
 *   CAW:        READ ──compare──> WRITE ──> done        (miscompare: done)
 *   WRITE SAME: [WRITE piece]* | WRITE_ZEROES | UNMAP ──> done
 *   UNMAP:      up to 8 UNMAP descriptors at a time ──> done
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "s3tgt/log.h"
#include "scsi_internal.h"

/* Block Limits (SBC-3 6.6.4), in bytes where the limit scales with block size. */
#define SBC_MAX_XFER_BYTES (8u << 20)
#define SBC_MAX_WS_BYTES SBC_MAX_XFER_BYTES
#define SBC_MAX_UNMAP_BYTES (256u << 20)
#define SBC_MAX_UNMAP_DESCS 256
#define SBC_MAX_CAW_BLOCKS 255
/* WRITE SAME pattern buffer: the block replicated, written in pieces this big. */
#define SBC_WS_PIECE_BYTES (1u << 20)
/* GET LBA STATUS descriptors per response. */
#define SBC_LBA_STATUS_MAX 128

uint32_t sbc_max_xfer_blocks(const struct scsi_lu *lu)
{
	return SBC_MAX_XFER_BYTES / lu->block_size;
}

uint32_t sbc_max_ws_blocks(const struct scsi_lu *lu)
{
	return SBC_MAX_WS_BYTES / lu->block_size;
}

uint32_t sbc_max_caw_blocks(void)
{
	return SBC_MAX_CAW_BLOCKS;
}

uint32_t sbc_max_unmap_blocks(const struct scsi_lu *lu)
{
	return SBC_MAX_UNMAP_BYTES / lu->block_size;
}

uint32_t sbc_max_unmap_descs(void)
{
	return SBC_MAX_UNMAP_DESCS;
}

bool sbc_is_thin(const struct scsi_lu *lu)
{
	return lu->st->thin && (lu->st->caps & STORE_CAP_UNMAP);
}

static bool write_fua(const struct scsi_cmd *cmd)
{
	/* With the write cache disabled (WCE=0) every write must be durable. */
	return (cmd->flags & CMD_FUA) || !cmd->lu->wce;
}

static enum sense_reason set_xfer(struct scsi_cmd *cmd, uint64_t blocks, unsigned len_byte)
{
	uint64_t bytes = blocks * cmd->lu->block_size;

	if (blocks > UINT32_MAX || bytes > UINT32_MAX) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, len_byte, -1);
	}
	cmd->nblocks = (uint32_t)blocks;
	cmd->xfer_len = (uint32_t)bytes;
	return SENSE_OK;
}

/* Submit ctx->io; on a synchronous failure complete the command. */
static void ctx_submit(struct scsi_cmd *cmd, struct scsi_io_ctx *c, enum store_op op,
		       uint64_t lba, uint64_t nblocks, void *buf, bool fua, store_cb_fn cb)
{
	int rc;

	memset(&c->io, 0, sizeof(c->io));
	c->io.op = op;
	c->io.offset = lba * cmd->lu->block_size;
	c->io.len = nblocks * cmd->lu->block_size;
	c->io.buf = buf;
	c->io.fua = fua;
	c->io.cb = cb;
	c->io.cb_arg = c;
	rc = store_submit(cmd->lu->st, &c->io);
	if (rc < 0) {
		LOG_RATELIMIT(LOG_LEVEL_WARN, "scsi", "LUN %llu ITT 0x%08x: store submit: %s",
			      (unsigned long long)cmd->lu->lun, cmd->tag, strerror(-rc));
		scsi_cmd_complete(cmd, scsi_errno_reason(rc, op != STORE_OP_READ));
	}
}

/*
 * Common store callback prologue: returns the cmd, or NULL if it was finished
 * here. A failed io is reported as a read or a write error by its own op.
 */
static struct scsi_cmd *io_done(struct store_io *io)
{
	struct scsi_io_ctx *c = io->cb_arg;
	struct scsi_cmd *cmd = c->cmd;

	if (io->status < 0) {
		LOG_RATELIMIT(LOG_LEVEL_WARN, "scsi", "LUN %llu ITT 0x%08x: store io: %d",
			      (unsigned long long)cmd->lu->lun, cmd->tag, io->status);
		scsi_cmd_complete(cmd, scsi_errno_reason(io->status, io->op != STORE_OP_READ));
		return NULL;
	}
	if (cmd->aborted) {
		scsi_cmd_complete(cmd, SENSE_OK);
		return NULL;
	}
	return cmd;
}

static struct scsi_io_ctx *get_ctx_or_fail(struct scsi_cmd *cmd)
{
	struct scsi_io_ctx *c = scsi_ctx_get(cmd);

	if (!c) {
		scsi_cmd_complete(cmd, SENSE_INTERNAL_FAILURE);
	}
	return c;
}

static int ctx_buf(struct scsi_io_ctx *c, size_t len)
{
	uint8_t *b;

	if (c->buf_cap >= len) {
		return 0;
	}
	b = realloc(c->buf, len);
	if (!b) {
		return -ENOMEM;
	}
	c->buf = b;
	c->buf_cap = len;
	return 0;
}

/* ------------------------------------------------------- READ / WRITE */

enum sense_reason sbc_parse_rw(struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	uint64_t n;
	unsigned len_byte;

	switch (cdb[0]) {
	case SCSI_OP_READ_6:
	case SCSI_OP_WRITE_6:
		cmd->lba = get_be24(cdb + 1) & 0x1fffff;
		n = cdb[4] ? cdb[4] : 256; /* SBC-3 5.10: 0 means 256 blocks */
		return set_xfer(cmd, n, 4);
	case SCSI_OP_READ_10:
	case SCSI_OP_WRITE_10:
	case SCSI_OP_WRITE_AND_VERIFY_10:
		cmd->lba = get_be32(cdb + 2);
		n = get_be16(cdb + 7);
		len_byte = 7;
		break;
	case SCSI_OP_READ_12:
	case SCSI_OP_WRITE_12:
	case SCSI_OP_WRITE_AND_VERIFY_12:
		cmd->lba = get_be32(cdb + 2);
		n = get_be32(cdb + 6);
		len_byte = 6;
		break;
	default:
		cmd->lba = get_be64(cdb + 2);
		n = get_be32(cdb + 10);
		len_byte = 10;
		break;
	}
	/* No protection information: RDPROTECT/WRPROTECT must be zero (SBC-3 5.11). */
	if (cdb[1] & 0xe0) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 1, 7);
	}
	if (cdb[1] & 0x10) {
		cmd->flags |= CMD_DPO;
	}
	switch (cdb[0]) {
	case SCSI_OP_WRITE_AND_VERIFY_10:
	case SCSI_OP_WRITE_AND_VERIFY_12:
	case SCSI_OP_WRITE_AND_VERIFY_16:
		/* The data is verified by making it durable before we report GOOD. */
		cmd->flags |= CMD_FUA | CMD_VERIFY;
		break;
	default:
		if (cdb[1] & 0x08) {
			cmd->flags |= CMD_FUA;
		}
		break;
	}
	return set_xfer(cmd, n, len_byte);
}

/* The last store io of a command: complete it GOOD (errors are handled in io_done). */
static void last_io_done(struct store_io *io)
{
	struct scsi_cmd *cmd = io_done(io);

	if (cmd) {
		scsi_cmd_complete(cmd, SENSE_OK);
	}
}

void sbc_exec_read(struct scsi_cmd *cmd)
{
	struct scsi_io_ctx *c;

	if (cmd->nblocks == 0) {
		scsi_cmd_complete(cmd, SENSE_OK);
		return;
	}
	if (scsi_alloc_data_in(cmd, cmd->xfer_len) < 0) {
		scsi_cmd_complete(cmd, SENSE_INTERNAL_FAILURE);
		return;
	}
	c = get_ctx_or_fail(cmd);
	if (c) {
		ctx_submit(cmd, c, STORE_OP_READ, cmd->lba, cmd->nblocks, cmd->data_in, false,
			   last_io_done);
	}
}

void sbc_exec_write(struct scsi_cmd *cmd)
{
	struct scsi_io_ctx *c;

	if (cmd->nblocks == 0) {
		scsi_cmd_complete(cmd, SENSE_OK);
		return;
	}
	c = get_ctx_or_fail(cmd);
	if (c) {
		ctx_submit(cmd, c, STORE_OP_WRITE, cmd->lba, cmd->nblocks, cmd->data_out,
			   write_fua(cmd), last_io_done);
	}
}

/* ------------------------------------------------------------- VERIFY */

enum sense_reason sbc_parse_verify(struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	unsigned bytchk = (cdb[1] >> 1) & 0x03;
	unsigned len_byte;
	uint64_t n;
	enum sense_reason r;

	if (cdb[1] & 0xe0) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 1, 7); /* VRPROTECT */
	}
	if (bytchk == 2) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 1, 2);
	}
	switch (cdb[0]) {
	case SCSI_OP_VERIFY_10:
		cmd->lba = get_be32(cdb + 2);
		n = get_be16(cdb + 7);
		len_byte = 7;
		break;
	case SCSI_OP_VERIFY_12:
		cmd->lba = get_be32(cdb + 2);
		n = get_be32(cdb + 6);
		len_byte = 6;
		break;
	default:
		cmd->lba = get_be64(cdb + 2);
		n = get_be32(cdb + 10);
		len_byte = 10;
		break;
	}
	r = set_xfer(cmd, n, len_byte);
	if (r != SENSE_OK) {
		return r;
	}
	/* SBC-3 5.33: BYTCHK 01b sends every block, 11b one block to compare against each. */
	if (bytchk == 0) {
		cmd->xfer_len = 0;
	} else {
		cmd->flags |= CMD_BYTCHK;
		if (bytchk == 3) {
			cmd->xfer_len = n ? cmd->lu->block_size : 0;
		}
	}
	return SENSE_OK;
}

static void verify_done(struct store_io *io)
{
	struct scsi_cmd *cmd = io_done(io);
	struct scsi_io_ctx *c;
	uint32_t bs;
	size_t len;
	bool single;

	if (!cmd) {
		return;
	}
	c = cmd->priv;
	if (!(cmd->flags & CMD_BYTCHK)) {
		scsi_cmd_complete(cmd, SENSE_OK);
		return;
	}
	bs = cmd->lu->block_size;
	len = (size_t)cmd->nblocks * bs;
	single = cmd->xfer_len == bs && cmd->nblocks > 1;
	for (size_t i = 0; i < len; i++) {
		uint8_t want = single ? cmd->data_out[i % bs] : cmd->data_out[i];

		if (c->buf[i] != want) {
			/* SBC-3 5.33: INFORMATION = offset of the first miscompare. */
			scsi_set_info(cmd, i);
			scsi_cmd_complete(cmd, SENSE_MISCOMPARE_VERIFY);
			return;
		}
	}
	scsi_cmd_complete(cmd, SENSE_OK);
}

/*
 * VERIFY, COMPARE AND WRITE and ORWRITE all start by reading the command's
 * whole range into the scratch buffer c->buf, then continue in `then`.
 */
static void read_range_then(struct scsi_cmd *cmd, store_cb_fn then)
{
	struct scsi_io_ctx *c;

	if (cmd->nblocks == 0) {
		scsi_cmd_complete(cmd, SENSE_OK);
		return;
	}
	c = get_ctx_or_fail(cmd);
	if (!c) {
		return;
	}
	if (ctx_buf(c, (size_t)cmd->nblocks * cmd->lu->block_size) < 0) {
		scsi_cmd_complete(cmd, SENSE_INTERNAL_FAILURE);
		return;
	}
	ctx_submit(cmd, c, STORE_OP_READ, cmd->lba, cmd->nblocks, c->buf, false, then);
}

void sbc_exec_verify(struct scsi_cmd *cmd)
{
	read_range_then(cmd, verify_done);
}

/* ------------------------------------------------------ READ CAPACITY */

enum sense_reason sbc_parse_read_capacity_10(struct scsi_cmd *cmd)
{
	/* SBC-3 5.15: with PMI=0 the LOGICAL BLOCK ADDRESS must be zero. */
	if (!(cmd->cdb[8] & 0x01) && get_be32(cmd->cdb + 2) != 0) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 2, -1);
	}
	return SENSE_OK;
}

void sbc_exec_read_capacity_10(struct scsi_cmd *cmd)
{
	const struct scsi_lu *lu = cmd->lu;
	uint8_t b[8];
	uint64_t last = lu->nblocks ? lu->nblocks - 1 : 0;

	/* Too big for 32 bits: 0xFFFFFFFF tells the initiator to use READ CAPACITY(16). */
	put_be32(b, last > 0xfffffffeull ? 0xffffffffu : (uint32_t)last);
	put_be32(b + 4, lu->block_size);
	scsi_cmd_complete(cmd, scsi_reply(cmd, b, sizeof(b), sizeof(b)));
}

enum sense_reason sbc_parse_read_capacity_16(struct scsi_cmd *cmd)
{
	return SENSE_OK;
}

void sbc_exec_read_capacity_16(struct scsi_cmd *cmd)
{
	const struct scsi_lu *lu = cmd->lu;
	uint8_t b[32] = { 0 };

	put_be64(b, lu->nblocks ? lu->nblocks - 1 : 0);
	put_be32(b + 8, lu->block_size);
	if (lu->st->caps & STORE_CAP_UNMAP) {
		b[14] = 0x80 | 0x40; /* LBPME, LBPRZ (SBC-3 5.16.2) */
	}
	scsi_cmd_complete(cmd, scsi_reply(cmd, b, sizeof(b), get_be32(cmd->cdb + 10)));
}

/* --------------------------------------------------- SYNCHRONIZE CACHE */

enum sense_reason sbc_parse_sync_cache(struct scsi_cmd *cmd)
{
	if (cmd->cdb[0] == SCSI_OP_SYNCHRONIZE_CACHE_10 || cmd->cdb[0] == SCSI_OP_PRE_FETCH_10) {
		cmd->lba = get_be32(cmd->cdb + 2);
		cmd->nblocks = get_be16(cmd->cdb + 7);
	} else {
		cmd->lba = get_be64(cmd->cdb + 2);
		cmd->nblocks = get_be32(cmd->cdb + 10);
	}
	if (cmd->cdb[1] & 0x02) {
		cmd->flags |= CMD_IMMED;
	}
	return SENSE_OK;
}

static void flush_done(struct store_io *io)
{
	if (io->status == -ENOTSUP) {
		io->status = 0; /* nothing volatile to flush */
	}
	last_io_done(io);
}

static void flush_immed_done(struct store_io *io)
{
	if (io->status < 0 && io->status != -ENOTSUP) {
		LOG_RATELIMIT(LOG_LEVEL_WARN, "scsi", "immediate SYNCHRONIZE CACHE failed: %d",
			      io->status);
	}
	free(io);
}

void sbc_exec_sync_cache(struct scsi_cmd *cmd)
{
	struct scsi_io_ctx *c;

	if (cmd->flags & CMD_IMMED) {
		/* SBC-3 5.22: IMMED=1 returns status once the CDB is validated. */
		struct store_io *io = calloc(1, sizeof(*io));

		if (!io) {
			scsi_cmd_complete(cmd, SENSE_INTERNAL_FAILURE);
			return;
		}
		io->op = STORE_OP_FLUSH;
		io->cb = flush_immed_done;
		if (store_submit(cmd->lu->st, io) < 0) {
			free(io);
		}
		scsi_cmd_complete(cmd, SENSE_OK);
		return;
	}
	c = get_ctx_or_fail(cmd);
	if (c) {
		ctx_submit(cmd, c, STORE_OP_FLUSH, 0, 0, NULL, false, flush_done);
	}
}

/* ---------------------------------------------------------- PRE-FETCH */

enum sense_reason sbc_parse_prefetch(struct scsi_cmd *cmd)
{
	return sbc_parse_sync_cache(cmd);
}

void sbc_exec_prefetch(struct scsi_cmd *cmd)
{
	/* SBC-3 5.9: without a cache to load, GOOD (not CONDITION MET). */
	scsi_cmd_complete(cmd, SENSE_OK);
}

/* --------------------------------------------------------- WRITE SAME */

enum sense_reason sbc_parse_write_same(struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	struct scsi_lu *lu = cmd->lu;
	bool sixteen = cdb[0] == SCSI_OP_WRITE_SAME_16;
	uint64_t n;
	unsigned len_byte = sixteen ? 10 : 7;

	if (cdb[1] & 0xe0) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 1, 7); /* WRPROTECT */
	}
	if (cdb[1] & 0x10) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 1, 4); /* ANCHOR: ANC_SUP=0 */
	}
	if (cdb[1] & 0x08) {
		cmd->flags |= CMD_UNMAP;
	}
	if (sixteen && (cdb[1] & 0x01)) {
		cmd->flags |= CMD_NDOB;
	}
	if (!sixteen && (cdb[1] & 0x01)) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 1, 0);
	}
	cmd->lba = sixteen ? get_be64(cdb + 2) : get_be32(cdb + 2);
	n = sixteen ? get_be32(cdb + 10) : get_be16(cdb + 7);
	if (n == 0) {
		/* SBC-3 5.42: 0 = to the end of the medium (WSNZ=0). */
		if (cmd->lba > lu->nblocks) {
			return SENSE_LBA_OUT_OF_RANGE;
		}
		n = lu->nblocks - cmd->lba;
	}
	if (n > sbc_max_ws_blocks(lu)) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, len_byte, -1);
	}
	cmd->nblocks = (uint32_t)n;
	cmd->xfer_len = (cmd->flags & CMD_NDOB) ? 0 : lu->block_size;
	return SENSE_OK;
}

static void ws_next(struct scsi_cmd *cmd);

static void ws_piece_done(struct store_io *io)
{
	struct scsi_cmd *cmd = io_done(io);

	if (cmd) {
		ws_next(cmd);
	}
}

static void ws_next(struct scsi_cmd *cmd)
{
	struct scsi_io_ctx *c = cmd->priv;
	uint64_t left = c->end - c->pos;
	uint64_t piece = c->buf_cap / cmd->lu->block_size;
	uint64_t lba = c->pos;

	if (left == 0) {
		scsi_cmd_complete(cmd, SENSE_OK);
		return;
	}
	if (piece > left) {
		piece = left;
	}
	c->pos += piece;
	ctx_submit(cmd, c, STORE_OP_WRITE, lba, piece, c->buf, write_fua(cmd), ws_piece_done);
}

void sbc_exec_write_same(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	uint32_t bs = lu->block_size;
	bool zero = (cmd->flags & CMD_NDOB) || mem_is_zero(cmd->data_out, bs);
	struct scsi_io_ctx *c;
	size_t cap;

	if (cmd->nblocks == 0) {
		scsi_cmd_complete(cmd, SENSE_OK);
		return;
	}
	c = get_ctx_or_fail(cmd);
	if (!c) {
		return;
	}
	if ((cmd->flags & CMD_UNMAP) && (lu->st->caps & STORE_CAP_UNMAP)) {
		/*
		 * SBC-3 5.43 / 4.7.3.3: with UNMAP=1 the device server may deallocate
		 * the range; LBPRZ then makes it read zeros whatever the Data-Out held.
		 * libiscsi's WriteSame*.UnmapUntilEnd expects exactly that.
		 */
		ctx_submit(cmd, c, STORE_OP_UNMAP, cmd->lba, cmd->nblocks, NULL, false,
			   last_io_done);
		return;
	}
	if (zero) {
		ctx_submit(cmd, c, STORE_OP_WRITE_ZEROES, cmd->lba, cmd->nblocks, NULL,
			   write_fua(cmd), last_io_done);
		return;
	}
	cap = SBC_WS_PIECE_BYTES / bs;
	if (cap > cmd->nblocks) {
		cap = cmd->nblocks;
	}
	cap *= bs;
	if (ctx_buf(c, cap) < 0) {
		scsi_cmd_complete(cmd, SENSE_INTERNAL_FAILURE);
		return;
	}
	/* ws_next writes buf_cap bytes per piece: keep it exactly a whole number of blocks. */
	c->buf_cap = cap;
	for (size_t off = 0; off < cap; off += bs) {
		memcpy(c->buf + off, cmd->data_out, bs);
	}
	c->pos = cmd->lba;
	c->end = cmd->lba + cmd->nblocks;
	ws_next(cmd);
}

/* -------------------------------------------------------------- UNMAP */

#define UNMAP_HDR 8
#define UNMAP_DESC 16

enum sense_reason sbc_parse_unmap(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	uint32_t len = get_be16(cmd->cdb + 7);
	const uint8_t *d = cmd->data_out;
	uint64_t lo = UINT64_MAX, hi = 0;
	uint32_t bddl, ndesc;

	if (cmd->cdb[1] & 0x01) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 1, 0); /* ANCHOR */
	}
	cmd->xfer_len = len;
	if (len == 0) {
		return SENSE_OK;
	}
	if (cmd->data_out_len < len) {
		return SENSE_INVALID_FIELD_IU;
	}
	/* SBC-3 5.28.2: a list shorter than the header is a length error. */
	if (len < UNMAP_HDR) {
		return SENSE_PARAM_LIST_LENGTH;
	}
	bddl = get_be16(d + 2);
	if (bddl > len - UNMAP_HDR) {
		bddl = len - UNMAP_HDR;
	}
	ndesc = bddl / UNMAP_DESC; /* a truncated last descriptor is ignored */
	if (ndesc > sbc_max_unmap_descs()) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_PARAM, 2, -1);
	}
	for (uint32_t i = 0; i < ndesc; i++) {
		const uint8_t *p = d + UNMAP_HDR + (size_t)i * UNMAP_DESC;
		uint64_t lba = get_be64(p);
		uint64_t n = get_be32(p + 8);

		/* 64-bit arithmetic: lba + n must not wrap past the medium. */
		if (lba > lu->nblocks || n > lu->nblocks - lba) {
			return SENSE_LBA_OUT_OF_RANGE;
		}
		if (n > sbc_max_unmap_blocks(lu)) {
			return scsi_field(cmd, SENSE_INVALID_FIELD_PARAM,
					  UNMAP_HDR + i * UNMAP_DESC + 8, -1);
		}
		if (n && lba < lo) {
			lo = lba;
		}
		if (n && lba + n > hi) {
			hi = lba + n;
		}
	}
	if (hi > lo) {
		/* Lock the bounding range so COMPARE AND WRITE stays atomic against UNMAP. */
		cmd->flags |= CMD_LOCKED;
		cmd->priv_u64[CMD_U64_LOCK_LBA] = lo;
		cmd->priv_u64[CMD_U64_LOCK_N] = hi - lo;
	}
	return SENSE_OK;
}

/*
 * UNMAP runs up to UNMAP_INFLIGHT descriptors at once: a store that deletes
 * objects pays a round trip per descriptor, and initiators send lists of
 * hundreds (Windows retrim, VMware). Overlapping descriptors are harmless:
 * deallocation is idempotent and every store orders the operations on one
 * chunk itself. The store_ios live in the ctx's scratch buffer, a bit in
 * c->step marks each one in flight, c->pos holds the first failure, and the
 * command completes when the last io in flight does (c->step back to 0).
 */
#define UNMAP_INFLIGHT 8
#define UNMAP_ALL_BUSY ((1u << UNMAP_INFLIGHT) - 1)
_Static_assert(UNMAP_INFLIGHT < 32, "c->step is the in-flight bitmap");

static void unmap_pump(struct scsi_cmd *cmd);

static void unmap_done(struct store_io *io)
{
	struct scsi_io_ctx *c = io->cb_arg;
	struct scsi_cmd *cmd = c->cmd;

	c->step &= ~(1u << (io - (struct store_io *)c->buf));
	if (io->status < 0 && c->pos == SENSE_OK) {
		LOG_RATELIMIT(LOG_LEVEL_WARN, "scsi", "LUN %llu ITT 0x%08x: store unmap: %d",
			      (unsigned long long)cmd->lu->lun, cmd->tag, io->status);
		c->pos = scsi_errno_reason(io->status, true);
	}
	unmap_pump(cmd);
}

static void unmap_pump(struct scsi_cmd *cmd)
{
	struct scsi_io_ctx *c = cmd->priv;
	struct store_io *ios = (struct store_io *)c->buf;

	while (c->pos == SENSE_OK && !cmd->aborted && c->idx < c->end &&
	       c->step != UNMAP_ALL_BUSY) {
		const uint8_t *p = cmd->data_out + UNMAP_HDR + (size_t)c->idx * UNMAP_DESC;
		uint64_t n = get_be32(p + 8);
		struct store_io *io;
		unsigned slot = 0;
		int rc;

		c->idx++;
		if (n == 0) {
			continue;
		}
		while (c->step & (1u << slot)) {
			slot++;
		}
		io = &ios[slot];
		memset(io, 0, sizeof(*io));
		io->op = STORE_OP_UNMAP;
		io->offset = get_be64(p) * cmd->lu->block_size;
		io->len = n * cmd->lu->block_size;
		io->cb = unmap_done;
		io->cb_arg = c;
		c->step |= 1u << slot;
		rc = store_submit(cmd->lu->st, io);
		if (rc < 0) {
			c->step &= ~(1u << slot);
			c->pos = scsi_errno_reason(rc, true);
		}
	}
	if (c->step == 0) {
		scsi_cmd_complete(cmd, (enum sense_reason)c->pos);
	}
}

void sbc_exec_unmap(struct scsi_cmd *cmd)
{
	struct scsi_io_ctx *c;

	/* Without STORE_CAP_UNMAP we advertise no LBPU; UNMAP is then a harmless no-op. */
	if (cmd->xfer_len == 0 || !(cmd->lu->st->caps & STORE_CAP_UNMAP)) {
		scsi_cmd_complete(cmd, SENSE_OK);
		return;
	}
	c = get_ctx_or_fail(cmd);
	if (!c) {
		return;
	}
	if (ctx_buf(c, UNMAP_INFLIGHT * sizeof(struct store_io)) < 0) {
		scsi_cmd_complete(cmd, SENSE_INTERNAL_FAILURE);
		return;
	}
	c->idx = 0;
	c->step = 0;
	c->pos = SENSE_OK;
	c->end = get_be16(cmd->data_out + 2);
	if (c->end > cmd->xfer_len - UNMAP_HDR) {
		c->end = cmd->xfer_len - UNMAP_HDR;
	}
	c->end /= UNMAP_DESC;
	unmap_pump(cmd);
}

/* ---------------------------------------------------- GET LBA STATUS */

enum sense_reason sbc_parse_get_lba_status(struct scsi_cmd *cmd)
{
	cmd->lba = get_be64(cmd->cdb + 2);
	/* SBC-3 5.6: the starting LBA must name a block of the medium. */
	if (cmd->lba >= cmd->lu->nblocks) {
		return SENSE_LBA_OUT_OF_RANGE;
	}
	return SENSE_OK;
}

void sbc_exec_get_lba_status(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	uint32_t alloc = get_be32(cmd->cdb + 10);
	uint8_t b[8 + SBC_LBA_STATUS_MAX * 16];
	size_t n = 8;
	uint64_t lba = cmd->lba;
	uint32_t bs = lu->block_size;
	enum sense_reason r;

	memset(b, 0, sizeof(b));
	while (lba < lu->nblocks && n + 16 <= sizeof(b) && (n == 8 || n + 16 <= alloc)) {
		bool mapped = true;
		uint64_t run = (lu->nblocks - lba) * bs;
		uint64_t blocks;

		if (lu->st->ops->lba_status && (lu->st->caps & STORE_CAP_LBA_STATUS)) {
			int rc = lu->st->ops->lba_status(lu->st, lba * bs, &mapped, &run);

			if (rc < 0) {
				scsi_cmd_complete(cmd, scsi_errno_reason(rc, false));
				return;
			}
		}
		blocks = run / bs;
		if (blocks == 0) {
			blocks = 1;
		}
		if (blocks > lu->nblocks - lba) {
			blocks = lu->nblocks - lba;
		}
		if (blocks > UINT32_MAX) {
			blocks = UINT32_MAX;
		}
		put_be64(b + n, lba);
		put_be32(b + n + 8, (uint32_t)blocks);
		b[n + 12] = mapped ? 0x00 : 0x01; /* PROVISIONING STATUS: mapped / deallocated */
		n += 16;
		lba += blocks;
	}
	put_be32(b, (uint32_t)(n - 4));
	r = scsi_reply(cmd, b, n, alloc);
	scsi_cmd_complete(cmd, r);
}

/* -------------------------------------------------- COMPARE AND WRITE */

enum sense_reason sbc_parse_caw(struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	uint32_t n = cdb[13];

	if (cdb[1] & 0xe0) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 1, 7); /* WRPROTECT */
	}
	if (n > sbc_max_caw_blocks()) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 13, -1);
	}
	if (cdb[1] & 0x08) {
		cmd->flags |= CMD_FUA;
	}
	cmd->lba = get_be64(cdb + 2);
	cmd->nblocks = n;
	/* SBC-3 5.3: Data-Out is the verify instance followed by the write instance. */
	cmd->xfer_len = 2 * n * cmd->lu->block_size;
	/*
	 * A NUMBER OF LOGICAL BLOCKS that disagrees with the Data-Out sent (e.g. a
	 * length truncated to 8 bits) is a CDB error; libiscsi expects INVALID FIELD.
	 */
	if (cmd->data_out_len != cmd->xfer_len) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 13, -1);
	}
	return SENSE_OK;
}

static void caw_read_done(struct store_io *io)
{
	struct scsi_cmd *cmd = io_done(io);
	struct scsi_io_ctx *c;
	size_t len;

	if (!cmd) {
		return;
	}
	c = cmd->priv;
	len = (size_t)cmd->nblocks * cmd->lu->block_size;
	for (size_t i = 0; i < len; i++) {
		if (c->buf[i] != cmd->data_out[i]) {
			/* SBC-3 5.3: INFORMATION = offset of the first byte that differs. */
			scsi_set_info(cmd, i);
			scsi_cmd_complete(cmd, SENSE_MISCOMPARE_CAW);
			return;
		}
	}
	ctx_submit(cmd, c, STORE_OP_WRITE, cmd->lba, cmd->nblocks, cmd->data_out + len,
		   write_fua(cmd), last_io_done);
}

void sbc_exec_caw(struct scsi_cmd *cmd)
{
	read_range_then(cmd, caw_read_done);
}

/* --------------------------------------------------------------- ORWRITE */

static void orwrite_read_done(struct store_io *io)
{
	struct scsi_cmd *cmd = io_done(io);
	struct scsi_io_ctx *c;
	size_t len;

	if (!cmd) {
		return;
	}
	c = cmd->priv;
	len = (size_t)cmd->nblocks * cmd->lu->block_size;
	for (size_t i = 0; i < len; i++) {
		c->buf[i] |= cmd->data_out[i];
	}
	ctx_submit(cmd, c, STORE_OP_WRITE, cmd->lba, cmd->nblocks, c->buf, write_fua(cmd),
		   last_io_done);
}

/*
 * SBC-3 5.8: ORWRITE(16) ORs the Data-Out into the medium. The opcode table
 * makes it an exclusive range holder (as COMPARE AND WRITE), so the read,
 * OR and write are atomic against every overlapping command.
 */
void sbc_exec_orwrite(struct scsi_cmd *cmd)
{
	read_range_then(cmd, orwrite_read_done);
}

/* ------------------------------------------------------- WRITE ATOMIC(16) */

enum sense_reason sbc_parse_write_atomic(struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;

	if (cdb[1] & 0xe0) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 1, 7); /* WRPROTECT */
	}
	/* SBC-4 5.48: MAXIMUM ATOMIC BOUNDARY SIZE is 0, so no ATOMIC BOUNDARY. */
	if (get_be16(cdb + 10) != 0) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 10, -1);
	}
	if (cdb[1] & 0x10) {
		cmd->flags |= CMD_DPO;
	}
	if (cdb[1] & 0x08) {
		cmd->flags |= CMD_FUA;
	}
	cmd->lba = get_be64(cdb + 2);
	return set_xfer(cmd, get_be16(cdb + 12), 12);
}

uint32_t sbc_max_atomic_blocks(const struct scsi_lu *lu)
{
	/*
	 * One store io carries the whole write and the exclusive range lock keeps
	 * overlapping reads and writes out until it completes, so any write the
	 * LU accepts at all is atomic: the atomic limit is MAXIMUM TRANSFER LENGTH.
	 */
	return sbc_max_xfer_blocks(lu);
}

/* ------------------------------------------------- READ DEFECT DATA (10/12) */

#define DEFECT_FORMAT_RESERVED 0x7

enum sense_reason sbc_parse_read_defect(struct scsi_cmd *cmd)
{
	bool twelve = cmd->cdb[0] == SCSI_OP_READ_DEFECT_DATA_12;
	unsigned byte = twelve ? 1 : 2;

	/* SBC-3 6.1.2 table 135: 111b is reserved, the others describe a defect list. */
	if ((cmd->cdb[byte] & 0x07) == DEFECT_FORMAT_RESERVED) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, byte, 2);
	}
	return SENSE_OK;
}

/*
 * SBC-3 5.12/5.13: the LU has no medium defects (the store remaps nothing
 * visible), so both the primary and the grown list are empty. Any list format
 * can express an empty list, so the requested one is echoed back.
 */
void sbc_exec_read_defect(struct scsi_cmd *cmd)
{
	bool twelve = cmd->cdb[0] == SCSI_OP_READ_DEFECT_DATA_12;
	uint8_t req = twelve ? cmd->cdb[1] : cmd->cdb[2];
	uint8_t b[8] = { 0 };
	uint32_t alloc = twelve ? get_be32(cmd->cdb + 6) : get_be16(cmd->cdb + 7);

	b[1] = req & 0x1f; /* PLISTV, GLISTV: the lists asked for are (empty and) valid */
	scsi_cmd_complete(cmd, scsi_reply(cmd, b, twelve ? 8 : 4, alloc));
}

