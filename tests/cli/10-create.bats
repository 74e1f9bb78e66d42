#!/usr/bin/env bats
# qimg create: images byte-identical to qemu-img 7.2's, qemu's refusals
# with qemu's words, option help, sizes, backing files and raw images.
#
# The matrix tests run "create ARGS" twice, qemu-img in q/ and qimg in m/
# (same relative names, so data file names inside the headers match), and
# require the same exit status and messages, identical images (cmp) and a
# clean "qemu-img check".  Differences from qemu-img that are deliberate:
#  - qemu prints "Formatting ..." before validating, so a refused create
#    prints it and then the error; qimg validates first and prints nothing
#    on stdout for a refused create;
#  - qemu's "Detected format of X." lacks a final newline; ours has one;
#  - qemu's usage hint names qemu-img, ours qimg.

load helper

setup() {
	cd "$BATS_TEST_TMPDIR" || return 1
	mkdir -p q m
}

# create_both ARGS...: see the file comment.  Prints what differed.
create_both() {
	local qrc=0 mrc=0 bad=""

	(cd q && qemu-img create "$@" >../q.out 2>../q.err) || qrc=$?
	(cd m && "$QIMG" create "$@" >../m.out 2>../m.err) || mrc=$?
	sed -i -e 's/^qemu-img: /qimg: /' -e 's/qemu-img --help/qimg --help/' \
		-e '$a\' q.err
	if [ "$qrc" -ne 0 ]; then : >q.out; fi
	[ "$qrc" = "$mrc" ] || bad="$bad exit($qrc/$mrc)"
	cmp -s q.out m.out || bad="$bad stdout"
	cmp -s q.err m.err || bad="$bad stderr"
	if [ "$qrc" -eq 0 ] && [ -z "$bad" ]; then
		for f in q/*; do
			f=${f#q/}
			case $f in base*) continue ;; esac
			cmp -s "q/$f" "m/$f" || bad="$bad cmp:$f"
		done
		if [ -e m/img ] && [ "$(head -c 4 m/img)" = "QFI$(printf '\373')" ] &&
			! (cd m && qemu-img check -q img) >check.out 2>&1; then
			bad="$bad check"
		fi
	fi
	if [ -n "$bad" ]; then
		echo "create $*:$bad"
		echo "--- qemu-img:"; cat q.out q.err
		echo "--- qimg:"; cat m.out m.err
		return 1
	fi
	find q m -name 'base*' -prune -o -type f -exec rm -f {} +
	return 0
}

@test "matrix: compat x cluster size x refcount width x preallocation" {
	need_qemu
	local fails=0
	for compat in 0.10 1.1; do
		for cs in 512 4k 64k 2M; do
			for rb in 1 16 64; do
				for pre in off metadata falloc full; do
					# qemu-img syncs every L2 table it
					# preallocates: keep small clusters small
					case $cs/$pre in
					512/off) size=64M ;;
					512/*) size=4M ;;
					4k/*) size=16M ;;
					*/full) size=16M ;;
					*) size=64M ;;
					esac
					create_both -q -f qcow2 -o \
						compat=$compat,cluster_size=$cs,refcount_bits=$rb,preallocation=$pre \
						img $size || fails=$((fails + 1))
				done
			done
		done
	done
	[ $fails -eq 0 ]
}

@test "matrix: lazy refcounts x zstd x extended L2 x cluster size" {
	need_qemu
	local fails=0
	for lazy in off on; do
		for ct in zlib zstd; do
			for el2 in off on; do
				for cs in 4k 16k 64k 2M; do
					for pre in off metadata falloc; do
						create_both -f qcow2 -o \
							lazy_refcounts=$lazy,compression_type=$ct,extended_l2=$el2,cluster_size=$cs,preallocation=$pre \
							img 40M || fails=$((fails + 1))
					done
				done
			done
		done
	done
	for opt in lazy_refcounts=on compression_type=zstd extended_l2=on \
		data_file=data refcount_bits=8 refcount_bits=3 compat=1.0 \
		compat=v2 compat=v3 cluster_size=256 cluster_size=3k \
		cluster_size=4M refcount_bits=128 preallocation=bogus \
		compression_type=lz4 extended_l2=maybe refcount_bits=abc \
		cluster_size=abc lazy_refcounts=maybe data_file_raw=on; do
		for compat in 0.10 1.1; do
			create_both -f qcow2 -o compat=$compat,$opt img 16M ||
				fails=$((fails + 1))
		done
	done
	[ $fails -eq 0 ]
}

