#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "testpki.h"

static char data_dir[4096];

/* Fails the running test, with OpenSSL's errors for the reason. */
static void tp_need(int ok, const char *what)
{
	if (ok)
		return;
	ERR_print_errors_fp(stderr);
	fail_msg("testpki: %s failed", what);
}

EVP_PKEY *tp_key_bits(int bits)
{
	EVP_PKEY *k = EVP_RSA_gen((unsigned int)bits);

	tp_need(k != NULL, "RSA key generation");
	return k;
}

EVP_PKEY *tp_key(void)
{
	return tp_key_bits(2048);
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	tp_need(ext != NULL, "extension");
	tp_need(X509_add_ext(x, ext, -1), "X509_add_ext");
	X509_EXTENSION_free(ext);
}

static void ku_string(int ku, char *buf, size_t len)
{
	static const struct { int bit; const char *name; } names[] = {
		{ KU_DIGITAL_SIGNATURE, "digitalSignature" },
		{ KU_NON_REPUDIATION, "nonRepudiation" },
		{ KU_KEY_ENCIPHERMENT, "keyEncipherment" },
		{ KU_DATA_ENCIPHERMENT, "dataEncipherment" },
		{ KU_KEY_AGREEMENT, "keyAgreement" },
	};
	size_t i;

	snprintf(buf, len, "critical");
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (ku & names[i].bit) {
			size_t n = strlen(buf);

			snprintf(buf + n, len - n, ",%s", names[i].name);
		}
	}
}

static void set_serial(X509 *x, long serial)
{
	unsigned char rnd[16];
	BIGNUM *bn;
	ASN1_INTEGER *ai;

	if (serial != 0) {
		tp_need(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), "serial");
		return;
	}
	tp_need(RAND_bytes(rnd, sizeof(rnd)) == 1, "RAND_bytes");
	rnd[0] &= 0x7f;
	rnd[0] |= 0x01;
	bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
	tp_need(bn != NULL, "BN_bin2bn");
	ai = BN_to_ASN1_INTEGER(bn, NULL);
	tp_need(ai != NULL && X509_set_serialNumber(x, ai), "set serial");
	ASN1_INTEGER_free(ai);
	BN_free(bn);
}

X509 *tp_cert(const struct tp_cert_spec *s)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	EVP_PKEY *ikey = s->issuer != NULL ? s->issuer_key : s->key;
	char ku[160];

	tp_need(x != NULL && name != NULL, "X509_new");
	tp_need(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	    (const unsigned char *)"p11scep test", -1, -1, 0), "name O");
	tp_need(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)s->cn, -1, -1, 0), "name CN");
	tp_need(X509_set_version(x, s->version1 ? X509_VERSION_1 : X509_VERSION_3), "version");
	set_serial(x, s->serial);
	tp_need(X509_set_subject_name(x, name), "subject");
	tp_need(X509_set_issuer_name(x, s->issuer != NULL ?
	    X509_get_subject_name(s->issuer) : name), "issuer");
	tp_need(X509_gmtime_adj(X509_getm_notBefore(x),
	    s->not_before != 0 ? s->not_before : -3600) != NULL, "notBefore");
	tp_need(X509_time_adj_ex(X509_getm_notAfter(x), s->days != 0 ? (int)s->days : 365,
	    0, NULL) != NULL, "notAfter");
	tp_need(X509_set_pubkey(x, s->key), "pubkey");
	if (!s->version1) {
		add_ext(x, s->issuer != NULL ? s->issuer : x, NID_subject_key_identifier, "hash");
		if (s->issuer != NULL)
			add_ext(x, s->issuer, NID_authority_key_identifier, "keyid");
		if (s->ca) {
			add_ext(x, NULL, NID_basic_constraints, "critical,CA:TRUE");
			add_ext(x, NULL, NID_key_usage, "critical,keyCertSign,cRLSign");
		} else {
			add_ext(x, NULL, NID_basic_constraints, "critical,CA:FALSE");
			if (s->ku != 0) {
				ku_string(s->ku, ku, sizeof(ku));
				add_ext(x, NULL, NID_key_usage, ku);
			}
		}
	}
	tp_need(X509_sign(x, ikey, EVP_sha256()) > 0, "X509_sign");
	X509_NAME_free(name);
	return x;
}

