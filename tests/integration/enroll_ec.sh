#!/bin/bash
# EC keys (--key-type ec:p256|ec:p384): the key pair is generated in the
# token (sensitive, never extractable, local), the CSR, the signer cert and
# the pkiMessage are signed with ECDSA by it, and the CertRep's envelope is
# opened by key agreement (ECDH in the token, KARI) or by the challenge
# password (PWRI), whichever the test responder sends. A renewal has no
# challenge: it gets KARI. micromdm's scepserver cannot issue for EC keys:
# p11scep says so in one line and exits 4.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

setup_token

# tok_ec_sign_verify ID CERT: the token's EC key ID signs a fresh digest
# with ECDSA (SoftHSM has no ECDSA-SHA256) and CERT's public key verifies it:
# the cert belongs to that key.
tok_ec_sign_verify() {
	openssl rand 64 | openssl dgst -sha256 -binary >"$T/tbs"
	p11t --sign --mechanism ECDSA --signature-format openssl --id "$1" \
		--input-file "$T/tbs" --output-file "$T/tbs.sig" >/dev/null
	openssl x509 -in "$2" -noout -pubkey >"$T/tbs.pub"
	openssl pkeyutl -verify -pubin -inkey "$T/tbs.pub" -in "$T/tbs" \
		-sigfile "$T/tbs.sig" >/dev/null ||
		fail "an ECDSA signature by token key $1 does not verify with the public key of $2"
}

# tok_ec_pubkey ID OUT.pem: the EC public key object of the pair, as PEM,
# rebuilt from its CKA_EC_PARAMS and CKA_EC_POINT (pkcs11-tool 0.23 cannot
# export P-384 public keys).
tok_ec_pubkey() {
	local fields params point curve
	fields=$(p11t --list-objects --type pubkey | awk -v want="$1" '
		function flush() {
			if (id == want)
				print params, point
			id = ""; params = ""; point = ""
		}
		/^[^ \t]/ { flush() }
		/^[ \t]+EC_POINT:/ { point = $2 }
		/^[ \t]+EC_PARAMS:/ { params = $2 }
		/^[ \t]+ID:/ { id = $2 }
		END { flush() }')
	read -r params point <<<"$fields"
	case $params in
	06082a8648ce3d030107) curve=prime256v1 ;;
	06052b81040022) curve=secp384r1 ;;
	*) fail "public key $1: unexpected EC_PARAMS '$params'" ;;
	esac
	# CKA_EC_POINT is an OCTET STRING (short form here) around the point.
	case $point in
	04??04*) point=${point:4} ;;
	*) fail "public key $1: EC_POINT '$point' is not a DER OCTET STRING" ;;
	esac
	cat >"$T/spki.cnf" <<-EOF
	asn1 = SEQUENCE:spki
	[spki]
	alg = SEQUENCE:alg
	key = FORMAT:HEX,BITSTRING:$point
	[alg]
	type = OID:id-ecPublicKey
	curve = OID:$curve
	EOF
	openssl asn1parse -genconf "$T/spki.cnf" -noout -out "$T/spki.der" >/dev/null &&
		openssl pkey -pubin -inform DER -in "$T/spki.der" -out "$2" ||
		fail "public key object $1 is not a valid $curve point"
}

