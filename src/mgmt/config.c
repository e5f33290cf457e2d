/*
 * config.c - the persistent configuration: JSON schema (mgmt_internal.h),
 * validation with messages that name the field ("targets[1].luns[0].uri:
 * ..."), and the atomic save (temp file, fsync, rename, fsync directory) so a
 * crash leaves either the old or the new file, never a torn one.
 *
 * The file holds CHAP secrets, so it is written with mode 0600 and never
 * echoed back by the API.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mgmt_internal.h"
#include "s3tgt/scsi.h"
#include "s3tgt/store.h"

#define CONFIG_MAX (16 * 1024 * 1024)

int mgmt_strv_add(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(*nv));
	char *copy;

	if (!nv) {
		return -ENOMEM;
	}
	*v = nv;
	copy = strdup(s);
	if (!copy) {
		return -ENOMEM;
	}
	nv[(*n)++] = copy;
	return 0;
}

void mgmt_strv_remove(char **v, size_t *n, size_t i)
{
	free(v[i]);
	memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(*v));
	(*n)--;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i]);
	}
	free(v);
}

void mgmt_target_cfg_fini(struct mgmt_target_cfg *t)
{
	for (size_t i = 0; i < t->nluns; i++) {
		free(t->luns[i].uri);
	}
	free(t->luns);
	free(t->name);
	free(t->alias);
	strv_free(t->initiators, t->ninitiators);
	strv_free(t->networks, t->nnetworks);
	explicit_bzero(&t->chap, sizeof(t->chap));
	memset(t, 0, sizeof(*t));
}

void mgmt_config_fini(struct mgmt_config *cfg)
{
	strv_free(cfg->portals, cfg->nportals);
	free(cfg->state_dir);
	for (size_t i = 0; i < cfg->ntargets; i++) {
		mgmt_target_cfg_fini(&cfg->targets[i]);
	}
	free(cfg->targets);
	memset(cfg, 0, sizeof(*cfg));
}

struct mgmt_target_cfg *mgmt_config_find(struct mgmt_config *cfg, const char *name, size_t *index)
{
	for (size_t i = 0; i < cfg->ntargets; i++) {
		/* RFC 3722: iSCSI names compare case-insensitively. */
		if (strcasecmp(cfg->targets[i].name, name) == 0) {
			if (index) {
				*index = i;
			}
			return &cfg->targets[i];
		}
	}
	return NULL;
}

int mgmt_check_name(const char *name, const char *field, char *err, size_t errlen)
{
	if (!iscsi_name_is_valid(name)) {
		snprintf(
		    err, errlen,
		    "%s: '%.64s' is not an iSCSI name (RFC 3720 3.2.6: iqn.YYYY-MM.domain[:id], "
		    "eui.<16 hex>, naa.<16|32 hex>; at most %d bytes)",
		    field, name, ISCSI_NAME_MAX);
		return -EINVAL;
	}
	return 0;
}

int mgmt_check_lun(json_t *v, const char *field, uint64_t *out, char *err, size_t errlen)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > SCSI_MAX_LUN) {
		snprintf(err, errlen, "%s: expected an integer 0..%d", field, SCSI_MAX_LUN);
		return -EINVAL;
	}
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

int mgmt_check_uri(const char *uri, const char *field, char *err, size_t errlen)
{
	char why[256] = "";

	if (store_check_uri(uri, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: %s", field, why[0] ? why : "bad URI");
		return -EINVAL;
	}
	return 0;
}

int mgmt_check_cidr(const char *cidr, const char *field, char *err, size_t errlen)
{
	struct iscsi_acl *a;
	int rc = iscsi_acl_create(&a);

	if (rc) {
		return rc;
	}
	rc = iscsi_acl_add_network(a, cidr);
	iscsi_acl_destroy(a);
	if (rc == -EINVAL) {
		snprintf(err, errlen,
			 "%s: '%.64s' is not a network (address[/prefix], host bits zero)", field,
			 cidr);
	}
	return rc;
}

static int get_str(json_t *o, const char *key, const char *path, bool required, const char **out,
		   char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);

	*out = NULL;
	if (!v) {
		if (required) {
			snprintf(err, errlen, "%s%s%s: required", path, path[0] ? "." : "", key);
			return -EINVAL;
		}
		return 0;
	}
	if (!json_is_string(v)) {
		snprintf(err, errlen, "%s%s%s: expected a string", path, path[0] ? "." : "", key);
		return -EINVAL;
	}
	*out = json_string_value(v);
	return 0;
}

