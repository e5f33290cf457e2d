/*
 * text.c - text keys (RFC 7143 6, 13): key=value parsing, the negotiation
 * rules of every operational key, SendTargets (appendix C) and the Text
 * Request/Response exchange with its continuation (C bit + Target Transfer
 * Tag) for answers longer than the initiator's MaxRecvDataSegmentLength.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "acl.h"
#include "iscsi_internal.h"
#include "s3tgt/log.h"

void iscsi_params_default(struct iscsi_params *p)
{
	*p = (struct iscsi_params){
		.header_digest = false,
		.data_digest = false,
		.initiator_mrdsl = 8192, /* 13.12 default */
		.target_mrdsl = 8192,
		.max_burst = 262144,
		.first_burst = 65536,
		.immediate_data = true,
		.initial_r2t = true,
		.max_outstanding_r2t = 1,
		.data_pdu_in_order = true,
		.data_seq_in_order = true,
		.erl = 0,
		.time2wait = 2,
		.time2retain = 20,
		.max_connections = 1,
	};
}

int iscsi_text_parse(char *buf, size_t len, struct iscsi_kv *kv, size_t max)
{
	size_t off = 0;
	int n = 0;

	while (off < len) {
		char *pair = buf + off;
		char *end = memchr(pair, '\0', len - off);
		char *eq;

		if (!end) {
			/* 6.1: every pair ends with NUL; a torn last pair is malformed. */
			return -EINVAL;
		}
		off = (size_t)(end - buf) + 1;
		if (end == pair) {
			/* Padding NULs some initiators leave: skip. */
			continue;
		}
		eq = memchr(pair, '=', (size_t)(end - pair));
		if (!eq || eq == pair || (size_t)(eq - pair) > ISCSI_KEY_MAX ||
		    (size_t)(end - eq - 1) > ISCSI_VALUE_MAX) {
			return -EINVAL;
		}
		*eq = '\0';
		if ((size_t)n >= max) {
			return -E2BIG;
		}
		/*
		 * RFC 7143 6.2: a key may be offered once per negotiation; a
		 * repeated key is a protocol error, never "last one wins".
		 */
		for (int i = 0; i < n; i++) {
			if (strcmp(kv[i].key, pair) == 0) {
				return -EINVAL;
			}
		}
		kv[n].key = pair;
		kv[n].value = eq + 1;
		n++;
	}
	return n;
}

void iscsi_text_add(struct iscsi_text_out *out, const char *key, const char *value)
{
	size_t kl = strlen(key), vl = strlen(value);
	size_t need = kl + 1 + vl + 1;

	if (out->overflow || need > out->cap - out->len) {
		out->overflow = true;
		return;
	}
	memcpy(out->buf + out->len, key, kl);
	out->buf[out->len + kl] = '=';
	memcpy(out->buf + out->len + kl + 1, value, vl);
	out->buf[out->len + need - 1] = '\0';
	out->len += need;
}

void iscsi_text_add_u32(struct iscsi_text_out *out, const char *key, uint32_t v)
{
	char num[16];

	snprintf(num, sizeof(num), "%u", v);
	iscsi_text_add(out, key, num);
}

int iscsi_text_number(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		/* 6.1: hex-constant */
		i = 2;
		if (!s[i]) {
			return -EINVAL;
		}
		for (; s[i]; i++) {
			char ch = s[i];
			unsigned d;
			if (ch >= '0' && ch <= '9') {
				d = (unsigned)(ch - '0');
			} else if (ch >= 'a' && ch <= 'f') {
				d = (unsigned)(ch - 'a' + 10);
			} else if (ch >= 'A' && ch <= 'F') {
				d = (unsigned)(ch - 'A' + 10);
			} else {
				return -EINVAL;
			}
			if (v >> 60) {
				return -ERANGE;
			}
			v = v << 4 | d;
		}
		*out = v;
		return 0;
	}
	if (!s[0]) {
		return -EINVAL;
	}
	for (; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9') {
			return -EINVAL;
		}
		if (v > (UINT64_MAX - 9) / 10) {
			return -ERANGE;
		}
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* How a key's answer is derived from the offer (RFC 7143 6.2). */
enum key_kind {
	KEY_NUM_MIN,	/* result = min(offer, ours) */
	KEY_NUM_MAX,	/* result = max(offer, ours) */
	KEY_BOOL_AND,
	KEY_BOOL_OR,
	KEY_DIGEST,	/* list: first of the offer we support */
	KEY_DECLARE,	/* declarative number: the initiator's own limit */
	KEY_MARKER_INT, /* obsolete marker interval: Irrelevant once markers are No */
};

