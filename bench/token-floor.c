/*
 * token-floor: the token work of one SCEP enrollment, timed in-process on
 * libp11 0.4.12's own API, for bench/run.sh. It is built outside configure
 * (cc $(pkg-config --cflags --libs libp11 libcrypto) $(pkg-config --cflags
 * p11-kit-1)), hence no config.h; p11-kit gives pkcs11.h only, unlinked.
 *
 *   token-floor MODULE TOKEN PIN-FILE floor N
 *	Prints one line "NAME RUNS MEDIAN MIN MAX" (milliseconds) for each of:
 *	  load-login	module load + find token + read-write session + login,
 *			each in a fresh child process (one PKCS11_CTX per
 *			process, and a fresh process pays the dlopen); then
 *			the same for each step, as load-login:STEP
 *	  keygen-2048	RSA-2048 key generation (PKCS11_generate_key)
 *	  keygen-3072	RSA-3072 key generation
 *	  sign-2048	SHA-256 RSA signature, EVP_DigestSign on the token key
 *	  decrypt-2048	PKCS#1 v1.5 decryption, EVP_PKEY_decrypt on the token
 *			key, of a 16-byte secret encrypted in software
 *	  store-cert	a certificate stored as p11scep stores it
 *			(C_CreateObject, the attributes of raw_store_cert in
 *			engines/p11_raw.c) and the one it replaces removed
 *			(C_DestroyObject), in a session of our own on the
 *			module libp11 loaded; then each call, as
 *			store-cert:create and store-cert:destroy
 *	Each signature is verified and each decryption compared in software.
 *   token-floor MODULE TOKEN PIN-FILE keygen PREFIX COUNT
 *	Generates RSA-2048 key pairs labelled PREFIX1 .. PREFIXCOUNT.
 *   token-floor MODULE TOKEN PIN-FILE drop-certs
 *	Removes every certificate object from the token.
 *
 * The keys it generates stay in the token: give it a throwaway one.
 * Exit status 0 on success, 1 on any failure (message on stderr).
 */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libp11.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

#define PIN_MAX		256
#define LABEL_MAX	64
#define RUNS_MAX	100000
#define SIGN_DATA_LEN	512	/* about a pkiMessage's signed attributes */
#define SECRET_LEN	16	/* an AES-128 content-encryption key */
#define ID_FLOOR	0xf0	/* first byte of CKA_ID: keys made by "floor" */
#define ID_KEYGEN	0xb0	/* ... and by "keygen" */
#define ID_MAX		64

struct args {
	const char *module;
	const char *token;
	char pin[PIN_MAX];
};

