/*
 * conn.c - one iSCSI connection: non-blocking socket I/O on the reactor.
 *
 * Receive: bytes go through the PDU state machine (pdu.c). Small PDUs are
 * batched through a staging buffer (one recv for many PDUs); a large data
 * segment whose destination is known (a task's Data-Out buffer) is received
 * straight into it.
 *
 * Transmit: PDUs are queued (header + borrowed data + padding/digest) and
 * written with writev, many PDUs per call. Queuing never writes: a flush runs
 * after the receive loop or from one posted message per reactor iteration,
 * so completions that arrive together leave in one syscall. EAGAIN arms
 * EPOLLOUT until the queue drains.
 *
 *   LOGIN --login ok--> FFP --logout/EOF/error/silence--> CLOSED --refs 0--> freed
 *
 * Keepalive in FFP (RFC 7143 11.19; LIO's nopin_timeout and
 * nopin_response_timeout), one one-shot reactor timer per connection that
 * re-arms itself instead of being reset per PDU, so the receive path only
 * stamps last_rx_ns:
 *
 *   quiet --nothing received for nop_interval--> ping: NOP-In with a TTT, ITT 0xffffffff
 *   ping --NOP-Out echoing the TTT--> quiet, the interval restarts at once
 *   ping --any other bytes--> quiet, noticed when the timeout would run out
 *   ping --nothing for nop_timeout--> CLOSED (as a transport error: tasks aborted)
 *
 * With nop_timeout 0 nothing is dropped: a silent peer gets a ping per interval.
 *
 * Invariant: refs counts the open socket, every live task and every posted
 * message; the connection (and its session) is freed only at zero. The
 * keepalive timer holds no reference: closing cancels it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include "iscsi_internal.h"
#include "s3tgt/log.h"

#define RBUF_SIZE (64 * 1024)
#define DIRECT_MIN 8192	    /* receive data segments this large in place */
#define TX_IOV_MAX 64
#define RX_BUDGET (4u << 20) /* bytes per readable event, for fairness */
#define NS_PER_SEC 1000000000ull
#define NS_PER_MS 1000000ull

static void conn_flush(struct iscsi_conn *c);
static void conn_event(void *arg, uint32_t events);

void iscsi_conn_get(struct iscsi_conn *c)
{
	c->refs++;
}

static void conn_free(struct iscsi_conn *c)
{
	struct iscsi_tx *tx;

	while ((tx = c->tx_free) != NULL) {
		c->tx_free = tx->next;
		free(tx);
	}
	if (c->sess) {
		iscsi_session_destroy(c->sess);
	}
	iscsi_login_fini(&c->login);
	if (c->srv) {
		iscsi_server_conn_gone(c->srv, c);
	}
	free(c->text_out);
	free(c->rbuf);
	free(c->dbuf);
	free(c);
}

void iscsi_conn_put(struct iscsi_conn *c)
{
	if (--c->refs == 0) {
		conn_free(c);
	}
}

struct iscsi_tx *iscsi_tx_get(struct iscsi_conn *c)
{
	struct iscsi_tx *tx = c->tx_free;

