#!/bin/bash
# NDES-like server (our scep-responder --mode ndes): a CA plus two RA certs,
# one for key encipherment (requests must be encrypted to it) and one for
# digital signature (it signs every reply). p11scep must tell them apart by
# key usage whatever their position, and handle NDES's legacy caps.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

setup_token

# getca_fp ROLE: the sha256 line of the one block with that role in $OUT.
getca_fp() {
	awk -v r="$1" '/^role: / { cur = $2 } /^sha256: / && cur == r { print $2; n++ }
		END { if (n != 1) exit 1 }' "$OUT" || fail "getca output has no single '$1' block"
}

# getca_roles: the roles in the order getca printed them, space separated.
getca_roles() {
	sed -n 's/^role: //p' "$OUT" | tr '\n' ' ' | sed 's/ $//'
}

# check_getca ORDER: roles printed in the server's order, each one the right cert.
check_getca() {
	expect_exit 0 p11s getca -u "$URL" --ca-fingerprint "$CA_FP"
	assert_eq "$(getca_roles)" "$1" "roles shown by getca, in the server's order"
	assert_eq "$(getca_fp ca)" "$CA_FP" "sha256 of the cert getca calls ca"
	assert_eq "$(getca_fp ra-enc)" "$(cert_fp "$RSP_DIR/ra-enc.pem")" \
		"sha256 of the cert getca calls ra-enc"
	assert_eq "$(getca_fp ra-sig)" "$(cert_fp "$RSP_DIR/ra-sig.pem")" \
		"sha256 of the cert getca calls ra-sig"
}

# enroll_ok NAME [p11scep args]: enroll key NAME; the cert is checked all
# the way to the token.
enroll_ok() {
	local name=$1 uri id
	shift
	uri=$(key_uri "$name" "pin-source=file:$PIN_FILE")
	expect_exit 0 p11s enroll -u "$URL" -k "$uri" --subject "CN=$name.example.test" \
		--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" \
		--cert-out "$T/$name.pem" --chain-out "$T/$name-chain.pem" "$@"
	assert_file "$T/$name.pem"
	openssl verify -CAfile "$CA_PEM" "$T/$name.pem" >"$T/verify.out" 2>&1 ||
		{ show_file "openssl verify" "$T/verify.out"; fail "$name: cert does not verify against ca.pem"; }
	id=$(tok_id_of privkey "$name")
	tok_pubkey "$id" "$T/$name-pub.pem"
	pubkey_same "$T/$name.pem" "$T/$name-pub.pem" || fail "$name: cert is not for the token key"
	assert_eq "$(tok_count cert "$id")" 1 "$name: certificate objects with the key's ID"
	tok_cert "$id" "$T/$name-tok.pem"
	cert_same "$T/$name-tok.pem" "$T/$name.pem" || fail "$name: token cert is not --cert-out"
	# The chain is the CA alone: RA certs are no part of the chain.
	assert_eq "$(count_certs "$T/$name-chain.pem")" 1 "$name: certificates in --chain-out"
	cert_same "$T/$name-chain.pem" "$CA_PEM" || fail "$name: --chain-out is not the CA"
}

note "ndes: getca shows ra-sig, ca, ra-enc with the right roles"
start_responder --mode ndes
check_getca "ra-sig ca ra-enc"

note "ndes: getca --out-dir writes one file per role"
mkdir "$T/out"
expect_exit 0 p11s getca -u "$URL" --ca-fingerprint "$CA_FP" --out-dir "$T/out"
cert_same "$T/out/ca.pem" "$CA_PEM" || fail "out-dir/ca.pem is not the CA"
cert_same "$T/out/ra-enc.pem" "$RSP_DIR/ra-enc.pem" || fail "out-dir/ra-enc.pem is not the RA enc cert"
cert_same "$T/out/ra-sig.pem" "$RSP_DIR/ra-sig.pem" || fail "out-dir/ra-sig.pem is not the RA sig cert"

note "ndes: enroll (encrypted to ra-enc, reply signed by ra-sig)"
enroll_ok ndes1
# The responder refuses anything not encrypted to ra-enc; a SUCCESS proves it.
assert_eq "$(rsp_count '^op=PKIOperation .*type=PKCSReq .*status=SUCCESS')" 1 "PKCSReq SUCCESS lines"
assert_eq "$(rsp_count 'reason=')" 0 "refusals in the responder log"
assert_grep "$RSP_LOG" '^op=PKIOperation method=POST .*cipher=AES-(128|256)-CBC' \
	"the request was not POSTed with AES"

note "ndes: pinning an RA certificate instead of the CA is refused (exit 7)"
expect_error 7 '' p11s enroll -u "$URL" -k "$(key_uri ndes-ra "pin-source=file:$PIN_FILE")" \
	--subject "CN=ndes-ra.example.test" --ca-fingerprint "$(cert_fp "$RSP_DIR/ra-sig.pem")" \
	--challenge-file "$CHALLENGE_FILE" --cert-out "$T/ndes-ra.pem"
assert_no_file "$T/ndes-ra.pem"
assert_eq "$(rsp_count 'type=PKCSReq')" 1 "PKCSReqs after the refused pin (only the first)"
stop_responder

note "ndes --order enc-first: position does not matter"
start_responder --mode ndes --order enc-first
check_getca "ra-enc ra-sig ca"
enroll_ok ndes2
assert_eq "$(rsp_count '^op=PKIOperation .*type=PKCSReq .*status=SUCCESS')" 1 "PKCSReq SUCCESS lines"
assert_eq "$(rsp_count 'reason=')" 0 "refusals in the responder log"
stop_responder

note "ndes with legacy caps (DES3 SHA-1, CRLF, GET only): 3DES, SHA-1 and GET are used"
start_responder --mode ndes --caps "DES3 SHA-1" --crlf --get-only
enroll_ok ndes3
assert_grep "$RSP_LOG" '^op=PKIOperation method=GET type=PKCSReq .*digest=SHA1 cipher=DES-EDE3-CBC .*status=SUCCESS' \
	"the request was not a GET with SHA-1 and 3DES"
assert_eq "$(rsp_count 'method=POST')" 0 "POSTs to a GET-only server"
assert_eq "$(rsp_count 'reason=')" 0 "refusals in the responder log"

assert_eq "$(tok_count privkey)" 3 "private keys in the token (ndes1, ndes2, ndes3)"
assert_eq "$(tok_count cert)" 3 "certificate objects in the token"

echo "PASS: enroll_ndes"
