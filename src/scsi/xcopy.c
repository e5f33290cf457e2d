/*
 * xcopy.c - EXTENDED COPY (LID1) and RECEIVE COPY RESULTS (SPC-4 6.4, 6.18):
 * the LU is a copy manager for block device -> block device segments (02h)
 * between LUs of this daemon, named by identification descriptor target
 * descriptors (E4h) carrying the NAA designator of VPD 0x83.
 *
 *   EXTENDED COPY ──> validate the whole parameter list (nothing is copied
 *   when any descriptor is bad) ──> for each segment, for each piece of at
 *   most XCOPY_PIECE_BYTES:  READ(16) on the source ──> WRITE(16) on the
 *   destination ──> next piece ... ──> complete the EXTENDED COPY.
 *
 * The reads and writes are internal SCSI commands submitted to the copy
 * target LUs with the EXTENDED COPY's I_T nexus, so reservations, write
 * protection, range locks against COMPARE AND WRITE, ordering and task
 * aborts apply to them exactly as to an initiator's own commands. They are
 * asynchronous: the reactor is never blocked, and one piece is in flight at
 * a time per copy. Invariants:
 * - struct xcopy lives from the start of the first piece to the completion of
 *   the EXTENDED COPY; the internal commands point at it through done_arg.
 * - Both copy targets must complete on the copy manager's reactor (an LU on
 *   another reactor is "not reachable"), so every callback runs on one thread.
 * - Inline data, held data and stream devices are not supported: OPERATING
 *   PARAMETERS reports zero for their limits.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "s3tgt/log.h"
#include "scsi_internal.h"

/* Parameter list (SPC-4 6.4.3.1 table 110, LID1 header). */
#define XC_HDR_LEN 16
#define XC_TGT_DESC_LEN 32 /* identification descriptor target descriptor, 6.4.5.6 */
#define XC_SEG_B2B_LEN 28  /* block device to block device segment, 6.4.6.5 */
#define XC_DESC_TYPE_B2B 0x02
#define XC_DESC_TYPE_ID 0xe4

/* LIST ID USAGE (SPC-4 6.4.3.1 table 111). */
#define XC_LIST_ID_HOLD 0x0
#define XC_LIST_ID_RESERVED 0x1
#define XC_LIST_ID_DISCARD 0x2
#define XC_LIST_ID_NONE 0x3

/* Copy manager limits reported by OPERATING PARAMETERS (SPC-4 6.18.4). */
#define XCOPY_MAX_TGT_DESCS 8
#define XCOPY_MAX_SEG_DESCS 16
#define XCOPY_MAX_DESC_LIST_LEN 1024
#define XCOPY_MAX_SEG_BYTES (256u << 20) /* 65535 blocks of 4096 bytes fit */
#define XCOPY_MAX_CONCURRENT 16
#define XCOPY_PIECE_BYTES (1u << 20)
#define XCOPY_KEEP_STATUS 16 /* completed statuses kept per LU before the oldest goes */

_Static_assert(XC_HDR_LEN + XCOPY_MAX_TGT_DESCS * XC_TGT_DESC_LEN +
			       XCOPY_MAX_SEG_DESCS * XC_SEG_B2B_LEN <=
		       XC_HDR_LEN + XCOPY_MAX_DESC_LIST_LEN,
	       "descriptor limits exceed the descriptor list length");

struct xcopy_tgt {
	uint8_t naa[8];
	uint32_t block_len;
	bool resolvable; /* an NAA designator with LU association */
};

struct xcopy_seg {
	uint16_t src, dst; /* target descriptor indexes */
	uint16_t nblocks;
	uint64_t src_lba, dst_lba;
};

