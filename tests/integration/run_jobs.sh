#!/bin/bash
# p11scep run over many profiles in one token: several at once (--jobs), one
# module load and one login for the whole pass, every certificate for its own
# key, and the same outcome as one profile at a time.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=12
setup_token
# Our responder, not micromdm's scepserver: concurrent requests race on the
# serial number file of scepserver's depot ("could not convert to serial
# number", badRequest), a server bug this test is not about.
start_responder

# Keys made beforehand, as an appliance provisions them: the pass measures
# enrollment, not key generation.
for i in $(seq 1 $N); do
	p11t --keypairgen --key-type rsa:2048 --label "dev$i" --id "$(printf 'd0%02x' "$i")" >/dev/null
done

CONF=$T/p11scep.conf
STATE=$T/run-state
{
	cat <<-CONFEOF
	[defaults]
	url = $URL
	ca-fingerprint = $CA_FP
	challenge-file = $CHALLENGE_FILE
	state-dir = $STATE
	post-enroll-command = echo "\$P11SCEP_PROFILE \$P11SCEP_CERT" >> $T/hook.log
	CONFEOF
	for i in $(seq 1 $N); do
		printf '\n[profile dev%s]\nkey = %s\nsubject = CN=dev%s.example.test\n' \
			"$i" "$(key_uri "dev$i" "pin-source=file:$PIN_FILE")" "$i"
	done
} >"$CONF"
chmod 600 "$CONF"

note "one pass, 4 at a time: all $N enrolled, one module load and login"
expect_exit 0 p11s run -c "$CONF" --jobs 4 -v
assert_eq "$(grep -c 'loaded PKCS#11 module' "$ERR")" 1 "module loads in one pass"
LOGINS=$(grep -c 'logged in to token' "$ERR")
[ "$LOGINS" -ge 1 ] && [ "$LOGINS" -lt "$N" ] || fail "$LOGINS logins for $N profiles, 4 at a time"
assert_eq "$(grep -c ': enroll: certificate issued and stored' "$ERR")" "$N" "profiles enrolled"
assert_eq "$(wc -l <"$T/hook.log")" "$N" "post-enroll-command runs"
for i in $(seq 1 $N); do
	cert=$STATE/profiles/dev$i/user/cert.pem
	assert_file "$cert"
	grep -q "^dev$i $cert\$" "$T/hook.log" || fail "the hook of dev$i got the wrong environment"
	openssl x509 -in "$cert" -noout -subject | grep -q "CN *= *dev$i.example.test" ||
		fail "dev$i's certificate names another subject"
	tok_pubkey "$(printf 'd0%02x' "$i")" "$T/pub$i.pem"
	pubkey_same "$cert" "$T/pub$i.pem" || fail "dev$i's certificate is not for the dev$i key"
done
assert_eq "$(tok_count cert)" "$N" "certificates stored in the token"

note "a second pass has nothing to do: no token, no server"
expect_exit 0 p11s run -c "$CONF" --jobs 4 -v
assert_eq "$(grep -c 'nothing to do' "$ERR")" "$N" "profiles with nothing to do"
assert_eq "$(grep -c 'loaded PKCS#11 module' "$ERR" || true)" 0 "module loaded with nothing to do"

note "--jobs 1 gives the same result one profile at a time; PIN and challenge from the environment"
rm -rf "$STATE"
: >"$T/hook.log"
# A login per profile (the token is logged out when no profile uses it), so
# the environment's PIN must serve every one of them.
sed -e '/^challenge-file/d' -e 's/&pin-source=file:[^ ]*$//' "$CONF" >"$T/env.conf"
grep -q 'pin-source' "$T/env.conf" && fail "the test's config still names a PIN file"
chmod 600 "$T/env.conf"
CONF=$T/env.conf
P11SCEP_PIN=$TOKEN_PIN P11SCEP_CHALLENGE=$CHALLENGE expect_exit 0 p11s run -c "$CONF" --jobs 1 -v
assert_eq "$(grep -c 'loaded PKCS#11 module' "$ERR")" 1 "module loads with --jobs 1"
assert_eq "$(grep -c ': enroll: certificate issued and stored' "$ERR")" "$N" "profiles enrolled with --jobs 1"
