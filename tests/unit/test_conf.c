#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "conf.h"
#include "err.h"

#define FPR "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:" \
	    "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"
#define KEY "pkcs11:token=hsm;object=web?module-path=/usr/lib/softhsm/libsofthsm2.so" \
	    "&pin-source=file:/etc/p11scep/pin"
#define SECRET_MSG "secrets are not allowed inline: use challenge-file or pin-source=file: in key"

struct fixture {
	char dir[64];
	char path[128];
	struct conf conf;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_conf.XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/p11scep.conf", f->dir);
	err_clear();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	conf_free(&f->conf);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void write_mode(struct fixture *f, const char *text, size_t len, mode_t mode)
{
	int fd;

	unlink(f->path);
	fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

static void write_conf(struct fixture *f, const char *text)
{
	write_mode(f, text, strlen(text), 0644);
}

static enum p11s_err load(struct fixture *f, const char *text)
{
	write_conf(f, text);
	conf_free(&f->conf);
	err_clear();
	return conf_load(f->path, &f->conf);
}

/* The message must be exactly "FILE:LINE: what". */
static void expect_error(struct fixture *f, const char *text, unsigned int line, const char *what)
{
	char want[1024];

	assert_int_equal(load(f, text), P11S_E_USAGE);
	snprintf(want, sizeof(want), "%s:%u: %s", f->path, line, what);
	assert_string_equal(err_msg(), want);
	assert_int_equal(f->conf.n_profiles, 0);
	assert_null(f->conf.profiles);
}

static const char full[] =
	"# p11scep profiles\n"					/* 1 */
	"[defaults]            ; values every profile inherits\n"	/* 2 */
	"url = http://ca.example:8080/cgi-bin/pkiclient.exe\n"	/* 3 */
	"ca-fingerprint = " FPR "\n"				/* 4 */
	"digest = sha512\n"					/* 5 */
	"dns = default.example\n"				/* 6 */
	"poll-interval = 30\n"					/* 7 */
	"state-dir = /var/lib/p11scep\n"			/* 8 */
	"\n"							/* 9 */
	"[profile web]\n"					/* 10 */
	"key = " KEY "\n"					/* 11 */
	"subject = CN=web.example,O=Example\n"			/* 12 */
	"dns = web.example        ; repeatable\n"		/* 13 */
	"dns = www.example, web2.example,web3.example\n"	/* 14 */
	"ip = 192.0.2.10, 2001:db8::1\n"			/* 15 */
	"challenge-file = /etc/p11scep/web.challenge\n"		/* 16 */
	"cert-out = /etc/ssl/web.pem\n"				/* 17 */
	"renew-at = 75\n"					/* 18 */
	"poll-interval = 5\n"					/* 19 */
	"new-key-on-renew = no\n"				/* 20 */
	"post-enroll-command = systemctl reload nginx\n"	/* 21 */
	"\n"							/* 22 */
	"  [ profile   vpn.gw_1 ]   # indented, blanks inside\n"	/* 23 */
	"\thost = 198.51.100.7\n"				/* 24 */
	"  port = 8443\n"					/* 25 */
	"\tcgi-path = scep\n"					/* 26 */
	"scheme = https\n"					/* 27 */
	"key = pkcs11:token=tpm;object=vpn\n"			/* 28 */
	"module = /usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so\n"	/* 29 */
	"subject = /O=Example/CN=vpn\n"				/* 30 */
	"key-type = rsa:3072\n"					/* 31 */
	"cipher = aes256\n"					/* 32 */
	"digest = sha256\n"					/* 33 */
	"strict = yes\n"					/* 34 */
	"import-chain = TRUE\n"					/* 35 */
	"timeout = 10\n"					/* 36 */
	"max-poll-time = 0\n"					/* 37 */
	"cacert = /etc/ssl/certs/ca-certificates.crt\n"		/* 38 */
	"chain-out = /etc/ssl/vpn-chain.pem\n"			/* 39 */
	"ca-dir = /var/lib/p11scep/vpn\n";			/* 40 */

static void test_full(void **state)
{
	struct fixture *f = *state;
	const struct conf_profile *web, *vpn;

	assert_int_equal(load(f, full), P11S_OK);
	assert_string_equal(err_msg(), "");
	assert_int_equal(f->conf.n_profiles, 2);
	web = &f->conf.profiles[0];
	vpn = &f->conf.profiles[1];

	assert_string_equal(web->name, "web");
	assert_string_equal(web->file, f->path);
	assert_int_equal(web->line, 10);
	assert_string_equal(web->url, "http://ca.example:8080/cgi-bin/pkiclient.exe");
	assert_string_equal(web->ca_fingerprint, FPR);
	assert_string_equal(web->key_uri, KEY);
	assert_string_equal(web->subject, "CN=web.example,O=Example");
	/* The profile's own dns lines replace the inherited ones. */
	assert_int_equal(web->n_dns, 4);
	assert_string_equal(web->dns[0], "web.example");
	assert_string_equal(web->dns[1], "www.example");
	assert_string_equal(web->dns[2], "web2.example");
	assert_string_equal(web->dns[3], "web3.example");
	assert_int_equal(web->n_ip, 2);
	assert_string_equal(web->ip[0], "192.0.2.10");
	assert_string_equal(web->ip[1], "2001:db8::1");
	assert_string_equal(web->challenge_file, "/etc/p11scep/web.challenge");
	assert_string_equal(web->cert_out, "/etc/ssl/web.pem");
	assert_string_equal(web->state_dir, "/var/lib/p11scep");
	assert_string_equal(web->post_enroll_command, "systemctl reload nginx");
	assert_null(web->module);
	assert_null(web->chain_out);
	assert_null(web->ca_dir);
	assert_null(web->cacert);
	assert_int_equal(web->renew_at, 75);
	assert_int_equal(web->poll_interval_s, 5);	/* override */
	assert_int_equal(web->digest, DIGEST_SHA512);	/* inherited */
	assert_int_equal(web->cipher, CIPHER_AUTO);
	assert_int_equal(web->new_key_on_renew, 0);
	assert_int_equal(web->keyspec.type, KS_KEY_RSA);
	assert_int_equal(web->keyspec.bits, 2048);
	assert_int_equal(web->max_poll_time_s, 28800);
	assert_int_equal(web->timeout_s, 60);
	assert_int_equal(web->strict, 0);
	assert_int_equal(web->import_chain, 0);
	assert_int_equal(web->set, CONF_SET_DIGEST | CONF_SET_POLL_INTERVAL | CONF_SET_RENEW_AT |
			 CONF_SET_NEW_KEY_ON_RENEW);

	assert_string_equal(vpn->name, "vpn.gw_1");
	assert_int_equal(vpn->line, 23);
	/* Its own host parts beat the inherited url. */
	assert_string_equal(vpn->url, "https://198.51.100.7:8443/scep");
	assert_string_equal(vpn->ca_fingerprint, FPR);
	assert_string_equal(vpn->module, "/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so");
	assert_string_equal(vpn->subject, "/O=Example/CN=vpn");
	assert_int_equal(vpn->n_dns, 1);
	assert_string_equal(vpn->dns[0], "default.example");
	assert_int_equal(vpn->n_ip, 0);
	assert_null(vpn->challenge_file);
	assert_null(vpn->post_enroll_command);
	assert_string_equal(vpn->cacert, "/etc/ssl/certs/ca-certificates.crt");
	assert_string_equal(vpn->chain_out, "/etc/ssl/vpn-chain.pem");
	assert_string_equal(vpn->ca_dir, "/var/lib/p11scep/vpn");
	assert_int_equal(vpn->keyspec.bits, 3072);
	assert_int_equal(vpn->cipher, CIPHER_AES256);
	assert_int_equal(vpn->digest, DIGEST_SHA256);
	assert_int_equal(vpn->strict, 1);
	assert_int_equal(vpn->import_chain, 1);
	assert_int_equal(vpn->timeout_s, 10);
	assert_int_equal(vpn->max_poll_time_s, 0);
	assert_int_equal(vpn->poll_interval_s, 30);	/* inherited */
	assert_int_equal(vpn->renew_at, 80);		/* default */
	assert_int_equal(vpn->new_key_on_renew, 1);
	assert_int_equal(vpn->set, CONF_SET_KEY_TYPE | CONF_SET_CIPHER | CONF_SET_DIGEST |
			 CONF_SET_STRICT | CONF_SET_IMPORT_CHAIN | CONF_SET_TIMEOUT |
			 CONF_SET_MAX_POLL_TIME | CONF_SET_POLL_INTERVAL);

	assert_ptr_equal(conf_find(&f->conf, "web"), web);
	assert_ptr_equal(conf_find(&f->conf, "vpn.gw_1"), vpn);
	assert_null(conf_find(&f->conf, "vpn"));
	assert_null(conf_find(&f->conf, "WEB"));
	assert_null(conf_find(&f->conf, ""));
	assert_null(conf_find(NULL, "web"));
}

static void test_url_forms(void **state)
{
	struct fixture *f = *state;

	/* Host parts in [defaults], only the host in the profile. */
	assert_int_equal(load(f,
		"[defaults]\nport = 8080\ncgi-path = /scep\nca-fingerprint = " FPR "\n"
		"key = pkcs11:token=t;object=o\nsubject = CN=a\n"
		"[profile a]\nhost = ca.example\n"
		"[profile b]\nhost = 2001:db8::5\nscheme = https\n"
		"[profile c]\nhost = [2001:db8::6]\nport = 443\ncgi-path = x/y\n"
		"[profile d]\nurl = HTTPS://ca.example/scep\n"
		"[profile e]\nhost = h\nport = 80\n"), P11S_OK);
	assert_int_equal(f->conf.n_profiles, 5);
	assert_string_equal(f->conf.profiles[0].url, "http://ca.example:8080/scep");
	assert_string_equal(f->conf.profiles[1].url, "https://[2001:db8::5]:8080/scep");
	assert_string_equal(f->conf.profiles[2].url, "http://[2001:db8::6]:443/x/y");
	assert_string_equal(f->conf.profiles[3].url, "HTTPS://ca.example/scep");
	assert_string_equal(f->conf.profiles[4].url, "http://h:80/scep");

	/* No port, no cgi-path: the scheme's port and the usual CGI path. */
	assert_int_equal(load(f,
		"[profile a]\nhost = ca\nca-fingerprint = " FPR "\n"
		"key = pkcs11:token=t;object=o\nsubject = CN=a\n"), P11S_OK);
	assert_string_equal(f->conf.profiles[0].url, "http://ca/cgi-bin/pkiclient.exe");

	/* url in [defaults], host parts in the profile; a profile's url beats
	 * inherited host parts. */
	assert_int_equal(load(f,
		"[defaults]\nhost = dflt\nca-fingerprint = " FPR "\n"
		"key = pkcs11:token=t;object=o\nsubject = CN=a\n"
		"[profile a]\nurl = http://own/scep\n"
		"[profile b]\n"), P11S_OK);
	assert_string_equal(f->conf.profiles[0].url, "http://own/scep");
	assert_string_equal(f->conf.profiles[1].url, "http://dflt/cgi-bin/pkiclient.exe");
}

static void test_empty(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, ""), P11S_OK);
	assert_int_equal(f->conf.n_profiles, 0);
	assert_null(conf_find(&f->conf, "web"));
	assert_int_equal(load(f, "# nothing\n\n; here\n"), P11S_OK);
	assert_int_equal(f->conf.n_profiles, 0);
	/* [defaults] alone is no profile and needs no url. */
	assert_int_equal(load(f, "[defaults]\nrenew-at = 50\n"), P11S_OK);
	assert_int_equal(f->conf.n_profiles, 0);
}

