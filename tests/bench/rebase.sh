#!/usr/bin/env bash
# rebase.sh: qimg rebase and resize against qemu-img on a realistic disk.
#
# Builds (once) a 4 GiB raw ext4 image holding the files of
# /usr/lib/x86_64-linux-gnu (about 1.1 GiB) and from it:
#   base1.qcow2  the disk with every other 2 MiB zeroed (half its data),
#   top.qcow2    a qcow2 over base1 holding the rest (the other chunks,
#                converted, then given base1 as backing with rebase -u),
#   base2.qcow2  the disk with the other 2 MiB chunks, shifted by 1 MiB,
#                zeroed: a different base sharing half of base1's data.
# Cases:
#   rebase    safe rebase of a copy of top.qcow2 from base1 onto base2
#             (target: qimg <= 0.7 x qemu-img);
#   flatten   safe rebase onto nothing (-b "");
#   resize    resize of a 1 TiB qcow2 (with data at both ends) to 2 TiB
#             (target: qimg <= qemu-img).
# The tools run alternately RUNS times each on a warm page cache (copies
# made outside the timing, sync before every run); every qimg result is
# checked with qemu-img check and compare against disk.raw.  Prints the
# median wall times, the ratio qimg/qemu-img and the target.
#
#   tests/bench/rebase.sh [CASE...]     (default: every case)
#   RUNS=5 BENCH_DIR=/var/tmp/qimg-rebase-bench tests/bench/rebase.sh
#
# Not part of `make check`: minutes, and ~8 GiB of disk.
set -u

here=$(cd "$(dirname "$0")" && pwd)
QIMG=${QIMG:-$here/../../qimg}
QIMG=$(cd "$(dirname "$QIMG")" && pwd)/$(basename "$QIMG")
RUNS=${RUNS:-3}
BENCH_DIR=${BENCH_DIR:-/var/tmp/qimg-rebase-bench}
DATA_DIR=${DATA_DIR:-/usr/lib/x86_64-linux-gnu}
CHUNK=$((2 << 20))

die() { echo "rebase.sh: $*" >&2; exit 1; }
command -v qemu-img >/dev/null || die "qemu-img is required (apt-get install qemu-utils)"
command -v fallocate >/dev/null || die "fallocate is required (util-linux)"
[ -x "$QIMG" ] || die "build qimg first ($QIMG)"
mkdir -p "$BENCH_DIR" && cd "$BENCH_DIR" || die "cannot use $BENCH_DIR"

# half SRC DST PHASE: copy SRC with every other CHUNK punched out,
# starting at byte PHASE.
half() {
	local size off
	cp --sparse=always "$1" "$2"
	size=$(stat -c %s "$2")
	for ((off = $3; off < size; off += 2 * CHUNK)); do
		fallocate -p -o "$off" -l "$CHUNK" "$2"
	done
}

prepare() {
	if [ ! -f disk.raw ]; then
		echo "building disk.raw: 4 GiB ext4 with $DATA_DIR" >&2
		PATH=$PATH:/sbin:/usr/sbin mke2fs -q -t ext4 -d "$DATA_DIR" disk.raw 4G ||
			die "mke2fs failed"
	fi
	if [ ! -f top.qcow2 ]; then
		echo "building base1.qcow2, base2.qcow2, top.qcow2" >&2
		half disk.raw h.raw 0
		qemu-img convert -O qcow2 h.raw base1.qcow2
		half disk.raw h.raw "$CHUNK"
		qemu-img convert -O qcow2 h.raw top.qcow2
		qemu-img rebase -u -b base1.qcow2 -F qcow2 top.qcow2
		half disk.raw h.raw $((CHUNK / 2))
		qemu-img convert -O qcow2 h.raw base2.qcow2
		rm -f h.raw
		qemu-img compare -q -F raw top.qcow2 disk.raw ||
			die 'top.qcow2 does not read as disk.raw'
	fi
	if [ ! -f big.qcow2 ]; then
		qemu-img create -q -f qcow2 big.qcow2 1T
		qemu-io -c "write -P 1 0 64M" -c "write -P 2 1023G 64M" big.qcow2 >/dev/null
	fi
}

now() { date +%s.%N; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# timed TIMES-FILE SETUP CMD...: run SETUP untimed, sync, then time CMD.
timed() {
	local out=$1 setup=$2 t0 t1
	shift 2
	eval "$setup"
	sync
	t0=$(now)
	"$@" >/dev/null 2>run.err || { cat run.err >&2; die "failed: $*"; }
	t1=$(now)
	echo "$t1 - $t0" | bc >>"$out"
}

# bench NAME TARGET SETUP VERIFY ARGS...: time "qemu-img ARGS" against
# "qimg ARGS"; VERIFY runs on each qimg result.
bench() {
	local name=$1 target=$2 setup=$3 verify=$4 i q m
	shift 4
	: >q.times
	: >m.times
	for ((i = 1; i <= RUNS; i++)); do
		if ((i % 2)); then
			timed q.times "$setup" qemu-img "$@"
			timed m.times "$setup" "$QIMG" "$@"
		else
			timed m.times "$setup" "$QIMG" "$@"
			timed q.times "$setup" qemu-img "$@"
		fi
		eval "$verify" || die "$name: qimg's result is wrong"
	done
	q=$(median <q.times)
	m=$(median <m.times)
	printf '%-8s qemu-img %7.3f s   qimg %7.3f s   ratio %5.2f   target <= %s\n' \
		"$name" "$q" "$m" "$(echo "$m / $q" | bc -l)" "$target"
}

verify_top() {
	qemu-img check -q w.qcow2 && qemu-img compare -q -F raw w.qcow2 disk.raw
}

prepare
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(rebase flatten resize)
echo "qemu-img: $(qemu-img --version | head -n 1)"
echo "qimg: $QIMG, $RUNS runs each, median wall time"
for c in "${cases[@]}"; do
	case $c in
	rebase)
		bench rebase 0.7 "cp top.qcow2 w.qcow2" verify_top \
			rebase -b base2.qcow2 -F qcow2 w.qcow2 ;;
	flatten)
		bench flatten - "cp top.qcow2 w.qcow2" verify_top \
			rebase -b "" w.qcow2 ;;
	resize)
		RUNS=$((RUNS * 3)) bench resize 1.0 "cp big.qcow2 w.qcow2" \
			"qemu-img check -q w.qcow2" resize w.qcow2 2T ;;
	*)
		die "unknown case $c" ;;
	esac
done
