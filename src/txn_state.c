#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "output.h"
#include "txn_state.h"

#define STATE_MAX	(64 * 1024)
#define SUBJECT_MAX	(8 * 1024)	/* DER of the request's subject */

const char *txn_state_dir(const char *given, char *buf, size_t buflen)
{
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");

	if (given != NULL)
		snprintf(buf, buflen, "%s", given);
	else if (xdg != NULL && xdg[0] == '/')
		snprintf(buf, buflen, "%s/p11scep", xdg);
	else if (geteuid() != 0 && home != NULL && home[0] == '/')
		snprintf(buf, buflen, "%s/.local/state/p11scep", home);
	else
		snprintf(buf, buflen, "/var/lib/p11scep");
	return buf;
}

enum p11s_err txn_state_path(const char *dir, EVP_PKEY *key, char *buf, size_t buflen)
{
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	int len, n;

	len = i2d_PUBKEY(key, &der);
	if (len <= 0 || !EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL)) {
		OPENSSL_free(der);
		return err_set_ssl(P11S_E_INTERNAL, "cannot hash the public key");
	}
	OPENSSL_free(der);
	for (i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	n = snprintf(buf, buflen, "%s/%s.txn", dir, hex);
	if (n < 0 || (size_t)n >= buflen)
		return err_set(P11S_E_USAGE, "state directory path %s is too long", dir);
	return P11S_OK;
}

/* key=value lines cannot hold a newline: refuse such values rather than corrupt the file. */
static int bad_value(const char *v)
{
	return v != NULL && strpbrk(v, "\r\n") != NULL;
}

/* key=HEX, for a short binary value */
static void print_hex(BIO *b, const char *key, const unsigned char *p, size_t n)
{
	size_t i;

	BIO_printf(b, "%s=", key);
	for (i = 0; i < n; i++)
		BIO_printf(b, "%02x", p[i]);
	BIO_printf(b, "\n");
}

enum p11s_err txn_state_save(const char *dir, const char *path, const struct txn_state *s)
{
	unsigned char *subject = NULL;
	int subject_len;
	BIO *b = NULL;
	char *data = NULL;
	long len;
	enum p11s_err rc;

	if (bad_value(s->url) || bad_value(s->cert_out) || bad_value(s->chain_out) ||
	    bad_value(s->ca_fingerprint))
		return err_set(P11S_E_USAGE, "a URL or path contains a line break");
	rc = out_mkdirs(dir, 0700, " (use --state-dir)");
	if (rc != P11S_OK)
		return rc;
	b = BIO_new(BIO_s_mem());
	if (b == NULL)
		return err_set(P11S_E_NOMEM, "out of memory");
	BIO_printf(b, "# p11scep pending SCEP transaction (no secrets)\n");
	BIO_printf(b, "version=1\ntxid=%s\nurl=%s\nca-fingerprint=%s\ncreated=%lld\n",
		   s->txid, s->url, s->ca_fingerprint, (long long)s->created);
	if (s->cert_out != NULL)
		BIO_printf(b, "cert-out=%s\n", s->cert_out);
	if (s->chain_out != NULL)
		BIO_printf(b, "chain-out=%s\n", s->chain_out);
	BIO_printf(b, "import-chain=%d\n", s->import_chain ? 1 : 0);
	BIO_printf(b, "remove-old=%d\n", s->remove_old ? 1 : 0);
	BIO_printf(b, "answered=%d\n", s->answered ? 1 : 0);
	if (s->new_key_id.len > 0)
		print_hex(b, "new-key-id", s->new_key_id.id, s->new_key_id.len);
	/* Only the request's subject: the request itself holds the challenge. */
	subject_len = i2d_X509_NAME(s->subject, &subject);
	if (subject_len > 0)
		print_hex(b, "subject", subject, (size_t)subject_len);
	if (subject_len <= 0 || !PEM_write_bio_X509(b, s->signer)) {
		rc = err_set_ssl(P11S_E_INTERNAL, "cannot encode the transaction state");
		goto out;
	}
	len = BIO_get_mem_data(b, &data);
	rc = out_write_atomic(path, data, (size_t)len, 0600);
out:
	OPENSSL_free(subject);
	BIO_free(b);
	return rc;
}

static enum p11s_err dup_value(char **dst, const char *v)
{
	free(*dst);
	*dst = strdup(v);
	return *dst ? P11S_OK : err_set(P11S_E_NOMEM, "out of memory");
}

