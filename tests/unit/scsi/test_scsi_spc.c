/*
 * test_scsi_spc.c - LUN encoding, the sense table, CDB parsing, INQUIRY/VPD,
 * REPORT LUNS, READ CAPACITY, unit attentions and MODE SENSE/SELECT.
 */
#include "scsi_test_util.h"

#include "scsi/scsi_internal.h"

#define MIB (1024ull * 1024)

static int setup_ram(void **state)
{
	struct reactor *r;
	struct store *st;
	char err[128];

	assert_int_equal(reactor_create(&r), 0);
	assert_int_equal(store_open_uri("ram:?size=8M", r, &st, err, sizeof(err)), 0);
	return fx_setup_store(state, st, NULL, false);
}

static int setup_gate_wc(void **state)
{
	struct reactor *r;

	assert_int_equal(reactor_create(&r), 0);
	return fx_setup_store(state, gate_store_new(r, 1 * MIB, 512, STORE_CAP_WRITE_CACHE), NULL,
			      false);
}

static void test_lun_codec(void **state)
{
	uint8_t b[8];

	scsi_lun_encode(5, b);
	assert_int_equal(b[0], 0);
	assert_int_equal(b[1], 5);
	assert_int_equal(scsi_lun_decode(b), 5);
	scsi_lun_encode(256, b);
	assert_int_equal(b[0], 0x41);
	assert_int_equal(b[1], 0x00);
	assert_int_equal(scsi_lun_decode(b), 256);
	scsi_lun_encode(SCSI_MAX_LUN, b);
	assert_int_equal(b[0], 0x7f);
	assert_int_equal(b[1], 0xff);
	assert_int_equal(scsi_lun_decode(b), SCSI_MAX_LUN);
	/* Other methods and second-level addressing are rejected. */
	memset(b, 0, 8);
	b[0] = 0x80;
	assert_true(scsi_lun_decode(b) == SCSI_LUN_INVALID);
	memset(b, 0, 8);
	b[2] = 1;
	assert_true(scsi_lun_decode(b) == SCSI_LUN_INVALID);
	memset(b, 0, 8);
	b[0] = 0x01; /* peripheral with a bus id */
	assert_true(scsi_lun_decode(b) == SCSI_LUN_INVALID);
}

static void test_sense_table(void **state)
{
	struct scsi_cmd c;
	uint8_t k, asc, ascq;

	assert_true(scsi_reason_lookup(SENSE_LBA_OUT_OF_RANGE, &k, &asc, &ascq));
	assert_int_equal(k, 5);
	assert_int_equal(asc, 0x21);
	assert_true(scsi_reason_lookup(SENSE_SPACE_ALLOC_FAILED, &k, &asc, &ascq));
	assert_int_equal(k, 7);
	assert_int_equal(asc, 0x27);
	assert_int_equal(ascq, 0x07);
	assert_true(scsi_reason_lookup(SENSE_BECOMING_READY, &k, &asc, &ascq));
	assert_int_equal(k, 2);
	for (int r = SENSE_NO_SENSE; r < SENSE_REASON_COUNT; r++) {
		assert_true(scsi_reason_name(r)[0] != '?');
	}
	assert_int_equal(scsi_errno_reason(-EIO, false), SENSE_READ_ERROR);
	assert_int_equal(scsi_errno_reason(-EIO, true), SENSE_WRITE_ERROR);
	assert_int_equal(scsi_errno_reason(-EILSEQ, false), SENSE_READ_ERROR);
	assert_int_equal(scsi_errno_reason(-ENOSPC, true), SENSE_SPACE_ALLOC_FAILED);
	assert_int_equal(scsi_errno_reason(-EAGAIN, true), SENSE_BECOMING_READY);
	assert_int_equal(scsi_errno_reason(-EROFS, true), SENSE_WRITE_PROTECTED);
	assert_int_equal(scsi_errno_reason(-EPERM, true), SENSE_INTERNAL_FAILURE);

	memset(&c, 0, sizeof(c));
	scsi_build_sense(&c, scsi_field(&c, SENSE_INVALID_FIELD_CDB, 1, 7), 0, 0);
	assert_sense(&c, 5, 0x24, 0);
	assert_int_equal(c.sense[15], 0x80 | 0x40 | 0x08 | 7);
	assert_int_equal(get_be16(c.sense + 16), 1);
	memset(&c, 0, sizeof(c));
	scsi_set_info(&c, 1234);
	scsi_build_sense(&c, SENSE_MISCOMPARE_CAW, 0, 0);
	assert_sense(&c, 0xe, 0x1d, 0);
	assert_int_equal(c.sense[0], 0xf0);
	assert_int_equal(get_be32(c.sense + 3), 1234);
	memset(&c, 0, sizeof(c));
	scsi_build_sense(&c, SENSE_RESERVATION_CONFLICT, 0, 0);
	assert_int_equal(c.status, SCSI_STATUS_RESERVATION_CONFLICT);
	assert_int_equal(c.sense_len, 0);
}

