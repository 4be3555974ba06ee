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

/*
 * Files that must change together with something else (the token): each is
 * staged first (temp file beside it, filled and synced; a full disk fails
 * here, before anything changed), then all are renamed into place by
 * out_commit, or all temp files removed by out_drop.
 */
#define OUT_BATCH_MAX 10
struct out_batch {
	size_t n;
	struct { char *path, *dir, *tmp; } f[OUT_BATCH_MAX];
};
enum p11s_err out_stage(struct out_batch *b, const char *path, const void *data, size_t len,
			mode_t mode);
enum p11s_err out_stage_pem_certs(struct out_batch *b, const char *path, X509 *const *certs,
				  size_t n);
/* Renames every staged file into place and syncs its directory; empties b
 * (after a failure, the rest are dropped). */
enum p11s_err out_commit(struct out_batch *b);
/* Removes the temp files not yet committed; empties b. NULL-safe. */
void out_drop(struct out_batch *b);

/* mkdir -p: creates what is missing of dir with mode (umask applies) and
 * checks that dir is a directory. hint ends the error message, e.g.
 * " (use --state-dir)", or is "". */
enum p11s_err out_mkdirs(const char *dir, mode_t mode, const char *hint);

/* All of a small file into memory (NUL-terminated, not counted); free().
 * Files larger than max are P11S_E_IO naming the limit. */
enum p11s_err file_read_all(const char *path, size_t max, unsigned char **out, size_t *len);

#endif
