/* p11scep token-info: what the module and token say of themselves, read
 * through the module's own function list. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libp11.h>

#include "p11_raw.h"

/* What token-info reads stops here: a module's answers are not trusted. */
#define INFO_OBJS_MAX	1024
#define INFO_ATTR_MAX	(1024 * 1024)

/* A blank-padded PKCS#11 string as printable text. */
static void info_str(char *dst, size_t n, const unsigned char *src, size_t len)
{
	size_t i;

	while (len > 0 && (src[len - 1] == ' ' || src[len - 1] == '\0'))
		len--;
	for (i = 0; i < len && i + 1 < n; i++)
		dst[i] = src[i] < 0x20 || src[i] == 0x7f ? '?' : (char)src[i];
	dst[i] = '\0';
}

static void info_library(struct raw *r, struct ks_info *out)
{
	CK_INFO ci;

	if (r->f->C_GetInfo(&ci) != CKR_OK)
		return;
	info_str(out->lib_manufacturer, sizeof(out->lib_manufacturer), ci.manufacturerID,
		 sizeof(ci.manufacturerID));
	info_str(out->lib_description, sizeof(out->lib_description), ci.libraryDescription,
		 sizeof(ci.libraryDescription));
	out->cryptoki_major = ci.cryptokiVersion.major;
	out->cryptoki_minor = ci.cryptokiVersion.minor;
	out->lib_major = ci.libraryVersion.major;
	out->lib_minor = ci.libraryVersion.minor;
}

static const struct {
	CK_FLAGS bit;
	const char *name;
} token_flags[] = {
	{ CKF_TOKEN_INITIALIZED, "initialized" }, { CKF_LOGIN_REQUIRED, "login-required" },
	{ CKF_USER_PIN_INITIALIZED, "user-pin-set" }, { CKF_RNG, "rng" },
	{ CKF_WRITE_PROTECTED, "write-protected" },
	{ CKF_PROTECTED_AUTHENTICATION_PATH, "protected-auth-path" },
	{ CKF_CLOCK_ON_TOKEN, "clock" }, { CKF_USER_PIN_COUNT_LOW, "user-pin-count-low" },
	{ CKF_USER_PIN_FINAL_TRY, "user-pin-final-try" },
	{ CKF_USER_PIN_LOCKED, "user-pin-locked" },
	{ CKF_USER_PIN_TO_BE_CHANGED, "user-pin-to-be-changed" },
	{ CKF_SO_PIN_LOCKED, "so-pin-locked" },
};

static enum p11s_err info_token(const struct p11ks *k, struct raw *r, struct ks_info *out)
{
	CK_TOKEN_INFO ti;
	CK_RV rv;
	size_t i;

	rv = r->f->C_GetTokenInfo(r->slot, &ti);
	if (rv != CKR_OK)
		return raw_fail(k, "reading the token information", rv);
	info_str(out->label, sizeof(out->label), ti.label, sizeof(ti.label));
	info_str(out->manufacturer, sizeof(out->manufacturer), ti.manufacturerID,
		 sizeof(ti.manufacturerID));
	info_str(out->model, sizeof(out->model), ti.model, sizeof(ti.model));
	info_str(out->serial, sizeof(out->serial), ti.serialNumber, sizeof(ti.serialNumber));
	for (i = 0; i < sizeof(token_flags) / sizeof(token_flags[0]); i++) {
		if ((ti.flags & token_flags[i].bit) && out->n_flags < KS_INFO_FLAGS)
			out->flags[out->n_flags++] = token_flags[i].name;
	}
	return P11S_OK;
}

/* The mechanisms p11scep's key operations come down to, with libp11 0.4.12:
 * OpenSSL hashes, the token signs or decrypts the raw block. */
