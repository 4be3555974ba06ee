#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "opts.h"

/* Which commands take an option. */
#define C_CAPS	(1u << CMD_GETCAPS)
#define C_CA	(1u << CMD_GETCA)
#define C_ENR	(1u << CMD_ENROLL)
#define C_POLL	(1u << CMD_POLL)
#define C_REN	(1u << CMD_RENEW)
#define C_NEXT	(1u << CMD_GETNEXTCA)
#define C_GCRT	(1u << CMD_GETCERT)
#define C_GCRL	(1u << CMD_GETCRL)
#define C_SIGNED (C_GCRT | C_GCRL)
#define C_STAT	(1u << CMD_STATUS)
#define C_RUN	(1u << CMD_RUN)
#define C_SHOW	(1u << CMD_SHOWCERT)
#define C_TINF	(1u << CMD_TOKENINFO)
#define C_NET	(C_CAPS | C_CA | C_ENR | C_POLL | C_REN | C_NEXT | C_SIGNED)
#define C_ALL	(C_NET | C_STAT | C_RUN | C_SHOW | C_TINF)

enum opt_key {
	OPT_URL = 'u',
	OPT_KEY = 'k',
	OPT_VERBOSE = 'v',
	OPT_HELP = 'h',
	OPT_SUBJECT = 256,
	OPT_CA_FP,
	OPT_CHALLENGE_FILE,
	OPT_CERT_OUT,
	OPT_CHAIN_OUT,
	OPT_OUT_DIR,
	OPT_KEY_TYPE,
	OPT_CIPHER,
	OPT_DIGEST,
	OPT_DNS,
	OPT_IP,
	OPT_MODULE,
	OPT_IMPORT_CHAIN,
	OPT_TIMEOUT,
	OPT_CACERT,
	OPT_INSECURE_TLS,
	OPT_STATE_DIR,
	OPT_POLL_INTERVAL,
	OPT_MAX_POLL_TIME,
	OPT_NEW_REQUEST,
	OPT_CERT_IN,
	OPT_REUSE_KEY,
	OPT_REMOVE_OLD,
	OPT_RENEWAL_MODE,
	OPT_SERIAL,
	OPT_CRL_OUT,
	OPT_STRICT,
	OPT_JSON,
	OPT_TIMINGS,
	OPT_JOBS,
	OPT_CONFIG = 'c',
	OPT_PROFILE = 'p',
};

struct opt_def {
	const char *name;
	int key;
	const char *arg;	/* NULL: a flag */
	unsigned int cmds;
	int required;		/* bitmask of commands that require it */
	const char *help;
};

