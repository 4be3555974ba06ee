#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>
#include <openssl/x509.h>

#include "conf.h"
#include "csr.h"

/*
 * Line numbers: Debian's libinih (r55) is built without INI_HANDLER_LINENO,
 * so the handler learns no line number. inih reads through ini_parse_stream
 * with our reader, which hands it exactly one line of the file per call and
 * counts them: while inih calls the handler, ps->line is that pair's line.
 * The reader also does what inih r55 would get silently wrong:
 *  - a line longer than inih's buffer would be split and its tail parsed as
 *    a line of its own: refused;
 *  - an indented line would continue the previous value (multi-line values
 *    are compiled in): indentation is dropped instead;
 *  - section names are cut at 50 bytes and empty sections never reach the
 *    handler: the reader reads [section] lines itself.
 * Only "key = value" lines, comments and inline " ;" comments are left to inih.
 */

#define KEY_URI_SECRET	"pin-value"
#define SECRET_MSG	"secrets are not allowed inline: use challenge-file or pin-source=file: in key"
#define DEFAULT_CGI	"/cgi-bin/pkiclient.exe"

enum kind {
	K_STR, K_PATH, K_URL, K_KEYURI, K_SUBJECT, K_FPR, K_DNS, K_IP,
	K_BOOL, K_NUM, K_CIPHER, K_DIGEST, K_KEYTYPE,
	K_SCHEME, K_HOST, K_PORT, K_CGIPATH,
};

enum key_id {
	KEY_URL, KEY_SCHEME, KEY_HOST, KEY_PORT, KEY_CGI_PATH,
	KEY_KEY, KEY_MODULE, KEY_SUBJECT, KEY_DNS, KEY_IP, KEY_CHALLENGE_FILE,
	KEY_CA_FINGERPRINT, KEY_CERT_OUT, KEY_CHAIN_OUT, KEY_CA_DIR, KEY_KEY_TYPE,
	KEY_CIPHER, KEY_DIGEST, KEY_RENEW_AT, KEY_NEW_KEY_ON_RENEW, KEY_POLL_INTERVAL,
	KEY_MAX_POLL_TIME, KEY_STRICT, KEY_POST_ENROLL_COMMAND, KEY_STATE_DIR,
	KEY_TIMEOUT, KEY_CACERT, KEY_IMPORT_CHAIN,
	N_KEYS
};

/* A section while it is read: the profile plus what only parsing needs. */
struct sect {
	struct conf_profile p;
	const char *scheme;
	const char *host;
	const char *cgi_path;
	long port;
	unsigned int key_line[N_KEYS];	/* where each key was set; 0: not set */
};

struct key_def {
	const char *name;
	enum kind kind;
	size_t off;		/* of the field in struct sect */
	unsigned int bit;	/* enum conf_set, for the scalars */
	long min, max;		/* K_NUM */
};

#define P(f)	offsetof(struct sect, p.f)
#define S(f)	offsetof(struct sect, f)

