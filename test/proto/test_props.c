/* Message properties (message.md §3): parse, encode, find, the Java reader's leniency. */
#include <criterion/criterion.h>

#include "proto/proto.h"

Test(props, parse_with_and_without_trailing_separator) {
    const char with[] = "KEYS\x01k-s0\x02UNIQ_KEY\x01" "FD00\x02WAIT\x01true\x02TAGS\x01" "A\x02";
    proto_props_t p;
    cr_assert_eq(proto_props_parse(with, sizeof with - 1, &p), RMQ_OK);
    cr_assert_eq(p.count, 4);
    cr_assert_str_eq(proto_props_get(&p, "TAGS"), "A");
    cr_assert_str_eq(proto_props_get(&p, "KEYS"), "k-s0");
    proto_props_free(&p);
    cr_assert_eq(proto_props_parse(with, sizeof with - 2, &p), RMQ_OK);
    cr_assert_eq(p.count, 4);
    cr_assert_str_eq(proto_props_get(&p, "TAGS"), "A");
    proto_props_free(&p);
}

Test(props, duplicates_last_wins_and_empty_pairs_skipped) {
    const char s[] = "WAIT\x01true\x02TAGS\x01" "A\x02\x02" "E\x01\x02\x01v\x02WAIT\x01" "false";
    proto_props_t p;
    cr_assert_eq(proto_props_parse(s, sizeof s - 1, &p), RMQ_OK);
    cr_assert_eq(p.count, 2);
    cr_assert_str_eq(proto_props_get(&p, "WAIT"), "false");
    const char *v;
    size_t vl;
    cr_assert(proto_props_find(s, sizeof s - 1, "WAIT", &v, &vl));
    cr_assert_eq(vl, 5);
    cr_assert_eq(memcmp(v, "false", 5), 0);
    cr_assert_not(proto_props_find(s, sizeof s - 1, "KEYS", &v, &vl));
    proto_props_free(&p);
}

Test(props, malformed_is_an_error) {
    proto_props_t p;
    cr_assert_eq(proto_props_parse("novalue", 7, &p), RMQ_ERR_BAD_PROPERTIES);
    cr_assert_eq(proto_props_parse("a\x01\xff\xfe", 4, &p), RMQ_ERR_BAD_PROPERTIES);
    cr_assert_eq(proto_props_parse("a\x01\xc3", 3, &p), RMQ_ERR_BAD_PROPERTIES);
    cr_assert_eq(proto_props_parse("a\x01" "b\x00" "c", 5, &p), RMQ_ERR_BAD_PROPERTIES);
}

Test(props, encode_round_trip) {
    proto_props_t p = {0}, q;
    proto_props_set(&p, "TAGS", "A");
    proto_props_set(&p, "KEYS", "k1 k2");
    proto_props_set(&p, "x", "\xc3\xa9");
    cm_buf_t b = CM_BUF_INIT;
    proto_props_encode(&p, &b);
    cr_assert_eq(b.len, strlen("TAGS\x01" "A\x02KEYS\x01k1 k2\x02x\x01\xc3\xa9"));
    cr_assert_eq(proto_props_parse((char *)b.data, b.len, &q), RMQ_OK);
    cr_assert_eq(q.count, 3);
    cr_assert_str_eq(proto_props_get(&q, "x"), "\xc3\xa9");
    proto_props_set(&q, "KEYS", NULL);
    cr_assert_eq(q.count, 2);
    cr_assert_null(proto_props_get(&q, "KEYS"));
    cr_assert_str_eq(proto_props_get(&q, "x"), "\xc3\xa9");
    proto_props_free(&p);
    proto_props_free(&q);
    cm_buf_free(&b);
}

/* Parsed and copied properties live in one pooled block; setting, replacing and removing
 * pairs afterwards mixes pooled and separately allocated texts (valgrind/ASan check that
 * each is freed exactly once). Order: first place, last value. */
Test(props, pooled_pairs_changed_after_parse_and_copy) {
    const char s[] = "TAGS\x01"
                     "A\x02KEYS\x01k1\x02TAGS\x01"
                     "B\x02WAIT\x01true";
    proto_props_t p, q;
    cr_assert_eq(proto_props_parse(s, sizeof s - 1, &p), RMQ_OK);
    cr_assert_eq(p.count, 3);
    cr_assert_str_eq(p.names[0], "TAGS");
    cr_assert_str_eq(p.vals[0], "B");
    proto_props_set(&p, "KEYS", "k2");     /* replaces a pooled value */
    proto_props_set(&p, "WAIT", NULL);     /* removes a pooled pair */
    proto_props_set(&p, "UNIQ_KEY", "FD"); /* adds an allocated pair */
    proto_props_set(&p, "UNIQ_KEY", "FE"); /* replaces an allocated value */
    cr_assert_eq(p.count, 3);
    cr_assert_str_eq(proto_props_get(&p, "KEYS"), "k2");
    cr_assert_null(proto_props_get(&p, "WAIT"));
    proto_props_copy(&q, &p);
    proto_props_free(&p);
    cr_assert_eq(q.count, 3);
    cr_assert_str_eq(q.names[2], "UNIQ_KEY");
    cr_assert_str_eq(proto_props_get(&q, "UNIQ_KEY"), "FE");
    proto_props_set(&q, "TAGS", NULL);
    proto_props_set(&q, "KEYS", "k3");
    cm_buf_t b = CM_BUF_INIT;
    proto_props_encode(&q, &b);
    const char want[] = "KEYS\x01k3\x02UNIQ_KEY\x01"
                        "FE";
    cr_assert_eq(b.len, sizeof want - 1);
    cr_assert_eq(memcmp(b.data, want, b.len), 0);
    cm_buf_free(&b);
    proto_props_free(&q);
    proto_props_t empty = {0}, e2;
    proto_props_copy(&e2, &empty);
    cr_assert_eq(e2.count, 0);
    proto_props_free(&e2);
}