static const struct opt_def opt_table[] = {
	{ "url", OPT_URL, "URL", C_NET, C_NET & ~C_POLL,
	  "SCEP server URL, with port and CGI path (http://host:8080/scep)" },
	{ "key", OPT_KEY, "URI", C_ENR | C_POLL | C_REN | C_SIGNED | C_SHOW | C_TINF,
	  C_ENR | C_POLL | C_REN | C_SIGNED | C_TINF,
	  "PKCS#11 URI of the key (pkcs11:token=T;object=L?module-path=...)" },
	{ "subject", OPT_SUBJECT, "DN", C_ENR | C_REN, C_ENR,
	  "subject of the request (CN=host,O=Org or /CN=host/O=Org)" },
	{ "ca-fingerprint", OPT_CA_FP, "HEX", C_CA | C_ENR | C_POLL | C_REN | C_NEXT | C_SIGNED,
	  C_ENR | C_REN | C_NEXT | C_SIGNED,
	  "SHA-256 fingerprint of the CA certificate to trust" },
	{ "challenge-file", OPT_CHALLENGE_FILE, "FILE", C_ENR | C_REN, 0,
	  "read the challenge password from FILE (or set P11SCEP_CHALLENGE)" },
	{ "dns", OPT_DNS, "NAME", C_ENR | C_REN, 0,
	  "subjectAltName DNS name (repeatable)" },
	{ "ip", OPT_IP, "ADDR", C_ENR | C_REN, 0,
	  "subjectAltName IP address (repeatable)" },
	{ "key-type", OPT_KEY_TYPE, "TYPE", C_ENR | C_REN, 0,
	  "key to generate when none exists: rsa:2048 (default), rsa:3072, rsa:4096, "
	  "ec:p256, ec:p384" },
	{ "cipher", OPT_CIPHER, "ALG", C_ENR | C_REN | C_SIGNED, 0,
	  "request encryption: aes, aes256, des3 (default: strongest the server offers)" },
	{ "digest", OPT_DIGEST, "ALG", C_ENR | C_REN | C_SIGNED, 0,
	  "request signature digest: sha256, sha512, sha1 (default: strongest offered)" },
	{ "cert-out", OPT_CERT_OUT, "FILE", C_ENR | C_POLL | C_REN | C_GCRT, 0,
	  "write the issued certificate (PEM) to FILE" },
	{ "chain-out", OPT_CHAIN_OUT, "FILE", C_ENR | C_POLL | C_REN, 0,
	  "write the CA chain (PEM) to FILE" },
	{ "import-chain", OPT_IMPORT_CHAIN, NULL, C_ENR | C_POLL | C_REN, 0,
	  "also store the CA certificates in the token" },
	{ "module", OPT_MODULE, "PATH", C_ENR | C_POLL | C_REN | C_SIGNED | C_SHOW | C_TINF, 0,
	  "PKCS#11 module (default: the URI's module-path, else p11-kit's proxy)" },
	{ "poll-interval", OPT_POLL_INTERVAL, "SECONDS", C_ENR | C_POLL | C_REN, 0,
	  "while the CA holds the request, ask again every SECONDS (default 60)" },
	{ "max-poll-time", OPT_MAX_POLL_TIME, "SECONDS", C_ENR | C_POLL | C_REN, 0,
	  "stop polling after SECONDS, keeping the request (default 28800); 0: do not poll" },
	{ "state-dir", OPT_STATE_DIR, "DIR", C_ENR | C_POLL | C_REN | C_STAT | C_RUN, 0,
	  "where pending requests and CA answers are kept (default $XDG_STATE_HOME/p11scep)" },
	{ "new-request", OPT_NEW_REQUEST, NULL, C_ENR | C_REN, 0,
	  "forget a pending request for this key and send a new one" },
	{ "cert", OPT_CERT_IN, "FILE", C_REN | C_SIGNED | C_SHOW, 0,
	  "our current certificate (default: the one beside the key in the token)" },
	{ "serial", OPT_SERIAL, "HEX", C_GCRT, C_GCRT,
	  "serial number of the certificate to fetch" },
	{ "crl-out", OPT_CRL_OUT, "FILE", C_GCRL, 0,
	  "write the CRL (PEM) to FILE" },
	{ "reuse-key", OPT_REUSE_KEY, NULL, C_REN, 0,
	  "renew for the same key instead of a new key generated in the token" },
	{ "remove-old", OPT_REMOVE_OLD, NULL, C_REN, 0,
	  "after the new certificate is stored, remove the old key and its certificate" },
	{ "renewal-mode", OPT_RENEWAL_MODE, "MODE", C_REN, 0,
	  "renewalreq (default) or pkcsreq, for servers without RenewalReq" },
	{ "out-dir", OPT_OUT_DIR, "DIR", C_CA | C_NEXT, 0,
	  "write the CA and RA certificates (PEM) into DIR" },
	{ "strict", OPT_STRICT, NULL, C_ENR | C_REN | C_POLL | C_SIGNED | C_NEXT, 0,
	  "refuse servers without SCEPStandard, AES and SHA-2, and legacy-encrypted replies" },
	{ "timeout", OPT_TIMEOUT, "SECONDS", C_NET, 0,
	  "give up on an HTTP exchange after SECONDS (default 60)" },
	{ "cacert", OPT_CACERT, "FILE", C_NET, 0,
	  "CA bundle to verify an https server with" },
	{ "insecure-tls", OPT_INSECURE_TLS, NULL, C_NET, 0,
	  "do not verify the https server's certificate (never in production)" },
	{ "json", OPT_JSON, NULL, C_STAT | C_TINF, 0,
	  "print JSON instead of tables" },
	{ "config", OPT_CONFIG, "FILE", C_ALL, 0,
	  "configuration file (default " CONF_DEFAULT_PATH " when -p is given)" },
	{ "profile", OPT_PROFILE, "NAME", C_ALL, 0,
	  "take the options of [profile NAME] from the configuration file" },
	{ "verbose", OPT_VERBOSE, NULL, C_ALL, 0,
	  "progress and timings on stderr" },
	{ "jobs", OPT_JOBS, "N", C_RUN, 0,
	  "work on up to N profiles at once (default 4; one token login for all)" },
	{ "timings", OPT_TIMINGS, NULL, C_NET | C_RUN, 0,
	  "one line per step on stderr: \"timing: STEP MS ms\"" },
	{ "help", OPT_HELP, NULL, C_ALL, 0, "this help" },
};

