# Sourced by every integration test (and by contrib/demo.sh).
#
# Each test gets its own temp dir, SoftHSM2 config and token, and its own
# scepserver on its own port, so tests can run in parallel. The EXIT trap
# kills only the processes this shell started and removes the temp dir.
#
# Environment:
#   P11SCEP       absolute path of the p11scep binary (required)
#   TESTS_SRCDIR  absolute path of tests/ (optional)
#   P11SCEP_WRAP  command prefix for every p11scep run, e.g. "valgrind -q"
#   KEEP_TMP=1    keep the temp dir for a post-mortem

set -Eeu -o pipefail
shopt -s inherit_errexit

SOFTHSM_MODULE=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
TOKEN_LABEL=p11scep-test
SO_PIN=5678
P11SCEP_TIMEOUT=${P11SCEP_TIMEOUT:-60}

# Our own secrets must come from the test, never from the caller's shell.
unset P11SCEP_PIN P11SCEP_CHALLENGE

T=
SCEP_PIDS=()
SCEP_LOG=
RSP_LOG=

# ---------------------------------------------------------------- reporting

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

note() {
	echo "--- $*"
}

# Shows a file under a heading, for failure messages.
show_file() {
	local title=$1 f=$2
	echo "----- $title ($f) -----" >&2
	if [ -f "$f" ]; then
		cat "$f" >&2
	else
		echo "(missing)" >&2
	fi
	echo "----- end of $title -----" >&2
}

trap 'echo "FAIL: command failed (status $?) at ${BASH_SOURCE[0]}:$LINENO: $BASH_COMMAND" >&2' ERR

# Tools are a hard requirement: a missing one is a failure that says what to
# install, never a skip.
need_tool() {
	local tool=$1 pkg=$2
	command -v "$tool" >/dev/null 2>&1 ||
		fail "$tool not found: install the Debian package $pkg (or run contrib/install-deps.sh)"
}

need_tool openssl openssl
need_tool curl curl
need_tool softhsm2-util softhsm2
need_tool scepserver scep
need_tool pkcs11-tool opensc
need_tool ss iproute2
need_tool setsid util-linux
need_tool timeout coreutils
need_tool cmp diffutils
[ -f "$SOFTHSM_MODULE" ] ||
	fail "$SOFTHSM_MODULE not found: install the Debian package softhsm2"

# ---------------------------------------------------------------- temp dir

cleanup() {
	local rc=$? pid
	trap - ERR
	set +e
	for pid in "${SCEP_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
		for _ in $(seq 1 20); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	if [ "$rc" -ne 0 ] && [ -n "$SCEP_LOG" ] && [ -f "$SCEP_LOG" ]; then
		echo "----- scepserver log, last 30 lines -----" >&2
		tail -n 30 "$SCEP_LOG" >&2
	fi
	if [ "$rc" -ne 0 ] && [ -n "$RSP_LOG" ] && [ -f "$RSP_LOG" ]; then
		echo "----- scep-responder log, last 30 lines -----" >&2
		tail -n 30 "$RSP_LOG" >&2
	fi
	if [ -n "$T" ] && [ -d "$T" ]; then
		if [ "${KEEP_TMP:-0}" = 1 ]; then
			echo "kept $T" >&2
		else
			rm -rf "$T"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

T=$(mktemp -d "${TMPDIR:-/tmp}/p11scep-test.XXXXXX")
OUT=$T/stdout
ERR=$T/stderr
# Pending-request state of p11scep goes into the test's own dir.
export XDG_STATE_HOME=$T/state

# ---------------------------------------------------------------- asserts

# expect_exit N CMD...: runs CMD with stdout in $OUT and stderr in $ERR;
# fails showing both when its exit status is not N.
expect_exit() {
	local want=$1 rc=0
	shift
	"$@" >"$OUT" 2>"$ERR" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		show_file stdout "$OUT"
		show_file stderr "$ERR"
		fail "expected exit $want, got $rc from: $*"
	fi
}

# expect_error N REGEX CMD...: as expect_exit, and stderr must hold exactly
# one error line, starting "p11scep: " and matching REGEX (ERE, any case).
# Warnings ("p11scep: warning: ...") may come beside it. With -v, progress
# lines start with "p11scep: " too: then the error must be the last of them.
expect_error() {
	local want=$1 re=$2 lines a verbose=0
	shift 2
	for a in "$@"; do
		case $a in -v | --verbose) verbose=1 ;; esac
	done
	expect_exit "$want" "$@"
	lines=$(grep -E '^p11scep: ' "$ERR" | grep -Eiv '^p11scep: (warning|note)' || true)
	[ "$verbose" = 0 ] || lines=$(printf '%s\n' "$lines" | tail -n 1)
	if [ -z "$lines" ] || [ "$(printf '%s\n' "$lines" | grep -c '^')" -ne 1 ]; then
		show_file stderr "$ERR"
		fail "expected exactly one 'p11scep: ' error line on stderr from: $*"
	fi
	if ! printf '%s\n' "$lines" | grep -Eiq -- "$re"; then
		show_file stderr "$ERR"
		fail "error line does not match /$re/: $lines"
	fi
}

