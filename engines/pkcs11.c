/*
 * The PKCS#11 key backend on libp11 0.4.12's own API (no ENGINE, no provider).
 *
 * Facts this file is built around (see TOKEN-NOTES.md):
 * - one PKCS11_CTX per process; teardown is EVP_PKEY_free, then
 *   PKCS11_release_all_slots, PKCS11_CTX_unload, PKCS11_CTX_free;
 * - a read-write session must be open before login or key generation fails;
 * - libp11's key and cert arrays move when it re-enumerates: no PKCS11_KEY or
 *   PKCS11_CERT pointer is kept across a libp11 call;
 * - libp11 reports module errors on the OpenSSL queue with the CKR_* value as
 *   the reason, under a library number it picks at run time.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libp11.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "keystore.h"
#include "secret.h"
#include "uri.h"

/* CKR_* values from PKCS#11 v2.40; libp11.h does not define them. */
#define KS_CKR_PIN_INCORRECT	0xa0UL
#define KS_CKR_PIN_INVALID	0xa1UL
#define KS_CKR_PIN_LEN_RANGE	0xa2UL
#define KS_CKR_PIN_EXPIRED	0xa3UL
#define KS_CKR_PIN_LOCKED	0xa4UL

/* libp11's name for the errors that carry a CKR_* value. */
#define CKR_LIB_NAME		"PKCS#11 module"

#define PIN_MAX			256
#define NEW_ID_LEN		16
#define NAMES_MAX		256
#define ANY_TOKEN		"any initialized token"

struct p11ks {
	struct ks base;			/* first: the generic code sees only this */
	struct p11_uri uri;
	char *module;
	PKCS11_CTX *ctx;
	int loaded;
	PKCS11_SLOT *slots;
	unsigned int nslots;
	PKCS11_TOKEN *token;
	char label[80];			/* the token's, printable, for messages */
	/* The key find_key or generate_key chose: certs go beside it. */
	int have_key;
	char *key_label;
	unsigned char *key_id;
	size_t key_id_len;
	EVP_PKEY *key_pub;		/* a software copy of its public key */
	/* libp11 0.4.12 keeps removed certs in its list: the X509s of those
	 * we removed, compared by address and never dereferenced. */
	const X509 **gone;
	size_t ngone;
};

/* libp11 breaks with two contexts on one module: allow one open handle. */
static int ctx_in_use;

static void p11_close(struct ks *ks);

/* ------------------------------------------------------------ messages */

/* Appends s to buf (size n) with control characters replaced: labels come
 * from the token. */
static void append_clean(char *buf, size_t n, const char *s)
{
	size_t len = strlen(buf);

	for (; s != NULL && *s != '\0' && len + 1 < n; s++)
		buf[len++] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
	buf[len] = '\0';
}

static const char *token_label(const struct p11ks *k)
{
	return k->label[0] != '\0' ? k->label : "?";
}

/*
 * A libp11 call failed: record what, where and the module's CKR_* value, and
 * empty the queue so that no later message picks up a stale reason.
 */
static enum p11s_err token_fail(const struct p11ks *k, const char *what)
{
	unsigned long e = ERR_peek_error();
	const char *lib = e != 0 ? ERR_lib_error_string(e) : NULL;
	const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;

	if (lib != NULL && strcmp(lib, CKR_LIB_NAME) == 0)
		err_set(P11S_E_TOKEN, "%s failed on token '%s' (module %s): CKR 0x%lX (%s)",
			what, token_label(k), k->module, (unsigned long)ERR_GET_REASON(e),
			reason != NULL ? reason : "unknown");
	else
		err_set(P11S_E_TOKEN, "%s failed on token '%s' (module %s): %s",
			what, token_label(k), k->module,
			reason != NULL ? reason : "no detail from libp11");
	ERR_clear_error();
	return P11S_E_TOKEN;
}

/* ------------------------------------------------------------ module, token */

static enum p11s_err load_module(struct p11ks *k, const char *module)
{
	const char *path = module;

