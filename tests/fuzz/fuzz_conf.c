/* conf_load on any file content (written to a 0600 temp file), then conf_find. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "err.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Touch every string a profile hands out, so that ASan checks each one. */
static size_t walk(const struct conf_profile *p)
{
	const char *s[] = {
		p->name, p->file, p->url, p->key_uri, p->module, p->subject,
		p->ca_fingerprint, p->challenge_file, p->cert_out, p->chain_out,
		p->ca_dir, p->state_dir, p->cacert, p->post_enroll_command,
	};
	size_t i, n = 0;

	for (i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		n += s[i] != NULL ? strlen(s[i]) : 0;
	if (p->n_dns > CONF_MAX_SANS || p->n_ip > CONF_MAX_SANS)
		__builtin_trap();
	for (i = 0; i < p->n_dns; i++)
		n += strlen(p->dns[i]);
	for (i = 0; i < p->n_ip; i++)
		n += strlen(p->ip[i]);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf c;
	enum p11s_err rc;
	char path[64];
	size_t i;

	if (fuzz_write_temp(data, size, "conf", path, sizeof(path)) != 0)
		return 0;
	rc = conf_load(path, &c);
	fuzz_report("conf_load", rc);
	if (rc == P11S_OK) {
		for (i = 0; i < c.n_profiles; i++) {
			const struct conf_profile *p = &c.profiles[i];

			/* The documented promises: these four are never NULL. */
			if (p->url == NULL || p->key_uri == NULL || p->subject == NULL ||
			    p->ca_fingerprint == NULL || strcasestr(p->key_uri, "pin-value") != NULL)
				__builtin_trap();
			(void)walk(p);
			if (conf_find(&c, p->name) == NULL)
				__builtin_trap();
		}
		(void)conf_find(&c, "no-such-profile");
	}
	conf_free(&c);
	unlink(path);
	err_clear();
	return 0;
}