@test "matrix: every refcount width, also where refcount structures grow" {
	need_qemu
	local fails=0
	for rb in 1 2 4 8 16 32 64; do
		for pre in off metadata falloc; do
			create_both -q -f qcow2 -o \
				cluster_size=512,refcount_bits=$rb,preallocation=$pre \
				img 6M || fails=$((fails + 1))
		done
		create_both -q -f qcow2 -o cluster_size=1k,refcount_bits=$rb img 200G ||
			fails=$((fails + 1))
	done
	[ $fails -eq 0 ]
}

@test "matrix: backing files with and without -F, size and preallocation" {
	need_qemu
	truncate -s 10M q/base.raw m/base.raw
	local fails=0
	for compat in 0.10 1.1; do
		for args in "-F raw" "" "-u -F raw" "-u" "-F raw -o extended_l2=on,preallocation=metadata" \
			"-F raw -o extended_l2=on,preallocation=falloc" \
			"-F raw -o preallocation=metadata" "-F raw -o data_file=data,data_file_raw=on"; do
			for size in "" 64M 1M; do
				# shellcheck disable=SC2086
				create_both -f qcow2 -o compat=$compat -b base.raw $args img $size ||
					fails=$((fails + 1))
			done
		done
	done
	(cd q && qemu-img create -q -f qcow2 -o cluster_size=4k base.qcow2 33M) &&
		cp q/base.qcow2 m/
	for args in "-F qcow2" "" "-F raw" "-F qcow2 -o compat=0.10" \
		"-F qcow2 -o extended_l2=on,preallocation=falloc"; do
		for size in "" 1G; do
			# shellcheck disable=SC2086
			create_both -f qcow2 -b base.qcow2 $args img $size ||
				fails=$((fails + 1))
		done
	done
	create_both -f qcow2 -o backing_file=base.raw,backing_fmt=raw img ||
		fails=$((fails + 1))
	create_both -f qcow2 -b missing.raw -F raw img || fails=$((fails + 1))
	create_both -f qcow2 -b base.raw -o backing_fmt=raw img || fails=$((fails + 1))
	[ $fails -eq 0 ]
}

@test "matrix: external data files, raw or not, with every preallocation" {
	need_qemu
	local fails=0
	for raw in off on; do
		for pre in off metadata falloc full; do
			for size in 0 70000 32M; do
				create_both -f qcow2 -o \
					data_file=data,data_file_raw=$raw,preallocation=$pre \
					img $size || fails=$((fails + 1))
			done
		done
	done
	[ $fails -eq 0 ]
}

@test "big images: 2048T and 1024T with extended L2 are made, one more is refused" {
	need_qemu
	create_both -f qcow2 img 2048T
	create_both -f qcow2 img 2049T
	create_both -f qcow2 -o extended_l2=on img 1024T
	create_both -f qcow2 -o extended_l2=on img 1025T
	create_both -f qcow2 -o cluster_size=512 img 128G
	create_both -f qcow2 -o cluster_size=512 img 129G
}

@test "a refused create prints no Formatting line and leaves an existing file alone" {
	echo precious >img
	run -1 --separate-stderr qimg create -f qcow2 -o compat=0.10,lazy_refcounts=on img 1M
	[ "$output" = "" ]
	[ "$stderr" = "qimg: img: Lazy refcounts only supported with compatibility level 1.1 and above (use version=v3 or greater)" ]
	[ "$(cat img)" = precious ]
}

