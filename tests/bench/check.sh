#!/bin/sh
# check.sh: qimg check against qemu-img check, side by side, on the image
# the issue names: qemu-img create -f qcow2 -o preallocation=metadata x 1T
# (16 Mi data clusters, 2048 L2 tables, 513 refcount blocks; sparse, about
# 160 MiB on disk).
#
#   tests/bench/check.sh [RUNS] [DIR]
#
# Runs both tools RUNS times (default 7), alternating, after one warm-up
# run each, and prints the median wall-clock time, the median CPU time
# (user + system) and the peak resident memory of each, and the ratios.
# Both see the same page cache.  The goal: qimg at most half of qemu-img's
# time, with no more memory.  DIR (default: a temporary directory) keeps
# the image between runs; it is removed only when the script made it.
set -eu

RUNS=${1:-7}
DIR=${2:-}
QIMG=${QIMG:-$(dirname "$0")/../../qimg}
command -v qemu-img >/dev/null || { echo "qemu-img is needed" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time (GNU time) is needed" >&2; exit 1; }

made=
if [ -z "$DIR" ]; then
	DIR=$(mktemp -d)
	made=1
fi
trap '[ -z "$made" ] || rm -rf "$DIR"' EXIT
IMG=$DIR/x.qcow2
[ -f "$IMG" ] || qemu-img create -q -f qcow2 -o preallocation=metadata "$IMG" 1T

# one TOOL: append "wall cpu rss_kib" to $DIR/TOOL.times
one() {
	tool=$1
	shift
	/usr/bin/time -f '%e %U %S %M' -o "$DIR/t" "$@" check "$IMG" >/dev/null
	awk '{ printf "%s %.2f %s\n", $1, $2 + $3, $4 }' "$DIR/t" >>"$DIR/$tool.times"
}

median() {
	sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

rm -f "$DIR/qemu.times" "$DIR/qimg.times"
qemu-img check "$IMG" >/dev/null
"$QIMG" check "$IMG" >/dev/null
i=0
while [ $i -lt "$RUNS" ]; do
	one qemu qemu-img
	one qimg "$QIMG"
	i=$((i + 1))
done
for t in qemu qimg; do
	eval "${t}_wall=\$(cut -d' ' -f1 $DIR/$t.times | median)"
	eval "${t}_cpu=\$(cut -d' ' -f2 $DIR/$t.times | median)"
	eval "${t}_rss=\$(cut -d' ' -f3 $DIR/$t.times | median)"
done
echo "1 TiB preallocation=metadata image, $RUNS runs each (medians)"
printf '%-9s %8s %8s %10s\n' tool wall_s cpu_s rss_kib
printf '%-9s %8s %8s %10s\n' qemu-img "$qemu_wall" "$qemu_cpu" "$qemu_rss"
printf '%-9s %8s %8s %10s\n' qimg "$qimg_wall" "$qimg_cpu" "$qimg_rss"
awk -v a="$qimg_wall" -v b="$qemu_wall" -v c="$qimg_cpu" -v d="$qemu_cpu" \
    -v e="$qimg_rss" -v f="$qemu_rss" \
    'BEGIN { printf "ratio qimg/qemu-img: wall %.2f, cpu %.2f, memory %.2f\n", a / b, c / d, e / f }'
