/* CRC-32 as zlib's crc32() computes it (reflected, polynomial 0x04C11DB7, pre- and
 * post-inverted): RocketMQ's BODYCRC before its 0x7FFFFFFF mask. Same result two ways:
 * carry-less multiplication folding (PCLMULQDQ, SSE4.1 or AVX encoding) on x86-64 CPUs that
 * have it, picked at run time, and slice-by-8 tables everywhere else and for inputs shorter
 * than 16 bytes and tails.
 *
 * Notation. Polynomials are over GF(2); P = x^32 + x^26 + ... + 1 (0x104C11DB7). A "state" s
 * is the CRC register without zlib's inversions, reflected: bit i of s is the coefficient of
 * x^(31-i). Feeding n bytes M (first byte's bit 0 = highest power) maps s to
 * (s * x^(8n) + M * x^32) mod P, which is also the CRC of M with s XORed into its first four
 * bytes. cm_crc32 and cm_crc32_by work on states and invert at the edges, as zlib does. */
#include <assert.h>

#include "cm.h"

/* ---- tables: T[k][b] is the state after byte b followed by k zero bytes, from state 0.
 * The map from a byte to its state is linear over GF(2), so each entry is the XOR of the
 * entries of its set bits; the eight single-bit entries of each table (the arguments of
 * TABLE below) were computed by shifting the bit through the register one step at a time
 * (s = s >> 1 ^ (s & 1 ? 0xEDB88320 : 0), eight steps per byte). Writing the tables as
 * constant expressions keeps them in read-only data with no initialisation at run time;
 * the tests check every path against zlib. */
#define BIT_(n, i, g) ((((n) >> (i)) & 1) ? (g) : 0u)
#define ENTRY_(n, g0, g1, g2, g3, g4, g5, g6, g7)                                                  \
    (BIT_(n, 0, g0) ^ BIT_(n, 1, g1) ^ BIT_(n, 2, g2) ^ BIT_(n, 3, g3) ^ BIT_(n, 4, g4) ^          \
     BIT_(n, 5, g5) ^ BIT_(n, 6, g6) ^ BIT_(n, 7, g7))
#define ENTRY(n, ...) ENTRY_(n, __VA_ARGS__)
#define ROW4(n, ...)                                                                               \
    ENTRY(n, __VA_ARGS__), ENTRY(n + 1, __VA_ARGS__), ENTRY(n + 2, __VA_ARGS__),                   \
        ENTRY(n + 3, __VA_ARGS__)
#define ROW16(n, ...)                                                                              \
    ROW4(n, __VA_ARGS__), ROW4(n + 4, __VA_ARGS__), ROW4(n + 8, __VA_ARGS__),                      \
        ROW4(n + 12, __VA_ARGS__)
#define ROW64(n, ...)                                                                              \
    ROW16(n, __VA_ARGS__), ROW16(n + 16, __VA_ARGS__), ROW16(n + 32, __VA_ARGS__),                 \
        ROW16(n + 48, __VA_ARGS__)
/* The 256 entries of a table from its eight single-bit entries (bit 0 first). */
#define TABLE(...)                                                                                 \
    ROW64(0, __VA_ARGS__), ROW64(64, __VA_ARGS__), ROW64(128, __VA_ARGS__), ROW64(192, __VA_ARGS__)

static const uint32_t T[8][256] = {
    {TABLE(0x77073096u, 0xee0e612cu, 0x076dc419u, 0x0edb8832u, 0x1db71064u, 0x3b6e20c8u,
           0x76dc4190u, 0xedb88320u)},
    {TABLE(0x191b3141u, 0x32366282u, 0x646cc504u, 0xc8d98a08u, 0x4ac21251u, 0x958424a2u,
           0xf0794f05u, 0x3b83984bu)},
    {TABLE(0x01c26a37u, 0x0384d46eu, 0x0709a8dcu, 0x0e1351b8u, 0x1c26a370u, 0x384d46e0u,
           0x709a8dc0u, 0xe1351b80u)},
    {TABLE(0xb8bc6765u, 0xaa09c88bu, 0x8f629757u, 0xc5b428efu, 0x5019579fu, 0xa032af3eu,
           0x9b14583du, 0xed59b63bu)},
    {TABLE(0x3d6029b0u, 0x7ac05360u, 0xf580a6c0u, 0x30704bc1u, 0x60e09782u, 0xc1c12f04u,
           0x58f35849u, 0xb1e6b092u)},
    {TABLE(0xcb5cd3a5u, 0x4dc8a10bu, 0x9b914216u, 0xec53826du, 0x03d6029bu, 0x07ac0536u,
           0x0f580a6cu, 0x1eb014d8u)},
    {TABLE(0xa6770bb4u, 0x979f1129u, 0xf44f2413u, 0x33ef4e67u, 0x67de9cceu, 0xcfbd399cu,
           0x440b7579u, 0x8816eaf2u)},
    {TABLE(0xccaa009eu, 0x4225077du, 0x844a0efau, 0xd3e51bb5u, 0x7cbb312bu, 0xf9766256u,
           0x299dc2edu, 0x533b85dau)},
};

