/* Remoting frames (remoting.md §1, §2) and extFields: round trips through both header forms,
 * the exact JSON shape Java writes, and one distinct error for each kind of bad input. Run
 * under ASan to show the decoder never reads outside the buffer it is given. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <strings.h>

#include "proto/proto.h"

/* Decodes a copy of the bytes in a buffer of exactly len bytes, so ASan sees any read past
 * the end. */
static rmq_err_t decode_exact(const uint8_t *bytes, size_t len, size_t max, proto_cmd_t *cmd) {
    uint8_t *copy = cm_malloc(len ? len : 1);
    if (len) memcpy(copy, bytes, len);
    rmq_err_t err = proto_frame_decode(copy, len, max, cmd);
    cm_free(copy);
    return err;
}

static void assert_same_cmd(const proto_cmd_t *a, const proto_cmd_t *b, bool same_has_ext) {
    cr_assert_eq(a->code, b->code);
    cr_assert_eq(a->language, b->language);
    cr_assert_eq(a->version, b->version);
    cr_assert_eq(a->opaque, b->opaque);
    cr_assert_eq(a->flag, b->flag);
    if (a->remark)
        cr_assert_str_eq(a->remark, b->remark);
    else
        cr_assert_null(b->remark);
    cr_assert_eq(a->ext.count, b->ext.count);
    for (size_t i = 0; i < a->ext.count; i++) {
        cr_assert_str_eq(a->ext.keys[i], b->ext.keys[i]);
        cr_assert_str_eq(a->ext.vals[i], b->ext.vals[i]);
    }
    /* Whether an extFields map is present at all (a local command may fill ext without
     * setting has_ext; the decoder reports the key it saw). */
    if (same_has_ext) cr_assert_eq(a->has_ext || a->ext.count > 0, b->has_ext);
    cr_assert_eq(a->body_len, b->body_len);
    if (a->body_len)
        cr_assert_eq(memcmp(a->body, b->body, a->body_len), 0);
    else
        cr_assert_null(b->body);
}

/* Encodes cmd with serialize type ser, decodes it back and compares every field. */
static void round_trip(proto_cmd_t *cmd, uint8_t ser) {
    cm_buf_t b = CM_BUF_INIT;
    proto_cmd_t back;
    cmd->serialize = ser;
    cr_assert_eq(proto_frame_encode(cmd, &b), RMQ_OK);
    size_t size;
    cr_assert_eq(proto_frame_size(b.data, b.len, 0, &size), RMQ_OK);
    cr_assert_eq(size, b.len);
    cr_assert_eq(b.data[4], ser);
    cr_assert_eq(decode_exact(b.data, b.len, 0, &back), RMQ_OK);
    cr_assert_eq(back.serialize, ser);
    /* Binary cannot carry "extFields":{} apart from no extFields. */
    assert_same_cmd(cmd, &back, ser == PROTO_SER_JSON || cmd->ext.count > 0);
    proto_cmd_free(&back);
    cm_buf_free(&b);
}

static void round_trip_both(proto_cmd_t *cmd) {
    round_trip(cmd, PROTO_SER_JSON);
    round_trip(cmd, PROTO_SER_ROCKETMQ);
}

Test(frame, round_trip_plain_request) {
    proto_cmd_t c;
    proto_cmd_request(&c, PROTO_HEART_BEAT, 7);
    cr_assert_eq(c.language, PROTO_LANG_CPP);
    cr_assert_eq(c.version, PROTO_VERSION);
    cr_assert_eq(c.serialize, PROTO_SER_JSON);
    round_trip_both(&c);
    proto_cmd_free(&c);
}

Test(frame, round_trip_remark_ext_body_flags) {
    proto_cmd_t c;
    proto_cmd_request(&c, PROTO_SEND_MESSAGE_V2, -5);
    proto_ext_set(&c.ext, "a", "group");
    proto_ext_set(&c.ext, "i", "KEYS\x01k\x02TAGS\x01\xc3\xa9 \"q\" \\ \n\t");
    proto_ext_set(&c.ext, "", "empty key");
    proto_ext_set(&c.ext, "empty", "");
    proto_ext_set_int(&c.ext, "g", INT64_MIN);
    proto_ext_set_bool(&c.ext, "k", false);
    proto_cmd_set_body(&c, "\0\x01\xff body", 8);
    round_trip_both(&c);
    c.flag = PROTO_FLAG_ONEWAY;
    cr_assert(proto_cmd_is_oneway(&c));
    round_trip_both(&c);

    proto_cmd_t r;
    proto_cmd_response(&r, &c, RMQ_ERR_TOPIC_NOT_EXIST, "No topic route info\nSee faq");
    cr_assert(proto_cmd_is_response(&r));
    cr_assert_not(proto_cmd_is_oneway(&r));
    cr_assert_eq(r.opaque, -5);
    round_trip_both(&r);
    r.has_ext = true; /* "extFields":{} */
    round_trip_both(&r);
    proto_cmd_free(&r);
    proto_cmd_free(&c);
}

Test(frame, round_trip_extreme_values) {
    proto_cmd_t c;
    proto_cmd_request(&c, INT16_MAX, INT32_MAX);
    c.version = INT16_MIN;
    c.flag = INT32_MIN | PROTO_FLAG_RESPONSE;
    c.language = PROTO_LANG_NODE_JS;
    round_trip_both(&c);
    c.language = 200; /* no name: JSON carries the number */
    round_trip_both(&c);
    proto_cmd_free(&c);
}

Test(frame, response_takes_request_serialize_type) {
    proto_cmd_t req, resp;
    proto_cmd_request(&req, PROTO_PULL_MESSAGE, 3);
    req.serialize = PROTO_SER_ROCKETMQ;
    proto_cmd_response(&resp, &req, 0, NULL);
    cr_assert_eq(resp.serialize, PROTO_SER_ROCKETMQ);
    cr_assert_eq(resp.flag, PROTO_FLAG_RESPONSE);
    cr_assert_eq(resp.opaque, 3);
    cr_assert_null(resp.remark);
    proto_cmd_free(&resp);
    proto_cmd_free(&req);
}

static char *header_text(const proto_cmd_t *c) {
    cm_buf_t b = CM_BUF_INIT;
    cr_assert_eq(proto_frame_encode(c, &b), RMQ_OK);
    size_t hlen = cm_rd32(b.data + 4) & 0xFFFFFF;
    char *s = cm_strndup((char *)b.data + 8, hlen);
    cm_buf_free(&b);
    return s;
}

