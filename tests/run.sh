#!/bin/bash
# The project's one test command (README and CI run exactly this).
#
# Two out-of-tree builds from a fresh autoreconf, each built and checked:
#   build-check/  --enable-werror, -O2 -g
#   build-asan/   --enable-werror, AddressSanitizer + UBSan + LeakSanitizer
# Prints the logs of failing tests, then one last line "N passed, N failed"
# (totals over both builds) and exits non-zero if anything failed.

set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JOBS=${JOBS:-2}
PASSED=0
FAILED=0

say() {
	printf '\n===== %s =====\n' "$*"
}

# count_results DIR: adds the results of DIR's .trs files to the totals and
# prints the .log of each test that did not pass.
count_results() {
	local dir=$1 trs res log
	while IFS= read -r trs; do
		res=$(sed -n 's/^:test-result: *//p' "$trs" | head -n 1)
		case $res in
		PASS | XFAIL)
			PASSED=$((PASSED + 1))
			;;
		*)
			# FAIL, ERROR, XPASS, and SKIP too: our tests never skip, a
			# skip means something needed was not there.
			FAILED=$((FAILED + 1))
			log=${trs%.trs}.log
			say "${res:-NO RESULT}: ${trs#"$ROOT"/} ($log)"
			cat "$log" 2>/dev/null || echo "(no log)"
			;;
		esac
	done < <(find "$dir" -name '*.trs' | sort)
}

# build NAME CFLAGS [env for make check...]
build() {
	local name=$1 cflags=$2 dir ntrs
	shift 2
	dir=$ROOT/build-$name
	say "$name: configure (CFLAGS=$cflags)"
	rm -rf "$dir"
	mkdir -p "$dir" || return 1
	if ! (cd "$dir" && ../configure --enable-werror CFLAGS="$cflags"); then
		echo "build-$name: configure failed (see $dir/config.log)"
		FAILED=$((FAILED + 1))
		return 1
	fi
	say "$name: make"
	if ! make -C "$dir" -j"$JOBS"; then
		echo "build-$name: make failed"
		FAILED=$((FAILED + 1))
		return 1
	fi
	say "$name: make check"
	local rc=0
	(cd "$dir" && env "$@" make -j"$JOBS" check) || rc=$?
	local before=$FAILED
	count_results "$dir"
	ntrs=$(find "$dir" -name '*.trs' | wc -l)
	# make check can fail before any test ran (a test program that does
	# not compile): count that as a failure of its own.
	if [ "$rc" -ne 0 ] && [ "$FAILED" -eq "$before" ]; then
		echo "build-$name: make check failed (status $rc) with $ntrs test results and none failing"
		FAILED=$((FAILED + 1))
	fi
	if [ -f "$dir/test-suite.log" ] && [ "$FAILED" -ne "$before" ]; then
		say "$name: test-suite.log summary"
		sed -n '1,/^\.\. contents::/p' "$dir/test-suite.log"
	fi
}

cd "$ROOT" || exit 1

if [ -f "$ROOT/config.status" ]; then
	echo "run.sh: $ROOT is configured in-tree (config.status exists), so out-of-tree" \
		"builds are refused: run 'make distclean' there first" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

say "autoreconf"
if ! autoreconf -fi; then
	echo "autoreconf failed: run contrib/install-deps.sh"
	echo "0 passed, 1 failed"
	exit 1
fi

build check "-O2 -g"

SAN="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"
build asan "$SAN" \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0" \
	UBSAN_OPTIONS=print_stacktrace=1

# libFuzzer harnesses of every parser of outside input, for a bounded time each.
say "fuzz: ${FUZZ_SECONDS:-20} s per harness"
if FUZZ_BUILD="$ROOT/build-fuzz" sh "$ROOT/tests/fuzz/run.sh" "${FUZZ_SECONDS:-20}"; then
	PASSED=$((PASSED + 1))
else
	echo "fuzz: a harness failed (see above)"
	FAILED=$((FAILED + 1))
fi

echo
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
