#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "output.h"
#include "store.h"

const char *store_dir(const char *ca_dir, const char *state_dir, const char *name,
		      char *buf, size_t buflen)
{
	if (ca_dir != NULL)
		snprintf(buf, buflen, "%s", ca_dir);
	else
		snprintf(buf, buflen, "%s/profiles/%s", state_dir, name);
	return buf;
}

enum p11s_err store_lock(const char *dir, int *fd)
{
	char path[4096];
	enum p11s_err rc;

	*fd = -1;
	rc = out_mkdirs(dir, 0755, "");
	if (rc != P11S_OK)
		return rc;
	snprintf(path, sizeof(path), "%s/.lock", dir);
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd == -1)
		return err_set(P11S_E_IO, "cannot open %s: %s", path, strerror(errno));
	if (flock(*fd, LOCK_EX | LOCK_NB) == -1) {
		int e = errno;

		close(*fd);
		*fd = -1;
		if (e == EWOULDBLOCK)
			return err_set(P11S_E_USAGE, "profile directory %s is busy: another p11scep "
				       "is working on it", dir);
		return err_set(P11S_E_IO, "cannot lock %s: %s", path, strerror(e));
	}
	return P11S_OK;
}

void store_unlock(int fd)
{
	if (fd >= 0)
		close(fd);	/* releases the flock */
}

static enum p11s_err stage_one(struct out_batch *b, const char *dir, const char *sub,
			       const char *name, X509 *cert)
{
	char path[4096];

	if (cert == NULL)
		return P11S_OK;
	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	return out_stage_pem_certs(b, path, &cert, 1);
}

static X509 *read_cert(const char *dir, const char *name)
{
	char path[4096];
	X509 *cert = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "re");
	if (f == NULL)
		return NULL;
	cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return cert;
}

/* Once the next CA is the one in use, it is no longer "next". */
static void drop_next_if_current(const char *dir, X509 *current)
{
	X509 *next = read_cert(dir, "ca/next-ca.pem");
	char path[4096];

	if (next != NULL && X509_cmp(next, current) == 0) {
		snprintf(path, sizeof(path), "%s/ca/next-ca.pem", dir);
		unlink(path);
	}
	X509_free(next);
}

enum p11s_err store_stage(struct out_batch *b, const char *dir, const struct scep_ca_set *ca,
			  X509 *cert, STACK_OF(X509) *chain)
{
	char path[4096];
	X509 *v[16];
	enum p11s_err rc;
	int i, n;

	snprintf(path, sizeof(path), "%s/ca", dir);
	rc = out_mkdirs(path, 0755, "");
	if (rc == P11S_OK) {
		snprintf(path, sizeof(path), "%s/user", dir);
		rc = out_mkdirs(path, 0755, "");
	}
	if (rc == P11S_OK)
		rc = stage_one(b, dir, "ca", "ca.pem", ca->pinned ? ca->pinned : ca->ca);
	if (rc == P11S_OK && ca->ra_enc != ca->ca && ca->ra_enc == ca->ra_sig)
		rc = stage_one(b, dir, "ca", "ra.pem", ca->ra_enc);
	if (rc == P11S_OK && ca->ra_enc != ca->ca && ca->ra_enc != ca->ra_sig) {
		rc = stage_one(b, dir, "ca", "ra-enc.pem", ca->ra_enc);
		if (rc == P11S_OK)
			rc = stage_one(b, dir, "ca", "ra-sig.pem", ca->ra_sig);
	}
	if (rc == P11S_OK)
		rc = stage_one(b, dir, "user", "cert.pem", cert);
	if (rc != P11S_OK || chain == NULL || sk_X509_num(chain) == 0)
		return rc;
	n = sk_X509_num(chain) < 16 ? sk_X509_num(chain) : 16;
	for (i = 0; i < n; i++)
		v[i] = sk_X509_value(chain, i);
	snprintf(path, sizeof(path), "%s/user/chain.pem", dir);
	return out_stage_pem_certs(b, path, v, (size_t)n);
}

void store_saved(const char *dir, const struct scep_ca_set *ca)
{
	drop_next_if_current(dir, ca->pinned ? ca->pinned : ca->ca);
}

enum p11s_err store_save_next_ca(const char *dir, X509 *cert)
{
	char path[4096];
	enum p11s_err rc;

	snprintf(path, sizeof(path), "%s/ca", dir);
	rc = out_mkdirs(path, 0755, "");
	if (rc != P11S_OK)
		return rc;
	snprintf(path, sizeof(path), "%s/ca/next-ca.pem", dir);
	return out_write_pem_certs(path, &cert, 1);
}

enum p11s_err store_set_pending(const char *dir, const char *txid)
{
	char path[4096], line[128];
	enum p11s_err rc;

	rc = out_mkdirs(dir, 0755, "");
	if (rc != P11S_OK)
		return rc;
	snprintf(path, sizeof(path), "%s/pending", dir);
	snprintf(line, sizeof(line), "%s\n", txid);
	return out_write_atomic(path, line, strlen(line), 0644);
}

void store_clear_pending(const char *dir)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/pending", dir);
	unlink(path);
}


enum p11s_err store_read(const char *dir, struct store_view *v)
{
	char path[4096];
	FILE *f;

	memset(v, 0, sizeof(*v));
	v->ca = read_cert(dir, "ca/ca.pem");
	v->next_ca = read_cert(dir, "ca/next-ca.pem");
	v->ra[0] = read_cert(dir, "ca/ra-enc.pem");
	if (v->ra[0] == NULL)
		v->ra[0] = read_cert(dir, "ca/ra.pem");
	v->ra[1] = read_cert(dir, "ca/ra-sig.pem");
	v->user = read_cert(dir, "user/cert.pem");
	snprintf(path, sizeof(path), "%s/crl.pem", dir);
	f = fopen(path, "re");
	if (f != NULL) {
		v->crl = PEM_read_X509_CRL(f, NULL, NULL, NULL);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/pending", dir);
	f = fopen(path, "re");
	if (f != NULL) {
		if (fgets(v->pending, sizeof(v->pending), f) == NULL)
			v->pending[0] = '\0';
		v->pending[strcspn(v->pending, "\r\n")] = '\0';
		if (v->pending[0] == '\0')
			snprintf(v->pending, sizeof(v->pending), "?");
		fclose(f);
	}
	ERR_clear_error();
	return P11S_OK;
}

void store_view_free(struct store_view *v)
{
	X509_free(v->ca);
	X509_free(v->next_ca);
	X509_free(v->ra[0]);
	X509_free(v->ra[1]);
	X509_free(v->user);
	X509_CRL_free(v->crl);
	memset(v, 0, sizeof(*v));
}