static inline uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Slice-by-8 on a state: eight bytes per step, each looked up in the table for the number
 * of bytes that follow it within the step. */
static uint32_t crc_tables(uint32_t s, const uint8_t *p, size_t n) {
    for (; n >= 8; p += 8, n -= 8) {
        uint32_t a = s ^ le32(p), b = le32(p + 4);
        s = T[7][a & 0xff] ^ T[6][a >> 8 & 0xff] ^ T[5][a >> 16 & 0xff] ^ T[4][a >> 24] ^
            T[3][b & 0xff] ^ T[2][b >> 8 & 0xff] ^ T[1][b >> 16 & 0xff] ^ T[0][b >> 24];
    }
    for (; n > 0; p++, n--)
        s = T[0][(s ^ *p) & 0xff] ^ s >> 8;
    return s;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

/* ---- folding with carry-less multiplication.
 *
 * A 16-byte register x, loaded little-endian, holds a piece of message in "frame 127":
 * bit k is the coefficient of x^(127-k), counted from the end of those 16 bytes. Its low
 * qword L is the high half and its high qword H the low half: x = L*x^64 + H, with L and H
 * each read in frame 63 (bit i = x^(63-i)). PCLMULQDQ of a in frame A by b in frame B gives
 * the product in frame A+B, so a qword in frame 63 times a constant in frame 63 lands in
 * frame 126, which read in frame 127 is the product times x. Hence the constants carry one
 * power of x less than the distance they stand for.
 *
 * Folding x forward by d bits (onto data d bits later) keeps the value mod P:
 *     x * x^d = L * x^(d+64) + H * x^d == L * (x^(d+63) mod P) * x + H * (x^(d-1) mod P) * x
 * Each constant (degree < 32) is stored in frame 63, i.e. bit-reversed into the top 32 bits
 * of its qword; the low qword holds the one for L, the high qword the one for H. The
 * constants below are x^k mod P computed by long division of x^k by P; the tests check
 * them against zlib. Distances: d = 512 in the four-register loop (k = 575, 511), d = 128
 * to fold one register into the next (k = 191, 127). */
#define K575 0x653d982200000000ull
#define K511 0xcad38e8f00000000ull
#define K191 0x65673b4600000000ull
#define K127 0x9ba54c6f00000000ull
/* Final reduction of the last register x to a state, i.e. x * x^32 mod P:
 *     x * x^32 = L * x^96 + H * x^32; L * x^96 == L * (x^95 mod P) * x        (96 bits)
 * then the top 32 bits F of those 96 (coefficients x^95..x^64):
 *     F * x^64 == F * (x^63 mod P) * x                                        (64 bits)
 * and Barrett reduction of that 64-bit V = Vh*x^32 + Vl: q = floor(Vh * mu / x^32) with
 * mu = floor(x^64 / P) (exact over GF(2) for degree < 64), V mod P = Vl + (q * P mod x^32).
 * mu and P have degree 32; they are kept in frame 32 (33 bits, bit j = x^(32-j)) so that q,
 * in frame 31, comes out in bits 0..31 and q*P mod x^32 in bits 32..63. */
#define K95 0xccaa009e00000000ull
#define K63 0xb8bc676500000000ull
#define MU_F32 0x1f7011641ull /* floor(x^64 / P) = 0x104D101DF, reversed in 33 bits */
#define P_F32 0x1db710641ull  /* P = 0x104C11DB7, reversed in 33 bits */

#define CLMUL_TARGET __attribute__((target("pclmul,sse4.1")))

CLMUL_TARGET static inline __m128i load128(const uint8_t *p) {
    return _mm_loadu_si128((const __m128i *)(const void *)p);
}

/* x folded forward by the distance k stands for. */
CLMUL_TARGET static inline __m128i fold(__m128i x, __m128i k) {
    return _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11));
}

