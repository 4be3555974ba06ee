#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "csr.h"

#define DN_MAX_LEN	4096
#define DN_MAX_RDNS	64
#define CHALLENGE_MAX	255	/* ub-challengePassword (PKCS#9) */

/* Attribute types a subject may name; anything else is most likely a typo. */
static const int dn_nids[] = {
	NID_commonName, NID_countryName, NID_localityName, NID_stateOrProvinceName,
	NID_organizationName, NID_organizationalUnitName, NID_streetAddress,
	NID_serialNumber, NID_title, NID_givenName, NID_surname, NID_initials,
	NID_pkcs9_emailAddress, NID_domainComponent, NID_userId, NID_name,
	NID_dnQualifier, NID_pseudonym, NID_generationQualifier, NID_postalCode,
	NID_businessCategory, NID_description, NID_pkcs9_unstructuredName,
	NID_organizationIdentifier,
};

struct dn_ava {
	int nid;
	ASN1_OBJECT *obj;	/* only for a dotted OID we do not know by name */
	char *value;
	int rdn;		/* index of the RDN this belongs to */
};

struct dn_list {
	struct dn_ava ava[DN_MAX_RDNS];
	size_t n;
};

static void dn_list_free(struct dn_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->ava[i].value);
		ASN1_OBJECT_free(l->ava[i].obj);
	}
	l->n = 0;
}

static int is_dotted_oid(const char *s)
{
	int dots = 0;

	if (*s < '0' || *s > '9')
		return 0;
	for (; *s != '\0'; s++) {
		if (*s == '.')
			dots++;
		else if (*s < '0' || *s > '9')
			return 0;
	}
	return dots > 0;
}

static enum p11s_err attr_type(const char *name, struct dn_ava *a)
{
	size_t i;
	int nid;

	for (i = 0; i < sizeof(dn_nids) / sizeof(dn_nids[0]); i++) {
		const char *sn = OBJ_nid2sn(dn_nids[i]);
		const char *ln = OBJ_nid2ln(dn_nids[i]);

		if ((sn != NULL && strcasecmp(name, sn) == 0) ||
		    (ln != NULL && strcasecmp(name, ln) == 0)) {
			a->nid = dn_nids[i];
			return P11S_OK;
		}
	}
	/* Common spellings OpenSSL's names miss. */
	if (strcasecmp(name, "email") == 0 || strcasecmp(name, "E") == 0) {
		a->nid = NID_pkcs9_emailAddress;
		return P11S_OK;
	}
	if (strcasecmp(name, "S") == 0) {
		a->nid = NID_stateOrProvinceName;
		return P11S_OK;
	}
	if (is_dotted_oid(name)) {
		nid = OBJ_txt2nid(name);
		if (nid != NID_undef) {
			a->nid = nid;
			return P11S_OK;
		}
		a->obj = OBJ_txt2obj(name, 1);
		if (a->obj != NULL)
			return P11S_OK;
		ERR_clear_error();
	}
	return err_set(P11S_E_USAGE,
	    "unknown attribute '%s' in the subject: use CN, O, OU, C, ST, L, "
	    "emailAddress, serialNumber, DC, UID or a dotted OID", name);
}

/*
 * One token up to an unescaped separator (any of seps), unescaped into buf.
 * Backslash escapes the next character, or two hex digits give a byte.
 * Unescaped spaces at both ends are dropped. *sp moves past the token.
 */
static enum p11s_err dn_token(const char **sp, const char *seps, char *buf, size_t buflen,
			      char *stop)
{
	const char *s = *sp;
	size_t n = 0, keep = 0;
	int hi, lo;

	while (*s == ' ')
		s++;
	for (; *s != '\0' && strchr(seps, *s) == NULL; s++) {
		char c = *s;

		if (c == '\\') {
			if (s[1] == '\0')
				return err_set(P11S_E_USAGE,
				    "subject ends with a lone backslash");
			hi = OPENSSL_hexchar2int((unsigned char)s[1]);
			lo = hi >= 0 ? OPENSSL_hexchar2int((unsigned char)s[2]) : -1;
			if (lo >= 0) {
				c = (char)(hi << 4 | lo);
				s += 2;
			} else {
				c = *++s;
			}
			if (n + 1 >= buflen)
				return err_set(P11S_E_USAGE, "subject is too long");
			buf[n++] = c;
			keep = n;	/* escaped characters are never trimmed */
			continue;
		}
		if (n + 1 >= buflen)
			return err_set(P11S_E_USAGE, "subject is too long");
		buf[n++] = c;
		if (c != ' ')
			keep = n;
	}
	buf[keep] = '\0';
	*stop = *s;
	*sp = *s != '\0' ? s + 1 : s;
	return P11S_OK;
}

