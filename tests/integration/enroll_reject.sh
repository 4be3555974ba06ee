#!/bin/bash
# The CA says no (scep-responder --reject/--status/--challenge): FAILURE with
# each failInfo is exit 4 naming the failInfo and the CA's text; values that
# RFC 8894 does not define are untrusted replies (exit 7). Never a cert file,
# never a cert in the token.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

setup_token
N=0

# enroll_fail EXIT REGEX: one enrollment with a new key against $URL, which
# must fail with EXIT and an error line matching REGEX, writing nothing.
enroll_fail() {
	local want=$1 re=$2
	N=$((N + 1))
	expect_error "$want" "$re" p11s enroll -u "$URL" -k "$(key_uri "rej$N" "pin-source=file:$PIN_FILE")" \
		--subject "CN=rej$N.example.test" --ca-fingerprint "$CA_FP" \
		--challenge-file "$CHALLENGE_FILE" --cert-out "$T/rej$N.pem" --chain-out "$T/rej$N-chain.pem"
	assert_no_file "$T/rej$N.pem" "a cert file was written although the CA refused"
	assert_no_file "$T/rej$N-chain.pem" "a chain file was written although the CA refused"
	assert_eq "$(tok_count cert)" 0 "certificate objects in the token after a refusal"
	assert_eq "$(rsp_count 'type=PKCSReq')" 1 "PKCSReqs sent (one, no retry)"
	assert_eq "$(rsp_count 'status=SUCCESS')" 0 "SUCCESS answers of a refusing responder"
}

for fi in badAlg badMessageCheck badRequest badTime badCertId; do
	note "FAILURE $fi with a failInfoText: exit 4, both shown"
	text="test refusal: $fi, no certificate for you"
	start_responder --reject "$fi:$text"
	enroll_fail 4 "$fi"
	assert_grep "$ERR" "^p11scep: .*test refusal: $fi, no certificate for you" \
		"the error line does not show the CA's failInfoText"
	assert_grep "$RSP_LOG" "type=PKCSReq .*status=FAILURE fail=$fi " "responder log of the refusal"
	stop_responder
done

note "FAILURE badRequest without a text: exit 4 naming badRequest"
start_responder --reject badRequest
enroll_fail 4 'badRequest'
stop_responder

note "FAILURE with failInfo 7, which RFC 8894 does not define: exit 7"
start_responder --reject "7:seven is not a failInfo"
enroll_fail 7 ''
assert_grep "$RSP_LOG" 'status=FAILURE .*failinfo=7' "responder log of the refusal"
stop_responder

note "pkiStatus 9, which RFC 8894 does not define: exit 7"
start_responder --status 9
enroll_fail 7 ''
assert_grep "$RSP_LOG" 'pkistatus=9' "responder log of the odd status"
stop_responder

note "wrong challenge password: exit 4 with the CA's text"
start_responder --challenge "not-the-$CHALLENGE"
enroll_fail 4 'badRequest'
assert_grep "$ERR" '^p11scep: .*wrong challenge password' \
	"the error line does not show the CA's failInfoText"
assert_grep "$RSP_LOG" 'type=PKCSReq .*reason="wrong or missing challenge password" status=FAILURE fail=badRequest' \
	"responder log of the wrong challenge"
assert_no_string "$RSP_LOG" "$CHALLENGE" "the challenge password appears in the responder log"
assert_no_string "$ERR" "$CHALLENGE" "the challenge password appears on stderr"
stop_responder

note "the right challenge then works (the refusals above were not client faults)"
start_responder
expect_exit 0 p11s enroll -u "$URL" -k "$(key_uri ok "pin-source=file:$PIN_FILE")" \
	--subject "CN=ok.example.test" --ca-fingerprint "$CA_FP" \
	--challenge-file "$CHALLENGE_FILE" --cert-out "$T/ok.pem"
openssl verify -CAfile "$CA_PEM" "$T/ok.pem" >/dev/null 2>&1 || fail "the cert does not verify"
assert_eq "$(tok_count cert)" 1 "certificate objects in the token"

echo "PASS: enroll_reject"
