#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "http.h"
#include "log.h"
#include "worklock.h"

#define HTTP_DEFAULT_TIMEOUT	60L
#define HTTP_DEFAULT_CONNECT	15L
#define HTTP_DEFAULT_MAX_BODY	(1024 * 1024)
#define HTTP_SNIPPET_MAX	120	/* of a server's text shown in messages */
#define HTTP_URL_MAX		200	/* of a URL shown in messages */

struct http {
	CURL *curl;
	size_t max_body;
	char errbuf[CURL_ERROR_SIZE];
};

/* The reply body as it arrives; never more than max bytes. */
struct body {
	unsigned char *buf;
	size_t len;
	size_t cap;
	size_t max;
	int too_big;
	int nomem;
};

static size_t body_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t n = size * nmemb, cap;
	unsigned char *nbuf;

	/* Servers need not send Content-Length: the limit is enforced here. */
	if (n > b->max - b->len) {
		b->too_big = 1;
		return 0;
	}
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap = cap > b->max / 2 ? b->max + 1 : cap * 2;
		nbuf = realloc(b->buf, cap);
		if (nbuf == NULL) {
			b->nomem = 1;
			return 0;
		}
		b->buf = nbuf;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, p, n);
	b->len += n;
	b->buf[b->len] = '\0';
	return n;
}

/* Options for every request; they fail only on unknown options or memory. */
static CURLcode setup_transfer(struct http *h, const struct http_opts *o)
{
	CURL *c = h->curl;
	long connect_s = o->connect_timeout_s > 0 ? o->connect_timeout_s : HTTP_DEFAULT_CONNECT;
	long timeout_s = o->timeout_s > 0 ? o->timeout_s : HTTP_DEFAULT_TIMEOUT;
	CURLcode rc;

	rc = curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(c, CURLOPT_NOPROGRESS, 1L);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(c, CURLOPT_USERAGENT, "p11scep/" PACKAGE_VERSION);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, connect_s);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->max_body);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_write);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(c, CURLOPT_VERBOSE, o->verbose ? 1L : 0L);
	return rc;
}

/* Verification is on unless the user turned it off by name. */
static CURLcode setup_tls(struct http *h, const struct http_opts *o)
{
	CURLcode rc;

	rc = curl_easy_setopt(h->curl, CURLOPT_SSL_VERIFYPEER, o->insecure_tls ? 0L : 1L);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(h->curl, CURLOPT_SSL_VERIFYHOST, o->insecure_tls ? 0L : 2L);
	if (rc == CURLE_OK && o->cacert != NULL)
		rc = curl_easy_setopt(h->curl, CURLOPT_CAINFO, o->cacert);
	return rc;
}

enum p11s_err http_new(const struct http_opts *o, struct http **out)
{
	static const struct http_opts defaults;
	struct http *h;
	CURLcode rc;

	*out = NULL;
	if (o == NULL)
		o = &defaults;
	rc = curl_global_init(CURL_GLOBAL_DEFAULT);
	if (rc != CURLE_OK)
		return err_set(P11S_E_INTERNAL, "cannot initialise libcurl: %s",
			       curl_easy_strerror(rc));
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		curl_global_cleanup();
		return err_set(P11S_E_NOMEM, "out of memory setting up HTTP");
	}
	h->max_body = o->max_body > 0 ? o->max_body : HTTP_DEFAULT_MAX_BODY;
	if (h->max_body > SIZE_MAX / 2)
		h->max_body = SIZE_MAX / 2;
	h->curl = curl_easy_init();
	if (h->curl == NULL) {
		http_free(h);
		return err_set(P11S_E_INTERNAL, "cannot create a libcurl handle");
	}
	rc = setup_transfer(h, o);
	if (rc == CURLE_OK)
		rc = setup_tls(h, o);
	if (rc != CURLE_OK) {
		http_free(h);
		return err_set(P11S_E_INTERNAL, "cannot set up libcurl: %s",
			       curl_easy_strerror(rc));
	}
	if (o->insecure_tls)
		log_warn("TLS verification is off (--insecure-tls): the https server's "
			 "certificate and name are not checked");
	*out = h;
	return P11S_OK;
}

void http_free(struct http *h)
{
	if (h == NULL)
		return;
	if (h->curl != NULL)
		curl_easy_cleanup(h->curl);
	free(h);
	curl_global_cleanup();
}

void http_resp_free(struct http_resp *r)
{
	if (r == NULL)
		return;
	free(r->body);
	free(r->content_type);
	memset(r, 0, sizeof(*r));
}

/*
 * Printable ASCII of s up to its first line end, for a message: at most max
 * characters (and what fits in out), "..." when cut.
 */
