#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/asn1t.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "scep_msg.h"

#define MSG_MAX_LEN	(4L * 1024L * 1024L)
#define MSG_MAX_CERTS	64
#define MSG_MAX_CRLS	16
#define FAIL_TEXT_MAX	256

/* RFC 8894 §3.2.1 attributes, registered once with OpenSSL's object table. */
static CRYPTO_ONCE oid_once = CRYPTO_ONCE_STATIC_INIT;
static int oid_ready;
static int nid_msgtype, nid_status, nid_failinfo, nid_snonce, nid_rnonce, nid_txid,
    nid_failtext;

static int oid_nid(const char *oid, const char *sn, const char *ln)
{
	int nid = OBJ_txt2nid(oid);

	if (nid == NID_undef)
		nid = OBJ_create(oid, sn, ln);
	return nid;
}

static void oid_init(void)
{
	nid_msgtype = oid_nid("2.16.840.1.113733.1.9.2", "scep-messageType", "SCEP messageType");
	nid_status = oid_nid("2.16.840.1.113733.1.9.3", "scep-pkiStatus", "SCEP pkiStatus");
	nid_failinfo = oid_nid("2.16.840.1.113733.1.9.4", "scep-failInfo", "SCEP failInfo");
	nid_snonce = oid_nid("2.16.840.1.113733.1.9.5", "scep-senderNonce", "SCEP senderNonce");
	nid_rnonce = oid_nid("2.16.840.1.113733.1.9.6", "scep-recipientNonce",
	    "SCEP recipientNonce");
	nid_txid = oid_nid("2.16.840.1.113733.1.9.7", "scep-transactionID",
	    "SCEP transactionID");
	nid_failtext = oid_nid("1.3.6.1.5.5.7.24.1", "scep-failInfoText", "SCEP failInfoText");
	oid_ready = nid_msgtype != NID_undef && nid_status != NID_undef &&
	    nid_failinfo != NID_undef && nid_snonce != NID_undef &&
	    nid_rnonce != NID_undef && nid_txid != NID_undef && nid_failtext != NID_undef;
}

static enum p11s_err oids(void)
{
	if (!CRYPTO_THREAD_run_once(&oid_once, oid_init) || !oid_ready)
		return err_set_ssl(P11S_E_INTERNAL, "cannot register the SCEP attribute OIDs");
	ERR_clear_error();	/* lookups of unknown OIDs leave noise */
	return P11S_OK;
}

const char *scep_failinfo_name(int fail_info)
{
	switch (fail_info) {
	case FAIL_NONE:			return "none";
	case FAIL_BADALG:		return "badAlg";
	case FAIL_BADMESSAGECHECK:	return "badMessageCheck";
	case FAIL_BADREQUEST:		return "badRequest";
	case FAIL_BADTIME:		return "badTime";
	case FAIL_BADCERTID:		return "badCertId";
	}
	return "unknown";
}

enum p11s_err scep_txid_from_key(EVP_PKEY *key, char txid[SCEP_TXID_MAX])
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char *der = NULL, md[32];
	unsigned int mdlen = 0, i;
	int n;

	memset(txid, 0, SCEP_TXID_MAX);
	n = key != NULL ? i2d_PUBKEY(key, &der) : -1;
	if (n <= 0)
		return err_set_ssl(P11S_E_TOKEN, "cannot encode the public key for the transactionID");
	if (!EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
		OPENSSL_free(der);
		return err_set_ssl(P11S_E_INTERNAL, "cannot hash the public key");
	}
	OPENSSL_free(der);
	for (i = 0; i < 32; i++) {
		txid[2 * i] = hex[md[i] >> 4];
		txid[2 * i + 1] = hex[md[i] & 0xf];
	}
	txid[64] = '\0';
	return P11S_OK;
}

enum p11s_err scep_new_nonce(unsigned char nonce[SCEP_NONCE_LEN])
{
	if (RAND_bytes(nonce, SCEP_NONCE_LEN) != 1)
		return err_set_ssl(P11S_E_INTERNAL, "no random numbers for a senderNonce");
	return P11S_OK;
}

/* ---- requests ---- */

/* Ciphers we send with: never single DES, RC2 or anything a server rarely knows. */
static enum p11s_err request_cipher(const char *name, EVP_CIPHER **out)
{
	EVP_CIPHER *c;
	int nid;

	*out = NULL;
	c = name != NULL ? EVP_CIPHER_fetch(NULL, name, NULL) : NULL;
	if (c == NULL) {
		ERR_clear_error();
		return err_set(P11S_E_USAGE, "unknown cipher '%s'", name != NULL ? name : "");
	}
	nid = EVP_CIPHER_get_nid(c);
	if (nid != NID_aes_128_cbc && nid != NID_aes_192_cbc && nid != NID_aes_256_cbc &&
	    nid != NID_des_ede3_cbc) {
		EVP_CIPHER_free(c);
		return err_set(P11S_E_USAGE,
		    "cipher %s is not used for SCEP requests: use AES-128-CBC, "
		    "AES-256-CBC or DES-EDE3-CBC", name);
	}
	*out = c;
	return P11S_OK;
}

static const EVP_MD *request_digest(const char *name)
{
	const EVP_MD *md = name != NULL ? EVP_get_digestbyname(name) : NULL;

	if (md == NULL)
		return NULL;
	switch (EVP_MD_get_type(md)) {
	case NID_sha1:
	case NID_sha224:
	case NID_sha256:
	case NID_sha384:
	case NID_sha512:
		return md;
	}
	return NULL;
}

