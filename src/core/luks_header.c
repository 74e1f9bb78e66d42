/* luks_header.c: placeholder until implemented. */
