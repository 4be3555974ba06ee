/*
 * memscan PID STRING...: which of the strings occur anywhere in the readable
 * memory of process PID (/proc/PID/maps, /proc/PID/mem)?
 *
 * Exit 0 when none occurs, 1 when some do (each occurrence is printed on
 * stdout with its address and mapping), 2 on error. Reading another
 * process's memory needs ptrace rights: the same user, and under Yama
 * ptrace_scope 1 an ancestor of PID (or CAP_SYS_PTRACE).
 *
 * A test tool: no dependencies beyond libc.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK		(1024 * 1024)
#define MAX_REPORTS	20	/* addresses printed per string */
/* Larger mappings are reserved address space, not data: AddressSanitizer's
 * shadow alone is 15 TiB of readable zero pages. */
#define MAX_REGION	(16ULL << 30)

struct needle {
	const char *s;
	size_t len;
	unsigned long hits;
};

struct scan {
	int memfd;
	struct needle *n;
	size_t nn;
	size_t maxlen;
	unsigned char *buf;	/* CHUNK + maxlen - 1 bytes */
	unsigned long long bytes;
	unsigned long regions, unreadable, huge;
};

static void report(struct needle *nd, size_t idx, uint64_t addr, const char *where)
{
	nd->hits++;
	if (nd->hits <= MAX_REPORTS)
		printf("memscan: string #%zu \"%s\" at 0x%" PRIx64 " in %s\n",
		       idx + 1, nd->s, addr, where[0] ? where : "[anon]");
	else if (nd->hits == MAX_REPORTS + 1)
		printf("memscan: string #%zu: more occurrences not shown\n", idx + 1);
}

/*
 * Searches buf[0..len) which begins at address base; the first carry bytes
 * were searched already (the tail of the previous chunk), so only matches
 * that reach past them are new.
 */
static void search(struct scan *sc, size_t len, size_t carry, uint64_t base, const char *where)
{
	size_t i, off;
	const unsigned char *p;

	for (i = 0; i < sc->nn; i++) {
		struct needle *nd = &sc->n[i];

		off = 0;
		while (off + nd->len <= len) {
			p = memmem(sc->buf + off, len - off, nd->s, nd->len);
			if (p == NULL)
				break;
			off = (size_t)(p - sc->buf);
			if (off + nd->len > carry)
				report(nd, i, base + off, where);
			off++;
		}
	}
}