	if (path == NULL)
		path = k->uri.module_path;
	if (path == NULL)
		path = P11SCEP_DEFAULT_MODULE;
	k->module = strdup(path);
	k->ctx = PKCS11_CTX_new();
	if (k->module == NULL || k->ctx == NULL)
		return err_set(P11S_E_NOMEM, "out of memory loading a PKCS#11 module");
	ERR_clear_error();
	if (PKCS11_CTX_load(k->ctx, path) != 0) {
		err_set_ssl(P11S_E_TOKEN,
			    "cannot load PKCS#11 module %s: check module-path= in the key URI or --module",
			    path);
		ERR_clear_error();
		return P11S_E_TOKEN;
	}
	k->loaded = 1;
	/* SoftHSM leaves harmless DSO errors behind. */
	ERR_clear_error();
	if (PKCS11_enumerate_slots(k->ctx, &k->slots, &k->nslots) != 0) {
		k->slots = NULL;
		k->nslots = 0;
		return token_fail(k, "listing the slots");
	}
	return P11S_OK;
}

static int str_match(const char *want, const char *have)
{
	return want == NULL || (have != NULL && strcmp(want, have) == 0);
}

static int token_matches(const struct p11_uri *u, const PKCS11_TOKEN *t)
{
	return str_match(u->token, t->label) && str_match(u->serial, t->serialnr) &&
	       str_match(u->manufacturer, t->manufacturer) && str_match(u->model, t->model);
}

/* "token='x', serial='y'" for messages. */
static void describe_want(const struct p11_uri *u, char *buf, size_t n)
{
	const char *names[] = { "token", "serial", "manufacturer", "model" };
	const char *vals[] = { u->token, u->serial, u->manufacturer, u->model };
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < 4; i++) {
		if (vals[i] == NULL)
			continue;
		if (buf[0] != '\0')
			append_clean(buf, n, ", ");
		append_clean(buf, n, names[i]);
		append_clean(buf, n, "='");
		append_clean(buf, n, vals[i]);
		append_clean(buf, n, "'");
	}
	if (buf[0] == '\0')
		append_clean(buf, n, ANY_TOKEN);
}

static void add_name(char *buf, size_t n, const char *name)
{
	if (buf[0] != '\0')
		append_clean(buf, n, ", ");
	append_clean(buf, n, "'");
	append_clean(buf, n, name != NULL ? name : "");
	append_clean(buf, n, "'");
}

/* Picks the one initialized token the URI describes. Never by slot id:
 * slot ids change when a token is initialised. */
static enum p11s_err pick_token(struct p11ks *k)
{
	char want[NAMES_MAX], seen[NAMES_MAX] = "", serials[NAMES_MAX] = "";
	PKCS11_TOKEN *t, *found = NULL;
	unsigned int i, nmatch = 0;

	for (i = 0; i < k->nslots; i++) {
		t = k->slots[i].token;
		if (t == NULL || !t->initialized)
			continue;
		add_name(seen, sizeof(seen), t->label);
		if (!token_matches(&k->uri, t))
			continue;
		add_name(serials, sizeof(serials), t->serialnr);
		if (nmatch++ == 0)
			found = t;
	}
	describe_want(&k->uri, want, sizeof(want));
	if (nmatch == 0)
		return err_set(P11S_E_TOKEN, "no token with %s in module %s (tokens seen: %s)",
			       want, k->module, seen[0] != '\0' ? seen : "none");
	if (nmatch > 1 && strcmp(want, ANY_TOKEN) == 0)
		return err_set(P11S_E_TOKEN,
			       "the key URI names no token and module %s holds %u: add token=LABEL to it (tokens seen: %s)",
			       k->module, nmatch, seen);
	if (nmatch > 1)
		return err_set(P11S_E_TOKEN,
			       "%u tokens match %s in module %s: add serial= to the key URI (serials: %s)",
			       nmatch, want, k->module, serials);
	k->token = found;
	append_clean(k->label, sizeof(k->label), found->label);
	return P11S_OK;
}

/* ------------------------------------------------------------ PIN, login */

/* pin-source is "file:PATH", "file://PATH" or a plain PATH. */
static const char *pin_source_path(const char *src)
{
	if (strncmp(src, "file://", 7) == 0)
		return src + 7;
	if (strncmp(src, "file:", 5) == 0)
		return src + 5;
	return src;
}

