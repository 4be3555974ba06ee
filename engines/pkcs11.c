/*
 * The PKCS#11 key backend on libp11 0.4.12's own API (no ENGINE, no provider).
 *
 * Facts this file is built around (see TOKEN-NOTES.md):
 * - one PKCS11_CTX per process; teardown is EVP_PKEY_free, then
 *   PKCS11_release_all_slots, PKCS11_CTX_unload, PKCS11_CTX_free;
 * - a read-write session must be open before login or key generation fails;
 * - libp11's key and cert arrays move when it re-enumerates: no PKCS11_KEY or
 *   PKCS11_CERT pointer is kept across a libp11 call;
 * - libp11 0.4.12 goes on listing the keys and certs it removed;
 * - libp11 reports module errors on the OpenSSL queue with the CKR_* value as
 *   the reason, under a library number it picks at run time.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libp11.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "keystore.h"
#include "log.h"
#include "p11_internal.h"
#include "p11_raw.h"
#include "secret.h"
#include "uri.h"

/* libp11's name for the errors that carry a CKR_* value. */
#define CKR_LIB_NAME		"PKCS#11 module"

#define PIN_MAX			256
#define NEW_ID_LEN		16
#define NAMES_MAX		256
#define ANY_TOKEN		"any initialized token"

/* libp11 breaks with two contexts on one module: a single command opens one
 * handle; with ks_keep_open, each module gets one owner that stays loaded. */
static int ctx_in_use;
static int keep_open;
#define OWNERS_MAX 8
static struct p11ks *owners[OWNERS_MAX];
static size_t n_owners;

static void p11_close(struct ks *ks);

/* ------------------------------------------------------------ messages */

/* Appends s to buf (size n) with control characters replaced: labels come
 * from the token. */
void p11_append_clean(char *buf, size_t n, const char *s)
{
	size_t len = strlen(buf);

	for (; s != NULL && *s != '\0' && len + 1 < n; s++)
		buf[len++] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
	buf[len] = '\0';
}

const char *p11_token_label(const struct p11ks *k)
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
			what, p11_token_label(k), k->module, (unsigned long)ERR_GET_REASON(e),
			reason != NULL ? reason : "unknown");
	else
		err_set(P11S_E_TOKEN, "%s failed on token '%s' (module %s): %s",
			what, p11_token_label(k), k->module,
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
	log_v("loaded PKCS#11 module %s", path);
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
			p11_append_clean(buf, n, ", ");
		p11_append_clean(buf, n, names[i]);
		p11_append_clean(buf, n, "='");
		p11_append_clean(buf, n, vals[i]);
		p11_append_clean(buf, n, "'");
	}
	if (buf[0] == '\0')
		p11_append_clean(buf, n, ANY_TOKEN);
}

