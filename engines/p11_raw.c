#include "config.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include <libp11.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "log.h"
#include "p11_raw.h"

/* A CKR_* value and its name, both from the one macro. */
#define CKR_NAMED(rv)	{ rv, #rv }

/* The names of the CKR_* values a key generation or a login most often meets. */
static const char *ckr_name(CK_RV rv)
{
	static const struct { CK_RV rv; const char *name; } names[] = {
		CKR_NAMED(CKR_GENERAL_ERROR), CKR_NAMED(CKR_FUNCTION_FAILED),
		CKR_NAMED(CKR_ARGUMENTS_BAD), CKR_NAMED(CKR_ATTRIBUTE_TYPE_INVALID),
		CKR_NAMED(CKR_ATTRIBUTE_VALUE_INVALID), CKR_NAMED(CKR_DEVICE_ERROR),
		CKR_NAMED(CKR_DEVICE_MEMORY), CKR_NAMED(CKR_FUNCTION_NOT_SUPPORTED),
		CKR_NAMED(CKR_MECHANISM_INVALID), CKR_NAMED(CKR_SESSION_HANDLE_INVALID),
		CKR_NAMED(CKR_SESSION_READ_ONLY), CKR_NAMED(CKR_TEMPLATE_INCOMPLETE),
		CKR_NAMED(CKR_TEMPLATE_INCONSISTENT), CKR_NAMED(CKR_TOKEN_NOT_RECOGNIZED),
		CKR_NAMED(CKR_TOKEN_WRITE_PROTECTED), CKR_NAMED(CKR_USER_NOT_LOGGED_IN),
		CKR_NAMED(CKR_DOMAIN_PARAMS_INVALID), CKR_NAMED(CKR_BUFFER_TOO_SMALL),
		CKR_NAMED(CKR_CRYPTOKI_NOT_INITIALIZED), CKR_NAMED(CKR_FUNCTION_CANCELED),
		CKR_NAMED(CKR_PIN_INCORRECT), CKR_NAMED(CKR_PIN_LOCKED),
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (names[i].rv == rv)
			return names[i].name;
	}
	return "see the module's documentation";
}

enum p11s_err raw_fail(const struct p11ks *k, const char *what, CK_RV rv)
{
	return err_set(P11S_E_TOKEN, "%s failed on token '%s' (module %s): CKR 0x%lX (%s)",
		       what, p11_token_label(k), k->module, rv, ckr_name(rv));
}


void raw_close(struct raw *r)
{
	if (r->have_session)
		r->f->C_CloseSession(r->session);
	if (r->own_init)
		r->f->C_Finalize(NULL);
	if (r->dl != NULL)
		dlclose(r->dl);
	memset(r, 0, sizeof(*r));
}

/* A fixed-width, blank-padded PKCS#11 string equals s (libp11 trims them). */
static int padded_eq(const unsigned char *field, size_t n, const char *s)
{
	size_t len = s != NULL ? strlen(s) : 0, i;

	if (len > n || (len > 0 && memcmp(field, s, len) != 0))
		return 0;
	for (i = len; i < n; i++) {
		if (field[i] != ' ')
			return 0;
	}
	return 1;
}

static int raw_is_our_token(const struct p11ks *k, struct raw *r, CK_SLOT_ID slot)
{
	CK_TOKEN_INFO ti;

	if (r->f->C_GetTokenInfo(slot, &ti) != CKR_OK)
		return 0;
	return padded_eq(ti.label, sizeof(ti.label), k->token->label) &&
	       padded_eq(ti.serialNumber, sizeof(ti.serialNumber), k->token->serialnr);
}

/*
 * Our token's slot as this function list numbers it: libp11's slot id when
 * the token there is ours (label and serial), else the one slot that holds it.
 */
static enum p11s_err raw_find_slot(const struct p11ks *k, struct raw *r)
{
	CK_SLOT_ID want = PKCS11_get_slotid_from_slot(k->token->slot), slots[64];
	CK_ULONG n = 64, i;
	unsigned int found = 0;

	if (raw_is_our_token(k, r, want)) {
		r->slot = want;
		return P11S_OK;
	}
	if (r->f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK || n > 64)
		return err_set(P11S_E_TOKEN, "module %s does not list its slots to a second caller",
			       k->module);
	for (i = 0; i < n; i++) {
		if (raw_is_our_token(k, r, slots[i]) && found++ == 0)
			r->slot = slots[i];
	}
	if (found != 1)
		return err_set(P11S_E_TOKEN, "module %s shows token '%s' %s to a second caller",
			       k->module, p11_token_label(k), found == 0 ? "not at all" : "twice");
	return P11S_OK;
}

