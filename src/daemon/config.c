/*
 * config.c - s3tgtd configuration from a JSON file (jansson) or the
 * quick-mode command line. Errors name the field path, e.g.
 * "targets[0].luns[1].uri: expected a string".
 *
 * Schema:
 *   { "portals": ["127.0.0.1:3260", "[::1]:3260"],
 *     "targets": [ { "name": "iqn...", "alias": "...",
 *                    "luns": [ { "lun": 0, "uri": "ram:?size=1G" } ] } ],
 *     "state_dir": "/var/lib/s3tgt" }
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "s3tgt/core.h"
#include "s3tgt/iscsi.h"
#include "s3tgt/scsi.h"

int daemon_validate_iqn(const char *name, char *err, size_t errlen)
{
	size_t len = strlen(name);

	if (len == 0 || len > ISCSI_NAME_MAX) {
		snprintf(err, errlen, "iSCSI name must be 1..%d bytes", ISCSI_NAME_MAX);
		return -EINVAL;
	}
	if (strncmp(name, "iqn.", 4) == 0) {
		/* RFC 3720 3.2.6.3.1: iqn.yyyy-mm[.reversed.domain][:anything] */
		const char *p = name + 4;
		for (int i = 0; i < 4; i++) {
			if (!isdigit((unsigned char)p[i])) {
				goto bad_iqn;
			}
		}
		if (p[4] != '-' || !isdigit((unsigned char)p[5]) || !isdigit((unsigned char)p[6]) ||
		    (p[7] != '\0' && p[7] != '.' && p[7] != ':')) {
			goto bad_iqn;
		}
		for (const char *q = p + 7; *q; q++) {
			unsigned char ch = (unsigned char)*q;
			/* 3.2.6.2: lower case, digits, '-', '.', ':' only. */
			if (!(islower(ch) || isdigit(ch) || ch == '-' || ch == '.' || ch == ':')) {
				snprintf(err, errlen,
					 "'%s': character '%c' not allowed (RFC 3720 3.2.6.2: "
					 "lower-case letters, digits, '-', '.', ':')",
					 name, ch);
				return -EINVAL;
			}
		}
		return 0;
bad_iqn:
		snprintf(err, errlen, "'%s': expected iqn.YYYY-MM.reversed.domain[:id] (RFC 3720 3.2.6.3.1)",
			 name);
		return -EINVAL;
	}
	if (strncmp(name, "eui.", 4) == 0 || strncmp(name, "naa.", 4) == 0) {
		/* 3.2.6.3.2: eui. + 16 hex digits; RFC 3980: naa. + 16 or 32 hex digits. */
		size_t hex = len - 4;
		bool eui = name[0] == 'e';
		if ((eui && hex != 16) || (!eui && hex != 16 && hex != 32)) {
			snprintf(err, errlen, "'%s': %s needs %s hex digits", name, eui ? "eui." : "naa.",
				 eui ? "16" : "16 or 32");
			return -EINVAL;
		}
		for (size_t i = 4; i < len; i++) {
			if (!isxdigit((unsigned char)name[i])) {
				snprintf(err, errlen, "'%s': not a hex digit: '%c'", name, name[i]);
				return -EINVAL;
			}
		}
		return 0;
	}
	snprintf(err, errlen, "'%s': iSCSI names start with iqn., eui. or naa. (RFC 3720 3.2.6)",
		 name);
	return -EINVAL;
}

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

int daemon_config_validate(const struct daemon_config *cfg, char *err, size_t errlen)
{
	char why[256];

	if (cfg->nportals == 0) {
		snprintf(err, errlen, "portals: at least one portal (host:port) is needed");
		return -EINVAL;
	}
	if (cfg->ntargets == 0) {
		snprintf(err, errlen, "targets: at least one target is needed");
		return -EINVAL;
	}
	for (size_t i = 0; i < cfg->ntargets; i++) {
		const struct daemon_target *t = &cfg->targets[i];
		if (daemon_validate_iqn(t->name, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "targets[%zu].name: %s", i, why);
			return -EINVAL;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcasecmp(cfg->targets[j].name, t->name) == 0) {
				snprintf(err, errlen, "targets[%zu].name: duplicate target %s", i,
					 t->name);
				return -EINVAL;
			}
		}
		for (size_t k = 0; k < t->nluns; k++) {
			for (size_t j = 0; j < k; j++) {
				if (t->luns[j].lun == t->luns[k].lun) {
					snprintf(err, errlen, "targets[%zu].luns[%zu].lun: duplicate LUN %llu",
						 i, k, (unsigned long long)t->luns[k].lun);
					return -EINVAL;
				}
			}
		}
	}
	return 0;
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

