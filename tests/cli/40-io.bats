#!/usr/bin/env bats
# qimg io against qemu-io: the same -c script run by both tools on two
# copies of one image must print the same stdout (timing figures filtered,
# as qemu's iotests filter them), the same stderr (with "qemu-io: " read
# as "qimg: "), exit with the same status and leave the same image bytes.
# A few tests pin the deliberate differences instead.

load helper

# Replace the timing part of the statistics lines, keep everything else.
filter_timing() {
	sed -E -e 's/ops; [0-9:.]+( sec)? \([0-9.inf]+ [A-Za-z]+\/sec and [0-9.inf]+ ops\/sec\)$/ops; TIME (RATE)/' \
		-e 's/^([0-9]+),1,[0-9]+:[0-9]{2}:[0-9]{2}\.[0-9]{2},[0-9.inf]+,[0-9.inf]+$/\1,1,TIME,RATE/'
}

# io_same IMAGE ARGS...: run "qemu-io ARGS" on a copy q.img of IMAGE and
# "qimg io ARGS" on a copy m.img, the word IMG in ARGS naming the copy;
# IO_STDIN, when set, is fed to both on stdin.  Everything must match.
# qcow2 results (IMAGE named *.qcow2) are compared by content (qemu-img
# compare) and must pass qemu-img check; huge sparse raw images are
# compared with qemu-img compare too, and other raw images byte for byte.
io_same() {
	local img=$1 a qrc=0 mrc=0
	shift
	local qa=() ma=()
	for a in "$@"; do
		qa+=("${a//IMG/q.img}")
		ma+=("${a//IMG/m.img}")
	done
	cp "$img" q.img
	cp "$img" m.img
	printf '%b' "${IO_STDIN:-}" >stdin.txt
	qemu-io "${qa[@]}" <stdin.txt >q.out 2>q.err || qrc=$?
	# Not through the qimg function: bash would report a deadly signal
	# ("Terminated") on the function's redirected stderr.
	"$QIMG" io "${ma[@]}" <stdin.txt >m.out 2>m.err || mrc=$?
	filter_timing <q.out | sed 's/q\.img/m.img/g' >q.f
	filter_timing <m.out >m.f
	sed -e 's/q\.img/m.img/g' -e 's/^qemu-io: /qimg: /' q.err >q.e
	diff -u q.f m.f
	diff -u q.e m.err
	[ "$qrc" = "$mrc" ] || {
		echo "exit status: qemu-io $qrc, qimg io $mrc"
		return 1
	}
	if [[ "$img" == *.qcow2 ]]; then
		# qcow2: same guest content and a clean image, not same bytes.
		qemu-img compare -q q.img m.img
		qemu-img check -q m.img
	elif [ "$(stat -c %s q.img)" -gt $((64 << 20)) ]; then
		[ "$(stat -c %s q.img)" = "$(stat -c %s m.img)" ]
		qemu-img compare -q -f raw -F raw q.img m.img
	else
		cmp q.img m.img
	fi
}

# A 1 MiB raw image: 'A' x 64k at 0, '~' x 3k at 100k, holes elsewhere.
make_base() {
	qemu-img create -q -f raw base.raw 1M
	qemu-io -f raw -c 'write -q -P 0x41 0 64k' -c 'write -q -P 0x7e 100k 3k' base.raw
}

setup() {
	cd "$BATS_TEST_TMPDIR" || return 1
	need_qemu
	make_base
}

@test "io: read and write print qemu-io's lines and statistics" {
	io_same base.raw -f raw -c 'write -P 5 1k 1k' -c 'read -P 5 1k 1k' \
		-c 'write 0 1536' -c 'read 0 1000' -c 'read 0 1025' \
		-c 'read 0 1048575' -c 'read 0 1M' -c 'read 512k 0x1000' \
		-c 'read 1k 1.5k' -c 'read 1 0' -c 'read 1M 0' -c 'write 1M 0' IMG
	grep -q '^wrote 1024/1024 bytes at offset 1024$' m.out
	grep -q '^1.001 KiB, 1 ops; ' m.out
}