/* pread all of [addr, addr + n) into dst; -1 if the kernel will not give it. */
static int read_at(int fd, unsigned char *dst, size_t n, uint64_t addr)
{
	ssize_t r;
	size_t got = 0;

	while (got < n) {
		r = pread(fd, dst + got, n - got, (off_t)(addr + got));
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* One mapping in chunks; each chunk is searched together with the last
 * maxlen - 1 bytes of the one before, so no match across a border is lost. */
static void scan_region(struct scan *sc, uint64_t start, uint64_t end, const char *where)
{
	size_t keep = sc->maxlen - 1, carry = 0, n;
	uint64_t addr = start;

	sc->regions++;
	while (addr < end) {
		n = end - addr > CHUNK ? CHUNK : (size_t)(end - addr);
		if (read_at(sc->memfd, sc->buf + carry, n, addr) == -1) {
			/* [vvar] and the like: nothing of the process's own data. */
			sc->unreadable++;
			return;
		}
		sc->bytes += n;
		search(sc, carry + n, carry, addr - carry, where);
		addr += n;
		if (keep > 0) {
			size_t total = carry + n, k = total < keep ? total : keep;

			memmove(sc->buf, sc->buf + total - k, k);
			carry = k;
		}
	}
}

/* "start-end perms offset dev inode   path" */
static int parse_maps_line(char *line, uint64_t *start, uint64_t *end, char **perms,
			   char **path)
{
	char *p = line, *q;
	int field;

	*start = strtoull(p, &q, 16);
	if (q == p || *q != '-')
		return -1;
	p = q + 1;
	*end = strtoull(p, &q, 16);
	if (q == p || *q != ' ' || *end < *start)
		return -1;
	p = q + 1;
	*perms = p;
	/* Skip perms, offset, dev. */
	for (field = 0; field < 3; field++) {
		p = strchr(p, ' ');
		if (p == NULL)
			return -1;
		if (field == 0)
			*p = '\0';
		p++;
	}
	/* After the inode: blanks, then the path, if any. */
	p += strcspn(p, " \n");
	p += strspn(p, " ");
	p[strcspn(p, "\n")] = '\0';
	*path = p;
	return 0;
}

static int scan_maps(struct scan *sc, FILE *maps)
{
	char *line = NULL, *perms, *path;
	size_t cap = 0;
	uint64_t start, end;
	int rc = 0;

	while (getline(&line, &cap, maps) != -1) {
		if (parse_maps_line(line, &start, &end, &perms, &path) == -1) {
			fprintf(stderr, "memscan: cannot parse a line of maps: %s", line);
			rc = -1;
			break;
		}
		if (perms[0] != 'r')
			continue;
		if (end - start > MAX_REGION)
			sc->huge++;
		else
			scan_region(sc, start, end, path);
	}
	free(line);
	return rc;
}

static int usage(void)
{
	fprintf(stderr, "usage: memscan PID STRING...\n"
		"Exit 0: no string in the memory of PID; 1: some found (printed); 2: error.\n");
	return 2;
}

int main(int argc, char **argv)
{
	char path[64], *endp;
	struct scan sc = { .memfd = -1 };
	FILE *maps = NULL;
	long pid;
	size_t i;
	int ret = 2, found = 0;

	if (argc < 3)
		return usage();
	errno = 0;
	pid = strtol(argv[1], &endp, 10);
	if (errno != 0 || endp == argv[1] || *endp != '\0' || pid <= 0)
		return usage();
	sc.nn = (size_t)argc - 2;
	sc.n = calloc(sc.nn, sizeof(*sc.n));
	if (sc.n == NULL)
		goto out;
	for (i = 0; i < sc.nn; i++) {
		sc.n[i].s = argv[i + 2];
		sc.n[i].len = strlen(argv[i + 2]);
		if (sc.n[i].len == 0) {
			fprintf(stderr, "memscan: empty string #%zu\n", i + 1);
			goto out;
		}
		if (sc.n[i].len > sc.maxlen)
			sc.maxlen = sc.n[i].len;
	}
	sc.buf = malloc(CHUNK + sc.maxlen);
	if (sc.buf == NULL) {
		fprintf(stderr, "memscan: out of memory\n");
		goto out;
	}
	snprintf(path, sizeof(path), "/proc/%ld/maps", pid);
	maps = fopen(path, "r");
	if (maps == NULL) {
		fprintf(stderr, "memscan: %s: %s\n", path, strerror(errno));
		goto out;
	}
	snprintf(path, sizeof(path), "/proc/%ld/mem", pid);
	sc.memfd = open(path, O_RDONLY | O_CLOEXEC);
	if (sc.memfd == -1) {
		fprintf(stderr, "memscan: %s: %s%s\n", path, strerror(errno),
			errno == EACCES || errno == EPERM ?
			" (not the same user, or Yama ptrace_scope allows only ancestors)" : "");
		goto out;
	}
	if (scan_maps(&sc, maps) == -1)
		goto out;
	if (sc.bytes == 0) {
		fprintf(stderr, "memscan: nothing of process %ld could be read\n", pid);
		goto out;
	}
	fprintf(stderr, "memscan: pid %ld: %lu mappings, %llu bytes read, %lu unreadable, "
		"%lu over %llu GiB skipped\n", pid, sc.regions, sc.bytes, sc.unreadable, sc.huge,
		MAX_REGION >> 30);
	for (i = 0; i < sc.nn; i++) {
		if (sc.n[i].hits > 0) {
			printf("memscan: string #%zu \"%s\": found %lu time(s)\n", i + 1,
			       sc.n[i].s, sc.n[i].hits);
			found = 1;
		}
	}
	ret = found;
out:
	if (sc.memfd != -1)
		close(sc.memfd);
	if (maps != NULL)
		fclose(maps);
	free(sc.buf);
	free(sc.n);
	return ret;
}