/* Every key of obj must be in allowed[]; names the first stranger. */
static int check_keys(json_t *obj, const char *const *allowed, const char *path, char *err,
		      size_t errlen)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		bool ok = false;
		for (size_t i = 0; allowed[i]; i++) {
			if (strcmp(key, allowed[i]) == 0) {
				ok = true;
			}
		}
		if (!ok) {
			snprintf(err, errlen, "%s%s%s: unknown key", path, path[0] ? "." : "", key);
			return -EINVAL;
		}
	}
	return 0;
}

static int load_target(json_t *jt, size_t i, struct daemon_config *cfg, char *err, size_t errlen)
{
	static const char *const keys[] = { "name", "alias", "luns", NULL };
	static const char *const lun_keys[] = { "lun", "uri", NULL };
	char path[64];
	json_t *name, *alias, *luns, *jl;
	size_t k;
	int rc;

	snprintf(path, sizeof(path), "targets[%zu]", i);
	if (!json_is_object(jt)) {
		snprintf(err, errlen, "%s: expected an object", path);
		return -EINVAL;
	}
	rc = check_keys(jt, keys, path, err, errlen);
	if (rc < 0) {
		return rc;
	}
	name = json_object_get(jt, "name");
	alias = json_object_get(jt, "alias");
	luns = json_object_get(jt, "luns");
	if (!json_is_string(name)) {
		snprintf(err, errlen, "%s.name: expected a string", path);
		return -EINVAL;
	}
	if (alias && !json_is_string(alias)) {
		snprintf(err, errlen, "%s.alias: expected a string", path);
		return -EINVAL;
	}
	if (luns && !json_is_array(luns)) {
		snprintf(err, errlen, "%s.luns: expected an array", path);
		return -EINVAL;
	}
	rc = daemon_config_add_target(cfg, json_string_value(name),
				      alias ? json_string_value(alias) : NULL);
	if (rc < 0) {
		return rc;
	}
	json_array_foreach(luns, k, jl) {
		char lpath[96];
		json_t *ln, *uri;
		snprintf(lpath, sizeof(lpath), "%s.luns[%zu]", path, k);
		if (!json_is_object(jl)) {
			snprintf(err, errlen, "%s: expected an object", lpath);
			return -EINVAL;
		}
		rc = check_keys(jl, lun_keys, lpath, err, errlen);
		if (rc < 0) {
			return rc;
		}
		ln = json_object_get(jl, "lun");
		uri = json_object_get(jl, "uri");
		if (!json_is_integer(ln) || json_integer_value(ln) < 0 ||
		    json_integer_value(ln) > SCSI_MAX_LUN) {
			snprintf(err, errlen, "%s.lun: expected an integer 0..%d", lpath,
				 SCSI_MAX_LUN);
			return -EINVAL;
		}
		if (!json_is_string(uri)) {
			snprintf(err, errlen, "%s.uri: expected a string", lpath);
			return -EINVAL;
		}
		rc = add_lun(&cfg->targets[cfg->ntargets - 1], (uint64_t)json_integer_value(ln),
			     json_string_value(uri));
		if (rc < 0) {
			return rc;
		}
	}
	return 0;
}

int daemon_config_load(const char *path, struct daemon_config *cfg, char *err, size_t errlen)
{
	static const char *const keys[] = { "portals", "targets", "state_dir", NULL };
	json_error_t jerr;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	json_t *portals, *targets, *sd, *v;
	size_t i;
	int rc = -EINVAL;

	if (!root) {
		snprintf(err, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "%s: expected a JSON object", path);
		goto out;
	}
	rc = check_keys(root, keys, "", err, errlen);
	if (rc < 0) {
		goto out;
	}
	rc = -EINVAL;
	portals = json_object_get(root, "portals");
	targets = json_object_get(root, "targets");
	sd = json_object_get(root, "state_dir");
	if (portals && !json_is_array(portals)) {
		snprintf(err, errlen, "portals: expected an array");
		goto out;
	}
	json_array_foreach(portals, i, v) {
		if (!json_is_string(v)) {
			snprintf(err, errlen, "portals[%zu]: expected a string \"host:port\"", i);
			goto out;
		}
		rc = daemon_config_add_portal(cfg, json_string_value(v));
		if (rc < 0) {
			goto out;
		}
	}
	rc = -EINVAL;
	if (targets && !json_is_array(targets)) {
		snprintf(err, errlen, "targets: expected an array");
		goto out;
	}
	json_array_foreach(targets, i, v) {
		rc = load_target(v, i, cfg, err, errlen);
		if (rc < 0) {
			goto out;
		}
	}
	rc = -EINVAL;
	if (sd) {
		if (!json_is_string(sd)) {
			snprintf(err, errlen, "state_dir: expected a string");
			goto out;
		}
		cfg->state_dir = strdup(json_string_value(sd));
		if (!cfg->state_dir) {
			rc = -ENOMEM;
			goto out;
		}
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}
