#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "err.h"
#include "output.h"

struct fixture {
	char dir[64];
	char path[PATH_MAX];	/* dir/out.pem */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_output.XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/out.pem", f->dir);
	err_clear();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "chmod -R u+w '%s'; rm -rf '%s'", f->dir, f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void put_str(const char *path, const char *s, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

/* The whole file as a string (test files are small). */
static void slurp(const char *path, char *buf, size_t buflen)
{
	FILE *fp = fopen(path, "rb");
	size_t n;

	assert_non_null(fp);
	n = fread(buf, 1, buflen - 1, fp);
	buf[n] = '\0';
	fclose(fp);
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

/* Entries of dir other than . and ..; names into out (space-separated). */
static int dir_entries(const char *dir, char *out, size_t outlen)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t used = 0;
	int n = 0;

	assert_non_null(d);
	out[0] = '\0';
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		n++;
		if (used < outlen)
			used += (size_t)snprintf(out + used, outlen - used, "%s ", e->d_name);
	}
	closedir(d);
	return n;
}

/* No temp file of ours may be left behind: exactly the expected entries. */
static void expect_entries(const char *dir, int want)
{
	char names[1024];
	int n = dir_entries(dir, names, sizeof(names));

	if (n != want)
		fail_msg("%s holds %d entries, want %d: %s", dir, n, want, names);
	if (strstr(names, ".out.pem.") != NULL)
		fail_msg("temp file left in %s: %s", dir, names);
}

static void expect_msg(const char *part)
{
	if (strstr(err_msg(), part) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", err_msg(), part);
}

static void test_write_new(void **state)
{
	struct fixture *f = *state;
	char buf[64];
	mode_t old = umask(077);

	assert_int_equal(out_write_atomic(f->path, "hello\n", 6, 0644), P11S_OK);
	umask(old);
	slurp(f->path, buf, sizeof(buf));
	assert_string_equal(buf, "hello\n");
	/* The requested mode exactly, whatever the umask. */
	assert_int_equal(mode_of(f->path), 0644);
	expect_entries(f->dir, 1);
	assert_string_equal(err_msg(), "");
}

static void test_write_empty_and_private(void **state)
{
	struct fixture *f = *state;
	char buf[8];

	assert_int_equal(out_write_atomic(f->path, "", 0, 0600), P11S_OK);
	slurp(f->path, buf, sizeof(buf));
	assert_string_equal(buf, "");
	assert_int_equal(mode_of(f->path), 0600);
}

static void test_replace_existing(void **state)
{
	struct fixture *f = *state;
	struct stat before, after;
	char buf[64];

	put_str(f->path, "old content that is longer\n", 0600);
	assert_int_equal(stat(f->path, &before), 0);
	assert_int_equal(out_write_atomic(f->path, "new\n", 4, 0644), P11S_OK);
	slurp(f->path, buf, sizeof(buf));
	assert_string_equal(buf, "new\n");
	assert_int_equal(mode_of(f->path), 0644);
	/* Replaced by rename, not rewritten in place. */
	assert_int_equal(stat(f->path, &after), 0);
	assert_true(before.st_ino != after.st_ino);
	expect_entries(f->dir, 1);
}

static void test_bare_name(void **state)
{
	struct fixture *f = *state;
	char cwd[PATH_MAX], buf[16];

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(f->dir), 0);
	assert_int_equal(out_write_atomic("out.pem", "bare", 4, 0640), P11S_OK);
	assert_int_equal(chdir(cwd), 0);
	slurp(f->path, buf, sizeof(buf));
	assert_string_equal(buf, "bare");
	assert_int_equal(mode_of(f->path), 0640);
	expect_entries(f->dir, 1);
}

static void test_not_a_file_name(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX + 8];

	snprintf(path, sizeof(path), "%s/", f->dir);
	assert_int_equal(out_write_atomic(path, "x", 1, 0644), P11S_E_USAGE);
	expect_msg("does not name a file");
	expect_entries(f->dir, 0);
}

static void test_missing_directory(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/nodir/out.pem", f->dir);
	assert_int_equal(out_write_atomic(path, "x", 1, 0644), P11S_E_IO);
	expect_msg(path);
	expect_msg(strerror(ENOENT));
	expect_entries(f->dir, 0);
}

