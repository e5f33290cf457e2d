/*
 * pr.c - persistent reservations (SPC-4 5.13, 6.15, 6.16).
 *
 * State: a list of registrations (one per I_T nexus, or per initiator port
 * with ALL_TG_PT), a generation counter bumped by every PROUT that changes
 * registrations, and at most one reservation. For the all-registrants types
 * (WE_AR, EA_AR) every registrant is a holder; `holder` then points at any
 * registration and moves when that one goes away.
 *
 * APTPL state file (params.pr_path), written atomically (tmp + fsync + rename):
 *     s3tgt-pr 1
 *     generation <u32>
 *     reg <key hex> <rel_tgt_port> <all_tg_pt 0|1> <initiator port>
 *     reservation <type> <index of the holder's reg line>
 * Loaded by scsi_lu_create(); an unknown magic or version is an error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "s3tgt/log.h"
#include "scsi_internal.h"

#define PR_MAGIC "s3tgt-pr"
#define PR_VERSION 1

/* PR types (SPC-4 6.15.3.3 table 170). */
#define PR_WE 0x1
#define PR_EA 0x3
#define PR_WE_RO 0x5
#define PR_EA_RO 0x6
#define PR_WE_AR 0x7
#define PR_EA_AR 0x8

/* PROUT service actions (SPC-4 6.16.2). */
#define PROUT_REGISTER 0x0
#define PROUT_RESERVE 0x1
#define PROUT_RELEASE 0x2
#define PROUT_CLEAR 0x3
#define PROUT_PREEMPT 0x4
#define PROUT_PREEMPT_ABORT 0x5
#define PROUT_REGISTER_IGNORE 0x6
#define PROUT_REGISTER_MOVE 0x7

#define PROUT_PARAM_LEN 24
/* REGISTER AND MOVE parameter list (SPC-4 6.16.4 table 176). */
#define PROUT_MOVE_FLAGS 17 /* UNREG bit 1, APTPL bit 0 */
#define PROUT_MOVE_RTPI 18
#define PROUT_MOVE_TID_LEN 20
#define PROUT_MOVE_TID 24
/* TransportID (SPC-4 7.6.4.6): protocol 5h, format 00b (name) or 01b (name + ISID). */
#define TID_PROTO_ISCSI 0x5
#define TID_MIN_LEN 20

static bool type_valid(uint8_t t)
{
	return t == PR_WE || t == PR_EA || t == PR_WE_RO || t == PR_EA_RO || t == PR_WE_AR ||
	       t == PR_EA_AR;
}

static bool type_all_reg(uint8_t t)
{
	return t == PR_WE_AR || t == PR_EA_AR;
}

static bool reg_matches(const struct pr_reg *r, const struct scsi_nexus *n)
{
	return strcmp(r->initiator_port, n->initiator_port) == 0 &&
	       (r->all_tg_pt || r->rel_tgt_port == n->rel_tgt_port);
}

static struct pr_reg *find_reg(const struct scsi_lu *lu, const struct scsi_nexus *n)
{
	for (struct pr_reg *r = lu->pr.regs; r; r = r->next) {
		if (reg_matches(r, n)) {
			return r;
		}
	}
	return NULL;
}

static bool is_holder(const struct scsi_lu *lu, const struct pr_reg *r)
{
	if (!r || !lu->pr.holder) {
		return false;
	}
	return type_all_reg(lu->pr.type) || lu->pr.holder == r;
}

bool pr_conflicts(const struct scsi_lu *lu, const struct scsi_cmd *cmd, const struct scsi_op *op)
{
	const struct pr_reg *r;
	uint8_t t = lu->pr.type;

	if (!lu->pr.holder || (op->flags & OP_PR_ALLOW)) {
		return false;
	}
	r = find_reg(lu, cmd->nexus);
	if (is_holder(lu, r)) {
		return false;
	}
	/* SPC-4 5.13.1 table 63: registrants may access under the RO and AR types. */
	if (r && (t == PR_WE_RO || t == PR_EA_RO || t == PR_WE_AR || t == PR_EA_AR)) {
		return false;
	}
	if (t == PR_WE || t == PR_WE_RO || t == PR_WE_AR) {
		return !(op->flags & OP_PR_READ);
	}
	return true;
}