static enum p11s_err get_pin(const struct p11ks *k, const struct ks_params *p,
			     char *buf, size_t n)
{
	enum p11s_err rc;

	if (k->uri.pin_value != NULL) {
		if (strlen(k->uri.pin_value) >= n)
			return err_set(P11S_E_PIN, "pin-value in the key URI is too long");
		memcpy(buf, k->uri.pin_value, strlen(k->uri.pin_value) + 1);
		return P11S_OK;
	}
	if (k->uri.pin_source != NULL)
		return secret_from_file(pin_source_path(k->uri.pin_source), buf, n);
	if (p->pin_cb == NULL)
		return err_set(P11S_E_PIN,
			       "no PIN for token '%s': add pin-source=file:PATH to the key URI",
			       token_label(k));
	rc = p->pin_cb(p->pin_arg, token_label(k), buf, n);
	if (rc == P11S_E_NOTFOUND)
		rc = P11S_E_PIN;
	if (rc != P11S_OK)
		return err_set(rc, "no PIN for token '%s'", token_label(k));
	if (memchr(buf, '\0', n) == NULL)
		return err_set(P11S_E_INTERNAL, "the PIN callback wrote no NUL");
	return P11S_OK;
}

static int is_pin_ckr(unsigned long ckr)
{
	return ckr == KS_CKR_PIN_INCORRECT || ckr == KS_CKR_PIN_INVALID ||
	       ckr == KS_CKR_PIN_LEN_RANGE || ckr == KS_CKR_PIN_EXPIRED ||
	       ckr == KS_CKR_PIN_LOCKED;
}

/* Login failed: tell a PIN the token refused from other trouble. Reasons are
 * compared, not library numbers: libp11 picks those at run time. */
static enum p11s_err login_fail(const struct p11ks *k)
{
	unsigned long e = ERR_peek_error();
	unsigned long ckr = e != 0 ? (unsigned long)ERR_GET_REASON(e) : 0;

	if (!is_pin_ckr(ckr))
		return token_fail(k, "login");
	ERR_clear_error();
	if (ckr == KS_CKR_PIN_LOCKED)
		return err_set(P11S_E_PIN, "the PIN of token '%s' is locked (CKR 0x%lX): unlock it with the SO PIN",
			       token_label(k), ckr);
	if (ckr == KS_CKR_PIN_EXPIRED)
		return err_set(P11S_E_PIN, "the PIN of token '%s' has expired (CKR 0x%lX): set a new one",
			       token_label(k), ckr);
	return err_set(P11S_E_PIN, "token '%s' rejected the PIN (CKR 0x%lX): check pin-source or the PIN given",
		       token_label(k), ckr);
}

/* Key generation needs a read-write session, and it must exist before login. */
static enum p11s_err login(struct p11ks *k, const struct ks_params *p)
{
	PKCS11_SLOT *slot = k->token->slot;
	char pin[PIN_MAX];
	enum p11s_err rc;

	ERR_clear_error();
	if (PKCS11_open_session(slot, 1) != 0)
		return token_fail(k, "opening a read-write session");
	if (!k->token->loginRequired)
		return P11S_OK;
	pin[0] = '\0';
	rc = get_pin(k, p, pin, sizeof(pin));
	if (rc != P11S_OK)
		goto out;
	ERR_clear_error();
	if (PKCS11_login(slot, 0, pin) != 0)
		rc = login_fail(k);
out:
	secret_wipe(pin, sizeof(pin));
	return rc;
}

static enum p11s_err p11_open(const struct ks_params *p, struct ks **out)
{
	struct p11ks *k;
	enum p11s_err rc;

	*out = NULL;
	if (ctx_in_use)
		return err_set(P11S_E_INTERNAL, "a PKCS#11 key store is already open in this process");
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return err_set(P11S_E_NOMEM, "out of memory opening the key store");
	k->base.be = &ks_pkcs11_backend;
	ctx_in_use = 1;
	rc = p11_uri_parse(p->uri, &k->uri);
	if (rc != P11S_OK)
		goto fail;
	if (k->uri.type != NULL && strcmp(k->uri.type, "private") != 0) {
		rc = err_set(P11S_E_USAGE, "the key URI has type=%s: leave type= out or write type=private",
			     k->uri.type);
		goto fail;
	}
	rc = load_module(k, p->module);
	if (rc != P11S_OK)
		goto fail;
	rc = pick_token(k);
	if (rc != P11S_OK)
		goto fail;
	rc = login(k, p);
	if (rc != P11S_OK)
		goto fail;
	*out = &k->base;
	return P11S_OK;
fail:
	p11_close(&k->base);
	return rc;
}

