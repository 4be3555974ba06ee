#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "caps.h"
#include "certinfo.h"
#include "cmds.h"
#include "csr.h"
#include "keystore.h"
#include "log.h"
#include "output.h"
#include "scep_ca.h"
#include "scep_client.h"
#include "scep_msg.h"
#include "secret.h"

/* Everything one enrollment holds; enroll_free releases it all. */
struct enroll {
	const struct opts *o;
	struct http *http;
	struct scep_algs algs;
	struct scep_ca_set ca;
	struct ks *ks;
	EVP_PKEY *key;
	X509 *signer;
	struct scep_txn txn;
	unsigned char *msg;
	size_t msg_len;
	struct scep_reply reply;
	STACK_OF(X509) *chain;
	char challenge[256];
};

static void enroll_free(struct enroll *e)
{
	sk_X509_pop_free(e->chain, X509_free);
	scep_reply_free(&e->reply);
	OPENSSL_free(e->msg);
	X509_free(e->signer);
	EVP_PKEY_free(e->key);	/* before the token goes away */
	ks_close(e->ks);
	scep_ca_set_free(&e->ca);
	http_free(e->http);
	secret_wipe(e->challenge, sizeof(e->challenge));
}

/* GetCACaps and GetCACert; nothing is sent to the CA until its cert matches the pin. */
static enum p11s_err discover(struct enroll *e, const unsigned char fp[32])
{
	const struct opts *o = e->o;
	struct http_opts ho;
	struct scep_caps caps;
	STACK_OF(X509) *certs = NULL;
	char names[256];
	enum p11s_err rc;
	double t0 = log_now_ms();

	cmd_http_opts(o, &ho);
	rc = http_new(&ho, &e->http);
	if (rc != P11S_OK)
		return rc;
	rc = scep_get_caps(e->http, o->url, &caps);
	if (rc != P11S_OK)
		return rc;
	caps_format(caps.raw, names, sizeof(names));
	log_v("GetCACaps: %s (%.1f ms)", names[0] ? names : "(none)", log_now_ms() - t0);
	rc = caps_choose(&caps, o->cipher, o->digest, &e->algs);
	if (rc != P11S_OK)
		return rc;
	log_v("using %s, %s, %s", cipher_ossl_name(e->algs.cipher),
	      digest_ossl_name(e->algs.digest), e->algs.use_post ? "POST" : "GET");

	t0 = log_now_ms();
	rc = scep_get_ca(e->http, o->url, &certs);
	if (rc != P11S_OK)
		return rc;
	rc = scep_ca_select(certs, fp, &e->ca);
	sk_X509_pop_free(certs, X509_free);
	log_v("GetCACert: CA pinned, RA %s (%.1f ms)",
	      e->ca.ra_enc == e->ca.ca ? "none" : "present", log_now_ms() - t0);
	return rc;
}

/* Open the token and find the key the URI names, or generate it there. */
static enum p11s_err open_key(struct enroll *e)
{
	const struct opts *o = e->o;
	struct ks_params kp = {
		.uri = o->key_uri,
		.module = o->module,
		.pin_cb = cmd_pin_cb,
	};
	enum p11s_err rc;
	double t0 = log_now_ms();

	rc = ks_open(&kp, &e->ks);
	if (rc != P11S_OK)
		return rc;
	log_v("token opened and logged in (%.1f ms)", log_now_ms() - t0);
	t0 = log_now_ms();
	rc = ks_find_key(e->ks, &e->key);
	if (rc == P11S_OK) {
		log_v("reusing the key in the token (%.1f ms)", log_now_ms() - t0);
		return P11S_OK;
	}
	if (rc != P11S_E_NOTFOUND)
		return rc;
	err_clear();
	rc = ks_generate_key(e->ks, &o->keyspec, &e->key);
	if (rc == P11S_OK)
		log_v("generated an RSA-%u key in the token (%.1f ms)", o->keyspec.bits,
		      log_now_ms() - t0);
	return rc;
}

