#include "config.h"

#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "certinfo.h"

static void bio_to_buf(BIO *b, int ok, char *buf, size_t buflen)
{
	char *p = NULL;
	long n;

	if (buflen == 0)
		return;
	n = ok && b ? BIO_get_mem_data(b, &p) : 0;
	if (n <= 0 || p == NULL) {
		snprintf(buf, buflen, "?");
		return;
	}
	snprintf(buf, buflen, "%.*s", (int)n, p);
}

void certinfo_name(const X509_NAME *name, char *buf, size_t buflen)
{
	BIO *b = BIO_new(BIO_s_mem());
	int ok = b && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0;

	bio_to_buf(b, ok, buf, buflen);
	BIO_free(b);
}

void certinfo_time(const ASN1_TIME *t, char *buf, size_t buflen)
{
	struct tm tm;

	if (t == NULL || !ASN1_TIME_to_tm(t, &tm)) {
		snprintf(buf, buflen, "?");
		return;
	}
	strftime(buf, buflen, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

void certinfo_serial(X509 *cert, char *buf, size_t buflen)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;

	snprintf(buf, buflen, "%s", hex ? hex : "?");
	OPENSSL_free(hex);
	BN_free(bn);
}

void certinfo_print(X509 *cert, const char *role)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	char buf[512];

	if (role != NULL)
		printf("role: %s\n", role);
	certinfo_name(X509_get_subject_name(cert), buf, sizeof(buf));
	printf("subject: %s\n", buf);
	certinfo_name(X509_get_issuer_name(cert), buf, sizeof(buf));
	printf("issuer: %s\n", buf);
	certinfo_serial(cert, buf, sizeof(buf));
	printf("serial: %s\n", buf);
	certinfo_time(X509_get0_notBefore(cert), buf, sizeof(buf));
	printf("not-before: %s\n", buf);
	certinfo_time(X509_get0_notAfter(cert), buf, sizeof(buf));
	printf("not-after: %s\n", buf);
	if (X509_digest(cert, EVP_sha256(), md, &mdlen)) {
		printf("sha256: ");
		for (i = 0; i < mdlen; i++)
			printf("%02X%s", md[i], i + 1 < mdlen ? ":" : "\n");
	}
}
