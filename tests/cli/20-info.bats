#!/usr/bin/env bats
# qimg info against qemu-img info 7.2 on every kind of image qemu-img can
# make: the human output must be the same text, the JSON the same document
# (compared with jq -S, as qemu's key order is a hash order).

load helper

# same_info ARGS...: qimg info and qemu-img info agree on ARGS, in human
# and in JSON form, and both succeed with nothing on stderr.
same_info() {
	local ours
	run -0 --separate-stderr qimg info "$@"
	ours=$output
	[ "$stderr" = "" ]
	run -0 --separate-stderr qemu-img info "$@"
	if [ "$ours" != "$output" ]; then
		diff -u <(echo "$output") <(echo "$ours") || true
		return 1
	fi
	run -0 --separate-stderr qimg info --output=json "$@"
	ours=$(echo "$output" | jq -S .)
	run -0 --separate-stderr qemu-img info --output=json "$@"
	output=$(echo "$output" | jq -S .)
	if [ "$ours" != "$output" ]; then
		diff -u <(echo "$output") <(echo "$ours") || true
		return 1
	fi
}

@test "a default v3 image matches qemu-img" {
	need_qemu
	qemu-img create -q -f qcow2 a.qcow2 1G
	same_info a.qcow2
	run -0 qimg info a.qcow2
	[ "${lines[4]}" = "cluster_size: 65536" ]
	[ "${lines[6]}" = "    compat: 1.1" ]
}

@test "a v2 (compat=0.10) image matches qemu-img" {
	need_qemu
	qemu-img create -q -f qcow2 -o compat=0.10 b.qcow2 1G
	same_info b.qcow2
	run -0 qimg info b.qcow2
	[ "${lines[-1]}" = "    refcount bits: 16" ]
}

@test "every cluster size from 512 bytes to 2 MiB matches qemu-img" {
	need_qemu
	for cs in 512 1k 4k 16k 64k 256k 1M 2M; do
		qemu-img create -q -f qcow2 -o cluster_size=$cs c$cs.qcow2 3G
		same_info c$cs.qcow2
	done
}

@test "every refcount width from 1 to 64 bits matches qemu-img" {
	need_qemu
	for rb in 1 2 4 8 16 32 64; do
		qemu-img create -q -f qcow2 -o refcount_bits=$rb r$rb.qcow2 64M
		same_info r$rb.qcow2
	done
}

@test "lazy refcounts match qemu-img" {
	need_qemu
	qemu-img create -q -f qcow2 -o lazy_refcounts=on l.qcow2 64M
	same_info l.qcow2
}

@test "zlib and zstd compressed images from convert -c match qemu-img" {
	need_qemu
	head -c 1M /dev/urandom >src.raw
	yes 'hello world' | head -c 3M >>src.raw
	qemu-img convert -c -O qcow2 src.raw z.qcow2
	qemu-img convert -c -O qcow2 -o compression_type=zstd src.raw zs.qcow2
	same_info z.qcow2
	same_info zs.qcow2
	run -0 qimg info zs.qcow2
	[[ "$output" == *"    compression type: zstd"* ]]
}

@test "extended L2 entries match qemu-img" {
	need_qemu
	qemu-img create -q -f qcow2 -o extended_l2=on e.qcow2 64M
	qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=16k e16.qcow2 64M
	same_info e.qcow2
	same_info e16.qcow2
}

@test "external data files, raw and not, match qemu-img" {
	need_qemu
	qemu-img create -q -f qcow2 -o data_file=d.data d.qcow2 64M
	qemu-img create -q -f qcow2 -o data_file=dr.data,data_file_raw=on dr.qcow2 64M
	same_info d.qcow2
	same_info dr.qcow2
	run -0 qimg info dr.qcow2
	[[ "$output" == *"    data file: dr.data"$'\n'"    data file raw: true"* ]]
}

@test "info does not need the external data file (as qemu-img)" {
	need_qemu
	qemu-img create -q -f qcow2 -o data_file=d.data d.qcow2 64M
	rm d.data
	same_info d.qcow2
}

@test "internal snapshots match qemu-img" {
	need_qemu
	qemu-img create -q -f qcow2 s.qcow2 64M
	qemu-io -c 'write -P 0x11 0 64k' s.qcow2 >/dev/null
	qemu-img snapshot -c snap1 s.qcow2
	qemu-img snapshot -c 'a much longer snapshot name' s.qcow2
	qemu-img snapshot -c '' s.qcow2
	same_info s.qcow2
	run -0 qimg info s.qcow2
	[ "${lines[5]}" = "Snapshot list:" ]
	[ "${lines[6]}" = "ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT" ]
}

