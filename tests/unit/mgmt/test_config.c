/*
 * test_config.c - the persistent configuration: schema validation with
 * messages naming the field, round trip parse -> JSON -> parse, atomic save
 * with mode 0600, a missing file as an empty configuration.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "config.c"

static void expect_error(const char *text, const char *field)
{
	struct mgmt_config cfg;
	char err[512] = "";

	assert_int_equal(mgmt_config_parse(text, strlen(text), &cfg, err, sizeof(err)), -EINVAL);
	if (!strstr(err, field)) {
		fail_msg("error '%s' does not name '%s'", err, field);
	}
	assert_int_equal(cfg.ntargets, 0);
}

static const char *const k_full =
	"{\"portals\":[\"127.0.0.1:3260\"],\"state_dir\":\"/tmp/x\",\"nop_interval\":5,"
	"\"nop_timeout\":0,\"targets\":["
	"{\"name\":\"iqn.2026-11.io.s3tgt:a\",\"alias\":\"A\","
	"\"luns\":[{\"lun\":0,\"uri\":\"ram:?size=1M\"},{\"lun\":16383,\"uri\":\"ram:?size=2M\"}],"
	"\"acl\":{\"initiators\":[\"iqn.2026-11.io.s3tgt:i1\"],\"networks\":[\"10.0.0.0/8\"]},"
	"\"chap\":{\"user\":\"alice\",\"secret\":\"secretsecret1\",\"mutual_user\":\"tgt\","
	"\"mutual_secret\":\"mutualsecret99\"}},"
	"{\"name\":\"iqn.2026-11.io.s3tgt:b\",\"luns\":[]}]}";

static void test_parse_full(void **state)
{
	struct mgmt_config cfg;
	char err[512] = "";

	assert_int_equal(mgmt_config_parse(k_full, strlen(k_full), &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.nportals, 1);
	assert_string_equal(cfg.state_dir, "/tmp/x");
	assert_true(cfg.has_nop_interval);
	assert_int_equal(cfg.nop_interval, 5);
	assert_true(cfg.has_nop_timeout);
	assert_int_equal(cfg.nop_timeout, 0);
	assert_int_equal(cfg.ntargets, 2);
	assert_string_equal(cfg.targets[0].alias, "A");
	assert_int_equal(cfg.targets[0].nluns, 2);
	assert_int_equal(cfg.targets[0].luns[1].lun, 16383);
	assert_int_equal(cfg.targets[0].ninitiators, 1);
	assert_int_equal(cfg.targets[0].nnetworks, 1);
	assert_true(cfg.targets[0].has_chap);
	assert_string_equal(cfg.targets[0].chap.mutual_user, "tgt");
	assert_false(cfg.targets[1].has_chap);
	assert_ptr_equal(mgmt_config_find(&cfg, "IQN.2026-11.io.s3tgt:B", NULL), &cfg.targets[1]);
	mgmt_config_fini(&cfg);
}

static void test_round_trip(void **state)
{
	struct mgmt_config a, b;
	char err[512] = "";
	json_t *ja, *jb;
	char *text;

	assert_int_equal(mgmt_config_parse(k_full, strlen(k_full), &a, err, sizeof(err)), 0);
	ja = mgmt_config_to_json(&a);
	assert_non_null(ja);
	text = json_dumps(ja, 0);
	assert_int_equal(mgmt_config_parse(text, strlen(text), &b, err, sizeof(err)), 0);
	jb = mgmt_config_to_json(&b);
	assert_true(json_equal(ja, jb));
	/* and equal to the input document */
	json_t *orig = json_loads(k_full, 0, NULL);
	assert_true(json_equal(orig, ja));
	json_decref(orig);
	json_decref(ja);
	json_decref(jb);
	free(text);
	mgmt_config_fini(&a);
	mgmt_config_fini(&b);
}