static const struct key_def keys[N_KEYS] = {
	[KEY_URL]		= { "url", K_URL, P(url), 0, 0, 0 },
	[KEY_SCHEME]		= { "scheme", K_SCHEME, S(scheme), 0, 0, 0 },
	[KEY_HOST]		= { "host", K_HOST, S(host), 0, 0, 0 },
	[KEY_PORT]		= { "port", K_PORT, S(port), 0, 1, 65535 },
	[KEY_CGI_PATH]		= { "cgi-path", K_CGIPATH, S(cgi_path), 0, 0, 0 },
	[KEY_KEY]		= { "key", K_KEYURI, P(key_uri), 0, 0, 0 },
	[KEY_MODULE]		= { "module", K_STR, P(module), 0, 0, 0 },
	[KEY_SUBJECT]		= { "subject", K_SUBJECT, P(subject), 0, 0, 0 },
	[KEY_DNS]		= { "dns", K_DNS, P(dns), 0, 0, 0 },
	[KEY_IP]		= { "ip", K_IP, P(ip), 0, 0, 0 },
	[KEY_CHALLENGE_FILE]	= { "challenge-file", K_PATH, P(challenge_file), 0, 0, 0 },
	[KEY_CA_FINGERPRINT]	= { "ca-fingerprint", K_FPR, P(ca_fingerprint), 0, 0, 0 },
	[KEY_CERT_OUT]		= { "cert-out", K_PATH, P(cert_out), 0, 0, 0 },
	[KEY_CHAIN_OUT]		= { "chain-out", K_PATH, P(chain_out), 0, 0, 0 },
	[KEY_CA_DIR]		= { "ca-dir", K_PATH, P(ca_dir), 0, 0, 0 },
	[KEY_KEY_TYPE]		= { "key-type", K_KEYTYPE, P(keyspec), CONF_SET_KEY_TYPE, 0, 0 },
	[KEY_CIPHER]		= { "cipher", K_CIPHER, P(cipher), CONF_SET_CIPHER, 0, 0 },
	[KEY_DIGEST]		= { "digest", K_DIGEST, P(digest), CONF_SET_DIGEST, 0, 0 },
	[KEY_RENEW_AT]		= { "renew-at", K_NUM, P(renew_at), CONF_SET_RENEW_AT, 1, 99 },
	[KEY_NEW_KEY_ON_RENEW]	= { "new-key-on-renew", K_BOOL, P(new_key_on_renew),
				    CONF_SET_NEW_KEY_ON_RENEW, 0, 0 },
	[KEY_POLL_INTERVAL]	= { "poll-interval", K_NUM, P(poll_interval_s),
				    CONF_SET_POLL_INTERVAL, 1, 86400 },
	[KEY_MAX_POLL_TIME]	= { "max-poll-time", K_NUM, P(max_poll_time_s),
				    CONF_SET_MAX_POLL_TIME, 0, 30L * 86400 },
	[KEY_STRICT]		= { "strict", K_BOOL, P(strict), CONF_SET_STRICT, 0, 0 },
	[KEY_POST_ENROLL_COMMAND] = { "post-enroll-command", K_STR, P(post_enroll_command), 0, 0, 0 },
	[KEY_STATE_DIR]		= { "state-dir", K_PATH, P(state_dir), 0, 0, 0 },
	[KEY_TIMEOUT]		= { "timeout", K_NUM, P(timeout_s), CONF_SET_TIMEOUT, 1, 86400 },
	[KEY_CACERT]		= { "cacert", K_PATH, P(cacert), 0, 0, 0 },
	[KEY_IMPORT_CHAIN]	= { "import-chain", K_BOOL, P(import_chain), CONF_SET_IMPORT_CHAIN, 0, 0 },
};

/* Refused by name, whatever their value: it is never echoed. */
static const char *const secret_keys[] = {
	"challenge", "challenge-password", "challengepassword", "pin", "pin-value",
	"so-pin", "password", "passphrase",
};

struct parse {
	const char *path;
	const char *text;	/* the whole file, NUL-terminated */
	size_t len, pos;
	unsigned int line;	/* of the line last handed to inih */
	int failed;
	enum p11s_err rc;	/* of the first failure */
	unsigned int fail_line;
	char msg[512];
	struct sect *defaults;
	unsigned int defaults_line;
	struct sect **sects;	/* the profiles, in file order */
	size_t n_sects;
	struct sect *cur;	/* the section being read; NULL before the first */
};

static enum p11s_err fail(struct parse *ps, unsigned int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum p11s_err fail(struct parse *ps, unsigned int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ps->failed)
		return P11S_E_USAGE;
	ps->failed = 1;
	ps->rc = P11S_E_USAGE;
	ps->fail_line = line;
	n = snprintf(ps->msg, sizeof(ps->msg), "%s:%u: ", ps->path, line);
	if (n < 0 || (size_t)n >= sizeof(ps->msg))
		return P11S_E_USAGE;
	va_start(ap, fmt);
	vsnprintf(ps->msg + n, sizeof(ps->msg) - (size_t)n, fmt, ap);
	va_end(ap);
	return P11S_E_USAGE;
}

/* Values are echoed in messages only when short and plain. */
static const char *shown(const char *v)
{
	const char *c;

	if (strlen(v) > 64)
		return "(value too long to show)";
	for (c = v; *c != '\0'; c++)
		if (*c < ' ' || *c > '~')
			return "(value not shown)";
	return v;
}

static void *field(struct sect *s, const struct key_def *k)
{
	return (char *)s + k->off;
}

static void free_str(const char *s)
{
	free((char *)s);
}

static enum p11s_err nomem(struct parse *ps)
{
	if (!ps->failed) {
		ps->failed = 1;
		ps->fail_line = ps->line;
		ps->rc = P11S_E_NOMEM;
	}
	return err_set(P11S_E_NOMEM, "out of memory reading %s", ps->path);
}

static enum p11s_err store_str(struct parse *ps, const char **dst, const char *v)
{
	char *d = strdup(v);

	if (d == NULL)
		return nomem(ps);
	free_str(*dst);
	*dst = d;
	return P11S_OK;
}

