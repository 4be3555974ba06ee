#include "config.h"

#include "cmds.h"
#include "enroll.h"
#include "log.h"
#include "txn_state.h"

/*
 * Resume a pending enrollment: the key names the saved transaction; URL, CA
 * pin and outputs come from it unless given again. Same transactionID and
 * signer certificate, no new request.
 */
enum p11s_err cmd_poll(const struct opts *o)
{
	struct enroll e = { .o = o };
	struct txn_state st = { 0 };
	enum p11s_err rc;

	rc = enroll_open_key(&e, 0);
	if (rc == P11S_OK)
		rc = enroll_state_locate(&e);
	if (rc == P11S_OK) {
		rc = txn_state_load(e.state_path, &st);
		if (rc == P11S_E_NOTFOUND)
			rc = err_set(P11S_E_USAGE, "no pending request for this key in %s: "
				     "nothing to poll (see --state-dir)", e.state_dir);
	}
	if (rc != P11S_OK)
		goto out;
	if (st.new_key_id.len > 0) {
		/* A renewal with a new key: the URI still names the old key, which
		 * signs; the certificate is for the new one. */
		e.rollover = 1;
		e.remove_old = st.remove_old;
		rc = ks_current_id(e.ks, &e.old_id);
		if (rc != P11S_OK)
			goto out;
		e.signer_key = e.key;
		e.key = NULL;
		e.new_id = st.new_key_id;
		rc = ks_find_key_by_id(e.ks, &e.new_id, &e.key);
		if (rc == P11S_E_NOTFOUND)
			rc = err_set(P11S_E_TOKEN, "the new key of the pending renewal is no "
				     "longer in the token: start over with 'p11scep renew'");
		if (rc != P11S_OK)
			goto out;
	}
	e.url = o->url ? o->url : st.url;
	e.ca_fingerprint = o->ca_fingerprint ? o->ca_fingerprint : st.ca_fingerprint;
	e.cert_out = o->cert_out ? o->cert_out : st.cert_out;
	e.chain_out = o->chain_out ? o->chain_out : st.chain_out;
	e.import_chain = o->import_chain || st.import_chain;
	snprintf(e.txn.txid, sizeof(e.txn.txid), "%s", st.txid);
	/* The saved subject and signer: the CA knows us by them. */
	e.subject = st.subject;
	e.signer = st.signer;
	st.subject = NULL;
	st.signer = NULL;
	log_v("resuming transaction %s with %s", e.txn.txid, e.url);

	rc = enroll_discover(&e);
	if (rc != P11S_OK)
		goto out;
	/* Ask at once, then every poll interval as enroll does. */
	e.reply.status = STATUS_PENDING;
	rc = enroll_poll(&e, 1);
	if (rc == P11S_OK)
		rc = enroll_conclude(&e);
out:
	txn_state_free(&st);
	enroll_record(&e, rc);
	enroll_free(&e);
	return rc;
}
