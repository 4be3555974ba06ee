/*
 * scep_nextca_parse on any GetNextCACert body, trusting the fuzz CA of
 * tests/fuzz/data (whose key signed the seeds) as the current CA.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "err.h"
#include "fuzz_common.h"
#include "scep_ca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct scep_ca_set set;

void fuzz_setup(void)
{
	X509 *ca;

	/* Lives until exit: one reference for each pointer of the set. */
	ca = fuzz_load_cert("tests/fuzz/data/fuzz-ca.pem");
	set.certs = sk_X509_new_null();
	if (set.certs == NULL || !sk_X509_push(set.certs, ca))
		__builtin_trap();
	X509_up_ref(ca);
	set.ca = ca;
	X509_up_ref(ca);
	set.ra_enc = ca;
	X509_up_ref(ca);
	set.ra_sig = ca;
	X509_up_ref(ca);
	set.pinned = ca;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	STACK_OF(X509) *out = NULL;
	enum p11s_err rc;
	int i, n;

	rc = scep_nextca_parse(data, size, "application/x-x509-next-ca-cert", &set, &out);
	fuzz_report("scep_nextca_parse", rc);
	if (rc == P11S_OK) {
		n = sk_X509_num(out);
		if (n < 1 || n > 64)
			__builtin_trap();	/* the contract: 1 to 64 certs */
		for (i = 0; i < n; i++)
			(void)scep_ca_role(sk_X509_value(out, i));
	}
	sk_X509_pop_free(out, X509_free);
	err_clear();
	return 0;
}
