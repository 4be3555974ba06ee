#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "csr.h"
#include "scep_msg.h"
#include "testpki.h"

#define OID_MSGTYPE	"2.16.840.1.113733.1.9.2"
#define OID_SNONCE	"2.16.840.1.113733.1.9.5"
#define OID_TXID	"2.16.840.1.113733.1.9.7"

/* One more CRL than a reply may carry (MSG_MAX_CRLS in scep_msg.c). */
#define MSG_TEST_MANY_CRLS	17

/* What the real micromdm capture (tests/unit/data/README) was made with. */
#define MICROMDM_TXID	"384955D4F36E8B0C396D22C9CABC1FE3D0B508599B9FBBB5A1852FB96E35DC79"
#define MICROMDM_NONCE	"1a6e5d7885bd36244f8d025622668811"
#define MICROMDM_FAIL_TXID "40C96E3EA8D007BF50B0F20609AF90ECB73560C40781B65A9787B87C6E2EB128"
#define MICROMDM_FAIL_NONCE "cbc6a322cb2df064f9a7f83536eed27f"

static struct {
	EVP_PKEY *ca_key, *ra_key, *our_key, *evil_key, *other_key;
	X509 *ca, *ra_sig, *evil, *other, *signer, *issued;
	X509_REQ *req;
	unsigned char *csr_der;
	size_t csr_len;
	struct scep_txn txn;
} T;

static int group_setup(void **state)
{
	struct csr_params p = { .subject = "CN=client.example,O=p11scep test",
	    .challenge = "secret", .digest = "SHA256" };
	int n;

	(void)state;
	T.ca_key = tp_key();
	T.ra_key = tp_key();
	T.our_key = tp_key();
	T.evil_key = tp_key();
	T.other_key = tp_key();
	{
		struct tp_cert_spec s = { .cn = "Test SCEP CA", .key = T.ca_key, .ca = 1,
		    .serial = 4242 };

		T.ca = tp_cert(&s);
	}
	T.ra_sig = tp_leaf(T.ra_key, "Test SCEP RA", T.ca, T.ca_key,
	    KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
	/* Same name and serial as the CA, another key: an impostor. */
	{
		struct tp_cert_spec s = { .cn = "Test SCEP CA", .key = T.evil_key, .ca = 1,
		    .serial = 4242 };

		T.evil = tp_cert(&s);
	}
	T.other = tp_leaf(T.other_key, "someone else", T.ca, T.ca_key, KU_KEY_ENCIPHERMENT);
	if (csr_build(&p, T.our_key, &T.req) != P11S_OK ||
	    signer_cert_build(T.req, T.our_key, "SHA256", &T.signer) != P11S_OK)
		return -1;
	T.issued = tp_leaf(T.our_key, "client.example", T.ca, T.ca_key,
	    KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
	T.csr_der = NULL;
	n = i2d_X509_REQ(T.req, &T.csr_der);
	if (n <= 0)
		return -1;
	T.csr_len = (size_t)n;
	if (scep_txid_from_key(T.our_key, T.txn.txid) != P11S_OK ||
	    scep_new_nonce(T.txn.sender_nonce) != P11S_OK)
		return -1;
	return 0;
}

static int ec_teardown(void **state);

static int group_teardown(void **state)
{
	ec_teardown(state);
	X509_free(T.ca);
	X509_free(T.ra_sig);
	X509_free(T.evil);
	X509_free(T.other);
	X509_free(T.signer);
	X509_free(T.issued);
	X509_REQ_free(T.req);
	OPENSSL_free(T.csr_der);
	EVP_PKEY_free(T.ca_key);
	EVP_PKEY_free(T.ra_key);
	EVP_PKEY_free(T.our_key);
	EVP_PKEY_free(T.evil_key);
	EVP_PKEY_free(T.other_key);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	err_clear();
	return 0;
}

/* ---- helpers ---- */

static void hex_to_bytes(const char *hex, unsigned char *out, size_t n)
{
	size_t i;
	unsigned int v;

	assert_int_equal(strlen(hex), 2 * n);
	for (i = 0; i < n; i++) {
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (unsigned char)v;
	}
}

static ASN1_TYPE *attr(CMS_SignerInfo *si, const char *oid)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	int i = CMS_signed_get_attr_by_OBJ(si, obj, -1);
	X509_ATTRIBUTE *a;

	ASN1_OBJECT_free(obj);
	if (i < 0)
		return NULL;
	a = CMS_signed_get_attr(si, i);
	assert_int_equal(X509_ATTRIBUTE_count(a), 1);
	return X509_ATTRIBUTE_get0_type(a, 0);
}

static void attr_is(CMS_SignerInfo *si, const char *oid, int type, const void *v, size_t n)
{
	ASN1_TYPE *t = attr(si, oid);

	assert_non_null(t);
	assert_int_equal(ASN1_TYPE_get(t), type);
	assert_int_equal(ASN1_STRING_length(t->value.asn1_string), (int)n);
	assert_memory_equal(ASN1_STRING_get0_data(t->value.asn1_string), v, n);
}

/* What a server learns from a PKCSReq. */
struct decoded {
	unsigned char *content;		/* decrypted: the CSR */
	size_t content_len;
	int cipher_nid;
	int digest_nid;
	X509 *signer;			/* embedded signer cert */
};

static void decoded_free(struct decoded *d)
{
	OPENSSL_free(d->content);
	X509_free(d->signer);
	memset(d, 0, sizeof(*d));
}

static int envelope_cipher_nid(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)len);
	int nid;

	assert_non_null(p7);
	assert_int_equal(OBJ_obj2nid(p7->type), NID_pkcs7_enveloped);
	nid = OBJ_obj2nid(p7->d.enveloped->enc_data->algorithm->algorithm);
	PKCS7_free(p7);
	return nid;
}

/*
 * Decode a request as a SCEP server does: verify the signature with the
 * embedded signer cert, read the attributes, decrypt with the CA/RA key.
 */
static void server_decode(const unsigned char *der, size_t len, EVP_PKEY *dkey, X509 *dcert,
			  enum scep_msgtype type, struct decoded *d)
{
	const unsigned char *p = der;
	CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)len), *env;
	STACK_OF(CMS_SignerInfo) *sis;
	STACK_OF(X509) *certs;
	STACK_OF(CMS_RecipientInfo) *ris;
	CMS_SignerInfo *si;
	CMS_RecipientInfo *ri;
	X509_ALGOR *dig;
	ASN1_OCTET_STRING *keyid = NULL;
	X509_NAME *issuer = NULL;
	ASN1_INTEGER *sno = NULL;
	BIO *envbio = BIO_new(BIO_s_mem()), *plain = BIO_new(BIO_s_mem());
	unsigned char *env_der;
	char typestr[8];
	long n;

	memset(d, 0, sizeof(*d));
	assert_non_null(cms);
	assert_ptr_equal(p, der + len);
	assert_int_equal(OBJ_obj2nid(CMS_get0_type(cms)), NID_pkcs7_signed);
	assert_int_equal(OBJ_obj2nid(CMS_get0_eContentType(cms)), NID_pkcs7_data);
	sis = CMS_get0_SignerInfos(cms);
	assert_int_equal(sk_CMS_SignerInfo_num(sis), 1);
	si = sk_CMS_SignerInfo_value(sis, 0);
	certs = CMS_get1_certs(cms);
	assert_int_equal(sk_X509_num(certs), 1);
	d->signer = sk_X509_shift(certs);
	sk_X509_pop_free(certs, X509_free);
	assert_int_equal(CMS_verify(cms, NULL, NULL, NULL, envbio,
	    CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY), 1);
	CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, NULL);
	d->digest_nid = OBJ_obj2nid(dig->algorithm);

	/* Signed attributes a server needs; no S/MIME capabilities. */
	snprintf(typestr, sizeof(typestr), "%d", (int)type);
	attr_is(si, OID_MSGTYPE, V_ASN1_PRINTABLESTRING, typestr, strlen(typestr));
	attr_is(si, OID_TXID, V_ASN1_PRINTABLESTRING, T.txn.txid, strlen(T.txn.txid));
	attr_is(si, OID_SNONCE, V_ASN1_OCTET_STRING, T.txn.sender_nonce, SCEP_NONCE_LEN);
	assert_true(CMS_signed_get_attr_by_NID(si, NID_pkcs9_contentType, -1) >= 0);
	assert_true(CMS_signed_get_attr_by_NID(si, NID_pkcs9_messageDigest, -1) >= 0);
	assert_true(CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1) >= 0);
	assert_true(CMS_signed_get_attr_by_NID(si, NID_SMIMECapabilities, -1) < 0);
	assert_int_equal(CMS_signed_get_attr_count(si), 6);

	n = BIO_get_mem_data(envbio, (char **)&env_der);
	assert_true(n > 0);
	d->cipher_nid = envelope_cipher_nid(env_der, (size_t)n);
	p = env_der;
	env = d2i_CMS_ContentInfo(NULL, &p, n);
	assert_non_null(env);
	assert_ptr_equal(p, env_der + n);
	ris = CMS_get0_RecipientInfos(env);
	assert_int_equal(sk_CMS_RecipientInfo_num(ris), 1);
	ri = sk_CMS_RecipientInfo_value(ris, 0);
	assert_int_equal(CMS_RecipientInfo_type(ri), CMS_RECIPINFO_TRANS);
	assert_int_equal(CMS_RecipientInfo_ktri_get0_signer_id(ri, &keyid, &issuer, &sno), 1);
	assert_null(keyid);		/* issuerAndSerialNumber, not a key id */
	assert_non_null(issuer);
	assert_int_equal(CMS_RecipientInfo_ktri_cert_cmp(ri, dcert), 0);
	assert_int_equal(CMS_decrypt(env, dkey, dcert, NULL, plain,
	    CMS_BINARY | CMS_DEBUG_DECRYPT), 1);
	n = BIO_get_mem_data(plain, (char **)&env_der);
	d->content = OPENSSL_memdup(env_der, (size_t)n);
	d->content_len = (size_t)n;
	CMS_ContentInfo_free(env);
	CMS_ContentInfo_free(cms);
	BIO_free(envbio);
	BIO_free(plain);
}

