#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "responder.h"

/* pkiMessage parsing and checking, and CertRep building (RFC 8894 §3). */

#define NONCE_LEN	16
#define TXID_MAX	128

enum {
	MT_CERTREP = 3, MT_RENEWALREQ = 17, MT_PKCSREQ = 19, MT_CERTPOLL = 20,
	MT_GETCERT = 21, MT_GETCRL = 22
};

struct oids {
	int msgtype, status, failinfo, snonce, rnonce, txid, failtext;
};

/* A request as far as it could be read. */
struct msg {
	CMS_ContentInfo *cms;
	X509 *signer;			/* own reference; NULL until found */
	int type;
	char txid[TXID_MAX + 1];	/* "" when absent */
	unsigned char nonce[NONCE_LEN];
	int has_nonce;
	unsigned char *inner;		/* decrypted pkcsPKIEnvelope content */
	size_t inner_len;
};

/* What to answer. */
struct answer {
	int status;
	int fail;
	const char *text;		/* failInfoText, or NULL */
	STACK_OF(X509) *certs;		/* SUCCESS: not owned */
	X509_CRL *crl;			/* SUCCESS (GetCRL): not owned */
	int origin;			/* SUCCESS: the request type this answers
					 * (PKCSReq even when it came by CertPoll) */
};

static struct oids oid;

static int nid_of(const char *txt, const char *sn)
{
	int nid = OBJ_txt2nid(txt);

	if (nid == NID_undef)
		nid = OBJ_create(txt, sn, sn);
	return nid;
}

static int init_oids(void)
{
	if (oid.msgtype != 0)
		return 0;
	oid.msgtype = nid_of("2.16.840.1.113733.1.9.2", "rsp-messageType");
	oid.status = nid_of("2.16.840.1.113733.1.9.3", "rsp-pkiStatus");
	oid.failinfo = nid_of("2.16.840.1.113733.1.9.4", "rsp-failInfo");
	oid.snonce = nid_of("2.16.840.1.113733.1.9.5", "rsp-senderNonce");
	oid.rnonce = nid_of("2.16.840.1.113733.1.9.6", "rsp-recipientNonce");
	oid.txid = nid_of("2.16.840.1.113733.1.9.7", "rsp-transactionID");
	oid.failtext = nid_of("1.3.6.1.5.5.7.24.1", "rsp-failInfoText");
	ERR_clear_error();
	if (oid.msgtype == NID_undef || oid.status == NID_undef ||
	    oid.failinfo == NID_undef || oid.snonce == NID_undef ||
	    oid.rnonce == NID_undef || oid.txid == NID_undef || oid.failtext == NID_undef) {
		memset(&oid, 0, sizeof(oid));
		return -1;
	}
	return 0;
}

static const char *type_name(int t)
{
	switch (t) {
	case MT_RENEWALREQ:	return "RenewalReq";
	case MT_PKCSREQ:	return "PKCSReq";
	case MT_CERTPOLL:	return "CertPoll";
	case MT_GETCERT:	return "GetCert";
	case MT_GETCRL:		return "GetCRL";
	}
	return "unknown";
}

static const char *status_name(int s)
{
	switch (s) {
	case ST_SUCCESS:	return "SUCCESS";
	case ST_FAILURE:	return "FAILURE";
	case ST_PENDING:	return "PENDING";
	}
	return "other";
}

static const char *fail_name(int f)
{
	static const char *const names[] = {
		"badAlg", "badMessageCheck", "badRequest", "badTime", "badCertId"
	};

	return f >= 0 && f <= 4 ? names[f] : "unknown";
}

/* Hostile text made safe for one log line. */
static void log_safe(char *dst, size_t dlen, const char *src)
{
	size_t o = 0;

	for (; *src != '\0' && o + 1 < dlen; src++) {
		unsigned char c = (unsigned char)*src;

		dst[o++] = (c > 0x20 && c < 0x7f && c != '"') ? (char)c : '?';
	}
	dst[o] = '\0';
}

static void msg_free(struct msg *m)
{
	CMS_ContentInfo_free(m->cms);
	X509_free(m->signer);
	OPENSSL_free(m->inner);
	memset(m, 0, sizeof(*m));
}

/* ---- reading the request ---- */

static unsigned char *b64_decode(const unsigned char *in, size_t len, size_t *out_len)
{
	EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
	unsigned char *out = NULL;
	int n = 0, m = 0, ok = 0;

	*out_len = 0;
	if (ctx == NULL || len > INT_MAX)
		goto out;
	out = OPENSSL_malloc(len / 4 * 3 + 4);
	if (out == NULL)
		goto out;
	EVP_DecodeInit(ctx);
	if (EVP_DecodeUpdate(ctx, out, &n, in, (int)len) < 0 ||
	    EVP_DecodeFinal(ctx, out + n, &m) != 1)
		goto out;
	*out_len = (size_t)n + (size_t)m;
	ok = *out_len > 0;
out:
	EVP_ENCODE_CTX_free(ctx);
	if (!ok) {
		OPENSSL_free(out);
		out = NULL;
	}
	return out;
}

