/*
 * scsi_internal.h - private to src/scsi/: sense reasons, the opcode table
 * entry, LU/target state and the helpers the command handlers share.
 */
#ifndef S3TGT_SCSI_INTERNAL_H
#define S3TGT_SCSI_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3tgt/core.h"
#include "s3tgt/scsi.h"
#include "s3tgt/store.h"

/* Opcodes (SPC-4 / SBC-3 names). */
#define SCSI_OP_TEST_UNIT_READY 0x00
#define SCSI_OP_REQUEST_SENSE 0x03
#define SCSI_OP_READ_6 0x08
#define SCSI_OP_WRITE_6 0x0a
#define SCSI_OP_INQUIRY 0x12
#define SCSI_OP_MODE_SELECT_6 0x15
#define SCSI_OP_RESERVE_6 0x16
#define SCSI_OP_RELEASE_6 0x17
#define SCSI_OP_MODE_SENSE_6 0x1a
#define SCSI_OP_START_STOP_UNIT 0x1b
#define SCSI_OP_READ_CAPACITY_10 0x25
#define SCSI_OP_READ_10 0x28
#define SCSI_OP_WRITE_10 0x2a
#define SCSI_OP_WRITE_AND_VERIFY_10 0x2e
#define SCSI_OP_VERIFY_10 0x2f
#define SCSI_OP_PRE_FETCH_10 0x34
#define SCSI_OP_READ_DEFECT_DATA_10 0x37
#define SCSI_OP_SYNCHRONIZE_CACHE_10 0x35
#define SCSI_OP_WRITE_SAME_10 0x41
#define SCSI_OP_UNMAP 0x42
#define SCSI_OP_SANITIZE 0x48
#define SCSI_OP_MODE_SELECT_10 0x55
#define SCSI_OP_RESERVE_10 0x56
#define SCSI_OP_RELEASE_10 0x57
#define SCSI_OP_MODE_SENSE_10 0x5a
#define SCSI_OP_PERSISTENT_RESERVE_IN 0x5e
#define SCSI_OP_PERSISTENT_RESERVE_OUT 0x5f
#define SCSI_OP_EXTENDED_COPY 0x83
#define SCSI_OP_RECEIVE_COPY_RESULTS 0x84
#define SCSI_OP_READ_16 0x88
#define SCSI_OP_COMPARE_AND_WRITE 0x89
#define SCSI_OP_WRITE_16 0x8a
#define SCSI_OP_ORWRITE_16 0x8b
#define SCSI_OP_WRITE_AND_VERIFY_16 0x8e
#define SCSI_OP_VERIFY_16 0x8f
#define SCSI_OP_PRE_FETCH_16 0x90
#define SCSI_OP_SYNCHRONIZE_CACHE_16 0x91
#define SCSI_OP_WRITE_SAME_16 0x93
#define SCSI_OP_WRITE_ATOMIC_16 0x9c
#define SCSI_OP_SERVICE_ACTION_IN_16 0x9e
#define SCSI_OP_REPORT_LUNS 0xa0
#define SCSI_OP_MAINTENANCE_IN 0xa3
#define SCSI_OP_READ_12 0xa8
#define SCSI_OP_WRITE_12 0xaa
#define SCSI_OP_WRITE_AND_VERIFY_12 0xae
#define SCSI_OP_VERIFY_12 0xaf
#define SCSI_OP_READ_DEFECT_DATA_12 0xb7

/* Service actions. */
#define SCSI_SA_READ_CAPACITY_16 0x10
#define SCSI_SA_GET_LBA_STATUS 0x12
#define SCSI_SA_REPORT_SUPPORTED_OPCODES 0x0c
#define SCSI_SA_REPORT_SUPPORTED_TMFS 0x0d
#define SCSI_SA_SANITIZE_OVERWRITE 0x01
#define SCSI_SA_SANITIZE_BLOCK_ERASE 0x02
#define SCSI_SA_SANITIZE_EXIT_FAILURE 0x1f
#define SCSI_SA_XCOPY_LID1 0x00
#define SCSI_SA_RCR_COPY_STATUS 0x00
#define SCSI_SA_RCR_OP_PARAMS 0x03

/*
 * Every way a command can fail. sense.c holds the one table mapping each to
 * sense key / ASC / ASCQ (SPC-4 4.5.6 and D.2).
 */
