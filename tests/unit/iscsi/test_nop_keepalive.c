/*
 * test_nop_keepalive.c - target-initiated NOP-In keepalive (RFC 7143 11.18,
 * 11.19) on a real connection over a socketpair, with a 1 s interval and a
 * 1 s timeout: an idle connection gets a NOP-In with a valid TTT, ITT
 * 0xffffffff and the current StatSN (not advanced); answering it keeps the
 * connection; silence drops it once the timeout has run; any PDU counts as
 * life and restarts the idle interval; an answer without the I bit does not
 * shift the CmdSN window; a NOP-Out with a TTT we did not issue gets neither
 * Reject nor NOP-In; interval 0 sends nothing.
 */
#include <errno.h>

#include "iscsi_test_util.h"

#define TGT "iqn.2026-11.test:nop"
#define CMDSN 7
#define POLL_MS 20
/* Windows around the 1 s settings, wide enough for a loaded ASan run. */
#define EARLY_MS 850
#define LATE_MS 2000

static uint64_t g_last_sent_ms; /* when the test last sent the target a PDU */

static int setup(void **state)
{
	struct fixture *f = fixture_create(TGT, NULL, "n0", 0x3000000000000004ull);

	assert_int_equal(iscsi_server_set_nop(f->srv, 1, 1), 0);
	*state = f;
	return 0;
}

/* Security stage straight to full feature phase; returns the next StatSN. */
static uint32_t login(struct fixture *f)
{
	static const char keys[] = "InitiatorName=iqn.2026-11.test:init\0SessionType=Normal\0"
				   "TargetName=" TGT "\0AuthMethod=None\0";
	uint8_t rsp[48];
	char data[8192];

	g_last_sent_ms = reactor_now_ms();
	assert_true(login_exchange(f, ISCSI_LOGIN_FLAG_TRANSIT | ISCSI_STAGE_FFP, CMDSN, KEYS(keys),
				   rsp, data, sizeof(data)) >= 0);
	assert_int_equal(rsp[0], ISCSI_OP_LOGIN_RSP);
	assert_int_equal(login_status(rsp), ISCSI_LOGIN_OK);
	assert_int_equal(rsp[1], ISCSI_LOGIN_FLAG_TRANSIT | ISCSI_STAGE_FFP);
	return get_be32(rsp + ISCSI_BHS_STATSN) + 1;
}

enum wait_result { WAIT_PDU, WAIT_EOF, WAIT_NOTHING };

/*
 * Run the reactor until the target sends a PDU or closes, at most max_ms.
 * *waited_ms (may be NULL) says how long that took.
 */
static enum wait_result wait_pdu(struct fixture *f, uint8_t *bhs, uint64_t max_ms,
				 uint64_t *waited_ms)
{
	static char data[ISCSI_TEST_PDU_MAX];
	uint64_t start = reactor_now_ms();
	enum wait_result res;

	for (;;) {
		ssize_t n = read(f->fd, bhs, ISCSI_BHS_LEN);
		if (n == ISCSI_BHS_LEN) {
			uint32_t dl = iscsi_bhs_data_len(bhs);
			dl += ISCSI_PAD(dl);
			assert_true(dl <= sizeof(data));
			if (dl) {
				assert_int_equal(read(f->fd, data, dl), (ssize_t)dl);
			}
			res = WAIT_PDU;
			break;
		}
		if (n == 0) {
			res = WAIT_EOF;
			break;
		}
		assert_true(n < 0 && errno == EAGAIN);
		if (reactor_now_ms() - start >= max_ms) {
			res = WAIT_NOTHING;
			break;
		}
		pump_ms(f, POLL_MS);
	}
	if (waited_ms) {
		*waited_ms = reactor_now_ms() - start;
	}
	return res;
}

/* LUN 0 as our NOP-In carries it: 11.18.3 has the answer copy it. */
static void nop_out(struct fixture *f, uint32_t itt, uint32_t ttt)
{
	uint8_t bhs[48] = {0};

	bhs[0] = ISCSI_OP_NOP_OUT | ISCSI_OP_IMMEDIATE; /* 11.18: I bit with ITT 0xffffffff */
	bhs[1] = ISCSI_FLAG_FINAL;
	put_be32(bhs + ISCSI_BHS_ITT, itt);
	put_be32(bhs + ISCSI_BHS_TTT, ttt);
	put_be32(bhs + ISCSI_BHS_CMDSN, CMDSN);
	g_last_sent_ms = reactor_now_ms();
	send_pdu(f, bhs, NULL, 0);
}

