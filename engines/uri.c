#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "uri.h"

#define SCHEME "pkcs11:"

/* Where each known attribute goes. Names are never echoed with values:
 * a value may be a PIN. */
struct attr {
	const char *name;
	int query;		/* 1: after '?', separated by '&' */
	int bytes;		/* 1: raw bytes into id/id_len */
	size_t off;		/* offset of the char * in struct p11_uri */
};

static const struct attr attrs[] = {
	{ "token",		0, 0, offsetof(struct p11_uri, token) },
	{ "serial",		0, 0, offsetof(struct p11_uri, serial) },
	{ "manufacturer",	0, 0, offsetof(struct p11_uri, manufacturer) },
	{ "model",		0, 0, offsetof(struct p11_uri, model) },
	{ "object",		0, 0, offsetof(struct p11_uri, object) },
	{ "id",			0, 1, 0 },
	{ "type",		0, 0, offsetof(struct p11_uri, type) },
	{ "module-path",	1, 0, offsetof(struct p11_uri, module_path) },
	{ "module-name",	1, 0, offsetof(struct p11_uri, module_name) },
	{ "pin-source",		1, 0, offsetof(struct p11_uri, pin_source) },
	{ "pin-value",		1, 0, offsetof(struct p11_uri, pin_value) },
};

static const struct attr *attr_find(const char *name, size_t len, int query)
{
	size_t i;

	for (i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		if (attrs[i].query == query && strlen(attrs[i].name) == len &&
		    strncasecmp(attrs[i].name, name, len) == 0)
			return &attrs[i];
	}
	return NULL;
}

/* Decodes %XX escapes of s[0..n) into a new NUL-terminated buffer. */
static enum p11s_err pct_decode(const struct attr *a, const char *s, size_t n,
				unsigned char **out, size_t *out_len)
{
	unsigned char *buf;
	size_t i, o = 0;
	int hi, lo;

	*out = NULL;
	*out_len = 0;
	buf = malloc(n + 1);
	if (buf == NULL)
		return err_set(P11S_E_NOMEM, "out of memory parsing the PKCS#11 URI");
	for (i = 0; i < n; i++) {
		if (s[i] != '%') {
			buf[o++] = (unsigned char)s[i];
			continue;
		}
		hi = n - i >= 3 ? OPENSSL_hexchar2int((unsigned char)s[i + 1]) : -1;
		lo = n - i >= 3 ? OPENSSL_hexchar2int((unsigned char)s[i + 2]) : -1;
		if (hi < 0 || lo < 0) {
			OPENSSL_cleanse(buf, n + 1);
			free(buf);
			return err_set(P11S_E_USAGE,
				       "PKCS#11 URI attribute %s= has a bad percent escape: write %%XX with two hex digits",
				       a->name);
		}
		buf[o++] = (unsigned char)(hi << 4 | lo);
		i += 2;
	}
	buf[o] = '\0';
	*out = buf;
	*out_len = o;
	return P11S_OK;
}

static enum p11s_err attr_store(struct p11_uri *u, const struct attr *a,
				unsigned char *val, size_t len)
{
	char **field;

	if (a->bytes) {
		if (u->id != NULL)
			goto dup;
		if (len == 0)
			goto empty;
		u->id = val;
		u->id_len = len;
		return P11S_OK;
	}
	field = (char **)((char *)u + a->off);
	if (*field != NULL)
		goto dup;
	if (memchr(val, '\0', len) != NULL) {
		OPENSSL_cleanse(val, len);
		free(val);
		return err_set(P11S_E_USAGE, "PKCS#11 URI attribute %s= holds a NUL byte (%%00)",
			       a->name);
	}
	*field = (char *)val;
	return P11S_OK;
dup:
	OPENSSL_cleanse(val, len);
	free(val);
	return err_set(P11S_E_USAGE, "PKCS#11 URI has %s= more than once", a->name);
empty:
	free(val);
	return err_set(P11S_E_USAGE, "PKCS#11 URI attribute %s= is empty", a->name);
}

/* One "name=value" component; unknown names are ignored (RFC 7512 §2.3). */
static enum p11s_err parse_one(struct p11_uri *u, const char *s, size_t n, int query)
{
	const struct attr *a;
	const char *eq;
	unsigned char *val;
	size_t len;
	enum p11s_err rc;

	eq = memchr(s, '=', n);
	if (eq == NULL)
		return err_set(P11S_E_USAGE, "a PKCS#11 URI %s attribute has no '=': write name=value",
			       query ? "query" : "path");
	a = attr_find(s, (size_t)(eq - s), query);
	if (a == NULL)
		return P11S_OK;
	rc = pct_decode(a, eq + 1, n - (size_t)(eq + 1 - s), &val, &len);
	if (rc != P11S_OK)
		return rc;
	return attr_store(u, a, val, len);
}

/* Splits s[0..n) at sep; empty components (";;", a trailing ';') are skipped. */
static enum p11s_err parse_part(struct p11_uri *u, const char *s, size_t n, char sep, int query)
{
	const char *end = s + n, *next;
	enum p11s_err rc;

	while (s < end) {
		next = memchr(s, sep, (size_t)(end - s));
		if (next == NULL)
			next = end;
		if (next > s) {
			rc = parse_one(u, s, (size_t)(next - s), query);
			if (rc != P11S_OK)
				return rc;
		}
		s = next + 1;
	}
	return P11S_OK;
}

enum p11s_err p11_uri_parse(const char *s, struct p11_uri *out)
{
	const char *path, *q;
	size_t path_len;
	enum p11s_err rc;

	memset(out, 0, sizeof(*out));
	if (s == NULL || strncasecmp(s, SCHEME, strlen(SCHEME)) != 0)
		return err_set(P11S_E_USAGE,
			       "key URI does not start with pkcs11: (e.g. pkcs11:token=T;object=K)");
	path = s + strlen(SCHEME);
	q = strchr(path, '?');
	path_len = q != NULL ? (size_t)(q - path) : strlen(path);
	rc = parse_part(out, path, path_len, ';', 0);
	if (rc == P11S_OK && q != NULL)
		rc = parse_part(out, q + 1, strlen(q + 1), '&', 1);
	if (rc != P11S_OK)
		p11_uri_free(out);
	return rc;
}

void p11_uri_free(struct p11_uri *u)
{
	if (u == NULL)
		return;
	if (u->pin_value != NULL)
		OPENSSL_cleanse(u->pin_value, strlen(u->pin_value));
	free(u->token);
	free(u->serial);
	free(u->manufacturer);
	free(u->model);
	free(u->object);
	free(u->id);
	free(u->type);
	free(u->module_path);
	free(u->module_name);
	free(u->pin_source);
	free(u->pin_value);
	memset(u, 0, sizeof(*u));
}