@test "refusal: -F without -b" {
	run -1 --separate-stderr qimg create -f qcow2 -F raw img 1M
	[ "$stderr" = "qimg: img: Backing format cannot be used without backing file" ]
	[ ! -e img ]
}

@test "refusal: -b without -F names the detected format" {
	truncate -s 1M base.raw
	run -1 --separate-stderr qimg create -f qcow2 -b base.raw img
	[ "${stderr_lines[0]}" = "qimg: img: Backing file specified without backing format" ]
	[ "${stderr_lines[1]}" = "Detected format of raw." ]
}

@test "refusal: -u -b without -F" {
	run -1 --separate-stderr qimg create -f qcow2 -u -b base.qcow2 img 1M
	[ "$stderr" = "qimg: img: Backing file specified without backing format" ]
}

@test "refusal: a missing backing file" {
	run -1 --separate-stderr qimg create -f qcow2 -b missing.qcow2 -F qcow2 img
	[ "${stderr_lines[0]}" = "qimg: img: Could not open 'missing.qcow2': No such file or directory" ]
	[ "${stderr_lines[1]}" = "Could not open backing image." ]
}

@test "refusal: -u needs a size" {
	run -1 --separate-stderr qimg create -f qcow2 -u -b missing.qcow2 -F qcow2 img
	[ "$stderr" = "qimg: img: Image creation needs a size parameter" ]
}

@test "refusal: no size at all" {
	run -1 --separate-stderr qimg create -f qcow2 img
	[ "$stderr" = "qimg: img: Image creation needs a size parameter" ]
}

@test "refusal: the size twice" {
	run -1 --separate-stderr qimg create -f qcow2 -o size=2M img 3M
	[ "$stderr" = "qimg: img: The image size must be specified only once" ]
}

@test "refusal: an unknown format" {
	run -1 --separate-stderr qimg create -f bogus img 1M
	[ "$stderr" = "qimg: img: Unknown file format 'bogus'" ]
}

@test "refusal: an unknown option" {
	run -1 --separate-stderr qimg create -f qcow2 -o bogus=1 img 1M
	[ "$stderr" = "qimg: img: Invalid parameter 'bogus'" ]
	run -1 --separate-stderr qimg create -f raw -o backing_file=x img 1M
	[ "$stderr" = "qimg: img: Invalid parameter 'backing_file'" ]
}

@test "refusal: a backing file for raw" {
	run -1 --separate-stderr qimg create -f raw -b base -F raw img 1M
	[ "$stderr" = "qimg: img: Backing file not supported for file format 'raw'" ]
	run -1 --separate-stderr qimg create -f raw -F raw img 1M
	[ "$stderr" = "qimg: img: Backing file format not supported for file format 'raw'" ]
}

@test "refusal: the backing file is the image, or empty" {
	run -1 --separate-stderr qimg create -f qcow2 -b img -F qcow2 img
	[ "$stderr" = "qimg: img: Error: Trying to create an image with the same filename as the backing file" ]
	run -1 --separate-stderr qimg create -f qcow2 -b "" -F qcow2 img 1M
	[ "$stderr" = "qimg: img: Expected backing file name, got empty string" ]
}

@test "refusal: invalid sizes" {
	for s in 1KB 1KiB 1Z abc; do
		run -1 --separate-stderr qimg create -f raw img "$s"
		[ "${stderr_lines[0]}" = "qimg: Invalid image size specified. You may use k, M, G, T, P or E suffixes for" ]
		[ "${stderr_lines[1]}" = "qimg: kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes." ]
	done
	for s in 8E 9223372036854775808 100000000000000000000; do
		run -1 --separate-stderr qimg create -f raw img "$s"
		[ "$stderr" = "qimg: Invalid image size specified. Must be between 0 and 9223372036854775807." ]
	done
	run -1 --separate-stderr qimg create -f qcow2 -o size=abc img
	[ "${stderr_lines[0]}" = "qimg: img: Parameter 'size' expects a non-negative number below 2^64" ]
	[ "${stderr_lines[1]}" = "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-" ]
	[ "${stderr_lines[2]}" = "and exabytes, respectively." ]
	[ ! -e img ]
}

