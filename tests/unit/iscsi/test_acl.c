/*
 * test_acl.c - iSCSI name syntax (RFC 3720 3.2.6.3) and per-target access
 * lists: case-insensitive names, IPv4/IPv6 CIDR networks, empty = open.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "acl.c"

static struct sockaddr_storage addr(const char *ip)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
	} else {
		assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
		sin6->sin6_family = AF_INET6;
	}
	return ss;
}

static bool allows(const struct iscsi_acl *a, const char *name, const char *ip)
{
	struct sockaddr_storage ss;

	if (!ip) {
		return iscsi_acl_allows(a, name, NULL);
	}
	ss = addr(ip);
	return iscsi_acl_allows(a, name, (const struct sockaddr *)&ss);
}

static void test_names(void **state)
{
	char longname[300];

	assert_true(iscsi_name_is_valid("iqn.2026-11.io.s3tgt:disk1"));
	assert_true(iscsi_name_is_valid("iqn.1993-08.org.debian:01:abcdef"));
	assert_true(iscsi_name_is_valid("iqn.2001-04.com.example"));
	assert_true(iscsi_name_is_valid("IQN.2001-04.COM.Example:Storage"));
	assert_true(iscsi_name_is_valid("eui.02004567A425678D"));
	assert_true(iscsi_name_is_valid("naa.52004567BA64678D"));
	assert_true(iscsi_name_is_valid("naa.62004567BA64678D0123456789ABCDEF"));
	assert_false(iscsi_name_is_valid(""));
	assert_false(iscsi_name_is_valid("iqn.2026-13.io.s3tgt:x"));
	assert_false(iscsi_name_is_valid("iqn.26-11.io.s3tgt"));
	assert_false(iscsi_name_is_valid("iqn.2026-11."));
	assert_false(iscsi_name_is_valid("iqn.2026-11.:x"));
	assert_false(iscsi_name_is_valid("iqn.2026-11.io..s3tgt"));
	assert_false(iscsi_name_is_valid("iqn.2026-11.io.s3tgt:has space"));
	assert_false(iscsi_name_is_valid("iqn.2026-11.io.s3tgt:under_score"));
	assert_false(iscsi_name_is_valid("eui.0200"));
	assert_false(iscsi_name_is_valid("naa.52004567BA64678Z"));
	assert_false(iscsi_name_is_valid("target1"));
	memset(longname, 'a', sizeof(longname));
	memcpy(longname, "iqn.2026-11.io.s3tgt:", 21);
	longname[224] = '\0';
	assert_false(iscsi_name_is_valid(longname)); /* 224 > 223 */
	longname[223] = '\0';
	assert_true(iscsi_name_is_valid(longname));
}

static void test_open_acl(void **state)
{
	struct iscsi_acl *a;

	assert_true(iscsi_acl_allows(NULL, "iqn.2026-11.io.s3tgt:x", NULL));
	assert_int_equal(iscsi_acl_create(&a), 0);
	assert_true(iscsi_acl_is_open(a));
	assert_true(allows(a, "iqn.2026-11.io.s3tgt:x", "10.0.0.1"));
	iscsi_acl_destroy(a);
	iscsi_acl_destroy(NULL);
}

static void test_initiator_names(void **state)
{
	struct iscsi_acl *a, *b;
	const char *const *names;

	assert_int_equal(iscsi_acl_create(&a), 0);
	assert_int_equal(iscsi_acl_add_initiator(a, "iqn.2026-11.io.s3tgt:init1"), 0);
	assert_int_equal(iscsi_acl_add_initiator(a, "IQN.2026-11.IO.S3TGT:INIT1"), -EEXIST);
	assert_int_equal(iscsi_acl_add_initiator(a, "not a name"), -EINVAL);
	assert_int_equal(iscsi_acl_add_initiator(a, "iqn.2026-11.io.s3tgt:init2"), 0);
	assert_false(iscsi_acl_is_open(a));
	assert_true(allows(a, "iqn.2026-11.io.s3tgt:init1", "127.0.0.1"));
	assert_true(allows(a, "iqn.2026-11.io.S3TGT:Init2", NULL));
	assert_false(allows(a, "iqn.2026-11.io.s3tgt:init3", "127.0.0.1"));
	assert_false(iscsi_acl_allows(a, NULL, NULL));
	assert_int_equal(iscsi_acl_initiators(a, &names), 2);
	assert_string_equal(names[1], "iqn.2026-11.io.s3tgt:init2");

	assert_int_equal(iscsi_acl_copy(a, &b), 0);
	assert_int_equal(iscsi_acl_remove_initiator(a, "iqn.2026-11.io.s3tgt:INIT1"), 0);
	assert_int_equal(iscsi_acl_remove_initiator(a, "iqn.2026-11.io.s3tgt:init1"), -ENOENT);
	assert_int_equal(iscsi_acl_initiators(a, &names), 1);
	assert_string_equal(names[0], "iqn.2026-11.io.s3tgt:init2");
	assert_int_equal(iscsi_acl_initiators(b, &names), 2);
	assert_true(allows(b, "iqn.2026-11.io.s3tgt:init1", NULL));
	iscsi_acl_destroy(b);
	assert_int_equal(iscsi_acl_remove_initiator(a, "iqn.2026-11.io.s3tgt:init2"), 0);
	assert_true(iscsi_acl_is_open(a));
	iscsi_acl_destroy(a);
}

