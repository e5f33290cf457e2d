/*
 * fuzz_pdu.c - PDU framing and everything behind it.
 *
 * Input: one flag byte (bit 0 header digest, bit 1 data digest for the raw
 * parser pass), then a byte stream as an initiator would send it. Pass 1
 * runs the receive state machine alone. Pass 2 writes the stream into a real
 * connection (socketpair) of a server exporting a 1 MiB RAM LUN and runs
 * the reactor until the connection is gone: login, discovery, SCSI commands,
 * Data-Out, TMF and logout all see the bytes. ASan/UBSan catch the rest.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iscsi/iscsi_internal.h"
#include "s3tgt/log.h"
#include "s3tgt/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t g_data[ISCSI_OUR_MRDSL];

static int raw_header(void *arg, struct iscsi_rx *rx)
{
	rx->data = rx->data_len <= sizeof(g_data) ? g_data : NULL;
	return 0;
}

static int raw_pdu(void *arg, struct iscsi_rx *rx)
{
	if (rx->data && (iscsi_bhs_opcode(rx->bhs) == ISCSI_OP_LOGIN_REQ ||
			 iscsi_bhs_opcode(rx->bhs) == ISCSI_OP_TEXT_REQ)) {
		struct iscsi_kv kv[64];
		(void)iscsi_text_parse((char *)rx->data, rx->data_len, kv, 64);
	}
	return 0;
}

static const struct iscsi_rx_ops g_raw_ops = { .header = raw_header, .pdu = raw_pdu };

static struct reactor *g_r;
static struct iscsi_server *g_srv;
static struct scsi_target *g_tgt;

static void stop_cb(void *arg)
{
	reactor_stop(arg);
}

static int init_server(void)
{
	struct store *st;
	struct scsi_lu *lu;
	struct scsi_lu_params lp = { .serial = "fuzz0001", .naa_id = 0x3000000000000001ull };
	char err[256];

	log_set_level(getenv("FUZZ_VERBOSE") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERR);
	if (getenv("FUZZ_VERBOSE")) {
		log_set_debug("all");
	}
	if (reactor_create(&g_r) < 0 || iscsi_server_create(g_r, &g_srv) < 0 ||
	    scsi_target_create("iqn.2026-11.io.s3tgt:fuzz", &g_tgt) < 0 ||
	    store_open_uri("ram:?size=1M", g_r, &st, err, sizeof(err)) < 0) {
		return -1;
	}
	if (scsi_lu_create(st, &lp, &lu) < 0 || scsi_target_add_lu(g_tgt, 0, lu) < 0) {
		return -1;
	}
	return iscsi_server_add_target(g_srv, g_tgt, "fuzz", NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iscsi_rx rx;
	int sv[2];
	size_t off = 1;

	if (size < 1) {
		return 0;
	}
	iscsi_rx_init(&rx, (data[0] & 4) ? 8192 : ISCSI_MRDSL_MAX);
	rx.header_digest = data[0] & 1;
	rx.data_digest = data[0] & 2;
	(void)iscsi_rx_feed(&rx, data + 1, size - 1, &g_raw_ops, NULL, NULL);

	if (!g_srv && init_server() < 0) {
		abort();
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
		return 0;
	}
	if (iscsi_conn_create(g_srv, sv[1], 1) < 0) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	if (off == size) {
		shutdown(sv[0], SHUT_WR);
	}
	/* Feed, draining what the target answers so it never blocks on output. */
	for (int round = 0; round < 10000 && g_srv->conns; round++) {
		uint8_t sink[65536];
		if (off < size) {
			ssize_t w = write(sv[0], data + off, size - off);
			if (w > 0) {
				off += (size_t)w;
			}
			if (off == size) {
				shutdown(sv[0], SHUT_WR);
			}
		}
		while (read(sv[0], sink, sizeof(sink)) > 0) {
		}
		reactor_timer_add(g_r, 1, false, stop_cb, g_r);
		reactor_run(g_r);
	}
	close(sv[0]);
	if (g_srv->conns) {
		abort(); /* a connection that never ends: a hang */
	}
	return 0;
}
