/* libFuzzer target: remoting frame decoding. Any input must decode or fail cleanly; a frame
 * that decodes must survive encode -> decode unchanged in its own header form and in
 * ROCKETMQ binary (when its values fit the binary widths).
 *   CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false
 *   ninja -C build-fuzz test/fuzz/fuzz_frame
 *   build-fuzz/test/fuzz/fuzz_frame -max_total_time=60 <copy of test/fuzz/corpus/frame> */
#include <stdio.h>
#include <stdlib.h>

#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_frame: check failed: %s (line %d)\n", #cond, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static bool same_text(const char *a, const char *b, bool empty_is_null) {
    if (empty_is_null) {
        a = a && *a ? a : NULL;
        b = b && *b ? b : NULL;
    }
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

static void compare(const proto_cmd_t *a, const proto_cmd_t *b) {
    bool binary = b->serialize == PROTO_SER_ROCKETMQ;
    CHECK(a->code == b->code);
    CHECK(a->language == b->language);
    CHECK(a->version == b->version);
    CHECK(a->opaque == b->opaque);
    CHECK(a->flag == b->flag);
    /* Binary writes an empty remark and no remark alike (length 0). */
    CHECK(same_text(a->remark, b->remark, binary));
    CHECK(a->ext.count == b->ext.count);
    for (size_t i = 0; i < a->ext.count; i++) {
        CHECK(strcmp(a->ext.keys[i], b->ext.keys[i]) == 0);
        CHECK(strcmp(a->ext.vals[i], b->ext.vals[i]) == 0);
    }
    CHECK(b->has_ext == (binary ? a->ext.count > 0 : a->has_ext));
    CHECK(a->body_len == b->body_len);
    CHECK(a->body_len == 0 || memcmp(a->body, b->body, a->body_len) == 0);
}

/* Encodes cmd as ser; the result must decode to the same command. */
static void round_trip(const proto_cmd_t *cmd, uint8_t ser) {
    proto_cmd_t c = *cmd, back;
    cm_buf_t out = CM_BUF_INIT;
    c.serialize = ser;
    rmq_err_t err = proto_frame_encode(&c, &out);
    if (err != RMQ_OK) {
        /* Only values that do not fit binary's int16 / byte fields may be refused. */
        CHECK(ser == PROTO_SER_ROCKETMQ && err == RMQ_ERR_UNSUPPORTED);
        CHECK(out.len == 0);
        cm_buf_free(&out);
        return;
    }
    size_t size;
    CHECK(proto_frame_size(out.data, out.len, 0, &size) == RMQ_OK && size == out.len);
    CHECK(proto_frame_decode(out.data, out.len, 0, &back) == RMQ_OK);
    CHECK(back.serialize == ser);
    compare(cmd, &back);
    /* Encoding is a fixed point: the decoded copy encodes to the same bytes. */
    cm_buf_t again = CM_BUF_INIT;
    CHECK(proto_frame_encode(&back, &again) == RMQ_OK);
    CHECK(again.len == out.len && memcmp(again.data, out.data, out.len) == 0);
    cm_buf_free(&again);
    proto_cmd_free(&back);
    cm_buf_free(&out);
}

static void decode_and_check(const uint8_t *data, size_t size) {
    proto_cmd_t cmd;
    rmq_err_t err = proto_frame_decode(data, size, 0, &cmd);
    if (err != RMQ_OK) {
        CHECK(err == RMQ_ERR_TRUNCATED || err == RMQ_ERR_MALFORMED ||
              err == RMQ_ERR_FRAME_TOO_LARGE || err == RMQ_ERR_BAD_JSON ||
              err == RMQ_ERR_UNSUPPORTED);
        CHECK(cmd.remark == NULL && cmd.ext.count == 0 && cmd.body == NULL);
        return;
    }
    round_trip(&cmd, cmd.serialize);
    round_trip(&cmd, cmd.serialize == PROTO_SER_JSON ? PROTO_SER_ROCKETMQ : PROTO_SER_JSON);
    proto_cmd_free(&cmd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    decode_and_check(data, size);
    /* Also the frame the length field announces when more bytes follow it, as a connection
     * reader would cut it. */
    size_t frame;
    if (proto_frame_size(data, size, 0, &frame) == RMQ_OK && frame < size)
        decode_and_check(data, frame);
    return 0;
}