/* The one value of a signed attribute; NULL when absent or not single. */
static ASN1_TYPE *attr1(CMS_SignerInfo *si, int nid, int *dup)
{
	X509_ATTRIBUTE *a;
	int i = CMS_signed_get_attr_by_NID(si, nid, -1);

	if (i < 0)
		return NULL;
	a = CMS_signed_get_attr(si, i);
	if (CMS_signed_get_attr_by_NID(si, nid, i) >= 0 || a == NULL ||
	    X509_ATTRIBUTE_count(a) != 1) {
		*dup = 1;
		return NULL;
	}
	return X509_ATTRIBUTE_get0_type(a, 0);
}

/* Reads transactionID and senderNonce so that even a refusal can answer them. */
static void read_ids(CMS_SignerInfo *si, struct msg *m)
{
	ASN1_TYPE *t;
	int dup = 0, n;

	t = attr1(si, oid.txid, &dup);
	if (t != NULL && ASN1_TYPE_get(t) == V_ASN1_PRINTABLESTRING) {
		n = ASN1_STRING_length(t->value.printablestring);
		if (n > 0 && n <= TXID_MAX) {
			memcpy(m->txid, ASN1_STRING_get0_data(t->value.printablestring),
			    (size_t)n);
			m->txid[n] = '\0';
			if (strlen(m->txid) != (size_t)n)
				m->txid[0] = '\0';
		}
	}
	t = attr1(si, oid.snonce, &dup);
	if (t != NULL && ASN1_TYPE_get(t) == V_ASN1_OCTET_STRING &&
	    ASN1_STRING_length(t->value.octet_string) == NONCE_LEN) {
		memcpy(m->nonce, ASN1_STRING_get0_data(t->value.octet_string), NONCE_LEN);
		m->has_nonce = 1;
	}
}

/* messageType as a number; -1 when absent or not a PrintableString number. */
static int read_type(CMS_SignerInfo *si)
{
	ASN1_TYPE *t;
	const unsigned char *p;
	int dup = 0, n, i, v = 0;

	t = attr1(si, oid.msgtype, &dup);
	if (t == NULL || ASN1_TYPE_get(t) != V_ASN1_PRINTABLESTRING)
		return -1;
	p = ASN1_STRING_get0_data(t->value.printablestring);
	n = ASN1_STRING_length(t->value.printablestring);
	if (n < 1 || n > 3)
		return -1;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

/* Every attribute the RFC requires, each present once with the right type. */
static const char *check_attrs(CMS_SignerInfo *si, struct msg *m)
{
	int dup = 0;

	attr1(si, oid.msgtype, &dup);
	attr1(si, oid.txid, &dup);
	attr1(si, oid.snonce, &dup);
	if (dup)
		return "a SCEP attribute is repeated or multi-valued";
	if (m->type < 0)
		return "messageType missing or not a PrintableString number";
	if (m->txid[0] == '\0')
		return "transactionID missing, empty or not a PrintableString";
	if (!m->has_nonce)
		return "senderNonce missing or not 16 bytes";
	return NULL;
}

/* The SignerInfo's certificate from the SignedData's own certificates. */
static X509 *find_signer(CMS_ContentInfo *cms, CMS_SignerInfo *si)
{
	STACK_OF(X509) *certs = CMS_get1_certs(cms);
	X509 *found = NULL;
	int i;

	for (i = 0; i < sk_X509_num(certs); i++) {
		X509 *x = sk_X509_value(certs, i);

		if (CMS_SignerInfo_cert_cmp(si, x) == 0) {
			found = x;
			X509_up_ref(found);
			break;
		}
	}
	sk_X509_pop_free(certs, X509_free);
	return found;
}

/* Verifies the signature with the embedded signer cert; *env gets eContent. */
static const char *verify_outer(struct msg *m, BIO *env)
{
	STACK_OF(X509) *one = sk_X509_new_null();
	const char *why = NULL;

	if (OBJ_obj2nid(CMS_get0_eContentType(m->cms)) != NID_pkcs7_data)
		why = "signed content is not id-data";
	else if (one == NULL || !sk_X509_push(one, m->signer))
		why = "out of memory";
	else if (CMS_verify(m->cms, one, NULL, NULL, env, CMS_NO_SIGNER_CERT_VERIFY |
	    CMS_NOINTERN | CMS_NOCRL | CMS_BINARY) != 1)
		why = "signature does not verify with the embedded signer certificate";
	sk_X509_free(one);
	ERR_clear_error();
	return why;
}

static const char *cipher_of(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)len);
	const char *sn = "unknown";
	int nid;

	if (p7 != NULL && PKCS7_type_is_enveloped(p7) && p7->d.enveloped != NULL &&
	    p7->d.enveloped->enc_data != NULL &&
	    p7->d.enveloped->enc_data->algorithm != NULL) {
		nid = OBJ_obj2nid(p7->d.enveloped->enc_data->algorithm->algorithm);
		if (nid != NID_undef)
			sn = OBJ_nid2sn(nid);
	}
	PKCS7_free(p7);
	ERR_clear_error();
	return sn;
}