struct xcopy {
	struct scsi_cmd *cmd; /* the EXTENDED COPY */
	struct xcopy_status *status; /* NULL when the list id is not held */
	struct xcopy_tgt tgt[XCOPY_MAX_TGT_DESCS];
	struct xcopy_seg seg[XCOPY_MAX_SEG_DESCS];
	unsigned ntgt, nseg;
	unsigned cur;	    /* segment being copied */
	uint64_t done;	    /* blocks of the current segment copied */
	uint32_t piece;	    /* blocks in the piece in flight */
	bool backward;	    /* overlapping copy inside one LU towards higher LBAs */
	struct scsi_lu *src, *dst;
	struct scsi_cmd rd, wr;
};

/* ------------------------------------------------------------ status */

static struct xcopy_status *status_find(struct scsi_lu *lu, uint64_t nexus_id, uint8_t list_id)
{
	for (struct xcopy_status *s = lu->xstat; s; s = s->next) {
		if (s->nexus_id == nexus_id && s->list_id == list_id) {
			return s;
		}
	}
	return NULL;
}

static void status_unlink(struct scsi_lu *lu, struct xcopy_status *victim)
{
	for (struct xcopy_status **pp = &lu->xstat; *pp; pp = &(*pp)->next) {
		if (*pp == victim) {
			*pp = victim->next;
			free(victim);
			return;
		}
	}
}

/* Keep memory bounded: an initiator that never asks for its statuses. */
static void status_trim(struct scsi_lu *lu)
{
	unsigned n = 0;
	struct xcopy_status *s, *oldest = NULL;

	for (s = lu->xstat; s; s = s->next) {
		if (s->state != XCOPY_STATE_RUNNING) {
			n++;
			oldest = s; /* new entries go at the head */
		}
	}
	if (n > XCOPY_KEEP_STATUS && oldest) {
		status_unlink(lu, oldest);
	}
}

void xcopy_nexus_gone(struct scsi_lu *lu, uint64_t nexus_id)
{
	struct xcopy_status **pp = &lu->xstat;

	while (*pp) {
		struct xcopy_status *s = *pp;

		/* A running copy still points at its status: it goes when the copy ends. */
		if (s->nexus_id == nexus_id && s->state != XCOPY_STATE_RUNNING) {
			*pp = s->next;
			free(s);
		} else {
			pp = &s->next;
		}
	}
}

void xcopy_free(struct scsi_lu *lu)
{
	while (lu->xstat) {
		struct xcopy_status *s = lu->xstat;

		lu->xstat = s->next;
		free(s);
	}
}

/* ------------------------------------------------------ parameter list */

enum sense_reason xcopy_parse(struct scsi_cmd *cmd)
{
	cmd->xfer_len = get_be32(cmd->cdb + 10);
	return SENSE_OK;
}

static enum sense_reason parse_tgt(struct scsi_cmd *cmd, const uint8_t *d, unsigned off,
				   struct xcopy_tgt *t)
{
	uint8_t assoc_type = d[5];

	if (d[0] != XC_DESC_TYPE_ID) {
		return SENSE_UNSUPP_TGT_DESC;
	}
	/*
	 * SPC-4 6.4.5.6: LU ID TYPE and NUL are ignored (the designator names the
	 * LU). Only direct-access copy targets exist here.
	 */
	if ((d[1] & 0x1f) != 0) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_PARAM, off + 1, 4);
	}
	t->block_len = (uint32_t)d[29] << 16 | (uint32_t)d[30] << 8 | d[31];
	/* Designator: code set binary, association LU, type NAA, 8 bytes. */
	t->resolvable = (d[4] & 0x0f) == 0x1 && (assoc_type & 0x30) == 0 &&
			(assoc_type & 0x0f) == 0x3 && d[7] == 8;
	if (t->resolvable) {
		memcpy(t->naa, d + 8, 8);
	}
	return SENSE_OK;
}

static enum sense_reason parse_list(struct scsi_cmd *cmd, struct xcopy *x)
{
	const uint8_t *p = cmd->data_out;
	uint32_t len = cmd->xfer_len;
	uint32_t tgt_len, seg_len, inl_len;
	uint64_t need;
	unsigned off, nseg = 0;
	enum sense_reason r;

