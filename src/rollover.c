#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ca_cache.h"
#include "cmds.h"
#include "log.h"
#include "rollover.h"
#include "scep_client.h"
#include "status.h"

static void fp_hex_of(X509 *cert, char *buf, size_t len)
{
	unsigned char fp[32];

	buf[0] = '\0';
	if (cert != NULL && fingerprint_sha256(cert, fp) == P11S_OK)
		fingerprint_format(fp, buf, len);
}

/* The first of the candidate pins that the served certificates satisfy. */
static enum p11s_err pick_pin(STACK_OF(X509) *certs, const char *const cand[3],
			      struct scep_ca_set *set, size_t *which)
{
	unsigned char fp[32];
	enum p11s_err rc = P11S_E_UNTRUSTED, first = P11S_OK;
	size_t i;

	for (i = 0; i < 3; i++) {
		if (cand[i] == NULL || cand[i][0] == '\0')
			continue;
		if (fingerprint_parse(cand[i], fp) != P11S_OK)
			continue;
		rc = scep_ca_select(certs, fp, set);
		if (rc == P11S_OK) {
			if (i > 0)
				err_clear();	/* an earlier candidate's message */
			*which = i;
			return P11S_OK;
		}
		if (first == P11S_OK)
			first = rc;
	}
	return first != P11S_OK ? first : rc;
}

static enum p11s_err fetch_next(struct http *h, const struct opts *po, const char *name,
				const char *dir, const struct scep_ca_set *set)
{
	STACK_OF(X509) *next = NULL;
	char fp[100];
	enum p11s_err rc;
	int i;

	rc = scep_get_next_ca(h, po->url, set, &next);
	for (i = 0; rc == P11S_OK && i < sk_X509_num(next); i++) {
		X509 *c = sk_X509_value(next, i);

		if (scep_ca_role(c) != ROLE_CA)
			continue;
		rc = store_save_next_ca(dir, c);
		fp_hex_of(c, fp, sizeof(fp));
		if (rc == P11S_OK)
			log_info("profile %s: fetched the next CA (sha256 %s)", name, fp);
		break;
	}
	sk_X509_pop_free(next, X509_free);
	return rc;
}

enum p11s_err rollover_check(const struct opts *po, const char *name, const char *dir,
			     const struct store_view *v, long renew_at,
			     char *fp_hex, size_t fp_len)
{
	struct http_opts ho;
	struct http *h = NULL;
	struct scep_caps caps;
	struct scep_ca_set set = { 0 };
	STACK_OF(X509) *certs = NULL;
	char stored[100], next[100];
	const char *cand[3];
	size_t which = 0;
	int near_end = v->ca != NULL && time(NULL) >= status_renew_due(v->ca, renew_at);
	enum p11s_err rc;

	fp_hex_of(v->ca, stored, sizeof(stored));
	fp_hex_of(v->next_ca, next, sizeof(next));
	cand[0] = po->ca_fingerprint;
	cand[1] = stored;
	cand[2] = next;
	/* Far from the CA's end nothing rolls over: what the server served
	 * lately will do, without asking it again. */
	if (!near_end && ca_cache_load(dir, CA_CACHE_MAX_AGE, &caps, &certs) == P11S_OK) {
		if (pick_pin(certs, cand, &set, &which) == P11S_OK) {
			fp_hex_of(set.pinned ? set.pinned : set.ca, fp_hex, fp_len);
			rc = P11S_OK;
			goto out;
		}
		err_clear();
		sk_X509_pop_free(certs, X509_free);
		certs = NULL;
		ca_cache_drop(dir);
	}
	cmd_http_opts(po, &ho);
	rc = http_new(&ho, &h);
	if (rc == P11S_OK)
		rc = scep_get_caps(h, po->url, &caps);
	if (rc == P11S_OK)
		rc = scep_get_ca(h, po->url, &certs);
	if (rc == P11S_OK)
		rc = pick_pin(certs, cand, &set, &which);
	if (rc != P11S_OK)
		goto out;
	if (ca_cache_save(dir, &caps, certs) != P11S_OK) {
		log_warn("profile %s: cannot cache the CA certificates: %s", name, err_msg());
		err_clear();
	}
	fp_hex_of(set.pinned ? set.pinned : set.ca, fp_hex, fp_len);
	if (which > 0)
		log_info("profile %s: the server serves %s CA now (sha256 %s): following it",
			 name, which == 2 ? "the next" : "the stored", fp_hex);
	if (v->next_ca == NULL && (caps.bits & CAP_GETNEXTCACERT) &&
	    time(NULL) >= status_renew_due(set.pinned ? set.pinned : set.ca, renew_at))
		rc = fetch_next(h, po, name, dir, &set);
out:
	scep_ca_set_free(&set);
	sk_X509_pop_free(certs, X509_free);
	http_free(h);
	return rc;
}