static const char *digest_of(CMS_SignerInfo *si)
{
	X509_ALGOR *alg = NULL;
	const ASN1_OBJECT *obj = NULL;
	int nid;

	CMS_SignerInfo_get0_algs(si, NULL, NULL, &alg, NULL);
	if (alg != NULL)
		X509_ALGOR_get0(&obj, NULL, NULL, alg);
	nid = obj != NULL ? OBJ_obj2nid(obj) : NID_undef;
	return nid != NID_undef ? OBJ_nid2sn(nid) : "unknown";
}

/* Is the envelope's only key-transport recipient our cert? */
static const char *check_recipient(CMS_ContentInfo *env, X509 *to)
{
	STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(env);
	int i, n = sk_CMS_RecipientInfo_num(ris), match = 0;

	if (n < 1)
		return "envelope has no recipient";
	for (i = 0; i < n; i++) {
		CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);

		if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_TRANS &&
		    CMS_RecipientInfo_ktri_cert_cmp(ri, to) == 0)
			match = 1;
	}
	return match ? NULL : "envelope is not encrypted to the expected certificate";
}

static const char *role_of(struct rsp *r)
{
	switch (r->conf.mode) {
	case MODE_NDES:		return "ra-enc";
	case MODE_CHAIN:	return "issuing CA";
	default:		return "CA";
	}
}

/* Opens the pkcsPKIEnvelope with the key of the cert it must be encrypted to. */
static const char *open_envelope(struct rsp *r, struct msg *m, const unsigned char *der,
				 size_t len, struct rsp_resp *resp)
{
	const unsigned char *p = der;
	CMS_ContentInfo *env = NULL;
	BIO *out = NULL;
	const char *why = NULL;
	char *data;
	long n;

	rsp_note(resp, "cipher=%s", cipher_of(der, len));
	env = d2i_CMS_ContentInfo(NULL, &p, (long)len);
	if (env == NULL || p != der + len ||
	    OBJ_obj2nid(CMS_get0_type(env)) != NID_pkcs7_enveloped) {
		why = "signed content is not an EnvelopedData";
		goto out;
	}
	why = check_recipient(env, r->pki.enc);
	if (why != NULL) {
		rsp_note(resp, "reason=\"request not encrypted to the %s certificate\"",
		    role_of(r));
		why = "";
		goto out;
	}
	out = BIO_new(BIO_s_mem());
	if (out == NULL || CMS_decrypt(env, r->pki.enc_key, r->pki.enc, NULL, out,
	    CMS_BINARY | CMS_DEBUG_DECRYPT) != 1) {
		why = "envelope does not decrypt with the recipient's key";
		goto out;
	}
	n = BIO_get_mem_data(out, &data);
	if (n <= 0) {
		why = "envelope content is empty";
		goto out;
	}
	m->inner = OPENSSL_memdup(data, (size_t)n);
	m->inner_len = (size_t)n;
	if (m->inner == NULL)
		why = "out of memory";
out:
	BIO_free(out);
	CMS_ContentInfo_free(env);
	ERR_clear_error();
	return why;
}

/* ---- building the CertRep ---- */

static int add_text_attr(CMS_SignerInfo *si, int nid, int type, const char *s)
{
	return CMS_signed_add1_attr_by_NID(si, nid, type, s, (int)strlen(s));
}

/* --evil txid: a transactionID that differs from the request's. */
static void other_txid(const char *txid, char *out, size_t len)
{
	snprintf(out, len, "X%.*s", TXID_MAX - 1, txid);
}

static int add_attrs(struct rsp *r, CMS_SignerInfo *si, const struct msg *m,
		     const struct answer *a)
{
	unsigned char sn[NONCE_LEN], rn[NONCE_LEN];
	char num[16], txid[TXID_MAX + 1];
	const char *tx = m->txid;
	const unsigned char *rnonce = m->nonce;

	if (RAND_bytes(sn, sizeof(sn)) != 1 ||
	    !add_text_attr(si, oid.msgtype, V_ASN1_PRINTABLESTRING, "3") ||
	    !CMS_signed_add1_attr_by_NID(si, oid.snonce, V_ASN1_OCTET_STRING, sn, NONCE_LEN))
		return -1;
	snprintf(num, sizeof(num), "%d", a->status);
	if (!add_text_attr(si, oid.status, V_ASN1_PRINTABLESTRING, num))
		return -1;
	if (r->conf.evil == EVIL_TXID) {
		other_txid(m->txid, txid, sizeof(txid));
		tx = txid;
	}
	if (r->conf.evil == EVIL_NONCE) {
		/* Fresh random bytes: never the request's senderNonce. */
		if (RAND_bytes(rn, sizeof(rn)) != 1)
			return -1;
		if (m->has_nonce && memcmp(rn, m->nonce, NONCE_LEN) == 0)
			rn[0] ^= 0xff;
		rnonce = rn;
	}
	if (tx[0] != '\0' &&
	    !add_text_attr(si, oid.txid, V_ASN1_PRINTABLESTRING, tx))
		return -1;
	if (m->has_nonce && !CMS_signed_add1_attr_by_NID(si, oid.rnonce, V_ASN1_OCTET_STRING,
	    rnonce, NONCE_LEN))
		return -1;
	if (a->status != ST_FAILURE)
		return 0;
	snprintf(num, sizeof(num), "%d", a->fail);
	if (!add_text_attr(si, oid.failinfo, V_ASN1_PRINTABLESTRING, num))
		return -1;
	if (a->text != NULL && !add_text_attr(si, oid.failtext, V_ASN1_UTF8STRING, a->text))
		return -1;
	return 0;
}

