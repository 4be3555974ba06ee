#include "config.h"

#include <string.h>

#include <json-c/json.h>
#include <openssl/asn1.h>
#include <openssl/x509v3.h>

#include "status.h"

static time_t asn1_to_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	return timegm(&tm);
}

time_t status_renew_due(X509 *cert, long renew_at)
{
	time_t nb = asn1_to_time(X509_get0_notBefore(cert));
	time_t na = asn1_to_time(X509_get0_notAfter(cert));

	if (nb == 0 || na <= nb)
		return na;
	return nb + (time_t)(((double)(na - nb)) * (double)renew_at / 100.0);
}

static void usage_of(X509 *cert, char *buf, size_t buflen)
{
	uint32_t ku = X509_get_key_usage(cert);
	int sig, enc;

	if (ku == UINT32_MAX) {	/* no keyUsage: good for anything */
		snprintf(buf, buflen, "Signature,Encipherment");
		return;
	}
	sig = (ku & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION | KU_KEY_CERT_SIGN | KU_CRL_SIGN)) != 0;
	enc = (ku & (KU_KEY_ENCIPHERMENT | KU_DATA_ENCIPHERMENT | KU_KEY_AGREEMENT)) != 0;
	snprintf(buf, buflen, "%s", sig && enc ? "Signature,Encipherment" :
		 sig ? "Signature" : enc ? "Encipherment" : "-");
}

static void add_row(struct status_profile *p, const char *name, X509 *cert, time_t now)
{
	struct status_row *r = &p->rows[p->n_rows++];

	memset(r, 0, sizeof(*r));
	r->name = name;
	if (cert == NULL) {
		r->status = "None";
		snprintf(r->usage, sizeof(r->usage), "-");
		return;
	}
	r->not_before = asn1_to_time(X509_get0_notBefore(cert));
	r->not_after = asn1_to_time(X509_get0_notAfter(cert));
	r->status = now < r->not_before ? "NotYetValid" : now > r->not_after ? "Expired" : "Valid";
	usage_of(cert, r->usage, sizeof(r->usage));
}

/* The CRL (verified by getcrl when it was fetched) lists this cert of its issuer. */
static int is_revoked(X509 *cert, X509_CRL *crl)
{
	X509_REVOKED *entry = NULL;

	if (crl == NULL || X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_issuer_name(cert)) != 0)
		return 0;
	return X509_CRL_get0_by_serial(crl, &entry, X509_get0_serialNumber(cert)) == 1;
}

void status_build(const char *name, const char *dir, const struct store_view *v,
		  long renew_at, time_t now, struct status_profile *out)
{
	memset(out, 0, sizeof(*out));
	out->name = name;
	out->dir = dir;
	out->pending = v->pending[0] ? v->pending : NULL;
	add_row(out, "ca", v->ca, now);
	if (v->next_ca != NULL)
		add_row(out, "ca-next", v->next_ca, now);
	if (v->ra[0] != NULL)
		add_row(out, "ra", v->ra[0], now);
	if (v->ra[1] != NULL)
		add_row(out, "ra-2", v->ra[1], now);
	add_row(out, "usercert", v->user, now);
	if (v->user != NULL)
		out->rows[out->n_rows - 1].renew_due = status_renew_due(v->user, renew_at);
	if (v->user != NULL && is_revoked(v->user, v->crl))
		out->rows[out->n_rows - 1].status = "Revoked";
	else if (out->pending != NULL)
		out->rows[out->n_rows - 1].status = "Pending";
}

static const char *fmt_time(time_t t, char *buf, size_t buflen)
{
	struct tm tm;

	if (t == 0 || gmtime_r(&t, &tm) == NULL)
		return "-";
	strftime(buf, buflen, "%Y-%m-%d %H:%M:%S UTC", &tm);
	return buf;
}

void status_print_table(FILE *f, const struct status_profile *p)
{
	char nb[40], na[40], rd[40];
	size_t i;

	fprintf(f, "Profile %s (%s)%s%s\n", p->name, p->dir,
		p->pending ? ", request pending: " : "", p->pending ? p->pending : "");
	fprintf(f, "  %-10s %-12s %-23s %-24s %-24s %s\n", "Certificate", "Status", "Usage",
		"NotBefore", "NotAfter", "RenewDue");
	for (i = 0; i < p->n_rows; i++) {
		const struct status_row *r = &p->rows[i];

		fprintf(f, "  %-10s %-12s %-23s %-24s %-24s %s\n", r->name, r->status, r->usage,
			fmt_time(r->not_before, nb, sizeof(nb)), fmt_time(r->not_after, na, sizeof(na)),
			fmt_time(r->renew_due, rd, sizeof(rd)));
	}
}

static json_object *time_json(time_t t)
{
	char buf[40];

	return t == 0 ? NULL : json_object_new_string(fmt_time(t, buf, sizeof(buf)));
}

enum p11s_err status_print_json(FILE *f, const struct status_profile *ps, size_t n)
{
	json_object *all = json_object_new_array();
	size_t i, j;

	if (all == NULL)
		return err_set(P11S_E_NOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		json_object *p = json_object_new_object(), *rows = json_object_new_array();

		json_object_object_add(p, "profile", json_object_new_string(ps[i].name));
		json_object_object_add(p, "dir", json_object_new_string(ps[i].dir));
		json_object_object_add(p, "pending", ps[i].pending ?
				       json_object_new_string(ps[i].pending) : NULL);
		for (j = 0; j < ps[i].n_rows; j++) {
			const struct status_row *r = &ps[i].rows[j];
			json_object *o = json_object_new_object();

			json_object_object_add(o, "certificate", json_object_new_string(r->name));
			json_object_object_add(o, "status", json_object_new_string(r->status));
			json_object_object_add(o, "usage", json_object_new_string(r->usage));
			json_object_object_add(o, "not_before", time_json(r->not_before));
			json_object_object_add(o, "not_after", time_json(r->not_after));
			json_object_object_add(o, "renew_due", time_json(r->renew_due));
			json_object_array_add(rows, o);
		}
		json_object_object_add(p, "certificates", rows);
		json_object_array_add(all, p);
	}
	fprintf(f, "%s\n", json_object_to_json_string_ext(all, JSON_C_TO_STRING_PRETTY |
							  JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(all);
	return P11S_OK;
}