static const struct {
	CK_MECHANISM_TYPE mech;
	CK_FLAGS need;
	const char *name, *ckm, *use;
} used_mechs[] = {
	{ CKM_RSA_PKCS_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR, "RSA key generation",
	  "CKM_RSA_PKCS_KEY_PAIR_GEN", "new RSA keys" },
	{ CKM_RSA_PKCS, CKF_SIGN | CKF_DECRYPT, "RSA PKCS#1 v1.5", "CKM_RSA_PKCS",
	  "RSA signatures, decrypting replies" },
	{ CKM_SHA256_RSA_PKCS, CKF_SIGN, "SHA-256 with RSA", "CKM_SHA256_RSA_PKCS",
	  "not needed: OpenSSL hashes, CKM_RSA_PKCS signs" },
	{ CKM_SHA512_RSA_PKCS, CKF_SIGN, "SHA-512 with RSA", "CKM_SHA512_RSA_PKCS",
	  "not needed: OpenSSL hashes, CKM_RSA_PKCS signs" },
	{ CKM_EC_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR, "EC key generation",
	  "CKM_EC_KEY_PAIR_GEN", "new EC keys" },
	{ CKM_ECDSA, CKF_SIGN, "ECDSA", "CKM_ECDSA", "EC signatures" },
	{ CKM_ECDH1_DERIVE, CKF_DERIVE, "ECDH", "CKM_ECDH1_DERIVE",
	  "EC replies by key agreement (else password-based)" },
};

static const struct {
	CK_FLAGS bit;
	const char *name;
} mech_flag_names[] = {
	{ CKF_HW, "hw" }, { CKF_GENERATE_KEY_PAIR, "generate" }, { CKF_SIGN, "sign" },
	{ CKF_VERIFY, "verify" }, { CKF_ENCRYPT, "encrypt" }, { CKF_DECRYPT, "decrypt" },
	{ CKF_DERIVE, "derive" },
};

static void mech_flags(char *buf, size_t n, CK_FLAGS flags)
{
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < sizeof(mech_flag_names) / sizeof(mech_flag_names[0]); i++) {
		if (!(flags & mech_flag_names[i].bit))
			continue;
		if (buf[0] != '\0')
			p11_append_clean(buf, n, " ");
		p11_append_clean(buf, n, mech_flag_names[i].name);
	}
}

static void info_mech(struct raw *r, const CK_MECHANISM_TYPE *list, CK_ULONG n, size_t i,
		      struct ks_mech *m)
{
	CK_MECHANISM_INFO mi;

	m->name = used_mechs[i].name;
	m->ckm = used_mechs[i].ckm;
	m->use = used_mechs[i].use;
	m->offered = raw_mech_listed(list, n, used_mechs[i].mech);
	if (!m->offered || r->f->C_GetMechanismInfo(r->slot, used_mechs[i].mech, &mi) != CKR_OK)
		return;
	m->min_size = mi.ulMinKeySize;
	m->max_size = mi.ulMaxKeySize;
	m->usable = (mi.flags & used_mechs[i].need) == used_mechs[i].need;
	mech_flags(m->flags, sizeof(m->flags), mi.flags);
}

static enum p11s_err info_mechs(const struct p11ks *k, struct raw *r, struct ks_info *out)
{
	CK_MECHANISM_TYPE *list;
	CK_ULONG n;
	size_t i;
	enum p11s_err rc;

	rc = raw_mech_list(k, r, &list, &n);
	if (rc != P11S_OK)
		return rc;
	for (i = 0; i < sizeof(used_mechs) / sizeof(used_mechs[0]) && i < KS_INFO_MECHS; i++)
		info_mech(r, list, n, i, &out->mechs[out->n_mechs++]);
	free(list);
	return P11S_OK;
}

/* One attribute's value, allocated with a NUL after it: 1, or 0 when the
 * module gives none, or -1 out of memory. */
static int attr_get(struct raw *r, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type,
		    unsigned char **val, size_t *len)
{
	CK_ATTRIBUTE a = { type, NULL, 0 };
	CK_ULONG size;
	unsigned char *v;

	*val = NULL;
	*len = 0;
	if (r->f->C_GetAttributeValue(r->session, obj, &a, 1) != CKR_OK ||
	    a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > INFO_ATTR_MAX)
		return 0;
	size = a.ulValueLen;
	v = malloc(size + 1);
	if (v == NULL)
		return -1;
	a.pValue = v;
	if (r->f->C_GetAttributeValue(r->session, obj, &a, 1) != CKR_OK || a.ulValueLen > size) {
		free(v);
		return 0;
	}
	v[a.ulValueLen] = '\0';
	*val = v;
	*len = a.ulValueLen;
	return 1;
}

