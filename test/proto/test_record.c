/* Message records (message.md §1): the layout, the size formula, decoding every record of a
 * real RocketMQ 4.9.8 commit log and pull response, byte-exact re-encoding, and every kind of
 * malformed input. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "proto/proto.h"

#define COMMITLOG_END 113619 /* README of the golden store: records end here, zeros after */

/* ---- golden data helpers */

static uint8_t *read_all(FILE *f, size_t *len) {
    cm_buf_t b = CM_BUF_INIT;
    uint8_t chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        cm_buf_append(&b, chunk, n);
    *len = b.len;
    return b.data;
}

static uint8_t *read_data(const char *rel, size_t *len) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", getenv("TEST_DATA"), rel);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    uint8_t *d = read_all(f, len);
    fclose(f);
    return d;
}

/* One file of the golden store, extracted straight from the tarball. */
static uint8_t *store_file(const char *member, size_t *len) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "tar xzf '%s/rocketmq-4.9.8/store.tar.gz' -O '%s'",
             getenv("TEST_DATA"), member);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    uint8_t *d = read_all(p, len);
    cr_assert_eq(pclose(p), 0, "tar failed for %s", member);
    return d;
}

/* The body of a captured frame, by the raw layout: length, header word, header, body. */
static const uint8_t *frame_body(const uint8_t *frame, size_t len, size_t *body_len) {
    cr_assert_geq(len, 8);
    size_t total = cm_rd32(frame), hdr = cm_rd32(frame + 4) & 0xFFFFFF;
    cr_assert_eq(total + 4, len);
    cr_assert_leq(hdr + 4, total);
    *body_len = total - 4 - hdr;
    return frame + 8 + hdr;
}

static bool prop_is(const proto_record_t *r, const char *name, const char *want) {
    const char *v;
    size_t vl;
    if (!proto_props_find(r->props, (size_t)r->props_len, name, &v, &vl)) return false;
    return vl == strlen(want) && memcmp(v, want, vl) == 0;
}

static bool topic_is(const proto_record_t *r, const char *t) {
    return (size_t)r->topic_len == strlen(t) && memcmp(r->topic, t, strlen(t)) == 0;
}

static size_t count_name(const proto_record_t *r, const char *name) {
    size_t n = 0, nl = strlen(name);
    for (int32_t i = 0; i + (int32_t)nl < r->props_len; i++)
        if ((i == 0 || r->props[i - 1] == PROTO_PROP_SEP) && memcmp(r->props + i, name, nl) == 0 &&
            r->props[i + nl] == PROTO_NAME_SEP)
            n++;
    return n;
}

static void assert_reencodes(const proto_record_t *r, const uint8_t *orig) {
    cm_buf_t b = CM_BUF_INIT;
    cr_assert_eq(proto_record_encode(r, &b), RMQ_OK);
    cr_assert_eq(b.len, (size_t)r->total_size);
    cr_assert_eq(memcmp(b.data, orig, b.len), 0, "re-encoding differs");
    cm_buf_free(&b);
}

/* ---- layout and size */

Test(record, size_formula_and_offsets) {
    cr_assert_eq(proto_record_size(0, 2, 13, 105), 211); /* message.md §1 worked check */
    cr_assert_eq(proto_record_size(0, 0, 0, 0), 91);
    cr_assert_eq(proto_record_size(SYSFLAG_BORNHOST_V6, 0, 0, 0), 103);
    cr_assert_eq(proto_record_size(SYSFLAG_STOREHOST_V6 | SYSFLAG_BORNHOST_V6, 0, 0, 0), 115);
    cr_assert_eq(proto_record_size(0, 0, 127, 0), 91 + 127);
    cr_assert_eq(proto_record_size(0, 0, 128, 0), 92 + 128); /* v2: int16 topic length */
    cr_assert_eq(proto_record_store_ts_off(0), 56);
    cr_assert_eq(proto_record_store_ts_off(SYSFLAG_BORNHOST_V6), 68);
    cr_assert_eq(proto_record_store_ts_off(SYSFLAG_STOREHOST_V6), 56);
}

