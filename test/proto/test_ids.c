/* Socket addresses and message ids (message.md §4): offset ids both widths, client unique ids
 * (layout, captured 4.9.8 values, uniqueness in a tight loop, across threads and across a
 * month start). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "proto/proto.h"

/* ---- addresses */

Test(addr, parse_and_format_v4) {
    proto_addr_t a;
    cr_assert_eq(proto_addr_parse("1.2.3.4:10911", &a), RMQ_OK);
    cr_assert_eq(a.ip_len, 4);
    cr_assert_eq(memcmp(a.ip, "\x01\x02\x03\x04", 4), 0);
    cr_assert_eq(a.port, 10911);
    char s[64];
    proto_addr_format(&a, s, sizeof s);
    cr_assert_str_eq(s, "1.2.3.4:10911");
}

Test(addr, parse_and_format_v6) {
    proto_addr_t a;
    cr_assert_eq(proto_addr_parse("[::1]:10911", &a), RMQ_OK);
    cr_assert_eq(a.ip_len, 16);
    cr_assert_eq(a.ip[15], 1);
    cr_assert_eq(a.ip[0], 0);
    cr_assert_eq(a.port, 10911);
    char s[64];
    proto_addr_format(&a, s, sizeof s);
    cr_assert_str_eq(s, "[::1]:10911");
    cr_assert_eq(proto_addr_parse("fd00::2:9876", &a), RMQ_OK); /* last colon is the port */
    cr_assert_eq(a.ip_len, 16);
    cr_assert_eq(a.ip[0], 0xfd);
    cr_assert_eq(a.ip[15], 2);
    cr_assert_eq(a.port, 9876);
    proto_addr_t round;
    proto_addr_format(&a, s, sizeof s);
    cr_assert_eq(proto_addr_parse(s, &round), RMQ_OK);
    cr_assert_eq(memcmp(&round, &a, sizeof a), 0);
}