/* A CK_BBOOL attribute: 1, 0, or -1 when the module gives none. */
static int attr_bool(struct raw *r, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type)
{
	CK_BBOOL b = CK_FALSE;
	CK_ATTRIBUTE a = { type, &b, sizeof(b) };

	if (r->f->C_GetAttributeValue(r->session, obj, &a, 1) != CKR_OK || a.ulValueLen != 1)
		return -1;
	return b != 0;
}

static int attr_ulong(struct raw *r, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type,
		      CK_ULONG *v)
{
	CK_ATTRIBUTE a = { type, v, sizeof(*v) };

	*v = 0;
	return r->f->C_GetAttributeValue(r->session, obj, &a, 1) == CKR_OK &&
	       a.ulValueLen == sizeof(*v);
}

static const struct {
	int nid;
	const char *name;
	unsigned int bits;
} info_curves[] = {
	{ NID_X9_62_prime256v1, "P-256", 256 }, { NID_secp384r1, "P-384", 384 },
	{ NID_secp521r1, "P-521", 521 }, { NID_secp224r1, "P-224", 224 },
	{ NID_X9_62_prime192v1, "P-192", 192 },
};

/* CKA_EC_PARAMS holds the curve's OID (namedCurve). */
static void info_ec(const unsigned char *params, size_t len, struct ks_object *o)
{
	const unsigned char *p = params;
	ASN1_OBJECT *oid = len <= INFO_ATTR_MAX ? d2i_ASN1_OBJECT(NULL, &p, (long)len) : NULL;
	int nid = oid != NULL ? OBJ_obj2nid(oid) : NID_undef;
	size_t i;

	ASN1_OBJECT_free(oid);
	snprintf(o->key_type, sizeof(o->key_type), "EC");
	for (i = 0; i < sizeof(info_curves) / sizeof(info_curves[0]); i++) {
		if (info_curves[i].nid == nid) {
			snprintf(o->key_type, sizeof(o->key_type), "EC %s", info_curves[i].name);
			o->bits = info_curves[i].bits;
		}
	}
}

static unsigned int modulus_bits(const unsigned char *m, size_t len)
{
	BIGNUM *bn = BN_bin2bn(m, (int)len, NULL);
	unsigned int bits = bn != NULL ? (unsigned int)BN_num_bits(bn) : 0;

	BN_free(bn);
	return bits;
}

static int info_key(struct raw *r, CK_OBJECT_HANDLE obj, struct ks_object *o)
{
	unsigned char *v;
	size_t len;
	CK_KEY_TYPE type;
	CK_ULONG bits;
	int got = 0;

	o->sensitive = attr_bool(r, obj, CKA_SENSITIVE);
	o->always_sensitive = attr_bool(r, obj, CKA_ALWAYS_SENSITIVE);
	o->extractable = attr_bool(r, obj, CKA_EXTRACTABLE);
	o->never_extractable = attr_bool(r, obj, CKA_NEVER_EXTRACTABLE);
	o->local = attr_bool(r, obj, CKA_LOCAL);
	snprintf(o->key_type, sizeof(o->key_type), "?");
	if (!attr_ulong(r, obj, CKA_KEY_TYPE, &type))
		return 0;
	if (type == CKK_EC) {
		got = attr_get(r, obj, CKA_EC_PARAMS, &v, &len);
		if (got > 0)
			info_ec(v, len, o);
		else
			snprintf(o->key_type, sizeof(o->key_type), "EC");
		free(v);
		return got < 0 ? -1 : 0;
	}
	if (type != CKK_RSA) {
		snprintf(o->key_type, sizeof(o->key_type), "type 0x%lX", type);
		return 0;
	}
	snprintf(o->key_type, sizeof(o->key_type), "RSA");
	if (attr_ulong(r, obj, CKA_MODULUS_BITS, &bits) && bits > 0 && bits <= 65536) {
		o->bits = (unsigned int)bits;
		return 0;
	}
	got = attr_get(r, obj, CKA_MODULUS, &v, &len);
	if (got > 0)
		o->bits = modulus_bits(v, len);
	free(v);
	return got < 0 ? -1 : 0;
}

