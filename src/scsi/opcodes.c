/*
 * opcodes.c - the dispatch table: one entry per opcode, nested tables for
 * service actions, and REPORT SUPPORTED OPERATION CODES generated from them.
 * An opcode without an entry is INVALID COMMAND OPERATION CODE, here only.
 */
#include <string.h>

#include "scsi_internal.h"

/* Reservation classes, SPC-4 5.13.1 table 63 and SBC-3 4.17 table 13. */
#define PR_ANY (OP_PR_ALLOW | OP_R6_ALLOW)
#define RW16_USAGE(op)                                                                     \
	{ op, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, \
	  0x00, 0x00 }
#define RW12_USAGE(op) { op, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 }
#define RW10_USAGE(op) { op, 0x18, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0x00 }

static const struct scsi_op g_sai16[32] = {
	[SCSI_SA_READ_CAPACITY_16] = {
		.name = "READ CAPACITY(16)", .parse = sbc_parse_read_capacity_16,
		.exec = sbc_exec_read_capacity_16, .cdb_len = 16,
		.sa_code = SCSI_SA_READ_CAPACITY_16, .flags = OP_PR_ALLOW | OP_SA_RSOC,
		.usage = { 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0 },
	},
	[SCSI_SA_GET_LBA_STATUS] = {
		.name = "GET LBA STATUS", .parse = sbc_parse_get_lba_status,
		.exec = sbc_exec_get_lba_status, .cdb_len = 16,
		.sa_code = SCSI_SA_GET_LBA_STATUS, .flags = OP_PR_READ | OP_SA_RSOC,
		.usage = { 0x9e, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
			   0xff, 0xff, 0, 0 },
	},
};

static const struct scsi_op g_maint_in[32] = {
	[SCSI_SA_REPORT_SUPPORTED_OPCODES] = {
		.name = "REPORT SUPPORTED OPERATION CODES", .parse = spc_parse_rsoc,
		.exec = scsi_exec_rsoc, .cdb_len = 12,
		.sa_code = SCSI_SA_REPORT_SUPPORTED_OPCODES, .flags = PR_ANY | OP_SA_RSOC,
		.usage = { 0xa3, 0x0c, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0 },
	},
	[SCSI_SA_REPORT_SUPPORTED_TMFS] = {
		.name = "REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS", .parse = spc_parse_rstmf,
		.exec = spc_exec_rstmf, .cdb_len = 12,
		.sa_code = SCSI_SA_REPORT_SUPPORTED_TMFS, .flags = PR_ANY | OP_SA_RSOC,
		.usage = { 0xa3, 0x0d, 0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0 },
	},
};

#define PRIN(sa, nm)                                                                      \
	[sa] = { .name = nm, .parse = pr_parse_in, .exec = pr_exec_in, .cdb_len = 10,       \
		 .sa_code = sa, .flags = PR_ANY | OP_SA_RSOC,                             \
		 .usage = { 0x5e, sa, 0, 0, 0, 0, 0, 0xff, 0xff, 0 } }
static const struct scsi_op g_prin[32] = {
	PRIN(0, "PERSISTENT RESERVE IN/READ KEYS"),
	PRIN(1, "PERSISTENT RESERVE IN/READ RESERVATION"),
	PRIN(2, "PERSISTENT RESERVE IN/REPORT CAPABILITIES"),
	PRIN(3, "PERSISTENT RESERVE IN/READ FULL STATUS"),
};

#define PROUT(sa, nm)                                                                     \
	[sa] = { .name = nm, .parse = pr_parse_out, .exec = pr_exec_out, .cdb_len = 10,     \
		 .sa_code = sa, .flags = OP_PR_ALLOW | OP_DATA_OUT | OP_SA_RSOC,          \
		 .usage = { 0x5f, sa, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0 } }
