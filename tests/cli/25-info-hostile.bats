#!/usr/bin/env bats
# qimg info on damaged and hostile images: every run is bounded (10 s,
# 200 MiB of address space), ends with exit 0 and a correct answer or exit
# 1 and exactly one line "qimg: FILE: ..." on stderr, never a crash, and
# never changes the file.

load helper

# hostile FILE [ARGS...]: run "qimg info ARGS FILE" (human, then JSON)
# under the bounds and check the contract above.  Leaves $status, $output
# and $stderr of the human run.
hostile() {
	local file=$1 st out err
	shift
	[ ! -f "$file" ] || cp "$file" "$BATS_TEST_TMPDIR/orig.img"
	run --separate-stderr qimg_bounded info --output=json "$@" "$file"
	st=$status
	[ "$st" -eq 0 ] || [ "$st" -eq 1 ] || {
		echo "json run: exit status $st"
		return 1
	}
	[ "$st" -ne 0 ] || echo "$output" | jq . >/dev/null
	run --separate-stderr qimg_bounded info "$@" "$file"
	[ ! -f "$file" ] || cmp "$file" "$BATS_TEST_TMPDIR/orig.img"
	[ "$status" -eq "$st" ] || {
		echo "human exit $status, json exit $st"
		return 1
	}
	case $status in
	0) [ "$stderr" = "" ] ;;
	1)
		[ "${#stderr_lines[@]}" -eq 1 ] || {
			echo "stderr: $stderr"
			return 1
		}
		[[ "$stderr" == "qimg: "* ]] && [ "$output" = "" ]
		;;
	*)
		echo "exit status $status: $stderr"
		return 1
		;;
	esac
}

# refused FILE MESSAGE [ARGS...]: hostile, and refused with exactly
# "qimg: FILE: MESSAGE".
refused() {
	local file=$1 msg=$2
	shift 2
	hostile "$file" "$@"
	[ "$status" -eq 1 ] || {
		echo "accepted: $output"
		return 1
	}
	[ "$stderr" = "qimg: $file: $msg" ] || {
		echo "got:      $stderr"
		echo "expected: qimg: $file: $msg"
		return 1
	}
}

# poke_ff FILE OFFSET WIDTH: set WIDTH bytes to 0xff.
poke_ff() {
	poke_bytes "$1" "$2" "$(printf 'ff%.0s' $(seq "$3"))"
}

# The v3 header fields: offset and width.
FIELDS="4:4 8:8 16:4 20:4 24:8 32:4 36:4 40:8 48:8 56:4 60:4 64:8 72:8 80:8 88:8 96:4 100:4 104:1"

# sweep IMAGE FIELDS: every field set to 0, to its maximum and to its
# value + 1 (misaligned offsets, odd sizes) is handled within the contract.
sweep() {
	local img=$1 f off w v
	for f in $2; do
		off=${f%:*}
		w=${f#*:}
		for v in zero max plus1; do
			cp "$img" t.qcow2
			case $v in
			zero) poke_bytes t.qcow2 "$off" "$(printf '00%.0s' $(seq "$w"))" ;;
			max) poke_ff t.qcow2 "$off" "$w" ;;
			plus1) poke_int t.qcow2 "$off" $(($(peek_int t.qcow2 "$off" "$w") + 1)) "$w" ;;
			esac
			hostile t.qcow2 || {
				echo "field at $off ($w bytes) set to $v"
				return 1
			}
		done
	done
}

@test "every v3 header field at 0, at its maximum and off by one stays within the contract" {
	need_qemu
	qemu-img create -q -f qcow2 base.qcow2 64M
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 rich.qcow2
	qemu-img snapshot -c s1 rich.qcow2
	sweep rich.qcow2 "$FIELDS"
}

@test "every v2 header field at 0, at its maximum and off by one stays within the contract" {
	need_qemu
	qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=4k v2.qcow2 64M
	qemu-img snapshot -c s1 v2.qcow2
	sweep v2.qcow2 "4:4 8:8 16:4 20:4 24:8 32:4 36:4 40:8 48:8 56:4 60:4 64:8"
}

@test "every header field of a LUKS image stays within the contract" {
	need_qemu
	make_luks l.qcow2 16M
	sweep l.qcow2 "$FIELDS"
}

