#!/bin/bash
# p11scep enroll with a key that does not exist yet: it is generated in the
# token, the CA issues a cert for it, and the cert lands beside the key.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

setup_token
start_scepserver

SUBJECT="CN=p11scep-new.example.test,O=p11scep tests"
[ "$(tok_count privkey)" -eq 0 ] || fail "a fresh token already holds a private key"

note "enroll generates mykey and gets a certificate"
expect_exit 0 p11s enroll -u "$URL" -k "$KEY_URI" --subject "$SUBJECT" \
	--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" \
	--cert-out "$T/cert.pem" --chain-out "$T/chain.pem" \
	--dns host1.example.test --dns host2.example.test --ip 192.0.2.10 --ip 2001:db8::7
CERT=$T/cert.pem
assert_file "$CERT"
assert_eq "$(count_certs "$CERT")" 1 "certificates in --cert-out"

note "stdout: one issued: line naming the subject and the fingerprint"
assert_eq "$(grep -c '^issued:' "$OUT")" 1 "issued: lines on stdout"
assert_grep "$OUT" '^issued:.*p11scep-new\.example\.test' "issued: line does not name the subject"
assert_grep "$OUT" "^issued:.*$(cert_fp "$CERT")" "issued: line lacks the cert's sha256 fingerprint"
assert_no_grep "$ERR" '^p11scep: .*(error|fail)' "an error was printed although enroll succeeded"

note "the cert verifies against the CA and carries the subject we asked for"
openssl verify -CAfile "$CA_PEM" "$CERT" >"$T/verify.out" 2>&1 ||
	{ show_file "openssl verify" "$T/verify.out"; fail "issued cert does not verify against the CA"; }
subj=$(openssl x509 -in "$CERT" -noout -subject -nameopt RFC2253)
case $subj in
*CN=p11scep-new.example.test*O=p11scep\ tests* | *O=p11scep\ tests*CN=p11scep-new.example.test*) ;;
*) fail "issued cert subject is '$subj'" ;;
esac
# micromdm copies the CSR's subjectAltName entries into the cert, so they must
# all be there: this proves the CSR carried them.
openssl x509 -in "$CERT" -noout -ext subjectAltName >"$T/san.txt" 2>&1 || true
for san in DNS:host1.example.test DNS:host2.example.test "IP Address:192.0.2.10" \
	"IP Address:2001:DB8:0:0:0:0:0:7"; do
	grep -Fq -- "$san" "$T/san.txt" || { show_file subjectAltName "$T/san.txt"; fail "cert lacks SAN $san"; }
done

note "the token holds exactly one private key, mykey: sensitive, never extractable"
assert_eq "$(tok_count privkey)" 1 "private keys in the token"
KEY_ID=$(tok_id_of privkey mykey)
access=$(tok_access_of privkey "$KEY_ID")
for a in "sensitive" "always sensitive" "never extractable"; do
	case ", $access," in
	*", $a,"*) ;;
	*) fail "private key access is '$access': it should include '$a'" ;;
	esac
done
assert_eq "$(tok_count pubkey)" 1 "public keys in the token"

note "the cert's public key is the token key's, and the token key signs for it"
tok_pubkey "$KEY_ID" "$T/tokpub.pem"
pubkey_same "$CERT" "$T/tokpub.pem" || fail "issued cert's public key is not the token key's"
tok_sign_verify "$KEY_ID" "$CERT"

note "the token holds the cert, once, with the key's ID and label"
assert_eq "$(tok_count cert)" 1 "certificate objects in the token"
assert_eq "$(tok_count cert "$KEY_ID")" 1 "certificate objects with the key's ID"
assert_eq "$(tok_id_of cert mykey)" "$KEY_ID" "ID of the certificate object labelled mykey"
tok_cert "$KEY_ID" "$T/tokcert.pem"
cert_same "$T/tokcert.pem" "$CERT" || fail "the token's certificate is not the one written to --cert-out"

note "--chain-out holds the CA certificate"
assert_file "$T/chain.pem"
assert_eq "$(count_certs "$T/chain.pem")" 1 "certificates in --chain-out (micromdm: the CA alone)"
cert_same "$T/chain.pem" "$CA_PEM" || fail "--chain-out is not the CA certificate"

note "the server issued exactly one certificate"
assert_eq "$(grep -c '^V' "$DEPOT/index.txt")" 1 "certificates in the CA's index"

note "a second key with options: rsa:3072, 3DES and SHA-1 (both advertised)"
KEY3_URI=$(key_uri key3072 "pin-source=file:$PIN_FILE")
expect_exit 0 p11s enroll -u "$URL" -k "$KEY3_URI" --subject "CN=p11scep-3072.example.test" \
	--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" --cert-out "$T/cert3.pem" \
	--key-type rsa:3072 --cipher des3 --digest sha1
openssl verify -CAfile "$CA_PEM" "$T/cert3.pem" >/dev/null 2>&1 || fail "the rsa:3072 cert does not verify"
bits=$(openssl x509 -in "$T/cert3.pem" -noout -text | sed -n 's/.*Public-Key: (\([0-9]*\) bit).*/\1/p')
assert_eq "$bits" 3072 "key size of the --key-type rsa:3072 cert"
KEY3_ID=$(tok_id_of privkey key3072)
assert_ne "$KEY3_ID" "$KEY_ID" "the second key's ID"
tok_sign_verify "$KEY3_ID" "$T/cert3.pem"
assert_eq "$(tok_count privkey)" 2 "private keys after the second enrollment"
assert_eq "$(tok_count cert)" 2 "certificate objects after the second enrollment"
assert_eq "$(tok_count cert "$KEY3_ID")" 1 "certificate objects with the second key's ID"

echo "PASS: enroll_new_key"
