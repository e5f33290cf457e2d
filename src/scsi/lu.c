/*
 * lu.c - logical units and the command lifecycle.
 *
 *   submit ──> LUN check ──> UA check ──> opcode lookup ──> parse ──> central
 *   checks (reservation, LBA range, transfer length, write protect, Data-Out)
 *      │
 *      └──> NEW ──(can_start)──> RUNNING ──exec──> ... store ios ... ──> DONE
 *            └──(blocked)──> WAITING ──(wake)──┘            (done() posted)
 *
 * Invariants:
 * - Every accepted command on an LU sits in lu->head..tail in arrival order
 *   until it completes; busy counts them, nwaiting the WAITING ones.
 * - A command may start when (a) it is HEAD OF QUEUE, or no older ORDERED
 *   command is in the list and, if it is ORDERED itself, nothing older is
 *   (SAM-5 8.6); and (b) its LBA range (every command with one, and UNMAP) does
 *   not overlap an older command's range where either of the two is exclusive.
 *   Checking only *older* commands keeps the lock FIFO, so a waiting COMPARE
 *   AND WRITE cannot be starved by newer writes.
 * - done() is always posted to the reactor, never called inside submit or
 *   inside a store callback's caller chain.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3tgt/log.h"
#include "scsi_internal.h"

/* Scratch buffers kept on recycled contexts up to this size. */
#define CTX_BUF_KEEP (1u << 20)

struct reactor *scsi_cmd_reactor(const struct scsi_cmd *cmd)
{
	if (cmd->lu) {
		return cmd->lu->st->reactor;
	}
	return cmd->target ? cmd->target->reactor : NULL;
}

/* ---------------------------------------------------------------- UAs */

static struct scsi_ua_state *ua_find(struct scsi_lu *lu, uint64_t nexus_id)
{
	for (struct scsi_ua_state *u = lu->ua; u; u = u->next) {
		if (u->nexus_id == nexus_id) {
			return u;
		}
	}
	return NULL;
}

static void ua_push(struct scsi_ua_state *u, uint8_t asc, uint8_t ascq)
{
	for (unsigned i = 0; i < u->n; i++) {
		if (u->asc[i] == asc && u->ascq[i] == ascq) {
			return;
		}
	}
	if (u->n < SCSI_UA_MAX) {
		u->asc[u->n] = asc;
		u->ascq[u->n] = ascq;
		u->n++;
	}
}

/* A nexus seen for the first time starts with POWER ON OCCURRED (SAM-5 5.14). */
static struct scsi_ua_state *ua_get(struct scsi_lu *lu, const struct scsi_nexus *n)
{
	struct scsi_ua_state *u = ua_find(lu, n->id);

	if (u) {
		return u;
	}
	u = calloc(1, sizeof(*u));
	if (!u) {
		return NULL;
	}
	u->nexus_id = n->id;
	snprintf(u->port, sizeof(u->port), "%s", n->initiator_port);
	ua_push(u, 0x29, 0x00);
	u->next = lu->ua;
	lu->ua = u;
	return u;
}

void scsi_ua_raise(struct scsi_lu *lu, uint64_t nexus_id, uint8_t asc, uint8_t ascq)
{
	struct scsi_ua_state *u = ua_find(lu, nexus_id);

	/* A nexus with no state yet will see POWER ON OCCURRED, which covers this. */
	if (u) {
		ua_push(u, asc, ascq);
	}
}

void scsi_ua_raise_all(struct scsi_lu *lu, uint64_t except_id, uint8_t asc, uint8_t ascq)
{
	for (struct scsi_ua_state *u = lu->ua; u; u = u->next) {
		if (u->nexus_id != except_id) {
			ua_push(u, asc, ascq);
		}
	}
}

bool scsi_ua_pop(struct scsi_lu *lu, const struct scsi_nexus *n, uint8_t *asc, uint8_t *ascq)
{
	struct scsi_ua_state *u = ua_get(lu, n);

	if (!u || u->n == 0) {
		return false;
	}
	*asc = u->asc[0];
	*ascq = u->ascq[0];
	memmove(u->asc, u->asc + 1, u->n - 1u);
	memmove(u->ascq, u->ascq + 1, u->n - 1u);
	u->n--;
	return true;
}

/* ------------------------------------------------------- LU registry */

