#!/usr/bin/env bats
# Encrypted images through the commands (issue #8): images qemu-img made,
# read and written by qimg with --object secret + --image-opts
# encrypt.key-secret, then judged by qemu-img (check, compare) with the
# same secret.  The primitives have their own tests (60-crypto.bats).

load helper

S=(--object secret,id=sec0,data=abc123)

io_of() { echo "driver=qcow2,file.filename=$1,encrypt.key-secret=sec0"; }

make_aes() {
	qemu-img create -q -f qcow2 "${S[@]}" \
		-o encrypt.format=aes,encrypt.key-secret=sec0 "$1" "$2"
}

# The same qemu-io script through both tools on two copies of one image
# must give the same guest content, and both images must check clean.
same_writes() {
	local img=$1
	shift
	cp "$img" m.qcow2
	cp "$img" q.qcow2
	run qimg io "${S[@]}" --image-opts "$(io_of m.qcow2)" "$@"
	[ "$status" -eq 0 ]
	qemu-io "${S[@]}" --image-opts "$(io_of q.qcow2)" "$@" >/dev/null
	run qemu-img compare "${S[@]}" --image-opts "$(io_of m.qcow2)" \
		"$(io_of q.qcow2)"
	[ "$output" = "Images are identical." ]
	qemu_clean m.qcow2
}

# qemu_sees IMG CMD...: qemu-io, with the key, runs the -c commands on IMG
# (reads with -P patterns) without a failed pattern or an error.
qemu_sees() {
	local img=$1
	shift
	run qemu-io "${S[@]}" --image-opts "$(io_of "$img")" "$@"
	[ "$status" -eq 0 ] || return 1
	[[ "$output" != *"Pattern verification failed"* ]] || { echo "$output"; return 1; }
	[[ "$output" != *"error"* ]] || { echo "$output"; return 1; }
}

# qemu_clean IMG: qemu-img check, with the key, finds nothing.
qemu_clean() {
	run qemu-img check "${S[@]}" --image-opts "$(io_of "$1")"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
}

SCRIPT=(-c "write -P 0x77 1000 9000" -c "write -P 0x33 8M 1M"
	-c "write -z 3M 64k" -c "write -P 0x44 8200k 3" -c "discard 8M 64k"
	-c "write -P 0x55 15M 65537" -c "write -z 15M 700"
	-c "write -P 0x66 65535 2")

@test "LUKS: qimg io writes what qemu-io writes, unaligned writes included" {
	need_qemu
	make_luks l.qcow2 16M
	same_writes l.qcow2 "${SCRIPT[@]}"
}

@test "legacy AES: qimg io writes what qemu-io writes" {
	need_qemu
	make_aes a.qcow2 16M
	same_writes a.qcow2 "${SCRIPT[@]}"
}

@test "LUKS with 4k clusters and extended L2 (subclusters), and v2" {
	need_qemu
	make_luks x.qcow2 8M cluster_size=32768,extended_l2=on
	same_writes x.qcow2 -c "write -P 1 1000 3000" -c "write -P 2 40000 512" \
		-c "write -z 5000 2000"
	make_luks v2.qcow2 8M compat=0.10,cluster_size=4096
	same_writes v2.qcow2 -c "write -P 1 1000 3000" -c "write -z 100k 8k" \
		-c "write -P 3 6M 5"
}

@test "qimg reads what qemu-io wrote: convert to raw matches qemu-img's" {
	need_qemu
	make_luks l.qcow2 16M
	qemu-io "${S[@]}" --image-opts "$(io_of l.qcow2)" \
		-c "write -P 0x5a 4097 70000" -c "write -P 0x11 1M 64k" >/dev/null
	qemu-img convert "${S[@]}" --image-opts "$(io_of l.qcow2)" -O raw ref.raw
	run qimg convert "${S[@]}" --image-opts "$(io_of l.qcow2)" -O raw m.raw
	[ "$status" -eq 0 ]
	cmp ref.raw m.raw
	run qimg io "${S[@]}" --image-opts "$(io_of l.qcow2)" \
		-c "read -P 0x5a 4097 70000" -c "read -P 0 0 4097"
	[ "$status" -eq 0 ]
}

@test "a LUKS cluster shared with a snapshot is re-encrypted at its new place" {
	need_qemu
	make_luks l.qcow2 4M
	qemu-io "${S[@]}" --image-opts "$(io_of l.qcow2)" -c "write -P 0x12 0 1M" >/dev/null
	run qimg snapshot -c s1 l.qcow2
	[ "$status" -eq 0 ]
	run qimg io "${S[@]}" --image-opts "$(io_of l.qcow2)" -c "write -P 0x14 64k 4k"
	[ "$status" -eq 0 ]
	qemu_sees l.qcow2 \
		-c "read -P 0x12 0 64k" -c "read -P 0x14 64k 4k" -c "read -P 0x12 68k 60k"
	run qimg snapshot -a s1 l.qcow2
	[ "$status" -eq 0 ]
	qemu_sees l.qcow2 -c "read -P 0x12 0 1M"
	qemu_clean l.qcow2
}