Test(record, body_crc_is_zlib_crc32_masked) {
    cr_assert_eq(proto_body_crc("123456789", 9), 0x4BF43926); /* 0xCBF43926 & 0x7FFFFFFF */
    cr_assert_eq(proto_body_crc("", 0), 0);
    cr_assert_eq(proto_body_crc(NULL, 0), 0);
}

/* ---- the golden commit log */

typedef struct tq_count {
    char topic[64];
    int32_t queue;
    size_t n;
} tq_count_t;

static void count_tq(tq_count_t *c, size_t *nc, const proto_record_t *r) {
    for (size_t i = 0; i < *nc; i++)
        if (topic_is(r, c[i].topic) && c[i].queue == r->queue_id) {
            c[i].n++;
            return;
        }
    cr_assert_lt(*nc, 64);
    cr_assert_lt(r->topic_len, 64);
    memcpy(c[*nc].topic, r->topic, (size_t)r->topic_len);
    c[*nc].topic[r->topic_len] = '\0';
    c[*nc].queue = r->queue_id;
    c[*nc].n = 1;
    (*nc)++;
}

/* Entries before the first all-zero one; each must point at a record of that queue. */
static size_t check_cq(const char *topic, int32_t queue, const uint8_t *log, size_t log_len) {
    char member[256];
    snprintf(member, sizeof member, "store/consumequeue/%.63s/%d/00000000000000000000", topic,
             queue);
    size_t len, n = 0;
    uint8_t *cq = store_file(member, &len);
    static const uint8_t zero[20];
    for (; (n + 1) * 20 <= len && memcmp(cq + n * 20, zero, 20) != 0; n++) {
        int64_t off = (int64_t)cm_rd64(cq + n * 20);
        int32_t size = (int32_t)cm_rd32(cq + n * 20 + 8);
        cr_assert(off >= 0 && (size_t)off < log_len);
        proto_record_t r;
        cr_assert_eq(proto_record_decode(log + off, log_len - (size_t)off, true, &r), RMQ_OK);
        cr_assert_eq(r.total_size, size);
        cr_assert(topic_is(&r, topic));
        cr_assert_eq(r.queue_id, queue);
        cr_assert_eq(r.queue_offset, (int64_t)n);
    }
    free(cq);
    return n;
}