/* CRLF endings, a byte order mark, no final newline: lines still count right. */
static void test_crlf_bom(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, "\xef\xbb\xbf[profile a]\r\nurl = http://ca/scep\r\n"
			      "key = pkcs11:token=t;object=o\r\nsubject = CN=a\r\n"
			      "ca-fingerprint = " FPR), P11S_OK);
	assert_string_equal(f->conf.profiles[0].url, "http://ca/scep");
	assert_string_equal(f->conf.profiles[0].ca_fingerprint, FPR);
	expect_error(f, "\xef\xbb\xbf[profile a]\r\n\r\nbogus = 1\r\n", 3, "key 'bogus': unknown key");
}

static void test_errors(void **state)
{
	struct fixture *f = *state;
	char want[512];

	expect_error(f, "# c\n[global]\n", 2,
		     "section 'global': unknown section: use [defaults] or [profile NAME]");
	expect_error(f, "[profile a]\nurl = http://ca/\nsubjct = CN=a\n", 3,
		     "key 'subjct': unknown key");
	expect_error(f, "[profile a]\n = x\n", 2, "key '': unknown key");
	expect_error(f, "[defaults]\n\n\nrenew-at = 100\n", 4,
		     "key 'renew-at': '100' is not a number from 1 to 99");
	expect_error(f, "[defaults]\nrenew-at = +5\n", 2,
		     "key 'renew-at': '+5' is not a number from 1 to 99");
	expect_error(f, "[defaults]\ntimeout = 12s\n", 2,
		     "key 'timeout': '12s' is not a number from 1 to 86400");
	expect_error(f, "[defaults]\nport = 0\n", 2,
		     "key 'port': '0' is not a number from 1 to 65535");
	expect_error(f, "[defaults]\nnew-key-on-renew = maybe\n", 2,
		     "key 'new-key-on-renew': 'maybe' is not yes, no, true, false, 1 or 0");
	expect_error(f, "[defaults]\ncipher = des\n", 2,
		     "key 'cipher': 'des' is not aes, aes256 or des3");
	expect_error(f, "[defaults]\ndigest = md5\n", 2,
		     "key 'digest': 'md5' is not sha256, sha512 or sha1");
	expect_error(f, "[defaults]\nkey-type = ec:p521\n", 2,
		     "key 'key-type': 'ec:p521' is not rsa:2048, rsa:3072, rsa:4096, ec:p256 or ec:p384");
	expect_error(f, "[defaults]\nurl = ftp://ca/\n", 2,
		     "key 'url': 'ftp://ca/' is not an http:// or https:// URL");
	expect_error(f, "[defaults]\nscheme = ftp\n", 2, "key 'scheme': 'ftp' is neither http nor https");
	expect_error(f, "[defaults]\nhost = ca/x\n", 2,
		     "key 'host': 'ca/x' is not a host name or address");
	expect_error(f, "[defaults]\nhost = [fe80::zz]\n", 2,
		     "key 'host': 'fe80::zz' is not a host name or address");
	expect_error(f, "[defaults]\ncgi-path = /a?b\n", 2, "key 'cgi-path': '/a?b' is not a URL path");
	expect_error(f, "[defaults]\nip = 192.0.2.1, 300.1.1.1\n", 2,
		     "key 'ip': '300.1.1.1' is not an IPv4 or IPv6 address");
	expect_error(f, "[defaults]\ndns = a.example, b example\n", 2,
		     "key 'dns': 'b example' is not a DNS name");
	expect_error(f, "[defaults]\ndns = a.example,,b\n", 2, "key 'dns': empty entry in the list");
	expect_error(f, "[defaults]\ncert-out = web.pem\n", 2,
		     "key 'cert-out': 'web.pem' is not an absolute path");
	expect_error(f, "[defaults]\nca-fingerprint = AB:CD\n", 2,
		     "key 'ca-fingerprint': 'AB:CD' is not a SHA-256 fingerprint "
		     "(64 hex digits, ':' between them allowed)");
	expect_error(f, "[defaults]\nkey = /etc/key.pem\n", 2,
		     "key 'key': '/etc/key.pem' is not a key URI (pkcs11:token=...;object=...)");
	/* dn_parse words the reason; the prefix says where. */
	assert_int_equal(load(f, "[defaults]\nsubject = CN\n"), P11S_E_USAGE);
	snprintf(want, sizeof(want), "%s:2: key 'subject': ", f->path);
	assert_true(strncmp(err_msg(), want, strlen(want)) == 0);
	assert_true(strlen(err_msg()) > strlen(want) + 10);
	expect_error(f, "[defaults]\nmodule =\n", 2, "key 'module': empty value");

	/* Duplicates. */
	expect_error(f, "[profile a]\nurl = http://a/\nsubject = CN=a\nurl = http://b/\n", 4,
		     "key 'url': already set on line 2");
	expect_error(f, "[defaults]\nstrict = yes\n[profile a]\n[defaults]\n", 4,
		     "section 'defaults': already defined on line 1");
	expect_error(f, "[profile a]\n[profile b]\n[profile a]\n", 3,
		     "profile 'a': already defined on line 1");
	expect_error(f, "[profile a]\nurl = http://a/\nport = 80\n", 3,
		     "key 'port': 'url' is set on line 2: give either url or host, port, cgi-path "
		     "and scheme");
	expect_error(f, "[profile a]\nhost = a\nurl = http://a/\n", 3,
		     "key 'url': 'host' is set on line 2: give either url or host, port, cgi-path "
		     "and scheme");

	/* Profile names and sections. */
	expect_error(f, "\n[profile]\n", 2, "profile name is empty: use [profile NAME]");
	expect_error(f, "[profile   ]\n", 1, "profile name is empty: use [profile NAME]");
	expect_error(f, "[profile we b]\n", 1,
		     "profile 'we b': names are 1 to 64 characters of A-Z a-z 0-9 . _ -");
	expect_error(f, "[profile web/x]\n", 1,
		     "profile 'web/x': names are 1 to 64 characters of A-Z a-z 0-9 . _ -");
	expect_error(f, "[profile "
		     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n", 1,
		     "profile 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa': "
		     "names are 1 to 64 characters of A-Z a-z 0-9 . _ -");
	expect_error(f, "[profileweb]\n", 1,
		     "section 'profileweb': unknown section: use [defaults] or [profile NAME]");
	expect_error(f, "[profile a\n", 1, "section header without ']'");
	expect_error(f, "[profile a] junk\n", 1, "text after the section header");
	expect_error(f, "url = http://ca/\n[profile a]\n", 1,
		     "key 'url': outside any section: put it under [defaults] or [profile NAME]");

	/* What inih itself refuses, and what it would get wrong. */
	expect_error(f, "[profile a]\nurl = http://ca/\njust words\n", 3,
		     "expected 'key = value', '[section]' or a comment");
	expect_error(f, "[profile a]\nurl = http://a/\x1b[2J\n", 2,
		     "control character (code 27) in the line");
}

