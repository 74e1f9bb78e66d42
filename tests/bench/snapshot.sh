#!/bin/sh
# snapshot.sh: "snapshot -c" on a 1 TiB metadata-preallocated qcow2 image
# (16 Mi data clusters, 2048 L2 tables, 512 refcount blocks), qimg and
# qemu-img side by side, each on its own fresh copy of the same image,
# alternating, RUNS times; prints every time and the medians.  Then the
# same for apply and delete on the images the creates left.
#
#   tests/bench/snapshot.sh [RUNS]     (QIMG=path/to/qimg, TMPDIR=...)
#
# Needs qemu-img and ~1.5 GB of free disk space (the images are sparse).
set -eu
runs=${1:-3}
here=$(cd "$(dirname "$0")" && pwd)
qimg=${QIMG:-$here/../../qimg}
dir=$(mktemp -d "${TMPDIR:-/tmp}/qimg-bench.XXXXXX")
trap 'rm -rf "$dir"' EXIT INT TERM

# seconds CMD...: wall time of CMD, in seconds with 3 decimals.
seconds() {
	s=$(date +%s.%N)
	"$@" >/dev/null
	e=$(date +%s.%N)
	echo "$s $e" | awk '{ printf "%.3f\n", $2 - $1 }'
}

median() {
	sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

qemu-img create -q -f qcow2 -o preallocation=metadata "$dir/tmpl.qcow2" 1T
: >"$dir/q.times"
: >"$dir/m.times"
for op in "-c s1" "-a s1" "-d s1"; do
	: >"$dir/q.t"
	: >"$dir/m.t"
	i=0
	while [ "$i" -lt "$runs" ]; do
		for tool in q m; do
			img=$dir/$tool$i.qcow2
			[ "$op" != "-c s1" ] || cp --sparse=always "$dir/tmpl.qcow2" "$img"
			sync
			if [ "$tool" = q ]; then
				# shellcheck disable=SC2086
				seconds qemu-img snapshot $op "$img" >>"$dir/q.t"
			else
				# shellcheck disable=SC2086
				seconds "$qimg" snapshot $op "$img" >>"$dir/m.t"
			fi
			qemu-img check -q "$img"
		done
		i=$((i + 1))
	done
	q=$(median <"$dir/q.t")
	m=$(median <"$dir/m.t")
	printf 'snapshot %s: qemu-img %s s, qimg %s s (runs: qemu-img %s; qimg %s), qimg/qemu-img = %s\n' \
		"$op" "$q" "$m" "$(tr '\n' ' ' <"$dir/q.t")" "$(tr '\n' ' ' <"$dir/m.t")" \
		"$(echo "$m $q" | awk '{ printf "%.2f", $1 / $2 }')"
done