static unsigned char *build_req(const char *cipher, const char *digest, X509 *to,
				enum scep_msgtype type, size_t *len)
{
	struct scep_request r = {
		.type = type,
		.content = T.csr_der, .content_len = T.csr_len,
		.signer_cert = T.signer, .signer_key = T.our_key,
		.recipient = to, .cipher = cipher, .digest = digest, .txn = &T.txn,
	};
	unsigned char *der = NULL;

	if (scep_request_build(&r, &der, len) != P11S_OK)
		fail_msg("scep_request_build: %s", err_msg());
	return der;
}

static void roundtrip(const char *cipher, const char *digest, int cipher_nid, int digest_nid,
		      X509 *to, EVP_PKEY *to_key)
{
	struct decoded d;
	unsigned char *der;
	size_t len;
	const unsigned char *p;
	X509_REQ *back;

	der = build_req(cipher, digest, to, MSG_PKCSREQ, &len);
	server_decode(der, len, to_key, to, MSG_PKCSREQ, &d);
	assert_int_equal(d.cipher_nid, cipher_nid);
	assert_int_equal(d.digest_nid, digest_nid);
	assert_int_equal(X509_cmp(d.signer, T.signer), 0);
	assert_int_equal(d.content_len, T.csr_len);
	assert_memory_equal(d.content, T.csr_der, T.csr_len);
	p = d.content;
	back = d2i_X509_REQ(NULL, &p, (long)d.content_len);
	assert_non_null(back);
	assert_int_equal(X509_REQ_verify(back, T.our_key), 1);
	X509_REQ_free(back);
	decoded_free(&d);
	OPENSSL_free(der);
}

/* ---- tests: identifiers ---- */

static void test_txid(void **state)
{
	char a[SCEP_TXID_MAX], b[SCEP_TXID_MAX], want[SCEP_TXID_MAX];
	unsigned char *der = NULL, md[32];
	unsigned int mdlen, i;
	int n;

	(void)state;
	assert_int_equal(scep_txid_from_key(T.our_key, a), P11S_OK);
	assert_int_equal(scep_txid_from_key(T.our_key, b), P11S_OK);
	assert_string_equal(a, b);
	assert_int_equal(strlen(a), 64);
	n = i2d_PUBKEY(T.our_key, &der);
	assert_true(n > 0);
	assert_int_equal(EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL), 1);
	for (i = 0; i < 32; i++)
		snprintf(want + 2 * i, 3, "%02X", md[i]);
	assert_string_equal(a, want);
	assert_int_equal(scep_txid_from_key(T.ca_key, b), P11S_OK);
	assert_string_not_equal(a, b);
	OPENSSL_free(der);
}

static void test_nonce(void **state)
{
	unsigned char a[SCEP_NONCE_LEN], b[SCEP_NONCE_LEN];

	(void)state;
	assert_int_equal(scep_new_nonce(a), P11S_OK);
	assert_int_equal(scep_new_nonce(b), P11S_OK);
	assert_memory_not_equal(a, b, SCEP_NONCE_LEN);
}

static void test_failinfo_names(void **state)
{
	(void)state;
	assert_string_equal(scep_failinfo_name(FAIL_BADALG), "badAlg");
	assert_string_equal(scep_failinfo_name(FAIL_BADMESSAGECHECK), "badMessageCheck");
	assert_string_equal(scep_failinfo_name(FAIL_BADREQUEST), "badRequest");
	assert_string_equal(scep_failinfo_name(FAIL_BADTIME), "badTime");
	assert_string_equal(scep_failinfo_name(FAIL_BADCERTID), "badCertId");
	assert_string_equal(scep_failinfo_name(FAIL_NONE), "none");
	assert_string_equal(scep_failinfo_name(42), "unknown");
}

/* ---- tests: requests ---- */

static void test_request_aes128_sha256(void **state)
{
	(void)state;
	roundtrip("AES-128-CBC", "SHA256", NID_aes_128_cbc, NID_sha256, T.ca, T.ca_key);
}

static void test_request_aes256_sha512(void **state)
{
	(void)state;
	roundtrip("AES-256-CBC", "SHA512", NID_aes_256_cbc, NID_sha512, T.ca, T.ca_key);
}

static void test_request_des3_sha1(void **state)
{
	(void)state;
	roundtrip("DES-EDE3-CBC", "SHA1", NID_des_ede3_cbc, NID_sha1, T.ca, T.ca_key);
}

static void test_request_to_ra(void **state)
{
	(void)state;
	roundtrip("AES-128-CBC", "SHA256", NID_aes_128_cbc, NID_sha256, T.ra_sig, T.ra_key);
}

/* A request of type with content, signed by cert/key, as a server decodes it. */
static void other_request(enum scep_msgtype type, const unsigned char *content, size_t clen,
			  X509 *cert, EVP_PKEY *key)
{
	struct scep_request r = {
		.type = type, .content = content, .content_len = clen,
		.signer_cert = cert, .signer_key = key,
		.recipient = T.ca, .cipher = "AES-128-CBC", .digest = "SHA256", .txn = &T.txn,
	};
	struct decoded d;
	unsigned char *der = NULL;
	size_t len = 0;

	if (scep_request_build(&r, &der, &len) != P11S_OK)
		fail_msg("scep_request_build(%d): %s", (int)type, err_msg());
	server_decode(der, len, T.ca_key, T.ca, type, &d);
	assert_int_equal(X509_cmp(d.signer, cert), 0);
	assert_int_equal(d.content_len, clen);
	assert_memory_equal(d.content, content, clen);
	decoded_free(&d);
	OPENSSL_free(der);
}

static void test_request_certpoll(void **state)
{
	const X509_NAME *subj = X509_REQ_get_subject_name(T.req);
	unsigned char *ias = NULL;
	const unsigned char *p;
	size_t len = 0;
	long inner;
	int tag, xclass;
	X509_NAME *issuer, *subject;

	(void)state;
	assert_int_equal(scep_issuer_and_subject_der(X509_get_subject_name(T.ca), subj,
	    &ias, &len), P11S_OK);
	other_request(MSG_CERTPOLL, ias, len, T.signer, T.our_key);
	/* The content names the CA and our request's subject. */
	p = ias;
	assert_int_equal(ASN1_get_object(&p, &inner, &tag, &xclass, (long)len),
	    V_ASN1_CONSTRUCTED);
	assert_int_equal(tag, V_ASN1_SEQUENCE);
	issuer = d2i_X509_NAME(NULL, &p, (long)len - (p - ias));
	subject = d2i_X509_NAME(NULL, &p, (long)len - (p - ias));
	assert_non_null(issuer);
	assert_non_null(subject);
	assert_ptr_equal(p, ias + len);
	assert_int_equal(X509_NAME_cmp(issuer, X509_get_subject_name(T.ca)), 0);
	assert_int_equal(X509_NAME_cmp(subject, subj), 0);
	X509_NAME_free(issuer);
	X509_NAME_free(subject);
	OPENSSL_free(ias);
}

static void test_request_getcert_getcrl(void **state)
{
	unsigned char *ias = NULL;
	const unsigned char *p;
	size_t len = 0;
	PKCS7_ISSUER_AND_SERIAL *back;

	(void)state;
	assert_int_equal(scep_issuer_and_serial_der(X509_get_issuer_name(T.issued),
	    X509_get0_serialNumber(T.issued), &ias, &len), P11S_OK);
	other_request(MSG_GETCERT, ias, len, T.signer, T.our_key);
	/* GetCRL names a cert the same way; signed with the CA-issued cert. */
	other_request(MSG_GETCRL, ias, len, T.issued, T.our_key);
	p = ias;
	back = d2i_PKCS7_ISSUER_AND_SERIAL(NULL, &p, (long)len);
	assert_non_null(back);
	assert_ptr_equal(p, ias + len);
	assert_int_equal(X509_NAME_cmp(back->issuer, X509_get_subject_name(T.ca)), 0);
	assert_int_equal(ASN1_INTEGER_cmp(back->serial, X509_get0_serialNumber(T.issued)), 0);
	PKCS7_ISSUER_AND_SERIAL_free(back);
	OPENSSL_free(ias);
}

