#!/usr/bin/env bats
# qimg create with encryption (-o encrypt.*, --object secret) against
# qemu-img 7.2: the image is byte for byte qemu's outside the random LUKS
# fields (key material, salts, digest, UUID, iteration counts), qemu-img
# checks it clean, describes it as it describes its own, unlocks it with
# the passphrase (and refuses a wrong one), and qemu-io's data in it reads
# back; every refusal has qemu's words and exit status.

load helper

SEC0=secret,id=sec0,data=abc123
LUKS=encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10

# masked IN OUT: IN with the random LUKS fields zeroed: master key digest,
# its salt and iterations, the UUID, and for each active slot its
# iterations, salt and key material.  Everything else (qcow2 metadata,
# cipher names, payload offset, key bytes, slot states, offsets, stripes)
# stays and must be qemu's.
masked() {
	python3 - "$1" "$2" <<'EOF'
import struct, sys
d = bytearray(open(sys.argv[1], 'rb').read())
ver = struct.unpack('>I', d[4:8])[0]
off = struct.unpack('>I', d[100:104])[0] if ver >= 3 else 72
luks = None
while off + 8 <= len(d):
    t, l = struct.unpack('>II', d[off:off + 8])
    if t == 0:
        break
    if t == 0x0537be77:
        luks = struct.unpack('>Q', d[off + 8:off + 16])[0]
    off += 8 + ((l + 7) & ~7)
def z(o, n):
    d[luks + o:luks + o + n] = bytes(n)
if luks is not None:
    kb = struct.unpack('>I', d[luks + 108:luks + 112])[0]
    z(112, 20); z(132, 32); z(164, 4); z(168, 40)
    for i in range(8):
        s = 208 + 48 * i
        if struct.unpack('>I', d[luks + s:luks + s + 4])[0] == 0x00AC71F3:
            z(s + 4, 4); z(s + 8, 32)
            ko = struct.unpack('>I', d[luks + s + 40:luks + s + 44])[0]
            z(ko * 512, kb * 4000)
open(sys.argv[2], 'wb').write(d)
EOF
}

# same_as_qemu OPTS SIZE [ARGS...]: qimg and qemu-img create the image
# (ours.qcow2, theirs.qcow2) and they are equal outside the random fields.
same_as_qemu() {
	local opts=$1 size=$2
	shift 2
	run -0 --separate-stderr qimg create -q -f qcow2 --object "$SEC0" "$@" -o "$opts" ours.qcow2 "$size"
	qemu_create "$@" -o "$opts" theirs.qcow2 "$size"
	masked ours.qcow2 ours.m
	masked theirs.qcow2 theirs.m
	cmp ours.m theirs.m
}

# opts_for FILE: qemu's --image-opts string for an image locked by sec0.
opts_for() {
	echo "driver=qcow2,file.filename=$1,encrypt.key-secret=sec0"
}

# check_clean FILE: qemu-img check with the secret finds nothing.
check_clean() {
	run -0 qemu-img check --object "$SEC0" --image-opts "$(opts_for "$1")"
	[[ "$output" == "No errors were found on the image."* ]]
}

# info_json FILE: qemu-img info's JSON without what is random or local.
info_json() {
	qemu-img info --output=json "$1" | jq -S 'del(.filename, ."actual-size")
		| del(."format-specific".data.encrypt.uuid?)
		| del(."format-specific".data.encrypt."master-key-iters"?)
		| del(."format-specific".data.encrypt.slots[]?.iters)'
}

# data_roundtrip FILE: qemu-io writes patterns into FILE and reads them
# back; qemu-img compare finds FILE equal to a raw file holding them.
data_roundtrip() {
	local size
	size=$(qemu-img info --output=json "$1" | jq '."virtual-size"')
	qemu-img create -q -f raw p.raw "$size"
	qemu-io -f raw -c 'write -P 0x5a 64k 64k' -c 'write -P 0x6b 1028k 4k' p.raw >/dev/null
	run -0 qemu-io --object "$SEC0" --image-opts "$(opts_for "$1")" \
		-c 'write -P 0x5a 64k 64k' -c 'write -P 0x6b 1028k 4k' \
		-c 'read -P 0x5a 64k 64k' -c 'read -P 0x6b 1028k 4k' -c 'read -P 0 0 64k'
	[[ "$output" != *"Pattern verification failed"* ]]
	run -0 qemu-img compare --object "$SEC0" --image-opts "$(opts_for "$1")" \
		driver=raw,file.filename=p.raw
	[ "$output" = "Images are identical." ]
}

