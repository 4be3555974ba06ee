/*
 * One enrollment transaction, in steps that the enroll and poll commands
 * put together: discover the CA, open the key, send the request, poll while
 * the CA holds it, verify and store what it issues.
 */
#ifndef P11SCEP_ENROLL_H
#define P11SCEP_ENROLL_H

#include <limits.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "caps.h"
#include "err.h"
#include "http.h"
#include "keystore.h"
#include "opts.h"
#include "scep_ca.h"
#include "scep_msg.h"

struct enroll {
	const struct opts *o;
	/* where this transaction goes; from the options or the saved state */
	const char *url;
	const char *ca_fingerprint;
	const char *cert_out;
	const char *chain_out;
	int import_chain;

	struct http *http;
	char cache_dir[PATH_MAX];	/* of caps and CA certs, "" before known */
	int from_cache;		/* caps and CA certs came from the cache */
	int cache_dropped;	/* ... which proved stale: ask the server */
	struct scep_caps caps;
	struct scep_algs algs;
	struct scep_ca_set ca;
	struct ks *ks;
	EVP_PKEY *key;		/* the key the certificate is for */
	EVP_PKEY *signer_key;	/* signs and decrypts when it is not key (renewal
				 * with a new key: the current key); else NULL */
	X509_REQ *req;		/* until sent: it holds the challenge */
	X509_NAME *subject;	/* the request's, for CertPoll */
	X509 *signer;		/* self-signed, or the current cert when renewing */
	enum scep_msgtype msgtype;	/* PKCSReq (0 means PKCSReq too) or RenewalReq */
	/* renewal with a new key: the old key, removed after success if asked */
	int rollover;
	int remove_old;
	struct ks_key_id old_id;
	struct ks_key_id new_id;
	int resend;		/* sending again a request that never got an answer */
	struct scep_txn txn;
	struct scep_reply reply;
	STACK_OF(X509) *chain;
	char state_dir[PATH_MAX];
	char state_path[PATH_MAX];
	char challenge[256];
};

/* Where the transaction goes, from the options. */
void enroll_init(struct enroll *e, const struct opts *o);
/* One outstanding request per key (RFC 8894 §3.3.3): one the CA answered
 * PENDING must be resumed with poll, or replaced by name (--new-request). One
 * that never got an answer (network failure) is sent again with the same
 * transactionID (e->resend; a renewal's new key ID in e->new_id). */
enum p11s_err enroll_check_pending(struct enroll *e);
/* Everything is freed, token objects before the token. */
void enroll_free(struct enroll *e);

/* GetCACaps and GetCACert (or the profile's cache of them); nothing is sent
 * to the CA until its cert matches the pin. Again after enroll_drop_cache. */
enum p11s_err enroll_discover(struct enroll *e);
/* The cached caps and CA certs failed us: forget them. */
void enroll_drop_cache(struct enroll *e);
/* Open the token; find the key, or generate it when may_generate. */
enum p11s_err enroll_open_key(struct enroll *e, int may_generate);
/* The key's current certificate: --cert FILE (PEM or DER), else the one
 * beside the key in the token; it must carry the key's public key. */
enum p11s_err enroll_current_cert(struct enroll *e, X509 **out);
/* Sign content as a message of type t (signer e->signer with e->signer_key
 * or e->key), envelope it to the CA/RA, send it, verify the reply into e->reply. */
enum p11s_err enroll_transact(struct enroll *e, enum scep_msgtype t,
			      const unsigned char *content, size_t content_len);
/* What GetCert and GetCRL need before their message: the CA, the key and its
 * current certificate (the signer), a random transactionID. */
enum p11s_err enroll_prepare_query(struct enroll *e);
/* A random transactionID (GetCert, GetCRL, --new-request). */
enum p11s_err enroll_random_txid(struct enroll *e);
/* P11S_OK for SUCCESS; PENDING, FAILURE (with failInfo and text) as errors. */
enum p11s_err enroll_check_status(const struct enroll *e);
/* Where this key's pending state lives (e->state_path). */
enum p11s_err enroll_state_locate(struct enroll *e);
/* The CSR for e->key; then, unless e->signer is set already (renewal), the
 * self-signed signer cert. Also the transactionID. */
enum p11s_err enroll_build_csr(struct enroll *e);
/* Request (PKCSReq or RenewalReq per e->msgtype; the CSR is built first if
 * e->req is NULL); state saved before it is sent; reply verified. */
enum p11s_err enroll_send_request(struct enroll *e);
/* While the reply is PENDING: CertPoll every poll interval until a decision,
 * the poll time runs out, or SIGINT/SIGTERM (P11S_E_PENDING, state kept).
 * With ask_first, one CertPoll goes out at once. */
enum p11s_err enroll_poll(struct enroll *e, int ask_first);
/* SUCCESS: verify and store, drop the state. FAILURE: report, drop the state. */
enum p11s_err enroll_conclude(struct enroll *e);

/* What enroll and renew begin with: enroll_init, outputs writable, the
 * challenge, enroll_discover. */
enum p11s_err enroll_begin(struct enroll *e, const struct opts *o);
/* ... and end with: send the request, poll while the CA holds it (unless
 * --max-poll-time 0), conclude. */
enum p11s_err enroll_finish(struct enroll *e);

/* With a profile directory: mark it pending, or clear the mark once decided. */
void enroll_record(const struct enroll *e, enum p11s_err rc);

#endif
