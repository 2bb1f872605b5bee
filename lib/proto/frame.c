/* lib/proto/frame.c: remoting frames (remoting.md §1, §2): the length-prefixed envelope and
 * both header serializations, JSON (Java's default) and ROCKETMQ binary. The decoder checks
 * every length against the bytes that remain before it touches them. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "json_str.h"

#define HDR_LEN_MASK 0xFFFFFFu

/* LanguageCode names by ordinal, with their lengths: JSON headers carry the name. */
#define LANG(name)                                                                                 \
    { name, sizeof name - 1 }
static const struct lang {
    const char *name;
    uint8_t len;
} langs[] = {
    LANG("JAVA"),   LANG("CPP"),  LANG("DOTNET"), LANG("PYTHON"),  LANG("DELPHI"),
    LANG("ERLANG"), LANG("RUBY"), LANG("OTHER"),  LANG("HTTP"),    LANG("GO"),
    LANG("PHP"),    LANG("OMS"),  LANG("RUST"),   LANG("NODE_JS"),
};
#define LANG_COUNT ((int32_t)(sizeof langs / sizeof langs[0]))

const char *proto_lang_name(int32_t code) {
    return code >= 0 && code < LANG_COUNT ? langs[code].name : "OTHER";
}

/* ================================================================ commands */

void proto_cmd_init(proto_cmd_t *cmd) {
    memset(cmd, 0, sizeof *cmd);
    cmd->serialize = PROTO_SER_JSON;
}

void proto_cmd_free(proto_cmd_t *cmd) {
    cm_free(cmd->remark);
    proto_ext_free(&cmd->ext);
    cm_free(cmd->body);
    proto_cmd_init(cmd);
}

void proto_cmd_request(proto_cmd_t *cmd, int32_t code, int32_t opaque) {
    proto_cmd_init(cmd);
    cmd->code = code;
    cmd->opaque = opaque;
    cmd->language = PROTO_LANG_CPP;
    cmd->version = PROTO_VERSION;
}

void proto_cmd_response(proto_cmd_t *resp, const proto_cmd_t *req, int32_t code,
                        const char *remark) {
    proto_cmd_request(resp, code, req->opaque);
    resp->flag = PROTO_FLAG_RESPONSE;
    resp->serialize = req->serialize;
    resp->remark = remark ? cm_strdup(remark) : NULL;
}

void proto_cmd_set_body(proto_cmd_t *cmd, const void *body, size_t len) {
    uint8_t *copy = NULL;
    if (len) {
        copy = cm_malloc(len);
        memcpy(copy, body, len);
    }
    proto_cmd_take_body(cmd, copy, len);
}

void proto_cmd_take_body(proto_cmd_t *cmd, uint8_t *body, size_t len) {
    cm_free(cmd->body);
    if (len == 0) {
        cm_free(body);
        body = NULL;
    }
    cmd->body = body;
    cmd->body_len = len;
}

/* ================================================================ frame envelope */

rmq_err_t proto_frame_size(const uint8_t *buf, size_t len, size_t max_frame, size_t *frame_size) {
    if (len < 4) return RMQ_ERR_TRUNCATED;
    if (max_frame == 0) max_frame = PROTO_MAX_FRAME;
    /* Read unsigned: a length with bit 31 set announces 2 GiB or more, not a negative size. */
    uint64_t total = (uint64_t)cm_rd32(buf) + 4;
    if (total > max_frame) return RMQ_ERR_FRAME_TOO_LARGE;
    if (total < 8) return RMQ_ERR_MALFORMED; /* no room for the header-length word */
    *frame_size = (size_t)total;
    return RMQ_OK;
}

/* ================================================================ decoded ext fields */

typedef struct ext_ref {
    const char *key;
    size_t pos;
} ext_ref_t;

