#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cmds.h"
#include "output.h"
#include "secret.h"

void cmd_http_opts(const struct opts *o, struct http_opts *h)
{
	memset(h, 0, sizeof(*h));
	h->timeout_s = o->timeout_s;
	h->cacert = o->cacert;
	h->insecure_tls = o->insecure_tls;
	h->verbose = o->verbose > 1;
}

enum p11s_err cmd_pin_cb(void *arg, const char *token_label, char *buf, size_t buflen)
{
	char prompt[160];
	enum p11s_err rc;

	(void)arg;
	rc = secret_from_env("P11SCEP_PIN", buf, buflen);
	if (rc != P11S_E_NOTFOUND)
		return rc;
	snprintf(prompt, sizeof(prompt), "PIN for token '%s': ", token_label ? token_label : "?");
	rc = secret_prompt(prompt, buf, buflen);
	if (rc == P11S_E_NOTFOUND)
		return err_set(P11S_E_PIN, "no PIN for token '%s': add pin-source=file:PATH to the "
			       "key URI, set P11SCEP_PIN, or run on a terminal",
			       token_label ? token_label : "?");
	return rc;
}

enum p11s_err cmd_challenge(const struct opts *o, char *buf, size_t buflen)
{
	enum p11s_err rc;

	buf[0] = '\0';
	if (o->challenge_file != NULL)
		return secret_from_file(o->challenge_file, buf, buflen);
	rc = secret_from_env("P11SCEP_CHALLENGE", buf, buflen);
	if (rc == P11S_E_NOTFOUND) {
		buf[0] = '\0';
		return P11S_OK;
	}
	return rc;
}

enum p11s_err cmd_check_outputs(const struct opts *o)
{
	enum p11s_err rc = P11S_OK;

	if (o->cert_out != NULL)
		rc = out_check_writable(o->cert_out);
	if (rc == P11S_OK && o->chain_out != NULL)
		rc = out_check_writable(o->chain_out);
	return rc;
}
