/* libFuzzer target: the JSON reader. Any input must parse or fail cleanly; what parses must
 * write back to text that parses again and writes identically (writer is a fixed point).
 *   build-fuzz/test/fuzz/fuzz_json -max_total_time=60 <copy of test/fuzz/corpus/json> */
#include <stdio.h>
#include <stdlib.h>

#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_json: check failed: %s (line %d)\n", #cond, __LINE__);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Walks the tree through the public look-ups so they run on odd shapes too. */
static void walk(const proto_json_t *v, int depth) {
    CHECK(depth <= 64);
    if (v->type == PJ_STRING) CHECK(v->s[v->len] == '\0');
    if (v->type != PJ_ARRAY && v->type != PJ_OBJECT) return;
    for (size_t i = 0; i < v->len; i++) {
        walk(v->items[i], depth + 1);
        if (v->type != PJ_OBJECT) continue;
        walk(v->keys[i], depth + 1);
        if (v->keys[i]->type == PJ_STRING && strlen(v->keys[i]->s) == v->keys[i]->len)
            CHECK(proto_json_get(v, v->keys[i]->s) != NULL);
    }
    (void)proto_json_get_int(v, "code", 0);
    (void)proto_json_get_str(v, "0", NULL);
    (void)proto_json_get_bool(v, "order", false);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    proto_json_t *v, *w;
    if (proto_json_parse((const char *)data, size, &v) != RMQ_OK) {
        CHECK(v == NULL);
        return 0;
    }
    walk(v, 1);
    cm_buf_t a = CM_BUF_INIT, b = CM_BUF_INIT;
    proto_json_write(&a, v);
    CHECK(proto_json_parse((const char *)a.data, a.len, &w) == RMQ_OK);
    proto_json_write(&b, w);
    CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    proto_json_free(w);
    proto_json_free(v);
    cm_buf_free(&a);
    cm_buf_free(&b);
    return 0;
}
