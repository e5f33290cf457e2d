/*
 * session.c - full feature phase (RFC 7143 4.2, 11.3-11.8, 11.14, 11.18):
 * SCSI commands with the CmdSN window, write data (immediate, unsolicited,
 * solicited by R2T), Data-In/SCSI Response, NOP and Logout.
 *
 * Task life cycle:
 *
 *   SCSI Command --CmdSN gap--> QUEUED --its turn--> (start)
 *   start --write data missing--> DATA --R2T/Data-Out ... complete--> EXEC
 *   start --all data here--> EXEC --done()--> RESP (Data-In/Response queued)
 *   RESP --last PDU written--> freed to the session's pool
 *
 * Window: ExpCmdSN advances as commands arrive in order; MaxCmdSN =
 * ExpCmdSN + ISCSI_CMD_WINDOW - 1 - (in-order commands not yet completed),
 * so it advances as commands complete and never goes backwards (4.2.2.1).
 * Commands execute concurrently; completion order is the SCSI layer's.
 * An aborted task never sends a response (SAM-5 with TAS=0).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iscsi_internal.h"
#include "s3tgt/log.h"

#define MAX_TASKS_PER_SESSION (ISCSI_CMD_WINDOW * 4)
#define KEEP_BUF_MAX (4u << 20) /* pooled tasks keep Data-Out buffers up to this */

static void task_submit(struct iscsi_task *t);
static void send_r2ts(struct iscsi_task *t);

int iscsi_session_create(struct iscsi_conn *c)
{
	struct iscsi_session *s = calloc(1, sizeof(*s));
	struct iscsi_login *l = &c->login;
	int n;

	if (!s) {
		return -ENOMEM;
	}
	s->id = ++c->srv->next_id;
	do {
		s->tsih = c->srv->next_tsih++;
	} while (s->tsih == 0); /* 11.12.6: TSIH 0 is reserved */
	s->discovery = l->discovery;
	s->tgt = l->tgt;
	s->exp_cmdsn = l->cmdsn;
	s->max_cmdsn = l->cmdsn + ISCSI_CMD_WINDOW - 1;
	s->next_ttt = 1;
	s->nexus.id = s->id;
	snprintf(s->nexus.initiator_name, sizeof(s->nexus.initiator_name), "%s",
		 l->initiator_name);
	memcpy(s->nexus.isid, l->isid, 6);
	/* SPC-4 7.6.4.6 / RFC 7143 13.x: "<name>,i,0x<ISID>" names the initiator port. */
	n = snprintf(s->nexus.initiator_port, sizeof(s->nexus.initiator_port),
		     "%s,i,0x%02x%02x%02x%02x%02x%02x", l->initiator_name, l->isid[0], l->isid[1],
		     l->isid[2], l->isid[3], l->isid[4], l->isid[5]);
	if (n < 0 || (size_t)n >= sizeof(s->nexus.initiator_port)) {
		free(s);
		return -ENAMETOOLONG;
	}
	s->nexus.rel_tgt_port = c->tpgt;
	c->sess = s;
	return 0;
}

void iscsi_session_destroy(struct iscsi_session *s)
{
	struct iscsi_task *t;

	if (!s->discovery && s->tgt) {
		scsi_nexus_gone(s->tgt->t, &s->nexus);
	}
	while ((t = s->free_tasks) != NULL) {
		s->free_tasks = t->free_next;
		free(t->buf);
		free(t);
	}
	free(s);
}

void iscsi_session_update_window(struct iscsi_session *s)
{
	uint32_t m = s->exp_cmdsn + ISCSI_CMD_WINDOW - 1 - s->in_window;

	if (iscsi_sn_lt(s->max_cmdsn, m)) {
		s->max_cmdsn = m;
	}
}

/* ---- tasks ---- */

static unsigned itt_bucket(uint32_t itt)
{
	return (itt ^ (itt >> 8) ^ (itt >> 16)) & (ISCSI_ITT_BUCKETS - 1);
}

struct iscsi_task *iscsi_task_find(struct iscsi_session *s, uint32_t itt)
{
	for (struct iscsi_task *t = s->hash[itt_bucket(itt)]; t; t = t->hnext) {
		if (t->itt == itt) {
			return t;
		}
	}
	return NULL;
}

static void task_unhash(struct iscsi_task *t)
{
	struct iscsi_session *s = t->conn->sess;
	struct iscsi_task **pp = &s->hash[itt_bucket(t->itt)];

	if (!t->in_hash) {
		return;
	}
	while (*pp && *pp != t) {
		pp = &(*pp)->hnext;
	}
	if (*pp) {
		*pp = t->hnext;
	}
	t->in_hash = false;
}

static struct iscsi_task *task_alloc(struct iscsi_conn *c)
{
	struct iscsi_session *s = c->sess;
	struct iscsi_task *t = s->free_tasks;
	uint8_t *buf = NULL;
	uint32_t cap = 0;