static void add_name(char *buf, size_t n, const char *name)
{
	if (buf[0] != '\0')
		p11_append_clean(buf, n, ", ");
	p11_append_clean(buf, n, "'");
	p11_append_clean(buf, n, name != NULL ? name : "");
	p11_append_clean(buf, n, "'");
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
	p11_append_clean(k->label, sizeof(k->label), found->label);
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

/* The PIN from the URI, else from the caller. With a PIN pad (pinpad), one
 * the caller would have to prompt for is P11S_E_NOTFOUND: typed on the pad. */
static enum p11s_err get_pin(const struct p11ks *k, const struct ks_params *p, int pinpad,
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
	if (p->pin_cb == NULL && pinpad)
		return P11S_E_NOTFOUND;
	if (p->pin_cb == NULL)
		return err_set(P11S_E_PIN,
			       "no PIN for token '%s': add pin-source=file:PATH to the key URI",
			       p11_token_label(k));
	rc = p->pin_cb(p->pin_arg, p11_token_label(k), !pinpad, buf, n);
	if (rc == P11S_E_NOTFOUND && pinpad)
		return P11S_E_NOTFOUND;
	if (rc == P11S_E_NOTFOUND)
		rc = P11S_E_PIN;
	if (rc != P11S_OK)
		return err_set(rc, "no PIN for token '%s'", p11_token_label(k));
	if (memchr(buf, '\0', n) == NULL)
		return err_set(P11S_E_INTERNAL, "the PIN callback wrote no NUL");
	return P11S_OK;
}

static int is_pin_ckr(CK_RV ckr)
{
	return ckr == CKR_PIN_INCORRECT || ckr == CKR_PIN_INVALID ||
	       ckr == CKR_PIN_LEN_RANGE || ckr == CKR_PIN_EXPIRED ||
	       ckr == CKR_PIN_LOCKED;
}

/* Login failed: tell a PIN the token refused from other trouble. Reasons are
 * compared, not library numbers: libp11 picks those at run time. */
static enum p11s_err login_fail(const struct p11ks *k, CK_RV ckr)
{
	if (!is_pin_ckr(ckr))
		return raw_fail(k, "login", ckr);
	ERR_clear_error();
	if (ckr == CKR_PIN_LOCKED)
		return err_set(P11S_E_PIN, "the PIN of token '%s' is locked (CKR 0x%lX): unlock it with the SO PIN",
			       p11_token_label(k), ckr);
	if (ckr == CKR_PIN_EXPIRED)
		return err_set(P11S_E_PIN, "the PIN of token '%s' has expired (CKR 0x%lX): set a new one",
			       p11_token_label(k), ckr);
	return err_set(P11S_E_PIN, "token '%s' rejected the PIN (CKR 0x%lX): check pin-source or the PIN given",
		       p11_token_label(k), ckr);
}

/* Key generation needs a read-write session, and it must exist before login. */
static enum p11s_err login(struct p11ks *k, const struct ks_params *p)
{
	PKCS11_SLOT *slot = k->token->slot;
	char pin[PIN_MAX];
	CK_RV ckr = CKR_OK;
	enum p11s_err rc;

	ERR_clear_error();
	if (PKCS11_open_session(slot, 1) != 0)
		return token_fail(k, "opening a read-write session");
	k->logged_in = !k->token->loginRequired;
	if (!k->token->loginRequired)
		return P11S_OK;
	pin[0] = '\0';
	rc = get_pin(k, p, k->token->secureLogin, pin, sizeof(pin));
	/* Only a PIN nobody gave is forgiven; a bad pin-source is still an error. */
	if ((rc == P11S_E_PIN || rc == P11S_E_NOTFOUND) && p->login_optional &&
	    k->uri.pin_source == NULL && k->uri.pin_value == NULL) {
		err_clear();
		return P11S_OK;
	}
	if (rc == P11S_E_NOTFOUND) {
		/* CKF_PROTECTED_AUTHENTICATION_PATH: the module asks the reader. */
		log_info("enter the PIN of token '%s' on the reader's PIN pad", p11_token_label(k));
		rc = raw_login(k, &k->login, NULL, &ckr);
	} else if (rc == P11S_OK) {
		rc = raw_login(k, &k->login, pin, &ckr);
	}
	if (rc == P11S_E_PIN && ckr != CKR_OK) {
		k->pin_refused = 1;
		rc = login_fail(k, ckr);
	} else if (rc == P11S_OK) {
		k->logged_in = 1;
		log_v("logged in to token '%s'", p11_token_label(k));
	}
	secret_wipe(pin, sizeof(pin));
	return rc;
}

static enum p11s_err open_shared(const struct ks_params *p, struct ks **out);

/* A handle for the URI, nothing loaded yet; free()d by the caller on error. */
static enum p11s_err new_handle(const struct ks_params *p, struct p11ks **out)
{
	struct p11ks *k;
	enum p11s_err rc;

	*out = NULL;
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return err_set(P11S_E_NOMEM, "out of memory opening the key store");
	k->base.be = &ks_pkcs11_backend;
	rc = p11_uri_parse(p->uri, &k->uri);
	if (rc == P11S_OK && k->uri.type != NULL && strcmp(k->uri.type, "private") != 0)
		rc = err_set(P11S_E_USAGE, "the key URI has type=%s: leave type= out or write type=private",
			     k->uri.type);
	if (rc != P11S_OK) {
		p11_uri_free(&k->uri);
		free(k);
		return rc;
	}
	*out = k;
	return P11S_OK;
}

static enum p11s_err p11_open(const struct ks_params *p, struct ks **out)
{
	struct p11ks *k;
	enum p11s_err rc;

	*out = NULL;
	if (keep_open)
		return open_shared(p, out);
	if (ctx_in_use)
		return err_set(P11S_E_INTERNAL, "a PKCS#11 key store is already open in this process");
	rc = new_handle(p, &k);
	if (rc != P11S_OK)
		return rc;
	ctx_in_use = 1;
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

static void close_borrowed(struct p11ks *k);

static void p11_close(struct ks *ks)
{
	struct p11ks *k = (struct p11ks *)ks;
	size_t i;

	if (k == NULL)
		return;
	if (k->owner != NULL) {
		close_borrowed(k);
		return;
	}
	EVP_PKEY_free(k->key_pub);
	raw_logout(&k->login);
	for (i = 0; i < k->nlogins; i++)
		raw_logout(&k->logins[i].login);
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
	free(k->logins);
	free(k);
	ctx_in_use = 0;
}

/* ------------------------------------------------------------ sharing (p11scep run) */

static struct token_login *login_of(struct p11ks *o, PKCS11_SLOT *slot)
{
	struct token_login *l;
	size_t i;

	for (i = 0; i < o->nlogins; i++) {
		if (o->logins[i].slot == slot)
			return &o->logins[i];
	}
	l = realloc(o->logins, (o->nlogins + 1) * sizeof(*l));
	if (l == NULL)
		return NULL;
	o->logins = l;
	l = &o->logins[o->nlogins++];
	memset(l, 0, sizeof(*l));
	l->slot = slot;
	return l;
}

/* The owner of the module's load: found, or made by loading it. */
static enum p11s_err module_owner(const char *path, struct p11ks **out)
{
	struct p11ks *o;
	enum p11s_err rc;
	size_t i;

	*out = NULL;
	for (i = 0; i < n_owners; i++) {
		if (strcmp(owners[i]->module, path) == 0) {
			*out = owners[i];
			return P11S_OK;
		}
	}
	if (n_owners == OWNERS_MAX)
		return err_set(P11S_E_USAGE, "more than %d PKCS#11 modules in one run", OWNERS_MAX);
	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return err_set(P11S_E_NOMEM, "out of memory opening the key store");
	o->base.be = &ks_pkcs11_backend;
	rc = load_module(o, path);
	if (rc != P11S_OK) {
		p11_close(&o->base);
		return rc;
	}
	owners[n_owners++] = o;
	*out = o;
	return P11S_OK;
}

/*
 * A handle of its own (URI, current key) on the owner's context and slots.
 * Its token is logged in once while any handle uses it; when the last one
 * lets go, the token is logged out, which also unloads the keys it used (a
 * TPM holds only two loaded keys per login).
 */
static enum p11s_err open_shared(const struct ks_params *p, struct ks **out)
{
	struct p11ks *k, *o = NULL;
	struct token_login *l;
	const char *path;
	enum p11s_err rc;

	rc = new_handle(p, &k);
	if (rc != P11S_OK)
		return rc;
	path = p->module ? p->module : k->uri.module_path ? k->uri.module_path : P11SCEP_DEFAULT_MODULE;
	rc = module_owner(path, &o);
	if (rc != P11S_OK)
		goto fail;
	k->module = strdup(o->module);
	if (k->module == NULL) {
		rc = err_set(P11S_E_NOMEM, "out of memory opening the key store");
		goto fail;
	}
	k->owner = o;
	k->ctx = o->ctx;
	k->slots = o->slots;
	k->nslots = o->nslots;
	rc = pick_token(k);
	if (rc != P11S_OK)
		goto fail;
	l = login_of(o, k->token->slot);
	if (l == NULL) {
		rc = err_set(P11S_E_NOMEM, "out of memory opening the key store");
		goto fail;
	}
	/* Smartcards lock the PIN after a few refusals: a run over many
	 * profiles of one token spends one, whatever their PIN sources. */
	if (l->pin_refused) {
		rc = err_set(P11S_E_PIN, "token '%s' refused a PIN earlier in this run: not "
			     "trying another, which could lock it; check pin-source",
			     p11_token_label(k));
		goto fail;
	}
	if (!l->logged_in) {
		rc = login(k, p);
		l->pin_refused = k->pin_refused;
		if (rc != P11S_OK)
			goto fail;
		l->logged_in = k->logged_in;
		l->login = k->login;	/* the token's login, not this handle's */
		memset(&k->login, 0, sizeof(k->login));
	}
	k->logged_in = l->logged_in;
	l->users++;
	*out = &k->base;
	return P11S_OK;
fail:
	k->token = NULL;	/* no login of ours to give back */
	close_borrowed(k);
	return rc;
}

static void close_borrowed(struct p11ks *k)
{
	struct token_login *l = NULL;
	size_t i;

	for (i = 0; k->token != NULL && i < k->owner->nlogins; i++) {
		if (k->owner->logins[i].slot == k->token->slot)
			l = &k->owner->logins[i];
	}
	if (l != NULL && l->users > 0 && --l->users == 0 && l->logged_in) {
		PKCS11_logout(l->slot);	/* libp11 drops the objects it listed */
		raw_logout(&l->login);
		ERR_clear_error();
		l->logged_in = 0;
	}
	EVP_PKEY_free(k->key_pub);
	p11_uri_free(&k->uri);
	free(k->module);
	free(k->key_label);
	free(k->key_id);
	free(k);
}

static void p11_keep_open(void)
{
	keep_open = 1;
}

static void p11_close_shared(void)
{
	size_t i;

	for (i = 0; i < n_owners; i++)
		p11_close(&owners[i]->base);
	n_owners = 0;
	keep_open = 0;
}

/* ------------------------------------------------------------ removed objects */

/*
 * libp11 0.4.12 keeps the keys and certs we removed in its lists, with their
 * dead handles. We remember each by an address libp11 never moves (a key's
 * _private, a cert's X509), compared and never dereferenced.
 */
static int is_gone(const struct p11ks *k, const void *p)
{
	size_t i;

	if (k->owner != NULL)
		k = k->owner;
	for (i = 0; p != NULL && i < k->ngone; i++) {
		if (k->gone[i] == p)
			return 1;
	}
	return 0;
}

static enum p11s_err mark_gone(struct p11ks *k, const void *p)
{
	const void **g;

	if (k->owner != NULL)
		k = k->owner;
	g = realloc(k->gone, (k->ngone + 1) * sizeof(*g));
	if (g == NULL)
		return err_set(P11S_E_NOMEM, "out of memory");
	g[k->ngone++] = p;
	k->gone = g;
	return P11S_OK;
}

static int key_gone(const struct p11ks *k, const PKCS11_KEY *key)
{
	return is_gone(k, key->_private);
}

static int cert_gone(const struct p11ks *k, const PKCS11_CERT *c)
{
	return is_gone(k, c->x509);
}

/* ------------------------------------------------------------ certificate lookup */

int p11_id_equal(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
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

/* A cert libp11 lists, not removed by us, with this id. */
static int cert_has_id(const struct p11ks *k, const PKCS11_CERT *c,
		       const unsigned char *id, size_t id_len)
{
	return c->x509 != NULL && !cert_gone(k, c) && p11_id_equal(id, id_len, c->id, c->id_len);
}

static int carries_key(X509 *x, const EVP_PKEY *pub)
{
	EVP_PKEY *xpub = X509_get0_pubkey(x);

	return xpub != NULL && pub != NULL && EVP_PKEY_eq(xpub, pub) == 1;
}

/* Certs from the token are compared by validity: both dates must parse. */
static int dates_ok(X509 *x)
{
	struct tm tm;

	return ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm) == 1 &&
	       ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1;
}

/* >0 when a is newer than b: later notBefore, on a tie later notAfter. */
static int cert_age_cmp(X509 *a, X509 *b)
{
	int r = ASN1_TIME_compare(X509_get0_notBefore(a), X509_get0_notBefore(b));

	if (r == 0)
		r = ASN1_TIME_compare(X509_get0_notAfter(a), X509_get0_notAfter(b));
	return r;
}

/* The newest live cert with this id that carries pub; borrowed from
 * libp11's list (valid until close), or NULL. */
static X509 *newest_cert(const struct p11ks *k, PKCS11_CERT *certs, unsigned int n,
			 const unsigned char *id, size_t id_len, const EVP_PKEY *pub)
{
	X509 *best = NULL;
	unsigned int i;

	if (id_len == 0)
		return NULL;
	for (i = 0; i < n; i++) {
		if (!cert_has_id(k, &certs[i], id, id_len) || !carries_key(certs[i].x509, pub) ||
		    !dates_ok(certs[i].x509))
			continue;
		if (best == NULL || cert_age_cmp(certs[i].x509, best) > 0)
			best = certs[i].x509;
	}
	return best;
}

/* ------------------------------------------------------------ keys */

static int key_matches(const struct p11_uri *u, const PKCS11_KEY *key)
{
	if (u->object != NULL && (key->label == NULL || strcmp(u->object, key->label) != 0))
		return 0;
	if (u->id != NULL && !p11_id_equal(u->id, u->id_len, key->id, key->id_len))
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

/*
 * The one live private key with this id (and label, unless NULL), listed
 * afresh; the pointer is good only until the next libp11 call.
 * P11S_E_NOTFOUND without a message.
 */
static enum p11s_err lookup_id(struct p11ks *k, const char *label, const unsigned char *id,
			       size_t id_len, PKCS11_KEY **out)
{
	PKCS11_KEY *keys;
	unsigned int i, n, nmatch = 0;
	enum p11s_err rc;

	*out = NULL;
	rc = list_keys(k, &keys, &n);
	if (rc != P11S_OK)
		return rc;
	for (i = 0; i < n; i++) {
		if (key_gone(k, &keys[i]) || !p11_id_equal(id, id_len, keys[i].id, keys[i].id_len))
			continue;
		if (label != NULL && (keys[i].label == NULL || strcmp(label, keys[i].label) != 0))
			continue;
		if (nmatch++ == 0)
			*out = &keys[i];
	}
	if (nmatch == 0)
		return P11S_E_NOTFOUND;
	if (nmatch > 1) {
		*out = NULL;
		return err_set(P11S_E_USAGE,
			       "%u private keys in token '%s' share one id: remove the extra ones",
			       nmatch, p11_token_label(k));
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

/* Makes key the current one (label, id, public key); hands out its EVP_PKEY if out. */
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

static enum p11s_err take_id(struct p11ks *k, const char *label, const unsigned char *id,
			     size_t id_len, EVP_PKEY **out)
{
	PKCS11_KEY *key;
	enum p11s_err rc;

	rc = lookup_id(k, label, id, id_len, &key);
	if (rc != P11S_OK)
		return rc;
	return take_key(k, key, out);
}

/* ------------------------------------------------------------ choosing among keys */

/* A key the URI matches (known by label and id: tokens may leave the id
 * empty), and the newest certificate beside it (ours). */
struct cand {
	char *label;
	unsigned char *id;
	size_t id_len;
	X509 *cert;
};

static void cands_free(struct cand *c, unsigned int n)
{
	unsigned int i;

	for (i = 0; c != NULL && i < n; i++) {
		free(c[i].label);
		free(c[i].id);
		X509_free(c[i].cert);
	}
	free(c);
}

/* The ids of the live private keys the URI matches: copies, since ranking
 * them makes libp11 calls that may move its arrays. */
static enum p11s_err uri_cands(struct p11ks *k, struct cand **out, unsigned int *nout)
{
	PKCS11_KEY *keys;
	struct cand *c;
	unsigned int i, n, m = 0;
	enum p11s_err rc;

	*out = NULL;
	*nout = 0;
	rc = list_keys(k, &keys, &n);
	if (rc != P11S_OK || n == 0)
		return rc;
	c = calloc(n, sizeof(*c));
	if (c == NULL)
		return err_set(P11S_E_NOMEM, "out of memory listing the keys");
	for (i = 0; i < n; i++) {
		if (key_gone(k, &keys[i]) || !key_matches(&k->uri, &keys[i]))
			continue;
		/* a key without a label is found again by id alone */
		c[m].label = keys[i].label != NULL ? strdup(keys[i].label) : NULL;
		c[m].id = malloc(keys[i].id_len > 0 ? keys[i].id_len : 1);
		if ((keys[i].label != NULL && c[m].label == NULL) || c[m].id == NULL) {
			cands_free(c, m + 1);
			return err_set(P11S_E_NOMEM, "out of memory listing the keys");
		}
		if (keys[i].id_len > 0)
			memcpy(c[m].id, keys[i].id, keys[i].id_len);
		c[m++].id_len = keys[i].id_len;
	}
	*out = c;
	*nout = m;
	return P11S_OK;
}

/* The public key (a software copy) of a candidate. */
static enum p11s_err cand_pub(struct p11ks *k, const struct cand *c, EVP_PKEY **out)
{
	PKCS11_KEY *key;
	EVP_PKEY *pk;
	enum p11s_err rc;

	*out = NULL;
	rc = lookup_id(k, c->label, c->id, c->id_len, &key);
	if (rc == P11S_E_NOTFOUND)
		return err_set(rc, "a private key of token '%s' vanished while it was read",
			       p11_token_label(k));
	if (rc != P11S_OK)
		return rc;
	ERR_clear_error();
	pk = PKCS11_get_private_key(key);
	if (pk == NULL)
		return token_fail(k, "loading the private key");
	rc = copy_public(pk, out);
	EVP_PKEY_free(pk);
	return rc;
}

/* Finds each candidate's newest certificate. */
static enum p11s_err find_cand_certs(struct p11ks *k, struct cand *c, unsigned int n)
{
	PKCS11_CERT *certs;
	EVP_PKEY *pub;
	X509 *x;
	unsigned int i, ncerts;
	enum p11s_err rc;

	for (i = 0; i < n; i++) {
		if (c[i].id_len == 0)
			continue;
		rc = cand_pub(k, &c[i], &pub);
		if (rc != P11S_OK)
			return rc;
		rc = list_certs(k, &certs, &ncerts);
		x = rc == P11S_OK ? newest_cert(k, certs, ncerts, c[i].id, c[i].id_len, pub) : NULL;
		EVP_PKEY_free(pub);
		if (rc != P11S_OK)
			return rc;
		if (x != NULL && X509_up_ref(x) == 1)
			c[i].cert = x;
	}
	return P11S_OK;
}

/*
 * Several keys carry the URI's label (a renewal with a new key keeps the old
 * one): the one with the newest certificate is the URI's key. One without a
 * certificate is not yet in use.
 */
static enum p11s_err rank_cands(struct p11ks *k, struct cand *c, unsigned int n,
				unsigned int *best)
{
	unsigned int i, b = n;
	int tie = 0, r;
	enum p11s_err rc;

	rc = find_cand_certs(k, c, n);
	if (rc != P11S_OK)
		return rc;
	for (i = 0; i < n; i++) {
		if (c[i].cert == NULL)
			continue;
		r = b == n ? 1 : cert_age_cmp(c[i].cert, c[b].cert);
		if (r > 0) {
			b = i;
			tie = 0;
		} else if (r == 0) {
			tie = 1;
		}
	}
	if (b == n)
		return err_set(P11S_E_USAGE,
			       "%u keys in token '%s' match the key URI and none has a certificate: add id= to it",
			       n, p11_token_label(k));
	if (tie)
		return err_set(P11S_E_USAGE,
			       "%u keys in token '%s' match the key URI and two have equally new certificates: add id= to it",
			       n, p11_token_label(k));
	*best = b;
	return P11S_OK;
}

/* Picks the URI's key and makes it current; P11S_E_NOTFOUND without a message. */
enum p11s_err p11_select_uri_key(struct p11ks *k, EVP_PKEY **out)
{
	struct cand *c = NULL;
	unsigned int n = 0, best = 0;
	enum p11s_err rc;

	if (k->uri.object == NULL && k->uri.id == NULL)
		return err_set(P11S_E_USAGE,
			       "the key URI names no key: add object=LABEL and/or id=%%XX..");
	rc = uri_cands(k, &c, &n);
	if (rc != P11S_OK)
		goto out;
	if (n == 0) {
		rc = P11S_E_NOTFOUND;
		goto out;
	}
	if (n > 1 && k->uri.id != NULL) {
		rc = err_set(P11S_E_USAGE,
			     "%u keys in token '%s' share the id in the key URI: remove the extra ones",
			     n, p11_token_label(k));
		goto out;
	}
	if (n > 1)
		rc = rank_cands(k, c, n, &best);
	if (rc == P11S_OK)
		rc = take_id(k, c[best].label, c[best].id, c[best].id_len, out);
out:
	cands_free(c, n);
	return rc;
}

static enum p11s_err p11_find_key(struct ks *ks, EVP_PKEY **out)
{
	*out = NULL;
	return p11_select_uri_key((struct p11ks *)ks, out);
}

/* The key certs go beside: the one found or generated, else the URI's.
 * P11S_E_NOTFOUND (no message) when the token has no such key. */
static enum p11s_err need_key(struct p11ks *k)
{
	if (k->have_key)
		return P11S_OK;
	return p11_select_uri_key(k, NULL);
}

static enum p11s_err check_id_arg(const struct ks_key_id *id)
{
	if (id == NULL || id->len == 0 || id->len > KS_ID_MAX)
		return err_set(P11S_E_INTERNAL, "no valid key id given");
	return P11S_OK;
}

static enum p11s_err p11_find_key_by_id(struct ks *ks, const struct ks_key_id *id,
					EVP_PKEY **out)
{
	enum p11s_err rc;

	*out = NULL;
	rc = check_id_arg(id);
	if (rc != P11S_OK)
		return rc;
	return take_id((struct p11ks *)ks, NULL, id->id, id->len, out);
}

static enum p11s_err p11_current_id(struct ks *ks, struct ks_key_id *out)
{
	struct p11ks *k = (struct p11ks *)ks;
	enum p11s_err rc;

	memset(out, 0, sizeof(*out));
	rc = need_key(k);
	if (rc == P11S_E_NOTFOUND)
		return err_set(rc, "no private key in token '%s' matches the key URI: check object= and id=",
			       p11_token_label(k));
	if (rc != P11S_OK)
		return rc;
	if (k->key_id_len == 0 || k->key_id_len > KS_ID_MAX)
		return err_set(P11S_E_TOKEN,
			       "key '%s' has %s CKA_ID: give it an id of 1 to %d bytes",
			       k->key_label, k->key_id_len == 0 ? "no" : "too long a", KS_ID_MAX);
	memcpy(out->id, k->key_id, k->key_id_len);
	out->len = k->key_id_len;
	return P11S_OK;
}

/* ------------------------------------------------------------ generation */

static enum p11s_err check_keyspec(const struct ks_keyspec *spec)
{
	if (spec->type == KS_KEY_EC) {
		if (spec->bits != 256 && spec->bits != 384)
			return err_set(P11S_E_USAGE, "EC P-%u is not offered: use P-256 or P-384",
				       spec->bits);
		return P11S_OK;
	}
	if (spec->type != KS_KEY_RSA)
		return err_set(P11S_E_USAGE, "only RSA and EC keys can be generated in the token");
	if (spec->bits != 2048 && spec->bits != 3072 && spec->bits != 4096)
		return err_set(P11S_E_USAGE, "RSA-%u is not offered: use 2048, 3072 or 4096 bits",
			       spec->bits);
	return P11S_OK;
}

/* Refuses an id some private key in the token already has: two keys with one
 * id make every later lookup ambiguous. */
static enum p11s_err check_id_free(struct p11ks *k, const unsigned char *id, size_t id_len)
{
	PKCS11_KEY *key;
	enum p11s_err rc;

	rc = lookup_id(k, NULL, id, id_len, &key);
	if (rc == P11S_E_NOTFOUND)
		return P11S_OK;
	if (rc == P11S_OK)
		return err_set(P11S_E_USAGE,
			       "token '%s' already holds a key with the id in the key URI: pick another id=",
			       p11_token_label(k));
	return rc;
}

/*
 * The RSA sizes the token says it generates (C_GetMechanismInfo), checked
 * before asking: a TPM makes keys of up to 3072 bits and answers a 4096-bit
 * request with a bare CKR_GENERAL_ERROR. A module that cannot be asked is
 * left to answer the generation itself.
 */
static enum p11s_err rsa_sizes(const struct p11ks *k, unsigned int bits)
{
	CK_MECHANISM_INFO mi;
	struct raw r;
	CK_RV rv;

	if (raw_open(k, &r, 0) != P11S_OK) {
		err_clear();
		return P11S_OK;
	}
	rv = r.f->C_GetMechanismInfo(r.slot, CKM_RSA_PKCS_KEY_PAIR_GEN, &mi);
	raw_close(&r);
	if (rv == CKR_MECHANISM_INVALID || (rv == CKR_OK && !(mi.flags & CKF_GENERATE_KEY_PAIR)))
		return err_set(P11S_E_TOKEN, "token '%s' (module %s) cannot generate RSA keys "
			       "(no CKM_RSA_PKCS_KEY_PAIR_GEN)", p11_token_label(k), k->module);
	if (rv != CKR_OK || mi.ulMaxKeySize == 0 ||
	    (bits >= mi.ulMinKeySize && bits <= mi.ulMaxKeySize))
		return P11S_OK;
	return err_set(P11S_E_TOKEN, "token '%s' generates RSA keys of %lu to %lu bits, not %u: "
		       "use --key-type rsa:%u", p11_token_label(k), mi.ulMinKeySize,
		       mi.ulMaxKeySize, bits, mi.ulMaxKeySize >= 3072 ? 3072 : 2048);
}

/*
 * A renewal goes on using the current key after making the new one: it signs
 * the request and decrypts the reply. So it is used once before: a current
 * key that cannot sign fails the renewal before a new key is left behind,
 * and a token that holds only a few keys loaded at a time has it loaded
 * before the new pair arrives (a TPM without a resource manager has three
 * object slots: a new pair stays loaded in two, and loading one more key
 * needs its parent in the third).
 */
static enum p11s_err use_current_key(struct p11ks *k)
{
	static const unsigned char msg[] = "p11scep: the current key before a new one";
	unsigned char *sig = NULL;
	EVP_MD_CTX *md = NULL;
	EVP_PKEY *pk = NULL;
	PKCS11_KEY *key;
	size_t len = 0;
	enum p11s_err rc;

	if (!k->have_key || k->key_id_len == 0)
		return P11S_OK;
	rc = lookup_id(k, NULL, k->key_id, k->key_id_len, &key);
	if (rc == P11S_E_NOTFOUND)
		return err_set(P11S_E_TOKEN, "key '%s' left token '%s' before the new key was made",
			       k->key_label, p11_token_label(k));
	if (rc != P11S_OK)
		return rc;
	ERR_clear_error();
	pk = PKCS11_get_private_key(key);
	md = EVP_MD_CTX_new();
	if (pk == NULL || md == NULL ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pk) != 1 ||
	    EVP_DigestSign(md, NULL, &len, msg, sizeof(msg)) != 1 ||
	    (sig = OPENSSL_malloc(len)) == NULL ||
	    EVP_DigestSign(md, sig, &len, msg, sizeof(msg)) != 1)
		rc = token_fail(k, "signing with the current key before making a new one");
	OPENSSL_free(sig);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	return rc;
}

static enum p11s_err generate_rsa(struct p11ks *k, unsigned int bits,
				  unsigned char *id, size_t id_len)
{
	enum p11s_err rc;
	int r;

	rc = rsa_sizes(k, bits);
	if (rc != P11S_OK)
		return rc;
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

static int ec_curve_nid(unsigned int bits)
{
	return bits == 256 ? NID_X9_62_prime256v1 : bits == 384 ? NID_secp384r1 : NID_undef;
}

/* The module's word on a mechanism it lists: 1 with *mi filled, or 0. */
static int mech_info(struct raw *r, const CK_MECHANISM_TYPE *list, CK_ULONG n,
		     CK_MECHANISM_TYPE mech, CK_FLAGS need, CK_MECHANISM_INFO *mi)
{
	return raw_mech_listed(list, n, mech) &&
	       r->f->C_GetMechanismInfo(r->slot, mech, mi) == CKR_OK &&
	       (mi->flags & need) == need;
}

/*
 * What the module says it can do with EC keys: generate a pair of this size
 * and sign with ECDSA, or no EC key is of use. ECDH (for replies encrypted by
 * key agreement) is allowed on the key only when offered. Sizes are compared
 * only when given in bits as the standard says: some modules give bytes.
 */
static enum p11s_err ec_mechanisms(const struct p11ks *k, struct raw *r, unsigned int bits,
				   int *derive)
{
	CK_MECHANISM_INFO mi;
	CK_MECHANISM_TYPE *list;
	CK_ULONG n;
	enum p11s_err rc;

	*derive = 0;
	rc = raw_mech_list(k, r, &list, &n);
	if (rc != P11S_OK)
		return rc;
	if (!mech_info(r, list, n, CKM_EC_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR, &mi))
		rc = err_set(P11S_E_TOKEN, "token '%s' (module %s) cannot generate EC keys "
			     "(no CKM_EC_KEY_PAIR_GEN): use --key-type rsa:2048",
			     p11_token_label(k), k->module);
	else if (mi.ulMaxKeySize >= 256 && (bits < mi.ulMinKeySize || bits > mi.ulMaxKeySize))
		rc = err_set(P11S_E_TOKEN, "token '%s' generates EC keys of %lu to %lu bits, "
			     "not %u: choose another --key-type", p11_token_label(k),
			     mi.ulMinKeySize, mi.ulMaxKeySize, bits);
	else if (!mech_info(r, list, n, CKM_ECDSA, CKF_SIGN, &mi))
		rc = err_set(P11S_E_TOKEN, "token '%s' (module %s) cannot sign with EC keys "
			     "(no CKM_ECDSA): use --key-type rsa:2048", p11_token_label(k), k->module);
	else
		*derive = mech_info(r, list, n, CKM_ECDH1_DERIVE, CKF_DERIVE, &mi);
	free(list);
	return rc;
}

/* The pair as PKCS#11 v2.40 describes it: the curve by its OID, a private
 * half that is sensitive, never extractable and private to the user. */
static enum p11s_err ec_keypair(const struct p11ks *k, struct raw *r, const unsigned char *params,
				size_t params_len, int derive, unsigned char *id, size_t id_len)
{
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	char *label = k->uri.object;
	CK_ATTRIBUTE pub[] = {
		{ CKA_TOKEN, &yes, 1 },
		{ CKA_VERIFY, &yes, 1 },
		{ CKA_EC_PARAMS, (void *)params, params_len },
		{ CKA_LABEL, label, strlen(label) },
		{ CKA_ID, id, id_len },
	};
	CK_ATTRIBUTE priv[] = {
		{ CKA_TOKEN, &yes, 1 },
		{ CKA_PRIVATE, &yes, 1 },
		{ CKA_SENSITIVE, &yes, 1 },
		{ CKA_EXTRACTABLE, &no, 1 },
		{ CKA_SIGN, &yes, 1 },
		{ CKA_LABEL, label, strlen(label) },
		{ CKA_ID, id, id_len },
		{ CKA_DERIVE, &yes, 1 },	/* last: left out without ECDH */
	};
	CK_MECHANISM mech = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ULONG npriv = sizeof(priv) / sizeof(priv[0]) - (derive ? 0 : 1);
	CK_OBJECT_HANDLE pub_obj = 0, priv_obj = 0;
	CK_RV rv;

	rv = r->f->C_GenerateKeyPair(r->session, &mech, pub, sizeof(pub) / sizeof(pub[0]),
				     priv, npriv, &pub_obj, &priv_obj);
	if (rv != CKR_OK)
		return raw_fail(k, "EC key generation", rv);
	return P11S_OK;
}

static enum p11s_err generate_ec(struct p11ks *k, unsigned int bits, unsigned char *id,
				 size_t id_len)
{
	ASN1_OBJECT *curve = OBJ_nid2obj(ec_curve_nid(bits));
	unsigned char *params = NULL;
	struct raw r;
	int params_len, derive = 0;
	enum p11s_err rc;

	params_len = curve != NULL ? i2d_ASN1_OBJECT(curve, &params) : -1;
	if (params_len <= 0)
		return err_set_ssl(P11S_E_INTERNAL, "cannot encode the EC curve P-%u", bits);
	rc = raw_open(k, &r, 1);
	if (rc == P11S_OK) {
		rc = ec_mechanisms(k, &r, bits, &derive);
		if (rc == P11S_OK)
			rc = ec_keypair(k, &r, params, (size_t)params_len, derive, id, id_len);
		raw_close(&r);
	}
	OPENSSL_free(params);
	return rc;
}

/*
 * libp11 moves its key array here, so no PKCS11_KEY is kept across it. The
 * EVP_PKEYs handed out before stay usable (a renewal signs with the old key
 * after generating the new one; test_rollover checks it under valgrind).
 */
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
	if (id == NULL || spec->fresh_id) {
		if (RAND_bytes(fresh, sizeof(fresh)) != 1)
			return err_set_ssl(P11S_E_INTERNAL, "no random bytes for a key id");
		id = fresh;
		id_len = sizeof(fresh);
	}
	rc = check_id_free(k, id, id_len);
	if (rc == P11S_OK)
		rc = use_current_key(k);
	if (rc != P11S_OK)
		return rc;
	if (spec->type == KS_KEY_EC)
		rc = generate_ec(k, spec->bits, id, id_len);
	else
		rc = generate_rsa(k, spec->bits, id, id_len);
	if (rc != P11S_OK)
		return rc;
	rc = take_id(k, k->uri.object, id, id_len, out);
	if (rc == P11S_E_NOTFOUND)
		return err_set(P11S_E_TOKEN, "token '%s' does not list the key it just generated",
			       p11_token_label(k));
	return rc;
}

/* ------------------------------------------------------------ removal */

/* Removes every live private (or public) key with this id; counts them. */
static enum p11s_err remove_keys(struct p11ks *k, int public, const struct ks_key_id *id,
				 unsigned int *count)
{
	PKCS11_KEY *keys;
	unsigned int i, n;
	const void *handle;
	int r;

	for (;;) {
		/* libp11 may move its list on any call: enumerate afresh each time. */
		ERR_clear_error();
		r = public ? PKCS11_enumerate_public_keys(k->token, &keys, &n) :
			     PKCS11_enumerate_keys(k->token, &keys, &n);
		if (r != 0)
			return token_fail(k, public ? "listing the public keys" :
						      "listing the private keys");
		for (i = 0; i < n; i++) {
			if (!key_gone(k, &keys[i]) &&
			    p11_id_equal(id->id, id->len, keys[i].id, keys[i].id_len))
				break;
		}
		if (i == n)
			return P11S_OK;
		handle = keys[i]._private;
		ERR_clear_error();
		if (PKCS11_remove_key(&keys[i]) != 0)
			return token_fail(k, public ? "removing the old public key" :
						      "removing the old private key");
		if (mark_gone(k, handle) != P11S_OK)
			return P11S_E_NOMEM;
		(*count)++;
	}
}

/* Removes every live cert with this id; counts them. */
static enum p11s_err remove_certs(struct p11ks *k, const unsigned char *id, size_t id_len,
				  X509 *keep, unsigned int *count)
{
	PKCS11_CERT *certs;
	unsigned int i, n;
	const void *handle;
	enum p11s_err rc;

	for (;;) {
		rc = list_certs(k, &certs, &n);
		if (rc != P11S_OK)
			return rc;
		for (i = 0; i < n; i++) {
			if (cert_has_id(k, &certs[i], id, id_len) &&
			    (keep == NULL || X509_cmp(certs[i].x509, keep) != 0))
				break;
		}
		if (i == n)
			return P11S_OK;
		handle = certs[i].x509;
		ERR_clear_error();
		if (PKCS11_remove_certificate(&certs[i]) != 0)
			return token_fail(k, keep != NULL ?
					  "removing the older certificate (the new one is stored)" :
					  "removing the old certificate");
		if (mark_gone(k, handle) != P11S_OK)
			return P11S_E_NOMEM;
		(*count)++;
	}
}

/* "0A1B..", shortened: for messages. */
static void id_hex(char *buf, size_t n, const unsigned char *id, size_t len)
{
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < len && 2 * i + 3 <= n; i++)
		snprintf(buf + 2 * i, n - 2 * i, "%02X", id[i]);
}

/* Private key first: whatever a failure leaves behind is no usable key. */
static enum p11s_err p11_remove_key(struct ks *ks, const struct ks_key_id *id)
{
	struct p11ks *k = (struct p11ks *)ks;
	char hex[2 * KS_ID_MAX + 1];
	unsigned int nkeys = 0, nother = 0;
	enum p11s_err rc;

	rc = check_id_arg(id);
	if (rc != P11S_OK)
		return rc;
	id_hex(hex, sizeof(hex), id->id, id->len);
	if (k->have_key && p11_id_equal(id->id, id->len, k->key_id, k->key_id_len))
		return err_set(P11S_E_USAGE,
			       "refusing to remove key '%s' (id %s) from token '%s': it is the key in use",
			       k->key_label, hex, p11_token_label(k));
	rc = remove_keys(k, 0, id, &nkeys);
	if (rc == P11S_OK)
		rc = remove_keys(k, 1, id, &nother);
	if (rc == P11S_OK)
		rc = remove_certs(k, id->id, id->len, NULL, &nother);
	if (rc != P11S_OK)
		return rc;
	if (nkeys + nother == 0)
		return err_set(P11S_E_NOTFOUND, "token '%s' holds no key with id %s: nothing to remove",
			       p11_token_label(k), hex);
	return P11S_OK;
}

/* ------------------------------------------------------------ certificates */

/* Read from the token, not from libp11's list: certificates go in and out
 * through raw_store_cert, which libp11 0.4.12 does not see. */
static enum p11s_err p11_find_cert(struct ks *ks, X509 **out)
{
	struct p11ks *k = (struct p11ks *)ks;
	STACK_OF(X509) *certs = NULL;
	X509 *best = NULL, *c;
	enum p11s_err rc;
	int i;

	*out = NULL;
	rc = need_key(k);
	if (rc != P11S_OK)
		return rc;
	if (k->key_id_len == 0)
		return P11S_E_NOTFOUND;
	rc = raw_certs_by_id(k, k->key_id, k->key_id_len, &certs);
	if (rc != P11S_OK)
		return rc;
	for (i = 0; i < sk_X509_num(certs); i++) {
		c = sk_X509_value(certs, i);
		if (carries_key(c, k->key_pub) && dates_ok(c) &&
		    (best == NULL || cert_age_cmp(c, best) > 0))
			best = c;
	}
	if (best != NULL && X509_up_ref(best))
		*out = best;
	sk_X509_pop_free(certs, X509_free);
	return *out != NULL ? P11S_OK : P11S_E_NOTFOUND;
}

static enum p11s_err p11_store_cert(struct ks *ks, X509 *cert)
{
	struct p11ks *k = (struct p11ks *)ks;
	enum p11s_err rc;

	if (cert == NULL)
		return err_set(P11S_E_INTERNAL, "no certificate to store");
	rc = need_key(k);
	if (rc == P11S_E_NOTFOUND)
		return err_set(rc, "no private key in token '%s' matches the key URI: the certificate has no key to go beside",
			       p11_token_label(k));
	if (rc != P11S_OK)
		return rc;
	if (!carries_key(cert, k->key_pub))
		return err_set(P11S_E_INTERNAL,
			       "refusing to store a certificate whose public key is not that of key '%s'",
			       k->key_label);
	if (k->key_id_len == 0)
		return err_set(P11S_E_TOKEN,
			       "key '%s' has no CKA_ID, so no certificate can be stored beside it",
			       k->key_label);
	return raw_store_cert(k, cert, RAW_CERT_OURS, k->key_label, k->key_id, k->key_id_len);
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
 * A CA certificate: category "authority", labelled by its subject, CKA_ID the
 * common convention (SHA-1 of the subjectPublicKey bits); not trusted
 * (CKA_TRUSTED needs the security officer). Stored once, however often.
 */
static enum p11s_err p11_store_ca_cert(struct ks *ks, X509 *cert)
{
	struct p11ks *k = (struct p11ks *)ks;
	unsigned char id[EVP_MAX_MD_SIZE];
	unsigned int id_len = 0;
	char *label;
	enum p11s_err rc;

	if (cert == NULL)
		return err_set(P11S_E_INTERNAL, "no CA certificate to store");
	if (X509_pubkey_digest(cert, EVP_sha1(), id, &id_len) != 1)
		return err_set_ssl(P11S_E_MALFORMED, "cannot hash the CA certificate's public key");
	label = ca_label(cert);
	if (label == NULL)
		return err_set(P11S_E_NOMEM, "out of memory naming the CA certificate");
	rc = raw_store_cert(k, cert, RAW_CERT_CA, label, id, id_len);
	free(label);
	return rc;
}

const struct ks_backend ks_pkcs11_backend = {
	.scheme = "pkcs11",
	.open = p11_open,
	.close = p11_close,
	.find_key = p11_find_key,
	.find_key_by_id = p11_find_key_by_id,
	.current_id = p11_current_id,
	.remove_key = p11_remove_key,
	.generate_key = p11_generate_key,
	.find_cert = p11_find_cert,
	.store_cert = p11_store_cert,
	.store_ca_cert = p11_store_ca_cert,
	.info = p11_info,
	.keep_open = p11_keep_open,
	.close_shared = p11_close_shared,
};
