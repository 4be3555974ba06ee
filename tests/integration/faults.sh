#!/bin/bash
# Faults on the way: the server dies or resets the connection mid-transaction,
# the name does not resolve, the output directory is read-only or full, the
# token disappears while p11scep waits. Each must end with the documented exit
# status and one clear line, write nothing half-way, leave the previous cert,
# chain and token objects as they were, and keep the transaction so that a
# retry resumes it with the same transactionID.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SUBJECT="CN=p11scep-faults.example.test"
OUTDIR=$T/out
CERT=$OUTDIR/cert.pem
CHAIN=$OUTDIR/chain.pem
STATE=$T/txn
mkdir -p "$OUTDIR"

RESULTS=()

# row CASE EXIT LINE: one line of the results table printed at the end.
row() {
	RESULTS+=("$(printf '%-36s exit %s  %s' "$1" "$2" "$3")")
}

errline() {
	grep -E '^p11scep: ' "$ERR" | grep -Eiv '^p11scep: (warning|note)' | tail -n 1
}

# key_args LABEL: URI and state dir of key LABEL.
key_args() {
	printf '%s\n' -k "$(key_uri "$1" "pin-source=file:$PIN_FILE")" --state-dir "$STATE"
}

# enroll_args LABEL [CERT CHAIN]: the enroll command of key LABEL against $URL.
enroll_args() {
	ARGS=(enroll -u "$URL" -k "$(key_uri "$1" "pin-source=file:$PIN_FILE")"
		--subject "$SUBJECT" --ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE"
		--cert-out "${2:-$CERT}" --chain-out "${3:-$CHAIN}" --state-dir "$STATE")
}

# logged_txids: the transactionIDs of the responder's PKIOperations, one per line.
logged_txids() {
	sed -n 's/.*op=PKIOperation.* txid=\([^ ]*\).*/\1/p' "$RSP_LOG"
}

# n_keys LABEL: private keys with that label in the token.
n_keys() {
	tok_list privkey | awk -F'|' -v l="$1" '$2 == l' | grep -c '^' || true
}

snapshot() {
	cp "$CERT" "$T/cert.before"
	cp "$CHAIN" "$T/chain.before"
	p11t --list-objects | sort >"$T/objects.before"
}

# untouched: cert and chain files and the token's objects as in the snapshot.
untouched() {
	cmp -s "$CERT" "$T/cert.before" || fail "$1: the cert file changed"
	cmp -s "$CHAIN" "$T/chain.before" || fail "$1: the chain file changed"
	p11t --list-objects | sort >"$T/objects.now"
	if ! cmp -s "$T/objects.now" "$T/objects.before"; then
		diff "$T/objects.before" "$T/objects.now" >&2 || true
		fail "$1: the token's objects changed"
	fi
	no_temp_files "$OUTDIR"
}

setup_token

# ---------------------------------------------------------------------------
note "the server dies after the CA acted, before it replies: exit 5, state kept"
start_responder --evil die
enroll_args k1
expect_error 5 'empty reply|nothing|connect|network|recv|reset' p11s "${ARGS[@]}"
row "server dies mid-transaction" 5 "$(errline)"
assert_no_file "$CERT" "a cert file was written although no reply came"
assert_no_file "$CHAIN"
no_temp_files "$OUTDIR"
assert_eq "$(tok_count cert)" 0 "certificates in the token after a failed exchange"
TXID=$(state_txid)
assert_grep "$(state_file)" '^answered=0$' "the state does not say the request went unanswered"
assert_eq "$(logged_txids)" "$TXID" "the dead server's log does not show our transactionID"
assert_no_string "$(state_file)" "$CHALLENGE" "the state file holds the challenge"
assert_eq "$(stat -c %a "$(state_file)")" 600 "mode of the state file"
# Of the request, the state keeps only the subject (CertPoll's): no challenge.
assert_no_grep "$(state_file)" 'CERTIFICATE REQUEST' "the state keeps the request"
printf '%b' "$(sed -n 's/^subject=//p' "$(state_file)" | sed 's/../\\x&/g')" >"$T/subject.der"
openssl asn1parse -inform DER -in "$T/subject.der" >"$T/subject.txt" ||
	fail "the state's subject does not parse"
assert_grep "$T/subject.txt" 'p11scep-faults.example.test' "the state's subject is not ours"

note "the retry sends the request again with the same transactionID"
start_responder
enroll_args k1
expect_exit 0 p11s "${ARGS[@]}"
assert_grep "$ERR" "got no answer: sending it again" "the retry did not say it resends"
assert_eq "$(logged_txids)" "$TXID" "the retry used another transactionID"
assert_file "$CERT"
assert_file "$CHAIN"
no_state
row "  then: retry" 0 "same transactionID, issued"

# ---------------------------------------------------------------------------
note "one TCP reset on the kept-alive connection: libcurl resends once on a new one"
start_responder --evil reset --evil-at 2
enroll_args k2
expect_exit 0 p11s "${ARGS[@]}"
enroll_args k2
expect_exit 0 p11s "${ARGS[@]}" --new-request
assert_grep "$RSP_LOG" 'http=reset' "the responder never reset the connection"
assert_eq "$(logged_txids | tail -n 2 | uniq | wc -l)" 1 "the resent message has another transactionID"
row "one reset (reused connection)" 0 "libcurl resent the same message on a new connection"
stop_responder

