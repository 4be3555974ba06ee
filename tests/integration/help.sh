# --help and the man page tell the same story: every option a command's
# --help lists is documented in man/p11scep.1, and every command is listed.
. "$TESTS_SRCDIR/integration/lib.sh"

man="$TESTS_SRCDIR/../man/p11scep.1"
[ -r "$man" ] || fail "man page $man missing"

"$P11SCEP" --help >"$T/overview" || fail "p11scep --help exited non-zero"
for cmd in $(awk '/^commands:/{on=1; next} on && /^  [a-z]/{print $1} /^$/{if(on) exit}' "$T/overview"); do
	grep -q "^\.Cm $cmd\$" "$man" || fail "command $cmd is not in the man page"
	"$P11SCEP" "$cmd" --help >"$T/help.$cmd" || fail "p11scep $cmd --help exited non-zero"
	for opt in $(grep -o -- '--[a-z][a-z0-9-]*' "$T/help.$cmd" | sort -u); do
		name=${opt#--}
		grep -q "Fl Fl $name\\b" "$man" || fail "$cmd: option $opt is not in the man page"
	done
done
# Exit codes in --help and the man page.
for code in 0 1 2 3 4 5 6 7; do
	grep -q "^\.It $code\$" "$man" || fail "exit status $code is not in the man page"
done
echo "help and man page agree"
