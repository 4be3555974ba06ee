/* One error enum for the whole program, one strerror, one mapping to exit codes. */
#ifndef P11SCEP_ERR_H
#define P11SCEP_ERR_H

/* Append only. Each value maps to one documented exit code (err_exit_code). */
enum p11s_err {
	P11S_OK = 0,
	P11S_E_INTERNAL,	/* a bug or an unexpected library failure	exit 1 */
	P11S_E_NOMEM,		/* out of memory				exit 1 */
	P11S_E_IO,		/* a local file could not be read or written	exit 1 */
	P11S_E_USAGE,		/* bad option, value or configuration		exit 2 */
	P11S_E_PENDING,		/* the CA holds the request for approval	exit 3 */
	P11S_E_REJECTED,	/* the CA answered FAILURE			exit 4 */
	P11S_E_NETWORK,		/* connect, DNS, TLS, HTTP status, timeout	exit 5 */
	P11S_E_TOKEN,		/* module, slot, token or key error		exit 6 */
	P11S_E_PIN,		/* PIN missing, wrong or locked			exit 6 */
	P11S_E_NOTFOUND,	/* no such object (callers usually handle it)	exit 6 */
	P11S_E_UNTRUSTED,	/* fingerprint, signature, nonce, txid, key	exit 7 */
	P11S_E_MALFORMED,	/* a reply we cannot parse			exit 7 */
};

const char *err_str(enum p11s_err e);
int err_exit_code(enum p11s_err e);

/*
 * Record a one-line message for the user and return e, so that call sites read
 * `return err_set(P11S_E_UNTRUSTED, "recipientNonce is not ours");`.
 * The first message recorded wins: the innermost failure knows best what went
 * wrong. err_clear() forgets it (after an error a caller handled).
 */
enum p11s_err err_set(enum p11s_err e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Same, with the reason of the oldest OpenSSL error appended ("...: reason"). */
enum p11s_err err_set_ssl(enum p11s_err e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
const char *err_msg(void);	/* "" when none was recorded */
void err_clear(void);		/* forget the message and the OpenSSL queue */

#endif
