/*
 * login.c - the login phase (RFC 7143 6.3, 11.12, 11.13).
 *
 *   start --first PDU: version, ISID/TSIH/ITT/CID--> SECURITY (CSG 0)
 *   SECURITY --AuthMethod step done, T=1 NSG=1--> OPERATIONAL (CSG 1)
 *   SECURITY|OPERATIONAL --T=1 NSG=3--> session bound, full feature phase
 *   any stage --error--> Login Response with Status-Class != 0, close
 *
 * A request with the C bit only accumulates keys (answered by an empty
 * response, 11.12.2). The security stage runs the target's authentication
 * step (auth_step()): a target with a CHAP account offers only CHAP and runs
 * the exchange of chap.c; otherwise only None is offered. `authenticated`
 * stays false until CHAP verified the response, which blocks every transit
 * (also a login that skips the security stage, RFC 7143 6.3). A normal
 * session to a target whose ACL does not admit the initiator (name, source
 * address) is refused with 0x0202 before any authentication.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "chap.h"
#include "iscsi_internal.h"
#include "s3tgt/log.h"

#define LOGIN_RSP_MAX 8192 /* the initiator's MaxRecvDataSegmentLength during login (13.12) */
#define LOGIN_KV_MAX 128

static void free_text(struct iscsi_login *l)
{
	free(l->text);
	l->text = NULL;
	l->text_len = 0;
}

void iscsi_login_fini(struct iscsi_login *l)
{
	free_text(l);
	if (l->chap) {
		iscsi_chap_fini(l->chap); /* wipes the copied secrets */
		free(l->chap);
		l->chap = NULL;
	}
}

static bool list_has(const char *list, const char *item)
{
	size_t il = strlen(item);
	const char *p = list;

	while (*p) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == il && memcmp(p, item, n) == 0) {
			return true;
		}
		if (!e) {
			break;
		}
		p = e + 1;
	}
	return false;
}

static uint16_t chap_status(struct iscsi_conn *c, enum iscsi_chap_result r)
{
	struct iscsi_login *l = &c->login;

	switch (r) {
	case ISCSI_CHAP_CONTINUE:
		return ISCSI_LOGIN_OK;
	case ISCSI_CHAP_SUCCESS:
		l->authenticated = true;
		LOG_INFO("iscsi", "%s: %s authenticated by CHAP for %s", c->peer,
			 l->initiator_name, l->target_name);
		return ISCSI_LOGIN_OK;
	case ISCSI_CHAP_AUTH_FAIL:
		/* 11.13.5: authentication failure; the reason never holds a secret. */
		LOG_WARN("iscsi", "%s: CHAP of %s to %s failed: %s", c->peer, l->initiator_name,
			 l->target_name, l->chap->why);
		return ISCSI_LOGIN_AUTH_FAILED;
	case ISCSI_CHAP_INITIATOR_ERROR:
		LOG_WARN("iscsi", "%s: CHAP of %s to %s: %s", c->peer, l->initiator_name,
			 l->target_name, l->chap->why);
		return ISCSI_LOGIN_INITIATOR_ERROR;
	case ISCSI_CHAP_TARGET_ERROR:
		break;
	}
	LOG_ERR("iscsi", "%s: CHAP: %s", c->peer, l->chap->why);
	return ISCSI_LOGIN_TARGET_ERROR;
}

/*
 * The authentication step of the security stage. Returns a login status;
 * sets l->authenticated once the initiator may leave the security stage.
 * Offers only what the target is configured for (issue 4): CHAP when it has
 * a CHAP account, else None. Discovery sessions need no authentication.
 */
