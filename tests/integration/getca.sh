#!/bin/bash
# p11scep getca: what it shows, what it writes, and the CA fingerprint pin.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_scepserver

note "getca shows the CA certificate"
expect_exit 0 p11s getca -u "$URL"
assert_grep "$OUT" '^role: ca$'
assert_eq "$(grep -c '^sha256: ' "$OUT")" 1 "number of certificate blocks (micromdm sends the CA alone)"
assert_eq "$(sed -n 's/^sha256: //p' "$OUT")" "$CA_FP" "sha256 fingerprint shown by getca"
for field in subject issuer not-before not-after; do
	assert_grep "$OUT" "^$field: ." "getca output lacks a '$field:' line"
done
# micromdm's CA: C=US, O=scep-ca, OU=SCEP CA, self-signed.
assert_grep "$OUT" '^subject: .*scep-ca' "subject does not name the CA"
assert_grep "$OUT" '^issuer: .*scep-ca' "issuer does not name the CA"
assert_grep "$OUT" "^not-after: .*$(openssl x509 -in "$CA_PEM" -noout -enddate | grep -Eo '20[0-9]{2}')" \
	"not-after does not show the CA's expiry year"

note "--out-dir writes ca.pem, the same certificate the server holds"
mkdir "$T/out"
expect_exit 0 p11s getca -u "$URL" --out-dir "$T/out"
assert_file "$T/out/ca.pem"
assert_grep "$T/out/ca.pem" '^-----BEGIN CERTIFICATE-----$' "ca.pem is not PEM"
cert_same "$T/out/ca.pem" "$CA_PEM" || fail "out-dir/ca.pem is not the server's CA certificate"
for ra in ra-enc.pem ra-sig.pem ra.pem; do
	assert_no_file "$T/out/$ra" "micromdm has no RA, yet $ra was written"
done

note "--ca-fingerprint with the right value, in several spellings"
expect_exit 0 p11s getca -u "$URL" --ca-fingerprint "$CA_FP"
assert_grep "$OUT" '^role: ca$'
expect_exit 0 p11s getca -u "$URL" --ca-fingerprint "$(printf '%s' "$CA_FP" | tr -d :)"
expect_exit 0 p11s getca -u "$URL" --ca-fingerprint "$(printf '%s' "$CA_FP" | tr -d : | tr A-F a-f)"

note "--ca-fingerprint of another certificate: untrusted, exit 7, nothing written"
# The same fingerprint with its last byte changed.
last=${CA_FP##*:}
if [ "$last" = 00 ]; then other=${CA_FP%:*}:01; else other=${CA_FP%:*}:00; fi
mkdir "$T/out2"
expect_error 7 '' p11s getca -u "$URL" --ca-fingerprint "$other" --out-dir "$T/out2"
assert_no_file "$T/out2/ca.pem" "ca.pem written although the fingerprint did not match"

note "--ca-fingerprint that is not a SHA-256 fingerprint: usage error, exit 2"
expect_error 2 '' p11s getca -u "$URL" --ca-fingerprint "AB:CD:EF"
expect_error 2 '' p11s getca -u "$URL" --ca-fingerprint "$(printf '%s' "$CA_FP" | tr 0-9 g)"

note "nothing listening: exit 5"
expect_error 5 '' p11s getca -u "$(dead_url)"

echo "PASS: getca"