@test "refusal: an unexpected argument and a missing file name" {
	run -1 --separate-stderr qimg create -f qcow2 img 1M extra
	[ "${stderr_lines[0]}" = "qimg: Unexpected argument: extra" ]
	[ "${stderr_lines[1]}" = "Try 'qimg --help' for more information" ]
	run -1 --separate-stderr qimg create -f qcow2
	[ "${stderr_lines[0]}" = "qimg: Expecting image file name" ]
}

@test "refusal: typed option values" {
	run -1 --separate-stderr qimg create -f qcow2 -o lazy_refcounts=maybe img 1M
	[ "$stderr" = "qimg: img: Parameter 'lazy_refcounts' expects 'on' or 'off'" ]
	run -1 --separate-stderr qimg create -f qcow2 -o refcount_bits=1k img 1M
	[ "$stderr" = "qimg: img: Parameter 'refcount_bits' expects a number" ]
}

@test "refusal: qcow2 option values, with qemu's words" {
	run -1 --separate-stderr qimg create -f qcow2 -o compat=1.0 img 1M
	[ "$stderr" = "qimg: img: Parameter 'version' does not accept value '1.0'" ]
	run -1 --separate-stderr qimg create -f qcow2 -o preallocation=bogus img 1M
	[ "$stderr" = "qimg: img: Parameter 'preallocation' does not accept value 'bogus'" ]
	run -1 --separate-stderr qimg create -f qcow2 -o compression_type=lz4 img 1M
	[ "$stderr" = "qimg: img: Parameter 'compression-type' does not accept value 'lz4'" ]
	run -1 --separate-stderr qimg create -f qcow2 -o cluster_size=3k img 1M
	[ "$stderr" = "qimg: img: Cluster size must be a power of two between 512 and 2048k" ]
	run -1 --separate-stderr qimg create -f qcow2 -o refcount_bits=3 img 1M
	[ "$stderr" = "qimg: img: Refcount width must be a power of two and may not exceed 64 bits" ]
	run -1 --separate-stderr qimg create -f qcow2 -o compat=0.10,refcount_bits=8 img 1M
	[ "$stderr" = "qimg: img: Different refcount widths than 16 bits require compatibility level 1.1 or above (use version=v3 or greater)" ]
	run -1 --separate-stderr qimg create -f qcow2 -o extended_l2=on,cluster_size=4k img 1M
	[ "$stderr" = "qimg: img: Extended L2 entries are only supported with cluster sizes of at least 16384 bytes" ]
	run -1 --separate-stderr qimg create -f qcow2 -o extended_l2=on,compat=0.10 img 1M
	[ "$stderr" = "qimg: img: Extended L2 entries are only supported with compatibility level 1.1 and above (use version=v3 or greater)" ]
	run -1 --separate-stderr qimg create -f qcow2 -o compat=0.10,compression_type=zstd img 1M
	[ "$stderr" = "qimg: img: Non-zlib compression type is only supported with compatibility level 1.1 and above (use version=v3 or greater)" ]
	run -1 --separate-stderr qimg create -f qcow2 -o data_file=d,compat=0.10 img 1M
	[ "$stderr" = "qimg: img: External data files are only supported with compatibility level 1.1 and above (use version=v3 or greater)" ]
	run -1 --separate-stderr qimg create -f qcow2 -o data_file_raw=on img 1M
	[ "$stderr" = "qimg: img: data-file-raw requires data-file" ]
	run -1 --separate-stderr qimg create -f qcow2 -u -b b -F raw -o data_file=d,data_file_raw=on img 1M
	[ "$stderr" = "qimg: img: Backing file and data-file-raw cannot be used at the same time" ]
	run -1 --separate-stderr qimg create -f qcow2 -u -b b -F raw -o preallocation=metadata img 1M
	[ "$stderr" = "qimg: img: Backing file and preallocation can only be used at the same time if extended_l2 is on" ]
	[ ! -e img ] && [ ! -e d ]
}

