#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "secret.h"

/*
 * Collects the first line of a byte stream into a caller's buffer. A CR is
 * held back until we know whether a LF follows, so that "secret\r\n" of
 * exactly the buffer's capacity still fits.
 */
struct line {
	char *buf;
	size_t cap;		/* bytes usable for text: buflen - 1 */
	size_t len;
	int held_cr;
	int done;		/* LF seen */
	int too_long;
	int has_nul;
};

static void line_init(struct line *l, char *buf, size_t buflen)
{
	memset(l, 0, sizeof(*l));
	l->buf = buf;
	l->cap = buflen - 1;
	buf[0] = '\0';
}

static void line_put(struct line *l, char c)
{
	if (l->len >= l->cap) {
		l->too_long = 1;
		return;
	}
	l->buf[l->len++] = c;
}

/* Feeds bytes; whatever follows the first LF is ignored. */
static void line_feed(struct line *l, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n && !l->done; i++) {
		if (p[i] == '\n') {
			l->done = 1;
			continue;
		}
		if (l->held_cr) {
			line_put(l, '\r');
			l->held_cr = 0;
		}
		if (p[i] == '\r')
			l->held_cr = 1;
		else if (p[i] == '\0')
			l->has_nul = 1;
		else
			line_put(l, p[i]);
	}
}

/* At end of input: a lone trailing CR is a line ending too. */
static void line_end(struct line *l)
{
	l->held_cr = 0;
	l->buf[l->len] = '\0';
}

void secret_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		OPENSSL_cleanse(p, n);
}

static enum p11s_err line_check(const struct line *l, const char *what)
{
	if (l->too_long)
		return err_set(P11S_E_USAGE, "secret in %s is longer than %zu bytes",
			       what, l->cap);
	if (l->has_nul)
		return err_set(P11S_E_USAGE, "secret in %s holds a NUL byte", what);
	if (l->len == 0)
		return err_set(P11S_E_USAGE, "%s is empty", what);
	return P11S_OK;
}

static enum p11s_err check_file(int fd, const char *path)
{
	struct stat st;

	if (fstat(fd, &st) == -1)
		return err_set(P11S_E_USAGE, "cannot stat challenge/PIN file %s: %s",
			       path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return err_set(P11S_E_USAGE,
			       "challenge/PIN file %s is not a regular file", path);
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return err_set(P11S_E_USAGE,
			       "challenge/PIN file %s is writable by other users: chmod go-w %s",
			       path, path);
	return P11S_OK;
}

static enum p11s_err read_line_fd(int fd, const char *path, struct line *l)
{
	char tmp[256];
	enum p11s_err r = P11S_OK;
	ssize_t n;

	while (!l->done && !l->too_long) {
		n = read(fd, tmp, sizeof(tmp));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			r = err_set(P11S_E_USAGE, "cannot read challenge/PIN file %s: %s",
				    path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		line_feed(l, tmp, (size_t)n);
	}
	line_end(l);
out:
	secret_wipe(tmp, sizeof(tmp));
	return r;
}

enum p11s_err secret_from_file(const char *path, char *buf, size_t buflen)
{
	struct line l;
	enum p11s_err r;
	int fd;

	if (buf == NULL || buflen < 2)
		return err_set(P11S_E_INTERNAL, "secret buffer too small");
	line_init(&l, buf, buflen);
	/* O_NONBLOCK: a FIFO must not hang us before fstat refuses it. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd == -1) {
		r = err_set(P11S_E_USAGE, "cannot open challenge/PIN file %s: %s",
			    path, strerror(errno));
		goto out;
	}
	r = check_file(fd, path);
	if (r != P11S_OK)
		goto out;
	r = read_line_fd(fd, path, &l);
	if (r != P11S_OK)
		goto out;
	r = line_check(&l, path);
out:
	if (fd != -1)
		close(fd);
	if (r != P11S_OK)
		secret_wipe(buf, buflen);
	return r;
}

enum p11s_err secret_from_env(const char *name, char *buf, size_t buflen)
{
	char *v;
	size_t n;

	if (buf == NULL || buflen < 2)
		return err_set(P11S_E_INTERNAL, "secret buffer too small");
	buf[0] = '\0';
	v = getenv(name);
	if (v == NULL)
		return P11S_E_NOTFOUND;
	n = strlen(v);
	if (n == 0)
		return err_set(P11S_E_USAGE, "environment variable %s is empty", name);
	if (n > buflen - 1)
		return err_set(P11S_E_USAGE,
			       "secret in environment variable %s is longer than %zu bytes",
			       name, buflen - 1);
	memcpy(buf, v, n + 1);
	/* Taken, not borrowed: the copy in the environment would outlive its
	 * use, show in /proc/PID/environ and pass to every child. */
	secret_wipe(v, n);
	unsetenv(name);
	return P11S_OK;
}

/*
 * OpenSSL frees ASN.1 strings, DER encodings and cipher buffers without
 * cleansing them, and the challenge passes through all of these: every block
 * is wiped as it goes back. Sizes come from the C library, so blocks that
 * OpenSSL's users allocate or free themselves still match.
 */
static void heap_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, malloc_usable_size(p));
	free(p);
}

static void *heap_malloc(size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return malloc(n);
}

/* Never realloc(): it may move the block and leave the old one unwiped. */
static void *heap_realloc(void *p, size_t n, const char *file, int line)
{
	size_t old;
	void *q;

	if (p == NULL)
		return malloc(n);
	if (n == 0) {
		heap_free(p, file, line);
		return NULL;
	}
	old = malloc_usable_size(p);
	if (old >= n)
		return p;
	q = malloc(n);
	if (q == NULL)
		return NULL;
	memcpy(q, p, old);
	heap_free(p, file, line);
	return q;
}

