#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "log.h"
#include "scep_ca.h"
#include "scep_client.h"

/* base URL + "?operation=OP" (or "&" when the URL has a query already) + rest */
static char *op_url(const char *url, const char *op, const char *rest)
{
	size_t n = strlen(url) + strlen(op) + strlen(rest) + 16;
	char *s = malloc(n);

	if (s != NULL)
		snprintf(s, n, "%s%soperation=%s%s", url, strchr(url, '?') ? "&" : "?", op, rest);
	return s;
}

enum p11s_err scep_get_caps(struct http *h, const char *url, struct scep_caps *out)
{
	struct http_resp resp = { 0 };
	enum p11s_err rc;
	char *u;

	memset(out, 0, sizeof(*out));
	u = op_url(url, "GetCACaps", "");
	if (u == NULL)
		return err_set(P11S_E_NOMEM, "out of memory");
	rc = http_get(h, u, &resp);
	if (rc == P11S_E_NETWORK && resp.status >= 400) {
		/* RFC 8894 §3.5.2: an error answer means no capabilities. */
		log_v("GetCACaps answered HTTP %ld: assuming no capabilities", resp.status);
		err_clear();
		rc = P11S_OK;
		goto out;
	}
	if (rc != P11S_OK)
		goto out;
	rc = caps_parse((const char *)resp.body, resp.len, out);
out:
	http_resp_free(&resp);
	free(u);
	return rc;
}

enum p11s_err scep_get_ca(struct http *h, const char *url, STACK_OF(X509) **out)
{
	struct http_resp resp = { 0 };
	enum p11s_err rc;
	char *u;

	*out = NULL;
	u = op_url(url, "GetCACert", "&message=CA");
	if (u == NULL)
		return err_set(P11S_E_NOMEM, "out of memory");
	rc = http_get(h, u, &resp);
	if (rc != P11S_OK)
		goto out;
	rc = scep_ca_parse(resp.body, resp.len, resp.content_type, out);
out:
	http_resp_free(&resp);
	free(u);
	return rc;
}

enum p11s_err scep_get_next_ca(struct http *h, const char *url, const struct scep_ca_set *set,
			       STACK_OF(X509) **out)
{
	struct http_resp resp = { 0 };
	enum p11s_err rc;
	char *u;

	*out = NULL;
	u = op_url(url, "GetNextCACert", "&message=CA");
	if (u == NULL)
		return err_set(P11S_E_NOMEM, "out of memory");
	rc = http_get(h, u, &resp);
	if (rc != P11S_OK)
		goto out;
	rc = scep_nextca_parse(resp.body, resp.len, resp.content_type, set, out);
out:
	http_resp_free(&resp);
	free(u);
	return rc;
}

static char *b64_escaped(const unsigned char *msg, size_t len)
{
	size_t b64_len = 4 * ((len + 2) / 3) + 1;
	char *b64, *esc = NULL;

	if (len > 16 * 1024 * 1024)
		return NULL;
	b64 = malloc(b64_len);
	if (b64 == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)b64, msg, (int)len);
	esc = http_escape(b64, strlen(b64));
	free(b64);
	return esc;
}

enum p11s_err scep_pki_operation(struct http *h, const char *url, int use_post,
				 const unsigned char *msg, size_t msg_len,
				 unsigned char **der, size_t *der_len)
{
	struct http_resp resp = { 0 };
	enum p11s_err rc;
	char *u = NULL, *esc = NULL, *rest = NULL;

	*der = NULL;
	*der_len = 0;
	if (use_post) {
		u = op_url(url, "PKIOperation", "");
		if (u == NULL) {
			rc = err_set(P11S_E_NOMEM, "out of memory");
			goto out;
		}
		rc = http_post(h, u, "application/x-pki-message", msg, msg_len, &resp);
	} else {
		size_t n;

		esc = b64_escaped(msg, msg_len);
		n = esc ? strlen(esc) + 16 : 0;
		rest = esc ? malloc(n) : NULL;
		if (rest == NULL) {
			rc = err_set(P11S_E_NOMEM, "out of memory");
			goto out;
		}
		snprintf(rest, n, "&message=%s", esc);
		u = op_url(url, "PKIOperation", rest);
		if (u == NULL) {
			rc = err_set(P11S_E_NOMEM, "out of memory");
			goto out;
		}
		rc = http_get(h, u, &resp);
	}
	if (rc != P11S_OK)
		goto out;
	if (resp.content_type == NULL || strcmp(resp.content_type, "application/x-pki-message") != 0) {
		rc = err_set(P11S_E_MALFORMED,
			     "PKIOperation reply has content type '%s', not application/x-pki-message",
			     resp.content_type ? resp.content_type : "(none)");
		goto out;
	}
	*der = resp.body;
	*der_len = resp.len;
	resp.body = NULL;
	resp.len = 0;
out:
	http_resp_free(&resp);
	free(u);
	free(esc);
	free(rest);
	return rc;
}
