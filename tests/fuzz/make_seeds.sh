#!/bin/sh
# Regenerates the seed corpora under tests/fuzz/corpus/ from the committed
# test data (tests/unit/data, tests/fuzz/data) with the openssl tool. Only
# needed when a format changes: the seeds are committed. Run from anywhere.
# The fuzz CA of tests/fuzz/data is a throwaway key made for these tests only.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
data=$here/data
unit=$top/tests/unit/data
corpus=$here/corpus
tmp=$(mktemp -d /tmp/p11scep-seeds-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# Prefixes a one-byte selector to a file: sel HEX IN OUT.
sel() {
	printf "\\$(printf %03o "$1")" > "$3"
	cat "$2" >> "$3"
}

if [ ! -f "$data/fuzz-ca-key.pem" ]; then
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$data/fuzz-ca-key.pem"
	openssl req -x509 -new -key "$data/fuzz-ca-key.pem" -subj "/O=p11scep fuzz/CN=fuzz CA" \
		-days 36500 -addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign -out "$data/fuzz-ca.pem"
fi

# A small PKI made fresh each time: next CA, RA certs, a leaf.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/k.pem" 2>/dev/null
cat > "$tmp/ext.cnf" <<'CNF'
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
[raenc]
keyUsage = critical,keyEncipherment
[rasig]
keyUsage = critical,digitalSignature
[leaf]
basicConstraints = CA:FALSE
keyUsage = digitalSignature
CNF
mk() {	# mk NAME SECTION
	openssl req -new -key "$tmp/k.pem" -subj "/O=p11scep fuzz/CN=$1" -out "$tmp/$1.csr"
	openssl x509 -req -in "$tmp/$1.csr" -CA "$data/fuzz-ca.pem" -CAkey "$data/fuzz-ca-key.pem" \
		-set_serial "0x$(openssl rand -hex 8)" -days 3650 -extfile "$tmp/ext.cnf" \
		-extensions "$2" -out "$tmp/$1.pem" 2>/dev/null
}
mk next-ca ca
mk ra-enc raenc
mk ra-sig rasig
mk leaf leaf
openssl x509 -in "$data/fuzz-ca.pem" -outform DER -out "$tmp/ca.der"
openssl crl2pkcs7 -nocrl -certfile "$data/fuzz-ca.pem" -certfile "$tmp/ra-enc.pem" \
	-certfile "$tmp/ra-sig.pem" -outform DER -out "$tmp/bag-ra.der"
openssl crl2pkcs7 -nocrl -certfile "$tmp/next-ca.pem" -outform DER -out "$tmp/bag-next.der"
cat "$tmp/next-ca.pem" "$tmp/ra-enc.pem" "$tmp/ra-sig.pem" > "$tmp/next-all.pem"
openssl crl2pkcs7 -nocrl -certfile "$tmp/next-all.pem" -outform DER -out "$tmp/bag-next-ra.der"

rm -rf "$corpus"
mkdir -p "$corpus/fuzz_caps" "$corpus/fuzz_ca" "$corpus/fuzz_nextca" "$corpus/fuzz_reply" \
	"$corpus/fuzz_conf" "$corpus/fuzz_uri" "$corpus/fuzz_state"

# GetCACaps: micromdm's reply, a full RFC 8894 list, legacy, odd spacing.
printf 'Renewal\nSHA-1\nSHA-256\nAES\nDES3\nSCEPStandard\nPOSTPKIOperation' > "$corpus/fuzz_caps/micromdm"
printf 'AES\r\nDES3\r\nGetNextCACert\r\nPOSTPKIOperation\r\nRenewal\r\nSHA-1\r\nSHA-224\r\nSHA-256\r\nSHA-384\r\nSHA-512\r\nSCEPStandard\r\nUpdate\r\n' > "$corpus/fuzz_caps/full"
printf 'scepstandard' > "$corpus/fuzz_caps/standard"
printf '  DES3  SHA-1 \n\n GetNextCACert\tX-Unknown' > "$corpus/fuzz_caps/spaces"

# GetCACert: selector 0 = x-x509-ca-cert, 1 = x-x509-ca-ra-cert, 2 = none.
sel 0 "$unit/micromdm-getcacert.der" "$corpus/fuzz_ca/micromdm"
sel 1 "$tmp/bag-ra.der" "$corpus/fuzz_ca/ca-ra-bag"
sel 9 "$tmp/bag-ra.der" "$corpus/fuzz_ca/ca-ra-bag-pin1"
sel 17 "$tmp/bag-ra.der" "$corpus/fuzz_ca/ca-ra-bag-pin2"
sel 2 "$tmp/bag-next-ra.der" "$corpus/fuzz_ca/sniffed-bag"
sel 8 "$tmp/ca.der" "$corpus/fuzz_ca/ca-der"

# GetNextCACert: signed by the fuzz CA (the harness trusts it), the new
# certs as signed content, under id-data and id-signedData.
openssl cms -sign -binary -nodetach -in "$tmp/bag-next.der" -signer "$data/fuzz-ca.pem" \
	-inkey "$data/fuzz-ca-key.pem" -md sha256 -outform DER -out "$corpus/fuzz_nextca/id-data"
openssl cms -sign -binary -nodetach -in "$tmp/bag-next-ra.der" -signer "$data/fuzz-ca.pem" \
	-inkey "$data/fuzz-ca-key.pem" -md sha256 -econtent_type pkcs7-signedData \
	-outform DER -out "$corpus/fuzz_nextca/id-signeddata"
openssl cms -sign -binary -nodetach -nocerts -in "$tmp/bag-next.der" \
	-signer "$data/fuzz-ca.pem" -inkey "$data/fuzz-ca-key.pem" -md sha512 \
	-outform DER -out "$corpus/fuzz_nextca/nocerts"
cp "$tmp/bag-next.der" "$corpus/fuzz_nextca/unsigned-bag"

# CertRep: byte 0 is the harness's mode (see fuzz_reply.c). Mode 0 is the
# whole message checked against micromdm's capture; mode 1 the pkcsPKIEnvelope
# that the harness signs; mode 2 the decrypted bag that it envelopes and signs.
sel 0 "$unit/micromdm-certrep-success.der" "$corpus/fuzz_reply/micromdm-success"
sel 4 "$unit/micromdm-certrep-success.der" "$corpus/fuzz_reply/micromdm-success-strict"
sel 8 "$unit/micromdm-certrep-failure.der" "$corpus/fuzz_reply/micromdm-failure"
openssl x509 -in "$unit/micromdm-success-signer.pem" -out "$tmp/our.pem"
openssl crl2pkcs7 -nocrl -certfile "$tmp/leaf.pem" -outform DER -out "$tmp/bag-leaf.der"
openssl cms -encrypt -binary -aes128 -in "$tmp/bag-leaf.der" -outform DER \
	-out "$tmp/env.der" "$tmp/our.pem"
sel 1 "$tmp/env.der" "$corpus/fuzz_reply/envelope-aes128"
openssl cms -encrypt -binary -des3 -in "$tmp/bag-leaf.der" -outform DER \
	-out "$tmp/env3.der" "$tmp/our.pem"
sel 1 "$tmp/env3.der" "$corpus/fuzz_reply/envelope-des3"
sel 2 "$tmp/bag-leaf.der" "$corpus/fuzz_reply/bag-leaf"
sel 2 "$tmp/bag-next-ra.der" "$corpus/fuzz_reply/bag-three"
openssl crl2pkcs7 -nocrl -certfile "$tmp/leaf.pem" -certfile "$data/fuzz-ca.pem" \
	-outform DER -out "$tmp/bag2.der"
sel 2 "$tmp/bag2.der" "$corpus/fuzz_reply/bag-chain"

# The configuration file: a full profile, defaults and URL parts, a bad one.
cat > "$corpus/fuzz_conf/full" <<'CONF'
# p11scep.conf
[defaults]
module = /usr/lib/softhsm/libsofthsm2.so
key-type = rsa:3072
cipher = aes256
digest = sha512
renew-at = 75
strict = yes
timeout = 30

[profile web]
url = http://ca.example.com/scep
key = pkcs11:token=T;object=web?pin-source=file:/etc/p11scep/pin
subject = O=Example,CN=web.example.com
ca-fingerprint = AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89
challenge-file = /etc/p11scep/challenge
cert-out = /etc/ssl/web.pem
chain-out = /etc/ssl/web-chain.pem
dns = web.example.com, www.example.com
ip = 192.0.2.1
ip = 2001:db8::1
poll-interval = 120
max-poll-time = 3600
new-key-on-renew = no
import-chain = true
post-enroll-command = systemctl reload nginx ; reload

[profile vpn]
scheme = https
host = ca.example.com
port = 8443
cgi-path = /scep/pkiclient.exe
key = pkcs11:object=vpn;id=%01%02
subject = CN=vpn
ca-fingerprint = abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789
CONF
printf '\357\273\277[profile a]\r\nurl=http://x/\r\nkey=pkcs11:object=a\r\nsubject=CN=a\r\nca-fingerprint=%s\r\n' \
	0000000000000000000000000000000000000000000000000000000000000000 > "$corpus/fuzz_conf/bom-crlf"
printf '[profile bad name!]\nurl = ftp://x\n' > "$corpus/fuzz_conf/bad"
printf '; empty\n\n[defaults]\n' > "$corpus/fuzz_conf/empty"

# PKCS#11 URIs.
printf 'pkcs11:token=SoftHSM%%20Token;object=scep-key;type=private;id=%%01%%ab?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/tmp/pin' > "$corpus/fuzz_uri/full"
printf 'pkcs11:model=SoftHSM%%20v2;manufacturer=SoftHSM%%20project;serial=1234;token=t?pin-value=1234&module-name=softhsm2' > "$corpus/fuzz_uri/pinvalue"
printf 'PKCS11:object=a;x-vendor=1;id=%%zz' > "$corpus/fuzz_uri/bad"
printf 'pkcs11:' > "$corpus/fuzz_uri/empty"

# Transaction state: a complete file as txn_state_save writes it (the
# request's subject in hex), and one of an earlier version (the request).
openssl req -new -key "$tmp/k.pem" -subj "/O=p11scep test/CN=host" -out "$tmp/req.pem"
state_head() {
	printf '# p11scep pending SCEP transaction (no secrets)\n'
	printf 'version=1\ntxid=384955D4F36E8B0C396D22C9CABC1FE3D0B508599B9FBBB5A1852FB96E35DC79\n'
	printf 'url=http://127.0.0.1:8080/scep\nca-fingerprint=AB:CD\ncreated=1700000000\n'
	printf 'cert-out=/tmp/c.pem\nchain-out=/tmp/ch.pem\nimport-chain=1\nremove-old=0\n'
	printf 'new-key-id=0a1b2c3d\n'
}
{
	state_head
	# the request's subject: the SEQUENCE at depth 2, header and all
	name=$(openssl asn1parse -in "$tmp/req.pem" | awk '/d=2/ && /SEQUENCE/ {
		off = $1 + 0; sub(/.*hl=/, ""); split($0, f, /[ =]+/); print off, f[1] + f[3]; exit }')
	openssl asn1parse -in "$tmp/req.pem" -offset "${name% *}" -noout -out "$tmp/rest.der"
	printf 'subject=%s\n' "$(head -c "${name#* }" "$tmp/rest.der" | od -An -tx1 | tr -d ' \n')"
	cat "$unit/micromdm-success-signer.pem"
} > "$corpus/fuzz_state/complete"
{
	state_head
	cat "$unit/micromdm-success-signer.pem" "$tmp/req.pem"
} > "$corpus/fuzz_state/old-request"
printf 'version=2\ntxid=\nnew-key-id=zz\n-----BEGIN CERTIFICATE-----\n' > "$corpus/fuzz_state/bad"
echo "seeds written to $corpus"