/* CSR, self-signed signer cert and the PKCSReq pkiMessage, all signed in the token. */
static enum p11s_err build_request(struct enroll *e)
{
	const struct opts *o = e->o;
	const char *digest = digest_ossl_name(e->algs.digest);
	struct csr_params cp = {
		.subject = o->subject,
		.dns = o->dns,
		.n_dns = o->n_dns,
		.ip = o->ip,
		.n_ip = o->n_ip,
		.challenge = e->challenge[0] ? e->challenge : NULL,
		.digest = digest,
	};
	X509_REQ *req = NULL;
	unsigned char *der = NULL;
	int der_len;
	enum p11s_err rc;
	double t0 = log_now_ms();

	rc = csr_build(&cp, e->key, &req);
	if (rc != P11S_OK)
		goto out;
	rc = signer_cert_build(req, e->key, digest, &e->signer);
	if (rc != P11S_OK)
		goto out;
	rc = scep_txid_from_key(e->key, e->txn.txid);
	if (rc != P11S_OK)
		goto out;
	rc = scep_new_nonce(e->txn.sender_nonce);
	if (rc != P11S_OK)
		goto out;
	der_len = i2d_X509_REQ(req, &der);
	if (der_len <= 0) {
		rc = err_set_ssl(P11S_E_INTERNAL, "cannot encode the CSR");
		goto out;
	}
	struct scep_request r = {
		.type = MSG_PKCSREQ,
		.content = der,
		.content_len = (size_t)der_len,
		.signer_cert = e->signer,
		.signer_key = e->key,
		.recipient = e->ca.ra_enc,
		.cipher = cipher_ossl_name(e->algs.cipher),
		.digest = digest,
		.txn = &e->txn,
	};
	rc = scep_request_build(&r, &e->msg, &e->msg_len);
	if (rc == P11S_OK)
		log_v("PKCSReq built, transactionID %s (%.1f ms)", e->txn.txid, log_now_ms() - t0);
out:
	OPENSSL_free(der);
	X509_REQ_free(req);
	return rc;
}

static enum p11s_err exchange(struct enroll *e)
{
	struct scep_reply_check check = {
		.reply_signer = e->ca.ra_sig,
		.txn = &e->txn,
		.our_cert = e->signer,
		.our_key = e->key,
	};
	unsigned char *rep = NULL;
	size_t rep_len = 0;
	enum p11s_err rc;
	double t0 = log_now_ms();

	rc = scep_pki_operation(e->http, e->o->url, e->algs.use_post, e->msg, e->msg_len,
				&rep, &rep_len);
	if (rc != P11S_OK)
		return rc;
	log_v("PKIOperation exchange (%.1f ms)", log_now_ms() - t0);
	t0 = log_now_ms();
	rc = scep_reply_parse(rep, rep_len, &check, &e->reply);
	free(rep);
	if (rc == P11S_OK)
		log_v("CertRep verified (signed with %s, encrypted with %s) (%.1f ms)",
		      e->reply.signature_digest ? e->reply.signature_digest : "?",
		      e->reply.envelope_cipher ? e->reply.envelope_cipher : "-",
		      log_now_ms() - t0);
	return rc;
}

static enum p11s_err status_result(const struct enroll *e)
{
	const struct scep_reply *r = &e->reply;

	switch (r->status) {
	case STATUS_SUCCESS:
		return P11S_OK;
	case STATUS_PENDING:
		return err_set(P11S_E_PENDING, "the CA holds the request for approval "
			       "(transactionID %s): run again later", e->txn.txid);
	case STATUS_FAILURE:
		return err_set(P11S_E_REJECTED, "the CA rejected the request: %s%s%s%s",
			       scep_failinfo_name(r->fail_info),
			       r->fail_text ? " (" : "", r->fail_text ? r->fail_text : "",
			       r->fail_text ? ")" : "");
	}
	return err_set(P11S_E_UNTRUSTED, "unknown pkiStatus %d", (int)r->status);
}

static enum p11s_err write_outputs(struct enroll *e, X509 *cert)
{
	const struct opts *o = e->o;
	enum p11s_err rc;
	int i;

