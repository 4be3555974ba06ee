#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/rand.h>

#include "responder.h"

#define DEFAULT_CAPS "POSTPKIOperation SHA-256 SHA-512 AES SCEPStandard Renewal GetNextCACert"

volatile int rsp_stop;

static const char *const evil_names[] = {
	"none", "nonce", "txid", "signer", "wrongkey", "wrongca", "truncate", "random",
	"huge", "http500", "http404", "http405", "hang", "ctype", "redirect",
	"expired-ca", "notyet-ca", "die", "reset"
};

const char *rsp_evil_name(enum rsp_evil e)
{
	size_t i = (size_t)e;

	return i < sizeof(evil_names) / sizeof(evil_names[0]) ? evil_names[i] : "?";
}

static void on_signal(int sig)
{
	(void)sig;
	rsp_stop = 1;
}

void rsp_log(struct rsp *r, const char *fmt, ...)
{
	va_list ap;

	if (r->log == NULL)
		return;
	va_start(ap, fmt);
	vfprintf(r->log, fmt, ap);
	va_end(ap);
	fputc('\n', r->log);
	fflush(r->log);
}

/* Appends " text" to the op's log line. */
void rsp_note(struct rsp_resp *resp, const char *fmt, ...)
{
	size_t n = strlen(resp->log);
	va_list ap;

	if (n + 2 >= sizeof(resp->log))
		return;
	if (n > 0)
		resp->log[n++] = ' ';
	va_start(ap, fmt);
	vsnprintf(resp->log + n, sizeof(resp->log) - n, fmt, ap);
	va_end(ap);
}

int rsp_resp_text(struct rsp_resp *resp, int status, const char *text)
{
	size_t n = strlen(text);

	OPENSSL_free(resp->body);
	resp->status = status;
	resp->ctype = "text/plain";
	resp->len = 0;
	resp->body = OPENSSL_malloc(n + 1);
	if (resp->body == NULL) {
		resp->status = 500;
		return -1;
	}
	memcpy(resp->body, text, n);
	resp->len = n;
	return 0;
}

/* The caps words, separated by LF or CRLF. */
static void get_caps(struct rsp *r, struct rsp_resp *resp)
{
	const char *p = r->conf.caps;
	const char *sep = r->conf.crlf ? "\r\n" : "\n";
	size_t cap = strlen(p) * 2 + 1, o = 0, w;

	if (r->conf.caps_status != 200) {
		rsp_resp_text(resp, r->conf.caps_status, "no capabilities here\n");
		return;
	}
	resp->status = 200;
	resp->ctype = "text/plain";
	resp->body = OPENSSL_malloc(cap);
	if (resp->body == NULL) {
		resp->status = 500;
		return;
	}
	while (*p != '\0') {
		p += strspn(p, " \t\r\n");
		w = strcspn(p, " \t\r\n");
		if (w == 0)
			break;
		if (o > 0) {
			memcpy(resp->body + o, sep, strlen(sep));
			o += strlen(sep);
		}
		memcpy(resp->body + o, p, w);
		o += w;
		p += w;
	}
	resp->len = o;
}

/* --evil modes that replace a PKIOperation reply before any SCEP work; 1 if done. */
static int evil_before(struct rsp *r, struct rsp_resp *resp)
{
	switch (r->conf.evil) {
	case EVIL_HTTP500:
		rsp_resp_text(resp, 500, "internal server error\n");
		break;
	case EVIL_HTTP404:
		rsp_resp_text(resp, 404, "not found\n");
		break;
	case EVIL_HTTP405:
		rsp_resp_text(resp, 405, "method not allowed\n");
		break;
	case EVIL_HANG:
		resp->no_reply = 1;
		break;
	case EVIL_HUGE:
		resp->status = 200;
		resp->ctype = "application/x-pki-message";
		resp->stream_len = (size_t)EVIL_HUGE_LEN;
		break;
	default:
		return 0;
	}
	rsp_note(resp, "evil=%s", rsp_evil_name(r->conf.evil));
	return 1;
}

