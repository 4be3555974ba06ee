/*
 * token-info: what p11scep sees in a token, the first thing to run when a
 * new token does not work. The key store gathers it; this file only prints.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "certinfo.h"
#include "cmds.h"
#include "keystore.h"

#define HEX_MAX (2 * KS_ID_MAX + 3)

static const char *class_name(enum ks_obj_class c)
{
	return c == KS_OBJ_PRIVKEY ? "private-key" : c == KS_OBJ_PUBKEY ? "public-key" :
	       "certificate";
}

/* CKA_CERTIFICATE_CATEGORY's values, as PKCS#11 names them. */
static const char *category_name(int c)
{
	static const char *const names[] = { "unspecified", "token user", "authority",
					     "other entity" };

	return c >= 0 && c <= 3 ? names[c] : "?";
}

/* "0a1b..", as pkcs11-tool prints it, cut short with ".." past KS_ID_MAX bytes; "-" when empty. */
static const char *id_hex(const struct ks_object *o, char *buf, size_t n)
{
	size_t i;

	if (o->id_len == 0)
		return "-";
	buf[0] = '\0';
	for (i = 0; i < o->id_len && 2 * i + 5 <= n; i++)
		snprintf(buf + 2 * i, n - 2 * i, "%02x", o->id[i]);
	if (i < o->id_len)
		snprintf(buf + 2 * i, n - 2 * i, "..");
	return buf;
}

/* ------------------------------------------------------------ text */

static int login_required(const struct ks_info *in)
{
	size_t i;

	for (i = 0; i < in->n_flags; i++) {
		if (strcmp(in->flags[i], "login-required") == 0)
			return 1;
	}
	return 0;
}

static void print_header(const struct ks_info *in)
{
	size_t i;

	printf("module:        %s\n", in->module);
	printf("library:       %s, %s, version %u.%u, Cryptoki %u.%u\n",
	       in->lib_description[0] ? in->lib_description : "?",
	       in->lib_manufacturer[0] ? in->lib_manufacturer : "?",
	       in->lib_major, in->lib_minor, in->cryptoki_major, in->cryptoki_minor);
	printf("slot:          %s\n", in->slot_description[0] ? in->slot_description : "?");
	printf("token:         %s\n", in->label);
	printf("manufacturer:  %s\n", in->manufacturer);
	printf("model:         %s\n", in->model);
	printf("serial:        %s\n", in->serial);
	printf("flags:        ");
	for (i = 0; i < in->n_flags; i++)
		printf(" %s", in->flags[i]);
	printf("\n");
	printf("login:         %s\n", !in->logged_in ?
	       "not logged in (no PIN given): public objects only" :
	       login_required(in) ? "logged in" : "not required");
}

static const char *offered(const struct ks_mech *m)
{
	return !m->offered ? "no" : m->usable ? "yes" : "partly";
}

static void print_mechs(const struct ks_info *in)
{
	char sizes[48];
	size_t i;

	printf("\nmechanisms p11scep uses:\n");
	printf("  %-26s %-7s %-11s %-30s %s\n", "MECHANISM", "OFFERED", "KEY SIZES", "FLAGS",
	       "USED FOR");
	for (i = 0; i < in->n_mechs; i++) {
		const struct ks_mech *m = &in->mechs[i];

		sizes[0] = '\0';
		if (m->offered)
			snprintf(sizes, sizeof(sizes), "%lu-%lu", m->min_size, m->max_size);
		printf("  %-26s %-7s %-11s %-30s %s\n", m->ckm, offered(m), sizes,
		       m->flags[0] ? m->flags : "-", m->use);
	}
}

/* "sensitive never-extractable local" for a private key: what a user checks. */
static void key_props(const struct ks_object *o, char *buf, size_t n)
{
	if (o->cls == KS_OBJ_PUBKEY) {
		snprintf(buf, n, "%s", o->local == 1 ? "local" : "");
		return;
	}
	snprintf(buf, n, "%s%s%s%s%s",
		 o->sensitive == 1 ? "sensitive " : o->sensitive == 0 ? "NOT-sensitive " : "",
		 o->extractable == 1 ? "EXTRACTABLE " : "",
		 o->never_extractable == 1 ? "never-extractable " : "",
		 o->local == 1 ? "local " : "",
		 o->is_private == 0 && o->cls == KS_OBJ_PRIVKEY ? "PUBLIC-OBJECT " : "");
	if (n > 0 && buf[0] != '\0')
		buf[strlen(buf) - 1] = '\0';
}

