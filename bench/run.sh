#!/bin/bash
# bench/run.sh [N]: how long p11scep takes to enroll, against a local micromdm
# scepserver and a SoftHSM2 token, beside what it cannot go below and beside
# the SCEP clients Debian ships. Prints markdown tables; asserts nothing.
#
#   1. the floor: the token operations timed in-process (bench/token-floor.c,
#      built here) and the server's own time for the same HTTP exchanges (curl
#      replaying a pkiMessage captured from a p11scep run)
#   2. one enrollment with an existing key, end to end, and its steps
#   3. the same by micromdm's scepclient and strongSwan's pki --scep
#   4. peak memory (max RSS) of each
#   5. PROFILES enrollments: one `p11scep run` against as many `p11scep enroll`
#
# Every process is timed by bench/proc-time.c (built here): posix_spawnp and
# wait4 from C, so a figure holds the process itself (spawn to reaped), its
# peak RSS and its page faults, and no shell, `timeout` or `time` around it.
#
# Build p11scep first (./configure && make): this script does not build it.
# Set-up: bash contrib/install-deps.sh (needs softhsm2, scep, opensc,
# strongswan-pki with libstrongswan-extra-plugins for its HTTP fetcher,
# socat, curl, libp11-dev, libp11-kit-dev, libssl-dev, pkg-config and a C compiler).
#
# Environment:
#   P11SCEP   the binary (default: p11scep at the top of this tree)
#   N         runs for each end-to-end median (or argument 1; default 10)
#   FLOOR_N   runs for each token operation and HTTP exchange (default 20)
#   PROFILES  profiles in the many-enrollments table (default 200)
#   CC        C compiler for token-floor and proc-time (default cc)
#   KEEP_TMP=1  keep the temp dir
# About 3 minutes with the defaults on 2 cores: 40 s of it makes the 200 keys.
set -u
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${1:-${N:-10}}
FLOOR_N=${FLOOR_N:-20}
PROFILES=${PROFILES:-200}
RUN_TIMEOUT=${RUN_TIMEOUT:-120}
P11SCEP=${P11SCEP:-$ROOT/p11scep}
case $P11SCEP in /*) ;; *) P11SCEP=$PWD/$P11SCEP ;; esac
export P11SCEP
for v in N FLOOR_N PROFILES; do
	case ${!v} in
	'' | *[!0-9]* | 0) echo "bench/run.sh: $v must be a positive number" >&2; exit 2 ;;
	esac
done
if [ ! -x "$P11SCEP" ]; then
	echo "bench/run.sh: $P11SCEP not found: build p11scep first (./configure && make) or set P11SCEP" >&2
	exit 1
fi
for tool in scepclient pki socat pkg-config "${CC:-cc}"; do
	command -v "$tool" >/dev/null 2>&1 || {
		echo "bench/run.sh: $tool not found: run contrib/install-deps.sh" >&2
		exit 1
	}
done

# Temp dir, token, scepserver and the EXIT trap that stops what we start.
# shellcheck source=tests/integration/lib.sh
. "$ROOT/tests/integration/lib.sh"
set +e +E
trap - ERR

W=$T/work
mkdir -p "$W"
cd "$W" || exit 1

# ---------------------------------------------------------------- figures

# median [FORMAT] < numbers: the median (printf FORMAT, default %.1f), empty
# for no input.
median() {
	sort -g | awk -v f="${1:-%.1f}" '{ v[NR] = $1 }
		END { if (NR == 0) exit; m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		      printf f "\n", m }'
}

# Records of timed runs: one line "MS RSS_KIB MINFLT" per run (see rec).
# col FILE K: the median of column K (1 ms, 2 max RSS KiB, 3 page faults).
col() {
	case $2 in
	1) awk '{ print $1 }' "$1" | median ;;
	*) awk -v k="$2" '{ print $k }' "$1" | median %.0f ;;
	esac
}

# calc EXPR: awk arithmetic on numbers; empty if any operand is empty.
calc() {
	case " $* " in *'  '*) return 0 ;; esac
	awk "BEGIN { printf \"%.1f\\n\", $* }"
}

# ratio A B: A / B as "1.23x", or "-".
ratio() {
	if [ -z "$1" ] || [ -z "$2" ] || [ "$(calc "$2 == 0")" = 1.0 ]; then
		echo "-"
		return
	fi
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx\n", a / b }'
}

# table < TSV: a markdown table; the first line is the header. Columns whose
# cells all look like figures are right-aligned.
table() {
	awk -F'\t' '
	{ rows[NR] = $0; if (NF > nf) nf = NF
	  for (i = 1; i <= NF; i++) {
		if (length($i) > w[i]) w[i] = length($i)
		if (NR > 1 && $i != "" && $i !~ /^([-0-9.,x%\/ ]+|-|n\/a|failed)$/) text[i] = 1
	  } }
	END {
		for (r = 1; r <= NR; r++) {
			n = split(rows[r], c, "\t"); line = "|"
			for (i = 1; i <= nf; i++) {
				s = i <= n ? c[i] : ""
				if (text[i] || r == 1) line = line sprintf(" %-*s |", w[i], s)
				else line = line sprintf(" %*s |", w[i], s)
			}
			print line
			if (r == 1) {
				line = "|"
				for (i = 1; i <= nf; i++) {
					d = ""; for (k = 0; k < w[i]; k++) d = d "-"
					if (!text[i]) d = substr(d, 2) ":"
					line = line " " d " |"
				}
				print line
			}
		}
	}'
	echo
}

heading() {
	printf '\n## %s\n\n' "$*"
}

# run_timed OUT ERR CMD...: runs CMD under proc-time, stdin from /dev/null,
# within TIME_LIMIT seconds (default RUN_TIMEOUT; then exit 124). Sets LAST_MS
# (spawn to reaped, ms), LAST_RC, LAST_RSS (max RSS, KiB) and LAST_FLT (page
# faults, ru_minflt). If proc-time cannot spawn CMD: LAST_RC 127, the reason
# in ERR, the figures empty.
run_timed() {
	local out=$1 err=$2 line
	shift 2
	line=$("$PT" -t "${TIME_LIMIT:-$RUN_TIMEOUT}" -o "$out" -e "$err" -- "$@" 2>"$T/proc-time.err")
	LAST_MS='' LAST_RC='' LAST_RSS='' LAST_FLT=''
	read -r LAST_MS LAST_RC LAST_RSS LAST_FLT <<<"$line"
	if [ -z "$LAST_FLT" ]; then
		LAST_MS='' LAST_RC=127 LAST_RSS='' LAST_FLT=''
		cat "$T/proc-time.err" >"$err"
	fi
}

# rec FILE: appends the last timed run's "MS RSS_KIB MINFLT" to FILE.
rec() {
	echo "$LAST_MS $LAST_RSS $LAST_FLT" >>"$1"
}

# why FILE: the last meaningful line of a failed run's stderr, one line.
why() {
	grep -v -e "^plugin '" -e '^TPM 2.0' -e '^ *$' "$1" | tail -n 2 | tr '\t' ' ' |
		sed 's/  */ /g; s/ $//' | paste -sd ';' | sed 's/;/; /g' | cut -c 1-200
}