@test "header fields are refused with a message naming field and value" {
	need_qemu
	qemu-img create -q -f qcow2 a.qcow2 1G
	cp a.qcow2 t.qcow2; poke_be32 t.qcow2 4 4
	refused t.qcow2 "Unsupported qcow2 version 4"
	cp a.qcow2 t.qcow2; poke_be32 t.qcow2 20 30
	refused t.qcow2 "invalid cluster_bits 30 (must be 9 to 21)"
	cp a.qcow2 t.qcow2; poke_be32 t.qcow2 100 100
	refused t.qcow2 "invalid header_length 100 (must be at least 104 and a multiple of 8)"
	cp a.qcow2 t.qcow2; poke_be32 t.qcow2 96 7
	refused t.qcow2 "invalid refcount_order 7 (must be 0 to 6)"
	cp a.qcow2 t.qcow2; poke_be32 t.qcow2 32 3
	refused t.qcow2 "invalid crypt_method 3 (must be 0 none, 1 AES or 2 LUKS)"
	cp a.qcow2 t.qcow2; poke_be32 t.qcow2 56 0
	refused t.qcow2 "invalid refcount_table_clusters 0 (the image has no refcount table)"
	cp a.qcow2 t.qcow2; poke_be64 t.qcow2 48 $((0x10001))
	refused t.qcow2 "invalid refcount_table_offset 0x10001 (not a multiple of the cluster size 65536)"
	cp a.qcow2 t.qcow2; poke_be64 t.qcow2 40 $((0x30008))
	refused t.qcow2 "invalid l1_table_offset 0x30008 (not a multiple of the cluster size 65536)"
	cp a.qcow2 t.qcow2; poke_be32 t.qcow2 36 1
	refused t.qcow2 "invalid l1_size 1 (the virtual size 1073741824 needs 2 entries)"
	cp a.qcow2 t.qcow2; poke_be64 t.qcow2 24 $((1 << 62))
	refused t.qcow2 "invalid size 4611686018427387904 (larger than 2251799813685248, the limit for 65536-byte clusters)"
}

@test "a huge l1_size is refused without loading the table" {
	need_qemu
	qemu-img create -q -f qcow2 a.qcow2 1G
	cp a.qcow2 t.qcow2; poke_be32 t.qcow2 36 $((4 << 20))
	refused t.qcow2 "the L1 table (offset 0x30000, 33554432 bytes) lies past the end of the file (196624 bytes)"
	cp a.qcow2 t.qcow2; poke_be32 t.qcow2 36 $((0xffffffff))
	refused t.qcow2 "invalid l1_size 4294967295 (must be at most 4194304, a 33554432 byte table)"
}

@test "a huge but valid L1 table (a 2 PiB image) is not loaded by info" {
	need_qemu
	qemu-img create -q -f qcow2 big.qcow2 2048T
	hostile big.qcow2
	[ "$status" -eq 0 ]
	[ "${lines[2]}" = "virtual size: 2 PiB (2251799813685248 bytes)" ]
}

@test "a huge refcount table is refused" {
	need_qemu
	qemu-img create -q -f qcow2 a.qcow2 1G
	cp a.qcow2 t.qcow2; poke_be32 t.qcow2 56 129
	refused t.qcow2 "invalid refcount_table_clusters 129 (the table would exceed 8388608 bytes)"
	cp a.qcow2 t.qcow2; poke_be32 t.qcow2 56 128
	refused t.qcow2 "the refcount table (offset 0x10000, 8388608 bytes) lies past the end of the file (196624 bytes)"
}

@test "huge nb_snapshots and a snapshot table past the end of the file are refused" {
	need_qemu
	qemu-img create -q -f qcow2 a.qcow2 1G
	cp a.qcow2 t.qcow2; poke_be32 t.qcow2 60 $((0xffffffff))
	refused t.qcow2 "invalid nb_snapshots 4294967295 (must be at most 65536)"
	cp a.qcow2 t.qcow2; poke_be32 t.qcow2 60 65536; poke_be64 t.qcow2 64 $((0x10000))
	refused t.qcow2 "the snapshot table (offset 0x10000, 2621440 bytes) lies past the end of the file (196624 bytes)"
	cp a.qcow2 t.qcow2; poke_be32 t.qcow2 60 1; poke_be64 t.qcow2 64 $((0x1000000))
	refused t.qcow2 "the snapshot table (offset 0x1000000, 40 bytes) lies past the end of the file (196624 bytes)"
	cp a.qcow2 t.qcow2; poke_be32 t.qcow2 60 1
	refused t.qcow2 "invalid snapshots_offset 0 (the snapshot table would overlap the header)"
}

