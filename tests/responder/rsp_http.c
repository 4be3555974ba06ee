#include "config.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <openssl/crypto.h>

#include "responder.h"

/*
 * HTTP/1.1 on 127.0.0.1, one thread: poll() over the listener and up to
 * MAX_CONNS keep-alive connections, each with its own request buffer.
 */
#define MAX_CONNS	32
#define MAX_HEAD	16384
#define MAX_QUERY	(3 * RSP_MAX_BODY)

struct conn {
	int fd;
	char *buf;
	size_t len, cap;
	int sent_continue;
};

struct head {
	char method[8];
	char *target;			/* points into the buffer */
	size_t head_len;
	long clen;
	int close;
	int expect;
	int chunked;
};

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *b = p;
	ssize_t w;

	while (n > 0) {
		w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 302: return "Found";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	}
	return "Status";
}

/* --evil huge: junk with no Content-Length; the end of the body is the close. */
static int send_stream(int fd, size_t total)
{
	static unsigned char chunk[65536];
	size_t n;

	memset(chunk, 0x30, sizeof(chunk));
	while (total > 0) {
		n = total < sizeof(chunk) ? total : sizeof(chunk);
		if (write_all(fd, chunk, n) != 0)
			return -1;
		total -= n;
	}
	return 0;
}

static int send_resp(int fd, const struct rsp_resp *resp, int keep)
{
	char h[768], len[64], loc[256];
	int n;

	if (resp->stream_len > 0)
		keep = 0;
	len[0] = '\0';
	loc[0] = '\0';
	if (resp->stream_len == 0)
		snprintf(len, sizeof(len), "Content-Length: %zu\r\n", resp->len);
	if (resp->location != NULL)
		snprintf(loc, sizeof(loc), "Location: %s\r\n", resp->location);
	n = snprintf(h, sizeof(h), "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "%s%sConnection: %s\r\n\r\n", resp->status,
	    reason(resp->status), resp->ctype != NULL ? resp->ctype : "text/plain",
	    len, loc, keep ? "keep-alive" : "close");
	if (n < 0 || (size_t)n >= sizeof(h))
		return -1;
	if (write_all(fd, h, (size_t)n) != 0)
		return -1;
	if (resp->stream_len > 0)
		return send_stream(fd, resp->stream_len);
	return resp->len > 0 ? write_all(fd, resp->body, resp->len) : 0;
}