Test(record, golden_commitlog_every_record) {
    size_t len;
    uint8_t *log = store_file("store/commitlog/00000000000000000000", &len);
    cr_assert_eq(len, 1048576);
    tq_count_t counts[64];
    size_t ncounts = 0, pos = 0, nrec = 0, batch_wait_twice = 0, sched = 0, committed = 0;
    bool seen_tags_a = false, seen_key = false;
    while (pos < len && cm_rd32(log + pos) != 0) {
        proto_record_t r;
        cr_assert_eq(proto_record_decode(log + pos, len - pos, true, &r), RMQ_OK, "at %zu", pos);
        cr_assert_eq(r.magic, PROTO_MAGIC_V1);
        cr_assert_eq(r.physical_offset, (int64_t)pos);
        cr_assert_eq(r.born_host.ip_len, 4);
        cr_assert_eq(r.store_host.ip_len, 4);
        cr_assert_eq(r.store_host.port, 10911);
        cr_assert_eq(memcmp(r.store_host.ip, "\x7f\0\0\x01", 4), 0);
        cr_assert_geq(r.store_timestamp, r.born_timestamp);
        /* The broker adds CLUSTER to every message but its own transaction op records. */
        if (!topic_is(&r, "RMQ_SYS_TRANS_OP_HALF_TOPIC"))
            cr_assert(prop_is(&r, PROP_CLUSTER, "DefaultCluster"));
        assert_reencodes(&r, log + pos);
        count_tq(counts, &ncounts, &r);
        if (topic_is(&r, "IopTopic29930") && prop_is(&r, PROP_TAGS, "A")) seen_tags_a = true;
        if (pos == 0) {
            cr_assert(topic_is(&r, "IopTopic29930"));
            cr_assert_eq(r.total_size, 211);
            cr_assert_eq(r.body_len, 2);
            cr_assert_eq(memcmp(r.body, "s0", 2), 0);
            cr_assert(prop_is(&r, PROP_KEYS, "k-s0"));
            seen_key = true;
        }
        if (count_name(&r, PROP_WAIT) == 2) {
            /* Batch-stored: the header's WAIT appended after each message's own. */
            cr_assert(topic_is(&r, "IopTopic29930"));
            const char *v;
            size_t vl;
            cr_assert(proto_props_find(r.props, (size_t)r.props_len, PROP_WAIT, &v, &vl));
            cr_assert_eq(v + vl, r.props + r.props_len, "last WAIT is the appended one");
            batch_wait_twice++;
        }
        if (topic_is(&r, "SCHEDULE_TOPIC_XXXX")) {
            cr_assert(prop_is(&r, PROP_REAL_TOPIC, "IopDelay29930") ||
                      prop_is(&r, PROP_REAL_TOPIC, "%RETRY%irg29930"));
            cr_assert(proto_props_find(r.props, (size_t)r.props_len, PROP_REAL_QID,
                                       &(const char *){0}, &(size_t){0}));
            sched++;
        }
        if ((r.sys_flag & SYSFLAG_TX_MASK) == SYSFLAG_TX_COMMIT) {
            cr_assert(topic_is(&r, "IopTx29930"));
            cr_assert(prop_is(&r, PROP_TRAN_MSG, "true"));
            committed++;
        }
        cr_assert_eq(r.sys_flag & SYSFLAG_COMPRESSED, 0); /* none in this capture */
        pos += (size_t)r.total_size;
        nrec++;
    }
    cr_assert_eq(pos, COMMITLOG_END);
    cr_assert_eq(nrec, 514);
    cr_assert_eq(batch_wait_twice, 50);
    cr_assert_eq(sched, 15);
    cr_assert_eq(committed, 6);
    cr_assert(seen_tags_a && seen_key);
    /* The rest of the segment is zeros: not a record. */
    proto_record_t r;
    cr_assert_eq(proto_record_decode(log + pos, len - pos, true, &r), RMQ_ERR_BAD_MAGIC);

    /* Every topic/queue the log holds has exactly that many consume-queue entries. */
    cr_assert_eq(ncounts, 23);
    for (size_t i = 0; i < ncounts; i++)
        cr_assert_eq(check_cq(counts[i].topic, counts[i].queue, log, len), counts[i].n, "%s/%d",
                     counts[i].topic, counts[i].queue);
    free(log);
}

/* ---- captured frames */

static size_t walk_records(const uint8_t *body, size_t len, const char *topic) {
    size_t pos = 0, n = 0;
    while (pos < len) {
        proto_record_t r;
        cr_assert_eq(proto_record_decode(body + pos, len - pos, true, &r), RMQ_OK);
        cr_assert(topic_is(&r, topic));
        assert_reencodes(&r, body + pos);
        pos += (size_t)r.total_size;
        n++;
    }
    cr_assert_eq(pos, len);
    return n;
}

Test(record, golden_pull_bodies) {
    for (int i = 1; i <= 2; i++) {
        char name[128];
        snprintf(name, sizeof name, "rocketmq-4.9.8/frames/broker-resp-11-code0-%d.bin", i);
        size_t len, blen;
        uint8_t *f = read_data(name, &len);
        const uint8_t *body = frame_body(f, len, &blen);
        cr_assert_gt(blen, 0);
        cr_assert_geq(walk_records(body, blen, "IopTopic29930"), 1);
        free(f);
    }
}

Test(record, golden_check_transaction_state_body) {
    size_t len, blen;
    uint8_t *f = read_data("rocketmq-4.9.8/frames/broker-req-39-s2c-1.bin", &len);
    const uint8_t *body = frame_body(f, len, &blen);
    proto_record_t r;
    cr_assert_eq(proto_record_decode(body, blen, true, &r), RMQ_OK);
    cr_assert_eq((size_t)r.total_size, blen);
    /* message.md §8: topic is the real one, properties carry the check-back state. */
    cr_assert(topic_is(&r, "IopTx29930"));
    cr_assert(prop_is(&r, PROP_TRAN_MSG, "true"));
    cr_assert(prop_is(&r, PROP_TRANSACTION_CHECK_TIMES, "1"));
    cr_assert(prop_is(&r, PROP_PGROUP, "itx29930"));
    assert_reencodes(&r, body);
    free(f);
}

