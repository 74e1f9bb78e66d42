#!/usr/bin/env bats
# convert: round trips judged by cmp, qemu-img compare/check and qemu-img
# map; sparse output (-S); -n and --target-is-zero; -B; concatenation;
# --salvage and read errors (through a small LD_PRELOAD fault shim);
# progress output; and qemu-img 7.2's messages for bad input.

load helper

setup_file() {
	# The fault shim: reads of one file fail over a byte range.
	if command -v cc >/dev/null 2>&1; then
		cc -shared -fPIC -O2 -o "$BATS_FILE_TMPDIR/fault.so" \
			"$BATS_TEST_DIRNAME/fault.c" -ldl 2>/dev/null || true
	fi
}

# mkzeros FILE: 8 MiB; the first 4 MiB written with zeros except 512 bytes
# of 'A' at 1M and one 'B' at 2M+8k (QEMU-IMG-REFERENCE.md 3.8).
mkzeros() {
	truncate -s 8M "$1"
	dd if=/dev/zero of="$1" bs=1M count=4 conv=notrunc status=none
	head -c 512 /dev/zero | tr '\0' A |
		dd of="$1" bs=1 seek=1048576 conv=notrunc status=none
	printf B | dd of="$1" bs=1 seek=$((2 * 1048576 + 8192)) conv=notrunc status=none
}

# mkdata FILE SIZE_MB: random data in the first half, a hole after.
mkdata() {
	truncate -s "$2M" "$1"
	head -c $(($2 * 1048576 / 2)) /dev/urandom |
		dd of="$1" conv=notrunc status=none
}

# data_extents IMAGE: "start+length" of every data extent, one per line.
data_extents() {
	qemu-img map --output=json "$1" |
		jq -r '.[] | select(.data) | "\(.start)+\(.length)"'
}

# with_fault FILE OFF LEN CMD...: run CMD with FILE's reads failing.
with_fault() {
	local file=$1 off=$2 len=$3
	shift 3
	[ -f "$BATS_FILE_TMPDIR/fault.so" ] || skip "no C compiler for the fault shim"
	QIMG_FAULT_FILE=$file QIMG_FAULT_OFF=$off QIMG_FAULT_LEN=$len \
		LD_PRELOAD="$BATS_FILE_TMPDIR/fault.so" \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
		"$@"
}

@test "raw to raw copies the image exactly and keeps holes" {
	need_qemu
	mkdata src.raw 16
	run -0 qimg convert -O raw src.raw out.raw
	[ "$output" = "" ]
	cmp src.raw out.raw
	[ "$(data_extents out.raw)" = "0+8388608" ]
}

@test "the output format defaults to raw" {
	mkdata src.raw 4
	run -0 qimg convert src.raw out
	cmp src.raw out
}

@test "-S picks the same zero runs as qemu-img" {
	need_qemu
	mkzeros zeros.raw
	for s in 0 512 1k 4k 64k 1M 16M; do
		qemu-img convert -S "$s" -O raw zeros.raw q.raw
		qimg convert -S "$s" -O raw zeros.raw m.raw
		cmp q.raw m.raw
		[ "$(data_extents m.raw)" = "$(data_extents q.raw)" ]
		rm q.raw m.raw
	done
}

@test "-S 0 writes every byte, zeros included" {
	need_qemu
	mkzeros zeros.raw
	qimg convert -S 0 -O raw zeros.raw full.raw
	[ "$(data_extents full.raw)" = "0+8388608" ]
	cmp zeros.raw full.raw
}

@test "-S 1M merges the data between 1M and 3M" {
	need_qemu
	mkzeros zeros.raw
	qimg convert -S 1M -O raw zeros.raw s.raw
	# like qemu-img, a new raw file has its first 4 KiB allocated
	[ "$(data_extents s.raw)" = "$(printf '0+4096\n1048576+2097152')" ]
}

