/*
 * iscsi_internal.h - private types of the iSCSI module: wire constants
 * (RFC 7143 chapter 11), the receive state machine, negotiated parameters,
 * connections, sessions and tasks.
 *
 * Object lifetimes: a connection carries its session (MaxConnections=1,
 * ErrorRecoveryLevel=0, so the session ends with its only connection). The
 * connection is reference counted: one reference while the socket is open,
 * one per live task, one per posted reactor message; it is freed (and
 * scsi_nexus_gone() called) when the count drops to zero, so store
 * completions that arrive after a disconnect always find their task.
 */
#ifndef S3TGT_ISCSI_INTERNAL_H
#define S3TGT_ISCSI_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "s3tgt/core.h"
#include "s3tgt/iscsi.h"
#include "s3tgt/scsi.h"

/* ---- RFC 7143 11.2: the Basic Header Segment ---- */
#define ISCSI_BHS_LEN 48
#define ISCSI_DIGEST_LEN 4
#define ISCSI_AHS_MAX (255 * 4) /* TotalAHSLength is one byte of 4-byte words */
#define ISCSI_PAD(n) ((4u - ((n) & 3u)) & 3u)

#define ISCSI_BHS_OPCODE 0	 /* 11.2.1.2: bit 6 = I, bits 0-5 opcode */
#define ISCSI_BHS_FLAGS 1
#define ISCSI_BHS_AHS_LEN 4	 /* 11.2.1.4 */
#define ISCSI_BHS_DATA_LEN 5	 /* 11.2.1.5, 3 bytes */
#define ISCSI_BHS_LUN 8		 /* 11.2.1.6 */
#define ISCSI_BHS_ITT 16	 /* 11.2.1.8 */
#define ISCSI_BHS_TTT 20	 /* target transfer tag (Data-Out, NOP, Text, R2T) */
#define ISCSI_BHS_CMDSN 24	 /* requests */
#define ISCSI_BHS_EXPSTATSN 28	 /* requests */
#define ISCSI_BHS_STATSN 24	 /* responses */
#define ISCSI_BHS_EXPCMDSN 28	 /* responses */
#define ISCSI_BHS_MAXCMDSN 32	 /* responses */

#define ISCSI_OP_MASK 0x3f
#define ISCSI_OP_IMMEDIATE 0x40
#define ISCSI_FLAG_FINAL 0x80

/* 11.2.1.2 opcodes, initiator */
#define ISCSI_OP_NOP_OUT 0x00
#define ISCSI_OP_SCSI_CMD 0x01
#define ISCSI_OP_TMF_REQ 0x02
#define ISCSI_OP_LOGIN_REQ 0x03
#define ISCSI_OP_TEXT_REQ 0x04
#define ISCSI_OP_DATA_OUT 0x05
#define ISCSI_OP_LOGOUT_REQ 0x06
#define ISCSI_OP_SNACK_REQ 0x10
/* target */
#define ISCSI_OP_NOP_IN 0x20
#define ISCSI_OP_SCSI_RSP 0x21
#define ISCSI_OP_TMF_RSP 0x22
#define ISCSI_OP_LOGIN_RSP 0x23
#define ISCSI_OP_TEXT_RSP 0x24
#define ISCSI_OP_DATA_IN 0x25
#define ISCSI_OP_LOGOUT_RSP 0x26
#define ISCSI_OP_R2T 0x31
#define ISCSI_OP_ASYNC 0x32
#define ISCSI_OP_REJECT 0x3f

#define ISCSI_RSVD_TAG 0xffffffffu

/* 11.3 SCSI Command */
#define ISCSI_CMD_FLAG_READ 0x40
#define ISCSI_CMD_FLAG_WRITE 0x20
#define ISCSI_CMD_ATTR_MASK 0x07
#define ISCSI_CMD_EDTL 20
#define ISCSI_CMD_CDB 32
#define ISCSI_CMD_CDB_LEN 16
#define ISCSI_AHS_TYPE_EXT_CDB 1  /* 11.2.2.3 */
#define ISCSI_AHS_TYPE_BIDI_LEN 2 /* 11.2.2.4 */

