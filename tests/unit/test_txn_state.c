#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "err.h"
#include "output.h"
#include "txn_state.h"

/* What the tests share: a key, a signer certificate and a subject. */
static struct {
	char dir[64];
	char path[128];		/* dir/state/k.txn: the state dir does not exist yet */
	EVP_PKEY *key;
	X509 *signer;
	X509_NAME *subject;
} T;

static X509_NAME *name(const char *cn)
{
	X509_NAME *n = X509_NAME_new();

	assert_non_null(n);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
						     (const unsigned char *)"p11scep test", -1, -1, 0), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
						     (const unsigned char *)cn, -1, -1, 0), 1);
	return n;
}

static int setup(void **state)
{
	(void)state;
	snprintf(T.dir, sizeof(T.dir), "/tmp/test_txn_state.XXXXXX");
	if (mkdtemp(T.dir) == NULL)
		return -1;
	snprintf(T.path, sizeof(T.path), "%s/state/k.txn", T.dir);
	T.key = EVP_EC_gen("P-256");
	T.signer = X509_new();
	T.subject = name("host.example.test");
	if (T.key == NULL || T.signer == NULL ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(T.signer), 1) ||
	    !X509_set_subject_name(T.signer, T.subject) || !X509_set_issuer_name(T.signer, T.subject) ||
	    !X509_gmtime_adj(X509_getm_notBefore(T.signer), 0) ||
	    !X509_gmtime_adj(X509_getm_notAfter(T.signer), 3600) ||
	    !X509_set_pubkey(T.signer, T.key) || !X509_sign(T.signer, T.key, EVP_sha256()))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", T.dir);
	if (system(cmd) != 0)
		return -1;
	X509_NAME_free(T.subject);
	X509_free(T.signer);
	EVP_PKEY_free(T.key);
	return 0;
}

static void fill(struct txn_state *s)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->txid, sizeof(s->txid), "%s", "ABCDEF0123");
	s->url = "http://127.0.0.1:1/scep";
	s->ca_fingerprint = "AB:CD";
	s->cert_out = "/tmp/c.pem";
	s->created = 1700000000;
	s->signer = T.signer;
	s->subject = T.subject;
	s->new_key_id.id[0] = 0x0a;
	s->new_key_id.len = 1;
}

static char *slurp(const char *path)
{
	unsigned char *data = NULL;
	size_t len = 0;

	assert_int_equal(file_read_all(path, 65536, &data, &len), P11S_OK);
	return (char *)data;
}

/* Saved and loaded back: the subject and signer as given; no request in the file. */
static void test_round_trip(void **state)
{
	struct txn_state in, out;
	struct stat st;
	char dir[96], *text;

	(void)state;
	fill(&in);
	snprintf(dir, sizeof(dir), "%s/state", T.dir);
	assert_int_equal(txn_state_save(dir, T.path, &in), P11S_OK);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(stat(T.path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	text = slurp(T.path);
	assert_non_null(strstr(text, "\nsubject=30"));
	assert_null(strstr(text, "REQUEST"));
	free(text);

	assert_int_equal(txn_state_load(T.path, &out), P11S_OK);
	assert_string_equal(out.txid, in.txid);
	assert_string_equal(out.url, in.url);
	assert_string_equal(out.cert_out, in.cert_out);
	assert_null(out.chain_out);
	assert_int_equal(out.new_key_id.len, 1);
	assert_int_equal(X509_NAME_cmp(out.subject, T.subject), 0);
	assert_int_equal(X509_cmp(out.signer, T.signer), 0);
	txn_state_free(&out);
	assert_null(out.subject);
}

static void write_file(const char *path, const char *head, X509_REQ *req)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(head, f);
	assert_int_equal(PEM_write_X509(f, T.signer), 1);
	if (req != NULL)
		assert_int_equal(PEM_write_X509_REQ(f, req), 1);
	assert_int_equal(fclose(f), 0);
}

#define HEAD "version=1\ntxid=AB\nurl=http://h/scep\nca-fingerprint=AB\n"

/* Files of earlier versions held the request: its subject is taken. */
static void test_old_file(void **state)
{
	struct txn_state out;
	X509_NAME *n = name("old.example.test");
	X509_REQ *req = X509_REQ_new();

	(void)state;
	assert_non_null(req);
	assert_int_equal(X509_REQ_set_subject_name(req, n), 1);
	assert_int_equal(X509_REQ_set_pubkey(req, T.key), 1);
	assert_true(X509_REQ_sign(req, T.key, EVP_sha256()) > 0);
	write_file(T.path, HEAD, req);
	assert_int_equal(txn_state_load(T.path, &out), P11S_OK);
	assert_int_equal(X509_NAME_cmp(out.subject, n), 0);
	txn_state_free(&out);
	X509_REQ_free(req);
	X509_NAME_free(n);
}

/* A bad or missing subject: a clear error, nothing half-loaded. */
static void test_bad_subject(void **state)
{
	struct txn_state out;

	(void)state;
	write_file(T.path, HEAD "subject=zz\n", NULL);
	assert_int_equal(txn_state_load(T.path, &out), P11S_E_IO);
	assert_non_null(strstr(err_msg(), "bad subject"));
	assert_null(out.url);
	err_clear();

	write_file(T.path, HEAD "subject=3000ff\n", NULL);	/* trailing garbage */
	assert_int_equal(txn_state_load(T.path, &out), P11S_E_IO);
	err_clear();

	write_file(T.path, HEAD, NULL);
	assert_int_equal(txn_state_load(T.path, &out), P11S_E_IO);
	assert_non_null(strstr(err_msg(), "incomplete"));
	err_clear();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_old_file),
		cmocka_unit_test(test_bad_subject),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
