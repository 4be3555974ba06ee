#!/bin/bash
# Secrets while p11scep waits for a CA that holds the request (after login,
# after the challenge went out): neither the PIN nor the challenge is in its
# command line, its environment or anywhere in its memory (tests/tools/memscan
# reads /proc/PID/mem), whether they came from files or from P11SCEP_PIN and
# P11SCEP_CHALLENGE; and p11scep is not dumpable (no core file, and other
# processes of its user cannot read its memory). And the files p11scep writes
# get their modes from p11scep, not from the umask: certificates 0644, state
# 0600, no secrets.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# p11scep makes itself non-dumpable: only root (CAP_SYS_PTRACE) may read its
# memory. Another user runs the rest (CI runs as root, and so all of it).
AS_ROOT=0
[ "$(id -u)" != 0 ] || AS_ROOT=1
MEMSCAN=${MEMSCAN:-$(dirname "$P11SCEP")/tests/tools/memscan}
[ -x "$MEMSCAN" ] || fail "MEMSCAN=$MEMSCAN is not executable: build it with" \
	"make tests/tools/memscan"

# Long and random, so that no match can be an accident.
PIN=$(openssl rand -hex 12)
CHALLENGE=$(openssl rand -hex 12)
if [ "${#PIN}" -ne 24 ] || [ "${#CHALLENGE}" -ne 24 ]; then
	fail "cannot make random secrets"
fi

setup_token "$PIN"
start_scepserver
MM_URL=$URL MM_FP=$CA_FP
start_responder --pending 1000
PEND_URL=$URL PEND_FP=$CA_FP
# Something p11scep certainly holds in its heap and nowhere in its argv or
# environment: the CA's name, which it only learns from GetCACert.
CA_CN=$(openssl x509 -in "$CA_PEM" -noout -subject -nameopt multiline |
	sed -n 's/^ *commonName *= *//p')
[ "${#CA_CN}" -ge 8 ] || fail "the responder's CA has no usable common name: '$CA_CN'"
URI_NOPIN=$(key_uri memkey)

# p11scep_pid SUBJECT: the p11scep process (not setsid or timeout) of that run.
p11scep_pid() {
	local p pid=
	for p in $(pgrep -f -- "--subject $1" || true); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = p11scep ] && pid=$p
	done
	printf '%s\n' "$pid"
}

# hits SCANFILE N: how often memscan found its string #N (0 if never).
hits() {
	local n
	n=$(sed -n "s/^memscan: string #$2 .*: found \([0-9]*\) time(s)\$/\1/p" "$1")
	printf '%s\n' "${n:-0}"
}