	if (tx) {
		c->tx_free = tx->next;
	} else {
		tx = malloc(sizeof(*tx));
		if (!tx) {
			return NULL;
		}
	}
	tx->next = NULL;
	tx->hdr_len = ISCSI_BHS_LEN;
	tx->data = NULL;
	tx->data_len = 0;
	tx->trailer_len = 0;
	tx->sent = 0;
	tx->owned = NULL;
	tx->done = NULL;
	tx->arg = NULL;
	return tx;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void tx_release(struct iscsi_conn *c, struct iscsi_tx *tx)
{
	if (tx->done) {
		tx->done(c, tx);
	}
	free(tx->owned);
	tx->next = c->tx_free;
	c->tx_free = tx;
}

void iscsi_tx_queue(struct iscsi_conn *c, struct iscsi_tx *tx)
{
	uint32_t pad = ISCSI_PAD(tx->data_len);

	if (c->state == ISCSI_CONN_CLOSED) {
		tx_release(c, tx);
		return;
	}
	put_be24(tx->hdr + ISCSI_BHS_DATA_LEN, tx->data_len);
	tx->hdr_len = ISCSI_BHS_LEN;
	if (c->params.header_digest && c->state == ISCSI_CONN_FFP) {
		put_le32(tx->hdr + ISCSI_BHS_LEN, iscsi_crc32c(tx->hdr, ISCSI_BHS_LEN));
		tx->hdr_len += ISCSI_DIGEST_LEN;
	}
	memset(tx->trailer, 0, pad);
	tx->trailer_len = pad;
	if (tx->data_len && c->params.data_digest && c->state == ISCSI_CONN_FFP) {
		uint32_t crc = crc32c(0, tx->data, tx->data_len);
		crc = crc32c(crc, tx->trailer, pad);
		put_le32(tx->trailer + pad, crc);
		tx->trailer_len += ISCSI_DIGEST_LEN;
	}
	if (c->txq_tail) {
		c->txq_tail->next = tx;
	} else {
		c->txq = tx;
	}
	c->txq_tail = tx;
	iscsi_conn_kick(c);
}

void iscsi_conn_fill_sn(struct iscsi_conn *c, uint8_t *hdr, bool stat)
{
	struct iscsi_session *s = c->sess;

	put_be32(hdr + ISCSI_BHS_STATSN, c->stat_sn);
	if (stat) {
		c->stat_sn++;
	}
	if (s) {
		put_be32(hdr + ISCSI_BHS_EXPCMDSN, s->exp_cmdsn);
		put_be32(hdr + ISCSI_BHS_MAXCMDSN, s->max_cmdsn);
	} else {
		put_be32(hdr + ISCSI_BHS_EXPCMDSN, c->login.cmdsn);
		put_be32(hdr + ISCSI_BHS_MAXCMDSN, c->login.cmdsn + ISCSI_CMD_WINDOW - 1);
	}
}

void iscsi_conn_send_reject(struct iscsi_conn *c, const uint8_t *bhs, uint8_t reason)
{
	struct iscsi_tx *tx = iscsi_tx_get(c);

	LOG_DEBUG("iscsi", "%s: reject opcode 0x%02x ITT 0x%08x reason 0x%02x", c->peer,
		  bhs[0], get_be32(bhs + ISCSI_BHS_ITT), reason);
	if (!tx) {
		iscsi_conn_close(c, "out of memory");
		return;
	}
	tx->owned = malloc(ISCSI_BHS_LEN);
	if (!tx->owned) {
		tx_release(c, tx);
		iscsi_conn_close(c, "out of memory");
		return;
	}
	memcpy(tx->owned, bhs, ISCSI_BHS_LEN);
	tx->data = tx->owned;
	tx->data_len = ISCSI_BHS_LEN; /* 11.17: the rejected PDU's header */
	memset(tx->hdr, 0, ISCSI_BHS_LEN);
	tx->hdr[ISCSI_BHS_OPCODE] = ISCSI_OP_REJECT;
	tx->hdr[ISCSI_BHS_FLAGS] = ISCSI_FLAG_FINAL;
	tx->hdr[ISCSI_REJECT_REASON] = reason;
	put_be32(tx->hdr + ISCSI_BHS_ITT, ISCSI_RSVD_TAG);
	iscsi_conn_fill_sn(c, tx->hdr, true);
	iscsi_tx_queue(c, tx);
}

static void flush_msg(void *arg)
{
	struct iscsi_conn *c = arg;

	c->flush_posted = false;
	conn_flush(c);
	iscsi_conn_put(c);
}

void iscsi_conn_kick(struct iscsi_conn *c)
{
	if (c->in_rx || c->flush_posted || c->state == ISCSI_CONN_CLOSED) {
		return;
	}
	if (reactor_post(c->srv->r, flush_msg, c) == 0) {
		c->flush_posted = true;
		iscsi_conn_get(c);
	} else {
		conn_flush(c);
	}
}

/* Level-triggered interest: no EPOLLIN once reading stopped (logout, drain). */
static void update_events(struct iscsi_conn *c)
{
	uint32_t ev = (c->stop_rx ? 0 : EPOLLIN | EPOLLRDHUP) | (c->want_out ? EPOLLOUT : 0);

	if (c->state == ISCSI_CONN_CLOSED || ev == c->events) {
		return;
	}
	c->events = ev;
	if (reactor_mod_fd(c->srv->r, c->fd, ev) < 0) {
		iscsi_conn_close(c, "epoll_ctl failed");
	}
}

static void set_want_out(struct iscsi_conn *c, bool on)
{
	c->want_out = on;
	update_events(c);
}

static void conn_flush(struct iscsi_conn *c)
{
	while (c->txq && c->state != ISCSI_CONN_CLOSED) {
		struct iovec iov[TX_IOV_MAX];
		int n = 0;
		ssize_t w;

		for (struct iscsi_tx *tx = c->txq; tx && n + 3 <= TX_IOV_MAX; tx = tx->next) {
			size_t skip = tx->sent;
			const void *base[3] = { tx->hdr, tx->data, tx->trailer };
			size_t lens[3] = { tx->hdr_len, tx->data_len, tx->trailer_len };
			for (int i = 0; i < 3; i++) {
				if (skip >= lens[i]) {
					skip -= lens[i];
					continue;
				}
				iov[n].iov_base = (uint8_t *)(uintptr_t)base[i] + skip;
				iov[n].iov_len = lens[i] - skip;
				skip = 0;
				n++;
			}
		}
		w = writev(c->fd, iov, n);
		if (w < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				set_want_out(c, true);
				return;
			}
			iscsi_conn_close(c, "write failed");
			return;
		}
		while (w > 0 && c->txq) {
			struct iscsi_tx *tx = c->txq;
			size_t total = tx->hdr_len + tx->data_len + tx->trailer_len;
			size_t left = total - tx->sent;
			if ((size_t)w < left) {
				tx->sent += (size_t)w;
				w = 0;
				break;
			}
			w -= (ssize_t)left;
			c->txq = tx->next;
			if (!c->txq) {
				c->txq_tail = NULL;
			}
			tx_release(c, tx);
		}
	}
	if (c->state == ISCSI_CONN_CLOSED) {
		return;
	}
	set_want_out(c, false);
	if (c->close_after_tx) {
		iscsi_conn_close(c, "closed after final response");
		return;
	}
	iscsi_conn_check_drained(c);
}