/*
 * Every live LU of the process, so that EXTENDED COPY can name a copy target
 * by its NAA designator whichever target it belongs to (SPC-4 6.4.5.6).
 * g_lu_registry_lock protects the list links only; it is a leaf lock taken
 * for a list walk or splice, never while calling out.
 */
static pthread_mutex_t g_lu_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct scsi_lu *g_lu_registry;

void scsi_lu_naa(const struct scsi_lu *lu, uint8_t out[8])
{
	/* NAA 3h: locally assigned (SPC-4 7.8.6.6.2), 60 bits of naa_id. */
	put_be64(out, (lu->naa_id & 0x0fffffffffffffffull) | 0x3000000000000000ull);
}

struct scsi_lu *scsi_lu_find_naa(const uint8_t naa[8])
{
	struct scsi_lu *lu;
	uint8_t id[8];

	pthread_mutex_lock(&g_lu_registry_lock);
	for (lu = g_lu_registry; lu; lu = lu->reg_next) {
		scsi_lu_naa(lu, id);
		if (memcmp(id, naa, sizeof(id)) == 0) {
			break;
		}
	}
	pthread_mutex_unlock(&g_lu_registry_lock);
	return lu;
}

static void registry_add(struct scsi_lu *lu)
{
	pthread_mutex_lock(&g_lu_registry_lock);
	lu->reg_next = g_lu_registry;
	g_lu_registry = lu;
	pthread_mutex_unlock(&g_lu_registry_lock);
}

static void registry_del(struct scsi_lu *lu)
{
	pthread_mutex_lock(&g_lu_registry_lock);
	for (struct scsi_lu **pp = &g_lu_registry; *pp; pp = &(*pp)->reg_next) {
		if (*pp == lu) {
			*pp = lu->reg_next;
			break;
		}
	}
	pthread_mutex_unlock(&g_lu_registry_lock);
}

/* ------------------------------------------------------- LU lifecycle */

static void copy_padded(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= cap) {
		n = cap - 1;
	}
	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
}

int scsi_lu_create(struct store *st, const struct scsi_lu_params *p, struct scsi_lu **out)
{
	struct scsi_lu *lu;
	char product[17];
	int rc;

	if (!st || !p || !p->serial || st->block_size == 0) {
		return -EINVAL;
	}
	lu = calloc(1, sizeof(*lu));
	if (!lu) {
		return -ENOMEM;
	}
	lu->st = st;
	copy_padded(lu->vendor, sizeof(lu->vendor), p->vendor ? p->vendor : "S3TGT");
	if (p->product) {
		copy_padded(lu->product, sizeof(lu->product), p->product);
	} else {
		rc = snprintf(product, sizeof(product), "s3tgt %s",
			      st->ops && st->ops->name ? st->ops->name : "disk");
		if (rc < 0) {
			product[0] = '\0';
		}
		copy_padded(lu->product, sizeof(lu->product), product);
	}
	copy_padded(lu->serial, sizeof(lu->serial), p->serial);
	lu->naa_id = p->naa_id;
	lu->read_only = p->read_only || st->read_only;
	lu->block_size = st->block_size;
	lu->nblocks = st->size / st->block_size;
	if (p->pr_path) {
		lu->pr_path = strdup(p->pr_path);
		if (!lu->pr_path) {
			rc = -ENOMEM;
			goto err_free;
		}
	}
	spc_mode_reset(lu);
	rc = pr_load(lu);
	if (rc < 0) {
		goto err_free;
	}
	registry_add(lu);
	*out = lu;
	return 0;

err_free:
	free(lu->pr_path);
	free(lu);
	return rc;
}

void scsi_lu_destroy(struct scsi_lu *lu)
{
	if (!lu) {
		return;
	}
	registry_del(lu);
	xcopy_free(lu);
	while (lu->ua) {
		struct scsi_ua_state *u = lu->ua;

		lu->ua = u->next;
		free(u);
	}
	while (lu->free_ctx) {
		struct scsi_io_ctx *c = lu->free_ctx;

		lu->free_ctx = c->next_free;
		free(c->buf);
		free(c);
	}
	pr_free(lu);
	store_close(lu->st);
	free(lu->pr_path);
	free(lu);
}

struct store *scsi_lu_store(struct scsi_lu *lu)
{
	return lu->st;
}