static uint16_t auth_step(struct iscsi_conn *c, const char *auth_methods,
			  const struct iscsi_kv *kv, int n, struct iscsi_text_out *out)
{
	struct iscsi_login *l = &c->login;
	const struct iscsi_chap_config *chap =
		(l->tgt && !l->discovery) ? iscsi_target_chap(c->srv, l->target_name) : NULL;
	bool chap_keys = false;

	for (int i = 0; i < n; i++) {
		chap_keys |= strncmp(kv[i].key, "CHAP_", 5) == 0;
	}
	if (l->chap) {
		if (auth_methods) {
			/* 6.2: AuthMethod is negotiated once. */
			return ISCSI_LOGIN_INITIATOR_ERROR;
		}
		if (iscsi_chap_is_done(l->chap) && !chap_keys) {
			return ISCSI_LOGIN_OK;
		}
		return chap_status(c, iscsi_chap_step(l->chap, kv, (size_t)n, out));
	}
	if (chap_keys) {
		/* No CHAP exchange was selected: these keys are out of place. */
		return ISCSI_LOGIN_INITIATOR_ERROR;
	}
	if (!auth_methods) {
		/* Not offered: the default is None (13.x), fine if we need nothing. */
		if (!chap) {
			l->authenticated = true;
		}
		return ISCSI_LOGIN_OK;
	}
	if (!chap && list_has(auth_methods, "None")) {
		iscsi_text_add(out, "AuthMethod", "None");
		l->authenticated = true;
		return ISCSI_LOGIN_OK;
	}
	if (chap && list_has(auth_methods, "CHAP")) {
		l->chap = calloc(1, sizeof(*l->chap));
		if (!l->chap) {
			return ISCSI_LOGIN_OUT_OF_RESOURCES;
		}
		iscsi_chap_start(l->chap, chap);
		iscsi_text_add(out, "AuthMethod", "CHAP");
		/* CHAP_A may ride along with AuthMethod (12.1.3). */
		return chap_status(c, iscsi_chap_step(l->chap, kv, (size_t)n, out));
	}
	iscsi_text_add(out, "AuthMethod", "Reject");
	LOG_WARN("iscsi", "%s: %s offered AuthMethod=%s, %s needs %s", c->peer,
		 l->initiator_name, auth_methods, l->target_name, chap ? "CHAP" : "None");
	return ISCSI_LOGIN_AUTH_FAILED;
}

/* Process the keys of one (complete) request; returns a login status. */
static uint16_t login_keys(struct iscsi_conn *c, struct iscsi_kv *kv, int n,
			   struct iscsi_text_out *out)
{
	struct iscsi_login *l = &c->login;
	const char *auth = NULL;
	uint16_t st;

	for (int i = 0; i < n; i++) {
		const char *k = kv[i].key, *v = kv[i].value;
		/* CHAP_* values are secrets or challenge material: never logged. */
		LOG_DEBUG("iscsi", "%s: login key %s=%s", c->peer, k,
			  strncmp(k, "CHAP_", 5) == 0 ? "(hidden)" : v);
		if (strcmp(k, "InitiatorName") == 0) {
			if (strlen(v) > ISCSI_NAME_MAX) {
				return ISCSI_LOGIN_INITIATOR_ERROR;
			}
			snprintf(l->initiator_name, sizeof(l->initiator_name), "%s", v);
			l->have_initiator = true;
		} else if (strcmp(k, "TargetName") == 0) {
			if (strlen(v) > ISCSI_NAME_MAX) {
				return ISCSI_LOGIN_NOT_FOUND;
			}
			snprintf(l->target_name, sizeof(l->target_name), "%s", v);
		} else if (strcmp(k, "SessionType") == 0) {
			if (strcmp(v, "Discovery") == 0) {
				l->discovery = true;
			} else if (strcmp(v, "Normal") == 0) {
				l->discovery = false;
			} else {
				iscsi_text_add(out, k, "Reject");
				return ISCSI_LOGIN_SESSION_TYPE_UNSUPPORTED;
			}
		} else if (strcmp(k, "AuthMethod") == 0) {
			auth = v;
		} else if (strcmp(k, "InitiatorAlias") == 0) {
			/* declarative, nothing to answer */
		} else if (strcmp(k, "TargetAlias") == 0 || strcmp(k, "TargetAddress") == 0 ||
			   strcmp(k, "TargetPortalGroupTag") == 0) {
			/* 13.x: only the target sends these */
			iscsi_text_add(out, k, "Irrelevant");
		} else if (strncmp(k, "CHAP_", 5) == 0) {
			/* auth_step() handles them (or refuses them out of place). */
		} else {
			switch (iscsi_negotiate_key(&c->params, l->discovery, k, v, out)) {
			case ISCSI_NEG_UNKNOWN:
				iscsi_text_add(out, k, "NotUnderstood");
				break;
			case ISCSI_NEG_BAD_DECLARATION:
				/*
				 * An initiator whose own receive limit is unusable
				 * cannot be sent anything safely: fail the login
				 * (RFC 7143 6.2, 13.12) rather than guess a limit.
				 */
				return ISCSI_LOGIN_INITIATOR_ERROR;
			case ISCSI_NEG_OK:
				break;
			}
		}
	}

