#include "config.h"

#include <stdio.h>

#include "certinfo.h"
#include "cmds.h"
#include "enroll.h"
#include "log.h"
#include "scep_client.h"

/* GetNextCACert (CA rollover): the next CA certs, signed by the current pinned CA. */
enum p11s_err cmd_getnextca(const struct opts *o)
{
	struct enroll e = { .o = o, .url = o->url, .ca_fingerprint = o->ca_fingerprint };
	STACK_OF(X509) *next = NULL;
	unsigned int seen[ROLE_RA_BOTH + 1] = { 0 };
	enum p11s_err rc;
	int i;

	rc = enroll_discover(&e);
	if (rc != P11S_OK)
		goto out;
	if (!(e.caps.bits & CAP_GETNEXTCACERT))
		log_warn("the server does not advertise GetNextCACert; asking anyway");
	rc = scep_get_next_ca(e.http, e.url, &e.ca, &next);
	if (rc != P11S_OK)
		goto out;
	for (i = 0; i < sk_X509_num(next); i++) {
		X509 *cert = sk_X509_value(next, i);

		if (i > 0)
			printf("\n");
		certinfo_print(cert, scep_ca_role_name(scep_ca_role(cert)));
	}
	for (i = 0; o->out_dir != NULL && i < sk_X509_num(next); i++) {
		X509 *cert = sk_X509_value(next, i);
		enum ca_role role = scep_ca_role(cert);

		rc = cmd_write_role_file(o->out_dir, "next-", cert, role, ++seen[role]);
		if (rc != P11S_OK)
			goto out;
	}
out:
	sk_X509_pop_free(next, X509_free);
	enroll_free(&e);
	return rc;
}
