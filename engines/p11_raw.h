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
 * private, so EC key generation calls the module directly. The few PKCS#11
 * v2.40 types it needs are declared here (the headers are not a build
 * dependency); their layout is the Unix ABI of pkcs11.h: CK_ULONG is unsigned
 * long, structures are not packed.
 */
struct ck_attr {
	ck_ulong type;
	void *value;
	ck_ulong len;
};

struct ck_mech {
	ck_ulong mech;
	void *param;
	ck_ulong param_len;
};

struct ck_mech_info {
	ck_ulong min_size;
	ck_ulong max_size;
	ck_ulong flags;
};

struct ck_info {
	unsigned char cryptoki_version[2];
	unsigned char manufacturer[32];
	ck_ulong flags;
	unsigned char description[32];
	unsigned char library_version[2];
};

struct ck_token_info {
	unsigned char label[32];
	unsigned char manufacturer[32];
	unsigned char model[16];
	unsigned char serial[16];
	ck_ulong flags;
	ck_ulong counts[10];		/* sessions, PIN lengths, memory */
	unsigned char versions[4];	/* hardware, firmware */
	unsigned char utc_time[16];
};

typedef ck_ulong (*ck_unused_fn)(void);

/* CK_FUNCTION_LIST in the standard's order; slots we never call are unused[]. */
struct ck_functions {
	unsigned char version[2];
	ck_ulong (*C_Initialize)(void *args);
	ck_ulong (*C_Finalize)(void *reserved);
	ck_ulong (*C_GetInfo)(struct ck_info *info);
	ck_unused_fn unused3;
	ck_ulong (*C_GetSlotList)(unsigned char present, ck_ulong *slots, ck_ulong *count);
	ck_unused_fn unused5;
	ck_ulong (*C_GetTokenInfo)(ck_ulong slot, struct ck_token_info *info);
	ck_ulong (*C_GetMechanismList)(ck_ulong slot, ck_ulong *mechs, ck_ulong *count);
	ck_ulong (*C_GetMechanismInfo)(ck_ulong slot, ck_ulong mech, struct ck_mech_info *info);
	ck_unused_fn unused9_11[3];
	ck_ulong (*C_OpenSession)(ck_ulong slot, ck_ulong flags, void *app,
				  ck_ulong (*notify)(ck_ulong, ck_ulong, void *),
				  ck_ulong *session);
	ck_ulong (*C_CloseSession)(ck_ulong session);
	ck_unused_fn unused15_18[4];
	ck_ulong (*C_Login)(ck_ulong session, ck_ulong user, unsigned char *pin, ck_ulong len);
	ck_ulong (*C_Logout)(ck_ulong session);
	ck_ulong (*C_CreateObject)(ck_ulong session, struct ck_attr *attrs, ck_ulong n,
				   ck_ulong *obj);
	ck_unused_fn unused22;
	ck_ulong (*C_DestroyObject)(ck_ulong session, ck_ulong obj);
	ck_unused_fn unused24;
	ck_ulong (*C_GetAttributeValue)(ck_ulong session, ck_ulong obj, struct ck_attr *attrs,
					ck_ulong n);
	ck_unused_fn unused25;
	ck_ulong (*C_FindObjectsInit)(ck_ulong session, struct ck_attr *attrs, ck_ulong n);
	ck_ulong (*C_FindObjects)(ck_ulong session, ck_ulong *objs, ck_ulong max, ck_ulong *n);
	ck_ulong (*C_FindObjectsFinal)(ck_ulong session);
	ck_unused_fn unused29_58[30];
	ck_ulong (*C_GenerateKeyPair)(ck_ulong session, struct ck_mech *mech,
				      struct ck_attr *pub, ck_ulong npub,
				      struct ck_attr *priv, ck_ulong npriv,
				      ck_ulong *pub_obj, ck_ulong *priv_obj);
	ck_unused_fn unused60_67[8];
};