#define N_OPTS (sizeof(opt_table) / sizeof(opt_table[0]))

static const struct {
	enum command cmd;
	const char *name;
	const char *summary;
} commands[] = {
	{ CMD_GETCAPS, "getcaps", "print the server's capabilities (GetCACaps)" },
	{ CMD_GETCA, "getca", "fetch and show the CA and RA certificates (GetCACert)" },
	{ CMD_ENROLL, "enroll", "enroll a token-held key (PKCSReq) and store the certificate" },
	{ CMD_RENEW, "renew", "renew a certificate (RenewalReq), by default for a new token key" },
	{ CMD_GETNEXTCA, "getnextca", "fetch the next CA certificates for a rollover (GetNextCACert)" },
	{ CMD_GETCERT, "getcert", "fetch an issued certificate by serial (GetCert)" },
	{ CMD_GETCRL, "getcrl", "fetch the CRL covering our certificate (GetCRL)" },
	{ CMD_STATUS, "status", "show each profile's ca / ra / usercert table" },
	{ CMD_RUN, "run", "one pass over all profiles: enroll, renew, resume (for a timer)" },
	{ CMD_SHOWCERT, "show-cert", "print a certificate from a file, a profile or the token" },
	{ CMD_TOKENINFO, "token-info", "show the module, token, mechanisms, keys and certificates" },
	{ CMD_POLL, "poll", "resume a pending enrollment (CertPoll) until the CA decides" },
};

#define N_CMDS (sizeof(commands) / sizeof(commands[0]))

const char *command_name(enum command cmd)
{
	size_t i;

	for (i = 0; i < N_CMDS; i++)
		if (commands[i].cmd == cmd)
			return commands[i].name;
	return "p11scep";
}

static const struct opt_def *opt_by_key(int key)
{
	size_t i;

	for (i = 0; i < N_OPTS; i++)
		if (opt_table[i].key == key)
			return &opt_table[i];
	return NULL;
}

void opts_usage(FILE *f, enum command cmd)
{
	size_t i;
	unsigned int bit = 1u << cmd;

	if (cmd == CMD_NONE) {
		fputs("usage: p11scep COMMAND [OPTIONS]\n\ncommands:\n", f);
		for (i = 0; i < N_CMDS; i++)
			fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
		fputs("\n'p11scep COMMAND --help' lists a command's options.\n"
		      "Secrets: the PIN comes from the key URI (pin-source=file:...), P11SCEP_PIN, a\n"
		      "prompt or the reader's PIN pad; the challenge from --challenge-file or\n"
		      "P11SCEP_CHALLENGE. Never from argv.\n"
		      "\nexit status: 0 issued and stored, 1 internal or local file error, 2 usage,\n"
		      "3 pending, 4 rejected by the CA, 5 network/HTTP/TLS, 6 token or PIN,\n"
		      "7 untrusted or invalid response.\n", f);
		return;
	}
	fprintf(f, "usage: p11scep %s", command_name(cmd));
	for (i = 0; i < N_OPTS; i++)
		if (opt_table[i].required & bit)
			fprintf(f, " --%s %s", opt_table[i].name, opt_table[i].arg);
	fputs(" [OPTIONS]\n\noptions:\n", f);
	for (i = 0; i < N_OPTS; i++) {
		char left[64];
		const struct opt_def *d = &opt_table[i];

		if (!(d->cmds & bit))
			continue;
		if (d->key < 256)
			snprintf(left, sizeof(left), "-%c, --%s%s%s", d->key, d->name,
				 d->arg ? " " : "", d->arg ? d->arg : "");
		else
			snprintf(left, sizeof(left), "    --%s%s%s", d->name,
				 d->arg ? " " : "", d->arg ? d->arg : "");
		fprintf(f, "  %-28s %s\n", left, d->help);
	}
}

