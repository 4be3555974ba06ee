#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "caps.h"

/* A real GetCACaps body is about 100 bytes; anything huge is not one. */
#define CAPS_MAX_LEN	(64 * 1024)

static const struct {
	const char *word;
	unsigned int bit;
} caps_words[] = {
	{ "AES",		CAP_AES },
	{ "DES3",		CAP_DES3 },
	{ "SHA-1",		CAP_SHA1 },
	{ "SHA-224",		CAP_SHA224 },
	{ "SHA-256",		CAP_SHA256 },
	{ "SHA-384",		CAP_SHA384 },
	{ "SHA-512",		CAP_SHA512 },
	{ "POSTPKIOperation",	CAP_POST },
	{ "Renewal",		CAP_RENEWAL },
	{ "SCEPStandard",	CAP_SCEPSTANDARD },
	{ "GetNextCACert",	CAP_GETNEXTCACERT },
	{ "Update",		CAP_UPDATE },
};

#define N_WORDS (sizeof(caps_words) / sizeof(caps_words[0]))

static int is_sep(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\0' ||
	    c == '\v' || c == '\f';
}

static unsigned int caps_word_bit(const char *w, size_t n)
{
	size_t i;

	for (i = 0; i < N_WORDS; i++) {
		if (strlen(caps_words[i].word) == n &&
		    strncasecmp(caps_words[i].word, w, n) == 0)
			return caps_words[i].bit;
	}
	return 0;
}

enum p11s_err caps_parse(const char *text, size_t len, struct scep_caps *out)
{
	size_t i = 0, start;

	memset(out, 0, sizeof(*out));
	if (len > CAPS_MAX_LEN)
		return err_set(P11S_E_MALFORMED,
		    "GetCACaps reply is %zu bytes, more than the %d a list of "
		    "capabilities needs: is the URL a SCEP server?", len, CAPS_MAX_LEN);
	if (text == NULL)
		return P11S_OK;
	while (i < len) {
		while (i < len && is_sep(text[i]))
			i++;
		start = i;
		while (i < len && !is_sep(text[i]))
			i++;
		if (i > start)
			out->raw |= caps_word_bit(text + start, i - start);
	}
	out->bits = out->raw;
	if (out->raw & CAP_SCEPSTANDARD)
		out->bits |= CAP_AES | CAP_SHA256 | CAP_POST;
	return P11S_OK;
}

void caps_format(unsigned int bits, char *buf, size_t buflen)
{
	size_t i, used = 0;
	int n;

	if (buflen == 0)
		return;
	buf[0] = '\0';
	for (i = 0; i < N_WORDS; i++) {
		if (!(bits & caps_words[i].bit))
			continue;
		n = snprintf(buf + used, buflen - used, "%s%s",
		    used ? " " : "", caps_words[i].word);
		if (n < 0 || (size_t)n >= buflen - used) {
			buf[used] = '\0';	/* whole words only */
			return;
		}
		used += (size_t)n;
	}
}

const char *cipher_ossl_name(enum scep_cipher c)
{
	switch (c) {
	case CIPHER_AES128:	return "AES-128-CBC";
	case CIPHER_AES256:	return "AES-256-CBC";
	case CIPHER_DES3:	return "DES-EDE3-CBC";
	case CIPHER_AUTO:	break;
	}
	return NULL;
}

const char *digest_ossl_name(enum scep_digest d)
{
	switch (d) {
	case DIGEST_SHA256:	return "SHA256";
	case DIGEST_SHA512:	return "SHA512";
	case DIGEST_SHA1:	return "SHA1";
	case DIGEST_AUTO:	break;
	}
	return NULL;
}

static const char *cipher_word(enum scep_cipher c)
{
	switch (c) {
	case CIPHER_AES128:	return "aes128";
	case CIPHER_AES256:	return "aes256";
	case CIPHER_DES3:	return "des3";
	case CIPHER_AUTO:	break;
	}
	return "auto";
}

static const char *digest_word(enum scep_digest d)
{
	switch (d) {
	case DIGEST_SHA256:	return "sha256";
	case DIGEST_SHA512:	return "sha512";
	case DIGEST_SHA1:	return "sha1";
	case DIGEST_AUTO:	break;
	}
	return "auto";
}

/* Capability a user choice needs from the server. */
static unsigned int cipher_cap(enum scep_cipher c)
{
	return c == CIPHER_DES3 ? CAP_DES3 : CAP_AES;
}

static unsigned int digest_cap(enum scep_digest d)
{
	switch (d) {
	case DIGEST_SHA512:	return CAP_SHA512;
	case DIGEST_SHA1:	return CAP_SHA1;
	default:		return CAP_SHA256;
	}
}

static enum scep_cipher cipher_best(unsigned int bits)
{
	/* "AES" promises AES-128 only; AES-256 is for users who ask. */
	if (bits & CAP_AES)
		return CIPHER_AES128;
	return CIPHER_DES3;
}

static enum scep_digest digest_best(unsigned int bits)
{
	if (bits & CAP_SHA512)
		return DIGEST_SHA512;
	if (bits & CAP_SHA256)
		return DIGEST_SHA256;
	return DIGEST_SHA1;
}