static int is_string_kind(enum kind k)
{
	return k < K_DNS || k == K_SCHEME || k == K_HOST || k == K_CGIPATH;
}

static void sect_free_fields(struct sect *s)
{
	size_t i;

	for (i = 0; i < N_KEYS; i++)
		if (is_string_kind(keys[i].kind))
			free_str(*(const char **)field(s, &keys[i]));
	for (i = 0; i < s->p.n_dns; i++)
		free_str(s->p.dns[i]);
	for (i = 0; i < s->p.n_ip; i++)
		free_str(s->p.ip[i]);
	free_str(s->p.name);
}

static void sect_free(struct sect *s)
{
	if (s == NULL)
		return;
	sect_free_fields(s);
	free(s);
}

static struct sect *sect_new(void)
{
	struct sect *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->p.keyspec.type = KS_KEY_RSA;
	s->p.keyspec.bits = 2048;
	s->p.cipher = CIPHER_AUTO;
	s->p.digest = DIGEST_AUTO;
	s->p.renew_at = 80;
	s->p.new_key_on_renew = 1;
	s->p.poll_interval_s = 60;
	s->p.max_poll_time_s = 8 * 3600;
	s->p.timeout_s = 60;
	return s;
}

/* ---- values ---- */

static enum p11s_err key_fail(struct parse *ps, const struct key_def *k, const char *what,
			      const char *v)
{
	return fail(ps, ps->line, "key '%s': '%s' %s", k->name, shown(v), what);
}

static enum p11s_err parse_bool(const char *v, int *out)
{
	static const char *const yes[] = { "yes", "true", "1" };
	static const char *const no[] = { "no", "false", "0" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = 1;
			return P11S_OK;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = 0;
			return P11S_OK;
		}
	}
	return P11S_E_USAGE;
}

static enum p11s_err parse_num(const char *v, long min, long max, long *out)
{
	char *end;
	long n;

	/* strtol would take signs and leading blanks. */
	if (*v < '0' || *v > '9' || strlen(v) > 10)
		return P11S_E_USAGE;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		return P11S_E_USAGE;
	*out = n;
	return P11S_OK;
}

static int has_space(const char *v)
{
	return strpbrk(v, " \t") != NULL;
}

static int is_fingerprint(const char *v)
{
	size_t digits = 0;

	for (; *v != '\0'; v++) {
		if ((*v >= '0' && *v <= '9') || (*v >= 'a' && *v <= 'f') || (*v >= 'A' && *v <= 'F'))
			digits++;
		else if (*v != ':' && *v != ' ')
			return 0;
	}
	return digits == 64;
}

static int has_uri_scheme(const char *v)
{
	size_t n = strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");

	return n > 0 && v[n] == ':' && !(v[0] >= '0' && v[0] <= '9');
}

static int is_http_url(const char *v)
{
	size_t n;

	if (strncasecmp(v, "http://", 7) == 0)
		n = 7;
	else if (strncasecmp(v, "https://", 8) == 0)
		n = 8;
	else
		return 0;
	return v[n] != '\0' && v[n] != '/' && !has_space(v);
}

static int is_dns_name(const char *v)
{
	const char *c;

	if (*v == '\0' || strlen(v) > 253)
		return 0;
	for (c = v; *c != '\0'; c++)
		if (*c <= ' ' || *c >= 0x7f || *c == ',')
			return 0;
	return 1;
}

static int is_ip(const char *v)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, v, buf) == 1 || inet_pton(AF_INET6, v, buf) == 1;
}

/* Hostnames as they go into a URL; an IPv6 address gets its brackets. */
static enum p11s_err parse_host(struct parse *ps, const char *v, const char **dst)
{
	unsigned char buf[sizeof(struct in6_addr)];
	char inner[64];
	size_t n = strlen(v);
	char *b;

	if (strchr(v, ':') == NULL) {
		if (n == 0 || n > 253 || strspn(v, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != n)
			return key_fail(ps, &keys[KEY_HOST], "is not a host name or address", v);
		return store_str(ps, dst, v);
	}
	if (v[0] == '[' && n > 2 && v[n - 1] == ']') {
		v++;
		n -= 2;
	}
	if (n >= sizeof(inner))
		return key_fail(ps, &keys[KEY_HOST], "is not a host name or address", v);
	memcpy(inner, v, n);
	inner[n] = '\0';
	if (inet_pton(AF_INET6, inner, buf) != 1)
		return key_fail(ps, &keys[KEY_HOST], "is not a host name or address", inner);
	b = malloc(n + 3);
	if (b == NULL) {
		return nomem(ps);
	}
	b[0] = '[';
	memcpy(b + 1, inner, n);
	b[n + 1] = ']';
	b[n + 2] = '\0';
	free_str(*dst);
	*dst = b;
	return P11S_OK;
}

static enum p11s_err check_subject(struct parse *ps, const char *v)
{
	X509_NAME *name = NULL;
	enum p11s_err rc;