	if (!l->have_initiator) {
		return ISCSI_LOGIN_MISSING_PARAMETER; /* 13.6: InitiatorName is required */
	}
	if (!l->discovery && !l->tgt) {
		if (!l->target_name[0]) {
			return ISCSI_LOGIN_MISSING_PARAMETER;
		}
		l->tgt = iscsi_server_tgt(c->srv, l->target_name);
		if (!l->tgt) {
			return ISCSI_LOGIN_NOT_FOUND;
		}
		/* 11.13.5 0x0202: not allowed access to this target (its ACL). */
		if (!iscsi_conn_acl_allows(c, l->target_name, l->initiator_name)) {
			LOG_WARN("iscsi", "%s: %s is not in the ACL of %s", c->peer,
				 l->initiator_name, l->target_name);
			l->tgt = NULL;
			return ISCSI_LOGIN_NOT_AUTHORIZED;
		}
	}
	if (!l->discovery && !l->tpgt_sent) {
		/* 13.9: returned in the first login response of a normal session. */
		iscsi_text_add_u32(out, "TargetPortalGroupTag", c->tpgt);
		if (l->tgt->alias) {
			iscsi_text_add(out, "TargetAlias", l->tgt->alias);
		}
		l->tpgt_sent = true;
	}
	st = auth_step(c, auth, kv, n, out);
	if (st != ISCSI_LOGIN_OK) {
		return st;
	}
	return ISCSI_LOGIN_OK;
}

static void login_respond(struct iscsi_conn *c, const uint8_t *req, uint8_t flags, uint16_t status,
			  const struct iscsi_text_out *out)
{
	struct iscsi_tx *tx = iscsi_tx_get(c);
	struct iscsi_login *l = &c->login;

	if (!tx) {
		iscsi_conn_close(c, "out of memory");
		return;
	}
	memset(tx->hdr, 0, ISCSI_BHS_LEN);
	tx->hdr[ISCSI_BHS_OPCODE] = ISCSI_OP_LOGIN_RSP;
	tx->hdr[ISCSI_BHS_FLAGS] = flags;
	tx->hdr[ISCSI_LOGIN_VERSION_MAX] = 0;
	tx->hdr[ISCSI_LOGIN_VERSION_MIN] = 0;
	memcpy(tx->hdr + ISCSI_LOGIN_ISID, req + ISCSI_LOGIN_ISID, 6);
	put_be16(tx->hdr + ISCSI_LOGIN_TSIH,
		 (status == ISCSI_LOGIN_OK && c->sess) ? c->sess->tsih : 0);
	memcpy(tx->hdr + ISCSI_BHS_ITT, req + ISCSI_BHS_ITT, 4);
	iscsi_conn_fill_sn(c, tx->hdr, true);
	tx->hdr[ISCSI_LOGIN_STATUS_CLASS] = (uint8_t)(status >> 8);
	tx->hdr[ISCSI_LOGIN_STATUS_DETAIL] = (uint8_t)status;
	if (out && out->len && status == ISCSI_LOGIN_OK) {
		tx->owned = malloc(out->len);
		if (!tx->owned) {
			free(tx);
			iscsi_conn_close(c, "out of memory");
			return;
		}
		memcpy(tx->owned, out->buf, out->len);
		tx->data = tx->owned;
		tx->data_len = (uint32_t)out->len;
	}
	if (status != ISCSI_LOGIN_OK) {
		LOG_INFO("iscsi", "%s: login of %s to %s failed: status 0x%04x", c->peer,
			 l->initiator_name[0] ? l->initiator_name : "?",
			 l->target_name[0] ? l->target_name : "(discovery)", status);
		/* 11.13.5: a failed login ends the connection. */
		c->close_after_tx = true;
		c->stop_rx = true;
	}
	iscsi_tx_queue(c, tx);
}

static void login_fail(struct iscsi_conn *c, const uint8_t *req, uint16_t status)
{
	login_respond(c, req, 0, status, NULL);
}