# ---------------------------------------------------------------- set-up

P11_HAS_TIMINGS=0
"$P11SCEP" enroll --help 2>&1 | grep -q -- '--timings' && P11_HAS_TIMINGS=1

# shellcheck disable=SC2119 # the defaults: PIN 1234, no extra server flags
setup_token >/dev/null
# shellcheck disable=SC2119
start_scepserver >/dev/null
# The floor's and the many profiles' tokens each in a token directory of
# their own: SoftHSM2 reads every object of its directory at C_Initialize,
# so that each measurement loads only its own token's objects.
FLOOR_TOKEN=p11scep-floor
MANY_TOKEN=p11scep-many
MAIN_CONF=$SOFTHSM2_CONF
for t in "$FLOOR_TOKEN" "$MANY_TOKEN"; do
	mkdir -p "$T/tokens-$t"
	sed "s|^directories.tokendir = .*|directories.tokendir = $T/tokens-$t|" "$MAIN_CONF" \
		>"$T/softhsm2-$t.conf"
	SOFTHSM2_CONF=$T/softhsm2-$t.conf softhsm2-util --init-token --free --label "$t" \
		--pin "$TOKEN_PIN" --so-pin "$SO_PIN" >>"$T/init-token.log" 2>&1 ||
		fail "softhsm2-util --init-token --label $t failed"
done
FLOOR_CONF=$T/softhsm2-$FLOOR_TOKEN.conf
MANY_CONF=$T/softhsm2-$MANY_TOKEN.conf

TF=$T/token-floor
# shellcheck disable=SC2046 # pkg-config prints several words
"${CC:-cc}" -std=c11 -O2 -Wall -Wextra -o "$TF" "$ROOT/bench/token-floor.c" \
	$(pkg-config --cflags --libs libp11 libcrypto) $(pkg-config --cflags p11-kit-1) 2>"$T/cc.log" ||
	{ show_file "cc" "$T/cc.log"; fail "cannot build bench/token-floor.c (libp11-dev, libp11-kit-dev, libssl-dev)"; }
PT=$T/proc-time
"${CC:-cc}" -std=c11 -O2 -Wall -Wextra -o "$PT" "$ROOT/bench/proc-time.c" 2>"$T/cc.log" ||
	{ show_file "cc" "$T/cc.log"; fail "cannot build bench/proc-time.c"; }
# What loading libraries costs: programs that do nothing but link them.
printf 'int main(void) { return 0; }\n' >"$T/empty.c"
for lib in crypto curl; do
	"${CC:-cc}" -O2 -o "$T/links-$lib" "$T/empty.c" -Wl,--no-as-needed -l"$lib" 2>"$T/cc.log" ||
		{ show_file "cc" "$T/cc.log"; fail "cannot link a program with lib$lib"; }
done
CURL_LIBS=$(ldd "$T/links-curl" | grep -c '=>')

pkgver() {
	dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo "?"
}

# p11 LABEL: the key URI of LABEL in the bench token.
p11() {
	key_uri "$1" "pin-source=file:$PIN_FILE"
}

