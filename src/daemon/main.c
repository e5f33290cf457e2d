/*
 * main.c - s3tgtd: the iSCSI target daemon.
 *
 *   parse options --> load --config FILE into the management state (targets,
 *   LUNs, ACLs, CHAP) or build the quick-mode targets --> listen --> start the
 *   management API --> reactor_run  ...  SIGTERM/SIGINT (signalfd)
 *   --> API shutdown (finish requests in progress, close the socket)
 *   --> server shutdown (stop accepting, finish in-flight commands, close)
 *   --> STORE_OP_FLUSH on every LU --> background store closes done
 *   --> reactor_stop --> free --> exit 0 (1 if a flush failed)
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "daemon.h"
#include "s3tgt/cache.h"
#include "s3tgt/core.h"
#include "s3tgt/iscsi.h"
#include "s3tgt/log.h"
#include "s3tgt/mgmt.h"
#include "s3tgt/scsi.h"
#include "s3tgt/store.h"

#define S3TGT_VERSION "0.1.0"
#define DEFAULT_PORTAL "0.0.0.0:3260" /* RFC 7143 13.x: the well-known iSCSI port */

struct daemon {
	struct reactor *r;
	struct iscsi_server *srv;
	struct mgmt_state *state;
	struct mgmt_server *api;
	int sfd;
	unsigned flushes;
	int exit_code;
	bool stopping;
};

static void usage(FILE *f)
{
	char sock[256];

	fprintf(f,
		"usage: s3tgtd --config FILE [--listen HOST:PORT] [--api-socket PATH]\n"
		"       s3tgtd [--listen HOST:PORT ...] --target IQN\n"
		"              --lun N=URI [--lun N=URI ...] [--target IQN --lun ...]\n"
		"              [--state-dir DIR] [--api-socket PATH]\n"
		"options:\n"
		"  --config FILE        JSON configuration (docs/MGMT-API.md); a missing FILE\n"
		"                       starts empty and is written on the first API change\n"
		"  --listen HOST:PORT   portal to listen on (repeatable; IPv6 in brackets);\n"
		"                       overrides the portals of FILE (default " DEFAULT_PORTAL
		")\n"
		"  --target IQN         add a target; the --lun options after it belong to it\n"
		"  --alias NAME         TargetAlias of the last --target\n"
		"  --lun N=URI          LUN N backed by URI (ram:?size=1G, file:/path?size=10G)\n"
		"  --state-dir DIR      where persistent reservations are kept\n"
		"  --nop-interval S     NOP-In ping after S seconds without a PDU from an\n"
		"                       initiator (default %d, 0 = never; overrides FILE)\n"
		"  --nop-timeout S      drop a connection that sends nothing for S seconds after\n"
		"                       a ping (default %d, 0 = never; overrides FILE)\n"
		"  --api-socket PATH    management API socket (default with --config: %s)\n"
		"  --api-listen H:P     also serve the API over TCP (needs --api-token-file)\n"
		"  --api-token-file F   bearer token for --api-listen (first line of F)\n"
		"  --no-api             no management API\n"
		"  --log-level LEVEL    err, warn, info (default) or debug\n"
		"  --debug COMPONENTS   debug output for e.g. iscsi,scsi,store or all\n"
		"  --help, --version\n",
		ISCSI_NOP_INTERVAL_DEFAULT_S, ISCSI_NOP_TIMEOUT_DEFAULT_S,
		mgmt_default_socket(sock, sizeof(sock)));
}

/*
 * Every store is flushed: stop the loop once the background closes (the
 * lease release of an LU deleted just before) are done; each ends within
 * seconds, also with S3 down.
 */
static void stop_when_closed(void *arg)
{
	struct daemon *d = arg;

	if (store_closes_pending() == 0 ||
	    !reactor_timer_add(d->r, 50, false, stop_when_closed, d)) {
		reactor_stop(d->r);
	}
}

static void flush_done(struct store_io *io)
{
	struct daemon *d = io->cb_arg;

	if (io->status < 0) {
		LOG_ERR("daemon", "flush of %s failed: %s", "store", strerror(-io->status));
		d->exit_code = 1;
	}
	free(io);
	if (--d->flushes == 0) {
		stop_when_closed(d);
	}
}

