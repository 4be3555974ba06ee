#!/bin/bash
# p11scep run (the renewal agent) and p11scep status over a config with
# several profiles: micromdm's scepserver, scep-responder with short-lived
# certs and with manual approval, and a profile whose server is down.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_tool jq jq

setup_token
start_scepserver
MM_URL=$URL MM_FP=$CA_FP MM_CHAL=$CHALLENGE_FILE
# Short-lived certs: due 75% into a lifetime that begins 60 s back. Under a
# wrapper (valgrind) each run takes seconds: more room before they are due.
SHORT_S=50
[ -z "${P11SCEP_WRAP:-}" ] || SHORT_S=200
start_responder --valid-seconds "$SHORT_S"
RSP_URL=$URL RSP_FP=$CA_FP RSP_CHAL=$CHALLENGE_FILE SHORT_DIR=$RSP_DIR
start_responder --pending 1
PEND_URL=$URL PEND_FP=$CA_FP PEND_CHAL=$CHALLENGE_FILE

CONF=$T/p11scep.conf
STATE=$T/agent-state
cat >"$CONF" <<CONFEOF
[defaults]
state-dir = $STATE
post-enroll-command = echo "\$P11SCEP_PROFILE" >> $T/hook.log

[profile mm]
url = $MM_URL
ca-fingerprint = $MM_FP
challenge-file = $MM_CHAL
key = $(key_uri mm "pin-source=file:$PIN_FILE")
subject = CN=mm.example.test

[profile short]
url = $RSP_URL
ca-fingerprint = $RSP_FP
challenge-file = $RSP_CHAL
key = $(key_uri short "pin-source=file:$PIN_FILE")
subject = CN=short.example.test
renew-at = 75

[profile approval]
url = $PEND_URL
ca-fingerprint = $PEND_FP
challenge-file = $PEND_CHAL
key = $(key_uri approval "pin-source=file:$PIN_FILE")
subject = CN=approval.example.test

[profile down]
url = $(dead_url)
ca-fingerprint = $MM_FP
key = $(key_uri down "pin-source=file:$PIN_FILE")
subject = CN=down.example.test
CONFEOF
chmod 600 "$CONF"

note "first run: enrolls mm and short, approval is pending, down fails; the others go on"
expect_exit 5 p11s run -c "$CONF"
assert_grep "$ERR" 'profile mm: enroll: certificate issued' "mm not enrolled"
assert_grep "$ERR" 'profile short: enroll: certificate issued' "short not enrolled"
assert_grep "$ERR" 'profile approval: enroll: request pending' "approval not pending"
assert_grep "$ERR" 'profile down: failed' "down did not fail"
assert_grep "$ERR" '1 of 4 profiles failed: down' "the summary does not name the failed profile"
assert_eq "$(sort "$T/hook.log" | tr '\n' ' ')" "mm short " "post-enroll-command runs"
openssl verify -CAfile "$STATE/profiles/mm/ca/ca.pem" "$STATE/profiles/mm/user/cert.pem" >/dev/null ||
	fail "the stored mm cert does not verify with the stored CA"
assert_eq "$(cert_fp "$STATE/profiles/mm/ca/ca.pem")" "$MM_FP" "the stored mm CA"

note "status shows each profile's table; --json the same for monitoring"
expect_exit 0 p11s status -c "$CONF"
assert_grep "$OUT" '^Profile approval .*request pending' "status: approval pending"
assert_grep "$OUT" '^  usercert +Valid ' "status: no valid usercert row"
expect_exit 0 p11s status -c "$CONF" --json
jq -e '.[] | select(.profile == "mm") | .certificates[] | select(.certificate == "usercert") | .status == "Valid"' "$OUT" >/dev/null ||
	fail "status --json: mm usercert is not Valid"
jq -e '.[] | select(.profile == "approval") | .pending != null' "$OUT" >/dev/null ||
	fail "status --json: approval is not pending"
jq -e '.[] | select(.profile == "down") | .certificates[] | select(.certificate == "usercert") | .status == "None"' "$OUT" >/dev/null ||
	fail "status --json: down has a usercert"
mm_after=$(jq -r '.[] | select(.profile == "mm") | .certificates[] | select(.certificate == "usercert") | .not_after' "$OUT")
want=$(date -u -d "$(openssl x509 -in "$STATE/profiles/mm/user/cert.pem" -noout -enddate | cut -d= -f2)" '+%Y-%m-%d %H:%M:%S UTC')
assert_eq "$mm_after" "$want" "status --json: mm notAfter"