struct tok {
	PKCS11_CTX *ctx;
	int loaded;
	PKCS11_SLOT *slots;
	unsigned int nslots;
	PKCS11_SLOT *slot;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A failed libp11 or OpenSSL call: what, and the first reason on the queue. */
static int fail(const char *what)
{
	unsigned long e = ERR_peek_error();
	const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;

	fprintf(stderr, "token-floor: %s failed%s%s\n", what,
		reason != NULL ? ": " : "", reason != NULL ? reason : "");
	ERR_clear_error();
	return -1;
}

static int read_pin(const char *path, char *pin, size_t size)
{
	FILE *f;
	size_t len;

	pin[0] = '\0';
	f = fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "token-floor: cannot open the PIN file %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	if (fgets(pin, (int)size, f) == NULL)
		pin[0] = '\0';
	fclose(f);
	len = strcspn(pin, "\r\n");
	pin[len] = '\0';
	if (len == 0) {
		fprintf(stderr, "token-floor: the PIN file %s is empty\n", path);
		return -1;
	}
	return 0;
}

static int parse_count(const char *s, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || *out == 0 || *out > RUNS_MAX) {
		fprintf(stderr, "token-floor: '%s' is not a count from 1 to %d\n", s, RUNS_MAX);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ token */

static void tok_close(struct tok *t)
{
	if (t->slots != NULL)
		PKCS11_release_all_slots(t->ctx, t->slots, t->nslots);
	if (t->loaded)
		PKCS11_CTX_unload(t->ctx);
	if (t->ctx != NULL)
		PKCS11_CTX_free(t->ctx);
	memset(t, 0, sizeof(*t));
}

/* Steps of tok_open, timed for the floor's breakdown. */
enum { STEP_LOAD, STEP_TOKEN, STEP_SESSION, STEP_LOGIN, STEPS };

static const char *const step_names[STEPS] = {
	"load-login:module-load", "load-login:find-token", "load-login:rw-session",
	"load-login:login",
};

/*
 * Module load, token by label (initialised only), read-write session, login.
 * With ms non-NULL, ms[STEP_*] get the time of each step.
 */
static int tok_open(struct tok *t, const struct args *a, double *ms)
{
	double t0 = now_ms(), lap[STEPS];
	unsigned int i;

	memset(t, 0, sizeof(*t));
	t->ctx = PKCS11_CTX_new();
	if (t->ctx == NULL)
		return fail("PKCS11_CTX_new");
	if (PKCS11_CTX_load(t->ctx, a->module) != 0)
		return fail("loading the PKCS#11 module");
	t->loaded = 1;
	ERR_clear_error();	/* SoftHSM leaves harmless DSO errors */
	lap[STEP_LOAD] = now_ms();
	if (PKCS11_enumerate_slots(t->ctx, &t->slots, &t->nslots) != 0) {
		t->slots = NULL;
		return fail("listing the slots");
	}
	for (i = 0; i < t->nslots && t->slot == NULL; i++) {
		PKCS11_TOKEN *k = t->slots[i].token;

		if (k != NULL && k->initialized && strcmp(k->label, a->token) == 0)
			t->slot = &t->slots[i];
	}
	if (t->slot == NULL) {
		fprintf(stderr, "token-floor: no initialised token labelled '%s'\n", a->token);
		return -1;
	}
	lap[STEP_TOKEN] = now_ms();
	/* Key generation needs a read-write session opened before login. */
	if (PKCS11_open_session(t->slot, 1) != 0)
		return fail("opening a read-write session");
	lap[STEP_SESSION] = now_ms();
	if (PKCS11_login(t->slot, 0, a->pin) != 0)
		return fail("login");
	lap[STEP_LOGIN] = now_ms();
	for (i = 0; ms != NULL && i < STEPS; i++)
		ms[i] = lap[i] - (i == 0 ? t0 : lap[i - 1]);
	return 0;
}

static int generate(struct tok *t, unsigned int bits, const char *label,
		    unsigned char id0, unsigned long n)
{
	unsigned char id[3] = { id0, (unsigned char)(n >> 8), (unsigned char)n };
	char lab[LABEL_MAX];
	int r;

	snprintf(lab, sizeof(lab), "%s", label);
	/* The only key generation libp11 0.4.12 has (PKCS11_keygen is 0.4.14). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	r = PKCS11_generate_key(t->slot->token, EVP_PKEY_RSA, bits, lab, id, sizeof(id));
#pragma GCC diagnostic pop
	if (r != 0)
		return fail("RSA key generation");
	return 0;
}

/* The private key labelled so, as an EVP_PKEY the caller frees; its
 * CKA_ID into id (ID_MAX bytes). */
static EVP_PKEY *private_key(struct tok *t, const char *label, unsigned char *id,
			     size_t *id_len)
{
	PKCS11_KEY *keys;
	unsigned int i, n;

	*id_len = 0;
	if (PKCS11_enumerate_keys(t->slot->token, &keys, &n) != 0) {
		fail("listing the keys");
		return NULL;
	}
	for (i = 0; i < n; i++) {
		if (!keys[i].isPrivate || keys[i].label == NULL ||
		    strcmp(keys[i].label, label) != 0)
			continue;
		if (keys[i].id_len > ID_MAX) {
			fprintf(stderr, "token-floor: the key's CKA_ID is too long\n");
			return NULL;
		}
		memcpy(id, keys[i].id, keys[i].id_len);
		*id_len = keys[i].id_len;
		return PKCS11_get_private_key(&keys[i]);
	}
	fprintf(stderr, "token-floor: no private key labelled '%s'\n", label);
	return NULL;
}

/* ------------------------------------------------------------ figures */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void report(const char *name, double *v, size_t n)
{
	double median;

	qsort(v, n, sizeof(*v), cmp_double);
	median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	printf("%s %zu %.3f %.3f %.3f\n", name, n, median, v[0], v[n - 1]);
	fflush(stdout);
}

/* ------------------------------------------------------------ floor */

/* In a child: open the token, send the total and each step's time up the pipe. */
static void login_child(const struct args *a, int fd)
{
	double ms[STEPS + 1];
	struct tok t;
	int rc, i;

	rc = tok_open(&t, a, ms + 1);
	for (ms[0] = 0, i = 1; i <= STEPS; i++)
		ms[0] += ms[i];
	tok_close(&t);
	if (rc == 0 && write(fd, ms, sizeof(ms)) != (ssize_t)sizeof(ms))
		rc = -1;
	_exit(rc == 0 ? 0 : 1);
}

/* v holds (STEPS + 1) * n doubles. */
static int time_logins(const struct args *a, double *v, size_t n)
{
	double ms[STEPS + 1];
	int fds[2], status, j;
	size_t i;
	pid_t pid;

	if (pipe(fds) != 0) {
		perror("token-floor: pipe");
		return -1;
	}
	for (i = 0; i < n; i++) {
		fflush(NULL);
		pid = fork();
		if (pid == -1) {
			perror("token-floor: fork");
			break;
		}
		if (pid == 0) {
			close(fds[0]);
			login_child(a, fds[1]);
		}
		while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
			;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
		    read(fds[0], ms, sizeof(ms)) != (ssize_t)sizeof(ms))
			break;
		for (j = 0; j <= STEPS; j++)
			v[(size_t)j * n + i] = ms[j];
	}
	close(fds[0]);
	close(fds[1]);
	if (i < n) {
		fprintf(stderr, "token-floor: the login run %zu failed\n", i + 1);
		return -1;
	}
	report("load-login", v, n);
	for (j = 0; j < STEPS; j++)
		report(step_names[j], v + (size_t)(j + 1) * n, n);
	return 0;
}

static int time_keygen(struct tok *t, unsigned int bits, double *v, size_t n)
{
	char label[LABEL_MAX], name[32];
	double t0;
	size_t i;

	for (i = 0; i < n; i++) {
		snprintf(label, sizeof(label), "floor-%u-%zu", bits, i + 1);
		t0 = now_ms();
		if (generate(t, bits, label, ID_FLOOR + (bits > 2048), i + 1) != 0)
			return -1;
		v[i] = now_ms() - t0;
	}
	snprintf(name, sizeof(name), "keygen-%u", bits);
	report(name, v, n);
	return 0;
}

/* A software copy of the public key: encryption and checks stay off the token. */
static EVP_PKEY *public_copy(EVP_PKEY *pkey)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	EVP_PKEY *pub;
	int len;

	len = i2d_PUBKEY(pkey, &der);
	if (len <= 0) {
		fail("encoding the public key");
		return NULL;
	}
	p = der;
	pub = d2i_PUBKEY(NULL, &p, len);
	OPENSSL_free(der);
	if (pub == NULL)
		fail("decoding the public key");
	return pub;
}

static int sign_once(EVP_PKEY *key, EVP_PKEY *pub, const unsigned char *data, double *ms)
{
	unsigned char sig[1024];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new(), *vd = EVP_MD_CTX_new();
	double t0;
	int rc = -1;

	if (md == NULL || vd == NULL)
		goto out;
	t0 = now_ms();
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, sig, &siglen, data, SIGN_DATA_LEN) != 1) {
		fail("signing with the token key");
		goto out;
	}
	*ms = now_ms() - t0;
	if (EVP_DigestVerifyInit(vd, NULL, EVP_sha256(), NULL, pub) != 1 ||
	    EVP_DigestVerify(vd, sig, siglen, data, SIGN_DATA_LEN) != 1) {
		fail("verifying the token's signature");
		goto out;
	}
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	EVP_MD_CTX_free(vd);
	return rc;
}

