#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ca_cache.h"
#include "certinfo.h"
#include "cmds.h"
#include "csr.h"
#include "enroll.h"
#include "log.h"
#include "output.h"
#include "scep_client.h"
#include "secret.h"
#include "store.h"
#include "txn_state.h"

void enroll_init(struct enroll *e, const struct opts *o)
{
	memset(e, 0, sizeof(*e));
	e->o = o;
	e->url = o->url;
	e->ca_fingerprint = o->ca_fingerprint;
	e->cert_out = o->cert_out;
	e->chain_out = o->chain_out;
	e->import_chain = o->import_chain;
}

/* One outstanding request per key (RFC 8894 §3.3.3): resume it or replace it by name. */
enum p11s_err enroll_check_pending(struct enroll *e)
{
	struct txn_state st;
	enum p11s_err rc;

	rc = txn_state_load(e->state_path, &st);
	if (rc == P11S_E_NOTFOUND)
		return P11S_OK;
	if (rc != P11S_OK)
		return rc;
	if (e->o->new_request) {
		log_v("forgetting pending request %s", st.txid);
		txn_state_free(&st);
		return P11S_OK;
	}
	if (!st.answered) {
		log_info("the request with transactionID %s got no answer: sending it again",
			 st.txid);
		snprintf(e->txn.txid, sizeof(e->txn.txid), "%s", st.txid);
		e->new_id = st.new_key_id;
		e->resend = 1;
		txn_state_free(&st);
		return P11S_OK;
	}
	rc = err_set(P11S_E_USAGE, "a request for this key is pending at the CA (transactionID %s, "
		     "state %s): resume it with 'p11scep poll', or send a new one with --new-request",
		     st.txid, e->state_path);
	txn_state_free(&st);
	return rc;
}

void enroll_free(struct enroll *e)
{
	sk_X509_pop_free(e->chain, X509_free);
	scep_reply_free(&e->reply);
	/* These hold references to the token key: free them before the token. */
	X509_free(e->signer);
	csr_free(e->req);
	X509_NAME_free(e->subject);
	EVP_PKEY_free(e->signer_key);
	EVP_PKEY_free(e->key);
	ks_close(e->ks);
	scep_ca_set_free(&e->ca);
	http_free(e->http);
	secret_wipe(e->challenge, sizeof(e->challenge));
}

/* A CA outside its validity cannot issue a usable cert: refuse before the
 * request (and its challenge) goes out. */
static enum p11s_err check_ca_dates(const struct scep_ca_set *set)
{
	X509 *const certs[] = { set->pinned, set->ca, set->ra_enc, set->ra_sig };
	char when[64], name[256];
	size_t i;

	for (i = 0; i < sizeof(certs) / sizeof(certs[0]); i++) {
		X509 *c = certs[i];

		if (c == NULL)
			continue;
		certinfo_name(X509_get_subject_name(c), name, sizeof(name));
		if (X509_cmp_current_time(X509_get0_notAfter(c)) < 0) {
			certinfo_time(X509_get0_notAfter(c), when, sizeof(when));
			return err_set(P11S_E_UNTRUSTED, "CA/RA certificate %s expired on %s: "
				       "refusing to send a request", name, when);
		}
		if (X509_cmp_current_time(X509_get0_notBefore(c)) > 0) {
			certinfo_time(X509_get0_notBefore(c), when, sizeof(when));
			return err_set(P11S_E_UNTRUSTED, "CA/RA certificate %s is not yet valid (from %s): "
				       "refusing to send a request", name, when);
		}
	}
	return P11S_OK;
}

/*
 * Where caps and CA certificates are cached: the profile's directory, or for
 * a one-off enrollment a directory per server URL in the state directory.
 * NULL: no cache.
 */
static const char *cache_dir(struct enroll *e)
{
	char state[PATH_MAX];

	if (e->o->store_dir != NULL)
		return e->o->store_dir;
	if (e->cache_dir[0] == '\0' && e->url != NULL &&
	    ca_cache_server_dir(txn_state_dir(e->o->state_dir, state, sizeof(state)), e->url,
				e->cache_dir, sizeof(e->cache_dir)) == NULL)
		e->cache_dir[0] = '\0';
	return e->cache_dir[0] != '\0' ? e->cache_dir : NULL;
}