/*
 * RFC 8894 §3.1 for a requester whose key cannot decrypt: a password
 * recipient keyed by the challenge (PBKDF2 and the PWRI key wrap, OpenSSL's
 * defaults). CMS frees the password copy with the envelope.
 */
static CMS_ContentInfo *pwri_envelope(struct rsp *r, BIO *in)
{
	CMS_ContentInfo *env = CMS_EnvelopedData_create(r->conf.reply_cipher);
	size_t n = strlen(r->conf.challenge);
	unsigned char *pass = OPENSSL_memdup(r->conf.challenge, n);

	/* Created detached: the encrypted content must go inside. */
	if (env == NULL || pass == NULL || !CMS_set_detached(env, 0) ||
	    CMS_add0_recipient_password(env, -1, NID_undef, NID_undef, pass,
	    (ossl_ssize_t)n, NULL) == NULL) {
		OPENSSL_free(pass);
		goto fail;
	}
	if (CMS_final(env, in, NULL, CMS_BINARY))
		return env;
fail:
	CMS_ContentInfo_free(env);
	return NULL;
}

/* NDES writes the ephemeral key's algorithm parameters as NULL (OpenSSL
 * leaves them out): the recipient takes the curve from its own key. */
static int null_orig_params(CMS_RecipientInfo *ri)
{
	X509_ALGOR *alg = NULL;
	ASN1_BIT_STRING *pub = NULL;

	return CMS_RecipientInfo_kari_get0_orig_id(ri, &alg, &pub, NULL, NULL, NULL) == 1 &&
	    alg != NULL &&
	    X509_ALGOR_set0(alg, OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_NULL, NULL);
}

/* Key agreement (ECDH, ephemeral-static) with the requester's EC key; the
 * X9.63 KDF with SHA-256 rather than OpenSSL's SHA-1 default. */
static CMS_ContentInfo *kari_envelope(struct rsp *r, STACK_OF(X509) *to, BIO *in)
{
	CMS_ContentInfo *env;
	CMS_RecipientInfo *ri;
	EVP_PKEY_CTX *pctx;

	env = CMS_encrypt(to, NULL, r->conf.reply_cipher,
	    CMS_BINARY | CMS_PARTIAL | CMS_KEY_PARAM);
	ri = env != NULL ? sk_CMS_RecipientInfo_value(CMS_get0_RecipientInfos(env), 0) : NULL;
	pctx = ri != NULL ? CMS_RecipientInfo_get0_pkey_ctx(ri) : NULL;
	if (pctx == NULL || CMS_RecipientInfo_type(ri) != CMS_RECIPINFO_AGREE ||
	    EVP_PKEY_CTX_set_ecdh_kdf_md(pctx, EVP_sha256()) <= 0 ||
	    !CMS_final(env, in, NULL, CMS_BINARY) ||
	    (r->conf.ec_reply == EC_REPLY_KARI_NULL && !null_orig_params(ri))) {
		CMS_ContentInfo_free(env);
		return NULL;
	}
	return env;
}

/* RSA requesters get key transport; EC ones key agreement, or with
 * --ec-reply pwri a password envelope when the request had a challenge. */
static CMS_ContentInfo *reply_envelope(struct rsp *r, const struct msg *m,
				       const struct answer *a, STACK_OF(X509) *to, BIO *in,
				       struct rsp_resp *resp)
{
	if (!EVP_PKEY_is_a(X509_get0_pubkey(m->signer), "EC")) {
		rsp_note(resp, "reply=ktri");
		return CMS_encrypt(to, in, r->conf.reply_cipher, CMS_BINARY);
	}
	if (r->conf.ec_reply == EC_REPLY_PWRI && r->conf.challenge != NULL &&
	    a->origin == MT_PKCSREQ) {
		rsp_note(resp, "reply=pwri");
		return pwri_envelope(r, in);
	}
	rsp_note(resp, r->conf.ec_reply == EC_REPLY_KARI_NULL ? "reply=kari-null" : "reply=kari");
	return kari_envelope(r, to, in);
}