/* ---- hand-made records */

static proto_record_t sample(void) {
    proto_record_t r = {0};
    r.queue_id = 3;
    r.flag = 7;
    r.queue_offset = 42;
    r.physical_offset = 4096;
    r.born_timestamp = 1764000000000;
    r.born_host = (proto_addr_t){{10, 0, 0, 1}, 4, 50000};
    r.store_timestamp = 1764000000005;
    r.store_host = (proto_addr_t){{127, 0, 0, 1}, 4, 10911};
    r.reconsume_times = 2;
    r.prepared_tx_offset = 99;
    r.body = (const uint8_t *)"hello";
    r.body_len = 5;
    r.topic = "T1";
    r.topic_len = 2;
    r.props = "TAGS\x01"
              "A";
    r.props_len = 6;
    return r;
}

static void encode_ok(const proto_record_t *r, cm_buf_t *b) {
    cm_buf_reset(b);
    cr_assert_eq(proto_record_encode(r, b), RMQ_OK);
}

Test(record, round_trip_v4_v6_and_v2) {
    proto_record_t in = sample(), out;
    cm_buf_t b = CM_BUF_INIT;
    encode_ok(&in, &b);
    cr_assert_eq(b.len, proto_record_size(0, 5, 2, 6));
    cr_assert_eq(proto_record_decode(b.data, b.len, true, &out), RMQ_OK);
    cr_assert_eq(out.total_size, (int32_t)b.len);
    cr_assert_eq(out.body_crc, proto_body_crc("hello", 5));
    cr_assert_eq(out.queue_offset, 42);
    cr_assert_eq(out.physical_offset, 4096);
    cr_assert_eq(out.born_host.port, 50000);
    cr_assert_eq(out.reconsume_times, 2);
    cr_assert_eq(out.prepared_tx_offset, 99);
    cr_assert_eq(memcmp(out.props,
                        "TAGS\x01"
                        "A",
                        6),
                 0);
    /* The store stamps fields at these offsets. */
    cr_assert_eq(cm_rd64(b.data + PROTO_REC_OFF_QUEUEOFFSET), 42);
    cr_assert_eq(cm_rd64(b.data + PROTO_REC_OFF_PHYSICALOFFSET), 4096);
    cr_assert_eq(cm_rd64(b.data + proto_record_store_ts_off(0)), 1764000000005);

    in.sys_flag = SYSFLAG_BORNHOST_V6 | SYSFLAG_STOREHOST_V6;
    in.born_host = (proto_addr_t){{0xfd, 0, [15] = 2}, 16, 1234};
    in.store_host = (proto_addr_t){{[15] = 1}, 16, 10911};
    encode_ok(&in, &b);
    cr_assert_eq(b.len, proto_record_size(in.sys_flag, 5, 2, 6));
    cr_assert_eq(proto_record_decode(b.data, b.len, true, &out), RMQ_OK);
    cr_assert_eq(out.born_host.ip_len, 16);
    cr_assert_eq(out.born_host.ip[0], 0xfd);
    cr_assert_eq(out.store_host.ip[15], 1);
    cr_assert_eq(out.store_host.port, 10911);
    cr_assert_eq(cm_rd64(b.data + proto_record_store_ts_off(in.sys_flag)), 1764000000005);
    assert_reencodes(&out, b.data);

    char topic[200];
    memset(topic, 'x', sizeof topic);
    in.topic = topic;
    in.topic_len = 200;
    encode_ok(&in, &b);
    cr_assert_eq((int32_t)cm_rd32(b.data + 4), PROTO_MAGIC_V2);
    cr_assert_eq(proto_record_decode(b.data, b.len, true, &out), RMQ_OK);
    cr_assert_eq(out.topic_len, 200);
    assert_reencodes(&out, b.data);
    cm_buf_free(&b);
}

Test(record, empty_body_and_appends) {
    proto_record_t in = sample(), out;
    in.body = NULL;
    in.body_len = 0;
    cm_buf_t b = CM_BUF_INIT;
    cm_buf_append(&b, "xy", 2);
    cr_assert_eq(proto_record_encode(&in, &b), RMQ_OK);
    cr_assert_eq(b.len, 2 + proto_record_size(0, 0, 2, 6));
    cr_assert_eq(proto_record_decode(b.data + 2, b.len - 2, true, &out), RMQ_OK);
    cr_assert_eq(out.body_len, 0);
    cr_assert_eq(out.body_crc, 0);
    cm_buf_free(&b);
}