/* RenewalReq: a new key's CSR, signed with the CA-issued cert and its old key. */
static void test_request_renewal(void **state)
{
	struct csr_params cp = { .subject = "CN=client.example,O=p11scep test",
	    .digest = "SHA256" };
	X509_REQ *req = NULL;
	unsigned char *csr = NULL;
	const unsigned char *p;
	X509_REQ *back;
	int n;

	(void)state;
	/* Nothing may depend on a self-signed signer. */
	assert_int_not_equal(X509_check_issued(T.issued, T.issued), X509_V_OK);
	assert_int_equal(csr_build(&cp, T.other_key, &req), P11S_OK);
	n = i2d_X509_REQ(req, &csr);
	assert_true(n > 0);
	other_request(MSG_RENEWALREQ, csr, (size_t)n, T.issued, T.our_key);
	other_request(MSG_PKCSREQ, csr, (size_t)n, T.issued, T.our_key);	/* interop mode */
	p = csr;
	back = d2i_X509_REQ(NULL, &p, n);
	assert_non_null(back);
	assert_int_equal(X509_REQ_verify(back, T.other_key), 1);
	X509_REQ_free(back);
	X509_REQ_free(req);
	OPENSSL_free(csr);
}

static X509_NAME *printable_name(const char *cn)
{
	X509_NAME *n = X509_NAME_new();

	assert_non_null(n);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", V_ASN1_PRINTABLESTRING,
	    (const unsigned char *)cn, -1, -1, 0), 1);
	return n;
}

static void test_issuer_and_subject_bytes(void **state)
{
	/* SEQUENCE { Name CN=CA, Name CN=me }, PrintableStrings, by hand from X.690. */
	static const unsigned char want[] = {
		0x30, 0x1e,
		0x30, 0x0d, 0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x03,
		0x13, 0x02, 'C', 'A',
		0x30, 0x0d, 0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x03,
		0x13, 0x02, 'm', 'e',
	};
	X509_NAME *ca = printable_name("CA"), *me = printable_name("me"), *empty;
	unsigned char *der = (unsigned char *)1;
	size_t len = 1;

	(void)state;
	assert_int_equal(scep_issuer_and_subject_der(ca, me, &der, &len), P11S_OK);
	assert_int_equal(len, sizeof(want));
	assert_memory_equal(der, want, sizeof(want));
	OPENSSL_free(der);

	/* An empty subject is a valid Name (SAN-only requests); an empty CA is not. */
	empty = X509_NAME_new();
	assert_non_null(empty);
	assert_int_equal(scep_issuer_and_subject_der(ca, empty, &der, &len), P11S_OK);
	assert_int_equal(len, 2 + 15 + 2);
	assert_memory_equal(der + len - 2, "\x30\x00", 2);
	OPENSSL_free(der);
	der = (unsigned char *)1;
	assert_int_equal(scep_issuer_and_subject_der(empty, me, &der, &len), P11S_E_USAGE);
	assert_null(der);
	assert_int_equal(len, 0);
	err_clear();
	der = (unsigned char *)1;
	assert_int_equal(scep_issuer_and_subject_der(NULL, me, &der, &len), P11S_E_INTERNAL);
	assert_null(der);
	err_clear();
	assert_int_equal(scep_issuer_and_subject_der(ca, NULL, &der, &len), P11S_E_INTERNAL);
	X509_NAME_free(ca);
	X509_NAME_free(me);
	X509_NAME_free(empty);
}

static void serial_is(const X509_NAME *issuer, const ASN1_INTEGER *serial,
		      const unsigned char *want_int, size_t want_len)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t len = 0;
	PKCS7_ISSUER_AND_SERIAL *back;

	if (scep_issuer_and_serial_der(issuer, serial, &der, &len) != P11S_OK)
		fail_msg("scep_issuer_and_serial_der: %s", err_msg());
	/* SEQUENCE { Name CN=CA (15 bytes), INTEGER } */
	assert_int_equal(len, 2 + 15 + want_len);
	assert_int_equal(der[0], 0x30);
	assert_int_equal(der[1], 15 + want_len);
	assert_memory_equal(der + 2, "\x30\x0d\x31\x0b\x30\x09\x06\x03\x55\x04\x03\x13\x02" "CA",
	    15);
	assert_memory_equal(der + 17, want_int, want_len);
	p = der;
	back = d2i_PKCS7_ISSUER_AND_SERIAL(NULL, &p, (long)len);
	assert_non_null(back);
	assert_ptr_equal(p, der + len);
	assert_int_equal(X509_NAME_cmp(back->issuer, issuer), 0);
	assert_int_equal(ASN1_INTEGER_cmp(back->serial, serial), 0);
	PKCS7_ISSUER_AND_SERIAL_free(back);
	OPENSSL_free(der);
}

static void test_issuer_and_serial_bytes(void **state)
{
	X509_NAME *ca = printable_name("CA"), *empty = X509_NAME_new();
	ASN1_INTEGER *sn = ASN1_INTEGER_new();
	BIGNUM *bn = NULL;
	unsigned char big[2 + 20], *der = (unsigned char *)1;
	size_t len = 1;

	(void)state;
	assert_non_null(sn);
	assert_non_null(empty);
	assert_int_equal(ASN1_INTEGER_set(sn, 4242), 1);
	serial_is(ca, sn, (const unsigned char *)"\x02\x02\x10\x92", 4);
	assert_int_equal(ASN1_INTEGER_set(sn, 128), 1);	/* needs a leading zero */
	serial_is(ca, sn, (const unsigned char *)"\x02\x02\x00\x80", 4);
	assert_int_equal(ASN1_INTEGER_set(sn, 1), 1);
	serial_is(ca, sn, (const unsigned char *)"\x02\x01\x01", 3);
	assert_int_equal(ASN1_INTEGER_set(sn, -2), 1);	/* broken CAs issue these */
	serial_is(ca, sn, (const unsigned char *)"\x02\x01\xfe", 3);
	/* 20 bytes, top bit clear: RFC 5280's largest. */
	big[0] = 0x02;
	big[1] = 20;
	memset(big + 2, 0x7f, 20);
	assert_non_null(BN_hex2bn(&bn, "7F7F7F7F7F7F7F7F7F7F7F7F7F7F7F7F7F7F7F7F"));
	ASN1_INTEGER_free(sn);
	sn = BN_to_ASN1_INTEGER(bn, NULL);
	assert_non_null(sn);
	serial_is(ca, sn, big, sizeof(big));

	/* Refusals clear the outputs. */
	assert_int_equal(scep_issuer_and_serial_der(empty, sn, &der, &len), P11S_E_USAGE);
	assert_null(der);
	assert_int_equal(len, 0);
	err_clear();
	assert_int_equal(scep_issuer_and_serial_der(ca, NULL, &der, &len), P11S_E_INTERNAL);
	err_clear();
	assert_int_equal(scep_issuer_and_serial_der(NULL, sn, &der, &len), P11S_E_INTERNAL);
	err_clear();
	ASN1_INTEGER_free(sn);
	sn = ASN1_INTEGER_new();	/* no bytes at all */
	assert_int_equal(scep_issuer_and_serial_der(ca, sn, &der, &len), P11S_E_USAGE);
	assert_null(der);
	BN_free(bn);
	ASN1_INTEGER_free(sn);
	X509_NAME_free(ca);
	X509_NAME_free(empty);
}

static void request_bad(const char *cipher, const char *digest, enum scep_msgtype type,
			enum p11s_err want)
{
	struct scep_request r = {
		.type = type,
		.content = T.csr_der, .content_len = T.csr_len,
		.signer_cert = T.signer, .signer_key = T.our_key,
		.recipient = T.ca, .cipher = cipher, .digest = digest, .txn = &T.txn,
	};
	unsigned char *der = (unsigned char *)1;
	size_t len = 1;

	err_clear();
	assert_int_equal(scep_request_build(&r, &der, &len), want);
	assert_null(der);
	assert_int_equal(len, 0);
	assert_string_not_equal(err_msg(), "");
}

static void test_request_refusals(void **state)
{
	struct scep_request r = { 0 };
	unsigned char *der = NULL;
	size_t len;

	(void)state;
	request_bad("DES-CBC", "SHA256", MSG_PKCSREQ, P11S_E_USAGE);
	request_bad("RC2-CBC", "SHA256", MSG_PKCSREQ, P11S_E_USAGE);
	request_bad("AES-128-GCM", "SHA256", MSG_PKCSREQ, P11S_E_USAGE);
	request_bad("NO-SUCH-CIPHER", "SHA256", MSG_PKCSREQ, P11S_E_USAGE);
	request_bad(NULL, "SHA256", MSG_PKCSREQ, P11S_E_USAGE);
	request_bad("AES-128-CBC", "MD5", MSG_PKCSREQ, P11S_E_USAGE);
	request_bad("AES-128-CBC", NULL, MSG_PKCSREQ, P11S_E_USAGE);
	request_bad("AES-128-CBC", "SHA256", MSG_CERTREP, P11S_E_INTERNAL);
	err_clear();
	assert_int_equal(scep_request_build(&r, &der, &len), P11S_E_INTERNAL);
	assert_null(der);
}

static void test_request_wrong_signer_key(void **state)
{
	struct scep_request r = {
		.type = MSG_PKCSREQ,
		.content = T.csr_der, .content_len = T.csr_len,
		.signer_cert = T.signer, .signer_key = T.other_key,
		.recipient = T.ca, .cipher = "AES-128-CBC", .digest = "SHA256", .txn = &T.txn,
	};
	unsigned char *der = NULL;
	size_t len;

	(void)state;
	assert_int_not_equal(scep_request_build(&r, &der, &len), P11S_OK);
	assert_null(der);
}

/* ---- tests: replies ---- */