	rc = dn_parse(v, &name);
	X509_NAME_free(name);
	if (rc == P11S_OK)
		return P11S_OK;
	if (rc == P11S_E_NOMEM)
		return rc;
	/* dn_parse says what is wrong; this line says where. */
	rc = fail(ps, ps->line, "key 'subject': %s", err_msg());
	err_clear();
	return rc;
}

static enum p11s_err check_text(struct parse *ps, const struct key_def *k, const char *v)
{
	switch (k->kind) {
	case K_PATH:
		if (v[0] != '/')
			return key_fail(ps, k, "is not an absolute path", v);
		break;
	case K_URL:
		if (!is_http_url(v))
			return key_fail(ps, k, "is not an http:// or https:// URL", v);
		break;
	case K_KEYURI:
		if (!has_uri_scheme(v))
			return key_fail(ps, k, "is not a key URI (pkcs11:token=...;object=...)", v);
		break;
	case K_SUBJECT:
		return check_subject(ps, v);
	case K_FPR:
		if (!is_fingerprint(v))
			return key_fail(ps, k, "is not a SHA-256 fingerprint (64 hex digits, "
					"':' between them allowed)", v);
		break;
	case K_SCHEME:
		if (strcmp(v, "http") != 0 && strcmp(v, "https") != 0)
			return key_fail(ps, k, "is neither http nor https", v);
		break;
	case K_CGIPATH:
		if (has_space(v) || strpbrk(v, "?#") != NULL)
			return key_fail(ps, k, "is not a URL path", v);
		break;
	default:
		break;
	}
	return P11S_OK;
}

static enum p11s_err add_item(struct parse *ps, const struct key_def *k, const char *item,
			      struct sect *s)
{
	const char **list = k->kind == K_DNS ? s->p.dns : s->p.ip;
	size_t *n = k->kind == K_DNS ? &s->p.n_dns : &s->p.n_ip;
	int ok = k->kind == K_DNS ? is_dns_name(item) : is_ip(item);

	if (!ok)
		return key_fail(ps, k, k->kind == K_DNS ? "is not a DNS name" :
				"is not an IPv4 or IPv6 address", item);
	if (*n >= CONF_MAX_SANS)
		return fail(ps, ps->line, "key '%s': more than %d entries", k->name, CONF_MAX_SANS);
	list[*n] = NULL;
	if (store_str(ps, &list[*n], item) != P11S_OK)
		return P11S_E_NOMEM;
	(*n)++;
	return P11S_OK;
}

/* "a, b,c": one entry per comma-separated item. */
static enum p11s_err add_list(struct parse *ps, const struct key_def *k, const char *v,
			      struct sect *s)
{
	char item[256];

	for (;;) {
		size_t n;

		v += strspn(v, " \t");
		n = strcspn(v, ",");
		while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		if (n == 0)
			return fail(ps, ps->line, "key '%s': empty entry in the list", k->name);
		if (n >= sizeof(item))
			return fail(ps, ps->line, "key '%s': entry longer than %zu characters",
				    k->name, sizeof(item) - 1);
		memcpy(item, v, n);
		item[n] = '\0';
		if (add_item(ps, k, item, s) != P11S_OK)
			return P11S_E_USAGE;
		v += strcspn(v, ",");
		if (*v == '\0')
			return P11S_OK;
		v++;
	}
}

static enum p11s_err set_scalar(struct parse *ps, const struct key_def *k, const char *v,
				struct sect *s)
{
	void *f = field(s, k);
	long n;
	int b;

