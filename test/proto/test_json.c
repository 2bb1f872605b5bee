/* JSON reader/writer: the shapes Java's fastjson writes (remoting.md §6, store config files
 * from the Java 4.9.8 store), round trips through proto_json_write, and refused input. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "proto/proto.h"

/* Parses from an exactly-sized heap copy so ASan flags any read past len. */
static rmq_err_t parse(const char *text, proto_json_t **out) {
    size_t n = strlen(text);
    char *copy = cm_malloc(n ? n : 1);
    memcpy(copy, text, n);
    rmq_err_t err = proto_json_parse(copy, n, out);
    cm_free(copy);
    return err;
}

static proto_json_t *parse_ok(const char *text) {
    proto_json_t *v = NULL;
    cr_assert_eq(parse(text, &v), RMQ_OK, "%s", text);
    cr_assert_not_null(v);
    return v;
}

static char *write_str(const proto_json_t *v) {
    cm_buf_t b = CM_BUF_INIT;
    proto_json_write(&b, v);
    return cm_buf_take_str(&b);
}

/* Reads a file of the Java store (store.tar.gz in the golden data). */
static char *store_file(const char *name, size_t *len) {
    const char *data = getenv("TEST_DATA");
    cr_assert_not_null(data, "TEST_DATA not set");
    char *cmd =
        cm_sprintf("tar xzf '%s/rocketmq-4.9.8/store.tar.gz' -O store/config/%s", data, name);
    FILE *p = popen(cmd, "r");
    cm_free(cmd);
    cr_assert_not_null(p);
    cm_buf_t b = CM_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        cm_buf_append(&b, chunk, n);
    cr_assert_eq(pclose(p), 0, "tar failed for %s", name);
    cr_assert_gt(b.len, 0);
    *len = b.len;
    return cm_buf_take_str(&b);
}

Test(json, scalars) {
    proto_json_t *v = parse_ok("  -12.5e1 ");
    cr_assert_eq(v->type, PJ_NUMBER);
    cr_assert_eq(v->d, -125.0);
    cr_assert_eq(v->i, -125);
    proto_json_free(v);
    v = parse_ok("9223372036854775807");
    cr_assert_eq(v->i, INT64_MAX);
    proto_json_free(v);
    v = parse_ok("-9223372036854775808");
    cr_assert_eq(v->i, INT64_MIN);
    proto_json_free(v);
    v = parse_ok("1795579032190");
    cr_assert_eq(v->i, 1795579032190LL);
    proto_json_free(v);
    v = parse_ok("1.9");
    cr_assert_eq(v->i, 1);
    proto_json_free(v);
    v = parse_ok("true");
    cr_assert_eq(v->type, PJ_BOOL);
    cr_assert(v->b);
    proto_json_free(v);
    v = parse_ok("null");
    cr_assert_eq(v->type, PJ_NULL);
    proto_json_free(v);
}

Test(json, strings_and_escapes) {
    proto_json_t *v =
        parse_ok("\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0001\\u00e9\\u20AC\\ud83d\\ude00\"");
    cr_assert_eq(v->type, PJ_STRING);
    const char want[] = "a\"\\/\b\f\n\r\t\x01\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    cr_assert_eq(v->len, sizeof want - 1);
    cr_assert_eq(memcmp(v->s, want, v->len), 0);
    proto_json_free(v);
    /* \u0000 is kept: len counts past the NUL. */
    v = parse_ok("\"a\\u0000b\"");
    cr_assert_eq(v->len, 3);
    cr_assert_eq(memcmp(v->s, "a\0b", 3), 0);
    proto_json_free(v);
    /* Raw UTF-8 passes through. */
    v = parse_ok("\"caf\xc3\xa9\"");
    cr_assert_str_eq(v->s, "caf\xc3\xa9");
    proto_json_free(v);
}

