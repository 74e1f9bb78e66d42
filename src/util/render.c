/* render.c: placeholder */