/* Fails for root too: a path through a regular file. */
static void test_directory_is_a_file(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX + 16];

	put_str(f->path, "keep\n", 0600);
	snprintf(path, sizeof(path), "%s/out.pem", f->path);
	assert_int_equal(out_write_atomic(path, "x", 1, 0644), P11S_E_IO);
	expect_msg(path);
	expect_msg(strerror(ENOTDIR));
	expect_entries(f->dir, 1);
}

/*
 * Permissions are not enforced for root, and CI runs as root: then the write
 * is tried by a child that has dropped to user nobody.
 */
static int write_as_unprivileged(const char *path)
{
	pid_t pid;
	int status;

	if (geteuid() != 0)
		return out_write_atomic(path, "x", 1, 0644) == P11S_E_IO &&
		       strstr(err_msg(), strerror(EACCES)) != NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(2);
		_exit(out_write_atomic(path, "x", 1, 0644) == P11S_E_IO &&
		      strstr(err_msg(), strerror(EACCES)) != NULL ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void test_read_only_directory(void **state)
{
	struct fixture *f = *state;
	char ro[PATH_MAX + 8], path[PATH_MAX + 16], buf[16];

	snprintf(ro, sizeof(ro), "%s/ro", f->dir);
	snprintf(path, sizeof(path), "%s/out.pem", ro);
	assert_int_equal(chmod(f->dir, 0755), 0);
	assert_int_equal(mkdir(ro, 0755), 0);
	put_str(path, "keep\n", 0644);
	assert_int_equal(chmod(ro, 0555), 0);
	assert_true(write_as_unprivileged(path));
	slurp(path, buf, sizeof(buf));
	assert_string_equal(buf, "keep\n");
	expect_entries(ro, 1);
}

/* rename() over a directory fails: the directory and its contents stay. */
static void test_target_is_directory(void **state)
{
	struct fixture *f = *state;
	char inner[PATH_MAX + 16], buf[16];

	assert_int_equal(mkdir(f->path, 0700), 0);
	snprintf(inner, sizeof(inner), "%s/inside", f->path);
	put_str(inner, "inside\n", 0600);
	assert_int_equal(out_write_atomic(f->path, "x", 1, 0644), P11S_E_IO);
	expect_msg(f->path);
	expect_msg(strerror(EISDIR));
	slurp(inner, buf, sizeof(buf));
	assert_string_equal(buf, "inside\n");
	assert_int_equal(mode_of(f->path), 0700);
	expect_entries(f->dir, 1);
	expect_entries(f->path, 1);
}

/*
 * A write that fails half-way (RLIMIT_FSIZE; works for root too): the
 * existing file keeps its content, mode and inode, and no temp file stays.
 */
static void test_write_fails_existing_untouched(void **state)
{
	struct fixture *f = *state;
	struct stat before, after;
	struct rlimit old, lim;
	void (*oldsig)(int);
	char data[8192], buf[64];
	enum p11s_err r;

	put_str(f->path, "precious\n", 0600);
	assert_int_equal(stat(f->path, &before), 0);
	memset(data, 'z', sizeof(data));
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 1000;
	oldsig = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	r = out_write_atomic(f->path, data, sizeof(data), 0644);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, oldsig);

	assert_int_equal(r, P11S_E_IO);
	expect_msg(f->path);
	expect_msg(strerror(EFBIG));
	slurp(f->path, buf, sizeof(buf));
	assert_string_equal(buf, "precious\n");
	assert_int_equal(stat(f->path, &after), 0);
	assert_int_equal(before.st_ino, after.st_ino);
	assert_int_equal(mode_of(f->path), 0600);
	expect_entries(f->dir, 1);
}

static X509 *make_cert(const char *cn, long serial)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();

	assert_non_null(key);
	assert_non_null(x);
	assert_non_null(name);
	assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					       (const unsigned char *)cn, -1, -1, 0));
	assert_true(X509_set_version(x, X509_VERSION_3));
	assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), serial));
	assert_true(X509_set_subject_name(x, name));
	assert_true(X509_set_issuer_name(x, name));
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	assert_true(X509_set_pubkey(x, key));
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	X509_NAME_free(name);
	EVP_PKEY_free(key);
	return x;
}