@test "io: the statistics line has qemu-io's shape" {
	run -0 qimg io -f raw -c 'read 0 1536' -c 'read -C 0 3' base.raw
	[[ "${lines[1]}" =~ ^1\.500\ KiB,\ 1\ ops\;\ [0-9]{2}\.[0-9]{2}\ sec\ \([0-9.]+\ (bytes|KiB|MiB|GiB|TiB)/sec\ and\ [0-9]+\.[0-9]{4}\ ops/sec\)$ ]]
	[[ "${lines[2]}" =~ ^3,1,0:00:[0-9]{2}\.[0-9]{2},[0-9]+\.[0-9]{3},[0-9]+\.[0-9]{3}$ ]]
}

@test "io: read -v dumps hex and letters the way qemu-io does" {
	python3 -c 'import sys; sys.stdout.buffer.write(bytes(range(256)) * 16)' >bytes.raw
	io_same bytes.raw -f raw -c 'read -v 0 256' -c 'read -v 3 17' \
		-c 'read -v 0 0' -c 'readv -v 5 3 4' -c 'read -v 4090 6' IMG
	grep -q '^00000030:  30 31 32 33 34 35 36 37 38 39 3a 3b 3c 3d 3e 3f  0123456789......$' m.out
}

@test "io: pattern checks with -P, -s and -l, and their failures" {
	io_same base.raw -f raw -c 'read -P 0x41 -s 0 -l 4 0 8' \
		-c 'read -P 0x41 -s 2 -l 4 65534 8' -c 'read -P 0x41 -s 4 0 8' \
		-c 'read -P 0x41 -l 4 65532 8' -c 'read -P 0 -s 4 -l 5 0 8' \
		-c 'read -P 0 -s 9 -l 0 0 8' -c 'read -s 4 0 8' \
		-c 'read -P 0x41 -s x 0 8' -c 'read -P 0x41 -l -1 0 8' \
		-c 'read -v -P 0x62 0 4' -c 'read -q -P 0x62 0 4' \
		-c 'read -C -P 0x62 0 4' -c 'read -P 0101 0 1' IMG
	grep -qx 'Pattern verification failed at offset 65536, 4 bytes' m.out
	grep -qx 'pattern verification range exceeds end of read data' m.out
}

@test "io: a failed pattern check or I/O error gives exit status 1" {
	run -1 qimg io -f raw -c 'read -q -P 0x42 0 4' -c 'read -q 0 1' base.raw
	[ "${lines[0]}" = "Pattern verification failed at offset 0, 4 bytes" ]
	run -1 qimg io -f raw -c 'read 1M 1' base.raw
	[ "$output" = "read failed: Input/output error" ]
	run -0 qimg io -f raw -c 'read -q -P 0x41 0 4' base.raw
	io_same base.raw -f raw -c 'read 0 2M' -c 'read -q 0 1' IMG
	io_same base.raw -f raw -c 'read -P 0xac 0 512' IMG
}

@test "io: numbers take qemu's suffixes, and bad ones are refused" {
	local n args=()
	for n in 010 0x10 1.5k 1.5 1e3 1K 1kB 1b 0x1k 8E 7E \
		9223372036854775807 9223372036854775808 +1 1.0 -0 0x .5k 1t; do
		args+=(-c "alloc $n 0")
	done
	io_same base.raw -f raw "${args[@]}" IMG
	grep -qx 'Parsing error: argument too large -- 8E' m.out
	grep -qx 'qimg: warning: Using a multiplier suffix on hex numbers is deprecated: 0x1k' m.err
}

@test "io: pattern bytes are strtol numbers from 0 to 255" {
	local p args=()
	for p in -1 0101 1k 0x +5 0x41 255 0xff 0x100 1.0 08; do
		args+=(-c "read -q -P $p 0 1")
	done
	io_same base.raw -f raw "${args[@]}" IMG
}

@test "io: write -z, -u, -n, -f, -s and their combinations" {
	printf abc >p3
	: >p0
	io_same base.raw -f raw -c 'write -z -P 1 0 512' -c 'write -z -c 0 512' \
		-c 'write -u 0 512' -c 'write -n 0 512' -c 'write -z -n 0 512' \
		-c 'write -z -u 0 64k' -c 'write -f 0 512' -c 'write -z -f 0 1' \
		-c 'write -C -z 0 512' -c 'write -p 0 1' -c 'write -s p3 2k 10' \
		-c 'read -v 2k 16' -c 'write -s p0 0 10' -c 'write -s nofile 0 1' \
		-c 'write -s . 0 10' -c 'write -z -s p3 0 1k' \
		-c 'write -s p3 -P 3 0 1' IMG
	grep -qx 'Only one of -z, -P, and -s can be specified at the same time' m.out
	grep -qx 'p0: file is empty' m.err
}