static void flush_lu(struct scsi_lu *lu, void *arg)
{
	struct daemon *d = arg;
	struct store_io *io = calloc(1, sizeof(*io));

	if (!io) {
		d->exit_code = 1;
		return;
	}
	io->op = STORE_OP_FLUSH;
	io->cb = flush_done;
	io->cb_arg = d;
	d->flushes++;
	if (store_submit(scsi_lu_store(lu), io) < 0) {
		d->flushes--;
		free(io);
	}
}

/* Every connection is closed: make every store durable, then stop. */
static void server_stopped(void *arg)
{
	struct daemon *d = arg;

	d->flushes = 1;
	mgmt_state_foreach_lu(d->state, flush_lu, d);
	if (--d->flushes == 0) {
		stop_when_closed(d);
	}
}

/* The API has answered what was in progress and is closed: now the iSCSI side. */
static void api_stopped(void *arg)
{
	struct daemon *d = arg;

	d->api = NULL;
	iscsi_server_shutdown(d->srv, server_stopped, d);
}

static void signal_event(void *arg, uint32_t events)
{
	struct daemon *d = arg;
	struct signalfd_siginfo si;

	if (read(d->sfd, &si, sizeof(si)) != (ssize_t)sizeof(si)) {
		return;
	}
	if (d->stopping) {
		LOG_WARN("daemon", "second signal: stopping at once");
		reactor_stop(d->r);
		return;
	}
	d->stopping = true;
	LOG_INFO("daemon", "signal %u: shutting down", si.ssi_signo);
	if (d->api) {
		mgmt_server_shutdown(d->api, api_stopped, d);
	} else {
		iscsi_server_shutdown(d->srv, server_stopped, d);
	}
}

