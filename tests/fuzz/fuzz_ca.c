/*
 * scep_ca_parse on any GetCACert body, then scep_ca_select pinned to one of
 * the certs received (so that selection, RA picking and chain walking run on
 * hostile certs), then scep_ca_verify_issued of another one. The first input
 * byte picks the content type and the certs; the rest is the body.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "err.h"
#include "fuzz_common.h"
#include "scep_ca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void select_and_verify(STACK_OF(X509) *certs, unsigned int sel)
{
	struct scep_ca_set set = { 0 };
	STACK_OF(X509) *chain = NULL;
	unsigned char fp[32];
	char buf[96];
	enum p11s_err rc;
	int n = sk_X509_num(certs);
	X509 *pin, *leaf;

	if (n <= 0)
		return;
	pin = sk_X509_value(certs, (int)(sel % (unsigned int)n));
	leaf = sk_X509_value(certs, (int)((sel >> 3) % (unsigned int)n));
	(void)scep_ca_role_name(scep_ca_role(leaf));
	if (fingerprint_sha256(pin, fp) != P11S_OK)
		return;
	fingerprint_format(fp, buf, sizeof(buf));
	rc = scep_ca_select(certs, fp, &set);
	fuzz_report("scep_ca_select", rc);
	if (rc == P11S_OK) {
		if (set.ca == NULL || set.ra_enc == NULL || set.ra_sig == NULL ||
		    set.pinned == NULL)
			__builtin_trap();
		if (scep_ca_verify_issued(&set, leaf, certs, &chain) == P11S_OK)
			sk_X509_pop_free(chain, X509_free);
	}
	scep_ca_set_free(&set);	/* whatever a failed select left behind, too */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const types[] = {
		"application/x-x509-ca-cert", "application/x-x509-ca-ra-cert", NULL,
		"text/plain", "application/x-x509-ca-cert; charset=binary", "",
		"APPLICATION/X-X509-CA-RA-CERT", "application/pkcs7-mime",
	};
	STACK_OF(X509) *certs = NULL;
	enum p11s_err rc;
	unsigned int sel;

	if (size < 1)
		return 0;
	sel = data[0];
	rc = scep_ca_parse(data + 1, size - 1, types[sel & 7], &certs);
	fuzz_report("scep_ca_parse", rc);
	if (rc == P11S_OK)
		select_and_verify(certs, sel >> 3);
	sk_X509_pop_free(certs, X509_free);
	err_clear();
	return 0;
}
