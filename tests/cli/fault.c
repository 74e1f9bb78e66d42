/*
 * fault.c: an LD_PRELOAD shim for tests: reads of one file fail with EIO
 * over a byte range, as a failing disk would, so convert's read-error
 * and --salvage paths can be tested without device-mapper.
 *
 *   QIMG_FAULT_FILE=name   basename of the file whose reads fail
 *   QIMG_FAULT_OFF=N       first failing byte
 *   QIMG_FAULT_LEN=N       number of failing bytes
 *
 * Any pread overlapping the range fails, like a request touching a bad
 * sector.  Built by tests/cli/50-convert.bats; not part of qimg.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int is_target(int fd)
{
	const char *want = getenv("QIMG_FAULT_FILE");
	char link[64], path[PATH_MAX];
	const char *base;
	ssize_t n;

	if (!want)
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n < 0)
		return 0;
	path[n] = '\0';
	base = strrchr(path, '/');
	return strcmp(base ? base + 1 : path, want) == 0;
}

static int faulty(int fd, size_t len, off_t off)
{
	const char *o = getenv("QIMG_FAULT_OFF"), *l = getenv("QIMG_FAULT_LEN");
	long long fo, fl;

	if (!o || !l || !is_target(fd))
		return 0;
	fo = atoll(o);
	fl = atoll(l);
	return (long long)off < fo + fl && (long long)off + (long long)len > fo;
}

ssize_t pread64(int fd, void *buf, size_t len, off_t off)
{
	static ssize_t (*real)(int, void *, size_t, off_t);

	if (!real)
		real = (ssize_t(*)(int, void *, size_t, off_t))dlsym(RTLD_NEXT,
								   "pread64");
	if (faulty(fd, len, off)) {
		errno = EIO;
		return -1;
	}
	return real(fd, buf, len, off);
}

ssize_t pread(int fd, void *buf, size_t len, off_t off)
{
	return pread64(fd, buf, len, off);
}