static void test_ua_lifecycle(void **state)
{
	struct fx *f = *state;
	struct scsi_cmd c;
	uint8_t tur[6] = { 0 };
	uint8_t inq[6] = { 0x12, 0, 0, 0, 96, 0 };
	uint8_t rs[6] = { 0x03, 0, 0, 0, 96, 0 };

	/* INQUIRY neither reports nor consumes POWER ON OCCURRED. */
	run_cmd(f, &c, inq, 6, NULL, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	scsi_cmd_fini(&c);
	run_cmd(f, &c, tur, 6, NULL, 0);
	assert_sense(&c, 6, 0x29, 0x00);
	run_cmd(f, &c, tur, 6, NULL, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);

	/* Capacity change: REQUEST SENSE reports and clears it as data. */
	scsi_lu_capacity_changed(f->lu);
	run_cmd(f, &c, rs, 6, NULL, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(c.data_in_len, 18);
	assert_int_equal(c.data_in[2], 6);
	assert_int_equal(c.data_in[12], 0x2a);
	assert_int_equal(c.data_in[13], 0x09);
	scsi_cmd_fini(&c);
	run_cmd(f, &c, rs, 6, NULL, 0);
	assert_int_equal(c.data_in[2], 0);
	scsi_cmd_fini(&c);

	/* LU reset: BUS DEVICE RESET for other nexuses, generic reset UA for the requester. */
	clear_ua(f, &f->nexus2);
	scsi_lu_reset(f->lu, &f->nexus);
	run_cmd(f, &c, tur, 6, NULL, 0);
	assert_sense(&c, 6, 0x29, 0x00);
	run_cmd_n(f, &c, &f->nexus2, tur, 6, NULL, 0);
	assert_sense(&c, 6, 0x29, 0x03);
	scsi_lu_reset(f->lu, NULL);
	run_cmd(f, &c, tur, 6, NULL, 0);
	assert_sense(&c, 6, 0x29, 0x03);
	clear_ua(f, &f->nexus2);

	/* REPORTED LUNS DATA HAS CHANGED from the target. */
	scsi_target_raise_ua(f->t, &f->nexus2, 0x3f, 0x0e);
	run_cmd(f, &c, tur, 6, NULL, 0);
	assert_sense(&c, 6, 0x3f, 0x0e);
	run_cmd_n(f, &c, &f->nexus2, tur, 6, NULL, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);

	/* A nexus that goes away loses its state and starts over. */
	scsi_nexus_gone(f->t, &f->nexus2);
	run_cmd_n(f, &c, &f->nexus2, tur, 6, NULL, 0);
	assert_sense(&c, 6, 0x29, 0x00);
}

static void test_inquiry(void **state)
{
	struct fx *f = *state;
	struct scsi_cmd c;
	uint8_t cdb[6] = { 0x12, 0, 0, 0, 255, 0 };
	const uint8_t *p;
	bool have_naa = false, have_name = false, have_port = false;

	clear_ua(f, &f->nexus);
	run_cmd(f, &c, cdb, 6, NULL, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(c.data_in_len, 74);
	assert_int_equal(c.xfer_len, 74);
	assert_int_equal(c.data_in[0], 0);
	assert_int_equal(c.data_in[2], 6);
	assert_int_equal(c.data_in[3], 0x12);
	assert_int_equal(c.data_in[7], 0x02);
	assert_memory_equal(c.data_in + 8, "S3TGT   ", 8);
	scsi_cmd_fini(&c);

	/* Allocation length truncates. */
	cdb[4] = 5;
	run_cmd(f, &c, cdb, 6, NULL, 0);
	assert_int_equal(c.data_in_len, 5);
	scsi_cmd_fini(&c);

	/* Page code without EVPD: invalid field, pointer to byte 2. */
	cdb[2] = 0x80;
	cdb[4] = 255;
	run_cmd(f, &c, cdb, 6, NULL, 0);
	assert_sense(&c, 5, 0x24, 0);
	assert_int_equal(c.sense[15] & 0xc0, 0xc0);
	assert_int_equal(get_be16(c.sense + 16), 2);

	/* VPD 0x00 */
	cdb[1] = 1;
	cdb[2] = 0;
	run_cmd(f, &c, cdb, 6, NULL, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(c.data_in[3], 6);
	assert_int_equal(c.data_in[4 + 5], 0xb2);
	scsi_cmd_fini(&c);

	/* VPD 0x80 */
	cdb[2] = 0x80;
	run_cmd(f, &c, cdb, 6, NULL, 0);
	assert_int_equal(c.data_in[3], 7);
	assert_memory_equal(c.data_in + 4, "SER0001", 7);
	scsi_cmd_fini(&c);

	/* VPD 0x83 */
	cdb[2] = 0x83;
	run_cmd(f, &c, cdb, 6, NULL, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	for (p = c.data_in + 4; p < c.data_in + 4 + get_be16(c.data_in + 2); p += 4 + p[3]) {
		if ((p[1] & 0x0f) == 3) {
			have_naa = true;
			assert_int_equal(p[4] >> 4, 3);
		}
		if ((p[1] & 0x0f) == 4) {
			have_port = true;
			assert_int_equal(get_be16(p + 6), 1);
		}
		if ((p[1] & 0x3f) == 0x18) {
			have_name = true;
			assert_string_equal((const char *)p + 4, "iqn.2024-01.test:tgt,t,0x0001");
		}
	}
	assert_true(have_naa && have_name && have_port);
	scsi_cmd_fini(&c);

	/* VPD 0xB0 / 0xB2 */
	cdb[2] = 0xb0;
	run_cmd(f, &c, cdb, 6, NULL, 0);
	assert_int_equal(get_be16(c.data_in + 2), 0x3c);
	assert_int_equal(c.data_in[5], 255);
	assert_int_equal(get_be32(c.data_in + 8), (8u << 20) / 512);
	assert_int_equal(get_be32(c.data_in + 24), 256);
	assert_true(get_be64(c.data_in + 36) > 0);
	scsi_cmd_fini(&c);
	cdb[2] = 0xb2;
	run_cmd(f, &c, cdb, 6, NULL, 0);
	assert_int_equal(c.data_in[5], 0xe4);
	assert_int_equal(c.data_in[6] & 7, 2);
	scsi_cmd_fini(&c);
	cdb[2] = 0x42;
	run_cmd(f, &c, cdb, 6, NULL, 0);
	assert_sense(&c, 5, 0x24, 0);

	/* No LU at LUN 7: qualifier 011b / type 1Fh; TUR -> LU NOT SUPPORTED. */
	cdb[1] = 0;
	cdb[2] = 0;
	cmd_init(f, &c, &f->nexus, cdb, 6, NULL, 0);
	c.lun = 7;
	scsi_cmd_submit(&c);
	fx_wait(f, 1);
	assert_int_equal(c.data_in[0], 0x7f);
	scsi_cmd_fini(&c);
	memset(cdb, 0, 6);
	cmd_init(f, &c, &f->nexus, cdb, 6, NULL, 0);
	c.lun = 7;
	scsi_cmd_submit(&c);
	fx_wait(f, 1);
	assert_sense(&c, 5, 0x25, 0);
}

static void test_report_luns_and_capacity(void **state)
{
	struct fx *f = *state;
	struct scsi_cmd c;
	uint8_t rl[12] = { 0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0 };
	uint8_t rc10[10] = { 0x25 };
	uint8_t rc16[16] = { 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0 };
	struct store *st2;
	struct scsi_lu *lu2;
	char err[64];
	struct scsi_lu_params p = { .serial = "S2" };

	assert_int_equal(store_open_uri("ram:?size=1M", f->r, &st2, err, sizeof(err)), 0);
	assert_int_equal(scsi_lu_create(st2, &p, &lu2), 0);
	assert_int_equal(scsi_target_add_lu(f->t, 300, lu2), 0);
	assert_int_equal(scsi_target_add_lu(f->t, 300, lu2), -EEXIST);
	assert_int_equal(scsi_target_add_lu(f->t, 20000, lu2), -ERANGE);

	run_cmd(f, &c, rl, 12, NULL, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(get_be32(c.data_in), 16);
	assert_int_equal(c.data_in[8 + 1], 0);
	assert_int_equal(c.data_in[16], 0x41);
	assert_int_equal(c.data_in[17], 0x2c);
	scsi_cmd_fini(&c);
	rl[8] = 0;
	rl[9] = 8; /* allocation length < 16 */
	run_cmd(f, &c, rl, 12, NULL, 0);
	assert_sense(&c, 5, 0x24, 0);
	rl[8] = 1;
	rl[9] = 0;
	rl[2] = 3;
	run_cmd(f, &c, rl, 12, NULL, 0);
	assert_sense(&c, 5, 0x24, 0);

	clear_ua(f, &f->nexus);
	run_cmd(f, &c, rc10, 10, NULL, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(get_be32(c.data_in), 8 * MIB / 512 - 1);
	assert_int_equal(get_be32(c.data_in + 4), 512);
	scsi_cmd_fini(&c);
	run_cmd(f, &c, rc16, 16, NULL, 0);
	assert_int_equal(c.data_in_len, 32);
	assert_int_equal(get_be64(c.data_in), 8 * MIB / 512 - 1);
	assert_int_equal(c.data_in[14], 0xc0);
	scsi_cmd_fini(&c);
	/* SERVICE ACTION IN with an unknown service action. */
	rc16[1] = 0x11;
	run_cmd(f, &c, rc16, 16, NULL, 0);
	assert_sense(&c, 5, 0x24, 0);
	assert_int_equal(get_be16(c.sense + 16), 1);

	lu2 = scsi_target_remove_lu(f->t, 300);
	assert_non_null(lu2);
	scsi_lu_destroy(lu2);
	assert_null(scsi_target_remove_lu(f->t, 300));
}

struct cdb_case {
	uint8_t cdb[16];
	uint8_t len;
	uint8_t key, asc;
};

static void test_cdb_parsing(void **state)
{
	struct fx *f = *state;
	struct scsi_cmd c;
	uint8_t buf[4096] = { 0 };
	/* nblocks = 16384 blocks of 512 bytes (8 MiB device). */
	static const struct cdb_case cases[] = {
		{ { 0x00 }, 6, 0, 0 },					/* TUR */
		{ { 0x00, 0, 0, 0, 0, 0x04 }, 6, 5, 0x24 },		/* NACA */
		{ { 0x00, 0, 0, 0, 0, 0x01 }, 6, 5, 0x24 },		/* LINK */
		{ { 0xc0 }, 6, 5, 0x20 },				/* unknown opcode */
		{ { 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0 }, 10, 0, 0 },	/* READ(10) */
		{ { 0x28, 0x20, 0, 0, 0, 0, 0, 0, 1, 0 }, 10, 5, 0x24 }, /* RDPROTECT */
		{ { 0x28, 0x18, 0, 0, 0, 0, 0, 0, 1, 0 }, 10, 0, 0 },	/* DPO FUA */
		{ { 0x28, 0, 0, 0, 0x3f, 0xff, 0, 0, 1, 0 }, 10, 0, 0 }, /* last block */
		{ { 0x28, 0, 0, 0, 0x40, 0x00, 0, 0, 1, 0 }, 10, 5, 0x21 }, /* beyond end */
		{ { 0x28, 0, 0, 0, 0x3f, 0xff, 0, 0, 2, 0 }, 10, 5, 0x21 }, /* straddles end */
		{ { 0x28, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0 }, 10, 5, 0x21 },
		{ { 0x28, 0, 0, 0, 0x40, 0x00, 0, 0, 0, 0 }, 10, 0, 0 }, /* 0 blocks at end */
		{ { 0x88, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1 }, 16, 5,
		  0x21 },						/* READ(16) wraps */
		{ { 0xa8, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x01 }, 12, 5, 0x21 }, /* > medium */
		{ { 0x08, 0, 0, 0, 0, 0 }, 6, 0, 0 },		/* READ(6) 0 = 256 */
		{ { 0x2f, 0x04, 0, 0, 0, 0, 0, 0, 0, 0 }, 10, 5, 0x24 }, /* BYTCHK 10b */
		{ { 0x2f, 0x00, 0, 0, 0, 0, 0, 0, 4, 0 }, 10, 0, 0 },	/* VERIFY no compare */
		{ { 0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, 10, 0, 0 },	/* SYNC CACHE */
		{ { 0x35, 0x02, 0, 0, 0, 0, 0, 0, 0, 0 }, 10, 0, 0 },	/* SYNC CACHE IMMED */
		{ { 0x34, 0, 0, 0, 0, 0, 0, 0, 8, 0 }, 10, 0, 0 },	/* PRE-FETCH */
		{ { 0x90, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0, 1 }, 16, 5, 0x21 },
		{ { 0x1b, 0, 0, 0, 1, 0 }, 6, 0, 0 },			/* START STOP */
		{ { 0x1a, 0, 0x3f, 0, 255, 0 }, 6, 0, 0 },		/* MODE SENSE all */
		{ { 0x1a, 0, 0xff, 0, 255, 0 }, 6, 5, 0x39 },		/* saved values */
		{ { 0x1a, 0, 0x05, 0, 255, 0 }, 6, 5, 0x24 },		/* unknown page */
		{ { 0x1a, 0, 0x08, 1, 255, 0 }, 6, 5, 0x24 },		/* subpage */
		{ { 0x15, 0x01, 0, 0, 0, 0 }, 6, 5, 0x24 },		/* MODE SELECT SP */
		{ { 0x42, 0x01, 0, 0, 0, 0, 0, 0, 0, 0 }, 10, 5, 0x24 }, /* UNMAP ANCHOR */
		{ { 0x41, 0x10, 0, 0, 0, 0, 0, 0, 1, 0 }, 10, 5, 0x24 }, /* WS ANCHOR */
		{ { 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, 16, 0, 0 }, /* CAW 0 */
		{ { 0x9e, 0x12, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0, 32, 0, 0 }, 16, 5, 0x21 },
		{ { 0xa3, 0x0c, 0x00, 0, 0, 0, 0, 0, 0x10, 0, 0, 0 }, 12, 0, 0 }, /* RSOC */
		{ { 0xa3, 0x0c, 0x01, 0x9e, 0, 0, 0, 0, 0x10, 0, 0, 0 }, 12, 5, 0x24 },
		{ { 0xa3, 0x0c, 0x02, 0x28, 0, 0, 0, 0, 0x10, 0, 0, 0 }, 12, 5, 0x24 },
		{ { 0xa3, 0x0d, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0 }, 12, 0, 0 }, /* RSTMF */
		{ { 0xa3, 0x1f, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0 }, 12, 5, 0x24 },
		{ { 0x5f, 0x00, 0, 0, 0, 0, 0, 0, 0x10, 0 }, 10, 5, 0x1a }, /* PROUT len 16 */
		{ { 0x5e, 0x07, 0, 0, 0, 0, 0, 0, 0x10, 0 }, 10, 5, 0x24 }, /* PRIN SA 7 */
	};

	clear_ua(f, &f->nexus);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct cdb_case *k = &cases[i];

		run_cmd(f, &c, k->cdb, k->len, buf, 0);
		if (k->key == 0) {
			if (c.status != SCSI_STATUS_GOOD) {
				fail_msg("case %zu (op 0x%02x): status 0x%x sense %x/%02x", i,
					 k->cdb[0], c.status, c.sense[2], c.sense[12]);
			}
		} else if (c.status != SCSI_STATUS_CHECK_CONDITION ||
			   (c.sense[2] & 0xf) != k->key || c.sense[12] != k->asc) {
			fail_msg("case %zu (op 0x%02x): status 0x%x sense %x/%02x, want %x/%02x", i,
				 k->cdb[0], c.status, c.sense[2], c.sense[12], k->key, k->asc);
		}
		scsi_cmd_fini(&c);
	}
	/* RSOC: all commands, then one command with timeouts. */
	{
		uint8_t all[12] = { 0xa3, 0x0c, 0x80, 0, 0, 0, 0, 0, 0x40, 0, 0, 0 };
		uint8_t one[12] = { 0xa3, 0x0c, 0x81, 0x2a, 0, 0, 0, 0, 0x40, 0, 0, 0 };
		bool unmap = false;

		run_cmd(f, &c, all, 12, NULL, 0);
		assert_int_equal(c.status, SCSI_STATUS_GOOD);
		for (uint32_t o = 4; o < c.data_in_len; o += 20) {
			assert_int_equal(c.data_in[o + 5] & 0x02, 0x02);
			assert_int_equal(get_be16(c.data_in + o + 8), 0x0a);
			if (c.data_in[o] == 0x42) {
				unmap = true;
			}
		}
		assert_true(unmap);
		scsi_cmd_fini(&c);
		run_cmd(f, &c, one, 12, NULL, 0);
		assert_int_equal(c.data_in[1], 0x83);
		assert_int_equal(get_be16(c.data_in + 2), 10);
		assert_int_equal(c.data_in[4], 0x2a);
		assert_int_equal(c.data_in_len, 4 + 10 + 12);
		scsi_cmd_fini(&c);
	}
}

static void test_mode_wce(void **state)
{
	struct fx *f = *state;
	struct gate_store *g = f->st->priv;
	struct scsi_cmd c;
	uint8_t ms[6] = { 0x1a, 0x08, 0x08, 0, 255, 0 };
	uint8_t ms_chg[6] = { 0x1a, 0x08, 0x48, 0, 255, 0 };
	uint8_t sel[6] = { 0x15, 0x10, 0, 0, 0, 0 };
	uint8_t wr[10] = { 0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
	uint8_t page[4 + 20];
	uint8_t data[512] = { 1 };

	clear_ua(f, &f->nexus);
	clear_ua(f, &f->nexus2);
	run_cmd(f, &c, ms, 6, NULL, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(c.data_in_len, 4 + 20);
	assert_int_equal(c.data_in[3], 0); /* DBD */
	assert_int_equal(c.data_in[4], 0x08);
	assert_int_equal(c.data_in[6] & 0x04, 0x04); /* WCE */
	memcpy(page, c.data_in, sizeof(page));
	scsi_cmd_fini(&c);
	run_cmd(f, &c, ms_chg, 6, NULL, 0);
	assert_int_equal(c.data_in[6], 0x04);
	scsi_cmd_fini(&c);

	run_cmd(f, &c, wr, 10, data, 512);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_false(g->last_fua);

	/* Clear WCE. */
	page[0] = 0;
	page[6] &= (uint8_t)~0x04;
	sel[4] = sizeof(page);
	run_cmd(f, &c, sel, 6, page, sizeof(page));
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	run_cmd(f, &c, ms, 6, NULL, 0);
	assert_int_equal(c.data_in[6] & 0x04, 0);
	scsi_cmd_fini(&c);
	run_cmd(f, &c, wr, 10, data, 512);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_true(g->last_fua);
	/* The other nexus hears MODE PARAMETERS CHANGED. */
	run_cmd_n(f, &c, &f->nexus2, (uint8_t[6]){ 0 }, 6, NULL, 0);
	assert_sense(&c, 6, 0x2a, 0x01);

	/* A non-changeable bit is rejected with a parameter-list field pointer. */
	page[6] |= 0x01; /* RCD */
	run_cmd(f, &c, sel, 6, page, sizeof(page));
	assert_sense(&c, 5, 0x26, 0);
	assert_int_equal(get_be16(c.sense + 16), 6);
	/* Short parameter list. */
	sel[4] = 30;
	run_cmd(f, &c, sel, 6, page, sizeof(page));
	assert_sense(&c, 5, 0x0e, 0x03);

	/* LU reset restores the default. */
	scsi_lu_reset(f->lu, NULL);
	clear_ua(f, &f->nexus);
	run_cmd(f, &c, ms, 6, NULL, 0);
	assert_int_equal(c.data_in[6] & 0x04, 0x04);
	scsi_cmd_fini(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lun_codec),
		cmocka_unit_test(test_sense_table),
		cmocka_unit_test_setup_teardown(test_ua_lifecycle, setup_ram, fx_teardown),
		cmocka_unit_test_setup_teardown(test_inquiry, setup_ram, fx_teardown),
		cmocka_unit_test_setup_teardown(test_report_luns_and_capacity, setup_ram,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_cdb_parsing, setup_ram, fx_teardown),
		cmocka_unit_test_setup_teardown(test_mode_wce, setup_gate_wc, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