	if (s->ntasks >= MAX_TASKS_PER_SESSION) {
		return NULL;
	}
	if (t) {
		s->free_tasks = t->free_next;
		buf = t->buf;
		cap = t->buf_cap;
		memset(t, 0, offsetof(struct iscsi_task, sense_buf));
	} else {
		t = calloc(1, sizeof(*t));
		if (!t) {
			return NULL;
		}
	}
	t->buf = buf;
	t->buf_cap = cap;
	t->conn = c;
	t->next = s->tasks;
	if (s->tasks) {
		s->tasks->prev = t;
	}
	s->tasks = t;
	s->ntasks++;
	iscsi_conn_get(c);
	return t;
}

static void task_release(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;
	struct iscsi_session *s = c->sess;
	struct iscsi_tmf *tmf = t->tmf;

	scsi_cmd_fini(&t->cmd);
	task_unhash(t);
	if (t->in_window) {
		s->in_window--;
		t->in_window = false;
		iscsi_session_update_window(s);
	}
	if (t->prev) {
		t->prev->next = t->next;
	} else {
		s->tasks = t->next;
	}
	if (t->next) {
		t->next->prev = t->prev;
	}
	s->ntasks--;
	if (t->buf_cap > KEEP_BUF_MAX) {
		free(t->buf);
		t->buf = NULL;
		t->buf_cap = 0;
	}
	t->free_next = s->free_tasks;
	s->free_tasks = t;
	if (tmf) {
		iscsi_tmf_task_finished(tmf);
	}
	iscsi_conn_check_drained(c);
	iscsi_conn_put(c);
}

static void task_tx_done(struct iscsi_conn *c, struct iscsi_tx *tx)
{
	task_release(tx->arg);
}

/*
 * The SCSI Response PDU header (RFC 7143 11.4) that ends task t; sending it
 * releases the task.
 */
static void scsi_rsp_hdr(struct iscsi_conn *c, struct iscsi_task *t, struct iscsi_tx *tx,
			 uint8_t response, uint8_t status)
{
	memset(tx->hdr, 0, ISCSI_BHS_LEN);
	tx->hdr[ISCSI_BHS_OPCODE] = ISCSI_OP_SCSI_RSP;
	tx->hdr[ISCSI_BHS_FLAGS] = ISCSI_FLAG_FINAL;
	tx->hdr[ISCSI_RSP_RESPONSE] = response;
	tx->hdr[ISCSI_RSP_STATUS] = status;
	put_be32(tx->hdr + ISCSI_BHS_ITT, t->itt);
	iscsi_conn_fill_sn(c, tx->hdr, true);
	put_be32(tx->hdr + ISCSI_RSP_EXPDATASN, t->datasn);
	tx->done = task_tx_done;
	tx->arg = t;
}

/* End a command with iSCSI response Target Failure (no SCSI status). */
static void task_fail(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;
	struct iscsi_tx *tx = iscsi_tx_get(c);

	task_unhash(t);
	t->state = ISCSI_TASK_RESP;
	if (t->in_window) {
		c->sess->in_window--;
		t->in_window = false;
		iscsi_session_update_window(c->sess);
	}
	if (!tx) {
		iscsi_conn_close(c, "out of memory");
		task_release(t);
		return;
	}
	scsi_rsp_hdr(c, t, tx, ISCSI_RSP_TARGET_FAILURE, 0);
	iscsi_tx_queue(c, tx);
}

/* A command's turn has come (CmdSN order) or it is immediate. */
static void task_start(struct iscsi_task *t)
{
	if (t->aborted) {
		task_release(t);
		return;
	}
	if (t->failed) {
		task_fail(t);
		return;
	}
	if (t->cmd.is_write && t->data_got < t->edtl) {
		t->state = ISCSI_TASK_DATA;
		send_r2ts(t);
		return;
	}
	task_submit(t);
}

/* Remove the queue head while it is the next CmdSN in order. */
static void drain_queue(struct iscsi_session *s)
{
	struct iscsi_task *t;

	while ((t = s->queue) != NULL && t->cmdsn == s->exp_cmdsn) {
		s->queue = t->qnext;
		t->qnext = NULL;
		s->exp_cmdsn++;
		t->in_window = true;
		s->in_window++;
		task_start(t);
	}
}

bool iscsi_session_cmdsn_ok(struct iscsi_session *s, uint32_t cmdsn, bool immediate)
{
	if (immediate) {
		return true;
	}
	if (cmdsn == s->exp_cmdsn) {
		s->exp_cmdsn++;
		iscsi_session_update_window(s);
		drain_queue(s);
		return true;
	}
	/* 4.2.2.1: outside [ExpCmdSN, MaxCmdSN] the PDU is silently ignored. */
	return iscsi_sn_lt(s->exp_cmdsn, cmdsn) && iscsi_sn_le(cmdsn, s->max_cmdsn);
}

/* ---- responses ---- */

static void task_done(struct scsi_cmd *cmd);

