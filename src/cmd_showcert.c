#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "certinfo.h"
#include "cmds.h"
#include "enroll.h"
#include "store.h"

static void print_sans(X509 *cert)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	char ip[INET6_ADDRSTRLEN];
	int i;

	for (i = 0; i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);

		if (gn->type == GEN_DNS)
			printf("san: DNS:%.*s\n", ASN1_STRING_length(gn->d.dNSName),
			       (const char *)ASN1_STRING_get0_data(gn->d.dNSName));
		else if (gn->type == GEN_IPADD && gn->d.iPAddress->length == 4 &&
			 inet_ntop(AF_INET, gn->d.iPAddress->data, ip, sizeof(ip)))
			printf("san: IP:%s\n", ip);
		else if (gn->type == GEN_IPADD && gn->d.iPAddress->length == 16 &&
			 inet_ntop(AF_INET6, gn->d.iPAddress->data, ip, sizeof(ip)))
			printf("san: IP:%s\n", ip);
		else if (gn->type == GEN_EMAIL)
			printf("san: email:%.*s\n", ASN1_STRING_length(gn->d.rfc822Name),
			       (const char *)ASN1_STRING_get0_data(gn->d.rfc822Name));
	}
	GENERAL_NAMES_free(names);
}

static void print_key_usage(X509 *cert)
{
	static const struct { uint32_t bit; const char *name; } kus[] = {
		{ KU_DIGITAL_SIGNATURE, "digitalSignature" },
		{ KU_NON_REPUDIATION, "nonRepudiation" },
		{ KU_KEY_ENCIPHERMENT, "keyEncipherment" },
		{ KU_DATA_ENCIPHERMENT, "dataEncipherment" },
		{ KU_KEY_AGREEMENT, "keyAgreement" },
		{ KU_KEY_CERT_SIGN, "keyCertSign" },
		{ KU_CRL_SIGN, "cRLSign" },
	};
	uint32_t ku = X509_get_key_usage(cert);
	size_t i;
	int first = 1;

	if (ku == UINT32_MAX)
		return;
	printf("key-usage:");
	for (i = 0; i < sizeof(kus) / sizeof(kus[0]); i++) {
		if (ku & kus[i].bit) {
			printf("%s%s", first ? " " : ",", kus[i].name);
			first = 0;
		}
	}
	printf("\n");
}

static void print_cert(X509 *cert)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;
	EVP_PKEY *pub = X509_get0_pubkey(cert);

	certinfo_print(cert, NULL);
	if (X509_digest(cert, EVP_sha1(), md, &n)) {
		printf("sha1: ");
		for (i = 0; i < n; i++)
			printf("%02X%s", md[i], i + 1 < n ? ":" : "\n");
	}
	if (pub != NULL)
		printf("key: %s %d bits\n", EVP_PKEY_get0_type_name(pub), EVP_PKEY_get_bits(pub));
	print_key_usage(cert);
	print_sans(cert);
}

/* A certificate, readably: from --cert FILE, the profile's store (-p), or the token (-k). */
enum p11s_err cmd_showcert(const struct opts *o)
{
	struct enroll e = { .o = o };
	struct store_view v = { 0 };
	X509 *cert = NULL;
	enum p11s_err rc;

	if (o->cert_in == NULL && o->store_dir != NULL) {
		store_read(o->store_dir, &v);
		if (v.user == NULL) {
			rc = err_set(P11S_E_USAGE, "profile %s has no certificate yet (%s/user/cert.pem)",
				     o->profile, o->store_dir);
			goto out;
		}
		print_cert(v.user);
		rc = P11S_OK;
		goto out;
	}
	if (o->cert_in == NULL && o->key_uri == NULL) {
		rc = err_set(P11S_E_USAGE, "show-cert needs --cert FILE, -p NAME or -k KEY_URI");
		goto out;
	}
	if (o->key_uri != NULL) {
		rc = enroll_open_key(&e, 0);
		if (rc != P11S_OK)
			goto out;
	}
	rc = enroll_current_cert(&e, &cert);
	if (rc == P11S_OK)
		print_cert(cert);
out:
	X509_free(cert);
	store_view_free(&v);
	enroll_free(&e);
	return rc;
}