X509 *tp_root(EVP_PKEY *key, const char *cn)
{
	struct tp_cert_spec s = { .cn = cn, .key = key, .ca = 1 };

	return tp_cert(&s);
}

X509 *tp_subca(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key)
{
	struct tp_cert_spec s = { .cn = cn, .key = key, .issuer = issuer,
	    .issuer_key = issuer_key, .ca = 1 };

	return tp_cert(&s);
}

X509 *tp_leaf(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, int ku)
{
	struct tp_cert_spec s = { .cn = cn, .key = key, .issuer = issuer,
	    .issuer_key = issuer_key, .ku = ku };

	return tp_cert(&s);
}

unsigned char *tp_cert_der(X509 *x, size_t *len)
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);

	tp_need(n > 0, "i2d_X509");
	*len = (size_t)n;
	return der;
}

unsigned char *tp_bag_crl_der(X509 *const *certs, size_t n, X509_CRL *const *crls,
			      size_t n_crls, size_t *len)
{
	PKCS7 *p7 = PKCS7_new();
	unsigned char *der = NULL;
	size_t i;
	int dlen;

	/* The shape `openssl crl2pkcs7` and most CAs produce. */
	tp_need(p7 != NULL && PKCS7_set_type(p7, NID_pkcs7_signed), "PKCS7 signed");
	tp_need(PKCS7_content_new(p7, NID_pkcs7_data), "PKCS7 content");
	for (i = 0; i < n; i++)
		tp_need(PKCS7_add_certificate(p7, certs[i]), "PKCS7_add_certificate");
	for (i = 0; i < n_crls; i++)
		tp_need(PKCS7_add_crl(p7, crls[i]), "PKCS7_add_crl");
	dlen = i2d_PKCS7(p7, &der);
	tp_need(dlen > 0, "i2d_PKCS7");
	PKCS7_free(p7);
	*len = (size_t)dlen;
	return der;
}

unsigned char *tp_bag_der(X509 *const *certs, size_t n, size_t *len)
{
	return tp_bag_crl_der(certs, n, NULL, 0, len);
}

X509_CRL *tp_crl(X509 *issuer, EVP_PKEY *issuer_key, long serial)
{
	X509_CRL *crl = X509_CRL_new();
	X509_REVOKED *rev;
	ASN1_TIME *t = ASN1_TIME_new();

	tp_need(crl != NULL && t != NULL, "X509_CRL_new");
	tp_need(X509_CRL_set_version(crl, X509_CRL_VERSION_2), "CRL version");
	tp_need(X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)), "CRL issuer");
	tp_need(X509_gmtime_adj(t, -3600) != NULL && X509_CRL_set1_lastUpdate(crl, t),
	    "CRL lastUpdate");
	tp_need(X509_gmtime_adj(t, 86400) != NULL && X509_CRL_set1_nextUpdate(crl, t),
	    "CRL nextUpdate");
	if (serial != 0) {
		ASN1_INTEGER *ai = ASN1_INTEGER_new();

		rev = X509_REVOKED_new();
		tp_need(rev != NULL && ai != NULL, "X509_REVOKED_new");
		tp_need(ASN1_INTEGER_set(ai, serial) &&
		    X509_REVOKED_set_serialNumber(rev, ai), "revoked serial");
		ASN1_INTEGER_free(ai);
		tp_need(X509_gmtime_adj(t, -60) != NULL &&
		    X509_REVOKED_set_revocationDate(rev, t), "revocation date");
		tp_need(X509_CRL_add0_revoked(crl, rev), "X509_CRL_add0_revoked");
	}
	tp_need(X509_CRL_sort(crl), "X509_CRL_sort");
	tp_need(X509_CRL_sign(crl, issuer_key, EVP_sha256()) > 0, "X509_CRL_sign");
	ASN1_TIME_free(t);
	return crl;
}

