/* lib/common: map, buffers, Java hashing, configuration registry, error names. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/cm.h"

Test(map, put_get_take_grow) {
    cm_map_t *m = cm_map_new(cm_free);
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        cm_map_put(m, key, cm_sprintf("v%d", i));
    }
    cr_assert_eq(cm_map_count(m), 1000);
    cr_assert_str_eq(cm_map_get(m, "k777"), "v777");
    cm_map_put(m, "k777", cm_strdup("replaced"));
    cr_assert_str_eq(cm_map_get(m, "k777"), "replaced");
    for (int i = 0; i < 1000; i += 2) {
        snprintf(key, sizeof key, "k%d", i);
        cm_free(cm_map_take(m, key));
    }
    cr_assert_eq(cm_map_count(m), 500);
    cr_assert_null(cm_map_get(m, "k0"));
    cr_assert_str_eq(cm_map_get(m, "k1"), "v1");
    size_t it = 0, seen = 0;
    const char *k;
    void *v;
    while (cm_map_next(m, &it, &k, &v)) seen++;
    cr_assert_eq(seen, 500);
    cm_map_destroy(m);
}

Test(buf, big_endian_and_strings) {
    cm_buf_t b = CM_BUF_INIT;
    cm_buf_put16(&b, 0x0102);
    cm_buf_put32(&b, 0x03040506);
    cm_buf_put64(&b, 0x0708090a0b0c0d0eull);
    cr_assert_eq(b.len, 14);
    cr_assert_eq(cm_rd16(b.data), 0x0102);
    cr_assert_eq(cm_rd32(b.data + 2), 0x03040506);
    cr_assert_eq(cm_rd64(b.data + 6), 0x0708090a0b0c0d0eull);
    cm_buf_reset(&b);
    cm_buf_printf(&b, "%s-%d", "x", 42);
    char *s = cm_buf_take_str(&b);
    cr_assert_str_eq(s, "x-42");
    cm_free(s);
}

/* cm_i64_text writes what printf's %lld does, for every digit count and sign. */
Test(buf, i64_text_matches_printf) {
    int64_t vals[200];
    size_t n = 0;
    vals[n++] = 0;
    vals[n++] = INT64_MAX;
    vals[n++] = INT64_MIN;
    vals[n++] = INT64_MIN + 1;
    for (int64_t p = 1; p <= INT64_MAX / 10; p *= 10) {
        int64_t near[] = {p - 1, p, p + 1, 2 * p, 9 * p + (p - 1)};
        for (size_t i = 0; i < sizeof near / sizeof near[0]; i++) {
            vals[n++] = near[i];
            vals[n++] = -near[i];
        }
    }
    for (size_t i = 0; i < n; i++) {
        char got[CM_I64_TEXT + 4], want[32];
        memset(got, '#', sizeof got);
        size_t len = cm_i64_text(vals[i], got);
        snprintf(want, sizeof want, "%lld", (long long)vals[i]);
        cr_assert_str_eq(got, want);
        cr_assert_eq(len, strlen(want));
        cr_assert_eq(got[CM_I64_TEXT], '#'); /* nothing written past CM_I64_TEXT */
        cm_buf_t b = CM_BUF_INIT;
        cm_buf_put_i64(&b, vals[i]);
        cr_assert_eq(b.len, len);
        cr_assert_eq(memcmp(b.data, want, len), 0);
        cm_buf_free(&b);
    }
}

/* Values checked against Java's String.hashCode(). */
Test(javahash, matches_java) {
    cr_assert_eq(cm_java_hash("A", 1), 65);
    cr_assert_eq(cm_java_hash("", 0), 0);
    cr_assert_eq(cm_java_hash("TagA", 4), 2598919);
    cr_assert_eq(cm_java_hash("hello world", 11), 1794106052);
    /* int32 wrap-around: "polygenelubricants".hashCode() == Integer.MIN_VALUE */
    cr_assert_eq(cm_java_hash("polygenelubricants", 18), INT32_MIN);
    /* U+00E9 (2 UTF-8 bytes) is one UTF-16 unit: "é".hashCode() == 233 */
    cr_assert_eq(cm_java_hash("\xc3\xa9", 2), 233);
    /* U+1F600 is a surrogate pair D83D DE00: 31*0xD83D + 0xDE00 */
    cr_assert_eq(cm_java_hash("\xf0\x9f\x98\x80", 4), 31 * 0xD83D + 0xDE00);
}

