/* SCEP operations over HTTP: the URL and content-type rules of RFC 8894 §4. */
#ifndef P11SCEP_SCEP_CLIENT_H
#define P11SCEP_SCEP_CLIENT_H

#include <stddef.h>
#include <openssl/x509.h>

#include "caps.h"
#include "err.h"
#include "http.h"
#include "scep_ca.h"

/* GetCACaps. An HTTP error status means "no capabilities" (RFC 8894 §3.5.2);
 * a transport error is P11S_E_NETWORK. */
enum p11s_err scep_get_caps(struct http *h, const char *url, struct scep_caps *out);

/* GetCACert: the certificates as received (*out: sk_X509_pop_free). */
enum p11s_err scep_get_ca(struct http *h, const char *url, STACK_OF(X509) **out);

/* GetNextCACert: the next CA (and RA) certs, the reply's signature verified
 * with the current set (*out: sk_X509_pop_free). */
enum p11s_err scep_get_next_ca(struct http *h, const char *url, const struct scep_ca_set *set,
			       STACK_OF(X509) **out);

/* PKIOperation by POST or GET; *der gets the reply body (free()). The reply
 * must be application/x-pki-message. */
enum p11s_err scep_pki_operation(struct http *h, const char *url, int use_post,
				 const unsigned char *msg, size_t msg_len,
				 unsigned char **der, size_t *der_len);

#endif
