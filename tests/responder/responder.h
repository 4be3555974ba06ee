/*
 * scep-responder: a strict SCEP (RFC 8894) server used only by the tests.
 * It shares no code with p11scep's src/, so it cannot share its bugs.
 */
#ifndef SCEP_RESPONDER_H
#define SCEP_RESPONDER_H

#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define RSP_MAX_BODY	(1024L * 1024L)

enum rsp_mode { MODE_CA, MODE_NDES, MODE_CHAIN };

/* --ec-reply: key agreement (originatorKey parameters absent, as OpenSSL
 * writes them, or NULL, as NDES does), or a password recipient keyed by the
 * challenge (PKCSReq only: anything else gets key agreement). */
enum rsp_ec_reply { EC_REPLY_KARI, EC_REPLY_KARI_NULL, EC_REPLY_PWRI };

/* --evil: one way to misbehave, for the hostile-server tests. */
enum rsp_evil {
	EVIL_NONE, EVIL_NONCE, EVIL_TXID, EVIL_SIGNER, EVIL_WRONGKEY, EVIL_WRONGCA,
	EVIL_TRUNCATE, EVIL_RANDOM, EVIL_HUGE, EVIL_HTTP500, EVIL_HTTP404, EVIL_HTTP405,
	EVIL_HANG, EVIL_CTYPE, EVIL_REDIRECT, EVIL_EXPIRED_CA, EVIL_NOTYET_CA,
	EVIL_DIE, EVIL_RESET
};

#define EVIL_HUGE_LEN		(5L * 1024L * 1024L)
#define EVIL_RANDOM_LEN		1024
#define EVIL_REDIRECT_URL	"http://127.0.0.2:1/scep"

/* pkiStatus and failInfo values (RFC 8894 §3.2.1.3, §3.2.1.4). */
#define ST_SUCCESS	0
#define ST_FAILURE	2
#define ST_PENDING	3
#define FI_BADALG	0
#define FI_BADMSGCHECK	1
#define FI_BADREQUEST	2
#define FI_BADTIME	3
#define FI_BADCERTID	4

struct rsp_conf {
	const char *dir;
	const char *port_file;
	const char *log_file;
	enum rsp_mode mode;
	int enc_first;
	const char *challenge;		/* NULL: none required */
	int renewal_challenge;
	int pending;			/* polls before SUCCESS; 0: issue at once */
	int reject_info;		/* -1: do not reject */
	const char *reject_text;
	int status;			/* -1: normal; else pkiStatus for every PKCSReq */
	const char *caps;
	int crlf;
	int caps_status;		/* HTTP status of GetCACaps */
	int get_only;
	const EVP_MD *reply_md;
	const EVP_CIPHER *reply_cipher;
	enum rsp_ec_reply ec_reply;	/* --ec-reply: how a CertRep reaches an EC key */
	long valid_seconds;
	int next_ca;
	long ca_valid_seconds;		/* --ca-valid-seconds: a CA near its end; 0 = 10 years */
	long rollover_after;		/* --rollover-after: seconds until the next CA takes over */
	time_t started;
	long max_seconds;
	enum rsp_evil evil;
	int evil_at;			/* --evil-at N[:K]: only PKIOperations N..N+K-1 (0: all) */
	int evil_times;
};

/* A PKCSReq/RenewalReq answered PENDING, kept until enough polls. */
struct rsp_pending {
	char *txid;
	X509_REQ *req;
	EVP_PKEY *signer_pub;		/* the key that signed the original request */
	int type;			/* its messageType: PKCSReq or RenewalReq */
	int polls;
	struct rsp_pending *next;
};

struct rsp_pki {
	EVP_PKEY *root_key;
	X509 *root;			/* DIR/ca.pem, the cert tests pin */
	EVP_PKEY *ca_key;		/* issues certs and CRLs (== root unless chain) */
	X509 *ca;
	EVP_PKEY *enc_key;		/* requests are encrypted to this */
	X509 *enc;
	EVP_PKEY *sig_key;		/* replies are signed by this */
	X509 *sig;
	STACK_OF(X509) *next_certs;	/* GetNextCACert; NULL without --next-ca */
	EVP_PKEY *next_key;		/* the next CA's key, for --rollover-after */
	int rolled;
	STACK_OF(X509) *issued;
	/* --evil signer: a stray signer; wrongca: a CA of the same name; wrongkey: a key. */
	EVP_PKEY *evil_key;
	X509 *evil_cert;
};

struct rsp {
	struct rsp_conf conf;
	struct rsp_pki pki;
	struct rsp_pending *pending;
	FILE *log;
	int pkiops;			/* PKIOperations so far (--evil-at) */
};

/* One HTTP exchange as the dispatcher sees it. */
struct rsp_req {
	const char *method;		/* "GET" or "POST" */
	const char *operation;		/* decoded operation= value, or NULL */
	const char *message;		/* decoded message= value, or NULL */
	const unsigned char *body;
	size_t body_len;
};

struct rsp_resp {
	int status;
	const char *ctype;
	unsigned char *body;		/* OPENSSL_malloc'd, owned */
	size_t len;
	const char *location;		/* a Location: header, or NULL */
	int no_reply;			/* --evil hang: answer nothing, keep the socket */
	int die;			/* --evil die: exit before the reply goes out */
	int reset;			/* --evil reset: RST instead of the reply */
	size_t stream_len;		/* --evil huge: this many bytes, no length, close */
	char log[512];			/* the op's log fields, without "op=" */
};

/* responder.c */
void rsp_log(struct rsp *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void rsp_dispatch(struct rsp *r, const struct rsp_req *req, struct rsp_resp *resp);
int rsp_resp_text(struct rsp_resp *resp, int status, const char *text);
void rsp_note(struct rsp_resp *resp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *rsp_evil_name(enum rsp_evil e);
extern volatile int rsp_stop;

/* rsp_http.c: serves until rsp_stop or the deadline; 0 on a clean stop. */
int rsp_serve(struct rsp *r);

/* rsp_pki.c */
int rsp_pki_init(struct rsp *r);
void rsp_pki_free(struct rsp_pki *p);
int rsp_pki_cacert(struct rsp *r, struct rsp_resp *resp);
int rsp_pki_nextca(struct rsp *r, struct rsp_resp *resp);
/* --rollover-after: once its time has come, the next CA replaces the current one. */
void rsp_pki_maybe_roll(struct rsp *r);
X509 *rsp_pki_issue(struct rsp *r, X509_REQ *req);	/* new ref, NULL on error */
X509 *rsp_pki_find_issued(struct rsp *r, const ASN1_INTEGER *serial);
int rsp_pki_is_issued(struct rsp *r, X509 *cert);
X509_CRL *rsp_pki_crl(struct rsp *r);
int rsp_pkcs7_bag(STACK_OF(X509) *certs, X509_CRL *crl, unsigned char **der, int *len);

/* rsp_scep.c */
/* A pkiMessage: DER (POST) or base64 (GET, b64 set). */
void rsp_scep_pkiop(struct rsp *r, const unsigned char *data, size_t len, int b64,
		    struct rsp_resp *resp);
void rsp_scep_free_pending(struct rsp *r);

#endif