	switch (k->kind) {
	case K_BOOL:
		if (parse_bool(v, &b) != P11S_OK)
			return key_fail(ps, k, "is not yes, no, true, false, 1 or 0", v);
		*(int *)f = b;
		break;
	case K_NUM:
	case K_PORT:
		if (parse_num(v, k->min, k->max, &n) != P11S_OK)
			return fail(ps, ps->line, "key '%s': '%s' is not a number from %ld to %ld",
				    k->name, shown(v), k->min, k->max);
		*(long *)f = n;
		break;
	case K_KEYTYPE:
		if (ks_keyspec_parse(v, f) != 0)
			return key_fail(ps, k, "is not " KS_KEYSPEC_NAMES, v);
		break;
	case K_CIPHER:
		if (cipher_from_name(v, f) != P11S_OK) {
			err_clear();
			return key_fail(ps, k, "is not aes, aes256 or des3", v);
		}
		break;
	case K_DIGEST:
		if (digest_from_name(v, f) != P11S_OK) {
			err_clear();
			return key_fail(ps, k, "is not sha256, sha512 or sha1", v);
		}
		break;
	default:
		return err_set(P11S_E_INTERNAL, "conf: unhandled kind %d", k->kind);
	}
	s->p.set |= k->bit;
	return P11S_OK;
}

static int is_url_part(enum key_id id)
{
	return id == KEY_SCHEME || id == KEY_HOST || id == KEY_PORT || id == KEY_CGI_PATH;
}

/* Within one section, url and host/port/cgi-path/scheme exclude each other. */
static enum p11s_err check_url_conflict(struct parse *ps, enum key_id id, const struct sect *s)
{
	size_t i;

	for (i = 0; i < N_KEYS; i++) {
		if (s->key_line[i] == 0)
			continue;
		if ((id == KEY_URL && is_url_part(i)) || (is_url_part(id) && i == KEY_URL))
			return fail(ps, ps->line, "key '%s': '%s' is set on line %u: give either url "
				    "or host, port, cgi-path and scheme", keys[id].name,
				    keys[i].name, s->key_line[i]);
	}
	return P11S_OK;
}

static enum p11s_err set_key(struct parse *ps, enum key_id id, const char *v, struct sect *s)
{
	const struct key_def *k = &keys[id];
	enum p11s_err rc;

	/* Before anything else: a secret is never echoed as a "bad value". */
	if (k->kind == K_KEYURI && strcasestr(v, KEY_URI_SECRET) != NULL)
		return fail(ps, ps->line, SECRET_MSG);
	if (k->kind != K_DNS && k->kind != K_IP && s->key_line[id] != 0)
		return fail(ps, ps->line, "key '%s': already set on line %u", k->name,
			    s->key_line[id]);
	if (*v == '\0')
		return fail(ps, ps->line, "key '%s': empty value", k->name);
	rc = check_url_conflict(ps, id, s);
	if (rc != P11S_OK)
		return rc;
	if (k->kind == K_DNS || k->kind == K_IP)
		rc = add_list(ps, k, v, s);
	else if (k->kind == K_HOST)
		rc = parse_host(ps, v, field(s, k));
	else if (is_string_kind(k->kind)) {
		rc = check_text(ps, k, v);
		if (rc == P11S_OK)
			rc = store_str(ps, field(s, k), v);
	} else
		rc = set_scalar(ps, k, v, s);
	if (rc == P11S_OK && s->key_line[id] == 0)
		s->key_line[id] = ps->line;
	return rc;
}

static int is_secret(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(secret_keys) / sizeof(secret_keys[0]); i++)
		if (strcasecmp(name, secret_keys[i]) == 0)
			return 1;
	return 0;
}

/* inih's handler. The section comes from the reader (see the top). */
static int on_pair(void *user, const char *section, const char *name, const char *value)
{
	struct parse *ps = user;
	size_t i;

	(void)section;
	if (ps->failed)
		return 0;
	if (is_secret(name)) {
		fail(ps, ps->line, SECRET_MSG);
		return 0;
	}
	for (i = 0; i < N_KEYS; i++)
		if (strcmp(name, keys[i].name) == 0)
			break;
	if (i == N_KEYS) {
		fail(ps, ps->line, "key '%s': unknown key", shown(name));
		return 0;
	}
	if (ps->cur == NULL) {
		fail(ps, ps->line, "key '%s': outside any section: put it under [defaults] or "
		     "[profile NAME]", keys[i].name);
		return 0;
	}
	return set_key(ps, i, value, ps->cur) == P11S_OK;
}

/* ---- sections and lines ---- */

static enum p11s_err new_profile(struct parse *ps, const char *name, size_t n)
{
	struct sect **grown, *s;
	size_t i;

