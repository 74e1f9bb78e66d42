# helper.bash: shared setup for the bats CLI tests.
#
#   load helper           at the top of every .bats file
#   qimg ARGS...          runs the binary under test ($QIMG)
#   need_qemu             skip without qemu-img, but FAIL under CI=true
#   poke_be16/32/64 FILE OFFSET VALUE    write a big-endian integer in place
#   poke_bytes FILE OFFSET HEXSTRING     write raw bytes in place
#   peek_be32/64 FILE OFFSET             print a big-endian integer
#
# Every test runs in its own empty directory ($BATS_TEST_TMPDIR), so
# relative image names are safe and nothing leaks between tests.

bats_require_minimum_version 1.5.0

QIMG=${QIMG:-$BATS_TEST_DIRNAME/../../qimg}

qimg() {
	"$QIMG" "$@"
}

setup() {
	cd "$BATS_TEST_TMPDIR" || return 1
}

need_qemu() {
	if ! command -v qemu-img >/dev/null 2>&1 || ! command -v qemu-io >/dev/null 2>&1; then
		if [ "${CI:-}" = true ]; then
			echo "qemu-img/qemu-io are required under CI (apt-get install qemu-utils)" >&2
			return 1
		fi
		skip "qemu-img not installed"
	fi
}

# poke_int FILE OFFSET VALUE NBYTES: big-endian write without truncating.
poke_int() {
	local file=$1 off=$2 val=$3 n=$4 hex
	hex=$(printf "%0$((n * 2))x" "$val")
	poke_bytes "$file" "$off" "$hex"
}

poke_be16() { poke_int "$1" "$2" "$3" 2; }
poke_be32() { poke_int "$1" "$2" "$3" 4; }
poke_be64() { poke_int "$1" "$2" "$3" 8; }

poke_bytes() {
	local file=$1 off=$2 hex=$3
	printf "$(echo "$hex" | sed 's/../\\x&/g')" |
		dd of="$file" bs=1 seek="$(($off))" conv=notrunc status=none
}

peek_int() {
	od -An -tx1 -j "$(($2))" -N "$3" "$1" | tr -d ' \n' | sed 's/^/0x/' | xargs printf '%d\n'
}

peek_be32() { peek_int "$1" "$2" 4; }
peek_be64() { peek_int "$1" "$2" 8; }

# Bounded runs for hostile inputs:
#   qimg_bounded ARGS...   qimg under a 10 s timeout and a 200 MiB
#                          address-space limit (not for AddressSanitizer
#                          builds, which reserve terabytes of address space)
QIMG_ASAN=
if ldd "$QIMG" 2>/dev/null | grep -q libasan; then
	QIMG_ASAN=1
fi

qimg_bounded() {
	(
		[ -n "$QIMG_ASAN" ] || ulimit -v 200000
		exec timeout 10 "$QIMG" "$@"
	)
}

# qemu_retry CMD...: run a qemu-img command that derives a LUKS key,
# again while it fails with qemu's intermittent "Unable to get accurate
# CPU usage" (its PBKDF2 calibration: under load it fails a third of the
# time or more, at any iter-time); any other failure is shown and final.
qemu_retry() {
	local out
	for _ in $(seq 25); do
		out=$("$@" 2>&1) && return 0
		[[ "$out" == *"Unable to get accurate CPU usage"* ]] || {
			echo "$out" >&2
			return 1
		}
	done
	echo "$out" >&2
	return 1
}

# make_luks FILE SIZE [OPTS]: a LUKS qcow2 made by qemu-img, with secret
# sec0 = abc123.
make_luks() {
	qemu_retry qemu-img create -q -f qcow2 \
		--object secret,id=sec0,data=abc123 \
		-o "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10${3:+,$3}" \
		"$1" "$2"
}

# qemu_create ARGS...: qemu-img create -q -f qcow2 with the secret $SEC0
# (set by the test file); retries qemu's intermittent
# "Unable to get accurate CPU usage" with small iter-time.
qemu_create() {
	qemu_retry qemu-img create -q -f qcow2 --object "$SEC0" "$@"
}
