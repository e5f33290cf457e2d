/*
 * tmf.c - task management (RFC 7143 11.5, 11.6; SAM-5 7).
 *
 *   request --select tasks, scsi_cmd_abort() each in the SCSI layer-->
 *   waiting (count of aborted tasks not yet finished) --0-->
 *   [LU/target reset effects] --> TMF Response (--> close all for COLD)
 *
 * The response goes out only once every affected task has finished
 * (11.5.1: "after all affected tasks ... have been terminated"), so a
 * store callback never lands on a task the initiator believes gone.
 * Scope follows SAM-5 with a shared task set: ABORT TASK / ABORT TASK SET
 * touch this I_T nexus only; CLEAR TASK SET, LOGICAL UNIT RESET and the
 * target resets abort the tasks of every session on the target.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "iscsi_internal.h"
#include "s3tgt/log.h"

static void tmf_respond(struct iscsi_tmf *tmf)
{
	struct iscsi_conn *c = tmf->conn;
	struct iscsi_tx *tx;

	if (tmf->reset_lu) {
		scsi_lu_reset(tmf->reset_lu, c->sess ? &c->sess->nexus : NULL);
	}
	if (tmf->target_reset && c->sess && c->sess->tgt) {
		struct scsi_target *st = c->sess->tgt->t;
		size_t n = scsi_target_luns(st, NULL, 0);
		uint64_t *luns = n ? calloc(n, sizeof(*luns)) : NULL;
		if (luns) {
			n = scsi_target_luns(st, luns, n);
			for (size_t i = 0; i < n; i++) {
				struct scsi_lu *lu = scsi_target_get_lu(st, luns[i]);
				if (lu) {
					scsi_lu_reset(lu, &c->sess->nexus);
				}
			}
			free(luns);
		}
	}
	tx = iscsi_tx_get(c);
	if (tx) {
		memset(tx->hdr, 0, ISCSI_BHS_LEN);
		tx->hdr[ISCSI_BHS_OPCODE] = ISCSI_OP_TMF_RSP;
		tx->hdr[ISCSI_BHS_FLAGS] = ISCSI_FLAG_FINAL;
		tx->hdr[ISCSI_TMF_RESPONSE] = tmf->response;
		memcpy(tx->hdr + ISCSI_BHS_ITT, tmf->bhs + ISCSI_BHS_ITT, 4);
		iscsi_conn_fill_sn(c, tx->hdr, true);
		iscsi_tx_queue(c, tx);
	} else {
		iscsi_conn_close(c, "out of memory");
	}
	if (tmf->cold && c->sess && c->srv) {
		/* 11.5.1: TARGET COLD RESET drops every connection to the target. */
		struct iscsi_tgt *tgt = c->sess->tgt;
		struct iscsi_conn *o, *onext;
		for (o = c->srv->conns; o; o = onext) {
			onext = o->next;
			if (o != c && o->sess && o->sess->tgt == tgt) {
				iscsi_conn_close(o, "target cold reset");
			}
		}
		c->close_after_tx = true;
		c->stop_rx = true;
		iscsi_conn_kick(c);
	}
	iscsi_conn_put(c);
	free(tmf);
}

void iscsi_tmf_task_finished(struct iscsi_tmf *tmf)
{
	if (--tmf->waiting == 0) {
		tmf_respond(tmf);
	}
}

/* Abort every task of session s on lun (SCSI_LUN_INVALID = all LUNs). */
static void abort_session_tasks(struct iscsi_session *s, uint64_t lun, struct iscsi_tmf *tmf)
{
	struct iscsi_task *t, *next;

	for (t = s->tasks; t; t = next) {
		next = t->next;
		if (lun == SCSI_LUN_INVALID || t->cmd.lun == lun) {
			iscsi_task_abort(t, tmf);
		}
	}
}

static void abort_target_tasks(struct iscsi_server *srv, struct iscsi_tgt *tgt, uint64_t lun,
			       struct iscsi_tmf *tmf)
{
	for (struct iscsi_conn *o = srv->conns; o; o = o->next) {
		if (o->sess && !o->sess->discovery && o->sess->tgt == tgt &&
		    o->state != ISCSI_CONN_CLOSED) {
			abort_session_tasks(o->sess, lun, tmf);
		}
	}
}

