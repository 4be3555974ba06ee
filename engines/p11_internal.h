/*
 * What the files of the PKCS#11 backend share: the handle and a few helpers.
 * Internal to engines/: src/ sees only keystore.h.
 */
#ifndef P11SCEP_P11_INTERNAL_H
#define P11SCEP_P11_INTERNAL_H

#include <stddef.h>

#include <libp11.h>
#include <openssl/evp.h>
#include <p11-kit/pkcs11.h>	/* the header only: p11scep does not link libp11-kit */

#include "keystore.h"
#include "uri.h"

/* The module's functions, in a session of our own on the token. */
struct raw {
	void *dl;
	CK_FUNCTION_LIST *f;
	int own_init;		/* we initialised this instance: finalise it */
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE session;
	int have_session;
};

struct p11ks {
	struct ks base;			/* first: the generic code sees only this */
	struct p11_uri uri;
	char *module;
	PKCS11_CTX *ctx;
	int loaded;
	PKCS11_SLOT *slots;
	unsigned int nslots;
	PKCS11_TOKEN *token;
	int logged_in;			/* 0: opened without a PIN (token-info) */
	int pin_refused;		/* C_Login refused the PIN given */
	char label[80];			/* the token's, printable, for messages */
	/* The current key: the one last found or generated. Certs go beside
	 * it and remove_key spares it. */
	int have_key;
	char *key_label;
	unsigned char *key_id;
	size_t key_id_len;
	EVP_PKEY *key_pub;		/* a software copy of its public key */
	/* Objects we removed that libp11 0.4.12 still lists: see is_gone(). */
	const void **gone;
	size_t ngone;
	/* Sharing (ks_keep_open): a handle that borrows the context, slots and
	 * login of its module's owner; the owner counts its borrowers per token. */
	struct p11ks *owner;
	struct token_login *logins;
	size_t nlogins;
	struct raw login;		/* a handle's own login (not shared) */
};

struct token_login {
	PKCS11_SLOT *slot;
	struct raw login;		/* the session our login lives in */
	unsigned int users;		/* borrowed handles using it now */
	int logged_in;
	int pin_refused;		/* C_Login refused a PIN: no second try */
};

/* The token's label, printable, for messages. */
const char *p11_token_label(const struct p11ks *k);
/* Appends s to buf (size n) with control characters replaced. */
void p11_append_clean(char *buf, size_t n, const char *s);
int p11_id_equal(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen);
/* The key the handle's URI names; it becomes the current key. */
enum p11s_err p11_select_uri_key(struct p11ks *k, EVP_PKEY **out);
/* The backend's info operation (p11_info.c). */
enum p11s_err p11_info(struct ks *ks, struct ks_info *out);

#endif
