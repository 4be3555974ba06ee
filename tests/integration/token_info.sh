#!/bin/bash
# p11scep token-info against SoftHSM2: module and token as they describe
# themselves, the mechanisms p11scep uses, the keys and certificates (the
# URI's key marked), with and without a PIN, as text and as JSON, and the
# errors a user meets with a new token. tpm.sh runs it against a TPM.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_tool jq jq

setup_token
start_scepserver
SUBJECT="CN=p11scep-token-info.example.test,O=p11scep tests"

note "an enrollment leaves mykey and its certificate in the token"
expect_exit 0 p11s enroll -u "$URL" -k "$KEY_URI" --subject "$SUBJECT" \
	--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" --cert-out "$T/cert.pem"
ID=$(tok_id_of privkey mykey)
NOT_AFTER=$(date -u -d "$(openssl x509 -in "$T/cert.pem" -noout -enddate | sed 's/^notAfter=//')" \
	'+%Y-%m-%d %H:%M:%S UTC')
p11t --keypairgen --key-type rsa:3072 --label other --id 0102 >/dev/null
p11t --keypairgen --key-type EC:prime256v1 --label ec-key --id 0a0b >/dev/null

note "with the PIN: header, mechanisms, every object, mykey marked"
expect_exit 0 p11s token-info -k "$KEY_URI"
assert_grep "$OUT" "^module: +$SOFTHSM_MODULE\$"
assert_grep "$OUT" '^library: +Implementation of PKCS11, SoftHSM, version 2\.[0-9]+, Cryptoki 2\.[0-9]+$'
assert_grep "$OUT" "^token: +$TOKEN_LABEL\$"
assert_grep "$OUT" '^manufacturer: +SoftHSM project$'
assert_grep "$OUT" '^model: +SoftHSM v2$'
assert_grep "$OUT" "^serial: +$(softhsm2-util --show-slots | awk '/Serial number:/ && $3 != "" { s = $3 } END { print s }')\$"
assert_grep "$OUT" '^flags: +initialized login-required user-pin-set rng$'
assert_grep "$OUT" '^login: +logged in$'
assert_grep "$OUT" '^  CKM_RSA_PKCS_KEY_PAIR_GEN +yes +512-16384 +generate +new RSA keys$'
assert_grep "$OUT" '^  CKM_RSA_PKCS +yes +512-16384 +sign verify encrypt decrypt +RSA signatures, decrypting replies$'
assert_grep "$OUT" '^  CKM_SHA256_RSA_PKCS +yes '
assert_grep "$OUT" '^  CKM_SHA512_RSA_PKCS +yes '
assert_grep "$OUT" '^  CKM_EC_KEY_PAIR_GEN +yes +[0-9]+-[0-9]+ +generate '
assert_grep "$OUT" '^  CKM_ECDSA +yes +[0-9]+-[0-9]+ +sign verify '
assert_grep "$OUT" '^  CKM_ECDH1_DERIVE +yes +[0-9]+-[0-9]+ +derive '
assert_grep "$OUT" "^  \\* private-key +mykey +$ID +RSA-2048 +sensitive never-extractable local\$"
assert_grep "$OUT" "^  \\* public-key +mykey +$ID +RSA-2048 +local\$"
assert_grep "$OUT" "^  \\* certificate +mykey +$ID +X\\.509 +subject CN=p11scep-token-info\\.example\\.test,O=p11scep tests, not after $NOT_AFTER, token user\$"
assert_grep "$OUT" '^    private-key +other +0102 +RSA-3072 +sensitive never-extractable local$'
assert_grep "$OUT" '^    private-key +ec-key +0a0b +EC P-256 +sensitive never-extractable local$'
assert_grep "$OUT" '^    public-key +ec-key +0a0b +EC P-256 +local$'
assert_eq "$(grep -c '^  \*' "$OUT")" 3 "objects marked as the URI's"
assert_eq "$(grep -Ec '^  [ *] (private-key|public-key|certificate) ' "$OUT")" 7 "objects listed"
assert_grep "$OUT" "^key: the key URI selects 'mykey' \\(marked \\*\\)\$"

note "--json: the same, for programs"
expect_exit 0 p11s token-info -k "$KEY_URI" --json
jq -e . "$OUT" >/dev/null || fail "token-info --json is not JSON"
assert_eq "$(jq -r '.module.path' "$OUT")" "$SOFTHSM_MODULE" "--json module.path"
assert_eq "$(jq -r '.token.label + " " + (.token.logged_in | tostring)' "$OUT")" "$TOKEN_LABEL true" "--json token"
assert_eq "$(jq -r '.token.flags | join(",")' "$OUT")" "initialized,login-required,user-pin-set,rng" "--json token.flags"
assert_eq "$(jq -r '.mechanisms[] | select(.mechanism == "CKM_RSA_PKCS") | "\(.offered) \(.usable) \(.min_size) \(.max_size)"' "$OUT")" \
	"true true 512 16384" "--json CKM_RSA_PKCS"
assert_eq "$(jq -r '[.objects[] | select(.selected) | .class] | join(",")' "$OUT")" \
	"private-key,public-key,certificate" "--json selected objects"
assert_eq "$(jq -r '.objects[] | select(.class == "private-key" and .label == "mykey") | "\(.id) \(.key_type) \(.bits) \(.sensitive) \(.extractable) \(.never_extractable)"' "$OUT")" \
	"$ID RSA 2048 true false true" "--json mykey"
assert_eq "$(jq -r '.objects[] | select(.class == "certificate") | "\(.not_after)|\(.serial)"' "$OUT")" \
	"$NOT_AFTER|$(cert_serial "$T/cert.pem")" "--json certificate"