# p11_enroll LABEL [ARGS...]: the enroll command line (into P11_CMD), to
# $P11_URL if set, else to the server.
p11_enroll() {
	local label=$1
	shift
	P11_CMD=("$P11SCEP" enroll -u "${P11_URL:-$URL}" -k "$(p11 "$label")" --subject "CN=bench-$label"
		--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" "$@")
}

SC_FP=$(printf '%s' "$CA_FP" | tr -d ':' | tr 'A-F' 'a-f')

# sc_enroll KEYFILE [URL]: micromdm's scepclient with a file key (made when
# missing). It keeps its CSR in ./csr.pem and reuses it: removed so that
# each run builds its request, as p11scep does.
sc_enroll() {
	rm -f "$W/csr.pem" "$W/sc-cert.pem"
	SC_CMD=(scepclient -server-url "${2:-$URL}" -private-key "$1" -certificate "$W/sc-cert.pem"
		-challenge "$CHALLENGE" -cn bench-scepclient -ca-fingerprint "$SC_FP")
}

cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "# p11scep enrollment benchmark"
echo
printf '%s\t%s\n' "item" "value" \
	"date" "$(date -u '+%Y-%m-%d %H:%M UTC')" \
	"CPU" "${cpu:-?}" \
	"cores" "$(nproc)" \
	"load average at start" "$(cut -d' ' -f1-3 /proc/loadavg)" \
	"kernel" "$(uname -r)" \
	"p11scep" "$("$P11SCEP" --version 2>&1 | head -n 1) ($P11SCEP$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null | sed 's/^/, tree at /'))" \
	"p11scep timings" "$([ "$P11_HAS_TIMINGS" = 1 ] && echo "--timings" || echo "-v lines (no --timings in this build)")" \
	"OpenSSL" "$(openssl version | cut -d' ' -f2)" \
	"libp11" "$(pkg-config --modversion libp11)" \
	"SoftHSM2" "$(pkgver softhsm2) (file object store)" \
	"libcurl" "$(pkgver libcurl4)" \
	"scep (micromdm scepserver, scepclient)" "$(pkgver scep)" \
	"strongswan-pki" "$(pkgver strongswan-pki)$(dpkg-query -W -f ' (extra plugins ${Version})' libstrongswan-extra-plugins 2>/dev/null)" \
	"runs" "N=$N end to end, FLOOR_N=$FLOOR_N per token operation and HTTP exchange, PROFILES=$PROFILES" |
	table

# ---------------------------------------------------------------- 1. floor

# The token operations, in-process, in their own token.
SOFTHSM2_CONF=$FLOOR_CONF "$TF" "$SOFTHSM_MODULE" "$FLOOR_TOKEN" "$PIN_FILE" floor "$FLOOR_N" \
	>"$T/floor.txt" 2>"$T/floor.err" ||
	echo "token-floor failed: $(why "$T/floor.err")"
# fl NAME FIELD: from token-floor's output (3 median, 4 min, 5 max).
fl() {
	awk -v n="$1" -v f="$2" '$1 == n { printf "%.2f\n", $f }' "$T/floor.txt"
}

# A real pkiMessage: the first p11scep enrollment (new key "reuse"), through
# socat, which keeps what the client sent and counts its connections.
PROXY_PORT=$(free_port)
socat -d -d -r "$T/c2s.raw" "TCP-LISTEN:$PROXY_PORT,bind=127.0.0.1,reuseaddr,fork" \
	"TCP:127.0.0.1:$PORT" 2>"$T/socat.log" &
PROXY_PID=$!
SCEP_PIDS+=("$PROXY_PID")
PROXY_URL="http://127.0.0.1:$PROXY_PORT/scep"
for _ in $(seq 1 50); do
	curl -fsS -o /dev/null --max-time 2 "$PROXY_URL?operation=GetCACaps" 2>/dev/null && break
	sleep 0.1
done

# proxied NAME CMD...: runs CMD through the proxy; keeps what it sent in
# $T/NAME.raw and sets CONNS and REQS (TCP connections, HTTP requests).
proxied() {
	local name=$1 c0 s0
	shift
	c0=$(grep -c 'accepting connection' "$T/socat.log")
	s0=$(stat -c %s "$T/c2s.raw" 2>/dev/null || echo 0)
	run_timed "$T/$name.out" "$T/$name.err" "$@"
	PROXIED_RC=$LAST_RC
	sleep 0.2
	tail -c +"$((s0 + 1))" "$T/c2s.raw" >"$T/$name.raw"
	CONNS=$(( $(grep -c 'accepting connection' "$T/socat.log") - c0 ))
	REQS=$(grep -ac -E '^(GET|POST) /' "$T/$name.raw")
}

# post_body RAW OUT: the body of the first POST in a captured request stream.
post_body() {
	local off len hdr
	off=$(grep -abo -m 1 -E 'POST /[^ ]* HTTP/1\.[01]' "$1" | head -n 1 | cut -d: -f1)
	[ -n "$off" ] || return 1
	tail -c +"$((off + 1))" "$1" >"$T/post.raw"
	len=$(grep -ai -m 1 '^content-length:' "$T/post.raw" | tr -dc '0-9')
	hdr=$(grep -abx -m 1 $'\r' "$T/post.raw" | cut -d: -f1)
	[ -n "$len" ] && [ -n "$hdr" ] || return 1
	tail -c +"$((hdr + 3))" "$T/post.raw" | head -c "$len" >"$2"
	[ "$(wc -c <"$2")" -eq "$len" ] && openssl asn1parse -inform DER -in "$2" >/dev/null 2>&1
}

P11_URL=$PROXY_URL p11_enroll reuse
proxied p11-first "${P11_CMD[@]}"
P11_CONNS=$CONNS P11_REQS=$REQS
[ "$PROXIED_RC" = 0 ] || echo "p11scep's first enrollment failed (exit $PROXIED_RC): $(why "$T/p11-first.err")"
sc_enroll "$W/sc-proxy.key" "$PROXY_URL"
proxied sc-first "${SC_CMD[@]}"
SC_CONNS=$CONNS SC_REQS=$REQS
MSG_FROM="p11scep"
if ! post_body "$T/p11-first.raw" "$T/pkimsg.der"; then
	MSG_FROM="scepclient (none captured from p11scep)"
	post_body "$T/sc-first.raw" "$T/pkimsg.der" || MSG_FROM=
fi
kill "$PROXY_PID" 2>/dev/null
wait "$PROXY_PID" 2>/dev/null
SCEP_PIDS=("${SCEP_PIDS[@]:0:${#SCEP_PIDS[@]}-1}")

# The server's time: the same three exchanges on one kept-alive connection.
: >"$T/srv.caps" && : >"$T/srv.cacert" && : >"$T/srv.pki" && : >"$T/srv.sum"
SRV_FAIL=
for _ in $(seq 1 "$FLOOR_N"); do
	[ -n "$MSG_FROM" ] || { SRV_FAIL="no pkiMessage captured"; break; }
	curl -sS -o /dev/null -w 'caps %{time_total} %{http_code}\n' "$URL?operation=GetCACaps" \
		--next -sS -o /dev/null -w 'cacert %{time_total} %{http_code}\n' \
		"$URL?operation=GetCACert&message=CA" \
		--next -sS -o "$T/rep.der" -w 'pki %{time_total} %{http_code}\n' \
		-H 'Content-Type: application/x-pki-message' --data-binary "@$T/pkimsg.der" \
		"$URL?operation=PKIOperation" >"$T/curl.out" 2>"$T/curl.err"
	if [ "$(awk '$3 == 200' "$T/curl.out" | wc -l)" -ne 3 ] || [ ! -s "$T/rep.der" ]; then
		SRV_FAIL="curl: $(why "$T/curl.err") $(tr '\n' ' ' <"$T/curl.out")"
		break
	fi
	awk '{ printf "%.3f\n", $2 * 1000 >> (dir "/srv." $1); s += $2 }
		END { printf "%.3f\n", s * 1000 >> (dir "/srv.sum") }' dir="$T" "$T/curl.out"
done
SRV_CAPS=$(median <"$T/srv.caps") SRV_CACERT=$(median <"$T/srv.cacert")
SRV_PKI=$(median <"$T/srv.pki") SRV_SUM=$(median <"$T/srv.sum")

LOGIN=$(fl load-login 3) SIGN=$(fl sign-2048 3) DECRYPT=$(fl decrypt-2048 3)
KEYGEN=$(fl keygen-2048 3) STORE=$(fl store-cert 3) CREATE=$(fl store-cert:create 3)
FLOOR_KEY_OPS=$(calc "$LOGIN + 3 * $SIGN + $DECRYPT")
FLOOR_TOKEN_OPS=$(calc "$FLOOR_KEY_OPS + $STORE")
FLOOR_REUSE=$(calc "$FLOOR_TOKEN_OPS + $SRV_SUM")
# With the CA's answers cached, an enrollment makes one exchange.
FLOOR_CACHED=$(calc "$FLOOR_TOKEN_OPS + $SRV_PKI")
# A new key has no certificate to replace: its store is a create alone.
FLOOR_NEW=$(calc "$FLOOR_KEY_OPS + $CREATE + $KEYGEN + $SRV_SUM")

heading "1. The floor: token operations in-process, and the server's time"
echo "Token operations: bench/token-floor.c on libp11 $(pkg-config --modversion libp11), one process"
echo "(the login rows each in a fresh child process; the certificate rows through the module's"
echo "function list, in a session of its own, with the attributes p11scep stores), median of"
echo "$FLOOR_N, ms."
echo
{
	printf 'operation\tmedian ms\tmin\tmax\n'
	flrow() {
		printf '%s\t%s\t%s\t%s\n' "$2" "$(fl "$1" 3)" "$(fl "$1" 4)" "$(fl "$1" 5)"
	}
	flrow load-login "module load + find token + RW session + login"
	flrow load-login:module-load "  of which module load (C_Initialize)"
	flrow load-login:find-token "  of which slot list + find token"
	flrow load-login:rw-session "  of which RW session"
	flrow load-login:login "  of which login"
	flrow keygen-2048 "RSA-2048 key generation"
	flrow keygen-3072 "RSA-3072 key generation"
	flrow sign-2048 "RSA-2048 sign (SHA-256, EVP_DigestSign)"
	flrow decrypt-2048 "RSA-2048 decrypt (PKCS#1 v1.5, EVP_PKEY_decrypt)"
	flrow store-cert "store a certificate (C_CreateObject), replacing the previous one (C_DestroyObject)"
	flrow store-cert:create "  of which C_CreateObject"
	flrow store-cert:destroy "  of which C_DestroyObject"
} | table
if [ -n "$SRV_FAIL" ]; then
	echo "The server's time: failed: $SRV_FAIL"
	echo
else
	echo "The server's time: curl replaying one enrollment's exchanges on one kept-alive"
	echo "connection (the pkiMessage captured from $MSG_FROM), time_total, median of $FLOOR_N, ms."
	echo
	printf 'exchange\tmedian ms\n%s\t%s\n%s\t%s\n%s\t%s\n%s\t%s\n' \
		"GetCACaps" "$SRV_CAPS" "GetCACert" "$SRV_CACERT" \
		"PKIOperation (POST, PKCSReq, the CA issues)" "$SRV_PKI" \
		"all three (median of the sums)" "$SRV_SUM" | table
fi
printf 'floor\tms\n%s\t%s\n%s\t%s\n%s\t%s\n%s\t%s\n%s\t%s\n' \
	"token ops of a reuse-key enrollment: login + 3 signs + 1 decrypt + store the certificate" \
	"${FLOOR_TOKEN_OPS:--}" \
	"  of which key ops: login + 3 signs + 1 decrypt" "${FLOOR_KEY_OPS:--}" \
	"floor, enrollment with an existing key: token ops + server (3 exchanges)" "${FLOOR_REUSE:--}" \
	"floor, the same with the CA's answers cached: token ops + PKIOperation" "${FLOOR_CACHED:--}" \
	"floor, enrollment with a new RSA-2048 key: + one key generation, no certificate to replace" \
	"${FLOOR_NEW:--}" | table

# ---------------------------------------------------------------- 2. one enrollment

# phases ERRFILE: "STEP MS" lines from --timings, else from the -v lines.
phases() {
	if grep -q '^p11scep: timing: ' "$1"; then
		awk '/^p11scep: timing: / { print $3, $4 }' "$1"
		return
	fi
	awk '
	function ms(s) { sub(/ ms\)$/, "", s); sub(/.*\(/, "", s); return s }
	/^p11scep: GetCACaps: .*ms\)$/ { print "caps", ms($0) }
	/^p11scep: GetCACert: .*ms\)$/ { print "getcacert", ms($0) }
	/^p11scep: token opened and logged in/ { print "token-open", ms($0) }
	/^p11scep: reusing the key in the token/ { print "key-find", ms($0) }
	/^p11scep: generated an RSA-[0-9]* key/ { print "keygen", ms($0) }
	/^p11scep: (PKCSReq|RenewalReq) built/ { print "build", ms($0) }
	/^p11scep: PKIOperation exchange/ { print "exchange", ms($0) }
	/^p11scep: CertRep verified/ { print "verify", ms($0) }
	/^p11scep: certificate verified and stored/ { print "store", ms($0) }
	/^p11scep: enroll took [0-9.]* ms/ { print "total", $4 }' "$1"
}

