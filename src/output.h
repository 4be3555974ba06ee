/* Files we write: temp file + fsync + rename, so a reader never sees half a file. */
#ifndef P11SCEP_OUTPUT_H
#define P11SCEP_OUTPUT_H

#include <stddef.h>
#include <sys/types.h>
#include <openssl/x509.h>

#include "err.h"

/* Writes data to path atomically with mode. On any error nothing is left
 * behind (no temp file) and an existing file at path is untouched. */
enum p11s_err out_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Whether path can be written: its directory exists, is a directory and is
 * writable. Checked before anything is sent, so that a bad output path fails
 * before the CA issues anything. P11S_E_IO naming the problem. */
enum p11s_err out_check_writable(const char *path);

/* certs (in order) as PEM, atomically, mode 0644. */
enum p11s_err out_write_pem_certs(const char *path, X509 *const *certs, size_t n);

/* All of a small file into memory (NUL-terminated, not counted); free().
 * Files larger than max are P11S_E_IO naming the limit. */
enum p11s_err file_read_all(const char *path, size_t max, unsigned char **out, size_t *len);

#endif
