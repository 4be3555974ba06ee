#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "scep_ca.h"
#include "testpki.h"

#define CT_CA	"application/x-x509-ca-cert"
#define CT_RA	"application/x-x509-ca-ra-cert"

/* micromdm scepserver's CA (tests/unit/data/micromdm-getcacert.der), by `openssl x509 -fingerprint -sha256`. */
#define MICROMDM_FP \
	"C7:69:0B:1A:9E:DF:F8:4D:2D:EB:F0:9C:D8:95:31:37:95:CB:D6:2E:74:48:EC:EA:84:EF:82:D3:24:29:FF:A0"

static struct pki {
	EVP_PKEY *root_key, *enc_key, *sig_key, *other_key, *inter_key, *leaf_key;
	X509 *root, *ra_enc, *ra_sig, *ra_both, *other_root, *fake_ra;
	X509 *inter, *inter_leaf, *leaf, *other_leaf, *impostor_root;
} P;

static int group_setup(void **state)
{
	(void)state;
	P.root_key = tp_key();
	P.enc_key = tp_key();
	P.sig_key = tp_key();
	P.other_key = tp_key();
	P.inter_key = tp_key();
	P.leaf_key = tp_key();
	P.root = tp_root(P.root_key, "Test Root CA");
	P.ra_enc = tp_leaf(P.enc_key, "RA enc", P.root, P.root_key, KU_KEY_ENCIPHERMENT);
	P.ra_sig = tp_leaf(P.sig_key, "RA sig", P.root, P.root_key, KU_DIGITAL_SIGNATURE);
	P.ra_both = tp_leaf(P.enc_key, "RA both", P.root, P.root_key,
	    KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
	P.other_root = tp_root(P.other_key, "Other CA");
	/* Same issuer name as our root, other key: only the signature tells. */
	P.impostor_root = tp_root(P.other_key, "Test Root CA");
	P.fake_ra = tp_leaf(P.sig_key, "RA fake", P.impostor_root, P.other_key,
	    KU_DIGITAL_SIGNATURE);
	P.inter = tp_subca(P.inter_key, "Issuing CA", P.root, P.root_key);
	P.inter_leaf = tp_leaf(P.leaf_key, "host.example", P.inter, P.inter_key,
	    KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
	P.leaf = tp_leaf(P.leaf_key, "host.example", P.root, P.root_key,
	    KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
	P.other_leaf = tp_leaf(P.leaf_key, "host.example", P.other_root, P.other_key,
	    KU_DIGITAL_SIGNATURE);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	X509_free(P.root);
	X509_free(P.ra_enc);
	X509_free(P.ra_sig);
	X509_free(P.ra_both);
	X509_free(P.other_root);
	X509_free(P.impostor_root);
	X509_free(P.fake_ra);
	X509_free(P.inter);
	X509_free(P.inter_leaf);
	X509_free(P.leaf);
	X509_free(P.other_leaf);
	EVP_PKEY_free(P.root_key);
	EVP_PKEY_free(P.enc_key);
	EVP_PKEY_free(P.sig_key);
	EVP_PKEY_free(P.other_key);
	EVP_PKEY_free(P.inter_key);
	EVP_PKEY_free(P.leaf_key);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	err_clear();
	return 0;
}

static void fp_of(X509 *x, unsigned char fp[32])
{
	assert_int_equal(fingerprint_sha256(x, fp), P11S_OK);
}

static STACK_OF(X509) *parse_bag(X509 *const *certs, size_t n, const char *ct)
{
	STACK_OF(X509) *sk = NULL;
	unsigned char *der;
	size_t len;

	der = tp_bag_der(certs, n, &len);
	assert_int_equal(scep_ca_parse(der, len, ct, &sk), P11S_OK);
	assert_non_null(sk);
	assert_int_equal(sk_X509_num(sk), (int)n);
	OPENSSL_free(der);
	return sk;
}

static void test_ca_only_der(void **state)
{
	STACK_OF(X509) *sk = NULL;
	struct scep_ca_set set;
	unsigned char fp[32], *der;
	size_t len;

	(void)state;
	der = tp_cert_der(P.root, &len);
	assert_int_equal(scep_ca_parse(der, len, CT_CA, &sk), P11S_OK);
	assert_int_equal(sk_X509_num(sk), 1);
	assert_int_equal(X509_cmp(sk_X509_value(sk, 0), P.root), 0);
	fp_of(P.root, fp);
	assert_int_equal(scep_ca_select(sk, fp, &set), P11S_OK);
	assert_int_equal(X509_cmp(set.ca, P.root), 0);
	assert_int_equal(X509_cmp(set.pinned, P.root), 0);
	assert_ptr_equal(set.ra_enc, set.ca);
	assert_ptr_equal(set.ra_sig, set.ca);
	assert_int_equal(sk_X509_num(set.certs), 1);
	scep_ca_set_free(&set);
	assert_null(set.ca);
	scep_ca_set_free(&set);		/* twice is harmless */
	scep_ca_set_free(NULL);
	sk_X509_pop_free(sk, X509_free);
	OPENSSL_free(der);
}

static void check_ndes_roles(X509 *const *bag, size_t n)
{
	STACK_OF(X509) *sk = parse_bag(bag, n, CT_RA);
	struct scep_ca_set set;
	unsigned char fp[32];

	fp_of(P.root, fp);
	assert_int_equal(scep_ca_select(sk, fp, &set), P11S_OK);
	assert_int_equal(X509_cmp(set.ca, P.root), 0);
	assert_int_equal(X509_cmp(set.ra_enc, P.ra_enc), 0);
	assert_int_equal(X509_cmp(set.ra_sig, P.ra_sig), 0);
	assert_int_equal(sk_X509_num(set.certs), (int)n);
	scep_ca_set_free(&set);
	sk_X509_pop_free(sk, X509_free);
}

static void test_ndes_bag_both_orders(void **state)
{
	X509 *a[] = { P.root, P.ra_enc, P.ra_sig };
	X509 *b[] = { P.ra_sig, P.ra_enc, P.root };
	X509 *c[] = { P.ra_enc, P.root, P.ra_sig };

	(void)state;
	check_ndes_roles(a, 3);
	check_ndes_roles(b, 3);
	check_ndes_roles(c, 3);
}

static void test_ra_both(void **state)
{
	X509 *bag[] = { P.ra_both, P.root };
	STACK_OF(X509) *sk = parse_bag(bag, 2, CT_RA);
	struct scep_ca_set set;
	unsigned char fp[32];

	(void)state;
	fp_of(P.root, fp);
	assert_int_equal(scep_ca_select(sk, fp, &set), P11S_OK);
	assert_int_equal(X509_cmp(set.ra_enc, P.ra_both), 0);
	assert_int_equal(X509_cmp(set.ra_sig, P.ra_both), 0);
	scep_ca_set_free(&set);
	sk_X509_pop_free(sk, X509_free);
}

static void test_dedicated_beats_both(void **state)
{
	X509 *bag[] = { P.ra_both, P.ra_sig, P.root };
	STACK_OF(X509) *sk = parse_bag(bag, 3, CT_RA);
	struct scep_ca_set set;
	unsigned char fp[32];

	(void)state;
	fp_of(P.root, fp);
	assert_int_equal(scep_ca_select(sk, fp, &set), P11S_OK);
	assert_int_equal(X509_cmp(set.ra_enc, P.ra_both), 0);
	assert_int_equal(X509_cmp(set.ra_sig, P.ra_sig), 0);
	scep_ca_set_free(&set);
	sk_X509_pop_free(sk, X509_free);
}

static void test_roles(void **state)
{
	struct tp_cert_spec v1 = { .cn = "v1 root", .key = P.root_key, .version1 = 1 };
	X509 *x1 = tp_cert(&v1);
	X509 *noku = tp_leaf(P.enc_key, "no KU", P.root, P.root_key, 0);
	X509 *nr = tp_leaf(P.enc_key, "nonRep", P.root, P.root_key, KU_NON_REPUDIATION);

	(void)state;
	assert_int_equal(scep_ca_role(P.root), ROLE_CA);
	assert_int_equal(scep_ca_role(P.inter), ROLE_CA);
	assert_int_equal(scep_ca_role(x1), ROLE_CA);
	assert_int_equal(scep_ca_role(P.ra_enc), ROLE_RA_ENC);
	assert_int_equal(scep_ca_role(P.ra_sig), ROLE_RA_SIG);
	assert_int_equal(scep_ca_role(P.ra_both), ROLE_RA_BOTH);
	assert_int_equal(scep_ca_role(noku), ROLE_RA_BOTH);
	assert_int_equal(scep_ca_role(nr), ROLE_OTHER);
	assert_string_equal(scep_ca_role_name(ROLE_CA), "ca");
	assert_string_equal(scep_ca_role_name(ROLE_RA_ENC), "ra-enc");
	assert_string_equal(scep_ca_role_name(ROLE_RA_SIG), "ra-sig");
	assert_string_equal(scep_ca_role_name(ROLE_RA_BOTH), "ra");
	assert_string_equal(scep_ca_role_name(ROLE_OTHER), "other");
	X509_free(x1);
	X509_free(noku);
	X509_free(nr);
}

static void test_pin_mismatch(void **state)
{
	X509 *bag[] = { P.ra_enc, P.root, P.ra_sig };
	STACK_OF(X509) *sk = parse_bag(bag, 3, CT_RA);
	struct scep_ca_set set;
	unsigned char fp[32], want[32];
	char got_s[96], want_s[96];

	(void)state;
	fp_of(P.root, fp);
	fingerprint_format(fp, got_s, sizeof(got_s));
	fp_of(P.other_root, want);
	fingerprint_format(want, want_s, sizeof(want_s));
	assert_int_equal(scep_ca_select(sk, want, &set), P11S_E_UNTRUSTED);
	assert_null(set.ca);
	assert_null(set.certs);
	/* Both what we wanted and what the server's CA really is. */
	assert_non_null(strstr(err_msg(), got_s));
	assert_non_null(strstr(err_msg(), want_s));
	assert_non_null(strstr(err_msg(), "--ca-fingerprint"));
	sk_X509_pop_free(sk, X509_free);
}

static void test_pinned_not_ca(void **state)
{
	X509 *bag[] = { P.root, P.ra_enc };
	STACK_OF(X509) *sk = parse_bag(bag, 2, CT_RA);
	struct scep_ca_set set;
	unsigned char fp[32];

	(void)state;
	fp_of(P.ra_enc, fp);
	assert_int_equal(scep_ca_select(sk, fp, &set), P11S_E_UNTRUSTED);
	assert_non_null(strstr(err_msg(), "not a CA"));
	sk_X509_pop_free(sk, X509_free);
}

static void test_ra_not_signed_by_ca(void **state)
{
	X509 *bag[] = { P.root, P.ra_enc, P.fake_ra };
	X509 *bag2[] = { P.ra_sig, P.root, P.other_leaf };
	STACK_OF(X509) *sk = parse_bag(bag, 3, CT_RA);
	struct scep_ca_set set;
	unsigned char fp[32];

	(void)state;
	fp_of(P.root, fp);
	/* Issuer name matches the pinned CA; the signature does not. */
	assert_int_equal(scep_ca_select(sk, fp, &set), P11S_E_UNTRUSTED);
	assert_non_null(strstr(err_msg(), "RA fake"));
	assert_null(set.ra_sig);
	sk_X509_pop_free(sk, X509_free);
	err_clear();
	sk = parse_bag(bag2, 3, CT_RA);
	assert_int_equal(scep_ca_select(sk, fp, &set), P11S_E_UNTRUSTED);
	sk_X509_pop_free(sk, X509_free);
}

static void test_subca_descent(void **state)
{
	X509 *bag[] = { P.inter, P.root };
	STACK_OF(X509) *sk = parse_bag(bag, 2, CT_RA);
	struct scep_ca_set set;
	unsigned char fp[32];

	(void)state;
	fp_of(P.root, fp);
	assert_int_equal(scep_ca_select(sk, fp, &set), P11S_OK);
	assert_int_equal(X509_cmp(set.pinned, P.root), 0);
	assert_int_equal(X509_cmp(set.ca, P.inter), 0);
	assert_int_equal(X509_cmp(set.ra_enc, P.inter), 0);
	assert_int_equal(X509_cmp(set.ra_sig, P.inter), 0);
	scep_ca_set_free(&set);
	sk_X509_pop_free(sk, X509_free);
}

static void test_garbage(void **state)
{
	STACK_OF(X509) *sk = NULL;
	unsigned char rnd[300], *der, *big;
	size_t len;

	(void)state;
	assert_int_equal(RAND_bytes(rnd, sizeof(rnd)), 1);
	rnd[0] = 0x04;	/* never a SEQUENCE */
	assert_int_equal(scep_ca_parse(rnd, sizeof(rnd), CT_CA, &sk), P11S_E_MALFORMED);
	assert_null(sk);
	err_clear();
	assert_int_equal(scep_ca_parse(rnd, 0, CT_CA, &sk), P11S_E_MALFORMED);
	err_clear();
	assert_int_equal(scep_ca_parse((const unsigned char *)"<html>", 6, "text/html", &sk),
	    P11S_E_MALFORMED);
	assert_non_null(strstr(err_msg(), "text/html"));
	err_clear();
	/* A SEQUENCE header with random content. */
	rnd[0] = 0x30;
	rnd[1] = 0x82;
	rnd[2] = 0x01;
	rnd[3] = 0x28;
	rnd[4] = 0x30;
	assert_int_equal(scep_ca_parse(rnd, sizeof(rnd), CT_CA, &sk), P11S_E_MALFORMED);
	assert_null(sk);
	err_clear();

	der = tp_cert_der(P.root, &len);
	assert_int_equal(scep_ca_parse(der, len - 1, CT_CA, &sk), P11S_E_MALFORMED);
	err_clear();
	assert_int_equal(scep_ca_parse(der, len / 2, CT_CA, &sk), P11S_E_MALFORMED);
	err_clear();
	assert_int_equal(scep_ca_parse(der, 1, CT_CA, &sk), P11S_E_MALFORMED);
	err_clear();
	big = malloc(len + 3);
	assert_non_null(big);
	memcpy(big, der, len);
	memcpy(big + len, "\x00\x01\x02", 3);
	assert_int_equal(scep_ca_parse(big, len + 3, CT_CA, &sk), P11S_E_MALFORMED);
	assert_non_null(strstr(err_msg(), "3 bytes after"));
	assert_null(sk);
	free(big);
	OPENSSL_free(der);
}

static void test_truncated_bag(void **state)
{
	X509 *bag[] = { P.root, P.ra_enc, P.ra_sig };
	STACK_OF(X509) *sk = NULL;
	unsigned char *der;
	size_t len, cut;

	(void)state;
	der = tp_bag_der(bag, 3, &len);
	for (cut = 1; cut < len; cut += 97) {
		err_clear();
		assert_int_equal(scep_ca_parse(der, cut, CT_RA, &sk), P11S_E_MALFORMED);
		assert_null(sk);
	}
	err_clear();
	assert_int_equal(scep_ca_parse(der, len - 1, CT_RA, &sk), P11S_E_MALFORMED);
	OPENSSL_free(der);
}

static void test_sniff_wrong_content_type(void **state)
{
	X509 *bag[] = { P.root, P.ra_enc };
	STACK_OF(X509) *sk = NULL;
	unsigned char *der;
	size_t len;

	(void)state;
	der = tp_bag_der(bag, 2, &len);
	assert_int_equal(scep_ca_parse(der, len, CT_CA, &sk), P11S_OK);
	assert_int_equal(sk_X509_num(sk), 2);
	sk_X509_pop_free(sk, X509_free);
	assert_int_equal(scep_ca_parse(der, len, NULL, &sk), P11S_OK);
	sk_X509_pop_free(sk, X509_free);
	OPENSSL_free(der);
	der = tp_cert_der(P.root, &len);
	assert_int_equal(scep_ca_parse(der, len, CT_RA, &sk), P11S_OK);
	assert_int_equal(sk_X509_num(sk), 1);
	sk_X509_pop_free(sk, X509_free);
	assert_int_equal(scep_ca_parse(der, len, "application/octet-stream", &sk), P11S_OK);
	sk_X509_pop_free(sk, X509_free);
	OPENSSL_free(der);
}

static void test_too_many_certs(void **state)
{
	X509 *bag[65];
	STACK_OF(X509) *sk = NULL;
	unsigned char *der;
	size_t len, i;

	(void)state;
	for (i = 0; i < 65; i++)
		bag[i] = P.ra_enc;
	der = tp_bag_der(bag, 65, &len);
	assert_int_equal(scep_ca_parse(der, len, CT_RA, &sk), P11S_E_MALFORMED);
	assert_non_null(strstr(err_msg(), "65 certificates"));
	assert_null(sk);
	OPENSSL_free(der);
	der = tp_bag_der(bag, 64, &len);
	assert_int_equal(scep_ca_parse(der, len, CT_RA, &sk), P11S_OK);
	sk_X509_pop_free(sk, X509_free);
	OPENSSL_free(der);
}

static void test_empty_bag(void **state)
{
	STACK_OF(X509) *sk = NULL;
	unsigned char *der;
	size_t len;

	(void)state;
	der = tp_bag_der(NULL, 0, &len);
	assert_int_equal(scep_ca_parse(der, len, CT_RA, &sk), P11S_E_MALFORMED);
	assert_null(sk);
	OPENSSL_free(der);
}

static void test_verify_issued(void **state)
{
	X509 *bag[] = { P.root, P.ra_enc, P.ra_sig };
	STACK_OF(X509) *sk = parse_bag(bag, 3, CT_RA), *chain = NULL;
	struct scep_ca_set set;
	unsigned char fp[32];

	(void)state;
	fp_of(P.root, fp);
	assert_int_equal(scep_ca_select(sk, fp, &set), P11S_OK);
	assert_int_equal(scep_ca_verify_issued(&set, P.leaf, NULL, &chain), P11S_OK);
	assert_int_equal(sk_X509_num(chain), 1);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 0), P.root), 0);
	sk_X509_pop_free(chain, X509_free);
	chain = NULL;

	assert_int_equal(scep_ca_verify_issued(&set, P.other_leaf, NULL, &chain),
	    P11S_E_UNTRUSTED);
	assert_null(chain);
	assert_non_null(strstr(err_msg(), "does not chain"));
	err_clear();
	/* Offering the other CA as an intermediate must not help. */
	{
		STACK_OF(X509) *extra = sk_X509_new_null();

		assert_true(sk_X509_push(extra, P.other_root));
		assert_int_equal(scep_ca_verify_issued(&set, P.other_leaf, extra, &chain),
		    P11S_E_UNTRUSTED);
		assert_null(chain);
		sk_X509_free(extra);
	}
	err_clear();
	/* A leaf of an intermediate the server never sent: cannot be chained. */
	assert_int_equal(scep_ca_verify_issued(&set, P.inter_leaf, NULL, &chain),
	    P11S_E_UNTRUSTED);
	scep_ca_set_free(&set);
	sk_X509_pop_free(sk, X509_free);
}

