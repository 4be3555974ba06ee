#include "config.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/crypto.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "scep_ca.h"

#define CA_MAX_CERTS	64
#define CA_MAX_BODY	(1024L * 1024L)
#define NEXTCA_MAX_SIGNERS	4

/*
 * What the bytes are, whatever the Content-Type says: a Certificate is
 * SEQUENCE { SEQUENCE tbs, ... }, a ContentInfo is SEQUENCE { OID, [0] ... }.
 */
enum body_kind { BODY_UNKNOWN, BODY_CERT, BODY_PKCS7 };

static enum body_kind sniff(const unsigned char *body, size_t len)
{
	const unsigned char *p = body;
	long inner;
	int tag, xclass, r;

	r = ASN1_get_object(&p, &inner, &tag, &xclass, (long)len);
	if ((r & 0x80) || tag != V_ASN1_SEQUENCE || !(r & V_ASN1_CONSTRUCTED))
		return BODY_UNKNOWN;
	if ((size_t)(p - body) >= len)
		return BODY_UNKNOWN;
	if (*p == (V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED))
		return BODY_CERT;
	if (*p == V_ASN1_OBJECT)
		return BODY_PKCS7;
	return BODY_UNKNOWN;
}

static enum p11s_err parse_one_cert(const unsigned char *body, size_t len,
				    STACK_OF(X509) **out)
{
	const unsigned char *p = body;
	STACK_OF(X509) *sk = NULL;
	X509 *x;

	x = d2i_X509(NULL, &p, (long)len);
	if (x == NULL)
		return err_set_ssl(P11S_E_MALFORMED,
		    "GetCACert reply is not a DER certificate");
	if (p != body + len) {
		X509_free(x);
		return err_set(P11S_E_MALFORMED,
		    "GetCACert reply has %zu bytes after its certificate",
		    (size_t)(body + len - p));
	}
	sk = sk_X509_new_null();
	if (sk == NULL || !sk_X509_push(sk, x)) {
		X509_free(x);
		sk_X509_free(sk);
		return err_set(P11S_E_NOMEM, "out of memory reading the CA certificate");
	}
	*out = sk;
	return P11S_OK;
}

static enum p11s_err parse_bag(const unsigned char *body, size_t len, STACK_OF(X509) **out)
{
	const unsigned char *p = body;
	CMS_ContentInfo *cms;
	STACK_OF(X509) *sk = NULL;
	enum p11s_err r = P11S_OK;

	cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
	if (cms == NULL)
		return err_set_ssl(P11S_E_MALFORMED,
		    "GetCACert reply is not a PKCS#7 certificate bag");
	if (p != body + len) {
		r = err_set(P11S_E_MALFORMED,
		    "GetCACert reply has %zu bytes after its PKCS#7 bag",
		    (size_t)(body + len - p));
		goto out;
	}
	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
		r = err_set(P11S_E_MALFORMED,
		    "GetCACert reply is PKCS#7 but not SignedData");
		goto out;
	}
	sk = CMS_get1_certs(cms);
	if (sk == NULL || sk_X509_num(sk) == 0) {
		r = err_set(P11S_E_MALFORMED, "GetCACert reply holds no certificate");
		goto out;
	}
	if (sk_X509_num(sk) > CA_MAX_CERTS) {
		r = err_set(P11S_E_MALFORMED,
		    "GetCACert reply holds %d certificates, more than the %d allowed",
		    sk_X509_num(sk), CA_MAX_CERTS);
		goto out;
	}
	*out = sk;
	sk = NULL;
out:
	sk_X509_pop_free(sk, X509_free);
	CMS_ContentInfo_free(cms);
	return r;
}

enum p11s_err scep_ca_parse(const unsigned char *body, size_t len,
			    const char *content_type, STACK_OF(X509) **out)
{
	enum body_kind kind;

	*out = NULL;
	if (body == NULL || len == 0)
		return err_set(P11S_E_MALFORMED, "GetCACert reply is empty");
	if (len > CA_MAX_BODY)
		return err_set(P11S_E_MALFORMED,
		    "GetCACert reply is %zu bytes: too large for CA certificates", len);
	/* The bytes decide; a mislabelled body is common and harmless since
	 * nothing is trusted before the pin matches. */
	kind = sniff(body, len);
	if (kind == BODY_UNKNOWN) {
		return err_set(P11S_E_MALFORMED,
		    "GetCACert reply (%s) is neither a DER certificate nor PKCS#7",
		    content_type != NULL ? content_type : "no content type");
	}
	if (kind == BODY_CERT)
		return parse_one_cert(body, len, out);
	return parse_bag(body, len, out);
}

