/*
 * test_iscsi_login.c - the login state machine, discovery (SendTargets with
 * continuation), NOP, logout and the CmdSN window, driven as byte streams
 * over a socketpair into a real connection on a reactor.
 */
#include <errno.h>

#include "iscsi_test_util.h"

#define TGT "iqn.2026-11.test:tgt"

static int setup(void **state)
{
	*state = fixture_create(TGT, "alias1", "t0", 0x3000000000000002ull);
	return 0;
}

static const char g_sec[] = "InitiatorName=iqn.2026-11.test:init\0SessionType=Normal\0"
			    "TargetName=" TGT "\0AuthMethod=None\0";

static uint16_t login_normal(struct fixture *f)
{
	uint8_t rsp[48];
	char data[8192];
	static const char op[] = "HeaderDigest=None\0DataDigest=None\0"
				 "MaxRecvDataSegmentLength=65536\0ImmediateData=Yes\0"
				 "InitialR2T=No\0X-com.example.Foo=1\0";
	int n;

	n = login_exchange(f, ISCSI_LOGIN_FLAG_TRANSIT | (0 << 2) | 1, 7, KEYS(g_sec), rsp, data,
			   sizeof(data));
	assert_true(n > 0);
	assert_int_equal(rsp[0], ISCSI_OP_LOGIN_RSP);
	assert_int_equal(rsp[ISCSI_LOGIN_STATUS_CLASS], 0);
	assert_int_equal(rsp[1], ISCSI_LOGIN_FLAG_TRANSIT | 1);
	assert_true(has_key(data, n, "TargetPortalGroupTag=1"));
	assert_true(has_key(data, n, "AuthMethod=None"));
	assert_true(has_key(data, n, "TargetAlias=alias1"));

	n = login_exchange(f, ISCSI_LOGIN_FLAG_TRANSIT | (1 << 2) | 3, 7, KEYS(op), rsp, data,
			   sizeof(data));
	assert_true(n > 0);
	assert_int_equal(rsp[ISCSI_LOGIN_STATUS_CLASS], 0);
	assert_int_equal(rsp[1], ISCSI_LOGIN_FLAG_TRANSIT | (1 << 2) | 3);
	assert_true(has_key(data, n, "HeaderDigest=None"));
	assert_true(has_key(data, n, "InitialR2T=No"));
	assert_true(has_key(data, n, "X-com.example.Foo=NotUnderstood"));
	assert_true(has_key(data, n, "MaxRecvDataSegmentLength=262144"));
	assert_int_equal(get_be32(rsp + ISCSI_BHS_EXPCMDSN), 7);
	assert_int_equal(get_be32(rsp + ISCSI_BHS_MAXCMDSN), 7 + ISCSI_CMD_WINDOW - 1);
	assert_true(get_be16(rsp + ISCSI_LOGIN_TSIH) != 0);
	return get_be16(rsp + ISCSI_LOGIN_TSIH);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void test_digests(void **state)
{
	struct fixture *f = *state;
	uint8_t rsp[48], pdu[128], in[128];
	char data[8192];
	static const char op[] = "HeaderDigest=CRC32C,None\0DataDigest=CRC32C\0";
	size_t n = 0;
	ssize_t got;
	int len;

	assert_true(login_exchange(f, ISCSI_LOGIN_FLAG_TRANSIT | 1, 3, KEYS(g_sec), rsp, data,
				   sizeof(data)) > 0);
	len = login_exchange(f, ISCSI_LOGIN_FLAG_TRANSIT | (1 << 2) | 3, 3, KEYS(op), rsp, data,
			     sizeof(data));
	assert_true(has_key(data, len, "HeaderDigest=CRC32C"));
	assert_true(has_key(data, len, "DataDigest=CRC32C"));

	/* NOP-Out with both digests: BHS, HD, "abcde"+pad, DD */
	memset(pdu, 0, 48);
	pdu[0] = ISCSI_OP_NOP_OUT | ISCSI_OP_IMMEDIATE;
	pdu[1] = 0x80;
	put_be24(pdu + ISCSI_BHS_DATA_LEN, 5);
	put_be32(pdu + ISCSI_BHS_ITT, 0x77);
	put_be32(pdu + ISCSI_BHS_TTT, ISCSI_RSVD_TAG);
	put_be32(pdu + ISCSI_BHS_CMDSN, 3);
	put_le32(pdu + 48, iscsi_crc32c(pdu, 48));
	memcpy(pdu + 52, "abcde\0\0\0", 8);
	put_le32(pdu + 60, iscsi_crc32c(pdu + 52, 8));
	n = 64;
	assert_int_equal(write(f->fd, pdu, n), (ssize_t)n);
	pump(f);
	got = read(f->fd, in, sizeof(in));
	assert_int_equal(got, 64);
	assert_int_equal(in[0], ISCSI_OP_NOP_IN);
	assert_int_equal(get_le32(in + 48), iscsi_crc32c(in, 48));
	assert_memory_equal(in + 52, "abcde", 5);
	assert_int_equal(get_le32(in + 60), iscsi_crc32c(in + 52, 8));

	/* A bad data digest: Reject (Data Digest Error), the connection stays */
	pdu[60] ^= 0xff;
	assert_int_equal(write(f->fd, pdu, n), (ssize_t)n);
	pump(f);
	got = read(f->fd, in, sizeof(in));
	assert_int_equal(got, 48 + 4 + 48 + 4);
	assert_int_equal(in[0], ISCSI_OP_REJECT);
	assert_int_equal(in[ISCSI_REJECT_REASON], ISCSI_REJECT_DATA_DIGEST);

	/* A bad header digest can't be trusted for framing: connection dropped */
	put_be32(pdu + ISCSI_BHS_ITT, 0x78);
	assert_int_equal(write(f->fd, pdu, n), (ssize_t)n);
	pump(f);
	assert_int_equal(read(f->fd, in, sizeof(in)), 0);
}

static void scsi_cmd_bhs(uint8_t *bhs, uint8_t flags, uint32_t itt, uint32_t edtl, uint32_t cmdsn,
			 uint8_t op)
{
	memset(bhs, 0, 48);
	bhs[0] = ISCSI_OP_SCSI_CMD;
	bhs[1] = flags;
	put_be32(bhs + ISCSI_BHS_ITT, itt);
	put_be32(bhs + ISCSI_CMD_EDTL, edtl);
	put_be32(bhs + ISCSI_BHS_CMDSN, cmdsn);
	bhs[ISCSI_CMD_CDB] = op;
	bhs[ISCSI_CMD_CDB + 8] = 8; /* 8 blocks of 512 */
}

static void data_out(struct fixture *f, uint32_t itt, uint32_t ttt, uint32_t datasn, uint32_t off,
		     const char *data, size_t len)
{
	uint8_t bhs[48] = {ISCSI_OP_DATA_OUT, 0x80};

	put_be32(bhs + ISCSI_BHS_ITT, itt);
	put_be32(bhs + ISCSI_BHS_TTT, ttt);
	put_be32(bhs + ISCSI_DATA_DATASN, datasn);
	put_be32(bhs + ISCSI_DATA_OFFSET, off);
	send_pdu(f, bhs, data, len);
}

static void test_write_r2t_read_datain(void **state)
{
	struct fixture *f = *state;
	uint8_t bhs[48], rsp[48];
	static char wbuf[4096], data[70000];
	uint32_t ttt;

	login_normal(f);
	/* TEST UNIT READY consumes the power-on unit attention (SAM-5 5.14) */
	scsi_cmd_bhs(bhs, 0x80 | 1, 0x0f, 0, 7, 0x00);
	bhs[ISCSI_CMD_CDB + 8] = 0;
	send_pdu(f, bhs, NULL, 0);
	pump(f);
	assert_true(recv_pdu(f, rsp, data, sizeof(data)) >= 0);
	assert_int_equal(rsp[0], ISCSI_OP_SCSI_RSP);
	memset(wbuf, 'w', sizeof(wbuf));
	/* WRITE(10) 4 KiB, F=1, no immediate data: one R2T for all of it */
	scsi_cmd_bhs(bhs, 0x80 | ISCSI_CMD_FLAG_WRITE | 1, 0x10, 4096, 8, 0x2a);
	send_pdu(f, bhs, NULL, 0);
	assert_int_equal(recv_pdu(f, rsp, data, sizeof(data)), 0);
	assert_int_equal(rsp[0], ISCSI_OP_R2T);
	assert_int_equal(get_be32(rsp + ISCSI_R2T_OFFSET), 0);
	assert_int_equal(get_be32(rsp + ISCSI_R2T_DESIRED_LEN), 4096);
	assert_int_equal(get_be32(rsp + ISCSI_R2T_R2TSN), 0);
	ttt = get_be32(rsp + ISCSI_BHS_TTT);
	data_out(f, 0x10, ttt, 0, 0, wbuf, 2048);
	data_out(f, 0x10, ttt, 1, 2048, wbuf, 2048);
	pump(f);
	assert_int_equal(recv_pdu(f, rsp, data, sizeof(data)), 0);
	assert_int_equal(rsp[0], ISCSI_OP_SCSI_RSP);
	assert_int_equal(rsp[ISCSI_RSP_RESPONSE], 0);
	assert_int_equal(rsp[ISCSI_RSP_STATUS], 0);
	assert_int_equal(get_be32(rsp + ISCSI_BHS_EXPCMDSN), 9);

	/* READ(10) 4 KiB: Data-In with the status collapsed in (S bit) */
	scsi_cmd_bhs(bhs, 0x80 | ISCSI_CMD_FLAG_READ | 1, 0x11, 4096, 9, 0x28);
	send_pdu(f, bhs, NULL, 0);
	pump(f);
	assert_int_equal(recv_pdu(f, rsp, data, sizeof(data)), 4096);
	assert_int_equal(rsp[0], ISCSI_OP_DATA_IN);
	assert_int_equal(rsp[1], ISCSI_FLAG_FINAL | ISCSI_DATA_FLAG_STATUS);
	assert_int_equal(rsp[ISCSI_DATA_STATUS], 0);
	assert_memory_equal(data, wbuf, 4096);

	/* READ with EDTL 8 KiB for 4 KiB: underflow residual 4096 */
	scsi_cmd_bhs(bhs, 0x80 | ISCSI_CMD_FLAG_READ | 1, 0x12, 8192, 10, 0x28);
	send_pdu(f, bhs, NULL, 0);
	pump(f);
	assert_int_equal(recv_pdu(f, rsp, data, sizeof(data)), 4096);
	assert_true(rsp[1] & ISCSI_RSP_FLAG_UNDERFLOW);
	assert_int_equal(get_be32(rsp + ISCSI_DATA_RESIDUAL), 4096);

	/* A Data-Out with a wrong DataSN: Reject, then Target Failure */
	scsi_cmd_bhs(bhs, 0x80 | ISCSI_CMD_FLAG_WRITE | 1, 0x13, 4096, 11, 0x2a);
	send_pdu(f, bhs, NULL, 0);
	assert_int_equal(recv_pdu(f, rsp, data, sizeof(data)), 0);
	assert_int_equal(rsp[0], ISCSI_OP_R2T);
	data_out(f, 0x13, get_be32(rsp + ISCSI_BHS_TTT), 27, 0, wbuf, 4096);
	assert_int_equal(recv_pdu(f, rsp, data, sizeof(data)), 48);
	assert_int_equal(rsp[0], ISCSI_OP_REJECT);
	assert_int_equal(recv_pdu(f, rsp, data, sizeof(data)), 0);
	assert_int_equal(rsp[0], ISCSI_OP_SCSI_RSP);
	assert_int_equal(rsp[ISCSI_RSP_RESPONSE], ISCSI_RSP_TARGET_FAILURE);

	/* Commands queue behind a CmdSN gap and run once it is filled */
	scsi_cmd_bhs(bhs, 0x80 | ISCSI_CMD_FLAG_READ | 1, 0x15, 4096, 13, 0x28);
	send_pdu(f, bhs, NULL, 0);
	assert_int_equal(recv_pdu(f, rsp, data, sizeof(data)), -1);
	scsi_cmd_bhs(bhs, 0x80 | ISCSI_CMD_FLAG_READ | 1, 0x14, 4096, 12, 0x28);
	send_pdu(f, bhs, NULL, 0);
	pump(f);
	assert_int_equal(recv_pdu(f, rsp, data, sizeof(data)), 4096);
	assert_int_equal(recv_pdu(f, rsp, data, sizeof(data)), 4096);
	assert_int_equal(get_be32(rsp + ISCSI_BHS_EXPCMDSN), 14);
}

static void test_abort_task(void **state)
{
	struct fixture *f = *state;
	uint8_t bhs[48], rsp[48];
	static char data[8192];

	login_normal(f);
	/* A write waiting for Data-Out is aborted: no response for it */
	scsi_cmd_bhs(bhs, 0x80 | ISCSI_CMD_FLAG_WRITE | 1, 0x20, 4096, 7, 0x2a);
	send_pdu(f, bhs, NULL, 0);
	assert_int_equal(recv_pdu(f, rsp, data, sizeof(data)), 0);
	assert_int_equal(rsp[0], ISCSI_OP_R2T);
	memset(bhs, 0, 48);
	bhs[0] = ISCSI_OP_TMF_REQ | ISCSI_OP_IMMEDIATE;
	bhs[1] = 0x80 | ISCSI_TMF_ABORT_TASK;
	put_be32(bhs + ISCSI_BHS_ITT, 0x21);
	put_be32(bhs + ISCSI_TMF_REF_TAG, 0x20);
	put_be32(bhs + ISCSI_BHS_CMDSN, 8);
	put_be32(bhs + ISCSI_TMF_REF_CMDSN, 7);
	send_pdu(f, bhs, NULL, 0);
	assert_int_equal(recv_pdu(f, rsp, data, sizeof(data)), 0);
	assert_int_equal(rsp[0], ISCSI_OP_TMF_RSP);
	assert_int_equal(rsp[ISCSI_TMF_RESPONSE], ISCSI_TMF_RSP_COMPLETE);
	/* again: the task is gone and its CmdSN was received -> does not exist */
	put_be32(bhs + ISCSI_BHS_ITT, 0x22);
	send_pdu(f, bhs, NULL, 0);
	assert_int_equal(recv_pdu(f, rsp, data, sizeof(data)), 0);
	assert_int_equal(rsp[ISCSI_TMF_RESPONSE], ISCSI_TMF_RSP_NO_TASK);
	/* LU reset on a LUN that does not exist */
	bhs[1] = 0x80 | ISCSI_TMF_LUN_RESET;
	bhs[ISCSI_BHS_LUN + 1] = 9;
	put_be32(bhs + ISCSI_BHS_ITT, 0x23);
	send_pdu(f, bhs, NULL, 0);
	assert_int_equal(recv_pdu(f, rsp, data, sizeof(data)), 0);
	assert_int_equal(rsp[ISCSI_TMF_RESPONSE], ISCSI_TMF_RSP_NO_LUN);
	/* CLEAR ACA is not supported */
	bhs[1] = 0x80 | ISCSI_TMF_CLEAR_ACA;
	bhs[ISCSI_BHS_LUN + 1] = 0;
	send_pdu(f, bhs, NULL, 0);
	assert_int_equal(recv_pdu(f, rsp, data, sizeof(data)), 0);
	assert_int_equal(rsp[ISCSI_TMF_RESPONSE], ISCSI_TMF_RSP_NOT_SUPPORTED);
}

static void test_login_nop_logout(void **state)
{
	struct fixture *f = *state;
	uint8_t bhs[48], rsp[48];
	char data[8192];

	login_normal(f);

	/* NOP-Out ping: data comes back, StatSN advances */
	memset(bhs, 0, 48);
	bhs[0] = ISCSI_OP_NOP_OUT | ISCSI_OP_IMMEDIATE;
	bhs[1] = 0x80;
	put_be32(bhs + ISCSI_BHS_ITT, 0x22);
	put_be32(bhs + ISCSI_BHS_TTT, ISCSI_RSVD_TAG);
	put_be32(bhs + ISCSI_BHS_CMDSN, 7);
	send_pdu(f, bhs, "ping!", 5);
	assert_int_equal(recv_pdu(f, rsp, data, sizeof(data)), 5);
	assert_int_equal(rsp[0], ISCSI_OP_NOP_IN);
	assert_int_equal(get_be32(rsp + ISCSI_BHS_ITT), 0x22);
	assert_memory_equal(data, "ping!", 5);

	/* ITT 0xffffffff: no reply */
	put_be32(bhs + ISCSI_BHS_ITT, ISCSI_RSVD_TAG);
	send_pdu(f, bhs, NULL, 0);
	assert_int_equal(recv_pdu(f, rsp, data, sizeof(data)), -1);

	/* Unknown opcode: Reject carrying the header */
	memset(bhs, 0, 48);
	bhs[0] = 0x1c;
	send_pdu(f, bhs, NULL, 0);
	assert_int_equal(recv_pdu(f, rsp, data, sizeof(data)), 48);
	assert_int_equal(rsp[0], ISCSI_OP_REJECT);
	assert_int_equal(rsp[ISCSI_REJECT_REASON], ISCSI_REJECT_CMD_NOT_SUPPORTED);

	/* Logout: response, then the connection closes */
	memset(bhs, 0, 48);
	bhs[0] = ISCSI_OP_LOGOUT_REQ | ISCSI_OP_IMMEDIATE;
	bhs[1] = 0x80;
	put_be32(bhs + ISCSI_BHS_ITT, 0x33);
	put_be32(bhs + ISCSI_BHS_CMDSN, 7);
	send_pdu(f, bhs, NULL, 0);
	assert_int_equal(recv_pdu(f, rsp, data, sizeof(data)), 0);
	assert_int_equal(rsp[0], ISCSI_OP_LOGOUT_RSP);
	assert_int_equal(rsp[ISCSI_LOGOUT_RESPONSE], 0);
	assert_int_equal(read(f->fd, data, 1), 0);
}

static void expect_fail(struct fixture *f, uint16_t status)
{
	uint8_t rsp[48];
	char data[8192];

	assert_int_equal(recv_pdu(f, rsp, data, sizeof(data)), 0);
	assert_int_equal(rsp[0], ISCSI_OP_LOGIN_RSP);
	assert_int_equal(login_status(rsp), status);
	assert_int_equal(read(f->fd, data, 1), 0); /* closed */
}

static void test_target_not_found(void **state)
{
	struct fixture *f = *state;
	uint8_t bhs[48];
	static const char t[] =
	    "InitiatorName=iqn.2026-11.test:init\0TargetName=iqn.2026-11.test:nope\0";

	login_bhs(bhs, ISCSI_LOGIN_FLAG_TRANSIT | 1, 0, 1);
	send_pdu(f, bhs, t, sizeof(t) - 1);
	expect_fail(f, ISCSI_LOGIN_NOT_FOUND);
}

static void test_missing_initiator(void **state)
{
	struct fixture *f = *state;
	uint8_t bhs[48];
	static const char t[] = "TargetName=" TGT "\0";

	login_bhs(bhs, ISCSI_LOGIN_FLAG_TRANSIT | 1, 0, 1);
	send_pdu(f, bhs, t, sizeof(t) - 1);
	expect_fail(f, ISCSI_LOGIN_MISSING_PARAMETER);
}

static void test_bad_version(void **state)
{
	struct fixture *f = *state;
	uint8_t bhs[48];

	login_bhs(bhs, ISCSI_LOGIN_FLAG_TRANSIT | 1, 0, 1);
	bhs[ISCSI_LOGIN_VERSION_MAX] = 2;
	bhs[ISCSI_LOGIN_VERSION_MIN] = 1;
	send_pdu(f, bhs, g_sec, sizeof(g_sec) - 1);
	expect_fail(f, ISCSI_LOGIN_UNSUPPORTED_VERSION);
}

static void test_unknown_tsih(void **state)
{
	struct fixture *f = *state;
	uint8_t bhs[48];

	login_bhs(bhs, ISCSI_LOGIN_FLAG_TRANSIT | (0 << 2) | 3, 0x4242, 1);
	send_pdu(f, bhs, g_sec, sizeof(g_sec) - 1);
	expect_fail(f, ISCSI_LOGIN_NO_SESSION);
}

static void test_bad_transit(void **state)
{
	struct fixture *f = *state;
	uint8_t bhs[48];

	/* T=1 from the operational stage back to security */
	login_bhs(bhs, ISCSI_LOGIN_FLAG_TRANSIT | (1 << 2) | 0, 0, 1);
	send_pdu(f, bhs, g_sec, sizeof(g_sec) - 1);
	expect_fail(f, ISCSI_LOGIN_INITIATOR_ERROR);
}

static void test_malformed_keys(void **state)
{
	struct fixture *f = *state;
	uint8_t bhs[48];
	static const char t[] = "InitiatorName=iqn.2026-11.test:init\0garbage-without-equals\0";

	login_bhs(bhs, ISCSI_LOGIN_FLAG_TRANSIT | 1, 0, 1);
	send_pdu(f, bhs, t, sizeof(t) - 1);
	expect_fail(f, ISCSI_LOGIN_INITIATOR_ERROR);
}

static void test_non_login_first(void **state)
{
	struct fixture *f = *state;
	uint8_t bhs[48] = {ISCSI_OP_SCSI_CMD};
	char c;

	send_pdu(f, bhs, NULL, 0);
	assert_int_equal(read(f->fd, &c, 1), 0);
}

static void test_continued_login_keys(void **state)
{
	struct fixture *f = *state;
	uint8_t rsp[48];
	char data[8192];
	int n;

	/* First half with C=1: empty response; then the rest. */
	assert_int_equal(
	    login_exchange(f, ISCSI_LOGIN_FLAG_CONTINUE | 1, 1, g_sec, 20, rsp, data, sizeof(data)),
	    0);
	assert_int_equal(rsp[ISCSI_LOGIN_STATUS_CLASS], 0);
	n = login_exchange(f, ISCSI_LOGIN_FLAG_TRANSIT | 1, 1, g_sec + 20, sizeof(g_sec) - 1 - 20,
			   rsp, data, sizeof(data));
	assert_true(n > 0);
	assert_int_equal(rsp[ISCSI_LOGIN_STATUS_CLASS], 0);
	assert_true(has_key(data, n, "AuthMethod=None"));
}

static void test_discovery_sendtargets(void **state)
{
	struct fixture *f = *state;
	uint8_t bhs[48], rsp[48];
	char data[70000], all[70000];
	static const char disc[] = "InitiatorName=iqn.2026-11.test:init\0SessionType=Discovery\0"
				   "AuthMethod=None\0";
	static const char op[] = "MaxRecvDataSegmentLength=512\0MaxBurstLength=4096\0";
	struct scsi_target *extra[40];
	size_t total = 0;
	int n;

	for (int i = 0; i < 40; i++) {
		char name[128];
		snprintf(name, sizeof(name),
			 "iqn.2026-11.test:a-rather-long-target-name-number-%02d", i);
		assert_int_equal(scsi_target_create(name, &extra[i]), 0);
		assert_int_equal(iscsi_server_add_target(f->srv, extra[i], NULL, NULL), 0);
	}
	n = login_exchange(f, ISCSI_LOGIN_FLAG_TRANSIT | 1, 1, KEYS(disc), rsp, data, sizeof(data));
	assert_int_equal(rsp[ISCSI_LOGIN_STATUS_CLASS], 0);
	assert_false(has_key(data, n, "TargetPortalGroupTag=1"));
	n = login_exchange(f, ISCSI_LOGIN_FLAG_TRANSIT | (1 << 2) | 3, 1, KEYS(op), rsp, data,
			   sizeof(data));
	assert_int_equal(rsp[ISCSI_LOGIN_STATUS_CLASS], 0);
	assert_true(has_key(data, n, "MaxBurstLength=Irrelevant"));

	text_bhs(bhs, 0x55, 1);
	send_pdu(f, bhs, "SendTargets=All", 16);
	for (int round = 0; round < 100; round++) {
		n = recv_pdu(f, rsp, data, sizeof(data));
		assert_true(n > 0 && n <= 512);
		assert_int_equal(rsp[0], ISCSI_OP_TEXT_RSP);
		memcpy(all + total, data, (size_t)n);
		total += (size_t)n;
		if (rsp[1] & ISCSI_FLAG_FINAL) {
			break;
		}
		assert_true(rsp[1] & ISCSI_TEXT_FLAG_CONTINUE);
		assert_true(get_be32(rsp + ISCSI_BHS_TTT) != ISCSI_RSVD_TAG);
		/* 11.10.4: an empty Text Request with the TTT continues */
		put_be32(bhs + ISCSI_BHS_TTT, get_be32(rsp + ISCSI_BHS_TTT));
		send_pdu(f, bhs, NULL, 0);
	}
	assert_true(has_key(all, (int)total, "TargetName=" TGT));
	assert_true(has_key(all, (int)total,
			    "TargetName=iqn.2026-11.test:a-rather-long-target-name-number-39"));
	/* socketpair: the local address is not an IP one; the tpgt still shows */
	assert_non_null(memmem(all, total, ",1", 2));

	/* SCSI commands are rejected in discovery sessions */
	memset(bhs, 0, 48);
	bhs[0] = ISCSI_OP_SCSI_CMD | ISCSI_OP_IMMEDIATE;
	put_be32(bhs + ISCSI_BHS_ITT, 0x66);
	send_pdu(f, bhs, NULL, 0);
	assert_int_equal(recv_pdu(f, rsp, data, sizeof(data)), 48);
	assert_int_equal(rsp[0], ISCSI_OP_REJECT);

	close(f->fd);
	f->fd = -1;
	pump(f);
	for (int i = 0; i < 40; i++) {
		char name[128];
		snprintf(name, sizeof(name),
			 "iqn.2026-11.test:a-rather-long-target-name-number-%02d", i);
		assert_int_equal(iscsi_server_remove_target(f->srv, name), 0);
		scsi_target_destroy(extra[i]);
	}
}

static void test_reinstatement(void **state)
{
	struct fixture *f = *state;
	int sv[2], first = f->fd;
	char c;

	login_normal(f);
	assert_int_equal(iscsi_server_target_sessions(f->srv, TGT), 1);
	/* Same initiator name + ISID, TSIH 0, on a new connection */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	assert_int_equal(iscsi_conn_create(f->srv, sv[1], 1), 0);
	f->fd = sv[0];
	login_normal(f);
	assert_int_equal(read(first, &c, 1), 0); /* old session closed */
	close(first);
	assert_int_equal(iscsi_server_target_sessions(f->srv, TGT), 1);
	{
		struct iscsi_session_info info[4];
		assert_int_equal(iscsi_server_list_sessions(f->srv, info, 4), 1);
		assert_string_equal(info[0].initiator, "iqn.2026-11.test:init");
		assert_int_equal(iscsi_server_close_session(f->srv, info[0].id), 0);
		assert_int_equal(iscsi_server_close_session(f->srv, info[0].id), -ENOENT);
	}
}

static void test_cmdsn_window(void **state)
{
	struct iscsi_session *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	s->exp_cmdsn = 0xfffffff0u;
	s->max_cmdsn = s->exp_cmdsn + ISCSI_CMD_WINDOW - 1;
	/* in order: accepted and ExpCmdSN advances (across the wrap) */
	for (uint32_t sn = 0xfffffff0u; sn != 0x10; sn++) {
		assert_true(iscsi_session_cmdsn_ok(s, sn, false));
	}
	assert_int_equal(s->exp_cmdsn, 0x10);
	/* immediate: always processed, no advance */
	assert_true(iscsi_session_cmdsn_ok(s, 0x5000, true));
	assert_int_equal(s->exp_cmdsn, 0x10);
	/* too low / too high: ignored */
	assert_false(iscsi_session_cmdsn_ok(s, 0x0f, false));
	assert_false(iscsi_session_cmdsn_ok(s, s->max_cmdsn + 1, false));
	assert_true(iscsi_session_cmdsn_ok(s, s->max_cmdsn, false));
	/* MaxCmdSN grows with completed commands, never shrinks */
	s->in_window = 100;
	iscsi_session_update_window(s);
	assert_int_equal(s->max_cmdsn, 0x10 + ISCSI_CMD_WINDOW - 1);
	s->in_window = 0;
	s->exp_cmdsn += 5;
	iscsi_session_update_window(s);
	assert_int_equal(s->max_cmdsn, 0x15 + ISCSI_CMD_WINDOW - 1);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_login_nop_logout, setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_digests, setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_write_r2t_read_datain, setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_abort_task, setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_target_not_found, setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_missing_initiator, setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_bad_version, setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_tsih, setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_bad_transit, setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_malformed_keys, setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_non_login_first, setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_continued_login_keys, setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_discovery_sendtargets, setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_reinstatement, setup, fixture_teardown),
	    cmocka_unit_test(test_cmdsn_window),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
