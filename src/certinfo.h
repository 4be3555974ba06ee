/* Certificates as people read them: one-line names, dates, serials. */
#ifndef P11SCEP_CERTINFO_H
#define P11SCEP_CERTINFO_H

#include <stddef.h>
#include <openssl/x509.h>

/* RFC 2253 one-line name ("CN=a,O=b"); "?" when it cannot be printed. */
void certinfo_name(const X509_NAME *name, char *buf, size_t buflen);
/* "2026-11-23 10:33:09 UTC" */
void certinfo_time(const ASN1_TIME *t, char *buf, size_t buflen);
/* Serial as upper-case hex, no separators. */
void certinfo_serial(X509 *cert, char *buf, size_t buflen);

/* A block of "role:", "subject:", "issuer:", "serial:", "not-before:",
 * "not-after:", "sha256:" lines on stdout; no role line when role is NULL. */
void certinfo_print(X509 *cert, const char *role);

#endif
