/* Messages for people on stderr. Never pass a PIN, challenge or key material here. */
#ifndef P11SCEP_LOG_H
#define P11SCEP_LOG_H

void log_set_verbose(int level);
int log_verbose(void);

/* Only with -v: progress and per-step timings. */
void log_v(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Always: what the agent did, one line (stderr, and syslog when stderr is no terminal). */
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same at a syslog priority (LOG_INFO, LOG_NOTICE, LOG_ERR). */
void log_event(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Always: warnings and notes for the user. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Milliseconds on a monotonic clock, for -v timings. */
double log_now_ms(void);

/* With --timings: "p11scep: timing: STEP MS ms" for a step begun at t0 (log_now_ms()). */
void log_set_timings(int on);
void log_timing(const char *step, double t0);

#endif
