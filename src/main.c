/* p11scep: parse argv, run one command, turn its result into an exit status. */
#include "config.h"

#include <stdio.h>
#include <sys/prctl.h>

#include <openssl/err.h>
#include <openssl/provider.h>

#include "cmds.h"
#include "conf.h"
#include "err.h"
#include "log.h"
#include "opts.h"
#include "secret.h"
#include "store.h"
#include "txn_state.h"

/*
 * Replies from deployed servers (micromdm's scepserver among them) come
 * encrypted with single DES, which OpenSSL 3 keeps in its legacy provider.
 * Decrypting them is harmless; we never choose DES for what we send.
 */
static OSSL_PROVIDER *prov_default, *prov_legacy;

static void providers_load(void)
{
	prov_default = OSSL_PROVIDER_load(NULL, "default");
	prov_legacy = OSSL_PROVIDER_load(NULL, "legacy");
	if (prov_legacy == NULL)
		log_v("OpenSSL legacy provider not available: DES-encrypted replies will fail");
	ERR_clear_error();
}

static void providers_unload(void)
{
	if (prov_legacy != NULL)
		OSSL_PROVIDER_unload(prov_legacy);
	if (prov_default != NULL)
		OSSL_PROVIDER_unload(prov_default);
}

static enum p11s_err run(const struct opts *o)
{
	switch (o->cmd) {
	case CMD_GETCAPS:	return cmd_getcaps(o);
	case CMD_GETCA:		return cmd_getca(o);
	case CMD_ENROLL:	return cmd_enroll(o);
	case CMD_POLL:		return cmd_poll(o);
	case CMD_RENEW:		return cmd_renew(o);
	case CMD_GETNEXTCA:	return cmd_getnextca(o);
	case CMD_GETCERT:	return cmd_getcert(o);
	case CMD_GETCRL:	return cmd_getcrl(o);
	case CMD_STATUS:	return cmd_status(o);
	case CMD_RUN:		return cmd_run(o);
	case CMD_SHOWCERT:	return cmd_showcert(o);
	case CMD_TOKENINFO:	return cmd_tokeninfo(o);
	case CMD_NONE:		break;
	}
	return err_set(P11S_E_INTERNAL, "no command");
}

/* -p NAME: the profile's settings fill what the command line left unset. */
static char store_buf[4096], state_buf[4096];

static enum p11s_err apply_profile(struct opts *o, struct conf *conf)
{
	const char *path = o->config ? o->config : CONF_DEFAULT_PATH;
	const struct conf_profile *p;
	enum p11s_err rc;

	/* status and run read every profile themselves. */
	if (o->cmd == CMD_STATUS || o->cmd == CMD_RUN)
		return P11S_OK;
	if (o->profile == NULL) {
		if (o->config != NULL)
			return err_set(P11S_E_USAGE, "-c %s needs -p NAME to pick a profile", o->config);
		return P11S_OK;
	}
	rc = conf_load(path, conf);
	if (rc != P11S_OK)
		return rc;
	p = conf_find(conf, o->profile);
	if (p == NULL)
		return err_set(P11S_E_USAGE, "%s has no [profile %s]", path, o->profile);
	opts_apply_profile(o, p);
	o->store_dir = store_dir(p->ca_dir, txn_state_dir(o->state_dir, state_buf, sizeof(state_buf)),
				 p->name, store_buf, sizeof(store_buf));
	return P11S_OK;
}

/*
 * As ssh-agent does: no core file, and no ptrace or /proc/PID/mem and environ
 * for other processes of the same user, while the PIN and the challenge are
 * in memory. Hooks that run exec'd are dumpable again.
 */
static void protect_memory(void)
{
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		fprintf(stderr, "p11scep: warning: cannot keep other processes out of its memory\n");
}

int main(int argc, char **argv)
{
	struct conf conf = { 0 };
	struct opts o;
	int lock_fd = -1;
	enum p11s_err rc;
	double t0 = log_now_ms();

	protect_memory();
	/* Before anything allocates through OpenSSL. */
	if (secret_heap_init() != P11S_OK)
		fprintf(stderr, "p11scep: warning: %s\n", err_msg());
	rc = opts_parse(argc, argv, &o);
	if (rc == P11S_OK && o.version) {
		printf("p11scep %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (rc == P11S_OK && o.help) {
		opts_usage(stdout, o.cmd);
		return 0;
	}
	if (rc == P11S_OK)
		rc = apply_profile(&o, &conf);
	if (rc == P11S_OK)
		rc = opts_check_required(&o);
	/* the read-only commands take no lock */
	if (rc == P11S_OK && o.store_dir != NULL && o.cmd != CMD_SHOWCERT &&
	    o.cmd != CMD_TOKENINFO)
		rc = store_lock(o.store_dir, &lock_fd);
	if (rc == P11S_OK) {
		log_set_verbose(o.verbose);
		log_set_timings(o.timings);
		providers_load();
		log_timing("startup", t0);
		rc = run(&o);
		providers_unload();
		log_timing("total", t0);
	}
	store_unlock(lock_fd);
	if (rc != P11S_OK)
		fprintf(stderr, "p11scep: %s\n", err_msg()[0] ? err_msg() : err_str(rc));
	conf_free(&conf);
	return err_exit_code(rc);
}
