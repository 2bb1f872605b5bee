/* lib/proto/headers.c: being written. */