static int encrypt_secret(EVP_PKEY *pub, const unsigned char *secret,
			  unsigned char *blob, size_t *blob_len)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pub, NULL);
	int rc = -1;

	if (c == NULL || EVP_PKEY_encrypt_init(c) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_encrypt(c, blob, blob_len, secret, SECRET_LEN) != 1)
		fail("encrypting in software");
	else
		rc = 0;
	EVP_PKEY_CTX_free(c);
	return rc;
}

static int decrypt_once(EVP_PKEY *key, const unsigned char *blob, size_t blob_len,
			const unsigned char *secret, double *ms)
{
	unsigned char out[1024];
	size_t out_len = sizeof(out);
	EVP_PKEY_CTX *c;
	double t0 = now_ms();
	int rc = -1;

	c = EVP_PKEY_CTX_new(key, NULL);
	if (c == NULL || EVP_PKEY_decrypt_init(c) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_decrypt(c, out, &out_len, blob, blob_len) != 1) {
		fail("decrypting with the token key");
		goto out;
	}
	*ms = now_ms() - t0;
	if (out_len != SECRET_LEN || memcmp(out, secret, SECRET_LEN) != 0) {
		fprintf(stderr, "token-floor: the token decrypted something else\n");
		goto out;
	}
	rc = 0;
out:
	EVP_PKEY_CTX_free(c);
	return rc;
}

