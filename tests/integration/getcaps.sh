#!/bin/bash
# p11scep getcaps against micromdm's scepserver, and against a closed port.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_scepserver

note "getcaps prints the server's capabilities, one per line"
expect_exit 0 p11s getcaps -u "$URL"
for cap in AES SHA-256 POSTPKIOperation Renewal SCEPStandard; do
	assert_grep "$OUT" "^$cap\$" "getcaps output lacks the line '$cap'"
done
[ ! -s "$ERR" ] || { show_file stderr "$ERR"; fail "getcaps wrote to stderr on success"; }

# The server names only capabilities p11scep knows, so it must print exactly
# the server's set (in any order), no more and no less.
curl -fsS "$URL?operation=GetCACaps" | tr -s ' \r\n' '\n' | sed '/^$/d' | sort >"$T/caps.server"
sort "$OUT" >"$T/caps.ours"
if ! cmp -s "$T/caps.server" "$T/caps.ours"; then
	show_file "server caps" "$T/caps.server"
	show_file "p11scep caps" "$T/caps.ours"
	fail "getcaps output differs from the server's capability set"
fi

note "-v still prints the capabilities on stdout"
expect_exit 0 p11s getcaps -v -u "$URL"
assert_grep "$OUT" '^AES$'

note "nothing listening: network error, exit 5"
expect_error 5 '' p11s getcaps -u "$(dead_url)" --timeout 10
[ ! -s "$OUT" ] || { show_file stdout "$OUT"; fail "getcaps printed capabilities without a server"; }

note "no URL: usage error, exit 2"
expect_error 2 '' p11s getcaps

echo "PASS: getcaps"
