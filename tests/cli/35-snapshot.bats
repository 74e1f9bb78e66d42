#!/usr/bin/env bats
# qimg snapshot, judged by qemu: snapshots qimg makes are listed, applied,
# read (convert -l) and deleted by qemu-img, and the other way round;
# after every step qemu-img check finds nothing (no error, no leak) and
# every snapshot reads back as the raw copy made when it was taken.  A
# seeded random sequence runs against a model of every snapshot; a kill
# after every N-th write of each operation leaves at worst leaks; the
# table's unknown bytes survive; errors are qemu-img's words.

load helper

# clean IMG: qemu-img check finds no error and no leak.
clean() {
	run qemu-img check "$1"
	[ "$status" -eq 0 ] || {
		echo "qemu-img check $1 exited $status: $output"
		return 1
	}
}

# snap_is IMG SNAPSHOT RAW: the snapshot's content (convert -l) is RAW.
snap_is() {
	qemu-img convert -l "$2" -O raw "$1" snap.out
	cmp snap.out "$3"
}

# active_is IMG RAW: the current content is RAW.
active_is() {
	qemu-img convert -O raw "$1" act.out
	cmp act.out "$2"
}

# ids IMG: "ID:NAME ..." of the snapshots, in table order.
ids() {
	qemu-img info --output=json "$1" |
		jq -r '[.snapshots[]? | .id + ":" + .name] | join(" ")'
}

# A 64 MiB image with data in two L2 ranges: s1.raw is its content.
make_img() {
	qemu-img create -q -f qcow2 ${1:+-o "$1"} a.qcow2 64M
	qemu-io -c "write -P 0x11 0 1M" -c "write -P 0x12 40M 192k" a.qcow2 >/dev/null
	qemu-img convert -O raw a.qcow2 s1.raw
}

@test "snapshot -l prints qemu-img's table; nothing without snapshots" {
	need_qemu
	qemu-img create -q -f qcow2 a.qcow2 16M
	run -0 --separate-stderr qimg snapshot -l a.qcow2
	[ "$output" = "" ]
	qemu-img snapshot -c first a.qcow2
	qemu-img snapshot -c "a much longer snapshot name" a.qcow2
	qemu-img snapshot -c "" a.qcow2
	qemu-img snapshot -l a.qcow2 >q.out
	qimg snapshot -l a.qcow2 >m.out
	diff -u q.out m.out
	# no action lists too (newer qemu-img does; 7.2 does nothing)
	qimg snapshot a.qcow2 >m2.out
	diff -u q.out m2.out
	qimg snapshot -U -q -l a.qcow2 >m3.out
	diff -u q.out m3.out
}

@test "snapshot -l --output=json has the keys of info --output=json" {
	need_qemu
	qemu-img create -q -f qcow2 a.qcow2 16M
	run -0 qimg snapshot -l --output=json a.qcow2
	[ "$output" = "[
]" ]
	qemu-img snapshot -c one a.qcow2
	qemu-img snapshot -c two a.qcow2
	qimg snapshot -l --output=json a.qcow2 >m.json
	qemu-img info --output=json a.qcow2 | jq .snapshots >q.json
	diff -u <(jq -S . q.json) <(jq -S . m.json)
	# and in qemu's key order, as info prints it
	qimg info --output=json a.qcow2 | jq .snapshots >i.json
	diff -u <(jq . i.json) <(jq . m.json)
}

