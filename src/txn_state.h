/*
 * A pending transaction on disk, so that an interrupted or timed-out
 * enrollment resumes with the same transactionID and no second request.
 * One file per key (named by the SHA-256 of its public key), mode 0600,
 * written atomically. It never holds a secret: no PIN, no challenge.
 */
#ifndef P11SCEP_TXN_STATE_H
#define P11SCEP_TXN_STATE_H

#include <stddef.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"
#include "keystore.h"
#include "scep_msg.h"

struct txn_state {
	char txid[SCEP_TXID_MAX];
	char *url;
	char *ca_fingerprint;	/* hex, as given */
	char *cert_out;		/* may be NULL */
	char *chain_out;	/* may be NULL */
	int import_chain;
	int remove_old;			/* renewal: remove the old key after success */
	struct ks_key_id new_key_id;	/* renewal with a new key: its CKA_ID (len 0: none) */
	time_t created;
	int answered;		/* the CA has answered (PENDING): poll, never resend */
	X509 *signer;		/* the signer cert the request was sent with */
	X509_NAME *subject;	/* the request's: it goes into CertPoll */
};

/* DIR given by the user, else $XDG_STATE_HOME/p11scep, ~/.local/state/p11scep,
 * or /var/lib/p11scep for root. Not created here. */
const char *txn_state_dir(const char *given, char *buf, size_t buflen);

/* DIR/<sha256 of key's SubjectPublicKeyInfo>.txn */
enum p11s_err txn_state_path(const char *dir, EVP_PKEY *key, char *buf, size_t buflen);

/* Creates dir (0700) if needed and writes s to path atomically (0600). */
enum p11s_err txn_state_save(const char *dir, const char *path, const struct txn_state *s);
/* P11S_E_NOTFOUND (no message) when there is no state for that key. */
enum p11s_err txn_state_load(const char *path, struct txn_state *s);
enum p11s_err txn_state_remove(const char *path);
void txn_state_free(struct txn_state *s);	/* NULL-safe; leaves *s zeroed */

#endif