/* Hex v into out (at most max bytes); 0 on a bad or oversized value. */
static size_t parse_hex(const char *v, unsigned char *out, size_t max)
{
	size_t i, n = strlen(v);

	if (n == 0 || n % 2 != 0 || n / 2 > max)
		return 0;
	for (i = 0; i < n / 2; i++) {
		int hi = OPENSSL_hexchar2int((unsigned char)v[2 * i]);
		int lo = OPENSSL_hexchar2int((unsigned char)v[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return 0;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return n / 2;
}

static enum p11s_err parse_id(struct ks_key_id *id, const char *path, const char *v)
{
	id->len = parse_hex(v, id->id, sizeof(id->id));
	return id->len > 0 ? P11S_OK : err_set(P11S_E_IO, "%s: bad new-key-id", path);
}

static enum p11s_err parse_subject(X509_NAME **name, const char *path, const char *v)
{
	unsigned char der[SUBJECT_MAX];
	const unsigned char *p = der;
	size_t n = parse_hex(v, der, sizeof(der));

	X509_NAME_free(*name);
	*name = n > 0 ? d2i_X509_NAME(NULL, &p, (long)n) : NULL;
	if (*name == NULL || p != der + n)
		return err_set_ssl(P11S_E_IO, "%s: bad subject: remove the file to start over",
				   path);
	return P11S_OK;
}

static enum p11s_err parse_line(struct txn_state *s, const char *path, char *line)
{
	char *eq = strchr(line, '=');
	const char *k = line, *v;

	if (line[0] == '#' || line[0] == '\0')
		return P11S_OK;
	if (eq == NULL)
		return err_set(P11S_E_IO, "%s: malformed line: remove the file to start over", path);
	*eq = '\0';
	v = eq + 1;
	if (strcmp(k, "version") == 0)
		return strcmp(v, "1") == 0 ? P11S_OK :
		       err_set(P11S_E_IO, "%s: unknown state version %s", path, v);
	if (strcmp(k, "txid") == 0) {
		if (strlen(v) == 0 || strlen(v) >= sizeof(s->txid))
			return err_set(P11S_E_IO, "%s: bad transactionID", path);
		snprintf(s->txid, sizeof(s->txid), "%s", v);
		return P11S_OK;
	}
	if (strcmp(k, "url") == 0)
		return dup_value(&s->url, v);
	if (strcmp(k, "ca-fingerprint") == 0)
		return dup_value(&s->ca_fingerprint, v);
	if (strcmp(k, "cert-out") == 0)
		return dup_value(&s->cert_out, v);
	if (strcmp(k, "chain-out") == 0)
		return dup_value(&s->chain_out, v);
	if (strcmp(k, "import-chain") == 0) {
		s->import_chain = strcmp(v, "1") == 0;
		return P11S_OK;
	}
	if (strcmp(k, "answered") == 0) {
		s->answered = strcmp(v, "1") == 0;
		return P11S_OK;
	}
	if (strcmp(k, "remove-old") == 0) {
		s->remove_old = strcmp(v, "1") == 0;
		return P11S_OK;
	}
	if (strcmp(k, "new-key-id") == 0)
		return parse_id(&s->new_key_id, path, v);
	if (strcmp(k, "subject") == 0)
		return parse_subject(&s->subject, path, v);
	if (strcmp(k, "created") == 0) {
		s->created = (time_t)strtoll(v, NULL, 10);
		return P11S_OK;
	}
	return P11S_OK;	/* newer versions may add keys */
}

/* Files of earlier versions keep the request (without its challenge). */
static void old_request_subject(BIO *b, struct txn_state *s)
{
	X509_REQ *req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);

	if (req != NULL)
		s->subject = X509_NAME_dup(X509_REQ_get_subject_name(req));
	X509_REQ_free(req);
}

enum p11s_err txn_state_load(const char *path, struct txn_state *s)
{
	unsigned char *data = NULL;
	size_t len = 0;
	char *p, *nl, *pem;
	BIO *b = NULL;
	enum p11s_err rc;

	memset(s, 0, sizeof(*s));
	if (access(path, F_OK) == -1 && errno == ENOENT)
		return P11S_E_NOTFOUND;
	rc = file_read_all(path, STATE_MAX, &data, &len);
	if (rc != P11S_OK)
		return rc;
	pem = strstr((char *)data, "-----BEGIN");
	if (pem == NULL) {
		rc = err_set(P11S_E_IO, "%s holds no request: remove it to start over", path);
		goto out;
	}
	for (p = (char *)data; p < pem; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(pem - p));
		if (nl == NULL)
			break;
		*nl = '\0';
		rc = parse_line(s, path, p);
		if (rc != P11S_OK)
			goto out;
	}
	b = BIO_new_mem_buf(pem, (int)(len - (size_t)(pem - (char *)data)));
	s->signer = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	if (s->signer != NULL && s->subject == NULL)
		old_request_subject(b, s);
	if (s->signer == NULL || s->subject == NULL || s->txid[0] == '\0' || s->url == NULL ||
	    s->ca_fingerprint == NULL) {
		rc = err_set(P11S_E_IO, "%s is incomplete: remove it to start over", path);
		goto out;
	}
	rc = P11S_OK;
out:
	BIO_free(b);
	free(data);
	if (rc != P11S_OK)
		txn_state_free(s);
	return rc;
}

enum p11s_err txn_state_remove(const char *path)
{
	if (unlink(path) == -1 && errno != ENOENT)
		return err_set(P11S_E_IO, "cannot remove %s: %s", path, strerror(errno));
	return P11S_OK;
}

void txn_state_free(struct txn_state *s)
{
	if (s == NULL)
		return;
	free(s->url);
	free(s->ca_fingerprint);
	free(s->cert_out);
	free(s->chain_out);
	X509_free(s->signer);
	X509_NAME_free(s->subject);
	memset(s, 0, sizeof(*s));
}
