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
#define CT_NEXT	"application/x-x509-next-ca-cert"

/* micromdm scepserver's CA (tests/unit/data/micromdm-getcacert.der), by `openssl x509 -fingerprint -sha256`. */
#define MICROMDM_FP \
	"C7:69:0B:1A:9E:DF:F8:4D:2D:EB:F0:9C:D8:95:31:37:95:CB:D6:2E:74:48:EC:EA:84:EF:82:D3:24:29:FF:A0"

static struct pki {
	EVP_PKEY *root_key, *enc_key, *sig_key, *other_key, *inter_key, *leaf_key, *next_key;
	X509 *root, *ra_enc, *ra_sig, *ra_both, *other_root, *fake_ra, *next_root, *next_ra;
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
	P.next_key = tp_key();
	P.next_root = tp_root(P.next_key, "Test Root CA 2");
	P.next_ra = tp_leaf(P.sig_key, "RA sig 2", P.next_root, P.next_key,
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
	X509_free(P.next_root);
	X509_free(P.next_ra);
	EVP_PKEY_free(P.next_key);
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

/* ---- GetNextCACert ---- */

/* The set scep_ca_select makes of bag with pin pinned. */
static void make_set_pin(X509 *const *bag, size_t n, X509 *pin, struct scep_ca_set *set)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	unsigned char fp[32];
	size_t i;

	assert_non_null(sk);
	for (i = 0; i < n; i++)
		assert_true(sk_X509_push(sk, bag[i]));
	fp_of(pin, fp);
	assert_int_equal(scep_ca_select(sk, fp, set), P11S_OK);
	sk_X509_free(sk);
}

static void make_set(X509 *const *bag, size_t n, struct scep_ca_set *set)
{
	make_set_pin(bag, n, P.root, set);
}

/* A reply signed by cert/key over a bag of the new certs. */
static unsigned char *nextca_body(X509 *cert, EVP_PKEY *key, X509 *const *inner, size_t n,
				  struct tp_signed *opt, size_t *len)
{
	struct tp_signed s = { 0 };
	unsigned char *bag, *der;
	size_t blen;

	if (opt != NULL)
		s = *opt;
	s.signer_cert = cert;
	s.signer_key = key;
	bag = tp_bag_der(inner, n, &blen);
	if (s.content == NULL && !s.detached) {
		s.content = bag;
		s.content_len = blen;
	}
	der = tp_signed_der(&s, len);
	OPENSSL_free(bag);
	return der;
}

static enum p11s_err nextca(const unsigned char *der, size_t len, const char *ct,
			    const struct scep_ca_set *set, STACK_OF(X509) **out)
{
	err_clear();
	*out = (STACK_OF(X509) *)1;
	return scep_nextca_parse(der, len, ct, set, out);
}

static void nextca_refused(const unsigned char *der, size_t len, const struct scep_ca_set *set,
			   enum p11s_err want, const char *msg_part)
{
	STACK_OF(X509) *out;