enum sense_reason {
	SENSE_OK = 0,
	SENSE_NO_SENSE,
	SENSE_INVALID_OPCODE,
	SENSE_INVALID_FIELD_CDB,
	SENSE_INVALID_FIELD_PARAM,
	SENSE_PARAM_LIST_LENGTH,
	SENSE_INVALID_FIELD_IU,
	SENSE_LBA_OUT_OF_RANGE,
	SENSE_LUN_NOT_SUPPORTED,
	SENSE_SAVING_NOT_SUPPORTED,
	SENSE_WRITE_PROTECTED,
	SENSE_MISCOMPARE_VERIFY,
	SENSE_MISCOMPARE_CAW,
	SENSE_READ_ERROR,
	SENSE_WRITE_ERROR,
	SENSE_SPACE_ALLOC_FAILED,
	SENSE_BECOMING_READY,
	SENSE_SANITIZE_IN_PROGRESS,
	SENSE_INTERNAL_FAILURE,
	SENSE_NO_RESOURCES,
	SENSE_MEDIUM_REMOVAL_PREVENTED,
	SENSE_RESERVATION_CONFLICT, /* status 18h, no sense data */
	SENSE_CONDITION_MET,	    /* status 04h, no sense data */
	SENSE_UNIT_ATTENTION,	    /* key 6; ASC/ASCQ from the UA queue */
	SENSE_PRESET,		    /* status and sense already set by the handler */
	SENSE_OPERATION_IN_PROGRESS,
	SENSE_TOO_MANY_TGT_DESCS,
	SENSE_UNSUPP_TGT_DESC,
	SENSE_TOO_MANY_SEG_DESCS,
	SENSE_UNSUPP_SEG_DESC,
	SENSE_COPY_TARGET_UNREACHABLE,
	SENSE_COPY_ABORTED,
	SENSE_REASON_COUNT,
};

/* Opcode table entry flags. */
#define OP_ANY_LUN (1u << 0)	 /* runs without an LU (INQUIRY, REPORT LUNS, REQUEST SENSE) */
#define OP_NO_UA (1u << 1)	 /* neither reports nor consumes a UA (SAM-5 5.14) */
#define OP_LBA (1u << 2)	 /* parse set lba/nblocks: central LBA range check */
#define OP_WRITES (1u << 3)	 /* modifies the medium: write protect, lock range */
#define OP_EXCL (1u << 4)	 /* holds its LBA range exclusively (COMPARE AND WRITE) */
#define OP_XFER_LIMIT (1u << 5)	 /* nblocks limited by MAXIMUM TRANSFER LENGTH */
#define OP_DATA_OUT (1u << 6)	 /* needs xfer_len bytes of Data-Out */
#define OP_DATA_EXACT (1u << 7)	 /* Data-Out must be exactly xfer_len bytes */
#define OP_PR_ALLOW (1u << 8)	 /* allowed under any reservation (SPC-4 table 63) */
#define OP_PR_READ (1u << 9)	 /* allowed under write-exclusive reservations only */
#define OP_R6_ALLOW (1u << 10)	 /* allowed when another nexus holds a RESERVE(6/10) */
#define OP_SA (1u << 11)	 /* .sa is a service-action table indexed by cdb[1] & 0x1f */
#define OP_SA_RSOC (1u << 12)	 /* reported by RSOC with SERVACTV */

struct scsi_op {
	const char *name;
	enum sense_reason (*parse)(struct scsi_cmd *cmd);
	void (*exec)(struct scsi_cmd *cmd);
	const struct scsi_op *sa; /* nested service-action table (32 entries) */
	uint8_t cdb_len;
	uint8_t sa_code;
	uint32_t flags;
	/* CDB USAGE DATA for REPORT SUPPORTED OPERATION CODES (SPC-4 6.35.3). */
	uint8_t usage[16];
};

/* cmd->flags (set by parse). */
#define CMD_FUA (1u << 0)
#define CMD_DPO (1u << 1)
#define CMD_BYTCHK (1u << 2)
#define CMD_UNMAP (1u << 3)
#define CMD_NDOB (1u << 4)
#define CMD_IMMED (1u << 5)
#define CMD_HAS_INFO (1u << 6)
#define CMD_LOCKED (1u << 7)	/* counted in lu->nlocked */
#define CMD_EXCL (1u << 8)
#define CMD_ORDERED (1u << 9)	/* counted in lu->nordered */
#define CMD_VERIFY (1u << 10)	/* WRITE AND VERIFY: read back and compare */