	if (len < XC_HDR_LEN) {
		return SENSE_PARAM_LIST_LENGTH;
	}
	tgt_len = get_be16(p + 2);
	seg_len = get_be32(p + 8);
	inl_len = get_be32(p + 12);
	need = (uint64_t)XC_HDR_LEN + tgt_len + seg_len + inl_len;
	if (need > len) {
		return SENSE_PARAM_LIST_LENGTH;
	}
	/* SPC-4 6.4.3.1: past MAXIMUM DESCRIPTOR LIST LENGTH is a length error. */
	if ((uint64_t)tgt_len + seg_len > XCOPY_MAX_DESC_LIST_LEN) {
		return SENSE_PARAM_LIST_LENGTH;
	}
	if (((p[1] >> 3) & 0x3) == XC_LIST_ID_RESERVED) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_PARAM, 1, 4);
	}
	if (((p[1] >> 3) & 0x3) == XC_LIST_ID_NONE && p[0] != 0) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_PARAM, 0, -1);
	}
	if (inl_len != 0) {
		/* MAXIMUM INLINE DATA LENGTH is 0. */
		return scsi_field(cmd, SENSE_INVALID_FIELD_PARAM, 12, -1);
	}
	if (tgt_len % XC_TGT_DESC_LEN != 0) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_PARAM, 2, -1);
	}
	if (tgt_len / XC_TGT_DESC_LEN > XCOPY_MAX_TGT_DESCS) {
		return SENSE_TOO_MANY_TGT_DESCS;
	}
	/* Count segment descriptors (each says its length) before judging them. */
	for (off = 0; off < seg_len; nseg++) {
		if (seg_len - off < 4 || seg_len - off < 4u + get_be16(p + XC_HDR_LEN + tgt_len + off + 2)) {
			return SENSE_PARAM_LIST_LENGTH;
		}
		off += 4u + get_be16(p + XC_HDR_LEN + tgt_len + off + 2);
	}
	if (nseg > XCOPY_MAX_SEG_DESCS) {
		return SENSE_TOO_MANY_SEG_DESCS;
	}
	x->ntgt = tgt_len / XC_TGT_DESC_LEN;
	for (unsigned i = 0; i < x->ntgt; i++) {
		off = XC_HDR_LEN + i * XC_TGT_DESC_LEN;
		r = parse_tgt(cmd, p + off, off, &x->tgt[i]);
		if (r != SENSE_OK) {
			return r;
		}
	}
	x->nseg = 0;
	for (off = 0; off < seg_len; x->nseg++) {
		const uint8_t *d = p + XC_HDR_LEN + tgt_len + off;
		struct xcopy_seg *s = &x->seg[x->nseg];

		if (d[0] != XC_DESC_TYPE_B2B) {
			return SENSE_UNSUPP_SEG_DESC;
		}
		if (get_be16(d + 2) != XC_SEG_B2B_LEN - 4) {
			return scsi_field(cmd, SENSE_INVALID_FIELD_PARAM, XC_HDR_LEN + tgt_len + off + 2,
					  -1);
		}
		s->src = get_be16(d + 4);
		s->dst = get_be16(d + 6);
		s->nblocks = get_be16(d + 10);
		s->src_lba = get_be64(d + 12);
		s->dst_lba = get_be64(d + 20);
		off += XC_SEG_B2B_LEN;
	}
	return SENSE_OK;
}

/*
 * Resolve a target descriptor to a live LU that completes on our reactor,
 * with the block length the descriptor states (SPC-4 6.4.5.6: DISK BLOCK
 * LENGTH must match the copy target's).
 */
static struct scsi_lu *resolve(const struct xcopy *x, unsigned idx)
{
	struct scsi_lu *lu;

	if (idx >= x->ntgt || !x->tgt[idx].resolvable) {
		return NULL;
	}
	lu = scsi_lu_find_naa(x->tgt[idx].naa);
	if (!lu || !lu->target || lu->st->reactor != scsi_cmd_reactor(x->cmd) ||
	    x->tgt[idx].block_len != lu->block_size) {
		return NULL;
	}
	return lu;
}