/* 11.4 SCSI Response */
#define ISCSI_RSP_FLAG_OVERFLOW 0x04
#define ISCSI_RSP_FLAG_UNDERFLOW 0x02
#define ISCSI_RSP_RESPONSE 2
#define ISCSI_RSP_STATUS 3
#define ISCSI_RSP_EXPDATASN 36
#define ISCSI_RSP_RESIDUAL 44
#define ISCSI_RSP_COMPLETED 0x00
#define ISCSI_RSP_TARGET_FAILURE 0x01

/* 11.7 Data-In / Data-Out */
#define ISCSI_DATA_FLAG_STATUS 0x01
#define ISCSI_DATA_STATUS 3
#define ISCSI_DATA_DATASN 36
#define ISCSI_DATA_OFFSET 40
#define ISCSI_DATA_RESIDUAL 44

/* 11.8 R2T */
#define ISCSI_R2T_R2TSN 36
#define ISCSI_R2T_OFFSET 40
#define ISCSI_R2T_DESIRED_LEN 44

/* 11.5 / 11.6 Task management */
#define ISCSI_TMF_FUNC_MASK 0x7f
#define ISCSI_TMF_REF_TAG 20
#define ISCSI_TMF_REF_CMDSN 32
#define ISCSI_TMF_RESPONSE 2
enum iscsi_tmf_func {
	ISCSI_TMF_ABORT_TASK = 1,
	ISCSI_TMF_ABORT_TASK_SET = 2,
	ISCSI_TMF_CLEAR_ACA = 3,
	ISCSI_TMF_CLEAR_TASK_SET = 4,
	ISCSI_TMF_LUN_RESET = 5,
	ISCSI_TMF_TARGET_WARM_RESET = 6,
	ISCSI_TMF_TARGET_COLD_RESET = 7,
	ISCSI_TMF_TASK_REASSIGN = 8,
};
enum iscsi_tmf_response {
	ISCSI_TMF_RSP_COMPLETE = 0,
	ISCSI_TMF_RSP_NO_TASK = 1,
	ISCSI_TMF_RSP_NO_LUN = 2,
	ISCSI_TMF_RSP_NOT_SUPPORTED = 5,
	ISCSI_TMF_RSP_REJECTED = 255,
};

/* 11.12 / 11.13 Login */
#define ISCSI_LOGIN_FLAG_TRANSIT 0x80
#define ISCSI_LOGIN_FLAG_CONTINUE 0x40
#define ISCSI_LOGIN_CSG(f) (((f) >> 2) & 3)
#define ISCSI_LOGIN_NSG(f) ((f) & 3)
#define ISCSI_LOGIN_VERSION_MAX 2
#define ISCSI_LOGIN_VERSION_MIN 3 /* request; response: version-active */
#define ISCSI_LOGIN_ISID 8
#define ISCSI_LOGIN_TSIH 14
#define ISCSI_LOGIN_CID 20
#define ISCSI_LOGIN_STATUS_CLASS 36
#define ISCSI_LOGIN_STATUS_DETAIL 37
#define ISCSI_STAGE_SECURITY 0
#define ISCSI_STAGE_OPERATIONAL 1
#define ISCSI_STAGE_FFP 3

/* 11.13.5 Status-Class and Status-Detail, as one 16-bit value. */
enum iscsi_login_status {
	ISCSI_LOGIN_OK = 0x0000,
	ISCSI_LOGIN_INITIATOR_ERROR = 0x0200,
	ISCSI_LOGIN_AUTH_FAILED = 0x0201,
	ISCSI_LOGIN_NOT_AUTHORIZED = 0x0202,
	ISCSI_LOGIN_NOT_FOUND = 0x0203,
	ISCSI_LOGIN_UNSUPPORTED_VERSION = 0x0205,
	ISCSI_LOGIN_TOO_MANY_CONNECTIONS = 0x0206,
	ISCSI_LOGIN_MISSING_PARAMETER = 0x0207,
	ISCSI_LOGIN_SESSION_TYPE_UNSUPPORTED = 0x0209,
	ISCSI_LOGIN_NO_SESSION = 0x020a,
	ISCSI_LOGIN_INVALID_DURING_LOGIN = 0x020b,
	ISCSI_LOGIN_TARGET_ERROR = 0x0300,
	ISCSI_LOGIN_SERVICE_UNAVAILABLE = 0x0301,
	ISCSI_LOGIN_OUT_OF_RESOURCES = 0x0302,
};