/* Required keys are checked after [defaults] is applied, at the profile's line. */
static void test_missing(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "[defaults]\nurl = http://ca/\n\n[profile web]\nkey = pkcs11:token=t\n"
		     "subject = CN=a\n", 4, "key 'ca-fingerprint': missing from profile 'web' and [defaults]");
	expect_error(f, "[defaults]\nca-fingerprint = " FPR "\n[profile web]\nkey = pkcs11:token=t\n"
		     "subject = CN=a\n", 3, "key 'url': missing from profile 'web' and [defaults]");
	expect_error(f, "[profile ok]\nurl = http://ca/\nkey = pkcs11:token=t\nsubject = CN=a\n"
		     "ca-fingerprint = " FPR "\n[profile web]\nurl = http://ca/\n"
		     "ca-fingerprint = " FPR "\nsubject = CN=a\n", 6,
		     "key 'key': missing from profile 'web' and [defaults]");
	expect_error(f, "[profile web]\nurl = http://ca/\nca-fingerprint = " FPR "\n"
		     "key = pkcs11:token=t\n", 1, "key 'subject': missing from profile 'web' and [defaults]");
	expect_error(f, "[defaults]\nport = 8080\n[profile web]\nca-fingerprint = " FPR "\n"
		     "key = pkcs11:token=t\nsubject = CN=a\n", 3,
		     "key 'host': missing from profile 'web' and [defaults], but 'port' is set on line 2");
}

