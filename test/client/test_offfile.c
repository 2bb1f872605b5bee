/* lib/client offsets file of broadcasting consumers: Java's exact text both ways, tolerant and
 * strict decoding, the .bak fallback and the safe save. */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/offfile.h"

/* ---------------------------------------------------------------- helpers */

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    cm_buf_t b = CM_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        cm_buf_append(&b, chunk, n);
    fclose(f);
    if (len) *len = b.len;
    return cm_buf_take_str(&b);
}

static void spit(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

static char *sample_path(void) {
    const char *dir = getenv("TEST_DATA");
    cr_assert_not_null(dir, "TEST_DATA is set by meson");
    return cm_sprintf("%s/offsets/java-4.9.8-offsets.json", dir);
}

/* The table in java-4.9.8-offsets.json, in its order (see test/data/offsets/README.md). */
static void fill_sample(client_offtab_t *t) {
    static const struct {
        const char *broker;
        int32_t qid;
        int64_t offset;
    } rows[] = {{"broker-a", 3, 1187}, {"broker-a", 2, 1190}, {"broker-b", 3, 1201},
                {"broker-b", 0, 1176}, {"broker-a", 1, 1184}, {"broker-b", 2, 1199},
                {"broker-a", 0, 1192}, {"broker-b", 1, 1180}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        client_offtab_put(t, "TopicTest", rows[i].broker, rows[i].qid, rows[i].offset);
}

static void expect_offset(const client_offtab_t *t, const char *topic, const char *broker,
                          int32_t qid, int64_t want) {
    const client_offset_t *e = client_offtab_get(t, topic, broker, qid);
    cr_assert_not_null(e, "no entry for %s/%s/%d", topic, broker, (int)qid);
    cr_expect_eq(e->offset, want, "%s/%s/%d: %lld, expected %lld", topic, broker, (int)qid,
                 (long long)e->offset, (long long)want);
}

static rmq_err_t decode_str(const char *text, client_offtab_t *t, char *why, size_t size) {
    return client_offfile_decode(text, strlen(text), t, why, size);
}

/* A fresh directory for one test, removed by rm_tree. */
static char *temp_dir(void) {
    char *dir = cm_strdup("/tmp/rmq-offfile-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    return dir;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void rm_tree(char *dir) {
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    cm_free(dir);
}

/* ---------------------------------------------------------------- Java's text */

Test(encode, matches_java_sample_byte_for_byte) {
    client_offtab_t t = CLIENT_OFFTAB_INIT;
    fill_sample(&t);
    cm_buf_t out = CM_BUF_INIT;
    client_offfile_encode(&t, &out);
    char *path = sample_path();
    size_t len;
    char *want = slurp(path, &len);
    cr_assert_not_null(want, "cannot read %s", path);
    cr_expect_eq(out.len, len);
    cr_expect(out.len == len && memcmp(out.data, want, len) == 0, "encoded:\n%.*s\nexpected:\n%s",
              (int)out.len, (char *)out.data, want);
    cm_free(want);
    cm_free(path);
    cm_buf_free(&out);
    client_offtab_free(&t);
}

Test(encode, empty_table) {
    client_offtab_t t = CLIENT_OFFTAB_INIT;
    cm_buf_t out = CM_BUF_INIT;
    client_offfile_encode(&t, &out);
    char *text = cm_buf_take_str(&out);
    cr_expect_str_eq(text, "{\n\t\"offsetTable\":{}\n}");
    cm_free(text);
}

Test(decode, java_sample) {
    char *path = sample_path();
    size_t len;
    char *text = slurp(path, &len);
    cr_assert_not_null(text);
    client_offtab_t t = CLIENT_OFFTAB_INIT;
    char why[256] = "";
    cr_assert_eq(client_offfile_decode(text, len, &t, why, sizeof why), RMQ_OK, "%s", why);
    cr_expect_eq(t.count, 8);
    expect_offset(&t, "TopicTest", "broker-a", 0, 1192);
    expect_offset(&t, "TopicTest", "broker-a", 3, 1187);
    expect_offset(&t, "TopicTest", "broker-b", 1, 1180);
    expect_offset(&t, "TopicTest", "broker-b", 3, 1201);
    client_offtab_free(&t);
    cm_free(text);
    cm_free(path);
}

Test(decode, round_trip) {
    client_offtab_t t = CLIENT_OFFTAB_INIT;
    client_offtab_put(&t, "%RETRY%group", "broker \"q\" \\ x", 0, 0);
    client_offtab_put(&t, "T", "b", INT32_MAX, INT64_MAX);
    client_offtab_put(&t, "T", "b", 7, -1);
    client_offtab_put(&t, "T", "b", 7, 42); /* replaces */
    for (int q = 0; q < 40; q++)
        client_offtab_put(&t, "Many", "broker-z", q, (int64_t)q * 1000003);
    cm_buf_t out = CM_BUF_INIT;
    client_offfile_encode(&t, &out);
    client_offtab_t back = CLIENT_OFFTAB_INIT;
    char why[256] = "";
    cr_assert_eq(client_offfile_decode((char *)out.data, out.len, &back, why, sizeof why), RMQ_OK,
                 "%s", why);
    cr_assert_eq(back.count, t.count);
    for (size_t i = 0; i < t.count; i++) {
        const client_offset_t *e = &t.items[i];
        expect_offset(&back, e->topic, e->broker_name, e->queue_id, e->offset);
    }
    expect_offset(&back, "T", "b", 7, 42);
    cm_buf_free(&out);
    client_offtab_free(&back);
    client_offtab_free(&t);
}

Test(decode, tolerant_of_layout_order_and_extras) {
    const char *text =
        "  { \"version\" : 3 ,\"offsetTable\" :\r\n { { \"topic\" : \"T\", \"queueId\":1,"
        "\"extra\":[1,2], \"brokerName\":\"a\" } : 10 , "
        /* fastjson's WriteNonStringKeyAsString form: the key is a string of JSON */
        "\"{\\\"brokerName\\\":\\\"b\\\",\\\"queueId\\\":2,\\\"topic\\\":\\\"T\\\"}\": 20,"
        /* a later duplicate wins, as a Java map put does */
        "{\"brokerName\":\"a\",\"queueId\":1,\"topic\":\"T\"}:11 } }\n";
    client_offtab_t t = CLIENT_OFFTAB_INIT;
    char why[256] = "";
    cr_assert_eq(decode_str(text, &t, why, sizeof why), RMQ_OK, "%s", why);
    cr_expect_eq(t.count, 2);
    expect_offset(&t, "T", "a", 1, 11);
    expect_offset(&t, "T", "b", 2, 20);
    client_offtab_free(&t);
}

Test(decode, no_table_is_empty) {
    const char *texts[] = {"{}", "{\"offsetTable\":null}", "null", "{\"offsetTable\":{}}"};
    for (size_t i = 0; i < 4; i++) {
        client_offtab_t t = CLIENT_OFFTAB_INIT;
        char why[256] = "";
        cr_expect_eq(decode_str(texts[i], &t, why, sizeof why), RMQ_OK, "%s: %s", texts[i], why);
        cr_expect_eq(t.count, 0, "%s", texts[i]);
        client_offtab_free(&t);
    }
}

Test(decode, malformed_rejected_with_reason_and_nothing_read) {
    static const struct {
        const char *text;
        rmq_err_t rc;
        const char *why;
    } cases[] = {
        {"", RMQ_ERR_BAD_JSON, "not JSON"},
        {"{\"offsetTable\":{{\"brokerName\":\"a\",\"queueId\":0,\"topic\":\"T\"}:",
         RMQ_ERR_BAD_JSON, "not JSON"},
        {"[]", RMQ_ERR_MALFORMED, "the top level is an array, not an object"},
        {"{\"offsetTable\":[]}", RMQ_ERR_MALFORMED, "offsetTable is an array, not an object"},
        {"{\"offsetTable\":{1:5}}", RMQ_ERR_MALFORMED,
         "offsetTable entry 0: the key is an integer, not a MessageQueue"},
        {"{\"offsetTable\":{\"T@a@0\":5}}", RMQ_ERR_MALFORMED,
         "offsetTable entry 0: the key is a string, not a MessageQueue"},
        {"{\"offsetTable\":{{\"brokerName\":\"a\",\"queueId\":0,\"topic\":\"T\"}:1,"
         "{\"brokerName\":\"a\",\"queueId\":1}:2}}",
         RMQ_ERR_MALFORMED, "offsetTable entry 1: the key has no \"topic\""},
        {"{\"offsetTable\":{{\"brokerName\":7,\"queueId\":0,\"topic\":\"T\"}:1}}",
         RMQ_ERR_MALFORMED, "the key has a non-string \"brokerName\""},
        {"{\"offsetTable\":{{\"brokerName\":\"a\",\"queueId\":\"0\",\"topic\":\"T\"}:1}}",
         RMQ_ERR_MALFORMED, "the key's \"queueId\" is not a 32-bit integer"},
        {"{\"offsetTable\":{{\"brokerName\":\"a\",\"queueId\":2147483648,\"topic\":\"T\"}:1}}",
         RMQ_ERR_MALFORMED, "the key's \"queueId\" is not a 32-bit integer"},
        {"{\"offsetTable\":{{\"brokerName\":\"a\",\"topic\":\"T\"}:1}}", RMQ_ERR_MALFORMED,
         "the key's \"queueId\" is missing"},
        {"{\"offsetTable\":{{\"brokerName\":\"a\",\"queueId\":0,\"topic\":\"T\"}:\"12\"}}",
         RMQ_ERR_MALFORMED, "entry 0 (T/a/0): the offset is a string, not an integer"},
        {"{\"offsetTable\":{{\"brokerName\":\"a\",\"queueId\":0,\"topic\":\"T\"}:1.5}}",
         RMQ_ERR_MALFORMED, "the offset is a fraction or out of 64-bit range"},
        {"{\"offsetTable\":{{\"brokerName\":\"a\",\"queueId\":0,\"topic\":\"T\"}:"
         "99999999999999999999}}",
         RMQ_ERR_MALFORMED, "the offset is a fraction or out of 64-bit range"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        client_offtab_t t = CLIENT_OFFTAB_INIT;
        client_offtab_put(&t, "Kept", "k", 0, 5);
        char why[256] = "";
        rmq_err_t rc = decode_str(cases[i].text, &t, why, sizeof why);
        cr_expect_eq(rc, cases[i].rc, "case %zu: rc %d (%s)", i, rc, why);
        cr_expect_not_null(strstr(why, cases[i].why), "case %zu: why \"%s\" lacks \"%s\"", i, why,
                           cases[i].why);
        cr_expect_eq(t.count, 1, "case %zu: nothing read from a malformed text", i);
        expect_offset(&t, "Kept", "k", 0, 5);
        client_offtab_free(&t);
    }
}

/* ---------------------------------------------------------------- files */

static const char *good_a = "{\"offsetTable\":{{\"brokerName\":\"a\",\"queueId\":0,\"topic\":"
                            "\"T\"}:100}}";
static const char *good_b = "{\"offsetTable\":{{\"brokerName\":\"a\",\"queueId\":0,\"topic\":"
                            "\"T\"}:200}}";

/* Loads dir/offsets.json into a fresh table; returns the offset of T/a/0 or -1. */
static int64_t load_offset(const char *dir, rmq_err_t want_rc, client_offfile_src_t want_src,
                           char *why, size_t size) {
    char *path = cm_sprintf("%s/offsets.json", dir);
    client_offtab_t t = CLIENT_OFFTAB_INIT;
    client_offfile_src_t src = (client_offfile_src_t)-1;
    rmq_err_t rc = client_offfile_load(path, &t, &src, why, size);
    cr_expect_eq(rc, want_rc, "rc %d: %s", rc, why);
    cr_expect_eq(src, want_src, "src %d: %s", src, why);
    const client_offset_t *e = client_offtab_get(&t, "T", "a", 0);
    int64_t v = e ? e->offset : -1;
    if (rc != RMQ_OK) cr_expect_eq(t.count, 0, "nothing read on an error");
    client_offtab_free(&t);
    cm_free(path);
    return v;
}

static void put_file(const char *dir, const char *name, const char *text) {
    char *path = cm_sprintf("%s/%s", dir, name);
    spit(path, text);
    cm_free(path);
}

Test(load, main_then_bak_then_nothing) {
    char *dir = temp_dir();
    char why[512];
    cr_expect_eq(load_offset(dir, RMQ_OK, CLIENT_OFFFILE_NONE, why, sizeof why), -1);
    cr_expect_str_empty(why, "a first start is not worth a warning");

    put_file(dir, "offsets.json.bak", good_b);
    cr_expect_eq(load_offset(dir, RMQ_OK, CLIENT_OFFFILE_BAK, why, sizeof why), 200,
                 "no main file (a save interrupted before its rename): the .bak");
    cr_expect_not_null(strstr(why, "does not exist; read"), "%s", why);

    put_file(dir, "offsets.json", good_a);
    cr_expect_eq(load_offset(dir, RMQ_OK, CLIENT_OFFFILE_MAIN, why, sizeof why), 100);
    cr_expect_str_empty(why);

    put_file(dir, "offsets.json", "");
    cr_expect_eq(load_offset(dir, RMQ_OK, CLIENT_OFFFILE_BAK, why, sizeof why), 200);
    cr_expect_not_null(strstr(why, "offsets.json: is empty; read"), "%s", why);

    put_file(dir, "offsets.json", "{\"offsetTable\":{{\"brokerName\":\"a\"");
    cr_expect_eq(load_offset(dir, RMQ_OK, CLIENT_OFFFILE_BAK, why, sizeof why), 200,
                 "a torn main file: the .bak");
    cr_expect_not_null(strstr(why, "not JSON"), "%s", why);
    rm_tree(dir);
}

Test(load, malformed_main_without_bak_starts_empty) {
    char *dir = temp_dir();
    char why[512];
    put_file(dir, "offsets.json", "{\"offsetTable\":[]}");
    cr_expect_eq(load_offset(dir, RMQ_OK, CLIENT_OFFFILE_NONE, why, sizeof why), -1);
    cr_expect_not_null(strstr(why, "offsetTable is an array"), "%s", why);
    cr_expect_not_null(strstr(why, "no usable"), "%s", why);
    rm_tree(dir);
}

Test(load, malformed_bak_is_an_error_naming_both_files) {
    char *dir = temp_dir();
    char why[512];
    put_file(dir, "offsets.json", "garbage");
    put_file(dir, "offsets.json.bak", "{\"offsetTable\":{{\"topic\":\"T\"}:1}}");
    cr_expect_eq(load_offset(dir, RMQ_ERR_MALFORMED, CLIENT_OFFFILE_NONE, why, sizeof why), -1);
    cr_expect_not_null(strstr(why, "offsets.json: not JSON"), "%s", why);
    cr_expect_not_null(strstr(why, "offsets.json.bak: offsetTable entry 0: the key has no"), "%s",
                       why);
    rm_tree(dir);
}

Test(save, creates_dirs_keeps_previous_as_bak) {
    char *dir = temp_dir();
    char *path = cm_sprintf("%s/192.168.0.1@DEFAULT/group_x/offsets.json", dir);
    char *bak = cm_sprintf("%s.bak", path), *tmp = cm_sprintf("%s.tmp", path);
    client_offtab_t t = CLIENT_OFFTAB_INIT;
    fill_sample(&t);
    char why[256] = "";
    cr_assert_eq(client_offfile_save(path, &t, why, sizeof why), RMQ_OK, "%s", why);
    char *first = slurp(path, NULL);
    cr_assert_not_null(first);
    cm_buf_t want = CM_BUF_INIT;
    client_offfile_encode(&t, &want);
    char *want_text = cm_buf_take_str(&want);
    cr_expect_str_eq(first, want_text);
    cr_expect_eq(access(bak, F_OK), -1, "no previous file, no .bak");

    client_offtab_put(&t, "TopicTest", "broker-a", 0, 5000);
    cr_assert_eq(client_offfile_save(path, &t, why, sizeof why), RMQ_OK, "%s", why);
    char *kept = slurp(bak, NULL), *second = slurp(path, NULL);
    cr_assert_not_null(kept);
    cr_expect_str_eq(kept, first, "the previous file became .bak");
    cr_expect_not_null(strstr(second, "}:5000"));
    cr_expect_eq(access(tmp, F_OK), -1, "no .tmp left behind");

    client_offtab_t back = CLIENT_OFFTAB_INIT;
    cr_assert_eq(client_offfile_load(path, &back, NULL, why, sizeof why), RMQ_OK, "%s", why);
    expect_offset(&back, "TopicTest", "broker-a", 0, 5000);
    cr_expect_eq(back.count, 8);

    cm_free(want_text), cm_free(first), cm_free(kept), cm_free(second);
    client_offtab_free(&back);
    client_offtab_free(&t);
    cm_free(path), cm_free(bak), cm_free(tmp);
    rm_tree(dir);
}

Test(save, without_main_file_leaves_bak_alone) {
    /* string2File copies the previous file only when there is one. */
    char *dir = temp_dir();
    put_file(dir, "offsets.json.bak", good_b);
    char *path = cm_sprintf("%s/offsets.json", dir), *bak = cm_sprintf("%s.bak", path);
    client_offtab_t t = CLIENT_OFFTAB_INIT;
    client_offtab_put(&t, "T", "a", 0, 300);
    char why[256] = "";
    cr_assert_eq(client_offfile_save(path, &t, why, sizeof why), RMQ_OK, "%s", why);
    char *kept = slurp(bak, NULL);
    cr_expect_str_eq(kept, good_b);
    cm_free(kept);
    client_offtab_free(&t);
    cm_free(path), cm_free(bak);
    rm_tree(dir);
}

Test(save, unwritable_directory_is_an_io_error) {
    char *dir = temp_dir();
    char *blocker = cm_sprintf("%s/file", dir);
    spit(blocker, "x");
    char *path = cm_sprintf("%s/sub/offsets.json", blocker); /* a file where a dir must be */
    client_offtab_t t = CLIENT_OFFTAB_INIT;
    char why[256] = "";
    cr_expect_eq(client_offfile_save(path, &t, why, sizeof why), RMQ_ERR_IO);
    cr_expect_not_null(strstr(why, "cannot create"), "%s", why);
    cm_free(path), cm_free(blocker);
    rm_tree(dir);
}

/* ---------------------------------------------------------------- path */

Test(path, default_dir_and_configured_dir) {
    setenv("HOME", "/home/alice", 1);
    rmq_conf_t *conf = rmq_conf_new();
    char *p = client_offfile_path(conf, "192.168.0.1@12345#987", "bcast_group");
    cr_expect_str_eq(p, "/home/alice/.rocketmq_offsets/192.168.0.1@12345#987/bcast_group/"
                        "offsets.json");
    cm_free(p);
    cr_assert_eq(rmq_conf_set(conf, "localOffsetStoreDir", "/var/lib/app/offsets", NULL, 0),
                 RMQ_OK);
    p = client_offfile_path(conf, "c", "g");
    cr_expect_str_eq(p, "/var/lib/app/offsets/c/g/offsets.json");
    cm_free(p);
    rmq_conf_destroy(conf);
}
