/*
 * params.c - the cache's LUN options and its store layer (cache_layer_ops):
 * store_open_uri() opens the lower store with the other options of a LUN URI,
 * then the cache wraps it. Options and defaults: docs/DURABILITY.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "s3tgt/cache.h"
#include "s3tgt/core.h"
#include "s3tgt/store.h"

#include "cache_internal.h"

static const char *const g_opts[] = {
    "cache_size",    "cache_dir",      "writeback",	"flush_timeout",
    "cache_uploads", "cache_prefetch", "writeback_age", NULL,
};

static bool is_option(const char *key)
{
	for (const char *const *o = g_opts; *o; o++) {
		if (strcmp(*o, key) == 0) {
			return true;
		}
	}
	return false;
}

static int parse_bool(const char *key, const char *v, bool *out, char *err, size_t errlen)
{
	if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0) {
		snprintf(err, errlen, "%s: must be 0 or 1, got '%s'", key, v);
		return -EINVAL;
	}
	*out = v[0] == '1';
	return 0;
}

static int parse_uint(const char *key, const char *v, uint64_t min, uint64_t max, unsigned *out,
		      char *err, size_t errlen)
{
	uint64_t x;

	if (parse_u64(v, min, max, &x) != 0) {
		snprintf(err, errlen,
			 "%s: expected a whole number from %" PRIu64 " to %" PRIu64 ", got '%s'",
			 key, min, max, v);
		return -EINVAL;
	}
	*out = (unsigned)x;
	return 0;
}

int cache_params_from_opts(const struct store_opt *opts, size_t nopts, struct cache_params *cp,
			   bool *any, char *err, size_t errlen)
{
	int rc = 0;

	memset(cp, 0, sizeof(*cp));
	cp->cache_size = CACHE_SIZE_DEFAULT;
	cp->writeback = true;
	cp->flush_timeout_ms = CACHE_FLUSH_TIMEOUT_MS_DEFAULT;
	cp->max_uploads = CACHE_UPLOADS_DEFAULT;
	cp->prefetch = CACHE_PREFETCH_DEFAULT;
	cp->writeback_age_ms = CACHE_WRITEBACK_AGE_MS_DEFAULT;
	*any = false;
	for (size_t i = 0; i < nopts && !rc; i++) {
		const char *k = opts[i].key, *v = opts[i].value;
		unsigned secs;

		if (!is_option(k)) {
			continue;
		}
		*any = true;
		if (strcmp(k, "cache_size") == 0) {
			rc = parse_size(v, &cp->cache_size);
			if (rc || cp->cache_size == 0) {
				snprintf(err, errlen,
					 "cache_size: expected a size like 1G, got '%s'", v);
				rc = -EINVAL;
			}
		} else if (strcmp(k, "cache_dir") == 0) {
			if (v[0] != '/') {
				snprintf(err, errlen,
					 "cache_dir: must be an absolute path, got '%s'", v);
				rc = -EINVAL;
			} else {
				free(cp->cache_dir);
				cp->cache_dir = strdup(v);
				rc = cp->cache_dir ? 0 : -ENOMEM;
			}
		} else if (strcmp(k, "writeback") == 0) {
			rc = parse_bool(k, v, &cp->writeback, err, errlen);
		} else if (strcmp(k, "flush_timeout") == 0) {
			rc = parse_uint(k, v, 1, 3600, &secs, err, errlen);
			if (rc == 0) {
				cp->flush_timeout_ms = secs * 1000u;
			}
		} else if (strcmp(k, "writeback_age") == 0) {
			rc = parse_uint(k, v, 0, 3600000, &cp->writeback_age_ms, err, errlen);
		} else if (strcmp(k, "cache_uploads") == 0) {
			rc = parse_uint(k, v, 1, 256, &cp->max_uploads, err, errlen);
		} else {
			rc = parse_uint(k, v, 0, 64, &cp->prefetch, err, errlen);
		}
	}
	if (rc) {
		cache_params_fini(cp);
	}
	return rc;
}

void cache_params_fini(struct cache_params *cp)
{
	if (!cp) {
		return;
	}
	free(cp->cache_dir);
	cp->cache_dir = NULL;
}

#define HOLDER_FILE "holder-id"
#define HOLDER_LEN 32

/*
 * The lease holder id of this cache_dir (created on first use): a daemon
 * restarted with the same cache_dir is the same writer and takes its lease back.
 */
