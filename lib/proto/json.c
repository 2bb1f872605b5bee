/* lib/proto/json.c: a small JSON reader/writer for remoting headers and bodies. It accepts
 * what Java's fastjson writes (unquoted integer keys, objects as keys) and never reads past
 * the length it is given: the text need not be NUL-terminated. */
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "json_str.h"

#define JSON_MAX_DEPTH 64
/* Longest number text we accept; real RocketMQ numbers are at most 20 characters. */
#define JSON_MAX_NUMBER 512

typedef struct parser {
    const char *p;
    const char *end;
    int depth;
} parser_t;

/* Numbers are read and written in the "C" locale whatever the host application set with
 * setlocale(), so a decimal comma never leaks into the wire format. */
static locale_t c_loc;
static pthread_once_t c_loc_once = PTHREAD_ONCE_INIT;

static void c_loc_init(void) {
    c_loc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static locale_t c_locale(void) {
    pthread_once(&c_loc_once, c_loc_init);
    return c_loc;
}

/* ---------------------------------------------------------------- tree building */

static proto_json_t *node_new(proto_json_type_t type) {
    proto_json_t *v = cm_calloc(1, sizeof *v);
    v->type = type;
    return v;
}

void proto_json_free(proto_json_t *v) {
    if (!v) return;
    if (v->type == PJ_ARRAY || v->type == PJ_OBJECT) {
        for (size_t i = 0; i < v->len; i++) {
            proto_json_free(v->items[i]);
            if (v->keys) proto_json_free(v->keys[i]);
        }
    }
    cm_free(v->items);
    cm_free(v->keys);
    cm_free(v->s);
    cm_free(v);
}

/* Appends an element (and, for objects, its key); cap grows geometrically. */
static void node_push(proto_json_t *v, size_t *cap, proto_json_t *key, proto_json_t *item) {
    if (v->len == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        v->items = cm_realloc(v->items, *cap * sizeof *v->items);
        if (v->type == PJ_OBJECT) v->keys = cm_realloc(v->keys, *cap * sizeof *v->keys);
    }
    if (v->type == PJ_OBJECT) v->keys[v->len] = key;
    v->items[v->len++] = item;
}

/* ---------------------------------------------------------------- lexing */

static void skip_ws(parser_t *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static bool take_word(parser_t *ps, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return false;
    ps->p += n;
    return true;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads the 4 hex digits after "\u"; -1 when they are missing or not hex. */
static int32_t read_hex4(parser_t *ps) {
    if (ps->end - ps->p < 4) return -1;
    int32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(ps->p[i]);
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    ps->p += 4;
    return v;
}

static void put_utf8(cm_buf_t *b, uint32_t cp) {
    if (cp < 0x80) {
        cm_buf_put8(b, (uint8_t)cp);
    } else if (cp < 0x800) {
        cm_buf_put8(b, (uint8_t)(0xC0 | (cp >> 6)));
        cm_buf_put8(b, (uint8_t)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        cm_buf_put8(b, (uint8_t)(0xE0 | (cp >> 12)));
        cm_buf_put8(b, (uint8_t)(0x80 | ((cp >> 6) & 0x3F)));
        cm_buf_put8(b, (uint8_t)(0x80 | (cp & 0x3F)));
    } else {
        cm_buf_put8(b, (uint8_t)(0xF0 | (cp >> 18)));
        cm_buf_put8(b, (uint8_t)(0x80 | ((cp >> 12) & 0x3F)));
        cm_buf_put8(b, (uint8_t)(0x80 | ((cp >> 6) & 0x3F)));
        cm_buf_put8(b, (uint8_t)(0x80 | (cp & 0x3F)));
    }
}

/* \uXXXX, with UTF-16 surrogate pairs joined; a surrogate without its partner is an error
 * because it has no UTF-8 form. */
static bool read_unicode_escape(parser_t *ps, cm_buf_t *b) {
    int32_t hi = read_hex4(ps);
    if (hi < 0 || (hi >= 0xDC00 && hi <= 0xDFFF)) return false;
    if (hi < 0xD800 || hi > 0xDBFF) {
        put_utf8(b, (uint32_t)hi);
        return true;
    }
    if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u') return false;
    ps->p += 2;
    int32_t lo = read_hex4(ps);
    if (lo < 0xDC00 || lo > 0xDFFF) return false;
    put_utf8(b, 0x10000 + (((uint32_t)hi - 0xD800) << 10) + ((uint32_t)lo - 0xDC00));
    return true;
}

/* The one-character escapes and what they stand for, index for index. */
static const char esc_names[] = "\"\\/bfnrt";
static const char esc_bytes[] = "\"\\/\b\f\n\r\t";
#define ESC_COUNT (sizeof esc_names - 1)

static bool read_escape(parser_t *ps, cm_buf_t *b) {
    if (ps->p >= ps->end) return false;
    char c = *ps->p++;
    if (c == 'u') return read_unicode_escape(ps, b);
    const char *at = memchr(esc_names, c, ESC_COUNT);
    if (!at) return false;
    cm_buf_put8(b, (uint8_t)esc_bytes[at - esc_names]);
    return true;
}

/* A string value; ps->p is on the opening quote. Bytes >= 0x80 pass through unchanged. */
static proto_json_t *parse_string(parser_t *ps) {
    cm_buf_t b = CM_BUF_INIT;
    ps->p++;
    for (;;) {
        if (ps->p >= ps->end) goto bad; /* unterminated */
        const char *run = ps->p;
        while (ps->p < ps->end && *ps->p != '"' && *ps->p != '\\' && (unsigned char)*ps->p >= 0x20)
            ps->p++;
        cm_buf_append(&b, run, (size_t)(ps->p - run));
        if (ps->p >= ps->end) goto bad;
        char c = *ps->p;
        if (c == '"') {
            ps->p++;
            break;
        }
        if (c != '\\') goto bad; /* raw control character */
        ps->p++;
        if (!read_escape(ps, &b)) goto bad;
    }
    proto_json_t *v = node_new(PJ_STRING);
    v->len = b.len;
    v->s = cm_buf_take_str(&b);
    return v;
bad:
    cm_buf_free(&b);
    return NULL;
}

/* Integer text (already validated as -?digits) to int64, saturating on overflow. */
static int64_t int_saturating(const char *t, size_t n) {
    bool neg = t[0] == '-';
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t u = 0;
    for (size_t i = neg; i < n; i++) {
        unsigned d = (unsigned)(t[i] - '0');
        if (u > (limit - d) / 10) {
            u = limit;
            break;
        }
        u = u * 10 + d;
    }
    if (neg) return u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
    return (int64_t)u;
}

static size_t skip_digits(parser_t *ps) {
    const char *s = ps->p;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
        ps->p++;
    return (size_t)(ps->p - s);
}

/* RFC 8259 number grammar: no NaN/Infinity, no leading '+', no leading zeros. Integers are
 * read exactly into i (timestamps and offsets need all 64 bits, a double has 53). */
static proto_json_t *parse_number(parser_t *ps) {
    const char *start = ps->p;
    bool integral = true;
    if (ps->p < ps->end && *ps->p == '-') ps->p++;
    const char *digits = ps->p;
    size_t nd = skip_digits(ps);
    if (nd == 0 || (nd > 1 && *digits == '0')) return NULL;
    if (ps->p < ps->end && *ps->p == '.') {
        ps->p++;
        integral = false;
        if (skip_digits(ps) == 0) return NULL;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        ps->p++;
        integral = false;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) ps->p++;
        if (skip_digits(ps) == 0) return NULL;
    }
    size_t n = (size_t)(ps->p - start);
    if (n >= JSON_MAX_NUMBER) return NULL;
    char text[JSON_MAX_NUMBER];
    memcpy(text, start, n);
    text[n] = '\0';
    double d = strtod_l(text, NULL, c_locale());
    if (!isfinite(d)) return NULL; /* 1e999: no JSON form to write it back */
    proto_json_t *v = node_new(PJ_NUMBER);
    v->d = d;
    if (integral)
        v->i = int_saturating(text, n);
    else if (d >= 9223372036854775807.0)
        v->i = INT64_MAX;
    else if (d <= -9223372036854775808.0)
        v->i = INT64_MIN;
    else
        v->i = (int64_t)d;
    return v;
}

static proto_json_t *parse_value(parser_t *ps);

/* Arrays and objects share one loop; an object reads "key : value" where the key may be any
 * value (fastjson writes Map<Integer,..> keys bare and Map<MessageQueue,..> keys as objects). */
static proto_json_t *parse_container(parser_t *ps, proto_json_type_t type) {
    char close = type == PJ_ARRAY ? ']' : '}';
    if (++ps->depth > JSON_MAX_DEPTH) return NULL;
    ps->p++;
    proto_json_t *v = node_new(type);
    size_t cap = 0;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) goto done;
    for (;;) {
        proto_json_t *key = NULL, *item;
        if (type == PJ_OBJECT) {
            key = parse_value(ps);
            if (!key) goto bad;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                proto_json_free(key);
                goto bad;
            }
            ps->p++;
        }
        item = parse_value(ps);
        if (!item) {
            proto_json_free(key);
            goto bad;
        }
        node_push(v, &cap, key, item);
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue; /* a trailing comma fails in parse_value on the closing bracket */
        }
        if (ps->p < ps->end && *ps->p == close) break;
        goto bad;
    }
done:
    ps->p++;
    ps->depth--;
    return v;
bad:
    proto_json_free(v);
    return NULL;
}