static const struct scsi_op g_prout[32] = {
	PROUT(0, "PERSISTENT RESERVE OUT/REGISTER"),
	PROUT(1, "PERSISTENT RESERVE OUT/RESERVE"),
	PROUT(2, "PERSISTENT RESERVE OUT/RELEASE"),
	PROUT(3, "PERSISTENT RESERVE OUT/CLEAR"),
	PROUT(4, "PERSISTENT RESERVE OUT/PREEMPT"),
	PROUT(5, "PERSISTENT RESERVE OUT/PREEMPT AND ABORT"),
	PROUT(6, "PERSISTENT RESERVE OUT/REGISTER AND IGNORE EXISTING KEY"),
	PROUT(7, "PERSISTENT RESERVE OUT/REGISTER AND MOVE"),
};

/*
 * SBC-3 5.30: SANITIZE holds the whole medium exclusively (the parser locks
 * it) and counts as a write for reservations and write protection. CRYPTO
 * ERASE is absent: the stores keep no encryption key that could be changed.
 */
#define SANITIZE_SA(sa, nm)                                                              \
	[sa] = { .name = nm, .parse = sbc_parse_sanitize, .exec = sbc_exec_sanitize,       \
		 .cdb_len = 10, .sa_code = sa,                                             \
		 .flags = OP_WRITES | OP_EXCL | OP_DATA_OUT | OP_SA_RSOC,                  \
		 .usage = { 0x48, 0x20 | sa, 0, 0, 0, 0, 0, 0xff, 0xff, 0 } }
static const struct scsi_op g_sanitize[32] = {
	SANITIZE_SA(SCSI_SA_SANITIZE_OVERWRITE, "SANITIZE/OVERWRITE"),
	SANITIZE_SA(SCSI_SA_SANITIZE_BLOCK_ERASE, "SANITIZE/BLOCK ERASE"),
	SANITIZE_SA(SCSI_SA_SANITIZE_EXIT_FAILURE, "SANITIZE/EXIT FAILURE MODE"),
};

/*
 * SPC-4 6.4 / 6.18: EXTENDED COPY (LID1) and RECEIVE COPY RESULTS. The copy
 * itself is checked against each copy target's reservations by xcopy.c; on
 * the copy manager LU it is treated like a write, RECEIVE COPY RESULTS like
 * a read (SPC-4 table 63 has them as conflicting under exclusive access).
 */
static const struct scsi_op g_xcopy[32] = {
	[SCSI_SA_XCOPY_LID1] = {
		.name = "EXTENDED COPY(LID1)", .parse = xcopy_parse, .exec = xcopy_exec,
		.cdb_len = 16, .sa_code = SCSI_SA_XCOPY_LID1,
		.flags = OP_DATA_OUT | OP_SA_RSOC,
		.usage = { 0x83, SCSI_SA_XCOPY_LID1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff,
			   0xff, 0, 0 },
	},
};

#define RCR(sa, nm)                                                                       \
	[sa] = { .name = nm, .parse = xcopy_parse_rcr, .exec = xcopy_exec_rcr,             \
		 .cdb_len = 16, .sa_code = sa, .flags = OP_PR_READ | OP_SA_RSOC,           \
		 .usage = { 0x84, sa, 0xff, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0,  \
			    0 } }
static const struct scsi_op g_rcr[32] = {
	RCR(SCSI_SA_RCR_COPY_STATUS, "RECEIVE COPY RESULTS/COPY STATUS"),
	RCR(SCSI_SA_RCR_OP_PARAMS, "RECEIVE COPY RESULTS/OPERATING PARAMETERS"),
};

