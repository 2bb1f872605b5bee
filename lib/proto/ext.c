/* lib/proto/ext.c: being written. */