note "show-cert: from the profile's store, from the token, from a file"
expect_exit 0 p11s show-cert -c "$CONF" -p mm
assert_grep "$OUT" '^subject: CN=mm.example.test$' "show-cert -p mm subject"
assert_grep "$OUT" "^sha256: $(cert_fp "$STATE/profiles/mm/user/cert.pem")\$" "show-cert -p mm fingerprint"
expect_exit 0 p11s show-cert -k "$(key_uri mm "pin-source=file:$PIN_FILE")"
assert_grep "$OUT" "^sha256: $(cert_fp "$STATE/profiles/mm/user/cert.pem")\$" "show-cert -k: the token's cert"
expect_exit 0 p11s show-cert --cert "$STATE/profiles/mm/user/cert.pem"
assert_grep "$OUT" '^key: RSA 2048 bits$' "show-cert --cert key line"
expect_exit 2 p11s show-cert -c "$CONF" -p down

note "second run (-p for each working profile): nothing to do for mm and short; approval is issued"
expect_exit 0 p11s run -c "$CONF" -p mm
assert_grep "$ERR" 'profile mm: certificate valid until' "mm was acted on again"
expect_exit 0 p11s run -c "$CONF" -p short
assert_grep "$ERR" 'profile short: certificate valid until' "short was renewed too early"
expect_exit 0 p11s run -c "$CONF" -p approval
assert_grep "$ERR" 'profile approval: poll: certificate issued' "approval not issued on the second run"
assert_eq "$(rsp_count 'type=PKCSReq')" 1 "PKCSReqs to the approval server"

note "past renew-at (75% of a lifetime that began 60 s back), run renews short with a new key"
short_serial=$(cert_serial "$STATE/profiles/short/user/cert.pem")
expect_exit 0 p11s status -c "$CONF" -p short --json
due=$(jq -r '.[0].certificates[] | select(.certificate == "usercert") | .renew_due' "$OUT")
wait_s=$(( $(date -u -d "$due" +%s) - $(date -u +%s) + 1 ))
[ "$wait_s" -le 0 ] || sleep "$wait_s"
expect_exit 0 p11s run -c "$CONF" -p short
assert_grep "$ERR" 'profile short: renew: certificate issued' "short was not renewed"
assert_ne "$(cert_serial "$STATE/profiles/short/user/cert.pem")" "$short_serial" "serial after renewal"
assert_eq "$(tok_list privkey | grep -c '|short|')" 2 "keys labelled short after a new-key renewal"

note "getcrl -p keeps the CRL in the profile; status marks a revoked usercert"
expect_exit 0 p11s getcrl -c "$CONF" -p short
[ -s "$STATE/profiles/short/crl.pem" ] || fail "getcrl -p did not keep the CRL in the profile"
expect_exit 0 p11s status -c "$CONF" -p short --json
assert_eq "$(jq -r '.[0].certificates[] | select(.certificate == "usercert") | .status' "$OUT")" \
	Valid "usercert status with a CRL that does not list it"
cert_serial "$STATE/profiles/short/user/cert.pem" >"$SHORT_DIR/revoked"
expect_exit 0 p11s getcrl -c "$CONF" -p short
expect_exit 0 p11s status -c "$CONF" -p short
assert_grep "$OUT" '^  usercert +Revoked ' "status does not mark the revoked usercert"

note "a profile another process holds is not touched"
( flock "$STATE/profiles/mm/.lock" sleep 5 ) &
LOCKER=$!
sleep 0.5
expect_exit 2 p11s run -c "$CONF" -p mm
assert_grep "$ERR" 'busy' "the lock did not stop the run"
kill "$LOCKER" 2>/dev/null || true
wait "$LOCKER" 2>/dev/null || true

note "a bad config line: FILE:LINE, exit 2"
printf '[profile x]\nurl = http://127.0.0.1:1/scep\nrenew-at = 200\n' >"$T/bad.conf"
chmod 600 "$T/bad.conf"
expect_exit 2 p11s run -c "$T/bad.conf"
assert_grep "$ERR" 'bad.conf:3' "no FILE:LINE for a bad renew-at"
echo "PASS: agent"
