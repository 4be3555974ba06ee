#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "uri.h"

/* Parses s, expecting success; the caller frees u. */
static void parse_ok(const char *s, struct p11_uri *u)
{
	err_clear();
	assert_int_equal(p11_uri_parse(s, u), P11S_OK);
	assert_string_equal(err_msg(), "");
}

/* Parses s, expecting P11S_E_USAGE with a message holding want (if any). */
static void parse_bad(const char *s, const char *want)
{
	struct p11_uri u;

	err_clear();
	assert_int_equal(p11_uri_parse(s, &u), P11S_E_USAGE);
	assert_true(err_msg()[0] != '\0');
	if (want != NULL && strstr(err_msg(), want) == NULL)
		fail_msg("message '%s' lacks '%s'", err_msg(), want);
	/* nothing left behind to free */
	assert_null(u.token);
	assert_null(u.object);
	assert_null(u.id);
	assert_null(u.pin_value);
	assert_null(u.pin_source);
	assert_int_equal(u.id_len, 0);
}

static void test_plain(void **state)
{
	struct p11_uri u;

	(void)state;
	parse_ok("pkcs11:token=p11scep-test;object=key1;type=private"
		 "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234", &u);
	assert_string_equal(u.token, "p11scep-test");
	assert_string_equal(u.object, "key1");
	assert_string_equal(u.type, "private");
	assert_string_equal(u.module_path, "/usr/lib/softhsm/libsofthsm2.so");
	assert_string_equal(u.pin_value, "1234");
	assert_null(u.serial);
	assert_null(u.manufacturer);
	assert_null(u.model);
	assert_null(u.id);
	assert_int_equal(u.id_len, 0);
	assert_null(u.module_name);
	assert_null(u.pin_source);
	p11_uri_free(&u);
	/* free leaves a zeroed struct: a second free is harmless */
	assert_null(u.token);
	assert_null(u.pin_value);
	p11_uri_free(&u);
	p11_uri_free(NULL);
}

static void test_all_path_attrs(void **state)
{
	struct p11_uri u;

	(void)state;
	parse_ok("pkcs11:manufacturer=SoftHSM%20project;model=SoftHSM%20v2;"
		 "serial=d1cb75255bad1a40;token=t", &u);
	assert_string_equal(u.manufacturer, "SoftHSM project");
	assert_string_equal(u.model, "SoftHSM v2");
	assert_string_equal(u.serial, "d1cb75255bad1a40");
	assert_string_equal(u.token, "t");
	p11_uri_free(&u);
}

static void test_percent_labels(void **state)
{
	struct p11_uri u;

	(void)state;
	parse_ok("pkcs11:token=My%20Token%3b%3Bx;object=a%3Bb%20c%25d%3d%3F", &u);
	assert_string_equal(u.token, "My Token;;x");
	assert_string_equal(u.object, "a;b c%d=?");
	p11_uri_free(&u);

	/* UTF-8 bytes and a literal '=' inside a value */
	parse_ok("pkcs11:object=K%C3%A4se=1", &u);
	assert_string_equal(u.object, "K\xc3\xa4se=1");
	p11_uri_free(&u);
}

static void test_id_bytes(void **state)
{
	struct p11_uri u;
	static const unsigned char want[] = { 0x01, 0x02, 0xab, 0xff };
	static const unsigned char want0[] = { 0x00, 0x01, 'a', 'Z' };

	(void)state;
	parse_ok("pkcs11:id=%01%02%AB%ff;object=k", &u);
	assert_int_equal(u.id_len, sizeof(want));
	assert_memory_equal(u.id, want, sizeof(want));
	assert_string_equal(u.object, "k");
	p11_uri_free(&u);

	/* a NUL byte is fine in an id, and literal characters mix with escapes */
	parse_ok("pkcs11:id=%00%01aZ", &u);
	assert_int_equal(u.id_len, sizeof(want0));
	assert_memory_equal(u.id, want0, sizeof(want0));
	p11_uri_free(&u);
}

static void test_query_attrs(void **state)
{
	struct p11_uri u;

	(void)state;
	parse_ok("pkcs11:object=k?pin-source=file:/run/pin%20file&module-name=softhsm2", &u);
	assert_string_equal(u.pin_source, "file:/run/pin file");
	assert_string_equal(u.module_name, "softhsm2");
	assert_null(u.pin_value);
	p11_uri_free(&u);

	/* plain path, and a '?' inside a query value */
	parse_ok("pkcs11:token=a?pin-source=/etc/p11/pin?x&module-path=/m.so", &u);
	assert_string_equal(u.pin_source, "/etc/p11/pin?x");
	assert_string_equal(u.module_path, "/m.so");
	p11_uri_free(&u);

	/* '+' is not a space in RFC 7512 */
	parse_ok("pkcs11:token=a+b?pin-value=1+2", &u);
	assert_string_equal(u.token, "a+b");
	assert_string_equal(u.pin_value, "1+2");
	p11_uri_free(&u);
}