Test(frame, json_header_has_java_shape) {
    proto_cmd_t c;
    proto_cmd_request(&c, PROTO_GET_ROUTEINFO_BY_TOPIC, 0);
    c.language = PROTO_LANG_JAVA;
    proto_ext_set(&c.ext, "topic", "TBW102");
    char *s = header_text(&c);
    cr_assert_str_eq(s, "{\"code\":105,\"extFields\":{\"topic\":\"TBW102\"},\"flag\":0,"
                        "\"language\":\"JAVA\",\"opaque\":0,\"serializeTypeCurrentRPC\":\"JSON\","
                        "\"version\":409}");
    cm_free(s);
    proto_cmd_free(&c);

    proto_cmd_t req, r;
    proto_cmd_request(&req, PROTO_GET_ROUTEINFO_BY_TOPIC, 2);
    proto_cmd_response(&r, &req, 17, "no \"route\"");
    s = header_text(&r);
    cr_assert_str_eq(s, "{\"code\":17,\"flag\":1,\"language\":\"CPP\",\"opaque\":2,"
                        "\"remark\":\"no \\\"route\\\"\",\"serializeTypeCurrentRPC\":\"JSON\","
                        "\"version\":409}");
    cm_free(s);
    r.has_ext = true;
    s = header_text(&r);
    cr_assert(strstr(s, "\"code\":17,\"extFields\":{},\"flag\":1") != NULL, "%s", s);
    cm_free(s);
    proto_cmd_free(&r);
    proto_cmd_free(&req);
}

/* Wraps a header (JSON text or binary bytes) and a body into a frame. */
static void make_frame(cm_buf_t *b, uint8_t ser, const void *hdr, size_t hlen, const void *body,
                       size_t blen) {
    b->len = 0;
    cm_buf_put32(b, (uint32_t)(4 + hlen + blen));
    cm_buf_put32(b, ((uint32_t)ser << 24) | (uint32_t)hlen);
    cm_buf_append(b, hdr, hlen);
    cm_buf_append(b, body, blen);
}

static rmq_err_t decode_json_header(const char *json, proto_cmd_t *c) {
    cm_buf_t b = CM_BUF_INIT;
    make_frame(&b, PROTO_SER_JSON, json, strlen(json), NULL, 0);
    rmq_err_t err = decode_exact(b.data, b.len, 0, c);
    cm_buf_free(&b);
    return err;
}

Test(frame, json_header_leniency) {
    proto_cmd_t c;
    /* language by number, keys in any order, ext values as numbers and booleans, nulls. */
    cr_assert_eq(decode_json_header("{\"version\":317,\"language\":9,\"opaque\":4,"
                                    "\"extFields\":{\"queueId\":3,\"order\":true,"
                                    "\"offset\":12345678901234,\"n\":null,\"x\":1.5},"
                                    "\"remark\":null,\"code\":11,\"flag\":2,\"unknown\":[1]}",
                                    &c),
                 RMQ_OK);
    cr_assert_eq(c.code, 11);
    cr_assert_eq(c.language, 9);
    cr_assert_eq(c.version, 317);
    cr_assert_eq(c.opaque, 4);
    cr_assert_eq(c.flag, 2);
    cr_assert_null(c.remark);
    cr_assert(c.has_ext);
    cr_assert_eq(c.ext.count, 4);
    cr_assert_str_eq(proto_ext_get(&c.ext, "queueId"), "3");
    cr_assert_str_eq(proto_ext_get(&c.ext, "order"), "true");
    cr_assert_str_eq(proto_ext_get(&c.ext, "offset"), "12345678901234");
    cr_assert_str_eq(proto_ext_get(&c.ext, "x"), "1.5");
    cr_assert_null(proto_ext_get(&c.ext, "n"));
    proto_cmd_free(&c);

    /* Unknown language names (a newer peer) read as OTHER; absent fields stay 0. */
    cr_assert_eq(decode_json_header("{\"code\":34,\"language\":\"COBOL\"}", &c), RMQ_OK);
    cr_assert_eq(c.language, PROTO_LANG_OTHER);
    cr_assert_eq(c.opaque, 0);
    cr_assert_not(c.has_ext);
    proto_cmd_free(&c);

    cr_assert_eq(decode_json_header("{\"code\":34,\"language\":\"GO\",\"extFields\":{}}", &c),
                 RMQ_OK);
    cr_assert_eq(c.language, 9);
    cr_assert(c.has_ext);
    cr_assert_eq(c.ext.count, 0);
    proto_cmd_free(&c);
}

/* Plain headers take a fast path; the same header with an escape (or another shape the
 * fast path leaves alone) goes through the general parser. Both must read the same. */
