/* lib/proto/json_str.h (private to lib/proto): the JSON string writer shared by json.c and
 * the frame header codec in frame.c, and the byte classes frame.c scans strings with. Strings are
 * handled a word at a time where the byte order allows it: most header texts need no escape at all.
 */
#ifndef RMQ_PROTO_JSON_STR_H
#define RMQ_PROTO_JSON_STR_H

#include "proto.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define JSON_WORDS 1 /* the lowest flagged byte of a word is its first in memory */
#else
#define JSON_WORDS 0
#endif

/* The string loops are inlined into the loops that call them, so their word constants are
 * set up once per header rather than once per text. */
#define JSON_INLINE static inline __attribute__((always_inline))

#define JSON_ONES 0x0101010101010101ull
#define JSON_HIGHS 0x8080808080808080ull

/* A byte a JSON string cannot hold as it is: quote, backslash, control character. */
#define JSON_SPECIAL_ROW(b) b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b
static const bool json_special_tab[256] = {
    JSON_SPECIAL_ROW(1),
    JSON_SPECIAL_ROW(1),
    [0x22] = 1,
    [0x5c] = 1,
};
#undef JSON_SPECIAL_ROW
static inline bool json_special(unsigned char c) {
    return json_special_tab[c];
}

/* The high bit of each byte of w that is special. Exact for the lowest flagged byte; bytes
 * above it may be flagged falsely (borrows), so only the first is ever used. Below it no
 * subtraction borrows, so a byte under 0x80 sets its high bit in x - 1 only when it is the
 * quote, in y - 1 only when it is the backslash, in w - 0x20 only when it is below 0x20;
 * ~w drops bytes from 0x80 up (the xors keep the high bit). */
static inline uint64_t json_special_bytes(uint64_t w) {
    uint64_t x = w ^ (JSON_ONES * '"'), y = w ^ (JSON_ONES * '\\');
    return ((x - JSON_ONES) | (y - JSON_ONES) | (w - JSON_ONES * 0x20)) & ~w & JSON_HIGHS;
}

#if JSON_WORDS
/* Index of the first flagged byte of a non-zero json_special_bytes() mask. */
static inline size_t json_first_flagged(uint64_t m) {
    return (size_t)__builtin_ctzll(m) >> 3;
}
#endif

/* Copies bytes from *s to *d until the first special byte or end, and leaves both cursors
 * there. Whole words are copied: d needs 8 bytes of room past what it receives. */
JSON_INLINE void json_copy_plain(const char **s, const char *end, char **d) {
    const char *p = *s;
    char *w = *d;
#if JSON_WORDS
    while (end - p >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        memcpy(w, &word, 8);
        uint64_t m = json_special_bytes(word);
        if (m) {
            size_t k = json_first_flagged(m);
            *s = p + k, *d = w + k;
            return;
        }
        p += 8, w += 8;
    }
#endif
    while (p < end && !json_special((unsigned char)*p))
        *w++ = *p++;
    *s = p, *d = w;
}

/* Writers keep a cursor w into b's data and set b->len only when they are done; this makes
 * room for n bytes at w and returns the (possibly moved) cursor. */
uint8_t *json_grow(cm_buf_t *b, uint8_t *w, size_t n);
static inline uint8_t *json_room(cm_buf_t *b, uint8_t *w, size_t n) {
    return (size_t)(b->data + b->cap - w) >= n ? w : json_grow(b, w, n);
}

/* Writes s[0..len) as a quoted JSON string at w (with json_room's contract), escaping what
 * JSON requires (quote, backslash, control characters) as fastjson does; other bytes, UTF-8
 * included, are written as they are. Returns the cursor after the closing quote, with room
 * for 8 more bytes after it (a separator needs no json_room). */
JSON_INLINE uint8_t *json_put_str_at(cm_buf_t *b, uint8_t *w, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    const char *end = s + len;
    /* Room for the rest of s, both quotes, and a whole word written past the text. */
    w = json_room(b, w, len + 2 + 8);
    *w++ = '"';
    for (;;) {
        char *cw = (char *)w;
        json_copy_plain(&s, end, &cw);
        w = (uint8_t *)cw;
        if (s == end) break;
        /* 6 bytes for this one, the rest of s, the closing quote and a word's slack. */
        w = json_room(b, w, (size_t)(end - s) + 6 + 1 + 8);
        unsigned char c = (unsigned char)*s++;
        *w++ = '\\';
        switch (c) {
        case '"':
        case '\\':
            *w++ = c;
            break;
        case '\b':
            *w++ = 'b';
            break;
        case '\f':
            *w++ = 'f';
            break;
        case '\n':
            *w++ = 'n';
            break;
        case '\r':
            *w++ = 'r';
            break;
        case '\t':
            *w++ = 't';
            break;
        default:
            memcpy(w, "u00", 3);
            w[3] = (uint8_t)hex[c >> 4];
            w[4] = (uint8_t)hex[c & 0xF];
            w += 5;
        }
    }
    *w++ = '"';
    return w;
}

#endif