static struct tp_certrep base_rep(const char *status)
{
	struct tp_certrep r = {
		.signer_cert = T.ca, .signer_key = T.ca_key,
		.status = status,
		.txid = T.txn.txid,
		.recipient_nonce = T.txn.sender_nonce,
		.recipient_nonce_len = SCEP_NONCE_LEN,
	};

	return r;
}

static struct scep_reply_check base_check(void)
{
	struct scep_reply_check c = {
		.reply_signer = T.ca, .txn = &T.txn,
		.our_cert = T.signer, .our_key = T.our_key,
	};

	return c;
}

static enum p11s_err parse_rep(const struct tp_certrep *tr, const struct scep_reply_check *c,
			       struct scep_reply *out)
{
	unsigned char *der;
	size_t len;
	enum p11s_err e;

	der = tp_certrep_der(tr, &len);
	e = scep_reply_parse(der, len, c, out);
	OPENSSL_free(der);
	return e;
}

static void rep_refused(const struct tp_certrep *tr, const struct scep_reply_check *c,
			enum p11s_err want, const char *msg_part)
{
	struct scep_reply out;

	err_clear();
	assert_int_equal(parse_rep(tr, c, &out), want);
	assert_null(out.certs);
	assert_null(out.fail_text);
	if (msg_part != NULL && strstr(err_msg(), msg_part) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", err_msg(), msg_part);
	if (getenv("SHOW_MESSAGES") != NULL)
		print_message("    message: %s\n", err_msg());
}

static void test_reply_success(void **state)
{
	X509 *issued[] = { T.issued, T.ca };
	struct tp_certrep tr = base_rep("0");
	struct scep_reply_check c = base_check();
	struct scep_reply out;
	X509 *mine;

	(void)state;
	tr.recipient = T.signer;
	tr.issued = issued;
	tr.n_issued = 2;
	assert_int_equal(parse_rep(&tr, &c, &out), P11S_OK);
	assert_int_equal(out.status, STATUS_SUCCESS);
	assert_int_equal(out.fail_info, FAIL_NONE);
	assert_null(out.fail_text);
	assert_non_null(out.certs);
	assert_int_equal(sk_X509_num(out.certs), 2);
	assert_string_equal(out.envelope_cipher, "AES-128-CBC");
	assert_string_equal(out.envelope_recipient, "key transport");
	assert_string_equal(out.signature_digest, "SHA256");
	mine = scep_find_cert_for_key(out.certs, T.our_key);
	assert_non_null(mine);
	assert_int_equal(X509_cmp(mine, T.issued), 0);
	assert_null(scep_find_cert_for_key(out.certs, T.other_key));
	assert_null(scep_find_cert_for_key(NULL, T.our_key));
	scep_reply_free(&out);
	assert_null(out.certs);
	scep_reply_free(&out);
	scep_reply_free(NULL);
}

static void test_reply_success_from_ra(void **state)
{
	X509 *issued[] = { T.issued };
	struct tp_certrep tr = base_rep("0");
	struct scep_reply_check c = base_check();
	struct scep_reply out;

	(void)state;
	tr.signer_cert = T.ra_sig;
	tr.signer_key = T.ra_key;
	tr.recipient = T.signer;
	tr.issued = issued;
	tr.n_issued = 1;
	tr.cipher = "AES-256-CBC";
	tr.digest = "SHA512";
	c.reply_signer = T.ra_sig;
	assert_int_equal(parse_rep(&tr, &c, &out), P11S_OK);
	assert_string_equal(out.envelope_cipher, "AES-256-CBC");
	assert_string_equal(out.signature_digest, "SHA512");
	assert_int_equal(sk_X509_num(out.certs), 1);
	scep_reply_free(&out);
	/* The same reply when we expect the CA to sign: refused. */
	c.reply_signer = T.ca;
	rep_refused(&tr, &c, P11S_E_UNTRUSTED, "signature");
}

/* Is a CRL with b's DER among crls? (A SET OF: the order is the encoder's.) */
static int crl_in(STACK_OF(X509_CRL) *crls, X509_CRL *b)
{
	unsigned char *da, *db = NULL;
	int i, na, nb = i2d_X509_CRL(b, &db), found = 0;

	assert_true(nb > 0);
	for (i = 0; i < sk_X509_CRL_num(crls) && !found; i++) {
		da = NULL;
		na = i2d_X509_CRL(sk_X509_CRL_value(crls, i), &da);
		assert_true(na > 0);
		found = na == nb && memcmp(da, db, (size_t)na) == 0;
		OPENSSL_free(da);
	}
	OPENSSL_free(db);
	return found;
}

/* A GetCRL reply: the degenerate SignedData holds a CRL, maybe no cert. */
static void test_reply_crls(void **state)
{
	X509_CRL *crl = tp_crl(T.ca, T.ca_key, 77), *crl2 = tp_crl(T.ca, T.ca_key, 0);
	X509_CRL *crls[] = { crl, crl2 }, *many[MSG_TEST_MANY_CRLS];
	X509 *issued[] = { T.issued };
	X509_REVOKED *rev = NULL;
	ASN1_INTEGER *sn = ASN1_INTEGER_new();
	struct tp_certrep tr = base_rep("0");
	struct scep_reply_check c = base_check();
	struct scep_reply out;
	size_t i;

	(void)state;
	tr.recipient = T.signer;
	tr.issued = issued;
	tr.n_issued = 0;
	tr.crls = crls;
	tr.n_crls = 1;
	assert_int_equal(parse_rep(&tr, &c, &out), P11S_OK);
	assert_int_equal(out.status, STATUS_SUCCESS);
	assert_non_null(out.certs);
	assert_int_equal(sk_X509_num(out.certs), 0);
	assert_int_equal(sk_X509_CRL_num(out.crls), 1);
	assert_true(crl_in(out.crls, crl));
	assert_int_equal(X509_CRL_verify(sk_X509_CRL_value(out.crls, 0),
	    X509_get0_pubkey(T.ca)), 1);
	assert_non_null(sn);
	assert_int_equal(ASN1_INTEGER_set(sn, 77), 1);
	assert_int_equal(X509_CRL_get0_by_serial(sk_X509_CRL_value(out.crls, 0), &rev, sn), 1);
	assert_non_null(rev);
	scep_reply_free(&out);
	assert_null(out.crls);

	/* Certs and two CRLs together. */
	tr.n_issued = 1;
	tr.n_crls = 2;
	assert_int_equal(parse_rep(&tr, &c, &out), P11S_OK);
	assert_int_equal(sk_X509_num(out.certs), 1);
	assert_int_equal(sk_X509_CRL_num(out.crls), 2);
	assert_true(crl_in(out.crls, crl));
	assert_true(crl_in(out.crls, crl2));
	scep_reply_free(&out);

	/* An enrollment reply has no CRL: crls stays NULL. */
	tr.crls = NULL;
	tr.n_crls = 0;
	assert_int_equal(parse_rep(&tr, &c, &out), P11S_OK);
	assert_null(out.crls);
	scep_reply_free(&out);

	/* Neither certs nor CRLs. */
	tr.n_issued = 0;
	rep_refused(&tr, &c, P11S_E_MALFORMED, "no certificate and no CRL");
	/* Too many CRLs. */
	for (i = 0; i < MSG_TEST_MANY_CRLS; i++)
		many[i] = crl2;
	tr.crls = many;
	tr.n_crls = MSG_TEST_MANY_CRLS;
	rep_refused(&tr, &c, P11S_E_MALFORMED, "CRLs");
	tr.n_crls = MSG_TEST_MANY_CRLS - 1;
	assert_int_equal(parse_rep(&tr, &c, &out), P11S_OK);
	assert_int_equal(sk_X509_CRL_num(out.crls), MSG_TEST_MANY_CRLS - 1);
	scep_reply_free(&out);
	ASN1_INTEGER_free(sn);
	X509_CRL_free(crl);
	X509_CRL_free(crl2);
}

static void test_reply_pending(void **state)
{
	struct tp_certrep tr = base_rep("3");
	struct scep_reply_check c = base_check();
	struct scep_reply out;

	(void)state;
	assert_int_equal(parse_rep(&tr, &c, &out), P11S_OK);
	assert_int_equal(out.status, STATUS_PENDING);
	assert_int_equal(out.fail_info, FAIL_NONE);
	assert_null(out.certs);
	assert_null(out.envelope_cipher);
	scep_reply_free(&out);
	tr.detached = 1;	/* eContent left out altogether */
	assert_int_equal(parse_rep(&tr, &c, &out), P11S_OK);
	assert_int_equal(out.status, STATUS_PENDING);
	scep_reply_free(&out);
}

static void test_reply_failure(void **state)
{
	struct tp_certrep tr = base_rep("2");
	struct scep_reply_check c = base_check();
	struct scep_reply out;

	(void)state;
	tr.failinfo = "2";
	tr.failtext = "DN already exists";
	assert_int_equal(parse_rep(&tr, &c, &out), P11S_OK);
	assert_int_equal(out.status, STATUS_FAILURE);
	assert_int_equal(out.fail_info, FAIL_BADREQUEST);
	assert_string_equal(out.fail_text, "DN already exists");
	assert_null(out.certs);
	scep_reply_free(&out);
	assert_null(out.fail_text);

	tr.failinfo = "4";
	tr.failtext = NULL;
	tr.detached = 1;
	assert_int_equal(parse_rep(&tr, &c, &out), P11S_OK);
	assert_int_equal(out.fail_info, FAIL_BADCERTID);
	assert_null(out.fail_text);
	scep_reply_free(&out);

	tr.failinfo = NULL;	/* no reason given: still a FAILURE */
	assert_int_equal(parse_rep(&tr, &c, &out), P11S_OK);
	assert_int_equal(out.status, STATUS_FAILURE);
	assert_int_equal(out.fail_info, FAIL_NONE);
	scep_reply_free(&out);
}

static void test_reply_failtext_hostile(void **state)
{
	struct tp_certrep tr = base_rep("2");
	struct scep_reply_check c = base_check();
	struct scep_reply out;
	char text[1200];
	size_t i;

	(void)state;
	tr.failinfo = "0";
	tr.failtext = "bad\x1b[31m red\r\nnext \xc2\x9b" "csi \xc3\xa9t\xc3\xa9";
	assert_int_equal(parse_rep(&tr, &c, &out), P11S_OK);
	assert_string_equal(out.fail_text, "bad?[31m red??next ?csi \xc3\xa9t\xc3\xa9");
	scep_reply_free(&out);

	/* Long: kept short, cut at a whole UTF-8 character. */
	for (i = 0; i + 2 < sizeof(text); i += 2)
		memcpy(text + i, "\xc3\xa9", 2);
	text[i] = '\0';
	tr.failtext = text;
	assert_int_equal(parse_rep(&tr, &c, &out), P11S_OK);
	assert_true(strlen(out.fail_text) <= 256);
	assert_true(strlen(out.fail_text) >= 254);
	assert_int_equal(strlen(out.fail_text) % 2, 0);
	scep_reply_free(&out);
}

static void test_reply_wrong_nonce(void **state)
{
	struct tp_certrep tr = base_rep("3");
	struct scep_reply_check c = base_check();
	unsigned char other[SCEP_NONCE_LEN];

	(void)state;
	memcpy(other, T.txn.sender_nonce, sizeof(other));
	other[5] ^= 0x01;
	tr.recipient_nonce = other;
	rep_refused(&tr, &c, P11S_E_UNTRUSTED, "recipientNonce");
	tr.recipient_nonce_len = 8;
	tr.recipient_nonce = T.txn.sender_nonce;
	rep_refused(&tr, &c, P11S_E_UNTRUSTED, "recipientNonce");
}

static void test_reply_missing_nonce(void **state)
{
	struct tp_certrep tr = base_rep("0");
	struct scep_reply_check c = base_check();

	(void)state;
	tr.recipient_nonce = NULL;
	rep_refused(&tr, &c, P11S_E_UNTRUSTED, "no recipientNonce");
}

static void test_reply_wrong_txid(void **state)
{
	struct tp_certrep tr = base_rep("3");
	struct scep_reply_check c = base_check();
	char other[SCEP_TXID_MAX];

	(void)state;
	memcpy(other, T.txn.txid, sizeof(other));
	other[0] = other[0] == 'A' ? 'B' : 'A';
	tr.txid = other;
	rep_refused(&tr, &c, P11S_E_UNTRUSTED, "transactionID");
	tr.txid = NULL;
	rep_refused(&tr, &c, P11S_E_UNTRUSTED, "transactionID");
	tr.txid = "";
	rep_refused(&tr, &c, P11S_E_UNTRUSTED, "transactionID");
}

static void test_reply_impostor_signer(void **state)
{
	X509 *issued[] = { T.issued };
	struct tp_certrep tr = base_rep("0");
	struct scep_reply_check c = base_check();

	(void)state;
	tr.recipient = T.signer;
	tr.issued = issued;
	tr.n_issued = 1;
	/* Signed by a key that is not reply_signer's, its cert embedded,
	 * with the same issuer and serial as the real CA. */
	tr.signer_cert = T.evil;
	tr.signer_key = T.evil_key;
	rep_refused(&tr, &c, P11S_E_UNTRUSTED, "signature");
	/* Same with the real CA cert embedded too. */
	tr.extra_cert = T.ca;
	rep_refused(&tr, &c, P11S_E_UNTRUSTED, "signature");
	/* An RA the CA really issued, but we were told to expect the CA. */
	tr.signer_cert = T.ra_sig;
	tr.signer_key = T.ra_key;
	rep_refused(&tr, &c, P11S_E_UNTRUSTED, "signature");
	/* Our own key and cert (a reflected request). */
	tr.signer_cert = T.signer;
	tr.signer_key = T.our_key;
	tr.extra_cert = NULL;
	rep_refused(&tr, &c, P11S_E_UNTRUSTED, "signature");
}

static void test_reply_no_signer_cert_embedded(void **state)
{
	struct tp_certrep tr = base_rep("3");
	struct scep_reply_check c = base_check();
	struct scep_reply out;

	(void)state;
	tr.no_signer_cert = 1;	/* we have the cert ourselves */
	assert_int_equal(parse_rep(&tr, &c, &out), P11S_OK);
	assert_int_equal(out.status, STATUS_PENDING);
	scep_reply_free(&out);
}

static void test_reply_two_signers(void **state)
{
	struct tp_certrep tr = base_rep("3");
	struct scep_reply_check c = base_check();

	(void)state;
	tr.signer2_cert = T.ra_sig;
	tr.signer2_key = T.ra_key;
	rep_refused(&tr, &c, P11S_E_MALFORMED, "signers");
}

static void test_reply_bad_msgtype(void **state)
{
	struct tp_certrep tr = base_rep("3");
	struct scep_reply_check c = base_check();

	(void)state;
	tr.msgtype = "19";	/* our own PKCSReq reflected */
	rep_refused(&tr, &c, P11S_E_UNTRUSTED, "messageType '19'");
	tr.msgtype = "03";
	rep_refused(&tr, &c, P11S_E_UNTRUSTED, "messageType");
}

static void test_reply_bad_status(void **state)
{
	struct tp_certrep tr = base_rep("9");
	struct scep_reply_check c = base_check();

	(void)state;
	rep_refused(&tr, &c, P11S_E_UNTRUSTED, "unknown pkiStatus '9'");
	tr.status = "1";
	rep_refused(&tr, &c, P11S_E_UNTRUSTED, "unknown pkiStatus '1'");
	tr.status = "0 ";
	rep_refused(&tr, &c, P11S_E_UNTRUSTED, "pkiStatus");
	tr.status = "\x1b]0;x";
	rep_refused(&tr, &c, P11S_E_UNTRUSTED, "'?]0;x'");	/* no raw escape */
	tr.status = NULL;
	rep_refused(&tr, &c, P11S_E_MALFORMED, "pkiStatus");
}

static void test_reply_bad_failinfo(void **state)
{
	struct tp_certrep tr = base_rep("2");
	struct scep_reply_check c = base_check();

	(void)state;
	tr.failinfo = "7";
	rep_refused(&tr, &c, P11S_E_UNTRUSTED, "unknown failInfo '7'");
	tr.failinfo = "22";
	rep_refused(&tr, &c, P11S_E_UNTRUSTED, "failInfo");
	tr.failinfo = "-1";
	rep_refused(&tr, &c, P11S_E_UNTRUSTED, "failInfo");
}

static void test_reply_success_without_content(void **state)
{
	struct tp_certrep tr = base_rep("0");
	struct scep_reply_check c = base_check();

	(void)state;
	rep_refused(&tr, &c, P11S_E_MALFORMED, "no content");
	tr.detached = 1;
	rep_refused(&tr, &c, P11S_E_MALFORMED, "no content");
}

static void test_reply_not_for_us(void **state)
{
	X509 *issued[] = { T.issued };
	struct tp_certrep tr = base_rep("0");
	struct scep_reply_check c = base_check();

	(void)state;
	tr.recipient = T.other;		/* encrypted to someone else */
	tr.issued = issued;
	tr.n_issued = 1;
	rep_refused(&tr, &c, P11S_E_UNTRUSTED, "not encrypted to our");
}

static void test_reply_wrong_key(void **state)
{
	X509 *issued[] = { T.issued };
	struct tp_certrep tr = base_rep("0");
	struct scep_reply_check c = base_check();
	struct scep_reply out;
	int i, ok = 0;

	(void)state;
	tr.recipient = T.signer;
	tr.issued = issued;
	tr.n_issued = 1;
	/* Right cert, wrong key: the content key cannot be recovered. */
	c.our_key = T.other_key;
	for (i = 0; i < 3; i++) {
		err_clear();
		if (parse_rep(&tr, &c, &out) == P11S_E_TOKEN)
			ok++;
		if (getenv("SHOW_MESSAGES") != NULL)
			print_message("    message: %s\n", err_msg());
		assert_null(out.certs);
	}
	assert_int_equal(ok, 3);
}

static void test_reply_des_sha1(void **state)
{
	X509 *issued[] = { T.issued };
	struct tp_certrep tr = base_rep("0");
	struct scep_reply_check c = base_check();
	struct scep_reply out;

	(void)state;
	tr.recipient = T.signer;
	tr.issued = issued;
	tr.n_issued = 1;
	tr.cipher = "DES-CBC";
	tr.digest = "SHA1";
	assert_int_equal(parse_rep(&tr, &c, &out), P11S_OK);
	assert_string_equal(out.envelope_cipher, "DES-CBC");
	assert_string_equal(out.signature_digest, "SHA1");
	assert_non_null(scep_find_cert_for_key(out.certs, T.our_key));
	scep_reply_free(&out);
	c.strict = 1;
	rep_refused(&tr, &c, P11S_E_UNTRUSTED, "DES-CBC");
	tr.cipher = "DES-EDE3-CBC";
	rep_refused(&tr, &c, P11S_E_UNTRUSTED, "DES-EDE3-CBC");
	tr.cipher = "AES-128-CBC";
	assert_int_equal(parse_rep(&tr, &c, &out), P11S_OK);
	scep_reply_free(&out);
}

static void test_reply_md5_refused(void **state)
{
	struct tp_certrep tr = base_rep("3");
	struct scep_reply_check c = base_check();

	(void)state;
	tr.digest = "MD5";
	rep_refused(&tr, &c, P11S_E_UNTRUSTED, "MD5");
}

static void test_reply_garbage(void **state)
{
	X509 *issued[] = { T.issued };
	struct tp_certrep tr = base_rep("0");
	struct scep_reply_check c = base_check();
	struct scep_reply out;
	unsigned char *der, *copy, rnd[2048];
	size_t len, cut;
	enum p11s_err e;

	(void)state;
	tr.recipient = T.signer;
	tr.issued = issued;
	tr.n_issued = 1;
	der = tp_certrep_der(&tr, &len);
	for (cut = 0; cut < len; cut += (cut < 64 ? 1 : 61)) {
		err_clear();
		e = scep_reply_parse(der, cut, &c, &out);
		assert_int_equal(e, P11S_E_MALFORMED);
		assert_null(out.certs);
	}
	err_clear();
	assert_int_equal(scep_reply_parse(der, len - 1, &c, &out), P11S_E_MALFORMED);

	copy = malloc(len + 2);
	assert_non_null(copy);
	memcpy(copy, der, len);
	copy[len] = 0;
	copy[len + 1] = 0;
	err_clear();
	assert_int_equal(scep_reply_parse(copy, len + 2, &c, &out), P11S_E_MALFORMED);

	/* A flipped bit in the signature value (the last bytes). */
	copy[len - 10] ^= 0x20;
	err_clear();
	assert_int_equal(scep_reply_parse(copy, len, &c, &out), P11S_E_UNTRUSTED);
	assert_null(out.certs);
	free(copy);

	assert_int_equal(RAND_bytes(rnd, sizeof(rnd)), 1);
	err_clear();
	assert_int_equal(scep_reply_parse(rnd, sizeof(rnd), &c, &out), P11S_E_MALFORMED);
	rnd[0] = 0x30;
	rnd[1] = 0x82;
	rnd[2] = 0x07;
	rnd[3] = 0xfc;
	err_clear();
	assert_int_equal(scep_reply_parse(rnd, sizeof(rnd), &c, &out), P11S_E_MALFORMED);
	err_clear();
	assert_int_equal(scep_reply_parse(NULL, 0, &c, &out), P11S_E_MALFORMED);
	OPENSSL_free(der);
}

static void test_reply_envelope_not_signeddata(void **state)
{
	/* A PKCS#7 of the wrong kind: our own request's envelope. */
	struct scep_reply_check c = base_check();
	struct scep_reply out;
	unsigned char *der;
	size_t len;

	(void)state;
	der = build_req("AES-128-CBC", "SHA256", T.ca, MSG_PKCSREQ, &len);
	/* Signed by us, not the CA: refused at the signature. */
	assert_int_equal(scep_reply_parse(der, len, &c, &out), P11S_E_UNTRUSTED);
	OPENSSL_free(der);
}

/* ---- EC keys: ECDSA requests, replies by key agreement or password ---- */

/* The EC requester's material, made once by ec_setup. */
static struct {
	EVP_PKEY *key, *key384, *other;
	X509 *signer, *signer384, *other_cert, *issued, *issued384;
	unsigned char *csr_der;
	size_t csr_len;
} E;

static EVP_PKEY *ec_key(const char *curve)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);

	assert_non_null(k);
	return k;
}

