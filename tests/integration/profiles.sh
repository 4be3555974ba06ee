#!/bin/bash
# Named profiles in a configuration file (-c FILE -p NAME) against micromdm's
# scepserver: the profile supplies what the command line leaves out, flags win,
# and a bad file is refused with FILE:LINE.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

setup_token
start_scepserver

CONF=$T/p11scep.conf
cat >"$CONF" <<CONFEOF
[defaults]
url = $URL
ca-fingerprint = $CA_FP
challenge-file = $CHALLENGE_FILE
cipher = aes256

[profile web]
key = $(key_uri web "pin-source=file:$PIN_FILE")
subject = CN=web.example.test,O=p11scep tests
dns = web.example.test, www.example.test
cert-out = $T/web.pem
chain-out = $T/web-chain.pem

[profile mail]
key = $(key_uri mail "pin-source=file:$PIN_FILE")
subject = CN=mail.example.test
key-type = rsa:3072
cert-out = $T/mail.pem
CONFEOF
chmod 600 "$CONF"

note "enroll -p web takes everything from the profile"
expect_exit 0 p11s enroll -c "$CONF" -p web -v
assert_grep "$ERR" "using AES-256-CBC" "the profile's cipher was not used"
openssl verify -CAfile "$CA_PEM" "$T/web.pem" >/dev/null || fail "web cert does not verify"
openssl x509 -in "$T/web.pem" -noout -ext subjectAltName | grep -q 'DNS:www.example.test' ||
	fail "the profile's second dns name is missing"
assert_eq "$(count_certs "$T/web-chain.pem")" 1 "certs in the profile's chain-out"

note "flags override the profile"
expect_exit 0 p11s enroll -c "$CONF" -p mail --cert-out "$T/mail-flag.pem" --key-type rsa:2048
assert_no_file "$T/mail.pem" "the profile's cert-out was used despite --cert-out"
openssl x509 -in "$T/mail-flag.pem" -noout -text | grep -q 'Public-Key: (2048 bit)' ||
	fail "--key-type on the command line did not win over the profile"

note "getca and getcaps with -p"
expect_exit 0 p11s getca -c "$CONF" -p web
assert_grep "$OUT" "^sha256: $CA_FP\$" "getca -p web does not show the CA"
expect_exit 0 p11s getcaps -c "$CONF" -p web
assert_grep "$OUT" '^AES$' "getcaps -p web"

note "errors: unknown profile, -c without -p, bad line, inline secret, writable file"
expect_exit 2 p11s enroll -c "$CONF" -p nosuch
assert_grep "$ERR" "no \[profile nosuch\]" "unknown profile message"
expect_exit 2 p11s getcaps -c "$CONF" -u "$URL"
printf '[profile bad]\nurl = %s\nbogus-key = 1\n' "$URL" >"$T/bad.conf"
chmod 600 "$T/bad.conf"
expect_exit 2 p11s getcaps -c "$T/bad.conf" -p bad
assert_grep "$ERR" "bad.conf:3: key 'bogus-key'" "the error does not name FILE:LINE and the key"
printf '[profile sec]\nchallenge = s3cr3t-inline\n' >"$T/sec.conf"
chmod 600 "$T/sec.conf"
expect_exit 2 p11s getcaps -c "$T/sec.conf" -p sec
assert_no_grep "$ERR" "s3cr3t-inline" "an inline secret was echoed"
chmod 666 "$CONF"
expect_exit 2 p11s getcaps -c "$CONF" -p web
assert_grep "$ERR" "writable by other users" "a world-writable config was not refused"
echo "PASS: profiles"