assert_eq() {
	[ "$1" = "$2" ] || fail "${3:-values differ}: got '$1', expected '$2'"
}

assert_ne() {
	[ "$1" != "$2" ] || fail "${3:-values are equal}: both '$1'"
}

# assert_grep FILE REGEX [MSG]: an extended regex matches a line of FILE.
assert_grep() {
	if ! grep -Eq -- "$2" "$1"; then
		show_file "$(basename "$1")" "$1"
		fail "${3:-no line matches /$2/ in $1}"
	fi
}

# assert_no_grep FILE REGEX [MSG]
assert_no_grep() {
	if grep -Eq -- "$2" "$1"; then
		show_file "$(basename "$1")" "$1"
		fail "${3:-a line matches /$2/ in $1}"
	fi
}

# assert_no_string FILE STRING [MSG]: fixed string, anywhere, even mid-line.
assert_no_string() {
	local msg="'$2' found in $1"
	if grep -Fq -- "$2" "$1"; then
		fail "${3:-$msg}"
	fi
}

assert_file() {
	[ -s "$1" ] || fail "${2:-file $1 missing or empty}"
}

assert_no_file() {
	[ ! -e "$1" ] || fail "${2:-file $1 should not exist}"
}

# ---------------------------------------------------------------- p11scep

[ -n "${P11SCEP:-}" ] || fail "P11SCEP is not set: run through 'make check' or set it to the built binary"
[ -x "$P11SCEP" ] || fail "P11SCEP=$P11SCEP is not an executable file: build it first (make)"

# p11s ARGS...: runs the binary with no controlling terminal (it can never
# wait at a PIN prompt) and a time limit.
p11s() {
	local wrap=()
	if [ -n "${P11SCEP_WRAP:-}" ]; then
		read -r -a wrap <<<"$P11SCEP_WRAP"
	fi
	setsid -w timeout "$P11SCEP_TIMEOUT" "${wrap[@]}" "$P11SCEP" "$@" </dev/null
}

# ---------------------------------------------------------------- token

# setup_token [PIN]: a fresh SoftHSM2 token p11scep-test in $T/tokens.
setup_token() {
	TOKEN_PIN=${1:-1234}
	mkdir -p "$T/tokens"
	SOFTHSM2_CONF=$T/softhsm2.conf
	export SOFTHSM2_CONF
	cat >"$SOFTHSM2_CONF" <<-EOF
	directories.tokendir = $T/tokens
	objectstore.backend = file
	log.level = ERROR
	EOF
	softhsm2-util --init-token --free --label "$TOKEN_LABEL" \
		--pin "$TOKEN_PIN" --so-pin "$SO_PIN" >"$T/init-token.log" 2>&1 ||
		{ show_file softhsm2-util "$T/init-token.log"; fail "softhsm2-util --init-token failed"; }
	PIN_FILE=$T/pin
	(umask 077 && printf '%s\n' "$TOKEN_PIN" >"$PIN_FILE")
	KEY_URI=$(key_uri mykey "pin-source=file:$PIN_FILE")
	export TOKEN_PIN PIN_FILE KEY_URI
}