/* Caps and CA certificates: the cache while fresh, else the server's. */
static enum p11s_err fetch_ca(struct enroll *e, STACK_OF(X509) **certs)
{
	const char *dir = cache_dir(e);
	char names[256];
	enum p11s_err rc;
	double t0 = log_now_ms();

	if (dir != NULL && !e->cache_dropped &&
	    ca_cache_load(dir, CA_CACHE_MAX_AGE, &e->caps, certs) == P11S_OK) {
		e->from_cache = 1;
		log_timing("ca-cache", t0);
		log_v("GetCACaps and GetCACert from the cache in %s", dir);
		return P11S_OK;
	}
	e->from_cache = 0;
	rc = scep_get_caps(e->http, e->url, &e->caps);
	if (rc != P11S_OK)
		return rc;
	log_timing("caps", t0);
	caps_format(e->caps.raw, names, sizeof(names));
	log_v("GetCACaps: %s (%.1f ms)", names[0] ? names : "(none)", log_now_ms() - t0);
	t0 = log_now_ms();
	rc = scep_get_ca(e->http, e->url, certs);
	log_timing("getcacert", t0);
	return rc;
}

/* A cache that cannot be written costs a fetch next time, nothing more. */
static void save_ca(struct enroll *e, STACK_OF(X509) *certs)
{
	const char *dir = cache_dir(e);
	enum p11s_err rc;

	if (dir == NULL)
		return;
	/* a one-off's cache lives in the state directory: private like it */
	rc = e->o->store_dir != NULL ? P11S_OK : out_mkdirs(dir, 0700, "");
	if (rc == P11S_OK)
		rc = ca_cache_save(dir, &e->caps, certs);
	if (rc == P11S_OK)
		return;
	if (e->o->store_dir != NULL)
		log_warn("cannot cache the CA certificates: %s", err_msg());
	else
		log_v("cannot cache the CA certificates: %s", err_msg());
	err_clear();
}

enum p11s_err enroll_discover(struct enroll *e)
{
	const struct opts *o = e->o;
	struct http_opts ho;
	STACK_OF(X509) *certs = NULL;
	unsigned char fp[32];
	enum p11s_err rc;

	rc = fingerprint_parse(e->ca_fingerprint, fp);
	if (rc != P11S_OK)
		return rc;
	if (e->http == NULL) {
		cmd_http_opts(o, &ho);
		rc = http_new(&ho, &e->http);
		if (rc != P11S_OK)
			return rc;
	}
	scep_ca_set_free(&e->ca);
	rc = fetch_ca(e, &certs);
	if (rc == P11S_OK)
		rc = scep_ca_select(certs, fp, &e->ca);
	if (rc == P11S_OK)
		rc = check_ca_dates(&e->ca);
	if (rc != P11S_OK && e->from_cache) {
		/* The pin or the dates say the cache is out of date: ask the server. */
		sk_X509_pop_free(certs, X509_free);
		certs = NULL;
		err_clear();
		enroll_drop_cache(e);
		rc = fetch_ca(e, &certs);
		if (rc == P11S_OK)
			rc = scep_ca_select(certs, fp, &e->ca);
		if (rc == P11S_OK)
			rc = check_ca_dates(&e->ca);
	}
	if (rc == P11S_OK && !e->from_cache)
		save_ca(e, certs);
	sk_X509_pop_free(certs, X509_free);
	if (rc != P11S_OK)
		return rc;
	log_v("CA pinned, RA %s", e->ca.ra_enc == e->ca.ca ? "none" : "present");
	if (o->strict) {
		rc = caps_check_strict(&e->caps);
		if (rc != P11S_OK)
			return rc;
	}
	rc = caps_choose(&e->caps, o->cipher, o->digest, &e->algs);
	if (rc != P11S_OK)
		return rc;
	log_v("using %s, %s, %s", cipher_ossl_name(e->algs.cipher),
	      digest_ossl_name(e->algs.digest), e->algs.use_post ? "POST" : "GET");
	return P11S_OK;
}

