#!/bin/bash
# A complete p11scep run on this machine, with nothing to set up by hand:
# a SoftHSM2 token and a micromdm SCEP server with a fresh CA, both in a
# temp dir that is removed at the end. Needs contrib/install-deps.sh.

set -eu -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

heading() {
	printf '\n=== %s ===\n' "$*"
}

# show CMD...: prints the command as a person would type it, then runs it.
show() {
	local a line='$'
	for a in "$@"; do
		case $a in
		*[!A-Za-z0-9_./:=@,+-]*) line="$line '$a'" ;;
		*) line="$line $a" ;;
		esac
	done
	printf '%s\n' "$line"
}

build_p11scep() {
	local log dir
	log=$(mktemp "${TMPDIR:-/tmp}/p11scep-demo-build.XXXXXX")
	if [ -f "$ROOT/config.status" ]; then
		# Configured in the source tree: build there.
		dir=$ROOT
	else
		dir=$ROOT/build-demo
		mkdir -p "$dir"
		if [ ! -x "$ROOT/configure" ]; then
			(cd "$ROOT" && autoreconf -fi) >>"$log" 2>&1 ||
				{ cat "$log"; echo "autoreconf failed: run contrib/install-deps.sh" >&2; exit 1; }
		fi
		if [ ! -f "$dir/Makefile" ]; then
			(cd "$dir" && "$ROOT/configure") >>"$log" 2>&1 ||
				{ tail -n 30 "$log"; echo "configure failed" >&2; exit 1; }
		fi
	fi
	make -C "$dir" -j2 p11scep >>"$log" 2>&1 ||
		{ tail -n 40 "$log"; echo "building p11scep failed" >&2; exit 1; }
	rm -f "$log"
	P11SCEP=$dir/p11scep
}

heading "Building p11scep"
if [ -n "${P11SCEP:-}" ] && [ -x "$P11SCEP" ]; then
	echo "using P11SCEP=$P11SCEP"
else
	build_p11scep
	echo "built $P11SCEP"
fi
export P11SCEP

# The same token and server set-up as the integration tests; its EXIT trap
# stops the server and removes the temp dir however this script ends.
# shellcheck source=tests/integration/lib.sh
. "$ROOT/tests/integration/lib.sh"

heading "A SoftHSM2 token in $T"
cd "$T"
setup_token
echo "token '$TOKEN_LABEL' in $T/tokens, SOFTHSM2_CONF=$SOFTHSM2_CONF"
echo "user PIN in $PIN_FILE (mode 600): the key URI points at it with pin-source"

heading "A SCEP server with a fresh CA"
# shellcheck disable=SC2034 # read by start_scepserver
CHALLENGE=demo-challenge-$RANDOM$RANDOM
start_scepserver
echo "scepserver (micromdm) listening on port $PORT, CA in $DEPOT"
echo "CA fingerprint (SHA-256): $CA_FP"
echo "challenge password in $CHALLENGE_FILE"

heading "1. What the server offers: p11scep getcaps"
show p11scep getcaps -u "$URL"
p11s getcaps -u "$URL"

heading "2. The CA certificate: p11scep getca"
show p11scep getca -u "$URL" --ca-fingerprint "$CA_FP"
p11s getca -u "$URL" --ca-fingerprint "$CA_FP"

heading "3. Enrollment: a new RSA-2048 key in the token, a certificate for it"
enroll=(enroll -v -u "$URL" -k "$KEY_URI" --subject "CN=demo.example.test,O=p11scep demo"
	--dns demo.example.test --ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE"
	--key-type rsa:2048 --cert-out demo-cert.pem --chain-out demo-chain.pem)
show p11scep "${enroll[@]}"
p11s "${enroll[@]}"

heading "4. The issued certificate"
show openssl x509 -in demo-cert.pem -noout -subject -issuer -dates -fingerprint -sha256
openssl x509 -in demo-cert.pem -noout -subject -issuer -dates -fingerprint -sha256

heading "5. It verifies against the CA"
show openssl verify -CAfile depot/ca.pem -untrusted demo-chain.pem demo-cert.pem
openssl verify -CAfile depot/ca.pem -untrusted demo-chain.pem demo-cert.pem

heading "6. The token: the key (sensitive, never extractable) and the certificate beside it"
show pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$TOKEN_LABEL" --login --list-objects
p11t --list-objects

heading "Done"
echo "stopping the server and removing $T"
cd /
