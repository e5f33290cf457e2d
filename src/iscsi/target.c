/*
 * target.c - the server object: listening portals (IPv4 and IPv6), the
 * exported targets, session listings and graceful shutdown.
 *
 *   running --shutdown()--> listeners closed, every connection draining
 *   draining --last connection freed--> done callback (posted)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iscsi_internal.h"
#include "s3tgt/log.h"

int iscsi_server_create(struct reactor *r, struct iscsi_server **out)
{
	struct iscsi_server *srv = calloc(1, sizeof(*srv));

	if (!srv) {
		return -ENOMEM;
	}
	srv->r = r;
	srv->next_tsih = 1;
	srv->nop_interval_s = ISCSI_NOP_INTERVAL_DEFAULT_S;
	srv->nop_timeout_s = ISCSI_NOP_TIMEOUT_DEFAULT_S;
	*out = srv;
	return 0;
}

int iscsi_server_set_nop(struct iscsi_server *srv, uint32_t interval_s, uint32_t timeout_s)
{
	if (interval_s > ISCSI_NOP_MAX_S || timeout_s > ISCSI_NOP_MAX_S) {
		return -EINVAL;
	}
	srv->nop_interval_s = interval_s;
	srv->nop_timeout_s = timeout_s;
	return 0;
}

void iscsi_server_get_nop(const struct iscsi_server *srv, uint32_t *interval_s,
			  uint32_t *timeout_s)
{
	*interval_s = srv->nop_interval_s;
	*timeout_s = srv->nop_timeout_s;
}

static void portals_close(struct iscsi_server *srv)
{
	struct iscsi_portal *p;

	while ((p = srv->portals) != NULL) {
		srv->portals = p->next;
		reactor_del_fd(srv->r, p->fd);
		close(p->fd);
		free(p);
	}
}

void iscsi_server_destroy(struct iscsi_server *srv)
{
	struct iscsi_tgt *t;

	if (!srv) {
		return;
	}
	portals_close(srv);
	while (srv->conns) {
		struct iscsi_conn *c = srv->conns;
		if (c->state == ISCSI_CONN_CLOSED) {
			/* Waiting for store callbacks: it frees itself, detached. */
			srv->conns = c->next;
			if (srv->conns) {
				srv->conns->prev = NULL;
			}
			c->next = c->prev = NULL;
			c->srv = NULL;
			continue;
		}
		iscsi_conn_close(c, "server destroyed");
	}
	while ((t = srv->targets) != NULL) {
		srv->targets = t->next;
		iscsi_tgt_free(t);
	}
	free(srv);
}

static void accept_event(void *arg, uint32_t events)
{
	struct iscsi_portal *p = arg;
	int one = 1;

	for (int i = 0; i < 64; i++) {
		int fd = accept4(p->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
				LOG_RATELIMIT(LOG_LEVEL_WARN, "iscsi", "portal %s: accept: %s",
					      p->name, strerror(errno));
			}
			return;
		}
		/* Responses are small PDUs batched by writev; Nagle would only delay them. */
		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
		    iscsi_conn_create(p->srv, fd, p->tpgt) < 0) {
			close(fd);
		}
	}
}

static int split_hostport(const char *hp, char *host, size_t hl, char *port, size_t pl)
{
	const char *colon;
	size_t n;

	if (hp[0] == '[') {
		const char *end = strchr(hp, ']');
		if (!end || end[1] != ':') {
			return -EINVAL;
		}
		n = (size_t)(end - hp - 1);
		colon = end + 1;
		if (n >= hl) {
			return -EINVAL;
		}
		memcpy(host, hp + 1, n);
		host[n] = '\0';
	} else {
		colon = strrchr(hp, ':');
		if (!colon) {
			return -EINVAL;
		}
		n = (size_t)(colon - hp);
		if (n >= hl || memchr(hp, ':', n)) {
			return -EINVAL;
		}
		memcpy(host, hp, n);
		host[n] = '\0';
	}
	if (!colon[1] || strlen(colon + 1) >= pl) {
		return -EINVAL;
	}
	snprintf(port, pl, "%s", colon + 1);
	return 0;
}

int iscsi_server_add_portal(struct iscsi_server *srv, const char *hostport, uint16_t tpgt,
			    char *err, size_t errlen)
{
	char host[64], port[16];
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai = NULL;
	struct iscsi_portal *p = NULL;
	int fd = -1, one = 1, rc;
	uint64_t pnum;

	if (split_hostport(hostport, host, sizeof(host), port, sizeof(port)) < 0 ||
	    parse_u64(port, 1, 65535, &pnum) < 0) {
		snprintf(err, errlen, "%s: expected host:port or [ipv6]:port", hostport);
		return -EINVAL;
	}
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", hostport, gai_strerror(rc));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		goto err;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
		rc = -errno;
		goto err;
	}
	if (ai->ai_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) {
		rc = -errno;
		goto err;
	}
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		rc = -errno;
		goto err;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		rc = -ENOMEM;
		goto err;
	}
	p->srv = srv;
	p->fd = fd;
	p->tpgt = tpgt;
	snprintf(p->name, sizeof(p->name), "%s", hostport);
	rc = reactor_add_fd(srv->r, fd, EPOLLIN, accept_event, p);
	if (rc < 0) {
		goto err;
	}
	p->next = srv->portals;
	srv->portals = p;
	freeaddrinfo(ai);
	return 0;
err:
	snprintf(err, errlen, "%s: %s", hostport, strerror(-rc));
	free(p);
	if (fd >= 0) {
		close(fd);
	}
	freeaddrinfo(ai);
	return rc;
}