static void test_validation(void **state)
{
	expect_error("[]", "expected a JSON object");
	expect_error("{\"targets\":{}}", "targets");
	expect_error("{\"bogus\":1}", "bogus");
	expect_error("{\"portals\":[\"nohostport\"]}", "portals[0]");
	expect_error("{\"targets\":[{\"name\":\"target1\"}]}", "targets[0].name");
	expect_error("{\"targets\":[{\"alias\":\"x\"}]}", "targets[0].name");
	expect_error("{\"targets\":[{\"name\":\"iqn.2026-11.io.s3tgt:a\"},"
		     "{\"name\":\"IQN.2026-11.io.s3tgt:A\"}]}",
		     "targets[1].name");
	expect_error("{\"targets\":[{\"name\":\"iqn.2026-11.io.s3tgt:a\",\"luns\":[{\"lun\":16384,"
		     "\"uri\":\"ram:?size=1M\"}]}]}",
		     "targets[0].luns[0].lun");
	expect_error("{\"targets\":[{\"name\":\"iqn.2026-11.io.s3tgt:a\",\"luns\":[{\"lun\":-1,"
		     "\"uri\":\"ram:?size=1M\"}]}]}",
		     "targets[0].luns[0].lun");
	expect_error("{\"targets\":[{\"name\":\"iqn.2026-11.io.s3tgt:a\",\"luns\":[{\"lun\":0,"
		     "\"uri\":\"bogus:?size=1M\"}]}]}",
		     "targets[0].luns[0].uri");
	expect_error("{\"targets\":[{\"name\":\"iqn.2026-11.io.s3tgt:a\",\"luns\":[{\"lun\":0,"
		     "\"uri\":\"ram:?size=1M&colour=red\"}]}]}",
		     "colour");
	expect_error("{\"targets\":[{\"name\":\"iqn.2026-11.io.s3tgt:a\",\"luns\":[{\"lun\":0,"
		     "\"uri\":\"ram:?size=1M\"},{\"lun\":0,\"uri\":\"ram:?size=1M\"}]}]}",
		     "targets[0].luns[1].lun");
	expect_error("{\"targets\":[{\"name\":\"iqn.2026-11.io.s3tgt:a\",\"acl\":{\"initiators\":"
		     "[\"bad name\"]}}]}",
		     "targets[0].acl.initiators[0]");
	expect_error("{\"targets\":[{\"name\":\"iqn.2026-11.io.s3tgt:a\",\"acl\":{\"networks\":"
		     "[\"10.0.0.1/8\"]}}]}",
		     "targets[0].acl.networks[0]");
	expect_error("{\"targets\":[{\"name\":\"iqn.2026-11.io.s3tgt:a\",\"chap\":{\"user\":\"u\","
		     "\"secret\":\"short\"}}]}",
		     "targets[0].chap.secret");
	expect_error("{\"targets\":[{\"name\":\"iqn.2026-11.io.s3tgt:a\",\"chap\":{\"user\":\"u\","
		     "\"secret\":\"secretsecret1\",\"mutual_user\":\"t\"}}]}",
		     "targets[0].chap.mutual_secret");
	expect_error("{\"targets\":[{\"name\":\"iqn.2026-11.io.s3tgt:a\",\"chap\":{\"secret\":"
		     "\"secretsecret1\"}}]}",
		     "targets[0].chap.user");
	expect_error("{\"targets\":[1]}", "targets[0]");
	expect_error("{\"nop_interval\":3601}", "nop_interval");
	expect_error("{\"nop_interval\":-1}", "nop_interval");
	expect_error("{\"nop_timeout\":\"30\"}", "nop_timeout");
	expect_error("{\"nop_timeout\":1.5}", "nop_timeout");
	expect_error("{\"a\":1,\"a\":2}", "line");
}

static void test_secret_not_in_errors(void **state)
{
	const char *t = "{\"targets\":[{\"name\":\"iqn.2026-11.io.s3tgt:a\",\"chap\":{\"user\":"
			"\"u\",\"secret\":\"tooshort99\"}}]}";
	struct mgmt_config cfg;
	char err[512] = "";

	assert_int_equal(mgmt_config_parse(t, strlen(t), &cfg, err, sizeof(err)), -EINVAL);
	assert_null(strstr(err, "tooshort99"));
}

static void test_save_load(void **state)
{
	char dir[] = "/tmp/s3tgt-test-config-XXXXXX", path[256], tmp[300];
	struct mgmt_config a, b;
	char err[512] = "";
	struct stat sb;
	bool missing;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s3tgtd.json", dir);
	assert_int_equal(mgmt_config_load(path, &a, &missing, err, sizeof(err)), 0);
	assert_true(missing);
	assert_int_equal(a.ntargets, 0);
	assert_int_equal(mgmt_config_parse(k_full, strlen(k_full), &a, err, sizeof(err)), 0);
	/* a leftover temp file with a wide mode must not leak its mode */
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(chmod(tmp, 0644), 0);
	assert_int_equal(mgmt_config_save(path, &a, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(access(tmp, F_OK), -1);
	assert_int_equal(mgmt_config_load(path, &b, &missing, err, sizeof(err)), 0);
	assert_false(missing);
	assert_int_equal(b.ntargets, 2);
	assert_string_equal(b.targets[0].chap.secret, "secretsecret1");
	json_t *ja = mgmt_config_to_json(&a), *jb = mgmt_config_to_json(&b);
	assert_true(json_equal(ja, jb));
	json_decref(ja);
	json_decref(jb);
	mgmt_config_fini(&a);
	mgmt_config_fini(&b);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_full),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_validation),
		cmocka_unit_test(test_secret_not_in_errors),
		cmocka_unit_test(test_save_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
