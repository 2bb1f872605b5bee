/* lib/common/crc32.c: cm_crc32 and each path it can take on this CPU (tables, PCLMULQDQ with
 * SSE4.1, with AVX) against zlib's crc32 — every length 0..4096 at every alignment within a
 * 16-byte load, random data, chaining, and the check values. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <zlib.h>

#include "common/cm.h"

#define MAXLEN 4096
#define ALIGNS 16

typedef uint32_t(crc_fn)(uint32_t crc, const void *p, size_t n);

static cm_crc32_path_t path;
static uint32_t by_path(uint32_t crc, const void *p, size_t n) {
    return cm_crc32_by(path, crc, p, n);
}

/* Runs check with cm_crc32 and with every path the CPU has; each check reseeds the data. */
static void each_path(void (*check)(crc_fn *fn)) {
    check(cm_crc32);
    for (path = CM_CRC32_TABLES; path <= cm_crc32_best_path(); path++) {
        cr_log_info("path %d", (int)path);
        check(by_path);
    }
}

static uint8_t buf[MAXLEN + ALIGNS + 64];

/* xorshift: data that is neither zero nor periodic, the same on every run */
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void fill_random(uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)next_rand();
}

static uint32_t zlib_crc(uint32_t crc, const void *p, size_t n) {
    return (uint32_t)crc32_z(crc, p, n);
}

static void every_length_and_alignment(crc_fn *fn) {
    fill_random(buf, sizeof buf);
    for (size_t a = 0; a < ALIGNS; a++)
        for (size_t n = 0; n <= MAXLEN; n++) {
            uint32_t want = zlib_crc(0, buf + a, n), got = fn(0, buf + a, n);
            if (got != want) cr_assert_fail("len %zu align %zu: %08x, zlib %08x", n, a, got, want);
        }
}

/* Lengths that end on a 64-byte, 16-byte and 8-byte boundary plus or minus one, from a
 * non-zero starting crc, each split in two at every point of the first 80 bytes. */
static void chained(crc_fn *fn) {
    fill_random(buf, sizeof buf);
    static const size_t lens[] = {15, 16, 17, 63, 64, 65, 127, 128, 129, 1023, 1024, 1025};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t n = lens[i];
        uint32_t seed = (uint32_t)next_rand();
        uint32_t want = zlib_crc(seed, buf + 3, n);
        cr_assert_eq(fn(seed, buf + 3, n), want, "len %zu seed %08x", n, seed);
        for (size_t cut = 0; cut <= n && cut <= 80; cut++) {
            uint32_t c = fn(fn(seed, buf + 3, cut), buf + 3 + cut, n - cut);
            if (c != want) cr_assert_fail("len %zu cut %zu: %08x, zlib %08x", n, cut, c, want);
        }
    }
}

/* Random lengths (up to 64 KiB), offsets and seeds; long runs of 0x00 and 0xFF too. */
static void random_data(crc_fn *fn) {
    size_t cap = 65536 + 64;
    uint8_t *big = malloc(cap);
    cr_assert_not_null(big);
    for (int round = 0; round < 200; round++) {
        int kind = round % 3;
        if (kind == 0)
            fill_random(big, cap);
        else
            memset(big, kind == 1 ? 0x00 : 0xFF, cap);
        size_t off = next_rand() % 64, n = next_rand() % 65536;
        uint32_t seed = round < 100 ? 0 : (uint32_t)next_rand();
        uint32_t want = zlib_crc(seed, big + off, n);
        cr_assert_eq(fn(seed, big + off, n), want, "round %d len %zu off %zu", round, n, off);
        /* three random parts */
        size_t c1 = n ? next_rand() % n : 0, c2 = c1 + (n - c1 ? next_rand() % (n - c1) : 0);
        uint32_t c = fn(seed, big + off, c1);
        c = fn(c, big + off + c1, c2 - c1);
        c = fn(c, big + off + c2, n - c2);
        cr_assert_eq(c, want, "round %d parts %zu/%zu/%zu", round, c1, c2 - c1, n - c2);
    }
    free(big);
}

static void known_values(crc_fn *fn) {
    cr_assert_eq(fn(0, NULL, 0), 0);
    cr_assert_eq(fn(0x12345678, NULL, 0), 0x12345678);
    cr_assert_eq(fn(0, "123456789", 9), 0xCBF43926u); /* the CRC-32 check value */
    static const char fox[] = "The quick brown fox jumps over the lazy dog";
    cr_assert_eq(fn(0, fox, sizeof fox - 1), 0x414FA339u);
    /* 32 bytes of 0xFF (the CRC-32 catalogue's second check) take the folding paths */
    uint8_t ff[32];
    memset(ff, 0xFF, sizeof ff);
    cr_assert_eq(fn(0, ff, sizeof ff), (uint32_t)crc32_z(0, ff, sizeof ff));
}

Test(crc32, best_path_matches_cpu) {
    cm_crc32_path_t want = CM_CRC32_TABLES;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("pclmul") && __builtin_cpu_supports("avx"))
        want = CM_CRC32_CLMUL_AVX;
    else if (__builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1"))
        want = CM_CRC32_CLMUL;
#endif
    cr_assert_eq(cm_crc32_best_path(), want);
}

Test(crc32, known_values) {
    each_path(known_values);
}
Test(crc32, every_length_and_alignment) {
    each_path(every_length_and_alignment);
}
Test(crc32, chained) {
    each_path(chained);
}
Test(crc32, random_data) {
    each_path(random_data);
}
