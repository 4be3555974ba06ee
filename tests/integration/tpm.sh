#!/bin/bash
# Device identity in a TPM 2.0: swtpm behind tpm2-pkcs11, against micromdm's
# scepserver. The key is generated inside the TPM, the CSR and pkiMessage are
# signed by it, the CertRep is decrypted by it, the cert is stored beside it;
# then renewal with a new TPM key, enrollment reusing it, renew --reuse-key,
# and token-info. Each step must leave the TPM empty (no objects loaded).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tpm_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tpm_lib.sh"

# Under ASan: full stacks through libcrypto (built without frame pointers),
# so that the suppression of tpm2-pkcs11's ECDSA leak (tests/lsan.supp,
# leak:ECDSA_sign) sees the signing call. Other programs ignore it.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"

t0=$(now_ms)
start_tpm
t1=$(now_ms)
tpm_token
note "TPM setup: swtpm up in $((t1 - t0)) ms, token created in $(($(now_ms) - t1)) ms"
use_tpm_token
start_scepserver

SUBJECT="CN=p11scep-tpm.example.test"
KEY_URI=$(key_uri dev "pin-source=file:$PIN_FILE")

enroll() {
	local certfile=$1
	shift
	expect_exit 0 p11s enroll -u "$URL" -k "$KEY_URI" --subject "$SUBJECT" \
		--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" --cert-out "$certfile" "$@"
	openssl verify -CAfile "$CA_PEM" "$certfile" >/dev/null 2>&1 ||
		fail "$certfile does not verify against the CA"
}

renew() {
	local certfile=$1
	shift
	expect_exit 0 p11s renew -u "$URL" -k "$KEY_URI" --ca-fingerprint "$CA_FP" \
		--challenge-file "$CHALLENGE_FILE" --cert-out "$certfile" "$@"
	openssl verify -CAfile "$CA_PEM" "$certfile" >/dev/null 2>&1 ||
		fail "$certfile does not verify against the CA"
}

# check_key ID CERT: CERT is for TPM key ID, the key is sensitive and never
# left the TPM, and the token's certificate object with that ID is CERT.
check_key() {
	local id=$1 cert=$2 access
	tok_pubkey "$id" "$T/pub-$id.pem"
	pubkey_same "$cert" "$T/pub-$id.pem" || fail "$cert does not carry the public key of TPM key $id"
	access=$(tok_access_of privkey "$id")
	for a in sensitive 'always sensitive' 'never extractable' local; do
		case ", $access," in
		*", $a,"*) ;;
		*) fail "TPM key $id is not '$a' (Access: $access)" ;;
		esac
	done
	assert_eq "$(tok_count cert "$id")" 1 "certificate objects with the ID of key $id"
	tok_cert "$id" "$T/tok-$id.pem"
	cert_same "$T/tok-$id.pem" "$cert" || fail "the token's cert with ID $id is not $cert"
	tok_sign_verify "$id" "$cert"
	tpm_assert_clean "checking key $id with pkcs11-tool"
}

note "token-info before any key: the TPM's mechanisms, as the module reports them"
expect_exit 0 p11s token-info -k "$KEY_URI"
assert_grep "$OUT" "^module: +$TPM_MODULE\$"
assert_grep "$OUT" '^library: +TPM2\.0 Cryptoki, '
assert_grep "$OUT" "^token: +$TPM_LABEL\$"
assert_grep "$OUT" '^flags: .*initialized login-required user-pin-set rng'
assert_grep "$OUT" '^login: +logged in$'
assert_grep "$OUT" '^  CKM_RSA_PKCS_KEY_PAIR_GEN +yes +1024-3072 +hw generate +new RSA keys$'
assert_grep "$OUT" '^  CKM_RSA_PKCS +yes +1024-3072 +hw sign verify encrypt decrypt '
assert_grep "$OUT" '^  CKM_ECDSA +yes '
assert_grep "$OUT" '^  CKM_ECDH1_DERIVE +no '
assert_grep "$OUT" '^  \(none\)$'
assert_grep "$OUT" '^key: no private key matches the key URI$'
tpm_assert_clean "token-info"

