#!/bin/bash
# HTTPS: a real TLS front (socat OPENSSL-LISTEN) on 127.0.0.1 before
# micromdm's scepserver. With the right --cacert (or the profile's cacert)
# enrollment works; without it, with another CA or with a certificate for
# another name it fails with exit 5 before anything is written or generated;
# --insecure-tls works and says loudly that verification is off.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_tool socat socat

# Only the CA bundle we name (or libcurl's built-in default) may count.
unset SSL_CERT_FILE SSL_CERT_DIR CURL_CA_BUNDLE

setup_token
start_scepserver
SCEP_PORT=$PORT

# ---------------------------------------------------------------- TLS PKI

TLS=$T/tls
mkdir -p "$TLS"

# tls_ca NAME: a self-signed CA in $TLS/NAME.pem and $TLS/NAME.key.
tls_ca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$TLS/$1.key" -out "$TLS/$1.pem" -days 2 -subj "/CN=p11scep $1" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>"$TLS/openssl.err" ||
		{ show_file openssl "$TLS/openssl.err"; fail "cannot make the TLS CA $1"; }
}

# tls_server NAME CA CN SAN: a server cert signed by CA in $TLS/NAME.{pem,key}.
tls_server() {
	local name=$1 ca=$2 cn=$3 san=$4
	printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
		"$san" >"$TLS/$name.ext"
	if ! openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$TLS/$name.key" -out "$TLS/$name.csr" -subj "/CN=$cn" 2>"$TLS/openssl.err" ||
		! openssl x509 -req -in "$TLS/$name.csr" -CA "$TLS/$ca.pem" -CAkey "$TLS/$ca.key" \
			-set_serial "0x$(openssl rand -hex 8)" -days 2 -extfile "$TLS/$name.ext" \
			-out "$TLS/$name.pem" 2>"$TLS/openssl.err"; then
		show_file openssl "$TLS/openssl.err"
		fail "cannot make the TLS server cert $name"
	fi
}

tls_ca testca
tls_ca otherca
tls_server good testca 127.0.0.1 IP:127.0.0.1
tls_server wrongname testca wrong.example DNS:wrong.example
openssl verify -CAfile "$TLS/testca.pem" "$TLS/good.pem" >/dev/null ||
	fail "the good server cert does not verify with the test TLS CA"

# tls_front CERTNAME: socat terminating TLS with $TLS/CERTNAME.{pem,key} on a
# free port of 127.0.0.1, forwarding to the scepserver. Sets FRONT_PORT and
# FRONT_PID.
tls_front() {
	local port pid attempt
	for attempt in 1 2 3 4 5; do
		port=$(free_port)
		socat "OPENSSL-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork,verify=0,cert=$TLS/$1.pem,key=$TLS/$1.key" \
			"TCP:127.0.0.1:$SCEP_PORT" 2>>"$T/socat-$1.log" &
		pid=$!
		SCEP_PIDS+=("$pid")
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			# The listener on that port must be this socat, not someone else.
			if ss -Htlnp "sport = :$port" | grep -q "pid=$pid,"; then
				FRONT_PORT=$port
				FRONT_PID=$pid
				return 0
			fi
			sleep 0.05
		done
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		echo "socat on port $port did not come up (attempt $attempt)" >&2
	done
	show_file "socat log" "$T/socat-$1.log"
	fail "the TLS front with $1 did not start"
}

tls_front good
GOOD_URL=https://127.0.0.1:$FRONT_PORT/scep
GOOD_PORT=$FRONT_PORT
tls_front wrongname
WRONG_URL=https://127.0.0.1:$FRONT_PORT/scep

# The fronts really speak TLS with the certs we made, and only TLS.
curl -fsS --max-time 5 --cacert "$TLS/testca.pem" -o "$T/caps.txt" \
	"$GOOD_URL?operation=GetCACaps" || fail "curl cannot reach the scepserver through the TLS front"
