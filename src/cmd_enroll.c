#include "config.h"

#include "cmds.h"
#include "enroll.h"
#include "log.h"

enum p11s_err cmd_enroll(const struct opts *o)
{
	struct enroll e;
	enum p11s_err rc;
	double t0 = log_now_ms();

	rc = enroll_begin(&e, o);
	if (rc == P11S_OK)
		rc = enroll_open_key(&e, 1);
	if (rc == P11S_OK)
		rc = enroll_state_locate(&e);
	if (rc == P11S_OK)
		rc = enroll_check_pending(&e);
	if (rc == P11S_OK)
		rc = enroll_finish(&e);
	log_v("enroll took %.1f ms", log_now_ms() - t0);
	enroll_record(&e, rc);
	enroll_free(&e);
	return rc;
}
