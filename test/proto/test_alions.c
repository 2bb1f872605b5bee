/* Frames captured from ali-ons, the Node.js RocketMQ client the interop tests drive: each
 * decodes to what its index.json says, and the requests librmq must serve carry the fields
 * the Java broker relies on. The directory is ALIONS_FRAMES (default $TEST_DATA/ali-ons);
 * a missing directory fails the test unless ALIONS_OPTIONAL=1. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "proto/proto.h"

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

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    cr_assert_geq(n, 0);
    rewind(f);
    uint8_t *b = cm_malloc(n ? (size_t)n : 1);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

typedef struct captures {
    char *dir;
    proto_json_t *index;
} captures_t;

static void captures_load(captures_t *cap) {
    cap->dir = frames_dir();
    char *path = cm_sprintf("%s/index.json", cap->dir);
    size_t len;
    uint8_t *text = read_file(path, &len);
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
    uint8_t *b = read_file(path, file_len);
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

static void assert_ext_present(const proto_cmd_t *c, const char *key) {
    const char *v = proto_ext_get(&c->ext, key);
    cr_assert_not_null(v, "code %d: ext %s missing", c->code, key);
    cr_assert_gt(strlen(v), 0, "code %d: ext %s empty", c->code, key);
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

Test(alions, send_message_v2) {
    captures_t cap;
    captures_load(&cap);
    proto_cmd_t cmds[8];
    size_t n = requests_with_code(&cap, PROTO_SEND_MESSAGE_V2, cmds, 8);
    for (size_t i = 0; i < n; i++) {
        const proto_cmd_t *c = &cmds[i];
        assert_ext_present(c, "a"); /* producerGroup */
        assert_ext_present(c, "b"); /* topic */
        assert_ext_present(c, "c"); /* defaultTopic */
        cr_assert_gt(ext_int(c, "d"), 0);
        cr_assert_geq(ext_int(c, "e"), 0);
        ext_int(c, "f");
        cr_assert_gt(ext_int(c, "g"), 1000000000000LL); /* bornTimestamp in ms */
        ext_int(c, "h");
        const char *props = proto_ext_get(&c->ext, "i");
        cr_assert_not_null(props);
        proto_props_t p;
        cr_assert_eq(proto_props_parse(props, strlen(props), &p), RMQ_OK);
        const char *uniq = proto_props_get(&p, PROP_UNIQ_KEY);
        cr_assert_not_null(uniq, "send without UNIQ_KEY");
        cr_assert(strlen(uniq) == 32 || strlen(uniq) == 56, "UNIQ_KEY %s", uniq);
        cr_assert_not_null(proto_props_get(&p, PROP_TAGS), "send without TAGS");
        proto_props_free(&p);
    }
    free_cmds(cmds, n);
    captures_free(&cap);
}

Test(alions, heart_beat_with_subscription) {
    captures_t cap;
    captures_load(&cap);
    proto_cmd_t cmds[16];
    size_t n = requests_with_code(&cap, PROTO_HEART_BEAT, cmds, 16);
    size_t with_sub = 0;
    for (size_t i = 0; i < n; i++) {
        proto_json_t *h;
        cr_assert_eq(proto_json_parse((char *)cmds[i].body, cmds[i].body_len, &h), RMQ_OK);
        cr_assert_not_null(proto_json_get_str(h, "clientID", NULL));
        const proto_json_t *cons = proto_json_get(h, "consumerDataSet");
        cr_assert_not_null(cons);
        cr_assert_eq(cons->type, PJ_ARRAY);
        for (size_t k = 0; k < cons->len; k++) {
            cr_assert_not_null(proto_json_get_str(cons->items[k], "groupName", NULL));
            const proto_json_t *subs = proto_json_get(cons->items[k], "subscriptionDataSet");
            if (!subs || subs->type != PJ_ARRAY || subs->len == 0) continue;
            cr_assert_not_null(proto_json_get_str(subs->items[0], "topic", NULL));
            cr_assert_not_null(proto_json_get_str(subs->items[0], "subString", NULL));
            with_sub++;
        }
        proto_json_free(h);
    }
    cr_assert_gt(with_sub, 0, "no heartbeat carries a consumer subscription");
    free_cmds(cmds, n);
    captures_free(&cap);
}

Test(alions, route_and_pull) {
    captures_t cap;
    captures_load(&cap);
    proto_cmd_t cmds[8];
    size_t n = requests_with_code(&cap, PROTO_GET_ROUTEINFO_BY_TOPIC, cmds, 8);
    for (size_t i = 0; i < n; i++)
        assert_ext_present(&cmds[i], "topic");
    free_cmds(cmds, n);

    n = requests_with_code(&cap, PROTO_PULL_MESSAGE, cmds, 8);
    for (size_t i = 0; i < n; i++) {
        const proto_cmd_t *c = &cmds[i];
        assert_ext_present(c, "consumerGroup");
        assert_ext_present(c, "topic");
        cr_assert_geq(ext_int(c, "queueId"), 0);
        cr_assert_geq(ext_int(c, "queueOffset"), 0);
        cr_assert_gt(ext_int(c, "maxMsgNums"), 0);
        ext_int(c, "sysFlag");
    }
    free_cmds(cmds, n);
    captures_free(&cap);
}
