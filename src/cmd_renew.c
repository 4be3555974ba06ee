#include "config.h"

#include <arpa/inet.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "certinfo.h"
#include "cmds.h"
#include "enroll.h"
#include "log.h"
#include "output.h"
#include "txn_state.h"

/* The names a renewal keeps when the user gives none: the current cert's SANs. */
struct san_copy {
	char *dns[OPTS_MAX_SANS];
	size_t n_dns;
	char ip_buf[OPTS_MAX_SANS][INET6_ADDRSTRLEN];
	const char *ip[OPTS_MAX_SANS];
	size_t n_ip;
};

static void san_copy_free(struct san_copy *c)
{
	size_t i;

	for (i = 0; i < c->n_dns; i++)
		OPENSSL_free(c->dns[i]);
}

static void san_copy_from(struct san_copy *c, X509 *cert)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	int i;

	for (i = 0; i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
		const ASN1_OCTET_STRING *ip;

		if (gn->type == GEN_DNS && c->n_dns < OPTS_MAX_SANS) {
			c->dns[c->n_dns] = OPENSSL_strndup((const char *)ASN1_STRING_get0_data(gn->d.dNSName),
							   (size_t)ASN1_STRING_length(gn->d.dNSName));
			if (c->dns[c->n_dns] != NULL)
				c->n_dns++;
		} else if (gn->type == GEN_IPADD && c->n_ip < OPTS_MAX_SANS) {
			ip = gn->d.iPAddress;
			if ((ip->length == 4 && inet_ntop(AF_INET, ip->data, c->ip_buf[c->n_ip],
							  INET6_ADDRSTRLEN)) ||
			    (ip->length == 16 && inet_ntop(AF_INET6, ip->data, c->ip_buf[c->n_ip],
							   INET6_ADDRSTRLEN))) {
				c->ip[c->n_ip] = c->ip_buf[c->n_ip];
				c->n_ip++;
			}
		}
	}
	GENERAL_NAMES_free(names);
}

/* The new key is of the current key's type and size unless one was chosen
 * (--key-type, key-type =): an EC identity stays EC. */
static void current_keyspec(EVP_PKEY *key, struct ks_keyspec *spec)
{
	int bits = EVP_PKEY_get_bits(key);

	if (EVP_PKEY_is_a(key, "EC") && (bits == 256 || bits == 384)) {
		spec->type = KS_KEY_EC;
		spec->bits = (unsigned int)bits;
	} else if (EVP_PKEY_is_a(key, "RSA") && (bits == 2048 || bits == 3072 || bits == 4096)) {
		spec->type = KS_KEY_RSA;
		spec->bits = (unsigned int)bits;
	}
}

/* Renewal with a new key: generated beside the old one (same label, new ID). */
static enum p11s_err roll_key(struct enroll *e)
{
	struct ks_keyspec spec = e->o->keyspec;
	enum p11s_err rc;

	if (!(e->o->given & GIVEN_KEY_TYPE))
		current_keyspec(e->key, &spec);
	rc = ks_current_id(e->ks, &e->old_id);
	if (rc != P11S_OK)
		return rc;
	spec.fresh_id = 1;
	e->signer_key = e->key;
	e->key = NULL;
	e->rollover = 1;
	e->remove_old = e->o->remove_old;
	if (e->resend && e->new_id.len > 0) {
		/* Sending an unanswered renewal again: for the key it was for. */
		rc = ks_find_key_by_id(e->ks, &e->new_id, &e->key);
		if (rc != P11S_E_NOTFOUND)
			return rc;
		err_clear();
	}
	rc = ks_generate_key(e->ks, &spec, &e->key);
	if (rc != P11S_OK)
		return rc;
	log_v("generated the new %s-%u key in the token",
	      spec.type == KS_KEY_EC ? "EC P" : "RSA", spec.bits);
	return ks_current_id(e->ks, &e->new_id);
}

static enum p11s_err check_mode(struct enroll *e, const struct scep_caps *caps)
{
	if (e->o->renewal_pkcsreq) {
		e->msgtype = MSG_PKCSREQ;
		return P11S_OK;
	}
	e->msgtype = MSG_RENEWALREQ;
	if (!(caps->bits & CAP_RENEWAL))
		return err_set(P11S_E_USAGE, "the server does not advertise Renewal: use "
			       "--renewal-mode pkcsreq to renew with a PKCSReq signed by the current cert");
	return P11S_OK;
}

enum p11s_err cmd_renew(const struct opts *o)
{
	struct enroll e;
	struct opts csr_opts = *o;
	struct san_copy sans = { 0 };
	char subject[1024];
	enum p11s_err rc;

	rc = enroll_begin(&e, o);
	if (rc == P11S_OK)
		rc = check_mode(&e, &e.caps);
	if (rc == P11S_OK)
		rc = enroll_open_key(&e, 0);
	if (rc == P11S_OK)
		rc = enroll_state_locate(&e);
	if (rc == P11S_OK)
		rc = enroll_check_pending(&e);
	if (rc == P11S_OK)
		rc = enroll_current_cert(&e, &e.signer);
	if (rc != P11S_OK)
		goto out;
	/* What the new certificate names: as given, else as the current one. */
	if (o->subject == NULL) {
		certinfo_name(X509_get_subject_name(e.signer), subject, sizeof(subject));
		csr_opts.subject = subject;
	}
	if (o->n_dns == 0 && o->n_ip == 0) {
		size_t i;

		san_copy_from(&sans, e.signer);
		for (i = 0; i < sans.n_dns; i++)
			csr_opts.dns[i] = sans.dns[i];
		csr_opts.n_dns = sans.n_dns;
		for (i = 0; i < sans.n_ip; i++)
			csr_opts.ip[i] = sans.ip[i];
		csr_opts.n_ip = sans.n_ip;
	}
	e.o = &csr_opts;
	if (!o->reuse_key) {
		rc = roll_key(&e);
		if (rc != P11S_OK)
			goto out;
	}
	rc = enroll_build_csr(&e);
	if (rc == P11S_OK)
		rc = enroll_finish(&e);
out:
	enroll_record(&e, rc);
	enroll_free(&e);
	san_copy_free(&sans);
	return rc;
}
