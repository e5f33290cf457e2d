/*
 * test_scsi_sbc_ext.c - ORWRITE(16), WRITE ATOMIC(16), READ DEFECT DATA(10/12)
 * and SANITIZE through the SCSI layer, plus the Block Limits atomic fields.
 */
#include "scsi_test_util.h"

#include "scsi/scsi_internal.h"

#define MIB (1024ull * 1024)
#define BS 512
#define NBLOCKS (MIB / BS)

static void test_orwrite(void **state)
{
	struct fx *f = *state;
	struct gate_store *g = f->st->priv;
	struct scsi_cmd c, rd;
	uint8_t cdb[16], rcdb[16];
	uint8_t data[2 * BS];

	memset(g->mem + 3 * BS, 0xa0, 2 * BS);
	memset(data, 0x05, sizeof(data));
	cdb_lba16(cdb, 0x8b, 3, 2);
	run_cmd(f, &c, cdb, 16, data, sizeof(data));
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(g->mem[3 * BS], 0xa5);
	assert_int_equal(g->mem[5 * BS - 1], 0xa5);
	assert_int_equal(g->mem[5 * BS], 0);
	/* ORPROTECT is not supported; out of range; zero blocks. */
	cdb[1] = 0x20;
	run_cmd(f, &c, cdb, 16, data, sizeof(data));
	assert_sense(&c, 5, 0x24, 0);
	cdb_lba16(cdb, 0x8b, NBLOCKS - 1, 2);
	run_cmd(f, &c, cdb, 16, data, sizeof(data));
	assert_sense(&c, 5, 0x21, 0);
	cdb_lba16(cdb, 0x8b, 0, 0);
	run_cmd(f, &c, cdb, 16, NULL, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);

	/* Atomic: an overlapping read submitted meanwhile sees the ORed result. */
	g->gate = true;
	memset(data, 0x50, BS);
	cdb_lba16(cdb, 0x8b, 3, 1);
	cmd_init(f, &c, &f->nexus, cdb, 16, data, BS);
	scsi_cmd_submit(&c);
	cdb_lba16(rcdb, 0x88, 3, 1);
	cmd_init(f, &rd, &f->nexus, rcdb, 16, NULL, 0);
	scsi_cmd_submit(&rd);
	assert_int_equal(g->nheld, 1); /* the ORWRITE's read only */
	g->gate = false;
	gate_release(f->st);
	fx_wait(f, 2);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(rd.status, SCSI_STATUS_GOOD);
	assert_int_equal(rd.data_in[0], 0xf5);
	scsi_cmd_fini(&rd);
}

