/* lib/proto/compress.c: being written. */
