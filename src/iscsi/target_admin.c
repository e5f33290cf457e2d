/*
 * target_admin.c - per-target security settings (CHAP accounts, ACL) and
 * read-only views of the server (portals, negotiated session parameters)
 * for the management API.
 *
 * The security settings live in a small table keyed by (server, target
 * name) rather than in struct iscsi_tgt so the login code only reaches them
 * through iscsi_target_chap() / iscsi_server_get_acl(). Everything runs on
 * the server's reactor thread (iscsi.h), so the table needs no lock.
 * Entries disappear when both settings are cleared; the management layer
 * clears them before it removes a target.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sys/socket.h>

#include "acl.h"
#include "chap.h"
#include "iscsi_internal.h"

struct tgt_sec {
	struct tgt_sec *next;
	struct iscsi_server *srv;
	char name[ISCSI_NAME_MAX + 1];
	struct iscsi_chap_config *chap; /* NULL = AuthMethod=None */
	struct iscsi_acl *acl;		/* NULL = open */
};

static struct tgt_sec *g_tgt_sec;

static struct tgt_sec **sec_slot(struct iscsi_server *srv, const char *target)
{
	struct tgt_sec **pp;

	for (pp = &g_tgt_sec; *pp; pp = &(*pp)->next) {
		if ((*pp)->srv == srv && strcasecmp((*pp)->name, target) == 0) {
			break;
		}
	}
	return pp;
}

static struct tgt_sec *sec_find(struct iscsi_server *srv, const char *target)
{
	return *sec_slot(srv, target);
}

static int sec_get(struct iscsi_server *srv, const char *target, struct tgt_sec **out)
{
	struct tgt_sec *s;

	if (!iscsi_server_find_target(srv, target)) {
		return -ENOENT;
	}
	s = sec_find(srv, target);
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s) {
			return -ENOMEM;
		}
		s->srv = srv;
		snprintf(s->name, sizeof(s->name), "%s", target);
		s->next = g_tgt_sec;
		g_tgt_sec = s;
	}
	*out = s;
	return 0;
}

static void free_chap(struct iscsi_chap_config *c)
{
	if (c) {
		explicit_bzero(c, sizeof(*c));
		free(c);
	}
}

/* Drop the entry once it holds nothing. */
static void sec_trim(struct iscsi_server *srv, const char *target)
{
	struct tgt_sec **pp = sec_slot(srv, target), *s = *pp;

	if (s && !s->chap && !s->acl) {
		*pp = s->next;
		free(s);
	}
}

int iscsi_server_set_chap(struct iscsi_server *srv, const char *target,
			  const struct iscsi_chap_config *cfg)
{
	struct iscsi_chap_config *copy = NULL;
	struct tgt_sec *s;
	int rc;

	if (!cfg) {
		s = sec_find(srv, target);
		if (s) {
			free_chap(s->chap);
			s->chap = NULL;
			sec_trim(srv, target);
		}
		return iscsi_server_find_target(srv, target) ? 0 : -ENOENT;
	}
	rc = sec_get(srv, target, &s);
	if (rc) {
		return rc;
	}
	copy = malloc(sizeof(*copy));
	if (!copy) {
		sec_trim(srv, target);
		return -ENOMEM;
	}
	*copy = *cfg;
	free_chap(s->chap);
	s->chap = copy;
	return 0;
}

bool iscsi_server_has_chap(struct iscsi_server *srv, const char *target, bool *mutual)
{
	const struct iscsi_chap_config *c = iscsi_target_chap(srv, target);

	if (mutual) {
		*mutual = c && c->mutual_user[0];
	}
	return c != NULL;
}

const struct iscsi_chap_config *iscsi_target_chap(struct iscsi_server *srv, const char *target)
{
	struct tgt_sec *s = sec_find(srv, target);

	return s ? s->chap : NULL;
}

int iscsi_server_set_acl(struct iscsi_server *srv, const char *target,
			 const struct iscsi_acl *acl)
{
	struct iscsi_acl *copy = NULL;
	struct tgt_sec *s;
	int rc;

	if (iscsi_acl_is_open(acl)) {
		s = sec_find(srv, target);
		if (s) {
			iscsi_acl_destroy(s->acl);
			s->acl = NULL;
			sec_trim(srv, target);
		}
		return iscsi_server_find_target(srv, target) ? 0 : -ENOENT;
	}
	rc = sec_get(srv, target, &s);
	if (rc) {
		return rc;
	}
	rc = iscsi_acl_copy(acl, &copy);
	if (rc) {
		sec_trim(srv, target);
		return rc;
	}
	iscsi_acl_destroy(s->acl);
	s->acl = copy;
	return 0;
}

const struct iscsi_acl *iscsi_server_get_acl(struct iscsi_server *srv, const char *target)
{
	struct tgt_sec *s = sec_find(srv, target);

	return s ? s->acl : NULL;
}

size_t iscsi_server_list_portals(struct iscsi_server *srv, struct iscsi_portal_info *out,
				 size_t max)
{
	size_t n = 0;

	for (struct iscsi_portal *p = srv->portals; p; p = p->next, n++) {
		if (n < max) {
			out[n].tpgt = p->tpgt;
			snprintf(out[n].addr, sizeof(out[n].addr), "%s", p->name);
		}
	}
	return n;
}

int iscsi_server_session_params(struct iscsi_server *srv, uint64_t id,
				struct iscsi_session_params *out)
{
	for (struct iscsi_conn *c = srv->conns; c; c = c->next) {
		const struct iscsi_params *p = &c->params;
		if (!c->sess || c->sess->id != id) {
			continue;
		}
		memset(out, 0, sizeof(*out));
		out->header_digest = p->header_digest;
		out->data_digest = p->data_digest;
		out->initiator_mrdsl = p->initiator_mrdsl;
		out->target_mrdsl = p->target_mrdsl;
		out->max_burst = p->max_burst;
		out->first_burst = p->first_burst;
		out->immediate_data = p->immediate_data;
		out->initial_r2t = p->initial_r2t;
		out->max_outstanding_r2t = p->max_outstanding_r2t;
		out->erl = p->erl;
		out->tpgt = c->tpgt;
		snprintf(out->local, sizeof(out->local), "%s", c->local);
		return 0;
	}
	return -ENOENT;
}

bool iscsi_conn_acl_allows(struct iscsi_conn *c, const char *target, const char *initiator)
{
	const struct iscsi_acl *acl = iscsi_server_get_acl(c->srv, target);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (iscsi_acl_is_open(acl)) {
		return true;
	}
	if (getpeername(c->fd, (struct sockaddr *)&ss, &len) < 0) {
		/* Unknown address: only an ACL without networks can still match. */
		return iscsi_acl_allows(acl, initiator, NULL);
	}
	return iscsi_acl_allows(acl, initiator, (const struct sockaddr *)&ss);
}