# key_uri OBJECT [QUERY-ATTR]: RFC 7512 URI of a key in our token.
key_uri() {
	local uri="pkcs11:token=$TOKEN_LABEL;object=$1?module-path=$SOFTHSM_MODULE"
	[ $# -lt 2 ] || uri="$uri&$2"
	printf '%s\n' "$uri"
}

# p11t ARGS...: pkcs11-tool logged in to our token; fails on error.
p11t() {
	local log=$T/pkcs11-tool.err
	if ! pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$TOKEN_LABEL" \
		--login --pin "$TOKEN_PIN" "$@" 2>"$log"; then
		show_file "pkcs11-tool stderr" "$log"
		fail "pkcs11-tool $* failed"
	fi
}

# tok_list TYPE: one line per object of TYPE (privkey, pubkey, cert, data):
# "ID|label|access|serial" as pkcs11-tool prints them.
tok_list() {
	p11t --list-objects --type "$1" | awk '
		function flush() {
			if (inobj)
				print id "|" label "|" access "|" serial
			inobj = 0; id = ""; label = ""; access = ""; serial = ""
		}
		/^[^ \t]/ { flush(); inobj = 1; next }
		inobj && /^[ \t]+[A-Za-z]+:/ {
			key = $1; sub(/:$/, "", key)
			val = $0; sub(/^[ \t]+[A-Za-z]+:[ \t]*/, "", val)
			if (key == "ID") id = val
			else if (key == "label") label = val
			else if (key == "Access") access = val
			else if (key == "serial") serial = val
		}
		END { flush() }'
}

# tok_count TYPE [ID]: number of objects of TYPE (with that CKA_ID).
tok_count() {
	local list
	list=$(tok_list "$1")
	if [ $# -ge 2 ]; then
		list=$(printf '%s' "$list" | awk -F'|' -v id="$2" '$1 == id')
	fi
	printf '%s' "$list" | grep -c '^' || true
}

# tok_id_of TYPE LABEL: the CKA_ID (hex) of the one object so labelled.
tok_id_of() {
	local list ids n
	list=$(tok_list "$1")
	ids=$(printf '%s\n' "$list" | awk -F'|' -v l="$2" '$2 == l { print $1 }')
	n=$(printf '%s' "$ids" | grep -c '^' || true)
	[ "$n" -eq 1 ] || fail "expected one $1 object labelled '$2' in the token, found $n"
	[ -n "$ids" ] || fail "the $1 object labelled '$2' has an empty CKA_ID"
	printf '%s\n' "$ids"
}

# tok_access_of TYPE ID: the Access line of the object with that ID.
tok_access_of() {
	local list
	list=$(tok_list "$1")
	printf '%s\n' "$list" | awk -F'|' -v id="$2" '$1 == id { print $3 }'
}

# tok_pubkey ID OUT.pem: the public key object of the pair, as PEM.
tok_pubkey() {
	p11t --read-object --type pubkey --id "$1" -o "$T/pub.der" >/dev/null
	openssl pkey -pubin -inform DER -in "$T/pub.der" -out "$2" ||
		fail "cannot parse the public key object $1 read from the token"
}

# tok_cert ID OUT.pem: the certificate object with that ID, as PEM.
tok_cert() {
	p11t --read-object --type cert --id "$1" -o "$T/cert.der" >/dev/null
	openssl x509 -inform DER -in "$T/cert.der" -out "$2" ||
		fail "cannot parse the certificate object $1 read from the token"
}

# tok_sign_verify ID CERT: the token's private key ID signs fresh data and
# CERT's public key verifies it, so the cert really belongs to that key.
tok_sign_verify() {
	openssl rand -out "$T/tbs" 64
	p11t --sign --mechanism SHA256-RSA-PKCS --id "$1" \
		--input-file "$T/tbs" --output-file "$T/tbs.sig" >/dev/null
	openssl x509 -in "$2" -noout -pubkey >"$T/tbs.pub"
	openssl dgst -sha256 -verify "$T/tbs.pub" -signature "$T/tbs.sig" "$T/tbs" >/dev/null ||
		fail "a signature by token key $1 does not verify with the public key of $2"
}

# ---------------------------------------------------------------- certs

cert_fp() {
	openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/^[^=]*=//'
}

cert_serial() {
	openssl x509 -in "$1" -noout -serial | sed 's/^serial=//'
}

# cert_same A B: the same certificate (DER equal), whatever the encoding.
cert_same() {
	local a b
	a=$(openssl x509 -in "$1" -outform DER | od -An -tx1 | tr -d ' \n')
	b=$(openssl x509 -in "$2" -outform DER | od -An -tx1 | tr -d ' \n')
	[ -n "$a" ] && [ "$a" = "$b" ]
}

# pubkey_same CERT PUB.pem: CERT's public key equals PUB (DER compare).
pubkey_same() {
	openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER >"$T/pk1.der"
	openssl pkey -pubin -in "$2" -outform DER >"$T/pk2.der"
	cmp -s "$T/pk1.der" "$T/pk2.der"
}

# count_certs FILE: PEM certificates in FILE.
count_certs() {
	grep -c -- '-----BEGIN CERTIFICATE-----' "$1" || true
}

# ---------------------------------------------------------------- transaction state, outputs

# n_states: pending-transaction files in $STATE (p11scep --state-dir).
n_states() {
	find "$STATE" -name '*.txn' 2>/dev/null | grep -c . || true
}

# state_file: the one pending-transaction file (there must be exactly one).
state_file() {
	[ "$(n_states)" = 1 ] || fail "expected one transaction state file in $STATE, found $(n_states)"
	find "$STATE" -name '*.txn'
}

state_txid() {
	sed -n 's/^txid=//p' "$(state_file)"
}

no_state() {
	[ "$(n_states)" = 0 ] || fail "a transaction state file is left after the transaction ended"
}

# no_temp_files DIR: no staged output (".NAME.XXXXXX") left in DIR.
no_temp_files() {
	local left
	left=$(find "$1" -name '.*.??????' -printf '%f ')
	[ -z "$left" ] || fail "temporary files left in $1: $left"
}

# ---------------------------------------------------------------- scepserver

# port_in_use PORT: some TCP socket, in any state, has PORT as its local port.
port_in_use() {
	ss -Htan | awk '{ print $4 }' | grep -Eq "[:.]$1\$"
}

# A port that no TCP socket uses now, below the kernel's ephemeral range so
# that no outgoing connection (ours or another test's) can hold it between
# this check and the bind. Another test may still take it: whoever binds it
# checks and retries.
free_port() {
	local low=32768 high lo=20000 hi port
	read -r low high </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
	hi=$((low - 1))
	# An ephemeral range starting low leaves no room below: use above it.
	if [ "$hi" -lt $((lo + 1000)) ]; then
		lo=$((high + 1))
		hi=65000
	fi
	for _ in $(seq 1 50); do
		port=$((lo + RANDOM % (hi - lo + 1)))
		if ! port_in_use "$port"; then
			echo "$port"
			return 0
		fi
	done
	fail "no free TCP port found in $lo-$hi"
}

# start_scepserver [scepserver args]: a fresh CA in $T/depot and a server for
# it on 127.0.0.1:$PORT. Sets URL, CA_PEM, CA_FP, CHALLENGE, CHALLENGE_FILE.
start_scepserver() {
	local attempt pid port up
	CHALLENGE=${CHALLENGE:-p11scep-test-challenge}
	DEPOT=$T/depot
	if [ ! -f "$DEPOT/ca.pem" ]; then
		scepserver ca -init -keySize 2048 -depot "$DEPOT" >"$T/ca-init.log" 2>&1 ||
			{ show_file "scepserver ca -init" "$T/ca-init.log"; fail "scepserver ca -init failed"; }
	fi
	CA_PEM=$DEPOT/ca.pem
	CA_FP=$(cert_fp "$CA_PEM")
	CHALLENGE_FILE=$T/challenge
	(umask 077 && printf '%s\n' "$CHALLENGE" >"$CHALLENGE_FILE")

	for attempt in 1 2 3 4 5; do
		port=$(free_port)
		SCEP_LOG=$T/scepserver.log
		scepserver -depot "$DEPOT" -port "$port" -challenge "$CHALLENGE" \
			-allowrenew 0 "$@" >"$SCEP_LOG" 2>&1 &
		pid=$!
		up=0
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			if curl -fsS --max-time 2 -o /dev/null \
				"http://127.0.0.1:$port/scep?operation=GetCACaps" 2>/dev/null; then
				up=1
				break
			fi
			sleep 0.1
		done
		# The server that answered must be ours (it serves our CA), and still alive.
		if [ "$up" = 1 ] && server_is_ours "$port" && kill -0 "$pid" 2>/dev/null; then
			SCEP_PIDS+=("$pid")
			PORT=$port
			URL="http://127.0.0.1:$PORT/scep"
			export URL PORT CA_PEM CA_FP CHALLENGE CHALLENGE_FILE DEPOT
			return 0
		fi
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		echo "scepserver on port $port did not come up (attempt $attempt): $(tail -n 1 "$SCEP_LOG")" >&2
	done
	fail "scepserver did not start after 5 attempts"
}

server_is_ours() {
	curl -fsS --max-time 5 -o "$T/getcacert.der" \
		"http://127.0.0.1:$1/scep?operation=GetCACert" 2>/dev/null || return 1
	openssl x509 -inform DER -in "$T/getcacert.der" -out "$T/getcacert.pem" 2>/dev/null || return 1
	cert_same "$T/getcacert.pem" "$CA_PEM"
}

# stop_scepserver: stops the servers this shell started (the port is then closed).
stop_scepserver() {
	local pid
	for pid in "${SCEP_PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	SCEP_PIDS=()
}

# dead_url: a URL on 127.0.0.1 where nothing listens.
dead_url() {
	echo "http://127.0.0.1:$(free_port)/scep"
}

# ---------------------------------------------------------------- scep-responder

# Our own SCEP test responder (tests/responder/): RA certs, chains, PENDING,
# rejections, legacy caps, GetCert/GetCRL/GetNextCACert.
SCEP_RESPONDER=${SCEP_RESPONDER:-${TESTS_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}/responder/scep-responder}
RSP_N=0

# start_responder [scep-responder args]: a fresh responder (fresh CA material
# in its own dir) on 127.0.0.1, started with --challenge "$CHALLENGE" unless
# the args name --challenge or --no-challenge (which is not passed on). Waits
# for DIR/ready. Sets RSP_DIR, RSP_LOG, RSP_PID, URL, CA_PEM, CA_FP,
# CHALLENGE, CHALLENGE_FILE. Each call starts one more responder; the EXIT
# trap stops them all.
start_responder() {
	local args=() a chal=1 pid port
	[ -x "$SCEP_RESPONDER" ] ||
		fail "SCEP_RESPONDER=$SCEP_RESPONDER is not executable: build it (make tests/responder/scep-responder)"
	for a in "$@"; do
		case $a in
		--challenge | --challenge=*) chal=0 ;;
		--no-challenge) chal=0; continue ;;
		esac
		args+=("$a")
	done
	CHALLENGE=${CHALLENGE:-p11scep-test-challenge}
	CHALLENGE_FILE=$T/challenge
	(umask 077 && printf '%s\n' "$CHALLENGE" >"$CHALLENGE_FILE")
	[ "$chal" = 0 ] || args+=(--challenge "$CHALLENGE")
	RSP_N=$((RSP_N + 1))
	RSP_DIR=$T/rsp$RSP_N
	RSP_LOG=$RSP_DIR.log
	mkdir -p "$RSP_DIR"
	"$SCEP_RESPONDER" --dir "$RSP_DIR" --port-file "$RSP_DIR.port" --log "$RSP_LOG" \
		--max-seconds "${RSP_MAX_SECONDS:-300}" "${args[@]}" >"$RSP_DIR.out" 2>&1 &
	pid=$!
	SCEP_PIDS+=("$pid")
	for _ in $(seq 1 200); do
		[ -f "$RSP_DIR/ready" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if [ ! -f "$RSP_DIR/ready" ]; then
		show_file "scep-responder output" "$RSP_DIR.out"
		fail "scep-responder ${args[*]} did not become ready"
	fi
	port=$(cat "$RSP_DIR.port")
	case $port in
	'' | *[!0-9]*) fail "scep-responder wrote a bad port file: '$port'" ;;
	esac
	RSP_PID=$pid
	URL="http://127.0.0.1:$port/scep"
	CA_PEM=$RSP_DIR/ca.pem
	CA_FP=$(cert_fp "$CA_PEM")
	export URL CA_PEM CA_FP CHALLENGE CHALLENGE_FILE RSP_DIR RSP_LOG
}

# stop_responder: stops the latest responder (its log stays).
stop_responder() {
	[ -n "${RSP_PID:-}" ] || return 0
	kill "$RSP_PID" 2>/dev/null || true
	wait "$RSP_PID" 2>/dev/null || true
	RSP_PID=
}

# rsp_count REGEX: lines of the latest responder's log matching REGEX (ERE).
rsp_count() {
	grep -Ec -- "$1" "$RSP_LOG" || true
}
