/*
 * iscsi.h - the iSCSI target server (RFC 7143): portals, targets and sessions,
 * driven by one reactor thread. The daemon and the management API use this.
 *
 * Threading: every function runs on the reactor thread the server was created
 * on (configuration happens there before reactor_run(), or from messages).
 */
#ifndef S3TGT_ISCSI_H
#define S3TGT_ISCSI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct reactor;
struct scsi_target;
struct iscsi_server;

#define ISCSI_NAME_MAX 223 /* RFC 7143 6.1: iSCSI names are at most 223 bytes */

/* Authentication policy of a target. Only AuthMethod=None today (issue 4 adds CHAP). */
enum iscsi_auth_method {
	ISCSI_AUTH_NONE = 0,
};

struct iscsi_auth_config {
	enum iscsi_auth_method method;
};

/* A snapshot of one session, for listings. */
struct iscsi_session_info {
	uint64_t id;		   /* server-unique session id (for iscsi_server_close_session) */
	char target[ISCSI_NAME_MAX + 1];
	char initiator[ISCSI_NAME_MAX + 1];
	uint8_t isid[6];
	uint16_t tsih;
	char peer[80];		   /* "ip:port" of the initiator */
	bool discovery;
	unsigned tasks;		   /* commands in progress */
};

typedef void (*iscsi_shutdown_fn)(void *arg);

/* Returns 0 and a new server in *out, or -errno. r is borrowed. */
int iscsi_server_create(struct reactor *r, struct iscsi_server **out);
/*
 * Closes every connection at once and frees the server. A connection whose
 * tasks still wait on a store is detached and frees itself when they
 * complete (the reactor must keep running for that); for a clean stop call
 * this after the iscsi_server_shutdown() callback ran. NULL is a no-op.
 * Targets stay owned by the caller.
 */
void iscsi_server_destroy(struct iscsi_server *srv);

/*
 * Listen on "host:port" ("127.0.0.1:3260", "[::1]:3260", "0.0.0.0:3260") in
 * portal group tpgt. Returns 0 or -errno (message in err).
 */
int iscsi_server_add_portal(struct iscsi_server *srv, const char *hostport, uint16_t tpgt,
			    char *err, size_t errlen);

/*
 * Export a target (borrowed: the caller keeps ownership and must not destroy
 * it before iscsi_server_remove_target() succeeded). alias may be NULL;
 * auth may be NULL (AuthMethod=None). -EEXIST if the name is taken.
 */
int iscsi_server_add_target(struct iscsi_server *srv, struct scsi_target *t, const char *alias,
			    const struct iscsi_auth_config *auth);
/* -EBUSY if sessions are logged in to it, -ENOENT if unknown. */
int iscsi_server_remove_target(struct iscsi_server *srv, const char *name);
struct scsi_target *iscsi_server_find_target(struct iscsi_server *srv, const char *name);

/* Number of sessions (normal, not discovery) logged in to the named target. */
unsigned iscsi_server_target_sessions(struct iscsi_server *srv, const char *name);
/* Fills up to max entries; returns the number of sessions. */
size_t iscsi_server_list_sessions(struct iscsi_server *srv, struct iscsi_session_info *out,
				  size_t max);
/* Drop a session's connection (tasks are aborted). -ENOENT if unknown. */
int iscsi_server_close_session(struct iscsi_server *srv, uint64_t id);

/*
 * Target-initiated keepalive (RFC 7143 11.19, LIO's nopin_timeout and
 * nopin_response_timeout): a full-feature connection that received nothing
 * for interval_s seconds gets a NOP-In asking for an answer; if no PDU
 * arrives within timeout_s seconds after it, the connection is dropped as if
 * it had failed (tasks aborted, ERL 0). interval_s 0: no pings. timeout_s 0:
 * pings, never dropped for silence (the unanswered NOP-In still lets TCP
 * notice a dead peer). Connections that log in later use the new values.
 * Returns 0, or -EINVAL for a value above ISCSI_NOP_MAX_S.
 */
#define ISCSI_NOP_INTERVAL_DEFAULT_S 15
#define ISCSI_NOP_TIMEOUT_DEFAULT_S 30
#define ISCSI_NOP_MAX_S 3600
int iscsi_server_set_nop(struct iscsi_server *srv, uint32_t interval_s, uint32_t timeout_s);
void iscsi_server_get_nop(const struct iscsi_server *srv, uint32_t *interval_s,
			  uint32_t *timeout_s);

/*
 * Graceful stop: close the listening sockets, refuse new commands, let the
 * commands in flight finish and their responses go out, then close every
 * connection; done(arg) runs on the reactor once nothing is left.
 */
void iscsi_server_shutdown(struct iscsi_server *srv, iscsi_shutdown_fn done, void *arg);

/* ---- access control and CHAP (issue 4); implemented in chap.c, acl.c, target_admin.c ---- */

#define ISCSI_CHAP_NAME_MAX 255
#define ISCSI_CHAP_SECRET_MIN 12  /* RFC 7143 12.1.3: at least 96 bits of secret */
#define ISCSI_CHAP_SECRET_MAX 255