void enroll_drop_cache(struct enroll *e)
{
	const char *dir = cache_dir(e);

	if (dir != NULL)
		ca_cache_drop(dir);
	e->cache_dropped = 1;
	e->from_cache = 0;
}

enum p11s_err enroll_open_key(struct enroll *e, int may_generate)
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
	log_timing("token-open", t0);
	log_v("token ready (%.1f ms)", log_now_ms() - t0);
	t0 = log_now_ms();
	rc = ks_find_key(e->ks, &e->key);
	if (rc == P11S_OK) {
		log_timing("key-find", t0);
		log_v("reusing the key in the token (%.1f ms)", log_now_ms() - t0);
		return P11S_OK;
	}
	if (rc != P11S_E_NOTFOUND)
		return rc;
	if (!may_generate)
		return err_set(P11S_E_NOTFOUND, "the token holds no private key matching %s",
			       "the key URI: check object= and id=");
	err_clear();
	rc = ks_generate_key(e->ks, &o->keyspec, &e->key);
	log_timing("keygen", t0);
	if (rc == P11S_OK)
		log_v("generated an %s-%u key in the token (%.1f ms)",
		      o->keyspec.type == KS_KEY_EC ? "EC P" : "RSA", o->keyspec.bits,
		      log_now_ms() - t0);
	return rc;
}

enum p11s_err enroll_current_cert(struct enroll *e, X509 **out)
{
	const struct opts *o = e->o;
	unsigned char *der = NULL;
	const unsigned char *p;
	X509 *cert = NULL;
	size_t len = 0;
	enum p11s_err rc;

	*out = NULL;
	if (o->cert_in == NULL) {
		rc = ks_find_cert(e->ks, &cert);
		if (rc == P11S_E_NOTFOUND)
			return err_set(P11S_E_USAGE, "the token holds no certificate beside the key: "
				       "give the current one with --cert FILE");
		if (rc != P11S_OK)
			return rc;
	} else {
		BIO *b;

		rc = file_read_all(o->cert_in, 1024 * 1024, &der, &len);
		if (rc != P11S_OK)
			return rc;
		b = BIO_new_mem_buf(der, (int)len);
		cert = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
		if (cert == NULL) {
			p = der;
			cert = d2i_X509(NULL, &p, (long)len);
		}
		free(der);
		if (cert == NULL)
			return err_set(P11S_E_USAGE, "%s holds no certificate (PEM or DER)", o->cert_in);
	}
	if (X509_get0_pubkey(cert) == NULL ||
	    (e->key != NULL && EVP_PKEY_eq(X509_get0_pubkey(cert), e->key) != 1)) {
		X509_free(cert);
		return err_set(P11S_E_USAGE, "the current certificate is not for the key the URI "
			       "names: check --cert and the key URI");
	}
	*out = cert;
	return P11S_OK;
}

enum p11s_err enroll_state_locate(struct enroll *e)
{
	txn_state_dir(e->o->state_dir, e->state_dir, sizeof(e->state_dir));
	return txn_state_path(e->state_dir, e->key, e->state_path, sizeof(e->state_path));
}

enum p11s_err enroll_prepare_query(struct enroll *e)
{
	enum p11s_err rc;

	rc = enroll_discover(e);
	if (rc == P11S_OK)
		rc = enroll_open_key(e, 0);
	if (rc == P11S_OK)
		rc = enroll_current_cert(e, &e->signer);
	if (rc == P11S_OK)
		rc = enroll_random_txid(e);
	return rc;
}

enum p11s_err enroll_random_txid(struct enroll *e)
{
	unsigned char rnd[16];
	int i;

	if (scep_new_nonce(rnd) != P11S_OK)
		return err_set(P11S_E_INTERNAL, "no random bytes for a transactionID");
	for (i = 0; i < 16; i++)
		snprintf(e->txn.txid + 2 * i, 3, "%02X", rnd[i]);
	return P11S_OK;
}

