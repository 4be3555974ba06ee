#!/bin/sh
# Builds the libFuzzer harnesses of tests/fuzz/ with clang into BUILDDIR
# (default tests/fuzz/build). Each harness links only the sources it fuzzes.
# Works in a configured tree (uses its config.h) and in a fresh clone (writes
# a minimal config.h into BUILDDIR). Needs clang and libclang-rt-*-dev.
#   usage: tests/fuzz/build.sh [BUILDDIR]
# CC, EXTRA_CFLAGS and FUZZ_WERROR=1 (add -Werror) may be set.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${1:-$here/build}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cc=${CC:-clang}

command -v "$cc" >/dev/null 2>&1 || {
	echo "build.sh: $cc not found (apt-get install clang libclang-rt-14-dev)" >&2
	exit 1
}
pkgs="libcrypto inih"
for p in $pkgs; do
	pkg-config --exists "$p" || { echo "build.sh: pkg-config cannot find $p" >&2; exit 1; }
done

# config.h: the configured tree's, else a minimal one (only these are used).
if [ -f "$top/config.h" ]; then
	cfg_inc=-I$top
else
	version=$(sed -n 's/^AC_INIT(\[p11scep\], \[\([^]]*\)\].*/\1/p' "$top/configure.ac")
	module=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)/p11-kit-proxy.so
	cat > "$out/config.h.new" <<CFG
/* Written by tests/fuzz/build.sh for an unconfigured tree. */
#define PACKAGE "p11scep"
#define PACKAGE_NAME "p11scep"
#define PACKAGE_VERSION "${version:-0}"
#define PACKAGE_STRING "p11scep ${version:-0}"
#define P11SCEP_DEFAULT_MODULE "$module"
CFG
	mv "$out/config.h.new" "$out/config.h"
	cfg_inc=-I$out
fi

warn="-Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes"
[ "${FUZZ_WERROR:-0}" = 1 ] && warn="$warn -Werror"
# shellcheck disable=SC2086
cflags="-std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
	-fno-omit-frame-pointer $warn -D_GNU_SOURCE $cfg_inc -I$top/src -I$top/engines -I$here
	-DFUZZ_SRCDIR=\"$top\" $(pkg-config --cflags $pkgs) ${EXTRA_CFLAGS:-}"
libs="$(pkg-config --libs $pkgs)"

# harness: the sources it needs besides itself (paths under the tree).
build() {
	name=$1
	shift
	srcs="$here/$name.c"
	for s in "$@"; do
		srcs="$srcs $top/$s"
	done
	echo "  CCLD   $out/$name"
	# shellcheck disable=SC2086
	$cc $cflags -o "$out/$name" $srcs $libs
}

c=tests/fuzz/fuzz_common.c
build fuzz_caps src/caps.c src/err.c $c
build fuzz_ca src/scep_ca.c src/err.c $c
build fuzz_nextca src/scep_ca.c src/err.c $c
build fuzz_reply src/scep_msg.c src/err.c $c
build fuzz_conf src/conf.c src/caps.c src/csr.c src/err.c engines/keyspec.c $c
build fuzz_uri engines/uri.c src/err.c $c
build fuzz_state src/txn_state.c src/output.c src/err.c $c