Test(frame, json_header_fast_and_general_paths_agree) {
    static const char *const pairs[][2] = {
        {"{\"code\":310,\"extFields\":{\"a\":\"G\",\"b\":\"T/x\",\"a\":\"H\"},\"flag\":0,"
         "\"language\":\"CPP\",\"opaque\":-7,\"serializeTypeCurrentRPC\":\"JSON\","
         "\"version\":409}",
         "{\"code\":310,\"extFields\":{\"a\":\"G\",\"b\":\"T\\/x\",\"a\":\"H\"},\"flag\":0,"
         "\"language\":\"CPP\",\"opaque\":-7,\"serializeTypeCurrentRPC\":\"JSON\","
         "\"version\":409}"},
        {" { \"code\" : 0 , \"remark\" : \"ok\" , \"extFields\" : { \"n\" : null } } ",
         "{\"code\":0,\"remark\":\"o\\u006b\",\"extFields\":{\"n\":null}}"},
        {"{\"code\":1,\"language\":\"JAVA\"}", "{\"code\":1,\"language\":0}"},
        {"{\"code\":2,\"flag\":1}", "{\"code\":2,\"flag\":1.0}"},
        {"{\"code\":3}", "{\"code\":4,\"code\":3}"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        proto_cmd_t fast, general;
        cr_assert_eq(decode_json_header(pairs[i][0], &fast), RMQ_OK, "%s", pairs[i][0]);
        cr_assert_eq(decode_json_header(pairs[i][1], &general), RMQ_OK, "%s", pairs[i][1]);
        assert_same_cmd(&general, &fast, true);
        proto_cmd_free(&fast);
        proto_cmd_free(&general);
    }
}

/* Property texts carry \u0001 / \u0002 separators: the fast path undoes ASCII escapes and
 * hands anything else (non-ASCII, NUL) to the general parser. */
Test(frame, json_header_ext_escapes) {
    proto_cmd_t c;
    cr_assert_eq(decode_json_header("{\"code\":1,\"extFields\":{\"i\":\"a\\u0001b\\u0002c\\\"d"
                                    "\\\\e\\/f\\t\",\"k\\u0041\":\"\\u00e9\"}}",
                                    &c),
                 RMQ_OK);
    cr_assert_eq(c.ext.count, 2);
    cr_assert_str_eq(proto_ext_get(&c.ext, "i"), "a\x01"
                                                 "b\x02"
                                                 "c\"d\\e/f\t");
    cr_assert_str_eq(proto_ext_get(&c.ext, "kA"), "\xc3\xa9");
    proto_cmd_free(&c);
}

Test(frame, bad_json_headers) {
    proto_cmd_t c;
    const char *bad[] = {
        "{\"code\":105,",                               /* unterminated */
        "[105]",                                        /* not an object */
        "{\"code\":\"105\"}",                           /* code not a number */
        "{\"code\":4294967296}",                        /* code beyond int32 */
        "{\"code\":1.5}",                               /* code not an integer */
        "{\"code\":1,\"remark\":7}",                    /* remark not a string */
        "{\"code\":1,\"extFields\":[]}",                /* extFields not an object */
        "{\"code\":1,\"extFields\":{{\"a\":1}:\"v\"}}", /* object key in extFields */
        "{\"code\":1} x",                               /* trailing garbage */
        "",                                             /* empty header */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(decode_json_header(bad[i], &c), RMQ_ERR_BAD_JSON, "%s", bad[i]);
        cr_assert_null(c.remark);
        cr_assert_eq(c.ext.count, 0);
    }
    /* A NUL cannot live in a C-string field: refused, not silently cut. */
    cr_assert_eq(decode_json_header("{\"remark\":\"a\\u0000b\"}", &c), RMQ_ERR_MALFORMED);
    cr_assert_eq(decode_json_header("{\"extFields\":{\"k\":\"a\\u0000\"}}", &c), RMQ_ERR_MALFORMED);
}

static void valid_frame(cm_buf_t *b, uint8_t ser) {
    proto_cmd_t c;
    proto_cmd_request(&c, PROTO_SEND_MESSAGE_V2, 9);
    c.serialize = ser;
    c.remark = cm_strdup("remark");
    proto_ext_set(&c.ext, "topic", "T");
    proto_ext_set(&c.ext, "queueId", "1");
    proto_cmd_set_body(&c, "hello", 5);
    b->len = 0;
    cr_assert_eq(proto_frame_encode(&c, b), RMQ_OK);
    proto_cmd_free(&c);
}

Test(frame, truncated_at_every_byte) {
    for (uint8_t ser = 0; ser <= 1; ser++) {
        cm_buf_t b = CM_BUF_INIT;
        valid_frame(&b, ser);
        for (size_t n = 0; n < b.len; n++) {
            proto_cmd_t c;
            size_t size;
            cr_assert_eq(decode_exact(b.data, n, 0, &c), RMQ_ERR_TRUNCATED, "ser %d at %zu", ser,
                         n);
            cr_assert_eq(proto_frame_size(b.data, n, 0, &size), n < 4 ? RMQ_ERR_TRUNCATED : RMQ_OK);
        }
        proto_cmd_t c;
        cr_assert_eq(decode_exact(b.data, b.len, 0, &c), RMQ_OK);
        proto_cmd_free(&c);
        cm_buf_free(&b);
    }
}

Test(frame, length_field_that_lies) {
    for (uint8_t ser = 0; ser <= 1; ser++) {
        cm_buf_t b = CM_BUF_INIT;
        proto_cmd_t c;
        valid_frame(&b, ser);
        uint32_t len = cm_rd32(b.data);
        /* Announces more than there is: the rest has not arrived. */
        cm_wr32(b.data, len + 1);
        cr_assert_eq(decode_exact(b.data, b.len, 0, &c), RMQ_ERR_TRUNCATED);
        /* Announces less: bytes after the frame, or a header that no longer fits. */
        cm_wr32(b.data, len - 1);
        cr_assert_eq(decode_exact(b.data, b.len, 0, &c), RMQ_ERR_MALFORMED);
        size_t hlen = cm_rd32(b.data + 4) & 0xFFFFFF;
        cm_wr32(b.data, (uint32_t)(4 + hlen - 1));
        cr_assert_eq(decode_exact(b.data, hlen + 7, 0, &c), RMQ_ERR_MALFORMED);
        /* Below the 4-byte minimum (the header-length word). */
        cm_wr32(b.data, 3);
        cr_assert_eq(decode_exact(b.data, 7, 0, &c), RMQ_ERR_MALFORMED);
        cm_wr32(b.data, 0);
        cr_assert_eq(decode_exact(b.data, 4, 0, &c), RMQ_ERR_MALFORMED);
        cm_buf_free(&b);
    }
}

Test(frame, header_length_beyond_frame) {
    for (uint8_t ser = 0; ser <= 1; ser++) {
        cm_buf_t b = CM_BUF_INIT;
        proto_cmd_t c;
        valid_frame(&b, ser);
        uint32_t body_len = 5, hlen = cm_rd32(b.data + 4) & 0xFFFFFF;
        cm_wr32(b.data + 4, ((uint32_t)ser << 24) | (hlen + body_len + 1));
        cr_assert_eq(decode_exact(b.data, b.len, 0, &c), RMQ_ERR_MALFORMED);
        cm_wr32(b.data + 4, ((uint32_t)ser << 24) | 0xFFFFFF);
        cr_assert_eq(decode_exact(b.data, b.len, 0, &c), RMQ_ERR_MALFORMED);
        /* Header length exactly the frame: legal, the body just got shorter (and then the
         * header no longer parses). */
        cm_wr32(b.data + 4, ((uint32_t)ser << 24) | (hlen + body_len));
        rmq_err_t err = decode_exact(b.data, b.len, 0, &c);
        cr_assert_eq(err, ser ? RMQ_ERR_MALFORMED : RMQ_ERR_BAD_JSON);
        cm_buf_free(&b);
    }
}

Test(frame, frame_too_large) {
    uint8_t hdr[8];
    size_t size;
    proto_cmd_t c;
    cm_wr32(hdr, 0x80000000u); /* 2 GiB: negative as Java's int, still too large */
    cm_wr32(hdr + 4, 0);
    cr_assert_eq(proto_frame_size(hdr, 8, 0, &size), RMQ_ERR_FRAME_TOO_LARGE);
    cr_assert_eq(decode_exact(hdr, 8, 0, &c), RMQ_ERR_FRAME_TOO_LARGE);
    cm_wr32(hdr, 0xFFFFFFFFu);
    cr_assert_eq(proto_frame_size(hdr, 8, PROTO_MAX_FRAME, &size), RMQ_ERR_FRAME_TOO_LARGE);
    /* Java's limit counts the length field: 16 MiB in all is the largest frame allowed. */
    cm_wr32(hdr, PROTO_MAX_FRAME - 4);
    cr_assert_eq(proto_frame_size(hdr, 8, 0, &size), RMQ_OK);
    cr_assert_eq(size, PROTO_MAX_FRAME);
    cr_assert_eq(decode_exact(hdr, 8, 0, &c), RMQ_ERR_TRUNCATED);
    cm_wr32(hdr, PROTO_MAX_FRAME - 3);
    cr_assert_eq(proto_frame_size(hdr, 8, 0, &size), RMQ_ERR_FRAME_TOO_LARGE);
    cr_assert_eq(decode_exact(hdr, 8, 0, &c), RMQ_ERR_FRAME_TOO_LARGE);
    /* A caller's smaller limit. */
    cm_buf_t b = CM_BUF_INIT;
    valid_frame(&b, PROTO_SER_JSON);
    cr_assert_eq(decode_exact(b.data, b.len, b.len - 1, &c), RMQ_ERR_FRAME_TOO_LARGE);
    cr_assert_eq(decode_exact(b.data, b.len, b.len, &c), RMQ_OK);
    proto_cmd_free(&c);
    cm_buf_free(&b);
}

Test(frame, unknown_serialize_type) {
    cm_buf_t b = CM_BUF_INIT;
    proto_cmd_t c;
    valid_frame(&b, PROTO_SER_JSON);
    for (unsigned ser = 2; ser < 256; ser += 51) {
        b.data[4] = (uint8_t)ser;
        cr_assert_eq(decode_exact(b.data, b.len, 0, &c), RMQ_ERR_UNSUPPORTED);
    }
    proto_cmd_request(&c, 1, 1);
    c.serialize = 2;
    b.len = 0;
    cr_assert_eq(proto_frame_encode(&c, &b), RMQ_ERR_UNSUPPORTED);
    cr_assert_eq(b.len, 0);
    proto_cmd_free(&c);
    cm_buf_free(&b);
}

/* A binary header built field by field so each length can be made to lie. */
typedef struct bin_hdr {
    int32_t remark_len; /* announced */
    const char *remark; /* bytes actually present (may differ in length) */
    int32_t ext_len;    /* announced; -1000 means "the real length" */
    const uint8_t *ext;
    size_t ext_bytes;
} bin_hdr_t;

static rmq_err_t decode_bin(const bin_hdr_t *h, proto_cmd_t *c) {
    cm_buf_t hb = CM_BUF_INIT, fb = CM_BUF_INIT;
    cm_buf_put16(&hb, 310);
    cm_buf_put8(&hb, 0);
    cm_buf_put16(&hb, 409);
    cm_buf_put32(&hb, 77);
    cm_buf_put32(&hb, 0);
    cm_buf_put32(&hb, (uint32_t)h->remark_len);
    if (h->remark) cm_buf_append_str(&hb, h->remark);
    cm_buf_put32(&hb, (uint32_t)(h->ext_len == -1000 ? (int32_t)h->ext_bytes : h->ext_len));
    cm_buf_append(&hb, h->ext, h->ext_bytes);
    make_frame(&fb, PROTO_SER_ROCKETMQ, hb.data, hb.len, "body", 4);
    rmq_err_t err = decode_exact(fb.data, fb.len, 0, c);
    cm_buf_free(&hb);
    cm_buf_free(&fb);
    return err;
}

Test(frame, binary_header_layout) {
    static const uint8_t ext[] = {0, 1, 'k', 0, 0, 0, 2, 'v', '1', 0, 2, 'k', '2', 0, 0, 0, 0};
    bin_hdr_t h = {3, "abc", -1000, ext, sizeof ext};
    proto_cmd_t c;
    cr_assert_eq(decode_bin(&h, &c), RMQ_OK);
    cr_assert_eq(c.code, 310);
    cr_assert_eq(c.version, 409);
    cr_assert_eq(c.opaque, 77);
    cr_assert_str_eq(c.remark, "abc");
    cr_assert_eq(c.ext.count, 2);
    cr_assert_str_eq(proto_ext_get(&c.ext, "k"), "v1");
    cr_assert_str_eq(proto_ext_get(&c.ext, "k2"), "");
    cr_assert_eq(c.body_len, 4);
    cr_assert_eq(memcmp(c.body, "body", 4), 0);
    /* Re-encoding gives the same bytes. */
    cm_buf_t b = CM_BUF_INIT;
    cr_assert_eq(proto_frame_encode(&c, &b), RMQ_OK);
    cr_assert_eq(b.len, 8 + 21 + 3 + sizeof ext + 4);
    cr_assert_eq(memcmp(b.data + 8 + 21 + 3, ext, sizeof ext), 0);
    proto_cmd_free(&c);
    cm_buf_free(&b);

    bin_hdr_t none = {0, NULL, 0, NULL, 0};
    cr_assert_eq(decode_bin(&none, &c), RMQ_OK);
    cr_assert_null(c.remark);
    cr_assert_not(c.has_ext);
    proto_cmd_free(&c);
}

Test(frame, binary_lengths_that_lie) {
    static const uint8_t ext[] = {0, 1, 'k', 0, 0, 0, 2, 'v', '1'};
    static const uint8_t key_lies[] = {0, 9, 'k', 0, 0, 0, 2, 'v', '1'};
    static const uint8_t val_lies[] = {0, 1, 'k', 0, 0, 0, 9, 'v', '1'};
    static const uint8_t val_neg[] = {0, 1, 'k', 0xFF, 0xFF, 0xFF, 0xFE, 'v', '1'};
    static const uint8_t key_neg[] = {0x80, 0, 'k', 0, 0, 0, 2, 'v', '1'};
    static const uint8_t cut[] = {0, 1, 'k', 0, 0};
    static const uint8_t nul[] = {0, 1, 'k', 0, 0, 0, 2, 'v', '\0'};
    const bin_hdr_t cases[] = {
        {9, "abc", -1000, ext, sizeof ext},                  /* remark longer than the header */
        {4, "abc", -1000, ext, sizeof ext},                  /* remark swallows the ext length */
        {-1, NULL, -1000, ext, sizeof ext},                  /* negative remark length */
        {INT32_MIN, NULL, -1000, ext, sizeof ext},           /* very negative */
        {0, NULL, (int32_t)sizeof ext + 1, ext, sizeof ext}, /* ext length too big */
        {0, NULL, (int32_t)sizeof ext - 1, ext, sizeof ext}, /* ext length too small */
        {0, NULL, -1, ext, sizeof ext},                      /* negative ext length */
        {0, NULL, -1000, key_lies, sizeof key_lies},
        {0, NULL, -1000, val_lies, sizeof val_lies},
        {0, NULL, -1000, val_neg, sizeof val_neg},
        {0, NULL, -1000, key_neg, sizeof key_neg},
        {0, NULL, -1000, cut, sizeof cut},
        {0, NULL, -1000, nul, sizeof nul},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        proto_cmd_t c;
        cr_assert_eq(decode_bin(&cases[i], &c), RMQ_ERR_MALFORMED, "case %zu", i);
        cr_assert_null(c.remark);
        cr_assert_eq(c.ext.count, 0);
        cr_assert_null(c.body);
    }
    /* A header shorter than the 21 fixed bytes (13 of fields, two 4-byte lengths). */
    cm_buf_t fb = CM_BUF_INIT;
    proto_cmd_t c;
    for (size_t n = 0; n < 21; n++) {
        static const uint8_t zeros[21];
        make_frame(&fb, PROTO_SER_ROCKETMQ, zeros, n, NULL, 0);
        cr_assert_eq(decode_exact(fb.data, fb.len, 0, &c), RMQ_ERR_MALFORMED, "hlen %zu", n);
    }
    cm_buf_free(&fb);
}

Test(frame, repeated_ext_keys_first_place_last_value) {
    proto_cmd_t c;
    cr_assert_eq(
        decode_json_header("{\"extFields\":{\"a\":\"1\",\"b\":\"2\",\"a\":\"3\",\"c\":\"4\","
                           "\"b\":\"5\",\"a\":\"6\"}}",
                           &c),
        RMQ_OK);
    cr_assert_eq(c.ext.count, 3);
    cr_assert_str_eq(c.ext.keys[0], "a");
    cr_assert_str_eq(c.ext.vals[0], "6");
    cr_assert_str_eq(c.ext.keys[1], "b");
    cr_assert_str_eq(c.ext.vals[1], "5");
    cr_assert_str_eq(c.ext.keys[2], "c");
    cr_assert_str_eq(c.ext.vals[2], "4");
    proto_cmd_free(&c);

    static const uint8_t ext[] = {0, 1, 'k', 0,   0, 0, 1,   '1', 0, 1, 'j', 0,
                                  0, 0, 1,   '2', 0, 1, 'k', 0,   0, 0, 1,   '3'};
    bin_hdr_t h = {0, NULL, -1000, ext, sizeof ext};
    cr_assert_eq(decode_bin(&h, &c), RMQ_OK);
    cr_assert_eq(c.ext.count, 2);
    cr_assert_str_eq(c.ext.keys[0], "k");
    cr_assert_str_eq(c.ext.vals[0], "3");
    cr_assert_str_eq(c.ext.keys[1], "j");
    proto_cmd_free(&c);
}

/* A peer can pack ~2.8 million tiny fields into 16 MiB; decoding must not go quadratic. */
Test(frame, many_ext_fields_decode_in_linear_time) {
    enum { N = 400000 };
    cm_buf_t ext = CM_BUF_INIT;
    for (int i = 0; i < N; i++) {
        char key[16];
        int n = snprintf(key, sizeof key, "k%d", i % (N / 2)); /* every key twice */
        cm_buf_put16(&ext, (uint16_t)n);
        cm_buf_append(&ext, key, (size_t)n);
        cm_buf_put32(&ext, 1);
        cm_buf_put8(&ext, (uint8_t)('0' + i / (N / 2)));
    }
    bin_hdr_t h = {0, NULL, -1000, ext.data, ext.len};
    proto_cmd_t c;
    int64_t t0 = cm_mono_ms();
    cr_assert_eq(decode_bin(&h, &c), RMQ_OK);
    int64_t took = cm_mono_ms() - t0;
    cr_assert_eq(c.ext.count, N / 2);
    cr_assert_str_eq(c.ext.keys[7], "k7");
    cr_assert_str_eq(c.ext.vals[7], "1");
    cr_assert_lt(took, 10000, "decoding %d fields took %lld ms", N, (long long)took);
    proto_cmd_free(&c);
    cm_buf_free(&ext);
}

Test(frame, binary_refuses_what_does_not_fit) {
    proto_cmd_t c;
    cm_buf_t b = CM_BUF_INIT;
    cm_buf_append(&b, "keep", 4);
    proto_cmd_request(&c, 200001, 1); /* 5.x POP codes need JSON */
    c.serialize = PROTO_SER_ROCKETMQ;
    cr_assert_eq(proto_frame_encode(&c, &b), RMQ_ERR_UNSUPPORTED);
    cr_assert_eq(b.len, 4);
    c.serialize = PROTO_SER_JSON;
    cr_assert_eq(proto_frame_encode(&c, &b), RMQ_OK);
    cr_assert_eq(memcmp(b.data, "keep", 4), 0);
    proto_cmd_t back;
    cr_assert_eq(decode_exact(b.data + 4, b.len - 4, 0, &back), RMQ_OK);
    cr_assert_eq(back.code, 200001);
    proto_cmd_free(&back);
    proto_cmd_free(&c);
    cm_buf_free(&b);
}

Test(ext, set_get_replace_remove) {
    proto_ext_t e = {0};
    proto_ext_set(&e, "b", "1");
    proto_ext_set(&e, "a", "2");
    proto_ext_set(&e, "b", "3");
    cr_assert_eq(e.count, 2);
    cr_assert_str_eq(e.keys[0], "b");
    cr_assert_str_eq(e.vals[0], "3");
    cr_assert_str_eq(proto_ext_get(&e, "a"), "2");
    cr_assert_null(proto_ext_get(&e, "c"));
    proto_ext_set(&e, "b", NULL);
    cr_assert_eq(e.count, 1);
    cr_assert_str_eq(e.keys[0], "a");
    for (int i = 0; i < 100; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        proto_ext_set_int(&e, key, i);
    }
    cr_assert_eq(e.count, 101);
    cr_assert_str_eq(proto_ext_get(&e, "k99"), "99");
    proto_ext_free(&e);
    cr_assert_eq(e.count, 0);
}

Test(ext, typed_reads) {
    proto_ext_t e = {0};
    int64_t v;
    bool b;
    proto_ext_set_int(&e, "max", INT64_MAX);
    proto_ext_set_int(&e, "min", INT64_MIN);
    proto_ext_set(&e, "plus", "+12");
    proto_ext_set(&e, "over", "9223372036854775808");
    proto_ext_set(&e, "space", " 1");
    proto_ext_set(&e, "empty", "");
    proto_ext_set(&e, "sign", "-");
    proto_ext_set_bool(&e, "t", true);
    proto_ext_set(&e, "T", "TRUE");
    proto_ext_set(&e, "yes", "yes");
    cr_assert_eq(proto_ext_get_int(&e, "max", &v), RMQ_OK);
    cr_assert_eq(v, INT64_MAX);
    cr_assert_eq(proto_ext_get_int(&e, "min", &v), RMQ_OK);
    cr_assert_eq(v, INT64_MIN);
    cr_assert_eq(proto_ext_get_int(&e, "plus", &v), RMQ_OK);
    cr_assert_eq(v, 12);
    cr_assert_eq(proto_ext_get_int(&e, "over", &v), RMQ_ERR_MALFORMED);
    cr_assert_eq(proto_ext_get_int(&e, "space", &v), RMQ_ERR_MALFORMED);
    cr_assert_eq(proto_ext_get_int(&e, "empty", &v), RMQ_ERR_MALFORMED);
    cr_assert_eq(proto_ext_get_int(&e, "sign", &v), RMQ_ERR_MALFORMED);
    cr_assert_eq(proto_ext_get_int(&e, "absent", &v), RMQ_ERR_NOT_FOUND);
    cr_assert_eq(proto_ext_get_bool(&e, "t", &b), RMQ_OK);
    cr_assert(b);
    cr_assert_str_eq(proto_ext_get(&e, "t"), "true");
    cr_assert_eq(proto_ext_get_bool(&e, "T", &b), RMQ_OK);
    cr_assert(b);
    cr_assert_eq(proto_ext_get_bool(&e, "yes", &b), RMQ_ERR_MALFORMED);
    cr_assert_eq(proto_ext_get_bool(&e, "absent", &b), RMQ_ERR_NOT_FOUND);
    proto_ext_free(&e);
}

/* ---------------------------------------------------------------- fast-path coverage */

/* Every ext text's stored length is its strlen (encoders trust the lengths). */
static void assert_lens(const proto_ext_t *e) {
    for (size_t i = 0; i < e->count; i++) {
        cr_assert_eq(proto_ext_key_len(e, i), strlen(e->keys[i]), "key %zu", i);
        cr_assert_eq(proto_ext_val_len(e, i), strlen(e->vals[i]), "val %zu", i);
    }
}

/* What the general JSON parser reads from the string literal lit (quotes included). */
static rmq_err_t general_string(const char *lit, proto_json_t **out) {
    rmq_err_t err = proto_json_parse(lit, strlen(lit), out);
    if (err == RMQ_OK && (*out)->type != PJ_STRING) err = RMQ_ERR_BAD_JSON;
    return err;
}

/* An extFields value of every length from 0 to 40 (the word-at-a-time scan and the byte
 * tail) with one escape, raw byte or bad sequence at every position: the frame decoder
 * reads what the general parser reads, and refuses what it refuses. */
Test(frame, json_ext_strings_at_every_length_and_position) {
    static const char *const inserts[] = {
        "\\\"",     "\\\\",    "\\/",     "\\b",
        "\\f",      "\\n",     "\\r",     "\\t",
        "\\u0001",  "\\u0002", "\\u007f", "\\u007F",
        "\\u0041",  "\\u00e9", "\\u20ac", "\\ud83d\\ude00",
        "\xc3\xa9", "\x7f",    "\xff",    "\x01",
        "\x1f",     "\\u0000", "\\x",     "\\u00g1",
        "\\u12",    "\\",      "\\u",     "z",
    };
    cm_buf_t val = CM_BUF_INIT, hdr = CM_BUF_INIT, lit = CM_BUF_INIT;
    for (size_t len = 0; len <= 40; len++) {
        for (size_t pos = 0; pos <= len; pos++) {
            for (size_t k = 0; k < sizeof inserts / sizeof inserts[0]; k++) {
                val.len = 0;
                for (size_t i = 0; i < pos; i++)
                    cm_buf_put8(&val, (uint8_t)('a' + i % 26));
                cm_buf_append_str(&val, inserts[k]);
                for (size_t i = pos; i < len; i++)
                    cm_buf_put8(&val, (uint8_t)('A' + i % 26));
                cm_buf_put8(&val, 0);
                hdr.len = 0;
                cm_buf_printf(&hdr, "{\"code\":1,\"extFields\":{\"k%s\":\"%s\",\"z\":\"1\"}}",
                              (const char *)val.data, (const char *)val.data);
                cm_buf_put8(&hdr, 0);
                lit.len = 0;
                cm_buf_printf(&lit, "\"%s\"", (const char *)val.data);
                proto_json_t *want = NULL;
                rmq_err_t want_err = general_string((const char *)lit.data, &want);
                proto_cmd_t c;
                rmq_err_t err = decode_json_header((const char *)hdr.data, &c);
                const char *what = (const char *)hdr.data;
                if (want_err != RMQ_OK) {
                    cr_assert_eq(err, RMQ_ERR_BAD_JSON, "%s", what);
                } else if (memchr(want->s, '\0', want->len)) {
                    cr_assert_eq(err, RMQ_ERR_MALFORMED, "%s", what);
                } else {
                    cr_assert_eq(err, RMQ_OK, "%s", what);
                    cr_assert_eq(c.ext.count, 2, "%s", what);
                    cr_assert_eq(c.ext.keys[0][0], 'k');
                    cr_assert_str_eq(c.ext.keys[0] + 1, want->s, "%s", what);
                    cr_assert_str_eq(c.ext.vals[0], want->s, "%s", what);
                    cr_assert_str_eq(c.ext.vals[1], "1", "%s", what);
                    assert_lens(&c.ext);
                    proto_cmd_free(&c);
                }
                proto_json_free(want);
            }
        }
    }
    cm_buf_free(&val);
    cm_buf_free(&hdr);
    cm_buf_free(&lit);
}

/* Whitespace of every kind between every pair of tokens, and none: the same command. */
Test(frame, json_header_odd_whitespace) {
    static const char *const tokens[] = {"{",
                                         "\"code\"",
                                         ":",
                                         "310",
                                         ",",
                                         "\"extFields\"",
                                         ":",
                                         "{",
                                         "\"a\"",
                                         ":",
                                         "\"g\\u0001h\"",
                                         ",",
                                         "\"nul\"",
                                         ":",
                                         "null",
                                         ",",
                                         "\"b\"",
                                         ":",
                                         "\"\"",
                                         "}",
                                         ",",
                                         "\"flag\"",
                                         ":",
                                         "-1",
                                         ",",
                                         "\"language\"",
                                         ":",
                                         "\"JAVA\"",
                                         ",",
                                         "\"opaque\"",
                                         ":",
                                         "2147483647",
                                         ",",
                                         "\"remark\"",
                                         ":",
                                         "\"r\"",
                                         ",",
                                         "\"serializeTypeCurrentRPC\"",
                                         ":",
                                         "\"JSON\"",
                                         ",",
                                         "\"version\"",
                                         ":",
                                         "409",
                                         "}"};
    static const char *const spaces[] = {"", " ", "\t", "\n", "\r", " \t\r\n  "};
    size_t n = sizeof tokens / sizeof tokens[0];
    proto_cmd_t want;
    cm_buf_t b = CM_BUF_INIT;
    for (size_t i = 0; i < n; i++)
        cm_buf_append_str(&b, tokens[i]);
    cm_buf_put8(&b, 0);
    cr_assert_eq(decode_json_header((const char *)b.data, &want), RMQ_OK);
    cr_assert_eq(want.code, 310);
    cr_assert_eq(want.flag, -1);
    cr_assert_eq(want.opaque, INT32_MAX);
    cr_assert_eq(want.ext.count, 2);
    cr_assert_str_eq(proto_ext_get(&want.ext, "a"), "g\x01h");
    for (size_t s = 1; s < sizeof spaces / sizeof spaces[0]; s++) {
        for (size_t at = 0; at <= n; at++) { /* before token at (n: after the last) */
            b.len = 0;
            for (size_t i = 0; i < n; i++) {
                if (i == at) cm_buf_append_str(&b, spaces[s]);
                cm_buf_append_str(&b, tokens[i]);
            }
            if (at == n) cm_buf_append_str(&b, spaces[s]);
            cm_buf_put8(&b, 0);
            proto_cmd_t c;
            cr_assert_eq(decode_json_header((const char *)b.data, &c), RMQ_OK, "%s", b.data);
            assert_same_cmd(&want, &c, true);
            assert_lens(&c.ext);
            proto_cmd_free(&c);
        }
    }
    proto_cmd_free(&want);
    /* A byte below ' ' that is not whitespace is not skipped. */
    proto_cmd_t bad;
    cr_assert_eq(decode_json_header("{\"code\":1,\x0b\"flag\":1}", &bad), RMQ_ERR_BAD_JSON);
    cm_buf_free(&b);
}

/* Every language name reads as its ordinal and is written back by name. */
Test(frame, json_header_language_names) {
    for (int32_t i = 0; i <= PROTO_LANG_NODE_JS + 1; i++) {
        char hdr[96];
        snprintf(hdr, sizeof hdr, "{\"code\":1,\"language\":\"%s\"}", proto_lang_name(i));
        proto_cmd_t c;
        cr_assert_eq(decode_json_header(hdr, &c), RMQ_OK);
        cr_assert_eq(c.language, i <= PROTO_LANG_NODE_JS ? i : PROTO_LANG_OTHER, "%s", hdr);
        round_trip(&c, PROTO_SER_JSON);
        proto_cmd_free(&c);
    }
    /* A name that is a prefix or an extension of a known one is not it. */
    static const char *const near[] = {"JAV", "JAVAX", "CP", "", "java", "NODE_J"};
    for (size_t i = 0; i < sizeof near / sizeof near[0]; i++) {
        char hdr[96];
        snprintf(hdr, sizeof hdr, "{\"code\":1,\"language\":\"%s\"}", near[i]);
        proto_cmd_t c;
        cr_assert_eq(decode_json_header(hdr, &c), RMQ_OK);
        cr_assert_eq(c.language, PROTO_LANG_OTHER, "%s", hdr);
        proto_cmd_free(&c);
    }
}

/* Top-level keys that share a length or a prefix with a known key are unknown keys (the
 * general parser ignores them), and a repeated known key still means the last one. */
Test(frame, json_header_member_names) {
    static const char *const hdrs[][2] = {
        {"{\"code\":5,\"cODE\":7}", "5"},  {"{\"code\":5,\"flags\":7}", "5"},
        {"{\"cod\":7,\"code\":5}", "5"},   {"{\"code\":5,\"remarks\":\"x\"}", "5"},
        {"{\"code\":5,\"opaqu\":1}", "5"}, {"{\"code\":5,\"extField\":{}}", "5"},
        {"{\"code\":7,\"code\":5}", "5"},  {"{\"code\":5,\"serializeTypeCurrentRPc\":1}", "5"},
    };
    for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
        proto_cmd_t c;
        cr_assert_eq(decode_json_header(hdrs[i][0], &c), RMQ_OK, "%s", hdrs[i][0]);
        cr_assert_eq(c.code, atoi(hdrs[i][1]), "%s", hdrs[i][0]);
        cr_assert_eq(c.flag, 0, "%s", hdrs[i][0]);
        cr_assert_null(c.remark);
        cr_assert_not(c.has_ext);
        proto_cmd_free(&c);
    }
}