static int ext_ref_cmp(const void *a, const void *b) {
    const ext_ref_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

/* A repeated key keeps its first place and takes its last value, as proto_ext_set would do
 * (and as Java's HashMap reads it). The texts stay in the ext's pool. */
static void ext_drop_dupes(proto_ext_t *ext, ext_ref_t *refs, size_t n) {
    size_t *vlens = ext->lens + ext->cap;
    for (size_t i = 0, j; i < n; i = j + 1) {
        for (j = i; j + 1 < n && strcmp(refs[j + 1].key, refs[i].key) == 0;)
            j++;
        if (j == i) continue;
        size_t first = refs[i].pos, last = refs[j].pos;
        char *val = ext->vals[last];
        size_t vlen = vlens[last];
        ext->vals[last] = ext->vals[first];
        vlens[last] = vlens[first];
        ext->vals[first] = val;
        vlens[first] = vlen;
        for (size_t k = i + 1; k <= j; k++)
            ext->keys[refs[k].pos] = NULL;
    }
    size_t w = 0;
    for (size_t r = 0; r < n; r++) {
        if (!ext->keys[r]) continue;
        ext->keys[w] = ext->keys[r];
        ext->vals[w] = ext->vals[r];
        ext->lens[w] = ext->lens[r];
        vlens[w++] = vlens[r];
    }
    ext->count = w;
}

/* A header of a few dozen fields is checked with no allocation (every frame comes here);
 * sorting keeps a 16 MiB frame of tiny fields at O(n log n), not quadratic. */
#define DEDUPE_SCAN_MAX 32

/* Each key sets one bit of a 64-bit mask picked by its length and its first and last bytes;
 * only a key whose bit is already set is compared with the keys before it. The keys of
 * every typed header land on distinct bits, or nearly so. */
static unsigned key_bit(const char *k, size_t n) {
    if (n == 0) return 0;
    return ((unsigned char)k[0] + 3u * (unsigned char)k[n - 1] + 5u * (unsigned)n) & 63;
}

/* Notes key k in the mask seen; true when its bit was taken already (maybe a repeat). */
static inline bool key_seen(uint64_t *seen, const char *k, size_t n) {
    uint64_t bit = (uint64_t)1 << key_bit(k, n);
    bool again = (*seen & bit) != 0;
    *seen |= bit;
    return again;
}

static bool ext_has_dupes(const proto_ext_t *ext) {
    uint64_t seen = 0;
    for (size_t i = 0; i < ext->count; i++) {
        const char *k = ext->keys[i];
        size_t n = ext->lens[i];
        if (!key_seen(&seen, k, n)) continue;
        for (size_t j = 0; j < i; j++)
            if (ext->lens[j] == n && memcmp(ext->keys[j], k, n) == 0) return true;
    }
    return false;
}

static void ext_dedupe(proto_ext_t *ext) {
    size_t n = ext->count;
    if (n < 2 || (n <= DEDUPE_SCAN_MAX && !ext_has_dupes(ext))) return;
    ext_ref_t *refs = cm_malloc(n * sizeof *refs);
    for (size_t i = 0; i < n; i++)
        refs[i] = (ext_ref_t){ext->keys[i], i};
    qsort(refs, n, sizeof *refs, ext_ref_cmp);
    ext_drop_dupes(ext, refs, n);
    cm_free(refs);
}

/* ================================================================ JSON header */

/* A header integer. Absent or null leaves Java's default 0; anything but a number that fits
 * int32 makes the header undecodable. */
static bool json_int32(const proto_json_t *v, int32_t *out) {
    if (!v || v->type == PJ_NULL) return true;
    if (v->type != PJ_NUMBER || v->i < INT32_MIN || v->i > INT32_MAX || (double)v->i != v->d)
        return false;
    *out = (int32_t)v->i;
    return true;
}

/* Language by enum name or by ordinal. An unknown name becomes OTHER: a newer peer's
 * language must not make its frames undecodable. */
static bool json_language(const proto_json_t *v, int32_t *out) {
    if (v && v->type == PJ_STRING) {
        for (int32_t i = 0; i < LANG_COUNT; i++) {
            if (strcmp(v->s, langs[i].name) == 0) {
                *out = i;
                return true;
            }
        }
        *out = PROTO_LANG_OTHER;
        return true;
    }
    return json_int32(v, out);
}

/* Text of an extFields value, in ext's pool: strings as they are, numbers and booleans as
 * Java would print them, nested JSON as JSON text. NULL for a JSON null (skipped, as Java
 * skips nulls). */
static char *json_to_text(proto_ext_t *ext, const proto_json_t *v) {
    switch (v->type) {
    case PJ_NULL:
        return NULL;
    case PJ_STRING:
        return proto_ext_text(ext, v->s, v->len);
    case PJ_BOOL:
        return proto_ext_text(ext, v->b ? "true" : "false", v->b ? 4 : 5);
    default: {
        cm_buf_t b = CM_BUF_INIT;
        proto_json_write(&b, v);
        char *t = proto_ext_text(ext, (const char *)b.data, b.len);
        cm_buf_free(&b);
        return t;
    }
    }
}

/* A C string cannot hold a NUL; a header text with one would change meaning if cut. */
static bool has_nul(const proto_json_t *v) {
    return v->type == PJ_STRING && memchr(v->s, '\0', v->len) != NULL;
}

static rmq_err_t json_ext(const proto_json_t *obj, proto_cmd_t *cmd) {
    if (!obj || obj->type == PJ_NULL) return RMQ_OK;
    if (obj->type != PJ_OBJECT) return RMQ_ERR_BAD_JSON;
    cmd->has_ext = true;
    for (size_t i = 0; i < obj->len; i++) {
        const proto_json_t *k = obj->keys[i], *v = obj->items[i];
        if (k->type != PJ_STRING && k->type != PJ_NUMBER) return RMQ_ERR_BAD_JSON;
        if (has_nul(k) || has_nul(v)) return RMQ_ERR_MALFORMED;
        char *val = json_to_text(&cmd->ext, v);
        if (val) proto_ext_append(&cmd->ext, json_to_text(&cmd->ext, k), val);
    }
    ext_dedupe(&cmd->ext);
    return RMQ_OK;
}

static rmq_err_t json_header_fields(const proto_json_t *h, proto_cmd_t *cmd) {
    if (h->type != PJ_OBJECT) return RMQ_ERR_BAD_JSON;
    if (!json_int32(proto_json_get(h, "code"), &cmd->code) ||
        !json_language(proto_json_get(h, "language"), &cmd->language) ||
        !json_int32(proto_json_get(h, "version"), &cmd->version) ||
        !json_int32(proto_json_get(h, "opaque"), &cmd->opaque) ||
        !json_int32(proto_json_get(h, "flag"), &cmd->flag))
        return RMQ_ERR_BAD_JSON;
    const proto_json_t *remark = proto_json_get(h, "remark");
    if (remark && remark->type != PJ_NULL) {
        if (remark->type != PJ_STRING) return RMQ_ERR_BAD_JSON;
        if (has_nul(remark)) return RMQ_ERR_MALFORMED;
        cmd->remark = cm_strndup(remark->s, remark->len);
    }
    return json_ext(proto_json_get(h, "extFields"), cmd);
}

/* ---------------------------------------------------------------- JSON header fast path
 *
 * Every frame's header is JSON from Java and from librmq, in one plain shape: a flat object
 * with the known keys, integers, and extFields of escape-free strings. Reading that shape
 * straight into cmd saves building a JSON tree (dozens of allocations per frame). Anything
 * else (escapes, other value types, unknown or repeated keys, odd numbers) makes the fast
 * path give up and the general parser decide, so what is accepted and what it means do not
 * change. */

typedef struct lex {
    const char *p, *end;
} lex_t;

static void lex_ws_run(lex_t *l) {
    while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r'))
        l->p++;
}

/* Skips whitespace. Headers seldom have any: a byte above ' ' settles it in one compare. */
static inline void lex_ws(lex_t *l) {
    if (l->p < l->end && (unsigned char)*l->p <= ' ') lex_ws_run(l);
}

/* Skips whitespace, then takes c if it comes next. */
static inline bool lex_char(lex_t *l, char c) {
    lex_ws(l);
    if (l->p >= l->end || *l->p != c) return false;
    l->p++;
    return true;
}

/* Takes lit (a literal) if the text at l->p starts with it. */
#define LEX_TAKE(l, lit)                                                                           \
    ((size_t)((l)->end - (l)->p) >= sizeof(lit) - 1 && memcmp((l)->p, lit, sizeof(lit) - 1) == 0   \
         ? ((l)->p += sizeof(lit) - 1, true)                                                       \
         : false)

/* The first byte at or after p that is special in a JSON string (json_special), or end. */
static const char *plain_end(const char *p, const char *end) {
#if JSON_WORDS
    while (end - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        uint64_t m = json_special_bytes(w);
        if (m) return p + json_first_flagged(m);
        p += 8;
    }
#endif
    while (p < end && !json_special((unsigned char)*p))
        p++;
    return p;
}

/* A string without escapes or control characters: its bytes, in place. */
static bool lex_plain_str(lex_t *l, const char **s, size_t *n) {
    if (!lex_char(l, '"')) return false;
    const char *start = l->p;
    l->p = plain_end(start, l->end);
    if (l->p >= l->end || *l->p != '"') return false;
    *s = start;
    *n = (size_t)(l->p - start);
    l->p++;
    return true;
}

static int hex_val(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One escape at p (on its backslash) written to *d: the one-character ones and \u00XX for
 * ASCII (Java writes the property separators \u0001 and \u0002 that way). Returns the byte
 * after it, or NULL for any other \u escape (NUL, non-ASCII, surrogates: the general
 * parser's job) or a bad one. */
static const char *lex_escape(const char *p, const char *end, char *d) {
    if (end - p < 2) return NULL;
    switch (p[1]) {
    case '"':
    case '\\':
    case '/':
        *d = p[1];
        return p + 2;
    case 'b':
        *d = '\b';
        return p + 2;
    case 'f':
        *d = '\f';
        return p + 2;
    case 'n':
        *d = '\n';
        return p + 2;
    case 'r':
        *d = '\r';
        return p + 2;
    case 't':
        *d = '\t';
        return p + 2;
    case 'u':
        break;
    default:
        return NULL;
    }
    /* Below 0x80 the four hex digits are 00 [0-7] hex. */
    if (end - p < 6 || p[2] != '0' || p[3] != '0' || p[4] < '0' || p[4] > '7') return NULL;
    int lo = hex_val(p[5]), v = (p[4] - '0') * 16 + lo;
    if (lo < 0 || v == 0) return NULL;
    *d = (char)v;
    return p + 6;
}

/* An extFields string at l->p (after whitespace), its escapes undone (see lex_escape), written
 * at d with a NUL. d must have room for the string's raw length + 8: words are copied whole
 * (a text is never longer than its raw form, and the NUL fits where the quotes were).
 * Returns the NUL's address, or NULL when the fast path cannot take the string. */
JSON_INLINE char *lex_ext_str(lex_t *l, char *d) {
    const char *p = l->p, *end = l->end;
    if (p >= end || *p != '"') return NULL;
    p++;
    for (;;) {
        json_copy_plain(&p, end, &d);
        if (p >= end) return NULL;
        if (*p == '"') {
            *d = '\0';
            l->p = p + 1;
            return d;
        }
        if (*p != '\\') return NULL; /* a raw control character */
        if (!(p = lex_escape(p, end, d++))) return NULL;
    }
}

static bool lex_null(lex_t *l) {
    lex_ws(l);
    if (l->end - l->p < 4 || memcmp(l->p, "null", 4) != 0) return false;
    l->p += 4;
    return true;
}

/* -?digits fitting int32, no leading zero, not followed by a fraction or exponent. */
static bool lex_int32(lex_t *l, int32_t *out) {
    lex_ws(l);
    const char *q = l->p, *end = l->end;
    bool neg = q < end && *q == '-';
    q += neg;
    const char *d = q, *lim = end - q > 11 ? q + 11 : end; /* 11 digits: too many already */
    int64_t v = 0;
    unsigned c;
    while (q < lim && (c = (unsigned)(unsigned char)*q - '0') <= 9) {
        v = v * 10 + c;
        q++;
    }
    size_t digits = (size_t)(q - d);
    if (digits == 0 || digits > 10 || (digits > 1 && *d == '0')) return false;
    if (q < end && (*q == '.' || (*q | 0x20) == 'e' || (unsigned)(unsigned char)*q - '0' <= 9))
        return false;
    v = neg ? -v : v;
    if (v < INT32_MIN || v > INT32_MAX) return false;
    *out = (int32_t)v;
    l->p = q;
    return true;
}

static bool fast_language(lex_t *l, int32_t *out) {
    const char *s;
    size_t n;
    lex_ws(l);
    if (LEX_TAKE(l, "\"JAVA\"")) { /* what the peers are, by far */
        *out = PROTO_LANG_JAVA;
        return true;
    }
    if (LEX_TAKE(l, "\"CPP\"")) {
        *out = PROTO_LANG_CPP;
        return true;
    }
    if (!lex_plain_str(l, &s, &n)) return false;
    *out = PROTO_LANG_OTHER;
    for (int32_t i = 0; i < LANG_COUNT; i++) {
        if (langs[i].len == n && memcmp(s, langs[i].name, n) == 0) {
            *out = i;
            break;
        }
    }
    return true;
}

static bool fast_remark(lex_t *l, proto_cmd_t *cmd) {
    const char *s;
    size_t n;
    if (lex_null(l)) return true;
    if (!lex_plain_str(l, &s, &n)) return false;
    cmd->remark = cm_strndup(s, n);
    return true;
}

static bool fast_ext(lex_t *l, proto_cmd_t *cmd) {
    if (lex_null(l)) return true;
    if (!lex_char(l, '{')) return false;
    cmd->has_ext = true;
    if (lex_char(l, '}')) return true;
    /* All the texts fit in what is left of the header (see lex_ext_str), plus a word. */
    char *d = proto_ext_alloc(&cmd->ext, (size_t)(l->end - l->p) + 8);
    uint64_t seen = 0; /* keys as they come: distinct bits mean no repeats to look for */
    bool maybe_dupes = false;
    for (;;) {
        lex_ws(l);
        char *k = d, *kend = lex_ext_str(l, d);
        if (!kend || !lex_char(l, ':')) return false;
        d = kend + 1;
        /* lex_null and lex_char written out: through them this loop cost about 300 more
         * instructions per message (callgrind), every frame passing here */
        lex_ws(l);
        if (l->p < l->end && *l->p == 'n') {
            if (!LEX_TAKE(l, "null")) return false; /* Java skips null fields */
        } else {
            char *v = d, *vend = lex_ext_str(l, d);
            if (!vend) return false;
            d = vend + 1;
            proto_ext_push(&cmd->ext, k, (size_t)(kend - k), v, (size_t)(vend - v));
            maybe_dupes |= key_seen(&seen, k, (size_t)(kend - k));
        }
        lex_ws(l);
        if (l->p >= l->end || *l->p != ',') break;
        l->p++;
    }
    if (l->p >= l->end || *l->p != '}') return false;
    l->p++;
    if (maybe_dupes) ext_dedupe(&cmd->ext);
    return true;
}

enum { M_CODE, M_FLAG, M_OPAQUE, M_VERSION, M_LANGUAGE, M_REMARK, M_EXT, M_SERIALIZE };

/* A known top-level key, quoted, with the ':' after it; -1 for any other key, one with an
 * escape included (the general parser's job). */
static int lex_member(lex_t *l) {
    lex_ws(l);
    if (l->end - l->p < 2 || l->p[0] != '"') return -1;
    int idx;
    bool ok;
    switch (l->p[1]) {
    case 'c':
        idx = M_CODE, ok = LEX_TAKE(l, "\"code\"");
        break;
    case 'e':
        idx = M_EXT, ok = LEX_TAKE(l, "\"extFields\"");
        break;
    case 'f':
        idx = M_FLAG, ok = LEX_TAKE(l, "\"flag\"");
        break;
    case 'l':
        idx = M_LANGUAGE, ok = LEX_TAKE(l, "\"language\"");
        break;
    case 'o':
        idx = M_OPAQUE, ok = LEX_TAKE(l, "\"opaque\"");
        break;
    case 'r':
        idx = M_REMARK, ok = LEX_TAKE(l, "\"remark\"");
        break;
    case 's':
        idx = M_SERIALIZE, ok = LEX_TAKE(l, "\"serializeTypeCurrentRPC\"");
        break;
    case 'v':
        idx = M_VERSION, ok = LEX_TAKE(l, "\"version\"");
        break;
    default:
        return -1;
    }
    return ok && lex_char(l, ':') ? idx : -1;
}

/* The value of one known top-level key; false for an unknown or repeated one. */
static bool fast_member(lex_t *l, int idx, unsigned *seen, proto_cmd_t *cmd) {
    if (idx < 0 || (*seen & (1u << idx))) return false;
    *seen |= 1u << idx;
    const char *s;
    size_t sn;
    switch (idx) {
    case M_CODE:
        return lex_int32(l, &cmd->code);
    case M_FLAG:
        return lex_int32(l, &cmd->flag);
    case M_OPAQUE:
        return lex_int32(l, &cmd->opaque);
    case M_VERSION:
        return lex_int32(l, &cmd->version);
    case M_LANGUAGE:
        return fast_language(l, &cmd->language);
    case M_REMARK:
        return fast_remark(l, cmd);
    case M_EXT:
        return fast_ext(l, cmd);
    default:
        return lex_plain_str(l, &s, &sn);
    }
}

static bool json_header_fast(const char *text, size_t len, proto_cmd_t *cmd) {
    lex_t l = {text, text + len};
    unsigned seen = 0;
    if (!lex_char(&l, '{')) return false;
    if (!lex_char(&l, '}')) {
        do {
            if (!fast_member(&l, lex_member(&l), &seen, cmd)) return false;
        } while (lex_char(&l, ','));
        if (!lex_char(&l, '}')) return false;
    }
    lex_ws(&l);
    return l.p == l.end;
}

static rmq_err_t json_header_decode(const uint8_t *hdr, size_t len, proto_cmd_t *cmd) {
    if (json_header_fast((const char *)hdr, len, cmd)) return RMQ_OK;
    proto_cmd_free(cmd); /* whatever the fast path filled in before it gave up */
    proto_json_t *h;
    rmq_err_t err = proto_json_parse((const char *)hdr, len, &h);
    if (err != RMQ_OK) return err;
    err = json_header_fields(h, cmd);
    proto_json_free(h);
    return err;
}

/* Literal text at w, room made by the caller. */
#define PUT_LIT(w, lit) (memcpy((w), (lit), sizeof(lit) - 1), (w) += sizeof(lit) - 1)

static uint8_t *put_int(cm_buf_t *out, uint8_t *w, int64_t v) {
    w = json_room(out, w, CM_I64_TEXT);
    return w + cm_i64_text(v, (char *)w);
}

/* Keys in the order fastjson writes them (sorted), nulls left out. One cursor writes the
 * whole header, room made per piece: this runs for every frame sent. */
static void json_header_encode(const proto_cmd_t *cmd, cm_buf_t *out) {
    const proto_ext_t *ext = &cmd->ext;
    uint8_t *w = json_room(out, out->data + out->len, 64);
    PUT_LIT(w, "{\"code\":");
    w = put_int(out, w, cmd->code);
    if (cmd->has_ext || ext->count) {
        w = json_room(out, w, 16);
        PUT_LIT(w, ",\"extFields\":{");
        for (size_t i = 0; i < ext->count; i++) {
            if (i) *w++ = ','; /* the string writers leave a word's slack */
            w = json_put_str_at(out, w, ext->keys[i], proto_ext_key_len(ext, i));
            *w++ = ':';
            w = json_put_str_at(out, w, ext->vals[i], proto_ext_val_len(ext, i));
        }
        *w++ = '}';
    }
    w = json_room(out, w, 32);
    PUT_LIT(w, ",\"flag\":");
    w = put_int(out, w, cmd->flag);
    w = json_room(out, w, 32);
    PUT_LIT(w, ",\"language\":");
    if (cmd->language >= 0 && cmd->language < LANG_COUNT) {
        *w++ = '"';
        memcpy(w, langs[cmd->language].name, langs[cmd->language].len);
        w += langs[cmd->language].len;
        *w++ = '"';
    } else {
        w = put_int(out, w, cmd->language);
    }
    w = json_room(out, w, 32);
    PUT_LIT(w, ",\"opaque\":");
    w = put_int(out, w, cmd->opaque);
    if (cmd->remark) {
        w = json_room(out, w, 16);
        PUT_LIT(w, ",\"remark\":");
        w = json_put_str_at(out, w, cmd->remark, strlen(cmd->remark));
    }
    w = json_room(out, w, 64);
    PUT_LIT(w, ",\"serializeTypeCurrentRPC\":\"JSON\",\"version\":");
    w = put_int(out, w, cmd->version);
    w = json_room(out, w, 1);
    *w++ = '}';
    out->len = (size_t)(w - out->data);
}

/* ================================================================ ROCKETMQ binary header */

typedef struct reader {
    const uint8_t *p;
    size_t left;
} reader_t;

static bool rd_u8(reader_t *r, uint8_t *v) {
    if (r->left < 1) return false;
    *v = r->p[0];
    r->p++, r->left--;
    return true;
}

static bool rd_i16(reader_t *r, int16_t *v) {
    if (r->left < 2) return false;
    *v = (int16_t)cm_rd16(r->p);
    r->p += 2, r->left -= 2;
    return true;
}

static bool rd_i32(reader_t *r, int32_t *v) {
    if (r->left < 4) return false;
    *v = (int32_t)cm_rd32(r->p);
    r->p += 4, r->left -= 4;
    return true;
}

/* A length-prefixed text: fails when the length is negative, exceeds what is left, or the
 * text holds a NUL (see has_nul). */
static bool rd_span(reader_t *r, int32_t n, const char **text) {
    if (n < 0 || (size_t)n > r->left || memchr(r->p, '\0', (size_t)n)) return false;
    *text = (const char *)r->p;
    r->p += n, r->left -= (size_t)n;
    return true;
}

static bool rd_text(reader_t *r, int32_t n, char **out) {
    const char *t;
    if (!rd_span(r, n, &t)) return false;
    *out = cm_strndup(t, (size_t)n);
    return true;
}

/* ext: repeated {int16 keyLen, key, int32 valLen, value} filling exactly len bytes. */
static bool bin_ext_decode(reader_t *r, proto_cmd_t *cmd) {
    uint64_t seen = 0; /* as in fast_ext */
    bool maybe_dupes = false;
    while (r->left) {
        int16_t klen;
        int32_t vlen;
        const char *key, *val;
        if (!rd_i16(r, &klen) || !rd_span(r, klen, &key) || !rd_i32(r, &vlen) ||
            !rd_span(r, vlen, &val))
            return false;
        proto_ext_push(&cmd->ext, proto_ext_text(&cmd->ext, key, (size_t)klen), (size_t)klen,
                       proto_ext_text(&cmd->ext, val, (size_t)vlen), (size_t)vlen);
        maybe_dupes |= key_seen(&seen, key, (size_t)klen);
    }
    if (maybe_dupes) ext_dedupe(&cmd->ext);
    return true;
}

/* Layout: code int16, language byte, version int16, opaque int32, flag int32, remark int32
 * length + bytes, ext int32 length + bytes: 21 fixed bytes (remoting.md §2 says 17, but Java's
 * calTotalLen counts both length words). Every inconsistency inside a complete header is a
 * lie about lengths: MALFORMED. */
static rmq_err_t bin_header_decode(const uint8_t *hdr, size_t len, proto_cmd_t *cmd) {
    reader_t r = {hdr, len};
    int16_t code, version;
    uint8_t lang;
    int32_t remark_len, ext_len;
    if (!rd_i16(&r, &code) || !rd_u8(&r, &lang) || !rd_i16(&r, &version) ||
        !rd_i32(&r, &cmd->opaque) || !rd_i32(&r, &cmd->flag) || !rd_i32(&r, &remark_len))
        return RMQ_ERR_MALFORMED;
    cmd->code = code;
    cmd->language = lang;
    cmd->version = version;
    if (remark_len > 0 && !rd_text(&r, remark_len, &cmd->remark)) return RMQ_ERR_MALFORMED;
    if (remark_len < 0 || !rd_i32(&r, &ext_len) || ext_len < 0 || (size_t)ext_len != r.left)
        return RMQ_ERR_MALFORMED;
    if (!bin_ext_decode(&r, cmd)) return RMQ_ERR_MALFORMED;
    cmd->has_ext = cmd->ext.count > 0; /* binary cannot tell an empty map from none */
    return RMQ_OK;
}

static rmq_err_t bin_header_encode(const proto_cmd_t *cmd, cm_buf_t *out) {
    if (cmd->code < INT16_MIN || cmd->code > INT16_MAX || cmd->version < INT16_MIN ||
        cmd->version > INT16_MAX || cmd->language < 0 || cmd->language > UINT8_MAX)
        return RMQ_ERR_UNSUPPORTED; /* does not fit the binary form: use JSON */
    cm_buf_put16(out, (uint16_t)cmd->code);
    cm_buf_put8(out, (uint8_t)cmd->language);
    cm_buf_put16(out, (uint16_t)cmd->version);
    cm_buf_put32(out, (uint32_t)cmd->opaque);
    cm_buf_put32(out, (uint32_t)cmd->flag);
    size_t rlen = cmd->remark ? strlen(cmd->remark) : 0;
    cm_buf_put32(out, (uint32_t)rlen);
    cm_buf_append(out, cmd->remark, rlen);
    size_t ext_at = out->len;
    cm_buf_put32(out, 0); /* patched below */
    for (size_t i = 0; i < cmd->ext.count; i++) {
        size_t klen = proto_ext_key_len(&cmd->ext, i), vlen = proto_ext_val_len(&cmd->ext, i);
        if (klen > INT16_MAX) return RMQ_ERR_UNSUPPORTED;
        cm_buf_put16(out, (uint16_t)klen);
        cm_buf_append(out, cmd->ext.keys[i], klen);
        cm_buf_put32(out, (uint32_t)vlen);
        cm_buf_append(out, cmd->ext.vals[i], vlen);
    }
    cm_wr32(out->data + ext_at, (uint32_t)(out->len - ext_at - 4));
    return RMQ_OK;
}

/* ================================================================ frames */

rmq_err_t proto_frame_decode(const uint8_t *buf, size_t len, size_t max_frame, proto_cmd_t *cmd) {
    size_t size;
    proto_cmd_init(cmd);
    rmq_err_t err = proto_frame_size(buf, len, max_frame, &size);
    if (err != RMQ_OK) return err;
    if (len < size) return RMQ_ERR_TRUNCATED;
    if (len > size) return RMQ_ERR_MALFORMED; /* bytes beyond what the length field announces */
    uint32_t word = cm_rd32(buf + 4);
    size_t hlen = word & HDR_LEN_MASK;
    if (hlen > size - 8) return RMQ_ERR_MALFORMED;
    uint8_t ser = (uint8_t)(word >> 24);
    const uint8_t *hdr = buf + 8;
    if (ser == PROTO_SER_JSON)
        err = json_header_decode(hdr, hlen, cmd);
    else if (ser == PROTO_SER_ROCKETMQ)
        err = bin_header_decode(hdr, hlen, cmd);
    else
        err = RMQ_ERR_UNSUPPORTED;
    if (err != RMQ_OK) {
        proto_cmd_free(cmd);
        return err;
    }
    cmd->serialize = ser;
    proto_cmd_set_body(cmd, hdr + hlen, size - 8 - hlen);
    return RMQ_OK;
}

rmq_err_t proto_frame_encode(const proto_cmd_t *cmd, cm_buf_t *out) {
    size_t start = out->len;
    cm_buf_reserve(out, 8); /* total length, serialize type + header length: written below */
    out->len += 8;
    rmq_err_t err = RMQ_OK;
    if (cmd->serialize == PROTO_SER_JSON)
        json_header_encode(cmd, out);
    else if (cmd->serialize == PROTO_SER_ROCKETMQ)
        err = bin_header_encode(cmd, out);
    else
        err = RMQ_ERR_UNSUPPORTED;
    size_t hlen = out->len - start - 8;
    if (err == RMQ_OK && hlen > HDR_LEN_MASK) err = RMQ_ERR_FRAME_TOO_LARGE;
    if (err == RMQ_OK && 4 + hlen + cmd->body_len > INT32_MAX) err = RMQ_ERR_FRAME_TOO_LARGE;
    if (err != RMQ_OK) {
        out->len = start; /* leave out as it was */
        return err;
    }
    cm_buf_append(out, cmd->body, cmd->body_len);
    cm_wr32(out->data + start, (uint32_t)(4 + hlen + cmd->body_len));
    cm_wr32(out->data + start + 4, ((uint32_t)cmd->serialize << 24) | (uint32_t)hlen);
    return RMQ_OK;
}