# interop OPTS: the whole judgement for one LUKS cipher suite.
interop() {
	need_qemu
	same_as_qemu "$LUKS${1:+,$1}" 4M
	check_clean ours.qcow2
	[ "$(info_json ours.qcow2)" = "$(info_json theirs.qcow2)" ]
	run -0 --separate-stderr qimg info --output=json ours.qcow2
	[ "$(echo "$output" | jq -S .)" = "$(qemu-img info --output=json ours.qcow2 | jq -S .)" ]
	data_roundtrip ours.qcow2
	run -1 --separate-stderr qemu-img check --object secret,id=sec0,data=abc124 \
		--image-opts "$(opts_for ours.qcow2)"
	[ "$stderr" = "qemu-img: Could not open '$(opts_for ours.qcow2)': Invalid password, cannot unlock any keyslot" ]
}

@test "LUKS: the Formatting line is qemu-img's, encrypt.* options first" {
	run -0 --separate-stderr qimg create -f qcow2 --object "$SEC0" -o "$LUKS" f.qcow2 4M
	[ "$output" = "Formatting 'f.qcow2', fmt=qcow2 encrypt.format=luks encrypt.key-secret=sec0 encrypt.iter-time=10 cluster_size=65536 extended_l2=off compression_type=zlib size=4194304 lazy_refcounts=off refcount_bits=16" ]
	[ "$stderr" = "" ]
	[ "$(peek_be32 f.qcow2 32)" = 2 ]
}

@test "LUKS default suite (aes-256-xts-plain64, sha256): qemu's image, check, info, data, wrong passphrase" {
	interop ""
	run -0 qimg info ours.qcow2
	[[ "$output" == *"        cipher alg: aes-256"$'\n'* ]]
	[[ "$output" == *"        payload offset: 2068480"$'\n'* ]]
}

@test "LUKS aes-128-cbc-essiv (sha256): same as qemu's, and qemu reads and writes it" {
	interop encrypt.cipher-alg=aes-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv,encrypt.ivgen-hash-alg=sha256
}

@test "LUKS twofish-256 xts, sha512: same as qemu's, and qemu reads and writes it" {
	interop encrypt.cipher-alg=twofish-256,encrypt.hash-alg=sha512
}

@test "LUKS serpent-128 cbc plain64, sha1: same as qemu's, and qemu reads and writes it" {
	interop encrypt.cipher-alg=serpent-128,encrypt.cipher-mode=cbc,encrypt.hash-alg=sha1
}

@test "LUKS cast5-128 cbc plain, md5: same as qemu's" {
	interop encrypt.cipher-alg=cast5-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=plain,encrypt.hash-alg=md5
}

@test "LUKS header fields that are not random: names, key bytes, offsets and stripes" {
	need_qemu
	run -0 qimg create -q -f qcow2 --object "$SEC0" -o "$LUKS" f.qcow2 4M
	[ "$(peek_be32 f.qcow2 $((0x70)))" = $((0x0537be77)) ]
	luks=$(peek_be64 f.qcow2 $((0x78)))
	[ "$luks" = $((0x40000)) ]
	[ "$(peek_be64 f.qcow2 $((0x80)))" = 2068480 ]
	[ "$(head -c $((luks + 6)) f.qcow2 | tail -c 6 | od -An -tx1 | tr -d ' ')" = 4c554b53babe ]
	[ "$(dd if=f.qcow2 bs=1 skip=$((luks + 8)) count=3 status=none)" = aes ]
	[ "$(dd if=f.qcow2 bs=1 skip=$((luks + 40)) count=11 status=none)" = xts-plain64 ]
	[ "$(dd if=f.qcow2 bs=1 skip=$((luks + 72)) count=6 status=none)" = sha256 ]
	[ "$(peek_be32 f.qcow2 $((luks + 104)))" = 4040 ]
	[ "$(peek_be32 f.qcow2 $((luks + 108)))" = 64 ]
	for i in 0 1 2 3 4 5 6 7; do
		s=$((luks + 208 + 48 * i))
		[ "$(peek_be32 f.qcow2 $((s + 40)))" = $((8 + 504 * i)) ]
		[ "$(peek_be32 f.qcow2 $((s + 44)))" = 4000 ]
	done
	[ "$(peek_be32 f.qcow2 $((luks + 208)))" = $((0x00AC71F3)) ]
	[ "$(peek_be32 f.qcow2 $((luks + 208 + 48)))" = $((0xDEAD)) ]
	# The file ends at the end of the LUKS area's last cluster.
	[ "$(stat -c %s f.qcow2)" = $((0x40000 + 0x200000)) ]
}