static int info_cert(struct raw *r, CK_OBJECT_HANDLE obj, struct ks_object *o)
{
	const unsigned char *p;
	unsigned char *v;
	size_t len;
	CK_CERTIFICATE_TYPE type;
	CK_ULONG cat;
	int got;

	if (!attr_ulong(r, obj, CKA_CERTIFICATE_TYPE, &type) || type != CKC_X_509)
		return 0;
	o->category = attr_ulong(r, obj, CKA_CERTIFICATE_CATEGORY, &cat) && cat <= 3 ?
		      (int)cat : -1;
	got = attr_get(r, obj, CKA_VALUE, &v, &len);
	if (got > 0) {
		p = v;
		o->cert = d2i_X509(NULL, &p, (long)len);
		ERR_clear_error();
	}
	free(v);
	return got < 0 ? -1 : 0;
}

/* Control characters in a label from the token become '?'. */
static void clean_label(char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
	}
}

static enum p11s_err info_object(struct raw *r, CK_OBJECT_HANDLE obj, enum ks_obj_class cls,
				 struct ks_object *o)
{
	unsigned char *label;
	size_t len;
	int got;

	memset(o, 0, sizeof(*o));
	o->cls = cls;
	o->sensitive = o->always_sensitive = o->extractable = -1;
	o->never_extractable = o->local = -1;
	got = attr_get(r, obj, CKA_LABEL, &label, &len);
	o->label = (char *)label;
	clean_label(o->label);
	if (got >= 0)
		got = attr_get(r, obj, CKA_ID, &o->id, &o->id_len);
	o->is_private = attr_bool(r, obj, CKA_PRIVATE);
	if (got >= 0)
		got = cls == KS_OBJ_CERT ? info_cert(r, obj, o) : info_key(r, obj, o);
	if (got < 0)
		return err_set(P11S_E_NOMEM, "out of memory reading the token's objects");
	return P11S_OK;
}

/* The handles of every object of a class (those the session may see). */
static enum p11s_err find_class(const struct p11ks *k, struct raw *r, CK_OBJECT_CLASS cls,
				CK_OBJECT_HANDLE *objs, size_t max, size_t *n)
{
	CK_ATTRIBUTE tmpl = { CKA_CLASS, &cls, sizeof(cls) };
	CK_ULONG got;
	CK_RV rv;

	*n = 0;
	rv = r->f->C_FindObjectsInit(r->session, &tmpl, 1);
	if (rv != CKR_OK)
		return raw_fail(k, "searching the token's objects", rv);
	do {
		got = 0;
		rv = r->f->C_FindObjects(r->session, objs + *n, max - *n, &got);
		if (rv != CKR_OK || got > max - *n)
			break;
		*n += got;
	} while (got > 0 && *n < max);
	r->f->C_FindObjectsFinal(r->session);
	if (rv != CKR_OK)
		return raw_fail(k, "searching the token's objects", rv);
	if (got > max - *n)
		return err_set(P11S_E_TOKEN, "module %s found more objects than it was asked for",
			       k->module);
	return P11S_OK;
}

/* A private key's size the module keeps to itself: its public key's. */
static void bits_from_public(struct ks_info *out)
{
	struct ks_object *o, *p;
	size_t i, j;

	for (i = 0; i < out->n_objs; i++) {
		o = &out->objs[i];
		for (j = 0; o->cls == KS_OBJ_PRIVKEY && o->bits == 0 && j < out->n_objs; j++) {
			p = &out->objs[j];
			if (p->cls == KS_OBJ_PUBKEY && o->id_len > 0 &&
			    p11_id_equal(o->id, o->id_len, p->id, p->id_len) &&
			    strcmp(o->key_type, p->key_type) == 0)
				o->bits = p->bits;
		}
	}
}

/* The objects of one class, appended to out->objs. */
static enum p11s_err info_class(const struct p11ks *k, struct raw *r, CK_OBJECT_CLASS cko,
				enum ks_obj_class cls, CK_OBJECT_HANDLE *objs, struct ks_info *out)
{
	struct ks_object *more;
	size_t i, n;
	enum p11s_err rc;

