/*
 * A small software PKI for unit tests, all in memory: RSA keys, CA, RA and
 * leaf certificates, certificate bags, and CertRep messages built the way a
 * SCEP server builds them. Every helper fails the running test on error.
 */
#ifndef P11SCEP_TESTPKI_H
#define P11SCEP_TESTPKI_H

#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* New RSA key (2048 bits unless told). */
EVP_PKEY *tp_key(void);
EVP_PKEY *tp_key_bits(int bits);

struct tp_cert_spec {
	const char *cn;		/* subject CN (O=p11scep test is added) */
	EVP_PKEY *key;		/* subject public key */
	X509 *issuer;		/* NULL: self-signed with key */
	EVP_PKEY *issuer_key;
	int ca;			/* basicConstraints CA:TRUE, keyUsage keyCertSign+cRLSign */
	int ku;			/* for non-CA: KU_* bits; 0 = no keyUsage extension */
	long serial;		/* 0: random */
	int version1;		/* a v1 certificate without extensions */
	long not_before;	/* seconds from now (default -3600) */
	long days;		/* default 365 */
};

X509 *tp_cert(const struct tp_cert_spec *s);
/* Self-signed CA. */
X509 *tp_root(EVP_PKEY *key, const char *cn);
/* CA issued by issuer. */
X509 *tp_subca(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key);
/* End-entity or RA cert issued by issuer with keyUsage bits ku (0 = none). */
X509 *tp_leaf(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, int ku);

/* DER of one cert (OPENSSL_free). */
unsigned char *tp_cert_der(X509 *x, size_t *len);
/* Degenerate SignedData holding certs, DER (OPENSSL_free). */
unsigned char *tp_bag_der(X509 *const *certs, size_t n, size_t *len);

/* Degenerate SignedData holding certs and CRLs, DER (OPENSSL_free). */
unsigned char *tp_bag_crl_der(X509 *const *certs, size_t n, X509_CRL *const *crls,
			      size_t n_crls, size_t *len);

/* A CRL by issuer revoking serial (0: none), valid from an hour ago for a day. */
X509_CRL *tp_crl(X509 *issuer, EVP_PKEY *issuer_key, long serial);

/* A SignedData over content (a GetNextCACert reply, say). */
struct tp_signed {
	X509 *signer_cert;
	EVP_PKEY *signer_key;
	int no_signer_cert;		/* leave the signer cert out */
	X509 *const *extra;		/* embedded in the outer certificates too */
	size_t n_extra;
	const char *digest;		/* default "SHA256" */
	const unsigned char *content;	/* eContent; NULL with detached */
	size_t content_len;
	int econtent_signed;		/* eContentType id-signedData, not id-data */
	int detached;			/* no eContent */
};

unsigned char *tp_signed_der(const struct tp_signed *s, size_t *len);

/* Everything a server puts into a CertRep; NULL strings are left out. */
struct tp_certrep {
	X509 *signer_cert;		/* signs the reply */
	EVP_PKEY *signer_key;
	int no_signer_cert;		/* leave the signer cert out of the message */
	X509 *extra_cert;		/* embedded as well (e.g. a fake signer) */
	const char *digest;		/* default "SHA256" */
	const char *msgtype;		/* default "3" */
	const char *status;		/* "0", "2", "3" */
	const char *failinfo;
	const char *failtext;
	const char *txid;
	const unsigned char *recipient_nonce;	/* NULL: left out */
	size_t recipient_nonce_len;
	const unsigned char *sender_nonce;	/* NULL: random */
	/* SUCCESS: certs in a degenerate SignedData, enveloped to recipient. */
	X509 *recipient;
	const char *cipher;		/* default "AES-128-CBC" */
	X509 *const *issued;
	size_t n_issued;
	X509_CRL *const *crls;		/* CRLs beside the certs (GetCRL reply) */
	size_t n_crls;
	int detached;			/* non-SUCCESS: no eContent at all */
	X509 *signer2_cert;		/* a second SignerInfo (servers send one) */
	EVP_PKEY *signer2_key;
};

/* The CertRep DER (OPENSSL_free). */
unsigned char *tp_certrep_der(const struct tp_certrep *r, size_t *len);

/* Reads a whole test data file from TESTS_SRCDIR/unit/data/name (or the
 * data/ directory beside the test program); free(). */
unsigned char *tp_read_data(const char *name, size_t *len);
/* Remember argv[0] for tp_read_data. */
void tp_init(const char *argv0);

#endif