/* cmd->state. */
enum cmd_state {
	CMD_STATE_NEW = 0,
	CMD_STATE_WAITING, /* behind an ORDERED barrier or a conflicting range */
	CMD_STATE_RUNNING,
	CMD_STATE_DONE,	   /* done() posted */
};

/* cmd->priv_u64 slots. */
#define CMD_U64_FIELD 0	 /* sense-key specific field pointer, see scsi_field() */
#define CMD_U64_INFO 1	 /* INFORMATION field */
#define CMD_U64_LOCK_LBA 2 /* LBA range lock: first block */
#define CMD_U64_LOCK_N 3   /* LBA range lock: number of blocks */

#define SCSI_NEXUS_NONE UINT64_MAX /* "no nexus excepted" for scsi_ua_raise_all() */

/* A unit attention condition queued for one nexus (SAM-5 5.14). */
#define SCSI_UA_MAX 8

struct scsi_ua_state {
	struct scsi_ua_state *next;
	uint64_t nexus_id;
	char port[256]; /* initiator port name, to find a PR registrant's nexuses */
	uint8_t n;
	uint8_t asc[SCSI_UA_MAX];
	uint8_t ascq[SCSI_UA_MAX];
};

/* Persistent reservations (SPC-4 5.13). */
struct pr_reg {
	struct pr_reg *next;
	uint64_t key;
	char initiator_port[256]; /* "<name>,i,0x<isid>": the I_T nexus identity */
	char initiator_name[224];
	uint16_t rel_tgt_port;
	bool all_tg_pt;
};

struct pr_state {
	struct pr_reg *regs;
	uint32_t generation;
	struct pr_reg *holder; /* NULL: none; for AR types any registrant holds it */
	uint8_t type;	       /* PR type when holder != NULL */
	bool aptpl;
};

/* Per-command execution context for commands needing store ios. */
struct scsi_io_ctx {
	struct store_io io;
	struct scsi_cmd *cmd;
	struct scsi_io_ctx *next_free;
	uint8_t *buf; /* owned scratch buffer (WRITE SAME pattern, VERIFY, CAW) */
	size_t buf_cap;
	uint64_t pos; /* next LBA to process */
	uint64_t end;
	uint32_t step;
	uint32_t idx;
};

/* What RECEIVE COPY RESULTS / COPY STATUS reports for one EXTENDED COPY (SPC-4 6.18.3). */
struct xcopy_status {
	struct xcopy_status *next;
	uint64_t nexus_id;
	uint64_t bytes;	   /* transferred so far */
	uint16_t segments; /* segments processed */
	uint8_t list_id;
	uint8_t state; /* XCOPY_STATE_* */
};

#define XCOPY_STATE_RUNNING 0x00
#define XCOPY_STATE_OK 0x01
#define XCOPY_STATE_FAILED 0x02

struct scsi_lu {
	struct store *st;
	struct scsi_lu *reg_next; /* the daemon-wide LU registry (EXTENDED COPY targets) */
	struct scsi_target *target;
	uint64_t lun;
	char vendor[9];
	char product[17];
	char serial[256];
	uint64_t naa_id;
	char *pr_path;
	bool read_only;
	uint64_t nblocks;
	uint32_t block_size;

	/* Commands accepted and not yet completed, in arrival order. */
	struct scsi_cmd *head, *tail;
	unsigned busy;
	unsigned nwaiting;
	unsigned nordered; /* ORDERED commands in the list */
	unsigned nexcl;	   /* exclusive range holders/waiters in the list */
	bool in_wake;
	bool wake_again;

	struct scsi_ua_state *ua;
	struct scsi_io_ctx *free_ctx;

	/* Mode pages (SBC-3 6.4): current values. */
	bool wce;
	bool swp;
	bool d_sense;

	/* RESERVE(6/10) holder (SPC-2 7.21), nexus id; 0 = none. */
	uint64_t res6_nexus;
	bool res6_held;

