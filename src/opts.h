/* Command line: one option table gives the parser, the checks and --help. No globals. */
#ifndef P11SCEP_OPTS_H
#define P11SCEP_OPTS_H

#include <stddef.h>
#include <stdio.h>

#include "caps.h"
#include "err.h"
#include "keystore.h"

enum command { CMD_NONE = 0, CMD_GETCAPS, CMD_GETCA, CMD_ENROLL, CMD_POLL, CMD_RENEW,
	       CMD_GETNEXTCA, CMD_GETCERT, CMD_GETCRL, CMD_STATUS, CMD_RUN, CMD_SHOWCERT,
	       CMD_TOKENINFO };

#define OPTS_MAX_SANS 32

/* Options given on the command line, so that a profile does not override them. */
enum opts_given {
	GIVEN_KEY_TYPE = 1u << 0,
	GIVEN_CIPHER = 1u << 1,
	GIVEN_DIGEST = 1u << 2,
	GIVEN_POLL_INTERVAL = 1u << 3,
	GIVEN_MAX_POLL_TIME = 1u << 4,
	GIVEN_TIMEOUT = 1u << 5,
};

struct conf_profile;

struct opts {
	enum command cmd;
	const char *config;	/* -c FILE */
	const char *profile;	/* -p NAME */
	unsigned int given;	/* enum opts_given */
	const char *url;
	const char *key_uri;
	const char *module;
	const char *subject;
	const char *ca_fingerprint;
	const char *challenge_file;
	const char *cert_in;	/* renew: the current certificate */
	const char *cert_out;
	const char *crl_out;
	const char *serial;
	const char *chain_out;
	const char *out_dir;
	const char *cacert;
	struct ks_keyspec keyspec;
	enum scep_cipher cipher;
	enum scep_digest digest;
	const char *dns[OPTS_MAX_SANS];
	size_t n_dns;
	const char *ip[OPTS_MAX_SANS];
	size_t n_ip;
	const char *state_dir;
	const char *store_dir;	/* the profile's directory (with -p): certs, pending */
	long timeout_s;
	long poll_interval_s;	/* default 60 */
	long max_poll_time_s;	/* default 8 h */
	int new_request;
	int json;
	int strict;
	int reuse_key;
	int remove_old;
	int renewal_pkcsreq;
	int import_chain;
	int insecure_tls;
	int verbose;
	int timings;		/* --timings: per-step lines for benchmarks */
	long jobs;		/* run: profiles worked on at once */
	int help;
	int version;
};

/* Fills o from argv (argv[1] is the command). P11S_E_USAGE with a message on
 * any bad option, missing value, or option the command does not take.
 * Required options are checked by opts_check_required. */
enum p11s_err opts_parse(int argc, char **argv, struct opts *o);

/* Fill what the command line left unset from profile p (flags win). */
void opts_apply_profile(struct opts *o, const struct conf_profile *p);
/* The options the command requires, after any profile was applied. */
enum p11s_err opts_check_required(const struct opts *o);

/* Usage for one command (or the overview for CMD_NONE), from the same table. */
void opts_usage(FILE *f, enum command cmd);

const char *command_name(enum command cmd);

#endif