static void test_networks(void **state)
{
	struct iscsi_acl *a;
	const char *const *nets;

	assert_int_equal(iscsi_acl_create(&a), 0);
	assert_int_equal(iscsi_acl_add_network(a, "10.1.0.0/16"), 0);
	assert_int_equal(iscsi_acl_add_network(a, "10.1.0.0/16"), -EEXIST);
	assert_int_equal(iscsi_acl_add_network(a, "10.1.2.3/16"), -EINVAL); /* host bits */
	assert_int_equal(iscsi_acl_add_network(a, "10.1.0.0/33"), -EINVAL);
	assert_int_equal(iscsi_acl_add_network(a, "10.1.0.0/"), -EINVAL);
	assert_int_equal(iscsi_acl_add_network(a, "host.example"), -EINVAL);
	assert_int_equal(iscsi_acl_add_network(a, "192.0.2.7"), 0);
	assert_int_equal(iscsi_acl_add_network(a, "fd00:0::/8"), 0);
	assert_int_equal(iscsi_acl_networks(a, &nets), 3);
	assert_string_equal(nets[0], "10.1.0.0/16");
	assert_string_equal(nets[1], "192.0.2.7/32");
	assert_string_equal(nets[2], "fd00::/8");

	assert_true(allows(a, "iqn.2026-11.io.s3tgt:any", "10.1.255.3"));
	assert_false(allows(a, "iqn.2026-11.io.s3tgt:any", "10.2.0.1"));
	assert_true(allows(a, "iqn.2026-11.io.s3tgt:any", "192.0.2.7"));
	assert_false(allows(a, "iqn.2026-11.io.s3tgt:any", "192.0.2.8"));
	assert_true(allows(a, "iqn.2026-11.io.s3tgt:any", "fdab::1"));
	assert_false(allows(a, "iqn.2026-11.io.s3tgt:any", "fe80::1"));
	assert_true(allows(a, "iqn.2026-11.io.s3tgt:any", "::ffff:10.1.0.9")); /* v4-mapped */
	assert_false(allows(a, "iqn.2026-11.io.s3tgt:any", NULL));

	/* names and networks both apply */
	assert_int_equal(iscsi_acl_add_initiator(a, "iqn.2026-11.io.s3tgt:init1"), 0);
	assert_true(allows(a, "iqn.2026-11.io.s3tgt:init1", "10.1.0.1"));
	assert_false(allows(a, "iqn.2026-11.io.s3tgt:init2", "10.1.0.1"));
	assert_false(allows(a, "iqn.2026-11.io.s3tgt:init1", "127.0.0.1"));

	assert_int_equal(iscsi_acl_remove_network(a, "192.0.2.7/32"), 0);
	assert_int_equal(iscsi_acl_remove_network(a, "fd00::0/8"), 0);
	assert_int_equal(iscsi_acl_remove_network(a, "fd00::/8"), -ENOENT);
	assert_int_equal(iscsi_acl_remove_network(a, "junk"), -EINVAL);
	assert_int_equal(iscsi_acl_networks(a, &nets), 1);
	assert_int_equal(iscsi_acl_add_network(a, "0.0.0.0/0"), 0);
	assert_true(allows(a, "iqn.2026-11.io.s3tgt:init1", "127.0.0.1"));
	iscsi_acl_destroy(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_open_acl),
		cmocka_unit_test(test_initiator_names),
		cmocka_unit_test(test_networks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
