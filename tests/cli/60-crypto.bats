#!/usr/bin/env bats
# The crypto core against qemu: images qemu-img creates and qemu-io fills
# are unlocked and decrypted by the core (through tests/tools/crypto-tool),
# and LUKS headers and data the core makes are read by qemu-io with the
# same passphrase, for LUKS with every cipher family, mode and IV
# generator qemu offers, and for legacy AES.  IVs: LUKS uses the host
# sector, legacy AES the guest sector.

load helper

TOOL=$BATS_TEST_DIRNAME/../tools/crypto-tool
SEC0=secret,id=sec0,data=abc123

# qio PASSPHRASE FILE COMMAND: qemu-io on an encrypted image.
qio() {
	qemu-io --object "secret,id=k,data=$1" \
		--image-opts "driver=qcow2,file.filename=$2,encrypt.key-secret=k" -c "$3"
}

# pattern BYTE LEN: LEN bytes of BYTE (hex, e.g. 5a).
pattern() {
	head -c "$2" /dev/zero | tr '\0' "\\$(printf '%03o' "0x$1")"
}

# read_ok PASSPHRASE FILE BYTE OFF LEN: qemu-io reads the pattern back.
read_ok() {
	run qio "$1" "$2" "read -P 0x$3 $4 $5"
	[ "$status" -eq 0 ]
	[[ "$output" == *"read $5/$5 bytes at offset $4"* ]]
	[[ "$output" != *"Pattern verification failed"* ]]
}

# One LUKS image (defaults) and one legacy AES image, made once: qemu-img
# spends seconds calibrating PBKDF2 for every LUKS image it creates.  Both
# hold 0x5a at 64k (64k) and 0x6b at 1028k (4k).
setup_file() {
	command -v qemu-img >/dev/null 2>&1 || return 0
	cd "$BATS_FILE_TMPDIR" || return 1
	qemu_create -o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10 luks.qcow2 64M
	qemu_create -o encrypt.format=aes,encrypt.key-secret=sec0 aes.qcow2 64M
	for f in luks.qcow2 aes.qcow2; do
		qio abc123 $f 'write -P 0x5a 64k 64k' >/dev/null
		qio abc123 $f 'write -P 0x6b 1028k 4k' >/dev/null
	done
}

# image SHARED NAME: a private copy of a shared image.
image() {
	cp "$BATS_FILE_TMPDIR/$1" "$2"
}

# both_ways OPTIONS: qemu -> core, then core -> qemu, with one cipher suite.
both_ways() {
	need_qemu
	qemu_create -o "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10,$1" f.qcow2 4M
	qio abc123 f.qcow2 'write -P 0x5a 64k 64k'
	qio abc123 f.qcow2 'write -P 0x6b 1028k 4k'
	"$TOOL" decrypt f.qcow2 "$SEC0" sec0 64k 64k >got
	pattern 5a 65536 | cmp - got
	"$TOOL" decrypt f.qcow2 "$SEC0" sec0 1028k 4k >got
	pattern 6b 4096 | cmp - got
	# A header of our own (same suite, new passphrase) over qemu's.
	"$TOOL" luks-replace f.qcow2 secret,id=n,data=n3wpass n "$1" encrypt.iter-time=10
	"$TOOL" encrypt f.qcow2 secret,id=n,data=n3wpass n 64k 64k 0x3c
	read_ok n3wpass f.qcow2 3c 65536 65536
	run qio abc123 f.qcow2 'read 0 512'
	[[ "$output" == *"Invalid password, cannot unlock any keyslot"* ]]
	run -0 qemu-img check --object secret,id=n,data=n3wpass \
		--image-opts driver=qcow2,file.filename=f.qcow2,encrypt.key-secret=n
}

@test "the core decrypts what qemu-io wrote to a LUKS image, at the host sector" {
	need_qemu
	image luks.qcow2 f.qcow2
	# qemu's layout: 2 MiB of LUKS area at 0x40000, data after it.
	run -0 "$TOOL" map f.qcow2 64k
	[ "$output" = 2424832 ]
	"$TOOL" decrypt f.qcow2 "$SEC0" sec0 64k 64k >got
	pattern 5a 65536 | cmp - got
}

@test "a wrong LUKS passphrase gets qemu's message and exit 1" {
	need_qemu
	image luks.qcow2 f.qcow2
	run -1 --separate-stderr "$TOOL" decrypt f.qcow2 secret,id=s,data=abc124 s 0 512
	[ "$output" = "" ]
	[ "$stderr" = "crypto-tool: f.qcow2: Invalid password, cannot unlock any keyslot" ]
}

@test "data the core encrypts into a qemu LUKS image reads back in qemu-io" {
	need_qemu
	image luks.qcow2 f.qcow2
	"$TOOL" encrypt f.qcow2 "$SEC0" sec0 64k 64k 0xa5
	read_ok abc123 f.qcow2 a5 65536 65536
}

