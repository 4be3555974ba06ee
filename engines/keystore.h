/*
 * Key backends behind one small interface. A URI goes in, an EVP_PKEY comes
 * out: callers never name a backend and backends know nothing of SCEP.
 */
#ifndef P11SCEP_KEYSTORE_H
#define P11SCEP_KEYSTORE_H

#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"

enum ks_keytype { KS_KEY_RSA = 1, KS_KEY_EC = 2 };

struct ks_keyspec {
	enum ks_keytype type;
	unsigned int bits;		/* RSA: 2048, 3072, 4096; EC: the NIST
					 * curve's size, 256 (P-256) or 384 (P-384) */
	int fresh_id;			/* ignore the URI's id=: a new random CKA_ID
					 * (key rollover at renewal; same label) */
};

/* "rsa:2048" (or "rsa"), "rsa:3072", "rsa:4096", "ec:p256", "ec:p384", any
 * case: 0, or -1 for anything else. Clears fresh_id. (engines/keyspec.c) */
int ks_keyspec_parse(const char *s, struct ks_keyspec *spec);
#define KS_KEYSPEC_NAMES "rsa:2048, rsa:3072, rsa:4096, ec:p256 or ec:p384"

#define KS_ID_MAX 64

/* A key's CKA_ID. */
struct ks_key_id {
	unsigned char id[KS_ID_MAX];
	size_t len;
};

/*
 * Asked for the PIN when the URI carries neither pin-source nor pin-value.
 * Writes a NUL-terminated PIN into buf; returns P11S_OK or an error
 * (P11S_E_PIN when no PIN can be had). token_label names the token for a prompt.
 * With may_prompt 0 (the reader has a PIN pad) it returns P11S_E_NOTFOUND,
 * no message, where it would have prompted.
 */
typedef enum p11s_err (*ks_pin_cb)(void *arg, const char *token_label, int may_prompt,
				   char *buf, size_t buflen);

struct ks_params {
	const char *uri;	/* "pkcs11:token=...;object=...?module-path=..." */
	const char *module;	/* overrides the URI's module-path; may be NULL */
	ks_pin_cb pin_cb;	/* may be NULL: then a PIN must be in the URI */
	void *pin_arg;
	int login_optional;	/* when the URI names no PIN and pin_cb has none,
				 * open without logging in (token-info) */
};

/* ------------------------------------------------------------ token-info */

/* One mechanism p11scep uses, as the module reports it (C_GetMechanismInfo). */
struct ks_mech {
	const char *name;	/* "RSA key pair generation" */
	const char *ckm;	/* "CKM_RSA_PKCS_KEY_PAIR_GEN" */
	const char *use;	/* what p11scep needs it for */
	int offered;		/* in C_GetMechanismList */
	int usable;		/* offered with the flags p11scep needs */
	unsigned long min_size, max_size;	/* as the module gives them */
	char flags[64];		/* the flags that matter, e.g. "sign decrypt" */
};

enum ks_obj_class { KS_OBJ_PRIVKEY = 1, KS_OBJ_PUBKEY, KS_OBJ_CERT };

/* A key or certificate in the token. Attributes the module does not give
 * are -1 (flags), 0 (bits) or NULL. */
struct ks_object {
	enum ks_obj_class cls;
	char *label;
	unsigned char *id;	/* CKA_ID; id_len 0: empty */
	size_t id_len;
	char key_type[24];	/* keys: "RSA", "EC P-256", "EC", "?" */
	unsigned int bits;	/* keys: modulus or curve size */
	int is_private;		/* CKA_PRIVATE */
	int sensitive, always_sensitive, extractable, never_extractable, local;
	X509 *cert;		/* certificates: the decoded CKA_VALUE */
	int category;		/* certificates: CKA_CERTIFICATE_CATEGORY, -1 unknown */
	int selected;		/* the URI's key, its public key and certificate */
};

#define KS_INFO_FLAGS 16
#define KS_INFO_MECHS 8

struct ks_info {
	char *module;		/* the module's path */
	char lib_manufacturer[33], lib_description[33];	/* C_GetInfo */
	unsigned int lib_major, lib_minor, cryptoki_major, cryptoki_minor;
	char slot_description[65];
	char label[33], manufacturer[33], model[17], serial[17];	/* C_GetTokenInfo */
	const char *flags[KS_INFO_FLAGS];	/* token flags set, by name */
	size_t n_flags;
	int logged_in;
	struct ks_mech mechs[KS_INFO_MECHS];
	size_t n_mechs;
	struct ks_object *objs;	/* private keys, public keys, certificates */
	size_t n_objs;
	char selection[256];	/* which key the URI selects, or why none is marked */
};

/* NULL-safe; frees what a backend's info filled in. */
void ks_info_free(struct ks_info *info);

struct ks_backend;

