#!/usr/bin/env bats
# The qcow2 read/write engine, judged by qemu: reads of every cluster kind
# qemu writes, block status against qemu-img map, a seeded differential run
# per image kind (qemu-img check and compare after every batch), crashes
# injected after every N-th write, memory on a 1 TiB image, and the error
# paths.  The driver is tests/engine/qcow2-fuzz (qcow2_fuzz.c); a failing
# run prints its seed, and QFUZZ_TRACE=1 lists the operations.

load helper

FUZZ=${QCOW2_FUZZ:-$BATS_TEST_DIRNAME/../engine/qcow2-fuzz}

fuzz() {
	"$FUZZ" "$@"
}

# A big-endian u64 (bit 63 included: helper's peek_be64 clamps it).
peek64() {
	echo $(( 16#$(od -An -tx1 -j "$(($2))" -N 8 "$1" | tr -d ' \n') ))
}

# The L2 entry of guest cluster N (64 KiB clusters, first L2 table).
l2_entry_off() {
	local l1 l2
	l1=$(peek64 "$1" 40)
	l2=$(( $(peek64 "$1" "$l1") & 0x00fffffffffffe00 ))
	echo $(( l2 + $2 * 8 ))
}

# A raw file with random and compressible parts.
mixed_raw() {
	head -c "$2" /dev/urandom >"$1"
	yes "qimg engine test line" | head -c "$2" >>"$1"
}

# differential NAME CREATE_OPTS SIZE [fuzz options]: "backing" in the
# options makes a backing file with data first.
differential() {
	local opts=$2 size=$3 args=()
	shift 3
	if [[ $opts == *backing* ]]; then
		qemu-img create -q -f qcow2 base.qcow2 "$size"
		qemu-io -c "write -P 0x5a 0 1M" -c "write -P 0xa5 3M 512k" base.qcow2 >/dev/null
		qemu-img convert -O raw base.qcow2 base.raw
		opts=${opts/backing/backing_file=base.qcow2,backing_fmt=qcow2}
		args=(--base base.raw)
	fi
	qemu-img create -q -f qcow2 -o "$opts" a.qcow2 "$size"
	run fuzz run "${args[@]}" "$@" a.qcow2
	echo "$output"
	[ "$status" -eq 0 ]
	[[ ${lines[-1]} == *": ok" ]]
}

# crash_points LAST COUNT: the first 10 write counts, then COUNT more
# spread up to LAST (tests/engine/soak.sh tries every one).
crash_points() {
	seq 0 9
	awk -v last="$1" -v n="$2" 'BEGIN { for (i = 1; i <= n; i++) print int(10 + (last - 10) * i / n) }'
}

# crash_at N [fuzz options]: a copy of tmpl.qcow2 as a.qcow2, the run
# killed after N writes, then verified.  Returns 2 when the run ended
# before N writes (nothing left to try).
crash_at() {
	local n=$1 st=0
	shift
	cp tmpl.qcow2 a.qcow2
	QIMG_FAULT_AFTER_WRITES=$n fuzz crash "$@" a.qcow2 log >/dev/null 2>err || st=$?
	if [ "$st" -ne 86 ] && [ "$st" -ne 0 ]; then
		echo "N=$n: crash run exited $st: $(cat err)"
		return 1
	fi
	fuzz verify "$@" a.qcow2 log >out 2>err || {
		echo "N=$n: $(cat err)"
		return 1
	}
	[ "$st" -ne 0 ] || return 2
}

# crashes CREATE_OPTS SIZE LAST COUNT [fuzz options]: kill the run after
# N writes for N from crash_points; each image must pass verification
# (qemu-img check finds no corruption, flushed data intact).
crashes() {
	local opts=$1 size=$2 last=$3 count=$4 n st runs=0
	shift 4
	qemu-img create -q -f qcow2 -o "$opts" tmpl.qcow2 "$size"
	[ -z "${TEMPLATE_CMD:-}" ] || eval "$TEMPLATE_CMD"
	for n in $(crash_points "$last" "$count"); do
		st=0
		crash_at "$n" "$@" || st=$?
		[ "$st" -ne 1 ] || return 1
		runs=$((runs + 1))
		[ "$st" -ne 2 ] || break
	done
	echo "$runs crash points verified"
	[ "$runs" -ge 10 ]
}

@test "compressed clusters written by qemu-img read back for zlib and zstd at every cluster size" {
	need_qemu
	mixed_raw r.raw 1M
	for ct in zlib zstd; do
		for cs in 512 4096 65536 2M; do
			qemu-img convert -c -O qcow2 -o compression_type=$ct,cluster_size=$cs r.raw c.qcow2
			fuzz cat c.qcow2 c.raw
			cmp c.raw r.raw
		done
	done
}

@test "subclusters, zero clusters and a backing file shorter than the image read as qemu reads them" {
	need_qemu
	qemu-img create -q -f qcow2 base.qcow2 1M
	qemu-io -c "write -P 7 0 1M" base.qcow2 >/dev/null
	for extl2 in on off; do
		rm -f top.qcow2
		qemu-img create -q -f qcow2 -o extended_l2=$extl2 -b base.qcow2 -F qcow2 top.qcow2 4M
		qemu-io -c "write -P 1 4k 5k" -c "write -z 32k 16k" -c "write -P 2 70k 100k" \
			-c "write -z -u 256k 64k" -c "discard 512k 128k" -c "write -P 3 960k 128k" \
			top.qcow2 >/dev/null
		fuzz cat top.qcow2 ours.raw
		qemu-img convert -O raw top.qcow2 qemu.raw
		cmp ours.raw qemu.raw
	done
}

# Partial clusters are avoided: qemu leaves holes in the file where it
# copies zeros, and its map then reports file holes as zeros (a protocol
# level probe, not qcow2 block status).
@test "block status matches qemu-img map for normal, zero, compressed and unallocated clusters" {
	need_qemu
	for opts in cluster_size=65536 extended_l2=on cluster_size=512 compat=0.10; do
		rm -f m.qcow2
		part="512k 64k"
		[ $opts != extended_l2=on ] || part="520k 4k"
		qemu-img create -q -f qcow2 -o $opts m.qcow2 2M
		qemu-io -c "write -P 1 0 64k" -c "write -z 128k 64k" -c "write -c -P 3 256k 64k" \
			-c "write -P 4 $part" -c "write -z -u 1M 128k" -c "write -P 5 1280k 640k" \
			m.qcow2 >/dev/null
		fuzz map m.qcow2 >ours.json
		qemu-img map --output=json m.qcow2 >qemu.json
		diff ours.json qemu.json
	done
}

@test "an external data file is read and written in place, a raw one stays a raw image" {
	need_qemu
	differential df data_file=a.raw,cluster_size=4096 4M --ops 600 --batch 200 --seed 11
	rm -f a.qcow2 a.raw
	differential dfraw data_file=a.raw,data_file_raw=on,extended_l2=on 8M --ops 600 --batch 200 --seed 12
	cmp a.raw a.qcow2.model
}

@test "differential: 64 KiB clusters (defaults), qemu-io taking turns" {
	need_qemu
	differential std cluster_size=65536 16M --ops 2000 --batch 250 --seed 1 --qemu-io
}

@test "differential: 512-byte clusters, an odd size, compressed writes, snapshots" {
	need_qemu
	differential c512 cluster_size=512 3001344 --ops 1500 --batch 250 --seed 2 --compressed --snapshots
}

@test "differential: 4 KiB clusters, refcount_bits=1, compressed writes" {
	need_qemu
	differential rc1 cluster_size=4096,refcount_bits=1 4M --ops 1500 --batch 250 --seed 3 --compressed
}

@test "differential: 2 MiB clusters, snapshots" {
	need_qemu
	differential c2m cluster_size=2M 48M --ops 500 --batch 125 --seed 4 --snapshots
}

@test "differential: refcount_bits=64, zstd, compressed writes, snapshots" {
	need_qemu
	differential rc64 refcount_bits=64,compression_type=zstd,cluster_size=4096 4M \
		--ops 1500 --batch 250 --seed 5 --compressed --snapshots
}

@test "differential: version 2 over a backing file, snapshots" {
	need_qemu
	differential v2 backing,compat=0.10,cluster_size=4096 4M --ops 1500 --batch 250 --seed 6 --snapshots
}

@test "differential: extended L2 over a backing file, an odd size, snapshots, qemu-io taking turns" {
	need_qemu
	differential xl2 backing,extended_l2=on 5000192 --ops 1500 --batch 250 --seed 7 --snapshots --qemu-io
}

@test "differential: extended L2 with 2 MiB clusters, compressed writes" {
	need_qemu
	differential xl2m extended_l2=on,cluster_size=2M 48M --ops 500 --batch 125 --seed 8 --compressed
}

@test "differential: lazy refcounts, snapshots, compressed writes" {
	need_qemu
	differential lazy lazy_refcounts=on,cluster_size=4096 4M --ops 1500 --batch 250 --seed 9 \
		--snapshots --compressed
}

@test "crash after every N-th write: 64 KiB clusters leave no corruption and keep flushed data" {
	need_qemu
	crashes cluster_size=65536 8M 400 20 --ops 300 --seed 21
}

@test "crash after every N-th write: 512-byte clusters with compressed writes" {
	need_qemu
	crashes cluster_size=512 2M 1200 22 --ops 400 --seed 22 --compressed
}

@test "crash at every write around a refcount table move" {
	need_qemu
	# 512-byte clusters, 64-bit refcounts: the first table covers 2 MiB.
	qemu-img create -q -f qcow2 -o refcount_bits=64,cluster_size=512 tmpl.qcow2 3M
	orig=$(peek64 tmpl.qcow2 48)
	lo=0 hi=4000
	while (( hi - lo > 1 )); do
		mid=$(( (lo + hi) / 2 ))
		cp tmpl.qcow2 a.qcow2
		QIMG_FAULT_AFTER_WRITES=$mid fuzz crash --ops 300 --seed 27 a.qcow2 log \
			>/dev/null 2>&1 || true
		if [ "$(peek64 a.qcow2 48)" != "$orig" ]; then hi=$mid; else lo=$mid; fi
	done
	# Write number hi switched the header: try every write before and after
	# (new blocks, the new table, the refcounts of both, the header).
	[ "$hi" -gt 24 ] && [ "$hi" -lt 4000 ]
	for n in $(seq $((hi - 24)) $((hi + 3))); do
		crash_at "$n" --ops 300 --seed 27
	done
}

@test "crash after every N-th write: extended L2 over a snapshot made by qemu-img" {
	need_qemu
	TEMPLATE_CMD='qemu-io -c "write -P 9 0 1M" tmpl.qcow2 >/dev/null &&
		qemu-img snapshot -c s0 tmpl.qcow2 && qemu-img convert -O raw tmpl.qcow2 init.raw'
	crashes extended_l2=on 4M 500 18 --ops 250 --seed 23 --init init.raw
	qemu-img convert -l snapshot.name=s0 -O raw a.qcow2 s0.raw
	cmp s0.raw init.raw
}

@test "crash after every N-th write: lazy refcounts leave a dirty image that is rebuilt" {
	need_qemu
	crashes lazy_refcounts=on,cluster_size=4096 4M 600 25 --ops 300 --seed 24 --compressed
}

@test "crash after every N-th write: version 2 with refcount_bits=16" {
	need_qemu
	crashes compat=0.10,cluster_size=4096 4M 600 20 --ops 300 --seed 25
}

@test "crash after every N-th write: a LUKS image (data encrypted in place)" {
	need_qemu
	TEMPLATE_CMD='make_luks tmpl.qcow2 4M cluster_size=4096'
	crashes cluster_size=4096 4M 600 20 --ops 300 --seed 26 --secret abc123
}

@test "an injected I/O error is reported and leaves no corruption" {
	need_qemu
	qemu-img create -q -f qcow2 -o cluster_size=4096 tmpl.qcow2 4M
	for n in 3 17 40 90 150 260; do
		cp tmpl.qcow2 a.qcow2
		run -87 --separate-stderr env QIMG_FAULT_AFTER_WRITES=$n QIMG_FAULT_MODE=eio \
			"$FUZZ" crash --ops 300 --seed 26 a.qcow2 log
		[[ $stderr == *"failed: write error at offset "*": Input/output error"* ]] ||
			[[ $stderr == *"failed: cannot resize file"*"Input/output error"* ]]
		fuzz verify --ops 300 --seed 26 a.qcow2 log
	done
}

@test "memory stays bounded by the caches on a 1 TiB image" {
	need_qemu
	qemu-img create -q -f qcow2 big.qcow2 1T
	# 2500 scattered writes touch ~2500 L2 tables (160 MiB if all kept).
	run fuzz mem --ops 2500 --rss-limit 150 big.qcow2
	echo "$output"
	[ "$status" -eq 0 ]
	qemu-img check big.qcow2
}

@test "lazy refcounts: the dirty bit is on while writing and off after a clean close" {
	need_qemu
	qemu-img create -q -f qcow2 -o lazy_refcounts=on a.qcow2 4M
	QIMG_FAULT_AFTER_WRITES=6 fuzz crash --ops 100 --seed 31 a.qcow2 log || true
	[ $(( $(peek64 a.qcow2 72) & 1 )) -eq 1 ]
	fuzz write a.qcow2 0 4096 0x33
	[ $(( $(peek64 a.qcow2 72) & 1 )) -eq 0 ]
	run -0 qemu-img check a.qcow2
	[[ $output == *"No errors were found on the image."* ]]
}

@test "an image marked corrupt is not written" {
	need_qemu
	qemu-img create -q -f qcow2 a.qcow2 1M
	poke_be64 a.qcow2 72 2
	cp a.qcow2 before
	run -1 --separate-stderr fuzz write a.qcow2 0 512 1
	[ "$stderr" = "qcow2-fuzz: a.qcow2: Image is corrupt; cannot be opened read/write" ]
	cmp a.qcow2 before
}

@test "a misaligned L2 entry is an I/O error naming it, and marks a writable image corrupt" {
	need_qemu
	qemu-img create -q -f qcow2 a.qcow2 1M
	qemu-io -c "write -P 1 0 64k" a.qcow2 >/dev/null
	e=$(l2_entry_off a.qcow2 0)
	poke_be64 a.qcow2 $e $(( $(peek64 a.qcow2 $e) + 512 ))
	run -1 --separate-stderr fuzz cat a.qcow2 out.raw
	[[ $stderr == *"cluster offset 0x50200 for guest offset 0x0 is not cluster aligned" ]]
	[ $(( $(peek64 a.qcow2 72) & 2 )) -eq 0 ]
	run -1 --separate-stderr fuzz write a.qcow2 0 512 1
	[[ $stderr == *"is not cluster aligned" ]]
	[ $(( $(peek64 a.qcow2 72) & 2 )) -eq 2 ]
}

@test "a corrupt compressed stream is an I/O error naming the guest offset, never a crash" {
	need_qemu
	mixed_raw r.raw 256k
	qemu-img convert -c -O qcow2 r.raw c.qcow2
	desc=$(peek64 c.qcow2 $(l2_entry_off c.qcow2 5))
	coff=$(( desc & ((1 << 54) - 1) ))
	poke_bytes c.qcow2 $coff ffffffffffffffffffffffffffffffff
	run -1 --separate-stderr fuzz cat c.qcow2 out.raw
	[[ $stderr == *"compressed cluster for guest offset 0x50000 (host offset $(printf 0x%x $coff)) cannot be decompressed" ]]
}

@test "a compressed descriptor past the end of the file is refused" {
	need_qemu
	mixed_raw r.raw 128k
	qemu-img convert -c -O qcow2 r.raw c.qcow2
	e=$(l2_entry_off c.qcow2 2)
	desc=$(peek64 c.qcow2 $e)
	[ $(( (desc >> 62) & 1 )) -eq 1 ]
	poke_be64 c.qcow2 $e $(( (desc & ~((1 << 54) - 1)) | (1 << 40) ))
	run -1 --separate-stderr fuzz cat c.qcow2 out.raw
	[[ $stderr == *"for guest offset 0x20000 points past the end of the file" ]]
}

@test "writing clears unknown autoclear bits and the bitmaps bit" {
	need_qemu
	qemu-img create -q -f qcow2 a.qcow2 1M
	qemu-img bitmap --add a.qcow2 b0
	poke_be64 a.qcow2 88 $(( 0x101 ))
	fuzz write a.qcow2 0 4096 7
	[ "$(peek64 a.qcow2 88)" -eq 0 ]
	run qemu-img check a.qcow2
	[[ $output == *"a program lacking bitmap support modified this file"* ]]
}

# crypt_method 1 (legacy AES) is set by hand: without a key the engine
# must refuse, never pass ciphertext through (65-encrypted.bats has the
# images with keys).
@test "encrypted images opened without a key are refused with a clear message" {
	need_qemu
	qemu-img create -q -f qcow2 e.qcow2 1M
	qemu-io -c "write -P 1 0 64k" e.qcow2 >/dev/null
	poke_be32 e.qcow2 32 1
	cp e.qcow2 before.qcow2
	hint=" (give the passphrase with --object secret,id=ID,data=... --image-opts driver=qcow2,file.filename=FILE,encrypt.key-secret=ID)"
	run -1 --separate-stderr fuzz cat e.qcow2 out.raw
	[ "$stderr" = "qcow2-fuzz: e.qcow2: Parameter 'encrypt.key-secret' is required for cipher$hint" ]
	run -1 --separate-stderr fuzz write e.qcow2 0 512 1
	[ "$stderr" = "qcow2-fuzz: e.qcow2: Parameter 'encrypt.key-secret' is required for cipher$hint" ]
	cmp e.qcow2 before.qcow2
}

@test "qimg io and qemu-io take turns on one image and each reads what both wrote" {
	need_qemu
	qemu-img create -q -f qcow2 base.qcow2 4M
	qemu-io -c "write -P 0x11 0 4M" base.qcow2 >/dev/null
	qemu-img create -q -f qcow2 -o cluster_size=4096 -b base.qcow2 -F qcow2 a.qcow2 4M
	RANDOM=45
	declare -a offs lens pats
	for turn in $(seq 0 39); do
		offs[turn]=$(( (RANDOM % 4000) * 1024 ))
		lens[turn]=$(( (RANDOM % 96 + 1) * 1024 ))
		pats[turn]=$(( turn + 0x20 ))
		if (( turn % 2 )); then
			qemu-io -c "write -P ${pats[turn]} ${offs[turn]} ${lens[turn]}" a.qcow2 >/dev/null
		else
			qimg io -c "write -P ${pats[turn]} ${offs[turn]} ${lens[turn]}" a.qcow2 >/dev/null
		fi
		if (( turn % 10 == 9 )); then
			qemu-img snapshot -c "s$turn" a.qcow2
		fi
	done
	qemu-img check a.qcow2
	# Replay the writes on a raw copy of the base: the expected content.
	qemu-img convert -O raw base.qcow2 want.raw
	for turn in $(seq 0 39); do
		qemu-io -f raw -c "write -P ${pats[turn]} ${offs[turn]} ${lens[turn]}" want.raw >/dev/null
	done
	# qemu reads it all (compare), and so does the engine (cat).
	qemu-img compare -f qcow2 -F raw a.qcow2 want.raw
	fuzz cat a.qcow2 ours.raw
	cmp ours.raw want.raw
	for k in 0 10 20 30; do
		qemu-img convert -l snapshot.name=s$((k + 9)) -O raw a.qcow2 snap.raw
		qemu-img convert -O raw base.qcow2 want.raw
		for turn in $(seq 0 $((k + 9))); do
			qemu-io -f raw -c "write -P ${pats[turn]} ${offs[turn]} ${lens[turn]}" want.raw >/dev/null
		done
		cmp snap.raw want.raw
	done
}

@test "growing an image extends the L1 table and hides the backing file past the old end" {
	need_qemu
	qemu-img create -q -f qcow2 base.qcow2 16M
	qemu-io -c "write -P 9 0 16M" base.qcow2 >/dev/null
	qemu-img create -q -f qcow2 -o cluster_size=512 -b base.qcow2 -F qcow2 a.qcow2 1M
	l1_before=$(peek64 a.qcow2 40)
	qimg io -c "write -P 3 1000k 24k" -c "truncate 16M" -c "write -P 4 12M 1M" a.qcow2
	[ "$(peek64 a.qcow2 40)" != "$l1_before" ]
	[ "$(peek_be32 a.qcow2 36)" -eq 512 ]
	run -0 qemu-img check a.qcow2
	[[ $output == *"No errors were found on the image."* ]]
	run -0 qemu-io -c "read -P 9 0 1000k" -c "read -P 3 1000k 24k" -c "read -P 0 1M 11M" \
		-c "read -P 4 12M 1M" -c "read -P 0 13M 3M" a.qcow2
	[[ $output != *"Pattern verification failed"* ]]
	[ "$(grep -c '^read ' <<<"$output")" -eq 5 ]
}

@test "an L2 entry pointing at the L1 table is not written through" {
	need_qemu
	qemu-img create -q -f qcow2 a.qcow2 1M
	qemu-io -c "write -P 1 0 64k" a.qcow2 >/dev/null
	l1=$(peek64 a.qcow2 40)
	e=$(l2_entry_off a.qcow2 0)
	poke_be64 a.qcow2 $e $(( (1 << 63) | l1 ))
	cp a.qcow2 before
	run -1 --separate-stderr fuzz write a.qcow2 0 4096 2
	[ "$stderr" = "qcow2-fuzz: a.qcow2: guest data write at host offset $(printf 0x%x $l1) would overwrite the L1 table" ]
	cmp -i $l1:$l1 -n 65536 a.qcow2 before
	[ $(( $(peek64 a.qcow2 72) & 2 )) -eq 2 ]
}

@test "an image qemu left dirty (lazy refcounts, killed) is rebuilt before the first write" {
	need_qemu
	qemu-img create -q -f qcow2 -o lazy_refcounts=on,cluster_size=4096 a.qcow2 8M
	qemu-img snapshot -c s0 a.qcow2
	# qemu-io kills itself: refcounts on the file are stale, the dirty bit on.
	qemu-io -c "write -P 1 0 1M" -c "write -c -P 2 2M 64k" -c "write -P 3 4M 3M" \
		-c "discard 4M 1M" -c flush -c "write -P 4 1M 1M" -c "sigraise 9" \
		a.qcow2 >/dev/null 2>&1 || true
	[ $(( $(peek64 a.qcow2 72) & 1 )) -eq 1 ]
	fuzz write a.qcow2 $((7 << 20)) 4096 9
	[ $(( $(peek64 a.qcow2 72) & 1 )) -eq 0 ]
	run -0 qemu-img check a.qcow2
	[[ $output == *"No errors were found on the image."* ]]
	run -0 qemu-io -c "read -P 1 0 1M" -c "read -P 2 2M 64k" -c "read -P 0 4M 1M" \
		-c "read -P 3 5M 2M" -c "read -P 9 7M 4k" a.qcow2
	[[ $output != *"Pattern verification failed"* ]]
}

@test "compressed writes: whole clusters only, never over an allocated cluster, read back by qemu" {
	need_qemu
	qemu-img create -q -f qcow2 a.qcow2 1M
	fuzz compress a.qcow2 65536 131072 7
	run -1 --separate-stderr fuzz compress a.qcow2 65536 65536 8
	[ "$stderr" = "qcow2-fuzz: a.qcow2: cannot write compressed data to the allocated cluster at guest offset 0x10000" ]
	run -1 --separate-stderr fuzz compress a.qcow2 4096 65536 8
	[ "$stderr" = "qcow2-fuzz: a.qcow2: compressed writes must cover whole clusters" ]
	fuzz compress a.qcow2 $((1024 * 1024 - 65536)) 65536 9
	run -0 qemu-img check a.qcow2
	[[ $output == *"100.00% compressed clusters"* ]]
	run -0 qemu-io -c "read -P 7 64k 128k" -c "read -P 9 960k 64k" -c "read -P 0 192k 768k" a.qcow2
	[[ $output != *"Pattern verification failed"* ]]
}