/* Wait for the keepalive NOP-In, one interval after our last PDU; check it; return its TTT. */
static uint32_t expect_ping(struct fixture *f, uint32_t statsn)
{
	static const uint8_t zero_lun[8];
	uint8_t bhs[48];
	uint64_t silent;

	assert_int_equal(wait_pdu(f, bhs, 3000, NULL), WAIT_PDU);
	silent = reactor_now_ms() - g_last_sent_ms;
	assert_int_equal(bhs[0], ISCSI_OP_NOP_IN);
	assert_int_equal(bhs[1], ISCSI_FLAG_FINAL);
	if (silent < EARLY_MS || silent > LATE_MS) {
		fail_msg("NOP-In after %llu ms of silence, interval is 1 s",
			 (unsigned long long)silent);
	}
	/* 11.19: ITT reserved, a valid TTT asks for an answer, LUN 0, no data */
	assert_int_equal(get_be32(bhs + ISCSI_BHS_ITT), ISCSI_RSVD_TAG);
	assert_int_not_equal(get_be32(bhs + ISCSI_BHS_TTT), ISCSI_RSVD_TAG);
	assert_memory_equal(bhs + ISCSI_BHS_LUN, zero_lun, 8);
	assert_int_equal(iscsi_bhs_data_len(bhs), 0);
	/* 11.19.3: the next StatSN, not advanced by this PDU */
	assert_int_equal(get_be32(bhs + ISCSI_BHS_STATSN), statsn);
	assert_int_equal(get_be32(bhs + ISCSI_BHS_EXPCMDSN), CMDSN);
	assert_int_equal(get_be32(bhs + ISCSI_BHS_MAXCMDSN), CMDSN + ISCSI_CMD_WINDOW - 1);
	return get_be32(bhs + ISCSI_BHS_TTT);
}

static void test_ping_answered_keeps_connection(void **state)
{
	struct fixture *f = *state;
	uint32_t statsn = login(f), ttt, prev = ISCSI_RSVD_TAG;
	uint8_t bhs[48];

	/* Three rounds outlast interval + timeout several times over. */
	for (int round = 0; round < 3; round++) {
		ttt = expect_ping(f, statsn);
		assert_int_not_equal(ttt, prev);
		prev = ttt;
		nop_out(f, ISCSI_RSVD_TAG, ttt);
		/* The answer is consumed: neither a NOP-In nor a Reject comes back. */
		assert_int_equal(wait_pdu(f, bhs, 200, NULL), WAIT_NOTHING);
	}
	/* Our pings did not use up StatSNs: a ping of the initiator's gets statsn. */
	nop_out(f, 0x42, ISCSI_RSVD_TAG);
	assert_int_equal(wait_pdu(f, bhs, 500, NULL), WAIT_PDU);
	assert_int_equal(bhs[0], ISCSI_OP_NOP_IN);
	assert_int_equal(get_be32(bhs + ISCSI_BHS_ITT), 0x42);
	assert_int_equal(get_be32(bhs + ISCSI_BHS_TTT), ISCSI_RSVD_TAG);
	assert_int_equal(get_be32(bhs + ISCSI_BHS_STATSN), statsn);
	assert_int_equal(iscsi_server_target_sessions(f->srv, TGT), 1);
}

static void test_silence_drops_connection(void **state)
{
	struct fixture *f = *state;
	uint32_t statsn = login(f);
	uint8_t bhs[48];
	uint64_t waited;

	expect_ping(f, statsn);
	assert_int_equal(wait_pdu(f, bhs, 3000, &waited), WAIT_EOF);
	if (waited < EARLY_MS || waited > LATE_MS) {
		fail_msg("dropped %llu ms after the NOP-In, timeout is 1 s",
			 (unsigned long long)waited);
	}
	assert_int_equal(iscsi_server_target_sessions(f->srv, TGT), 0);
}

static void test_traffic_resets_idle_timer(void **state)
{
	struct fixture *f = *state;
	uint32_t statsn = login(f);
	uint8_t bhs[48];

	/* A NOP-Out that wants no answer every 300 ms for 2 s: no ping. */
	for (int i = 0; i < 7; i++) {
		nop_out(f, ISCSI_RSVD_TAG, ISCSI_RSVD_TAG);
		assert_int_equal(wait_pdu(f, bhs, 270, NULL), WAIT_NOTHING);
	}
	/* Silent from here: the ping comes one interval after the last PDU. */
	expect_ping(f, statsn);
}