static void p11_close(struct ks *ks)
{
	struct p11ks *k = (struct p11ks *)ks;

	if (k == NULL)
		return;
	EVP_PKEY_free(k->key_pub);
	if (k->slots != NULL)
		PKCS11_release_all_slots(k->ctx, k->slots, k->nslots);
	if (k->loaded)
		PKCS11_CTX_unload(k->ctx);
	if (k->ctx != NULL)
		PKCS11_CTX_free(k->ctx);
	p11_uri_free(&k->uri);
	free(k->module);
	free(k->key_label);
	free(k->key_id);
	free(k->gone);
	free(k);
	ctx_in_use = 0;
}

/* ------------------------------------------------------------ keys */

static int id_equal(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static int key_matches(const struct p11_uri *u, const PKCS11_KEY *key)
{
	if (u->object != NULL && (key->label == NULL || strcmp(u->object, key->label) != 0))
		return 0;
	if (u->id != NULL && !id_equal(u->id, u->id_len, key->id, key->id_len))
		return 0;
	return 1;
}

static enum p11s_err list_keys(struct p11ks *k, PKCS11_KEY **keys, unsigned int *n)
{
	*keys = NULL;
	*n = 0;
	ERR_clear_error();
	if (PKCS11_enumerate_keys(k->token, keys, n) != 0)
		return token_fail(k, "listing the private keys");
	return P11S_OK;
}

/* The one private key the URI names; P11S_E_NOTFOUND without a message. */
static enum p11s_err match_key(struct p11ks *k, PKCS11_KEY **out)
{
	PKCS11_KEY *keys;
	unsigned int i, n, nmatch = 0;
	enum p11s_err rc;

	*out = NULL;
	if (k->uri.object == NULL && k->uri.id == NULL)
		return err_set(P11S_E_USAGE,
			       "the key URI names no key: add object=LABEL and/or id=%%XX..");
	rc = list_keys(k, &keys, &n);
	if (rc != P11S_OK)
		return rc;
	for (i = 0; i < n; i++) {
		if (!key_matches(&k->uri, &keys[i]))
			continue;
		if (nmatch++ == 0)
			*out = &keys[i];
	}
	if (nmatch == 0)
		return P11S_E_NOTFOUND;
	if (nmatch > 1) {
		*out = NULL;
		if (k->uri.id == NULL)
			return err_set(P11S_E_USAGE,
				       "%u keys in token '%s' match the key URI: add id= to it",
				       nmatch, token_label(k));
		return err_set(P11S_E_USAGE,
			       "%u keys in token '%s' share the id in the key URI: remove the extra ones",
			       nmatch, token_label(k));
	}
	return P11S_OK;
}

/* A pure software copy, so that comparisons outlive libp11's objects. */
static enum p11s_err copy_public(EVP_PKEY *pk, EVP_PKEY **out)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	int len;

	*out = NULL;
	len = i2d_PUBKEY(pk, &der);
	if (len <= 0)
		return err_set_ssl(P11S_E_TOKEN, "cannot read the public key of the token key");
	p = der;
	*out = d2i_PUBKEY(NULL, &p, len);
	OPENSSL_free(der);
	if (*out == NULL)
		return err_set_ssl(P11S_E_TOKEN, "cannot decode the public key of the token key");
	return P11S_OK;
}

/* Remembers key's label, id and public key; hands out its EVP_PKEY if out. */
static enum p11s_err take_key(struct p11ks *k, PKCS11_KEY *key, EVP_PKEY **out)
{
	EVP_PKEY *pk, *pub = NULL;
	char *label = NULL;
	unsigned char *id = NULL;
	enum p11s_err rc;

	ERR_clear_error();
	pk = PKCS11_get_private_key(key);
	if (pk == NULL)
		return token_fail(k, "loading the private key");
	rc = copy_public(pk, &pub);
	if (rc != P11S_OK)
		goto out;
	label = strdup(key->label != NULL ? key->label : "");
	id = malloc(key->id_len > 0 ? key->id_len : 1);
	if (label == NULL || id == NULL) {
		rc = err_set(P11S_E_NOMEM, "out of memory reading the token key");
		goto out;
	}
	if (key->id_len > 0)
		memcpy(id, key->id, key->id_len);
	free(k->key_label);
	free(k->key_id);
	EVP_PKEY_free(k->key_pub);
	k->key_label = label;
	k->key_id = id;
	k->key_id_len = key->id_len;
	k->key_pub = pub;
	k->have_key = 1;
	label = NULL;
	id = NULL;
	pub = NULL;
	if (out != NULL) {
		*out = pk;
		pk = NULL;
	}
out:
	free(label);
	free(id);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(pk);
	return rc;
}