struct key_rule {
	const char *name;
	enum key_kind kind;
	uint32_t min, max;
	uint32_t ours;
	size_t off;	      /* offsetof in struct iscsi_params */
	bool session_only;    /* Irrelevant in a discovery session (13.x "Irrelevant when") */
};

#define P(f) offsetof(struct iscsi_params, f)
static const struct key_rule g_key_rules[] = {
	{ "HeaderDigest", KEY_DIGEST, 0, 0, 0, P(header_digest), false },
	{ "DataDigest", KEY_DIGEST, 0, 0, 0, P(data_digest), false },
	{ "MaxRecvDataSegmentLength", KEY_DECLARE, ISCSI_MRDSL_MIN, ISCSI_MRDSL_MAX, 0,
	  P(initiator_mrdsl), false },
	{ "MaxBurstLength", KEY_NUM_MIN, 512, ISCSI_MRDSL_MAX, ISCSI_OUR_MAX_BURST, P(max_burst),
	  true },
	{ "FirstBurstLength", KEY_NUM_MIN, 512, ISCSI_MRDSL_MAX, ISCSI_OUR_MAX_BURST,
	  P(first_burst), true },
	{ "ImmediateData", KEY_BOOL_AND, 0, 0, 1, P(immediate_data), true },
	{ "InitialR2T", KEY_BOOL_OR, 0, 0, 0, P(initial_r2t), true },
	{ "MaxOutstandingR2T", KEY_NUM_MIN, 1, 65535, ISCSI_MAX_R2T, P(max_outstanding_r2t), true },
	/* We send in order; answering Yes to No is what OR allows (13.18, 13.19). */
	{ "DataPDUInOrder", KEY_BOOL_OR, 0, 0, 1, P(data_pdu_in_order), true },
	{ "DataSequenceInOrder", KEY_BOOL_OR, 0, 0, 1, P(data_seq_in_order), true },
	{ "ErrorRecoveryLevel", KEY_NUM_MIN, 0, 2, 0, P(erl), false },
	{ "DefaultTime2Wait", KEY_NUM_MAX, 0, 3600, 2, P(time2wait), true },
	{ "DefaultTime2Retain", KEY_NUM_MIN, 0, 3600, 20, P(time2retain), true },
	{ "MaxConnections", KEY_NUM_MIN, 1, 65535, 1, P(max_connections), true },
	{ "IFMarker", KEY_BOOL_AND, 0, 0, 0, 0, false },
	{ "OFMarker", KEY_BOOL_AND, 0, 0, 0, 0, false },
	{ "IFMarkInt", KEY_MARKER_INT, 0, 0, 0, 0, false },
	{ "OFMarkInt", KEY_MARKER_INT, 0, 0, 0, 0, false },
};
#undef P

static void set_u32(struct iscsi_params *p, size_t off, uint32_t v)
{
	memcpy((char *)p + off, &v, sizeof(v));
}

static void set_bool(struct iscsi_params *p, size_t off, bool v)
{
	memcpy((char *)p + off, &v, sizeof(v));
}

static int parse_bool(const char *v, bool *out)
{
	if (strcmp(v, "Yes") == 0) {
		*out = true;
		return 0;
	}
	if (strcmp(v, "No") == 0) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}

/* 13.1: the first entry of the offered list we support. */
static const char *pick_digest(const char *list, bool *crc)
{
	const char *p = list;

	while (*p) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 6 && memcmp(p, "CRC32C", 6) == 0) {
			*crc = true;
			return "CRC32C";
		}
		if (n == 4 && memcmp(p, "None", 4) == 0) {
			*crc = false;
			return "None";
		}
		if (!e) {
			break;
		}
		p = e + 1;
	}
	return NULL;
}

enum iscsi_neg_result iscsi_negotiate_key(struct iscsi_params *p, bool discovery,
					  const char *key, const char *value,
					  struct iscsi_text_out *out)
{
	const struct key_rule *r = NULL;
	uint64_t num;
	bool b, crc;
	const char *pick;