#define CKR_OK				0x000UL
#define CKR_MECHANISM_INVALID		0x070UL
#define CKR_CRYPTOKI_NOT_INITIALIZED	0x190UL
#define CKF_RW_SESSION			0x002UL
#define CKF_SERIAL_SESSION		0x004UL
#define CKF_SIGN			0x800UL
#define CKF_GENERATE_KEY_PAIR		0x10000UL
#define CKF_DERIVE			0x80000UL
#define CKO_PUBLIC_KEY			2UL
#define CKO_PRIVATE_KEY			3UL
#define CKK_EC				3UL
#define CKA_CLASS			0x000UL
#define CKA_TOKEN			0x001UL
#define CKA_PRIVATE			0x002UL
#define CKA_LABEL			0x003UL
#define CKA_KEY_TYPE			0x100UL
#define CKA_ID				0x102UL
#define CKA_SENSITIVE			0x103UL
#define CKA_SIGN			0x108UL
#define CKA_VERIFY			0x10AUL
#define CKA_DERIVE			0x10CUL
#define CKA_EXTRACTABLE			0x162UL
#define CKA_EC_PARAMS			0x180UL
#define CKM_EC_KEY_PAIR_GEN		0x1040UL
#define CKM_ECDSA			0x1041UL
#define CKM_ECDH1_DERIVE		0x1050UL
/* For the RSA size check and token-info. */
#define CKR_ATTRIBUTE_SENSITIVE		0x011UL
#define CK_UNAVAILABLE			(~0UL)
#define CKF_ENCRYPT			0x100UL
#define CKF_DECRYPT			0x200UL
#define CKF_VERIFY			0x2000UL
#define CKO_CERTIFICATE			1UL
#define CKK_RSA				0UL
#define CKC_X_509			0UL
#define CKA_VALUE			0x011UL
#define CKA_ISSUER			0x081UL
#define CKA_SERIAL_NUMBER		0x082UL
#define CKA_SUBJECT			0x101UL
#define CKA_CERTIFICATE_TYPE		0x080UL
#define CKA_MODULUS			0x120UL
#define CKA_MODULUS_BITS		0x121UL
#define CKA_LOCAL			0x163UL
#define CKA_NEVER_EXTRACTABLE		0x164UL
#define CKA_ALWAYS_SENSITIVE		0x165UL
#define CKM_RSA_PKCS_KEY_PAIR_GEN	0x000UL
#define CKM_RSA_PKCS			0x001UL
#define CKM_SHA256_RSA_PKCS		0x040UL
#define CKM_SHA512_RSA_PKCS		0x042UL


enum p11s_err raw_fail(const struct p11ks *k, const char *what, ck_ulong rv);
enum p11s_err raw_open(const struct p11ks *k, struct raw *r, int rw);
void raw_close(struct raw *r);
enum p11s_err raw_mech_list(const struct p11ks *k, struct raw *r, ck_ulong **list,
				   ck_ulong *n);
int raw_mech_listed(const ck_ulong *list, ck_ulong n, ck_ulong mech);
#define RAW_MECHS_MAX	4096

/*
 * cert beside a key (CKA_ID id, CKA_LABEL label, which may be NULL): stored
 * unless an identical one is there, then every other certificate with that
 * ID destroyed. One search by ID instead of listing every certificate of the
 * token, which costs libp11 0.4.12 a read and parse of each.
 */
/*
 * Log in to the token through the module, in a session r of our own that
 * stays open while the login lasts (closing a token's last session logs
 * out). libp11 0.4.12's PKCS11_login would keep a copy of the PIN until the
 * slot is released; the login belongs to the application, so libp11's own
 * sessions share it. *ckr is the module's answer when it fails.
 */
enum p11s_err raw_login(const struct p11ks *k, struct raw *r, const char *pin, ck_ulong *ckr);
/* C_Logout (if r is open) and the session closed. */
void raw_logout(struct raw *r);

enum p11s_err raw_store_cert(const struct p11ks *k, X509 *cert, const char *label,
			     const unsigned char *id, size_t id_len);
/* The certificates with this CKA_ID, read from the token now (libp11 0.4.12
 * lists what it read once, so it misses what raw_store_cert changed). */
enum p11s_err raw_certs_by_id(const struct p11ks *k, const unsigned char *id, size_t id_len,
			      STACK_OF(X509) **out);

#endif
