#!/bin/bash
# A hostile SCEP server (scep-responder --evil MODE) against an enrolled key:
# every misbehaviour must fail with the right exit status and one clear
# "p11scep: " line, and leave the cert and chain files, the token and the
# output directory exactly as they were.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SUBJECT="CN=p11scep-hostile.example.test"
OUTDIR=$T/out
CERT=$OUTDIR/cert.pem
CHAIN=$OUTDIR/chain.pem
SNAP=$T/snap
mkdir -p "$OUTDIR" "$SNAP"

# tok_objects: the token's objects with their IDs, sorted, for comparison.
tok_objects() {
	p11t --list-objects | sort
}

# enroll_args: the one enroll command every run uses (same key, same files).
enroll_args() {
	ARGS=(enroll -u "$URL" -k "$KEY_URI" --subject "$SUBJECT" --ca-fingerprint "$1"
		--challenge-file "$CHALLENGE_FILE" --cert-out "$CERT" --chain-out "$CHAIN")
}

setup_token
note "a good enrollment creates mykey and writes the cert and chain"
start_responder
enroll_args "$CA_FP"
expect_exit 0 p11s "${ARGS[@]}"
assert_file "$CERT"
assert_file "$CHAIN"
FIRST_CA_FP=$CA_FP
KEY_ID=$(tok_id_of privkey mykey)
tok_objects >"$SNAP/objects"
cp "$CERT" "$SNAP/cert.pem"
cp "$CHAIN" "$SNAP/chain.pem"
assert_grep "$SNAP/objects" "ID: *$KEY_ID" "the object list shows no IDs"
stop_responder

RESULTS=()
FAILED=0

# problem TEXT: one more reason the current mode fails (the run goes on).
problem() {
	PROBLEMS+=("$1")
}

# check_untouched: files, token and output dir as in the snapshot.
check_untouched() {
	local left
	cmp -s "$CERT" "$SNAP/cert.pem" || problem "--cert-out file changed"
	cmp -s "$CHAIN" "$SNAP/chain.pem" || problem "--chain-out file changed"
	tok_objects >"$T/objects.now"
	if ! cmp -s "$T/objects.now" "$SNAP/objects"; then
		diff "$SNAP/objects" "$T/objects.now" >&2 || true
		problem "token objects changed"
	fi
	left=$(find "$OUTDIR" -mindepth 1 ! -name cert.pem ! -name chain.pem -printf '%f ')
	[ -z "$left" ] || problem "leftover files in the output dir: $left"
}

# check_stderr REGEX: exactly one "p11scep: " line, matching REGEX.
check_stderr() {
	local lines
	lines=$(grep -E '^p11scep: ' "$ERR" || true)
	ERRLINE=$(printf '%s\n' "$lines" | head -n 1)
	if [ -z "$lines" ] || [ "$(printf '%s\n' "$lines" | grep -c '^')" -ne 1 ]; then
		problem "expected one 'p11scep: ' line on stderr, got $(printf '%s' "$lines" | grep -c '^' || true)"
	elif ! printf '%s\n' "$lines" | grep -Eiq -- "$1"; then
		problem "message does not match /$1/"
	fi
	# A crash leaves its mark on stderr even when the status looks right.
	if grep -Eiq 'AddressSanitizer|runtime error|Segmentation|core dumped|Aborted' "$ERR"; then
		problem "crash report on stderr"
	fi
}

# record MODE WANT GOT: one row of the results table.
record() {
	local mode=$1 want=$2 got=$3 verdict=pass p
	if [ "${#PROBLEMS[@]}" -gt 0 ]; then
		verdict=FAIL
		FAILED=$((FAILED + 1))
		echo "FAIL: $mode: ${ARGS[*]}" >&2
		for p in "${PROBLEMS[@]}"; do
			echo "FAIL: $mode: $p" >&2
		done
		show_file "stderr of $mode" "$ERR"
	fi
	RESULTS+=("$(printf '%-11s exit %s (want %s)  %-4s  %s' "$mode" "$got" "$want" "$verdict" "$ERRLINE")")
}

# hostile MODE WANT REGEX: p11scep against a responder started with --evil MODE.
hostile() {
	local mode=$1 want=$2 re=$3 rc=0
	PROBLEMS=()
	ERRLINE=
	note "--evil $mode: expect exit $want and /$re/"
	start_responder --evil "$mode"
	enroll_args "$CA_FP"
	ARGS+=(--new-request)
	[ "$mode" != hang ] || ARGS+=(--timeout 3)
	p11s "${ARGS[@]}" >"$OUT" 2>"$ERR" || rc=$?
	[ "$rc" -eq "$want" ] || problem "expected exit $want, got $rc"
	check_stderr "$re"
	check_untouched
	[ "$(rsp_count "evil=$mode")" -ge 1 ] ||
		problem "the responder never misbehaved (no evil=$mode in its log)"
	# An out-of-date CA is refused before the request (and challenge) go out.
	case $mode in
	expired-ca | notyet-ca)
		[ "$(rsp_count '^op=PKIOperation')" -eq 0 ] ||
			problem "a PKIOperation was sent to a CA outside its validity" ;;
	esac
	stop_responder
	record "$mode" "$want" "$rc"
}

hostile nonce 7 'nonce'
hostile txid 7 'transactionID|transaction ID'
hostile signer 7 'signature|signer|signed'
hostile wrongkey 7 'public key|another key|our key'
hostile wrongca 7 'chain|issuer'
hostile truncate 7 'truncated|malformed|parse|DER|ASN\.1|PKCS#7|CMS'
hostile random 7 'malformed|parse|DER|ASN\.1|PKCS#7|CMS|not a'
hostile ctype 7 'content.type|text/html'
hostile expired-ca 7 'expired'
hostile notyet-ca 7 'not yet valid'
hostile huge 5 'larger than|too large|too big'
hostile http500 5 'HTTP 500'
hostile http404 5 'HTTP 404'
hostile http405 5 'HTTP 405'
hostile hang 5 'timed? ?out|timeout'
hostile redirect 5 'redirect'

note "a CA that does not match the pinned fingerprint: exit 7, no PKIOperation"
PROBLEMS=()
ERRLINE=
rc=0
start_responder
enroll_args "$FIRST_CA_FP"
ARGS+=(--new-request)
p11s "${ARGS[@]}" >"$OUT" 2>"$ERR" || rc=$?
[ "$rc" -eq 7 ] || problem "expected exit 7, got $rc"
check_stderr 'fingerprint'
check_untouched
[ "$(rsp_count '^op=PKIOperation')" -eq 0 ] || problem "a PKIOperation was sent to an untrusted CA"
stop_responder
record "wrong-ca-fp" 7 "$rc"

echo "----- results: mode, exit (wanted), verdict, message -----"
printf '%s\n' "${RESULTS[@]}"
[ "$FAILED" -eq 0 ] || fail "$FAILED hostile case(s) failed"
echo "PASS: hostile"