@test "snapshots qimg makes are listed, read, applied and deleted by qemu-img" {
	need_qemu
	make_img
	qimg snapshot -c s1 a.qcow2
	clean a.qcow2
	qimg io -c "write -P 0x21 512k 1M" -c "write -P 0x22 63M 64k" a.qcow2 >/dev/null
	qemu-img convert -O raw a.qcow2 s2.raw
	qimg snapshot -c s2 a.qcow2
	clean a.qcow2
	[ "$(ids a.qcow2)" = "1:s1 2:s2" ]
	run -0 qemu-img snapshot -l a.qcow2
	[[ ${lines[2]} == "1         s1  "* ]]
	[[ ${lines[3]} == "2         s2  "* ]]
	snap_is a.qcow2 s1 s1.raw
	snap_is a.qcow2 2 s2.raw
	qemu-io -c "write -P 0x31 0 4M" a.qcow2 >/dev/null
	clean a.qcow2
	qemu-img snapshot -a s1 a.qcow2
	clean a.qcow2
	active_is a.qcow2 s1.raw
	snap_is a.qcow2 s2 s2.raw
	qemu-img snapshot -d s1 a.qcow2
	clean a.qcow2
	active_is a.qcow2 s1.raw
	snap_is a.qcow2 s2 s2.raw
	qemu-img snapshot -a s2 a.qcow2
	clean a.qcow2
	active_is a.qcow2 s2.raw
	qemu-img snapshot -d s2 a.qcow2
	clean a.qcow2
	active_is a.qcow2 s2.raw
	[ "$(ids a.qcow2)" = "" ]
}

@test "snapshots qemu-img makes are listed, read, applied and deleted by qimg" {
	need_qemu
	make_img
	qemu-img snapshot -c s1 a.qcow2
	qemu-io -c "write -P 0x21 512k 1M" -c "write -P 0x22 63M 64k" a.qcow2 >/dev/null
	qemu-img convert -O raw a.qcow2 s2.raw
	qemu-img snapshot -c s2 a.qcow2
	qemu-io -c "write -P 0x31 0 4M" -c "write -z 40M 64k" a.qcow2 >/dev/null
	qemu-img convert -O raw a.qcow2 cur.raw
	qemu-img snapshot -l a.qcow2 >q.out
	qimg snapshot -l a.qcow2 >m.out
	diff -u q.out m.out
	qimg snapshot -a s1 a.qcow2
	clean a.qcow2
	active_is a.qcow2 s1.raw
	snap_is a.qcow2 s2 s2.raw
	qimg io -c "write -P 0x41 1M 64k" a.qcow2 >/dev/null
	qemu-img convert -O raw a.qcow2 cur.raw
	clean a.qcow2
	qimg snapshot -d s2 a.qcow2
	clean a.qcow2
	active_is a.qcow2 cur.raw
	snap_is a.qcow2 s1 s1.raw
	qimg snapshot -d s1 a.qcow2
	clean a.qcow2
	active_is a.qcow2 cur.raw
	[ "$(ids a.qcow2)" = "" ]
}

@test "qimg io reads the state a snapshot made active, not the snapshot" {
	need_qemu
	make_img
	qimg snapshot -c s1 a.qcow2
	qemu-io -c "write -P 0x55 0 2M" a.qcow2 >/dev/null
	# qimg io reads through the engine: the active state, not the snapshot
	run -0 qimg io -r -c "read -P 0x55 0 2M" a.qcow2
	qemu-img snapshot -a s1 a.qcow2
	run -0 qimg io -r -c "read -P 0x11 0 1M" -c "read -P 0x12 40M 192k" a.qcow2
}

@test "IDs are the highest numeric ID plus one, as qemu-img numbers them" {
	need_qemu
	qemu-img create -q -f qcow2 a.qcow2 16M
	for n in a b c; do qemu-img snapshot -c $n a.qcow2; done
	qemu-img snapshot -d c a.qcow2
	qemu-img snapshot -d a a.qcow2
	cp a.qcow2 q.qcow2
	qimg snapshot -c d a.qcow2
	qemu-img snapshot -c d q.qcow2
	[ "$(ids a.qcow2)" = "2:b 3:d" ]
	[ "$(ids q.qcow2)" = "$(ids a.qcow2)" ]
	qimg snapshot -c e a.qcow2
	[ "$(ids a.qcow2)" = "2:b 3:d 4:e" ]
	clean a.qcow2
}

