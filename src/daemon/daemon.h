/*
 * daemon.h - s3tgtd quick-mode configuration: what the command line
 * describes, before anything is opened (--config files: s3tgt/mgmt.h).
 */
#ifndef S3TGT_DAEMON_H
#define S3TGT_DAEMON_H

#include <stddef.h>
#include <stdint.h>

struct daemon_lun {
	uint64_t lun;
	char *uri;
};

struct daemon_target {
	char *name;
	char *alias;
	struct daemon_lun *luns;
	size_t nluns;
};

struct daemon_config {
	char **portals;
	size_t nportals;
	struct daemon_target *targets;
	size_t ntargets;
	char *state_dir;
};

int daemon_config_add_portal(struct daemon_config *cfg, const char *hostport);
int daemon_config_add_target(struct daemon_config *cfg, const char *name, const char *alias);
/* Adds "N=URI" to the last target. */
int daemon_config_add_lun_arg(struct daemon_config *cfg, const char *arg, char *err,
			      size_t errlen);
void daemon_config_fini(struct daemon_config *cfg);

#endif