/* 11.14 / 11.15 Logout */
#define ISCSI_LOGOUT_REASON_MASK 0x7f
#define ISCSI_LOGOUT_RESPONSE 2
#define ISCSI_LOGOUT_TIME2WAIT 40
#define ISCSI_LOGOUT_TIME2RETAIN 42

/* 11.10 / 11.11 Text */
#define ISCSI_TEXT_FLAG_CONTINUE 0x40

/* 11.17 Reject */
#define ISCSI_REJECT_REASON 2
enum iscsi_reject_reason {
	ISCSI_REJECT_DATA_DIGEST = 0x02,
	ISCSI_REJECT_SNACK = 0x03,
	ISCSI_REJECT_PROTOCOL_ERROR = 0x04,
	ISCSI_REJECT_CMD_NOT_SUPPORTED = 0x05,
	ISCSI_REJECT_INVALID_PDU_FIELD = 0x09,
	ISCSI_REJECT_WAITING_LOGOUT = 0x0c,
};

_Static_assert(ISCSI_CMD_CDB + ISCSI_CMD_CDB_LEN == ISCSI_BHS_LEN, "CDB ends the BHS");
_Static_assert(ISCSI_DATA_RESIDUAL + 4 == ISCSI_BHS_LEN, "residual ends the BHS");
_Static_assert(ISCSI_R2T_DESIRED_LEN + 4 == ISCSI_BHS_LEN, "desired length ends the BHS");
_Static_assert(ISCSI_AHS_MAX == 1020, "TotalAHSLength is one byte of words");

/* ---- limits and our negotiation offers ---- */
#define ISCSI_MRDSL_MIN 512
#define ISCSI_MRDSL_MAX 16777215	 /* RFC 7143 13.12: 2^24 - 1 */
#define ISCSI_OUR_MRDSL (256 * 1024)	 /* what we accept per PDU */
#define ISCSI_OUR_MAX_BURST (16 * 1024 * 1024 - 1024)
#define ISCSI_MAX_R2T 16		 /* MaxOutstandingR2T we accept */
#define ISCSI_CMD_WINDOW 128		 /* commands in flight per session */
#define ISCSI_MAX_XFER (64u * 1024 * 1024) /* largest EDTL we buffer */
#define ISCSI_LOGIN_TEXT_MAX 65536	 /* accumulated login/text request keys */
#define ISCSI_KEY_MAX 63		 /* RFC 7143 6.1 */
#define ISCSI_VALUE_MAX 8192		 /* RFC 7143 6.1: 255, 8192 for a few keys */

/* ---- pdu.c: receive state machine ---- */
enum iscsi_rx_state {
	ISCSI_RX_BHS,
	ISCSI_RX_AHS,
	ISCSI_RX_HDIGEST,
	ISCSI_RX_DATA,
	ISCSI_RX_PAD,
	ISCSI_RX_DDIGEST,
};

struct iscsi_rx {
	enum iscsi_rx_state state;
	uint32_t got;	   /* bytes of the current state's field received */
	uint8_t bhs[ISCSI_BHS_LEN];
	uint8_t ahs[ISCSI_AHS_MAX];
	uint32_t ahs_len;
	uint32_t data_len; /* DataSegmentLength */
	uint8_t *data;	   /* destination of the data segment, NULL = discard */
	uint8_t pad[4];
	uint8_t digest[ISCSI_DIGEST_LEN];
	uint32_t crc;	   /* running data digest */
	bool header_digest;
	bool data_digest;
	bool data_digest_bad; /* set before the pdu callback */
	uint32_t max_data_len; /* largest DataSegmentLength accepted */
};

/*
 * Callbacks of the receive state machine. header() runs once BHS, AHS and
 * header digest are in and checked; it sets rx->data (NULL discards the data
 * segment). pdu() runs when the data segment (and digest) is in. Both return
 * 0, or -errno to stop: the connection is then dropped.
 */
struct iscsi_rx_ops {
	int (*header)(void *arg, struct iscsi_rx *rx);
	int (*pdu)(void *arg, struct iscsi_rx *rx);
};

