#!/usr/bin/env bash
# convert.sh: qimg convert against qemu-img convert on a realistic disk.
#
# Builds (once) a 4 GiB raw ext4 image holding the files of
# /usr/lib/x86_64-linux-gnu (about 1.1 GiB), then for each case runs
# qemu-img and qimg alternately RUNS times on the same work, checks every
# qimg result with `qemu-img compare` (and `qemu-img check` for qcow2),
# and prints the median wall time of each, the ratio qimg/qemu-img, the
# issue's target ratio, output sizes and peak memory (/usr/bin/time -v).
#
#   tests/bench/convert.sh [CASE...]     (default: every case)
#   RUNS=5 BENCH_DIR=/var/tmp/qimg-bench QIMG=./qimg tests/bench/convert.sh
#   NICE=-10 make bench     (both tools at a higher priority, as root: on a
#                            machine shared with other work, so the figures
#                            say something about the tools, not the load)
#
# Cases: raw-raw raw-qcow2 qcow2-raw zlib zlib-W zstd-W cqcow2-raw
#        raw-luks luks-raw (LUKS aes-256-xts, iter-time 100 ms for both)
# A case qimg cannot do yet is reported as "n/a" with qimg's message.
# Not part of `make check`: it takes minutes and needs ~10 GiB of disk.
set -u

here=$(cd "$(dirname "$0")" && pwd)
QIMG=${QIMG:-$here/../../qimg}
QIMG=$(cd "$(dirname "$QIMG")" && pwd)/$(basename "$QIMG")
RUNS=${RUNS:-3}
BENCH_DIR=${BENCH_DIR:-/var/tmp/qimg-bench}
DATA_DIR=${DATA_DIR:-/usr/lib/x86_64-linux-gnu}

die() { echo "convert.sh: $*" >&2; exit 1; }
command -v qemu-img >/dev/null || die "qemu-img is required (apt-get install qemu-utils)"
command -v mke2fs >/dev/null || command -v /sbin/mke2fs >/dev/null ||
	die "mke2fs is required (apt-get install e2fsprogs)"
[ -x "$QIMG" ] || die "build qimg first ($QIMG)"
mkdir -p "$BENCH_DIR" && cd "$BENCH_DIR" || die "cannot use $BENCH_DIR"

TIME=
[ -x /usr/bin/time ] && TIME=/usr/bin/time

# The source images, made once and kept between runs of the script.
prepare() {
	if [ ! -f disk.raw ]; then
		echo "building disk.raw: 4 GiB ext4 with $DATA_DIR" >&2
		PATH=$PATH:/sbin:/usr/sbin mke2fs -q -t ext4 -d "$DATA_DIR" disk.raw 4G ||
			die "mke2fs failed"
	fi
	[ -f disk.qcow2 ] || qemu-img convert -O qcow2 disk.raw disk.qcow2
	[ -f diskc.qcow2 ] || qemu-img convert -c -W -m 16 -O qcow2 disk.raw diskc.qcow2
	case " $cases " in *" luks-raw "*)
		[ -f diskl.qcow2 ] || qemu-img convert "${SECRET[@]}" -O qcow2 \
			-o "$LUKS_OPTS" disk.raw diskl.qcow2 ;;
	esac
}

# Encrypted cases: one secret, and qemu's LUKS defaults but a short
# key-derivation time (each tool spends it on every create).
SECRET=(--object secret,id=sec0,data=bench-passphrase)
LUKS_OPTS=encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=100
LUKS_SRC=driver=qcow2,file.filename=diskl.qcow2,encrypt.key-secret=sec0