@test "a LUKS header the core creates unlocks in qemu and describes itself as qemu's" {
	need_qemu
	image luks.qcow2 f.qcow2
	"$TOOL" luks-replace f.qcow2 secret,id=n,data=n3wpass n encrypt.iter-time=10
	"$TOOL" encrypt f.qcow2 secret,id=n,data=n3wpass n 64k 64k 0x3c
	read_ok n3wpass f.qcow2 3c 65536 65536
	run -0 qemu-img info --output=json f.qcow2
	[[ "$output" == *'"cipher-alg": "aes-256"'* ]]
	[[ "$output" == *'"cipher-mode": "xts"'* ]]
	[[ "$output" == *'"ivgen-alg": "plain64"'* ]]
	[[ "$output" == *'"key-offset": 1810432'* ]]
	[[ "$output" == *'"payload-offset": 2068480'* ]]
	run -0 qemu-img check --object secret,id=n,data=n3wpass \
		--image-opts driver=qcow2,file.filename=f.qcow2,encrypt.key-secret=n
}

@test "both ways: aes-128 cbc essiv (sha256), sha1" {
	both_ways encrypt.cipher-alg=aes-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv,encrypt.hash-alg=sha1
}

@test "both ways: aes-256 cbc plain with an ivgen hash, sha512" {
	both_ways encrypt.cipher-alg=aes-256,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=plain,encrypt.ivgen-hash-alg=sha1,encrypt.hash-alg=sha512
}

@test "both ways: aes-192 xts essiv (md5), sha384" {
	both_ways encrypt.cipher-alg=aes-192,encrypt.cipher-mode=xts,encrypt.ivgen-alg=essiv,encrypt.ivgen-hash-alg=md5,encrypt.hash-alg=sha384
}

@test "both ways: serpent-256 xts plain64, ripemd160" {
	both_ways encrypt.cipher-alg=serpent-256,encrypt.hash-alg=ripemd160
}

@test "both ways: twofish-128 ctr plain64, sha224" {
	both_ways encrypt.cipher-alg=twofish-128,encrypt.cipher-mode=ctr,encrypt.hash-alg=sha224
}

@test "both ways: cast5-128 ecb, md5" {
	both_ways encrypt.cipher-alg=cast5-128,encrypt.cipher-mode=ecb,encrypt.hash-alg=md5
}

@test "legacy AES: the core decrypts qemu-io's data at the guest sector, and back" {
	need_qemu
	image aes.qcow2 a.qcow2
	run -0 "$TOOL" map a.qcow2 64k
	[ "$output" = 327680 ]
	"$TOOL" decrypt a.qcow2 "$SEC0" sec0 64k 64k >got
	pattern 5a 65536 | cmp - got
	"$TOOL" decrypt a.qcow2 "$SEC0" sec0 1028k 4k >got
	pattern 6b 4096 | cmp - got
	"$TOOL" encrypt a.qcow2 "$SEC0" sec0 1028k 4k 0xa5
	read_ok abc123 a.qcow2 a5 1052672 4096
	run -0 qemu-img check --object "$SEC0" \
		--image-opts driver=qcow2,file.filename=a.qcow2,encrypt.key-secret=sec0
}

@test "legacy AES: a wrong passphrase is not detected, the data is garbage" {
	need_qemu
	image aes.qcow2 a.qcow2
	"$TOOL" decrypt a.qcow2 secret,id=s,data=abc124 s 64k 64k >got
	pattern 5a 65536 >want
	run cmp -s want got
	[ "$status" -eq 1 ]
}

@test "a legacy AES passphrase longer than 16 bytes is cut to 16, as qemu does" {
	need_qemu
	qemu-img create -q -f qcow2 --object secret,id=s,data=0123456789abcdefXYZ \
		-o encrypt.format=aes,encrypt.key-secret=s a.qcow2 1M
	qio 0123456789abcdefXYZ a.qcow2 'write -P 0x5a 0 64k'
	"$TOOL" decrypt a.qcow2 secret,id=s,data=0123456789abcdefQQQ s 0 64k >got
	pattern 5a 65536 | cmp - got
}

@test "secrets from base64 and from a file unlock the same LUKS image" {
	need_qemu
	image luks.qcow2 f.qcow2
	"$TOOL" decrypt f.qcow2 secret,id=b,data=YWJjMTIz,format=base64 b 64k 512 >got
	pattern 5a 512 | cmp - got
	printf abc123 >pass
	"$TOOL" decrypt f.qcow2 secret,id=p,file=pass p 64k 512 >got
	pattern 5a 512 | cmp - got
	# qemu keeps a file's trailing newline: so does the core.
	echo abc123 >pass
	run -1 --separate-stderr "$TOOL" decrypt f.qcow2 secret,id=p,file=pass p 64k 512
	[ "$stderr" = "crypto-tool: f.qcow2: Invalid password, cannot unlock any keyslot" ]
}
