#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "csr.h"

static EVP_PKEY *rsa_key, *other_key;

static int group_setup(void **state)
{
	(void)state;
	rsa_key = EVP_RSA_gen(2048);
	other_key = EVP_RSA_gen(2048);
	return rsa_key != NULL && other_key != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(other_key);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	err_clear();
	return 0;
}

static X509_NAME *parse_ok(const char *s)
{
	X509_NAME *n = NULL;

	if (dn_parse(s, &n) != P11S_OK)
		fail_msg("dn_parse(\"%s\"): %s", s, err_msg());
	assert_non_null(n);
	return n;
}

static void parse_bad(const char *s, const char *msg_part)
{
	X509_NAME *n = (X509_NAME *)1;

	err_clear();
	assert_int_equal(dn_parse(s, &n), P11S_E_USAGE);
	assert_null(n);
	if (msg_part != NULL && strstr(err_msg(), msg_part) == NULL)
		fail_msg("dn_parse(\"%s\"): message \"%s\" lacks \"%s\"", s, err_msg(), msg_part);
}

/* Value of entry i as UTF-8, with its nid and ASN.1 string type. */
static void entry_is(X509_NAME *n, int i, int nid, const char *value, int type)
{
	X509_NAME_ENTRY *e = X509_NAME_get_entry(n, i);
	ASN1_STRING *d;

	assert_non_null(e);
	assert_int_equal(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)), nid);
	d = X509_NAME_ENTRY_get_data(e);
	assert_int_equal(ASN1_STRING_length(d), (int)strlen(value));
	assert_memory_equal(ASN1_STRING_get0_data(d), value, strlen(value));
	if (type >= 0)
		assert_int_equal(ASN1_STRING_type(d), type);
}

static void same_der(X509_NAME *a, X509_NAME *b)
{
	unsigned char *da = NULL, *db = NULL;
	int la = i2d_X509_NAME(a, &da), lb = i2d_X509_NAME(b, &db);

	assert_true(la > 0);
	assert_int_equal(la, lb);
	assert_memory_equal(da, db, (size_t)la);
	OPENSSL_free(da);
	OPENSSL_free(db);
}

static void test_dn_both_forms(void **state)
{
	X509_NAME *a = parse_ok("CN=host.example,O=Example Org,C=US");
	X509_NAME *b = parse_ok("/C=US/O=Example Org/CN=host.example");

	(void)state;
	/* RFC 4514 lists the innermost RDN first; DER has it last. */
	assert_int_equal(X509_NAME_entry_count(a), 3);
	entry_is(a, 0, NID_countryName, "US", V_ASN1_PRINTABLESTRING);
	entry_is(a, 1, NID_organizationName, "Example Org", V_ASN1_UTF8STRING);
	entry_is(a, 2, NID_commonName, "host.example", V_ASN1_UTF8STRING);
	same_der(a, b);
	X509_NAME_free(a);
	X509_NAME_free(b);
}

static void test_dn_spaces_and_case(void **state)
{
	X509_NAME *a = parse_ok("  cn = host , o=Org ,OU = Dept A ");
	X509_NAME *b = parse_ok("commonName=host,organizationName=Org,2.5.4.11=Dept A");
	X509_NAME *c = parse_ok("  /OU=Dept A/O=Org/CN=host");

	(void)state;
	assert_int_equal(X509_NAME_entry_count(a), 3);
	entry_is(a, 0, NID_organizationalUnitName, "Dept A", -1);
	entry_is(a, 2, NID_commonName, "host", -1);
	same_der(a, b);
	same_der(a, c);
	X509_NAME_free(a);
	X509_NAME_free(b);
	X509_NAME_free(c);
}

static void test_dn_escapes(void **state)
{
	X509_NAME *a = parse_ok("CN=Smith\\, John,O=A\\\\B\\+C,L=\\ lead");
	X509_NAME *b = parse_ok("/CN=a\\/b/O=x,y+z");
	X509_NAME *c = parse_ok("CN=caf\\C3\\A9");

	(void)state;
	entry_is(a, 0, NID_localityName, " lead", -1);
	entry_is(a, 1, NID_organizationName, "A\\B+C", -1);
	entry_is(a, 2, NID_commonName, "Smith, John", -1);
	/* In the slash form ',' and '+' are ordinary characters. */
	assert_int_equal(X509_NAME_entry_count(b), 2);
	entry_is(b, 0, NID_commonName, "a/b", -1);
	entry_is(b, 1, NID_organizationName, "x,y+z", -1);
	entry_is(c, 0, NID_commonName, "caf\xc3\xa9", V_ASN1_UTF8STRING);
	X509_NAME_free(a);
	X509_NAME_free(b);
	X509_NAME_free(c);
}