Test(conf, defaults_and_typed_reads) {
    rmq_conf_t *c = rmq_conf_new();
    cr_assert_eq(cm_conf_int(c, "sendMsgTimeout", false), 3000);
    cr_assert_eq(cm_conf_int(c, "defaultTopicQueueNums", false), 4);
    cr_assert_eq(cm_conf_int(c, "defaultTopicQueueNums", true), 8);
    cr_assert(cm_conf_bool(c, "autoCreateTopicEnable", true));
    cr_assert_str_eq(cm_conf_str(c, "flushDiskType", true), "ASYNC_FLUSH");
    setenv("HOME", "/home/someone", 1);
    cr_assert_str_eq(cm_conf_str(c, "storePathRootDir", true), "/home/someone/store");
    cr_assert_eq(rmq_conf_set(c, "sendMsgTimeout", "100", NULL, 0), RMQ_OK);
    cr_assert_eq(cm_conf_int(c, "sendMsgTimeout", false), 100);
    cr_assert(cm_conf_is_set(c, "sendMsgTimeout"));
    rmq_conf_destroy(c);
}

Test(conf, delay_levels) {
    int64_t ms[32];
    int n = cm_parse_delay_levels("1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h", ms, 32);
    cr_assert_eq(n, 18);
    cr_assert_eq(ms[0], 1000);
    cr_assert_eq(ms[4], 60000);
    cr_assert_eq(ms[17], 7200000);
    cr_assert_eq(cm_parse_delay_levels("1x", ms, 32), 0);
    cr_assert_eq(cm_parse_delay_levels("5", ms, 32), 0);
    cr_assert_eq(cm_parse_delay_levels("1d", ms, 32), 1);
    cr_assert_eq(ms[0], 86400000);
}

/* Every registered key is documented in doc/CONFIGURATION.md. */
Test(conf, every_key_documented) {
    char path[4096];
    snprintf(path, sizeof path, "%s/doc/CONFIGURATION.md", getenv("SOURCE_ROOT"));
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    static char doc[1 << 20];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    doc[n] = '\0';
    fclose(f);
    for (const cm_conf_key_t *k = cm_conf_keys; k->name; k++) {
        char cell[128];
        snprintf(cell, sizeof cell, "| `%s` |", k->name);
        cr_expect(strstr(doc, cell) != NULL, "key %s missing from doc/CONFIGURATION.md", k->name);
    }
}

Test(err, names_and_strings) {
    cr_assert_str_eq(rmq_err_name(RMQ_OK), "OK");
    cr_assert_str_eq(rmq_err_name(RMQ_ERR_SYSTEM_BUSY), "SYSTEM_BUSY");
    cr_assert_eq(RMQ_ERR_SYSTEM_BUSY, 2);
    cr_assert_eq(RMQ_ERR_TOPIC_NOT_EXIST, 17);
    cr_assert_eq(RMQ_ERR_FLUSH_DISK_TIMEOUT, 10);
    cr_assert_str_eq(rmq_err_name(RMQ_ERR_TIMEOUT), "TIMEOUT");
    cr_assert_str_eq(rmq_err_name((rmq_err_t)999), "CODE_999");
    cr_assert_str_eq(rmq_err_str(RMQ_ERR_TOPIC_NOT_EXIST), "Topic does not exist");
    cr_assert_not_null(rmq_err_str((rmq_err_t)-999));
}

/* cm_free_outside frees what lies outside the block and leaves what lies inside (ASan and
 * valgrind would report a wrong free or a leak). */
Test(alloc, free_outside_only_frees_texts_of_their_own) {
    char *block = cm_malloc(16);
    cm_free_outside(block + 3, block, 16);
    cm_free_outside(block + 15, block, 16);
    cm_free_outside(cm_strdup("apart"), block, 16);
    cm_free_outside(cm_strdup("no block"), NULL, 0);
    cm_free_outside(NULL, block, 16);
    cm_free(block);
}