static proto_json_t *parse_value(parser_t *ps) {
    skip_ws(ps);
    if (ps->p >= ps->end) return NULL;
    switch (*ps->p) {
    case '{':
        return parse_container(ps, PJ_OBJECT);
    case '[':
        return parse_container(ps, PJ_ARRAY);
    case '"':
        return parse_string(ps);
    case 't':
    case 'f': {
        bool t = take_word(ps, "true");
        if (!t && !take_word(ps, "false")) return NULL;
        proto_json_t *v = node_new(PJ_BOOL);
        v->b = t;
        return v;
    }
    case 'n':
        return take_word(ps, "null") ? node_new(PJ_NULL) : NULL;
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) return parse_number(ps);
        return NULL;
    }
}

rmq_err_t proto_json_parse(const char *text, size_t len, proto_json_t **out) {
    *out = NULL;
    if (!text) return RMQ_ERR_BAD_JSON;
    parser_t ps = {text, text + len, 0};
    proto_json_t *v = parse_value(&ps);
    if (!v) return RMQ_ERR_BAD_JSON;
    skip_ws(&ps);
    if (ps.p != ps.end) {
        proto_json_free(v);
        return RMQ_ERR_BAD_JSON; /* trailing garbage */
    }
    *out = v;
    return RMQ_OK;
}

