#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/provider.h>

#include "fuzz_common.h"

#ifndef FUZZ_SRCDIR
#define FUZZ_SRCDIR "."
#endif

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz setup: %s %s\n", what, detail != NULL ? detail : "");
	abort();
}

static int verbose;

void fuzz_report(const char *what, enum p11s_err rc)
{
	if (verbose)
		fprintf(stderr, "%s: %s%s%s\n", what, err_str(rc), rc != P11S_OK ? ": " : "",
			rc != P11S_OK ? err_msg() : "");
}

void fuzz_init_openssl(void)
{
	static int done;
	const char *v = getenv("FUZZ_VERBOSE");

	if (done)
		return;
	/* Loaded for the life of the process: nothing to free, nothing leaks. */
	if (OSSL_PROVIDER_load(NULL, "default") == NULL)
		die("cannot load the default provider", NULL);
	if (OSSL_PROVIDER_load(NULL, "legacy") == NULL)
		die("cannot load the legacy provider", NULL);
	verbose = v != NULL && strcmp(v, "1") == 0;
	done = 1;
}

/* Harnesses that need more than OpenSSL define it. */
__attribute__((weak)) void fuzz_setup(void);

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_init_openssl();	/* as the program runs: errors may name OpenSSL reasons */
	if (fuzz_setup)
		fuzz_setup();
	return 0;
}

static BIO *open_data(const char *rel)
{
	const char *dir = getenv("P11SCEP_SRCDIR");
	char path[4096];
	BIO *b;
	int n;

	if (dir == NULL || *dir == '\0')
		dir = FUZZ_SRCDIR;
	n = snprintf(path, sizeof(path), "%s/%s", dir, rel);
	if (n < 0 || (size_t)n >= sizeof(path))
		die("path too long:", rel);
	b = BIO_new_file(path, "rb");
	if (b == NULL)
		die("cannot open (set P11SCEP_SRCDIR to the source tree)", path);
	return b;
}

X509 *fuzz_load_cert(const char *rel)
{
	BIO *b = open_data(rel);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);

	if (x == NULL) {
		(void)BIO_reset(b);
		x = d2i_X509_bio(b, NULL);
	}
	BIO_free(b);
	if (x == NULL)
		die("no certificate in", rel);
	return x;
}

EVP_PKEY *fuzz_load_key(const char *rel)
{
	BIO *b = open_data(rel);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);

	BIO_free(b);
	if (k == NULL)
		die("no private key in", rel);
	return k;
}

int fuzz_write_temp(const uint8_t *data, size_t size, const char *tag, char *buf, size_t buflen)
{
	size_t off = 0;
	int fd, n;

	n = snprintf(buf, buflen, "/tmp/p11scep-fuzz-%s-XXXXXX", tag);
	if (n < 0 || (size_t)n >= buflen)
		return -1;
	fd = mkstemp(buf);	/* mkstemp creates it 0600 */
	if (fd == -1)
		return -1;
	while (off < size) {
		ssize_t w = write(fd, data + off, size - off);

		if (w <= 0) {
			close(fd);
			unlink(buf);
			return -1;
		}
		off += (size_t)w;
	}
	n = fchmod(fd, 0600);
	if (close(fd) == -1 || n == -1) {
		unlink(buf);
		return -1;
	}
	return 0;
}
