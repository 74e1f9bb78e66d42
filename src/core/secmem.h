/*
 * secmem.h: memory for keys and passphrases.
 *
 * Key material (passphrases, LUKS master and slot keys, the decrypted
 * anti-forensic stripes) lives in whole pages of its own that are locked
 * in RAM where the system allows it (so they are not swapped out), left
 * out of core dumps (MADV_DONTDUMP), and wiped before they are unmapped.
 * Locking is best-effort: an unprivileged process with a small
 * RLIMIT_MEMLOCK still works, only without that one protection.
 */
#ifndef QIMG_CORE_SECMEM_H
#define QIMG_CORE_SECMEM_H

#include <stddef.h>

/*
 * Zero-filled secret memory of at least n bytes (n > 0), or NULL when out
 * of memory.  Free with secmem_free(p, n) using the same n.
 */
void *secmem_alloc(size_t n);

/* Wipe and release memory from secmem_alloc(); p may be NULL. */
void secmem_free(void *p, size_t n);

/* Wipe n bytes in a way the compiler cannot drop (explicit_bzero). */
void secmem_wipe(void *p, size_t n);

#endif
