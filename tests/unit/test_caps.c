#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "caps.h"

/* micromdm scepserver 2.1.0's GetCACaps body, byte for byte (no final newline). */
static const char micromdm_caps[] =
	"Renewal\nSHA-1\nSHA-256\nAES\nDES3\nSCEPStandard\nPOSTPKIOperation";

static struct scep_caps parse_str(const char *s)
{
	struct scep_caps c;

	assert_int_equal(caps_parse(s, strlen(s), &c), P11S_OK);
	return c;
}

static int setup(void **state)
{
	(void)state;
	err_clear();
	return 0;
}

static void test_micromdm(void **state)
{
	struct scep_caps c = parse_str(micromdm_caps);
	struct scep_algs a;
	unsigned int want = CAP_RENEWAL | CAP_SHA1 | CAP_SHA256 | CAP_AES | CAP_DES3 |
	    CAP_SCEPSTANDARD | CAP_POST;
	char buf[256];

	(void)state;
	assert_int_equal(c.raw, want);
	assert_int_equal(c.bits, want);
	assert_int_equal(caps_choose(&c, CIPHER_AUTO, DIGEST_AUTO, &a), P11S_OK);
	assert_int_equal(a.cipher, CIPHER_AES128);
	assert_int_equal(a.digest, DIGEST_SHA256);
	assert_true(a.use_post);
	caps_format(c.raw, buf, sizeof(buf));
	assert_string_equal(buf, "AES DES3 SHA-1 SHA-256 POSTPKIOperation Renewal SCEPStandard");
}

static void test_ndes_crlf(void **state)
{
	struct scep_caps c = parse_str(
	    "POSTPKIOperation\r\nRenewal\r\nSHA-512\r\nSHA-256\r\nSHA-1\r\nDES3\r\n");
	struct scep_algs a;

	(void)state;
	assert_int_equal(c.raw, CAP_POST | CAP_RENEWAL | CAP_SHA512 | CAP_SHA256 |
	    CAP_SHA1 | CAP_DES3);
	assert_int_equal(c.bits, c.raw);
	assert_int_equal(caps_choose(&c, CIPHER_AUTO, DIGEST_AUTO, &a), P11S_OK);
	assert_int_equal(a.cipher, CIPHER_DES3);
	assert_int_equal(a.digest, DIGEST_SHA512);
	assert_true(a.use_post);
}

static void test_mixed_case_and_spaces(void **state)
{
	struct scep_caps c = parse_str("  aes sha-256\tPostPkiOperation\n\ngetnextcacert "
	    "sha-224 SHA-384 update\r\n");

	(void)state;
	assert_int_equal(c.raw, CAP_AES | CAP_SHA256 | CAP_POST | CAP_GETNEXTCACERT |
	    CAP_SHA224 | CAP_SHA384 | CAP_UPDATE);
	assert_int_equal(c.bits, c.raw);
}

static void test_unknown_words(void **state)
{
	/* Near misses must not count: only whole words match. */
	struct scep_caps c = parse_str("Foo\nAESAES\nSHA-256x\nxSHA-1\nDES\nMD5\n"
	    "SHA-2\nSCEP\nSHA-512\nBar-Baz");

	(void)state;
	assert_int_equal(c.raw, CAP_SHA512);
	assert_int_equal(c.bits, CAP_SHA512);
}

static void test_embedded_nul(void **state)
{
	static const char body[] = "AES\0DES3\0\0SHA-1";
	struct scep_caps c;

	(void)state;
	assert_int_equal(caps_parse(body, sizeof(body) - 1, &c), P11S_OK);
	assert_int_equal(c.raw, CAP_AES | CAP_DES3 | CAP_SHA1);
}

static void test_length_is_respected(void **state)
{
	struct scep_caps c;

	(void)state;
	/* Only "AES" is inside len: "DES3" past it must not be read. */
	assert_int_equal(caps_parse("AES\nDES3", 3, &c), P11S_OK);
	assert_int_equal(c.raw, CAP_AES);
	assert_int_equal(caps_parse("AES\nDES3", 2, &c), P11S_OK);
	assert_int_equal(c.raw, 0);
}