static enum p11s_err raw_functions(const struct p11ks *k, struct raw *r)
{
	CK_C_GetFunctionList get_list;
	void *sym;

	/* The module is loaded: RTLD_NOLOAD hands us libp11's copy, never a second one. */
	r->dl = dlopen(k->module, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
	sym = r->dl != NULL ? dlsym(r->dl, "C_GetFunctionList") : NULL;
	if (sym == NULL)
		return err_set(P11S_E_TOKEN, "cannot reach C_GetFunctionList of module %s", k->module);
	memcpy(&get_list, &sym, sizeof(get_list));	/* POSIX: a symbol is a function */
	if (get_list(&r->f) != CKR_OK || r->f == NULL)
		return err_set(P11S_E_TOKEN, "module %s gave no function list", k->module);
	if (r->f->version.major < 2)
		return err_set(P11S_E_TOKEN, "module %s speaks PKCS#11 %u.%u: 2.x is needed",
			       k->module, r->f->version.major, r->f->version.minor);
	return P11S_OK;
}

/* p11-kit's proxy gives each C_GetFunctionList caller a fresh instance,
 * which needs its own C_Initialize (and C_Finalize after). */
static enum p11s_err raw_init(const struct p11ks *k, struct raw *r)
{
	CK_ULONG n = 0;
	CK_RV rv;

	rv = r->f->C_GetSlotList(CK_TRUE, NULL, &n);
	if (rv != CKR_CRYPTOKI_NOT_INITIALIZED)
		return P11S_OK;
	rv = r->f->C_Initialize(NULL);
	if (rv != CKR_OK)
		return raw_fail(k, "initialising the module a second time", rv);
	r->own_init = 1;
	return P11S_OK;
}

/* A session of our own (read-write if rw); it shares libp11's login, which
 * belongs to the application, not to a session. */
enum p11s_err raw_open(const struct p11ks *k, struct raw *r, int rw)
{
	enum p11s_err rc;
	CK_RV rv;

	memset(r, 0, sizeof(*r));
	rc = raw_functions(k, r);
	if (rc == P11S_OK)
		rc = raw_init(k, r);
	if (rc == P11S_OK)
		rc = raw_find_slot(k, r);
	if (rc != P11S_OK)
		goto fail;
	rv = r->f->C_OpenSession(r->slot, CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0), NULL,
				 NULL, &r->session);
	if (rv != CKR_OK) {
		rc = raw_fail(k, rw ? "opening a read-write session" : "opening a session", rv);
		goto fail;
	}
	r->have_session = 1;
	return P11S_OK;
fail:
	raw_close(r);
	return rc;
}

/* The slot's mechanisms (C_GetMechanismList); *list is free()d by the caller.
 * Ask C_GetMechanismInfo only about listed ones: some modules (tpm2-pkcs11)
 * log an error on stderr for every mechanism they lack. */
enum p11s_err raw_mech_list(const struct p11ks *k, struct raw *r, CK_MECHANISM_TYPE **list,
			    CK_ULONG *n)
{
	CK_RV rv;

	*list = NULL;
	*n = 0;
	rv = r->f->C_GetMechanismList(r->slot, NULL, n);
	if (rv != CKR_OK)
		return raw_fail(k, "listing the mechanisms", rv);
	if (*n > RAW_MECHS_MAX)
		return err_set(P11S_E_TOKEN, "module %s says it has %lu mechanisms: too many",
			       k->module, *n);
	*list = calloc(*n + 1, sizeof(**list));
	if (*list == NULL)
		return err_set(P11S_E_NOMEM, "out of memory listing the mechanisms");
	rv = r->f->C_GetMechanismList(r->slot, *list, n);
	if (rv == CKR_OK)
		return P11S_OK;
	free(*list);
	*list = NULL;
	return raw_fail(k, "listing the mechanisms", rv);
}

int raw_mech_listed(const CK_MECHANISM_TYPE *list, CK_ULONG n, CK_MECHANISM_TYPE mech)
{
	CK_ULONG i;

	for (i = 0; i < n; i++) {
		if (list[i] == mech)
			return 1;
	}
	return 0;
}

#define RAW_SAME_ID_MAX	64
#define RAW_CERT_MAX	(64 * 1024)

/* The certificates with this CKA_ID. */
static enum p11s_err find_certs_by_id(const struct p11ks *k, struct raw *r,
				      const unsigned char *id, size_t id_len,
				      CK_OBJECT_HANDLE *objs, CK_ULONG *n)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_RV rv;
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_ID, (void *)id, id_len },
	};

	*n = 0;
	rv = r->f->C_FindObjectsInit(r->session, tmpl, 2);
	if (rv != CKR_OK)
		return raw_fail(k, "searching the certificates", rv);
	rv = r->f->C_FindObjects(r->session, objs, RAW_SAME_ID_MAX, n);
	r->f->C_FindObjectsFinal(r->session);
	if (rv != CKR_OK)
		return raw_fail(k, "searching the certificates", rv);
	if (*n > RAW_SAME_ID_MAX)
		return err_set(P11S_E_TOKEN, "module %s found more objects than it was asked for",
			       k->module);
	return P11S_OK;
}

