/*
 * target_admin.c - per-target security settings (CHAP accounts, ACL) and
 * read-only views of the server (portals, negotiated session parameters)
 * for the management API.
 *
 * The security settings live in the target entry (struct iscsi_tgt) and go
 * with it: removing a target frees its ACL and wipes its CHAP secrets, so a
 * target re-created under the same name starts open. The login code reaches
 * them through iscsi_target_chap() / iscsi_server_get_acl(). Everything runs
 * on the server's reactor thread (iscsi.h), so nothing needs a lock.
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

static void free_chap(struct iscsi_chap_config *c)
{
	if (c) {
		explicit_bzero(c, sizeof(*c));
		free(c);
	}
}

void iscsi_tgt_free(struct iscsi_tgt *t)
{
	if (!t) {
		return;
	}
	free_chap(t->chap);
	iscsi_acl_destroy(t->acl);
	free(t->alias);
	free(t);
}

int iscsi_server_set_chap(struct iscsi_server *srv, const char *target,
			  const struct iscsi_chap_config *cfg)
{
	struct iscsi_tgt *t = iscsi_server_tgt(srv, target);
	struct iscsi_chap_config *copy = NULL;

	if (!t) {
		return -ENOENT;
	}
	if (cfg) {
		copy = malloc(sizeof(*copy));
		if (!copy) {
			return -ENOMEM;
		}
		*copy = *cfg;
	}
	free_chap(t->chap);
	t->chap = copy;
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
	struct iscsi_tgt *t = iscsi_server_tgt(srv, target);

	return t ? t->chap : NULL;
}

int iscsi_server_set_acl(struct iscsi_server *srv, const char *target,
			 const struct iscsi_acl *acl)
{
	struct iscsi_tgt *t = iscsi_server_tgt(srv, target);
	struct iscsi_acl *copy = NULL;
	int rc;

	if (!t) {
		return -ENOENT;
	}
	if (!iscsi_acl_is_open(acl)) {
		rc = iscsi_acl_copy(acl, &copy);
		if (rc) {
			return rc;
		}
	}
	iscsi_acl_destroy(t->acl);
	t->acl = copy;
	return 0;
}

const struct iscsi_acl *iscsi_server_get_acl(struct iscsi_server *srv, const char *target)
{
	struct iscsi_tgt *t = iscsi_server_tgt(srv, target);

	return t ? t->acl : NULL;
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
