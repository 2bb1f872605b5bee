/* Frames captured from ali-ons, the Node.js RocketMQ client the interop tests drive: each
 * decodes to what its index.json says, and the requests librmq must serve carry the fields
 * the Java broker relies on. The directory is ALIONS_FRAMES (default $TEST_DATA/ali-ons);
 * a missing directory fails the test unless ALIONS_OPTIONAL=1. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "proto/proto.h"
#include "../testdata.h"

static const char *const lang_names[] = {"JAVA",   "CPP",  "DOTNET", "PYTHON", "DELPHI",
                                         "ERLANG", "RUBY", "OTHER",  "HTTP",   "GO",
                                         "PHP",    "OMS",  "RUST",   "NODE_JS"};

/* The capture directory, or NULL (after skipping) when it is optional and absent. */
static char *frames_dir(void) {
    const char *dir = getenv("ALIONS_FRAMES");
    char *path;
    if (dir && *dir) {
        path = cm_strdup(dir);
    } else {
        const char *data = getenv("TEST_DATA");
        cr_assert_not_null(data, "TEST_DATA not set");
        path = cm_sprintf("%s/ali-ons", data);
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        const char *opt = getenv("ALIONS_OPTIONAL");
        if (opt && strcmp(opt, "1") == 0) {
            cm_free(path);
            cr_skip_test("no ali-ons captures (ALIONS_OPTIONAL=1)");
        }
        cr_assert_fail("ali-ons capture directory %s is missing", path);
    }
    return path;
}

typedef struct captures {
    char *dir;
    proto_json_t *index;
} captures_t;

static void captures_load(captures_t *cap) {
    cap->dir = frames_dir();
    char *path = cm_sprintf("%s/index.json", cap->dir);
    size_t len;
    uint8_t *text = td_read_path(path, &len);
    cr_assert_eq(proto_json_parse((char *)text, len, &cap->index), RMQ_OK, "%s", path);
    cr_assert_eq(cap->index->type, PJ_ARRAY);
    cr_assert_gt(cap->index->len, 0, "%s lists no frames", path);
    cm_free(text);
    cm_free(path);
}

static void captures_free(captures_t *cap) {
    proto_json_free(cap->index);
    cm_free(cap->dir);
}

static rmq_err_t decode_entry(const captures_t *cap, const proto_json_t *e, proto_cmd_t *c,
                              size_t *file_len) {
    const char *file = proto_json_get_str(e, "file", NULL);
    cr_assert_not_null(file);
    char *path = cm_sprintf("%s/%s", cap->dir, file);
    uint8_t *b = td_read_path(path, file_len);
    rmq_err_t err = proto_frame_decode(b, *file_len, PROTO_MAX_FRAME, c);
    cm_free(b);
    cm_free(path);
    return err;
}

/* Decodes every request with this code into cmds (at most max); returns how many. */
static size_t requests_with_code(const captures_t *cap, int32_t code, proto_cmd_t *cmds,
                                 size_t max) {
    size_t n = 0, len;
    for (size_t i = 0; i < cap->index->len && n < max; i++) {
        const proto_json_t *e = cap->index->items[i];
        if (proto_json_get_int(e, "request_code", -1) != code ||
            (proto_json_get_int(e, "flag", 0) & PROTO_FLAG_RESPONSE))
            continue;
        cr_assert_eq(decode_entry(cap, e, &cmds[n], &len), RMQ_OK);
        cr_assert_eq(cmds[n].code, code);
        n++;
    }
    cr_assert_gt(n, 0, "no request with code %d captured", code);
    return n;
}

static void free_cmds(proto_cmd_t *cmds, size_t n) {
    for (size_t i = 0; i < n; i++)
        proto_cmd_free(&cmds[i]);
}

static int64_t ext_int(const proto_cmd_t *c, const char *key) {
    int64_t v;
    cr_assert_eq(proto_ext_get_int(&c->ext, key, &v), RMQ_OK, "code %d: ext %s", c->code, key);
    return v;
}