static int is_request_type(enum scep_msgtype t)
{
	return t == MSG_PKCSREQ || t == MSG_RENEWALREQ || t == MSG_CERTPOLL ||
	    t == MSG_GETCERT || t == MSG_GETCRL;
}

/* EnvelopedData ContentInfo around content, to recipient, DER. */
static enum p11s_err envelope(const struct scep_request *r, const EVP_CIPHER *cipher,
			      unsigned char **der, int *len)
{
	STACK_OF(X509) *to = sk_X509_new_null();
	BIO *in = NULL;
	CMS_ContentInfo *env = NULL;
	enum p11s_err e = P11S_OK;

	*der = NULL;
	*len = 0;
	if (r->content_len > INT_MAX) {
		e = err_set(P11S_E_INTERNAL, "request content too large");
		goto out;
	}
	in = BIO_new_mem_buf(r->content, (int)r->content_len);
	if (to == NULL || in == NULL || !sk_X509_push(to, r->recipient)) {
		e = err_set(P11S_E_NOMEM, "out of memory building the request");
		goto out;
	}
	/* issuerAndSerialNumber recipient id: what every SCEP server expects. */
	env = CMS_encrypt(to, in, cipher, CMS_BINARY);
	if (env == NULL) {
		e = err_set_ssl(P11S_E_INTERNAL,
		    "cannot encrypt the request to the CA/RA certificate");
		goto out;
	}
	*len = i2d_CMS_ContentInfo(env, der);
	if (*len <= 0) {
		*der = NULL;
		e = err_set_ssl(P11S_E_INTERNAL, "cannot encode the request envelope");
	}
out:
	CMS_ContentInfo_free(env);
	BIO_free(in);
	sk_X509_free(to);
	return e;
}

static enum p11s_err add_attrs(CMS_SignerInfo *si, const struct scep_request *r)
{
	char type[8];
	size_t txlen = strnlen(r->txn->txid, SCEP_TXID_MAX);

	if (txlen == 0 || txlen >= SCEP_TXID_MAX)
		return err_set(P11S_E_INTERNAL, "no transactionID for the request");
	snprintf(type, sizeof(type), "%d", (int)r->type);
	/* Explicit lengths: -1 would mean "data is an ASN1_STRING". */
	if (!CMS_signed_add1_attr_by_NID(si, nid_msgtype, V_ASN1_PRINTABLESTRING, type,
		(int)strlen(type)) ||
	    !CMS_signed_add1_attr_by_NID(si, nid_txid, V_ASN1_PRINTABLESTRING,
		r->txn->txid, (int)txlen) ||
	    !CMS_signed_add1_attr_by_NID(si, nid_snonce, V_ASN1_OCTET_STRING,
		r->txn->sender_nonce, SCEP_NONCE_LEN))
		return err_set_ssl(P11S_E_INTERNAL, "cannot add SCEP attributes to the request");
	return P11S_OK;
}

static enum p11s_err check_request(const struct scep_request *r)
{
	if (r == NULL || r->txn == NULL || r->signer_cert == NULL || r->signer_key == NULL ||
	    r->recipient == NULL || (r->content == NULL && r->content_len != 0))
		return err_set(P11S_E_INTERNAL, "incomplete SCEP request");
	if (!is_request_type(r->type))
		return err_set(P11S_E_INTERNAL, "messageType %d is not a request", (int)r->type);
	return P11S_OK;
}

/* SignedData around env (the EnvelopedData DER), signed by the request's key. */
static enum p11s_err sign_envelope(const struct scep_request *r, const EVP_MD *md,
				   const unsigned char *env, int env_len,
				   unsigned char **der, size_t *len)
{
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si;
	BIO *in = NULL;
	enum p11s_err e = P11S_OK;
	int n;

	cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_PARTIAL | CMS_BINARY);
	if (cms == NULL)
		return err_set_ssl(P11S_E_NOMEM, "cannot start the request SignedData");
	/* No S/MIME capabilities: SCEP servers do not want them. CMS_final signs,
	 * adding contentType, messageDigest and signingTime. */
	si = CMS_add1_signer(cms, r->signer_cert, r->signer_key, md,
	    CMS_BINARY | CMS_NOSMIMECAP | CMS_PARTIAL);
	if (si == NULL) {
		e = err_set_ssl(P11S_E_TOKEN, "cannot use the key and signer certificate "
		    "to sign the request");
		goto out;
	}
	e = add_attrs(si, r);
	if (e != P11S_OK)
		goto out;
	in = BIO_new_mem_buf(env, env_len);
	if (in == NULL) {
		e = err_set(P11S_E_NOMEM, "out of memory building the request");
		goto out;
	}
	if (!CMS_final(cms, in, NULL, CMS_BINARY)) {
		e = err_set_ssl(P11S_E_TOKEN, "the token failed to sign the request with the key");
		goto out;
	}
	n = i2d_CMS_ContentInfo(cms, der);
	if (n <= 0) {
		*der = NULL;
		e = err_set_ssl(P11S_E_INTERNAL, "cannot encode the request");
		goto out;
	}
	*len = (size_t)n;
out:
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	return e;
}

enum p11s_err scep_request_build(const struct scep_request *r, unsigned char **der, size_t *len)
{
	EVP_CIPHER *cipher = NULL;
	const EVP_MD *md;
	unsigned char *env = NULL;
	int env_len = 0;
	enum p11s_err e;