@test "io: write flag conflicts are reported in qemu-io's order" {
	io_same base.raw -f raw -c 'write -b -c 0 1' -c 'write -b -z 0 1' \
		-c 'write -c -f 0 1' -c 'write -u -P 1 0 1' \
		-c 'write -P 1 -z -u 0 1' -c 'write -n -u 0 1' \
		-c 'write -f -b -z 0 1' -c 'write -f -c -z -P 1 0 1' \
		-c 'write -c 1 512' -c 'write -c 0 1' -c 'write -b 0x201 1' \
		-c 'write -c 1 x' -c 'write -u 0' -c 'write -c -s nofile 1 1' \
		-c 'write -s nofile 0 3G' -c 'write -P x -s nofile 0 1' \
		-c 'write -b -z 0' -c 'write -X 0 1' IMG
}

@test "io: compressed and VM-state requests fail as on a raw image" {
	io_same base.raw -f raw -c 'write -c 0 64k' -c 'write -c 512 512' \
		-c 'write -b 0 512' -c 'read -b 0 512' -c 'read -b 1 1' \
		-c 'read -b 512 1' -c 'read -b -P 1 -s 9 1 8' IMG
	grep -qx 'write failed: Operation not supported' m.out
}

@test "io: requests are limited to qemu's maximum length" {
	truncate -s 4G big.raw
	io_same big.raw -f raw -c 'read -q 0 3G' -c 'write -q 0 3G' \
		-c 'readv -q 0 2G 2G' -c 'readv -q 0 1G 1G 1G' \
		-c 'write -z 0 2147483137' -c 'discard -q 0 3G' \
		-c 'aio_read 0 3G' -c 'write -z -n 0 3G' -c 'alloc 0 4G' IMG
	grep -qx 'length cannot exceed 2147483136 without -n, given 3G' m.out
}

@test "io: readv and writev take several lengths" {
	io_same base.raw -f raw -c 'readv 0 512 1k 3' -c 'writev -P 3 0 512 1k 3' \
		-c 'readv -P 3 0 1 1 1' -c 'readv -P 3 1538 1 2' \
		-c 'readv 0' -c 'readv' -c 'writev 0' -c 'readv -s 1 0 1' \
		-c 'readv 0 x' -c 'readv 0 0' -c 'writev 0 0' \
		-c 'readv 0 1 0 1' -c 'readv -q -v 0 4' -c 'writev -P x 0 1' \
		-c 'writev -z 0 1' -c 'readv 0 1 -1' IMG
}

@test "io: aio_read, aio_write and aio_flush, one request at a time" {
	# qemu-io completes pending requests in any order: flush after each.
	io_same base.raw -f raw -c 'aio_write -P 0x11 0 512 512' -c aio_flush \
		-c 'aio_read -v -P 0x11 1020 8' -c aio_flush \
		-c 'aio_read -i 0 1' -c 'aio_write -i 0 1' -c 'aio_write -u 0 1' \
		-c 'aio_write -z x 1 1' -c 'aio_write -z -i 0 1 1' \
		-c 'aio_write -q -P 3 0 1' -c aio_flush \
		-c 'aio_read -q -P 3 0 1' -c aio_flush \
		-c 'aio_write -C -P 4 0 1' -c aio_flush -c 'aio_read' \
		-c 'aio_flush x' -c 'aio_read -q -v -P 0x61 0 4' -c aio_flush \
		-c 'aio_read -P x 0 1' -c 'aio_write -s 0 1' \
		-c 'aio_read -v 0 1 2 3 x' -c 'aio_write -z 0 4k' -c aio_flush \
		-c 'aio_read -P 0 0 4k' -c aio_flush IMG
}

