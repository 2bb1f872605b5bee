/* Golden data for the tests: files under test/data (meson passes its path as TEST_DATA).
 * Header-only, for Criterion test programs; every buffer is the caller's to cm_free(). */
#ifndef RMQ_TEST_TESTDATA_H
#define RMQ_TEST_TESTDATA_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "proto/proto.h"

/* TEST_DATA/<rel>. */
static inline char *td_path(const char *rel) {
    const char *data = getenv("TEST_DATA");
    cr_assert_not_null(data, "TEST_DATA not set");
    return cm_sprintf("%s/%s", data, rel);
}

/* A whole file in an exactly-sized buffer (ASan sees any read past it). */
static inline uint8_t *td_read_path(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    cr_assert_geq(n, 0);
    rewind(f);
    uint8_t *b = cm_malloc(n ? (size_t)n : 1);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* TEST_DATA/<rel>, read whole. */
static inline uint8_t *td_read(const char *rel, size_t *len) {
    char *path = td_path(rel);
    uint8_t *b = td_read_path(path, len);
    cm_free(path);
    return b;
}

/* Decodes the frame in TEST_DATA/<dir>/<file> into cmd. */
static inline void td_frame(const char *dir, const char *file, proto_cmd_t *cmd) {
    char *rel = cm_sprintf("%s/%s", dir, file);
    size_t len;
    uint8_t *b = td_read(rel, &len);
    proto_cmd_init(cmd);
    cr_assert_eq(proto_frame_decode(b, len, PROTO_MAX_FRAME, cmd), RMQ_OK, "%s", rel);
    cm_free(b);
    cm_free(rel);
}

/* A new directory /tmp/<prefix>-XXXXXX for a test's files. */
static inline char *td_tempdir(const char *prefix) {
    char *tmpl = cm_sprintf("/tmp/%s-XXXXXX", prefix);
    cr_assert_not_null(mkdtemp(tmpl), "mkdtemp %s", tmpl);
    return tmpl;
}

/* Removes dir and everything under it. */
static inline void td_rmrf(const char *dir) {
    char *cmd = cm_sprintf("rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
    cm_free(cmd);
}

#endif