static void sanitize(const char *s, size_t len, size_t max, char *out, size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; i < len && s[i] != '\r' && s[i] != '\n' && s[i] != '\0'; i++) {
		if (o + 4 >= outlen || o >= max) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		out[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	}
	out[o] = '\0';
}

/*
 * The URL for messages: no query (a GET PKIOperation's message= is huge),
 * no fragment, no user or password. Falls back to cutting at '?'.
 */
static void url_for_msg(const char *url, char *out, size_t outlen)
{
	CURLU *u = curl_url();
	char *s = NULL;
	size_t n;

	if (u != NULL && curl_url_set(u, CURLUPART_URL, url, CURLU_GUESS_SCHEME) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_QUERY, NULL, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_USER, NULL, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK) {
		sanitize(s, strlen(s), HTTP_URL_MAX, out, outlen);
	} else {
		n = strcspn(url, "?#");
		sanitize(url, n, HTTP_URL_MAX, out, outlen);
	}
	curl_free(s);
	curl_url_cleanup(u);
}

static enum p11s_err curl_failed(struct http *h, CURLcode rc, const char *url,
				 const struct body *b)
{
	char where[256], why[CURL_ERROR_SIZE];

	url_for_msg(url, where, sizeof(where));
	if (b->nomem)
		return err_set(P11S_E_NOMEM, "out of memory reading the reply from %s", where);
	if (b->too_big || rc == CURLE_FILESIZE_EXCEEDED)
		return err_set(P11S_E_NETWORK,
			       "reply from %s is larger than %zu bytes: refusing it",
			       where, h->max_body);
	/* curl's own text, which names the host; it may quote the peer's bytes. */
	if (h->errbuf[0] != '\0')
		sanitize(h->errbuf, strlen(h->errbuf), sizeof(why), why, sizeof(why));
	else
		snprintf(why, sizeof(why), "%s", curl_easy_strerror(rc));
	switch (rc) {
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return err_set(P11S_E_USAGE, "cannot use URL %s (only http and https): %s",
			       where, why);
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
		return err_set(P11S_E_NETWORK, "cannot connect to %s: %s", where, why);
	case CURLE_OPERATION_TIMEDOUT:
		return err_set(P11S_E_NETWORK, "no complete answer from %s in time: %s",
			       where, why);
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
		return err_set(P11S_E_NETWORK,
			       "TLS with %s failed: %s: check the server's certificate or --cacert",
			       where, why);
	default:
		return err_set(P11S_E_NETWORK, "request to %s failed: %s", where, why);
	}
}

/* First non-blank line of a text body, cleaned for a message. */
static void body_snippet(const struct body *b, const char *ctype, char *out, size_t outlen)
{
	const char *s = (const char *)b->buf;
	size_t len = b->len;

	out[0] = '\0';
	if (s == NULL || (ctype != NULL && strncmp(ctype, "text/", 5) != 0))
		return;
	while (len > 0 && strchr(" \t\r\n", *s) != NULL) {
		s++;
		len--;
	}
	sanitize(s, len, HTTP_SNIPPET_MAX, out, outlen);
}

static enum p11s_err status_failed(struct http *h, long status, const char *url,
				   const struct body *b, const char *ctype)
{
	char where[256], text[HTTP_SNIPPET_MAX + 8], loc[HTTP_SNIPPET_MAX + 8];
	char *location = NULL;

	url_for_msg(url, where, sizeof(where));
	if (status >= 300 && status < 400) {
		if (curl_easy_getinfo(h->curl, CURLINFO_REDIRECT_URL, &location) != CURLE_OK ||
		    location == NULL)
			return err_set(P11S_E_NETWORK, "HTTP %ld from %s (and no Location)",
				       status, where);
		sanitize(location, strlen(location), HTTP_SNIPPET_MAX, loc, sizeof(loc));
		return err_set(P11S_E_NETWORK, "HTTP %ld from %s points to %s: %s", status,
			       where, loc, "redirects are not followed; use that URL");
	}
	body_snippet(b, ctype, text, sizeof(text));
	if (text[0] != '\0')
		return err_set(P11S_E_NETWORK, "HTTP %ld from %s: %s", status, where, text);
	return err_set(P11S_E_NETWORK, "HTTP %ld from %s", status, where);
}

/* "Application/X-X509-CA-Cert; charset=x" -> "application/x-x509-ca-cert"; NULL if none. */
static enum p11s_err content_type(struct http *h, char **out)
{
	char *ct = NULL;
	size_t n, i;