/* --evil modes that spoil a CertRep the responder built honestly. */
static void evil_after(struct rsp *r, struct rsp_resp *resp)
{
	unsigned char *junk;

	switch (r->conf.evil) {
	case EVIL_TRUNCATE:
		resp->len /= 2;
		break;
	case EVIL_RANDOM:
		junk = OPENSSL_malloc(EVIL_RANDOM_LEN);
		if (junk == NULL || RAND_bytes(junk, EVIL_RANDOM_LEN) != 1) {
			OPENSSL_free(junk);
			rsp_resp_text(resp, 500, "out of memory\n");
			return;
		}
		OPENSSL_free(resp->body);
		resp->body = junk;
		resp->len = EVIL_RANDOM_LEN;
		resp->status = 200;
		resp->ctype = "application/x-pki-message";
		break;
	case EVIL_CTYPE:
		resp->ctype = "text/html";
		break;
	case EVIL_DIE:
		resp->die = 1;	/* the CertRep is built: the CA has acted */
		break;
	case EVIL_RESET:
		resp->reset = 1;
		break;
	default:
		return;
	}
	rsp_note(resp, "evil=%s", rsp_evil_name(r->conf.evil));
}

static void pkiop(struct rsp *r, const struct rsp_req *req, struct rsp_resp *resp)
{
	enum rsp_evil evil = r->conf.evil;

	/* --evil-at N: honest but for the Nth PKIOperation. */
	r->pkiops++;
	if (r->conf.evil_at > 0 && (r->pkiops < r->conf.evil_at ||
	    r->pkiops >= r->conf.evil_at + r->conf.evil_times))
		r->conf.evil = EVIL_NONE;
	if (evil_before(r, resp)) {
		r->conf.evil = evil;
		return;
	}
	if (strcmp(req->method, "POST") == 0) {
		if (r->conf.get_only) {
			rsp_note(resp, "reason=\"POST refused (--get-only)\"");
			rsp_resp_text(resp, 405, "POST is not allowed here\n");
			return;
		}
		rsp_scep_pkiop(r, req->body, req->body_len, 0, resp);
	} else if (req->message == NULL) {
		rsp_note(resp, "reason=\"GET without message=\"");
		rsp_resp_text(resp, 400, "missing message\n");
		return;
	} else {
		rsp_scep_pkiop(r, (const unsigned char *)req->message,
		    strlen(req->message), 1, resp);
	}
	evil_after(r, resp);
	r->conf.evil = evil;
}

void rsp_dispatch(struct rsp *r, const struct rsp_req *req, struct rsp_resp *resp)
{
	const char *op = req->operation;

	rsp_pki_maybe_roll(r);
	if (r->conf.evil == EVIL_REDIRECT) {
		rsp_note(resp, "op=%s evil=redirect", op != NULL ? op : "none");
		rsp_resp_text(resp, 302, "moved\n");
		resp->location = EVIL_REDIRECT_URL;
	} else if (op == NULL) {
		rsp_note(resp, "op=none reason=\"no operation= in the query\"");
		rsp_resp_text(resp, 400, "missing operation\n");
	} else if (strcmp(op, "GetCACaps") == 0) {
		rsp_note(resp, "op=GetCACaps method=%s", req->method);
		get_caps(r, resp);
	} else if (strcmp(op, "GetCACert") == 0) {
		rsp_note(resp, "op=GetCACert method=%s", req->method);
		if (r->conf.evil == EVIL_EXPIRED_CA || r->conf.evil == EVIL_NOTYET_CA)
			rsp_note(resp, "evil=%s", rsp_evil_name(r->conf.evil));
		rsp_pki_cacert(r, resp);
	} else if (strcmp(op, "GetNextCACert") == 0) {
		rsp_note(resp, "op=GetNextCACert method=%s", req->method);
		rsp_pki_nextca(r, resp);
	} else if (strcmp(op, "PKIOperation") == 0) {
		rsp_note(resp, "op=PKIOperation method=%s", req->method);
		pkiop(r, req, resp);
	} else {
		rsp_note(resp, "op=unknown reason=\"unknown operation\"");
		rsp_resp_text(resp, 400, "unknown operation\n");
	}
}

