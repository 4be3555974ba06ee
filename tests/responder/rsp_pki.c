#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "responder.h"

#define CA_SECONDS	(3650L * 86400)
#define CRL_DAYS	7
#define MAX_REVOKED	10000

struct spec {
	const char *cn;			/* subject CN=cn,O=p11scep tests */
	EVP_PKEY *pub;
	X509 *issuer;			/* NULL: self-signed */
	EVP_PKEY *issuer_key;
	const char *bc;
	const char *ku;
	long not_before;		/* offsets from now, in seconds */
	long seconds;
};

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return 0;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

/* A random positive 63-bit serial: unique enough, never a counter to lean on. */
static int set_serial(X509 *x)
{
	BIGNUM *bn = BN_new();
	ASN1_INTEGER *ai = NULL;
	int ok = 0;

	if (bn == NULL || !BN_rand(bn, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
	    !BN_add_word(bn, 1))
		goto out;
	ai = BN_to_ASN1_INTEGER(bn, NULL);
	ok = ai != NULL && X509_set_serialNumber(x, ai);
out:
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	return ok;
}

static int set_validity(X509 *x, long not_before, long seconds)
{
	return X509_gmtime_adj(X509_getm_notBefore(x), not_before) != NULL &&
	    X509_gmtime_adj(X509_getm_notAfter(x), seconds) != NULL;
}

static X509_NAME *make_name(const char *cn)
{
	X509_NAME *n = X509_NAME_new();

	if (n == NULL ||
	    !X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
		(const unsigned char *)"p11scep tests", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
		(const unsigned char *)cn, -1, -1, 0)) {
		X509_NAME_free(n);
		return NULL;
	}
	return n;
}

/* The parts every cert shares: version, serial, names, key, validity. */
/* A minute back by default: clocks of client and server may differ a little. */
#define NOT_BEFORE	(-60L)