@test "refusal: too big" {
	run -1 --separate-stderr qimg create -f qcow2 img 2049T
	[ "$stderr" = "qimg: img: The image size is too large for file format 'qcow2' (try using a larger cluster size)" ]
	run -1 --separate-stderr qimg create -f qcow2 -o cluster_size=512 img 129G
	[ "$stderr" = "qimg: img: The image size is too large for file format 'qcow2' (try using a larger cluster size)" ]
	# The raw limit is the file system's (16 TiB on ext4; tmpfs, where the
	# suite normally runs, has none), so try it on the disk the repo is on.
	local d
	d=$(mktemp -d "$BATS_TEST_DIRNAME/../tmp/toobig.XXXXXX")
	if truncate -s 1P "$d/probe" 2>/dev/null; then
		rm -rf "$d"
		skip "the file system of $BATS_TEST_DIRNAME takes 1 PiB files"
	fi
	run -1 --separate-stderr qimg create -f raw "$d/img" 1P
	[ "$stderr" = "qimg: $d/img: The image size is too large for file format 'raw'" ]
	# qemu leaves an empty file behind here; qimg removes it.
	[ ! -e "$d/img" ]
	rm -rf "$d"
}

@test "encryption without a secret is refused after the Formatting line (80-create-crypt has the rest)" {
	run -1 --separate-stderr qimg create -f qcow2 -o encrypt.format=luks img 1M
	[ "$stderr" = "qimg: img: Parameter 'encrypt.key-secret' is required for cipher" ]
	[[ "$output" == "Formatting 'img', fmt=qcow2 encrypt.format=luks "* ]]
	[ ! -e img ]
	run -0 qimg create -q -f qcow2 -o encryption=off img 1M
}

@test "-o help lists qemu's qcow2 and raw options, with and without a file name" {
	need_qemu
	for fmt in qcow2 raw; do
		for help in help '?'; do
			run -0 qimg create -f $fmt -o "$help"
			[ "$output" = "$(qemu-img create -f $fmt -o "$help")" ]
			run -0 qimg create -f $fmt -o "$help" img
			[ "$output" = "$(qemu-img create -f $fmt -o "$help" img)" ]
		done
	done
	[ ! -e img ]
}

@test "-o help text is pinned" {
	run -0 qimg create -f raw -o help
	[ "${lines[0]}" = "Supported raw options:" ]
	[ "${lines[1]}" = "  size=<size>            - Virtual disk size" ]
	[ "${lines[2]}" = "The protocol level may support further options." ]
	run -0 qimg create -f qcow2 -o help img
	[ "${lines[0]}" = "Supported options:" ]
	[ "${lines[7]}" = "  data_file_raw=<bool (on/off)> - The external data file must stay valid as a raw image" ]
	[ "${#lines[@]}" -eq 24 ]
}

@test "Formatting line: qemu's order, sizes in bytes, defaults shown" {
	run -0 qimg create -f qcow2 -o cluster_size=4k,compat=1.1,compat=0.10 -o lazy_refcounts=off,refcount_bits=0x10 img 1.5G
	[ "$output" = "Formatting 'img', fmt=qcow2 cluster_size=4096 extended_l2=off compression_type=zlib size=1610612736 compat=0.10 lazy_refcounts=off refcount_bits=16" ]
	[ "$(peek_be32 img 4)" -eq 2 ]
	run -0 qimg create -f qcow2 -u -b b.qcow2 -F qcow2 -o extended_l2=yes,preallocation=off,nocow=off,extent_size_hint=1M,data_file=d img 1M
	[ "$output" = "Formatting 'img', fmt=qcow2 cluster_size=65536 extended_l2=yes preallocation=off compression_type=zlib size=1048576 backing_file=b.qcow2 backing_fmt=qcow2 data_file=d lazy_refcounts=off refcount_bits=16 nocow=off extent_size_hint=1048576" ]
	run -0 qimg create img 1000
	[ "$output" = "Formatting 'img', fmt=raw size=1000" ]
	run -0 qimg create -f raw -o extent_size_hint=0,nocow=on,preallocation=off img 1M
	[ "$output" = "Formatting 'img', fmt=raw size=1048576 nocow=on preallocation=off extent_size_hint=0" ]
}