/* Repeated keys among up to 40 fields (both sides of the pairwise check's limit), keys that
 * differ only where the duplicate check's hash does not look, in both header forms: the
 * first place and the last value, as a plain quadratic reference computes them. */
Test(frame, repeated_ext_keys_against_reference) {
    static const char *const pool[] = {"a",   "b",   "ab",         "ba",        "aab",   "abb",
                                       "a_b", "acb", "queueId",    "queueIe",   "topic", "topic2",
                                       "",    "x",   "abcdefghij", "abcdefghiJ"};
    size_t np = sizeof pool / sizeof pool[0];
    uint32_t seed = 12345;
    cm_buf_t hdr = CM_BUF_INIT, bin = CM_BUF_INIT, frame = CM_BUF_INIT;
    for (int round = 0; round < 400; round++) {
        size_t n = (size_t)round % 41;
        const char *keys[41];
        char vals[41][8];
        hdr.len = 0;
        bin.len = 0;
        cm_buf_append_str(&hdr, "{\"extFields\":{");
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            /* Few distinct keys in some rounds (many repeats), all of them in others. */
            keys[i] = pool[(seed >> 16) % (round % 3 == 0 ? 3 : np)];
            snprintf(vals[i], sizeof vals[i], "v%zu", i);
            cm_buf_printf(&hdr, "%s\"%s\":\"%s\"", i ? "," : "", keys[i], vals[i]);
            cm_buf_put16(&bin, (uint16_t)strlen(keys[i]));
            cm_buf_append_str(&bin, keys[i]);
            cm_buf_put32(&bin, (uint32_t)strlen(vals[i]));
            cm_buf_append_str(&bin, vals[i]);
        }
        cm_buf_append_str(&hdr, "}}");
        cm_buf_put8(&hdr, 0);
        /* Reference: distinct keys in first-seen order, each with its last value. */
        const char *rk[41], *rv[41];
        size_t rn = 0;
        for (size_t i = 0; i < n; i++) {
            size_t j = 0;
            while (j < rn && strcmp(rk[j], keys[i]) != 0)
                j++;
            if (j == rn) rk[rn++] = keys[i];
            rv[j] = vals[i];
        }
        proto_cmd_t c;
        cr_assert_eq(decode_json_header((const char *)hdr.data, &c), RMQ_OK);
        for (int form = 0; form < 2; form++) {
            cr_assert_eq(c.ext.count, rn, "round %d form %d", round, form);
            for (size_t j = 0; j < rn; j++) {
                cr_assert_str_eq(c.ext.keys[j], rk[j], "round %d form %d", round, form);
                cr_assert_str_eq(c.ext.vals[j], rv[j], "round %d form %d", round, form);
            }
            assert_lens(&c.ext);
            round_trip_both(&c);
            proto_cmd_free(&c);
            if (form == 1) break;
            /* The same fields as a binary header. */
            frame.len = 0;
            cm_buf_put16(&frame, 310);
            cm_buf_put8(&frame, 0);
            cm_buf_put16(&frame, 409);
            cm_buf_put32(&frame, 1);
            cm_buf_put32(&frame, 0);
            cm_buf_put32(&frame, 0);
            cm_buf_put32(&frame, (uint32_t)bin.len);
            cm_buf_append(&frame, bin.data, bin.len);
            cm_buf_t fb = CM_BUF_INIT;
            make_frame(&fb, PROTO_SER_ROCKETMQ, frame.data, frame.len, NULL, 0);
            cr_assert_eq(decode_exact(fb.data, fb.len, 0, &c), RMQ_OK);
            cm_buf_free(&fb);
        }
    }
    cm_buf_free(&hdr);
    cm_buf_free(&bin);
    cm_buf_free(&frame);
}

