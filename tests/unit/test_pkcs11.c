/*
 * The PKCS#11 backend against a real SoftHSM2 token: each group gets its own
 * temp dir, softhsm2.conf and token. Counts and attributes are read back
 * with pkcs11-tool (opensc), independently of the code under test.
 */
#include "config.h"

#include <fcntl.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "err.h"
#include "keystore.h"

#define MODULE		"/usr/lib/softhsm/libsofthsm2.so"
#define LABEL		"p11scep-test"
#define PIN		"1234"
#define SO_PIN		"5678"
/* The key of the "key" group: label k1, id 01 02 03. */
#define KEY_PATH	"token=" LABEL ";object=k1;id=%01%02%03"
#define KEY_ID_HEX	"010203"
#define Q_MOD		"module-path=" MODULE
#define Q_PIN		"pin-value=" PIN

struct env {
	char dir[64];
	char conf[96];
	char tokens[96];
	EVP_PKEY *pub;		/* software copy of the key group's key */
};

static X509 *make_cert(EVP_PKEY *subject_key, EVP_PKEY *sign_key, const char *cn, long serial);
static EVP_PKEY *software_copy(EVP_PKEY *pk);

/* ------------------------------------------------------------ processes */

/* Runs argv with stdout and stderr into out (or /dev/null); its exit status. */
static int run(const char *const argv[], const char *out)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status = -1;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, out != NULL ? out : "/dev/null",
					 O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	if (posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ) != 0)
		fail_msg("cannot run %s", argv[0]);
	posix_spawn_file_actions_destroy(&fa);
	if (waitpid(pid, &status, 0) != pid)
		fail_msg("waitpid %s", argv[0]);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The whole of a small file as a NUL-terminated string (caller frees). */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 65536);
	size_t n;

	assert_non_null(f);
	assert_non_null(buf);
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	chmod(path, mode);
}

static void init_token(const char *label)
{
	const char *argv[] = { "softhsm2-util", "--init-token", "--free", "--label", label,
			       "--pin", PIN, "--so-pin", SO_PIN, NULL };

	assert_int_equal(run(argv, NULL), 0);
}

/* Removes every token of e and creates the one test token. */
static void fresh_token(const struct env *e)
{
	const char *rm[] = { "rm", "-rf", e->tokens, NULL };

	assert_int_equal(run(rm, NULL), 0);
	assert_int_equal(mkdir(e->tokens, 0700), 0);
	init_token(LABEL);
}

/* pkcs11-tool's listing of objects of type (privkey, cert) into a string. */
static char *list_objects(const struct env *e, const char *type)
{
	char out[128];
	const char *argv[] = { "pkcs11-tool", "--module", MODULE, "--token-label", LABEL,
			       "--login", "--pin", PIN, "--list-objects", "--type", type, NULL };

	snprintf(out, sizeof(out), "%s/objects.txt", e->dir);
	assert_int_equal(run(argv, out), 0);
	return slurp(out);
}

/* How many listed objects carry "ID: id_hex" (one ID line per object). */
static int count_id(const char *listing, const char *id_hex)
{
	const char *p = listing, *v;
	int n = 0;

	while ((p = strstr(p, "ID:")) != NULL) {
		v = p + 3;
		while (*v == ' ')
			v++;
		if (strncmp(v, id_hex, strlen(id_hex)) == 0 && v[strlen(id_hex)] == '\n')
			n++;
		p = v;
	}
	return n;
}

static int count_str(const char *s, const char *what)
{
	int n = 0;

	while ((s = strstr(s, what)) != NULL) {
		n++;
		s += strlen(what);
	}
	return n;
}

/* ------------------------------------------------------------ env */

static int env_setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return -1;
	snprintf(e->dir, sizeof(e->dir), "/tmp/p11scep-test-XXXXXX");
	if (mkdtemp(e->dir) == NULL)
		return -1;
	snprintf(e->conf, sizeof(e->conf), "%s/softhsm2.conf", e->dir);
	snprintf(e->tokens, sizeof(e->tokens), "%s/tokens", e->dir);
	FILE *f = fopen(e->conf, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
		e->tokens);
	fclose(f);
	/* SoftHSM reads it at every C_Initialize; pkcs11-tool inherits it. */
	setenv("SOFTHSM2_CONF", e->conf, 1);
	*state = e;
	return 0;
}

static int env_teardown(void **state)
{
	struct env *e = *state;
	const char *rm[] = { "rm", "-rf", e->dir, NULL };

	run(rm, NULL);
	EVP_PKEY_free(e->pub);
	free(e);
	return 0;
}

static int per_test_token(void **state)
{
	fresh_token(*state);
	err_clear();
	return 0;
}

/* Opens uri with an optional PIN callback; returns what ks_open returned. */
static enum p11s_err open_uri(const char *uri, ks_pin_cb cb, void *arg, struct ks **ks)
{
	struct ks_params p = { .uri = uri, .pin_cb = cb, .pin_arg = arg };

	err_clear();
	return ks_open(&p, ks);
}

static struct ks *open_ok(const char *uri)
{
	struct ks *ks = NULL;
	enum p11s_err rc = open_uri(uri, NULL, NULL, &ks);

	if (rc != P11S_OK)
		fail_msg("ks_open: %s: %s", err_str(rc), err_msg());
	assert_non_null(ks);
	return ks;
}

static void assert_msg_has(const char *want)
{
	if (strstr(err_msg(), want) == NULL)
		fail_msg("message '%s' lacks '%s'", err_msg(), want);
}

/* ------------------------------------------------------------ PIN callback */

struct pin_arg {
	int calls;
	char label[64];
	const char *pin;	/* NULL: fail with P11S_E_PIN */
};

static enum p11s_err pin_cb(void *arg, const char *token_label, int may_prompt, char *buf,
			    size_t buflen)
{
	struct pin_arg *a = arg;

	(void)may_prompt;
	a->calls++;
	snprintf(a->label, sizeof(a->label), "%s", token_label);
	if (a->pin == NULL)
		return err_set(P11S_E_PIN, "test: no PIN today");
	snprintf(buf, buflen, "%s", a->pin);
	return P11S_OK;
}