/* Object obj's CKA_VALUE, malloc'd; NULL if unreadable or absurd. */
static unsigned char *cert_value(struct raw *r, CK_OBJECT_HANDLE obj, size_t *len)
{
	CK_ATTRIBUTE a = { CKA_VALUE, NULL, 0 };
	unsigned char *v;

	*len = 0;
	if (r->f->C_GetAttributeValue(r->session, obj, &a, 1) != CKR_OK ||
	    a.ulValueLen == 0 || a.ulValueLen > RAW_CERT_MAX)
		return NULL;
	v = malloc(a.ulValueLen);
	if (v == NULL)
		return NULL;
	a.pValue = v;
	if (r->f->C_GetAttributeValue(r->session, obj, &a, 1) != CKR_OK ||
	    a.ulValueLen > RAW_CERT_MAX) {
		free(v);
		return NULL;
	}
	*len = a.ulValueLen;
	return v;
}

/* 1 if object obj holds exactly der. */
static int cert_value_is(struct raw *r, CK_OBJECT_HANDLE obj, const unsigned char *der, int len)
{
	size_t n;
	unsigned char *v = cert_value(r, obj, &n);
	int same = v != NULL && n == (size_t)len && memcmp(v, der, n) == 0;

	free(v);
	return same;
}

struct der_fields {
	unsigned char *cert, *subject, *issuer, *serial;
	int cert_len, subject_len, issuer_len, serial_len;
};

static void der_fields_free(struct der_fields *d)
{
	OPENSSL_free(d->cert);
	OPENSSL_free(d->subject);
	OPENSSL_free(d->issuer);
	OPENSSL_free(d->serial);
}

static enum p11s_err der_fields_of(X509 *cert, struct der_fields *d)
{
	memset(d, 0, sizeof(*d));
	d->cert_len = i2d_X509(cert, &d->cert);
	d->subject_len = i2d_X509_NAME(X509_get_subject_name(cert), &d->subject);
	d->issuer_len = i2d_X509_NAME(X509_get_issuer_name(cert), &d->issuer);
	d->serial_len = i2d_ASN1_INTEGER(X509_get0_serialNumber(cert), &d->serial);
	if (d->cert_len > 0 && d->subject_len > 0 && d->issuer_len > 0 && d->serial_len > 0)
		return P11S_OK;
	der_fields_free(d);
	return err_set(P11S_E_INTERNAL, "cannot encode the certificate for the token");
}

static enum p11s_err create_cert(const struct p11ks *k, struct raw *r, const struct der_fields *d,
				 enum raw_cert_kind kind, const char *label,
				 const unsigned char *id, size_t id_len)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE type = CKC_X_509;
	CK_ULONG category = kind;
	CK_OBJECT_HANDLE obj;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_RV rv;
	CK_ATTRIBUTE a[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_CERTIFICATE_TYPE, &type, sizeof(type) },
		{ CKA_TOKEN, &yes, 1 },
		{ CKA_PRIVATE, &no, 1 },
		{ CKA_ID, (void *)id, id_len },
		{ CKA_SUBJECT, d->subject, (CK_ULONG)d->subject_len },
		{ CKA_ISSUER, d->issuer, (CK_ULONG)d->issuer_len },
		{ CKA_SERIAL_NUMBER, d->serial, (CK_ULONG)d->serial_len },
		{ CKA_VALUE, d->cert, (CK_ULONG)d->cert_len },
		{ CKA_CERTIFICATE_CATEGORY, &category, sizeof(category) },
		{ CKA_LABEL, (void *)label, label ? strlen(label) : 0 },
	};
	CK_ULONG n = sizeof(a) / sizeof(a[0]) - (label == NULL || label[0] == '\0');

	rv = r->f->C_CreateObject(r->session, a, n, &obj);
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_VALUE_INVALID ||
	    rv == CKR_TEMPLATE_INCONSISTENT) {
		/* A v2.11 module, or one that will not take a category: without it. */
		a[9] = a[10];
		rv = r->f->C_CreateObject(r->session, a, n - 1, &obj);
	}
	return rv == CKR_OK ? P11S_OK : raw_fail(k, "storing the certificate", rv);
}