enum p11s_err enroll_check_status(const struct enroll *e)
{
	const struct scep_reply *r = &e->reply;

	switch (r->status) {
	case STATUS_SUCCESS:
		return P11S_OK;
	case STATUS_PENDING:
		return err_set(P11S_E_PENDING, "the CA answered PENDING (transactionID %s)",
			       e->txn.txid);
	case STATUS_FAILURE:
		/* No capability announces EC: a refusal is where we learn it. */
		if (e->key != NULL && EVP_PKEY_is_a(e->key, "EC") &&
		    r->fail_info != FAIL_BADMESSAGECHECK && r->fail_info != FAIL_BADTIME &&
		    r->fail_info != FAIL_BADCERTID)
			return err_set(P11S_E_REJECTED, "the CA rejected the request for an EC "
				       "key: %s%s%s%s; if the server cannot issue certificates "
				       "for EC keys (micromdm's scepserver cannot), use "
				       "--key-type rsa:2048", scep_failinfo_name(r->fail_info),
				       r->fail_text ? " (" : "", r->fail_text ? r->fail_text : "",
				       r->fail_text ? ")" : "");
		return err_set(P11S_E_REJECTED, "the CA rejected the request: %s%s%s%s",
			       scep_failinfo_name(r->fail_info),
			       r->fail_text ? " (" : "", r->fail_text ? r->fail_text : "",
			       r->fail_text ? ")" : "");
	}
	return err_set(P11S_E_UNTRUSTED, "unknown pkiStatus %d", (int)r->status);
}

/* transactionID: from the public key for a first request; random for
 * --new-request, so that a server still holding the old one tells them apart. */
static enum p11s_err new_txid(struct enroll *e)
{
	if (e->resend)
		return P11S_OK;
	if (!e->o->new_request)
		return scep_txid_from_key(e->key, e->txn.txid);
	return enroll_random_txid(e);
}

enum p11s_err enroll_build_csr(struct enroll *e)
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
	enum p11s_err rc;

	rc = csr_build(&cp, e->key, &e->req);
	if (rc != P11S_OK)
		return rc;
	if (e->signer == NULL) {
		rc = signer_cert_build(e->req, e->key, digest, &e->signer);
		if (rc != P11S_OK)
			return rc;
	}
	return new_txid(e);
}

static enum p11s_err transact_once(struct enroll *e, enum scep_msgtype t,
				   const unsigned char *content, size_t content_len)
{
	struct scep_request r = {
		.type = t,
		.content = content,
		.content_len = content_len,
		.signer_cert = e->signer,
		.signer_key = e->signer_key ? e->signer_key : e->key,
		.recipient = e->ca.ra_enc,
		.cipher = cipher_ossl_name(e->algs.cipher),
		.digest = digest_ossl_name(e->algs.digest),
		.txn = &e->txn,
	};
	struct scep_reply_check check = {
		.reply_signer = e->ca.ra_sig,
		.txn = &e->txn,
		.our_cert = e->signer,
		.our_key = e->signer_key ? e->signer_key : e->key,
		.password = e->challenge[0] != '\0' ? e->challenge : NULL,
		.strict = e->o->strict,
	};
	unsigned char *msg = NULL, *rep = NULL;
	size_t msg_len = 0, rep_len = 0;
	enum p11s_err rc;
	double t0 = log_now_ms();

	scep_reply_free(&e->reply);
	rc = scep_new_nonce(e->txn.sender_nonce);
	if (rc != P11S_OK)
		return rc;
	rc = scep_request_build(&r, &msg, &msg_len);
	if (rc != P11S_OK)
		return rc;
	log_timing("pkimessage", t0);
	t0 = log_now_ms();
	rc = scep_pki_operation(e->http, e->url, e->algs.use_post, msg, msg_len, &rep, &rep_len);
	OPENSSL_free(msg);
	if (rc != P11S_OK)
		return rc;
	log_timing("exchange", t0);
	log_v("PKIOperation exchange (%.1f ms)", log_now_ms() - t0);
	t0 = log_now_ms();
	rc = scep_reply_parse(rep, rep_len, &check, &e->reply);
	free(rep);
	log_timing("verify", t0);
	if (rc == P11S_OK)
		log_v("CertRep verified (signed with %s, encrypted with %s%s%s) (%.1f ms)",
		      e->reply.signature_digest ? e->reply.signature_digest : "?",
		      e->reply.envelope_cipher ? e->reply.envelope_cipher : "-",
		      e->reply.envelope_recipient ? ", key by " : "",
		      e->reply.envelope_recipient ? e->reply.envelope_recipient : "",
		      log_now_ms() - t0);
	return rc;
}

