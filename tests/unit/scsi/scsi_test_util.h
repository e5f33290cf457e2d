/*
 * scsi_test_util.h - shared fixture for the SCSI unit tests: a real reactor,
 * a target with LUs on the ram store or on a small in-test "gate" store whose
 * ios are held until the test releases them, and a synchronous command runner.
 */
#ifndef S3TGT_SCSI_TEST_UTIL_H
#define S3TGT_SCSI_TEST_UTIL_H

#include <setjmp.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "s3tgt/core.h"
#include "s3tgt/scsi.h"
#include "s3tgt/store.h"

#define GATE_MAX_HELD 64

/* A memory store whose ios can be held back (gate) to test ordering and locks. */
struct gate_store {
	uint8_t *mem;
	bool gate;
	struct store_io *held[GATE_MAX_HELD];
	int nheld;
	int nsubmitted;
	int nwrites;
	bool last_fua;
	int fail_status; /* nonzero: every io completes with this */
};

static __attribute__((unused)) void gate_complete(void *arg)
{
	struct store_io *io = arg;

	io->cb(io);
}

static __attribute__((unused)) void gate_perform(struct store *st, struct store_io *io)
{
	struct gate_store *g = st->priv;

	if (g->fail_status) {
		io->status = g->fail_status;
	} else {
		switch (io->op) {
		case STORE_OP_READ:
			memcpy(io->buf, g->mem + io->offset, io->len);
			break;
		case STORE_OP_WRITE:
			memcpy(g->mem + io->offset, io->buf, io->len);
			break;
		case STORE_OP_UNMAP:
		case STORE_OP_WRITE_ZEROES:
			memset(g->mem + io->offset, 0, io->len);
			break;
		default:
			break;
		}
		io->status = 0;
	}
	assert_int_equal(reactor_post(st->reactor, gate_complete, io), 0);
}

static __attribute__((unused)) int gate_submit(struct store *st, struct store_io *io)
{
	struct gate_store *g = st->priv;

	g->nsubmitted++;
	if (io->op == STORE_OP_WRITE) {
		g->nwrites++;
		g->last_fua = io->fua;
	}
	if (g->gate) {
		assert_true(g->nheld < GATE_MAX_HELD);
		g->held[g->nheld++] = io;
		return 0;
	}
	gate_perform(st, io);
	return 0;
}

static __attribute__((unused)) void gate_close(struct store *st)
{
	struct gate_store *g = st->priv;

	free(g->mem);
	free(g);
}

static __attribute__((unused)) const struct store_ops gate_ops = {
	.name = "gate",
	.submit = gate_submit,
	.close = gate_close,
};

static __attribute__((unused)) void gate_release(struct store *st)
{
	struct gate_store *g = st->priv;
	int n = g->nheld;

	g->nheld = 0;
	for (int i = 0; i < n; i++) {
		gate_perform(st, g->held[i]);
	}
}

static __attribute__((unused)) struct store *gate_store_new(struct reactor *r, uint64_t size, uint32_t bs, uint32_t caps)
{
	struct store *st = calloc(1, sizeof(*st));
	struct gate_store *g = calloc(1, sizeof(*g));

	assert_non_null(st);
	assert_non_null(g);
	g->mem = calloc(1, size);
	assert_non_null(g->mem);
	st->ops = &gate_ops;
	st->priv = g;
	st->reactor = r;
	st->size = size;
	st->block_size = bs;
	st->caps = caps;
	st->thin = true;
	return st;
}

/* ------------------------------------------------------------- fixture */

struct fx {
	struct reactor *r;
	struct scsi_target *t;
	struct scsi_lu *lu;
	struct store *st;
	struct scsi_nexus nexus;
	struct scsi_nexus nexus2;
	int ndone;
	int want;
};

static __attribute__((unused)) struct fx *g_fx;

static __attribute__((unused)) void fx_done(struct scsi_cmd *cmd)
{
	struct fx *f = cmd->done_arg;

	f->ndone++;
	if (f->ndone >= f->want) {
		reactor_stop(f->r);
	}
}

static __attribute__((unused)) void fx_nexus(struct scsi_nexus *n, uint64_t id, const char *name, uint8_t isid_last)
{
	memset(n, 0, sizeof(*n));
	n->id = id;
	snprintf(n->initiator_name, sizeof(n->initiator_name), "%s", name);
	n->isid[5] = isid_last;
	snprintf(n->initiator_port, sizeof(n->initiator_port), "%s,i,0x0000000000%02x", name,
		 isid_last);
	n->rel_tgt_port = 1;
}