/* Raise a UA on every nexus of the registrant's initiator port. */
static void ua_reg(struct scsi_lu *lu, const struct pr_reg *g, uint8_t asc, uint8_t ascq)
{
	for (struct scsi_ua_state *u = lu->ua; u; u = u->next) {
		if (strcmp(u->port, g->initiator_port) == 0) {
			scsi_ua_raise(lu, u->nexus_id, asc, ascq);
		}
	}
}

static void ua_registrants(struct scsi_lu *lu, const struct pr_reg *except, uint8_t asc,
			   uint8_t ascq)
{
	for (struct pr_reg *g = lu->pr.regs; g; g = g->next) {
		if (g != except) {
			ua_reg(lu, g, asc, ascq);
		}
	}
}

static void remove_reg(struct scsi_lu *lu, struct pr_reg *victim)
{
	struct pr_reg **pp;

	for (pp = &lu->pr.regs; *pp; pp = &(*pp)->next) {
		if (*pp == victim) {
			*pp = victim->next;
			break;
		}
	}
	if (lu->pr.holder == victim) {
		/* SPC-4 5.13.11.2.3: an AR reservation lives while any registrant does. */
		if (type_all_reg(lu->pr.type) && lu->pr.regs) {
			lu->pr.holder = lu->pr.regs;
		} else {
			lu->pr.holder = NULL;
		}
	}
	free(victim);
}

void pr_free(struct scsi_lu *lu)
{
	while (lu->pr.regs) {
		struct pr_reg *r = lu->pr.regs;

		lu->pr.regs = r->next;
		free(r);
	}
	lu->pr.holder = NULL;
}

/* ------------------------------------------------------------ APTPL */

static int pr_save(struct scsi_lu *lu)
{
	char tmp[4096];
	FILE *f;
	int idx = 0, holder_idx = -1, rc = 0, fd;

	if (!lu->pr_path) {
		return 0;
	}
	if (!lu->pr.aptpl) {
		if (unlink(lu->pr_path) < 0 && errno != ENOENT) {
			return -errno;
		}
		return 0;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", lu->pr_path) >= (int)sizeof(tmp)) {
		return -ENAMETOOLONG;
	}
	f = fopen(tmp, "w");
	if (!f) {
		return -errno;
	}
	fprintf(f, "%s %d\ngeneration %u\n", PR_MAGIC, PR_VERSION, lu->pr.generation);
	for (struct pr_reg *r = lu->pr.regs; r; r = r->next, idx++) {
		fprintf(f, "reg %llx %u %d %s\n", (unsigned long long)r->key, r->rel_tgt_port,
			r->all_tg_pt ? 1 : 0, r->initiator_port);
		if (r == lu->pr.holder) {
			holder_idx = idx;
		}
	}
	if (holder_idx >= 0) {
		fprintf(f, "reservation %u %d\n", lu->pr.type, holder_idx);
	}
	if (fflush(f) != 0) {
		rc = -errno;
	}
	fd = fileno(f);
	if (rc == 0 && fsync(fd) < 0) {
		rc = -errno;
	}
	if (fclose(f) != 0 && rc == 0) {
		rc = -errno;
	}
	if (rc == 0 && rename(tmp, lu->pr_path) < 0) {
		rc = -errno;
	}
	if (rc < 0) {
		unlink(tmp);
	}
	return rc;
}

static void name_from_port(struct pr_reg *r)
{
	const char *sep = strstr(r->initiator_port, ",i,");
	size_t n = sep ? (size_t)(sep - r->initiator_port) : strlen(r->initiator_port);

	if (n >= sizeof(r->initiator_name)) {
		n = sizeof(r->initiator_name) - 1;
	}
	memcpy(r->initiator_name, r->initiator_port, n);
	r->initiator_name[n] = '\0';
}

