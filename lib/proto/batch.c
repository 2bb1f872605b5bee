/* lib/proto/batch.c: being written. */