assert_grep "$T/caps.txt" 'POSTPKIOperation' "GetCACaps through the TLS front"
echo | openssl s_client -connect "127.0.0.1:$GOOD_PORT" -CAfile "$TLS/testca.pem" \
	-verify_return_error -verify_ip 127.0.0.1 >"$T/s_client.out" 2>&1 ||
	{ show_file s_client "$T/s_client.out"; fail "openssl s_client does not verify the good front"; }
assert_grep "$T/s_client.out" 'subject=CN *= *127\.0\.0\.1' "the good front shows another cert"

note "plain http:// to the TLS port fails (exit 5): p11scep cannot have skipped TLS"
expect_error 5 'http://127\.0\.0\.1' p11s getcaps -u "http://127.0.0.1:$GOOD_PORT/scep"

# ---------------------------------------------------------------- helpers

SUBJECT="CN=p11scep-tls.example.test"

# tok_snapshot FILE: every object in the token, for "nothing changed".
tok_snapshot() {
	{
		tok_list privkey
		tok_list pubkey
		tok_list cert
		tok_list data
	} | sort >"$1"
}

# enroll_fails RC REGEX URL [ARGS...]: getcaps, getca and enroll all fail
# with RC and one error line matching REGEX; no file, no state, no token change.
enroll_fails() {
	local want=$1 re=$2 url=$3 state=$T/fail-state
	shift 3
	# A state directory without a CA cache: the first contact is over TLS.
	rm -rf "$state"
	tok_snapshot "$T/tok.before"
	expect_error "$want" "$re" p11s getcaps -u "$url" "$@"
	[ ! -s "$OUT" ] || { show_file stdout "$OUT"; fail "getcaps printed capabilities"; }
	expect_error "$want" "$re" p11s getca -u "$url" "$@" --ca-fingerprint "$CA_FP"
	[ ! -s "$OUT" ] || { show_file stdout "$OUT"; fail "getca printed certificates"; }
	expect_error "$want" "$re" p11s enroll -u "$url" "$@" \
		-k "$(key_uri failed "pin-source=file:$PIN_FILE")" --subject "$SUBJECT" \
		--ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" \
		--cert-out "$T/failed.pem" --chain-out "$T/failed-chain.pem" --state-dir "$state"
	assert_no_file "$T/failed.pem" "a cert file was written after a TLS failure"
	assert_no_file "$T/failed-chain.pem" "a chain file was written after a TLS failure"
	assert_eq "$(find "$state" -type f 2>/dev/null | wc -l)" 0 \
		"state files after a TLS failure"
	tok_snapshot "$T/tok.after"
	cmp -s "$T/tok.before" "$T/tok.after" ||
		{ diff "$T/tok.before" "$T/tok.after" >&2 || true; fail "the token changed after a TLS failure"; }
}

# enroll_ok LABEL URL [ARGS...]: getcaps, getca and enroll of a new key work;
# the cert verifies with the SCEP CA and belongs to the token's key.
enroll_ok() {
	local label=$1 url=$2 id
	shift 2
	expect_exit 0 p11s getcaps -u "$url" "$@"
	assert_grep "$OUT" '^POSTPKIOperation$' "getcaps over https"
	expect_exit 0 p11s getca -u "$url" "$@" --ca-fingerprint "$CA_FP"
	assert_grep "$OUT" "^sha256: $CA_FP\$" "getca over https does not show the CA"
	expect_exit 0 p11s enroll -u "$url" "$@" -k "$(key_uri "$label" "pin-source=file:$PIN_FILE")" \
		--subject "CN=$label.example.test" --ca-fingerprint "$CA_FP" \
		--challenge-file "$CHALLENGE_FILE" --cert-out "$T/$label.pem"
	assert_grep "$OUT" '^issued:' "enroll over https"
	openssl verify -CAfile "$CA_PEM" "$T/$label.pem" >/dev/null ||
		fail "the cert enrolled over https does not verify"
	id=$(tok_id_of privkey "$label")
	tok_pubkey "$id" "$T/$label.pub"
	pubkey_same "$T/$label.pem" "$T/$label.pub" || fail "the cert is not for the token's key $label"
}