@test "io: failed aio requests give exit status 1, unlike qemu-io" {
	run -0 qemu-io -f raw -c 'aio_read -P 0x42 0 4' -c aio_flush base.raw
	run -1 qimg io -f raw -c 'aio_read -P 0x42 0 4' -c aio_flush base.raw
	[ "${lines[0]}" = "Pattern verification failed at offset 0, 4 bytes" ]
	run -0 qemu-io -f raw -c 'aio_write 2M 1' -c aio_flush base.raw
	run -1 qimg io -f raw -c 'aio_write 2M 1' -c aio_flush base.raw
	[ "$output" = "aio_write failed: Input/output error" ]
}

@test "io: discard unmaps by default and does nothing with -d ignore" {
	io_same base.raw -f raw -c 'discard 0 64k' -c 'read -q -P 0 0 64k' \
		-c 'discard -q 1 1' -c 'discard -C 0 4k' -c 'discard 1M 1' \
		-c 'discard 0 2M' -c 'discard' -c 'discard x 1' \
		-c 'discard 0 1 2' -c 'discard 2M 0' -c 'discard 1M 0' IMG
	io_same base.raw -f raw -d ignore -c 'discard -q 0 64k' \
		-c 'read -q -P 0x41 0 64k' IMG
	io_same base.raw -f raw -d off -c 'write -q -z -u 0 32k' \
		-c 'read -q -P 0 0 32k' IMG
}

@test "io: zeroing and discard keep the file length qemu leaves" {
	head -c 1000 /dev/urandom >odd.raw
	local c
	for c in 'write -z 1000 24' 'write -z -u 1000 24' 'discard 1000 24' \
		'write -z 1008 8' 'write -P 1 1020 4' 'write -z -u 512 512' \
		'truncate 3000' 'truncate 100'; do
		io_same odd.raw -f raw -c "$c" -c length -c map IMG
		[ "$(stat -c %s q.img)" = "$(stat -c %s m.img)" ]
	done
	run -0 qimg io -f raw -c 'write -z 1008 8' odd.raw
	[ "$(stat -c %s odd.raw)" = 1016 ]
}

@test "io: alloc and map on a raw image" {
	io_same base.raw -f raw -c 'alloc 0 1M' -c 'alloc 0' -c 'alloc 512 1' \
		-c 'alloc 1M' -c 'alloc 2M 1' -c 'alloc 1023k 4k' -c 'alloc 0 0' \
		-c 'alloc x' -c 'alloc 1 x' -c 'alloc -1' -c map IMG
	grep -qx '1048576/1048576 bytes allocated at offset 0 bytes' m.out
	grep -qx '1 MiB (0x100000) bytes     allocated at offset 0 bytes (0x0)' m.out
	: >empty.raw
	io_same empty.raw -f raw -c map -c length -c info -c 'alloc 0' IMG
}

@test "io: info, length and truncate" {
	io_same base.raw -f raw -c info -c length -c 'truncate 2M' -c length \
		-c 'truncate 1000' -c length -c 'truncate -m off 3M' \
		-c 'truncate -m falloc 4M' -c 'truncate -m full 5M' \
		-c 'truncate -m bogus 6M' -c 'truncate -m metadata 6M' \
		-c 'truncate x' -c 'truncate' -c 'truncate 1 2' \
		-c 'truncate -1' -c 'truncate 0' -c length -c 'length 1' IMG
	grep -qx "qimg: Invalid preallocation mode 'bogus'" m.err
	io_same base.raw -f raw -c 'truncate -m falloc 2M' -c 'truncate 8E' \
		-c 'truncate 7E' IMG
	[ "$(stat -c %b m.img)" = "$(stat -c %b q.img)" ]
	# qemu-io crashes here (no size after the mode); qimg io prints usage.
	run -1 qimg io -f raw -c 'truncate -m off' base.raw
	[ "$output" = "truncate [-m prealloc_mode] off -- truncates the current file at the given offset" ]
}

@test "io: a read-only image refuses every writing command" {
	io_same base.raw -f raw -r -c 'truncate 2M' -c 'write 0 1' \
		-c 'discard 0 1' -c 'write -z 0 1' -c 'aio_write 0 1' \
		-c 'writev 0 1' -c flush -c aio_flush -c 'write' \
		-c 'write -X 0 1' -c 'reopen -w' -c 'write -q 0 1' IMG
	grep -qx 'qimg: Block node is read-only' m.err
}

