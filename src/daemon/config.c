/*
 * config.c - s3tgtd quick-mode configuration from the command line
 * (--listen, --target, --lun). The JSON file of --config is read and written
 * by the management module (src/mgmt/config.c, docs/MGMT-API.md), which keeps
 * the schema { "portals", "state_dir", "nop_interval", "nop_timeout",
 * "targets": [ { "name", "alias", "luns": [ { "lun", "uri" } ], "acl",
 * "chap" } ] }.
 *
 * Only the shape of an argument is checked here. Names, LUN numbers and
 * duplicates are checked once, by the management layer that every target and
 * LUN goes through (mgmt_target_create, mgmt_lun_create), whatever its source.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "s3tgt/core.h"
#include "s3tgt/iscsi.h"
#include "s3tgt/scsi.h"

int daemon_config_add_portal(struct daemon_config *cfg, const char *hostport)
{
	char **np = realloc(cfg->portals, (cfg->nportals + 1) * sizeof(*np));

	if (!np) {
		return -ENOMEM;
	}
	cfg->portals = np;
	np[cfg->nportals] = strdup(hostport);
	if (!np[cfg->nportals]) {
		return -ENOMEM;
	}
	cfg->nportals++;
	return 0;
}

int daemon_config_add_target(struct daemon_config *cfg, const char *name, const char *alias)
{
	struct daemon_target *nt = realloc(cfg->targets, (cfg->ntargets + 1) * sizeof(*nt));
	struct daemon_target *t;

	if (!nt) {
		return -ENOMEM;
	}
	cfg->targets = nt;
	t = &nt[cfg->ntargets];
	memset(t, 0, sizeof(*t));
	t->name = strdup(name);
	t->alias = alias ? strdup(alias) : NULL;
	cfg->ntargets++;
	if (!t->name || (alias && !t->alias)) {
		return -ENOMEM;
	}
	return 0;
}

static int add_lun(struct daemon_target *t, uint64_t lun, const char *uri)
{
	struct daemon_lun *nl = realloc(t->luns, (t->nluns + 1) * sizeof(*nl));

	if (!nl) {
		return -ENOMEM;
	}
	t->luns = nl;
	nl[t->nluns].lun = lun;
	nl[t->nluns].uri = strdup(uri);
	if (!nl[t->nluns].uri) {
		return -ENOMEM;
	}
	t->nluns++;
	return 0;
}

int daemon_config_add_lun_arg(struct daemon_config *cfg, const char *arg, char *err,
			      size_t errlen)
{
	const char *eq = strchr(arg, '=');
	char num[32];
	uint64_t lun;

	if (cfg->ntargets == 0) {
		snprintf(err, errlen, "--lun %s: give --target IQN first", arg);
		return -EINVAL;
	}
	if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof(num) || !eq[1]) {
		snprintf(err, errlen, "--lun %s: expected N=URI", arg);
		return -EINVAL;
	}
	memcpy(num, arg, (size_t)(eq - arg));
	num[eq - arg] = '\0';
	if (parse_u64(num, 0, SCSI_MAX_LUN, &lun) < 0) {
		snprintf(err, errlen, "--lun %s: LUN must be 0..%d", arg, SCSI_MAX_LUN);
		return -EINVAL;
	}
	return add_lun(&cfg->targets[cfg->ntargets - 1], lun, eq + 1);
}

void daemon_config_fini(struct daemon_config *cfg)
{
	for (size_t i = 0; i < cfg->nportals; i++) {
		free(cfg->portals[i]);
	}
	free(cfg->portals);
	for (size_t i = 0; i < cfg->ntargets; i++) {
		struct daemon_target *t = &cfg->targets[i];
		for (size_t j = 0; j < t->nluns; j++) {
			free(t->luns[j].uri);
		}
		free(t->luns);
		free(t->name);
		free(t->alias);
	}
	free(cfg->targets);
	free(cfg->state_dir);
	memset(cfg, 0, sizeof(*cfg));
}