/* ------------------------------------------------------------ token group */

static void test_open_pin_value(void **state)
{
	struct ks *ks;
	EVP_PKEY *pk = (EVP_PKEY *)1;

	(void)state;
	ks = open_ok("pkcs11:" KEY_PATH "?" Q_MOD "&" Q_PIN);
	/* logged in, no key yet: NOTFOUND and no message for the caller */
	assert_int_equal(ks_find_key(ks, &pk), P11S_E_NOTFOUND);
	assert_null(pk);
	assert_string_equal(err_msg(), "");
	ks_close(ks);
	ks_close(NULL);
}

static void test_open_pin_source(void **state)
{
	struct env *e = *state;
	char pinfile[128], uri[512];
	struct ks *ks;

	snprintf(pinfile, sizeof(pinfile), "%s/pin", e->dir);
	write_file(pinfile, PIN "\n", 0600);
	snprintf(uri, sizeof(uri), "pkcs11:token=" LABEL "?" Q_MOD "&pin-source=file:%s", pinfile);
	ks = open_ok(uri);
	ks_close(ks);
	/* a plain path works too */
	snprintf(uri, sizeof(uri), "pkcs11:token=" LABEL "?" Q_MOD "&pin-source=%s", pinfile);
	ks = open_ok(uri);
	ks_close(ks);
	/* a wrong PIN in the file is a PIN error */
	write_file(pinfile, "4321\n", 0600);
	assert_int_equal(open_uri(uri, NULL, NULL, &ks), P11S_E_PIN);
	assert_null(ks);
	/* a missing file is an error, not a crash */
	snprintf(uri, sizeof(uri), "pkcs11:token=" LABEL "?" Q_MOD "&pin-source=file:%s/nope",
		 e->dir);
	assert_int_not_equal(open_uri(uri, NULL, NULL, &ks), P11S_OK);
	assert_null(ks);
}

static void test_open_pin_callback(void **state)
{
	struct pin_arg a = { .pin = PIN };
	struct ks *ks = NULL;

	(void)state;
	assert_int_equal(open_uri("pkcs11:token=" LABEL "?" Q_MOD, pin_cb, &a, &ks), P11S_OK);
	assert_int_equal(a.calls, 1);
	assert_string_equal(a.label, LABEL);
	ks_close(ks);

	/* the URI's PIN wins over the callback */
	a.calls = 0;
	assert_int_equal(open_uri("pkcs11:token=" LABEL "?" Q_MOD "&" Q_PIN, pin_cb, &a, &ks),
			 P11S_OK);
	assert_int_equal(a.calls, 0);
	ks_close(ks);

	/* a callback that has no PIN */
	a.pin = NULL;
	assert_int_equal(open_uri("pkcs11:token=" LABEL "?" Q_MOD, pin_cb, &a, &ks), P11S_E_PIN);
	assert_null(ks);
	assert_msg_has("no PIN today");
}

static void test_wrong_pin(void **state)
{
	struct pin_arg a = { .pin = "99999" };
	struct ks *ks = NULL;

	(void)state;
	assert_int_equal(open_uri("pkcs11:token=" LABEL "?" Q_MOD "&pin-value=98765", NULL, NULL,
				  &ks), P11S_E_PIN);
	assert_null(ks);
	assert_msg_has("rejected the PIN");
	assert_msg_has(LABEL);
	assert_null(strstr(err_msg(), "98765"));

	assert_int_equal(open_uri("pkcs11:token=" LABEL "?" Q_MOD, pin_cb, &a, &ks), P11S_E_PIN);
	assert_msg_has("rejected the PIN");
	assert_null(strstr(err_msg(), "99999"));

	/* the failed attempts left nothing open: a right PIN still works */
	ks = open_ok("pkcs11:token=" LABEL "?" Q_MOD "&" Q_PIN);
	ks_close(ks);
}

static void test_no_pin(void **state)
{
	struct ks *ks = NULL;

	(void)state;
	assert_int_equal(open_uri("pkcs11:token=" LABEL "?" Q_MOD, NULL, NULL, &ks), P11S_E_PIN);
	assert_null(ks);
	assert_msg_has("no PIN");
}

static void test_token_not_found(void **state)
{
	struct ks *ks = NULL;

	(void)state;
	assert_int_equal(open_uri("pkcs11:token=no%20such;object=k?" Q_MOD "&" Q_PIN, NULL, NULL,
				  &ks), P11S_E_TOKEN);
	assert_null(ks);
	assert_msg_has("token='no such'");
	assert_msg_has("'" LABEL "'");	/* the labels it saw */

	/* every given attribute must match */
	assert_int_equal(open_uri("pkcs11:token=" LABEL ";serial=0000?" Q_MOD "&" Q_PIN, NULL,
				  NULL, &ks), P11S_E_TOKEN);
	assert_msg_has("serial='0000'");
	assert_int_equal(open_uri("pkcs11:token=" LABEL ";model=HSM9000?" Q_MOD "&" Q_PIN, NULL,
				  NULL, &ks), P11S_E_TOKEN);
	ks = open_ok("pkcs11:token=" LABEL ";manufacturer=SoftHSM%20project;model=SoftHSM%20v2?"
		     Q_MOD "&" Q_PIN);
	ks_close(ks);
}

static void test_several_tokens(void **state)
{
	struct ks *ks = NULL;

	(void)state;
	init_token("other");
	/* no label: both initialized tokens match */
	assert_int_equal(open_uri("pkcs11:?" Q_MOD "&" Q_PIN, NULL, NULL, &ks), P11S_E_TOKEN);
	assert_null(ks);
	assert_msg_has("token=LABEL");
	assert_msg_has("'other'");
	assert_int_equal(open_uri("pkcs11:manufacturer=SoftHSM%20project?" Q_MOD "&" Q_PIN, NULL,
				  NULL, &ks), P11S_E_TOKEN);
	assert_msg_has("serial=");
	/* the label tells them apart */
	ks = open_ok("pkcs11:token=other?" Q_MOD "&" Q_PIN);
	ks_close(ks);
	ks = open_ok("pkcs11:token=" LABEL "?" Q_MOD "&" Q_PIN);
	ks_close(ks);
}