@test "-a takes an ID before a name; -d takes names only (qemu-img 7.2's rules)" {
	need_qemu
	qemu-img create -q -f qcow2 a.qcow2 16M
	qemu-io -c "write -P 1 0 64k" a.qcow2 >/dev/null
	qemu-img snapshot -c a a.qcow2
	qemu-io -c "write -P 2 0 64k" a.qcow2 >/dev/null
	qemu-img snapshot -c 1 a.qcow2
	[ "$(ids a.qcow2)" = "1:a 2:1" ]
	qimg snapshot -a 1 a.qcow2
	run -0 qemu-io -c "read -P 1 0 64k" a.qcow2
	qimg snapshot -a a a.qcow2
	run -0 qemu-io -c "read -P 1 0 64k" a.qcow2
	run -1 --separate-stderr qimg snapshot -d 2 a.qcow2
	[ "$stderr" = "qimg: a.qcow2: Could not delete snapshot '2': snapshot not found" ]
	qimg snapshot -d 1 a.qcow2
	[ "$(ids a.qcow2)" = "1:a" ]
	clean a.qcow2
}

@test "apply restores the virtual size the snapshot had" {
	need_qemu
	make_img
	qimg snapshot -c small a.qcow2
	qemu-img resize -q a.qcow2 3G
	qemu-io -c "write -P 0x77 2G 64k" a.qcow2 >/dev/null
	qemu-img convert -O raw a.qcow2 big.raw
	qimg snapshot -c big a.qcow2
	qimg snapshot -a small a.qcow2
	clean a.qcow2
	[ "$(qemu-img info --output=json a.qcow2 | jq '."virtual-size"')" = $((64 << 20)) ]
	active_is a.qcow2 s1.raw
	qimg snapshot -a big a.qcow2
	clean a.qcow2
	[ "$(qemu-img info --output=json a.qcow2 | jq '."virtual-size"')" = $((3 << 30)) ]
	active_is a.qcow2 big.raw
	qemu-img snapshot -a small a.qcow2
	clean a.qcow2
	active_is a.qcow2 s1.raw
}

# every_kind OPTS: create, write, apply, delete on an image made with
# OPTS (qemu-img create -o); both tools must be happy at every step.
every_kind() {
	qemu-img create -q -f qcow2 -o "$1" a.qcow2 32M
	qemu-io -c "write -P 0x11 0 1M" -c "write -P 0x12 20M 192k" a.qcow2 >/dev/null
	qemu-img convert -O raw a.qcow2 s1.raw
	qimg snapshot -c s1 a.qcow2
	clean a.qcow2
	qimg io -c "write -P 0x21 512k 600k" -c "write -z 20M 64k" a.qcow2 >/dev/null
	qemu-img convert -O raw a.qcow2 s2.raw
	qemu-img snapshot -c s2 a.qcow2
	qimg snapshot -c s3 a.qcow2
	clean a.qcow2
	qemu-io -c "write -P 0x31 0 2M" a.qcow2 >/dev/null
	qimg snapshot -a s1 a.qcow2
	clean a.qcow2
	active_is a.qcow2 s1.raw
	snap_is a.qcow2 s2 s2.raw
	snap_is a.qcow2 s3 s2.raw
	qimg snapshot -d s2 a.qcow2
	clean a.qcow2
	qimg snapshot -a s3 a.qcow2
	clean a.qcow2
	active_is a.qcow2 s2.raw
	qimg snapshot -d s1 a.qcow2
	qimg snapshot -d s3 a.qcow2
	clean a.qcow2
	active_is a.qcow2 s2.raw
}

@test "every image kind: v2, refcount widths, cluster sizes, extended L2, lazy refcounts" {
	need_qemu
	local o
	for o in compat=0.10 refcount_bits=4 refcount_bits=8 refcount_bits=64 \
		cluster_size=512 cluster_size=2M extended_l2=on \
		lazy_refcounts=on compression_type=zstd; do
		every_kind "$o" || {
			echo "failed with -o $o"
			return 1
		}
	done
}