@test "an encrypted overlay over a plain backing file: COW encrypts the backing data" {
	need_qemu
	qemu-img create -q -f raw base.raw 4M
	qemu-io -f raw -c "write -P 0x21 0 4M" base.raw >/dev/null
	make_luks top.qcow2 4M backing_file=base.raw,backing_fmt=raw
	run qimg io "${S[@]}" --image-opts "$(io_of top.qcow2)" -c "write -P 0x22 70000 100"
	[ "$status" -eq 0 ]
	qemu_sees top.qcow2 \
		-c "read -P 0x21 0 70000" -c "read -P 0x22 70000 100" \
		-c "read -P 0x21 70100 100000"
	# flatten: every byte of the base now lives encrypted in top
	run qimg rebase "${S[@]}" --image-opts "$(io_of top.qcow2)" -b ""
	[ "$status" -eq 0 ]
	rm base.raw
	qemu_sees top.qcow2 \
		-c "read -P 0x21 0 70000" -c "read -P 0x21 1M 3M"
	qemu_clean top.qcow2
}

@test "resize of an encrypted image, with its key" {
	need_qemu
	make_luks l.qcow2 4M
	qemu-io "${S[@]}" --image-opts "$(io_of l.qcow2)" -c "write -P 9 0 4M" >/dev/null
	run qimg resize "${S[@]}" --image-opts "$(io_of l.qcow2)" 8M
	[ "$status" -eq 0 ]
	[ "$output" = "Image resized." ]
	qemu_sees l.qcow2 \
		-c "read -P 9 0 4M" -c "read -P 0 4M 4M"
	qemu_clean l.qcow2
}

@test "without the key: guest I/O commands refuse, naming the option" {
	need_qemu
	make_luks l.qcow2 4M
	cp l.qcow2 before.qcow2
	hint=" (give the passphrase with --object secret,id=ID,data=... --image-opts driver=qcow2,file.filename=FILE,encrypt.key-secret=ID)"
	run -1 --separate-stderr qimg convert -O raw l.qcow2 x.raw
	[ "$stderr" = "qimg: l.qcow2: Parameter 'encrypt.key-secret' is required for cipher$hint" ]
	[ ! -e x.raw ]
	run -1 --separate-stderr qimg resize l.qcow2 8M
	[ "$stderr" = "qimg: l.qcow2: Parameter 'encrypt.key-secret' is required for cipher$hint" ]
	run -1 --separate-stderr qimg rebase -u -b "" l.qcow2
	[ "$stderr" = "qimg: l.qcow2: Parameter 'encrypt.key-secret' is required for cipher$hint" ]
	cmp l.qcow2 before.qcow2
}

@test "a wrong passphrase or secret id: qemu's message, exit 1, nothing written" {
	need_qemu
	make_luks l.qcow2 4M
	cp l.qcow2 before.qcow2
	run -1 --separate-stderr qimg io --object secret,id=sec0,data=wrong \
		--image-opts "$(io_of l.qcow2)" -c "write 0 64k"
	[ "$stderr" = "qimg: can't open: Invalid password, cannot unlock any keyslot" ]
	run -1 --separate-stderr qimg resize --object secret,id=sec0,data=wrong \
		--image-opts "$(io_of l.qcow2)" 8M
	[ "$stderr" = "qimg: l.qcow2: Invalid password, cannot unlock any keyslot" ]
	run -1 --separate-stderr qimg convert --image-opts \
		"driver=qcow2,file.filename=l.qcow2,encrypt.key-secret=nope" -O raw x.raw
	[ "$stderr" = "qimg: l.qcow2: No secret with id 'nope'" ]
	run -1 --separate-stderr qimg convert "${S[@]}" --image-opts \
		"$(io_of l.qcow2),encrypt.format=aes" -O raw x.raw
	[ "$stderr" = "qimg: l.qcow2: Header reported 'luks' encryption format but options specify 'aes'" ]
	cmp l.qcow2 before.qcow2
}