Test(alions, every_frame_matches_index) {
    captures_t cap;
    captures_load(&cap);
    for (size_t i = 0; i < cap.index->len; i++) {
        const proto_json_t *e = cap.index->items[i];
        const char *file = proto_json_get_str(e, "file", "?");
        proto_cmd_t c;
        size_t len;
        cr_assert_eq(decode_entry(&cap, e, &c, &len), RMQ_OK, "%s", file);
        cr_assert_eq(len, (size_t)proto_json_get_int(e, "frame_len", -1), "%s", file);
        cr_assert_eq(c.flag, proto_json_get_int(e, "flag", -1), "%s", file);
        if (!proto_cmd_is_response(&c))
            cr_assert_eq(c.code, proto_json_get_int(e, "request_code", -1), "%s", file);
        cr_assert_eq(c.opaque, proto_json_get_int(e, "opaque", -1), "%s", file);
        cr_assert_eq(c.body_len, (size_t)proto_json_get_int(e, "body_len", -1), "%s", file);
        const char *ser = proto_json_get_str(e, "serialize", "");
        cr_assert_eq(c.serialize,
                     strcmp(ser, "ROCKETMQ") == 0 ? PROTO_SER_ROCKETMQ : PROTO_SER_JSON, "%s",
                     file);
        const proto_json_t *lang = proto_json_get(e, "language");
        if (lang && lang->type == PJ_STRING) {
            cr_assert(c.language >= 0 && c.language < 14, "%s", file);
            cr_assert_str_eq(lang_names[c.language], lang->s, "%s", file);
        } else if (lang && lang->type == PJ_NUMBER) {
            cr_assert_eq(c.language, lang->i, "%s", file);
        }
        if (proto_json_get(e, "version"))
            cr_assert_eq(c.version, proto_json_get_int(e, "version", -1), "%s", file);

        /* Re-encoding in the same form and in binary keeps every field. */
        for (uint8_t s = 0; s <= 1; s++) {
            proto_cmd_t enc = c, back;
            cm_buf_t out = CM_BUF_INIT;
            enc.serialize = s;
            cr_assert_eq(proto_frame_encode(&enc, &out), RMQ_OK, "%s", file);
            cr_assert_eq(proto_frame_decode(out.data, out.len, 0, &back), RMQ_OK, "%s", file);
            cr_assert_eq(back.code, c.code);
            cr_assert_eq(back.opaque, c.opaque);
            cr_assert_eq(back.ext.count, c.ext.count, "%s", file);
            for (size_t k = 0; k < c.ext.count; k++)
                cr_assert_str_eq(back.ext.vals[k], c.ext.vals[k], "%s", file);
            cr_assert_eq(back.body_len, c.body_len);
            proto_cmd_free(&back);
            cm_buf_free(&out);
        }
        proto_cmd_free(&c);
    }
    captures_free(&cap);
}

static void assert_ext(const proto_cmd_t *c, const char *key, const char *want) {
    const char *v = proto_ext_get(&c->ext, key);
    cr_assert_not_null(v, "code %d: ext %s missing", c->code, key);
    cr_assert_str_eq(v, want, "code %d: ext %s", c->code, key);
}

/* ali-ons writes extFields values as JSON numbers and booleans ("d":4, "k":false): they
 * must read back as the text Java would have sent. */
Test(alions, send_message_v2) {
    captures_t cap;
    captures_load(&cap);
    proto_cmd_t cmds[8];
    size_t n = requests_with_code(&cap, PROTO_SEND_MESSAGE_V2, cmds, 8);
    for (size_t i = 0; i < n; i++) {
        const proto_cmd_t *c = &cmds[i];
        cr_assert_eq(c->version, 121); /* V3_4_9 */
        cr_assert_eq(c->language, PROTO_LANG_JAVA);
        assert_ext(c, "a", "PID_ali");
        assert_ext(c, "b", "IopTopic");
        assert_ext(c, "c", "TBW102");
        assert_ext(c, "d", "4");
        cr_assert(ext_int(c, "e") >= 0 && ext_int(c, "e") < 4);
        assert_ext(c, "f", "0");
        cr_assert_gt(ext_int(c, "g"), 1000000000000LL); /* bornTimestamp in ms */
        assert_ext(c, "h", "0");
        assert_ext(c, "j", "0");
        assert_ext(c, "k", "false");
        bool unit = true;
        cr_assert_eq(proto_ext_get_bool(&c->ext, "k", &unit), RMQ_OK);
        cr_assert_not(unit);
        /* Only a..k: no l, m, n. */
        cr_assert_eq(c->ext.count, 11);
        cr_assert_null(proto_ext_get(&c->ext, "n"));

        const char *props = proto_ext_get(&c->ext, "i");
        cr_assert_not_null(props);
        proto_props_t p;
        cr_assert_eq(proto_props_parse(props, strlen(props), &p), RMQ_OK);
        const char *tags = proto_props_get(&p, PROP_TAGS);
        cr_assert_not_null(tags, "send without TAGS");
        cr_assert(strcmp(tags, "TagA") == 0 || strcmp(tags, "TagB") == 0, "TAGS %s", tags);
        const char *keys = proto_props_get(&p, PROP_KEYS);
        cr_assert_not_null(keys);
        cr_assert(strncmp(keys, "key", 3) == 0, "KEYS %s", keys);
        /* ali-ons 3.12.0 sets no UNIQ_KEY (and ends the properties with \2): a broker must
         * not require one. */
        cr_assert_null(proto_props_get(&p, PROP_UNIQ_KEY));
        cr_assert_eq(props[strlen(props) - 1], PROTO_PROP_SEP);
        proto_props_free(&p);
        cr_assert_eq(c->body_len, 15);
        cr_assert_eq(memcmp(c->body, "hello ali-ons ", 14), 0);
    }
    free_cmds(cmds, n);
    captures_free(&cap);
}