/*
 * CHAP accounts of a target. The initiator proves it knows `secret` under
 * `user` (one-way); when mutual_user is set the target answers the
 * initiator's challenge with mutual_secret (mutual, RFC 7143 12.1.3).
 */
struct iscsi_chap_config {
	char user[ISCSI_CHAP_NAME_MAX + 1];
	char secret[ISCSI_CHAP_SECRET_MAX + 1];
	char mutual_user[ISCSI_CHAP_NAME_MAX + 1]; /* "" = one-way only */
	char mutual_secret[ISCSI_CHAP_SECRET_MAX + 1];
};

/*
 * Check lengths (secrets 12..255 bytes, RFC 7143 12.1.3), characters, and
 * that the mutual secret differs from the incoming one (12.1.3: a secret used
 * to authenticate initiators MUST NOT authenticate targets). Returns 0 or
 * -EINVAL with a message naming the field ("user", "secret", "mutual_user",
 * "mutual_secret") in err; the message never contains a secret.
 */
int iscsi_chap_config_check(const struct iscsi_chap_config *c, char *err, size_t errlen);

/*
 * iSCSI name syntax (RFC 3720 3.2.6.3 as kept by RFC 7143 4.2.7.2): "iqn."
 * yyyy-mm "." reversed domain [":" anything], "eui." 16 hex digits, or
 * "naa." 16 or 32 hex digits; at most 223 bytes of a-z 0-9 - . : (upper case
 * accepted, names compare case-insensitively).
 */
bool iscsi_name_is_valid(const char *name);

/*
 * An access list: initiator names (compared case-insensitively, RFC 3722
 * names are case-folded) and source networks (CIDR, IPv4 or IPv6). An empty
 * list lets everyone in; otherwise the initiator must match a name (if any
 * are listed) and its address a network (if any are listed).
 */
struct iscsi_acl;
struct sockaddr;

int iscsi_acl_create(struct iscsi_acl **out);
void iscsi_acl_destroy(struct iscsi_acl *acl); /* NULL is a no-op */
/* Returns a new copy in *out (src NULL gives an empty list). */
int iscsi_acl_copy(const struct iscsi_acl *src, struct iscsi_acl **out);
/* -EINVAL for a bad name, -EEXIST if listed already. */
int iscsi_acl_add_initiator(struct iscsi_acl *acl, const char *name);
int iscsi_acl_remove_initiator(struct iscsi_acl *acl, const char *name); /* -ENOENT */
/* "10.0.0.0/8", "192.0.2.7", "fd00::/8"; host bits must be zero. -EINVAL, -EEXIST. */
int iscsi_acl_add_network(struct iscsi_acl *acl, const char *cidr);
int iscsi_acl_remove_network(struct iscsi_acl *acl, const char *cidr); /* -ENOENT */
/* The entries, borrowed until the next change; return the count. */
size_t iscsi_acl_initiators(const struct iscsi_acl *acl, const char *const **names);
size_t iscsi_acl_networks(const struct iscsi_acl *acl, const char *const **cidrs);
bool iscsi_acl_is_open(const struct iscsi_acl *acl); /* NULL or empty */
/* peer may be NULL (unknown address: only a list without networks can match). */
bool iscsi_acl_allows(const struct iscsi_acl *acl, const char *initiator,
		      const struct sockaddr *peer);

/*
 * Per-target security on a server (the target must be added). The server
 * copies cfg/acl into the target; NULL clears (AuthMethod=None / open).
 * iscsi_server_remove_target() frees them (secrets wiped). -ENOENT if unknown.
 */
int iscsi_server_set_chap(struct iscsi_server *srv, const char *target,
			  const struct iscsi_chap_config *cfg);
/* Whether CHAP is required; *mutual (may be NULL) tells if mutual is set. Never the secrets. */
bool iscsi_server_has_chap(struct iscsi_server *srv, const char *target, bool *mutual);
int iscsi_server_set_acl(struct iscsi_server *srv, const char *target,
			 const struct iscsi_acl *acl);
/* Borrowed until the next change; NULL when open or unknown. */
const struct iscsi_acl *iscsi_server_get_acl(struct iscsi_server *srv, const char *target);

/* Portals, for listing portal groups. */
struct iscsi_portal_info {
	uint16_t tpgt;
	char addr[80]; /* "host:port" */
};
/* Fills up to max entries; returns the number of portals. */
size_t iscsi_server_list_portals(struct iscsi_server *srv, struct iscsi_portal_info *out,
				 size_t max);

/* Operational parameters negotiated by a session (RFC 7143 13). */
struct iscsi_session_params {
	bool header_digest;
	bool data_digest;
	uint32_t initiator_mrdsl; /* MaxRecvDataSegmentLength declared by the initiator */
	uint32_t target_mrdsl;	  /* ... and by us */
	uint32_t max_burst;
	uint32_t first_burst;
	bool immediate_data;
	bool initial_r2t;
	uint32_t max_outstanding_r2t;
	uint32_t erl;
	uint16_t tpgt;
	char local[80]; /* portal address the session came in on */
};
/* -ENOENT if no session has this id. */
int iscsi_server_session_params(struct iscsi_server *srv, uint64_t id,
				struct iscsi_session_params *out);

#endif
