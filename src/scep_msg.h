/* SCEP pkiMessages (RFC 8894 §3): build requests, parse and verify CertRep. No I/O. */
#ifndef P11SCEP_SCEP_MSG_H
#define P11SCEP_SCEP_MSG_H

#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"

enum scep_msgtype {
	MSG_CERTREP = 3,
	MSG_RENEWALREQ = 17,
	MSG_PKCSREQ = 19,
	MSG_CERTPOLL = 20,
	MSG_GETCERT = 21,
	MSG_GETCRL = 22,
};

enum scep_status { STATUS_SUCCESS = 0, STATUS_FAILURE = 2, STATUS_PENDING = 3 };

enum scep_failinfo {
	FAIL_NONE = -1,
	FAIL_BADALG = 0,
	FAIL_BADMESSAGECHECK = 1,
	FAIL_BADREQUEST = 2,
	FAIL_BADTIME = 3,
	FAIL_BADCERTID = 4,
};
const char *scep_failinfo_name(int fail_info);	/* "badRequest", ... */

#define SCEP_NONCE_LEN 16
#define SCEP_TXID_MAX 65	/* 64 hex digits + NUL */

struct scep_txn {
	char txid[SCEP_TXID_MAX];	/* printable; the same for the whole transaction */
	unsigned char sender_nonce[SCEP_NONCE_LEN];	/* fresh for each message */
};

/* transactionID = hex SHA-256 of the DER SubjectPublicKeyInfo of key. */
enum p11s_err scep_txid_from_key(EVP_PKEY *key, char txid[SCEP_TXID_MAX]);
/* Fresh random senderNonce (RAND_bytes). */
enum p11s_err scep_new_nonce(unsigned char nonce[SCEP_NONCE_LEN]);

struct scep_request {
	enum scep_msgtype type;
	/* DER to envelope: the CSR for PKCSReq/RenewalReq, scep_issuer_and_subject_der
	 * for CertPoll, scep_issuer_and_serial_der for GetCert/GetCRL. */
	const unsigned char *content;
	size_t content_len;
	X509 *signer_cert;		/* self-signed, or CA-issued (RenewalReq, GetCert...):
					 * only its key must match signer_key */
	EVP_PKEY *signer_key;		/* may live in a token */
	X509 *recipient;		/* RA encryption cert, or the CA */
	const char *cipher;		/* OpenSSL cipher name, e.g. "AES-256-CBC" */
	const char *digest;		/* OpenSSL digest name, e.g. "SHA256" */
	const struct scep_txn *txn;
};

/* SignedData(EnvelopedData(content)) with messageType, transactionID,
 * senderNonce signed attributes; DER into *der (OPENSSL_free). */
enum p11s_err scep_request_build(const struct scep_request *r, unsigned char **der, size_t *len);

struct scep_reply_check {
	X509 *reply_signer;		/* the only cert allowed to sign: RA sig cert or CA */
	const struct scep_txn *txn;	/* our transactionID and senderNonce */
	X509 *our_cert;			/* the signer cert we sent (decryption recipient) */
	EVP_PKEY *our_key;		/* decrypts the reply; may live in a token */
	const char *password;		/* the request's challenge password: opens a
					 * password (PWRI) envelope; NULL if none */
	int strict;			/* refuse legacy envelope ciphers (DES, 3DES, RC2) */
};

struct scep_reply {
	enum scep_status status;
	int fail_info;			/* enum scep_failinfo; FAIL_NONE unless FAILURE */
	char *fail_text;		/* failInfoText if sent, else NULL */
	STACK_OF(X509) *certs;		/* certs of the decrypted degenerate SignedData;
					 * on SUCCESS never NULL, empty for a CRL-only reply */
	STACK_OF(X509_CRL) *crls;	/* CRLs of it (a GetCRL reply, at most 16), NULL
					 * when none; not verified: check their signature */
	const char *envelope_cipher;	/* what the server encrypted with (static string) */
	const char *envelope_recipient;	/* how the key reached us: "key transport" (RSA),
					 * "key agreement" (EC), "password" (static) */
	const char *signature_digest;	/* what the server signed with (static string) */
};

/*
 * Parse a CertRep: verify its signature by check->reply_signer (only that
 * cert, no chain building), messageType CertRep, transactionID and
 * recipientNonce equal to ours, a known pkiStatus/failInfo. On SUCCESS
 * decrypt the envelope with our_key and collect the certs. Errors:
 * P11S_E_MALFORMED (cannot parse), P11S_E_UNTRUSTED (signature, nonce, txid,
 * unknown values, MD5 signatures, legacy envelope ciphers when strict). A
 * FAILURE or PENDING reply is P11S_OK with status set. A SUCCESS needs
 * our_key and our_cert; FAILURE and PENDING replies do not. The envelope is
 * opened by the recipient that names our_cert (key transport or, for an EC
 * key, key agreement), else by a password recipient keyed by password
 * (RFC 8894 §3.1); a password envelope without a password is
 * P11S_E_UNTRUSTED, a key that cannot decrypt P11S_E_TOKEN. A SUCCESS whose
 * bag holds neither a cert nor a CRL is P11S_E_MALFORMED; at most 64 certs.
 */
enum p11s_err scep_reply_parse(const unsigned char *der, size_t len,
			       const struct scep_reply_check *check, struct scep_reply *out);
void scep_reply_free(struct scep_reply *r);	/* NULL-safe; leaves *r zeroed */

/*
 * The DER contents the other requests envelope (RFC 8894 §3.3.3, §3.3.4):
 * CertPoll: IssuerAndSubject { issuer Name, subject Name } - the CA's
 * subject and the subject of our request. GetCert and GetCRL:
 * IssuerAndSerialNumber { issuer Name, serialNumber INTEGER } - for GetCert
 * the issuer and serial of the wanted cert, for GetCRL those of a cert the
 * CRL covers. *der is OPENSSL_free()d by the caller; outputs are cleared
 * first. NULL arguments are P11S_E_INTERNAL; an empty issuer name, or a
 * serial that is not an INTEGER of 1 to 64 bytes, P11S_E_USAGE. An empty
 * subject is allowed (a request with SANs only).
 */
enum p11s_err scep_issuer_and_subject_der(const X509_NAME *issuer, const X509_NAME *subject,
					  unsigned char **der, size_t *len);
enum p11s_err scep_issuer_and_serial_der(const X509_NAME *issuer, const ASN1_INTEGER *serial,
					 unsigned char **der, size_t *len);

/* The cert among certs whose public key equals key's; NULL if none. Borrowed. */
X509 *scep_find_cert_for_key(STACK_OF(X509) *certs, EVP_PKEY *key);

#endif
