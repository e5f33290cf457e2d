/*
 * sanitize.c - SANITIZE (SBC-3 5.30): OVERWRITE and BLOCK ERASE of the whole
 * medium, and EXIT FAILURE MODE.
 *
 * A sanitize is one pass (OVERWRITE: OVERWRITE COUNT passes) over the medium,
 * cut into pieces; up to SANITIZE_INFLIGHT pieces are in flight at once:
 *
 *   exec ──> pass: [submit pieces while < SANITIZE_INFLIGHT in flight]
 *              │ last piece of the pass done
 *              ├── passes left: INVERT flips the pattern ──> next pass
 *              └── none left ──> FLUSH ──> GOOD
 *   any failure: no new piece; once the ones in flight are back ──> CHECK CONDITION
 *
 * Why pieces in parallel, cut at the store's granularity: over a chunked
 * store (s3, dir) one piece at a time left the store's request slots idle
 * between pieces, and a piece smaller than a chunk made every chunk a
 * read-modify-write (a GET and a whole-chunk PUT per piece). An OVERWRITE
 * piece is a whole number of opt_io_bytes (a chunk) aligned to it, so each
 * chunk is one PUT and no GET; the store bounds its own concurrency.
 *
 * Every OVERWRITE piece writes the same pattern buffer (a write only reads
 * it), so the pieces in flight cost no memory beyond it. INVERT changes the
 * buffer only between passes, when nothing is in flight.
 *
 * The sanitize is not cut short by ABORT TASK or a reset (SBC-3 4.11.1: it
 * survives them); while it runs the LU answers NOT READY, SANITIZE IN
 * PROGRESS (lu->sanitizing, checked in lu.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "s3tgt/core.h"
#include "s3tgt/log.h"
#include "scsi_internal.h"

#define SANITIZE_OW_HDR 4
/* The smallest OVERWRITE piece (rounded up to the store's granularity). */
#define SANITIZE_PIECE_BYTES (1u << 20)
/*
 * Pieces in flight: enough to keep a chunked store's request slots (32 by
 * default) busy even when a piece is one chunk.
 */
#define SANITIZE_INFLIGHT 32

struct sanitize_run {
	struct scsi_cmd *cmd;
	uint8_t *pattern; /* OVERWRITE: one piece of the repeated pattern */
	uint64_t piece;	  /* blocks per piece */
	uint64_t pos;	  /* next LBA of this pass */
	unsigned passes;  /* OVERWRITE passes left, this one included */
	unsigned inflight;
	bool overwrite;
	enum sense_reason err; /* first failure; SENSE_OK while none */
	uint64_t started_ms;
	struct store_io flush;
	struct store_io io[SANITIZE_INFLIGHT];
};

/*
 * SBC-3 5.30. OVERWRITE parameter list (table 67): byte 0 INVERT (bit 7),
 * TEST (bits 6-5), OVERWRITE COUNT (bits 4-0); bytes 2-3 INITIALIZATION
 * PATTERN LENGTH; then the pattern, at most one logical block.
 */
enum sense_reason sbc_parse_sanitize(struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	struct scsi_lu *lu = cmd->lu;
	unsigned sa = cdb[1] & 0x1f;
	uint32_t len = get_be16(cdb + 7);
	const uint8_t *d = cmd->data_out;
	uint32_t plen;

	if (cdb[1] & 0x40) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 1, 6); /* reserved */
	}
	for (unsigned i = 2; i < 7; i++) {
		if (cdb[i]) {
			return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, i, -1);
		}
	}
	/*
	 * IMMED would need the sanitize to outlive its command; it is not
	 * offered (CDB USAGE DATA leaves the bit clear).
	 */
	if (cdb[1] & 0x80) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 1, 7);
	}
	cmd->xfer_len = len;
	if (sa != SCSI_SA_SANITIZE_OVERWRITE) {
		/* BLOCK ERASE and EXIT FAILURE MODE take no parameter list. */
		if (len != 0) {
			return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 7, -1);
		}
	} else {
		/* The list is exactly the header plus a 1..block_size byte pattern. */
		if (len <= SANITIZE_OW_HDR || len > SANITIZE_OW_HDR + lu->block_size) {
			return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 7, -1);
		}
		if (cmd->data_out_len < len) {
			return SENSE_INVALID_FIELD_IU;
		}
		plen = get_be16(d + 2);
		if ((d[0] & 0x60) || (d[0] & 0x1f) == 0) {
			return scsi_field(cmd, SENSE_INVALID_FIELD_PARAM, 0, -1);
		}
		if (plen == 0 || plen != len - SANITIZE_OW_HDR) {
			return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 7, -1);
		}
	}
	/* The whole medium, exclusively: older commands finish first. */
	cmd->flags |= CMD_LOCKED;
	cmd->priv_u64[CMD_U64_LOCK_LBA] = 0;
	cmd->priv_u64[CMD_U64_LOCK_N] = lu->nblocks;
	return SENSE_OK;
}

static void run_finish(struct sanitize_run *s, enum sense_reason r)
{
	struct scsi_cmd *cmd = s->cmd;
	struct scsi_lu *lu = cmd->lu;

	LOG_INFO("scsi", "LUN %llu ITT 0x%08x: sanitize %s after %llu ms",
		 (unsigned long long)lu->lun, cmd->tag, r == SENSE_OK ? "done" : "failed",
		 (unsigned long long)(reactor_now_ms() - s->started_ms));
	free(s->pattern);
	free(s);
	lu->sanitizing = false;
	scsi_cmd_complete(cmd, r);
}

