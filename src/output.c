#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

#include "output.h"

/*
 * Splits path into the directory to sync and the temp file's template
 * "DIR/.NAME.XXXXXX" (".NAME.XXXXXX" for a bare name), both malloc'd.
 */
static enum p11s_err temp_names(const char *path, char **dir, char **tmpl)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	size_t dlen = slash ? (size_t)(slash - path) : 0;
	size_t n;

	*dir = NULL;
	*tmpl = NULL;
	if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return err_set(P11S_E_USAGE, "%s does not name a file", path);
	if (slash == NULL)
		*dir = strdup(".");
	else if (dlen == 0)
		*dir = strdup("/");
	else
		*dir = strndup(path, dlen);
	n = dlen + strlen(base) + sizeof("/..XXXXXX");
	*tmpl = malloc(n);
	if (*dir == NULL || *tmpl == NULL) {
		free(*dir);
		free(*tmpl);
		*dir = NULL;
		*tmpl = NULL;
		return err_set(P11S_E_NOMEM, "out of memory writing %s", path);
	}
	if (slash == NULL)
		snprintf(*tmpl, n, ".%s.XXXXXX", base);
	else
		snprintf(*tmpl, n, "%.*s/.%s.XXXXXX", (int)dlen, path, base);
	return P11S_OK;
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Makes the rename itself durable. Filesystems that cannot sync a directory say EINVAL. */
static enum p11s_err sync_dir(const char *dir, const char *path)
{
	int fd, e = 0;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1 || (fsync(fd) == -1 && errno != EINVAL))
		e = errno;
	if (fd != -1)
		close(fd);
	if (e != 0)
		return err_set(P11S_E_IO, "%s was written but directory %s could not be synced: %s",
			       path, dir, strerror(e));
	return P11S_OK;
}

/* Fills the temp file: exact mode, all bytes, on disk. */
static enum p11s_err fill_temp(int fd, const char *path, const void *data, size_t len,
			       mode_t mode)
{
	/* fchmod, not the umask: the caller's mode is what the file gets. */
	if (fchmod(fd, mode & 07777) == -1)
		return err_set(P11S_E_IO, "cannot set the mode of a new %s: %s",
			       path, strerror(errno));
	if (write_all(fd, data, len) == -1)
		return err_set(P11S_E_IO, "cannot write %s: %s", path, strerror(errno));
	if (fsync(fd) == -1)
		return err_set(P11S_E_IO, "cannot sync %s to disk: %s", path, strerror(errno));
	return P11S_OK;
}

enum p11s_err out_check_writable(const char *path)
{
	struct stat st;
	char *dir = NULL, *tmpl = NULL;
	enum p11s_err rc;

	rc = temp_names(path, &dir, &tmpl);
	if (rc != P11S_OK)
		return rc;
	if (stat(dir, &st) == -1)
		rc = err_set(P11S_E_IO, "cannot write %s: directory %s: %s", path, dir,
			     strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		rc = err_set(P11S_E_IO, "cannot write %s: %s is not a directory", path, dir);
	else if (access(dir, W_OK | X_OK) == -1)
		rc = err_set(P11S_E_IO, "cannot write %s: directory %s: %s", path, dir,
			     strerror(errno));
	else if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		rc = err_set(P11S_E_IO, "cannot write %s: it is a directory", path);
	free(dir);
	free(tmpl);
	return rc;
}

/* The temp file beside path, filled with data and synced: staged in b. */
enum p11s_err out_stage(struct out_batch *b, const char *path, const void *data, size_t len,
			mode_t mode)
{
	char *dir = NULL, *tmp = NULL, *dst = NULL;
	enum p11s_err r;
	int fd = -1, rc;

	if (b->n >= OUT_BATCH_MAX)
		return err_set(P11S_E_INTERNAL, "too many files to write at once (%s)", path);
	r = temp_names(path, &dir, &tmp);
	if (r != P11S_OK)
		return r;
	dst = strdup(path);
	if (dst == NULL) {
		r = err_set(P11S_E_NOMEM, "out of memory writing %s", path);
		goto fail;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd == -1) {
		r = err_set(P11S_E_IO, "cannot create a temporary file in %s to write %s: %s",
			    dir, path, strerror(errno));
		goto fail;
	}
	r = fill_temp(fd, path, data, len, mode);
	rc = close(fd);
	if (r == P11S_OK && rc == -1)
		r = err_set(P11S_E_IO, "cannot write %s: %s", path, strerror(errno));
	if (r != P11S_OK) {
		unlink(tmp);
		goto fail;
	}
	b->f[b->n].path = dst;
	b->f[b->n].dir = dir;
	b->f[b->n].tmp = tmp;
	b->n++;
	return P11S_OK;
fail:
	free(dst);
	free(tmp);
	free(dir);
	return r;
}

static void staged_free(struct out_batch *b, size_t i)
{
	free(b->f[i].path);
	free(b->f[i].dir);
	free(b->f[i].tmp);
	memset(&b->f[i], 0, sizeof(b->f[i]));
}

enum p11s_err out_commit(struct out_batch *b)
{
	enum p11s_err r = P11S_OK;
	size_t i;

