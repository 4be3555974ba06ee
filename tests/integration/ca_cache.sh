#!/bin/bash
# The cache of GetCACaps/GetCACert (a profile's; a one-off enrollment's, per
# URL): a second enrollment or a renewal takes one exchange; a stale cache
# (RA certificates the server no longer uses, or a day old) is dropped and the
# server asked again.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

setup_token
start_responder --mode ndes

CONF=$T/p11scep.conf
STATE=$T/pstate
cat >"$CONF" <<CONFEOF
[defaults]
url = $URL
ca-fingerprint = $CA_FP
challenge-file = $CHALLENGE_FILE
state-dir = $STATE

[profile dev]
key = $(key_uri dev "pin-source=file:$PIN_FILE")
subject = CN=dev.example.test
CONFEOF
chmod 600 "$CONF"
DIR=$STATE/profiles/dev

ops() {
	grep -Ec "^op=$1" "$RSP_LOG" || true
}

note "the first enrollment asks the server and fills the cache"
expect_exit 0 p11s enroll -c "$CONF" -p dev
assert_eq "$(ops GetCACaps)" 1 "GetCACaps of the first enrollment"
assert_eq "$(ops GetCACert)" 1 "GetCACert of the first enrollment"
assert_file "$DIR/ca/served.pem" "no cached GetCACert reply"
assert_file "$DIR/ca/caps" "no cached GetCACaps reply"
assert_eq "$(count_certs "$DIR/ca/served.pem")" 3 "certificates cached (CA, RA-enc, RA-sig)"
assert_grep "$DIR/ca/caps" 'POSTPKIOperation' "the cached caps lack POSTPKIOperation"

note "a renewal of the profile is one exchange: PKIOperation only"
expect_exit 0 p11s renew -c "$CONF" -p dev --remove-old --timings
assert_eq "$(ops GetCACaps)" 1 "the renewal asked GetCACaps again"
assert_eq "$(ops GetCACert)" 1 "the renewal asked GetCACert again"
assert_eq "$(ops PKIOperation)" 2 "PKIOperations after the renewal"
assert_grep "$ERR" 'timing: ca-cache' "no ca-cache step in --timings"

note "a cache holding only the CA (the RA is new to us): the CA refuses, p11scep asks again"
openssl x509 -in "$CA_PEM" -out "$DIR/ca/served.pem"
expect_exit 0 p11s renew -c "$CONF" -p dev --remove-old -v
assert_grep "$ERR" 'failed with the cached CA certificates' "no retry after the cached CA failed"
assert_eq "$(ops GetCACert)" 2 "GetCACert after a stale cache"
assert_grep "$RSP_LOG" 'request not encrypted to the' "the first try did not go to the cached CA"
assert_eq "$(count_certs "$DIR/ca/served.pem")" 3 "the cache was not refreshed"

note "a day-old cache is not used"
touch -d '25 hours ago' "$DIR/ca/served.pem" "$DIR/ca/caps"
expect_exit 0 p11s renew -c "$CONF" -p dev --remove-old
assert_eq "$(ops GetCACert)" 3 "GetCACert with a day-old cache"

note "a cache that does not hold the pinned CA is no trust anchor: the pin decides"
start_responder --mode ndes
# Another CA's certificates in the cache: the pin must reject them and ask the server,
# which serves the first CA (the URL still points there).
cp "$RSP_DIR/ca.pem" "$DIR/ca/served.pem"
sed -i "s|^url = .*|url = $URL|" "$CONF"
expect_error 7 'fingerprint|pin' p11s renew -c "$CONF" -p dev --remove-old

note "without a profile: one cache per server URL in the state directory"
ONE=$T/one-state
FP=$(cert_fp "$RSP_DIR/ca.pem")
SOLO=(enroll -u "$URL" -k "$(key_uri solo "pin-source=file:$PIN_FILE")" --subject CN=solo.example.test
	--ca-fingerprint "$FP" --challenge-file "$CHALLENGE_FILE" --state-dir "$ONE")
caps0=$(ops GetCACaps) cacert0=$(ops GetCACert)
expect_exit 0 p11s "${SOLO[@]}"
expect_exit 0 p11s "${SOLO[@]}" --timings
assert_grep "$ERR" 'timing: ca-cache' "the second one-off enrollment did not use the cache"
assert_eq "$(($(ops GetCACaps) - caps0))" 1 "GetCACaps of two one-off enrollments"
assert_eq "$(($(ops GetCACert) - cacert0))" 1 "GetCACert of two one-off enrollments"
SERVED=$(find "$ONE/servers" -name served.pem)
assert_eq "$(printf '%s\n' "$SERVED" | grep -c .)" 1 "one cache for one URL"
assert_eq "$(count_certs "$SERVED")" 3 "certificates cached for the URL"
assert_eq "$(stat -c %a "$ONE/servers" "$(dirname "$(dirname "$SERVED")")" | sort -u)" 700 \
	"the state directory's cache is not private"
note "... and another pin for the same URL is checked against the server, not the cache"
OTHER_FP=$(printf 'AB:%.0s' $(seq 1 31))AB
expect_error 7 'fingerprint|pin' p11s "${SOLO[@]/$FP/$OTHER_FP}" --new-request
assert_eq "$(($(ops GetCACert) - cacert0))" 2 "GetCACert with another pin"
