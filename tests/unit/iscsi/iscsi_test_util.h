/*
 * iscsi_test_util.h - shared fixture for the iSCSI unit tests that drive a
 * real connection: a reactor, a server exporting one target with a 1 MiB ram
 * LU, and a socketpair whose far end is an iSCSI connection on that server.
 * The test plays the initiator on f->fd (non-blocking) with raw PDUs; the
 * reactor runs only inside pump()/pump_ms(), so nothing happens on the
 * target side between two calls. The helpers below build Login and Text
 * requests, exchange them and look up keys in the answers.
 */
#ifndef S3TGT_ISCSI_TEST_UTIL_H
#define S3TGT_ISCSI_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "iscsi_internal.h"
#include "s3tgt/store.h"

#define ISCSI_TEST_PDU_MAX 70000 /* largest PDU a test sends: BHS + data + padding */

/* A string literal of NUL-separated keys and its length without the final NUL. */
#define KEYS(s) s, sizeof(s) - 1

struct fixture {
	struct reactor *r;
	struct iscsi_server *srv;
	struct scsi_target *t;
	int fd; /* initiator side of the socketpair */
};

static __attribute__((unused)) void stop_cb(void *arg)
{
	reactor_stop(arg);
}

/* Run the reactor for ms milliseconds. */
static __attribute__((unused)) void pump_ms(struct fixture *f, uint64_t ms)
{
	assert_non_null(reactor_timer_add(f->r, ms, false, stop_cb, f->r));
	reactor_run(f->r);
}

/* Run the reactor long enough for the target to answer what was sent. */
static __attribute__((unused)) void pump(struct fixture *f)
{
	pump_ms(f, 30);
}

/*
 * Target tgt (alias may be NULL) with LUN 0 on a 1 MiB ram store, exported
 * by a new server, and one connection on it whose initiator end is f->fd.
 */
static __attribute__((unused)) struct fixture *fixture_create(const char *tgt, const char *alias,
							      const char *serial, uint64_t naa_id)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct scsi_lu_params lp = {.serial = serial, .naa_id = naa_id};
	struct store *st;
	struct scsi_lu *lu;
	char err[128];
	int sv[2];

	assert_non_null(f);
	assert_int_equal(reactor_create(&f->r), 0);
	assert_int_equal(iscsi_server_create(f->r, &f->srv), 0);
	assert_int_equal(scsi_target_create(tgt, &f->t), 0);
	assert_int_equal(store_open_uri("ram:?size=1M", f->r, &st, err, sizeof(err)), 0);
	assert_int_equal(scsi_lu_create(st, &lp, &lu), 0);
	assert_int_equal(scsi_target_add_lu(f->t, 0, lu), 0);
	assert_int_equal(iscsi_server_add_target(f->srv, f->t, alias, NULL), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	f->fd = sv[0];
	assert_int_equal(iscsi_conn_create(f->srv, sv[1], 1), 0);
	return f;
}

/* Closes f->fd (unless a test did and set it to -1) and frees everything. */
static __attribute__((unused)) void fixture_destroy(struct fixture *f)
{
	if (f->fd >= 0) {
		close(f->fd);
	}
	pump(f);
	iscsi_server_destroy(f->srv);
	scsi_target_destroy(f->t);
	reactor_destroy(f->r);
	free(f);
}

/* cmocka teardown for a fixture that setup stored in *state. */
static __attribute__((unused)) int fixture_teardown(void **state)
{
	fixture_destroy(*state);
	return 0;
}

/* Send one PDU (no digests): bhs with DataSegmentLength set to tlen, data, padding. */
static __attribute__((unused)) void send_pdu(struct fixture *f, const uint8_t *bhs,
					     const char *text, size_t tlen)
{
	static uint8_t buf[ISCSI_TEST_PDU_MAX];
	size_t n = ISCSI_BHS_LEN;

	assert_true(tlen <= sizeof(buf) - ISCSI_BHS_LEN - 3);
	memcpy(buf, bhs, ISCSI_BHS_LEN);
	put_be24(buf + ISCSI_BHS_DATA_LEN, (uint32_t)tlen);
	if (tlen) {
		memcpy(buf + n, text, tlen);
	}
	n += tlen;
	while (n & 3) {
		buf[n++] = 0;
	}
	assert_int_equal(write(f->fd, buf, n), (ssize_t)n);
	pump(f);
}