static enum p11s_err p11_find_key(struct ks *ks, EVP_PKEY **out)
{
	struct p11ks *k = (struct p11ks *)ks;
	PKCS11_KEY *key;
	enum p11s_err rc;

	*out = NULL;
	rc = match_key(k, &key);
	if (rc != P11S_OK)
		return rc;
	return take_key(k, key, out);
}

/* The key certs go beside: the one found or generated, else the URI's.
 * P11S_E_NOTFOUND (no message) when the token has no such key. */
static enum p11s_err need_key(struct p11ks *k)
{
	PKCS11_KEY *key;
	enum p11s_err rc;

	if (k->have_key)
		return P11S_OK;
	rc = match_key(k, &key);
	if (rc != P11S_OK)
		return rc;
	return take_key(k, key, NULL);
}

static enum p11s_err check_keyspec(const struct ks_keyspec *spec)
{
	if (spec->type != KS_KEY_RSA)
		return err_set(P11S_E_USAGE, "only RSA keys can be generated in the token");
	if (spec->bits != 2048 && spec->bits != 3072 && spec->bits != 4096)
		return err_set(P11S_E_USAGE, "RSA-%u is not offered: use 2048, 3072 or 4096 bits",
			       spec->bits);
	return P11S_OK;
}

/* Refuses an id some private key in the token already has: two keys with one
 * id make every later lookup ambiguous. */
static enum p11s_err check_id_free(struct p11ks *k, const unsigned char *id, size_t id_len)
{
	PKCS11_KEY *keys;
	unsigned int i, n;
	enum p11s_err rc;

	rc = list_keys(k, &keys, &n);
	if (rc != P11S_OK)
		return rc;
	for (i = 0; i < n; i++) {
		if (id_equal(id, id_len, keys[i].id, keys[i].id_len))
			return err_set(P11S_E_USAGE,
				       "token '%s' already holds a key with the id in the key URI: pick another id=",
				       token_label(k));
	}
	return P11S_OK;
}

