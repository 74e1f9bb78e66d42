#!/bin/sh
# run-cli.sh: run the bats CLI tests and end with one plain summary line,
# "cli: N passed, N failed, N skipped", so a log's last line says the result.
# Exits with bats' own status.
set -u
dir=$(dirname "$0")
mkdir -p "$dir/tmp"
tap="$dir/tmp/cli.tap"
bats --print-output-on-failure "$@" "$dir/cli" | tee "$tap"
[ -f "$tap" ] || exit 1
# bats' exit status is lost in the pipe under plain sh: recompute it from
# the TAP stream, including the plan, so a bats run that stopped early fails.
planned=$(sed -n 's/^1\.\.\([0-9]*\)$/\1/p' "$tap" | head -n 1)
failed=$(grep -c '^not ok' "$tap")
skipped=$(grep -c '^ok .* # skip' "$tap")
passed=$(($(grep -c '^ok' "$tap") - skipped))
echo "cli: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ] || exit 1
[ "${planned:-0}" -eq $((passed + failed + skipped)) ] || {
	echo "cli: bats planned ${planned:-?} tests but reported $((passed + failed + skipped))" >&2
	exit 1
}
exit 0