/* The SUCCESS pkcsPKIEnvelope: a certs-only SignedData encrypted to the requester. */
static int success_content(struct rsp *r, const struct msg *m, const struct answer *a,
			   unsigned char **der, int *len, struct rsp_resp *resp)
{
	STACK_OF(X509) *to = sk_X509_new_null();
	unsigned char *bag = NULL;
	int bag_len = 0, rc = -1;
	CMS_ContentInfo *env = NULL;
	BIO *in = NULL;

	*der = NULL;
	*len = 0;
	if (to == NULL || !sk_X509_push(to, m->signer) ||
	    rsp_pkcs7_bag(a->certs, a->crl, &bag, &bag_len) != 0)
		goto out;
	in = BIO_new_mem_buf(bag, bag_len);
	if (in == NULL)
		goto out;
	env = reply_envelope(r, m, a, to, in, resp);
	if (env == NULL)
		goto out;
	*len = i2d_CMS_ContentInfo(env, der);
	rc = *len > 0 ? 0 : -1;
out:
	CMS_ContentInfo_free(env);
	BIO_free(in);
	OPENSSL_free(bag);
	sk_X509_free(to);
	return rc;
}

static int certrep(struct rsp *r, const struct msg *m, const struct answer *a,
		   struct rsp_resp *resp)
{
	const unsigned int fl = CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP;
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	unsigned char *content = NULL;
	int clen = 0, len, rc = -1;
	BIO *in = NULL;
	X509 *sig = r->pki.sig;
	EVP_PKEY *sig_key = r->pki.sig_key;

	if (a->status == ST_SUCCESS && success_content(r, m, a, &content, &clen, resp) != 0)
		goto out;
	in = BIO_new_mem_buf(content != NULL ? (void *)content : (void *)"", clen);
	cms = CMS_sign(NULL, NULL, NULL, NULL, fl);
	if (in == NULL || cms == NULL)
		goto out;
	if (r->conf.evil == EVIL_SIGNER) {
		/* Signed and embedded by a cert that is neither CA nor RA. */
		sig = r->pki.evil_cert;
		sig_key = r->pki.evil_key;
	}
	si = CMS_add1_signer(cms, sig, sig_key, r->conf.reply_md, fl);
	if (si == NULL || add_attrs(r, si, m, a) != 0 || !CMS_final(cms, in, NULL, CMS_BINARY))
		goto out;
	resp->body = NULL;
	len = i2d_CMS_ContentInfo(cms, &resp->body);
	if (len <= 0)
		goto out;
	resp->status = 200;
	resp->ctype = "application/x-pki-message";
	resp->len = (size_t)len;
	rc = 0;
out:
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	OPENSSL_free(content);
	return rc;
}

/* Answers and logs the outcome. */
static void answer(struct rsp *r, const struct msg *m, const struct answer *a,
		   struct rsp_resp *resp)
{
	rsp_note(resp, "status=%s", status_name(a->status));
	if (r->conf.evil == EVIL_NONCE || r->conf.evil == EVIL_TXID ||
	    r->conf.evil == EVIL_SIGNER)
		rsp_note(resp, "evil=%s", rsp_evil_name(r->conf.evil));
	if (a->status != ST_SUCCESS && a->status != ST_FAILURE && a->status != ST_PENDING)
		rsp_note(resp, "pkistatus=%d", a->status);
	if (a->status == ST_FAILURE)
		rsp_note(resp, "fail=%s failinfo=%d", fail_name(a->fail), a->fail);
	if (certrep(r, m, a, resp) != 0) {
		ERR_print_errors_fp(stderr);
		rsp_note(resp, "reason=\"cannot build the CertRep\"");
		rsp_resp_text(resp, 500, "cannot build the CertRep\n");
	}
}

static void refuse(struct rsp *r, const struct msg *m, int fail, const char *text,
		   const char *why, struct rsp_resp *resp)
{
	struct answer a;

	memset(&a, 0, sizeof(a));
	a.status = ST_FAILURE;
	a.fail = fail;
	a.text = text;
	if (why != NULL && why[0] != '\0')
		rsp_note(resp, "reason=\"%s\"", why);
	answer(r, m, &a, resp);
}

/* ---- operations ---- */

static X509_REQ *parse_csr(const struct msg *m, const char **why)
{
	const unsigned char *p = m->inner;
	X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)m->inner_len);
	EVP_PKEY *pub;

	if (req == NULL || p != m->inner + m->inner_len) {
		*why = "envelope content is not a DER PKCS#10 request";
		goto bad;
	}
	pub = X509_REQ_get0_pubkey(req);
	if (pub == NULL || X509_REQ_verify(req, pub) != 1) {
		*why = "CSR signature does not verify with its own key";
		goto bad;
	}
	return req;
bad:
	X509_REQ_free(req);
	ERR_clear_error();
	return NULL;
}

/* 1 when the CSR carries challengePassword pw, exactly once. */
static int challenge_ok(X509_REQ *req, const char *pw)
{
	int i = X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword, -1);
	X509_ATTRIBUTE *a;
	ASN1_TYPE *t;
	const ASN1_STRING *s;
	size_t n = strlen(pw);

	if (i < 0 || X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword, i) >= 0)
		return 0;
	a = X509_REQ_get_attr(req, i);
	if (a == NULL || X509_ATTRIBUTE_count(a) != 1)
		return 0;
	t = X509_ATTRIBUTE_get0_type(a, 0);
	switch (t != NULL ? ASN1_TYPE_get(t) : -1) {
	case V_ASN1_PRINTABLESTRING:
	case V_ASN1_UTF8STRING:
	case V_ASN1_IA5STRING:
	case V_ASN1_T61STRING:
		break;
	default:
		return 0;
	}
	s = t->value.asn1_string;
	return (size_t)ASN1_STRING_length(s) == n &&
	    CRYPTO_memcmp(ASN1_STRING_get0_data(s), pw, n) == 0;
}