void iscsi_rx_init(struct iscsi_rx *rx, uint32_t max_data_len);
/*
 * Consume up to len bytes; returns the number consumed (< len only if a
 * callback asked to stop or *stop became true) or -errno on a framing error
 * (bad header digest, DataSegmentLength above max_data_len).
 */
long iscsi_rx_feed(struct iscsi_rx *rx, const uint8_t *buf, size_t len,
		   const struct iscsi_rx_ops *ops, void *arg, const bool *stop);
/* Where a large data segment can be received into directly: returns bytes wanted. */
size_t iscsi_rx_direct(const struct iscsi_rx *rx, uint8_t **dst);
/* Account n bytes already placed at the pointer iscsi_rx_direct() gave. */
int iscsi_rx_direct_done(struct iscsi_rx *rx, size_t n, const struct iscsi_rx_ops *ops,
			 void *arg);

static inline uint32_t iscsi_bhs_data_len(const uint8_t *bhs)
{
	return get_be24(bhs + ISCSI_BHS_DATA_LEN);
}
static inline uint8_t iscsi_bhs_opcode(const uint8_t *bhs)
{
	return bhs[ISCSI_BHS_OPCODE] & ISCSI_OP_MASK;
}
static inline bool iscsi_bhs_immediate(const uint8_t *bhs)
{
	return (bhs[ISCSI_BHS_OPCODE] & ISCSI_OP_IMMEDIATE) != 0;
}
/* RFC 1982 serial number arithmetic, as RFC 7143 4.2.2.1 requires for CmdSN. */
static inline bool iscsi_sn_lt(uint32_t a, uint32_t b)
{
	return a != b && (uint32_t)(b - a) < 0x80000000u;
}
static inline bool iscsi_sn_le(uint32_t a, uint32_t b)
{
	return a == b || iscsi_sn_lt(a, b);
}

/* ---- text.c: keys ---- */
struct iscsi_params {
	bool header_digest;
	bool data_digest;
	uint32_t initiator_mrdsl; /* bounds our Data-In / text PDUs */
	uint32_t target_mrdsl;	  /* what we declared */
	uint32_t max_burst;
	uint32_t first_burst;
	bool immediate_data;
	bool initial_r2t;
	uint32_t max_outstanding_r2t;
	bool data_pdu_in_order;
	bool data_seq_in_order;
	uint32_t erl;
	uint32_t time2wait;
	uint32_t time2retain;
	uint32_t max_connections;
};

/* A key=value pair pointing into a parsed buffer. */
struct iscsi_kv {
	const char *key;
	const char *value;
};

struct iscsi_text_out {
	char *buf;
	size_t len;
	size_t cap;
	bool overflow;
};

/* RFC 7143 defaults (13.x) and ours where we declare. */
void iscsi_params_default(struct iscsi_params *p);
/*
 * Split NUL-separated "key=value" pairs (RFC 7143 6.1) in buf (modified in
 * place). Fills up to max pairs. Returns the number of pairs or -EINVAL for
 * a pair without '=', an empty or over-long key or value.
 */
int iscsi_text_parse(char *buf, size_t len, struct iscsi_kv *kv, size_t max);
/* Append "key=value\0"; sets out->overflow instead of growing past cap. */
void iscsi_text_add(struct iscsi_text_out *out, const char *key, const char *value);
void iscsi_text_add_u32(struct iscsi_text_out *out, const char *key, uint32_t v);
/* Parse an RFC 7143 6.1 numerical value (decimal or 0x hex). */
int iscsi_text_number(const char *s, uint64_t *out);

enum iscsi_neg_result {
	ISCSI_NEG_OK,		/* answered (or declarative: nothing to answer) */
	ISCSI_NEG_UNKNOWN,	/* not an operational key this function knows */
	ISCSI_NEG_BAD_DECLARATION, /* a declarative key's value is invalid (answered Reject) */
};
/*
 * Negotiate one operational key: update p and append the answer to out
 * (the value, "Reject", "Irrelevant" or, for declarative keys, nothing).
 */
enum iscsi_neg_result iscsi_negotiate_key(struct iscsi_params *p, bool discovery,
					  const char *key, const char *value,
					  struct iscsi_text_out *out);