@test "LUKS layout with every preallocation mode is qemu's" {
	need_qemu
	for p in metadata falloc full; do
		same_as_qemu "$LUKS,preallocation=$p" 3M
		check_clean ours.qcow2
	done
	# Preallocated clusters decrypt to noise (in qemu's image too), so
	# only what qemu-io writes is compared.
	run -0 qemu-io --object "$SEC0" --image-opts "$(opts_for ours.qcow2)" \
		-c 'write -P 0x5a 64k 64k' -c 'read -P 0x5a 64k 64k'
	[[ "$output" != *"Pattern verification failed"* ]]
	check_clean ours.qcow2
}

@test "LUKS layout with cluster sizes 512, 4k and 2M, and refcount_bits=1, is qemu's" {
	need_qemu
	for o in cluster_size=512 cluster_size=4096 cluster_size=2M \
		refcount_bits=1,cluster_size=512,preallocation=metadata; do
		same_as_qemu "$LUKS,$o" 3M
		check_clean ours.qcow2
	done
}

@test "LUKS in a v2 (compat=0.10) image, as qemu-img 7.2 makes and opens it" {
	need_qemu
	same_as_qemu "$LUKS,compat=0.10" 4M
	[ "$(peek_be32 ours.qcow2 4)" = 2 ]
	check_clean ours.qcow2
	data_roundtrip ours.qcow2
	run -0 qimg info ours.qcow2
	[[ "$output" == *"    compat: 0.10"$'\n'* ]]
	[[ "$output" == *"        format: luks"$'\n'* ]]
}

@test "LUKS with extended_l2, a backing file and an external data file is qemu's" {
	need_qemu
	qemu-img create -q -f qcow2 base.qcow2 4M
	same_as_qemu "$LUKS,extended_l2=on" 4M
	check_clean ours.qcow2
	same_as_qemu "$LUKS,extended_l2=on,preallocation=metadata" 4M -b base.qcow2 -F qcow2
	check_clean ours.qcow2
	same_as_qemu "$LUKS" 4M -b base.qcow2 -F qcow2
	check_clean ours.qcow2
	same_as_qemu "$LUKS,data_file=d.raw" 4M
	check_clean ours.qcow2
}

@test "legacy AES: qemu's image, qemu reads and writes it, and qimg warns" {
	need_qemu
	run -0 --separate-stderr qimg create -f qcow2 --object "$SEC0" \
		-o encrypt.format=aes,encrypt.key-secret=sec0 ours.qcow2 4M
	[ "$output" = "Formatting 'ours.qcow2', fmt=qcow2 encrypt.format=aes encrypt.key-secret=sec0 cluster_size=65536 extended_l2=off compression_type=zlib size=4194304 lazy_refcounts=off refcount_bits=16" ]
	[ "$stderr" = "qimg: warning: ours.qcow2: qcow2's legacy AES encryption is insecure; use LUKS (encrypt.format=luks) instead" ]
	qemu_create -o encrypt.format=aes,encrypt.key-secret=sec0 theirs.qcow2 4M
	cmp ours.qcow2 theirs.qcow2
	[ "$(peek_be32 ours.qcow2 32)" = 1 ]
	check_clean ours.qcow2
	[ "$(info_json ours.qcow2)" = "$(info_json theirs.qcow2)" ]
	data_roundtrip ours.qcow2
}