static X509 *cert_base(const X509_NAME *subject, const X509_NAME *issuer, EVP_PKEY *pub,
		       long not_before, long seconds)
{
	X509 *x = X509_new();

	if (x == NULL || !X509_set_version(x, X509_VERSION_3) || !set_serial(x) ||
	    !X509_set_subject_name(x, subject) || !X509_set_issuer_name(x, issuer) ||
	    !X509_set_pubkey(x, pub) || !set_validity(x, not_before, seconds)) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static X509 *make_cert(const struct spec *s)
{
	X509_NAME *name = make_name(s->cn);
	X509 *x = NULL, *iss;
	EVP_PKEY *ikey = s->issuer != NULL ? s->issuer_key : s->pub;

	if (name == NULL)
		return NULL;
	x = cert_base(name, s->issuer != NULL ? X509_get_subject_name(s->issuer) : name,
	    s->pub, s->not_before, s->seconds);
	X509_NAME_free(name);
	if (x == NULL)
		return NULL;
	iss = s->issuer != NULL ? s->issuer : x;
	if (!add_ext(x, iss, NID_basic_constraints, s->bc) ||
	    !add_ext(x, iss, NID_key_usage, s->ku) ||
	    !add_ext(x, iss, NID_subject_key_identifier, "hash") ||
	    !add_ext(x, iss, NID_authority_key_identifier, "keyid") ||
	    X509_sign(x, ikey, EVP_sha256()) <= 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static int path_of(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	return n >= 0 && (size_t)n < len ? 0 : -1;
}

/* Writes through NAME.tmp and a rename, so readers see whole files only. */
static int write_pem(const char *dir, const char *name, X509 *cert, EVP_PKEY *key)
{
	char path[4096], tmp[4200];
	BIO *b;
	int ok;

	if (path_of(path, sizeof(path), dir, name) != 0)
		return -1;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	b = BIO_new_file(tmp, "w");
	if (b == NULL) {
		fprintf(stderr, "scep-responder: cannot write %s: %s\n", tmp, strerror(errno));
		return -1;
	}
	ok = cert != NULL ? PEM_write_bio_X509(b, cert) :
	    PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
	if (BIO_free(b) != 1 || !ok || rename(tmp, path) != 0) {
		fprintf(stderr, "scep-responder: cannot write %s\n", path);
		return -1;
	}
	return 0;
}

static int save(const char *dir, const char *base, X509 *cert, EVP_PKEY *key)
{
	char name[128];

	snprintf(name, sizeof(name), "%s.pem", base);
	if (write_pem(dir, name, cert, NULL) != 0)
		return -1;
	snprintf(name, sizeof(name), "%s.key", base);
	return key != NULL ? write_pem(dir, name, NULL, key) : 0;
}

/* --ca-valid-seconds for the first CA (a CA near its end, for rollover tests). */
static long first_ca_seconds;

/* The validity window of the CA that GetCACert serves (--evil expired-ca, notyet-ca). */
static void ca_window(enum rsp_evil evil, long *not_before, long *seconds)
{
	*not_before = NOT_BEFORE;
	*seconds = CA_SECONDS;
	if (first_ca_seconds > 0) {
		*seconds = first_ca_seconds;
		first_ca_seconds = 0;	/* the next CA gets a normal life */
	}
	if (evil == EVIL_EXPIRED_CA) {
		*not_before = -30L * 86400;
		*seconds = -86400L;
	} else if (evil == EVIL_NOTYET_CA) {
		*not_before = 86400L;
		*seconds = CA_SECONDS;
	}
}

static int new_ca_window(const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
			 int with_ra_usage, enum rsp_evil evil, EVP_PKEY **key, X509 **cert)
{
	struct spec s;

	memset(&s, 0, sizeof(s));
	*cert = NULL;
	*key = EVP_RSA_gen(2048);
	if (*key == NULL)
		return -1;
	s.cn = cn;
	s.pub = *key;
	s.issuer = issuer;
	s.issuer_key = issuer_key;
	s.bc = "critical,CA:TRUE";
	/* Without an RA the CA itself signs replies and decrypts requests. */
	s.ku = with_ra_usage ? "critical,keyCertSign,cRLSign,digitalSignature,keyEncipherment" :
	    "critical,keyCertSign,cRLSign";
	ca_window(evil, &s.not_before, &s.seconds);
	*cert = make_cert(&s);
	return *cert != NULL ? 0 : -1;
}

static int new_ca(const char *cn, X509 *issuer, EVP_PKEY *issuer_key, int with_ra_usage,
		  EVP_PKEY **key, X509 **cert)
{
	return new_ca_window(cn, issuer, issuer_key, with_ra_usage, EVIL_NONE, key, cert);
}

static int new_ra(const char *cn, const char *ku, X509 *ca, EVP_PKEY *ca_key,
		  EVP_PKEY **key, X509 **cert)
{
	struct spec s;

	memset(&s, 0, sizeof(s));
	*cert = NULL;
	*key = EVP_RSA_gen(2048);
	if (*key == NULL)
		return -1;
	s.cn = cn;
	s.pub = *key;
	s.issuer = ca;
	s.issuer_key = ca_key;
	s.bc = "critical,CA:FALSE";
	s.ku = ku;
	s.not_before = NOT_BEFORE;
	s.seconds = CA_SECONDS / 2;
	*cert = make_cert(&s);
	return *cert != NULL ? 0 : -1;
}

/* References: the pki struct holds one per distinct pointer field use. */
static void share(EVP_PKEY **dk, X509 **dc, EVP_PKEY *k, X509 *c)
{
	EVP_PKEY_up_ref(k);
	X509_up_ref(c);
	*dk = k;
	*dc = c;
}

static int push_new(STACK_OF(X509) *sk, X509 *x)
{
	if (!sk_X509_push(sk, x)) {
		X509_free(x);
		return -1;
	}
	return 0;
}

/* The certs GetNextCACert announces: a new CA (new key) and, for NDES, new RA certs. */
static int make_next(struct rsp *r)
{
	struct rsp_pki *p = &r->pki;
	EVP_PKEY *k = NULL, *rk = NULL;
	X509 *ca = NULL, *ra = NULL;
	int rc = -1;

	p->next_certs = sk_X509_new_null();
	if (p->next_certs == NULL)
		return -1;
	if (r->conf.mode == MODE_CHAIN) {
		if (new_ca("scep-responder issuing CA next", p->root, p->root_key, 1, &k, &ca))
			goto out;
	} else if (new_ca("scep-responder CA next", NULL, NULL, r->conf.mode == MODE_CA,
	    &k, &ca)) {
		goto out;
	}
	if (save(r->conf.dir, "next-ca", ca, k) != 0)
		goto out;
	EVP_PKEY_up_ref(k);
	p->next_key = k;
	X509_up_ref(ca);
	if (push_new(p->next_certs, ca) != 0)
		goto out;
	if (r->conf.mode == MODE_NDES) {
		if (new_ra("scep-responder RA enc next", "critical,keyEncipherment", ca, k,
		    &rk, &ra) != 0 || save(r->conf.dir, "next-ra-enc", ra, NULL) != 0)
			goto out;
		if (push_new(p->next_certs, ra) != 0) {
			ra = NULL;
			goto out;
		}
		ra = NULL;
		EVP_PKEY_free(rk);
		rk = NULL;
		if (new_ra("scep-responder RA sig next", "critical,digitalSignature", ca, k,
		    &rk, &ra) != 0 || save(r->conf.dir, "next-ra-sig", ra, NULL) != 0)
			goto out;
		if (push_new(p->next_certs, ra) != 0) {
			ra = NULL;
			goto out;
		}
		ra = NULL;
	}
	rc = 0;
out:
	X509_free(ra);
	EVP_PKEY_free(rk);
	X509_free(ca);
	EVP_PKEY_free(k);
	return rc;
}

static int init_ndes(struct rsp *r)
{
	struct rsp_pki *p = &r->pki;

	if (new_ca_window("scep-responder CA", NULL, NULL, 0, r->conf.evil, &p->root_key,
	    &p->root) != 0)
		return -1;
	share(&p->ca_key, &p->ca, p->root_key, p->root);
	if (new_ra("scep-responder RA enc", "critical,keyEncipherment", p->ca, p->ca_key,
	    &p->enc_key, &p->enc) != 0 ||
	    new_ra("scep-responder RA sig", "critical,digitalSignature", p->ca, p->ca_key,
	    &p->sig_key, &p->sig) != 0)
		return -1;
	if (save(r->conf.dir, "ra-enc", p->enc, p->enc_key) != 0 ||
	    save(r->conf.dir, "ra-sig", p->sig, p->sig_key) != 0)
		return -1;
	return 0;
}

static int init_chain(struct rsp *r)
{
	struct rsp_pki *p = &r->pki;

	if (new_ca_window("scep-responder root CA", NULL, NULL, 0, r->conf.evil,
	    &p->root_key, &p->root) != 0 ||
	    new_ca("scep-responder issuing CA", p->root, p->root_key, 1, &p->ca_key,
	    &p->ca) != 0)
		return -1;
	share(&p->enc_key, &p->enc, p->ca_key, p->ca);
	share(&p->sig_key, &p->sig, p->ca_key, p->ca);
	return save(r->conf.dir, "issuing", p->ca, p->ca_key);
}

static int init_ca(struct rsp *r)
{
	struct rsp_pki *p = &r->pki;

	if (new_ca_window("scep-responder CA", NULL, NULL, 1, r->conf.evil, &p->root_key,
	    &p->root) != 0)
		return -1;
	share(&p->ca_key, &p->ca, p->root_key, p->root);
	share(&p->enc_key, &p->enc, p->root_key, p->root);
	share(&p->sig_key, &p->sig, p->root_key, p->root);
	return 0;
}

/*
 * --evil signer: a self-signed end-entity cert that is neither CA nor RA.
 * wrongca: a CA with the issuing CA's name but a key of its own.
 * wrongkey: a key pair the requester never saw.
 */
static int init_evil(struct rsp *r)
{
	struct rsp_pki *p = &r->pki;
	struct spec s;

	memset(&s, 0, sizeof(s));
	switch (r->conf.evil) {
	case EVIL_SIGNER:
		p->evil_key = EVP_RSA_gen(2048);
		s.cn = "scep-responder stray signer";
		s.bc = "critical,CA:FALSE";
		s.ku = "critical,digitalSignature";
		break;
	case EVIL_WRONGCA:
		p->evil_key = EVP_RSA_gen(2048);
		s.cn = r->conf.mode == MODE_CHAIN ? "scep-responder issuing CA" :
		    "scep-responder CA";
		s.bc = "critical,CA:TRUE";
		s.ku = "critical,keyCertSign,cRLSign";
		break;
	case EVIL_WRONGKEY:
		p->evil_key = EVP_RSA_gen(2048);
		return p->evil_key != NULL ? 0 : -1;
	default:
		return 0;
	}
	if (p->evil_key == NULL)
		return -1;
	s.pub = p->evil_key;
	s.not_before = NOT_BEFORE;
	s.seconds = CA_SECONDS;
	p->evil_cert = make_cert(&s);
	if (p->evil_cert == NULL)
		return -1;
	return save(r->conf.dir, "evil", p->evil_cert, NULL);
}

int rsp_pki_init(struct rsp *r)
{
	struct rsp_pki *p = &r->pki;
	char path[4096];
	int rc;

	p->issued = sk_X509_new_null();
	if (p->issued == NULL)
		return -1;
	if (path_of(path, sizeof(path), r->conf.dir, "issued") != 0 ||
	    (mkdir(path, 0755) != 0 && errno != EEXIST)) {
		fprintf(stderr, "scep-responder: cannot create %s: %s\n", path, strerror(errno));
		return -1;
	}
	first_ca_seconds = r->conf.ca_valid_seconds;
	switch (r->conf.mode) {
	case MODE_NDES:
		rc = init_ndes(r);
		break;
	case MODE_CHAIN:
		rc = init_chain(r);
		break;
	default:
		rc = init_ca(r);
		break;
	}
	if (rc == 0)
		rc = save(r->conf.dir, "ca", p->root, p->root_key);
	if (rc == 0 && r->conf.next_ca)
		rc = make_next(r);
	if (rc == 0)
		rc = init_evil(r);
	if (rc != 0)
		fprintf(stderr, "scep-responder: cannot create the CA material in %s\n",
		    r->conf.dir);
	return rc;
}

void rsp_pki_maybe_roll(struct rsp *r)
{
	struct rsp_pki *p = &r->pki;
	X509 *next;

	if (r->conf.rollover_after <= 0 || p->rolled || p->next_key == NULL ||
	    r->conf.mode != MODE_CA || time(NULL) < r->conf.started + r->conf.rollover_after)
		return;
	next = sk_X509_value(p->next_certs, 0);
	EVP_PKEY_free(p->root_key);
	X509_free(p->root);
	EVP_PKEY_free(p->ca_key);
	X509_free(p->ca);
	EVP_PKEY_free(p->enc_key);
	X509_free(p->enc);
	EVP_PKEY_free(p->sig_key);
	X509_free(p->sig);
	share(&p->root_key, &p->root, p->next_key, next);
	share(&p->ca_key, &p->ca, p->next_key, next);
	share(&p->enc_key, &p->enc, p->next_key, next);
	share(&p->sig_key, &p->sig, p->next_key, next);
	p->rolled = 1;
	if (r->log != NULL) {
		fprintf(r->log, "op=rollover the next CA is now the CA\n");
		fflush(r->log);
	}
}

void rsp_pki_free(struct rsp_pki *p)
{
	EVP_PKEY_free(p->next_key);
	EVP_PKEY_free(p->root_key);
	X509_free(p->root);
	EVP_PKEY_free(p->ca_key);
	X509_free(p->ca);
	EVP_PKEY_free(p->enc_key);
	X509_free(p->enc);
	EVP_PKEY_free(p->sig_key);
	X509_free(p->sig);
	sk_X509_pop_free(p->next_certs, X509_free);
	sk_X509_pop_free(p->issued, X509_free);
	EVP_PKEY_free(p->evil_key);
	X509_free(p->evil_cert);
	memset(p, 0, sizeof(*p));
}

/* A degenerate SignedData (no signers) holding certs, in this order, and crl. */
int rsp_pkcs7_bag(STACK_OF(X509) *certs, X509_CRL *crl, unsigned char **der, int *len)
{
	PKCS7 *p7 = PKCS7_new();
	int i, ok = 0;

	*der = NULL;
	*len = 0;
	if (p7 == NULL || !PKCS7_set_type(p7, NID_pkcs7_signed))
		goto out;
	/* The content is id-data and absent, as in openssl crl2pkcs7. */
	ASN1_OBJECT_free(p7->d.sign->contents->type);
	p7->d.sign->contents->type = OBJ_nid2obj(NID_pkcs7_data);
	for (i = 0; i < sk_X509_num(certs); i++) {
		if (!PKCS7_add_certificate(p7, sk_X509_value(certs, i)))
			goto out;
	}
	if (crl != NULL && !PKCS7_add_crl(p7, crl))
		goto out;
	*len = i2d_PKCS7(p7, der);
	ok = *len > 0;
out:
	PKCS7_free(p7);
	if (!ok) {
		OPENSSL_free(*der);
		*der = NULL;
		*len = 0;
	}
	return ok ? 0 : -1;
}

int rsp_pki_cacert(struct rsp *r, struct rsp_resp *resp)
{
	struct rsp_pki *p = &r->pki;
	STACK_OF(X509) *sk = NULL;
	int len = 0, ok = 0;

	if (r->conf.mode == MODE_CA) {
		resp->body = NULL;
		len = i2d_X509(p->ca, &resp->body);
		ok = len > 0;
		resp->ctype = "application/x-x509-ca-cert";
		goto out;
	}
	sk = sk_X509_new_null();
	if (sk == NULL)
		goto out;
	if (r->conf.mode == MODE_CHAIN)
		ok = sk_X509_push(sk, p->ca) && sk_X509_push(sk, p->root);
	else if (r->conf.enc_first)
		ok = sk_X509_push(sk, p->enc) && sk_X509_push(sk, p->sig) &&
		    sk_X509_push(sk, p->ca);
	else
		ok = sk_X509_push(sk, p->sig) && sk_X509_push(sk, p->ca) &&
		    sk_X509_push(sk, p->enc);
	ok = ok && rsp_pkcs7_bag(sk, NULL, &resp->body, &len) == 0;
	resp->ctype = "application/x-x509-ca-ra-cert";
out:
	sk_X509_free(sk);
	if (!ok) {
		rsp_note(resp, "reason=\"cannot encode the CA certificates\"");
		return rsp_resp_text(resp, 500, "internal error\n");
	}
	resp->status = 200;
	resp->len = (size_t)len;
	return 0;
}

/*
 * RFC 8894 §4.7.1: a SignedData by the current signer (CA or RA sig) whose
 * signed content is a degenerate certificates-only SignedData of the next
 * certs (certs outside the signed content would not be covered by it).
 */
int rsp_pki_nextca(struct rsp *r, struct rsp_resp *resp)
{
	struct rsp_pki *p = &r->pki;
	const unsigned int fl = CMS_BINARY | CMS_NOCERTS | CMS_PARTIAL | CMS_NOSMIMECAP;
	CMS_ContentInfo *cms = NULL;
	unsigned char *bag = NULL;
	BIO *in = NULL;
	int len = 0, bag_len = 0, ok = 0;

	if (p->next_certs == NULL) {
		rsp_note(resp, "reason=\"no next CA (start with --next-ca)\"");
		return rsp_resp_text(resp, 404, "no next CA certificate\n");
	}
	if (rsp_pkcs7_bag(p->next_certs, NULL, &bag, &bag_len) != 0)
		goto out;
	cms = CMS_sign(NULL, NULL, NULL, NULL, fl);
	in = BIO_new_mem_buf(bag, bag_len);
	if (cms == NULL || in == NULL ||
	    CMS_add1_signer(cms, p->sig, p->sig_key, EVP_sha256(), fl) == NULL)
		goto out;
	if (!CMS_final(cms, in, NULL, CMS_BINARY))
		goto out;
	resp->body = NULL;
	len = i2d_CMS_ContentInfo(cms, &resp->body);
	ok = len > 0;
out:
	BIO_free(in);
	OPENSSL_free(bag);
	CMS_ContentInfo_free(cms);
	if (!ok) {
		rsp_note(resp, "reason=\"cannot build the GetNextCACert reply\"");
		return rsp_resp_text(resp, 500, "internal error\n");
	}
	resp->status = 200;
	resp->ctype = "application/x-x509-next-ca-cert";
	resp->len = (size_t)len;
	return 0;
}

static int copy_san(X509 *x, X509_REQ *req)
{
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
	int i, ok = 1;

	for (i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
		X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);

		if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) == NID_subject_alt_name)
			ok = ok && X509_add_ext(x, e, -1);
	}
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return ok;
}