@test "snapshots in a v2 image match qemu-img" {
	need_qemu
	qemu-img create -q -f qcow2 -o compat=0.10 s2.qcow2 64M
	qemu-img snapshot -c one s2.qcow2
	same_info s2.qcow2
}

@test "persistent bitmaps match qemu-img" {
	need_qemu
	qemu-img create -q -f qcow2 bm.qcow2 64M
	qemu-img bitmap --add bm.qcow2 b0
	qemu-img bitmap --add -g 128k bm.qcow2 b1
	qemu-img bitmap --add --disable bm.qcow2 b2
	same_info bm.qcow2
	run -0 qimg info bm.qcow2
	[[ "$output" == *"            flags:"$'\n'"            name: b2"* ]]
}

@test "a bitmap marked in use matches qemu-img" {
	need_qemu
	qemu-img create -q -f qcow2 bm.qcow2 64M
	qemu-img bitmap --add bm.qcow2 b0
	dir=$(peek_be64 bm.qcow2 $((0x1f8 + 24)))
	poke_be32 bm.qcow2 $((dir + 12)) 3
	same_info bm.qcow2
	run -0 qimg info bm.qcow2
	[[ "$output" == *"[0]: in-use"$'\n'"                [1]: auto"* ]]
}

@test "a LUKS image (default aes-256-xts-plain64) matches qemu-img" {
	need_qemu
	make_luks l.qcow2 64M
	same_info l.qcow2
	run -0 qimg info l.qcow2
	[ "${lines[4]}" = "encrypted: yes" ]
	[[ "$output" == *"        cipher alg: aes-256"* ]]
}

@test "a LUKS image with cbc-essiv:sha256 matches qemu-img" {
	need_qemu
	make_luks l2.qcow2 64M encrypt.cipher-alg=aes-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv,encrypt.ivgen-hash-alg=sha256
	same_info l2.qcow2
	run -0 qimg info l2.qcow2
	[[ "$output" == *"        ivgen hash alg: sha256"* ]]
}

@test "LUKS with serpent, twofish, cast5 and other hashes matches qemu-img" {
	need_qemu
	make_luks s.qcow2 16M encrypt.cipher-alg=serpent-256,encrypt.hash-alg=sha1
	make_luks t.qcow2 16M encrypt.cipher-alg=twofish-128,encrypt.hash-alg=sha512
	make_luks c.qcow2 4M encrypt.cipher-alg=cast5-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=plain,encrypt.hash-alg=md5
	same_info s.qcow2
	same_info t.qcow2
	same_info c.qcow2
}

@test "a legacy AES image matches qemu-img" {
	need_qemu
	qemu-img create -q -f qcow2 --object secret,id=sec0,data=abc123 \
		-o encrypt.format=aes,encrypt.key-secret=sec0 aes.qcow2 64M
	same_info aes.qcow2
	run -0 qimg info aes.qcow2
	[[ "$output" == *"    encrypt:"$'\n'"        format: aes"* ]]
}

@test "an image with a backing file matches qemu-img, with and without --backing-chain" {
	need_qemu
	qemu-img create -q -f qcow2 base.qcow2 64M
	qemu-io -c 'write 0 1M' base.qcow2 >/dev/null
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 c.qcow2
	same_info c.qcow2
	same_info --backing-chain c.qcow2
	run -0 qimg info --backing-chain c.qcow2
	[[ "$output" == *"extended l2: false"$'\n\n'"image: base.qcow2"$'\n'* ]]
	run -0 qimg info --backing-chain --output=json c.qcow2
	[ "$(echo "$output" | jq -r '.[1].filename')" = base.qcow2 ]
}

@test "a relative backing name in a subdirectory shows its actual path" {
	need_qemu
	mkdir sub
	qemu-img create -q -f qcow2 sub/b.qcow2 64M
	qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 sub/t.qcow2
	same_info sub/t.qcow2
	same_info --backing-chain sub/t.qcow2
	run -0 qimg info sub/t.qcow2
	[ "${lines[5]}" = "backing file: b.qcow2 (actual path: sub/b.qcow2)" ]
	same_info "$PWD/sub/t.qcow2"
}

