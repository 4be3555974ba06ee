#!/bin/bash
# p11scep renew against micromdm's scepserver (-allowrenew 0): RenewalReq
# signed by the current cert, for the same key or a new key generated in the
# token beside the old one; PKCSReq mode; --remove-old.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

setup_token
start_scepserver -debug

SUBJECT="CN=p11scep-renew.example.test,O=p11scep tests"
renewals() { grep -c 'msg_type=RenewalReq\|RenewalReq' "$SCEP_LOG" || true; }

note "enroll first, with SANs"
expect_exit 0 p11s enroll -u "$URL" -k "$KEY_URI" --subject "$SUBJECT" \
	--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" \
	--dns renew.example.test --ip 192.0.2.7 --cert-out "$T/cert0.pem"
OLD_ID=$(tok_id_of privkey mykey)

note "renew --reuse-key: RenewalReq signed by the token's current cert, same key, SANs kept"
expect_exit 0 p11s renew -u "$URL" -k "$KEY_URI" --ca-fingerprint "$CA_FP" \
	--challenge-file "$CHALLENGE_FILE" --reuse-key --cert-out "$T/cert1.pem" -v
assert_grep "$ERR" 'RenewalReq built' "renew did not send a RenewalReq"
openssl verify -CAfile "$CA_PEM" "$T/cert1.pem" >/dev/null || fail "renewed cert does not verify"
assert_ne "$(cert_serial "$T/cert1.pem")" "$(cert_serial "$T/cert0.pem")" "serial after renewal"
openssl x509 -in "$T/cert1.pem" -noout -ext subjectAltName >"$T/san1"
assert_grep "$T/san1" 'DNS:renew.example.test' "renewal lost the DNS SAN"
assert_grep "$T/san1" 'IP Address:192.0.2.7' "renewal lost the IP SAN"
openssl x509 -in "$T/cert1.pem" -noout -subject | grep -q 'CN = p11scep-renew.example.test' ||
	fail "renewal changed the subject"
assert_eq "$(tok_count privkey)" 1 "private keys after a --reuse-key renewal"
tok_cert "$OLD_ID" "$T/tok1.pem"
cert_same "$T/tok1.pem" "$T/cert1.pem" || fail "the token does not hold the renewed cert"

note "renew --cert FILE --renewal-mode pkcsreq"
expect_exit 0 p11s renew -u "$URL" -k "$KEY_URI" --ca-fingerprint "$CA_FP" \
	--challenge-file "$CHALLENGE_FILE" --reuse-key --cert "$T/cert1.pem" \
	--renewal-mode pkcsreq --cert-out "$T/cert2.pem" -v
assert_grep "$ERR" 'PKCSReq built' "--renewal-mode pkcsreq did not send a PKCSReq"
pubkey_same "$T/cert2.pem" <(openssl x509 -in "$T/cert1.pem" -noout -pubkey) ||
	fail "pkcsreq renewal changed the key"

note "renew with a new key: generated beside the old one; the old key stays"
sleep 1	# certificate times have one-second resolution: keep "newest" unambiguous
expect_exit 0 p11s renew -u "$URL" -k "$KEY_URI" --ca-fingerprint "$CA_FP" \
	--challenge-file "$CHALLENGE_FILE" --cert-out "$T/cert3.pem"
assert_eq "$(tok_count privkey)" 2 "private keys after a new-key renewal"
NEW_ID=$(tok_list privkey | awk -F'|' -v old="$OLD_ID" '$1 != old { print $1 }')
[ -n "$NEW_ID" ] || fail "no new key in the token"
tok_pubkey "$NEW_ID" "$T/newpub.pem"
pubkey_same "$T/cert3.pem" "$T/newpub.pem" || fail "the renewed cert is not for the new key"
tok_sign_verify "$NEW_ID" "$T/cert3.pem"
tok_cert "$NEW_ID" "$T/tok3.pem"
cert_same "$T/tok3.pem" "$T/cert3.pem" || fail "the new cert is not stored beside the new key"
assert_eq "$(tok_count cert "$OLD_ID")" 1 "certs of the old key (kept)"
assert_eq "$(tok_access_of privkey "$NEW_ID" | grep -c 'never extractable')" 1 \
	"the new key is never extractable"

note "the URI now names the new key: its cert is the newest"
sleep 1
expect_exit 0 p11s renew -u "$URL" -k "$KEY_URI" --ca-fingerprint "$CA_FP" \
	--challenge-file "$CHALLENGE_FILE" --remove-old --cert-out "$T/cert4.pem"
assert_eq "$(tok_count privkey)" 2 "private keys after renewing again with --remove-old"
assert_eq "$(tok_count privkey "$NEW_ID")" 0 "the replaced key was removed"
assert_eq "$(tok_count cert "$NEW_ID")" 0 "the replaced key's cert was removed"
assert_eq "$(tok_count pubkey "$NEW_ID")" 0 "the replaced key's public key was removed"
assert_eq "$(tok_count privkey "$OLD_ID")" 1 "the first key (not the one renewed) stays"

note "renew without a key is a token error; with a key but no cert anywhere, a usage error"
expect_exit 6 p11s renew -u "$URL" -k "$(key_uri nosuchkey "pin-source=file:$PIN_FILE")" \
	--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE"
p11t --keypairgen --key-type rsa:2048 --label nocert --id 0a0b >/dev/null
expect_exit 2 p11s renew -u "$URL" -k "$(key_uri nocert "pin-source=file:$PIN_FILE")" \
	--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE"
assert_grep "$ERR" "--cert" "the refusal does not point to --cert"
echo "PASS: renew"
