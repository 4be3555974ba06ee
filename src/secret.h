/* PINs and challenge passwords: from a file, the environment or the terminal. Never argv, never logged. */
#ifndef P11SCEP_SECRET_H
#define P11SCEP_SECRET_H

#include <stddef.h>

#include "err.h"

/* First line of path (without CR/LF) into buf. Refuses a file that other
 * users can write, or that is not a regular file. P11S_E_USAGE on error. */
enum p11s_err secret_from_file(const char *path, char *buf, size_t buflen);

/* Value of environment variable name into buf; P11S_E_NOTFOUND if unset.
 * The variable is then wiped in place and removed from the environment, so
 * no child process inherits it: a second call finds nothing. */
enum p11s_err secret_from_env(const char *name, char *buf, size_t buflen);

/* Prompt on /dev/tty with echo off; P11S_E_NOTFOUND when there is no terminal. */
enum p11s_err secret_prompt(const char *prompt, char *buf, size_t buflen);

/* Wipe a secret so the compiler cannot drop it (OPENSSL_cleanse). */
void secret_wipe(void *p, size_t n);

/* Make OpenSSL wipe every block it frees (copies of the challenge end up in
 * its ASN.1 and cipher buffers). Must come before anything allocates through
 * OpenSSL, i.e. first in main(); P11S_E_INTERNAL when it came too late. */
enum p11s_err secret_heap_init(void);

#endif