/* ------------------------------------------------------------ store */

/* The floor's key, as p11scep knows the key it stores a certificate beside. */
struct floor_key {
	EVP_PKEY *key, *pub;
	const char *label;
	unsigned char id[ID_MAX];
	size_t id_len;
};

/* A certificate's DER and the fields p11scep stores beside it. */
struct cert_der {
	unsigned char *cert, *subject, *issuer, *serial;
	int cert_len, subject_len, issuer_len, serial_len;
};

/* A session of our own on the module libp11 loaded. */
struct raw {
	void *dl;
	CK_FUNCTION_LIST *f;
	CK_SESSION_HANDLE session;
	int have_session;
};

static int ckr_fail(const char *what, CK_RV rv)
{
	fprintf(stderr, "token-floor: %s failed: CKR 0x%lX\n", what, rv);
	return -1;
}

static void cert_der_free(struct cert_der *d)
{
	OPENSSL_free(d->cert);
	OPENSSL_free(d->subject);
	OPENSSL_free(d->issuer);
	OPENSSL_free(d->serial);
	memset(d, 0, sizeof(*d));
}

static int cert_der_of(X509 *x, struct cert_der *d)
{
	d->cert_len = i2d_X509(x, &d->cert);
	d->subject_len = i2d_X509_NAME(X509_get_subject_name(x), &d->subject);
	d->issuer_len = i2d_X509_NAME(X509_get_issuer_name(x), &d->issuer);
	d->serial_len = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &d->serial);
	if (d->cert_len > 0 && d->subject_len > 0 && d->issuer_len > 0 && d->serial_len > 0)
		return 0;
	return fail("encoding the certificate");
}

/* A self-signed certificate of the floor key, signed by it; only its DER matters. */
static int self_signed(const struct floor_key *fk, struct cert_der *d)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	int rc = -1;

	memset(d, 0, sizeof(*d));
	if (x == NULL || name == NULL ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				       (const unsigned char *)"token-floor", -1, -1, 0) != 1 ||
	    X509_set_version(x, X509_VERSION_3) != 1 ||
	    ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), 0x5ce9f100d0c0ffeeULL) != 1 ||
	    X509_set_subject_name(x, name) != 1 || X509_set_issuer_name(x, name) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400) == NULL ||
	    X509_set_pubkey(x, fk->pub) != 1 || X509_sign(x, fk->key, EVP_sha256()) <= 0) {
		fail("making a self-signed certificate");
		goto out;
	}
	rc = cert_der_of(x, d);
out:
	if (rc != 0)
		cert_der_free(d);
	X509_NAME_free(name);
	X509_free(x);
	return rc;
}

static void raw_close(struct raw *r)
{
	if (r->have_session)
		r->f->C_CloseSession(r->session);
	if (r->dl != NULL)
		dlclose(r->dl);
	memset(r, 0, sizeof(*r));
}

/*
 * A read-write session on the token's slot through the module's function
 * list. RTLD_NOLOAD hands us libp11's handle, never a second copy; libp11
 * initialised the module and logged in (a login is the application's, so
 * our session shares it).
 */