/* CSR and signer cert for key, as the enroll command makes them. */
static X509 *ec_signer(EVP_PKEY *key, unsigned char **csr_der, size_t *csr_len)
{
	struct csr_params p = { .subject = "CN=ec.example,O=p11scep test",
	    .challenge = "secret", .digest = "SHA256" };
	X509_REQ *req = NULL;
	X509 *signer = NULL;
	int n;

	assert_int_equal(csr_build(&p, key, &req), P11S_OK);
	assert_int_equal(signer_cert_build(req, key, "SHA256", &signer), P11S_OK);
	if (csr_der != NULL) {
		*csr_der = NULL;
		n = i2d_X509_REQ(req, csr_der);
		assert_true(n > 0);
		*csr_len = (size_t)n;
	}
	X509_REQ_free(req);
	return signer;
}

static int ec_setup(void **state)
{
	(void)state;
	err_clear();
	if (E.key != NULL)
		return 0;
	E.key = ec_key("P-256");
	E.key384 = ec_key("P-384");
	E.other = ec_key("P-256");
	E.signer = ec_signer(E.key, &E.csr_der, &E.csr_len);
	E.signer384 = ec_signer(E.key384, NULL, NULL);
	E.other_cert = ec_signer(E.other, NULL, NULL);
	E.issued = tp_leaf(E.key, "ec.example", T.ca, T.ca_key,
	    KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT);
	E.issued384 = tp_leaf(E.key384, "ec.example", T.ca, T.ca_key,
	    KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT);
	return 0;
}