/* SPC-4 6.4.6.5: both ranges inside their media, else the segment fails. */
static enum sense_reason check_seg(const struct xcopy *x, const struct xcopy_seg *s)
{
	struct scsi_lu *src = resolve(x, s->src), *dst = resolve(x, s->dst);

	if (!src || !dst) {
		return SENSE_COPY_TARGET_UNREACHABLE;
	}
	if (s->src_lba > src->nblocks || s->nblocks > src->nblocks - s->src_lba ||
	    s->dst_lba > dst->nblocks || s->nblocks > dst->nblocks - s->dst_lba) {
		return SENSE_COPY_ABORTED;
	}
	return SENSE_OK;
}

/* -------------------------------------------------------------- copy */

static void piece_start(struct xcopy *x);

static void copy_finish(struct xcopy *x, enum sense_reason r)
{
	struct scsi_cmd *cmd = x->cmd;
	struct scsi_lu *lu = cmd->lu;

	if (x->status) {
		x->status->state = r == SENSE_OK ? XCOPY_STATE_OK : XCOPY_STATE_FAILED;
		x->status->segments = (uint16_t)x->cur;
		status_trim(lu);
	}
	lu->ncopies--;
	scsi_cmd_fini(&x->rd);
	scsi_cmd_fini(&x->wr);
	free(x);
	scsi_cmd_complete(cmd, r);
}

/*
 * An internal command failed: pass its status and sense on unchanged (a
 * RESERVATION CONFLICT or WRITE PROTECTED on a copy target is the
 * initiator's to see); an aborted one ends the copy as COPY ABORTED.
 */
static enum sense_reason piece_error(struct xcopy *x, const struct scsi_cmd *c)
{
	struct scsi_cmd *cmd = x->cmd;

	if (c->aborted || c->status == SCSI_STATUS_TASK_ABORTED) {
		return SENSE_COPY_ABORTED;
	}
	cmd->status = c->status;
	cmd->sense_len = c->sense_len;
	memcpy(cmd->sense, c->sense, c->sense_len);
	return SENSE_PRESET;
}

static void piece_next(struct xcopy *x)
{
	x->done += x->piece;
	if (x->status) {
		x->status->bytes += (uint64_t)x->piece * x->src->block_size;
	}
	if (x->done >= x->seg[x->cur].nblocks) {
		x->cur++;
		x->done = 0;
	}
	if (x->status) {
		x->status->segments = (uint16_t)x->cur;
	}
	piece_start(x);
}

static void write_done(struct scsi_cmd *c)
{
	struct xcopy *x = c->done_arg;

	if (c->status != SCSI_STATUS_GOOD || c->aborted) {
		copy_finish(x, piece_error(x, c));
		return;
	}
	scsi_cmd_fini(&x->rd);
	scsi_cmd_fini(&x->wr);
	piece_next(x);
}

static void cmd16(struct scsi_cmd *c, struct xcopy *x, struct scsi_lu *lu, uint8_t op,
		  uint64_t lba, uint32_t n)
{
	memset(c, 0, sizeof(*c));
	c->target = lu->target;
	c->nexus = x->cmd->nexus;
	c->lun = lu->lun;
	c->cdb[0] = op;
	put_be64(c->cdb + 2, lba);
	put_be32(c->cdb + 10, n);
	c->cdb_len = 16;
	/*
	 * HEAD OF QUEUE: an ORDERED command queued after the EXTENDED COPY waits
	 * for it, so the copy's own pieces must not wait for that one (SAM-5 8.6).
	 */
	c->attr = SCSI_ATTR_HEAD_OF_QUEUE;
	c->tag = x->cmd->tag;
	c->exp_data_len = n * lu->block_size;
	c->done_arg = x;
}

static uint64_t piece_offset(const struct xcopy *x, const struct xcopy_seg *s)
{
	/* Backward copies take the pieces from the end of the segment. */
	return x->backward ? s->nblocks - x->done - x->piece : x->done;
}