describe() {
	case $1 in
	startup) echo "start-up to the command" ;;
	caps) echo "GetCACaps exchange" ;;
	ca-cache) echo "caps + CA certs from the cache, no exchange" ;;
	getcacert) echo "GetCACert exchange + CA pinning" ;;
	module-load) echo "module load" ;;
	login) echo "login" ;;
	token-open) echo "module load + token + session + login" ;;
	key-find) echo "find the key" ;;
	keygen) echo "key generation" ;;
	csr) echo "CSR (1 sign)" ;;
	build) echo "CSR + signer cert + pkiMessage (3 signs)" ;;
	pkimessage) echo "signer cert + pkiMessage (2 signs)" ;;
	exchange) echo "PKIOperation exchange" ;;
	verify) echo "CertRep verify + decrypt (1 decrypt)" ;;
	check-issued) echo "issued cert checks" ;;
	store) echo "cert checks + file and token writes" ;;
	file-stage | file-write) echo "files written" ;;
	file-commit) echo "files renamed into place" ;;
	token-write) echo "cert stored in the token" ;;
	total) echo "total, as p11scep counts it" ;;
	*) echo "" ;;
	esac
}

P11_TFLAG=-v
[ "$P11_HAS_TIMINGS" = 1 ] && P11_TFLAG=--timings
: >"$T/p11-reuse.ms" && : >"$T/p11-reuse.phases" && : >"$T/sc-reuse.ms"
: >"$T/true.ms" && : >"$T/version.ms" && : >"$T/crypto.ms" && : >"$T/curl.ms"
P11_REUSE_FAIL=0 SC_REUSE_FAIL=0 P11_REUSE_WHY='' SC_REUSE_WHY=''
# The peer's key, made by its own first run.
sc_enroll "$W/sc.key"
run_timed "$T/sc.out" "$T/sc.err" "${SC_CMD[@]}"
SC_FIRST_RC=$LAST_RC
[ "$SC_FIRST_RC" = 0 ] || SC_REUSE_WHY=$(why "$T/sc.err")
# Interleaved, so that a busy moment of the machine hits both alike.
for i in $(seq 1 "$N"); do
	p11_enroll reuse "$P11_TFLAG"
	run_timed "$T/p11.out" "$T/p11.err" "${P11_CMD[@]}"
	if [ "$LAST_RC" = 0 ]; then
		rec "$T/p11-reuse.ms"
		phases "$T/p11.err" | sed "s/^/$i /" >>"$T/p11-reuse.phases"
	else
		P11_REUSE_FAIL=$((P11_REUSE_FAIL + 1))
		P11_REUSE_WHY="exit $LAST_RC: $(why "$T/p11.err")"
	fi
	sc_enroll "$W/sc.key"
	run_timed "$T/sc.out" "$T/sc.err" "${SC_CMD[@]}"
	if [ "$LAST_RC" = 0 ]; then
		rec "$T/sc-reuse.ms"
	else
		SC_REUSE_FAIL=$((SC_REUSE_FAIL + 1))
		SC_REUSE_WHY="exit $LAST_RC: $(why "$T/sc.err")"
	fi
	# What starting a process costs here: /bin/true, and p11scep doing nothing.
	run_timed /dev/null /dev/null /bin/true
	rec "$T/true.ms"
	run_timed /dev/null /dev/null "$P11SCEP" --version
	rec "$T/version.ms"
	run_timed /dev/null /dev/null "$T/links-crypto"
	rec "$T/crypto.ms"
	run_timed /dev/null /dev/null "$T/links-curl"
	rec "$T/curl.ms"