/* After the operational stage: FirstBurstLength <= MaxBurstLength (13.14). */
void iscsi_params_finish(struct iscsi_params *p);

/* ---- server objects ---- */
struct iscsi_conn;
struct iscsi_session;

struct iscsi_tgt {
	struct iscsi_tgt *next;
	struct scsi_target *t;
	char *alias;
	struct iscsi_auth_config auth;
	/* Security (target_admin.c); owned, freed with the target, secrets wiped. */
	struct iscsi_chap_config *chap; /* NULL = AuthMethod=None */
	struct iscsi_acl *acl;		/* NULL = open */
};

struct iscsi_portal {
	struct iscsi_portal *next;
	struct iscsi_server *srv;
	int fd;
	uint16_t tpgt;
	char name[80];
};

struct iscsi_server {
	struct reactor *r;
	struct iscsi_portal *portals;
	struct iscsi_tgt *targets;
	struct iscsi_conn *conns; /* every connection, logged in or not */
	uint16_t next_tsih;
	uint64_t next_id;
	uint32_t nop_interval_s; /* iscsi_server_set_nop() */
	uint32_t nop_timeout_s;
	bool shutting_down;
	bool shutdown_posted;
	iscsi_shutdown_fn shutdown_fn;
	void *shutdown_arg;
};

struct iscsi_tgt *iscsi_server_tgt(struct iscsi_server *srv, const char *name);
/* Free an unlinked target entry: alias, CHAP accounts (wiped) and ACL. */
void iscsi_tgt_free(struct iscsi_tgt *t);
/* A connection is gone: unlink it; finishes a shutdown when it was the last. */
void iscsi_server_conn_gone(struct iscsi_server *srv, struct iscsi_conn *c);

/* ---- transmit queue ---- */
struct iscsi_tx;
typedef void (*iscsi_tx_done_fn)(struct iscsi_conn *c, struct iscsi_tx *tx);

struct iscsi_tx {
	struct iscsi_tx *next;
	uint8_t hdr[ISCSI_BHS_LEN + ISCSI_DIGEST_LEN];
	uint32_t hdr_len;
	const uint8_t *data; /* borrowed (task data) or owned (tx->owned) */
	uint32_t data_len;
	uint8_t trailer[3 + ISCSI_DIGEST_LEN]; /* padding + data digest */
	uint32_t trailer_len;
	size_t sent;
	uint8_t *owned;	/* freed once written */
	iscsi_tx_done_fn done;
	void *arg;
};

/* ---- tasks ---- */
enum iscsi_task_state {
	ISCSI_TASK_QUEUED,  /* waiting for its CmdSN turn */
	ISCSI_TASK_DATA,    /* started, waiting for Data-Out */
	ISCSI_TASK_EXEC,    /* in the SCSI layer */
	ISCSI_TASK_RESP,    /* response queued */
};

struct iscsi_r2t {
	uint32_t ttt;
	uint32_t offset;
	uint32_t len;
	uint32_t got;
	uint32_t datasn;
	bool active;
};

struct iscsi_tmf;

struct iscsi_task {
	struct scsi_cmd cmd;
	struct iscsi_conn *conn;
	struct iscsi_task *next, *prev;	 /* session's live tasks */
	struct iscsi_task *hnext;	 /* ITT hash chain */
	struct iscsi_task *qnext;	 /* CmdSN queue, ascending */
	struct iscsi_task *free_next;
	enum iscsi_task_state state;
	uint32_t itt;
	uint32_t cmdsn;
	uint32_t edtl;
	uint8_t lun_raw[8];
	bool immediate;
	bool in_window;	   /* counted in the session's commands in flight */
	bool in_hash;
	bool aborted;
	bool failed;	   /* a bad Data-Out arrived: ends with Target Failure */
	uint8_t *buf;	   /* Data-Out buffer */
	uint32_t buf_cap;
	uint32_t data_got; /* bytes of write data received */
	uint32_t unsol_end;   /* immediate + unsolicited data end here */
	uint32_t unsol_got;
	uint32_t unsol_datasn;
	uint32_t r2t_next;    /* next offset to solicit */
	uint32_t r2tsn;
	unsigned r2t_active;
	struct iscsi_r2t r2t[ISCSI_MAX_R2T];
	uint32_t datasn;      /* Data-In and R2T sequence numbers sent */
	struct iscsi_tmf *tmf; /* waiting for this task to finish */
	uint8_t sense_buf[2 + SCSI_SENSE_MAX]; /* 11.4.7: SenseLength + sense data */
};