void iscsi_conn_check_drained(struct iscsi_conn *c)
{
	if (c->draining && c->state != ISCSI_CONN_CLOSED && !c->txq &&
	    (!c->sess || c->sess->ntasks == 0)) {
		iscsi_conn_close(c, "server shutdown");
	}
}

void iscsi_conn_drain(struct iscsi_conn *c)
{
	c->draining = true;
	c->stop_rx = true;
	update_events(c);
	iscsi_conn_check_drained(c);
}

void iscsi_conn_close(struct iscsi_conn *c, const char *why)
{
	struct iscsi_tx *tx;

	if (c->state == ISCSI_CONN_CLOSED) {
		return;
	}
	LOG_DEBUG("iscsi", "%s: connection closed: %s", c->peer, why);
	c->state = ISCSI_CONN_CLOSED;
	c->stop_rx = true;
	reactor_timer_cancel(c->srv->r, c->nop_timer);
	c->nop_timer = NULL;
	reactor_del_fd(c->srv->r, c->fd);
	close(c->fd);
	c->fd = -1;
	while ((tx = c->txq) != NULL) {
		c->txq = tx->next;
		tx_release(c, tx);
	}
	c->txq_tail = NULL;
	if (c->sess) {
		iscsi_session_abort_all(c);
	}
	iscsi_conn_put(c);
}

/* ---- keepalive: target-initiated NOP-In (RFC 7143 11.19) ---- */

static void nop_timer_fn(void *arg);

static void nop_arm(struct iscsi_conn *c, uint64_t delay_ns)
{
	/* Rounded up: a timer that fires early would only re-arm for the rest. */
	uint64_t ms = (delay_ns + NS_PER_MS - 1) / NS_PER_MS;

	c->nop_timer = reactor_timer_add(c->srv->r, ms, false, nop_timer_fn, c);
	if (!c->nop_timer) {
		iscsi_conn_close(c, "out of memory");
	}
}

static const char *conn_initiator(const struct iscsi_conn *c)
{
	return c->login.initiator_name[0] ? c->login.initiator_name : "?";
}

static const char *conn_target(const struct iscsi_conn *c)
{
	return c->login.discovery ? "discovery" : c->login.target_name;
}