Test(json, java_remoting_shapes) {
    /* TopicRouteData as a < 4.9.4 name server writes it: unquoted integer keys. */
    proto_json_t *v = parse_ok(
        "{\"brokerDatas\":[{\"brokerAddrs\":{0:\"127.0.0.1:10911\",1:\"127.0.0.1:10921\"},"
        "\"brokerName\":\"broker-a\",\"cluster\":\"DefaultCluster\"}],\"filterServerTable\":{},"
        "\"queueDatas\":[{\"brokerName\":\"broker-a\",\"perm\":6,\"readQueueNums\":4,"
        "\"topicSysFlag\":0,\"writeQueueNums\":4}]}");
    const proto_json_t *bd = proto_json_get(v, "brokerDatas");
    cr_assert_eq(bd->type, PJ_ARRAY);
    cr_assert_eq(bd->len, 1);
    const proto_json_t *addrs = proto_json_get(bd->items[0], "brokerAddrs");
    cr_assert_eq(addrs->keys[0]->type, PJ_NUMBER);
    cr_assert_str_eq(proto_json_get_str(addrs, "0", NULL), "127.0.0.1:10911");
    cr_assert_str_eq(proto_json_get_str(addrs, "1", NULL), "127.0.0.1:10921");
    cr_assert_null(proto_json_get(addrs, "2"));
    const proto_json_t *qd = proto_json_get(v, "queueDatas")->items[0];
    cr_assert_eq(proto_json_get_int(qd, "perm", -1), 6);
    cr_assert_eq(proto_json_get_int(qd, "brokerName", -1), -1); /* another type: default */
    cr_assert_str_eq(proto_json_get_str(qd, "perm", "dflt"), "dflt");
    cr_assert_eq(proto_json_get_bool(qd, "perm", true), true);
    char *s = write_str(v);
    cr_assert(strstr(s, "{0:\"127.0.0.1:10911\",1:\"127.0.0.1:10921\"}") != NULL, "%s", s);
    cm_free(s);
    proto_json_free(v);

    /* Client offsets.json: a Map<MessageQueue, AtomicLong>, objects as keys. */
    v = parse_ok("{\"offsetTable\":{{\"brokerName\":\"b\",\"queueId\":0,\"topic\":\"T\"}:12,"
                 "{\"topic\":\"T\",\"queueId\":1,\"brokerName\":\"b\"}:34}}");
    const proto_json_t *t = proto_json_get(v, "offsetTable");
    cr_assert_eq(t->len, 2);
    cr_assert_eq(t->keys[0]->type, PJ_OBJECT);
    cr_assert_eq(proto_json_get_int(t->keys[1], "queueId", -1), 1);
    cr_assert_str_eq(proto_json_get_str(t->keys[1], "brokerName", NULL), "b");
    cr_assert_eq(t->items[1]->i, 34);
    s = write_str(v);
    cr_assert_str_eq(s, "{\"offsetTable\":{{\"brokerName\":\"b\",\"queueId\":0,\"topic\":\"T\"}:12,"
                        "{\"topic\":\"T\",\"queueId\":1,\"brokerName\":\"b\"}:34}}");
    cm_free(s);
    proto_json_free(v);

    /* HeartbeatData, keys in any order; the last duplicate wins as in a Java map. */
    v = parse_ok("{\"producerDataSet\":[{\"groupName\":\"pg\"}],\"clientID\":\"x\","
                 "\"consumerDataSet\":[{\"subscriptionDataSet\":[{\"subVersion\":1795579032190,"
                 "\"classFilterMode\":false,\"codeSet\":[65],\"tagsSet\":[\"A\"]}]}],"
                 "\"clientID\":\"192.0.2.2@c1\"}");
    cr_assert_str_eq(proto_json_get_str(v, "clientID", NULL), "192.0.2.2@c1");
    const proto_json_t *sub =
        proto_json_get(proto_json_get(v, "consumerDataSet")->items[0], "subscriptionDataSet")
            ->items[0];
    cr_assert_eq(proto_json_get_int(sub, "subVersion", 0), 1795579032190LL);
    cr_assert_eq(proto_json_get_bool(sub, "classFilterMode", true), false);
    cr_assert_eq(proto_json_get(sub, "codeSet")->items[0]->i, 65);
    proto_json_free(v);

    /* Negative bare keys and quoted/bare mixes. */
    v = parse_ok("{-1:\"m\",\"2\":\"q\"}");
    cr_assert_str_eq(proto_json_get_str(v, "-1", NULL), "m");
    cr_assert_str_eq(proto_json_get_str(v, "2", NULL), "q");
    proto_json_free(v);
}