unsigned scsi_lu_busy(const struct scsi_lu *lu)
{
	return lu->busy;
}

void scsi_lu_capacity_changed(struct scsi_lu *lu)
{
	lu->nblocks = lu->st->size / lu->block_size;
	scsi_ua_raise_all(lu, SCSI_NEXUS_NONE, 0x2a, 0x09); /* SBC-3 4.6 */
}

void scsi_lu_reset(struct scsi_lu *lu, const struct scsi_nexus *from)
{
	/* SPC-2 5.5.1 / SAM-5 6.6: a LU reset releases RESERVE(6/10), not PRs. */
	lu->res6_held = false;
	lu->res6_nexus = 0;
	spc_mode_reset(lu);
	/*
	 * Every other nexus gets BUS DEVICE RESET FUNCTION OCCURRED (SAM-5 6.6).
	 * The requester gets the generic POWER ON, RESET, OR BUS DEVICE RESET
	 * OCCURRED: it must still see a UA (libiscsi MultipathIO.Reset), and
	 * libiscsi's RESERVE(6) helpers only tolerate 29/00 after a reset.
	 */
	scsi_ua_raise_all(lu, from ? from->id : SCSI_NEXUS_NONE, 0x29, 0x03);
	if (from) {
		scsi_ua_raise(lu, from->id, 0x29, 0x00);
	}
}

/* ---------------------------------------------------------- contexts */

struct scsi_io_ctx *scsi_ctx_get(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	struct scsi_io_ctx *c;

	if (cmd->priv) {
		return cmd->priv;
	}
	c = lu->free_ctx;
	if (c) {
		lu->free_ctx = c->next_free;
	} else {
		c = calloc(1, sizeof(*c));
		if (!c) {
			return NULL;
		}
	}
	c->next_free = NULL;
	c->cmd = cmd;
	c->pos = c->end = 0;
	c->step = c->idx = 0;
	memset(&c->io, 0, sizeof(c->io));
	cmd->priv = c;
	return c;
}

void scsi_ctx_put(struct scsi_cmd *cmd)
{
	struct scsi_io_ctx *c = cmd->priv;

	if (!c) {
		return;
	}
	cmd->priv = NULL;
	if (c->buf_cap > CTX_BUF_KEEP) {
		free(c->buf);
		c->buf = NULL;
		c->buf_cap = 0;
	}
	c->cmd = NULL;
	c->next_free = cmd->lu->free_ctx;
	cmd->lu->free_ctx = c;
}

int scsi_alloc_data_in(struct scsi_cmd *cmd, size_t len)
{
	if (len > UINT32_MAX) {
		return -EINVAL;
	}
	free(cmd->data_in);
	cmd->data_in = NULL;
	cmd->data_in_len = 0;
	if (len == 0) {
		return 0;
	}
	cmd->data_in = malloc(len);
	if (!cmd->data_in) {
		return -ENOMEM;
	}
	cmd->data_in_len = (uint32_t)len;
	return 0;
}

enum sense_reason scsi_reply(struct scsi_cmd *cmd, const uint8_t *buf, size_t len,
			     uint32_t alloc_len)
{
	size_t n = len < alloc_len ? len : alloc_len;

	if (scsi_alloc_data_in(cmd, n) < 0) {
		return SENSE_INTERNAL_FAILURE;
	}
	if (n) {
		memcpy(cmd->data_in, buf, n);
	}
	cmd->xfer_len = (uint32_t)n;
	return SENSE_OK;
}

/* ------------------------------------------------ ordering and locks */

static bool ranges_overlap(const struct scsi_cmd *a, const struct scsi_cmd *b)
{
	uint64_t a0 = a->priv_u64[CMD_U64_LOCK_LBA], an = a->priv_u64[CMD_U64_LOCK_N];
	uint64_t b0 = b->priv_u64[CMD_U64_LOCK_LBA], bn = b->priv_u64[CMD_U64_LOCK_N];

	return a0 < b0 + bn && b0 < a0 + an;
}