static int check_keys(json_t *obj, const char *const *allowed, const char *path, char *err,
		      size_t errlen)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v)
	{
		bool ok = false;
		for (size_t i = 0; allowed[i]; i++) {
			ok |= strcmp(key, allowed[i]) == 0;
		}
		if (!ok) {
			snprintf(err, errlen, "%s%s%.64s: unknown key", path, path[0] ? "." : "",
				 key);
			return -EINVAL;
		}
	}
	return 0;
}

static int copy_field(char *dst, size_t dstlen, const char *src)
{
	size_t n = strlen(src);

	if (n >= dstlen) {
		return -E2BIG;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

int mgmt_chap_from_json(json_t *o, const char *prefix, struct iscsi_chap_config *c, char *err,
			size_t errlen)
{
	static const char *const keys[] = {"user", "secret", "mutual_user", "mutual_secret", NULL};
	static const struct {
		const char *key;
		size_t off, len;
	} f[] = {
	    {"user", offsetof(struct iscsi_chap_config, user), ISCSI_CHAP_NAME_MAX + 1},
	    {"secret", offsetof(struct iscsi_chap_config, secret), ISCSI_CHAP_SECRET_MAX + 1},
	    {"mutual_user", offsetof(struct iscsi_chap_config, mutual_user),
	     ISCSI_CHAP_NAME_MAX + 1},
	    {"mutual_secret", offsetof(struct iscsi_chap_config, mutual_secret),
	     ISCSI_CHAP_SECRET_MAX + 1},
	};
	char why[160];
	int rc;

	memset(c, 0, sizeof(*c));
	if (!json_is_object(o)) {
		snprintf(err, errlen, "%s: expected an object", prefix[0] ? prefix : "body");
		return -EINVAL;
	}
	rc = check_keys(o, keys, prefix, err, errlen);
	if (rc) {
		return rc;
	}
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		const char *v;
		rc = get_str(o, f[i].key, prefix, i < 2, &v, err, errlen);
		if (rc) {
			return rc;
		}
		if (v && copy_field((char *)c + f[i].off, f[i].len, v) < 0) {
			snprintf(err, errlen, "%s%s%s: too long (at most %zu characters)", prefix,
				 prefix[0] ? "." : "", f[i].key, f[i].len - 1);
			return -EINVAL;
		}
	}
	if ((c->mutual_user[0] != '\0') != (c->mutual_secret[0] != '\0')) {
		snprintf(err, errlen,
			 "%s%s%s: mutual CHAP needs both mutual_user and mutual_secret", prefix,
			 prefix[0] ? "." : "", c->mutual_user[0] ? "mutual_secret" : "mutual_user");
		return -EINVAL;
	}
	rc = iscsi_chap_config_check(c, why, sizeof(why));
	if (rc) {
		snprintf(err, errlen, "%s%s%s", prefix, prefix[0] ? "." : "", why);
		explicit_bzero(c, sizeof(*c));
		return rc;
	}
	return 0;
}

static int load_strings(json_t *arr, const char *path, char ***v, size_t *n,
			int (*check)(const char *, const char *, char *, size_t), char *err,
			size_t errlen)
{
	size_t i;
	json_t *e;
	char field[128];
	int rc;

	if (!json_is_array(arr)) {
		snprintf(err, errlen, "%s: expected an array of strings", path);
		return -EINVAL;
	}
	json_array_foreach(arr, i, e)
	{
		snprintf(field, sizeof(field), "%s[%zu]", path, i);
		if (!json_is_string(e)) {
			snprintf(err, errlen, "%s: expected a string", field);
			return -EINVAL;
		}
		rc = check(json_string_value(e), field, err, errlen);
		if (rc) {
			return rc < 0 ? rc : -EINVAL;
		}
		for (size_t j = 0; j < *n; j++) {
			if (strcasecmp((*v)[j], json_string_value(e)) == 0) {
				snprintf(err, errlen, "%s: duplicate '%.64s'", field,
					 json_string_value(e));
				return -EINVAL;
			}
		}
		rc = mgmt_strv_add(v, n, json_string_value(e));
		if (rc) {
			return rc;
		}
	}
	return 0;
}

static int load_lun(json_t *jl, const char *path, struct mgmt_target_cfg *t, char *err,
		    size_t errlen)
{
	static const char *const keys[] = {"lun", "uri", NULL};
	struct mgmt_lun_cfg *nl;
	char field[200]; /* the caller's path (< 160) plus a key */
	const char *uri;
	uint64_t lun;
	int rc;

	if (!json_is_object(jl)) {
		snprintf(err, errlen, "%s: expected an object", path);
		return -EINVAL;
	}
	rc = check_keys(jl, keys, path, err, errlen);
	if (rc) {
		return rc;
	}
	snprintf(field, sizeof(field), "%s.lun", path);
	rc = mgmt_check_lun(json_object_get(jl, "lun"), field, &lun, err, errlen);
	if (rc) {
		return rc;
	}
	rc = get_str(jl, "uri", path, true, &uri, err, errlen);
	if (rc) {
		return rc;
	}
	snprintf(field, sizeof(field), "%s.uri", path);
	rc = mgmt_check_uri(uri, field, err, errlen);
	if (rc) {
		return rc;
	}
	for (size_t i = 0; i < t->nluns; i++) {
		if (t->luns[i].lun == lun) {
			snprintf(err, errlen, "%s.lun: duplicate LUN %llu", path,
				 (unsigned long long)lun);
			return -EINVAL;
		}
	}
	nl = realloc(t->luns, (t->nluns + 1) * sizeof(*nl));
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

static int load_target(json_t *jt, const char *path, struct mgmt_config *cfg, char *err,
		       size_t errlen)
{
	static const char *const keys[] = {"name", "alias", "luns", "acl", "chap", NULL};
	static const char *const acl_keys[] = {"initiators", "networks", NULL};
	struct mgmt_target_cfg *nt, *t;
	const char *name, *alias;
	json_t *luns, *acl, *chap, *jl;
	char field[160];
	size_t k;
	int rc;

	if (!json_is_object(jt)) {
		snprintf(err, errlen, "%s: expected an object", path);
		return -EINVAL;
	}
	rc = check_keys(jt, keys, path, err, errlen);
	if (rc) {
		return rc;
	}
	rc = get_str(jt, "name", path, true, &name, err, errlen);
	if (!rc) {
		rc = get_str(jt, "alias", path, false, &alias, err, errlen);
	}
	if (rc) {
		return rc;
	}
	snprintf(field, sizeof(field), "%s.name", path);
	rc = mgmt_check_name(name, field, err, errlen);
	if (rc) {
		return rc;
	}
	if (mgmt_config_find(cfg, name, NULL)) {
		snprintf(err, errlen, "%s: duplicate target %s", field, name);
		return -EINVAL;
	}
	if (alias && strlen(alias) > 255) {
		snprintf(err, errlen, "%s.alias: at most 255 characters", path);
		return -EINVAL;
	}
	nt = realloc(cfg->targets, (cfg->ntargets + 1) * sizeof(*nt));
	if (!nt) {
		return -ENOMEM;
	}
	cfg->targets = nt;
	t = &nt[cfg->ntargets++];
	memset(t, 0, sizeof(*t));
	t->name = strdup(name);
	t->alias = alias ? strdup(alias) : NULL;
	if (!t->name || (alias && !t->alias)) {
		return -ENOMEM;
	}
	luns = json_object_get(jt, "luns");
	if (luns && !json_is_array(luns)) {
		snprintf(err, errlen, "%s.luns: expected an array", path);
		return -EINVAL;
	}
	json_array_foreach(luns, k, jl)
	{
		snprintf(field, sizeof(field), "%s.luns[%zu]", path, k);
		rc = load_lun(jl, field, t, err, errlen);
		if (rc) {
			return rc;
		}
	}
	acl = json_object_get(jt, "acl");
	if (acl) {
		snprintf(field, sizeof(field), "%s.acl", path);
		if (!json_is_object(acl)) {
			snprintf(err, errlen, "%s: expected an object", field);
			return -EINVAL;
		}
		rc = check_keys(acl, acl_keys, field, err, errlen);
		if (rc) {
			return rc;
		}
		if (json_object_get(acl, "initiators")) {
			snprintf(field, sizeof(field), "%s.acl.initiators", path);
			rc = load_strings(json_object_get(acl, "initiators"), field, &t->initiators,
					  &t->ninitiators, mgmt_check_name, err, errlen);
			if (rc) {
				return rc;
			}
		}
		if (json_object_get(acl, "networks")) {
			snprintf(field, sizeof(field), "%s.acl.networks", path);
			rc = load_strings(json_object_get(acl, "networks"), field, &t->networks,
					  &t->nnetworks, mgmt_check_cidr, err, errlen);
			if (rc) {
				return rc;
			}
		}
	}
	chap = json_object_get(jt, "chap");
	if (chap) {
		snprintf(field, sizeof(field), "%s.chap", path);
		rc = mgmt_chap_from_json(chap, field, &t->chap, err, errlen);
		if (rc) {
			return rc;
		}
		t->has_chap = true;
	}
	return 0;
}

/* An optional top-level duration: 0 (off) .. ISCSI_NOP_MAX_S seconds. */
static int get_seconds(json_t *o, const char *key, bool *has, uint32_t *out, char *err,
		       size_t errlen)
{
	json_t *v = json_object_get(o, key);

	*has = false;
	if (!v) {
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > ISCSI_NOP_MAX_S) {
		snprintf(err, errlen, "%s: expected an integer number of seconds 0..%d (0 = off)",
			 key, ISCSI_NOP_MAX_S);
		return -EINVAL;
	}
	*has = true;
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

int mgmt_config_parse(const char *text, size_t len, struct mgmt_config *cfg, char *err,
		      size_t errlen)
{
	static const char *const keys[] = {"portals",	   "targets",	  "state_dir",
					   "nop_interval", "nop_timeout", NULL};
	json_error_t jerr;
	json_t *root, *portals, *targets, *v;
	const char *sd;
	char field[64];
	size_t i;
	int rc = -EINVAL;

	memset(cfg, 0, sizeof(*cfg));
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		/* Not jansson's "near '...'" part: it could quote a CHAP secret into a log. */
		char *near = strstr(jerr.text, " near ");
		if (near) {
			*near = '\0';
		}
		snprintf(err, errlen, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "expected a JSON object");
		goto out;
	}
	rc = check_keys(root, keys, "", err, errlen);
	if (rc) {
		goto out;
	}
	rc = -EINVAL;
	portals = json_object_get(root, "portals");
	if (portals && !json_is_array(portals)) {
		snprintf(err, errlen, "portals: expected an array");
		goto out;
	}
	json_array_foreach(portals, i, v)
	{
		if (!json_is_string(v) || !strchr(json_string_value(v), ':')) {
			snprintf(err, errlen, "portals[%zu]: expected a string \"host:port\"", i);
			rc = -EINVAL;
			goto out;
		}
		rc = mgmt_strv_add(&cfg->portals, &cfg->nportals, json_string_value(v));
		if (rc) {
			goto out;
		}
	}
	rc = get_str(root, "state_dir", "", false, &sd, err, errlen);
	if (rc) {
		goto out;
	}
	if (sd) {
		cfg->state_dir = strdup(sd);
		if (!cfg->state_dir) {
			rc = -ENOMEM;
			goto out;
		}
	}
	rc = get_seconds(root, "nop_interval", &cfg->has_nop_interval, &cfg->nop_interval, err,
			 errlen);
	if (rc) {
		goto out;
	}
	rc =
	    get_seconds(root, "nop_timeout", &cfg->has_nop_timeout, &cfg->nop_timeout, err, errlen);
	if (rc) {
		goto out;
	}
	rc = -EINVAL;
	targets = json_object_get(root, "targets");
	if (targets && !json_is_array(targets)) {
		snprintf(err, errlen, "targets: expected an array");
		goto out;
	}
	json_array_foreach(targets, i, v)
	{
		snprintf(field, sizeof(field), "targets[%zu]", i);
		rc = load_target(v, field, cfg, err, errlen);
		if (rc) {
			goto out;
		}
	}
	rc = 0;
out:
	json_decref(root);
	if (rc) {
		mgmt_config_fini(cfg);
	}
	return rc;
}

int mgmt_config_load(const char *path, struct mgmt_config *cfg, bool *missing, char *err,
		     size_t errlen)
{
	struct stat sb;
	char *text = NULL;
	ssize_t got;
	size_t off = 0;
	int fd, rc;

	*missing = false;
	memset(cfg, 0, sizeof(*cfg));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			*missing = true;
			return 0;
		}
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size > CONFIG_MAX) {
		snprintf(err, errlen, "%s: not a regular file of at most %d bytes", path,
			 CONFIG_MAX);
		rc = -EINVAL;
		goto out;
	}
	text = malloc((size_t)sb.st_size + 1);
	if (!text) {
		rc = -ENOMEM;
		goto out;
	}
	while (off < (size_t)sb.st_size) {
		got = read(fd, text + off, (size_t)sb.st_size - off);
		if (got < 0 && errno == EINTR) {
			continue;
		}
		if (got <= 0) {
			rc = got < 0 ? -errno : -EIO;
			snprintf(err, errlen, "%s: read failed", path);
			goto out;
		}
		off += (size_t)got;
	}
	rc = mgmt_config_parse(text, off, cfg, err, errlen);
out:
	if (text) {
		explicit_bzero(text, off); /* it holds CHAP secrets */
		free(text);
	}
	close(fd);
	return rc;
}