static int parse_reg_line(struct scsi_lu *lu, char *line, struct pr_reg ***tail)
{
	char *p = line + 4, *end;
	struct pr_reg *r;
	unsigned long long key, port, all;
	size_t n;

	errno = 0;
	key = strtoull(p, &end, 16);
	if (errno || end == p || *end != ' ') {
		return -EINVAL;
	}
	p = end + 1;
	port = strtoull(p, &end, 10);
	if (errno || end == p || *end != ' ' || port > 0xffff) {
		return -EINVAL;
	}
	p = end + 1;
	all = strtoull(p, &end, 10);
	if (errno || end == p || *end != ' ' || all > 1) {
		return -EINVAL;
	}
	p = end + 1;
	n = strcspn(p, "\n");
	r = calloc(1, sizeof(*r));
	if (!r) {
		return -ENOMEM;
	}
	if (n == 0 || n >= sizeof(r->initiator_port)) {
		free(r);
		return -EINVAL;
	}
	memcpy(r->initiator_port, p, n);
	r->key = key;
	r->rel_tgt_port = (uint16_t)port;
	r->all_tg_pt = all != 0;
	name_from_port(r);
	**tail = r;
	*tail = &r->next;
	return 0;
}

int pr_load(struct scsi_lu *lu)
{
	char line[512];
	FILE *f;
	struct pr_reg **tail = &lu->pr.regs;
	int rc = 0;
	bool header = false;

	if (!lu->pr_path) {
		return 0;
	}
	f = fopen(lu->pr_path, "r");
	if (!f) {
		return errno == ENOENT ? 0 : -errno;
	}
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		unsigned long long a, b;
		char *end, *p;

		if (!header) {
			char want[32];

			if (snprintf(want, sizeof(want), "%s %d\n", PR_MAGIC, PR_VERSION) < 0 ||
			    strcmp(line, want) != 0) {
				rc = -EINVAL;
			}
			header = true;
		} else if (strncmp(line, "generation ", 11) == 0) {
			errno = 0;
			a = strtoull(line + 11, &end, 10);
			if (errno || a > UINT32_MAX) {
				rc = -EINVAL;
			} else {
				lu->pr.generation = (uint32_t)a;
			}
		} else if (strncmp(line, "reg ", 4) == 0) {
			rc = parse_reg_line(lu, line, &tail);
		} else if (strncmp(line, "reservation ", 12) == 0) {
			struct pr_reg *r = lu->pr.regs;

			errno = 0;
			a = strtoull(line + 12, &end, 10);
			p = end;
			b = strtoull(p, &end, 10);
			if (errno || end == p || a > 0xff || !type_valid((uint8_t)a)) {
				rc = -EINVAL;
				break;
			}
			for (unsigned long long i = 0; r && i < b; i++) {
				r = r->next;
			}
			if (!r) {
				rc = -EINVAL;
				break;
			}
			lu->pr.holder = r;
			lu->pr.type = (uint8_t)a;
		} else {
			rc = -EINVAL;
		}
	}
	fclose(f);
	if (rc < 0) {
		LOG_ERR("scsi", "%s: bad persistent reservation file", lu->pr_path);
		pr_free(lu);
		return rc;
	}
	lu->pr.aptpl = true;
	return 0;
}

/* ------------------------------------------------- PERSISTENT RESERVE IN */

enum sense_reason pr_parse_in(struct scsi_cmd *cmd)
{
	return SENSE_OK;
}

/* iSCSI TransportID, format 01b: initiator port name with ISID (SPC-4 7.6.4.6). */
static size_t put_transport_id(uint8_t *p, const struct pr_reg *r)
{
	size_t n = strlen(r->initiator_port) + 1;
	size_t padded = (n + 3) & ~(size_t)3;

	if (padded < 20) {
		padded = 20;
	}
	memset(p, 0, 4 + padded);
	p[0] = 0x40 | 0x05;
	put_be16(p + 2, (uint16_t)padded);
	memcpy(p + 4, r->initiator_port, n);
	return 4 + padded;
}