static bool can_start(const struct scsi_lu *lu, const struct scsi_cmd *cmd)
{
	bool check_order = cmd->attr != SCSI_ATTR_HEAD_OF_QUEUE && lu->nordered > 0;
	bool check_range = (cmd->flags & CMD_LOCKED) && lu->nexcl > 0;

	if (!check_order && !check_range) {
		return true;
	}
	for (const struct scsi_cmd *y = lu->head; y && y != cmd; y = y->lu_next) {
		if (check_order && ((y->flags & CMD_ORDERED) || (cmd->flags & CMD_ORDERED))) {
			return false;
		}
		if (check_range && (y->flags & CMD_LOCKED) &&
		    ((cmd->flags & CMD_EXCL) || (y->flags & CMD_EXCL)) && ranges_overlap(cmd, y)) {
			return false;
		}
	}
	return true;
}

static void lu_link(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	cmd->lu_next = NULL;
	cmd->lu_prev = lu->tail;
	if (lu->tail) {
		lu->tail->lu_next = cmd;
	} else {
		lu->head = cmd;
	}
	lu->tail = cmd;
	lu->busy++;
	if (cmd->flags & CMD_ORDERED) {
		lu->nordered++;
	}
	if (cmd->flags & CMD_EXCL) {
		lu->nexcl++;
	}
}

static void lu_unlink(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	if (cmd->lu_prev) {
		cmd->lu_prev->lu_next = cmd->lu_next;
	} else {
		lu->head = cmd->lu_next;
	}
	if (cmd->lu_next) {
		cmd->lu_next->lu_prev = cmd->lu_prev;
	} else {
		lu->tail = cmd->lu_prev;
	}
	cmd->lu_next = cmd->lu_prev = NULL;
	lu->busy--;
	if (cmd->flags & CMD_ORDERED) {
		lu->nordered--;
	}
	if (cmd->flags & CMD_EXCL) {
		lu->nexcl--;
	}
}

static void cmd_start(struct scsi_cmd *cmd)
{
	const struct scsi_op *op = cmd->op;

	cmd->state = CMD_STATE_RUNNING;
	op->exec(cmd);
}

static void lu_wake(struct scsi_lu *lu)
{
	if (lu->in_wake) {
		lu->wake_again = true;
		return;
	}
	lu->in_wake = true;
	do {
		lu->wake_again = false;
		for (struct scsi_cmd *c = lu->head; c && lu->nwaiting > 0; c = c->lu_next) {
			if (c->state == CMD_STATE_WAITING && can_start(lu, c)) {
				lu->nwaiting--;
				cmd_start(c);
				/* c may be gone: rescan from the head. */
				lu->wake_again = true;
				break;
			}
		}
	} while (lu->wake_again);
	lu->in_wake = false;
}

/* ------------------------------------------------------- completion */

static void cmd_deliver(void *arg)
{
	struct scsi_cmd *cmd = arg;

	cmd->done(cmd);
}

static void cmd_post_retry(void *arg);

static void cmd_post(struct scsi_cmd *cmd)
{
	struct reactor *r = scsi_cmd_reactor(cmd);

	if (!r) {
		LOG_ERR("scsi", "ITT 0x%08x: no reactor to complete on (target without LUs)",
			cmd->tag);
		return;
	}
	if (reactor_post(r, cmd_deliver, cmd) == 0) {
		return;
	}
	/* Out of message nodes: try again shortly rather than lose the command. */
	if (!reactor_timer_add(r, 1, false, cmd_post_retry, cmd)) {
		LOG_ERR("scsi", "ITT 0x%08x: cannot schedule completion (out of memory)", cmd->tag);
	}
}

static void cmd_post_retry(void *arg)
{
	cmd_post(arg);
}

void scsi_cmd_complete(struct scsi_cmd *cmd, enum sense_reason r)
{
	struct scsi_lu *lu = cmd->lu;
	bool was_linked = lu && cmd->state != CMD_STATE_NEW;

	if (cmd->state == CMD_STATE_DONE) {
		return;
	}
	if (cmd->aborted) {
		cmd->status = SCSI_STATUS_TASK_ABORTED;
		cmd->sense_len = 0;
	} else if (r == SENSE_UNIT_ATTENTION || r == SENSE_PRESET) {
		/* status and sense already built by the caller */
	} else {
		scsi_build_sense(cmd, r, 0, 0);
	}
	if (cmd->status != SCSI_STATUS_GOOD && cmd->status != SCSI_STATUS_CONDITION_MET) {
		/* No data goes with an error status. */
		free(cmd->data_in);
		cmd->data_in = NULL;
		cmd->data_in_len = 0;
	}
	if (lu) {
		scsi_ctx_put(cmd);
	}
	if (was_linked) {
		lu_unlink(lu, cmd);
	}
	cmd->state = CMD_STATE_DONE;
	cmd_post(cmd);
	if (was_linked) {
		lu_wake(lu);
	}
}