static void test_dn_utf8(void **state)
{
	X509_NAME *a = parse_ok("CN=Gr\xc3\xbc\xc3\x9f" "e \xe6\x97\xa5\xe6\x9c\xac,O=\xc3\x9cnic\xc3\xb6" "de");

	(void)state;
	entry_is(a, 1, NID_commonName, "Gr\xc3\xbc\xc3\x9f" "e \xe6\x97\xa5\xe6\x9c\xac",
	    V_ASN1_UTF8STRING);
	entry_is(a, 0, NID_organizationName, "\xc3\x9cnic\xc3\xb6" "de", V_ASN1_UTF8STRING);
	X509_NAME_free(a);
	parse_bad("CN=bad\xff\xfe", "CN");
}

static void test_dn_multivalued(void **state)
{
	X509_NAME *a = parse_ok("CN=a+UID=b,O=x");

	(void)state;
	assert_int_equal(X509_NAME_entry_count(a), 3);
	entry_is(a, 0, NID_organizationName, "x", -1);
	/* Both values in the same (last) RDN. */
	assert_int_equal(X509_NAME_ENTRY_set(X509_NAME_get_entry(a, 1)),
	    X509_NAME_ENTRY_set(X509_NAME_get_entry(a, 2)));
	assert_int_not_equal(X509_NAME_ENTRY_set(X509_NAME_get_entry(a, 0)),
	    X509_NAME_ENTRY_set(X509_NAME_get_entry(a, 1)));
	X509_NAME_free(a);
}

static void test_dn_other_attrs(void **state)
{
	X509_NAME *a = parse_ok("/DC=org/DC=example/emailAddress=a@example.org/"
	    "serialNumber=1234/1.2.3.4.5=custom");

	(void)state;
	assert_int_equal(X509_NAME_entry_count(a), 5);
	entry_is(a, 0, NID_domainComponent, "org", -1);
	entry_is(a, 2, NID_pkcs9_emailAddress, "a@example.org", -1);
	entry_is(a, 3, NID_serialNumber, "1234", -1);
	X509_NAME_free(a);
}

static void test_dn_errors(void **state)
{
	(void)state;
	parse_bad("XX=1,CN=a", "'XX'");
	parse_bad("/CN=a/Bogus=b", "'Bogus'");
	parse_bad("sha256=a", "'sha256'");
	parse_bad("CN", "no '='");
	parse_bad("CN=a,foo,O=b", "'foo'");
	parse_bad("", "empty");
	parse_bad("/", "empty");
	parse_bad(NULL, "empty");
	parse_bad("CN=", "no value");
	parse_bad("CN=a,O=", "no value");
	parse_bad("=a", "without a name");
	parse_bad("C=USA", "C");
	parse_bad("CN=a\\", "backslash");
	parse_bad("CN=a,,O=b", "empty part");
}

static void test_dn_too_long(void **state)
{
	char s[5000];

	(void)state;
	memset(s, 'a', sizeof(s) - 1);
	s[sizeof(s) - 1] = '\0';
	memcpy(s, "CN=", 3);
	parse_bad(s, "longer");
}

static const char *const dns[] = { "host.example", "*.example.org" };
static const char *const ips[] = { "192.0.2.1", "2001:db8::1" };

static X509_REQ *build(const char *challenge, const char *digest)
{
	struct csr_params p = {
		.subject = "CN=host.example,O=Example",
		.dns = dns, .n_dns = 2,
		.ip = ips, .n_ip = 2,
		.challenge = challenge,
		.digest = digest,
	};
	X509_REQ *req = NULL;

	if (csr_build(&p, rsa_key, &req) != P11S_OK)
		fail_msg("csr_build: %s", err_msg());
	return req;
}

