/*
 * main.c - s3tgtd: the iSCSI target daemon.
 *
 *   parse options/config --> open stores, build SCSI targets --> listen
 *   --> reactor_run  ...  SIGTERM/SIGINT (signalfd on the reactor)
 *   --> server shutdown (stop accepting, finish in-flight commands, close)
 *   --> STORE_OP_FLUSH on every LU --> reactor_stop --> free --> exit 0
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
#include <unistd.h>

#include "daemon.h"
#include "s3tgt/core.h"
#include "s3tgt/iscsi.h"
#include "s3tgt/log.h"
#include "s3tgt/scsi.h"
#include "s3tgt/store.h"

#define S3TGT_VERSION "0.1.0"

struct daemon {
	struct reactor *r;
	struct iscsi_server *srv;
	struct scsi_target **targets;
	size_t ntargets;
	int sfd;
	unsigned flushes;
	int exit_code;
	bool stopping;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: s3tgtd --config FILE\n"
		"       s3tgtd --listen HOST:PORT [--listen [::1]:PORT] --target IQN\n"
		"              --lun N=URI [--lun N=URI ...] [--target IQN --lun ...]\n"
		"              [--state-dir DIR]\n"
		"options:\n"
		"  --config FILE        JSON configuration (see examples/)\n"
		"  --listen HOST:PORT   portal to listen on (repeatable; IPv6 in brackets)\n"
		"  --target IQN         add a target; the --lun options after it belong to it\n"
		"  --alias NAME         TargetAlias of the last --target\n"
		"  --lun N=URI          LUN N backed by URI (ram:?size=1G, file:/path?size=10G)\n"
		"  --state-dir DIR      where persistent reservations are kept\n"
		"  --log-level LEVEL    err, warn, info (default) or debug\n"
		"  --debug COMPONENTS   debug output for e.g. iscsi,scsi,store or all\n"
		"  --help, --version\n");
}

/* FNV-1a 64: stable serial numbers and NAA ids from target name + LUN. */
static uint64_t fnv1a(const char *s, uint64_t lun)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 0x100000001b3ull;
	}
	for (int i = 0; i < 8; i++) {
		h ^= (uint8_t)(lun >> (8 * i));
		h *= 0x100000001b3ull;
	}
	return h;
}

/* A file: LUN's directory must exist (we create the image, not its path). */
static int check_file_dir(const char *uri, char *err, size_t errlen)
{
	char path[4096];
	const char *p = uri + 5, *q = strchr(p, '?');
	size_t n = q ? (size_t)(q - p) : strlen(p);
	struct stat sb;

	if (n == 0 || n >= sizeof(path)) {
		return 0; /* the store reports a bad path itself */
	}
	memcpy(path, p, n);
	path[n] = '\0';
	if (stat(dirname(path), &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		snprintf(err, errlen, "%s: the directory of the image file does not exist", uri);
		return -ENOENT;
	}
	return 0;
}

static int build_target(struct daemon *d, const struct daemon_config *cfg,
			const struct daemon_target *dt, struct scsi_target **out)
{
	struct scsi_target *t = NULL;
	char err[512];
	int rc;

	rc = scsi_target_create(dt->name, &t);
	if (rc < 0) {
		fprintf(stderr, "s3tgtd: target %s: %s\n", dt->name, strerror(-rc));
		return rc;
	}
	for (size_t i = 0; i < dt->nluns; i++) {
		const struct daemon_lun *dl = &dt->luns[i];
		struct store *st = NULL;
		struct scsi_lu *lu = NULL;
		char serial[32], pr_path[4096];
		uint64_t h = fnv1a(dt->name, dl->lun);
		struct scsi_lu_params p = { 0 };

		err[0] = '\0';
		if (strncmp(dl->uri, "file:", 5) == 0 &&
		    (rc = check_file_dir(dl->uri, err, sizeof(err))) < 0) {
			fprintf(stderr, "s3tgtd: %s LUN %llu: %s\n", dt->name,
				(unsigned long long)dl->lun, err);
			goto err;
		}
		rc = store_open_uri(dl->uri, d->r, &st, err, sizeof(err));
		if (rc < 0) {
			fprintf(stderr, "s3tgtd: %s LUN %llu: %s\n", dt->name,
				(unsigned long long)dl->lun, err[0] ? err : strerror(-rc));
			goto err;
		}
		snprintf(serial, sizeof(serial), "%016llx", (unsigned long long)h);
		p.serial = serial;
		/* SPC-4 7.8.6.6.4: NAA 3 = locally assigned, 60 bits of ours. */
		p.naa_id = (3ull << 60) | (h & 0x0fffffffffffffffull);
		if (cfg->state_dir) {
			int n = snprintf(pr_path, sizeof(pr_path), "%s/%016llx.pr", cfg->state_dir,
					 (unsigned long long)h);
			if (n < 0 || (size_t)n >= sizeof(pr_path)) {
				store_close(st);
				rc = -ENAMETOOLONG;
				goto err;
			}
			p.pr_path = pr_path;
		}
		rc = scsi_lu_create(st, &p, &lu);
		if (rc < 0) {
			fprintf(stderr, "s3tgtd: %s LUN %llu: %s\n", dt->name,
				(unsigned long long)dl->lun, strerror(-rc));
			store_close(st);
			goto err;
		}
		rc = scsi_target_add_lu(t, dl->lun, lu);
		if (rc < 0) {
			fprintf(stderr, "s3tgtd: %s LUN %llu: %s\n", dt->name,
				(unsigned long long)dl->lun, strerror(-rc));
			scsi_lu_destroy(lu);
			goto err;
		}
	}
	*out = t;
	return 0;
err:
	scsi_target_destroy(t);
	return rc;
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
		reactor_stop(d->r);
	}
}

