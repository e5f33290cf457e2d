/*
 * http.c - the management API over HTTP/1.1 (libmicrohttpd) on a Unix socket
 * (mode 0600) and, when configured, a TCP listener that requires a bearer
 * token.
 *
 * Per request:  MHD thread: collect body (413 past MGMT_BODY_MAX), check the
 * token, suspend the connection, post the request to the reactor
 * --> reactor: mgmt_api_handle() (maybe later, for forced deletes), mark the
 * request answered, resume the connection --> MHD thread: queue the reply.
 * So the daemon state is only ever touched by the reactor thread.
 *
 * Shutdown (reactor): stop accepting (quiesce), answer 503 to new requests,
 * wait until posted requests are answered and connections drained (bounded),
 * stop MHD, unlink the socket, then call done().
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "mgmt_internal.h"
#include "s3tgt/core.h"
#include "s3tgt/log.h"

#define STOP_POLL_MS 20
#define STOP_TIMEOUT_MS 12000 /* longer than a forced delete may wait */
#define LISTEN_BACKLOG 16

struct mgmt_server {
	struct mgmt_state *s;
	struct reactor *r;
	struct MHD_Daemon *unix_d, *tcp_d;
	int unix_fd, tcp_fd;
	char *socket_path;
	uint8_t token_hash[32]; /* SHA-256 of the bearer token */
	bool has_token;
	atomic_bool stopping;
	atomic_uint pending; /* posted to the reactor, not answered yet */
	struct reactor_timer *stop_timer;
	uint64_t stop_deadline;
	void (*done)(void *arg);
	void *done_arg;
};

enum ctx_state { CTX_RX, CTX_POSTED, CTX_ANSWERED };

struct conn_ctx {
	struct mgmt_server *m;
	struct MHD_Connection *conn;
	enum ctx_state state;
	char *body;
	size_t len;
	bool too_big;
	char method[16];
	char *path;
	char *cidr;
	struct mgmt_req req;
};

const char *mgmt_default_socket(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");

	if (geteuid() != 0 && xdg && xdg[0] == '/' &&
	    snprintf(buf, len, "%s/s3tgt/s3tgtd.sock", xdg) < (int)len) {
		return buf;
	}
	snprintf(buf, len, "%s", MGMT_DEFAULT_SOCKET);
	return buf;
}

static void ctx_free(struct conn_ctx *c)
{
	if (!c) {
		return;
	}
	if (c->body) {
		explicit_bzero(c->body, c->len); /* may hold CHAP secrets */
	}
	free(c->body);
	free(c->path);
	free(c->cidr);
	mgmt_req_fini(&c->req);
	free(c);
}

static void request_answered(struct mgmt_req *req)
{
	struct conn_ctx *c = req->done_arg;

	c->state = CTX_ANSWERED;
	atomic_fetch_sub(&c->m->pending, 1);
	MHD_resume_connection(c->conn);
}

static void handle_msg(void *arg)
{
	struct conn_ctx *c = arg;

	c->req.method = c->method;
	c->req.path = c->path;
	c->req.cidr = c->cidr;
	c->req.body = c->body;
	c->req.body_len = c->len;
	c->req.done = request_answered;
	c->req.done_arg = c;
	if (mgmt_api_handle(c->m->s, &c->req)) {
		request_answered(&c->req);
	}
}