/* Find a session by TSIH for a connection that wants to join it. */
static struct iscsi_conn *find_tsih(struct iscsi_server *srv, uint16_t tsih)
{
	for (struct iscsi_conn *o = srv->conns; o; o = o->next) {
		if (o->sess && o->state == ISCSI_CONN_FFP && o->sess->tsih == tsih) {
			return o;
		}
	}
	return NULL;
}

/* Enter full feature phase: bind or create the session (6.3.5, 6.3.6). */
static uint16_t login_finish(struct iscsi_conn *c)
{
	struct iscsi_login *l = &c->login;
	int rc;

	if (l->tsih != 0) {
		/* MaxConnections=1: a connection can't be added to a session. */
		return find_tsih(c->srv, l->tsih) ? ISCSI_LOGIN_TOO_MANY_CONNECTIONS
						  : ISCSI_LOGIN_NO_SESSION;
	}
	if (c->srv->shutting_down) {
		return ISCSI_LOGIN_SERVICE_UNAVAILABLE;
	}
	if (!l->discovery) {
		/* 6.3.5 session reinstatement: same initiator port (name + ISID)
		 * and target, TSIH 0: the old session is closed, its tasks aborted. */
		struct iscsi_conn *o, *onext;
		for (o = c->srv->conns; o; o = onext) {
			onext = o->next;
			if (o == c || !o->sess || o->sess->discovery || o->state != ISCSI_CONN_FFP ||
			    o->sess->tgt != l->tgt || memcmp(o->sess->nexus.isid, l->isid, 6) != 0 ||
			    strcmp(o->sess->nexus.initiator_name, l->initiator_name) != 0) {
				continue;
			}
			LOG_INFO("iscsi", "%s: reinstating session of %s", c->peer,
				 l->initiator_name);
			iscsi_conn_close(o, "session reinstated");
		}
	}
	rc = iscsi_session_create(c);
	if (rc < 0) {
		return ISCSI_LOGIN_OUT_OF_RESOURCES;
	}
	iscsi_params_finish(&c->params);
	return ISCSI_LOGIN_OK;
}