static void test_bad_module(void **state)
{
	struct ks_params p = { 0 };
	struct ks *ks = NULL;

	(void)state;
	assert_int_equal(open_uri("pkcs11:token=" LABEL "?module-path=/nonexistent/libp11x.so&"
				  Q_PIN, NULL, NULL, &ks), P11S_E_TOKEN);
	assert_null(ks);
	assert_msg_has("/nonexistent/libp11x.so");

	/* params->module overrides the URI's module-path */
	p.uri = "pkcs11:token=" LABEL "?module-path=/nonexistent/libp11x.so&" Q_PIN;
	p.module = MODULE;
	err_clear();
	assert_int_equal(ks_open(&p, &ks), P11S_OK);
	ks_close(ks);
	p.uri = "pkcs11:token=" LABEL "?" Q_MOD "&" Q_PIN;
	p.module = "/nonexistent/other.so";
	err_clear();
	assert_int_equal(ks_open(&p, &ks), P11S_E_TOKEN);
	assert_null(ks);
	assert_msg_has("/nonexistent/other.so");
}

static void test_usage_errors(void **state)
{
	struct ks_keyspec spec = { .type = KS_KEY_RSA, .bits = 1024 };
	EVP_PKEY *pk = NULL;
	struct ks *ks = NULL, *ks2 = NULL;

	(void)state;
	assert_int_equal(open_uri("file:/etc/key.pem", NULL, NULL, &ks), P11S_E_USAGE);
	assert_int_equal(open_uri("pkcs11:token=a%zz", NULL, NULL, &ks), P11S_E_USAGE);
	assert_int_equal(open_uri("pkcs11:token=" LABEL ";type=cert?" Q_MOD "&" Q_PIN, NULL, NULL,
				  &ks), P11S_E_USAGE);
	assert_null(ks);

	/* no object= and no id=: find_key cannot know which key */
	ks = open_ok("pkcs11:token=" LABEL "?" Q_MOD "&" Q_PIN);
	err_clear();
	assert_int_equal(ks_find_key(ks, &pk), P11S_E_USAGE);
	assert_msg_has("object=");
	err_clear();
	spec.bits = 2048;
	assert_int_equal(ks_generate_key(ks, &spec, &pk), P11S_E_USAGE);
	assert_msg_has("object=");
	assert_null(pk);

	/* one context per process */
	assert_int_equal(open_uri("pkcs11:token=" LABEL "?" Q_MOD "&" Q_PIN, NULL, NULL, &ks2),
			 P11S_E_INTERNAL);
	assert_null(ks2);
	ks_close(ks);

	/* key sizes and types refused before any token work */
	ks = open_ok("pkcs11:" KEY_PATH "?" Q_MOD "&" Q_PIN);
	spec.bits = 1024;
	err_clear();
	assert_int_equal(ks_generate_key(ks, &spec, &pk), P11S_E_USAGE);
	assert_msg_has("1024");
	spec.bits = 2048;
	spec.type = (enum ks_keytype)7;
	err_clear();
	assert_int_equal(ks_generate_key(ks, &spec, &pk), P11S_E_USAGE);
	assert_null(pk);
	/* nothing was generated */
	err_clear();
	assert_int_equal(ks_find_key(ks, &pk), P11S_E_NOTFOUND);
	ks_close(ks);
}

static void test_cert_without_key(void **state)
{
	EVP_PKEY *sw = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x, *got = NULL;
	struct ks *ks;

	(void)state;
	assert_non_null(sw);
	x = make_cert(sw, sw, "nobody", 1);
	ks = open_ok("pkcs11:" KEY_PATH "?" Q_MOD "&" Q_PIN);
	/* no key, so no cert: NOTFOUND and no message */
	assert_int_equal(ks_find_cert(ks, &got), P11S_E_NOTFOUND);
	assert_null(got);
	assert_string_equal(err_msg(), "");
	/* storing needs the key: an error that says so */
	assert_int_equal(ks_store_cert(ks, x), P11S_E_NOTFOUND);
	assert_msg_has("no private key");
	ks_close(ks);
	X509_free(x);
	EVP_PKEY_free(sw);
}

/* Keys made elsewhere may have no CKA_ID (tpm2-pkcs11 does that): the label
 * still finds each, and current_id says what is missing. RSA: libp11 0.4.12
 * takes an EC key's public point from the public key with the same CKA_ID,
 * which for empty ids is any of them. */
static void test_empty_ids(void **state)
{
	const char *gen[] = { "pkcs11-tool", "--module", MODULE, "--token-label", LABEL,
			      "--login", "--pin", PIN, "--keypairgen", "--key-type",
			      "rsa:1024", "--label", "e1", NULL };
	struct ks_key_id id;
	struct ks *ks;
	EVP_PKEY *pk = NULL, *first;
	X509 *got = NULL;

	(void)state;
	assert_int_equal(run(gen, NULL), 0);
	gen[12] = "e2";
	assert_int_equal(run(gen, NULL), 0);
	ks = open_ok("pkcs11:token=" LABEL ";object=e1?" Q_MOD "&" Q_PIN);
	assert_int_equal(ks_find_key(ks, &pk), P11S_OK);
	assert_int_equal(EVP_PKEY_get_base_id(pk), EVP_PKEY_RSA);
	/* a software copy: a token key must not outlive ks_close */
	first = software_copy(pk);
	EVP_PKEY_free(pk);
	err_clear();
	assert_int_equal(ks_current_id(ks, &id), P11S_E_TOKEN);
	assert_msg_has("CKA_ID");
	assert_int_equal(id.len, 0);
	assert_int_equal(ks_find_cert(ks, &got), P11S_E_NOTFOUND);
	ks_close(ks);
	ks = open_ok("pkcs11:token=" LABEL ";object=e2?" Q_MOD "&" Q_PIN);
	pk = NULL;
	assert_int_equal(ks_find_key(ks, &pk), P11S_OK);
	assert_int_not_equal(EVP_PKEY_eq(pk, first), 1);
	EVP_PKEY_free(pk);
	ks_close(ks);
	EVP_PKEY_free(first);
}

