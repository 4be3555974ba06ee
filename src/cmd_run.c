#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "certinfo.h"
#include "rollover.h"
#include "cmds.h"
#include "conf.h"
#include "log.h"
#include "status.h"
#include "store.h"
#include "txn_state.h"

/* post-enroll-command, through /bin/sh, with the profile and cert in its environment. */
static enum p11s_err run_hook(const struct conf_profile *p, const char *dir)
{
	char cert[4200];
	pid_t pid;
	int status;

	if (p->post_enroll_command == NULL)
		return P11S_OK;
	snprintf(cert, sizeof(cert), "%s/user/cert.pem", dir);
	fflush(NULL);
	pid = fork();
	if (pid == -1)
		return err_set(P11S_E_INTERNAL, "cannot run post-enroll-command: fork failed");
	if (pid == 0) {
		setenv("P11SCEP_PROFILE", p->name, 1);
		setenv("P11SCEP_CERT", cert, 1);
		execl("/bin/sh", "sh", "-c", p->post_enroll_command, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) == -1)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return err_set(P11S_E_INTERNAL, "post-enroll-command failed (status %d)",
			       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return P11S_OK;
}

enum run_action { ACT_NONE, ACT_ENROLL, ACT_RENEW, ACT_POLL };

static enum run_action decide(const struct store_view *v, long renew_at, time_t now, time_t *due)
{
	*due = 0;
	if (v->pending[0] != '\0')
		return ACT_POLL;
	if (v->user == NULL)
		return ACT_ENROLL;
	*due = status_renew_due(v->user, renew_at);
	return now >= *due ? ACT_RENEW : ACT_NONE;
}

/* One profile: lock it, see what it needs, do it. */
static enum p11s_err run_profile(const struct opts *base, const struct conf_profile *p)
{
	static const char *const verbs[] = { "", "enroll", "renew", "poll" };
	struct store_view v = { 0 };
	struct opts po = *base;
	char state[4096], dir[4096], cert[4200], when[64], fp[100];
	enum run_action act;
	enum p11s_err rc;
	time_t due;
	int lock = -1;

	txn_state_dir(base->state_dir ? base->state_dir : p->state_dir, state, sizeof(state));
	store_dir(p->ca_dir, state, p->name, dir, sizeof(dir));
	rc = store_lock(dir, &lock);
	if (rc != P11S_OK)
		return rc;
	store_read(dir, &v);
	act = decide(&v, p->renew_at, time(NULL), &due);
	po.cmd = act == ACT_ENROLL ? CMD_ENROLL : act == ACT_RENEW ? CMD_RENEW : CMD_POLL;
	opts_apply_profile(&po, p);
	po.store_dir = dir;
	po.max_poll_time_s = 0;	/* a pass never waits: the next one polls */
	/* The CA matters when we talk to it, or when it nears its end. */
	if (act != ACT_NONE || (v.ca != NULL && v.next_ca == NULL &&
				time(NULL) >= status_renew_due(v.ca, p->renew_at))) {
		rc = rollover_check(&po, p->name, dir, &v, p->renew_at, fp, sizeof(fp));
		if (rc != P11S_OK)
			goto out;
		po.ca_fingerprint = fp;
	}
	if (act == ACT_NONE) {
		certinfo_time(X509_get0_notAfter(v.user), when, sizeof(when));
		log_event(LOG_INFO, "profile %s: certificate valid until %s, nothing to do", p->name, when);
		goto out;
	}
	if (act == ACT_RENEW) {
		snprintf(cert, sizeof(cert), "%s/user/cert.pem", dir);
		po.cert_in = cert;
	}
	err_clear();
	rc = act == ACT_ENROLL ? cmd_enroll(&po) : act == ACT_RENEW ? cmd_renew(&po) : cmd_poll(&po);
	if (rc == P11S_E_PENDING) {
		log_event(LOG_NOTICE, "profile %s: %s: request pending at the CA", p->name, verbs[act]);
		rc = P11S_OK;
		goto out;
	}
	if (rc == P11S_OK) {
		log_event(LOG_NOTICE, "profile %s: %s: certificate issued and stored", p->name, verbs[act]);
		rc = run_hook(p, dir);
	}
out:
	store_view_free(&v);
	store_unlock(lock);
	return rc;
}

/* One pass over all profiles (or -p NAME), for a timer: one failure does not stop the others. */
enum p11s_err cmd_run(const struct opts *o)
{
	const char *path = o->config ? o->config : CONF_DEFAULT_PATH;
	struct conf conf = { 0 };
	char failed[1024] = "";
	size_t i, n_failed = 0, n_done = 0;
	enum p11s_err rc, first = P11S_OK;

	rc = conf_load(path, &conf);
	if (rc != P11S_OK)
		return rc;
	if (o->profile != NULL && conf_find(&conf, o->profile) == NULL) {
		rc = err_set(P11S_E_USAGE, "%s has no [profile %s]", path, o->profile);
		goto out;
	}
	openlog("p11scep", LOG_PID, LOG_DAEMON);
	for (i = 0; i < conf.n_profiles; i++) {
		const struct conf_profile *p = &conf.profiles[i];

		if (o->profile != NULL && strcmp(o->profile, p->name) != 0)
			continue;
		n_done++;
		err_clear();
		rc = run_profile(o, p);
		if (rc == P11S_OK)
			continue;
		log_event(LOG_ERR, "profile %s: failed: %s", p->name, err_msg()[0] ? err_msg() : err_str(rc));
		if (n_failed++ == 0)
			first = rc;
		snprintf(failed + strlen(failed), sizeof(failed) - strlen(failed), "%s%s",
			 failed[0] ? ", " : "", p->name);
	}
	closelog();
	err_clear();
	if (n_failed > 0)
		rc = err_set(first, "%zu of %zu profiles failed: %s", n_failed, n_done, failed);
	else
		rc = P11S_OK;
out:
	conf_free(&conf);
	return rc;
}