static void nop_send(struct iscsi_conn *c, uint64_t now)
{
	struct iscsi_session *s = c->sess;
	struct iscsi_tx *tx = iscsi_tx_get(c);

	if (!tx) {
		iscsi_conn_close(c, "out of memory");
		return;
	}
	/* Drawn from the R2T counter: every TTT of the session stays unique. */
	c->nop_ttt = s->next_ttt++;
	if (c->nop_ttt == ISCSI_RSVD_TAG) {
		c->nop_ttt = s->next_ttt++;
	}
	c->nop_sent_ns = now;
	memset(tx->hdr, 0, ISCSI_BHS_LEN);
	tx->hdr[ISCSI_BHS_OPCODE] = ISCSI_OP_NOP_IN;
	tx->hdr[ISCSI_BHS_FLAGS] = ISCSI_FLAG_FINAL;
	/*
	 * 11.19.1-3: not an answer, so ITT 0xffffffff and no data; a valid TTT
	 * (with the LUN, 0 here) obliges the initiator to answer with a NOP-Out
	 * (11.18.3); StatSN is the next one and does not advance.
	 */
	put_be32(tx->hdr + ISCSI_BHS_ITT, ISCSI_RSVD_TAG);
	put_be32(tx->hdr + ISCSI_BHS_TTT, c->nop_ttt);
	iscsi_conn_fill_sn(c, tx->hdr, false);
	LOG_DEBUG("iscsi", "%s: idle: NOP-In ping TTT 0x%08x", c->peer, c->nop_ttt);
	iscsi_tx_queue(c, tx);
}

static void nop_timer_fn(void *arg)
{
	struct iscsi_conn *c = arg;
	uint64_t now = reactor_now_ns(), idle;

	c->nop_timer = NULL; /* one-shot: the reactor frees it after this returns */
	if (c->state != ISCSI_CONN_FFP || c->stop_rx) {
		return; /* logging out or draining: no answer would be read */
	}
	if (c->nop_sent_ns && c->last_rx_ns <= c->nop_sent_ns && c->nop_timeout_ns) {
		if (now - c->nop_sent_ns < c->nop_timeout_ns) {
			nop_arm(c, c->nop_sent_ns + c->nop_timeout_ns - now);
			return;
		}
		LOG_WARN("iscsi",
			 "%s: %s on %s: nothing received within %llu s of NOP-In ping TTT 0x%08x: "
			 "dropping the connection",
			 c->peer, conn_initiator(c), conn_target(c),
			 (unsigned long long)(c->nop_timeout_ns / NS_PER_SEC), c->nop_ttt);
		iscsi_conn_close(c, "NOP-In ping unanswered");
		return;
	}
	idle = now - c->last_rx_ns;
	if (idle < c->nop_interval_ns) {
		nop_arm(c, c->nop_interval_ns - idle);
		return;
	}
	nop_send(c, now);
	if (c->state == ISCSI_CONN_FFP) {
		nop_arm(c, c->nop_timeout_ns ? c->nop_timeout_ns : c->nop_interval_ns);
	}
}

void iscsi_conn_ffp_started(struct iscsi_conn *c)
{
	c->nop_interval_ns = (uint64_t)c->srv->nop_interval_s * NS_PER_SEC;
	c->nop_timeout_ns = (uint64_t)c->srv->nop_timeout_s * NS_PER_SEC;
	c->last_rx_ns = reactor_now_ns();
	if (c->nop_interval_ns) {
		nop_arm(c, c->nop_interval_ns);
	}
}

void iscsi_conn_nop_reply(struct iscsi_conn *c, uint32_t ttt)
{
	if (ttt != c->nop_ttt) {
		/*
		 * 11.18.3 leaves this to the target. Only a ping we replaced (its
		 * answer was late) or an initiator bug sends one; it is alive all
		 * the same, and a NOP-Out with ITT 0xffffffff wants no answer.
		 */
		LOG_DEBUG("iscsi", "%s: NOP-Out with unknown TTT 0x%08x ignored", c->peer, ttt);
		return;
	}
	LOG_DEBUG("iscsi", "%s: NOP-In ping TTT 0x%08x answered after %llu ms", c->peer, ttt,
		  (unsigned long long)((reactor_now_ns() - c->nop_sent_ns) / NS_PER_MS));
	c->nop_ttt = ISCSI_RSVD_TAG;
	c->nop_sent_ns = 0;
	/* The idle interval restarts now, not when the timeout would have run out. */
	if (c->nop_timer) {
		reactor_timer_cancel(c->srv->r, c->nop_timer);
		nop_arm(c, c->nop_interval_ns);
	}
}

/* ---- receive dispatch ---- */

static int login_header(struct iscsi_conn *c, struct iscsi_rx *rx)
{
	if (iscsi_bhs_opcode(rx->bhs) != ISCSI_OP_LOGIN_REQ) {
		/* 6.3: only Login PDUs before full feature phase. */
		return -EPROTO;
	}
	if (rx->data_len > 8192 + 4096) {
		return -EMSGSIZE;
	}
	rx->data = c->dbuf;
	return 0;
}

static int rx_header(void *arg, struct iscsi_rx *rx)
{
	struct iscsi_conn *c = arg;

	if (c->state == ISCSI_CONN_LOGIN) {
		return login_header(c, rx);
	}
	return iscsi_session_header(c, rx);
}