static enum p11s_err parse_long(const char *name, const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return err_set(P11S_E_USAGE, "--%s %s: expected a number from %ld to %ld",
			       name, s, min, max);
	*out = v;
	return P11S_OK;
}

static enum p11s_err add_san(const char *name, const char *v, const char **list, size_t *n)
{
	if (*n >= OPTS_MAX_SANS)
		return err_set(P11S_E_USAGE, "more than %d --%s options", OPTS_MAX_SANS, name);
	list[(*n)++] = v;
	return P11S_OK;
}

static enum p11s_err apply(struct opts *o, int key, const char *arg)
{
	switch (key) {
	case OPT_URL:		o->url = arg; break;
	case OPT_KEY:		o->key_uri = arg; break;
	case OPT_SUBJECT:	o->subject = arg; break;
	case OPT_CA_FP:		o->ca_fingerprint = arg; break;
	case OPT_CHALLENGE_FILE: o->challenge_file = arg; break;
	case OPT_CERT_OUT:	o->cert_out = arg; break;
	case OPT_CHAIN_OUT:	o->chain_out = arg; break;
	case OPT_OUT_DIR:	o->out_dir = arg; break;
	case OPT_MODULE:	o->module = arg; break;
	case OPT_CACERT:	o->cacert = arg; break;
	case OPT_IMPORT_CHAIN:	o->import_chain = 1; break;
	case OPT_INSECURE_TLS:	o->insecure_tls = 1; break;
	case OPT_VERBOSE:	o->verbose++; break;
	case OPT_TIMINGS:	o->timings = 1; break;
	case OPT_HELP:		o->help = 1; break;
	case OPT_KEY_TYPE:
		o->given |= GIVEN_KEY_TYPE;
		if (ks_keyspec_parse(arg, &o->keyspec) != 0)
			return err_set(P11S_E_USAGE, "--key-type %s: expected " KS_KEYSPEC_NAMES, arg);
		return P11S_OK;
	case OPT_CIPHER:
		o->given |= GIVEN_CIPHER;
		return cipher_from_name(arg, &o->cipher);
	case OPT_DIGEST:
		o->given |= GIVEN_DIGEST;
		return digest_from_name(arg, &o->digest);
	case OPT_DNS:		return add_san("dns", arg, o->dns, &o->n_dns);
	case OPT_IP:		return add_san("ip", arg, o->ip, &o->n_ip);
	case OPT_TIMEOUT:
		o->given |= GIVEN_TIMEOUT;
		return parse_long("timeout", arg, 1, 86400, &o->timeout_s);
	case OPT_STATE_DIR:	o->state_dir = arg; break;
	case OPT_NEW_REQUEST:	o->new_request = 1; break;
	case OPT_CERT_IN:	o->cert_in = arg; break;
	case OPT_SERIAL:	o->serial = arg; break;
	case OPT_STRICT:	o->strict = 1; break;
	case OPT_CONFIG:	o->config = arg; break;
	case OPT_JSON:		o->json = 1; break;
	case OPT_PROFILE:	o->profile = arg; break;
	case OPT_CRL_OUT:	o->crl_out = arg; break;
	case OPT_REUSE_KEY:	o->reuse_key = 1; break;
	case OPT_REMOVE_OLD:	o->remove_old = 1; break;
	case OPT_RENEWAL_MODE:
		if (strcmp(arg, "pkcsreq") == 0)
			o->renewal_pkcsreq = 1;
		else if (strcmp(arg, "renewalreq") != 0)
			return err_set(P11S_E_USAGE, "--renewal-mode %s: expected renewalreq or pkcsreq", arg);
		break;
	case OPT_POLL_INTERVAL:
		o->given |= GIVEN_POLL_INTERVAL;
		return parse_long("poll-interval", arg, 1, 86400, &o->poll_interval_s);
	case OPT_JOBS:
		return parse_long("jobs", arg, 1, 64, &o->jobs);
	case OPT_MAX_POLL_TIME:
		o->given |= GIVEN_MAX_POLL_TIME;
		return parse_long("max-poll-time", arg, 0, 30L * 86400, &o->max_poll_time_s);
	default:		return err_set(P11S_E_INTERNAL, "unhandled option %d", key);
	}
	return P11S_OK;
}

