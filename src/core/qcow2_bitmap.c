/* qcow2_bitmap.c: placeholder until implemented. */