static enum MHD_Result send_reply(struct MHD_Connection *conn, unsigned status,
				  const char *ctype, const char *body, const char *allow)
{
	struct MHD_Response *rsp;
	enum MHD_Result ret;
	size_t len = body ? strlen(body) : 0;

	rsp = MHD_create_response_from_buffer(len, (void *)(body ? body : ""),
					      MHD_RESPMEM_MUST_COPY);
	if (!rsp) {
		return MHD_NO;
	}
	if (len) {
		MHD_add_response_header(rsp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	}
	if (allow) {
		MHD_add_response_header(rsp, MHD_HTTP_HEADER_ALLOW, allow);
	}
	ret = MHD_queue_response(conn, status, rsp);
	MHD_destroy_response(rsp);
	return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned status, const char *msg)
{
	char body[256];

	snprintf(body, sizeof(body), "{\"error\":\"%s\"}", msg);
	return send_reply(conn, status, "application/json", body, NULL);
}

static bool token_ok(struct mgmt_server *m, struct MHD_Connection *conn)
{
	const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	uint8_t hash[32];
	unsigned int hl = 0;

	if (!m->has_token || !h || strncasecmp(h, "Bearer ", 7) != 0) {
		return false;
	}
	/* Compare digests in constant time: neither content nor length leaks. */
	if (EVP_Digest(h + 7, strlen(h + 7), hash, &hl, EVP_sha256(), NULL) != 1 || hl != 32) {
		return false;
	}
	return CRYPTO_memcmp(hash, m->token_hash, 32) == 0;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
				 const char *method, const char *version,
				 const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct mgmt_server *m = cls;
	struct conn_ctx *c = *con_cls;
	const char *force, *cidr;
	bool is_tcp = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON)->daemon == m->tcp_d;

	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c) {
			return MHD_NO;
		}
		c->m = m;
		c->conn = conn;
		*con_cls = c;
		return MHD_YES;
	}
	if (c->state == CTX_ANSWERED) {
		return send_reply(conn, c->req.status ? c->req.status : 500,
				  c->req.content_type ? c->req.content_type : "application/json",
				  c->req.reply, c->req.allow);
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (c->too_big || c->len + n > MGMT_BODY_MAX) {
			c->too_big = true;
			return MHD_YES;
		}
		char *nb = realloc(c->body, c->len + n + 1);
		if (!nb) {
			return MHD_NO;
		}
		memcpy(nb + c->len, upload_data, n);
		c->body = nb;
		c->len += n;
		c->body[c->len] = '\0';
		return MHD_YES;
	}
	if (is_tcp && !token_ok(m, conn)) {
		LOG_WARN("mgmt", "API request over TCP without a valid bearer token refused");
		return send_error(conn, MHD_HTTP_UNAUTHORIZED, "a valid bearer token is required");
	}
	if (c->too_big) {
		return send_error(conn, MHD_HTTP_CONTENT_TOO_LARGE,
				  "body: larger than the 65536-byte limit");
	}
	if (atomic_load(&m->stopping)) {
		return send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "the daemon is shutting down");
	}
	snprintf(c->method, sizeof(c->method), "%s", method);
	c->path = strdup(url);
	force = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "force");
	cidr = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "cidr");
	c->req.force = force && (strcmp(force, "true") == 0 || strcmp(force, "1") == 0);
	c->cidr = cidr ? strdup(cidr) : NULL;
	if (!c->path || (cidr && !c->cidr)) {
		return MHD_NO;
	}
	c->state = CTX_POSTED;
	atomic_fetch_add(&m->pending, 1);
	MHD_suspend_connection(conn);
	if (reactor_post(m->r, handle_msg, c) < 0) {
		c->req.status = 500;
		c->state = CTX_ANSWERED;
		atomic_fetch_sub(&m->pending, 1);
		MHD_resume_connection(conn);
	}
	return MHD_YES;
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	ctx_free(*con_cls);
	*con_cls = NULL;
}

static int unix_listen(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat sb;
	mode_t old;
	int fd, rc;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "api socket: path too long: %s", path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "api socket: %s", strerror(-rc));
		return rc;
	}
	/* A stale socket from a crashed daemon is replaced; a live one (another
	 * daemon answers) or another kind of file never is. */
	if (lstat(path, &sb) == 0) {
		if (!S_ISSOCK(sb.st_mode)) {
			snprintf(err, errlen, "api socket: %s exists and is not a socket", path);
			close(fd);
			return -EEXIST;
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			snprintf(err, errlen, "api socket: another daemon listens on %s", path);
			close(fd);
			return -EADDRINUSE;
		}
		unlink(path);
	}
	/* Created 0600 from the start: no window in which others could connect. */
	old = umask(0177);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0 || chmod(path, 0600) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
		rc = -errno;
		snprintf(err, errlen, "api socket %s: %s", path, strerror(-rc));
		close(fd);
		return rc;
	}
	return fd;
}

static int tcp_listen(const char *hostport, char *err, size_t errlen)
{
	char host[256];
	const char *colon = strrchr(hostport, ':'), *h = hostport;
	size_t hl;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST },
			*ai = NULL;
	int fd, one = 1, rc;

	if (!colon || colon == hostport) {
		snprintf(err, errlen, "listen: expected HOST:PORT, got %s", hostport);
		return -EINVAL;
	}
	hl = (size_t)(colon - hostport);
	if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl >= sizeof(host)) {
		snprintf(err, errlen, "listen: host too long");
		return -EINVAL;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	rc = getaddrinfo(host, colon + 1, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "listen %s: %s", hostport, gai_strerror(rc));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
		rc = -errno;
		snprintf(err, errlen, "listen %s: %s", hostport, strerror(-rc));
		if (fd >= 0) {
			close(fd);
		}
		freeaddrinfo(ai);
		return rc;
	}
	freeaddrinfo(ai);
	return fd;
}

static struct MHD_Daemon *start_mhd(struct mgmt_server *m, int fd)
{
	return MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
					MHD_ALLOW_SUSPEND_RESUME | MHD_USE_POLL,
				0, NULL, NULL, access_cb, m, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_NOTIFY_COMPLETED, completed_cb, m,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64, MHD_OPTION_END);
}