@test "-q prints nothing" {
	run -0 --separate-stderr qimg create -q -f qcow2 img 1M
	[ "$output" = "" ] && [ "$stderr" = "" ]
	[ "$(peek_be64 img 24)" -eq 1048576 ]
}

@test "size suffixes and rounding" {
	for s in 1024:1024 1k:1024 1K:1024 1m:1048576 1G:1073741824 1t:1099511627776 \
		10b:512 1.5k:1536 0.5M:524288 0x100000:1048576 1000:1024 0:0; do
		run -0 qimg create -q -f qcow2 img "${s%%:*}"
		[ "$(peek_be64 img 24)" -eq "${s#*:}" ]
	done
}

@test "the backing file's size is the default size" {
	truncate -s 12345678 base.raw
	run -0 qimg create -f qcow2 -b base.raw -F raw img
	[ "$output" = "Formatting 'img', fmt=qcow2 cluster_size=65536 extended_l2=off compression_type=zlib size=12345856 backing_file=base.raw backing_fmt=raw lazy_refcounts=off refcount_bits=16" ]
	[ "$(peek_be64 img 24)" -eq 12345856 ]
	mkdir sub && truncate -s 2M sub/b2.raw
	run -0 qimg create -q -f qcow2 -b b2.raw -F raw sub/img
	[ "$(peek_be64 sub/img 24)" -eq 2097152 ]
}

@test "raw: size rounded up to 512, preallocation, first block allocated" {
	run -0 qimg create -q img 1000
	[ "$(stat -c %s img)" -eq 1024 ]
	run -0 qimg create -q img 1G
	[ "$(stat -c %s img)" -eq 1073741824 ]
	[ "$(stat -c %b img)" -eq 8 ]
	run -0 qimg create -q -f raw -o preallocation=falloc img 10000
	[ "$(stat -c %s img)" -eq 10240 ]
	[ "$(stat -c %b img)" -ge 20 ]
	run -0 qimg create -q -f raw -o preallocation=full img 1M
	[ "$(stat -c %b img)" -ge 2048 ]
	run -0 qimg create -q -f raw img 0
	[ "$(stat -c %s img)" -eq 0 ]
	run -1 --separate-stderr qimg create -f raw -o preallocation=metadata img 1M
	[ "$stderr" = "qimg: img: Unsupported preallocation mode: metadata" ]
	run -1 --separate-stderr qimg create -f raw -o preallocation=bogus img 1M
	[ "$stderr" = "qimg: img: invalid parameter value: bogus" ]
}

@test "raw: same bytes and disk size as qemu-img" {
	need_qemu
	for args in "1000" "-o preallocation=falloc 10000" "-o preallocation=full 70000" "100M" "0"; do
		# shellcheck disable=SC2086
		create_both -q -f raw img $args
	done
	(cd q && qemu-img create -q -f raw img 1G) && qimg create -q -f raw m/img 1G
	[ "$(qemu-img info q/img | grep 'disk size')" = "$(qemu-img info m/img | grep 'disk size')" ]
}

@test "create -h prints the synopsis" {
	run -0 qimg create -h
	[[ "$output" == "usage: qimg create [-q] [-f fmt] [-b backing_file [-F backing_fmt]] [-u]"* ]]
	run -0 qimg create --help
	[[ "$output" == *"[-o options] [--object objectdef] filename [size]" ]]
}

@test "refusal: a backing chain that does not open" {
	need_qemu
	qemu-img create -q -f qcow2 -u -b gone.qcow2 -F qcow2 mid.qcow2 1M
	run -1 --separate-stderr qimg create -f qcow2 -b mid.qcow2 -F qcow2 img
	[ "${stderr_lines[0]}" = "qimg: img: Could not open backing file: Could not open 'gone.qcow2': No such file or directory" ]
	[ "${stderr_lines[1]}" = "Could not open backing image." ]
	[ ! -e img ]
}