static void test_verify_chain_pinned_root(void **state)
{
	X509 *bag1[] = { P.root };
	X509 *bag2[] = { P.root, P.inter };
	STACK_OF(X509) *sk = parse_bag(bag1, 1, CT_RA), *chain = NULL;
	STACK_OF(X509) *extra = sk_X509_new_null();
	struct scep_ca_set set;
	unsigned char fp[32];

	(void)state;
	fp_of(P.root, fp);
	/* The intermediate comes with the CertRep (extra). */
	assert_int_equal(scep_ca_select(sk, fp, &set), P11S_OK);
	assert_true(sk_X509_push(extra, P.inter));
	assert_int_equal(scep_ca_verify_issued(&set, P.inter_leaf, extra, &chain), P11S_OK);
	assert_int_equal(sk_X509_num(chain), 2);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 0), P.inter), 0);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 1), P.root), 0);
	sk_X509_pop_free(chain, X509_free);
	scep_ca_set_free(&set);
	sk_X509_pop_free(sk, X509_free);

	/* The intermediate comes with GetCACert. */
	sk = parse_bag(bag2, 2, CT_RA);
	assert_int_equal(scep_ca_select(sk, fp, &set), P11S_OK);
	assert_int_equal(scep_ca_verify_issued(&set, P.inter_leaf, NULL, &chain), P11S_OK);
	assert_int_equal(sk_X509_num(chain), 2);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 1), P.root), 0);
	sk_X509_pop_free(chain, X509_free);
	scep_ca_set_free(&set);
	sk_X509_pop_free(sk, X509_free);
	sk_X509_free(extra);
}

