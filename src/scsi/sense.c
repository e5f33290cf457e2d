/*
 * sense.c - the one table from sense reason to key/ASC/ASCQ, and fixed-format
 * sense data (SPC-4 4.5.3).
 */
#include <errno.h>
#include <string.h>

#include "scsi_internal.h"

#define KEY_NO_SENSE 0x0
#define KEY_NOT_READY 0x2
#define KEY_MEDIUM_ERROR 0x3
#define KEY_HARDWARE_ERROR 0x4
#define KEY_ILLEGAL_REQUEST 0x5
#define KEY_UNIT_ATTENTION 0x6
#define KEY_DATA_PROTECT 0x7
#define KEY_COPY_ABORTED 0xa
#define KEY_MISCOMPARE 0xe

/* Fixed format sense data layout (SPC-4 4.5.3, table 48). */
#define SENSE_FIXED_LEN 18
#define SENSE_OFF_KEY 2
#define SENSE_OFF_INFO 3
#define SENSE_OFF_ADD_LEN 7
#define SENSE_OFF_ASC 12
#define SENSE_OFF_ASCQ 13
#define SENSE_OFF_SKS 15
_Static_assert(SENSE_FIXED_LEN <= SCSI_SENSE_MAX, "sense buffer too small");

/* Field pointer encoding in priv_u64[CMD_U64_FIELD]. */
#define FIELD_VALID (1ull << 32)
#define FIELD_CDB (1ull << 33)
#define FIELD_BPV (1ull << 34)

struct sense_entry {
	const char *name;
	uint8_t status;
	uint8_t key;
	uint8_t asc;
	uint8_t ascq;
};

