/* The ca / ra / usercert table of a profile, as appliances show it, and its JSON form. */
#ifndef P11SCEP_STATUS_H
#define P11SCEP_STATUS_H

#include <stdio.h>
#include <time.h>
#include <openssl/x509.h>

#include "err.h"
#include "store.h"

struct status_row {
	const char *name;	/* "ca", "ca-next", "ra", "ra-2", "usercert" */
	const char *status;	/* "Valid", "Expired", "NotYetValid", "Revoked", "Pending", "None" */
	char usage[40];		/* "Signature", "Encipherment", "Signature,Encipherment", "-" */
	time_t not_before;	/* 0 when there is no cert */
	time_t not_after;
	time_t renew_due;	/* usercert only; 0 otherwise */
};

struct status_profile {
	const char *name;
	const char *dir;
	struct status_row rows[5];
	size_t n_rows;
	const char *pending;	/* transactionID of an open request, or NULL */
};

/* Rows for what v holds; renew_at is a percentage of the user cert's lifetime. */
void status_build(const char *name, const char *dir, const struct store_view *v,
		  long renew_at, time_t now, struct status_profile *out);
void status_print_table(FILE *f, const struct status_profile *p);
/* An array of profiles as JSON (json-c), newline-terminated, into f. */
enum p11s_err status_print_json(FILE *f, const struct status_profile *ps, size_t n);

/* When renewal is due: notBefore + renew_at % of the lifetime. */
time_t status_renew_due(X509 *cert, long renew_at);

#endif
