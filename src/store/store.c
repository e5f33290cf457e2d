/*
 * store.c - store registry, LUN URI parsing and the generic open/close/submit
 * wrappers.
 *
 * URI grammar (no authority part; the path is opaque to this file):
 *
 *     uri    = scheme ":" path [ "?" option *( "&" option ) ]
 *     scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
 *     option = key "=" value        (path, key and value are percent-decoded)
 *
 * size, block_size, thin and read_only are common to every store and land in struct
 * store_params fields; all other options are the store's, checked against
 * ops->options by store_open_uri().
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3tgt/core.h"
#include "s3tgt/store.h"

#define STORE_EXTRA_MAX 8

/* Built-in stores: the one table to extend when a store is added. */
static const struct store_ops *const g_store_builtin[] = {
    &store_ram_ops,
    &store_file_ops,
    &store_dir_ops,
    &store_s3_ops,
};

/* Stores registered at run time (tests: fault-injecting or delaying stores). */
static const struct store_ops *g_store_extra[STORE_EXTRA_MAX];

/* Layers, lowest first (store_layer_register). */
#define STORE_LAYERS_MAX 4
static const struct store_layer_ops *g_layers[STORE_LAYERS_MAX];

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0) {
		return;
	}
	va_start(ap, fmt);
	/* Truncation of a diagnostic is acceptable; it stays NUL-terminated. */
	if (vsnprintf(err, errlen, fmt, ap) < 0) {
		err[0] = '\0';
	}
	va_end(ap);
}

/* Closes of every store of the process that finish in the background. */
static atomic_uint g_closes_pending;

void store_close_background_begin(void)
{
	atomic_fetch_add(&g_closes_pending, 1);
}

void store_close_background_end(void)
{
	atomic_fetch_sub(&g_closes_pending, 1);
}

unsigned store_closes_pending(void)
{
	return atomic_load(&g_closes_pending);
}

const struct store_ops *store_ops_find(const char *scheme)
{
	if (!scheme) {
		return NULL;
	}
	for (size_t i = 0; i < sizeof(g_store_builtin) / sizeof(g_store_builtin[0]); i++) {
		if (strcmp(g_store_builtin[i]->name, scheme) == 0) {
			return g_store_builtin[i];
		}
	}
	for (size_t i = 0; i < STORE_EXTRA_MAX; i++) {
		if (g_store_extra[i] && strcmp(g_store_extra[i]->name, scheme) == 0) {
			return g_store_extra[i];
		}
	}
	return NULL;
}

int store_register(const struct store_ops *ops)
{
	if (!ops || !ops->name || !ops->open || !ops->submit || !ops->close) {
		return -EINVAL;
	}
	if (store_ops_find(ops->name)) {
		return -EEXIST;
	}
	for (size_t i = 0; i < STORE_EXTRA_MAX; i++) {
		if (!g_store_extra[i]) {
			g_store_extra[i] = ops;
			return 0;
		}
	}
	return -ENOSPC;
}

/* ---- URI parsing ---- */

/* Percent-decode s[0..len) into a new string; what names the part for errors. */
static int pct_decode(const char *s, size_t len, char **out, const char *what, char *err,
		      size_t errlen)
{
	char *d = malloc(len + 1);
	size_t j = 0;

	if (!d) {
		set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '%') {
			d[j++] = s[i];
			continue;
		}
		int hi = i + 2 < len ? hex_digit(s[i + 1]) : -1;
		int lo = i + 2 < len ? hex_digit(s[i + 2]) : -1;
		if (hi < 0 || lo < 0) {
			set_err(err, errlen, "%s: bad percent-encoding in '%.*s'", what, (int)len,
				s);
			free(d);
			return -EINVAL;
		}
		if (hi == 0 && lo == 0) {
			set_err(err, errlen, "%s: '%%00' is not allowed", what);
			free(d);
			return -EINVAL;
		}
		d[j++] = (char)(hi << 4 | lo);
		i += 2;
	}
	d[j] = '\0';
	*out = d;
	return 0;
}

