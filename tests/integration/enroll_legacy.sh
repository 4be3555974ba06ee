#!/bin/bash
# Old servers: no (or failing) GetCACaps means no capabilities, so p11scep
# must fall back to what RFC 8894 lets such a server expect (3DES, SHA-1,
# GET); caps without POSTPKIOperation mean GET; a cipher the server did not
# offer is a usage error; replies in other algorithms are accepted.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

setup_token
N=0

# enroll_ok [p11scep args]: one enrollment with a new key; the cert verifies.
enroll_ok() {
	N=$((N + 1))
	expect_exit 0 p11s enroll -u "$URL" -k "$(key_uri "leg$N" "pin-source=file:$PIN_FILE")" \
		--subject "CN=leg$N.example.test" --ca-fingerprint "$CA_FP" \
		--challenge-file "$CHALLENGE_FILE" --cert-out "$T/leg$N.pem" "$@"
	openssl verify -CAfile "$CA_PEM" "$T/leg$N.pem" >"$T/verify.out" 2>&1 ||
		{ show_file "openssl verify" "$T/verify.out"; fail "leg$N: cert does not verify"; }
	assert_eq "$(rsp_count 'status=SUCCESS')" 1 "leg$N: SUCCESS answers"
	assert_eq "$(rsp_count 'reason=')" 0 "leg$N: refusals in the responder log"
}

# pkiop_line REGEX: the one PKIOperation line of the log matches REGEX.
pkiop_line() {
	assert_eq "$(rsp_count '^op=PKIOperation')" 1 "PKIOperation requests"
	assert_grep "$RSP_LOG" "^op=PKIOperation $1" "${2:-the request was not sent as expected}"
}

note "no capabilities (empty GetCACaps): 3DES, SHA-1, GET"
start_responder --caps ""
enroll_ok
pkiop_line 'method=GET type=PKCSReq .*digest=SHA1 cipher=DES-EDE3-CBC ' \
	"with no caps the request must be a GET with SHA-1 and 3DES"
stop_responder

note "GetCACaps answers HTTP 404: the same fallback"
start_responder --caps-status 404
enroll_ok
assert_grep "$RSP_LOG" '^op=GetCACaps .*http=404' "GetCACaps was not asked"
pkiop_line 'method=GET type=PKCSReq .*digest=SHA1 cipher=DES-EDE3-CBC ' \
	"with no caps the request must be a GET with SHA-1 and 3DES"
stop_responder

note "caps AES SHA-256 without POSTPKIOperation: GET, with AES and SHA-256"
start_responder --caps "AES SHA-256"
enroll_ok
pkiop_line 'method=GET type=PKCSReq .*digest=SHA256 cipher=AES-128-CBC ' \
	"without POSTPKIOperation the request must be a GET (AES, SHA-256)"
stop_responder

note "--cipher des3 when the server does not offer DES3: usage error, nothing sent"
start_responder
N=$((N + 1))
expect_error 2 'des3|3des|DES-EDE3' p11s enroll -u "$URL" \
	-k "$(key_uri "leg$N" "pin-source=file:$PIN_FILE")" --subject "CN=leg$N.example.test" \
	--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" --cert-out "$T/leg$N.pem" \
	--cipher des3
assert_no_file "$T/leg$N.pem"
assert_eq "$(rsp_count '^op=PKIOperation')" 0 "PKIOperation requests after the usage error"
stop_responder

note "replies encrypted with AES-256 and signed with SHA-512 are accepted"
start_responder --reply-cipher aes256 --reply-digest sha512
enroll_ok -v
assert_grep "$ERR" 'SHA512' "p11scep -v does not report the reply's SHA-512 signature"
assert_grep "$ERR" 'AES-256-CBC' "p11scep -v does not report the reply's AES-256 envelope"
stop_responder

note "replies encrypted with 3DES and signed with SHA-1 (old servers) are accepted"
start_responder --reply-cipher des3 --reply-digest sha1
enroll_ok
stop_responder

note "--strict refuses legacy replies, and servers without SCEPStandard"
start_responder --reply-cipher des3 --reply-digest sha1
N=$((N + 1))
expect_exit 7 p11s enroll -u "$URL" -k "$(key_uri "leg$N" "pin-source=file:$PIN_FILE")" \
	--subject "CN=leg$N.example.test" --ca-fingerprint "$CA_FP" \
	--challenge-file "$CHALLENGE_FILE" --cert-out "$T/leg$N.pem" --strict
assert_no_file "$T/leg$N.pem"
stop_responder
start_responder --caps "AES SHA-256 POSTPKIOperation"
expect_exit 7 p11s enroll -u "$URL" -k "$(key_uri "leg$N" "pin-source=file:$PIN_FILE")" \
	--subject "CN=leg$N.example.test" --ca-fingerprint "$CA_FP" \
	--challenge-file "$CHALLENGE_FILE" --strict
assert_grep "$ERR" "SCEPStandard" "the strict refusal does not name SCEPStandard"
assert_eq "$(rsp_count '^op=PKIOperation')" 0 "PKIOperation requests after a strict refusal"
stop_responder
note "--strict with a modern server works"
start_responder --reply-cipher aes256 --reply-digest sha512
enroll_ok --strict
stop_responder

assert_eq "$(tok_count cert)" 6 "certificate objects in the token"

echo "PASS: enroll_legacy"