static void fill_residual(struct iscsi_task *t, uint8_t *hdr, uint32_t sent)
{
	uint32_t xfer = t->cmd.xfer_len;
	uint32_t actual = t->cmd.is_read ? sent : xfer;

	/* 11.4.5: residuals against the Expected Data Transfer Length. */
	if (xfer > t->edtl) {
		hdr[ISCSI_BHS_FLAGS] |= ISCSI_RSP_FLAG_OVERFLOW;
		put_be32(hdr + ISCSI_RSP_RESIDUAL, xfer - t->edtl);
	} else if (actual < t->edtl && (t->cmd.is_read || t->cmd.is_write)) {
		hdr[ISCSI_BHS_FLAGS] |= ISCSI_RSP_FLAG_UNDERFLOW;
		put_be32(hdr + ISCSI_RSP_RESIDUAL, t->edtl - actual);
	}
}

static void send_response(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;
	struct scsi_cmd *cmd = &t->cmd;
	uint32_t sent = 0, mrdsl = c->params.initiator_mrdsl, burst = c->params.max_burst;
	bool collapse;
	struct iscsi_tx *tx;

	t->state = ISCSI_TASK_RESP;
	if (cmd->is_read && cmd->data_in) {
		sent = cmd->data_in_len < t->edtl ? cmd->data_in_len : t->edtl;
	}
	/* 11.7.4: status rides on the last Data-In only for GOOD without sense. */
	collapse = sent > 0 && cmd->status == SCSI_STATUS_GOOD && cmd->sense_len == 0;
	for (uint32_t off = 0; off < sent;) {
		uint32_t len = sent - off;
		bool last;
		if (len > mrdsl) {
			len = mrdsl;
		}
		/* A Data-In sequence (F bit) ends at each MaxBurstLength boundary (11.7.1). */
		if (len > burst - off % burst) {
			len = burst - off % burst;
		}
		last = off + len == sent;
		tx = iscsi_tx_get(c);
		if (!tx) {
			iscsi_conn_close(c, "out of memory");
			task_release(t);
			return;
		}
		memset(tx->hdr, 0, ISCSI_BHS_LEN);
		tx->hdr[ISCSI_BHS_OPCODE] = ISCSI_OP_DATA_IN;
		if (last || (off + len) % burst == 0) {
			tx->hdr[ISCSI_BHS_FLAGS] = ISCSI_FLAG_FINAL;
		}
		put_be32(tx->hdr + ISCSI_BHS_ITT, t->itt);
		put_be32(tx->hdr + ISCSI_BHS_TTT, ISCSI_RSVD_TAG);
		if (last && collapse) {
			tx->hdr[ISCSI_BHS_FLAGS] |= ISCSI_DATA_FLAG_STATUS;
			tx->hdr[ISCSI_DATA_STATUS] = cmd->status;
			fill_residual(t, tx->hdr, sent);
			iscsi_conn_fill_sn(c, tx->hdr, true);
			tx->done = task_tx_done;
			tx->arg = t;
		} else {
			iscsi_conn_fill_sn(c, tx->hdr, false);
			put_be32(tx->hdr + ISCSI_BHS_STATSN, 0);
		}
		put_be32(tx->hdr + ISCSI_DATA_DATASN, t->datasn++);
		put_be32(tx->hdr + ISCSI_DATA_OFFSET, off);
		tx->data = cmd->data_in + off;
		tx->data_len = len;
		off += len;
		iscsi_tx_queue(c, tx);
		if (c->state == ISCSI_CONN_CLOSED) {
			/* Closed under us (failed flush): the tx carrying task_tx_done
			 * already released the task; otherwise release it here. */
			if (!(last && collapse)) {
				task_release(t);
			}
			return;
		}
	}
	if (collapse) {
		return;
	}
	tx = iscsi_tx_get(c);
	if (!tx) {
		iscsi_conn_close(c, "out of memory");
		task_release(t);
		return;
	}
	scsi_rsp_hdr(c, t, tx, ISCSI_RSP_COMPLETED, cmd->status);
	fill_residual(t, tx->hdr, sent);
	if (cmd->sense_len) {
		uint32_t sl = cmd->sense_len > SCSI_SENSE_MAX ? SCSI_SENSE_MAX : cmd->sense_len;
		put_be16(t->sense_buf, (uint16_t)sl);
		memcpy(t->sense_buf + 2, cmd->sense, sl);
		tx->data = t->sense_buf;
		tx->data_len = sl + 2;
	}
	iscsi_tx_queue(c, tx);
}

static void task_done(struct scsi_cmd *cmd)
{
	struct iscsi_task *t = cmd->done_arg;
	struct iscsi_conn *c = t->conn;
	struct iscsi_session *s = c->sess;

	if (t->in_window) {
		s->in_window--;
		t->in_window = false;
		iscsi_session_update_window(s);
	}
	if (c->state == ISCSI_CONN_CLOSED || t->aborted || cmd->aborted) {
		task_release(t);
		return;
	}
	send_response(t);
}