static void test_scepstandard_implies(void **state)
{
	struct scep_caps c = parse_str("SCEPStandard");
	struct scep_algs a;

	(void)state;
	assert_int_equal(c.raw, CAP_SCEPSTANDARD);
	assert_int_equal(c.bits, CAP_SCEPSTANDARD | CAP_AES | CAP_SHA256 | CAP_POST);
	assert_int_equal(caps_choose(&c, CIPHER_AUTO, DIGEST_AUTO, &a), P11S_OK);
	assert_int_equal(a.cipher, CIPHER_AES128);
	assert_int_equal(a.digest, DIGEST_SHA256);
	assert_true(a.use_post);
}

static void test_empty(void **state)
{
	struct scep_caps c;
	struct scep_algs a;

	(void)state;
	assert_int_equal(caps_parse(NULL, 0, &c), P11S_OK);
	assert_int_equal(c.bits, 0);
	c = parse_str("");
	assert_int_equal(c.bits, 0);
	c = parse_str(" \r\n\r\n ");
	assert_int_equal(c.bits, 0);
	assert_int_equal(caps_choose(&c, CIPHER_AUTO, DIGEST_AUTO, &a), P11S_OK);
	assert_int_equal(a.cipher, CIPHER_DES3);
	assert_int_equal(a.digest, DIGEST_SHA1);
	assert_false(a.use_post);
	/* Silence does not contradict an explicit choice. */
	assert_int_equal(caps_choose(&c, CIPHER_AES256, DIGEST_SHA256, &a), P11S_OK);
	assert_int_equal(a.cipher, CIPHER_AES256);
	assert_int_equal(a.digest, DIGEST_SHA256);
	assert_false(a.use_post);
}

static void test_absurd_size(void **state)
{
	static char big[70000];
	struct scep_caps c;

	(void)state;
	memset(big, 'A', sizeof(big));
	assert_int_equal(caps_parse(big, sizeof(big), &c), P11S_E_MALFORMED);
	assert_int_equal(c.bits, 0);
	assert_non_null(strstr(err_msg(), "70000 bytes"));
}

static void test_post_only_when_named(void **state)
{
	struct scep_caps c = parse_str("AES\nSHA-256");
	struct scep_algs a;

	(void)state;
	assert_int_equal(caps_choose(&c, CIPHER_AUTO, DIGEST_AUTO, &a), P11S_OK);
	assert_false(a.use_post);
}

static void test_user_choices(void **state)
{
	struct scep_caps c = parse_str(micromdm_caps);
	struct scep_algs a;

	(void)state;
	assert_int_equal(caps_choose(&c, CIPHER_AES256, DIGEST_AUTO, &a), P11S_OK);
	assert_int_equal(a.cipher, CIPHER_AES256);
	assert_int_equal(a.digest, DIGEST_SHA256);
	assert_int_equal(caps_choose(&c, CIPHER_DES3, DIGEST_SHA1, &a), P11S_OK);
	assert_int_equal(a.cipher, CIPHER_DES3);
	assert_int_equal(a.digest, DIGEST_SHA1);
	assert_int_equal(caps_choose(&c, CIPHER_AES128, DIGEST_SHA256, &a), P11S_OK);
	assert_int_equal(a.cipher, CIPHER_AES128);
}

static void test_refuse_cipher(void **state)
{
	struct scep_caps c = parse_str("AES\nSHA-256\nPOSTPKIOperation");
	struct scep_algs a;

	(void)state;
	assert_int_equal(caps_choose(&c, CIPHER_DES3, DIGEST_AUTO, &a), P11S_E_USAGE);
	assert_string_equal(err_msg(), "server does not advertise DES3 "
	    "(caps: AES SHA-256 POSTPKIOperation): choose --cipher aes");
	assert_int_equal(a.cipher, CIPHER_AUTO);
}

static void test_refuse_aes(void **state)
{
	struct scep_caps c = parse_str("DES3\nSHA-1");
	struct scep_algs a;

	(void)state;
	assert_int_equal(caps_choose(&c, CIPHER_AES256, DIGEST_AUTO, &a), P11S_E_USAGE);
	assert_string_equal(err_msg(), "server does not advertise AES "
	    "(caps: DES3 SHA-1): choose --cipher des3");
}