/* A NUL inside a pair Java skips (empty name or value) does not matter; inside a kept pair
 * it does. */
Test(props, nul_only_refused_in_kept_pairs) {
    proto_props_t p;
    cr_assert_eq(proto_props_parse("\x01"
                                   "a\x00"
                                   "b\x02k\x01v",
                                   8, &p),
                 RMQ_OK);
    cr_assert_eq(p.count, 1);
    cr_assert_str_eq(proto_props_get(&p, "k"), "v");
    proto_props_free(&p);
    cr_assert_eq(proto_props_parse("k\x01v\x02x\x01y\x00", 8, &p), RMQ_ERR_BAD_PROPERTIES);
}

/* UTF-8 is checked wherever it sits relative to the eight-byte ASCII steps. */
Test(props, utf8_checked_at_every_offset) {
    for (size_t at = 0; at < 20; at++) {
        char text[64];
        memset(text, 'v', sizeof text);
        memcpy(text, "k\x01", 2);
        size_t len = 2 + at + 8;
        proto_props_t p;
        memcpy(text + 2 + at, "\xc3\xa9", 2); /* valid two-byte sequence */
        cr_assert_eq(proto_props_parse(text, len, &p), RMQ_OK, "at %zu", at);
        proto_props_free(&p);
        text[2 + at] = (char)0xff; /* never valid */
        cr_assert_eq(proto_props_parse(text, len, &p), RMQ_ERR_BAD_PROPERTIES, "at %zu", at);
        memcpy(text + 2 + at, "vv", 2);
        cr_assert_eq(proto_props_parse(text, len, &p), RMQ_OK, "at %zu", at);
        proto_props_free(&p);
        text[len - 1] = (char)0xc3; /* truncated at the end */
        cr_assert_eq(proto_props_parse(text, len, &p), RMQ_ERR_BAD_PROPERTIES, "at %zu", at);
    }
}

/* The pair iterator every reader of encoded properties uses: empty pairs skipped, a pair
 * without \1 reported with no value, empty names and values kept for the caller to judge. */
Test(props, next_walks_every_pair) {
    const char s[] = "A\x01"
                     "1\x02\x02"
                     "B\x01\x02\x01"
                     "v\x02novalue\x02"
                     "C\x01"
                     "3";
    size_t pos = 0;
    proto_prop_pair_t pp;
    const char *want_names[] = {"A", "B", "", "novalue", "C"};
    const char *want_vals[] = {"1", "", "v", NULL, "3"};
    for (int i = 0; i < 5; i++) {
        cr_assert(proto_props_next(s, sizeof s - 1, &pos, &pp), "pair %d", i);
        cr_assert_eq(pp.name_len, strlen(want_names[i]), "pair %d", i);
        cr_assert_eq(memcmp(pp.name, want_names[i], pp.name_len), 0, "pair %d", i);
        if (!want_vals[i]) {
            cr_assert_null(pp.val, "pair %d", i);
            continue;
        }
        cr_assert_not_null(pp.val, "pair %d", i);
        cr_assert_eq(pp.val_len, strlen(want_vals[i]), "pair %d", i);
        cr_assert_eq(memcmp(pp.val, want_vals[i], pp.val_len), 0, "pair %d", i);
    }
    cr_assert_not(proto_props_next(s, sizeof s - 1, &pos, &pp));
}

/* Written into caller memory with a default pair last when its name is absent (the
 * producer's WAIT=true), the length told first matching what is written. */
Test(props, write_with_a_default_pair) {
    proto_props_t p = {0};
    char out[64];
    cr_assert_eq(proto_props_encoded_len(&p, "WAIT", "true"), 9);
    cr_assert_eq(proto_props_write(&p, "WAIT", "true", out) - out, 9);
    cr_assert_str_eq(out, "WAIT\x01true");
    proto_props_set(&p, "TAGS", "A");
    cr_assert_eq(proto_props_encoded_len(&p, "WAIT", "true"), 16);
    cr_assert_eq(proto_props_write(&p, "WAIT", "true", out) - out, 16);
    cr_assert_str_eq(out, "TAGS\x01"
                          "A\x02WAIT\x01true");
    proto_props_set(&p, "WAIT", "false");
    cr_assert_eq(proto_props_encoded_len(&p, "WAIT", "true"), 17);
    proto_props_write(&p, "WAIT", "true", out);
    cr_assert_str_eq(out, "TAGS\x01"
                          "A\x02WAIT\x01"
                          "false");
    cr_assert_eq(proto_props_encoded_len(&p, NULL, NULL), 17);
    proto_props_free(&p);
}

/* Numbers in property values (TIMER_*, transaction offsets) as Java's Long.parseLong reads
 * them: a sign and 1-18 digits; anything else is refused, never half-read. */
Test(props, parse_long_as_java_does) {
    int64_t v = 0;
    cr_assert(proto_parse_long("1234", 4, &v));
    cr_assert_eq(v, 1234);
    cr_assert(proto_parse_long("-7", 2, &v));
    cr_assert_eq(v, -7);
    cr_assert(proto_parse_long("+999999999999999999", 19, &v));
    cr_assert_eq(v, 999999999999999999LL);
    cr_assert_not(proto_parse_long("", 0, &v));
    cr_assert_not(proto_parse_long("-", 1, &v));
    cr_assert_not(proto_parse_long("12a", 3, &v));
    cr_assert_not(proto_parse_long(" 12", 3, &v));
    cr_assert_not(proto_parse_long("1234567890123456789", 19, &v)); /* 19 digits */
}
