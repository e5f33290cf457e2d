/*
 * test_store_uri.c - LUN URI parsing, common options, error messages, and
 * store_open_uri's option checks.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "s3tgt/core.h"
#include "s3tgt/store.h"

static void test_parse_basic(void **state)
{
	struct store_params p;
	char err[256];

	assert_int_equal(store_params_parse("file:/tmp/disk.img?size=10G", &p, err, sizeof(err)),
			 0);
	assert_string_equal(p.scheme, "file");
	assert_string_equal(p.path, "/tmp/disk.img");
	assert_int_equal(p.size, 10ull << 30);
	assert_int_equal(p.block_size, 512);
	assert_true(p.thin);
	assert_int_equal(p.nopts, 0);
	store_params_fini(&p);

	assert_int_equal(store_params_parse("ram:", &p, err, sizeof(err)), 0);
	assert_string_equal(p.scheme, "ram");
	assert_string_equal(p.path, "");
	assert_int_equal(p.size, 0);
	store_params_fini(&p);

	assert_int_equal(
	    store_params_parse("ram:?size=1G&block_size=4096&thin=0", &p, err, sizeof(err)), 0);
	assert_int_equal(p.size, 1ull << 30);
	assert_int_equal(p.block_size, 4096);
	assert_false(p.thin);
	store_params_fini(&p);
	store_params_fini(NULL);
}

static void test_parse_opts_and_decoding(void **state)
{
	struct store_params p;
	char err[256];

	assert_int_equal(store_params_parse("s3:my%20bucket/pre%2Ffix?endpoint=http%3A%2F%2F127.0."
					    "0.1%3A9000&region=us-east-1&empty=&size=4M",
					    &p, err, sizeof(err)),
			 0);
	assert_string_equal(p.scheme, "s3");
	assert_string_equal(p.path, "my bucket/pre/fix");
	assert_int_equal(p.size, 4ull << 20);
	assert_int_equal(p.nopts, 3);
	assert_string_equal(store_param_get(&p, "endpoint"), "http://127.0.0.1:9000");
	assert_string_equal(store_param_get(&p, "region"), "us-east-1");
	assert_string_equal(store_param_get(&p, "empty"), "");
	assert_null(store_param_get(&p, "size"));
	assert_null(store_param_get(&p, "nope"));
	store_params_fini(&p);

	/* '+' is literal (this is not form encoding); '=' inside a value is kept. */
	assert_int_equal(store_params_parse("dir:/a+b?k=x=y", &p, err, sizeof(err)), 0);
	assert_string_equal(p.path, "/a+b");
	assert_string_equal(store_param_get(&p, "k"), "x=y");
	store_params_fini(&p);
}

struct bad_case {
	const char *uri;
	int rc;
	const char *msg; /* substring expected in err */
};

static void test_parse_errors(void **state)
{
	static const struct bad_case cases[] = {
	    {"", -EINVAL, "empty URI"},
	    {"/tmp/disk.img", -EINVAL, "missing store type"},
	    {":foo", -EINVAL, "missing store type"},
	    {"1ram:?size=1G", -EINVAL, "bad store type '1ram'"},
	    {"ra m:?size=1G", -EINVAL, "bad store type"},
	    {"ram:?size=1G&size=2G", -EINVAL, "duplicate option 'size'"},
	    {"dir:/x?foo=1&foo=2", -EINVAL, "duplicate option 'foo'"},
	    {"ram:?size=abc", -EINVAL, "size: expected a positive size like 10G, got 'abc'"},
	    {"ram:?size=0", -EINVAL, "size: expected a positive size"},
	    {"ram:?size=99999999T", -ERANGE, "size:"},
	    {"ram:?size=1000", -EINVAL, "size: 1000 is not a multiple of block_size 512"},
	    {"ram:?size=1M&block_size=1000", -EINVAL,
	     "block_size: must be 512 or 4096, got '1000'"},
	    {"ram:?size=6K&block_size=4096", -EINVAL, "not a multiple of block_size 4096"},
	    {"ram:?thin=yes", -EINVAL, "thin: must be 0 or 1, got 'yes'"},
	    {"ram:?size", -EINVAL, "option 'size' needs a value"},
	    {"ram:?=5", -EINVAL, "empty name"},
	    {"ram:?size=1G&", -EINVAL, "empty option"},
	    {"ram:?&size=1G", -EINVAL, "empty option"},
	    {"file:/tmp/%zz", -EINVAL, "path: bad percent-encoding"},
	    {"file:/tmp/%4", -EINVAL, "path: bad percent-encoding"},
	    {"file:/tmp/%00x", -EINVAL, "'%00' is not allowed"},
	    {"file:/x?k=%G1", -EINVAL, "k: bad percent-encoding"},
	};
	char err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct store_params p;
		int rc = store_params_parse(cases[i].uri, &p, err, sizeof(err));
		if (rc != cases[i].rc || !strstr(err, cases[i].msg)) {
			fail_msg("'%s': rc %d err '%s', expected rc %d and '%s'", cases[i].uri, rc,
				 err, cases[i].rc, cases[i].msg);
		}
		/* Failed parses leave nothing to free, and fini is still safe. */
		assert_null(p.scheme);
		store_params_fini(&p);
	}
}