@test "-S refuses sizes that are not multiples of 512 or above 16M" {
	mkzeros zeros.raw
	for s in 1000 32M 16777728; do
		run -1 --separate-stderr qimg convert -S "$s" zeros.raw x.raw
		[ "$stderr" = "qimg: Invalid buffer size for sparse output specified. Valid sizes are multiples of 512 up to 16777216. Select 0 to disable sparse detection (fully allocates output)." ]
	done
	run -1 --separate-stderr qimg convert -S abc zeros.raw x.raw
	[ "${stderr_lines[0]}" = "qimg: Invalid buffer size for sparse output specified. You may use k, M, G, T, P or E suffixes for" ]
	[ "${stderr_lines[1]}" = "qimg: kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes." ]
	[ ! -e x.raw ]
}

@test "several sources are concatenated" {
	need_qemu
	mkdata a.raw 1
	mkzeros b.raw
	head -c 3000 /dev/urandom > c.raw	# 3000 bytes: a 3072-byte image
	qimg convert -O raw a.raw b.raw c.raw abc.raw
	[ "$(stat -c %s abc.raw)" = $((1048576 + 8388608 + 3072)) ]
	qemu-img convert -O raw a.raw b.raw c.raw q.raw
	cmp q.raw abc.raw
}

@test "-n writes into an existing image, zeros included" {
	mkzeros zeros.raw
	head -c 16M /dev/zero | tr '\0' '\377' > big.raw
	run -0 qimg convert -n zeros.raw big.raw
	[ "$(stat -c %s big.raw)" = 16777216 ]
	cmp -n 8388608 zeros.raw big.raw
	# the rest of the target is left alone
	[ "$(tail -c 8388608 big.raw | tr -d '\377' | wc -c)" = 0 ]
}

@test "--target-is-zero with -n trusts the target and skips zeros" {
	mkzeros zeros.raw
	head -c 8M /dev/zero | tr '\0' '\377' > ff.raw
	qimg convert -n --target-is-zero zeros.raw ff.raw
	# 'A' was copied, the zeros before it were not written
	[ "$(od -An -c -j 1048576 -N 1 ff.raw | tr -d ' ')" = A ]
	[ "$(od -An -tx1 -N 1 ff.raw | tr -d ' ')" = ff ]
}

@test "-n needs an existing target that is large enough" {
	mkdata src.raw 4
	truncate -s 1M small.raw
	run -1 --separate-stderr qimg convert -n src.raw small.raw
	[ "$stderr" = "qimg: small.raw: output file is smaller than input file" ]
	run -1 --separate-stderr qimg convert -n src.raw nosuch.raw
	[ "$stderr" = "qimg: nosuch.raw: could not open 'nosuch.raw': No such file or directory" ]
}

@test "options that need -n or exclude each other are refused as qemu-img does" {
	mkdata src.raw 1
	run -1 --separate-stderr qimg convert -n -o cluster_size=4k src.raw x.raw
	[ "$stderr" = "qimg: -o has no effect when skipping image creation" ]
	run -1 --separate-stderr qimg convert --target-is-zero src.raw x.raw
	[ "$stderr" = "qimg: --target-is-zero requires use of -n flag" ]
	run -1 --separate-stderr qimg convert --target-image-opts src.raw driver=raw,file.filename=x.raw
	[ "$stderr" = "qimg: --target-image-opts requires use of -n flag" ]
	run -1 --separate-stderr qimg convert -C -c -O qcow2 src.raw x.qcow2
	[ "$stderr" = "qimg: Cannot enable copy offloading when -c is used" ]
	run -1 --separate-stderr qimg convert -C -S 4k src.raw x.raw
	[ "$stderr" = "qimg: Cannot enable copy offloading when -S is used" ]
	run -1 --separate-stderr qimg convert -C --salvage src.raw x.raw
	[ "$stderr" = "qimg: Cannot use copy offloading in salvaging mode" ]
	run -1 --separate-stderr qimg convert -f raw --image-opts src.raw x.raw
	[ "$stderr" = "qimg: --image-opts and --format are mutually exclusive" ]
	[ ! -e x.raw ] && [ ! -e x.qcow2 ]
}

@test "-c with a raw target is refused" {
	mkdata src.raw 1
	run -1 --separate-stderr qimg convert -c -O raw src.raw c.raw
	[ "$stderr" = "qimg: Compression not supported for this file format" ]
	[ ! -e c.raw ]
}

