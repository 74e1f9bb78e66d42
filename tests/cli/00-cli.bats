#!/usr/bin/env bats
# The top-level command line: help, version, unknown commands and options.

load helper

@test "no arguments is a usage error with exit 1" {
	run -1 --separate-stderr qimg
	[ "$output" = "" ]
	[ "${stderr_lines[0]}" = "qimg: Not enough arguments" ]
	[ "${stderr_lines[1]}" = "Try 'qimg --help' for more information" ]
}

@test "--help lists the commands and exits 0" {
	run -0 qimg --help
	[[ "$output" == *"create "* ]]
	[[ "$output" == *"info "* ]]
}

@test "--version prints the version" {
	run -0 qimg --version
	[[ "$output" == "qimg version "* ]]
}

@test "an unknown command names itself" {
	run -1 --separate-stderr qimg bogus
	[ "${stderr_lines[0]}" = "qimg: Command not found: bogus" ]
}

@test "an unknown global option is refused" {
	run -1 --separate-stderr qimg --bogus
	[ "${stderr_lines[0]}" = "qimg: unrecognized option '--bogus'" ]
}
