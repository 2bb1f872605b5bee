/* Body compression (message.md §6): zlib and zstd round trips, streams made by other
 * implementations, the type bits of sysFlag, corrupt input and bounded output. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "proto/proto.h"
#include "../testdata.h"

#define MIB (1024 * 1024)

/* Half text-like, half noise, so both the compressor's match and literal paths run. */
static uint8_t *make_data(size_t n) {
    uint8_t *d = cm_malloc(n ? n : 1);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        d[i] = (i / 512) % 2 ? (uint8_t)x : (uint8_t)("rocketmq "[i % 9]);
    }
    return d;
}

static bool have_zstd(void) {
    cm_buf_t b = CM_BUF_INIT;
    rmq_err_t err = proto_compress(SYSFLAG_COMPRESS_ZSTD, 3, "x", 1, &b);
    cm_buf_free(&b);
    cr_assert(err == RMQ_OK || err == RMQ_ERR_UNSUPPORTED);
    return err == RMQ_OK;
}

static void round_trip(int32_t type, int level, size_t n) {
    uint8_t *d = make_data(n);
    cm_buf_t z = CM_BUF_INIT, back = CM_BUF_INIT;
    cr_assert_eq(proto_compress(type, level, d, n, &z), RMQ_OK, "type %x size %zu", type, n);
    cr_assert_gt(z.len, 0);
    if ((type & SYSFLAG_COMPRESS_MASK) == SYSFLAG_COMPRESS_ZSTD)
        cr_assert_eq(cm_rd32(z.data), 0x28B52FFD, "zstd frame magic (little-endian)");
    else
        cr_assert_eq((z.data[0] << 8 | z.data[1]) % 31, 0, "zlib header (RFC 1950)");
    int32_t flag = SYSFLAG_COMPRESSED | type;
    cm_buf_append(&back, "ab", 2); /* decompression appends */
    cr_assert_eq(proto_decompress(flag, z.data, z.len, n, &back), RMQ_OK, "size %zu", n);
    cr_assert_eq(back.len, n + 2);
    cr_assert_eq(memcmp(back.data, "ab", 2), 0);
    cr_assert_eq(memcmp(back.data + 2, d, n), 0);
    if (n > 0) { /* one byte less room than needed */
        back.len = 0;
        cr_assert_eq(proto_decompress(flag, z.data, z.len, n - 1, &back), RMQ_ERR_COMPRESSION);
        cr_assert_eq(back.len, 0, "no partial output on failure");
    }
    cm_buf_free(&z);
    cm_buf_free(&back);
    cm_free(d);
}

Test(compress, zlib_round_trips) {
    size_t sizes[] = {0, 1, 4096, MIB};
    for (size_t i = 0; i < 4; i++) {
        round_trip(SYSFLAG_COMPRESS_ZLIB, 5, sizes[i]);
        round_trip(SYSFLAG_COMPRESS_ZLIB, 9, sizes[i]);
        round_trip(0, -1, sizes[i]); /* type 0: zlib, as a bare COMPRESSED flag means */
    }
}

Test(compress, zstd_round_trips) {
    if (!have_zstd()) cr_skip_test("built without zstd");
    size_t sizes[] = {0, 1, 4096, MIB};
    for (size_t i = 0; i < 4; i++) {
        round_trip(SYSFLAG_COMPRESS_ZSTD, 3, sizes[i]);
        round_trip(SYSFLAG_COMPRESS_ZSTD, 19, sizes[i]);
    }
}

Test(compress, type_bits) {
    cm_buf_t z = CM_BUF_INIT, out = CM_BUF_INIT;
    cr_assert_eq(proto_compress(SYSFLAG_COMPRESS_ZLIB, 5, "hello", 5, &z), RMQ_OK);
    /* Decompression reads the type from a whole sysFlag: 0x1 and 0x301 are zlib. */
    cr_assert_eq(proto_decompress(0x1, z.data, z.len, 100, &out), RMQ_OK);
    cr_assert_eq(proto_decompress(0x301 | SYSFLAG_TX_COMMIT, z.data, z.len, 100, &out), RMQ_OK);
    cr_assert_eq(out.len, 10);
    cr_assert_eq(proto_decompress(0x101, z.data, z.len, 100, &out), RMQ_ERR_UNSUPPORTED);
    cr_assert_eq(proto_compress(SYSFLAG_COMPRESS_LZ4, 5, "hello", 5, &z), RMQ_ERR_UNSUPPORTED);
    cr_assert_eq(proto_compress(SYSFLAG_COMPRESS_ZLIB, 10, "hello", 5, &z), RMQ_ERR_INVALID_ARG);
    if (have_zstd()) {
        /* A zlib stream handed to the zstd decoder is refused, not misread. */
        cr_assert_eq(proto_decompress(0x201, z.data, z.len, 100, &out), RMQ_ERR_COMPRESSION);
        cr_assert_eq(proto_compress(SYSFLAG_COMPRESS_ZSTD, 99, "x", 1, &z), RMQ_ERR_INVALID_ARG);
    } else {
        cr_assert_eq(proto_decompress(0x201, z.data, z.len, 100, &out), RMQ_ERR_UNSUPPORTED);
    }
    cr_assert_eq(out.len, 10);
    cm_buf_free(&z);
    cm_buf_free(&out);
}