@test "more snapshots than the table holds are refused" {
	need_qemu
	qemu-img create -q -f qcow2 s.qcow2 64M
	qemu-img snapshot -c one s.qcow2
	cp s.qcow2 t.qcow2
	poke_be32 t.qcow2 60 5000
	hostile t.qcow2
	[ "$status" -eq 1 ]
	[[ "$stderr" == "qimg: t.qcow2: the snapshot table (offset "*", 200000 bytes) lies past the end of the file"* ]]
	# Zeros after the one entry: the second entry has no extra data.
	truncate -s +64K s.qcow2
	poke_be32 s.qcow2 60 100
	refused s.qcow2 "snapshot table entry 1: invalid extra_data_size 0 (a version 3 image needs at least 16)"
}

@test "broken snapshot entries are refused" {
	need_qemu
	qemu-img create -q -f qcow2 s.qcow2 64M
	qemu-img snapshot -c one s.qcow2
	tab=$(peek_be64 s.qcow2 64)
	cp s.qcow2 t.qcow2; poke_be32 t.qcow2 $((tab + 36)) 1025
	refused t.qcow2 "snapshot table entry 0: invalid extra_data_size 1025 (must be at most 1024)"
	cp s.qcow2 t.qcow2; poke_be32 t.qcow2 $((tab + 36)) 8
	refused t.qcow2 "snapshot table entry 0: invalid extra_data_size 8 (a version 3 image needs at least 16)"
	cp s.qcow2 t.qcow2; poke_be16 t.qcow2 $((tab + 14)) 65535
	hostile t.qcow2
	[ "$status" -eq 1 ]
	[[ "$stderr" == "qimg: t.qcow2: snapshot table entry 0 (offset "*", 65600 bytes) lies past the end of the file"* ]]
	cp s.qcow2 t.qcow2; poke_bytes t.qcow2 $((tab + 40 + 24 + 1)) 00
	refused t.qcow2 "snapshot table entry 0: the id or name contains a NUL byte"
}

@test "odd but valid snapshot fields are shown as qemu-img shows them" {
	need_qemu
	qemu-img create -q -f qcow2 s.qcow2 64M
	qemu-img snapshot -c one s.qcow2
	tab=$(peek_be64 s.qcow2 64)
	# VM clock of 400 hours, a 64-bit VM state size, no icount.
	poke_be64 s.qcow2 $((tab + 24)) $((400 * 3600 * 1000000000 + 61123456789))
	poke_be64 s.qcow2 $((tab + 40)) 123456789
	poke_be64 s.qcow2 $((tab + 56)) -1
	hostile s.qcow2
	[ "$status" -eq 0 ]
	run -0 qimg info s.qcow2
	ours=$output
	run -0 qemu-img info s.qcow2
	[ "$ours" = "$output" ]
	run -0 qimg info --output=json s.qcow2
	ours=$(echo "$output" | jq -S .)
	run -0 qemu-img info --output=json s.qcow2
	[ "$ours" = "$(echo "$output" | jq -S .)" ]
}

@test "an extension whose length runs past cluster 0 is refused" {
	need_qemu
	qemu-img create -q -f qcow2 a.qcow2 1G
	cp a.qcow2 t.qcow2; poke_be32 t.qcow2 $((0x74)) $((0x10000))
	refused t.qcow2 "header extension 0x6803f857 at offset 0x70: length 65536 runs past the end of cluster 0 at offset 0x10000"
	cp a.qcow2 t.qcow2; poke_be32 t.qcow2 $((0x74)) $((0xffffffff))
	refused t.qcow2 "header extension 0x6803f857 at offset 0x70: length 4294967295 runs past the end of cluster 0 at offset 0x10000"
}

