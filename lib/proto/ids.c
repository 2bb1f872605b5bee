/* lib/proto/ids.c: being written. */