static void test_verify_pinned_intermediate(void **state)
{
	X509 *bag[] = { P.inter };
	STACK_OF(X509) *sk = parse_bag(bag, 1, CT_RA), *chain = NULL;
	struct scep_ca_set set;
	unsigned char fp[32];

	(void)state;
	fp_of(P.inter, fp);
	assert_int_equal(scep_ca_select(sk, fp, &set), P11S_OK);
	assert_int_equal(scep_ca_verify_issued(&set, P.inter_leaf, NULL, &chain), P11S_OK);
	assert_int_equal(sk_X509_num(chain), 1);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 0), P.inter), 0);
	sk_X509_pop_free(chain, X509_free);
	/* The root's direct leaf is not under the pinned intermediate. */
	assert_int_equal(scep_ca_verify_issued(&set, P.leaf, NULL, &chain), P11S_E_UNTRUSTED);
	scep_ca_set_free(&set);
	sk_X509_pop_free(sk, X509_free);
}

static void test_fingerprint_parse(void **state)
{
	unsigned char fp[32], want[32];
	char s[96];
	size_t i;

	(void)state;
	for (i = 0; i < 32; i++)
		want[i] = (unsigned char)(i * 7 + 0xa1);
	fingerprint_format(want, s, sizeof(s));
	assert_int_equal(strlen(s), 95);
	assert_int_equal(fingerprint_parse(s, fp), P11S_OK);
	assert_memory_equal(fp, want, 32);
	assert_int_equal(fingerprint_parse(
	    "a1a8afb6bdc4cbd2d9e0e7eef5fc030a11181f262d343b424950575e656c737a", fp), P11S_OK);
	assert_memory_equal(fp, want, 32);
	assert_int_equal(fingerprint_parse(
	    " A1A8 AFB6 BDC4 CBD2 D9E0 E7EE F5FC 030A 1118 1F26 2D34 3B42 4950 575E 656C 737A ",
	    fp), P11S_OK);
	assert_memory_equal(fp, want, 32);
	assert_int_equal(fingerprint_parse(
	    "a1a8afb6bdc4cbd2d9e0e7eef5fc030a11181f262d343b424950575e656c737", fp),
	    P11S_E_USAGE);
	assert_non_null(strstr(err_msg(), "63 hex digits"));
	err_clear();
	assert_int_equal(fingerprint_parse(
	    "a1a8afb6bdc4cbd2d9e0e7eef5fc030a11181f262d343b424950575e656c737a00", fp),
	    P11S_E_USAGE);
	err_clear();
	/* A SHA-1 fingerprint is not enough. */
	assert_int_equal(fingerprint_parse("AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01",
	    fp), P11S_E_USAGE);
	err_clear();
	assert_int_equal(fingerprint_parse(
	    "g1a8afb6bdc4cbd2d9e0e7eef5fc030a11181f262d343b424950575e656c737a", fp),
	    P11S_E_USAGE);
	assert_non_null(strstr(err_msg(), "'g'"));
	err_clear();
	assert_int_equal(fingerprint_parse("", fp), P11S_E_USAGE);
	err_clear();
	assert_int_equal(fingerprint_parse(NULL, fp), P11S_E_USAGE);
}