@test "encrypt.format on a plain image is refused, a key-secret ignored (as qemu)" {
	qimg create -q -f qcow2 p.qcow2 1M
	run -1 --separate-stderr qimg check "${S[@]}" --image-opts \
		"driver=qcow2,file.filename=p.qcow2,encrypt.format=luks,encrypt.key-secret=sec0"
	[ "$stderr" = "qimg: p.qcow2: No encryption in image header, but options specified format 'luks'" ]
	run -0 qimg check "${S[@]}" --image-opts "$(io_of p.qcow2)"
}

@test "check and snapshot need no key: the metadata is not encrypted" {
	need_qemu
	make_luks l.qcow2 4M
	qemu-io "${S[@]}" --image-opts "$(io_of l.qcow2)" -c "write -P 3 0 1M" >/dev/null
	run -0 qimg check l.qcow2
	[ "${lines[0]}" = "No errors were found on the image." ]
	run -0 qimg check "${S[@]}" --image-opts "$(io_of l.qcow2)"
	run -0 qimg snapshot -c s1 l.qcow2
	run -0 qimg snapshot -l l.qcow2
	[[ "$output" == *" s1 "* ]]
	run -0 qimg snapshot -d s1 l.qcow2
	qemu_clean l.qcow2
	qemu_sees l.qcow2 -c "read -P 3 0 1M"
}

@test "check -r repairs the leaks a crash left in a LUKS image, without the key" {
	need_qemu
	make_luks tmpl.qcow2 4M cluster_size=4096
	local n st=0
	# the first crash point that leaves leaks
	for n in $(seq 1 40); do
		cp tmpl.qcow2 l.qcow2
		QIMG_FAULT_AFTER_WRITES=$n "$QIMG" io "${S[@]}" --image-opts "$(io_of l.qcow2)" \
			-c "write -P 5 1M 1M" -c "write -P 6 2M 200k" >/dev/null 2>&1 || true
		st=0
		qimg check l.qcow2 >/dev/null || st=$?
		[ "$st" -eq 0 ] || break
	done
	[ "$st" -eq 3 ]
	run -0 qimg check -r leaks l.qcow2
	qemu_clean l.qcow2
	[ "${lines[0]}" = "No errors were found on the image." ]
}

@test "compressed writes into an encrypted image are refused" {
	need_qemu
	make_luks l.qcow2 4M
	cp l.qcow2 before.qcow2
	run -1 qimg io "${S[@]}" --image-opts "$(io_of l.qcow2)" -c "write -c 0 64k"
	[ "$output" = "write failed: Operation not supported" ]
	cmp l.qcow2 before.qcow2
	qemu_clean l.qcow2
}

@test "convert -n into an existing LUKS target with --target-image-opts" {
	need_qemu
	make_luks t.qcow2 4M
	head -c 4194304 /dev/urandom > src.raw
	run qimg convert "${S[@]}" -n -f raw src.raw --target-image-opts "$(io_of t.qcow2)"
	[ "$status" -eq 0 ]
	run qemu-img compare "${S[@]}" --image-opts driver=raw,file.filename=src.raw "$(io_of t.qcow2)"
	[ "$output" = "Images are identical." ]
	qemu_clean t.qcow2
}

@test "convert from an encrypted source uses several threads, one unlock" {
	need_qemu
	make_luks l.qcow2 32M
	qemu-io "${S[@]}" --image-opts "$(io_of l.qcow2)" -c "write -P 0x61 0 30M" >/dev/null
	run qimg convert -j 4 "${S[@]}" --image-opts "$(io_of l.qcow2)" -O raw m.raw
	[ "$status" -eq 0 ]
	run qemu-img compare "${S[@]}" --image-opts driver=raw,file.filename=m.raw "$(io_of l.qcow2)"
	[ "$output" = "Images are identical." ]
}

FUZZ=${QCOW2_FUZZ:-$BATS_TEST_DIRNAME/../engine/qcow2-fuzz}

# The engine's differential tester (see 45-engine.bats) on encrypted
# images: random unaligned writes, zero writes, discards and reads against
# a model, qemu-io writing in between and qemu-img taking snapshots, every
# batch judged by qemu-img check and compare with the same secret.
@test "differential fuzz on LUKS (64k, 16k+extended L2, v2 512 b) and AES images" {
	need_qemu
	make_luks l.qcow2 32M
	run "$FUZZ" run --secret abc123 --ops 1200 --batch 300 --qemu-io --snapshots l.qcow2
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	make_luks x.qcow2 8M cluster_size=16k,extended_l2=on
	run "$FUZZ" run --secret abc123 --seed 7 --ops 1200 --batch 300 --qemu-io x.qcow2
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	make_luks v2.qcow2 2M compat=0.10,cluster_size=512
	run "$FUZZ" run --secret abc123 --seed 11 --ops 800 --batch 200 --qemu-io v2.qcow2
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	make_aes a.qcow2 8M
	run "$FUZZ" run --secret abc123 --seed 9 --ops 1200 --batch 300 --qemu-io --snapshots a.qcow2
	[ "$status" -eq 0 ] || { echo "$output"; false; }
}