/* ---- options ---- */

static void usage(FILE *f)
{
	fprintf(f, "usage: scep-responder --dir DIR --port-file FILE [--mode ca|ndes|chain]\n"
	    "  [--order enc-first] [--challenge S] [--renewal-challenge] [--pending N]\n"
	    "  [--reject FAILINFO[:TEXT]] [--status N] [--caps WORDS] [--crlf]\n"
	    "  [--caps-status N] [--get-only] [--reply-digest sha1|sha256|sha512]\n"
	    "  [--reply-cipher des3|aes128|aes256] [--valid-seconds N] [--next-ca]\n"
	    "  [--ec-reply kari|kari-null|pwri]   (how a CertRep reaches an EC key:\n"
	    "      kari-null as NDES writes it; pwri needs --challenge, renewals get kari)\n"
	    "  [--ca-valid-seconds N] [--rollover-after N]   (ca mode: the next CA takes over)\n"
	    "  [--log FILE] [--max-seconds N] [--evil MODE [--evil-at N[:K]]]\n"
	    "MODE: nonce txid signer wrongkey wrongca truncate random huge http500\n"
	    "  http404 http405 hang ctype redirect expired-ca notyet-ca\n"
	    "  die (exit once a CertRep is built, before sending it)\n"
	    "  reset (a TCP reset instead of the CertRep)\n");
}

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_int(const char *s, int min, int max, int *out)
{
	long v;

	if (parse_long(s, min, max, &v) != 0)
		return -1;
	*out = (int)v;
	return 0;
}

static int parse_failinfo(const char *s, struct rsp_conf *c)
{
	static const char *const names[] = {
		"badAlg", "badMessageCheck", "badRequest", "badTime", "badCertId"
	};
	const char *colon = strchr(s, ':');
	size_t n = colon != NULL ? (size_t)(colon - s) : strlen(s);
	char word[32];
	int i;

	c->reject_text = colon != NULL ? colon + 1 : NULL;
	if (n == 0 || n >= sizeof(word))
		return -1;
	memcpy(word, s, n);
	word[n] = '\0';
	for (i = 0; i < 5; i++) {
		if (strcmp(word, names[i]) == 0) {
			c->reject_info = i;
			return 0;
		}
	}
	return parse_int(word, 0, 999, &c->reject_info);
}

/* N or N:K */
static int parse_evil_at(const char *s, struct rsp_conf *c)
{
	char n[16];
	const char *colon = strchr(s, ':');
	size_t len = colon ? (size_t)(colon - s) : strlen(s);

	if (len == 0 || len >= sizeof(n))
		return -1;
	memcpy(n, s, len);
	n[len] = '\0';
	c->evil_times = 1;
	if (colon != NULL && parse_int(colon + 1, 1, 1000, &c->evil_times) != 0)
		return -1;
	return parse_int(n, 1, 1000, &c->evil_at);
}

static int parse_evil(const char *s, enum rsp_evil *e)
{
	size_t i;

	for (i = 1; i < sizeof(evil_names) / sizeof(evil_names[0]); i++) {
		if (strcmp(s, evil_names[i]) == 0) {
			*e = (enum rsp_evil)i;
			return 0;
		}
	}
	return -1;
}

static int parse_mode(const char *s, enum rsp_mode *m)
{
	if (strcmp(s, "ca") == 0)
		*m = MODE_CA;
	else if (strcmp(s, "ndes") == 0)
		*m = MODE_NDES;
	else if (strcmp(s, "chain") == 0)
		*m = MODE_CHAIN;
	else
		return -1;
	return 0;
}