/* A CA that cannot read or check our message may just have new certificates. */
static int stale_ca_failure(const struct scep_reply *r)
{
	return r->status == STATUS_FAILURE &&
	       (r->fail_info == FAIL_BADALG || r->fail_info == FAIL_BADMESSAGECHECK);
}

enum p11s_err enroll_transact(struct enroll *e, enum scep_msgtype t,
			      const unsigned char *content, size_t content_len)
{
	enum p11s_err rc;

	rc = transact_once(e, t, content, content_len);
	if (!e->from_cache || !(rc == P11S_E_NETWORK || rc == P11S_E_UNTRUSTED ||
				(rc == P11S_OK && stale_ca_failure(&e->reply))))
		return rc;
	/* Encrypted to, or answered by, a CA/RA the cache did not know: the
	 * server's certificates may have changed. Ask it, and send again (same
	 * transactionID, new nonce). */
	log_v("PKIOperation failed with the cached CA certificates (%s): asking the server",
	      rc == P11S_OK ? scep_failinfo_name(e->reply.fail_info) : err_msg());
	err_clear();
	enroll_drop_cache(e);
	rc = enroll_discover(e);
	if (rc == P11S_OK)
		rc = transact_once(e, t, content, content_len);
	return rc;
}

static enum p11s_err save_state(struct enroll *e, int answered)
{
	struct txn_state s = {
		.url = (char *)e->url,
		.ca_fingerprint = (char *)e->ca_fingerprint,
		.cert_out = (char *)e->cert_out,
		.chain_out = (char *)e->chain_out,
		.import_chain = e->import_chain,
		.created = time(NULL),
		.signer = e->signer,
		.subject = e->subject,
		.remove_old = e->remove_old,
		.answered = answered,
	};

	snprintf(s.txid, sizeof(s.txid), "%s", e->txn.txid);
	if (e->rollover)
		s.new_key_id = e->new_id;
	return txn_state_save(e->state_dir, e->state_path, &s);
}

enum p11s_err enroll_send_request(struct enroll *e)
{
	unsigned char *der = NULL;
	int der_len;
	enum p11s_err rc;
	double t0 = log_now_ms();

	if (e->req == NULL) {
		rc = enroll_build_csr(e);
		if (rc != P11S_OK)
			return rc;
	}
	log_timing("csr", t0);
	X509_NAME_free(e->subject);
	e->subject = X509_NAME_dup(X509_REQ_get_subject_name(e->req));
	if (e->subject == NULL)
		return err_set_ssl(P11S_E_NOMEM, "cannot copy the request's subject");
	/* Saved before the first send: whatever happens next can be resumed. */
	rc = save_state(e, 0);
	if (rc != P11S_OK)
		return rc;
	der_len = i2d_X509_REQ(e->req, &der);
	if (der_len <= 0)
		return err_set_ssl(P11S_E_INTERNAL, "cannot encode the CSR");
	log_v("%s built, transactionID %s (%.1f ms)",
	      e->msgtype == MSG_RENEWALREQ ? "RenewalReq" : "PKCSReq", e->txn.txid,
	      log_now_ms() - t0);
	rc = enroll_transact(e, e->msgtype ? e->msgtype : MSG_PKCSREQ, der, (size_t)der_len);
	OPENSSL_clear_free(der, (size_t)der_len);
	/* The challenge authorised this request: it must not sit in memory
	 * while we poll. Only a key that cannot decrypt (EC) may still need it,
	 * for a reply in a password envelope (PWRI). */
	csr_free(e->req);
	e->req = NULL;
	if (EVP_PKEY_get_base_id(e->signer_key ? e->signer_key : e->key) == EVP_PKEY_RSA)
		secret_wipe(e->challenge, sizeof(e->challenge));
	/* The CA holds it now: from here on we poll, never send it again. */
	if (rc == P11S_OK && e->reply.status == STATUS_PENDING)
		rc = save_state(e, 1);
	return rc;
}