Test(record, encode_refuses_inconsistent_input) {
    proto_record_t in = sample();
    cm_buf_t b = CM_BUF_INIT;
    in.sys_flag = SYSFLAG_BORNHOST_V6; /* born host is 4 bytes */
    cr_assert_eq(proto_record_encode(&in, &b), RMQ_ERR_INVALID_ARG);
    in = sample();
    in.props_len = 40000;
    cr_assert_eq(proto_record_encode(&in, &b), RMQ_ERR_INVALID_ARG);
    in = sample();
    in.body_len = -1;
    cr_assert_eq(proto_record_encode(&in, &b), RMQ_ERR_INVALID_ARG);
    cr_assert_eq(b.len, 0);
}

Test(record, blank_marker) {
    uint8_t blank[8];
    cm_wr32(blank, 1000);
    cm_wr32(blank + 4, (uint32_t)PROTO_MAGIC_BLANK);
    proto_record_t r;
    cr_assert_eq(proto_record_decode(blank, sizeof blank, true, &r), RMQ_OK);
    cr_assert_eq(r.magic, PROTO_MAGIC_BLANK);
    cr_assert_eq(r.total_size, 1000);
    cr_assert_eq(r.body_len, 0);
    cr_assert_null(r.topic);
    cm_wr32(blank, 4);
    cr_assert_eq(proto_record_decode(blank, sizeof blank, true, &r), RMQ_ERR_MALFORMED);
    cr_assert_eq(proto_record_decode(blank, 7, true, &r), RMQ_ERR_TRUNCATED);
}

/* ---- malformed input */

Test(record, truncated_at_every_position) {
    proto_record_t in = sample(), out;
    cm_buf_t b = CM_BUF_INIT;
    encode_ok(&in, &b);
    for (size_t n = 0; n < b.len; n++) {
        /* A copy of exactly n bytes, so ASan sees any read past them. */
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, b.data, n);
        cr_assert_eq(proto_record_decode(cut, n, true, &out), RMQ_ERR_TRUNCATED, "at %zu", n);
        free(cut);
    }
    cm_buf_free(&b);
}

static rmq_err_t decode_patched(const cm_buf_t *b, size_t off, int width, uint32_t v, size_t len) {
    uint8_t *c = malloc(len);
    memcpy(c, b->data, len < b->len ? len : b->len);
    if (len > b->len) memset(c + b->len, 0, len - b->len);
    if (width == 4) cm_wr32(c + off, v);
    if (width == 2) cm_wr16(c + off, (uint16_t)v);
    if (width == 1) c[off] = (uint8_t)v;
    proto_record_t r;
    rmq_err_t err = proto_record_decode(c, len, true, &r);
    free(c);
    return err;
}