enum ca_role scep_ca_role(X509 *cert)
{
	uint32_t flags = X509_get_extension_flags(cert);
	uint32_t ku;
	int sig, enc;

	if (flags & EXFLAG_INVALID)
		return ROLE_OTHER;
	if ((flags & EXFLAG_BCONS) && (flags & EXFLAG_CA))
		return ROLE_CA;
	if (!(flags & EXFLAG_BCONS) && (flags & EXFLAG_SS) && X509_get_version(cert) == 0)
		return ROLE_CA;		/* v1 self-signed root */
	if (!(flags & EXFLAG_KUSAGE))
		return ROLE_RA_BOTH;
	ku = X509_get_key_usage(cert);
	sig = (ku & KU_DIGITAL_SIGNATURE) != 0;
	enc = (ku & KU_KEY_ENCIPHERMENT) != 0;
	if (sig && enc)
		return ROLE_RA_BOTH;
	if (enc)
		return ROLE_RA_ENC;
	if (sig)
		return ROLE_RA_SIG;
	return ROLE_OTHER;
}

const char *scep_ca_role_name(enum ca_role r)
{
	switch (r) {
	case ROLE_CA:		return "ca";
	case ROLE_RA_ENC:	return "ra-enc";
	case ROLE_RA_SIG:	return "ra-sig";
	case ROLE_RA_BOTH:	return "ra";
	case ROLE_OTHER:	break;
	}
	return "other";
}

enum p11s_err fingerprint_sha256(X509 *cert, unsigned char fp[32])
{
	unsigned int n = 0;

	memset(fp, 0, 32);
	if (!X509_digest(cert, EVP_sha256(), fp, &n) || n != 32)
		return err_set_ssl(P11S_E_INTERNAL, "cannot hash a certificate");
	return P11S_OK;
}

void fingerprint_format(const unsigned char fp[32], char *buf, size_t buflen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, o = 0;

	if (buflen == 0)
		return;
	for (i = 0; i < 32 && o + 3 <= buflen; i++) {
		if (i > 0) {
			if (o + 4 > buflen)
				break;
			buf[o++] = ':';
		}
		buf[o++] = hex[fp[i] >> 4];
		buf[o++] = hex[fp[i] & 0xf];
	}
	buf[o] = '\0';
}

enum p11s_err fingerprint_parse(const char *s, unsigned char fp[32])
{
	size_t ndig = 0;
	int v;

	memset(fp, 0, 32);
	if (s == NULL)
		return err_set(P11S_E_USAGE, "no CA fingerprint given: use --ca-fingerprint");
	for (; *s != '\0'; s++) {
		if (*s == ':' || *s == ' ' || *s == '\t')
			continue;
		v = OPENSSL_hexchar2int((unsigned char)*s);
		if (v < 0) {
			memset(fp, 0, 32);
			return err_set(P11S_E_USAGE,
			    "CA fingerprint has '%c', which is not a hex digit: "
			    "give the SHA-256 as AB:CD:... or abcd...",
			    (*s >= 0x20 && *s < 0x7f) ? *s : '?');
		}
		if (ndig < 64)
			fp[ndig / 2] |= (unsigned char)(ndig % 2 ? v : v << 4);
		ndig++;
	}
	if (ndig != 64) {
		memset(fp, 0, 32);
		return err_set(P11S_E_USAGE,
		    "CA fingerprint has %zu hex digits, a SHA-256 has 64 "
		    "(openssl x509 -noout -fingerprint -sha256)", ndig);
	}
	return P11S_OK;
}

static void subject_line(X509 *x, char *buf, size_t buflen)
{
	if (X509_NAME_oneline(X509_get_subject_name(x), buf, (int)buflen) == NULL)
		snprintf(buf, buflen, "?");
}

