#include "config.h"

#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>

#include "certinfo.h"
#include "cmds.h"
#include "enroll.h"
#include "output.h"

static enum p11s_err serial_parse(const char *hex, ASN1_INTEGER **out)
{
	BIGNUM *bn = NULL;
	size_t n = strlen(hex);

	*out = NULL;
	if (n == 0 || n > 128 || strspn(hex, "0123456789abcdefABCDEF:") != n)
		return err_set(P11S_E_USAGE, "--serial %s: expected the serial number in hex", hex);
	{
		char clean[129];
		size_t i, j = 0;

		for (i = 0; i < n; i++)
			if (hex[i] != ':')
				clean[j++] = hex[i];
		clean[j] = '\0';
		if (j == 0 || !BN_hex2bn(&bn, clean))
			return err_set(P11S_E_USAGE, "--serial %s: expected hex", hex);
	}
	*out = BN_to_ASN1_INTEGER(bn, NULL);
	BN_free(bn);
	return *out ? P11S_OK : err_set(P11S_E_NOMEM, "out of memory");
}

/* GetCert: a certificate the CA issued, by its serial number. */
enum p11s_err cmd_getcert(const struct opts *o)
{
	struct enroll e = { .o = o, .url = o->url, .ca_fingerprint = o->ca_fingerprint };
	ASN1_INTEGER *serial = NULL;
	unsigned char *content = NULL;
	size_t content_len = 0;
	X509 *found = NULL;
	enum p11s_err rc;
	int i;

	rc = serial_parse(o->serial, &serial);
	if (rc == P11S_OK)
		rc = cmd_check_outputs(o);
	if (rc == P11S_OK)
		rc = enroll_prepare_query(&e);
	if (rc == P11S_OK)
		rc = scep_issuer_and_serial_der(X509_get_subject_name(e.ca.ca), serial,
						&content, &content_len);
	if (rc == P11S_OK)
		rc = enroll_transact(&e, MSG_GETCERT, content, content_len);
	if (rc == P11S_OK)
		rc = enroll_check_status(&e);
	if (rc != P11S_OK)
		goto out;
	for (i = 0; i < sk_X509_num(e.reply.certs) && found == NULL; i++) {
		X509 *c = sk_X509_value(e.reply.certs, i);

		if (ASN1_INTEGER_cmp(X509_get0_serialNumber(c), serial) == 0)
			found = c;
	}
	if (found == NULL) {
		rc = err_set(P11S_E_UNTRUSTED, "the GetCert reply holds no certificate with that serial");
		goto out;
	}
	rc = scep_ca_verify_issued(&e.ca, found, e.reply.certs, &e.chain);
	if (rc != P11S_OK)
		goto out;
	certinfo_print(found, NULL);
	if (o->cert_out != NULL)
		rc = out_write_pem_certs(o->cert_out, &found, 1);
out:
	OPENSSL_free(content);
	ASN1_INTEGER_free(serial);
	enroll_free(&e);
	return rc;
}