static void task_submit(struct iscsi_task *t)
{
	t->state = ISCSI_TASK_EXEC;
	t->cmd.data_out = t->cmd.is_write ? t->buf : NULL;
	t->cmd.data_out_len = t->cmd.is_write ? t->data_got : 0;
	t->cmd.done = task_done;
	t->cmd.done_arg = t;
	scsi_cmd_submit(&t->cmd);
}

/* 11.8: solicit the rest of the write data, up to MaxOutstandingR2T at once. */
static void send_r2ts(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;
	struct iscsi_session *s = c->sess;
	uint32_t max_out = c->params.max_outstanding_r2t;

	if (max_out > ISCSI_MAX_R2T) {
		max_out = ISCSI_MAX_R2T;
	}
	while (t->r2t_active < max_out && t->r2t_next < t->edtl) {
		struct iscsi_r2t *r = NULL;
		struct iscsi_tx *tx;
		uint32_t len = t->edtl - t->r2t_next;

		for (unsigned i = 0; i < ISCSI_MAX_R2T; i++) {
			if (!t->r2t[i].active) {
				r = &t->r2t[i];
				break;
			}
		}
		if (!r) {
			return;
		}
		if (len > c->params.max_burst) {
			len = c->params.max_burst;
		}
		tx = iscsi_tx_get(c);
		if (!tx) {
			iscsi_conn_close(c, "out of memory");
			return;
		}
		r->active = true;
		r->offset = t->r2t_next;
		r->len = len;
		r->got = 0;
		r->datasn = 0;
		r->ttt = s->next_ttt++;
		if (r->ttt == ISCSI_RSVD_TAG) {
			r->ttt = s->next_ttt++;
		}
		t->r2t_active++;
		t->r2t_next += len;
		memset(tx->hdr, 0, ISCSI_BHS_LEN);
		tx->hdr[ISCSI_BHS_OPCODE] = ISCSI_OP_R2T;
		tx->hdr[ISCSI_BHS_FLAGS] = ISCSI_FLAG_FINAL;
		memcpy(tx->hdr + ISCSI_BHS_LUN, t->lun_raw, 8);
		put_be32(tx->hdr + ISCSI_BHS_ITT, t->itt);
		put_be32(tx->hdr + ISCSI_BHS_TTT, r->ttt);
		iscsi_conn_fill_sn(c, tx->hdr, false);
		put_be32(tx->hdr + ISCSI_R2T_R2TSN, t->datasn++);
		put_be32(tx->hdr + ISCSI_R2T_OFFSET, r->offset);
		put_be32(tx->hdr + ISCSI_R2T_DESIRED_LEN, r->len);
		iscsi_tx_queue(c, tx);
		if (c->state == ISCSI_CONN_CLOSED) {
			return; /* the close released the task */
		}
	}
}

void iscsi_task_abort(struct iscsi_task *t, struct iscsi_tmf *tmf)
{
	if (t->aborted || t->state == ISCSI_TASK_RESP) {
		return;
	}
	t->aborted = true;
	switch (t->state) {
	case ISCSI_TASK_QUEUED:
		/* Stays queued so its CmdSN is consumed in order, then dropped. */
		break;
	case ISCSI_TASK_DATA:
		task_release(t);
		break;
	case ISCSI_TASK_EXEC:
		if (tmf) {
			t->tmf = tmf;
			tmf->waiting++;
		}
		scsi_cmd_abort(&t->cmd);
		break;
	case ISCSI_TASK_RESP:
		break;
	}
}

void iscsi_session_abort_all(struct iscsi_conn *c)
{
	struct iscsi_session *s = c->sess;
	struct iscsi_task *t, *next;

	s->queue = NULL;
	for (t = s->tasks; t; t = next) {
		next = t->next;
		if (t->state == ISCSI_TASK_EXEC) {
			if (!t->aborted) {
				t->aborted = true;
				scsi_cmd_abort(&t->cmd);
			}
		} else if (t->state != ISCSI_TASK_RESP) {
			task_release(t);
		}
	}
}

/* ---- receive: header stage (decides where the data segment goes) ---- */