/* x is issued by ca: names chain and ca's key verifies x's signature. */
static int issued_by(X509 *x, X509 *ca)
{
	EVP_PKEY *pk = X509_get0_pubkey(ca);
	int ok;

	if (pk == NULL)
		return 0;
	if (X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(ca)) != 0)
		return 0;
	ok = X509_verify(x, pk) == 1;
	ERR_clear_error();
	return ok;
}

static enum p11s_err pin_not_found(STACK_OF(X509) *certs, const unsigned char fp[32])
{
	char want[96], got[96];
	unsigned char f[32];
	X509 *shown = sk_X509_value(certs, 0);
	int i;

	/* Name the CA the server sent: that is the fingerprint to compare. */
	for (i = 0; i < sk_X509_num(certs); i++) {
		if (scep_ca_role(sk_X509_value(certs, i)) == ROLE_CA) {
			shown = sk_X509_value(certs, i);
			break;
		}
	}
	fingerprint_format(fp, want, sizeof(want));
	if (shown == NULL || fingerprint_sha256(shown, f) != P11S_OK)
		return err_set(P11S_E_UNTRUSTED, "GetCACert reply holds no certificate");
	fingerprint_format(f, got, sizeof(got));
	return err_set(P11S_E_UNTRUSTED,
	    "GetCACert reply holds no certificate whose SHA-256 is %s; the server's "
	    "CA is %s%s: check --ca-fingerprint", want, got,
	    sk_X509_num(certs) > 1 ? " (among others)" : "");
}

static X509 *find_pinned(STACK_OF(X509) *certs, const unsigned char fp[32])
{
	unsigned char f[32];
	int i;

	for (i = 0; i < sk_X509_num(certs); i++) {
		X509 *x = sk_X509_value(certs, i);

		if (fingerprint_sha256(x, f) == P11S_OK && memcmp(f, fp, 32) == 0)
			return x;
	}
	return NULL;
}

/*
 * With a root pinned, the bag may hold the issuing CA below it: follow
 * subordinate CAs (other names, signed by the current one) while there is
 * exactly one, so that requests go to the CA that really issues.
 */
static X509 *issuing_ca(STACK_OF(X509) *certs, X509 *pinned)
{
	X509 *cur = pinned, *next;
	int depth, i, found;

	for (depth = 0; depth < CA_MAX_CERTS; depth++) {
		next = NULL;
		found = 0;
		for (i = 0; i < sk_X509_num(certs); i++) {
			X509 *x = sk_X509_value(certs, i);

			if (x == cur || scep_ca_role(x) != ROLE_CA ||
			    X509_NAME_cmp(X509_get_subject_name(x),
				X509_get_subject_name(cur)) == 0 ||
			    !issued_by(x, cur))
				continue;
			next = x;
			found++;
		}
		if (found != 1)
			break;
		cur = next;
	}
	return cur;
}

/* Lower is better: a dedicated cert beats a both-ways one; valid beats not. */
static int ra_rank(X509 *x, enum ca_role want)
{
	enum ca_role r = scep_ca_role(x);
	int rank;

	if (r == want)
		rank = 0;
	else if (r == ROLE_RA_BOTH)
		rank = 2;
	else
		return -1;
	if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0 ||
	    X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
		rank++;
	return rank;
}

static X509 *pick_ra(STACK_OF(X509) *certs, enum ca_role want)
{
	X509 *best = NULL;
	int i, rank, best_rank = 100;

	for (i = 0; i < sk_X509_num(certs); i++) {
		X509 *x = sk_X509_value(certs, i);

		rank = ra_rank(x, want);
		if (rank >= 0 && rank < best_rank) {
			best = x;
			best_rank = rank;
		}
	}
	return best;
}

static int is_ra(X509 *x)
{
	enum ca_role r = scep_ca_role(x);

	return r == ROLE_RA_ENC || r == ROLE_RA_SIG || r == ROLE_RA_BOTH;
}

static enum p11s_err check_ras(STACK_OF(X509) *certs, X509 *ca)
{
	char subj[256];
	int i;

	for (i = 0; i < sk_X509_num(certs); i++) {
		X509 *x = sk_X509_value(certs, i);

		if (!is_ra(x) || issued_by(x, ca))
			continue;
		subject_line(x, subj, sizeof(subj));
		return err_set(P11S_E_UNTRUSTED,
		    "RA certificate %s in the GetCACert reply is not issued by the "
		    "pinned CA: refusing it", subj);
	}
	return P11S_OK;
}