/* The lengths kept beside the texts follow every change: replacing a value with a longer
 * or shorter one, removing a field, growing past the first array block. */
Test(ext, lengths_follow_set_replace_remove) {
    proto_cmd_t c;
    proto_cmd_request(&c, PROTO_SEND_MESSAGE_V2, 3);
    for (int i = 0; i < 40; i++) {
        char key[16], val[64];
        snprintf(key, sizeof key, "key%d", i);
        snprintf(val, sizeof val, "%.*s", i, "0123456789012345678901234567890123456789");
        proto_ext_set(&c.ext, key, val);
    }
    proto_ext_set(&c.ext, "key3", "a much longer value than before \x01\x02");
    proto_ext_set(&c.ext, "key30", "");
    proto_ext_set(&c.ext, "key5", NULL);
    proto_ext_set(&c.ext, "key0", NULL);
    proto_ext_set_int(&c.ext, "key7", INT64_MIN);
    proto_ext_set_bool(&c.ext, "key8", true);
    cr_assert_eq(c.ext.count, 38);
    assert_lens(&c.ext);
    cr_assert_str_eq(proto_ext_get(&c.ext, "key7"), "-9223372036854775808");
    round_trip_both(&c);
    proto_cmd_free(&c);
}

/* Booleans are read as strcasecmp would compare them with "true" and "false": ASCII case
 * ignored, nothing else (no prefix, no extension, no byte that only looks alike). */
