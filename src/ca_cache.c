#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "ca_cache.h"
#include "output.h"

#define SERVED_MAX	(256 * 1024)
#define CAPS_TEXT_MAX	1024

static void paths(const char *dir, char *served, char *caps, size_t len)
{
	snprintf(served, len, "%s/ca/served.pem", dir);
	snprintf(caps, len, "%s/ca/caps", dir);
}

enum p11s_err ca_cache_save(const char *dir, const struct scep_caps *caps,
			    STACK_OF(X509) *served)
{
	char served_path[4096], caps_path[4096], words[CAPS_TEXT_MAX];
	struct out_batch b = { 0 };
	BIO *mem = NULL;
	char *data = NULL;
	long len;
	enum p11s_err rc = P11S_OK;
	int i;

	paths(dir, served_path, caps_path, sizeof(served_path));
	mem = BIO_new(BIO_s_mem());
	if (mem == NULL)
		return err_set(P11S_E_NOMEM, "out of memory");
	for (i = 0; i < sk_X509_num(served); i++) {
		if (!PEM_write_bio_X509(mem, sk_X509_value(served, i))) {
			rc = err_set_ssl(P11S_E_INTERNAL, "cannot encode the CA certificates");
			goto out;
		}
	}
	len = BIO_get_mem_data(mem, &data);
	caps_format(caps->raw, words, sizeof(words));
	snprintf(words + strlen(words), sizeof(words) - strlen(words), "\n");
	snprintf(caps_path, sizeof(caps_path), "%s/ca", dir);
	rc = out_mkdirs(caps_path, 0755, "");
	if (rc != P11S_OK)
		goto out;
	paths(dir, served_path, caps_path, sizeof(served_path));
	rc = out_stage(&b, served_path, data, (size_t)len, 0644);
	if (rc == P11S_OK)
		rc = out_stage(&b, caps_path, words, strlen(words), 0644);
	if (rc == P11S_OK)
		rc = out_commit(&b);
out:
	out_drop(&b);
	BIO_free(mem);
	return rc;
}

static int fresh(const char *path, long max_age)
{
	struct stat st;
	time_t now = time(NULL);

	return stat(path, &st) == 0 && st.st_mtime <= now && now - st.st_mtime < max_age;
}

enum p11s_err ca_cache_load(const char *dir, long max_age, struct scep_caps *caps,
			    STACK_OF(X509) **served)
{
	char served_path[4096], caps_path[4096];
	unsigned char *text = NULL, *pem = NULL;
	size_t text_len = 0, pem_len = 0;
	STACK_OF(X509) *certs = NULL;
	X509 *c;
	BIO *mem = NULL;
	enum p11s_err rc = P11S_E_NOTFOUND;

	*served = NULL;
	paths(dir, served_path, caps_path, sizeof(served_path));
	if (!fresh(served_path, max_age) || !fresh(caps_path, max_age))
		return P11S_E_NOTFOUND;
	if (file_read_all(caps_path, CAPS_TEXT_MAX, &text, &text_len) != P11S_OK ||
	    caps_parse((const char *)text, text_len, caps) != P11S_OK ||
	    file_read_all(served_path, SERVED_MAX, &pem, &pem_len) != P11S_OK)
		goto out;
	mem = BIO_new_mem_buf(pem, (int)pem_len);
	certs = sk_X509_new_null();
	if (mem == NULL || certs == NULL)
		goto out;
	while ((c = PEM_read_bio_X509(mem, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_push(certs, c)) {
			X509_free(c);
			goto out;
		}
	}
	if (sk_X509_num(certs) == 0)
		goto out;
	*served = certs;
	certs = NULL;
	rc = P11S_OK;
out:
	if (rc != P11S_OK)
		err_clear();	/* a bad cache is no error: the server is asked */
	ERR_clear_error();	/* PEM's end-of-data */
	sk_X509_pop_free(certs, X509_free);
	BIO_free(mem);
	free(text);
	free(pem);
	return rc;
}

void ca_cache_drop(const char *dir)
{
	char served_path[4096], caps_path[4096];

	paths(dir, served_path, caps_path, sizeof(served_path));
	unlink(served_path);
	unlink(caps_path);
}

const char *ca_cache_server_dir(const char *state_dir, const char *url, char *buf,
				size_t buflen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	char hex[33];
	int n;

	if (!EVP_Digest(url, strlen(url), md, &mdlen, EVP_sha256(), NULL) || mdlen < 16) {
		ERR_clear_error();
		return NULL;
	}
	/* 128 bits of the URL's hash name it: no need for the whole digest */
	for (i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	n = snprintf(buf, buflen, "%s/servers/%s", state_dir, hex);
	return n > 0 && (size_t)n < buflen ? buf : NULL;
}