@test "legacy AES through the deprecated encryption=on, v2 too; -q keeps the warning" {
	need_qemu
	run -0 --separate-stderr qimg create -q -f qcow2 --object "$SEC0" \
		-o encryption=on,encrypt.key-secret=sec0,compat=0.10 ours.qcow2 4M
	[ "$output" = "" ]
	[ "$stderr" = "qimg: warning: ours.qcow2: qcow2's legacy AES encryption is insecure; use LUKS (encrypt.format=luks) instead" ]
	qemu_create -o encryption=on,encrypt.key-secret=sec0,compat=0.10 theirs.qcow2 4M
	cmp ours.qcow2 theirs.qcow2
	run -0 --separate-stderr qimg create -f qcow2 -o encryption=off e.qcow2 1M
	[ "$stderr" = "" ]
	[ "$(peek_be32 e.qcow2 32)" = 0 ]
}

@test "iter-time: small values are taken, 0 gives qemu's minimum of 1000 iterations" {
	need_qemu
	run -0 qimg create -q -f qcow2 --object "$SEC0" \
		-o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=0 f.qcow2 1M
	run -0 qemu-img info --output=json f.qcow2
	[ "$(echo "$output" | jq '."format-specific".data.encrypt.slots[0].iters')" = 1000 ]
	[ "$(echo "$output" | jq '."format-specific".data.encrypt."master-key-iters"')" = 1000 ]
	check_clean f.qcow2
}

# refused OPTS MESSAGE [ARGS...]: exit 1, the Formatting line on stdout
# (qemu prints it before the driver complains), qemu's message, no file.
refused() {
	local opts=$1 msg=$2
	shift 2
	run -1 --separate-stderr qimg create -f qcow2 "$@" -o "$opts" f.qcow2 1M
	[[ "$output" == "Formatting 'f.qcow2', fmt=qcow2 "* ]] || {
		echo "stdout: $output"
		return 1
	}
	[ "$stderr" = "qimg: f.qcow2: $msg" ] || {
		echo "got:      $stderr"
		echo "expected: qimg: f.qcow2: $msg"
		return 1
	}
	[ ! -e f.qcow2 ]
}

@test "refusal: a missing, unknown or non-UTF-8 secret" {
	refused encrypt.format=luks "Parameter 'encrypt.key-secret' is required for cipher"
	[ "$output" = "Formatting 'f.qcow2', fmt=qcow2 encrypt.format=luks cluster_size=65536 extended_l2=off compression_type=zlib size=1048576 lazy_refcounts=off refcount_bits=16" ]
	refused encryption=on "Parameter 'encrypt.key-secret' is required for cipher"
	refused encrypt.format=aes "Parameter 'encrypt.key-secret' is required for cipher"
	refused encrypt.format=luks,encrypt.key-secret=nope "No secret with id 'nope'"
	refused encrypt.format=aes,encrypt.key-secret=nope "No secret with id 'nope'"
	printf '\377\376' >bad.bin
	refused encrypt.format=luks,encrypt.key-secret=s "Data from secret s is not valid UTF-8" \
		--object secret,id=s,file=bad.bin
	# The secret is looked up before the cipher is judged, as in qemu.
	refused encrypt.format=luks,encrypt.key-secret=nope,encrypt.cipher-alg=des "No secret with id 'nope'"
}

@test "refusal: bad names, LUKS options with aes, and the encryption alias" {
	for k in cipher-alg cipher-mode ivgen-alg ivgen-hash-alg hash-alg; do
		refused "$LUKS,encrypt.$k=foo" "Parameter '$k' does not accept value 'foo'" --object "$SEC0"
	done
	refused encrypt.format=aes,encrypt.key-secret=sec0,encrypt.cipher-alg=aes-128 \
		"Parameter 'encrypt.cipher-alg' is unexpected" --object "$SEC0"
	refused encrypt.format=aes,encrypt.key-secret=sec0,encrypt.iter-time=10 \
		"Parameter 'encrypt.iter-time' is unexpected" --object "$SEC0"
	refused encrypt.format=bogus,encrypt.key-secret=sec0 "Parameter 'format' does not accept value 'bogus'" --object "$SEC0"
	refused encrypt.key-secret=sec0 "Parameter 'encrypt.format' is missing" --object "$SEC0"
	refused encrypt.cipher-alg=aes-128 "Parameter 'encrypt.format' is missing"
	refused encryption=off,encrypt.key-secret=sec0 "Parameter 'encrypt.format' is missing"
	refused encryption=on,encrypt.format=aes,encrypt.key-secret=sec0 \
		"'encrypt.format' and its alias 'encryption' can't be used at the same time"
	refused encryption=yes,encrypt.key-secret=sec0 "Parameter 'format' does not accept value 'yes'"
}