Test(ext, bool_texts) {
    static const char *const yes[] = {"true", "TRUE", "True", "tRuE"};
    static const char *const no[] = {"false", "FALSE", "False", "fAlSe"};
    static const char *const bad[] = {"",
                                      "t",
                                      "tru",
                                      "truee",
                                      "true ",
                                      " true",
                                      "fals",
                                      "falsey",
                                      "\xd4rue",
                                      "tru\xc5",
                                      "1",
                                      "0",
                                      "TRUE\n",
                                      "t\x52UE",
                                      "yes",
                                      "tr\x15"
                                      "e"};
    bool b;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        b = false;
        cr_assert_eq(proto_ext_parse_bool(yes[i], &b), RMQ_OK, "%s", yes[i]);
        cr_assert(b, "%s", yes[i]);
        b = true;
        cr_assert_eq(proto_ext_parse_bool(no[i], &b), RMQ_OK, "%s", no[i]);
        cr_assert_not(b, "%s", no[i]);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b = true;
        rmq_err_t want = strcasecmp(bad[i], "true") == 0 || strcasecmp(bad[i], "false") == 0
                             ? RMQ_OK
                             : RMQ_ERR_MALFORMED;
        cr_assert_eq(proto_ext_parse_bool(bad[i], &b), want, "%s", bad[i]);
    }
    cr_assert_eq(proto_ext_parse_bool(NULL, &b), RMQ_ERR_NOT_FOUND);
}