static enum p11s_err generate_rsa(struct p11ks *k, unsigned int bits,
				  unsigned char *id, size_t id_len)
{
	int r;

	ERR_clear_error();
	/* The only key generation libp11 0.4.12 offers; its successor
	 * PKCS11_keygen arrives in 0.4.14. RSA, e = 65537, sensitive,
	 * never extractable. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	r = PKCS11_generate_key(k->token, EVP_PKEY_RSA, bits, k->uri.object, id, id_len);
#pragma GCC diagnostic pop
	if (r != 0)
		return token_fail(k, "RSA key generation");
	return P11S_OK;
}

/* After generation libp11's key array has moved: look the key up afresh. */
static enum p11s_err find_by_id(struct p11ks *k, const unsigned char *id, size_t id_len,
				EVP_PKEY **out)
{
	PKCS11_KEY *keys;
	unsigned int i, n;
	enum p11s_err rc;

	rc = list_keys(k, &keys, &n);
	if (rc != P11S_OK)
		return rc;
	for (i = 0; i < n; i++) {
		if (id_equal(id, id_len, keys[i].id, keys[i].id_len))
			return take_key(k, &keys[i], out);
	}
	return err_set(P11S_E_TOKEN, "token '%s' does not list the key it just generated",
		       token_label(k));
}

/* libp11 reallocates its key array here: an EVP_PKEY from an earlier
 * find_key may point into the old one, so callers free theirs first. */
static enum p11s_err p11_generate_key(struct ks *ks, const struct ks_keyspec *spec,
				      EVP_PKEY **out)
{
	struct p11ks *k = (struct p11ks *)ks;
	unsigned char fresh[NEW_ID_LEN];
	unsigned char *id = k->uri.id;
	size_t id_len = k->uri.id_len;
	enum p11s_err rc;

	*out = NULL;
	rc = check_keyspec(spec);
	if (rc != P11S_OK)
		return rc;
	if (k->uri.object == NULL)
		return err_set(P11S_E_USAGE, "generating a key needs object=LABEL in the key URI");
	if (id == NULL) {
		if (RAND_bytes(fresh, sizeof(fresh)) != 1)
			return err_set_ssl(P11S_E_INTERNAL, "no random bytes for a key id");
		id = fresh;
		id_len = sizeof(fresh);
	}
	rc = check_id_free(k, id, id_len);
	if (rc != P11S_OK)
		return rc;
	rc = generate_rsa(k, spec->bits, id, id_len);
	if (rc != P11S_OK)
		return rc;
	return find_by_id(k, id, id_len, out);
}

/* ------------------------------------------------------------ certificates */

static int cert_gone(const struct p11ks *k, const PKCS11_CERT *c)
{
	size_t i;

	for (i = 0; i < k->ngone; i++) {
		if (k->gone[i] == c->x509)
			return 1;
	}
	return 0;
}

static enum p11s_err mark_gone(struct p11ks *k, const X509 *x)
{
	const X509 **g;

	g = realloc(k->gone, (k->ngone + 1) * sizeof(*g));
	if (g == NULL)
		return err_set(P11S_E_NOMEM, "out of memory");
	g[k->ngone++] = x;
	k->gone = g;
	return P11S_OK;
}

static enum p11s_err list_certs(struct p11ks *k, PKCS11_CERT **certs, unsigned int *n)
{
	*certs = NULL;
	*n = 0;
	ERR_clear_error();
	if (PKCS11_enumerate_certs(k->token, certs, n) != 0)
		return token_fail(k, "listing the certificates");
	return P11S_OK;
}

/* A cert libp11 lists, not removed by us, with the key's id. */
static int beside_key(const struct p11ks *k, const PKCS11_CERT *c)
{
	return c->x509 != NULL && !cert_gone(k, c) &&
	       id_equal(k->key_id, k->key_id_len, c->id, c->id_len);
}

static int carries_key(const struct p11ks *k, X509 *x)
{
	EVP_PKEY *pub = X509_get0_pubkey(x);

	return pub != NULL && EVP_PKEY_eq(pub, k->key_pub) == 1;
}

/* Of several certs for the key, the newest (latest notBefore) wins. */
static int newer(X509 *a, X509 *b)
{
	return ASN1_TIME_compare(X509_get0_notBefore(a), X509_get0_notBefore(b)) > 0;
}

static enum p11s_err p11_find_cert(struct ks *ks, X509 **out)
{
	struct p11ks *k = (struct p11ks *)ks;
	PKCS11_CERT *certs;
	X509 *best = NULL;
	unsigned int i, n;
	enum p11s_err rc;

	*out = NULL;
	rc = need_key(k);
	if (rc != P11S_OK)
		return rc;
	if (k->key_id_len == 0)
		return P11S_E_NOTFOUND;
	rc = list_certs(k, &certs, &n);
	if (rc != P11S_OK)
		return rc;
	for (i = 0; i < n; i++) {
		if (!beside_key(k, &certs[i]) || !carries_key(k, certs[i].x509))
			continue;
		if (best == NULL || newer(certs[i].x509, best))
			best = certs[i].x509;
	}
	if (best == NULL)
		return P11S_E_NOTFOUND;
	*out = X509_dup(best);
	if (*out == NULL)
		return err_set(P11S_E_NOMEM, "out of memory copying a certificate");
	return P11S_OK;
}

/* Index of a live cert (with id/id_len, if id) equal to x, or -1. */
static int find_same(const struct p11ks *k, PKCS11_CERT *certs, unsigned int n, X509 *x,
		     const unsigned char *id, size_t id_len)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (certs[i].x509 == NULL || cert_gone(k, &certs[i]))
			continue;
		if (id != NULL && !id_equal(id, id_len, certs[i].id, certs[i].id_len))
			continue;
		if (X509_cmp(certs[i].x509, x) == 0)
			return (int)i;
	}
	return -1;
}

/* Removes every live cert beside the key other than keep. */
static enum p11s_err remove_older(struct p11ks *k, X509 *keep)
{
	PKCS11_CERT *certs;
	unsigned int i, n;
	enum p11s_err rc;

	for (;;) {
		/* libp11 may move its list on any call: enumerate afresh each time. */
		rc = list_certs(k, &certs, &n);
		if (rc != P11S_OK)
			return rc;
		for (i = 0; i < n; i++) {
			if (beside_key(k, &certs[i]) && X509_cmp(certs[i].x509, keep) != 0)
				break;
		}
		if (i == n)
			return P11S_OK;
		ERR_clear_error();
		if (PKCS11_remove_certificate(&certs[i]) != 0)
			return token_fail(k, "removing the older certificate (the new one is stored)");
		rc = mark_gone(k, certs[i].x509);
		if (rc != P11S_OK)
			return rc;
	}
}

