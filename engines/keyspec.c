#include "config.h"

#include <strings.h>

#include "keystore.h"

int ks_keyspec_parse(const char *s, struct ks_keyspec *spec)
{
	static const struct {
		const char *name;
		enum ks_keytype type;
		unsigned int bits;
	} types[] = {
		{ "rsa", KS_KEY_RSA, 2048 }, { "rsa:2048", KS_KEY_RSA, 2048 },
		{ "rsa:3072", KS_KEY_RSA, 3072 }, { "rsa:4096", KS_KEY_RSA, 4096 },
		{ "ec:p256", KS_KEY_EC, 256 }, { "ec:p384", KS_KEY_EC, 384 },
	};
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (strcasecmp(s, types[i].name) == 0) {
			spec->type = types[i].type;
			spec->bits = types[i].bits;
			spec->fresh_id = 0;
			return 0;
		}
	}
	return -1;
}