static int ec_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(E.key);
	EVP_PKEY_free(E.key384);
	EVP_PKEY_free(E.other);
	X509_free(E.signer);
	X509_free(E.signer384);
	X509_free(E.other_cert);
	X509_free(E.issued);
	X509_free(E.issued384);
	OPENSSL_free(E.csr_der);
	memset(&E, 0, sizeof(E));
	return 0;
}

/* How a test envelope reaches the requester. */
struct ec_env {
	X509 *kari_to;			/* key agreement with this cert's key */
	const EVP_MD *kdf_md;		/* its X9.63 KDF hash; NULL: OpenSSL's SHA-1 */
	int null_params;		/* originatorKey parameters NULL, as NDES has them */
	const char *password;		/* a password recipient too, with this */
	const char *cipher;		/* content cipher; default AES-128-CBC */
	int detached;			/* leave the encrypted content out */
};

static void add_kari(CMS_ContentInfo *env, const struct ec_env *s)
{
	CMS_RecipientInfo *ri;
	EVP_PKEY_CTX *pctx;

	ri = CMS_add1_recipient_cert(env, s->kari_to, CMS_KEY_PARAM);
	assert_non_null(ri);
	assert_int_equal(CMS_RecipientInfo_type(ri), CMS_RECIPINFO_AGREE);
	if (s->kdf_md != NULL) {
		pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);
		assert_non_null(pctx);
		assert_true(EVP_PKEY_CTX_set_ecdh_kdf_md(pctx, s->kdf_md) > 0);
	}
}

/* The key agreement recipient (the first one) uses this ECDH scheme. */
static void kari_kdf_is(CMS_ContentInfo *env, int nid)
{
	CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(CMS_get0_RecipientInfos(env), 0);
	X509_ALGOR *alg = NULL;
	ASN1_OCTET_STRING *ukm = NULL;

	assert_int_equal(CMS_RecipientInfo_type(ri), CMS_RECIPINFO_AGREE);
	assert_int_equal(CMS_RecipientInfo_kari_get0_alg(ri, &alg, &ukm), 1);
	assert_int_equal(OBJ_obj2nid(alg->algorithm), nid);
}

/* NDES's form of the ephemeral key: id-ecPublicKey with NULL parameters
 * (OpenSSL leaves them out); the curve is then that of our key. */
static void kari_null_params(CMS_ContentInfo *env)
{
	CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(CMS_get0_RecipientInfos(env), 0);
	X509_ALGOR *alg = NULL;
	ASN1_BIT_STRING *pub = NULL;
	const void *pval = NULL;
	int ptype = 0;

	assert_int_equal(CMS_RecipientInfo_kari_get0_orig_id(ri, &alg, &pub, NULL, NULL, NULL), 1);
	X509_ALGOR_get0(NULL, &ptype, &pval, alg);
	assert_int_equal(ptype, V_ASN1_UNDEF);
	assert_int_equal(X509_ALGOR_set0(alg, OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
	    V_ASN1_NULL, NULL), 1);
}

static void add_pwri(CMS_ContentInfo *env, const char *password)
{
	size_t n = strlen(password);
	unsigned char *pass = OPENSSL_memdup(password, n);

	assert_non_null(pass);
	/* PBKDF2 and the PWRI key wrap; the envelope owns the copy. */
	assert_non_null(CMS_add0_recipient_password(env, -1, NID_undef, NID_undef, pass,
	    (ossl_ssize_t)n, NULL));
}

