/*
 * test_scsi_sbc.c - block I/O through the SCSI layer: READ/WRITE, WRITE SAME,
 * UNMAP validation, COMPARE AND WRITE (miscompare and atomicity), task
 * attributes and abort, store error mapping, persistent reservations + APTPL.
 */
#include "scsi_test_util.h"

#include <unistd.h>

#include "scsi/scsi_internal.h"

#define MIB (1024ull * 1024)
#define BS 512

static int setup_ram(void **state)
{
	struct reactor *r;
	struct store *st;
	char err[128];

	assert_int_equal(reactor_create(&r), 0);
	assert_int_equal(store_open_uri("ram:?size=8M", r, &st, err, sizeof(err)), 0);
	fx_setup_store(state, st, NULL, false);
	clear_ua(*state, &((struct fx *)*state)->nexus);
	return 0;
}

static void test_read_write(void **state)
{
	struct fx *f = *state;
	struct scsi_cmd c;
	uint8_t cdb[16];
	uint8_t *buf = malloc(64 * BS);

	assert_non_null(buf);
	for (int i = 0; i < 64 * BS; i++) {
		buf[i] = (uint8_t)(i * 7);
	}
	cdb_lba16(cdb, 0x8a, 100, 64);
	run_cmd(f, &c, cdb, 16, buf, 64 * BS);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(c.xfer_len, 64 * BS);
	cdb_lba16(cdb, 0x88, 100, 64);
	run_cmd(f, &c, cdb, 16, NULL, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(c.data_in_len, 64 * BS);
	assert_memory_equal(c.data_in, buf, 64 * BS);
	scsi_cmd_fini(&c);

	/* Short Data-Out (overflow): GOOD, only the whole blocks received are written. */
	cdb_lba16(cdb, 0x8a, 200, 2);
	memset(buf, 0x5a, 2 * BS);
	run_cmd(f, &c, cdb, 16, buf, BS + 100);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(c.xfer_len, 2 * BS);
	cdb_lba16(cdb, 0x88, 200, 2);
	run_cmd(f, &c, cdb, 16, NULL, 0);
	assert_int_equal(c.data_in[BS - 1], 0x5a);
	assert_int_equal(c.data_in[BS], 0);
	scsi_cmd_fini(&c);
	for (int i = 0; i < 2 * BS; i++) {
		buf[i] = (uint8_t)(i * 7);
	}
	/* Short Data-Out for VERIFY cannot be cut short. */
	cdb_lba16(cdb, 0x8f, 100, 2);
	cdb[1] = 0x02;
	run_cmd(f, &c, cdb, 16, buf, BS);
	assert_sense(&c, 5, 0x0e, 0x03);
	cdb_lba16(cdb, 0x8a, 0, 2);
	/* WRPROTECT */
	cdb[1] = 0x40;
	run_cmd(f, &c, cdb, 16, buf, 2 * BS);
	assert_sense(&c, 5, 0x24, 0);
	assert_int_equal(c.sense[15] & 0x0f, 0x08 | 7);

	/* VERIFY BYTCHK=1: match, then miscompare at byte 3 of block 1. */
	cdb_lba16(cdb, 0x8f, 100, 2);
	cdb[1] = 0x02;
	run_cmd(f, &c, cdb, 16, buf, 2 * BS);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	buf[BS + 3] ^= 0xff;
	run_cmd(f, &c, cdb, 16, buf, 2 * BS);
	assert_sense(&c, 0xe, 0x1d, 0);
	assert_int_equal(get_be32(c.sense + 3), BS + 3);
	free(buf);
}

static void test_write_same_unmap(void **state)
{
	struct fx *f = *state;
	struct scsi_cmd c;
	uint8_t cdb[16];
	uint8_t blk[BS];
	uint8_t param[8 + 3 * 16];
	uint8_t unmap[10] = { 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0 };

	memset(blk, 0xa5, BS);
	/* WRITE SAME(16) of a pattern over 3000 blocks (several pieces). */
	cdb_lba16(cdb, 0x93, 10, 3000);
	run_cmd(f, &c, cdb, 16, blk, BS);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	cdb_lba16(cdb, 0x88, 10, 3000);
	run_cmd(f, &c, cdb, 16, NULL, 0);
	for (size_t i = 0; i < 3000u * BS; i++) {
		if (c.data_in[i] != 0xa5) {
			fail_msg("byte %zu not written", i);
		}
	}
	scsi_cmd_fini(&c);
	/* Data-Out must be exactly one block. */
	cdb_lba16(cdb, 0x93, 10, 4);
	run_cmd(f, &c, cdb, 16, blk, BS / 2);
	assert_int_equal(c.status, SCSI_STATUS_CHECK_CONDITION);
	/* Over MAXIMUM WRITE SAME LENGTH; 0 blocks = to the end, which is over it too. */
	cdb_lba16(cdb, 0x93, 0, (8u << 20) / BS + 1);
	run_cmd(f, &c, cdb, 16, blk, BS);
	assert_sense(&c, 5, 0x24, 0);
	/* NDOB + UNMAP deallocates: reads back zero. */
	cdb_lba16(cdb, 0x93, 10, 100);
	cdb[1] = 0x08 | 0x01;
	run_cmd(f, &c, cdb, 16, NULL, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	cdb_lba16(cdb, 0x88, 10, 101);
	run_cmd(f, &c, cdb, 16, NULL, 0);
	assert_int_equal(c.data_in[0], 0);
	assert_int_equal(c.data_in[100 * BS - 1], 0);
	assert_int_equal(c.data_in[100 * BS], 0xa5);
	scsi_cmd_fini(&c);
	/* UNMAP=1 with a non-zero block still deallocates (LBPRZ: reads zeros). */
	cdb_lba16(cdb, 0x93, 110, 5);
	cdb[1] = 0x08;
	run_cmd(f, &c, cdb, 16, blk, BS);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	cdb_lba16(cdb, 0x88, 110, 1);
	run_cmd(f, &c, cdb, 16, NULL, 0);
	assert_int_equal(c.data_in[0], 0);
	scsi_cmd_fini(&c);

	/* UNMAP: good list, then the validation errors. */
	memset(param, 0, sizeof(param));
	put_be16(param, 6 + 16);
	put_be16(param + 2, 16);
	put_be64(param + 8, 200);
	put_be32(param + 16, 10);
	unmap[8] = 24;
	run_cmd(f, &c, unmap, 10, param, 24);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	put_be64(param + 8, 16384 - 5); /* runs past the end */
	run_cmd(f, &c, unmap, 10, param, 24);
	assert_sense(&c, 5, 0x21, 0);
	put_be64(param + 8, UINT64_MAX - 2); /* would wrap in 64 bits */
	run_cmd(f, &c, unmap, 10, param, 24);
	assert_sense(&c, 5, 0x21, 0);
	put_be64(param + 8, 0);
	put_be32(param + 16, (256u << 20) / BS + 1); /* > MAXIMUM UNMAP LBA COUNT */
	run_cmd(f, &c, unmap, 10, param, 24);
	assert_int_equal(c.status, SCSI_STATUS_CHECK_CONDITION);
	unmap[8] = 4; /* shorter than the header */
	run_cmd(f, &c, unmap, 10, param, 4);
	assert_sense(&c, 5, 0x1a, 0);
	unmap[8] = 0; /* nothing to do */
	run_cmd(f, &c, unmap, 10, NULL, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
}

static void test_caw(void **state)
{
	struct fx *f = *state;
	struct gate_store *g = f->st->priv;
	struct scsi_cmd caw, wr, rd;
	uint8_t cdb[16], wcdb[16];
	uint8_t data[2 * BS];
	uint8_t other[BS];

	/* Block 5 holds zeros: compare zeros, write 0x11. */
	memset(data, 0, BS);
	memset(data + BS, 0x11, BS);
	memset(cdb, 0, 16);
	cdb[0] = 0x89;
	put_be64(cdb + 2, 5);
	cdb[13] = 1;
	run_cmd(f, &caw, cdb, 16, data, 2 * BS);
	assert_int_equal(caw.status, SCSI_STATUS_GOOD);
	assert_int_equal(g->mem[5 * BS], 0x11);
	/* Same again: miscompare at offset 0, nothing written. */
	memset(data + BS, 0x22, BS);
	data[0] = 0;
	run_cmd(f, &caw, cdb, 16, data, 2 * BS);
	assert_sense(&caw, 0xe, 0x1d, 0);
	assert_int_equal(caw.sense[0], 0xf0);
	assert_int_equal(get_be32(caw.sense + 3), 0);
	assert_int_equal(g->mem[5 * BS], 0x11);
	/* Wrong Data-Out size. */
	run_cmd(f, &caw, cdb, 16, data, BS);
	assert_sense(&caw, 5, 0x24, 0);
	assert_int_equal(get_be16(caw.sense + 16), 13);

	/*
	 * Atomicity: hold the CAW's read in the store, send an overlapping WRITE.
	 * The WRITE must not reach the store until the CAW has written.
	 */
	memset(data, 0x11, BS);
	memset(data + BS, 0x33, BS);
	memset(other, 0x44, BS);
	g->gate = true;
	cmd_init(f, &caw, &f->nexus, cdb, 16, data, 2 * BS);
	scsi_cmd_submit(&caw);
	cdb_lba16(wcdb, 0x8a, 5, 1);
	cmd_init(f, &wr, &f->nexus, wcdb, 16, other, BS);
	scsi_cmd_submit(&wr);
	assert_int_equal(g->nheld, 1); /* only the CAW's read */
	assert_int_equal(scsi_lu_busy(f->lu), 2);
	gate_release(f->st);
	/* Let the CAW's read complete; its write is then held. */
	while (g->nheld == 0) {
		struct scsi_cmd tur;

		run_cmd(f, &tur, (uint8_t[16]){ 0 }, 6, NULL, 0);
	}
	assert_int_equal(g->nheld, 1);
	assert_int_equal(g->held[0]->op, STORE_OP_WRITE);
	assert_int_equal(((uint8_t *)g->held[0]->buf)[0], 0x33);
	gate_release(f->st);
	g->gate = false;
	fx_wait(f, 2);
	assert_int_equal(caw.status, SCSI_STATUS_GOOD);
	assert_int_equal(wr.status, SCSI_STATUS_GOOD);
	assert_int_equal(g->mem[5 * BS], 0x44); /* the WRITE came after the CAW */

	/* PRE-FETCH(10) uses the 10-byte layout. */
	run_cmd(f, &rd, (uint8_t[16]){ 0x34, 0, 0, 0, 0x07, 0xff, 0, 0, 1, 0 }, 10, NULL, 0);
	assert_int_equal(rd.status, SCSI_STATUS_GOOD);

	/* An overlapping read waits for the CAW: it sees all or none of it. */
	g->gate = true;
	memset(data, 0x44, BS);
	cmd_init(f, &caw, &f->nexus, cdb, 16, data, 2 * BS);
	scsi_cmd_submit(&caw);
	cdb_lba16(wcdb, 0x88, 5, 1);
	cmd_init(f, &rd, &f->nexus, wcdb, 16, NULL, 0);
	scsi_cmd_submit(&rd);
	assert_int_equal(g->nheld, 1);
	g->gate = false;
	gate_release(f->st);
	fx_wait(f, 2);
	assert_int_equal(rd.status, SCSI_STATUS_GOOD);
	assert_int_equal(rd.data_in[0], 0x33); /* the CAW wrote its second half */
	scsi_cmd_fini(&rd);
}

static void test_ordered_and_abort(void **state)
{
	struct fx *f = *state;
	struct gate_store *g = f->st->priv;
	struct scsi_cmd a, b, o, h;
	uint8_t rd[16];

	cdb_lba16(rd, 0x88, 0, 1);
	g->gate = true;
	cmd_init(f, &a, &f->nexus, rd, 16, NULL, 0);
	scsi_cmd_submit(&a);
	cmd_init(f, &o, &f->nexus, rd, 16, NULL, 0);
	o.attr = SCSI_ATTR_ORDERED;
	scsi_cmd_submit(&o);
	cmd_init(f, &b, &f->nexus, rd, 16, NULL, 0);
	scsi_cmd_submit(&b);
	cmd_init(f, &h, &f->nexus, rd, 16, NULL, 0);
	h.attr = SCSI_ATTR_HEAD_OF_QUEUE;
	scsi_cmd_submit(&h);
	/* a and h run; o waits for a, b waits for o. */
	assert_int_equal(g->nheld, 2);
	assert_int_equal(scsi_lu_busy(f->lu), 4);

	/* Abort b while queued: completes at once, aborted. */
	scsi_cmd_abort(&b);
	fx_wait(f, 1);
	assert_true(b.aborted);
	assert_int_equal(b.status, SCSI_STATUS_TASK_ABORTED);
	assert_int_equal(g->nheld, 2);

	/* Abort a in flight: completes when the store returns; then o runs. */
	scsi_cmd_abort(&a);
	gate_release(f->st);
	fx_wait(f, 2);
	assert_int_equal(a.status, SCSI_STATUS_TASK_ABORTED);
	assert_int_equal(h.status, SCSI_STATUS_GOOD);
	assert_int_equal(g->nheld, 1); /* o */
	g->gate = false;
	gate_release(f->st);
	fx_wait(f, 1);
	assert_int_equal(o.status, SCSI_STATUS_GOOD);
	scsi_cmd_fini(&a);
	scsi_cmd_fini(&h);
	scsi_cmd_fini(&o);

	/* ACA attribute is refused. */
	cmd_init(f, &a, &f->nexus, rd, 16, NULL, 0);
	a.attr = SCSI_ATTR_ACA;
	scsi_cmd_submit(&a);
	fx_wait(f, 1);
	assert_int_equal(a.status, SCSI_STATUS_CHECK_CONDITION);
}

static void test_store_errors(void **state)
{
	struct fx *f = *state;
	struct gate_store *g = f->st->priv;
	struct scsi_cmd c;
	uint8_t cdb[16];
	uint8_t buf[BS] = { 0 };

	g->fail_status = -EIO;
	cdb_lba16(cdb, 0x88, 0, 1);
	run_cmd(f, &c, cdb, 16, NULL, 0);
	assert_sense(&c, 3, 0x11, 0);
	assert_null(c.data_in);
	cdb_lba16(cdb, 0x8a, 0, 1);
	run_cmd(f, &c, cdb, 16, buf, BS);
	assert_sense(&c, 3, 0x0c, 0);
	g->fail_status = -ENOSPC;
	run_cmd(f, &c, cdb, 16, buf, BS);
	assert_sense(&c, 7, 0x27, 0x07);
	g->fail_status = -ETIMEDOUT;
	run_cmd(f, &c, cdb, 16, buf, BS);
	assert_sense(&c, 2, 0x04, 0x01);
	/* The store lost the volume to another daemon (store_ops.fenced). */
	g->fail_status = -EROFS;
	run_cmd(f, &c, cdb, 16, buf, BS);
	assert_sense(&c, 7, 0x27, 0);
	g->fail_status = -EBADF;
	run_cmd(f, &c, cdb, 16, buf, BS);
	assert_sense(&c, 4, 0x44, 0);
	g->fail_status = 0;
}

/* ---------------------------------------------------------------- PR */

static void prout(struct fx *f, struct scsi_cmd *c, const struct scsi_nexus *n, uint8_t sa,
		  uint8_t type, uint64_t key, uint64_t sa_key, uint8_t flags)
{
	static uint8_t p[24];
	uint8_t cdb[10] = { 0x5f, sa, type, 0, 0, 0, 0, 0, 24, 0 };

	memset(p, 0, sizeof(p));
	put_be64(p, key);
	put_be64(p + 8, sa_key);
	p[20] = flags;
	run_cmd_n(f, c, n, cdb, 10, p, 24);
}

static void test_pr(void **state)
{
	struct fx *f = *state;
	struct scsi_cmd c;
	uint8_t rk[10] = { 0x5e, 0, 0, 0, 0, 0, 0, 0x10, 0, 0 };
	uint8_t rr[10] = { 0x5e, 1, 0, 0, 0, 0, 0, 0x10, 0, 0 };
	uint8_t fs[10] = { 0x5e, 3, 0, 0, 0, 0, 0, 0x10, 0, 0 };
	uint8_t wr[16], rd[16];
	uint8_t buf[BS] = { 0 };

	clear_ua(f, &f->nexus2);
	cdb_lba16(wr, 0x8a, 0, 1);
	cdb_lba16(rd, 0x88, 0, 1);
	prout(f, &c, &f->nexus, 0, 0, 0, 0xaa, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	prout(f, &c, &f->nexus2, 0, 0, 0, 0xbb, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	/* Wrong key -> conflict. */
	prout(f, &c, &f->nexus2, 0, 0, 0x99, 0xcc, 0);
	assert_int_equal(c.status, SCSI_STATUS_RESERVATION_CONFLICT);
	run_cmd(f, &c, rk, 10, NULL, 0);
	assert_int_equal(get_be32(c.data_in), 2);
	assert_int_equal(get_be32(c.data_in + 4), 16);
	scsi_cmd_fini(&c);

	/* nexus 1 reserves Write Exclusive. */
	prout(f, &c, &f->nexus, 1, 0x1, 0xaa, 0, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	run_cmd(f, &c, rr, 10, NULL, 0);
	assert_int_equal(get_be32(c.data_in + 4), 16);
	assert_int_equal(get_be64(c.data_in + 8), 0xaa);
	assert_int_equal(c.data_in[21], 0x1);
	scsi_cmd_fini(&c);
	run_cmd_n(f, &c, &f->nexus2, wr, 16, buf, BS);
	assert_int_equal(c.status, SCSI_STATUS_RESERVATION_CONFLICT);
	run_cmd_n(f, &c, &f->nexus2, rd, 16, NULL, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	scsi_cmd_fini(&c);
	run_cmd(f, &c, wr, 16, buf, BS);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	/* RESERVE(6) conflicts with a persistent reservation. */
	run_cmd(f, &c, (uint8_t[6]){ 0x16 }, 6, NULL, 0);
	assert_int_equal(c.status, SCSI_STATUS_RESERVATION_CONFLICT);

	/* READ FULL STATUS has both registrants with iSCSI TransportIDs. */
	run_cmd(f, &c, fs, 10, NULL, 0);
	assert_true(get_be32(c.data_in + 4) >= 2 * (24 + 20));
	assert_int_equal(c.data_in[8 + 24], 0x45);
	scsi_cmd_fini(&c);

	/* nexus 2 preempts: nexus 1 loses registration and reservation. */
	prout(f, &c, &f->nexus2, 4, 0x3, 0xbb, 0xaa, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	run_cmd(f, &c, rd, 16, NULL, 0);
	assert_sense(&c, 6, 0x2a, 0x05);
	run_cmd(f, &c, rd, 16, NULL, 0);
	assert_int_equal(c.status, SCSI_STATUS_RESERVATION_CONFLICT); /* EA */
	run_cmd(f, &c, rk, 10, NULL, 0);
	assert_int_equal(get_be32(c.data_in + 4), 8);
	scsi_cmd_fini(&c);

	/* Release by the holder with the wrong type is an error, right type works. */
	prout(f, &c, &f->nexus2, 2, 0x1, 0xbb, 0, 0);
	assert_int_equal(c.status, SCSI_STATUS_CHECK_CONDITION);
	prout(f, &c, &f->nexus2, 2, 0x3, 0xbb, 0, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	run_cmd(f, &c, rd, 16, NULL, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	scsi_cmd_fini(&c);
	/* CLEAR */
	prout(f, &c, &f->nexus2, 3, 0, 0xbb, 0, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	run_cmd(f, &c, rk, 10, NULL, 0);
	assert_int_equal(get_be32(c.data_in + 4), 0);
	scsi_cmd_fini(&c);
	/* SPEC_I_PT unsupported. */
	prout(f, &c, &f->nexus, 0, 0, 0, 0xaa, 0x08);
	assert_sense(&c, 5, 0x26, 0);
}

static void test_pr_aptpl(void **state)
{
	char path[] = "/tmp/s3tgt-pr-XXXXXX";
	int fd = mkstemp(path);
	struct reactor *r;
	struct scsi_cmd c;
	struct fx *f;
	uint8_t rr[10] = { 0x5e, 1, 0, 0, 0, 0, 0, 0x10, 0, 0 };

	assert_true(fd >= 0);
	close(fd);
	unlink(path);
	assert_int_equal(reactor_create(&r), 0);
	fx_setup_store(state, gate_store_new(r, 1 * MIB, BS, 0), path, false);
	f = *state;
	clear_ua(f, &f->nexus);
	prout(f, &c, &f->nexus, 0, 0, 0, 0x1234, 0x01 /* APTPL */);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	prout(f, &c, &f->nexus, 1, 0x6, 0x1234, 0, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(access(path, R_OK), 0);
	fx_teardown(state);

	/* "Power cycle": a new LU on the same file has the registration and reservation. */
	assert_int_equal(reactor_create(&r), 0);
	fx_setup_store(state, gate_store_new(r, 1 * MIB, BS, 0), path, false);
	f = *state;
	clear_ua(f, &f->nexus);
	run_cmd(f, &c, rr, 10, NULL, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(get_be32(c.data_in + 4), 16);
	assert_int_equal(get_be64(c.data_in + 8), 0x1234);
	assert_int_equal(c.data_in[21], 0x6);
	scsi_cmd_fini(&c);
	/* Unregister without APTPL removes the file. */
	prout(f, &c, &f->nexus, 0, 0, 0x1234, 0, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(access(path, F_OK), -1);
	fx_teardown(state);
	*state = NULL;
}

static int teardown_maybe(void **state)
{
	if (*state) {
		return fx_teardown(state);
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_read_write, setup_ram, fx_teardown),
		cmocka_unit_test_setup_teardown(test_write_same_unmap, setup_ram, fx_teardown),
		cmocka_unit_test_setup_teardown(test_caw, fx_setup_gate, fx_teardown),
		cmocka_unit_test_setup_teardown(test_ordered_and_abort, fx_setup_gate, fx_teardown),
		cmocka_unit_test_setup_teardown(test_store_errors, fx_setup_gate, fx_teardown),
		cmocka_unit_test_setup_teardown(test_pr, fx_setup_gate, fx_teardown),
		cmocka_unit_test_teardown(test_pr_aptpl, teardown_maybe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