# mem_case NAME MODE: MODE "file" (pin-source and --challenge-file) or "env"
# (P11SCEP_PIN, P11SCEP_CHALLENGE). Enrolls against the responder that keeps
# answering PENDING; while p11scep sleeps between polls its cmdline, environ
# and memory are checked, then SIGTERM ends it (exit 3, state kept).
#
# The scan runs in a subshell that starts p11scep and then becomes memscan
# (exec): reading /proc/PID/mem needs an ancestor where Yama's ptrace_scope
# is 1. Under P11SCEP_WRAP (valgrind) p11scep runs plain here: a wrapper keeps
# its own copies of argv and the environment, which would prove nothing.
mem_case() {
	local name=$1 mode=$2 subject="CN=mem-$1.example.test" pid='' rc scan allow found what n
	local go=$T/$name.go pidfile=$T/$name.pid
	(
		# The test's own copies must not reach p11scep's environment.
		export -n TOKEN_PIN CHALLENGE
		unset P11SCEP_WRAP
		{
			rc=0
			if [ "$mode" = env ]; then
				P11SCEP_PIN=$PIN P11SCEP_CHALLENGE=$CHALLENGE \
					p11s enroll -v -u "$PEND_URL" -k "$URI_NOPIN" --subject "$subject" \
					--ca-fingerprint "$PEND_FP" --poll-interval 60 --max-poll-time 600 \
					>"$T/$name.out" 2>"$T/$name.err" || rc=$?
			else
				p11s enroll -v -u "$PEND_URL" -k "$KEY_URI" --subject "$subject" \
					--ca-fingerprint "$PEND_FP" --challenge-file "$CHALLENGE_FILE" \
					--poll-interval 60 --max-poll-time 600 \
					>"$T/$name.out" 2>"$T/$name.err" || rc=$?
			fi
			echo "$rc" >"$T/$name.rc"
		} &
		for _ in $(seq 1 600); do
			[ -e "$go" ] && break
			sleep 0.1
		done
		[ -s "$pidfile" ] || exit 2
		exec "$MEMSCAN" "$(cat "$pidfile")" "$URL" "$CA_CN" "$PIN" "$CHALLENGE" \
			"P11SCEP_PIN=$PIN" "P11SCEP_CHALLENGE=$CHALLENGE" \
			>"$T/$name.scan" 2>"$T/$name.scan.err"
	) &
	scan=$!
	SCEP_PIDS+=("$scan")

	# Waiting means: the request went out, PENDING came back, the next poll is a minute away.
	for _ in $(seq 1 300); do
		grep -q 'asking again in 60 s' "$T/$name.err" 2>/dev/null && break
		[ ! -e "$T/$name.rc" ] || break
		sleep 0.1
	done
	pid=$(p11scep_pid "$subject")
	if [ -z "$pid" ] || ! grep -q 'asking again in 60 s' "$T/$name.err"; then
		touch "$go"
		show_file "p11scep stderr" "$T/$name.err"
		fail "$name: p11scep is not waiting between polls (exit $(cat "$T/$name.rc" 2>/dev/null || echo '-'))"
	fi
	SCEP_PIDS+=("$pid")
	assert_no_string "$T/$name.err" "$PIN" "$name: the PIN is in p11scep's -v output"
	assert_no_string "$T/$name.err" "$CHALLENGE" "$name: the challenge is in p11scep's -v output"

	note "$name: /proc/PID/cmdline and environ hold neither the PIN nor the challenge"
	tr '\0' '\n' <"/proc/$pid/cmdline" >"$T/$name.cmdline"
	assert_grep "$T/$name.cmdline" "^--subject$" "$name: cannot read p11scep's cmdline"
	assert_no_string "$T/$name.cmdline" "$PIN" "$name: the PIN is in p11scep's cmdline"
	assert_no_string "$T/$name.cmdline" "$CHALLENGE" "$name: the challenge is in p11scep's cmdline"
	tr '\0' '\n' <"/proc/$pid/environ" >"$T/$name.environ"
	assert_grep "$T/$name.environ" "^SOFTHSM2_CONF=" "$name: cannot read p11scep's environment"
	assert_no_string "$T/$name.environ" "$PIN" "$name: the PIN is in p11scep's environment"
	assert_no_string "$T/$name.environ" "$CHALLENGE" \
		"$name: the challenge is in p11scep's environment"

	note "$name: memscan finds the URL and the CA's name, but neither secret, in p11scep's memory"
	cp "/proc/$pid/maps" "$T/$name.maps"
	printf '%s\n' "$pid" >"$pidfile"
	touch "$go"
	rc=0
	wait "$scan" || rc=$?
	[ "$rc" -ne 2 ] || { show_file "memscan stderr" "$T/$name.scan.err"; fail "$name: memscan failed"; }
	assert_grep "$T/$name.scan.err" "^memscan: pid $pid: " "$name: memscan did not scan p11scep"
	# A scanner that never finds anything proves nothing: #1 and #2 must be there.
	assert_grep "$T/$name.scan" '^memscan: string #1 .*found' "$name: memscan missed the URL"
	assert_grep "$T/$name.scan" '^memscan: string #2 .*found' \
		"$name: memscan missed the CA's name (it does not read the heap)"
	# One copy is not ours: a sanitizer runtime reads /proc/self/environ at
	# startup and keeps it. Allowed exactly there: under ASan, with the
	# secrets from the environment, at most one copy of each, and every copy
	# inside "NAME=value" as an environment holds it.
	allow=0
	if [ "$mode" = env ] && grep -q 'libasan\.so' "$T/$name.maps"; then
		allow=1
	fi
	for n in 3 4; do
		what=PIN
		[ "$n" = 3 ] || what=challenge
		found=$(hits "$T/$name.scan" "$n")
		if [ "$found" -gt "$allow" ] || [ "$found" -ne "$(hits "$T/$name.scan" $((n + 2)))" ]; then
			show_file "memscan output" "$T/$name.scan"
			fail "$name: the $what is in p11scep's memory ($found copies)"
		fi
	done

	kill -0 "$pid" 2>/dev/null || fail "$name: p11scep ended during the checks"
	kill -TERM "$pid"
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && fail "$name: p11scep did not stop on SIGTERM"
	for _ in $(seq 1 50); do
		[ ! -e "$T/$name.rc" ] || break
		sleep 0.1
	done
	assert_eq "$(cat "$T/$name.rc" 2>/dev/null)" 3 "$name: exit status after SIGTERM while pending"
	assert_grep "$T/$name.err" "resume with 'p11scep poll'" "$name: no resume hint after SIGTERM"
}