static const struct sense_entry g_sense_table[SENSE_REASON_COUNT] = {
	[SENSE_OK] = { "ok", SCSI_STATUS_GOOD, 0, 0, 0 },
	[SENSE_NO_SENSE] = { "no sense", SCSI_STATUS_GOOD, KEY_NO_SENSE, 0, 0 },
	[SENSE_INVALID_OPCODE] = { "invalid opcode", SCSI_STATUS_CHECK_CONDITION,
				   KEY_ILLEGAL_REQUEST, 0x20, 0x00 },
	[SENSE_INVALID_FIELD_CDB] = { "invalid field in cdb", SCSI_STATUS_CHECK_CONDITION,
				      KEY_ILLEGAL_REQUEST, 0x24, 0x00 },
	[SENSE_INVALID_FIELD_PARAM] = { "invalid field in parameter list",
					SCSI_STATUS_CHECK_CONDITION, KEY_ILLEGAL_REQUEST, 0x26,
					0x00 },
	[SENSE_PARAM_LIST_LENGTH] = { "parameter list length error",
				      SCSI_STATUS_CHECK_CONDITION, KEY_ILLEGAL_REQUEST, 0x1a,
				      0x00 },
	[SENSE_INVALID_FIELD_IU] = { "invalid field in command information unit",
				     SCSI_STATUS_CHECK_CONDITION, KEY_ILLEGAL_REQUEST, 0x0e,
				     0x03 },
	[SENSE_LBA_OUT_OF_RANGE] = { "lba out of range", SCSI_STATUS_CHECK_CONDITION,
				     KEY_ILLEGAL_REQUEST, 0x21, 0x00 },
	[SENSE_LUN_NOT_SUPPORTED] = { "logical unit not supported", SCSI_STATUS_CHECK_CONDITION,
				      KEY_ILLEGAL_REQUEST, 0x25, 0x00 },
	[SENSE_SAVING_NOT_SUPPORTED] = { "saving parameters not supported",
					 SCSI_STATUS_CHECK_CONDITION, KEY_ILLEGAL_REQUEST, 0x39,
					 0x00 },
	[SENSE_WRITE_PROTECTED] = { "write protected", SCSI_STATUS_CHECK_CONDITION,
				    KEY_DATA_PROTECT, 0x27, 0x00 },
	[SENSE_MISCOMPARE_VERIFY] = { "miscompare during verify",
				      SCSI_STATUS_CHECK_CONDITION, KEY_MISCOMPARE, 0x1d, 0x00 },
	[SENSE_MISCOMPARE_CAW] = { "miscompare during compare and write",
				   SCSI_STATUS_CHECK_CONDITION, KEY_MISCOMPARE, 0x1d, 0x00 },
	[SENSE_READ_ERROR] = { "unrecovered read error", SCSI_STATUS_CHECK_CONDITION,
			       KEY_MEDIUM_ERROR, 0x11, 0x00 },
	[SENSE_WRITE_ERROR] = { "write error", SCSI_STATUS_CHECK_CONDITION, KEY_MEDIUM_ERROR,
				0x0c, 0x00 },
	[SENSE_SPACE_ALLOC_FAILED] = { "space allocation failed write protect",
				       SCSI_STATUS_CHECK_CONDITION, KEY_DATA_PROTECT, 0x27,
				       0x07 },
	[SENSE_BECOMING_READY] = { "logical unit is in process of becoming ready",
				   SCSI_STATUS_CHECK_CONDITION, KEY_NOT_READY, 0x04, 0x01 },
	[SENSE_SANITIZE_IN_PROGRESS] = { "sanitize in progress", SCSI_STATUS_CHECK_CONDITION,
					 KEY_NOT_READY, 0x04, 0x1b },
	[SENSE_INTERNAL_FAILURE] = { "internal target failure", SCSI_STATUS_CHECK_CONDITION,
				     KEY_HARDWARE_ERROR, 0x44, 0x00 },
	[SENSE_NO_RESOURCES] = { "insufficient resources", SCSI_STATUS_CHECK_CONDITION,
				 KEY_ILLEGAL_REQUEST, 0x55, 0x03 },
	[SENSE_MEDIUM_REMOVAL_PREVENTED] = { "medium removal prevented",
					     SCSI_STATUS_CHECK_CONDITION, KEY_ILLEGAL_REQUEST,
					     0x53, 0x02 },
	[SENSE_RESERVATION_CONFLICT] = { "reservation conflict",
					 SCSI_STATUS_RESERVATION_CONFLICT, 0, 0, 0 },
	[SENSE_CONDITION_MET] = { "condition met", SCSI_STATUS_CONDITION_MET, 0, 0, 0 },
	[SENSE_UNIT_ATTENTION] = { "unit attention", SCSI_STATUS_CHECK_CONDITION,
				   KEY_UNIT_ATTENTION, 0, 0 },
	[SENSE_PRESET] = { "status set by handler", SCSI_STATUS_CHECK_CONDITION, 0, 0, 0 },
	[SENSE_OPERATION_IN_PROGRESS] = { "operation in progress", SCSI_STATUS_CHECK_CONDITION,
					  KEY_ILLEGAL_REQUEST, 0x00, 0x16 },
	/* SPC-4 6.4.3: EXTENDED COPY descriptor list errors. */
	[SENSE_TOO_MANY_TGT_DESCS] = { "too many target descriptors",
				       SCSI_STATUS_CHECK_CONDITION, KEY_ILLEGAL_REQUEST, 0x26,
				       0x06 },
	[SENSE_UNSUPP_TGT_DESC] = { "unsupported target descriptor type code",
				    SCSI_STATUS_CHECK_CONDITION, KEY_ILLEGAL_REQUEST, 0x26, 0x07 },
	[SENSE_TOO_MANY_SEG_DESCS] = { "too many segment descriptors",
				       SCSI_STATUS_CHECK_CONDITION, KEY_ILLEGAL_REQUEST, 0x26,
				       0x08 },
	[SENSE_UNSUPP_SEG_DESC] = { "unsupported segment descriptor type code",
				    SCSI_STATUS_CHECK_CONDITION, KEY_ILLEGAL_REQUEST, 0x26, 0x09 },
	/* SPC-4 6.4.5: errors while processing a segment abort the copy. */
	[SENSE_COPY_TARGET_UNREACHABLE] = { "copy target device not reachable",
					    SCSI_STATUS_CHECK_CONDITION, KEY_COPY_ABORTED, 0x0d,
					    0x02 },
	[SENSE_COPY_ABORTED] = { "copy aborted", SCSI_STATUS_CHECK_CONDITION, KEY_COPY_ABORTED,
				 0x00, 0x00 },
};

const char *scsi_reason_name(enum sense_reason r)
{
	if ((unsigned)r >= SENSE_REASON_COUNT) {
		return "?";
	}
	return g_sense_table[r].name;
}

bool scsi_reason_lookup(enum sense_reason r, uint8_t *key, uint8_t *asc, uint8_t *ascq)
{
	if ((unsigned)r >= SENSE_REASON_COUNT) {
		return false;
	}
	*key = g_sense_table[r].key;
	*asc = g_sense_table[r].asc;
	*ascq = g_sense_table[r].ascq;
	return true;
}