	for (i = 0; i < b->n && r == P11S_OK; i++) {
		if (rename(b->f[i].tmp, b->f[i].path) == -1) {
			r = err_set(P11S_E_IO, "cannot replace %s: %s", b->f[i].path, strerror(errno));
			break;
		}
		r = sync_dir(b->f[i].dir, b->f[i].path);
		staged_free(b, i);
	}
	out_drop(b);	/* what is left after a failure */
	return r;
}

void out_drop(struct out_batch *b)
{
	size_t i;

	if (b == NULL)
		return;
	for (i = 0; i < b->n; i++) {
		if (b->f[i].tmp != NULL)
			unlink(b->f[i].tmp);
		staged_free(b, i);
	}
	b->n = 0;
}

enum p11s_err out_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	struct out_batch b = { 0 };
	enum p11s_err r;

	r = out_stage(&b, path, data, len, mode);
	if (r == P11S_OK)
		r = out_commit(&b);
	out_drop(&b);
	return r;
}

enum p11s_err out_stage_pem_certs(struct out_batch *b, const char *path, X509 *const *certs,
				  size_t n)
{
	BIO *mem = NULL;
	char *data = NULL;
	long len;
	enum p11s_err r;
	size_t i;

	if (n == 0)
		return err_set(P11S_E_INTERNAL, "no certificates to write to %s", path);
	mem = BIO_new(BIO_s_mem());
	if (mem == NULL)
		return err_set_ssl(P11S_E_NOMEM, "cannot write %s", path);
	for (i = 0; i < n; i++) {
		if (certs[i] == NULL || !PEM_write_bio_X509(mem, certs[i])) {
			r = err_set_ssl(P11S_E_INTERNAL,
					"cannot encode certificate %zu of %zu for %s",
					i + 1, n, path);
			goto out;
		}
	}
	len = BIO_get_mem_data(mem, &data);
	if (len <= 0 || data == NULL) {
		r = err_set(P11S_E_INTERNAL, "no PEM data for %s", path);
		goto out;
	}
	r = out_stage(b, path, data, (size_t)len, 0644);
out:
	BIO_free(mem);
	return r;
}

enum p11s_err out_write_pem_certs(const char *path, X509 *const *certs, size_t n)
{
	struct out_batch b = { 0 };
	enum p11s_err r;

	r = out_stage_pem_certs(&b, path, certs, n);
	if (r == P11S_OK)
		r = out_commit(&b);
	out_drop(&b);
	return r;
}

/* Reads up to max + 1 bytes, so that a file over the limit is noticed even
 * when its size was not known in advance (pipes, /proc, growing files). */
static enum p11s_err read_bounded(int fd, const char *path, size_t max, size_t hint,
				  unsigned char **out, size_t *outlen)
{
	size_t cap = (hint < max ? hint : max) + 1, len = 0;
	unsigned char *buf, *nbuf;
	enum p11s_err r = P11S_OK;
	ssize_t n;

	if (cap < 4096 && max >= 4096)
		cap = 4096;	/* size unknown or tiny: start with a page */
	buf = malloc(cap + 1);
	if (buf == NULL)
		return err_set(P11S_E_NOMEM, "out of memory reading %s", path);
	for (;;) {
		if (len == cap) {
			if (cap > max) {
				r = err_set(P11S_E_IO, "%s is larger than %zu bytes: refusing it",
					    path, max);
				goto out;
			}
			cap = cap > max / 2 ? max + 1 : cap * 2;
			nbuf = realloc(buf, cap + 1);
			if (nbuf == NULL) {
				r = err_set(P11S_E_NOMEM, "out of memory reading %s", path);
				goto out;
			}
			buf = nbuf;
		}
		n = read(fd, buf + len, cap - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			r = err_set(P11S_E_IO, "cannot read %s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		r = err_set(P11S_E_IO, "%s is larger than %zu bytes: refusing it", path, max);
		goto out;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	buf = NULL;
out:
	free(buf);
	return r;
}

enum p11s_err out_mkdirs(const char *dir, mode_t mode, const char *hint)
{
	char path[4096];
	struct stat st;
	size_t i, n = strlen(dir);

	if (n == 0 || n >= sizeof(path))
		return err_set(P11S_E_USAGE, "bad directory name '%s'%s", dir, hint);
	memcpy(path, dir, n + 1);
	for (i = 1; i <= n; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, mode) == -1 && errno != EEXIST)
			return err_set(P11S_E_IO, "cannot create directory %s: %s%s", path,
				       strerror(errno), hint);
		path[i] = dir[i];
	}
	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode))
		return err_set(P11S_E_IO, "%s is not a directory%s", dir, hint);
	return P11S_OK;
}

enum p11s_err file_read_all(const char *path, size_t max, unsigned char **out, size_t *len)
{
	struct stat st;
	size_t hint = 0, dummy;
	enum p11s_err r;
	int fd;

	*out = NULL;
	if (len == NULL)
		len = &dummy;
	*len = 0;
	/* Keeps max + 1 and the doubling in read_bounded from overflowing. */
	if (max > SIZE_MAX / 2)
		max = SIZE_MAX / 2;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd == -1)
		return err_set(P11S_E_IO, "cannot open %s: %s", path, strerror(errno));
	if (fstat(fd, &st) == -1) {
		r = err_set(P11S_E_IO, "cannot stat %s: %s", path, strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		r = err_set(P11S_E_IO, "%s is a directory, not a file", path);
		goto out;
	}
	if (S_ISREG(st.st_mode)) {
		if ((unsigned long long)st.st_size > max) {
			r = err_set(P11S_E_IO, "%s is larger than %zu bytes: refusing it",
				    path, max);
			goto out;
		}
		hint = (size_t)st.st_size;
	}
	r = read_bounded(fd, path, max, hint, out, len);
out:
	close(fd);
	return r;
}