Test(alions, heart_beat_with_subscription) {
    captures_t cap;
    captures_load(&cap);
    proto_cmd_t cmds[16];
    size_t n = requests_with_code(&cap, PROTO_HEART_BEAT, cmds, 16);
    for (size_t i = 0; i < n; i++) {
        cr_assert(cmds[i].has_ext); /* "extFields":{} */
        cr_assert_eq(cmds[i].ext.count, 0);
        proto_json_t *h;
        cr_assert_eq(proto_json_parse((char *)cmds[i].body, cmds[i].body_len, &h), RMQ_OK);
        const char *id = proto_json_get_str(h, "clientID", NULL);
        cr_assert_not_null(id);
        cr_assert(strncmp(id, "127.0.0.1@", 10) == 0, "clientID %s", id);
        const proto_json_t *cons = proto_json_get(h, "consumerDataSet");
        cr_assert_not_null(cons);
        cr_assert_eq(cons->type, PJ_ARRAY);
        cr_assert_eq(cons->len, 1);
        const proto_json_t *cd = cons->items[0];
        cr_assert_str_eq(proto_json_get_str(cd, "groupName", NULL), "GID_ali");
        cr_assert_str_eq(proto_json_get_str(cd, "consumeType", NULL), "CONSUME_PASSIVELY");
        cr_assert_str_eq(proto_json_get_str(cd, "messageModel", NULL), "CLUSTERING");
        const proto_json_t *subs = proto_json_get(cd, "subscriptionDataSet");
        cr_assert_eq(subs->len, 2); /* the topic and %RETRY%GID_ali */
        const proto_json_t *s0 = subs->items[0];
        cr_assert_str_eq(proto_json_get_str(s0, "topic", NULL), "IopTopic");
        cr_assert_str_eq(proto_json_get_str(s0, "subString", NULL), "TagA || TagB");
        cr_assert_null(proto_json_get(s0, "expressionType"));
        const proto_json_t *codes = proto_json_get(s0, "codeSet");
        cr_assert_eq(codes->len, 2);
        cr_assert_eq(codes->items[0]->i, cm_java_hash("TagA", 4));
        cr_assert_eq(codes->items[1]->i, cm_java_hash("TagB", 4));
        cr_assert_gt(proto_json_get_int(s0, "subVersion", 0), 1000000000000LL);
        cr_assert_str_eq(proto_json_get_str(subs->items[1], "topic", NULL), "%RETRY%GID_ali");
        cr_assert_str_eq(proto_json_get_str(subs->items[1], "subString", NULL), "*");
        const proto_json_t *prod = proto_json_get(h, "producerDataSet");
        cr_assert_str_eq(proto_json_get_str(prod->items[0], "groupName", NULL), "PID_ali");
        proto_json_free(h);
    }
    free_cmds(cmds, n);
    captures_free(&cap);
}

Test(alions, route_pull_and_offsets) {
    captures_t cap;
    captures_load(&cap);
    proto_cmd_t cmds[8];
    size_t n = requests_with_code(&cap, PROTO_GET_ROUTEINFO_BY_TOPIC, cmds, 8);
    for (size_t i = 0; i < n; i++) {
        assert_ext(&cmds[i], "topic", "IopTopic");
        /* version 121 and no acceptStandardJsonOnly: a 4.9.8 name server would answer with
         * unquoted brokerAddrs keys. */
        cr_assert_eq(cmds[i].version, 121);
        cr_assert_null(proto_ext_get(&cmds[i].ext, "acceptStandardJsonOnly"));
    }
    free_cmds(cmds, n);

    n = requests_with_code(&cap, PROTO_PULL_MESSAGE, cmds, 8);
    for (size_t i = 0; i < n; i++) {
        const proto_cmd_t *c = &cmds[i];
        assert_ext(c, "consumerGroup", "GID_ali");
        assert_ext(c, "topic", "IopTopic");
        cr_assert(ext_int(c, "queueId") >= 0 && ext_int(c, "queueId") < 4);
        cr_assert_eq(ext_int(c, "queueOffset"), 0);
        cr_assert_eq(ext_int(c, "maxMsgNums"), 32);
        cr_assert_eq(ext_int(c, "sysFlag"), 6); /* SUSPEND | SUBSCRIPTION */
        cr_assert_eq(ext_int(c, "suspendTimeoutMillis"), 15000);
        assert_ext(c, "subscription", "TagA || TagB");
        cr_assert_null(proto_ext_get(&c->ext, "expressionType"));
    }
    free_cmds(cmds, n);

    /* "Oneway" without the oneway flag, and commitOffset -1 for offset 0 (ali-ons bug). */
    n = requests_with_code(&cap, PROTO_UPDATE_CONSUMER_OFFSET, cmds, 8);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(cmds[i].flag, 0);
        cr_assert_eq(ext_int(&cmds[i], "commitOffset"), -1);
        assert_ext(&cmds[i], "consumerGroup", "GID_ali");
    }
    free_cmds(cmds, n);
    captures_free(&cap);
}