static ASN1_TYPE *challenge_of(X509_REQ *req)
{
	int i = X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword, -1);
	X509_ATTRIBUTE *a;

	if (i < 0)
		return NULL;
	a = X509_REQ_get_attr(req, i);
	assert_int_equal(X509_ATTRIBUTE_count(a), 1);
	return X509_ATTRIBUTE_get0_type(a, 0);
}

static void test_csr_verifies_and_carries(void **state)
{
	X509_REQ *req = build("s3cret-Pass", "SHA256");
	STACK_OF(X509_EXTENSION) *exts;
	GENERAL_NAMES *names;
	GENERAL_NAME *gn;
	ASN1_TYPE *ch;
	X509_NAME *want = parse_ok("/O=Example/CN=host.example");
	static const unsigned char v4[] = { 192, 0, 2, 1 };
	static const unsigned char v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	int crit = -1;

	(void)state;
	assert_int_equal(X509_REQ_verify(req, rsa_key), 1);
	assert_int_equal(X509_REQ_verify(req, other_key), 0);
	ERR_clear_error();
	assert_int_equal(X509_REQ_get_version(req), X509_REQ_VERSION_1);
	assert_int_equal(X509_NAME_cmp(X509_REQ_get_subject_name(req), want), 0);
	assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), rsa_key), 1);
	assert_int_equal(X509_REQ_get_signature_nid(req), NID_sha256WithRSAEncryption);

	exts = X509_REQ_get_extensions(req);
	assert_non_null(exts);
	names = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL);
	assert_non_null(names);
	assert_int_equal(crit, 0);
	assert_int_equal(sk_GENERAL_NAME_num(names), 4);
	gn = sk_GENERAL_NAME_value(names, 0);
	assert_int_equal(gn->type, GEN_DNS);
	assert_string_equal((const char *)ASN1_STRING_get0_data(gn->d.dNSName), "host.example");
	gn = sk_GENERAL_NAME_value(names, 1);
	assert_int_equal(gn->type, GEN_DNS);
	assert_string_equal((const char *)ASN1_STRING_get0_data(gn->d.dNSName), "*.example.org");
	gn = sk_GENERAL_NAME_value(names, 2);
	assert_int_equal(gn->type, GEN_IPADD);
	assert_int_equal(ASN1_STRING_length(gn->d.iPAddress), 4);
	assert_memory_equal(ASN1_STRING_get0_data(gn->d.iPAddress), v4, 4);
	gn = sk_GENERAL_NAME_value(names, 3);
	assert_int_equal(gn->type, GEN_IPADD);
	assert_int_equal(ASN1_STRING_length(gn->d.iPAddress), 16);
	assert_memory_equal(ASN1_STRING_get0_data(gn->d.iPAddress), v6, 16);

	ch = challenge_of(req);
	assert_non_null(ch);
	assert_int_equal(ASN1_TYPE_get(ch), V_ASN1_PRINTABLESTRING);
	assert_int_equal(ASN1_STRING_length(ch->value.printablestring), 11);
	assert_memory_equal(ASN1_STRING_get0_data(ch->value.printablestring), "s3cret-Pass", 11);

	GENERAL_NAMES_free(names);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(want);
	X509_REQ_free(req);
}

static void test_csr_der_roundtrip(void **state)
{
	X509_REQ *req = build("pw", "SHA512"), *back;
	unsigned char *der = NULL;
	const unsigned char *p;
	int len;

	(void)state;
	len = i2d_X509_REQ(req, &der);
	assert_true(len > 0);
	p = der;
	back = d2i_X509_REQ(NULL, &p, len);
	assert_non_null(back);
	assert_ptr_equal(p, der + len);
	assert_int_equal(X509_REQ_verify(back, rsa_key), 1);
	assert_int_equal(X509_REQ_get_signature_nid(back), NID_sha512WithRSAEncryption);
	X509_REQ_free(back);
	X509_REQ_free(req);
	OPENSSL_free(der);
}