enum sense_reason scsi_field(struct scsi_cmd *cmd, enum sense_reason r, unsigned byte, int bit)
{
	uint64_t v = FIELD_VALID | (byte & 0xffffu);

	if (r == SENSE_INVALID_FIELD_CDB) {
		v |= FIELD_CDB;
	}
	if (bit >= 0) {
		v |= FIELD_BPV | ((uint64_t)(bit & 7) << 16);
	}
	cmd->priv_u64[CMD_U64_FIELD] = v;
	return r;
}

void scsi_set_info(struct scsi_cmd *cmd, uint64_t info)
{
	cmd->priv_u64[CMD_U64_INFO] = info;
	cmd->flags |= CMD_HAS_INFO;
}

/*
 * Build status and sense for reason r. asc/ascq are only used for
 * SENSE_UNIT_ATTENTION and SENSE_NO_SENSE (REQUEST SENSE with a deferred UA).
 */
void scsi_build_sense(struct scsi_cmd *cmd, enum sense_reason r, uint8_t asc, uint8_t ascq)
{
	const struct sense_entry *e;
	uint8_t *s = cmd->sense;
	uint64_t field;

	if ((unsigned)r >= SENSE_REASON_COUNT) {
		r = SENSE_INTERNAL_FAILURE;
	}
	e = &g_sense_table[r];
	cmd->status = e->status;
	cmd->sense_len = 0;
	if (e->status != SCSI_STATUS_CHECK_CONDITION) {
		return;
	}
	memset(s, 0, SENSE_FIXED_LEN);
	s[0] = 0x70;
	s[SENSE_OFF_KEY] = e->key;
	s[SENSE_OFF_ADD_LEN] = SENSE_FIXED_LEN - 8;
	if (r == SENSE_UNIT_ATTENTION) {
		s[SENSE_OFF_ASC] = asc;
		s[SENSE_OFF_ASCQ] = ascq;
	} else {
		s[SENSE_OFF_ASC] = e->asc;
		s[SENSE_OFF_ASCQ] = e->ascq;
	}
	if (cmd->flags & CMD_HAS_INFO) {
		/* VALID bit: INFORMATION holds the LBA or offset (SPC-4 4.5.3). */
		s[0] |= 0x80;
		put_be32(s + SENSE_OFF_INFO, (uint32_t)cmd->priv_u64[CMD_U64_INFO]);
	}
	field = cmd->priv_u64[CMD_U64_FIELD];
	if ((field & FIELD_VALID) &&
	    (r == SENSE_INVALID_FIELD_CDB || r == SENSE_INVALID_FIELD_PARAM ||
	     r == SENSE_PARAM_LIST_LENGTH)) {
		/* Field pointer sense-key specific data (SPC-4 4.5.2.4.2). */
		s[SENSE_OFF_SKS] = 0x80;
		if (field & FIELD_CDB) {
			s[SENSE_OFF_SKS] |= 0x40;
		}
		if (field & FIELD_BPV) {
			s[SENSE_OFF_SKS] |= 0x08 | (uint8_t)((field >> 16) & 7);
		}
		put_be16(s + SENSE_OFF_SKS + 1, (uint16_t)field);
	}
	cmd->sense_len = SENSE_FIXED_LEN;
}

/*
 * Store errno -> sense reason (store.h lists the errnos). A transient back-end
 * failure (-ETIMEDOUT/-EAGAIN, e.g. S3 unreachable) becomes NOT READY / LOGICAL
 * UNIT IS IN PROCESS OF BECOMING READY: SPC-4 4.5.6 makes it a condition the
 * initiator retries after a delay (Linux sd does a delayed retry for 04/01),
 * whereas MEDIUM or HARDWARE ERROR would fail the I/O to the file system.
 */
enum sense_reason scsi_errno_reason(int err, bool is_write)
{
	switch (err) {
	case 0:
		return SENSE_OK;
	case -EIO:
	case -EILSEQ:
		return is_write ? SENSE_WRITE_ERROR : SENSE_READ_ERROR;
	case -ENOSPC:
		return SENSE_SPACE_ALLOC_FAILED;
	case -ETIMEDOUT:
	case -EAGAIN:
		return SENSE_BECOMING_READY;
	case -EROFS:
		return SENSE_WRITE_PROTECTED;
	default:
		return SENSE_INTERNAL_FAILURE;
	}
}
