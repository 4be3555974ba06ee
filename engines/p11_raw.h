/*
 * The module's own function list, for what libp11 0.4.12 cannot do (EC key
 * generation, token-info): a session of our own on the token libp11 logged
 * in to. Internal to engines/.
 */
#ifndef P11SCEP_P11_RAW_H
#define P11SCEP_P11_RAW_H

#include "p11_internal.h"

/*
 * libp11 0.4.12 generates only RSA keys and keeps the module's function list
 * private, so EC key generation calls the module directly, with the types
 * and constants of the standard pkcs11.h (p11_internal.h includes it).
 */
enum p11s_err raw_fail(const struct p11ks *k, const char *what, CK_RV rv);
enum p11s_err raw_open(const struct p11ks *k, struct raw *r, int rw);
void raw_close(struct raw *r);
enum p11s_err raw_mech_list(const struct p11ks *k, struct raw *r, CK_MECHANISM_TYPE **list,
			    CK_ULONG *n);
int raw_mech_listed(const CK_MECHANISM_TYPE *list, CK_ULONG n, CK_MECHANISM_TYPE mech);
#define RAW_MECHS_MAX	4096

/*
 * Log in to the token through the module, in a session r of our own that
 * stays open while the login lasts (closing a token's last session logs
 * out). libp11 0.4.12's PKCS11_login would keep a copy of the PIN until the
 * slot is released; the login belongs to the application, so libp11's own
 * sessions share it. pin NULL: the reader's PIN pad (C_Login without one).
 * *ckr is the module's answer when it fails, CKR_OK when no PIN was tried
 * (the token has one try left: that is for a person).
 */
enum p11s_err raw_login(const struct p11ks *k, struct raw *r, const char *pin, CK_RV *ckr);
/* C_Logout (if r is open) and the session closed. */
void raw_logout(struct raw *r);

/* What a stored certificate is to the token's user: CKA_CERTIFICATE_CATEGORY. */
enum raw_cert_kind {
	RAW_CERT_OURS = 1,	/* "token user": ours, beside our key */
	RAW_CERT_CA = 2,	/* "authority" */
};

/*
 * cert with CKA_ID id and CKA_LABEL label (may be NULL): stored unless an
 * identical one with that ID is there. For RAW_CERT_OURS every other
 * certificate with that ID is destroyed once the new one is stored; CA
 * certificates leave others be. One search by ID instead of listing every
 * certificate of the token, which costs libp11 0.4.12 a read and parse of
 * each. A module that does not know CKA_CERTIFICATE_CATEGORY gets the
 * certificate without it.
 */
enum p11s_err raw_store_cert(const struct p11ks *k, X509 *cert, enum raw_cert_kind kind,
			     const char *label, const unsigned char *id, size_t id_len);
/* The certificates with this CKA_ID, read from the token now (libp11 0.4.12
 * lists what it read once, so it misses what raw_store_cert changed). */
enum p11s_err raw_certs_by_id(const struct p11ks *k, const unsigned char *id, size_t id_len,
			      STACK_OF(X509) **out);

#endif