	*der = NULL;
	*len = 0;
	e = check_request(r);
	if (e == P11S_OK)
		e = oids();
	if (e != P11S_OK)
		return e;
	md = request_digest(r->digest);
	if (md == NULL)
		return err_set(P11S_E_USAGE, "digest '%s' is not used for SCEP requests: use "
		    "SHA256, SHA512 or SHA1", r->digest != NULL ? r->digest : "");
	e = request_cipher(r->cipher, &cipher);
	if (e == P11S_OK)
		e = envelope(r, cipher, &env, &env_len);
	if (e == P11S_OK)
		e = sign_envelope(r, md, env, env_len, der, len);
	OPENSSL_free(env);
	EVP_CIPHER_free(cipher);
	return e;
}

/* ---- request contents (RFC 8894 §3.3.3, §3.3.4) ---- */

typedef struct {
	X509_NAME *issuer;
	X509_NAME *subject;
} SCEP_ISSUER_AND_SUBJECT;

ASN1_SEQUENCE(SCEP_ISSUER_AND_SUBJECT) = {
	ASN1_SIMPLE(SCEP_ISSUER_AND_SUBJECT, issuer, X509_NAME),
	ASN1_SIMPLE(SCEP_ISSUER_AND_SUBJECT, subject, X509_NAME),
} static_ASN1_SEQUENCE_END(SCEP_ISSUER_AND_SUBJECT)

IMPLEMENT_STATIC_ASN1_ALLOC_FUNCTIONS(SCEP_ISSUER_AND_SUBJECT)

typedef struct {
	X509_NAME *issuer;
	ASN1_INTEGER *serial;
} SCEP_ISSUER_AND_SERIAL;

ASN1_SEQUENCE(SCEP_ISSUER_AND_SERIAL) = {
	ASN1_SIMPLE(SCEP_ISSUER_AND_SERIAL, issuer, X509_NAME),
	ASN1_SIMPLE(SCEP_ISSUER_AND_SERIAL, serial, ASN1_INTEGER),
} static_ASN1_SEQUENCE_END(SCEP_ISSUER_AND_SERIAL)

IMPLEMENT_STATIC_ASN1_ALLOC_FUNCTIONS(SCEP_ISSUER_AND_SERIAL)

/* RFC 5280 allows 20 octets; be lenient with old CAs, not with nonsense. */
#define SERIAL_MAX_LEN	64

/* DER of v (an item of type it) into *der / *len; the encoder does the lengths. */
static enum p11s_err encode_item(const ASN1_VALUE *v, const ASN1_ITEM *it, const char *what,
				 unsigned char **der, size_t *len)
{
	int n;

	n = ASN1_item_i2d(v, der, it);
	if (n <= 0) {
		*der = NULL;
		return err_set_ssl(P11S_E_INTERNAL, "cannot encode the %s", what);
	}
	*len = (size_t)n;
	return P11S_OK;
}

static int name_empty(const X509_NAME *n)
{
	return X509_NAME_entry_count(n) <= 0;
}

enum p11s_err scep_issuer_and_subject_der(const X509_NAME *issuer, const X509_NAME *subject,
					  unsigned char **der, size_t *len)
{
	SCEP_ISSUER_AND_SUBJECT *ias = NULL;
	enum p11s_err e;

	*der = NULL;
	*len = 0;
	if (issuer == NULL || subject == NULL)
		return err_set(P11S_E_INTERNAL, "CertPoll needs an issuer and a subject");
	if (name_empty(issuer))
		return err_set(P11S_E_USAGE, "the CA certificate has an empty subject name: "
		    "it cannot be named in a CertPoll");
	ias = SCEP_ISSUER_AND_SUBJECT_new();
	if (ias == NULL || !X509_NAME_set(&ias->issuer, issuer) ||
	    !X509_NAME_set(&ias->subject, subject)) {
		e = err_set(P11S_E_NOMEM, "out of memory building a CertPoll");
		goto out;
	}
	e = encode_item((const ASN1_VALUE *)ias, ASN1_ITEM_rptr(SCEP_ISSUER_AND_SUBJECT),
	    "CertPoll's IssuerAndSubject", der, len);
out:
	SCEP_ISSUER_AND_SUBJECT_free(ias);
	return e;
}

enum p11s_err scep_issuer_and_serial_der(const X509_NAME *issuer, const ASN1_INTEGER *serial,
					 unsigned char **der, size_t *len)
{
	SCEP_ISSUER_AND_SERIAL *ias = NULL;
	enum p11s_err e;
	int t;

	*der = NULL;
	*len = 0;
	if (issuer == NULL || serial == NULL)
		return err_set(P11S_E_INTERNAL, "GetCert/GetCRL needs an issuer and a serial number");
	if (name_empty(issuer))
		return err_set(P11S_E_USAGE, "the issuer name is empty: a certificate cannot "
		    "be named by it (check the certificate given)");
	t = ASN1_STRING_type(serial);
	if ((t != V_ASN1_INTEGER && t != V_ASN1_NEG_INTEGER) ||
	    ASN1_STRING_length(serial) < 1 || ASN1_STRING_length(serial) > SERIAL_MAX_LEN)
		return err_set(P11S_E_USAGE, "the serial number is not an integer of 1 to %d "
		    "bytes (check the certificate given)", SERIAL_MAX_LEN);
	ias = SCEP_ISSUER_AND_SERIAL_new();
	if (ias == NULL || !X509_NAME_set(&ias->issuer, issuer)) {
		e = err_set(P11S_E_NOMEM, "out of memory building a GetCert/GetCRL request");
		goto out;
	}
	ASN1_INTEGER_free(ias->serial);
	ias->serial = ASN1_INTEGER_dup(serial);
	if (ias->serial == NULL) {
		e = err_set(P11S_E_NOMEM, "out of memory building a GetCert/GetCRL request");
		goto out;
	}
	e = encode_item((const ASN1_VALUE *)ias, ASN1_ITEM_rptr(SCEP_ISSUER_AND_SERIAL),
	    "IssuerAndSerialNumber", der, len);
out:
	SCEP_ISSUER_AND_SERIAL_free(ias);
	return e;
}