/* An EnvelopedData around the bag, as a server answering an EC key builds it. */
static unsigned char *ec_envelope(const struct ec_env *s, const unsigned char *bag,
				  size_t bag_len, size_t *len)
{
	const EVP_CIPHER *c = EVP_get_cipherbyname(s->cipher != NULL ? s->cipher : "AES-128-CBC");
	CMS_ContentInfo *env;
	BIO *in = BIO_new_mem_buf(bag, (int)bag_len);
	unsigned char *der = NULL;
	int n;

	assert_non_null(c);
	assert_non_null(in);
	env = CMS_EnvelopedData_create(c);
	assert_non_null(env);
	assert_int_equal(CMS_set_detached(env, 0), 1);
	if (s->kari_to != NULL)
		add_kari(env, s);
	if (s->password != NULL)
		add_pwri(env, s->password);
	assert_int_equal(CMS_final(env, in, NULL, CMS_BINARY), 1);
	if (s->kari_to != NULL)
		kari_kdf_is(env, s->kdf_md != NULL ? NID_dhSinglePass_stdDH_sha256kdf_scheme :
		    NID_dhSinglePass_stdDH_sha1kdf_scheme);
	if (s->null_params)
		kari_null_params(env);
	if (s->detached)
		assert_int_equal(CMS_set_detached(env, 1), 1);
	n = i2d_CMS_ContentInfo(env, &der);
	assert_true(n > 0);
	*len = (size_t)n;
	CMS_ContentInfo_free(env);
	BIO_free(in);
	return der;
}

static void add_text(CMS_SignerInfo *si, const char *oid, int type, const void *v, int n)
{
	assert_int_equal(CMS_signed_add1_attr_by_txt(si, oid, type, v, n), 1);
}

/* A SUCCESS CertRep by the CA whose pkcsPKIEnvelope is s's envelope of issued. */
static unsigned char *ec_certrep(const struct ec_env *s, X509 *issued, size_t *len)
{
	unsigned char nonce[SCEP_NONCE_LEN], *bag, *env, *der = NULL;
	size_t bag_len, env_len;
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si;
	BIO *in;
	int n;

	bag = tp_bag_der(&issued, 1, &bag_len);
	env = ec_envelope(s, bag, bag_len, &env_len);
	cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_PARTIAL | CMS_BINARY);
	assert_non_null(cms);
	si = CMS_add1_signer(cms, T.ca, T.ca_key, EVP_sha256(), CMS_BINARY | CMS_NOSMIMECAP);
	assert_non_null(si);
	assert_int_equal(RAND_bytes(nonce, sizeof(nonce)), 1);
	add_text(si, "2.16.840.1.113733.1.9.2", V_ASN1_PRINTABLESTRING, "3", 1);
	add_text(si, "2.16.840.1.113733.1.9.3", V_ASN1_PRINTABLESTRING, "0", 1);
	add_text(si, "2.16.840.1.113733.1.9.7", V_ASN1_PRINTABLESTRING, T.txn.txid,
	    (int)strlen(T.txn.txid));
	add_text(si, "2.16.840.1.113733.1.9.5", V_ASN1_OCTET_STRING, nonce, SCEP_NONCE_LEN);
	add_text(si, "2.16.840.1.113733.1.9.6", V_ASN1_OCTET_STRING, T.txn.sender_nonce,
	    SCEP_NONCE_LEN);
	in = BIO_new_mem_buf(env, (int)env_len);
	assert_non_null(in);
	assert_int_equal(CMS_final(cms, in, NULL, CMS_BINARY), 1);
	n = i2d_CMS_ContentInfo(cms, &der);
	assert_true(n > 0);
	*len = (size_t)n;
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	OPENSSL_free(env);
	OPENSSL_free(bag);
	return der;
}

static struct scep_reply_check ec_check(X509 *signer, EVP_PKEY *key, const char *password)
{
	struct scep_reply_check c = {
		.reply_signer = T.ca, .txn = &T.txn,
		.our_cert = signer, .our_key = key, .password = password,
	};

	return c;
}

/* Parses s's CertRep of issued with c: want, and on success issued is ours. */
static void ec_parse(const struct ec_env *s, X509 *issued, const struct scep_reply_check *c,
		     enum p11s_err want, const char *how_or_msg)
{
	struct scep_reply out;
	unsigned char *der;
	size_t len;

	err_clear();
	der = ec_certrep(s, issued, &len);
	assert_int_equal(scep_reply_parse(der, len, c, &out), want);
	OPENSSL_free(der);
	if (getenv("SHOW_MESSAGES") != NULL)
		print_message("    message: %s\n", err_msg());
	if (want != P11S_OK) {
		assert_null(out.certs);
		if (strstr(err_msg(), how_or_msg) == NULL)
			fail_msg("message \"%s\" lacks \"%s\"", err_msg(), how_or_msg);
		return;
	}
	assert_int_equal(out.status, STATUS_SUCCESS);
	assert_string_equal(out.envelope_recipient, how_or_msg);
	assert_int_equal(X509_cmp(scep_find_cert_for_key(out.certs, c->our_key), issued), 0);
	scep_reply_free(&out);
}

static void test_ec_request(void **state)
{
	struct scep_request r = {
		.type = MSG_PKCSREQ,
		.content = E.csr_der, .content_len = E.csr_len,
		.signer_cert = E.signer, .signer_key = E.key,
		.recipient = T.ca, .cipher = "AES-128-CBC", .digest = "SHA256", .txn = &T.txn,
	};
	ASN1_BIT_STRING *ku;
	unsigned char *der = NULL;
	const unsigned char *p;
	X509_REQ *back;
	struct decoded d;
	size_t len;

	(void)state;
	/* The signer cert says what an EC key does: sign and agree, never encipher. */
	ku = X509_get_ext_d2i(E.signer, NID_key_usage, NULL, NULL);
	assert_non_null(ku);
	assert_true(ASN1_BIT_STRING_get_bit(ku, 0));
	assert_true(ASN1_BIT_STRING_get_bit(ku, 4));
	assert_false(ASN1_BIT_STRING_get_bit(ku, 2));
	ASN1_BIT_STRING_free(ku);
	assert_int_equal(X509_verify(E.signer, E.key), 1);
	/* An ECDSA SignedData around a request encrypted to the RSA CA. */
	assert_int_equal(scep_request_build(&r, &der, &len), P11S_OK);
	server_decode(der, len, T.ca_key, T.ca, MSG_PKCSREQ, &d);
	assert_int_equal(X509_cmp(d.signer, E.signer), 0);
	assert_int_equal(d.digest_nid, NID_sha256);
	assert_memory_equal(d.content, E.csr_der, E.csr_len);
	p = d.content;
	back = d2i_X509_REQ(NULL, &p, (long)d.content_len);
	assert_non_null(back);
	assert_int_equal(X509_REQ_verify(back, E.key), 1);
	assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(back), E.key), 1);
	X509_REQ_free(back);
	decoded_free(&d);
	OPENSSL_free(der);
}

static void test_ec_reply_kari(void **state)
{
	struct tp_certrep tr = base_rep("0");
	struct scep_reply_check c = ec_check(E.signer, E.key, NULL);
	struct ec_env s = { .kari_to = E.signer };
	X509 *issued[] = { E.issued };
	struct scep_reply out;

	(void)state;
	/* The test PKI's server: CMS_encrypt picks key agreement for an EC cert. */
	tr.recipient = E.signer;
	tr.issued = issued;
	tr.n_issued = 1;
	assert_int_equal(parse_rep(&tr, &c, &out), P11S_OK);
	assert_string_equal(out.envelope_recipient, "key agreement");
	assert_string_equal(out.envelope_cipher, "AES-128-CBC");
	assert_int_equal(X509_cmp(scep_find_cert_for_key(out.certs, E.key), E.issued), 0);
	scep_reply_free(&out);
	/* KDF with SHA-1 (OpenSSL's default) and SHA-256, AES-256, P-384. */
	ec_parse(&s, E.issued, &c, P11S_OK, "key agreement");
	s.null_params = 1;
	ec_parse(&s, E.issued, &c, P11S_OK, "key agreement");
	s.null_params = 0;
	s.kdf_md = EVP_sha256();
	s.cipher = "AES-256-CBC";
	ec_parse(&s, E.issued, &c, P11S_OK, "key agreement");
	s.kari_to = E.signer384;
	c = ec_check(E.signer384, E.key384, NULL);
	ec_parse(&s, E.issued384, &c, P11S_OK, "key agreement");
	/* The password is not needed, and not used, when the key agrees. */
	c.password = "not the challenge";
	ec_parse(&s, E.issued384, &c, P11S_OK, "key agreement");
}

static void test_ec_reply_pwri(void **state)
{
	struct scep_reply_check c = ec_check(E.signer, E.key, "secret");
	struct ec_env s = { .password = "secret" };

	(void)state;
	ec_parse(&s, E.issued, &c, P11S_OK, "password");
	s.cipher = "AES-256-CBC";
	ec_parse(&s, E.issued, &c, P11S_OK, "password");
	/* Nothing in PWRI depends on the key: an RSA requester can use it too. */
	c = ec_check(T.signer, T.our_key, "secret");
	ec_parse(&s, T.issued, &c, P11S_OK, "password");
	/* Key agreement for us and a password beside it: our key is used. */
	c = ec_check(E.signer, E.key, "secret");
	s.kari_to = E.signer;
	ec_parse(&s, E.issued, &c, P11S_OK, "key agreement");
	/* A key agreement for someone else beside it: the password opens it. */
	s.kari_to = E.other_cert;
	ec_parse(&s, E.issued, &c, P11S_OK, "password");
}