static int raw_open(struct tok *t, const char *module, struct raw *r)
{
	CK_C_GetFunctionList get_list;
	void *sym;
	CK_RV rv;

	memset(r, 0, sizeof(*r));
	r->dl = dlopen(module, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
	sym = r->dl != NULL ? dlsym(r->dl, "C_GetFunctionList") : NULL;
	if (sym == NULL) {
		fprintf(stderr, "token-floor: cannot reach C_GetFunctionList of %s\n", module);
		return -1;
	}
	memcpy(&get_list, &sym, sizeof(get_list));	/* POSIX: a symbol is a function */
	rv = get_list(&r->f);
	if (rv != CKR_OK || r->f == NULL)
		return ckr_fail("C_GetFunctionList", rv);
	rv = r->f->C_OpenSession(PKCS11_get_slotid_from_slot(t->slot),
				 CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &r->session);
	if (rv != CKR_OK)
		return ckr_fail("opening a read-write session", rv);
	r->have_session = 1;
	return 0;
}

/* The object p11scep's raw_store_cert (engines/p11_raw.c) creates. */
static int create_cert(struct raw *r, const struct cert_der *d, const struct floor_key *fk,
		       CK_OBJECT_HANDLE *obj)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE type = CKC_X_509;
	CK_ULONG category = 1;	/* token user */
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_RV rv;
	CK_ATTRIBUTE a[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_CERTIFICATE_TYPE, &type, sizeof(type) },
		{ CKA_TOKEN, &yes, 1 },
		{ CKA_PRIVATE, &no, 1 },
		{ CKA_ID, (void *)fk->id, fk->id_len },
		{ CKA_SUBJECT, d->subject, (CK_ULONG)d->subject_len },
		{ CKA_ISSUER, d->issuer, (CK_ULONG)d->issuer_len },
		{ CKA_SERIAL_NUMBER, d->serial, (CK_ULONG)d->serial_len },
		{ CKA_VALUE, d->cert, (CK_ULONG)d->cert_len },
		{ CKA_CERTIFICATE_CATEGORY, &category, sizeof(category) },
		{ CKA_LABEL, (void *)fk->label, strlen(fk->label) },
	};

	rv = r->f->C_CreateObject(r->session, a, sizeof(a) / sizeof(a[0]), obj);
	return rv == CKR_OK ? 0 : ckr_fail("C_CreateObject (a certificate)", rv);
}

/* v holds 3 * n doubles: each round, then its create, then its destroy. */
static int store_rounds(struct raw *r, const struct cert_der *d, const struct floor_key *fk,
			double *v, size_t n)
{
	CK_OBJECT_HANDLE prev, obj;
	CK_RV rv;
	double t0, t1, t2;
	size_t i;

	/* The first one untimed: every timed round replaces one, as a renewal does. */
	if (create_cert(r, d, fk, &prev) != 0)
		return -1;
	for (i = 0; i < n; i++) {
		t0 = now_ms();
		if (create_cert(r, d, fk, &obj) != 0)
			break;
		t1 = now_ms();
		rv = r->f->C_DestroyObject(r->session, prev);
		t2 = now_ms();
		if (rv != CKR_OK) {
			ckr_fail("C_DestroyObject (the previous certificate)", rv);
			r->f->C_DestroyObject(r->session, obj);
			return -1;
		}
		prev = obj;
		v[i] = t2 - t0;
		v[n + i] = t1 - t0;
		v[2 * n + i] = t2 - t1;
	}
	rv = r->f->C_DestroyObject(r->session, prev);
	if (i < n)
		return -1;
	if (rv != CKR_OK)
		return ckr_fail("C_DestroyObject (the last certificate)", rv);
	report("store-cert", v, n);
	report("store-cert:create", v + n, n);
	report("store-cert:destroy", v + 2 * n, n);
	return 0;
}

static int time_store(struct tok *t, const struct args *a, const struct floor_key *fk,
		      double *v, size_t n)
{
	struct cert_der d;
	struct raw r;
	int rc = -1;

	if (self_signed(fk, &d) != 0)
		return -1;
	if (raw_open(t, a->module, &r) == 0)
		rc = store_rounds(&r, &d, fk, v, n);
	raw_close(&r);
	cert_der_free(&d);
	return rc;
}

/* v holds at least 3 * n doubles. */
static int time_key_ops(struct tok *t, const struct args *a, double *v, size_t n)
{
	unsigned char data[SIGN_DATA_LEN], secret[SECRET_LEN], blob[1024];
	struct floor_key fk = { .label = "floor-2048-1" };
	size_t i, blob_len = sizeof(blob);
	int rc = -1;

	fk.key = private_key(t, fk.label, fk.id, &fk.id_len);
	if (fk.key == NULL)
		return -1;
	fk.pub = public_copy(fk.key);
	if (fk.pub == NULL)
		goto out;
	if (RAND_bytes(data, sizeof(data)) != 1 || RAND_bytes(secret, sizeof(secret)) != 1) {
		fail("RAND_bytes");
		goto out;
	}
	for (i = 0; i < n; i++)
		if (sign_once(fk.key, fk.pub, data, &v[i]) != 0)
			goto out;
	report("sign-2048", v, n);
	if (encrypt_secret(fk.pub, secret, blob, &blob_len) != 0)
		goto out;
	for (i = 0; i < n; i++)
		if (decrypt_once(fk.key, blob, blob_len, secret, &v[i]) != 0)
			goto out;
	report("decrypt-2048", v, n);
	rc = time_store(t, a, &fk, v, n);
out:
	/* Before the slots are released: the key refers to them. */
	EVP_PKEY_free(fk.pub);
	EVP_PKEY_free(fk.key);
	return rc;
}