static volatile sig_atomic_t poll_stop;

static void on_stop_signal(int sig)
{
	(void)sig;
	poll_stop = 1;
}

/* Sleeps up to s seconds; returns early (non-zero) when asked to stop. */
static int wait_interruptibly(long s)
{
	struct timespec ts = { .tv_sec = s, .tv_nsec = 0 };

	while (!poll_stop && nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
	return poll_stop;
}

enum p11s_err enroll_poll(struct enroll *e, int ask_first)
{
	const struct opts *o = e->o;
	struct sigaction sa, old_int, old_term;
	unsigned char *content = NULL;
	size_t content_len = 0;
	time_t deadline = time(NULL) + o->max_poll_time_s;
	unsigned int n = 0;
	int tty = isatty(STDERR_FILENO);
	enum p11s_err rc = P11S_OK;

	if (e->reply.status != STATUS_PENDING)
		return P11S_OK;
	rc = scep_issuer_and_subject_der(X509_get_subject_name(e->ca.ca),
					 e->subject, &content, &content_len);
	if (rc != P11S_OK)
		return rc;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;	/* no SA_RESTART: the sleep must end */
	sigemptyset(&sa.sa_mask);
	poll_stop = 0;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	if (ask_first) {
		n++;
		rc = enroll_transact(e, MSG_CERTPOLL, content, content_len);
	}
	while (rc == P11S_OK && e->reply.status == STATUS_PENDING) {
		if (time(NULL) + o->poll_interval_s > deadline) {
			rc = err_set(P11S_E_PENDING, "the CA still holds the request (transactionID "
				     "%s) after %u polls: resume with 'p11scep poll'", e->txn.txid, n);
			break;
		}
		if (tty || log_verbose())
			fprintf(stderr, "p11scep: request pending at the CA; asking again in %ld s "
				"(poll %u)\n", o->poll_interval_s, n + 1);
		if (wait_interruptibly(o->poll_interval_s)) {
			rc = err_set(P11S_E_PENDING, "stopped while the CA holds the request "
				     "(transactionID %s): resume with 'p11scep poll'", e->txn.txid);
			break;
		}
		n++;
		rc = enroll_transact(e, MSG_CERTPOLL, content, content_len);
		if (rc != P11S_OK)
			break;
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	OPENSSL_free(content);
	return rc;
}

/* Every file the issued cert goes to, staged: a full disk or a bad
 * directory fails here, before the token changes. */
static enum p11s_err stage_files(struct enroll *e, X509 *cert, struct out_batch *b)
{
	X509 **v = NULL;
	enum p11s_err rc = P11S_OK;
	int i;

	if (e->cert_out != NULL)
		rc = out_stage_pem_certs(b, e->cert_out, &cert, 1);
	if (rc == P11S_OK && e->chain_out != NULL) {
		v = malloc(sizeof(*v) * (size_t)(sk_X509_num(e->chain) + 1));
		if (v == NULL)
			return err_set(P11S_E_NOMEM, "out of memory");
		for (i = 0; i < sk_X509_num(e->chain); i++)
			v[i] = sk_X509_value(e->chain, i);
		rc = out_stage_pem_certs(b, e->chain_out, v, (size_t)sk_X509_num(e->chain));
		free(v);
	}
	if (rc == P11S_OK && e->o->store_dir != NULL)
		rc = store_stage(b, e->o->store_dir, &e->ca, cert, e->chain);
	return rc;
}

/* The CA certificates first: they only add objects, while storing ours
 * replaces the older one, so a failure among them changes nothing of ours. */
static enum p11s_err write_token(struct enroll *e, X509 *cert)
{
	enum p11s_err rc = P11S_OK;
	int i;

	for (i = 0; rc == P11S_OK && e->import_chain && i < sk_X509_num(e->chain); i++)
		rc = ks_store_ca_cert(e->ks, sk_X509_value(e->chain, i));
	if (rc == P11S_OK)
		rc = ks_store_cert(e->ks, cert);
	return rc;
}

/* Files staged, token written, files renamed into place: a failure at any
 * step before the last leaves the previous files as they were. */
static enum p11s_err write_outputs(struct enroll *e, X509 *cert)
{
	struct out_batch b = { 0 };
	enum p11s_err rc;
	double t0 = log_now_ms();

	rc = stage_files(e, cert, &b);
	log_timing("file-stage", t0);
	if (rc == P11S_OK) {
		t0 = log_now_ms();
		rc = write_token(e, cert);
		log_timing("token-write", t0);
	}
	if (rc == P11S_OK) {
		t0 = log_now_ms();
		rc = out_commit(&b);
		log_timing("file-commit", t0);
	}
	out_drop(&b);
	if (rc == P11S_OK && e->o->store_dir != NULL)
		store_saved(e->o->store_dir, &e->ca);
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
	log_timing("check-issued", t0);
	rc = write_outputs(e, cert);
	if (rc != P11S_OK)
		return rc;
	log_v("certificate verified and stored (%.1f ms)", log_now_ms() - t0);
	if (e->rollover && e->remove_old) {
		/* Only now, with the new cert stored: the old key is no longer needed. */
		EVP_PKEY_free(e->signer_key);
		e->signer_key = NULL;
		rc = ks_remove_key(e->ks, &e->old_id);
		if (rc != P11S_OK)
			return rc;
		log_v("old key removed from the token");
	}
	print_issued(cert);
	return P11S_OK;
}

enum p11s_err enroll_conclude(struct enroll *e)
{
	enum p11s_err rc;

	if (e->reply.status == STATUS_PENDING)
		return err_set(P11S_E_PENDING, "the CA holds the request for approval "
			       "(transactionID %s): resume with 'p11scep poll'", e->txn.txid);
	rc = enroll_check_status(e);
	if (rc == P11S_OK) {
		/* A reply we refuse leaves the state: the CA may still answer a poll. */
		rc = deliver(e);
		if (rc != P11S_OK)
			return rc;
	} else if (rc != P11S_E_REJECTED) {
		return rc;
	}
	/* Decided either way: the transaction is over. */
	if (unlink(e->state_path) == -1 && errno != ENOENT)
		log_warn("cannot remove %s: %s", e->state_path, strerror(errno));
	return rc;
}

void enroll_record(const struct enroll *e, enum p11s_err rc)
{
	const char *dir = e->o->store_dir;

	if (dir == NULL)
		return;
	if (rc == P11S_E_PENDING && e->txn.txid[0] != '\0')
		store_set_pending(dir, e->txn.txid);
	else if (rc == P11S_OK || rc == P11S_E_REJECTED)
		store_clear_pending(dir);
}

enum p11s_err enroll_begin(struct enroll *e, const struct opts *o)
{
	enum p11s_err rc;

	enroll_init(e, o);
	rc = cmd_check_outputs(o);
	if (rc == P11S_OK)
		rc = cmd_challenge(o, e->challenge, sizeof(e->challenge));
	if (rc == P11S_OK)
		rc = enroll_discover(e);
	return rc;
}

enum p11s_err enroll_finish(struct enroll *e)
{
	enum p11s_err rc;

	rc = enroll_send_request(e);
	if (rc == P11S_OK && e->o->max_poll_time_s > 0)
		rc = enroll_poll(e, 0);
	if (rc == P11S_OK)
		rc = enroll_conclude(e);
	return rc;
}
