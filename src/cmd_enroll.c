#include "config.h"

#include "cmds.h"
#include "enroll.h"
#include "log.h"
#include "txn_state.h"

/* One outstanding request per key (RFC 8894 §3.3.3): resume it or replace it by name. */
static enum p11s_err check_pending(struct enroll *e)
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
	rc = err_set(P11S_E_USAGE, "a request for this key is pending at the CA (transactionID %s, "
		     "state %s): resume it with 'p11scep poll', or send a new one with --new-request",
		     st.txid, e->state_path);
	txn_state_free(&st);
	return rc;
}

enum p11s_err cmd_enroll(const struct opts *o)
{
	struct enroll e = {
		.o = o,
		.url = o->url,
		.ca_fingerprint = o->ca_fingerprint,
		.cert_out = o->cert_out,
		.chain_out = o->chain_out,
		.import_chain = o->import_chain,
	};
	enum p11s_err rc;
	double t0 = log_now_ms();

	rc = cmd_check_outputs(o);
	if (rc == P11S_OK)
		rc = cmd_challenge(o, e.challenge, sizeof(e.challenge));
	if (rc == P11S_OK)
		rc = enroll_discover(&e);
	if (rc == P11S_OK)
		rc = enroll_open_key(&e, 1);
	if (rc == P11S_OK)
		rc = enroll_state_locate(&e);
	if (rc == P11S_OK)
		rc = check_pending(&e);
	if (rc == P11S_OK)
		rc = enroll_send_request(&e);
	if (rc == P11S_OK && o->max_poll_time_s > 0)
		rc = enroll_poll(&e, 0);
	if (rc == P11S_OK)
		rc = enroll_conclude(&e);
	log_v("enroll took %.1f ms", log_now_ms() - t0);
	enroll_record(&e, rc);
	enroll_free(&e);
	return rc;
}