static void send_error(struct rsp *r, int fd, int status, const char *why)
{
	struct rsp_resp resp;

	char text[128];

	memset(&resp, 0, sizeof(resp));
	snprintf(text, sizeof(text), "%s\n", why);
	rsp_resp_text(&resp, status, text);
	send_resp(fd, &resp, 0);
	OPENSSL_free(resp.body);
	rsp_log(r, "op=http status=%d reason=\"%s\"", status, why);
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Percent-decodes n bytes of s into a new string; '+' is a space (forms). */
static char *pct_decode(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	size_t i, o = 0;
	int hi, lo;

	if (d == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (s[i] == '%') {
			if (i + 2 >= n)
				goto bad;
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				goto bad;
			d[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			d[o++] = s[i] == '+' ? ' ' : s[i];
		}
	}
	d[o] = '\0';
	if (strlen(d) != o)
		goto bad;		/* an encoded NUL */
	return d;
bad:
	free(d);
	return NULL;
}

/* The decoded value of key= in the query, NULL when absent; *bad on junk. */
static char *query_get(const char *q, const char *key, int *bad)
{
	size_t klen = strlen(key), n;
	const char *p = q;
	char *v;

	while (p != NULL && *p != '\0') {
		n = strcspn(p, "&");
		if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
			v = pct_decode(p + klen + 1, n - klen - 1);
			if (v == NULL)
				*bad = 1;
			return v;
		}
		p += n;
		if (*p == '&')
			p++;
	}
	return NULL;
}

static int parse_clen(const char *v, long *out)
{
	long n = 0;

	v += strspn(v, " \t");
	if (*v < '0' || *v > '9')
		return -1;
	while (*v >= '0' && *v <= '9') {
		if (n > LONG_MAX / 10 - 10)
			return -1;
		n = n * 10 + (*v++ - '0');
	}
	v += strspn(v, " \t");
	if (*v != '\0')
		return -1;
	*out = n;
	return 0;
}

static int header_line(struct head *h, char *line)
{
	char *colon = strchr(line, ':');
	char *v;

	if (colon == NULL)
		return -1;
	*colon = '\0';
	v = colon + 1;
	v += strspn(v, " \t");
	if (strcasecmp(line, "Content-Length") == 0)
		return h->clen >= 0 || parse_clen(v, &h->clen) != 0 ? -1 : 0;
	if (strcasecmp(line, "Transfer-Encoding") == 0)
		h->chunked = 1;
	else if (strcasecmp(line, "Connection") == 0 && strncasecmp(v, "close", 5) == 0)
		h->close = 1;
	else if (strcasecmp(line, "Expect") == 0 && strncasecmp(v, "100-continue", 12) == 0)
		h->expect = 1;
	return 0;
}

/* Parses the head (NUL-terminated in place); -1 on a malformed request. */
static int parse_head(char *buf, struct head *h)
{
	char *line, *next, *sp1, *sp2;

	h->clen = -1;
	next = strstr(buf, "\r\n");
	if (next == NULL)
		return -1;
	*next = '\0';
	line = buf;
	sp1 = strchr(line, ' ');
	sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
	if (sp1 == NULL || sp2 == NULL || (size_t)(sp1 - line) >= sizeof(h->method) ||
	    strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return -1;
	memcpy(h->method, line, (size_t)(sp1 - line));
	h->method[sp1 - line] = '\0';
	*sp2 = '\0';
	h->target = sp1 + 1;
	if (strcmp(sp2 + 1, "HTTP/1.0") == 0)
		h->close = 1;
	for (line = next + 2; *line != '\0'; line = next + 2) {
		next = strstr(line, "\r\n");
		if (next == NULL)
			return -1;
		*next = '\0';
		if (header_line(h, line) != 0)
			return -1;
	}
	return 0;
}

static void handle(struct rsp *r, struct conn *c, struct head *h, const unsigned char *body)
{
	struct rsp_resp resp;
	struct rsp_req req;
	char *q = strchr(h->target, '?');
	int bad = 0;
	char *op = NULL, *msg = NULL;

	memset(&resp, 0, sizeof(resp));
	memset(&req, 0, sizeof(req));
	if (q != NULL) {
		*q++ = '\0';
		op = query_get(q, "operation", &bad);
		msg = query_get(q, "message", &bad);
	}
	req.method = h->method;
	req.operation = op;
	req.message = msg;
	req.body = body;
	req.body_len = (size_t)h->clen;
	if (bad) {
		rsp_note(&resp, "op=http reason=\"bad percent-encoding in the query\"");
		rsp_resp_text(&resp, 400, "bad query\n");
	} else if (strcmp(h->method, "GET") != 0 && strcmp(h->method, "POST") != 0) {
		rsp_note(&resp, "op=http reason=\"method %s\"", h->method);
		rsp_resp_text(&resp, 405, "only GET and POST\n");
	} else {
		rsp_dispatch(r, &req, &resp);
	}
	if (resp.no_reply) {
		/* The request is consumed; the socket stays open and silent. */
		rsp_log(r, "%s http=none", resp.log);
	} else if (resp.die) {
		rsp_log(r, "%s http=died", resp.log);
		fflush(NULL);
		_exit(3);
	} else if (resp.reset) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		rsp_log(r, "%s http=reset", resp.log);
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		conn_close(c);
	} else {
		rsp_log(r, "%s http=%d", resp.log, resp.status);
		if (send_resp(c->fd, &resp, !h->close && resp.stream_len == 0) != 0 ||
		    h->close || resp.stream_len > 0)
			conn_close(c);
	}
	OPENSSL_free(resp.body);
	free(op);
	free(msg);
}

/*
 * Handles every complete request in c's buffer. 0 to keep the connection,
 * -1 when it was closed.
 */
static int drain_requests(struct rsp *r, struct conn *c)
{
	struct head h;
	char *end;
	size_t total;

	while (c->fd >= 0 && c->len > 0) {
		c->buf[c->len] = '\0';
		end = strstr(c->buf, "\r\n\r\n");
		if (end == NULL) {
			if (c->len > MAX_HEAD) {
				send_error(r, c->fd, 431, "request head too large");
				conn_close(c);
				return -1;
			}
			return 0;
		}
		memset(&h, 0, sizeof(h));
		h.head_len = (size_t)(end - c->buf) + 4;
		end[2] = '\0';
		if (parse_head(c->buf, &h) != 0) {
			send_error(r, c->fd, 400, "malformed request");
			conn_close(c);
			return -1;
		}
		if (h.chunked) {
			send_error(r, c->fd, 501, "chunked bodies are not supported");
			conn_close(c);
			return -1;
		}
		if (h.clen < 0)
			h.clen = 0;
		if (h.clen > RSP_MAX_BODY) {
			send_error(r, c->fd, 413, "request body larger than 1 MiB");
			conn_close(c);
			return -1;
		}
		total = h.head_len + (size_t)h.clen;
		if (c->len < total) {
			/* Restore the head's terminator so it parses again next time. */
			end[2] = '\r';
			if (h.expect && !c->sent_continue) {
				c->sent_continue = 1;
				if (write_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25) != 0) {
					conn_close(c);
					return -1;
				}
			}
			return 0;
		}
		c->sent_continue = 0;
		handle(r, c, &h, (unsigned char *)c->buf + h.head_len);
		if (c->fd < 0)
			return -1;
		memmove(c->buf, c->buf + total, c->len - total);
		c->len -= total;
	}
	return 0;
}