@test "io: open, close and reopen" {
	io_same base.raw -c 'open -r -o driver=raw IMG' -c info -c 'write 0 1' \
		-c close -c close -c open -c 'open -o driver=raw' \
		-c 'open -t bogus IMG' -c 'open -d bogus IMG' -c 'open -i bogus IMG' \
		-c 'open -o bogus=1 -o driver=raw IMG' -c 'open -o driver=raw IMG x' \
		-c 'open -f raw IMG' -c 'open -o driver=raw IMG' -c 'read 0 1' \
		-c 'open IMG'
	io_same base.raw -f raw -c 'reopen -r' -c 'write 0 1' -c 'reopen -w' \
		-c 'write -q 0 1' -c 'reopen -r -w' -c 'reopen -c none' \
		-c 'reopen -c bogus' -c 'reopen -o bogus=1' -c 'reopen x' \
		-c 'reopen -o discard=ignore' -c 'reopen -o driver=qcow2' \
		-c 'reopen' -c 'write -q 0 1' IMG
	io_same base.raw -f raw -r -c 'reopen -o read-only=on' -c 'write -q 0 1' \
		-c 'reopen -o read-only=off' -c 'write -q 0 1' \
		-c 'reopen -r -o read-only=off' -c 'reopen -w -o read-only=on' IMG
	run -1 --separate-stderr qimg io -f raw -c 'reopen -o read-only=on' \
		-c 'write -q 0 1' base.raw
	[ "$stderr" = "qimg: Read-only block node 'base.raw' cannot support read-write users" ]
}

@test "io: --image-opts option strings" {
	io_same base.raw --image-opts -c length driver=raw,file.filename=IMG
	io_same base.raw --image-opts -c length file.filename=IMG
	io_same base.raw --image-opts -c info driver=raw,file.driver=file,file.filename=IMG
	io_same base.raw --image-opts -f raw -c length IMG
	io_same base.raw --image-opts -c info driver=raw,file.filename=IMG,bogus=3
	io_same base.raw --image-opts -c info driver=raw,file.filename=IMG,file.bogus=1
	io_same base.raw --image-opts -c info driver=raw
}

@test "io: cache, aio, discard and share options are checked like qemu-io's" {
	io_same base.raw -f bogus -c 'read 0 1' IMG
	io_same base.raw -t bogus -c 'read 0 1' IMG
	io_same base.raw -i bogus -c 'read 0 1' IMG
	io_same base.raw -d bogus -c 'read 0 1' IMG
	io_same base.raw -t none -c 'read 0 1' IMG
	io_same base.raw -i native -c 'read 0 1' IMG
	io_same base.raw -k -f raw -c 'read 0 1' IMG
	io_same base.raw -n -i native -f raw -c 'read 0 1' IMG
	io_same base.raw -U -f raw -c 'write 0 1' IMG
	io_same base.raw -U -r -f raw -c length IMG
	io_same base.raw --format=raw --read-only --cache=writeback --aio=threads \
		--discard=unmap --force-share --nocache --native-aio -m \
		--cmd length IMG
	io_same base.raw -C -r -f raw -c length IMG
	io_same base.raw IMG -f raw -c length
	io_same base.raw --object secret,id=s0,data=abc -f raw -c length IMG
	io_same base.raw --object secret,data=abc -f raw -c length IMG
	io_same base.raw --object secret,id=s0,data=abc \
		--object secret,id=s0,data=x -f raw -c length IMG
	io_same base.raw --object secret,help
}

@test "io: a probed raw image may not be given another format's header" {
	qemu-img create -q -f qcow2 hdr.qcow2 1M
	head -c 512 hdr.qcow2 >hdr
	io_same base.raw -c 'write -s hdr 0 512' IMG
	grep -qx 'write failed: Operation not permitted' m.out
	io_same base.raw -c 'write -s hdr 0 511' -c 'write -s hdr 512 512' \
		-c 'write -z 0 512' -c 'write -P 0x51 0 512' IMG
	io_same base.raw -r -c 'length' IMG
	io_same base.raw -f raw -c 'write -s hdr 0 512' IMG
}

