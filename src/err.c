#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "err.h"

/* Per thread: p11scep run works on several profiles at once. */
static _Thread_local char err_buf[512];

const char *err_str(enum p11s_err e)
{
	switch (e) {
	case P11S_OK:		return "success";
	case P11S_E_INTERNAL:	return "internal error";
	case P11S_E_NOMEM:	return "out of memory";
	case P11S_E_IO:		return "local file error";
	case P11S_E_USAGE:	return "usage or configuration error";
	case P11S_E_PENDING:	return "request pending approval";
	case P11S_E_REJECTED:	return "request rejected by the CA";
	case P11S_E_NETWORK:	return "network, HTTP or TLS error";
	case P11S_E_TOKEN:	return "token error";
	case P11S_E_PIN:	return "PIN error";
	case P11S_E_NOTFOUND:	return "object not found in the token";
	case P11S_E_UNTRUSTED:	return "untrusted response";
	case P11S_E_MALFORMED:	return "malformed response";
	}
	return "unknown error";
}

int err_exit_code(enum p11s_err e)
{
	switch (e) {
	case P11S_OK:		return 0;
	case P11S_E_USAGE:	return 2;
	case P11S_E_PENDING:	return 3;
	case P11S_E_REJECTED:	return 4;
	case P11S_E_NETWORK:	return 5;
	case P11S_E_TOKEN:
	case P11S_E_PIN:
	case P11S_E_NOTFOUND:	return 6;
	case P11S_E_UNTRUSTED:
	case P11S_E_MALFORMED:	return 7;
	case P11S_E_INTERNAL:
	case P11S_E_NOMEM:
	case P11S_E_IO:		break;
	}
	return 1;
}

static void err_vset(const char *fmt, va_list ap, int with_ssl)
	__attribute__((format(printf, 1, 0)));
static void err_vset(const char *fmt, va_list ap, int with_ssl)
{
	size_t n;

	if (err_buf[0] != '\0')
		return;
	vsnprintf(err_buf, sizeof(err_buf), fmt, ap);
	if (!with_ssl)
		return;
	unsigned long code = ERR_peek_error();
	const char *reason = code ? ERR_reason_error_string(code) : NULL;
	n = strlen(err_buf);
	if (reason != NULL)
		snprintf(err_buf + n, sizeof(err_buf) - n, ": %s", reason);
	else if (code != 0)
		snprintf(err_buf + n, sizeof(err_buf) - n, ": OpenSSL error 0x%lx", code);
}

enum p11s_err err_set(enum p11s_err e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(fmt, ap, 0);
	va_end(ap);
	return e;
}

enum p11s_err err_set_ssl(enum p11s_err e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(fmt, ap, 1);
	va_end(ap);
	return e;
}

const char *err_msg(void)
{
	return err_buf;
}

void err_clear(void)
{
	err_buf[0] = '\0';
	ERR_clear_error();
}
