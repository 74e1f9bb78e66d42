#!/bin/sh
# run-cli.sh: run the bats CLI tests and end with one plain summary line,
# "cli: N passed, N failed, N skipped", so a log's last line says the result.
#
# Test images live on a tmpfs (/dev/shm) when there is one: qemu-img and the
# crash tests flush constantly, and on a real disk those flushes made the
# suite three to five times slower without testing anything more.  Set
# QIMG_TEST_TMPDIR to choose another place.  With GNU parallel installed,
# test files run in parallel (QIMG_TEST_JOBS, default the number of cores).
set -u
dir=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir/tmp"
tap="$dir/tmp/cli.tap"

base=${QIMG_TEST_TMPDIR:-}
if [ -z "$base" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	base=/dev/shm
fi
if [ -n "$base" ]; then
	TMPDIR=$(mktemp -d "$base/qimg-tests.XXXXXX") || exit 1
	export TMPDIR
	trap 'rm -rf "$TMPDIR"' EXIT INT TERM
fi

jobs=
if command -v parallel >/dev/null 2>&1; then
	jobs="--jobs ${QIMG_TEST_JOBS:-$(nproc)}"
fi

# shellcheck disable=SC2086
bats --print-output-on-failure $jobs "$@" "$dir/cli" | tee "$tap"
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
