/*
 * test_scsi_xcopy.c - EXTENDED COPY (LID1) and RECEIVE COPY RESULTS between
 * two LUs of one target, PERSISTENT RESERVE OUT REGISTER AND MOVE and PREEMPT
 * AND ABORT, and the read_only store option.
 */
#include "scsi_test_util.h"

#include "scsi/scsi_internal.h"

#define MIB (1024ull * 1024)
#define BS 512
#define NBLOCKS (4 * MIB / BS)
#define NAA1 0x1111111111ull

struct fx2 {
	struct fx *f;
	struct scsi_lu *lu1; /* LUN 1: a second gate store */
	struct store *st1;
};

static struct fx2 g_fx2;

static int setup(void **state)
{
	struct reactor *r;
	struct scsi_lu_params p = { .serial = "SER0002", .naa_id = NAA1 };
	struct fx *f;

	assert_int_equal(reactor_create(&r), 0);
	fx_setup_store(state, gate_store_new(r, 4 * MIB, BS, STORE_CAP_UNMAP), NULL, false);
	f = *state;
	g_fx2.f = f;
	g_fx2.st1 = gate_store_new(r, 4 * MIB, BS, STORE_CAP_UNMAP);
	assert_int_equal(scsi_lu_create(g_fx2.st1, &p, &g_fx2.lu1), 0);
	assert_int_equal(scsi_target_add_lu(f->t, 1, g_fx2.lu1), 0);
	clear_ua(f, &f->nexus);
	clear_ua(f, &f->nexus2);
	return 0;
}

static uint8_t *mem0(const struct fx *f)
{
	return ((struct gate_store *)f->st->priv)->mem;
}

static uint8_t *mem1(void)
{
	return ((struct gate_store *)g_fx2.st1->priv)->mem;
}

/* Build an EXTENDED COPY parameter list: target descriptors for naas[], one B2B segment each. */
static size_t xc_list(uint8_t *p, uint8_t list_id, uint8_t usage, const uint64_t *naas,
		      unsigned ntgt, unsigned nseg, uint16_t src, uint16_t dst, uint16_t n,
		      uint64_t src_lba, uint64_t dst_lba)
{
	size_t off = 16;

	memset(p, 0, 16 + ntgt * 32 + nseg * 28);
	p[0] = list_id;
	p[1] = (uint8_t)(usage << 3);
	put_be16(p + 2, (uint16_t)(ntgt * 32));
	put_be32(p + 8, nseg * 28);
	for (unsigned i = 0; i < ntgt; i++, off += 32) {
		p[off] = 0xe4;
		p[off + 4] = 0x01;
		p[off + 5] = 0x03;
		p[off + 7] = 8;
		put_be64(p + off + 8, (naas[i] & 0x0fffffffffffffffull) | 0x3000000000000000ull);
		p[off + 30] = BS >> 8;
	}
	for (unsigned i = 0; i < nseg; i++, off += 28) {
		p[off] = 0x02;
		put_be16(p + off + 2, 0x18);
		put_be16(p + off + 4, src);
		put_be16(p + off + 6, dst);
		put_be16(p + off + 10, n);
		put_be64(p + off + 12, src_lba);
		put_be64(p + off + 20, dst_lba);
	}
	return off;
}

static void xcopy(struct fx *f, struct scsi_cmd *c, const struct scsi_nexus *n, uint8_t *p,
		  size_t len)
{
	uint8_t cdb[16] = { 0x83, 0 };

	put_be32(cdb + 10, (uint32_t)len);
	run_cmd_n(f, c, n, cdb, 16, p, (uint32_t)len);
}

static void rcr(struct fx *f, struct scsi_cmd *c, uint8_t sa, uint8_t list_id)
{
	uint8_t cdb[16] = { 0x84, sa, list_id };

	put_be32(cdb + 10, 1024);
	run_cmd(f, c, cdb, 16, NULL, 0);
}