static void test_pem_round_trip(void **state)
{
	struct fixture *f = *state;
	X509 *certs[2], *back;
	mode_t old = umask(077);
	BIO *in;
	int i;

	certs[0] = make_cert("leaf", 2);
	certs[1] = make_cert("issuer", 1);
	assert_int_equal(out_write_pem_certs(f->path, certs, 2), P11S_OK);
	umask(old);
	assert_int_equal(mode_of(f->path), 0644);
	in = BIO_new_file(f->path, "r");
	assert_non_null(in);
	for (i = 0; i < 2; i++) {
		back = PEM_read_bio_X509(in, NULL, NULL, NULL);
		assert_non_null(back);
		/* Same certificates, same order. */
		assert_int_equal(X509_cmp(back, certs[i]), 0);
		X509_free(back);
	}
	assert_null(PEM_read_bio_X509(in, NULL, NULL, NULL));
	BIO_free(in);
	err_clear();
	expect_entries(f->dir, 1);

	assert_int_equal(out_write_pem_certs(f->path, certs, 0), P11S_E_INTERNAL);
	X509_free(certs[0]);
	X509_free(certs[1]);
}

static void test_read_all_limits(void **state)
{
	struct fixture *f = *state;
	unsigned char *data = NULL;
	size_t len = 99;

	put_str(f->path, "0123456789", 0600);
	assert_int_equal(file_read_all(f->path, 10, &data, &len), P11S_OK);
	assert_int_equal(len, 10);
	assert_memory_equal(data, "0123456789", 10);
	assert_int_equal(data[10], '\0');
	free(data);

	data = (unsigned char *)"junk";
	assert_int_equal(file_read_all(f->path, 9, &data, &len), P11S_E_IO);
	assert_null(data);
	assert_int_equal(len, 0);
	expect_msg(f->path);
	expect_msg("larger than 9 bytes");

	put_str(f->path, "", 0600);
	assert_int_equal(file_read_all(f->path, 0, &data, &len), P11S_OK);
	assert_int_equal(len, 0);
	assert_int_equal(data[0], '\0');
	free(data);
}

static void test_read_all_bad_paths(void **state)
{
	struct fixture *f = *state;
	unsigned char *data = NULL;
	size_t len;

	assert_int_equal(file_read_all(f->path, 100, &data, &len), P11S_E_IO);
	assert_null(data);
	expect_msg(f->path);
	expect_msg(strerror(ENOENT));
	err_clear();
	assert_int_equal(file_read_all(f->dir, 100, &data, &len), P11S_E_IO);
	assert_null(data);
	expect_msg("directory");
}

/* Sizes not known in advance: an endless device and a pipe. */
static void test_read_all_unsized(void **state)
{
	unsigned char *data = NULL;
	char path[64];
	size_t len, i;
	int fds[2];
	pid_t pid;

	(void)state;
	assert_int_equal(file_read_all("/dev/zero", 100000, &data, &len), P11S_E_IO);
	assert_null(data);
	expect_msg("larger than 100000 bytes");
	err_clear();

	assert_int_equal(file_read_all("/dev/null", 10, &data, &len), P11S_OK);
	assert_int_equal(len, 0);
	free(data);

	/* 50000 bytes through a pipe: the buffer must grow past its first page. */
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char chunk[1000];

		close(fds[0]);
		for (i = 0; i < 50; i++) {
			memset(chunk, 'a' + (int)(i % 26), sizeof(chunk));
			if (write(fds[1], chunk, sizeof(chunk)) != (ssize_t)sizeof(chunk))
				_exit(1);
		}
		_exit(0);
	}
	close(fds[1]);
	snprintf(path, sizeof(path), "/dev/fd/%d", fds[0]);
	assert_int_equal(file_read_all(path, 50000, &data, &len), P11S_OK);
	close(fds[0]);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_int_equal(len, 50000);
	for (i = 0; i < len; i++)
		assert_int_equal(data[i], 'a' + (int)((i / 1000) % 26));
	assert_int_equal(data[len], '\0');
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_new, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_empty_and_private, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replace_existing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bare_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_file_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_directory_is_a_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_target_is_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_fails_existing_untouched, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pem_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_all_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_all_bad_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_all_unsized, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