/* ---- replies ---- */

/* Printable copy of hostile bytes for messages: no control characters. */
static void safe_copy(char *dst, size_t dstlen, const unsigned char *src, size_t n)
{
	size_t i, o = 0;

	if (dstlen == 0)
		return;
	for (i = 0; i < n && o + 1 < dstlen; i++)
		dst[o++] = (src[i] >= 0x20 && src[i] < 0x7f) ? (char)src[i] : '?';
	dst[o] = '\0';
}

/* The single value of a signed attribute, or NULL when it is absent. */
static enum p11s_err get_attr(CMS_SignerInfo *si, int nid, const char *name, ASN1_TYPE **out)
{
	X509_ATTRIBUTE *a;
	int i;

	*out = NULL;
	i = CMS_signed_get_attr_by_NID(si, nid, -1);
	if (i < 0)
		return P11S_OK;
	if (CMS_signed_get_attr_by_NID(si, nid, i) >= 0)
		return err_set(P11S_E_UNTRUSTED, "CertRep carries %s twice", name);
	a = CMS_signed_get_attr(si, i);
	if (a == NULL || X509_ATTRIBUTE_count(a) != 1)
		return err_set(P11S_E_UNTRUSTED, "CertRep's %s has %d values, not one",
		    name, a != NULL ? X509_ATTRIBUTE_count(a) : 0);
	*out = X509_ATTRIBUTE_get0_type(a, 0);
	return P11S_OK;
}

static int is_text_type(int t)
{
	return t == V_ASN1_PRINTABLESTRING || t == V_ASN1_UTF8STRING || t == V_ASN1_IA5STRING;
}

/* A short text attribute into buf (NUL-terminated); *present 0 when absent. */
static enum p11s_err get_text(CMS_SignerInfo *si, int nid, const char *name,
			      char *buf, size_t buflen, int *present)
{
	ASN1_TYPE *t;
	const ASN1_STRING *s;
	enum p11s_err e;
	int n;

	buf[0] = '\0';
	*present = 0;
	e = get_attr(si, nid, name, &t);
	if (e != P11S_OK || t == NULL)
		return e;
	if (!is_text_type(ASN1_TYPE_get(t)))
		return err_set(P11S_E_MALFORMED, "CertRep's %s is not a string", name);
	s = t->value.asn1_string;
	n = ASN1_STRING_length(s);
	if (n < 0 || (size_t)n >= buflen ||
	    memchr(ASN1_STRING_get0_data(s), '\0', (size_t)n) != NULL)
		return err_set(P11S_E_UNTRUSTED, "CertRep's %s is too long (%d bytes)", name, n);
	memcpy(buf, ASN1_STRING_get0_data(s), (size_t)n);
	buf[n] = '\0';
	*present = 1;
	return P11S_OK;
}

static enum p11s_err check_msgtype(CMS_SignerInfo *si)
{
	char v[16], shown[16];
	int present;
	enum p11s_err e;

	e = get_text(si, nid_msgtype, "messageType", v, sizeof(v), &present);
	if (e != P11S_OK)
		return e;
	if (!present)
		return err_set(P11S_E_MALFORMED, "reply carries no messageType");
	if (strcmp(v, "3") != 0) {
		safe_copy(shown, sizeof(shown), (const unsigned char *)v, strlen(v));
		return err_set(P11S_E_UNTRUSTED, "reply has messageType '%s', not CertRep (3)",
		    shown);
	}
	return P11S_OK;
}

static enum p11s_err check_txid(CMS_SignerInfo *si, const struct scep_txn *txn)
{
	char v[SCEP_TXID_MAX + 64], shown[80];
	int present;
	enum p11s_err e;

	e = get_text(si, nid_txid, "transactionID", v, sizeof(v), &present);
	if (e != P11S_OK)
		return e;
	if (!present)
		return err_set(P11S_E_UNTRUSTED, "CertRep carries no transactionID");
	if (strcmp(v, txn->txid) != 0) {
		safe_copy(shown, sizeof(shown), (const unsigned char *)v, strlen(v));
		return err_set(P11S_E_UNTRUSTED, "CertRep is for transactionID %s, not ours (%s)",
		    shown, txn->txid);
	}
	return P11S_OK;
}

static enum p11s_err check_nonce(CMS_SignerInfo *si, const struct scep_txn *txn)
{
	ASN1_TYPE *t;
	const ASN1_STRING *s;
	enum p11s_err e;

	e = get_attr(si, nid_rnonce, "recipientNonce", &t);
	if (e != P11S_OK)
		return e;
	if (t == NULL)
		return err_set(P11S_E_UNTRUSTED,
		    "CertRep carries no recipientNonce: it cannot be matched to our request");
	if (ASN1_TYPE_get(t) != V_ASN1_OCTET_STRING)
		return err_set(P11S_E_MALFORMED, "CertRep's recipientNonce is not an OCTET STRING");
	s = t->value.octet_string;
	if (ASN1_STRING_length(s) != SCEP_NONCE_LEN ||
	    CRYPTO_memcmp(ASN1_STRING_get0_data(s), txn->sender_nonce, SCEP_NONCE_LEN) != 0)
		return err_set(P11S_E_UNTRUSTED,
		    "CertRep's recipientNonce is not our senderNonce: a replayed or "
		    "foreign reply");
	return P11S_OK;
}

