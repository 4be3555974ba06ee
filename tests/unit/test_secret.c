#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "err.h"
#include "secret.h"

struct fixture {
	char dir[64];
	char path[PATH_MAX];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_secret.XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/pin", f->dir);
	err_clear();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* Writes exactly n bytes (NUL bytes allowed) with mode, whatever the umask. */
static void put_file(const char *path, const void *data, size_t n, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

static void put_str(const char *path, const char *s, mode_t mode)
{
	put_file(path, s, strlen(s), mode);
}

static void expect_file_ok(struct fixture *f, const char *content, const char *want)
{
	char buf[64];

	put_str(f->path, content, 0600);
	err_clear();
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(secret_from_file(f->path, buf, sizeof(buf)), P11S_OK);
	assert_string_equal(buf, want);
	assert_string_equal(err_msg(), "");
}

static void expect_file_err(const char *path, char *buf, size_t buflen,
			    const char *msg_part)
{
	memset(buf, 'x', buflen);
	err_clear();
	assert_int_equal(secret_from_file(path, buf, buflen), P11S_E_USAGE);
	/* Nothing of a refused secret stays in the buffer. */
	for (size_t i = 0; i < buflen; i++)
		assert_int_equal(buf[i], 0);
	if (strstr(err_msg(), msg_part) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", err_msg(), msg_part);
	assert_non_null(strstr(err_msg(), path));
}

static void test_file_normal(void **state)
{
	struct fixture *f = *state;

	expect_file_ok(f, "hunter2\n", "hunter2");
	expect_file_ok(f, "first\nsecond\n", "first");
	expect_file_ok(f, "with space \n", "with space ");
}

static void test_file_crlf(void **state)
{
	struct fixture *f = *state;

	expect_file_ok(f, "abc\r\n", "abc");
	expect_file_ok(f, "abc\r", "abc");
	/* Only a CR ending the line is stripped. */
	expect_file_ok(f, "a\rb\r\n", "a\rb");
}

static void test_file_no_newline(void **state)
{
	struct fixture *f = *state;

	expect_file_ok(f, "abc", "abc");
}

static void test_file_exact_fit(void **state)
{
	struct fixture *f = *state;
	char buf[8];

	put_str(f->path, "1234567\r\nrest", 0400);
	assert_int_equal(secret_from_file(f->path, buf, sizeof(buf)), P11S_OK);
	assert_string_equal(buf, "1234567");
	put_str(f->path, "1234567", 0400);
	assert_int_equal(secret_from_file(f->path, buf, sizeof(buf)), P11S_OK);
	assert_string_equal(buf, "1234567");
}

static void test_file_too_long(void **state)
{
	struct fixture *f = *state;
	char buf[8];
	char big[5000];

	put_str(f->path, "12345678\n", 0600);
	expect_file_err(f->path, buf, sizeof(buf), "longer than 7 bytes");
	put_str(f->path, "1234567x\r\n", 0600);
	expect_file_err(f->path, buf, sizeof(buf), "longer than 7 bytes");
	memset(big, 'a', sizeof(big));
	put_file(f->path, big, sizeof(big), 0600);
	expect_file_err(f->path, buf, sizeof(buf), "longer than 7 bytes");
}

static void test_file_empty(void **state)
{
	struct fixture *f = *state;
	char buf[16];

	put_str(f->path, "", 0600);
	expect_file_err(f->path, buf, sizeof(buf), "is empty");
	put_str(f->path, "\nsecond\n", 0600);
	expect_file_err(f->path, buf, sizeof(buf), "is empty");
	put_str(f->path, "\r\n", 0600);
	expect_file_err(f->path, buf, sizeof(buf), "is empty");
}

static void test_file_nul(void **state)
{
	struct fixture *f = *state;
	char buf[16];

	put_file(f->path, "ab\0cd\n", 6, 0600);
	expect_file_err(f->path, buf, sizeof(buf), "NUL");
}

static void test_file_world_writable(void **state)
{
	struct fixture *f = *state;
	char buf[16];

	put_str(f->path, "pin\n", 0602);
	expect_file_err(f->path, buf, sizeof(buf), "writable by other users: chmod go-w");
	put_str(f->path, "pin\n", 0666);
	expect_file_err(f->path, buf, sizeof(buf), "writable by other users");
}

static void test_file_group_writable(void **state)
{
	struct fixture *f = *state;
	char buf[16];

	put_str(f->path, "pin\n", 0620);
	expect_file_err(f->path, buf, sizeof(buf), "writable by other users");
	/* Readable by others is the user's business; writable is not. */
	expect_file_ok(f, "pin\n", "pin");
	assert_int_equal(chmod(f->path, 0644), 0);
	assert_int_equal(secret_from_file(f->path, buf, sizeof(buf)), P11S_OK);
}

static void test_file_directory(void **state)
{
	struct fixture *f = *state;
	char buf[16];

	expect_file_err(f->dir, buf, sizeof(buf), "not a regular file");
}

static void test_file_fifo(void **state)
{
	struct fixture *f = *state;
	char buf[16];

	/* Must be refused at once, not block waiting for a writer. */
	assert_int_equal(mkfifo(f->path, 0600), 0);
	expect_file_err(f->path, buf, sizeof(buf), "not a regular file");
}

static void test_file_symlink(void **state)
{
	struct fixture *f = *state;
	char link[PATH_MAX + 8];
	char buf[16];

	put_str(f->path, "linked\n", 0600);
	snprintf(link, sizeof(link), "%s.lnk", f->path);
	assert_int_equal(symlink(f->path, link), 0);
	assert_int_equal(secret_from_file(link, buf, sizeof(buf)), P11S_OK);
	assert_string_equal(buf, "linked");
	/* The mode checked is the target's, not the link's. */
	assert_int_equal(chmod(f->path, 0666), 0);
	expect_file_err(link, buf, sizeof(buf), "writable by other users");
}

static void test_file_missing(void **state)
{
	struct fixture *f = *state;
	char buf[16];

	expect_file_err(f->path, buf, sizeof(buf), "cannot open");
	assert_non_null(strstr(err_msg(), strerror(ENOENT)));
}

static void test_env(void **state)
{
	char buf[8];

	(void)state;
	assert_int_equal(unsetenv("P11SCEP_TEST_SECRET"), 0);
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(secret_from_env("P11SCEP_TEST_SECRET", buf, sizeof(buf)),
			 P11S_E_NOTFOUND);
	assert_string_equal(buf, "");
	assert_string_equal(err_msg(), "");

	assert_int_equal(setenv("P11SCEP_TEST_SECRET", "1234567", 1), 0);
	assert_int_equal(secret_from_env("P11SCEP_TEST_SECRET", buf, sizeof(buf)), P11S_OK);
	assert_string_equal(buf, "1234567");

	assert_int_equal(setenv("P11SCEP_TEST_SECRET", "12345678", 1), 0);
	assert_int_equal(secret_from_env("P11SCEP_TEST_SECRET", buf, sizeof(buf)),
			 P11S_E_USAGE);
	assert_string_equal(buf, "");
	assert_non_null(strstr(err_msg(), "P11SCEP_TEST_SECRET"));
	assert_non_null(strstr(err_msg(), "longer than 7 bytes"));
	assert_null(strstr(err_msg(), "12345678"));

	err_clear();
	assert_int_equal(setenv("P11SCEP_TEST_SECRET", "", 1), 0);
	assert_int_equal(secret_from_env("P11SCEP_TEST_SECRET", buf, sizeof(buf)),
			 P11S_E_USAGE);
	assert_non_null(strstr(err_msg(), "empty"));
	unsetenv("P11SCEP_TEST_SECRET");
}

static void test_wipe(void **state)
{
	char buf[16];

	(void)state;
	memset(buf, 'x', sizeof(buf));
	secret_wipe(buf, sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);
	secret_wipe(NULL, 10);
}

/*
 * secret_prompt on a real pseudo-terminal: a child becomes a session leader
 * with the pty's slave as its controlling terminal, and we type on the master.
 */
struct pty_child {
	int master;
	int slave;	/* kept open here so the pty outlives the child */
	int result;	/* pipe: the child reports what it read */
	pid_t pid;
};

static void child_prompt(const char *slave_name, int result_fd)
{
	char buf[32];
	enum p11s_err r;
	int fd;

	if (setsid() == -1)
		_exit(100);
	fd = open(slave_name, O_RDWR);
	if (fd == -1)
		_exit(101);
	r = secret_prompt("PIN: ", buf, sizeof(buf));
	dprintf(result_fd, "%d:%s", (int)r, r == P11S_OK ? buf : err_msg());
	_exit(0);
}

static int echo_is_on(int fd)
{
	struct termios t;

	assert_int_equal(tcgetattr(fd, &t), 0);
	return (t.c_lflag & ECHO) != 0;
}

static void pty_start(struct pty_child *c)
{
	const char *name;
	int fds[2];

	c->master = posix_openpt(O_RDWR | O_NOCTTY);
	assert_true(c->master >= 0);
	assert_int_equal(grantpt(c->master), 0);
	assert_int_equal(unlockpt(c->master), 0);
	name = ptsname(c->master);
	assert_non_null(name);
	c->slave = open(name, O_RDWR | O_NOCTTY);
	assert_true(c->slave >= 0);
	/* Checked before the child runs: it may turn echo off at once. */
	assert_true(echo_is_on(c->slave));
	assert_int_equal(pipe(fds), 0);
	c->pid = fork();
	assert_true(c->pid >= 0);
	if (c->pid == 0) {
		close(fds[0]);
		close(c->master);
		close(c->slave);
		child_prompt(name, fds[1]);
	}
	close(fds[1]);
	c->result = fds[0];
}

/* Reads from the master until want appears (or 5 s pass); all of it into out. */
static void pty_expect(int master, const char *want, char *out, size_t outlen)
{
	size_t len = strlen(out);
	struct pollfd p = { .fd = master, .events = POLLIN };
	ssize_t n;

	while (strstr(out, want) == NULL) {
		if (poll(&p, 1, 5000) != 1)
			fail_msg("no \"%s\" from the prompt; saw \"%s\"", want, out);
		n = read(master, out + len, outlen - len - 1);
		if (n <= 0)
			fail_msg("pty read: %s", strerror(errno));
		len += (size_t)n;
		out[len] = '\0';
	}
}

/* Drains what the child still writes to the terminal, without blocking. */
static void pty_drain(int master, char *out, size_t outlen)
{
	size_t len = strlen(out);
	struct pollfd p = { .fd = master, .events = POLLIN };
	ssize_t n;

	while (len < outlen - 1 && poll(&p, 1, 200) == 1) {
		n = read(master, out + len, outlen - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
		out[len] = '\0';
	}
}


static void pty_finish(struct pty_child *c, int *status, char *res, size_t reslen)
{
	ssize_t n;

	assert_int_equal(waitpid(c->pid, status, 0), c->pid);
	n = read(c->result, res, reslen - 1);
	res[n > 0 ? n : 0] = '\0';
	close(c->result);
}

static void pty_close(struct pty_child *c)
{
	close(c->slave);
	close(c->master);
}

static void test_prompt_reads_without_echo(void **state)
{
	struct pty_child c;
	char seen[512] = "", res[128];
	int status;

	(void)state;
	pty_start(&c);
	pty_expect(c.master, "PIN: ", seen, sizeof(seen));
	assert_false(echo_is_on(c.slave));
	assert_int_equal(write(c.master, "s3cret pin\n", 11), 11);
	pty_finish(&c, &status, res, sizeof(res));
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_string_equal(res, "0:s3cret pin");
	pty_drain(c.master, seen, sizeof(seen));
	/* Never echoed; the newline the user typed is shown. */
	assert_null(strstr(seen, "s3cret"));
	assert_non_null(strstr(seen, "PIN: \r\n"));
	assert_true(echo_is_on(c.slave));
	pty_close(&c);
}

static void test_prompt_too_long(void **state)
{
	struct pty_child c;
	char seen[512] = "", res[256];
	char line[80];
	int status;

	(void)state;
	pty_start(&c);
	pty_expect(c.master, "PIN: ", seen, sizeof(seen));
	memset(line, 'p', sizeof(line));
	line[sizeof(line) - 1] = '\n';
	assert_int_equal(write(c.master, line, sizeof(line)), (ssize_t)sizeof(line));
	pty_finish(&c, &status, res, sizeof(res));
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_non_null(strstr(res, "longer than 31 bytes"));
	assert_int_equal(strncmp(res, "4:", 2), 0);	/* P11S_E_USAGE */
	assert_true(echo_is_on(c.slave));
	pty_close(&c);
}

static void test_prompt_sigint_restores_terminal(void **state)
{
	struct pty_child c;
	char seen[512] = "", res[128];
	int status;

	(void)state;
	pty_start(&c);
	pty_expect(c.master, "PIN: ", seen, sizeof(seen));
	assert_false(echo_is_on(c.slave));
	assert_int_equal(write(c.master, "part\x03", 5), 5);	/* typed, then ^C */
	pty_finish(&c, &status, res, sizeof(res));
	/* The default action still happens, after the terminal was restored. */
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGINT);
	assert_string_equal(res, "");
	assert_true(echo_is_on(c.slave));
	pty_close(&c);
}

static void test_prompt_stop_asks_again(void **state)
{
	struct pty_child c;
	char seen[512] = "", res[128];
	int status;

	(void)state;
	pty_start(&c);
	pty_expect(c.master, "PIN: ", seen, sizeof(seen));
	assert_int_equal(write(c.master, "x\x1a", 2), 2);	/* ^Z */
	/*
	 * The child's process group is orphaned, so the kernel drops the stop;
	 * what matters is that the terminal was restored and we asked again.
	 */
	pty_expect(c.master, "PIN: \r\nPIN: ", seen, sizeof(seen));
	assert_false(echo_is_on(c.slave));
	assert_int_equal(write(c.master, "again\n", 6), 6);
	pty_finish(&c, &status, res, sizeof(res));
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_string_equal(res, "0:again");
	assert_true(echo_is_on(c.slave));
	pty_close(&c);
}

static void test_prompt_no_tty(void **state)
{
	char res[128];
	int fds[2], status;
	pid_t pid;
	ssize_t n;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char buf[16];
		enum p11s_err r;

		close(fds[0]);
		if (setsid() == -1)	/* no controlling terminal any more */
			_exit(100);
		r = secret_prompt("PIN: ", buf, sizeof(buf));
		dprintf(fds[1], "%d:%s:%s", (int)r, buf, err_msg());
		_exit(0);
	}
	close(fds[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	n = read(fds[0], res, sizeof(res) - 1);
	res[n > 0 ? n : 0] = '\0';
	close(fds[0]);
	/* P11S_E_NOTFOUND, empty buffer, no message. */
	assert_string_equal(res, "10::");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_file_normal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_crlf, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_no_newline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_exact_fit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_nul, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_world_writable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_group_writable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_fifo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env, setup, teardown),
		cmocka_unit_test(test_wipe),
		cmocka_unit_test_setup_teardown(test_prompt_reads_without_echo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prompt_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prompt_sigint_restores_terminal, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_prompt_stop_asks_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prompt_no_tty, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
