/* GetCACert bodies: CA and RA certificates, their roles, pinning, chains. No I/O. */
#ifndef P11SCEP_SCEP_CA_H
#define P11SCEP_SCEP_CA_H

#include <stddef.h>
#include <openssl/x509.h>

#include "err.h"

enum ca_role { ROLE_OTHER = 0, ROLE_CA, ROLE_RA_ENC, ROLE_RA_SIG, ROLE_RA_BOTH };

/*
 * Parses a GetCACert body. content_type "application/x-x509-ca-cert" is one
 * DER certificate; "application/x-x509-ca-ra-cert" a degenerate PKCS#7/CMS
 * SignedData holding certs. Missing or odd content types are sniffed from
 * the bytes. *out owns the certs (sk_X509_pop_free).
 */
enum p11s_err scep_ca_parse(const unsigned char *body, size_t len,
			    const char *content_type, STACK_OF(X509) **out);

/* Role of one cert by basicConstraints and keyUsage, never by position. */
enum ca_role scep_ca_role(X509 *cert);
const char *scep_ca_role_name(enum ca_role r);	/* "ca", "ra-enc", "ra-sig", "ra" */

/* The certs one enrollment uses; each pointer holds its own reference. */
struct scep_ca_set {
	X509 *ca;		/* the pinned CA (or the issuing CA below it) */
	X509 *ra_enc;		/* encrypt requests to this; == ca without an RA */
	X509 *ra_sig;		/* replies must be signed by this; == ca without an RA */
	STACK_OF(X509) *certs;	/* every cert received, for chain building */
	X509 *pinned;		/* the cert matching the fingerprint: the trust anchor */
};

/*
 * From the received certs, find the one whose SHA-256 fingerprint is fp (32
 * bytes) - it must be a CA - and pick the RA certs by key usage. When the
 * pinned CA is a root and the certs hold exactly one subordinate CA signed by
 * it (and so on down), ca is that issuing CA. RA certs must be issued
 * (signature verified) by ca. P11S_E_UNTRUSTED when no cert matches the pin,
 * with a message naming the fingerprint received.
 */
enum p11s_err scep_ca_select(STACK_OF(X509) *certs, const unsigned char fp[32],
			     struct scep_ca_set *out);
void scep_ca_set_free(struct scep_ca_set *s);	/* NULL-safe */

/*
 * Verifies that leaf chains to set->ca (using set->certs and extra as
 * intermediates) and returns the chain from the leaf's issuer up to and
 * including the pinned CA in *chain (caller frees with sk_X509_pop_free).
 */
enum p11s_err scep_ca_verify_issued(const struct scep_ca_set *set, X509 *leaf,
				    STACK_OF(X509) *extra, STACK_OF(X509) **chain);

/*
 * GetNextCACert reply (RFC 8894 §4.7.1): a SignedData signed by the current
 * CA, i.e. by set->ra_sig, set->ca or set->pinned and nothing else (certs
 * embedded in the reply never count as signers; MD5 is refused). Its signed
 * content is a degenerate certs-only SignedData holding the next CA (and RA)
 * certs: a ContentInfo under eContentType id-data (or id-signedData), or the
 * bare SignedData under id-signedData. Only those certs are returned: the
 * outer SignedData's certificates are not covered by the signature and are
 * ignored. At least one, at most 64, and one of them a CA, else
 * P11S_E_MALFORMED. content_type ("application/x-x509-next-ca-cert") is only
 * named in messages: the bytes are sniffed. Unsigned replies (a bare cert, a
 * certs-only bag) and signatures by anyone else are P11S_E_UNTRUSTED. The
 * new certs are not verified further: select and pin them as usual.
 * *out owns the certs (sk_X509_pop_free).
 */
enum p11s_err scep_nextca_parse(const unsigned char *body, size_t len,
				const char *content_type, const struct scep_ca_set *set,
				STACK_OF(X509) **out);

/* "AA:BB:..." hex with or without colons (or spaces) -> 32 bytes. */
enum p11s_err fingerprint_parse(const char *s, unsigned char fp[32]);
/* SHA-256 of the DER cert, and as "AA:BB:..." (buf >= 96 bytes). */
enum p11s_err fingerprint_sha256(X509 *cert, unsigned char fp[32]);
void fingerprint_format(const unsigned char fp[32], char *buf, size_t buflen);

#endif