void pr_exec_in(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	uint32_t alloc = get_be16(cmd->cdb + 7);
	size_t cap = 8, n = 8;
	uint8_t *b;
	enum sense_reason r;

	for (struct pr_reg *g = lu->pr.regs; g; g = g->next) {
		cap += 24 + 4 + 260;
	}
	b = calloc(1, cap + 16);
	if (!b) {
		scsi_cmd_complete(cmd, SENSE_INTERNAL_FAILURE);
		return;
	}
	put_be32(b, lu->pr.generation);
	switch (cmd->cdb[1] & 0x1f) {
	case 0: /* READ KEYS */
		for (struct pr_reg *g = lu->pr.regs; g; g = g->next) {
			put_be64(b + n, g->key);
			n += 8;
		}
		put_be32(b + 4, (uint32_t)(n - 8));
		break;
	case 1: /* READ RESERVATION */
		if (lu->pr.holder) {
			/* SPC-4 6.15.3.2: all-registrants reservations report key 0. */
			put_be64(b + 8, type_all_reg(lu->pr.type) ? 0 : lu->pr.holder->key);
			b[21] = lu->pr.type;
			n += 16;
		}
		put_be32(b + 4, (uint32_t)(n - 8));
		break;
	case 2: /* REPORT CAPABILITIES (SPC-4 6.15.4) */
		memset(b, 0, 8);
		put_be16(b, 8);
		b[2] = 0x10 | 0x04 | (lu->pr_path ? 0x01 : 0); /* CRH, ATP_C, PTPL_C */
		b[3] = 0x80 | 0x10 | (lu->pr.aptpl ? 0x01 : 0); /* TMV, ALLOW COMMANDS 001b */
		b[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02;	 /* WR_EX_AR EX_AC_RO WR_EX_RO EX_AC WR_EX */
		b[5] = 0x01;					 /* EX_AC_AR */
		n = 8;
		break;
	default: /* READ FULL STATUS (SPC-4 6.15.5) */
		for (struct pr_reg *g = lu->pr.regs; g; g = g->next) {
			uint8_t *d = b + n;
			size_t tid;

			memset(d, 0, 24);
			put_be64(d, g->key);
			d[12] = (uint8_t)((g->all_tg_pt ? 0x02 : 0) | (is_holder(lu, g) ? 0x01 : 0));
			if (is_holder(lu, g)) {
				d[13] = lu->pr.type;
			}
			put_be16(d + 18, g->rel_tgt_port);
			tid = put_transport_id(d + 24, g);
			put_be32(d + 20, (uint32_t)tid);
			n += 24 + tid;
		}
		put_be32(b + 4, (uint32_t)(n - 8));
		break;
	}
	r = scsi_reply(cmd, b, n, alloc);
	free(b);
	scsi_cmd_complete(cmd, r);
}

/* ------------------------------------------------ PERSISTENT RESERVE OUT */

enum sense_reason pr_parse_out(struct scsi_cmd *cmd)
{
	uint32_t len = get_be32(cmd->cdb + 5);

	cmd->xfer_len = len;
	if ((cmd->cdb[1] & 0x1f) == PROUT_REGISTER_MOVE) {
		/* SPC-4 6.16.4: a 24-byte header, then TRANSPORTID PARAMETER DATA LENGTH bytes. */
		if (len < PROUT_MOVE_TID + TID_MIN_LEN) {
			return SENSE_PARAM_LIST_LENGTH;
		}
		if (cmd->data_out_len < len) {
			return SENSE_INVALID_FIELD_IU;
		}
		if ((uint64_t)PROUT_MOVE_TID + get_be32(cmd->data_out + PROUT_MOVE_TID_LEN) > len) {
			return SENSE_PARAM_LIST_LENGTH;
		}
		return SENSE_OK;
	}
	/* SPC-4 6.16.1: the basic parameter list is exactly 24 bytes. */
	if (len != PROUT_PARAM_LEN) {
		return SENSE_PARAM_LIST_LENGTH;
	}
	if (cmd->data_out_len < len) {
		return SENSE_INVALID_FIELD_IU;
	}
	if (cmd->data_out[20] & 0x08) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_PARAM, 20, 3); /* SPEC_I_PT */
	}
	return SENSE_OK;
}

static enum sense_reason pr_register(struct scsi_cmd *cmd, struct pr_reg *me, uint64_t key,
				     uint64_t sa_key, bool ignore, bool all_tg_pt, bool aptpl)
{
	struct scsi_lu *lu = cmd->lu;

	if (!me) {
		if (!ignore && key != 0) {
			return SENSE_RESERVATION_CONFLICT;
		}
		if (sa_key == 0) {
			return SENSE_OK;
		}
		me = calloc(1, sizeof(*me));
		if (!me) {
			return SENSE_NO_RESOURCES;
		}
		me->key = sa_key;
		me->rel_tgt_port = cmd->nexus->rel_tgt_port;
		me->all_tg_pt = all_tg_pt;
		snprintf(me->initiator_port, sizeof(me->initiator_port), "%s",
			 cmd->nexus->initiator_port);
		snprintf(me->initiator_name, sizeof(me->initiator_name), "%s",
			 cmd->nexus->initiator_name);
		me->next = lu->pr.regs;
		lu->pr.regs = me;
	} else {
		if (!ignore && key != me->key) {
			return SENSE_RESERVATION_CONFLICT;
		}
		if (sa_key == 0) {
			bool released = lu->pr.holder == me && !type_all_reg(lu->pr.type);
			uint8_t t = lu->pr.type;

			remove_reg(lu, me);
			/* SPC-4 5.13.11.2.3: RO releases tell the other registrants. */
			if (released && (t == PR_WE_RO || t == PR_EA_RO)) {
				ua_registrants(lu, NULL, 0x2a, 0x04);
			}
		} else {
			me->key = sa_key;
		}
	}
	lu->pr.generation++;
	lu->pr.aptpl = aptpl;
	return SENSE_OK;
}