@test "compressed clusters are shared and freed like the others" {
	need_qemu
	qemu-img create -q -f raw src.raw 16M
	qemu-io -f raw -c "write -P 0x11 0 3M" -c "write -P 0x12 8M 100k" src.raw >/dev/null
	qemu-img convert -c -O qcow2 src.raw a.qcow2
	qimg snapshot -c c1 a.qcow2
	clean a.qcow2
	qemu-io -c "write -P 0x21 64k 64k" a.qcow2 >/dev/null
	qemu-img convert -O raw a.qcow2 cur.raw
	qimg snapshot -a c1 a.qcow2
	clean a.qcow2
	active_is a.qcow2 src.raw
	qimg snapshot -c c2 a.qcow2
	qimg snapshot -d c1 a.qcow2
	clean a.qcow2
	qemu-img snapshot -d c2 a.qcow2
	clean a.qcow2
	active_is a.qcow2 src.raw
}

# entry_hex L1OFF L1SIZE ID NAME EXTRAHEX: one snapshot table entry.
entry_hex() {
	local id name extra=$5
	id=$(printf %s "$3" | od -An -tx1 | tr -d ' \n')
	name=$(printf %s "$4" | od -An -tx1 | tr -d ' \n')
	printf '%016x%08x%04x%04x%08x%08x%016x%08x%08x%s%s%s' \
		"$1" "$2" ${#3} ${#4} 1795630554 662452000 0 0 \
		$((${#extra} / 2)) "$extra" "$id" "$name"
}

# one_entry IMG EXTRAHEX: replace the only table entry's extra data.
one_entry() {
	local tab l1 l1s
	tab=$(peek_be64 "$1" 64)
	l1=$(peek_be64 "$1" "$tab")
	l1s=$(peek_be32 "$1" $((tab + 8)))
	poke_bytes "$1" "$tab" "$(entry_hex "$l1" "$l1s" 1 one "$2")"
}

@test "unknown extra data is kept; short entries are completed as qemu does" {
	need_qemu
	local tab
	qemu-img create -q -f qcow2 a.qcow2 16M
	qemu-img snapshot -c one a.qcow2
	one_entry a.qcow2 000000000000000000000000010000000000000000000005aabbccddeeff0011
	clean a.qcow2
	qimg snapshot -c two a.qcow2
	clean a.qcow2
	tab=$(peek_be64 a.qcow2 64)
	[ "$(peek_be32 a.qcow2 $((tab + 36)))" = 32 ]
	[ "$(od -An -tx1 -j $((tab + 40)) -N 32 a.qcow2 | tr -d ' \n')" = \
		000000000000000000000000010000000000000000000005aabbccddeeff0011 ]
	[ "$(ids a.qcow2)" = "1:one 2:two" ]
	qemu-img snapshot -d two a.qcow2
	clean a.qcow2
	# 16 bytes (no icount): qemu writes 24, icount -1, the disk size kept
	one_entry a.qcow2 00000000000000000000000000800000
	qimg snapshot -c three a.qcow2
	tab=$(peek_be64 a.qcow2 64)
	[ "$(od -An -tx1 -j $((tab + 36)) -N 28 a.qcow2 | tr -d ' \n')" = \
		0000001800000000000000000000000000800000ffffffffffffffff ]
	run -0 qimg snapshot -l a.qcow2
	[[ ${lines[2]} == *"00:00:00.000           " ]]
	[[ ${lines[3]} == *"00:00:00.000          0" ]]
	clean a.qcow2
}

@test "version 2 entries without extra data get the image's size" {
	need_qemu
	local tab
	qemu-img create -q -f qcow2 -o compat=0.10 a.qcow2 16M
	qemu-img snapshot -c one a.qcow2
	one_entry a.qcow2 ""
	clean a.qcow2
	qimg snapshot -c two a.qcow2
	clean a.qcow2
	tab=$(peek_be64 a.qcow2 64)
	[ "$(od -An -tx1 -j $((tab + 36)) -N 28 a.qcow2 | tr -d ' \n')" = \
		0000001800000000000000000000000001000000ffffffffffffffff ]
	qimg snapshot -a one a.qcow2
	clean a.qcow2
	[ "$(ids a.qcow2)" = "1:one 2:two" ]
}

# ---- errors ----

@test "not found, mixed actions, no file name: qemu-img's words and status" {
	need_qemu
	qemu-img create -q -f qcow2 a.qcow2 16M
	qemu-img snapshot -c s a.qcow2
	run -1 --separate-stderr qimg snapshot -a nosuch a.qcow2
	[ "$stderr" = "qimg: a.qcow2: Could not apply snapshot 'nosuch': Failed to load snapshot: No such file or directory" ]
	run -1 --separate-stderr qimg snapshot -d nosuch a.qcow2
	[ "$stderr" = "qimg: a.qcow2: Could not delete snapshot 'nosuch': snapshot not found" ]
	run -1 --separate-stderr qimg snapshot -l -c x a.qcow2
	[ "${stderr_lines[0]}" = "qimg: Cannot mix '-l', '-a', '-c', '-d'" ]
	[ "${stderr_lines[1]}" = "Try 'qimg --help' for more information" ]
	run -1 --separate-stderr qimg snapshot -c a -d b a.qcow2
	[ "${stderr_lines[0]}" = "qimg: Cannot mix '-l', '-a', '-c', '-d'" ]
	run -1 --separate-stderr qimg snapshot -l
	[ "${stderr_lines[0]}" = "qimg: Expecting one image file name" ]
	run -1 --separate-stderr qimg snapshot -l a.qcow2 b.qcow2
	[ "${stderr_lines[0]}" = "qimg: Expecting one image file name" ]
	run -1 --separate-stderr qimg snapshot -l nofile
	[ "$stderr" = "qimg: nofile: could not open 'nofile': No such file or directory" ]
	run -1 --separate-stderr qimg snapshot -l --output=xml a.qcow2
	[ "$stderr" = "qimg: --output must be used with human or json as argument" ]
	run -0 --separate-stderr qimg snapshot --help
	[[ $output == "usage: qimg snapshot "* ]]
	[ "$(ids a.qcow2)" = "1:s" ]
	clean a.qcow2
}

@test "raw images, external data files and -U with a change are refused" {
	need_qemu
	qemu-img create -q -f raw r.raw 1M
	run -0 --separate-stderr qimg snapshot -l r.raw
	[ "$output" = "" ]
	# a probed raw image opened for writing gets qemu's warning first
	run -1 --separate-stderr qimg snapshot -c s r.raw
	[ "${stderr_lines[0]}" = "WARNING: Image format was not specified for 'r.raw' and probing guessed raw." ]
	[ "${stderr_lines[3]}" = "qimg: r.raw: Could not create snapshot 's': -95 (Operation not supported)" ]
	run -1 --separate-stderr qimg snapshot -f raw -a s r.raw
	[ "$stderr" = "qimg: r.raw: Could not apply snapshot 's': Block driver does not support snapshots" ]
	run -1 --separate-stderr qimg snapshot -f raw -d s r.raw
	[ "$stderr" = "qimg: r.raw: Could not delete snapshot 's': snapshot not found" ]
	qemu-img create -q -f qcow2 -o data_file=d.raw d.qcow2 1M
	run -1 --separate-stderr qimg snapshot -c s d.qcow2
	[ "$stderr" = "qimg: d.qcow2: Could not create snapshot 's': -95 (Operation not supported)" ]
	qemu-img create -q -f qcow2 a.qcow2 1M
	run -1 --separate-stderr qimg snapshot -U -c s a.qcow2
	[ "$stderr" = "qimg: a.qcow2: force-share=on can only be used with read-only images" ]
	run -0 qimg snapshot --image-opts -c s driver=qcow2,file.filename=a.qcow2
	[ "$(ids a.qcow2)" = "1:s" ]
	run -1 --separate-stderr qimg snapshot --image-opts -f qcow2 -l driver=qcow2,file.filename=a.qcow2
	[ "$stderr" = "qimg: --image-opts and --format are mutually exclusive" ]
	run -0 qimg snapshot --object secret,id=s0,data=x -l a.qcow2
	run -1 --separate-stderr qimg snapshot --object bogus,id=s0 -l a.qcow2
	[ "$stderr" = "qimg: Parameter 'qom-type' does not accept value 'bogus'" ]
}

@test "bitmaps survive create and delete; apply is refused while they exist" {
	need_qemu
	qemu-img create -q -f qcow2 a.qcow2 16M
	qemu-io -c "write -P 1 0 1M" a.qcow2 >/dev/null
	qemu-img bitmap --add a.qcow2 b0
	qimg snapshot -c s a.qcow2
	clean a.qcow2
	run -1 --separate-stderr qimg snapshot -a s a.qcow2
	[ "$stderr" = "qimg: a.qcow2: Could not apply snapshot 's': Device has active dirty bitmaps" ]
	qimg snapshot -d s a.qcow2
	clean a.qcow2
	[ "$(qemu-img info --output=json a.qcow2 | jq -r '."format-specific".data.bitmaps[0].name')" = b0 ]
	run -0 --separate-stderr qemu-img snapshot -c q a.qcow2
	[ "$stderr" = "" ]
}

@test "a name already taken or longer than 255 bytes is refused, the image untouched" {
	need_qemu
	local long
	qemu-img create -q -f qcow2 a.qcow2 16M
	qimg snapshot -c s1 a.qcow2
	cp a.qcow2 before.qcow2
	run -1 --separate-stderr qimg snapshot -c s1 a.qcow2
	[ "$stderr" = "qimg: a.qcow2: Could not create snapshot 's1': a snapshot with this name already exists" ]
	long=$(printf 'x%.0s' $(seq 256))
	run -1 --separate-stderr qimg snapshot -c "$long" a.qcow2
	[ "$stderr" = "qimg: a.qcow2: Could not create snapshot '$long': the name is longer than 255 bytes" ]
	cmp a.qcow2 before.qcow2
	qimg snapshot -c "${long:1}" a.qcow2
	clean a.qcow2
}

@test "65536 snapshots are the limit: the next one is refused" {
	need_qemu
	local tab e
	qemu-img create -q -f qcow2 a.qcow2 16M
	truncate -s 256k a.qcow2
	tab=$((256 << 10))
	# 65536 entries of 64 bytes (L1 size 0, 22 bytes of extra data)
	e=$(entry_hex 0 0 1 x 00000000000000000000000001000000000000000000)
	printf "$(echo "$e" | sed 's/../\\x&/g')" >e.bin
	for _ in $(seq 16); do cat e.bin e.bin >e2.bin && mv e2.bin e.bin; done
	cat e.bin >>a.qcow2
	poke_be32 a.qcow2 60 65536
	poke_be64 a.qcow2 64 "$tab"
	run -1 --separate-stderr qimg snapshot -c s a.qcow2
	[ "$stderr" = "qimg: a.qcow2: Could not create snapshot 's': -27 (File too large)" ]
	run -1 --separate-stderr qemu-img snapshot -c s a.qcow2
	[ "$stderr" = "qemu-img: Could not create snapshot 's': -27 (File too large)" ]
}

@test "1-bit refcounts cannot share: refused with the reason, nothing leaked" {
	need_qemu
	# 2 bits: the active state and two snapshots at most
	qemu-img create -q -f qcow2 -o refcount_bits=2 b.qcow2 16M
	qemu-io -c "write 0 64k" b.qcow2 >/dev/null
	qimg snapshot -c s1 b.qcow2
	qimg snapshot -c s2 b.qcow2
	run -1 --separate-stderr qimg snapshot -c s3 b.qcow2
	[[ $stderr == *": refcount of cluster at 0x"*" would exceed 3" ]]
	qimg snapshot -d s1 b.qcow2
	qimg snapshot -a s2 b.qcow2
	clean b.qcow2
	qemu-img create -q -f qcow2 -o refcount_bits=1 a.qcow2 16M
	qemu-io -c "write 0 64k" a.qcow2 >/dev/null
	run -1 --separate-stderr qimg snapshot -c s a.qcow2
	[[ $stderr == "qimg: a.qcow2: Could not create snapshot 's': refcount of cluster at 0x"*" would exceed 1" ]]
	clean a.qcow2
	[ "$(ids a.qcow2)" = "" ]
}

# ---- crash safety ----

# crash_sweep TEMPLATE VERIFY ARGS...: "qimg snapshot ARGS c.qcow2" on a
# copy of TEMPLATE, killed before its N-th write for N = 0, 1, ... (every
# CRASH_STEP-th N past the first ten) until it completes.  After each kill qemu-img check exits 0 or 3 (leaks at
# worst, never a corruption) and VERIFY c.qcow2 accepts the state; then
# the same command run again completes.
crash_sweep() {
	local tmpl=$1 verify=$2 n=0 st cs
	shift 2
	while :; do
		cp "$tmpl" c.qcow2
		st=0
		QIMG_FAULT_AFTER_WRITES=$n "$QIMG" snapshot "$@" c.qcow2 2>err || st=$?
		cs=0
		qemu-img check c.qcow2 >chk 2>&1 || cs=$?
		if [ "$cs" -ne 0 ] && [ "$cs" -ne 3 ]; then
			echo "N=$n: qemu-img check exited $cs"
			cat chk err
			return 1
		fi
		"$verify" c.qcow2 || {
			echo "N=$n: wrong state after the kill"
			return 1
		}
		[ "$st" -eq 86 ] || break
		# Run again, it completes (or finds it was done before the kill).
		if [ $((n % 3)) -eq 0 ]; then
			"$QIMG" snapshot "$@" c.qcow2 2>err ||
				grep -q "already exists\|snapshot not found" err || {
				echo "N=$n: the command fails after the kill: $(cat err)"
				return 1
			}
			qemu-img check c.qcow2 >/dev/null 2>&1 || [ $? -eq 3 ]
		fi
		if [ "$n" -lt 10 ]; then
			n=$((n + 1))
		else
			n=$((n + ${CRASH_STEP:-1}))
		fi
	done
	[ "$st" -eq 0 ] || {
		echo "N=$n: exited $st: $(cat err)"
		return 1
	}
	echo "$* completes after $n writes"
	[ "$n" -ge 4 ]
}

# A template with small clusters (many L2 tables and refcount blocks):
# snapshot "base" (base.raw), then more writes (cur.raw).
# TOOL makes the snapshot (qimg's keep the original L2 tables, COPIED set).
make_crash_template() {
	qemu-img create -q -f qcow2 -o cluster_size=4k tmpl.qcow2 24M
	qemu-io -c "write -P 1 0 3M" -c "write -P 2 9M 1M" -c "write -P 3 20M 2M" \
		tmpl.qcow2 >/dev/null
	qemu-img convert -O raw tmpl.qcow2 base.raw
	"$1" snapshot -c base tmpl.qcow2
	qemu-io -c "write -P 4 1M 4M" -c "write -P 5 21M 64k" tmpl.qcow2 >/dev/null
	qemu-img convert -O raw tmpl.qcow2 cur.raw
}

after_create() {
	local l
	l=$(ids "$1")
	[ "$l" = "1:base" ] || [ "$l" = "1:base 2:new" ] || return 1
	active_is "$1" cur.raw && snap_is "$1" base base.raw || return 1
	[ "$l" = "1:base" ] || snap_is "$1" new cur.raw
}

after_apply() {
	[ "$(ids "$1")" = "1:base" ] && snap_is "$1" base base.raw &&
		{ active_is "$1" cur.raw || active_is "$1" base.raw; }
}

after_delete() {
	local l
	l=$(ids "$1")
	[ "$l" = "1:base" ] || [ "$l" = "" ] || return 1
	active_is "$1" cur.raw || return 1
	[ "$l" = "" ] || snap_is "$1" base base.raw
}

@test "a kill at any write of create, apply or delete leaves at worst leaks" {
	need_qemu
	make_crash_template qemu-img
	crash_sweep tmpl.qcow2 after_create -c new
	crash_sweep tmpl.qcow2 after_apply -a base
	crash_sweep tmpl.qcow2 after_delete -d base
}

@test "the same with a snapshot qimg made (apply cleans its tables in place)" {
	need_qemu
	make_crash_template qimg
	crash_sweep tmpl.qcow2 after_apply -a base
	crash_sweep tmpl.qcow2 after_delete -d base
}

no_check() {
	return 0
}

@test "the refcount table growing in the middle of an operation" {
	need_qemu
	# 512-byte clusters, 64-bit refcounts: a table cluster covers 2 MiB
	qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=64 g.qcow2 8M
	qemu-io -c "write -P 1 0 1950k" g.qcow2 >/dev/null
	[ "$(peek_be32 g.qcow2 56)" = 1 ]
	cp g.qcow2 tmpl.qcow2
	qimg snapshot -c s1 g.qcow2
	[ "$(peek_be32 g.qcow2 56)" = 2 ]
	clean g.qcow2
	qemu-img convert -O raw g.qcow2 s1.raw
	snap_is g.qcow2 s1 s1.raw
	CRASH_STEP=7 crash_sweep tmpl.qcow2 no_check -c new
	qemu-io -c "write -P 2 0 1950k" g.qcow2 >/dev/null
	qimg snapshot -c s2 g.qcow2
	qimg snapshot -a s1 g.qcow2
	clean g.qcow2
	active_is g.qcow2 s1.raw
	cp g.qcow2 tmpl.qcow2
	CRASH_STEP=7 crash_sweep tmpl.qcow2 no_check -d s2
}

# ---- a random sequence against a model ----

# The model: cur.raw is the active content, m_NAME.raw each snapshot's.
model_check() {
	local s
	clean a.qcow2
	active_is a.qcow2 cur.raw
	for s in $(ids a.qcow2); do
		snap_is a.qcow2 "${s#*:}" "m_${s#*:}.raw"
	done
}

@test "a seeded random sequence of writes, creates, applies and deletes matches a model" {
	need_qemu
	local seed=${SNAP_SEED:-20261125} step op names=() k off len pat tool
	RANDOM=$seed
	qemu-img create -q -f qcow2 -o cluster_size=16k a.qcow2 8M
	qemu-img create -q -f raw cur.raw 8M
	for step in $(seq 60); do
		op=$((RANDOM % 10))
		tool=$((RANDOM % 2))
		if [ "$op" -le 3 ]; then
			off=$((RANDOM % 512 * 16384 + RANDOM % 4 * 512))
			len=$(((RANDOM % 24 + 1) * 8192))
			[ $((off + len)) -le $((8 << 20)) ] || len=$(((8 << 20) - off))
			pat=$((RANDOM % 255 + 1))
			[ "$op" -ne 3 ] || pat=z
			if [ "$pat" = z ]; then
				set -- "write -z $off $len"
			else
				set -- "write -P $pat $off $len"
			fi
			qemu-io -f raw -c "$1" cur.raw >/dev/null
			if [ "$tool" -eq 0 ]; then
				qimg io -c "$1" a.qcow2 >/dev/null
			else
				qemu-io -c "$1" a.qcow2 >/dev/null
			fi
		elif [ "$op" -le 5 ] || [ ${#names[@]} -eq 0 ]; then
			names+=("s$step")
			cp cur.raw "m_s$step.raw"
			if [ "$tool" -eq 0 ]; then
				qimg snapshot -c "s$step" a.qcow2
			else
				qemu-img snapshot -c "s$step" a.qcow2
			fi
		elif [ "$op" -le 7 ]; then
			k=${names[$((RANDOM % ${#names[@]}))]}
			cp "m_$k.raw" cur.raw
			if [ "$tool" -eq 0 ]; then
				qimg snapshot -a "$k" a.qcow2
			else
				qemu-img snapshot -a "$k" a.qcow2
			fi
		else
			k=$((RANDOM % ${#names[@]}))
			if [ "$tool" -eq 0 ]; then
				qimg snapshot -d "${names[$k]}" a.qcow2
			else
				qemu-img snapshot -d "${names[$k]}" a.qcow2
			fi
			names=("${names[@]:0:$k}" "${names[@]:$((k + 1))}")
		fi
		clean a.qcow2 || {
			echo "seed $seed, step $step (op $op, tool $tool)"
			return 1
		}
		if [ "$op" -ge 6 ] || [ $((step % 10)) -eq 0 ]; then
			model_check || {
				echo "seed $seed, step $step (op $op, tool $tool)"
				return 1
			}
		fi
	done
	model_check
}
