#!/usr/bin/env bats
# qimg resize: qemu-img 7.2's rules, messages and exit codes; content kept
# through grow / shrink / preallocation sequences on every kind of qcow2
# image (judged by qemu-img check and compare against a raw image resized
# alongside); header fields and extensions untouched; crashes at every
# write leave at worst leaks.

load helper
load crash

# The fixed header and everything after it in cluster 0, minus the size,
# L1 and refcount table fields (bytes 24..59): what a resize may change
# (the refcount table moves when a preallocation outgrows it).
hdr_rest() {
	local cs=$((1 << $(peek_be32 "$1" 20)))
	[ "$cs" -le 4096 ] || cs=4096
	od -An -tx1 -v -N "$cs" "$1" | tr -d ' \n' | cut -c1-48,121-
}

# vsize FILE: virtual size as qemu-img reports it.
vsize() {
	qemu-img info --output=json "$1" | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p'
}

# same IMG REF.raw: qemu-img finds no error and the same content and size.
same() {
	run qemu-img check "$1"
	echo "$output"
	[ "$status" -eq 0 ]
	run qemu-img compare -f qcow2 -F raw "$1" "$2"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(vsize "$1")" = "$(stat -c %s "$2")" ]
}

# step IMG REF [qimg resize options] SIZE: resize both, then judge.
step() {
	local img=$1 ref=$2 sz
	shift 2
	sz=${!#}
	run -0 qimg resize "${@:1:$#-1}" "$img" "$sz"
	[ "$output" = "Image resized." ]
	qemu-img resize -q -f raw --shrink "$ref" "$sz"
	same "$img" "$ref"
}

@test "qemu-img's resize session: the same output, messages and exit codes" {
	need_qemu
	qemu-img create -q -f qcow2 rs.qcow2 64M
	run -0 --separate-stderr qimg resize rs.qcow2 128M
	[ "$output" = "Image resized." ]
	run -0 qimg resize rs.qcow2 +64M
	run -1 --separate-stderr qimg resize rs.qcow2 -- -32M
	[ "$output" = "" ]
	[ "${stderr_lines[0]}" = "qimg: Use the --shrink option to perform a shrink operation." ]
	[ "${stderr_lines[1]}" = "qimg: warning: Shrinking an image will delete all data beyond the shrunken image's end. Before performing such an operation, make sure there is no important data there." ]
	run -0 qimg resize --shrink rs.qcow2 -- -32M
	run -0 qimg resize --shrink rs.qcow2 32M
	[ "$(vsize rs.qcow2)" = 33554432 ]
	run -0 qimg resize rs.qcow2 32M
	[ "$output" = "Image resized." ]
	run -0 qimg resize rs.qcow2 +0
	run -1 --separate-stderr qimg resize rs.qcow2 50000001
	[ "$stderr" = "qimg: rs.qcow2: The new size must be a multiple of 512" ]
	run -1 --separate-stderr qimg resize --shrink rs.qcow2 0
	[ "$stderr" = "qimg: New image size must be positive" ]
	run -1 --separate-stderr qimg resize rs.qcow2 abc
	[ "${stderr_lines[0]}" = "qimg: Parameter 'size' expects a non-negative number below 2^64" ]
	[ "${stderr_lines[1]}" = "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-" ]
	[ "${stderr_lines[2]}" = "and exabytes, respectively." ]
	run -1 --separate-stderr qimg resize rs.qcow2
	[ "${stderr_lines[0]}" = "qimg: Not enough arguments" ]
	run -1 --separate-stderr qimg resize --preallocation=full rs.qcow2 20M
	[ "$stderr" = "qimg: Preallocation can only be used for growing images" ]
	run -1 --separate-stderr qimg resize --preallocation=full rs.qcow2 32M
	[ "$stderr" = "qimg: Preallocation can only be used for growing images" ]
	run -0 qimg resize --preallocation=off rs.qcow2 32M
	run -0 qimg resize --preallocation=falloc rs.qcow2 40M
	run -1 --separate-stderr qimg resize --preallocation=bogus rs.qcow2 50M
	[ "$stderr" = "qimg: Invalid preallocation mode 'bogus'" ]
	run -0 --separate-stderr qimg resize -q rs.qcow2 64M
	[ "$output" = "" ]
	[ "$stderr" = "" ]
	[ "$(vsize rs.qcow2)" = 67108864 ]
	run -0 qemu-img check rs.qcow2
}

@test "sizes: suffixes, fractions, hex, relative; the values qemu refuses, refused alike" {
	need_qemu
	qemu-img create -q -f qcow2 a.qcow2 1M
	run -0 qimg resize a.qcow2 +1.5M
	[ "$(vsize a.qcow2)" = 2621440 ]
	run -0 qimg resize a.qcow2 0x300000
	[ "$(vsize a.qcow2)" = 3145728 ]
	run -0 qimg resize a.qcow2 4096K
	[ "$(vsize a.qcow2)" = 4194304 ]
	run -0 qimg resize --shrink a.qcow2 -1M
	[ "$(vsize a.qcow2)" = 3145728 ]
	run -1 --separate-stderr qimg resize a.qcow2 1.5
	[ "${stderr_lines[0]}" = "qimg: Parameter 'size' expects a non-negative number below 2^64" ]
	run -1 --separate-stderr qimg resize a.qcow2 +-1M
	[ "${stderr_lines[0]}" = "qimg: Parameter 'size' expects a non-negative number below 2^64" ]
	run -1 --separate-stderr qimg resize a.qcow2 16E
	[ "$stderr" = "qimg: Value '16E' is out of range for parameter 'size'" ]
	run -1 --separate-stderr qimg resize a.qcow2 8E
	[ "$stderr" = "qimg: New image size must be positive" ]
	run -1 --separate-stderr qimg resize a.qcow2 18446744073709551615
	[ "$stderr" = "qimg: New image size must be positive" ]
	run -1 --separate-stderr qimg resize a.qcow2 9223372036854775807
	[ "$stderr" = "qimg: a.qcow2: offset(9223372036854775807) exceeds maximum(9223372035781033984)" ]
	run -1 --separate-stderr qimg resize a.qcow2 4P
	[ "$stderr" = "qimg: a.qcow2: Failed to grow the L1 table: File too large" ]
	run -0 qimg resize a.qcow2 256T
	[ "$(vsize a.qcow2)" = 281474976710656 ]
	run -0 qemu-img check a.qcow2
	# qemu-img agrees on every one of those sizes.
	qemu-img create -q -f qcow2 b.qcow2 1M
	for s in +1.5M 0x300000 4096K 256T; do
		qemu-img resize -q b.qcow2 "$s"
	done
	[ "$(vsize b.qcow2)" = 281474976710656 ]
}

@test "command line: usage errors, --help, -U is refused as by qemu-img, --image-opts" {
	need_qemu
	qemu-img create -q -f qcow2 a.qcow2 1M
	run -0 qimg resize --help
	[[ ${lines[0]} == "usage: qimg resize "* ]]
	run -1 --separate-stderr qimg resize a.qcow2 2M extra
	[ "${stderr_lines[0]}" = "qimg: Expecting image file name and size" ]
	[ "${stderr_lines[1]}" = "Try 'qimg --help' for more information" ]
	run -1 --separate-stderr qimg resize -U a.qcow2 2M
	[ "${stderr_lines[0]}" = "qimg: invalid option -- 'U'" ]
	run -1 --separate-stderr qimg resize nonexist 2M
	[ "$stderr" = "qimg: nonexist: could not open 'nonexist': No such file or directory" ]
	run -1 --separate-stderr qimg resize -f raw --image-opts driver=qcow2,file.filename=a.qcow2 2M
	[ "$stderr" = "qimg: --image-opts and --format are mutually exclusive" ]
	run -1 --separate-stderr qimg resize --image-opts driver=qcow2,file.filename=a.qcow2,bogus=1 2M
	[ "$stderr" = "qimg: Could not open 'driver=qcow2,file.filename=a.qcow2,bogus=1': Block format 'qcow2' does not support the option 'bogus'" ]
	run -1 --separate-stderr qimg resize --object secret,id=s0 a.qcow2 2M
	[ "$stderr" = "qimg: Either 'file' or 'data' must be provided" ]
	run -0 qimg resize --object secret,id=s0,data=x --image-opts driver=qcow2,file.filename=a.qcow2 2M
	[ "$(vsize a.qcow2)" = 2097152 ]
	run -1 --separate-stderr qimg resize -f qcow2 a.raw 2M
	qemu-img create -q -f raw r.raw 1M
	run -1 --separate-stderr qimg resize -f qcow2 r.raw 2M
	[ "$stderr" = "qimg: r.raw: Image is not in qcow2 format" ]
}

@test "raw: --shrink needed, exact byte counts, falloc and full allocate, probing warns" {
	need_qemu
	qemu-img create -q -f raw rs.raw 8M
	run -1 --separate-stderr qimg resize rs.raw 5M
	[ "${stderr_lines[0]}" = "WARNING: Image format was not specified for 'rs.raw' and probing guessed raw." ]
	[ "${stderr_lines[1]}" = "         Automatically detecting the format is dangerous for raw images, write operations on block 0 will be restricted." ]
	[ "${stderr_lines[2]}" = "         Specify the 'raw' format explicitly to remove the restrictions." ]
	[ "${stderr_lines[3]}" = "qimg: Use the --shrink option to perform a shrink operation." ]
	run -0 qimg resize -f raw --shrink rs.raw 5M
	[ "$(stat -c %s rs.raw)" = 5242880 ]
	run -0 qimg resize -f raw rs.raw 9000001
	[ "$(stat -c %s rs.raw)" = 9000001 ]
	run -0 qimg resize -f raw --preallocation=full rs.raw 16M
	[ "$(stat -c %s rs.raw)" = 16777216 ]
	[ "$(( $(stat -c %b rs.raw) * 512 ))" -ge 6000000 ]
	run -0 qimg resize -f raw --preallocation=falloc rs.raw 32M
	[ "$(( $(stat -c %b rs.raw) * 512 ))" -ge 20000000 ]
	run -1 --separate-stderr qimg resize -f raw --preallocation=metadata rs.raw 40M
	[ "$stderr" = "qimg: rs.raw: Unsupported preallocation mode: metadata" ]
	# The size limit is the file system's: ext4 refuses 4 PiB, tmpfs (where
	# the suite normally runs) takes it, so only check where it applies.
	if ! truncate -s 4P probe 2>/dev/null; then
		run -1 --separate-stderr qimg resize -f raw rs.raw 4P
		[ "$stderr" = "qimg: rs.raw: Could not resize file: File too large" ]
		[ "$(stat -c %s rs.raw)" = 33554432 ]
	fi
	rm -f probe
}

# sequence CREATE_OPTS: grow, write, shrink, grow with each preallocation.
sequence() {
	qemu-img create -q -f qcow2 -o "$1" a.qcow2 8M
	head -c 3M /dev/urandom >data
	qemu-img convert -q -f raw -O raw -n data ref.raw 2>/dev/null || true
	qemu-img create -q -f raw ref.raw 8M
	qemu-io -f raw -c "write -P 0x11 0 1M" -c "write -P 0x22 5M 3M" ref.raw >/dev/null
	if [[ $1 != *compat=0.10* ]]; then
		# compressed clusters (and zstd ones where asked) in the middle
		qemu-img convert -c -O qcow2 -o "$1" ref.raw a.qcow2
	else
		qemu-io -c "write -P 0x11 0 1M" -c "write -P 0x22 5M 3M" a.qcow2 >/dev/null
	fi
	qemu-io -c "write -z 6M 64k" a.qcow2 >/dev/null
	qemu-io -f raw -c "write -z 6M 64k" ref.raw >/dev/null
	hdr_rest a.qcow2 >hdr.before
	step a.qcow2 ref.raw 20M
	qemu-io -c "write -P 0x33 18M 1536k" a.qcow2 >/dev/null
	qemu-io -f raw -c "write -P 0x33 18M 1536k" ref.raw >/dev/null
	same a.qcow2 ref.raw
	step a.qcow2 ref.raw --shrink 5767680	# 5.5M + 512: a partial cluster
	step a.qcow2 ref.raw --preallocation=metadata 10M
	qemu-io -c "write -P 0x44 9M 4k" a.qcow2 >/dev/null
	qemu-io -f raw -c "write -P 0x44 9M 4k" ref.raw >/dev/null
	step a.qcow2 ref.raw --preallocation=falloc 14M
	step a.qcow2 ref.raw --preallocation=full 18M
	step a.qcow2 ref.raw +1M
	step a.qcow2 ref.raw --shrink 1M
	hdr_rest a.qcow2 >hdr.after
	diff hdr.before hdr.after
}

@test "a resize sequence keeps content: default qcow2 v3" {
	need_qemu
	sequence cluster_size=65536
}

@test "a resize sequence keeps content: zstd compression survives (compression_type kept)" {
	need_qemu
	sequence compression_type=zstd
	[ "$(od -An -tu1 -j 104 -N 1 a.qcow2 | tr -d ' ')" = 1 ]
	qemu-img info a.qcow2 | grep -q "compression type: zstd"
}

@test "a resize sequence keeps content: extended L2 entries" {
	need_qemu
	sequence extended_l2=on,cluster_size=32768
}

@test "a resize sequence keeps content: lazy refcounts, 1-bit refcounts" {
	need_qemu
	sequence lazy_refcounts=on,refcount_bits=1
	qemu-img info a.qcow2 | grep -q "lazy refcounts: true"
	qemu-img info a.qcow2 | grep -qv "cleanly shut down"
}

@test "a resize sequence keeps content: v2 images, small and big clusters" {
	need_qemu
	sequence compat=0.10
	sequence cluster_size=512
	sequence cluster_size=2M
}

@test "v2 images with snapshots are refused; v3 ones grow and shrink and keep their snapshots" {
	need_qemu
	qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 4M
	qemu-img snapshot -c s1 v2.qcow2
	cp v2.qcow2 v2.before
	run -1 --separate-stderr qimg resize v2.qcow2 8M
	[ "$stderr" = "qimg: v2.qcow2: Can't resize a v2 image which has snapshots" ]
	cmp v2.qcow2 v2.before
	qemu-img create -q -f qcow2 v3.qcow2 4M
	qemu-io -c "write -P 1 0 4M" v3.qcow2 >/dev/null
	qemu-img convert -O raw v3.qcow2 s1.raw
	qemu-img snapshot -c s1 v3.qcow2
	qemu-io -c "write -P 2 1M 1M" v3.qcow2 >/dev/null
	run -0 qimg resize v3.qcow2 1G
	run -0 qimg resize --shrink v3.qcow2 2M
	run -0 qemu-img check v3.qcow2
	qemu-img snapshot -a s1 v3.qcow2
	[ "$(vsize v3.qcow2)" = 4194304 ]
	run -0 qemu-img compare v3.qcow2 s1.raw
}

@test "growing over a longer backing file: v3 reads zeros there, v2 is refused as by qemu-img" {
	need_qemu
	qemu-img create -q -f qcow2 b.qcow2 4M
	qemu-io -c "write -P 7 0 4M" b.qcow2 >/dev/null
	qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 o.qcow2 1M
	qemu-img create -q -f raw ref.raw 3M
	qemu-io -f raw -c "write -P 7 0 1M" ref.raw >/dev/null
	run -0 qimg resize o.qcow2 3M
	same o.qcow2 ref.raw
	qemu-img create -q -f qcow2 -o compat=0.10 -b b.qcow2 -F qcow2 o2.qcow2 1M
	run -1 --separate-stderr qimg resize o2.qcow2 3M
	[ "$stderr" = "qimg: o2.qcow2: Failed to zero out new clusters: Operation not supported" ]
	[ "$(vsize o2.qcow2)" = 1048576 ]
	run -0 qemu-img check o2.qcow2
	# inside the last cluster v2 can write the zeros
	run -0 qimg resize --shrink o2.qcow2 1000K
	run -0 qimg resize o2.qcow2 1M
	qemu-io -c "read -P 7 0 1000k" -c "read -P 0 1000k 24k" o2.qcow2 | grep -vq "verification failed"
	run -0 qemu-img check o2.qcow2
}

@test "bytes past a shrunken end do not come back when it grows again (qemu-img shows them)" {
	need_qemu
	qemu-img create -q -f qcow2 t.qcow2 1M
	qemu-io -c "write -P 0xff 960k 64k" t.qcow2 >/dev/null
	run -0 qimg resize --shrink t.qcow2 1000K
	run -0 qimg resize t.qcow2 1M
	run -0 qemu-io -c "read -P 0 1000k 24k" t.qcow2
	[[ $output != *"verification failed"* ]]
	run -0 qemu-img check t.qcow2
}

@test "shrinking gives the clusters back and truncates the file; qemu-img check agrees" {
	need_qemu
	qemu-img create -q -f qcow2 s.qcow2 2G
	qemu-io -c "write -P 2 0 64k" -c "write -P 1 1536M 8M" -c "write -P 3 1G 64k" s.qcow2 >/dev/null
	run -0 qimg resize --shrink s.qcow2 512M
	run -0 qemu-img check s.qcow2
	[[ $output == *"No errors were found"* ]]
	[ "$(stat -c %s s.qcow2)" -lt 1000000 ]
	qemu-io -c "read -P 2 0 64k" s.qcow2 | grep -vq "verification failed"
}

@test "shrinking frees refcount blocks left counting nothing: the file ends where qemu-img's does" {
	need_qemu
	qemu-img create -q -f qcow2 -o cluster_size=4096 a.qcow2 64M
	qemu-io -c "write -P 1 0 64M" a.qcow2 >/dev/null
	cp a.qcow2 q.qcow2
	run -0 qimg resize --shrink a.qcow2 1M
	qemu-img resize -q --shrink q.qcow2 1M
	[ "$(stat -c %s a.qcow2)" = "$(stat -c %s q.qcow2)" ]
	run -0 qemu-img check a.qcow2
	run -0 qemu-img compare a.qcow2 q.qcow2
	# stopped after any write: leaks at worst, here too
	cp q.qcow2 tmpl.qcow2
	qemu-img resize -q tmpl.qcow2 64M
	qemu-io -c "write -P 1 0 64M" tmpl.qcow2 >/dev/null
	qemu-img convert -O raw tmpl.qcow2 old.raw
	head -c 1M old.raw >new.raw
	crash_resize tmpl.qcow2 old.raw new.raw --shrink 1M
}

@test "an external data file follows the virtual size" {
	need_qemu
	qemu-img create -q -f qcow2 -o data_file=d.raw dd.qcow2 1M
	qemu-io -c "write -P 5 0 1M" dd.qcow2 >/dev/null
	run -0 qimg resize dd.qcow2 2M
	[ "$(stat -c %s d.raw)" = 2097152 ]
	run -0 qimg resize --preallocation=metadata dd.qcow2 3M
	[ "$(stat -c %s d.raw)" = 3145728 ]
	run -0 qimg resize --shrink dd.qcow2 1M
	[ "$(stat -c %s d.raw)" = 1048576 ]
	run -0 qemu-img check dd.qcow2
	qemu-io -c "read -P 5 0 1M" dd.qcow2 | grep -vq "verification failed"
}

@test "1 TiB to 2 TiB and back: moments, little memory, qemu-img agrees" {
	need_qemu
	qemu-img create -q -f qcow2 big.qcow2 1T
	qemu-io -c "write -P 1 1023G 1M" big.qcow2 >/dev/null
	run -0 qimg_bounded resize big.qcow2 2T
	run -0 qimg_bounded resize --shrink big.qcow2 1T
	run -0 qimg_bounded resize big.qcow2 +1T
	[ "$(vsize big.qcow2)" = 2199023255552 ]
	run -0 qemu-img check big.qcow2
	qemu-io -c "read -P 1 1023G 1M" big.qcow2 | grep -vq "verification failed"
}

# crash_resize TEMPLATE REF_OLD REF_NEW [OPTIONS] SIZE: stop the resize
# after N writes (every N up to 12, then sparser); the image must be clean
# or only leak, and read as before or as after.
crash_resize() {
	local tmpl=$1 old=$2 new=$3 n=0 st vs sz
	shift 3
	sz=${!#}
	while :; do
		cp "$tmpl" t.qcow2
		st=0
		QIMG_FAULT_AFTER_WRITES=$n "$QIMG" resize "${@:1:$#-1}" t.qcow2 "$sz" >/dev/null 2>&1 || st=$?
		only_leaks t.qcow2 "$n"
		vs=$(vsize t.qcow2)
		if [ "$vs" = "$(stat -c %s "$old")" ]; then
			qemu-img compare -q -F raw t.qcow2 "$old" || { echo "N=$n: old content changed"; return 1; }
		else
			qemu-img compare -q -F raw t.qcow2 "$new" || { echo "N=$n: new content wrong"; return 1; }
		fi
		[ "$st" -eq 86 ] || break
		n=$(next_point "$n")
	done
	[ "$st" -eq 0 ]
}

@test "a resize stopped after any write leaves at worst leaks and the old or new content" {
	need_qemu
	qemu-img create -q -f qcow2 -o cluster_size=4096 tmpl.qcow2 64M
	qemu-io -c "write -P 1 0 4M" -c "write -P 2 40M 4M" -c "write -c -P 3 60M 1M" tmpl.qcow2 >/dev/null
	qemu-img convert -O raw tmpl.qcow2 old.raw
	cp old.raw small.raw
	truncate -s 20M small.raw
	crash_resize tmpl.qcow2 old.raw small.raw --shrink 20M
	cp old.raw big.raw
	truncate -s 4G big.raw
	crash_resize tmpl.qcow2 old.raw big.raw 4G	# the L1 table moves
	truncate -s 100M big.raw
	crash_resize tmpl.qcow2 old.raw big.raw --preallocation=metadata 100M
	crash_resize tmpl.qcow2 old.raw big.raw --preallocation=full 100M
}