	for (size_t i = 0; i < sizeof(g_key_rules) / sizeof(g_key_rules[0]); i++) {
		if (strcmp(g_key_rules[i].name, key) == 0) {
			r = &g_key_rules[i];
			break;
		}
	}
	if (!r) {
		return ISCSI_NEG_UNKNOWN;
	}
	if (discovery && r->session_only) {
		iscsi_text_add(out, key, "Irrelevant");
		return ISCSI_NEG_OK;
	}
	switch (r->kind) {
	case KEY_DIGEST:
		pick = pick_digest(value, &crc);
		if (!pick) {
			iscsi_text_add(out, key, "Reject");
			break;
		}
		set_bool(p, r->off, crc);
		iscsi_text_add(out, key, pick);
		break;
	case KEY_DECLARE:
		if (iscsi_text_number(value, &num) < 0 || num < r->min || num > r->max) {
			iscsi_text_add(out, key, "Reject");
			return ISCSI_NEG_BAD_DECLARATION;
		}
		set_u32(p, r->off, (uint32_t)num);
		break;
	case KEY_NUM_MIN:
	case KEY_NUM_MAX:
		if (iscsi_text_number(value, &num) < 0 || num < r->min || num > r->max) {
			iscsi_text_add(out, key, "Reject");
			break;
		}
		if (r->kind == KEY_NUM_MIN ? num > r->ours : num < r->ours) {
			num = r->ours;
		}
		set_u32(p, r->off, (uint32_t)num);
		iscsi_text_add_u32(out, key, (uint32_t)num);
		break;
	case KEY_BOOL_AND:
	case KEY_BOOL_OR:
		if (parse_bool(value, &b) < 0) {
			iscsi_text_add(out, key, "Reject");
			break;
		}
		b = r->kind == KEY_BOOL_AND ? (b && r->ours) : (b || r->ours);
		if (r->off) {
			set_bool(p, r->off, b);
		}
		iscsi_text_add(out, key, b ? "Yes" : "No");
		break;
	case KEY_MARKER_INT:
		iscsi_text_add(out, key, "Irrelevant");
		break;
	}
	return ISCSI_NEG_OK;
}

void iscsi_params_finish(struct iscsi_params *p)
{
	if (p->first_burst > p->max_burst) {
		p->first_burst = p->max_burst;
	}
}

/* "ip:port,tpgt" of a portal for TargetAddress (appendix C, 13.8). */
int iscsi_send_targets(struct iscsi_server *srv, const char *local, uint16_t tpgt,
		       const char *which, struct iscsi_tgt *only, struct iscsi_conn *viewer,
		       struct iscsi_text_out *out)
{
	char addr[128];
	int n = snprintf(addr, sizeof(addr), "%s,%u", local, tpgt);

	if (n < 0 || (size_t)n >= sizeof(addr)) {
		return -ENAMETOOLONG;
	}
	for (struct iscsi_tgt *t = srv->targets; t; t = t->next) {
		const char *name = scsi_target_name(t->t);
		if (only && t != only) {
			continue;
		}
		if (!only && strcmp(which, "All") != 0 && strcmp(which, name) != 0) {
			continue;
		}
		if (viewer && viewer->sess &&
		    !iscsi_conn_acl_allows(viewer, name, viewer->sess->nexus.initiator_name)) {
			continue;
		}
		iscsi_text_add(out, "TargetName", name);
		iscsi_text_add(out, "TargetAddress", addr);
	}
	return out->overflow ? -E2BIG : 0;
}