/* ------------------------------------------------------------ key group */

static int key_setup(void **state)
{
	struct ks_keyspec spec = { .type = KS_KEY_RSA, .bits = 2048 };
	struct env *e;
	struct ks *ks = NULL;
	EVP_PKEY *pk = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	int len;

	if (env_setup(state) != 0)
		return -1;
	e = *state;
	fresh_token(e);
	if (open_uri("pkcs11:" KEY_PATH "?" Q_MOD "&" Q_PIN, NULL, NULL, &ks) == P11S_OK &&
	    ks_generate_key(ks, &spec, &pk) == P11S_OK) {
		len = i2d_PUBKEY(pk, &der);
		p = der;
		e->pub = len > 0 ? d2i_PUBKEY(NULL, &p, len) : NULL;
		OPENSSL_free(der);
	}
	EVP_PKEY_free(pk);
	ks_close(ks);
	if (e->pub != NULL)
		return 0;
	fprintf(stderr, "key group setup: %s\n", err_msg());
	env_teardown(state);
	return -1;
}

/* Finds the group's key in a new ks_open; the caller closes *ks. */
static EVP_PKEY *find_k1(struct ks **ks)
{
	EVP_PKEY *pk = NULL;
	enum p11s_err rc;

	*ks = open_ok("pkcs11:" KEY_PATH "?" Q_MOD "&" Q_PIN);
	rc = ks_find_key(*ks, &pk);
	if (rc != P11S_OK)
		fail_msg("find_key: %s: %s", err_str(rc), err_msg());
	return pk;
}

static void test_find_after_reopen(void **state)
{
	struct env *e = *state;
	struct ks *ks;
	EVP_PKEY *pk = NULL;

	pk = find_k1(&ks);
	assert_int_equal(EVP_PKEY_get_base_id(pk), EVP_PKEY_RSA);
	assert_int_equal(EVP_PKEY_get_bits(pk), 2048);
	assert_int_equal(EVP_PKEY_eq(pk, e->pub), 1);
	EVP_PKEY_free(pk);
	ks_close(ks);

	/* by label alone, by id alone; a wrong id finds nothing */
	ks = open_ok("pkcs11:token=" LABEL ";object=k1?" Q_MOD "&" Q_PIN);
	assert_int_equal(ks_find_key(ks, &pk), P11S_OK);
	EVP_PKEY_free(pk);
	ks_close(ks);
	ks = open_ok("pkcs11:token=" LABEL ";id=%01%02%03?" Q_MOD "&" Q_PIN);
	assert_int_equal(ks_find_key(ks, &pk), P11S_OK);
	EVP_PKEY_free(pk);
	ks_close(ks);
	ks = open_ok("pkcs11:token=" LABEL ";object=k1;id=%01%02?" Q_MOD "&" Q_PIN);
	assert_int_equal(ks_find_key(ks, &pk), P11S_E_NOTFOUND);
	assert_null(pk);
	assert_string_equal(err_msg(), "");
	ks_close(ks);
}

static void test_sign_verify(void **state)
{
	struct env *e = *state;
	static const unsigned char data[] = "SCEP PKCSReq to be signed";
	unsigned char sig[512];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	struct ks *ks;
	EVP_PKEY *pk = find_k1(&ks);

	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pk), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &siglen, data, sizeof(data)), 1);
	assert_int_equal(siglen, 256);
	EVP_MD_CTX_reset(md);
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, e->pub), 1);
	assert_int_equal(EVP_DigestVerify(md, sig, siglen, data, sizeof(data)), 1);
	/* and the check is real: other data does not verify */
	EVP_MD_CTX_reset(md);
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, e->pub), 1);
	assert_int_not_equal(EVP_DigestVerify(md, sig, siglen, data, sizeof(data) - 2), 1);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	ks_close(ks);
}

static void test_decrypt(void **state)
{
	struct env *e = *state;
	static const unsigned char secret[16] = "AES-128 CEK....";
	unsigned char enc[512], dec[512];
	size_t enclen = sizeof(enc), declen = sizeof(dec);
	EVP_PKEY_CTX *c;
	struct ks *ks;
	EVP_PKEY *pk = find_k1(&ks);

	c = EVP_PKEY_CTX_new(e->pub, NULL);
	assert_non_null(c);
	assert_int_equal(EVP_PKEY_encrypt_init(c), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING), 1);
	assert_int_equal(EVP_PKEY_encrypt(c, enc, &enclen, secret, sizeof(secret)), 1);
	EVP_PKEY_CTX_free(c);

	c = EVP_PKEY_CTX_new(pk, NULL);
	assert_non_null(c);
	assert_int_equal(EVP_PKEY_decrypt_init(c), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING), 1);
	assert_int_equal(EVP_PKEY_decrypt(c, dec, &declen, enc, enclen), 1);
	assert_int_equal(declen, sizeof(secret));
	assert_memory_equal(dec, secret, sizeof(secret));
	EVP_PKEY_CTX_free(c);
	EVP_PKEY_free(pk);
	ks_close(ks);
}

static void test_key_attributes(void **state)
{
	struct env *e = *state;
	char *l = list_objects(e, "privkey");

	assert_int_equal(count_id(l, KEY_ID_HEX), 1);
	assert_non_null(strstr(l, "label:      k1"));
	assert_non_null(strstr(l, "sensitive"));
	assert_non_null(strstr(l, "never extract"));
	assert_non_null(strstr(l, "local"));
	free(l);
}