Test(record, lying_lengths) {
    proto_record_t in = sample();
    cm_buf_t b = CM_BUF_INIT;
    encode_ok(&in, &b);
    size_t n = b.len, body_off = 84, topic_off = 84 + 4 + 5, props_off = topic_off + 1 + 2;
    cr_assert_eq(decode_patched(&b, 0, 4, 0, n), RMQ_ERR_MALFORMED);           /* zero total */
    cr_assert_eq(decode_patched(&b, 0, 4, 0x80000000u, n), RMQ_ERR_MALFORMED); /* negative */
    cr_assert_eq(decode_patched(&b, 0, 4, (uint32_t)n - 1, n), RMQ_ERR_MALFORMED);
    cr_assert_eq(decode_patched(&b, 0, 4, (uint32_t)n + 1, n + 1), RMQ_ERR_MALFORMED);
    cr_assert_eq(decode_patched(&b, 0, 4, (uint32_t)n + 1, n), RMQ_ERR_TRUNCATED);
    cr_assert_eq(decode_patched(&b, 0, 4, 90, n), RMQ_ERR_MALFORMED); /* below the minimum */
    cr_assert_eq(decode_patched(&b, body_off, 4, 6, n), RMQ_ERR_MALFORMED);
    cr_assert_eq(decode_patched(&b, body_off, 4, 4, n), RMQ_ERR_MALFORMED);
    cr_assert_eq(decode_patched(&b, body_off, 4, 0x7FFFFFFF, n), RMQ_ERR_MALFORMED);
    cr_assert_eq(decode_patched(&b, body_off, 4, 0xFFFFFFFF, n), RMQ_ERR_MALFORMED);
    cr_assert_eq(decode_patched(&b, topic_off, 1, 3, n), RMQ_ERR_MALFORMED);
    cr_assert_eq(decode_patched(&b, topic_off, 1, 0xFF, n), RMQ_ERR_MALFORMED);
    cr_assert_eq(decode_patched(&b, topic_off, 1, 100, n), RMQ_ERR_MALFORMED);
    cr_assert_eq(decode_patched(&b, props_off, 2, 7, n), RMQ_ERR_MALFORMED);
    cr_assert_eq(decode_patched(&b, props_off, 2, 5, n), RMQ_ERR_MALFORMED);
    cr_assert_eq(decode_patched(&b, props_off, 2, 0xFFFF, n), RMQ_ERR_MALFORMED);
    /* IPv6 bits on an IPv4 record: the fields no longer fit the total. */
    cr_assert_eq(decode_patched(&b, 36, 4, SYSFLAG_BORNHOST_V6 | SYSFLAG_STOREHOST_V6, n),
                 RMQ_ERR_MALFORMED);
    cr_assert_eq(decode_patched(&b, 0, 4, (uint32_t)n, n), RMQ_OK); /* the patcher is honest */
    cm_buf_free(&b);
}

Test(record, bad_magic_and_bad_crc) {
    proto_record_t in = sample(), out;
    cm_buf_t b = CM_BUF_INIT;
    encode_ok(&in, &b);
    cr_assert_eq(decode_patched(&b, 4, 4, 0xDAA320A8, b.len), RMQ_ERR_BAD_MAGIC);
    cr_assert_eq(decode_patched(&b, 4, 4, 0, b.len), RMQ_ERR_BAD_MAGIC);
    b.data[88] ^= 0x01; /* first body byte */
    cr_assert_eq(proto_record_decode(b.data, b.len, true, &out), RMQ_ERR_BAD_CRC);
    cr_assert_eq(proto_record_decode(b.data, b.len, false, &out), RMQ_OK);
    cr_assert_eq(out.body[0], 'h' ^ 0x01);
    b.data[88] ^= 0x01;
    cm_wr32(b.data + 8, (uint32_t)proto_body_crc("hello", 5) | 0x80000000u);
    cr_assert_eq(proto_record_decode(b.data, b.len, true, &out), RMQ_ERR_BAD_CRC);
    cm_buf_free(&b);
}

/* ---- records as messages */

Test(record_msg, golden_first_record) {
    size_t len;
    uint8_t *log = store_file("store/commitlog/00000000000000000000", &len);
    proto_record_t r;
    cr_assert_eq(proto_record_decode(log, len, true, &r), RMQ_OK);
    rmq_msg_t *m;
    cr_assert_eq(proto_msg_from_record(&r, 4 * 1024 * 1024, &m), RMQ_OK);
    cr_assert_str_eq(rmq_msg_topic(m), "IopTopic29930");
    size_t blen;
    const void *body = rmq_msg_body(m, &blen);
    cr_assert_eq(blen, 2);
    cr_assert_eq(memcmp(body, "s0", 2), 0);
    cr_assert_str_eq(rmq_msg_tags(m), "A");
    cr_assert_str_eq(rmq_msg_keys(m), "k-s0");
    cr_assert_str_eq(rmq_msg_property(m, PROP_CLUSTER), "DefaultCluster");
    cr_assert_str_eq(rmq_msg_offset_id(m), "7F00000100002A9F0000000000000000");
    cr_assert_str_eq(rmq_msg_id(m), "FD000000000000000000000000000002232330946E097C71C6530000");
    cr_assert_eq(rmq_msg_queue_id(m), 3);
    cr_assert_eq(rmq_msg_queue_offset(m), 0);
    cr_assert_eq(rmq_msg_commitlog_offset(m), 0);
    cr_assert_eq(rmq_msg_born_timestamp(m), r.born_timestamp);
    cr_assert_eq(rmq_msg_store_timestamp(m), r.store_timestamp);
    cr_assert_eq(m->store_host.port, 10911);
    cr_assert_eq(m->born_host.ip_len, 4);
    cr_assert_eq(m->sys_flag, 0);
    rmq_msg_destroy(m);
    free(log);
}