static void server_free(struct mgmt_server *m)
{
	/* Quiesced first, MHD leaves the listening sockets to us (closed below). */
	if (m->unix_d) {
		MHD_quiesce_daemon(m->unix_d);
		MHD_stop_daemon(m->unix_d);
	}
	if (m->tcp_d) {
		MHD_quiesce_daemon(m->tcp_d);
		MHD_stop_daemon(m->tcp_d);
	}
	if (m->unix_fd >= 0) {
		close(m->unix_fd);
	}
	if (m->tcp_fd >= 0) {
		close(m->tcp_fd);
	}
	if (m->socket_path) {
		unlink(m->socket_path);
	}
	free(m->socket_path);
	explicit_bzero(m->token_hash, sizeof(m->token_hash));
	free(m);
}

int mgmt_server_start(struct mgmt_state *s, const struct mgmt_server_opts *o,
		      struct mgmt_server **out, char *err, size_t errlen)
{
	struct mgmt_server *m = calloc(1, sizeof(*m));
	unsigned int hl = 0;
	int rc;

	if (!m) {
		return -ENOMEM;
	}
	m->s = s;
	m->r = s->r;
	m->unix_fd = m->tcp_fd = -1;
	if (o->tcp_listen) {
		if (!o->token || strlen(o->token) < 16) {
			snprintf(err, errlen,
				 "api listen: a TCP listener needs a bearer token of at least 16 "
				 "characters");
			rc = -EINVAL;
			goto err;
		}
		if (EVP_Digest(o->token, strlen(o->token), m->token_hash, &hl, EVP_sha256(),
			       NULL) != 1) {
			rc = -EIO;
			goto err;
		}
		m->has_token = true;
	}
	rc = unix_listen(o->socket_path, err, errlen);
	if (rc < 0) {
		goto err;
	}
	m->unix_fd = rc;
	m->socket_path = strdup(o->socket_path);
	if (!m->socket_path) {
		rc = -ENOMEM;
		goto err;
	}
	m->unix_d = start_mhd(m, m->unix_fd);
	if (!m->unix_d) {
		snprintf(err, errlen, "api socket: cannot start the HTTP server");
		rc = -EIO;
		goto err;
	}
	if (o->tcp_listen) {
		rc = tcp_listen(o->tcp_listen, err, errlen);
		if (rc < 0) {
			goto err;
		}
		m->tcp_fd = rc;
		m->tcp_d = start_mhd(m, m->tcp_fd);
		if (!m->tcp_d) {
			snprintf(err, errlen, "api listen: cannot start the HTTP server");
			rc = -EIO;
			goto err;
		}
	}
	LOG_INFO("mgmt", "API on unix:%s%s%s", o->socket_path, o->tcp_listen ? " and http://" : "",
		 o->tcp_listen ? o->tcp_listen : "");
	*out = m;
	return 0;
err:
	server_free(m);
	return rc;
}

static unsigned connections(struct MHD_Daemon *d)
{
	const union MHD_DaemonInfo *i;

	if (!d) {
		return 0;
	}
	i = MHD_get_daemon_info(d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
	return i ? i->num_connections : 0;
}

static void stop_poll(void *arg)
{
	struct mgmt_server *m = arg;
	void (*done)(void *) = m->done;
	void *done_arg = m->done_arg;

	if (reactor_now_ms() < m->stop_deadline &&
	    (atomic_load(&m->pending) > 0 || connections(m->unix_d) + connections(m->tcp_d) > 0)) {
		return;
	}
	if (atomic_load(&m->pending) > 0) {
		LOG_WARN("mgmt", "API shutdown: %u request(s) still running, closing anyway",
			 atomic_load(&m->pending));
	}
	reactor_timer_cancel(m->r, m->stop_timer);
	m->stop_timer = NULL;
	server_free(m);
	if (done) {
		done(done_arg);
	}
}

void mgmt_server_shutdown(struct mgmt_server *m, void (*done)(void *arg), void *arg)
{
	m->done = done;
	m->done_arg = arg;
	atomic_store(&m->stopping, true);
	/* Stop accepting; the listening sockets are ours and closed in server_free(). */
	if (m->unix_d) {
		MHD_quiesce_daemon(m->unix_d);
	}
	if (m->tcp_d) {
		MHD_quiesce_daemon(m->tcp_d);
	}
	m->stop_deadline = reactor_now_ms() + STOP_TIMEOUT_MS;
	m->stop_timer = reactor_timer_add(m->r, STOP_POLL_MS, true, stop_poll, m);
	if (!m->stop_timer) {
		server_free(m);
		if (done) {
			done(arg);
		}
	}
}

void mgmt_server_destroy(struct mgmt_server *m)
{
	if (m) {
		server_free(m);
	}
}