static int parse_digest(const char *s, const EVP_MD **md)
{
	if (strcmp(s, "sha1") == 0)
		*md = EVP_sha1();
	else if (strcmp(s, "sha256") == 0)
		*md = EVP_sha256();
	else if (strcmp(s, "sha512") == 0)
		*md = EVP_sha512();
	else
		return -1;
	return 0;
}

static int parse_ec_reply(const char *s, enum rsp_ec_reply *e)
{
	if (strcmp(s, "kari") == 0)
		*e = EC_REPLY_KARI;
	else if (strcmp(s, "kari-null") == 0)
		*e = EC_REPLY_KARI_NULL;
	else if (strcmp(s, "pwri") == 0)
		*e = EC_REPLY_PWRI;
	else
		return -1;
	return 0;
}

static int parse_cipher(const char *s, const EVP_CIPHER **c)
{
	if (strcmp(s, "des3") == 0)
		*c = EVP_des_ede3_cbc();
	else if (strcmp(s, "aes128") == 0)
		*c = EVP_aes_128_cbc();
	else if (strcmp(s, "aes256") == 0)
		*c = EVP_aes_256_cbc();
	else
		return -1;
	return 0;
}

enum {
	O_DIR = 256, O_PORTFILE, O_MODE, O_ORDER, O_CHALLENGE, O_RENCHAL, O_PENDING,
	O_REJECT, O_STATUS, O_CAPS, O_CRLF, O_CAPSSTATUS, O_GETONLY, O_RDIGEST,
	O_RCIPHER, O_VALID, O_NEXTCA, O_CAVALID, O_ROLL, O_LOG, O_MAXSEC, O_EVIL, O_EVIL_AT,
	O_ECREPLY, O_HELP
};

static const struct option longopts[] = {
	{ "dir", required_argument, NULL, O_DIR },
	{ "port-file", required_argument, NULL, O_PORTFILE },
	{ "mode", required_argument, NULL, O_MODE },
	{ "order", required_argument, NULL, O_ORDER },
	{ "challenge", required_argument, NULL, O_CHALLENGE },
	{ "renewal-challenge", no_argument, NULL, O_RENCHAL },
	{ "pending", required_argument, NULL, O_PENDING },
	{ "reject", required_argument, NULL, O_REJECT },
	{ "status", required_argument, NULL, O_STATUS },
	{ "caps", required_argument, NULL, O_CAPS },
	{ "crlf", no_argument, NULL, O_CRLF },
	{ "caps-status", required_argument, NULL, O_CAPSSTATUS },
	{ "get-only", no_argument, NULL, O_GETONLY },
	{ "reply-digest", required_argument, NULL, O_RDIGEST },
	{ "reply-cipher", required_argument, NULL, O_RCIPHER },
	{ "valid-seconds", required_argument, NULL, O_VALID },
	{ "next-ca", no_argument, NULL, O_NEXTCA },
	{ "ca-valid-seconds", required_argument, NULL, O_CAVALID },
	{ "rollover-after", required_argument, NULL, O_ROLL },
	{ "log", required_argument, NULL, O_LOG },
	{ "max-seconds", required_argument, NULL, O_MAXSEC },
	{ "evil", required_argument, NULL, O_EVIL },
	{ "evil-at", required_argument, NULL, O_EVIL_AT },
	{ "ec-reply", required_argument, NULL, O_ECREPLY },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 }
};