static enum p11s_err dn_add(struct dn_list *l, const char *type, const char *value,
			    int rdn)
{
	struct dn_ava *a;
	enum p11s_err r;

	if (l->n >= DN_MAX_RDNS)
		return err_set(P11S_E_USAGE, "subject has more than %d attributes",
		    DN_MAX_RDNS);
	if (*type == '\0')
		return err_set(P11S_E_USAGE, "subject has an attribute without a name "
		    "(write CN=value, and escape ',' or '/' in values with '\\')");
	if (*value == '\0')
		return err_set(P11S_E_USAGE, "attribute %s in the subject has no value",
		    type);
	a = &l->ava[l->n];
	memset(a, 0, sizeof(*a));
	r = attr_type(type, a);
	if (r != P11S_OK)
		return r;
	a->value = strdup(value);
	if (a->value == NULL) {
		ASN1_OBJECT_free(a->obj);
		return err_set(P11S_E_NOMEM, "out of memory parsing the subject");
	}
	a->rdn = rdn;
	l->n++;
	return P11S_OK;
}

/*
 * "/C=US/O=Org/CN=host" (OpenSSL's order: first is outermost) or
 * "CN=host,O=Org,C=US" (RFC 4514: first is innermost, '+' joins a
 * multi-valued RDN). Both give the same DER for the same name.
 */
static enum p11s_err dn_split(const char *s, struct dn_list *l, int *n_rdns)
{
	int slash = s[0] == '/';
	const char *seps = slash ? "/" : ",+";
	const char *type_seps = slash ? "=/" : "=,+";
	char *type = NULL, *value = NULL;
	size_t cap = strlen(s) + 1;
	enum p11s_err r = P11S_OK;
	int rdn = 0;
	char stop;

	type = malloc(cap);
	value = malloc(cap);
	if (type == NULL || value == NULL) {
		r = err_set(P11S_E_NOMEM, "out of memory parsing the subject");
		goto out;
	}
	if (slash)
		s++;
	while (*s != '\0') {
		r = dn_token(&s, type_seps, type, cap, &stop);
		if (r != P11S_OK)
			goto out;
		if (stop != '=' && *type == '\0' && stop != '\0') {
			r = err_set(P11S_E_USAGE, "the subject has an empty part "
			    "(two separators in a row)");
			goto out;
		}
		if (stop != '=') {
			r = err_set(P11S_E_USAGE, "'%s' in the subject has no '=': "
			    "write TYPE=value (escape ',' '/' '+' with '\\')", type);
			goto out;
		}
		r = dn_token(&s, seps, value, cap, &stop);
		if (r == P11S_OK)
			r = dn_add(l, type, value, rdn);
		if (r != P11S_OK)
			goto out;
		if (stop != '+')
			rdn++;
	}
	*n_rdns = rdn;
out:
	free(type);
	free(value);
	return r;
}

static enum p11s_err dn_add_entry(X509_NAME *name, const struct dn_ava *a, int newrdn)
{
	const unsigned char *v = (const unsigned char *)a->value;
	int set = newrdn ? 0 : -1;	/* 0: a new RDN; -1: join the last one */
	int ok;

	if (a->obj != NULL)
		ok = X509_NAME_add_entry_by_OBJ(name, a->obj, MBSTRING_UTF8, v, -1, -1, set);
	else
		ok = X509_NAME_add_entry_by_NID(name, a->nid, MBSTRING_UTF8, v, -1, -1, set);
	if (!ok)
		return err_set_ssl(P11S_E_USAGE, "bad value for %s in the subject",
		    a->obj != NULL ? "an attribute" : OBJ_nid2sn(a->nid));
	return P11S_OK;
}