	*out = NULL;
	if (curl_easy_getinfo(h->curl, CURLINFO_CONTENT_TYPE, &ct) != CURLE_OK || ct == NULL)
		return P11S_OK;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	n = strcspn(ct, ";");
	while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	if (n == 0)
		return P11S_OK;
	*out = strndup(ct, n);
	if (*out == NULL)
		return err_set(P11S_E_NOMEM, "out of memory reading a reply");
	/* ASCII only: tolower() would follow the locale. */
	for (i = 0; i < n; i++) {
		if ((*out)[i] >= 'A' && (*out)[i] <= 'Z')
			(*out)[i] = (char)((*out)[i] - 'A' + 'a');
	}
	return P11S_OK;
}

/* Runs the request set up on h and fills out on a 2xx answer. */
static enum p11s_err perform(struct http *h, const char *url, struct http_resp *out)
{
	struct body b = { .max = h->max_body };
	enum p11s_err r;
	char *ctype = NULL;
	long status = 0;
	CURLcode rc;

	h->errbuf[0] = '\0';
	rc = curl_easy_setopt(h->curl, CURLOPT_URL, url);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &b);
	if (rc == CURLE_OK) {
		/* The one wait other profiles may use (p11scep run --jobs). */
		worklock_release();
		rc = curl_easy_perform(h->curl);
		worklock_acquire();
	}
	if (rc != CURLE_OK) {
		r = curl_failed(h, rc, url, &b);
		goto out;
	}
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
	r = content_type(h, &ctype);
	if (r != P11S_OK)
		goto out;
	if (status < 200 || status > 299) {
		/* The status alone, so a caller can tell "answered 404" from "no answer". */
		out->status = status;
		r = status_failed(h, status, url, &b, ctype);
		goto out;
	}
	if (b.buf == NULL) {
		b.buf = calloc(1, 1);	/* an empty body is still a string */
		if (b.buf == NULL) {
			r = err_set(P11S_E_NOMEM, "out of memory reading a reply");
			goto out;
		}
	}
	out->body = b.buf;
	out->len = b.len;
	out->content_type = ctype;
	out->status = status;
	b.buf = NULL;
	ctype = NULL;
out:
	/* No pointer into this call's stack or buffers may outlive it. */
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, NULL);
	free(b.buf);
	free(ctype);
	return r;
}

enum p11s_err http_get(struct http *h, const char *url, struct http_resp *out)
{
	CURLcode rc;

	memset(out, 0, sizeof(*out));
	rc = curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
	if (rc != CURLE_OK)
		return err_set(P11S_E_INTERNAL, "cannot set up a GET: %s", curl_easy_strerror(rc));
	return perform(h, url, out);
}

enum p11s_err http_post(struct http *h, const char *url, const char *ctype,
			const unsigned char *body, size_t len, struct http_resp *out)
{
	struct curl_slist *hdrs = NULL, *t;
	char line[256];
	enum p11s_err r;
	CURLcode rc;

	memset(out, 0, sizeof(*out));
	if (ctype == NULL || strpbrk(ctype, "\r\n") != NULL ||
	    snprintf(line, sizeof(line), "Content-Type: %s", ctype) >= (int)sizeof(line))
		return err_set(P11S_E_INTERNAL, "bad content type for a POST");
	hdrs = curl_slist_append(NULL, line);
	/* No "Expect: 100-continue" round trip before the body. */
	t = hdrs ? curl_slist_append(hdrs, "Expect:") : NULL;
	if (t == NULL) {
		curl_slist_free_all(hdrs);
		return err_set(P11S_E_NOMEM, "out of memory setting up a POST");
	}
	hdrs = t;
	rc = curl_easy_setopt(h->curl, CURLOPT_POST, 1L);
	if (rc == CURLE_OK)
		/* Never NULL: curl would then read the body from stdin. */
		rc = curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS,
				      body ? (const char *)body : "");
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdrs);
	if (rc != CURLE_OK)
		r = err_set(P11S_E_INTERNAL, "cannot set up a POST: %s", curl_easy_strerror(rc));
	else
		r = perform(h, url, out);
	/* The handle must not keep pointers to the caller's body or our list. */
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
	curl_slist_free_all(hdrs);
	return r;
}

/* RFC 3986 unreserved characters; not isalnum(), which follows the locale. */
static int is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

char *http_escape(const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char c;
	char *out, *o;
	size_t i;

	if (len > (SIZE_MAX - 1) / 3)
		return NULL;
	out = malloc(len * 3 + 1);
	if (out == NULL)
		return NULL;
	o = out;
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (is_unreserved(c)) {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 0x0f];
		}
	}
	*o = '\0';
	return out;
}