@test "a three-image chain with a raw base matches qemu-img" {
	need_qemu
	qemu-img create -q -f raw base.raw 32M
	qemu-img create -q -f qcow2 -b base.raw -F raw mid.qcow2
	qemu-img create -q -f qcow2 -o compat=0.10 -b mid.qcow2 -F qcow2 top.qcow2
	same_info --backing-chain top.qcow2
}

@test "a backing file without a recorded format matches qemu-img" {
	need_qemu
	qemu-img create -q -f qcow2 base.qcow2 64M
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 c.qcow2
	# Turn the backing format extension (the first one) into an unknown
	# extension: the format is then probed.
	poke_be32 c.qcow2 $((0x70)) 0x12345678
	same_info c.qcow2
	same_info --backing-chain c.qcow2
}

@test "a missing backing file is fine without --backing-chain" {
	need_qemu
	qemu-img create -q -f qcow2 -u -b gone.qcow2 -F qcow2 m.qcow2 1M
	same_info m.qcow2
}

@test "the dirty bit shows 'cleanly shut down: no' as qemu-img" {
	need_qemu
	qemu-img create -q -f qcow2 -o lazy_refcounts=on d.qcow2 64M
	poke_be64 d.qcow2 72 1
	same_info d.qcow2
	run -0 qimg info d.qcow2
	[ "${lines[5]}" = "cleanly shut down: no" ]
	run -0 qimg info --output=json d.qcow2
	[ "$(echo "$output" | jq '."dirty-flag"')" = true ]
}

@test "the corrupt bit matches qemu-img" {
	need_qemu
	qemu-img create -q -f qcow2 c.qcow2 64M
	poke_be64 c.qcow2 72 2
	same_info c.qcow2
	run -0 qimg info c.qcow2
	[ "${lines[-2]}" = "    corrupt: true" ]
}

@test "preallocated and empty-size images match qemu-img" {
	need_qemu
	qemu-img create -q -f qcow2 -o preallocation=metadata p.qcow2 256M
	qemu-img create -q -f qcow2 z.qcow2 0
	same_info p.qcow2
	same_info z.qcow2
}

@test "raw images match qemu-img, including -f raw on a qcow2 file" {
	need_qemu
	qemu-img create -q -f raw g.raw 1G
	head -c 1000 /dev/urandom >odd.raw
	: >empty.raw
	qemu-img create -q -f qcow2 q.qcow2 1G
	same_info g.raw
	same_info odd.raw
	same_info empty.raw
	same_info -f raw q.qcow2
	same_info -f qcow2 q.qcow2
	run -0 qimg info --output=json g.raw
	[ "$(echo "$output" | jq -c 'keys')" = '["actual-size","dirty-flag","filename","format","virtual-size"]' ]
}

@test "-U, --object and --image-opts are accepted as by qemu-img" {
	need_qemu
	make_luks l.qcow2 16M
	qemu-img create -q -f qcow2 a.qcow2 1G
	same_info -U a.qcow2
	same_info --force-share a.qcow2
	same_info --object secret,id=sec0,data=abc123 l.qcow2
	same_info --image-opts driver=qcow2,file.filename=a.qcow2
	same_info --image-opts file.driver=file,file.filename=a.qcow2
	same_info --image-opts driver=raw,file.filename=a.qcow2
	same_info --object secret,id=sec0,data=abc123 --image-opts \
		driver=qcow2,file.filename=l.qcow2,encrypt.key-secret=sec0
	run -0 qimg info --image-opts file.filename=l.qcow2,encrypt.key-secret=sec0
	[ "${lines[0]}" = 'image: json:{"encrypt.key-secret": "sec0", "driver": "qcow2", "file": {"driver": "file", "filename": "l.qcow2"}}' ]
}