static void test_refuse_digest(void **state)
{
	struct scep_caps c = parse_str(micromdm_caps);
	struct scep_algs a;

	(void)state;
	assert_int_equal(caps_choose(&c, CIPHER_AUTO, DIGEST_SHA512, &a), P11S_E_USAGE);
	assert_non_null(strstr(err_msg(), "server does not advertise SHA-512"));
	assert_non_null(strstr(err_msg(), "choose --digest sha256"));
	err_clear();
	c = parse_str("AES\nSHA-256");
	assert_int_equal(caps_choose(&c, CIPHER_AUTO, DIGEST_SHA1, &a), P11S_E_USAGE);
	assert_non_null(strstr(err_msg(), "SHA-1"));
}

static void test_one_dimension_silent(void **state)
{
	/* Digests named, ciphers not: the cipher falls back, digests are checked. */
	struct scep_caps c = parse_str("SHA-256\nPOSTPKIOperation");
	struct scep_algs a;

	(void)state;
	assert_int_equal(caps_choose(&c, CIPHER_AUTO, DIGEST_AUTO, &a), P11S_OK);
	assert_int_equal(a.cipher, CIPHER_DES3);
	assert_int_equal(a.digest, DIGEST_SHA256);
	assert_int_equal(caps_choose(&c, CIPHER_AES128, DIGEST_AUTO, &a), P11S_OK);
	assert_int_equal(a.cipher, CIPHER_AES128);
	assert_int_equal(caps_choose(&c, CIPHER_AUTO, DIGEST_SHA1, &a), P11S_E_USAGE);
}

static void test_format_truncates(void **state)
{
	char buf[8];

	(void)state;
	memset(buf, 'x', sizeof(buf));
	caps_format(CAP_AES | CAP_DES3 | CAP_SHA256, buf, sizeof(buf));
	assert_string_equal(buf, "AES");	/* "AES DES3" does not fit in 8 */
	caps_format(0, buf, sizeof(buf));
	assert_string_equal(buf, "");
	caps_format(CAP_AES, buf, 0);		/* must not write */
}

static void test_names(void **state)
{
	enum scep_cipher c;
	enum scep_digest d;

	(void)state;
	assert_int_equal(cipher_from_name("aes", &c), P11S_OK);
	assert_int_equal(c, CIPHER_AES128);
	assert_int_equal(cipher_from_name("AES256", &c), P11S_OK);
	assert_int_equal(c, CIPHER_AES256);
	assert_int_equal(cipher_from_name("aes128", &c), P11S_OK);
	assert_int_equal(c, CIPHER_AES128);
	assert_int_equal(cipher_from_name("des3", &c), P11S_OK);
	assert_int_equal(c, CIPHER_DES3);
	assert_int_equal(cipher_from_name("des", &c), P11S_E_USAGE);
	assert_non_null(strstr(err_msg(), "'des'"));
	err_clear();
	assert_int_equal(digest_from_name("SHA256", &d), P11S_OK);
	assert_int_equal(d, DIGEST_SHA256);
	assert_int_equal(digest_from_name("sha-512", &d), P11S_OK);
	assert_int_equal(d, DIGEST_SHA512);
	assert_int_equal(digest_from_name("sha1", &d), P11S_OK);
	assert_int_equal(d, DIGEST_SHA1);
	assert_int_equal(digest_from_name("md5", &d), P11S_E_USAGE);
	assert_non_null(strstr(err_msg(), "'md5'"));
}

static void strict_refused(const char *body, const char *missing)
{
	struct scep_caps c = parse_str(body);

	err_clear();
	assert_int_equal(caps_check_strict(&c), P11S_E_UNTRUSTED);
	if (strstr(err_msg(), missing) == NULL || strstr(err_msg(), "--strict") == NULL)
		fail_msg("message \"%s\" lacks \"%s\" or --strict", err_msg(), missing);
}