unsigned char *tp_signed_der(const struct tp_signed *s, size_t *len)
{
	const EVP_MD *md = EVP_get_digestbyname(s->digest != NULL ? s->digest : "SHA256");
	unsigned char *der = NULL;
	CMS_ContentInfo *cms;
	BIO *in;
	size_t i;
	int n;

	tp_need(md != NULL, "digest");
	cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_PARTIAL | CMS_BINARY);
	tp_need(cms != NULL, "CMS_sign");
	if (s->econtent_signed)
		tp_need(CMS_set1_eContentType(cms, OBJ_nid2obj(NID_pkcs7_signed)),
		    "CMS_set1_eContentType");
	tp_need(CMS_add1_signer(cms, s->signer_cert, s->signer_key, md,
	    CMS_BINARY | CMS_NOSMIMECAP | (s->no_signer_cert ? CMS_NOCERTS : 0)) != NULL,
	    "CMS_add1_signer");
	for (i = 0; i < s->n_extra; i++)
		tp_need(CMS_add1_cert(cms, s->extra[i]), "CMS_add1_cert");
	if (s->detached)
		tp_need(CMS_set_detached(cms, 1), "CMS_set_detached");
	in = BIO_new_mem_buf(s->content != NULL ? (const void *)s->content : (const void *)"",
	    (int)s->content_len);
	tp_need(in != NULL, "BIO");
	tp_need(CMS_final(cms, in, NULL, CMS_BINARY), "CMS_final");
	n = i2d_CMS_ContentInfo(cms, &der);
	tp_need(n > 0, "i2d SignedData");
	*len = (size_t)n;
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	return der;
}

static unsigned char *envelope(const struct tp_certrep *r, size_t *len)
{
	STACK_OF(X509) *to = sk_X509_new_null();
	EVP_CIPHER *ci = EVP_CIPHER_fetch(NULL, r->cipher != NULL ? r->cipher :
	    "AES-128-CBC", NULL);
	unsigned char *bag, *der = NULL;
	size_t blen;
	BIO *in;
	CMS_ContentInfo *env;
	int n;

	tp_need(to != NULL && sk_X509_push(to, r->recipient), "recipient stack");
	tp_need(ci != NULL, "cipher fetch");
	bag = tp_bag_crl_der(r->issued, r->n_issued, r->crls, r->n_crls, &blen);
	in = BIO_new_mem_buf(bag, (int)blen);
	tp_need(in != NULL, "BIO");
	env = CMS_encrypt(to, in, ci, CMS_BINARY);
	tp_need(env != NULL, "CMS_encrypt");
	n = i2d_CMS_ContentInfo(env, &der);
	tp_need(n > 0, "i2d envelope");
	*len = (size_t)n;
	CMS_ContentInfo_free(env);
	BIO_free(in);
	OPENSSL_free(bag);
	EVP_CIPHER_free(ci);
	sk_X509_free(to);
	return der;
}

static void add_attr(CMS_SignerInfo *si, const char *oid, int type,
		     const void *bytes, size_t len)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);

	tp_need(obj != NULL, "OBJ_txt2obj");
	tp_need(CMS_signed_add1_attr_by_OBJ(si, obj, type, bytes, (int)len), oid);
	ASN1_OBJECT_free(obj);
}

static void add_str(CMS_SignerInfo *si, const char *oid, int type, const char *s)
{
	if (s != NULL)
		add_attr(si, oid, type, s, strlen(s));
}

