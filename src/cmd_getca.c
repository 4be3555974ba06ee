#include "config.h"

#include <stdio.h>
#include <string.h>

#include "certinfo.h"
#include "cmds.h"
#include "output.h"
#include "scep_ca.h"
#include "scep_client.h"

enum p11s_err cmd_write_role_file(const char *dir, const char *prefix, X509 *cert,
				  enum ca_role role, unsigned int nth)
{
	char path[4096];
	int n;

	if (nth <= 1)
		n = snprintf(path, sizeof(path), "%s/%s%s.pem", dir, prefix, scep_ca_role_name(role));
	else
		n = snprintf(path, sizeof(path), "%s/%s%s-%u.pem", dir, prefix,
			     scep_ca_role_name(role), nth);
	if (n < 0 || (size_t)n >= sizeof(path))
		return err_set(P11S_E_USAGE, "--out-dir path is too long");
	return out_write_pem_certs(path, &cert, 1);
}

enum p11s_err cmd_getca(const struct opts *o)
{
	struct http_opts ho;
	struct http *h = NULL;
	STACK_OF(X509) *certs = NULL;
	struct scep_ca_set set = { 0 };
	unsigned char fp[32];
	unsigned int seen[ROLE_RA_BOTH + 1] = { 0 };
	enum p11s_err rc;
	int i;

	if (o->ca_fingerprint != NULL) {
		rc = fingerprint_parse(o->ca_fingerprint, fp);
		if (rc != P11S_OK)
			return rc;
	}
	cmd_http_opts(o, &ho);
	rc = http_new(&ho, &h);
	if (rc != P11S_OK)
		goto out;
	rc = scep_get_ca(h, o->url, &certs);
	if (rc != P11S_OK)
		goto out;
	for (i = 0; i < sk_X509_num(certs); i++) {
		X509 *cert = sk_X509_value(certs, i);

		if (i > 0)
			printf("\n");
		certinfo_print(cert, scep_ca_role_name(scep_ca_role(cert)));
	}
	fflush(stdout);
	if (o->ca_fingerprint != NULL) {
		rc = scep_ca_select(certs, fp, &set);
		if (rc != P11S_OK)
			goto out;
	}
	if (o->out_dir == NULL)
		goto out;
	for (i = 0; i < sk_X509_num(certs); i++) {
		X509 *cert = sk_X509_value(certs, i);
		enum ca_role role = scep_ca_role(cert);

		rc = cmd_write_role_file(o->out_dir, "", cert, role, ++seen[role]);
		if (rc != P11S_OK)
			goto out;
	}
out:
	scep_ca_set_free(&set);
	sk_X509_pop_free(certs, X509_free);
	http_free(h);
	return rc;
}