static void read_done(struct scsi_cmd *c)
{
	struct xcopy *x = c->done_arg;
	const struct xcopy_seg *s = &x->seg[x->cur];
	struct scsi_lu *dst;

	if (c->status != SCSI_STATUS_GOOD || c->aborted) {
		copy_finish(x, piece_error(x, c));
		return;
	}
	dst = resolve(x, s->dst);
	if (!dst || x->cmd->aborted) {
		copy_finish(x, x->cmd->aborted ? SENSE_OK : SENSE_COPY_TARGET_UNREACHABLE);
		return;
	}
	cmd16(&x->wr, x, dst, SCSI_OP_WRITE_16, s->dst_lba + piece_offset(x, s), x->piece);
	x->wr.is_write = true;
	x->wr.data_out = x->rd.data_in;
	x->wr.data_out_len = x->rd.data_in_len;
	x->wr.done = write_done;
	scsi_cmd_submit_internal(&x->wr);
}

static uint32_t piece_limit(const struct scsi_lu *src, const struct scsi_lu *dst)
{
	uint32_t n = XCOPY_PIECE_BYTES / src->block_size;

	if (n > sbc_max_xfer_blocks(src)) {
		n = sbc_max_xfer_blocks(src);
	}
	if (n > sbc_max_xfer_blocks(dst)) {
		n = sbc_max_xfer_blocks(dst);
	}
	return n;
}

static void piece_start(struct xcopy *x)
{
	const struct xcopy_seg *s;
	enum sense_reason r;
	uint64_t left;

	/* A TMF abort of the EXTENDED COPY stops it between pieces. */
	if (x->cmd->aborted) {
		copy_finish(x, SENSE_OK);
		return;
	}
	while (x->cur < x->nseg && x->seg[x->cur].nblocks == 0) {
		x->cur++; /* SPC-4 6.4.6.5: zero blocks is not an error */
	}
	if (x->cur == x->nseg) {
		copy_finish(x, SENSE_OK);
		return;
	}
	s = &x->seg[x->cur];
	/* Copy targets can go away meanwhile: look them up for every piece. */
	r = check_seg(x, s);
	if (r != SENSE_OK) {
		copy_finish(x, r);
		return;
	}
	x->src = resolve(x, s->src);
	x->dst = resolve(x, s->dst);
	/* Same LU, destination above an overlapping source: copy from the end. */
	x->backward = x->src == x->dst && s->dst_lba > s->src_lba &&
		      s->dst_lba < s->src_lba + s->nblocks;
	left = s->nblocks - x->done;
	x->piece = piece_limit(x->src, x->dst);
	if (x->piece > left) {
		x->piece = (uint32_t)left;
	}
	cmd16(&x->rd, x, x->src, SCSI_OP_READ_16, s->src_lba + piece_offset(x, s), x->piece);
	x->rd.is_read = true;
	x->rd.done = read_done;
	scsi_cmd_submit_internal(&x->rd);
}