Test(json, java_store_consumer_offset) {
    size_t len;
    char *text = store_file("consumerOffset.json", &len);
    proto_json_t *v = NULL;
    cr_assert_eq(proto_json_parse(text, len, &v), RMQ_OK);
    const proto_json_t *t = proto_json_get(v, "offsetTable");
    cr_assert_eq(t->type, PJ_OBJECT);
    cr_assert_eq(t->len, 13);
    const proto_json_t *q = proto_json_get(t, "IopTopic29930@icg29930");
    cr_assert_eq(q->len, 4);
    cr_assert_eq(q->keys[3]->type, PJ_NUMBER);
    cr_assert_eq(proto_json_get_int(q, "0", -1), 75);
    cr_assert_eq(proto_json_get_int(q, "3", -1), 124);
    cr_assert_eq(proto_json_get_int(proto_json_get(t, "%RETRY%irg29930@irg29930"), "0", -1), 5);

    /* Written back (standard form apart from the bare keys), it parses to the same text. */
    char *s = write_str(v);
    cr_assert(strstr(s, "\"IopTopic29930@icg29930\":{0:75,1:76,2:75,3:124}") != NULL, "%s", s);
    proto_json_t *again = parse_ok(s);
    char *s2 = write_str(again);
    cr_assert_str_eq(s, s2);
    cm_free(s2);
    cm_free(s);
    proto_json_free(again);
    proto_json_free(v);
    cm_free(text);

    text = store_file("delayOffset.json", &len);
    cr_assert_eq(proto_json_parse(text, len, &v), RMQ_OK);
    cr_assert_eq(proto_json_get_int(proto_json_get(v, "offsetTable"), "2", -1), 10);
    proto_json_free(v);
    cm_free(text);
}

Test(json, java_store_topics) {
    size_t len;
    char *text = store_file("topics.json", &len);
    proto_json_t *v = NULL;
    cr_assert_eq(proto_json_parse(text, len, &v), RMQ_OK);
    const proto_json_t *dv = proto_json_get(v, "dataVersion");
    cr_assert_eq(proto_json_get_int(dv, "counter", -1), 14);
    cr_assert_eq(proto_json_get_int(dv, "timestamp", -1), 1795579089848LL);
    const proto_json_t *tt = proto_json_get(v, "topicConfigTable");
    const proto_json_t *sched = proto_json_get(tt, "SCHEDULE_TOPIC_XXXX");
    cr_assert_eq(proto_json_get_int(sched, "readQueueNums", -1), 18);
    cr_assert_str_eq(proto_json_get_str(sched, "topicFilterType", NULL), "SINGLE_TAG");
    cr_assert_eq(proto_json_get_bool(sched, "order", true), false);
    /* The auto-created topic: perm 6, 4 queues (README of the golden data). */
    const proto_json_t *t = proto_json_get(tt, "IopTopic29930");
    cr_assert_not_null(t);
    cr_assert_eq(proto_json_get_int(t, "perm", -1), 6);
    cr_assert_eq(proto_json_get_int(t, "writeQueueNums", -1), 4);

    char *s = write_str(v);
    proto_json_t *again = parse_ok(s);
    char *s2 = write_str(again);
    cr_assert_str_eq(s, s2);
    cr_assert_eq(proto_json_get(again, "topicConfigTable")->len, tt->len);
    cm_free(s2);
    cm_free(s);
    proto_json_free(again);
    proto_json_free(v);
    cm_free(text);
}