static struct rsp_pending *find_pending(struct rsp *r, const char *txid)
{
	struct rsp_pending *p;

	for (p = r->pending; p != NULL; p = p->next) {
		if (strcmp(p->txid, txid) == 0)
			return p;
	}
	return NULL;
}

static void pending_free(struct rsp_pending *p)
{
	if (p == NULL)
		return;
	free(p->txid);
	X509_REQ_free(p->req);
	EVP_PKEY_free(p->signer_pub);
	free(p);
}

static void drop_pending(struct rsp *r, struct rsp_pending *gone)
{
	struct rsp_pending **pp;

	for (pp = &r->pending; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == gone) {
			*pp = gone->next;
			pending_free(gone);
			return;
		}
	}
}

void rsp_scep_free_pending(struct rsp *r)
{
	while (r->pending != NULL)
		drop_pending(r, r->pending);
}

/* Keeps req (taking it) under the message's transactionID. */
static int keep_pending(struct rsp *r, const struct msg *m, X509_REQ *req)
{
	struct rsp_pending *p, *old = find_pending(r, m->txid);

	if (old != NULL)
		drop_pending(r, old);
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -1;
	p->txid = strdup(m->txid);
	p->type = m->type;
	p->signer_pub = X509_get_pubkey(m->signer);
	if (p->txid == NULL || p->signer_pub == NULL) {
		pending_free(p);
		return -1;
	}
	p->req = req;
	p->next = r->pending;
	r->pending = p;
	return 0;
}

/* Issues for req (a request of type origin) and answers SUCCESS with the
 * cert (and the issuing CA in chain mode). */
static void issue(struct rsp *r, const struct msg *m, X509_REQ *req, int origin,
		  struct rsp_resp *resp)
{
	struct answer a;
	X509 *x = rsp_pki_issue(r, req);
	char *hex = NULL;
	BIGNUM *bn = NULL;

	memset(&a, 0, sizeof(a));
	a.certs = sk_X509_new_null();
	if (x == NULL || a.certs == NULL || !sk_X509_push(a.certs, x) ||
	    (r->conf.mode == MODE_CHAIN && !sk_X509_push(a.certs, r->pki.ca))) {
		ERR_print_errors_fp(stderr);
		refuse(r, m, FI_BADREQUEST, "the CA could not issue a certificate",
		    "issuing failed", resp);
		goto out;
	}
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	hex = bn != NULL ? BN_bn2hex(bn) : NULL;
	rsp_note(resp, "serial=%s", hex != NULL ? hex : "?");
	if (r->conf.evil == EVIL_WRONGKEY || r->conf.evil == EVIL_WRONGCA)
		rsp_note(resp, "evil=%s", rsp_evil_name(r->conf.evil));
	a.status = ST_SUCCESS;
	a.origin = origin;
	answer(r, m, &a, resp);
out:
	OPENSSL_free(hex);
	BN_free(bn);
	sk_X509_free(a.certs);
	X509_free(x);
}

/* RenewalReq: signed by a cert we issued that is valid now. */
static const char *renewal_signer(struct rsp *r, const struct msg *m, int *fail)
{
	*fail = FI_BADREQUEST;
	if (!rsp_pki_is_issued(r, m->signer))
		return "RenewalReq signer certificate was not issued by this CA";
	*fail = FI_BADTIME;
	if (X509_cmp_current_time(X509_get0_notBefore(m->signer)) >= 0 ||
	    X509_cmp_current_time(X509_get0_notAfter(m->signer)) <= 0)
		return "RenewalReq signer certificate is not valid now";
	return NULL;
}