static enum p11s_err parse_command(const char *word, struct opts *o)
{
	size_t i;

	if (strcmp(word, "--help") == 0 || strcmp(word, "-h") == 0 || strcmp(word, "help") == 0) {
		o->help = 1;
		return P11S_OK;
	}
	if (strcmp(word, "--version") == 0 || strcmp(word, "version") == 0) {
		o->version = 1;
		return P11S_OK;
	}
	for (i = 0; i < N_CMDS; i++) {
		if (strcmp(word, commands[i].name) == 0) {
			o->cmd = commands[i].cmd;
			return P11S_OK;
		}
	}
	return err_set(P11S_E_USAGE, "unknown command '%s': see 'p11scep --help'", word);
}

/*
 * getopt_long takes any unique prefix of a long option. We do not: "--chal"
 * for --challenge-file would make a challenge typed on the command line a
 * file name, and let it show up in an error message.
 */
static enum p11s_err refuse_abbreviations(int argc, char **argv, enum command cmd)
{
	int i;
	size_t k;

	for (i = 2; i < argc; i++) {
		const char *a = argv[i];
		const struct opt_def *d = NULL;
		size_t n;

		if (strcmp(a, "--") == 0)
			break;
		if (strncmp(a, "--", 2) != 0)
			continue;
		n = strcspn(a + 2, "=");
		for (k = 0; k < N_OPTS && d == NULL; k++)
			if (strlen(opt_table[k].name) == n &&
			    strncmp(opt_table[k].name, a + 2, n) == 0)
				d = &opt_table[k];
		if (d == NULL)
			return err_set(P11S_E_USAGE, "%s: unknown option '--%.*s': see 'p11scep %s --help'",
				       command_name(cmd), (int)(n < 40 ? n : 40), a + 2,
				       command_name(cmd));
		if (d->arg != NULL && a[2 + n] != '=')
			i++;	/* its value may start with "--" */
	}
	return P11S_OK;
}

enum p11s_err opts_parse(int argc, char **argv, struct opts *o)
{
	struct option longopts[N_OPTS + 1];
	char shortopts[3 * N_OPTS + 2];
	size_t i, ns = 0;
	unsigned int bit;
	enum p11s_err rc;
	int c;

	memset(o, 0, sizeof(*o));
	o->keyspec.type = KS_KEY_RSA;
	o->keyspec.bits = 2048;
	o->poll_interval_s = 60;
	o->jobs = 4;
	o->max_poll_time_s = 8 * 3600;
	if (argc < 2)
		return err_set(P11S_E_USAGE, "no command given: see 'p11scep --help'");
	rc = parse_command(argv[1], o);
	if (rc != P11S_OK || o->cmd == CMD_NONE)
		return rc;
	bit = 1u << o->cmd;

	shortopts[ns++] = ':';	/* report a missing argument as ':' */
	for (i = 0; i < N_OPTS; i++) {
		longopts[i].name = opt_table[i].name;
		longopts[i].has_arg = opt_table[i].arg ? required_argument : no_argument;
		longopts[i].flag = NULL;
		longopts[i].val = opt_table[i].key;
		if (opt_table[i].key < 256) {
			shortopts[ns++] = (char)opt_table[i].key;
			if (opt_table[i].arg)
				shortopts[ns++] = ':';
		}
	}
	memset(&longopts[N_OPTS], 0, sizeof(longopts[N_OPTS]));
	shortopts[ns] = '\0';

	rc = refuse_abbreviations(argc, argv, o->cmd);
	if (rc != P11S_OK)
		return rc;
	optind = 2;
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		const struct opt_def *d;