const struct scsi_op scsi_ops[256] = {
	[SCSI_OP_TEST_UNIT_READY] = {
		.name = "TEST UNIT READY", .parse = spc_parse_none, .exec = spc_exec_tur,
		.cdb_len = 6, .flags = OP_PR_ALLOW, .usage = { 0x00, 0, 0, 0, 0, 0 },
	},
	[SCSI_OP_REQUEST_SENSE] = {
		.name = "REQUEST SENSE", .parse = spc_parse_request_sense,
		.exec = spc_exec_request_sense, .cdb_len = 6,
		.flags = OP_ANY_LUN | OP_NO_UA | PR_ANY, .usage = { 0x03, 0x01, 0, 0, 0xff, 0 },
	},
	[SCSI_OP_READ_6] = {
		.name = "READ(6)", .parse = sbc_parse_rw, .exec = sbc_exec_read, .cdb_len = 6,
		.flags = OP_LBA | OP_XFER_LIMIT | OP_PR_READ,
		.usage = { 0x08, 0x1f, 0xff, 0xff, 0xff, 0 },
	},
	[SCSI_OP_WRITE_6] = {
		.name = "WRITE(6)", .parse = sbc_parse_rw, .exec = sbc_exec_write, .cdb_len = 6,
		.flags = OP_LBA | OP_WRITES | OP_XFER_LIMIT | OP_DATA_OUT,
		.usage = { 0x0a, 0x1f, 0xff, 0xff, 0xff, 0 },
	},
	[SCSI_OP_INQUIRY] = {
		.name = "INQUIRY", .parse = spc_parse_inquiry, .exec = spc_exec_inquiry,
		.cdb_len = 6, .flags = OP_ANY_LUN | OP_NO_UA | PR_ANY,
		.usage = { 0x12, 0x01, 0xff, 0xff, 0xff, 0 },
	},
	[SCSI_OP_MODE_SELECT_6] = {
		.name = "MODE SELECT(6)", .parse = spc_parse_mode_select,
		.exec = spc_exec_mode_select, .cdb_len = 6, .flags = OP_DATA_OUT,
		.usage = { 0x15, 0x11, 0, 0, 0xff, 0 },
	},
	[SCSI_OP_RESERVE_6] = {
		.name = "RESERVE(6)", .parse = spc_parse_reserve, .exec = spc_exec_reserve,
		.cdb_len = 6, .flags = 0, .usage = { 0x16, 0, 0, 0, 0, 0 },
	},
	[SCSI_OP_RELEASE_6] = {
		.name = "RELEASE(6)", .parse = spc_parse_reserve, .exec = spc_exec_release,
		.cdb_len = 6, .flags = OP_R6_ALLOW, .usage = { 0x17, 0, 0, 0, 0, 0 },
	},
	[SCSI_OP_MODE_SENSE_6] = {
		.name = "MODE SENSE(6)", .parse = spc_parse_mode_sense,
		.exec = spc_exec_mode_sense, .cdb_len = 6, .flags = OP_PR_READ,
		.usage = { 0x1a, 0x08, 0xff, 0xff, 0xff, 0 },
	},
	[SCSI_OP_START_STOP_UNIT] = {
		.name = "START STOP UNIT", .parse = spc_parse_start_stop, .exec = spc_exec_good,
		.cdb_len = 6, .flags = OP_PR_ALLOW, .usage = { 0x1b, 0x01, 0, 0x0f, 0xf7, 0 },
	},
	[SCSI_OP_READ_CAPACITY_10] = {
		.name = "READ CAPACITY(10)", .parse = sbc_parse_read_capacity_10,
		.exec = sbc_exec_read_capacity_10, .cdb_len = 10, .flags = OP_PR_ALLOW,
		.usage = { 0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
	},
	[SCSI_OP_READ_10] = {
		.name = "READ(10)", .parse = sbc_parse_rw, .exec = sbc_exec_read, .cdb_len = 10,
		.flags = OP_LBA | OP_XFER_LIMIT | OP_PR_READ, .usage = RW10_USAGE(0x28),
	},
	[SCSI_OP_WRITE_10] = {
		.name = "WRITE(10)", .parse = sbc_parse_rw, .exec = sbc_exec_write, .cdb_len = 10,
		.flags = OP_LBA | OP_WRITES | OP_XFER_LIMIT | OP_DATA_OUT,
		.usage = RW10_USAGE(0x2a),
	},
	[SCSI_OP_WRITE_AND_VERIFY_10] = {
		.name = "WRITE AND VERIFY(10)", .parse = sbc_parse_rw, .exec = sbc_exec_write,
		.cdb_len = 10, .flags = OP_LBA | OP_WRITES | OP_XFER_LIMIT | OP_DATA_OUT,
		.usage = { 0x2e, 0x12, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0x00 },
	},
	[SCSI_OP_VERIFY_10] = {
		.name = "VERIFY(10)", .parse = sbc_parse_verify, .exec = sbc_exec_verify,
		.cdb_len = 10, .flags = OP_LBA | OP_XFER_LIMIT | OP_DATA_OUT | OP_PR_READ,
		.usage = { 0x2f, 0x16, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0x00 },
	},
	[SCSI_OP_PRE_FETCH_10] = {
		.name = "PRE-FETCH(10)", .parse = sbc_parse_prefetch, .exec = sbc_exec_prefetch,
		.cdb_len = 10, .flags = OP_LBA | OP_PR_READ,
		.usage = { 0x34, 0x02, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0x00 },
	},
	[SCSI_OP_READ_DEFECT_DATA_10] = {
		.name = "READ DEFECT DATA(10)", .parse = sbc_parse_read_defect,
		.exec = sbc_exec_read_defect, .cdb_len = 10, .flags = OP_PR_READ,
		.usage = { 0x37, 0, 0x1f, 0, 0, 0, 0, 0xff, 0xff, 0 },
	},
	[SCSI_OP_SYNCHRONIZE_CACHE_10] = {
		.name = "SYNCHRONIZE CACHE(10)", .parse = sbc_parse_sync_cache,
		.exec = sbc_exec_sync_cache, .cdb_len = 10, .flags = OP_LBA | OP_PR_READ,
		.usage = { 0x35, 0x02, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0x00 },
	},
	[SCSI_OP_WRITE_SAME_10] = {
		.name = "WRITE SAME(10)", .parse = sbc_parse_write_same,
		.exec = sbc_exec_write_same, .cdb_len = 10,
		.flags = OP_LBA | OP_WRITES | OP_DATA_OUT | OP_DATA_EXACT,
		.usage = { 0x41, 0x08, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0x00 },
	},
	[SCSI_OP_UNMAP] = {
		.name = "UNMAP", .parse = sbc_parse_unmap, .exec = sbc_exec_unmap, .cdb_len = 10,
		.flags = OP_WRITES | OP_DATA_OUT,
		.usage = { 0x42, 0x01, 0, 0, 0, 0, 0x00, 0xff, 0xff, 0x00 },
	},
	[SCSI_OP_SANITIZE] = {
		.name = "SANITIZE", .sa = g_sanitize, .cdb_len = 10, .flags = OP_SA,
	},
	[SCSI_OP_MODE_SELECT_10] = {
		.name = "MODE SELECT(10)", .parse = spc_parse_mode_select,
		.exec = spc_exec_mode_select, .cdb_len = 10, .flags = OP_DATA_OUT,
		.usage = { 0x55, 0x11, 0, 0, 0, 0, 0, 0xff, 0xff, 0 },
	},
	[SCSI_OP_RESERVE_10] = {
		.name = "RESERVE(10)", .parse = spc_parse_reserve, .exec = spc_exec_reserve,
		.cdb_len = 10, .flags = 0, .usage = { 0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
	},
	[SCSI_OP_RELEASE_10] = {
		.name = "RELEASE(10)", .parse = spc_parse_reserve, .exec = spc_exec_release,
		.cdb_len = 10, .flags = OP_R6_ALLOW,
		.usage = { 0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
	},
	[SCSI_OP_MODE_SENSE_10] = {
		.name = "MODE SENSE(10)", .parse = spc_parse_mode_sense,
		.exec = spc_exec_mode_sense, .cdb_len = 10, .flags = OP_PR_READ,
		.usage = { 0x5a, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, 0 },
	},
	[SCSI_OP_PERSISTENT_RESERVE_IN] = {
		.name = "PERSISTENT RESERVE IN", .sa = g_prin, .cdb_len = 10,
		.flags = OP_SA | PR_ANY,
	},
	[SCSI_OP_PERSISTENT_RESERVE_OUT] = {
		.name = "PERSISTENT RESERVE OUT", .sa = g_prout, .cdb_len = 10,
		.flags = OP_SA | OP_PR_ALLOW,
	},
	[SCSI_OP_EXTENDED_COPY] = {
		.name = "EXTENDED COPY", .sa = g_xcopy, .cdb_len = 16, .flags = OP_SA,
	},
	[SCSI_OP_RECEIVE_COPY_RESULTS] = {
		.name = "RECEIVE COPY RESULTS", .sa = g_rcr, .cdb_len = 16,
		.flags = OP_SA | OP_PR_READ,
	},
	[SCSI_OP_READ_16] = {
		.name = "READ(16)", .parse = sbc_parse_rw, .exec = sbc_exec_read, .cdb_len = 16,
		.flags = OP_LBA | OP_XFER_LIMIT | OP_PR_READ, .usage = RW16_USAGE(0x88),
	},
	[SCSI_OP_COMPARE_AND_WRITE] = {
		.name = "COMPARE AND WRITE", .parse = sbc_parse_caw, .exec = sbc_exec_caw,
		.cdb_len = 16, .flags = OP_LBA | OP_WRITES | OP_EXCL | OP_DATA_OUT | OP_DATA_EXACT,
		.usage = { 0x89, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0,
			   0xff, 0x00, 0x00 },
	},
	[SCSI_OP_WRITE_16] = {
		.name = "WRITE(16)", .parse = sbc_parse_rw, .exec = sbc_exec_write, .cdb_len = 16,
		.flags = OP_LBA | OP_WRITES | OP_XFER_LIMIT | OP_DATA_OUT,
		.usage = RW16_USAGE(0x8a),
	},
	[SCSI_OP_ORWRITE_16] = {
		.name = "ORWRITE(16)", .parse = sbc_parse_rw, .exec = sbc_exec_orwrite,
		.cdb_len = 16,
		.flags = OP_LBA | OP_WRITES | OP_EXCL | OP_XFER_LIMIT | OP_DATA_OUT,
		.usage = RW16_USAGE(0x8b),
	},
	[SCSI_OP_WRITE_AND_VERIFY_16] = {
		.name = "WRITE AND VERIFY(16)", .parse = sbc_parse_rw, .exec = sbc_exec_write,
		.cdb_len = 16, .flags = OP_LBA | OP_WRITES | OP_XFER_LIMIT | OP_DATA_OUT,
		.usage = { 0x8e, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
			   0xff, 0xff, 0x00, 0x00 },
	},
	[SCSI_OP_VERIFY_16] = {
		.name = "VERIFY(16)", .parse = sbc_parse_verify, .exec = sbc_exec_verify,
		.cdb_len = 16, .flags = OP_LBA | OP_XFER_LIMIT | OP_DATA_OUT | OP_PR_READ,
		.usage = { 0x8f, 0x16, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
			   0xff, 0xff, 0x00, 0x00 },
	},
	[SCSI_OP_PRE_FETCH_16] = {
		.name = "PRE-FETCH(16)", .parse = sbc_parse_prefetch, .exec = sbc_exec_prefetch,
		.cdb_len = 16, .flags = OP_LBA | OP_PR_READ,
		.usage = { 0x90, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
			   0xff, 0xff, 0x00, 0x00 },
	},
	[SCSI_OP_SYNCHRONIZE_CACHE_16] = {
		.name = "SYNCHRONIZE CACHE(16)", .parse = sbc_parse_sync_cache,
		.exec = sbc_exec_sync_cache, .cdb_len = 16, .flags = OP_LBA | OP_PR_READ,
		.usage = { 0x91, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
			   0xff, 0xff, 0x00, 0x00 },
	},
	[SCSI_OP_WRITE_SAME_16] = {
		.name = "WRITE SAME(16)", .parse = sbc_parse_write_same,
		.exec = sbc_exec_write_same, .cdb_len = 16,
		.flags = OP_LBA | OP_WRITES | OP_DATA_OUT | OP_DATA_EXACT,
		.usage = { 0x93, 0x09, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
			   0xff, 0xff, 0x00, 0x00 },
	},
	[SCSI_OP_WRITE_ATOMIC_16] = {
		.name = "WRITE ATOMIC(16)", .parse = sbc_parse_write_atomic,
		.exec = sbc_exec_write, .cdb_len = 16,
		.flags = OP_LBA | OP_WRITES | OP_EXCL | OP_XFER_LIMIT | OP_DATA_OUT,
		.usage = { 0x9c, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00,
			   0xff, 0xff, 0x00, 0x00 },
	},
	[SCSI_OP_SERVICE_ACTION_IN_16] = {
		.name = "SERVICE ACTION IN(16)", .sa = g_sai16, .cdb_len = 16,
		.flags = OP_SA | OP_PR_ALLOW,
	},
	[SCSI_OP_REPORT_LUNS] = {
		.name = "REPORT LUNS", .parse = spc_parse_report_luns,
		.exec = spc_exec_report_luns, .cdb_len = 12,
		.flags = OP_ANY_LUN | OP_NO_UA | PR_ANY,
		.usage = { 0xa0, 0, 0xff, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0 },
	},
	[SCSI_OP_MAINTENANCE_IN] = {
		.name = "MAINTENANCE IN", .sa = g_maint_in, .cdb_len = 12,
		.flags = OP_SA | PR_ANY,
	},
	[SCSI_OP_READ_12] = {
		.name = "READ(12)", .parse = sbc_parse_rw, .exec = sbc_exec_read, .cdb_len = 12,
		.flags = OP_LBA | OP_XFER_LIMIT | OP_PR_READ, .usage = RW12_USAGE(0xa8),
	},
	[SCSI_OP_WRITE_12] = {
		.name = "WRITE(12)", .parse = sbc_parse_rw, .exec = sbc_exec_write, .cdb_len = 12,
		.flags = OP_LBA | OP_WRITES | OP_XFER_LIMIT | OP_DATA_OUT,
		.usage = RW12_USAGE(0xaa),
	},
	[SCSI_OP_WRITE_AND_VERIFY_12] = {
		.name = "WRITE AND VERIFY(12)", .parse = sbc_parse_rw, .exec = sbc_exec_write,
		.cdb_len = 12, .flags = OP_LBA | OP_WRITES | OP_XFER_LIMIT | OP_DATA_OUT,
		.usage = { 0xae, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 },
	},
	[SCSI_OP_VERIFY_12] = {
		.name = "VERIFY(12)", .parse = sbc_parse_verify, .exec = sbc_exec_verify,
		.cdb_len = 12, .flags = OP_LBA | OP_XFER_LIMIT | OP_DATA_OUT | OP_PR_READ,
		.usage = { 0xaf, 0x16, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 },
	},
	[SCSI_OP_READ_DEFECT_DATA_12] = {
		.name = "READ DEFECT DATA(12)", .parse = sbc_parse_read_defect,
		.exec = sbc_exec_read_defect, .cdb_len = 12, .flags = OP_PR_READ,
		.usage = { 0xb7, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0 },
	},
};

const struct scsi_op *scsi_op_lookup(struct scsi_cmd *cmd, enum sense_reason *r)
{
	const struct scsi_op *op = &scsi_ops[cmd->cdb[0]];

	if (op->sa) {
		op = &op->sa[cmd->cdb[1] & 0x1f];
		if (!op->exec) {
			*r = scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 1, 4);
			return NULL;
		}
		return op;
	}
	if (!op->exec) {
		*r = SENSE_INVALID_OPCODE;
		return NULL;
	}
	return op;
}

/* ---------------------------- REPORT SUPPORTED OPERATION CODES (SPC-4 6.35) */

#define RSOC_DESC_LEN 8
#define RSOC_TIMEOUT_LEN 12
/* Nominal / recommended command timeouts we advertise, in seconds. */
#define RSOC_NOMINAL_TIMEOUT 30
#define RSOC_RECOMMENDED_TIMEOUT 60

static size_t put_timeouts(uint8_t *p)
{
	memset(p, 0, RSOC_TIMEOUT_LEN);
	put_be16(p, RSOC_TIMEOUT_LEN - 2);
	put_be32(p + 4, RSOC_NOMINAL_TIMEOUT);
	put_be32(p + 8, RSOC_RECOMMENDED_TIMEOUT);
	return RSOC_TIMEOUT_LEN;
}

static size_t put_desc(uint8_t *p, uint8_t opcode, const struct scsi_op *e, bool servactv,
		       bool rctd)
{
	memset(p, 0, RSOC_DESC_LEN);
	p[0] = opcode;
	put_be16(p + 2, servactv ? e->sa_code : 0);
	p[5] = (uint8_t)((servactv ? 0x01 : 0) | (rctd ? 0x02 : 0));
	put_be16(p + 6, e->cdb_len);
	if (rctd) {
		return RSOC_DESC_LEN + put_timeouts(p + RSOC_DESC_LEN);
	}
	return RSOC_DESC_LEN;
}

/* Room for every descriptor with timeouts: 256 opcodes + 4 * 32 service actions. */
#define RSOC_ALL_MAX (4 + (256 + 4 * 32) * (RSOC_DESC_LEN + RSOC_TIMEOUT_LEN))

void scsi_exec_rsoc(struct scsi_cmd *cmd)
{
	static _Thread_local uint8_t buf[RSOC_ALL_MAX];
	bool rctd = cmd->cdb[2] & 0x80;
	unsigned opt = cmd->cdb[2] & 0x07;
	uint8_t opcode = cmd->cdb[3];
	uint16_t sa = get_be16(cmd->cdb + 4);
	uint32_t alloc = get_be32(cmd->cdb + 6);
	const struct scsi_op *op, *e = NULL;
	size_t n = 0;

	if (opt == 0) {
		n = 4;
		for (unsigned i = 0; i < 256; i++) {
			op = &scsi_ops[i];
			if (op->sa) {
				for (unsigned s = 0; s < 32; s++) {
					if (op->sa[s].exec) {
						n += put_desc(buf + n, (uint8_t)i, &op->sa[s], true,
							      rctd);
					}
				}
			} else if (op->exec) {
				n += put_desc(buf + n, (uint8_t)i, op, false, rctd);
			}
		}
		put_be32(buf, (uint32_t)(n - 4));
		scsi_cmd_complete(cmd, scsi_reply(cmd, buf, n, alloc));
		return;
	}
	op = &scsi_ops[opcode];
	switch (opt) {
	case 1: /* opcode only: invalid for an opcode with service actions */
		if (op->sa) {
			scsi_cmd_complete(cmd, scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 2, 2));
			return;
		}
		e = op->exec ? op : NULL;
		break;
	case 2: /* opcode + service action: invalid for an opcode without them */
		if (!op->sa) {
			scsi_cmd_complete(cmd, scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 2, 2));
			return;
		}
		e = sa < 32 && op->sa[sa].exec ? &op->sa[sa] : NULL;
		break;
	case 3: /* SPC-4r37: service action only if the opcode has them */
		if (op->sa) {
			e = sa < 32 && op->sa[sa].exec ? &op->sa[sa] : NULL;
		} else {
			e = op->exec && sa == 0 ? op : NULL;
		}
		break;
	default:
		scsi_cmd_complete(cmd, scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 2, 2));
		return;
	}
	memset(buf, 0, 4);
	if (!e) {
		buf[1] = 0x01; /* SUPPORT 001b: not supported */
		n = 4;
	} else {
		buf[1] = (uint8_t)((rctd ? 0x80 : 0) | 0x03); /* supported per standard */
		put_be16(buf + 2, e->cdb_len);
		memcpy(buf + 4, e->usage, e->cdb_len);
		buf[4] = opcode;
		n = 4u + e->cdb_len;
		if (rctd) {
			n += put_timeouts(buf + n);
		}
	}
	scsi_cmd_complete(cmd, scsi_reply(cmd, buf, n, alloc));
}