# Targets qimg creates (create's encryption: 80-create-crypt.bats).
LUKS_O=encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10

mixed_src() {
	head -c 3145728 /dev/urandom > "$1"
	truncate -s 8M "$1"
	printf 'tail' | dd of="$1" bs=1 seek=7340032 conv=notrunc status=none
}

@test "convert plain -> LUKS: qemu-img reads it with the secret, checks it clean" {
	need_qemu
	mixed_src src.raw
	run qimg convert "${S[@]}" -f raw -O qcow2 -o "$LUKS_O" src.raw l.qcow2
	[ "$status" -eq 0 ]
	run qemu-img compare "${S[@]}" --image-opts driver=raw,file.filename=src.raw "$(io_of l.qcow2)"
	[ "$output" = "Images are identical." ]
	qemu_clean l.qcow2
	run qemu-img info --output=json l.qcow2
	[[ "$output" == *'"encrypted": true'* ]]
	# nothing of the plaintext is in the file
	! grep -q tail l.qcow2
}

@test "convert LUKS -> plain qcow2 and raw, and AES -> LUKS (data liberation)" {
	need_qemu
	mixed_src src.raw
	qemu-img convert "${S[@]}" -f raw -O qcow2 \
		-o encrypt.format=aes,encrypt.key-secret=sec0 src.raw a.qcow2
	run qimg convert "${S[@]}" --object secret,id=sec1,data=new-pass \
		--image-opts "$(io_of a.qcow2)" -O qcow2 \
		-o encrypt.format=luks,encrypt.key-secret=sec1,encrypt.iter-time=10 l.qcow2
	[ "$status" -eq 0 ]
	run qemu-img compare --object secret,id=sec1,data=new-pass --image-opts \
		driver=raw,file.filename=src.raw driver=qcow2,file.filename=l.qcow2,encrypt.key-secret=sec1
	[ "$output" = "Images are identical." ]
	run qimg convert --object secret,id=sec1,data=new-pass --image-opts \
		driver=qcow2,file.filename=l.qcow2,encrypt.key-secret=sec1 -O qcow2 p.qcow2
	[ "$status" -eq 0 ]
	run qemu-img compare -f raw -F qcow2 src.raw p.qcow2
	[ "$output" = "Images are identical." ]
	run qimg convert --object secret,id=sec1,data=new-pass --image-opts \
		driver=qcow2,file.filename=l.qcow2,encrypt.key-secret=sec1 -O raw p.raw
	cmp src.raw p.raw
	run qemu-img check p.qcow2
	[ "$status" -eq 0 ]
}

@test "convert to an encrypted target: qemu-img's refusals" {
	printf 'x' > src.raw
	truncate -s 1M src.raw
	run -1 --separate-stderr qimg convert "${S[@]}" -c -O qcow2 -o "$LUKS_O" src.raw o.qcow2
	[ "$stderr" = "qimg: Compression and encryption not supported at the same time" ]
	run -1 --separate-stderr qimg convert -O qcow2 -o encrypt.format=luks src.raw o.qcow2
	[ "$stderr" = "qimg: o.qcow2: error while converting qcow2: Parameter 'encrypt.key-secret' is required for cipher" ]
	run -1 --separate-stderr qimg convert "${S[@]}" -O qcow2 \
		-o encrypt.format=luks,encrypt.key-secret=sec1 src.raw o.qcow2
	[ "$stderr" = "qimg: o.qcow2: error while converting qcow2: No secret with id 'sec1'" ]
	[ ! -e o.qcow2 ]
}