static void check_corrupt(int32_t type) {
    size_t n = 100000;
    uint8_t *d = make_data(n);
    cm_buf_t z = CM_BUF_INIT, out = CM_BUF_INIT;
    cr_assert_eq(proto_compress(type, 5, d, n, &z), RMQ_OK);
    int32_t flag = SYSFLAG_COMPRESSED | type;
    /* Every proper prefix is an unfinished stream. */
    for (size_t cut = 0; cut < z.len; cut += 1 + cut / 7)
        cr_assert_eq(proto_decompress(flag, z.data, cut, n, &out), RMQ_ERR_COMPRESSION, "%zu", cut);
    cm_buf_t trail = CM_BUF_INIT;
    cm_buf_append(&trail, z.data, z.len);
    cm_buf_append(&trail, "\x01\x02\x03", 3);
    cr_assert_eq(proto_decompress(flag, trail.data, trail.len, n, &out), RMQ_ERR_COMPRESSION);
    z.data[0] ^= 0xFF; /* header */
    cr_assert_eq(proto_decompress(flag, z.data, z.len, n, &out), RMQ_ERR_COMPRESSION);
    z.data[0] ^= 0xFF;
    cr_assert_eq(out.len, 0);
    cm_buf_free(&trail);
    cm_buf_free(&z);
    cm_buf_free(&out);
    cm_free(d);
}

Test(compress, corrupt_zlib) {
    check_corrupt(SYSFLAG_COMPRESS_ZLIB);
    /* zlib's Adler-32 trailer catches a flipped bit anywhere in the data. */
    uint8_t *d = make_data(4096);
    cm_buf_t z = CM_BUF_INIT, out = CM_BUF_INIT;
    cr_assert_eq(proto_compress(SYSFLAG_COMPRESS_ZLIB, 5, d, 4096, &z), RMQ_OK);
    for (size_t i = 2; i < z.len; i += 97) {
        z.data[i] ^= 0x10;
        cr_assert_eq(proto_decompress(0x301, z.data, z.len, 4096, &out), RMQ_ERR_COMPRESSION);
        z.data[i] ^= 0x10;
    }
    cr_assert_eq(proto_decompress(0x1, "", 0, 10, &out), RMQ_ERR_COMPRESSION);
    cm_buf_free(&z);
    cm_buf_free(&out);
    cm_free(d);
}

Test(compress, corrupt_zstd) {
    if (!have_zstd()) cr_skip_test("built without zstd");
    check_corrupt(SYSFLAG_COMPRESS_ZSTD);
    cm_buf_t out = CM_BUF_INIT;
    cr_assert_eq(proto_decompress(0x201, "", 0, 10, &out), RMQ_ERR_COMPRESSION);
    cm_buf_free(&out);
}

/* 64 MiB of zeros squeezed to a few KiB must not be inflated past max_out. */
static void check_bomb(int32_t type) {
    size_t n = 64 * MIB;
    uint8_t *zeros = calloc(1, n);
    cm_buf_t z = CM_BUF_INIT, out = CM_BUF_INIT;
    cr_assert_eq(proto_compress(type, type == SYSFLAG_COMPRESS_ZSTD ? 3 : 9, zeros, n, &z), RMQ_OK);
    free(zeros);
    cr_assert_lt(z.len, 100000);
    cr_assert_eq(proto_decompress(SYSFLAG_COMPRESSED | type, z.data, z.len, 4 * MIB, &out),
                 RMQ_ERR_COMPRESSION);
    cr_assert_eq(out.len, 0);
    cr_assert_leq(out.cap, 8 * MIB, "grew to %zu for a 4 MiB limit", out.cap);
    cm_buf_free(&z);
    cm_buf_free(&out);
}

Test(compress, bombs_are_bounded) {
    check_bomb(SYSFLAG_COMPRESS_ZLIB);
    if (have_zstd()) check_bomb(SYSFLAG_COMPRESS_ZSTD);
}

/* ---- streams made by other implementations (test/data/compress/README.md) */

static uint8_t *read_data(const char *rel, size_t *len) {
    char *path = cm_sprintf("compress/%s", rel);
    uint8_t *d = td_read(path, len);
    cm_free(path);
    return d;
}

static void check_interop(const char *file, int32_t sys_flag) {
    cm_buf_t want = CM_BUF_INIT, out = CM_BUF_INIT;
    for (int i = 0; i < 1000; i++)
        cm_buf_printf(&want, "line %04d: librmq zlib/zstd interop\n", i);
    cr_assert_eq(want.len, 36000);
    size_t len;
    uint8_t *z = read_data(file, &len);
    cr_assert_eq(proto_decompress(sys_flag, z, len, 36000, &out), RMQ_OK, "%s", file);
    cr_assert_eq(out.len, want.len);
    cr_assert_eq(memcmp(out.data, want.data, want.len), 0);
    out.len = 0;
    cr_assert_eq(proto_decompress(sys_flag, z, len, 35999, &out), RMQ_ERR_COMPRESSION);
    free(z);
    cm_buf_free(&want);
    cm_buf_free(&out);
}

Test(compress, interop_python_zlib) {
    check_interop("zlib-python-level5.bin", 0x301);
}

Test(compress, interop_zstd_cli) {
    if (!have_zstd()) cr_skip_test("built without zstd");
    check_interop("zstd-cli-level19.bin", 0x201);
    check_interop("zstd-cli-stream.bin", 0x201);
}

Test(compress, zstd_concatenated_frames) {
    if (!have_zstd()) cr_skip_test("built without zstd");
    cm_buf_t z = CM_BUF_INIT, out = CM_BUF_INIT;
    cr_assert_eq(proto_compress(SYSFLAG_COMPRESS_ZSTD, 3, "hello ", 6, &z), RMQ_OK);
    cr_assert_eq(proto_compress(SYSFLAG_COMPRESS_ZSTD, 3, "world", 5, &z), RMQ_OK);
    cr_assert_eq(proto_decompress(0x201, z.data, z.len, 11, &out), RMQ_OK);
    cr_assert_eq(out.len, 11);
    cr_assert_eq(memcmp(out.data, "hello world", 11), 0);
    cm_buf_free(&z);
    cm_buf_free(&out);
}
