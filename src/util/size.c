/*
 * size.c: parse and print sizes the way qemu-img does (see size.h).
 * Integer and fraction are parsed separately so that whole numbers up to
 * 2^63-1 stay exact instead of passing through a double.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/size.h"

static int unit_shift(char c)
{
	switch (tolower((unsigned char)c)) {
	case 'b': return 0;
	case 'k': return 10;
	case 'm': return 20;
	case 'g': return 30;
	case 't': return 40;
	case 'p': return 50;
	case 'e': return 60;
	}
	return -1;
}

/* Parse s, refusing values above max (-ERANGE). */
static int parse_max(const char *s, uint64_t *out, int *hex_suffix,
		     uint64_t max)
{
	uint64_t whole = 0;
	double frac = 0;
	int have_frac = 0, hex = 0, digits = 0, shift = 0;
	const char *p = s;

	if (hex_suffix)
		*hex_suffix = 0;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '+')
		p++;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		hex = 1;
		p += 2;
		for (; isxdigit((unsigned char)*p); p++, digits++) {
			int d = isdigit((unsigned char)*p)
					? *p - '0'
					: tolower((unsigned char)*p) - 'a' + 10;
			if (whole > (UINT64_MAX >> 4))
				return -ERANGE;
			whole = whole * 16 + (uint64_t)d;
		}
	} else {
		for (; isdigit((unsigned char)*p); p++, digits++) {
			uint64_t d = (uint64_t)(*p - '0');
			if (whole > (UINT64_MAX - d) / 10)
				return -ERANGE;
			whole = whole * 10 + d;
		}
		if (*p == '.' && digits > 0) {
			double scale = 0.1;
			p++;
			for (; isdigit((unsigned char)*p); p++) {
				if (*p != '0')
					have_frac = 1;
				frac += (*p - '0') * scale;
				scale /= 10;
			}
		}
	}
	if (digits == 0)
		return -EINVAL;
	if (*p) {
		shift = unit_shift(*p);
		if (shift < 0 || p[1] != '\0')
			return -EINVAL;
		if (hex && hex_suffix)
			*hex_suffix = 1;
	}
	/* A fraction needs a unit bigger than a byte, as in qemu. */
	if (have_frac && shift == 0)
		return -EINVAL;
	if (shift > 0 && whole > (UINT64_MAX >> shift))
		return -ERANGE;
	whole <<= shift;
	if (have_frac) {
		double extra = frac * (double)(1ULL << shift);
		if ((double)whole + extra >= (double)max + 1.0)
			return -ERANGE;
		whole += (uint64_t)extra;
	}
	if (whole > max)
		return -ERANGE;
	*out = whole;
	return 0;
}

int size_parse(const char *s, uint64_t *out, int *hex_suffix)
{
	return parse_max(s, out, hex_suffix, (uint64_t)INT64_MAX);
}

int size_parse_u64(const char *s, uint64_t *out)
{
	return parse_max(s, out, NULL, UINT64_MAX);
}

void size_human(char *buf, size_t len, uint64_t v)
{
	static const char *const units[] = { "B",   "KiB", "MiB", "GiB",
					     "TiB", "PiB", "EiB" };
	double d = (double)v;
	int i = 0;

	/* Pick the unit that keeps the number below 1000 (qemu's rule). */
	while (d >= 1000.0 && i < 6) {
		d /= 1024.0;
		i++;
	}
	snprintf(buf, len, "%0.3g %s", d, units[i]);
}