static int scsi_cmd_header(struct iscsi_conn *c, struct iscsi_rx *rx)
{
	struct iscsi_session *s = c->sess;
	const uint8_t *bhs = rx->bhs;
	uint8_t flags = bhs[ISCSI_BHS_FLAGS];
	bool is_read = flags & ISCSI_CMD_FLAG_READ, is_write = flags & ISCSI_CMD_FLAG_WRITE;
	uint32_t edtl = get_be32(bhs + ISCSI_CMD_EDTL);
	uint8_t cdb[SCSI_CDB_MAX];
	uint32_t cdb_len = ISCSI_CMD_CDB_LEN;
	struct iscsi_task *t;

	if (s->discovery) {
		s->rx_reject = ISCSI_REJECT_PROTOCOL_ERROR;
		return 0;
	}
	memcpy(cdb, bhs + ISCSI_CMD_CDB, ISCSI_CMD_CDB_LEN);
	for (uint32_t off = 0; off < rx->ahs_len;) {
		uint32_t alen, total;
		if (rx->ahs_len - off < 4) {
			s->rx_reject = ISCSI_REJECT_INVALID_PDU_FIELD;
			return 0;
		}
		alen = get_be16(rx->ahs + off);
		/* 11.2.2: AHSLength excludes the 3 bytes of length and type. */
		total = (3 + alen + 3) & ~3u;
		if (alen == 0 || total > rx->ahs_len - off) {
			s->rx_reject = ISCSI_REJECT_INVALID_PDU_FIELD;
			return 0;
		}
		if (rx->ahs[off + 2] == ISCSI_AHS_TYPE_EXT_CDB) {
			/* 11.2.2.3: one reserved byte, then CDB bytes 16.. */
			uint32_t ext = alen - 1;
			if (ext + ISCSI_CMD_CDB_LEN > SCSI_CDB_MAX) {
				s->rx_reject = ISCSI_REJECT_INVALID_PDU_FIELD;
				return 0;
			}
			memcpy(cdb + ISCSI_CMD_CDB_LEN, rx->ahs + off + 4, ext);
			cdb_len = ISCSI_CMD_CDB_LEN + ext;
		} else if (rx->ahs[off + 2] == ISCSI_AHS_TYPE_BIDI_LEN) {
			is_read = is_write = true;
		}
		off += total;
	}
	if (is_read && is_write) {
		/* Bidirectional commands are not supported (11.3.1.1). */
		s->rx_reject = ISCSI_REJECT_CMD_NOT_SUPPORTED;
		return 0;
	}
	if (rx->data_len > 0 &&
	    (!is_write || !c->params.immediate_data || rx->data_len > edtl ||
	     rx->data_len > c->params.first_burst)) {
		/* 11.3.4 / 13.13: immediate data only for writes, within FirstBurstLength. */
		s->rx_reject = ISCSI_REJECT_PROTOCOL_ERROR;
		return 0;
	}
	if (is_write && edtl > ISCSI_MAX_XFER) {
		s->rx_reject = ISCSI_REJECT_INVALID_PDU_FIELD;
		return 0;
	}
	if (iscsi_task_find(s, get_be32(bhs + ISCSI_BHS_ITT)) ||
	    get_be32(bhs + ISCSI_BHS_ITT) == ISCSI_RSVD_TAG) {
		/* 11.2.1.8: ITTs are unique among the session's tasks. */
		s->rx_reject = ISCSI_REJECT_INVALID_PDU_FIELD;
		return 0;
	}
	t = task_alloc(c);
	if (!t) {
		s->rx_reject = ISCSI_REJECT_CMD_NOT_SUPPORTED;
		return 0;
	}
	if (is_write && edtl > t->buf_cap) {
		uint8_t *nb = malloc(edtl);
		if (!nb) {
			task_release(t);
			s->rx_reject = ISCSI_REJECT_CMD_NOT_SUPPORTED;
			return 0;
		}
		free(t->buf);
		t->buf = nb;
		t->buf_cap = edtl;
	}
	t->itt = get_be32(bhs + ISCSI_BHS_ITT);
	t->cmdsn = get_be32(bhs + ISCSI_BHS_CMDSN);
	t->edtl = edtl;
	t->immediate = iscsi_bhs_immediate(bhs);
	memcpy(t->lun_raw, bhs + ISCSI_BHS_LUN, 8);
	t->state = ISCSI_TASK_QUEUED;
	t->cmd.target = s->tgt->t;
	t->cmd.nexus = &s->nexus;
	t->cmd.lun = scsi_lun_decode(t->lun_raw);
	memcpy(t->cmd.cdb, cdb, cdb_len);
	t->cmd.cdb_len = (uint8_t)cdb_len;
	t->cmd.attr = (enum scsi_task_attr)(flags & ISCSI_CMD_ATTR_MASK);
	if (t->cmd.attr > SCSI_ATTR_ACA) {
		t->cmd.attr = SCSI_ATTR_SIMPLE;
	}
	t->cmd.tag = t->itt;
	t->cmd.exp_data_len = edtl;
	t->cmd.is_read = is_read;
	t->cmd.is_write = is_write;
	if (is_write) {
		uint32_t unsol = rx->data_len;
		/* 13.11/13.14: without F, unsolicited Data-Out follows up to FirstBurstLength. */
		if (!(flags & ISCSI_FLAG_FINAL) && !c->params.initial_r2t) {
			unsol = edtl < c->params.first_burst ? edtl : c->params.first_burst;
		}
		t->unsol_end = unsol;
		t->r2t_next = unsol;
	}
	t->hnext = s->hash[itt_bucket(t->itt)];
	s->hash[itt_bucket(t->itt)] = t;
	t->in_hash = true;
	s->rx_task = t;
	rx->data = rx->data_len ? t->buf : NULL;
	return 0;
}