note "enroll: an RSA-2048 key generated inside the TPM"
t0=$(now_ms)
enroll "$T/cert1.pem"
note "enrollment with key generation in the TPM: $(($(now_ms) - t0)) ms"
tpm_assert_clean "enroll"
assert_eq "$(tok_count privkey)" 1 "private keys after the first enrollment"
KEY1=$(tok_id_of privkey dev)
check_key "$KEY1" "$T/cert1.pem"
assert_eq "$(openssl x509 -in "$T/cert1.pem" -noout -subject)" "subject=CN = p11scep-tpm.example.test" \
	"subject of the TPM key's certificate"
expect_exit 0 p11s show-cert -k "$KEY_URI"
assert_grep "$OUT" "^serial: $(cert_serial "$T/cert1.pem")\$" "show-cert does not show the stored cert"

note "token-info marks the URI's key, its public key and its certificate"
expect_exit 0 p11s token-info -k "$KEY_URI"
assert_grep "$OUT" "^  \\* private-key +dev +$KEY1 +RSA-2048 +sensitive never-extractable local\$"
assert_grep "$OUT" "^  \\* public-key +dev +$KEY1 +RSA-2048 "
assert_grep "$OUT" "^  \\* certificate +dev +$KEY1 +X\\.509 +subject CN=p11scep-tpm\\.example\\.test, not after "
assert_grep "$OUT" "^key: the key URI selects 'dev' \\(marked \\*\\)\$"
expect_exit 0 p11s token-info -k "$KEY_URI" --json
[ "$(jq -r '[.objects[] | select(.selected)] | length' "$OUT")" = 3 ] || fail "--json: not 3 selected objects"
assert_eq "$(jq -r '.objects[] | select(.class == "certificate") | .category' "$OUT")" "token user" \
	"--json: category of the certificate beside the TPM key"
[ "$(jq -r '.objects[] | select(.class == "private-key") | .never_extractable' "$OUT")" = true ] ||
	fail "--json: the TPM key is not never_extractable"
[ "$(jq -r '.mechanisms[] | select(.mechanism == "CKM_RSA_PKCS_KEY_PAIR_GEN") | .max_size' "$OUT")" = 3072 ] ||
	fail "--json: RSA key generation max_size is not 3072"
tpm_assert_clean "token-info"

note "token-info without a PIN: public objects only, and it says so"
expect_exit 0 p11s token-info -k "$(key_uri dev)"
assert_grep "$OUT" '^login: +not logged in \(no PIN given\): public objects only$'
assert_no_grep "$OUT" 'private-key'
assert_grep "$OUT" "^    public-key +dev +$KEY1 "
assert_grep "$OUT" '^key: not logged in: private keys are hidden, none is marked$'

note "renew with a new key: generated in the TPM beside the old one, same label"
sleep 1	# certificate times have one-second resolution: keep "newest" unambiguous
t0=$(now_ms)
renew "$T/cert2.pem"
note "renewal with a new TPM key: $(($(now_ms) - t0)) ms"
tpm_assert_clean "renew"
assert_eq "$(tok_count privkey)" 2 "private keys after a new-key renewal"
KEY2=$(tok_list privkey | awk -F'|' -v old="$KEY1" '$1 != old { print $1 }')
[ -n "$KEY2" ] || fail "no new key in the TPM token"
assert_eq "$(tok_list privkey | awk -F'|' -v id="$KEY2" '$1 == id { print $2 }')" dev "label of the new key"
check_key "$KEY2" "$T/cert2.pem"
tok_cert "$KEY1" "$T/old.pem"
cert_same "$T/old.pem" "$T/cert1.pem" || fail "the old key lost its certificate"

note "enroll again with the same URI: the renewed key is reused, its cert replaced"
enroll "$T/cert3.pem"
tpm_assert_clean "enroll with the existing key"
assert_eq "$(tok_count privkey)" 2 "private keys after enrolling an existing key"
check_key "$KEY2" "$T/cert3.pem"

note "renew --reuse-key: a new cert for the same TPM key"
renew "$T/cert4.pem" --reuse-key
tpm_assert_clean "renew --reuse-key"
assert_eq "$(tok_count privkey)" 2 "private keys after renew --reuse-key"
check_key "$KEY2" "$T/cert4.pem"
assert_ne "$(cert_serial "$T/cert4.pem")" "$(cert_serial "$T/cert3.pem")" "serial after renew --reuse-key"

note "RSA-4096: refused before anything is sent, from what the module reports"
issued=$(grep -c '^[VR]' "$DEPOT/index.txt")
expect_error 6 "token 'p11scep-tpm' generates RSA keys of 1024 to 3072 bits, not 4096: use --key-type rsa:3072" \
	p11s enroll -u "$URL" -k "$(key_uri big "pin-source=file:$PIN_FILE")" --subject "$SUBJECT" \
	--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" --key-type rsa:4096