static X509 *ref(X509 *x)
{
	if (x != NULL && !X509_up_ref(x))
		return NULL;
	return x;
}

enum p11s_err scep_ca_select(STACK_OF(X509) *certs, const unsigned char fp[32],
			     struct scep_ca_set *out)
{
	X509 *pinned, *ca, *enc, *sig;
	enum p11s_err r;
	int i;

	memset(out, 0, sizeof(*out));
	if (certs == NULL || sk_X509_num(certs) == 0)
		return err_set(P11S_E_MALFORMED, "GetCACert reply holds no certificate");
	pinned = find_pinned(certs, fp);
	if (pinned == NULL)
		return pin_not_found(certs, fp);
	if (scep_ca_role(pinned) != ROLE_CA)
		return err_set(P11S_E_UNTRUSTED,
		    "the certificate matching --ca-fingerprint is not a CA certificate "
		    "(no basicConstraints CA:TRUE): pin the CA, not an RA");
	ca = issuing_ca(certs, pinned);
	r = check_ras(certs, ca);
	if (r != P11S_OK)
		return r;
	enc = pick_ra(certs, ROLE_RA_ENC);
	sig = pick_ra(certs, ROLE_RA_SIG);
	out->pinned = ref(pinned);
	out->ca = ref(ca);
	out->ra_enc = ref(enc != NULL ? enc : ca);
	out->ra_sig = ref(sig != NULL ? sig : ca);
	out->certs = sk_X509_new_null();
	if (out->pinned == NULL || out->ca == NULL || out->ra_enc == NULL ||
	    out->ra_sig == NULL || out->certs == NULL)
		goto nomem;
	for (i = 0; i < sk_X509_num(certs); i++) {
		X509 *x = ref(sk_X509_value(certs, i));

		if (x == NULL)
			goto nomem;
		if (!sk_X509_push(out->certs, x)) {
			X509_free(x);
			goto nomem;
		}
	}
	return P11S_OK;
nomem:
	scep_ca_set_free(out);
	return err_set(P11S_E_NOMEM, "out of memory selecting CA certificates");
}

void scep_ca_set_free(struct scep_ca_set *s)
{
	if (s == NULL)
		return;
	X509_free(s->pinned);
	X509_free(s->ca);
	X509_free(s->ra_enc);
	X509_free(s->ra_sig);
	sk_X509_pop_free(s->certs, X509_free);
	memset(s, 0, sizeof(*s));
}

static STACK_OF(X509) *untrusted_pool(const struct scep_ca_set *set, STACK_OF(X509) *extra)
{
	STACK_OF(X509) *pool = sk_X509_new_null();
	int i;

	if (pool == NULL)
		return NULL;
	for (i = 0; set->certs != NULL && i < sk_X509_num(set->certs); i++) {
		if (!sk_X509_push(pool, sk_X509_value(set->certs, i)))
			goto fail;
	}
	for (i = 0; extra != NULL && i < sk_X509_num(extra); i++) {
		if (!sk_X509_push(pool, sk_X509_value(extra, i)))
			goto fail;
	}
	return pool;
fail:
	sk_X509_free(pool);
	return NULL;
}

enum p11s_err scep_ca_verify_issued(const struct scep_ca_set *set, X509 *leaf,
				    STACK_OF(X509) *extra, STACK_OF(X509) **chain)
{
	X509 *anchor = set->pinned != NULL ? set->pinned : set->ca;
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	STACK_OF(X509) *pool = NULL, *got = NULL;
	enum p11s_err r = P11S_OK;
	int code;

	*chain = NULL;
	if (anchor == NULL || leaf == NULL)
		return err_set(P11S_E_INTERNAL, "no CA or no certificate to verify");
	store = X509_STORE_new();
	ctx = X509_STORE_CTX_new();
	pool = untrusted_pool(set, extra);
	if (store == NULL || ctx == NULL || pool == NULL) {
		r = err_set(P11S_E_NOMEM, "out of memory verifying the issued certificate");
		goto out;
	}
	/* Only the pinned CA is trusted; partial chains let it be an intermediate. */
	if (!X509_STORE_add_cert(store, anchor) ||
	    !X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN) ||
	    !X509_STORE_CTX_init(ctx, store, leaf, pool) ||
	    !X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_ANY)) {
		r = err_set_ssl(P11S_E_INTERNAL, "cannot set up certificate verification");
		goto out;
	}
	if (X509_verify_cert(ctx) != 1) {
		code = X509_STORE_CTX_get_error(ctx);
		ERR_clear_error();
		r = err_set(P11S_E_UNTRUSTED,
		    "the issued certificate does not chain to the pinned CA: %s",
		    X509_verify_cert_error_string(code));
		goto out;
	}
	got = X509_STORE_CTX_get1_chain(ctx);
	if (got == NULL || sk_X509_num(got) < 1) {
		r = err_set(P11S_E_INTERNAL, "certificate verification gave no chain");
		goto out;
	}
	X509_free(sk_X509_shift(got));	/* the leaf itself */
	*chain = got;
	got = NULL;
