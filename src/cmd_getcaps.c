#include "config.h"

#include <stdio.h>

#include "caps.h"
#include "cmds.h"
#include "log.h"
#include "scep_client.h"

enum p11s_err cmd_getcaps(const struct opts *o)
{
	struct http_opts ho;
	struct http *h = NULL;
	struct scep_caps caps;
	struct scep_algs algs;
	enum p11s_err rc;
	unsigned int bit;
	char name[64];

	cmd_http_opts(o, &ho);
	rc = http_new(&ho, &h);
	if (rc != P11S_OK)
		goto out;
	rc = scep_get_caps(h, o->url, &caps);
	if (rc != P11S_OK)
		goto out;
	for (bit = 1; bit != 0 && bit <= caps.raw; bit <<= 1) {
		if (!(caps.raw & bit))
			continue;
		caps_format(bit, name, sizeof(name));
		printf("%s\n", name);
	}
	if (caps_choose(&caps, CIPHER_AUTO, DIGEST_AUTO, &algs) == P11S_OK)
		log_v("would use %s, %s, %s", cipher_ossl_name(algs.cipher),
		      digest_ossl_name(algs.digest), algs.use_post ? "POST" : "GET");
	err_clear();
out:
	http_free(h);
	return rc;
}
