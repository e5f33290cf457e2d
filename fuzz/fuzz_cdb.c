/*
 * fuzz_cdb.c - arbitrary CDBs (and a little Data-Out) through scsi_cmd_submit
 * on a thin 4 MiB ram LUN, running the reactor until the command is done.
 *
 * Input: byte 0 selects task attribute (bits 0-2), nexus (bit 3) and LUN
 * (bit 4: an absent LUN); bytes 1-16 are the CDB; the rest is Data-Out.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3tgt/core.h"
#include "s3tgt/scsi.h"
#include "s3tgt/store.h"

#define FUZZ_MAX_DATA (256u * 1024)

static struct reactor *g_r;
static struct scsi_target *g_t;
static struct scsi_nexus g_nexus[2];
static int g_done;

static void fuzz_done(struct scsi_cmd *cmd)
{
	g_done = 1;
	reactor_stop(g_r);
}

static void fuzz_init(void)
{
	struct store *st;
	struct scsi_lu *lu;
	struct scsi_lu_params p = { .serial = "FUZZ0001", .naa_id = 1 };
	char err[128];

	if (reactor_create(&g_r) != 0 ||
	    store_open_uri("ram:?size=4M", g_r, &st, err, sizeof(err)) != 0 ||
	    scsi_target_create("iqn.2024-01.fuzz:tgt", &g_t) != 0 ||
	    scsi_lu_create(st, &p, &lu) != 0 || scsi_target_add_lu(g_t, 0, lu) != 0) {
		fprintf(stderr, "fuzz_cdb: setup failed\n");
		abort();
	}
	for (int i = 0; i < 2; i++) {
		g_nexus[i].id = (uint64_t)i + 1;
		snprintf(g_nexus[i].initiator_name, sizeof(g_nexus[i].initiator_name),
			 "iqn.2024-01.fuzz:init%d", i);
		snprintf(g_nexus[i].initiator_port, sizeof(g_nexus[i].initiator_port),
			 "iqn.2024-01.fuzz:init%d,i,0x00000000000%d", i, i);
		g_nexus[i].rel_tgt_port = 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scsi_cmd cmd;
	uint8_t *out = NULL;
	size_t out_len;

	if (!g_r) {
		fuzz_init();
	}
	if (size < 1 + 6) {
		return 0;
	}
	memset(&cmd, 0, sizeof(cmd));
	cmd.target = g_t;
	cmd.nexus = &g_nexus[(data[0] >> 3) & 1];
	cmd.lun = (data[0] & 0x10) ? 9 : 0;
	cmd.attr = (enum scsi_task_attr)(data[0] & 0x07);
	if (cmd.attr > SCSI_ATTR_ACA) {
		cmd.attr = SCSI_ATTR_SIMPLE;
	}
	memcpy(cmd.cdb, data + 1, size - 1 < 16 ? size - 1 : 16);
	cmd.cdb_len = 16;
	out_len = size > 17 ? size - 17 : 0;
	if (out_len > FUZZ_MAX_DATA) {
		out_len = FUZZ_MAX_DATA;
	}
	if (out_len) {
		out = malloc(out_len);
		if (!out) {
			return 0;
		}
		memcpy(out, data + 17, out_len);
		cmd.is_write = true;
	} else {
		cmd.is_read = true;
	}
	cmd.data_out = out;
	cmd.data_out_len = (uint32_t)out_len;
	cmd.exp_data_len = out_len ? (uint32_t)out_len : 65536;
	cmd.done = fuzz_done;
	g_done = 0;
	scsi_cmd_submit(&cmd);
	while (!g_done) {
		if (reactor_run(g_r) != 0) {
			abort();
		}
	}
	if (cmd.data_in_len > 0 && cmd.data_in == NULL) {
		abort();
	}
	if (cmd.sense_len > SCSI_SENSE_MAX) {
		abort();
	}
	scsi_cmd_fini(&cmd);
	free(out);
	return 0;
}