static enum p11s_err read_status(CMS_SignerInfo *si, struct scep_reply *out)
{
	char v[16], shown[16];
	int present;
	enum p11s_err e;

	e = get_text(si, nid_status, "pkiStatus", v, sizeof(v), &present);
	if (e != P11S_OK)
		return e;
	if (!present)
		return err_set(P11S_E_MALFORMED, "CertRep carries no pkiStatus");
	if (strcmp(v, "0") == 0)
		out->status = STATUS_SUCCESS;
	else if (strcmp(v, "2") == 0)
		out->status = STATUS_FAILURE;
	else if (strcmp(v, "3") == 0)
		out->status = STATUS_PENDING;
	else {
		safe_copy(shown, sizeof(shown), (const unsigned char *)v, strlen(v));
		return err_set(P11S_E_UNTRUSTED, "unknown pkiStatus '%s' in the CertRep", shown);
	}
	return P11S_OK;
}

static enum p11s_err read_failinfo(CMS_SignerInfo *si, struct scep_reply *out)
{
	char v[16], shown[16];
	int present;
	enum p11s_err e;

	out->fail_info = FAIL_NONE;
	if (out->status != STATUS_FAILURE)
		return P11S_OK;
	e = get_text(si, nid_failinfo, "failInfo", v, sizeof(v), &present);
	if (e != P11S_OK || !present)
		return e;	/* a FAILURE without a reason is still a FAILURE */
	if (strlen(v) == 1 && v[0] >= '0' && v[0] <= '4') {
		out->fail_info = v[0] - '0';
		return P11S_OK;
	}
	safe_copy(shown, sizeof(shown), (const unsigned char *)v, strlen(v));
	return err_set(P11S_E_UNTRUSTED, "unknown failInfo '%s' in the CertRep", shown);
}

/*
 * failInfoText is for people: keep at most FAIL_TEXT_MAX bytes of it, whole
 * UTF-8 characters only, and no control characters (C0, DEL, C1), which
 * could drive a terminal.
 */
static char *clean_text(const unsigned char *p, int n)
{
	char *t = malloc(FAIL_TEXT_MAX + 1);
	size_t o = 0;
	unsigned long c;
	int k;

	if (t == NULL)
		return NULL;
	while (n > 0) {
		k = UTF8_getc(p, n, &c);
		if (k <= 0) {
			k = 1;
			c = '?';
		}
		if (c < 0x20 || (c >= 0x7f && c < 0xa0) || k == 1) {
			if (o + 1 > FAIL_TEXT_MAX)
				break;
			t[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
		} else {
			if (o + (size_t)k > FAIL_TEXT_MAX)
				break;
			memcpy(t + o, p, (size_t)k);
			o += (size_t)k;
		}
		p += k;
		n -= k;
	}
	t[o] = '\0';
	return t;
}

static enum p11s_err read_failtext(CMS_SignerInfo *si, struct scep_reply *out)
{
	ASN1_TYPE *t;
	const ASN1_STRING *s;
	enum p11s_err e;

	e = get_attr(si, nid_failtext, "failInfoText", &t);
	if (e != P11S_OK || t == NULL)
		return e;
	if (!is_text_type(ASN1_TYPE_get(t)))
		return err_set(P11S_E_MALFORMED, "CertRep's failInfoText is not a string");
	s = t->value.asn1_string;
	out->fail_text = clean_text(ASN1_STRING_get0_data(s), ASN1_STRING_length(s));
	if (out->fail_text == NULL)
		return err_set(P11S_E_NOMEM, "out of memory reading failInfoText");
	return P11S_OK;
}

/* Verifies the signature by check->reply_signer only; *content gets the eContent. */
static enum p11s_err verify_reply(CMS_ContentInfo *cms, X509 *signer, BIO *content)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	ASN1_OCTET_STRING **pos = CMS_get0_content(cms);
	BIO *empty = NULL;
	X509 *used = NULL;
	CMS_SignerInfo *si;
	enum p11s_err e = P11S_OK;
	char subj[256];

	if (certs == NULL || !sk_X509_push(certs, signer)) {
		e = err_set(P11S_E_NOMEM, "out of memory verifying the CertRep");
		goto out;
	}
	/* No eContent at all (FAILURE, PENDING): the signature covers "". */
	if (pos == NULL || *pos == NULL) {
		empty = BIO_new_mem_buf("", 0);
		if (empty == NULL) {
			e = err_set(P11S_E_NOMEM, "out of memory verifying the CertRep");
			goto out;
		}
	}
	/* CMS_NOINTERN: a cert the server embeds can never stand in for ours. */
	if (CMS_verify(cms, certs, NULL, empty, content, CMS_NO_SIGNER_CERT_VERIFY |
	    CMS_NOINTERN | CMS_NOCRL | CMS_BINARY) != 1) {
		if (X509_NAME_oneline(X509_get_subject_name(signer), subj, sizeof(subj)) == NULL)
			snprintf(subj, sizeof(subj), "?");
		e = err_set_ssl(P11S_E_UNTRUSTED,
		    "CertRep signature does not verify with the CA/RA certificate %s", subj);
		goto out;
	}
	si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
	CMS_SignerInfo_get0_algs(si, NULL, &used, NULL, NULL);
	if (used == NULL || X509_cmp(used, signer) != 0)
		e = err_set(P11S_E_UNTRUSTED, "CertRep is not signed by the CA/RA certificate");
out:
	BIO_free(empty);
	sk_X509_free(certs);
	return e;
}