assert_eq "$(tok_count privkey)" 2 "private keys after the refused RSA-4096 enrollment"
assert_eq "$(grep -c '^[VR]' "$DEPOT/index.txt")" "$issued" "certificates issued for the refused request"
tpm_assert_clean "the refused RSA-4096 enrollment"

note "a wrong PIN is refused by the TPM"
(umask 077 && printf '9999\n' >"$T/wrong-pin")
expect_error 6 "token 'p11scep-tpm' rejected the PIN" \
	p11s token-info -k "$(key_uri dev "pin-source=file:$T/wrong-pin")"
tpm_assert_clean "a wrong PIN"

note "an EC P-256 key in the TPM: ECDSA in the TPM; the reply by the challenge password (no ECDH in a TPM)"
MM_URL=$URL MM_FP=$CA_FP MM_CHAL=$CHALLENGE_FILE
start_responder --ec-reply pwri
issued=$(grep -c 'status=SUCCESS' "$RSP_LOG" || true)
expect_exit 0 p11s enroll -u "$URL" -k "$(key_uri ecdev "pin-source=file:$PIN_FILE")" \
	--subject "CN=ec.p11scep-tpm.example.test" --ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" \
	--key-type ec:p256 --cert-out "$T/ec.pem" -v
assert_grep "$ERR" 'generated an EC P-256 key in the token' "no EC key generated in the TPM"
assert_grep "$ERR" 'key by password' "the reply was not opened with the challenge password"
assert_grep "$RSP_LOG" 'reply=pwri.*status=SUCCESS|status=SUCCESS.*reply=pwri' "the responder did not issue with a PWRI reply"
openssl x509 -in "$T/ec.pem" -noout -text | grep -q 'id-ecPublicKey' || fail "the issued cert is not for an EC key"
ECID=$(tok_id_of privkey ecdev)
p11t --read-object --type pubkey --id "$ECID" -o "$T/ecpub.der" >/dev/null
openssl pkey -pubin -inform DER -in "$T/ecpub.der" -out "$T/ecpub.pem" ||
	fail "cannot read the TPM's EC public key"
pubkey_same "$T/ec.pem" "$T/ecpub.pem" || fail "the EC cert is not for the TPM's EC key"
assert_eq "$(tok_count cert "$ECID")" 1 "certs stored beside the TPM's EC key"
tpm_assert_clean "EC enrollment"
stop_responder
URL=$MM_URL CA_FP=$MM_FP CHALLENGE_FILE=$MM_CHAL

note "p11scep run over three TPM profiles, one at a time: one module load, a login per profile"
CONF=$T/tpm-run.conf
{
	printf '[defaults]\nurl = %s\nca-fingerprint = %s\nchallenge-file = %s\nstate-dir = %s\n' \
		"$URL" "$CA_FP" "$CHALLENGE_FILE" "$T/run-state"
	for p in svc1 svc2 svc3; do
		printf '\n[profile %s]\nkey = %s\nsubject = CN=%s.example.test\n' \
			"$p" "$(key_uri "$p" "pin-source=file:$PIN_FILE")" "$p"
	done
} >"$CONF"
chmod 600 "$CONF"
expect_exit 0 p11s run -c "$CONF" --jobs 1 -v
assert_eq "$(grep -c 'loaded PKCS#11 module' "$ERR")" 1 "module loads in one run"
assert_eq "$(grep -c 'logged in to token' "$ERR")" 3 "logins in one run (the TPM holds two keys a login)"
assert_eq "$(grep -c ': enroll: certificate issued and stored' "$ERR")" 3 "TPM profiles enrolled"
tpm_assert_clean "p11scep run"

note "the same, three at a time: a profile the TPM cannot serve beside the others goes again alone"
rm -rf "$T/run-state"
expect_exit 0 p11s run -c "$CONF" --jobs 3 -v
assert_eq "$(grep -c ': enroll: certificate issued and stored' "$ERR")" 3 "TPM profiles enrolled, 3 at a time"
assert_eq "$(grep -c 'loaded PKCS#11 module' "$ERR")" 1 "module loads in one run, 3 at a time"
tpm_assert_clean "p11scep run --jobs 3"
echo "PASS: tpm"