static void test_write_atomic(void **state)
{
	struct fx *f = *state;
	struct gate_store *g = f->st->priv;
	struct scsi_cmd c;
	uint8_t cdb[16] = { 0x9c };
	uint8_t data[4 * BS];
	uint8_t inq[6] = { 0x12, 0x01, 0xb0, 0, 255, 0 };

	memset(data, 0x77, sizeof(data));
	put_be64(cdb + 2, 10);
	put_be16(cdb + 12, 4);
	run_cmd(f, &c, cdb, 16, data, sizeof(data));
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(g->mem[10 * BS], 0x77);
	assert_int_equal(g->mem[14 * BS - 1], 0x77);
	/* An ATOMIC BOUNDARY needs MAXIMUM ATOMIC BOUNDARY SIZE > 0. */
	put_be16(cdb + 10, 1);
	run_cmd(f, &c, cdb, 16, data, sizeof(data));
	assert_sense(&c, 5, 0x24, 0);
	put_be16(cdb + 10, 0);
	put_be64(cdb + 2, NBLOCKS - 2);
	run_cmd(f, &c, cdb, 16, data, sizeof(data));
	assert_sense(&c, 5, 0x21, 0);
	/* Block Limits: MAXIMUM ATOMIC TRANSFER LENGTH = MAXIMUM TRANSFER LENGTH. */
	run_cmd(f, &c, inq, 6, NULL, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(get_be32(c.data_in + 44), get_be32(c.data_in + 8));
	assert_int_equal(get_be32(c.data_in + 48), 0);
	assert_int_equal(get_be32(c.data_in + 52), 0);
	scsi_cmd_fini(&c);
}

static void test_read_defect(void **state)
{
	struct fx *f = *state;
	struct scsi_cmd c;

	run_cmd(f, &c, (uint8_t[16]){ 0x37, 0, 0x1d, 0, 0, 0, 0, 0, 32, 0 }, 10, NULL, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(c.data_in_len, 4);
	assert_int_equal(c.data_in[1], 0x1d);
	assert_int_equal(get_be16(c.data_in + 2), 0);
	scsi_cmd_fini(&c);
	run_cmd(f, &c, (uint8_t[16]){ 0xb7, 0x0b, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0 }, 12, NULL, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(c.data_in_len, 8);
	assert_int_equal(c.data_in[1], 0x0b);
	assert_int_equal(get_be32(c.data_in + 4), 0);
	scsi_cmd_fini(&c);
	/* Format 111b is reserved. */
	run_cmd(f, &c, (uint8_t[16]){ 0x37, 0, 0x07, 0, 0, 0, 0, 0, 32, 0 }, 10, NULL, 0);
	assert_sense(&c, 5, 0x24, 0);
}

static void test_sanitize(void **state)
{
	struct fx *f = *state;
	struct gate_store *g = f->st->priv;
	struct scsi_cmd c, tur, inq;
	uint8_t ow[10] = { 0x48, 0x01, 0, 0, 0, 0, 0, 0, 6, 0 };
	uint8_t be[10] = { 0x48, 0x02, 0, 0, 0, 0, 0, 0, 0, 0 };
	uint8_t param[6] = { 0x81, 0, 0, 2, 0xab, 0xcd };

	/* OVERWRITE, 1 pass, 2-byte pattern repeated over every block. */
	run_cmd(f, &c, ow, 10, param, sizeof(param));
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(g->mem[0], 0xab);
	assert_int_equal(g->mem[1], 0xcd);
	assert_int_equal(g->mem[MIB - 1], 0xcd);
	/* Two passes with INVERT: the second pass writes the inverted pattern. */
	param[0] = 0x82;
	run_cmd(f, &c, ow, 10, param, sizeof(param));
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(g->mem[0], (uint8_t)~0xab);
	/* Bad parameter lists: count 0, pattern length mismatch, list too short. */
	param[0] = 0x00;
	run_cmd(f, &c, ow, 10, param, sizeof(param));
	assert_sense(&c, 5, 0x26, 0);
	param[0] = 0x01;
	param[3] = 1;
	run_cmd(f, &c, ow, 10, param, sizeof(param));
	assert_sense(&c, 5, 0x24, 0);
	ow[8] = 4;
	run_cmd(f, &c, ow, 10, param, sizeof(param));
	assert_sense(&c, 5, 0x24, 0);
	/* Reserved bits and bytes, CRYPTO ERASE, IMMED. */
	be[1] = 0x42;
	run_cmd(f, &c, be, 10, NULL, 0);
	assert_sense(&c, 5, 0x24, 0);
	be[1] = 0x02;
	be[4] = 1;
	run_cmd(f, &c, be, 10, NULL, 0);
	assert_sense(&c, 5, 0x24, 0);
	be[4] = 0;
	be[1] = 0x03;
	run_cmd(f, &c, be, 10, NULL, 0);
	assert_sense(&c, 5, 0x24, 0);
	be[1] = 0x82;
	run_cmd(f, &c, be, 10, NULL, 0);
	assert_sense(&c, 5, 0x24, 0);

	/* BLOCK ERASE: while it runs, TUR is NOT READY 04/1B and INQUIRY works. */
	be[1] = 0x02;
	g->gate = true;
	cmd_init(f, &c, &f->nexus, be, 10, NULL, 0);
	scsi_cmd_submit(&c);
	assert_int_equal(g->nheld, 1);
	assert_int_equal(g->held[0]->op, STORE_OP_UNMAP);
	run_cmd(f, &tur, (uint8_t[16]){ 0 }, 6, NULL, 0);
	assert_sense(&tur, 2, 0x04, 0x1b);
	run_cmd(f, &inq, (uint8_t[16]){ 0x12, 0, 0, 0, 36, 0 }, 6, NULL, 0);
	assert_int_equal(inq.status, SCSI_STATUS_GOOD);
	scsi_cmd_fini(&inq);
	g->gate = false;
	gate_release(f->st);
	fx_wait(f, 1);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(g->mem[0], 0);
	assert_int_equal(g->mem[MIB - 1], 0);
	run_cmd(f, &tur, (uint8_t[16]){ 0 }, 6, NULL, 0);
	assert_int_equal(tur.status, SCSI_STATUS_GOOD);
	/* EXIT FAILURE MODE takes no parameter list. */
	run_cmd(f, &c, (uint8_t[16]){ 0x48, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0 }, 10, NULL, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
}

/* An 8 MiB gate-store LU whose store prefers 2 MiB ios (as a chunked store prefers its chunk). */
static int fx_setup_chunked(void **state)
{
	return fx_setup_gate_sized(state, 8 * MIB, 2 * MIB);
}

static int g_want_held;

static void poll_held(void *arg)
{
	struct fx *f = arg;
	struct gate_store *g = f->st->priv;

	if (g->nheld >= g_want_held) {
		reactor_stop(f->r);
	} else {
		assert_int_equal(reactor_post(f->r, poll_held, f), 0);
	}
}

/* Run the reactor until the gate holds n ios. */
static void wait_held(struct fx *f, int n)
{
	g_want_held = n;
	assert_int_equal(reactor_post(f->r, poll_held, f), 0);
	assert_int_equal(reactor_run(f->r), 0);
}

/* Every held io is a whole, aligned piece of `piece` bytes of operation op. */
static void assert_pieces(struct gate_store *g, enum store_op op, uint64_t piece)
{
	for (int i = 0; i < g->nheld; i++) {
		assert_int_equal(g->held[i]->op, op);
		assert_int_equal(g->held[i]->offset % piece, 0);
		assert_int_equal(g->held[i]->len, piece);
		for (int j = 0; j < i; j++) {
			assert_true(g->held[i]->offset != g->held[j]->offset);
		}
	}
}

/*
 * SANITIZE OVERWRITE cuts the medium into whole pieces of the store's
 * preferred size, keeps them in flight together, starts a pass only after
 * the previous one completed (INVERT flips the pattern in between), flushes
 * last, and stops submitting at the first failure.
 */
static void test_sanitize_pieces(void **state)
{
	struct fx *f = *state;
	struct gate_store *g = f->st->priv;
	struct scsi_cmd c;
	uint8_t ow[10] = { 0x48, 0x01, 0, 0, 0, 0, 0, 0, 6, 0 };
	uint8_t param[6] = { 0x82, 0, 0, 2, 0x5a, 0x0f };

	g->gate = true;
	cmd_init(f, &c, &f->nexus, ow, 10, param, sizeof(param));
	scsi_cmd_submit(&c);
	assert_int_equal(g->nheld, 4); /* all four 2 MiB pieces of pass 1 at once */
	assert_pieces(g, STORE_OP_WRITE, 2 * MIB);
	assert_int_equal(((uint8_t *)g->held[0]->buf)[0], 0x5a);
	gate_release(f->st);
	wait_held(f, 4);
	assert_pieces(g, STORE_OP_WRITE, 2 * MIB);
	assert_int_equal(((uint8_t *)g->held[3]->buf)[1], (uint8_t)~0x0f);
	assert_int_equal(g->mem[8 * MIB - 1], 0x0f); /* pass 1 landed before pass 2 began */
	gate_release(f->st);
	wait_held(f, 1);
	assert_int_equal(g->held[0]->op, STORE_OP_FLUSH);
	g->gate = false;
	gate_release(f->st);
	fx_wait(f, 1);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(g->mem[0], (uint8_t)~0x5a);
	assert_int_equal(g->mem[8 * MIB - 1], (uint8_t)~0x0f);
	assert_int_equal(g->nwrites, 8);

	/* The pieces of a pass fail: CHECK CONDITION once all are back, no second pass. */
	g->nsubmitted = 0;
	g->gate = true;
	cmd_init(f, &c, &f->nexus, ow, 10, param, sizeof(param));
	scsi_cmd_submit(&c);
	assert_int_equal(g->nheld, 4);
	g->fail_status = -EIO;
	gate_release(f->st);
	fx_wait(f, 1);
	g->fail_status = 0;
	g->gate = false;
	assert_sense(&c, 3, 0x0c, 0);
	assert_int_equal(g->nsubmitted, 4);

	/* BLOCK ERASE: one UNMAP covers this small medium, then a flush. */
	run_cmd(f, &c, (uint8_t[16]){ 0x48, 0x02, 0, 0, 0, 0, 0, 0, 0, 0 }, 10, NULL, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(g->mem[0], 0);
	assert_int_equal(g->mem[8 * MIB - 1], 0);
}

/* A 48 MiB medium without a preferred size: 1 MiB pieces, at most 32 in flight. */
static void test_sanitize_inflight_cap(void **state)
{
	struct fx *f = *state;
	struct gate_store *g = f->st->priv;
	struct scsi_cmd c;
	uint8_t ow[10] = { 0x48, 0x01, 0, 0, 0, 0, 0, 0, 5, 0 };
	uint8_t param[5] = { 0x01, 0, 0, 1, 0x3c };

	g->gate = true;
	cmd_init(f, &c, &f->nexus, ow, 10, param, sizeof(param));
	scsi_cmd_submit(&c);
	assert_int_equal(g->nheld, 32);
	assert_pieces(g, STORE_OP_WRITE, MIB);
	g->gate = false;
	gate_release(f->st);
	fx_wait(f, 1);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(g->nwrites, 48);
	for (uint64_t off = 0; off < 48 * MIB; off += MIB / 2) {
		assert_int_equal(g->mem[off], 0x3c);
	}
}

static int fx_setup_big(void **state)
{
	return fx_setup_gate_sized(state, 48 * MIB, 0);
}

/*
 * UNMAP with many descriptors keeps 8 in flight, completes once the last one
 * does, reports the first failure, and stops submitting after a failure or
 * an abort.
 */
static void unmap_list(uint8_t *param, unsigned ndesc, uint64_t first_lba)
{
	memset(param, 0, 8 + 16 * ndesc);
	put_be16(param, (uint16_t)(6 + 16 * ndesc));
	put_be16(param + 2, (uint16_t)(16 * ndesc));
	for (unsigned i = 0; i < ndesc; i++) {
		/* descriptor 3 is empty (skipped), 5 overlaps 4 */
		put_be64(param + 8 + 16 * i, first_lba + (i == 5 ? 4 * 8 + 2 : i * 8));
		put_be32(param + 8 + 16 * i + 8, i == 3 ? 0 : 4);
	}
}

static void test_unmap_concurrent(void **state)
{
	struct fx *f = *state;
	struct gate_store *g = f->st->priv;
	uint8_t cdb[10] = { 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	uint8_t param[8 + 16 * 12];
	struct scsi_cmd c;

	memset(g->mem, 0xee, 1024 * 1024);
	unmap_list(param, 12, 0);
	cdb[8] = sizeof(param);
	g->gate = true;
	cmd_init(f, &c, &f->nexus, cdb, 10, param, sizeof(param));
	scsi_cmd_submit(&c);
	assert_int_equal(g->nheld, 8); /* 8 of the 11 non-empty ones at once */
	for (int i = 0; i < 8; i++) {
		assert_int_equal(g->held[i]->op, STORE_OP_UNMAP);
	}
	g->gate = false;
	gate_release(f->st);
	fx_wait(f, 1);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(g->nsubmitted, 11);
	for (unsigned i = 0; i < 12; i++) {
		/* descriptor i names blocks i*8..i*8+3, except 3 (empty) and 5 (34..37) */
		uint8_t want = (i == 3 || i == 5) ? 0xee : 0;

		assert_int_equal(g->mem[i * 8 * 512], want);
		assert_int_equal(g->mem[(i * 8 + 4) * 512 - 1], want);
		assert_int_equal(g->mem[(i * 8 + 4) * 512], i == 4 ? 0 : 0xee);
	}
	assert_int_equal(g->mem[38 * 512 - 1], 0);
	assert_int_equal(g->mem[38 * 512], 0xee);

	/* All 8 in flight fail: one CHECK CONDITION, nothing more is submitted. */
	g->nsubmitted = 0;
	g->gate = true;
	cmd_init(f, &c, &f->nexus, cdb, 10, param, sizeof(param));
	scsi_cmd_submit(&c);
	assert_int_equal(g->nheld, 8);
	g->fail_status = -EIO;
	gate_release(f->st);
	fx_wait(f, 1);
	g->fail_status = 0;
	assert_int_equal(c.status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(c.sense[2] & 0x0f, 3);
	assert_int_equal(g->nsubmitted, 8);

	/* Aborted with 8 in flight: TASK ABORTED once they are back, nothing more sent. */
	g->nsubmitted = 0;
	cmd_init(f, &c, &f->nexus, cdb, 10, param, sizeof(param));
	scsi_cmd_submit(&c);
	assert_int_equal(g->nheld, 8);
	scsi_cmd_abort(&c);
	g->gate = false;
	gate_release(f->st);
	fx_wait(f, 1);
	assert_int_equal(c.status, SCSI_STATUS_TASK_ABORTED);
	assert_int_equal(g->nsubmitted, 8);
}

static void test_rsoc_new_ops(void **state)
{
	struct fx *f = *state;
	struct scsi_cmd c;
	static const uint8_t ops[] = { 0x8b, 0x9c, 0x37, 0xb7 };

	for (size_t i = 0; i < sizeof(ops); i++) {
		uint8_t cdb[12] = { 0xa3, 0x0c, 0x01, ops[i], 0, 0, 0, 0, 1, 0, 0, 0 };

		run_cmd(f, &c, cdb, 12, NULL, 0);
		assert_int_equal(c.status, SCSI_STATUS_GOOD);
		assert_int_equal(c.data_in[1] & 0x07, 3);
		assert_int_equal(c.data_in[4], ops[i]);
		scsi_cmd_fini(&c);
	}
	/* SANITIZE: per service action; CRYPTO ERASE not supported. */
	run_cmd(f, &c, (uint8_t[16]){ 0xa3, 0x0c, 0x02, 0x48, 0, 2, 0, 0, 1, 0, 0, 0 }, 12, NULL,
		0);
	assert_int_equal(c.data_in[1] & 0x07, 3);
	scsi_cmd_fini(&c);
	run_cmd(f, &c, (uint8_t[16]){ 0xa3, 0x0c, 0x02, 0x48, 0, 3, 0, 0, 1, 0, 0, 0 }, 12, NULL,
		0);
	assert_int_equal(c.data_in[1] & 0x07, 1);
	scsi_cmd_fini(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_orwrite, fx_setup_gate, fx_teardown),
		cmocka_unit_test_setup_teardown(test_write_atomic, fx_setup_gate, fx_teardown),
		cmocka_unit_test_setup_teardown(test_read_defect, fx_setup_gate, fx_teardown),
		cmocka_unit_test_setup_teardown(test_sanitize, fx_setup_gate, fx_teardown),
		cmocka_unit_test_setup_teardown(test_sanitize_pieces, fx_setup_chunked, fx_teardown),
		cmocka_unit_test_setup_teardown(test_sanitize_inflight_cap, fx_setup_big, fx_teardown),
		cmocka_unit_test_setup_teardown(test_rsoc_new_ops, fx_setup_gate, fx_teardown),
		cmocka_unit_test_setup_teardown(test_unmap_concurrent, fx_setup_gate, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