/* The I_T nexuses of registrations removed by a PREEMPT AND ABORT. */
struct pr_victims {
	struct pr_reg *regs; /* detached copies, freed by victims_fini() */
};

static void victim_add(struct pr_victims *v, const struct pr_reg *g)
{
	struct pr_reg *c;

	if (!v) {
		return;
	}
	c = malloc(sizeof(*c));
	if (!c) {
		/* The registration still goes; only its tasks keep running (logged). */
		LOG_WARN("scsi", "PREEMPT AND ABORT: out of memory, tasks of %s not aborted",
			 g->initiator_port);
		return;
	}
	*c = *g;
	c->next = v->regs;
	v->regs = c;
}

/*
 * SPC-4 5.13.11.4.5: abort every task of the preempted I_T nexuses on this
 * LU, except the PREEMPT AND ABORT itself. With TAS=0 (control mode page)
 * they end without a response (the transport sends nothing for an aborted
 * task) and their nexuses get COMMANDS CLEARED BY ANOTHER INITIATOR (SAM-5
 * 5.6). Aborting a waiting task completes it and may start others, which
 * changes the list: rescan from the head after every abort.
 */
static void victims_abort(struct scsi_lu *lu, struct pr_victims *v, const struct scsi_cmd *self)
{
	bool again = v->regs != NULL;

	while (again) {
		again = false;
		for (struct scsi_cmd *c = lu->head; c; c = c->lu_next) {
			if (c == self || c->aborted || !c->nexus) {
				continue;
			}
			for (struct pr_reg *g = v->regs; g; g = g->next) {
				if (reg_matches(g, c->nexus)) {
					scsi_ua_raise(lu, c->nexus->id, 0x2f, 0x00);
					scsi_cmd_abort(c);
					again = true;
					break;
				}
			}
			if (again) {
				break;
			}
		}
	}
	while (v->regs) {
		struct pr_reg *g = v->regs;

		v->regs = g->next;
		free(g);
	}
}

static enum sense_reason pr_preempt(struct scsi_cmd *cmd, struct pr_reg *me, uint64_t sa_key,
				    uint8_t type, struct pr_victims *victims)
{
	struct scsi_lu *lu = cmd->lu;
	struct pr_reg *g, *next;
	bool any = false;
	bool take = false;

	if (!type_valid(type)) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 2, 3);
	}
	if (lu->pr.holder && type_all_reg(lu->pr.type) && sa_key == 0) {
		/* SPC-4 5.13.11.4.4: preempt an AR reservation: remove every other registrant. */
		take = true;
		for (g = lu->pr.regs; g; g = next) {
			next = g->next;
			if (g != me) {
				ua_reg(lu, g, 0x2a, 0x05); /* REGISTRATIONS PREEMPTED */
				victim_add(victims, g);
				remove_reg(lu, g);
			}
		}
		any = true;
	} else {
		if (lu->pr.holder && !type_all_reg(lu->pr.type) && lu->pr.holder->key == sa_key) {
			take = true;
		} else if (sa_key == 0) {
			return scsi_field(cmd, SENSE_INVALID_FIELD_PARAM, 8, -1);
		}
		for (g = lu->pr.regs; g; g = next) {
			next = g->next;
			if (g->key == sa_key && g != me) {
				ua_reg(lu, g, 0x2a, 0x05); /* REGISTRATIONS PREEMPTED */
				victim_add(victims, g);
				remove_reg(lu, g);
				any = true;
			} else if (g->key == sa_key) {
				any = true;
			}
		}
		if (!any && !take) {
			return SENSE_RESERVATION_CONFLICT;
		}
	}
	if (take) {
		if (lu->pr.holder && (lu->pr.holder != me || lu->pr.type != type)) {
			/* SPC-4 5.13.11.4.3: a changed reservation is news to the remaining registrants. */
			ua_registrants(lu, me, 0x2a, 0x03);
		}
		lu->pr.holder = me;
		lu->pr.type = type;
	}
	lu->pr.generation++;
	return SENSE_OK;
}

