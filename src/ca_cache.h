/*
 * A profile's copy of what GetCACaps and GetCACert served, so that a renewal
 * needs one exchange. It is trusted only as far as the server was: callers
 * select from it through the fingerprint pin as from a fresh reply, and drop
 * it when the CA answers in a way the cache cannot explain.
 *   DIR/ca/served.pem   every certificate GetCACert returned
 *   DIR/ca/caps         the capability words GetCACaps named
 */
#ifndef P11SCEP_CA_CACHE_H
#define P11SCEP_CA_CACHE_H

#include <openssl/x509.h>

#include "caps.h"
#include "err.h"

/* How long a cached reply stands in for the server's, in seconds. */
#define CA_CACHE_MAX_AGE	(24L * 3600L)

enum p11s_err ca_cache_save(const char *dir, const struct scep_caps *caps,
			    STACK_OF(X509) *served);
/* P11S_E_NOTFOUND (no message) when there is none, or it is older than
 * max_age seconds, or it does not parse. *served is the caller's. */
enum p11s_err ca_cache_load(const char *dir, long max_age, struct scep_caps *caps,
			    STACK_OF(X509) **served);
void ca_cache_drop(const char *dir);
/* The cache of a one-off enrollment (no profile): one directory per server
 * URL under the state directory, STATE/servers/HASH. NULL if it does not fit. */
const char *ca_cache_server_dir(const char *state_dir, const char *url, char *buf,
				size_t buflen);

#endif