static json_t *strv_json(char **v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++) {
		if (json_array_append_new(a, json_string(v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *target_json(const struct mgmt_target_cfg *t)
{
	json_t *o = json_object(), *luns = json_array();
	int bad = !o || !luns;

	for (size_t i = 0; !bad && i < t->nluns; i++) {
		bad |= json_array_append_new(luns, json_pack("{s:I,s:s}", "lun",
							     (json_int_t)t->luns[i].lun, "uri",
							     t->luns[i].uri)) < 0;
	}
	bad = bad || json_object_set_new(o, "name", json_string(t->name)) < 0;
	if (!bad && t->alias) {
		bad = json_object_set_new(o, "alias", json_string(t->alias)) < 0;
	}
	bad = bad || json_object_set(o, "luns", luns) < 0;
	if (!bad && (t->ninitiators || t->nnetworks)) {
		bad = json_object_set_new(o, "acl",
					  json_pack("{s:o,s:o}", "initiators",
						    strv_json(t->initiators, t->ninitiators),
						    "networks",
						    strv_json(t->networks, t->nnetworks))) < 0;
	}
	if (!bad && t->has_chap) {
		json_t *c = json_pack("{s:s,s:s}", "user", t->chap.user, "secret", t->chap.secret);
		if (c && t->chap.mutual_user[0]) {
			bad |= json_object_set_new(c, "mutual_user",
						   json_string(t->chap.mutual_user)) < 0;
			bad |= json_object_set_new(c, "mutual_secret",
						   json_string(t->chap.mutual_secret)) < 0;
		}
		bad = bad || json_object_set_new(o, "chap", c) < 0;
	}
	json_decref(luns);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *mgmt_config_to_json(const struct mgmt_config *cfg)
{
	json_t *root = json_object(), *targets = json_array();
	int bad = !root || !targets;

	for (size_t i = 0; !bad && i < cfg->ntargets; i++) {
		json_t *t = target_json(&cfg->targets[i]);
		bad = !t || json_array_append_new(targets, t) < 0;
	}
	if (!bad && cfg->nportals) {
		bad = json_object_set_new(root, "portals", strv_json(cfg->portals, cfg->nportals)) <
		      0;
	}
	if (!bad && cfg->state_dir) {
		bad = json_object_set_new(root, "state_dir", json_string(cfg->state_dir)) < 0;
	}
	if (!bad && cfg->has_nop_interval) {
		bad =
		    json_object_set_new(root, "nop_interval", json_integer(cfg->nop_interval)) < 0;
	}
	if (!bad && cfg->has_nop_timeout) {
		bad = json_object_set_new(root, "nop_timeout", json_integer(cfg->nop_timeout)) < 0;
	}
	bad = bad || json_object_set(root, "targets", targets) < 0;
	json_decref(targets);
	if (bad) {
		json_decref(root);
		return NULL;
	}
	return root;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int mgmt_config_save(const char *path, const struct mgmt_config *cfg, char *err, size_t errlen)
{
	char tmp[4096], dir[4096];
	json_t *root = mgmt_config_to_json(cfg);
	char *text = NULL;
	int fd = -1, dfd = -1, rc = 0;

	if (!root) {
		return -ENOMEM;
	}
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!text) {
		return -ENOMEM;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp) ||
	    snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", tmp, strerror(-rc));
		goto out;
	}
	/* An existing temp file may have had a wider mode: secrets stay private. */
	if (fchmod(fd, 0600) < 0 || (rc = write_all(fd, text, strlen(text))) < 0 ||
	    (rc = write_all(fd, "\n", 1)) < 0 || fsync(fd) < 0) {
		rc = rc < 0 ? rc : -errno;
		snprintf(err, errlen, "%s: %s", tmp, strerror(-rc));
		goto err_unlink;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = -errno;
		snprintf(err, errlen, "%s: %s", tmp, strerror(-rc));
		goto err_unlink;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		rc = -errno;
		snprintf(err, errlen, "rename to %s: %s", path, strerror(-rc));
		goto err_unlink;
	}
	/* The rename is durable only once the directory entry is. */
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0) {
		rc = -errno;
		snprintf(err, errlen, "fsync of the directory of %s: %s", path, strerror(-rc));
		goto out;
	}
	rc = 0;
	goto out;
err_unlink:
	unlink(tmp);
out:
	if (fd >= 0) {
		close(fd);
	}
	if (dfd >= 0) {
		close(dfd);
	}
	explicit_bzero(text, strlen(text));
	free(text);
	return rc;
}