# check_ec_cert CERT LABEL CURVE: CERT is an EC cert on CURVE for the one
# private key labelled LABEL, which the token made and keeps; the token holds
# CERT beside it. Prints the key's ID.
check_ec_cert() {
	local cert=$1 label=$2 curve=$3 id access a
	openssl verify -CAfile "$CA_PEM" "$cert" >/dev/null 2>&1 ||
		fail "$cert does not verify against the CA"
	openssl x509 -in "$cert" -noout -text >"$T/cert.txt"
	assert_grep "$T/cert.txt" 'Public Key Algorithm: id-ecPublicKey' "$cert is not for an EC key"
	assert_grep "$T/cert.txt" "NIST CURVE: $curve" "$cert is not on $curve"
	id=$(tok_id_of privkey "$label")
	access=$(tok_access_of privkey "$id")
	for a in 'always sensitive' 'never extractable' 'local'; do
		case $access in
		*"$a"*) ;;
		*) fail "key $label ($id) is not '$a': Access: $access" ;;
		esac
	done
	tok_ec_pubkey "$id" "$T/pub-$label.pem"
	pubkey_same "$cert" "$T/pub-$label.pem" || fail "$cert does not carry the public key of $label"
	tok_ec_sign_verify "$id" "$cert"
	assert_eq "$(tok_count cert "$id")" 1 "certificate objects beside $label"
	tok_cert "$id" "$T/tok-$label.pem"
	cert_same "$T/tok-$label.pem" "$cert" || fail "the token's cert beside $label is not $cert"
	printf '%s\n' "$id"
}

# enroll_ec LABEL KEYTYPE CERT [ARGS...]: enrolls the key LABEL, -v.
enroll_ec() {
	local label=$1 type=$2 cert=$3
	shift 3
	expect_exit 0 p11s enroll -u "$URL" -k "$(key_uri "$label" "pin-source=file:$PIN_FILE")" \
		--subject "CN=$label.ec.example.test" --ca-fingerprint "$CA_FP" \
		--challenge-file "$CHALLENGE_FILE" --key-type "$type" --cert-out "$cert" -v "$@"
	assert_grep "$OUT" '^issued:' "no issued: line on stdout"
}

# last_op REGEX: the responder's last PKIOperation line matches REGEX.
last_op() {
	grep 'op=PKIOperation' "$RSP_LOG" | tail -n 1 >"$T/last-op"
	assert_grep "$T/last-op" "$1"
}

# kari-null: the ephemeral key's parameters NULL, as NDES sends them.
for mode in kari kari-null pwri; do
	opened="key agreement"
	[ "$mode" != pwri ] || opened=password
	start_responder --ec-reply "$mode"
	for curve in 256 384; do
		label=ec${curve}$mode
		note "new P-$curve key, the reply by $mode"
		enroll_ec "$label" "ec:p$curve" "$T/$label.pem"
		assert_grep "$ERR" "generated an EC P-$curve key" "no EC P-$curve key generated"
		last_op "type=PKCSReq .*digest=SHA512 .*status=SUCCESS reply=$mode "
		assert_grep "$ERR" "CertRep verified .*key by $opened\)" "the reply was not opened by $opened"
		id=$(check_ec_cert "$T/$label.pem" "$label" "P-$curve")

		note "the P-$curve key is reused, the reply by $mode again"
		enroll_ec "$label" "ec:p$curve" "$T/$label-2.pem"
		assert_no_grep "$ERR" 'generated' "a key was generated although $label exists"
		assert_grep "$ERR" 'reusing the key'
		last_op "status=SUCCESS reply=$mode "
		assert_eq "$(check_ec_cert "$T/$label-2.pem" "$label" "P-$curve")" "$id" "ID of $label"
		assert_ne "$(cert_serial "$T/$label-2.pem")" "$(cert_serial "$T/$label.pem")" \
			"serial of the second cert for $label"
	done
	stop_responder
done

note "an EC key made beforehand by pkcs11-tool (ID 0e0c) is enrolled with --key-type ec:p384 ignored"
start_responder
p11t --keypairgen --key-type EC:prime256v1 --label ectool --id 0e0c >/dev/null
enroll_ec ectool ec:p384 "$T/ectool.pem"
last_op 'reply=kari'
assert_eq "$(check_ec_cert "$T/ectool.pem" ectool P-256)" 0e0c "ID of ectool"

note "renewal of an EC cert: RenewalReq signed by it with ECDSA, the reply by key agreement"
stop_responder
start_responder --ec-reply pwri
enroll_ec ecrenew ec:p256 "$T/ecrenew0.pem"
last_op 'type=PKCSReq .*reply=pwri'
OLD_ID=$(check_ec_cert "$T/ecrenew0.pem" ecrenew P-256)
RENEW_URI=$(key_uri ecrenew "pin-source=file:$PIN_FILE")
expect_exit 0 p11s renew -u "$URL" -k "$RENEW_URI" --ca-fingerprint "$CA_FP" \
	--reuse-key --cert-out "$T/ecrenew1.pem" -v