Test(json, write_round_trip) {
    const char *texts[] = {
        "{\"a\":[1,-2,3.25,true,false,null,\"x\\\"y\\\\z\\n\\u0001\"],\"b\":{},\"c\":[]}",
        "[{\"k\":{0:\"v\"}},{{\"q\":1}:2}]",
        "\"\xe2\x82\xac\\u0000\"",
        "-0.5",
        "1e-300",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        proto_json_t *v = parse_ok(texts[i]);
        char *s = write_str(v);
        proto_json_t *w = parse_ok(s);
        char *s2 = write_str(w);
        cr_assert_str_eq(s, s2);
        cm_free(s);
        cm_free(s2);
        proto_json_free(v);
        proto_json_free(w);
    }
    proto_json_t *v = parse_ok(texts[0]);
    char *s = write_str(v);
    cr_assert_str_eq(s, texts[0]);
    cm_free(s);
    proto_json_free(v);
}

Test(json, put_str_escapes) {
    cm_buf_t b = CM_BUF_INIT;
    proto_json_put_str(&b, "a\"b\\c\x01\x1f\n\xc3\xa9\0z", 12);
    char *s = cm_buf_take_str(&b);
    cr_assert_str_eq(s, "\"a\\\"b\\\\c\\u0001\\u001f\\n\xc3\xa9\\u0000z\"");
    cm_free(s);
}

static void nested(cm_buf_t *b, int depth, char open, char close) {
    for (int i = 0; i < depth; i++)
        cm_buf_put8(b, (uint8_t)open);
    for (int i = 0; i < depth; i++)
        cm_buf_put8(b, (uint8_t)close);
    cm_buf_put8(b, 0);
}

Test(json, depth_limit) {
    cm_buf_t b = CM_BUF_INIT;
    proto_json_t *v;
    nested(&b, 64, '[', ']');
    cr_assert_eq(parse((char *)b.data, &v), RMQ_OK);
    proto_json_free(v);
    b.len = 0;
    nested(&b, 65, '[', ']');
    cr_assert_eq(parse((char *)b.data, &v), RMQ_ERR_BAD_JSON);
    cr_assert_null(v);
    /* Nesting through object keys counts too: {{..{}:1}..:1}. */
    for (int depth = 64; depth <= 65; depth++) {
        b.len = 0;
        for (int i = 0; i < depth; i++)
            cm_buf_put8(&b, '{');
        cm_buf_put8(&b, '}');
        for (int i = 1; i < depth; i++)
            cm_buf_append_str(&b, ":1}");
        cm_buf_put8(&b, 0);
        cr_assert_eq(parse((char *)b.data, &v), depth == 64 ? RMQ_OK : RMQ_ERR_BAD_JSON);
        proto_json_free(v);
    }
    b.len = 0;
    nested(&b, 100000, '[', ']');
    cr_assert_eq(parse((char *)b.data, &v), RMQ_ERR_BAD_JSON);
    cm_buf_free(&b);
}