@test "--image-opts refuses what qemu-img refuses" {
	need_qemu
	qemu-img create -q -f qcow2 a.qcow2 1G
	run -1 --separate-stderr qimg info --image-opts driver=qcow2,file.filename=a.qcow2,foo=bar
	[ "$stderr" = "qimg: Could not open 'driver=qcow2,file.filename=a.qcow2,foo=bar': Block format 'qcow2' does not support the option 'foo'" ]
	run -1 --separate-stderr qimg info --image-opts driver=qcow2
	[ "$stderr" = "qimg: Could not open 'driver=qcow2': A block device must be specified for \"file\"" ]
	run -1 --separate-stderr qimg info --image-opts -f qcow2 driver=qcow2,file.filename=a.qcow2
	[ "$stderr" = "qimg: --image-opts and --format are mutually exclusive" ]
	run -1 --separate-stderr qimg info --image-opts driver=raw,file.filename=a.qcow2,encrypt.key-secret=s
	[ "$stderr" = "qimg: Could not open 'driver=raw,file.filename=a.qcow2,encrypt.key-secret=s': Block format 'raw' does not support the option 'encrypt.key-secret'" ]
	run -1 --separate-stderr qimg info --image-opts driver=qcow2,file.filename=a.qcow2,file.driver=foo
	[ "$stderr" = "qimg: Could not open 'driver=qcow2,file.filename=a.qcow2,file.driver=foo': Unknown driver 'foo'" ]
	run -1 --separate-stderr qimg info --image-opts driver=qcow2,file.filename=a.qcow2,encrypt.format=luks
	[ "$stderr" = "qimg: a.qcow2: No encryption in image header, but options specified format 'luks'" ]
}

@test "--object refuses what qemu-img refuses" {
	need_qemu
	qemu-img create -q -f qcow2 a.qcow2 1G
	run -1 --separate-stderr qimg info --object bogus a.qcow2
	[ "$stderr" = "qimg: Parameter 'qom-type' does not accept value 'bogus'" ]
	run -1 --separate-stderr qimg info --object secret a.qcow2
	[ "$stderr" = "qimg: Parameter 'id' is missing" ]
	run -1 --separate-stderr qimg info --object secret,id=s a.qcow2
	[ "$stderr" = "qimg: Either 'file' or 'data' must be provided" ]
	run -1 --separate-stderr qimg info --object secret,id=s,data=x,bogus=1 a.qcow2
	[ "$stderr" = "qimg: Parameter 'bogus' is unexpected" ]
	run -1 --separate-stderr qimg info --object secret,id=s,data=x --object secret,id=s,data=y a.qcow2
	[ "$stderr" = "qimg: attempt to add duplicate property 's' to object (type 'container')" ]
	run -0 qimg info --object qom-type=secret,id=s,file=/dev/null a.qcow2
}

@test "-f qcow2 on a raw file says it is not qcow2" {
	need_qemu
	qemu-img create -q -f raw x.raw 1M
	run -1 --separate-stderr qimg info -f qcow2 x.raw
	[ "$output" = "" ]
	[ "$stderr" = "qimg: x.raw: Image is not in qcow2 format" ]
}

@test "usage errors: bad --output, unknown -f, no file name, extra arguments" {
	run -1 --separate-stderr qimg info --output=xml a.qcow2
	[ "$stderr" = "qimg: --output must be used with human or json as argument" ]
	: >a.raw
	run -1 --separate-stderr qimg info -f bogus a.raw
	[ "$stderr" = "qimg: a.raw: Unknown file format 'bogus'" ]
	run -1 --separate-stderr qimg info
	[ "${stderr_lines[0]}" = "qimg: Expecting one image file name" ]
	[ "${stderr_lines[1]}" = "Try 'qimg --help' for more information" ]
	run -1 --separate-stderr qimg info a.raw b.raw
	[ "${stderr_lines[0]}" = "qimg: Expecting one image file name" ]
	run -1 --separate-stderr qimg info --output a.raw
	[ "${stderr_lines[0]}" = "qimg: Expecting one image file name" ]
}

@test "a missing file is an error naming it" {
	run -1 --separate-stderr qimg info nonexistent.qcow2
	[ "$output" = "" ]
	[ "$stderr" = "qimg: nonexistent.qcow2: could not open 'nonexistent.qcow2': No such file or directory" ]
}

@test "info --help prints the synopsis and exits 0" {
	run -0 qimg info --help
	[ "$output" = "usage: qimg info [-f fmt] [--output=human|json] [--backing-chain] [-U] [--image-opts] [--object objectdef] filename" ]
	run -0 qimg info -h
}

@test "--backing-chain with a missing backing file fails and prints nothing on stdout" {
	need_qemu
	qemu-img create -q -f qcow2 -u -b gone.qcow2 -F qcow2 m.qcow2 1M
	run -1 --separate-stderr qimg info --backing-chain m.qcow2
	[ "$output" = "" ]
	[ "$stderr" = "qimg: m.qcow2: could not open backing file: could not open 'gone.qcow2': No such file or directory" ]
}