/* Integers as Long.parseLong reads them: up to 18 digits need no overflow check, from the
 * 19th every digit is checked, leading zeros count as digits but not toward overflow. */
Test(ext, int_texts_near_the_limits) {
    static const struct {
        const char *text;
        bool ok;
        int64_t v;
    } cases[] = {
        {"999999999999999999", true, 999999999999999999LL},
        {"-999999999999999999", true, -999999999999999999LL},
        {"9223372036854775807", true, INT64_MAX},
        {"9223372036854775808", false, 0},
        {"-9223372036854775808", true, INT64_MIN},
        {"-9223372036854775809", false, 0},
        {"9999999999999999999", false, 0},
        {"10000000000000000000", false, 0},
        {"0000000000000000000000012", true, 12},
        {"-0000000000000000000009223372036854775808", true, INT64_MIN},
        {"+0009223372036854775807", true, INT64_MAX},
        {"1\xb2", false, 0},
        {"\xb1", false, 0},
        {"12a", false, 0},
        {"1 ", false, 0},
        {"+", false, 0},
        {"--1", false, 0},
        {"0", true, 0},
        {"-0", true, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = 42;
        rmq_err_t err = proto_ext_parse_int(cases[i].text, &v);
        cr_assert_eq(err, cases[i].ok ? RMQ_OK : RMQ_ERR_MALFORMED, "%s", cases[i].text);
        if (cases[i].ok) cr_assert_eq(v, cases[i].v, "%s", cases[i].text);
    }
}

/* Many distinct keys (past the pairwise check's limit) keep their order in both header
 * forms, whichever way repeats are ruled out; one repeat at the end is still found. */
Test(frame, many_distinct_ext_keys_keep_order) {
    static const size_t counts[] = {2, 31, 32, 33, 48, 64, 65, 100};
    char keys[101][8];
    for (size_t i = 0; i < 101; i++) { /* lengths 1-3, varied bytes, all distinct */
        snprintf(keys[i], sizeof keys[i], "%c%.*s", (char)('#' + i % 90), (int)(i / 90 + i % 3),
                 "zyx");
        for (size_t j = 0; j < i; j++)
            cr_assert_str_neq(keys[i], keys[j]);
    }
    cm_buf_t json = CM_BUF_INIT, bin = CM_BUF_INIT, hdr = CM_BUF_INIT, frame = CM_BUF_INIT;
    for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
        for (int repeat = 0; repeat < 2; repeat++) {
            size_t n = counts[ci];
            json.len = bin.len = 0;
            cm_buf_append_str(&json, "{\"extFields\":{");
            for (size_t i = 0; i <= n; i++) {
                if (i == n && !repeat) break;
                const char *k = keys[i == n ? 0 : i];
                char val[16];
                snprintf(val, sizeof val, i == n ? "last" : "%zu", i);
                if (i) cm_buf_put8(&json, ',');
                proto_json_put_str(&json, k, strlen(k));
                cm_buf_put8(&json, ':');
                proto_json_put_str(&json, val, strlen(val));
                cm_buf_put16(&bin, (uint16_t)strlen(k));
                cm_buf_append_str(&bin, k);
                cm_buf_put32(&bin, (uint32_t)strlen(val));
                cm_buf_append_str(&bin, val);
            }
            cm_buf_append_str(&json, "}}");
            for (int ser = 0; ser < 2; ser++) {
                hdr.len = 0;
                if (ser == PROTO_SER_JSON) {
                    cm_buf_append(&hdr, json.data, json.len);
                } else {
                    cm_buf_put16(&hdr, 310);
                    cm_buf_put8(&hdr, 0);
                    cm_buf_put16(&hdr, 409);
                    cm_buf_put32(&hdr, 1);
                    cm_buf_put32(&hdr, 0);
                    cm_buf_put32(&hdr, 0);
                    cm_buf_put32(&hdr, (uint32_t)bin.len);
                    cm_buf_append(&hdr, bin.data, bin.len);
                }
                make_frame(&frame, (uint8_t)ser, hdr.data, hdr.len, NULL, 0);
                proto_cmd_t back;
                cr_assert_eq(decode_exact(frame.data, frame.len, 0, &back), RMQ_OK);
                cr_assert_eq(back.ext.count, n, "n %zu ser %d", n, ser);
                for (size_t i = 0; i < n; i++) {
                    char val[16];
                    snprintf(val, sizeof val, repeat && i == 0 ? "last" : "%zu", i);
                    cr_assert_str_eq(back.ext.keys[i], keys[i], "n %zu ser %d", n, ser);
                    cr_assert_str_eq(back.ext.vals[i], val, "n %zu ser %d", n, ser);
                }
                assert_lens(&back.ext);
                proto_cmd_free(&back);
            }
        }
    }
    cm_buf_free(&json);
    cm_buf_free(&bin);
    cm_buf_free(&hdr);
    cm_buf_free(&frame);
}