static bool is_scheme_char(char c, bool first)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
		return true;
	}
	return !first && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.');
}

static int set_common(struct store_params *p, const char *key, const char *value, unsigned *seen,
		      char *err, size_t errlen)
{
	unsigned bit = strcmp(key, "size") == 0		? 1u
		       : strcmp(key, "block_size") == 0 ? 2u
		       : strcmp(key, "thin") == 0	? 4u
		       : strcmp(key, "read_only") == 0	? 8u
							: 0u;
	uint64_t v;
	int rc;

	if (*seen & bit) {
		set_err(err, errlen, "duplicate option '%s'", key);
		return -EINVAL;
	}
	if (strcmp(key, "size") == 0) {
		rc = parse_size(value, &v);
		if (rc || v == 0) {
			set_err(err, errlen, "size: expected a positive size like 10G, got '%s'",
				value);
			return rc == -ERANGE ? -ERANGE : -EINVAL;
		}
		p->size = v;
		*seen |= 1u;
		return 1;
	}
	if (strcmp(key, "block_size") == 0) {
		if (parse_u64(value, 0, UINT32_MAX, &v) != 0 || (v != 512 && v != 4096)) {
			set_err(err, errlen, "block_size: must be 512 or 4096, got '%s'", value);
			return -EINVAL;
		}
		p->block_size = (uint32_t)v;
		*seen |= 2u;
		return 1;
	}
	if (strcmp(key, "thin") == 0) {
		if (strcmp(value, "0") != 0 && strcmp(value, "1") != 0) {
			set_err(err, errlen, "thin: must be 0 or 1, got '%s'", value);
			return -EINVAL;
		}
		p->thin = value[0] == '1';
		*seen |= 4u;
		return 1;
	}
	if (strcmp(key, "read_only") == 0) {
		if (strcmp(value, "0") != 0 && strcmp(value, "1") != 0) {
			set_err(err, errlen, "read_only: must be 0 or 1, got '%s'", value);
			return -EINVAL;
		}
		p->read_only = value[0] == '1';
		*seen |= 8u;
		return 1;
	}
	return 0;
}

static int parse_option(struct store_params *p, const char *s, size_t len, unsigned *seen,
			char *err, size_t errlen)
{
	const char *eq = memchr(s, '=', len);
	char *key = NULL;
	char *value = NULL;
	int rc;

	if (len == 0) {
		set_err(err, errlen, "empty option in query string");
		return -EINVAL;
	}
	if (!eq) {
		set_err(err, errlen, "option '%.*s' needs a value (key=value)", (int)len, s);
		return -EINVAL;
	}
	if (eq == s) {
		set_err(err, errlen, "option '%.*s' has an empty name", (int)len, s);
		return -EINVAL;
	}
	rc = pct_decode(s, (size_t)(eq - s), &key, "option name", err, errlen);
	if (rc) {
		return rc;
	}
	rc = pct_decode(eq + 1, len - (size_t)(eq - s) - 1, &value, key, err, errlen);
	if (rc) {
		goto out;
	}
	for (size_t i = 0; i < p->nopts; i++) {
		if (strcmp(p->opts[i].key, key) == 0) {
			goto dup;
		}
	}
	rc = set_common(p, key, value, seen, err, errlen);
	if (rc < 0) {
		goto out;
	}
	if (rc == 1) {
		rc = 0;
		goto out;
	}
	{
		struct store_opt *o = realloc(p->opts, (p->nopts + 1) * sizeof(*o));
		if (!o) {
			set_err(err, errlen, "out of memory");
			rc = -ENOMEM;
			goto out;
		}
		p->opts = o;
		o[p->nopts].key = key;
		o[p->nopts].value = value;
		p->nopts++;
		return 0;
	}
dup:
	set_err(err, errlen, "duplicate option '%s'", key);
	rc = -EINVAL;
out:
	free(key);
	free(value);
	return rc;
}