static void test_generate_existing_id(void **state)
{
	struct ks_keyspec spec = { .type = KS_KEY_RSA, .bits = 2048 };
	struct ks *ks;
	EVP_PKEY *pk = NULL;

	(void)state;
	/* another label with the id of k1: refused before any keygen */
	ks = open_ok("pkcs11:token=" LABEL ";object=k9;id=%01%02%03?" Q_MOD "&" Q_PIN);
	assert_int_equal(ks_generate_key(ks, &spec, &pk), P11S_E_USAGE);
	assert_null(pk);
	assert_msg_has("id");
	ks_close(ks);
}

/* Self-signed cert for subject_key, signed by sign_key (token or software),
 * valid from nb to na. */
static X509 *make_cert_at(EVP_PKEY *subject_key, EVP_PKEY *sign_key, const char *cn,
			  long serial, time_t nb, time_t na)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	assert_non_null(x);
	assert_non_null(n);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
						    (const unsigned char *)cn, -1, -1, 0), 1);
	assert_int_equal(X509_set_subject_name(x, n), 1);
	assert_int_equal(X509_set_issuer_name(x, n), 1);
	X509_NAME_free(n);
	assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), nb));
	assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), na));
	assert_int_equal(X509_set_pubkey(x, subject_key), 1);
	assert_true(X509_sign(x, sign_key, EVP_sha256()) > 0);
	return x;
}

/* Valid from serial minutes from now, for a day. */
static X509 *make_cert(EVP_PKEY *subject_key, EVP_PKEY *sign_key, const char *cn, long serial)
{
	time_t now = time(NULL);

	return make_cert_at(subject_key, sign_key, cn, serial, now + serial * 60, now + 86400);
}

static void assert_find_cert(struct ks *ks, X509 *want)
{
	X509 *got = NULL;
	enum p11s_err rc;

	err_clear();
	rc = ks_find_cert(ks, &got);
	if (rc != P11S_OK)
		fail_msg("find_cert: %s: %s", err_str(rc), err_msg());
	assert_int_equal(X509_cmp(got, want), 0);
	X509_free(got);
}

static int certs_beside_k1(const struct env *e)
{
	char *l = list_objects(e, "cert");
	int n = count_id(l, KEY_ID_HEX);

	free(l);
	return n;
}

static void test_store_cert(void **state)
{
	struct env *e = *state;
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *c1, *c2, *foreign, *got = NULL;
	struct ks *ks;
	EVP_PKEY *pk = find_k1(&ks);

	assert_non_null(other);
	/* The subject key is the software copy: an X509 keeps a reference to
	 * the EVP_PKEY it was given, and a token key must not outlive ks_close. */
	c1 = make_cert(e->pub, pk, "k1 first", 1);
	c2 = make_cert(e->pub, pk, "k1 second", 2);
	foreign = make_cert(other, other, "someone else", 3);

	assert_int_equal(ks_find_cert(ks, &got), P11S_E_NOTFOUND);
	assert_null(got);
	assert_string_equal(err_msg(), "");

	assert_int_equal(ks_store_cert(ks, c1), P11S_OK);
	assert_find_cert(ks, c1);
	/* the same cert again: nothing new */
	assert_int_equal(ks_store_cert(ks, c1), P11S_OK);
	assert_find_cert(ks, c1);
	EVP_PKEY_free(pk);
	ks_close(ks);
	assert_int_equal(certs_beside_k1(e), 1);

	/* a new cert replaces the old one, in this session and on the token */
	pk = find_k1(&ks);
	assert_int_equal(ks_store_cert(ks, c2), P11S_OK);
	assert_find_cert(ks, c2);
	/* a cert for another key is refused and changes nothing */
	err_clear();
	assert_int_equal(ks_store_cert(ks, foreign), P11S_E_INTERNAL);
	assert_msg_has("public key");
	assert_find_cert(ks, c2);
	EVP_PKEY_free(pk);
	ks_close(ks);
	assert_int_equal(certs_beside_k1(e), 1);

	/* a fresh open, without find_key first, sees the new one */
	ks = open_ok("pkcs11:" KEY_PATH "?" Q_MOD "&" Q_PIN);
	assert_find_cert(ks, c2);
	/* storing the old one back replaces the new one again */
	assert_int_equal(ks_store_cert(ks, c1), P11S_OK);
	assert_find_cert(ks, c1);
	ks_close(ks);
	assert_int_equal(certs_beside_k1(e), 1);
	ks = open_ok("pkcs11:" KEY_PATH "?" Q_MOD "&" Q_PIN);
	assert_find_cert(ks, c1);
	ks_close(ks);

	X509_free(c1);
	X509_free(c2);
	X509_free(foreign);
	EVP_PKEY_free(other);
}

static void test_store_ca_cert(void **state)
{
	struct env *e = *state;
	EVP_PKEY *ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	unsigned char md[20];
	unsigned int mdlen = 0, i;
	char id_hex[41];
	X509 *ca;
	struct ks *ks;
	char *l;

	assert_non_null(ca_key);
	ca = make_cert(ca_key, ca_key, "p11scep Test CA", 0);
	assert_int_equal(X509_pubkey_digest(ca, EVP_sha1(), md, &mdlen), 1);
	for (i = 0; i < mdlen; i++)
		snprintf(id_hex + 2 * i, 3, "%02x", md[i]);

	ks = open_ok("pkcs11:" KEY_PATH "?" Q_MOD "&" Q_PIN);
	assert_int_equal(ks_store_ca_cert(ks, ca), P11S_OK);
	assert_int_equal(ks_store_ca_cert(ks, ca), P11S_OK);
	ks_close(ks);
	ks = open_ok("pkcs11:" KEY_PATH "?" Q_MOD "&" Q_PIN);
	assert_int_equal(ks_store_ca_cert(ks, ca), P11S_OK);
	ks_close(ks);

	l = list_objects(e, "cert");
	assert_int_equal(count_id(l, id_hex), 1);
	assert_int_equal(count_str(l, "label:      p11scep Test CA\n"), 1);
	/* the key's own cert is untouched */
	assert_int_equal(count_id(l, KEY_ID_HEX), 1);
	free(l);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
}