static __attribute__((unused)) int fx_setup_store(void **state, struct store *st, const char *pr_path, bool ro)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct scsi_lu_params p = {
		.serial = "SER0001",
		.naa_id = 0x123456789abcdefull,
		.pr_path = pr_path,
		.read_only = ro,
	};

	assert_non_null(f);
	f->r = st->reactor;
	f->st = st;
	assert_int_equal(scsi_target_create("iqn.2024-01.test:tgt", &f->t), 0);
	assert_int_equal(scsi_lu_create(st, &p, &f->lu), 0);
	assert_int_equal(scsi_target_add_lu(f->t, 0, f->lu), 0);
	fx_nexus(&f->nexus, 1, "iqn.2024-01.test:init1", 1);
	fx_nexus(&f->nexus2, 2, "iqn.2024-01.test:init2", 2);
	g_fx = f;
	*state = f;
	return 0;
}

static __attribute__((unused)) int fx_teardown(void **state)
{
	struct fx *f = *state;
	struct reactor *r = f->r;

	scsi_target_destroy(f->t);
	reactor_destroy(r);
	free(f);
	return 0;
}

static __attribute__((unused)) void cmd_init(struct fx *f, struct scsi_cmd *c, const struct scsi_nexus *n,
		     const uint8_t *cdb, size_t cdb_len, uint8_t *out, uint32_t out_len)
{
	memset(c, 0, sizeof(*c));
	c->target = f->t;
	c->nexus = (struct scsi_nexus *)n;
	c->lun = 0;
	memcpy(c->cdb, cdb, cdb_len);
	c->cdb_len = 16;
	c->attr = SCSI_ATTR_SIMPLE;
	c->data_out = out;
	c->data_out_len = out_len;
	c->exp_data_len = out ? out_len : 65536;
	c->done = fx_done;
	c->done_arg = f;
}

/* Run the reactor until `want` more commands are done. */
static __attribute__((unused)) void fx_wait(struct fx *f, int want)
{
	f->want = f->ndone + want;
	if (f->ndone < f->want) {
		assert_int_equal(reactor_run(f->r), 0);
	}
}

static __attribute__((unused)) void run_cmd_n(struct fx *f, struct scsi_cmd *c, const struct scsi_nexus *n,
		      const uint8_t *cdb, size_t cdb_len, uint8_t *out, uint32_t out_len)
{
	cmd_init(f, c, n, cdb, cdb_len, out, out_len);
	scsi_cmd_submit(c);
	fx_wait(f, 1);
}

static __attribute__((unused)) void run_cmd(struct fx *f, struct scsi_cmd *c, const uint8_t *cdb, size_t cdb_len,
		    uint8_t *out, uint32_t out_len)
{
	run_cmd_n(f, c, &f->nexus, cdb, cdb_len, out, out_len);
}

/* Clear POWER ON OCCURRED for a nexus. */
static __attribute__((unused)) void clear_ua(struct fx *f, const struct scsi_nexus *n)
{
	static const uint8_t tur[6] = { 0 };
	struct scsi_cmd c;

	for (int i = 0; i < 10; i++) {
		run_cmd_n(f, &c, n, tur, 6, NULL, 0);
		scsi_cmd_fini(&c);
		if (c.status == SCSI_STATUS_GOOD) {
			return;
		}
	}
	fail_msg("UA never cleared");
}

static __attribute__((unused)) void assert_sense(const struct scsi_cmd *c, uint8_t key, uint8_t asc, uint8_t ascq)
{
	assert_int_equal(c->status, SCSI_STATUS_CHECK_CONDITION);
	assert_true(c->sense_len >= 14);
	assert_int_equal(c->sense[0] & 0x7f, 0x70);
	assert_int_equal(c->sense[2] & 0x0f, key);
	assert_int_equal(c->sense[12], asc);
	assert_int_equal(c->sense[13], ascq);
}

/*
 * A gate-store LU of size bytes, 512-byte blocks, with UNMAP and the given
 * preferred I/O size (opt_io_bytes, 0 = none), unit attentions cleared.
 */
static __attribute__((unused)) int fx_setup_gate_sized(void **state, uint64_t size, uint32_t opt_io)
{
	struct reactor *r;
	struct store *st;

	assert_int_equal(reactor_create(&r), 0);
	st = gate_store_new(r, size, 512, STORE_CAP_UNMAP);
	st->opt_io_bytes = opt_io;
	fx_setup_store(state, st, NULL, false);
	clear_ua(*state, &((struct fx *)*state)->nexus);
	return 0;
}

/* A 1 MiB gate-store LU (fx_setup_gate_sized). */
static __attribute__((unused)) int fx_setup_gate(void **state)
{
	return fx_setup_gate_sized(state, 1024 * 1024, 0);
}

/* A 16-byte CDB with an 8-byte LBA at byte 2 and a 4-byte length at byte 10 (SBC-3 READ(16) layout). */
static __attribute__((unused)) void cdb_lba16(uint8_t *cdb, uint8_t op, uint64_t lba, uint32_t n)
{
	memset(cdb, 0, 16);
	cdb[0] = op;
	put_be64(cdb + 2, lba);
	put_be32(cdb + 10, n);
}

#endif
