/*
 * test_creds.c - the AWS credential chain: INI and JSON parsers, expiry,
 * and the order env -> shared credentials file -> config file. Never talks
 * to 169.254.x: every test runs with AWS_EC2_METADATA_DISABLED=true and
 * without the container variables, HOME pointing at a scratch directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "s3/creds.c"

static char g_home[256];

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
	char path[512];

	(void)state;
	(void)snprintf(g_home, sizeof(g_home), "/tmp/s3tgt-test-creds-XXXXXX");
	if (!mkdtemp(g_home)) {
		return -1;
	}
	(void)snprintf(path, sizeof(path), "%s/.aws", g_home);
	if (mkdir(path, 0700) != 0) {
		return -1;
	}
	setenv("HOME", g_home, 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	unsetenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	unsetenv("AWS_CONFIG_FILE");
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	return 0;
}

static int teardown(void **state)
{
	char path[512];

	(void)state;
	(void)snprintf(path, sizeof(path), "%s/.aws/credentials", g_home);
	unlink(path);
	(void)snprintf(path, sizeof(path), "%s/.aws/config", g_home);
	unlink(path);
	(void)snprintf(path, sizeof(path), "%s/.aws", g_home);
	rmdir(path);
	rmdir(g_home);
	return 0;
}

static void test_ini(void **state)
{
	const char *text = "# comment\n"
			   "[default]\n"
			   "aws_access_key_id = AKIADEFAULT\r\n"
			   "  aws_secret_access_key=sec ret  \n"
			   "; another comment\n"
			   "[ other ]\n"
			   "aws_access_key_id=AKIAOTHER\n"
			   "[profile x]\n"
			   "region = eu-west-1";
	char v[64];

	(void)state;
	assert_int_equal(s3_ini_get(text, "default", "aws_access_key_id", v, sizeof(v)), 0);
	assert_string_equal(v, "AKIADEFAULT");
	assert_int_equal(s3_ini_get(text, "default", "aws_secret_access_key", v, sizeof(v)), 0);
	assert_string_equal(v, "sec ret");
	assert_int_equal(s3_ini_get(text, "other", "aws_access_key_id", v, sizeof(v)), 0);
	assert_string_equal(v, "AKIAOTHER");
	assert_int_equal(s3_ini_get(text, "other", "aws_secret_access_key", v, sizeof(v)), -ENOENT);
	assert_int_equal(s3_ini_get(text, "profile x", "region", v, sizeof(v)), 0);
	assert_string_equal(v, "eu-west-1");
	assert_int_equal(s3_ini_get(text, "nope", "region", v, sizeof(v)), -ENOENT);
	assert_int_equal(s3_ini_get(text, "default", "aws_access_key_id", v, 4), -ENAMETOOLONG);
	assert_int_equal(s3_ini_get("", "default", "x", v, sizeof(v)), -ENOENT);
	assert_int_equal(s3_ini_get("[default", "default", "x", v, sizeof(v)), -ENOENT);
}

static void test_json(void **state)
{
	const char *doc = "{\"Code\":\"Success\",\"LastUpdated\":\"2024-05-01T11:00:00Z\","
			  "\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"ASIAEXAMPLE\","
			  "\"SecretAccessKey\":\"secretX\",\"Token\":\"tok==\","
			  "\"Expiration\":\"2024-05-01T17:00:00Z\"}";
	struct s3_creds c;

	(void)state;
	assert_int_equal(s3_creds_parse_json(doc, strlen(doc), &c), 0);
	assert_string_equal(c.access_key, "ASIAEXAMPLE");
	assert_string_equal(c.secret_key, "secretX");
	assert_string_equal(c.token, "tok==");
	assert_int_equal(c.expiration, 1714582800);
	/* Container documents have no Code. */
	doc = "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"Token\":\"T\","
	      "\"Expiration\":\"2024-05-01T17:00:00.123+01:00\"}";
	assert_int_equal(s3_creds_parse_json(doc, strlen(doc), &c), 0);
	assert_int_equal(c.expiration, 1714582800 - 3600);
	doc = "{\"Code\":\"Failure\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\"}";
	assert_int_equal(s3_creds_parse_json(doc, strlen(doc), &c), -EINVAL);
	doc = "{\"AccessKeyId\":\"A\"}";
	assert_int_equal(s3_creds_parse_json(doc, strlen(doc), &c), -EINVAL);
	doc = "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"Expiration\":\"soon\"}";
	assert_int_equal(s3_creds_parse_json(doc, strlen(doc), &c), -EINVAL);
	assert_int_equal(s3_creds_parse_json("[1,2", 4, &c), -EINVAL);
	assert_string_equal(c.secret_key, "");
}

