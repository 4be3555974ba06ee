/* HTTP(S) through libcurl: GET and POST with limits. Knows nothing of PKCS#7. */
#ifndef P11SCEP_HTTP_H
#define P11SCEP_HTTP_H

#include <stddef.h>

#include "err.h"

struct http_opts {
	long timeout_s;		/* whole transfer; 0 = default (60 s) */
	long connect_timeout_s;	/* 0 = default (15 s) */
	size_t max_body;	/* bytes; 0 = default (1 MiB); larger bodies are an error */
	const char *cacert;	/* CA bundle for https; NULL = system default */
	int insecure_tls;	/* turn off TLS verification: only when the user asked by name */
	int verbose;		/* libcurl's own trace on stderr */
};

struct http_resp {
	unsigned char *body;	/* NUL-terminated (not counted in len) */
	size_t len;
	char *content_type;	/* lower-cased, parameters stripped; NULL if none */
	long status;		/* HTTP status code */
};

/* One easy handle for a whole run, so that the connection is kept alive. */
struct http;

enum p11s_err http_new(const struct http_opts *o, struct http **out);
void http_free(struct http *h);		/* NULL-safe */

/* Any non-2xx status is P11S_E_NETWORK with a message naming it; so are
 * connection, DNS, TLS and timeout errors. Redirects are not followed.
 * On error *out holds nothing to free; out->status is the HTTP status when
 * the server answered with one (non-2xx), else 0. */
enum p11s_err http_get(struct http *h, const char *url, struct http_resp *out);
enum p11s_err http_post(struct http *h, const char *url, const char *content_type,
			const unsigned char *body, size_t len, struct http_resp *out);
void http_resp_free(struct http_resp *r);	/* NULL-safe; leaves *r zeroed */

/* Percent-encode s for a query string (every byte but unreserved ones); free(). */
char *http_escape(const char *s, size_t len);

#endif