enum p11s_err secret_heap_init(void)
{
	if (CRYPTO_set_mem_functions(heap_malloc, heap_realloc, heap_free) != 1)
		return err_set(P11S_E_INTERNAL, "OpenSSL allocated memory before "
			       "secret_heap_init(): call it first in main()");
	return P11S_OK;
}

/*
 * Terminal prompt. While echo is off, termination and job-control signals
 * are blocked except while we wait for input (ppoll with the caller's mask),
 * so none can slip in between a check and a blocking read. A caught signal
 * ends the wait; the terminal is restored, then the signal is raised again
 * with the caller's disposition in place.
 */
static volatile sig_atomic_t prompt_signo;

static const int prompt_sigs[] = {
	SIGINT, SIGHUP, SIGQUIT, SIGTERM, SIGTSTP, SIGTTIN, SIGTTOU,
};
#define N_PROMPT_SIGS (sizeof(prompt_sigs) / sizeof(prompt_sigs[0]))

struct sig_state {
	struct sigaction old[N_PROMPT_SIGS];
	sigset_t oldmask;
};

static void prompt_handler(int signo)
{
	prompt_signo = signo;
}

static void sigs_catch(struct sig_state *ss)
{
	struct sigaction sa;
	sigset_t block;
	size_t i;

	sigemptyset(&block);
	for (i = 0; i < N_PROMPT_SIGS; i++)
		sigaddset(&block, prompt_sigs[i]);
	sigprocmask(SIG_BLOCK, &block, &ss->oldmask);
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = prompt_handler;
	for (i = 0; i < N_PROMPT_SIGS; i++)
		sigaction(prompt_sigs[i], &sa, &ss->old[i]);
	prompt_signo = 0;
}

static void sigs_restore(const struct sig_state *ss)
{
	size_t i;

	for (i = 0; i < N_PROMPT_SIGS; i++)
		sigaction(prompt_sigs[i], &ss->old[i], NULL);
	sigprocmask(SIG_SETMASK, &ss->oldmask, NULL);
}

static void write_all_fd(int fd, const char *s, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, s, n);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* Waits for input with the caller's signal mask; 0 when a signal came first. */
static int tty_wait(int fd, const sigset_t *mask)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	for (;;) {
		if (prompt_signo != 0)
			return 0;
		if (ppoll(&p, 1, NULL, mask) >= 0)
			return 1;
		if (errno != EINTR)
			return 1;	/* let read() report it */
	}
}

/* One byte at a time, so nothing after the line is taken from the terminal. */
static enum p11s_err tty_read_line(int fd, const sigset_t *mask, struct line *l)
{
	char c = 0;
	ssize_t n;

	while (!l->done && !l->too_long) {
		if (!tty_wait(fd, mask))
			return P11S_E_USAGE;	/* the caller re-raises the signal */
		n = read(fd, &c, 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return err_set(P11S_E_USAGE, "cannot read from the terminal: %s",
				       strerror(errno));
		if (n == 0)
			break;
		line_feed(l, &c, 1);
	}
	secret_wipe(&c, sizeof(c));
	line_end(l);
	return P11S_OK;
}

/* One attempt with echo off. *signo is the signal that cut it short, or 0. */
static enum p11s_err prompt_once(int fd, const char *prompt, struct line *l, int *signo)
{
	struct sig_state ss;
	struct termios saved, quiet;
	enum p11s_err r;

	*signo = 0;
	if (tcgetattr(fd, &saved) == -1)
		return P11S_E_NOTFOUND;
	sigs_catch(&ss);
	quiet = saved;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
	quiet.c_lflag |= ICANON;
	if (tcsetattr(fd, TCSAFLUSH, &quiet) == -1) {
		r = err_set(P11S_E_USAGE, "cannot turn off echo on the terminal: %s",
			    strerror(errno));
		goto out;
	}
	write_all_fd(fd, prompt, strlen(prompt));
	r = tty_read_line(fd, &ss.oldmask, l);
	/* The user's newline was not echoed: print it for them. */
	write_all_fd(fd, "\n", 1);
	while (tcsetattr(fd, TCSAFLUSH, &saved) == -1 && errno == EINTR)
		continue;
out:
	*signo = prompt_signo;
	sigs_restore(&ss);
	return r;
}

static int is_stop_signal(int signo)
{
	return signo == SIGTSTP || signo == SIGTTIN || signo == SIGTTOU;
}

enum p11s_err secret_prompt(const char *prompt, char *buf, size_t buflen)
{
	struct line l;
	enum p11s_err r;
	int fd, signo;

	if (buf == NULL || buflen < 2)
		return err_set(P11S_E_INTERNAL, "secret buffer too small");
	buf[0] = '\0';
	fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd == -1)
		return P11S_E_NOTFOUND;
	for (;;) {
		line_init(&l, buf, buflen);
		r = prompt_once(fd, prompt, &l, &signo);
		if (signo == 0)
			break;
		/* The terminal is restored: let the signal act as the caller wants. */
		raise(signo);
		if (!is_stop_signal(signo)) {
			r = err_set(P11S_E_USAGE, "reading from the terminal was interrupted");
			break;
		}
		/* Continued after a stop: ask again. */
	}
	if (r == P11S_OK)
		r = line_check(&l, "the line typed at the prompt");
	close(fd);
	if (r != P11S_OK)
		secret_wipe(buf, buflen);
	return r;
}
