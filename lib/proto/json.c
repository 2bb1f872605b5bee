/* lib/proto/json.c: being written. */