static enum p11s_err p11_store_cert(struct ks *ks, X509 *cert)
{
	struct p11ks *k = (struct p11ks *)ks;
	PKCS11_CERT *certs;
	unsigned int n;
	enum p11s_err rc;

	if (cert == NULL)
		return err_set(P11S_E_INTERNAL, "no certificate to store");
	rc = need_key(k);
	if (rc == P11S_E_NOTFOUND)
		return err_set(rc, "no private key in token '%s' matches the key URI: the certificate has no key to go beside",
			       token_label(k));
	if (rc != P11S_OK)
		return rc;
	if (!carries_key(k, cert))
		return err_set(P11S_E_INTERNAL,
			       "refusing to store a certificate whose public key is not that of key '%s'",
			       k->key_label);
	if (k->key_id_len == 0)
		return err_set(P11S_E_TOKEN,
			       "key '%s' has no CKA_ID, so no certificate can be stored beside it",
			       k->key_label);
	rc = list_certs(k, &certs, &n);
	if (rc != P11S_OK)
		return rc;
	if (find_same(k, certs, n, cert, k->key_id, k->key_id_len) < 0) {
		ERR_clear_error();
		if (PKCS11_store_certificate(k->token, cert,
					     k->key_label[0] != '\0' ? k->key_label : NULL,
					     k->key_id, k->key_id_len, NULL) != 0)
			return token_fail(k, "storing the certificate");
	}
	/* Only now that the new one is safe do the old ones go (also after an
	 * earlier run that stored it but stopped before this step). */
	return remove_older(k, cert);
}

/* "CN" of the subject, else the whole subject on one line. */
static char *ca_label(X509 *cert)
{
	const X509_NAME *name = X509_get_subject_name(cert);
	const X509_NAME_ENTRY *ne;
	unsigned char *utf8 = NULL;
	char *label = NULL;
	int idx, len;

	idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	ne = idx >= 0 ? X509_NAME_get_entry(name, idx) : NULL;
	len = ne != NULL ? ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(ne)) : -1;
	if (len > 0)
		label = strndup((const char *)utf8, (size_t)len);
	OPENSSL_free(utf8);
	if (label != NULL)
		return label;
	utf8 = (unsigned char *)X509_NAME_oneline(name, NULL, 0);
	if (utf8 != NULL)
		label = strdup((const char *)utf8);
	OPENSSL_free(utf8);
	return label;
}

/*
 * libp11 0.4.12 cannot set CKA_CERTIFICATE_CATEGORY or CKA_TRUSTED, and its
 * module function list is private: the CA cert goes in as a plain cert.
 */
static enum p11s_err p11_store_ca_cert(struct ks *ks, X509 *cert)
{
	struct p11ks *k = (struct p11ks *)ks;
	unsigned char id[EVP_MAX_MD_SIZE];
	unsigned int id_len = 0;
	PKCS11_CERT *certs;
	unsigned int n;
	char *label = NULL;
	enum p11s_err rc;

	if (cert == NULL)
		return err_set(P11S_E_INTERNAL, "no CA certificate to store");
	/* The common CKA_ID convention: SHA-1 of the subjectPublicKey bits. */
	if (X509_pubkey_digest(cert, EVP_sha1(), id, &id_len) != 1)
		return err_set_ssl(P11S_E_MALFORMED, "cannot hash the CA certificate's public key");
	rc = list_certs(k, &certs, &n);
	if (rc != P11S_OK)
		return rc;
	if (find_same(k, certs, n, cert, NULL, 0) >= 0)
		return P11S_OK;
	label = ca_label(cert);
	if (label == NULL)
		return err_set(P11S_E_NOMEM, "out of memory naming the CA certificate");
	ERR_clear_error();
	if (PKCS11_store_certificate(k->token, cert, label, id, id_len, NULL) != 0)
		rc = token_fail(k, "storing the CA certificate");
	free(label);
	return rc;
}

const struct ks_backend ks_pkcs11_backend = {
	.scheme = "pkcs11",
	.open = p11_open,
	.close = p11_close,
	.find_key = p11_find_key,
	.generate_key = p11_generate_key,
	.find_cert = p11_find_cert,
	.store_cert = p11_store_cert,
	.store_ca_cert = p11_store_ca_cert,
};