static enum p11s_err refuse(const char *what, const char *capname, const char *hint,
			    unsigned int bits)
{
	char list[160];

	caps_format(bits, list, sizeof(list));
	return err_set(P11S_E_USAGE, "server does not advertise %s (caps: %s): choose --%s %s",
	    capname, list[0] != '\0' ? list : "none", what, hint);
}

/*
 * A server that names no cipher (or no digest) at all gets the RFC 8894
 * legacy default for it, and an explicit user choice is not contradicted by
 * silence. Otherwise a choice must be among what the server names.
 */
enum p11s_err caps_choose(const struct scep_caps *caps, enum scep_cipher want_cipher,
			  enum scep_digest want_digest, struct scep_algs *out)
{
	unsigned int bits = caps->bits;
	int ciphers_named = (bits & (CAP_AES | CAP_DES3)) != 0;
	int digests_named = (bits & (CAP_SHA1 | CAP_SHA256 | CAP_SHA512)) != 0;
	enum scep_cipher best_c = cipher_best(bits);
	enum scep_digest best_d = digest_best(bits);

	memset(out, 0, sizeof(*out));
	if (want_cipher != CIPHER_AUTO && ciphers_named && !(bits & cipher_cap(want_cipher)))
		return refuse("cipher", want_cipher == CIPHER_DES3 ? "DES3" : "AES",
		    best_c == CIPHER_AES128 ? "aes" : cipher_word(best_c), bits);
	if (want_digest != DIGEST_AUTO && digests_named && !(bits & digest_cap(want_digest)))
		return refuse("digest", want_digest == DIGEST_SHA512 ? "SHA-512" :
		    want_digest == DIGEST_SHA1 ? "SHA-1" : "SHA-256",
		    digest_word(best_d), bits);
	out->cipher = want_cipher != CIPHER_AUTO ? want_cipher : best_c;
	out->digest = want_digest != DIGEST_AUTO ? want_digest : best_d;
	out->use_post = (bits & CAP_POST) != 0;
	return P11S_OK;
}

static enum p11s_err refuse_strict(const char *missing, unsigned int raw)
{
	char list[160];

	caps_format(raw, list, sizeof(list));
	return err_set(P11S_E_UNTRUSTED, "server does not advertise %s (caps: %s): refusing "
	    "a possible downgrade (--strict)", missing, list[0] != '\0' ? list : "none");
}

enum p11s_err caps_check_strict(const struct scep_caps *caps)
{
	if (caps == NULL)
		return err_set(P11S_E_INTERNAL, "no capabilities to check");
	if (!(caps->raw & CAP_SCEPSTANDARD))
		return refuse_strict("SCEPStandard", caps->raw);
	/* Implied by SCEPStandard; checked in case bits were built otherwise. */
	if (!(caps->bits & CAP_AES))
		return refuse_strict("AES", caps->raw);
	if (!(caps->bits & (CAP_SHA256 | CAP_SHA512)))
		return refuse_strict("SHA-256 or SHA-512", caps->raw);
	return P11S_OK;
}

static const struct {
	const char *name;
	enum scep_cipher c;
} cipher_names[] = {
	{ "auto", CIPHER_AUTO },
	{ "aes", CIPHER_AES128 },
	{ "aes128", CIPHER_AES128 },
	{ "aes-128", CIPHER_AES128 },
	{ "aes256", CIPHER_AES256 },
	{ "aes-256", CIPHER_AES256 },
	{ "des3", CIPHER_DES3 },
	{ "3des", CIPHER_DES3 },
};

static const struct {
	const char *name;
	enum scep_digest d;
} digest_names[] = {
	{ "auto", DIGEST_AUTO },
	{ "sha256", DIGEST_SHA256 },
	{ "sha-256", DIGEST_SHA256 },
	{ "sha512", DIGEST_SHA512 },
	{ "sha-512", DIGEST_SHA512 },
	{ "sha1", DIGEST_SHA1 },
	{ "sha-1", DIGEST_SHA1 },
};

enum p11s_err cipher_from_name(const char *s, enum scep_cipher *out)
{
	size_t i;

	*out = CIPHER_AUTO;
	for (i = 0; s != NULL && i < sizeof(cipher_names) / sizeof(cipher_names[0]); i++) {
		if (strcasecmp(s, cipher_names[i].name) == 0) {
			*out = cipher_names[i].c;
			return P11S_OK;
		}
	}
	return err_set(P11S_E_USAGE,
	    "unknown cipher '%s': use aes (AES-128), aes256 or des3",
	    s != NULL ? s : "");
}

enum p11s_err digest_from_name(const char *s, enum scep_digest *out)
{
	size_t i;

	*out = DIGEST_AUTO;
	for (i = 0; s != NULL && i < sizeof(digest_names) / sizeof(digest_names[0]); i++) {
		if (strcasecmp(s, digest_names[i].name) == 0) {
			*out = digest_names[i].d;
			return P11S_OK;
		}
	}
	return err_set(P11S_E_USAGE, "unknown digest '%s': use sha256, sha512 or sha1",
	    s != NULL ? s : "");
}