enum p11s_err raw_store_cert(const struct p11ks *k, X509 *cert, enum raw_cert_kind kind,
			     const char *label, const unsigned char *id, size_t id_len)
{
	CK_OBJECT_HANDLE objs[RAW_SAME_ID_MAX];
	CK_ULONG n = 0, i;
	CK_RV rv;
	unsigned char same[RAW_SAME_ID_MAX] = { 0 };
	struct der_fields d;
	struct raw r;
	enum p11s_err rc;
	int have = 0;

	rc = der_fields_of(cert, &d);
	if (rc != P11S_OK)
		return rc;
	rc = raw_open(k, &r, 1);
	if (rc != P11S_OK)
		goto out_fields;
	rc = find_certs_by_id(k, &r, id, id_len, objs, &n);
	for (i = 0; rc == P11S_OK && i < n; i++) {
		same[i] = (unsigned char)cert_value_is(&r, objs[i], d.cert, d.cert_len);
		have |= same[i];
	}
	if (rc == P11S_OK && !have)
		rc = create_cert(k, &r, &d, kind, label, id, id_len);
	/* Only now that the new one is safe do the old ones go (also after an
	 * earlier run that stored it but stopped before this step). One that
	 * will not go stays beside it until the next store: the new one is
	 * issued, verified and stored, so the enrollment itself succeeded. */
	for (i = 0; rc == P11S_OK && kind == RAW_CERT_OURS && i < n; i++) {
		if (same[i])
			continue;
		rv = r.f->C_DestroyObject(r.session, objs[i]);
		if (rv != CKR_OK)
			log_warn("cannot remove the older certificate from token '%s': CKR 0x%lX (%s); "
				 "it stays beside the new one until the next renewal",
				 p11_token_label(k), rv, ckr_name(rv));
	}
	raw_close(&r);
out_fields:
	der_fields_free(&d);
	return rc;
}

enum p11s_err raw_certs_by_id(const struct p11ks *k, const unsigned char *id, size_t id_len,
			      STACK_OF(X509) **out)
{
	CK_OBJECT_HANDLE objs[RAW_SAME_ID_MAX];
	CK_ULONG n = 0, i;
	STACK_OF(X509) *certs;
	const unsigned char *p;
	unsigned char *der;
	struct raw r;
	size_t len;
	X509 *x;
	enum p11s_err rc;

	*out = NULL;
	certs = sk_X509_new_null();
	if (certs == NULL)
		return err_set(P11S_E_NOMEM, "out of memory");
	rc = raw_open(k, &r, 0);
	if (rc == P11S_OK) {
		rc = find_certs_by_id(k, &r, id, id_len, objs, &n);
		for (i = 0; rc == P11S_OK && i < n; i++) {
			der = cert_value(&r, objs[i], &len);
			p = der;
			x = der != NULL ? d2i_X509(NULL, &p, (long)len) : NULL;
			free(der);
			/* A certificate object that does not parse is not ours to judge. */
			if (x != NULL && !sk_X509_push(certs, x)) {
				X509_free(x);
				rc = err_set(P11S_E_NOMEM, "out of memory");
			}
		}
		raw_close(&r);
	}
	if (rc != P11S_OK) {
		sk_X509_pop_free(certs, X509_free);
		return rc;
	}
	*out = certs;
	return P11S_OK;
}

enum p11s_err raw_login(const struct p11ks *k, struct raw *r, const char *pin, CK_RV *ckr)
{
	CK_TOKEN_INFO ti;
	enum p11s_err rc;
	CK_RV rv;

	*ckr = CKR_OK;
	rc = raw_open(k, r, 0);
	if (rc != P11S_OK)
		return rc;
	/* A locked PIN is not tried, and the last try before the lock is left
	 * to a person (at a PIN pad: pin NULL): p11scep often runs from a timer
	 * with a PIN in a file. */
	if (r->f->C_GetTokenInfo(r->slot, &ti) == CKR_OK) {
		if (ti.flags & CKF_USER_PIN_LOCKED) {
			*ckr = CKR_PIN_LOCKED;
			raw_close(r);
			return P11S_E_PIN;
		}
		if ((ti.flags & CKF_USER_PIN_FINAL_TRY) && pin != NULL) {
			raw_close(r);
			return err_set(P11S_E_PIN, "token '%s' has one PIN try left before it "
				       "locks: p11scep does not spend it; check the PIN and log in "
				       "once with the token's own tool (pkcs11-tool --login --test)",
				       p11_token_label(k));
		}
	}
	rv = r->f->C_Login(r->session, CKU_USER, (CK_UTF8CHAR *)pin, pin ? (CK_ULONG)strlen(pin) : 0);
	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
		return P11S_OK;
	*ckr = rv;
	raw_close(r);
	return P11S_E_PIN;
}

void raw_logout(struct raw *r)
{
	if (r->have_session)
		r->f->C_Logout(r->session);
	raw_close(r);
}
