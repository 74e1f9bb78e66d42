#!/usr/bin/env bats
# qimg check, e2fsprogs' way: a damaged image (a small poke at documented
# offsets), the output of a check and of a repair, then a second run that
# must be clean.  qemu-img 7.2 is the judge: for the same file, qimg's
# exit status, stdout and stderr lines are qemu-img's (qimg adds
# "Overlap:" notes, which are filtered out before comparing), and after
# `qimg check -r all` qemu-img check finds the image clean and qemu-img
# compare finds the data of a copy taken before the damage.
#
# base.qcow2 (qemu-img create 64M; 256k of 0x01 at 0, 64k of 0x02 at 10M):
#   cluster 0 header, 1 refcount table (0x10000), 2 refcount block
#   (0x20000, 16-bit entries), 3 L1 table (0x30000), 4 L2 table (0x40000),
#   5-8 data of guest clusters 0-3, 9 data of guest cluster 160.

load helper

make_base() {
	need_qemu
	qemu-img create -q -f qcow2 base.qcow2 64M
	qemu-io -c 'write -P 1 0 256k' -c 'write -P 2 10M 64k' base.qcow2 >/dev/null
}

# damage NAME: a copy of base.qcow2 to poke at.
damage() {
	cp base.qcow2 "$1"
}

# same_as_qemu IMG [ARGS...]: run qemu-img check and qimg check (with
# ARGS) on two copies of IMG with the same name, and compare status,
# stdout and stderr.  The copies stay in q/ and m/.
same_as_qemu() {
	local img=$1
	shift
	rm -rf q m
	mkdir q m
	cp "$img" q/t.qcow2
	cp "$img" m/t.qcow2
	(cd q && { qemu-img check "$@" t.qcow2 >out 2>err || echo $? >rc; })
	(cd m && { "$QIMG" check "$@" t.qcow2 >out 2>err || echo $? >rc; })
	[ -f q/rc ] || echo 0 >q/rc
	[ -f m/rc ] || echo 0 >m/rc
	sed -i 's/^qemu-img: /qimg: t.qcow2: /' q/err
	grep -v '^Overlap: ' m/err >m/err.cmp || true
	diff -u q/rc m/rc
	diff -u q/out m/out
	diff -u q/err m/err.cmp
}

# json_same IMG [ARGS...]: the same, for --output=json, compared as JSON.
json_same() {
	local img=$1
	shift
	same_as_qemu "$img" --output=json "$@" >/dev/null || true
	diff -u <(jq -S . q/out) <(jq -S . m/out)
	diff -u q/rc m/rc
}

# qemu_clean IMG: qemu-img check finds nothing wrong.
qemu_clean() {
	run -0 qemu-img check "$1"
	[ "${lines[0]}" = "No errors were found on the image." ]
}

# repaired IMG: qimg -r all leaves it clean for qemu-img and for qimg, with
# the data of base.qcow2.
repaired() {
	run -0 qimg check -r all "$1"
	qemu_clean "$1"
	run -0 qimg check "$1"
	run -0 qemu-img compare base.qcow2 "$1"
}