static int cmd_floor(const struct args *a, const char *count)
{
	unsigned long n;
	struct tok t = { 0 };
	double *v;
	int rc = -1;

	if (parse_count(count, &n) != 0)
		return -1;
	/* (STEPS + 1) * n for the logins, at least the 3 * n of store-cert */
	v = calloc(n * (STEPS + 1), sizeof(*v));
	if (v == NULL) {
		fprintf(stderr, "token-floor: out of memory\n");
		return -1;
	}
	/* First, while this process has no PKCS11_CTX of its own. */
	if (time_logins(a, v, n) != 0)
		goto out;
	if (tok_open(&t, a, NULL) != 0)
		goto out;
	if (time_keygen(&t, 2048, v, n) == 0 && time_keygen(&t, 3072, v, n) == 0)
		rc = time_key_ops(&t, a, v, n);
out:
	tok_close(&t);
	free(v);
	return rc;
}

/* ------------------------------------------------------------ helpers */

static int cmd_keygen(const struct args *a, const char *prefix, const char *count)
{
	char label[LABEL_MAX];
	unsigned long n, i;
	struct tok t;
	int rc = -1;

	if (parse_count(count, &n) != 0)
		return -1;
	if (n > 0xffff || strlen(prefix) + 6 > sizeof(label)) {
		fprintf(stderr, "token-floor: keygen takes a short prefix and at most 65535 keys\n");
		return -1;
	}
	if (tok_open(&t, a, NULL) != 0)
		goto out;
	for (i = 1; i <= n; i++) {
		snprintf(label, sizeof(label), "%s%lu", prefix, i);
		if (generate(&t, 2048, label, ID_KEYGEN, i) != 0)
			goto out;
	}
	rc = 0;
out:
	tok_close(&t);
	return rc;
}

static int cmd_drop_certs(const struct args *a)
{
	PKCS11_CERT *certs;
	unsigned int i, n;
	struct tok t;
	int rc = -1;

	if (tok_open(&t, a, NULL) != 0)
		goto out;
	if (PKCS11_enumerate_certs(t.slot->token, &certs, &n) != 0) {
		fail("listing the certificates");
		goto out;
	}
	/* libp11 0.4.12 keeps listing what it removed: walk the list once. */
	for (i = 0; i < n; i++)
		if (PKCS11_remove_certificate(&certs[i]) != 0) {
			fail("removing a certificate");
			goto out;
		}
	rc = 0;
out:
	tok_close(&t);
	return rc;
}

static void usage(void)
{
	fprintf(stderr, "usage: token-floor MODULE TOKEN PIN-FILE floor N\n"
		"       token-floor MODULE TOKEN PIN-FILE keygen PREFIX COUNT\n"
		"       token-floor MODULE TOKEN PIN-FILE drop-certs\n");
}

int main(int argc, char **argv)
{
	struct args a = { 0 };
	const char *cmd;
	int rc = -1;

	if (argc < 5) {
		usage();
		return 2;
	}
	a.module = argv[1];
	a.token = argv[2];
	cmd = argv[4];
	if (read_pin(argv[3], a.pin, sizeof(a.pin)) != 0)
		goto out;
	if (strcmp(cmd, "floor") == 0 && argc == 6)
		rc = cmd_floor(&a, argv[5]);
	else if (strcmp(cmd, "keygen") == 0 && argc == 7)
		rc = cmd_keygen(&a, argv[5], argv[6]);
	else if (strcmp(cmd, "drop-certs") == 0 && argc == 5)
		rc = cmd_drop_certs(&a);
	else {
		usage();
		rc = -2;
	}
out:
	OPENSSL_cleanse(a.pin, sizeof(a.pin));
	return rc == 0 ? 0 : rc == -2 ? 2 : 1;
}