/* Last in its group: it adds a second key labelled k1. */
static void test_generate_random_id(void **state)
{
	struct env *e = *state;
	struct ks_keyspec spec = { .type = KS_KEY_RSA, .bits = 2048 };
	struct ks *ks;
	EVP_PKEY *pk = NULL, *pk2 = NULL;
	char *l;
	const char *p;
	size_t n;

	/* no id= in the URI: a fresh 16-byte id */
	ks = open_ok("pkcs11:token=" LABEL ";object=k1?" Q_MOD "&" Q_PIN);
	assert_int_equal(ks_generate_key(ks, &spec, &pk), P11S_OK);
	assert_int_equal(EVP_PKEY_get_bits(pk), 2048);
	assert_int_not_equal(EVP_PKEY_eq(pk, e->pub), 1);
	EVP_PKEY_free(pk);
	/* two keys are now called k1: the label alone names the one with a
	 * certificate (test_store_cert stored one), not the new one */
	err_clear();
	assert_int_equal(ks_find_key(ks, &pk2), P11S_OK);
	assert_int_equal(EVP_PKEY_eq(pk2, e->pub), 1);
	EVP_PKEY_free(pk2);
	ks_close(ks);

	l = list_objects(e, "privkey");
	assert_int_equal(count_str(l, "label:      k1\n"), 2);
	assert_int_equal(count_id(l, KEY_ID_HEX), 1);
	/* the other one's id is 32 hex digits */
	p = strstr(l, "ID:");
	assert_non_null(p);
	while (p != NULL) {
		p += 3;
		while (*p == ' ')
			p++;
		n = strcspn(p, "\n");
		assert_true(n == strlen(KEY_ID_HEX) || n == 2 * 16);
		p = strstr(p, "ID:");
	}
	free(l);

	/* the id still tells them apart */
	pk = find_k1(&ks);
	assert_int_equal(EVP_PKEY_eq(pk, e->pub), 1);
	EVP_PKEY_free(pk);
	ks_close(ks);
}

/* ------------------------------------------------------------ rollover group */

#define ROLL_URI	"pkcs11:token=" LABEL ";object=roll?" Q_MOD "&" Q_PIN

/* Lower-case hex, as pkcs11-tool prints a CKA_ID. */
static void id_to_hex(const struct ks_key_id *id, char *buf, size_t n)
{
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < id->len && 2 * i + 3 <= n; i++)
		snprintf(buf + 2 * i, n - 2 * i, "%02x", id->id[i]);
}

/* How many objects of type (privkey, pubkey, cert) the token holds with id. */
static int count_objects(const struct env *e, const char *type, const struct ks_key_id *id)
{
	char hex[2 * KS_ID_MAX + 1];
	char *l = list_objects(e, type);
	int n;

	id_to_hex(id, hex, sizeof(hex));
	n = count_id(l, hex);
	free(l);
	return n;
}

static struct ks_key_id current(struct ks *ks)
{
	struct ks_key_id id;
	enum p11s_err rc;

	err_clear();
	rc = ks_current_id(ks, &id);
	if (rc != P11S_OK)
		fail_msg("current_id: %s: %s", err_str(rc), err_msg());
	return id;
}

static int same_id(const struct ks_key_id *a, const struct ks_key_id *b)
{
	return a->len == b->len && memcmp(a->id, b->id, a->len) == 0;
}

static EVP_PKEY *software_copy(EVP_PKEY *pk)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	EVP_PKEY *pub;
	int len = i2d_PUBKEY(pk, &der);

	assert_true(len > 0);
	p = der;
	pub = d2i_PUBKEY(NULL, &p, len);
	OPENSSL_free(der);
	assert_non_null(pub);
	return pub;
}

static EVP_PKEY *generate(struct ks *ks, int fresh_id)
{
	struct ks_keyspec spec = { .type = KS_KEY_RSA, .bits = 2048, .fresh_id = fresh_id };
	EVP_PKEY *pk = NULL;
	enum p11s_err rc;

	err_clear();
	rc = ks_generate_key(ks, &spec, &pk);
	if (rc != P11S_OK)
		fail_msg("generate_key: %s: %s", err_str(rc), err_msg());
	return pk;
}

/* find_key on a fresh open of uri: the key must be want's; the caller closes. */
static struct ks *open_find(const char *uri, EVP_PKEY *want)
{
	struct ks *ks = open_ok(uri);
	EVP_PKEY *pk = NULL;
	enum p11s_err rc;

	rc = ks_find_key(ks, &pk);
	if (rc != P11S_OK)
		fail_msg("find_key: %s: %s", err_str(rc), err_msg());
	assert_int_equal(EVP_PKEY_eq(pk, want), 1);
	EVP_PKEY_free(pk);
	return ks;
}

static void select_id(struct ks *ks, const struct ks_key_id *id, EVP_PKEY *want)
{
	EVP_PKEY *pk = NULL;
	struct ks_key_id cur;
	enum p11s_err rc;

	err_clear();
	rc = ks_find_key_by_id(ks, id, &pk);
	if (rc != P11S_OK)
		fail_msg("find_key_by_id: %s: %s", err_str(rc), err_msg());
	assert_int_equal(EVP_PKEY_eq(pk, want), 1);
	EVP_PKEY_free(pk);
	cur = current(ks);
	assert_true(same_id(&cur, id));
}

static void assert_signs(EVP_PKEY *pk, EVP_PKEY *pub)
{
	static const unsigned char data[] = "RenewalReq signed by the old key";
	unsigned char sig[512];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pk), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &siglen, data, sizeof(data)), 1);
	EVP_MD_CTX_reset(md);
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub), 1);
	assert_int_equal(EVP_DigestVerify(md, sig, siglen, data, sizeof(data)), 1);
	EVP_MD_CTX_free(md);
}

