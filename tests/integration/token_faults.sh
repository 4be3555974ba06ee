#!/bin/bash
# Token faults SoftHSM2 never produces by itself, injected by p11fault.so (a
# PKCS#11 module that forwards every call to SoftHSM2 and fails the chosen
# ones): a module that refuses CKA_CERTIFICATE_CATEGORY, a token too full
# for the renewed certificate, an older certificate that will not go.
# The enrollments are real: scepserver issues, SoftHSM2 holds the key.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_tool jq jq

P11FAULT_SO=${P11FAULT_SO:-$(dirname "$P11SCEP")/tests/tools/p11fault.so}
[ -f "$P11FAULT_SO" ] || fail "$P11FAULT_SO not found: run 'make check' (it builds it)"
export P11FAULT_MODULE=$SOFTHSM_MODULE P11FAULT_LOG=$T/faults.log

setup_token
start_scepserver

SUBJECT="CN=p11scep-token-faults.example.test"
OUTDIR=$T/out
CERT=$OUTDIR/cert.pem
CHAIN=$OUTDIR/chain.pem
STATE=$T/state
mkdir -p "$OUTDIR"
FAULT_URI="pkcs11:token=$TOKEN_LABEL;object=mykey?module-path=$P11FAULT_SO&pin-source=file:$PIN_FILE"

# enroll_faulty FAULTS EXIT [ARGS...]: enroll mykey through p11fault.so with
# FAULTS injected; expect exit status EXIT.
enroll_faulty() {
	local faults=$1 want=$2
	shift 2
	: >"$P11FAULT_LOG"
	P11FAULT=$faults expect_exit "$want" p11s enroll -u "$URL" -k "$FAULT_URI" \
		--subject "$SUBJECT" --ca-fingerprint "$CA_FP" --challenge-file "$CHALLENGE_FILE" \
		--cert-out "$CERT" --chain-out "$CHAIN" --state-dir "$STATE" "$@"
}

# injected FAULT: the fault was met at least once (the test did not miss it).
injected() {
	grep -q "^$1 " "$P11FAULT_LOG" || fail "p11fault never injected '$1': the case proves nothing"
}

# cert_category ID: CKA_CERTIFICATE_CATEGORY of the certificate with that ID,
# as token-info reads it straight from SoftHSM2.
cert_category() {
	expect_exit 0 p11s token-info -k "$KEY_URI" --json
	jq -r --arg id "$1" '.objects[] | select(.class == "certificate" and .id == $id) | .category' \
		"$OUT"
}

note "a module that refuses CKA_CERTIFICATE_CATEGORY: the certificate goes in without it"
enroll_faulty category 0
injected category
assert_grep "$OUT" '^issued:' "no issued: line on stdout"
KEY_ID=$(tok_id_of privkey mykey)
assert_eq "$(tok_count cert "$KEY_ID")" 1 "certificate objects beside mykey"
tok_cert "$KEY_ID" "$T/tok1.pem"
cert_same "$T/tok1.pem" "$CERT" || fail "the token's certificate is not the one written out"
assert_eq "$(cert_category "$(printf '%s' "$KEY_ID" | tr 'A-F' 'a-f')")" unspecified \
	"category of a certificate stored without one"

note "a token too full for the renewed certificate: exit 6, nothing changed, the retry resumes"
cp "$CERT" "$T/cert.before"
cp "$CHAIN" "$T/chain.before"
p11t --list-objects | sort >"$T/objects.before"
enroll_faulty create-cert 6 --import-chain
injected create-cert
assert_eq "$(grep -c '^p11scep: ' "$ERR")" 1 "lines on stderr"
assert_grep "$ERR" "CKR_DEVICE_MEMORY" "the message does not name the token's error"
assert_grep "$ERR" "token '$TOKEN_LABEL'" "the message does not name the token"
cmp -s "$CERT" "$T/cert.before" || fail "the cert file changed although the token refused"
cmp -s "$CHAIN" "$T/chain.before" || fail "the chain file changed although the token refused"
p11t --list-objects | sort >"$T/objects.now"
cmp -s "$T/objects.now" "$T/objects.before" ||
	{ diff "$T/objects.before" "$T/objects.now" >&2; fail "the token's objects changed"; }
no_temp_files "$OUTDIR"
assert_eq "$(n_states)" 1 "transaction state files kept for the retry"
TXID=$(state_txid)
enroll_faulty "" 0 --import-chain
assert_grep "$ERR" "transactionID $TXID got no answer: sending it again" \
	"the retry did not resume the transaction"
assert_eq "$(n_states)" 0 "transaction state files after the retry"
assert_eq "$(tok_count cert "$KEY_ID")" 1 "certificate objects beside mykey after the retry"
tok_cert "$KEY_ID" "$T/tok2.pem"
cert_same "$T/tok2.pem" "$CERT" || fail "the token's certificate is not the one written out"
cert_same "$T/tok2.pem" "$T/tok1.pem" && fail "the retry left the older certificate in the token"

note "an older certificate that will not go: a warning, the new one stored and written"
enroll_faulty destroy-cert 0
injected destroy-cert
assert_grep "$ERR" "warning: cannot remove the older certificate" "no warning about the older certificate"
assert_grep "$ERR" "CKR_DEVICE_ERROR" "the warning does not name the token's error"
assert_eq "$(tok_count cert "$KEY_ID")" 2 "certificate objects beside mykey (old and new)"
tok_pubkey "$KEY_ID" "$T/pub.pem"
pubkey_same "$CERT" "$T/pub.pem" || fail "the new certificate is not for mykey"
cert_same "$CERT" "$T/tok2.pem" && fail "the cert file was not replaced"
assert_eq "$(n_states)" 0 "transaction state files"
no_temp_files "$OUTDIR"

