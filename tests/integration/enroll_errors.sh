#!/bin/bash
# p11scep enroll failures: each gives its documented exit code and one error
# line, and none leaves a certificate behind (file or token object).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

setup_token

# The CSR verifier refuses every request until $T/allow exists.
cat >"$T/verifier.sh" <<VEOF
#!/bin/sh
cat >/dev/null
echo called >>"$T/verifier.calls"
[ -e "$T/allow" ]
VEOF
chmod 755 "$T/verifier.sh"
start_scepserver -debug -csrverifierexec "$T/verifier.sh"

SUBJECT="CN=p11scep-errors.example.test"

pkiops() {
	grep -c 'op=PKIOperation' "$SCEP_LOG" || true
}

no_cert_left() {
	assert_no_file "$T/cert.pem" "--cert-out written although enroll failed ($1)"
	assert_eq "$(tok_count cert)" 0 "certificate objects in the token after: $1"
	[ "$CHECK_INDEX" = 0 ] ||
		assert_eq "$(grep -c '^V' "$DEPOT/index.txt" 2>/dev/null || true)" 0 \
			"certificates issued by the CA after: $1"
}
CHECK_INDEX=1

touch "$T/allow"
WRONG_CHALLENGE=$T/wrong-challenge
(umask 077 && echo "not-the-challenge" >"$WRONG_CHALLENGE")

note "wrong challenge: the CA answers FAILURE, exit 4"
expect_error 4 '' p11s enroll -u "$URL" -k "$KEY_URI" --subject "$SUBJECT" \
	--ca-fingerprint "$CA_FP" --challenge-file "$WRONG_CHALLENGE" --cert-out "$T/cert.pem"
no_cert_left "wrong challenge"

note "no challenge at all: FAILURE, exit 4"
expect_error 4 '' p11s enroll -u "$URL" -k "$KEY_URI" --subject "$SUBJECT" \
	--ca-fingerprint "$CA_FP" --cert-out "$T/cert.pem"
no_cert_left "no challenge"

note "the CSR verifier refuses the request: FAILURE, exit 4"
rm -f "$T/allow" "$T/verifier.calls"
expect_error 4 '' p11s enroll -u "$URL" -k "$KEY_URI" --subject "$SUBJECT" \
	--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" --cert-out "$T/cert.pem"
assert_file "$T/verifier.calls" "the CSR verifier was not asked"
no_cert_left "CSR verifier refusal"
touch "$T/allow"

note "wrong --ca-fingerprint: exit 7 before any PKIOperation"
before=$(pkiops)
assert_ne "$before" 0 "PKIOperation entries in the server log (the log format changed?)"
last=${CA_FP##*:}
if [ "$last" = 00 ]; then other=${CA_FP%:*}:01; else other=${CA_FP%:*}:00; fi
expect_error 7 '' p11s enroll -u "$URL" -k "$KEY_URI" --subject "$SUBJECT" \
	--ca-fingerprint "$other" --challenge-file "$CHALLENGE_FILE" --cert-out "$T/cert.pem"
assert_eq "$(pkiops)" "$before" "PKIOperation requests the server saw after a fingerprint mismatch"
no_cert_left "fingerprint mismatch"

note "wrong PIN: exit 6, the message names the PIN, not its value"
(umask 077 && echo 55512399 >"$T/badpin")
expect_error 6 'pin' p11s enroll -u "$URL" -k "$(key_uri mykey "pin-source=file:$T/badpin")" \
	--subject "$SUBJECT" --ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" \
	--cert-out "$T/cert.pem"
assert_no_string "$ERR" 55512399 "the wrong PIN's value was printed"
no_cert_left "wrong PIN"

note "no such token: exit 6"
expect_error 6 '' p11s enroll -u "$URL" \
	-k "pkcs11:token=no-such-token;object=mykey?module-path=$SOFTHSM_MODULE&pin-source=file:$PIN_FILE" \
	--subject "$SUBJECT" --ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" \
	--cert-out "$T/cert.pem"
no_cert_left "no such token"

note "a module that does not exist: exit 6"
expect_error 6 '' p11s enroll -u "$URL" \
	-k "pkcs11:token=$TOKEN_LABEL;object=mykey?module-path=$T/nonexistent.so&pin-source=file:$PIN_FILE" \
	--subject "$SUBJECT" --ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" \
	--cert-out "$T/cert.pem"
no_cert_left "missing module"

note "a digest the server does not offer (SHA-512): usage error, exit 2"
expect_error 2 'sha-?512' p11s enroll -u "$URL" -k "$KEY_URI" --subject "$SUBJECT" \
	--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" --cert-out "$T/cert.pem" \
	--digest sha512
no_cert_left "unoffered digest"

note "usage errors: exit 2"
expect_error 2 '' p11s enroll -u "$URL" -k "$KEY_URI" --subject "$SUBJECT" \
	--challenge-file "$CHALLENGE_FILE"
expect_error 2 '' p11s enroll -u "$URL" -k "$KEY_URI" --ca-fingerprint "$CA_FP" \
	--challenge-file "$CHALLENGE_FILE"
expect_error 2 '' p11s enroll -u "$URL" -k "$KEY_URI" --subject "$SUBJECT" \
	--ca-fingerprint "$CA_FP" --key-type rsa:1024
expect_error 2 '' p11s enroll -u "$URL" -k "$KEY_URI" --subject "$SUBJECT" \
	--ca-fingerprint "$CA_FP" --cipher des
expect_error 2 '' p11s enroll -u "$URL" -k "$KEY_URI" --subject "$SUBJECT" \
	--ca-fingerprint "$CA_FP" --no-such-option
expect_error 2 '' p11s enroll -u "$URL" -k "not-a-pkcs11-uri" --subject "$SUBJECT" \
	--ca-fingerprint "$CA_FP"
no_cert_left "usage errors"

note "--cert-out into a missing directory: non-zero, nothing imported"
rc=0
p11s enroll -u "$URL" -k "$KEY_URI" --subject "$SUBJECT" --ca-fingerprint "$CA_FP" \
	--challenge-file "$CHALLENGE_FILE" --cert-out "$T/missing/dir/cert.pem" >"$OUT" 2>"$ERR" || rc=$?
case $rc in
1 | 2) ;;
*) show_file stderr "$ERR"; fail "--cert-out into a missing directory gave exit $rc, expected 1 or 2" ;;
esac
assert_eq "$(tok_count cert)" 0 "certificate objects after a --cert-out that cannot be written"
# Whether the CA was asked before the write failed is the binary's choice.
CHECK_INDEX=0

note "server down (closed port): exit 5"
stop_scepserver
expect_error 5 '' p11s enroll -u "$URL" -k "$KEY_URI" --subject "$SUBJECT" \
	--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" --cert-out "$T/cert.pem" \
	--timeout 10
no_cert_left "server down"

note "control: with the server back and the verifier agreeing, the same enroll succeeds"
start_scepserver -debug -csrverifierexec "$T/verifier.sh"
expect_exit 0 p11s enroll -u "$URL" -k "$KEY_URI" --subject "$SUBJECT" \
	--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" --cert-out "$T/cert.pem"
openssl verify -CAfile "$CA_PEM" "$T/cert.pem" >/dev/null 2>&1 || fail "the control cert does not verify"
assert_eq "$(tok_count cert)" 1 "certificate objects after the control enrollment"

echo "PASS: enroll_errors"