@test "extensions filling cluster 0 without an end marker are refused" {
	need_qemu
	qemu-img create -q -f qcow2 -o cluster_size=4k a.qcow2 1G
	poke_be32 a.qcow2 $((0x70)) $((0x12345678))
	poke_be32 a.qcow2 $((0x74)) $((4096 - 0x70 - 8))
	refused a.qcow2 "the header extensions have no end marker before offset 0x1000"
}

@test "an unknown extension is accepted and the file left alone" {
	need_qemu
	qemu-img create -q -f qcow2 -o cluster_size=4k a.qcow2 1G
	poke_be32 a.qcow2 $((0x70)) $((0x12345678))
	poke_be32 a.qcow2 $((0x74)) 5
	poke_bytes a.qcow2 $((0x78)) 68656c6c6f
	hostile a.qcow2
	[ "$status" -eq 0 ]
	run -0 qemu-img info a.qcow2
}

@test "backing file names of 1024 bytes and more are refused" {
	need_qemu
	qemu-img create -q -f qcow2 -u -b base.qcow2 -F qcow2 c.qcow2 64M
	cp c.qcow2 t.qcow2; poke_be32 t.qcow2 16 1024
	refused t.qcow2 "invalid backing_file_size 1024 (must be at most 1023)"
	cp c.qcow2 t.qcow2; poke_be32 t.qcow2 16 $((0xffffffff))
	refused t.qcow2 "invalid backing_file_size 4294967295 (must be at most 1023)"
	cp c.qcow2 t.qcow2; poke_be64 t.qcow2 8 $((0xfffc))
	refused t.qcow2 "invalid backing_file_size 10 (the name at offset 0xfffc runs past cluster 0)"
	cp c.qcow2 t.qcow2; poke_be64 t.qcow2 8 16
	refused t.qcow2 "invalid backing_file_offset 0x10 (overlaps the 112-byte header)"
	off=$(peek_be64 c.qcow2 8)
	cp c.qcow2 t.qcow2; poke_bytes t.qcow2 $((off + 2)) 00
	refused t.qcow2 "backing file name contains a NUL byte"
}

@test "unknown incompatible bits are refused in qemu-img's words" {
	need_qemu
	qemu-img create -q -f qcow2 a.qcow2 1G
	cp a.qcow2 t.qcow2; poke_be64 t.qcow2 72 $((1 << 20))
	refused t.qcow2 "Unsupported qcow2 feature(s): Unknown incompatible feature: 100000"
	# Name bit 5 in the feature table (first entry, "dirty bit").
	cp a.qcow2 t.qcow2; poke_be64 t.qcow2 72 $((1 << 5 | 1 << 9)); poke_bytes t.qcow2 $((0x79)) 05
	refused t.qcow2 "Unsupported qcow2 feature(s): dirty bit, Unknown incompatible feature: 200"
	cp a.qcow2 t.qcow2; poke_ff t.qcow2 72 8
	hostile t.qcow2
	[ "$status" -eq 1 ]
}

@test "compression type and its feature bit must agree" {
	need_qemu
	qemu-img create -q -f qcow2 a.qcow2 1G
	cp a.qcow2 t.qcow2; poke_bytes t.qcow2 104 01
	refused t.qcow2 "invalid compression_type 1 without incompatible feature bit 3 (compression type)"
	cp a.qcow2 t.qcow2; poke_be64 t.qcow2 72 8
	refused t.qcow2 "invalid incompatible feature bit 3 (compression type) with compression_type 0 (zlib)"
	cp a.qcow2 t.qcow2; poke_be64 t.qcow2 72 8; poke_bytes t.qcow2 104 07
	refused t.qcow2 "invalid compression_type 7 (must be 0 for zlib or 1 for zstd)"
}

@test "feature bits without the extension they need are refused" {
	need_qemu
	qemu-img create -q -f qcow2 a.qcow2 1G
	cp a.qcow2 t.qcow2; poke_be64 t.qcow2 72 4
	refused t.qcow2 "incompatible feature bit 2 (external data file) is set but no data file is named"
	cp a.qcow2 t.qcow2; poke_be32 t.qcow2 32 2
	refused t.qcow2 "invalid crypt_method 2 (LUKS) without the encryption header extension"
	qemu-img create -q -f qcow2 -o cluster_size=4k s.qcow2 1G
	poke_be64 s.qcow2 72 16
	refused s.qcow2 "invalid cluster_bits 12 with extended L2 entries (must be at least 14)"
}