/* Read one PDU already sent; returns its data length, or -1 on EOF or nothing there. */
static __attribute__((unused)) int recv_pdu(struct fixture *f, uint8_t *bhs, char *data, size_t cap)
{
	uint32_t dl;
	ssize_t n = read(f->fd, bhs, ISCSI_BHS_LEN);

	if (n != ISCSI_BHS_LEN) {
		return -1;
	}
	dl = iscsi_bhs_data_len(bhs);
	dl += ISCSI_PAD(dl);
	assert_true(dl <= cap);
	if (dl) {
		assert_int_equal(read(f->fd, data, dl), (ssize_t)dl);
	}
	return (int)iscsi_bhs_data_len(bhs);
}

/* A Login Request header: ISID 0x800000010000, ITT 0x1000. */
static __attribute__((unused)) void login_bhs(uint8_t *bhs, uint8_t flags, uint16_t tsih,
					      uint32_t cmdsn)
{
	static const uint8_t isid[6] = {0x80, 0, 0, 0x01, 0, 0};

	memset(bhs, 0, ISCSI_BHS_LEN);
	bhs[0] = ISCSI_OP_LOGIN_REQ | ISCSI_OP_IMMEDIATE;
	bhs[1] = flags;
	memcpy(bhs + ISCSI_LOGIN_ISID, isid, 6);
	put_be16(bhs + ISCSI_LOGIN_TSIH, tsih);
	put_be32(bhs + ISCSI_BHS_ITT, 0x1000);
	put_be32(bhs + ISCSI_BHS_CMDSN, cmdsn);
}

/*
 * Send one Login Request (login_bhs with TSIH 0) carrying len bytes of keys
 * and read the response into rsp/data; returns what recv_pdu returns.
 */
static __attribute__((unused)) int login_exchange(struct fixture *f, uint8_t flags, uint32_t cmdsn,
						  const char *keys, size_t len, uint8_t *rsp,
						  char *data, size_t cap)
{
	uint8_t bhs[ISCSI_BHS_LEN];

	login_bhs(bhs, flags, 0, cmdsn);
	send_pdu(f, bhs, keys, len);
	return recv_pdu(f, rsp, data, cap);
}

/* Status-Class and Status-Detail of a Login Response as one number (RFC 7143 11.13.5). */
static __attribute__((unused)) uint16_t login_status(const uint8_t *rsp)
{
	return get_be16(rsp + ISCSI_LOGIN_STATUS_CLASS);
}

/* An immediate Text Request header, F=1, TTT 0xffffffff (RFC 7143 11.10). */
static __attribute__((unused)) void text_bhs(uint8_t *bhs, uint32_t itt, uint32_t cmdsn)
{
	memset(bhs, 0, ISCSI_BHS_LEN);
	bhs[0] = ISCSI_OP_TEXT_REQ | ISCSI_OP_IMMEDIATE;
	bhs[1] = ISCSI_FLAG_FINAL;
	put_be32(bhs + ISCSI_BHS_ITT, itt);
	put_be32(bhs + ISCSI_BHS_TTT, ISCSI_RSVD_TAG);
	put_be32(bhs + ISCSI_BHS_CMDSN, cmdsn);
}

/* The value of key in NUL-separated "key=value" text, or NULL. */
static __attribute__((unused)) const char *get_key(const char *data, int len, const char *key)
{
	size_t kl = strlen(key);

	for (int off = 0; off < len; off += (int)strlen(data + off) + 1) {
		if (strncmp(data + off, key, kl) == 0 && data[off + kl] == '=') {
			return data + off + kl + 1;
		}
	}
	return NULL;
}

/* Whether the text holds the pair kv ("key=value") exactly. */
static __attribute__((unused)) bool has_key(const char *data, int len, const char *kv)
{
	for (int off = 0; off < len; off += (int)strlen(data + off) + 1) {
		if (strcmp(data + off, kv) == 0) {
			return true;
		}
	}
	return false;
}

#endif
