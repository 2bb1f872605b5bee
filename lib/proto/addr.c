/* lib/proto/addr.c: being written. */