static int conn_read(struct rsp *r, struct conn *c)
{
	size_t want = c->len + 65536;
	ssize_t n;
	char *nb;

	if (want > (size_t)RSP_MAX_BODY + MAX_HEAD + 65536) {
		send_error(r, c->fd, 413, "request too large");
		conn_close(c);
		return -1;
	}
	if (c->cap < want + 1) {
		nb = realloc(c->buf, want + 1);
		if (nb == NULL) {
			conn_close(c);
			return -1;
		}
		c->buf = nb;
		c->cap = want + 1;
	}
	n = read(c->fd, c->buf + c->len, c->cap - 1 - c->len);
	if (n < 0 && errno == EINTR)
		return 0;
	if (n <= 0) {
		conn_close(c);
		return -1;
	}
	c->len += (size_t)n;
	return drain_requests(r, c) == -1 ? -1 : 0;
}

static int listen_local(struct rsp *r, int *port)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int fd, one = 1;

	(void)r;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = 0;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 16) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

/* FILE.tmp then rename: a reader never sees half a port number. */
static int write_port(const char *file, int port)
{
	char tmp[4096];
	FILE *f;
	int n = snprintf(tmp, sizeof(tmp), "%s.tmp", file);

	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -1;
	f = fopen(tmp, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "%d\n", port);
	if (fclose(f) != 0 || rename(tmp, file) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* DIR/ready comes last: everything else is in place and we listen. */
static int write_ready(const char *dir, int port)
{
	char path[4096];
	int n = snprintf(path, sizeof(path), "%s/ready", dir);

	if (n < 0 || (size_t)n >= sizeof(path))
		return -1;
	return write_port(path, port);
}

static void accept_one(int lfd, struct conn *conns)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	int i;

	if (fd < 0)
		return;
	for (i = 0; i < MAX_CONNS; i++) {
		if (conns[i].fd < 0) {
			conns[i].fd = fd;
			return;
		}
	}
	close(fd);		/* too many: the client retries */
}

int rsp_serve(struct rsp *r)
{
	struct conn conns[MAX_CONNS];
	struct pollfd pfd[MAX_CONNS + 1];
	int map[MAX_CONNS + 1];
	time_t deadline = time(NULL) + r->conf.max_seconds;
	int lfd, port = 0, i, n, np;

	lfd = listen_local(r, &port);
	if (lfd < 0) {
		fprintf(stderr, "scep-responder: cannot listen on 127.0.0.1: %s\n",
		    strerror(errno));
		return -1;
	}
	if (write_port(r->conf.port_file, port) != 0) {
		fprintf(stderr, "scep-responder: cannot write %s: %s\n", r->conf.port_file,
		    strerror(errno));
		close(lfd);
		return -1;
	}
	if (write_ready(r->conf.dir, port) != 0) {
		fprintf(stderr, "scep-responder: cannot write %s/ready\n", r->conf.dir);
		close(lfd);
		return -1;
	}
	for (i = 0; i < MAX_CONNS; i++) {
		memset(&conns[i], 0, sizeof(conns[i]));
		conns[i].fd = -1;
	}
	while (!rsp_stop && time(NULL) < deadline) {
		pfd[0].fd = lfd;
		pfd[0].events = POLLIN;
		np = 1;
		for (i = 0; i < MAX_CONNS; i++) {
			if (conns[i].fd < 0)
				continue;
			pfd[np].fd = conns[i].fd;
			pfd[np].events = POLLIN;
			map[np++] = i;
		}
		n = poll(pfd, (nfds_t)np, 200);
		if (n <= 0)
			continue;
		for (i = 1; i < np; i++) {
			if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
				conn_read(r, &conns[map[i]]);
		}
		if (pfd[0].revents & POLLIN)
			accept_one(lfd, conns);
	}
	if (!rsp_stop)
		rsp_log(r, "op=exit reason=\"--max-seconds reached\"");
	for (i = 0; i < MAX_CONNS; i++)
		conn_close(&conns[i]);
	close(lfd);
	return 0;
}