int iscsi_tmf_rx(struct iscsi_conn *c, const uint8_t *bhs)
{
	struct iscsi_session *s = c->sess;
	struct iscsi_tmf *tmf;
	uint64_t lun = scsi_lun_decode(bhs + ISCSI_BHS_LUN);
	struct scsi_lu *lu;

	if (s->discovery) {
		iscsi_conn_send_reject(c, bhs, ISCSI_REJECT_PROTOCOL_ERROR);
		return 0;
	}
	tmf = calloc(1, sizeof(*tmf));
	if (!tmf) {
		return -ENOMEM;
	}
	tmf->conn = c;
	iscsi_conn_get(c);
	memcpy(tmf->bhs, bhs, ISCSI_BHS_LEN);
	tmf->func = bhs[ISCSI_BHS_FLAGS] & ISCSI_TMF_FUNC_MASK;
	tmf->response = ISCSI_TMF_RSP_COMPLETE;
	/* Hold one count while selecting so the response can't go out early. */
	tmf->waiting = 1;
	lu = lun == SCSI_LUN_INVALID ? NULL : scsi_target_get_lu(s->tgt->t, lun);
	LOG_DEBUG("iscsi", "%s: TMF function %u LUN %llu ref ITT 0x%08x", c->peer, tmf->func,
		  (unsigned long long)lun, get_be32(bhs + ISCSI_TMF_REF_TAG));

	switch (tmf->func) {
	case ISCSI_TMF_ABORT_TASK: {
		uint32_t ref = get_be32(bhs + ISCSI_TMF_REF_TAG);
		struct iscsi_task *t = iscsi_task_find(s, ref);
		if (t && !t->aborted && t->state != ISCSI_TASK_RESP) {
			iscsi_task_abort(t, tmf);
		} else {
			/*
			 * 11.5.1: not found (or already completed) - if RefCmdSN was
			 * never received (inside the window) the abort is complete;
			 * if it lies outside the window the task does not exist.
			 */
			uint32_t ref_sn = get_be32(bhs + ISCSI_TMF_REF_CMDSN);
			bool in_window = iscsi_sn_le(s->exp_cmdsn, ref_sn) &&
					 iscsi_sn_le(ref_sn, s->max_cmdsn);
			if (t || !in_window) {
				tmf->response = ISCSI_TMF_RSP_NO_TASK;
			}
		}
		break;
	}
	case ISCSI_TMF_ABORT_TASK_SET:
		if (!lu) {
			tmf->response = ISCSI_TMF_RSP_NO_LUN;
			break;
		}
		abort_session_tasks(s, lun, tmf);
		break;
	case ISCSI_TMF_CLEAR_TASK_SET:
		if (!lu) {
			tmf->response = ISCSI_TMF_RSP_NO_LUN;
			break;
		}
		abort_target_tasks(c->srv, s->tgt, lun, tmf);
		break;
	case ISCSI_TMF_LUN_RESET:
		if (!lu) {
			tmf->response = ISCSI_TMF_RSP_NO_LUN;
			break;
		}
		abort_target_tasks(c->srv, s->tgt, lun, tmf);
		tmf->reset_lu = lu;
		break;
	case ISCSI_TMF_TARGET_WARM_RESET:
	case ISCSI_TMF_TARGET_COLD_RESET:
		abort_target_tasks(c->srv, s->tgt, SCSI_LUN_INVALID, tmf);
		tmf->target_reset = true;
		tmf->cold = tmf->func == ISCSI_TMF_TARGET_COLD_RESET;
		break;
	case ISCSI_TMF_TASK_REASSIGN:
		/* 11.5.1: allegiance reassignment needs ERL 2. */
		tmf->response = 4;
		break;
	case ISCSI_TMF_CLEAR_ACA:
	default:
		tmf->response = ISCSI_TMF_RSP_NOT_SUPPORTED;
		break;
	}
	iscsi_tmf_task_finished(tmf);
	return 0;
}