assert_eq "$(jq -r '.objects[] | select(.class == "private-key" and .label == "ec-key") | "\(.key_type) \(.bits)"' "$OUT")" \
	"EC P-256 256" "--json ec-key"

note "another URI marks another key; a URI without a key or with an unknown one marks none"
expect_exit 0 p11s token-info -k "$(key_uri other "pin-source=file:$PIN_FILE")"
assert_grep "$OUT" '^  \* private-key +other +0102 '
assert_grep "$OUT" '^  \* public-key +other +0102 '
assert_eq "$(grep -c '^  \*' "$OUT")" 2 "objects marked for object=other"
expect_exit 0 p11s token-info -k "pkcs11:token=$TOKEN_LABEL?module-path=$SOFTHSM_MODULE&pin-source=file:$PIN_FILE"
assert_grep "$OUT" '^key: the key URI names no key \(object=, id=\)$'
assert_no_grep "$OUT" '^  \*'
expect_exit 0 p11s token-info -k "$(key_uri nosuchkey "pin-source=file:$PIN_FILE")"
assert_grep "$OUT" '^key: no private key matches the key URI$'
assert_grep "$OUT" '^    private-key +mykey '

note "two keys the URI cannot tell apart: token-info says why none is marked"
p11t --keypairgen --key-type rsa:2048 --label twin --id 01 >/dev/null
p11t --keypairgen --key-type rsa:2048 --label twin --id 02 >/dev/null
expect_exit 0 p11s token-info -k "$(key_uri twin "pin-source=file:$PIN_FILE")"
assert_grep "$OUT" "^key: 2 keys in token '$TOKEN_LABEL' match the key URI and none has a certificate: add id= to it\$"
assert_no_grep "$OUT" '^  \*'

note "without a PIN: public objects only, and it says so"
expect_exit 0 p11s token-info -k "$(key_uri mykey)"
assert_grep "$OUT" '^login: +not logged in \(no PIN given\): public objects only$'
assert_no_grep "$OUT" 'private-key'
assert_grep "$OUT" "^    public-key +mykey +$ID +RSA-2048 +local\$"
assert_grep "$OUT" "^    certificate +mykey +$ID +X\\.509 "
assert_grep "$OUT" '^key: not logged in: private keys are hidden, none is marked$'
assert_grep "$OUT" '^  CKM_RSA_PKCS_KEY_PAIR_GEN +yes '
[ ! -s "$ERR" ] || { show_file stderr "$ERR"; fail "token-info without a PIN wrote to stderr"; }

note "the PIN from P11SCEP_PIN"
P11SCEP_PIN=$TOKEN_PIN expect_exit 0 p11s token-info -k "$(key_uri mykey)"
assert_grep "$OUT" '^login: +logged in$'
assert_grep "$OUT" "^  \\* private-key +mykey +$ID "

note "a wrong PIN, an unreadable pin-source, no such token, no such module: one error line, exit 6 / 2"
(umask 077 && printf '0000\n' >"$T/wrong-pin")
expect_error 6 "token '$TOKEN_LABEL' rejected the PIN" \
	p11s token-info -k "$(key_uri mykey "pin-source=file:$T/wrong-pin")"
P11SCEP_PIN=0000 expect_error 6 "token '$TOKEN_LABEL' rejected the PIN" \
	p11s token-info -k "$(key_uri mykey)"
expect_error 2 "cannot open challenge/PIN file $T/no-such-pin-file" \
	p11s token-info -k "$(key_uri mykey "pin-source=file:$T/no-such-pin-file")"
expect_error 6 "no token with token='nosuch' in module $SOFTHSM_MODULE \\(tokens seen: '$TOKEN_LABEL'\\)" \
	p11s token-info -k "pkcs11:token=nosuch?module-path=$SOFTHSM_MODULE"
expect_error 6 "cannot load PKCS#11 module $T/no-such-module\\.so" \
	p11s token-info -k "pkcs11:token=$TOKEN_LABEL?module-path=$T/no-such-module.so"

note "--module overrides the URI's module-path"
expect_exit 0 p11s token-info -k "pkcs11:token=$TOKEN_LABEL;object=mykey?module-path=$T/no-such-module.so&pin-source=file:$PIN_FILE" \
	--module "$SOFTHSM_MODULE"
assert_grep "$OUT" "^  \\* private-key +mykey +$ID "

note "through p11-kit's proxy (no module-path): the same token and keys"
expect_exit 0 p11s token-info -k "pkcs11:token=$TOKEN_LABEL;object=mykey?pin-source=file:$PIN_FILE"
assert_grep "$OUT" '^module: +.*p11-kit-proxy\.so$'
assert_grep "$OUT" "^token: +$TOKEN_LABEL\$"
assert_grep "$OUT" "^  \\* private-key +mykey +$ID +RSA-2048 "

note "a label with control characters is shown with '?'"
p11t --keypairgen --key-type rsa:2048 --label "$(printf 'bad\033[2Jlabel')" --id 0c0d >/dev/null
expect_exit 0 p11s token-info -k "$KEY_URI"
assert_grep "$OUT" '^    private-key +bad\?\[2Jlabel +0c0d '
assert_no_string "$OUT" "$(printf '\033')" "an escape character from a label reached stdout"

note "usage: -k is required, and token-info takes no server options"
expect_error 2 'token-info needs --key URI' p11s token-info
expect_error 2 'token-info does not take --url' p11s token-info -k "$KEY_URI" -u "$URL"

echo "PASS: token_info"