/* n >= 16. Returns the state after p[0..n). Compiled twice: for SSE4.1, and with AVX's
 * three-operand encoding, which needs no register copies and folds unaligned loads into the
 * XORs (about a third fewer instructions per byte). */
CLMUL_TARGET __attribute__((always_inline)) static inline uint32_t
clmul_body(uint32_t s, const uint8_t *p, size_t n) {
    const __m128i k128 = _mm_set_epi64x((long long)K127, (long long)K191);
    __m128i x = _mm_xor_si128(load128(p), _mm_cvtsi32_si128((int)s));
    p += 16, n -= 16;
    if (n >= 48) {
        const __m128i k512 = _mm_set_epi64x((long long)K511, (long long)K575);
        __m128i x1 = load128(p), x2 = load128(p + 16), x3 = load128(p + 32);
        for (p += 48, n -= 48; n >= 64; p += 64, n -= 64) {
            x = _mm_xor_si128(fold(x, k512), load128(p));
            x1 = _mm_xor_si128(fold(x1, k512), load128(p + 16));
            x2 = _mm_xor_si128(fold(x2, k512), load128(p + 32));
            x3 = _mm_xor_si128(fold(x3, k512), load128(p + 48));
        }
        x = _mm_xor_si128(fold(x, k128), x1);
        x = _mm_xor_si128(fold(x, k128), x2);
        x = _mm_xor_si128(fold(x, k128), x3);
    }
    for (; n >= 16; p += 16, n -= 16)
        x = _mm_xor_si128(fold(x, k128), load128(p));

    const __m128i kr = _mm_set_epi64x((long long)K63, (long long)K95);
    const __m128i kb = _mm_set_epi64x((long long)P_F32, (long long)MU_F32);
    /* L * x^96 + H * x^32: bits 32..127 (H moved from bits 64..127 down to 32..95) */
    __m128i t =
        _mm_xor_si128(_mm_clmulepi64_si128(x, kr, 0x00), _mm_slli_si128(_mm_srli_si128(x, 8), 4));
    /* F (bits 32..63) times x^64, plus the rest: V in the high qword */
    __m128i v = _mm_xor_si128(_mm_clmulepi64_si128(t, kr, 0x10), t);
    __m128i q = _mm_clmulepi64_si128(v, kb, 0x01);
    q = _mm_and_si128(q, _mm_cvtsi32_si128(-1));
    __m128i r = _mm_clmulepi64_si128(q, kb, 0x10);
    s = (uint32_t)_mm_extract_epi32(r, 1) ^ (uint32_t)_mm_extract_epi32(v, 3);
    return crc_tables(s, p, n);
}

CLMUL_TARGET static uint32_t crc_clmul(uint32_t s, const uint8_t *p, size_t n) {
    return clmul_body(s, p, n);
}

__attribute__((target("pclmul,avx"))) static uint32_t crc_clmul_avx(uint32_t s, const uint8_t *p,
                                                                    size_t n) {
    return clmul_body(s, p, n);
}

cm_crc32_path_t cm_crc32_best_path(void) {
    if (!__builtin_cpu_supports("pclmul")) return CM_CRC32_TABLES;
    if (__builtin_cpu_supports("avx")) return CM_CRC32_CLMUL_AVX;
    return __builtin_cpu_supports("sse4.1") ? CM_CRC32_CLMUL : CM_CRC32_TABLES;
}

/* The computation path names, for the inputs worth folding (16 bytes and more). */
static uint32_t crc_by(cm_crc32_path_t path, uint32_t s, const uint8_t *p, size_t n) {
    if (n >= 16 && path == CM_CRC32_CLMUL_AVX) return crc_clmul_avx(s, p, n);
    if (n >= 16 && path == CM_CRC32_CLMUL) return crc_clmul(s, p, n);
    return crc_tables(s, p, n);
}

#else

cm_crc32_path_t cm_crc32_best_path(void) {
    return CM_CRC32_TABLES;
}

static uint32_t crc_by(cm_crc32_path_t path, uint32_t s, const uint8_t *p, size_t n) {
    (void)path;
    return crc_tables(s, p, n);
}

#endif

uint32_t cm_crc32_by(cm_crc32_path_t path, uint32_t crc, const void *p, size_t n) {
    assert(path <= cm_crc32_best_path());
    return ~crc_by(path, ~crc, p, n);
}

uint32_t cm_crc32(uint32_t crc, const void *p, size_t n) {
    return ~crc_by(n >= 16 ? cm_crc32_best_path() : CM_CRC32_TABLES, ~crc, p, n);
}
