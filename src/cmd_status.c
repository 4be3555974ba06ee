#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmds.h"
#include "conf.h"
#include "status.h"
#include "store.h"
#include "txn_state.h"

/* The ca / ra / usercert table of every profile (or of -p NAME); --json for monitoring. */
enum p11s_err cmd_status(const struct opts *o)
{
	const char *path = o->config ? o->config : CONF_DEFAULT_PATH;
	struct conf conf = { 0 };
	struct status_profile *ps = NULL;
	struct store_view *views = NULL;
	char (*dirs)[4096] = NULL;
	char state[4096];
	size_t i, n = 0;
	enum p11s_err rc;

	rc = conf_load_with(path, o->profile, &conf);
	if (rc != P11S_OK)
		return rc;
	ps = calloc(conf.n_profiles + 1, sizeof(*ps));
	views = calloc(conf.n_profiles + 1, sizeof(*views));
	dirs = calloc(conf.n_profiles + 1, sizeof(*dirs));
	if (ps == NULL || views == NULL || dirs == NULL) {
		rc = err_set(P11S_E_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < conf.n_profiles; i++) {
		const struct conf_profile *p = &conf.profiles[i];

		if (o->profile != NULL && strcmp(o->profile, p->name) != 0)
			continue;
		txn_state_dir(o->state_dir ? o->state_dir : p->state_dir, state, sizeof(state));
		store_dir(p->ca_dir, state, p->name, dirs[n], sizeof(dirs[n]));
		store_read(dirs[n], &views[n]);
		status_build(p->name, dirs[n], &views[n], p->renew_at, time(NULL), &ps[n]);
		n++;
	}
	if (o->json) {
		rc = status_print_json(stdout, ps, n);
	} else {
		for (i = 0; i < n; i++) {
			if (i > 0)
				printf("\n");
			status_print_table(stdout, &ps[i]);
		}
	}
out:
	for (i = 0; views != NULL && i < n; i++)
		store_view_free(&views[i]);
	free(views);
	free(ps);
	free(dirs);
	conf_free(&conf);
	return rc;
}