struct iscsi_tmf {
	struct iscsi_conn *conn;
	uint8_t bhs[ISCSI_BHS_LEN]; /* the request */
	uint8_t func;
	uint8_t response;
	unsigned waiting;     /* aborted tasks still in the SCSI layer */
	struct scsi_lu *reset_lu; /* LOGICAL UNIT RESET: reset once drained */
	bool target_reset;
	bool cold;
};

/* ---- connections / sessions ---- */
enum iscsi_conn_state {
	ISCSI_CONN_LOGIN,
	ISCSI_CONN_FFP,
	ISCSI_CONN_CLOSED,
};

struct iscsi_login {
	bool started;
	int stage;
	uint8_t isid[6];
	uint16_t tsih;
	uint32_t itt;
	uint16_t cid;
	uint32_t cmdsn;
	bool have_initiator;
	bool discovery;
	bool tpgt_sent;
	bool declared;
	bool authenticated;
	char initiator_name[ISCSI_NAME_MAX + 1];
	char target_name[ISCSI_NAME_MAX + 1];
	struct iscsi_tgt *tgt;
	struct iscsi_chap *chap; /* CHAP exchange in progress (chap.c), NULL otherwise */
	char *text;	  /* accumulated keys of a C-bit login request */
	size_t text_len;
	uint16_t fail_status;
};

#define ISCSI_ITT_BUCKETS 256

struct iscsi_session {
	uint64_t id;
	uint16_t tsih;
	bool discovery;
	struct iscsi_tgt *tgt;
	struct scsi_nexus nexus;
	uint32_t exp_cmdsn;
	uint32_t max_cmdsn;
	unsigned in_window;  /* non-immediate commands received, not yet completed */
	struct iscsi_task *tasks;	/* live tasks */
	unsigned ntasks;
	struct iscsi_task *queue;	/* waiting for CmdSN, ascending */
	struct iscsi_task *hash[ISCSI_ITT_BUCKETS];
	struct iscsi_task *free_tasks;
	uint32_t next_ttt;
	/* the PDU being received (set by the header callback) */
	struct iscsi_task *rx_task;
	struct iscsi_r2t *rx_r2t;
	uint8_t rx_reject;   /* nonzero: reject the PDU with this reason */
	struct iscsi_task *rx_fail_task; /* bad Data-Out: this command fails */
	bool rx_ignore;      /* Data-Out for a task that is gone: drop silently */
};

struct iscsi_conn {
	struct iscsi_server *srv;
	struct iscsi_conn *next, *prev;
	int fd;
	uint16_t tpgt;
	char local[80];	/* "ip:port" the initiator connected to (IPv6 in brackets) */
	char peer[80];
	enum iscsi_conn_state state;
	unsigned refs;
	bool in_rx;
	bool flush_posted;
	bool want_out;
	uint32_t events;      /* epoll interest currently registered */
	bool stop_rx;
	bool close_after_tx;  /* login failure / logout: close once the queue drained */
	bool draining;	      /* server shutdown: close once idle */
	struct iscsi_rx rx;
	uint8_t *rbuf;	      /* staging buffer for small PDUs */
	size_t rbuf_len, rbuf_off;
	uint8_t *dbuf;	      /* data segment of non-SCSI PDUs */
	struct iscsi_tx *txq, *txq_tail, *tx_free;
	uint32_t stat_sn;
	struct iscsi_params params;
	struct iscsi_login login;
	struct iscsi_session *sess;
	/* SendTargets continuation (RFC 7143 11.11.1: C bit and TTT) */
	char *text_out;
	size_t text_out_len, text_out_off;
	uint32_t text_ttt;
	uint32_t text_itt;
	/*
	 * Keepalive (conn.c): the server's settings copied at login, when the
	 * last bytes arrived, and the NOP-In ping awaiting its answer
	 * (nop_sent_ns 0 and nop_ttt ISCSI_RSVD_TAG: none). nop_timer is pending
	 * while the connection reads in full feature phase with a nonzero
	 * interval, NULL otherwise.
	 */
	uint64_t nop_interval_ns;
	uint64_t nop_timeout_ns;
	uint64_t last_rx_ns;
	uint64_t nop_sent_ns;
	uint32_t nop_ttt;
	struct reactor_timer *nop_timer;
};

