/*
 * scsi.h - the SCSI target layer (SPC-4 / SBC-3): logical units backed by a
 * store, targets as LUN tables, and the command contract with a transport.
 *
 * Contract with the transport (iSCSI):
 *  1. The transport fills a struct scsi_cmd (embedded in its own task), collects
 *     all Data-Out (exp_data_len bytes for a write) and calls scsi_cmd_submit().
 *  2. The SCSI layer parses the CDB ("parse, then execute"), runs central
 *     checks (LUN, UA, reservation, LBA range, transfer length), executes, and
 *     calls cmd->done(cmd) exactly once, later, on the reactor thread
 *     (never inside scsi_cmd_submit()).
 *  3. In done(), status/sense/data_in are set. The transport sends
 *     min(data_in_len, exp_data_len) bytes of data_in and reports residuals
 *     against cmd->xfer_len; then calls scsi_cmd_fini() to release data_in.
 * Everything runs on the one reactor thread; no locks.
 */
#ifndef S3TGT_SCSI_H
#define S3TGT_SCSI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct scsi_lu;
struct scsi_target;
struct scsi_cmd;

#define SCSI_CDB_MAX 32
#define SCSI_SENSE_MAX 96
#define SCSI_MAX_LUN 16383 /* flat space addressing, SAM-5 4.7.7 */
#define SCSI_LUN_INVALID UINT64_MAX

/* SAM-5 status codes. */
#define SCSI_STATUS_GOOD 0x00
#define SCSI_STATUS_CHECK_CONDITION 0x02
#define SCSI_STATUS_CONDITION_MET 0x04
#define SCSI_STATUS_BUSY 0x08
#define SCSI_STATUS_RESERVATION_CONFLICT 0x18
#define SCSI_STATUS_TASK_SET_FULL 0x28
#define SCSI_STATUS_TASK_ABORTED 0x40

enum scsi_task_attr {
	SCSI_ATTR_UNTAGGED = 0,
	SCSI_ATTR_SIMPLE = 1,
	SCSI_ATTR_ORDERED = 2,
	SCSI_ATTR_HEAD_OF_QUEUE = 3,
	SCSI_ATTR_ACA = 4,
};

/*
 * An I_T nexus: one initiator port (iSCSI: session's initiator name + ISID)
 * seen through one target port. Owned by the transport, outlives every command
 * that points at it; the transport calls scsi_nexus_gone() before freeing it.
 */
struct scsi_nexus {
	uint64_t id;		   /* unique for the daemon's lifetime */
	char initiator_name[224];  /* iSCSI name, for PR TransportIDs (SPC-4 7.6.4.6) */
	uint8_t isid[6];
	char initiator_port[256];  /* "<name>,i,0x<isid hex>" (RFC 7143 / SPC-4 port name) */
	uint16_t rel_tgt_port;	   /* relative target port identifier, from the portal group */
};

typedef void (*scsi_done_fn)(struct scsi_cmd *cmd);

struct scsi_cmd {
	/* --- set by the transport before scsi_cmd_submit() --- */
	struct scsi_target *target; /* borrowed */
	struct scsi_nexus *nexus;   /* borrowed */
	uint64_t lun;		    /* decoded LUN number, SCSI_LUN_INVALID if undecodable */
	uint8_t cdb[SCSI_CDB_MAX];
	uint8_t cdb_len;
	enum scsi_task_attr attr;
	uint32_t tag;		/* initiator task tag, for logs and TMF matching */
	uint32_t exp_data_len;	/* expected data transfer length from the transport */
	bool is_read;		/* transport's direction bits */
	bool is_write;
	uint8_t *data_out;	/* borrowed: write data, data_out_len bytes */
	uint32_t data_out_len;
	scsi_done_fn done;
	void *done_arg;

	/* --- set by the SCSI layer before done() --- */
	uint8_t status;
	uint8_t sense[SCSI_SENSE_MAX];
	uint32_t sense_len;
	uint8_t *data_in;      /* owned by the cmd, released by scsi_cmd_fini() */
	uint32_t data_in_len;  /* bytes of valid data_in */
	uint32_t xfer_len;     /* bytes the CDB asked to move, for residual computation */
	bool aborted;	       /* scsi_cmd_abort() was called: the transport sends no response */

