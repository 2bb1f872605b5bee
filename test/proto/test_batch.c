/* SEND_BATCH_MESSAGE bodies (message.md §5): the captured 4.9.8 batch, round trips, and
 * bounded iteration over bad input. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "proto/proto.h"
#include "../testdata.h"

static uint8_t *read_frame(const char *name, size_t *len) {
    char *rel = cm_sprintf("rocketmq-4.9.8/frames/%s", name);
    uint8_t *d = td_read(rel, len);
    cm_free(rel);
    return d;
}

Test(batch, golden_send_batch_body) {
    size_t len;
    uint8_t *f = read_frame("broker-req-320-c2s-1.bin", &len);
    size_t hdr = cm_rd32(f + 4) & 0xFFFFFF;
    const uint8_t *body = f + 8 + hdr;
    size_t blen = len - 8 - hdr, pos = 0, prev = 0, n = 0, n116 = 0;
    proto_batch_item_t it;
    cm_buf_t again = CM_BUF_INIT;
    rmq_err_t err;
    while ((err = proto_batch_next(body, blen, &pos, &it)) == RMQ_OK) {
        char want[16];
        snprintf(want, sizeof want, "b%zu", n);
        cr_assert_eq((size_t)it.body_len, strlen(want));
        cr_assert_eq(memcmp(it.body, want, strlen(want)), 0);
        cr_assert_eq(it.flag, 0);
        proto_props_t p;
        cr_assert_eq(proto_props_parse(it.props, (size_t)it.props_len, &p), RMQ_OK);
        char key[16];
        snprintf(key, sizeof key, "k-b%zu", n);
        cr_assert_str_eq(proto_props_get(&p, PROP_KEYS), key);
        cr_assert_str_eq(proto_props_get(&p, PROP_TAGS), "A");
        cr_assert_str_eq(proto_props_get(&p, PROP_WAIT), "true");
        cr_assert_eq(strlen(proto_props_get(&p, PROP_UNIQ_KEY)), 56);
        proto_props_free(&p);
        proto_batch_encode_item(&again, it.flag, it.body, (size_t)it.body_len, it.props,
                                (size_t)it.props_len);
        if (pos - prev == 116) n116++;
        prev = pos;
        n++;
    }
    cr_assert_eq(err, RMQ_ERR_NOT_FOUND);
    cr_assert_eq(pos, blen);
    /* 50 messages: b0..b9 take 116 bytes, b10..b49 two more (longer body and key). */
    cr_assert_eq(n, 50);
    cr_assert_eq(n116, 10);
    cr_assert_eq(blen, 10 * 116 + 40 * 118);
    cr_assert_eq(again.len, blen);
    cr_assert_eq(memcmp(again.data, body, blen), 0, "re-encoding differs from the Java client");
    cm_buf_free(&again);
    cm_free(f);
}

Test(batch, round_trip_and_empty_parts) {
    cm_buf_t b = CM_BUF_INIT;
    proto_batch_encode_item(&b, 5, "abc", 3, "TAGS\x01x", 6);
    proto_batch_encode_item(&b, -1, NULL, 0, NULL, 0);
    cr_assert_eq(b.len, (22 + 3 + 6) + 22);
    cr_assert_eq(cm_rd32(b.data), 31);
    cr_assert_eq(cm_rd32(b.data + 4), 0);
    cr_assert_eq(cm_rd32(b.data + 8), 0);
    size_t pos = 0;
    proto_batch_item_t it;
    cr_assert_eq(proto_batch_next(b.data, b.len, &pos, &it), RMQ_OK);
    cr_assert_eq(it.flag, 5);
    cr_assert_eq(it.body_len, 3);
    cr_assert_eq(memcmp(it.body, "abc", 3), 0);
    cr_assert_eq(it.props_len, 6);
    cr_assert_eq(proto_batch_next(b.data, b.len, &pos, &it), RMQ_OK);
    cr_assert_eq(it.flag, -1);
    cr_assert_eq(it.body_len, 0);
    cr_assert_eq(it.props_len, 0);
    cr_assert_eq(proto_batch_next(b.data, b.len, &pos, &it), RMQ_ERR_NOT_FOUND);
    cr_assert_eq(pos, b.len);
    pos = 0;
    cr_assert_eq(proto_batch_next(b.data, 0, &pos, &it), RMQ_ERR_NOT_FOUND);
    cm_buf_free(&b);
}

static rmq_err_t next_patched(const cm_buf_t *b, size_t off, int width, uint32_t v, size_t len) {
    uint8_t *c = malloc(len);
    memcpy(c, b->data, len);
    if (width == 4) cm_wr32(c + off, v);
    if (width == 2) cm_wr16(c + off, (uint16_t)v);
    size_t pos = 0;
    proto_batch_item_t it;
    rmq_err_t err = proto_batch_next(c, len, &pos, &it);
    cr_assert(err == RMQ_OK || pos == 0, "pos moves only on success");
    free(c);
    return err;
}

Test(batch, truncated_and_lying) {
    cm_buf_t b = CM_BUF_INIT;
    proto_batch_encode_item(&b, 0, "hello", 5, "K\x01v", 3);
    size_t n = b.len; /* 30 */
    for (size_t cut = 1; cut < n; cut++)
        cr_assert_eq(next_patched(&b, 0, 0, 0, cut), RMQ_ERR_TRUNCATED, "cut %zu", cut);
    cr_assert_eq(next_patched(&b, 0, 4, 0, n), RMQ_ERR_MALFORMED);               /* total 0 */
    cr_assert_eq(next_patched(&b, 0, 4, 21, n), RMQ_ERR_MALFORMED);              /* < fixed */
    cr_assert_eq(next_patched(&b, 0, 4, 0xFFFFFFFF, n), RMQ_ERR_MALFORMED);      /* negative */
    cr_assert_eq(next_patched(&b, 0, 4, (uint32_t)n - 1, n), RMQ_ERR_MALFORMED); /* short */
    cr_assert_eq(next_patched(&b, 0, 4, (uint32_t)n + 1, n), RMQ_ERR_TRUNCATED);
    cr_assert_eq(next_patched(&b, 16, 4, 6, n), RMQ_ERR_MALFORMED); /* body_len lies */
    cr_assert_eq(next_patched(&b, 16, 4, 9, n), RMQ_ERR_MALFORMED); /* past the total */
    cr_assert_eq(next_patched(&b, 16, 4, 0x80000000u, n), RMQ_ERR_MALFORMED);
    cr_assert_eq(next_patched(&b, 25, 2, 4, n), RMQ_ERR_MALFORMED); /* props_len lies */
    cr_assert_eq(next_patched(&b, 25, 2, 0xFFFF, n), RMQ_ERR_MALFORMED);
    cr_assert_eq(next_patched(&b, 25, 2, 3, n), RMQ_OK); /* the patcher is honest */
    cm_buf_free(&b);
}