@test "a truncated image is raw to the probe and refused as qcow2" {
	need_qemu
	qemu-img create -q -f qcow2 a.qcow2 1G
	cp a.qcow2 short.qcow2
	truncate -s 100 short.qcow2
	hostile short.qcow2
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "file format: raw" ]
	refused short.qcow2 "truncated header: the file has 100 bytes, a version 3 header needs 104" -f qcow2
	cp a.qcow2 half.qcow2
	truncate -s 50000 half.qcow2
	refused half.qcow2 "the refcount table (offset 0x10000, 65536 bytes) lies past the end of the file (50000 bytes)"
}

@test "an empty file is a 0-byte raw image, and not qcow2" {
	: >empty
	hostile empty
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "file format: raw" ]
	[ "${lines[2]}" = "virtual size: 0 B (0 bytes)" ]
	refused empty "Image is not in qcow2 format" -f qcow2
}

@test "a directory is refused" {
	mkdir d
	refused d "could not open 'd': Is a directory"
}

@test "a backing chain loop A -> B -> A is refused with --backing-chain" {
	need_qemu
	qemu-img create -q -f qcow2 A.qcow2 1M
	qemu-img create -q -f qcow2 -b A.qcow2 -F qcow2 B.qcow2
	qemu-img rebase -u -b B.qcow2 -F qcow2 A.qcow2
	refused A.qcow2 "Backing file 'A.qcow2' creates an infinite loop" --backing-chain
	hostile A.qcow2
	[ "$status" -eq 0 ]
}

@test "an image backed by itself is refused with --backing-chain" {
	need_qemu
	qemu-img create -q -f qcow2 -u -b self.qcow2 -F qcow2 tmp.qcow2 1M
	mv tmp.qcow2 self.qcow2
	refused self.qcow2 "Backing file 'self.qcow2' creates an infinite loop" --backing-chain
}

@test "a very deep backing chain is refused" {
	need_qemu
	qemu-img create -q -f qcow2 i0.qcow2 1M
	for i in $(seq 1 70); do
		qemu-img create -q -f qcow2 -u -b "i$((i - 1)).qcow2" -F qcow2 "i$i.qcow2" 1M
	done
	refused i70.qcow2 "backing chain is deeper than 64 images" --backing-chain
	hostile i40.qcow2 --backing-chain
	[ "$status" -eq 0 ]
}

@test "a raw backing file holding a qcow2 header is not probed or followed" {
	need_qemu
	qemu-img create -q -f qcow2 -u -b /etc/hostname -F raw evil.raw 1M
	qemu-img create -q -f qcow2 -b evil.raw -F raw top.qcow2 1M
	hostile top.qcow2 --backing-chain
	[ "$status" -eq 0 ]
	run -0 qimg info --backing-chain --output=json top.qcow2
	[ "$(echo "$output" | jq length)" = 2 ]
	[ "$(echo "$output" | jq -r '.[1].format')" = raw ]
}

@test "a backing file recorded as qcow2 that is not qcow2 fails the chain" {
	need_qemu
	qemu-img create -q -f raw base.raw 1M
	qemu-img create -q -f qcow2 -u -b base.raw -F qcow2 top.qcow2 1M
	refused top.qcow2 "could not open backing file: Image is not in qcow2 format" --backing-chain
}