/* ----------------------------------------------------------- submit */

static enum sense_reason check_data_out(struct scsi_cmd *cmd, const struct scsi_op *op)
{
	if (!(op->flags & OP_DATA_OUT)) {
		return SENSE_OK;
	}
	/*
	 * FCP-4 9.5.8 a) / RFC 7143 11.4.5.1: with less Data-Out than the CDB asks
	 * for (overflow), a WRITE is processed normally except that data beyond
	 * the expected length is not transferred: only the whole blocks received
	 * are written (libiscsi 1.19 WriteNNResiduals). Other commands cannot be
	 * cut short and are refused. More Data-Out than needed (underflow) is
	 * fine: the first xfer_len bytes are used.
	 */
	if (cmd->data_out_len < cmd->xfer_len) {
		if ((op->flags & OP_WRITES) && (op->flags & OP_XFER_LIMIT)) {
			cmd->nblocks = cmd->data_out_len / cmd->lu->block_size;
			return SENSE_OK;
		}
		return SENSE_INVALID_FIELD_IU;
	}
	if ((op->flags & OP_DATA_EXACT) && cmd->data_out_len != cmd->xfer_len) {
		return SENSE_INVALID_FIELD_IU;
	}
	return SENSE_OK;
}

static enum sense_reason central_checks(struct scsi_cmd *cmd, const struct scsi_op *op)
{
	struct scsi_lu *lu = cmd->lu;

	if (!lu) {
		return SENSE_OK;
	}
	/* SPC-2 7.21: another nexus's RESERVE(6/10) blocks most commands. */
	if (lu->res6_held && lu->res6_nexus != cmd->nexus->id && !(op->flags & OP_R6_ALLOW)) {
		return SENSE_RESERVATION_CONFLICT;
	}
	if (pr_conflicts(lu, cmd, op)) {
		return SENSE_RESERVATION_CONFLICT;
	}
	if (op->flags & OP_LBA) {
		/* SBC-3 4.5: the whole range must lie inside the medium. */
		if (cmd->lba > lu->nblocks || cmd->nblocks > lu->nblocks - cmd->lba) {
			return SENSE_LBA_OUT_OF_RANGE;
		}
	}
	if ((op->flags & OP_XFER_LIMIT) && cmd->nblocks > sbc_max_xfer_blocks(lu)) {
		/* SBC-3 6.5.3: above MAXIMUM TRANSFER LENGTH. */
		return SENSE_INVALID_FIELD_CDB;
	}
	if ((op->flags & OP_WRITES) && (lu->read_only || lu->swp)) {
		return SENSE_WRITE_PROTECTED;
	}
	return check_data_out(cmd, op);
}

static void cmd_reset_private(struct scsi_cmd *cmd)
{
	cmd->status = SCSI_STATUS_GOOD;
	cmd->sense_len = 0;
	cmd->data_in = NULL;
	cmd->data_in_len = 0;
	cmd->xfer_len = 0;
	cmd->aborted = false;
	cmd->lu = NULL;
	cmd->lu_next = cmd->lu_prev = NULL;
	cmd->op = NULL;
	cmd->lba = 0;
	cmd->nblocks = 0;
	cmd->flags = 0;
	cmd->state = CMD_STATE_NEW;
	cmd->priv = NULL;
	memset(cmd->priv_u64, 0, sizeof(cmd->priv_u64));
}