static void test_csr_challenge_utf8(void **state)
{
	X509_REQ *req = build("p\xc3\xa4ssw\xc3\xb6rd", "SHA256");
	X509_REQ *req2 = build("a@b", "SHA256");	/* '@' is not PrintableString */
	ASN1_TYPE *ch;

	(void)state;
	ch = challenge_of(req);
	assert_non_null(ch);
	assert_int_equal(ASN1_TYPE_get(ch), V_ASN1_UTF8STRING);
	assert_memory_equal(ASN1_STRING_get0_data(ch->value.utf8string),
	    "p\xc3\xa4ssw\xc3\xb6rd", 10);
	assert_int_equal(X509_REQ_verify(req, rsa_key), 1);
	ch = challenge_of(req2);
	assert_int_equal(ASN1_TYPE_get(ch), V_ASN1_UTF8STRING);
	X509_REQ_free(req);
	X509_REQ_free(req2);
}

static void test_csr_minimal(void **state)
{
	struct csr_params p = { .subject = "/CN=only", .digest = "SHA256" };
	X509_REQ *req = NULL;

	(void)state;
	assert_int_equal(csr_build(&p, rsa_key, &req), P11S_OK);
	assert_null(challenge_of(req));
	assert_int_equal(X509_REQ_get_attr_count(req), 0);
	assert_int_equal(X509_REQ_verify(req, rsa_key), 1);
	X509_REQ_free(req);
}

static void test_csr_ec_key(void **state)
{
	EVP_PKEY *ec = EVP_EC_gen("P-256");
	struct csr_params p = { .subject = "CN=ec", .digest = "SHA256", .challenge = "x" };
	X509_REQ *req = NULL;

	(void)state;
	assert_non_null(ec);
	assert_int_equal(csr_build(&p, ec, &req), P11S_OK);
	assert_int_equal(X509_REQ_verify(req, ec), 1);
	assert_int_equal(X509_REQ_get_signature_nid(req), NID_ecdsa_with_SHA256);
	X509_REQ_free(req);
	EVP_PKEY_free(ec);
}

static void csr_bad(const struct csr_params *p, enum p11s_err want, const char *part)
{
	X509_REQ *req = (X509_REQ *)1;

	err_clear();
	assert_int_equal(csr_build(p, rsa_key, &req), want);
	assert_null(req);
	if (part != NULL && strstr(err_msg(), part) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", err_msg(), part);
}

static void test_csr_errors(void **state)
{
	static const char *const bad_ip[] = { "300.1.1.1" };
	static const char *const bad_ip2[] = { "host.example" };
	static const char *const bad_dns[] = { "a b.example" };
	static const char *const empty_dns[] = { "" };
	struct csr_params p = { .subject = "CN=a", .digest = "SHA256" };
	char long_pw[300];

	(void)state;
	p.ip = bad_ip;
	p.n_ip = 1;
	csr_bad(&p, P11S_E_USAGE, "300.1.1.1");
	p.ip = bad_ip2;
	csr_bad(&p, P11S_E_USAGE, "not an IPv4");
	p.n_ip = 0;
	p.dns = bad_dns;
	p.n_dns = 1;
	csr_bad(&p, P11S_E_USAGE, "DNS name");
	p.dns = empty_dns;
	csr_bad(&p, P11S_E_USAGE, "empty DNS");
	p.n_dns = 0;
	p.challenge = "";
	csr_bad(&p, P11S_E_USAGE, "challenge");
	memset(long_pw, 'x', sizeof(long_pw) - 1);
	long_pw[sizeof(long_pw) - 1] = '\0';
	p.challenge = long_pw;
	csr_bad(&p, P11S_E_USAGE, "challenge");
	assert_null(strstr(err_msg(), "xxxx"));	/* never echo the secret */
	p.challenge = "bad\xff";
	csr_bad(&p, P11S_E_USAGE, "challenge");
	assert_null(strstr(err_msg(), "bad"));
	p.challenge = NULL;
	p.digest = "MD5";
	csr_bad(&p, P11S_E_USAGE, "MD5");
	p.digest = "NOPE";
	csr_bad(&p, P11S_E_USAGE, "NOPE");
	p.digest = "SHA256";
	p.subject = "Foo=bar";
	csr_bad(&p, P11S_E_USAGE, "'Foo'");
}

static X509 *signer(X509_REQ *req, const char *digest)
{
	X509 *x = NULL;

	if (signer_cert_build(req, rsa_key, digest, &x) != P11S_OK)
		fail_msg("signer_cert_build: %s", err_msg());
	return x;
}

static void test_signer_cert(void **state)
{
	X509_REQ *req = build("pw", "SHA256");
	X509 *x = signer(req, "SHA256"), *y = signer(req, "SHA256");
	const ASN1_INTEGER *sn;
	BIGNUM *bn;
	X509_EXTENSION *ext;
	int idx, day, sec;

	(void)state;
	assert_int_equal(X509_verify(x, rsa_key), 1);
	assert_int_equal(X509_get_version(x), X509_VERSION_3);
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), X509_REQ_get_subject_name(req)), 0);
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(x), X509_REQ_get_subject_name(req)), 0);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), rsa_key), 1);
	assert_int_equal(X509_get_signature_nid(x), NID_sha256WithRSAEncryption);

	/* keyUsage: critical, exactly digitalSignature + keyEncipherment. */
	assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
	idx = X509_get_ext_by_NID(x, NID_key_usage, -1);
	assert_true(idx >= 0);
	ext = X509_get_ext(x, idx);
	assert_int_equal(X509_EXTENSION_get_critical(ext), 1);
	assert_int_equal(X509_get_ext_count(x), 1);

	/* Random, positive, 16 bytes or fewer, different each time. */
	sn = X509_get0_serialNumber(x);
	bn = ASN1_INTEGER_to_BN(sn, NULL);
	assert_non_null(bn);
	assert_false(BN_is_negative(bn));
	assert_false(BN_is_zero(bn));
	assert_true(BN_num_bytes(bn) <= 16);
	assert_true(BN_num_bytes(bn) >= 15);
	BN_free(bn);
	assert_int_not_equal(ASN1_INTEGER_cmp(sn, X509_get0_serialNumber(y)), 0);

	/* Valid from an hour ago to a day ahead. */
	assert_int_equal(ASN1_TIME_diff(&day, &sec, NULL, X509_get0_notBefore(x)), 1);
	assert_int_equal(day, 0);
	assert_true(sec <= -3590 && sec >= -3610);
	assert_int_equal(ASN1_TIME_diff(&day, &sec, NULL, X509_get0_notAfter(x)), 1);
	assert_true(day * 86400 + sec >= 86390 && day * 86400 + sec <= 86400);

	X509_free(x);
	X509_free(y);
	X509_REQ_free(req);
}