note "resets on every connection; then a name that does not resolve"
# The request goes first on a new connection (the CA is cached): reset; then,
# the cache dropped, on the connection kept from GetCACert: reset, and
# libcurl's own retry on a new one: reset.
start_responder --evil reset --evil-at 2:3
enroll_args k2
expect_exit 0 p11s "${ARGS[@]}" --new-request
snapshot
enroll_args k2
ARGS+=(--new-request)
expect_error 5 'reset|connection|recv|network' p11s "${ARGS[@]}"
row "connection reset" 5 "$(errline)"
untouched "after a reset"
TXID=$(state_txid)
cp "$(state_file)" "$T/state.before"
GOOD_URL=$URL
URL=http://p11scep-no-such-host.invalid/scep
enroll_args k2
expect_error 5 'resolve|host|name' p11s "${ARGS[@]}" --timeout 20
row "name does not resolve (retry)" 5 "$(errline)"
untouched "after a DNS failure"
cmp -s "$(state_file)" "$T/state.before" || fail "the state changed on a DNS failure"
URL=$GOOD_URL
enroll_args k2
expect_exit 0 p11s "${ARGS[@]}"
assert_eq "$(logged_txids | tail -n 2 | sort -u)" "$TXID" \
	"the retry after a reset used another transactionID"
no_state
row "  then: retry" 0 "same transactionID, issued"
stop_responder

# ---------------------------------------------------------------------------
note "a renewal with a new key whose reply is lost: the retry renews the same new key"
start_responder --evil reset --evil-at 2:3	# three resets, as above
enroll_args k3
expect_exit 0 p11s "${ARGS[@]}"
snapshot
assert_eq "$(n_keys k3)" 1 "k3 keys after the enrollment"
RENEW=(renew -u "$URL" -k "$(key_uri k3 "pin-source=file:$PIN_FILE")" --ca-fingerprint "$CA_FP"
	--cert-out "$CERT" --chain-out "$CHAIN" --state-dir "$STATE")
expect_error 5 'reset|connection|recv|network' p11s "${RENEW[@]}"
row "renewal: connection reset" 5 "$(errline)"
cmp -s "$CERT" "$T/cert.before" || fail "the cert file changed after a failed renewal"
assert_eq "$(n_keys k3)" 2 "k3 keys after the failed renewal (old + new)"
TXID=$(state_txid)
assert_grep "$(state_file)" '^new-key-id=' "the renewal state does not name the new key"
expect_exit 0 p11s "${RENEW[@]}"
assert_eq "$(n_keys k3)" 2 "the retried renewal made yet another key"
assert_eq "$(logged_txids | tail -n 2 | sort -u)" "$TXID" "the retried renewal used another transactionID"
NEWPUB=$T/new.pub
openssl x509 -in "$CERT" -noout -pubkey >"$NEWPUB"
openssl x509 -in "$T/cert.before" -noout -pubkey >"$T/old.pub"
cmp -s "$NEWPUB" "$T/old.pub" && fail "the renewed cert carries the old key"
no_state
row "  then: retry" 0 "same transactionID, same new key, issued"
stop_responder

# ---------------------------------------------------------------------------
# A read-only and a full output directory: tmpfs mounts in a private mount
# namespace (they vanish with it), so that even root gets EROFS and ENOSPC.
start_responder
enroll_args k4
expect_exit 0 p11s "${ARGS[@]}"
snapshot
unshare -m --propagation private true ||
	fail "unshare -m does not work here: the read-only and disk-full cases need a mount namespace"

cat >"$T/in-ns.sh" <<'EOF'
# Runs in its own mount namespace: $1 = ro | full; env from the test.
set -u
mode=$1
shift
mount -t tmpfs -o size=64k,mode=0755 tmpfs "$NSDIR" || exit 90
cp "$T/cert.before" "$NSDIR/cert.pem" && cp "$T/chain.before" "$NSDIR/chain.pem" || exit 91
if [ "$mode" = ro ]; then
	mount -o remount,ro "$NSDIR" || exit 92
else
	# Fill what is left, so that the next write fails with ENOSPC.
	dd if=/dev/zero of="$NSDIR/filler" bs=1k 2>/dev/null
	[ "$(df --output=avail "$NSDIR" | tail -n 1)" -eq 0 ] || exit 93
fi
rc=0
setsid -w timeout 60 "$P11SCEP" "$@" >"$T/ns.out" 2>"$T/ns.err" </dev/null || rc=$?
echo "$rc" >"$T/ns.rc"
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$TOKEN_LABEL" --login --pin "$TOKEN_PIN" \
	--list-objects 2>/dev/null | sort >"$T/ns.objects"
