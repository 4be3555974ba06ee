/* RFC 7512 PKCS#11 URIs: path attributes and query attributes, percent-decoded. */
#ifndef P11SCEP_URI_H
#define P11SCEP_URI_H

#include <stddef.h>

#include "err.h"

struct p11_uri {
	char *token;		/* token=  (label) */
	char *serial;		/* serial= */
	char *manufacturer;	/* manufacturer= */
	char *model;		/* model= */
	char *object;		/* object= (key label) */
	unsigned char *id;	/* id= (raw bytes, percent-decoded) */
	size_t id_len;
	char *type;		/* type= (private, cert, ...) */
	char *module_path;	/* ?module-path= */
	char *module_name;	/* ?module-name= */
	char *pin_source;	/* ?pin-source= (file:PATH or PATH) */
	char *pin_value;	/* ?pin-value= (discouraged) */
};

/* Parses s; unknown attributes are ignored, malformed ones are P11S_E_USAGE. */
enum p11s_err p11_uri_parse(const char *s, struct p11_uri *out);
/* NULL-safe; wipes pin_value. */
void p11_uri_free(struct p11_uri *u);

#endif