struct iscsi_tgt *iscsi_server_tgt(struct iscsi_server *srv, const char *name)
{
	for (struct iscsi_tgt *t = srv->targets; t; t = t->next) {
		/* RFC 7143 4.2.7.1: names compare after stringprep, i.e. case-insensitively here. */
		if (strcasecmp(scsi_target_name(t->t), name) == 0) {
			return t;
		}
	}
	return NULL;
}

int iscsi_server_add_target(struct iscsi_server *srv, struct scsi_target *t, const char *alias,
			    const struct iscsi_auth_config *auth)
{
	struct iscsi_tgt *it;

	if (iscsi_server_tgt(srv, scsi_target_name(t))) {
		return -EEXIST;
	}
	it = calloc(1, sizeof(*it));
	if (!it) {
		return -ENOMEM;
	}
	if (alias) {
		it->alias = strdup(alias);
		if (!it->alias) {
			free(it);
			return -ENOMEM;
		}
	}
	it->t = t;
	if (auth) {
		it->auth = *auth;
	}
	/* Append: SendTargets lists targets in the order they were added. */
	struct iscsi_tgt **pp = &srv->targets;
	while (*pp) {
		pp = &(*pp)->next;
	}
	*pp = it;
	return 0;
}

int iscsi_server_remove_target(struct iscsi_server *srv, const char *name)
{
	struct iscsi_tgt **pp = &srv->targets, *t;

	while (*pp && strcasecmp(scsi_target_name((*pp)->t), name) != 0) {
		pp = &(*pp)->next;
	}
	t = *pp;
	if (!t) {
		return -ENOENT;
	}
	for (struct iscsi_conn *c = srv->conns; c; c = c->next) {
		if ((c->sess && c->sess->tgt == t) || c->login.tgt == t) {
			return -EBUSY;
		}
	}
	*pp = t->next;
	iscsi_tgt_free(t);
	return 0;
}

struct scsi_target *iscsi_server_find_target(struct iscsi_server *srv, const char *name)
{
	struct iscsi_tgt *t = iscsi_server_tgt(srv, name);

	return t ? t->t : NULL;
}

unsigned iscsi_server_target_sessions(struct iscsi_server *srv, const char *name)
{
	struct iscsi_tgt *t = iscsi_server_tgt(srv, name);
	unsigned n = 0;

	for (struct iscsi_conn *c = srv->conns; t && c; c = c->next) {
		if (c->sess && c->sess->tgt == t && c->state == ISCSI_CONN_FFP) {
			n++;
		}
	}
	return n;
}

size_t iscsi_server_list_sessions(struct iscsi_server *srv, struct iscsi_session_info *out,
				  size_t max)
{
	size_t n = 0;

	for (struct iscsi_conn *c = srv->conns; c; c = c->next) {
		struct iscsi_session *s = c->sess;
		if (!s || c->state != ISCSI_CONN_FFP) {
			continue;
		}
		if (n < max) {
			struct iscsi_session_info *i = &out[n];
			memset(i, 0, sizeof(*i));
			i->id = s->id;
			snprintf(i->target, sizeof(i->target), "%s",
				 s->tgt ? scsi_target_name(s->tgt->t) : "");
			snprintf(i->initiator, sizeof(i->initiator), "%s", s->nexus.initiator_name);
			memcpy(i->isid, s->nexus.isid, 6);
			i->tsih = s->tsih;
			snprintf(i->peer, sizeof(i->peer), "%s", c->peer);
			i->discovery = s->discovery;
			i->tasks = s->ntasks;
		}
		n++;
	}
	return n;
}

int iscsi_server_close_session(struct iscsi_server *srv, uint64_t id)
{
	for (struct iscsi_conn *c = srv->conns; c; c = c->next) {
		if (c->sess && c->sess->id == id && c->state != ISCSI_CONN_CLOSED) {
			iscsi_conn_close(c, "closed by management");
			return 0;
		}
	}
	return -ENOENT;
}

static void shutdown_done_msg(void *arg)
{
	struct iscsi_server *srv = arg;
	iscsi_shutdown_fn fn = srv->shutdown_fn;

	srv->shutdown_fn = NULL;
	if (fn) {
		fn(srv->shutdown_arg);
	}
}

static void maybe_shutdown_done(struct iscsi_server *srv)
{
	if (srv->shutting_down && !srv->conns && srv->shutdown_fn && !srv->shutdown_posted) {
		srv->shutdown_posted = true;
		if (reactor_post(srv->r, shutdown_done_msg, srv) < 0) {
			shutdown_done_msg(srv);
		}
	}
}

void iscsi_server_conn_gone(struct iscsi_server *srv, struct iscsi_conn *c)
{
	if (c->prev) {
		c->prev->next = c->next;
	} else if (srv->conns == c) {
		srv->conns = c->next;
	}
	if (c->next) {
		c->next->prev = c->prev;
	}
	maybe_shutdown_done(srv);
}

void iscsi_server_shutdown(struct iscsi_server *srv, iscsi_shutdown_fn done, void *arg)
{
	struct iscsi_conn *c, *next;

	srv->shutting_down = true;
	srv->shutdown_fn = done;
	srv->shutdown_arg = arg;
	portals_close(srv);
	for (c = srv->conns; c; c = next) {
		next = c->next;
		if (c->state == ISCSI_CONN_FFP) {
			iscsi_conn_drain(c);
		} else {
			iscsi_conn_close(c, "server shutdown");
		}
	}
	maybe_shutdown_done(srv);
}
