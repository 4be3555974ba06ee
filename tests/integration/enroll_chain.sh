#!/bin/bash
# A two-level PKI (scep-responder --mode chain): root CA -> issuing CA. The
# issuing CA decrypts requests, signs replies and issues; GetCACert sends
# both. The root or the issuing CA may be pinned; a foreign pin is refused.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

setup_token
start_responder --mode chain
ROOT=$CA_PEM
ISSUING=$RSP_DIR/issuing.pem
assert_file "$ISSUING"
ROOT_FP=$CA_FP
ISSUING_FP=$(cert_fp "$ISSUING")
assert_ne "$ROOT_FP" "$ISSUING_FP" "root and issuing CA fingerprints"

# enroll_chain NAME FP: enrolls key NAME pinning FP and checks cert and chain.
enroll_chain() {
	local name=$1 fp=$2 uri id
	uri=$(key_uri "$name" "pin-source=file:$PIN_FILE")
	expect_exit 0 p11s enroll -u "$URL" -k "$uri" --subject "CN=$name.example.test" \
		--ca-fingerprint "$fp" --challenge-file "$CHALLENGE_FILE" \
		--cert-out "$T/$name.pem" --chain-out "$T/$name-chain.pem"
	assert_file "$T/$name.pem"
	assert_eq "$(count_certs "$T/$name.pem")" 1 "$name: certificates in --cert-out"
	openssl verify -CAfile "$ROOT" -untrusted "$ISSUING" "$T/$name.pem" >"$T/verify.out" 2>&1 ||
		{ show_file "openssl verify" "$T/verify.out"; fail "$name: cert does not verify up to the root"; }
	# Issued by the issuing CA, not by the root.
	if openssl verify -CAfile "$ROOT" "$T/$name.pem" >/dev/null 2>&1; then
		fail "$name: cert verifies against the root alone: it was not issued by the issuing CA"
	fi
	id=$(tok_id_of privkey "$name")
	tok_pubkey "$id" "$T/$name-pub.pem"
	pubkey_same "$T/$name.pem" "$T/$name-pub.pem" || fail "$name: cert is not for the token key"
	assert_eq "$(tok_count cert "$id")" 1 "$name: certificate objects with the key's ID"
}

# chain_is_issuing_then_root FILE: issuing CA first, then the root.
chain_is_issuing_then_root() {
	local f=$1
	assert_eq "$(count_certs "$f")" 2 "certificates in --chain-out ($f)"
	awk '/-----BEGIN CERTIFICATE-----/ { n++ } { print > (FILENAME "." n) }' "$f"
	cert_same "$f.1" "$ISSUING" || fail "first cert of --chain-out is not the issuing CA"
	cert_same "$f.2" "$ROOT" || fail "second cert of --chain-out is not the root"
}

note "getca shows the issuing CA and the root, both as CAs"
expect_exit 0 p11s getca -u "$URL" --ca-fingerprint "$ROOT_FP"
assert_eq "$(grep -c '^role: ca$' "$OUT")" 2 "certs getca calls ca"
assert_grep "$OUT" "^sha256: $ROOT_FP\$" "getca does not show the root"
assert_grep "$OUT" "^sha256: $ISSUING_FP\$" "getca does not show the issuing CA"

note "root pinned: enroll succeeds, the chain is issuing CA then root"
enroll_chain chain1 "$ROOT_FP"
chain_is_issuing_then_root "$T/chain1-chain.pem"
assert_eq "$(rsp_count '^op=PKIOperation .*type=PKCSReq .*status=SUCCESS')" 1 "PKCSReq SUCCESS lines"
assert_eq "$(rsp_count 'reason=')" 0 "refusals in the responder log"

note "issuing CA pinned: enroll succeeds too"
enroll_chain chain2 "$ISSUING_FP"
assert_file "$T/chain2-chain.pem"
# Whatever else it holds, the chain starts at the issuing CA.
awk '/-----BEGIN CERTIFICATE-----/ { n++ } n == 1 { print }' "$T/chain2-chain.pem" >"$T/chain2-first.pem"
cert_same "$T/chain2-first.pem" "$ISSUING" || fail "--chain-out does not start with the issuing CA"
assert_eq "$(rsp_count '^op=PKIOperation .*type=PKCSReq .*status=SUCCESS')" 2 "PKCSReq SUCCESS lines"

note "a foreign fingerprint: untrusted, exit 7, nothing sent, nothing written"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/foreign.key" -subj "/CN=foreign CA" \
	-days 1 -out "$T/foreign.pem" 2>/dev/null
expect_error 7 '' p11s enroll -u "$URL" -k "$(key_uri chain3 "pin-source=file:$PIN_FILE")" \
	--subject "CN=chain3.example.test" --ca-fingerprint "$(cert_fp "$T/foreign.pem")" \
	--challenge-file "$CHALLENGE_FILE" --cert-out "$T/chain3.pem" --chain-out "$T/chain3-chain.pem"
assert_no_file "$T/chain3.pem"
assert_no_file "$T/chain3-chain.pem"
assert_eq "$(rsp_count 'type=PKCSReq')" 2 "PKCSReqs after the foreign pin (none more)"
assert_eq "$(tok_count cert)" 2 "certificate objects in the token"

echo "PASS: enroll_chain"