/* A received message keeps topic, offset id, broker name and body in its own allocation;
 * replacing them, duplicating the message and freeing both must free each text once
 * (valgrind and ASan run this suite). */
Test(record_msg, inline_texts_replaced_duplicated_freed) {
    size_t len;
    uint8_t *log = store_file("store/commitlog/00000000000000000000", &len);
    proto_record_t r;
    cr_assert_eq(proto_record_decode(log, len, true, &r), RMQ_OK);
    rmq_msg_t *m;
    cr_assert_eq(proto_msg_from_record_at(&r, 1024, "broker-a", &m), RMQ_OK);
    cr_assert_str_eq(m->broker_name, "broker-a");
    cr_assert_str_eq(rmq_msg_topic(m), "IopTopic29930");
    cr_assert_str_eq(rmq_msg_offset_id(m), "7F00000100002A9F0000000000000000");
    rmq_msg_t *d = rmq_msg_dup(m);
    cr_assert_eq(d->inline_len, 0);
    cr_assert_eq(rmq_msg_set_topic(m, "Other"), RMQ_OK);
    cr_assert_eq(rmq_msg_set_body(m, "xyz", 3), RMQ_OK);
    proto_msg_free_text(m, m->broker_name);
    m->broker_name = cm_strdup("broker-b");
    cr_assert_str_eq(rmq_msg_topic(m), "Other");
    size_t blen;
    cr_assert_eq(memcmp(rmq_msg_body(d, &blen), "s0", 2), 0);
    cr_assert_eq(blen, 2);
    cr_assert_str_eq(rmq_msg_topic(d), "IopTopic29930");
    cr_assert_str_eq(d->broker_name, "broker-a");
    rmq_msg_destroy(m);
    cr_assert_eq(rmq_msg_set_topic(d, "Third"), RMQ_OK);
    rmq_msg_destroy(d);
    /* without a broker name, and with an empty body */
    r.body_len = 0;
    cr_assert_eq(proto_msg_from_record(&r, 1024, &m), RMQ_OK);
    cr_assert_null(m->broker_name);
    cr_assert_eq(rmq_msg_body(m, &blen) == NULL || blen == 0, true);
    rmq_msg_destroy(m);
    free(log);
}

/* A retried message names its first delivery by offset id: that id must lead back to a
 * record of the same UNIQ_KEY in the same log. */
Test(record_msg, origin_message_ids_resolve) {
    size_t len, pos = 0, resolved = 0;
    uint8_t *log = store_file("store/commitlog/00000000000000000000", &len);
    while (pos < COMMITLOG_END) {
        proto_record_t r;
        cr_assert_eq(proto_record_decode(log + pos, len - pos, true, &r), RMQ_OK);
        rmq_msg_t *m;
        cr_assert_eq(proto_msg_from_record(&r, 1024, &m), RMQ_OK);
        const char *origin = rmq_msg_property(m, PROP_ORIGIN_MESSAGE_ID);
        if (origin) {
            proto_addr_t host;
            int64_t off;
            cr_assert_eq(proto_offset_id_parse(origin, &host, &off), RMQ_OK);
            cr_assert_eq(host.port, 10911);
            proto_record_t o;
            cr_assert_eq(proto_record_decode(log + off, len - (size_t)off, true, &o), RMQ_OK);
            rmq_msg_t *om;
            cr_assert_eq(proto_msg_from_record(&o, 1024, &om), RMQ_OK);
            cr_assert_str_eq(rmq_msg_offset_id(om), origin);
            cr_assert_str_eq(rmq_msg_property(om, PROP_UNIQ_KEY),
                             rmq_msg_property(m, PROP_UNIQ_KEY));
            rmq_msg_destroy(om);
            resolved++;
        }
        rmq_msg_destroy(m);
        pos += (size_t)r.total_size;
    }
    cr_assert_gt(resolved, 0);
    free(log);
}

