#!/bin/bash
# PINs and challenge passwords: where p11scep takes them from, where it
# refuses them (argv), and that it never prints them, even with -v.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PIN=98761234
CHALLENGE=s3cr3t-ch4llenge-xyz
WRONG_PIN=43218765
WRONG_CHALLENGE=wr0ng-ch4llenge-abc
setup_token "$PIN"
start_scepserver

SUBJECT="CN=p11scep-secrets.example.test"
URI_NOPIN=$(key_uri mykey)

# no_secrets WHAT: none of the secret values in this run's stdout or stderr.
no_secrets() {
	local f s
	for f in "$OUT" "$ERR"; do
		for s in "$PIN" "$CHALLENGE" "$WRONG_PIN" "$WRONG_CHALLENGE"; do
			if grep -Fq -- "$s" "$f"; then
				show_file "$(basename "$f")" "$f"
				fail "a secret ($s) appears in $(basename "$f") of: $1"
			fi
		done
	done
}

note "-v with the PIN from pin-source and the challenge from a file"
expect_exit 0 p11s enroll -v -u "$URL" -k "$KEY_URI" --subject "$SUBJECT" \
	--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" --cert-out "$T/cert1.pem"
assert_grep "$OUT" '^issued:'
[ -s "$ERR" ] || fail "-v printed no progress on stderr"
no_secrets "enroll -v (pin-source, --challenge-file)"

note "-v with the PIN from P11SCEP_PIN and the challenge from P11SCEP_CHALLENGE"
P11SCEP_PIN=$PIN P11SCEP_CHALLENGE=$CHALLENGE \
	expect_exit 0 p11s enroll -v -u "$URL" -k "$URI_NOPIN" --subject "$SUBJECT" \
	--ca-fingerprint "$CA_FP" --cert-out "$T/cert2.pem"
assert_grep "$OUT" '^issued:'
no_secrets "enroll -v (P11SCEP_PIN, P11SCEP_CHALLENGE)"
assert_ne "$(cert_serial "$T/cert2.pem")" "$(cert_serial "$T/cert1.pem")" "serial of the second cert"
assert_eq "$(tok_count privkey)" 1 "private keys (the second run reuses mykey)"

note "the PIN in P11SCEP_PIN is really used: a wrong one fails with exit 6"
P11SCEP_PIN=$WRONG_PIN P11SCEP_CHALLENGE=$CHALLENGE \
	expect_error 6 'pin' p11s enroll -v -u "$URL" -k "$URI_NOPIN" --subject "$SUBJECT" \
	--ca-fingerprint "$CA_FP" --cert-out "$T/cert3.pem"
no_secrets "enroll -v with a wrong P11SCEP_PIN"
assert_no_file "$T/cert3.pem"

note "the challenge in P11SCEP_CHALLENGE is really used: a wrong one is rejected, exit 4"
P11SCEP_PIN=$PIN P11SCEP_CHALLENGE=$WRONG_CHALLENGE \
	expect_error 4 '' p11s enroll -v -u "$URL" -k "$URI_NOPIN" --subject "$SUBJECT" \
	--ca-fingerprint "$CA_FP" --cert-out "$T/cert3.pem"
no_secrets "enroll -v with a wrong P11SCEP_CHALLENGE"
assert_no_file "$T/cert3.pem"

note "--challenge-file wins over P11SCEP_CHALLENGE"
P11SCEP_CHALLENGE=$WRONG_CHALLENGE \
	expect_exit 0 p11s enroll -v -u "$URL" -k "$KEY_URI" --subject "$SUBJECT" \
	--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" --cert-out "$T/cert4.pem"
no_secrets "enroll -v, --challenge-file and P11SCEP_CHALLENGE"

note "the URI's pin-source wins over P11SCEP_PIN"
P11SCEP_PIN=$WRONG_PIN \
	expect_exit 0 p11s enroll -v -u "$URL" -k "$KEY_URI" --subject "$SUBJECT" \
	--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" --cert-out "$T/cert4b.pem"
no_secrets "enroll -v, pin-source and P11SCEP_PIN"

note "--pin and --challenge on the command line are usage errors (exit 2)"
expect_error 2 '' p11s enroll -u "$URL" -k "$URI_NOPIN" --subject "$SUBJECT" \
	--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" --pin "$PIN"
no_secrets "enroll --pin"
expect_error 2 '' p11s enroll -u "$URL" -k "$KEY_URI" --subject "$SUBJECT" \
	--ca-fingerprint "$CA_FP" --challenge "$CHALLENGE"
no_secrets "enroll --challenge"
expect_error 2 '' p11s enroll -u "$URL" -k "$KEY_URI" --subject "$SUBJECT" \
	--ca-fingerprint "$CA_FP" --challenge="$CHALLENGE"
no_secrets "enroll --challenge="
# Not even as an abbreviation of --challenge-file (getopt_long's prefix
# matching), with a value that happens to name a readable file.
expect_error 2 '' p11s enroll -u "$URL" -k "$KEY_URI" --subject "$SUBJECT" \
	--ca-fingerprint "$CA_FP" --challenge "$CHALLENGE_FILE" --cert-out "$T/cert-abbrev.pem"
assert_no_file "$T/cert-abbrev.pem" "--challenge was taken for --challenge-file"

note "no PIN anywhere and no terminal: exit 6, no prompt, no hang"
rc=0
P11SCEP_CHALLENGE=$CHALLENGE setsid -w timeout 30 "$P11SCEP" enroll -v -u "$URL" -k "$URI_NOPIN" \
	--subject "$SUBJECT" --ca-fingerprint "$CA_FP" --cert-out "$T/cert5.pem" \
	</dev/null >"$OUT" 2>"$ERR" || rc=$?
[ "$rc" -eq 6 ] || { show_file stderr "$ERR"; fail "no PIN and no terminal gave exit $rc, expected 6"; }
assert_grep "$ERR" '^p11scep: .*[Pp][Ii][Nn]' "the error does not say that the PIN is missing"
no_secrets "enroll without a PIN"
assert_no_file "$T/cert5.pem"

note "a PIN file that others may write is refused"
(umask 022 && printf '%s\n' "$PIN" >"$T/pin-open") && chmod 666 "$T/pin-open"
rc=0
P11SCEP_CHALLENGE=$CHALLENGE p11s enroll -u "$URL" \
	-k "$(key_uri mykey "pin-source=file:$T/pin-open")" --subject "$SUBJECT" \
	--ca-fingerprint "$CA_FP" --cert-out "$T/cert6.pem" >"$OUT" 2>"$ERR" || rc=$?
[ "$rc" -ne 0 ] || fail "a world-writable PIN file was accepted"
no_secrets "world-writable PIN file"
assert_no_file "$T/cert6.pem"

echo "PASS: secrets"