static void enroll(struct rsp *r, const struct msg *m, struct rsp_resp *resp)
{
	const char *why = NULL;
	X509_REQ *req = parse_csr(m, &why);
	struct answer a;
	int fail = FI_BADREQUEST, need_chal;

	memset(&a, 0, sizeof(a));
	if (req == NULL) {
		refuse(r, m, FI_BADMSGCHECK, NULL, why, resp);
		return;
	}
	if (m->type == MT_PKCSREQ &&
	    EVP_PKEY_eq(X509_get0_pubkey(m->signer), X509_REQ_get0_pubkey(req)) != 1) {
		refuse(r, m, FI_BADMSGCHECK, NULL,
		    "PKCSReq signer key is not the CSR's key", resp);
		goto out;
	}
	if (m->type == MT_RENEWALREQ && (why = renewal_signer(r, m, &fail)) != NULL) {
		refuse(r, m, fail, NULL, why, resp);
		goto out;
	}
	need_chal = m->type == MT_PKCSREQ || r->conf.renewal_challenge;
	if (need_chal && r->conf.challenge != NULL && !challenge_ok(req, r->conf.challenge)) {
		refuse(r, m, FI_BADREQUEST, "wrong challenge password",
		    "wrong or missing challenge password", resp);
		goto out;
	}
	if (r->conf.reject_info >= 0) {
		refuse(r, m, r->conf.reject_info, r->conf.reject_text, "--reject", resp);
		goto out;
	}
	if (r->conf.status >= 0 && r->conf.status != ST_SUCCESS) {
		a.status = r->conf.status;
		a.fail = FI_BADREQUEST;
		rsp_note(resp, "reason=\"--status\"");
		answer(r, m, &a, resp);
		goto out;
	}
	if (r->conf.pending > 0) {
		if (keep_pending(r, m, req) != 0) {
			refuse(r, m, FI_BADREQUEST, NULL, "out of memory", resp);
			goto out;
		}
		req = NULL;
		a.status = ST_PENDING;
		answer(r, m, &a, resp);
		goto out;
	}
	issue(r, m, req, m->type, resp);
out:
	X509_REQ_free(req);
}

/* IssuerAndSubject ::= SEQUENCE { issuer Name, subject Name } */
static int parse_ias(const unsigned char *der, size_t len, X509_NAME **iss, X509_NAME **sub)
{
	const unsigned char *p = der, *end;
	long n;
	int tag, xclass;

	*iss = NULL;
	*sub = NULL;
	if (len > LONG_MAX || ASN1_get_object(&p, &n, &tag, &xclass, (long)len) !=
	    V_ASN1_CONSTRUCTED || tag != V_ASN1_SEQUENCE || xclass != V_ASN1_UNIVERSAL ||
	    p + n != der + len)
		goto bad;
	end = p + n;
	*iss = d2i_X509_NAME(NULL, &p, end - p);
	if (*iss == NULL)
		goto bad;
	*sub = d2i_X509_NAME(NULL, &p, end - p);
	if (*sub == NULL || p != end)
		goto bad;
	return 0;
bad:
	X509_NAME_free(*iss);
	X509_NAME_free(*sub);
	*iss = NULL;
	*sub = NULL;
	ERR_clear_error();
	return -1;
}

static void certpoll(struct rsp *r, const struct msg *m, struct rsp_resp *resp)
{
	struct rsp_pending *p = find_pending(r, m->txid);
	X509_NAME *iss = NULL, *sub = NULL;
	struct answer a;
	X509_REQ *req;
	int origin;

	memset(&a, 0, sizeof(a));
	if (parse_ias(m->inner, m->inner_len, &iss, &sub) != 0) {
		refuse(r, m, FI_BADREQUEST, NULL, "CertPoll content is not an IssuerAndSubject",
		    resp);
		goto out;
	}
	if (p == NULL) {
		refuse(r, m, FI_BADCERTID, NULL, "no pending request with this transactionID",
		    resp);
		goto out;
	}
	if (X509_NAME_cmp(iss, X509_get_subject_name(r->pki.ca)) != 0 ||
	    X509_NAME_cmp(sub, X509_REQ_get_subject_name(p->req)) != 0) {
		refuse(r, m, FI_BADCERTID, NULL,
		    "CertPoll issuer or subject does not match the pending request", resp);
		goto out;
	}
	if (EVP_PKEY_eq(X509_get0_pubkey(m->signer), p->signer_pub) != 1) {
		refuse(r, m, FI_BADREQUEST, NULL,
		    "CertPoll is not signed by the key of the original request", resp);
		goto out;
	}
	p->polls++;
	rsp_note(resp, "polls=%d", p->polls);
	if (p->polls < r->conf.pending) {
		a.status = ST_PENDING;
		answer(r, m, &a, resp);
		goto out;
	}
	req = p->req;
	origin = p->type;
	p->req = NULL;
	drop_pending(r, p);
	issue(r, m, req, origin, resp);
	X509_REQ_free(req);
out:
	X509_NAME_free(iss);
	X509_NAME_free(sub);
}

/* GetCert and GetCRL: IssuerAndSerialNumber naming our (issuing) CA. */
static void getcert_crl(struct rsp *r, const struct msg *m, struct rsp_resp *resp)
{
	const unsigned char *p = m->inner;
	PKCS7_ISSUER_AND_SERIAL *ias;
	struct answer a;
	X509 *x;

	memset(&a, 0, sizeof(a));
	ias = d2i_PKCS7_ISSUER_AND_SERIAL(NULL, &p, (long)m->inner_len);
	if (ias == NULL || p != m->inner + m->inner_len) {
		refuse(r, m, FI_BADREQUEST, NULL,
		    "content is not an IssuerAndSerialNumber", resp);
		goto out;
	}
	if (X509_NAME_cmp(ias->issuer, X509_get_subject_name(r->pki.ca)) != 0) {
		refuse(r, m, FI_BADCERTID, NULL, "issuer is not this CA", resp);
		goto out;
	}
	if (m->type == MT_GETCRL) {
		a.crl = rsp_pki_crl(r);
		if (a.crl == NULL) {
			refuse(r, m, FI_BADREQUEST, NULL, "cannot build the CRL", resp);
			goto out;
		}
	} else {
		x = rsp_pki_find_issued(r, ias->serial);
		if (x == NULL) {
			refuse(r, m, FI_BADCERTID, NULL, "no certificate with this serial",
			    resp);
			goto out;
		}
		a.certs = sk_X509_new_null();
		if (a.certs == NULL || !sk_X509_push(a.certs, x)) {
			refuse(r, m, FI_BADREQUEST, NULL, "out of memory", resp);
			goto out;
		}
	}
	a.status = ST_SUCCESS;
	a.origin = m->type;
	answer(r, m, &a, resp);
out:
	sk_X509_free(a.certs);
	X509_CRL_free(a.crl);
	PKCS7_ISSUER_AND_SERIAL_free(ias);
	ERR_clear_error();
}

