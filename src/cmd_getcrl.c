#include "config.h"

#include <stdio.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

#include "certinfo.h"
#include "cmds.h"
#include "enroll.h"
#include "output.h"

/* The CRL must be signed by the CA that issued our certificate. */
static enum p11s_err check_crl(struct enroll *e, X509_CRL *crl, X509 *issued)
{
	STACK_OF(X509) *chain = NULL;
	X509 *issuer = NULL;
	EVP_PKEY *pub;
	enum p11s_err rc;
	int ok;

	rc = scep_ca_verify_issued(&e->ca, issued, e->reply.certs, &chain);
	if (rc != P11S_OK)
		return rc;
	issuer = sk_X509_value(chain, 0);
	pub = issuer ? X509_get0_pubkey(issuer) : NULL;
	ok = pub != NULL && X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)) == 0 &&
	     X509_CRL_verify(crl, pub) == 1;
	sk_X509_pop_free(chain, X509_free);
	if (!ok)
		return err_set_ssl(P11S_E_UNTRUSTED, "the CRL is not signed by the CA that issued "
				   "the certificate");
	return P11S_OK;
}

static enum p11s_err write_crl(const char *path, X509_CRL *crl)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data = NULL;
	long len;
	enum p11s_err rc;

	if (b == NULL || !PEM_write_bio_X509_CRL(b, crl)) {
		BIO_free(b);
		return err_set_ssl(P11S_E_INTERNAL, "cannot encode the CRL");
	}
	len = BIO_get_mem_data(b, &data);
	rc = out_write_atomic(path, data, (size_t)len, 0644);
	BIO_free(b);
	return rc;
}

/* GetCRL: the CRL that covers our certificate (its issuer and serial). */
enum p11s_err cmd_getcrl(const struct opts *o)
{
	struct enroll e = { .o = o, .url = o->url, .ca_fingerprint = o->ca_fingerprint };
	unsigned char *content = NULL;
	size_t content_len = 0;
	X509_CRL *crl;
	char buf[256], store_crl[4200];
	const char *crl_out = o->crl_out;
	enum p11s_err rc;

	/* With a profile the CRL is kept beside its cert, where status looks. */
	if (crl_out == NULL && o->store_dir != NULL) {
		snprintf(store_crl, sizeof(store_crl), "%s/crl.pem", o->store_dir);
		crl_out = store_crl;
	}
	rc = crl_out ? out_check_writable(crl_out) : P11S_OK;
	if (rc == P11S_OK)
		rc = enroll_prepare_query(&e);
	if (rc == P11S_OK)
		rc = scep_issuer_and_serial_der(X509_get_issuer_name(e.signer),
						X509_get0_serialNumber(e.signer), &content, &content_len);
	if (rc == P11S_OK)
		rc = enroll_transact(&e, MSG_GETCRL, content, content_len);
	if (rc == P11S_OK)
		rc = enroll_check_status(&e);
	if (rc != P11S_OK)
		goto out;
	crl = sk_X509_CRL_value(e.reply.crls, 0);
	if (crl == NULL) {
		rc = err_set(P11S_E_MALFORMED, "the GetCRL reply holds no CRL");
		goto out;
	}
	rc = check_crl(&e, crl, e.signer);
	if (rc != P11S_OK)
		goto out;
	certinfo_name(X509_CRL_get_issuer(crl), buf, sizeof(buf));
	printf("issuer: %s\n", buf);
	certinfo_time(X509_CRL_get0_lastUpdate(crl), buf, sizeof(buf));
	printf("last-update: %s\n", buf);
	certinfo_time(X509_CRL_get0_nextUpdate(crl), buf, sizeof(buf));
	printf("next-update: %s\n", buf);
	printf("revoked: %d\n", sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)));
	if (crl_out != NULL)
		rc = write_crl(crl_out, crl);
out:
	OPENSSL_free(content);
	enroll_free(&e);
	return rc;
}
