/*
 * mgmt.h - management: the daemon's live configuration (targets, LUNs, ACLs,
 * CHAP accounts) persisted to a JSON file, and the HTTP/JSON API that changes
 * it at run time (Unix socket, optional TCP listener with a bearer token).
 *
 * Threading: mgmt_state_* run on the reactor thread. The HTTP server runs
 * libmicrohttpd's own thread; every request becomes a message posted to the
 * reactor (reactor_post) and the connection is suspended until the reactor
 * has answered, so the state needs no lock.
 */
#ifndef S3TGT_MGMT_H
#define S3TGT_MGMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct reactor;
struct iscsi_server;
struct scsi_lu;
struct mgmt_state;
struct mgmt_server;

#define MGMT_API_VERSION "v1"
/* Default API socket when --api-socket is not given (see mgmt_default_socket()). */
#define MGMT_DEFAULT_SOCKET "/run/s3tgt/s3tgtd.sock"
#define MGMT_BODY_MAX (64 * 1024) /* larger request bodies get 413 */

struct mgmt_state_opts {
	struct reactor *r;	   /* borrowed */
	struct iscsi_server *srv;  /* borrowed */
	const char *config_path;   /* NULL: changes are not persisted */
	const char *state_dir;	   /* NULL: from the config file, else none */
	const char *version;	   /* daemon version for GET /v1/version */
};

int mgmt_state_create(const struct mgmt_state_opts *o, struct mgmt_state **out);
/*
 * Load config_path (a missing file is an empty configuration, created on the
 * first change) and build every target, LUN, ACL and CHAP account in it.
 * Portals in the file are added unless skip_portals (--listen overrides).
 * Returns 0 or -errno with a message naming the field in err.
 */
int mgmt_state_load(struct mgmt_state *s, bool skip_portals, char *err, size_t errlen);
/* Quick-mode / command-line additions (not saved unless a change follows). */
int mgmt_state_add_portal(struct mgmt_state *s, const char *hostport, char *err, size_t errlen);
int mgmt_state_add_target(struct mgmt_state *s, const char *name, const char *alias, char *err,
			  size_t errlen);
int mgmt_state_add_lun(struct mgmt_state *s, const char *target, uint64_t lun, const char *uri,
		       char *err, size_t errlen);
/* Calls fn for every LU (for the shutdown flush). */
void mgmt_state_foreach_lu(struct mgmt_state *s, void (*fn)(struct scsi_lu *lu, void *arg),
			   void *arg);
/* Calls fn with the iscsi:// URL of every LUN on every portal; returns how many. */
size_t mgmt_state_print_urls(struct mgmt_state *s, void (*fn)(const char *url, void *arg),
			     void *arg);
/*
 * Unexport every target from the server and free everything. Every session
 * must be gone (after iscsi_server_shutdown's callback). NULL is a no-op.
 */
void mgmt_state_destroy(struct mgmt_state *s);

struct mgmt_server_opts {
	const char *socket_path; /* Unix socket, created with mode 0600 */
	const char *tcp_listen;	 /* "host:port" or NULL */
	const char *token;	 /* required when tcp_listen is set: Authorization: Bearer */
};

/* Start the API (reactor thread). Returns 0 or -errno with a message in err. */
int mgmt_server_start(struct mgmt_state *s, const struct mgmt_server_opts *o,
		      struct mgmt_server **out, char *err, size_t errlen);
/*
 * Graceful stop on the reactor thread: stop accepting, let requests in
 * progress finish (bounded by a couple of seconds), close, unlink the socket,
 * then done(arg) runs on the reactor and the server is freed.
 */
void mgmt_server_shutdown(struct mgmt_server *m, void (*done)(void *arg), void *arg);

/* Immediate stop (reactor not running, e.g. start-up failed). NULL is a no-op. */
void mgmt_server_destroy(struct mgmt_server *m);

/* $XDG_RUNTIME_DIR/s3tgt/s3tgtd.sock for non-root users, else MGMT_DEFAULT_SOCKET. */
const char *mgmt_default_socket(char *buf, size_t len);

#endif
