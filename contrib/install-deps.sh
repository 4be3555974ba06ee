#!/bin/sh
# Installs everything p11scep needs to build and to run its tests on Debian 12.
# Uses sudo only when not run as root.
set -eu

PACKAGES="
build-essential autoconf automake pkg-config clang libclang-rt-14-dev
libssl-dev libp11-dev libp11-kit-dev libcurl4-openssl-dev libinih-dev libjson-c-dev libcmocka-dev
softhsm2 scep opensc p11-kit
curl openssl ca-certificates jq valgrind
iproute2 procps util-linux coreutils diffutils time socat gdb
swtpm swtpm-tools libtpm2-pkcs11-1 libtpm2-pkcs11-tools tpm2-tools strongswan-pki libstrongswan-extra-plugins
"

if [ "$(id -u)" -eq 0 ]; then
	SUDO=
elif command -v sudo >/dev/null 2>&1; then
	SUDO=sudo
else
	echo "install-deps.sh: run as root or install sudo" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
# shellcheck disable=SC2086 # one word per package
$SUDO apt-get install -y --no-install-recommends $PACKAGES