done
P11_REUSE=$(col "$T/p11-reuse.ms" 1) P11_REUSE_FLT=$(col "$T/p11-reuse.ms" 3)
# The floor of the exchanges the runs made: most took the CA from the cache.
FLOOR_E2E=$FLOOR_REUSE FLOOR_E2E_WHAT="token ops + the 3 exchanges (table 1)"
cached=$(awk '$2 == "ca-cache"' "$T/p11-reuse.phases" | wc -l)
if [ "$((2 * cached))" -gt "$(awk '!seen[$1]++' "$T/p11-reuse.phases" | wc -l)" ]; then
	FLOOR_E2E=$FLOOR_CACHED FLOOR_E2E_WHAT="token ops + PKIOperation (table 1; most runs had the CA cached)"
	FLOOR_NEW=$(calc "$FLOOR_NEW - $SRV_SUM + $SRV_PKI")
fi
SC_REUSE=$(col "$T/sc-reuse.ms" 1) SC_REUSE_FLT=$(col "$T/sc-reuse.ms" 3)
TRUE_MS=$(col "$T/true.ms" 1) TRUE_FLT=$(col "$T/true.ms" 3)
VERSION_MS=$(col "$T/version.ms" 1) VERSION_FLT=$(col "$T/version.ms" 3)
CRYPTO_MS=$(col "$T/crypto.ms" 1) CRYPTO_FLT=$(col "$T/crypto.ms" 3)
CURL_MS=$(col "$T/curl.ms" 1) CURL_FLT=$(col "$T/curl.ms" 3)