unsigned char *tp_certrep_der(const struct tp_certrep *r, size_t *len)
{
	const EVP_MD *md = EVP_get_digestbyname(r->digest != NULL ? r->digest : "SHA256");
	unsigned char nonce[16], *content = NULL, *der = NULL;
	size_t clen = 0;
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si;
	BIO *in;
	int n;

	tp_need(md != NULL, "digest");
	if (r->issued != NULL || r->crls != NULL)
		content = envelope(r, &clen);
	cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_PARTIAL | CMS_BINARY);
	tp_need(cms != NULL, "CMS_sign");
	si = CMS_add1_signer(cms, r->signer_cert, r->signer_key, md,
	    CMS_BINARY | CMS_NOSMIMECAP | (r->no_signer_cert ? CMS_NOCERTS : 0));
	tp_need(si != NULL, "CMS_add1_signer");
	if (r->signer2_cert != NULL)
		tp_need(CMS_add1_signer(cms, r->signer2_cert, r->signer2_key, md,
		    CMS_BINARY | CMS_NOSMIMECAP) != NULL, "second signer");
	if (r->extra_cert != NULL)
		tp_need(CMS_add1_cert(cms, r->extra_cert), "CMS_add1_cert");
	add_str(si, "2.16.840.1.113733.1.9.2", V_ASN1_PRINTABLESTRING,
	    r->msgtype != NULL ? r->msgtype : "3");
	add_str(si, "2.16.840.1.113733.1.9.3", V_ASN1_PRINTABLESTRING, r->status);
	add_str(si, "2.16.840.1.113733.1.9.4", V_ASN1_PRINTABLESTRING, r->failinfo);
	add_str(si, "2.16.840.1.113733.1.9.7", V_ASN1_PRINTABLESTRING, r->txid);
	add_str(si, "1.3.6.1.5.5.7.24.1", V_ASN1_UTF8STRING, r->failtext);
	if (r->sender_nonce != NULL)
		memcpy(nonce, r->sender_nonce, sizeof(nonce));
	else
		tp_need(RAND_bytes(nonce, sizeof(nonce)) == 1, "nonce");
	add_attr(si, "2.16.840.1.113733.1.9.5", V_ASN1_OCTET_STRING, nonce, sizeof(nonce));
	if (r->recipient_nonce != NULL)
		add_attr(si, "2.16.840.1.113733.1.9.6", V_ASN1_OCTET_STRING,
		    r->recipient_nonce, r->recipient_nonce_len);
	if (r->detached)
		tp_need(CMS_set_detached(cms, 1), "CMS_set_detached");
	in = BIO_new_mem_buf(content != NULL ? (void *)content : (void *)"", (int)clen);
	tp_need(in != NULL, "BIO");
	tp_need(CMS_final(cms, in, NULL, CMS_BINARY), "CMS_final");
	n = i2d_CMS_ContentInfo(cms, &der);
	tp_need(n > 0, "i2d CertRep");
	*len = (size_t)n;
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	OPENSSL_free(content);
	return der;
}

void tp_init(const char *argv0)
{
	const char *src = getenv("TESTS_SRCDIR");
	const char *slash;

	if (src != NULL && *src != '\0') {
		snprintf(data_dir, sizeof(data_dir), "%s/unit/data", src);
		return;
	}
	slash = argv0 != NULL ? strrchr(argv0, '/') : NULL;
	if (slash == NULL)
		snprintf(data_dir, sizeof(data_dir), "data");
	else
		snprintf(data_dir, sizeof(data_dir), "%.*s/data", (int)(slash - argv0), argv0);
}

unsigned char *tp_read_data(const char *name, size_t *len)
{
	char path[4200];
	unsigned char *buf = NULL;
	FILE *f;
	long n = -1;

	*len = 0;
	snprintf(path, sizeof(path), "%s/%s", data_dir[0] ? data_dir : "data", name);
	f = fopen(path, "rb");
	if (f != NULL && fseek(f, 0, SEEK_END) == 0)
		n = ftell(f);
	if (n >= 0 && fseek(f, 0, SEEK_SET) == 0)
		buf = malloc((size_t)n + 1);
	if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	if (f != NULL)
		fclose(f);
	if (buf == NULL)
		fail_msg("testpki: cannot read %s (set TESTS_SRCDIR)", path);
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}