	if (n == 0)
		return fail(ps, ps->line, "profile name is empty: use [profile NAME]");
	if (n > CONF_NAME_MAX || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._-") < n)
		return fail(ps, ps->line, "profile '%.*s': names are 1 to %d characters of "
			    "A-Z a-z 0-9 . _ -", (int)(n > 64 ? 64 : n), name, CONF_NAME_MAX);
	for (i = 0; i < ps->n_sects; i++)
		if (strlen(ps->sects[i]->p.name) == n && strncmp(ps->sects[i]->p.name, name, n) == 0)
			return fail(ps, ps->line, "profile '%.*s': already defined on line %u",
				    (int)n, name, ps->sects[i]->p.line);
	if (ps->n_sects >= CONF_MAX_PROFILES)
		return fail(ps, ps->line, "more than %d profiles", CONF_MAX_PROFILES);
	grown = realloc(ps->sects, (ps->n_sects + 1) * sizeof(*grown));
	if (grown == NULL)
		goto out_nomem;
	ps->sects = grown;
	s = sect_new();
	if (s == NULL || (s->p.name = strndup(name, n)) == NULL) {
		sect_free(s);
		goto out_nomem;
	}
	s->p.line = ps->line;
	ps->sects[ps->n_sects++] = s;
	ps->cur = s;
	return P11S_OK;
out_nomem:
	return nomem(ps);
}

static enum p11s_err new_defaults(struct parse *ps)
{
	if (ps->defaults != NULL)
		return fail(ps, ps->line, "section 'defaults': already defined on line %u",
			    ps->defaults_line);
	ps->defaults = sect_new();
	if (ps->defaults == NULL) {
		return nomem(ps);
	}
	ps->defaults_line = ps->line;
	ps->cur = ps->defaults;
	return P11S_OK;
}

/* "[defaults]" or "[profile NAME]", blanks allowed inside the brackets. */
static enum p11s_err section_line(struct parse *ps, const char *l, size_t len)
{
	const char *close = memchr(l, ']', len);
	const char *rest, *in = l + 1;
	size_t n;

	if (close == NULL)
		return fail(ps, ps->line, "section header without ']'");
	rest = close + 1;
	rest += strspn(rest, " \t");
	if (rest < l + len && *rest != ';' && *rest != '#')
		return fail(ps, ps->line, "text after the section header");
	in += strspn(in, " \t");
	n = (size_t)(close - in);
	while (n > 0 && (in[n - 1] == ' ' || in[n - 1] == '\t'))
		n--;
	if (n == 8 && strncmp(in, "defaults", 8) == 0)
		return new_defaults(ps);
	if (n >= 7 && strncmp(in, "profile", 7) == 0 && (n == 7 || in[7] == ' ' || in[7] == '\t')) {
		size_t skip = 7 + strspn(in + 7, " \t");

		return new_profile(ps, in + skip, n > skip ? n - skip : 0);
	}
	return fail(ps, ps->line, "section '%.*s': unknown section: use [defaults] or "
		    "[profile NAME]", (int)(n > 64 ? 64 : n), in);
}

/* inih's reader: one line of the file per call, counted, checked. */
static char *next_line(char *str, int num, void *stream)
{
	struct parse *ps = stream;
	const char *l, *nl;
	size_t len, i;

	if (ps->failed || ps->pos >= ps->len || num < 3)
		return NULL;
	l = ps->text + ps->pos;
	nl = memchr(l, '\n', ps->len - ps->pos);
	len = nl != NULL ? (size_t)(nl - l) : ps->len - ps->pos;
	ps->pos += len + (nl != NULL);
	ps->line++;
	if (len > 0 && l[len - 1] == '\r')
		len--;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)l[i];

		if ((c < ' ' && c != '\t') || c == 0x7f) {
			fail(ps, ps->line, "control character (code %u) in the line", c);
			return NULL;
		}
	}
	/* inih takes an indented line for the rest of the previous value. */
	while (len > 0 && (*l == ' ' || *l == '\t')) {
		l++;
		len--;
	}
	/* inih needs room for the line, "\n" and NUL, and its docs say one more. */
	if (len + 3 > (size_t)num) {
		fail(ps, ps->line, "line longer than %d characters", num - 3);
		return NULL;
	}
	if (len > 0 && *l == '[' && section_line(ps, l, len) != P11S_OK)
		return NULL;
	memcpy(str, l, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	return str;
}

/* ---- profiles: inheritance and checks ---- */

static enum p11s_err copy_list(struct parse *ps, const char *const *from, size_t n,
			       const char **to, size_t *to_n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		to[i] = NULL;
		if (store_str(ps, &to[i], from[i]) != P11S_OK)
			return P11S_E_NOMEM;
		*to_n = i + 1;
	}
	return P11S_OK;
}

/* Whatever the profile leaves unset, [defaults] gives; the URL as a whole. */
static enum p11s_err inherit(struct parse *ps, struct sect *s, struct sect *d)
{
	size_t i;
	int own_url = 0;