/* ---------------------------------------------------------------- access */

/* A number is written as an integer when i holds it exactly; this is also the text a bare
 * numeric key is matched against. */
static bool number_is_int(const proto_json_t *v) {
    return (double)v->i == v->d;
}

static void format_number(const proto_json_t *v, char *dst, size_t size) {
    if (number_is_int(v)) {
        snprintf(dst, size, "%lld", (long long)v->i);
        return;
    }
    locale_t old = uselocale(c_locale());
    snprintf(dst, size, "%.17g", v->d);
    uselocale(old);
}

static bool key_matches(const proto_json_t *k, const char *key, size_t klen) {
    if (k->type == PJ_STRING) return k->len == klen && memcmp(k->s, key, klen) == 0;
    if (k->type == PJ_NUMBER) {
        char text[32];
        format_number(k, text, sizeof text);
        return strcmp(text, key) == 0;
    }
    return false;
}

/* The last match wins, as when Java reads the object into a HashMap. */
const proto_json_t *proto_json_get(const proto_json_t *obj, const char *key) {
    if (!obj || obj->type != PJ_OBJECT || !key) return NULL;
    size_t klen = strlen(key);
    for (size_t i = obj->len; i-- > 0;)
        if (key_matches(obj->keys[i], key, klen)) return obj->items[i];
    return NULL;
}

int64_t proto_json_get_int(const proto_json_t *obj, const char *key, int64_t def) {
    const proto_json_t *v = proto_json_get(obj, key);
    return v && v->type == PJ_NUMBER ? v->i : def;
}

const char *proto_json_get_str(const proto_json_t *obj, const char *key, const char *def) {
    const proto_json_t *v = proto_json_get(obj, key);
    return v && v->type == PJ_STRING ? v->s : def;
}

bool proto_json_get_bool(const proto_json_t *obj, const char *key, bool def) {
    const proto_json_t *v = proto_json_get(obj, key);
    return v && v->type == PJ_BOOL ? v->b : def;
}

/* ---------------------------------------------------------------- writing */

uint8_t *json_grow(cm_buf_t *b, uint8_t *w, size_t n) {
    b->len = (size_t)(w - b->data);
    cm_buf_reserve(b, n);
    return b->data + b->len;
}

void proto_json_put_str(cm_buf_t *out, const char *s, size_t len) {
    cm_buf_reserve(out, len + 2 + 8); /* so that data is not NULL for the cursor */
    out->len = (size_t)(json_put_str_at(out, out->data + out->len, s, len) - out->data);
}

void proto_json_write(cm_buf_t *out, const proto_json_t *v) {
    char num[40];
    switch (v->type) {
    case PJ_NULL:
        cm_buf_append_str(out, "null");
        return;
    case PJ_BOOL:
        cm_buf_append_str(out, v->b ? "true" : "false");
        return;
    case PJ_NUMBER:
        format_number(v, num, sizeof num);
        cm_buf_append_str(out, num);
        return;
    case PJ_STRING:
        proto_json_put_str(out, v->s, v->len);
        return;
    case PJ_ARRAY:
    case PJ_OBJECT:
        cm_buf_put8(out, v->type == PJ_ARRAY ? '[' : '{');
        for (size_t i = 0; i < v->len; i++) {
            if (i) cm_buf_put8(out, ',');
            if (v->type == PJ_OBJECT) {
                proto_json_write(out, v->keys[i]);
                cm_buf_put8(out, ':');
            }
            proto_json_write(out, v->items[i]);
        }
        cm_buf_put8(out, v->type == PJ_ARRAY ? ']' : '}');
        return;
    }
}