static void test_expiry(void **state)
{
	struct s3_creds c = { .expiration = 10000 };
	time_t t;

	(void)state;
	assert_false(s3_creds_need_refresh(&c, 10000 - 301));
	assert_true(s3_creds_need_refresh(&c, 10000 - 300));
	assert_true(s3_creds_need_refresh(&c, 20000));
	c.expiration = 0;
	assert_false(s3_creds_need_refresh(&c, 20000));
	assert_int_equal(s3_parse_iso8601("1970-01-01T00:01:00Z", &t), 0);
	assert_int_equal(t, 60);
	assert_int_equal(s3_parse_iso8601("1970-01-01T00:01:00", &t), -EINVAL);
	assert_int_equal(s3_parse_iso8601("1970-01-01T00:01:00Zjunk", &t), -EINVAL);
}

static void test_chain_env_first(void **state)
{
	struct s3_creds c;
	char err[256] = "", path[512];

	(void)state;
	(void)snprintf(path, sizeof(path), "%s/.aws/credentials", g_home);
	write_text(path, "[default]\naws_access_key_id=FILEKEY\naws_secret_access_key=FILESEC\n");
	setenv("AWS_ACCESS_KEY_ID", "ENVKEY", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "ENVSEC", 1);
	setenv("AWS_SESSION_TOKEN", "ENVTOK", 1);
	assert_int_equal(s3_creds_resolve(&c, err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "ENVKEY");
	assert_string_equal(c.token, "ENVTOK");
	assert_string_equal(c.source, "environment");
	assert_int_equal(c.expiration, 0);
	/* Half-configured environment is an error, not a fall-through. */
	unsetenv("AWS_SECRET_ACCESS_KEY");
	assert_int_equal(s3_creds_resolve(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "AWS_SECRET_ACCESS_KEY"));
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SESSION_TOKEN");
	/* Then the shared credentials file, default profile. */
	assert_int_equal(s3_creds_resolve(&c, err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "FILEKEY");
	assert_string_equal(c.secret_key, "FILESEC");
	assert_string_equal(c.token, "");
	assert_string_equal(c.source, "profile default");
	unlink(path);
}

static void test_chain_profiles(void **state)
{
	struct s3_creds c;
	char err[256] = "", cred[512], conf[512];

	(void)state;
	(void)snprintf(cred, sizeof(cred), "%s/creds-alt", g_home);
	(void)snprintf(conf, sizeof(conf), "%s/.aws/config", g_home);
	write_text(cred, "[prod]\naws_access_key_id=PRODKEY\naws_secret_access_key=PRODSEC\n"
			 "aws_session_token=PRODTOK\n[half]\naws_access_key_id=X\n");
	write_text(conf, "[default]\naws_access_key_id=CFGDEF\naws_secret_access_key=S1\n"
			 "[profile dev]\naws_access_key_id=DEVKEY\naws_secret_access_key=DEVSEC\n");
	setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
	setenv("AWS_PROFILE", "prod", 1);
	assert_int_equal(s3_creds_resolve(&c, err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "PRODKEY");
	assert_string_equal(c.token, "PRODTOK");
	/* Not in the credentials file: the config file's [profile dev]. */
	setenv("AWS_PROFILE", "dev", 1);
	assert_int_equal(s3_creds_resolve(&c, err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "DEVKEY");
	assert_string_equal(c.source, "profile dev");
	/* Config file [default] when no profile is chosen. */
	unsetenv("AWS_PROFILE");
	assert_int_equal(s3_creds_resolve(&c, err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "CFGDEF");
	/* A profile with only one key is an error naming the file. */
	setenv("AWS_PROFILE", "half", 1);
	assert_int_equal(s3_creds_resolve(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "[half]"));
	/* A chosen profile that exists nowhere is an error too. */
	setenv("AWS_PROFILE", "missing", 1);
	assert_int_equal(s3_creds_resolve(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "missing"));
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	unlink(cred);
	unlink(conf);
}

static void test_chain_nothing(void **state)
{
	struct s3_creds c;
	char err[256] = "";

	(void)state;
	/* IMDS disabled, no container, no files: nothing, and no network. */
	assert_int_equal(s3_creds_resolve(&c, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "no AWS credentials"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ini),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_chain_env_first),
		cmocka_unit_test(test_chain_profiles),
		cmocka_unit_test(test_chain_nothing),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