static void run_fail(struct sanitize_run *s, int err)
{
	if (s->err == SENSE_OK) {
		LOG_RATELIMIT(LOG_LEVEL_WARN, "scsi", "LUN %llu ITT 0x%08x: sanitize io: %s",
			      (unsigned long long)s->cmd->lu->lun, s->cmd->tag, strerror(-err));
		s->err = scsi_errno_reason(err, true);
	}
}

static void run_pump(struct sanitize_run *s);

static void flush_done(struct store_io *io)
{
	struct sanitize_run *s = io->cb_arg;

	/* A store with nothing volatile has nothing to flush. */
	if (io->status < 0 && io->status != -ENOTSUP) {
		run_fail(s, io->status);
	}
	run_finish(s, s->err);
}

static void piece_done(struct store_io *io)
{
	struct sanitize_run *s = io->cb_arg;

	s->inflight--;
	io->len = 0; /* this slot is free again */
	if (io->status < 0) {
		run_fail(s, io->status);
	}
	run_pump(s);
}

static int submit_piece(struct sanitize_run *s, struct store_io *io)
{
	struct scsi_lu *lu = s->cmd->lu;
	uint64_t n = s->piece;

	if (n > lu->nblocks - s->pos) {
		n = lu->nblocks - s->pos;
	}
	memset(io, 0, sizeof(*io));
	if (s->overwrite) {
		io->op = STORE_OP_WRITE;
		io->buf = s->pattern;
	} else {
		io->op = (lu->st->caps & STORE_CAP_UNMAP) ? STORE_OP_UNMAP : STORE_OP_WRITE_ZEROES;
	}
	io->offset = s->pos * lu->block_size;
	io->len = n * lu->block_size;
	io->cb = piece_done;
	io->cb_arg = s;
	s->pos += n;
	return store_submit(lu->st, io);
}

/*
 * Submit what fits, then move on when the pass is over. Completions always
 * come later, from the reactor (the store contract), so this never recurses.
 */
static void run_pump(struct sanitize_run *s)
{
	struct scsi_lu *lu = s->cmd->lu;
	unsigned slot = 0;
	int rc;

	while (s->err == SENSE_OK && s->pos < lu->nblocks && s->inflight < SANITIZE_INFLIGHT) {
		while (s->io[slot].len) {
			slot++;
		}
		rc = submit_piece(s, &s->io[slot]);
		if (rc < 0) {
			s->io[slot].len = 0;
			run_fail(s, rc);
			break;
		}
		s->inflight++;
	}
	if (s->inflight) {
		return;
	}
	if (s->err != SENSE_OK) {
		run_finish(s, s->err);
		return;
	}
	if (s->overwrite && --s->passes > 0) {
		if (s->cmd->data_out[0] & 0x80) {
			for (uint64_t i = 0; i < s->piece * lu->block_size; i++) {
				s->pattern[i] = (uint8_t)~s->pattern[i];
			}
		}
		s->pos = 0;
		run_pump(s);
		return;
	}
	/* SBC-3 5.30.1: the result must be durable before GOOD. */
	s->flush.op = STORE_OP_FLUSH;
	s->flush.cb = flush_done;
	s->flush.cb_arg = s;
	rc = store_submit(lu->st, &s->flush);
	if (rc < 0) {
		s->flush.status = rc;
		flush_done(&s->flush);
	}
}

/* OVERWRITE pieces: at least SANITIZE_PIECE_BYTES, whole store granules, never past the end. */
static uint64_t overwrite_piece_blocks(const struct scsi_lu *lu)
{
	uint64_t bs = lu->block_size, gran = lu->st->opt_io_bytes, bytes = SANITIZE_PIECE_BYTES;

	if (gran >= bs && gran % bs == 0) {
		bytes = (bytes + gran - 1) / gran * gran;
	}
	bytes = bytes / bs;
	return bytes < lu->nblocks ? bytes : lu->nblocks;
}

void sbc_exec_sanitize(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	unsigned sa = cmd->cdb[1] & 0x1f;
	uint32_t bs = lu->block_size;
	struct sanitize_run *s;
	size_t plen, bytes;

	/* Never in a failed sanitize state: there is no failure mode to leave. */
	if (sa == SCSI_SA_SANITIZE_EXIT_FAILURE || lu->nblocks == 0) {
		scsi_cmd_complete(cmd, SENSE_OK);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		scsi_cmd_complete(cmd, SENSE_INTERNAL_FAILURE);
		return;
	}
	s->cmd = cmd;
	s->overwrite = sa == SCSI_SA_SANITIZE_OVERWRITE;
	if (s->overwrite) {
		s->piece = overwrite_piece_blocks(lu);
		bytes = (size_t)(s->piece * bs);
		s->pattern = malloc(bytes);
		if (!s->pattern) {
			free(s);
			scsi_cmd_complete(cmd, SENSE_INTERNAL_FAILURE);
			return;
		}
		/* SBC-3 5.30.2.2: a pattern shorter than a block repeats to fill it. */
		plen = get_be16(cmd->data_out + 2);
		for (size_t i = 0; i < bytes; i++) {
			s->pattern[i] = cmd->data_out[SANITIZE_OW_HDR + i % bs % plen];
		}
		s->passes = cmd->data_out[0] & 0x1f;
	} else {
		s->piece = sbc_max_unmap_blocks(lu);
	}
	s->started_ms = reactor_now_ms();
	lu->sanitizing = true;
	LOG_INFO("scsi", "LUN %llu ITT 0x%08x: sanitize %s started (%llu blocks)",
		 (unsigned long long)lu->lun, cmd->tag, s->overwrite ? "overwrite" : "block erase",
		 (unsigned long long)lu->nblocks);
	run_pump(s);
}