static void test_signer_cert_digest(void **state)
{
	X509_REQ *req = build(NULL, "SHA256");
	X509 *x = signer(req, "SHA1");

	(void)state;
	assert_int_equal(X509_get_signature_nid(x), NID_sha1WithRSAEncryption);
	assert_int_equal(X509_verify(x, rsa_key), 1);
	X509_free(x);
	X509_REQ_free(req);
}

static void test_signer_cert_wrong_key(void **state)
{
	X509_REQ *req = build(NULL, "SHA256");
	X509 *x = (X509 *)1;

	(void)state;
	assert_int_not_equal(signer_cert_build(req, other_key, "SHA256", &x), P11S_OK);
	assert_null(x);
	err_clear();
	assert_int_equal(signer_cert_build(req, rsa_key, "MD5", &x), P11S_E_USAGE);
	assert_null(x);
	X509_REQ_free(req);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_dn_both_forms, setup),
		cmocka_unit_test_setup(test_dn_spaces_and_case, setup),
		cmocka_unit_test_setup(test_dn_escapes, setup),
		cmocka_unit_test_setup(test_dn_utf8, setup),
		cmocka_unit_test_setup(test_dn_multivalued, setup),
		cmocka_unit_test_setup(test_dn_other_attrs, setup),
		cmocka_unit_test_setup(test_dn_errors, setup),
		cmocka_unit_test_setup(test_dn_too_long, setup),
		cmocka_unit_test_setup(test_csr_verifies_and_carries, setup),
		cmocka_unit_test_setup(test_csr_der_roundtrip, setup),
		cmocka_unit_test_setup(test_csr_challenge_utf8, setup),
		cmocka_unit_test_setup(test_csr_minimal, setup),
		cmocka_unit_test_setup(test_csr_ec_key, setup),
		cmocka_unit_test_setup(test_csr_errors, setup),
		cmocka_unit_test_setup(test_signer_cert, setup),
		cmocka_unit_test_setup(test_signer_cert_digest, setup),
		cmocka_unit_test_setup(test_signer_cert_wrong_key, setup),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
