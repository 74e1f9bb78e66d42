/*
 * size.h: sizes as qemu-img reads and prints them.
 *
 * size_parse() accepts what qemu 7.2's qemu_strtosz accepts: a decimal
 * number with an optional fraction (which then needs a unit), or a hex
 * number (0x...), followed by an optional case-insensitive suffix B, K, M,
 * G, T, P or E (binary multiples).  Results of 2^63 or more are refused.
 * size_human() prints qemu-img's "%0.3g UNIT" form (1 GiB, 196 KiB, 0.977 GiB).
 */
#ifndef QIMG_UTIL_SIZE_H
#define QIMG_UTIL_SIZE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parse s into *out.  Returns 0, -EINVAL when s is malformed (bad suffix,
 * trailing text, a fraction without a unit) or -ERANGE when the value is
 * 2^63 or more.  *hex_suffix is set (when non-NULL) if a hex number carried
 * a unit, which qemu warns is deprecated.
 */
int size_parse(const char *s, uint64_t *out, int *hex_suffix);

/*
 * Like size_parse() but up to 2^64-1, as qemu parses a size given as an
 * option value (resize's size argument): -ERANGE only from 2^64 on.
 */
int size_parse_u64(const char *s, uint64_t *out);

/* qemu-img's human-readable size into buf (at least 32 bytes). */
void size_human(char *buf, size_t len, uint64_t v);

#endif