/*
 * A Data-Out with a wrong offset, length or DataSN (RFC 7143 11.7.5, 11.7.6):
 * its data is dropped, the PDU rejected, and the command ends with iSCSI
 * response "Target Failure" (11.4.3) without touching the medium. The
 * connection survives, so the initiator learns which command failed.
 */
static int data_out_bad(struct iscsi_session *s, struct iscsi_task *t)
{
	s->rx_reject = ISCSI_REJECT_PROTOCOL_ERROR;
	s->rx_fail_task = t;
	return 0;
}

static int data_out_header(struct iscsi_conn *c, struct iscsi_rx *rx)
{
	struct iscsi_session *s = c->sess;
	const uint8_t *bhs = rx->bhs;
	struct iscsi_task *t = iscsi_task_find(s, get_be32(bhs + ISCSI_BHS_ITT));
	uint32_t ttt = get_be32(bhs + ISCSI_BHS_TTT);
	uint32_t off = get_be32(bhs + ISCSI_DATA_OFFSET);
	uint32_t datasn = get_be32(bhs + ISCSI_DATA_DATASN);
	uint32_t len = rx->data_len, end;

	if (!t || (t->state != ISCSI_TASK_QUEUED && t->state != ISCSI_TASK_DATA)) {
		/* A task aborted by TMF may still get data in flight: drop it. */
		s->rx_ignore = true;
		return 0;
	}
	if (!t->cmd.is_write || len == 0 || __builtin_add_overflow(off, len, &end) ||
	    end > t->edtl || len > c->params.target_mrdsl) {
		LOG_WARN("iscsi", "%s: ITT 0x%08x: Data-Out offset %u length %u outside EDTL %u",
			 c->peer, t->itt, off, len, t->edtl);
		return data_out_bad(s, t);
	}
	if (ttt == ISCSI_RSVD_TAG) {
		/* 11.7.5: unsolicited data, in order (DataPDUInOrder=Yes). */
		if (off != t->data_got || end > t->unsol_end || datasn != t->unsol_datasn ||
		    t->r2t_active) {
			LOG_WARN("iscsi", "%s: ITT 0x%08x: bad unsolicited Data-Out (offset %u DataSN %u)",
				 c->peer, t->itt, off, datasn);
			return data_out_bad(s, t);
		}
		s->rx_r2t = NULL;
	} else {
		struct iscsi_r2t *r = NULL;
		for (unsigned i = 0; i < ISCSI_MAX_R2T; i++) {
			if (t->r2t[i].active && t->r2t[i].ttt == ttt) {
				r = &t->r2t[i];
				break;
			}
		}
		if (!r || off != r->offset + r->got || end > r->offset + r->len ||
		    datasn != r->datasn) {
			LOG_WARN("iscsi", "%s: ITT 0x%08x: bad Data-Out for TTT 0x%08x (offset %u DataSN %u)",
				 c->peer, t->itt, ttt, off, datasn);
			return data_out_bad(s, t);
		}
		s->rx_r2t = r;
	}
	s->rx_task = t;
	rx->data = t->buf + off;
	return 0;
}

int iscsi_session_header(struct iscsi_conn *c, struct iscsi_rx *rx)
{
	struct iscsi_session *s = c->sess;
	uint8_t op = iscsi_bhs_opcode(rx->bhs);

	s->rx_task = NULL;
	s->rx_r2t = NULL;
	s->rx_reject = 0;
	s->rx_ignore = false;
	s->rx_fail_task = NULL;
	switch (op) {
	case ISCSI_OP_SCSI_CMD:
		return scsi_cmd_header(c, rx);
	case ISCSI_OP_DATA_OUT:
		return data_out_header(c, rx);
	case ISCSI_OP_NOP_OUT:
	case ISCSI_OP_TEXT_REQ:
	case ISCSI_OP_TMF_REQ:
	case ISCSI_OP_LOGOUT_REQ:
		if (rx->data_len > ISCSI_OUR_MRDSL) {
			return -EMSGSIZE;
		}
		rx->data = c->dbuf;
		return 0;
	case ISCSI_OP_LOGIN_REQ:
		/* 6.3: a login on a connection in full feature phase. */
		s->rx_reject = ISCSI_REJECT_PROTOCOL_ERROR;
		return 0;
	case ISCSI_OP_SNACK_REQ:
		s->rx_reject = ISCSI_REJECT_SNACK; /* ERL 0: no SNACK support (7.1.1) */
		return 0;
	default:
		s->rx_reject = ISCSI_REJECT_CMD_NOT_SUPPORTED;
		return 0;
	}
}

/* ---- receive: complete PDUs ---- */