/* Every backend's handle starts with this; the rest is the backend's own. */
struct ks {
	const struct ks_backend *be;
};

struct ks_backend {
	const char *scheme;	/* URI scheme without ':', e.g. "pkcs11" */
	/* Load, find the token, log in. *out is owned by the caller: ks_close(). */
	enum p11s_err (*open)(const struct ks_params *p, struct ks **out);
	/* NULL-safe. Callers free every EVP_PKEY they got, and every X509 or
	 * X509_REQ that holds one (X509_set_pubkey keeps a reference), before
	 * closing: libp11 crashes on a token key used after unload. */
	void (*close)(struct ks *ks);
	/*
	 * The private key the URI names; P11S_E_NOTFOUND (no message) if none.
	 * When several match the URI's label (a renewal with a new key keeps the
	 * old one until told to remove it), the URI's key is the one whose
	 * certificate (same CKA_ID) has the latest notBefore; if none of them has
	 * a certificate, P11S_E_USAGE asking for id=. The key found becomes the
	 * handle's current key.
	 */
	enum p11s_err (*find_key)(struct ks *ks, EVP_PKEY **out);
	/* The private key with this CKA_ID, whatever its label; it becomes the
	 * current key. P11S_E_NOTFOUND (no message) if none. */
	enum p11s_err (*find_key_by_id)(struct ks *ks, const struct ks_key_id *id,
					EVP_PKEY **out);
	/* The CKA_ID of the current key (the last found or generated). */
	enum p11s_err (*current_id)(struct ks *ks, struct ks_key_id *out);
	/* Remove the private key, the public key and the certificates with this
	 * CKA_ID. Refuses the current key. Callers free EVP_PKEYs of it first. */
	enum p11s_err (*remove_key)(struct ks *ks, const struct ks_key_id *id);
	/* Generate a key pair in the token (sensitive, not extractable), with the
	 * URI's object label and id (a fresh random id when the URI has none or
	 * spec->fresh_id is set). It becomes the current key. An EC key can sign
	 * and, when the module offers ECDH, derive (CMS key agreement); a type
	 * the token's mechanisms cannot make is P11S_E_TOKEN naming what lacks. */
	enum p11s_err (*generate_key)(struct ks *ks, const struct ks_keyspec *spec,
				      EVP_PKEY **out);
	/* The certificate beside the current key (same CKA_ID); P11S_E_NOTFOUND if none. */
	enum p11s_err (*find_cert)(struct ks *ks, X509 **out);
	/* Store cert beside the current key (its CKA_ID and label). An identical cert is
	 * not stored twice; an older cert with that ID is removed only after the
	 * new one is stored. The cert must carry the key's public key. */
	enum p11s_err (*store_cert)(struct ks *ks, X509 *cert);
	/* Store a CA certificate labelled by its subject's CN, ID = SHA-1 of its
	 * public key; no duplicates. (libp11 0.4.12 cannot set
	 * CKA_CERTIFICATE_CATEGORY, so it is not marked as an authority.) */
	enum p11s_err (*store_ca_cert)(struct ks *ks, X509 *cert);
	/* What the module and token say of themselves, the mechanisms p11scep
	 * uses, and the keys and certificates (private keys only when logged
	 * in); the URI's key is marked. *out is cleared first: ks_info_free. */
	enum p11s_err (*info)(struct ks *ks, struct ks_info *out);
	/* From ks_keep_open(1) to ks_close_shared(): handles opened on a module
	 * already loaded share its load and its token logins (p11scep run). */
	void (*keep_open)(void);
	void (*close_shared)(void);
};

/* Picks the backend by the URI's scheme and opens it. */
enum p11s_err ks_open(const struct ks_params *p, struct ks **out);
void ks_close(struct ks *ks);
enum p11s_err ks_find_key(struct ks *ks, EVP_PKEY **out);
enum p11s_err ks_generate_key(struct ks *ks, const struct ks_keyspec *spec, EVP_PKEY **out);
enum p11s_err ks_find_key_by_id(struct ks *ks, const struct ks_key_id *id, EVP_PKEY **out);
enum p11s_err ks_current_id(struct ks *ks, struct ks_key_id *out);
enum p11s_err ks_remove_key(struct ks *ks, const struct ks_key_id *id);
enum p11s_err ks_find_cert(struct ks *ks, X509 **out);
enum p11s_err ks_store_cert(struct ks *ks, X509 *cert);
enum p11s_err ks_store_ca_cert(struct ks *ks, X509 *cert);
enum p11s_err ks_info(struct ks *ks, struct ks_info *out);
/* For many keys in one process: modules stay loaded and tokens logged in
 * until ks_close_shared(), which runs after every handle is closed. */
void ks_keep_open(void);
void ks_close_shared(void);

extern const struct ks_backend ks_pkcs11_backend;

#endif