heading "2. One enrollment with an existing key (p11scep enroll, SoftHSM2), median of $N"
if [ -z "$P11_REUSE" ]; then
	echo "p11scep enroll failed in all $N runs: $P11_REUSE_WHY"
	echo
else
	[ "$P11_REUSE_FAIL" = 0 ] || echo "($P11_REUSE_FAIL of $N runs failed: $P11_REUSE_WHY)"
	echo "Steps from p11scep's $([ "$P11_TFLAG" = -v ] && echo "-v lines" || echo "--timings lines");"
	echo "the processes timed by proc-time (posix_spawnp to reaped by wait4), with their page"
	echo "faults (ru_minflt, median; each costs 10-30 us on a VM)."
	echo
	{
		printf 'step\twhat\tmedian ms\tpage faults\n'
		steps=$(awk '!seen[$2]++ { print $2 }' "$T/p11-reuse.phases")
		runs=$(awk '!seen[$1]++' "$T/p11-reuse.phases" | wc -l)
		for s in $steps; do
			# A step that only some runs take (the cache spares the others).
			k=$(awk -v s="$s" '$2 == s' "$T/p11-reuse.phases" | wc -l)
			printf '%s\t%s%s\t%s\t\n' "$s" "$(describe "$s")" \
				"$([ "$k" = "$runs" ] || echo " (in $k of $runs runs)")" \
				"$(awk -v s="$s" '$2 == s { print $3 }' "$T/p11-reuse.phases" | median)"
		done
		# Per run: the sum of the steps other than start-up and total.
		sum=$(awk '$2 != "total" && $2 != "startup" { s[$1] += $3 } END { for (r in s) print s[r] }' \
			"$T/p11-reuse.phases" | median)
		printf '%s\t%s\t%s\t\n' "sum" "the steps above but startup and total" "${sum:--}"
		printf '%s\t%s\t%s\t%s\n' "process" "whole process, spawn to reaped" "$P11_REUSE" \
			"${P11_REUSE_FLT:--}"
		tot=$(awk '$2 == "total" { print $3 }' "$T/p11-reuse.phases" | median)
		out=$(calc "$P11_REUSE - ${tot:-}")
		printf '%s\t%s\t%s\t\n' "outside total" "exec, linking, start-up, teardown, exit" "${out:--}"
		printf '%s\t%s\t%s\t%s\n' "  p11scep --version" \
			"a process that links p11scep's libraries and exits" "${VERSION_MS:--}" "${VERSION_FLT:--}"
		printf '%s\t%s\t%s\t%s\n' "  links libcurl" \
			"an empty C program linked with libcurl ($CURL_LIBS libraries)" \
			"${CURL_MS:--}" "${CURL_FLT:--}"
		printf '%s\t%s\t%s\t%s\n' "  links libcrypto" "an empty C program linked with libcrypto" \
			"${CRYPTO_MS:--}" "${CRYPTO_FLT:--}"
		printf '%s\t%s\t%s\t%s\n' "  /bin/true" "a process (proc-time: spawn + exit)" \
			"${TRUE_MS:--}" "${TRUE_FLT:--}"
		printf '%s\t%s\t%s\t\n' "floor" "$FLOOR_E2E_WHAT" "${FLOOR_E2E:--}"
		printf '%s\t%s\t%s\t\n' "process / floor" "issue #6 target: at most 1.20x" \
			"$(ratio "$P11_REUSE" "$FLOOR_E2E")"
		printf '%s\t%s\t%s\t\n' "total / floor" "in-process both: p11scep's total against the floor" \
			"$(ratio "${tot:-}" "$FLOOR_E2E")"
	} | table
fi

# ---------------------------------------------------------------- 3. peers

# New keys: p11scep in the token, scepclient in a file; interleaved too.
: >"$T/p11-new.ms" && : >"$T/sc-new.ms"
P11_NEW_FAIL=0 SC_NEW_FAIL=0 P11_NEW_WHY='' SC_NEW_WHY=''
for i in $(seq 1 "$N"); do
	p11_enroll "new$i"
	run_timed "$T/p11.out" "$T/p11.err" "${P11_CMD[@]}"
	if [ "$LAST_RC" = 0 ]; then
		rec "$T/p11-new.ms"
	else
		P11_NEW_FAIL=$((P11_NEW_FAIL + 1))
		P11_NEW_WHY="exit $LAST_RC: $(why "$T/p11.err")"
	fi
	sc_enroll "$W/sc-new$i.key"
	run_timed "$T/sc.out" "$T/sc.err" "${SC_CMD[@]}"
	if [ "$LAST_RC" = 0 ]; then
		rec "$T/sc-new.ms"
	else
		SC_NEW_FAIL=$((SC_NEW_FAIL + 1))
		SC_NEW_WHY="exit $LAST_RC: $(why "$T/sc.err")"
	fi
done
P11_NEW=$(col "$T/p11-new.ms" 1) P11_NEW_FLT=$(col "$T/p11-new.ms" 3)
SC_NEW=$(col "$T/sc-new.ms" 1) SC_NEW_FLT=$(col "$T/sc-new.ms" 3)