static void object_details(const struct ks_object *o, char *type, size_t tn, char *det,
			   size_t dn)
{
	char subj[256], na[40];

	if (o->cls != KS_OBJ_CERT) {
		if (o->bits > 0 && strncmp(o->key_type, "EC ", 3) != 0)
			snprintf(type, tn, "%s-%u", o->key_type, o->bits);
		else
			snprintf(type, tn, "%s", o->key_type);
		key_props(o, det, dn);
		return;
	}
	snprintf(type, tn, "X.509");
	if (o->cert == NULL) {
		snprintf(det, dn, "(not a certificate OpenSSL can read)");
		return;
	}
	certinfo_name(X509_get_subject_name(o->cert), subj, sizeof(subj));
	certinfo_time(X509_get0_notAfter(o->cert), na, sizeof(na));
	snprintf(det, dn, "subject %s, not after %s%s%s", subj, na,
		 o->category > 0 ? ", " : "", o->category > 0 ? category_name(o->category) : "");
}

static int label_width(const struct ks_info *in)
{
	size_t i, w = 5, len;

	for (i = 0; i < in->n_objs; i++) {
		len = in->objs[i].label != NULL ? strlen(in->objs[i].label) : 1;
		if (len > w)
			w = len;
	}
	return w > 32 ? 32 : (int)w;
}

static int id_width(const struct ks_info *in)
{
	size_t i, w = 2;

	for (i = 0; i < in->n_objs; i++) {
		if (2 * in->objs[i].id_len > w)
			w = 2 * in->objs[i].id_len;
	}
	return w > HEX_MAX - 1 ? HEX_MAX - 1 : (int)w;
}

static void print_objects(const struct ks_info *in)
{
	char hex[HEX_MAX], type[48], det[512];
	int lw = label_width(in), iw = id_width(in);
	size_t i;

	printf("\nkeys and certificates:\n");
	if (in->n_objs == 0)
		printf("  (none%s)\n", in->logged_in ? "" : " visible without login");
	else
		printf("    %-11s %-*s %-*s %-9s %s\n", "CLASS", lw, "LABEL", iw, "ID", "TYPE",
		       "DETAILS");
	for (i = 0; i < in->n_objs; i++) {
		const struct ks_object *o = &in->objs[i];

		object_details(o, type, sizeof(type), det, sizeof(det));
		printf("  %c %-11s %-*.*s %-*s %-9s %s\n", o->selected ? '*' : ' ',
		       class_name(o->cls), lw, lw, o->label != NULL ? o->label : "-", iw,
		       id_hex(o, hex, sizeof(hex)), type, det);
	}
	printf("key: %s\n", in->selection);
}

/* ------------------------------------------------------------ JSON */

static json_object *json_tri(int v)
{
	return v < 0 ? NULL : json_object_new_boolean(v);
}

static json_object *json_info_module(const struct ks_info *in)
{
	json_object *m = json_object_new_object();
	char ver[32];

	json_object_object_add(m, "path", json_object_new_string(in->module));
	json_object_object_add(m, "manufacturer", json_object_new_string(in->lib_manufacturer));
	json_object_object_add(m, "description", json_object_new_string(in->lib_description));
	snprintf(ver, sizeof(ver), "%u.%u", in->lib_major, in->lib_minor);
	json_object_object_add(m, "version", json_object_new_string(ver));
	snprintf(ver, sizeof(ver), "%u.%u", in->cryptoki_major, in->cryptoki_minor);
	json_object_object_add(m, "cryptoki", json_object_new_string(ver));
	return m;
}

static json_object *json_info_token(const struct ks_info *in)
{
	json_object *t = json_object_new_object(), *flags = json_object_new_array();
	size_t i;

	json_object_object_add(t, "slot", json_object_new_string(in->slot_description));
	json_object_object_add(t, "label", json_object_new_string(in->label));
	json_object_object_add(t, "manufacturer", json_object_new_string(in->manufacturer));
	json_object_object_add(t, "model", json_object_new_string(in->model));
	json_object_object_add(t, "serial", json_object_new_string(in->serial));
	for (i = 0; i < in->n_flags; i++)
		json_object_array_add(flags, json_object_new_string(in->flags[i]));
	json_object_object_add(t, "flags", flags);
	json_object_object_add(t, "logged_in", json_object_new_boolean(in->logged_in));
	return t;
}

static json_object *json_size(unsigned long v)
{
	return json_object_new_int64(v > INT64_MAX ? INT64_MAX : (int64_t)v);
}