		if (c == '?')
			return err_set(P11S_E_USAGE, "%s: unknown option '%.40s': see 'p11scep %s --help'",
				       command_name(o->cmd), argv[optind - 1], command_name(o->cmd));
		if (c == ':')
			return err_set(P11S_E_USAGE, "%s: option '%s' needs a value",
				       command_name(o->cmd), argv[optind - 1]);
		d = opt_by_key(c);
		if (d == NULL || !(d->cmds & bit))
			return err_set(P11S_E_USAGE, "%s does not take --%s: see 'p11scep %s --help'",
				       command_name(o->cmd), d ? d->name : "?", command_name(o->cmd));
		rc = apply(o, c, optarg);
		if (rc != P11S_OK)
			return rc;
	}
	if (optind < argc)
		/* not echoed: a stray word may be a secret typed in the wrong place */
		return err_set(P11S_E_USAGE, "%s: unexpected argument (word %d): options take "
			       "the form --name VALUE", command_name(o->cmd), optind);
	return P11S_OK;
}

enum p11s_err opts_check_required(const struct opts *o)
{
	unsigned int bit = 1u << o->cmd;
	size_t i;

	for (i = 0; i < N_OPTS; i++) {
		const struct opt_def *d = &opt_table[i];
		const char *v = NULL;

		if (!(d->required & bit))
			continue;
		switch (d->key) {
		case OPT_URL:		v = o->url; break;
		case OPT_KEY:		v = o->key_uri; break;
		case OPT_SUBJECT:	v = o->subject; break;
		case OPT_CA_FP:		v = o->ca_fingerprint; break;
		case OPT_SERIAL:	v = o->serial; break;
		default:		break;
		}
		if (v == NULL)
			return err_set(P11S_E_USAGE, "%s needs --%s %s: see 'p11scep %s --help'",
				       command_name(o->cmd), d->name, d->arg, command_name(o->cmd));
	}
	return P11S_OK;
}

#define TAKE(field) do { if (o->field == NULL) o->field = p->field; } while (0)

void opts_apply_profile(struct opts *o, const struct conf_profile *p)
{
	size_t i;

	TAKE(url);
	TAKE(key_uri);
	TAKE(module);
	TAKE(subject);
	TAKE(ca_fingerprint);
	TAKE(challenge_file);
	TAKE(cert_out);
	TAKE(chain_out);
	TAKE(state_dir);
	TAKE(cacert);
	if (o->cmd == CMD_GETCA || o->cmd == CMD_GETNEXTCA)
		o->out_dir = o->out_dir ? o->out_dir : p->ca_dir;
	if (o->n_dns == 0 && o->n_ip == 0) {
		for (i = 0; i < p->n_dns && i < OPTS_MAX_SANS; i++)
			o->dns[i] = p->dns[i];
		o->n_dns = i;
		for (i = 0; i < p->n_ip && i < OPTS_MAX_SANS; i++)
			o->ip[i] = p->ip[i];
		o->n_ip = i;
	}
	if (!(o->given & GIVEN_KEY_TYPE)) {
		o->keyspec = p->keyspec;
		if (p->set & CONF_SET_KEY_TYPE)
			o->given |= GIVEN_KEY_TYPE;	/* chosen: renew keeps to it */
	}
	if (!(o->given & GIVEN_CIPHER))
		o->cipher = p->cipher;
	if (!(o->given & GIVEN_DIGEST))
		o->digest = p->digest;
	if (!(o->given & GIVEN_POLL_INTERVAL))
		o->poll_interval_s = p->poll_interval_s;
	if (!(o->given & GIVEN_MAX_POLL_TIME))
		o->max_poll_time_s = p->max_poll_time_s;
	if (!(o->given & GIVEN_TIMEOUT) && (p->set & CONF_SET_TIMEOUT))
		o->timeout_s = p->timeout_s;
	o->strict |= p->strict;
	o->import_chain |= p->import_chain;
	if (o->cmd == CMD_RENEW && !p->new_key_on_renew)
		o->reuse_key = 1;
}
#undef TAKE