Test(json, bad_input) {
    const char *bad[] = {
        "\"unterminated",
        "\"bad escape \\x\"",
        "\"short \\u12\"",
        "\"bad hex \\u12G4\"",
        "\"lone high \\ud83d\"",
        "\"lone high then text \\ud83dx\"",
        "\"high + high \\ud83d\\ud83d\"",
        "\"lone low \\ude00\"",
        "\"raw\ncontrol\"",
        "[1,2,]",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{\"a\":}",
        "[1 2]",
        "NaN",
        "[NaN]",
        "Infinity",
        "-Infinity",
        "+1",
        "01",
        "1.",
        ".5",
        "1e",
        "-",
        "1e999",
        "tru",
        "nul",
        "{} {}",
        "[] x",
        "",
        "   ",
        "{",
        "[",
        "{\"a\":1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        proto_json_t *v = (proto_json_t *)1;
        cr_assert_eq(parse(bad[i], &v), RMQ_ERR_BAD_JSON, "accepted: %s", bad[i]);
        cr_assert_null(v);
    }
    /* Length-bounded: the text after len is never looked at. */
    proto_json_t *v;
    cr_assert_eq(proto_json_parse("[1]garbage", 3, &v), RMQ_OK);
    proto_json_free(v);
    cr_assert_eq(proto_json_parse("\"abc\"", 4, &v), RMQ_ERR_BAD_JSON);
    cr_assert_eq(proto_json_parse("{\"a\":1}\n\t \r", 11, &v), RMQ_OK);
    proto_json_free(v);
}

/* A byte-at-a-time reference for proto_json_put_str. */
static void put_str_reference(cm_buf_t *b, const uint8_t *s, size_t len) {
    cm_buf_put8(b, '"');
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s[i];
        const char *e = c == '"'    ? "\\\""
                        : c == '\\' ? "\\\\"
                        : c == '\b' ? "\\b"
                        : c == '\f' ? "\\f"
                        : c == '\n' ? "\\n"
                        : c == '\r' ? "\\r"
                        : c == '\t' ? "\\t"
                                    : NULL;
        if (e)
            cm_buf_append_str(b, e);
        else if (c < 0x20)
            cm_buf_printf(b, "\\u%04x", c);
        else
            cm_buf_put8(b, c);
    }
    cm_buf_put8(b, '"');
}

/* Strings of every length to 40 with each byte that needs an escape (and some that do not)
 * at every position, written into buffers with no room, a little room and plenty: the same
 * text as the reference, and nothing written past it. */
Test(json, put_str_every_length_position_and_room) {
    uint8_t specials[40];
    size_t ns = 0;
    for (int c = 0; c < 0x20; c++)
        specials[ns++] = (uint8_t)c;
    specials[ns++] = '"';
    specials[ns++] = '\\';
    specials[ns++] = '/';
    specials[ns++] = 0x7f;
    specials[ns++] = 0x80;
    specials[ns++] = 0xff;
    uint8_t s[48];
    cm_buf_t want = CM_BUF_INIT;
    for (size_t len = 1; len <= 40; len++) {
        for (size_t pos = 0; pos < len; pos++) {
            for (size_t k = 0; k < ns; k++) {
                for (size_t i = 0; i < len; i++)
                    s[i] = (uint8_t)('a' + i % 26);
                s[pos] = specials[k];
                if (k % 2 && len > 2) s[len - 1] = '\n'; /* a second escape, at the end */
                want.len = 0;
                put_str_reference(&want, s, len);
                for (size_t room = 0; room < 24; room += 5) {
                    cm_buf_t b = CM_BUF_INIT;
                    cm_buf_reserve(&b, 64);
                    b.len = b.cap - room; /* bytes before the string, then room bytes */
                    memset(b.data, '#', b.len);
                    size_t before = b.len;
                    proto_json_put_str(&b, (const char *)s, len);
                    cr_assert_eq(b.len - before, want.len, "len %zu pos %zu byte %02x", len, pos,
                                 specials[k]);
                    cr_assert_eq(memcmp(b.data + before, want.data, want.len), 0,
                                 "len %zu pos %zu byte %02x", len, pos, specials[k]);
                    for (size_t i = 0; i < before; i++)
                        cr_assert_eq(b.data[i], '#');
                    cm_buf_free(&b);
                }
            }
        }
    }
    cm_buf_t b = CM_BUF_INIT;
    proto_json_put_str(&b, "", 0); /* from an empty buffer */
    cr_assert_eq(b.len, 2);
    cr_assert_eq(memcmp(b.data, "\"\"", 2), 0);
    cm_buf_free(&b);
    cm_buf_free(&want);
}
