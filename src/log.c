#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int verbose_level;
static int timings_on;

void log_set_verbose(int level)
{
	verbose_level = level;
}

int log_verbose(void)
{
	return verbose_level;
}

void log_v(const char *fmt, ...)
{
	va_list ap;

	if (verbose_level <= 0)
		return;
	va_start(ap, fmt);
	fputs("p11scep: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void log_vevent(int prio, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static void log_vevent(int prio, const char *fmt, va_list ap)
{
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	fprintf(stderr, "p11scep: %s\n", line);
	if (!isatty(STDERR_FILENO))
		syslog(prio, "%s", line);
}

void log_event(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vevent(prio, fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vevent(LOG_NOTICE, fmt, ap);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("p11scep: warning: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

double log_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

void log_set_timings(int on)
{
	timings_on = on;
}

void log_timing(const char *step, double t0)
{
	if (timings_on)
		fprintf(stderr, "p11scep: timing: %s %.2f ms\n", step, log_now_ms() - t0);
}
