/* qcow2_header.c: placeholder until implemented. */