void xcopy_exec(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	struct xcopy *x;
	struct xcopy_status *st = NULL;
	enum sense_reason r;
	uint8_t usage;

	/* SPC-4 6.4.1: a zero parameter list length is not an error; nothing happens. */
	if (cmd->xfer_len == 0) {
		scsi_cmd_complete(cmd, SENSE_OK);
		return;
	}
	x = calloc(1, sizeof(*x));
	if (!x) {
		scsi_cmd_complete(cmd, SENSE_NO_RESOURCES);
		return;
	}
	x->cmd = cmd;
	r = parse_list(cmd, x);
	for (unsigned i = 0; r == SENSE_OK && i < x->nseg; i++) {
		x->cur = i;
		r = check_seg(x, &x->seg[i]);
	}
	if (r != SENSE_OK) {
		free(x);
		scsi_cmd_complete(cmd, r);
		return;
	}
	x->cur = 0;
	usage = (cmd->data_out[1] >> 3) & 0x3;
	if (usage == XC_LIST_ID_HOLD || usage == XC_LIST_ID_DISCARD) {
		st = status_find(lu, cmd->nexus->id, cmd->data_out[0]);
		if (st && st->state == XCOPY_STATE_RUNNING) {
			/* SPC-4 6.4.3.1: the list id of a copy in progress on this nexus. */
			free(x);
			scsi_cmd_complete(cmd, SENSE_OPERATION_IN_PROGRESS);
			return;
		}
	}
	if (lu->ncopies >= XCOPY_MAX_CONCURRENT) {
		free(x);
		scsi_cmd_complete(cmd, SENSE_NO_RESOURCES);
		return;
	}
	if (st) {
		status_unlink(lu, st);
		st = NULL;
	}
	if (usage == XC_LIST_ID_HOLD) {
		st = calloc(1, sizeof(*st));
		if (!st) {
			free(x);
			scsi_cmd_complete(cmd, SENSE_NO_RESOURCES);
			return;
		}
		st->nexus_id = cmd->nexus->id;
		st->list_id = cmd->data_out[0];
		st->state = XCOPY_STATE_RUNNING;
		st->next = lu->xstat;
		lu->xstat = st;
	}
	x->status = st;
	lu->ncopies++;
	piece_start(x);
}

/* ------------------------------------------------- RECEIVE COPY RESULTS */

enum sense_reason xcopy_parse_rcr(struct scsi_cmd *cmd)
{
	cmd->xfer_len = get_be32(cmd->cdb + 10);
	return SENSE_OK;
}

static size_t op_params(const struct scsi_lu *lu, uint8_t *b)
{
	unsigned gran = 0;

	memset(b, 0, 46);
	b[4] = 0x01; /* SNLID: LIST ID USAGE 11b is supported */
	put_be16(b + 8, XCOPY_MAX_TGT_DESCS);
	put_be16(b + 10, XCOPY_MAX_SEG_DESCS);
	put_be32(b + 12, XCOPY_MAX_DESC_LIST_LEN);
	put_be32(b + 16, XCOPY_MAX_SEG_BYTES);
	put_be16(b + 34, XCOPY_MAX_CONCURRENT);
	b[36] = XCOPY_MAX_CONCURRENT;
	while ((1u << gran) < lu->block_size) {
		gran++;
	}
	b[37] = (uint8_t)gran; /* DATA SEGMENT GRANULARITY: one block (log2) */
	b[43] = 2;
	b[44] = XC_DESC_TYPE_B2B;
	b[45] = XC_DESC_TYPE_ID;
	put_be32(b, 46 - 4);
	return 46;
}

void xcopy_exec_rcr(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	uint32_t alloc = get_be32(cmd->cdb + 10);
	struct xcopy_status *s;
	uint8_t b[64];
	size_t n;

	if ((cmd->cdb[1] & 0x1f) == SCSI_SA_RCR_OP_PARAMS) {
		n = op_params(lu, b);
		scsi_cmd_complete(cmd, scsi_reply(cmd, b, n, alloc));
		return;
	}
	/* COPY STATUS (SPC-4 6.18.3): only for a list id held for this nexus. */
	s = status_find(lu, cmd->nexus->id, cmd->cdb[2]);
	if (!s) {
		scsi_cmd_complete(cmd, scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 2, -1));
		return;
	}
	memset(b, 0, 12);
	put_be32(b, 8);
	b[4] = s->state; /* HDD 0: no held data */
	put_be16(b + 5, s->segments);
	if (s->bytes <= UINT32_MAX) {
		b[7] = 0x00; /* TRANSFER COUNT UNITS: bytes */
		put_be32(b + 8, (uint32_t)s->bytes);
	} else {
		b[7] = 0xf1; /* kibibytes */
		put_be32(b + 8, (uint32_t)(s->bytes >> 10));
	}
	/* A finished copy's status is reported once, then discarded. */
	if (s->state != XCOPY_STATE_RUNNING) {
		status_unlink(lu, s);
	}
	scsi_cmd_complete(cmd, scsi_reply(cmd, b, 12, alloc));
}