	for (i = 0; i < N_KEYS; i++)
		if (s->key_line[i] != 0 && (i == KEY_URL || is_url_part(i)))
			own_url = 1;
	for (i = 0; i < N_KEYS; i++) {
		const struct key_def *k = &keys[i];
		enum p11s_err rc = P11S_OK;

		if (s->key_line[i] != 0 || d->key_line[i] == 0)
			continue;
		/* The profile's url beats defaults' host parts and the other way round. */
		if (own_url && (i == KEY_URL || (is_url_part(i) && s->key_line[KEY_URL] != 0)))
			continue;
		if (k->kind == K_DNS)
			rc = copy_list(ps, d->p.dns, d->p.n_dns, s->p.dns, &s->p.n_dns);
		else if (k->kind == K_IP)
			rc = copy_list(ps, d->p.ip, d->p.n_ip, s->p.ip, &s->p.n_ip);
		else if (is_string_kind(k->kind))
			rc = store_str(ps, field(s, k), *(const char **)field(d, k));
		else if (k->kind == K_PORT)
			s->port = d->port;
		else if (k->kind == K_BOOL)
			*(int *)field(s, k) = *(int *)field(d, k);
		else if (k->kind == K_NUM)
			*(long *)field(s, k) = *(long *)field(d, k);
		else if (k->kind == K_KEYTYPE)
			s->p.keyspec = d->p.keyspec;
		else if (k->kind == K_CIPHER)
			s->p.cipher = d->p.cipher;
		else if (k->kind == K_DIGEST)
			s->p.digest = d->p.digest;
		if (rc != P11S_OK)
			return rc;
		s->p.set |= k->bit;
		s->key_line[i] = d->key_line[i];
	}
	return P11S_OK;
}

static enum p11s_err build_url(struct parse *ps, struct sect *s)
{
	const char *scheme = s->scheme != NULL ? s->scheme : "http";
	const char *path = s->cgi_path != NULL ? s->cgi_path : DEFAULT_CGI;
	char port[16] = "";
	char *url;
	int n;

	if (s->p.url != NULL)
		return P11S_OK;
	if (s->host == NULL) {
		size_t i;

		for (i = 0; i < N_KEYS; i++)
			if (is_url_part(i) && s->key_line[i] != 0)
				return fail(ps, s->p.line, "key 'host': missing from profile '%s' "
					    "and [defaults], but '%s' is set on line %u",
					    s->p.name, keys[i].name, s->key_line[i]);
		return P11S_OK;
	}
	if (s->port != 0)
		snprintf(port, sizeof(port), ":%ld", s->port);
	n = snprintf(NULL, 0, "%s://%s%s%s%s", scheme, s->host, port, *path == '/' ? "" : "/",
		     path);
	url = n > 0 ? malloc((size_t)n + 1) : NULL;
	if (url == NULL) {
		return nomem(ps);
	}
	snprintf(url, (size_t)n + 1, "%s://%s%s%s%s", scheme, s->host, port,
		 *path == '/' ? "" : "/", path);
	s->p.url = url;
	return P11S_OK;
}

static enum p11s_err finish_profile(struct parse *ps, struct sect *s)
{
	static const enum key_id required[] = { KEY_URL, KEY_KEY, KEY_SUBJECT, KEY_CA_FINGERPRINT };
	enum p11s_err rc;
	size_t i;

	if (ps->defaults != NULL) {
		rc = inherit(ps, s, ps->defaults);
		if (rc != P11S_OK)
			return rc;
	}
	rc = build_url(ps, s);
	if (rc != P11S_OK)
		return rc;
	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		const struct key_def *k = &keys[required[i]];

		if (*(const char **)field(s, k) == NULL)
			return fail(ps, s->p.line, "key '%s': missing from profile '%s' and [defaults]",
				    k->name, s->p.name);
	}
	return P11S_OK;
}

/* ---- the file ---- */

