#!/bin/bash
# A CA that holds requests for approval (scep-responder --pending N): enroll
# polls with CertPoll until SUCCESS; an interrupted or timed-out enrollment
# resumes with 'p11scep poll' (same transactionID, same key, no second
# PKCSReq); one outstanding request per key; --new-request starts over.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

setup_token

txid_of() { sed -n 's/.*type=PKCSReq txid=\([^ ]*\).*/\1/p' "$RSP_LOG" | sed -n "${1}p"; }

note "pending for 2 polls, polled every second: issued in one run"
start_responder --pending 2
expect_exit 0 p11s enroll -u "$URL" -k "$KEY_URI" --subject "CN=pending.example.test" \
	--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" \
	--poll-interval 1 --cert-out "$T/cert.pem"
assert_grep "$OUT" '^issued:' "no issued: line after polling"
assert_eq "$(rsp_count 'type=PKCSReq')" 1 "PKCSReqs sent"
assert_eq "$(rsp_count 'type=CertPoll')" 2 "CertPolls sent"
TXID=$(txid_of 1)
assert_eq "$(rsp_count "type=CertPoll txid=$TXID ")" 2 "CertPolls with the request's transactionID"
openssl verify -CAfile "$CA_PEM" "$T/cert.pem" >/dev/null || fail "issued cert does not verify"
assert_eq "$(find "$XDG_STATE_HOME" -name '*.txn' | wc -l)" 0 "state files left after success"
stop_responder

note "--max-poll-time runs out: exit 3, state kept (mode 0600, no secrets)"
KEY_URI=$(key_uri resume "pin-source=file:$PIN_FILE")
start_responder --pending 3
expect_exit 3 p11s enroll -u "$URL" -k "$KEY_URI" --subject "CN=resume.example.test" \
	--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" \
	--poll-interval 1 --max-poll-time 1 --cert-out "$T/resumed.pem"
assert_grep "$ERR" "p11scep poll" "the pending message does not say how to resume"
assert_no_file "$T/resumed.pem" "a cert file was written while pending"
STATE=$(find "$XDG_STATE_HOME" -name '*.txn')
[ -n "$STATE" ] || fail "no state file was kept"
assert_eq "$(stat -c %a "$STATE")" 600 "state file mode"
assert_no_string "$STATE" "$CHALLENGE" "the state file holds the challenge"
assert_no_string "$STATE" "$TOKEN_PIN" "the state file holds the PIN"
assert_eq "$(tok_count privkey)" 2 "private keys while pending (mykey, resume)"
KEY_ID=$(tok_id_of privkey resume)

note "a second enroll for the same key is refused while one is pending"
expect_exit 2 p11s enroll -u "$URL" -k "$KEY_URI" --subject "CN=resume.example.test" \
	--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" --max-poll-time 0
assert_grep "$ERR" "pending" "the refusal does not say a request is pending"
assert_eq "$(rsp_count 'type=PKCSReq')" 1 "PKCSReqs after the refused enroll"

note "p11scep poll resumes: same transactionID, same key, no new PKCSReq"
expect_exit 0 p11s poll -k "$KEY_URI" --poll-interval 1
assert_grep "$OUT" '^issued:' "poll did not issue"
assert_eq "$(rsp_count 'type=PKCSReq')" 1 "PKCSReqs after poll"
TXID=$(txid_of 1)
assert_eq "$(rsp_count "type=CertPoll txid=$TXID ")" "$(rsp_count 'type=CertPoll')" \
	"CertPolls all carry the first transactionID"
assert_eq "$(tok_count privkey)" 2 "private keys after poll"
assert_eq "$(tok_id_of privkey resume)" "$KEY_ID" "the key after poll"
openssl verify -CAfile "$CA_PEM" "$T/resumed.pem" >/dev/null ||
	fail "poll did not write the cert to the saved --cert-out"
tok_cert "$KEY_ID" "$T/tokcert.pem"
cert_same "$T/tokcert.pem" "$T/resumed.pem" || fail "poll did not store the cert in the token"
assert_eq "$(find "$XDG_STATE_HOME" -name '*.txn' | wc -l)" 0 "state files left after poll"
expect_exit 2 p11s poll -k "$KEY_URI"
stop_responder

note "SIGTERM while waiting: exit 3, state kept; --new-request sends a fresh request"
KEY_URI=$(key_uri killed "pin-source=file:$PIN_FILE")
start_responder --pending 1
p11s enroll -u "$URL" -k "$KEY_URI" --subject "CN=killed.example.test" \
	--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" \
	--poll-interval 30 >"$T/bg.out" 2>"$T/bg.err" &