if [ "$AS_ROOT" = 1 ]; then
	note "secrets from files: pin-source=file: and --challenge-file"
	mem_case files file
	note "secrets from the environment: P11SCEP_PIN and P11SCEP_CHALLENGE"
	# A new key: the pending request of the first case belongs to mykey.
	mem_case environ env
	assert_eq "$(rsp_count 'type=PKCSReq')" 2 "PKCSReqs sent (one per case)"
else
	note "NOT RUN: the memory scans (they need root, as p11scep is not dumpable)"
fi

# ---------------------------------------------------------------- not dumpable

note "p11scep is not dumpable: another process of its user reads neither its memory nor its environ"
# p11scep as nobody (as root) or as this user waits for a server that accepts
# and never answers.
mkdir -p "$T/nobody"
chmod 711 "$T"
chmod 755 "$T/nobody"
cp "$P11SCEP" "$T/nobody/p11scep"
SILENT_PORT=
for attempt in 1 2 3 4 5; do
	port=$(free_port)
	socat -u "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" OPEN:/dev/null 2>>"$T/silent.log" &
	pid=$!
	for _ in $(seq 1 30); do
		kill -0 "$pid" 2>/dev/null || break
		# The listener on that port must be this socat, not someone else.
		if ss -Htlnp "sport = :$port" | grep -q "pid=$pid,"; then
			SILENT_PORT=$port
			break
		fi
		sleep 0.1
	done
	if [ -n "$SILENT_PORT" ]; then
		SCEP_PIDS+=("$pid")
		break
	fi
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	echo "silent listener on port $port did not come up (attempt $attempt)" >&2
done
[ -n "$SILENT_PORT" ] || { show_file "socat log" "$T/silent.log"; fail "no silent listener after 5 attempts"; }
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
RUN_UID=65534
if [ "$AS_ROOT" != 1 ]; then
	NOBODY=()
	RUN_UID=$(id -u)
fi
"${NOBODY[@]}" "$T/nobody/p11scep" getcaps -u "http://127.0.0.1:$SILENT_PORT/scep" --timeout 30 \
	</dev/null >/dev/null 2>"$T/nobody.err" &
NOBODY_PID=$!
SCEP_PIDS+=("$NOBODY_PID")
for _ in $(seq 1 50); do
	[ "$(awk '/^Uid:/ { print $2 }' "/proc/$NOBODY_PID/status" 2>/dev/null)" = "$RUN_UID" ] &&
		[ "$(cat "/proc/$NOBODY_PID/comm" 2>/dev/null)" = p11scep ] && break
	sleep 0.1
done
assert_eq "$(cat "/proc/$NOBODY_PID/comm" 2>/dev/null)" p11scep "the process under test is not p11scep"
assert_eq "$(stat -c %u "/proc/$NOBODY_PID/mem")" 0 \
	"p11scep's /proc/PID/mem belongs to its user, not root: it is dumpable"
"${NOBODY[@]}" cat "/proc/$NOBODY_PID/environ" >/dev/null 2>"$T/nobody.cat" &&
	fail "a process of p11scep's user read its environ"
assert_grep "$T/nobody.cat" 'Permission denied' "reading p11scep's environ failed otherwise"
# The same user's own processes are readable: the check above is p11scep's doing.
"${NOBODY[@]}" sleep 30 &
SLEEPER=$!
SCEP_PIDS+=("$SLEEPER")
sleep 0.2
"${NOBODY[@]}" cat "/proc/$SLEEPER/environ" >/dev/null ||
	fail "the user cannot read its own sleep's environ: the check proves nothing here"
kill "$NOBODY_PID" "$SLEEPER" 2>/dev/null || true
wait "$NOBODY_PID" "$SLEEPER" 2>/dev/null || true

# ---------------------------------------------------------------- file modes

# with_umask MASK CMD...: CMD under that umask.
with_umask() {
	local m=$1
	shift
	(umask "$m" && "$@")
}

# mode_is FILE MODE
mode_is() {
	[ -e "$1" ] || fail "$1 was not written"
	assert_eq "$(stat -c %a "$1")" "$2" "mode of $1"
}