# run_timed LOG CMD...: run CMD (at priority $NICE when set), leave
# "WALL CPU KB" in LOG (seconds, user+system seconds, peak RSS); fails
# with CMD.
run_timed() {
	local log=$1 t0 t1 rc
	shift
	[ -n "${NICE:-}" ] && set -- nice -n "$NICE" "$@"
	t0=$(date +%s.%N)
	if [ -n "$TIME" ]; then
		"$TIME" -f '%U %S %M' -o "$log.mem" "$@" > /dev/null 2> "$log.err"
	else
		"$@" > /dev/null 2> "$log.err"
	fi
	rc=$?
	t1=$(date +%s.%N)
	if [ -n "$TIME" ]; then
		echo "$(echo "$t1 - $t0" | bc) $(tail -n 1 "$log.mem" | awk '{ print $1 + $2, $3 }')" > "$log"
	else
		echo "$(echo "$t1 - $t0" | bc) 0 0" > "$log"
	fi
	return $rc
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maxcol() { awk -v c="$1" '$c > m { m = $c } END { print m + 0 }'; }

# case NAME TARGET SRC OUT QEMU-ARGS -- QIMG-ARGS
bench_case() {
	local name=$1 target=$2 src=$3 out=$4
	shift 4
	local qargs=() margs=() seen=0 a i
	for a in "$@"; do
		if [ "$a" = -- ]; then seen=1; continue; fi
		if [ $seen = 0 ]; then qargs+=("$a"); else margs+=("$a"); fi
	done
	: > "q.times"; : > "m.times"
	local qsize=0 msize=0 fail=
	for i in $(seq "$RUNS"); do
		# alternate who goes first, so neither always gets a warm cache
		local order="q m"
		[ $((i % 2)) = 0 ] && order="m q"
		for who in $order; do
			# Write back the last outputs first, then free their pages
			# and start at once: on a VM, pages freed a while ago may
			# have been handed back to the host and fault in slowly.
			sync
			rm -f "out.$who.$out"
			if [ $who = q ]; then
				# qemu's LUKS key calibration fails at random
				# ("Unable to get accurate CPU usage"): rerun
				local try
				for try in 1 2 3 4 5 6 7 8 9 10; do
					rm -f "out.q.$out"
					run_timed q.log qemu-img convert "${qargs[@]}" "$src" "out.q.$out" && break
					grep -q "Unable to get accurate CPU usage" q.log.err ||
						die "$name: qemu-img failed: $(cat q.log.err)"
				done
				[ -f "out.q.$out" ] || die "$name: qemu-img failed: $(cat q.log.err)"
				cat q.log >> q.times
				qsize=$(stat -c %s "out.q.$out")
			else
				if ! run_timed m.log "$QIMG" convert "${margs[@]}" "$src" "out.m.$out"; then
					fail=$(head -n 1 m.log.err)
					break 2
				fi
				cat m.log >> m.times
				msize=$(stat -c %s "out.m.$out")
				verify "$name" "$src" "out.m.$out" || fail="result differs or fails qemu-img check"
			fi
		done
	done
	if [ -n "$fail" ]; then
		printf '%-11s %8s %8s %6s %6s  n/a: %s\n' "$name" - - - "$target" "$fail"
	else
		local qt mt qc mc qm mm
		qt=$(awk '{ print $1 }' q.times | median)
		mt=$(awk '{ print $1 }' m.times | median)
		qc=$(awk '{ print $2 }' q.times | median)
		mc=$(awk '{ print $2 }' m.times | median)
		qm=$(maxcol 3 < q.times)
		mm=$(maxcol 3 < m.times)
		printf '%-11s %8.2f %8.2f %6.2f %6s  %6.2f %6.2f %5.2f  %4s/%-4s  %3s/%-3s\n' \
			"$name" "$qt" "$mt" "$(echo "$mt / $qt" | bc -l)" "$target" \
			"$qc" "$mc" "$(echo "$mc / $qc" | bc -l)" \
			$((qsize >> 20)) $((msize >> 20)) $((qm >> 10)) $((mm >> 10))
	fi
	rm -f "out.q.$out" "out.m.$out"
}

# Every case copies disk.raw's content.
verify() {
	local name=$1 src=$2 out=$3
	case $name in
	*-luks)
		local io=driver=qcow2,file.filename=$out,encrypt.key-secret=sec0
		qemu-img compare -q "${SECRET[@]}" --image-opts \
			driver=raw,file.filename=disk.raw "$io" || return 1
		qemu-img check -q "${SECRET[@]}" --image-opts "$io" || return 1
		return 0 ;;
	esac
	qemu-img compare -q disk.raw "$out" || return 1
	case $out in
	*.qcow2) qemu-img check -q "$out" || return 1 ;;
	esac
	return 0
}

cases=${*:-raw-raw raw-qcow2 qcow2-raw zlib zlib-W zstd-W cqcow2-raw raw-luks luks-raw}
prepare
echo "qimg convert vs qemu-img convert: $RUNS runs each, median seconds"
echo "disk.raw: 4 GiB ext4, $(du -m disk.raw | cut -f1) MiB allocated; $(nproc) cores"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)${NICE:+, runs at nice $NICE}"
echo "wall: median seconds; cpu: median user+system seconds; size MiB and peak RSS MiB: qemu-img/qimg"
printf '%-11s %8s %8s %6s %6s  %6s %6s %5s  %9s  %7s\n' case qemu-img qimg ratio target \
	q-cpu m-cpu ratio size rss
for c in $cases; do
	case $c in
	raw-raw) bench_case raw-raw - disk.raw o.raw -O raw -- -O raw ;;
	raw-qcow2) bench_case raw-qcow2 0.9 disk.raw o.qcow2 -O qcow2 -- -O qcow2 ;;
	qcow2-raw) bench_case qcow2-raw 0.9 disk.qcow2 o.raw -O raw -- -O raw ;;
	zlib) bench_case zlib 0.35 disk.raw o.qcow2 -c -O qcow2 -- -c -O qcow2 ;;
	zlib-W) bench_case zlib-W 0.6 disk.raw o.qcow2 -c -W -m 16 -O qcow2 -- -c -O qcow2 ;;
	zstd-W) bench_case zstd-W 0.8 disk.raw o.qcow2 -c -W -m 16 -O qcow2 -o compression_type=zstd -- -c -O qcow2 -o compression_type=zstd ;;
	cqcow2-raw) bench_case cqcow2-raw 0.7 diskc.qcow2 o.raw -O raw -- -O raw ;;
	raw-luks) bench_case raw-luks 1.0 disk.raw o.qcow2 "${SECRET[@]}" -O qcow2 -o "$LUKS_OPTS" -- \
		"${SECRET[@]}" -O qcow2 -o "$LUKS_OPTS" ;;
	luks-raw) bench_case luks-raw 1.0 "$LUKS_SRC" o.raw "${SECRET[@]}" --image-opts -O raw -- \
		"${SECRET[@]}" --image-opts -O raw ;;
	*) die "unknown case '$c'" ;;
	esac
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