/* Queue the next piece of conn->text_out (11.11: C bit while more remains). */
static void text_send_piece(struct iscsi_conn *c, const uint8_t *req)
{
	struct iscsi_tx *tx = iscsi_tx_get(c);
	size_t left = c->text_out_len - c->text_out_off;
	size_t n = left;
	bool more;

	if (!tx) {
		iscsi_conn_close(c, "out of memory");
		return;
	}
	if (n > c->params.initiator_mrdsl) {
		n = c->params.initiator_mrdsl;
	}
	more = n < left;
	memset(tx->hdr, 0, ISCSI_BHS_LEN);
	tx->hdr[ISCSI_BHS_OPCODE] = ISCSI_OP_TEXT_RSP;
	tx->hdr[ISCSI_BHS_FLAGS] = more ? ISCSI_TEXT_FLAG_CONTINUE : ISCSI_FLAG_FINAL;
	memcpy(tx->hdr + ISCSI_BHS_LUN, req + ISCSI_BHS_LUN, 8);
	put_be32(tx->hdr + ISCSI_BHS_ITT, c->text_itt);
	if (more) {
		c->text_ttt = c->sess ? c->sess->next_ttt++ : 1;
		if (c->text_ttt == ISCSI_RSVD_TAG) {
			c->text_ttt = c->sess ? c->sess->next_ttt++ : 1;
		}
	}
	put_be32(tx->hdr + ISCSI_BHS_TTT, more ? c->text_ttt : ISCSI_RSVD_TAG);
	iscsi_conn_fill_sn(c, tx->hdr, true);
	tx->owned = malloc(n ? n : 1);
	if (!tx->owned) {
		iscsi_conn_close(c, "out of memory");
		return;
	}
	memcpy(tx->owned, c->text_out + c->text_out_off, n);
	tx->data = tx->owned;
	tx->data_len = (uint32_t)n;
	c->text_out_off += n;
	if (!more) {
		free(c->text_out);
		c->text_out = NULL;
		c->text_out_len = c->text_out_off = 0;
		c->text_ttt = ISCSI_RSVD_TAG;
	}
	iscsi_tx_queue(c, tx);
}

int iscsi_text_rx(struct iscsi_conn *c, const uint8_t *bhs, uint8_t *data, uint32_t len)
{
	uint32_t ttt = get_be32(bhs + ISCSI_BHS_TTT);
	uint32_t itt = get_be32(bhs + ISCSI_BHS_ITT);
	struct iscsi_kv kv[64];
	struct iscsi_text_out out = { 0 };
	int n, rc = 0;

	if (ttt != ISCSI_RSVD_TAG) {
		/* 11.10.4: continue a long response, or a stale TTT (reset). */
		if (c->text_out && ttt == c->text_ttt && itt == c->text_itt) {
			text_send_piece(c, bhs);
			return 0;
		}
		iscsi_conn_send_reject(c, bhs, ISCSI_REJECT_INVALID_PDU_FIELD);
		return 0;
	}
	if (bhs[ISCSI_BHS_FLAGS] & ISCSI_TEXT_FLAG_CONTINUE) {
		/* Multi-PDU text requests carry no key we implement: say so. */
		iscsi_conn_send_reject(c, bhs, ISCSI_REJECT_CMD_NOT_SUPPORTED);
		return 0;
	}
	free(c->text_out);
	c->text_out = NULL;
	out.cap = 1024 * 1024;
	out.buf = malloc(out.cap);
	if (!out.buf) {
		return -ENOMEM;
	}
	n = iscsi_text_parse((char *)data, len, kv, sizeof(kv) / sizeof(kv[0]));
	if (n < 0) {
		free(out.buf);
		iscsi_conn_send_reject(c, bhs, ISCSI_REJECT_PROTOCOL_ERROR);
		return 0;
	}
	for (int i = 0; i < n; i++) {
		if (strcmp(kv[i].key, "SendTargets") == 0) {
			struct iscsi_tgt *only = c->sess->discovery ? NULL : c->sess->tgt;
			rc = iscsi_send_targets(c->srv, c->local, c->tpgt, kv[i].value, only, c,
						&out);
			if (rc < 0) {
				LOG_WARN("iscsi", "%s: SendTargets answer too long", c->peer);
			}
		} else {
			/*
			 * Full feature phase: only MaxRecvDataSegmentLength may change
			 * (13.12 "ALL"); the rest are login-only (LO) and get Reject,
			 * so digests and burst sizes can't change under running tasks.
			 */
			struct iscsi_params tmp = c->params;
			size_t before = out.len;
			if (iscsi_negotiate_key(&tmp, c->sess->discovery, kv[i].key, kv[i].value,
						&out) == ISCSI_NEG_UNKNOWN) {
				iscsi_text_add(&out, kv[i].key, "NotUnderstood");
			} else if (strcmp(kv[i].key, "MaxRecvDataSegmentLength") == 0) {
				c->params.initiator_mrdsl = tmp.initiator_mrdsl;
			} else {
				out.len = before;
				iscsi_text_add(&out, kv[i].key, "Reject");
			}
		}
	}
	c->text_out = out.buf;
	c->text_out_len = out.len;
	c->text_out_off = 0;
	c->text_itt = itt;
	text_send_piece(c, bhs);
	return 0;
}
