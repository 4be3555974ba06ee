/*
 * A profile's directory, as appliances keep one per SCEP profile:
 *   DIR/ca/ca.pem, DIR/ca/ra-enc.pem, DIR/ca/ra-sig.pem (or ra.pem)
 *   DIR/ca/next-ca.pem  the CA to follow at rollover (from GetNextCACert)
 *   DIR/user/cert.pem, DIR/user/chain.pem
 *   DIR/crl.pem      the last CRL getcrl fetched for the user cert
 *   DIR/pending      the transactionID of an open request (no secrets)
 *   DIR/.lock        held while a command acts on the profile
 */
#ifndef P11SCEP_STORE_H
#define P11SCEP_STORE_H

#include <stddef.h>
#include <openssl/x509.h>

#include "err.h"
#include "output.h"
#include "scep_ca.h"

/* DIR for a profile: its ca-dir, else STATE_DIR/profiles/NAME. */
const char *store_dir(const char *ca_dir, const char *state_dir, const char *name,
		      char *buf, size_t buflen);

/* Creates DIR (0755) and takes its lock without waiting: P11S_E_USAGE
 * "busy" when another process holds it. *fd is closed by store_unlock. */
enum p11s_err store_lock(const char *dir, int *fd);
void store_unlock(int fd);

/* An issued certificate, verified: its files staged into b (committed by the
 * caller together with the token write), then store_saved once committed. */
enum p11s_err store_stage(struct out_batch *b, const char *dir, const struct scep_ca_set *ca,
			  X509 *cert, STACK_OF(X509) *chain);
void store_saved(const char *dir, const struct scep_ca_set *ca);
/* The CA to follow at rollover (verified by the caller: signed by the pinned CA). */
enum p11s_err store_save_next_ca(const char *dir, X509 *cert);
enum p11s_err store_set_pending(const char *dir, const char *txid);
void store_clear_pending(const char *dir);

/* What status shows: each may be NULL. pending: txid or "" when none. */
struct store_view {
	X509 *ca;
	X509 *next_ca;
	X509 *ra[2];		/* ra-enc (or ra), ra-sig */
	X509 *user;
	X509_CRL *crl;
	char pending[80];
};
enum p11s_err store_read(const char *dir, struct store_view *v);
void store_view_free(struct store_view *v);

#endif
