/* caps_parse on any GetCACaps body, then everything that reads its result. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>

#include "caps.h"
#include "err.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum scep_cipher ciphers[] = {
		CIPHER_AUTO, CIPHER_AES128, CIPHER_AES256, CIPHER_DES3,
	};
	static const enum scep_digest digests[] = {
		DIGEST_AUTO, DIGEST_SHA256, DIGEST_SHA512, DIGEST_SHA1,
	};
	struct scep_caps caps;
	struct scep_algs algs;
	char buf[256];
	size_t i, j;

	if (caps_parse((const char *)data, size, &caps) == P11S_OK) {
		caps_format(caps.bits, buf, sizeof(buf));
		caps_format(caps.raw, buf, 8);	/* a short buffer truncates, never overflows */
		(void)caps_check_strict(&caps);
		for (i = 0; i < sizeof(ciphers) / sizeof(ciphers[0]); i++)
			for (j = 0; j < sizeof(digests) / sizeof(digests[0]); j++)
				(void)caps_choose(&caps, ciphers[i], digests[j], &algs);
	}
	err_clear();
	return 0;
}