@test "-B is refused for raw targets, without -F, and with several sources" {
	mkdata src.raw 1
	run -1 --separate-stderr qimg convert -B src.raw -F raw -O raw src.raw d.raw
	[ "$stderr" = "qimg: Backing file not supported for file format 'raw'" ]
	run -1 --separate-stderr qimg convert -F raw -O raw src.raw d.raw
	[ "$stderr" = "qimg: Backing file format not supported for file format 'raw'" ]
	run -1 --separate-stderr qimg convert -B src.raw -O qcow2 src.raw d.qcow2
	[ "$stderr" = "qimg: Use of backing file requires explicit backing format" ]
	run -1 --separate-stderr qimg convert -B src.raw -F raw -O qcow2 src.raw src.raw d.qcow2
	[ "$stderr" = "qimg: Having a backing file for the target makes no sense when concatenating multiple input images" ]
	[ ! -e d.raw ] && [ ! -e d.qcow2 ]
}

@test "-l refuses concatenation and raw sources" {
	mkdata src.raw 1
	run -1 --separate-stderr qimg convert -l snap src.raw src.raw x.raw
	[ "$stderr" = "qimg: No support for concatenating multiple snapshot" ]
	run -1 --separate-stderr qimg convert -l snap src.raw x.raw
	[ "$stderr" = "qimg: src.raw: Failed to load snapshot: Block format 'raw' used by device '' does not support temporarily loading internal snapshots" ]
}

@test "-m, -r, -t, -T and -j are validated" {
	mkdata src.raw 1
	for m in 0 17 x; do
		run -1 --separate-stderr qimg convert -m "$m" src.raw x.raw
		[ "$stderr" = "qimg: Invalid number of coroutines. Allowed number of coroutines is between 1 and 16" ]
	done
	run -1 --separate-stderr qimg convert -r abc src.raw x.raw
	[ "${stderr_lines[0]}" = "qimg: Invalid rate limit specified. You may use k, M, G, T, P or E suffixes for" ]
	run -1 --separate-stderr qimg convert -t bogus src.raw x.raw
	[ "$stderr" = "qimg: Invalid cache option: bogus" ]
	run -1 --separate-stderr qimg convert -T bogus src.raw x.raw
	[ "$stderr" = "qimg: Invalid source cache option: bogus" ]
	run -1 --separate-stderr qimg convert -j 0 src.raw x.raw
	[ "$stderr" = "qimg: Invalid number of threads '0': use 1 to 64" ]
	run -0 qimg convert -m 16 -W -r 1G -t none -T writeback -j 3 -U src.raw x.raw
	cmp src.raw x.raw
}

@test "missing arguments, sources and formats are reported" {
	mkdata src.raw 1
	run -1 --separate-stderr qimg convert src.raw
	[ "$stderr" = "qimg: Must specify image file name" ]
	run -1 --separate-stderr qimg convert nosuch.raw x.raw
	[ "$stderr" = "qimg: nosuch.raw: could not open 'nosuch.raw': No such file or directory" ]
	mkdir dir
	run -1 --separate-stderr qimg convert dir x.raw
	[ "$stderr" = "qimg: dir: could not open 'dir': Is a directory" ]
	run -1 --separate-stderr qimg convert -O bogus src.raw x.raw
	[ "$stderr" = "qimg: Unknown file format 'bogus'" ]
	run -1 --separate-stderr qimg convert -O raw -o foo=bar src.raw x.raw
	[ "$stderr" = "qimg: x.raw: Invalid parameter 'foo'" ]
	run -1 --separate-stderr qimg convert src.raw nodir/x.raw
	[ "$stderr" = "qimg: nodir/x.raw: error while converting raw: could not open 'nodir/x.raw': No such file or directory" ]
	[ ! -e x.raw ]
}

@test "an unreadable source sector stops the copy with exit 1" {
	mkdata src.raw 8
	run -1 --separate-stderr with_fault src.raw 1048576 512 "$QIMG" convert src.raw out.raw
	[ "$stderr" = "qimg: src.raw: error while reading at byte 0: Input/output error" ]
}

