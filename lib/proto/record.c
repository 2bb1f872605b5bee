/* lib/proto/record.c: being written. */