	/* --- private to the SCSI layer --- */
	struct scsi_lu *lu;
	struct scsi_cmd *lu_next, *lu_prev; /* LU's list of commands in progress */
	const void *op;			    /* opcode table entry */
	uint64_t lba;
	uint32_t nblocks;
	uint32_t flags;
	int state;
	void *priv;
	uint64_t priv_u64[4];
};

/* Identity and limits of a logical unit, given at creation. */
struct scsi_lu_params {
	const char *vendor;	/* 8 chars max, default "S3TGT" */
	const char *product;	/* 16 chars max, default "s3tgt <store>" */
	const char *serial;	/* unit serial number (VPD 0x80), required */
	uint64_t naa_id;	/* NAA identifier (VPD 0x83), locally assigned (NAA 3) */
	const char *pr_path;	/* file for APTPL persistent reservations; NULL = none */
	bool read_only;
};

/*
 * Create an LU on an open store (takes ownership of st: scsi_lu_destroy closes it).
 * Returns 0 or -errno.
 */
int scsi_lu_create(struct store *st, const struct scsi_lu_params *p, struct scsi_lu **out);
/* Every command must have completed. NULL is a no-op. */
void scsi_lu_destroy(struct scsi_lu *lu);
struct store *scsi_lu_store(struct scsi_lu *lu);
/* Number of commands in progress on the LU (for drain and delete-in-use checks). */
unsigned scsi_lu_busy(const struct scsi_lu *lu);
/* The store grew to its new st->size: update capacity, raise CAPACITY DATA HAS CHANGED UA. */
void scsi_lu_capacity_changed(struct scsi_lu *lu);

/* A target: a table of LUNs 0..SCSI_MAX_LUN plus the names VPD 0x83 reports. */
int scsi_target_create(const char *name, struct scsi_target **out);
void scsi_target_destroy(struct scsi_target *t); /* destroys its LUs */
/* Takes ownership of lu. -EEXIST if the LUN is taken, -ERANGE if > SCSI_MAX_LUN. */
int scsi_target_add_lu(struct scsi_target *t, uint64_t lun, struct scsi_lu *lu);
/* Removes and returns the LU (caller destroys it), NULL if none. Raises REPORTED LUNS DATA HAS CHANGED. */
struct scsi_lu *scsi_target_remove_lu(struct scsi_target *t, uint64_t lun);
struct scsi_lu *scsi_target_get_lu(const struct scsi_target *t, uint64_t lun);
/*
 * The reactor on which commands for LUNs without an LU complete (REPORT LUNS,
 * INQUIRY on an empty LUN). Defaults to the first added LU's store reactor.
 */
struct reactor;
void scsi_target_set_reactor(struct scsi_target *t, struct reactor *r);
/* Fills luns[] (ascending) up to max; returns how many LUs exist. */
size_t scsi_target_luns(const struct scsi_target *t, uint64_t *luns, size_t max);
const char *scsi_target_name(const struct scsi_target *t);

/* Submit a command; done() runs exactly once, later. */
void scsi_cmd_submit(struct scsi_cmd *cmd);
/*
 * Task management: mark the command aborted. A command not yet executing
 * completes at once (deferred) with aborted set; one waiting on the store
 * completes when the store returns. done() still runs exactly once.
 */
void scsi_cmd_abort(struct scsi_cmd *cmd);
/* Release data_in. Safe on a zeroed cmd. */
void scsi_cmd_fini(struct scsi_cmd *cmd);

/*
 * LOGICAL UNIT RESET effects after the transport aborted the tasks (SAM-5
 * 6.6): clear reservations made with RESERVE(6/10), reset mode pages, raise
 * BUS DEVICE RESET FUNCTION OCCURRED for every nexus. `from` may be NULL.
 */
void scsi_lu_reset(struct scsi_lu *lu, const struct scsi_nexus *from);
/* The nexus is going away (session ended): drop its UA state and RESERVE(6) reservations. */
void scsi_nexus_gone(struct scsi_target *t, const struct scsi_nexus *n);
/* Raise a unit attention for every nexus except `except` (may be NULL) on every LU. */
void scsi_target_raise_ua(struct scsi_target *t, const struct scsi_nexus *except, uint8_t asc,
			  uint8_t ascq);

/* LUN encoding per SAM-5 4.7: peripheral (<256) or flat space (<16384). */
void scsi_lun_encode(uint64_t lun, uint8_t out[8]);
/* Returns the LUN number, or SCSI_LUN_INVALID for any other addressing method. */
uint64_t scsi_lun_decode(const uint8_t in[8]);

#endif
