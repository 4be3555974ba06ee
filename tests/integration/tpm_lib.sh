# shellcheck shell=bash
# Sourced after lib.sh by tests that keep keys in a TPM 2.0: a software TPM
# (swtpm, the one QEMU and libvirt use) on loopback ports, and a tpm2-pkcs11
# token in the test's temp dir. No kernel TPM, D-Bus or resource manager.
#
# Traps measured with swtpm 0.7.1 and tpm2-pkcs11 1.9.0 (see TOKEN-NOTES.md):
# - Without a resource manager the TPM has three object slots. tpm2_ptool runs
#   one tpm2 tool after another and each leaves its objects loaded, so
#   addtoken fails with 0x902 unless every tool is followed by
#   tpm2_flushcontext -t: wrapper scripts go first in PATH.
# - Three wrong PINs lock the TPM for 1000 s, even for the right PIN: the
#   dictionary lockout is turned off for tests.
# - Nothing flushes what a process leaves loaded in the TPM (a crash, or a
#   loaded key destroyed through the module): the next one then fails with
#   0x902. tpm_assert_clean checks that each step left the TPM empty.
# - With --daemon, swtpm changes to / first: a relative --tpmstate dir puts the
#   TPM into failure mode (0x101). We run it as our child instead.
# - The swtpm TCTI finds the control channel at the TPM port + 1.
# - Not safe for concurrent processes: each test has its own swtpm, and the
#   steps of a test take turns.

# shellcheck disable=SC2034 # read by the tests that source this file
TPM_MODULE=${TPM_MODULE:-/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so}
TPM_LABEL=p11scep-tpm
TPM_PIN=1234
TPM_SO_PIN=5678
TPM_DIR=

need_tool swtpm swtpm
need_tool tpm2_ptool libtpm2-pkcs11-tools
need_tool tpm2_flushcontext tpm2-tools
need_tool tpm2_getcap tpm2-tools
need_tool tpm2_dictionarylockout tpm2-tools
[ -f "$TPM_MODULE" ] ||
	fail "$TPM_MODULE not found: install the Debian package libtpm2-pkcs11-1"

# Milliseconds since the epoch, for the timings the tests print.
now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# The tpm2 tools tpm2_ptool runs (tpm2_pkcs11/tpm2.py), each wrapped to flush
# the TPM's transient objects after it.
TPM_PTOOL_TOOLS="tpm2_changeauth tpm2_create tpm2_createprimary tpm2_encryptdecrypt
tpm2_evictcontrol tpm2_getcap tpm2_import tpm2_load tpm2_loadexternal tpm2_readpublic
tpm2_sign tpm2_unseal"

tpm_wrappers() {
	local tool real
	mkdir -p "$TPM_DIR/bin"
	for tool in $TPM_PTOOL_TOOLS; do
		real=$(command -v "$tool") || fail "$tool not found: install the Debian package tpm2-tools"
		cat >"$TPM_DIR/bin/$tool" <<-EOF
		#!/bin/sh
		"$real" "\$@"
		rc=\$?
		tpm2_flushcontext -t >/dev/null 2>&1
		exit \$rc
		EOF
		chmod +x "$TPM_DIR/bin/$tool"
	done
}

# start_tpm: swtpm on two free loopback ports (TPM and control channel), a
# child of this shell that lib.sh's EXIT trap stops. Sets TPM_PORT,
# TPM2TOOLS_TCTI and TPM2_PKCS11_TCTI.
start_tpm() {
	local attempt pid port ctrl up
	TPM_DIR=$T/tpm
	mkdir -p "$TPM_DIR/state"
	for attempt in 1 2 3 4 5; do
		port=$(free_port)
		ctrl=$((port + 1))	# the swtpm TCTI looks for the control channel there
		! port_in_use "$ctrl" || continue
		swtpm socket --tpm2 --tpmstate dir="$TPM_DIR/state" \
			--server type=tcp,port="$port",bindaddr=127.0.0.1 \
			--ctrl type=tcp,port="$ctrl",bindaddr=127.0.0.1 \
			--flags not-need-init,startup-clear >"$TPM_DIR/swtpm.log" 2>&1 &
		pid=$!
		export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$port"
		up=0
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			if tpm2_getcap properties-fixed >/dev/null 2>&1; then
				up=1
				break
			fi
			sleep 0.05
		done
		# The TPM that answered must be ours: still alive after it did.
		if [ "$up" = 1 ] && kill -0 "$pid" 2>/dev/null; then
			SCEP_PIDS+=("$pid")
			TPM_PORT=$port
			export TPM2_PKCS11_TCTI=$TPM2TOOLS_TCTI TPM_PORT
			return 0
		fi
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		echo "swtpm on port $port did not come up (attempt $attempt): $(tail -n 1 "$TPM_DIR/swtpm.log")" >&2
	done
	fail "swtpm did not start after 5 attempts"
}

# tpm_run LOG CMD...: runs a tpm2 / tpm2_ptool command, its output in LOG.
tpm_run() {
	local log=$1
	shift
	if ! PATH="$TPM_DIR/bin:$PATH" "$@" >"$log" 2>&1; then
		show_file "$1" "$log"
		fail "$* failed"
	fi
}

# tpm_token: the tpm2-pkcs11 store in $TPM_DIR/store with one token
# $TPM_LABEL (user PIN $TPM_PIN), PIN file $TPM_PIN_FILE.
tpm_token() {
	local pid
	tpm_wrappers
	export TPM2_PKCS11_STORE=$TPM_DIR/store
	mkdir -p "$TPM2_PKCS11_STORE"
	tpm_run "$TPM_DIR/lockout.log" tpm2_dictionarylockout --setup-parameters \
		--max-tries=4294967295 --recovery-time=0 --lockout-recovery-time=0
	tpm_run "$TPM_DIR/init.log" tpm2_ptool init --path "$TPM2_PKCS11_STORE"
	pid=$(awk '$1 == "id:" { print $2 }' "$TPM_DIR/init.log")
	[ -n "$pid" ] || { show_file "tpm2_ptool init" "$TPM_DIR/init.log"; fail "tpm2_ptool init printed no id"; }
	tpm_run "$TPM_DIR/addtoken.log" tpm2_ptool addtoken --pid "$pid" --label "$TPM_LABEL" \
		--userpin "$TPM_PIN" --sopin "$TPM_SO_PIN" --path "$TPM2_PKCS11_STORE"
	TPM_PIN_FILE=$T/tpm-pin
	(umask 077 && printf '%s\n' "$TPM_PIN" >"$TPM_PIN_FILE")
	export TPM_PIN_FILE
	tpm_assert_clean "creating the token"
}

# use_tpm_token: lib.sh's token helpers (p11t, tok_*, key_uri) work on the
# TPM token from now on.
use_tpm_token() {
	SOFTHSM_MODULE=$TPM_MODULE
	TOKEN_LABEL=$TPM_LABEL
	TOKEN_PIN=$TPM_PIN
	PIN_FILE=$TPM_PIN_FILE
	export TOKEN_PIN PIN_FILE
}

# tpm_assert_clean WHAT: no transient object or session is left in the TPM
# after WHAT (each process must finalize the module).
tpm_assert_clean() {
	local left
	left=$(tpm2_getcap handles-transient 2>&1; tpm2_getcap handles-loaded-session 2>&1)
	if [ -n "$left" ]; then
		tpm2_flushcontext -t -l -s >/dev/null 2>&1 || true
		fail "after $1 the TPM still holds: $(printf '%s' "$left" | tr '\n' ' ')"
	fi
}