cmp -s "$NSDIR/cert.pem" "$T/cert.before" || echo "cert.pem changed" >>"$T/ns.problems"
cmp -s "$NSDIR/chain.pem" "$T/chain.before" || echo "chain.pem changed" >>"$T/ns.problems"
left=$(find "$NSDIR" -mindepth 1 ! -name cert.pem ! -name chain.pem ! -name filler -printf '%f ')
[ -z "$left" ] || echo "leftover files: $left" >>"$T/ns.problems"
if [ "$mode" = full ]; then
	# Room again: the retry resumes the kept transaction.
	rm -f "$NSDIR/filler"
	rc=0
	setsid -w timeout 60 "$P11SCEP" "$@" >"$T/ns.out2" 2>"$T/ns.err2" </dev/null || rc=$?
	echo "$rc" >"$T/ns.rc2"
	openssl x509 -in "$NSDIR/cert.pem" -noout -serial >"$T/ns.serial2" 2>/dev/null
fi
exit 0
EOF

# in_ns MODE: enroll k4 again writing into NSDIR, under MODE.
in_ns() {
	local rc=0
	NSDIR=$T/ns
	mkdir -p "$NSDIR"
	rm -f "$T"/ns.*
	export T NSDIR P11SCEP SOFTHSM2_CONF SOFTHSM_MODULE TOKEN_LABEL TOKEN_PIN
	enroll_args k4 "$NSDIR/cert.pem" "$NSDIR/chain.pem"
	unshare -m --propagation private bash "$T/in-ns.sh" "$1" "${ARGS[@]}" || rc=$?
	[ "$rc" = 0 ] || fail "the mount-namespace helper failed at step $rc"
	cp "$T/ns.err" "$ERR"
	show_file "stderr in the mount namespace" "$ERR"
	[ ! -s "$T/ns.problems" ] || { cat "$T/ns.problems" >&2; fail "$1: files were touched"; }
}

note "read-only output directory: refused before anything is sent"
N_OPS=$(rsp_count '^op=PKIOperation')
in_ns ro
assert_eq "$(cat "$T/ns.rc")" 1 "exit status with a read-only output directory"
assert_eq "$(grep -c '^p11scep: ' "$ERR")" 1 "lines on stderr"
assert_grep "$ERR" 'Read-only file system' "the message does not say the directory is read-only"
row "output dir read-only" 1 "$(errline)"
assert_eq "$(rsp_count '^op=PKIOperation')" "$N_OPS" "a request was sent although the output cannot be written"
untouched "after a read-only output directory"
no_state

note "full disk: nothing imported into the token, files untouched, retry resumes"
in_ns full
assert_eq "$(cat "$T/ns.rc")" 1 "exit status with a full output directory"
assert_eq "$(grep -c '^p11scep: ' "$ERR")" 1 "lines on stderr"
assert_grep "$ERR" 'No space left' "the message does not say the disk is full"
row "output dir full (ENOSPC)" 1 "$(errline)"
cmp -s "$T/ns.objects" "$T/objects.before" ||
	{ diff "$T/objects.before" "$T/ns.objects" >&2; fail "after a full disk: the token's objects changed"; }
no_temp_files "$OUTDIR"
[ "$(cat "$T/ns.rc2")" = 0 ] || { cat "$T/ns.err2" >&2; fail "the retry with room again failed"; }
assert_grep "$T/ns.err2" "got no answer: sending it again" "the retry did not resume the transaction"
row "  then: retry with room" 0 "same transactionID, issued"
no_state
stop_responder

# ---------------------------------------------------------------------------
note "the token's files disappear while p11scep waits for the CA: exit 6"
start_responder --pending 1
enroll_args k5 "$T/k5.pem" "$T/k5-chain.pem"
ARGS+=(--poll-interval 2)
(
	rc=0
	p11s "${ARGS[@]}" >"$OUT" 2>"$ERR" || rc=$?
	echo "$rc" >"$T/bg.rc"
) &
PID=$!
# 10 s; under a wrapper (valgrind) the key generation alone may take longer.
ticks=100
[ -z "${P11SCEP_WRAP:-}" ] || ticks=1200
for _ in $(seq 1 "$ticks"); do
	[ "$(rsp_count 'status=PENDING')" -ge 1 ] && break
	sleep 0.1
done
[ "$(rsp_count 'status=PENDING')" -ge 1 ] || fail "the responder never answered PENDING"
mv "$T/tokens" "$T/tokens.gone"
wait "$PID" || true
rc=$(cat "$T/bg.rc")
mv "$T/tokens.gone" "$T/tokens"
if [ "$rc" != 6 ]; then
	show_file stderr "$ERR"
	fail "expected exit 6 when the token vanished, got $rc"
fi
assert_eq "$(grep -Ec '^p11scep: ' "$ERR")" 1 "lines on stderr"
assert_grep "$ERR" 'token' "the message does not name the token"
row "token files removed while waiting" 6 "$(errline)"
assert_no_file "$T/k5.pem" "a cert was written although the token vanished"
[ "$(n_states)" = 1 ] || fail "the pending transaction was not kept"
stop_responder

echo "faults: results" >&2
for r in "${RESULTS[@]}"; do
	echo "  $r" >&2
done