static void test_error_buffer_small(void **state)
{
	struct store_params p;
	char err[8];

	assert_int_equal(store_params_parse("ram:?thin=maybe", &p, err, sizeof(err)), -EINVAL);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_int_equal(store_params_parse("ram:?thin=maybe", &p, NULL, 0), -EINVAL);
}

static void test_open_uri_checks(void **state)
{
	struct reactor *r;
	struct store *st = NULL;
	char err[256];

	assert_int_equal(reactor_create(&r), 0);
	assert_int_equal(store_open_uri("nosuch:/x?size=1G", r, &st, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "unknown store type 'nosuch'");
	assert_int_equal(store_open_uri("ram:?size=1G&foo=1", r, &st, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "ram: unknown option 'foo'");
	assert_int_equal(store_open_uri("file:/tmp/x?size=1G&bar=2", r, &st, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "file: unknown option 'bar'");
	assert_int_equal(store_open_uri("ram:", r, &st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "ram: size is required"));
	assert_null(st);

	assert_int_equal(store_open_uri("ram:?size=1M&block_size=4096", r, &st, err, sizeof(err)),
			 0);
	assert_non_null(st);
	assert_string_equal(st->uri, "ram:?size=1M&block_size=4096");
	assert_int_equal(st->size, 1 << 20);
	assert_int_equal(st->block_size, 4096);
	assert_true(st->thin);
	assert_ptr_equal(st->ops, &store_ram_ops);
	assert_ptr_equal(st->reactor, r);
	store_close(st);
	store_close(NULL);
	reactor_destroy(r);
}

static int fake_open(struct store *st, const struct store_params *p, char *err, size_t errlen)
{
	st->size = p->size;
	return 0;
}

static int fake_submit(struct store *st, struct store_io *io)
{
	return -ENOTSUP;
}

static void fake_close(struct store *st)
{
}

static const char *const g_fake_options[] = {"knob", NULL};

static const struct store_ops g_fake_ops = {
    .name = "fake",
    .options = g_fake_options,
    .open = fake_open,
    .submit = fake_submit,
    .close = fake_close,
};

static void test_register(void **state)
{
	struct store *st;
	char err[256];

	assert_null(store_ops_find("fake"));
	assert_int_equal(store_register(&g_fake_ops), 0);
	assert_int_equal(store_register(&g_fake_ops), -EEXIST);
	assert_int_equal(store_register(&store_ram_ops), -EEXIST);
	assert_ptr_equal(store_ops_find("fake"), &g_fake_ops);
	assert_ptr_equal(store_ops_find("ram"), &store_ram_ops);
	assert_ptr_equal(store_ops_find("file"), &store_file_ops);
	assert_int_equal(store_open_uri("fake:x?knob=1&size=1M", NULL, &st, err, sizeof(err)), 0);
	store_close(st);
	assert_int_equal(store_open_uri("fake:x?knob2=1&size=1M", NULL, &st, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "fake: unknown option 'knob2'");
	/* A store that reports a size not a multiple of block_size is refused. */
	assert_int_equal(store_open_uri("fake:x?knob=1", NULL, &st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a positive multiple"));
}

/*
 * Two layers: "lo" (option lo=N) and "hi" (option hi=N), registered lo first.
 * Each wraps its lower store in a pass-through store whose uri records the
 * stacking; "lo" adds the fake store's knob to the lower URI (prepare).
 */
struct layer_fx {
	struct store *lower;
};

static int pass_submit(struct store *st, struct store_io *io)
{
	struct layer_fx *x = st->priv;

	return store_submit(x->lower, io);
}

static void pass_close(struct store *st)
{
	struct layer_fx *x = st->priv;

	store_close(x->lower);
	free(x);
}

static const struct store_ops g_pass_ops = {
    .name = "pass",
    .submit = pass_submit,
    .close = pass_close,
};

static int g_wraps;
static char g_order[64];

static int layer_check(const struct store_params *p, char *err, size_t errlen)
{
	for (size_t i = 0; i < p->nopts; i++) {
		if ((strcmp(p->opts[i].key, "lo") == 0 || strcmp(p->opts[i].key, "hi") == 0) &&
		    strcmp(p->opts[i].value, "bad") == 0) {
			snprintf(err, errlen, "%s: bad value", p->opts[i].key);
			return -EINVAL;
		}
	}
	return 0;
}

static int lo_prepare(const struct store_params *p, char **lower_uri, char *err, size_t errlen)
{
	return store_uri_add_option(lower_uri, "knob", "7");
}

static int layer_wrap(struct store *lower, const struct store_params *p, struct store **out,
		      char *err, size_t errlen, const char *name)
{
	struct store *st = calloc(1, sizeof(*st));
	struct layer_fx *x = calloc(1, sizeof(*x));

	assert_non_null(st);
	assert_non_null(x);
	if (store_param_get(p, name) && strcmp(store_param_get(p, name), "fail") == 0) {
		free(st);
		free(x);
		store_close(lower);
		snprintf(err, errlen, "%s: wrap failed", name);
		return -EIO;
	}
	x->lower = lower;
	*st = *lower;
	st->ops = &g_pass_ops;
	st->priv = x;
	st->uri = strdup(name);
	g_wraps++;
	strncat(g_order, name, sizeof(g_order) - strlen(g_order) - 1);
	*out = st;
	return 0;
}

static int lo_wrap(struct store *lower, const struct store_params *p, struct store **out, char *err,
		   size_t errlen)
{
	return layer_wrap(lower, p, out, err, errlen, "lo");
}

static int hi_wrap(struct store *lower, const struct store_params *p, struct store **out, char *err,
		   size_t errlen)
{
	return layer_wrap(lower, p, out, err, errlen, "hi");
}

static const char *const g_lo_opts[] = {"lo", NULL};
static const char *const g_hi_opts[] = {"hi", NULL};
static const struct store_layer_ops g_lo = {.name = "lo",
					    .options = g_lo_opts,
					    .check = layer_check,
					    .prepare = lo_prepare,
					    .wrap = lo_wrap};
static const struct store_layer_ops g_hi = {
    .name = "hi", .options = g_hi_opts, .check = layer_check, .wrap = hi_wrap};

static void test_layers(void **state)
{
	struct store *st = NULL;
	struct layer_fx *x;
	char err[256];

	/* Unregistered, a layer's option is unknown to the store. */
	assert_int_equal(store_check_uri("fake:x?size=1M&hi=1", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "fake: unknown option 'hi'");
	if (!store_ops_find("fake")) {
		assert_int_equal(store_register(&g_fake_ops), 0);
	}
	assert_int_equal(store_layer_register(&g_lo), 0);
	assert_int_equal(store_layer_register(&g_hi), 0);
	assert_int_equal(store_layer_register(&g_hi), 0);

	/* Both layers, lo below hi whatever the option order; the top has the whole URI. */
	assert_int_equal(store_open_uri("fake:x?hi=1&size=1M&lo=1", NULL, &st, err, sizeof(err)),
			 0);
	assert_string_equal(g_order, "lohi");
	assert_string_equal(st->uri, "fake:x?hi=1&size=1M&lo=1");
	x = st->priv;
	assert_string_equal(x->lower->uri, "lo");
	x = x->lower->priv;
	/* The store below got its own options only, plus what lo's prepare added. */
	assert_string_equal(x->lower->uri, "fake:x?size=1M&knob=7");
	assert_ptr_equal(x->lower->ops, &g_fake_ops);
	store_close(st);

	/* Only the layers given options stack; none: the plain store. */
	g_order[0] = '\0';
	assert_int_equal(store_open_uri("fake:x?size=1M&hi=2", NULL, &st, err, sizeof(err)), 0);
	assert_string_equal(g_order, "hi");
	x = st->priv;
	assert_string_equal(x->lower->uri, "fake:x?size=1M");
	store_close(st);
	g_wraps = 0;
	assert_int_equal(store_open_uri("fake:x?size=1M&knob=1", NULL, &st, err, sizeof(err)), 0);
	assert_int_equal(g_wraps, 0);
	assert_ptr_equal(st->ops, &g_fake_ops);
	store_close(st);

	/* Checks: a bad value is refused before anything opens; an unknown option names the store.
	 */
	assert_int_equal(store_check_uri("fake:x?size=1M&lo=bad", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "lo: bad value");
	assert_int_equal(store_open_uri("fake:x?size=1M&hi=bad", NULL, &st, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "hi: bad value");
	assert_int_equal(store_check_uri("fake:x?size=1M&lo=1&nope=1", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "fake: unknown option 'nope'");
	assert_int_equal(store_check_uri("fake:x?size=1M&lo=1&hi=1", err, sizeof(err)), 0);

	/* A failing wrap above a successful one: the error, nothing left open (ASan, valgrind). */
	g_wraps = 0;
	assert_int_equal(store_open_uri("fake:x?size=1M&lo=1&hi=fail", NULL, &st, err, sizeof(err)),
			 -EIO);
	assert_string_equal(err, "hi: wrap failed");
	assert_int_equal(g_wraps, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_basic),	    cmocka_unit_test(test_parse_opts_and_decoding),
	    cmocka_unit_test(test_parse_errors),    cmocka_unit_test(test_error_buffer_small),
	    cmocka_unit_test(test_open_uri_checks), cmocka_unit_test(test_register),
	    cmocka_unit_test(test_layers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