/*
 * An iSCSI TransportID naming one initiator port (format 01b, SPC-4 7.6.4.6)
 * -> "<name>,i,0x<isid>" in the form the transport builds (lowercase: iSCSI
 * names are normalized to lowercase, RFC 3722). Format 00b names a whole
 * initiator device, not the one I_T nexus a move needs.
 */
static enum sense_reason parse_tid(struct scsi_cmd *cmd, const uint8_t *t, uint32_t len,
				   char *port, size_t cap)
{
	uint32_t add;
	size_t n;

	if (len < TID_MIN_LEN || (t[0] & 0x0f) != TID_PROTO_ISCSI) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_PARAM, PROUT_MOVE_TID, 3);
	}
	if ((t[0] >> 6) != 0x1) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_PARAM, PROUT_MOVE_TID, 7);
	}
	add = get_be16(t + 2);
	if (add > len - 4) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_PARAM, PROUT_MOVE_TID + 2, -1);
	}
	n = strnlen((const char *)t + 4, add);
	if (n == 0 || n == add || n >= cap) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_PARAM, PROUT_MOVE_TID + 4, -1);
	}
	for (size_t i = 0; i < n; i++) {
		char c = (char)t[4 + i];

		port[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	port[n] = '\0';
	if (!strstr(port, ",i,0x")) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_PARAM, PROUT_MOVE_TID + 4, -1);
	}
	return SENSE_OK;
}

/*
 * REGISTER AND MOVE (SPC-4 5.13.8): the holder hands its reservation to
 * another I_T nexus, registering that one with the service action key if
 * needed, and keeps (UNREG=0) or drops (UNREG=1) its own registration.
 */
static enum sense_reason pr_register_move(struct scsi_cmd *cmd, struct pr_reg *me)
{
	struct scsi_lu *lu = cmd->lu;
	const uint8_t *d = cmd->data_out;
	uint64_t key = get_be64(d), sa_key = get_be64(d + 8);
	bool unreg = d[PROUT_MOVE_FLAGS] & 0x02, aptpl = d[PROUT_MOVE_FLAGS] & 0x01;
	uint16_t rtpi = get_be16(d + PROUT_MOVE_RTPI);
	uint32_t tid_len = get_be32(d + PROUT_MOVE_TID_LEN);
	char port[sizeof(me->initiator_port)];
	struct pr_reg *dst = NULL;
	enum sense_reason r;

	/* Only the holder of a single-holder reservation can move it. */
	if (!me || me->key != key || !lu->pr.holder || lu->pr.holder != me ||
	    type_all_reg(lu->pr.type)) {
		return SENSE_RESERVATION_CONFLICT;
	}
	if (aptpl && !lu->pr_path) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_PARAM, PROUT_MOVE_FLAGS, 0);
	}
	if (sa_key == 0) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_PARAM, 8, -1);
	}
	if (rtpi == 0) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_PARAM, PROUT_MOVE_RTPI, -1);
	}
	r = parse_tid(cmd, d + PROUT_MOVE_TID, tid_len, port, sizeof(port));
	if (r != SENSE_OK) {
		return r;
	}
	/* The destination must be another I_T nexus than the one moving. */
	if (strcmp(port, cmd->nexus->initiator_port) == 0 && rtpi == cmd->nexus->rel_tgt_port) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_PARAM, PROUT_MOVE_TID, -1);
	}
	for (struct pr_reg *g = lu->pr.regs; g; g = g->next) {
		if (strcmp(g->initiator_port, port) == 0 && (g->all_tg_pt || g->rel_tgt_port == rtpi)) {
			dst = g;
			break;
		}
	}
	if (!dst) {
		dst = calloc(1, sizeof(*dst));
		if (!dst) {
			return SENSE_NO_RESOURCES;
		}
		snprintf(dst->initiator_port, sizeof(dst->initiator_port), "%s", port);
		name_from_port(dst);
		dst->rel_tgt_port = rtpi;
		dst->next = lu->pr.regs;
		lu->pr.regs = dst;
	}
	dst->key = sa_key;
	lu->pr.holder = dst;
	if (unreg) {
		remove_reg(lu, me);
	}
	lu->pr.generation++;
	lu->pr.aptpl = aptpl;
	return SENSE_OK;
}

