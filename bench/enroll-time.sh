#!/bin/bash
# Times p11scep enroll against a local scepserver and a SoftHSM2 token:
#   - enrollment with a new RSA-2048 key generated in the token (median of N)
#   - the token's key generation alone inside those runs (from -v timings)
#   - enrollment reusing an existing key (median of N)
# Prints figures; asserts nothing. Usage: bench/enroll-time.sh [N]   (default 5)
# Needs a built ./p11scep (or P11SCEP=path) and contrib/install-deps.sh's packages.
set -eu -o pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${1:-5}
export P11SCEP=${P11SCEP:-$ROOT/p11scep}
[ -x "$P11SCEP" ] || { echo "build p11scep first (or set P11SCEP)" >&2; exit 1; }
# shellcheck source=tests/integration/lib.sh
. "$ROOT/tests/integration/lib.sh"

setup_token
start_scepserver

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

run_enroll() {
	local label=$1 t0 t1
	t0=$(now_ms)
	"$P11SCEP" enroll -u "$URL" -k "$(key_uri "$label" "pin-source=file:$PIN_FILE")" \
		--subject "CN=bench-$label" --ca-fingerprint "$CA_FP" \
		--challenge-file "$CHALLENGE_FILE" -v >/dev/null 2>"$T/err"
	t1=$(now_ms)
	echo $((t1 - t0))
}

: >"$T/new" && : >"$T/keygen" && : >"$T/reuse"
for i in $(seq 1 "$N"); do
	run_enroll "new$i" >>"$T/new"
	sed -n 's/.*generated an RSA-2048 key in the token (\([0-9.]*\) ms).*/\1/p' "$T/err" >>"$T/keygen"
done
for i in $(seq 1 "$N"); do
	run_enroll new1 >>"$T/reuse"
done

printf '%-52s %10s\n' "p11scep enroll, SoftHSM2, local scepserver (N=$N)" "median ms"
printf '%-52s %10s\n' "enrollment with a new RSA-2048 key (whole process)" "$(median <"$T/new")"
printf '%-52s %10s\n' "  of which RSA-2048 key generation in the token" "$(median <"$T/keygen")"
printf '%-52s %10s\n' "enrollment reusing the key (whole process)" "$(median <"$T/reuse")"