# strongSwan: a file key made by pki --gen first; its default cipher (AES),
# then 3DES, which gets further against this server. A cipher whose first
# run fails is not run again: that run is kept in pki-CIPHER.failed.
pki --gen --type rsa --size 2048 --outform pem >"$W/pki.key" 2>"$T/pki-gen.err"
PKI_ROWS=() PKI_WHY=()
for cipher in aes des3; do
	PKI_CMD=(pki --scep --url "$URL" --in "$W/pki.key" --dn "CN=bench-pki" --password "$CHALLENGE"
		--cacert-enc "$CA_PEM" --cacert-sig "$CA_PEM" --cipher "$cipher" --outform pem)
	: >"$T/pki-$cipher.ms" && : >"$T/pki-$cipher.failed"
	run_timed "$W/pki.crt" "$T/pki-$cipher.err" "${PKI_CMD[@]}"
	if [ "$LAST_RC" != 0 ]; then
		rec "$T/pki-$cipher.failed"
		PKI_ROWS+=("$(printf 'pki --scep --cipher %s (file key)\texisting\t0/1\tfailed\t%s\t-\t-\t-' \
			"$cipher" "${LAST_FLT:--}")")
		PKI_WHY+=("pki --scep --cipher $cipher failed (exit $LAST_RC): $(why "$T/pki-$cipher.err")")
		continue
	fi
	ok=0
	for _ in $(seq 1 "$N"); do
		run_timed "$W/pki.crt" "$T/pki.err" "${PKI_CMD[@]}"
		[ "$LAST_RC" = 0 ] && { rec "$T/pki-$cipher.ms"; ok=$((ok + 1)); }
	done
	m=$(col "$T/pki-$cipher.ms" 1)
	PKI_ROWS+=("$(printf 'pki --scep --cipher %s (file key)\texisting\t%s/%s\t%s\t%s\t%s\t-\t-' \
		"$cipher" "$ok" "$N" "${m:--}" "$(col "$T/pki-$cipher.ms" 3)" "$(ratio "$P11_REUSE" "$m")")")
done

heading "3. The same enrollment by the peer clients, same server, same run, median of $N"
echo "Whole process, spawn to reaped (proc-time), ms, and its page faults (ru_minflt)."
echo "\"p11scep / client\" below 1 means p11scep is faster; issue #6 target: at most 0.80x"
echo "of the fastest peer with an existing key."
echo "Connections and requests from one run of each through a socat proxy."
echo
{
	printf 'client\tkey\truns ok\tmedian ms\tpage faults\tp11scep / client\tTCP conns\tHTTP requests\n'
	printf 'p11scep enroll (token key)\texisting\t%s/%s\t%s\t%s\t1.00x\t%s\t%s\n' \
		"$((N - P11_REUSE_FAIL))" "$N" "${P11_REUSE:--}" "${P11_REUSE_FLT:--}" \
		"$P11_CONNS" "$P11_REQS"
	printf 'scepclient (file key)\texisting\t%s/%s\t%s\t%s\t%s\t%s\t%s\n' \
		"$((N - SC_REUSE_FAIL))" "$N" "${SC_REUSE:--}" "${SC_REUSE_FLT:--}" \
		"$(ratio "$P11_REUSE" "$SC_REUSE")" "$SC_CONNS" "$SC_REQS"
	for r in "${PKI_ROWS[@]}"; do
		printf '%s\n' "$r"
	done
	printf 'p11scep enroll (token key)\tnew RSA-2048\t%s/%s\t%s\t%s\t1.00x\t-\t-\n' \
		"$((N - P11_NEW_FAIL))" "$N" "${P11_NEW:--}" "${P11_NEW_FLT:--}"
	printf 'scepclient (file key)\tnew RSA-2048\t%s/%s\t%s\t%s\t%s\t-\t-\n' \
		"$((N - SC_NEW_FAIL))" "$N" "${SC_NEW:--}" "${SC_NEW_FLT:--}" "$(ratio "$P11_NEW" "$SC_NEW")"
	printf 'floor (table 1)\texisting\t-\t%s\t-\t%s\t-\t-\n' "${FLOOR_E2E:--}" \
		"$(ratio "$P11_REUSE" "$FLOOR_E2E")"
	printf 'floor (table 1)\tnew RSA-2048\t-\t%s\t-\t%s\t-\t-\n' "${FLOOR_NEW:--}" \
		"$(ratio "$P11_NEW" "$FLOOR_NEW")"
} | table
for w in "${PKI_WHY[@]}" \
	${P11_NEW_WHY:+"p11scep enroll, new key: $P11_NEW_FAIL of $N failed: $P11_NEW_WHY"} \
	${SC_REUSE_WHY:+"scepclient, existing key: $SC_REUSE_FAIL of $N failed: $SC_REUSE_WHY"} \
	${SC_NEW_WHY:+"scepclient, new key: $SC_NEW_FAIL of $N failed: $SC_NEW_WHY"}; do
	echo "- $w"
done
echo

# ---------------------------------------------------------------- 4. memory

# rss_row LABEL RECORDS [FAILED]: the median max RSS of the runs in RECORDS,
# else of those in FAILED, marked so.
rss_row() {
	local label=$1 f=$2 k
	if [ ! -s "$f" ] && [ -s "${3:-}" ]; then
		f=$3
		label="$label (the run failed)"
	fi
	k=$(col "$f" 2)
	printf '%s\t%s\t%s\t%s\n' "$label" "$(wc -l <"$f")" "${k:--}" "$([ -n "$k" ] && calc "$k / 1024")"
}

heading "4. Peak memory (max RSS: ru_maxrss from wait4), median of the runs of tables 2 and 3"
{
	printf 'program\truns\tKiB\tMiB\n'
	rss_row "p11scep enroll, existing key" "$T/p11-reuse.ms"
	rss_row "p11scep enroll, new key" "$T/p11-new.ms"
	rss_row "scepclient, existing key" "$T/sc-reuse.ms"
	rss_row "scepclient, new key" "$T/sc-new.ms"
	rss_row "pki --scep (its default cipher, AES)" "$T/pki-aes.ms" "$T/pki-aes.failed"
	rss_row "pki --scep --cipher des3" "$T/pki-des3.ms" "$T/pki-des3.failed"
	rss_row "p11scep --version (its libraries, no work)" "$T/version.ms"
} | table