static void test_strict(void **state)
{
	struct scep_caps c;

	(void)state;
	/* micromdm and a bare SCEPStandard (its implications count) pass. */
	c = parse_str(micromdm_caps);
	assert_int_equal(caps_check_strict(&c), P11S_OK);
	c = parse_str("SCEPStandard");
	assert_int_equal(caps_check_strict(&c), P11S_OK);
	c = parse_str("scepstandard\r\nSHA-512\r\n");
	assert_int_equal(caps_check_strict(&c), P11S_OK);

	/* Everything but SCEPStandard: still a possible downgrade. */
	strict_refused("AES\nSHA-256\nSHA-512\nPOSTPKIOperation\nRenewal", "SCEPStandard");
	assert_non_null(strstr(err_msg(), "caps: AES SHA-256 SHA-512 POSTPKIOperation Renewal"));
	strict_refused("", "SCEPStandard");
	assert_non_null(strstr(err_msg(), "caps: none"));
	/* NDES: 3DES and SHA-1/256/512, no SCEPStandard. */
	strict_refused("POSTPKIOperation\r\nRenewal\r\nSHA-512\r\nSHA-256\r\nSHA-1\r\nDES3\r\n",
	    "SCEPStandard");

	/* Bits made by hand without the implications. */
	c.raw = CAP_SCEPSTANDARD | CAP_SHA256;
	c.bits = c.raw;
	err_clear();
	assert_int_equal(caps_check_strict(&c), P11S_E_UNTRUSTED);
	assert_non_null(strstr(err_msg(), "AES"));
	c.raw = CAP_SCEPSTANDARD | CAP_AES | CAP_SHA1;
	c.bits = c.raw;
	err_clear();
	assert_int_equal(caps_check_strict(&c), P11S_E_UNTRUSTED);
	assert_non_null(strstr(err_msg(), "SHA-256 or SHA-512"));
	c.bits |= CAP_SHA512;
	assert_int_equal(caps_check_strict(&c), P11S_OK);
	err_clear();
	assert_int_equal(caps_check_strict(NULL), P11S_E_INTERNAL);
}

static void test_ossl_names_exist(void **state)
{
	static const enum scep_cipher cs[] = { CIPHER_AES128, CIPHER_AES256, CIPHER_DES3 };
	static const enum scep_digest ds[] = { DIGEST_SHA256, DIGEST_SHA512, DIGEST_SHA1 };
	size_t i;

	(void)state;
	for (i = 0; i < 3; i++) {
		EVP_CIPHER *ci = EVP_CIPHER_fetch(NULL, cipher_ossl_name(cs[i]), NULL);
		EVP_MD *md = EVP_MD_fetch(NULL, digest_ossl_name(ds[i]), NULL);

		assert_non_null(ci);
		assert_non_null(md);
		EVP_CIPHER_free(ci);
		EVP_MD_free(md);
	}
	assert_string_equal(cipher_ossl_name(CIPHER_AES256), "AES-256-CBC");
	assert_null(cipher_ossl_name(CIPHER_AUTO));
	assert_null(digest_ossl_name(DIGEST_AUTO));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_micromdm, setup),
		cmocka_unit_test_setup(test_ndes_crlf, setup),
		cmocka_unit_test_setup(test_mixed_case_and_spaces, setup),
		cmocka_unit_test_setup(test_unknown_words, setup),
		cmocka_unit_test_setup(test_embedded_nul, setup),
		cmocka_unit_test_setup(test_length_is_respected, setup),
		cmocka_unit_test_setup(test_scepstandard_implies, setup),
		cmocka_unit_test_setup(test_empty, setup),
		cmocka_unit_test_setup(test_absurd_size, setup),
		cmocka_unit_test_setup(test_post_only_when_named, setup),
		cmocka_unit_test_setup(test_user_choices, setup),
		cmocka_unit_test_setup(test_refuse_cipher, setup),
		cmocka_unit_test_setup(test_refuse_aes, setup),
		cmocka_unit_test_setup(test_refuse_digest, setup),
		cmocka_unit_test_setup(test_one_dimension_silent, setup),
		cmocka_unit_test_setup(test_format_truncates, setup),
		cmocka_unit_test_setup(test_names, setup),
		cmocka_unit_test_setup(test_ossl_names_exist, setup),
		cmocka_unit_test_setup(test_strict, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