Test(addr, bad_text) {
    proto_addr_t a = {{9}, 4, 7};
    const char *bad[] = {"",           "1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:-1",
                         "1.2.3:80",   "host:80", "[::1]",    "[::1]80",       "[1.2.3.4]:80",
                         "1.2.3.4:8x", "[::1:80", ":80",      "1.2.3.4:123456"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(proto_addr_parse(bad[i], &a), RMQ_ERR_MALFORMED, "%s", bad[i]);
    cr_assert_eq(a.ip[0], 9, "output untouched on error");
    cr_assert_eq(proto_addr_parse(NULL, &a), RMQ_ERR_INVALID_ARG);
    cr_assert_eq(proto_addr_parse("0.0.0.0:0", &a), RMQ_OK);
    cr_assert_eq(proto_addr_parse("255.255.255.255:65535", &a), RMQ_OK);
    cr_assert_eq(a.port, 65535);
}

/* ---- offset ids */

Test(offset_id, golden_v4) {
    /* ORIGIN_MESSAGE_ID of a retried message in the captured commit log: broker
     * 127.0.0.1:10911, commit-log offset 0x19079 (102521). */
    proto_addr_t a;
    int64_t off;
    cr_assert_eq(proto_offset_id_parse("7F00000100002A9F0000000000019079", &a, &off), RMQ_OK);
    cr_assert_eq(a.ip_len, 4);
    cr_assert_eq(memcmp(a.ip, "\x7f\0\0\x01", 4), 0);
    cr_assert_eq(a.port, 10911);
    cr_assert_eq(off, 102521);
    char id[64];
    proto_offset_id_format(&a, off, id, sizeof id);
    cr_assert_str_eq(id, "7F00000100002A9F0000000000019079");
    cr_assert_eq(proto_offset_id_parse("7f00000100002a9f0000000000019079", &a, &off), RMQ_OK);
    cr_assert_eq(off, 102521);
}

Test(offset_id, v6_round_trip) {
    proto_addr_t a = {{0x20, 0x01, 0x0d, 0xb8, [15] = 0x42}, 16, 10911}, b;
    int64_t off;
    char id[64];
    proto_offset_id_format(&a, INT64_MAX, id, sizeof id);
    cr_assert_eq(strlen(id), 56);
    cr_assert_str_eq(id, "20010DB8000000000000000000000042"
                         "00002A9F"
                         "7FFFFFFFFFFFFFFF");
    cr_assert_eq(proto_offset_id_parse(id, &b, &off), RMQ_OK);
    cr_assert_eq(memcmp(&a, &b, sizeof a), 0);
    cr_assert_eq(off, INT64_MAX);
}

Test(offset_id, bad_ids) {
    proto_addr_t a;
    int64_t off;
    cr_assert_eq(proto_offset_id_parse("", &a, &off), RMQ_ERR_MALFORMED);
    cr_assert_eq(proto_offset_id_parse("7F00000100002A9F000000000001907", &a, &off),
                 RMQ_ERR_MALFORMED);
    cr_assert_eq(proto_offset_id_parse("7F00000100002A9F00000000000190790", &a, &off),
                 RMQ_ERR_MALFORMED);
    cr_assert_eq(proto_offset_id_parse("7F00000100002A9F000000000001907G", &a, &off),
                 RMQ_ERR_MALFORMED);
    cr_assert_eq(proto_offset_id_parse(NULL, &a, &off), RMQ_ERR_INVALID_ARG);
}

/* ---- client unique ids */

Test(uniq, golden_captured_key) {
    proto_uniq_parts_t u;
    cr_assert_eq(proto_uniq_parse("FD000000000000000000000000000002232330946E097C71C6530000", &u),
                 RMQ_OK);
    cr_assert_eq(u.ip.ip_len, 16);
    cr_assert_eq(u.ip.ip[0], 0xFD);
    cr_assert_eq(u.ip.ip[15], 0x02);
    cr_assert_eq(u.pid, 0x2323);
    cr_assert_eq(u.instance, 0x30946E09);
    cr_assert_eq(u.month_ms, 0x7C71C653);
    cr_assert_eq(u.counter, 0);
    cr_assert_eq(proto_uniq_parse("0A0000011234ABCDEF01000003E80005", &u), RMQ_OK);
    cr_assert_eq(u.ip.ip_len, 4);
    cr_assert_eq(u.ip.ip[3], 1);
    cr_assert_eq(u.month_ms, 1000);
    cr_assert_eq(u.counter, 5);
    cr_assert_eq(proto_uniq_parse("0A0000011234ABCDEF01000003E8000", &u), RMQ_ERR_MALFORMED);
    cr_assert_eq(proto_uniq_parse("0A0000011234ABCDEF01000003E8000Z", &u), RMQ_ERR_MALFORMED);
}

/* Reads a captured frame and returns the UNIQ_KEY value inside its JSON header. */
static char *frame_uniq_key(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/rocketmq-4.9.8/frames/%s", getenv("TEST_DATA"), name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    size_t hdr = cm_rd32((uint8_t *)buf + 4) & 0xFFFFFF;
    cr_assert_leq(8 + hdr, n);
    buf[8 + hdr] = '\0'; /* the body follows the header */
    /* In JSON the separator \1 is written as the escape "\u0001". */
    const char *key = strstr(buf + 8, "UNIQ_KEY\\u0001");
    cr_assert_not_null(key);
    key += strlen("UNIQ_KEY\\u0001");
    size_t len = strcspn(key, "\\\"");
    return cm_strndup(key, len);
}

Test(uniq, golden_send_frames) {
    const char *frames[] = {"broker-req-310-c2s-1.bin", "broker-req-310-c2s-2.bin"};
    proto_uniq_parts_t first = {0};
    for (int i = 0; i < 2; i++) {
        char *key = frame_uniq_key(frames[i]);
        cr_assert_eq(strlen(key), 56, "%s", key);
        proto_uniq_parts_t u;
        cr_assert_eq(proto_uniq_parse(key, &u), RMQ_OK, "%s", key);
        cr_assert_eq(u.ip.ip_len, 16);
        cr_assert_eq(u.pid, 0x2323);
        cr_assert_eq(u.instance, 0x30946E09);
        if (i == 0)
            first = u;
        else
            cr_assert(u.month_ms >= first.month_ms && u.counter != first.counter);
        cm_free(key);
    }
}

Test(uniq, layout_of_generated_ids) {
    proto_addr_t ip = {{10, 1, 2, 3}, 4, 0};
    proto_uniq_gen_t *g = proto_uniq_gen_new(&ip, 0x12345678);
    /* 2026-11-25 12:00:00.345 local time, against local midnight of 2026-11-01. */
    struct tm tm = {.tm_year = 126, .tm_mon = 10, .tm_mday = 25, .tm_hour = 12, .tm_isdst = -1};
    int64_t now = (int64_t)mktime(&tm) * 1000 + 345;
    tm = (struct tm){.tm_year = 126, .tm_mon = 10, .tm_mday = 1, .tm_isdst = -1};
    int64_t start = (int64_t)mktime(&tm) * 1000;
    char id[64];
    proto_uniq_gen_next_at(g, now, id, sizeof id);
    cr_assert_eq(strlen(id), 32);
    cr_assert_eq(strncmp(id, "0A0102035678", 12), 0, "%s", id); /* IP, pid low 16 bits */
    proto_uniq_parts_t u;
    cr_assert_eq(proto_uniq_parse(id, &u), RMQ_OK);
    cr_assert_eq(u.month_ms, (int32_t)(now - start));
    cr_assert_gt(now - start, (24 * 86400 + 11 * 3600) * 1000LL); /* about 24.5 days */
    cr_assert_eq(u.counter, 0);
    proto_uniq_gen_next_at(g, now, id, sizeof id);
    proto_uniq_parts_t v;
    cr_assert_eq(proto_uniq_parse(id, &v), RMQ_OK);
    cr_assert_eq(v.counter, 1);
    cr_assert_eq(v.instance, u.instance);
    proto_uniq_gen_destroy(g);

    /* IPv6 client: 56 hex chars; two generators in one process differ in the instance. */
    proto_addr_t ip6 = {{0xfd, [15] = 2}, 16, 0};
    proto_uniq_gen_t *g6 = proto_uniq_gen_new(&ip6, 7);
    proto_uniq_gen_next(g6, id, sizeof id);
    cr_assert_eq(strlen(id), 56);
    cr_assert_eq(strncmp(id, "FD0000000000000000000000000000020007", 36), 0, "%s", id);
    proto_uniq_parts_t w;
    cr_assert_eq(proto_uniq_parse(id, &w), RMQ_OK);
    cr_assert_neq(w.instance, u.instance);
    proto_uniq_gen_destroy(g6);
}

/* ids are compared as their 6 varying bytes (ms, counter), packed into a uint64. */
static uint64_t varying(const char *id) {
    proto_uniq_parts_t u;
    cr_assert_eq(proto_uniq_parse(id, &u), RMQ_OK);
    return (uint64_t)(uint32_t)u.month_ms << 16 | u.counter;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void assert_all_distinct(uint64_t *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_u64);
    for (size_t i = 1; i < n; i++)
        cr_assert_neq(v[i], v[i - 1], "duplicate id at %zu", i);
}

Test(uniq, unique_when_the_clock_stands_still_or_steps_back) {
    proto_addr_t ip = {{127, 0, 0, 1}, 4, 0};
    proto_uniq_gen_t *g = proto_uniq_gen_new(&ip, 1);
    struct tm tm = {.tm_year = 126, .tm_mon = 2, .tm_mday = 10, .tm_hour = 8, .tm_isdst = -1};
    int64_t t = (int64_t)mktime(&tm) * 1000;
    size_t n = 300000; /* more than 4 x 65536 ids in one frozen ms */
    uint64_t *v = malloc(n * sizeof *v);
    char id[64];
    for (size_t i = 0; i < n; i++) {
        /* Frozen for the first half; then the clock steps back a second and creeps on. */
        int64_t now = i < n / 2 ? t : t - 1000 + (int64_t)(i % 7);
        proto_uniq_gen_next_at(g, now, id, sizeof id);
        v[i] = varying(id);
    }
    assert_all_distinct(v, n);
    free(v);
    proto_uniq_gen_destroy(g);
}

Test(uniq, unique_across_a_month_start) {
    proto_addr_t ip = {{127, 0, 0, 1}, 4, 0};
    proto_uniq_gen_t *g = proto_uniq_gen_new(&ip, 1);
    struct tm tm = {.tm_year = 126, .tm_mon = 0, .tm_mday = 1, .tm_isdst = -1};
    int64_t month = (int64_t)mktime(&tm) * 1000; /* 2026-01-01 00:00 local */
    tm = (struct tm){.tm_year = 126, .tm_mon = 1, .tm_mday = 1, .tm_isdst = -1};
    int64_t next = (int64_t)mktime(&tm) * 1000;
    size_t n = 200000;
    uint64_t *v = malloc(n * sizeof *v);
    char id[64];
    /* 1000 ids at the very start of January, then ms values running through the start of
     * February at 1 ms per 1000 ids. Both month starts give ms value 0, so only the counter
     * (which must not restart with the month) keeps those ids apart. */
    size_t k = 0;
    for (size_t i = 0; i < 1000; i++) {
        proto_uniq_gen_next_at(g, month, id, sizeof id);
        v[k++] = varying(id);
    }
    proto_uniq_parts_t u;
    for (size_t i = 0; k < n; i++, k++) {
        int64_t now = next - 100 + (int64_t)(i / 1000);
        proto_uniq_gen_next_at(g, now, id, sizeof id);
        v[k] = varying(id);
        if (now == next) {
            cr_assert_eq(proto_uniq_parse(id, &u), RMQ_OK);
            cr_assert_eq(u.month_ms, 0, "ms restart at the month start");
        }
    }
    assert_all_distinct(v, n);
    free(v);
    proto_uniq_gen_destroy(g);
}

#define THREADS 4
#define PER_THREAD 50000

typedef struct worker {
    proto_uniq_gen_t *g;
    char (*ids)[64];
} worker_t;

static void *run_worker(void *arg) {
    worker_t *w = arg;
    for (size_t i = 0; i < PER_THREAD; i++)
        proto_uniq_gen_next(w->g, w->ids[i], 64);
    return NULL;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(a, b);
}

Test(uniq, unique_across_threads) {
    proto_addr_t ip = {{192, 168, 0, 9}, 4, 0};
    proto_uniq_gen_t *g = proto_uniq_gen_new(&ip, 4242);
    char(*ids)[64] = malloc(sizeof *ids * THREADS * PER_THREAD);
    pthread_t th[THREADS];
    worker_t w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker_t){g, ids + (size_t)i * PER_THREAD};
        cr_assert_eq(pthread_create(&th[i], NULL, run_worker, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    qsort(ids, THREADS * PER_THREAD, sizeof *ids, cmp_str);
    for (size_t i = 1; i < THREADS * PER_THREAD; i++)
        cr_assert_str_neq(ids[i], ids[i - 1], "duplicate %s", ids[i]);
    free(ids);
    proto_uniq_gen_destroy(g);
}