out:
	sk_X509_pop_free(got, X509_free);
	sk_X509_free(pool);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return r;
}

/* ---- GetNextCACert (RFC 8894 §4.7) ---- */

/*
 * A ContentInfo around a bare SignedData: CMS puts the SignedData itself
 * (no ContentInfo) into an eContent of type id-signedData.
 */
typedef struct {
	ASN1_OBJECT *type;
	ASN1_TYPE *content;
} NEXTCA_WRAP;

ASN1_SEQUENCE(NEXTCA_WRAP) = {
	ASN1_SIMPLE(NEXTCA_WRAP, type, ASN1_OBJECT),
	ASN1_EXP(NEXTCA_WRAP, content, ASN1_ANY, 0),
} static_ASN1_SEQUENCE_END(NEXTCA_WRAP)

IMPLEMENT_STATIC_ASN1_ALLOC_FUNCTIONS(NEXTCA_WRAP)

static enum p11s_err nextca_outer(const unsigned char *body, size_t len, const char *ct,
				  CMS_ContentInfo **out)
{
	const unsigned char *p = body;
	CMS_ContentInfo *cms;
	ASN1_OCTET_STRING **pos;
	enum body_kind kind;
	int n, t;

	*out = NULL;
	if (body == NULL || len == 0)
		return err_set(P11S_E_MALFORMED, "GetNextCACert reply is empty");
	if (len > CA_MAX_BODY)
		return err_set(P11S_E_MALFORMED,
		    "GetNextCACert reply is %zu bytes: too large for CA certificates", len);
	kind = sniff(body, len);
	if (kind == BODY_CERT)
		return err_set(P11S_E_UNTRUSTED, "GetNextCACert reply (%s) is a bare certificate "
		    "that nobody signed: refusing it", ct != NULL ? ct : "no content type");
	if (kind == BODY_UNKNOWN)
		return err_set(P11S_E_MALFORMED, "GetNextCACert reply (%s) is not a complete "
		    "PKCS#7 message", ct != NULL ? ct : "no content type");
	cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
	if (cms == NULL)
		return err_set_ssl(P11S_E_MALFORMED, "GetNextCACert reply is not a PKCS#7 message");
	*out = cms;
	if (p != body + len)
		return err_set(P11S_E_MALFORMED, "GetNextCACert reply has %zu bytes after its "
		    "PKCS#7 message", (size_t)(body + len - p));
	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed)
		return err_set(P11S_E_MALFORMED, "GetNextCACert reply is PKCS#7 but not SignedData");
	n = sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms));
	if (n <= 0)
		return err_set(P11S_E_UNTRUSTED, "GetNextCACert reply is not signed (a bare "
		    "certificate bag): refusing it");
	if (n > NEXTCA_MAX_SIGNERS)
		return err_set(P11S_E_MALFORMED, "GetNextCACert reply has %d signers", n);
	t = OBJ_obj2nid(CMS_get0_eContentType(cms));
	if (t != NID_pkcs7_data && t != NID_pkcs7_signed)
		return err_set(P11S_E_MALFORMED, "GetNextCACert reply's signed content is "
		    "neither id-data nor id-signedData");
	pos = CMS_get0_content(cms);
	if (pos == NULL || *pos == NULL)
		return err_set(P11S_E_MALFORMED, "GetNextCACert reply has no signed content: "
		    "the new certificates must be inside it");
	return P11S_OK;
}