/* conn.c */
int iscsi_conn_create(struct iscsi_server *srv, int fd, uint16_t tpgt);
void iscsi_conn_get(struct iscsi_conn *c);
void iscsi_conn_put(struct iscsi_conn *c);
/* Drop the connection: socket closed, queued output discarded, tasks aborted. */
void iscsi_conn_close(struct iscsi_conn *c, const char *why);
struct iscsi_tx *iscsi_tx_get(struct iscsi_conn *c);
/*
 * Finish a header (digest, data length, padding, data digest) and queue it.
 * The StatSN fields are the caller's.
 */
void iscsi_tx_queue(struct iscsi_conn *c, struct iscsi_tx *tx);
/* Flush soon (batched: one writev for everything queued in this loop iteration). */
void iscsi_conn_kick(struct iscsi_conn *c);
void iscsi_conn_send_reject(struct iscsi_conn *c, const uint8_t *bhs, uint8_t reason);
/* Fill StatSN/ExpCmdSN/MaxCmdSN of a response header (advancing StatSN if stat). */
void iscsi_conn_fill_sn(struct iscsi_conn *c, uint8_t *hdr, bool stat);
/* Close when idle (no tasks, nothing queued). */
void iscsi_conn_drain(struct iscsi_conn *c);
/* The connection entered full feature phase: start the keepalive (RFC 7143 11.19). */
void iscsi_conn_ffp_started(struct iscsi_conn *c);
/* A NOP-Out carrying Target Transfer Tag ttt (not ISCSI_RSVD_TAG) arrived (11.18.3). */
void iscsi_conn_nop_reply(struct iscsi_conn *c, uint32_t ttt);
void iscsi_conn_check_drained(struct iscsi_conn *c);

/* login.c */
int iscsi_login_rx(struct iscsi_conn *c, const uint8_t *bhs, uint8_t *data, uint32_t len);
void iscsi_login_fini(struct iscsi_login *l);

/* text.c: Text Request in full feature phase (SendTargets) */
int iscsi_text_rx(struct iscsi_conn *c, const uint8_t *bhs, uint8_t *data, uint32_t len);
/*
 * SendTargets answer for `which` ("All", a name, or "" = this session's
 * target). Targets whose ACL does not admit viewer's initiator are left out
 * (issue 4: invisible to others); viewer NULL lists every target.
 */
int iscsi_send_targets(struct iscsi_server *srv, const char *local, uint16_t tpgt,
		       const char *which, struct iscsi_tgt *only, struct iscsi_conn *viewer,
		       struct iscsi_text_out *out);

/* session.c */
int iscsi_session_create(struct iscsi_conn *c);
void iscsi_session_destroy(struct iscsi_session *s);
int iscsi_session_header(struct iscsi_conn *c, struct iscsi_rx *rx);
int iscsi_session_pdu(struct iscsi_conn *c, struct iscsi_rx *rx);
/* Abort every task of the session (connection gone). */
void iscsi_session_abort_all(struct iscsi_conn *c);
/* Check a CmdSN against the window; returns true if the command is to be processed. */
bool iscsi_session_cmdsn_ok(struct iscsi_session *s, uint32_t cmdsn, bool immediate);
void iscsi_session_update_window(struct iscsi_session *s);
/* Abort one task through the SCSI layer; tmf (may be NULL) waits for it. */
void iscsi_task_abort(struct iscsi_task *t, struct iscsi_tmf *tmf);
struct iscsi_task *iscsi_task_find(struct iscsi_session *s, uint32_t itt);

/* tmf.c */
int iscsi_tmf_rx(struct iscsi_conn *c, const uint8_t *bhs);
void iscsi_tmf_task_finished(struct iscsi_tmf *tmf);

#endif
