#!/usr/bin/env bats
# qimg rebase: safe rebases onto a sibling, the grandparent and nothing
# keep the guest content of chains 1 to 3 deep (data in every layer, zero,
# compressed and partial clusters, layers of different sizes), judged by
# qemu-img compare against a raw export and qemu-img check; qimg and
# qemu-img rebase each other's images; -u rewrites only the name and
# format; qemu-img's messages and exit codes; crashes at every write.

load helper
load crash

# vsize FILE: virtual size as qemu-img reports it.
vsize() {
	qemu-img info --output=json "$1" | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p'
}

# backing_of FILE: the backing file name recorded in FILE ("" for none).
backing_of() {
	qemu-img info --output=json "$1" | sed -n 's/.*"backing-filename": "\([^"]*\)".*/\1/p'
}

# layer TOOL FILE SIZE IDX [BACKING]: a qcow2 layer written by TOOL (qemu
# or qimg) with data, zero clusters, a partial cluster, an unaligned run
# and (qemu-io only) compressed clusters, all placed by IDX so that every
# layer shows through somewhere.
layer() {
	local tool=$1 f=$2 size=$3 i=$4 b=${5:-} io=(qemu-io) mk=(qemu-img)
	if [ "$tool" = qimg ]; then
		io=("$QIMG" io)
		mk=("$QIMG")
	fi
	"${mk[@]}" create -q -f qcow2 ${b:+-b "$b" -F qcow2} "$f" "$size" >/dev/null
	local cmds=(-c "write -P $((16 * i + 1)) $((i * 512))k 768k"
		-c "write -z $((i * 512 + 256))k 128k"
		-c "write -P $((16 * i + 2)) $((2048 + i * 96))k 4k"
		-c "write -P $((16 * i + 3)) $((3000 + i * 200))k 100k")
	[ "$tool" = qimg ] || cmds+=(-c "write -c -P $((16 * i + 4)) $((4096 + i * 128))k 128k")
	"${io[@]}" "${cmds[@]}" "$f" >/dev/null
}

# chain TOOL DEPTH: L0 <- ... <- L(DEPTH-1) <- top.qcow2, sizes 8M, 6M, 8M
# (a middle layer shorter than the one below it), top 8M; sib.qcow2 is a
# sibling sharing some of L0's content; before.raw the top's content.
chain() {
	local tool=$1 depth=$2 sizes=(8M 6M 8M) b=""
	for ((i = 0; i < depth; i++)); do
		layer "$tool" "L$i.qcow2" "${sizes[$i]}" "$i" "$b"
		b=L$i.qcow2
	done
	layer "$tool" top.qcow2 8M 5 "$b"
	qemu-img convert -O qcow2 L0.qcow2 sib.qcow2
	qemu-io -c "write -P 0x77 1M 2M" -c "write -z 5M 1M" sib.qcow2 >/dev/null
	qemu-img resize -q --shrink sib.qcow2 7M
	qemu-img convert -O raw top.qcow2 before.raw
}

# judge IMG BACKING: content unchanged, no errors, the new name recorded.
judge() {
	run qemu-img check "$1"
	echo "$output"
	[ "$status" -eq 0 ]
	run qemu-img compare -F raw "$1" before.raw
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(backing_of "$1")" = "$2" ]
}

# targets DEPTH: sibling, grandparent (when there is one), nothing.
targets() {
	echo sib.qcow2
	[ "$1" -lt 2 ] || echo "L$(($1 - 2)).qcow2"
	echo ""
}

# rebases TOOL DEPTH: qimg rebases TOOL's chain onto every target, and
# qemu-img rebases qimg's result again (onto nothing).
rebases() {
	chain "$1" "$2"
	while IFS= read -r t; do
		cp top.qcow2 w.qcow2
		run -0 --separate-stderr qimg rebase -b "$t" ${t:+-F qcow2} w.qcow2
		[ "$output" = "" ]
		[ "$stderr" = "" ]
		judge w.qcow2 "$t"
		qemu-img rebase -b "" w.qcow2
		judge w.qcow2 ""
	done < <(targets "$2")
}

@test "safe rebase keeps the content of qemu-img's chains, depth 1 to 3" {
	need_qemu
	for d in 1 2 3; do
		rebases qemu "$d"
	done
}

@test "safe rebase keeps the content of qimg's chains, depth 1 to 3; qemu-img rebases them alike" {
	need_qemu
	for d in 1 2 3; do
		rebases qimg "$d"
		while IFS= read -r t; do
			cp top.qcow2 w.qcow2
			qemu-img rebase -b "$t" ${t:+-F qcow2} w.qcow2
			judge w.qcow2 "$t"
		done < <(targets "$d")
	done
}