@test "refusal: cipher suites qemu-img cannot create" {
	refused "$LUKS,encrypt.cipher-alg=des" "Algorithm 'des' not supported" --object "$SEC0"
	refused "$LUKS,encrypt.cipher-alg=3des" "Algorithm '3des' not supported" --object "$SEC0"
	refused "$LUKS,encrypt.cipher-alg=cast5-128,encrypt.cipher-mode=xts" "Unsupported cipher mode xts" --object "$SEC0"
	refused "$LUKS,encrypt.cipher-alg=aes-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv,encrypt.ivgen-hash-alg=sha512" \
		"No AES cipher with key size 64 available" --object "$SEC0"
	refused "$LUKS,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv,encrypt.ivgen-hash-alg=sha1" \
		"No AES cipher with key size 20 available" --object "$SEC0"
	run -1 --separate-stderr qimg create -f qcow2 --object "$SEC0" \
		-o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=5000000000000 f.qcow2 1M
	[[ "$stderr" == "qimg: f.qcow2: PBKDF iterations "*": Numerical result out of range" ]]
	[ ! -e f.qcow2 ]
}

@test "refusal: type errors and raw come before the Formatting line, as in qemu" {
	run -1 --separate-stderr qimg create -f qcow2 -o "$LUKS,encrypt.iter-time=abc" f.qcow2 1M
	[ "$output" = "" ]
	[ "$stderr" = "qimg: f.qcow2: Parameter 'encrypt.iter-time' expects a number" ]
	run -1 --separate-stderr qimg create -f qcow2 -o encryption=maybe f.qcow2 1M
	[ "$stderr" = "qimg: f.qcow2: Parameter 'encryption' expects 'on' or 'off'" ]
	run -1 --separate-stderr qimg create -f raw --object "$SEC0" -o encrypt.format=luks f.raw 1M
	[ "$output" = "" ]
	[ "$stderr" = "qimg: f.raw: Invalid parameter 'encrypt.format'" ]
	[ ! -e f.raw ]
}

@test "a refused encrypted create leaves an existing file alone" {
	echo precious >f.qcow2
	run -1 --separate-stderr qimg create -f qcow2 -o encrypt.format=luks,encrypt.key-secret=nope f.qcow2 1M
	[ "$stderr" = "qimg: f.qcow2: No secret with id 'nope'" ]
	[ "$(cat f.qcow2)" = precious ]
}

@test "--object in create: help, bad objects and duplicates as in the other commands" {
	run -0 --separate-stderr qimg create -f qcow2 --object help f.qcow2 1M
	[ "${lines[0]}" = "List of user creatable objects:" ]
	[ ! -e f.qcow2 ]
	run -0 --separate-stderr qimg create -f qcow2 --object secret,help f.qcow2 1M
	[ "${lines[0]}" = "secret options:" ]
	[ "${lines[1]}" = "  data=<string>" ]
	[ ! -e f.qcow2 ]
	run -1 --separate-stderr qimg create -f qcow2 --object bogus f.qcow2 1M
	[ "$stderr" = "qimg: Parameter 'qom-type' does not accept value 'bogus'" ]
	run -1 --separate-stderr qimg create -f qcow2 --object secret,id=s f.qcow2 1M
	[ "$stderr" = "qimg: Either 'file' or 'data' must be provided" ]
	run -1 --separate-stderr qimg create -f qcow2 --object secret,id=s,data=x --object secret,id=s,data=y f.qcow2 1M
	[ "$stderr" = "qimg: attempt to add duplicate property 's' to object (type 'container')" ]
	[ ! -e f.qcow2 ]
	# A secret nobody uses is fine, as in qemu-img.
	run -0 qimg create -q -f qcow2 --object secret,id=s,data=x f.qcow2 1M
	[ "$(peek_be32 f.qcow2 32)" = 0 ]
}

@test "secrets from base64 and from a file make images qemu unlocks" {
	need_qemu
	run -0 qimg create -q -f qcow2 --object secret,id=sec0,data=YWJjMTIz,format=base64 -o "$LUKS" a.qcow2 1M
	check_clean a.qcow2
	printf abc123 >pass
	run -0 qimg create -q -f qcow2 --object secret,id=sec0,file=pass -o "$LUKS" b.qcow2 1M
	check_clean b.qcow2
}