static enum p11s_err read_all(const char *path, char **text, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	size_t cap, got = 0;
	enum p11s_err rc;
	int fd;

	*text = NULL;
	*len = 0;
	/* O_NONBLOCK: a FIFO must not hang us before fstat refuses it. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return err_set(P11S_E_IO, "cannot open %s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		rc = err_set(P11S_E_IO, "cannot stat %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = err_set(P11S_E_USAGE, "%s is not a regular file", path);
		goto out;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		rc = err_set(P11S_E_USAGE, "%s is writable by other users: chmod go-w %s", path, path);
		goto out;
	}
	if (st.st_size > CONF_MAX_SIZE) {
		rc = err_set(P11S_E_USAGE, "%s is larger than %d bytes", path, CONF_MAX_SIZE);
		goto out;
	}
	cap = (size_t)st.st_size + 1;	/* one more, to see it grow */
	buf = malloc(cap + 1);
	if (buf == NULL) {
		rc = err_set(P11S_E_NOMEM, "out of memory reading %s", path);
		goto out;
	}
	while (got < cap) {
		ssize_t r = read(fd, buf + got, cap - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = err_set(P11S_E_IO, "cannot read %s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	if (got == cap) {
		rc = err_set(P11S_E_IO, "%s changed while it was read: try again", path);
		goto out;
	}
	buf[got] = '\0';
	*text = buf;
	*len = got;
	buf = NULL;
	rc = P11S_OK;
out:
	free(buf);
	close(fd);
	return rc;
}

static enum p11s_err parse_text(struct parse *ps)
{
	int r;

	r = ini_parse_stream(next_line, ps, on_pair, ps);
	if (r > 0 && (!ps->failed || (unsigned int)r < ps->fail_line)) {
		ps->failed = 0;
		return fail(ps, (unsigned int)r, "expected 'key = value', '[section]' or a comment");
	}
	if (r < 0 && !ps->failed)
		return nomem(ps);
	return ps->failed ? ps->rc : P11S_OK;
}

static enum p11s_err take_profiles(struct parse *ps, struct conf *out)
{
	size_t i;

	if (ps->n_sects == 0)
		return P11S_OK;
	out->profiles = calloc(ps->n_sects, sizeof(*out->profiles));
	if (out->profiles == NULL)
		return err_set(P11S_E_NOMEM, "out of memory reading %s", ps->path);
	for (i = 0; i < ps->n_sects; i++) {
		struct sect *s = ps->sects[i];

		out->profiles[i] = s->p;
		out->profiles[i].file = out->path;
		memset(&s->p, 0, sizeof(s->p));
	}
	out->n_profiles = ps->n_sects;
	return P11S_OK;
}

static void parse_free(struct parse *ps)
{
	size_t i;

	for (i = 0; i < ps->n_sects; i++)
		sect_free(ps->sects[i]);
	free(ps->sects);
	sect_free(ps->defaults);
}

enum p11s_err conf_load(const char *path, struct conf *out)
{
	struct parse ps;
	char *text = NULL;
	enum p11s_err rc;
	size_t i, skip = 0;

	memset(out, 0, sizeof(*out));
	memset(&ps, 0, sizeof(ps));
	ps.path = path;
	rc = read_all(path, &text, &ps.len);
	if (rc != P11S_OK)
		return rc;
	if (ps.len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		skip = 3;	/* a UTF-8 byte order mark */
	ps.text = text + skip;
	ps.len -= skip;
	rc = parse_text(&ps);
	for (i = 0; rc == P11S_OK && i < ps.n_sects; i++)
		rc = finish_profile(&ps, ps.sects[i]);
	if (rc == P11S_E_USAGE) {
		err_clear();
		err_set(P11S_E_USAGE, "%s", ps.msg);
	}
	if (rc == P11S_OK) {
		out->path = strdup(path);
		rc = out->path != NULL ? take_profiles(&ps, out) :
		    err_set(P11S_E_NOMEM, "out of memory reading %s", path);
	}
	parse_free(&ps);
	free(text);
	if (rc != P11S_OK)
		conf_free(out);
	return rc;
}

void conf_free(struct conf *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n_profiles; i++) {
		struct sect tmp;

		/* A profile is a section without the parse-only fields. */
		memset(&tmp, 0, sizeof(tmp));
		tmp.p = c->profiles[i];
		sect_free_fields(&tmp);
	}
	free(c->profiles);
	free(c->path);
	memset(c, 0, sizeof(*c));
}

const struct conf_profile *conf_find(const struct conf *c, const char *name)
{
	size_t i;

	if (c == NULL || name == NULL)
		return NULL;
	for (i = 0; i < c->n_profiles; i++)
		if (strcmp(c->profiles[i].name, name) == 0)
			return &c->profiles[i];
	return NULL;
}

enum p11s_err conf_load_with(const char *path, const char *name, struct conf *out)
{
	enum p11s_err rc = conf_load(path, out);

	if (rc == P11S_OK && name != NULL && conf_find(out, name) == NULL) {
		conf_free(out);
		rc = err_set(P11S_E_USAGE, "%s has no [profile %s]", path, name);
	}
	return rc;
}