/* Checks everything up to the decrypted content; NULL when all is well. */
static const char *read_msg(struct rsp *r, struct msg *m, CMS_SignerInfo *si,
			    struct rsp_resp *resp)
{
	BIO *env = BIO_new(BIO_s_mem());
	const char *why;
	char *data;
	long n;

	if (env == NULL)
		return "out of memory";
	why = check_attrs(si, m);
	if (why == NULL && m->type != MT_PKCSREQ && m->type != MT_RENEWALREQ &&
	    m->type != MT_CERTPOLL && m->type != MT_GETCERT && m->type != MT_GETCRL)
		why = "unknown messageType";
	if (why == NULL) {
		m->signer = find_signer(m->cms, si);
		if (m->signer == NULL)
			why = "the SignedData does not hold the signer's certificate";
	}
	if (why == NULL)
		why = verify_outer(m, env);
	if (why == NULL) {
		n = BIO_get_mem_data(env, &data);
		why = n > 0 ? open_envelope(r, m, (unsigned char *)data, (size_t)n, resp) :
		    "no pkcsPKIEnvelope";
	}
	BIO_free(env);
	return why;
}

static void log_ids(const struct msg *m, struct rsp_resp *resp, CMS_SignerInfo *si)
{
	char safe[TXID_MAX + 1];

	log_safe(safe, sizeof(safe), m->txid);
	rsp_note(resp, "type=%s", type_name(m->type));
	if (m->type >= 0 && strcmp(type_name(m->type), "unknown") == 0)
		rsp_note(resp, "msgtype=%d", m->type);
	rsp_note(resp, "txid=%s digest=%s", safe[0] != '\0' ? safe : "-", digest_of(si));
}

void rsp_scep_pkiop(struct rsp *r, const unsigned char *data, size_t len, int b64,
		    struct rsp_resp *resp)
{
	unsigned char *decoded = NULL;
	const unsigned char *der = data, *p;
	STACK_OF(CMS_SignerInfo) *sis;
	CMS_SignerInfo *si;
	struct msg m;
	const char *why = NULL;

	memset(&m, 0, sizeof(m));
	if (init_oids() != 0) {
		rsp_resp_text(resp, 500, "cannot register the SCEP OIDs\n");
		return;
	}
	if (b64) {
		decoded = b64_decode(data, len, &len);
		der = decoded;
		if (der == NULL) {
			rsp_note(resp, "reason=\"message= is not base64\"");
			rsp_resp_text(resp, 400, "message is not base64\n");
			goto out;
		}
	}
	p = der;
	m.cms = len <= LONG_MAX ? d2i_CMS_ContentInfo(NULL, &p, (long)len) : NULL;
	if (m.cms == NULL || p != der + len ||
	    OBJ_obj2nid(CMS_get0_type(m.cms)) != NID_pkcs7_signed) {
		rsp_note(resp, "reason=\"body is not a DER CMS SignedData\"");
		rsp_resp_text(resp, 400, "not a pkiMessage\n");
		goto out;
	}
	sis = CMS_get0_SignerInfos(m.cms);
	if (sk_CMS_SignerInfo_num(sis) < 1) {
		rsp_note(resp, "reason=\"SignedData has no signer\"");
		rsp_resp_text(resp, 400, "no signer\n");
		goto out;
	}
	si = sk_CMS_SignerInfo_value(sis, 0);
	read_ids(si, &m);
	m.type = read_type(si);
	log_ids(&m, resp, si);
	if (sk_CMS_SignerInfo_num(sis) != 1)
		why = "SignedData has more than one signer";
	else
		why = read_msg(r, &m, si, resp);
	if (why != NULL) {
		refuse(r, &m, FI_BADMSGCHECK, NULL, why, resp);
		goto out;
	}
	switch (m.type) {
	case MT_PKCSREQ:
	case MT_RENEWALREQ:
		enroll(r, &m, resp);
		break;
	case MT_CERTPOLL:
		certpoll(r, &m, resp);
		break;
	default:
		getcert_crl(r, &m, resp);
		break;
	}
out:
	ERR_clear_error();
	msg_free(&m);
	OPENSSL_free(decoded);
}