enum p11s_err dn_parse(const char *s, X509_NAME **out)
{
	struct dn_list l;
	X509_NAME *name = NULL;
	enum p11s_err r;
	int n_rdns = 0, rdn, slash;
	size_t i;

	*out = NULL;
	l.n = 0;
	if (s != NULL)
		s += strspn(s, " ");
	if (s == NULL || s[strspn(s, " /")] == '\0')
		return err_set(P11S_E_USAGE, "the subject is empty: give e.g. CN=host.example");
	if (strlen(s) > DN_MAX_LEN)
		return err_set(P11S_E_USAGE, "the subject is longer than %d bytes", DN_MAX_LEN);
	slash = s[0] == '/';
	r = dn_split(s, &l, &n_rdns);
	if (r != P11S_OK)
		goto out;
	name = X509_NAME_new();
	if (name == NULL) {
		r = err_set(P11S_E_NOMEM, "out of memory parsing the subject");
		goto out;
	}
	/* RFC 4514 strings list the RDNs innermost first: add them backwards,
	 * keeping the order of values inside a multi-valued RDN. */
	for (rdn = 0; rdn < n_rdns; rdn++) {
		int want = slash ? rdn : n_rdns - 1 - rdn, first = 1;

		for (i = 0; i < l.n; i++) {
			if (l.ava[i].rdn != want)
				continue;
			r = dn_add_entry(name, &l.ava[i], first);
			if (r != P11S_OK)
				goto out;
			first = 0;
		}
	}
	*out = name;
	name = NULL;
out:
	X509_NAME_free(name);
	dn_list_free(&l);
	return r;
}

static int is_printable_string(const char *s)
{
	static const char extra[] = " '()+,-./:=?";

	for (; *s != '\0'; s++) {
		char c = *s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr(extra, c) != NULL)
			continue;
		return 0;
	}
	return 1;
}

static enum p11s_err dns_name(const char *dns, GENERAL_NAME **out)
{
	ASN1_IA5STRING *ia5 = NULL;
	GENERAL_NAME *gn = NULL;
	const char *c;

	*out = NULL;
	if (dns == NULL || *dns == '\0')
		return err_set(P11S_E_USAGE, "empty DNS name for subjectAltName");
	for (c = dns; *c != '\0'; c++) {
		if (*c <= ' ' || *c >= 0x7f)
			return err_set(P11S_E_USAGE,
			    "DNS name '%.64s' has a space, control or non-ASCII character "
			    "(give internationalised names as xn--...)", dns);
	}
	ia5 = ASN1_IA5STRING_new();
	gn = GENERAL_NAME_new();
	if (ia5 == NULL || gn == NULL || !ASN1_STRING_set(ia5, dns, -1)) {
		ASN1_IA5STRING_free(ia5);
		GENERAL_NAME_free(gn);
		return err_set(P11S_E_NOMEM, "out of memory building subjectAltName");
	}
	GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
	*out = gn;
	return P11S_OK;
}

static enum p11s_err ip_name(const char *ip, GENERAL_NAME **out)
{
	ASN1_OCTET_STRING *os;
	GENERAL_NAME *gn;

	*out = NULL;
	os = ip != NULL ? a2i_IPADDRESS(ip) : NULL;
	if (os == NULL) {
		ERR_clear_error();
		return err_set(P11S_E_USAGE, "'%.64s' is not an IPv4 or IPv6 address",
		    ip != NULL ? ip : "");
	}
	gn = GENERAL_NAME_new();
	if (gn == NULL) {
		ASN1_OCTET_STRING_free(os);
		return err_set(P11S_E_NOMEM, "out of memory building subjectAltName");
	}
	GENERAL_NAME_set0_value(gn, GEN_IPADD, os);
	*out = gn;
	return P11S_OK;
}

static enum p11s_err push_name(GENERAL_NAMES *names, GENERAL_NAME *gn)
{
	if (!sk_GENERAL_NAME_push(names, gn)) {
		GENERAL_NAME_free(gn);
		return err_set(P11S_E_NOMEM, "out of memory building subjectAltName");
	}
	return P11S_OK;
}

static enum p11s_err add_sans(const struct csr_params *p, X509_REQ *req)
{
	GENERAL_NAMES *names = NULL;
	GENERAL_NAME *gn;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	enum p11s_err r = P11S_OK;
	size_t i;