int iscsi_login_rx(struct iscsi_conn *c, const uint8_t *bhs, uint8_t *data, uint32_t len)
{
	struct iscsi_login *l = &c->login;
	uint8_t flags = bhs[ISCSI_BHS_FLAGS];
	bool transit = flags & ISCSI_LOGIN_FLAG_TRANSIT;
	int csg = ISCSI_LOGIN_CSG(flags), nsg = ISCSI_LOGIN_NSG(flags);
	struct iscsi_kv kv[LOGIN_KV_MAX];
	char outbuf[LOGIN_RSP_MAX];
	struct iscsi_text_out out = { .buf = outbuf, .cap = sizeof(outbuf) };
	uint16_t st;
	int n;
	uint8_t rflags;

	if (!l->started) {
		l->started = true;
		memcpy(l->isid, bhs + ISCSI_LOGIN_ISID, 6);
		l->tsih = get_be16(bhs + ISCSI_LOGIN_TSIH);
		l->itt = get_be32(bhs + ISCSI_BHS_ITT);
		l->cid = get_be16(bhs + ISCSI_LOGIN_CID);
		l->cmdsn = get_be32(bhs + ISCSI_BHS_CMDSN);
		/* 11.13.4: our first StatSN follows the initiator's ExpStatSN. */
		c->stat_sn = get_be32(bhs + ISCSI_BHS_EXPSTATSN);
		l->stage = csg;
		/* 11.12.4: version 0x00 is the only one defined. */
		if (bhs[ISCSI_LOGIN_VERSION_MIN] > 0) {
			login_fail(c, bhs, ISCSI_LOGIN_UNSUPPORTED_VERSION);
			return 0;
		}
	} else if (memcmp(l->isid, bhs + ISCSI_LOGIN_ISID, 6) != 0 ||
		   l->tsih != get_be16(bhs + ISCSI_LOGIN_TSIH)) {
		/* 11.12.5: ISID and TSIH stay fixed during a login. */
		login_fail(c, bhs, ISCSI_LOGIN_INITIATOR_ERROR);
		return 0;
	}
	l->itt = get_be32(bhs + ISCSI_BHS_ITT);

	/* 11.12.3: CSG 2 is reserved, FFP is not a stage to negotiate in;
	 * T with C, or a transit backwards or to a reserved stage, is invalid. */
	if (csg == 2 || csg == ISCSI_STAGE_FFP || csg != l->stage ||
	    (transit && (flags & ISCSI_LOGIN_FLAG_CONTINUE)) ||
	    (transit && (nsg <= csg || nsg == 2))) {
		login_fail(c, bhs, ISCSI_LOGIN_INITIATOR_ERROR);
		return 0;
	}

	if (len > 0) {
		size_t need;
		char *nt;
		if (__builtin_add_overflow(l->text_len, (size_t)len, &need) ||
		    need > ISCSI_LOGIN_TEXT_MAX) {
			login_fail(c, bhs, ISCSI_LOGIN_INITIATOR_ERROR);
			return 0;
		}
		nt = realloc(l->text, need);
		if (!nt) {
			login_fail(c, bhs, ISCSI_LOGIN_OUT_OF_RESOURCES);
			return 0;
		}
		memcpy(nt + l->text_len, data, len);
		l->text = nt;
		l->text_len = need;
	}
	if (flags & ISCSI_LOGIN_FLAG_CONTINUE) {
		/* 11.12.2: more keys follow; answer with an empty response. */
		login_respond(c, bhs, (uint8_t)(csg << 2 | csg), ISCSI_LOGIN_OK, NULL);
		return 0;
	}

	n = iscsi_text_parse(l->text ? l->text : outbuf, l->text_len, kv, LOGIN_KV_MAX);
	if (n < 0) {
		login_fail(c, bhs, ISCSI_LOGIN_INITIATOR_ERROR);
		return 0;
	}
	st = login_keys(c, kv, n, &out);
	free_text(l);
	if (st != ISCSI_LOGIN_OK) {
		login_fail(c, bhs, st);
		return 0;
	}
	if (csg == ISCSI_STAGE_OPERATIONAL && !l->declared) {
		/* 13.12: declare what we accept, once. */
		c->params.target_mrdsl = ISCSI_OUR_MRDSL;
		iscsi_text_add_u32(&out, "MaxRecvDataSegmentLength", ISCSI_OUR_MRDSL);
		l->declared = true;
	}
	if (out.overflow) {
		login_fail(c, bhs, ISCSI_LOGIN_INITIATOR_ERROR);
		return 0;
	}

	if (transit && !l->authenticated && l->chap) {
		/* 6.2 / 11.13.3: the initiator may ask to transit while the CHAP
		 * exchange still runs; the target answers T=0 and stays in the stage. */
		transit = false;
	}
	rflags = (uint8_t)(csg << 2);
	if (transit) {
		if (!l->authenticated) {
			/* 8.2: no stage ends before authentication (also when the
			 * initiator skipped the security stage of a CHAP target). */
			login_fail(c, bhs, ISCSI_LOGIN_AUTH_FAILED);
			return 0;
		}
		rflags |= (uint8_t)(ISCSI_LOGIN_FLAG_TRANSIT | nsg);
		if (nsg == ISCSI_STAGE_FFP) {
			st = login_finish(c);
			if (st != ISCSI_LOGIN_OK) {
				login_fail(c, bhs, st);
				return 0;
			}
		}
		l->stage = nsg;
	}
	login_respond(c, bhs, rflags, ISCSI_LOGIN_OK, &out);
	if (transit && nsg == ISCSI_STAGE_FFP) {
		c->state = ISCSI_CONN_FFP;
		/* Digests start with the first PDU after the final login response (13.1). */
		c->rx.header_digest = c->params.header_digest;
		c->rx.data_digest = c->params.data_digest;
		c->rx.max_data_len = ISCSI_MRDSL_MAX;
		LOG_INFO("iscsi", "%s: %s logged in to %s (TSIH %u)%s%s", c->peer,
			 l->initiator_name, l->discovery ? "discovery" : l->target_name,
			 c->sess->tsih, c->params.header_digest ? " HeaderDigest" : "",
			 c->params.data_digest ? " DataDigest" : "");
		iscsi_conn_ffp_started(c);
	}
	return 0;
}