@test "a broken bitmap directory is refused" {
	need_qemu
	qemu-img create -q -f qcow2 bm.qcow2 64M
	qemu-img bitmap --add bm.qcow2 b0
	dir=$(peek_be64 bm.qcow2 $((0x1f8 + 24)))
	cp bm.qcow2 t.qcow2; poke_bytes t.qcow2 $((dir + 17)) 08
	refused t.qcow2 "bitmap 'b0': invalid granularity_bits 8 (must be 9 to 31)"
	cp bm.qcow2 t.qcow2; poke_be32 t.qcow2 $((dir + 12)) 7
	refused t.qcow2 "bitmap 'b0': invalid flags 0x7 (reserved bits set)"
	cp bm.qcow2 t.qcow2; poke_be32 t.qcow2 $((0x1f8 + 8)) 2
	refused t.qcow2 "the bitmap directory holds 1 entries, not nb_bitmaps 2"
	cp bm.qcow2 t.qcow2; poke_be64 t.qcow2 $((0x1f8 + 16)) 8
	refused t.qcow2 "the bitmap directory ends inside an entry"
	cp bm.qcow2 t.qcow2; poke_be16 t.qcow2 $((dir + 18)) 1024
	refused t.qcow2 "the bitmap directory ends inside an entry"
	cp bm.qcow2 t.qcow2; poke_be64 t.qcow2 $((0x1f8 + 24)) $((0x10000000))
	hostile t.qcow2
	[ "$status" -eq 1 ]
	[[ "$stderr" == "qimg: t.qcow2: the bitmap directory (offset 0x10000000, "* ]]
	cp bm.qcow2 t.qcow2; poke_ff t.qcow2 $((0x1f8 + 8)) 24
	hostile t.qcow2
	[ "$status" -eq 1 ]
}

@test "bitmaps without the autoclear bit are ignored, as by qemu-img" {
	need_qemu
	qemu-img create -q -f qcow2 bm.qcow2 64M
	qemu-img bitmap --add bm.qcow2 b0
	poke_be64 bm.qcow2 88 0
	hostile bm.qcow2
	[ "$status" -eq 0 ]
	[[ "$output" != *bitmaps* ]]
}

@test "a broken LUKS header is refused with qemu-img's words" {
	need_qemu
	make_luks l.qcow2 16M
	luks=$(peek_be64 l.qcow2 $((0x78)))
	cp l.qcow2 t.qcow2; poke_bytes t.qcow2 "$luks" 00
	refused t.qcow2 "Volume is not in LUKS format"
	cp l.qcow2 t.qcow2; poke_be16 t.qcow2 $((luks + 6)) 2
	refused t.qcow2 "LUKS version 2 is not supported"
	cp l.qcow2 t.qcow2; poke_bytes t.qcow2 $((luks + 8)) 666f6f00
	refused t.qcow2 "Algorithm 'foo' with key size 32 bytes not supported"
	cp l.qcow2 t.qcow2; poke_bytes t.qcow2 $((luks + 40)) 78747300
	refused t.qcow2 "Unexpected cipher mode string format 'xts'"
	cp l.qcow2 t.qcow2; poke_ff t.qcow2 $((luks + 8)) 96
	refused t.qcow2 "LUKS header cipher name is not NUL terminated"
	cp l.qcow2 t.qcow2; poke_be32 t.qcow2 $((luks + 104)) 0
	refused t.qcow2 "LUKS payload is overlapping with the header"
	cp l.qcow2 t.qcow2; poke_be32 t.qcow2 $((luks + 208 + 44)) 1
	refused t.qcow2 "Keyslot 0 is corrupted (stripes 1 != 4000)"
	cp l.qcow2 t.qcow2; poke_be32 t.qcow2 $((luks + 208 + 48)) 5
	refused t.qcow2 "Keyslot 1 state (active/disable) is corrupted"
	cp l.qcow2 t.qcow2; poke_be32 t.qcow2 $((luks + 208 + 48 + 40)) 8
	refused t.qcow2 "Keyslots 0 and 1 are overlapping in the header"
	cp l.qcow2 t.qcow2; poke_be64 t.qcow2 $((0x80)) 100
	refused t.qcow2 "Request for data outside of extension header"
	cp l.qcow2 t.qcow2; poke_be64 t.qcow2 $((0x78)) $((0x10000000))
	hostile t.qcow2
	[ "$status" -eq 1 ]
}

@test "a 2 MiB-cluster header in a small file is read safely" {
	need_qemu
	qemu-img create -q -f qcow2 a.qcow2 1G
	poke_be32 a.qcow2 20 21
	hostile a.qcow2
	[ "$status" -eq 1 ]
}

@test "a FIFO, as the image or as its backing file, is refused without waiting" {
	need_qemu
	mkfifo pipe
	refused pipe "could not open 'pipe': a FIFO is not a disk image"
	qemu-img create -q -f qcow2 -u -b pipe -F raw top.qcow2 1M
	refused top.qcow2 "could not open backing file: could not open 'pipe': a FIFO is not a disk image" --backing-chain
}
