/* p11_uri_parse on any string (the input up to its first NUL). */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fuzz_common.h"
#include "uri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct p11_uri u;
	char *s;

	/* An exact-size copy, so that ASan sees any read past the terminator. */
	s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	memset(&u, 0xa5, sizeof(u));	/* the parser must clear its output itself */
	if (p11_uri_parse(s, &u) == P11S_OK && u.id_len > 0 && u.id == NULL)
		abort();
	p11_uri_free(&u);
	free(s);
	err_clear();
	return 0;
}
