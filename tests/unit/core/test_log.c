/*
 * test_log.c - levels, per-component debug switches, rate limiting, and the
 * one-line-per-message format on stderr.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "s3tgt/log.h"

static void test_levels_and_debug(void **state)
{
	log_set_level(LOG_LEVEL_WARN);
	assert_true(log_enabled(LOG_LEVEL_ERR, "iscsi"));
	assert_true(log_enabled(LOG_LEVEL_WARN, "iscsi"));
	assert_false(log_enabled(LOG_LEVEL_INFO, "iscsi"));
	assert_false(log_enabled(LOG_LEVEL_DEBUG, "iscsi"));

	log_set_debug("iscsi,scsi");
	assert_true(log_enabled(LOG_LEVEL_DEBUG, "iscsi"));
	assert_true(log_enabled(LOG_LEVEL_DEBUG, "scsi"));
	assert_false(log_enabled(LOG_LEVEL_DEBUG, "isc"));
	assert_false(log_enabled(LOG_LEVEL_DEBUG, "store"));
	assert_false(log_enabled(LOG_LEVEL_DEBUG, NULL));
	/* Debug components do not raise other levels. */
	assert_false(log_enabled(LOG_LEVEL_INFO, "iscsi"));

	log_set_debug("all");
	assert_true(log_enabled(LOG_LEVEL_DEBUG, "anything"));
	log_set_debug("");
	assert_false(log_enabled(LOG_LEVEL_DEBUG, "iscsi"));
	log_set_debug(NULL);
	log_set_level(LOG_LEVEL_DEBUG);
	assert_true(log_enabled(LOG_LEVEL_DEBUG, "store"));
	log_set_level(LOG_LEVEL_INFO);
}

static void test_ratelimit(void **state)
{
	unsigned count = 0;
	unsigned long window = 0;
	int ok = 0;

	for (int i = 0; i < 100; i++) {
		ok += log_ratelimit_ok(&count, &window);
	}
	assert_true(ok >= 1 && ok <= 20);
}

static void test_format(void **state)
{
	int p[2];
	int saved = dup(STDERR_FILENO);
	char buf[4096];
	ssize_t n;

	assert_int_equal(pipe(p), 0);
	assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
	LOG_WARN("store", "lun %d: %s", 3, "bad");
	LOG_DEBUG("store", "hidden %d", 1);
	log_set_debug("store");
	LOG_DEBUG("store", "shown %d", 2);
	log_set_debug(NULL);
	for (int i = 0; i < 3000; i++) {
		buf[i] = 'x';
	}
	buf[3000] = '\0';
	LOG_ERR("long", "%s", buf);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(p[1]);
	n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "Z WARN store: lun 3: bad\n"));
	assert_null(strstr(buf, "hidden"));
	assert_non_null(strstr(buf, "Z DEBUG store: shown 2\n"));
	assert_non_null(strstr(buf, "Z ERR long: xxx"));
	assert_int_equal(buf[n - 1], '\n');
	assert_true(buf[0] >= '2' && buf[4] == '-' && buf[10] == 'T');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_levels_and_debug),
	    cmocka_unit_test(test_ratelimit),
	    cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
