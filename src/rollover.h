/*
 * CA rollover for a profile (RFC 8894 §4.7): fetch the next CA with
 * GetNextCACert while the current one nears its end, and follow the server
 * to it once it serves it. The next CA is trusted because the pinned CA
 * signed it; the profile's directory remembers it (ca/next-ca.pem).
 */
#ifndef P11SCEP_ROLLOVER_H
#define P11SCEP_ROLLOVER_H

#include <stddef.h>

#include "err.h"
#include "opts.h"
#include "store.h"

/*
 * Which CA fingerprint this pass must pin: the configured one, else the
 * stored CA's or the stored next CA's when the server serves that instead.
 * Fetches and stores the next CA when the pinned one is past renew_at of its
 * life and the server offers GetNextCACert. fp_hex gets "AA:BB:...".
 */
enum p11s_err rollover_check(const struct opts *po, const char *name, const char *dir,
			     const struct store_view *v, long renew_at,
			     char *fp_hex, size_t fp_len);

#endif