static void cmd_submit(struct scsi_cmd *cmd, bool internal)
{
	const struct scsi_op *op;
	struct scsi_lu *lu;
	enum sense_reason r;
	uint8_t asc, ascq;

	cmd_reset_private(cmd);
	lu = scsi_target_get_lu(cmd->target, cmd->lun);
	cmd->lu = lu;
	op = &scsi_ops[cmd->cdb[0]];
	if (!op->exec && !op->sa) {
		op = NULL;
	}
	if (!lu && !(op && (op->flags & OP_ANY_LUN))) {
		scsi_cmd_complete(cmd, SENSE_LUN_NOT_SUPPORTED);
		return;
	}
	/*
	 * SBC-3 4.11.1: while a SANITIZE runs, everything but INQUIRY, REPORT
	 * LUNS and REQUEST SENSE is NOT READY, SANITIZE IN PROGRESS. Checked
	 * before the UA so that a pending UA survives until it can be reported.
	 */
	if (lu && lu->sanitizing && !(op && (op->flags & OP_ANY_LUN))) {
		scsi_cmd_complete(cmd, SENSE_SANITIZE_IN_PROGRESS);
		return;
	}
	/* SAM-5 5.14: a pending UA is reported instead of running the command. */
	if (lu && !internal && !(op && (op->flags & OP_NO_UA)) &&
	    scsi_ua_pop(lu, cmd->nexus, &asc, &ascq)) {
		scsi_build_sense(cmd, SENSE_UNIT_ATTENTION, asc, ascq);
		scsi_cmd_complete(cmd, SENSE_UNIT_ATTENTION);
		return;
	}
	if (lu && !internal && op && (op->flags & OP_NO_UA)) {
		(void)ua_get(lu, cmd->nexus); /* first contact: queue POWER ON OCCURRED */
	}
	op = scsi_op_lookup(cmd, &r);
	if (!op) {
		scsi_cmd_complete(cmd, r);
		return;
	}
	cmd->op = op;
	if (cmd->cdb_len < op->cdb_len) {
		scsi_cmd_complete(cmd, SENSE_INVALID_FIELD_IU);
		return;
	}
	/* SAM-5 5.3: NACA and LINK in the CONTROL byte are not supported. */
	if (cmd->cdb[op->cdb_len - 1] & 0x05) {
		r = scsi_field(cmd, SENSE_INVALID_FIELD_CDB, op->cdb_len - 1u,
			       (cmd->cdb[op->cdb_len - 1] & 0x04) ? 2 : 0);
		scsi_cmd_complete(cmd, r);
		return;
	}
	if (cmd->attr == SCSI_ATTR_ACA) {
		/* SAM-5 8.6.5: ACA tasks need an ACA condition, which NACA=0 never creates. */
		scsi_cmd_complete(cmd, SENSE_INVALID_FIELD_IU);
		return;
	}
	r = op->parse ? op->parse(cmd) : SENSE_OK;
	if (r == SENSE_OK) {
		r = central_checks(cmd, op);
	}
	if (r != SENSE_OK) {
		scsi_cmd_complete(cmd, r);
		return;
	}
	if (!lu) {
		cmd_start(cmd);
		return;
	}
	if (cmd->attr == SCSI_ATTR_ORDERED) {
		cmd->flags |= CMD_ORDERED;
	}
	if (op->flags & OP_LBA) {
		/*
		 * Reads hold their range shared too, so that an exclusive holder
		 * (COMPARE AND WRITE, ORWRITE, WRITE ATOMIC) is atomic against them:
		 * SBC-4 4.29.2, a read sees all or none of an atomic write.
		 */
		cmd->flags |= CMD_LOCKED;
		cmd->priv_u64[CMD_U64_LOCK_LBA] = cmd->lba;
		cmd->priv_u64[CMD_U64_LOCK_N] = cmd->nblocks;
	}
	if ((cmd->flags & CMD_LOCKED) && (op->flags & OP_EXCL)) {
		cmd->flags |= CMD_EXCL;
	}
	lu_link(lu, cmd);
	if (can_start(lu, cmd)) {
		cmd_start(cmd);
	} else {
		cmd->state = CMD_STATE_WAITING;
		lu->nwaiting++;
	}
}

void scsi_cmd_submit(struct scsi_cmd *cmd)
{
	cmd_submit(cmd, false);
}

void scsi_cmd_submit_internal(struct scsi_cmd *cmd)
{
	cmd_submit(cmd, true);
}

void scsi_cmd_abort(struct scsi_cmd *cmd)
{
	cmd->aborted = true;
	if (cmd->state == CMD_STATE_WAITING) {
		cmd->lu->nwaiting--;
		cmd->state = CMD_STATE_RUNNING;
		scsi_cmd_complete(cmd, SENSE_OK);
	}
}

void scsi_cmd_fini(struct scsi_cmd *cmd)
{
	free(cmd->data_in);
	cmd->data_in = NULL;
	cmd->data_in_len = 0;
}
