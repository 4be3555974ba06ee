#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "keystore.h"

static const struct ks_backend *const backends[] = {
	&ks_pkcs11_backend,
};

enum p11s_err ks_open(const struct ks_params *p, struct ks **out)
{
	const char *colon;
	size_t i, n;

	*out = NULL;
	colon = p->uri ? strchr(p->uri, ':') : NULL;
	if (colon == NULL)
		return err_set(P11S_E_USAGE, "key URI '%s' has no scheme: use pkcs11:token=...;object=...",
			       p->uri ? p->uri : "");
	n = (size_t)(colon - p->uri);
	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		if (strlen(backends[i]->scheme) == n &&
		    strncasecmp(backends[i]->scheme, p->uri, n) == 0)
			return backends[i]->open(p, out);
	}
	return err_set(P11S_E_USAGE, "key URI scheme '%.*s' is not supported: use pkcs11:",
		       (int)n, p->uri);
}

void ks_keep_open(void)
{
	size_t i;

	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (backends[i]->keep_open != NULL)
			backends[i]->keep_open();
}

void ks_close_shared(void)
{
	size_t i;

	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (backends[i]->close_shared != NULL)
			backends[i]->close_shared();
}

void ks_close(struct ks *ks)
{
	if (ks != NULL)
		ks->be->close(ks);
}

enum p11s_err ks_find_key(struct ks *ks, EVP_PKEY **out)
{
	return ks->be->find_key(ks, out);
}

enum p11s_err ks_generate_key(struct ks *ks, const struct ks_keyspec *spec, EVP_PKEY **out)
{
	return ks->be->generate_key(ks, spec, out);
}

enum p11s_err ks_find_key_by_id(struct ks *ks, const struct ks_key_id *id, EVP_PKEY **out)
{
	return ks->be->find_key_by_id(ks, id, out);
}

enum p11s_err ks_current_id(struct ks *ks, struct ks_key_id *out)
{
	return ks->be->current_id(ks, out);
}

enum p11s_err ks_remove_key(struct ks *ks, const struct ks_key_id *id)
{
	return ks->be->remove_key(ks, id);
}

enum p11s_err ks_find_cert(struct ks *ks, X509 **out)
{
	return ks->be->find_cert(ks, out);
}

enum p11s_err ks_store_cert(struct ks *ks, X509 *cert)
{
	return ks->be->store_cert(ks, cert);
}

enum p11s_err ks_store_ca_cert(struct ks *ks, X509 *cert)
{
	return ks->be->store_ca_cert(ks, cert);
}

enum p11s_err ks_info(struct ks *ks, struct ks_info *out)
{
	memset(out, 0, sizeof(*out));
	if (ks->be->info == NULL)
		return err_set(P11S_E_USAGE, "the %s key store cannot describe itself",
			       ks->be->scheme);
	return ks->be->info(ks, out);
}

void ks_info_free(struct ks_info *info)
{
	size_t i;

	if (info == NULL)
		return;
	for (i = 0; i < info->n_objs; i++) {
		free(info->objs[i].label);
		free(info->objs[i].id);
		X509_free(info->objs[i].cert);
	}
	free(info->objs);
	free(info->module);
	memset(info, 0, sizeof(*info));
}
