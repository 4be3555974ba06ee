/* Helpers shared by the libFuzzer harnesses: providers, test data, temp files. */
#ifndef P11SCEP_FUZZ_COMMON_H
#define P11SCEP_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"

/* libFuzzer's LLVMFuzzerInitialize is fuzz_common.c's: it runs
 * fuzz_init_openssl(), then the harness's fuzz_setup() if it has one. */
void fuzz_setup(void);

/* Loads OpenSSL's default and legacy providers once (micromdm signs with
 * single DES, which only the legacy provider decrypts). Aborts on failure:
 * a harness that cannot start must not report a clean run. */
void fuzz_init_openssl(void);

/* With FUZZ_VERBOSE=1 in the environment (read by fuzz_init_openssl), prints
 * each parse result and message: to check that seeds get where they should. */
void fuzz_report(const char *what, enum p11s_err rc);

/* SRCDIR/rel, SRCDIR being $P11SCEP_SRCDIR or the tree build.sh compiled from. */
X509 *fuzz_load_cert(const char *rel);		/* PEM or DER; aborts if absent */
EVP_PKEY *fuzz_load_key(const char *rel);	/* PEM; aborts if absent */

/* Writes data to a fresh mkstemp file in /tmp (mode 0600) and returns its
 * path in buf, or -1. The caller unlinks it. */
int fuzz_write_temp(const uint8_t *data, size_t size, const char *tag, char *buf, size_t buflen);

#endif