/* Every connection is closed: make every store durable, then stop. */
static void server_stopped(void *arg)
{
	struct daemon *d = arg;

	d->flushes = 1;
	for (size_t i = 0; i < d->ntargets; i++) {
		uint64_t luns[256];
		size_t n = scsi_target_luns(d->targets[i], luns, 256);
		for (size_t j = 0; j < n && j < 256; j++) {
			struct scsi_lu *lu = scsi_target_get_lu(d->targets[i], luns[j]);
			struct store_io *io = calloc(1, sizeof(*io));
			if (!lu || !io) {
				free(io);
				continue;
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
	}
	if (--d->flushes == 0) {
		reactor_stop(d->r);
	}
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
	iscsi_server_shutdown(d->srv, server_stopped, d);
}

static int parse_level(const char *s, enum log_level *out)
{
	static const char *const names[] = { "err", "warn", "info", "debug" };

	for (int i = 0; i < 4; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "target", required_argument, NULL, 't' },
		{ "alias", required_argument, NULL, 'a' },
		{ "lun", required_argument, NULL, 'u' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "debug", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct daemon_config cfg = { 0 };
	struct daemon d = { .sfd = -1 };
	const char *config = NULL;
	char err[512];
	enum log_level lvl;
	sigset_t mask;
	bool quick = false;
	int opt, rc = 1;

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
			quick = true;
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
		case 'L':
			if (parse_level(optarg, &lvl) < 0) {
				fprintf(stderr, "s3tgtd: --log-level: expected err, warn, info or debug\n");
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
		fprintf(stderr, "s3tgtd: --config and --listen/--target/--lun exclude each other\n");
		rc = 2;
		goto out;
	}
	if (!config && !quick) {
		usage(stderr);
		rc = 2;
		goto out;
	}
	if (config && daemon_config_load(config, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "s3tgtd: %s: %s\n", config, err);
		goto out;
	}
	if (daemon_config_validate(&cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "s3tgtd: %s%s%s\n", config ? config : "", config ? ": " : "", err);
		goto out;
	}
	if (reactor_create(&d.r) < 0 || iscsi_server_create(d.r, &d.srv) < 0) {
		fprintf(stderr, "s3tgtd: out of memory\n");
		goto out;
	}
	d.targets = calloc(cfg.ntargets, sizeof(*d.targets));
	if (!d.targets) {
		goto out;
	}
	for (size_t i = 0; i < cfg.ntargets; i++) {
		if (build_target(&d, &cfg, &cfg.targets[i], &d.targets[i]) < 0) {
			goto out;
		}
		d.ntargets++;
		if (iscsi_server_add_target(d.srv, d.targets[i], cfg.targets[i].alias, NULL) < 0) {
			fprintf(stderr, "s3tgtd: target %s: cannot add\n", cfg.targets[i].name);
			goto out;
		}
	}
	for (size_t i = 0; i < cfg.nportals; i++) {
		if (iscsi_server_add_portal(d.srv, cfg.portals[i], 1, err, sizeof(err)) < 0) {
			fprintf(stderr, "s3tgtd: listen %s\n", err);
			goto out;
		}
	}
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
	for (size_t i = 0; i < cfg.ntargets; i++) {
		for (size_t p = 0; p < cfg.nportals; p++) {
			for (size_t l = 0; l < cfg.targets[i].nluns; l++) {
				printf("iscsi://%s/%s/%llu\n", cfg.portals[p], cfg.targets[i].name,
				       (unsigned long long)cfg.targets[i].luns[l].lun);
			}
		}
	}
	fflush(stdout);
	LOG_INFO("daemon", "s3tgtd %s ready: %zu target(s), %zu portal(s)", S3TGT_VERSION,
		 cfg.ntargets, cfg.nportals);
	d.exit_code = 0;
	if (reactor_run(d.r) < 0) {
		d.exit_code = 1;
	}
	rc = d.exit_code;
out:
	iscsi_server_destroy(d.srv);
	if (d.sfd >= 0) {
		if (d.r) {
			reactor_del_fd(d.r, d.sfd);
		}
		close(d.sfd);
	}
	for (size_t i = 0; i < d.ntargets; i++) {
		scsi_target_destroy(d.targets[i]);
	}
	free(d.targets);
	reactor_destroy(d.r);
	daemon_config_fini(&cfg);
	return rc;
}