# ---------------------------------------------------------------- 5. many

# secs MS: milliseconds as seconds, empty for empty.
secs() {
	[ -z "$1" ] || awk -v m="$1" 'BEGIN { printf "%.2f\n", m / 1000 }'
}

heading "5. $PROFILES enrollments: one p11scep run over $PROFILES profiles against $PROFILES p11scep enroll"
export SOFTHSM2_CONF=$MANY_CONF
TIME_LIMIT=$((RUN_TIMEOUT * 10)) run_timed /dev/null "$T/many-keygen.err" \
	"$TF" "$SOFTHSM_MODULE" "$MANY_TOKEN" "$PIN_FILE" keygen p "$PROFILES"
KG_RC=$LAST_RC
KG_S=$(secs "$LAST_MS")
CONF=$T/many.conf
{
	printf '[defaults]\nurl = %s\nca-fingerprint = %s\nchallenge-file = %s\nmodule = %s\n' \
		"$URL" "$CA_FP" "$CHALLENGE_FILE" "$SOFTHSM_MODULE"
	for i in $(seq 1 "$PROFILES"); do
		printf '\n[profile p%s]\nkey = pkcs11:token=%s;object=p%s?pin-source=file:%s\nsubject = CN=p%s.bench.test\n' \
			"$i" "$MANY_TOKEN" "$i" "$PIN_FILE" "$i"
	done
} >"$CONF"
chmod 600 "$CONF"

many_ok() {
	find "$1/profiles" -path '*/user/cert.pem' 2>/dev/null | wc -l
}

if [ "$KG_RC" != 0 ]; then
	echo "pre-generating $PROFILES keys failed: $(why "$T/many-keygen.err")"
	echo
else
	TIME_LIMIT=$((RUN_TIMEOUT * 10)) run_timed "$T/many-run.out" "$T/many-run.err" \
		"$P11SCEP" run -c "$CONF" --state-dir "$T/many-run"
	RUN_RC=$LAST_RC RUN_S=$(secs "$LAST_MS") RUN_FLT=${LAST_FLT:--}
	RUN_OK=$(many_ok "$T/many-run")

	# Both sides start from keys without certificates.
	"$TF" "$SOFTHSM_MODULE" "$MANY_TOKEN" "$PIN_FILE" drop-certs 2>"$T/drop.err" ||
		echo "(removing the first side's certificates failed: $(why "$T/drop.err"))"
	SEQ_FAILS=0 SEQ_WHY=''
	: >"$T/seq.ms"
	for i in $(seq 1 "$PROFILES"); do
		run_timed "$T/seq.out" "$T/seq.err" "$P11SCEP" enroll -c "$CONF" -p "p$i" \
			--state-dir "$T/many-seq"
		rec "$T/seq.ms"
		[ "$LAST_RC" = 0 ] || { SEQ_FAILS=$((SEQ_FAILS + 1)); SEQ_WHY=$(why "$T/seq.err"); }
	done
	# The sum of the processes: the shell's time between them is not the client's.
	SEQ_S=$(secs "$(awk '{ s += $1 } END { printf "%.2f\n", s }' "$T/seq.ms")")
	SEQ_FLT=$(awk '{ s += $3 } END { printf "%d\n", s }' "$T/seq.ms")
	SEQ_OK=$(many_ok "$T/many-seq")

	echo "Existing keys on both sides: $PROFILES RSA-2048 keys pre-generated in one token"
	echo "(one process, ${KG_S:-?} s), one key label and one store dir per profile, a fresh"
	echo "state dir for each side, the token's certificates removed between the sides."
	echo "Each process timed by proc-time (spawn to reaped); the sequential way's time and"
	echo "page faults are the sums over its $PROFILES processes."
	echo
	{
		printf 'way\tcerts stored\twall s\tenrollments/s\tms each\tpage faults\n'
		printf 'one p11scep run -c (%s profiles)\t%s/%s\t%s\t%s\t%s\t%s\n' "$PROFILES" \
			"$RUN_OK" "$PROFILES" "${RUN_S:--}" "$(calc "$RUN_OK / $RUN_S")" \
			"$(calc "$RUN_S * 1000 / $PROFILES")" "$RUN_FLT"
		printf '%s x p11scep enroll -c -p, one after another\t%s/%s\t%s\t%s\t%s\t%s\n' "$PROFILES" \
			"$SEQ_OK" "$PROFILES" "${SEQ_S:--}" "$(calc "$SEQ_OK / $SEQ_S")" \
			"$(calc "$SEQ_S * 1000 / $PROFILES")" "$SEQ_FLT"
		printf 'run / sequential, throughput\t-\t-\t%s\t-\t-\n' \
			"$(ratio "$(calc "$RUN_OK / $RUN_S")" "$(calc "$SEQ_OK / $SEQ_S")")"
	} | table
	[ "$RUN_RC" = 0 ] || echo "- p11scep run exited $RUN_RC: $(why "$T/many-run.err")"
	[ "$SEQ_FAILS" = 0 ] || echo "- $SEQ_FAILS p11scep enroll runs failed, the last: $SEQ_WHY"
	# Where one enrollment's time goes in a token of PROFILES keys.
	run_timed "$T/one.out" "$T/one.err" "$P11SCEP" enroll -c "$CONF" -p p1 \
		--state-dir "$T/many-one" "$P11_TFLAG"
	if [ "$LAST_RC" = 0 ]; then
		echo "- one more p11scep enroll -p p1 in this token of $PROFILES keys, $LAST_MS ms"
		echo "  ($LAST_FLT page faults), steps in ms:"
		echo "  $(phases "$T/one.err" | awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }')"
	else
		echo "- one more p11scep enroll -p p1 failed (exit $LAST_RC): $(why "$T/one.err")"
	fi
fi
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
