/* Growable byte buffer used by every encoder. */
#include <stdio.h>

#include "cm.h"

void cm_buf_reserve(cm_buf_t *b, size_t extra) {
    if (b->len + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra) cap *= 2;
    b->data = cm_realloc(b->data, cap);
    b->cap = cap;
}

void cm_buf_append(cm_buf_t *b, const void *data, size_t n) {
    if (n == 0) return;
    cm_buf_reserve(b, n);
    memcpy(b->data + b->len, data, n);
    b->len += n;
}

void cm_buf_append_str(cm_buf_t *b, const char *s) { cm_buf_append(b, s, strlen(s)); }

void cm_buf_printf(cm_buf_t *b, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    cm_buf_reserve(b, (size_t)n + 1);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
}


size_t cm_i64_text(int64_t v, char *dst) {
    static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930"
                                "31323334353637383940414243444546474849505152535455565758596061"
                                "6263646566676869707172737475767778798081828384858687888990919293"
                                "949596979899";
    if (v >= 0 && v < 10) { /* flags, queue ids, sys flags: most header numbers */
        dst[0] = (char)('0' + v);
        dst[1] = '\0';
        return 1;
    }
    /* Unsigned arithmetic so that INT64_MIN has a magnitude. */
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    static const uint64_t pow10[20] = {1ull,
                                       10ull,
                                       100ull,
                                       1000ull,
                                       10000ull,
                                       100000ull,
                                       1000000ull,
                                       10000000ull,
                                       100000000ull,
                                       1000000000ull,
                                       10000000000ull,
                                       100000000000ull,
                                       1000000000000ull,
                                       10000000000000ull,
                                       100000000000000ull,
                                       1000000000000000ull,
                                       10000000000000000ull,
                                       100000000000000000ull,
                                       1000000000000000000ull,
                                       10000000000000000000ull};
    /* Digits from the bit length (log10 2 ~ 1233/4096), corrected by one comparison. */
    unsigned bits = 64 - (unsigned)__builtin_clzll(u | 1);
    size_t digits = (bits * 1233) >> 12; /* at most 19 for 64 bits: pow10 has the entry */
    digits += u >= pow10[digits] || u == 0; /* 0 has a digit too, shortcut above or not */
    size_t len = (v < 0) + digits;
    char *w = dst + len;
    *w = '\0';
    /* Two digits per division, from the right. */
    while (u >= 100) {
        unsigned r = (unsigned)(u % 100) * 2;
        u /= 100;
        *--w = pairs[r + 1];
        *--w = pairs[r];
    }
    if (u >= 10) {
        *--w = pairs[u * 2 + 1];
        *--w = pairs[u * 2];
    } else {
        *--w = (char)('0' + u);
    }
    if (v < 0) dst[0] = '-';
    return len;
}

void cm_buf_put_i64(cm_buf_t *b, int64_t v) {
    char text[CM_I64_TEXT];
    cm_buf_append(b, text, cm_i64_text(v, text));
}

void cm_buf_put16(cm_buf_t *b, uint16_t v) {
    cm_buf_reserve(b, 2);
    cm_wr16(b->data + b->len, v);
    b->len += 2;
}

void cm_buf_put32(cm_buf_t *b, uint32_t v) {
    cm_buf_reserve(b, 4);
    cm_wr32(b->data + b->len, v);
    b->len += 4;
}

void cm_buf_put64(cm_buf_t *b, uint64_t v) {
    cm_buf_reserve(b, 8);
    cm_wr64(b->data + b->len, v);
    b->len += 8;
}

char *cm_buf_take_str(cm_buf_t *b) {
    cm_buf_reserve(b, 1);
    b->data[b->len] = '\0';
    char *s = (char *)b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return s;
}

void cm_buf_reset(cm_buf_t *b) { b->len = 0; }

void cm_buf_free(cm_buf_t *b) {
    cm_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