@test "what qimg copies in: differing clusters only, whole, zeros as zero clusters" {
	need_qemu
	# b1: 1@0-1M, 2@2M-3M; b2: 1@0-1M, 9@4M-5M; top (on b1): 15@8M+64k
	qemu-img create -q -f qcow2 b1.qcow2 16M
	qemu-io -c "write -P 1 0 1M" -c "write -P 2 2M 1M" b1.qcow2 >/dev/null
	qemu-img create -q -f qcow2 b2.qcow2 16M
	qemu-io -c "write -P 1 0 1M" -c "write -P 9 4M 1M" b2.qcow2 >/dev/null
	qemu-img create -q -f qcow2 -b b1.qcow2 -F qcow2 top.qcow2
	qemu-io -c "write -P 15 8M 64k" -c "write -P 3 2M 4k" top.qcow2 >/dev/null
	qemu-img convert -O raw top.qcow2 before.raw
	run -0 qimg rebase -b b2.qcow2 -F qcow2 top.qcow2
	judge top.qcow2 b2.qcow2
	run -0 qemu-img map --output=json top.qcow2
	# 0-1M is the same in both: still read from b2; 2M-3M copied as data,
	# 4M-5M (zeros in b1) as zero clusters; the rest untouched.
	[ "${lines[0]}" = '[{ "start": 0, "length": 1048576, "depth": 1, "present": true, "zero": false, "data": true, "offset": 327680},' ]
	[[ ${lines[2]} == '{ "start": 2097152, "length": 1048576, "depth": 0, "present": true, "zero": false, "data": true'* ]]
	[ "${lines[4]}" = '{ "start": 4194304, "length": 1048576, "depth": 0, "present": true, "zero": true, "data": false},' ]
	# a v2 image has no zero clusters: zeros are written as data
	qemu-img create -q -f qcow2 -o compat=0.10 -b b1.qcow2 -F qcow2 v2.qcow2
	run -0 qimg rebase -b b2.qcow2 -F qcow2 v2.qcow2
	run -0 qemu-img compare b1.qcow2 v2.qcow2
	run -0 qemu-img check v2.qcow2
}

@test "extended L2, zstd and 512-byte cluster images rebase safely" {
	need_qemu
	for o in extended_l2=on,cluster_size=32768 compression_type=zstd cluster_size=512 compat=0.10; do
		qemu-img create -q -f qcow2 base.qcow2 4M
		qemu-io -c "write -P 1 0 4M" base.qcow2 >/dev/null
		qemu-img create -q -f qcow2 -o "$o" -b base.qcow2 -F qcow2 top.qcow2
		qemu-io -c "write -P 2 1k 2k" -c "write -P 3 100k 1k" -c "write -z 1M 40k" top.qcow2 >/dev/null
		[[ $o == compat* ]] || qemu-io -c "write -c -P 4 2M 64k" top.qcow2 >/dev/null
		qemu-img convert -O raw top.qcow2 before.raw
		qemu-img create -q -f qcow2 other.qcow2 5M
		qemu-io -c "write -P 1 0 512k" -c "write -P 6 3M 2M" other.qcow2 >/dev/null
		run -0 qimg rebase -b other.qcow2 -F qcow2 top.qcow2
		judge top.qcow2 other.qcow2
		run -0 qimg rebase -b "" top.qcow2
		judge top.qcow2 ""
	done
}