int store_params_parse(const char *uri, struct store_params *p, char *err, size_t errlen)
{
	const char *colon;
	const char *q;
	const char *path_end;
	unsigned seen = 0;
	int rc;

	memset(p, 0, sizeof(*p));
	p->block_size = 512;
	p->thin = true;
	if (err && errlen) {
		err[0] = '\0';
	}
	if (!uri || !*uri) {
		set_err(err, errlen, "empty URI");
		return -EINVAL;
	}
	colon = strchr(uri, ':');
	if (!colon || colon == uri) {
		set_err(err, errlen, "missing store type in '%s' (expected type:path?options)",
			uri);
		return -EINVAL;
	}
	for (const char *c = uri; c < colon; c++) {
		if (!is_scheme_char(*c, c == uri)) {
			set_err(err, errlen, "bad store type '%.*s'", (int)(colon - uri), uri);
			return -EINVAL;
		}
	}
	p->scheme = strndup(uri, (size_t)(colon - uri));
	if (!p->scheme) {
		set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	q = strchr(colon + 1, '?');
	path_end = q ? q : colon + 1 + strlen(colon + 1);
	rc = pct_decode(colon + 1, (size_t)(path_end - colon - 1), &p->path, "path", err, errlen);
	if (rc) {
		goto err;
	}
	if (q) {
		const char *s = q + 1;
		for (;;) {
			const char *amp = strchr(s, '&');
			size_t len = amp ? (size_t)(amp - s) : strlen(s);
			rc = parse_option(p, s, len, &seen, err, errlen);
			if (rc) {
				goto err;
			}
			if (!amp) {
				break;
			}
			s = amp + 1;
		}
	}
	if (p->size % p->block_size) {
		set_err(err, errlen, "size: %llu is not a multiple of block_size %u",
			(unsigned long long)p->size, p->block_size);
		rc = -EINVAL;
		goto err;
	}
	return 0;

err:
	store_params_fini(p);
	return rc;
}

void store_params_fini(struct store_params *p)
{
	if (!p) {
		return;
	}
	for (size_t i = 0; i < p->nopts; i++) {
		free(p->opts[i].key);
		free(p->opts[i].value);
	}
	free(p->opts);
	free(p->scheme);
	free(p->path);
	memset(p, 0, sizeof(*p));
}

const char *store_param_get(const struct store_params *p, const char *key)
{
	for (size_t i = 0; i < p->nopts; i++) {
		if (strcmp(p->opts[i].key, key) == 0) {
			return p->opts[i].value;
		}
	}
	return NULL;
}

static bool option_known(const struct store_ops *ops, const char *key)
{
	if (!ops->options) {
		return false;
	}
	for (const char *const *o = ops->options; *o; o++) {
		if (strcmp(*o, key) == 0) {
			return true;
		}
	}
	return false;
}

/* Open the store uri names, with no layer: every option must be the store's. */
static int open_plain(const char *uri, struct reactor *r, struct store **out, char *err,
		      size_t errlen)
{
	const struct store_ops *ops;
	struct store_params p;
	struct store *st = NULL;
	int rc;

	rc = store_params_parse(uri, &p, err, errlen);
	if (rc) {
		return rc;
	}
	ops = store_ops_find(p.scheme);
	if (!ops) {
		set_err(err, errlen, "unknown store type '%s'", p.scheme);
		rc = -ENOENT;
		goto out;
	}
	for (size_t i = 0; i < p.nopts; i++) {
		if (!option_known(ops, p.opts[i].key)) {
			set_err(err, errlen, "%s: unknown option '%s'", ops->name, p.opts[i].key);
			rc = -EINVAL;
			goto out;
		}
	}
	st = calloc(1, sizeof(*st));
	if (!st) {
		set_err(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	st->uri = strdup(uri);
	if (!st->uri) {
		set_err(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto err_free;
	}
	st->ops = ops;
	st->reactor = r;
	st->block_size = p.block_size;
	st->thin = p.thin;
	st->read_only = p.read_only;
	rc = ops->open(st, &p, err, errlen);
	if (rc) {
		if (err && errlen && !err[0]) {
			set_err(err, errlen, "%s: open failed: %s", ops->name, strerror(-rc));
		}
		goto err_free;
	}
	if (st->size == 0 || st->size % st->block_size) {
		set_err(err, errlen, "%s: size %llu is not a positive multiple of block_size %u",
			ops->name, (unsigned long long)st->size, st->block_size);
		ops->close(st);
		rc = -EINVAL;
		goto err_free;
	}
	*out = st;
	st = NULL;
	goto out;

err_free:
	free(st->uri);
	free(st);
out:
	store_params_fini(&p);
	return rc;
}

int store_layer_register(const struct store_layer_ops *ops)
{
	for (size_t i = 0; i < STORE_LAYERS_MAX; i++) {
		if (g_layers[i] == ops) {
			return 0;
		}
		if (!g_layers[i]) {
			g_layers[i] = ops;
			return 0;
		}
	}
	return -ENOSPC;
}

static bool layer_has(const struct store_layer_ops *l, const char *key)
{
	for (const char *const *o = l->options; *o; o++) {
		if (strcmp(*o, key) == 0) {
			return true;
		}
	}
	return false;
}

static const struct store_layer_ops *layer_of(const char *key)
{
	for (size_t i = 0; i < STORE_LAYERS_MAX && g_layers[i]; i++) {
		if (layer_has(g_layers[i], key)) {
			return g_layers[i];
		}
	}
	return NULL;
}

/*
 * Every option of p belongs to its store or to a layer, and each layer given
 * options accepts their values. active[] gets those layers, lowest first.
 */
static int check_params(const struct store_params *p, const struct store_layer_ops **active,
			unsigned *nactive, char *err, size_t errlen)
{
	const struct store_ops *ops = store_ops_find(p->scheme);
	bool on[STORE_LAYERS_MAX] = {false};
	int rc;

	if (!ops) {
		set_err(err, errlen, "unknown store type '%s'", p->scheme);
		return -ENOENT;
	}
	for (size_t i = 0; i < p->nopts; i++) {
		const struct store_layer_ops *l;

		if (option_known(ops, p->opts[i].key)) {
			continue;
		}
		l = layer_of(p->opts[i].key);
		if (!l) {
			set_err(err, errlen, "%s: unknown option '%s'", ops->name, p->opts[i].key);
			return -EINVAL;
		}
		for (size_t k = 0; k < STORE_LAYERS_MAX; k++) {
			on[k] |= g_layers[k] == l;
		}
	}
	*nactive = 0;
	for (size_t k = 0; k < STORE_LAYERS_MAX && g_layers[k]; k++) {
		if (!on[k]) {
			continue;
		}
		rc = g_layers[k]->check(p, err, errlen);
		if (rc) {
			return rc;
		}
		active[(*nactive)++] = g_layers[k];
	}
	return 0;
}

int store_check_uri(const char *uri, char *err, size_t errlen)
{
	const struct store_layer_ops *active[STORE_LAYERS_MAX];
	struct store_params p;
	unsigned n;
	int rc;

	rc = store_params_parse(uri, &p, err, errlen);
	if (rc) {
		return rc;
	}
	rc = check_params(&p, active, &n, err, errlen);
	store_params_fini(&p);
	return rc;
}

/* Is the raw (maybe percent-encoded) option name s[0..len) a layer's option? */
static bool raw_is_layer_option(const char *s, size_t len)
{
	char key[64];
	size_t j = 0;

	for (size_t i = 0; i < len; i++) {
		char ch = s[i];

		if (ch == '%' && i + 2 < len && hex_digit(s[i + 1]) >= 0 &&
		    hex_digit(s[i + 2]) >= 0) {
			ch = (char)(hex_digit(s[i + 1]) << 4 | hex_digit(s[i + 2]));
			i += 2;
		}
		if (j + 1 >= sizeof(key)) {
			return false;
		}
		key[j++] = ch;
	}
	key[j] = '\0';
	return layer_of(key) != NULL;
}

/*
 * The URI of the store below the layers: uri without the layers' options
 * (new string). Built from the raw text, so the store's own options keep
 * their spelling.
 */
static char *lower_uri(const char *uri)
{
	const char *q = strchr(uri, '?');
	size_t n = strlen(uri);
	char *out = malloc(n + 1);
	size_t o;
	bool first = true;

	if (!out) {
		return NULL;
	}
	o = q ? (size_t)(q - uri) : n;
	memcpy(out, uri, o);
	if (q) {
		const char *s = q + 1;

		for (;;) {
			const char *amp = strchr(s, '&');
			size_t len = amp ? (size_t)(amp - s) : strlen(s);
			const char *eq = memchr(s, '=', len);

			if (!raw_is_layer_option(s, eq ? (size_t)(eq - s) : len)) {
				out[o++] = first ? '?' : '&';
				memcpy(out + o, s, len);
				o += len;
				first = false;
			}
			if (!amp) {
				break;
			}
			s = amp + 1;
		}
	}
	out[o] = '\0';
	return out;
}

int store_uri_add_option(char **uri, const char *key, const char *value)
{
	size_t n = strlen(*uri) + strlen(key) + strlen(value) + 3;
	char *s = malloc(n);

	if (!s) {
		return -ENOMEM;
	}
	snprintf(s, n, "%s%c%s=%s", *uri, strchr(*uri, '?') ? '&' : '?', key, value);
	free(*uri);
	*uri = s;
	return 0;
}

int store_open_uri(const char *uri, struct reactor *r, struct store **out, char *err, size_t errlen)
{
	const struct store_layer_ops *active[STORE_LAYERS_MAX];
	struct store_params p;
	struct store *st = NULL;
	char *luri = NULL, *own = NULL;
	unsigned n = 0;
	int rc;

	rc = store_params_parse(uri, &p, err, errlen);
	if (rc) {
		return rc;
	}
	rc = check_params(&p, active, &n, err, errlen);
	if (rc || n == 0) {
		store_params_fini(&p);
		return rc ? rc : open_plain(uri, r, out, err, errlen);
	}
	luri = lower_uri(uri);
	own = strdup(uri);
	if (!luri || !own) {
		set_err(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < n && !rc; i++) {
		if (active[i]->prepare) {
			rc = active[i]->prepare(&p, &luri, err, errlen);
		}
	}
	if (rc) {
		goto out;
	}
	rc = open_plain(luri, r, &st, err, errlen);
	for (unsigned i = 0; i < n && !rc; i++) {
		/* wrap takes st: on failure it is closed already */
		rc = active[i]->wrap(st, &p, &st, err, errlen);
	}
	if (rc) {
		goto out;
	}
	/* The stack answers to the URI it was opened from. */
	free(st->uri);
	st->uri = own;
	own = NULL;
	*out = st;
out:
	store_params_fini(&p);
	free(own);
	free(luri);
	return rc;
}

void store_close(struct store *st)
{
	if (!st) {
		return;
	}
	st->ops->close(st);
	free(st->uri);
	free(st);
}

int store_submit(struct store *st, struct store_io *io)
{
	/* The SCSI layer validated the request (SBC-3 4.5 LBA range checks); these are invariants.
	 */
	assert(io->offset % st->block_size == 0);
	assert(io->len % st->block_size == 0);
	assert(io->offset <= st->size && io->len <= st->size - io->offset);
	assert(io->cb);
	/*
	 * A store that lost its claim on the volume refuses every change, and so
	 * does each layer above it (store_ops.fenced): checked here, once for all.
	 */
	if (io->op != STORE_OP_READ && io->op != STORE_OP_FLUSH && store_fenced(st)) {
		return -EROFS;
	}
	return st->ops->submit(st, io);
}

bool store_fenced(struct store *st)
{
	return st->ops->fenced && st->ops->fenced(st);
}

void store_metrics(struct store *st, store_metric_fn fn, void *arg)
{
	if (st && st->ops->metrics) {
		st->ops->metrics(st, fn, arg);
	}
}