	rc = find_class(k, r, cko, objs, INFO_OBJS_MAX, &n);
	if (rc != P11S_OK || n == 0)
		return rc;
	more = realloc(out->objs, (out->n_objs + n) * sizeof(*more));
	if (more == NULL)
		return err_set(P11S_E_NOMEM, "out of memory listing the token's objects");
	out->objs = more;
	for (i = 0; i < n; i++) {
		/* counted first: ks_info_free frees what a failure left half read */
		rc = info_object(r, objs[i], cls, &out->objs[out->n_objs++]);
		if (rc != P11S_OK)
			return rc;
	}
	return P11S_OK;
}

static enum p11s_err info_objects(const struct p11ks *k, struct raw *r, struct ks_info *out)
{
	CK_OBJECT_HANDLE *objs;
	enum p11s_err rc;

	objs = calloc(INFO_OBJS_MAX, sizeof(*objs));
	if (objs == NULL)
		return err_set(P11S_E_NOMEM, "out of memory listing the token's objects");
	rc = info_class(k, r, CKO_PRIVATE_KEY, KS_OBJ_PRIVKEY, objs, out);
	if (rc == P11S_OK)
		rc = info_class(k, r, CKO_PUBLIC_KEY, KS_OBJ_PUBKEY, objs, out);
	if (rc == P11S_OK)
		rc = info_class(k, r, CKO_CERTIFICATE, KS_OBJ_CERT, objs, out);
	free(objs);
	bits_from_public(out);
	return rc;
}

/* Marks the key the URI selects (as enroll would choose it), its public key
 * and certificates; or says why none is marked. */
static enum p11s_err info_select(struct p11ks *k, struct ks_info *out)
{
	struct ks_object *o;
	enum p11s_err rc;
	size_t i;

	out->selection[0] = '\0';
	if (k->uri.object == NULL && k->uri.id == NULL) {
		p11_append_clean(out->selection, sizeof(out->selection),
			     "the key URI names no key (object=, id=)");
		return P11S_OK;
	}
	if (!k->logged_in) {
		p11_append_clean(out->selection, sizeof(out->selection),
			     "not logged in: private keys are hidden, none is marked");
		return P11S_OK;
	}
	rc = p11_select_uri_key(k, NULL);
	if (rc == P11S_E_NOTFOUND || rc == P11S_E_USAGE) {
		p11_append_clean(out->selection, sizeof(out->selection), rc == P11S_E_NOTFOUND ?
			     "no private key matches the key URI" : err_msg());
		err_clear();
		return P11S_OK;
	}
	if (rc != P11S_OK)
		return rc;
	for (i = 0; i < out->n_objs; i++) {
		o = &out->objs[i];
		if (!p11_id_equal(o->id, o->id_len, k->key_id, k->key_id_len))
			continue;
		if ((o->cls == KS_OBJ_PRIVKEY || k->key_id_len == 0) &&
		    strcmp(o->label != NULL ? o->label : "", k->key_label) != 0)
			continue;
		o->selected = 1;
	}
	p11_append_clean(out->selection, sizeof(out->selection), "the key URI selects '");
	p11_append_clean(out->selection, sizeof(out->selection), k->key_label);
	p11_append_clean(out->selection, sizeof(out->selection), "' (marked *)");
	return P11S_OK;
}

enum p11s_err p11_info(struct ks *ks, struct ks_info *out)
{
	struct p11ks *k = (struct p11ks *)ks;
	const char *desc = k->token->slot->description;
	struct raw r;
	enum p11s_err rc;

	memset(out, 0, sizeof(*out));
	out->module = strdup(k->module);
	if (out->module == NULL)
		return err_set(P11S_E_NOMEM, "out of memory");
	out->logged_in = k->logged_in;
	if (desc != NULL)
		info_str(out->slot_description, sizeof(out->slot_description),
			 (const unsigned char *)desc, strlen(desc));
	rc = raw_open(k, &r, 0);
	if (rc == P11S_OK) {
		info_library(&r, out);
		rc = info_token(k, &r, out);
		if (rc == P11S_OK)
			rc = info_mechs(k, &r, out);
		if (rc == P11S_OK)
			rc = info_objects(k, &r, out);
		raw_close(&r);
	}
	if (rc == P11S_OK)
		rc = info_select(k, out);
	if (rc != P11S_OK)
		ks_info_free(out);
	return rc;
}
