/*
 * secmem.c: page-granular memory for secrets (see secmem.h).  Each
 * allocation is an anonymous mapping of its own, so locking it and
 * excluding it from core dumps affects nothing else, and unmapping it
 * returns the pages only after they have been wiped.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/secmem.h"

static size_t round_to_pages(size_t n)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t p = page > 0 ? (size_t)page : 4096;

	if (n > (size_t)-1 - p)
		return 0;
	return (n + p - 1) / p * p;
}

void *secmem_alloc(size_t n)
{
	size_t len = round_to_pages(n ? n : 1);
	void *p;

	if (!len)
		return NULL;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* Both are protections, not requirements: failure is tolerated. */
	(void)mlock(p, len);
#ifdef MADV_DONTDUMP
	(void)madvise(p, len, MADV_DONTDUMP);
#endif
	return p;
}

void secmem_free(void *p, size_t n)
{
	size_t len = round_to_pages(n ? n : 1);

	if (!p)
		return;
	secmem_wipe(p, len);
	(void)munlock(p, len);
	munmap(p, len);
}

void secmem_wipe(void *p, size_t n)
{
	if (p && n)
		explicit_bzero(p, n);
}
