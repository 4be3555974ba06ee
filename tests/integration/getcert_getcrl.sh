#!/bin/bash
# GetCert, GetCRL and GetNextCACert against scep-responder: signed and
# encrypted exchanges with the key's certificate, replies decrypted in the
# token and checked against the pinned CA.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

setup_token

for mode in ca ndes chain; do
	note "mode $mode: enroll, then GetCert by serial"
	start_responder --mode "$mode" --next-ca
	uri=$(key_uri "k$mode" "pin-source=file:$PIN_FILE")
	expect_exit 0 p11s enroll -u "$URL" -k "$uri" --subject "CN=$mode.example.test" \
		--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" --cert-out "$T/$mode.pem"
	serial=$(cert_serial "$T/$mode.pem")
	expect_exit 0 p11s getcert -u "$URL" -k "$uri" --ca-fingerprint "$CA_FP" \
		--serial "$serial" --cert-out "$T/$mode-got.pem"
	cert_same "$T/$mode-got.pem" "$T/$mode.pem" || fail "$mode: GetCert returned another cert"
	assert_grep "$OUT" "^serial: $serial\$" "$mode: getcert does not print the serial"
	assert_eq "$(rsp_count 'type=GetCert .*status=SUCCESS')" 1 "$mode: GetCert answered"

	note "mode $mode: GetCert for an unknown serial is rejected (badCertId)"
	expect_exit 4 p11s getcert -u "$URL" -k "$uri" --ca-fingerprint "$CA_FP" --serial 7FFF0001
	assert_grep "$ERR" "badCertId" "$mode: unknown serial not reported as badCertId"

	note "mode $mode: GetCRL lists a revoked serial, signed by the issuing CA"
	echo 7FFF0002 >"$RSP_DIR/revoked"
	expect_exit 0 p11s getcrl -u "$URL" -k "$uri" --ca-fingerprint "$CA_FP" \
		--crl-out "$T/$mode.crl"
	assert_grep "$OUT" '^revoked: 1$' "$mode: getcrl revoked count"
	issuer=$CA_PEM
	[ "$mode" != chain ] || issuer=$RSP_DIR/issuing.pem
	openssl crl -in "$T/$mode.crl" -noout -CAfile "$issuer" 2>&1 | grep -q 'verify OK' ||
		fail "$mode: the CRL written does not verify with its CA"
	openssl crl -in "$T/$mode.crl" -noout -text | grep -q '7FFF0002' ||
		fail "$mode: the CRL does not list the revoked serial"

	note "mode $mode: GetNextCACert, signed by the current CA"
	mkdir -p "$T/$mode-next"
	expect_exit 0 p11s getnextca -u "$URL" --ca-fingerprint "$CA_FP" --out-dir "$T/$mode-next"
	assert_grep "$OUT" "^sha256: $(cert_fp "$RSP_DIR/next-ca.pem")\$" \
		"$mode: getnextca does not show the next CA"
	found=
	for f in "$T/$mode-next"/next-*.pem; do
		cert_same "$f" "$RSP_DIR/next-ca.pem" && found=1
	done
	[ -n "$found" ] || fail "$mode: the next CA cert was not written to --out-dir"
	stop_responder
done

note "GetNextCACert from a server without a next CA: HTTP error, exit 5"
start_responder
expect_exit 5 p11s getnextca -u "$URL" --ca-fingerprint "$CA_FP"
echo "PASS: getcert_getcrl"