struct roll {
	EVP_PKEY *pub_a, *pub_b;	/* software copies */
	struct ks_key_id id_a, id_b;
	X509 *cert_a, *cert_b;
	time_t t0;
};

static void roll_free(struct roll *r)
{
	EVP_PKEY_free(r->pub_a);
	EVP_PKEY_free(r->pub_b);
	X509_free(r->cert_a);
	X509_free(r->cert_b);
}

/* Key A with a cert, then key B with the same label and a fresh id, as
 * renew does: A still signs after B is generated. */
static void roll_generate(const struct env *e, struct roll *r)
{
	struct ks *ks = open_ok(ROLL_URI);
	EVP_PKEY *pk_a, *pk_b;
	X509 *got = NULL;

	pk_a = generate(ks, 0);
	r->pub_a = software_copy(pk_a);
	r->id_a = current(ks);
	assert_int_equal(r->id_a.len, 16);
	r->cert_a = make_cert_at(r->pub_a, pk_a, "A", 1, r->t0, r->t0 + 86400);
	assert_int_equal(ks_store_cert(ks, r->cert_a), P11S_OK);

	pk_b = generate(ks, 1);
	r->pub_b = software_copy(pk_b);
	assert_int_not_equal(EVP_PKEY_eq(r->pub_a, r->pub_b), 1);
	r->id_b = current(ks);
	assert_int_equal(r->id_b.len, 16);
	assert_false(same_id(&r->id_a, &r->id_b));
	/* libp11 moved its key array: the old key's EVP_PKEY must still work */
	assert_signs(pk_a, r->pub_a);
	assert_signs(pk_b, r->pub_b);
	/* B is current and has no cert yet */
	assert_int_equal(ks_find_cert(ks, &got), P11S_E_NOTFOUND);
	assert_null(got);
	EVP_PKEY_free(pk_a);
	EVP_PKEY_free(pk_b);
	ks_close(ks);
	assert_int_equal(count_objects(e, "privkey", &r->id_a), 1);
	assert_int_equal(count_objects(e, "privkey", &r->id_b), 1);
}

/* The label picks the key whose cert is newest; a key without one is never picked. */
static void roll_pick(struct roll *r)
{
	struct ks *ks;
	struct ks_key_id cur;
	EVP_PKEY *pk = NULL;

	ks = open_find(ROLL_URI, r->pub_a);
	cur = current(ks);
	assert_true(same_id(&cur, &r->id_a));
	assert_find_cert(ks, r->cert_a);
	ks_close(ks);

	/* B gets a cert valid from a later time: now it is the URI's key */
	ks = open_ok(ROLL_URI);
	err_clear();
	assert_int_equal(ks_find_key_by_id(ks, &r->id_b, &pk), P11S_OK);
	r->cert_b = make_cert_at(r->pub_b, pk, "B", 2, r->t0 + 3600, r->t0 + 86400);
	EVP_PKEY_free(pk);
	assert_int_equal(ks_store_cert(ks, r->cert_b), P11S_OK);
	assert_find_cert(ks, r->cert_b);
	ks_close(ks);
	ks = open_find(ROLL_URI, r->pub_b);
	cur = current(ks);
	assert_true(same_id(&cur, &r->id_b));
	assert_find_cert(ks, r->cert_b);
	ks_close(ks);
}

/* Equal notBefore: the later notAfter wins; both equal: ambiguous. */
static void roll_ties(struct roll *r)
{
	EVP_PKEY *pk = NULL;
	X509 *later, *same;
	struct ks *ks;

	ks = open_ok(ROLL_URI);
	select_id(ks, &r->id_a, r->pub_a);
	assert_int_equal(ks_find_key_by_id(ks, &r->id_a, &pk), P11S_OK);
	later = make_cert_at(r->pub_a, pk, "A later", 3, r->t0 + 3600, r->t0 + 2 * 86400);
	same = make_cert_at(r->pub_a, pk, "A same", 4, r->t0 + 3600, r->t0 + 86400);
	EVP_PKEY_free(pk);
	assert_int_equal(ks_store_cert(ks, later), P11S_OK);
	ks_close(ks);
	ks = open_find(ROLL_URI, r->pub_a);
	/* the same dates as B's cert: the label no longer tells */
	assert_int_equal(ks_store_cert(ks, same), P11S_OK);
	ks_close(ks);
	ks = open_ok(ROLL_URI);
	err_clear();
	assert_int_equal(ks_find_key(ks, &pk), P11S_E_USAGE);
	assert_null(pk);
	assert_msg_has("id=");
	/* back to A's first cert, older than B's */
	select_id(ks, &r->id_a, r->pub_a);
	assert_int_equal(ks_store_cert(ks, r->cert_a), P11S_OK);
	ks_close(ks);
	ks = open_find(ROLL_URI, r->pub_b);
	ks_close(ks);
	X509_free(later);
	X509_free(same);
}