	assert_int_equal(nextca(der, len, CT_NEXT, set, &out), want);
	assert_null(out);
	if (msg_part != NULL && strstr(err_msg(), msg_part) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", err_msg(), msg_part);
	if (getenv("SHOW_MESSAGES") != NULL)
		print_message("    message: %s\n", err_msg());
}

static int holds(STACK_OF(X509) *sk, X509 *x)
{
	int i;

	for (i = 0; i < sk_X509_num(sk); i++) {
		if (X509_cmp(sk_X509_value(sk, i), x) == 0)
			return 1;
	}
	return 0;
}

static void nextca_ok(const unsigned char *der, size_t len, const char *ct,
		      const struct scep_ca_set *set, int n)
{
	STACK_OF(X509) *out;

	if (nextca(der, len, ct, set, &out) != P11S_OK)
		fail_msg("scep_nextca_parse: %s", err_msg());
	assert_int_equal(sk_X509_num(out), n);
	assert_true(holds(out, P.next_root));
	sk_X509_pop_free(out, X509_free);
}

static void test_nextca_signed_by_ca(void **state)
{
	X509 *bag[] = { P.root };
	X509 *next[] = { P.next_ra, P.next_root };
	struct scep_ca_set set;
	struct tp_signed opt = { 0 };
	unsigned char *der;
	size_t len;

	(void)state;
	make_set(bag, 1, &set);
	der = nextca_body(P.root, P.root_key, next, 2, NULL, &len);
	nextca_ok(der, len, CT_NEXT, &set, 2);
	/* Content-Type does not matter: the bytes do. */
	nextca_ok(der, len, NULL, &set, 2);
	nextca_ok(der, len, "application/octet-stream", &set, 2);
	OPENSSL_free(der);
	/* Signer cert left out: we have it. SHA-1 as micromdm signs. */
	opt.no_signer_cert = 1;
	opt.digest = "SHA1";
	der = nextca_body(P.root, P.root_key, next + 1, 1, &opt, &len);
	nextca_ok(der, len, CT_NEXT, &set, 1);
	OPENSSL_free(der);
	scep_ca_set_free(&set);
}

/* The bag's SignedData without its ContentInfo, as CMS puts it under id-signedData. */
static unsigned char *bare_signeddata(X509 *const *certs, size_t n, size_t *len)
{
	unsigned char *ci = tp_bag_der(certs, n, len), *sd;
	const unsigned char *p = ci;
	long inner;
	int tag, xclass;

	/* ContentInfo SEQUENCE, OID, [0] EXPLICIT: what is left is the SignedData. */
	assert_int_equal(ASN1_get_object(&p, &inner, &tag, &xclass, (long)*len),
	    V_ASN1_CONSTRUCTED);
	assert_int_equal(ASN1_get_object(&p, &inner, &tag, &xclass, (long)*len - (p - ci)), 0);
	assert_int_equal(tag, V_ASN1_OBJECT);
	p += inner;
	assert_int_equal(ASN1_get_object(&p, &inner, &tag, &xclass, (long)*len - (p - ci)),
	    V_ASN1_CONSTRUCTED);
	assert_int_equal(xclass, V_ASN1_CONTEXT_SPECIFIC);
	assert_int_equal(p[0], 0x30);
	*len = (size_t)inner;
	sd = OPENSSL_memdup(p, *len);
	assert_non_null(sd);
	OPENSSL_free(ci);
	return sd;
}

static void test_nextca_econtent_signeddata(void **state)
{
	X509 *bag[] = { P.root };
	X509 *next[] = { P.next_root, P.next_ra };
	struct scep_ca_set set;
	struct tp_signed opt = { .econtent_signed = 1 };
	unsigned char *der, *sd;
	size_t len, sdlen;

	(void)state;
	make_set(bag, 1, &set);
	/* id-signedData with a ContentInfo inside, as some servers do. */
	der = nextca_body(P.root, P.root_key, next, 2, &opt, &len);
	nextca_ok(der, len, CT_NEXT, &set, 2);
	OPENSSL_free(der);
	/* id-signedData with the bare SignedData, as RFC 5652 reads. */
	sd = bare_signeddata(next, 2, &sdlen);
	opt.content = sd;
	opt.content_len = sdlen;
	der = nextca_body(P.root, P.root_key, next, 2, &opt, &len);
	nextca_ok(der, len, CT_NEXT, &set, 2);
	OPENSSL_free(der);
	/* The same bare SignedData with a byte after it. */
	{
		unsigned char *more = OPENSSL_malloc(sdlen + 1);

		assert_non_null(more);
		memcpy(more, sd, sdlen);
		more[sdlen] = 0;
		opt.content = more;
		opt.content_len = sdlen + 1;
		der = nextca_body(P.root, P.root_key, next, 2, &opt, &len);
		nextca_refused(der, len, &set, P11S_E_MALFORMED, "signed content");
		OPENSSL_free(der);
		OPENSSL_free(more);
	}
	OPENSSL_free(sd);
	scep_ca_set_free(&set);
}

static void test_nextca_foreign_signer(void **state)
{
	X509 *bag[] = { P.root };
	X509 *next[] = { P.next_root };
	struct scep_ca_set set;
	struct tp_signed opt = { 0 };
	unsigned char *der;
	size_t len;

	(void)state;
	make_set(bag, 1, &set);
	/* Another CA, its cert embedded. */
	der = nextca_body(P.other_root, P.other_key, next, 1, NULL, &len);
	nextca_refused(der, len, &set, P11S_E_UNTRUSTED, "not signed by the current CA");
	OPENSSL_free(der);
	/* Same name (and so issuer) as the current CA, another key. */
	der = nextca_body(P.impostor_root, P.other_key, next, 1, NULL, &len);
	nextca_refused(der, len, &set, P11S_E_UNTRUSTED, "current CA");
	OPENSSL_free(der);
	/* ...with the real CA cert embedded as well. */
	opt.extra = &P.root;
	opt.n_extra = 1;
	der = nextca_body(P.impostor_root, P.other_key, next, 1, &opt, &len);
	nextca_refused(der, len, &set, P11S_E_UNTRUSTED, "current CA");
	OPENSSL_free(der);
	/* A cert the current CA really issued, but not one of its signing certs. */
	der = nextca_body(P.leaf, P.leaf_key, next, 1, NULL, &len);
	nextca_refused(der, len, &set, P11S_E_UNTRUSTED, "current CA");
	OPENSSL_free(der);
	scep_ca_set_free(&set);
	/* Same issuer name and serial as the pinned CA, so CMS picks the real
	 * cert: only the signature tells them apart. */
	{
		struct tp_cert_spec a = { .cn = "Pinned CA", .key = P.root_key, .ca = 1,
		    .serial = 777 };
		struct tp_cert_spec b = { .cn = "Pinned CA", .key = P.other_key, .ca = 1,
		    .serial = 777 };
		X509 *real = tp_cert(&a), *fake = tp_cert(&b);

		make_set_pin(&real, 1, real, &set);
		der = nextca_body(fake, P.other_key, next, 1, NULL, &len);
		nextca_refused(der, len, &set, P11S_E_UNTRUSTED, "CN=Pinned CA");
		OPENSSL_free(der);
		der = nextca_body(real, P.root_key, next, 1, NULL, &len);
		nextca_ok(der, len, CT_NEXT, &set, 1);
		OPENSSL_free(der);
		scep_ca_set_free(&set);
		X509_free(real);
		X509_free(fake);
	}
	make_set(bag, 1, &set);
	/* The new CA vouching for itself. */
	der = nextca_body(P.next_root, P.next_key, next, 1, NULL, &len);
	nextca_refused(der, len, &set, P11S_E_UNTRUSTED, "current CA");
	OPENSSL_free(der);
	scep_ca_set_free(&set);
}

static void test_nextca_ndes(void **state)
{
	X509 *bag[] = { P.ra_enc, P.root, P.ra_sig };
	X509 *next[] = { P.next_root, P.next_ra };
	struct scep_ca_set set;
	unsigned char *der;
	size_t len;

	(void)state;
	make_set(bag, 3, &set);
	der = nextca_body(P.ra_sig, P.sig_key, next, 2, NULL, &len);
	nextca_ok(der, len, CT_NEXT, &set, 2);
	OPENSSL_free(der);
	der = nextca_body(P.root, P.root_key, next, 2, NULL, &len);
	nextca_ok(der, len, CT_NEXT, &set, 2);
	OPENSSL_free(der);
	/* The encryption RA does not sign for the CA. */
	der = nextca_body(P.ra_enc, P.enc_key, next, 2, NULL, &len);
	nextca_refused(der, len, &set, P11S_E_UNTRUSTED, "current CA");
	OPENSSL_free(der);
	scep_ca_set_free(&set);
}

/* Certificates outside the signed content are not covered by the signature. */
static void test_nextca_outer_certs_ignored(void **state)
{
	X509 *bag[] = { P.root };
	X509 *next[] = { P.next_root };
	X509 *planted[] = { P.other_root, P.fake_ra };
	struct scep_ca_set set;
	struct tp_signed opt = { .extra = planted, .n_extra = 2 };
	STACK_OF(X509) *out;
	unsigned char *der;
	size_t len;

	(void)state;
	make_set(bag, 1, &set);
	der = nextca_body(P.root, P.root_key, next, 1, &opt, &len);
	assert_int_equal(nextca(der, len, CT_NEXT, &set, &out), P11S_OK);
	assert_int_equal(sk_X509_num(out), 1);
	assert_int_equal(X509_cmp(sk_X509_value(out, 0), P.next_root), 0);
	assert_false(holds(out, P.other_root));
	assert_false(holds(out, P.root));	/* the signer's own cert neither */
	sk_X509_pop_free(out, X509_free);
	OPENSSL_free(der);
	scep_ca_set_free(&set);
}

static void test_nextca_tampered(void **state)
{
	X509 *bag[] = { P.root };
	X509 *next[] = { P.next_root };
	struct scep_ca_set set;
	unsigned char *der, *cert, *at;
	size_t len, clen;

	(void)state;
	make_set(bag, 1, &set);
	der = nextca_body(P.root, P.root_key, next, 1, NULL, &len);
	cert = tp_cert_der(P.next_root, &clen);
	at = memmem(der, len, cert, clen);
	assert_non_null(at);
	at[clen - 20] ^= 0x01;	/* inside the new CA's signature: still valid DER */
	nextca_refused(der, len, &set, P11S_E_UNTRUSTED, "not signed by the current CA");
	OPENSSL_free(cert);
	OPENSSL_free(der);
	scep_ca_set_free(&set);
}

static void test_nextca_garbage(void **state)
{
	X509 *bag[] = { P.root };
	X509 *next[] = { P.next_root, P.next_ra };
	struct scep_ca_set set;
	unsigned char *der, *big, rnd[600];
	size_t len, cut;

	(void)state;
	make_set(bag, 1, &set);
	der = nextca_body(P.root, P.root_key, next, 2, NULL, &len);
	for (cut = 0; cut < len; cut += (cut < 64 ? 1 : 37))
		nextca_refused(der, cut, &set, P11S_E_MALFORMED, NULL);
	nextca_refused(der, len - 1, &set, P11S_E_MALFORMED, NULL);
	big = malloc(len + 2);
	assert_non_null(big);
	memcpy(big, der, len);
	big[len] = big[len + 1] = 0;
	nextca_refused(big, len + 2, &set, P11S_E_MALFORMED, "2 bytes after");
	free(big);
	nextca_refused(NULL, 0, &set, P11S_E_MALFORMED, "empty");
	assert_int_equal(RAND_bytes(rnd, sizeof(rnd)), 1);
	rnd[0] = 0x04;
	nextca_refused(rnd, sizeof(rnd), &set, P11S_E_MALFORMED, NULL);
	rnd[0] = 0x30;
	rnd[1] = 0x82;
	rnd[2] = 0x02;
	rnd[3] = 0x54;
	rnd[4] = 0x06;	/* looks like a ContentInfo, is not */
	nextca_refused(rnd, sizeof(rnd), &set, P11S_E_MALFORMED, NULL);
	nextca_refused((const unsigned char *)"<html>", 6, &set, P11S_E_MALFORMED,
	    "not a complete PKCS#7");
	OPENSSL_free(der);
	scep_ca_set_free(&set);
}

static void test_nextca_unsigned(void **state)
{
	X509 *bag[] = { P.root };
	X509 *next[] = { P.next_root };
	struct scep_ca_set set;
	unsigned char *der;
	size_t len;

	(void)state;
	make_set(bag, 1, &set);
	der = tp_cert_der(P.next_root, &len);
	nextca_refused(der, len, &set, P11S_E_UNTRUSTED, "bare certificate");
	OPENSSL_free(der);
	der = tp_bag_der(next, 1, &len);
	nextca_refused(der, len, &set, P11S_E_UNTRUSTED, "not signed");
	OPENSSL_free(der);
	scep_ca_set_free(&set);
}

static void test_nextca_bad_content(void **state)
{
	X509 *bag[] = { P.root };
	X509 *ras[] = { P.next_ra };
	X509 *many[65];
	struct scep_ca_set set;
	struct tp_signed opt = { 0 };
	unsigned char *der;
	size_t len, i;

	(void)state;
	make_set(bag, 1, &set);
	/* Signed, but the content is not a certificate bag. */
	opt.content = (const unsigned char *)"hello";
	opt.content_len = 5;
	der = nextca_body(P.root, P.root_key, ras, 1, &opt, &len);
	nextca_refused(der, len, &set, P11S_E_MALFORMED, "signed content");
	OPENSSL_free(der);
	/* No signed content at all. */
	memset(&opt, 0, sizeof(opt));
	opt.detached = 1;
	der = nextca_body(P.root, P.root_key, ras, 1, &opt, &len);
	nextca_refused(der, len, &set, P11S_E_MALFORMED, "no signed content");
	OPENSSL_free(der);
	/* A bag without a CA, an empty bag, too big a bag. */
	der = nextca_body(P.root, P.root_key, ras, 1, NULL, &len);
	nextca_refused(der, len, &set, P11S_E_MALFORMED, "no CA certificate");
	OPENSSL_free(der);
	der = nextca_body(P.root, P.root_key, NULL, 0, NULL, &len);
	nextca_refused(der, len, &set, P11S_E_MALFORMED, "holds 0 certificates");
	OPENSSL_free(der);
	for (i = 0; i < 65; i++)
		many[i] = P.next_root;
	der = nextca_body(P.root, P.root_key, many, 65, NULL, &len);
	nextca_refused(der, len, &set, P11S_E_MALFORMED, "65 certificates");
	OPENSSL_free(der);
	/* MD5 is never good enough to sign a new CA. */
	memset(&opt, 0, sizeof(opt));
	opt.digest = "MD5";
	der = nextca_body(P.root, P.root_key, many, 1, &opt, &len);
	nextca_refused(der, len, &set, P11S_E_UNTRUSTED, "MD5");
	OPENSSL_free(der);
	scep_ca_set_free(&set);
	/* No set at all is a caller's bug. */
	{
		STACK_OF(X509) *out;

		assert_int_equal(nextca(der, 0, CT_NEXT, NULL, &out), P11S_E_INTERNAL);
		assert_null(out);
	}
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
		cmocka_unit_test_setup(test_nextca_signed_by_ca, setup),
		cmocka_unit_test_setup(test_nextca_econtent_signeddata, setup),
		cmocka_unit_test_setup(test_nextca_foreign_signer, setup),
		cmocka_unit_test_setup(test_nextca_ndes, setup),
		cmocka_unit_test_setup(test_nextca_outer_certs_ignored, setup),
		cmocka_unit_test_setup(test_nextca_tampered, setup),
		cmocka_unit_test_setup(test_nextca_garbage, setup),
		cmocka_unit_test_setup(test_nextca_unsigned, setup),
		cmocka_unit_test_setup(test_nextca_bad_content, setup),
	};

	(void)argc;
	tp_init(argv[0]);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