static void test_secrets(void **state)
{
	struct fixture *f = *state;
	static const char *const names[] = {
		"challenge", "challenge-password", "pin", "password", "PIN", "Challenge",
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char text[128];

		snprintf(text, sizeof(text), "[profile a]\nurl = http://ca/\n%s = Sup3rSecret\n",
			 names[i]);
		expect_error(f, text, 3, SECRET_MSG);
		assert_null(strstr(err_msg(), "Sup3rSecret"));
	}
	/* Before any section and in [defaults] too: the secret wins over other errors. */
	expect_error(f, "pin = 1234\n", 1, SECRET_MSG);
	expect_error(f, "[defaults]\nchallenge = abc\n", 2, SECRET_MSG);

	expect_error(f, "[profile a]\nkey = pkcs11:token=t;object=o?pin-value=Sup3rSecret\n", 2,
		     SECRET_MSG);
	assert_null(strstr(err_msg(), "Sup3rSecret"));
	expect_error(f, "[defaults]\nkey = pkcs11:token=t?PIN-Value=Sup3rSecret\n", 2, SECRET_MSG);
	assert_null(strstr(err_msg(), "Sup3rSecret"));
	/* Even repeated: the duplicate would otherwise be reported first. */
	expect_error(f, "[defaults]\nkey = pkcs11:token=t\nkey = pkcs11:token=t?pin-value=x\n", 3,
		     SECRET_MSG);
}