static int parse_level(const char *s, enum log_level *out)
{
	static const char *const names[] = {"err", "warn", "info", "debug"};

	for (int i = 0; i < 4; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

static void print_url(const char *url, void *arg)
{
	printf("%s\n", url);
}

/* The bearer token is the first line of a file (kept out of argv and ps). */
static int read_token(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	int rc = -EINVAL;

	if (!f) {
		return -errno;
	}
	if (fgets(buf, (int)len, f)) {
		buf[strcspn(buf, "\r\n")] = '\0';
		rc = buf[0] ? 0 : -EINVAL;
	}
	fclose(f);
	return rc;
}

/* The default socket's directory (/run/s3tgt): private to the daemon's user. */
static void make_parent_dir(const char *path)
{
	char dir[256];
	char *slash;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
		return;
	}
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			LOG_DEBUG("daemon", "mkdir %s: %s", dir, strerror(errno));
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"listen", required_argument, NULL, 'l'},
	    {"target", required_argument, NULL, 't'},
	    {"alias", required_argument, NULL, 'a'},
	    {"lun", required_argument, NULL, 'u'},
	    {"state-dir", required_argument, NULL, 's'},
	    {"nop-interval", required_argument, NULL, 'i'},
	    {"nop-timeout", required_argument, NULL, 'o'},
	    {"api-socket", required_argument, NULL, 'S'},
	    {"api-listen", required_argument, NULL, 'P'},
	    {"api-token-file", required_argument, NULL, 'T'},
	    {"no-api", no_argument, NULL, 'N'},
	    {"log-level", required_argument, NULL, 'L'},
	    {"debug", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	struct daemon_config cfg = {0};
	struct daemon d = {.sfd = -1};
	const char *config = NULL, *api_socket = NULL, *api_listen = NULL, *token_file = NULL;
	struct mgmt_state_opts so = {0};
	struct mgmt_server_opts ao = {0};
	char err[512], sockbuf[256], token[512] = "";
	bool no_api = false;
	/* UINT64_MAX: not given, the config file or the default applies */
	uint64_t nop_interval = UINT64_MAX, nop_timeout = UINT64_MAX;
	uint32_t cur_interval, cur_timeout;
	enum log_level lvl;
	sigset_t mask;
	bool quick = false;
	int opt, rc = 1;

	/*
	 * The program's composition: the store layers a LUN URI may ask for.
	 * store_open_uri() stacks them; nothing else needs to know they exist.
	 */
	if (store_layer_register(&cache_layer_ops) < 0) {
		fprintf(stderr, "s3tgtd: cannot register the cache layer\n");
		return 1;
	}

	/*
	 * Command buffers reach several MiB (1 MiB reads at QD8+, 16 MiB bursts).
	 * glibc would mmap/munmap each one (page faults + zeroing every time);
	 * raising the thresholds keeps them on the heap for reuse, and keeps
	 * free() from trimming the heap back after every large command.
	 */
	mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'l':
			if (daemon_config_add_portal(&cfg, optarg) < 0) {
				goto out;
			}
			break;
		case 't':
			quick = true;
			if (daemon_config_add_target(&cfg, optarg, NULL) < 0) {
				goto out;
			}
			break;
		case 'a':
			if (cfg.ntargets == 0) {
				fprintf(stderr, "s3tgtd: --alias: give --target IQN first\n");
				goto out;
			}
			free(cfg.targets[cfg.ntargets - 1].alias);
			cfg.targets[cfg.ntargets - 1].alias = strdup(optarg);
			break;
		case 'u':
			quick = true;
			if (daemon_config_add_lun_arg(&cfg, optarg, err, sizeof(err)) < 0) {
				fprintf(stderr, "s3tgtd: %s\n", err);
				goto out;
			}
			break;
		case 's':
			free(cfg.state_dir);
			cfg.state_dir = strdup(optarg);
			break;
		case 'i':
		case 'o':
			if (parse_u64(optarg, 0, ISCSI_NOP_MAX_S,
				      opt == 'i' ? &nop_interval : &nop_timeout) < 0) {
				fprintf(
				    stderr, "s3tgtd: --%s: expected seconds 0..%d (0 = never)\n",
				    opt == 'i' ? "nop-interval" : "nop-timeout", ISCSI_NOP_MAX_S);
				rc = 2;
				goto out;
			}
			break;
		case 'S':
			api_socket = optarg;
			break;
		case 'P':
			api_listen = optarg;
			break;
		case 'T':
			token_file = optarg;
			break;
		case 'N':
			no_api = true;
			break;
		case 'L':
			if (parse_level(optarg, &lvl) < 0) {
				fprintf(stderr,
					"s3tgtd: --log-level: expected err, warn, info or debug\n");
				goto out;
			}
			log_set_level(lvl);
			break;
		case 'd':
			log_set_debug(optarg);
			break;
		case 'h':
			usage(stdout);
			rc = 0;
			goto out;
		case 'V':
			printf("s3tgtd %s\n", S3TGT_VERSION);
			rc = 0;
			goto out;
		default:
			usage(stderr);
			rc = 2;
			goto out;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "s3tgtd: unexpected argument '%s'\n", argv[optind]);
		rc = 2;
		goto out;
	}
	if (config && quick) {
		fprintf(stderr, "s3tgtd: --config and --target/--lun exclude each other\n");
		rc = 2;
		goto out;
	}
	if (!config && !quick) {
		usage(stderr);
		rc = 2;
		goto out;
	}
	if (api_listen && (!token_file || read_token(token_file, token, sizeof(token)) < 0)) {
		fprintf(stderr, "s3tgtd: --api-listen needs --api-token-file with a token\n");
		goto out;
	}
	if (reactor_create(&d.r) < 0 || iscsi_server_create(d.r, &d.srv) < 0) {
		fprintf(stderr, "s3tgtd: out of memory\n");
		goto out;
	}
	/* Before any thread exists (thread pools, the API's), so every thread inherits
	 * the blocked mask and SIGTERM reaches only the signalfd. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	signal(SIGPIPE, SIG_IGN);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
	    (d.sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0 ||
	    reactor_add_fd(d.r, d.sfd, EPOLLIN, signal_event, &d) < 0) {
		fprintf(stderr, "s3tgtd: signalfd: %s\n", strerror(errno));
		goto out;
	}
	so.r = d.r;
	so.srv = d.srv;
	so.config_path = config;
	so.state_dir = cfg.state_dir;
	so.version = S3TGT_VERSION;
	if (mgmt_state_create(&so, &d.state) < 0) {
		fprintf(stderr, "s3tgtd: out of memory\n");
		goto out;
	}
	/* --listen overrides the portals of the file. */
	if (mgmt_state_load(d.state, cfg.nportals > 0, err, sizeof(err)) < 0) {
		fprintf(stderr, "s3tgtd: %s: %s\n", config, err);
		goto out;
	}
	/* The command line overrides the file, one value at a time. */
	iscsi_server_get_nop(d.srv, &cur_interval, &cur_timeout);
	if (iscsi_server_set_nop(
		d.srv, nop_interval != UINT64_MAX ? (uint32_t)nop_interval : cur_interval,
		nop_timeout != UINT64_MAX ? (uint32_t)nop_timeout : cur_timeout) < 0) {
		fprintf(stderr, "s3tgtd: --nop-interval/--nop-timeout: at most %d seconds\n",
			ISCSI_NOP_MAX_S);
		goto out;
	}
	for (size_t i = 0; i < cfg.ntargets; i++) {
		const struct daemon_target *t = &cfg.targets[i];
		if (mgmt_state_add_target(d.state, t->name, t->alias, err, sizeof(err)) < 0) {
			fprintf(stderr, "s3tgtd: target %s: %s\n", t->name, err);
			goto out;
		}
		for (size_t l = 0; l < t->nluns; l++) {
			if (mgmt_state_add_lun(d.state, t->name, t->luns[l].lun, t->luns[l].uri,
					       err, sizeof(err)) < 0) {
				fprintf(stderr, "s3tgtd: %s LUN %llu: %s\n", t->name,
					(unsigned long long)t->luns[l].lun, err);
				goto out;
			}
		}
	}
	for (size_t i = 0; i < cfg.nportals; i++) {
		if (mgmt_state_add_portal(d.state, cfg.portals[i], err, sizeof(err)) < 0) {
			fprintf(stderr, "s3tgtd: listen %s\n", err);
			goto out;
		}
	}
	if (iscsi_server_list_portals(d.srv, NULL, 0) == 0 &&
	    mgmt_state_add_portal(d.state, DEFAULT_PORTAL, err, sizeof(err)) < 0) {
		fprintf(stderr, "s3tgtd: listen %s\n", err);
		goto out;
	}
	if (!no_api && (api_socket || api_listen || config)) {
		bool dflt = !api_socket;
		ao.socket_path =
		    api_socket ? api_socket : mgmt_default_socket(sockbuf, sizeof(sockbuf));
		ao.tcp_listen = api_listen;
		ao.token = token[0] ? token : NULL;
		if (dflt) {
			make_parent_dir(ao.socket_path);
		}
		if (mgmt_server_start(d.state, &ao, &d.api, err, sizeof(err)) < 0) {
			if (!dflt || api_listen) {
				fprintf(stderr, "s3tgtd: %s\n", err);
				goto out;
			}
			LOG_WARN("daemon", "no management API: %s (use --api-socket PATH)", err);
		}
	}
	size_t nurls = mgmt_state_print_urls(d.state, print_url, NULL);
	fflush(stdout);
	LOG_INFO("daemon", "s3tgtd %s ready: %zu LUN URL(s)", S3TGT_VERSION, nurls);
	d.exit_code = 0;
	if (reactor_run(d.r) < 0) {
		d.exit_code = 1;
	}
	rc = d.exit_code;
out:
	explicit_bzero(token, sizeof(token));
	mgmt_server_destroy(d.api);
	mgmt_state_destroy(d.state);
	iscsi_server_destroy(d.srv);
	if (d.sfd >= 0) {
		if (d.r) {
			reactor_del_fd(d.r, d.sfd);
		}
		close(d.sfd);
	}
	reactor_destroy(d.r);
	daemon_config_fini(&cfg);
	return rc;
}
