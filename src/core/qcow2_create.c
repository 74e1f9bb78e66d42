/* qcow2_create.c: placeholder until implemented. */