static void test_limits(void **state)
{
	struct fixture *f = *state;
	char text[4096], want[512];
	size_t n = 0;
	int i;

	/* 32 dns entries are fine, the 33rd is not. */
	n += (size_t)snprintf(text + n, sizeof(text) - n, "[defaults]\n");
	for (i = 0; i < 32; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "dns = h%d.example\n", i);
	assert_int_equal(load(f, text), P11S_OK);
	snprintf(text + n, sizeof(text) - n, "dns = one.more, two.more\n");
	expect_error(f, text, 34, "key 'dns': more than 32 entries");

	/* A line longer than inih's buffer is refused, not split in two (the
	 * tail, "= y", would otherwise be read as a key of its own). */
	n = (size_t)snprintf(text, sizeof(text), "[defaults]\npost-enroll-command = ");
	memset(text + n, 'x', 300);
	snprintf(text + n + 300, sizeof(text) - n - 300, " = y\n");
	expect_error(f, text, 2, "line longer than 197 characters");
	/* The longest line that fits, and one more. */
	n = (size_t)snprintf(text, sizeof(text), "[defaults]\npost-enroll-command = ");
	memset(text + n, 'x', 197 - 22);
	snprintf(text + n + 197 - 22, sizeof(text) - n - 197 + 22, "\n");
	assert_int_equal(load(f, text), P11S_OK);
	n = (size_t)snprintf(text, sizeof(text), "[defaults]\npost-enroll-command = ");
	memset(text + n, 'x', 198 - 22);
	snprintf(text + n + 198 - 22, sizeof(text) - n - 198 + 22, "\n");
	expect_error(f, text, 2, "line longer than 197 characters");

	/* A NUL byte would end the line early for inih. */
	write_mode(f, "[defaults]\nmodule = /a\0b\n", 26, 0644);
	err_clear();
	assert_int_equal(conf_load(f->path, &f->conf), P11S_E_USAGE);
	snprintf(want, sizeof(want), "%s:2: control character (code 0) in the line", f->path);
	assert_string_equal(err_msg(), want);
}

