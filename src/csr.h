/* The CSR and the transient self-signed signer certificate, signed through an EVP_PKEY. */
#ifndef P11SCEP_CSR_H
#define P11SCEP_CSR_H

#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"

struct csr_params {
	const char *subject;		/* "CN=host,O=Org" or "/CN=host/O=Org" */
	const char *const *dns;		/* subjectAltName dNSName entries */
	size_t n_dns;
	const char *const *ip;		/* subjectAltName iPAddress entries (v4 or v6) */
	size_t n_ip;
	const char *challenge;		/* challengePassword attribute; may be NULL */
	const char *digest;		/* OpenSSL digest name, e.g. "SHA256" */
};

/*
 * Parse a DN in either notation; P11S_E_USAGE naming the bad part.
 * "CN=host,O=Org" is RFC 4514: the first RDN is the most specific and is
 * encoded last, '\' escapes (also \XX hex), '+' joins a multi-valued RDN.
 * "/O=Org/CN=host" is OpenSSL's -subj form, in encoding order. Both of these
 * examples give the same DER. Values are UTF-8.
 */
enum p11s_err dn_parse(const char *s, X509_NAME **out);

/* CSR for key's public key, signed by key (which may live in a token). */
enum p11s_err csr_build(const struct csr_params *p, EVP_PKEY *key, X509_REQ **out);

/*
 * Frees a request, wiping its challengePassword first; the rest of it (its
 * cached encoding holds the password too) is wiped on free when
 * secret_heap_init ran. NULL-safe.
 */
void csr_free(X509_REQ *req);

/*
 * RFC 8894 §2.3 self-signed signer certificate: subject and key of req,
 * random serial, keyUsage digitalSignature + keyEncipherment (RSA) or
 * keyAgreement (EC), valid from a little in the past for a short time,
 * signed by key with digest.
 */
enum p11s_err signer_cert_build(X509_REQ *req, EVP_PKEY *key, const char *digest, X509 **out);

#endif
