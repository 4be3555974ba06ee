#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <spawn.h>
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
#include "keystore.h"
#include "log.h"
#include "status.h"
#include "store.h"
#include "txn_state.h"
#include "worklock.h"

extern char **environ;

/* Our environment without name=, plus the two hook variables: built before
 * the child exists, since other threads may hold locks fork() copies. */
static char **hook_env(char *profile, char *cert)
{
	size_t n = 0, i, j = 0;
	char **env;

	while (environ[n] != NULL)
		n++;
	env = calloc(n + 3, sizeof(*env));
	if (env == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (strncmp(environ[i], "P11SCEP_PROFILE=", 16) != 0 &&
		    strncmp(environ[i], "P11SCEP_CERT=", 13) != 0)
			env[j++] = environ[i];
	}
	env[j++] = profile;
	env[j] = cert;
	return env;
}

/* post-enroll-command, through /bin/sh, with the profile and cert in its environment. */
static enum p11s_err run_hook(const struct conf_profile *p, const char *dir)
{
	char profile[300], cert[4200];
	char *argv[] = { "sh", "-c", (char *)p->post_enroll_command, NULL };
	char **env;
	pid_t pid;
	int status, e;

	if (p->post_enroll_command == NULL)
		return P11S_OK;
	snprintf(profile, sizeof(profile), "P11SCEP_PROFILE=%s", p->name);
	snprintf(cert, sizeof(cert), "P11SCEP_CERT=%s/user/cert.pem", dir);
	env = hook_env(profile, cert);
	if (env == NULL)
		return err_set(P11S_E_NOMEM, "out of memory");
	fflush(NULL);
	e = posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, env);
	free(env);
	if (e != 0)
		return err_set(P11S_E_INTERNAL, "cannot run post-enroll-command: %s", strerror(e));
	/* Other profiles go on while the hook runs. */
	worklock_release();
	while ((e = waitpid(pid, &status, 0)) == -1 && errno == EINTR)
		;
	worklock_acquire();
	if (e == -1)
		return err_set(P11S_E_INTERNAL, "post-enroll-command: waitpid: %s", strerror(errno));
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

/* Profiles shared out to worker threads; every field is used under the worklock. */
struct run_pool {
	const struct opts *o;
	const struct conf *conf;
	size_t next;			/* the next profile to take */
	enum p11s_err *rc;		/* per profile */
	char (*msg)[512];		/* per profile: the failure's message */
};

static int selected(const struct opts *o, const struct conf_profile *p)
{
	return o->profile == NULL || strcmp(o->profile, p->name) == 0;
}

/*
 * Some tokens cannot serve several profiles at once: a TPM without a resource
 * manager holds two loaded keys per login. A profile that failed in the token
 * while others were at work goes again alone, after the pass (its request,
 * if one went out, is resent with the same transactionID).
 */
static int retry_alone(const struct run_pool *pool, size_t i)
{
	return pool->rc[i] == P11S_E_TOKEN && pool->o->jobs > 1;
}

static void *run_worker(void *arg)
{
	struct run_pool *pool = arg;
	const struct conf *conf = pool->conf;
	size_t i;

	worklock_acquire();
	while ((i = pool->next) < conf->n_profiles) {
		const struct conf_profile *p = &conf->profiles[i];

		pool->next++;
		if (!selected(pool->o, p))
			continue;
		err_clear();
		pool->rc[i] = run_profile(pool->o, p);
		if (pool->rc[i] == P11S_OK)
			continue;
		snprintf(pool->msg[i], sizeof(pool->msg[i]), "%s",
			 err_msg()[0] ? err_msg() : err_str(pool->rc[i]));
		if (!retry_alone(pool, i))
			log_event(LOG_ERR, "profile %s: failed: %s", p->name, pool->msg[i]);
	}
	worklock_release();
	return NULL;
}

/* The calling thread works too; threads that cannot start are done without. */
static void run_all(struct run_pool *pool, size_t n_selected)
{
	size_t n = (size_t)pool->o->jobs < n_selected ? (size_t)pool->o->jobs : n_selected;
	pthread_t *t = NULL;
	size_t i, started = 0;

	if (n > 1)
		t = calloc(n - 1, sizeof(*t));
	if (t != NULL) {
		worklock_enable();
		for (i = 0; i + 1 < n; i++) {
			if (pthread_create(&t[i], NULL, run_worker, pool) != 0)
				break;
			started++;
		}
	}
	run_worker(pool);
	for (i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	free(t);
}

/* One pass over all profiles (or -p NAME), for a timer: one failure does not
 * stop the others. Up to --jobs profiles at once, one token login for all. */
enum p11s_err cmd_run(const struct opts *o)
{
	const char *path = o->config ? o->config : CONF_DEFAULT_PATH;
	struct conf conf = { 0 };
	struct run_pool pool = { .o = o, .conf = &conf };
	char failed[1024] = "";
	size_t i, n_failed = 0, n_selected = 0;
	enum p11s_err rc, first = P11S_OK;

	rc = conf_load_with(path, o->profile, &conf);
	if (rc != P11S_OK)
		return rc;
	pool.rc = calloc(conf.n_profiles + 1, sizeof(*pool.rc));
	pool.msg = calloc(conf.n_profiles + 1, sizeof(*pool.msg));
	if (pool.rc == NULL || pool.msg == NULL) {
		rc = err_set(P11S_E_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < conf.n_profiles; i++)
		n_selected += selected(o, &conf.profiles[i]);
	openlog("p11scep", LOG_PID, LOG_DAEMON);
	ks_keep_open();
	cmd_secrets_keep();
	run_all(&pool, n_selected);
	for (i = 0; i < conf.n_profiles; i++) {
		if (!retry_alone(&pool, i))
			continue;
		log_event(LOG_NOTICE, "profile %s: the token failed with other profiles at work "
			  "(%s): trying it alone", conf.profiles[i].name, pool.msg[i]);
		err_clear();
		pool.rc[i] = run_profile(o, &conf.profiles[i]);
		if (pool.rc[i] != P11S_OK)
			log_event(LOG_ERR, "profile %s: failed: %s", conf.profiles[i].name,
				  err_msg()[0] ? err_msg() : err_str(pool.rc[i]));
	}
	closelog();
	/* In the configuration's order, whatever order the workers finished in. */
	for (i = 0; i < conf.n_profiles; i++) {
		if (pool.rc[i] == P11S_OK)
			continue;
		if (n_failed++ == 0)
			first = pool.rc[i];
		snprintf(failed + strlen(failed), sizeof(failed) - strlen(failed), "%s%s",
			 failed[0] ? ", " : "", conf.profiles[i].name);
	}
	err_clear();
	if (n_failed > 0)
		rc = err_set(first, "%zu of %zu profiles failed: %s", n_failed, n_selected, failed);
	else
		rc = P11S_OK;
out:
	free(pool.rc);
	free(pool.msg);
	cmd_secrets_forget();
	ks_close_shared();
	conf_free(&conf);
	return rc;
}