assert_grep "$ERR" 'RenewalReq built' "renew did not send a RenewalReq"
last_op 'type=RenewalReq .*status=SUCCESS reply=kari'
assert_grep "$ERR" 'CertRep verified .*key by key agreement\)'
assert_eq "$(check_ec_cert "$T/ecrenew1.pem" ecrenew P-256)" "$OLD_ID" "ID after a --reuse-key renewal"

note "renewal with a new P-384 key beside the old one: signed and decrypted by the old key"
sleep 1	# certificate times have one-second resolution: keep "newest" unambiguous
expect_exit 0 p11s renew -u "$URL" -k "$RENEW_URI" --ca-fingerprint "$CA_FP" \
	--key-type ec:p384 --cert-out "$T/ecrenew2.pem" -v
last_op 'type=RenewalReq .*status=SUCCESS reply=kari'
assert_eq "$(tok_count privkey "$OLD_ID")" 1 "the old key stays"
NEW_ID=$(tok_list privkey | awk -F'|' -v l=ecrenew -v old="$OLD_ID" '$2 == l && $1 != old { print $1 }')
[ -n "$NEW_ID" ] || fail "no new ecrenew key in the token"
tok_ec_pubkey "$NEW_ID" "$T/ecrenew-new.pem"
pubkey_same "$T/ecrenew2.pem" "$T/ecrenew-new.pem" || fail "the renewed cert is not for the new key"
openssl x509 -in "$T/ecrenew2.pem" -noout -text | grep -q 'NIST CURVE: P-384' ||
	fail "the new key is not P-384"
tok_ec_sign_verify "$NEW_ID" "$T/ecrenew2.pem"
tok_cert "$NEW_ID" "$T/ecrenew-tok2.pem"
cert_same "$T/ecrenew-tok2.pem" "$T/ecrenew2.pem" || fail "the new cert is not beside the new key"
case $(tok_access_of privkey "$NEW_ID") in
*'never extractable'*'local'*) ;;
*) fail "the new renewal key is not never-extractable and local" ;;
esac

note "renewal without --key-type: the new key is of the current key's type (EC P-384), not RSA"
expect_exit 0 p11s renew -u "$URL" -k "$RENEW_URI" --ca-fingerprint "$CA_FP" \
	--cert-out "$T/ecrenew3.pem" -v
assert_grep "$ERR" 'generated the new EC P-384 key' "the renewal did not keep the key type"
openssl x509 -in "$T/ecrenew3.pem" -noout -text | grep -q 'NIST CURVE: P-384' ||
	fail "the renewal without --key-type did not give a P-384 certificate"
stop_responder

note "micromdm's scepserver cannot issue for an EC key: one line saying so, exit 4"
start_scepserver
expect_error 4 'EC key: badRequest; .*cannot issue certificates for EC keys.*--key-type rsa:2048' \
	p11s enroll -u "$URL" -k "$(key_uri ecmdm "pin-source=file:$PIN_FILE")" \
	--subject "CN=ecmdm.ec.example.test" --ca-fingerprint "$CA_FP" \
	--challenge-file "$CHALLENGE_FILE" --key-type ec:p256 --cert-out "$T/ecmdm.pem"
# It reads the ECDSA-signed request and the CSR, then signs the cert with its
# RSA key under the CSR's ECDSA signature algorithm, fails, answers FAILURE.
assert_grep "$SCEP_LOG" 'failed to sign CSR.*SignatureAlgorithm does not match private key type'
assert_no_file "$T/ecmdm.pem"
assert_eq "$(tok_count cert "$(tok_id_of privkey ecmdm)")" 0 "certificates beside ecmdm"

echo "PASS: enroll_ec"