void pr_exec_out(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	const uint8_t *d = cmd->data_out;
	unsigned sa = cmd->cdb[1] & 0x1f;
	uint8_t scope = cmd->cdb[2] >> 4, type = cmd->cdb[2] & 0x0f;
	uint64_t key = get_be64(d), sa_key = get_be64(d + 8);
	bool all_tg_pt = d[20] & 0x04, aptpl = d[20] & 0x01;
	struct pr_reg *me = find_reg(lu, cmd->nexus);
	struct pr_victims victims = { 0 };
	enum sense_reason r = SENSE_OK;
	bool save = true;

	if (sa == PROUT_REGISTER_MOVE) {
		if (scope != 0) {
			r = scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 2, 7);
		} else {
			r = pr_register_move(cmd, me);
		}
		goto out;
	}
	if (aptpl && !lu->pr_path && (sa == PROUT_REGISTER || sa == PROUT_REGISTER_IGNORE)) {
		scsi_cmd_complete(cmd, scsi_field(cmd, SENSE_INVALID_FIELD_PARAM, 20, 0));
		return;
	}
	if (sa == PROUT_REGISTER || sa == PROUT_REGISTER_IGNORE) {
		r = pr_register(cmd, me, key, sa_key, sa == PROUT_REGISTER_IGNORE, all_tg_pt,
				aptpl);
		goto out;
	}
	if (!me || me->key != key) {
		r = SENSE_RESERVATION_CONFLICT;
		goto out;
	}
	if (sa != PROUT_CLEAR && scope != 0) {
		r = scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 2, 7); /* LU_SCOPE only */
		goto out;
	}
	switch (sa) {
	case PROUT_RESERVE:
		if (!type_valid(type)) {
			r = scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 2, 3);
		} else if (lu->pr.holder) {
			if (!is_holder(lu, me) || lu->pr.type != type) {
				r = SENSE_RESERVATION_CONFLICT;
			}
		} else {
			lu->pr.holder = me;
			lu->pr.type = type;
		}
		break;
	case PROUT_RELEASE:
		if (!lu->pr.holder || !is_holder(lu, me)) {
			break; /* SPC-4 5.13.11.2.2: not the holder: GOOD, nothing happens */
		}
		if (lu->pr.type != type) {
			r = SENSE_INVALID_FIELD_PARAM; /* INVALID RELEASE OF PERSISTENT RESERVATION */
			break;
		}
		if (lu->pr.type != PR_WE && lu->pr.type != PR_EA) {
			ua_registrants(lu, me, 0x2a, 0x04); /* RESERVATIONS RELEASED */
		}
		lu->pr.holder = NULL;
		break;
	case PROUT_CLEAR:
		ua_registrants(lu, me, 0x2a, 0x03); /* RESERVATIONS PREEMPTED */
		pr_free(lu);
		lu->pr.generation++;
		break;
	case PROUT_PREEMPT:
		r = pr_preempt(cmd, me, sa_key, type, NULL);
		break;
	case PROUT_PREEMPT_ABORT:
		r = pr_preempt(cmd, me, sa_key, type, &victims);
		break;
	default:
		r = scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 1, 4);
		save = false;
		break;
	}
out:
	if (r == SENSE_OK && save && (lu->pr.aptpl || lu->pr_path)) {
		int rc = pr_save(lu);

		if (rc < 0) {
			LOG_ERR("scsi", "LUN %llu: saving persistent reservations to %s: %d",
				(unsigned long long)lu->lun, lu->pr_path, rc);
			r = SENSE_INTERNAL_FAILURE;
		}
	}
	/* After the reservation changed, so nothing restarted meanwhile sees the old one. */
	victims_abort(lu, &victims, cmd);
	scsi_cmd_complete(cmd, r);
}