/* Header numbers: the fast path ("code") and the general parser (the same key escaped, which
 * the fast path leaves alone) agree on every shape of number, accepted or not. */
Test(frame, json_header_numbers_fast_and_general_agree) {
    static const char *const nums[] = {
        "0",
        "-0",
        "7",
        "310",
        "2147483647",
        "-2147483648",
        "2147483648",
        "-2147483649",
        "4294967296",
        "12345678901",
        "99999999999",
        "01",
        "-01",
        "00",
        "1e2",
        "1E2",
        "1.0",
        "0.5",
        "-",
        "+1",
        "1.",
        "1e",
        "123456789012345678901",
        "2147483647 ",
        " 12",
        "\t-5\n",
        "1x",
        "true",
        "null",
        "\"1\"",
        "1-",
        "0x10",
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        char fast_hdr[96], general_hdr[96];
        snprintf(fast_hdr, sizeof fast_hdr, "{\"code\":%s,\"flag\":1}", nums[i]);
        snprintf(general_hdr, sizeof general_hdr, "{\"\\u0063ode\":%s,\"flag\":1}", nums[i]);
        proto_cmd_t f, g;
        rmq_err_t fe = decode_json_header(fast_hdr, &f), ge = decode_json_header(general_hdr, &g);
        cr_assert_eq(fe, ge, "%s", nums[i]);
        if (fe != RMQ_OK) continue;
        cr_assert_eq(f.code, g.code, "%s", nums[i]);
        cr_assert_eq(f.flag, 1);
        proto_cmd_free(&f);
        proto_cmd_free(&g);
    }
}
