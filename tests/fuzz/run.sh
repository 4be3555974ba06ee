#!/bin/sh
# Builds the libFuzzer harnesses and runs each for SECONDS (default 20) on a
# temporary copy of its seed corpus (the committed corpus is never written).
# Prints one line per harness: name, executions, coverage (libFuzzer's final
# cov:), result. Exits non-zero on any crash, leak, timeout, out-of-memory or
# sanitizer report; the failing harness's log and input are kept and named.
#   usage: tests/fuzz/run.sh [SECONDS]
# FUZZ_BUILD (build directory, default tests/fuzz/build) and FUZZ_HARNESSES
# (a space-separated subset) may be set.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
secs=${1:-20}
case $secs in
'' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
build=${FUZZ_BUILD:-$here/build}
harnesses=${FUZZ_HARNESSES:-"fuzz_caps fuzz_ca fuzz_nextca fuzz_reply fuzz_conf fuzz_uri fuzz_state"}

"$here/build.sh" "$build"

work=$(mktemp -d /tmp/p11scep-fuzz-XXXXXX)
failed=0
# Sanitizer reports must end the run: no recovery, leaks checked at exit.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

printf '%-12s %12s %8s  %s\n' harness execs cov result
for h in $harnesses; do
	dir=$work/$h
	mkdir -p "$dir/corpus" "$dir/artifacts"
	if [ -d "$here/corpus/$h" ]; then
		cp "$here/corpus/$h/." "$dir/corpus/" -R
	fi
	rc=0
	"$build/$h" "$dir/corpus" -max_total_time="$secs" -max_len=65536 \
		-rss_limit_mb=2048 -timeout=25 -print_final_stats=1 \
		-artifact_prefix="$dir/artifacts/" > "$dir/log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -n 1)
	cov=$(sed -n 's/.* cov: \([0-9]*\) .*/\1/p' "$dir/log" | tail -n 1)
	result=ok
	if [ "$rc" -ne 0 ] ||
	    grep -q -e 'ERROR: AddressSanitizer' -e 'ERROR: LeakSanitizer' \
		-e 'runtime error:' -e 'ERROR: libFuzzer' -e '==ERROR' "$dir/log" ||
	    [ -n "$(ls -A "$dir/artifacts")" ]; then
		result="FAILED (exit $rc): log $dir/log, input $(ls "$dir/artifacts" | head -n 1)"
		failed=1
	fi
	printf '%-12s %12s %8s  %s\n' "$h" "${execs:-?}" "${cov:-?}" "$result"
done

if [ "$failed" -ne 0 ]; then
	echo "fuzzing found problems: logs and inputs kept in $work" >&2
	exit 1
fi
rm -rf "$work"
