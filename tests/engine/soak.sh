#!/bin/sh
# soak.sh: the long version of tests/cli/45-engine.bats (make soak): the
# differential run over the whole matrix of image kinds for several seeds,
# and crashes after every N-th write (not a sample) for several kinds.
# Usage: tests/engine/soak.sh [FIRST_SEED [LAST_SEED]]; needs qemu-img and
# qemu-io.  Prints one line per run and ends with "soak: N runs, N failed".
set -u
fuzz=$(cd "$(dirname "$0")" && pwd)/qcow2-fuzz
first=${1:-1}
last=${2:-$((first + 4))}
work=$(mktemp -d "${TMPDIR:-/tmp}/qimg-soak.XXXXXX")
trap 'rm -rf "$work"' EXIT
runs=0 failed=0

# diff_run NAME OPTS SIZE SEED [fuzz options]
diff_run() {
	name=$1 opts=$2 size=$3 seed=$4
	shift 4
	d=$work/$name-$seed
	mkdir -p "$d" && cd "$d" || exit 1
	extra=
	case $opts in
	*backing*)
		qemu-img create -q -f qcow2 base.qcow2 "$size"
		qemu-io -c "write -P 0x5a 0 1M" -c "write -P 0xa5 3M 512k" base.qcow2 >/dev/null
		qemu-img convert -O raw base.qcow2 base.raw
		opts=$(echo "$opts" | sed 's/backing/backing_file=base.qcow2,backing_fmt=qcow2/')
		extra="--base base.raw"
		;;
	esac
	qemu-img create -q -f qcow2 -o "$opts" a.qcow2 "$size"
	runs=$((runs + 1))
	# shellcheck disable=SC2086
	if "$fuzz" run $extra --seed "$seed" "$@" a.qcow2 >out 2>err; then
		echo "ok   $name seed $seed"
		rm -rf "$d"
	else
		failed=$((failed + 1))
		echo "FAIL $name seed $seed ($d): $(tail -n 3 err)"
	fi
	cd "$work" || exit 1
}

# crash_all NAME OPTS SIZE SEED [fuzz options]: every N until the run ends.
crash_all() {
	name=$1 opts=$2 size=$3 seed=$4
	shift 4
	d=$work/crash-$name-$seed
	mkdir -p "$d" && cd "$d" || exit 1
	qemu-img create -q -f qcow2 -o "$opts" tmpl.qcow2 "$size"
	n=0 bad=0
	while :; do
		cp tmpl.qcow2 a.qcow2
		st=0
		QIMG_FAULT_AFTER_WRITES=$n "$fuzz" crash --seed "$seed" "$@" a.qcow2 log >/dev/null 2>err || st=$?
		if [ "$st" -ne 86 ] && [ "$st" -ne 0 ]; then
			bad=1
			echo "FAIL crash $name seed $seed N=$n: exit $st $(cat err)"
			break
		fi
		if ! "$fuzz" verify --seed "$seed" "$@" a.qcow2 log >/dev/null 2>err; then
			bad=1
			echo "FAIL crash $name seed $seed N=$n: $(cat err)"
			break
		fi
		[ "$st" -ne 0 ] || break
		n=$((n + 1))
	done
	runs=$((runs + 1))
	if [ "$bad" -eq 0 ]; then
		echo "ok   crash $name seed $seed ($n crash points)"
		rm -rf "$d"
	else
		failed=$((failed + 1))
	fi
	cd "$work" || exit 1
}

seed=$first
while [ "$seed" -le "$last" ]; do
	diff_run c512 cluster_size=512 4M "$seed" --ops 3000 --batch 300 --compressed --snapshots
	diff_run c4k cluster_size=4096 8389120 "$seed" --ops 3000 --batch 300 --qemu-io
	diff_run c64k cluster_size=65536 32M "$seed" --ops 3000 --batch 300 --snapshots --qemu-io
	diff_run c2m cluster_size=2M 96M "$seed" --ops 1000 --batch 200 --snapshots --compressed
	diff_run v2 compat=0.10,cluster_size=4096 8M "$seed" --ops 3000 --batch 300 --snapshots
	diff_run v2b backing,compat=0.10 16M "$seed" --ops 3000 --batch 300 --qemu-io
	diff_run rc1 refcount_bits=1,cluster_size=512 4M "$seed" --ops 3000 --batch 300 --compressed
	diff_run rc64 refcount_bits=64,cluster_size=4096 8M "$seed" --ops 3000 --batch 300 --snapshots
	diff_run xl2 extended_l2=on 16M "$seed" --ops 3000 --batch 300 --snapshots --compressed
	diff_run xl2b backing,extended_l2=on,cluster_size=16384 8389120 "$seed" --ops 3000 --batch 300 --qemu-io
	diff_run xl2m extended_l2=on,cluster_size=2M 96M "$seed" --ops 1000 --batch 200 --snapshots
	diff_run zstd compression_type=zstd,cluster_size=4096 8M "$seed" --ops 3000 --batch 300 --compressed
	diff_run lazy lazy_refcounts=on 16778752 "$seed" --ops 3000 --batch 300 --snapshots --compressed
	diff_run df data_file=a.raw,cluster_size=4096 8M "$seed" --ops 3000 --batch 300
	diff_run dfx data_file=a.raw,extended_l2=on 16M "$seed" --ops 3000 --batch 300
	crash_all c64k cluster_size=65536 8M "$seed" --ops 200
	crash_all c512 cluster_size=512 2M "$seed" --ops 200 --compressed
	crash_all xl2 extended_l2=on 8M "$seed" --ops 200
	crash_all lazy lazy_refcounts=on,cluster_size=4096 4M "$seed" --ops 200 --compressed
	seed=$((seed + 1))
done
echo "soak: $runs runs, $failed failed"
[ "$failed" -eq 0 ]