@test "a LUKS backing file: its key as backing.encrypt.key-secret, as in qemu" {
	need_qemu
	make_luks base.qcow2 4M
	qemu-io "${S[@]}" --image-opts "$(io_of base.qcow2)" -c "write -P 7 0 4M" >/dev/null
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
	qemu-io "${S[@]}" --image-opts \
		driver=qcow2,file.filename=top.qcow2,backing.encrypt.key-secret=sec0 \
		-c "write -P 8 1M 64k" >/dev/null
	run -1 --separate-stderr qimg convert -O raw top.qcow2 x.raw
	[ "$stderr" = "qimg: top.qcow2: could not open backing file: Parameter 'encrypt.key-secret' is required for cipher (give the passphrase with --object secret,id=ID,data=... --image-opts driver=qcow2,file.filename=TOP,backing.encrypt.key-secret=ID)" ]
	top=driver=qcow2,file.filename=top.qcow2,backing.encrypt.key-secret=sec0
	qemu-img convert "${S[@]}" --image-opts "$top" -O raw ref.raw
	run qimg convert -j 3 "${S[@]}" --image-opts "$top" -O raw x.raw
	[ "$status" -eq 0 ]
	cmp ref.raw x.raw
	# qimg io takes the same option string; COW reads the base decrypted
	run qimg io "${S[@]}" --image-opts "$top" -c "write -P 9 0 512" \
		-c "read -P 7 512 65024"
	[ "$status" -eq 0 ]
	[[ "$output" != *"Pattern verification failed"* ]]
	dd if=/dev/zero bs=512 count=1 status=none | tr '\0' '\11' |
		dd of=ref.raw conv=notrunc status=none
	# flatten the plain overlay: the base's data is copied out decrypted
	run qimg rebase "${S[@]}" --image-opts "$top" -b ""
	[ "$status" -eq 0 ]
	rm base.qcow2
	qemu-img compare -f raw -F qcow2 ref.raw top.qcow2
}

@test "a data cluster that points into the LUKS key slots is never written" {
	need_qemu
	make_luks l.qcow2 4M
	qemu-io "${S[@]}" --image-opts "$(io_of l.qcow2)" -c "write -P 1 0 64k" >/dev/null
	l1=$(peek_be64 l.qcow2 40)
	l2=$((0x$(od -An -tx1 -j "$l1" -N 8 l.qcow2 | tr -d ' \n') & 0xffffffffffffff))
	kso=$(peek_be64 l.qcow2 120)	# the crypto header extension's offset
	poke_be64 l.qcow2 "$l2" $((0x8000000000000000 | (kso + 65536)))
	dd if=l.qcow2 bs=64k skip=$((kso / 65536 + 1)) count=1 status=none > before
	run -1 qimg io "${S[@]}" --image-opts "$(io_of l.qcow2)" -c "write -P 2 0 4k"
	[ "$output" = "write failed: Input/output error" ]
	dd if=l.qcow2 bs=64k skip=$((kso / 65536 + 1)) count=1 status=none | cmp - before
	run qimg info --output=json l.qcow2
	[[ "$output" == *'"corrupt": true'* ]]
}

@test "convert to a legacy AES target works and warns that AES is insecure" {
	need_qemu
	mixed_src src.raw
	run -0 --separate-stderr qimg convert "${S[@]}" -f raw -O qcow2 \
		-o encrypt.format=aes,encrypt.key-secret=sec0 src.raw a.qcow2
	[ "$stderr" = "qimg: warning: a.qcow2: qcow2's legacy AES encryption is insecure; use LUKS (encrypt.format=luks) instead" ]
	run qemu-img compare "${S[@]}" --image-opts driver=raw,file.filename=src.raw "$(io_of a.qcow2)"
	[ "$output" = "Images are identical." ]
}

# Bounds: the crypto header extension and the LUKS header are read from
# the file; any value must give a clean refusal (or a correct open) with
# the key in hand, never a crash, a hang or unbounded memory.
@test "hostile LUKS header fields and extension values, opened with the key" {
	need_qemu
	make_luks l.qcow2 4M
	local v fld off i st
	for v in 0 1 512 0x3ffff 0x40001 0x7fffffffffffffff 0x1000000000; do
		for fld in 120 128; do
			cp l.qcow2 f.qcow2
			printf "$(printf '%016x' "$v" | sed 's/../\\x&/g')" |
				dd of=f.qcow2 bs=1 seek=$fld conv=notrunc status=none
			run qimg_bounded convert "${S[@]}" --image-opts "$(io_of f.qcow2)" -O raw o.raw
			[ "$status" -le 1 ] || { echo "field $fld = $v: exit $status"; false; }
		done
	done
	kso=$(peek_be64 l.qcow2 120)
	RANDOM=8
	for i in $(seq 60); do
		cp l.qcow2 f.qcow2
		off=$((kso + RANDOM % 640))
		[ $((i % 4)) = 0 ] && off=$((kso + RANDOM * 64 % 2068480))
		printf "\\x$(printf %02x $((RANDOM % 256)))\\x$(printf %02x $((RANDOM % 256)))" |
			dd of=f.qcow2 bs=1 seek=$off conv=notrunc status=none
		run qimg_bounded convert "${S[@]}" --image-opts "$(io_of f.qcow2)" -O raw o.raw
		[ "$status" -le 1 ] || { echo "bytes at $off: exit $status"; false; }
		[ "${#lines[@]}" -le 1 ]
	done
}