static const char *digest_name(CMS_SignerInfo *si)
{
	X509_ALGOR *dig = NULL;
	const ASN1_OBJECT *obj = NULL;
	const char *sn;

	CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, NULL);
	if (dig != NULL)
		X509_ALGOR_get0(&obj, NULL, NULL, dig);
	sn = obj != NULL ? OBJ_nid2sn(OBJ_obj2nid(obj)) : NULL;
	return sn != NULL && OBJ_obj2nid(obj) != NID_undef ? sn : "unknown";
}

static int legacy_cipher(int nid)
{
	switch (nid) {
	case NID_des_cbc:
	case NID_des_ede_cbc:
	case NID_des_ede3_cbc:
	case NID_rc2_cbc:
	case NID_rc2_40_cbc:
	case NID_rc2_64_cbc:
		return 1;
	}
	return 0;
}

/* How the envelope's content key reaches us (RFC 8894 §3.1). */
enum recipient_kind {
	RECIP_KTRI,	/* encrypted to our RSA key */
	RECIP_KARI,	/* agreed with our EC key (ECDH) */
	RECIP_PWRI,	/* derived from the challenge password */
};

static int kari_for(CMS_RecipientInfo *ri, X509 *cert)
{
	STACK_OF(CMS_RecipientEncryptedKey) *reks = CMS_RecipientInfo_kari_get0_reks(ri);
	int i;

	for (i = 0; i < sk_CMS_RecipientEncryptedKey_num(reks); i++) {
		if (CMS_RecipientEncryptedKey_cert_cmp(
		    sk_CMS_RecipientEncryptedKey_value(reks, i), cert) == 0)
			return 1;
	}
	return 0;
}

/*
 * A recipient that names our certificate is opened with our key; else a
 * password recipient with the challenge. Anything else is not for us.
 */
static enum p11s_err pick_recipient(CMS_ContentInfo *env, X509 *cert, enum recipient_kind *kind)
{
	STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(env);
	CMS_RecipientInfo *ri;
	int i, pwri = 0;

	*kind = RECIP_KTRI;
	for (i = 0; i < sk_CMS_RecipientInfo_num(ris); i++) {
		ri = sk_CMS_RecipientInfo_value(ris, i);
		switch (CMS_RecipientInfo_type(ri)) {
		case CMS_RECIPINFO_TRANS:
			if (CMS_RecipientInfo_ktri_cert_cmp(ri, cert) == 0) {
				*kind = RECIP_KTRI;
				return P11S_OK;
			}
			break;
		case CMS_RECIPINFO_AGREE:
			if (kari_for(ri, cert)) {
				*kind = RECIP_KARI;
				return P11S_OK;
			}
			break;
		case CMS_RECIPINFO_PASS:
			pwri = 1;
			break;
		}
	}
	ERR_clear_error();
	if (!pwri)
		return err_set(P11S_E_UNTRUSTED,
		    "CertRep is not encrypted to our signer certificate");
	*kind = RECIP_PWRI;
	return P11S_OK;
}

static const char *recipient_name(enum recipient_kind k)
{
	switch (k) {
	case RECIP_KTRI:	return "key transport";
	case RECIP_KARI:	return "key agreement";
	case RECIP_PWRI:	return "password";
	}
	return "unknown";
}

/* Sets the content-encryption key from the recipient the server chose. */
static enum p11s_err open_recipient(CMS_ContentInfo *env, const struct scep_reply_check *check,
				    enum recipient_kind kind)
{
	size_t n;

	if (kind == RECIP_PWRI) {
		n = check->password != NULL ? strlen(check->password) : 0;
		if (n == 0)
			return err_set(P11S_E_UNTRUSTED, "CertRep is encrypted to a password "
			    "(PWRI) but this request carried no challenge password: the "
			    "server must use key agreement for this key");
		if (CMS_decrypt_set1_password(env, (unsigned char *)check->password,
		    (ossl_ssize_t)n) != 1)
			return err_set_ssl(P11S_E_UNTRUSTED, "the challenge password does not "
			    "open the CertRep's envelope (PWRI)");
		return P11S_OK;
	}
	/*
	 * Exact decryption errors instead of OpenSSL's random-key countermeasure:
	 * the signature was verified first, so nobody can feed us ciphertexts.
	 */
	CMS_decrypt(env, NULL, NULL, NULL, NULL, CMS_DEBUG_DECRYPT);
	if (CMS_decrypt_set1_pkey_and_peer(env, check->our_key, check->our_cert, NULL) == 1)
		return P11S_OK;
	if (kind == RECIP_KARI)
		return err_set_ssl(P11S_E_TOKEN, "agreeing on the CertRep's content key with "
		    "our EC key failed (key agreement needs ECDH, CKM_ECDH1_DERIVE, on the "
		    "token key; without it only a password reply to a request with a "
		    "challenge can be opened)");
	return err_set_ssl(P11S_E_TOKEN,
	    "decrypting the CertRep's content key with our key failed");
}

/* All of a BIO's output, bounded; *out is OPENSSL_free'd by the caller. */
static enum p11s_err drain(BIO *b, size_t max, unsigned char **out, size_t *len)
{
	unsigned char *buf = OPENSSL_malloc(max);
	size_t used = 0;
	int n;

	*out = NULL;
	*len = 0;
	if (buf == NULL)
		return err_set(P11S_E_NOMEM, "out of memory decrypting the CertRep");
	for (;;) {
		if (used == max) {
			OPENSSL_free(buf);
			return err_set(P11S_E_MALFORMED, "CertRep plaintext is too large");
		}
		n = BIO_read(b, buf + used, (int)(max - used > INT_MAX ? INT_MAX : max - used));
		if (n <= 0)
			break;
		used += (size_t)n;
	}
	*out = buf;
	*len = used;
	return P11S_OK;
}

