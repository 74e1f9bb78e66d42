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

@test "-l converts an internal snapshot chosen by id or name" {
	need_qemu
	qemu-img create -q -f qcow2 d.qcow2 1M
	qemu-io -c 'write -P 0x11 0 64k' d.qcow2 >/dev/null
	qemu-img snapshot -c snap1 d.qcow2
	qemu-io -c 'write -P 0x22 0 64k' d.qcow2 >/dev/null
	qemu-img snapshot -c snap2 d.qcow2
	qemu-io -c 'write -P 0x33 64k 64k' d.qcow2 >/dev/null
	for l in snap1 1 snapshot.id=1 snapshot.name=snap2 snapshot.id=2,snapshot.name=snap2; do
		qimg convert -l "$l" -O raw d.qcow2 m.raw
		qemu-img convert -l "$l" -O raw d.qcow2 q.raw
		cmp m.raw q.raw
		rm m.raw q.raw
	done
	qimg convert -j 3 -l snap1 -c -O qcow2 d.qcow2 c.qcow2
	qemu-img convert -l snap1 -O raw d.qcow2 q.raw
	qemu-img compare -q q.raw c.qcow2
	for l in nosuch snapshot.id=3 snapshot.id=1,snapshot.name=snap2; do
		run -1 --separate-stderr qimg convert -l "$l" d.qcow2 s.raw
		[ "$stderr" = "qimg: d.qcow2: Failed to load snapshot: Can't find snapshot" ]
	done
	run -1 --separate-stderr qimg convert -l snapshot.foo=1 d.qcow2 s.raw
	[ "${stderr_lines[0]}" = "qimg: Invalid parameter 'snapshot.foo'" ]
	[ "${stderr_lines[1]}" = "qimg: Failed in parsing snapshot param 'snapshot.foo=1'" ]
	[ ! -e s.raw ]
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

@test "the output may not be one of the inputs" {
	mkdata src.raw 1
	cp src.raw keep.raw
	run -1 --separate-stderr qimg convert src.raw src.raw
	[ "$stderr" = "qimg: src.raw: the output image is also an input image" ]
	ln -s src.raw link.raw
	run -1 --separate-stderr qimg convert -n keep.raw src.raw link.raw
	[ "$stderr" = "qimg: link.raw: the output image is also an input image" ]
	cmp src.raw keep.raw
}

@test "an unreadable source sector stops the copy with exit 1" {
	mkdata src.raw 8
	run -1 --separate-stderr with_fault src.raw 1048576 512 "$QIMG" convert src.raw out.raw
	[ "$stderr" = "qimg: src.raw: error while reading at byte 0: Input/output error" ]
}

@test "holes of a raw source are never read" {
	# data at 0-1M and 3M-4M, a hole between whose reads would fail
	truncate -s 4M src.raw
	head -c 1M /dev/urandom | dd of=src.raw conv=notrunc status=none
	head -c 1M /dev/urandom | dd of=src.raw bs=1M seek=3 conv=notrunc status=none
	run -0 --separate-stderr with_fault src.raw 1048576 2097152 "$QIMG" convert src.raw out.raw
	cmp src.raw out.raw
	# the same with -S 0, which reads everything, fails
	run -1 --separate-stderr with_fault src.raw 1048576 2097152 "$QIMG" convert -S 0 src.raw out2.raw
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
	run -1 --separate-stderr qimg convert --image-opts driver=raw,file.filename=src.raw,foo=1 out2.raw
	[ "$stderr" = "qimg: Could not open 'driver=raw,file.filename=src.raw,foo=1': Block format 'raw' does not support the option 'foo'" ]
	[ ! -e out2.raw ]
}

@test "--object takes qemu's secret objects and refuses others" {
	mkdata src.raw 1
	run -0 qimg convert --object secret,id=sec0,data=abc src.raw out.raw
	cmp src.raw out.raw
	run -1 --separate-stderr qimg convert --object bogus src.raw out2.raw
	[ "$stderr" = "qimg: Parameter 'qom-type' does not accept value 'bogus'" ]
	run -0 qimg convert --object help
	[ "${lines[0]}" = "List of user creatable objects:" ]
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

# ---- qcow2 sources and targets (need the qcow2 engine) ----

# need_qcow2_io: skip until qimg can read and write qcow2 data.
need_qcow2_io() {
	need_qemu
	truncate -s 64k probe.raw
	if ! "$QIMG" convert -q -O qcow2 probe.raw probe.qcow2 2>/dev/null; then
		skip "qcow2 reads and writes are not supported yet"
	fi
	rm -f probe.raw probe.qcow2
}

# mkchain: cb.qcow2 (1s at 0-1M, 2s at 4M+128k) <- ct.qcow2 (3s at 512k+64k,
# a zero cluster at 4M, 4s at 8M+192k), both 16 MiB (the reference's chain).
mkchain() {
	qemu-img create -q -f qcow2 cb.qcow2 16M
	qemu-io -c 'write -P 1 0 1M' -c 'write -P 2 4M 128k' cb.qcow2 >/dev/null
	qemu-img create -q -f qcow2 -b cb.qcow2 -F qcow2 ct.qcow2
	qemu-io -c 'write -P 3 512k 64k' -c 'write -z 4M 64k' \
		-c 'write -P 4 8M 192k' ct.qcow2 >/dev/null
}

# same_as_qemu ARGS... SRC: qimg and qemu-img convert SRC with ARGS into
# byte-identical files, which qemu-img finds clean and equal to SRC.
same_as_qemu() {
	local src=${*: -1}
	qemu-img convert "$@" q.out
	qimg convert "$@" m.out
	cmp q.out m.out
	qemu-img compare -q "$src" m.out
	if [ "$(od -An -tx1 -N4 m.out | tr -d ' ')" = 514649fb ]; then
		qemu-img check -q m.out
	fi
	rm -f q.out m.out
}

@test "raw to qcow2 and back writes what qemu-img writes, byte for byte" {
	need_qcow2_io
	mkzeros zeros.raw
	mkdata d.raw 8
	for s in 0 4k 1M; do
		same_as_qemu -S "$s" -O qcow2 zeros.raw
	done
	same_as_qemu -O qcow2 d.raw
	qemu-img convert -O qcow2 d.raw d.qcow2
	same_as_qemu -O raw d.qcow2
}

@test "every qcow2 creation option is honoured for the target" {
	need_qcow2_io
	mkdata d.raw 8
	for o in cluster_size=4k cluster_size=2M compat=0.10 refcount_bits=1 \
		refcount_bits=64 lazy_refcounts=on extended_l2=on \
		preallocation=metadata preallocation=falloc \
		compression_type=zstd data_file=ext.raw; do
		same_as_qemu -O qcow2 -o "$o" d.raw
		rm -f ext.raw
	done
}

@test "a backing chain is flattened, and -B keeps only what differs" {
	need_qcow2_io
	mkchain
	same_as_qemu -O qcow2 ct.qcow2
	same_as_qemu -O raw ct.qcow2
	same_as_qemu -O qcow2 -B cb.qcow2 -F qcow2 ct.qcow2
	qimg convert -O qcow2 -B cb.qcow2 -F qcow2 ct.qcow2 delta.qcow2
	# only the top's clusters are allocated in the delta
	[ "$(qemu-img map --output=json delta.qcow2 | jq -c '[.[] | select(.depth == 0) | [.start, .length, .zero]]')" = '[[524288,65536,false],[4194304,65536,true],[8388608,196608,false]]' ]
}

@test "-n and --target-is-zero write into an existing qcow2 image" {
	need_qcow2_io
	mkzeros zeros.raw
	qemu-img create -q -f qcow2 t.qcow2 8M
	qemu-io -c 'write -P 0x55 0 8M' t.qcow2 >/dev/null
	qimg convert -n -O qcow2 zeros.raw t.qcow2
	qemu-img compare -q zeros.raw t.qcow2
	qemu-img check -q t.qcow2
	qemu-img create -q -f qcow2 e.qcow2 16M
	qimg convert -n --target-is-zero -O qcow2 zeros.raw e.qcow2
	qemu-img compare -q zeros.raw e.qcow2
	# only the two clusters holding 'A' and 'B' were written
	[ "$(qemu-img map --output=json e.qcow2 | jq -c '[.[] | select(.data) | .start]')" = '[1048576,2097152]' ]
}

@test "a zlib compressed image is the same for 1 and many threads and qemu-img reads it" {
	need_qcow2_io
	mkzeros zeros.raw
	cat /usr/lib/x86_64-linux-gnu/libc.so.6 > lib.raw
	truncate -s 8M lib.raw
	head -c 1M /dev/urandom > rnd.raw
	qimg convert -j 1 -c -O qcow2 zeros.raw lib.raw rnd.raw c1.qcow2
	qimg convert -j 5 -c -O qcow2 zeros.raw lib.raw rnd.raw c5.qcow2
	cmp c1.qcow2 c5.qcow2
	qemu-img check -q c1.qcow2
	qemu-img convert -O raw zeros.raw lib.raw rnd.raw all.raw
	qemu-img compare -q all.raw c1.qcow2
	# qemu-img's own: qimg's is no larger than it + 2%
	qemu-img convert -c -O qcow2 all.raw q.qcow2
	[ "$(stat -c %s c1.qcow2)" -le $(($(stat -c %s q.qcow2) * 102 / 100)) ]
	# random data stays uncompressed: some clusters, not all, are compressed
	pct=$(qemu-img check c1.qcow2 | sed -n 's/.* \([0-9.]*\)% compressed clusters/\1/p')
	[ "$(echo "$pct > 50 && $pct < 100" | bc)" = 1 ]
	# zero clusters are not stored: 4 MiB of zeros and a 4 MiB hole in
	# zeros.raw, and the hole after libc in lib.raw
	[ "$(qemu-img map --output=json c1.qcow2 | jq '[.[] | select(.data | not) | .length] | add')" -ge $((10 << 20)) ]
	qimg convert -O raw c5.qcow2 back.raw
	cmp all.raw back.raw
}

@test "a zstd compressed image is the same for 1 and many threads and qemu-img reads it" {
	need_qcow2_io
	cat /usr/lib/x86_64-linux-gnu/libc.so.6 > lib.raw
	truncate -s 8M lib.raw
	qimg convert -j 1 -c -O qcow2 -o compression_type=zstd lib.raw z1.qcow2
	qimg convert --threads 3 -c -O qcow2 -o compression_type=zstd lib.raw z3.qcow2
	cmp z1.qcow2 z3.qcow2
	qemu-img check -q z1.qcow2
	qemu-img compare -q lib.raw z1.qcow2
	[ "$(qemu-img info --output=json z1.qcow2 | jq -r '.["format-specific"].data["compression-type"]')" = zstd ]
}

@test "compressed clusters pack within qcow2's limits: cluster sizes and refcount widths" {
	need_qcow2_io
	cat /usr/lib/x86_64-linux-gnu/libc.so.6 > lib.raw
	truncate -s 4M lib.raw
	for o in cluster_size=512 cluster_size=4k cluster_size=2M refcount_bits=1 \
		refcount_bits=2 refcount_bits=1,cluster_size=4k compat=0.10 \
		compression_type=zstd,refcount_bits=4; do
		qimg convert -c -O qcow2 -o "$o" lib.raw c.qcow2
		qemu-img check -q c.qcow2
		qemu-img compare -q lib.raw c.qcow2
		rm c.qcow2
	done
}

@test "qemu-img's compressed images convert back to raw" {
	need_qcow2_io
	cat /usr/lib/x86_64-linux-gnu/libc.so.6 > lib.raw
	truncate -s 8M lib.raw
	for t in zlib zstd; do
		qemu-img convert -c -O qcow2 -o compression_type=$t lib.raw q.qcow2
		qimg convert -O raw q.qcow2 back.raw
		cmp lib.raw back.raw
		rm q.qcow2 back.raw
	done
}

@test "-c refuses preallocation, encryption and allocated clusters" {
	need_qcow2_io
	mkdata d.raw 2
	run -1 --separate-stderr qimg convert -c -O qcow2 -o preallocation=metadata d.raw x.qcow2
	[ "$stderr" = "qimg: Compression and preallocation not supported at the same time" ]
	run -1 --separate-stderr qimg convert -c -O qcow2 -o encrypt.format=luks d.raw x.qcow2
	[ "$stderr" = "qimg: Compression and encryption not supported at the same time" ]
	[ ! -e x.qcow2 ]
	cat /usr/lib/x86_64-linux-gnu/libc.so.6 > lib.raw
	truncate -s 2M lib.raw
	qemu-img create -q -f qcow2 full.qcow2 2M
	qemu-io -c 'write -P 7 0 2M' full.qcow2 >/dev/null
	run -1 --separate-stderr qimg convert -n -c -O qcow2 lib.raw full.qcow2
	[[ "$stderr" == "qimg: full.qcow2: error while writing at byte 0: "* ]]
	qemu-img create -q -f qcow2 empty.qcow2 2M
	qimg convert -n -c -O qcow2 lib.raw empty.qcow2
	qemu-img compare -q lib.raw empty.qcow2
	qemu-img check -q empty.qcow2
}

@test "an unreadable qcow2 cluster is a read error, or zeros with --salvage" {
	need_qcow2_io
	mkdata d.raw 1
	qemu-img convert -O qcow2 d.raw d.qcow2
	# the first data cluster of a fresh 1 MiB image is at 0x50000
	run -1 --separate-stderr with_fault d.qcow2 $((0x50000)) 512 "$QIMG" convert d.qcow2 out.raw
	[ "$stderr" = "qimg: d.qcow2: error while reading at byte 0: Input/output error" ]
	run -0 --separate-stderr with_fault d.qcow2 $((0x50000)) 512 "$QIMG" convert --salvage d.qcow2 out.raw
	[ "$stderr" = "qimg: warning: error while reading offset 0: Input/output error" ]
	cmp -i 512 d.raw out.raw
}

@test "a corrupt L2 entry stops the copy there, or is salvaged sector by sector" {
	need_qcow2_io
	qemu-img create -q -f qcow2 salv.qcow2 1M
	qemu-io -c 'write -P 0x11 0 192k' salv.qcow2 >/dev/null
	# L2 entry 1 (guest cluster 1) points 512 bytes past its cluster
	# (entries have bit 63 set: read them as hex, 64-bit wrapping math)
	l2=$((0x$(od -An -tx1 -j $((0x30000)) -N 8 salv.qcow2 | tr -d ' ') & 0x00fffffffffffe00))
	e=$((0x$(od -An -tx1 -j $((l2 + 8)) -N 8 salv.qcow2 | tr -d ' ') + 512))
	poke_bytes salv.qcow2 $((l2 + 8)) "$(printf '%016x' "$e")"
	run -1 --separate-stderr qimg convert salv.qcow2 out.raw
	[[ "$stderr" == "qimg: salv.qcow2: error while reading block status at offset 65536: "* ]]
	run -0 --separate-stderr qimg convert --salvage salv.qcow2 out.raw
	[ "${stderr_lines[0]}" = "qimg: warning: error while reading block status at offset 65536: Input/output error" ]
	[ "${stderr_lines[1]}" = "qimg: warning: error while reading offset 65536: Input/output error" ]
	[ "${#stderr_lines[@]}" = 256 ]
	qemu-img convert --salvage -O raw salv.qcow2 q.raw 2>/dev/null
	cmp q.raw out.raw
	run -0 --separate-stderr qimg convert -q --salvage salv.qcow2 out2.raw
	[ "$stderr" = "" ]
}