static void test_unknown_ignored(void **state)
{
	struct p11_uri u;

	(void)state;
	parse_ok("pkcs11:library-manufacturer=Snake%20Oil;library-version=1;slot-id=3;"
		 "slot-description=x;x-vendor=1;token=t?x-foo=bar&pin-value=9", &u);
	assert_string_equal(u.token, "t");
	assert_string_equal(u.pin_value, "9");
	p11_uri_free(&u);

	/* path attributes in the query and query attributes in the path are not ours */
	parse_ok("pkcs11:pin-value=1234;module-path=/x?token=t&object=o", &u);
	assert_null(u.pin_value);
	assert_null(u.module_path);
	assert_null(u.token);
	assert_null(u.object);
	p11_uri_free(&u);
}

static void test_lenient_forms(void **state)
{
	struct p11_uri u;

	(void)state;
	/* scheme and attribute names are case-insensitive (RFC 3986, RFC 5234) */
	parse_ok("PKCS11:Token=t;OBJECT=o?Pin-Value=1", &u);
	assert_string_equal(u.token, "t");
	assert_string_equal(u.object, "o");
	assert_string_equal(u.pin_value, "1");
	p11_uri_free(&u);

	/* empty components and an empty query */
	parse_ok("pkcs11:;token=a;;object=b;?&&", &u);
	assert_string_equal(u.token, "a");
	assert_string_equal(u.object, "b");
	p11_uri_free(&u);

	/* nothing at all: every field NULL */
	parse_ok("pkcs11:", &u);
	assert_null(u.token);
	assert_null(u.object);
	assert_null(u.id);
	p11_uri_free(&u);

	/* an empty label is a value */
	parse_ok("pkcs11:object=", &u);
	assert_string_equal(u.object, "");
	p11_uri_free(&u);
}

static void test_not_pkcs11(void **state)
{
	(void)state;
	parse_bad(NULL, "pkcs11:");
	parse_bad("", "pkcs11:");
	parse_bad("pkcs11", "pkcs11:");
	parse_bad("file:/etc/key.pem", "pkcs11:");
	parse_bad(" pkcs11:token=a", "pkcs11:");
}

static void test_duplicates(void **state)
{
	(void)state;
	parse_bad("pkcs11:token=a;object=b;token=a", "token=");
	parse_bad("pkcs11:id=%01;id=%02", "id=");
	parse_bad("pkcs11:object=a;Object=b", "object=");
	parse_bad("pkcs11:token=a?pin-value=1&pin-value=2", "pin-value=");
	parse_bad("pkcs11:?module-path=/a&module-path=/b", "module-path=");
}

static void test_bad_escapes(void **state)
{
	(void)state;
	parse_bad("pkcs11:token=a%zz", "token=");
	parse_bad("pkcs11:token=a%4", "token=");
	parse_bad("pkcs11:token=a%", "token=");
	parse_bad("pkcs11:object=%4g;token=a", "object=");
	parse_bad("pkcs11:object=%g4", "object=");
	parse_bad("pkcs11:id=%0", "id=");
	parse_bad("pkcs11:token=a;id=%01%0x", "id=");
	parse_bad("pkcs11:token=a?pin-source=%%41", "pin-source=");
	/* a '%' at the very end of a heap string: no read past it (ASan) */
	char *tail = strdup("pkcs11:token=a%");
	assert_non_null(tail);
	parse_bad(tail, "token=");
	free(tail);
	/* a bad escape in a later attribute frees the earlier ones (valgrind) */
	parse_bad("pkcs11:token=a;object=b;serial=%;model=m?pin-value=1", "serial=");
}

static void test_other_errors(void **state)
{
	(void)state;
	parse_bad("pkcs11:token", "=");
	parse_bad("pkcs11:token=a;object", "=");
	parse_bad("pkcs11:token=a?pin-value", "=");
	parse_bad("pkcs11:object=a%00b", "object=");
	parse_bad("pkcs11:token=a?pin-value=12%0034", "pin-value=");
	parse_bad("pkcs11:id=", "id=");
}

static void test_pin_never_in_message(void **state)
{
	(void)state;
	parse_bad("pkcs11:token=a?pin-value=s3cr3t%zz", "pin-value=");
	assert_null(strstr(err_msg(), "s3cr3t"));
	parse_bad("pkcs11:token=a?pin-value=s3cr3t&pin-value=s3cr3t", "pin-value=");
	assert_null(strstr(err_msg(), "s3cr3t"));
	parse_bad("pkcs11:token=a?pin-value:s3cr3t", NULL);
	assert_null(strstr(err_msg(), "s3cr3t"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_all_path_attrs),
		cmocka_unit_test(test_percent_labels),
		cmocka_unit_test(test_id_bytes),
		cmocka_unit_test(test_query_attrs),
		cmocka_unit_test(test_unknown_ignored),
		cmocka_unit_test(test_lenient_forms),
		cmocka_unit_test(test_not_pkcs11),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_bad_escapes),
		cmocka_unit_test(test_other_errors),
		cmocka_unit_test(test_pin_never_in_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