static void test_ec_reply_refused(void **state)
{
	struct scep_reply_check c = ec_check(E.signer, E.key, "secret");
	struct ec_env s = { .password = "not the secret" };

	(void)state;
	ec_parse(&s, E.issued, &c, P11S_E_UNTRUSTED, "challenge password does not open");
	/* A renewal has no challenge: a password envelope cannot be for it. */
	s.password = "secret";
	c.password = NULL;
	ec_parse(&s, E.issued, &c, P11S_E_UNTRUSTED, "no challenge password");
	c.password = "";
	ec_parse(&s, E.issued, &c, P11S_E_UNTRUSTED, "no challenge password");
	/* Key agreement with another EC key, and no password recipient. */
	s.password = NULL;
	s.kari_to = E.other_cert;
	c.password = "secret";
	ec_parse(&s, E.issued, &c, P11S_E_UNTRUSTED, "not encrypted to our");
	/* Our cert, a key that is not its own: the agreed key is wrong. */
	s.kari_to = E.signer;
	c.our_key = E.other;
	ec_parse(&s, E.issued, &c, P11S_E_TOKEN, "key agreement needs ECDH");
	/* No encrypted content at all. */
	c.our_key = E.key;
	s.detached = 1;
	ec_parse(&s, E.issued, &c, P11S_E_MALFORMED, "no encrypted content");
	s.detached = 0;
	/* Strict mode refuses a legacy cipher whatever the recipient. */
	s.kari_to = NULL;
	s.password = "secret";
	s.cipher = "DES-EDE3-CBC";
	c.strict = 1;
	ec_parse(&s, E.issued, &c, P11S_E_UNTRUSTED, "legacy cipher");
	c.strict = 0;
	ec_parse(&s, E.issued, &c, P11S_OK, "password");
}

/* ---- the real server: micromdm scepserver 2.1.0 ---- */

static X509 *load_cert_der(const char *name)
{
	size_t len;
	unsigned char *b = tp_read_data(name, &len);
	const unsigned char *p = b;
	X509 *x = d2i_X509(NULL, &p, (long)len);

	assert_non_null(x);
	free(b);
	return x;
}

static void *load_pem(const char *name, int key)
{
	size_t len;
	unsigned char *b = tp_read_data(name, &len);
	BIO *bio = BIO_new_mem_buf(b, (int)len);
	void *v;

	assert_non_null(bio);
	v = key ? (void *)PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)
	    : (void *)PEM_read_bio_X509(bio, NULL, NULL, NULL);
	assert_non_null(v);
	BIO_free(bio);
	free(b);
	return v;
}

static void test_micromdm_success(void **state)
{
	X509 *ca = load_cert_der("micromdm-getcacert.der");
	X509 *signer = load_pem("micromdm-success-signer.pem", 0);
	EVP_PKEY *key = load_pem("micromdm-success-key.pem", 1);
	struct scep_txn txn;
	struct scep_reply_check c = { .reply_signer = ca, .txn = &txn,
	    .our_cert = signer, .our_key = key };
	struct scep_reply out;
	unsigned char *der;
	size_t len;
	X509 *mine;
	char txid[SCEP_TXID_MAX];

	(void)state;
	snprintf(txn.txid, sizeof(txn.txid), "%s", MICROMDM_TXID);
	hex_to_bytes(MICROMDM_NONCE, txn.sender_nonce, SCEP_NONCE_LEN);
	/* The transactionID we sent was made from this key. */
	assert_int_equal(scep_txid_from_key(key, txid), P11S_OK);
	assert_string_equal(txid, MICROMDM_TXID);

	der = tp_read_data("micromdm-certrep-success.der", &len);
	if (scep_reply_parse(der, len, &c, &out) != P11S_OK)
		fail_msg("micromdm CertRep: %s", err_msg());
	assert_int_equal(out.status, STATUS_SUCCESS);
	assert_string_equal(out.envelope_cipher, "DES-CBC");
	assert_string_equal(out.signature_digest, "SHA1");
	assert_int_equal(sk_X509_num(out.certs), 1);
	mine = scep_find_cert_for_key(out.certs, key);
	assert_non_null(mine);
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(mine), X509_get_subject_name(ca)), 0);
	assert_int_equal(X509_verify(mine, X509_get0_pubkey(ca)), 1);
	scep_reply_free(&out);

	/* Strict mode refuses micromdm's single DES. */
	c.strict = 1;
	err_clear();
	assert_int_equal(scep_reply_parse(der, len, &c, &out), P11S_E_UNTRUSTED);
	assert_non_null(strstr(err_msg(), "DES-CBC"));
	c.strict = 0;

	/* The same bytes for another transaction are refused. */
	txn.sender_nonce[0] ^= 1;
	err_clear();
	assert_int_equal(scep_reply_parse(der, len, &c, &out), P11S_E_UNTRUSTED);
	txn.sender_nonce[0] ^= 1;
	/* And when another cert is expected to sign. */
	c.reply_signer = T.ca;
	err_clear();
	assert_int_equal(scep_reply_parse(der, len, &c, &out), P11S_E_UNTRUSTED);

	free(der);
	X509_free(ca);
	X509_free(signer);
	EVP_PKEY_free(key);
}

static void test_micromdm_failure(void **state)
{
	X509 *ca = load_cert_der("micromdm-getcacert.der");
	struct scep_txn txn;
	struct scep_reply_check c = { .reply_signer = ca, .txn = &txn };
	struct scep_reply out;
	unsigned char *der;
	size_t len;

	(void)state;
	snprintf(txn.txid, sizeof(txn.txid), "%s", MICROMDM_FAIL_TXID);
	hex_to_bytes(MICROMDM_FAIL_NONCE, txn.sender_nonce, SCEP_NONCE_LEN);
	der = tp_read_data("micromdm-certrep-failure.der", &len);
	if (scep_reply_parse(der, len, &c, &out) != P11S_OK)
		fail_msg("micromdm failure CertRep: %s", err_msg());
	assert_int_equal(out.status, STATUS_FAILURE);
	assert_int_equal(out.fail_info, FAIL_BADREQUEST);
	assert_string_equal(out.signature_digest, "SHA1");
	assert_null(out.certs);
	scep_reply_free(&out);
	free(der);
	X509_free(ca);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_txid, setup),
		cmocka_unit_test_setup(test_nonce, setup),
		cmocka_unit_test_setup(test_failinfo_names, setup),
		cmocka_unit_test_setup(test_request_aes128_sha256, setup),
		cmocka_unit_test_setup(test_request_aes256_sha512, setup),
		cmocka_unit_test_setup(test_request_des3_sha1, setup),
		cmocka_unit_test_setup(test_request_to_ra, setup),
		cmocka_unit_test_setup(test_request_certpoll, setup),
		cmocka_unit_test_setup(test_request_getcert_getcrl, setup),
		cmocka_unit_test_setup(test_request_renewal, setup),
		cmocka_unit_test_setup(test_issuer_and_subject_bytes, setup),
		cmocka_unit_test_setup(test_issuer_and_serial_bytes, setup),
		cmocka_unit_test_setup(test_request_refusals, setup),
		cmocka_unit_test_setup(test_request_wrong_signer_key, setup),
		cmocka_unit_test_setup(test_reply_success, setup),
		cmocka_unit_test_setup(test_reply_success_from_ra, setup),
		cmocka_unit_test_setup(test_reply_crls, setup),
		cmocka_unit_test_setup(test_reply_pending, setup),
		cmocka_unit_test_setup(test_reply_failure, setup),
		cmocka_unit_test_setup(test_reply_failtext_hostile, setup),
		cmocka_unit_test_setup(test_reply_wrong_nonce, setup),
		cmocka_unit_test_setup(test_reply_missing_nonce, setup),
		cmocka_unit_test_setup(test_reply_wrong_txid, setup),
		cmocka_unit_test_setup(test_reply_impostor_signer, setup),
		cmocka_unit_test_setup(test_reply_no_signer_cert_embedded, setup),
		cmocka_unit_test_setup(test_reply_two_signers, setup),
		cmocka_unit_test_setup(test_reply_bad_msgtype, setup),
		cmocka_unit_test_setup(test_reply_bad_status, setup),
		cmocka_unit_test_setup(test_reply_bad_failinfo, setup),
		cmocka_unit_test_setup(test_reply_success_without_content, setup),
		cmocka_unit_test_setup(test_reply_not_for_us, setup),
		cmocka_unit_test_setup(test_reply_wrong_key, setup),
		cmocka_unit_test_setup(test_reply_des_sha1, setup),
		cmocka_unit_test_setup(test_reply_md5_refused, setup),
		cmocka_unit_test_setup(test_reply_garbage, setup),
		cmocka_unit_test_setup(test_reply_envelope_not_signeddata, setup),
		cmocka_unit_test_setup(test_micromdm_success, setup),
		cmocka_unit_test_setup(test_micromdm_failure, setup),
		cmocka_unit_test_setup(test_ec_request, ec_setup),
		cmocka_unit_test_setup(test_ec_reply_kari, ec_setup),
		cmocka_unit_test_setup(test_ec_reply_pwri, ec_setup),
		cmocka_unit_test_setup(test_ec_reply_refused, ec_setup),
	};
	OSSL_PROVIDER *legacy, *deflt;
	int rc;

	(void)argc;
	tp_init(argv[0]);
	/* As the program does at start-up: DES-CBC (micromdm) needs "legacy". */
	legacy = OSSL_PROVIDER_load(NULL, "legacy");
	deflt = OSSL_PROVIDER_load(NULL, "default");
	if (legacy == NULL || deflt == NULL) {
		fprintf(stderr, "cannot load OpenSSL's legacy and default providers\n");
		return 1;
	}
	rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
	OSSL_PROVIDER_unload(legacy);
	OSSL_PROVIDER_unload(deflt);
	return rc;
}