static json_object *json_info_mechs(const struct ks_info *in)
{
	json_object *a = json_object_new_array();
	size_t i;

	for (i = 0; i < in->n_mechs; i++) {
		const struct ks_mech *m = &in->mechs[i];
		json_object *o = json_object_new_object();

		json_object_object_add(o, "mechanism", json_object_new_string(m->ckm));
		json_object_object_add(o, "name", json_object_new_string(m->name));
		json_object_object_add(o, "offered", json_object_new_boolean(m->offered));
		json_object_object_add(o, "usable", json_object_new_boolean(m->usable));
		if (m->offered) {
			json_object_object_add(o, "min_size", json_size(m->min_size));
			json_object_object_add(o, "max_size", json_size(m->max_size));
			json_object_object_add(o, "flags", json_object_new_string(m->flags));
		}
		json_object_object_add(o, "used_for", json_object_new_string(m->use));
		json_object_array_add(a, o);
	}
	return a;
}

static void json_add_cert(json_object *o, const struct ks_object *k)
{
	X509 *cert = k->cert;
	char buf[256];

	json_object_object_add(o, "category", k->category >= 0 ?
			       json_object_new_string(category_name(k->category)) : NULL);
	if (cert == NULL)
		return;
	certinfo_name(X509_get_subject_name(cert), buf, sizeof(buf));
	json_object_object_add(o, "subject", json_object_new_string(buf));
	certinfo_name(X509_get_issuer_name(cert), buf, sizeof(buf));
	json_object_object_add(o, "issuer", json_object_new_string(buf));
	certinfo_serial(cert, buf, sizeof(buf));
	json_object_object_add(o, "serial", json_object_new_string(buf));
	certinfo_time(X509_get0_notAfter(cert), buf, sizeof(buf));
	json_object_object_add(o, "not_after", json_object_new_string(buf));
}

static void json_add_key(json_object *o, const struct ks_object *k)
{
	json_object_object_add(o, "key_type", json_object_new_string(k->key_type));
	json_object_object_add(o, "bits", k->bits ? json_object_new_int((int)k->bits) : NULL);
	json_object_object_add(o, "sensitive", json_tri(k->sensitive));
	json_object_object_add(o, "always_sensitive", json_tri(k->always_sensitive));
	json_object_object_add(o, "extractable", json_tri(k->extractable));
	json_object_object_add(o, "never_extractable", json_tri(k->never_extractable));
	json_object_object_add(o, "local", json_tri(k->local));
}

static json_object *json_info_objects(const struct ks_info *in)
{
	json_object *a = json_object_new_array();
	char hex[HEX_MAX];
	size_t i;

	for (i = 0; i < in->n_objs; i++) {
		const struct ks_object *k = &in->objs[i];
		json_object *o = json_object_new_object();

		json_object_object_add(o, "class", json_object_new_string(class_name(k->cls)));
		json_object_object_add(o, "label",
				       k->label != NULL ? json_object_new_string(k->label) : NULL);
		json_object_object_add(o, "id", json_object_new_string(k->id_len ?
					id_hex(k, hex, sizeof(hex)) : ""));
		json_object_object_add(o, "private", json_tri(k->is_private));
		if (k->cls == KS_OBJ_CERT)
			json_add_cert(o, k);
		else
			json_add_key(o, k);
		json_object_object_add(o, "selected", json_object_new_boolean(k->selected));
		json_object_array_add(a, o);
	}
	return a;
}

static enum p11s_err print_json(const struct ks_info *in)
{
	json_object *all = json_object_new_object();

	if (all == NULL)
		return err_set(P11S_E_NOMEM, "out of memory");
	json_object_object_add(all, "module", json_info_module(in));
	json_object_object_add(all, "token", json_info_token(in));
	json_object_object_add(all, "mechanisms", json_info_mechs(in));
	json_object_object_add(all, "objects", json_info_objects(in));
	json_object_object_add(all, "key", json_object_new_string(in->selection));
	printf("%s\n", json_object_to_json_string_ext(all, JSON_C_TO_STRING_PRETTY |
						    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(all);
	return P11S_OK;
}

/* ------------------------------------------------------------ command */

enum p11s_err cmd_tokeninfo(const struct opts *o)
{
	struct ks_params kp = {
		.uri = o->key_uri,
		.module = o->module,
		.pin_cb = cmd_pin_cb,
		.login_optional = 1,
	};
	struct ks_info info;
	struct ks *ks = NULL;
	enum p11s_err rc;

	memset(&info, 0, sizeof(info));
	rc = ks_open(&kp, &ks);
	if (rc == P11S_OK)
		rc = ks_info(ks, &info);
	if (rc == P11S_OK && o->json) {
		rc = print_json(&info);
	} else if (rc == P11S_OK) {
		print_header(&info);
		print_mechs(&info);
		print_objects(&info);
	}
	ks_info_free(&info);
	ks_close(ks);
	return rc;
}