/* A's private key, public key and certs go; B and its cert stay. */
static void roll_remove(const struct env *e, struct roll *r)
{
	struct ks_key_id none = { .len = 0 };
	struct ks *ks;
	EVP_PKEY *pk = NULL;

	ks = open_ok(ROLL_URI);
	select_id(ks, &r->id_a, r->pub_a);
	err_clear();
	assert_int_equal(ks_remove_key(ks, &r->id_a), P11S_E_USAGE);
	assert_msg_has("in use");
	assert_int_equal(count_objects(e, "privkey", &r->id_a), 1);

	select_id(ks, &r->id_b, r->pub_b);
	err_clear();
	assert_int_equal(ks_remove_key(ks, &r->id_a), P11S_OK);
	/* in this session too, A is gone and B is unharmed */
	assert_int_equal(ks_find_key_by_id(ks, &r->id_a, &pk), P11S_E_NOTFOUND);
	assert_null(pk);
	assert_string_equal(err_msg(), "");
	assert_find_cert(ks, r->cert_b);
	assert_int_equal(ks_find_key(ks, &pk), P11S_OK);
	assert_int_equal(EVP_PKEY_eq(pk, r->pub_b), 1);
	assert_signs(pk, r->pub_b);
	EVP_PKEY_free(pk);
	err_clear();
	assert_int_equal(ks_remove_key(ks, &r->id_a), P11S_E_NOTFOUND);
	assert_msg_has("nothing to remove");
	err_clear();
	assert_int_equal(ks_remove_key(ks, &none), P11S_E_INTERNAL);
	ks_close(ks);

	assert_int_equal(count_objects(e, "privkey", &r->id_a), 0);
	assert_int_equal(count_objects(e, "pubkey", &r->id_a), 0);
	assert_int_equal(count_objects(e, "cert", &r->id_a), 0);
	assert_int_equal(count_objects(e, "privkey", &r->id_b), 1);
	assert_int_equal(count_objects(e, "pubkey", &r->id_b), 1);
	assert_int_equal(count_objects(e, "cert", &r->id_b), 1);

	ks = open_find(ROLL_URI, r->pub_b);
	assert_find_cert(ks, r->cert_b);
	ks_close(ks);
}

static void test_rollover(void **state)
{
	struct roll r = { .t0 = time(NULL) };

	roll_generate(*state, &r);
	roll_pick(&r);
	roll_ties(&r);
	roll_remove(*state, &r);
	roll_free(&r);
}

/* fresh_id ignores the URI's id=; two keys without certs are ambiguous. */
static void test_fresh_id_with_uri_id(void **state)
{
	struct env *e = *state;
	struct ks_keyspec spec = { .type = KS_KEY_RSA, .bits = 2048 };
	struct ks_key_id cur, uri_id = { .id = { 0xaa, 0xbb }, .len = 2 };
	EVP_PKEY *pk, *pub1, *pub2;
	struct ks *ks;
	char *l;

	ks = open_ok("pkcs11:token=" LABEL ";object=m;id=%aa%bb?" Q_MOD "&" Q_PIN);
	/* no key yet: current_id says so */
	err_clear();
	assert_int_equal(ks_current_id(ks, &cur), P11S_E_NOTFOUND);
	assert_msg_has("no private key");
	pk = generate(ks, 0);
	pub1 = software_copy(pk);
	EVP_PKEY_free(pk);
	cur = current(ks);
	assert_true(same_id(&cur, &uri_id));
	pk = generate(ks, 1);
	pub2 = software_copy(pk);
	EVP_PKEY_free(pk);
	cur = current(ks);
	assert_int_equal(cur.len, 16);
	assert_false(same_id(&cur, &uri_id));
	/* without fresh_id the URI's id is still refused when taken */
	pk = NULL;
	err_clear();
	assert_int_equal(ks_generate_key(ks, &spec, &pk), P11S_E_USAGE);
	assert_null(pk);
	ks_close(ks);

	l = list_objects(e, "privkey");
	assert_int_equal(count_str(l, "label:      m\n"), 2);
	assert_int_equal(count_id(l, "aabb"), 1);
	free(l);

	/* neither has a certificate: the label alone cannot choose */
	ks = open_ok("pkcs11:token=" LABEL ";object=m?" Q_MOD "&" Q_PIN);
	pk = NULL;
	assert_int_equal(ks_find_key(ks, &pk), P11S_E_USAGE);
	assert_null(pk);
	assert_msg_has("id=");
	assert_msg_has("none has a certificate");
	ks_close(ks);
	ks = open_find("pkcs11:token=" LABEL ";object=m;id=%aa%bb?" Q_MOD "&" Q_PIN, pub1);
	ks_close(ks);
	ks = open_find("pkcs11:token=" LABEL ";object=m;id=%aa%bb?" Q_MOD "&" Q_PIN, pub1);
	select_id(ks, &cur, pub2);
	ks_close(ks);
	EVP_PKEY_free(pub1);
	EVP_PKEY_free(pub2);
}

int main(void)
{
	const struct CMUnitTest token_tests[] = {
		cmocka_unit_test_setup(test_open_pin_value, per_test_token),
		cmocka_unit_test_setup(test_open_pin_source, per_test_token),
		cmocka_unit_test_setup(test_open_pin_callback, per_test_token),
		cmocka_unit_test_setup(test_wrong_pin, per_test_token),
		cmocka_unit_test_setup(test_no_pin, per_test_token),
		cmocka_unit_test_setup(test_token_not_found, per_test_token),
		cmocka_unit_test_setup(test_several_tokens, per_test_token),
		cmocka_unit_test_setup(test_bad_module, per_test_token),
		cmocka_unit_test_setup(test_usage_errors, per_test_token),
		cmocka_unit_test_setup(test_cert_without_key, per_test_token),
		cmocka_unit_test_setup(test_empty_ids, per_test_token),
	};
	const struct CMUnitTest key_tests[] = {
		cmocka_unit_test(test_find_after_reopen),
		cmocka_unit_test(test_sign_verify),
		cmocka_unit_test(test_decrypt),
		cmocka_unit_test(test_key_attributes),
		cmocka_unit_test(test_generate_existing_id),
		cmocka_unit_test(test_store_cert),
		cmocka_unit_test(test_store_ca_cert),
		cmocka_unit_test(test_generate_random_id),
	};
	const struct CMUnitTest rollover_tests[] = {
		cmocka_unit_test_setup(test_rollover, per_test_token),
		cmocka_unit_test_setup(test_fresh_id_with_uri_id, per_test_token),
	};
	int failed;

	failed = cmocka_run_group_tests_name("token", token_tests, env_setup, env_teardown);
	failed += cmocka_run_group_tests_name("key", key_tests, key_setup, env_teardown);
	failed += cmocka_run_group_tests_name("rollover", rollover_tests, env_setup, env_teardown);
	return failed;
}