	/* A SANITIZE is running: other commands get NOT READY (SBC-3 4.11.1). */
	bool sanitizing;

	struct pr_state pr;

	/* EXTENDED COPY: status kept for RECEIVE COPY RESULTS, copies running. */
	struct xcopy_status *xstat;
	unsigned ncopies;
};

struct scsi_target {
	char *name;
	struct reactor *reactor;
	struct scsi_lu **luns; /* SCSI_MAX_LUN + 1 slots: O(1) lookup */
	size_t nluns;
};

/* sense.c */
void scsi_build_sense(struct scsi_cmd *cmd, enum sense_reason r, uint8_t asc, uint8_t ascq);
enum sense_reason scsi_field(struct scsi_cmd *cmd, enum sense_reason r, unsigned byte,
			     int bit);
void scsi_set_info(struct scsi_cmd *cmd, uint64_t info);
enum sense_reason scsi_errno_reason(int err, bool is_write);
const char *scsi_reason_name(enum sense_reason r);
bool scsi_reason_lookup(enum sense_reason r, uint8_t *key, uint8_t *asc, uint8_t *ascq);

/* lu.c */
void scsi_cmd_complete(struct scsi_cmd *cmd, enum sense_reason r);
void scsi_ua_raise(struct scsi_lu *lu, uint64_t nexus_id, uint8_t asc, uint8_t ascq);
void scsi_ua_raise_all(struct scsi_lu *lu, uint64_t except_id, uint8_t asc, uint8_t ascq);
bool scsi_ua_pop(struct scsi_lu *lu, const struct scsi_nexus *n, uint8_t *asc, uint8_t *ascq);
struct scsi_io_ctx *scsi_ctx_get(struct scsi_cmd *cmd);
void scsi_ctx_put(struct scsi_cmd *cmd);
int scsi_alloc_data_in(struct scsi_cmd *cmd, size_t len);
/* Copy a built response, truncated to the allocation length. */
enum sense_reason scsi_reply(struct scsi_cmd *cmd, const uint8_t *buf, size_t len,
			     uint32_t alloc_len);
struct reactor *scsi_cmd_reactor(const struct scsi_cmd *cmd);
/*
 * Submit a command the SCSI layer issues itself (EXTENDED COPY's reads and
 * writes): like scsi_cmd_submit() but it neither reports nor consumes a unit
 * attention of cmd->nexus, which belongs to the initiator's own commands.
 */
void scsi_cmd_submit_internal(struct scsi_cmd *cmd);
/*
 * The LU whose VPD 0x83 NAA designator is these 8 bytes, among every LU of
 * the daemon (any target), or NULL. The result is only safe to use on the
 * reactor thread that owns that LU.
 */
struct scsi_lu *scsi_lu_find_naa(const uint8_t naa[8]);
/* The NAA designator VPD 0x83 reports for lu. */
void scsi_lu_naa(const struct scsi_lu *lu, uint8_t out[8]);

/* opcodes.c */
extern const struct scsi_op scsi_ops[256];
const struct scsi_op *scsi_op_lookup(struct scsi_cmd *cmd, enum sense_reason *r);
void scsi_exec_rsoc(struct scsi_cmd *cmd);

/* spc.c */
enum sense_reason spc_parse_none(struct scsi_cmd *cmd);
enum sense_reason spc_parse_inquiry(struct scsi_cmd *cmd);
void spc_exec_inquiry(struct scsi_cmd *cmd);
enum sense_reason spc_parse_report_luns(struct scsi_cmd *cmd);
void spc_exec_report_luns(struct scsi_cmd *cmd);
void spc_exec_tur(struct scsi_cmd *cmd);
enum sense_reason spc_parse_request_sense(struct scsi_cmd *cmd);
void spc_exec_request_sense(struct scsi_cmd *cmd);
enum sense_reason spc_parse_mode_sense(struct scsi_cmd *cmd);
void spc_exec_mode_sense(struct scsi_cmd *cmd);
enum sense_reason spc_parse_mode_select(struct scsi_cmd *cmd);
void spc_exec_mode_select(struct scsi_cmd *cmd);
enum sense_reason spc_parse_start_stop(struct scsi_cmd *cmd);
void spc_exec_good(struct scsi_cmd *cmd);
enum sense_reason spc_parse_reserve(struct scsi_cmd *cmd);
void spc_exec_reserve(struct scsi_cmd *cmd);
void spc_exec_release(struct scsi_cmd *cmd);
enum sense_reason spc_parse_rsoc(struct scsi_cmd *cmd);
enum sense_reason spc_parse_rstmf(struct scsi_cmd *cmd);
void spc_exec_rstmf(struct scsi_cmd *cmd);
void spc_mode_reset(struct scsi_lu *lu);
size_t spc_lun_list(const struct scsi_target *t, uint8_t *out, size_t cap);