static void scsi_cmd_pdu(struct iscsi_conn *c, struct iscsi_rx *rx)
{
	struct iscsi_session *s = c->sess;
	struct iscsi_task *t = s->rx_task;
	struct iscsi_task **pp;

	t->data_got = rx->data_len;
	t->unsol_got = rx->data_len;
	if (t->immediate) {
		task_start(t);
		return;
	}
	if (t->cmdsn == s->exp_cmdsn) {
		s->exp_cmdsn++;
		t->in_window = true;
		s->in_window++;
		task_start(t);
		drain_queue(s);
		return;
	}
	if (!iscsi_sn_lt(s->exp_cmdsn, t->cmdsn) || !iscsi_sn_le(t->cmdsn, s->max_cmdsn)) {
		LOG_DEBUG("iscsi", "%s: ITT 0x%08x: CmdSN %u outside [%u, %u], ignored", c->peer,
			  t->itt, t->cmdsn, s->exp_cmdsn, s->max_cmdsn);
		task_release(t);
		return;
	}
	for (pp = &s->queue; *pp && iscsi_sn_lt((*pp)->cmdsn, t->cmdsn); pp = &(*pp)->qnext) {
	}
	if (*pp && (*pp)->cmdsn == t->cmdsn) {
		/* A duplicate CmdSN: 4.2.2.1 says ignore it. */
		task_release(t);
		return;
	}
	t->qnext = *pp;
	*pp = t;
}

static void data_out_pdu(struct iscsi_conn *c, struct iscsi_rx *rx)
{
	struct iscsi_session *s = c->sess;
	struct iscsi_task *t = s->rx_task;
	struct iscsi_r2t *r = s->rx_r2t;

	t->data_got += rx->data_len;
	if (r) {
		r->got += rx->data_len;
		r->datasn++;
		if (r->got == r->len) {
			r->active = false;
			t->r2t_active--;
		}
	} else {
		t->unsol_got += rx->data_len;
		t->unsol_datasn++;
	}
	if (t->state != ISCSI_TASK_DATA) {
		return; /* still waiting for its CmdSN; started later */
	}
	if (t->data_got == t->edtl) {
		task_submit(t);
		return;
	}
	if (r && !r->active) {
		send_r2ts(t);
	}
}

static void nop_out_pdu(struct iscsi_conn *c, struct iscsi_rx *rx)
{
	const uint8_t *bhs = rx->bhs;
	uint32_t itt = get_be32(bhs + ISCSI_BHS_ITT);
	uint32_t ttt = get_be32(bhs + ISCSI_BHS_TTT);
	struct iscsi_tx *tx;

	/*
	 * 11.18.1: without an ITT the initiator does not advance CmdSN (the I bit
	 * must be set); one that forgets the bit must not shift the window.
	 */
	if (!iscsi_session_cmdsn_ok(c->sess, get_be32(bhs + ISCSI_BHS_CMDSN),
				    iscsi_bhs_immediate(bhs) || itt == ISCSI_RSVD_TAG)) {
		return;
	}
	if (ttt != ISCSI_RSVD_TAG) {
		iscsi_conn_nop_reply(c, ttt); /* 11.18.3: the answer to our NOP-In ping */
	}
	if (itt == ISCSI_RSVD_TAG) {
		return; /* 11.18.1: wants no answer (an answer to our ping, or an ExpStatSN update) */
	}
	tx = iscsi_tx_get(c);
	if (!tx) {
		iscsi_conn_close(c, "out of memory");
		return;
	}
	memset(tx->hdr, 0, ISCSI_BHS_LEN);
	tx->hdr[ISCSI_BHS_OPCODE] = ISCSI_OP_NOP_IN;
	tx->hdr[ISCSI_BHS_FLAGS] = ISCSI_FLAG_FINAL;
	memcpy(tx->hdr + ISCSI_BHS_LUN, bhs + ISCSI_BHS_LUN, 8);
	put_be32(tx->hdr + ISCSI_BHS_ITT, itt);
	put_be32(tx->hdr + ISCSI_BHS_TTT, ISCSI_RSVD_TAG);
	iscsi_conn_fill_sn(c, tx->hdr, true);
	if (rx->data_len) {
		/* 11.19: the ping data comes back. */
		tx->owned = malloc(rx->data_len);
		if (!tx->owned) {
			iscsi_conn_close(c, "out of memory");
			free(tx);
			return;
		}
		memcpy(tx->owned, c->dbuf, rx->data_len);
		tx->data = tx->owned;
		tx->data_len = rx->data_len;
	}
	iscsi_tx_queue(c, tx);
}