static rmq_err_t msg_of(const proto_record_t *in, size_t max_body, rmq_msg_t **m) {
    cm_buf_t b = CM_BUF_INIT;
    cr_assert_eq(proto_record_encode(in, &b), RMQ_OK);
    proto_record_t r;
    cr_assert_eq(proto_record_decode(b.data, b.len, true, &r), RMQ_OK);
    rmq_err_t err = proto_msg_from_record(&r, max_body, m);
    cm_buf_free(&b);
    return err;
}

Test(record_msg, compressed_body_is_inflated) {
    cm_buf_t plain = CM_BUF_INIT, z = CM_BUF_INIT;
    for (int i = 0; i < 500; i++)
        cm_buf_printf(&plain, "compressed body line %d\n", i);
    cr_assert_eq(proto_compress(SYSFLAG_COMPRESS_ZLIB, 5, plain.data, plain.len, &z), RMQ_OK);
    proto_record_t in = sample();
    in.sys_flag = SYSFLAG_COMPRESSED | SYSFLAG_COMPRESS_ZLIB;
    in.body = z.data;
    in.body_len = (int32_t)z.len;
    rmq_msg_t *m;
    cr_assert_eq(msg_of(&in, plain.len, &m), RMQ_OK);
    size_t blen;
    const void *body = rmq_msg_body(m, &blen);
    cr_assert_eq(blen, plain.len);
    cr_assert_eq(memcmp(body, plain.data, blen), 0);
    cr_assert_eq(m->sys_flag, in.sys_flag);
    rmq_msg_destroy(m);
    cr_assert_eq(msg_of(&in, plain.len - 1, &m), RMQ_ERR_COMPRESSION);
    cr_assert_null(m);
    in.sys_flag = SYSFLAG_COMPRESSED; /* pre-4.9.4 writers: zlib without type bits */
    cr_assert_eq(msg_of(&in, plain.len, &m), RMQ_OK);
    rmq_msg_destroy(m);
    in.sys_flag = SYSFLAG_COMPRESSED | SYSFLAG_COMPRESS_LZ4;
    cr_assert_eq(msg_of(&in, plain.len, &m), RMQ_ERR_UNSUPPORTED);
    in.sys_flag = 0; /* not flagged: delivered as stored */
    cr_assert_eq(msg_of(&in, 1, &m), RMQ_OK);
    cr_assert_eq(m->body_len, z.len);
    rmq_msg_destroy(m);
    cm_buf_free(&plain);
    cm_buf_free(&z);
}

Test(record_msg, v6_hosts_and_bad_input) {
    proto_record_t in = sample();
    in.sys_flag = SYSFLAG_STOREHOST_V6;
    in.store_host = (proto_addr_t){{[15] = 1}, 16, 10911};
    rmq_msg_t *m;
    cr_assert_eq(msg_of(&in, 100, &m), RMQ_OK);
    cr_assert_str_eq(rmq_msg_offset_id(m), "00000000000000000000000000000001"
                                           "00002A9F"
                                           "0000000000001000");
    cr_assert_eq(rmq_msg_reconsume_times(m), 2);
    cr_assert_eq(rmq_msg_flag(m), 7);
    rmq_msg_destroy(m);
    in = sample();
    in.props = "novalue";
    in.props_len = 7;
    cr_assert_eq(msg_of(&in, 100, &m), RMQ_ERR_BAD_PROPERTIES);
    proto_record_t blank = {.total_size = 64, .magic = PROTO_MAGIC_BLANK};
    cr_assert_eq(proto_msg_from_record(&blank, 100, &m), RMQ_ERR_INVALID_ARG);
    in = sample(); /* not decoded: magic 0 */
    cr_assert_eq(proto_msg_from_record(&in, 100, &m), RMQ_OK);
    cr_assert_str_eq(rmq_msg_topic(m), "T1");
    rmq_msg_destroy(m);
    in.props_len = -1;
    cr_assert_eq(proto_msg_from_record(&in, 100, &m), RMQ_ERR_INVALID_ARG);
}