/* sbc.c */
enum sense_reason sbc_parse_rw(struct scsi_cmd *cmd);
void sbc_exec_read(struct scsi_cmd *cmd);
void sbc_exec_write(struct scsi_cmd *cmd);
enum sense_reason sbc_parse_verify(struct scsi_cmd *cmd);
void sbc_exec_verify(struct scsi_cmd *cmd);
enum sense_reason sbc_parse_read_capacity_10(struct scsi_cmd *cmd);
void sbc_exec_read_capacity_10(struct scsi_cmd *cmd);
enum sense_reason sbc_parse_read_capacity_16(struct scsi_cmd *cmd);
void sbc_exec_read_capacity_16(struct scsi_cmd *cmd);
enum sense_reason sbc_parse_sync_cache(struct scsi_cmd *cmd);
void sbc_exec_sync_cache(struct scsi_cmd *cmd);
enum sense_reason sbc_parse_write_same(struct scsi_cmd *cmd);
void sbc_exec_write_same(struct scsi_cmd *cmd);
enum sense_reason sbc_parse_unmap(struct scsi_cmd *cmd);
void sbc_exec_unmap(struct scsi_cmd *cmd);
enum sense_reason sbc_parse_get_lba_status(struct scsi_cmd *cmd);
void sbc_exec_get_lba_status(struct scsi_cmd *cmd);
enum sense_reason sbc_parse_caw(struct scsi_cmd *cmd);
void sbc_exec_caw(struct scsi_cmd *cmd);
enum sense_reason sbc_parse_prefetch(struct scsi_cmd *cmd);
void sbc_exec_prefetch(struct scsi_cmd *cmd);
/* Block Limits values (also used by central checks). */
uint32_t sbc_max_xfer_blocks(const struct scsi_lu *lu);
uint32_t sbc_max_ws_blocks(const struct scsi_lu *lu);
uint32_t sbc_max_caw_blocks(void);
uint32_t sbc_max_unmap_blocks(const struct scsi_lu *lu);
uint32_t sbc_max_unmap_descs(void);
bool sbc_is_thin(const struct scsi_lu *lu);
uint32_t sbc_max_atomic_blocks(const struct scsi_lu *lu);
void sbc_exec_orwrite(struct scsi_cmd *cmd);
enum sense_reason sbc_parse_write_atomic(struct scsi_cmd *cmd);
enum sense_reason sbc_parse_read_defect(struct scsi_cmd *cmd);
void sbc_exec_read_defect(struct scsi_cmd *cmd);
enum sense_reason sbc_parse_sanitize(struct scsi_cmd *cmd);
void sbc_exec_sanitize(struct scsi_cmd *cmd);

/* xcopy.c */
enum sense_reason xcopy_parse(struct scsi_cmd *cmd);
void xcopy_exec(struct scsi_cmd *cmd);
enum sense_reason xcopy_parse_rcr(struct scsi_cmd *cmd);
void xcopy_exec_rcr(struct scsi_cmd *cmd);
void xcopy_nexus_gone(struct scsi_lu *lu, uint64_t nexus_id);
void xcopy_free(struct scsi_lu *lu);

/* pr.c */
enum sense_reason pr_parse_in(struct scsi_cmd *cmd);
void pr_exec_in(struct scsi_cmd *cmd);
enum sense_reason pr_parse_out(struct scsi_cmd *cmd);
void pr_exec_out(struct scsi_cmd *cmd);
/* Reservation conflict check for a parsed command (SPC-4 5.13.1, table 63). */
bool pr_conflicts(const struct scsi_lu *lu, const struct scsi_cmd *cmd, const struct scsi_op *op);
int pr_load(struct scsi_lu *lu);
void pr_free(struct scsi_lu *lu);

#endif