static enum p11s_err decrypt_envelope(CMS_ContentInfo *env, const struct scep_reply_check *check,
				      struct scep_reply *out, unsigned char **plain, size_t *plen,
				      size_t max)
{
	BIO *cont = NULL, *cb;
	EVP_CIPHER_CTX *cctx = NULL;
	const EVP_CIPHER *ci;
	enum recipient_kind kind = RECIP_KTRI;
	enum p11s_err e;
	int nid = NID_undef;
	const char *sn;

	e = pick_recipient(env, check->our_cert, &kind);
	if (e == P11S_OK)
		e = open_recipient(env, check, kind);
	if (e != P11S_OK)
		return e;
	out->envelope_recipient = recipient_name(kind);
	cont = CMS_dataInit(env, NULL);
	if (cont == NULL)
		return err_set_ssl(P11S_E_MALFORMED, "cannot decrypt the CertRep envelope "
		    "(DES needs OpenSSL's legacy provider)");
	cb = BIO_find_type(cont, BIO_TYPE_CIPHER);
	if (cb != NULL && BIO_get_cipher_ctx(cb, &cctx) == 1 && cctx != NULL &&
	    (ci = EVP_CIPHER_CTX_get0_cipher(cctx)) != NULL)
		nid = EVP_CIPHER_get_nid(ci);
	sn = nid != NID_undef ? OBJ_nid2sn(nid) : NULL;
	out->envelope_cipher = sn != NULL ? sn : "unknown";
	if (check->strict && (nid == NID_undef || legacy_cipher(nid))) {
		e = err_set(P11S_E_UNTRUSTED, "CertRep is encrypted with %s, a legacy cipher "
		    "refused in strict mode", out->envelope_cipher);
		goto out;
	}
	e = drain(cont, max, plain, plen);
	if (e == P11S_OK && (cb == NULL || BIO_get_cipher_status(cb) != 1)) {
		OPENSSL_free(*plain);
		*plain = NULL;
		e = err_set(P11S_E_UNTRUSTED, "CertRep envelope does not decrypt with our key "
		    "(bad padding)");
	}
out:
	BIO_free_all(cont);
	return e;
}

/* A stack for a kind of object a bag lacks, so callers need not test for NULL. */
static enum p11s_err bag_certs(CMS_ContentInfo *bag, STACK_OF(X509) **out)
{
	*out = CMS_get1_certs(bag);
	if (*out == NULL)
		*out = sk_X509_new_null();
	if (*out == NULL)
		return err_set(P11S_E_NOMEM, "out of memory reading the CertRep");
	if (sk_X509_num(*out) > MSG_MAX_CERTS)
		return err_set(P11S_E_MALFORMED, "CertRep holds %d certificates, more than %d",
		    sk_X509_num(*out), MSG_MAX_CERTS);
	return P11S_OK;
}

static enum p11s_err bag_crls(CMS_ContentInfo *bag, STACK_OF(X509_CRL) **out)
{
	*out = CMS_get1_crls(bag);
	if (*out != NULL && sk_X509_CRL_num(*out) > MSG_MAX_CRLS)
		return err_set(P11S_E_MALFORMED, "CertRep holds %d CRLs, more than %d",
		    sk_X509_CRL_num(*out), MSG_MAX_CRLS);
	return P11S_OK;
}

/*
 * Certificates and CRLs of the degenerate SignedData inside a SUCCESS reply:
 * certs is never NULL then (empty for a CRL-only GetCRL reply), crls is NULL
 * when there are none. A bag with neither is refused.
 */
static enum p11s_err collect_certs(const unsigned char *der, size_t len, struct scep_reply *out)
{
	const unsigned char *p = der;
	CMS_ContentInfo *bag;
	STACK_OF(X509) *certs = NULL;
	STACK_OF(X509_CRL) *crls = NULL;
	enum p11s_err e = P11S_OK;

	bag = d2i_CMS_ContentInfo(NULL, &p, (long)len);
	if (bag == NULL || p != der + len) {
		e = err_set_ssl(P11S_E_MALFORMED, "CertRep's decrypted content is not PKCS#7");
		goto out;
	}
	if (OBJ_obj2nid(CMS_get0_type(bag)) != NID_pkcs7_signed) {
		e = err_set(P11S_E_MALFORMED, "CertRep's decrypted content is not a SignedData");
		goto out;
	}
	e = bag_certs(bag, &certs);
	if (e == P11S_OK)
		e = bag_crls(bag, &crls);
	if (e != P11S_OK)
		goto out;
	if (sk_X509_num(certs) == 0 && sk_X509_CRL_num(crls) <= 0) {
		e = err_set(P11S_E_MALFORMED, "SUCCESS CertRep holds no certificate and no CRL");
		goto out;
	}
	out->certs = certs;
	out->crls = crls;
	certs = NULL;
	crls = NULL;
out:
	sk_X509_pop_free(certs, X509_free);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	CMS_ContentInfo_free(bag);
	return e;
}