BG=$!
for _ in $(seq 1 300); do
	[ "$(rsp_count 'type=PKCSReq')" -ge 1 ] && break
	sleep 0.1
done
assert_eq "$(rsp_count 'type=PKCSReq')" 1 "PKCSReq before the signal"
sleep 0.3
# Signal p11scep itself (not the setsid/timeout wrappers around it).
PID=
for p in $(pgrep -f -- "--subject CN=killed.example.test" || true); do
	case $(cat "/proc/$p/comm" 2>/dev/null) in
	p11scep | memcheck*) PID=$p ;;	# memcheck: under P11SCEP_WRAP=valgrind
	esac
done
[ -n "$PID" ] || fail "cannot find the running p11scep"
kill -TERM "$PID"
rc=0
wait "$BG" || rc=$?
assert_eq "$rc" 3 "exit status after SIGTERM while pending"
[ -n "$(find "$XDG_STATE_HOME" -name '*.txn')" ] || fail "no state kept after SIGTERM"
expect_exit 0 p11s enroll -u "$URL" -k "$KEY_URI" --subject "CN=killed.example.test" \
	--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" \
	--poll-interval 1 --new-request
assert_eq "$(rsp_count 'type=PKCSReq')" 2 "PKCSReqs after --new-request"
assert_ne "$(txid_of 2)" "$(txid_of 1)" "transactionID of the new request"
stop_responder

note "SIGKILL while waiting (no chance to clean up): poll resumes the same transaction"
start_responder --pending 1
KEY_URI=$(key_uri crashed "pin-source=file:$PIN_FILE")
p11s enroll -u "$URL" -k "$KEY_URI" --subject "CN=crashed.example.test" \
	--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" \
	--poll-interval 30 >"$T/bg.out" 2>"$T/bg.err" &
BG=$!
for _ in $(seq 1 300); do
	[ "$(rsp_count 'type=PKCSReq')" -ge 1 ] && break
	sleep 0.1
done
PID=
for p in $(pgrep -f -- "--subject CN=crashed.example.test" || true); do
	case $(cat "/proc/$p/comm" 2>/dev/null) in
	p11scep | memcheck*) PID=$p ;;	# memcheck: under P11SCEP_WRAP=valgrind
	esac
done
[ -n "$PID" ] || fail "cannot find the running p11scep"
kill -KILL "$PID"
wait "$BG" || true
expect_exit 0 p11s poll -k "$KEY_URI" --poll-interval 1
assert_eq "$(rsp_count 'type=PKCSReq')" 1 "PKCSReqs after the crash and poll"
assert_eq "$(rsp_count "type=CertPoll txid=$(txid_of 1) ")" 1 "CertPolls with the crashed run's transactionID"
assert_eq "$(tok_list privkey | grep -c '|crashed|')" 1 "keys labelled crashed"
stop_responder

note "a pending renewal with a new key resumes with poll: cert for the new key"
start_responder --pending 1
KEY_URI=$(key_uri ren "pin-source=file:$PIN_FILE")
expect_exit 0 p11s enroll -u "$URL" -k "$KEY_URI" --subject "CN=ren.example.test" \
	--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" --poll-interval 1
OLD_ID=$(tok_id_of privkey ren)
sleep 1	# one-second certificate times: the renewed cert must be the newest
expect_exit 3 p11s renew -u "$URL" -k "$KEY_URI" --ca-fingerprint "$CA_FP" \
	--max-poll-time 0 --remove-old --cert-out "$T/ren.pem"
assert_eq "$(rsp_count 'type=RenewalReq')" 1 "RenewalReqs sent"
assert_eq "$(tok_list privkey | grep -c '|ren|')" 2 "keys labelled ren while the renewal is pending"
expect_exit 0 p11s poll -k "$KEY_URI" --poll-interval 1
assert_eq "$(rsp_count 'type=RenewalReq')" 1 "RenewalReqs after poll"
assert_eq "$(tok_list privkey | grep -c '|ren|')" 1 "keys labelled ren after poll (--remove-old)"
assert_eq "$(tok_count privkey "$OLD_ID")" 0 "the old key after poll with --remove-old"
NEW_ID=$(tok_id_of privkey ren)
tok_pubkey "$NEW_ID" "$T/renpub.pem"
pubkey_same "$T/ren.pem" "$T/renpub.pem" || fail "the renewed cert is not for the new key"
tok_cert "$NEW_ID" "$T/rentok.pem"
cert_same "$T/rentok.pem" "$T/ren.pem" || fail "the renewed cert is not beside the new key"
echo "PASS: pending"
