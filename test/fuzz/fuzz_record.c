/* libFuzzer target: message records read back to back, as a consumer reads a pull body. Every
 * record that decodes must become a message (or fail cleanly) and must survive
 * encode -> decode unchanged; v1 records must re-encode to their exact bytes. The same input
 * is also walked as a SEND_BATCH_MESSAGE body.
 *   CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false
 *   ninja -C build-fuzz test/fuzz/fuzz_record
 *   build-fuzz/test/fuzz/fuzz_record -max_total_time=60 <copy of test/fuzz/corpus/record> */
#include <stdio.h>
#include <stdlib.h>

#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_record: check failed: %s (line %d)\n", #cond, __LINE__);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_BODY (1024 * 1024) /* inflated bodies: enough to reach the bound, cheap enough */

static bool same_bytes(const void *a, const void *b, int32_t n) {
    return n == 0 || memcmp(a, b, (size_t)n) == 0;
}

static void check_same(const proto_record_t *a, const proto_record_t *b) {
    CHECK(a->queue_id == b->queue_id && a->flag == b->flag);
    CHECK(a->queue_offset == b->queue_offset && a->physical_offset == b->physical_offset);
    CHECK(a->sys_flag == b->sys_flag && a->reconsume_times == b->reconsume_times);
    CHECK(a->born_timestamp == b->born_timestamp && a->store_timestamp == b->store_timestamp);
    CHECK(memcmp(&a->born_host, &b->born_host, sizeof a->born_host) == 0);
    CHECK(memcmp(&a->store_host, &b->store_host, sizeof a->store_host) == 0);
    CHECK(a->prepared_tx_offset == b->prepared_tx_offset);
    CHECK(a->body_len == b->body_len && same_bytes(a->body, b->body, a->body_len));
    CHECK(a->topic_len == b->topic_len && same_bytes(a->topic, b->topic, a->topic_len));
    CHECK(a->props_len == b->props_len && same_bytes(a->props, b->props, a->props_len));
}

static void check_record(const proto_record_t *rec, const uint8_t *raw) {
    cm_buf_t b = CM_BUF_INIT;
    CHECK(proto_record_encode(rec, &b) == RMQ_OK);
    CHECK(b.len == proto_record_size(rec->sys_flag, (size_t)rec->body_len,
                                     (size_t)rec->topic_len, (size_t)rec->props_len));
    proto_record_t again;
    CHECK(proto_record_decode(b.data, b.len, true, &again) == RMQ_OK);
    check_same(rec, &again);
    /* Only a v2 record with a short topic changes form (to v1); the rest is byte-exact
     * except the CRC, which the encoder computes. */
    if (rec->magic == PROTO_MAGIC_V1 || rec->topic_len > 127) {
        CHECK(b.len == (size_t)rec->total_size);
        CHECK(memcmp(b.data, raw, 8) == 0 && memcmp(b.data + 12, raw + 12, b.len - 12) == 0);
    }
    cm_buf_free(&b);

    rmq_msg_t *m = NULL;
    rmq_err_t err = proto_msg_from_record(rec, MAX_BODY, &m);
    CHECK((err == RMQ_OK) == (m != NULL));
    if (m) {
        CHECK(m->offset_id != NULL);
        proto_addr_t host;
        int64_t off;
        CHECK(proto_offset_id_parse(m->offset_id, &host, &off) == RMQ_OK);
        CHECK(off == rec->physical_offset && host.port == rec->store_host.port);
        CHECK(m->body_len <= MAX_BODY || !(rec->sys_flag & SYSFLAG_COMPRESSED));
        rmq_msg_destroy(m);
    }
}

static void walk_records(const uint8_t *data, size_t size) {
    size_t pos = 0;
    while (pos < size) {
        proto_record_t rec;
        rmq_err_t err = proto_record_decode(data + pos, size - pos, false, &rec);
        if (err != RMQ_OK) return;
        if (rec.magic == PROTO_MAGIC_BLANK) {
            CHECK(rec.total_size >= 8);
        } else {
            check_record(&rec, data + pos);
            /* A record that decodes without the CRC check fails with it only on the CRC. */
            proto_record_t crc_checked;
            err = proto_record_decode(data + pos, size - pos, true, &crc_checked);
            CHECK(err == RMQ_OK || err == RMQ_ERR_BAD_CRC);
        }
        if ((size_t)rec.total_size > size - pos) return; /* a BLANK filler past the input */
        pos += (size_t)rec.total_size;
    }
}

static void walk_batch(const uint8_t *data, size_t size) {
    size_t pos = 0, prev = 0;
    proto_batch_item_t it;
    while (proto_batch_next(data, size, &pos, &it) == RMQ_OK) {
        CHECK(pos > prev && pos <= size);
        CHECK(it.body_len >= 0 && it.props_len >= 0);
        CHECK(it.body >= data && it.body + it.body_len <= data + pos);
        CHECK((const uint8_t *)it.props + it.props_len == data + pos);
        prev = pos;
    }
    CHECK(pos == prev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    walk_records(data, size);
    walk_batch(data, size);
    return 0;
}