# no_secret_in DIR: neither secret in any file below DIR.
no_secret_in() {
	if grep -rlF -e "$PIN" -e "$CHALLENGE" "$1" >"$T/leaks" 2>/dev/null; then
		show_file "files holding a secret" "$T/leaks"
		fail "a secret was written to a file below $1"
	fi
}

for mask in 000 077; do
	D=$T/umask$mask
	mkdir -p "$D"
	chmod 755 "$D"

	note "umask $mask: --cert-out and --chain-out are 0644"
	expect_exit 0 with_umask "$mask" p11s enroll -u "$MM_URL" \
		-k "$(key_uri "out$mask" "pin-source=file:$PIN_FILE")" \
		--subject "CN=out$mask.example.test" --ca-fingerprint "$MM_FP" \
		--challenge-file "$CHALLENGE_FILE" --cert-out "$D/cert.pem" --chain-out "$D/chain.pem"
	mode_is "$D/cert.pem" 644
	mode_is "$D/chain.pem" 644

	note "umask $mask: the pending state file is 0600 in a 0700 directory"
	XDG_STATE_HOME=$D/xdg expect_exit 3 with_umask "$mask" p11s enroll \
		-u "$PEND_URL" -k "$(key_uri "pend$mask" "pin-source=file:$PIN_FILE")" \
		--subject "CN=pend$mask.example.test" --ca-fingerprint "$PEND_FP" \
		--challenge-file "$CHALLENGE_FILE" --max-poll-time 0 --cert-out "$D/pend.pem"
	STATE=$(find "$D/xdg" -name '*.txn')
	[ "$(printf '%s' "$STATE" | grep -c '^')" -eq 1 ] || fail "umask $mask: expected one state file, got '$STATE'"
	mode_is "$STATE" 600
	mode_is "$(dirname "$STATE")" 700

	note "umask $mask: profile runs; certificates 0644, pending state and lock 0600"
	cat >"$D/p11scep.conf" <<-CONFEOF
	[defaults]
	state-dir = $D/agent
	challenge-file = $CHALLENGE_FILE

	[profile mm]
	url = $MM_URL
	ca-fingerprint = $MM_FP
	key = $(key_uri "mm$mask" "pin-source=file:$PIN_FILE")
	subject = CN=mm$mask.example.test

	[profile approval]
	url = $PEND_URL
	ca-fingerprint = $PEND_FP
	key = $(key_uri "appr$mask" "pin-source=file:$PIN_FILE")
	subject = CN=appr$mask.example.test
	CONFEOF
	chmod 600 "$D/p11scep.conf"
	expect_exit 0 with_umask "$mask" p11s run -c "$D/p11scep.conf" -p mm
	assert_grep "$ERR" 'profile mm: enroll: certificate issued' "umask $mask: mm not enrolled"
	rc=0
	with_umask "$mask" p11s run -c "$D/p11scep.conf" -p approval >"$OUT" 2>"$ERR" || rc=$?
	case $rc in
	0 | 3) ;;
	*) show_file stderr "$ERR"; fail "umask $mask: run -p approval exited $rc" ;;
	esac
	assert_grep "$ERR" 'profile approval: enroll: request pending' "umask $mask: approval not pending"
	# The pending state is named after the key, which differs per umask.
	find "$D/agent" -type f -printf '%m %P\n' | sed 's/[0-9a-f]\{64\}\.txn$/KEY.txn/' |
		sort >"$T/agent-files$mask"
	grep -q ' KEY\.txn$' "$T/agent-files$mask" ||
		{ show_file "files of the run" "$T/agent-files$mask"; fail "umask $mask: run kept no pending state"; }
	bad=
	while read -r m f; do
		case $f in
		*.txn | .lock | */.lock) want=600 ;;	# the request and signer cert; the lock
		*.pem) want=644 ;;			# certificates are public
		*) want=$m ;;				# public caches: below, the same under both umasks
		esac
		case $m in
		600 | 644) ;;
		*) want="600 or 644" ;;
		esac
		[ "$m" = "$want" ] || bad="$bad $f:$m(want $want)"
	done <"$T/agent-files$mask"
	if [ -n "$bad" ]; then
		show_file "files of the run" "$T/agent-files$mask"
		fail "umask $mask: wrong modes:$bad"
	fi
	no_secret_in "$D"
done

note "the umask changed no mode: the runs under 000 and 077 wrote the same files alike"
if ! diff "$T/agent-files000" "$T/agent-files077" >&2; then
	fail "the files of the profile runs differ between umask 000 and umask 077"
fi
no_secret_in "$XDG_STATE_HOME"

echo "PASS: secrets_mem"