@test "check: a clean image, human, JSON and quiet, as qemu-img" {
	make_base
	same_as_qemu base.qcow2
	[ "$(cat m/out)" = "No errors were found on the image.
5/1024 = 0.49% allocated, 0.00% fragmented, 0.00% compressed clusters
Image end offset: 655360" ]
	json_same base.qcow2
	same_as_qemu base.qcow2 -q
	[ ! -s m/out ]
}

@test "check: leaked cluster (L2 entry of guest cluster 3 zeroed): found, freed, clean" {
	make_base
	damage leak.qcow2
	poke_be64 leak.qcow2 $((0x40018)) 0
	same_as_qemu leak.qcow2
	[ "$(cat m/rc)" = 3 ]
	[ "$(cat m/err)" = "Leaked cluster 8 refcount=1 reference=0" ]
	json_same leak.qcow2
	same_as_qemu leak.qcow2 -r leaks
	[ "$(cat m/rc)" = 0 ]
	same_as_qemu leak.qcow2 -r all
	json_same leak.qcow2 -r leaks
	qemu_clean m/t.qcow2
	run -0 qimg check m/t.qcow2
}

@test "check: refcount too high (cluster 6: 2): a leak plus a COPIED error, -r leaks fixes both" {
	make_base
	damage bump.qcow2
	poke_be16 bump.qcow2 $((0x2000c)) 2
	same_as_qemu bump.qcow2
	[ "$(cat m/rc)" = 2 ]
	same_as_qemu bump.qcow2 -r leaks
	[ "$(cat m/rc)" = 0 ]
	qemu_clean m/t.qcow2
	run -0 qemu-img compare base.qcow2 m/t.qcow2
}

@test "check: refcount 0 on a used cluster: -r leaks refuses, -r all rebuilds like qemu" {
	make_base
	damage zeroref.qcow2
	poke_be16 zeroref.qcow2 $((0x2000c)) 0
	same_as_qemu zeroref.qcow2
	[ "$(head -1 m/err)" = "ERROR cluster 6 refcount=0 reference=1" ]
	json_same zeroref.qcow2
	same_as_qemu zeroref.qcow2 -r leaks
	[ "$(cat m/rc)" = 1 ]
	[ "$(tail -1 m/err)" = "qimg: t.qcow2: Check failed: Input/output error" ]
	same_as_qemu zeroref.qcow2 -r all
	grep -qx 'Rebuilding refcount structure' m/err
	grep -qx 'Image end offset: 786432' m/out
	json_same zeroref.qcow2 -r all
	repaired zeroref.qcow2
}

@test "check: unaligned L2 entry is reported and left, as qemu-img does" {
	make_base
	damage unal.qcow2
	poke_be64 unal.qcow2 $((0x40008)) $((0x8000000000060200))
	same_as_qemu unal.qcow2
	[ "$(head -1 m/err)" = "ERROR offset=60200: Data cluster is not properly aligned; L2 entry corrupted." ]
	same_as_qemu unal.qcow2 -r leaks
	same_as_qemu unal.qcow2 -r all
	[ "$(cat m/rc)" = 2 ]
	json_same unal.qcow2 -r all
	run -2 qemu-img check m/t.qcow2
}

@test "check: preallocated (zero) entry at an unaligned offset: repaired like qemu" {
	make_base
	damage zal.qcow2
	poke_be64 zal.qcow2 $((0x40008)) $((0x8000000000060201))
	same_as_qemu zal.qcow2
	same_as_qemu zal.qcow2 -r all
	[ "$(cat m/rc)" = 0 ]
	qemu_clean m/t.qcow2
}

@test "check: L2 entry past the end of the file: reported as qemu; -r all makes it a zero cluster" {
	make_base
	damage l2eof.qcow2
	poke_be64 l2eof.qcow2 $((0x40008)) $((0x8000000000200000))
	same_as_qemu l2eof.qcow2
	[ "$(cat m/rc)" = 2 ]
	# qemu reads zeros there; so does the repaired image.
	qemu-io -c 'read -P 0 64k 64k' l2eof.qcow2 | grep -q '^read 65536/65536'
	run -0 qimg check -r all l2eof.qcow2
	[ "${stderr_lines[0]:-}" = "" ] || true
	qemu_clean l2eof.qcow2
	qemu-io -c 'read -P 0 64k 64k' -c 'read -P 1 0 64k' -c 'read -P 1 128k 128k' l2eof.qcow2 | grep -c '^read' | grep -qx 3
}

@test "check: L1 entry past the end of the file: reported as qemu; -r all drops it, data elsewhere untouched" {
	make_base
	qemu-img resize -q base.qcow2 2G
	qemu-io -c 'write -P 3 1G 64k' base.qcow2 >/dev/null
	# Guest 1G is L1[2] (512 MiB per L1 entry); the grown L1 has moved.
	cp base.qcow2 l1eof.qcow2
	l1=$(peek_be64 l1eof.qcow2 40)
	[ "$(peek_be32 l1eof.qcow2 $((l1 + 16 + 4)))" != 0 ]
	poke_be64 l1eof.qcow2 $((l1 + 16)) $((0x8000000010000000))
	same_as_qemu l1eof.qcow2
	[ "$(cat m/rc)" = 2 ]
	grep -qx 'ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x10000000 size 0x10000' m/err
	run -0 qimg check -r all l1eof.qcow2
	qemu_clean l1eof.qcow2
	qemu-io -c 'read -P 1 0 256k' -c 'read -P 2 10M 64k' -c 'read -P 0 1G 64k' l1eof.qcow2 | grep -c '^read' | grep -qx 3
}

@test "check: reserved bits in L1 and L2 entries: reported as qemu; -r all clears them, data intact" {
	make_base
	damage l2res.qcow2
	poke_be64 l2res.qcow2 $((0x40008)) $((0x8200000000060002))
	same_as_qemu l2res.qcow2
	[ "$(head -1 m/err)" = "ERROR found l2 entry with reserved bits set: 8200000000060002" ]
	same_as_qemu l2res.qcow2 -r leaks
	run -0 --separate-stderr qimg check -r all l2res.qcow2
	[ "${stderr_lines[0]}" = "Repairing found l2 entry with reserved bits set: 8200000000060002" ]
	[ "${lines[0]}" = "The following inconsistencies were found and repaired:" ]
	repaired l2res.qcow2
	damage l1res.qcow2
	poke_be64 l1res.qcow2 $((0x30000)) $((0x8100000000040000))
	same_as_qemu l1res.qcow2
	[ "$(head -1 m/err)" = "ERROR found L1 entry with reserved bits set: 8100000000040000" ]
	repaired l1res.qcow2
}

@test "check: compressed clusters: COPIED set and a descriptor past the end" {
	need_qemu
	qemu-img create -q -f raw src.raw 1M
	qemu-io -f raw -c 'write -P 5 0 64k' -c 'write -P 6 64k 64k' -c 'write -P 7 512k 128k' src.raw >/dev/null
	qemu-img convert -c -O qcow2 src.raw comp.qcow2
	same_as_qemu comp.qcow2
	grep -qx '4/16 = 25.00% allocated, 100.00% fragmented, 100.00% compressed clusters' m/out
	json_same comp.qcow2
	# L2 at 0x40000; entry 1 is 0x400000000005004f (data at 0x5004f).
	cp comp.qcow2 ccop.qcow2
	poke_be64 ccop.qcow2 $((0x40008)) $((0xc00000000005004f))
	same_as_qemu ccop.qcow2
	[ "$(cat m/err)" = "ERROR: coffset=0x5004f: copied flag must never be set for compressed clusters" ]
	run -0 qimg check -r all ccop.qcow2
	qemu_clean ccop.qcow2
	run -0 qemu-img compare src.raw ccop.qcow2
	# A descriptor past the end cannot be repaired: left, exit 2.
	cp comp.qcow2 ceof.qcow2
	poke_be64 ceof.qcow2 $((0x40008)) $((0x4000000000200000))
	same_as_qemu ceof.qcow2
	same_as_qemu ceof.qcow2 -r all
	[ "$(cat m/rc)" = 2 ]
}

@test "check: COPIED wrong on an L2 entry and on an L1 entry: reported and repaired as qemu" {
	make_base
	damage cop.qcow2
	poke_be64 cop.qcow2 $((0x40008)) $((0x60000))
	poke_be64 cop.qcow2 $((0x30000)) $((0x40000))
	same_as_qemu cop.qcow2
	grep -qx 'ERROR OFLAG_COPIED L2 cluster: l1_index=0 l1_entry=40000 refcount=1' m/err
	grep -qx 'ERROR OFLAG_COPIED data cluster: l2_entry=60000 refcount=1' m/err
	same_as_qemu cop.qcow2 -r leaks
	[ "$(cat m/rc)" = 0 ]
	same_as_qemu cop.qcow2 -r all
	json_same cop.qcow2 -r all
	repaired cop.qcow2
}

@test "check: two L2 entries sharing a cluster: as qemu, refcount raised and COPIED cleared" {
	make_base
	damage share.qcow2
	poke_be64 share.qcow2 $((0x40008)) $((0x8000000000050000))
	same_as_qemu share.qcow2
	[ "$(cat m/err)" = "ERROR cluster 5 refcount=1 reference=2
Leaked cluster 6 refcount=1 reference=0" ]
	same_as_qemu share.qcow2 -r all
	[ "$(cat m/rc)" = 0 ]
	qemu_clean m/t.qcow2
}

@test "check: metadata overlapping metadata or the header: noted, counted as qemu, rebuilt" {
	make_base
	# The L1 entry names the refcount table as its L2 table.
	damage ovl.qcow2
	poke_be64 ovl.qcow2 $((0x30000)) $((0x8000000000010000))
	same_as_qemu ovl.qcow2
	grep -qx 'Overlap: cluster 1 is used by an L2 table and by the refcount table' m/err
	grep -qx 'Overlap: cluster 2 is used by guest data and by a refcount block' m/err
	grep -qx 'ERROR refcount block 0 refcount=2' m/err
	run -0 qimg check -r all ovl.qcow2
	qemu_clean ovl.qcow2
	# qemu writes its new refcount block over the leaked L2 table and
	# data; qimg keeps them (the old L2 table is still at 0x40000).
	cmp -n 65536 -i $((0x40000)):$((0x40000)) base.qcow2 ovl.qcow2
	# An L2 table on the header.
	damage hdr.qcow2
	poke_be64 hdr.qcow2 $((0x30000)) $((0x8000000000000000))
	same_as_qemu hdr.qcow2
	grep -q '^Overlap: cluster 0 is used by the image header and by an L2 table$' m/err
}

@test "check: an overlap qemu-img cannot see (its refcount matches) is an error for qimg" {
	make_base
	qemu-img snapshot -c s1 base.qcow2
	qemu-io -c 'write -P 3 0 64k' base.qcow2 >/dev/null
	# Active L2 at 0xc0000; guest cluster 4 now maps the snapshot's L2
	# table (cluster 4), whose refcount is raised to match.
	cp base.qcow2 ov.qcow2
	poke_be64 ov.qcow2 $((0xc0020)) $((0x40000))
	poke_be16 ov.qcow2 $((0x20008)) 2
	run -0 qemu-img check ov.qcow2
	run -2 --separate-stderr qimg check ov.qcow2
	[ "$stderr" = "Overlap: cluster 4 is used by guest data and by an L2 table
ERROR cluster 4 is used by guest data and by an L2 table" ]
	[ "${lines[0]}" = "1 errors were found on the image." ]
}

@test "check: broken refcount table entries: reserved bits, unaligned, outside the image" {
	make_base
	damage rtres.qcow2
	poke_be64 rtres.qcow2 $((0x10000)) $((0x20001))
	same_as_qemu rtres.qcow2
	[ "$(head -1 m/err)" = "ERROR refcount table entry 0 has reserved bits set" ]
	# qemu's rebuild fails here (it writes over the old block); ours works.
	repaired rtres.qcow2
	damage rtunal.qcow2
	poke_be64 rtunal.qcow2 $((0x10000)) $((0x20200))
	same_as_qemu rtunal.qcow2
	[ "$(cat m/rc)" = 1 ]
	grep -qx 'qcow2: Image is corrupt: Refblock offset 0x20200 unaligned (reftable index: 0); further non-fatal corruption events will be suppressed' m/err
	repaired rtunal.qcow2
	damage rteof.qcow2
	poke_be64 rteof.qcow2 $((0x10008)) $((0x200000))
	same_as_qemu rteof.qcow2
	[ "$(cat m/err)" = "ERROR refcount block 1 is outside image" ]
	same_as_qemu rteof.qcow2 -r all
	[ "$(cat m/rc)" = 0 ]
	run -0 qemu-img compare base.qcow2 m/t.qcow2
	damage rtzero.qcow2
	poke_be64 rtzero.qcow2 $((0x10000)) 0
	same_as_qemu rtzero.qcow2
	same_as_qemu rtzero.qcow2 -r all
	repaired rtzero.qcow2
}

@test "check: snapshot L1 tables: unaligned, too large, past the end; an incomplete table entry" {
	make_base
	qemu-img snapshot -c s1 base.qcow2
	qemu-io -c 'write -P 3 0 64k' base.qcow2 >/dev/null
	# Snapshot table at 0xb0000: entry 0 = L1 offset (u64), L1 size (u32).
	same_as_qemu base.qcow2
	cp base.qcow2 snunal.qcow2
	poke_be64 snunal.qcow2 $((0xb0000)) $((0xa0200))
	same_as_qemu snunal.qcow2
	[ "$(head -1 m/err)" = "ERROR snapshot 1 (s1) l1_offset=0xa0200: L1 table is not cluster aligned; snapshot table entry corrupted" ]
	same_as_qemu snunal.qcow2 -r all
	cp base.qcow2 snbig.qcow2
	poke_be32 snbig.qcow2 $((0xb0008)) $((0x400001))
	same_as_qemu snbig.qcow2
	cp base.qcow2 sneof.qcow2
	poke_be64 sneof.qcow2 $((0xb0000)) $((0x1000000))
	same_as_qemu sneof.qcow2
	# v3 entries need 16 bytes of extra data (extra_data_size at +36).
	cp base.qcow2 snext.qcow2
	poke_be32 snext.qcow2 $((0xb0000 + 36)) 8
	same_as_qemu snext.qcow2
	[ "$(cat m/err)" = "ERROR snapshot table entry 0 is incomplete" ]
	same_as_qemu snext.qcow2 -r all
	[ "$(cat m/rc)" = 0 ]
	qemu_clean m/t.qcow2
	run -0 qemu-img compare base.qcow2 m/t.qcow2
}

@test "check: dirty image left by lazy refcounts: reported as qemu, rebuilt by -r all, dirty bit cleared" {
	need_qemu
	qemu-img create -q -f qcow2 -o lazy_refcounts=on lazy.qcow2 64M
	qemu-io -c 'write -P 1 0 256k' lazy.qcow2 >/dev/null
	cp lazy.qcow2 ref.qcow2
	qemu-io -c 'write -P 1 0 256k' -c 'write -P 9 1M 192k' ref.qcow2 >/dev/null
	qemu-io -c 'write -P 9 1M 192k' -c abort lazy.qcow2 >/dev/null 2>&1 || true
	[ "$(peek_be64 lazy.qcow2 72)" = 1 ]
	same_as_qemu lazy.qcow2
	[ "$(cat m/rc)" = 2 ]
	# -r leaks cannot rebuild: qemu then clears the dirty bit anyway
	# (stale refcounts trusted); qimg leaves it set.
	run -1 qimg check -r leaks lazy.qcow2
	[ "$(peek_be64 lazy.qcow2 72)" = 1 ]
	same_as_qemu lazy.qcow2 -r all
	[ "$(cat m/rc)" = 0 ]
	[ "$(peek_be64 m/t.qcow2 72)" = 0 ]
	qemu_clean m/t.qcow2
	run -0 qemu-img compare ref.qcow2 m/t.qcow2
}

@test "check: corrupt bit on a consistent image: clean, kept by a plain check, cleared by -r" {
	make_base
	damage cor.qcow2
	poke_be64 cor.qcow2 72 2
	same_as_qemu cor.qcow2
	[ "$(cat m/rc)" = 0 ]
	[ "$(peek_be64 m/t.qcow2 72)" = 2 ]
	same_as_qemu cor.qcow2 -r leaks
	[ "$(peek_be64 m/t.qcow2 72)" = 0 ]
	[ "$(peek_be64 q/t.qcow2 72)" = 0 ]
}

@test "check: truncated file: references past the end reported as qemu; -r all makes them zero clusters" {
	make_base
	damage trunc.qcow2
	truncate -s $((0x70000)) trunc.qcow2
	same_as_qemu trunc.qcow2
	[ "$(cat m/rc)" = 2 ]
	[ "$(wc -l <m/err)" = 3 ]
	run -0 qimg check -r all trunc.qcow2
	qemu_clean trunc.qcow2
	qemu-io -c 'read -P 1 0 128k' -c 'read -P 0 128k 128k' -c 'read -P 0 10M 64k' trunc.qcow2 | grep -c '^read' | grep -qx 3
}

@test "check: --data finds a corrupted compressed stream and a stream longer than a cluster" {
	need_qemu
	qemu-img create -q -f raw src.raw 1M
	qemu-io -f raw -c 'write -P 5 0 64k' -c 'write -P 6 64k 64k' src.raw >/dev/null
	qemu-img convert -c -O qcow2 src.raw comp.qcow2
	run -0 qimg check --data comp.qcow2
	cp comp.qcow2 bad.qcow2
	# Compressed data of guest cluster 1 starts at 0x5004f.
	poke_bytes bad.qcow2 $((0x50050)) ffffffff
	run -0 qemu-img check bad.qcow2
	run -2 --separate-stderr qimg check --data bad.qcow2
	[ "${stderr_lines[0]}" = "ERROR guest offset 0x10000 host offset 0x5004f: compressed data does not decompress to a cluster" ]
	[ "${lines[0]}" = "1 errors were found on the image." ]
	run -2 --separate-stderr qimg check --data --output=json bad.qcow2
	[ "$(echo "$output" | jq -c '.["unreadable-clusters"]')" = '[{"guest-offset":65536,"host-offset":327759,"reason":"bad compressed data"}]' ]
	# A raw deflate stream of two clusters of zeros where one belongs.
	cp comp.qcow2 long.qcow2
	python3 -c 'import sys,zlib; c=zlib.compressobj(9,zlib.DEFLATED,-12); sys.stdout.buffer.write(c.compress(bytes(131072))+c.flush())' >long.bin
	dd if=long.bin of=long.qcow2 bs=1 seek=$((0x50000)) conv=notrunc status=none
	run -2 --separate-stderr qimg check --data long.qcow2
	[ "${stderr_lines[0]}" = "ERROR guest offset 0x0 host offset 0x50000: compressed data decompresses to more than one cluster" ]
}

@test "check: raw images have no check (63); -r takes leaks or all" {
	need_qemu
	qemu-img create -q -f raw r.raw 1M
	run -63 --separate-stderr qimg check r.raw
	[ "$stderr" = "qimg: r.raw: This image format does not support checks" ]
	run -63 qemu-img check r.raw
	run -1 --separate-stderr qimg check -r bogus r.raw
	[ "${stderr_lines[0]}" = "qimg: Unknown option value for -r (expecting 'leaks' or 'all'): bogus" ]
	[ "${stderr_lines[1]}" = "Try 'qimg --help' for more information" ]
	run -1 --separate-stderr qimg check -T bogus r.raw
	[ "$stderr" = "qimg: Invalid source cache option: bogus" ]
	run -1 qimg check
}

# danger IMG: how many problems qemu-img check finds that can cost data:
# all but leaks and a COPIED flag missing on a cluster of refcount 1 (that
# one only costs a copy on the next write, and repairs pass through it:
# COPIED is set only after the refcount it depends on is on the disk).
danger() {
	qemu-img check "$1" 2>&1 >/dev/null | grep '^ERROR' |
		grep -Evc 'OFLAG_COPIED (data cluster: l2_entry|L2 cluster: l1_index=[0-9]+ l1_entry)=([0-9a-f]{1,15}|[0-7][0-9a-f]{15}) refcount=1$' || true
}

# crash_loop IMG MODE: interrupt `qimg check -r MODE` after every number of
# writes until it completes; after each interruption the image must be no
# worse than before for qemu-img (no more problems that can cost data),
# still repairable, and hold the data of base.qcow2 when done.
crash_loop() {
	local img=$1 mode=$2 before after n rc
	before=$(danger "$img")
	for n in $(seq 0 100); do
		cp "$img" c.qcow2
		rc=0
		QIMG_FAULT_AFTER_WRITES=$n "$QIMG" check -r "$mode" c.qcow2 >/dev/null 2>&1 || rc=$?
		after=$(danger c.qcow2)
		if [ "$after" -gt "$before" ]; then
			echo "after $n writes: $after problems, $before before"
			return 1
		fi
		run -0 qimg check -r all c.qcow2
		[ "$rc" = 86 ] || break
	done
	# The repair wrote something, and finished.
	[ "$n" -gt 0 ] && [ "$rc" != 86 ]
	qemu_clean c.qcow2
	run -0 qemu-img compare base.qcow2 c.qcow2
}

@test "check: a repair interrupted at any write leaves an image no worse than before" {
	make_base
	damage z.qcow2
	poke_be16 z.qcow2 $((0x2000c)) 0
	crash_loop z.qcow2 all
	damage l.qcow2
	poke_be16 l.qcow2 $((0x20010)) 3
	poke_be64 l.qcow2 $((0x40008)) $((0x0200000000060000))
	crash_loop l.qcow2 all
	damage r.qcow2
	poke_be64 r.qcow2 $((0x10000)) $((0x20001))
	crash_loop r.qcow2 all
	# Guest clusters 2 and 3 on one cluster (same bytes, 0x01): COPIED
	# is cleared before the refcount goes up.
	damage s.qcow2
	poke_be64 s.qcow2 $((0x40018)) $((0x8000000000070000))
	poke_be16 s.qcow2 $((0x20010)) 0
	crash_loop s.qcow2 all
}