static void test_xcopy_between_lus(void **state)
{
	struct fx *f = *state;
	static uint8_t p[1024];
	const uint64_t naas[2] = { 0x123456789abcdefull, NAA1 };
	struct scsi_cmd c;
	size_t len;

	/* 3000 blocks (several 1 MiB pieces) from LUN 0 LBA 10 to LUN 1 LBA 100. */
	for (size_t i = 0; i < 3000 * BS; i++) {
		mem0(f)[10 * BS + i] = (uint8_t)(i * 7 + i / BS);
	}
	len = xc_list(p, 5, 0, naas, 2, 1, 0, 1, 3000, 10, 100);
	xcopy(f, &c, &f->nexus, p, len);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_memory_equal(mem1() + 100 * BS, mem0(f) + 10 * BS, 3000 * BS);
	assert_int_equal(mem1()[99 * BS + BS - 1], 0);
	assert_int_equal(mem1()[3100 * BS], 0);

	/* COPY STATUS: held for list id 5 on this nexus only, reported once. */
	rcr(f, &c, 0, 5);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(get_be32(c.data_in), 8);
	assert_int_equal(c.data_in[4], 0x01);
	assert_int_equal(get_be16(c.data_in + 5), 1);
	assert_int_equal(c.data_in[7], 0);
	assert_int_equal(get_be32(c.data_in + 8), 3000 * BS);
	scsi_cmd_fini(&c);
	rcr(f, &c, 0, 5);
	assert_sense(&c, 5, 0x24, 0);

	/* OPERATING PARAMETERS. */
	rcr(f, &c, 3, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_true(get_be32(c.data_in) >= 40);
	assert_int_equal(get_be16(c.data_in + 8), 8);
	assert_int_equal(get_be16(c.data_in + 10), 16);
	assert_int_equal(get_be32(c.data_in + 12), 1024);
	assert_int_equal(c.data_in[37], 9);
	assert_int_equal(c.data_in[43], 2);
	assert_int_equal(c.data_in[44], 0x02);
	assert_int_equal(c.data_in[45], 0xe4);
	scsi_cmd_fini(&c);

	/* Overlapping copy inside LUN 0 towards higher LBAs (backward pieces). */
	for (size_t i = 0; i < 4000 * BS; i++) {
		mem0(f)[i] = (uint8_t)(i / BS);
	}
	len = xc_list(p, 0, 2, naas, 1, 1, 0, 0, 3000, 0, 1000);
	xcopy(f, &c, &f->nexus, p, len);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	for (size_t b = 0; b < 3000; b++) {
		assert_int_equal(mem0(f)[(1000 + b) * BS], (uint8_t)b);
	}
}

static void test_xcopy_errors(void **state)
{
	struct fx *f = *state;
	static uint8_t p[2048];
	const uint64_t naas[9] = { 0x123456789abcdefull, NAA1, NAA1, NAA1, NAA1,
				   NAA1, NAA1, NAA1, NAA1 };
	const uint64_t bad[1] = { 0x777 };
	struct scsi_cmd c;
	size_t len;

	/* Zero parameter list length: nothing to do. */
	xcopy(f, &c, &f->nexus, NULL, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	/* Truncated list. */
	len = xc_list(p, 0, 2, naas, 1, 1, 0, 0, 8, 0, 100);
	xcopy(f, &c, &f->nexus, p, len - 1);
	assert_sense(&c, 5, 0x1a, 0);
	/* Too many target / segment descriptors. */
	len = xc_list(p, 0, 2, naas, 9, 1, 0, 0, 8, 0, 100);
	xcopy(f, &c, &f->nexus, p, len);
	assert_sense(&c, 5, 0x26, 0x06);
	len = xc_list(p, 0, 2, naas, 1, 17, 0, 0, 8, 0, 100);
	xcopy(f, &c, &f->nexus, p, len);
	assert_sense(&c, 5, 0x26, 0x08);
	/* Descriptor list longer than MAXIMUM DESCRIPTOR LIST LENGTH. */
	len = xc_list(p, 0, 2, naas, 9, 30, 0, 0, 8, 0, 100);
	xcopy(f, &c, &f->nexus, p, len);
	assert_sense(&c, 5, 0x1a, 0);
	/* Unsupported descriptor types. */
	len = xc_list(p, 0, 2, naas, 1, 1, 0, 0, 8, 0, 100);
	p[16] = 0xe0;
	xcopy(f, &c, &f->nexus, p, len);
	assert_sense(&c, 5, 0x26, 0x07);
	len = xc_list(p, 0, 2, naas, 1, 1, 0, 0, 8, 0, 100);
	p[48] = 0x03;
	xcopy(f, &c, &f->nexus, p, len);
	assert_sense(&c, 5, 0x26, 0x09);
	/* Unknown NAA, bad index, beyond the end of the destination. */
	len = xc_list(p, 0, 2, bad, 1, 1, 0, 0, 8, 0, 100);
	xcopy(f, &c, &f->nexus, p, len);
	assert_sense(&c, 0xa, 0x0d, 0x02);
	len = xc_list(p, 0, 2, naas, 1, 1, 0, 1, 8, 0, 100);
	xcopy(f, &c, &f->nexus, p, len);
	assert_sense(&c, 0xa, 0x0d, 0x02);
	len = xc_list(p, 0, 2, naas, 2, 1, 0, 1, 8, 0, NBLOCKS - 4);
	xcopy(f, &c, &f->nexus, p, len);
	assert_sense(&c, 0xa, 0, 0);
	/* Wrong DISK BLOCK LENGTH: the descriptor does not name this LU. */
	len = xc_list(p, 0, 2, naas, 1, 1, 0, 0, 8, 0, 100);
	p[16 + 30] = 0x10;
	xcopy(f, &c, &f->nexus, p, len);
	assert_sense(&c, 0xa, 0x0d, 0x02);
	/* RECEIVE COPY RESULTS for a list id never used. */
	rcr(f, &c, 0, 9);
	assert_sense(&c, 5, 0x24, 0);
}

static void prout_basic(struct fx *f, struct scsi_cmd *c, const struct scsi_nexus *n, uint64_t lun,
			uint8_t sa, uint8_t type, uint64_t key, uint64_t sa_key)
{
	static uint8_t p[24];
	uint8_t cdb[10] = { 0x5f, sa, type, 0, 0, 0, 0, 0, 24, 0 };

	memset(p, 0, sizeof(p));
	put_be64(p, key);
	put_be64(p + 8, sa_key);
	cmd_init(f, c, n, cdb, 10, p, 24);
	c->lun = lun;
	scsi_cmd_submit(c);
	fx_wait(f, 1);
}

static void test_xcopy_honours_destination(void **state)
{
	struct fx *f = *state;
	static uint8_t p[256];
	const uint64_t naas[2] = { 0x123456789abcdefull, NAA1 };
	struct scsi_cmd c;
	size_t len;

	/* nexus2 holds WRITE EXCLUSIVE on LUN 1: nexus1's copy into it conflicts. */
	for (int i = 0; i < 4; i++) {
		prout_basic(f, &c, &f->nexus2, 1, 0, 0, 0, 0); /* consumes LUN 1's UAs */
	}
	prout_basic(f, &c, &f->nexus2, 1, 0, 0, 0, 0xbb);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	prout_basic(f, &c, &f->nexus2, 1, 1, 1, 0xbb, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	len = xc_list(p, 0, 2, naas, 2, 1, 0, 1, 8, 0, 100);
	xcopy(f, &c, &f->nexus, p, len);
	assert_int_equal(c.status, SCSI_STATUS_RESERVATION_CONFLICT);
	/* The holder may copy; reading LUN 1 as a source is allowed to anyone. */
	xcopy(f, &c, &f->nexus2, p, len);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	len = xc_list(p, 0, 2, naas, 2, 1, 1, 0, 8, 100, 200);
	xcopy(f, &c, &f->nexus, p, len);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	prout_basic(f, &c, &f->nexus2, 1, 3, 0, 0xbb, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	/* A write-protected destination. */
	g_fx2.lu1->read_only = true;
	len = xc_list(p, 0, 2, naas, 2, 1, 0, 1, 8, 0, 100);
	xcopy(f, &c, &f->nexus, p, len);
	assert_sense(&c, 7, 0x27, 0);
	g_fx2.lu1->read_only = false;
}

/* ------------------------------------------------------------------ PR */

static void prout_move(struct fx *f, struct scsi_cmd *c, const struct scsi_nexus *n,
		       uint64_t key, uint64_t sa_key, bool unreg, const char *port)
{
	static uint8_t p[24 + 256];
	uint8_t cdb[10] = { 0x5f, 7, 0x01, 0, 0, 0, 0, 0, 0, 0 };
	size_t nl = strlen(port) + 1, padded = (nl + 3) & ~(size_t)3;
	size_t len;

	if (padded < 20) {
		padded = 20;
	}
	len = 24 + 4 + padded;
	memset(p, 0, sizeof(p));
	put_be64(p, key);
	put_be64(p + 8, sa_key);
	p[17] = unreg ? 0x02 : 0;
	put_be16(p + 18, 1);
	put_be32(p + 20, (uint32_t)(4 + padded));
	p[24] = 0x40 | 0x05;
	put_be16(p + 26, (uint16_t)padded);
	memcpy(p + 28, port, nl - 1);
	put_be16(cdb + 7, (uint16_t)len);
	run_cmd_n(f, c, n, cdb, 10, p, (uint32_t)len);
}

static void test_pr_register_and_move(void **state)
{
	struct fx *f = *state;
	struct scsi_cmd c;
	uint8_t rr[10] = { 0x5e, 1, 0, 0, 0, 0, 0, 0x10, 0, 0 };
	uint8_t rk[10] = { 0x5e, 0, 0, 0, 0, 0, 0, 0x10, 0, 0 };

	prout_basic(f, &c, &f->nexus, 0, 0, 0, 0, 0xaa);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	/* Not the holder: conflict. */
	prout_move(f, &c, &f->nexus, 0xaa, 0xcc, false, f->nexus2.initiator_port);
	assert_int_equal(c.status, SCSI_STATUS_RESERVATION_CONFLICT);
	prout_basic(f, &c, &f->nexus, 0, 1, 3, 0xaa, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	/* Bad: zero key, the same nexus, a wrong key. */
	prout_move(f, &c, &f->nexus, 0xaa, 0, false, f->nexus2.initiator_port);
	assert_sense(&c, 5, 0x26, 0);
	prout_move(f, &c, &f->nexus, 0xaa, 0xcc, false, f->nexus.initiator_port);
	assert_sense(&c, 5, 0x26, 0);
	prout_move(f, &c, &f->nexus, 0xab, 0xcc, false, f->nexus2.initiator_port);
	assert_int_equal(c.status, SCSI_STATUS_RESERVATION_CONFLICT);
	/* Move to the unregistered nexus2 (uppercase ISID digits accepted), unregister self. */
	prout_move(f, &c, &f->nexus, 0xaa, 0xcc, true, "iqn.2024-01.test:init2");
	assert_sense(&c, 5, 0x26, 0); /* an initiator name without an ISID names no port */
	prout_move(f, &c, &f->nexus, 0xaa, 0xcc, true, "IQN.2024-01.TEST:INIT2,I,0X000000000002");
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	run_cmd(f, &c, rr, 10, NULL, 0);
	assert_int_equal(get_be32(c.data_in + 4), 16);
	assert_int_equal(get_be64(c.data_in + 8), 0xcc);
	assert_int_equal(c.data_in[21], 3);
	scsi_cmd_fini(&c);
	run_cmd(f, &c, rk, 10, NULL, 0);
	assert_int_equal(get_be32(c.data_in + 4), 8); /* nexus1 unregistered */
	scsi_cmd_fini(&c);
	/* nexus2 now holds EXCLUSIVE ACCESS: nexus1 conflicts, nexus2 may release. */
	clear_ua(f, &f->nexus2);
	prout_basic(f, &c, &f->nexus2, 0, 2, 3, 0xcc, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	prout_basic(f, &c, &f->nexus2, 0, 3, 0, 0xcc, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
}

static void test_pr_preempt_and_abort(void **state)
{
	struct fx *f = *state;
	struct gate_store *g = f->st->priv;
	struct scsi_cmd c, w, w2;
	uint8_t wr[16] = { 0x8a };
	static uint8_t buf[BS];

	prout_basic(f, &c, &f->nexus, 0, 0, 0, 0, 0xaa);
	prout_basic(f, &c, &f->nexus2, 0, 0, 0, 0, 0xbb);
	prout_basic(f, &c, &f->nexus2, 0, 1, 1, 0xbb, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	/* nexus2 has a write at the store and one waiting behind an ORDERED barrier. */
	g->gate = true;
	put_be32(wr + 10, 1);
	cmd_init(f, &w, &f->nexus2, wr, 16, buf, BS);
	scsi_cmd_submit(&w);
	cmd_init(f, &w2, &f->nexus2, wr, 16, buf, BS);
	w2.attr = SCSI_ATTR_ORDERED;
	scsi_cmd_submit(&w2);
	assert_int_equal(g->nheld, 1);
	/* nexus1 preempts and aborts: both of nexus2's tasks end aborted. */
	cmd_init(f, &c, &f->nexus, (const uint8_t[10]){ 0x5f, 5, 1, 0, 0, 0, 0, 0, 24, 0 }, 10,
		 buf, 24);
	c.attr = SCSI_ATTR_HEAD_OF_QUEUE; /* not behind nexus2's ORDERED write */
	memset(buf, 0, 24);
	put_be64(buf, 0xaa);
	put_be64(buf + 8, 0xbb);
	scsi_cmd_submit(&c);
	fx_wait(f, 2); /* the PREEMPT AND ABORT and the waiting write */
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_true(w.aborted);
	assert_true(w2.aborted);
	g->gate = false;
	gate_release(f->st);
	fx_wait(f, 1);
	assert_int_equal(w.status, SCSI_STATUS_TASK_ABORTED);
	assert_int_equal(w2.status, SCSI_STATUS_TASK_ABORTED);
	assert_int_equal(scsi_lu_busy(f->lu), 0);
	/* nexus2 learns: REGISTRATIONS PREEMPTED, COMMANDS CLEARED BY ANOTHER INITIATOR. */
	run_cmd_n(f, &c, &f->nexus2, (const uint8_t[6]){ 0 }, 6, NULL, 0);
	assert_sense(&c, 6, 0x2a, 0x05);
	run_cmd_n(f, &c, &f->nexus2, (const uint8_t[6]){ 0 }, 6, NULL, 0);
	assert_sense(&c, 6, 0x2f, 0x00);
	prout_basic(f, &c, &f->nexus, 0, 3, 0, 0xaa, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
}

/* ----------------------------------------------------------- read_only */

static void test_read_only_store(void **state)
{
	struct store_params sp;
	struct reactor *r;
	struct store *st;
	struct fx *f;
	struct scsi_cmd c;
	char err[128];
	uint8_t wr[16] = { 0x8a }, ms[6] = { 0x1a, 0, 0x3f, 0, 0xff, 0 };
	uint8_t unmap[10] = { 0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0 };
	uint8_t ws[16] = { 0x93, 0x08 };
	static uint8_t buf[BS];

	(void)state;
	assert_int_equal(store_params_parse("ram:?size=1M&read_only=1", &sp, err, sizeof(err)), 0);
	assert_true(sp.read_only);
	store_params_fini(&sp);
	assert_int_equal(store_params_parse("ram:?size=1M&read_only=2", &sp, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "read_only: must be 0 or 1, got '2'");
	assert_int_equal(store_params_parse("ram:?size=1M", &sp, err, sizeof(err)), 0);
	assert_false(sp.read_only);
	store_params_fini(&sp);

	assert_int_equal(reactor_create(&r), 0);
	assert_int_equal(store_open_uri("ram:?size=1M&read_only=1", r, &st, err, sizeof(err)), 0);
	assert_true(st->read_only);
	fx_setup_store(state, st, NULL, false);
	f = *state;
	clear_ua(f, &f->nexus);
	put_be32(wr + 10, 1);
	run_cmd(f, &c, wr, 16, buf, BS);
	assert_sense(&c, 7, 0x27, 0);
	put_be32(ws + 10, 1);
	run_cmd(f, &c, ws, 16, buf, BS);
	assert_sense(&c, 7, 0x27, 0);
	memset(buf, 0, 24);
	put_be16(buf, 22);
	put_be16(buf + 2, 16);
	put_be32(buf + 16, 1);
	run_cmd(f, &c, unmap, 10, buf, 24);
	assert_sense(&c, 7, 0x27, 0);
	run_cmd(f, &c, ms, 6, NULL, 0);
	assert_int_equal(c.status, SCSI_STATUS_GOOD);
	assert_int_equal(c.data_in[2] & 0x80, 0x80); /* WP */
	scsi_cmd_fini(&c);
	fx_teardown(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_xcopy_between_lus, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_xcopy_errors, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_xcopy_honours_destination, setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_pr_register_and_move, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_pr_preempt_and_abort, setup, fx_teardown),
		cmocka_unit_test(test_read_only_store),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