@test "qemu-img's rebase session: the same messages and exit codes" {
	need_qemu
	qemu-img create -q -f qcow2 b2.qcow2 16M
	qemu-img create -q -f qcow2 top.qcow2 16M
	run -1 --separate-stderr qimg rebase -b b2.qcow2 top.qcow2
	[ "$stderr" = "qimg: Could not change the backing file to 'b2.qcow2': backing format must be specified" ]
	run -1 --separate-stderr qimg rebase top.qcow2
	[ "${stderr_lines[0]}" = "qimg: Must specify backing file (-b) or use unsafe mode (-u)" ]
	[ "${stderr_lines[1]}" = "Try 'qimg --help' for more information" ]
	run -1 --separate-stderr qimg rebase -b b2.qcow2 -F qcow2 top.qcow2 extra
	[ "${stderr_lines[0]}" = "qimg: Expecting one image file name" ]
	qemu-img create -q -f qcow2 -b gone.qcow2 -F qcow2 -u t3.qcow2 16M
	run -1 --separate-stderr qimg rebase -b b2.qcow2 -F qcow2 t3.qcow2
	[ "$stderr" = "qimg: t3.qcow2: could not open backing file: could not open 'gone.qcow2': No such file or directory" ]
	run -0 --separate-stderr qimg rebase -u -b nonexist.qcow2 -F qcow2 t3.qcow2
	[ "$(backing_of t3.qcow2)" = nonexist.qcow2 ]
	qemu-img create -q -f raw r.raw 16M
	run -1 --separate-stderr qimg rebase -f raw -b b2.qcow2 -F qcow2 r.raw
	[ "$stderr" = "qimg: Could not change the backing file to 'b2.qcow2': Operation not supported" ]
	run -1 --separate-stderr qimg rebase -b nonexist.qcow2 -F qcow2 top.qcow2
	[ "$stderr" = "qimg: Could not open new backing file 'nonexist.qcow2': could not open 'nonexist.qcow2': No such file or directory" ]
	run -1 --separate-stderr qimg rebase -b r.raw -F qcow2 top.qcow2
	[ "$stderr" = "qimg: Could not open new backing file 'r.raw': Image is not in qcow2 format" ]
	run -1 --separate-stderr qimg rebase -b r.raw -F bogus top.qcow2
	[ "$stderr" = "qimg: Invalid format name: 'bogus'" ]
	run -1 --separate-stderr qimg rebase -t bogus -b b2.qcow2 -F qcow2 top.qcow2
	[ "$stderr" = "qimg: Invalid cache option: bogus" ]
	run -1 --separate-stderr qimg rebase -T bogus -b b2.qcow2 -F qcow2 top.qcow2
	[ "$stderr" = "qimg: Invalid source cache option: bogus" ]
	run -0 qimg rebase -t none -T writeback -U -b b2.qcow2 -F qcow2 top.qcow2
	run -1 --separate-stderr qimg rebase -b top.qcow2 -F qcow2 top.qcow2
	[ "$stderr" = "qimg: Could not open new backing file 'top.qcow2': its backing chain would include 'top.qcow2' itself" ]
	run -1 --separate-stderr qimg rebase -u -b top.qcow2 -F qcow2 top.qcow2
	[ "$stderr" = "qimg: Could not change the backing file to 'top.qcow2': it is the image itself" ]
	run -0 qemu-img check top.qcow2
	[ "$(backing_of top.qcow2)" = b2.qcow2 ]
	run -0 qimg rebase --help
	[[ ${lines[0]} == "usage: qimg rebase "* ]]
}

@test "-u rewrites only the name and format: the header comes out as qemu-img's, unknown parts kept" {
	need_qemu
	qemu-img create -q -f qcow2 -o compression_type=zstd,lazy_refcounts=on b.qcow2 1M
	qemu-img create -q -f qcow2 -o compression_type=zstd,lazy_refcounts=on -b b.qcow2 -F qcow2 a.qcow2
	poke_be64 a.qcow2 88 $((1 << 5))	# an unknown autoclear bit: cleared
	cp a.qcow2 q.qcow2
	run -0 qimg rebase -u -b other.qcow2 -F raw a.qcow2
	qemu-img rebase -u -b other.qcow2 -F raw q.qcow2
	cmp a.qcow2 q.qcow2
	[ "$(peek_be64 a.qcow2 88)" = 0 ]
	run -0 qimg rebase -u a.qcow2
	qemu-img rebase -u q.qcow2
	cmp a.qcow2 q.qcow2
	# An unknown extension and unknown header bytes stay as they were.
	qemu-img create -q -f qcow2 u.qcow2 1M
	hl=$(peek_be32 u.qcow2 100)
	# header_length 112 -> 120 with 8 unknown bytes, then an unknown
	# extension 0x12345678 of 5 bytes before the feature table.
	python3 - u.qcow2 <<-'EOF'
		import struct, sys
		f = open(sys.argv[1], 'r+b')
		d = bytearray(f.read(65536))
		hl = struct.unpack('>I', d[100:104])[0]
		rest = d[hl:4096]
		ext = struct.pack('>II', 0x12345678, 5) + b'hello\0\0\0'
		new = d[:hl] + b'\xde\xad\xbe\xef\x01\x02\x03\x04' + ext + rest
		new[100:104] = struct.pack('>I', hl + 8)
		f.seek(0)
		f.write(bytes(new[:4096]))
	EOF
	run -0 qemu-img check u.qcow2
	cp u.qcow2 uq.qcow2
	run -0 qimg rebase -u -b some/where.qcow2 -F qcow2 u.qcow2
	[ "$(backing_of u.qcow2)" = some/where.qcow2 ]
	[ "$(od -An -tx1 -j 112 -N 8 u.qcow2 | tr -d ' \n')" = deadbeef01020304 ]
	od -An -tx1 -v -N 4096 u.qcow2 | tr -d ' \n' | grep -q 123456780000000568656c6c6f000000
	qemu-img rebase -u -b some/where.qcow2 -F qcow2 uq.qcow2
	cmp u.qcow2 uq.qcow2
}