	rc = ks_store_cert(e->ks, cert);
	if (rc != P11S_OK)
		return rc;
	if (o->import_chain) {
		for (i = 0; i < sk_X509_num(e->chain); i++) {
			rc = ks_store_ca_cert(e->ks, sk_X509_value(e->chain, i));
			if (rc != P11S_OK)
				return rc;
		}
	}
	if (o->cert_out != NULL) {
		rc = out_write_pem_certs(o->cert_out, &cert, 1);
		if (rc != P11S_OK)
			return rc;
	}
	if (o->chain_out != NULL) {
		X509 **v = malloc(sizeof(*v) * (size_t)(sk_X509_num(e->chain) + 1));

		if (v == NULL)
			return err_set(P11S_E_NOMEM, "out of memory");
		for (i = 0; i < sk_X509_num(e->chain); i++)
			v[i] = sk_X509_value(e->chain, i);
		rc = out_write_pem_certs(o->chain_out, v, (size_t)sk_X509_num(e->chain));
		free(v);
	}
	return rc;
}

static void print_issued(X509 *cert)
{
	unsigned char fp[32];
	char subject[512], serial[128], not_after[64], fphex[100] = "?";

	certinfo_name(X509_get_subject_name(cert), subject, sizeof(subject));
	certinfo_serial(cert, serial, sizeof(serial));
	certinfo_time(X509_get0_notAfter(cert), not_after, sizeof(not_after));
	if (fingerprint_sha256(cert, fp) == P11S_OK)
		fingerprint_format(fp, fphex, sizeof(fphex));
	printf("issued: subject=%s serial=%s not-after=%s sha256=%s\n",
	       subject, serial, not_after, fphex);
}

/* The issued cert must carry our key and chain to the pinned CA; only then is it stored. */
static enum p11s_err deliver(struct enroll *e)
{
	X509 *cert;
	enum p11s_err rc;
	double t0 = log_now_ms();

	cert = scep_find_cert_for_key(e->reply.certs, e->key);
	if (cert == NULL)
		return err_set(P11S_E_UNTRUSTED, "the CertRep holds no certificate for our public "
			       "key: refusing it");
	rc = scep_ca_verify_issued(&e->ca, cert, e->reply.certs, &e->chain);
	if (rc != P11S_OK)
		return rc;
	rc = write_outputs(e, cert);
	if (rc != P11S_OK)
		return rc;
	log_v("certificate verified and stored (%.1f ms)", log_now_ms() - t0);
	print_issued(cert);
	return P11S_OK;
}

/* A bad output path must fail before the CA issues anything. */
static enum p11s_err check_outputs(const struct opts *o)
{
	enum p11s_err rc = P11S_OK;

	if (o->cert_out != NULL)
		rc = out_check_writable(o->cert_out);
	if (rc == P11S_OK && o->chain_out != NULL)
		rc = out_check_writable(o->chain_out);
	return rc;
}

enum p11s_err cmd_enroll(const struct opts *o)
{
	struct enroll e = { .o = o };
	unsigned char fp[32];
	enum p11s_err rc;
	double t0 = log_now_ms();

	rc = fingerprint_parse(o->ca_fingerprint, fp);
	if (rc != P11S_OK)
		goto out;
	rc = check_outputs(o);
	if (rc != P11S_OK)
		goto out;
	rc = cmd_challenge(o, e.challenge, sizeof(e.challenge));
	if (rc != P11S_OK)
		goto out;
	rc = discover(&e, fp);
	if (rc != P11S_OK)
		goto out;
	rc = open_key(&e);
	if (rc != P11S_OK)
		goto out;
	rc = build_request(&e);
	if (rc != P11S_OK)
		goto out;
	rc = exchange(&e);
	if (rc != P11S_OK)
		goto out;
	rc = status_result(&e);
	if (rc != P11S_OK)
		goto out;
	rc = deliver(&e);
	log_v("enrollment took %.1f ms", log_now_ms() - t0);
out:
	enroll_free(&e);
	return rc;
}