@test "io: help, aliases and command errors" {
	io_same base.raw -c help -c 'help read' -c 'help writev' -c 'help aio_read' \
		-c 'help aio_write' -c 'help open' -c 'help reopen' -c 'help map' \
		-c 'help discard' -c 'help sigraise' -c 'help write' -c 'help bogus' \
		-c 'help read write' -c '?'
	io_same base.raw -f raw -c r -c w -c i -c l -c o -c t -c d -c a -c f \
		-c c -c m -c bogus -c 'read	0 1' -c '' -c '   ' -c ' length ' IMG
	io_same base.raw -f raw -c 'map x' -c 'info x' -c 'close x' -c 'read' \
		-c 'read 0' -c 'read 0 1 2' -c 'read -X 0 1' -c 'read -1 1' \
		-c 'read 0 4 -v' -c 'read -P' -c 'read 0 -- 4' -c 'read -vv 0 1' IMG
	io_same base.raw -f raw -c close -c 'read' -c 'read x' -c 'write' \
		-c 'length 1' -c bogus IMG
	io_same base.raw -c 'read 0 1' -c 'sleep 1'
	grep -qx "no file open, try 'help open'" m.err
}

@test "io: sleep, sigraise, quit and the blkdebug commands" {
	io_same base.raw -f raw -c sigraise -c 'sigraise x' -c 'sigraise 0' \
		-c 'sigraise -1' -c 'sigraise 1 2' -c 'sigraise 99' -c sleep \
		-c 'sleep x' -c 'sleep 10' -c 'sleep 1k' -c 'break write_aio A' \
		-c 'remove_break A' -c 'resume A' -c 'quit 1' -c 'read 0 1' IMG
	io_same base.raw -f raw -c 'read 0 1' -c 'sigraise 15' IMG
	io_same base.raw -f raw -c 'read 0 1' -c abort IMG
	[ "$(stat -c %s m.out)" = 0 ]
}

@test "io: wait_break fails instead of waiting forever" {
	run -1 timeout 10 "$QIMG" io -f raw -c 'wait_break A' base.raw
	[ "$output" = "Could not wait for breakpoint A: Operation not supported" ]
}

@test "io: commands from stdin behind the qemu-io> prompt" {
	IO_STDIN='read 0 1\nbogus\nread 0 2M\nlength' io_same base.raw -f raw IMG
	IO_STDIN='length\n\n   \nhelp quit\nquit\nlength\n' io_same base.raw -f raw IMG
	grep -q '^qemu-io> 1 MiB$' m.out
	IO_STDIN='write -P 1 0 1\nread -P 1 0 1\n' io_same base.raw -f raw IMG
	IO_STDIN='' io_same base.raw -f raw IMG
}

@test "io: stdout and stderr merge in qemu-io's order" {
	local script=(-f raw -c 'read 0 1' -c bogus -c 'write -P 1 -Y 0 1'
		-c 'read 0 1' -c 'alloc 0x1k' -c 'sigraise 0' -c 'read -q 0 1')
	cp base.raw q.img
	cp base.raw m.img
	qemu-io "${script[@]}" q.img 2>&1 | filter_timing |
		sed 's/^qemu-io: /qimg: /' >q.f
	qimg io "${script[@]}" m.img 2>&1 | filter_timing >m.f
	diff -u q.f m.f
}

@test "io: command line errors print the usage and exit 1" {
	run -1 --separate-stderr qimg io -X
	[ "$stderr" = "qimg: invalid option -- 'X'" ]
	[ "${lines[0]}" = "Usage: qimg io [OPTIONS]... [-c STRING]... [file]" ]
	run -1 --separate-stderr qimg io --bogus
	[ "$stderr" = "qimg: unrecognized option '--bogus'" ]
	run -1 --separate-stderr qimg io -c
	[ "$stderr" = "qimg: option requires an argument -- 'c'" ]
	run -1 --separate-stderr qimg io -f raw -c length base.raw base.raw
	[ "$stderr" = "" ]
	run -0 qimg io --help
	[ "${lines[0]}" = "Usage: qimg io [OPTIONS]... [-c STRING]... [file]" ]
	run -1 --separate-stderr qimg io -s -f raw -c length base.raw
	[ "$stderr" = "qimg: snapshot mode (-s) is not supported" ]
	run -1 --separate-stderr qimg io --object bogus -c length base.raw
	[ "$stderr" = "qimg: Parameter 'qom-type' does not accept value 'bogus'" ]
	run -1 --separate-stderr qimg io -c 'read 0 1' nonexist.raw
	[[ "$stderr" == "qimg: can't open device nonexist.raw: "*"No such file or directory" ]]
}