static int rx_pdu(void *arg, struct iscsi_rx *rx)
{
	struct iscsi_conn *c = arg;

	if (c->state == ISCSI_CONN_LOGIN) {
		return iscsi_login_rx(c, rx->bhs, c->dbuf, rx->data_len);
	}
	return iscsi_session_pdu(c, rx);
}

static const struct iscsi_rx_ops g_conn_rx_ops = {
	.header = rx_header,
	.pdu = rx_pdu,
};

static void conn_read(struct iscsi_conn *c)
{
	size_t budget = RX_BUDGET;

	c->in_rx = true;
	while (!c->stop_rx && budget > 0) {
		uint8_t *dst;
		size_t want;
		ssize_t n;
		long used;

		if (c->rbuf_off < c->rbuf_len) {
			used = iscsi_rx_feed(&c->rx, c->rbuf + c->rbuf_off, c->rbuf_len - c->rbuf_off,
					     &g_conn_rx_ops, c, &c->stop_rx);
			if (used < 0) {
				iscsi_conn_close(c, "protocol error");
				break;
			}
			c->rbuf_off += (size_t)used;
			continue;
		}
		c->rbuf_off = c->rbuf_len = 0;
		want = iscsi_rx_direct(&c->rx, &dst);
		if (want >= DIRECT_MIN) {
			n = recv(c->fd, dst, want, 0);
		} else {
			dst = NULL;
			n = recv(c->fd, c->rbuf, RBUF_SIZE, 0);
		}
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				iscsi_conn_close(c, "read failed");
			}
			break;
		}
		if (n == 0) {
			iscsi_conn_close(c, "peer closed");
			break;
		}
		c->last_rx_ns = reactor_now_ns();
		budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
		if (dst) {
			if (iscsi_rx_direct_done(&c->rx, (size_t)n, &g_conn_rx_ops, c) < 0) {
				iscsi_conn_close(c, "protocol error");
				break;
			}
		} else {
			c->rbuf_len = (size_t)n;
		}
	}
	c->in_rx = false;
}

static void conn_event(void *arg, uint32_t events)
{
	struct iscsi_conn *c = arg;

	iscsi_conn_get(c);
	if (c->state != ISCSI_CONN_CLOSED && (events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))) {
		conn_read(c);
	}
	if (c->state != ISCSI_CONN_CLOSED) {
		conn_flush(c);
	}
	if (c->state != ISCSI_CONN_CLOSED) {
		update_events(c);
	}
	iscsi_conn_put(c);
}

static void sockaddr_str(const struct sockaddr_storage *ss, char *out, size_t len)
{
	char host[64];
	int port = 0;

	host[0] = '\0';
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(out, len, "%s:%d", host, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(out, len, "[%s]:%d", host, port);
	} else {
		snprintf(out, len, "?");
	}
}

int iscsi_conn_create(struct iscsi_server *srv, int fd, uint16_t tpgt)
{
	struct iscsi_conn *c = calloc(1, sizeof(*c));
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int rc;

	if (!c) {
		return -ENOMEM;
	}
	c->srv = srv;
	c->fd = fd;
	c->tpgt = tpgt;
	c->refs = 1;
	c->text_ttt = ISCSI_RSVD_TAG;
	c->nop_ttt = ISCSI_RSVD_TAG;
	iscsi_params_default(&c->params);
	/* Login data segments stay below 8192 (13.12 default) plus slack. */
	iscsi_rx_init(&c->rx, ISCSI_OUR_MRDSL);
	c->rbuf = malloc(RBUF_SIZE);
	c->dbuf = malloc(ISCSI_OUR_MRDSL);
	if (!c->rbuf || !c->dbuf) {
		rc = -ENOMEM;
		goto err;
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		sockaddr_str(&ss, c->local, sizeof(c->local));
	}
	sl = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		sockaddr_str(&ss, c->peer, sizeof(c->peer));
	}
	c->events = EPOLLIN | EPOLLRDHUP;
	rc = reactor_add_fd(srv->r, fd, c->events, conn_event, c);
	if (rc < 0) {
		goto err;
	}
	c->next = srv->conns;
	if (srv->conns) {
		srv->conns->prev = c;
	}
	srv->conns = c;
	LOG_DEBUG("iscsi", "%s: connected to %s", c->peer, c->local);
	return 0;
err:
	free(c->rbuf);
	free(c->dbuf);
	free(c);
	return rc;
}
