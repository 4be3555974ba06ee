/* GetCACaps: text in, capability bits and chosen algorithms out. No I/O. */
#ifndef P11SCEP_CAPS_H
#define P11SCEP_CAPS_H

#include <stddef.h>

#include "err.h"

enum caps_bit {
	CAP_AES			= 1u << 0,	/* "AES" (AES-128-CBC; we may use AES-256) */
	CAP_DES3		= 1u << 1,	/* "DES3" */
	CAP_SHA1		= 1u << 2,	/* "SHA-1" */
	CAP_SHA256		= 1u << 3,	/* "SHA-256" */
	CAP_SHA512		= 1u << 4,	/* "SHA-512" */
	CAP_POST		= 1u << 5,	/* "POSTPKIOperation" */
	CAP_RENEWAL		= 1u << 6,	/* "Renewal" */
	CAP_SCEPSTANDARD	= 1u << 7,	/* "SCEPStandard" (implies AES, SHA-256, POST) */
	CAP_GETNEXTCACERT	= 1u << 8,	/* "GetNextCACert" */
	CAP_SHA224		= 1u << 9,	/* "SHA-224" */
	CAP_SHA384		= 1u << 10,	/* "SHA-384" */
	CAP_UPDATE		= 1u << 11,	/* "Update" */
};

struct scep_caps {
	unsigned int bits;	/* enum caps_bit, SCEPStandard's implications included */
	unsigned int raw;	/* only what the server named */
};

/*
 * Parses a GetCACaps body: keywords separated by LF or CRLF (or spaces),
 * case-insensitive; unknown keywords are ignored. An empty body gives no
 * capabilities. Never fails on content, only on absurd size.
 */
enum p11s_err caps_parse(const char *text, size_t len, struct scep_caps *out);

/* "AES DES3 SHA-256 ..." for the bits set, into buf. */
void caps_format(unsigned int bits, char *buf, size_t buflen);

enum scep_cipher { CIPHER_AUTO = 0, CIPHER_AES128, CIPHER_AES256, CIPHER_DES3 };
enum scep_digest { DIGEST_AUTO = 0, DIGEST_SHA256, DIGEST_SHA512, DIGEST_SHA1 };

struct scep_algs {
	enum scep_cipher cipher;	/* never AUTO once chosen */
	enum scep_digest digest;
	int use_post;			/* POST PKIOperation, else GET */
};

/*
 * AUTO picks AES-128 when the server says "AES" (AES-256 only when asked:
 * "AES" promises AES-128), else 3DES; SHA-512 > SHA-256 > SHA-1. No caps at
 * all means 3DES + SHA-1 + GET (RFC 8894 legacy); a server that names no
 * cipher (or no digest) at all does not contradict an explicit user choice
 * of one. A user choice the server does not advertise is P11S_E_USAGE with
 * a message saying so. Single DES and MD5 are never chosen.
 */
enum p11s_err caps_choose(const struct scep_caps *caps, enum scep_cipher want_cipher,
			  enum scep_digest want_digest, struct scep_algs *out);

/*
 * --strict: RFC 8894 says a missing SCEPStandard may be a downgrade. Refuses
 * (P11S_E_UNTRUSTED, message naming the caps received) a server whose caps
 * lack SCEPStandard, or AES, or both SHA-256 and SHA-512. SCEPStandard's
 * implications count (caps->bits), so "SCEPStandard" alone passes.
 */
enum p11s_err caps_check_strict(const struct scep_caps *caps);

/* OpenSSL names: "AES-256-CBC", "SHA256", ... */
const char *cipher_ossl_name(enum scep_cipher c);
const char *digest_ossl_name(enum scep_digest d);
/* Parse user words "aes", "aes128", "aes256", "des3" / "sha256", "sha512", "sha1". */
enum p11s_err cipher_from_name(const char *s, enum scep_cipher *out);
enum p11s_err digest_from_name(const char *s, enum scep_digest *out);

#endif