@test "io: info and length on qcow2 images of several kinds" {
	local o
	for o in cluster_size=65536 cluster_size=4096 extended_l2=on \
		compat=0.10 lazy_refcounts=on,refcount_bits=1 \
		compression_type=zstd cluster_size=2M; do
		rm -f q2.qcow2
		qemu-img create -q -f qcow2 -o "$o" q2.qcow2 100M
		io_same q2.qcow2 -r -c info -c length IMG
		io_same q2.qcow2 -f qcow2 -r -c info IMG
	done
	grep -qx 'vm state offset: 512 GiB' m.out
}

# qcow2 data tests need the engine's read/write entries in the driver.
need_qcow2_io() {
	qemu-img create -q -f qcow2 probe.qcow2 1M
	"$QIMG" io -c 'write -q 0 512' probe.qcow2 >/dev/null 2>&1 ||
		skip "qcow2 guest writes are not in this build yet"
}

@test "io: qcow2 writes, reads, map and alloc across cluster boundaries" {
	need_qcow2_io
	local o
	for o in cluster_size=65536 cluster_size=512 cluster_size=4096 \
		compat=0.10 cluster_size=32768,extended_l2=on \
		cluster_size=2M refcount_bits=1 refcount_bits=64; do
		rm -f t.qcow2
		qemu-img create -q -f qcow2 -o "$o" t.qcow2 8M
		io_same t.qcow2 -c 'write -P 1 1000 5000' -c 'write -P 2 64k 64k' \
			-c 'write -P 3 1M-512 1k' -c 'writev -P 4 3M 100 200 300' \
			-c 'read -P 1 1000 5000' -c 'read -P 0 6000 1000' \
			-c 'read -v 990 20' -c 'readv -P 2 64k 32k 32k' \
			-c 'aio_write -P 5 5M 70k' -c aio_flush \
			-c 'aio_read -P 5 5M 70k' -c aio_flush -c map \
			-c 'alloc 0 8M' -c 'alloc 1000 1' -c 'alloc 7M' -c length IMG
	done
}

@test "io: qcow2 zero writes and discard, with and without -u" {
	need_qcow2_io
	qemu-img create -q -f qcow2 t.qcow2 4M
	io_same t.qcow2 -c 'write -P 1 0 1M' -c 'write -z 64k 64k' \
		-c 'write -z -u 128k 64k' -c 'write -z 300k 1k' \
		-c 'discard 512k 64k' -c 'write -z 2M 128k' \
		-c 'read -P 0 64k 128k' -c 'read -P 1 0 64k' -c map \
		-c 'alloc 0 4M' IMG
	# v2 has no zero flag: the content must agree (where qemu leaves
	# clusters unallocated is the engine's business, not io's).
	rm -f t.qcow2
	qemu-img create -q -f qcow2 -o compat=0.10 t.qcow2 4M
	io_same t.qcow2 -c 'write -P 1 0 1M' -c 'write -z 64k 64k' \
		-c 'write -z -u 128k 64k' -c 'write -z 300k 1k' \
		-c 'discard 512k 64k' -c 'write -z 2M 128k' \
		-c 'read -P 0 64k 128k' -c 'read -P 1 0 64k' IMG
}