/* The current CA's certs that may sign: borrowed, each once. */
static enum p11s_err nextca_signers(const struct scep_ca_set *set, STACK_OF(X509) **out)
{
	X509 *cand[3] = { set->ra_sig, set->ca, set->pinned };
	size_t i;

	*out = sk_X509_new_null();
	if (*out == NULL)
		return err_set(P11S_E_NOMEM, "out of memory verifying GetNextCACert");
	for (i = 0; i < 3; i++) {
		if (cand[i] == NULL || sk_X509_find(*out, cand[i]) >= 0)
			continue;
		if (!sk_X509_push(*out, cand[i]))
			return err_set(P11S_E_NOMEM, "out of memory verifying GetNextCACert");
	}
	if (sk_X509_num(*out) == 0)
		return err_set(P11S_E_INTERNAL, "no current CA to verify GetNextCACert with");
	return P11S_OK;
}

static int in_pool(STACK_OF(X509) *pool, X509 *x)
{
	int i;

	for (i = 0; x != NULL && i < sk_X509_num(pool); i++) {
		if (X509_cmp(sk_X509_value(pool, i), x) == 0)
			return 1;
	}
	return 0;
}

/* Every signer must be one of pool; the eContent goes to content. */
static enum p11s_err nextca_verify(CMS_ContentInfo *cms, STACK_OF(X509) *pool, X509 *ca,
				   BIO *content)
{
	STACK_OF(CMS_SignerInfo) *sis = CMS_get0_SignerInfos(cms);
	X509_ALGOR *dig;
	X509 *used;
	char subj[256];
	int i;

	/* CMS_NOINTERN: certs in the reply never stand in for the current CA. */
	if (CMS_verify(cms, pool, NULL, NULL, content, CMS_NO_SIGNER_CERT_VERIFY |
	    CMS_NOINTERN | CMS_NOCRL | CMS_BINARY) != 1) {
		if (ca != NULL)
			subject_line(ca, subj, sizeof(subj));
		else
			snprintf(subj, sizeof(subj), "?");
		return err_set_ssl(P11S_E_UNTRUSTED, "GetNextCACert reply is not signed by the "
		    "current CA %s or its RA signing certificate: refusing the new CA", subj);
	}
	for (i = 0; i < sk_CMS_SignerInfo_num(sis); i++) {
		used = NULL;
		dig = NULL;
		CMS_SignerInfo_get0_algs(sk_CMS_SignerInfo_value(sis, i), NULL, &used, &dig,
		    NULL);
		if (!in_pool(pool, used))
			return err_set(P11S_E_UNTRUSTED, "GetNextCACert reply has a signer that "
			    "is not the current CA: refusing it");
		if (dig == NULL || OBJ_obj2nid(dig->algorithm) == NID_md5)
			return err_set(P11S_E_UNTRUSTED, "GetNextCACert reply is signed with MD5: "
			    "refused");
	}
	return P11S_OK;
}

/* DER ContentInfo { signedData, [0] sd } around a bare SignedData sd. */
static enum p11s_err wrap_signeddata(const unsigned char *sd, size_t len,
				     unsigned char **der, int *dlen)
{
	NEXTCA_WRAP *w = NEXTCA_WRAP_new();
	ASN1_STRING *seq = ASN1_STRING_new();
	enum p11s_err e = P11S_OK;

	*der = NULL;
	*dlen = 0;
	if (w == NULL || w->content == NULL || seq == NULL || len > INT_MAX ||
	    !ASN1_STRING_set(seq, sd, (int)len)) {
		e = err_set(P11S_E_NOMEM, "out of memory reading GetNextCACert");
		goto out;
	}
	w->type = OBJ_nid2obj(NID_pkcs7_signed);
	ASN1_TYPE_set(w->content, V_ASN1_SEQUENCE, seq);	/* raw TLV, owned by w now */
	seq = NULL;
	*dlen = ASN1_item_i2d((const ASN1_VALUE *)w, der, ASN1_ITEM_rptr(NEXTCA_WRAP));
	if (*dlen <= 0) {
		*der = NULL;
		e = err_set_ssl(P11S_E_MALFORMED, "GetNextCACert's signed content is not "
		    "a SignedData");
	}
out:
	ASN1_STRING_free(seq);
	NEXTCA_WRAP_free(w);
	return e;
}