static enum p11s_err open_success(const unsigned char *econt, size_t elen,
				  const struct scep_reply_check *check, struct scep_reply *out)
{
	const unsigned char *p = econt;
	CMS_ContentInfo *env = NULL;
	ASN1_OCTET_STRING **pos;
	unsigned char *plain = NULL;
	size_t plen = 0;
	enum p11s_err e;

	if (elen == 0)
		return err_set(P11S_E_MALFORMED, "SUCCESS CertRep has no content");
	if (check->our_key == NULL || check->our_cert == NULL)
		return err_set(P11S_E_INTERNAL, "no key to decrypt the CertRep");
	env = d2i_CMS_ContentInfo(NULL, &p, (long)elen);
	if (env == NULL || p != econt + elen) {
		e = err_set_ssl(P11S_E_MALFORMED, "CertRep content is not a PKCS#7 envelope");
		goto out;
	}
	if (OBJ_obj2nid(CMS_get0_type(env)) != NID_pkcs7_enveloped) {
		e = err_set(P11S_E_MALFORMED, "CertRep content is not an EnvelopedData");
		goto out;
	}
	pos = CMS_get0_content(env);
	if (pos == NULL || *pos == NULL) {
		e = err_set(P11S_E_MALFORMED, "CertRep's envelope holds no encrypted content");
		goto out;
	}
	e = decrypt_envelope(env, check, out, &plain, &plen, elen);
	if (e == P11S_OK)
		e = collect_certs(plain, plen, out);
out:
	OPENSSL_free(plain);
	CMS_ContentInfo_free(env);
	return e;
}

static enum p11s_err read_attrs(CMS_SignerInfo *si, const struct scep_reply_check *check,
				struct scep_reply *out)
{
	enum p11s_err e;

	e = check_msgtype(si);
	if (e == P11S_OK)
		e = check_txid(si, check->txn);
	if (e == P11S_OK)
		e = check_nonce(si, check->txn);
	if (e == P11S_OK)
		e = read_status(si, out);
	if (e == P11S_OK)
		e = read_failinfo(si, out);
	if (e == P11S_OK)
		e = read_failtext(si, out);
	return e;
}

static enum p11s_err parse_outer(const unsigned char *der, size_t len, CMS_ContentInfo **out)
{
	const unsigned char *p = der;
	CMS_ContentInfo *cms;
	int nsigners;

	*out = NULL;
	cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
	if (cms == NULL)
		return err_set_ssl(P11S_E_MALFORMED, "reply is not a PKCS#7 message");
	if (p != der + len) {
		CMS_ContentInfo_free(cms);
		return err_set(P11S_E_MALFORMED, "reply has %zu bytes after its PKCS#7 message",
		    (size_t)(der + len - p));
	}
	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
		CMS_ContentInfo_free(cms);
		return err_set(P11S_E_MALFORMED, "reply is not a PKCS#7 SignedData");
	}
	nsigners = sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms));
	if (nsigners != 1) {
		CMS_ContentInfo_free(cms);
		return err_set(P11S_E_MALFORMED, "reply has %d signers, not one", nsigners);
	}
	if (OBJ_obj2nid(CMS_get0_eContentType(cms)) != NID_pkcs7_data) {
		CMS_ContentInfo_free(cms);
		return err_set(P11S_E_MALFORMED, "reply's signed content is not id-data");
	}
	*out = cms;
	return P11S_OK;
}

enum p11s_err scep_reply_parse(const unsigned char *der, size_t len,
			       const struct scep_reply_check *check, struct scep_reply *out)
{
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	BIO *content = NULL;
	unsigned char *econt = NULL;
	long elen;
	enum p11s_err e;

	memset(out, 0, sizeof(*out));
	out->fail_info = FAIL_NONE;
	if (check == NULL || check->reply_signer == NULL || check->txn == NULL)
		return err_set(P11S_E_INTERNAL, "scep_reply_parse without a signer or transaction");
	if (der == NULL || len == 0)
		return err_set(P11S_E_MALFORMED, "the reply is empty");
	if (len > MSG_MAX_LEN)
		return err_set(P11S_E_MALFORMED, "the reply is %zu bytes: too large", len);
	e = oids();
	if (e == P11S_OK)
		e = parse_outer(der, len, &cms);
	if (e != P11S_OK)
		return e;
	content = BIO_new(BIO_s_mem());
	if (content == NULL) {
		e = err_set(P11S_E_NOMEM, "out of memory reading the CertRep");
		goto out;
	}
	e = verify_reply(cms, check->reply_signer, content);
	if (e != P11S_OK)
		goto out;
	si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
	out->signature_digest = digest_name(si);
	if (strcmp(out->signature_digest, "MD5") == 0) {
		e = err_set(P11S_E_UNTRUSTED, "CertRep is signed with MD5: refused");
		goto out;
	}
	e = read_attrs(si, check, out);
	if (e != P11S_OK || out->status != STATUS_SUCCESS)
		goto out;
	elen = BIO_get_mem_data(content, (char **)&econt);
	e = open_success(econt, elen > 0 ? (size_t)elen : 0, check, out);
out:
	BIO_free(content);
	CMS_ContentInfo_free(cms);
	if (e != P11S_OK) {
		scep_reply_free(out);
		out->fail_info = FAIL_NONE;
	}
	return e;
}

void scep_reply_free(struct scep_reply *r)
{
	if (r == NULL)
		return;
	free(r->fail_text);
	sk_X509_pop_free(r->certs, X509_free);
	sk_X509_CRL_pop_free(r->crls, X509_CRL_free);
	memset(r, 0, sizeof(*r));
}

X509 *scep_find_cert_for_key(STACK_OF(X509) *certs, EVP_PKEY *key)
{
	int i;

	if (key == NULL)
		return NULL;
	for (i = 0; i < sk_X509_num(certs); i++) {
		X509 *x = sk_X509_value(certs, i);
		EVP_PKEY *pub = X509_get0_pubkey(x);

		if (pub != NULL && EVP_PKEY_eq(pub, key) == 1)
			return x;
	}
	ERR_clear_error();
	return NULL;
}