	if (p->n_dns == 0 && p->n_ip == 0)
		return P11S_OK;
	names = GENERAL_NAMES_new();
	if (names == NULL)
		return err_set(P11S_E_NOMEM, "out of memory building subjectAltName");
	for (i = 0; i < p->n_dns && r == P11S_OK; i++) {
		r = dns_name(p->dns[i], &gn);
		if (r == P11S_OK)
			r = push_name(names, gn);
	}
	for (i = 0; i < p->n_ip && r == P11S_OK; i++) {
		r = ip_name(p->ip[i], &gn);
		if (r == P11S_OK)
			r = push_name(names, gn);
	}
	if (r != P11S_OK)
		goto out;
	if (X509V3_add1_i2d(&exts, NID_subject_alt_name, names, 0, X509V3_ADD_APPEND) != 1 ||
	    !X509_REQ_add_extensions(req, exts))
		r = err_set_ssl(P11S_E_INTERNAL, "cannot add subjectAltName to the CSR");
out:
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	GENERAL_NAMES_free(names);
	return r;
}

static enum p11s_err add_challenge(const char *pw, X509_REQ *req)
{
	size_t len;
	int ok;

	if (pw == NULL)
		return P11S_OK;
	len = strlen(pw);
	if (len == 0 || len > CHALLENGE_MAX)
		return err_set(P11S_E_USAGE,
		    "the challenge password must be 1 to %d characters long", CHALLENGE_MAX);
	if (is_printable_string(pw))
		ok = X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword,
		    V_ASN1_PRINTABLESTRING, (const unsigned char *)pw, (int)len);
	else
		ok = X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword,
		    MBSTRING_UTF8, (const unsigned char *)pw, (int)len);
	if (!ok) {
		/* Never echo the password itself. */
		ERR_clear_error();
		return err_set(P11S_E_USAGE,
		    "the challenge password is not valid UTF-8 or too long");
	}
	return P11S_OK;
}

static const EVP_MD *digest_by_name(const char *name)
{
	const EVP_MD *md = name != NULL ? EVP_get_digestbyname(name) : NULL;

	if (md != NULL && EVP_MD_get_type(md) == NID_md5)
		return NULL;
	return md;
}

enum p11s_err csr_build(const struct csr_params *p, EVP_PKEY *key, X509_REQ **out)
{
	X509_REQ *req = NULL;
	X509_NAME *name = NULL;
	const EVP_MD *md;
	enum p11s_err r;

	*out = NULL;
	if (p == NULL || key == NULL)
		return err_set(P11S_E_INTERNAL, "csr_build without parameters or key");
	md = digest_by_name(p->digest);
	if (md == NULL)
		return err_set(P11S_E_USAGE, "unknown or refused digest '%s' for the CSR",
		    p->digest != NULL ? p->digest : "");
	r = dn_parse(p->subject, &name);
	if (r != P11S_OK)
		return r;
	req = X509_REQ_new();
	if (req == NULL) {
		r = err_set(P11S_E_NOMEM, "out of memory building the CSR");
		goto out;
	}
	if (!X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
	    !X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, key)) {
		r = err_set_ssl(P11S_E_INTERNAL, "cannot fill in the CSR");
		goto out;
	}
	r = add_sans(p, req);
	if (r == P11S_OK)
		r = add_challenge(p->challenge, req);
	if (r != P11S_OK)
		goto out;
	if (X509_REQ_sign(req, key, md) <= 0) {
		r = err_set_ssl(P11S_E_TOKEN, "signing the CSR with the key failed");
		goto out;
	}
	*out = req;
	req = NULL;
out:
	X509_REQ_free(req);
	X509_NAME_free(name);
	return r;
}

/* Wipes the attribute's values before they go back to the heap. */
static void wipe_attr(X509_ATTRIBUTE *a)
{
	ASN1_TYPE *t;
	int i;

	for (i = 0; i < X509_ATTRIBUTE_count(a); i++) {
		t = X509_ATTRIBUTE_get0_type(a, i);
		if (t != NULL && t->type != V_ASN1_BOOLEAN && t->type != V_ASN1_NULL &&
		    t->type != V_ASN1_OBJECT && t->value.asn1_string != NULL)
			OPENSSL_cleanse(t->value.asn1_string->data,
					(size_t)t->value.asn1_string->length);
	}
}