static void test_permissions(void **state)
{
	struct fixture *f = *state;
	char want[1024];
	static const mode_t bad[] = { 0666, 0646, 0664, 0624, 0602 };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_mode(f, "", 0, bad[i]);
		err_clear();
		assert_int_equal(conf_load(f->path, &f->conf), P11S_E_USAGE);
		snprintf(want, sizeof(want), "%s is writable by other users: chmod go-w %s",
			 f->path, f->path);
		assert_string_equal(err_msg(), want);
	}
	write_mode(f, "", 0, 0444);
	err_clear();
	assert_int_equal(conf_load(f->path, &f->conf), P11S_OK);
	conf_free(&f->conf);
	write_mode(f, "", 0, 0600);
	assert_int_equal(conf_load(f->path, &f->conf), P11S_OK);
	conf_free(&f->conf);
	conf_free(&f->conf);	/* twice: freed leaves it empty */
	conf_free(NULL);
}

static void test_not_regular(void **state)
{
	struct fixture *f = *state;
	char want[1024];

	err_clear();
	assert_int_equal(conf_load(f->dir, &f->conf), P11S_E_USAGE);
	snprintf(want, sizeof(want), "%s is not a regular file", f->dir);
	assert_string_equal(err_msg(), want);

	/* A FIFO without a writer must not block the load. */
	unlink(f->path);
	assert_int_equal(mkfifo(f->path, 0600), 0);
	err_clear();
	assert_int_equal(conf_load(f->path, &f->conf), P11S_E_USAGE);
	snprintf(want, sizeof(want), "%s is not a regular file", f->path);
	assert_string_equal(err_msg(), want);
}

static void test_missing_file(void **state)
{
	struct fixture *f = *state;
	char want[1024];

	unlink(f->path);
	err_clear();
	assert_int_equal(conf_load(f->path, &f->conf), P11S_E_IO);
	snprintf(want, sizeof(want), "cannot open %s: No such file or directory", f->path);
	assert_string_equal(err_msg(), want);
	assert_int_equal(f->conf.n_profiles, 0);
}

static void test_too_big(void **state)
{
	struct fixture *f = *state;
	size_t len = CONF_MAX_SIZE + 1;
	char *big = malloc(len);
	char want[1024];

	assert_non_null(big);
	memset(big, '\n', len);
	write_mode(f, big, len, 0644);
	err_clear();
	assert_int_equal(conf_load(f->path, &f->conf), P11S_E_USAGE);
	snprintf(want, sizeof(want), "%s is larger than %d bytes", f->path, CONF_MAX_SIZE);
	assert_string_equal(err_msg(), want);
	/* Exactly the limit is fine. */
	write_mode(f, big, len - 1, 0644);
	err_clear();
	assert_int_equal(conf_load(f->path, &f->conf), P11S_OK);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_url_forms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crlf_bom, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secrets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_permissions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_regular, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_big, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