static void save_issued(struct rsp *r, X509 *x)
{
	char name[128], dir[4096];
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;

	if (hex != NULL && path_of(dir, sizeof(dir), r->conf.dir, "issued") == 0) {
		snprintf(name, sizeof(name), "%s.pem", hex);
		write_pem(dir, name, x, NULL);
	}
	OPENSSL_free(hex);
	BN_free(bn);
}

X509 *rsp_pki_issue(struct rsp *r, X509_REQ *req)
{
	struct rsp_pki *p = &r->pki;
	EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
	X509 *x, *ca = p->ca;
	EVP_PKEY *ca_key = p->ca_key;

	if (pub == NULL)
		return NULL;
	if (r->conf.evil == EVIL_WRONGKEY)
		pub = p->evil_key;
	if (r->conf.evil == EVIL_WRONGCA) {
		ca = p->evil_cert;
		ca_key = p->evil_key;
	}
	x = cert_base(X509_REQ_get_subject_name(req), X509_get_subject_name(ca), pub,
	    NOT_BEFORE, r->conf.valid_seconds);
	if (x == NULL)
		return NULL;
	/* RFC 5480: an EC key agrees on keys, it never enciphers them. */
	if (!add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") ||
	    !add_ext(x, ca, NID_key_usage, EVP_PKEY_is_a(pub, "EC") ?
	    "critical,digitalSignature,keyAgreement" :
	    "critical,digitalSignature,keyEncipherment") ||
	    !add_ext(x, ca, NID_ext_key_usage, "clientAuth,serverAuth") ||
	    !add_ext(x, ca, NID_subject_key_identifier, "hash") ||
	    !add_ext(x, ca, NID_authority_key_identifier, "keyid") ||
	    !copy_san(x, req) || X509_sign(x, ca_key, EVP_sha256()) <= 0 ||
	    !X509_up_ref(x) || !sk_X509_push(p->issued, x)) {
		X509_free(x);
		return NULL;
	}
	save_issued(r, x);
	return x;
}