@test "a backing name that no longer fits in cluster 0 is refused, the image untouched" {
	need_qemu
	qemu-img create -q -f qcow2 -o cluster_size=512 a.qcow2 1M
	cp a.qcow2 before
	long=$(printf 'n%.0s' $(seq 400))
	run -1 --separate-stderr qimg rebase -u -b "$long" -F qcow2 a.qcow2
	[ "$stderr" = "qimg: Could not change the backing file to '$long': No space left in the file header" ]
	cmp a.qcow2 before
	run -1 --separate-stderr qimg rebase -u -b "$long$long$long" -F qcow2 a.qcow2
	[ "$stderr" = "qimg: Could not change the backing file to '$long$long$long': backing file name is longer than 1023 bytes" ]
	cmp a.qcow2 before
	run -0 qimg rebase -u -b "${long:0:300}" -F qcow2 a.qcow2
	qemu-img rebase -u -b "${long:0:300}" -F qcow2 before
	cmp a.qcow2 before
}

@test "relative backing names are resolved against the image's directory and stored as given" {
	need_qemu
	mkdir sub
	qemu-img create -q -f qcow2 sub/s.qcow2 4M
	qemu-io -c "write -P 3 0 1M" sub/s.qcow2 >/dev/null
	qemu-img create -q -f qcow2 sub/b.qcow2 4M
	qemu-io -c "write -P 4 0 2M" sub/b.qcow2 >/dev/null
	qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 sub/t.qcow2
	qemu-img convert -O raw sub/t.qcow2 before.raw
	run -0 qimg rebase -b s.qcow2 -F qcow2 sub/t.qcow2
	judge sub/t.qcow2 s.qcow2
	run -0 qimg --help
	run -0 qimg rebase --image-opts -b ../sub/b.qcow2 -F qcow2 driver=qcow2,file.filename=sub/t.qcow2
	judge sub/t.qcow2 ../sub/b.qcow2
}

@test "-p prints qemu-img's progress line; -q silences it" {
	need_qemu
	qemu-img create -q -f qcow2 b.qcow2 16M
	qemu-io -c "write -P 1 0 16M" b.qcow2 >/dev/null
	qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 t.qcow2
	run -0 --separate-stderr qimg rebase -p -b "" t.qcow2
	[[ $output == "    (0.00/100%)"$'\r'*"    (100.00/100%)"$'\r' ]]
	[ "$stderr" = "" ]
	qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 t.qcow2
	run -0 --separate-stderr qimg rebase -p -q -b "" t.qcow2
	[ "$output" = "" ]
}

@test "a rebase stopped after any write leaves the content and at worst leaks" {
	need_qemu
	qemu-img create -q -f qcow2 -o cluster_size=4096 b1.qcow2 8M
	qemu-io -c "write -P 1 0 3M" -c "write -c -P 2 4M 1M" b1.qcow2 >/dev/null
	qemu-img create -q -f qcow2 -o cluster_size=4096 b2.qcow2 8M
	qemu-io -c "write -P 1 0 1M" -c "write -P 9 6M 1M" b2.qcow2 >/dev/null
	qemu-img create -q -f qcow2 -o cluster_size=4096 -b b1.qcow2 -F qcow2 tmpl.qcow2
	qemu-io -c "write -P 5 2M 8k" tmpl.qcow2 >/dev/null
	qemu-img convert -O raw tmpl.qcow2 before.raw
	for target in b2.qcow2 ""; do
		n=0
		while :; do
			cp tmpl.qcow2 t.qcow2
			st=0
			QIMG_FAULT_AFTER_WRITES=$n "$QIMG" rebase -b "$target" ${target:+-F qcow2} t.qcow2 >/dev/null 2>&1 || st=$?
			only_leaks t.qcow2 "$n"
			qemu-img compare -q -F raw t.qcow2 before.raw || { echo "N=$n: content changed"; return 1; }
			[ "$st" -eq 86 ] || break
			n=$(next_point "$n")
		done
		[ "$st" -eq 0 ]
		[ "$(backing_of t.qcow2)" = "$target" ]
	done
}
