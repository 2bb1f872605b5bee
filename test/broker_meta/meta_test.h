/* Helpers shared by the broker_meta tests: captured Java frames and JSON comparison. */
#ifndef RMQ_TEST_META_H
#define RMQ_TEST_META_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "proto/proto.h"
#include "../testdata.h"

/* Decodes test/data/rocketmq-4.9.8/frames/<file>. */
static inline void meta_frame(const char *file, proto_cmd_t *cmd) {
    td_frame("rocketmq-4.9.8/frames", file, cmd);
}

static inline proto_json_t *meta_parse(const void *text, size_t len) {
    proto_json_t *v = NULL;
    cr_assert_eq(proto_json_parse(text, len, &v), RMQ_OK, "bad JSON: %.*s", (int)len,
                 (const char *)text);
    return v;
}

static inline bool meta_key_eq(const proto_json_t *a, const proto_json_t *b) {
    cm_buf_t x = CM_BUF_INIT, y = CM_BUF_INIT;
    proto_json_write(&x, a);
    proto_json_write(&y, b);
    bool eq = x.len == y.len && memcmp(x.data, y.data, x.len) == 0;
    /* "0" and 0 are the same broker id written two ways */
    if (!eq && a->type != b->type) {
        const proto_json_t *s = a->type == PJ_STRING ? a : b, *n = a->type == PJ_STRING ? b : a;
        eq = s->type == PJ_STRING && n->type == PJ_NUMBER && strtoll(s->s, NULL, 10) == n->i;
    }
    cm_buf_free(&x);
    cm_buf_free(&y);
    return eq;
}

/* Structural equality: same members in any order, arrays in order. */
static inline bool meta_json_eq(const proto_json_t *a, const proto_json_t *b) {
    if (!a || !b) return a == b;
    if (a->type != b->type) return false;
    switch (a->type) {
    case PJ_NULL:
        return true;
    case PJ_BOOL:
        return a->b == b->b;
    case PJ_NUMBER:
        return a->i == b->i && a->d == b->d;
    case PJ_STRING:
        return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
    case PJ_ARRAY:
        if (a->len != b->len) return false;
        for (size_t i = 0; i < a->len; i++)
            if (!meta_json_eq(a->items[i], b->items[i])) return false;
        return true;
    case PJ_OBJECT:
        if (a->len != b->len) return false;
        for (size_t i = 0; i < a->len; i++) {
            bool found = false;
            for (size_t j = 0; j < b->len && !found; j++)
                found =
                    meta_key_eq(a->keys[i], b->keys[j]) && meta_json_eq(a->items[i], b->items[j]);
            if (!found) return false;
        }
        return true;
    }
    return false;
}

#endif