static int holder_id(const char *dir, char *id, size_t idlen, char *err, size_t errlen)
{
	char path[4096];
	FILE *f;
	int rc;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "cache_dir: cannot create %s: %s", dir, strerror(errno));
		return rc;
	}
	rc = snprintf(path, sizeof(path), "%s/" HOLDER_FILE, dir);
	if (rc < 0 || (size_t)rc >= sizeof(path)) {
		snprintf(err, errlen, "cache_dir: path too long");
		return -ENAMETOOLONG;
	}
	f = fopen(path, "re");
	if (f) {
		bool ok = fgets(id, (int)idlen, f) != NULL;

		fclose(f);
		id[strcspn(id, "\n")] = '\0';
		if (ok && strlen(id) == HOLDER_LEN &&
		    strspn(id, "0123456789abcdef") == HOLDER_LEN) {
			return 0;
		}
		snprintf(err, errlen,
			 "cache_dir: %s is damaged; delete it (the next start then "
			 "needs break_lease=1)",
			 path);
		return -EINVAL;
	}
	{
		uint8_t u[HOLDER_LEN / 2];
		char tmp[4096 + 8];

		if (getrandom(u, sizeof(u), 0) != (ssize_t)sizeof(u)) {
			snprintf(err, errlen, "cannot make a lease holder id");
			return -EIO;
		}
		for (size_t i = 0; i < sizeof(u); i++) {
			snprintf(id + 2 * i, 3, "%02x", u[i]);
		}
		snprintf(tmp, sizeof(tmp), "%s.tmp", path);
		f = fopen(tmp, "we");
		if (!f || fprintf(f, "%s\n", id) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
			rc = -errno;
			if (f) {
				fclose(f);
			}
			snprintf(err, errlen, "cache_dir: cannot write %s: %s", tmp, strerror(-rc));
			return rc;
		}
		fclose(f);
		if (rename(tmp, path) != 0) {
			rc = -errno;
			snprintf(err, errlen, "cache_dir: cannot create %s: %s", path,
				 strerror(-rc));
			return rc;
		}
	}
	return 0;
}

/* Does the lower store of uri take a lease_holder option it was not given? */
static bool wants_holder(const struct store_params *p)
{
	const struct store_ops *ops = store_ops_find(p->scheme);

	if (!ops || !ops->options || store_param_get(p, "lease_holder")) {
		return false;
	}
	for (const char *const *o = ops->options; *o; o++) {
		if (strcmp(*o, "lease_holder") == 0) {
			return true;
		}
	}
	return false;
}

static int layer_check(const struct store_params *p, char *err, size_t errlen)
{
	struct cache_params cp;
	bool any;
	int rc = cache_params_from_opts(p->opts, p->nopts, &cp, &any, err, errlen);

	cache_params_fini(&cp);
	return rc;
}

/* With cache_dir, a lower store that takes a lease holder gets this cache_dir's. */
static int layer_prepare(const struct store_params *p, char **lower_uri, char *err, size_t errlen)
{
	const char *dir = store_param_get(p, "cache_dir");
	char id[HOLDER_LEN + 2];
	int rc;

	if (!dir || !wants_holder(p)) {
		return 0;
	}
	rc = holder_id(dir, id, sizeof(id), err, errlen);
	if (rc == 0) {
		rc = store_uri_add_option(lower_uri, "lease_holder", id);
	}
	return rc;
}

static int layer_wrap(struct store *lower, const struct store_params *p, struct store **out,
		      char *err, size_t errlen)
{
	struct cache_params cp;
	bool any;
	int rc = cache_params_from_opts(p->opts, p->nopts, &cp, &any, err, errlen);

	if (rc) {
		store_close(lower);
		return rc;
	}
	rc = cache_store_wrap(lower, &cp, out, err, errlen);
	cache_params_fini(&cp);
	return rc;
}

const struct store_layer_ops cache_layer_ops = {
    .name = "cache",
    .options = g_opts,
    .check = layer_check,
    .prepare = layer_prepare,
    .wrap = layer_wrap,
};