# ---------------------------------------------------------------- cases

note "--cacert with the test TLS CA and a cert for 127.0.0.1: getcaps, getca, enroll work"
enroll_ok tlsgood "$GOOD_URL" --cacert "$TLS/testca.pem"
assert_no_grep "$ERR" 'warning' "a warning with TLS verification on"

note "no --cacert (the system bundle): exit 5, the message names TLS and --cacert"
enroll_fails 5 'TLS.*--cacert' "$GOOD_URL"
assert_grep "$ERR" 'certificate' "the TLS error does not say what is wrong with the certificate"

note "--cacert of another CA: exit 5"
enroll_fails 5 'TLS.*--cacert' "$GOOD_URL" --cacert "$TLS/otherca.pem"

note "a cert for wrong.example with the right --cacert: exit 5, the message names the name"
enroll_fails 5 "TLS.*name.*'?127\.0\.0\.1" "$WRONG_URL" --cacert "$TLS/testca.pem"

note "--cacert naming a missing file: exit 5 naming the file, nothing done"
enroll_fails 5 'TLS.*nosuch\.pem' "$GOOD_URL" --cacert "$TLS/nosuch.pem"

note "--insecure-tls: works against the wrong name and no trusted CA, with a warning"
enroll_ok insecure "$WRONG_URL" --insecure-tls
assert_grep "$ERR" '^p11scep: warning: TLS verification is off' \
	"--insecure-tls gave no warning that TLS verification is off"
expect_exit 0 p11s getcaps -u "$GOOD_URL" --insecure-tls
assert_grep "$ERR" '^p11scep: warning: TLS verification is off' "getcaps --insecure-tls: no warning"

note "the config key cacert works as --cacert"
CONF=$T/p11scep.conf
cat >"$CONF" <<CONFEOF
[defaults]
ca-fingerprint = $CA_FP
challenge-file = $CHALLENGE_FILE

[profile tls]
url = $GOOD_URL
cacert = $TLS/testca.pem
key = $(key_uri conftls "pin-source=file:$PIN_FILE")
subject = CN=conftls.example.test
cert-out = $T/conftls.pem

[profile other]
url = $GOOD_URL
cacert = $TLS/otherca.pem
key = $(key_uri confother "pin-source=file:$PIN_FILE")
subject = CN=confother.example.test
cert-out = $T/confother.pem

[profile wrongname]
url = $WRONG_URL
cacert = $TLS/testca.pem
key = $(key_uri confwrong "pin-source=file:$PIN_FILE")
subject = CN=confwrong.example.test
cert-out = $T/confwrong.pem
CONFEOF
chmod 600 "$CONF"
expect_exit 0 p11s getcaps -c "$CONF" -p tls
assert_grep "$OUT" '^POSTPKIOperation$' "getcaps -p tls"
expect_exit 0 p11s enroll -c "$CONF" -p tls
openssl verify -CAfile "$CA_PEM" "$T/conftls.pem" >/dev/null ||
	fail "the cert enrolled with the profile's cacert does not verify"
assert_no_grep "$ERR" 'warning' "a warning with the profile's cacert"

tok_snapshot "$T/tok.before"
expect_error 5 'TLS.*--cacert' p11s enroll -c "$CONF" -p other
assert_no_file "$T/confother.pem"
expect_error 5 "TLS.*name.*'?127\.0\.0\.1" p11s enroll -c "$CONF" -p wrongname
assert_no_file "$T/confwrong.pem"
tok_snapshot "$T/tok.after"
cmp -s "$T/tok.before" "$T/tok.after" || fail "the token changed after a TLS failure (profile)"

note "--cacert on the command line wins over the profile's cacert"
expect_exit 0 p11s getcaps -c "$CONF" -p other --cacert "$TLS/testca.pem"
expect_error 5 'TLS.*--cacert' p11s getcaps -c "$CONF" -p tls --cacert "$TLS/otherca.pem"

kill -0 "$FRONT_PID" 2>/dev/null || fail "the TLS front died during the test"
echo "PASS: tls"