@test "--salvage turns unreadable sectors into zeros with a warning each" {
	mkdata src.raw 8
	run -0 --separate-stderr with_fault src.raw 1049088 1024 "$QIMG" convert --salvage src.raw out.raw
	[ "${stderr_lines[0]}" = "qimg: warning: error while reading offset 1049088: Input/output error" ]
	[ "${stderr_lines[1]}" = "qimg: warning: error while reading offset 1049600: Input/output error" ]
	[ "${#stderr_lines[@]}" = 2 ]
	cmp -n 1049088 src.raw out.raw
	[ "$(od -An -tx1 -j 1049088 -N 1024 out.raw | tr -d ' \n*' | tr -d 0)" = "" ]
	cmp -i 1050112 src.raw out.raw
	run -0 --separate-stderr with_fault src.raw 1049088 1024 "$QIMG" convert -q --salvage src.raw out2.raw
	[ "$stderr" = "" ]
	cmp out.raw out2.raw
}

@test "a full disk is a write error with exit 1" {
	mkdata src.raw 8
	mkdir small
	if mount -t tmpfs -o size=1M tmpfs small 2>/dev/null; then
		run -1 --separate-stderr qimg convert src.raw small/out.raw
		umount small
		[ "$stderr" = "qimg: small/out.raw: error while writing at byte 0: No space left on device" ]
	else
		run -1 --separate-stderr bash -c "ulimit -f 1024; '$QIMG' convert src.raw out.raw"
		[ "$stderr" = "qimg: out.raw: error while writing at byte 0: File too large" ]
	fi
}

@test "-p prints qemu-img's progress lines on stdout" {
	mkdata src.raw 4
	run -0 qimg convert -p src.raw out.raw
	[ "$output" = "$(printf '    (0.00/100%%)\r    (100.00/100%%)\r    (100.00/100%%)\r')" ]
	truncate -s 4M empty.raw
	qimg convert -p empty.raw out2.raw > p.out
	[ "$(od -c p.out)" = "$(printf '    (0.00/100%%)\r    (100.00/100%%)\r\n' | od -c)" ]
	run -0 qimg convert -p -q src.raw out3.raw
	[ "$output" = "" ]
}

@test "-p counts progress over the data only, in steps of more than 1%" {
	mkdata src.raw 64	# 32 MiB of data: 16 chunks
	qimg convert -p src.raw out.raw > p.out
	tr '\r' '\n' < p.out | grep -c '/100%' > n
	[ "$(cat n)" -ge 10 ]
	[ "$(tr '\r' '\n' < p.out | head -1)" = "    (0.00/100%)" ]
	[ "$(tr '\r' '\n' < p.out | grep -v '^$' | tail -1)" = "    (100.00/100%)" ]
	[ "$(tail -c 1 p.out | od -An -c | tr -d ' ')" = '\n' ]
}

@test "--progress=json writes parseable lines on stderr" {
	command -v jq >/dev/null || skip "jq not installed"
	mkdata src.raw 16
	run -0 --separate-stderr qimg convert --progress=json src.raw out.raw
	[ "$output" = "" ]
	printf '%s\n' "$stderr" | jq -e -s 'length >= 2 and all(.[]; has("bytes-done") and has("bytes-total") and has("elapsed"))'
	[ "$(printf '%s\n' "$stderr" | tail -1 | jq '.["bytes-done"] == .["bytes-total"] and .["bytes-total"] == 8388608')" = true ]
	run -0 --separate-stderr qimg convert -q --progress=json src.raw out2.raw
	[ "$stderr" = "" ]
}

@test "--image-opts opens driver and file name options" {
	mkdata src.raw 2
	qimg convert --image-opts driver=raw,file.filename=src.raw out.raw
	cmp src.raw out.raw
	run -1 --separate-stderr qimg convert --image-opts src.raw out2.raw
	[ "$stderr" = "qimg: Could not open 'src.raw': Cannot find device='src.raw' nor node-name='src.raw'" ]
}

@test "-C copies raw to raw with copy offloading" {
	mkdata src.raw 8
	qimg convert -C src.raw out.raw
	cmp src.raw out.raw
}

@test "the thread count does not change the output" {
	mkzeros zeros.raw
	mkdata d.raw 8
	qimg convert -j 1 zeros.raw d.raw one.raw
	qimg convert --threads 7 zeros.raw d.raw seven.raw
	cmp one.raw seven.raw
}

@test "convert --help prints the synopsis" {
	run -0 qimg convert --help
	[[ "$output" == "usage: qimg convert [--object objectdef] [--image-opts]"* ]]
}