X509 *rsp_pki_find_issued(struct rsp *r, const ASN1_INTEGER *serial)
{
	int i;

	for (i = 0; i < sk_X509_num(r->pki.issued); i++) {
		X509 *x = sk_X509_value(r->pki.issued, i);

		if (ASN1_INTEGER_cmp(X509_get0_serialNumber(x), serial) == 0)
			return x;
	}
	return NULL;
}

int rsp_pki_is_issued(struct rsp *r, X509 *cert)
{
	X509 *x = rsp_pki_find_issued(r, X509_get0_serialNumber(cert));

	return x != NULL && X509_cmp(x, cert) == 0;
}

/* One hex serial per line of DIR/revoked into crl; blank lines are skipped. */
static int add_revoked(struct rsp *r, X509_CRL *crl, const ASN1_TIME *when)
{
	char path[4096], line[256];
	FILE *f;
	int n = 0, rc = 0;

	if (path_of(path, sizeof(path), r->conf.dir, "revoked") != 0)
		return -1;
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	while (rc == 0 && fgets(line, sizeof(line), f) != NULL && n++ < MAX_REVOKED) {
		BIGNUM *bn = NULL;
		ASN1_INTEGER *ai = NULL;
		X509_REVOKED *rev = NULL;
		size_t len = strcspn(line, " \t\r\n");

		line[len] = '\0';
		if (len == 0)
			continue;
		if (BN_hex2bn(&bn, line) != (int)len || (ai = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
		    (rev = X509_REVOKED_new()) == NULL ||
		    !X509_REVOKED_set_serialNumber(rev, ai) ||
		    !X509_REVOKED_set_revocationDate(rev, (ASN1_TIME *)when) ||
		    !X509_CRL_add0_revoked(crl, rev)) {
			fprintf(stderr, "scep-responder: bad serial '%s' in %s\n", line, path);
			X509_REVOKED_free(rev);
			rc = -1;
		}
		ASN1_INTEGER_free(ai);
		BN_free(bn);
	}
	fclose(f);
	return rc;
}

X509_CRL *rsp_pki_crl(struct rsp *r)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *now = X509_gmtime_adj(NULL, 0);
	ASN1_TIME *next = X509_gmtime_adj(NULL, CRL_DAYS * 86400L);
	int ok;

	ok = crl != NULL && now != NULL && next != NULL && X509_CRL_set_version(crl, 1) &&
	    X509_CRL_set_issuer_name(crl, X509_get_subject_name(r->pki.ca)) &&
	    X509_CRL_set1_lastUpdate(crl, now) && X509_CRL_set1_nextUpdate(crl, next) &&
	    add_revoked(r, crl, now) == 0 && X509_CRL_sort(crl) &&
	    X509_CRL_sign(crl, r->pki.ca_key, EVP_sha256()) > 0;
	ASN1_TIME_free(now);
	ASN1_TIME_free(next);
	if (!ok) {
		X509_CRL_free(crl);
		return NULL;
	}
	return crl;
}
