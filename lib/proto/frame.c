/* lib/proto/frame.c: being written. */