/* One option into c; -1 with a message on a bad value. */
static int set_opt(struct rsp_conf *c, int o, const char *a)
{
	switch (o) {
	case O_DIR:		c->dir = a; return 0;
	case O_PORTFILE:	c->port_file = a; return 0;
	case O_MODE:		return parse_mode(a, &c->mode);
	case O_ORDER:
		if (strcmp(a, "enc-first") == 0)
			c->enc_first = 1;
		else if (strcmp(a, "default") == 0)
			c->enc_first = 0;
		else
			return -1;
		return 0;
	case O_CHALLENGE:	c->challenge = a; return 0;
	case O_RENCHAL:		c->renewal_challenge = 1; return 0;
	case O_PENDING:		return parse_int(a, 0, 1000, &c->pending);
	case O_REJECT:		return parse_failinfo(a, c);
	case O_STATUS:		return parse_int(a, 0, 999, &c->status);
	case O_CAPS:		c->caps = a; return 0;
	case O_CRLF:		c->crlf = 1; return 0;
	case O_CAPSSTATUS:	return parse_int(a, 100, 599, &c->caps_status);
	case O_GETONLY:		c->get_only = 1; return 0;
	case O_RDIGEST:		return parse_digest(a, &c->reply_md);
	case O_RCIPHER:		return parse_cipher(a, &c->reply_cipher);
	case O_VALID:		return parse_long(a, 1, 100L * 366 * 86400, &c->valid_seconds);
	case O_NEXTCA:		c->next_ca = 1; return 0;
	case O_CAVALID:		return parse_long(a, 1, 100L * 366 * 86400, &c->ca_valid_seconds);
	case O_ROLL:		c->next_ca = 1; return parse_long(a, 1, 86400, &c->rollover_after);
	case O_LOG:		c->log_file = a; return 0;
	case O_MAXSEC:		return parse_long(a, 1, 86400, &c->max_seconds);
	case O_EVIL:		return parse_evil(a, &c->evil);
	case O_EVIL_AT:		return parse_evil_at(a, c);
	case O_ECREPLY:		return parse_ec_reply(a, &c->ec_reply);
	}
	return -1;
}

/* 0 ok, 1 help shown, -1 usage error. */
static int parse_args(int argc, char **argv, struct rsp_conf *c)
{
	int o;

	memset(c, 0, sizeof(*c));
	c->mode = MODE_CA;
	c->reject_info = -1;
	c->status = -1;
	c->caps = DEFAULT_CAPS;
	c->caps_status = 200;
	c->reply_md = EVP_sha256();
	c->reply_cipher = EVP_aes_128_cbc();
	c->valid_seconds = 30L * 86400;
	c->max_seconds = 300;
	while ((o = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (o == O_HELP) {
			usage(stdout);
			return 1;
		}
		if (o == '?' || set_opt(c, o, optarg) != 0) {
			if (o != '?')
				fprintf(stderr, "scep-responder: bad value '%s' for --%s\n",
				    optarg, longopts[o - O_DIR].name);
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc || c->dir == NULL || c->port_file == NULL) {
		usage(stderr);
		return -1;
	}
	return 0;
}

static void signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

int main(int argc, char **argv)
{
	struct rsp r;
	OSSL_PROVIDER *legacy, *deflt;
	int rc = 1;

	memset(&r, 0, sizeof(r));
	switch (parse_args(argc, argv, &r.conf)) {
	case 1:
		return 0;
	case -1:
		return 2;
	}
	signals();
	/* The legacy provider decrypts 3DES/DES requests from old clients. */
	deflt = OSSL_PROVIDER_load(NULL, "default");
	legacy = OSSL_PROVIDER_load(NULL, "legacy");
	if (deflt == NULL || legacy == NULL) {
		ERR_print_errors_fp(stderr);
		fprintf(stderr, "scep-responder: cannot load OpenSSL's default and legacy "
		    "providers\n");
		goto out;
	}
	if (r.conf.log_file != NULL) {
		r.log = fopen(r.conf.log_file, "a");
		if (r.log == NULL) {
			fprintf(stderr, "scep-responder: cannot open %s: %s\n",
			    r.conf.log_file, strerror(errno));
			goto out;
		}
	}
	r.conf.started = time(NULL);
	if (rsp_pki_init(&r) != 0) {
		ERR_print_errors_fp(stderr);
		goto out;
	}
	rc = rsp_serve(&r) == 0 ? 0 : 1;
out:
	rsp_scep_free_pending(&r);
	rsp_pki_free(&r.pki);
	if (r.log != NULL)
		fclose(r.log);
	OSSL_PROVIDER_unload(legacy);
	OSSL_PROVIDER_unload(deflt);
	return rc;
}
