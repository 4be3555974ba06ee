/* txn_state_load on any file content (written to a 0600 temp file). */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include "err.h"
#include "fuzz_common.h"
#include "txn_state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct txn_state s;
	enum p11s_err rc;
	char path[64];

	if (fuzz_write_temp(data, size, "state", path, sizeof(path)) != 0)
		return 0;
	rc = txn_state_load(path, &s);
	fuzz_report("txn_state_load", rc);
	if (rc == P11S_OK) {
		/* What resume reads: a loaded state is complete. */
		if (s.subject == NULL || s.signer == NULL || s.url == NULL ||
		    s.ca_fingerprint == NULL || s.txid[0] == '\0')
			__builtin_trap();
		(void)X509_NAME_entry_count(s.subject);
	}
	txn_state_free(&s);
	unlink(path);
	err_clear();
	return 0;
}
