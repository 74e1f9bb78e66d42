/* qcow2_snapshot.c: placeholder until implemented. */