static void logout_pdu(struct iscsi_conn *c, struct iscsi_rx *rx)
{
	const uint8_t *bhs = rx->bhs;
	uint8_t reason = bhs[ISCSI_BHS_FLAGS] & ISCSI_LOGOUT_REASON_MASK;
	struct iscsi_tx *tx;

	iscsi_session_cmdsn_ok(c->sess, get_be32(bhs + ISCSI_BHS_CMDSN),
			       iscsi_bhs_immediate(bhs));
	tx = iscsi_tx_get(c);
	if (!tx) {
		iscsi_conn_close(c, "out of memory");
		return;
	}
	memset(tx->hdr, 0, ISCSI_BHS_LEN);
	tx->hdr[ISCSI_BHS_OPCODE] = ISCSI_OP_LOGOUT_RSP;
	tx->hdr[ISCSI_BHS_FLAGS] = ISCSI_FLAG_FINAL;
	/* 11.15.1: 2 = connection recovery is not supported (ERL 0). */
	tx->hdr[ISCSI_LOGOUT_RESPONSE] = reason == 2 ? 2 : 0;
	memcpy(tx->hdr + ISCSI_BHS_ITT, bhs + ISCSI_BHS_ITT, 4);
	iscsi_conn_fill_sn(c, tx->hdr, true);
	put_be16(tx->hdr + ISCSI_LOGOUT_TIME2WAIT, (uint16_t)c->params.time2wait);
	put_be16(tx->hdr + ISCSI_LOGOUT_TIME2RETAIN, 0);
	if (reason != 2) {
		c->close_after_tx = true;
		c->stop_rx = true;
	}
	iscsi_tx_queue(c, tx);
}

int iscsi_session_pdu(struct iscsi_conn *c, struct iscsi_rx *rx)
{
	struct iscsi_session *s = c->sess;
	const uint8_t *bhs = rx->bhs;

	if (rx->data_digest_bad && !s->rx_reject && !s->rx_ignore) {
		/*
		 * RFC 7143 7.8 at ERL 0: reject the PDU (Data Digest Error); a
		 * command whose data was damaged ends with Target Failure, other
		 * PDUs are dropped. The framing is intact, the connection stays.
		 */
		uint8_t op = iscsi_bhs_opcode(bhs);
		LOG_RATELIMIT(LOG_LEVEL_WARN, "iscsi", "%s: data digest error (opcode 0x%02x ITT 0x%08x)",
			      c->peer, op, get_be32(bhs + ISCSI_BHS_ITT));
		if (op == ISCSI_OP_SCSI_CMD && s->rx_task) {
			iscsi_conn_send_reject(c, bhs, ISCSI_REJECT_DATA_DIGEST);
			s->rx_task->failed = true;
			scsi_cmd_pdu(c, rx);
			return 0;
		}
		if (op == ISCSI_OP_DATA_OUT && s->rx_task) {
			s->rx_reject = ISCSI_REJECT_DATA_DIGEST;
			s->rx_fail_task = s->rx_task;
		} else {
			iscsi_conn_send_reject(c, bhs, ISCSI_REJECT_DATA_DIGEST);
			return 0;
		}
	}

	if (s->rx_fail_task) {
		struct iscsi_task *t = s->rx_fail_task;
		iscsi_conn_send_reject(c, bhs, s->rx_reject);
		if (t->state == ISCSI_TASK_DATA) {
			task_fail(t);
		} else {
			t->failed = true; /* fails when its CmdSN turn comes */
		}
		return 0;
	}
	if (s->rx_reject) {
		uint8_t op = iscsi_bhs_opcode(bhs);
		if (op == ISCSI_OP_SCSI_CMD || op == ISCSI_OP_NOP_OUT) {
			/* The rejected command's CmdSN is used up (11.17.1). */
			iscsi_session_cmdsn_ok(s, get_be32(bhs + ISCSI_BHS_CMDSN),
					       iscsi_bhs_immediate(bhs));
		}
		iscsi_conn_send_reject(c, bhs, s->rx_reject);
		if (op == ISCSI_OP_LOGIN_REQ) {
			c->close_after_tx = true;
			c->stop_rx = true;
		}
		return 0;
	}
	if (s->rx_ignore) {
		return 0;
	}
	switch (iscsi_bhs_opcode(bhs)) {
	case ISCSI_OP_SCSI_CMD:
		scsi_cmd_pdu(c, rx);
		break;
	case ISCSI_OP_DATA_OUT:
		data_out_pdu(c, rx);
		break;
	case ISCSI_OP_NOP_OUT:
		nop_out_pdu(c, rx);
		break;
	case ISCSI_OP_TEXT_REQ:
		if (!iscsi_session_cmdsn_ok(s, get_be32(bhs + ISCSI_BHS_CMDSN),
					    iscsi_bhs_immediate(bhs))) {
			break;
		}
		return iscsi_text_rx(c, bhs, c->dbuf, rx->data_len);
	case ISCSI_OP_TMF_REQ:
		if (!iscsi_session_cmdsn_ok(s, get_be32(bhs + ISCSI_BHS_CMDSN),
					    iscsi_bhs_immediate(bhs))) {
			break;
		}
		return iscsi_tmf_rx(c, bhs);
	case ISCSI_OP_LOGOUT_REQ:
		logout_pdu(c, rx);
		break;
	default:
		break;
	}
	return 0;
}
