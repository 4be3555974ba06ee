/*
 * proc-time: one process's wall clock, exit, peak RSS and page faults, for
 * bench/run.sh. Spawned and reaped from C, so that the figures hold the
 * process and not a shell's fork, a `timeout` and a `time` around it.
 *
 *   proc-time [-t SECONDS] [-i IN] [-o OUT] [-e ERR] -- CMD [ARGS...]
 *
 * Runs CMD (found in PATH) with stdin from IN and stdout, stderr to OUT, ERR
 * (each /dev/null when not given) and prints one line on its own stdout:
 *
 *   WALL_MS EXIT MAXRSS_KIB MINFLT
 *
 * WALL_MS from just before the spawn to the child reaped (CLOCK_MONOTONIC),
 * EXIT the exit code or 128 + the signal, MAXRSS_KIB and MINFLT are the
 * child's ru_maxrss and ru_minflt from wait4. With -t, after SECONDS the
 * child (that PID only) gets SIGTERM, a second later SIGKILL, and EXIT is 124.
 * proc-time exits 0 once CMD ran, else 127 with one line on stderr. Built
 * outside configure, hence no config.h.
 */
#define _DEFAULT_SOURCE
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NO_SPAWN	127
#define TIMED_OUT	124

extern char **environ;

struct opts {
	double limit;		/* seconds; 0: none */
	const char *in, *out, *err;
	char **argv;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int parse(int argc, char **argv, struct opts *o)
{
	char *end;
	int c;

	memset(o, 0, sizeof(*o));
	o->in = o->out = o->err = "/dev/null";
	while ((c = getopt(argc, argv, "+t:i:o:e:")) != -1) {
		switch (c) {
		case 't':
			errno = 0;
			o->limit = strtod(optarg, &end);
			if (errno != 0 || end == optarg || *end != '\0' || !(o->limit > 0) ||
			    o->limit > 1e6)
				return -1;
			break;
		case 'i': o->in = optarg; break;
		case 'o': o->out = optarg; break;
		case 'e': o->err = optarg; break;
		default: return -1;
		}
	}
	if (optind >= argc)
		return -1;
	o->argv = argv + optind;
	return 0;
}

/* IN, OUT and ERR, opened here so that a failure names its file. */
static int open_std(const struct opts *o, int fd[3])
{
	const char *path[3] = { o->in, o->out, o->err };
	int i;

	for (i = 0; i < 3; i++) {
		fd[i] = open(path[i], (i == 0 ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC) |
			     O_CLOEXEC, 0666);
		if (fd[i] == -1) {
			fprintf(stderr, "proc-time: cannot open %s: %s\n", path[i], strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* The child's stdin, stdout and stderr, and an unblocked SIGCHLD. */
static int spawn_setup(const int fd[3], posix_spawn_file_actions_t *fa, posix_spawnattr_t *sa)
{
	sigset_t none;

	sigemptyset(&none);
	if (posix_spawn_file_actions_init(fa) != 0)
		return -1;
	if (posix_spawnattr_init(sa) != 0) {
		posix_spawn_file_actions_destroy(fa);
		return -1;
	}
	if (posix_spawn_file_actions_adddup2(fa, fd[0], 0) != 0 ||
	    posix_spawn_file_actions_adddup2(fa, fd[1], 1) != 0 ||
	    posix_spawn_file_actions_adddup2(fa, fd[2], 2) != 0 ||
	    posix_spawnattr_setsigmask(sa, &none) != 0 ||
	    posix_spawnattr_setflags(sa, POSIX_SPAWN_SETSIGMASK) != 0) {
		fprintf(stderr, "proc-time: cannot prepare the spawn\n");
		posix_spawn_file_actions_destroy(fa);
		posix_spawnattr_destroy(sa);
		return -1;
	}
	return 0;
}

/*
 * Reaps pid. SIGCHLD is blocked, so an exit between the WNOHANG look and
 * sigtimedwait stays pending and wakes it: no race. Returns 1 if the time
 * ran out (and the child was killed), 0 if not, -1 on error.
 */
static int reap(pid_t pid, double t0, double limit, int *status, struct rusage *ru)
{
	double deadline = t0 + limit * 1e3, left;
	sigset_t chld;
	struct timespec ts;
	int sent = 0;
	pid_t r;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (;;) {
		r = wait4(pid, status, limit > 0 && sent < 2 ? WNOHANG : 0, ru);
		if (r == pid)
			return sent > 0;
		if (r == -1 && errno != EINTR)
			return -1;
		if (r != 0)
			continue;
		left = deadline - now_ms();
		if (left <= 0) {
			kill(pid, sent == 0 ? SIGTERM : SIGKILL);
			sent++;
			deadline = now_ms() + 1e3;
			continue;
		}
		ts.tv_sec = (time_t)(left / 1e3);
		ts.tv_nsec = (long)((left - (double)ts.tv_sec * 1e3) * 1e6);
		sigtimedwait(&chld, NULL, &ts);
	}
}

static int exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;
}

int main(int argc, char **argv)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t sa;
	struct rusage ru;
	struct opts o;
	sigset_t chld;
	double t0, ms;
	int i, rc, status, late, fd[3] = { -1, -1, -1 };
	pid_t pid;

	if (parse(argc, argv, &o) != 0) {
		fprintf(stderr, "usage: proc-time [-t SECONDS] [-i IN] [-o OUT] [-e ERR] -- CMD [ARGS...]\n");
		return NO_SPAWN;
	}
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &chld, NULL) != 0 || open_std(&o, fd) != 0 ||
	    spawn_setup(fd, &fa, &sa) != 0)
		return NO_SPAWN;
	t0 = now_ms();
	rc = posix_spawnp(&pid, o.argv[0], &fa, &sa, o.argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&sa);
	for (i = 0; i < 3; i++)
		close(fd[i]);
	if (rc != 0) {
		fprintf(stderr, "proc-time: cannot run %s: %s\n", o.argv[0], strerror(rc));
		return NO_SPAWN;
	}
	late = reap(pid, t0, o.limit, &status, &ru);
	ms = now_ms() - t0;
	if (late < 0) {
		fprintf(stderr, "proc-time: waiting for %s: %s\n", o.argv[0], strerror(errno));
		return NO_SPAWN;
	}
	printf("%.2f %d %ld %ld\n", ms, late ? TIMED_OUT : exit_code(status), ru.ru_maxrss,
	       ru.ru_minflt);
	return 0;
}
