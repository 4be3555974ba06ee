/* One function per command: glue only, no ASN.1 and no HTTP details. */
#ifndef P11SCEP_CMDS_H
#define P11SCEP_CMDS_H

#include <stddef.h>

#include "err.h"
#include "http.h"
#include "opts.h"
#include "scep_ca.h"

enum p11s_err cmd_getcaps(const struct opts *o);
enum p11s_err cmd_getca(const struct opts *o);
enum p11s_err cmd_enroll(const struct opts *o);
enum p11s_err cmd_poll(const struct opts *o);
enum p11s_err cmd_renew(const struct opts *o);
enum p11s_err cmd_getnextca(const struct opts *o);
enum p11s_err cmd_getcert(const struct opts *o);
enum p11s_err cmd_getcrl(const struct opts *o);
enum p11s_err cmd_status(const struct opts *o);
enum p11s_err cmd_run(const struct opts *o);
enum p11s_err cmd_showcert(const struct opts *o);
enum p11s_err cmd_tokeninfo(const struct opts *o);

/* DIR/PREFIXROLE.pem, or DIR/PREFIXROLE-N.pem for the Nth cert of a role. */
enum p11s_err cmd_write_role_file(const char *dir, const char *prefix, X509 *cert,
				  enum ca_role role, unsigned int nth);

/* Shared glue (cmd_common.c). */
void cmd_http_opts(const struct opts *o, struct http_opts *h);
/* ks_pin_cb: P11SCEP_PIN, else a prompt on the terminal (if may_prompt),
 * else P11S_E_PIN. */
enum p11s_err cmd_pin_cb(void *arg, const char *token_label, int may_prompt, char *buf,
			 size_t buflen);
/* A bad --cert-out/--chain-out must fail before the CA issues anything. */
enum p11s_err cmd_check_outputs(const struct opts *o);
/* --challenge-file, else P11SCEP_CHALLENGE, else none (buf[0] = '\0'). */
/* p11scep run: keep P11SCEP_PIN and P11SCEP_CHALLENGE for every profile. */
void cmd_secrets_keep(void);
void cmd_secrets_forget(void);
enum p11s_err cmd_challenge(const struct opts *o, char *buf, size_t buflen);

#endif
