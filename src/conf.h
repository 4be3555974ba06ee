/*
 * The configuration file: named enrollment profiles in INI form, with a
 * [defaults] section every profile inherits from. See p11scep.conf(5).
 * Parsing and checks only: nothing here touches the network or a token.
 */
#ifndef P11SCEP_CONF_H
#define P11SCEP_CONF_H

#include <stddef.h>

#include "caps.h"
#include "err.h"
#include "keystore.h"

#define CONF_DEFAULT_PATH	"/etc/p11scep/p11scep.conf"
#define CONF_MAX_SANS		32	/* dns and ip each, as OPTS_MAX_SANS */
#define CONF_MAX_SIZE		(1024 * 1024)
#define CONF_MAX_PROFILES	1024
#define CONF_NAME_MAX		64	/* profile names: [A-Za-z0-9._-]{1,64} */

/* Bits of conf_profile.set: the scalar settings the file gave (for a profile,
 * itself or through [defaults]). Where a bit is clear the field holds
 * p11scep's default, so the command line can tell "default" from "configured". */
enum conf_set {
	CONF_SET_KEY_TYPE		= 1u << 0,
	CONF_SET_CIPHER			= 1u << 1,
	CONF_SET_DIGEST			= 1u << 2,
	CONF_SET_RENEW_AT		= 1u << 3,
	CONF_SET_NEW_KEY_ON_RENEW	= 1u << 4,
	CONF_SET_POLL_INTERVAL		= 1u << 5,
	CONF_SET_MAX_POLL_TIME		= 1u << 6,
	CONF_SET_STRICT			= 1u << 7,
	CONF_SET_TIMEOUT		= 1u << 8,
	CONF_SET_IMPORT_CHAIN		= 1u << 9,
};

/*
 * One [profile NAME] with [defaults] applied. Strings are owned by the conf
 * and NULL when unset (url, key_uri, subject and ca_fingerprint never are).
 */
struct conf_profile {
	const char *name;		/* NAME of [profile NAME] */
	const char *file;		/* the file it came from */
	unsigned int line;		/* the line of its [profile NAME] */

	const char *url;		/* url, or built from scheme, host, port, cgi-path */
	const char *key_uri;		/* never holds pin-value= */
	const char *module;
	const char *subject;		/* checked with dn_parse() */
	const char *ca_fingerprint;	/* 64 hex digits, ':' or ' ' between them allowed */
	const char *challenge_file;	/* absolute paths, all of them */
	const char *cert_out;
	const char *chain_out;
	const char *ca_dir;
	const char *state_dir;
	const char *cacert;
	const char *post_enroll_command;	/* for /bin/sh -c, not checked further */
	const char *dns[CONF_MAX_SANS];
	size_t n_dns;
	const char *ip[CONF_MAX_SANS];	/* checked with inet_pton */
	size_t n_ip;

	unsigned int set;		/* enum conf_set */
	struct ks_keyspec keyspec;	/* default rsa:2048 */
	enum scep_cipher cipher;	/* default CIPHER_AUTO */
	enum scep_digest digest;	/* default DIGEST_AUTO */
	long renew_at;			/* percent of the lifetime, 1..99; default 80 */
	int new_key_on_renew;		/* default 1 */
	long poll_interval_s;		/* 1..86400; default 60 */
	long max_poll_time_s;		/* 0..30 days; default 28800 */
	int strict;			/* default 0 */
	long timeout_s;			/* 1..86400; default 60 */
	int import_chain;		/* default 0 */
};

struct conf {
	char *path;
	struct conf_profile *profiles;	/* in file order */
	size_t n_profiles;
};

/*
 * Reads and checks the whole file into *out, which it overwrites (conf_free
 * an earlier one first). On any error *out is empty (conf_free is still
 * safe) and the message names the file, and for content FILE:LINE:
 *   P11S_E_IO     the file cannot be opened or read;
 *   P11S_E_USAGE  not a regular file, writable by group or others, larger
 *                 than CONF_MAX_SIZE, or any error in its content.
 * A file with no profile at all is fine.
 */
enum p11s_err conf_load(const char *path, struct conf *out);

/* NULL-safe; leaves *c empty. */
void conf_free(struct conf *c);

/* The profile called name, or NULL (the caller words the message). */
const struct conf_profile *conf_find(const struct conf *c, const char *name);
/* conf_load, then: the file must have [profile NAME] when name is not NULL
 * (run and status over one profile). On error *out is empty. */
enum p11s_err conf_load_with(const char *path, const char *name, struct conf *out);

#endif