@test "io: qcow2 over a backing file: reads fall through, map shows the top" {
	need_qcow2_io
	qemu-img create -q -f qcow2 bk.qcow2 4M
	qemu-io -c 'write -q -P 7 0 1M' -c 'write -q -P 8 2M 64k' bk.qcow2
	qemu-img create -q -f qcow2 -b bk.qcow2 -F qcow2 top.qcow2
	io_same top.qcow2 -c 'read -P 7 0 1M' -c 'write -P 3 512k 1k' \
		-c 'read -P 7 0 512k' -c 'read -P 3 512k 1k' -c map \
		-c 'alloc 0 4M' -c 'write -z 2M 4k' -c 'read -P 0 2M 4k' \
		-c 'read -P 8 2M+4k 60k' -c 'discard 0 64k' -c 'read -P 7 0 64k' \
		-c map -c 'truncate 8M' -c length -c map -c 'read -P 0 4M 1M' IMG
	io_same top.qcow2 -C -c 'read -P 7 0 100k' -c map -c 'read -q 2M 1' \
		-c map IMG
	rm -f v2.qcow2
	qemu-img create -q -f qcow2 -o compat=0.10 -b bk.qcow2 -F qcow2 v2.qcow2
	io_same v2.qcow2 -c 'write -z 0 64k' -c 'read -P 0 0 64k' \
		-c 'discard 64k 64k' -c 'read -P 7 64k 64k' -c map IMG
}

@test "io: qcow2 images written in turn by qemu-io and qimg io" {
	need_qcow2_io
	qemu-img create -q -f qcow2 t.qcow2 4M
	qemu-io -c 'write -q -P 1 0 100k' t.qcow2
	run -0 qimg io -c 'read -q -P 1 0 100k' -c 'write -q -P 2 50k 100k' \
		-c 'write -q -z 1M 64k' t.qcow2
	qemu-io -c 'read -q -P 1 0 50k' -c 'read -q -P 2 50k 100k' \
		-c 'write -q -P 3 2M 1k' t.qcow2
	run -0 qimg io -c 'read -q -P 3 2M 1k' -c 'read -q -P 0 1M 64k' t.qcow2
	qemu-img check -q t.qcow2
}

@test "io: qcow2 compressed writes, whole clusters or up to the end" {
	need_qcow2_io
	qemu-img create -q -f qcow2 t.qcow2 4M
	io_same t.qcow2 -c 'write -c 0 512' -c 'write -c 0 64k' \
		-c 'write -c 0 64k' -c 'write -c 64k 128k' -c 'write -c 1M 100k' \
		-c 'write -c 2M 0' -c 'write -c -P 3 3M 64k' \
		-c 'read -P 3 3M 64k' -c 'read -P 0xcd 0 192k' -c map \
		-c 'write -c 1 1' -c 'write -z -c 2M 64k' IMG
	grep -qx 'write failed: Invalid argument' m.out
	grep -qx 'write failed: Input/output error' m.out
	qemu-img create -q -f qcow2 odd.qcow2 1000k
	io_same odd.qcow2 -c 'write -c 960k 40k' -c 'write -c 896k 104k' \
		-c 'read -P 0xcd 896k 104k' -c map IMG
}

@test "io: VM-state requests are refused on qcow2 too" {
	need_qcow2_io
	qemu-img create -q -f qcow2 t.qcow2 4M
	run -1 qimg io -c 'write -b 0 512' -c 'read -b 0 512' t.qcow2
	[ "${lines[0]}" = "write failed: Operation not supported" ]
	[ "${lines[1]}" = "read failed: Operation not supported" ]
	qemu-img check -q t.qcow2
}

@test "io: truncate on qcow2 grows, shrinks and preallocates as qemu-io" {
	need_qcow2_io
	qemu-img create -q -f qcow2 t.qcow2 4M
	io_same t.qcow2 -c 'write -P 1 0 1M' -c 'truncate 1M' -c length -c map \
		-c 'truncate 1000' -c 'truncate 512k' -c info \
		-c 'truncate -m metadata 8M' -c 'truncate -m falloc 9M' -c map \
		-c 'truncate -m full 10M' -c map -c 'truncate 0' -c length IMG
	qemu-img create -q -f qcow2 bk.qcow2 4M
	qemu-io -c 'write -q -P 7 0 4M' bk.qcow2
	qemu-img create -q -f qcow2 -b bk.qcow2 -F qcow2 sm.qcow2 1M
	io_same sm.qcow2 -c 'truncate 4M' -c 'read -P 0 1M 3M' \
		-c 'read -P 7 0 1M' -c map -c 'truncate 512k' -c 'truncate 3M' \
		-c 'read -P 7 0 512k' -c 'read -P 0 512k 2560k' -c map IMG
}
