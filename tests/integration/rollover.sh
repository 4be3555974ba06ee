#!/bin/bash
# CA rollover in p11scep run (RFC 8894 §4.7): while the pinned CA nears its end
# the agent fetches the next CA with GetNextCACert (signed by the current CA)
# and keeps it; once the server serves the next CA, the agent follows it.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_tool jq jq

setup_token
# The CA lives from 60 s ago to 20 s from now (renew-at 75: near its end now);
# the next CA takes over after 15 s. User certs live 50 s (from 60 s ago), so
# renew-at 75 falls due ~22 s from now. Under a wrapper (valgrind) each pass
# takes seconds: renew-at 50 with a CA to 60 s, the next CA after 50 s and user
# certs due ~70 s from now tell the same story, slower.
CA_S=20 ROLL_S=15 USER_S=50 RENEW_AT=75
[ -z "${P11SCEP_WRAP:-}" ] || { CA_S=60 ROLL_S=50 USER_S=200 RENEW_AT=50; }
start_responder --ca-valid-seconds "$CA_S" --rollover-after "$ROLL_S" --valid-seconds "$USER_S"
OLD_FP=$CA_FP
STATE=$T/state-roll
CONF=$T/p11scep.conf
cat >"$CONF" <<CONFEOF
[profile roll]
url = $URL
ca-fingerprint = $OLD_FP
challenge-file = $CHALLENGE_FILE
key = $(key_uri roll "pin-source=file:$PIN_FILE")
subject = CN=roll.example.test
renew-at = $RENEW_AT
state-dir = $STATE
CONFEOF
chmod 600 "$CONF"
DIR=$STATE/profiles/roll

note "first pass: enrolls, and fetches the next CA because the pinned one nears its end"
expect_exit 0 p11s run -c "$CONF"
assert_grep "$ERR" 'profile roll: fetched the next CA' "the next CA was not fetched"
cert_same "$DIR/ca/next-ca.pem" "$RSP_DIR/next-ca.pem" || fail "the stored next CA is not the server's"
assert_eq "$(rsp_count '^op=GetNextCACert')" 1 "GetNextCACert requests"
expect_exit 0 p11s status -c "$CONF" --json
assert_eq "$(jq -r '.[0].certificates[] | select(.certificate == "ca-next") | .status' "$OUT")" \
	Valid "status: the next CA row"

note "second pass: nothing to do, the next CA is not fetched again"
expect_exit 0 p11s run -c "$CONF"
assert_grep "$ERR" 'nothing to do' "the second pass acted"
assert_eq "$(rsp_count '^op=GetNextCACert')" 1 "GetNextCACert requests after the second pass"

note "after the rollover, the renewal follows the server to the next CA (pinned by the old one's signature)"
expect_exit 0 p11s status -c "$CONF" --json
due=$(jq -r '.[0].certificates[] | select(.certificate == "usercert") | .renew_due' "$OUT")
wait_s=$(( $(date -u -d "$due" +%s) - $(date -u +%s) + 1 ))
[ "$wait_s" -le 0 ] || sleep "$wait_s"
expect_exit 0 p11s run -c "$CONF"
assert_grep "$ERR" 'serves the next CA now' "the agent did not follow the next CA"
assert_grep "$ERR" 'profile roll: renew: certificate issued' "no renewal after the rollover"
assert_eq "$(rsp_count '^op=rollover')" 1 "the responder rolled over"
cert_same "$DIR/ca/ca.pem" "$RSP_DIR/next-ca.pem" || fail "the stored CA is not the next CA"
assert_no_file "$DIR/ca/next-ca.pem" "next-ca.pem kept after it became the CA"
openssl verify -CAfile "$RSP_DIR/next-ca.pem" "$DIR/user/cert.pem" >/dev/null ||
	fail "the renewed cert does not verify with the next CA"

note "a one-shot enroll with the old pin and no stored next CA refuses the new CA"
expect_exit 7 p11s enroll -u "$URL" -k "$(key_uri other "pin-source=file:$PIN_FILE")" \
	--subject CN=other.example.test --ca-fingerprint "$OLD_FP" --challenge-file "$CHALLENGE_FILE"
echo "PASS: rollover"