static void test_fingerprint_format_small(void **state)
{
	unsigned char fp[32];
	char s[8];

	(void)state;
	memset(fp, 0xab, sizeof(fp));
	fingerprint_format(fp, s, sizeof(s));
	assert_string_equal(s, "AB:AB");
	fingerprint_format(fp, s, 0);
}

static void test_fingerprint_matches_openssl(void **state)
{
	unsigned char fp[32], md[32];
	unsigned int n;

	(void)state;
	fp_of(P.root, fp);
	assert_int_equal(X509_digest(P.root, EVP_sha256(), md, &n), 1);
	assert_memory_equal(fp, md, 32);
}

static void test_micromdm_getcacert(void **state)
{
	STACK_OF(X509) *sk = NULL;
	struct scep_ca_set set;
	unsigned char fp[32], *body;
	size_t len;

	(void)state;
	body = tp_read_data("micromdm-getcacert.der", &len);
	assert_int_equal(scep_ca_parse(body, len, CT_CA, &sk), P11S_OK);
	assert_int_equal(sk_X509_num(sk), 1);
	assert_int_equal(scep_ca_role(sk_X509_value(sk, 0)), ROLE_CA);
	assert_int_equal(fingerprint_parse(MICROMDM_FP, fp), P11S_OK);
	assert_int_equal(scep_ca_select(sk, fp, &set), P11S_OK);
	assert_ptr_equal(set.ra_enc, set.ca);
	assert_ptr_equal(set.ra_sig, set.ca);
	scep_ca_set_free(&set);
	sk_X509_pop_free(sk, X509_free);
	free(body);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_ca_only_der, setup),
		cmocka_unit_test_setup(test_ndes_bag_both_orders, setup),
		cmocka_unit_test_setup(test_ra_both, setup),
		cmocka_unit_test_setup(test_dedicated_beats_both, setup),
		cmocka_unit_test_setup(test_roles, setup),
		cmocka_unit_test_setup(test_pin_mismatch, setup),
		cmocka_unit_test_setup(test_pinned_not_ca, setup),
		cmocka_unit_test_setup(test_ra_not_signed_by_ca, setup),
		cmocka_unit_test_setup(test_subca_descent, setup),
		cmocka_unit_test_setup(test_garbage, setup),
		cmocka_unit_test_setup(test_truncated_bag, setup),
		cmocka_unit_test_setup(test_sniff_wrong_content_type, setup),
		cmocka_unit_test_setup(test_too_many_certs, setup),
		cmocka_unit_test_setup(test_empty_bag, setup),
		cmocka_unit_test_setup(test_verify_issued, setup),
		cmocka_unit_test_setup(test_verify_chain_pinned_root, setup),
		cmocka_unit_test_setup(test_verify_pinned_intermediate, setup),
		cmocka_unit_test_setup(test_fingerprint_parse, setup),
		cmocka_unit_test_setup(test_fingerprint_format_small, setup),
		cmocka_unit_test_setup(test_fingerprint_matches_openssl, setup),
		cmocka_unit_test_setup(test_micromdm_getcacert, setup),
	};

	(void)argc;
	tp_init(argv[0]);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