void csr_free(X509_REQ *req)
{
	X509_ATTRIBUTE *a;
	int i;

	if (req == NULL)
		return;
	while ((i = X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword, -1)) >= 0) {
		a = X509_REQ_delete_attr(req, i);
		wipe_attr(a);
		X509_ATTRIBUTE_free(a);
	}
	X509_REQ_free(req);
}

static enum p11s_err random_serial(X509 *x)
{
	unsigned char rnd[16];
	BIGNUM *bn = NULL;
	ASN1_INTEGER *ai = NULL;
	enum p11s_err r = P11S_OK;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return err_set_ssl(P11S_E_INTERNAL, "no random numbers for a serial");
	rnd[0] &= 0x7f;		/* positive */
	rnd[0] |= 0x40;		/* and never zero, always 16 bytes */
	bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
	if (bn != NULL)
		ai = BN_to_ASN1_INTEGER(bn, NULL);
	if (ai == NULL || !X509_set_serialNumber(x, ai))
		r = err_set(P11S_E_NOMEM, "out of memory setting a serial");
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	return r;
}

static enum p11s_err add_signer_ku(X509 *x, const EVP_PKEY *key)
{
	ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
	enum p11s_err r = P11S_OK;
	/* The reply is encrypted to this cert: to an RSA key by keyEncipherment
	 * (bit 2), to an EC key by keyAgreement (bit 4; RFC 5480 forbids
	 * keyEncipherment for EC). Bit 0 digitalSignature: we sign. */
	int enc_bit = EVP_PKEY_is_a(key, "EC") ? 4 : 2;

	if (ku == NULL || !ASN1_BIT_STRING_set_bit(ku, 0, 1) ||
	    !ASN1_BIT_STRING_set_bit(ku, enc_bit, 1) ||
	    X509_add1_ext_i2d(x, NID_key_usage, ku, 1, X509V3_ADD_REPLACE) != 1)
		r = err_set_ssl(P11S_E_INTERNAL, "cannot add keyUsage to the signer certificate");
	ASN1_BIT_STRING_free(ku);
	return r;
}

enum p11s_err signer_cert_build(X509_REQ *req, EVP_PKEY *key, const char *digest, X509 **out)
{
	X509 *x = NULL;
	X509_NAME *subj;
	EVP_PKEY *pub;
	const EVP_MD *md;
	enum p11s_err r;

	*out = NULL;
	if (req == NULL || key == NULL)
		return err_set(P11S_E_INTERNAL, "signer_cert_build without CSR or key");
	md = digest_by_name(digest);
	if (md == NULL)
		return err_set(P11S_E_USAGE, "unknown or refused digest '%s' for the signer "
		    "certificate", digest != NULL ? digest : "");
	subj = X509_REQ_get_subject_name(req);
	pub = X509_REQ_get0_pubkey(req);
	if (subj == NULL || pub == NULL)
		return err_set_ssl(P11S_E_INTERNAL, "the CSR has no subject or key");
	if (EVP_PKEY_eq(pub, key) != 1) {
		ERR_clear_error();
		return err_set(P11S_E_INTERNAL, "the CSR is not for the signing key");
	}
	x = X509_new();
	if (x == NULL)
		return err_set(P11S_E_NOMEM, "out of memory building the signer certificate");
	r = random_serial(x);
	if (r != P11S_OK)
		goto out;
	/* Valid from an hour ago, for a day: the server's clock may differ. */
	if (!X509_set_version(x, X509_VERSION_3) || !X509_set_subject_name(x, subj) ||
	    !X509_set_issuer_name(x, subj) || !X509_set_pubkey(x, pub) ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600L) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 24L * 3600L) == NULL) {
		r = err_set_ssl(P11S_E_INTERNAL, "cannot fill in the signer certificate");
		goto out;
	}
	r = add_signer_ku(x, pub);
	if (r != P11S_OK)
		goto out;
	if (X509_sign(x, key, md) <= 0) {
		r = err_set_ssl(P11S_E_TOKEN, "signing the signer certificate with the key failed");
		goto out;
	}
	*out = x;
	x = NULL;
out:
	X509_free(x);
	return r;
}