static void test_any_pdu_answers(void **state)
{
	struct fixture *f = *state;
	uint32_t statsn = login(f);
	uint32_t first = expect_ping(f, statsn), second;
	uint8_t bhs[48];

	/*
	 * Not the answer, but a PDU: the initiator is alive. The connection
	 * outlives the ping's timeout, and after another idle interval the
	 * next ping comes with a new TTT.
	 */
	assert_int_equal(wait_pdu(f, bhs, 500, NULL), WAIT_NOTHING);
	nop_out(f, ISCSI_RSVD_TAG, ISCSI_RSVD_TAG);
	second = expect_ping(f, statsn);
	assert_int_not_equal(second, first);
	/* The late answer to the first ping: ignored, no Reject, no NOP-In. */
	nop_out(f, ISCSI_RSVD_TAG, first);
	assert_int_equal(wait_pdu(f, bhs, 200, NULL), WAIT_NOTHING);
	nop_out(f, ISCSI_RSVD_TAG, second);
	assert_int_equal(wait_pdu(f, bhs, 200, NULL), WAIT_NOTHING);
	assert_int_equal(iscsi_server_target_sessions(f->srv, TGT), 1);
}

/* An answer without the I bit does not use up a CmdSN (11.18.1): the next command runs. */
static void test_answer_keeps_cmdsn(void **state)
{
	struct fixture *f = *state;
	uint32_t statsn = login(f);
	uint8_t bhs[48] = {0};

	bhs[0] = ISCSI_OP_NOP_OUT;
	bhs[1] = ISCSI_FLAG_FINAL;
	put_be32(bhs + ISCSI_BHS_ITT, ISCSI_RSVD_TAG);
	put_be32(bhs + ISCSI_BHS_TTT, expect_ping(f, statsn));
	put_be32(bhs + ISCSI_BHS_CMDSN, CMDSN);
	send_pdu(f, bhs, NULL, 0);
	memset(bhs, 0, sizeof(bhs));
	bhs[0] = ISCSI_OP_SCSI_CMD; /* TEST UNIT READY */
	bhs[1] = ISCSI_FLAG_FINAL;
	put_be32(bhs + ISCSI_BHS_ITT, 0x77);
	put_be32(bhs + ISCSI_BHS_CMDSN, CMDSN);
	send_pdu(f, bhs, NULL, 0);
	assert_int_equal(wait_pdu(f, bhs, 500, NULL), WAIT_PDU);
	assert_int_equal(bhs[0], ISCSI_OP_SCSI_RSP);
	assert_int_equal(get_be32(bhs + ISCSI_BHS_ITT), 0x77);
	assert_int_equal(get_be32(bhs + ISCSI_BHS_EXPCMDSN), CMDSN + 1);
}

static void test_unknown_ttt_and_disabled(void **state)
{
	struct fixture *f = *state;
	uint32_t statsn, interval, timeout;
	uint8_t bhs[48];

	assert_int_equal(iscsi_server_set_nop(f->srv, ISCSI_NOP_MAX_S + 1, 1), -EINVAL);
	assert_int_equal(iscsi_server_set_nop(f->srv, 1, ISCSI_NOP_MAX_S + 1), -EINVAL);
	assert_int_equal(iscsi_server_set_nop(f->srv, 0, 0), 0);
	iscsi_server_get_nop(f->srv, &interval, &timeout);
	assert_int_equal(interval, 0);
	assert_int_equal(timeout, 0);
	statsn = login(f);
	/* Interval 0: an idle connection gets nothing and stays. */
	assert_int_equal(wait_pdu(f, bhs, 2500, NULL), WAIT_NOTHING);
	/* A TTT we never issued, without ITT: nothing comes back (11.18.3). */
	nop_out(f, ISCSI_RSVD_TAG, 0x1234);
	assert_int_equal(wait_pdu(f, bhs, 200, NULL), WAIT_NOTHING);
	/* With an ITT it is still a ping of the initiator's, answered. */
	nop_out(f, 0x55, 0x1234);
	assert_int_equal(wait_pdu(f, bhs, 500, NULL), WAIT_PDU);
	assert_int_equal(bhs[0], ISCSI_OP_NOP_IN);
	assert_int_equal(get_be32(bhs + ISCSI_BHS_ITT), 0x55);
	assert_int_equal(get_be32(bhs + ISCSI_BHS_STATSN), statsn);
}

static void test_defaults(void **state)
{
	struct reactor *r;
	struct iscsi_server *srv;
	uint32_t interval, timeout;

	assert_int_equal(reactor_create(&r), 0);
	assert_int_equal(iscsi_server_create(r, &srv), 0);
	iscsi_server_get_nop(srv, &interval, &timeout);
	assert_int_equal(interval, ISCSI_NOP_INTERVAL_DEFAULT_S);
	assert_int_equal(timeout, ISCSI_NOP_TIMEOUT_DEFAULT_S);
	iscsi_server_destroy(srv);
	reactor_destroy(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_ping_answered_keeps_connection, setup,
					    fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_silence_drops_connection, setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_traffic_resets_idle_timer, setup,
					    fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_any_pdu_answers, setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_answer_keeps_cmdsn, setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_ttt_and_disabled, setup, fixture_teardown),
	    cmocka_unit_test(test_defaults),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