note "the next enrollment without the fault removes the one left over"
enroll_faulty "" 0
assert_eq "$(tok_count cert "$KEY_ID")" 1 "certificate objects beside mykey"
tok_cert "$KEY_ID" "$T/tok3.pem"
cert_same "$T/tok3.pem" "$CERT" || fail "the token's certificate is not the one written out"
note "a wrong PIN in a run over three profiles of one token: one C_Login, not three"
# Smartcards lock their PIN after three tries: a run must not spend them.
(umask 077 && printf '%s\n' "0$TOKEN_PIN" >"$T/wrong-pin")
{
	printf '[defaults]\nurl = %s\nca-fingerprint = %s\nchallenge-file = %s\nstate-dir = %s\n' \
		"$URL" "$CA_FP" "$CHALLENGE_FILE" "$T/run-state"
	for i in 1 2 3; do
		printf '\n[profile dev%s]\nsubject = CN=dev%s.example.test\n' "$i" "$i"
		printf 'key = pkcs11:token=%s;object=dev%s?module-path=%s&pin-source=file:%s\n' \
			"$TOKEN_LABEL" "$i" "$P11FAULT_SO" "$T/wrong-pin"
	done
} >"$T/run.conf"
chmod 600 "$T/run.conf"
for jobs in 1 3; do
	: >"$P11FAULT_LOG"
	expect_exit 6 p11s run -c "$T/run.conf" --jobs "$jobs"
	assert_eq "$(grep -c '^C_Login ' "$P11FAULT_LOG")" 1 "C_Login calls of a run with --jobs $jobs"
	assert_grep "$P11FAULT_LOG" '^C_Login rv=0xa0$' "the token did not answer CKR_PIN_INCORRECT"
	for i in 1 2 3; do
		assert_grep "$ERR" "profile dev$i: failed" "profile dev$i was not reported as failed"
	done
done

note "a token with one PIN try left, or a locked PIN: no C_Login, exit 6, one clear line"
for fault in final-try pin-locked; do
	enroll_faulty "$fault" 6
	assert_eq "$(grep -c '^C_Login ' "$P11FAULT_LOG" || true)" 0 "C_Login calls with $fault"
	assert_eq "$(grep -c '^p11scep: ' "$ERR")" 1 "lines on stderr with $fault"
done
assert_grep "$ERR" "the PIN of token '$TOKEN_LABEL' is locked" "no message about the locked PIN"
enroll_faulty final-try 6
assert_grep "$ERR" "has one PIN try left before it locks: p11scep does not spend it" \
	"no message about the last PIN try"
P11FAULT=final-try expect_exit 0 p11s token-info -k "${FAULT_URI%%&pin-source=*}"
assert_grep "$OUT" "user-pin-final-try" "token-info does not show the token's flag"
assert_eq "$(n_states)" 0 "transaction state files after refusals before any request"

note "a reader with a PIN pad: no PIN asked for, C_Login without one, the PIN typed on the pad"
PAD_URI="pkcs11:token=$TOKEN_LABEL;object=padkey?module-path=$P11FAULT_SO"
# pad_enroll TYPED EXIT: enroll padkey, TYPED on the pad ('' for nothing).
pad_enroll() {
	: >"$P11FAULT_LOG"
	if [ -n "$1" ]; then export P11FAULT_PINPAD=$1; else unset P11FAULT_PINPAD; fi
	P11FAULT=pinpad expect_exit "$2" p11s enroll -u "$URL" -k "$PAD_URI" \
		--subject "CN=pinpad.example.test" --ca-fingerprint "$CA_FP" \
		--challenge-file "$CHALLENGE_FILE" --cert-out "$T/pad.pem" --state-dir "$T/pad-state"
	unset P11FAULT_PINPAD
}
pad_enroll "$TOKEN_PIN" 0
assert_grep "$ERR" "enter the PIN of token '$TOKEN_LABEL' on the reader's PIN pad" \
	"no word to type the PIN on the pad"
assert_eq "$(grep -c '^C_Login-pinpad rv=0x0$' "$P11FAULT_LOG")" 1 "logins without a PIN"
assert_eq "$(grep -c '^C_Login ' "$P11FAULT_LOG" || true)" 0 "logins with a PIN"
PAD_ID=$(tok_id_of privkey padkey)
tok_pubkey "$PAD_ID" "$T/padpub.pem"
pubkey_same "$T/pad.pem" "$T/padpub.pem" || fail "the certificate is not for padkey"
pad_enroll "0$TOKEN_PIN" 6
assert_grep "$ERR" "rejected the PIN" "a PIN the token refused from the pad is not named"
pad_enroll "" 6
assert_grep "$ERR" "CKR_FUNCTION_CANCELED" "a login cancelled at the pad is not named"
# A PIN given beside the pad is used as any other.
P11SCEP_PIN=$TOKEN_PIN pad_enroll "" 0
assert_eq "$(grep -c '^C_Login rv=0x0$' "$P11FAULT_LOG")" 1 "logins with P11SCEP_PIN"
assert_no_grep "$ERR" "PIN pad" "the pad was asked for although P11SCEP_PIN gave the PIN"

echo "PASS: token_faults"