/*
 * The signed content: a degenerate SignedData as a ContentInfo (the usual
 * SCEP form) or, under id-signedData, the bare SignedData.
 */
static enum p11s_err nextca_bag(const unsigned char *in, size_t len, CMS_ContentInfo **out)
{
	const unsigned char *p = in, *q;
	unsigned char *wrapped = NULL;
	long inner;
	int tag, xclass, r, wlen = 0;
	enum p11s_err e = P11S_OK;

	*out = NULL;
	r = ASN1_get_object(&p, &inner, &tag, &xclass, (long)len);
	if ((r & 0x80) || tag != V_ASN1_SEQUENCE || p >= in + len)
		return err_set(P11S_E_MALFORMED, "GetNextCACert's signed content is not PKCS#7");
	if (*p == V_ASN1_INTEGER) {	/* SignedData starts with its version */
		e = wrap_signeddata(in, len, &wrapped, &wlen);
		if (e != P11S_OK)
			return e;
		in = wrapped;
		len = (size_t)wlen;
	}
	q = in;
	*out = d2i_CMS_ContentInfo(NULL, &q, (long)len);
	if (*out == NULL || q != in + len)
		e = err_set_ssl(P11S_E_MALFORMED, "GetNextCACert's signed content is not a "
		    "PKCS#7 certificate bag");
	else if (OBJ_obj2nid(CMS_get0_type(*out)) != NID_pkcs7_signed)
		e = err_set(P11S_E_MALFORMED, "GetNextCACert's signed content is not a "
		    "SignedData");
	OPENSSL_free(wrapped);
	return e;
}

static enum p11s_err nextca_certs(CMS_ContentInfo *bag, STACK_OF(X509) **out)
{
	STACK_OF(X509) *sk = CMS_get1_certs(bag);
	int i, n = sk_X509_num(sk);

	*out = NULL;
	if (n <= 0 || n > CA_MAX_CERTS) {
		sk_X509_pop_free(sk, X509_free);
		return err_set(P11S_E_MALFORMED, "GetNextCACert reply holds %d certificates, "
		    "not 1 to %d", n > 0 ? n : 0, CA_MAX_CERTS);
	}
	for (i = 0; i < n; i++) {
		if (scep_ca_role(sk_X509_value(sk, i)) == ROLE_CA) {
			*out = sk;
			return P11S_OK;
		}
	}
	sk_X509_pop_free(sk, X509_free);
	return err_set(P11S_E_MALFORMED, "GetNextCACert reply holds no CA certificate");
}

enum p11s_err scep_nextca_parse(const unsigned char *body, size_t len,
				const char *content_type, const struct scep_ca_set *set,
				STACK_OF(X509) **out)
{
	CMS_ContentInfo *cms = NULL, *bag = NULL;
	STACK_OF(X509) *pool = NULL;
	BIO *content = NULL;
	unsigned char *inner = NULL;
	long ilen;
	enum p11s_err e;

	*out = NULL;
	if (set == NULL)
		return err_set(P11S_E_INTERNAL, "no current CA to verify GetNextCACert with");
	e = nextca_signers(set, &pool);
	if (e == P11S_OK)
		e = nextca_outer(body, len, content_type, &cms);
	if (e != P11S_OK)
		goto out;
	content = BIO_new(BIO_s_mem());
	if (content == NULL) {
		e = err_set(P11S_E_NOMEM, "out of memory reading GetNextCACert");
		goto out;
	}
	e = nextca_verify(cms, pool, set->ca != NULL ? set->ca : set->pinned, content);
	if (e != P11S_OK)
		goto out;
	/* Only the signed content counts: the outer certificates are not signed. */
	ilen = BIO_get_mem_data(content, (char **)&inner);
	if (ilen <= 0) {
		e = err_set(P11S_E_MALFORMED, "GetNextCACert reply's signed content is empty");
		goto out;
	}
	e = nextca_bag(inner, (size_t)ilen, &bag);
	if (e == P11S_OK)
		e = nextca_certs(bag, out);
out:
	CMS_ContentInfo_free(bag);
	BIO_free(content);
	CMS_ContentInfo_free(cms);
	sk_X509_free(pool);
	return e;
}
