# crash.bash: shared by the bats files that stop a command after its N-th
# write (the fault hook in core/file.c, QIMG_FAULT_AFTER_WRITES).
#
#   only_leaks IMG N    qemu-img check IMG finds no corruption (exit 0, or
#                       3 for leaks only); prints the check and fails if not
#   next_point N        the next write count to try: every one up to 12,
#                       then sparser (about 12 + 6 * ln(writes) points)

only_leaks() {
	local c=0
	qemu-img check "$1" >check.out 2>&1 || c=$?
	if [ "$c" -ne 0 ] && [ "$c" -ne 3 ]; then
		echo "N=$2: qemu-img check exited $c"
		cat check.out
		return 1
	fi
}

next_point() {
	echo $(($1 < 12 ? $1 + 1 : $1 + 1 + $1 / 6))
}
