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

/*
 * A secret from the environment is taken once (it leaves the environment).
 * p11scep run needs them for every profile and every login: it keeps them
 * here from cmd_secrets_keep() to cmd_secrets_forget().
 */
static char kept_pin[256], kept_challenge[256];
static int keeping;

void cmd_secrets_keep(void)
{
	keeping = 1;
	if (secret_from_env("P11SCEP_PIN", kept_pin, sizeof(kept_pin)) != P11S_OK)
		kept_pin[0] = '\0';
	if (secret_from_env("P11SCEP_CHALLENGE", kept_challenge, sizeof(kept_challenge)) != P11S_OK)
		kept_challenge[0] = '\0';
	err_clear();
}

void cmd_secrets_forget(void)
{
	secret_wipe(kept_pin, sizeof(kept_pin));
	secret_wipe(kept_challenge, sizeof(kept_challenge));
	keeping = 0;
}

/* The kept copy of a secret, or P11S_E_NOTFOUND. */
static enum p11s_err from_kept(const char *kept, char *buf, size_t buflen)
{
	size_t n = strlen(kept);

	if (!keeping || n == 0)
		return P11S_E_NOTFOUND;
	if (n >= buflen)
		return err_set(P11S_E_USAGE, "a secret from the environment is too long");
	memcpy(buf, kept, n + 1);
	return P11S_OK;
}

enum p11s_err cmd_pin_cb(void *arg, const char *token_label, int may_prompt, char *buf,
			 size_t buflen)
{
	char prompt[160];
	enum p11s_err rc;

	(void)arg;
	rc = from_kept(kept_pin, buf, buflen);
	if (rc != P11S_E_NOTFOUND)
		return rc;
	rc = secret_from_env("P11SCEP_PIN", buf, buflen);
	if (rc != P11S_E_NOTFOUND || !may_prompt)
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
	rc = from_kept(kept_challenge, buf, buflen);
	if (rc != P11S_E_NOTFOUND)
		return rc;
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
