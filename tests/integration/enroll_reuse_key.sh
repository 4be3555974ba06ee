#!/bin/bash
# p11scep enroll with a key that already exists: the key is reused, and the
# token keeps one certificate object per key ID (the newest).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_tool jq jq

setup_token
start_scepserver

SUBJECT="CN=p11scep-reuse.example.test"

enroll() {
	local uri=$1 certfile=$2
	expect_exit 0 p11s enroll -u "$URL" -k "$uri" --subject "$SUBJECT" \
		--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" --cert-out "$certfile"
	assert_grep "$OUT" '^issued:' "no issued: line on stdout"
	openssl verify -CAfile "$CA_PEM" "$certfile" >/dev/null 2>&1 ||
		fail "$certfile does not verify against the CA"
}

note "first enrollment creates mykey"
enroll "$KEY_URI" "$T/cert1.pem"
KEY_ID=$(tok_id_of privkey mykey)
tok_pubkey "$KEY_ID" "$T/pub1.pem"
pubkey_same "$T/cert1.pem" "$T/pub1.pem" || fail "first cert is not for the token key"
assert_eq "$(tok_count cert "$KEY_ID")" 1 "certificate objects after the first enrollment"

note "second enrollment with the same URI reuses mykey"
enroll "$KEY_URI" "$T/cert2.pem"
assert_eq "$(tok_count privkey)" 1 "private keys after the second enrollment"
assert_eq "$(tok_count pubkey)" 1 "public keys after the second enrollment"
assert_eq "$(tok_id_of privkey mykey)" "$KEY_ID" "ID of mykey after the second enrollment"
pubkey_same "$T/cert2.pem" "$T/pub1.pem" || fail "second cert is not for the same key"
tok_sign_verify "$KEY_ID" "$T/cert2.pem"
assert_ne "$(cert_serial "$T/cert2.pem")" "$(cert_serial "$T/cert1.pem")" "serial of the second cert"

note "the token's cert object is the new cert, and there is only one"
assert_eq "$(tok_count cert)" 1 "certificate objects after the second enrollment"
assert_eq "$(tok_count cert "$KEY_ID")" 1 "certificate objects with mykey's ID"
tok_cert "$KEY_ID" "$T/tokcert.pem"
cert_same "$T/tokcert.pem" "$T/cert2.pem" || fail "the token still holds the old certificate"

note "a key made beforehand by pkcs11-tool (prekey, ID 0102) is reused"
p11t --keypairgen --key-type rsa:2048 --label prekey --id 0102 >/dev/null
tok_pubkey 0102 "$T/prepub.pem"
enroll "$(key_uri prekey "pin-source=file:$PIN_FILE")" "$T/cert3.pem"
pubkey_same "$T/cert3.pem" "$T/prepub.pem" || fail "cert for prekey does not carry prekey's public key"
tok_sign_verify 0102 "$T/cert3.pem"
assert_eq "$(tok_count privkey)" 2 "private keys after enrolling prekey"
assert_eq "$(tok_id_of privkey prekey)" 0102 "ID of prekey"
assert_eq "$(tok_count cert 0102)" 1 "certificate objects with prekey's ID"
assert_eq "$(tok_id_of cert prekey)" 0102 "ID of the certificate object labelled prekey"
tok_cert 0102 "$T/tokcert3.pem"
cert_same "$T/tokcert3.pem" "$T/cert3.pem" || fail "the token's cert for prekey is not the issued one"
assert_eq "$(tok_count cert "$KEY_ID")" 1 "certificate objects with mykey's ID after enrolling prekey"
assert_eq "$(tok_count cert)" 2 "certificate objects in the token"
# micromdm revokes a subject's older certs when it issues a new one.
assert_eq "$(grep -c '^[VR]' "$DEPOT/index.txt")" 3 "certificates in the CA's index"

note "--import-chain stores the CA certificate once, however often it runs"
for i in 1 2; do
	expect_exit 0 p11s enroll -u "$URL" -k "$(key_uri prekey "pin-source=file:$PIN_FILE")" \
		--subject "$SUBJECT" --ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" \
		--import-chain
	assert_eq "$(tok_count cert)" 3 "certificate objects after --import-chain run $i"
done
# The CA has no CN: its label is the one-line subject.
CA_ID=$(tok_id_of cert "/C=US/O=scep-ca/OU=SCEP CA")
tok_cert "$CA_ID" "$T/tokca.pem"
cert_same "$T/tokca.pem" "$CA_PEM" || fail "the CA certificate object is not the CA"
assert_eq "$(tok_count cert 0102)" 1 "certificate objects with prekey's ID after --import-chain"
# What each certificate is to the token's user (CKA_CERTIFICATE_CATEGORY).
expect_exit 0 p11s token-info -k "$(key_uri prekey "pin-source=file:$PIN_FILE")" --json
assert_eq "$(jq -r --arg id "$(printf '%s' "$CA_ID" | tr 'A-F' 'a-f')" \
	'.objects[] | select(.class == "certificate" and .id == $id) | .category' "$OUT")" \
	authority "category of the imported CA certificate"
assert_eq "$(jq -r '.objects[] | select(.class == "certificate" and .id == "0102") | .category' \
	"$OUT")" "token user" "category of the certificate beside prekey"

echo "PASS: enroll_reuse_key"
